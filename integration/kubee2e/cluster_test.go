//go:build berth_kube_e2e

package kubee2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The test control plane: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok from `make kube-tools` (KUBE_TOOLS is its
// directory), all on loopback with free ports and certificates made for
// this run, in a temp dir removed at the end. Every process is stopped by
// its PID when the test ends, pass or fail (t.Cleanup, last started first).
type cluster struct {
	t          *testing.T
	dir        string
	tools      string
	pki        *pki
	kubeconfig string
	cs         kubernetes.Interface
	logDir     string // the component logs, printed when the test fails
	// execDir is the working directory of kwok's exec simulation: kwok runs
	// an exec's command on its own host, here.
	execDir string
	// webLog is the CRI-format file kwok serves as every container's log.
	webLog string
}

// startCluster starts the control plane and a kwok node named node, and
// returns once the node is Ready.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	tools := os.Getenv("KUBE_TOOLS")
	if tools == "" {
		t.Fatal("KUBE_TOOLS is not set: run make e2e-kube (scripts/e2e-kube.sh builds the control plane with make kube-tools)")
	}
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir, tools: tools, logDir: filepath.Join(dir, "logs"), execDir: filepath.Join(dir, "exec")}
	for _, d := range []string{c.logDir, c.execDir, filepath.Join(dir, "pki")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	t.Cleanup(c.dumpLogsOnFailure)
	p, err := newPKI(filepath.Join(dir, "pki"))
	must(t, err)
	c.pki = p
	loop := []net.IP{net.ParseIP("127.0.0.1")}
	must(t, p.issue("apiserver", "kube-apiserver", nil, append(loop, net.ParseIP("10.96.0.1")), []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}))
	must(t, p.issue("kwok", "kwok", nil, loop, []string{"localhost"}))
	must(t, p.issue("admin", "berth-e2e-admin", []string{"system:masters"}, nil, nil))
	must(t, p.serviceAccountKey())

	etcdClient, etcdPeer, apiPort := freePort(t), freePort(t), freePort(t)
	c.start("etcd", "etcd", "--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:"+etcdClient, "--advertise-client-urls=http://127.0.0.1:"+etcdClient,
		"--listen-peer-urls=http://127.0.0.1:"+etcdPeer, "--initial-advertise-peer-urls=http://127.0.0.1:"+etcdPeer,
		"--initial-cluster=e2e=http://127.0.0.1:"+etcdPeer, "--unsafe-no-fsync=true", "--log-level=warn")
	c.waitFor("etcd health", 2*time.Minute, func() error {
		r, err := http.Get("http://127.0.0.1:" + etcdClient + "/health")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", r.Status)
		}
		return nil
	})

	// RBAC, as a real cluster: the admin certificate's group system:masters
	// is bound to cluster-admin by the API server's bootstrap policy, so
	// berthd, the controllers and kwok act as the cluster's admin.
	c.start("kube-apiserver", "kube-apiserver", "--etcd-servers=http://127.0.0.1:"+etcdClient,
		"--bind-address=127.0.0.1", "--secure-port="+apiPort,
		"--tls-cert-file="+p.path("apiserver.crt"), "--tls-private-key-file="+p.path("apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.path("sa.pub"), "--service-account-signing-key-file="+p.path("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--kubelet-client-certificate="+p.path("admin.crt"), "--kubelet-client-key="+p.path("admin.key"),
		"--kubelet-certificate-authority="+p.path("ca.crt"), "--kubelet-preferred-address-types=InternalIP",
		"--enable-priority-and-fairness=false", "--profiling=false", "--cert-dir="+filepath.Join(dir, "apiserver-certs"))
	c.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	must(t, p.kubeconfig(c.kubeconfig, "https://127.0.0.1:"+apiPort, "admin"))
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	must(t, err)
	c.cs, err = kubernetes.NewForConfig(rc)
	must(t, err)
	c.waitFor("kube-apiserver /readyz", 3*time.Minute, func() error {
		_, err := c.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err
	})

	c.start("kube-controller-manager", "kube-controller-manager", "--kubeconfig="+c.kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+freePort(t), "--leader-elect=false",
		"--service-account-private-key-file="+p.path("sa.key"), "--root-ca-file="+p.path("ca.crt"))
	c.start("kube-scheduler", "kube-scheduler", "--kubeconfig="+c.kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+freePort(t), "--leader-elect=false")

	kwokPort := freePort(t)
	c.webLog = filepath.Join(dir, "container.log")
	must(t, os.WriteFile(c.webLog, []byte(criLog("kwok says hello from the container log")), 0o644))
	kwokCfg := filepath.Join(dir, "kwok.yaml")
	must(t, c.writeKwokConfig(kwokCfg))
	c.startEnv("kwok", []string{"HOME=" + dir}, "kwok", "--kubeconfig="+c.kubeconfig, "--config="+kwokCfg,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=127.0.0.1", "--node-port="+kwokPort, "--server-address=127.0.0.1:"+kwokPort,
		"--tls-cert-file="+p.path("kwok.crt"), "--tls-private-key-file="+p.path("kwok.key"),
		"--node-lease-duration-seconds=40")
	// registered after the processes': runs before they are stopped
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpObjects()
		}
	})
	c.addNode("kwok-node-1")
	c.addVolumes(4)
	return c
}

