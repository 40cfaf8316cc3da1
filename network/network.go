// Package network owns berth's container networking: bridge networks (the
// predefined "bridge" plus user networks), their IPAM, network namespaces
// and veth endpoints of containers, published ports (DNAT plus a held host
// socket), NAT and isolation rules, and the embedded DNS server of every
// bridge. The runtime calls it as a library (CreateSandbox, Attach,
// PublishPorts, ... Restore); the network API router calls it as its
// backend. Everything it puts on the host carries names derived from the
// daemon's configuration, so several daemons share one host.
//
// State: networks, endpoints and published ports live in the store; IPAM
// and DNS records are rebuilt from them at Restore, so the store is the only
// source of truth.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/network/dns"
	"github.com/berthd/berth/network/ipam"
	"github.com/berthd/berth/network/iptables"
	"github.com/berthd/berth/network/portmap"
	"github.com/berthd/berth/store"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/sirupsen/logrus"
)

// Config is the daemon configuration the network subsystem needs.
type Config struct {
	// Bridge is the default bridge device (--bridge, "berth0"). It also tags
	// every iptables chain of the daemon.
	Bridge string
	// BIP is the default bridge's gateway and prefix (--bip, 10.210.0.1/24).
	BIP netip.Prefix
	// Pools are the subnets for user networks (--default-address-pool), of
	// both families. Without an IPv6 pool, New adds one derived from the
	// bridge name and the host (ipam.ULAPool), as dockerd derives one from
	// its host ID.
	Pools []ipam.Pool
	// IPv6 gives the default bridge IPv6 (--ipv6); FixedCIDRv6 is its
	// subnet (--fixed-cidr-v6). Without one, the subnet comes from the
	// IPv6 pools and is kept across restarts.
	IPv6        bool
	FixedCIDRv6 netip.Prefix
	// DNSZone is the daemon zone (berthd --dns-zone, whose default is
	// compose.DefaultZone); required.
	DNSZone string
	// ExecRoot holds runtime state; netns files live in <ExecRoot>/netns.
	ExecRoot string
	// ResolvConf is the host file naming the upstream resolvers.
	ResolvConf string
	// DNSServers, when set (--dns), are the upstream resolvers instead of
	// ResolvConf's, as "ip" or "ip:port". Loopback ones are fine here: berth's
	// DNS server forwards from the host, not from the container.
	DNSServers []string
}

// DefaultConfig is berthd's default network configuration.
func DefaultConfig(execRoot string) Config {
	return Config{
		Bridge:     "berth0",
		BIP:        netip.MustParsePrefix("10.210.0.1/24"),
		Pools:      []ipam.Pool{{Base: netip.MustParsePrefix("10.210.0.0/16"), Size: 24}},
		ExecRoot:   execRoot,
		ResolvConf: "/etc/resolv.conf",
	}
}

// Publisher receives network events (events.Bus).
type Publisher interface {
	Publish(m events.Message)
}

// Deps are everything New needs.
type Deps struct {
	DB     *store.DB
	Events Publisher
	Config Config
	// DNSPlugins run in front of berth's own DNS handlers, in order (compose
	// scoping is one). They may be empty.
	DNSPlugins []dns.Plugin
}

// Manager is the network subsystem. All methods are safe for concurrent use.
type Manager struct {
	cfg      Config
	nets     *store.Table[netRecord]
	eps      *store.Table[endpointRecord]
	portsTbl *store.Table[portsRecord]
	bus      Publisher
	records  *dns.Table
	handler  dns.Handler
	fw       *iptables.Firewall
	ports    *portmap.Allocator
	nsDir    string

	bg sync.WaitGroup // background veth deletions
	// afterDelete, set by tests, runs when a detached endpoint's record
	// deletion is committed and its address not yet released.
	afterDelete func(key string)

	nsDirMu    sync.Mutex
	nsDirReady bool // <exec-root>/netns is the shared self-mount

	mu sync.Mutex
	// fwd6 is set once IPv6 forwarding is known to be on (the first IPv6
	// network brought up turns it on).
	fwd6      bool
	networks  map[string]*netState       // by id
	endpoints map[string]*endpointRecord // live endpoints, by epKey
	// pending are the stored endpoints of containers that may still run,
	// until Restore (or DeleteSandbox) claims them or RestoreDone drops them.
	// Their addresses stay reserved meanwhile.
	pending  map[string]*endpointRecord
	restored map[string]bool // containers Restore was called for
	hostUp   bool            // every network brought up and the firewall written once
}

