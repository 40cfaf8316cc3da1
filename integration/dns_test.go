package integration

import (
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// serveDNSIn runs a DNS server at addr (udp and tcp) inside the network
// namespace at nsPath ("" for the host's), answering A queries for the
// names in answers and NXDOMAIN for the rest. It stands for a user's own
// resolver: on a LAN (a container's address) or on a container's loopback.
func serveDNSIn(t *testing.T, nsPath, addr string, answers map[string]string) {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	listen := func() (err error) {
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		l, err = net.Listen("tcp4", addr)
		return err
	}
	if nsPath == "" {
		assert.NilError(t, listen(), "a DNS server on %s", addr)
	} else {
		errc := make(chan error, 1)
		go func() {
			goruntime.LockOSThread() // never unlocked: the thread ends with the goroutine
			ns, err := netns.GetFromPath(nsPath)
			if err != nil {
				errc <- err
				return
			}
			defer ns.Close()
			if err := netns.Set(ns); err != nil {
				errc <- err
				return
			}
			errc <- listen()
		}()
		assert.NilError(t, <-errc, "a DNS server on %s in %s", addr, nsPath)
	}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		ip, ok := answers[strings.ToLower(r.Question[0].Name)]
		if !ok {
			m.SetRcode(r, mdns.RcodeNameError)
		} else {
			m.SetReply(r)
			if r.Question[0].Qtype == mdns.TypeA {
				m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 5}, A: net.ParseIP(ip)}}
			}
		}
		_ = w.WriteMsg(m)
	})
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
}

// nslookupLines is every address busybox nslookup prints for name, in
// order and with repeats (nslookupAddrs sorts), and its exit code.
func nslookupLines(t *testing.T, d *testenv.Daemon, ctr, name string) ([]string, int) {
	t.Helper()
	r := d.Docker("exec", ctr, "nslookup", name)
	var addrs []string
	answers := false
	for _, line := range strings.Split(r.Stdout(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Name:") {
			answers = true
			continue
		}
		if a, ok := strings.CutPrefix(line, "Address:"); ok && answers {
			addrs = append(addrs, strings.TrimSpace(a))
		}
	}
	return addrs, r.ExitCode
}

func ipOn(t *testing.T, d *testenv.Daemon, ctr, network string) string {
	t.Helper()
	return strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", ctr))
}

