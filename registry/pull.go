package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry/imagewire"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	mregistry "github.com/moby/moby/api/types/registry"
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
	reg, err := s.registryOpts(reference.Domain(named), opts.Auth)
	if err != nil {
		return err
	}
	if err := setPlatform(&reg, opts.Platform); err != nil {
		return err
	}
	// one copier (helper process) for the manifest and the copy
	copier, err := s.d.Transfers.Begin(ctx)
	if err != nil {
		return err
	}
	defer copier.End()
	req := s.request(imagewire.OpRemote)
	req.Registry, req.Ref, req.Familiar = reg, named.String(), familiar(named)
	res, err := run(copier, req, nil)
	if err != nil {
		return err
	}
	remote := res.Remote
	if remote == nil || remote.Top.Validate() != nil {
		return errors.New("pull: the registry's answer is missing")
	}
	top := remote.Top

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
		for _, l := range remote.Layers {
			id := ShortID(l.String())
			if !seen[id] {
				seen[id] = true
				_ = out.Send(jsonstream.Message{Status: "Pulling fs layer", Progress: &jsonstream.Progress{}, ID: id})
			}
		}
		req.Op = imagewire.OpPull
		req.DestName = named.String()
		if remote.Config.Validate() == nil {
			// the ID containers/image gives a schema 2 or OCI image; set,
			// so the names can be owed to it before it exists
			req.DestID = remote.Config.Encoded()
			names := []string{named.String()}
			if !isCanonical && digestName != nil {
				names = append(names, digestName.String())
			}
			paid, err := s.owe(req.DestID, names)
			if err != nil {
				return err
			}
			defer paid()
		}
		res, err := run(copier, req, out)
		if err != nil {
			return err
		}
		if newID = res.ImageID; !fullIDRe.MatchString(newID) {
			return fmt.Errorf("pull: the copy named no image (%q)", newID)
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

// registryOpts is how to reach one registry: TLS per dockerd's
// insecure-registry rules, and credentials from the request (else the
// daemon's auth file, which every copy request names).
func (s *Service) registryOpts(domain string, auth *mregistry.AuthConfig) (imagewire.Registry, error) {
	reg := imagewire.Registry{Insecure: s.insecure.isInsecure(domain)}
	if auth != nil {
		user, pass := auth.Username, auth.Password
		if user == "" && auth.Auth != "" {
			b, err := base64.StdEncoding.DecodeString(auth.Auth)
			if err != nil {
				return reg, errdefs.ErrInvalidArgument.WithMessage("invalid X-Registry-Auth: auth is not base64")
			}
			user, pass, _ = strings.Cut(string(b), ":")
		}
		switch {
		case auth.RegistryToken != "":
			reg.RegistryToken = auth.RegistryToken
		case user != "" || auth.IdentityToken != "":
			reg.Username, reg.Password, reg.IdentityToken = user, pass, auth.IdentityToken
		}
	}
	return reg, nil
}

func setPlatform(reg *imagewire.Registry, p string) error {
	if p == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	if len(parts) > 3 || parts[0] == "" {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid platform %q: expected os[/arch[/variant]]", p))
	}
	reg.OS = parts[0]
	if len(parts) > 1 {
		reg.Arch = parts[1]
	}
	if len(parts) > 2 {
		reg.Variant = parts[2]
	}
	return nil
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
