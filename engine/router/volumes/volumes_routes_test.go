package volumes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/internal/filters"
	bvolume "github.com/berthd/berth/volume"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

var _ Backend = (*bvolume.Service)(nil)

// fake is a hand-written backend that remembers what it was asked.
type fake struct {
	vols      map[string]*volume.Volume
	lastForce bool
	lastF     filters.Args
	created   volume.CreateRequest
}

func (f *fake) Create(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error) {
	f.created = req
	if req.Name == "bad/name" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("create bad/name: invalid")
	}
	v := &volume.Volume{Name: req.Name, Driver: "local", Scope: "local", Labels: req.Labels}
	f.vols[req.Name] = v
	return v, nil
}

func (f *fake) Get(ctx context.Context, name string) (*volume.Volume, error) {
	if v, ok := f.vols[name]; ok {
		return v, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("get " + name + ": no such volume")
}

func (f *fake) List(ctx context.Context, fl filters.Args) ([]*volume.Volume, []string, error) {
	f.lastF = fl
	if err := fl.Validate("name", "label", "dangling", "driver"); err != nil {
		return nil, nil, err
	}
	var out []*volume.Volume
	for _, v := range f.vols {
		out = append(out, v)
	}
	return out, nil, nil
}

func (f *fake) Remove(ctx context.Context, name string, force bool) error {
	f.lastForce = force
	if name == "busy" {
		return errdefs.ErrConflict.WithMessage("remove busy: volume is in use - [abc]")
	}
	if _, ok := f.vols[name]; !ok && !force {
		return errdefs.ErrNotFound.WithMessage("get " + name + ": no such volume")
	}
	delete(f.vols, name)
	return nil
}

func (f *fake) Prune(ctx context.Context, fl filters.Args) (*volume.PruneReport, error) {
	f.lastF = fl
	return &volume.PruneReport{VolumesDeleted: []string{"x"}, SpaceReclaimed: 42}, nil
}

func serve(t *testing.T, f *fake, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	srv := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(f))
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	return rec
}

func TestCreate(t *testing.T) {
	f := &fake{vols: map[string]*volume.Volume{}}
	rec := serve(t, f, "POST", "/v1.56/volumes/create", `{"Name":"myvol","Driver":"local","DriverOpts":{"type":"tmpfs","device":"tmpfs"},"Labels":{"a":"b"}}`)
	assert.Equal(t, rec.Code, http.StatusCreated, rec.Body.String())
	var v volume.Volume
	assert.NilError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	assert.Equal(t, v.Name, "myvol")
	assert.DeepEqual(t, f.created.DriverOpts, map[string]string{"type": "tmpfs", "device": "tmpfs"})

	rec = serve(t, f, "POST", "/volumes/create", `{"Name":"bad/name"}`)
	assert.Equal(t, rec.Code, http.StatusBadRequest)
	assert.Check(t, is.Contains(rec.Body.String(), `"message":"create bad/name: invalid"`))

	rec = serve(t, f, "POST", "/volumes/create", ``)
	assert.Equal(t, rec.Code, http.StatusBadRequest)
	rec = serve(t, f, "POST", "/volumes/create", `{"Name":`)
	assert.Equal(t, rec.Code, http.StatusBadRequest)
	rec = serve(t, f, "POST", "/volumes/create", `{"Name":"c","ClusterVolumeSpec":{}}`)
	assert.Equal(t, rec.Code, http.StatusServiceUnavailable)
}

func TestGetAndList(t *testing.T) {
	f := &fake{vols: map[string]*volume.Volume{"v1": {Name: "v1", Driver: "local"}}}
	rec := serve(t, f, "GET", "/v1.41/volumes/v1", "")
	assert.Equal(t, rec.Code, http.StatusOK)
	assert.Check(t, is.Contains(rec.Body.String(), `"Name":"v1"`))
	assert.Check(t, !strings.Contains(rec.Body.String(), "UsageData"))

	rec = serve(t, f, "GET", "/volumes/nosuch", "")
	assert.Equal(t, rec.Code, http.StatusNotFound)
	assert.Equal(t, strings.TrimSpace(rec.Body.String()), `{"message":"get nosuch: no such volume"}`)

	rec = serve(t, f, "GET", `/volumes?filters={"label":{"a=b":true},"dangling":{"true":true}}`, "")
	assert.Equal(t, rec.Code, http.StatusOK, rec.Body.String())
	var lr volume.ListResponse
	assert.NilError(t, json.Unmarshal(rec.Body.Bytes(), &lr))
	assert.Equal(t, len(lr.Volumes), 1)
	assert.DeepEqual(t, f.lastF.Get("label"), []string{"a=b"})
	assert.DeepEqual(t, f.lastF.Get("dangling"), []string{"true"})

	f.vols = map[string]*volume.Volume{}
	rec = serve(t, f, "GET", "/volumes", "")
	assert.Equal(t, strings.TrimSpace(rec.Body.String()), `{"Volumes":[],"Warnings":null}`)

	rec = serve(t, f, "GET", `/volumes?filters={"bogus":{"x":true}}`, "")
	assert.Equal(t, rec.Code, http.StatusBadRequest)
	rec = serve(t, f, "GET", `/volumes?filters=notjson`, "")
	assert.Equal(t, rec.Code, http.StatusBadRequest)
}

func TestDelete(t *testing.T) {
	f := &fake{vols: map[string]*volume.Volume{"v1": {Name: "v1"}}}
	rec := serve(t, f, "DELETE", "/volumes/v1", "")
	assert.Equal(t, rec.Code, http.StatusNoContent)
	assert.Check(t, !f.lastForce)
	rec = serve(t, f, "DELETE", "/volumes/v1", "")
	assert.Equal(t, rec.Code, http.StatusNotFound)
	rec = serve(t, f, "DELETE", "/volumes/v1?force=1", "")
	assert.Equal(t, rec.Code, http.StatusNoContent)
	assert.Check(t, f.lastForce)
	rec = serve(t, f, "DELETE", "/volumes/busy?force=true", "")
	assert.Equal(t, rec.Code, http.StatusConflict)
	assert.Check(t, is.Contains(rec.Body.String(), "volume is in use - [abc]"))
}

func TestPruneVersions(t *testing.T) {
	f := &fake{vols: map[string]*volume.Volume{}}
	rec := serve(t, f, "POST", `/v1.41/volumes/prune`, "")
	assert.Equal(t, rec.Code, http.StatusOK)
	// API < 1.42 prunes named volumes too
	assert.DeepEqual(t, f.lastF.Get("all"), []string{"true"})
	assert.Equal(t, strings.TrimSpace(rec.Body.String()), `{"VolumesDeleted":["x"],"SpaceReclaimed":42}`)

	serve(t, f, "POST", `/v1.42/volumes/prune`, "")
	assert.Check(t, !f.lastF.Has("all"))
	serve(t, f, "POST", `/volumes/prune?filters={"all":["true"],"label!":["keep"]}`, "")
	assert.DeepEqual(t, f.lastF.Get("all"), []string{"true"})
	assert.DeepEqual(t, f.lastF.Get("label!"), []string{"keep"})
}

func TestUpdateIsSwarmOnly(t *testing.T) {
	rec := serve(t, &fake{}, "PUT", "/volumes/v1?version=1", "{}")
	assert.Equal(t, rec.Code, http.StatusServiceUnavailable)
}
