package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/berthd/berth/runtime/shim/proto"
)

// ociProcess is a runtime-spec Process, as much of it as runc 1.1 applies
// to an exec.
type ociProcess struct {
	Terminal    bool `json:"terminal"`
	ConsoleSize *struct {
		Height uint `json:"height"`
		Width  uint `json:"width"`
	} `json:"consoleSize"`
	User struct {
		UID            uint32   `json:"uid"`
		GID            uint32   `json:"gid"`
		Umask          *uint32  `json:"umask"`
		AdditionalGids []uint32 `json:"additionalGids"`
		Username       string   `json:"username"`
	} `json:"user"`
	Args            []string    `json:"args"`
	CommandLine     string      `json:"commandLine"`
	Env             []string    `json:"env"`
	Cwd             string      `json:"cwd"`
	Capabilities    *ociCaps    `json:"capabilities"`
	Rlimits         []ociRlimit `json:"rlimits"`
	NoNewPrivileges bool        `json:"noNewPrivileges"`
	ApparmorProfile string      `json:"apparmorProfile"`
	OOMScoreAdj     *int        `json:"oomScoreAdj"`
	SelinuxLabel    string      `json:"selinuxLabel"`
}

var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

var rlimitNums = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
	"RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
	"RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
	"RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

// helperConfig turns an exec's Process into berth-nsexec's config: records
// "<tag><value>\0" (see read_config in cmd/berth-nsexec/nsexec.c).
func (fe *fastExec) helperConfig(id string, raw []byte, terminal bool) ([]byte, error) {
	// A field the fast path does not know (scheduler, ioPriority, ...)
	// sends the exec through runc.
	var p ociProcess
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, specFallback("process: %v", err)
	}
	switch {
	case p.CommandLine != "" || p.User.Username != "":
		return nil, specFallback("windows fields")
	case p.ApparmorProfile != "" || p.SelinuxLabel != "":
		return nil, specFallback("security labels")
	case p.User.Umask != nil:
		return nil, specFallback("umask")
	case len(p.Args) == 0 || !strings.HasPrefix(p.Cwd, "/"):
		return nil, specFallback("args or cwd") // runc refuses them in its words
	case p.OOMScoreAdj != nil && (fe.oomAdj == nil || *p.OOMScoreAdj != *fe.oomAdj):
		// runc 1.1 gives an exec the container's score, whatever it asks.
		return nil, specFallback("oomScoreAdj differs from the container's")
	case p.User.UID > math.MaxInt32 || p.User.GID > math.MaxInt32:
		return nil, specFallback("uid or gid out of range")
	case terminal != p.Terminal:
		return nil, specFallback("terminal")
	}
	var b bytes.Buffer
	rec := func(tag byte, v string) error {
		if strings.IndexByte(v, 0) >= 0 {
			return specFallback("NUL in the process")
		}
		b.WriteByte(tag)
		b.WriteString(v)
		b.WriteByte(0)
		return nil
	}
	for _, a := range p.Args {
		if err := rec('a', a); err != nil {
			return nil, err
		}
	}
	env, err := processEnv(p.Env)
	if err != nil {
		return nil, err
	}
	for _, e := range env {
		rec('e', e)
	}
	if err := rec('c', p.Cwd); err != nil {
		return nil, err
	}
	rec('u', strconv.FormatUint(uint64(p.User.UID), 10))
	rec('g', strconv.FormatUint(uint64(p.User.GID), 10))
	for _, g := range p.User.AdditionalGids {
		if g > math.MaxInt32 {
			return nil, specFallback("gid out of range")
		}
		rec('G', strconv.FormatUint(uint64(g), 10))
	}
	caps := p.Capabilities
	if caps == nil {
		caps = fe.caps
	}
	if caps != nil {
		for _, set := range []struct {
			tag   byte
			names []string
		}{{'B', caps.Bounding}, {'E', caps.Effective}, {'P', caps.Permitted}, {'I', caps.Inheritable}, {'A', caps.Ambient}} {
			for _, name := range set.names {
				// Unknown names are ignored, as runc does (with a warning).
				if n := capNumber(name); n >= 0 && n <= fe.lastCap {
					rec(set.tag, strconv.Itoa(n))
				}
			}
		}
	}
	// Only the exec's own rlimits: runc 1.1 does not keep the container's.
	for _, rl := range p.Rlimits {
		n, ok := rlimitNums[rl.Type]
		if !ok {
			return nil, specFallback("rlimit %q", rl.Type)
		}
		rec('r', fmt.Sprintf("%d %d %d", n, rl.Soft, rl.Hard))
	}
	if p.NoNewPrivileges {
		rec('n', "1")
	}
	if fe.oomAdj != nil {
		rec('o', strconv.Itoa(*fe.oomAdj))
	}
	if err := rec('k', "_ses."+id); err != nil {
		return nil, err
	}
	if fe.filter != "" {
		rec('f', fe.filter)
	}
	for _, cg := range fe.cgroups {
		if err := rec('x', cg); err != nil {
			return nil, err
		}
	}
	if fe.cgroup2 != "" {
		if err := rec('y', fe.cgroup2); err != nil {
			return nil, err
		}
	}
	if fe.nsFlags != 0 {
		rec('s', strconv.FormatUint(fe.nsFlags, 10))
	}
	if terminal {
		rec('t', "1")
		if p.ConsoleSize != nil && p.ConsoleSize.Height > 0 && p.ConsoleSize.Width > 0 {
			if p.ConsoleSize.Height > math.MaxUint16 || p.ConsoleSize.Width > math.MaxUint16 {
				return nil, specFallback("console size")
			}
			rec('h', strconv.FormatUint(uint64(p.ConsoleSize.Height), 10))
			rec('w', strconv.FormatUint(uint64(p.ConsoleSize.Width), 10))
		}
	}
	return b.Bytes(), nil
}

