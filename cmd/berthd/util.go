package main

import (
	"context"
	"os/exec"
	"time"
)

func execOutput(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return string(out), err
}

// Until the runtime and image subsystems are wired in, nothing is counted.
type noContainers struct{}

func (noContainers) Counts() (int, int, int, int) { return 0, 0, 0, 0 }
