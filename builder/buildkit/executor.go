package buildkit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/identity"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// reapingExecutor runs steps with BuildKit's runc executor and, when a
// step fails or is cancelled, removes the cgroups runc left: a step killed
// while its processes were still exiting leaves empty cgroup directories
// that `runc delete` could not remove yet (seen on loaded hosts, cgroup v1).
type reapingExecutor struct {
	executor.Executor
	cgroupParent string
}

func (e *reapingExecutor) Run(ctx context.Context, id string, root executor.Mount, mounts []executor.Mount, process executor.ProcessInfo, started chan<- struct{}) (resourcestypes.Recorder, error) {
	if id == "" {
		id = identity.NewID() // named here, so its cgroup can be found
	}
	rec, err := e.Executor.Run(ctx, id, root, mounts, process, started)
	if err != nil {
		parent := e.cgroupParent
		if process.Meta.CgroupParent != "" {
			parent = process.Meta.CgroupParent
		}
		removeStepCgroups(parent, id)
	}
	return rec, err
}

// removeStepCgroups removes the step's cgroup in every hierarchy, waiting
// a little for tasks that are still exiting.
func removeStepCgroups(parent, id string) {
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
