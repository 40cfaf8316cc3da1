package integration

// Issue 5 at the container level: containers on real bridges, reached by
// name, alias and published port, through the docker CLI against berthd.
// All traffic stays on the bridges and namespaces the tests create, or
// loopback; test daemons forward unknown names to 127.0.0.1 only.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

const httpdBody = "hello from berth busybox" // internal/testimage's /var/www/index.html

// httpd runs busybox httpd in the foreground on port 80.
var httpd = []string{"busybox", "httpd", "-f", "-p", "80", "-h", "/var/www"}

// netFreePort is a TCP port on 127.0.0.1 that nothing listens on right now.
func netFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// netGet fetches url from the host, retrying while the server comes up.
func netGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return string(b)
		}
		last = fmt.Errorf("status %d, %v", resp.StatusCode, err)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// retried wraps a shell command in a subshell loop that runs it until it
// succeeds (20 tries, 0.2 s apart): a must-answer check under load.
func retried(cmd string) string {
	return "(for i in $(seq 20); do " + cmd + " && exit 0; sleep 0.2; done; exit 1)"
}

// wgetOnce is one HTTP GET from a container (busybox 1.35's wget -T crashes).
func wgetOnce(url string) string { return "timeout 3 wget -q -O- " + url }

// wgetShort is a GET expected to fail: a dropped SYN on a local bridge
// needs no more than a second to tell.
func wgetShort(url string) string { return "timeout 1 wget -q -O- " + url }

// inCtr runs a shell script in a running container and returns the result.
func inCtr(d *testenv.Daemon, ctr, script string) *icmd.Result {
	return d.Docker("exec", ctr, "sh", "-c", script)
}

// inCtrOK is inCtr that must succeed.
func inCtrOK(t *testing.T, d *testenv.Daemon, ctr, script string) string {
	t.Helper()
	r := inCtr(d, ctr, script)
	assert.Assert(t, r.ExitCode == 0, "in %s: %s: exit %d\n%s", ctr, script, r.ExitCode, r.Combined())
	return r.Stdout()
}

// endpoint is NetworkSettings.Networks[name] as the CLI prints it.
type endpoint struct {
	IPAMConfig  *struct{ IPv4Address string }
	Aliases     []string
	DNSNames    []string
	MacAddress  string
	NetworkID   string
	EndpointID  string
	Gateway     string
	IPAddress   string
	IPPrefixLen int
}

type portBinding struct{ HostIp, HostPort string }

type netSettings struct {
	SandboxKey string
	Networks   map[string]endpoint
	Ports      map[string][]portBinding
}

func ctrNet(t *testing.T, d *testenv.Daemon, ctr string) netSettings {
	t.Helper()
	var ns netSettings
	assert.NilError(t, json.Unmarshal([]byte(d.DockerOK(t, "inspect", "-f", "{{json .NetworkSettings}}", ctr)), &ns))
	return ns
}

func ctrIP(t *testing.T, d *testenv.Daemon, ctr, netName string) string {
	t.Helper()
	ip := ctrNet(t, d, ctr).Networks[netName].IPAddress
	assert.Assert(t, ip != "", "%s has no address on %s", ctr, netName)
	return ip
}

// psNetworks is the NETWORKS column of docker ps for one container, sorted
// (the CLI joins the map's keys in map order).
func psNetworks(t *testing.T, d *testenv.Daemon, ctr string) []string {
	t.Helper()
	out := strings.TrimSpace(d.DockerOK(t, "ps", "--filter", "name=^"+ctr+"$", "--format", "{{.Networks}}"))
	nets := strings.Split(out, ",")
	slices.Sort(nets)
	return nets
}

// inventory is what the daemon holds on the host for its default bridge and
// the named user networks.
func inventory(t *testing.T, d *testenv.Daemon, nets ...string) *network.Inventory {
	t.Helper()
	bridges := []string{d.Net.Bridge}
	for _, n := range nets {
		bridges = append(bridges, "br-"+inspectNet(t, d, n).Id[:12])
	}
	inv, err := network.InventoryOf(context.Background(), network.Config{Bridge: d.Net.Bridge, ExecRoot: d.ExecRoot}, bridges)
	assert.NilError(t, err)
	return inv
}

// waitInventory polls until ok accepts the inventory (veths go in the
// background after rm).
func waitInventory(t *testing.T, d *testenv.Daemon, ok func(*network.Inventory) string, nets ...string) {
	t.Helper()
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if msg := ok(inventory(t, d, nets...)); msg != "" {
			return poll.Continue("%s", msg)
		}
		return poll.Success()
	}, poll.WithTimeout(15*time.Second), poll.WithDelay(100*time.Millisecond))
}

