package system

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
)

var eventFilterKeys = []string{"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"}

func (s *Router) getEvents(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(r); err != nil {
		return err
	}
	since, err := ParseTimestamp(r.Form.Get("since"))
	if err != nil {
		return err
	}
	until, err := ParseTimestamp(r.Form.Get("until"))
	if err != nil {
		return err
	}
	ef, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	if err := ef.Validate(eventFilterKeys...); err != nil {
		return err
	}
	if !until.IsZero() && !since.IsZero() && until.Before(since) {
		return errdefs.ErrInvalidArgument.WithMessage("`since` time cannot be after `until` time")
	}
	replayFrom := since
	if replayFrom.IsZero() && !until.IsZero() {
		replayFrom = time.Unix(0, 1) // until without since replays everything remembered
	}
	past, live, cancel := s.events.Subscribe(replayFrom)
	defer cancel()

	out := httputil.NewJSONStream(w)
	send := func(m events.Message) error {
		if !Match(ef, m) {
			return nil
		}
		return out.Send(m)
	}
	for _, m := range past {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return nil
		}
		if err := send(m); err != nil {
			return nil
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			return nil
		case m := <-live:
			if err := send(m); err != nil {
				return nil
			}
		}
	}
}

// ParseTimestamp reads the since/until form of the events and logs
// endpoints: unix seconds with an optional fraction ("1700000000.5").
// Empty means unset.
func ParseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid timestamp %q", s))
	}
	var nanos int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if nanos, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid timestamp %q", s))
		}
	}
	return time.Unix(secs, nanos), nil
}

// Match reports whether an event passes the filters, by dockerd's rules.
func Match(ef filters.Args, m events.Message) bool {
	action := string(m.Action)
	if i := strings.Index(action, ":"); i >= 0 && !ef.ExactMatch("event", action) {
		action = action[:i] // "exec_start: sh -c x" and "health_status: healthy" match their verb
	}
	attrs := m.Actor.Attributes
	fuzzy := func(key string, t events.Type) bool {
		if !ef.Has(key) {
			return true
		}
		return m.Type == t && (ef.FuzzyMatch(key, m.Actor.ID) || ef.FuzzyMatch(key, attrs["name"]))
	}
	imageOK := !ef.Has("image") ||
		(m.Type == events.ImageEventType && (ef.ExactMatch("image", m.Actor.ID) || ef.ExactMatch("image", attrs["name"]))) ||
		(m.Type == events.ContainerEventType && ef.ExactMatch("image", attrs["image"]))
	return ef.ExactMatch("event", action) &&
		ef.ExactMatch("type", string(m.Type)) &&
		ef.ExactMatch("scope", m.Scope) &&
		ef.MatchKVList("label", attrs) &&
		fuzzy("container", events.ContainerEventType) &&
		fuzzy("network", events.NetworkEventType) &&
		fuzzy("volume", events.VolumeEventType) &&
		fuzzy("daemon", events.DaemonEventType) &&
		imageOK
}
