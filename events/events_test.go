package events

import (
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
