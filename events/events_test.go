package events

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"gotest.tools/v3/assert"
)

func TestReplayAndLive(t *testing.T) {
	b := New(3)
	start := time.Now()
	for _, a := range []events.Action{"create", "start", "die", "destroy"} {
		b.Publish(events.Message{Type: events.ContainerEventType, Action: a})
	}
	past, live, cancel := b.Subscribe(start)
	defer cancel()
	// history keeps only the last 3
	assert.Equal(t, len(past), 3)
	assert.Equal(t, past[0].Action, events.Action("start"))
	assert.Equal(t, past[0].Scope, "local")
	assert.Check(t, past[0].TimeNano != 0)

	b.Publish(events.Message{Type: events.ContainerEventType, Action: "create"})
	select {
	case m := <-live:
		assert.Equal(t, m.Action, events.Action("create"))
	case <-time.After(time.Second):
		t.Fatal("no live message")
	}
	assert.Equal(t, b.Subscribers(), 1)
	cancel()
	assert.Equal(t, b.Subscribers(), 0)
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	b := New(10)
	_, _, cancel := b.Subscribe(time.Time{})
	defer cancel()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5000; i++ {
			b.Publish(events.Message{Action: "start"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publisher blocked on a subscriber that does not read")
	}
}

// TestHistoryModel checks the history ring against a plain model (all
// messages, keep the last limit, replay those at or after since) over
// random limits, publish counts and since times.
func TestHistoryModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 300; round++ {
		limit := rng.IntN(8)
		b := New(limit)
		var all []events.Message
		n := rng.IntN(3 * (limit + 1))
		for i := 0; i < n; i++ {
			m := events.Message{Action: events.Action(fmt.Sprint(i)), TimeNano: int64(i + 1)}
			b.Publish(m)
			all = append(all, events.Message{Action: m.Action, TimeNano: m.TimeNano, Scope: "local"})
		}
		kept := all[max(0, len(all)-limit):]
		since := rng.IntN(n + 2)
		var want []events.Message
		for _, m := range kept {
			if m.TimeNano >= int64(since) {
				want = append(want, m)
			}
		}
		past, _, cancel := b.Subscribe(time.Unix(0, int64(since)))
		cancel()
		assert.DeepEqual(t, past, want)
	}
}

// BenchmarkPublishFull publishes into a full history: the cost must not
// grow with the history's size (it copied the whole history each time).
func BenchmarkPublishFull(b *testing.B) {
	bus := New(1024)
	for i := 0; i < 2048; i++ {
		bus.Publish(events.Message{Action: "start"})
	}
	b.ReportAllocs()
	for b.Loop() {
		bus.Publish(events.Message{Action: "start"})
	}
}
