//go:build berth_kube_e2e && berth_kubelet_e2e

package kubee2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthd/berth/internal/testimage"
)

// The data path with real containers (make e2e-kubelet): the control plane
// of startCluster plus one real node, a kubelet (KUBELET, built from the Go
// module proxy by scripts/kubelet-tool.sh) on Debian's containerd 1.6 (its
// CRI plugin, a private instance on a socket of the test's temp dir) with
// runc and Debian's containernetworking-plugins (a bridge network of the
// test's own, with the firewall plugin accepting its pods' traffic). The kwok node is cordoned, so berth's pods run for real.
//
// What the kubelet needs from this host (cgroup v1 hybrid, no swap): it
// refuses cgroup v1 unless failCgroupV1 is false; it will not take a
// loopback node IP, so the node's address is on a link of the test's own;
// containerd 1.x has no RuntimeConfig CRI call, so the kubelet falls back
// to its cgroupDriver (cgroupfs), which Kubernetes 1.37 still does; and it
// sets the kernel's vm.overcommit_memory, kernel.panic and
// kernel.panic_on_oops (its defaults for protectKernelDefaults=false),
// which the test puts back when it ends. This machine's root has no
// CAP_SYS_RESOURCE, so no oom_score_adj below 0: containerd's
// restrict_oom_score_adj keeps the pause container's -998 (and the
// kubelet's -997 for guaranteed pods) at containerd's own 0, and the
// kubelet leaves its own score alone (oomScoreAdj: 0).

const (
	realNodeName = "real-node-1"
	nodeLink     = "bke2enode"
	podBridge    = "bke2e0"
)

var (
	nodeIP  = net.IPv4(10, 226, 1, 1)
	podCIDR = "10.226.0.0/24"
	// kernelTunables are what the kubelet writes at start.
	kernelTunables = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
		"kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}
)

type realNode struct {
	dir, ctrSock string
}

// startRealNode starts containerd and a kubelet registered as
// realNodeName, cordons the kwok node, and returns once the node is Ready.
// Everything it made is undone when the test ends, in reverse order: the
// pods deleted through the API while the kubelet runs, then what is left
// of their containers killed through containerd, then the daemons stopped,
// then the cgroups, links and kernel settings put back.
func startRealNode(t *testing.T, c *cluster) *realNode {
	t.Helper()
	kubelet := envPath(t, "KUBELET", "")
	n := &realNode{dir: filepath.Join(c.dir, "node")}
	n.ctrSock = filepath.Join(n.dir, "containerd.sock")
	for _, d := range []string{"cni", "cni-state", "containerd", "kubelet"} {
		must(t, os.MkdirAll(filepath.Join(n.dir, d), 0o755))
	}
	restoreTunables(t)
	t.Cleanup(removeCgroups)
	addNodeLink(t)
	t.Cleanup(func() { delLink(podBridge) })
	t.Cleanup(removeKubeletChains(t))
	t.Cleanup(removeNewNetns(t))
	// containerd's mounts (sandboxes' /dev/shm) outlive a pod that was
	// stopped but not removed yet
	t.Cleanup(func() { unmountUnder(n.dir) })

	// the cluster DNS, with berth's zone rewrite, on the node's address
	startZoneDNSAt(t, c, nodeIP.String(), "53")
	must(t, n.writeContainerdConfig())
	c.start("containerd", "/usr/bin/containerd", "--config="+filepath.Join(n.dir, "containerd.toml"))
	c.waitFor("containerd", time.Minute, func() error { _, err := n.ctr("version"); return err })
	t.Cleanup(n.killTasks)
	n.importImages(t)

	must(t, c.pki.issue("kubelet", "system:node:"+realNodeName, []string{"system:nodes"},
		[]net.IP{nodeIP}, []string{realNodeName}))
	cfg := filepath.Join(n.dir, "kubelet.yaml")
	must(t, n.writeKubeletConfig(cfg, c))
	// the kubelet bind-mounts its root dir onto itself (and pods' volumes
	// under it): unmounted once it stopped
	t.Cleanup(func() { unmountUnder(filepath.Join(n.dir, "kubelet")) })
	c.start("kubelet", kubelet, "--config="+cfg, "--kubeconfig="+c.kubeconfig,
		"--root-dir="+filepath.Join(n.dir, "kubelet"), "--hostname-override="+realNodeName,
		"--node-ip="+nodeIP.String(), "--v=1")
	t.Cleanup(func() { deleteAllPods(c) })
	c.waitFor("node "+realNodeName+" Ready", 3*time.Minute, func() error { return c.nodeReady(realNodeName) })
	patch := []byte(`{"spec":{"unschedulable":true}}`)
	_, err := c.cs.CoreV1().Nodes().Patch(context.Background(), "kwok-node-1", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	must(t, err)
	return n
}

func (n *realNode) ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", n.ctrSock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (n *realNode) writeContainerdConfig() error {
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "berth.test/pause:1"
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[4]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`, filepath.Join(n.dir, "containerd", "root"), filepath.Join(n.dir, "containerd", "state"), n.ctrSock, filepath.Join(n.dir, "cni"))
	if err := os.WriteFile(filepath.Join(n.dir, "containerd.toml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	cni := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "berth-e2e", "plugins": [{"type": "bridge", "bridge": %q,
  "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "firewall", "backend": "iptables"}]}
`, podBridge, filepath.Join(n.dir, "cni-state"), podCIDR)
	return os.WriteFile(filepath.Join(n.dir, "cni", "10-berth-e2e.conflist"), []byte(cni), 0o644)
}

