package portmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/sirupsen/logrus"
)

const (
	dialTimeout = 5 * time.Second
	// udpIdle is how long a UDP flow without traffic keeps its socket to
	// the container (docker-proxy waits 90s too).
	udpIdle = 90 * time.Second
)

// forwarder serves a held socket: every TCP connection it accepts, or UDP
// flow it receives, is passed on to target. Close stops it and ends every
// connection, so releasing a port leaves nothing running.
type forwarder struct {
	sock   io.Closer
	target netip.AddrPort
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newForwarder(sock io.Closer, target netip.AddrPort) (*forwarder, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &forwarder{sock: sock, target: target, ctx: ctx, cancel: cancel}
	switch s := sock.(type) {
	case net.Listener:
		f.wg.Add(1)
		go f.acceptTCP(s)
	case net.PacketConn:
		f.wg.Add(1)
		go f.serveUDP(s)
	default:
		cancel()
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot forward to %s from this socket", target))
	}
	return f, nil
}

func (f *forwarder) Close() error {
	f.cancel()
	err := f.sock.Close()
	f.wg.Wait()
	return err
}

func (f *forwarder) acceptTCP(l net.Listener) {
	defer f.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logrus.WithError(err).Debugf("portmap: forwarder for %s stops", f.target)
			}
			return
		}
		f.wg.Add(1)
		go f.pipeTCP(c.(*net.TCPConn))
	}
}

func (f *forwarder) pipeTCP(in *net.TCPConn) {
	defer f.wg.Done()
	defer in.Close()
	d := net.Dialer{Timeout: dialTimeout}
	oc, err := d.DialContext(f.ctx, "tcp", f.target.String())
	if err != nil {
		return
	}
	out := oc.(*net.TCPConn)
	defer out.Close()
	stop := context.AfterFunc(f.ctx, func() { in.Close(); out.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(out, in)
		_ = out.CloseWrite()
	}()
	_, _ = io.Copy(in, out)
	_ = in.CloseWrite()
	wg.Wait()
}

// serveUDP keeps one socket to the target per client address, so the
// container's answers go back to the client that asked.
func (f *forwarder) serveUDP(pc net.PacketConn) {
	defer f.wg.Done()
	var mu sync.Mutex
	flows := map[string]*net.UDPConn{}
	defer func() {
		mu.Lock()
		for _, c := range flows {
			c.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		mu.Lock()
		out, ok := flows[from.String()]
		if !ok {
			out, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(f.target))
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[from.String()] = out
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.replies(pc, out, from)
				mu.Lock()
				delete(flows, from.String())
				mu.Unlock()
				out.Close()
			}()
		}
		mu.Unlock()
		_ = out.SetReadDeadline(time.Now().Add(udpIdle))
		_, _ = out.Write(buf[:n])
	}
}

// replies sends what the target answers on out back to client, until the
// flow is idle or the forwarder stops.
func (f *forwarder) replies(pc net.PacketConn, out *net.UDPConn, client net.Addr) {
	buf := make([]byte, 65535)
	for f.ctx.Err() == nil {
		n, err := out.Read(buf)
		if err != nil {
			return
		}
		_ = out.SetReadDeadline(time.Now().Add(udpIdle))
		if _, err := pc.WriteTo(buf[:n], client); err != nil {
			return
		}
	}
}
