// Package registry owns berth's images: pull, push, load, save, tag, remove,
// inspect, history and prune, with the layers in go.podman.io/storage
// (overlay driver). It also owns the containers' root filesystems (a
// writable storage layer on top of the image), which the runtime creates,
// mounts and removes through it. The copies themselves (containers/image:
// registries, archives) are made by Transfers, in berthd a helper process
// per operation (registry/transfer, registry/imagewire): this package decides
// what to copy, names the results and tells the client.
//
// Images are named in storage by their fully qualified references
// ("docker.io/library/busybox:latest", "docker.io/library/busybox@sha256:..")
// and shown the way Docker shows them ("busybox:latest"). Image IDs are the
// digest of the image config ("sha256:<64 hex>"), as Docker reports them.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"go.podman.io/storage"

	"github.com/berthd/berth/registry/imagewire"
)

// Transfers makes the copies: pulls, pushes, loads, saves, layout imports
// and logins (registry/transfer). Begin starts a copier for one
// operation's requests, made in turn under ctx: in berthd one helper
// process (imagewire.Helper), in tests this process
// (transfer.InProcess).
type Transfers interface {
	Begin(ctx context.Context) (imagewire.Copier, error)
}

// Publisher receives the image events (pull, load, tag, untag, delete, save, push).
type Publisher interface {
	Publish(m events.Message)
}

// Deps is everything the image service needs.
type Deps struct {
	// DataRoot holds the layer store (<DataRoot>/storage) and the service's
	// temporary files; ExecRoot holds the store's run state.
	DataRoot string
	ExecRoot string
	// InsecureRegistries are registries (host[:port] or CIDR) reached over
	// plain HTTP or without TLS verification, like dockerd's flag.
	// 127.0.0.0/8 and ::1 are always insecure, as in dockerd.
	InsecureRegistries []string
	// RegistryMirrors are dockerd's registry-mirrors: URLs of registries
	// tried in order for Docker Hub pulls before Docker Hub itself.
	RegistryMirrors []string
	// AuthFile is a ~/.docker/config.json-style file of registry
	// credentials used when a request brings none (optional; the default
	// is $HOME/.docker/config.json when it exists).
	AuthFile string
	Events   Publisher
	// Transfers makes the copies (required).
	Transfers Transfers
	// GraphDriver defaults to "overlay".
	GraphDriver string
	// MaxUploadSize caps what one load or import request may spool (0:
	// no cap; diskspace.Reserve of the disk is always kept free).
	MaxUploadSize int64
}

// Service is the image service. Its methods are safe for concurrent use.
type Service struct {
	d        Deps
	store    storage.Store
	tmpDir   string
	upload   UploadLimit
	insecure insecureSet
	// what every copy request carries: the store and berth's own
	// containers/image configuration
	storeOpts imagewire.Store
	system    imagewire.System

	// mu serialises changes of image names and deletions, so the checks
	// that precede them (conflicts, uniqueness) hold when they happen.
	mu sync.Mutex

	cacheMu sync.Mutex
	cache   map[string]*imageInfo // by image ID; images never change

	removals pendingRemovals // root filesystem removals answered before done
}

