// Package ipam owns address management for berth's bridge networks, IPv4
// and IPv6 alike: picking subnets for new networks from the daemon's address
// pools, and handing out addresses inside one network's subnet. It is pure
// (no host state); the network package rebuilds it from the store at start.
package ipam

import (
	"crypto/sha256"
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
// "base=10.210.0.0/16,size=24" or "base=fd6b:e27a:1::/48,size=64".
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
			if err != nil || pr.Addr().Zone() != "" || pr.Addr().Is4In6() {
				return Pool{}, fmt.Errorf("invalid address pool %q: base %q is not a CIDR: %w", s, v, errdefs.ErrInvalidArgument)
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
	if most := maxBits(p.Base.Addr().Is6()); p.Size < p.Base.Bits() || p.Size > most {
		return Pool{}, fmt.Errorf("invalid address pool %q: size must be between the base's prefix length and %d: %w", s, most, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// maxBits is the longest prefix of a bridge subnet: room for the network
// address, the gateway and containers.
func maxBits(v6 bool) int {
	if v6 {
		return 126
	}
	return 30
}

// Is6 reports whether the pool hands out IPv6 subnets.
func (p Pool) Is6() bool { return p.Base.Addr().Is6() }

// ULAPool is the IPv6 pool a daemon uses when it is given none, as dockerd
// derives one from its host ID: a /48 of fd00::/8 whose 40-bit global ID
// is taken from a hash of seed (RFC 4193 section 3.2.2, loosely), split in
// /64s. The same seed always gives the same pool.
func ULAPool(seed string) Pool {
	sum := sha256.Sum256([]byte(seed))
	gid := binary.BigEndian.Uint64(sum[:8]) & (1<<40 - 1)
	var b [16]byte
	b[0] = 0xfd
	for i := 0; i < 5; i++ {
		b[5-i] = byte(gid >> (8 * i))
	}
	return Pool{Base: netip.PrefixFrom(netip.AddrFrom16(b), 48), Size: 64}
}

// Overlaps reports whether two prefixes share an address.
func Overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}

// ErrPoolOverlap is dockerd's answer to an explicit subnet that overlaps an
// existing network (403 there too).
var ErrPoolOverlap = errdefs.ErrPermissionDenied.WithMessage("invalid pool request: Pool overlaps with other one on this address space")

// ErrNoPool is returned when every subnet of every IPv4 pool is taken.
var ErrNoPool = errdefs.ErrResourceExhausted.WithMessage("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")

// ErrNoPool6 is ErrNoPool for IPv6.
var ErrNoPool6 = errdefs.ErrResourceExhausted.WithMessage("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network")

// NextSubnet returns the first subnet of the pools of one family (IPv6 when
// v6) that overlaps none of used. If there is none, ErrNoPool (ErrNoPool6)
// is returned.
func NextSubnet(pools []Pool, used []netip.Prefix, v6 bool) (netip.Prefix, error) {
	for _, p := range pools {
		if p.Is6() != v6 {
			continue
		}
		step := pow2(p.Base.Addr().BitLen() - p.Size)
		a := toU128(p.Base.Masked().Addr())
		end := lastAddr(p.Base)
	next:
		for a.cmp(end) <= 0 {
			cand := netip.PrefixFrom(a.addr(!v6), p.Size)
			for _, u := range used {
				if u.Addr().Is6() != v6 || !u.Overlaps(cand) {
					continue
				}
				// skip past the used prefix when it is bigger than a step
				if u.Bits() < p.Size {
					a = lastAddr(u).add(one)
				} else {
					a = a.add(step)
				}
				if a.cmp(u128{}) == 0 {
					break next // wrapped past the end of the address space
				}
				continue next
			}
			return cand, nil
		}
	}
	if v6 {
		return netip.Prefix{}, ErrNoPool6
	}
	return netip.Prefix{}, ErrNoPool
}

// FirstHost is the first usable address of p (the conventional gateway).
func FirstHost(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next()
}
