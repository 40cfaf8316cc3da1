package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/berthd/berth/compose"
)

// composeLogs: berth compose logs [-f] [--tail N] [--since T] [-t] [svc...]
// prints the deployment's replicas' lines merged by time (the daemon
// merges them), each after "service-n | " padded as docker compose pads it.
func composeLogs(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	var follow, timestamps bool
	tail, since := "all", ""
	services, err := parseArgs("logs", args, func(fs *flag.FlagSet) {
		pf.registerLong(fs)
		fs.BoolVar(&follow, "f", false, "follow")
		fs.BoolVar(&follow, "follow", false, "follow")
		fs.StringVar(&tail, "tail", "all", "lines from the end of each replica's log")
		fs.StringVar(&tail, "n", "all", "lines from the end of each replica's log")
		fs.StringVar(&since, "since", "", "lines since a time (RFC 3339, Unix seconds) or a duration (10m)")
		fs.BoolVar(&timestamps, "t", false, "show timestamps")
		fs.BoolVar(&timestamps, "timestamps", false, "show timestamps")
	})
	if err != nil {
		return err
	}
	if tail != "all" {
		if n, err := strconv.Atoi(tail); err != nil || n < 0 {
			return fmt.Errorf("compose logs: --tail must be a number or all, not %q", tail)
		}
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	var d compose.DeploymentStatus
	if err := c.do(ctx, http.MethodGet, "/berth/compose/deployments/"+url.PathEscape(project), nil, nil, &d); err != nil {
		return err
	}
	width := 0
	for _, s := range d.Services {
		if len(services) > 0 && !slices.Contains(services, s.Name) {
			continue
		}
		for _, r := range s.Replicas {
			width = max(width, len(compose.LogEntry{Service: s.Name, Number: r.Number}.Prefix()))
		}
	}
	q := url.Values{"tail": {tail}}
	if follow {
		q.Set("follow", "1")
	}
	if since != "" {
		q.Set("since", since)
	}
	for _, s := range services {
		q.Add("service", s)
	}
	body, err := c.stream(ctx, http.MethodGet, "/berth/compose/"+url.PathEscape(project)+"/logs", q, nil)
	if err != nil {
		return err
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var e compose.LogEntry
		if err := dec.Decode(&e); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		prefix := e.Prefix()
		width = max(width, len(prefix))
		ts := ""
		if timestamps {
			ts = e.Time.UTC().Format(time.RFC3339Nano) + " "
		}
		fmt.Fprintf(out, "%-*s | %s%s\n", width+1, prefix, ts, e.Line)
	}
}
