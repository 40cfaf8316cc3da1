package buildkit

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	gorunc "github.com/containerd/go-runc"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// recoverSteps ends what RUN steps of a daemon that died mid-build left:
// their processes (runc keeps them running without BuildKit), the runc
// state and cgroups, the root filesystem and cache mounts, the bundles. BuildKit's own
// state (temporary leases, unfinished snapshots) it cleans itself when the
// worker starts; network namespaces the network manager removed at start.
// It costs a glob when nothing was left.
func recoverSteps(ctx context.Context, root, cgroupParent string) {
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
		removeStepCgroups(cgroupParent, filepath.Base(filepath.Dir(b)))
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
