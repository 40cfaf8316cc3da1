package dns

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Forward sends what no handler before it answered to the upstream
// resolvers, in order, over the protocol the query came in on (retrying over
// TCP when a UDP answer is truncated). With no upstream, or a query from an
// internal network, it answers SERVFAIL at once.
func Forward(upstreams func() []string, timeout time.Duration) Plugin {
	return func(next Handler) Handler { return &forward{upstreams: upstreams, timeout: timeout} }
}

type forward struct {
	upstreams func() []string
	timeout   time.Duration
}

func (h *forward) Name() string { return "forward" }

func (h *forward) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	req := RequestFrom(ctx)
	ups := h.upstreams()
	if len(ups) == 0 || req.Internal {
		return dns.RcodeServerFailure, nil
	}
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	var lastErr error
	for _, up := range ups {
		c := &dns.Client{Net: proto, Timeout: h.timeout}
		resp, _, err := c.ExchangeContext(ctx, r, up)
		if err == nil && resp.Truncated && proto == "udp" {
			c.Net = "tcp"
			resp, _, err = c.ExchangeContext(ctx, r, up)
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

// ResolvConf reads the upstream resolvers of a resolv.conf file, as
// host:53, skipping loopback ones a container's queries cannot be sent to
// on the host's behalf (dockerd does the same). It rereads the file when
// its modification time changes.
type ResolvConf struct {
	Path string

	mu    sync.Mutex
	mtime time.Time
	ups   []string
}

// Upstreams returns the usable nameservers of the file (none when it cannot
// be read).
func (rc *ResolvConf) Upstreams() []string {
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
// as host:port.
func ParseNameservers(b []byte) []string {
	var out []string
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
		out = append(out, net.JoinHostPort(ip.String(), "53"))
	}
	return out
}
