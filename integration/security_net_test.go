package integration

// Network security promises, each proved by the attack it stops: a host on
// the LAN (a network namespace of the test's own, routed through this host)
// reaching container ports that are not published, or published on
// 127.0.0.1 only; a container sending a hand-made packet to the host's
// 127.0.0.1 with a raw socket (CVE-2020-8558); and the FORWARD policy when
// berth is what turns forwarding on. All traffic goes to loopback or to
// addresses of bridges and namespaces these tests create, inside the
// daemon's own address block.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// lanHost is a second network namespace acting as a host on the LAN: a
// veth pair to this host on the last /30 of the daemon's address block (so
// nothing else on the machine uses it), with routes to the given subnets
// and to 127.0.0.1 through this host, as an attacker next to the host
// would set them.
type lanHost struct {
	ns     netns.NsHandle
	HostIP netip.Addr // this host's address on the link: "its LAN address"
	IP     netip.Addr // the LAN host's
}

func newLANHost(t *testing.T, d *testenv.Daemon, routes ...netip.Prefix) *lanHost {
	t.Helper()
	base := d.Net.Block.Addr().As4()
	last := netip.AddrFrom4([4]byte{base[0], base[1], base[2] + 15, 252})
	link := netip.PrefixFrom(last, 30)
	l := &lanHost{HostIP: last.Next(), IP: last.Next().Next()}
	have, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	assert.NilError(t, err)
	for _, r := range have {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok && ones > 0 && netip.PrefixFrom(a, ones).Overlaps(link) {
			t.Fatalf("the LAN test link %s overlaps the host route %s", link, r.Dst)
		}
	}

	runtime.LockOSThread()
	orig, err := netns.Get()
	assert.NilError(t, err)
	ns, err := netns.New() // and switched into it
	if err == nil {
		err = netns.Set(orig)
	}
	orig.Close()
	if err != nil {
		t.Fatalf("new netns: %v", err) // the thread stays locked and dies
	}
	runtime.UnlockOSThread()
	l.ns = ns
	hostIf := "bsec" + strconv.Itoa(d.Net.N)
	t.Cleanup(func() {
		if h, err := netlink.LinkByName(hostIf); err == nil {
			_ = netlink.LinkDel(h)
		}
		ns.Close()
	})
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: "lan0", PeerNamespace: netlink.NsFd(int(ns))}
	assert.NilError(t, netlink.LinkAdd(veth))
	h, err := netlink.LinkByName(hostIf)
	assert.NilError(t, err)
	assert.NilError(t, netlink.AddrAdd(h, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(l.HostIP, 30))}))
	assert.NilError(t, netlink.LinkSetUp(h))

	nh, err := netlink.NewHandleAt(ns)
	assert.NilError(t, err)
	defer nh.Close()
	peer, err := nh.LinkByName("lan0")
	assert.NilError(t, err)
	assert.NilError(t, nh.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(l.IP, 30))}))
	assert.NilError(t, nh.LinkSetUp(peer))
	gw := l.HostIP.AsSlice()
	for _, p := range routes {
		assert.NilError(t, nh.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Dst: ipNet(p), Gw: gw}))
	}
	// lo stays down, so 127.0.0.1 is not local here: it goes to the host,
	// and answers from it are accepted (route_localnet)
	assert.NilError(t, nh.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("127.0.0.1/32")), Gw: gw}))
	assert.NilError(t, l.do(func() error {
		for _, k := range []string{"all", "lan0"} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+k+"/route_localnet", []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	}))
	return l
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// do runs fn on a thread inside the LAN namespace; sockets fn makes belong
// to it.
func (l *lanHost) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(l.ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else the thread dies with the goroutine
	}()
	return <-errc
}

// get is one HTTP GET from the LAN host; a dropped SYN fails within timeout.
func (l *lanHost) get(addr string, timeout time.Duration) (string, error) {
	var body string
	err := l.do(func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		body = string(b)
		return err
	})
	return body, err
}

