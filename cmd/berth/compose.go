package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berthd/berth/compose"
)

// projectFlags are the flags every compose subcommand takes.
type projectFlags struct {
	files    []string
	name     string
	dir      string
	profiles []string
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func (p *projectFlags) register(fs *flag.FlagSet) {
	fs.Var((*listFlag)(&p.files), "f", "compose file (repeatable)")
	p.registerLong(fs)
}

// registerLong registers the project flags but -f, which logs takes for
// --follow (as docker compose does: there -f before the command is the
// file, after it follow).
func (p *projectFlags) registerLong(fs *flag.FlagSet) {
	fs.Var((*listFlag)(&p.files), "file", "compose file (repeatable)")
	fs.StringVar(&p.name, "p", "", "project name")
	fs.StringVar(&p.name, "project-name", "", "project name")
	fs.StringVar(&p.dir, "project-directory", "", "project directory (default: the first file's)")
	fs.Var((*listFlag)(&p.profiles), "profile", "profile to enable (repeatable)")
}

// loadOptions makes paths absolute (the daemon reads them) and carries this
// command's environment for interpolation.
func (p *projectFlags) loadOptions() (compose.LoadOptions, error) {
	o := compose.LoadOptions{ProjectName: p.name, Profiles: p.profiles, Environment: os.Environ()}
	cwd, err := os.Getwd()
	if err != nil {
		return o, err
	}
	for _, f := range p.files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(cwd, f)
		}
		o.ConfigFiles = append(o.ConfigFiles, f)
	}
	switch {
	case p.dir != "":
		o.WorkingDir, _ = filepath.Abs(p.dir)
	case len(o.ConfigFiles) == 0:
		o.WorkingDir = cwd
	}
	return o, nil
}

// project is -p, or the name the compose file gives (loaded here, as the
// compose CLI does, to name what to show or remove).
func (p *projectFlags) project(ctx context.Context) (string, error) {
	if p.name != "" {
		return p.name, nil
	}
	o, err := p.loadOptions()
	if err != nil {
		return "", err
	}
	proj, err := compose.Load(ctx, o)
	if err != nil {
		return "", err
	}
	return proj.Name, nil
}

func parse(name string, args []string, setup func(*flag.FlagSet)) error {
	rest, err := parseArgs(name, args, setup)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("compose %s: unexpected arguments %q", name, rest)
	}
	return nil
}

// parseArgs parses flags and returns the arguments after them.
func parseArgs(name string, args []string, setup func(*flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet("berth compose "+name, flag.ContinueOnError)
	setup(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// defaultFiles are the names compose looks for when no -f is given.
var defaultFiles = []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"}

// fromRecord reports whether a command without -f names a project whose
// file is not here: the daemon then works from the deployment's record.
func (p *projectFlags) fromRecord() bool {
	if len(p.files) > 0 || p.name == "" {
		return false
	}
	dir := p.dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	for d := dir; ; d = filepath.Dir(d) {
		for _, f := range defaultFiles {
			if _, err := os.Stat(filepath.Join(d, f)); err == nil {
				return false
			}
		}
		if filepath.Dir(d) == d {
			return true
		}
	}
}

// upRequest is the request of up and pull: the files, or the record.
func (p *projectFlags) upRequest() (compose.UpRequest, error) {
	if p.fromRecord() {
		return compose.UpRequest{LoadOptions: compose.LoadOptions{ProjectName: p.name}, FromRecord: true}, nil
	}
	o, err := p.loadOptions()
	return compose.UpRequest{LoadOptions: o}, err
}

func composeUp(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	var wait, orphans bool
	var timeout int
	if err := parse("up", args, func(fs *flag.FlagSet) {
		pf.register(fs)
		fs.Bool("d", true, "detached (always)")
		fs.Bool("detach", true, "detached (always)")
		fs.BoolVar(&wait, "wait", false, "wait for services to be running and healthy")
		fs.IntVar(&timeout, "timeout", 0, "seconds to wait for dependencies and --wait (0: no limit)")
		fs.BoolVar(&orphans, "remove-orphans", false, "remove containers of services not in the file")
	}); err != nil {
		return err
	}
	req, err := pf.upRequest()
	if err != nil {
		return err
	}
	req.Wait, req.Timeout, req.RemoveOrphans = wait, timeout, orphans
	var res compose.UpResult
	err = c.do(ctx, http.MethodPost, "/berth/compose/up", nil, req, &res)
	if err != nil {
		return err
	}
	printActions(out, &res)
	return nil
}

func composeDown(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	var volumes bool
	timeout := -1
	if err := parse("down", args, func(fs *flag.FlagSet) {
		pf.register(fs)
		fs.BoolVar(&volumes, "v", false, "remove named and anonymous volumes")
		fs.BoolVar(&volumes, "volumes", false, "remove named and anonymous volumes")
		fs.IntVar(&timeout, "t", -1, "stop timeout in seconds")
		fs.IntVar(&timeout, "timeout", -1, "stop timeout in seconds")
	}); err != nil {
		return err
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	q := url.Values{"project": {project}}
	if volumes {
		q.Set("volumes", "1")
	}
	if timeout >= 0 {
		q.Set("t", strconv.Itoa(timeout))
	}
	var res compose.UpResult
	if err := c.do(ctx, http.MethodPost, "/berth/compose/down", q, nil, &res); err != nil {
		return err
	}
	printActions(out, &res)
	return nil
}

func composePs(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	if err := parse("ps", args, pf.register); err != nil {
		return err
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	var d compose.DeploymentStatus
	if err := c.do(ctx, http.MethodGet, "/berth/compose/deployments/"+url.PathEscape(project), nil, nil, &d); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSERVICE\tREPLICA\tSTATE\tHEALTH\tIMAGE\tPORTS")
	for _, s := range d.Services {
		for _, r := range s.Replicas {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Name, s.Name, r.Number, r.State, r.Health, r.Image, ports(r))
		}
	}
	return tw.Flush()
}

func ports(r compose.Replica) string {
	var out []string
	for _, p := range r.Ports {
		if p.PublicPort != 0 {
			out = append(out, fmt.Sprintf("%s:%d->%d/%s", p.IP, p.PublicPort, p.PrivatePort, p.Type))
		} else {
			out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
		}
	}
	return strings.Join(out, ", ")
}

func printActions(out io.Writer, res *compose.UpResult) {
	for _, w := range res.Warnings {
		fmt.Fprintf(out, "WARN %s\n", w)
	}
	for _, a := range res.Actions {
		fmt.Fprintf(out, " %s %s  %s\n", a.Kind, a.Name, a.Action)
	}
	for _, d := range res.Drift {
		fmt.Fprintf(out, " Service %s  Image moved: %s -> %s\n", d.Service, imageName(d.OldDigest, d.OldImageID), imageName(d.NewDigest, d.NewImageID))
	}
	for _, s := range res.Restored {
		fmt.Fprintf(out, " Service %s  Restored from its pinned image\n", s)
	}
}

// imageName is a digest when there is one, else a short image ID.
func imageName(digest, id string) string {
	if digest != "" {
		return digest
	}
	if len(id) > 19 {
		return id[:19]
	}
	return id
}
