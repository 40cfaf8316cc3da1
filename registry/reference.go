package registry

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

var (
	fullIDRe = regexp.MustCompile(`^(sha256:)?([a-f0-9]{64})$`)
	idPrefRe = regexp.MustCompile(`^(sha256:)?([a-f0-9]{1,64})$`)
)

// ParseNamed parses an image reference given by a client the way dockerd
// does: "busybox" is docker.io/library/busybox:latest, a name without tag or
// digest gets ":latest", and a name with both tag and digest keeps only the
// digest. Malformed references are ErrInvalidArgument with Docker's message
// ("invalid reference format: repository name (library/UPPER) must be
// lowercase").
func ParseNamed(s string) (reference.Named, error) {
	named, err := reference.ParseDockerRef(s)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(refError(err))
	}
	return named, nil
}

// parseRepoTag parses the repo and tag of POST /images/{name}/tag and of a
// pull's fromImage/tag. The tag, when given, replaces a tag in repo; a repo
// that carries a digest keeps it (pull by digest).
func parseRepoTag(repo, tag string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(refError(err))
	}
	if tag != "" {
		if _, isDigested := named.(reference.Digested); isDigested {
			return nil, errdefs.ErrInvalidArgument.WithMessage("cannot combine a digest reference with a tag")
		}
		if strings.HasPrefix(tag, "sha256:") {
			// fromImage=busybox&tag=sha256:... is how old clients pull by digest.
			named, err = reference.ParseNormalizedNamed(reference.TrimNamed(named).String() + "@" + tag)
			if err != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(refError(err))
			}
			return named, nil
		}
		named, err = reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid tag format: %s", tag))
		}
		return named, nil
	}
	return reference.ParseDockerRef(named.String())
}

// refError is Docker's wording of a reference parse error: always prefixed
// "invalid reference format" (distribution/reference omits it for some).
func refError(err error) string {
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid reference format") && !strings.HasPrefix(msg, "invalid repository name") {
		msg = "invalid reference format: " + msg
	}
	return msg
}

// familiar is how Docker shows a reference: "busybox:latest",
// "127.0.0.1:5000/library/busybox:latest", "busybox@sha256:...".
func familiar(named reference.Named) string { return reference.FamiliarString(named) }

// storedName parses a name kept in storage (always fully qualified);
// names we do not understand are ignored.
func storedName(s string) (reference.Named, bool) {
	named, err := reference.ParseNamed(s)
	if err != nil {
		return nil, false
	}
	return named, true
}

// splitNames sorts stored names into Docker's RepoTags and RepoDigests.
func splitNames(names []string) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, n := range names {
		named, ok := storedName(n)
		if !ok {
			continue
		}
		switch named.(type) {
		case reference.Canonical:
			digests = append(digests, familiar(named))
		case reference.NamedTagged:
			tags = append(tags, familiar(named))
		}
	}
	return tags, digests
}

// matchReference is the reference filter of GET /images/json: pattern is a
// shell pattern matched against the familiar reference ("busybox:latest")
// and against the familiar name ("busybox"), as reference.FamiliarMatch does.
func matchReference(pattern string, named reference.Named) (bool, error) {
	ok, err := path.Match(pattern, reference.FamiliarString(named))
	if err != nil {
		return false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference filter %q: %v", pattern, err))
	}
	if ok {
		return true, nil
	}
	ok, _ = path.Match(pattern, reference.FamiliarName(named))
	return ok, nil
}

// insecureSet is dockerd's notion of insecure registries: listed names, and
// hosts whose address falls in a listed CIDR or in loopback.
type insecureSet struct {
	names map[string]bool
	nets  []*net.IPNet
}

func parseInsecure(list []string) (insecureSet, error) {
	set := insecureSet{names: map[string]bool{}}
	for _, cidr := range []string{"127.0.0.0/8", "::1/128"} {
		_, n, _ := net.ParseCIDR(cidr)
		set.nets = append(set.nets, n)
	}
	for _, r := range list {
		r = strings.TrimSpace(r)
		r = strings.TrimPrefix(strings.TrimPrefix(r, "http://"), "https://")
		r = strings.TrimSuffix(r, "/")
		if r == "" {
			continue
		}
		if _, n, err := net.ParseCIDR(r); err == nil {
			set.nets = append(set.nets, n)
			continue
		}
		if strings.Contains(r, "/") {
			return set, fmt.Errorf("insecure registry %s is not a valid host[:port] or CIDR", r)
		}
		set.names[r] = true
	}
	return set, nil
}

// isInsecure reports whether host (a reference's domain, "host[:port]") is
// insecure: named in the list, or an address (given or resolved) in one of
// the networks, as dockerd's isSecureIndex decides.
func (set insecureSet) isInsecure(host string) bool {
	if set.names[host] {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if set.names[h] {
		return true
	}
	if h == "docker.io" || h == "registry-1.docker.io" || h == "index.docker.io" {
		return false
	}
	var addrs []net.IP
	if ip := net.ParseIP(h); ip != nil {
		addrs = []net.IP{ip}
	} else if h == "localhost" {
		addrs = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else if ips, err := net.LookupIP(h); err == nil {
		addrs = ips
	}
	for _, ip := range addrs {
		for _, n := range set.nets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}
