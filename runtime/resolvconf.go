package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// resolvConf is the container's /etc/resolv.conf.
//
// On a bridge network (user-defined or the default one: berth's DNS server
// serves both) the only nameserver is berth's, on the primary network's
// gateway, as dockerd keeps its embedded resolver on user-defined networks.
// The container's own --dns servers (compose dns:) are not written there:
// berth's server forwards to them, for this container only, what it cannot
// answer itself (see network/dns Forward). --dns-search domains come first
// in the search list, then berth's (<project>.<zone> <zone>), which stay; a
// "." among them means no domain of the user's, as with Docker. --dns-option
// replaces the options, and ndots:0 is added unless the user set ndots, as
// dockerd does for its embedded resolver.
//
// With --network host or none the container has no berth resolver: the
// host's file, with --dns, --dns-search and --dns-option replacing its
// nameserver, search and options lines (none drops loopback nameservers,
// which nothing can reach from there).
func (s *Service) resolvConf(rec *Record) []byte {
	hc := rec.HostConfig
	switch mode := string(hc.NetworkMode); {
	case mode == "host" || mode == "none":
		return hostResolvConf(readHostResolvConf(), mode == "none", hc).render()
	default:
		primary, _ := s.primaryNetwork(rec)
		base := parseResolvConf(s.d.Networks.ResolvConf(primary, rec.Config.Labels[composeProjectLabel]))
		return embeddedResolvConf(base, hc).render()
	}
}

// refreshResolvConf rewrites a running container's resolv.conf in place
// (the bind mount shows the new content) after a disconnect: when the
// nameserver was the gone network's gateway it is out of reach. Every
// attached network's gateway is on-link; the network layer moves the
// default route when the primary network goes.
func (s *Service) refreshResolvConf(rec *Record) error {
	if mode := string(rec.HostConfig.NetworkMode); mode == "host" || mode == "none" || isContainerMode(mode) {
		return nil
	}
	return os.WriteFile(filepath.Join(s.containerDir(rec.ID), "resolv.conf"), s.resolvConf(rec), 0o644)
}

// resolvFile is a resolv.conf as berth reads and writes it. Lines other
// than nameserver, search, domain and options (comments, sortlist, ...)
// are kept in order in other.
type resolvFile struct {
	comments    []string
	nameservers []string
	search      []string
	options     []string
	other       []string
}

// parseResolvConf reads resolv.conf text. "domain" counts as a search
// domain, as the resolver treats it; the last search or domain line wins,
// as in the resolver.
func parseResolvConf(b []byte) resolvFile {
	var f resolvFile
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			f.comments = append(f.comments, line)
		case fields[0] == "nameserver" && len(fields) >= 2:
			f.nameservers = append(f.nameservers, fields[1])
		case fields[0] == "search" || fields[0] == "domain":
			f.search = slices.Clone(fields[1:])
		case fields[0] == "options":
			f.options = append(f.options, fields[1:]...)
		default:
			f.other = append(f.other, line)
		}
	}
	return f
}

func (f resolvFile) render() []byte {
	var b bytes.Buffer
	for _, c := range f.comments {
		b.WriteString(c + "\n")
	}
	for _, ns := range f.nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(f.search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(f.search, " "))
	}
	if len(f.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(f.options, " "))
	}
	for _, o := range f.other {
		b.WriteString(o + "\n")
	}
	return b.Bytes()
}

// embeddedResolvConf applies a container's DNS settings to the file berth's
// network layer wrote for it (its nameserver, berth's search domains and
// options): see resolvConf.
func embeddedResolvConf(base resolvFile, hc *container.HostConfig) resolvFile {
	out := base
	out.comments = slices.Clone(base.comments)
	if len(hc.DNS) > 0 {
		ups := make([]string, 0, len(hc.DNS))
		for _, ip := range hc.DNS {
			ups = append(ups, ip.String())
		}
		out.comments = append(out.comments, "# berth's DNS server forwards names it does not know to this container's own servers: "+strings.Join(ups, " "))
	}
	if len(hc.DNSSearch) > 0 {
		out.search = mergeDomains(userDomains(hc.DNSSearch), base.search)
	}
	if len(hc.DNSOptions) > 0 {
		out.options = slices.Clone(hc.DNSOptions)
	}
	if !slices.ContainsFunc(out.options, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
		out.options = append(slices.Clone(out.options), "ndots:0")
	}
	return out
}

// hostResolvConf applies a container's DNS settings to the host's file for
// --network host and none: see resolvConf.
func hostResolvConf(host resolvFile, dropLoopback bool, hc *container.HostConfig) resolvFile {
	out := host
	if len(hc.DNS) > 0 {
		out.nameservers = nil
		for _, ip := range hc.DNS {
			out.nameservers = append(out.nameservers, ip.String())
		}
	}
	if dropLoopback {
		out.nameservers = slices.DeleteFunc(slices.Clone(out.nameservers), func(ns string) bool {
			ip, err := netip.ParseAddr(ns)
			return err == nil && ip.Unmap().IsLoopback()
		})
	}
	if len(hc.DNSSearch) > 0 {
		out.search = userDomains(hc.DNSSearch)
	}
	if len(hc.DNSOptions) > 0 {
		out.options = slices.Clone(hc.DNSOptions)
	}
	return out
}

// userDomains are --dns-search domains without "." (Docker's "no search
// domain").
func userDomains(domains []string) []string {
	var out []string
	for _, d := range domains {
		if d = strings.TrimSpace(d); d != "" && d != "." {
			out = append(out, d)
		}
	}
	return out
}

// mergeDomains is first then rest, each domain once (case-insensitive).
func mergeDomains(first, rest []string) []string {
	var out []string
	for _, d := range append(slices.Clone(first), rest...) {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(strings.TrimSuffix(o, "."), strings.TrimSuffix(d, ".")) }) {
			out = append(out, d)
		}
	}
	return out
}

func readHostResolvConf() resolvFile {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return resolvFile{}
	}
	return parseResolvConf(b)
}
