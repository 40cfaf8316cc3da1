package network

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/network/endpoint"
	"github.com/berthd/berth/network/ipam"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// bridgeNameOption is the create option that names the bridge device.
const bridgeNameOption = "com.docker.network.bridge.name"

// Networks lists the networks matching f (name, id, label, driver, type
// custom|builtin, dangling). Invalid filters are ErrInvalidArgument.
func (m *Manager) Networks(ctx context.Context, f filters.Args) ([]network.Summary, error) {
	if err := f.Validate("name", "id", "label", "driver", "type", "dangling", "scope"); err != nil {
		return nil, err
	}
	for _, t := range f.Get("type") {
		if t != "custom" && t != "builtin" {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter: 'type'='%s'", t))
		}
	}
	dangling, danglingSet, err := f.GetBool("dangling")
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []network.Summary
	for _, st := range m.sortedLocked() {
		r := st.rec
		switch {
		case !f.Match("name", r.Name), !f.FuzzyMatch("id", r.ID), !f.MatchKVList("label", r.Labels),
			!f.ExactMatch("driver", r.Driver), !f.ExactMatch("scope", "local"):
			continue
		case f.Has("type") && !f.ExactMatch("type", typeOf(r)):
			continue
		case danglingSet && dangling != (!r.Predefined && m.countLocked(r.ID) == 0):
			continue
		}
		out = append(out, network.Summary{Network: m.wireLocked(st)})
	}
	if out == nil {
		out = []network.Summary{}
	}
	return out, nil
}

func typeOf(r netRecord) string {
	if r.Predefined {
		return "builtin"
	}
	return "custom"
}

func (m *Manager) sortedLocked() []*netState {
	out := slices.Collect(maps.Values(m.networks))
	slices.SortFunc(out, func(a, b *netState) int { return strings.Compare(a.rec.Name, b.rec.Name) })
	return out
}

func (m *Manager) countLocked(netID string) int {
	n := 0
	for _, ep := range m.endpoints {
		if ep.NetworkID == netID {
			n++
		}
	}
	return n
}

