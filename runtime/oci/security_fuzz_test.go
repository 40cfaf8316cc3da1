package oci

import (
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

// securityOptsOf writes so back as --security-opt values.
func securityOptsOf(so securityOptions) []string {
	opts := []string{"no-new-privileges=" + strconv.FormatBool(so.noNewPrivileges)}
	if so.seccomp != "" {
		opts = append(opts, "seccomp="+so.seccomp)
	}
	if so.writableCgroups != nil {
		opts = append(opts, "writable-cgroups="+strconv.FormatBool(*so.writableCgroups))
	}
	return opts
}

// FuzzParseSecurityOpts: HostConfig.SecurityOpt. Bad options are
// ErrInvalidArgument; what is taken, written back as options, parses to
// the same; giving the options twice changes nothing; and the last
// no-new-privileges wins.
func FuzzParseSecurityOpts(f *testing.F) {
	for _, s := range []string{
		"no-new-privileges", "no-new-privileges=false", "no-new-privileges:true", "seccomp=unconfined", "seccomp:builtin",
		"seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}", "label=disable", "label:type:svirt", "apparmor=unconfined", "disable",
		"writable-cgroups", "writable-cgroups=0", "no-new-privileges=maybe", "bogus", "bogus=1", "=", ":",
		"no-new-privileges\nno-new-privileges=false",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		opts := strings.Split(s, "\n")
		so, err := parseSecurityOpts(opts)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%q: %v", opts, err)
			return
		}
		back, err := parseSecurityOpts(securityOptsOf(so))
		assert.NilError(t, err)
		assert.DeepEqual(t, securityOptsOf(back), securityOptsOf(so))

		twice, err := parseSecurityOpts(append(append([]string(nil), opts...), opts...))
		assert.NilError(t, err)
		assert.DeepEqual(t, securityOptsOf(twice), securityOptsOf(so))

		for i := len(opts) - 1; i >= 0; i-- {
			o := opts[i]
			if o == "no-new-privileges" {
				assert.Assert(t, so.noNewPrivileges, "%q", opts)
				break
			}
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				k, v, _ = strings.Cut(o, ":")
			}
			if k == "no-new-privileges" {
				b, _ := strconv.ParseBool(v)
				assert.Equal(t, so.noNewPrivileges, b, "%q", opts)
				break
			}
		}
	})
}
