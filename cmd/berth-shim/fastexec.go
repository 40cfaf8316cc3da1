package main

// The exec fast path. `runc exec` costs 35-40 ms, most of it runc
// compiling the container's seccomp profile again for every exec. The
// shim instead takes, right after `runc create` (while the init waits to
// be started and has run nothing of the container's), what an exec must
// reproduce: the init's namespaces (a pidfd), its cgroups, and the seccomp
// filters the kernel holds for it (berth-nsexec filter). The rest (the
// bundle's spec, the cgroup mounts) is read at the first exec, so that a
// shim that never runs one stays small. Each exec then runs berth-nsexec
// (cmd/berth-nsexec), which does to the new process what runc 1.1's exec
// does.
//
// Whatever this path does not reproduce exactly (user namespaces,
// AppArmor/SELinux labels, seccomp flags or notify actions, Intel RDT, a
// umask, another runtime than runc...) sends the exec through runc, as
// does any failure before the process runs its program. So does
// $BERTH_EXEC_RUNC=1 in the shim's environment (berthd's), and a request's
// RuntimeExec.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ForceRuntimeEnv, set to 1 in the shim's environment, sends every exec
// through the OCI runtime.
const ForceRuntimeEnv = "BERTH_EXEC_RUNC"

// NsexecBinary is the helper's name; it is looked for next to the shim.
const NsexecBinary = "berth-nsexec"

const filterFile = "seccomp.bpf"

// fastExec is what every exec of the container shares.
type fastExec struct {
	helper  string   // berth-nsexec
	pidfd   *os.File // the init, opened while it is our unreaped child
	nsFlags uint64   // CLONE_NEW* of the namespaces to join
	cgroups []string // the init's cgroups: v1 directories
	cgroup2 string   // and its v2 cgroup, if the hierarchy is mounted
	freezer string   // freezer.state (v1) or cgroup.freeze (v2) of its cgroup
	filter  string   // seccomp filter file; "" without seccomp
	oomAdj  *int     // the container's oom_score_adj (runc sets it for execs)
	caps    *ociCaps // the container's, for an exec without its own
	lastCap int
}

// errFallback marks a reason to start the exec with runc instead.
var errFallback = errors.New("use the OCI runtime")

// errSpecFallback: the process asks for what only the runtime does (not
// worth a line in shim.log, unlike a failure of the fast path).
var errSpecFallback = fmt.Errorf("%w: the process needs it", errFallback)

func fallback(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errFallback, fmt.Sprintf(format, a...))
}

func specFallback(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errSpecFallback, fmt.Sprintf(format, a...))
}

// startCapture takes what the fast path needs from the created init
// while it waits to be started; start waits for it (waitCapture). The
// pidfd is never closed: an exec may be using it, and it goes with the
// shim.
func (s *shim) startCapture() {
	s.captured = make(chan struct{})
	go func() {
		defer close(s.captured)
		fc, err := s.capture()
		if err != nil {
			s.noFastPath(err)
			return
		}
		s.fastCap = fc
	}()
}

func (s *shim) waitCapture() {
	if s.captured != nil {
		<-s.captured
	}
}

// fastPath returns the fast path (nil: none), set up at the first call.
func (s *shim) fastPath() *fastExec {
	s.waitCapture()
	s.fastOnce.Do(func() {
		defer s.fastDone.Store(true)
		if s.fastCap == nil {
			return
		}
		if s.fastCap.proven {
			// checked before a sleep: `runc --version` is a process
		} else if why := s.provenRuntime(); why != "" {
			s.noFastPath(errors.New(why)) // once: fastOnce
			return
		}
		fe, err := s.fastCap.finish(s.cfg.Bundle)
		if err != nil {
			s.noFastPath(err)
			return
		}
		s.fast = fe
	})
	return s.fast
}

func (s *shim) noFastPath(err error) {
	os.Stderr.WriteString("berth-shim: execs go through " + s.cfg.RuntimeBinary + ": " + err.Error() + "\n")
}

// ociSpec is the part of the bundle's config.json the fast path reads.
type ociSpec struct {
	Process *struct {
		User struct {
			Umask *uint32 `json:"umask"`
		} `json:"user"`
		Capabilities    *ociCaps `json:"capabilities"`
		ApparmorProfile string   `json:"apparmorProfile"`
		OOMScoreAdj     *int     `json:"oomScoreAdj"`
		SelinuxLabel    string   `json:"selinuxLabel"`
	} `json:"process"`
	Linux *struct {
		UIDMappings []json.RawMessage `json:"uidMappings"`
		GIDMappings []json.RawMessage `json:"gidMappings"`
		Namespaces  []struct {
			Type string `json:"type"`
		} `json:"namespaces"`
		Seccomp *struct {
			Flags        []string `json:"flags"`
			ListenerPath string   `json:"listenerPath"`
			Syscalls     []struct {
				Action string `json:"action"`
			} `json:"syscalls"`
			DefaultAction string `json:"defaultAction"`
		} `json:"seccomp"`
		IntelRdt    json.RawMessage `json:"intelRdt"`
		Personality json.RawMessage `json:"personality"`
		MountLabel  string          `json:"mountLabel"`
	} `json:"linux"`
}

