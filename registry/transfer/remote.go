package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/distribution/registry/api/errcode"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	creference "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry/imagewire"
)

// toContainers is a reference as containers/image names it.
func toContainers(named reference.Named) (creference.Named, error) {
	ref, err := creference.Parse(named.String())
	if err != nil {
		return nil, err
	}
	cn, ok := ref.(creference.Named)
	if !ok {
		return nil, fmt.Errorf("reference %s has no name", named)
	}
	return cn, nil
}

// dockerRef is the registry reference of a request's Ref.
func dockerRef(req imagewire.Request) (reference.Named, types.ImageReference, error) {
	n, err := named(req)
	if err != nil {
		return nil, nil, err
	}
	cn, err := toContainers(n)
	if err != nil {
		return nil, nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	ref, err := docker.NewReference(cn)
	if err != nil {
		return nil, nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	return n, ref, nil
}

// remote fetches the top-level manifest of req.Ref (its digest is the one
// Docker reports and records) and the layers of the instance for the
// request's platform, and the platforms the manifest offers; failures are
// classified like dockerd's.
func (l *Local) remote(ctx context.Context, req imagewire.Request) (*imagewire.Remote, error) {
	n, ref, err := dockerRef(req)
	if err != nil {
		return nil, err
	}
	sys := systemContext(req)
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, pullError(err, req, n)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, pullError(err, req, n)
	}
	out := &imagewire.Remote{
		Descriptor: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw))},
		Platforms:  []ocispec.Platform{},
	}
	if out.Top, err = manifest.Digest(raw); err != nil {
		return nil, err
	}
	if c, ok := n.(reference.Canonical); ok {
		out.Top = c.Digest()
	}
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return nil, err
		}
		for _, d := range list.Instances() {
			if inst, err := list.Instance(d); err == nil && inst.ReadOnly.Platform != nil {
				out.Platforms = append(out.Platforms, *inst.ReadOnly.Platform)
			}
		}
		if req.Platforms {
			return out, nil // what a distribution inspect wants: no instance is chosen
		}
		inst, err := list.ChooseInstance(sys)
		if err != nil {
			return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no matching manifest for %s in the manifest list entries: %v", platformString(sys), err))
		}
		if raw, mt, err = src.GetManifest(ctx, &inst); err != nil {
			return nil, pullError(err, req, n)
		}
	}
	m, err := manifest.FromBlob(raw, mt)
	if err != nil {
		return nil, err
	}
	chosen := sys.OSChoice != "" || sys.ArchitectureChoice != ""
	if !manifest.MIMETypeIsMultiImage(out.Descriptor.MediaType) && (chosen || req.Platforms) {
		// a missing config is the copy's to report
		if p, err := configPlatform(ctx, src, m); err == nil && p.OS != "" {
			out.Platforms = append(out.Platforms, p)
			if chosen {
				if err := checkPlatform(p, sys, req, n); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, li := range m.LayerInfos() {
		if !li.EmptyLayer {
			out.Layers = append(out.Layers, li.Digest)
		}
	}
	out.Config = m.ConfigInfo().Digest
	return out, nil
}

// configPlatform reads the platform of a single-platform image's config.
func configPlatform(ctx context.Context, src types.ImageSource, m manifest.Manifest) (ocispec.Platform, error) {
	var p ocispec.Platform
	blob, _, err := src.GetBlob(ctx, m.ConfigInfo(), none.NoCache)
	if err != nil {
		return p, err
	}
	defer blob.Close()
	err = json.NewDecoder(blob).Decode(&p)
	return p, err
}

// checkPlatform refuses a single-platform image that is not the platform
// the client asked for, as dockerd does (containers/image only warns).
func checkPlatform(p ocispec.Platform, sys *types.SystemContext, req imagewire.Request, n reference.Named) error {
	wantOS, wantArch := sys.OSChoice, sys.ArchitectureChoice
	if (wantOS != "" && wantOS != p.OS) || (wantArch != "" && wantArch != p.Architecture) {
		actual := p.OS + "/" + p.Architecture
		if p.Variant != "" {
			actual += "/" + p.Variant
		}
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)", familiar(req, n), actual, platformString(sys)))
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

// pullError classifies a registry error with dockerd's words.
func pullError(err error, req imagewire.Request, n reference.Named) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ec errcode.Error
	if errors.As(err, &ec) {
		switch ec.Code.Descriptor().Value {
		case "MANIFEST_UNKNOWN":
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("manifest for %s not found: %s", familiar(req, n), codeText(ec)))
		case "NAME_UNKNOWN":
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("repository %s not found: %s", reference.FamiliarName(n), codeText(ec)))
		case "DENIED":
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s", reference.FamiliarName(n), codeText(ec)))
		}
	}
	var unauth docker.ErrUnauthorizedForCredentials
	isUnauth := errors.As(err, &unauth) || (errors.As(err, &ec) && ec.Code.Descriptor().Value == "UNAUTHORIZED")
	if isUnauth && reference.Domain(n) == "docker.io" {
		// Docker Hub answers an anonymous pull of a repository that does not
		// exist (or is private) with 401; dockerd words it as a 404.
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s", reference.FamiliarName(n), registryMessage(err)))
	}
	if isUnauth {
		// Not 401: the docker CLI answers a 401 with an interactive login
		// prompt, and dockerd does not send one for a pull either.
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("pull access denied for %s: %s", familiar(req, n), registryMessage(err)))
	}
	if isUnreachable(err) {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("registry %s is unreachable: %v", reference.Domain(n), err))
	}
	return err
}

func pushError(err error, req imagewire.Request, n reference.Named) error {
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("push access denied for %s: %s", familiar(req, n), registryMessage(err)))
	}
	if isUnreachable(err) {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("registry %s is unreachable: %v", reference.Domain(n), err))
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

// login checks credentials against a registry, as POST /auth does. Wrong
// credentials are ErrUnauthenticated with the registry's answer.
func (l *Local) login(ctx context.Context, req imagewire.Request) error {
	sys := systemContext(imagewire.Request{System: req.System, Registry: imagewire.Registry{Insecure: req.Registry.Insecure}})
	err := docker.CheckAuth(ctx, sys, req.Username, req.Password, req.Host)
	if err == nil {
		return nil
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return errdefs.ErrUnauthenticated.WithMessage(fmt.Sprintf("login attempt to %s/v2/ failed with status: 401 Unauthorized: %s", req.Host, registryMessage(err)))
	}
	if isUnreachable(err) {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("registry %s is unreachable: %v", req.Host, err))
	}
	return err
}
