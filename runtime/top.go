package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Top answers GET /containers/{id}/top: the host's ps, with psArgs
// (default "-ef"), cut down to the processes in the container's cgroup,
// as dockerd does. A container that is not running is ErrConflict.
func (s *Service) Top(ctx context.Context, name, psArgs string) (*container.TopResponse, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := validatePSArgs(psArgs); err != nil {
		return nil, err
	}
	c, err := s.ready(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	rec := c.rec
	running, restarting := c.task != nil && c.running(), rec.State.Status == container.StateRestarting
	cg := s.cgroupsPath(rec)
	c.mu.Unlock()
	switch {
	case restarting:
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is restarting, wait until the container is running", rec.ID))
	case !running:
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", rec.ID))
	}
	pids, err := cgroupPids(cg)
	if err != nil {
		return nil, fmt.Errorf("list the container's processes: %w", err)
	}
	args := strings.Split(psArgs, " ")
	out, err := exec.CommandContext(ctx, "ps", append(args, psPidsArg(pids))...).Output()
	if err != nil {
		// some ps options (such as f) cannot go with -q: ask for all
		out, err = exec.CommandContext(ctx, "ps", args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if line, _, _ := bytes.Cut(ee.Stderr, []byte{'\n'}); len(line) > 0 {
					err = errors.New(string(line))
				}
			}
			return nil, fmt.Errorf("ps: %w", err)
		}
	}
	resp, err := parsePSOutput(out, pids)
	if err != nil {
		return nil, err
	}
	s.event(rec, events.ActionTop, nil)
	return resp, nil
}

// psArgsRe finds "field=PID..." output renames, which would hide the PID
// column the filter needs.
var psArgsRe = regexp.MustCompile(`\s+([^\s]*)=\s*(PID[^\s]*)`)

func validatePSArgs(psArgs string) error {
	for _, g := range psArgsRe.FindAllStringSubmatch(psArgs, -1) {
		if len(g) >= 3 && g[1] != "pid" {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(`specifying "%s=%s" is not allowed`, g[1], g[2]))
		}
	}
	return nil
}

func psPidsArg(pids []int) string {
	b := []byte("-q")
	for i, p := range pids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(b)
}

// fieldsASCII splits on ASCII white space only: a command line may hold
// other (unicode) spaces.
func fieldsASCII(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case '\t', '\n', '\f', '\r', ' ':
			return true
		}
		return false
	})
}

// parsePSOutput keeps the lines of the given pids (and, with thread
// listings such as "-m", the "-" lines that follow them); the last column
// takes the rest of the line.
func parsePSOutput(out []byte, pids []int) (*container.TopResponse, error) {
	lines := strings.Split(string(out), "\n")
	resp := &container.TopResponse{Titles: fieldsASCII(lines[0]), Processes: [][]string{}}
	pidIndex := slices.Index(resp.Titles, "PID")
	if pidIndex < 0 {
		return nil, errors.New("Couldn't find PID field in ps output")
	}
	add := func(fields []string) {
		n := len(resp.Titles)
		if len(fields) < n {
			fields = append(fields, make([]string, n-len(fields))...)
		}
		p := append([]string{}, fields[:n-1]...)
		resp.Processes = append(resp.Processes, append(p, strings.Join(fields[n-1:], " ")))
	}
	prevIn := false
	for _, line := range lines[1:] {
		fields := fieldsASCII(line)
		if len(fields) <= pidIndex {
			continue
		}
		if fields[pidIndex] == "-" {
			if prevIn {
				add(fields)
			}
			continue
		}
		p, err := strconv.Atoi(fields[pidIndex])
		if err != nil {
			return nil, fmt.Errorf("Unexpected pid '%s': %w", fields[pidIndex], err)
		}
		prevIn = slices.Contains(pids, p)
		if prevIn {
			add(fields)
		}
	}
	return resp, nil
}
