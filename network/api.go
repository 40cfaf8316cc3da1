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

	"github.com/berthd/berth/engine/filters"
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
		EnableIPv4: r.Driver == "bridge", Internal: r.Internal, Attachable: r.Attachable,
		IPAM:    network.IPAM{Driver: "default", Options: maps.Clone(r.IPAMOptions), Config: []network.IPAMConfig{}},
		Options: nonNil(r.Options), Labels: nonNil(r.Labels),
		ConfigFrom: network.ConfigReference{Network: ""},
	}
	if r.Driver == "bridge" {
		c := network.IPAMConfig{Subnet: r.Subnet, Gateway: r.Gateway, AuxAddress: maps.Clone(r.AuxAddresses)}
		if r.IPRange.IsValid() {
			c.IPRange = r.IPRange
		}
		n.IPAM.Config = []network.IPAMConfig{c}
	}
	return n
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// Ref is a network's identity.
type Ref struct {
	ID, Name string
}

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
		in.Containers[ep.ContainerID] = network.EndpointResource{
			Name: ep.ContainerName, EndpointID: ep.ID, MacAddress: es.MacAddress,
			IPv4Address: netip.PrefixFrom(ep.IP, st.rec.Subnet.Bits()),
		}
	}
	return in, nil
}

// CreateNetwork creates a bridge network and brings it up (bridge device,
// DNS server, rules). Errors, with dockerd's messages: ErrConflict "network
// with name x already exists"; ErrNotFound `plugin "x" not found` for a
// driver other than bridge; ErrPermissionDenied for a predefined name or an
// overlapping subnet ("invalid pool request: Pool overlaps with other one on
// this address space"); ErrInvalidArgument for IPv6, invalid CIDRs and
// gateways; ErrResourceExhausted when the pools are used up.
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
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("IPv6 networks are not supported by berth")
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return network.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("IPv4 cannot be disabled: berth networks are IPv4 only")
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
	if err := m.ipamConfigLocked(&rec, req.IPAM); err != nil {
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

// ipamConfigLocked fills the subnet, gateway and range of rec from the
// request, or picks a free subnet from the pools.
func (m *Manager) ipamConfigLocked(rec *netRecord, cfg *network.IPAM) error {
	if cfg != nil && cfg.Driver != "" && cfg.Driver != "default" {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", cfg.Driver))
	}
	var used []netip.Prefix
	for _, st := range m.networks {
		if st.rec.Driver == "bridge" {
			used = append(used, st.rec.Subnet)
		}
	}
	var c network.IPAMConfig
	if cfg != nil {
		rec.IPAMOptions = maps.Clone(cfg.Options)
		switch len(cfg.Config) {
		case 0:
		case 1:
			c = cfg.Config[0]
		default:
			return errdefs.ErrInvalidArgument.WithMessage("berth networks take one IPAM config (one IPv4 subnet)")
		}
	}
	if !c.Subnet.IsValid() {
		if c.IPRange.IsValid() || c.Gateway.IsValid() || len(c.AuxAddress) > 0 {
			return errdefs.ErrInvalidArgument.WithMessage("invalid network config: a gateway, ip-range or auxiliary address needs a subnet")
		}
		sub, err := ipam.NextSubnet(m.cfg.Pools, append(used, hostRoutes(used)...))
		if err != nil {
			return err
		}
		rec.Subnet, rec.Gateway = sub, ipam.FirstHost(sub)
		return nil
	}
	if !c.Subnet.Addr().Is4() {
		return errdefs.ErrInvalidArgument.WithMessage("IPv6 networks are not supported by berth")
	}
	if c.Subnet.Masked() != c.Subnet {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid subnet %s: it should be %s", c.Subnet, c.Subnet.Masked()))
	}
	for _, u := range used {
		if u.Overlaps(c.Subnet) {
			return ipam.ErrPoolOverlap
		}
	}
	gw := c.Gateway
	if !gw.IsValid() {
		gw = ipam.FirstHost(c.Subnet)
	}
	if !c.Subnet.Contains(gw) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid gateway %s: it does not belong to subnet %s", gw, c.Subnet))
	}
	if c.IPRange.IsValid() && (c.IPRange.Masked() != c.IPRange || c.IPRange.Bits() < c.Subnet.Bits() || !c.Subnet.Contains(c.IPRange.Addr())) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid ip-range %s: it does not belong to subnet %s", c.IPRange, c.Subnet))
	}
	if _, err := ipam.NewSubnet(c.Subnet, c.IPRange, gw); err != nil {
		return err
	}
	aux, err := auxAddresses(c.Subnet, gw, c.AuxAddress)
	if err != nil {
		return err
	}
	rec.Subnet, rec.Gateway, rec.IPRange, rec.UserSubnet, rec.AuxAddresses = c.Subnet, gw, c.IPRange, true, aux
	return nil
}

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
		if !a.IsValid() || !a.Is4() {
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