func capNumber(name string) int {
	for i, n := range capNames {
		if n == name {
			return i
		}
	}
	return -1
}

// processEnv is the environment runc's init builds from the process's:
// each variable set in turn (first position, last value), an invalid
// entry refused (by runc, in its words).
func processEnv(env []string) ([]string, error) {
	out := make([]string, 0, len(env))
	index := make(map[string]int, len(env))
	for _, e := range env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.IndexByte(e, 0) >= 0 {
			return nil, specFallback("environment variable %q", e)
		}
		if i, dup := index[k]; dup {
			out[i] = e
			continue
		}
		index[k] = len(out)
		out = append(out, e)
	}
	return out, nil
}

// Status records from berth-nsexec (enum in cmd/berth-nsexec/nsexec.h).
const (
	msgPid      = 1
	msgSetup    = 2
	msgNotFound = 3
	msgDot      = 4
	msgStat     = 5
	msgPerm     = 6
	msgEaccess  = 7
)

// The OCI runtime's words for a process it could not start.
const startFailed = "exec failed: unable to start container process: "

func startError(typ, errno int, name string) error {
	q := "exec: " + strconv.Quote(name) + ": "
	switch typ {
	case msgNotFound:
		return &procError{startFailed + q + "executable file not found in $PATH"}
	case msgDot:
		return &procError{startFailed + q + "cannot run executable found relative to current directory"}
	case msgStat:
		return &procError{startFailed + q + "stat " + name + ": " + syscall.Errno(errno).Error()}
	case msgPerm:
		return &procError{startFailed + q + "permission denied"}
	case msgEaccess:
		return &procError{startFailed + "eaccess " + name + ": " + syscall.Errno(errno).Error()}
	}
	return fallback("berth-nsexec: record %d", typ)
}

// helperFds are the fds berth-nsexec expects (see cmd/berth-nsexec/nsexec.h).
const (
	fdConfig = iota + 3
	fdStatus
	fdPidfd
	fdConsole
	fdSelf
)

