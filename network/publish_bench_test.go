package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// Published ports are DNAT rules (plus a held socket) rather than a
// userland proxy. These benchmarks measure both ways to the same container
// from the host's loopback: a connection per request, and bulk transfer.
//
//	go test -run XXX -bench PublishedPort ./network/

const bulk = 64 << 20

func benchSetup(b *testing.B) (dnat, proxy string, done func()) {
	e := newEnv(b)
	ctx := context.Background()
	c := e.start(b, "bench")
	es, err := e.m.Attach(ctx, c.ns, AttachRequest{ContainerID: c.id, ContainerName: "bench", Network: "bridge", Primary: true})
	if err != nil {
		b.Fatal(err)
	}
	// port 80 answers one byte; port 81 streams bulk bytes
	for port, n := range map[int]int{80: 1, 81: bulk} {
		var l net.Listener
		if err := inNS(c.ns, func() (err error) { l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port)); return err }); err != nil {
			b.Fatal(err)
		}
		go func(n int) {
			buf := make([]byte, 1<<16)
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					for left := n; left > 0; {
						k, err := conn.Write(buf[:min(left, len(buf))])
						if err != nil {
							return
						}
						left -= k
					}
				}()
			}
		}(n)
		b.Cleanup(func() { l.Close() })
	}
	hostPort := func() int {
		l, _ := net.Listen("tcp4", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	p1, p2 := hostPort(), hostPort()
	_, err = e.m.PublishPorts(ctx, c.id, es.IPAddress, network.PortMap{
		network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(p1)}},
		network.MustParsePort("81/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(p2)}},
	}, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	// the userland proxy: what dockerd's docker-proxy does, in a goroutine
	pl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			conn, err := pl.Accept()
			if err != nil {
				return
			}
			go proxyConn(conn, es.IPAddress)
		}
	}()
	return fmt.Sprintf("127.0.0.1:%d|127.0.0.1:%d", p1, p2), pl.Addr().String(), func() {
		pl.Close()
		_ = e.m.DeleteSandbox(ctx, c.id)
	}
}

// proxyConn forwards to the container port the client asked for: the proxy
// listens on one port and picks the target by the first byte it reads.
func proxyConn(client net.Conn, target netip.Addr) {
	defer client.Close()
	var which [1]byte
	if _, err := io.ReadFull(client, which[:]); err != nil {
		return
	}
	port := 80
	if which[0] == 'b' {
		port = 81
	}
	up, err := net.Dial("tcp4", netip.AddrPortFrom(target, uint16(port)).String())
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, client) }()
	_, _ = io.Copy(client, up)
}

func connectOnce(b *testing.B, addr string, hello []byte, want int) {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if hello != nil {
		if _, err := c.Write(hello); err != nil {
			b.Fatal(err)
		}
	}
	n, err := io.Copy(io.Discard, c)
	if err != nil || int(n) != want {
		b.Fatalf("read %d bytes (%v), want %d", n, err, want)
	}
}

func BenchmarkPublishedPortConnectDNAT(b *testing.B) {
	dnat, _, done := benchSetup(b)
	defer done()
	addr := dnat[:indexByte(dnat, '|')]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		connectOnce(b, addr, nil, 1)
	}
}

func BenchmarkPublishedPortConnectProxy(b *testing.B) {
	_, proxy, done := benchSetup(b)
	defer done()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		connectOnce(b, proxy, []byte("a"), 1)
	}
}

func BenchmarkPublishedPortBulkDNAT(b *testing.B) {
	dnat, _, done := benchSetup(b)
	defer done()
	addr := dnat[indexByte(dnat, '|')+1:]
	b.SetBytes(bulk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		connectOnce(b, addr, nil, bulk)
	}
}

func BenchmarkPublishedPortBulkProxy(b *testing.B) {
	_, proxy, done := benchSetup(b)
	defer done()
	b.SetBytes(bulk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		connectOnce(b, proxy, []byte("b"), bulk)
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
