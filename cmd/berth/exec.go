package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/berthd/berth/compose"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/term"
)

// exitError carries a command's exit code out of berth.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// composeExec: berth compose exec [-T] [--index N] [-u USER] [-w DIR] [-e K=V]... SERVICE CMD...
// runs a command in a replica through the Engine API's exec, with a TTY
// when berth's own stdin and stdout are one (unless -T), and exits with
// the command's exit code.
func composeExec(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	var noTTY bool
	var index int
	var user, workdir string
	var env listFlag
	rest, err := parseArgs("exec", args, func(fs *flag.FlagSet) {
		pf.register(fs)
		fs.BoolVar(&noTTY, "T", false, "no pseudo-TTY")
		fs.BoolVar(&noTTY, "no-tty", false, "no pseudo-TTY")
		fs.IntVar(&index, "index", 1, "replica number")
		fs.StringVar(&user, "u", "", "user")
		fs.StringVar(&user, "user", "", "user")
		fs.StringVar(&workdir, "w", "", "working directory")
		fs.StringVar(&workdir, "workdir", "", "working directory")
		fs.Var(&env, "e", "environment variable (repeatable)")
		fs.Var(&env, "env", "environment variable (repeatable)")
	})
	if err != nil {
		return err
	}
	if len(rest) < 2 {
		return fmt.Errorf("compose exec: give a service and a command")
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	name, err := replicaName(ctx, c, project, rest[0], index)
	if err != nil {
		return err
	}
	in, outFd := int(os.Stdin.Fd()), int(os.Stdout.Fd())
	tty := !noTTY && term.IsTerminal(in) && term.IsTerminal(outFd)
	req := container.ExecCreateRequest{AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: tty, Cmd: rest[1:], User: user, WorkingDir: workdir, Env: env}
	if tty {
		if w, h, err := term.GetSize(outFd); err == nil {
			req.ConsoleSize = &[2]uint{uint(h), uint(w)}
		}
	}
	var created container.ExecCreateResponse
	if err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(name)+"/exec", nil, req, &created); err != nil {
		return err
	}
	conn, br, err := c.hijack(ctx, "/exec/"+created.ID+"/start", container.ExecStartRequest{Tty: tty, ConsoleSize: req.ConsoleSize})
	if err != nil {
		return err
	}
	defer conn.Close()
	if tty {
		state, err := term.MakeRaw(in)
		if err == nil {
			defer term.Restore(in, state)
		}
	}
	go func() {
		_, _ = io.Copy(conn, os.Stdin)
		if cw, ok := conn.(*net.UnixConn); ok {
			_ = cw.CloseWrite()
		}
	}()
	if tty {
		_, err = io.Copy(out, br)
	} else {
		_, err = stdcopy.StdCopy(out, os.Stderr, br)
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	var ins container.ExecInspectResponse
	if err := c.do(context.WithoutCancel(ctx), http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &ins); err != nil {
		return err
	}
	if ins.ExitCode != nil && *ins.ExitCode != 0 {
		return exitError(*ins.ExitCode)
	}
	return nil
}

// replicaName is the container of replica index of a service.
func replicaName(ctx context.Context, c *client, project, service string, index int) (string, error) {
	var d compose.DeploymentStatus
	if err := c.do(ctx, http.MethodGet, "/berth/compose/deployments/"+url.PathEscape(project), nil, nil, &d); err != nil {
		return "", err
	}
	for _, s := range d.Services {
		if s.Name != service {
			continue
		}
		for _, r := range s.Replicas {
			if r.Number == index {
				return r.Name, nil
			}
		}
		return "", fmt.Errorf("service %q is not running container #%d", service, index)
	}
	return "", fmt.Errorf("no such service: %s", service)
}
