package compose

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
)

// LogsRequest are the parameters of GET /berth/compose/{project}/logs.
type LogsRequest struct {
	Services []string // none: every service
	Follow   bool
	Tail     int // lines per replica from the end; -1: all
	Since    time.Time
}

// LogEntry is one line of a deployment's merged log.
type LogEntry struct {
	Service   string
	Number    int
	Container string
	Stream    string // stdout, stderr
	Time      time.Time
	Line      string
}

// Prefix is what `docker compose logs` puts before a replica's lines
// (without the padding): service-number.
func (e LogEntry) Prefix() string {
	return e.Service + "-" + itoa(e.Number)
}

// mergeLatency is how long a followed line waits for older lines of other
// replicas before it goes out: lines within it come out in time order.
const mergeLatency = 100 * time.Millisecond

// Logs merges the logs of a deployment's replicas (of some services) by
// time, as `docker compose logs` shows them. Following, it also follows
// replicas that start meanwhile, and ends once every followed replica has
// stopped (a down ends it). ErrNotFound for an unknown project or service.
func (m *Manager) Logs(ctx context.Context, project string, req LogsRequest) (<-chan LogEntry, error) {
	// subscribed before listing: a replica that starts in between is seen
	_, evs, unsubscribe := m.d.Events.Subscribe(time.Time{})
	reps, err := m.logReplicas(ctx, project, req.Services)
	if err != nil {
		unsubscribe()
		return nil, err
	}
	out := make(chan LogEntry, 64)
	ctx, cancel := context.WithCancel(ctx)
	mg := &merger{out: out, ctx: ctx}
	for _, r := range reps {
		if err := m.streamLogs(mg, r, runtime.LogsOptions{Stdout: true, Stderr: true, Follow: req.Follow, Tail: req.Tail, Since: req.Since}); err != nil && !errdefs.IsNotFound(err) {
			cancel()
			unsubscribe()
			return nil, err
		}
	}
	go func() {
		defer cancel()
		defer unsubscribe()
		if !req.Follow {
			mg.wait()
			mg.flush(true)
			close(out)
			return
		}
		m.followLogs(ctx, mg, project, req.Services, evs)
		close(out)
	}()
	return out, nil
}

type logReplica struct {
	service, name, id string
	number            int
}

// logReplicas are the project's replicas of the services asked for.
func (m *Manager) logReplicas(ctx context.Context, project string, services []string) ([]logReplica, error) {
	observed, err := m.dp.containers(ctx, project, false)
	if err != nil {
		return nil, err
	}
	rec, _ := m.d.Records.Get(project)
	if len(observed) == 0 && rec == nil {
		return nil, errdefs.ErrNotFound.WithMessage("No such deployment: " + project)
	}
	for _, s := range services {
		_, seen := observed[s]
		if !seen && (rec == nil || rec.Services[s] == nil) {
			return nil, errdefs.ErrNotFound.WithMessage("no such service: " + s)
		}
	}
	var out []logReplica
	for svc, cs := range observed {
		if len(services) > 0 && !slices.Contains(services, svc) {
			continue
		}
		for _, c := range cs {
			k, _ := KeyOf(c.Labels)
			out = append(out, logReplica{service: svc, name: containerSummaryName(c), id: c.ID, number: k.Number})
		}
	}
	slices.SortFunc(out, func(a, b logReplica) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.number, b.number))
	})
	return out, nil
}

func (m *Manager) streamLogs(mg *merger, r logReplica, opts runtime.LogsOptions) error {
	st, err := m.d.Logs.Logs(mg.ctx, r.id, opts)
	if err != nil {
		return err
	}
	mg.add(r.id)
	go func() {
		defer mg.done(r.id)
		defer st.Cancel()
		for l := range st.Lines {
			mg.push(LogEntry{Service: r.service, Number: r.number, Container: r.name, Stream: l.Stream, Time: l.Time, Line: strings.TrimRight(string(l.Line), "\r\n")})
		}
	}()
	return nil
}

// followLogs sends merged lines as they come, adds replicas that start,
// and returns once no stream is left.
func (m *Manager) followLogs(ctx context.Context, mg *merger, project string, services []string, evs <-chan events.Message) {
	tick := time.NewTicker(mergeLatency / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-evs:
			if !ok {
				return
			}
			k, isOurs := KeyOf(msg.Actor.Attributes)
			if !isOurs || k.OneOff || k.Project != project || msg.Type != events.ContainerEventType || msg.Action != events.ActionStart ||
				len(services) > 0 && !slices.Contains(services, k.Service) || mg.has(msg.Actor.ID) {
				continue
			}
			r := logReplica{service: k.Service, number: k.Number, name: msg.Actor.Attributes["name"], id: msg.Actor.ID}
			_ = m.streamLogs(mg, r, runtime.LogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: -1, Since: time.Unix(0, msg.TimeNano).Add(-time.Second)})
		case <-tick.C:
			if !mg.flush(false) {
				return
			}
		}
	}
}

// merger orders lines from several streams by time.
type merger struct {
	ctx     context.Context
	out     chan<- LogEntry
	mu      sync.Mutex
	pending []pendingLine
	open    map[string]bool
	ever    map[string]bool
	wg      sync.WaitGroup
}

type pendingLine struct {
	e       LogEntry
	arrived time.Time
}

func (mg *merger) add(id string) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if mg.open == nil {
		mg.open, mg.ever = map[string]bool{}, map[string]bool{}
	}
	mg.open[id], mg.ever[id] = true, true
	mg.wg.Add(1)
}

func (mg *merger) has(id string) bool {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return mg.ever[id]
}

func (mg *merger) done(id string) {
	mg.mu.Lock()
	delete(mg.open, id)
	mg.mu.Unlock()
	mg.wg.Done()
}

func (mg *merger) wait() { mg.wg.Wait() }

func (mg *merger) push(e LogEntry) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	mg.pending = append(mg.pending, pendingLine{e, time.Now()})
}

// flush sends, in time order, the lines that have waited mergeLatency
// (all of them when all is set, or when no stream is open any more). It
// reports whether anything is left to follow.
func (mg *merger) flush(all bool) bool {
	mg.mu.Lock()
	open := len(mg.open) > 0
	all = all || !open
	cut := time.Now().Add(-mergeLatency)
	var ready, keep []pendingLine
	for _, p := range mg.pending {
		if all || p.arrived.Before(cut) {
			ready = append(ready, p)
		} else {
			keep = append(keep, p)
		}
	}
	mg.pending = keep
	mg.mu.Unlock()
	slices.SortStableFunc(ready, func(a, b pendingLine) int { return a.e.Time.Compare(b.e.Time) })
	for _, p := range ready {
		select {
		case mg.out <- p.e:
		case <-mg.ctx.Done():
			return false
		}
	}
	return open || len(keep) > 0
}
