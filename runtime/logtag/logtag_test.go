package logtag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"text/template"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func info() *Info {
	return &Info{
		Config:              map[string]string{"tag": "x", "max-size": "1m"},
		ContainerID:         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		ContainerName:       "/web-1",
		ContainerEntrypoint: "/bin/sh",
		ContainerArgs:       []string{"-c", "echo hi"},
		ContainerImageID:    "sha256:e1b23f0000000000000000000000000000000000000000000000000000000000",
		ContainerImageName:  "busybox:latest",
		ContainerCreated:    time.Date(2026, 12, 7, 8, 0, 0, 5, time.UTC),
		ContainerEnv:        []string{"PATH=/bin", "FOO=bar"},
		ContainerLabels:     map[string]string{"app": "web", "com.docker.compose.service": "web", "empty": ""},
		LogPath:             "/var/lib/berth/containers/0123/0123-json.log",
		DaemonName:          "docker",
	}
}

// oracle renders tmpl as dockerd does: text/template over the same Info
// (its fields and methods are dockerd's logger.Info's) with dockerd's
// template functions.
func oracle(tmpl string, i *Info) (string, error) {
	funcs := template.FuncMap{
		"json": func(v any) string {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(v)
			return strings.TrimSpace(b.String())
		},
		"split": strings.Split, "join": strings.Join, "title": strings.Title, //nolint:staticcheck // dockerd's
		"lower": strings.ToLower, "upper": strings.ToUpper,
		"pad": func(s string, l, r int) string {
			if s == "" {
				return s
			}
			return strings.Repeat(" ", l) + s + strings.Repeat(" ", r)
		},
		"truncate": func(s string, n int) string {
			if len(s) < n {
				return s
			}
			return s[:n]
		},
	}
	t, err := template.New(Name).Funcs(funcs).Parse(tmpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, i); err != nil {
		return "", err
	}
	return b.String(), nil
}

// exprs are actions' pipelines real tags and mistakes use; each is checked
// alone and in random templates against the oracle.
var exprs = []string{
	".ID", ".FullID", ".Name", ".ImageID", ".ImageFullID", ".ImageName", ".Command", ".DaemonName", ".Hostname",
	".ContainerID", ".ContainerName", ".ContainerEntrypoint", ".ContainerArgs", ".ContainerImageID",
	".ContainerImageName", ".ContainerCreated", ".ContainerEnv", ".ContainerLabels", ".LogPath", ".Config",
	".ContainerLabels.app", ".ContainerLabels.nope", ".Config.tag", ".Name.x", ".Bogus",
	`index .ContainerLabels "com.docker.compose.service"`, `index .ContainerLabels "nope"`, "index .ContainerArgs 1",
	"index .ContainerArgs 5", `index .ContainerArgs "a"`, `index .Name 0`,
	".Name | upper", ".Name | lower", `.Name | title`, ".ImageName | upper | lower", `"a b-c" | title`,
	`printf "%s-%s" .Name .ID`, `printf "%d" 3`, `printf .Name`, `print .Name 3 true`, `println .Name`,
	"len .ContainerEnv", "len .Name", "len .ContainerLabels", "len 3",
	`join .ContainerArgs ","`, `split .Name "-"`, `join (split .Name "-") "_"`, `split .ContainerArgs ","`,
	"truncate .ID 4", "truncate .Name 100", `truncate .Name "x"`, "pad .Name 1 2", `pad (index .ContainerLabels "empty") 1 1`,
	"json .ContainerLabels", "json .ContainerArgs", "json .Name", "json .ContainerCreated",
	`eq .Name "web-1"`, `eq .Name "a" "web-1"`, `ne .Name "web-1"`, `eq 1 1`, `lt 1 2`, `ge 2 3`, `lt 1 2.5`,
	`eq .Name 1`, `and .Name ""`, `or "" .Name`, `and .Name .ID`, "not .Name", `not ""`, "or", "not",
	"3", "1.5", "true", `"lit"`, "nil", "upper", `upper 3`, ".Name 1",
	`.Name | printf "%s!"`, `(.Name)`, `(upper .Name) | lower`,
}

func TestAgainstTextTemplate(t *testing.T) {
	check := func(tmpl string) {
		t.Helper()
		want, werr := oracle(tmpl, info())
		got, gerr := Render(tmpl, info())
		if werr != nil {
			assert.Check(t, gerr != nil, "%q: text/template fails (%v), Render gave %q", tmpl, werr, got)
			return
		}
		assert.Check(t, gerr == nil, "%q: text/template gives %q, Render fails: %v", tmpl, want, gerr)
		assert.Check(t, is.Equal(got, want), "%q", tmpl)
	}
	for _, e := range exprs {
		check("{{" + e + "}}")
		check("{{if " + e + "}}yes{{else}}no{{end}}")
	}
	for _, tmpl := range []string{
		"", "plain", "{{.ImageName}}/{{.Name}}/{{.ID}}", "{{- .Name -}} x {{- .ID}}", "{{/* a comment */}}{{.Name}}",
		"{{if eq .Name \"a\"}}a{{else if eq .Name \"web-1\"}}web{{else}}other{{end}}",
		"{{if .ContainerLabels.nope}}x{{end}}", "{{", "{{.Name", "{{end}}", "{{nosuch .Name}}", "{{.Name}}}}",
	} {
		check(tmpl)
	}
	// random templates of text and actions
	rng := rand.New(rand.NewPCG(7, 11))
	for range 2000 {
		var b strings.Builder
		for range 1 + rng.IntN(4) {
			switch rng.IntN(4) {
			case 0:
				b.WriteString([]string{"x", "-", " ", "/", "{", "}"}[rng.IntN(6)])
			case 1:
				fmt.Fprintf(&b, "{{if %s}}%s{{else}}%s{{end}}", exprs[rng.IntN(len(exprs))], "{{"+exprs[rng.IntN(len(exprs))]+"}}", "n")
			default:
				fmt.Fprintf(&b, "{{%s}}", exprs[rng.IntN(len(exprs))])
			}
		}
		check(b.String())
	}
}

// Errors are text/template's for syntax and in its form for execution,
// naming dockerd's type for a field that is not there.
func TestErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{{":                              "template: log-tag:1: unclosed action",
		"{{nosuch}}":                      `template: log-tag:1: function "nosuch" not defined`,
		"x{{.Bogus}}":                     `template: log-tag:1:3: executing "log-tag" at <.Bogus>: can't evaluate field Bogus in type *logger.Info`,
		"{{range .ContainerEnv}}x{{end}}": "is not supported in a log tag",
		"{{with .Name}}x{{end}}":          "is not supported in a log tag",
		"{{$x := .Name}}{{$x}}":           "variables are not supported in a log tag",
		"{{index .ContainerArgs 9}}":      "index out of range: 9",
	} {
		_, err := Render(tmpl, info())
		assert.Check(t, is.ErrorContains(err, want), "%q", tmpl)
	}
}

func TestDockerExample(t *testing.T) {
	got, err := Render("{{.ImageName}}/{{.Name}}/{{.ID}}", info())
	assert.NilError(t, err)
	assert.Equal(t, got, "busybox:latest/web-1/0123456789ab")
}

// FuzzRender: no template makes Render panic, and where text/template
// renders, Render renders the same or refuses.
func FuzzRender(f *testing.F) {
	for _, e := range exprs {
		f.Add("{{" + e + "}}")
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		got, err := Render(tmpl, info())
		if err != nil {
			return
		}
		want, werr := oracle(tmpl, info())
		if werr == nil && got != want {
			t.Fatalf("%q: Render %q, text/template %q", tmpl, got, want)
		}
	})
}