type ociCaps struct {
	Bounding    []string `json:"bounding"`
	Effective   []string `json:"effective"`
	Inheritable []string `json:"inheritable"`
	Permitted   []string `json:"permitted"`
	Ambient     []string `json:"ambient"`
}

type ociRlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

var nsFlags = map[string]uint64{
	"pid":     syscall.CLONE_NEWPID,
	"network": syscall.CLONE_NEWNET,
	"mount":   syscall.CLONE_NEWNS,
	"ipc":     syscall.CLONE_NEWIPC,
	"uts":     syscall.CLONE_NEWUTS,
	"cgroup":  0x02000000, // CLONE_NEWCGROUP
}

// fastCapture is what must be taken from the init before it starts.
type fastCapture struct {
	helper string
	pidfd  *os.File
	cgroup []byte // /proc/<init>/cgroup
	filter string // the filter file (count 0: the init has none)
	proven bool   // the runtime's version was checked (before a sleep)
}

// capture takes it; it must finish before the init is started.
func (s *shim) capture() (*fastCapture, error) {
	if os.Getenv(ForceRuntimeEnv) == "1" {
		return nil, errors.New(ForceRuntimeEnv + "=1")
	}
	// The path reproduces runc 1.1's exec; berthd allows it only for a
	// runtime whose version says so (not its name).
	if !s.cfg.FastExec {
		return nil, errors.New("the fast path is not proven for " + s.cfg.RuntimeBinary)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	fc := &fastCapture{helper: filepath.Join(filepath.Dir(self), NsexecBinary), filter: s.path(filterFile)}
	if fi, err := os.Stat(fc.helper); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("no %s next to the shim", NsexecBinary)
	}
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(s.initPid), 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("pidfd_open: %w", errno)
	}
	syscall.CloseOnExec(int(fd))
	fc.pidfd = os.NewFile(fd, "pidfd")
	if fc.cgroup, err = os.ReadFile("/proc/" + strconv.Itoa(s.initPid) + "/cgroup"); err == nil {
		err = s.dumpFilters(fc.helper, fc.filter)
	}
	if err != nil {
		fc.pidfd.Close()
		return nil, err
	}
	return fc, nil
}

// finish prepares the fast path from the capture at the first exec, or
// says why there is none.
func (fc *fastCapture) finish(bundle string) (*fastExec, error) {
	spec, err := readSpec(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	fe := &fastExec{helper: fc.helper, pidfd: fc.pidfd, filter: fc.filter}
	if err := fe.fromSpec(spec); err != nil {
		return nil, err
	}
	if fe.lastCap, err = readLastCap(); err != nil {
		return nil, err
	}
	cg, err := cgroupDirs(fc.cgroup)
	if err != nil {
		return nil, err
	}
	fe.cgroups, fe.cgroup2, fe.freezer = cg.v1, cg.v2, cg.freezer
	n, err := filterCount(fc.filter)
	if err != nil {
		return nil, err
	}
	if (n > 0) != (spec.Linux.Seccomp != nil) {
		// e.g. filters the shim itself runs under: not ours to reproduce
		return nil, fmt.Errorf("the init has %d seccomp filters, the spec's seccomp is %v", n, spec.Linux.Seccomp != nil)
	}
	if n == 0 {
		fe.filter = ""
	}
	return fe, nil
}

func readSpec(path string) (*ociSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec ociSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, err
	}
	if spec.Process == nil || spec.Linux == nil {
		return nil, errors.New("spec without process or linux")
	}
	return &spec, nil
}

// fromSpec takes the container-wide settings runc applies to execs, and
// refuses what the fast path does not reproduce.
func (fe *fastExec) fromSpec(spec *ociSpec) error {
	p, l := spec.Process, spec.Linux
	switch {
	case p.ApparmorProfile != "" || p.SelinuxLabel != "" || l.MountLabel != "":
		return errors.New("security labels")
	case p.User.Umask != nil:
		return errors.New("umask") // runc 1.2 applies it to execs, 1.1 does not
	case len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0:
		return errors.New("user namespace")
	case isSet(l.IntelRdt):
		return errors.New("intelRdt")
	case isSet(l.Personality):
		return errors.New("personality")
	}
	for _, ns := range l.Namespaces {
		f, ok := nsFlags[ns.Type]
		if !ok {
			return fmt.Errorf("%s namespace", ns.Type)
		}
		fe.nsFlags |= f
	}
	if sc := l.Seccomp; sc != nil {
		if len(sc.Flags) > 0 || sc.ListenerPath != "" || sc.DefaultAction == "SCMP_ACT_NOTIFY" {
			return errors.New("seccomp flags or listener")
		}
		for _, c := range sc.Syscalls {
			if c.Action == "SCMP_ACT_NOTIFY" {
				return errors.New("seccomp notify")
			}
		}
	}
	fe.oomAdj, fe.caps = p.OOMScoreAdj, p.Capabilities
	return nil
}

