package networks

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type fakeBackend struct {
	created  network.CreateRequest
	filters  filters.Args
	removed  string
	connects []string
}

func (f *fakeBackend) Networks(ctx context.Context, a filters.Args) ([]network.Summary, error) {
	f.filters = a
	return []network.Summary{{Network: network.Network{Name: "bridge", ID: "abc"}}}, nil
}
func (f *fakeBackend) InspectNetwork(ctx context.Context, id string) (network.Inspect, error) {
	if id != "abc" {
		return network.Inspect{}, errdefs.ErrNotFound.WithMessage("network " + id + " not found")
	}
	return network.Inspect{Network: network.Network{Name: "bridge", ID: "abc"}}, nil
}
func (f *fakeBackend) CreateNetwork(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	f.created = req
	if req.Name == "dup" {
		return network.CreateResponse{}, errdefs.ErrConflict.WithMessage("network with name dup already exists")
	}
	return network.CreateResponse{ID: "new"}, nil
}
func (f *fakeBackend) RemoveNetwork(ctx context.Context, id string) error {
	f.removed = id
	return nil
}
func (f *fakeBackend) PruneNetworks(ctx context.Context, a filters.Args) (network.PruneReport, error) {
	return network.PruneReport{NetworksDeleted: []string{"x"}}, nil
}
func (f *fakeBackend) ConnectContainer(ctx context.Context, n, c string, cfg *network.EndpointSettings) error {
	f.connects = append(f.connects, "connect "+n+" "+c)
	return nil
}
func (f *fakeBackend) DisconnectContainer(ctx context.Context, n, c string, force bool) error {
	f.connects = append(f.connects, "disconnect "+n+" "+c)
	return nil
}

func do(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	fb := &fakeBackend{}
	h := engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, New(fb, fb)).Handler()

	rec := do(t, h, "GET", `/v1.45/networks?filters={"label":{"a=b":true}}`, "")
	assert.Check(t, is.Equal(rec.Code, 200))
	assert.Check(t, fb.filters.Has("label"))
	assert.Check(t, is.Contains(rec.Body.String(), `"Name":"bridge"`))

	rec = do(t, h, "GET", "/networks/nope", "")
	assert.Check(t, is.Equal(rec.Code, 404))
	assert.Check(t, is.Contains(rec.Body.String(), "network nope not found"))

	rec = do(t, h, "POST", "/networks/create", `{"Name":"n1","CheckDuplicate":true,"IPAM":{"Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.254","IPRange":"10.9.0.128/25"}]},"Labels":{"k":"v"}}`)
	assert.Check(t, is.Equal(rec.Code, 201), rec.Body.String())
	assert.Check(t, is.Equal(fb.created.Name, "n1"))
	assert.Check(t, is.Equal(fb.created.IPAM.Config[0].Subnet, netip.MustParsePrefix("10.9.0.0/24")))
	assert.Check(t, is.Equal(fb.created.IPAM.Config[0].Gateway, netip.MustParseAddr("10.9.0.254")))
	assert.Check(t, is.Equal(fb.created.Labels["k"], "v"))
	var cr network.CreateResponse
	assert.NilError(t, json.Unmarshal(rec.Body.Bytes(), &cr))
	assert.Check(t, is.Equal(cr.ID, "new"))

	for _, tc := range []struct{ body, msg string }{
		{`{"Name":"n2","IPAM":{"Config":[{"Subnet":"10.9.0.0/33"}]}}`, "invalid CIDR address: 10.9.0.0/33"},
		{`{"Name":"n2","IPAM":{"Config":[{"Subnet":"nonsense"}]}}`, "invalid CIDR address: nonsense"},
		{`{"Name":"n2","IPAM":{"Config":[{"Subnet":"10.9.0.0/24","Gateway":"x"}]}}`, "invalid gateway address x"},
		{`{"Name":`, "invalid JSON"},
	} {
		rec = do(t, h, "POST", "/networks/create", tc.body)
		assert.Check(t, is.Equal(rec.Code, 400), tc.body)
		assert.Check(t, is.Contains(rec.Body.String(), tc.msg))
	}
	rec = do(t, h, "POST", "/networks/create", `{"Name":"dup"}`)
	assert.Check(t, is.Equal(rec.Code, 409))

	rec = do(t, h, "DELETE", "/v1.41/networks/n1", "")
	assert.Check(t, is.Equal(rec.Code, 204))
	assert.Check(t, is.Equal(fb.removed, "n1"))

	rec = do(t, h, "POST", "/networks/prune", "")
	assert.Check(t, is.Equal(rec.Code, 200))
	assert.Check(t, is.Contains(rec.Body.String(), `"NetworksDeleted":["x"]`))

	rec = do(t, h, "POST", "/networks/n1/connect", `{"Container":"c1","EndpointConfig":{"Aliases":["a"]}}`)
	assert.Check(t, is.Equal(rec.Code, 200))
	rec = do(t, h, "POST", "/networks/n1/disconnect", `{"Container":"c1","Force":true}`)
	assert.Check(t, is.Equal(rec.Code, 200))
	assert.Check(t, is.DeepEqual(fb.connects, []string{"connect n1 c1", "disconnect n1 c1"}))
	rec = do(t, h, "POST", "/networks/n1/connect", `{}`)
	assert.Check(t, is.Equal(rec.Code, 400))
}

func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{
		`{"Name":"n","IPAM":{"Config":[{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1","IPRange":"10.0.0.0/25"}]}}`,
		`{"Name":"n","Driver":"bridge","Options":{"a":"b"},"Labels":{"x":"y"},"EnableIPv6":false}`,
		`{"Name":"n","IPAM":{"Config":[{"Gateway":"10.0.0.1/24","AuxiliaryAddresses":{"a":"10.0.0.2"}}]}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var body createBody
		if json.Unmarshal([]byte(s), &body) != nil {
			return
		}
		if _, err := body.toRequest(); err != nil && !errdefs.IsInvalidArgument(err) {
			t.Fatalf("unclassified error for %s: %v", s, err)
		}
	})
}
