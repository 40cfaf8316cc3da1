package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/berthd/berth/kube/dnsrewrite"
)

const kubeUsage = `usage: berth kube dns-config [--dns-zone Z] [--kube-namespace-prefix P] [--cluster-domain D] [--stanza]`

// kube runs `berth kube dns-config`: the CoreDNS configuration that makes
// the berth zone names resolve in a cluster (docs/kubernetes.md, "DNS").
// It prints, and the admin applies it (`| kubectl apply -f -`): berthd does
// not, because editing kube-system's DNS needs rights berthd otherwise has
// no use for. The flags are berthd's, so the same values go in both.
func kube(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "dns-config" {
		return fmt.Errorf("%s", kubeUsage)
	}
	fs := flag.NewFlagSet("berth kube dns-config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o dnsrewrite.Options
	fs.StringVar(&o.Zone, "dns-zone", dnsrewrite.DefaultZone, "berthd's --dns-zone")
	fs.StringVar(&o.NamespacePrefix, "kube-namespace-prefix", "", "berthd's --kube-namespace-prefix")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", dnsrewrite.DefaultClusterDomain, "the cluster's DNS domain")
	stanza := fs.Bool("stanza", false, "print only the rewrite rules, for a Corefile without coredns-custom's import")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%v\n%s", err, kubeUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), kubeUsage)
	}
	gen := dnsrewrite.ConfigMap
	if *stanza {
		gen = dnsrewrite.Stanza
	}
	s, err := gen(o)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, s)
	return err
}
