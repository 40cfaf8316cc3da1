// Command netprobe sends one hand-made UDP datagram from inside a container
// through an AF_PACKET socket, the way a container with CAP_NET_RAW (in
// Docker's default capability set) can, bypassing its own routing table:
//
//	netprobe <dst-ip> <port> <payload>
//
// The frame goes to the MAC address of the container's default gateway, so
// a destination of 127.0.0.1 reaches the host's loopback services unless
// the host drops it. It is built by the end-to-end tests (static, no cgo)
// and bind-mounted into a busybox container.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: netprobe <dst-ip> <port> <payload>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "netprobe:", err)
		os.Exit(1)
	}
}

func run(dstArg, portArg, payload string) error {
	dst := net.ParseIP(dstArg).To4()
	port, err := strconv.Atoi(portArg)
	if dst == nil || err != nil {
		return fmt.Errorf("bad destination %s:%s", dstArg, portArg)
	}
	ifName, gw, err := defaultRoute()
	if err != nil {
		return err
	}
	ifc, err := net.InterfaceByName(ifName)
	if err != nil {
		return err
	}
	src, err := ifaceIPv4(ifc)
	if err != nil {
		return err
	}
	mac, err := neighbour(gw)
	if err != nil {
		return err
	}
	pkt := udpPacket(src, dst, 40000, uint16(port), []byte(payload))
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(syscall.ETH_P_IP)))
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_IP), Ifindex: ifc.Index, Halen: 6}
	copy(to.Addr[:], mac)
	for i := 0; i < 3; i++ {
		if err := syscall.Sendto(fd, pkt, 0, to); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("sent %s:%d -> %s:%d via %s (%s)\n", src, 40000, dst, port, ifName, mac)
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// defaultRoute reads the interface and gateway of the default route.
func defaultRoute() (string, net.IP, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fl := strings.Fields(s.Text())
		if len(fl) < 3 || fl[1] != "00000000" {
			continue
		}
		g, err := strconv.ParseUint(fl[2], 16, 32)
		if err != nil {
			continue
		}
		gw := make(net.IP, 4)
		binary.LittleEndian.PutUint32(gw, uint32(g))
		return fl[0], gw, nil
	}
	return "", nil, fmt.Errorf("no default route")
}

func ifaceIPv4(ifc *net.Interface) (net.IP, error) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("%s has no IPv4 address", ifc.Name)
}

// neighbour is gw's MAC address: a datagram to its discard port makes the
// kernel resolve it, then /proc/net/arp has it.
func neighbour(gw net.IP) (net.HardwareAddr, error) {
	if c, err := net.Dial("udp4", net.JoinHostPort(gw.String(), "9")); err == nil {
		_, _ = c.Write([]byte("arp"))
		c.Close()
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile("/proc/net/arp")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			fl := strings.Fields(line)
			if len(fl) >= 4 && fl[0] == gw.String() && fl[3] != "00:00:00:00:00:00" {
				return net.ParseMAC(fl[3])
			}
		}
	}
	return nil, fmt.Errorf("no ARP entry for %s", gw)
}

// udpPacket is an IPv4 header and a UDP datagram (no UDP checksum, which
// IPv4 allows).
func udpPacket(src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	p := make([]byte, ipLen+udpLen+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:], 0x4242)
	p[8] = 64
	p[9] = syscall.IPPROTO_UDP
	copy(p[12:16], src)
	copy(p[16:20], dst)
	binary.BigEndian.PutUint16(p[10:], checksum(p[:ipLen]))
	u := p[ipLen:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	return p
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
