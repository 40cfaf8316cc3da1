package portmap

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
)

// Key is one held host port.
type Key struct {
	IP    netip.Addr // 0.0.0.0 for every address
	Proto string
	Port  uint16
}

func (k Key) String() string {
	return fmt.Sprintf("%s:%d/%s", k.IP, k.Port, k.Proto)
}

// Allocator holds host ports by binding them. Safe for concurrent use.
type Allocator struct {
	mu     sync.Mutex
	held   map[Key]io.Closer
	lo, hi uint16
	// bind is net.Listen/ListenPacket; tests replace it.
	bind func(k Key) (io.Closer, error)
}

// NewAllocator returns an allocator whose ephemeral ports come from
// lo..hi (see EphemeralRange).
func NewAllocator(lo, hi uint16) *Allocator {
	return &Allocator{held: map[Key]io.Closer{}, lo: lo, hi: hi, bind: bindSocket}
}

// EphemeralRange reads /proc/sys/net/ipv4/ip_local_port_range, falling back
// to dockerd's 49153-60999.
func EphemeralRange() (uint16, uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			l, e1 := strconv.ParseUint(f[0], 10, 16)
			h, e2 := strconv.ParseUint(f[1], 10, 16)
			if e1 == nil && e2 == nil && l > 0 && l <= h {
				return uint16(l), uint16(h)
			}
		}
	}
	return 49153, 60999
}

// bindSocket holds k with a socket of k's family only (an IPv6 socket on
// :: is IPV6_V6ONLY, so 0.0.0.0 and :: are held apart, as dockerd does).
func bindSocket(k Key) (io.Closer, error) {
	addr := net.JoinHostPort(k.IP.String(), strconv.Itoa(int(k.Port)))
	fam := "4"
	if k.IP.Is6() {
		fam = "6"
	}
	switch k.Proto {
	case "udp":
		return net.ListenPacket("udp"+fam, addr)
	case "sctp":
		// Go has no sctp listener; the allocator's own table still guards it.
		return io.NopCloser(nil), nil
	default:
		return net.Listen("tcp"+fam, addr)
	}
}

// ErrAllocated is dockerd's message for a host port that is taken.
func ErrAllocated(ip netip.Addr, port uint16) error {
	return errdefs.ErrInternal.WithMessage(fmt.Sprintf("Bind for %s failed: port is already allocated", netip.AddrPortFrom(ip, port)))
}

// Request holds a port of proto on ip (unspecified: every address) within
// lo..hi; (0, 0) is any port of the ephemeral range. A fixed port that is
// taken is ErrAllocated (ErrInternal: dockerd answers 500); an exhausted
// range is ErrResourceExhausted.
func (a *Allocator) Request(ip netip.Addr, proto string, lo, hi uint16) (uint16, error) {
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if lo == 0 {
		lo, hi = a.lo, a.hi
		n := int(hi-lo) + 1
		start := rand.IntN(n)
		for i := 0; i < n; i++ {
			p := lo + uint16((start+i)%n)
			if a.tryLocked(Key{ip, proto, p}) == nil {
				return p, nil
			}
		}
		return 0, errdefs.ErrResourceExhausted.WithMessage(fmt.Sprintf("Bind for %s failed: all ports are allocated", netip.AddrPortFrom(ip, 0)))
	}
	var last error
	for p := int(lo); p <= int(hi); p++ {
		if last = a.tryLocked(Key{ip, proto, uint16(p)}); last == nil {
			return uint16(p), nil
		}
	}
	if lo == hi {
		return 0, last
	}
	return 0, ErrAllocated(ip, lo)
}

func (a *Allocator) tryLocked(k Key) error {
	for h := range a.held {
		if h.Proto == k.Proto && h.Port == k.Port && h.IP.Is6() == k.IP.Is6() && (h.IP == k.IP || h.IP.IsUnspecified() || k.IP.IsUnspecified()) {
			return ErrAllocated(k.IP, k.Port)
		}
	}
	c, err := a.bind(k)
	if err != nil {
		return ErrAllocated(k.IP, k.Port)
	}
	a.held[k] = c
	return nil
}

// Forward makes the socket holding k pass what it receives to target, in
// user space: for IPv6 ports on ::1 (and connections to ::1 of ports on
// ::), which DNAT cannot serve. It ends when k is released. A port that is
// not held, or whose socket cannot forward (sctp), is ErrInvalidArgument;
// forwarding a port twice is fine.
func (a *Allocator) Forward(k Key, target netip.AddrPort) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.held[k]
	if !ok {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("port %s is not held", k))
	}
	if _, ok := c.(*forwarder); ok {
		return nil
	}
	f, err := newForwarder(c, target)
	if err != nil {
		return err
	}
	a.held[k] = f
	return nil
}

// Reserve holds exactly k, as Request with a fixed port (used at restore).
func (a *Allocator) Reserve(k Key) error {
	_, err := a.Request(k.IP, k.Proto, k.Port, k.Port)
	return err
}

// Release frees k; releasing a free port is a no-op.
func (a *Allocator) Release(k Key) {
	if !k.IP.IsValid() {
		k.IP = netip.IPv4Unspecified()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.held[k]; ok {
		_ = c.Close()
		delete(a.held, k)
	}
}

// Held lists the held ports.
func (a *Allocator) Held() []Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Key, 0, len(a.held))
	for k := range a.held {
		out = append(out, k)
	}
	return out
}

// Close releases every port.
func (a *Allocator) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range a.held {
		_ = c.Close()
		delete(a.held, k)
	}
}
