// Package steps removes what BuildKit's RUN steps leave on the host when
// they are cut short: processes, runc state, cgroups, mounts, bundles. Both
// berth-buildkitd (when it starts, and after a failed step) and berthd (at
// its start, for a helper that was killed) use it, so it links none of
// BuildKit.
package steps

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	gorunc "github.com/containerd/go-runc"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Recover ends what RUN steps of a BuildKit that died mid-build left:
// their processes (runc keeps them running without BuildKit), the runc
// state and cgroups, the root filesystem and cache mounts, the bundles. BuildKit's own
// state (temporary leases, unfinished snapshots) it cleans itself when the
// worker starts; network namespaces the network manager removed at start.
// It costs a glob when nothing was left.
func Recover(ctx context.Context, root, cgroupParent string) {
	bundles, _ := filepath.Glob(filepath.Join(root, "runc-*", "executor", "*", "config.json"))
	r := &gorunc.Runc{}
	for _, b := range bundles {
		dir := filepath.Dir(b)
		id := filepath.Base(dir)
		_ = r.Kill(ctx, id, int(syscall.SIGKILL), &gorunc.KillOpts{All: true})
		if err := r.Delete(ctx, id, &gorunc.DeleteOpts{Force: true}); err != nil && !strings.Contains(err.Error(), "does not exist") {
			logrus.WithError(err).Warnf("buildkit: remove step %s left by the last run", id)
		}
	}
	for _, m := range mountsUnder(root) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			logrus.WithError(err).Warnf("buildkit: unmount %s left by the last run", m)
		}
	}
	for _, b := range bundles {
		RemoveCgroups(cgroupParent, filepath.Base(filepath.Dir(b)))
		_ = os.RemoveAll(filepath.Dir(b))
	}
	if len(bundles) > 0 {
		logrus.Infof("buildkit: removed %d build steps left by the last run", len(bundles))
	}
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// RemoveCgroups removes the step's cgroup in every hierarchy, waiting
// a little for tasks that are still exiting.
func RemoveCgroups(parent, id string) {
	if parent == "" || strings.HasSuffix(parent, ":") {
		return // systemd slices are systemd's to remove
	}
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", parent, "buildkit", id))
	if d := filepath.Join(cgroupRoot, parent, "buildkit", id); isDir(d) {
		dirs = append(dirs, d) // cgroup v2
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range dirs {
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				logrus.WithError(err).Warnf("buildkit: remove cgroup of step %s", id)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