func (m *Manager) wireLocked(st *netState) network.Network {
	r := st.rec
	n := network.Network{
		Name: r.Name, ID: r.ID, Created: r.Created, Scope: "local", Driver: r.Driver,
		EnableIPv4: r.hasIPv4(), EnableIPv6: r.IPv6 != nil, Internal: r.Internal, Attachable: r.Attachable,
		IPAM:    network.IPAM{Driver: "default", Options: maps.Clone(r.IPAMOptions), Config: []network.IPAMConfig{}},
		Options: nonNil(r.Options), Labels: nonNil(r.Labels),
		ConfigFrom: network.ConfigReference{Network: ""},
	}
	if r.hasIPv4() {
		c := network.IPAMConfig{Subnet: r.Subnet, Gateway: r.Gateway, AuxAddress: maps.Clone(r.AuxAddresses)}
		if r.IPRange.IsValid() {
			c.IPRange = r.IPRange
		}
		n.IPAM.Config = append(n.IPAM.Config, c)
	}
	if v6 := r.IPv6; v6 != nil {
		c := network.IPAMConfig{Subnet: v6.Subnet, Gateway: v6.Gateway, AuxAddress: maps.Clone(v6.AuxAddresses)}
		if v6.IPRange.IsValid() {
			c.IPRange = v6.IPRange
		}
		n.IPAM.Config = append(n.IPAM.Config, c)
	}
	return n
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// Ref is a network's identity (endpoint.NetworkRef).
type Ref = endpoint.NetworkRef

// Network resolves a network id, name or unique id prefix (for the
// runtime: connecting a stopped container, keying NetworkSettings by name).
// ErrNotFound "network x not found"; an ambiguous prefix is
// ErrInvalidArgument.
func (m *Manager) Network(ctx context.Context, idOrName string) (Ref, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.lookupLocked(idOrName)
	if err != nil {
		return Ref{}, err
	}
	return Ref{ID: st.rec.ID, Name: st.rec.Name}, nil
}

// InspectNetwork inspects a network by id, name or unique id prefix, with
// its attached containers. Errors as Network.
func (m *Manager) InspectNetwork(ctx context.Context, idOrName string) (network.Inspect, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.lookupLocked(idOrName)
	if err != nil {
		return network.Inspect{}, err
	}
	in := network.Inspect{Network: m.wireLocked(st), Containers: map[string]network.EndpointResource{}}
	for _, ep := range m.endpoints {
		if ep.NetworkID != st.rec.ID {
			continue
		}
		es := m.settings(st, ep)
		res := network.EndpointResource{Name: ep.ContainerName, EndpointID: ep.ID, MacAddress: es.MacAddress}
		if ep.IP.IsValid() {
			res.IPv4Address = netip.PrefixFrom(ep.IP, st.rec.Subnet.Bits())
		}
		if ep.IPv6.IsValid() && st.rec.IPv6 != nil {
			res.IPv6Address = netip.PrefixFrom(ep.IPv6, st.rec.IPv6.Subnet.Bits())
		}
		in.Containers[ep.ContainerID] = res
	}
	return in, nil
}

// CreateNetwork creates a bridge network and brings it up (bridge device,
// DNS server, rules). Errors, with dockerd's messages: ErrConflict "network
// with name x already exists"; ErrNotFound `plugin "x" not found` for a
// driver other than bridge; ErrPermissionDenied for a predefined name or an
// overlapping subnet ("invalid pool request: Pool overlaps with other one on
// this address space"); ErrInvalidArgument for IPv6, invalid CIDRs and
// gateways, for a network with neither IPv4 nor IPv6; ErrResourceExhausted
// when the pools are used up. An IPv6 network (EnableIPv6, or the
// com.docker.network.enable_ipv6 option) gets an IPv6 subnet as given or
// from the IPv6 pools; EnableIPv4 false makes it IPv6-only.
func (m *Manager) CreateNetwork(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	ctx = stateCtx(ctx)
	if req.Name == "" {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("network name must not be empty")
	}
	if req.Driver == "" {
		req.Driver = "bridge"
	}
	switch req.Driver {
	case "bridge":
	case "host", "null":
		return network.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("only one instance of %q network is allowed", req.Driver))
	default:
		return network.CreateResponse{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", req.Driver))
	}
	req.Options = maps.Clone(req.Options)
	enable4, err := enableFamily(req.EnableIPv4, req.Options, optEnableIPv4, true)
	if err != nil {
		return network.CreateResponse{}, err
	}
	enable6, err := enableFamily(req.EnableIPv6, req.Options, optEnableIPv6, false)
	if err != nil {
		return network.CreateResponse{}, err
	}
	if !enable4 && !enable6 {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("IPv4 or IPv6 must be enabled")
	}
	if req.Scope != "" && req.Scope != "local" {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("scope %q is not supported: berth networks are local", req.Scope))
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress {
		return network.CreateResponse{}, errdefs.ErrNotImplemented.WithMessage("config-only, config-from and ingress networks are not supported by berth")
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.hostLocked(ctx); err != nil {
		return network.CreateResponse{}, err
	}
	switch req.Name {
	case "bridge", "host", "none", "default":
		return network.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be created", req.Name))
	}
	for _, st := range m.networks {
		if st.rec.Name == req.Name {
			return network.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", req.Name))
		}
	}
	rec := netRecord{
		ID: newID(), Name: req.Name, Created: time.Now().UTC(), Driver: "bridge",
		Internal: req.Internal, Attachable: req.Attachable,
		Labels: nonNil(req.Labels), Options: nonNil(req.Options),
	}
	if _, err := parseBridgeOptions(rec.Options); err != nil {
		return network.CreateResponse{}, err
	}
	rec.Bridge = rec.Options[bridgeNameOption]
	if rec.Bridge == "" {
		rec.Bridge = "br-" + rec.ID[:12]
	} else if len(rec.Bridge) > 15 || strings.ContainsAny(rec.Bridge, "/ \t") {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid bridge name %q", rec.Bridge))
	}
	for _, st := range m.networks {
		if st.rec.Driver == "bridge" && st.rec.Bridge == rec.Bridge {
			return network.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("bridge name %s is used by network %s", rec.Bridge, st.rec.Name))
		}
	}
	rec.NoIPv4 = !enable4
	if err := m.ipamConfigLocked(&rec, req.IPAM, enable6); err != nil {
		return network.CreateResponse{}, err
	}
	if err := m.addState(&rec); err != nil {
		return network.CreateResponse{}, err
	}
	st := m.networks[rec.ID]
	if err := m.upLocked(st); err != nil {
		_ = m.downLocked(st)
		delete(m.networks, rec.ID)
		return network.CreateResponse{}, err
	}
	if err := m.applyLocked(ctx); err != nil {
		_ = m.downLocked(st)
		delete(m.networks, rec.ID)
		_ = m.applyLocked(ctx)
		return network.CreateResponse{}, err
	}
	if err := m.nets.Put(rec.ID, &rec); err != nil {
		_ = m.downLocked(st)
		delete(m.networks, rec.ID)
		_ = m.applyLocked(ctx)
		return network.CreateResponse{}, err
	}
	m.publish(events.ActionCreate, st, "")
	return network.CreateResponse{ID: rec.ID}, nil
}

// enableFamily reads whether a family is on as dockerd does: the request's
// EnableIPv4/EnableIPv6 when set (the option of the same meaning is then
// dropped, so inspect does not show a contradiction), else the option
// (com.docker.network.enable_ipv4/6), else def.
func enableFamily(req *bool, opts map[string]string, opt string, def bool) (bool, error) {
	if req != nil {
		delete(opts, opt)
		return *req, nil
	}
	v, ok := opts[opt]
	if !ok {
		return def, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("driver-opt %q is not a valid bool", opt))
	}
	return on, nil
}