// writeKwokConfig writes kwok's --config: the stages `make kube-tools`
// copied from the kwok module (nodes become Ready and keep a lease; pods
// become Running and Ready at once, complete, and go when deleted), the
// logs simulation (every container's log is c.webLog) and the exec
// simulation (a command runs on kwok's host, in c.execDir).
func (c *cluster) writeKwokConfig(path string) error {
	var b strings.Builder
	for _, s := range []string{"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete"} {
		data, err := os.ReadFile(filepath.Join(c.tools, "stages", s+".yaml"))
		if err != nil {
			return fmt.Errorf("kwok stage (make kube-tools copies them): %w", err)
		}
		b.WriteString("---\n")
		b.Write(data)
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, `---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: e2e
spec:
  logs:
  - logsFile: %s
    follow: false
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: e2e
spec:
  execs:
  - local:
      workDir: %s
`, c.webLog, c.execDir)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// criLog is line in the CRI log format kwok's logs simulation reads.
func criLog(line string) string {
	return time.Now().UTC().Format(time.RFC3339Nano) + " stdout F " + line + "\n"
}

// addNode makes a Node kwok manages and waits until kwok made it Ready.
func (c *cluster) addNode(name string) {
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		Labels:      map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"}}}
	_, err := c.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	must(c.t, err)
	c.waitFor("node "+name+" Ready", 2*time.Minute, func() error { return c.nodeReady(name) })
}

// nodeReady says why node name is not Ready, if it is not.
func (c *cluster) nodeReady(name string) error {
	n, err := c.cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("node %s not Ready: %v", name, n.Status.Conditions)
}

// addVolumes makes n PersistentVolumes of the backend's default claim size
// with no storage class: the test cluster has no provisioner, so these
// stand for what a cluster's admin or storage class provides; the
// persistent volume controller binds the backend's claims to them.
func (c *cluster) addVolumes(n int) {
	for i := 1; i <= n; i++ {
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("e2e-pv-%d", i)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(c.dir, "pv", strconv.Itoa(i))}},
			}}
		_, err := c.cs.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{})
		must(c.t, err)
	}
}

// start runs tool from the tools directory (or an absolute path) with its
// output in logDir/name.log, and stops it by its PID when the test ends.
func (c *cluster) start(name, tool string, args ...string) *exec.Cmd {
	return c.startEnv(name, nil, tool, args...)
}

func (c *cluster) startEnv(name string, env []string, tool string, args ...string) *exec.Cmd {
	c.t.Helper()
	bin := tool
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(c.tools, tool)
	}
	logf, err := os.Create(filepath.Join(c.logDir, name+".log"))
	must(c.t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	// a test binary that dies takes its children with it
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(c.t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.t.Cleanup(func() {
		pid := cmd.Process.Pid
		sig := syscall.SIGTERM
		if c.t.Failed() && name == "berthd-kube" {
			// a failed test gets berthd's goroutines in its log
			sig = syscall.SIGQUIT
		}
		_ = syscall.Kill(pid, sig)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.t.Logf("%s (pid %d) did not stop in 30 s after SIGTERM: SIGKILL", name, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	})
	return cmd
}

// waitFor polls f until it returns nil, failing the test after limit.
func (c *cluster) waitFor(what string, limit time.Duration, f func() error) {
	c.t.Helper()
	waitFor(c.t, what, limit, f)
}

func waitFor(t *testing.T, what string, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dumpLogsOnFailure prints the end of each component's log.
func (c *cluster) dumpLogsOnFailure() {
	if !c.t.Failed() {
		return
	}
	entries, _ := os.ReadDir(c.logDir)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(c.logDir, e.Name()))
		if err != nil {
			continue
		}
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > 40 && e.Name() != "berthd-kube.log" {
				lines = lines[1:]
			}
		}
		f.Close()
		c.t.Logf("--- last lines of %s:\n%s", e.Name(), strings.Join(lines, "\n"))
	}
}

// dumpObjects prints the pods, claims and events of every namespace, for
// a failure's diagnosis.
func (c *cluster) dumpObjects() {
	if c.cs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	if pods, err := c.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s/%s node=%q phase=%s conditions=%v\n", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
		}
	}
	if pvcs, err := c.cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pvcs.Items {
			fmt.Fprintf(&b, "claim %s/%s %s volume=%q\n", p.Namespace, p.Name, p.Status.Phase, p.Spec.VolumeName)
		}
	}
	if evs, err := c.cs.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range evs.Items {
			fmt.Fprintf(&b, "event %s %s/%s %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	c.t.Logf("--- cluster objects:\n%s", b.String())
}

// freePort is a loopback TCP port free now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
