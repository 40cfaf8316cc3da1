package runtime

import (
	"errors"
	"fmt"
	"testing"

	"github.com/berthd/berth/runtime/shim/proto"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

// A failed start records the code the shim classified, whatever the text of
// the error around it; a failure that is not the runtime's refusal of the
// process is 128.
func TestExitCodeFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"not found", &proto.ProcessError{Message: "whatever", ExitCode: 127}, 127},
		{"not executable", &proto.ProcessError{Message: "whatever", ExitCode: 126}, 126},
		{"wrapped", fmt.Errorf("start: %w", &proto.ProcessError{Message: "x", ExitCode: 126}), 126},
		{"other runtime refusal", proto.NewProcessError("cgroup: device busy"), 128},
		{"text is not read", errors.New("open /x: no such file or directory"), 128},
		{"mount", errdefs.ErrNotFound.WithMessage("permission denied"), 128},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, exitCodeFor(tc.err), tc.code)
		})
	}
}