// ipamConfigLocked fills the subnets, gateways and ranges of rec from the
// request, or picks free subnets from the pools: IPv4 unless rec.NoIPv4,
// IPv6 when enable6. A family that is off ignores its config, as dockerd.
// Nothing is reserved: the caller adds the network to m.networks.
func (m *Manager) ipamConfigLocked(rec *netRecord, cfg *network.IPAM, enable6 bool) error {
	if cfg != nil && cfg.Driver != "" && cfg.Driver != "default" {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", cfg.Driver))
	}
	var c4, c6 *network.IPAMConfig
	if cfg != nil {
		rec.IPAMOptions = maps.Clone(cfg.Options)
		for i := range cfg.Config {
			c := &cfg.Config[i]
			if !c.Subnet.IsValid() && (c.IPRange.IsValid() || c.Gateway.IsValid() || len(c.AuxAddress) > 0) {
				return errdefs.ErrInvalidArgument.WithMessage("invalid network config: a gateway, ip-range or auxiliary address needs a subnet")
			}
			slot, fam := &c4, "IPv4"
			if c.Subnet.Addr().Is6() && !c.Subnet.Addr().Is4In6() {
				slot, fam = &c6, "IPv6"
			}
			if *slot != nil {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("berth networks take one IPAM config per family (one %s subnet)", fam))
			}
			*slot = c
		}
	}
	if !rec.NoIPv4 {
		var c network.IPAMConfig
		if c4 != nil {
			c = *c4
		}
		v4, err := m.familyConfigLocked(c, false)
		if err != nil {
			return err
		}
		rec.Subnet, rec.Gateway, rec.IPRange, rec.UserSubnet, rec.AuxAddresses = v4.Subnet, v4.Gateway, v4.IPRange, v4.UserSubnet, v4.AuxAddresses
	}
	if enable6 {
		var c network.IPAMConfig
		if c6 != nil {
			c = *c6
		}
		v6, err := m.familyConfigLocked(c, true)
		if err != nil {
			return err
		}
		rec.IPv6 = &v6
	}
	return nil
}