// TestContainersReachByNameAndAlias: two containers on a user network reach
// each other by name, alias, short id and hostname (ping, nslookup, HTTP);
// an alias shared by two containers answers both.
func TestContainersReachByNameAndAlias(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	webID := strings.TrimSpace(d.DockerOK(t, append([]string{"run", "-d", "--name", "web", "--hostname", "webhost", "--network", "app",
		"--network-alias", "www", "--network-alias", "pool"}, httpd...)...))
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web2", "--network", "app", "--network-alias", "pool"}, httpd...)...)
	d.DockerOK(t, "run", "-d", "--name", "client", "--network", "app", "busybox", "sleep", "600")
	webIP, web2IP := ctrIP(t, d, "web", "app"), ctrIP(t, d, "web2", "app")
	clientIP := ctrIP(t, d, "client", "app")
	gw := inspectNet(t, d, "app").IPAM.Config[0].Gateway

	resolv := inCtrOK(t, d, "client", "cat /etc/resolv.conf")
	assert.Check(t, is.Contains(resolv, "nameserver "+gw+"\n"), "berth's DNS server on the network's gateway")

	for _, name := range []string{"web", "www", webID[:12], "webhost"} {
		out := inCtrOK(t, d, "client", retried("ping -c1 -W2 "+name))
		assert.Check(t, is.Contains(out, "PING "+name+" ("+webIP+")"), name)
		assert.Check(t, is.Contains(out, "1 packets received"), name)
		out = inCtrOK(t, d, "client", "nslookup "+name)
		assert.Check(t, is.Contains(out, "Address: "+webIP), name)
	}
	for _, name := range []string{"web", "www"} {
		out := inCtrOK(t, d, "client", retried(wgetOnce("http://"+name+"/")))
		assert.Check(t, is.Equal(out, httpdBody+"\n"), name)
	}
	// and back: web reaches the client by name
	out := inCtrOK(t, d, "web", retried("ping -c1 -W2 client"))
	assert.Check(t, is.Contains(out, "("+clientIP+")"))

	// one alias, two containers: both addresses, in turns
	out = inCtrOK(t, d, "client", "nslookup pool")
	assert.Check(t, is.Contains(out, "Address: "+webIP))
	assert.Check(t, is.Contains(out, "Address: "+web2IP))
	// known name without IPv6: an empty answer, not NXDOMAIN
	r := inCtr(d, "client", "nslookup -type=AAAA web")
	assert.Check(t, !strings.Contains(r.Combined(), "NXDOMAIN"), r.Combined())
}

// TestContainerNameOnOtherNetwork: a container's name does not resolve from
// a network it is not on (Docker: "bad address"), and its address is not
// reachable from there.
func TestContainerNameOnOtherNetwork(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	d.DockerOK(t, "network", "create", "other")
	d.DockerOK(t, "run", "-d", "--name", "client", "--network", "app", "busybox", "sleep", "600")
	d.DockerOK(t, "run", "-d", "--name", "stranger", "--network", "other", "--network-alias", "strangealias", "busybox", "sleep", "600")
	strangerIP := ctrIP(t, d, "stranger", "other")

	// absolute names (no search domain): the network's own records
	for _, name := range []string{"stranger.", "strangealias."} {
		r := inCtr(d, "client", "nslookup "+name)
		assert.Check(t, !strings.Contains(r.Stdout(), strangerIP), "%s resolves from another network:\n%s", name, r.Combined())
	}
	// the bare name, as users write it, through resolv.conf's search list
	r := inCtr(d, "client", "nslookup stranger")
	assert.Check(t, !strings.Contains(r.Stdout(), strangerIP), "stranger resolves from another network:\n%s", r.Combined())
	r = inCtr(d, "client", "ping -c1 -W1 stranger")
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Combined(), "bad address"), "the name must not resolve")
	// by address: isolated
	r = inCtr(d, "client", "ping -c1 -W1 "+strangerIP)
	assert.Check(t, r.ExitCode != 0, "reached %s across networks", strangerIP)
}

