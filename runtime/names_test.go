package runtime

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fallbackTo is a name fallback that knows a fixed set of names, as compose
// knows service names; "ambiguous" answers as compose does for a service
// two projects have.
type fallbackTo map[string]string

func (f fallbackTo) Resolve(name string, _ []Candidate) (string, error) {
	if name == "ambiguous" || f[name] == "ambiguous" {
		return "", errdefs.ErrInvalidArgument.WithMessage(`ambiguous name "` + name + `"`)
	}
	if id, ok := f[name]; ok {
		return id, nil
	}
	return "", errdefs.ErrNotFound.WithMessage("No such container: " + name)
}

// uniquePrefix is the shortest prefix of id that no other id starts with.
func uniquePrefix(id string, others ...string) string {
	for n := 1; n <= len(id); n++ {
		p := id[:n]
		unique := true
		for _, o := range others {
			if strings.HasPrefix(o, p) {
				unique = false
			}
		}
		if unique {
			return p
		}
	}
	return id
}

// TestLookupOrder: a compose name beats a container id that happens to
// start with it; exact names and full ids beat both; prefixes still work
// for what no compose name claims. The collision is made on purpose: the
// "service name" is a unique prefix of another container's id.
func TestLookupOrder(t *testing.T) {
	h := newHarness(t)
	a := create(t, h, "alpha", nil, "true")
	b := create(t, h, "bravo", nil, "true")
	c := create(t, h, "charlie", nil, "true")
	svc := uniquePrefix(a, b, c) // a hex-looking service name, a's id prefix
	free := uniquePrefix(c, a, b)
	amb := uniquePrefix(b, a, c)
	h.s.d.Names = fallbackTo{svc: b, "alpha": c, amb: "ambiguous"}

	for _, tc := range []struct {
		name, want, err string
	}{
		{name: svc, want: b},          // compose's service, not a's id prefix
		{name: "alpha", want: a},      // an exact container name beats a compose name
		{name: "/alpha", want: a},     //
		{name: a, want: a},            // a full id beats everything
		{name: free, want: c},         // a prefix nobody's compose name
		{name: a[:12], want: a},       // the short id docker ps shows
		{name: amb, err: "ambiguous"}, // an ambiguous compose name is an error, not a prefix
		{name: "nosuch", err: "No such container: nosuch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.s.lookup(tc.name)
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(got.rec.ID, tc.want))
		})
	}
}
