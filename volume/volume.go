// Package volume owns berth's local volumes: named and anonymous volumes
// under <data-root>/volumes/<name>/_data (the layout dockerd uses, so a
// volume's Mountpoint looks familiar), their metadata in the bbolt store,
// which containers reference them, the mounts of volumes created with
// type/device/o options (tmpfs, bind-style) and Docker's copy-up of image
// content into a new empty volume.
//
// The runtime creates a container's volumes at create (Create, Ref), mounts
// them at start (Mount, CopyUp), unmounts them at stop (Unmount) and lets
// them go at rm (Release, Remove for anonymous ones with -v). The volume API
// (engine/router/volumes) uses Create, Get, List, Remove and Prune.
//
// Errors are errdefs classes with dockerd's messages: ErrNotFound ("get x:
// no such volume"), ErrInvalidArgument (names, options, filters),
// ErrConflict ("remove x: volume is in use - [ids]").
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/store"
	"github.com/berthd/berth/volume/mounts"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
	"github.com/sirupsen/logrus"
)

// AnonymousLabel marks volumes created without a name; prune removes only
// those unless asked for all (dockerd's label, API >= 1.42).
const AnonymousLabel = "com.docker.volume.anonymous"

// DefaultDriver is the only driver: local directories under the data root.
const DefaultDriver = mounts.DefaultDriver

// Publisher receives volume events (events.Bus).
type Publisher interface {
	Publish(events.Message)
}

// Deps are what the service needs.
type Deps struct {
	// Root is <data-root>/volumes; created if missing.
	Root string
	// DB is the metadata store; the service keeps its table "volumes" there.
	DB *store.DB
	// Events receives create, destroy, mount, unmount and prune events.
	Events Publisher
}

// Service is the volume store. It is safe for concurrent use.
type Service struct {
	root   string
	table  *store.Table[record]
	events Publisher

	// mu serializes every change of a record and every kernel mount; the
	// work under it is short (a bbolt transaction, a mount syscall).
	mu      sync.Mutex
	pruning atomic.Bool
}

// record is the persistent state of one volume.
type record struct {
	Name      string
	Driver    string
	Labels    map[string]string `json:",omitempty"`
	Options   map[string]string `json:",omitempty"`
	CreatedAt time.Time
	Anonymous bool `json:",omitempty"`
	// Refs are the containers using the volume. A ref taken with Ref is
	// held until Release; one taken only by Mount goes with Unmount.
	Refs map[string]*ref `json:",omitempty"`
	// Mounted is set while an options volume (type/device/o) is mounted
	// on _data.
	Mounted bool `json:",omitempty"`
}

type ref struct {
	Held   bool `json:",omitempty"` // taken by Ref: survives Unmount
	Active bool `json:",omitempty"` // mounted for a running container
}

