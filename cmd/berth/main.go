// Command berth is a small client for berthd's own endpoints: the native
// compose path, which deploys a compose file server-side with the same
// names, labels and config hashes as docker compose (so either tool can
// manage the result), and berth's deployments: durable records of desired
// state that the daemon keeps true.
//
//	berth [-H unix:///run/berth/docker.sock] compose COMMAND [-f FILE]... [-p NAME] [--profile P]... [--project-directory DIR] ...
//
//	up [--wait] [--timeout S] [--remove-orphans]   deploy (without -f and with -p when no compose file is here: from the record)
//	down [-v] [-t S]                               remove the project and its record
//	ls [-q]                                        deployments: status, origin, desired/running, last deploy
//	ps                                             replicas of a project
//	inspect                                        a deployment's record and status (JSON)
//	scale SERVICE=N...                             set and converge replica counts (remembered)
//	pull                                           pull images by pull_policy; says which services drifted
//	logs [-f] [--tail N] [--since T] [-t] [SERVICE...]  merged logs of the replicas
//	exec [-T] [--index N] [-u U] [-w D] [-e K=V] SERVICE CMD...
//	run-job JOB                                    start a job execution; prints its ID
//	jobs [--logs] [JOB]                            executions with state and exit code
//	cancel ID                                      stop a running execution
//
//	berth kube dns-config [--dns-zone Z] [--kube-namespace-prefix P] [--cluster-domain D] [--stanza]
//
// prints the CoreDNS configuration for the berth zone names on the
// Kubernetes backend (kube.go).
//
// The daemon reads the compose files (they are on its host) and interpolates
// them with this command's environment, which the request carries.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		var code exitError
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

const usage = `usage: berth [-H HOST] compose up|down|ls|ps|inspect|scale|pull|logs|exec|run-job|jobs|cancel [options]
       berth kube dns-config [options]`

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
	if len(args) > 0 && args[0] == "kube" {
		return kube(args[1:], out)
	}
	if len(args) < 2 || args[0] != "compose" {
		return fmt.Errorf("%s", usage)
	}
	c, err := newClient(host)
	if err != nil {
		return err
	}
	global, name, rest, err := splitCompose(args[1:])
	if err != nil {
		return err
	}
	cmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("unknown command %q\n%s", "compose "+name, usage)
	}
	return cmd(ctx, c, append(global, rest...), out)
}

// splitCompose separates the project flags given before the command, as
// `docker compose -f FILE -p NAME logs -f` has them, from the command and
// its own arguments. -f before the command is always the file.
func splitCompose(args []string) (global []string, name string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return global, a, args[i+1:], nil
		}
		flagName, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch flagName {
		case "f", "file", "p", "project-name", "project-directory", "profile":
		default:
			return nil, "", nil, fmt.Errorf("unknown flag %s before the command\n%s", a, usage)
		}
		if flagName == "f" {
			flagName = "file"
		}
		global = append(global, "--"+flagName)
		if hasValue {
			_, v, _ := strings.Cut(a, "=")
			global[len(global)-1] += "=" + v
			continue
		}
		if i+1 >= len(args) {
			return nil, "", nil, fmt.Errorf("%s needs a value\n%s", a, usage)
		}
		i++
		global = append(global, args[i])
	}
	return nil, "", nil, fmt.Errorf("%s", usage)
}

var commands = map[string]func(context.Context, *client, []string, io.Writer) error{
	"up": composeUp, "down": composeDown, "ps": composePs, "ls": composeLs, "inspect": composeInspect,
	"scale": composeScale, "pull": composePull, "logs": composeLogs, "exec": composeExec,
	"run-job": composeRunJob, "jobs": composeJobs, "cancel": composeCancel,
}
