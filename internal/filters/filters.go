// Package filters parses the `filters` query parameter of the Engine API
// ({"label":{"a=b":true}} or the legacy {"label":["a=b"]}) and matches values
// against it the way dockerd does.
package filters

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
)

// Args is a parsed filter set: key -> set of values. The zero value matches all.
type Args struct {
	fields map[string]map[string]bool
}

// New returns filters built from key/value pairs (for tests and internal callers).
func New(kv ...[2]string) Args {
	a := Args{fields: map[string]map[string]bool{}}
	for _, p := range kv {
		a.Add(p[0], p[1])
	}
	return a
}

// Parse parses the JSON text of a filters parameter. Empty text is no filter.
func Parse(s string) (Args, error) {
	a := Args{fields: map[string]map[string]bool{}}
	if strings.TrimSpace(s) == "" {
		return a, nil
	}
	if err := json.Unmarshal([]byte(s), &a.fields); err == nil {
		return a, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(s), &legacy); err != nil {
		return Args{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter: %v", err))
	}
	for k, vs := range legacy {
		for _, v := range vs {
			a.Add(k, v)
		}
	}
	return a, nil
}

// Add adds a value for key.
func (a *Args) Add(key, value string) {
	if a.fields == nil {
		a.fields = map[string]map[string]bool{}
	}
	if a.fields[key] == nil {
		a.fields[key] = map[string]bool{}
	}
	a.fields[key][value] = true
}

// Len is the number of filter keys.
func (a Args) Len() int { return len(a.fields) }

// Has reports whether key is filtered on.
func (a Args) Has(key string) bool { return len(a.fields[key]) > 0 }

// Get returns the values of key, sorted.
func (a Args) Get(key string) []string {
	out := make([]string, 0, len(a.fields[key]))
	for v := range a.fields[key] {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Validate rejects keys not in accepted, with dockerd's message.
func (a Args) Validate(accepted ...string) error {
	ok := map[string]bool{}
	for _, k := range accepted {
		ok[k] = true
	}
	for k := range a.fields {
		if !ok[k] {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	return nil
}

// ExactMatch reports whether source equals one of key's values (true when key is unset).
func (a Args) ExactMatch(key, source string) bool {
	vs := a.fields[key]
	if len(vs) == 0 {
		return true
	}
	return vs[source]
}

// FuzzyMatch reports whether source equals or starts with one of key's values.
func (a Args) FuzzyMatch(key, source string) bool {
	vs := a.fields[key]
	if len(vs) == 0 || vs[source] {
		return true
	}
	for v := range vs {
		if strings.HasPrefix(source, v) {
			return true
		}
	}
	return false
}

// Match reports whether source matches one of key's values, each read as a
// regular expression (dockerd's `name` filter), or contains it literally when
// it is not a valid expression.
func (a Args) Match(key, source string) bool {
	vs := a.fields[key]
	if len(vs) == 0 || vs[source] {
		return true
	}
	for v := range vs {
		re, err := regexp.Compile(v)
		if err != nil {
			if strings.Contains(source, v) {
				return true
			}
			continue
		}
		if re.MatchString(source) {
			return true
		}
	}
	return false
}

// MatchKVList reports whether labels satisfy every value of key: "k" (present),
// "k=v" (equal) or "k!=v" (absent or different). All values must hold (AND).
func (a Args) MatchKVList(key string, labels map[string]string) bool {
	for v := range a.fields[key] {
		if k, want, ok := strings.Cut(v, "!="); ok {
			if got, has := labels[k]; has && got == want {
				return false
			}
			continue
		}
		k, want, hasValue := strings.Cut(v, "=")
		got, has := labels[k]
		if !has || (hasValue && got != want) {
			return false
		}
	}
	return true
}

// GetBool reads a boolean filter such as dangling=true. It returns (value,
// set, error); anything but true/false/1/0 is a 400.
func (a Args) GetBool(key string) (bool, bool, error) {
	vs := a.Get(key)
	if len(vs) == 0 {
		return false, false, nil
	}
	var val bool
	for i, v := range vs {
		var b bool
		switch strings.ToLower(v) {
		case "true", "1":
			b = true
		case "false", "0":
			b = false
		default:
			return false, false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s=%s'", key, v))
		}
		if i > 0 && b != val {
			return false, false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s': conflicting values", key))
		}
		val = b
	}
	return val, true, nil
}
