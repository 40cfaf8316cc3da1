package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

const busyboxID = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testdataDir(t *testing.T, project string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "compose", project))
	assert.NilError(t, err)
	return dir
}

func load(t *testing.T, project string, o LoadOptions) *types.Project {
	t.Helper()
	o.WorkingDir = testdataDir(t, project)
	if o.ConfigFiles == nil {
		o.ConfigFiles = []string{"compose.yaml"}
	}
	p, err := Load(context.Background(), o)
	assert.NilError(t, err)
	return p
}

// The config hashes are compose's own: config-hash.golden in each project is
// what the compose CLI of tools/go.mod prints for `config --hash '*'`. A
// mismatch means `docker compose up` after `berth compose up` would recreate
// every container.
func TestConfigHashMatchesComposeCLI(t *testing.T) {
	for _, project := range []string{"app", "shop", "blog", "kitchen"} {
		t.Run(project, func(t *testing.T) {
			p := load(t, project, LoadOptions{})
			var b strings.Builder
			for _, name := range p.ServiceNames() {
				h, err := ServiceHash(p.Services[name])
				assert.NilError(t, err)
				fmt.Fprintf(&b, "%s %s\n", name, h)
			}
			want, err := os.ReadFile(filepath.Join(testdataDir(t, project), "config-hash.golden"))
			assert.NilError(t, err)
			assert.Equal(t, b.String(), string(want))
		})
	}
}

// The plan of each test project, as JSON, against a reviewed golden file
// (go test ./compose -update rewrites them).
func TestPlanGolden(t *testing.T) {
	for _, project := range []string{"app", "shop", "blog", "kitchen"} {
		t.Run(project, func(t *testing.T) {
			p := load(t, project, LoadOptions{})
			plan, err := NewPlan(p, map[string]string{"busybox:latest": busyboxID})
			assert.NilError(t, err)
			b, err := json.MarshalIndent(plan, "", "  ")
			assert.NilError(t, err)
			out := strings.ReplaceAll(string(b), testdataDir(t, project), "$PROJECT_DIR") + "\n"
			golden.Assert(t, out, filepath.Join("..", "..", "testdata", "compose", project, "plan.golden.json"))
		})
	}
}

func TestPlanOrderAndReplicas(t *testing.T) {
	plan, err := NewPlan(load(t, "kitchen", LoadOptions{}), map[string]string{"busybox:latest": busyboxID})
	assert.NilError(t, err)
	var order []string
	for _, s := range plan.Services {
		order = append(order, s.Name)
	}
	assert.Check(t, is.DeepEqual(order, []string{"db", "migrate", "api", "worker"}))
	worker := plan.Services[3]
	assert.Check(t, is.Len(worker.Containers, 3))
	for i, c := range worker.Containers {
		assert.Check(t, is.Equal(c.Name, fmt.Sprintf("kitchen-worker-%d", i+1)))
		assert.Check(t, is.Equal(c.Request.Labels[LabelContainerNumber], fmt.Sprint(i+1)))
		assert.Check(t, is.Equal(c.Request.Labels[LabelConfigHash], worker.ConfigHash))
	}
	var nets, vols []string
	for _, n := range plan.Networks {
		nets = append(nets, n.Name)
	}
	for _, v := range plan.Volumes {
		vols = append(vols, v.Name)
	}
	// the unused volume and the default network (no service uses it) are left out, as compose does
	assert.Check(t, is.DeepEqual(nets, []string{"kitchen_back", "kitchen_front"}))
	assert.Check(t, is.DeepEqual(vols, []string{"kitchen_data", "kitchen_logs"}))
}

