package integration

// Connect and disconnect as sequences, not single steps; disconnecting what
// is not connected; IPAM auxiliary addresses; MAC addresses and interface
// names chosen by the client (docker CLI, docker-py, compose).

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// seqModel is what a container should be attached to.
type seqModel struct {
	nets     []string            // every network of the test
	internal map[string]bool     // by name
	gateway  map[string]string   // by name
	attached map[string]struct{} // the model's state
}

func (m *seqModel) names() []string {
	var out []string
	for n := range m.attached {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// check compares the container with the model: its interfaces and
// NetworkSettings; a default route through the gateway of an attached
// network that is not internal whenever there is one, and none otherwise;
// a resolv.conf nameserver that is the gateway of an attached network and
// answers the container's own name.
func (m *seqModel) check(t *testing.T, d *testenv.Daemon, ctr, step string) {
	t.Helper()
	want := m.names()
	var ns netSettings
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		ns = ctrNet(t, d, ctr)
		var got []string
		for n := range ns.Networks {
			got = append(got, n)
		}
		sort.Strings(got)
		links := strings.Fields(inCtrOK(t, d, ctr, "ls /sys/class/net"))
		if !slices.Equal(got, want) || len(links) != len(want)+1 {
			return poll.Continue("%s: networks %v and interfaces %v, want %v", step, got, links, want)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(100*time.Millisecond))

	out := inCtrOK(t, d, ctr, "ip -4 route show default; echo ---; grep '^nameserver' /etc/resolv.conf")
	routes, resolv, _ := strings.Cut(out, "---\n")
	var gws []string
	for _, line := range strings.Split(strings.TrimSpace(routes), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "default" && f[1] == "via" {
			gws = append(gws, f[2])
		}
	}
	var outside []string
	for _, n := range want {
		if !m.internal[n] {
			outside = append(outside, m.gateway[n])
		}
	}
	if len(outside) == 0 {
		assert.Check(t, is.Len(gws, 0), "%s: default route without a network that has a way out:\n%s", step, out)
	} else {
		assert.Check(t, len(gws) == 1 && slices.Contains(outside, gws[0]), "%s: default route %v, want one through %v:\n%s", step, gws, outside, out)
	}
	if len(want) == 0 {
		return
	}
	var attachedGWs []string
	for _, n := range want {
		attachedGWs = append(attachedGWs, m.gateway[n])
	}
	f := strings.Fields(resolv)
	assert.Check(t, len(f) == 2 && slices.Contains(attachedGWs, f[1]), "%s: resolv.conf %q, want a nameserver among %v", step, resolv, attachedGWs)
	r := inCtr(d, ctr, "nslookup "+ctr)
	assert.Check(t, r.ExitCode == 0 && strings.Contains(r.Stdout(), "Address"), "%s: the resolver does not answer:\n%s", step, r.Combined())
}

// TestConnectDisconnectSequences runs random sequences of connect,
// disconnect and restart on a running container over two networks and an
// internal one, checking the container against a model after every step.
// BERTH_SEQ_SEED replays a sequence.
func TestConnectDisconnectSequences(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	m := &seqModel{nets: []string{"na", "nb", "ni"}, internal: map[string]bool{"ni": true}, gateway: map[string]string{}}
	d.DockerOK(t, "network", "create", "na")
	d.DockerOK(t, "network", "create", "nb")
	d.DockerOK(t, "network", "create", "--internal", "ni")
	for _, n := range m.nets {
		m.gateway[n] = inspectNet(t, d, n).IPAM.Config[0].Gateway
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("BERTH_SEQ_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseInt(s, 10, 64)
		assert.NilError(t, err)
	}
	t.Logf("BERTH_SEQ_SEED=%d", seed)
	rng := rand.New(rand.NewSource(seed))

	// the sequence of the bug report first, then random ones
	fixed := []string{"disconnect na", "connect nb", "connect na", "disconnect nb", "disconnect na", "connect ni", "connect na"}
	for run := 0; run < 3; run++ {
		ctr := fmt.Sprintf("seq%d", run)
		first := m.nets[rng.Intn(len(m.nets))]
		if run == 0 {
			first = "na"
		}
		d.DockerOK(t, "run", "-d", "--name", ctr, "--network", first, "busybox", "sleep", "600")
		m.attached = map[string]struct{}{first: {}}
		m.check(t, d, ctr, ctr+": run on "+first)
		for step := 0; step < 9; step++ {
			var op string
			if run == 0 && step < len(fixed) {
				op = fixed[step]
			} else {
				n := m.nets[rng.Intn(len(m.nets))]
				_, on := m.attached[n]
				switch {
				case rng.Intn(8) == 0:
					op = "restart"
				case on:
					op = "disconnect " + n
				default:
					op = "connect " + n
				}
			}
			verb, n, _ := strings.Cut(op, " ")
			switch verb {
			case "connect":
				d.DockerOK(t, "network", "connect", n, ctr)
				m.attached[n] = struct{}{}
			case "disconnect":
				d.DockerOK(t, "network", "disconnect", n, ctr)
				delete(m.attached, n)
			case "restart":
				if len(m.attached) == 0 {
					continue
				}
				d.DockerOK(t, "restart", "-t", "0", ctr)
			}
			m.check(t, d, ctr, fmt.Sprintf("%s step %d: %s (now on %v)", ctr, step, op, m.names()))
			if t.Failed() {
				t.FailNow() // the state is off the model; further steps tell nothing
			}
		}
		d.DockerOK(t, "rm", "-f", ctr)
	}
}

// postAPI posts a JSON body to the daemon's API and returns the status and
// the answer.
func postAPI(t *testing.T, d *testenv.Daemon, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Sock)
	}}}
	resp, err := c.Post("http://berth"+path, "application/json", strings.NewReader(body))
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// disconnectStatus posts a disconnect and returns the HTTP status.
func disconnectStatus(t *testing.T, d *testenv.Daemon, netName, ctr string, force bool) int {
	t.Helper()
	st, _ := postAPI(t, d, "/networks/"+netName+"/disconnect", fmt.Sprintf(`{"Container":%q,"Force":%v}`, ctr, force))
	return st
}