// New opens the volume store under d.Root. Options volumes left mounted by
// a daemon that died are unmounted unless a container still uses them.
func New(d Deps) (*Service, error) {
	switch {
	case d.Root == "":
		return nil, errors.New("volume: Root is required")
	case d.DB == nil:
		return nil, errors.New("volume: DB is required")
	case d.Events == nil:
		return nil, errors.New("volume: Events is required")
	}
	if err := os.MkdirAll(d.Root, 0o701); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	root, err := filepath.EvalSymlinks(d.Root)
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	t, err := store.NewTable[record](d.DB, "volumes")
	if err != nil {
		return nil, err
	}
	s := &Service{root: root, table: t, events: d.Events}
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root is the directory holding every volume.
func (s *Service) Root() string { return s.root }

func (s *Service) dataPath(name string) string { return filepath.Join(s.root, name, "_data") }

// CreateRequest is the body of POST /volumes/create.
type CreateRequest = volume.CreateRequest

// Create creates a local volume, or returns the existing volume of that
// name (dockerd's idempotent create: labels and options of the existing one
// are kept). An empty name creates an anonymous volume: a random 64-hex
// name and the label com.docker.volume.anonymous="".
//
// Errors: ErrInvalidArgument for an invalid name or options ("create x:
// invalid option: \"foo\""), ErrNotFound for a driver other than "local"
// ("create x: error looking up volume plugin d: plugin \"d\" not found").
func (s *Service) Create(ctx context.Context, req CreateRequest) (*volume.Volume, error) {
	v, _, err := s.create(ctx, req, "")
	return v, err
}

// CreateWithRef is Create plus Ref in one step, so that nothing (a prune)
// can remove the volume between them. The runtime uses it at container create.
func (s *Service) CreateWithRef(ctx context.Context, req CreateRequest, containerID string) (*volume.Volume, error) {
	v, _, err := s.create(ctx, req, containerID)
	return v, err
}

func (s *Service) create(ctx context.Context, req CreateRequest, containerID string) (*volume.Volume, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	name, anonymous := req.Name, req.Name == ""
	if anonymous {
		name = randomID()
	}
	if req.Driver != "" && req.Driver != DefaultDriver {
		return nil, false, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("create %s: error looking up volume plugin %s: plugin %q not found", name, req.Driver, req.Driver))
	}
	if err := mounts.ValidateName(name); err != nil {
		return nil, false, errclass.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("create %s", name), err)
	}
	if err := validateOpts(req.DriverOpts); err != nil {
		return nil, false, errclass.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("create %s", name), err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, err := s.table.Get(name); err == nil {
		if containerID != "" {
			rec.addRef(containerID, true)
			if err := s.table.Put(name, rec); err != nil {
				return nil, false, err
			}
		}
		return s.toAPI(rec), false, nil
	} else if !errdefs.IsNotFound(err) {
		return nil, false, err
	}

	labels := req.Labels
	if anonymous {
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	rec := &record{
		Name: name, Driver: DefaultDriver, Labels: labels, Options: req.DriverOpts,
		CreatedAt: time.Now(), Anonymous: anonymous,
	}
	if containerID != "" {
		rec.addRef(containerID, true)
	}
	// the volume root is only for the daemon; _data is what containers see
	if err := os.Mkdir(filepath.Join(s.root, name), 0o701); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, false, fmt.Errorf("create %s: error while creating volume root path '%s': %w", name, filepath.Join(s.root, name), err)
	}
	if err := os.MkdirAll(s.dataPath(name), 0o755); err != nil {
		_ = os.RemoveAll(filepath.Join(s.root, name))
		return nil, false, fmt.Errorf("create %s: error while creating volume data path '%s': %w", name, s.dataPath(name), err)
	}
	if err := s.table.Put(name, rec); err != nil {
		_ = os.RemoveAll(filepath.Join(s.root, name))
		return nil, false, err
	}
	s.publish("create", name, map[string]string{"driver": DefaultDriver})
	return s.toAPI(rec), true, nil
}

// Get returns the volume. Errors: ErrNotFound "get <name>: no such volume".
func (s *Service) Get(ctx context.Context, name string) (*volume.Volume, error) {
	rec, err := s.get(name)
	if err != nil {
		return nil, err
	}
	return s.toAPI(rec), nil
}

func (s *Service) get(name string) (*record, error) {
	rec, err := s.table.Get(name)
	if errdefs.IsNotFound(err) {
		return nil, errNoSuchVolume(name)
	}
	return rec, err
}

func errNoSuchVolume(name string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("get %s: no such volume", name))
}

// Remove deletes an unused volume and its data. A volume referenced by a
// container is refused, with or without force (as dockerd): ErrConflict
// "remove <name>: volume is in use - [<ids>]". force only makes a missing
// volume not an error; otherwise ErrNotFound "get <name>: no such volume".
func (s *Service) Remove(ctx context.Context, name string, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.get(name)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if len(rec.Refs) > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("remove %s: volume is in use - [%s]", name, joinIDs(rec.refIDs())))
	}
	return s.removeLocked(rec)
}

