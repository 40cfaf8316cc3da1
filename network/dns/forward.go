package dns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// Forward sends what no handler before it answered to upstream resolvers,
// in order, over the protocol the query came in on. The upstreams are the
// asking container's own (--dns, compose dns:) when it has any, else the
// daemon's (upstreams). A loopback upstream of a container's own means its
// own loopback, as with Docker, whose resolver lives in the container's
// namespace: the query is sent from inside the container's network
// namespace, never to the host's loopback. A daemon upstream is asked from
// the host.
//
// A truncated UDP answer is passed on truncated: the client retries over TCP
// itself (berth never turns a small UDP query into a large UDP answer). With
// no upstream, or for a container that has no network with a way out (every
// network it is on is internal), it answers SERVFAIL at once.
func Forward(upstreams func() []netip.AddrPort, timeout time.Duration) Plugin {
	return func(next Handler) Handler { return &forward{upstreams: upstreams, timeout: timeout} }
}

type forward struct {
	upstreams func() []netip.AddrPort
	timeout   time.Duration
}

func (h *forward) Name() string { return "forward" }

func (h *forward) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := RequestFrom(ctx)
	if req.NoEgress() {
		return dns.RcodeServerFailure, nil
	}
	ups, own := h.upstreams(), false
	if req.Asker != nil && len(req.Asker.Upstreams) > 0 {
		ups, own = req.Asker.Upstreams, true
	}
	if len(ups) == 0 {
		return dns.RcodeServerFailure, nil
	}
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	var lastErr error
	for _, up := range ups {
		var resp *dns.Msg
		var err error
		if own && up.Addr().Unmap().IsLoopback() {
			resp, err = h.exchangeIn(ctx, req.Asker.NsPath, proto, r, up)
		} else {
			c := &dns.Client{Net: proto, Timeout: h.timeout}
			resp, _, err = c.ExchangeContext(ctx, r, up.String())
		}
		if err != nil {
			lastErr = err
			continue
		}
		resp.Id = r.Id
		if err := w.WriteMsg(resp); err != nil {
			return dns.RcodeServerFailure, err
		}
		return resp.Rcode, nil
	}
	return dns.RcodeServerFailure, lastErr
}

// exchangeIn asks up from inside the network namespace at nsPath.
func (h *forward) exchangeIn(ctx context.Context, nsPath, proto string, r *dns.Msg, up netip.AddrPort) (*dns.Msg, error) {
	if nsPath == "" {
		return nil, fmt.Errorf("loopback upstream %s: no namespace to reach it in", up)
	}
	conn, err := DialIn(nsPath, proto, up, h.timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &dns.Client{Net: proto, Timeout: h.timeout}
	resp, _, err := c.ExchangeWithConnContext(ctx, r, &dns.Conn{Conn: conn})
	return resp, err
}

// DialIn connects to addr from inside the network namespace at nsPath. The
// socket is made on a thread that has entered the namespace and keeps the
// namespace for its life, whatever thread uses it later.
func DialIn(nsPath, proto string, addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			goruntime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			goruntime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			goruntime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial(proto, addr.String())
		if serr := netns.Set(orig); serr != nil {
			// the thread stays locked, so it ends with this goroutine
			// instead of serving others from the wrong namespace
			if c != nil {
				c.Close()
			}
			ch <- result{nil, errors.Join(err, serr)}
			return
		}
		goruntime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// ResolvConf reads the upstream resolvers of a resolv.conf file, skipping
// loopback ones a container's queries cannot be sent to on the host's
// behalf (dockerd does the same). It rereads the file when its modification
// time changes.
type ResolvConf struct {
	Path string

	mu    sync.Mutex
	mtime time.Time
	ups   []netip.AddrPort
}

// Upstreams returns the usable nameservers of the file (none when it cannot
// be read).
func (rc *ResolvConf) Upstreams() []netip.AddrPort {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	st, err := os.Stat(rc.Path)
	if err != nil {
		return nil
	}
	if st.ModTime().Equal(rc.mtime) {
		return rc.ups
	}
	b, err := os.ReadFile(rc.Path)
	if err != nil {
		return nil
	}
	rc.mtime, rc.ups = st.ModTime(), ParseNameservers(b)
	return rc.ups
}

// ParseNameservers returns the non-loopback nameservers of resolv.conf text
// on port 53.
func ParseNameservers(b []byte) []netip.AddrPort {
	var out []netip.AddrPort
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil || ip.IsLoopback() {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, 53))
	}
	return out
}

// ParseUpstream reads a resolver given as an address ("1.1.1.1", "fd00::1")
// or an address and port ("1.1.1.1:5353", "[fd00::1]:53").
func ParseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("invalid DNS server %q", s)
	}
	return netip.AddrPortFrom(ip.WithZone(""), 53), nil
}
