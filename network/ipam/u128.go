package ipam

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an address of either family as a number, so that subnets and
// ranges are walked the same way for IPv4 (in the low 32 bits) and IPv6.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// addr turns u back into an address of the family of like.
func (u u128) addr(v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) add(v u128) u128 {
	lo, c := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, c)
	return u128{hi, lo}
}

func (u u128) sub(v u128) u128 {
	lo, b := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, b)
	return u128{hi, lo}
}

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

// pow2 is 1<<n for n in 0..127.
func pow2(n int) u128 {
	if n >= 64 {
		return u128{hi: 1 << (n - 64)}
	}
	return u128{lo: 1 << n}
}

var one = u128{lo: 1}

// hostBits is the number of address bits after p's prefix.
func hostBits(p netip.Prefix) int { return p.Addr().BitLen() - p.Bits() }

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) u128 {
	return toU128(p.Masked().Addr()).add(pow2(hostBits(p))).sub(one)
}

// saturate is u as a uint64, or the largest uint64 when it does not fit.
func (u u128) saturate() uint64 {
	if u.hi != 0 {
		return ^uint64(0)
	}
	return u.lo
}
