// Package dnsrewrite owns the cluster side of berth's zone names on the
// Kubernetes backend: the CoreDNS `rewrite` rules that make
// <service>.<project>.<zone> and <n>.<service>.<project>.<zone> answer the
// objects kube.Translate makes (docs/kubernetes.md, "DNS"). It is pure
// text: no client, no k8s.io import, so the berth CLI can print it.
//
// The mapping, for berthd's --dns-zone Z, --kube-namespace-prefix P and
// the cluster domain D:
//
//	<n>.<svc>.<project>.Z -> <svc>-<n>.<svc>.P<project>.svc.D  (replica n: pod <svc>-<n> of StatefulSet <svc>)
//	<svc>.<project>.Z     -> <svc>.P<project>.svc.D            (the headless Service: every replica)
//	anything else in Z    -> NXDOMAIN
//
// A name outside Z is left alone. Single-host DNS answers the same two
// forms (compose.Scope, rule 3); <container_name>.Z has no cluster form: a
// rewrite cannot know which namespace holds the container.
package dnsrewrite

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DefaultClusterDomain is the cluster domain of kubeadm, k3s and most others.
const DefaultClusterDomain = "cluster.local"

// DefaultZone is compose.DefaultZone (berthd --dns-zone), repeated so that
// this package imports nothing of berth's.
const DefaultZone = "berth.internal"

// defaultNamespace is the namespace of plain `docker run` pods after the
// prefix (kube/backend's <prefix>berth-default). They have no zone names,
// as on a single host.
const defaultNamespace = "berth-default"

// unmapped is where every other name of the zone goes: "berth" is neither
// svc nor pod, so the kubernetes plugin answers NXDOMAIN for it.
const unmapped = "unmapped.berth."

// Options are the daemon's settings the names depend on.
type Options struct {
	Zone            string // berthd --dns-zone; "" means DefaultZone
	NamespacePrefix string // berthd --kube-namespace-prefix
	ClusterDomain   string // "" means DefaultClusterDomain
}

// Rule is one `rewrite stop` rule of CoreDNS's rewrite plugin: a regex name
// rule with its answer rule, in the plugin's own syntax ({N} is group N).
type Rule struct {
	Comment    string
	From, To   string
	AnswerFrom string // "" for no answer rule (the question is restored anyway)
	AnswerTo   string
}

var (
	labelRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	prefixRE = regexp.MustCompile(`^[a-z0-9][-a-z0-9]*$`)
)

func (o Options) normalized() (Options, error) {
	o.Zone = strings.ToLower(strings.Trim(o.Zone, "."))
	if o.Zone == "" {
		o.Zone = DefaultZone
	}
	o.ClusterDomain = strings.ToLower(strings.Trim(o.ClusterDomain, "."))
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	for what, name := range map[string]string{"zone": o.Zone, "cluster domain": o.ClusterDomain} {
		for _, l := range strings.Split(name, ".") {
			if !labelRE.MatchString(l) || len(l) > 63 {
				return o, fmt.Errorf("invalid %s %q: %q is not a DNS label", what, name, l)
			}
		}
	}
	if o.NamespacePrefix != "" && !prefixRE.MatchString(o.NamespacePrefix) {
		return o, fmt.Errorf("invalid namespace prefix %q: lower-case letters, digits and '-' only", o.NamespacePrefix)
	}
	return o, nil
}

// Rules returns the rewrite rules in the order CoreDNS must try them (each
// `stop`s at its match).
func Rules(o Options) ([]Rule, error) {
	o, err := o.normalized()
	if err != nil {
		return nil, err
	}
	z, p, d := regexp.QuoteMeta(o.Zone), regexp.QuoteMeta(o.NamespacePrefix), regexp.QuoteMeta(o.ClusterDomain)
	const l = `([a-z0-9-]+)`
	return []Rule{{
		Comment: "plain `docker run` pods have no zone names, as on a single host",
		From:    `^(?:[a-z0-9-]+\.){1,2}` + regexp.QuoteMeta(defaultNamespace) + `\.` + z + `\.$`,
		To:      unmapped + o.ClusterDomain + ".",
	}, {
		Comment:    "<n>.<service>.<project>." + o.Zone + ": replica n, pod <service>-<n> of the StatefulSet",
		From:       `^([1-9][0-9]*)\.` + l + `\.` + l + `\.` + z + `\.$`,
		To:         "{2}-{1}.{2}." + o.NamespacePrefix + "{3}.svc." + o.ClusterDomain + ".",
		AnswerFrom: `^[a-z0-9-]+-([1-9][0-9]*)\.` + l + `\.` + p + l + `\.svc\.` + d + `\.$`,
		AnswerTo:   "{1}.{2}.{3}." + o.Zone + ".",
	}, {
		Comment:    "<service>.<project>." + o.Zone + ": the service's headless Service (every replica)",
		From:       `^` + l + `\.` + l + `\.` + z + `\.$`,
		To:         "{1}." + o.NamespacePrefix + "{2}.svc." + o.ClusterDomain + ".",
		AnswerFrom: `^` + l + `\.` + p + l + `\.svc\.` + d + `\.$`,
		AnswerTo:   "{1}.{2}." + o.Zone + ".",
	}, {
		Comment: "the rest of " + o.Zone + ": NXDOMAIN",
		From:    `^(?:.*\.)?` + z + `\.$`,
		To:      unmapped + o.ClusterDomain + ".",
	}}, nil
}

// Rewrite is what CoreDNS does with name (a query name, any case, with or
// without the final dot) under rules: the first rule that matches rewrites
// it, and its answer rule applies to the response. ok is false when none
// does (the name is not in the zone).
func Rewrite(rules []Rule, name string) (to string, by Rule, ok bool) {
	name = strings.ToLower(strings.TrimSuffix(name, ".")) + "."
	for _, r := range rules {
		if s, ok := substitute(r.From, r.To, name); ok {
			return s, r, true
		}
	}
	return "", Rule{}, false
}

// Answer is the answer rule of the rule that rewrote a query: the owner
// name a response record gets back. ok is false when it does not apply.
func (r Rule) Answer(name string) (string, bool) {
	if r.AnswerFrom == "" {
		return "", false
	}
	return substitute(r.AnswerFrom, r.AnswerTo, name)
}

// substitute is the rewrite plugin's regex replacement (plugin/rewrite
// name.go): {i} in to becomes group i of the match.
func substitute(from, to, name string) (string, bool) {
	m := regexp.MustCompile(from).FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	for i, g := range m {
		to = strings.ReplaceAll(to, "{"+strconv.Itoa(i)+"}", g)
	}
	return to, true
}
