package compose

import (
	"slices"
	"strings"
)

// SearchDomains is berth's DNS search list policy (runtime.DNSSearch): a
// container of deployment P searches <p>.<zone> then <zone>, any other
// container <zone>. Scope's rule 4 is why each name then answers under one
// of them only.
type SearchDomains struct {
	Zone string // "" means DefaultZone
	// Extra are the daemon's own search domains (berthd --dns-search,
	// dockerd's daemon-wide default): every container searches them after
	// the policy's, each once.
	Extra []string
}

// SearchDomains returns the search domains of a container with labels.
func (s SearchDomains) SearchDomains(labels map[string]string) []string {
	zone := strings.ToLower(strings.Trim(s.Zone, "."))
	if zone == "" {
		zone = DefaultZone
	}
	out := []string{zone}
	if p := labels[LabelProject]; p != "" {
		out = []string{strings.ToLower(p) + "." + zone, zone}
	}
	for _, d := range s.Extra {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}
