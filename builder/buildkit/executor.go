package buildkit

import (
	"context"

	"github.com/berthd/berth/builder/buildkit/steps"
	"github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/identity"
)

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
		steps.RemoveCgroups(parent, id)
	}
	return rec, err
}
