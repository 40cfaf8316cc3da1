package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/distribution/registry/api/errcode"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	mregistry "github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	creference "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// PullOptions are the parameters of POST /images/create?fromImage=.
type PullOptions struct {
	FromImage string // repository, possibly with tag or digest
	Tag       string // tag or digest; empty means latest (or what FromImage carries)
	Platform  string // os[/arch[/variant]]; empty means the daemon's
	// Auth is the decoded X-Registry-Auth; nil or empty uses the daemon's
	// auth file, else anonymous access.
	Auth *mregistry.AuthConfig
}

// Pull pulls an image from its registry. Errors found before any progress
// is written (bad reference: ErrInvalidArgument; unknown repository or tag:
// ErrNotFound; registry refused the credentials: ErrUnauthorized; registry
// unreachable: ErrUnavailable) are returned before start is called; later
// ones are returned after it, for the caller to put into the stream.
func (s *Service) Pull(ctx context.Context, opts PullOptions, start StartFunc) error {
	named, err := parseRepoTag(opts.FromImage, opts.Tag)
	if err != nil {
		return err
	}
	cnamed, err := toContainers(named)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	sys, err := s.registryContext(reference.Domain(named), opts.Auth)
	if err != nil {
		return err
	}
	if err := setPlatform(sys, opts.Platform); err != nil {
		return err
	}
	srcRef, err := docker.NewReference(cnamed)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	remote, err := s.remoteManifest(ctx, sys, srcRef, named)
	if err != nil {
		return err
	}
	top := remote.top

	out := start()
	tagOrDigest := ""
	switch n := named.(type) {
	case reference.Canonical:
		tagOrDigest = n.Digest().String()
	case reference.NamedTagged:
		tagOrDigest = n.Tag()
	}
	_ = out.Send(jsonstream.Message{Status: "Pulling from " + reference.Path(named), ID: tagOrDigest})

	digestName, _ := reference.WithDigest(reference.TrimNamed(named), top)
	var oldID string
	if old, err := s.lookupName(named.String()); err == nil {
		oldID = old.ID
	}
	upToDate := false
	if oldID != "" {
		if old, err := s.store.Image(oldID); err == nil && slices.Contains(old.Digests, top) {
			upToDate = true
		}
	}
	_, isCanonical := named.(reference.Canonical)
	newID := oldID
	if !upToDate {
		seen := map[string]bool{}
		for _, l := range remote.layers {
			id := ShortID(l.String())
			if !seen[id] {
				seen[id] = true
				_ = out.Send(jsonstream.Message{Status: "Pulling fs layer", Progress: &jsonstream.Progress{}, ID: id})
			}
		}
		id := ""
		if remote.config.Validate() == nil {
			// the ID containers/image gives a schema 2 or OCI image; set,
			// so the names can be owed to it before it exists
			id = remote.config.Encoded()
			names := []string{cnamed.String()}
			if !isCanonical && digestName != nil {
				names = append(names, digestName.String())
			}
			paid, err := s.owe(id, names)
			if err != nil {
				return err
			}
			defer paid()
		}
		if newID, err = s.pullCopy(ctx, sys, srcRef, cnamed, id, out); err != nil {
			return s.pullError(err, named)
		}
	}
	if !isCanonical && digestName != nil {
		if err := s.store.AddNames(newID, []string{digestName.String()}); err != nil {
			return err
		}
	}
	if newID != oldID {
		s.touchTag(newID)
	}
	_ = out.Send(jsonstream.Message{Status: "Digest: " + top.String()})
	if newID == oldID {
		_ = out.Send(jsonstream.Message{Status: "Status: Image is up to date for " + familiar(named)})
	} else {
		_ = out.Send(jsonstream.Message{Status: "Status: Downloaded newer image for " + familiar(named)})
	}
	attrs := map[string]string{"name": reference.FamiliarName(named)}
	if img, err := s.store.Image(newID); err == nil {
		attrs = s.eventAttrs(img, reference.FamiliarName(named))
	}
	s.publish(events.ActionPull, familiar(named), attrs)
	return nil
}

