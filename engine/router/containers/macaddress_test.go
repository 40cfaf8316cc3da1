package containers

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestContainerWideMAC(t *testing.T) {
	const mac, other = "02:42:ab:cd:ef:01", "02:42:ab:cd:ef:02"
	ep := func(m string) *network.EndpointSettings {
		e := &network.EndpointSettings{}
		if m != "" {
			assert.NilError(t, e.MacAddress.UnmarshalText([]byte(m)))
		}
		return e
	}
	for _, tc := range []struct {
		name, mac, mode, version string
		eps                      map[string]*network.EndpointSettings
		wantMode                 string
		want                     map[string]string // endpoint -> MAC
		wantWarn                 bool
		wantErr                  string
	}{
		{name: "old client, default network", mac: mac, mode: "default", version: "1.41",
			wantMode: "bridge", want: map[string]string{"bridge": mac}},
		{name: "old client, empty mode", mac: mac, mode: "", version: "1.43",
			wantMode: "bridge", want: map[string]string{"bridge": mac}},
		{name: "old client, user network", mac: mac, mode: "app", version: "1.41",
			eps: map[string]*network.EndpointSettings{"app": ep("")}, wantMode: "app", want: map[string]string{"app": mac}},
		{name: "old client, endpoint MAC ignored", mode: "app", version: "1.41",
			eps: map[string]*network.EndpointSettings{"app": ep(other)}, wantMode: "app", want: map[string]string{"app": ""}},
		{name: "old client, host network", mac: mac, mode: "host", version: "1.41",
			wantErr: "conflicting options: mac-address and the network mode"},
		{name: "new client, moved with a warning", mac: mac, mode: "default", version: "1.47",
			eps: map[string]*network.EndpointSettings{"default": ep("")}, wantMode: "bridge", want: map[string]string{"bridge": mac}, wantWarn: true},
		{name: "new client, same on both", mac: mac, mode: "app", version: "1.51",
			eps: map[string]*network.EndpointSettings{"app": ep(mac)}, wantMode: "app", want: map[string]string{"app": mac}, wantWarn: true},
		{name: "new client, endpoint MAC alone", mode: "app", version: "1.51",
			eps: map[string]*network.EndpointSettings{"app": ep(other)}, wantMode: "app", want: map[string]string{"app": other}},
		{name: "new client, mismatch", mac: mac, mode: "app", version: "1.51",
			eps:     map[string]*network.EndpointSettings{"app": ep(other)},
			wantErr: "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty"},
		{name: "new client, mode not among endpoints", mac: mac, mode: "app", version: "1.51",
			eps:     map[string]*network.EndpointSettings{"db": ep("")},
			wantErr: "unable to migrate container-wide MAC address to a specific network: HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks"},
		{name: "bad MAC", mac: "02:42:zz", mode: "bridge", version: "1.51", wantErr: "invalid MAC address: 02:42:zz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &container.HostConfig{NetworkMode: container.NetworkMode(tc.mode)}
			nc := &network.NetworkingConfig{EndpointsConfig: tc.eps}
			warn, err := containerWideMAC(tc.mac, hc, nc, tc.version)
			if tc.wantErr != "" {
				assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
				assert.Check(t, is.ErrorContains(err, tc.wantErr))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(warn != "", tc.wantWarn), warn)
			assert.Check(t, is.Equal(string(hc.NetworkMode), tc.wantMode))
			got := map[string]string{}
			for k, e := range nc.EndpointsConfig {
				got[k] = e.MacAddress.String()
			}
			assert.Check(t, is.DeepEqual(got, tc.want))
		})
	}
}
