package dnsrewrite

import (
	"fmt"
	"strings"
)

// Stanza is the rules as CoreDNS configuration: one `rewrite stop` block
// each, to go into the server block that has the kubernetes plugin for the
// cluster domain (the cluster's `.:53`), where rewrite runs before it.
func Stanza(o Options) (string, error) {
	rules, err := Rules(o)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "# %s\nrewrite stop {\n    name regex %s %s\n", r.Comment, r.From, r.To)
		if r.AnswerFrom != "" {
			fmt.Fprintf(&b, "    answer name %s %s\n", r.AnswerFrom, r.AnswerTo)
		}
		b.WriteString("}\n")
	}
	return b.String(), nil
}

// ConfigMapName and ConfigMapKey: the coredns-custom ConfigMap that k3s and
// AKS import into their CoreDNS; a key ending in .override is imported into
// the `.:53` server block.
const (
	ConfigMapName = "coredns-custom"
	ConfigMapKey  = "berth.override"
)

// ConfigMap is the coredns-custom ConfigMap (YAML) holding Stanza, for
// `kubectl apply -f -`.
func ConfigMap(o Options) (string, error) {
	s, err := Stanza(o)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: kube-system\n", ConfigMapName)
	b.WriteString("  labels:\n    app.kubernetes.io/managed-by: berth\n")
	fmt.Fprintf(&b, "data:\n  %s: |\n", ConfigMapKey)
	for _, line := range strings.SplitAfter(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString("    " + line)
	}
	b.WriteString("\n")
	return b.String(), nil
}
