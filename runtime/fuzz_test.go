package runtime

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
)

// logOpts reads "key=value" lines (--log-opt as the CLI sends them).
func logOpts(s string) map[string]string {
	opts := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			opts[k] = v
		}
	}
	return opts
}

// FuzzLogOptions: json-file --log-opt, as create and berthd's --log-opt
// check them. A rotation taken keeps at least one file, rotates by size
// only when max-size is set (and then by that size), and compresses only
// with a size and more than one file; unknown keys are refused. The
// attributes of a container's log come from its labels and environment
// (or the tag), and bad expressions or templates are ErrInvalidArgument.
func FuzzLogOptions(f *testing.F) {
	for _, s := range []string{
		"max-size=10m\nmax-file=3\ncompress=true", "max-size=1k", "max-file=0", "compress=true", "max-size=-1",
		"max-size=1.5GiB\nmax-file=2\ncompress=1", "labels=app,c\nenv=FOO", "labels-regex=^a\\.\nenv-regex=(", "tag={{.Name}}/{{.ID}}",
		"tag={{.Bogus}}", "tag={{", "mode=non-blocking", "max-file=99999999999999999999", "max-size=9223372036854775807",
		"tag={{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		opts := logOpts(s)
		r, err := ParseLogOptions(opts)
		if err == nil {
			for k := range opts {
				assert.Assert(t, strings.Contains(",max-file,max-size,compress,labels,labels-regex,env,env-regex,tag,", ","+k+","), "%q taken", k)
			}
			assert.Assert(t, r.MaxFiles >= 1 && r.MaxSize >= 0, "%+v", r)
			if v, ok := opts["max-size"]; ok {
				n, err := units.FromHumanSize(v)
				assert.NilError(t, err)
				assert.Equal(t, r.MaxSize, n)
			} else {
				assert.Equal(t, r.MaxSize, int64(0))
				assert.Equal(t, r.MaxFiles, 1, "max-file counts only with max-size")
			}
			if r.Compress {
				assert.Assert(t, r.MaxFiles >= 2 && r.MaxSize > 0, "%+v", r)
			}
			again, err := ParseLogOptions(opts)
			assert.NilError(t, err)
			assert.Equal(t, again, r)
		}

		rec := &Record{
			ID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Name: "/web-1", Image: "sha256:e1b2",
			Config: &container.Config{
				Image:  "busybox",
				Labels: map[string]string{"app": "web", "a.b": "1"},
				Env:    []string{"PATH=/bin", "FOO=bar", "EMPTY=", "NOEQ"},
			},
			HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: opts}},
		}
		attrs, err := logAttrs(rec)
		if err != nil {
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%v", err)
			return
		}
		env := map[string]string{"PATH": "/bin", "FOO": "bar", "EMPTY": ""}
		for k, v := range attrs {
			if k == "tag" && opts["tag"] != "" {
				continue
			}
			lv, isLabel := rec.Config.Labels[k]
			ev, isEnv := env[k]
			assert.Assert(t, (isLabel && lv == v) || (isEnv && ev == v), "attribute %s=%q from nowhere", k, v)
		}
	})
}
