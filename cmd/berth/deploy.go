package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthd/berth/compose"
)

// composeLs lists deployments: berth's records and what runs.
func composeLs(ctx context.Context, c *client, args []string, out io.Writer) error {
	var quiet bool
	if err := parse("ls", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&quiet, "q", false, "only names")
		fs.BoolVar(&quiet, "quiet", false, "only names")
	}); err != nil {
		return err
	}
	var list []compose.DeploymentStatus
	if err := c.do(ctx, http.MethodGet, "/berth/compose/deployments", nil, nil, &list); err != nil {
		return err
	}
	if quiet {
		for _, d := range list {
			fmt.Fprintln(out, d.Project)
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tORIGIN\tSERVICES\tLAST DEPLOY\tCONFIG FILES")
	for _, d := range list {
		var svcs []string
		for _, s := range d.Services {
			if s.Job != nil {
				svcs = append(svcs, s.Name+" (job)")
				continue
			}
			svcs = append(svcs, fmt.Sprintf("%s %d/%d", s.Name, s.Running, s.Desired))
		}
		last := ""
		if ld := d.LastDeploy; ld != nil {
			last = fmt.Sprintf("%s %s %s", ld.Action, ld.Result, ago(ld.Started))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Project, d.Status, d.Origin, strings.Join(svcs, ", "), last, strings.Join(d.ConfigFiles, ","))
	}
	return tw.Flush()
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// composeInspect prints a deployment's record and status as JSON.
func composeInspect(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	if err := parse("inspect", args, pf.register); err != nil {
		return err
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	var d json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/berth/compose/deployments/"+url.PathEscape(project), nil, nil, &d); err != nil {
		return err
	}
	var pretty any
	_ = json.Unmarshal(d, &pretty)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "    ")
	return enc.Encode(pretty)
}

// composeScale: berth compose scale -p shop worker=3 [web=2...]
func composeScale(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	var timeout int
	rest, err := parseArgs("scale", args, func(fs *flag.FlagSet) {
		pf.register(fs)
		fs.IntVar(&timeout, "timeout", 0, "seconds to wait (0: no limit)")
	})
	if err != nil {
		return err
	}
	req := compose.ScaleRequest{Services: map[string]int{}, Timeout: timeout}
	if len(rest) == 0 {
		return fmt.Errorf("compose scale: give SERVICE=REPLICAS")
	}
	for _, a := range rest {
		svc, n, ok := strings.Cut(a, "=")
		if !ok || svc == "" {
			return fmt.Errorf("compose scale: %q is not SERVICE=REPLICAS", a)
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("compose scale: %q: replicas must be a number", a)
		}
		req.Services[svc] = v
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	var res compose.UpResult
	if err := c.do(ctx, http.MethodPost, "/berth/compose/"+url.PathEscape(project)+"/scale", nil, req, &res); err != nil {
		return err
	}
	printActions(out, &res)
	return nil
}

// composePull pulls the project's images by pull_policy.
func composePull(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	if err := parse("pull", args, pf.register); err != nil {
		return err
	}
	req, err := pf.upRequest()
	if err != nil {
		return err
	}
	var res compose.PullResult
	if err := c.do(ctx, http.MethodPost, "/berth/compose/pull", nil, req, &res); err != nil {
		return err
	}
	for _, s := range res.Services {
		line := fmt.Sprintf(" %s %s  %s", s.Service, s.Image, s.Status)
		if s.OldImageID != s.NewImageID && s.NewImageID != "" {
			line += fmt.Sprintf("  %s -> %s", imageName(s.OldDigest, s.OldImageID), imageName(s.NewDigest, s.NewImageID))
		}
		if s.Drift {
			line += "  (berth compose up recreates it)"
		}
		fmt.Fprintln(out, line)
	}
	return nil
}