// familyConfigLocked checks one family's IPAM config, or picks a free
// subnet of the family's pools when it names none.
func (m *Manager) familyConfigLocked(c network.IPAMConfig, v6 bool) (ipamRecord, error) {
	used := m.usedLocked(v6)
	if !c.Subnet.IsValid() {
		sub, err := ipam.NextSubnet(m.cfg.Pools, append(used, hostRoutes(used, v6)...), v6)
		if err != nil {
			return ipamRecord{}, err
		}
		return ipamRecord{Subnet: sub, Gateway: ipam.FirstHost(sub)}, nil
	}
	if v6 {
		if err := checkSubnet6(c.Subnet); err != nil {
			return ipamRecord{}, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
	} else if !c.Subnet.Addr().Is4() {
		return ipamRecord{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid subnet %s: not an IPv4 or IPv6 subnet", c.Subnet))
	}
	if c.Subnet.Masked() != c.Subnet {
		return ipamRecord{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid subnet %s: it should be %s", c.Subnet, c.Subnet.Masked()))
	}
	for _, u := range used {
		if u.Overlaps(c.Subnet) {
			return ipamRecord{}, ipam.ErrPoolOverlap
		}
	}
	gw := c.Gateway
	if !gw.IsValid() {
		gw = ipam.FirstHost(c.Subnet)
	}
	if !c.Subnet.Contains(gw) {
		return ipamRecord{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid gateway %s: it does not belong to subnet %s", gw, c.Subnet))
	}
	if c.IPRange.IsValid() && (c.IPRange.Masked() != c.IPRange || c.IPRange.Bits() < c.Subnet.Bits() || !c.Subnet.Contains(c.IPRange.Addr())) {
		return ipamRecord{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid ip-range %s: it does not belong to subnet %s", c.IPRange, c.Subnet))
	}
	if _, err := ipam.NewSubnet(c.Subnet, c.IPRange, gw); err != nil {
		return ipamRecord{}, err
	}
	aux, err := auxAddresses(c.Subnet, gw, c.AuxAddress)
	if err != nil {
		return ipamRecord{}, err
	}
	return ipamRecord{Subnet: c.Subnet, Gateway: gw, IPRange: c.IPRange, UserSubnet: true, AuxAddresses: aux}, nil
}

// checkSubnet6 is dockerd's check of an IPv6 bridge subnet: no IPv4-mapped
// or multicast prefix, and none that clashes with the link-local fe80::/64
// that every interface has (fe80::/64 itself is allowed).
func checkSubnet6(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !a.Is6() || a.Is4In6() || a.Zone() != "":
		return fmt.Errorf("'%s' is not a valid IPv6 subnet", p)
	case a.IsMulticast():
		return fmt.Errorf("multicast subnet '%s' is not allowed", p)
	case p.Masked() != linkLocal6 && linkLocal6.Overlaps(p):
		return fmt.Errorf("'%s' clashes with the Link-Local prefix 'fe80::/64'", p)
	}
	return nil
}

// linkLocal6 is the prefix of the link-local addresses Linux gives every
// interface.
var linkLocal6 = netip.MustParsePrefix("fe80::/64")

// auxAddresses checks IPAM's auxiliary addresses as dockerd does: each in
// the subnet (ErrPermissionDenied, dockerd's 403) and none taken twice or
// by the gateway.
func auxAddresses(subnet netip.Prefix, gw netip.Addr, aux map[string]netip.Addr) (map[string]netip.Addr, error) {
	if len(aux) == 0 {
		return nil, nil
	}
	taken := map[netip.Addr]string{gw: "the gateway"}
	for _, k := range slices.Sorted(maps.Keys(aux)) {
		a := aux[k]
		if !a.IsValid() || a.Is4() != subnet.Addr().Is4() || a.Is4In6() {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("non parsable secondary ip address (%s:%s) passed for network", k, a))
		}
		if !subnet.Contains(a) {
			return nil, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("auxiliary address: (%s:%s) must belong to the master pool: %s", k, a, subnet))
		}
		if by, ok := taken[a]; ok {
			return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("failed to allocate secondary ip address (%s:%s): Address already in use by %s", k, a, by))
		}
		taken[a] = k
	}
	return maps.Clone(aux), nil
}

// RemoveNetwork deletes a user network: DNS server, rules and bridge.
// Errors: ErrNotFound; ErrPermissionDenied "x is a pre-defined network and
// cannot be removed"; ErrConflict "error while removing network: network x
// id y has active endpoints" while containers are attached.
func (m *Manager) RemoveNetwork(ctx context.Context, idOrName string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.lookupLocked(idOrName)
	if err != nil {
		return err
	}
	return m.removeLocked(stateCtx(ctx), st)
}

func (m *Manager) removeLocked(ctx context.Context, st *netState) error {
	r := st.rec
	if r.Predefined {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be removed", r.Name))
	}
	if n := m.countLocked(r.ID); n > 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("error while removing network: network %s id %s has active endpoints", r.Name, r.ID))
	}
	if err := m.nets.Delete(r.ID); err != nil {
		return err
	}
	delete(m.networks, r.ID)
	err := m.downLocked(st)
	if aerr := m.applyLocked(ctx); err == nil {
		err = aerr
	}
	m.publish(events.ActionDestroy, st, "")
	return err
}

// PruneNetworks removes user networks without endpoints that match f
// (until, label, label!).
func (m *Manager) PruneNetworks(ctx context.Context, f filters.Args) (network.PruneReport, error) {
	if err := f.Validate("until", "label", "label!"); err != nil {
		return network.PruneReport{}, err
	}
	var until time.Time
	if vs := f.Get("until"); len(vs) > 0 {
		if len(vs) > 1 {
			return network.PruneReport{}, errdefs.ErrInvalidArgument.WithMessage("more than one until filter specified")
		}
		t, err := parseUntil(vs[0], time.Now())
		if err != nil {
			return network.PruneReport{}, err
		}
		until = t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rep := network.PruneReport{NetworksDeleted: []string{}}
	for _, st := range m.sortedLocked() {
		r := st.rec
		if r.Predefined || m.countLocked(r.ID) > 0 {
			continue
		}
		if !until.IsZero() && !r.Created.Before(until) {
			continue
		}
		if !f.MatchKVList("label", r.Labels) || !notLabels(f.Get("label!"), r.Labels) {
			continue
		}
		if err := m.removeLocked(stateCtx(ctx), st); err != nil {
			return rep, err
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, r.Name)
	}
	return rep, nil
}

// notLabels is dockerd's label! filter: none of the given labels (k or k=v)
// may match.
func notLabels(vals []string, labels map[string]string) bool {
	for _, v := range vals {
		k, want, hasVal := strings.Cut(v, "=")
		got, has := labels[k]
		if has && (!hasVal || got == want) {
			return false
		}
	}
	return true
}

// parseUntil reads dockerd's timestamp forms: a Go duration before now, unix
// seconds (with fraction), RFC 3339, or a date.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse value as time or duration: %q", s))
}
