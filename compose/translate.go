package compose

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// createRequest translates replica n of a service into the body of
// POST /containers/create, as compose's create path does for `up`
// (network aliases on, no stdin). Lists compose builds from Go maps come out
// sorted here, so a plan is the same every time.
func createRequest(p *types.Project, s types.ServiceConfig, n int, hash string) (container.CreateRequest, error) {
	labels := mergeLabels(s.Labels, s.CustomLabels)
	labels[LabelConfigHash] = hash
	labels[LabelContainerNumber] = strconv.Itoa(n)
	labels[LabelDependsOn] = dependsOnLabel(s.DependsOn)

	hc, err := healthConfig(s.HealthCheck)
	if err != nil {
		return container.CreateRequest{}, err
	}
	exposed, bindings, err := ports(s)
	if err != nil {
		return container.CreateRequest{}, err
	}
	cfg := &container.Config{
		Hostname:        s.Hostname,
		Domainname:      s.DomainName,
		User:            s.User,
		ExposedPorts:    exposed,
		Tty:             s.Tty,
		OpenStdin:       s.StdinOpen,
		AttachStdout:    true,
		AttachStderr:    true,
		Cmd:             s.Command,
		Image:           imageRef(p.Name, s),
		WorkingDir:      s.WorkingDir,
		Entrypoint:      s.Entrypoint,
		NetworkDisabled: s.NetworkMode == "disabled",
		Labels:          labels,
		StopSignal:      s.StopSignal,
		Env:             env(s.Environment),
		Healthcheck:     hc,
	}
	if s.StopGracePeriod != nil {
		secs := int(time.Duration(*s.StopGracePeriod).Seconds())
		cfg.StopTimeout = &secs
	}

	binds, mounts, err := volumes(p, s)
	if err != nil {
		return container.CreateRequest{}, err
	}
	links := links(p, s, n)
	netMode, netCfg, err := networking(p, s, n, links)
	if err != nil {
		return container.CreateRequest{}, err
	}
	var dns []netip.Addr
	for _, d := range s.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return container.CreateRequest{}, invalidf("dns: %v", err)
		}
		dns = append(dns, a)
	}
	host := &container.HostConfig{
		Annotations:    s.Annotations,
		Binds:          binds,
		Mounts:         mounts,
		CapAdd:         capabilities(s.CapAdd),
		CapDrop:        capabilities(s.CapDrop),
		NetworkMode:    netMode,
		Init:           s.Init,
		IpcMode:        container.IpcMode(s.Ipc),
		CgroupnsMode:   container.CgroupnsMode(s.Cgroup),
		ReadonlyRootfs: s.ReadOnly,
		RestartPolicy:  restartPolicy(s),
		ShmSize:        int64(s.ShmSize),
		Sysctls:        s.Sysctls,
		PortBindings:   bindings,
		Resources:      resources(s),
		VolumeDriver:   s.VolumeDriver,
		VolumesFrom:    volumesFrom(s.VolumesFrom),
		DNS:            dns,
		DNSSearch:      s.DNSSearch,
		DNSOptions:     s.DNSOpts,
		ExtraHosts:     sorted(s.ExtraHosts.AsList(":")),
		SecurityOpt:    s.SecurityOpt,
		StorageOpt:     s.StorageOpt,
		UsernsMode:     container.UsernsMode(s.UserNSMode),
		UTSMode:        container.UTSMode(s.Uts),
		Privileged:     s.Privileged,
		PidMode:        container.PidMode(s.Pid),
		Tmpfs:          tmpfs(s.Tmpfs),
		Isolation:      container.Isolation(s.Isolation),
		Runtime:        s.Runtime,
		GroupAdd:       s.GroupAdd,
		Links:          links,
		OomScoreAdj:    int(s.OomScoreAdj),
	}
	if s.Logging != nil {
		host.LogConfig = container.LogConfig{Type: s.Logging.Driver, Config: s.Logging.Options}
	}
	for _, opt := range s.SecurityOpt {
		if opt == "systempaths=unconfined" {
			host.MaskedPaths, host.ReadonlyPaths = []string{}, []string{}
			host.SecurityOpt = slices.DeleteFunc(slices.Clone(s.SecurityOpt), func(o string) bool { return o == opt })
		}
		if k, v, _ := strings.Cut(strings.Replace(opt, ":", "=", 1), "="); k == "seccomp" && v != "unconfined" && v != "builtin" {
			return container.CreateRequest{}, invalidf("security_opt %q: seccomp profile files are not read by berth compose up yet", opt)
		}
	}
	return container.CreateRequest{Config: cfg, HostConfig: host, NetworkingConfig: netCfg}, nil
}

