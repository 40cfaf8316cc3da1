package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	mregistry "github.com/moby/moby/api/types/registry"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
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
	sys, err := s.registryContext(reference.Domain(named), opts.Auth)
	if err != nil {
		return err
	}
	out := start()
	_ = out.Send(jsonstream.Message{Status: "The push refers to repository [" + named.Name() + "]"})
	for _, t := range tags {
		if err := s.pushTag(ctx, t, sys, out); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) pushTag(ctx context.Context, t reference.NamedTagged, sys *types.SystemContext, out Output) error {
	img, err := s.lookupName(t.String())
	if err != nil {
		return noSuchImage(reference.FamiliarString(t))
	}
	if in, err := s.info(img); err == nil {
		for i := len(in.spec.RootFS.DiffIDs) - 1; i >= 0; i-- {
			_ = out.Send(jsonstream.Message{Status: "Preparing", Progress: &jsonstream.Progress{}, ID: ShortID(in.spec.RootFS.DiffIDs[i].String())})
		}
	}
	src, err := istorage.Transport.NewStoreReference(s.store, nil, img.ID)
	if err != nil {
		return err
	}
	cn, err := toContainers(t)
	if err != nil {
		return err
	}
	dest, err := docker.NewReference(cn)
	if err != nil {
		return err
	}
	pc, err := s.policyContext()
	if err != nil {
		return err
	}
	defer pc.Destroy()
	pump := startPump(pushProgress, out, false)
	raw, err := copy.Image(ctx, pc, dest, src, &copy.Options{
		SourceCtx:        s.systemContext(),
		DestinationCtx:   sys,
		Progress:         pump.ch,
		ProgressInterval: progressInterval,
		ReportWriter:     io.Discard,
	})
	pump.stop()
	if err != nil {
		return s.pushError(err, t)
	}
	dgst, err := manifest.Digest(raw)
	if err != nil {
		return err
	}
	if dn, err := reference.WithDigest(reference.TrimNamed(t), dgst); err == nil {
		_ = s.store.AddNames(img.ID, []string{dn.String()})
	}
	_ = out.Send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", t.Tag(), dgst, len(raw))})
	aux, _ := json.Marshal(pushAux{Tag: t.Tag(), Digest: dgst.String(), Size: len(raw)})
	rm := json.RawMessage(aux)
	_ = out.Send(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &rm})
	s.publish(events.ActionPush, familiar(t), s.eventAttrs(img, reference.FamiliarName(t)))
	return nil
}

func (s *Service) pushError(err error, t reference.Named) error {
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("push access denied for %s: %s", familiar(t), registryMessage(err)))
	}
	if isUnreachable(err) {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("registry %s is unreachable: %v", reference.Domain(t), err))
	}
	return err
}

// Login checks credentials against a registry, as POST /auth does. Wrong
// credentials are ErrUnauthenticated with the registry's answer.
func (s *Service) Login(ctx context.Context, auth mregistry.AuthConfig) (*mregistry.AuthResponse, error) {
	host := registryHost(auth.ServerAddress)
	sys, err := s.registryContext(host, nil)
	if err != nil {
		return nil, err
	}
	if err := docker.CheckAuth(ctx, sys, auth.Username, auth.Password, host); err != nil {
		var unauth docker.ErrUnauthorizedForCredentials
		if errors.As(err, &unauth) {
			return nil, errdefs.ErrUnauthenticated.WithMessage(fmt.Sprintf("login attempt to %s/v2/ failed with status: 401 Unauthorized: %s", host, registryMessage(err)))
		}
		if isUnreachable(err) {
			return nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("registry %s is unreachable: %v", host, err))
		}
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
