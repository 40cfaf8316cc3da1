package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type recorder struct {
	mu  sync.Mutex
	msg []events.Message
}

func (r *recorder) Publish(m events.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msg = append(r.msg, m)
}

// actions lists "action name" of the recorded events.
func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msg {
		out = append(out, string(m.Action)+" "+m.Actor.ID)
	}
	return out
}

type env struct {
	svc    *Service
	db     *store.DB
	root   string
	events *recorder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "berth.db"))
	assert.NilError(t, err)
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, root: filepath.Join(dir, "volumes"), events: &recorder{}}
	e.svc, err = New(Deps{Root: e.root, DB: db, Events: e.events})
	assert.NilError(t, err)
	return e
}

// reopen builds a new service on the same store, as a daemon restart does.
func (e *env) reopen(t *testing.T) {
	t.Helper()
	var err error
	e.svc, err = New(Deps{Root: e.root, DB: e.db, Events: e.events})
	assert.NilError(t, err)
}

var ctx = context.Background()

func TestNewChecksDeps(t *testing.T) {
	_, err := New(Deps{})
	assert.ErrorContains(t, err, "Root is required")
	_, err = New(Deps{Root: t.TempDir()})
	assert.ErrorContains(t, err, "DB is required")
}

func TestCreateGet(t *testing.T) {
	e := newEnv(t)
	v, err := e.svc.Create(ctx, CreateRequest{Name: "myvol", Labels: map[string]string{"a": "b"}})
	assert.NilError(t, err)
	assert.Equal(t, v.Name, "myvol")
	assert.Equal(t, v.Driver, "local")
	assert.Equal(t, v.Scope, "local")
	assert.Equal(t, v.Mountpoint, filepath.Join(e.svc.Root(), "myvol", "_data"))
	assert.DeepEqual(t, v.Labels, map[string]string{"a": "b"})
	assert.Check(t, v.CreatedAt != "")
	fi, err := os.Stat(v.Mountpoint)
	assert.NilError(t, err)
	assert.Check(t, fi.IsDir())

	// idempotent: the existing volume comes back, its labels unchanged
	again, err := e.svc.Create(ctx, CreateRequest{Name: "myvol", Driver: "local", Labels: map[string]string{"x": "y"}})
	assert.NilError(t, err)
	assert.DeepEqual(t, again, v)

	got, err := e.svc.Get(ctx, "myvol")
	assert.NilError(t, err)
	assert.DeepEqual(t, got, v)
	assert.DeepEqual(t, e.events.actions(), []string{"create myvol"})

	// it persists
	e.reopen(t)
	got, err = e.svc.Get(ctx, "myvol")
	assert.NilError(t, err)
	assert.DeepEqual(t, got, v)

	_, err = e.svc.Get(ctx, "nosuch")
	assert.Error(t, err, "get nosuch: no such volume")
	assert.Check(t, errdefs.IsNotFound(err))
}

func TestCreateAnonymous(t *testing.T) {
	e := newEnv(t)
	v, err := e.svc.Create(ctx, CreateRequest{Labels: map[string]string{"x": "1"}})
	assert.NilError(t, err)
	assert.Equal(t, len(v.Name), 64)
	assert.Check(t, strings.Trim(v.Name, "0123456789abcdef") == "")
	assert.DeepEqual(t, v.Labels, map[string]string{"x": "1", AnonymousLabel: ""})
	v2, err := e.svc.Create(ctx, CreateRequest{})
	assert.NilError(t, err)
	assert.Check(t, v.Name != v2.Name)
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		req   CreateRequest
		want  string
		class func(error) bool
	}{
		{CreateRequest{Name: "foo", Driver: "x"}, `create foo: error looking up volume plugin x: plugin "x" not found`, errdefs.IsNotFound},
		{CreateRequest{Name: "a"}, "create a: volume name is too short, names should be at least two alphanumeric characters", errdefs.IsInvalidArgument},
		{CreateRequest{Name: "a/b"}, `create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.IsInvalidArgument},
		{CreateRequest{Name: "../x"}, `create ../x: "../x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.IsInvalidArgument},
		{CreateRequest{Name: "myt", DriverOpts: map[string]string{"type": "tmpfs"}}, `create myt: missing required option: "device"`, errdefs.IsInvalidArgument},
		{CreateRequest{Name: "myt", DriverOpts: map[string]string{"device": "tmpfs"}}, `create myt: missing required option: "type"`, errdefs.IsInvalidArgument},
		{CreateRequest{Name: "myt", DriverOpts: map[string]string{"o": "size=1m"}}, `create myt: missing required option: "device"`, errdefs.IsInvalidArgument},
		{CreateRequest{Name: "myt2", DriverOpts: map[string]string{"foo": "bar"}}, `create myt2: invalid option: "foo"`, errdefs.IsInvalidArgument},
		{CreateRequest{Name: "myt3", DriverOpts: map[string]string{"size": "1g"}}, `create myt3: quota size requested but no quota support`, errdefs.IsInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			_, err := e.svc.Create(ctx, tc.req)
			assert.Error(t, err, tc.want)
			assert.Check(t, tc.class(err))
		})
	}
	entries, err := os.ReadDir(e.svc.Root())
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0), "nothing half-created")
	assert.Check(t, is.Len(e.events.actions(), 0))
}

