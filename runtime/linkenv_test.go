package runtime

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func ports(specs ...string) network.PortSet {
	out := network.PortSet{}
	for _, s := range specs {
		out[network.MustParsePort(s)] = struct{}{}
	}
	return out
}

func TestLinkEnv(t *testing.T) {
	cases := []struct {
		name    string
		link    string
		env     []string
		exposed network.PortSet
		want    []string
	}{
		{
			name: "no ports, no env",
			link: "/web/db",
			want: []string{"DB_NAME=/web/db"},
		},
		{
			name: "alias upper-cased, dashes become underscores",
			link: "/web/my-link-1",
			env:  []string{"FOO=1"},
			want: []string{"MY_LINK_1_NAME=/web/my-link-1", "MY_LINK_1_ENV_FOO=1"},
		},
		{
			name:    "one port",
			link:    "/web/db",
			exposed: ports("6379/tcp"),
			want: []string{
				"DB_PORT=tcp://10.0.0.2:6379",
				"DB_PORT_6379_TCP=tcp://10.0.0.2:6379",
				"DB_PORT_6379_TCP_ADDR=10.0.0.2",
				"DB_PORT_6379_TCP_PORT=6379",
				"DB_PORT_6379_TCP_PROTO=tcp",
				"DB_NAME=/web/db",
			},
		},
		{
			name: "HOME, PATH and entries without = are left out; values keep their =",
			link: "/web/db",
			env:  []string{"PATH=/bin", "HOME=/root", "BARE", "PASSWORD=a=b", "EMPTY="},
			want: []string{"DB_NAME=/web/db", "DB_ENV_PASSWORD=a=b", "DB_ENV_EMPTY="},
		},
		{
			name:    "tcp first, a tcp run gets START and END, other protocols after",
			link:    "/web/db",
			exposed: ports("53/udp", "8081/tcp", "8080/tcp", "7/sctp"),
			want: []string{
				"DB_PORT=tcp://10.0.0.2:8080",
				"DB_PORT_8080_TCP=tcp://10.0.0.2:8080",
				"DB_PORT_8080_TCP_ADDR=10.0.0.2",
				"DB_PORT_8080_TCP_PORT=8080",
				"DB_PORT_8080_TCP_PROTO=tcp",
				"DB_PORT_8081_TCP=tcp://10.0.0.2:8081",
				"DB_PORT_8081_TCP_ADDR=10.0.0.2",
				"DB_PORT_8081_TCP_PORT=8081",
				"DB_PORT_8081_TCP_PROTO=tcp",
				// as in dockerd, a run is written out when the next port
				// turns out not to continue it
				"DB_PORT_7_SCTP=sctp://10.0.0.2:7",
				"DB_PORT_7_SCTP_ADDR=10.0.0.2",
				"DB_PORT_7_SCTP_PORT=7",
				"DB_PORT_7_SCTP_PROTO=sctp",
				"DB_PORT_8080_TCP_START=tcp://10.0.0.2:8080",
				"DB_PORT_8080_TCP_PORT_START=8080",
				"DB_PORT_8080_TCP_END=tcp://10.0.0.2:8081",
				"DB_PORT_8080_TCP_PORT_END=8081",
				"DB_PORT_53_UDP=udp://10.0.0.2:53",
				"DB_PORT_53_UDP_ADDR=10.0.0.2",
				"DB_PORT_53_UDP_PORT=53",
				"DB_PORT_53_UDP_PROTO=udp",
				"DB_NAME=/web/db",
			},
		},
		{
			name:    "a run that does not end the list",
			link:    "/p/x",
			exposed: ports("1/tcp", "2/tcp", "9/tcp"),
			want: []string{
				"X_PORT=tcp://10.0.0.2:1",
				"X_PORT_1_TCP=tcp://10.0.0.2:1", "X_PORT_1_TCP_ADDR=10.0.0.2", "X_PORT_1_TCP_PORT=1", "X_PORT_1_TCP_PROTO=tcp",
				"X_PORT_2_TCP=tcp://10.0.0.2:2", "X_PORT_2_TCP_ADDR=10.0.0.2", "X_PORT_2_TCP_PORT=2", "X_PORT_2_TCP_PROTO=tcp",
				"X_PORT_9_TCP=tcp://10.0.0.2:9", "X_PORT_9_TCP_ADDR=10.0.0.2", "X_PORT_9_TCP_PORT=9", "X_PORT_9_TCP_PROTO=tcp",
				"X_PORT_1_TCP_START=tcp://10.0.0.2:1", "X_PORT_1_TCP_PORT_START=1",
				"X_PORT_1_TCP_END=tcp://10.0.0.2:2", "X_PORT_1_TCP_PORT_END=2",
				"X_NAME=/p/x",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.DeepEqual(t, linkEnv("10.0.0.2", tc.link, tc.env, tc.exposed), tc.want)
		})
	}
}

func TestParseLink(t *testing.T) {
	cases := []struct {
		in, name, alias string
		bad             bool
	}{
		{in: "db", name: "db", alias: "db"},
		{in: "db:database", name: "db", alias: "database"},
		{in: "/db:/web/database", name: "db", alias: "database"},
		{in: "", bad: true},
		{in: "a:b:c", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			name, alias, err := parseLink(tc.in)
			if tc.bad {
				assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(name, tc.name))
			assert.Check(t, is.Equal(alias, tc.alias))
		})
	}
}
