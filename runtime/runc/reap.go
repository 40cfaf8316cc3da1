package runc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"
	gorunc "github.com/containerd/go-runc"
)

// Killing and deleting through the runtime directly is for containers whose
// monitor is gone (it was killed, or berthd found it dead at start): nobody
// else will ever reap them.

// known reports whether the runtime has state for id under its root.
func (rt *Runtime) known(id string) bool {
	root := rt.r.Root
	if root == "" {
		root = "/run/runc"
	}
	// runc keeps state.json there, crun status: the directory is common
	_, err := os.Stat(filepath.Join(root, id))
	return err == nil
}

// Kill sends sig to every process of the container. Errors: ErrNotFound
// when the runtime has no such container, ErrConflict when it has stopped.
func (rt *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	if !rt.known(id) {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("OCI runtime: no container %s", id))
	}
	st, err := rt.r.State(ctx, id)
	if err != nil {
		if !rt.known(id) {
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("OCI runtime: no container %s", id))
		}
		return fmt.Errorf("state of %s: %w", id[:12], err)
	}
	if st.Status == "stopped" {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", id))
	}
	if st.Status == "paused" {
		// a frozen process cannot die until it is thawed
		_ = rt.r.Resume(ctx, id)
	}
	if err := rt.r.Kill(ctx, id, int(sig), &gorunc.KillOpts{All: true}); err != nil {
		return fmt.Errorf("kill %s: %w", id[:12], err)
	}
	return nil
}

// Delete removes the container's runtime state and cgroup, killing what is
// left of it first. Deleting an unknown container is not an error.
func (rt *Runtime) Delete(ctx context.Context, id string) error {
	if !rt.known(id) {
		return nil
	}
	err := rt.r.Delete(ctx, id, &gorunc.DeleteOpts{Force: true})
	if err != nil && rt.known(id) {
		return fmt.Errorf("delete %s: %w", id[:12], err)
	}
	return nil
}
