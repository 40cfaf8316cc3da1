package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Listener is where one bridge's server listens and what it tells handlers.
type Listener struct {
	// Addr is the bridge's gateway: its IPv4 one, or the IPv6 one on an
	// IPv6-only network. The sockets are of its family only.
	Addr netip.Addr
	Port uint16 // 53; tests use another
	// Device is the bridge's interface: the sockets only take packets that
	// came in through it (SO_BINDTODEVICE), so nothing on the host's other
	// links reaches the server even when it can route to the gateway
	// address. "" (tests on loopback) binds to no device.
	Device    string
	NetworkID string
	Internal  bool
}

// Server serves one bridge's gateway over UDP and TCP.
type Server struct {
	udp, tcp *dns.Server
	done     sync.WaitGroup
}

// Serve starts answering on l through h. zone is the daemon zone,
// records the view handed to handlers. Only containers on the network are
// answered: a query from any other source is REFUSED, so the server is no
// open resolver and tells nobody else the names of containers.
func Serve(l Listener, h Handler, records Records, zone string) (*Server, error) {
	port := l.Port
	if port == 0 {
		port = 53
	}
	addr := net.JoinHostPort(l.Addr.String(), strconv.Itoa(int(port)))
	fam := "4"
	if l.Addr.Is6() {
		fam = "6"
	}
	lc := net.ListenConfig{Control: bindToDevice(l.Device)}
	pc, err := lc.ListenPacket(context.Background(), "udp"+fam, addr)
	if err != nil {
		return nil, fmt.Errorf("dns: listen udp %s: %w", addr, err)
	}
	tl, err := lc.Listen(context.Background(), "tcp"+fam, addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dns: listen tcp %s: %w", addr, err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		serve(w, r, l, h, records, zone)
	})
	s := &Server{
		udp: &dns.Server{PacketConn: pc, Handler: handler},
		tcp: &dns.Server{Listener: tl, Handler: handler, ReadTimeout: 5 * time.Second},
	}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			if err := srv.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				logrus.WithError(err).Debugf("dns server on %s ended", addr)
			}
		}()
	}
	return s, nil
}

func bindToDevice(dev string) func(network, address string, c syscall.RawConn) error {
	if dev == "" {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to device %s: %w", dev, serr)
		}
		return nil
	}
}

// Close stops both listeners and waits for them.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err1 := s.udp.ShutdownContext(ctx)
	err2 := s.tcp.ShutdownContext(ctx)
	s.done.Wait()
	return errors.Join(err1, err2)
}

func serve(w dns.ResponseWriter, r *dns.Msg, l Listener, h Handler, records Records, zone string) {
	req := &Request{Network: l.NetworkID, Internal: l.Internal, Zone: zone, Records: records}
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		req.Source = ap.Addr().Unmap()
		if ep, ok := records.ByIP(l.NetworkID, req.Source); ok {
			req.Asker = &ep
		}
	}
	w = limitUDP(w, r)
	if req.Asker == nil {
		reply(w, r, dns.RcodeRefused)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	Dispatch(WithRequest(ctx, req), h, w, r)
}

// limitUDP makes w truncate (TC bit) every UDP answer to what the query
// allows: 512 bytes, or its EDNS0 buffer size. A UDP answer is never larger
// than the client said it can take, so the server amplifies nothing.
func limitUDP(w dns.ResponseWriter, r *dns.Msg) dns.ResponseWriter {
	if _, ok := w.RemoteAddr().(*net.UDPAddr); !ok {
		return w
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return &truncating{ResponseWriter: w, size: size}
}

type truncating struct {
	dns.ResponseWriter
	size int
}

func (t *truncating) WriteMsg(m *dns.Msg) error {
	m.Truncate(t.size)
	return t.ResponseWriter.WriteMsg(m)
}

// Dispatch runs h and writes the error reply when h did not answer.
func Dispatch(ctx context.Context, h Handler, w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		reply(w, r, dns.RcodeFormatError)
		return
	}
	rcode, err := h.ServeDNS(ctx, w, r)
	if err != nil {
		logrus.WithError(err).Debugf("dns: %s %s", dns.TypeToString[r.Question[0].Qtype], r.Question[0].Name)
	}
	if !ClientWrite(rcode) {
		reply(w, r, rcode)
	}
}

func reply(w dns.ResponseWriter, r *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	_ = w.WriteMsg(m)
}