// pullCopy copies the image into storage (as image id, when id is set)
// with copy progress translated to out, and returns the new image's ID.
func (s *Service) pullCopy(ctx context.Context, sys *types.SystemContext, srcRef types.ImageReference, cnamed creference.Named, id string, out Output) (string, error) {
	dest, err := istorage.Transport.NewStoreReference(s.store, cnamed, id)
	if err != nil {
		return "", err
	}
	pc, err := s.policyContext()
	if err != nil {
		return "", err
	}
	defer pc.Destroy()
	pump := startPump(pullProgress, out, false)
	var resolved types.ImageReference
	_, err = copy.Image(ctx, pc, dest, srcRef, &copy.Options{
		SourceCtx:               sys,
		DestinationCtx:          s.systemContext(),
		Progress:                pump.ch,
		ProgressInterval:        progressInterval,
		ReportWriter:            io.Discard,
		ReportResolvedReference: &resolved,
	})
	pump.stop()
	if err != nil {
		return "", err
	}
	for _, m := range pump.t.finish() {
		_ = out.Send(m)
	}
	if resolved == nil {
		return "", errors.New("pull: storage did not report the image")
	}
	_, img, err := istorage.ResolveReference(resolved)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// lookupName finds the image holding exactly this stored name.
func (s *Service) lookupName(name string) (*storage.Image, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return nil, err
	}
	for i := range imgs {
		if slices.Contains(imgs[i].Names, name) {
			return &imgs[i], nil
		}
	}
	return nil, errdefs.ErrNotFound
}

// remoteImage is what a pull learns from the registry before it copies.
type remoteImage struct {
	top    digest.Digest   // the top-level manifest's digest
	layers []digest.Digest // the layers of the instance for this platform
	config digest.Digest   // its config's digest: the image ID (empty for schema 1)
}

// remoteManifest fetches the top-level manifest (its digest is the one
// Docker reports and records) and the layers of the instance for this
// platform; failures are classified like dockerd's.
func (s *Service) remoteManifest(ctx context.Context, sys *types.SystemContext, ref types.ImageReference, named reference.Named) (remoteImage, error) {
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return remoteImage{}, s.pullError(err, named)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return remoteImage{}, s.pullError(err, named)
	}
	top, err := manifest.Digest(raw)
	if err != nil {
		return remoteImage{}, err
	}
	if c, ok := named.(reference.Canonical); ok {
		top = c.Digest()
	}
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return remoteImage{}, err
		}
		inst, err := list.ChooseInstance(sys)
		if err != nil {
			return remoteImage{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no matching manifest for %s in the manifest list entries: %v", platformString(sys), err))
		}
		if raw, mt, err = src.GetManifest(ctx, &inst); err != nil {
			return remoteImage{}, s.pullError(err, named)
		}
	}
	m, err := manifest.FromBlob(raw, mt)
	if err != nil {
		return remoteImage{}, err
	}
	if (sys.OSChoice != "" || sys.ArchitectureChoice != "") && !manifest.MIMETypeIsMultiImage(mt) {
		if err := checkPlatform(ctx, src, m, sys, named); err != nil {
			return remoteImage{}, err
		}
	}
	var layers []digest.Digest
	for _, l := range m.LayerInfos() {
		if !l.EmptyLayer {
			layers = append(layers, l.Digest)
		}
	}
	return remoteImage{top: top, layers: layers, config: m.ConfigInfo().Digest}, nil
}

// checkPlatform refuses a single-platform image that is not the platform
// the client asked for, as dockerd does (containers/image only warns).
func checkPlatform(ctx context.Context, src types.ImageSource, m manifest.Manifest, sys *types.SystemContext, named reference.Named) error {
	blob, _, err := src.GetBlob(ctx, m.ConfigInfo(), none.NoCache)
	if err != nil {
		return nil // the copy reports a missing config
	}
	defer blob.Close()
	var p ocispec.Platform
	if json.NewDecoder(blob).Decode(&p) != nil || p.OS == "" {
		return nil
	}
	wantOS, wantArch := sys.OSChoice, sys.ArchitectureChoice
	if (wantOS != "" && wantOS != p.OS) || (wantArch != "" && wantArch != p.Architecture) {
		actual := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			actual += "/" + p.Variant
		}
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)", familiar(named), actual, platformString(sys)))
	}
	return nil
}