// dependsOnLabel is "svc:condition:restart,..." sorted (compose writes it in
// map order; nobody reads the order).
func dependsOnLabel(deps types.DependsOnConfig) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		d := deps[name]
		parts = append(parts, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	return strings.Join(parts, ",")
}

func env(m types.MappingWithEquals) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if v := m[k]; v != nil {
			out = append(out, k+"="+*v)
		} else {
			out = append(out, k)
		}
	}
	return out
}

func healthConfig(h *types.HealthCheckConfig) (*container.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	hc := &container.HealthConfig{Test: h.Test}
	if h.Disable {
		hc.Test = []string{"NONE"}
	}
	dur := func(d *types.Duration) time.Duration {
		if d == nil {
			return 0
		}
		return time.Duration(*d)
	}
	hc.Interval, hc.Timeout, hc.StartPeriod, hc.StartInterval = dur(h.Interval), dur(h.Timeout), dur(h.StartPeriod), dur(h.StartInterval)
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	if h.StartInterval != nil && h.StartPeriod == nil {
		return nil, invalidf("healthcheck.start_interval requires healthcheck.start_period to be set")
	}
	return hc, nil
}

func ports(s types.ServiceConfig) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, e := range s.Expose {
		p, err := network.ParsePort(e)
		if err != nil {
			return nil, nil, invalidf("expose %q: %v", e, err)
		}
		exposed[p] = struct{}{}
	}
	for _, sp := range s.Ports {
		p, err := network.ParsePort(fmt.Sprintf("%d/%s", sp.Target, cmp.Or(sp.Protocol, "tcp")))
		if err != nil {
			return nil, nil, invalidf("ports: %v", err)
		}
		exposed[p] = struct{}{}
		var ip netip.Addr
		if sp.HostIP != "" {
			if ip, err = netip.ParseAddr(sp.HostIP); err != nil {
				return nil, nil, invalidf("ports: host_ip %q: %v", sp.HostIP, err)
			}
		}
		bindings[p] = append(bindings[p], network.PortBinding{HostIP: ip, HostPort: sp.Published})
	}
	return exposed, bindings, nil
}

func restartPolicy(s types.ServiceConfig) container.RestartPolicy {
	var rp container.RestartPolicy
	if s.Restart != "" {
		name, count, _ := strings.Cut(s.Restart, ":")
		n, _ := strconv.Atoi(count)
		rp = container.RestartPolicy{Name: restartMode(name), MaximumRetryCount: n}
	}
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp = container.RestartPolicy{Name: restartMode(s.Deploy.RestartPolicy.Condition)}
		if m := s.Deploy.RestartPolicy.MaxAttempts; m != nil {
			rp.MaximumRetryCount = int(*m)
		}
	}
	return rp
}

// restartMode maps compose's (and deploy.restart_policy's) words to the engine's.
func restartMode(c string) container.RestartPolicyMode {
	switch c {
	case "none", "no":
		return container.RestartPolicyDisabled
	case "any", "always":
		return container.RestartPolicyAlways
	}
	return container.RestartPolicyMode(c) // on-failure, unless-stopped
}

func resources(s types.ServiceConfig) container.Resources {
	oomKillDisable := s.OomKillDisable
	r := container.Resources{
		CgroupParent:       s.CgroupParent,
		Memory:             int64(s.MemLimit),
		MemorySwap:         int64(s.MemSwapLimit),
		MemoryReservation:  int64(s.MemReservation),
		OomKillDisable:     &oomKillDisable,
		CPUCount:           s.CPUCount,
		CPUPeriod:          s.CPUPeriod,
		CPUQuota:           s.CPUQuota,
		CPURealtimePeriod:  s.CPURTPeriod,
		CPURealtimeRuntime: s.CPURTRuntime,
		CPUShares:          s.CPUShares,
		NanoCPUs:           int64(s.CPUS * 1e9),
		CPUPercent:         int64(s.CPUPercent * 100),
		CpusetCpus:         s.CPUSet,
		DeviceCgroupRules:  s.DeviceCgroupRules,
	}
	if s.MemSwappiness != 0 {
		v := int64(s.MemSwappiness)
		r.MemorySwappiness = &v
	}
	if s.PidsLimit != 0 {
		v := s.PidsLimit
		r.PidsLimit = &v
	}
	if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
		l := s.Deploy.Resources.Limits
		if l.MemoryBytes != 0 {
			r.Memory = int64(l.MemoryBytes)
		}
		if l.NanoCPUs != 0 {
			r.NanoCPUs = int64(l.NanoCPUs * 1e9)
		}
		if l.Pids > 0 {
			v := l.Pids
			r.PidsLimit = &v
		}
	}
	if s.Deploy != nil && s.Deploy.Resources.Reservations != nil && s.Deploy.Resources.Reservations.MemoryBytes != 0 {
		r.MemoryReservation = int64(s.Deploy.Resources.Reservations.MemoryBytes)
	}
	for _, d := range s.Devices {
		r.Devices = append(r.Devices, container.DeviceMapping{PathOnHost: d.Source, PathInContainer: d.Target, CgroupPermissions: d.Permissions})
	}
	for _, name := range slices.Sorted(maps.Keys(s.Ulimits)) {
		u := s.Ulimits[name]
		soft, hard := cmp.Or(u.Soft, u.Single), cmp.Or(u.Hard, u.Single)
		r.Ulimits = append(r.Ulimits, &container.Ulimit{Name: name, Soft: int64(soft), Hard: int64(hard)})
	}
	return r
}