// removeLocked deletes the data and the record; call with mu held.
func (s *Service) removeLocked(rec *record) error {
	if rec.Mounted {
		if err := unmountData(s.dataPath(rec.Name)); err != nil {
			return fmt.Errorf("remove %s: %w", rec.Name, err)
		}
		rec.Mounted = false
	}
	dir := filepath.Join(s.root, rec.Name)
	// never follow a symlink out of the volume root
	if filepath.Dir(dir) != s.root || rec.Name == "" {
		return fmt.Errorf("remove %s: unable to remove a directory outside of the local volume root %s", rec.Name, s.root)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: error removing volume path '%s': %w", rec.Name, dir, err)
	}
	if err := s.table.Delete(rec.Name); err != nil {
		return err
	}
	s.publish("destroy", rec.Name, map[string]string{"driver": rec.Driver})
	return nil
}

// toAPI is the volume as the API shows it (without UsageData).
func (s *Service) toAPI(rec *record) *volume.Volume {
	return &volume.Volume{
		Name:       rec.Name,
		Driver:     rec.Driver,
		Mountpoint: s.dataPath(rec.Name),
		CreatedAt:  rec.CreatedAt.Format(time.RFC3339),
		Labels:     rec.Labels,
		Options:    rec.Options,
		Scope:      "local",
	}
}

func (s *Service) publish(action, name string, attrs map[string]string) {
	s.events.Publish(events.Message{
		Type:   events.VolumeEventType,
		Action: events.Action(action),
		Actor:  events.Actor{ID: name, Attributes: attrs},
		Scope:  "local",
	})
}

func (r *record) addRef(containerID string, held bool) *ref {
	if r.Refs == nil {
		r.Refs = map[string]*ref{}
	}
	rf := r.Refs[containerID]
	if rf == nil {
		rf = &ref{}
		r.Refs[containerID] = rf
	}
	if held {
		rf.Held = true
	}
	return rf
}

func (r *record) refIDs() []string {
	ids := make([]string, 0, len(r.Refs))
	for id := range r.Refs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (r *record) activeCount() int {
	n := 0
	for _, rf := range r.Refs {
		if rf.Active {
			n++
		}
	}
	return n
}

func joinIDs(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ", "
		}
		out += id
	}
	return out
}

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// restore reconciles options mounts with the kernel after a restart: a
// volume recorded as mounted but not mounted (the host rebooted) loses its
// active refs; one mounted with no active container is unmounted.
func (s *Service) restore() error {
	recs, bad, err := s.table.List()
	if err != nil {
		return err
	}
	for _, c := range bad {
		logrus.WithError(c.Err).Warnf("volume %s: unreadable metadata, ignored", c.ID)
	}
	for name, rec := range recs {
		if !needsMount(rec.Options) {
			continue
		}
		mounted := isMounted(s.dataPath(name))
		changed := false
		if !mounted && (rec.Mounted || rec.activeCount() > 0) {
			for _, rf := range rec.Refs {
				rf.Active = false
			}
			rec.dropUnheld()
			rec.Mounted, changed = false, true
		}
		if mounted && rec.activeCount() == 0 {
			if err := unmountData(s.dataPath(name)); err != nil {
				logrus.WithError(err).Warnf("volume %s: unmount stale mount", name)
				continue
			}
			rec.Mounted, changed = false, true
		}
		if mounted && rec.activeCount() > 0 && !rec.Mounted {
			rec.Mounted, changed = true, true
		}
		if changed {
			if err := s.table.Put(name, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropUnheld removes refs that are neither held nor active.
func (r *record) dropUnheld() {
	for id, rf := range r.Refs {
		if !rf.Held && !rf.Active {
			delete(r.Refs, id)
		}
	}
}

func pruneEvent(reclaimed uint64) events.Message {
	return events.Message{
		Type:   events.VolumeEventType,
		Action: events.ActionPrune,
		Actor:  events.Actor{Attributes: map[string]string{"reclaimed": strconv.FormatUint(reclaimed, 10)}},
		Scope:  "local",
	}
}
