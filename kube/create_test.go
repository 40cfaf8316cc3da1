package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	docker "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// createBody is POST /containers/create's body as compose v2 sends it.
type createBody struct {
	Name string
	docker.Config
	HostConfig       *docker.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

func readCreate(t *testing.T, file string) CreateRequest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "create", file))
	if err != nil {
		t.Fatal(err)
	}
	var b createBody
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	return CreateRequest{Name: b.Name, Config: &b.Config, HostConfig: b.HostConfig, Networking: b.NetworkingConfig}
}

// A compose v2 create (the bodies in testdata/create are what compose sends
// for the shop project's db and web) is the service's objects, with the
// StatefulSet at 0 replicas: a created container does not run.
func TestTranslateCreateGolden(t *testing.T) {
	for _, tc := range []struct {
		file, service string
		number        int
	}{
		{"db.json", "db", 1},
		{"web-2.json", "web", 2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := TranslateCreate(readCreate(t, tc.file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Project != "shop" || r.Service != tc.service || r.Number != tc.number || len(r.ConfigHash) != 64 {
				t.Fatalf("replica %+v", r)
			}
			validMeta(t, r.Manifests)
			if n := *r.Manifests.StatefulSets[0].Spec.Replicas; n != 0 {
				t.Errorf("a create runs %d replicas", n)
			}
			got := render(t, r.Manifests)
			golden := filepath.Join("testdata", "create", strings.TrimSuffix(tc.file, ".json")+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./kube -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the translation (go test ./kube -update, then review the diff):\n%s", golden, got)
			}
		})
	}
}

// compose's own config hash is kept (compose compares it on the next up),
// and the claim of a named volume is the one `berth compose up` makes.
func TestTranslateCreateMatchesUp(t *testing.T) {
	r, err := TranslateCreate(readCreate(t, "db.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ss := r.Manifests.StatefulSets[0]
	if got := ss.Spec.Template.Annotations["com.docker.compose.config-hash"] + ss.Spec.Template.Labels["com.docker.compose.config-hash"]; got != r.ConfigHash {
		t.Errorf("config hash on the pods %q, want compose's %q", got, r.ConfigHash)
	}
	up, err := Translate(load(t, "shop", "shop"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Manifests.PVCs[0].Name, up.PVCs[0].Name; got != want {
		t.Errorf("claim %q, berth compose up makes %q", got, want)
	}
	upDB := up.StatefulSets[0]
	if got, want := ss.Spec.Template.Spec.Containers[0].ReadinessProbe, upDB.Spec.Template.Spec.Containers[0].ReadinessProbe; got.String() != want.String() {
		t.Errorf("readiness\n%v\nberth compose up's\n%v", got, want)
	}
	if got, want := ss.Spec.Template.Spec.Containers[0].VolumeMounts, upDB.Spec.Template.Spec.Containers[0].VolumeMounts; len(got) != 1 || got[0].String() != want[0].String() {
		t.Errorf("mounts %v, berth compose up's %v", got, want)
	}
}

// compose's create of a replica that recreates another (a temporary name,
// com.docker.compose.replace, the old replica's anonymous volumes mounted
// by name) makes the same objects as the plain create of the replica: the
// label is the create's, and the inherited claim is the StatefulSet's own
// claim of its template for that replica.
func TestTranslateCreateRecreate(t *testing.T) {
	for _, tc := range []struct{ name, replaces, containerName string }{
		{"generated name", "db-1", ""},
		{"container_name", "maindb", "maindb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain := readCreate(t, "db.json")
			plain.HostConfig.Mounts = append(plain.HostConfig.Mounts, mount.Mount{Type: mount.TypeVolume, Target: "/cache"})
			if tc.containerName != "" {
				plain.Name = "/" + tc.containerName
			}
			want, err := TranslateCreate(plain, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec := readCreate(t, "db.json")
			rec.Name = "/0123456789ab_shop-db-1"
			rec.Config.Labels["com.docker.compose.replace"] = tc.replaces
			rec.HostConfig.Mounts = append(rec.HostConfig.Mounts, mount.Mount{Type: mount.TypeVolume, Source: "anon-" + shortHash("/cache") + "-db-1", Target: "/cache"})
			got, err := TranslateCreate(rec, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Replaces != tc.replaces || got.Number != 1 {
				t.Errorf("replica %+v", got)
			}
			if g, w := render(t, got.Manifests), render(t, want.Manifests); !bytes.Equal(g, w) {
				t.Errorf("the recreate's objects:\n%s\nthe plain create's:\n%s", g, w)
			}
			if n := len(got.Manifests.StatefulSets[0].Spec.VolumeClaimTemplates); n != 1 {
				t.Errorf("%d claim templates, want the anonymous volume's", n)
			}
			if len(got.Manifests.PVCs) != 1 {
				t.Errorf("claims %d: the inherited anonymous volume became a named one", len(got.Manifests.PVCs))
			}
		})
	}
}

// Whatever a compose create asks that a pod cannot take is refused, by
// name; a field no mapping reads is refused too, never dropped.
func TestTranslateCreateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*CreateRequest)
		kind   error
		want   string
	}{
		{"compose run", func(r *CreateRequest) { r.Config.Labels["com.docker.compose.oneoff"] = "True" }, errdefs.ErrNotImplemented, "docker compose run"},
		{"no number", func(r *CreateRequest) { delete(r.Config.Labels, "com.docker.compose.container-number") }, errdefs.ErrInvalidArgument, "container-number"},
		{"no service", func(r *CreateRequest) { delete(r.Config.Labels, "com.docker.compose.service") }, errdefs.ErrInvalidArgument, "com.docker.compose.service"},
		{"bind mount", func(r *CreateRequest) { r.HostConfig.Binds = []string{"/src/shop/conf:/etc/conf:ro"} }, errdefs.ErrNotImplemented, "bind mount /src/shop/conf"},
		{"bind mount (mounts)", func(r *CreateRequest) {
			r.HostConfig.Mounts = append(r.HostConfig.Mounts, mount.Mount{Type: mount.TypeBind, Source: "/src", Target: "/src"})
		}, errdefs.ErrNotImplemented, "bind mount /src"},
		{"npipe", func(r *CreateRequest) {
			r.HostConfig.Mounts = append(r.HostConfig.Mounts, mount.Mount{Type: mount.TypeNamedPipe, Source: "x", Target: "y"})
		}, errdefs.ErrNotImplemented, "mount type npipe"},
		{"host network", func(r *CreateRequest) { r.HostConfig.NetworkMode = "host" }, errdefs.ErrNotImplemented, "network_mode host"},
		{"static address", func(r *CreateRequest) {
			r.Networking.EndpointsConfig["shop_default"].IPAMConfig.IPv4Address = mustAddr(t, "10.5.0.9")
		}, errdefs.ErrNotImplemented, "static addresses"},
		{"privileged is mapped, --rm is not", func(r *CreateRequest) { r.HostConfig.Privileged = true; r.HostConfig.AutoRemove = true }, errdefs.ErrNotImplemented, "create option AutoRemove"},
		{"publish all", func(r *CreateRequest) { r.HostConfig.PublishAllPorts = true }, errdefs.ErrNotImplemented, "PublishAllPorts"},
		{"cpu quota", func(r *CreateRequest) { r.HostConfig.CPUQuota = 50000 }, errdefs.ErrNotImplemented, "CPUQuota"},
		{"masked paths", func(r *CreateRequest) { r.HostConfig.MaskedPaths = []string{} }, errdefs.ErrNotImplemented, "MaskedPaths"},
		{"shell", func(r *CreateRequest) { r.Config.Shell = []string{"sh"} }, errdefs.ErrNotImplemented, "Shell"},
		{"ulimits", func(r *CreateRequest) { r.HostConfig.Ulimits = []*docker.Ulimit{{Name: "nofile", Soft: 1, Hard: 2}} }, errdefs.ErrNotImplemented, "ulimits"},
		{"links", func(r *CreateRequest) { r.HostConfig.Links = []string{"shop-cache-1:cache"} }, errdefs.ErrNotImplemented, "link alias"},
		{"hostname", func(r *CreateRequest) { r.Config.Hostname = "db0" }, errdefs.ErrNotImplemented, "hostname"},
		{"user name", func(r *CreateRequest) { r.Config.User = "postgres" }, errdefs.ErrNotImplemented, "numeric"},
		{"dotted alias", func(r *CreateRequest) {
			ep := r.Networking.EndpointsConfig["shop_default"]
			ep.Aliases = append(ep.Aliases, "db.local")
		}, errdefs.ErrNotImplemented, `alias "db.local"`},
		{"volume driver", func(r *CreateRequest) {
			r.HostConfig.Mounts[0].VolumeOptions = &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}
		}, errdefs.ErrNotImplemented, "driver"},
		{"underscore project", func(r *CreateRequest) { r.Config.Labels["com.docker.compose.project"] = "my_app" }, errdefs.ErrInvalidArgument, "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := readCreate(t, "db.json")
			tc.change(&req)
			r, err := TranslateCreate(req, Options{})
			if err == nil {
				t.Fatalf("translated: %s", render(t, r.Manifests))
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %v containing %q", err, tc.kind, tc.want)
			}
		})
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
