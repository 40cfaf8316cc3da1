package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/icmd"
)

// captureEngine is a fake Engine API that answers just enough for
// `docker compose create` and records every create request, so the planner
// can be compared with what the real compose CLI sends.
type captureEngine struct {
	mu         sync.Mutex
	imageID    string
	networks   map[string]map[string]any // by name
	volumes    map[string]map[string]any
	containers map[string]map[string]any // create bodies by name
	ids        map[string]string         // id -> name
	unexpected []string
}

var apiPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func (e *captureEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	path := apiPrefix.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Api-Version", "1.51")
	w.Header().Set("Ostype", "linux")
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	notFound := func(what string) { reply(http.StatusNotFound, map[string]string{"message": what}) }
	body := func() map[string]any {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		return m
	}
	switch {
	case path == "/_ping":
		_, _ = io.WriteString(w, "OK")
	case path == "/version":
		reply(200, map[string]string{"ApiVersion": "1.51", "MinAPIVersion": "1.24", "Version": "28.0.0", "Os": "linux", "Arch": "amd64"})
	case path == "/info":
		reply(200, map[string]any{"ID": "capture", "Name": "capture", "OSType": "linux", "Architecture": "x86_64"})
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/json"):
		if name := strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/json"); name == "busybox:latest" {
			reply(200, map[string]any{"Id": e.imageID, "RepoTags": []string{name}, "Os": "linux", "Architecture": "amd64", "Config": map[string]any{}})
		} else {
			notFound("No such image: " + name)
		}
	case path == "/networks" && r.Method == http.MethodGet:
		var out []map[string]any
		for _, n := range e.networks {
			out = append(out, n)
		}
		reply(200, out)
	case path == "/networks/create":
		n := body()
		e.networks[n["Name"].(string)] = n
		reply(201, map[string]any{"Id": "net-" + n["Name"].(string)})
	case strings.HasPrefix(path, "/networks/"):
		name := strings.TrimPrefix(path, "/networks/")
		for _, n := range e.networks {
			if n["Name"] == name || "net-"+n["Name"].(string) == name {
				reply(200, n)
				return
			}
		}
		notFound("network " + name + " not found")
	case path == "/volumes/create":
		v := body()
		v["Driver"] = "local"
		e.volumes[v["Name"].(string)] = v
		reply(201, v)
	case strings.HasPrefix(path, "/volumes/"):
		if v, ok := e.volumes[strings.TrimPrefix(path, "/volumes/")]; ok {
			reply(200, v)
		} else {
			notFound("no such volume")
		}
	case path == "/containers/json":
		var f map[string]map[string]bool
		_ = json.Unmarshal([]byte(r.URL.Query().Get("filters")), &f)
		out := []any{}
		for id, name := range e.ids {
			labels, _ := e.containers[name]["Labels"].(map[string]any)
			match := true
			for l := range f["label"] {
				k, v, hasV := strings.Cut(l, "=")
				got, ok := labels[k]
				if !ok || (hasV && got != v) {
					match = false
				}
			}
			if match {
				out = append(out, map[string]any{"Id": id, "Names": []string{"/" + name}, "Labels": labels, "State": "created"})
			}
		}
		reply(200, out)
	case path == "/containers/create":
		name := r.URL.Query().Get("name")
		e.containers[name] = body()
		id := fmt.Sprintf("%064d", len(e.containers))
		e.ids[id] = name
		reply(201, map[string]any{"Id": id, "Warnings": []string{}})
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		name, ok := e.ids[id]
		if !ok {
			notFound("No such container: " + id)
			return
		}
		cfg := e.containers[name]
		reply(200, map[string]any{"Id": id, "Name": "/" + name, "Config": cfg, "State": map[string]any{"Status": "created"},
			"NetworkSettings": map[string]any{"Networks": map[string]any{}}, "HostConfig": cfg["HostConfig"]})
	default:
		e.unexpected = append(e.unexpected, r.Method+" "+r.URL.String())
		notFound("not in the capture engine: " + path)
	}
}

