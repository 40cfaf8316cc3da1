// Package phasetrace is the phase trace of `berthd --debug`: it wraps the
// runtime's dependencies so that every step a container's create, start,
// exit and remove takes in another subsystem logs one line with its
// duration, and with the gap since the container's previous step (the
// runtime's own work in between: mounts, etc files, the spec). The wrappers
// sit outside runtime, so that a daemon without --debug pays nothing for
// them.
package phasetrace

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthd/berth/runtime"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/moby/moby/api/types/network"
	"github.com/sirupsen/logrus"
)

// Wrap returns the runtime's dependencies with every step timed; the three
// share one clock, so a step's gap is measured from the container's
// previous step in any of them.
func Wrap(images runtime.Images, networks runtime.Networks, monitors runtime.Monitors) (runtime.Images, runtime.Networks, runtime.Monitors) {
	pc := newPhaseClock()
	return tracedImages{images, pc}, tracedNetworks{networks, pc}, tracedMonitors{monitors, pc}
}

// phaseClock remembers when each container's last traced step ended.
type phaseClock struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func newPhaseClock() *phaseClock { return &phaseClock{last: map[string]time.Time{}} }

// begin starts timing a step of container id; the returned func logs it.
func (p *phaseClock) begin(id, phase string) func(error) {
	id = short(id) // the monitor knows a container by a shorter id
	start := time.Now()
	return func(err error) {
		end := time.Now()
		p.mu.Lock()
		prev, ok := p.last[id]
		p.last[id] = end
		p.mu.Unlock()
		f := logrus.Fields{"container": short(id), "phase": phase, "ms": ms(end.Sub(start))}
		if ok && start.After(prev) {
			f["gap_ms"] = ms(start.Sub(prev))
		}
		if err != nil {
			f["error"] = err.Error()
		}
		logrus.WithFields(f).Debug("phase")
	}
}

// forget drops a removed container's clock.
func (p *phaseClock) forget(id string) {
	id = short(id)
	p.mu.Lock()
	delete(p.last, id)
	p.mu.Unlock()
}

func ms(d time.Duration) string { return time.Duration(d.Microseconds() * 1000).String() }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// tracedImages times the root filesystem steps.
type tracedImages struct {
	runtime.Images
	p *phaseClock
}

func (t tracedImages) CreateRootfs(ctx context.Context, containerID, imageID string, opts runtime.RootfsOptions) error {
	done := t.p.begin(containerID, "rootfs create")
	err := t.Images.CreateRootfs(ctx, containerID, imageID, opts)
	done(err)
	return err
}

func (t tracedImages) MountRootfs(ctx context.Context, containerID string) (string, error) {
	done := t.p.begin(containerID, "rootfs mount")
	path, err := t.Images.MountRootfs(ctx, containerID)
	done(err)
	return path, err
}

func (t tracedImages) UnmountRootfs(ctx context.Context, containerID string) error {
	done := t.p.begin(containerID, "rootfs unmount")
	err := t.Images.UnmountRootfs(ctx, containerID)
	done(err)
	return err
}

func (t tracedImages) RemoveRootfs(ctx context.Context, containerID string) error {
	return t.remove(containerID, func() error { return t.Images.RemoveRootfs(ctx, containerID) })
}

func (t tracedImages) BeginRemoveRootfs(containerID string) func(context.Context) error {
	remove := t.Images.BeginRemoveRootfs(containerID)
	return func(ctx context.Context) error {
		return t.remove(containerID, func() error { return remove(ctx) })
	}
}

// remove times a root filesystem's removal, the container's last step.
func (t tracedImages) remove(containerID string, f func() error) error {
	done := t.p.begin(containerID, "rootfs remove")
	err := f()
	done(err)
	t.p.forget(containerID)
	return err
}

// tracedNetworks times the network namespace, endpoint and port steps.
type tracedNetworks struct {
	runtime.Networks
	p *phaseClock
}

func (t tracedNetworks) CreateSandbox(ctx context.Context, containerID string) (string, error) {
	done := t.p.begin(containerID, "netns create")
	ns, err := t.Networks.CreateSandbox(ctx, containerID)
	done(err)
	return ns, err
}

func (t tracedNetworks) DeleteSandbox(ctx context.Context, containerID string) error {
	done := t.p.begin(containerID, "netns delete")
	err := t.Networks.DeleteSandbox(ctx, containerID)
	done(err)
	return err
}

