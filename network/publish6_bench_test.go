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

// IPv6 published ports: DNAT (to the host's IPv6 addresses, here the
// bridge's gateway) against the user-space forwarding berth does for ::1.
//
//	go test -run XXX -bench PublishedPortIPv6 ./network/
func BenchmarkPublishedPortIPv6(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	sub := e.slot.Subnet6(0)
	yes := true
	if _, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "bench6", EnableIPv6: &yes,
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub}}}}); err != nil {
		b.Fatal(err)
	}
	c := e.start(b, "bench")
	es, err := e.m.Attach(ctx, c.ns, AttachRequest{ContainerID: c.id, ContainerName: "bench", Network: "bench6", Primary: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = e.m.DeleteSandbox(ctx, c.id) }()
	// port 80 answers one byte; port 81 streams bulk bytes
	for port, n := range map[int]int{80: 1, 81: bulk} {
		var l net.Listener
		if err := inNS(c.ns, func() (err error) { l, err = net.Listen("tcp6", fmt.Sprintf("[::]:%d", port)); return err }); err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		go func() {
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
		}()
	}
	got, err := e.m.PublishPorts(ctx, c.id, es.GlobalIPv6Address, network.PortMap{
		network.MustParsePort("80/tcp"): {{HostIP: netip.IPv6Unspecified()}},
		network.MustParsePort("81/tcp"): {{HostIP: netip.IPv6Unspecified()}},
	}, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	port := func(p string) string { return got[network.MustParsePort(p)][0].HostPort }
	for _, tc := range []struct {
		name, host string
	}{{"DNAT", sub.Addr().Next().String()}, {"forwarded", "::1"}} {
		b.Run("connect/"+tc.name, func(b *testing.B) {
			for b.Loop() {
				connect6(b, net.JoinHostPort(tc.host, port("80/tcp")), 1)
			}
		})
		b.Run("bulk/"+tc.name, func(b *testing.B) {
			b.SetBytes(bulk)
			for b.Loop() {
				connect6(b, net.JoinHostPort(tc.host, port("81/tcp")), bulk)
			}
		})
	}
}

func connect6(b *testing.B, addr string, want int) {
	c, err := net.Dial("tcp6", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if err != nil || int(n) != want {
		b.Fatalf("read %d bytes (%v), want %d", n, err, want)
	}
}