func TestLoadOptions(t *testing.T) {
	t.Run("project name and profiles", func(t *testing.T) {
		p := load(t, "kitchen", LoadOptions{ProjectName: "other", Profiles: []string{"debug"}})
		assert.Check(t, is.Equal(p.Name, "other"))
		assert.Check(t, slices.Contains(p.ServiceNames(), "debug"))
		plan, err := NewPlan(p, map[string]string{"busybox:latest": busyboxID})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(plan.Networks[0].Name, "other_back"))
		assert.Check(t, is.Equal(plan.Services[0].Containers[0].Name, "other-db-1"))
		assert.Check(t, is.Equal(plan.Services[0].Containers[0].Request.Labels[LabelProject], "other"))
	})
	t.Run("interpolation from the client's environment, not the daemon's", func(t *testing.T) {
		dir := t.TempDir()
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  s:\n    image: ${IMG:-busybox:latest}\n    environment:\n      - TAG=${TAG}\n"), 0o644))
		t.Setenv("TAG", "from-daemon")
		p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, ConfigFiles: []string{"compose.yaml"}, Environment: []string{"TAG=v1", "COMPOSE_PROJECT_NAME=envname"}})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(p.Name, "envname"))
		assert.Check(t, is.Equal(p.Services["s"].Image, "busybox:latest"))
		assert.Check(t, is.Equal(*p.Services["s"].Environment["TAG"], "v1"))
		assert.Check(t, is.Equal(p.Services["s"].CustomLabels[LabelConfigFiles], filepath.Join(dir, "compose.yaml")))
		assert.Check(t, is.Equal(p.Services["s"].CustomLabels[LabelWorkingDir], dir))
	})
	t.Run("project name from the directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "My_Dir")
		assert.NilError(t, os.MkdirAll(dir, 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  s:\n    image: busybox\n"), 0o644))
		p, err := Load(context.Background(), LoadOptions{WorkingDir: dir})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(p.Name, "my_dir"))
	})
}

func TestPlanErrors(t *testing.T) {
	t.Run("depends_on cycle in a file", func(t *testing.T) {
		_, err := Load(context.Background(), LoadOptions{WorkingDir: testdataDir(t, "cycle"), ConfigFiles: []string{"compose.yaml"}})
		assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
		assert.Check(t, is.ErrorContains(err, "dependency cycle detected: a -> b -> c -> a"))
	})
	cyclic := &types.Project{Name: "p", Services: types.Services{
		"a": {Name: "a", Image: "busybox:latest", DependsOn: types.DependsOnConfig{"b": {Condition: ConditionStarted}}},
		"b": {Name: "b", Image: "busybox:latest", DependsOn: types.DependsOnConfig{"a": {Condition: ConditionStarted}}},
	}}
	images := map[string]string{"busybox:latest": busyboxID}
	tests := []struct {
		name    string
		project *types.Project
		images  map[string]string
		class   func(error) bool
		msg     string
	}{
		{name: "cycle in a project built by hand", project: cyclic, images: images, class: errdefs.IsInvalidArgument, msg: "dependency cycle detected: a -> b -> a"},
		{name: "missing image", project: &types.Project{Name: "p", Services: types.Services{"a": {Name: "a", Image: "nope:1"}}}, images: images, class: errdefs.IsNotFound, msg: `service "a": No such image: nope:1`},
		{name: "secrets are not done yet", project: &types.Project{Name: "p", Services: types.Services{"a": {Name: "a", Image: "busybox:latest", Secrets: []types.ServiceSecretConfig{{Source: "s"}}}}}, images: images, class: errdefs.IsNotImplemented, msg: "secrets"},
		{name: "network_mode service:", project: &types.Project{Name: "p", Services: types.Services{"a": {Name: "a", Image: "busybox:latest", NetworkMode: "service:b"}}}, images: images, class: errdefs.IsNotImplemented, msg: "network_mode: service:b"},
		{name: "container_name with replicas", project: &types.Project{Name: "p", Services: types.Services{"a": {Name: "a", Image: "busybox:latest", ContainerName: "x", Scale: ptr(2)}}}, images: images, class: errdefs.IsInvalidArgument, msg: "container_name"},
		{name: "duplicate container_name", project: &types.Project{Name: "p", Services: types.Services{"a": {Name: "a", Image: "busybox:latest", ContainerName: "x"}, "b": {Name: "b", Image: "busybox:latest", ContainerName: "x"}}}, images: images, class: errdefs.IsInvalidArgument, msg: "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPlan(tc.project, tc.images)
			assert.Assert(t, err != nil)
			assert.Check(t, tc.class(err), "%v", err)
			assert.Check(t, is.ErrorContains(err, tc.msg))
		})
	}
}

func ptr[T any](v T) *T { return &v }

func FuzzLoadAndPlan(f *testing.F) {
	for _, p := range []string{"app", "shop", "kitchen", "cycle"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "compose", p, "compose.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, yaml []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), yaml, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, ProjectName: "fuzz", ConfigFiles: []string{"compose.yaml"}})
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("unclassified load error: %v", err)
			}
			return
		}
		images := map[string]string{}
		for _, r := range ImageRefs(p) {
			images[r] = busyboxID
		}
		_, _ = NewPlan(p, images) // must not panic
	})
}
