// Package cgroups finds the host's cgroup hierarchies: the v1 controllers'
// mount points and the unified (v2) one.
package cgroups

import (
	"os"
	"strings"
	"sync"
)

var (
	once        sync.Once
	hierarchies []string
)

// Hierarchies are the mount points of the roots of the host's cgroup and
// cgroup2 hierarchies. They do not move while a process runs, so they are
// read once.
func Hierarchies() []string {
	once.Do(func() {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return
		}
		hierarchies = Parse(string(b))
	})
	return hierarchies
}

// Parse picks the cgroup and cgroup2 mount points (of their hierarchy's
// root) out of a mountinfo table, each once.
func Parse(mountinfo string) []string {
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 || (g[0] != "cgroup" && g[0] != "cgroup2") || f[3] != "/" || seen[f[4]] {
			continue
		}
		seen[f[4]] = true
		out = append(out, f[4])
	}
	return out
}