// pullError classifies a registry error with dockerd's words.
func (s *Service) pullError(err error, named reference.Named) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ec errcode.Error
	if errors.As(err, &ec) {
		switch ec.Code.Descriptor().Value {
		case "MANIFEST_UNKNOWN":
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("manifest for %s not found: %s", familiar(named), codeText(ec)))
		case "NAME_UNKNOWN":
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("repository %s not found: %s", reference.FamiliarName(named), codeText(ec)))
		case "DENIED":
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s", reference.FamiliarName(named), codeText(ec)))
		}
	}
	var unauth docker.ErrUnauthorizedForCredentials
	isUnauth := errors.As(err, &unauth) || (errors.As(err, &ec) && ec.Code.Descriptor().Value == "UNAUTHORIZED")
	if isUnauth && reference.Domain(named) == "docker.io" {
		// Docker Hub answers an anonymous pull of a repository that does not
		// exist (or is private) with 401; dockerd words it as a 404.
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s", reference.FamiliarName(named), registryMessage(err)))
	}
	if isUnauth {
		// Not 401: the docker CLI answers a 401 with an interactive login
		// prompt, and dockerd does not send one for a pull either.
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("pull access denied for %s: %s", familiar(named), registryMessage(err)))
	}
	if isUnreachable(err) {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("registry %s is unreachable: %v", reference.Domain(named), err))
	}
	return err
}

func codeText(ec errcode.Error) string {
	return ec.Code.Error() + ": " + ec.Message
}

// registryMessage is the registry's own words inside a containers/image
// error ("unauthorized: authentication required").
func registryMessage(err error) string {
	var ec errcode.Error
	if errors.As(err, &ec) {
		return codeText(ec)
	}
	return err.Error()
}

func isUnreachable(err error) bool {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var urlErr *url.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		(errors.As(err, &urlErr) && urlErr.Timeout())
}

// registryContext is the system context for talking to one registry:
// TLS per dockerd's insecure-registry rules, and credentials from the
// request, else the daemon's auth file.
func (s *Service) registryContext(domain string, auth *mregistry.AuthConfig) (*types.SystemContext, error) {
	sys := s.systemContext()
	if s.insecure.isInsecure(domain) {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	sys.DockerCompatAuthFilePath = s.d.AuthFile
	if auth != nil {
		user, pass := auth.Username, auth.Password
		if user == "" && auth.Auth != "" {
			b, err := base64.StdEncoding.DecodeString(auth.Auth)
			if err != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage("invalid X-Registry-Auth: auth is not base64")
			}
			user, pass, _ = strings.Cut(string(b), ":")
		}
		switch {
		case auth.RegistryToken != "":
			sys.DockerBearerRegistryToken = auth.RegistryToken
		case user != "" || auth.IdentityToken != "":
			sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass, IdentityToken: auth.IdentityToken}
		}
	}
	return sys, nil
}

func setPlatform(sys *types.SystemContext, p string) error {
	if p == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	if len(parts) > 3 || parts[0] == "" {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid platform %q: expected os[/arch[/variant]]", p))
	}
	sys.OSChoice = parts[0]
	if len(parts) > 1 {
		sys.ArchitectureChoice = parts[1]
	}
	if len(parts) > 2 {
		sys.VariantChoice = parts[2]
	}
	return nil
}

func platformString(sys *types.SystemContext) string {
	p := sys.OSChoice
	if p == "" {
		p = "linux"
	}
	if sys.ArchitectureChoice != "" {
		p += "/" + sys.ArchitectureChoice
	}
	return p
}

// DecodeAuth decodes an X-Registry-Auth header (base64url JSON, with or
// without padding, or standard base64 from old clients). An empty header is
// nil.
func DecodeAuth(h string) (*mregistry.AuthConfig, error) {
	if h == "" {
		return nil, nil
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid X-Registry-Auth header", err)
	}
	var cfg mregistry.AuthConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "invalid X-Registry-Auth header", err)
	}
	return &cfg, nil
}
