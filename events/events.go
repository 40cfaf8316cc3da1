// Package events is berth's in-process publish/subscribe bus. Subsystems
// publish Docker event messages; GET /events and the deployment view subscribe.
// It keeps a bounded history so `since` can replay recent events.
package events

import (
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Bus fans messages out to subscribers. The zero value is not usable; use New.
type Bus struct {
	mu sync.Mutex
	// history is a ring of the last limit messages: it grows to limit, then
	// next is where the oldest is and the next message goes (a publish
	// costs the same whatever the history holds).
	history []events.Message
	next    int
	limit   int
	subs    map[*sub]struct{}
}

type sub struct {
	ch chan events.Message
}

// New returns a bus that remembers the last limit messages.
func New(limit int) *Bus {
	return &Bus{limit: limit, subs: map[*sub]struct{}{}}
}

// Publish stamps m with the current time (when unset) and delivers it. A
// subscriber that does not keep up loses messages rather than blocking
// publishers: the daemon must never stall on a slow reader.
func (b *Bus) Publish(m events.Message) {
	if m.TimeNano == 0 {
		now := time.Now()
		m.Time, m.TimeNano = now.Unix(), now.UnixNano()
	}
	if m.Scope == "" {
		m.Scope = "local"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remember(m)
	for s := range b.subs {
		select {
		case s.ch <- m:
		default:
		}
	}
}

// remember adds m to the history, over the oldest message once it holds
// limit. Callers hold b.mu.
func (b *Bus) remember(m events.Message) {
	if b.limit <= 0 {
		return
	}
	if len(b.history) < b.limit {
		b.history = append(b.history, m)
		return
	}
	b.history[b.next] = m
	b.next = (b.next + 1) % b.limit
}

// Subscribe returns the remembered messages at or after since (none when since
// is zero), a channel of live messages, and a function that ends the
// subscription. Replay and live delivery do not overlap or miss a message.
func (b *Bus) Subscribe(since time.Time) ([]events.Message, <-chan events.Message, func()) {
	s := &sub{ch: make(chan events.Message, 1024)}
	b.mu.Lock()
	var past []events.Message
	if !since.IsZero() {
		older, newer := b.history[b.next:], b.history[:b.next]
		for _, part := range [][]events.Message{older, newer} {
			for _, m := range part {
				if m.TimeNano >= since.UnixNano() {
					past = append(past, m)
				}
			}
		}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return past, s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
		})
	}
}

// Subscribers is the number of live subscriptions (NEventsListener in /info).
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
