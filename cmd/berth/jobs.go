package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthd/berth/compose"
)

// composeRunJob: berth compose run-job -p shop migrate -> the execution ID.
func composeRunJob(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	rest, err := parseArgs("run-job", args, pf.register)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("compose run-job: give one job service")
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	var e compose.JobExecution
	if err := c.do(ctx, http.MethodPost, "/berth/compose/"+url.PathEscape(project)+"/jobs/"+url.PathEscape(rest[0])+"/run", nil, nil, &e); err != nil {
		return err
	}
	fmt.Fprintln(out, e.ID)
	return nil
}

// composeJobs lists a project's job executions, oldest first, with their
// exit codes, and with --logs their last lines.
func composeJobs(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	var logs bool
	rest, err := parseArgs("jobs", args, func(fs *flag.FlagSet) {
		pf.register(fs)
		fs.BoolVar(&logs, "logs", false, "show each execution's last log lines")
	})
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return fmt.Errorf("compose jobs: at most one service")
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	q := url.Values{}
	if len(rest) == 1 {
		q.Set("service", rest[0])
	}
	var list []compose.JobExecution
	if err := c.do(ctx, http.MethodGet, "/berth/compose/"+url.PathEscape(project)+"/jobs", q, nil, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tJOB\tTRIGGER\tSTATE\tEXIT CODE\tSTARTED\tDURATION\tTICK")
	for _, e := range list {
		started, dur, tick := "", "", ""
		if !e.Started.IsZero() {
			started = e.Started.Local().Format(time.DateTime)
		}
		if !e.Finished.IsZero() && !e.Started.IsZero() {
			dur = e.Finished.Sub(e.Started).Round(time.Millisecond).String()
		}
		if !e.Tick.IsZero() {
			tick = e.Tick.Local().Format(time.DateTime)
		}
		code := ""
		if e.State != compose.ExecRunning && e.State != compose.ExecPending && e.State != compose.ExecSkipped {
			code = fmt.Sprint(e.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Service, e.Trigger, e.State, code, started, dur, tick)
	}
	if err := tw.Flush(); err != nil || !logs {
		return err
	}
	for _, e := range list {
		if len(e.Logs) == 0 && e.Error == "" {
			continue
		}
		fmt.Fprintf(out, "\n%s %s:\n", e.ID, e.Service)
		for _, l := range e.Logs {
			fmt.Fprintf(out, "  | %s\n", l)
		}
		if e.Error != "" {
			fmt.Fprintf(out, "  ! %s\n", strings.TrimSpace(e.Error))
		}
	}
	return nil
}

// composeCancel stops a running execution.
func composeCancel(ctx context.Context, c *client, args []string, out io.Writer) error {
	var pf projectFlags
	rest, err := parseArgs("cancel", args, pf.register)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("compose cancel: give one execution ID")
	}
	project, err := pf.project(ctx)
	if err != nil {
		return err
	}
	var e compose.JobExecution
	if err := c.do(ctx, http.MethodPost, "/berth/compose/"+url.PathEscape(project)+"/executions/"+url.PathEscape(rest[0])+"/cancel", nil, nil, &e); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s %s\n", e.ID, e.State)
	return nil
}
