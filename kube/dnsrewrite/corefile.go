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

// Server is a CoreDNS outside the cluster (a test, or a resolver of the
// admin's): where it listens and how its kubernetes plugin reaches the API
// server.
type Server struct {
	Listen     string // host:port of the server block, e.g. "127.0.0.1:1053"; "" means ".:53"
	Kubeconfig string // the kubernetes plugin's kubeconfig; "" means in-cluster
	Log        bool   // the log plugin: one line per query
}

// Corefile is a whole Corefile: one server block with errors, the rules
// and the kubernetes plugin for the cluster domain.
func Corefile(o Options, s Server) (string, error) {
	stanza, err := Stanza(o)
	if err != nil {
		return "", err
	}
	n, _ := o.normalized()
	var b strings.Builder
	addr, bind := s.Listen, ""
	if addr == "" {
		addr = ":53"
	}
	if strings.HasPrefix(addr, ":") {
		addr = "." + addr
	} else {
		host, port, ok := strings.Cut(addr, ":")
		if !ok {
			return "", fmt.Errorf("listen %q: want host:port", addr)
		}
		addr = ".:" + port
		bind = host
	}
	fmt.Fprintf(&b, "%s {\n", addr)
	if bind != "" {
		fmt.Fprintf(&b, "    bind %s\n", bind)
	}
	b.WriteString("    errors\n")
	if s.Log {
		b.WriteString("    log\n")
	}
	for _, line := range strings.SplitAfter(strings.TrimSuffix(stanza, "\n"), "\n") {
		b.WriteString("    " + line)
	}
	fmt.Fprintf(&b, "\n    kubernetes %s {\n", n.ClusterDomain)
	if s.Kubeconfig != "" {
		fmt.Fprintf(&b, "        kubeconfig %s\n", s.Kubeconfig)
	}
	b.WriteString("    }\n}\n")
	return b.String(), nil
}