// TestDisconnectNotConnected: disconnecting a container from a network it
// is not on is an error, with -f too, as on dockerd (500); -f only lets a
// container leave a network that was removed.
func TestDisconnectNotConnected(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	d.DockerOK(t, "network", "create", "gone")
	d.DockerOK(t, "run", "-d", "--name", "run", "--network", "app", "busybox", "sleep", "600")
	id := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "run"))
	d.DockerOK(t, "network", "disconnect", "-f", "app", "run")
	dockerFails(t, d, "container "+id+" is not connected to network app", "network", "disconnect", "-f", "app", "run")
	dockerFails(t, d, "container "+id+" is not connected to network app", "network", "disconnect", "app", "run")
	assert.Check(t, is.Equal(disconnectStatus(t, d, "app", "run", true), http.StatusInternalServerError))

	d.DockerOK(t, "create", "--name", "stopped", "--network", "app", "busybox", "true")
	sid := strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.Id}}", "stopped"))
	d.DockerOK(t, "network", "connect", "gone", "stopped")
	d.DockerOK(t, "network", "disconnect", "app", "stopped")
	dockerFails(t, d, "container "+sid+" is not connected to the network app", "network", "disconnect", "-f", "app", "stopped")

	// a removed network: only -f takes the container off it, once
	d.DockerOK(t, "network", "rm", "gone")
	dockerFails(t, d, "network gone not found", "network", "disconnect", "gone", "stopped")
	d.DockerOK(t, "network", "disconnect", "-f", "gone", "stopped")
	assert.Check(t, is.Len(ctrNet(t, d, "stopped").Networks, 0))
	dockerFails(t, d, "container "+sid+" is not connected to the network gone", "network", "disconnect", "-f", "gone", "stopped")
}

// TestAuxAddresses: IPAM auxiliary addresses are shown by inspect,
// reserved (never handed out, refused as static addresses) across a daemon
// restart, and checked at create.
func TestAuxAddresses(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	b := d.Net.Block.Addr().As4()
	sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2] + 9, 0}), 24)
	at := func(n byte) string { a := sub.Addr().As4(); a[3] = n; return netip.AddrFrom4(a).String() }
	d.DockerOK(t, "network", "create", "--subnet", sub.String(), "--aux-address", "router="+at(2), "--aux-address", "printer="+at(3), "aux")
	out := d.DockerOK(t, "network", "inspect", "-f", "{{json (index .IPAM.Config 0).AuxiliaryAddresses}}", "aux")
	assert.Check(t, is.Equal(strings.TrimSpace(out), fmt.Sprintf(`{"printer":%q,"router":%q}`, at(3), at(2))))

	d.DockerOK(t, "run", "-d", "--name", "c1", "--network", "aux", "busybox", "sleep", "600")
	d.DockerOK(t, "run", "-d", "--name", "c2", "--network", "aux", "busybox", "sleep", "600")
	assert.Check(t, is.Equal(ctrIP(t, d, "c1", "aux"), at(4)))
	assert.Check(t, is.Equal(ctrIP(t, d, "c2", "aux"), at(5)))
	dockerFails(t, d, "Address already in use", "run", "--rm", "--network", "aux", "--ip", at(2), "busybox", "true")

	d.Restart(t, syscall.SIGTERM)
	dockerFails(t, d, "Address already in use", "run", "--rm", "--network", "aux", "--ip", at(3), "busybox", "true")
	d.DockerOK(t, "rm", "-f", "c1", "c2")
	for i := 0; i < 3; i++ {
		ip := strings.TrimSpace(d.DockerOK(t, "run", "--rm", "--network", "aux", "busybox", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'"))
		assert.Check(t, !strings.HasPrefix(ip, at(2)+"/") && !strings.HasPrefix(ip, at(3)+"/"), "handed out an auxiliary address: %s", ip)
	}

	// "badnet", not "bad": a hex name is also a network ID prefix (as in
	// dockerd), and a run found a network whose random ID began with "bad"
	other := netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2] + 10, 0}), 24)
	// the CLI checks that much itself; the daemon too, with dockerd's 403
	st, msg := postAPI(t, d, "/networks/create", fmt.Sprintf(`{"Name":"badnet","IPAM":{"Config":[{"Subnet":%q,"AuxiliaryAddresses":{"x":%q}}]}}`, other, at(7)))
	assert.Check(t, is.Equal(st, http.StatusForbidden))
	assert.Check(t, is.Contains(msg, fmt.Sprintf("auxiliary address: (x:%s) must belong to the master pool: %s", at(7), other)))
	st, msg = postAPI(t, d, "/networks/create", fmt.Sprintf(`{"Name":"badnet","IPAM":{"Config":[{"Subnet":%q,"AuxiliaryAddresses":{"x":"nope"}}]}}`, other))
	assert.Check(t, is.Equal(st, http.StatusBadRequest))
	assert.Check(t, is.Contains(msg, "non parsable secondary ip address (x:nope) passed for network badnet"))
	dockerFails(t, d, "Address already in use by the gateway", "network", "create", "--subnet", other.String(), "--aux-address", "gw="+other.Addr().Next().String(), "badnet")
	dockerFails(t, d, "network badnet not found", "network", "inspect", "badnet")
}

