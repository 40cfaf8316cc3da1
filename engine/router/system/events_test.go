package system

import (
	"testing"
	"time"

	"github.com/berthd/berth/internal/filters"
	"github.com/moby/moby/api/types/events"
	"gotest.tools/v3/assert"
)

func TestParseTimestamp(t *testing.T) {
	ts, err := ParseTimestamp("1700000000.5")
	assert.NilError(t, err)
	assert.Equal(t, ts.UnixNano(), time.Unix(1700000000, 500000000).UnixNano())
	ts, err = ParseTimestamp("")
	assert.NilError(t, err)
	assert.Check(t, ts.IsZero())
	_, err = ParseTimestamp("yesterday")
	assert.ErrorContains(t, err, "invalid timestamp")
}

func TestMatch(t *testing.T) {
	die := events.Message{
		Type: events.ContainerEventType, Action: events.ActionDie, Scope: "local",
		Actor: events.Actor{ID: "abcdef0123", Attributes: map[string]string{
			"name": "shop-db-1", "image": "busybox", "com.docker.compose.project": "shop", "exitCode": "0",
		}},
	}
	health := die
	health.Action = events.ActionHealthStatusHealthy
	cases := []struct {
		name    string
		filters string
		msg     events.Message
		want    bool
	}{
		{"no filter", ``, die, true},
		{"label kv", `{"label":{"com.docker.compose.project=shop":true}}`, die, true},
		{"label other project", `{"label":{"com.docker.compose.project=blog":true}}`, die, false},
		{"type", `{"type":{"container":true}}`, die, true},
		{"type network", `{"type":{"network":true}}`, die, false},
		{"event", `{"event":{"die":true}}`, die, true},
		{"event start", `{"event":{"start":true}}`, die, false},
		{"health prefix", `{"event":{"health_status":true}}`, health, true},
		{"container by name", `{"container":{"shop-db-1":true}}`, die, true},
		{"container by id prefix", `{"container":{"abcd":true}}`, die, true},
		{"container other", `{"container":{"web":true}}`, die, false},
		{"image", `{"image":{"busybox":true}}`, die, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ef, err := filters.Parse(tc.filters)
			assert.NilError(t, err)
			assert.Equal(t, Match(ef, tc.msg), tc.want)
		})
	}
}
