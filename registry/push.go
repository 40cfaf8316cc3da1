package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/berthd/berth/registry/imagewire"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	mregistry "github.com/moby/moby/api/types/registry"
)

// PushOptions are the parameters of POST /images/{name}/push.
type PushOptions struct {
	Name string // repository, possibly with a tag
	Tag  string // empty: every tag of the repository
	Auth *mregistry.AuthConfig
}

// pushAux is the aux message that ends a pushed tag (the CLI reads it).
type pushAux struct {
	Tag    string
	Digest string
	Size   int
}

// Push pushes local tags of a repository to its registry. An unknown
// local image is ErrNotFound, a malformed name ErrInvalidArgument (before
// start); registry errors go into the stream.
func (s *Service) Push(ctx context.Context, opts PushOptions, start StartFunc) error {
	named, err := reference.ParseNormalizedNamed(opts.Name)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(refError(err))
	}
	if opts.Tag != "" {
		if named, err = reference.WithTag(reference.TrimNamed(named), opts.Tag); err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("invalid tag format")
		}
	}
	var tags []reference.NamedTagged
	if t, ok := named.(reference.NamedTagged); ok {
		if _, err := s.lookupName(t.String()); err != nil {
			return errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + reference.FamiliarString(t))
		}
		tags = append(tags, t)
	} else {
		imgs, err := s.store.Images()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, n := range img.Names {
				if sn, ok := storedName(n); ok && sn.Name() == named.Name() {
					if t, ok := sn.(reference.NamedTagged); ok {
						tags = append(tags, t)
					}
				}
			}
		}
		if len(tags) == 0 {
			return errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + reference.FamiliarName(named))
		}
		sort.Slice(tags, func(i, j int) bool { return tags[i].Tag() < tags[j].Tag() })
	}
	reg, err := s.registryOpts(reference.Domain(named), opts.Auth)
	if err != nil {
		return err
	}
	out := start()
	_ = out.Send(jsonstream.Message{Status: "The push refers to repository [" + named.Name() + "]"})
	for _, t := range tags {
		if err := s.pushTag(ctx, t, reg, out); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) pushTag(ctx context.Context, t reference.NamedTagged, reg imagewire.Registry, out Output) error {
	img, err := s.lookupName(t.String())
	if err != nil {
		return noSuchImage(reference.FamiliarString(t))
	}
	if in, err := s.info(img); err == nil {
		for i := len(in.spec.RootFS.DiffIDs) - 1; i >= 0; i-- {
			_ = out.Send(jsonstream.Message{Status: "Preparing", Progress: &jsonstream.Progress{}, ID: ShortID(in.spec.RootFS.DiffIDs[i].String())})
		}
	}
	req := s.request(imagewire.OpPush)
	req.Registry, req.Ref, req.Familiar, req.SourceID = reg, t.String(), familiar(t), img.ID
	res, err := s.transfer(ctx, req, out)
	if err != nil {
		return err
	}
	dgst := res.ManifestDigest
	if dgst.Validate() != nil {
		return fmt.Errorf("push: the copy gave no manifest digest (%q)", dgst)
	}
	if dn, err := reference.WithDigest(reference.TrimNamed(t), dgst); err == nil {
		_ = s.store.AddNames(img.ID, []string{dn.String()})
	}
	_ = out.Send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", t.Tag(), dgst, res.ManifestSize)})
	aux, _ := json.Marshal(pushAux{Tag: t.Tag(), Digest: dgst.String(), Size: res.ManifestSize})
	rm := json.RawMessage(aux)
	_ = out.Send(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &rm})
	s.publish(events.ActionPush, familiar(t), s.eventAttrs(img, reference.FamiliarName(t)))
	return nil
}

// Login checks credentials against a registry, as POST /auth does. Wrong
// credentials are ErrUnauthenticated with the registry's answer.
func (s *Service) Login(ctx context.Context, auth mregistry.AuthConfig) (*mregistry.AuthResponse, error) {
	host := registryHost(auth.ServerAddress)
	req := s.request(imagewire.OpLogin)
	req.Registry.Insecure = s.insecure.isInsecure(host)
	req.Host, req.Username, req.Password = host, auth.Username, auth.Password
	if _, err := s.transfer(ctx, req, nil); err != nil {
		return nil, err
	}
	return &mregistry.AuthResponse{Status: "Login Succeeded"}, nil
}

// registryHost turns a login server address ("https://index.docker.io/v1/",
// "127.0.0.1:5000", "http://host:5000/v2/") into the registry host.
func registryHost(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "docker.io"
	}
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil {
			addr = u.Host
		}
	}
	addr, _, _ = strings.Cut(addr, "/")
	switch addr {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return addr
}