// mustGet polls until a GET from the LAN host answers (the server may be
// starting) and returns the body.
func (l *lanHost) mustGet(t *testing.T, addr string) string {
	t.Helper()
	var body string
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		b, err := l.get(addr, time.Second)
		if err != nil {
			return poll.Continue("GET %s from the LAN host: %v", addr, err)
		}
		body = b
		return poll.Success()
	}, poll.WithTimeout(15*time.Second), poll.WithDelay(100*time.Millisecond))
	return body
}

// mustNotGet checks that a GET from the LAN host gets no answer.
func (l *lanHost) mustNotGet(t *testing.T, addr, what string) {
	t.Helper()
	body, err := l.get(addr, time.Second)
	assert.Check(t, err != nil, "%s: the LAN host reached %s:\n%s", what, addr, body)
}

// serve runs an HTTP server in the LAN namespace that answers with the
// address it sees the client at; it returns the server's address.
func (l *lanHost) serve(t *testing.T) string {
	t.Helper()
	var ln net.Listener
	assert.NilError(t, l.do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(l.IP, 0).String())
		return err
	}))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprint(w, host)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func subnetOf(t *testing.T, d *testenv.Daemon, netName string) netip.Prefix {
	t.Helper()
	return netip.MustParsePrefix(inspectNet(t, d, netName).IPAM.Config[0].Subnet)
}

func iptablesS(t *testing.T, table, chain string) string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", table, "-S", chain).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	return string(out)
}

// TestSecurityLANReachesPublishedPortsOnly: a LAN host that routes a
// container subnet through the host reaches published ports and nothing
// else: no unpublished port, no port published on 127.0.0.1 (neither by
// the container's address nor by sending to 127.0.0.1), no container port
// by its address. Containers still reach the LAN. The admins' BERTH-USER
// chain is evaluated first and outlives a daemon restart.
func TestSecurityLANReachesPublishedPortsOnly(t *testing.T) {
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	pAll, pLo := netFreePort(t), netFreePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "pub", "--network", "app", "-p", fmt.Sprintf("%d:80", pAll)}, httpd...)...)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "local", "--network", "app", "-p", fmt.Sprintf("127.0.0.1:%d:80", pLo)}, httpd...)...)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "hidden", "--network", "app"}, httpd...)...)
	lan := newLANHost(t, d, subnetOf(t, d, "app"))
	published := netip.AddrPortFrom(lan.HostIP, uint16(pAll)).String()

	// what must work: the published port from the LAN, the loopback one
	// from the host
	assert.Check(t, is.Contains(lan.mustGet(t, published), httpdBody))
	assert.Check(t, is.Contains(netGet(t, fmt.Sprintf("http://127.0.0.1:%d/", pLo)), httpdBody))

	// the attacks
	lan.mustNotGet(t, ctrIP(t, d, "hidden", "app")+":80", "unpublished port by the container's address")
	lan.mustNotGet(t, ctrIP(t, d, "local", "app")+":80", "port published on 127.0.0.1, by the container's address")
	lan.mustNotGet(t, fmt.Sprintf("127.0.0.1:%d", pLo), "port published on 127.0.0.1, sent to 127.0.0.1")
	lan.mustNotGet(t, ctrIP(t, d, "pub", "app")+":80", "published container port by the container's address")

	// containers still reach the LAN, masqueraded behind the host
	from := inCtrOK(t, d, "hidden", retried(wgetOnce("http://"+lan.serve(t)+"/")))
	assert.Check(t, is.Equal(from, lan.HostIP.String()))

	// BERTH-USER: the admin's rule filters a published port, and stays
	// across a daemon restart, still evaluated before the daemon's chain
	rule := []string{"-s", lan.IP.String() + "/32", "-p", "tcp", "-j", "DROP"}
	out, err := exec.Command("iptables", append([]string{"-w", "-I", "BERTH-USER"}, rule...)...).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("iptables", append([]string{"-w", "-D", "BERTH-USER"}, rule...)...).Run() })
	lan.mustNotGet(t, published, "published port with a BERTH-USER drop rule")
	d.Restart(t, syscall.SIGTERM)
	assert.Check(t, is.Contains(iptablesS(t, "filter", "BERTH-USER"), "-A BERTH-USER -s "+lan.IP.String()+"/32 -p tcp -j DROP"))
	fwd := iptablesS(t, "filter", "FORWARD")
	user, own := strings.Index(fwd, "-A FORWARD -j BERTH-USER\n"), strings.Index(fwd, "-A FORWARD -j BERTH-FWD-"+d.Net.Bridge+"\n")
	assert.Check(t, user >= 0 && own > user, "BERTH-USER must come before the daemon's chain:\n%s", fwd)
	lan.mustNotGet(t, published, "published port with a BERTH-USER drop rule, after a restart")
	out, err = exec.Command("iptables", append([]string{"-w", "-D", "BERTH-USER"}, rule...)...).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	assert.Check(t, is.Contains(lan.mustGet(t, published), httpdBody))
	lan.mustNotGet(t, ctrIP(t, d, "hidden", "app")+":80", "unpublished port, after a restart")
}