// TestPublishedPorts: -p ip:port:80 answers from the host; -P publishes an
// image's EXPOSEd port on an ephemeral port shown by docker port and ps.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	port := netFreePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "pub", "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, httpd...)...)
	assert.Check(t, is.Equal(netGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), httpdBody+"\n"))
	assert.Check(t, is.Equal(d.DockerOK(t, "port", "pub"), fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port)))
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "--format", "{{.Names}} {{.Ports}}"), fmt.Sprintf("pub 127.0.0.1:%d->80/tcp", port)))
	assert.Check(t, is.DeepEqual(ctrNet(t, d, "pub").Ports["80/tcp"], []portBinding{{"127.0.0.1", strconv.Itoa(port)}}))

	// -P with an image that EXPOSEs 80
	img, _ := testenv.Image(t, testimage.Options{Tag: "exposed:latest", ExposedPorts: []string{"80/tcp"}, Cmd: httpd})
	d.DockerOK(t, "load", "-q", "-i", img)
	d.DockerOK(t, "run", "-d", "--name", "all", "-P", "exposed")
	out := strings.TrimSpace(d.DockerOK(t, "port", "all", "80/tcp"))
	hostPort := hostPortOf(t, out)
	lo, hi := ephemeralRange(t)
	assert.Check(t, hostPort >= lo && hostPort <= hi, "port %d outside the ephemeral range %d-%d", hostPort, lo, hi)
	assert.Check(t, is.Equal(netGet(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort)), httpdBody+"\n"))
	assert.Check(t, is.Contains(d.DockerOK(t, "ps", "--format", "{{.Names}} {{.Ports}}"), fmt.Sprintf("all 0.0.0.0:%d->80/tcp", hostPort)))

	// a published port is reachable from a container on another network
	// through the host, as with dockerd
	d.DockerOK(t, "network", "create", "elsewhere")
	gw := inspectNet(t, d, "elsewhere").IPAM.Config[0].Gateway
	out = d.DockerOK(t, "run", "--rm", "--network", "elsewhere", "busybox", "sh", "-c", retried(wgetOnce(fmt.Sprintf("http://%s:%d/", gw, hostPort))))
	assert.Check(t, is.Equal(out, httpdBody+"\n"))

	// rm releases the port: the test can bind it again
	d.DockerOK(t, "rm", "-f", "pub", "all")
	for _, p := range []int{port, hostPort} {
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", p))
			if err != nil {
				return poll.Continue("port %d still held: %v", p, err)
			}
			l.Close()
			return poll.Success()
		}, poll.WithTimeout(30*time.Second))
	}
	waitInventory(t, d, func(inv *network.Inventory) string {
		if n := len(network.PortRules(inv.Rules)); n > 0 {
			return fmt.Sprintf("%d DNAT rules left", n)
		}
		return ""
	})
}

// hostPortOf reads the port of "0.0.0.0:49153" (the first line of docker port).
func hostPortOf(t *testing.T, out string) int {
	t.Helper()
	line, _, _ := strings.Cut(out, "\n")
	i := strings.LastIndex(line, ":")
	assert.Assert(t, i > 0, "docker port printed %q", out)
	p, err := strconv.Atoi(line[i+1:])
	assert.NilError(t, err, "docker port printed %q", out)
	return p
}

func ephemeralRange(t *testing.T) (int, int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	assert.NilError(t, err)
	f := strings.Fields(string(b))
	assert.Assert(t, is.Len(f, 2))
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	return lo, hi
}

// TestPublishedPortConflicts: a port in use gives dockerd's error and the
// failed container holds nothing: no veth, netns, rule, address, port or
// monitor.
func TestPublishedPortConflicts(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	port := netFreePort(t)
	spec := fmt.Sprintf("127.0.0.1:%d:80", port)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "pub", "-p", spec}, httpd...)...)
	before := inventory(t, d)
	assert.Check(t, is.Len(before.Veths, 1))
	assert.Check(t, is.Len(network.PortRules(before.Rules), 1))

	r := d.Docker("run", "-d", "--name", "dup", "-p", spec, "busybox", "sleep", "600")
	assert.Check(t, is.Equal(r.ExitCode, 125))
	assert.Check(t, is.Contains(r.Stderr(), fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", port)))
	// like dockerd, the container stays created, holding nothing
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.State.Status}}", "dup")), "created"))
	assert.Check(t, is.Equal(d.DockerOK(t, "port", "dup"), ""))
	ns := ctrNet(t, d, "dup")
	assert.Check(t, ns.Networks["bridge"].IPAddress == "", "dup kept an address: %+v", ns.Networks)
	br := inspectNet(t, d, "bridge")
	assert.Check(t, is.Len(br.Containers, 1))
	// nor a monitor: the one started ahead of the set-up has exited by the
	// time the start's error is out
	assert.Check(t, is.Len(d.Inventory(t).Monitors, 1), "a monitor outlived the failed start")

	// with --rm the container goes, and the CLI returns
	c := d.Cmd("run", "--rm", "--name", "dup-rm", "-p", spec, "busybox", "true")
	c.Timeout = 30 * time.Second
	r = icmd.RunCmd(c)
	assert.Check(t, is.Equal(r.ExitCode, 125), r.Combined())
	assert.Check(t, is.Contains(r.Stderr(), "port is already allocated"))
	assert.Check(t, !strings.Contains(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}"), "dup-rm"))
	assert.Check(t, is.Len(d.Inventory(t).Monitors, 1), "a monitor outlived the failed start")

	after := inventory(t, d)
	assert.Check(t, is.DeepEqual(after.Veths, before.Veths))
	assert.Check(t, is.DeepEqual(after.Netns, before.Netns))
	assert.Check(t, is.DeepEqual(after.Rules, before.Rules))
	assert.Check(t, is.Equal(netGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), httpdBody+"\n"), "the first container still serves")

	// once the port is free the created container starts with it
	d.DockerOK(t, "rm", "-f", "pub")
	d.DockerOK(t, "start", "dup")
	assert.Check(t, is.Equal(d.DockerOK(t, "port", "dup"), fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port)))
}

