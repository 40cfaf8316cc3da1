package errclass

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"testing"

	"github.com/berthd/berth/engine/httpstatus"
	"github.com/containerd/errdefs"
)

func TestWithKeepsClassAndCause(t *testing.T) {
	_, cause := os.Stat("/nonexistent/errclass")
	for _, tc := range []struct {
		name   string
		class  error
		is     func(error) bool
		status int
	}{
		{"invalid argument", errdefs.ErrInvalidArgument, errdefs.IsInvalidArgument, http.StatusBadRequest},
		{"unavailable", errdefs.ErrUnavailable, errdefs.IsUnavailable, http.StatusServiceUnavailable},
		{"conflict", errdefs.ErrConflict, errdefs.IsConflict, http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fmt.Errorf("outer: %w", With(tc.class, cause))
			if !tc.is(err) {
				t.Errorf("%v lost its class", err)
			}
			if got := httpstatus.FromError(err); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v lost its cause", err)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != "/nonexistent/errclass" {
				t.Errorf("errors.As does not find the cause's *PathError")
			}
			if err.Error() != "outer: "+cause.Error() {
				t.Errorf("message %q changed", err.Error())
			}
		})
	}
	if With(errdefs.ErrInvalidArgument, nil) != nil {
		t.Error("a nil error got classified")
	}
}