func volumesFrom(v []string) []string {
	var out []string
	for _, x := range v {
		out = append(out, strings.TrimPrefix(x, types.ContainerPrefix))
	}
	return out
}

func tmpfs(list []string) map[string]string {
	if len(list) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, t := range list {
		path, opts, _ := strings.Cut(t, ":")
		m[path] = opts
	}
	return m
}

// volumes are a service's volumes as compose sends them: named volumes and
// plain binds in the short Binds form, the rest as Mounts, by target.
func volumes(p *types.Project, s types.ServiceConfig) ([]string, []mount.Mount, error) {
	var binds []string
	var mounts []mount.Mount
	vols := slices.Clone(s.Volumes)
	slices.SortStableFunc(vols, func(a, b types.ServiceVolumeConfig) int { return cmp.Compare(a.Target, b.Target) })
	for _, v := range vols {
		switch v.Type {
		case types.VolumeTypeVolume:
			if pv, ok := p.Volumes[v.Source]; ok && v.Source != "" {
				if v.Volume == nil || (len(v.Volume.Labels) == 0 && v.Volume.Subpath == "" && !v.Volume.NoCopy) {
					binds = append(binds, bindString(pv.Name, v))
					continue
				}
				v.Source = pv.Name
			}
			m := mount.Mount{Type: mount.TypeVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Volume != nil {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: v.Volume.NoCopy, Subpath: v.Volume.Subpath, Labels: v.Volume.Labels}
			}
			mounts = append(mounts, m)
		case types.VolumeTypeBind:
			src := v.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(p.WorkingDir, src)
			}
			if v.Bind == nil || (v.Bind.CreateHostPath && v.Bind.Propagation == "" && v.Bind.Recursive == "") {
				binds = append(binds, bindString(src, v))
				continue
			}
			m := mount.Mount{Type: mount.TypeBind, Source: src, Target: v.Target, ReadOnly: v.ReadOnly,
				BindOptions: &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation), CreateMountpoint: v.Bind.CreateHostPath}}
			switch v.Bind.Recursive {
			case "disabled":
				m.BindOptions.NonRecursive = true
			case "writable":
				m.BindOptions.ReadOnlyNonRecursive = true
			case "readonly":
				m.BindOptions.ReadOnlyForceRecursive = true
			}
			mounts = append(mounts, m)
		case types.VolumeTypeTmpfs:
			m := mount.Mount{Type: mount.TypeTmpfs, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: os.FileMode(v.Tmpfs.Mode)}
			}
			mounts = append(mounts, m)
		case types.VolumeTypeImage:
			m := mount.Mount{Type: mount.TypeImage, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Image != nil {
				m.ImageOptions = &mount.ImageOptions{Subpath: v.Image.SubPath}
			}
			mounts = append(mounts, m)
		default:
			return nil, nil, invalidf("volume %s: type %q is not supported", v.Target, v.Type)
		}
	}
	return binds, mounts, nil
}

func bindString(src string, v types.ServiceVolumeConfig) string {
	opts := []string{"rw"}
	if v.ReadOnly {
		opts[0] = "ro"
	}
	if v.Bind != nil && v.Bind.SELinux != "" {
		opts = append(opts, v.Bind.SELinux)
	}
	if v.Bind != nil && v.Bind.Propagation != "" {
		opts = append(opts, v.Bind.Propagation)
	}
	return src + ":" + v.Target + ":" + strings.Join(opts, ",")
}

// links are compose's HostConfig.Links: for each replica c of a linked
// service, c:alias, c:<service>-<n> and c:<project>-<service>-<n> (n being
// this container's number, as compose v1 did); external links as given.
func links(p *types.Project, s types.ServiceConfig, n int) []string {
	var out []string
	for _, l := range s.Links {
		svc, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = svc
		}
		target, found := p.Services[svc]
		if !found {
			continue
		}
		for i := 1; i <= target.GetScale(); i++ {
			c := containerName(p.Name, target, i)
			out = append(out, c+":"+alias, c+":"+svc+"-"+strconv.Itoa(n), c+":"+DefaultContainerName(p.Name, svc, n))
		}
	}
	for _, l := range s.ExternalLinks {
		ext, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = ext
		}
		out = append(out, ext+":"+alias)
	}
	return out
}