// TestConnectDisconnect: network connect/disconnect on a running container
// changes what it reaches, by address and by name; on a stopped one they
// take effect at its next start.
func TestConnectDisconnect(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	d.DockerOK(t, "network", "create", "other")
	appNet := inspectNet(t, d, "app")
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web", "--network", "app", "--network-alias", "www"}, httpd...)...)
	d.DockerOK(t, "run", "-d", "--name", "roamer", "--network", "other", "busybox", "sleep", "600")
	webIP := ctrIP(t, d, "web", "app")

	r := inCtr(d, "roamer", wgetShort("http://"+webIP+"/"))
	assert.Check(t, r.ExitCode != 0, "reached web across networks before connect")

	// connect a running container, with an alias and a static address
	sub := netip.MustParsePrefix(appNet.IPAM.Config[0].Subnet)
	static := netip.AddrFrom4([4]byte{sub.Addr().As4()[0], sub.Addr().As4()[1], sub.Addr().As4()[2], 77}).String()
	d.DockerOK(t, "network", "connect", "--alias", "roam", "--ip", static, "app", "roamer")
	ep := ctrNet(t, d, "roamer").Networks["app"]
	assert.Check(t, is.Equal(ep.IPAddress, static))
	assert.Check(t, is.DeepEqual(ep.Aliases, []string{"roam"}))
	assert.Check(t, is.Equal(ep.NetworkID, appNet.Id))
	links := inCtrOK(t, d, "roamer", "ls /sys/class/net")
	assert.Check(t, is.Equal(links, "eth0\neth1\nlo\n"))
	assert.Check(t, is.Equal(inCtrOK(t, d, "roamer", retried(wgetOnce("http://web/"))), httpdBody+"\n"))
	assert.Check(t, is.Equal(inCtrOK(t, d, "roamer", retried(wgetOnce("http://www/"))), httpdBody+"\n"))
	out := inCtrOK(t, d, "web", retried("ping -c1 -W2 roam"))
	assert.Check(t, is.Contains(out, "("+static+")"))
	assert.Check(t, is.DeepEqual(psNetworks(t, d, "roamer"), []string{"app", "other"}))

	// disconnect: the interface, the address and the names go
	d.DockerOK(t, "network", "disconnect", "app", "roamer")
	assert.Check(t, is.Equal(inCtrOK(t, d, "roamer", "ls /sys/class/net"), "eth0\nlo\n"))
	r = inCtr(d, "roamer", wgetShort("http://"+webIP+"/"))
	assert.Check(t, r.ExitCode != 0, "still reaches web after disconnect")
	r = inCtr(d, "web", "nslookup roam.")
	assert.Check(t, !strings.Contains(r.Stdout(), static), "alias still resolves after disconnect:\n%s", r.Combined())
	_, onApp := ctrNet(t, d, "roamer").Networks["app"]
	assert.Check(t, !onApp)
	assert.Check(t, is.Len(inspectNet(t, d, "app").Containers, 1))

	// disconnected from its primary network, a container keeps names and a
	// way out through the network it has left, as with dockerd
	d.DockerOK(t, "network", "connect", "app", "roamer")
	d.DockerOK(t, "network", "disconnect", "other", "roamer")
	otherGW := inspectNet(t, d, "other").IPAM.Config[0].Gateway
	out = inCtrOK(t, d, "roamer", "grep nameserver /etc/resolv.conf; ip route")
	assert.Check(t, is.Contains(out, "nameserver "+appNet.IPAM.Config[0].Gateway+"\n"))
	assert.Check(t, is.Contains(out, "default via "+appNet.IPAM.Config[0].Gateway+" "))
	assert.Check(t, !strings.Contains(out, otherGW), out)
	assert.Check(t, is.Equal(inCtrOK(t, d, "roamer", retried(wgetOnce("http://www/"))), httpdBody+"\n"))

	// a stopped container: connect now, attached at start
	d.DockerOK(t, "create", "--name", "late", "--network", "other", "busybox", "sleep", "600")
	d.DockerOK(t, "network", "connect", "--alias", "latecomer", "app", "late")
	ep = ctrNet(t, d, "late").Networks["app"]
	assert.Check(t, is.Equal(ep.IPAddress, ""), "no address before start")
	assert.Check(t, is.DeepEqual(ep.Aliases, []string{"latecomer"}))
	d.DockerOK(t, "start", "late")
	lateIP := ctrIP(t, d, "late", "app")
	assert.Check(t, sub.Contains(netip.MustParseAddr(lateIP)))
	assert.Check(t, is.Equal(inCtrOK(t, d, "late", retried(wgetOnce("http://www/"))), httpdBody+"\n"))
	out = inCtrOK(t, d, "web", retried("ping -c1 -W2 latecomer"))
	assert.Check(t, is.Contains(out, "("+lateIP+")"))

	// stopped again: disconnect from other, the next start has app alone
	d.DockerOK(t, "stop", "-t", "0", "late")
	d.DockerOK(t, "network", "disconnect", "other", "late")
	d.DockerOK(t, "start", "late")
	assert.Check(t, is.Equal(inCtrOK(t, d, "late", "ls /sys/class/net"), "eth0\nlo\n"))
	assert.Check(t, is.Contains(inCtrOK(t, d, "late", "ip -4 -o addr show eth0"), " "+lateIP[:strings.LastIndex(lateIP, ".")+1]))
	assert.Check(t, is.Equal(inCtrOK(t, d, "late", retried(wgetOnce("http://web/"))), httpdBody+"\n"))
}

