package integration

// Bridge driver options (-o at network create) either work or are refused
// with a clear error, never accepted and ignored.

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestNetworkOptionICC: with enable_icc=false the containers of a network
// do not reach each other (names still resolve: the DNS server is on the
// gateway); on a network without the option they do.
func TestNetworkOptionICC(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "noicc")
	d.DockerOK(t, "network", "create", "open")
	assert.Check(t, is.Equal(inspectNet(t, d, "noicc").Options["com.docker.network.bridge.enable_icc"], "false"))
	for _, n := range []string{"noicc", "open"} {
		d.DockerOK(t, append([]string{"run", "-d", "--name", "web-" + n, "--network", n}, httpd...)...)
		d.DockerOK(t, "run", "-d", "--name", "client-"+n, "--network", n, "busybox", "sleep", "600")
	}
	assert.Check(t, is.Equal(inCtrOK(t, d, "client-open", retried(wgetOnce("http://web-open/"))), httpdBody+"\n"))
	webIP := ctrIP(t, d, "web-noicc", "noicc")
	out := inCtrOK(t, d, "client-noicc", "nslookup web-noicc")
	assert.Check(t, is.Contains(out, webIP), "names resolve with icc off")
	r := inCtr(d, "client-noicc", wgetShort("http://"+webIP+"/"))
	assert.Check(t, r.ExitCode != 0, "enable_icc=false: a container reached its neighbour:\n%s", r.Combined())
	r = inCtr(d, "client-noicc", "ping -c1 -W1 "+webIP)
	assert.Check(t, r.ExitCode != 0, "enable_icc=false: ping reached the neighbour")
}

// TestNetworkOptionMasquerade: a container on a network with
// enable_ip_masquerade=false reaches a LAN host with its own address; on
// other networks the LAN host sees the host's.
func TestNetworkOptionMasquerade(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "nomasq")
	d.DockerOK(t, "network", "create", "masq")
	d.DockerOK(t, "run", "-d", "--name", "c-nomasq", "--network", "nomasq", "busybox", "sleep", "600")
	d.DockerOK(t, "run", "-d", "--name", "c-masq", "--network", "masq", "busybox", "sleep", "600")
	lan := newLANHost(t, d, subnetOf(t, d, "nomasq"))
	url := "http://" + lan.serve(t) + "/"
	assert.Check(t, is.Equal(inCtrOK(t, d, "c-masq", retried(wgetOnce(url))), lan.HostIP.String()))
	assert.Check(t, is.Equal(inCtrOK(t, d, "c-nomasq", retried(wgetOnce(url))), ctrIP(t, d, "c-nomasq", "nomasq")))
}

// TestNetworkOptionHostBinding: ports published without an address on a
// network with host_binding_ipv4=127.0.0.1 bind 127.0.0.1 only.
func TestNetworkOptionHostBinding(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "lobind")
	d.DockerOK(t, "network", "create", "anybind")
	pLo, pAny := netFreePort(t), netFreePort(t)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "lo", "--network", "lobind", "-p", fmt.Sprintf("%d:80", pLo)}, httpd...)...)
	d.DockerOK(t, append([]string{"run", "-d", "--name", "any", "--network", "anybind", "-p", fmt.Sprintf("%d:80", pAny)}, httpd...)...)
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "port", "lo", "80")), fmt.Sprintf("127.0.0.1:%d", pLo)))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "port", "any", "80")), fmt.Sprintf("0.0.0.0:%d", pAny)))
	assert.Check(t, is.Contains(netGet(t, fmt.Sprintf("http://127.0.0.1:%d/", pLo)), httpdBody))
	lan := newLANHost(t, d)
	assert.Check(t, is.Contains(lan.mustGet(t, netip.AddrPortFrom(lan.HostIP, uint16(pAny)).String()), httpdBody))
	lan.mustNotGet(t, netip.AddrPortFrom(lan.HostIP, uint16(pLo)).String(), "port of a host_binding_ipv4=127.0.0.1 network")
}

// TestNetworkOptionsOthers: the MTU and the interface prefix apply; bad
// values and options berth cannot honour are refused, with dockerd's words
// where it has them, and leave no network behind.
func TestNetworkOptionsOthers(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "-o", "com.docker.network.driver.mtu=1400", "-o", "com.docker.network.container_iface_prefix=tap", "small")
	out := d.DockerOK(t, "run", "--rm", "--network", "small", "busybox", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/tap0/mtu")
	assert.Check(t, is.Equal(out, "lo\ntap0\n1400\n"))

	for _, tc := range []struct{ opt, want string }{
		{"com.docker.network.bridge.enable_icc=maybe", `failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing "maybe": invalid syntax)`},
		{"com.docker.network.bridge.enable_ip_masquerade=2", "failed to parse com.docker.network.bridge.enable_ip_masquerade value: 2"},
		{"com.docker.network.bridge.host_binding_ipv4=nope", "failed to parse com.docker.network.bridge.host_binding_ipv4 value: nope (nil ip)"},
		{"com.docker.network.bridge.host_binding_ipv4=::1", "berth takes an IPv4 address here"},
		{"com.docker.network.driver.mtu=big", "failed to parse com.docker.network.driver.mtu value: big"},
		{"com.docker.network.driver.mtu=20", "the MTU must be between 68 and 65535"},
		{"com.docker.network.bridge.gateway_mode_ipv4=routed", "berth supports gateway mode nat only"},
		{"com.docker.network.bridge.inhibit_ipv4=true", "not supported by berth"},
		{"com.docker.network.host_ipv4=10.0.0.1", "not supported by berth"},
		{"com.docker.network.bridge.trusted_host_interfaces=eth0", "not supported by berth"},
	} {
		dockerFails(t, d, tc.want, "network", "create", "-o", tc.opt, "badnet")
	}
	// not "bad": a hex name is also an ID prefix (TestAuxAddresses)
	dockerFails(t, d, "network badnet not found", "network", "inspect", "badnet")
	// the default values are accepted as given
	d.DockerOK(t, "network", "create", "-o", "com.docker.network.bridge.enable_icc=true", "-o", "com.docker.network.bridge.enable_ip_masquerade=true",
		"-o", "com.docker.network.bridge.gateway_mode_ipv4=nat", "-o", "com.docker.network.bridge.host_binding_ipv4=0.0.0.0", "defaults")
}
