package compose

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The daemon's --dns-search domains come after the policy's, each once,
// for deployment members and plain containers alike.
func TestSearchDomainsExtra(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy SearchDomains
		labels map[string]string
		want   []string
	}{
		{name: "none", policy: SearchDomains{}, want: []string{"berth.internal"}},
		{name: "plain container", policy: SearchDomains{Extra: []string{"corp.example"}}, want: []string{"berth.internal", "corp.example"}},
		{
			name:   "deployment member",
			policy: SearchDomains{Zone: "zone.test", Extra: []string{"corp.example", "lab.example"}},
			labels: labels("shop", "web", 1),
			want:   []string{"shop.zone.test", "zone.test", "corp.example", "lab.example"},
		},
		{
			name:   "repeats of the policy's and of each other are dropped",
			policy: SearchDomains{Extra: []string{"berth.internal", "corp.example", "corp.example"}},
			labels: labels("shop", "web", 1),
			want:   []string{"shop.berth.internal", "berth.internal", "corp.example"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Check(t, is.DeepEqual(tc.policy.SearchDomains(tc.labels), tc.want))
		})
	}
}