// TestNetworkModes: none has only lo, host is the host's namespace,
// container:<other> is the other's (interfaces, address, resolver, hostname).
func TestNetworkModes(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)

	out := d.DockerOK(t, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net; ip -o addr | grep -v ' lo ' || true")
	assert.Check(t, is.Equal(out, "lo\n"))
	d.DockerOK(t, "create", "--name", "nonet", "--network", "none", "busybox", "true")
	ns := ctrNet(t, d, "nonet")
	assert.Check(t, is.Len(ns.Networks, 1))
	assert.Check(t, is.Equal(ns.Networks["none"].IPAddress, ""))

	hostNS, err := os.Readlink("/proc/self/ns/net")
	assert.NilError(t, err)
	out = d.DockerOK(t, "run", "--rm", "--network", "host", "busybox", "sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Check(t, is.Equal(lines[0], hostNS))
	// the host's interfaces, the daemon's own bridge among them
	assert.Check(t, slices.Contains(lines, d.Net.Bridge), out)
	assert.Check(t, slices.Contains(lines, "lo"), out)
	host, err := net.Interfaces()
	assert.NilError(t, err)
	assert.Check(t, len(lines)-1 >= len(host)/2, "container sees %d interfaces, the host %d", len(lines)-1, len(host))

	d.DockerOK(t, "network", "create", "app")
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web", "--hostname", "webhost", "--network", "app", "--network-alias", "www"}, httpd...)...)
	d.DockerOK(t, "run", "-d", "--name", "peer", "--network", "app", "busybox", "sleep", "600")
	webIP := ctrIP(t, d, "web", "app")
	webNS := strings.TrimSpace(inCtrOK(t, d, "web", "readlink /proc/self/ns/net"))
	out = d.DockerOK(t, "run", "--rm", "--network", "container:web", "busybox", "sh", "-c",
		"readlink /proc/self/ns/net; hostname; ip -4 -o addr show eth0; "+retried(wgetOnce("http://127.0.0.1/"))+"; nslookup peer")
	assert.Check(t, is.Contains(out, webNS+"\nwebhost\n"))
	assert.Check(t, is.Contains(out, " "+webIP+"/"))
	assert.Check(t, is.Contains(out, httpdBody))
	assert.Check(t, is.Contains(out, "Address: "+ctrIP(t, d, "peer", "app")), "names on the other's networks resolve")

	d.DockerOK(t, "create", "--name", "joined", "--network", "container:web", "busybox", "true")
	assert.Check(t, is.Len(ctrNet(t, d, "joined").Networks, 0))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.NetworkMode}}", "joined")), "container:"+strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "web"))))
}

