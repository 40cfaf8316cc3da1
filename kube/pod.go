package kube

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
)

// podOptions maps the pod-wide options: platform, dns, sysctls and
// group_add.
func podOptions(s types.ServiceConfig, pod *corev1.PodSpec) error {
	in := "service " + s.Name + ": "
	if s.Platform != "" {
		parts := strings.Split(s.Platform, "/")
		if len(parts) != 2 {
			return notImplemented(in+"platform "+s.Platform, "nodes are selected by os/arch only")
		}
		pod.NodeSelector = map[string]string{"kubernetes.io/os": parts[0], "kubernetes.io/arch": parts[1]}
	}
	if len(s.DNS) > 0 || len(s.DNSSearch) > 0 || len(s.DNSOpts) > 0 {
		// added to the cluster's DNS (dnsPolicy ClusterFirst): Docker's
		// service names must still resolve
		dc := &corev1.PodDNSConfig{Nameservers: s.DNS, Searches: s.DNSSearch}
		for _, o := range s.DNSOpts {
			name, value, ok := strings.Cut(o, ":")
			opt := corev1.PodDNSConfigOption{Name: name}
			if ok {
				opt.Value = &value
			}
			dc.Options = append(dc.Options, opt)
		}
		pod.DNSConfig = dc
	}
	var sc corev1.PodSecurityContext
	for _, k := range slices.Sorted(maps.Keys(s.Sysctls)) {
		sc.Sysctls = append(sc.Sysctls, corev1.Sysctl{Name: k, Value: s.Sysctls[k]})
	}
	for _, g := range s.GroupAdd {
		gid, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return notImplemented(fmt.Sprintf("%sgroup_add %q", in, g), "a pod's supplemental groups are numeric ids")
		}
		sc.SupplementalGroups = append(sc.SupplementalGroups, gid)
	}
	if len(sc.Sysctls) > 0 || len(sc.SupplementalGroups) > 0 {
		pod.SecurityContext = &sc
	}
	return nil
}

// refuseUnmapped rejects the container options a pod spec has no field
// for, or the backend does not map yet, so that none is dropped silently.
// logging is the exception: logs come from the pods/log API whatever the
// driver (docs/kubernetes.md).
func refuseUnmapped(s types.ServiceConfig) error {
	for _, o := range []struct {
		name string
		set  bool
	}{
		{"ulimits", len(s.Ulimits) > 0},
		{"oom_score_adj", s.OomScoreAdj != 0},
		{"oom_kill_disable", s.OomKillDisable},
		{"cgroup_parent", s.CgroupParent != ""},
		{"cgroup", s.Cgroup != ""},
		{"security_opt", len(s.SecurityOpt) > 0},
		{"storage_opt", len(s.StorageOpt) > 0},
		{"runtime", s.Runtime != ""},
		{"isolation", s.Isolation != ""},
		{"userns_mode", s.UserNSMode != ""},
		{"blkio_config", s.BlkioConfig != nil},
		{"cpuset", s.CPUSet != ""},
		{"cpu_shares", s.CPUShares != 0},
		{"memswap_limit", s.MemSwapLimit != 0},
		{"pids_limit", s.PidsLimit != 0},
		{"post_start and pre_stop", len(s.PostStart) > 0 || len(s.PreStop) > 0},
		{"provider", s.Provider != nil},
		{"models", len(s.Models) > 0},
	} {
		if o.set {
			return notImplemented("service "+s.Name+": "+o.name, "not mapped")
		}
	}
	return nil
}