func TestRefsAndRemove(t *testing.T) {
	e := newEnv(t)
	v, err := e.svc.CreateWithRef(ctx, CreateRequest{Name: "data"}, "c1")
	assert.NilError(t, err)
	assert.NilError(t, e.svc.Ref(ctx, "data", "c2"))

	err = e.svc.Remove(ctx, "data", false)
	assert.Error(t, err, "remove data: volume is in use - [c1, c2]")
	assert.Check(t, errdefs.IsConflict(err))
	// force does not override in-use, as in dockerd
	err = e.svc.Remove(ctx, "data", true)
	assert.Check(t, errdefs.IsConflict(err))

	// a held ref survives mount/unmount (a stopped container keeps its volume)
	p, err := e.svc.Mount(ctx, "data", "c1")
	assert.NilError(t, err)
	assert.Equal(t, p, v.Mountpoint)
	assert.NilError(t, e.svc.Unmount(ctx, "data", "c1"))
	assert.NilError(t, e.svc.Unmount(ctx, "data", "c1"), "idempotent")
	_, refs := e.svc.Usage(ctx, "data")
	assert.Equal(t, refs, 2)

	// refs persist across a restart
	e.reopen(t)
	assert.Check(t, errdefs.IsConflict(e.svc.Remove(ctx, "data", false)))

	assert.NilError(t, e.svc.Release(ctx, "data", "c1"))
	assert.NilError(t, e.svc.Release(ctx, "data", "c1"), "idempotent")
	assert.NilError(t, e.svc.Reconcile(ctx, func(id string) bool { return id != "c2" }))
	assert.NilError(t, e.svc.Remove(ctx, "data", false))
	_, err = os.Stat(filepath.Join(e.svc.Root(), "data"))
	assert.Check(t, os.IsNotExist(err), "gone from disk")

	err = e.svc.Remove(ctx, "data", false)
	assert.Error(t, err, "get data: no such volume")
	assert.Check(t, errdefs.IsNotFound(err))
	assert.NilError(t, e.svc.Remove(ctx, "data", true))
	assert.DeepEqual(t, e.events.actions(), []string{"create data", "mount data", "unmount data", "destroy data"})
}

func TestMountOnlyRef(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Create(ctx, CreateRequest{Name: "v1"})
	assert.NilError(t, err)
	_, err = e.svc.Mount(ctx, "v1", "c1")
	assert.NilError(t, err)
	_, err = e.svc.Mount(ctx, "v1", "c1")
	assert.NilError(t, err, "mounting twice counts once")
	assert.Error(t, e.svc.Remove(ctx, "v1", false), "remove v1: volume is in use - [c1]")
	assert.NilError(t, e.svc.Unmount(ctx, "v1", "c1"))
	// a ref taken only by Mount goes with Unmount
	assert.NilError(t, e.svc.Remove(ctx, "v1", false))

	_, err = e.svc.Mount(ctx, "nosuch", "c1")
	assert.Check(t, errdefs.IsNotFound(err))
	assert.NilError(t, e.svc.Unmount(ctx, "nosuch", "c1"))
}

