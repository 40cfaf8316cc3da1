package registry

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	creference "go.podman.io/image/v5/docker/reference"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseNamed(t *testing.T) {
	cases := []struct {
		in, full, familiar string
		err                string
	}{
		{in: "busybox", full: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "busybox:1.36", full: "docker.io/library/busybox:1.36", familiar: "busybox:1.36"},
		{in: "library/busybox", full: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "docker.io/library/busybox:latest", full: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "team/app", full: "docker.io/team/app:latest", familiar: "team/app:latest"},
		{in: "127.0.0.1:5000/library/busybox", full: "127.0.0.1:5000/library/busybox:latest", familiar: "127.0.0.1:5000/library/busybox:latest"},
		{in: "localhost/x:y", full: "localhost/x:y", familiar: "localhost/x:y"},
		{
			in:       "busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3",
			full:     "docker.io/library/busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3",
			familiar: "busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3",
		},
		{
			// tag and digest: the digest wins, as in dockerd
			in:       "busybox:1@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3",
			full:     "docker.io/library/busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3",
			familiar: "busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3",
		},
		{in: "UPPER:case", err: "invalid reference format: repository name (library/UPPER) must be lowercase"},
		{in: "a b", err: "invalid reference format"},
		{in: "", err: "invalid reference format"},
		{in: "busybox:", err: "invalid reference format"},
		{in: "4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3", err: "cannot specify 64-byte hexadecimal strings"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			named, err := ParseNamed(tc.in)
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				assert.Check(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(named.String(), tc.full))
			assert.Check(t, is.Equal(familiar(named), tc.familiar))
		})
	}
}

func TestParseRepoTag(t *testing.T) {
	dgst := "sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3"
	cases := []struct {
		repo, tag, want, err string
	}{
		{repo: "busybox", want: "docker.io/library/busybox:latest"},
		{repo: "busybox", tag: "1", want: "docker.io/library/busybox:1"},
		{repo: "busybox:2", tag: "1", want: "docker.io/library/busybox:1"},
		{repo: "busybox", tag: dgst, want: "docker.io/library/busybox@" + dgst},
		{repo: "busybox@" + dgst, want: "docker.io/library/busybox@" + dgst},
		{repo: "busybox@" + dgst, tag: "1", err: "cannot combine"},
		{repo: "busybox", tag: "bad tag", err: "invalid tag format"},
		{repo: "UPPER", tag: "case", err: "repository name (library/UPPER) must be lowercase"},
	}
	for _, tc := range cases {
		t.Run(tc.repo+"|"+tc.tag, func(t *testing.T) {
			named, err := parseRepoTag(tc.repo, tc.tag)
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				assert.Check(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(named.String(), tc.want))
		})
	}
}

func TestSplitNames(t *testing.T) {
	tags, digests := splitNames([]string{
		"docker.io/library/busybox:latest",
		"docker.io/library/busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3",
		"127.0.0.1:5000/x/y:1",
		"not a name",
	})
	assert.DeepEqual(t, tags, []string{"busybox:latest", "127.0.0.1:5000/x/y:1"})
	assert.DeepEqual(t, digests, []string{"busybox@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3"})
}

func TestMatchReference(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"busybox", "docker.io/library/busybox:latest", true},
		{"busybox:latest", "docker.io/library/busybox:latest", true},
		{"busybox:1", "docker.io/library/busybox:latest", false},
		{"busy*", "docker.io/library/busybox:latest", true},
		{"*box", "docker.io/library/busybox:latest", true},
		{"*/busybox", "docker.io/library/busybox:latest", false},
		{"*/busybox", "docker.io/team/busybox:latest", true},
		{"*/library/busybox*", "127.0.0.1:5000/library/busybox:x", true},
		{"127.0.0.1:5000/*/*", "127.0.0.1:5000/library/busybox:x", true},
		{"other", "docker.io/library/busybox:latest", false},
	}
	for _, tc := range cases {
		named, err := reference.ParseNamed(tc.name)
		assert.NilError(t, err)
		got, err := matchReference(tc.pattern, named)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(got, tc.want), "%s ~ %s", tc.pattern, tc.name)
	}
	named, _ := reference.ParseNamed("docker.io/library/busybox:latest")
	_, err := matchReference("[", named)
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