// TestNetworkSettingsInspectPs: NetworkSettings in inspect and in
// GET /containers/json as dockerd fills them, for one network, two networks
// at create (NetworkingConfig.EndpointsConfig, API >= 1.44) and the default
// bridge.
func TestNetworkSettingsInspectPs(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "neta")
	d.DockerOK(t, "network", "create", "netb")
	nets := map[string]inspectedNetwork{"neta": inspectNet(t, d, "neta"), "netb": inspectNet(t, d, "netb")}

	// the CLI (API 1.50) sends both networks in EndpointsConfig at create
	twoID := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", "two", "--network", "neta", "--network", "netb", "busybox", "sleep", "600"))
	ns := ctrNet(t, d, "two")
	assert.Check(t, is.Len(ns.Networks, 2))
	assert.Check(t, ns.SandboxKey != "")
	links := inCtrOK(t, d, "two", "for i in /sys/class/net/eth*; do echo $(basename $i) $(cat $i/address); done; ip -4 -o addr")
	for name, n := range nets {
		ep := ns.Networks[name]
		sub := netip.MustParsePrefix(n.IPAM.Config[0].Subnet)
		ip, err := netip.ParseAddr(ep.IPAddress)
		assert.Check(t, err == nil && sub.Contains(ip), "%s: IPAddress %q not in %s", name, ep.IPAddress, sub)
		assert.Check(t, is.Equal(ep.IPPrefixLen, sub.Bits()), name)
		assert.Check(t, is.Equal(ep.Gateway, n.IPAM.Config[0].Gateway), name)
		assert.Check(t, is.Equal(ep.NetworkID, n.Id), name)
		assert.Check(t, is.Len(ep.EndpointID, 64), name)
		assert.Check(t, regexp.MustCompile(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`).MatchString(ep.MacAddress), "%s: MacAddress %q", name, ep.MacAddress)
		assert.Check(t, is.Contains(links, " "+ep.MacAddress+"\n"), "%s: the interface has the reported MAC", name)
		assert.Check(t, is.Contains(links, " "+ep.IPAddress+"/"), "%s: the interface has the reported address", name)
		assert.Check(t, is.Len(ep.Aliases, 0), name)
		// hostname defaults to the short id: deduplicated
		assert.Check(t, is.DeepEqual(ep.DNSNames, []string{"two", twoID[:12]}), name)
		assert.Check(t, is.Contains(inspectNet(t, d, name).Containers, twoID), name)
	}
	assert.Check(t, is.DeepEqual(psNetworks(t, d, "two"), []string{"neta", "netb"}))

	// aliases and a hostname: dockerd's DNSNames order
	oneID := strings.TrimSpace(d.DockerOK(t, "run", "-d", "--name", "one", "--hostname", "hn", "--network", "name=neta,alias=al1,alias=al2", "busybox", "sleep", "600"))
	ep := ctrNet(t, d, "one").Networks["neta"]
	assert.Check(t, is.DeepEqual(ep.Aliases, []string{"al1", "al2"}))
	assert.Check(t, is.DeepEqual(ep.DNSNames, []string{"one", "al1", "al2", oneID[:12], "hn"}))

	// raw API 1.44: two endpoints at create, one with a static address
	c := unixClient(d.Sock)
	sub := netip.MustParsePrefix(nets["netb"].IPAM.Config[0].Subnet)
	static := netip.AddrFrom4([4]byte{sub.Addr().As4()[0], sub.Addr().As4()[1], sub.Addr().As4()[2], 99}).String()
	body := fmt.Sprintf(`{"Image":"busybox","Cmd":["sleep","600"],"HostConfig":{"NetworkMode":"neta"},
		"NetworkingConfig":{"EndpointsConfig":{"neta":{"Aliases":["apialias"]},"netb":{"IPAMConfig":{"IPv4Address":%q}}}}}`, static)
	resp, err := c.Post("http://berth/v1.44/containers/create?name=api", "application/json", strings.NewReader(body))
	assert.NilError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Assert(t, is.Equal(resp.StatusCode, http.StatusCreated), string(b))
	d.DockerOK(t, "start", "api")
	ns = ctrNet(t, d, "api")
	assert.Check(t, is.DeepEqual(ns.Networks["neta"].Aliases, []string{"apialias"}))
	assert.Check(t, is.Equal(ns.Networks["netb"].IPAddress, static))
	assert.Check(t, ns.Networks["netb"].IPAMConfig != nil && ns.Networks["netb"].IPAMConfig.IPv4Address == static)
	assert.Check(t, is.Equal(inCtrOK(t, d, "one", retried("ping -c1 -W2 apialias >/dev/null")), ""))

	// the default bridge
	d.DockerOK(t, "run", "-d", "--name", "dflt", "busybox", "sleep", "600")
	br := inspectNet(t, d, "bridge")
	ep = ctrNet(t, d, "dflt").Networks["bridge"]
	assert.Check(t, netip.MustParsePrefix(br.IPAM.Config[0].Subnet).Contains(netip.MustParseAddr(ep.IPAddress)))
	assert.Check(t, is.Equal(ep.Gateway, br.IPAM.Config[0].Gateway))
	assert.Check(t, is.Equal(ep.NetworkID, br.Id))
	assert.Check(t, ep.MacAddress != "")

	// GET /containers/json carries the same endpoints as inspect
	resp, err = c.Get("http://berth/v1.50/containers/json")
	assert.NilError(t, err)
	var list []struct {
		Names           []string
		NetworkSettings struct{ Networks map[string]endpoint }
	}
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	assert.Check(t, is.Len(list, 4))
	for _, ctr := range list {
		name := strings.TrimPrefix(ctr.Names[0], "/")
		assert.Check(t, is.DeepEqual(ctr.NetworkSettings.Networks, ctrNet(t, d, name).Networks), name)
	}
}

// TestNetworkCyclesLeaveNothing: 100 create/start/rm cycles with a
// published port on a user network leave no veth, netns, iptables rule,
// held port or address. The network is a /28 (13 addresses): any leaked
// address would soon make a start fail.
func TestNetworkCyclesLeaveNothing(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	b := d.Net.Block.Addr().As4()
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2] + 15, 0}), 28) // the block's last /24
	d.DockerOK(t, "network", "create", "--subnet", subnet.String(), "cycles")
	before := inventory(t, d, "cycles")
	assert.Check(t, is.Len(before.Veths, 0))

	var ports []int
	start := time.Now()
	for i := 0; i < 100; i++ {
		id := strings.TrimSpace(d.DockerOK(t, "create", "--network", "cycles", "-p", "127.0.0.1::80", "busybox", "sleep", "600"))
		d.DockerOK(t, "start", id)
		if i%10 == 0 {
			ports = append(ports, hostPortOf(t, d.DockerOK(t, "port", id, "80/tcp")))
		}
		d.DockerOK(t, "rm", "-f", id)
	}
	t.Logf("100 create/start/rm -f cycles: %v each", time.Since(start)/100)

	waitInventory(t, d, func(inv *network.Inventory) string {
		switch {
		case len(inv.Veths) > 0:
			return fmt.Sprintf("veths left: %v", inv.Veths)
		case len(inv.Netns) > 0:
			return fmt.Sprintf("netns left: %v", inv.Netns)
		case !slices.Equal(inv.Rules, before.Rules):
			return fmt.Sprintf("rules differ:\n%s\nwas:\n%s", strings.Join(inv.Rules, "\n"), strings.Join(before.Rules, "\n"))
		}
		return ""
	}, "cycles")
	assert.Check(t, is.Len(inspectNet(t, d, "cycles").Containers, 0))
	for _, p := range ports {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p))
		if assert.Check(t, err, "host port %d still held", p) {
			l.Close()
		}
	}
	// every address of the /28 can be taken again
	for i := 0; i < 13; i++ {
		d.DockerOK(t, "run", "-d", "--network", "cycles", "busybox", "sleep", "600")
	}
	r := d.Docker("run", "-d", "--network", "cycles", "busybox", "sleep", "600")
	assert.Check(t, r.ExitCode != 0, "a 14th address in a /28")
	assert.Check(t, is.Contains(r.Stderr(), "no available IPv4 addresses"))
	assert.Check(t, is.Len(d.ShimPids(), 13))
}

// TestNetworkParallelRuns: 64 `run --rm` with a published port on one
// network, 8 at a time, while ps and network inspect poll: every one reaches
// the server by alias, none hangs, and only the server is left attached.
func TestNetworkParallelRuns(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web", "--network", "app", "--network-alias", "www"}, httpd...)...)

	const workers, runs = 8, 8
	errs := make(chan string, workers*runs)
	done := make(chan struct{})
	polled := make(chan int)
	go func() {
		n := 0
		defer func() { polled <- n }()
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, args := range [][]string{{"ps", "-a"}, {"network", "inspect", "app"}} {
				c := d.Cmd(args...)
				c.Timeout = 30 * time.Second
				if r := icmd.RunCmd(c); r.ExitCode != 0 {
					errs <- fmt.Sprintf("docker %s: %s", strings.Join(args, " "), r.Combined())
					<-done
					return
				}
			}
			n++
		}
	}()
	start := time.Now()
	finished := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { finished <- struct{}{} }()
			for i := 0; i < runs; i++ {
				c := d.Cmd("run", "--rm", "--network", "app", "-p", "127.0.0.1::80", "busybox", "sh", "-c", retried(wgetOnce("http://www/")))
				c.Timeout = 60 * time.Second
				r := icmd.RunCmd(c)
				if r.ExitCode != 0 || r.Stdout() != httpdBody+"\n" {
					errs <- fmt.Sprintf("run %d: exit %d (timed out: %v): %s", i, r.ExitCode, r.Timeout, r.Combined())
					return // a hung daemon would fail every other run the same way
				}
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-finished
	}
	elapsed := time.Since(start)
	close(done)
	t.Logf("%d run --rm, %d at a time: %v (%v per run); %d ps/inspect polls meanwhile", workers*runs, workers, elapsed, elapsed/(workers*runs), <-polled)
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	assert.Check(t, is.Equal(d.DockerOK(t, "ps", "-a", "--format", "{{.Names}}"), "web\n"))
	waitInventory(t, d, func(inv *network.Inventory) string {
		if len(inv.Veths) != 1 || len(inv.Netns) != 1 || len(network.PortRules(inv.Rules)) != 0 {
			return fmt.Sprintf("veths %v netns %v port rules %v", inv.Veths, inv.Netns, network.PortRules(inv.Rules))
		}
		return ""
	}, "app")
	assert.Check(t, is.Len(inspectNet(t, d, "app").Containers, 1))
}

// TestVerifyEngineScript: the shared smoke test passes against berthd with
// the anchor busybox image.
func TestVerifyEngineScript(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	anchors := testenv.AnchorsDir(t)
	out := t.TempDir()
	mk := exec.Command(filepath.Join(anchors, "make-images.sh"))
	mk.Env = append(os.Environ(), "OUT="+out, "NO_PUSH=1")
	b, err := mk.CombinedOutput()
	assert.NilError(t, err, "make-images.sh:\n%s", b)
	d.DockerOK(t, "load", "-q", "-i", filepath.Join(out, "busybox-docker-archive.tar"))

	port := netFreePort(t)
	verify := exec.Command(filepath.Join(anchors, "verify-engine.sh"), d.Sock, strconv.Itoa(port))
	verify.Env = d.Env()
	b, err = verify.CombinedOutput()
	assert.NilError(t, err, "verify-engine.sh:\n%s", b)
	assert.Check(t, is.Contains(string(b), "verify-engine: 0 failed"))
	assert.Check(t, is.Equal(strings.Count(string(b), "PASS "), 4), string(b))
	assert.Check(t, !strings.Contains(string(b), "FAIL "), string(b))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "ps", "-aq")), ""), "the script cleans up after itself")
}

// TestNetworkStateSurvivesDaemonKill: after SIGKILL of berthd, running
// containers keep their addresses, names, aliases and published ports;
// the port works while berthd is down; new containers get new addresses.
func TestNetworkStateSurvivesDaemonKill(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	port := netFreePort(t)
	spec := fmt.Sprintf("127.0.0.1:%d:80", port)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", "-p", spec}, httpd...)...)
	d.DockerOK(t, "run", "-d", "--name", "client", "--network", "app", "busybox", "sleep", "600")
	// connected while running, with an alias: a second endpoint to restore
	d.DockerOK(t, "network", "create", "other")
	d.DockerOK(t, "run", "-d", "--name", "side", "--network", "other", "busybox", "sleep", "600")
	d.DockerOK(t, "network", "connect", "--alias", "sidekick", "app", "side")
	webIP, clientIP, sideIP := ctrIP(t, d, "web", "app"), ctrIP(t, d, "client", "app"), ctrIP(t, d, "side", "app")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	assert.Check(t, is.Equal(netGet(t, url), httpdBody+"\n"))
	assert.Check(t, is.Contains(inCtrOK(t, d, "client", "nslookup www"), "Address: "+webIP))

	d.Kill(t)
	assert.Check(t, is.Equal(netGet(t, url), httpdBody+"\n"), "the published port works while berthd is down")
	d.Start(t)

	assert.Check(t, is.Equal(ctrIP(t, d, "web", "app"), webIP))
	assert.Check(t, is.Equal(netGet(t, url), httpdBody+"\n"))
	assert.Check(t, is.Equal(d.DockerOK(t, "port", "web"), fmt.Sprintf("80/tcp -> %s\n", strings.TrimSuffix(spec, ":80"))))
	for _, name := range []string{"web", "www"} {
		assert.Check(t, is.Contains(inCtrOK(t, d, "client", retried("nslookup "+name)), "Address: "+webIP), name)
		assert.Check(t, is.Equal(inCtrOK(t, d, "client", retried(wgetOnce("http://"+name+"/"))), httpdBody+"\n"), name)
	}
	assert.Check(t, is.Contains(inCtrOK(t, d, "web", retried("ping -c1 -W2 client")), "("+clientIP+")"))
	assert.Check(t, is.Contains(inCtrOK(t, d, "client", retried("ping -c1 -W2 sidekick")), "("+sideIP+")"))
	assert.Check(t, is.Equal(ctrIP(t, d, "side", "app"), sideIP))
	// the restored endpoint detaches as any other
	d.DockerOK(t, "network", "disconnect", "app", "side")
	assert.Check(t, is.Equal(inCtrOK(t, d, "side", "ls /sys/class/net"), "eth0\nlo\n"))
	r := inCtr(d, "client", "nslookup sidekick.")
	assert.Check(t, !strings.Contains(r.Stdout(), sideIP), r.Combined())
	// a new container resolves the old ones and gets an address of its own
	out := d.DockerOK(t, "run", "--rm", "--network", "app", "busybox", "sh", "-c", "ip -4 -o addr show eth0; nslookup web; "+retried(wgetOnce("http://www/")))
	assert.Check(t, is.Contains(out, "Address: "+webIP))
	assert.Check(t, is.Contains(out, httpdBody))
	assert.Check(t, !strings.Contains(out, " "+webIP+"/") && !strings.Contains(out, " "+clientIP+"/"), "address handed out twice:\n%s", out)
	// the port is held again
	r = d.Docker("run", "-d", "--name", "dup", "-p", spec, "busybox", "sleep", "600")
	assert.Check(t, is.Contains(r.Stderr(), "port is already allocated"))

	// and everything goes with the containers
	d.DockerOK(t, "rm", "-f", "web", "client", "dup", "side")
	waitInventory(t, d, func(inv *network.Inventory) string {
		if len(inv.Veths)+len(inv.Netns)+len(network.PortRules(inv.Rules)) > 0 {
			return fmt.Sprintf("left: veths %v netns %v port rules %v", inv.Veths, inv.Netns, network.PortRules(inv.Rules))
		}
		return ""
	}, "app", "other")
	assert.Check(t, is.Len(inspectNet(t, d, "app").Containers, 0))
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if assert.Check(t, err, "port %d still held", port) {
		l.Close()
	}
}