// buildNetprobe builds integration/testdata/netprobe, a static binary for
// busybox containers.
func buildNetprobe(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "netprobe")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/netprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	assert.NilError(t, err, "build netprobe: %s", b)
	return out
}

// udpSink listens on addr and reports whether want arrives within wait.
func udpSink(t *testing.T, addr string) (net.PacketConn, func(want string, wait time.Duration) bool) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", addr)
	assert.NilError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc, func(want string, wait time.Duration) bool {
		buf := make([]byte, 1500)
		deadline := time.Now().Add(wait)
		for {
			_ = pc.SetReadDeadline(deadline)
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return false
			}
			if string(buf[:n]) == want {
				return true
			}
		}
	}
}

// TestSecurityContainerRawSocketToHostLoopback: route_localnet is on for
// berth's bridges (published ports on 127.0.0.1 need it); a container with
// CAP_NET_RAW (a default capability) that sends a hand-made packet to
// 127.0.0.1 through its gateway must not reach the host's loopback
// services (CVE-2020-8558). The same packet to the gateway's address
// arrives, which proves the probe's path.
func TestSecurityContainerRawSocketToHostLoopback(t *testing.T) {
	probe := buildNetprobe(t)
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	for _, netName := range []string{"bridge", "app"} {
		gw := inspectNet(t, d, netName).IPAM.Config[0].Gateway
		ctl, ctlGot := udpSink(t, gw+":0")
		lo, loGot := udpSink(t, "127.0.0.1:0")
		run := func(dst string, pc net.PacketConn, payload string) {
			port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
			d.DockerOK(t, "run", "--rm", "--network", netName, "-v", probe+":/netprobe:ro", "busybox", "/netprobe", dst, port, payload)
		}
		run(gw, ctl, "control-"+netName)
		assert.Check(t, ctlGot("control-"+netName, 3*time.Second), "%s: the probe's packet to the gateway did not arrive: the test is broken", netName)
		run("127.0.0.1", lo, "secret-"+netName)
		assert.Check(t, !loGot("secret-"+netName, 2*time.Second), "%s: a container reached the host's 127.0.0.1 with a raw packet", netName)
	}
}

// forwardingNS is a network namespace of the test's own, with lo up and
// IPv4 forwarding set to fwd, in which a daemon can change host-wide
// settings without touching the host's.
func forwardingNS(t *testing.T, name, fwd string) string {
	t.Helper()
	name = fmt.Sprintf("berth-%s-%d", name, os.Getpid())
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	assert.NilError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	path := "/run/netns/" + name
	in := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
		assert.NilError(t, err, "%s: %s", strings.Join(args, " "), out)
		return string(out)
	}
	in("ip", "link", "set", "lo", "up")
	in("sh", "-c", "echo "+fwd+" > /proc/sys/net/ipv4/ip_forward")
	return path
}