// networking is the network mode and one endpoint per network: the highest
// priority network (then by name) is primary; every endpoint carries the
// container name, the service name and the configured aliases.
func networking(p *types.Project, s types.ServiceConfig, n int, links []string) (container.NetworkMode, *network.NetworkingConfig, error) {
	if s.NetworkMode != "" {
		return container.NetworkMode(s.NetworkMode), nil, nil
	}
	if len(p.Networks) == 0 {
		return "none", nil, nil
	}
	keys := s.NetworksByPriority()
	if len(keys) == 0 {
		keys = []string{"default"}
	}
	cfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	for i, key := range keys {
		nw, ok := p.Networks[key]
		if !ok {
			return "", nil, invalidf("service %q refers to undefined network %s", s.Name, key)
		}
		ep, err := endpoint(s, s.Networks[key], containerName(p.Name, s, n), links)
		if err != nil {
			return "", nil, fmt.Errorf("network %s: %w", key, err)
		}
		if i == 0 && ep.MacAddress == nil && s.MacAddress != "" {
			if ep.MacAddress, err = mac(s.MacAddress); err != nil {
				return "", nil, err
			}
		}
		cfg.EndpointsConfig[nw.Name] = ep
	}
	return container.NetworkMode(p.Networks[keys[0]].Name), cfg, nil
}

func endpoint(s types.ServiceConfig, c *types.ServiceNetworkConfig, name string, links []string) (*network.EndpointSettings, error) {
	ep := &network.EndpointSettings{Aliases: []string{name, s.Name}, Links: links}
	if c == nil {
		return ep, nil
	}
	ep.Aliases = append(ep.Aliases, c.Aliases...)
	ep.IPAMConfig = &network.EndpointIPAMConfig{}
	var err error
	if c.Ipv4Address != "" {
		if ep.IPAMConfig.IPv4Address, err = netip.ParseAddr(c.Ipv4Address); err != nil {
			return nil, invalidf("ipv4_address: %v", err)
		}
		ep.IPAddress = ep.IPAMConfig.IPv4Address
	}
	if c.Ipv6Address != "" {
		if ep.IPAMConfig.IPv6Address, err = netip.ParseAddr(c.Ipv6Address); err != nil {
			return nil, invalidf("ipv6_address: %v", err)
		}
	}
	for _, l := range c.LinkLocalIPs {
		a, err := netip.ParseAddr(l)
		if err != nil {
			return nil, invalidf("link_local_ips: %v", err)
		}
		ep.IPAMConfig.LinkLocalIPs = append(ep.IPAMConfig.LinkLocalIPs, a)
	}
	if c.MacAddress != "" {
		if ep.MacAddress, err = mac(c.MacAddress); err != nil {
			return nil, err
		}
	}
	ep.DriverOpts = maps.Clone(c.DriverOpts)
	if c.InterfaceName != "" {
		if ep.DriverOpts == nil {
			ep.DriverOpts = map[string]string{}
		}
		ep.DriverOpts["com.docker.network.endpoint.ifname"] = c.InterfaceName
	}
	ep.GwPriority = c.GatewayPriority
	return ep, nil
}

func mac(s string) (network.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return nil, invalidf("mac_address: %v", err)
	}
	return network.HardwareAddr(hw), nil
}

func ipamConfig(c *types.IPAMPool) (network.IPAMConfig, error) {
	var out network.IPAMConfig
	var err error
	if c.Subnet != "" {
		if out.Subnet, err = netip.ParsePrefix(c.Subnet); err != nil {
			return out, invalidf("subnet: %v", err)
		}
	}
	if c.IPRange != "" {
		if out.IPRange, err = netip.ParsePrefix(c.IPRange); err != nil {
			return out, invalidf("ip_range: %v", err)
		}
	}
	if c.Gateway != "" {
		if out.Gateway, err = netip.ParseAddr(c.Gateway); err != nil {
			return out, invalidf("gateway: %v", err)
		}
	}
	for k, v := range c.AuxiliaryAddresses {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return out, invalidf("aux_addresses: %v", err)
		}
		if out.AuxAddress == nil {
			out.AuxAddress = map[string]netip.Addr{}
		}
		out.AuxAddress[k] = a
	}
	return out, nil
}

// capabilities are written as the docker client sends them for API 1.40+:
// upper case, with the CAP_ prefix (ALL stays ALL).
func capabilities(caps []string) []string {
	var out []string
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return s
}