// importImages gives containerd the test images: busybox (what the pods
// run; the backend's pull policy is IfNotPresent) and a pause image made
// of busybox sleeping, as the pod sandbox (no registry is reachable).
func (n *realNode) importImages(t *testing.T) {
	t.Helper()
	for _, o := range []testimage.Options{
		{Tag: "busybox:latest"},
		{Tag: "berth.test/pause:1", Entrypoint: []string{"/bin/sleep", "2147483647"}, Comment: "pause"},
	} {
		tar := filepath.Join(n.dir, strings.NewReplacer("/", "_", ":", "_").Replace(o.Tag)+".tar")
		_, err := testimage.WriteDockerArchive(tar, o)
		must(t, err)
		_, err = n.ctr("images", "import", tar)
		must(t, err)
	}
}

func (n *realNode) writeKubeletConfig(path string, c *cluster) error {
	resolv := filepath.Join(n.dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
address: %s
port: %s
readOnlyPort: 0
healthzPort: 0
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
clusterDNS: [%s]
resolvConf: %s
failSwapOn: false
protectKernelDefaults: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
registerNode: true
oomScoreAdj: 0
volumePluginDir: %s
`, n.ctrSock, nodeIP, freePort(c.t), c.pki.path("kubelet.crt"), c.pki.path("kubelet.key"), c.pki.path("ca.crt"),
		nodeIP, resolv, filepath.Join(n.dir, "volume-plugins"))
	return os.WriteFile(path, []byte(cfg), 0o644)
}

// deleteAllPods deletes every workload and pod and waits until the kubelet stopped them
// (a pod's containers outlive the kubelet otherwise).
func deleteAllPods(c *cluster) {
	ctx := context.Background()
	nss, err := c.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.t.Logf("cleanup: namespaces: %v", err)
		return
	}
	zero := int64(0)
	for _, ns := range nss.Items {
		// the workloads first, or their controllers make the pods again
		_ = c.cs.AppsV1().StatefulSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = c.cs.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = c.cs.BatchV1().Jobs(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = c.cs.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		pods, err := c.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + realNodeName})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Logf("cleanup: pods of %s still there after 2 min", realNodeName)
}

// killTasks kills and removes whatever containers containerd still runs
// (a test that failed before its pods were deleted), so no shim outlives
// the test.
func (n *realNode) killTasks() {
	out, err := n.ctr("tasks", "ls", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		_, _ = n.ctr("tasks", "kill", "-s", "SIGKILL", id)
		for i := 0; i < 50; i++ {
			if _, err := n.ctr("tasks", "delete", id); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if out, err := n.ctr("containers", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			_, _ = n.ctr("containers", "rm", id)
		}
	}
}

// addNodeLink makes the link that carries the node's address: a bridge
// without ports (this kernel has no dummy links; a local address on it is
// reachable from the host all the same).
func addNodeLink(t *testing.T) {
	t.Helper()
	delLink(nodeLink)
	l := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: nodeLink}}
	must(t, netlink.LinkAdd(l))
	t.Cleanup(func() { delLink(nodeLink) })
	must(t, netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: nodeIP, Mask: net.CIDRMask(32, 32)}}))
	must(t, netlink.LinkSetUp(l))
}

func delLink(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l)
	}
}

// unmountUnder lazily unmounts every mount at or under dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// removeNewNetns deletes, when the test ends, the network namespaces
// containerd made for pod sandboxes (cni-*) during the test: a sandbox the
// kubelet stopped but had not removed yet keeps its namespace and veth.
func removeNewNetns(t *testing.T) func() {
	before := map[string]bool{}
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		before[e.Name()] = true
	}
	return func() {
		ents, _ := os.ReadDir("/var/run/netns")
		for _, e := range ents {
			if before[e.Name()] || !strings.HasPrefix(e.Name(), "cni-") {
				continue
			}
			p := filepath.Join("/var/run/netns", e.Name())
			_ = unix.Unmount(p, unix.MNT_DETACH)
			if err := os.Remove(p); err != nil {
				t.Logf("cleanup: netns %s: %v", p, err)
			}
		}
	}
}

// kubeletChains are the iptables chains the kubelet makes (KUBE-FIREWALL is
// jumped to from INPUT and OUTPUT of the filter table) and those of the CNI
// firewall plugin (CNI-FORWARD, from FORWARD: this host's FORWARD policy is
// DROP, and with br_netfilter even traffic between two pods on the bridge
// passes it).
var kubeletChains = []string{"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT", "CNI-FORWARD", "CNI-ADMIN"}

// removeKubeletChains removes, when the test ends, the kubelet's chains of
// iptables and ip6tables that were not there before it.
func removeKubeletChains(t *testing.T) func() {
	had := map[string]bool{}
	for _, ipt := range []string{"iptables", "ip6tables"} {
		out, _ := exec.Command(ipt + "-save").Output()
		for _, ch := range kubeletChains {
			had[ipt+" "+ch] = strings.Contains(string(out), ":"+ch+" ")
		}
	}
	return func() {
		for _, ipt := range []string{"iptables", "ip6tables"} {
			for _, ch := range kubeletChains {
				if had[ipt+" "+ch] {
					continue
				}
				for _, from := range []string{"INPUT", "OUTPUT", "FORWARD"} {
					// the jumps as iptables -S prints them (with their
					// comment matches), shell-quoted
					out, _ := exec.Command(ipt, "-w", "-S", from).Output()
					for _, rule := range strings.Split(string(out), "\n") {
						if strings.HasPrefix(rule, "-A "+from+" ") && strings.HasSuffix(rule, " -j "+ch) {
							_ = exec.Command("sh", "-c", ipt+" -w -D"+strings.TrimPrefix(rule, "-A")).Run()
						}
					}
				}
				for _, tbl := range []string{"filter", "nat", "mangle"} {
					_ = exec.Command(ipt, "-w", "-t", tbl, "-F", ch).Run()
					_ = exec.Command(ipt, "-w", "-t", tbl, "-X", ch).Run()
				}
			}
		}
	}
}

// restoreTunables puts back, when the test ends, the kernel settings the
// kubelet changes at start.
func restoreTunables(t *testing.T) {
	saved := map[string][]byte{}
	for _, k := range kernelTunables {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			saved[k] = b
		}
	}
	t.Cleanup(func() {
		for k, b := range saved {
			if err := os.WriteFile("/proc/sys/"+k, b, 0o644); err != nil {
				t.Logf("cleanup: restore %s: %v", k, err)
			}
		}
	})
}

// removeCgroups removes the kubelet's kubepods hierarchy (cgroupfs driver)
// from every cgroup v1 controller, deepest first, once the pods are gone.
func removeCgroups() {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		root := filepath.Join("/sys/fs/cgroup", e.Name(), "kubepods")
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

// berthdOnRealNode starts the control plane, the real node and berthd-kube,
// and returns the cluster and the docker CLI on berthd.
func berthdOnRealNode(t *testing.T) (*cluster, *dockerCLI) {
	t.Helper()
	c := startCluster(t)
	startRealNode(t, c)
	dir := t.TempDir()
	sock := startBerthd(t, c, dir)
	d := newDockerCLI(t, sock, dir)
	waitFor(t, "berthd-kube answers", time.Minute, func() error { _, err := d.run("version"); return err })
	return c, d
}

// TestKubeletRealPods: berth's pods run as real containers.
func TestKubeletRealPods(t *testing.T) {
	c, d := berthdOnRealNode(t)

	// a plain docker run: a Pod on the real node, its log from the kubelet
	d.ok("run", "-d", "--name", "hello", "busybox", "sh", "-c", "echo hello from a real pod; exec sleep 3600")
	waitFor(t, "hello's log", time.Minute, func() error {
		out, err := d.run("logs", "hello")
		if err != nil || !strings.Contains(out, "hello from a real pod") {
			return fmt.Errorf("docker logs hello: %v: %q", err, out)
		}
		return nil
	})
	pod, err := c.cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + realNodeName})
	assert.NilError(t, err)
	assert.Equal(t, len(pod.Items), 1)
	assert.Assert(t, strings.HasPrefix(pod.Items[0].Status.PodIP, "10.226.0."), "pod IP %q from the node's CNI range", pod.Items[0].Status.PodIP)

	// exec runs in the container (its PID 1 is the sleep), with its exit code
	assert.Equal(t, strings.TrimSpace(d.ok("exec", "hello", "cat", "/proc/1/comm")), "sleep")
	out, err := d.run("exec", "hello", "sh", "-c", "echo to stderr >&2; exit 3")
	var ee *exec.ExitError
	assert.Assert(t, errors.As(err, &ee), "docker exec exit 3: %v: %s", err, out)
	assert.Equal(t, ee.ExitCode(), 3, out)
	assert.Assert(t, strings.Contains(out, "to stderr"), out)

	// an attached run gets the container's output and exit code
	out, err = d.run("run", "--name", "once", "busybox", "sh", "-c", "echo attached output; exit 7")
	assert.Assert(t, errors.As(err, &ee), "docker run exit 7: %v: %s", err, out)
	assert.Equal(t, ee.ExitCode(), 7, out)
	assert.Assert(t, strings.Contains(out, "attached output"), out)

	d.ok("rm", "-f", "hello", "once")
}

// realProject is a project whose db is a real web server: its healthcheck
// is a readiness probe the kubelet runs, its page names the project.
func realProject(name string) string {
	return `services:
  db:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo db of $$PROJECT > /www/index.html && exec httpd -f -p 80 -h /www"]
    environment:
      PROJECT: ` + name + `
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      retries: 60
    volumes:
      - data:/data
  web:
    image: busybox
    command: ["sleep", "3600"]
    depends_on:
      db:
        condition: service_healthy
  worker:
    image: busybox
    command: ["sleep", "3600"]
    deploy:
      replicas: 2
volumes:
  data:
`
}

// TestKubeletRealCompose: two compose projects on the real node; the
// healthcheck gates web's start through the kubelet's readiness probe,
// each web reaches its own db over the pod network, by IP and by the bare
// name db through the cluster DNS, the other project's by its berth zone
// name; scale and down -v converge.
func TestKubeletRealCompose(t *testing.T) {
	c, d := berthdOnRealNode(t)

	for _, p := range []string{"shop", "blog"} {
		d.writeProject(p, realProject(p))
		start := time.Now()
		d.compose(p, "up", "-d")
		t.Logf("measured: compose -p %s up -d with real pods (db healthy first): %v", p, time.Since(start).Round(time.Millisecond))
	}
	for _, p := range []string{"shop", "blog"} {
		ps := composePS(t, d, p)
		assert.DeepEqual(t, ps, map[string]string{p + "-db-1": "running", p + "-web-1": "running", p + "-worker-1": "running", p + "-worker-2": "running"})
		// docker inspect shows the pod's IP, from the node's CNI range
		ip := strings.TrimSpace(d.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", p+"-db-1"))
		assert.Assert(t, strings.HasPrefix(ip, "10.226.0."), "%s-db-1's IP %q", p, ip)
		out := d.ok("exec", p+"-web-1", "wget", "-q", "-O", "-", "http://"+ip+"/")
		assert.Equal(t, strings.TrimSpace(out), "db of "+p)
	}
	// names through the cluster DNS (CoreDNS with berth's rewrite, asked
	// by the pods through the node): a bare name is the project's own
	// service, a zone name any project's, a replica by its number
	for _, p := range []string{"shop", "blog"} {
		out := d.ok("exec", p+"-web-1", "wget", "-q", "-O", "-", "http://db/")
		assert.Equal(t, strings.TrimSpace(out), "db of "+p, "bare db from %s", p)
	}
	out := d.ok("exec", "shop-web-1", "wget", "-q", "-O", "-", "http://db.blog.berth.internal/")
	assert.Equal(t, strings.TrimSpace(out), "db of blog", "blog's db by its zone name from shop")
	w2 := strings.TrimSpace(d.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "shop-worker-2"))
	out = d.ok("exec", "blog-web-1", "nslookup", "2.worker.shop.berth.internal")
	assert.Assert(t, strings.Contains(out, w2), "2.worker.shop.berth.internal is shop-worker-2 (%s):\n%s", w2, out)
	if out, err := d.run("exec", "shop-web-1", "nslookup", "db.nope.berth.internal"); err == nil {
		t.Fatalf("a project that does not exist resolved:\n%s", out)
	}

	// the claim is a real directory the pod writes
	d.ok("exec", "shop-db-1", "sh", "-c", "echo kept > /data/f")
	assert.Equal(t, strings.TrimSpace(d.ok("exec", "shop-db-1", "cat", "/data/f")), "kept")

	d.compose("shop", "up", "-d", "--scale", "worker=3")
	waitFor(t, "3 workers of shop running", 2*time.Minute, func() error {
		n := 0
		for name, st := range composePS(t, d, "shop") {
			if strings.HasPrefix(name, "shop-worker-") && st == "running" {
				n++
			}
		}
		if n != 3 {
			return fmt.Errorf("%d workers running", n)
		}
		return nil
	})

	for _, p := range []string{"shop", "blog"} {
		start := time.Now()
		d.compose(p, "down", "-v")
		t.Logf("measured: compose -p %s down -v: %v", p, time.Since(start).Round(time.Millisecond))
	}
	waitFor(t, "nothing of berth's left", 3*time.Minute, func() error { return leftovers(c) })
}