// nsexec starts the exec through berth-nsexec. An error wrapping
// errFallback means nothing of the process ran: use runc.
func (s *shim) nsexec(fe *fastExec, req *proto.Request, conf []byte, eio *execIO, stdio []uintptr) (int, <-chan syscall.WaitStatus, error) {
	self, err := sealedCopy(fe.helper)
	if err != nil {
		return 0, nil, fallback("%v", err)
	}
	defer self.Close()
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	closers = append(closers, cfgR, cfgW)
	stR, stW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	closers = append(closers, stR, stW)
	console := s.devNull
	var consoleParent *os.File
	if req.Terminal {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, nil, err
		}
		consoleParent, console = os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console")
		closers = append(closers, consoleParent, console)
	}
	files := []uintptr{stdio[0], stdio[1], stdio[2], cfgR.Fd(), stW.Fd(), fe.pidfd.Fd(), console.Fd(), self.Fd()}
	_, helperWait, err := s.reaper.startFile("/proc/self/fd/"+strconv.Itoa(fdSelf), []string{NsexecBinary, "exec"}, files)
	if err != nil {
		return 0, nil, fallback("start %s: %v", NsexecBinary, err)
	}
	cfgR.Close()
	stW.Close()
	if console != s.devNull {
		console.Close()
	}
	self.Close()
	_, werr := cfgW.Write(conf)
	cfgW.Close()
	recs, rerr := readStatus(stR)
	ws := <-helperWait

	pid := 0
	var setupErr, procErr error
	for _, r := range recs {
		switch r.typ {
		case msgPid:
			pid = r.val
		case msgSetup:
			setupErr = fallback("%s: %s: %v", NsexecBinary, r.data, syscall.Errno(r.val))
		default:
			procErr = startError(r.typ, r.val, r.data)
		}
	}
	if pid <= 0 {
		if setupErr == nil {
			setupErr = fallback("%s: no pid (%s; config %v; status %v)", NsexecBinary, describe(ws), werr, rerr)
		}
		return 0, nil, setupErr
	}
	wait := s.reaper.claim(pid)
	switch {
	case setupErr != nil:
		<-wait
		return 0, nil, setupErr
	case procErr != nil:
		<-wait
		return 0, nil, procErr
	case rerr != nil || !ws.Exited() || ws.ExitStatus() != 0:
		// Cannot tell whether the process runs its program: stop it.
		syscall.Kill(pid, syscall.SIGKILL)
		<-wait
		return 0, nil, fmt.Errorf("%s: %s, status %v", NsexecBinary, describe(ws), rerr)
	}
	if req.Terminal {
		master, err := recvMaster(consoleParent)
		if err != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			<-wait
			return 0, nil, err
		}
		if req.Height > 0 && req.Width > 0 {
			resizePty(master, req.Height, req.Width)
		}
		eio.outs = []*output{{f: master, typ: proto.FrameStdout, done: make(chan struct{})}}
		if req.Stdin {
			eio.stdin = master
		}
	}
	return pid, wait, nil
}

type statusRec struct {
	typ, val int
	data     string
}

// readStatus reads berth-nsexec's records until the pipe's end: the helper
// has exited and the process has either exec'd or exited.
func readStatus(r io.Reader) ([]statusRec, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	var recs []statusRec
	for len(b) >= 12 {
		typ := int(int32(binary.NativeEndian.Uint32(b[0:])))
		val := int(int32(binary.NativeEndian.Uint32(b[4:])))
		n := int(int32(binary.NativeEndian.Uint32(b[8:])))
		if n < 0 || len(b) < 12+n {
			return recs, errors.New("truncated status record")
		}
		recs = append(recs, statusRec{typ, val, string(b[12 : 12+n])})
		b = b[12+n:]
	}
	if err == nil && len(b) > 0 {
		err = errors.New("truncated status record")
	}
	return recs, err
}

// recvMaster receives the pty master berth-nsexec sent before the process
// exec'd (so it is there by now).
func recvMaster(sock *os.File) (*os.File, error) {
	c, err := net.FileConn(sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, errors.New("console: not a unix socket")
	}
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	return recvFd(uc)
}

// sealedCopy copies the helper into a sealed memfd, which the exec runs
// from: the process's /proc/self/exe, until it execs its program, is then
// a copy nobody can write, not the binary on the host (CVE-2019-5736).
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	name := []byte(NsexecBinary + "\x00")
	const (
		mfdCloexec      = 0x1
		mfdAllowSealing = 0x2
		mfdExec         = 0x10 // Linux 6.3+: executable even under vm.memfd_noexec=1
		fAddSeals       = 1033
		allSeals        = 0x1 | 0x2 | 0x4 | 0x8 // SEAL, SHRINK, GROW, WRITE
	)
	fd, _, errno := syscall.Syscall(sysMemfdCreate, uintptr(unsafe.Pointer(&name[0])), mfdCloexec|mfdAllowSealing|mfdExec, 0)
	if errno == syscall.EINVAL { // before Linux 6.3
		fd, _, errno = syscall.Syscall(sysMemfdCreate, uintptr(unsafe.Pointer(&name[0])), mfdCloexec|mfdAllowSealing, 0)
	}
	if errno != 0 {
		return nil, fmt.Errorf("memfd_create: %w", errno)
	}
	mf := os.NewFile(fd, NsexecBinary)
	for off, size := int64(0), fi.Size(); off < size; {
		n, err := syscall.Sendfile(int(fd), int(src.Fd()), nil, int(size-off))
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			mf.Close()
			return nil, fmt.Errorf("copy %s: %v", path, err)
		}
		off += int64(n)
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, fAddSeals, allSeals); errno != 0 {
		mf.Close()
		return nil, fmt.Errorf("seal: %w", errno)
	}
	return mf, nil
}