func isSet(m json.RawMessage) bool {
	return len(m) > 0 && !bytes.Equal(m, []byte("null"))
}

func readLastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("cap_last_cap %q", b)
	}
	return n, nil
}

// initCgroups are the init's cgroups, as /proc/<init>/cgroup had them at
// create (runc puts an exec in the same ones).
type initCgroups struct {
	v1      []string // directories
	v2      string   // directory; "" if the hierarchy is not mounted
	freezer string   // the file that says whether it is frozen
}

func cgroupDirs(b []byte) (initCgroups, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return initCgroups{}, err
	}
	return parseInitCgroups(b, mounts)
}

func parseInitCgroups(b []byte, mounts map[string]string) (initCgroups, error) {
	var cg initCgroups
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return cg, fmt.Errorf("cgroup line %q", line)
		}
		mp, ok := mounts[controllerKey(strings.Split(parts[1], ","))]
		if !ok {
			if parts[1] == "" {
				continue // a cgroup2 hierarchy that is not mounted: nothing to join
			}
			return cg, fmt.Errorf("no mount for cgroup hierarchy %q", parts[1])
		}
		dir := filepath.Join(mp, parts[2])
		switch parts[1] {
		case "":
			cg.v2 = dir
		case "freezer":
			cg.freezer = filepath.Join(dir, "freezer.state")
			fallthrough
		default:
			cg.v1 = append(cg.v1, dir)
		}
	}
	if cg.freezer == "" && cg.v2 != "" {
		cg.freezer = filepath.Join(cg.v2, "cgroup.freeze")
	}
	return cg, nil
}

// frozen says whether the container is paused (or being paused): an exec
// put in its cgroups would hang; runc refuses it.
func (fe *fastExec) frozen() bool {
	if fe.freezer == "" {
		return false
	}
	b, err := os.ReadFile(fe.freezer)
	if err != nil {
		return true // let runc decide
	}
	v := strings.TrimSpace(string(b))
	if strings.HasSuffix(fe.freezer, "freezer.state") {
		return v != "THAWED"
	}
	return v != "0"
}

// cgroupMounts maps the controller list of each cgroup hierarchy, as
// /proc/<pid>/cgroup names it ("cpu,cpuacct", "name=systemd", "" for
// cgroup2), to a mount point of its root.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseCgroupMounts(f)
}

func parseCgroupMounts(r io.Reader) (map[string]string, error) {
	mounts := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 || (sf[0] != "cgroup" && sf[0] != "cgroup2") || pf[3] != "/" {
			continue
		}
		mp := unescapeMount(pf[4])
		if sf[0] == "cgroup2" {
			if _, dup := mounts[""]; !dup {
				mounts[""] = mp
			}
			continue
		}
		var ctrl []string
		for _, o := range strings.Split(sf[2], ",") {
			if knownController(o) || strings.HasPrefix(o, "name=") {
				ctrl = append(ctrl, o)
			}
		}
		if key := controllerKey(ctrl); key != "" {
			if _, dup := mounts[key]; !dup {
				mounts[key] = mp
			}
		}
	}
	return mounts, sc.Err()
}

// controllerKey names a hierarchy by its sorted controllers.
func controllerKey(ctrl []string) string {
	ctrl = slices.Clone(ctrl)
	slices.Sort(ctrl)
	return strings.Join(ctrl, ",")
}

func knownController(o string) bool {
	switch o {
	case "cpuset", "cpu", "cpuacct", "io", "blkio", "memory", "devices", "freezer",
		"net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc":
		return true
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// dumpFilters runs `berth-nsexec filter <init>` into path (it checks its
// count against the kernel's).
func (s *shim) dumpFilters(helper, path string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	null := s.devNull.Fd()
	pid, wait, err := s.reaper.start([]string{helper, "filter", strconv.Itoa(s.initPid)}, []uintptr{null, out.Fd(), 2}, nil)
	if err != nil {
		return err
	}
	// It stops the init for a moment; the container's start waits for it,
	// so it must not hang (its death detaches it from the init).
	t := time.AfterFunc(5*time.Second, func() { s.reaper.signal(pid, syscall.SIGKILL) })
	ws := <-wait
	t.Stop()
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("%s filter: %s", NsexecBinary, describe(ws))
	}
	return nil
}

// filterCount reads the count of a filter file.
func filterCount(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:4]) != "BNSF" {
		return 0, errors.New("bad filter file")
	}
	return int(binary.NativeEndian.Uint32(hdr[4:])), nil
}

const sysPidfdOpen = 434 // same number on every Linux architecture
