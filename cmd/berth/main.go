// Command berth is a small client for berthd's own endpoints. Today that is
// the native compose path, which deploys a compose file server-side with the
// same names, labels and config hashes as docker compose, so either tool can
// manage the result:
//
//	berth [-H unix:///run/berth/docker.sock] compose up   [-f FILE]... [-p NAME] [--profile P]... [--project-directory DIR] [--wait] [--timeout SECONDS]
//	berth [-H ...]                           compose ps   [-f FILE]... [-p NAME]
//	berth [-H ...]                           compose down [-f FILE]... [-p NAME] [-v] [-t SECONDS]
//
// The daemon reads the compose files (they are on its host) and interpolates
// them with this command's environment, which the request carries.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

const usage = `usage: berth [-H HOST] compose up|ps|down [options]`

func run(ctx context.Context, args []string, out io.Writer) error {
	host := os.Getenv("BERTH_HOST")
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	for len(args) > 0 && (args[0] == "-H" || args[0] == "--host") {
		if len(args) < 2 {
			return fmt.Errorf("%s needs a value\n%s", args[0], usage)
		}
		host, args = args[1], args[2:]
	}
	if len(args) < 2 || args[0] != "compose" {
		return fmt.Errorf("%s", usage)
	}
	c, err := newClient(host)
	if err != nil {
		return err
	}
	switch args[1] {
	case "up":
		return composeUp(ctx, c, args[2:], out)
	case "ps":
		return composePs(ctx, c, args[2:], out)
	case "down":
		return composeDown(ctx, c, args[2:], out)
	}
	return fmt.Errorf("unknown command %q\n%s", "compose "+args[1], usage)
}
