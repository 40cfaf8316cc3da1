package runtime

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"testing"

	"github.com/berthd/berth/runtime/logfile"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLogAttrs(t *testing.T) {
	rec := func(opts map[string]string) *Record {
		return &Record{
			ID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Name: "/web-1",
			Image: "sha256:e1b23f0000000000000000000000000000000000000000000000000000000000",
			Config: &container.Config{
				Image:  "busybox",
				Labels: map[string]string{"app": "web", "a.b": "1", "c": "2"},
				Env:    []string{"PATH=/bin", "FOO=bar", "X1=y", "EMPTY="},
			},
			HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: opts}},
		}
	}
	cases := []struct {
		name string
		opts map[string]string
		want map[string]string
		err  string
	}{
		{"none", nil, nil, ""},
		{"labels and env by name", map[string]string{"labels": "app,nope", "env": "FOO,EMPTY,NOPE"},
			map[string]string{"app": "web", "FOO": "bar", "EMPTY": ""}, ""},
		{"regexes", map[string]string{"labels-regex": `^a\.`, "env-regex": "^X"}, map[string]string{"a.b": "1", "X1": "y"}, ""},
		{"tag as dockerd renders it", map[string]string{"tag": "{{.Name}}/{{.ID}}/{{.ImageName}}/{{.ImageID}}/{{.DaemonName}}/{{.FullID}}"},
			map[string]string{"tag": "web-1/0123456789ab/busybox/sha256:e1b23/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, ""},
		{"empty tag is none", map[string]string{"tag": ""}, nil, ""},
		{"bad tag field", map[string]string{"tag": "{{.Bogus}}"}, nil, `can't evaluate field Bogus`},
		{"bad tag syntax", map[string]string{"tag": "{{"}, nil, "unclosed action"},
		{"bad regex", map[string]string{"env-regex": "("}, nil, "missing closing )"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := logAttrs(rec(tc.opts))
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				assert.Check(t, errdefs.IsInvalidArgument(err), "a 400")
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(got, tc.want))
		})
	}
}

func TestParseLogOptions(t *testing.T) {
	cases := []struct {
		opts map[string]string
		want logfile.Rotation
		err  string
	}{
		{nil, logfile.Rotation{MaxFiles: 1}, ""},
		{map[string]string{"max-size": "1k"}, logfile.Rotation{MaxSize: 1000, MaxFiles: 1}, ""},
		{map[string]string{"max-size": "10m", "max-file": "3", "compress": "true"}, logfile.Rotation{MaxSize: 10_000_000, MaxFiles: 3, Compress: true}, ""},
		{map[string]string{"max-file": "3"}, logfile.Rotation{MaxFiles: 1}, ""},
		{map[string]string{"tag": "x", "labels": "a", "env": "B"}, logfile.Rotation{MaxFiles: 1}, ""},
		{map[string]string{"foo": "1"}, logfile.Rotation{}, "unknown log opt 'foo' for json-file log driver"},
		{map[string]string{"max-size": "abc"}, logfile.Rotation{}, "invalid size: 'abc'"},
		{map[string]string{"max-size": "0"}, logfile.Rotation{}, "max-size must be a positive number"},
		{map[string]string{"max-file": "0"}, logfile.Rotation{}, "max-file cannot be less than 1"},
		{map[string]string{"compress": "true"}, logfile.Rotation{}, "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{map[string]string{"max-size": "1k", "compress": "yes"}, logfile.Rotation{}, `strconv.ParseBool: parsing "yes": invalid syntax`},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.opts), func(t *testing.T) {
			got, err := ParseLogOptions(tc.opts)
			if tc.err != "" {
				assert.Error(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, got, tc.want)
		})
	}
}

// A bad option is the client's error and keeps the parser's error as its
// cause, in the parser's words.
func TestLogAttrsErrorKeepsCause(t *testing.T) {
	rec := &Record{ID: "0123456789abcdef", Name: "/x", Config: &container.Config{Labels: map[string]string{"a": "b"}},
		HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Config: map[string]string{"labels-regex": "a("}}}}
	_, err := logAttrs(rec)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	var syn *syntax.Error
	assert.Check(t, errors.As(err, &syn), "the regexp's error is not the cause of %v", err)
	assert.Check(t, err.Error() == syn.Error(), "message %q", err.Error())
}