func names(vs []*volume.Volume) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestListFilters(t *testing.T) {
	e := newEnv(t)
	for _, req := range []CreateRequest{
		{Name: "alpha", Labels: map[string]string{"tier": "db", "keep": ""}},
		{Name: "beta", Labels: map[string]string{"tier": "web"}},
		{Name: "gamma"},
	} {
		_, err := e.svc.Create(ctx, req)
		assert.NilError(t, err)
	}
	assert.NilError(t, e.svc.Ref(ctx, "beta", "c1"))

	cases := []struct {
		f    filters.Args
		want []string
	}{
		{filters.Args{}, []string{"alpha", "beta", "gamma"}},
		{filters.New([2]string{"name", "al"}), []string{"alpha"}},
		{filters.New([2]string{"name", "^[ab]"}), []string{"alpha", "beta"}},
		{filters.New([2]string{"label", "tier"}), []string{"alpha", "beta"}},
		{filters.New([2]string{"label", "tier=web"}), []string{"beta"}},
		{filters.New([2]string{"label", "tier"}, [2]string{"label", "keep"}), []string{"alpha"}},
		{filters.New([2]string{"dangling", "true"}), []string{"alpha", "gamma"}},
		{filters.New([2]string{"dangling", "false"}), []string{"beta"}},
		{filters.New([2]string{"dangling", "1"}, [2]string{"label", "tier"}), []string{"alpha"}},
		{filters.New([2]string{"driver", "local"}), []string{"alpha", "beta", "gamma"}},
		{filters.New([2]string{"driver", "other"}), []string{}},
	}
	for _, tc := range cases {
		vs, warnings, err := e.svc.List(ctx, tc.f)
		assert.NilError(t, err)
		assert.Check(t, warnings == nil)
		assert.DeepEqual(t, names(vs), tc.want)
	}
	_, _, err := e.svc.List(ctx, filters.New([2]string{"bogus", "1"}))
	assert.Error(t, err, "invalid filter 'bogus'")
	_, _, err = e.svc.List(ctx, filters.New([2]string{"dangling", "maybe"}))
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

func TestPrune(t *testing.T) {
	e := newEnv(t)
	anon, err := e.svc.Create(ctx, CreateRequest{})
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(anon.Mountpoint, "f"), make([]byte, 1000), 0o644))
	usedAnon, err := e.svc.CreateWithRef(ctx, CreateRequest{}, "c1")
	assert.NilError(t, err)
	for _, req := range []CreateRequest{
		{Name: "named"},
		{Name: "labelled", Labels: map[string]string{"keep": "yes"}},
		{Name: "withopts", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}},
	} {
		_, err := e.svc.Create(ctx, req)
		assert.NilError(t, err)
	}

	// default: anonymous, unused only
	rep, err := e.svc.Prune(ctx, filters.Args{})
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.VolumesDeleted, []string{anon.Name})
	assert.Equal(t, rep.SpaceReclaimed, uint64(1000))

	// all=true with label!: named ones too, but not the excluded, the used
	// or the options volume
	rep, err = e.svc.Prune(ctx, filters.New([2]string{"all", "true"}, [2]string{"label!", "keep=yes"}))
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.VolumesDeleted, []string{"named"})

	rep, err = e.svc.Prune(ctx, filters.New([2]string{"all", "1"}, [2]string{"label", "keep"}))
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.VolumesDeleted, []string{"labelled"})

	vs, _, err := e.svc.List(ctx, filters.Args{})
	assert.NilError(t, err)
	assert.DeepEqual(t, names(vs), []string{usedAnon.Name, "withopts"})

	_, err = e.svc.Prune(ctx, filters.New([2]string{"all", "maybe"}))
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, err = e.svc.Prune(ctx, filters.New([2]string{"dangling", "true"}))
	assert.Error(t, err, "invalid filter 'dangling'")

	var prunes []events.Message
	for _, m := range e.events.msg {
		if m.Action == events.ActionPrune {
			prunes = append(prunes, m)
		}
	}
	assert.Equal(t, len(prunes), 3)
	assert.Equal(t, prunes[0].Actor.Attributes["reclaimed"], "1000")
}

func TestUsageAndDiskUsage(t *testing.T) {
	e := newEnv(t)
	v, err := e.svc.CreateWithRef(ctx, CreateRequest{Name: "used"}, "c1")
	assert.NilError(t, err)
	assert.NilError(t, os.MkdirAll(filepath.Join(v.Mountpoint, "d"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(v.Mountpoint, "d", "a"), make([]byte, 300), 0o644))
	// a hard link is counted once
	assert.NilError(t, os.Link(filepath.Join(v.Mountpoint, "d", "a"), filepath.Join(v.Mountpoint, "b")))
	_, err = e.svc.Create(ctx, CreateRequest{Name: "withopts", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	assert.NilError(t, err)
	free, err := e.svc.Create(ctx, CreateRequest{Name: "free"})
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(free.Mountpoint, "x"), make([]byte, 50), 0o644))

	size, refs := e.svc.Usage(ctx, "used")
	dirEntry, _ := os.Stat(filepath.Join(v.Mountpoint, "d"))
	assert.Equal(t, size, 300+dirEntry.Size())
	assert.Equal(t, refs, 1)
	size, refs = e.svc.Usage(ctx, "nosuch")
	assert.Equal(t, size, int64(-1))
	assert.Equal(t, refs, 0)

	du, err := e.svc.DiskUsage(ctx)
	assert.NilError(t, err)
	assert.Equal(t, du.TotalCount, int64(2))
	assert.Equal(t, du.ActiveCount, int64(1))
	assert.Equal(t, du.TotalSize, 350+dirEntry.Size())
	assert.Equal(t, du.Reclaimable, int64(50))
	assert.Equal(t, du.Items[0].Name, "free")
	assert.DeepEqual(t, du.Items[0].UsageData, &volume.UsageData{Size: 50, RefCount: 0})
}

// TestConcurrentUse races creates, refs, releases and prunes: a volume that
// holds a ref when a prune looks at it must never be removed.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cid := "c" + string(rune('a'+i))
			for j := 0; j < 20; j++ {
				v, err := e.svc.CreateWithRef(ctx, CreateRequest{Name: "shared"}, cid)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := e.svc.Mount(ctx, v.Name, cid); err != nil {
					t.Error(err)
					return
				}
				assert.Check(t, e.svc.Unmount(ctx, v.Name, cid))
				assert.Check(t, e.svc.Release(ctx, v.Name, cid))
			}
		}(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; j < 20; j++ {
			_, err := e.svc.Prune(ctx, filters.New([2]string{"all", "true"}))
			if err != nil && !errdefs.IsConflict(err) {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	// whatever survived is consistent: no refs left, data dir present
	if v, err := e.svc.Get(ctx, "shared"); err == nil {
		_, refs := e.svc.Usage(ctx, "shared")
		assert.Equal(t, refs, 0)
		_, err := os.Stat(v.Mountpoint)
		assert.NilError(t, err)
	}
}
