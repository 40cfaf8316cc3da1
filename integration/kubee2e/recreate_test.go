//go:build berth_kube_e2e

package kubee2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// shopEdits are edits of the shop project after `up --scale worker=3`:
// each is applied with `up -d --scale worker=3` (compose recreates the
// changed services' containers through creates).
var shopEdits = []struct {
	name, old, new string
	// services whose pods must be replaced, and a check of their new spec
	changed []string
	check   func(p *corev1.Pod) error
	// orphaned: the StatefulSet is made again (an immutable field changed)
	orphaned string
}{
	{
		name: "worker's command and environment", old: "    command: [\"sleep\", \"infinity\"]\n",
		new:     "    command: [\"sleep\", \"3600\"]\n    environment: [MODE=edited]\n",
		changed: []string{"worker"},
		check: func(p *corev1.Pod) error {
			c := p.Spec.Containers[0]
			if !slices.Equal(c.Args, []string{"sleep", "3600"}) || len(c.Env) != 1 || c.Env[0].Value != "edited" {
				return fmt.Errorf("pod %s: args %v env %v", p.Name, c.Args, c.Env)
			}
			return nil
		},
	},
	{
		name: "web's image, port and an anonymous volume", old: "    image: nginx:1.27\n",
		new:     "    image: nginx:1.28\n    volumes: [/var/cache/nginx]\n    expose: [\"9090\"]\n",
		changed: []string{"web"}, orphaned: "web",
		check: func(p *corev1.Pod) error {
			c := p.Spec.Containers[0]
			if c.Image != "nginx:1.28" || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/var/cache/nginx" {
				return fmt.Errorf("pod %s: image %s mounts %v", p.Name, c.Image, c.VolumeMounts)
			}
			return nil
		},
	},
}

// shopRecreate runs issue 19's recreate of changed services: the second
// and third `up` of an unchanged file replace no pod; each edit replaces
// the pods of the services it changes (with the new spec) and no other.
func shopRecreate(t *testing.T, c *cluster, d *dockerCLI, yaml string) {
	all := []string{"db-1", "web-1", "worker-1", "worker-2", "worker-3"}
	before := podUIDs(t, c, "shop")
	for range 2 {
		d.compose("shop", "up", "-d", "--scale", "worker=3")
	}
	assert.DeepEqual(t, podUIDs(t, c, "shop"), before)

	for _, e := range shopEdits {
		assert.Assert(t, strings.Contains(yaml, e.old), e.name)
		yaml = strings.Replace(yaml, e.old, e.new, 1)
		d.writeProject("shop", yaml)
		setUID := statefulSetUID(t, c, "shop", e.orphaned)
		before := podUIDs(t, c, "shop")
		start := time.Now()
		out := d.compose("shop", "up", "-d", "--scale", "worker=3")
		assert.Assert(t, strings.Contains(out, "Recreated"), "%s: compose up:\n%s", e.name, out)
		waitFor(t, e.name+": pods replaced", 3*time.Minute, func() error {
			pods := podsOf(t, c, "shop")
			for name, p := range pods {
				svc := p.Labels["com.docker.compose.service"]
				replaced := before[name] != p.UID
				switch {
				case slices.Contains(e.changed, svc) && !replaced:
					return fmt.Errorf("pod %s not replaced yet", name)
				case slices.Contains(e.changed, svc):
					if err := e.check(p); err != nil {
						return err
					}
				case replaced:
					return fmt.Errorf("pod %s of unchanged service %s was replaced", name, svc)
				}
			}
			return nil
		})
		waitRunning(t, c, "shop", all)
		t.Logf("measured: %s: up -d until the pods are replaced and running: %v", e.name, time.Since(start).Round(time.Millisecond))
		if e.orphaned != "" {
			assert.Assert(t, statefulSetUID(t, c, "shop", e.orphaned) != setUID, "StatefulSet %s was not made again", e.orphaned)
		}
		ps := composePS(t, d, "shop")
		assert.DeepEqual(t, ps, map[string]string{"shop-db-1": "running", "shop-web-1": "running", "shop-worker-1": "running", "shop-worker-2": "running", "shop-worker-3": "running"})
		// the file is up to date now: another up replaces nothing
		after := podUIDs(t, c, "shop")
		out = d.compose("shop", "up", "-d", "--scale", "worker=3")
		assert.Assert(t, !strings.Contains(out, "Recreate"), "%s: a second up recreated:\n%s", e.name, out)
		assert.DeepEqual(t, podUIDs(t, c, "shop"), after)
	}
}

func podsOf(t *testing.T, c *cluster, ns string) map[string]*corev1.Pod {
	t.Helper()
	list, err := c.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	out := map[string]*corev1.Pod{}
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp == nil {
			out[list.Items[i].Name] = &list.Items[i]
		}
	}
	return out
}

func podUIDs(t *testing.T, c *cluster, ns string) map[string]types.UID {
	out := map[string]types.UID{}
	for name, p := range podsOf(t, c, ns) {
		out[name] = p.UID
	}
	return out
}

func statefulSetUID(t *testing.T, c *cluster, ns, name string) types.UID {
	if name == "" {
		return ""
	}
	ss, err := c.cs.AppsV1().StatefulSets(ns).Get(context.Background(), name, metav1.GetOptions{})
	assert.NilError(t, err)
	return ss.UID
}
