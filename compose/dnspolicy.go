package compose

import "strings"

// SearchDomains is berth's DNS search list policy (runtime.DNSSearch): a
// container of deployment P searches <p>.<zone> then <zone>, any other
// container <zone>. Scope's rule 4 is why each name then answers under one
// of them only.
type SearchDomains struct {
	Zone string // "" means DefaultZone
}

// SearchDomains returns the search domains of a container with labels.
func (s SearchDomains) SearchDomains(labels map[string]string) []string {
	zone := strings.ToLower(strings.Trim(s.Zone, "."))
	if zone == "" {
		zone = DefaultZone
	}
	if p := labels[LabelProject]; p != "" {
		return []string{strings.ToLower(p) + "." + zone, zone}
	}
	return []string{zone}
}