func TestIsSingleReference(t *testing.T) {
	p := func(ss ...string) []reference.Named {
		var out []reference.Named
		for _, s := range ss {
			n, err := reference.ParseNamed(s)
			assert.NilError(t, err)
			out = append(out, n)
		}
		return out
	}
	d := "@sha256:4c7622c592ff4a0ca9f887b3e9e76af8a2e3b56a4b761c378906bbec101a49c3"
	assert.Check(t, !isSingleReference(nil))
	assert.Check(t, isSingleReference(p("docker.io/library/a:1")))
	assert.Check(t, !isSingleReference(p("docker.io/library/a:1", "docker.io/library/a:2")))
	assert.Check(t, isSingleReference(p("docker.io/library/a:1", "docker.io/library/a"+d)))
	assert.Check(t, !isSingleReference(p("docker.io/library/a:1", "docker.io/library/b"+d)))
	assert.Check(t, isSingleReference(p("docker.io/library/a"+d)))
}

func TestInsecure(t *testing.T) {
	set, err := parseInsecure([]string{"myreg:5000", "10.9.0.0/16", "http://plain.example/"})
	assert.NilError(t, err)
	cases := map[string]bool{
		"127.0.0.1:5000": true, // loopback is always insecure, as in dockerd
		"127.1.2.3":      true,
		"localhost:5000": true,
		"[::1]:5000":     true,
		"myreg:5000":     true,
		"10.9.3.4:443":   true,
		"10.10.0.1":      false,
		"plain.example":  true,
		"docker.io":      false,
		"192.0.2.1:5000": false,
	}
	for host, want := range cases {
		assert.Check(t, is.Equal(set.isInsecure(host), want), host)
	}
	_, err = parseInsecure([]string{"bad/path/x"})
	assert.Check(t, err != nil)
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "docker.io",
		"https://index.docker.io/v1/": "docker.io",
		"127.0.0.1:5000":              "127.0.0.1:5000",
		"http://127.0.0.1:5000/v2/":   "127.0.0.1:5000",
		"registry.example.com/x":      "registry.example.com",
	} {
		assert.Check(t, is.Equal(registryHost(in), want), in)
	}
}

func TestDecodeAuth(t *testing.T) {
	a, err := DecodeAuth("")
	assert.NilError(t, err)
	assert.Check(t, a == nil)
	// {"username":"u","password":"p~?"} in base64url, with and without padding
	for _, h := range []string{
		"eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InB-PyJ9",
		"eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InB+PyJ9",
	} {
		a, err = DecodeAuth(h)
		assert.NilError(t, err, h)
		assert.Check(t, is.Equal(a.Username, "u"))
		assert.Check(t, is.Equal(a.Password, "p~?"))
	}
	_, err = DecodeAuth("!!!")
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

func FuzzParseNamed(f *testing.F) {
	for _, s := range []string{"busybox", "UPPER:case", "127.0.0.1:5000/library/busybox:latest", "a@sha256:" + string(make([]byte, 64)), "x/y/z:1", ":", "@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		named, err := ParseNamed(s)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%q: error not classified: %v", s, err)
			}
			return
		}
		// A parsed name is fully qualified and survives a round trip
		// through its familiar form and through storage.
		again, err := ParseNamed(familiar(named))
		if err != nil || again.String() != named.String() {
			t.Fatalf("%q: familiar %q reparsed as %v, %v", s, familiar(named), again, err)
		}
		if _, ok := storedName(named.String()); !ok {
			t.Fatalf("%q: stored name %q does not parse", s, named.String())
		}
		if _, err := creference.Parse(named.String()); err != nil {
			t.Fatalf("%q: containers/image rejects %q: %v", s, named.String(), err)
		}
	})
}
