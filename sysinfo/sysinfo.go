// Package sysinfo answers /info and /version: facts about the host, the
// daemon's configuration and the figures of its subsystems.
package sysinfo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// Version is berth's release.
const Version = "0.1.0"

// ContainerCounter reports how many containers are in which state.
type ContainerCounter interface {
	Counts() (total, running, paused, stopped int)
}

// ImageCounter reports how many images the store holds.
type ImageCounter interface {
	CountImages(ctx context.Context) (int, error)
}

// ListenerCounter reports the number of event subscribers.
type ListenerCounter interface {
	Subscribers() int
}

// Deps is everything the info service reads from.
type Deps struct {
	DataRoot           string
	APIVersion         string
	MinAPIVersion      string
	InsecureRegistries []string
	RegistryMirrors    []string
	RuntimeName        string // "runc"
	RuntimePath        string
	RuntimeVersion     string
	// LogDrivers are the logging drivers containers may use.
	LogDrivers []string
	// Live is what a configuration reload (SIGHUP) may change. Optional:
	// defaults to json-file, no debug, RuntimeName alone.
	Live       Live
	InitBinary string
	Containers ContainerCounter
	Images     ImageCounter
	Events     ListenerCounter
}

// Live is the part of the daemon's configuration a reload may change.
type Live interface {
	LoggingDriver() string
	Debug() bool
	// Runtimes are the OCI runtimes by name, and the default one's name.
	Runtimes() (map[string]system.RuntimeWithStatus, string)
	RegistryMirrors() []string
}

type staticLive struct{ d *Deps }

func (s staticLive) LoggingDriver() string     { return "json-file" }
func (s staticLive) RegistryMirrors() []string { return s.d.RegistryMirrors }
func (s staticLive) Debug() bool               { return false }
func (s staticLive) Runtimes() (map[string]system.RuntimeWithStatus, string) {
	return map[string]system.RuntimeWithStatus{s.d.RuntimeName: {Runtime: system.Runtime{Path: s.d.RuntimePath}}}, s.d.RuntimeName
}

// Service implements the system router's InfoBackend.
type Service struct {
	d      Deps
	id     string
	kernel string
	osName string
	mem    int64
	cgver  string
}

// New reads the host facts once and loads (or creates) the daemon's ID.
func New(d Deps) (*Service, error) {
	if d.Containers == nil || d.Images == nil || d.Events == nil {
		return nil, fmt.Errorf("sysinfo: Containers, Images and Events are required")
	}
	if d.Live == nil {
		d.Live = staticLive{&d}
	}
	if len(d.LogDrivers) == 0 {
		d.LogDrivers = []string{"json-file"}
	}
	id, err := engineID(filepath.Join(d.DataRoot, "engine-id"))
	if err != nil {
		return nil, err
	}
	s := &Service{d: d, id: id, kernel: kernelVersion(), osName: osName(), mem: memTotal(), cgver: "1"}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		s.cgver = "2"
	}
	return s, nil
}

// Version answers GET /version.
func (s *Service) Version(ctx context.Context) system.VersionResponse {
	details := map[string]string{
		"ApiVersion":    s.d.APIVersion,
		"MinAPIVersion": s.d.MinAPIVersion,
		"Os":            runtime.GOOS,
		"Arch":          runtime.GOARCH,
		"GoVersion":     runtime.Version(),
		"KernelVersion": s.kernel,
		"GitCommit":     "",
		"Experimental":  "false",
	}
	comps := []system.ComponentVersion{{Name: "Engine", Version: Version, Details: details}}
	if s.d.RuntimeVersion != "" {
		comps = append(comps, system.ComponentVersion{Name: s.d.RuntimeName, Version: s.d.RuntimeVersion})
	}
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth " + Version},
		Version:       Version,
		APIVersion:    s.d.APIVersion,
		MinAPIVersion: s.d.MinAPIVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		Components:    comps,
		GoVersion:     runtime.Version(),
		KernelVersion: s.kernel,
	}
}

// Info answers GET /info with live figures.
func (s *Service) Info(ctx context.Context) (*system.Info, error) {
	total, running, paused, stopped := s.d.Containers.Counts()
	images, err := s.d.Images.CountImages(ctx)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	fds, _ := os.ReadDir("/proc/self/fd")
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	runtimes, defaultRuntime := s.d.Live.Runtimes()
	var warnings []string
	if strings.TrimSpace(string(fwd)) != "1" {
		warnings = append(warnings, "WARNING: IPv4 forwarding is disabled")
	}
	return &system.Info{
		ID:                 s.id,
		Containers:         total,
		ContainersRunning:  running,
		ContainersPaused:   paused,
		ContainersStopped:  stopped,
		Images:             images,
		Driver:             "overlay",
		DriverStatus:       [][2]string{{"Backing Filesystem", backingFS(s.d.DataRoot)}, {"Supports d_type", "true"}},
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "none"}, Log: s.d.LogDrivers},
		MemoryLimit:        true,
		SwapLimit:          fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		IPv4Forwarding:     strings.TrimSpace(string(fwd)) == "1",
		Debug:              s.d.Live.Debug(),
		NFd:                len(fds),
		OomKillDisable:     true,
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      s.d.Live.LoggingDriver(),
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      s.cgver,
		NEventsListener:    s.d.Events.Subscribers(),
		KernelVersion:      s.kernel,
		OperatingSystem:    s.osName,
		OSVersion:          osVersion(),
		OSType:             runtime.GOOS,
		Architecture:       machine(),
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     &registry.ServiceConfig{InsecureRegistryCIDRs: nil, IndexConfigs: indexConfigs(s.d.InsecureRegistries, s.d.Live.RegistryMirrors()), Mirrors: mirrorsOrEmpty(s.d.Live.RegistryMirrors())},
		NCPU:               runtime.NumCPU(),
		MemTotal:           s.mem,
		DockerRootDir:      s.d.DataRoot,
		Name:               host,
		Labels:             []string{},
		ServerVersion:      Version,
		Runtimes:           runtimes,
		DefaultRuntime:     defaultRuntime,
		LiveRestoreEnabled: true,
		Isolation:          "",
		InitBinary:         s.d.InitBinary,
		RuncCommit:         system.Commit{ID: s.d.RuntimeVersion},
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		SecurityOptions:    []string{"name=seccomp,profile=builtin"},
		Warnings:           warnings,
	}, nil
}

func mirrorsOrEmpty(m []string) []string {
	if m == nil {
		return []string{}
	}
	return m
}

func indexConfigs(insecure, mirrors []string) map[string]*registry.IndexInfo {
	out := map[string]*registry.IndexInfo{
		"docker.io": {Name: "docker.io", Mirrors: mirrorsOrEmpty(mirrors), Secure: true, Official: true},
	}
	for _, r := range insecure {
		out[r] = &registry.IndexInfo{Name: r, Mirrors: []string{}, Secure: false}
	}
	return out
}

func engineID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	h := hex.EncodeToString(buf)
	id := fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write engine id: %w", err)
	}
	return id, nil
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func machine() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func osRelease(key string) string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func osName() string {
	if n := osRelease("PRETTY_NAME"); n != "" {
		return n
	}
	return "Linux"
}

func osVersion() string { return osRelease("VERSION_ID") }

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func backingFS(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	default:
		return fmt.Sprintf("0x%x", st.Type)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