func inNS(t *testing.T, path string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
	assert.NilError(t, err, "%s: %s", strings.Join(args, " "), out)
	return string(out)
}

// TestSecurityForwardPolicy: when berthd is what turns IPv4 forwarding on,
// it sets the FORWARD policy to DROP (as dockerd does), remembers that it
// did so that a restart keeps the policy DROP, and leaves the policy when
// it stops (its own chains go); when forwarding was on before, the policy
// is the admin's. Each daemon runs in a namespace of its own, so the
// host's policy is never touched.
func TestSecurityForwardPolicy(t *testing.T) {
	ns := forwardingNS(t, "fwdoff", "0")
	d := testenv.StartDaemonIn(t, ns)
	d.DockerOK(t, "network", "create", "app")
	assert.Check(t, is.Equal(strings.TrimSpace(inNS(t, ns, "cat", "/proc/sys/net/ipv4/ip_forward")), "1"))
	fwd := inNS(t, ns, "iptables", "-w", "-S", "FORWARD")
	assert.Check(t, is.Contains(fwd, "-P FORWARD DROP\n"))
	assert.Check(t, strings.HasPrefix(strings.SplitN(fwd, "\n", 2)[1], "-A FORWARD -j BERTH-USER\n"), fwd)
	_, err := os.Stat(filepath.Join(d.ExecRoot, "ip_forward-by-berth"))
	assert.Check(t, err == nil, "berth remembers that it turned forwarding on: %v", err)

	// under the DROP policy the daemon's own rules let its containers
	// talk and its published ports answer
	d.LoadBusybox(t)
	port := netFreePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web", "--network", "app", "-p", fmt.Sprintf("%d:80", port)}, httpd...)...)
	d.DockerOK(t, "run", "-d", "--name", "client", "--network", "app", "busybox", "sleep", "600")
	assert.Check(t, is.Equal(inCtrOK(t, d, "client", retried(wgetOnce("http://web/"))), httpdBody+"\n"))
	assert.Check(t, is.Contains(inNS(t, ns, "sh", "-c", fmt.Sprintf("for i in $(seq 50); do busybox wget -qO- http://127.0.0.1:%d/ && exit 0; sleep 0.2; done; exit 1", port)), httpdBody))
	d.DockerOK(t, "rm", "-f", "web", "client")

	// an admin (or a firewall reload) opens the policy: berth closes it
	// again at its next start, since forwarding is its doing
	inNS(t, ns, "iptables", "-w", "-P", "FORWARD", "ACCEPT")
	d.Restart(t, syscall.SIGTERM)
	assert.Check(t, is.Contains(inNS(t, ns, "iptables", "-w", "-S", "FORWARD"), "-P FORWARD DROP\n"))

	// an idle daemon removes its chains when it stops; the policy and
	// BERTH-USER stay, as with dockerd
	d.DockerOK(t, "network", "rm", "app")
	d.Stop(t)
	fwd = inNS(t, ns, "iptables", "-w", "-S", "FORWARD")
	assert.Check(t, is.Contains(fwd, "-P FORWARD DROP\n"))
	assert.Check(t, !strings.Contains(fwd, "BERTH-FWD-"), fwd)
	assert.Check(t, is.Contains(inNS(t, ns, "iptables", "-w", "-S"), "-N BERTH-USER\n"))

	// forwarding on before berth: the policy is left to the admin
	ns2 := forwardingNS(t, "fwdon", "1")
	d2 := testenv.StartDaemonIn(t, ns2)
	d2.DockerOK(t, "network", "create", "app")
	assert.Check(t, is.Contains(inNS(t, ns2, "iptables", "-w", "-S", "FORWARD"), "-P FORWARD ACCEPT\n"))
	_, err = os.Stat(filepath.Join(d2.ExecRoot, "ip_forward-by-berth"))
	assert.Check(t, os.IsNotExist(err), "%v", err)
}