// New opens (creating when needed) the layer store.
func New(d Deps) (*Service, error) {
	if d.DataRoot == "" || d.ExecRoot == "" {
		return nil, errors.New("registry: DataRoot and ExecRoot are required")
	}
	if d.Events == nil || d.Transfers == nil {
		return nil, errors.New("registry: Events and Transfers are required")
	}
	if _, err := registriesConf(d.RegistryMirrors); err != nil {
		return nil, err // before the store exists: nothing to undo
	}
	if d.GraphDriver == "" {
		d.GraphDriver = "overlay"
	}
	insecure, err := parseInsecure(d.InsecureRegistries)
	if err != nil {
		return nil, err
	}
	// Spooled archives and unpacked OCI layouts of a daemon that died
	// mid-operation are of no use to anyone: start with an empty tmp.
	tmp := filepath.Join(d.DataRoot, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	if d.AuthFile == "" {
		if home, err := os.UserHomeDir(); err == nil {
			d.AuthFile = filepath.Join(home, ".docker", "config.json")
		}
	}
	storeOpts := imagewire.Store{
		GraphRoot: filepath.Join(d.DataRoot, "storage"),
		RunRoot:   filepath.Join(d.ExecRoot, "storage"),
		Driver:    d.GraphDriver,
	}
	store, err := storage.GetStore(storage.StoreOptions{
		GraphRoot:       storeOpts.GraphRoot,
		RunRoot:         storeOpts.RunRoot,
		GraphDriverName: storeOpts.Driver,
	})
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	s := &Service{
		d:         d,
		store:     store,
		tmpDir:    tmp,
		upload:    UploadLimit{Max: d.MaxUploadSize, Dir: tmp},
		insecure:  insecure,
		cache:     map[string]*imageInfo{},
		storeOpts: storeOpts,
	}
	// Point every configuration lookup of containers/image at files of our
	// own (which need not exist), so the host's /etc/containers settings
	// (mirrors, short-name aliases, signature policies) never change what a
	// Docker client asked for.
	conf := filepath.Join(d.DataRoot, "containers")
	if err := writeConfig(conf, d.RegistryMirrors); err != nil {
		return nil, err
	}
	s.system = imagewire.System{
		RegistriesConf:    filepath.Join(conf, "registries.conf"),
		RegistriesConfDir: filepath.Join(conf, "registries.conf.d"),
		RegistriesDir:     filepath.Join(conf, "registries.d"),
		BlobInfoCacheDir:  filepath.Join(conf, "cache"),
		TmpDir:            tmp,
		UserAgent:         "berth",
	}
	return s, nil
}

// Close releases the layer store. Mounted container root filesystems stay
// mounted (running containers keep using them).
func (s *Service) Close() error {
	s.removals.wait()
	_, err := s.store.Shutdown(false)
	if errors.Is(err, storage.ErrLayerUsedByContainer) {
		return nil // running containers keep their mounts across a daemon restart
	}
	return err
}

// request is a copy request of op on this service's store.
func (s *Service) request(op string) imagewire.Request {
	sys := s.system
	sys.AuthFile = s.d.AuthFile
	return imagewire.Request{Op: op, Store: s.storeOpts, System: sys}
}

// transfer runs req alone; progress goes to out (nil: dropped).
func (s *Service) transfer(ctx context.Context, req imagewire.Request, out Output) (*imagewire.Result, error) {
	c, err := s.d.Transfers.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.End()
	return run(c, req, out)
}

// run runs req on c; progress goes to out (nil: dropped).
func run(c imagewire.Copier, req imagewire.Request, out Output) (*imagewire.Result, error) {
	var send func(jsonstream.Message)
	if out != nil {
		send = func(m jsonstream.Message) { _ = out.Send(m) }
	}
	return c.Do(req, send)
}

func (s *Service) publish(action events.Action, id string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	s.d.Events.Publish(events.Message{
		Type:   events.ImageEventType,
		Action: action,
		Actor:  events.Actor{ID: id, Attributes: attrs},
	})
}

// writeEmptyConfig creates berth's own (empty) containers/image
// configuration: no mirrors, no aliases, no unqualified-search registries.
// ReloadMirrors replaces the registry mirrors (a daemon reload): pulls
// that start afterwards use the new ones (each copy reads the file
// afresh). Errors are the mirrors' (dockerd's words); the old mirrors
// then stay.
func (s *Service) ReloadMirrors(mirrors []string) error {
	return writeConfig(filepath.Dir(s.system.RegistriesConf), mirrors)
}

func writeConfig(dir string, mirrors []string) error {
	for _, d := range []string{dir, filepath.Join(dir, "registries.conf.d"), filepath.Join(dir, "registries.d")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	conf, err := registriesConf(mirrors)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "registries.conf"), []byte(conf), 0o600)
}

// registriesConf is containers/image's registries.conf for berth: nothing
// but dockerd's registry-mirrors, as mirrors of docker.io, which
// containers/image tries in order before docker.io itself on every pull.
// A mirror reached over http:// is marked insecure. Errors are dockerd's.
func registriesConf(mirrors []string) (string, error) {
	var b strings.Builder
	b.WriteString("# berth: Docker semantics; references are always fully qualified before they get here.\n")
	if len(mirrors) == 0 {
		return b.String(), nil
	}
	b.WriteString("[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n")
	for _, m := range mirrors {
		u, err := url.Parse(m)
		if err != nil {
			return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mirror: %q is not a valid URI: %v", m, err))
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mirror: unsupported scheme %q in %q", u.Scheme, m))
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mirror: path, query, or fragment at end of the URI %q", m))
		}
		loc := u.Host
		fmt.Fprintf(&b, "[[registry.mirror]]\nlocation = %q\ninsecure = %v\n", loc, u.Scheme == "http")
	}
	return b.String(), nil
}
