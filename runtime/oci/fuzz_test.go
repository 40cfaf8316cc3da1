package oci

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func FuzzResolveUser(f *testing.F) {
	for _, s := range []string{"", "root", "33", "www-data:users", "1234:5678", "nosuch", ":", "a:b:c", "-1", "0x10", " 33", "4294967296"} {
		f.Add(s, "users")
	}
	f.Fuzz(func(t *testing.T, spec, group string) {
		u, err := resolveUser(spec, []string{group}, []byte(testPasswd), []byte(testGroup))
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%q: error is not ErrInvalidArgument: %v", spec, err)
			}
			return
		}
		if len(u.AdditionalGids) == 0 || u.AdditionalGids[0] != u.GID {
			t.Fatalf("%q: primary group must come first: %+v", spec, u)
		}
		name, _, _ := strings.Cut(spec, ":")
		if n, err := strconv.Atoi(name); err == nil && uint32(n) != u.UID {
			t.Fatalf("%q: numeric user resolved to uid %d", spec, u.UID)
		}
	})
}

func FuzzParseTmpfsOptions(f *testing.F) {
	for _, s := range []string{"", "size=1m,mode=1777", "exec,suid", "ro,rw", "size=50%", "mpol=bind:0", "bind", "size=", "a=b=c", ",,,", "nr_inodes=1k,uid=0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		opts, err := ParseTmpfsOptions(data)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%q: error is not ErrInvalidArgument: %v", data, err)
			}
			return
		}
		for _, o := range opts {
			if o == "" || strings.ContainsAny(o, ", \t\n\x00") {
				t.Fatalf("%q: bad option %q in %q", data, o, opts)
			}
		}
		// parsing the result again changes nothing: options merge to a fixed point
		again, err := ParseTmpfsOptions(strings.Join(opts, ","))
		if err != nil {
			t.Fatalf("%q: result %q does not parse: %v", data, opts, err)
		}
		if !slices.Equal(again, opts) {
			t.Fatalf("%q: %q then %q", data, opts, again)
		}
	})
}
