//go:build berth_kube_e2e

package kubee2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/berthd/berth/kube/dnsrewrite"
)

// zoneDNS is CoreDNS (COREDNS: scripts/coredns.sh builds it) on a loopback
// port, set up as k3s and AKS set up theirs: a Corefile whose `.:53` block
// imports the .override keys of the ConfigMap kube-system/coredns-custom,
// here the one `berth kube dns-config` prints, applied through the test's
// API server and read back from it, and the kubernetes plugin on that API
// server. The cluster DNS a pod would ask, with berth's rewrite.
type zoneDNS struct {
	addr string
}

// startZoneDNS applies the ConfigMap, starts CoreDNS on a loopback port and
// returns once its kubernetes plugin has synced (the API server's own
// Service resolves).
func startZoneDNS(t *testing.T, c *cluster) *zoneDNS {
	t.Helper()
	return startZoneDNSAt(t, c, "127.0.0.1", freePort(t))
}

// startZoneDNSAt is startZoneDNS on ip:port (the real node's pods ask the
// node's address on port 53).
func startZoneDNSAt(t *testing.T, c *cluster, ip, port string) *zoneDNS {
	t.Helper()
	bin := envPath(t, "COREDNS", "")
	ctx := context.Background()
	manifest, err := dnsrewrite.ConfigMap(dnsrewrite.Options{})
	assert.NilError(t, err)
	var cm corev1.ConfigMap
	assert.NilError(t, yaml.UnmarshalStrict([]byte(manifest), &cm))
	_, err = c.cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, &cm, metav1.CreateOptions{})
	assert.NilError(t, err)
	applied, err := c.cs.CoreV1().ConfigMaps("kube-system").Get(ctx, dnsrewrite.ConfigMapName, metav1.GetOptions{})
	assert.NilError(t, err)
	custom := filepath.Join(c.dir, "coredns-custom")
	must(t, os.MkdirAll(custom, 0o755))
	for k, v := range applied.Data { // the ConfigMap's volume: a file per key
		must(t, os.WriteFile(filepath.Join(custom, k), []byte(v), 0o644))
	}
	z := &zoneDNS{addr: net.JoinHostPort(ip, port)}
	corefile := fmt.Sprintf(`.:%s {
    bind %s
    errors
    log
    kubernetes cluster.local {
        kubeconfig %s
    }
    import %s/*.override
}
`, port, ip, c.kubeconfig, custom)
	path := filepath.Join(c.dir, "Corefile")
	must(t, os.WriteFile(path, []byte(corefile), 0o644))
	c.start("coredns", bin, "-conf", path)
	t0 := time.Now()
	waitFor(t, "CoreDNS answers kubernetes.default.svc.cluster.local", 2*time.Minute, func() error {
		_, err := z.addrs("kubernetes.default.svc.cluster.local", mdns.RcodeSuccess)
		return err
	})
	t.Logf("measured: CoreDNS serving the cluster in %v", time.Since(t0).Round(time.Millisecond))
	return z
}

// addrs asks name's A records and checks the answer's rcode, that the
// question comes back as asked and that every record is named name (the
// rewrite's answer rule undoes the cluster name; in lower case, which DNS
// names compare equal to, as resolvers do).
func (z *zoneDNS) addrs(name string, rcode int) ([]string, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	cl := &mdns.Client{Timeout: 5 * time.Second}
	r, _, err := cl.Exchange(m, z.addr)
	if err != nil {
		return nil, err
	}
	if r.Rcode != rcode {
		return nil, fmt.Errorf("%s: rcode %s, want %s", name, mdns.RcodeToString[r.Rcode], mdns.RcodeToString[rcode])
	}
	if len(r.Question) != 1 || r.Question[0].Name != mdns.Fqdn(name) {
		return nil, fmt.Errorf("%s: question %v in the answer", name, r.Question)
	}
	var out []string
	for _, rr := range r.Answer {
		a, ok := rr.(*mdns.A)
		if !ok {
			return nil, fmt.Errorf("%s: answer %v is not an A record", name, rr)
		}
		if !strings.EqualFold(a.Hdr.Name, mdns.Fqdn(name)) {
			return nil, fmt.Errorf("%s: record named %s", name, a.Hdr.Name)
		}
		out = append(out, a.A.String())
	}
	slices.Sort(out)
	return out, nil
}