// netState is one network in memory.
type netState struct {
	rec    netRecord
	opts   bridgeOptions
	sub    *ipam.Subnet // IPv4; nil for host/none and IPv6-only networks
	sub6   *ipam.Subnet // IPv6; nil without IPv6
	server *dns.Server  // nil until the bridge is up, and for host/none
	// upIndex is the bridge device's index when upLocked last set it up
	// whole (0: not yet, or it must be checked again)
	upIndex int
}

// isBridge reports whether the network has endpoints (not host or none).
func (st *netState) isBridge() bool { return st.rec.Driver == "bridge" }

// reserve marks an endpoint's addresses used (restoring from the store).
func (st *netState) reserve(ep *endpointRecord) {
	if st.sub != nil && ep.IP.IsValid() {
		st.sub.Reserve(ep.IP)
	}
	if st.sub6 != nil && ep.IPv6.IsValid() {
		st.sub6.Reserve(ep.IPv6)
	}
}

// release frees an endpoint's addresses.
func (st *netState) release(ep *endpointRecord) {
	if st.sub != nil && ep.IP.IsValid() {
		st.sub.Release(ep.IP)
	}
	if st.sub6 != nil && ep.IPv6.IsValid() {
		st.sub6.Release(ep.IPv6)
	}
}

// dnsAddr is where the network's DNS server listens: the IPv4 gateway, or
// the IPv6 one on an IPv6-only network.
func (st *netState) dnsAddr() netip.Addr {
	if st.rec.hasIPv4() {
		return st.rec.Gateway
	}
	if st.rec.IPv6 != nil {
		return st.rec.IPv6.Gateway
	}
	return netip.Addr{}
}

// New checks deps and loads the networks from the store, creating the
// predefined bridge, host and none networks the first time. It changes
// nothing on the host: the first operation that needs the host (Attach,
// CreateNetwork, Restore, RestoreDone, ...) brings every network up.
func New(deps Deps) (*Manager, error) {
	c := deps.Config
	switch {
	case deps.DB == nil:
		return nil, errors.New("network: no store")
	case deps.Events == nil:
		return nil, errors.New("network: no event publisher")
	case c.Bridge == "" || len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/ \t"):
		return nil, fmt.Errorf("network: invalid bridge name %q", c.Bridge)
	case !c.BIP.IsValid() || !c.BIP.Addr().Is4():
		return nil, fmt.Errorf("network: invalid --bip %q: an IPv4 address with prefix length is required", c.BIP)
	case len(c.Pools) == 0:
		return nil, errors.New("network: no default address pool")
	case c.ExecRoot == "":
		return nil, errors.New("network: no exec root")
	}
	if c.DNSZone == "" {
		return nil, errors.New("network: no DNS zone")
	}
	c.DNSZone = strings.Trim(strings.ToLower(c.DNSZone), ".")
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.BIP.Addr() == c.BIP.Masked().Addr() {
		// --bip 10.210.0.0/24 means the first host as gateway
		c.BIP = netip.PrefixFrom(ipam.FirstHost(c.BIP), c.BIP.Bits())
	}
	if c.FixedCIDRv6.IsValid() {
		if err := checkSubnet6(c.FixedCIDRv6); err != nil {
			return nil, fmt.Errorf("network: invalid fixed-cidr-v6: %w", err)
		}
		c.FixedCIDRv6 = c.FixedCIDRv6.Masked()
	}
	if !slices.ContainsFunc(c.Pools, ipam.Pool.Is6) {
		c.Pools = append(slices.Clone(c.Pools), ipam.ULAPool(hostSeed()+"/"+c.Bridge))
	}
	m := &Manager{
		cfg:       c,
		bus:       deps.Events,
		records:   dns.NewTable(),
		fw:        iptables.New(c.Bridge),
		ports:     portmap.NewAllocator(portmap.EphemeralRange()),
		nsDir:     filepath.Join(c.ExecRoot, "netns"),
		networks:  map[string]*netState{},
		endpoints: map[string]*endpointRecord{},
		pending:   map[string]*endpointRecord{},
		restored:  map[string]bool{},
	}
	var err error
	if m.nets, err = store.NewTable[netRecord](deps.DB, "networks"); err != nil {
		return nil, err
	}
	if m.eps, err = store.NewTable[endpointRecord](deps.DB, "endpoints"); err != nil {
		return nil, err
	}
	if m.portsTbl, err = store.NewTable[portsRecord](deps.DB, "ports"); err != nil {
		return nil, err
	}
	upstreams := (&dns.ResolvConf{Path: c.ResolvConf}).Upstreams
	if len(c.DNSServers) > 0 {
		var fixed []netip.AddrPort
		for _, s := range c.DNSServers {
			ap, err := dns.ParseUpstream(s)
			if err != nil {
				return nil, fmt.Errorf("network: %w", err)
			}
			fixed = append(fixed, ap)
		}
		upstreams = func() []netip.AddrPort { return fixed }
	}
	plugins := append(append([]dns.Plugin(nil), deps.DNSPlugins...), dns.Names(), dns.Zone(), dns.Forward(upstreams, 3*time.Second))
	m.handler = dns.Chain(plugins...)
	if err := m.load(); err != nil {
		return nil, err
	}
	if err := m.loadEndpoints(); err != nil {
		return nil, err
	}
	return m, nil
}

