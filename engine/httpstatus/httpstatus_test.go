package httpstatus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func TestFromError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, http.StatusOK},
		{"plain", errors.New("boom"), http.StatusInternalServerError},
		{"not found", errdefs.ErrNotFound.WithMessage("No such container: x"), http.StatusNotFound},
		{"wrapped not found", fmt.Errorf("lookup: %w", errdefs.ErrNotFound), http.StatusNotFound},
		{"invalid", errdefs.ErrInvalidArgument, http.StatusBadRequest},
		{"class given over a cause", errclass.Wrap(errdefs.ErrConflict, "in use", errdefs.ErrNotFound.WithMessage("no such layer")), http.StatusConflict},
		{"wrapped class given", fmt.Errorf("start: %w", errclass.Wrap(errdefs.ErrInvalidArgument, "bad", errors.New("x"))), http.StatusBadRequest},
		{"conflict", errdefs.ErrConflict, http.StatusConflict},
		{"exists", errdefs.ErrAlreadyExists, http.StatusConflict},
		{"not modified", errdefs.ErrNotModified, http.StatusNotModified},
		{"unauthorized", errdefs.ErrUnauthenticated, http.StatusUnauthorized},
		{"forbidden", errdefs.ErrPermissionDenied, http.StatusForbidden},
		{"not implemented", errdefs.ErrNotImplemented, http.StatusNotImplemented},
		{"unavailable", errdefs.ErrUnavailable, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, FromError(tc.err), tc.want)
		})
	}
}

func TestWithMessageKeepsText(t *testing.T) {
	err := errdefs.ErrNotFound.WithMessage("No such container: x")
	assert.Equal(t, err.Error(), "No such container: x")
}

// TestToClassRoundTrip: a class sent as its status comes back as a class
// that FromError answers with the same status.
func TestToClassRoundTrip(t *testing.T) {
	for _, class := range []error{
		errdefs.ErrNotModified, errdefs.ErrInvalidArgument, errdefs.ErrOutOfRange, errdefs.ErrUnauthenticated,
		errdefs.ErrPermissionDenied, errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrAlreadyExists,
		errdefs.ErrFailedPrecondition, errdefs.ErrNotImplemented, errdefs.ErrUnavailable,
		errdefs.ErrResourceExhausted, errdefs.ErrInternal, errdefs.ErrUnknown, context.Canceled,
		errors.New("unclassified"),
	} {
		status := FromError(class)
		if got := FromError(ToClass(status)); got != status {
			t.Errorf("%T: status %d came back as %d", class, status, got)
		}
	}
}