// normalize drops zero values (the two sides' types differ in which fields
// they always write) and sorts the lists compose builds from Go maps.
func normalize(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			if k == compose.LabelDependsOn {
				parts := strings.Split(val.(string), ",")
				slices.Sort(parts)
				val = strings.Join(parts, ",")
			}
			if n := normalize(val, k); n != nil {
				out[k] = n
			}
		}
		if len(out) == 0 && key != "ExposedPorts" && key != "PortBindings" {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, e := range x {
			if n := normalize(e, ""); n != nil {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil
		}
		allStrings := !slices.ContainsFunc(out, func(e any) bool { _, ok := e.(string); return !ok })
		if key == "Mounts" || key == "Ulimits" {
			// compose builds both from Go maps: there is no order to compare
			slices.SortFunc(out, func(a, b any) int {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				return strings.Compare(string(ja), string(jb))
			})
		} else if allStrings && key != "Cmd" && key != "Entrypoint" && key != "Test" && key != "Aliases" {
			slices.SortFunc(out, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		}
		return out
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	case nil:
		return nil
	}
	return v
}

// What `berth compose up` plans is what `docker compose create` sends: the
// same containers, networks and volumes, the same create bodies.
func TestComposePlanMatchesComposeCLI(t *testing.T) {
	t.Parallel()
	bin, err := testenv.ComposeBinary()
	assert.NilError(t, err)
	const imageID = "sha256:4b0ad9c4d7c3e3f0a6f5b9d1d0c7c6d3a1b2c3d4e5f60718293a4b5c6d7e8f90"
	for _, project := range []string{"app", "shop", "blog", "kitchen"} {
		t.Run(project, func(t *testing.T) {
			dir := filepath.Join(testenv.RepoRoot(), "testdata", "compose", project)
			e := &captureEngine{imageID: imageID, networks: map[string]map[string]any{}, volumes: map[string]map[string]any{}, containers: map[string]map[string]any{}, ids: map[string]string{}}
			if project == "shop" || project == "blog" {
				e.networks["berth-shared"] = map[string]any{"Name": "berth-shared"}
			}
			sock := filepath.Join(t.TempDir(), "capture.sock")
			l, err := net.Listen("unix", sock)
			assert.NilError(t, err)
			srv := &http.Server{Handler: e}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })

			cmd := icmd.Command(bin, "create")
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + t.TempDir()}
			r := icmd.RunCmd(cmd)
			assert.Assert(t, r.ExitCode == 0, "%s\nunexpected calls: %v", r.Combined(), e.unexpected)

			p, err := compose.Load(context.Background(), compose.LoadOptions{WorkingDir: dir, ConfigFiles: []string{"compose.yaml"}})
			assert.NilError(t, err)
			plan, err := compose.NewPlan(p, map[string]string{"busybox:latest": imageID})
			assert.NilError(t, err)

			var created []string
			for _, n := range plan.Networks {
				if !n.External {
					created = append(created, n.Name)
					b, _ := json.Marshal(n.Request)
					var want map[string]any
					assert.NilError(t, json.Unmarshal(b, &want))
					assert.Check(t, cmp.Diff(normalize(e.networks[n.Name], ""), normalize(want, "")) == "", "network %s:\n%s", n.Name, cmp.Diff(normalize(e.networks[n.Name], ""), normalize(want, "")))
				}
			}
			for _, v := range plan.Volumes {
				b, _ := json.Marshal(v.Request)
				var want map[string]any
				assert.NilError(t, json.Unmarshal(b, &want))
				got := e.volumes[v.Name]
				delete(got, "Driver")
				delete(want, "Driver")
				assert.Check(t, cmp.Diff(normalize(got, ""), normalize(want, "")) == "", "volume %s:\n%s", v.Name, cmp.Diff(normalize(got, ""), normalize(want, "")))
			}
			var planned []string
			for _, s := range plan.Services {
				for _, c := range s.Containers {
					planned = append(planned, c.Name)
					b, _ := json.Marshal(c.Request)
					var want map[string]any
					assert.NilError(t, json.Unmarshal(b, &want))
					got := normalize(e.containers[c.Name], "")
					if diff := cmp.Diff(got, normalize(want, "")); diff != "" {
						t.Errorf("container %s: - compose CLI, + berth plan:\n%s", c.Name, diff)
					}
				}
			}
			var sent []string
			for name := range e.containers {
				sent = append(sent, name)
			}
			slices.Sort(sent)
			slices.Sort(planned)
			assert.DeepEqual(t, sent, planned)
			assert.Check(t, len(e.unexpected) == 0, "unexpected calls: %v", e.unexpected)
		})
	}
}
