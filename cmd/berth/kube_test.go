package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berthd/berth/kube/dnsrewrite"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestKubeDNSConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want func() (string, error)
		err  string
	}{
		{args: []string{"kube", "dns-config"}, want: func() (string, error) { return dnsrewrite.ConfigMap(dnsrewrite.Options{}) }},
		{args: []string{"kube", "dns-config", "--dns-zone=corp.example", "--kube-namespace-prefix", "berth-", "--cluster-domain=k8s.internal", "--stanza"},
			want: func() (string, error) {
				return dnsrewrite.Stanza(dnsrewrite.Options{Zone: "corp.example", NamespacePrefix: "berth-", ClusterDomain: "k8s.internal"})
			}},
		{args: []string{"kube"}, err: "usage: berth kube dns-config"},
		{args: []string{"kube", "dns-config", "extra"}, err: `unexpected argument "extra"`},
		{args: []string{"kube", "dns-config", "--nope"}, err: "flag provided but not defined"},
		{args: []string{"kube", "dns-config", "--kube-namespace-prefix=Bad_"}, err: "invalid namespace prefix"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out)
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				return
			}
			assert.NilError(t, err)
			want, err := tc.want()
			assert.NilError(t, err)
			assert.Equal(t, out.String(), want)
		})
	}
}