// A compose file with dns:, dns_search: and dns_opt: (a user's own
// resolver, as so many real files have) keeps every berth name: scoped
// bare names, aliases, replicas, FQDNs, each address once; the names berth
// does not know go to that container's own resolver, and a loopback one is
// the container's own loopback, never the host's.
func TestDNSUserResolvers(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "dnsy-shared")
	t.Cleanup(func() { d.Docker("network", "rm", "dnsy-shared") })

	// the user's resolver: a server at a container's address on the shared network
	d.DockerOK(t, "run", "-d", "--name", "resolver", "--network", "dnsy-shared", "busybox", "sleep", "1d")
	t.Cleanup(func() { d.Docker("rm", "-f", "resolver") })
	resolverIP := ipOn(t, d, "resolver", "dnsy-shared")
	serveDNSIn(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "resolver")),
		net.JoinHostPort(resolverIP, "53"), map[string]string{"ext.example.": "192.0.2.10"})

	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	assert.NilError(t, os.WriteFile(file, []byte(`name: dnsy
services:
  db:
    image: busybox:latest
    pull_policy: never
    command: ["sleep", "1d"]
    stop_signal: SIGKILL
    networks:
      default:
        aliases: [database]
  web:
    image: busybox:latest
    pull_policy: never
    command: ["sleep", "1d"]
    stop_signal: SIGKILL
    dns: [`+resolverIP+`]
    dns_search: [corp.example]
    dns_opt: ["timeout:2"]
    networks: [default, shared]
  worker:
    image: busybox:latest
    pull_policy: never
    command: ["sleep", "1d"]
    stop_signal: SIGKILL
    deploy:
      replicas: 2
networks:
  shared:
    name: dnsy-shared
    external: true
`), 0o644))
	f := []string{"-f", file}
	d.ComposeOK(t, append(f, "up", "-d", "--wait")...)
	t.Cleanup(func() { d.Compose(append(f, "down", "-t", "0")...) })

	db, w1, w2 := ipOn(t, d, "dnsy-db-1", "dnsy_default"), ipOn(t, d, "dnsy-worker-1", "dnsy_default"), ipOn(t, d, "dnsy-worker-2", "dnsy_default")
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"db", []string{db}},
		{"database", []string{db}},
		{"worker", []string{w1, w2}},
		{"dnsy-worker-2", []string{w2}},
		{"db.dnsy.berth.internal", []string{db}},
		{"2.worker.dnsy.berth.internal", []string{w2}},
		{"ext.example", []string{"192.0.2.10"}}, // forwarded to web's own resolver
	} {
		want := slices.Clone(tc.want)
		slices.Sort(want)
		for i := 0; i < 3; i++ { // and again: the answer holds
			// web has dns_search: busybox nslookup asks corp.example too,
			// whose NXDOMAIN makes it exit 1, as with Docker
			got, _ := nslookupLines(t, d, "dnsy-web-1", tc.name)
			slices.Sort(got)
			assert.Check(t, is.DeepEqual(got, want), "web asks %q (try %d): each address once", tc.name, i)
		}
		if tc.name == "ext.example" {
			continue
		}
		got, rc := nslookupLines(t, d, "dnsy-worker-1", tc.name)
		slices.Sort(got)
		assert.Check(t, is.DeepEqual(got, want), "worker asks %q: each address once", tc.name)
		assert.Check(t, is.Equal(rc, 0), "worker asks %q: every search domain answers (NOERROR)", tc.name)
	}
	// the libc resolver applies the search domains to a dotted name too:
	// 2.worker is 2.worker.dnsy.berth.internal
	for _, ctr := range []string{"dnsy-web-1", "dnsy-worker-1"} {
		out := d.Docker("exec", ctr, "ping", "-c", "1", "-W", "1", "2.worker").Combined()
		assert.Check(t, is.Contains(out, "("+w2+")"), "%s pings 2.worker", ctr)
	}

	// resolv.conf: berth's server only, the user's search domains first, then the deployment's
	resolv := d.DockerOK(t, "exec", "dnsy-web-1", "cat", "/etc/resolv.conf")
	var nameservers, search, options []string
	for _, line := range strings.Split(resolv, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			nameservers = append(nameservers, f[1])
		case "search":
			search = f[1:]
		case "options":
			options = f[1:]
		}
	}
	assert.Check(t, is.Len(nameservers, 1), resolv)
	assert.Check(t, !slices.Contains(nameservers, resolverIP), "the user's server is berth's upstream, not the container's:\n%s", resolv)
	assert.Check(t, is.DeepEqual(search, []string{"corp.example", "dnsy.berth.internal", "berth.internal"}))
	assert.Check(t, is.DeepEqual(options, []string{"timeout:2", "ndots:0"}))
	assert.Check(t, is.Equal(strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{json .HostConfig.Dns}}", "dnsy-web-1")), `["`+resolverIP+`"]`), "inspect shows Dns as given")

	// db has no resolver of its own: ext.example is the daemon's upstreams' (the
	// test daemon has none that answer)
	got, _ := nslookupLines(t, d, "dnsy-db-1", "ext.example")
	assert.Check(t, is.Len(got, 0), "db has no resolver of its own, got %v", got)

	// a loopback resolver is the container's own loopback, not the host's
	d.DockerOK(t, "run", "-d", "--name", "loopy", "--network", "dnsy-shared", "--dns", "127.0.0.1", "busybox", "sleep", "1d")
	t.Cleanup(func() { d.Docker("rm", "-f", "loopy") })
	serveDNSIn(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "loopy")),
		"127.0.0.1:53", map[string]string{"ext.example.": "192.0.2.11"})
	// the test daemon's own upstream is 127.0.0.1 on the host: answer there too
	serveDNSIn(t, "", "127.0.0.1:53", map[string]string{"ext.example.": "192.0.2.66"})
	got, _ = nslookupLines(t, d, "loopy", "ext.example")
	assert.Check(t, is.DeepEqual(got, []string{"192.0.2.11"}), "loopy's 127.0.0.1 is its own loopback")
	got, _ = nslookupLines(t, d, "loopy", "db")
	assert.Check(t, is.Len(got, 0), "loopy is no member of dnsy and not on its network: %v", got)
	got, _ = nslookupLines(t, d, "loopy", "dnsy-db-1")
	assert.Check(t, is.DeepEqual(got, []string{db}), "a deployment's container_name in the zone is daemon-wide")
	got, _ = nslookupLines(t, d, "dnsy-db-1", "ext.example")
	assert.Check(t, is.DeepEqual(got, []string{"192.0.2.66"}), "a container without --dns uses the daemon's upstream, from the host")
}

// berth's DNS server answers the containers of its network and nobody else:
// not the host, not a container of another network.
func TestDNSAnswersOnlyItsContainers(t *testing.T) {
	t.Parallel()
	d := testenv.StartDaemon(t)
	d.LoadBusybox(t)
	d.DockerOK(t, "network", "create", "inside")
	d.DockerOK(t, "network", "create", "outside")
	t.Cleanup(func() { d.Docker("network", "rm", "inside", "outside") })
	d.DockerOK(t, "run", "-d", "--name", "member", "--network", "inside", "busybox", "sleep", "1d")
	d.DockerOK(t, "run", "-d", "--name", "stranger", "--network", "outside", "busybox", "sleep", "1d")
	t.Cleanup(func() { d.Docker("rm", "-f", "member", "stranger") })
	gw := strings.TrimSpace(d.DockerOK(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "inside"))
	memberIP := ipOn(t, d, "member", "inside")

	got, rc := nslookupLines(t, d, "member", "member")
	assert.Check(t, is.DeepEqual(got, []string{memberIP}))
	assert.Check(t, is.Equal(rc, 0))

	// another network's container, asking this network's gateway directly
	r := d.Docker("exec", "stranger", "nslookup", "-timeout=1", "member", gw)
	assert.Check(t, r.ExitCode != 0, "a container of another network got an answer:\n%s", r.Stdout())
	assert.Check(t, !strings.Contains(r.Stdout(), memberIP))

	// the host, asking the gateway over UDP and TCP
	for _, proto := range []string{"udp", "tcp"} {
		c := &mdns.Client{Net: proto, Timeout: time.Second}
		m := new(mdns.Msg)
		m.SetQuestion("member.", mdns.TypeA)
		resp, _, err := c.Exchange(m, net.JoinHostPort(gw, "53"))
		if err == nil {
			assert.Check(t, is.Equal(resp.Rcode, mdns.RcodeRefused), "%s from the host: %v", proto, resp)
			assert.Check(t, is.Len(resp.Answer, 0))
		}
	}
}