// TestMacAddressAndInterfaceName: the MAC address and the interface name a
// client asks for are the container's, from the docker CLI, docker-py (the
// container-wide MacAddress of old API versions included) and compose
// (mac_address, interface_name); a bad or taken name is refused and leaves
// the container as it was.
func TestMacAddressAndInterfaceName(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "app")
	d.DockerOK(t, "network", "create", "back")

	out := d.DockerOK(t, "run", "--rm", "--network", "app", "--mac-address", "02:42:ab:cd:ef:01", "busybox", "cat", "/sys/class/net/eth0/address")
	assert.Check(t, is.Equal(out, "02:42:ab:cd:ef:01\n"))
	out = d.DockerOK(t, "run", "--rm", "--mac-address", "02:42:ab:cd:ef:02", "busybox", "cat", "/sys/class/net/eth0/address")
	assert.Check(t, is.Equal(out, "02:42:ab:cd:ef:02\n"), "on the default bridge")

	d.DockerOK(t, "run", "-d", "--name", "ctr", "--network", "name=app,driver-opt=com.docker.network.endpoint.ifname=front0", "busybox", "sleep", "600")
	d.DockerOK(t, "network", "connect", "--driver-opt", "com.docker.network.endpoint.ifname=back7", "back", "ctr")
	out = inCtrOK(t, d, "ctr", "ls /sys/class/net; ip -4 -o addr show back7")
	assert.Check(t, is.Contains(out, "back7\nfront0\nlo\n"))
	assert.Check(t, is.Contains(out, " "+ctrIP(t, d, "ctr", "back")+"/"))
	assert.Check(t, is.Contains(inCtrOK(t, d, "ctr", "ip -4 route show default"), "dev front0"))

	// a bad name, a name in use: refused, nothing changes
	d.DockerOK(t, "network", "create", "third")
	dockerFails(t, d, "invalid interface name", "network", "connect", "--driver-opt", "com.docker.network.endpoint.ifname=a/b", "third", "ctr")
	dockerFails(t, d, "interface name front0 is already in use in the container", "network", "connect", "--driver-opt", "com.docker.network.endpoint.ifname=front0", "third", "ctr")
	assert.Check(t, is.Equal(inCtrOK(t, d, "ctr", "ls /sys/class/net"), "back7\nfront0\nlo\n"))
	_, on := ctrNet(t, d, "ctr").Networks["third"]
	assert.Check(t, !on)
	assert.Check(t, is.Len(inspectNet(t, d, "third").Containers, 0))
	d.DockerOK(t, "network", "connect", "third", "ctr") // a free name still works after the refusals

	// docker-py: mac_address is the container-wide field, old API and new
	out = d.DockerPy(t, `
import docker
for v in ("1.41", "auto"):
    c = docker.from_env(version=v)
    out = c.containers.run("busybox", ["cat", "/sys/class/net/eth0/address"], mac_address="02:42:ab:cd:ef:03", network="app", remove=True)
    print(v, out.decode().strip())
`)
	assert.Check(t, is.Equal(out, "1.41 02:42:ab:cd:ef:03\nauto 02:42:ab:cd:ef:03"))

	// compose
	project := writeProject(t, `
services:
  svc:
    image: busybox
    command: ["sleep", "600"]
    networks:
      front:
        interface_name: front1
        mac_address: 02:42:ab:cd:ef:04
      back:
        interface_name: back1
networks:
  front: {}
  back: {}
`)
	d.ComposeOK(t, "-f", project, "-p", "ifn", "up", "-d")
	t.Cleanup(func() { d.Compose("-f", project, "-p", "ifn", "down") })
	out = d.ComposeOK(t, "-f", project, "-p", "ifn", "exec", "-T", "svc", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/front1/address")
	assert.Check(t, is.Equal(out, "back1\nfront1\nlo\n02:42:ab:cd:ef:04\n"))
}