// Records is the read-only view of every endpoint's DNS records (for DNS
// plugins and tests).
func (m *Manager) Records() dns.Records { return m.records }

// Zone is the daemon's DNS zone.
func (m *Manager) Zone() string { return m.cfg.DNSZone }

// load reads the networks and makes sure the predefined ones exist and the
// default bridge matches the configuration.
func (m *Manager) load() error {
	recs, bad, err := m.nets.List()
	if err != nil {
		return err
	}
	for _, b := range bad {
		// a damaged record must not keep the daemon down; its bridge is
		// found by the ownership report
		_ = m.nets.Delete(b.ID)
	}
	have := map[string]bool{}
	for _, r := range recs {
		if r.Predefined {
			have[r.Name] = true
		}
		if r.Predefined && r.Name == "bridge" {
			r.Bridge, r.Subnet, r.Gateway = m.cfg.Bridge, m.cfg.BIP.Masked(), m.cfg.BIP.Addr()
			continue // after the others: its IPv6 subnet must miss theirs
		}
		if err := m.addState(r); err != nil {
			return err
		}
	}
	for id, r := range recs {
		if !r.Predefined || r.Name != "bridge" {
			continue
		}
		if err := m.defaultBridgeIPv6Locked(r); err != nil {
			return err
		}
		if err := m.nets.Put(id, r); err != nil {
			return err
		}
		if err := m.addState(r); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	for _, p := range []netRecord{
		{Name: "bridge", Driver: "bridge", Bridge: m.cfg.Bridge, Subnet: m.cfg.BIP.Masked(), Gateway: m.cfg.BIP.Addr(),
			Options: map[string]string{
				"com.docker.network.bridge.default_bridge":       "true",
				"com.docker.network.bridge.enable_icc":           "true",
				"com.docker.network.bridge.enable_ip_masquerade": "true",
				"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
				"com.docker.network.bridge.name":                 m.cfg.Bridge,
				"com.docker.network.driver.mtu":                  "1500",
			}},
		{Name: "host", Driver: "host"},
		{Name: "none", Driver: "null"},
	} {
		if have[p.Name] {
			continue
		}
		p.ID, p.Created, p.Predefined = newID(), now, true
		if p.Name == "bridge" {
			if err := m.defaultBridgeIPv6Locked(&p); err != nil {
				return err
			}
		}
		if err := m.nets.Put(p.ID, &p); err != nil {
			return err
		}
		if err := m.addState(&p); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) addState(r *netRecord) error {
	st := &netState{rec: *r}
	if r.Driver == "bridge" {
		var err error
		if r.hasIPv4() {
			if st.sub, err = ipam.NewSubnet(r.Subnet, r.IPRange, r.Gateway); err != nil {
				return fmt.Errorf("network %s: %w", r.Name, err)
			}
			for _, a := range r.AuxAddresses {
				st.sub.Reserve(a)
			}
		}
		if v6 := r.IPv6; v6 != nil {
			if st.sub6, err = ipam.NewSubnet(v6.Subnet, v6.IPRange, v6.Gateway); err != nil {
				return fmt.Errorf("network %s: %w", r.Name, err)
			}
			for _, a := range v6.AuxAddresses {
				st.sub6.Reserve(a)
			}
		}
		if st.opts, err = parseBridgeOptions(r.Options); err != nil {
			// stored by a berth that did not check options: keep the
			// network usable with the defaults
			logrus.WithError(err).Warnf("network %s: options ignored", r.Name)
			st.opts, _ = parseBridgeOptions(nil)
		}
	}
	m.networks[r.ID] = st
	return nil
}

// defaultBridgeIPv6Locked sets the default bridge's IPv6 configuration from
// --ipv6 and --fixed-cidr-v6: the fixed subnet, or the one it had (a
// subnet from the pools stays the bridge's across restarts), or the next
// free one of the IPv6 pools. Without --ipv6 it has none.
func (m *Manager) defaultBridgeIPv6Locked(r *netRecord) error {
	if !m.cfg.IPv6 {
		r.IPv6 = nil
		return nil
	}
	if p := m.cfg.FixedCIDRv6; p.IsValid() {
		if r.IPv6 == nil || r.IPv6.Subnet != p {
			r.IPv6 = &ipamRecord{Subnet: p, Gateway: ipam.FirstHost(p), UserSubnet: true}
		}
		return nil
	}
	if r.IPv6 != nil && !r.IPv6.UserSubnet {
		return nil
	}
	used := m.usedLocked(true)
	sub, err := ipam.NextSubnet(m.cfg.Pools, append(used, hostRoutes(used, true)...), true)
	if err != nil {
		return fmt.Errorf("default bridge: %w", err)
	}
	r.IPv6 = &ipamRecord{Subnet: sub, Gateway: ipam.FirstHost(sub)}
	return nil
}

// usedLocked are the subnets of one family of every bridge network.
func (m *Manager) usedLocked(v6 bool) []netip.Prefix {
	var used []netip.Prefix
	for _, st := range m.networks {
		switch {
		case !st.isBridge():
		case v6 && st.rec.IPv6 != nil:
			used = append(used, st.rec.IPv6.Subnet)
		case !v6 && st.rec.hasIPv4():
			used = append(used, st.rec.Subnet)
		}
	}
	return used
}

// hostSeed names this host for ipam.ULAPool: its machine id, else its
// host name.
func hostSeed() string {
	if b, err := os.ReadFile("/etc/machine-id"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	h, _ := os.Hostname()
	return h
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ErrNoSuchNetwork is dockerd's 404 for an unknown network.
func ErrNoSuchNetwork(idOrName string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", idOrName))
}

// lookupLocked resolves a full id, a name, or a unique id prefix, in
// dockerd's order. Callers hold m.mu.
func (m *Manager) lookupLocked(idOrName string) (*netState, error) {
	if idOrName == "" {
		return nil, ErrNoSuchNetwork(idOrName)
	}
	if st, ok := m.networks[idOrName]; ok {
		return st, nil
	}
	for _, st := range m.networks {
		if st.rec.Name == idOrName {
			return st, nil
		}
	}
	var found []*netState
	for id, st := range m.networks {
		if strings.HasPrefix(id, idOrName) {
			found = append(found, st)
		}
	}
	switch len(found) {
	case 0:
		return nil, ErrNoSuchNetwork(idOrName)
	case 1:
		return found[0], nil
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", idOrName, len(found)))
	}
}

func (m *Manager) publish(action events.Action, st *netState, container string) {
	attrs := map[string]string{"name": st.rec.Name, "type": st.rec.Driver}
	if container != "" {
		attrs["container"] = container
	}
	m.bus.Publish(events.Message{
		Type:   events.NetworkEventType,
		Action: action,
		Actor:  events.Actor{ID: st.rec.ID, Attributes: attrs},
		Scope:  "local",
	})
}

// stateCtx is a context for host changes that must finish even when the
// caller gives up (a half-made veth is worse than a slow answer).
func stateCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
