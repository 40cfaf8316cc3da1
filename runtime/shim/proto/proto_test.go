package proto

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

// The exit code of a process the OCI runtime could not start is decided
// here and nowhere else; berthd reads it from the ProcessError.
func TestProcessErrorExitCode(t *testing.T) {
	for _, tc := range []struct {
		msg   string
		code  int
		class error
	}{
		{`exec: "nosuchcmd": executable file not found in $PATH`, 127, errdefs.ErrInvalidArgument},
		{`exec: "/bin/nope": stat /bin/nope: no such file or directory`, 127, errdefs.ErrInvalidArgument},
		{`chdir to cwd ("/etc/hostname") set in config.json failed: not a directory`, 127, errdefs.ErrInvalidArgument},
		{`exec: "/etc": Permission Denied`, 126, errdefs.ErrInvalidArgument},
		{`exec /bin/x: exec format error`, 126, errdefs.ErrInvalidArgument},
		{`exec: "/etc": is a directory`, 126, errdefs.ErrInvalidArgument},
		{`unable to apply cgroup configuration`, 128, errdefs.ErrUnknown},
		{``, 128, errdefs.ErrUnknown},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			err := NewProcessError(tc.msg)
			if err.ExitCode != tc.code {
				t.Errorf("exit code %d, want %d", err.ExitCode, tc.code)
			}
			if err.Error() != tc.msg {
				t.Errorf("message %q, want the runtime's text", err.Error())
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("class: %v is not %v", err, tc.class)
			}
		})
	}
}