// want waits until name answers exactly addrs (none: NXDOMAIN): the
// EndpointSlices follow the pods, and CoreDNS follows the slices.
func (z *zoneDNS) want(t *testing.T, name string, addrs ...string) {
	t.Helper()
	rcode := mdns.RcodeSuccess
	if len(addrs) == 0 {
		rcode = mdns.RcodeNameError
	}
	slices.Sort(addrs)
	waitFor(t, "DNS "+name, 2*time.Minute, func() error {
		got, err := z.addrs(name, rcode)
		if err != nil {
			return err
		}
		if !slices.Equal(got, addrs) {
			return fmt.Errorf("%s answers %v, want %v", name, got, addrs)
		}
		return nil
	})
	t.Logf("%s -> %v", name, addrs)
}

// checkZoneNames is issue 19's "the berth zone names resolve inside the
// cluster": with shop (db, web, worker x3) and blog (db) up, each zone name
// answers its own project's pods through the rewrite, and a name the
// backend has no object for answers NXDOMAIN.
func checkZoneNames(t *testing.T, c *cluster, z *zoneDNS, shopDB, blogDB string) {
	t.Helper()
	t0 := time.Now()
	defer func() { t.Logf("measured: the zone names' checks in %v", time.Since(t0).Round(time.Millisecond)) }()
	z.want(t, "db.shop.berth.internal", shopDB)
	z.want(t, "DB.Shop.Berth.Internal", shopDB)
	z.want(t, "db.blog.berth.internal", blogDB)
	// as many workers as the steps before left (3, or 4 after the logs step)
	n := int(replicas(t, c, "shop")["worker"])
	assert.Assert(t, n >= 3, "shop has %d workers", n)
	var workers []string
	for i := 1; i <= n; i++ {
		workers = append(workers, podIP(t, c, "shop", fmt.Sprintf("worker-%d", i)))
	}
	z.want(t, "2.worker.shop.berth.internal", workers[1])
	z.want(t, "3.worker.shop.berth.internal", workers[2])
	z.want(t, "worker.shop.berth.internal", workers...)
	// what the backend has no object for
	z.want(t, "db.nope.berth.internal")
	z.want(t, "9.worker.shop.berth.internal")
	z.want(t, "1.db.blog.berth.internal", blogDB)
	z.want(t, "0.worker.shop.berth.internal")
	z.want(t, "a.2.worker.shop.berth.internal")
	z.want(t, "shop.berth.internal")
	// the cluster's own names are untouched
	z.want(t, "db.shop.svc.cluster.local", shopDB)
	checkDefaultNamespace(t, c, z)
}

// checkDefaultNamespace: plain `docker run` pods (namespace berth-default)
// have no zone names, as on a single host, though the cluster answers the
// namespace's Services by their cluster names.
func checkDefaultNamespace(t *testing.T, c *cluster, z *zoneDNS) {
	t.Helper()
	ctx := context.Background()
	const ns = "berth-default"
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err == nil {
		t.Cleanup(func() { _ = c.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	} else if !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	svc, err := c.cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	defer func() { must(t, c.cs.CoreV1().Services(ns).Delete(ctx, "probe", metav1.DeleteOptions{})) }()
	assert.Assert(t, svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone, "probe has no ClusterIP")
	z.want(t, "probe.berth-default.svc.cluster.local", svc.Spec.ClusterIP)
	z.want(t, "probe.berth-default.berth.internal")
	z.want(t, "1.probe.berth-default.berth.internal")
}

func podIP(t *testing.T, c *cluster, ns, name string) string {
	t.Helper()
	p, err := c.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Assert(t, p.Status.PodIP != "", "pod %s/%s has no IP", ns, name)
	assert.Assert(t, !strings.Contains(p.Status.PodIP, ":"), "pod %s/%s: IPv6 %s", ns, name, p.Status.PodIP)
	return p.Status.PodIP
}
