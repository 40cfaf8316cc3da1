// Package ipam owns IPv4 address management for berth's bridge networks:
// picking subnets for new networks from the daemon's address pools, and
// handing out addresses inside one network's subnet. It is pure (no host
// state); the network package rebuilds it from the store at start.
package ipam

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// Pool is one --default-address-pool: subnets of Size bits carved from Base.
type Pool struct {
	Base netip.Prefix
	Size int
}

func (p Pool) String() string { return fmt.Sprintf("base=%s,size=%d", p.Base, p.Size) }

// ParsePool parses dockerd's --default-address-pool syntax,
// "base=10.210.0.0/16,size=24".
func ParsePool(s string) (Pool, error) {
	var p Pool
	var haveBase, haveSize bool
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return Pool{}, fmt.Errorf("invalid address pool %q: expected key=value: %w", s, errdefs.ErrInvalidArgument)
		}
		switch strings.ToLower(k) {
		case "base":
			pr, err := netip.ParsePrefix(v)
			if err != nil || !pr.Addr().Is4() {
				return Pool{}, fmt.Errorf("invalid address pool %q: base %q is not an IPv4 CIDR: %w", s, v, errdefs.ErrInvalidArgument)
			}
			p.Base, haveBase = pr.Masked(), true
		case "size":
			n, err := strconv.Atoi(v)
			if err != nil {
				return Pool{}, fmt.Errorf("invalid address pool %q: size %q: %w", s, v, errdefs.ErrInvalidArgument)
			}
			p.Size, haveSize = n, true
		default:
			return Pool{}, fmt.Errorf("invalid address pool %q: unknown key %q: %w", s, k, errdefs.ErrInvalidArgument)
		}
	}
	if !haveBase || !haveSize {
		return Pool{}, fmt.Errorf("invalid address pool %q: base and size are required: %w", s, errdefs.ErrInvalidArgument)
	}
	if p.Size < p.Base.Bits() || p.Size > 30 {
		return Pool{}, fmt.Errorf("invalid address pool %q: size must be between the base's prefix length and 30: %w", s, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// Overlaps reports whether two prefixes share an address.
func Overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}

// ErrPoolOverlap is dockerd's answer to an explicit subnet that overlaps an
// existing network (403 there too).
var ErrPoolOverlap = errdefs.ErrPermissionDenied.WithMessage("invalid pool request: Pool overlaps with other one on this address space")

// ErrNoPool is returned when every subnet of every pool is taken.
var ErrNoPool = errdefs.ErrResourceExhausted.WithMessage("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")

// NextSubnet returns the first subnet of the pools that overlaps none of
// used. If there is none, ErrNoPool is returned.
func NextSubnet(pools []Pool, used []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		step := uint64(1) << (32 - p.Size)
		start := uint64(v4(p.Base.Addr()))
		end := start + (uint64(1) << (32 - p.Base.Bits()))
	next:
		for a := start; a < end; a += step {
			cand := netip.PrefixFrom(fromV4(uint32(a)), p.Size)
			for _, u := range used {
				if u.Overlaps(cand) {
					// skip past the used prefix when it is bigger than a step
					if u.Bits() < p.Size {
						uend := uint64(v4(u.Masked().Addr())) + (uint64(1) << (32 - u.Bits()))
						a = uend - step
					}
					continue next
				}
			}
			return cand, nil
		}
	}
	return netip.Prefix{}, ErrNoPool
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromV4(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// FirstHost is the first usable address of p (the conventional gateway).
func FirstHost(p netip.Prefix) netip.Addr {
	return fromV4(v4(p.Masked().Addr()) + 1)
}
