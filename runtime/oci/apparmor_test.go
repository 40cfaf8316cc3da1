package oci

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// apparmor= is applied where the host runs AppArmor and, as with dockerd,
// not applied (but recorded for inspect) where it does not; label= is
// accepted as dockerd accepts it on a host without SELinux.
func TestAppArmorAndLabelOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []string
		apparmor   bool
		privileged bool
		want       string // the spec's profile
		inspect    string
	}{
		{name: "profile on an AppArmor host", opts: []string{"apparmor=berth-test"}, apparmor: true, want: "berth-test", inspect: "berth-test"},
		{name: "old separator", opts: []string{"apparmor:berth-test"}, apparmor: true, want: "berth-test", inspect: "berth-test"},
		{name: "profile without AppArmor: recorded, not applied", opts: []string{"apparmor=berth-test"}, inspect: "berth-test"},
		{name: "unconfined", opts: []string{"apparmor=unconfined"}, apparmor: true, inspect: "unconfined"},
		{name: "privileged is unconfined", opts: []string{"apparmor=berth-test"}, apparmor: true, privileged: true, inspect: "berth-test"},
		{name: "no option", apparmor: true},
		{name: "label options", opts: []string{"label=type:svirt_apache_t", "label=disable", "label:level:s0:c100,c200"}, apparmor: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			host := *in.Host
			host.AppArmor = tc.apparmor
			in.Host = &host
			in.HostConfig.SecurityOpt = tc.opts
			in.HostConfig.Privileged = tc.privileged
			s, err := Generate(in)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(s.Process.ApparmorProfile, tc.want))
			assert.Check(t, is.Equal(AppArmorProfile(tc.opts), tc.inspect))
		})
	}
	in := baseInput()
	in.HostConfig.SecurityOpt = []string{"apparmor="}
	_, err := Generate(in)
	assert.Check(t, is.ErrorContains(err, "invalid --security-opt"))
}
