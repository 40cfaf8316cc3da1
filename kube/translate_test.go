package kube

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/containerd/errdefs"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/berthd/berth/compose"
)

var update = flag.Bool("update", false, "rewrite the golden manifests in testdata")

// load reads testdata/<dir>/compose.yaml as berthd loads a project, with the
// paths in the compose labels made the same on every machine.
func load(t *testing.T, dir, project string) *types.Project {
	t.Helper()
	wd, err := filepath.Abs(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	p, err := compose.Load(context.Background(), compose.LoadOptions{WorkingDir: wd, ProjectName: project, ConfigFiles: []string{"compose.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range p.Services {
		s.CustomLabels[compose.LabelWorkingDir] = "/src/" + dir
		s.CustomLabels[compose.LabelConfigFiles] = "/src/" + dir + "/compose.yaml"
		p.Services[name] = s
	}
	return p
}

func render(t *testing.T, m *Manifests) []byte {
	t.Helper()
	var b bytes.Buffer
	for i, o := range m.Objects() {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes()
}

func TestTranslateGolden(t *testing.T) {
	for _, tc := range []struct{ dir, project string }{
		{"shop", "shop"},
		{"networks", ""}, // name: in the file
		{"scale", "q"},
		{"oneshot", "shop"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := Translate(load(t, tc.dir, tc.project), Options{})
			if err != nil {
				t.Fatal(err)
			}
			validMeta(t, m)
			got := render(t, m)
			golden := filepath.Join("testdata", tc.dir, "manifests.golden.yaml")
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
			// a second load and translation gives the same bytes: maps in
			// the model come out in a fixed order
			for range 2 {
				again, err := Translate(load(t, tc.dir, tc.project), Options{})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(render(t, again), got) {
					t.Fatal("a second translation differs from the first")
				}
			}
		})
	}
}

// The healthcheck is readiness only: a liveness (or startup) probe would
// kill a container Docker only marks unhealthy.
func TestHealthcheckIsReadinessOnly(t *testing.T) {
	m, err := Translate(load(t, "shop", "shop"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	probes := 0
	for _, ss := range m.StatefulSets {
		for _, c := range ss.Spec.Template.Spec.Containers {
			if c.LivenessProbe != nil || c.StartupProbe != nil {
				t.Errorf("%s: liveness or startup probe: %+v %+v", ss.Name, c.LivenessProbe, c.StartupProbe)
			}
			if c.ReadinessProbe != nil {
				probes++
				if got := c.ReadinessProbe.Exec.Command; strings.Join(got, " ") != "/bin/sh -c pg_isready -U postgres" {
					t.Errorf("%s: probe command %q", ss.Name, got)
				}
				// 1500ms rounds up to whole seconds
				if c.ReadinessProbe.PeriodSeconds != 2 || c.ReadinessProbe.TimeoutSeconds != 2 || c.ReadinessProbe.FailureThreshold != 10 {
					t.Errorf("%s: probe timing %+v", ss.Name, c.ReadinessProbe)
				}
			}
		}
	}
	if probes != 1 {
		t.Errorf("%d readiness probes, want 1 (db)", probes)
	}
}

// Running compose from another directory, or another compose release,
// changes no pod template: Kubernetes would roll every pod, compose
// recreates no container for it.
func TestPodTemplateIgnoresWhereFrom(t *testing.T) {
	a, err := Translate(load(t, "shop", "shop"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, "shop", "shop")
	for name, s := range p.Services {
		s.CustomLabels[compose.LabelWorkingDir] = "/elsewhere"
		s.CustomLabels[compose.LabelConfigFiles] = "/elsewhere/compose.yaml"
		s.CustomLabels[compose.LabelVersion] = "9.9.9"
		p.Services[name] = s
	}
	b, err := Translate(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.StatefulSets {
		ya, _ := yaml.Marshal(a.StatefulSets[i].Spec.Template)
		yb, _ := yaml.Marshal(b.StatefulSets[i].Spec.Template)
		if !bytes.Equal(ya, yb) {
			t.Errorf("%s: the pod template changed:\n%s\n%s", a.StatefulSets[i].Name, ya, yb)
		}
		if b.StatefulSets[i].Annotations[compose.LabelWorkingDir] != "/elsewhere" {
			t.Errorf("%s: the StatefulSet lost the working dir label: %v", b.StatefulSets[i].Name, b.StatefulSets[i].Annotations)
		}
	}
}

// Workloads come in dependency order, and replicas are numbered from 1 as
// compose numbers its containers.
func TestOrderAndOrdinals(t *testing.T) {
	m, err := Translate(load(t, "shop", "shop"), Options{NamespacePrefix: "berth-"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Namespace.Name != "berth-shop" {
		t.Errorf("namespace %q", m.Namespace.Name)
	}
	var names []string
	for _, ss := range m.StatefulSets {
		names = append(names, ss.Name)
		if ss.Namespace != "berth-shop" || ss.Spec.Ordinals == nil || ss.Spec.Ordinals.Start != 1 {
			t.Errorf("%s: namespace %q ordinals %+v", ss.Name, ss.Namespace, ss.Spec.Ordinals)
		}
	}
	if got := strings.Join(names, ","); got != "db,web,worker" && got != "db,worker,web" {
		t.Errorf("order %s: db must come first", got)
	}
	if names[len(names)-1] != "worker" {
		t.Errorf("order %v: ties must go by name", names)
	}
}

func TestTranslateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, project, yaml string
		kind                error
		want                string
	}{
		{"bind mount", "p", "services: {a: {image: x, volumes: ['./conf:/etc/conf']}}", errdefs.ErrNotImplemented, "bind mount"},
		{"build only", "p", "services: {a: {build: .}}", errdefs.ErrNotImplemented, "build without image"},
		{"host network", "p", "services: {a: {image: x, network_mode: host}}", errdefs.ErrNotImplemented, "network_mode host"},
		{"static ip", "p", "services: {a: {image: x, networks: {n: {ipv4_address: 10.5.0.9}}}}\nnetworks: {n: {ipam: {config: [{subnet: 10.5.0.0/16}]}}}", errdefs.ErrNotImplemented, "static addresses"},
		{"dotted alias", "p", "services: {a: {image: x, networks: {default: {aliases: [db.local]}}}}", errdefs.ErrNotImplemented, `alias "db.local"`},
		{"alias is another service", "p", "services: {a: {image: x, networks: {default: {aliases: [b]}}}, b: {image: x}}", errdefs.ErrInvalidArgument, `Service name "b"`},
		{"underscore project", "my_app", "services: {a: {image: x}}", errdefs.ErrInvalidArgument, "namespace"},
		{"underscore service", "p", "services: {my_svc: {image: x}}", errdefs.ErrInvalidArgument, `service "my_svc"`},
		{"hostname", "p", "services: {a: {image: x, hostname: h}}", errdefs.ErrNotImplemented, "hostname"},
		{"user name", "p", "services: {a: {image: x, user: postgres}}", errdefs.ErrNotImplemented, "numeric"},
		{"published range", "p", "services: {a: {image: x, ports: ['8000-8001:80']}}", errdefs.ErrNotImplemented, "range"},
		{"host ip", "p", "services: {a: {image: x, ports: ['127.0.0.1:8080:80']}}", errdefs.ErrNotImplemented, "host_ip"},
		{"devices", "p", "services: {a: {image: x, devices: ['/dev/fuse:/dev/fuse']}}", errdefs.ErrNotImplemented, "devices"},
		{"volumes_from", "p", "services: {a: {image: x, volumes_from: [b]}, b: {image: x}}", errdefs.ErrNotImplemented, "volumes_from"},
		{"secrets", "p", "services: {a: {image: x, secrets: [s]}}\nsecrets: {s: {environment: HOME}}", errdefs.ErrNotImplemented, "secrets"},
		{"stop signal", "p", "services: {a: {image: x, stop_signal: SIGQUIT}}", errdefs.ErrNotImplemented, "stop_signal"},
		{"volume driver opts", "p", "services: {a: {image: x, volumes: ['vol:/v']}}\nvolumes: {vol: {driver_opts: {type: nfs}}}", errdefs.ErrNotImplemented, "driver_opts"},
		{"volume names collide", "p", "services: {a: {image: x, volumes: ['a_b:/1', 'a-b:/2']}}\nvolumes: {a_b: {}, a-b: {}}", errdefs.ErrInvalidArgument, "both become"},
		{"ulimits", "p", "services: {a: {image: x, ulimits: {nofile: 1024}}}", errdefs.ErrNotImplemented, "ulimits"},
		{"security_opt", "p", "services: {a: {image: x, security_opt: [no-new-privileges]}}", errdefs.ErrNotImplemented, "security_opt"},
		{"platform variant", "p", "services: {a: {image: x, platform: linux/arm64/v8}}", errdefs.ErrNotImplemented, "platform"},
		{"group name", "p", "services: {a: {image: x, group_add: [audio]}}", errdefs.ErrNotImplemented, "group_add"},
		{"host-gateway", "p", "services: {a: {image: x, extra_hosts: ['host.docker.internal:host-gateway']}}", errdefs.ErrNotImplemented, "host-gateway"},
		{"global mode", "p", "services: {a: {image: x, deploy: {mode: global}}}", errdefs.ErrNotImplemented, "deploy.mode global"},
		{"pids limit", "p", "services: {a: {image: x, deploy: {resources: {limits: {pids: 10}}}}}", errdefs.ErrNotImplemented, "pids"},
		{"long service name", "p", "services: {a" + strings.Repeat("b", 52) + ": {image: x}}", errdefs.ErrInvalidArgument, "longer than 52"},
		{"label key with a space", "p", "services: {a: {image: x, labels: {'my label': v}}}", errdefs.ErrInvalidArgument, `label "my label"`},
		{"volume label key", "p", "services: {a: {image: x, volumes: ['vol:/v']}}\nvolumes: {vol: {labels: {'a b': c}}}", errdefs.ErrInvalidArgument, `label "a b"`},
		{"annotation key", "p", "services: {a: {image: x, annotations: {'x y': z}}}", errdefs.ErrInvalidArgument, `label "x y"`},
		{"tmpfs size", "p", "services: {a: {image: x, tmpfs: ['/t:size=lots']}}", errdefs.ErrInvalidArgument, "not a size"},
		{"published name taken", "p", "services: {a: {image: x, ports: ['80']}, a-published: {image: x}}", errdefs.ErrInvalidArgument, `"a-published"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := compose.Load(context.Background(), compose.LoadOptions{WorkingDir: dir, ProjectName: tc.project, ConfigFiles: []string{"compose.yaml"}})
			if err != nil {
				t.Fatalf("the file does not load: %v", err)
			}
			m, err := Translate(p, Options{})
			if err == nil {
				t.Fatalf("translated: %s", render(t, m))
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (%T), want %v containing %q", err, err, tc.kind, tc.want)
			}
		})
	}
}

// Two projects with a db each: each gets its own namespace, so a bare db
// resolves (<svc>.<namespace>.svc through the pod's search path) to the
// project's own.
func TestProjectsAreNamespaces(t *testing.T) {
	seen := map[string]bool{}
	for _, project := range []string{"shop", "blog"} {
		m, err := Translate(load(t, "shop", project), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Namespace.Name != project {
			t.Errorf("namespace %q for project %s", m.Namespace.Name, project)
		}
		for _, o := range m.Services {
			if o.Namespace != project {
				t.Errorf("Service %s in namespace %q, want %q", o.Name, o.Namespace, project)
			}
			if o.Name == "db" {
				seen[o.Namespace] = true
				if o.Spec.Selector[compose.LabelProject] != project {
					t.Errorf("%s/db selects %v", project, o.Spec.Selector)
				}
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("db Services in %v, want one in each project", seen)
	}
}

// FuzzTranslate: any compose file that loads translates without a panic,
// the same way twice, or is refused with a classified error.
func FuzzTranslate(f *testing.F) {
	for _, dir := range []string{"shop", "networks", "scale"} {
		b, err := os.ReadFile(filepath.Join("testdata", dir, "compose.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("services: {a: {image: x, ports: ['80'], networks: {default: {aliases: [b]}}}}"))
	f.Fuzz(func(t *testing.T, file []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), file, 0o644); err != nil {
			t.Fatal(err)
		}
		load := func() *types.Project {
			p, err := compose.Load(context.Background(), compose.LoadOptions{WorkingDir: dir, ProjectName: "fz", ConfigFiles: []string{"compose.yaml"}})
			if err != nil {
				t.Skip()
			}
			return p
		}
		m, err := Translate(load(), Options{})
		if err != nil {
			if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotImplemented(err) && !errdefs.IsDataLoss(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		validMeta(t, m)
		again, err := Translate(load(), Options{})
		if err != nil {
			t.Fatalf("the second translation fails: %v", err)
		}
		if !bytes.Equal(render(t, m), render(t, again)) {
			t.Fatal("two translations differ")
		}
	})
}

// validMeta checks every object's names, labels and annotations as the API
// server would (apimachinery's own validation).
func validMeta(t *testing.T, m *Manifests) {
	t.Helper()
	check := func(what string, om metav1.ObjectMeta) {
		errs := metavalidation.ValidateLabels(om.Labels, field.NewPath(what, "labels"))
		errs = append(errs, apivalidation.ValidateAnnotations(om.Annotations, field.NewPath(what, "annotations"))...)
		for _, e := range errs {
			t.Errorf("%s: %v", what, e)
		}
	}
	for _, o := range m.Objects() {
		om, err := meta.Accessor(o)
		if err != nil {
			t.Fatal(err)
		}
		what := o.GetObjectKind().GroupVersionKind().Kind + " " + om.GetName()
		check(what, metav1.ObjectMeta{Labels: om.GetLabels(), Annotations: om.GetAnnotations()})
		if len(apivalidation.NameIsDNSSubdomain(om.GetName(), false)) > 0 {
			t.Errorf("%s: not a valid name", what)
		}
	}
	for _, ss := range m.StatefulSets {
		check("StatefulSet "+ss.Name+" template", ss.Spec.Template.ObjectMeta)
		sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
			t.Errorf("StatefulSet %s: selector %v does not select its template's labels (%v)", ss.Name, ss.Spec.Selector, err)
		}
	}
}