func (t tracedNetworks) Attach(ctx context.Context, nsPath string, req runtime.AttachRequest) (*network.EndpointSettings, error) {
	done := t.p.begin(req.ContainerID, "network attach "+req.Network)
	ep, err := t.Networks.Attach(ctx, nsPath, req)
	done(err)
	return ep, err
}

func (t tracedNetworks) Detach(ctx context.Context, containerID, nw string) error {
	done := t.p.begin(containerID, "network detach "+nw)
	err := t.Networks.Detach(ctx, containerID, nw)
	done(err)
	return err
}

func (t tracedNetworks) PublishPorts(ctx context.Context, containerID string, ip netip.Addr, b network.PortMap, all bool, exposed network.PortSet) (network.PortMap, error) {
	done := t.p.begin(containerID, "ports publish")
	pm, err := t.Networks.PublishPorts(ctx, containerID, ip, b, all, exposed)
	done(err)
	return pm, err
}

func (t tracedNetworks) UnpublishPorts(ctx context.Context, containerID string) error {
	done := t.p.begin(containerID, "ports unpublish")
	err := t.Networks.UnpublishPorts(ctx, containerID)
	done(err)
	return err
}

func (t tracedNetworks) Restore(ctx context.Context, req runtime.RestoreRequest) error {
	done := t.p.begin(req.ContainerID, "network restore")
	err := t.Networks.Restore(ctx, req)
	done(err)
	return err
}

// tracedMonitors times the monitor's launch (shim start and the OCI
// runtime's create), and wraps its task.
type tracedMonitors struct {
	runtime.Monitors
	p *phaseClock
}

func (t tracedMonitors) Launch(ctx context.Context, cfg runtime.MonitorConfig) (runtime.Task, error) {
	return t.p.launch(cfg.ID, func() (runtime.Task, error) { return t.Monitors.Launch(ctx, cfg) })
}

// launch times a monitor's launch and wraps its task.
func (p *phaseClock) launch(id string, launch func() (runtime.Task, error)) (runtime.Task, error) {
	done := p.begin(id, "monitor launch + runtime create")
	task, err := launch()
	done(err)
	if err != nil {
		return nil, err
	}
	return &tracedTask{Task: task, id: id, p: p}, nil
}

// Prepare times the spawn of the monitor's process; its Launch is then
// the phase Launch times (what is left of the monitor's start, and the OCI
// runtime's create).
func (t tracedMonitors) Prepare(ctx context.Context, stateDir string, log logdriver.Config) (runtime.MonitorPending, error) {
	done := t.p.begin(filepath.Base(stateDir), "monitor spawn")
	mp, err := t.Monitors.Prepare(ctx, stateDir, log)
	done(err)
	if err != nil {
		return nil, err
	}
	return tracedPending{MonitorPending: mp, p: t.p}, nil
}

type tracedPending struct {
	runtime.MonitorPending
	p *phaseClock
}

func (t tracedPending) Launch(ctx context.Context, cfg runtime.MonitorConfig) (runtime.Task, error) {
	return t.p.launch(cfg.ID, func() (runtime.Task, error) { return t.MonitorPending.Launch(ctx, cfg) })
}

func (t tracedMonitors) Connect(ctx context.Context, stateDir string) (runtime.Task, error) {
	id := filepath.Base(stateDir)
	done := t.p.begin(id, "monitor reconnect")
	task, err := t.Monitors.Connect(ctx, stateDir)
	done(err)
	if err != nil {
		return nil, err
	}
	return &tracedTask{Task: task, id: id, p: t.p}, nil
}

// tracedTask times the runtime's start, the wait for the exit and execs.
type tracedTask struct {
	runtime.Task
	id string
	p  *phaseClock
}

func (t *tracedTask) Start(ctx context.Context) error {
	done := t.p.begin(t.id, "runtime start")
	err := t.Task.Start(ctx)
	done(err)
	return err
}

func (t *tracedTask) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	done := t.p.begin(t.id, "wait for exit")
	st, err := t.Task.Wait(ctx)
	done(err)
	return st, err
}

func (t *tracedTask) Exec(ctx context.Context, cfg runtime.ExecConfig) (runtime.ExecTask, error) {
	done := t.p.begin(t.id, "exec launch")
	et, err := t.Task.Exec(ctx, cfg)
	done(err)
	return et, err
}

func (t *tracedTask) Close() error {
	done := t.p.begin(t.id, "monitor close")
	err := t.Task.Close()
	done(err)
	return err
}
