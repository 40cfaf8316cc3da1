// Package transfer makes the copies of berth's image service with
// go.podman.io/image/v5 (containers/image): pulls and pushes, loads and
// saves of archives, imports of OCI layouts, and registry logins, one
// imagewire.Request each. berthd does not link it: it runs in the helper
// berth-imagecopy (cmd/berth-imagecopy), one process per operation, on the
// same image store (go.podman.io/storage is safe for several processes).
// Package registry decides what to copy and names the results; this
// package only copies, and classifies what registries answer with
// dockerd's words.
package transfer

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry/imagewire"
)

// Local makes copies into and out of one image store, in this process.
type Local struct {
	store storage.Store
}

// New returns a Local on store.
func New(store storage.Store) *Local { return &Local{store: store} }

// OpenStore opens the image store a request names.
func OpenStore(st imagewire.Store) (storage.Store, error) {
	if st.GraphRoot == "" || st.RunRoot == "" {
		return nil, errors.New("transfer: the store's graph and run roots are required")
	}
	s, err := storage.GetStore(storage.StoreOptions{GraphRoot: st.GraphRoot, RunRoot: st.RunRoot, GraphDriverName: st.Driver})
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	return s, nil
}

// Do runs one request; progress messages go to out (which may be nil) as
// they come. Errors carry their errdefs class.
func (l *Local) Do(ctx context.Context, req imagewire.Request, out func(jsonstream.Message)) (*imagewire.Result, error) {
	switch req.Op {
	case imagewire.OpRemote:
		r, err := l.remote(ctx, req)
		if err != nil {
			return nil, err
		}
		return &imagewire.Result{Remote: r}, nil
	case imagewire.OpPull:
		id, err := l.pull(ctx, req, out)
		if err != nil {
			return nil, err
		}
		return &imagewire.Result{ImageID: id}, nil
	case imagewire.OpPush:
		return l.push(ctx, req, out)
	case imagewire.OpListArchive:
		items, err := l.listArchive(ctx, req)
		if err != nil {
			return nil, err
		}
		return &imagewire.Result{Items: items}, nil
	case imagewire.OpLoad:
		return &imagewire.Result{}, l.load(ctx, req, out)
	case imagewire.OpImportLayout:
		id, err := l.importLayout(ctx, req)
		if err != nil {
			return nil, err
		}
		return &imagewire.Result{ImageID: id}, nil
	case imagewire.OpSave:
		return &imagewire.Result{}, l.save(ctx, req)
	case imagewire.OpLogin:
		return &imagewire.Result{}, l.login(ctx, req)
	}
	return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("transfer: unknown op %q", req.Op))
}

// systemContext is containers/image's configuration for a request: berth's
// own files, and for a registry request the registry's TLS rule, the
// request's credentials (else the auth file's) and platform.
func systemContext(req imagewire.Request) *types.SystemContext {
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    req.System.RegistriesConf,
		SystemRegistriesConfDirPath: req.System.RegistriesConfDir,
		RegistriesDirPath:           req.System.RegistriesDir,
		BlobInfoCacheDir:            req.System.BlobInfoCacheDir,
		BigFilesTemporaryDir:        req.System.TmpDir,
		DockerRegistryUserAgent:     req.System.UserAgent,
		DockerCompatAuthFilePath:    req.System.AuthFile,
	}
	r := req.Registry
	if r.Insecure {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	switch {
	case r.RegistryToken != "":
		sys.DockerBearerRegistryToken = r.RegistryToken
	case r.Username != "" || r.IdentityToken != "":
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: r.Username, Password: r.Password, IdentityToken: r.IdentityToken}
	}
	sys.OSChoice, sys.ArchitectureChoice, sys.VariantChoice = r.OS, r.Arch, r.Variant
	return sys
}

// storeContext is the configuration for the store's side of a copy: no
// registry, no credentials.
func storeContext(req imagewire.Request) *types.SystemContext {
	return systemContext(imagewire.Request{System: req.System})
}

// policyContext accepts every image, as dockerd does (no signature
// policy).
func policyContext() (*signature.PolicyContext, error) {
	return signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{
		signature.NewPRInsecureAcceptAnything(),
	}})
}

// named parses a request's fully qualified reference.
func named(req imagewire.Request) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(req.Ref)
	if err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	return n, nil
}

// familiar is how errors name the request's reference.
func familiar(req imagewire.Request, n reference.Named) string {
	if req.Familiar != "" {
		return req.Familiar
	}
	return reference.FamiliarString(n)
}

// InProcess runs the requests in this process, on the store each names
// (a store already open in the process is shared: go.podman.io/storage
// keeps one per graph root). The helper's way, without the helper: for
// tests.
type InProcess struct{}

// Begin returns a copier whose requests run under ctx.
func (InProcess) Begin(ctx context.Context) (imagewire.Copier, error) {
	return inProcess{ctx: ctx}, nil
}

type inProcess struct{ ctx context.Context }

func (c inProcess) Do(req imagewire.Request, out func(jsonstream.Message)) (*imagewire.Result, error) {
	store, err := OpenStore(req.Store)
	if err != nil {
		return nil, err
	}
	return New(store).Do(c.ctx, req, out)
}

func (inProcess) End() error { return nil }
