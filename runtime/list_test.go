package runtime

import (
	"testing"

	"gotest.tools/v3/assert"
)

// The COMMAND column of docker ps, compared with what dockerd 20.10 and
// moby's daemon/container/view.go answer for the same containers.
func TestCommandLine(t *testing.T) {
	cases := []struct {
		path string
		args []string
		want string
	}{
		{"sleep", []string{"600"}, "sleep 600"},
		{"sh", nil, "sh"},
		{"sh", []string{}, "sh"},
		{"sh", []string{"-c", `trap "exit 0" TERM; sleep 100 & wait`}, `sh -c 'trap "exit 0" TERM; sleep 100 & wait'`},
		// quoted as it is: an argument with a quote of its own is not escaped
		{"sh", []string{"-c", "echo 'a b'"}, `sh -c 'echo 'a b''`},
		// only a space makes quotes; the path never gets them
		{"/bin/my prog", []string{"a\tb", "", "x y"}, "/bin/my prog a\tb  'x y'"},
	}
	for _, tc := range cases {
		assert.Equal(t, commandLine(&Record{Path: tc.path, Args: tc.args}), tc.want)
	}
}
