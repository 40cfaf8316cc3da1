// Package httpstatus turns classified errors into HTTP status codes. It is the
// only place in berth that knows how an error class maps to a status.
package httpstatus

import (
	"context"
	"errors"
	"net/http"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
)

// FromError returns the HTTP status code for err, by errdefs class.
// Unclassified errors are internal server errors. When err holds an
// errclass.Wrap, the class given there decides, even over a class its cause
// has of its own.
func FromError(err error) int {
	if class := errclass.Class(err); class != nil {
		return fromClass(class)
	}
	return fromClass(err)
}

func fromClass(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errdefs.IsNotModified(err):
		return http.StatusNotModified
	case errdefs.IsInvalidArgument(err), errdefs.IsOutOfRange(err):
		return http.StatusBadRequest
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsConflict(err), errdefs.IsAlreadyExists(err), errdefs.IsFailedPrecondition(err):
		return http.StatusConflict
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsUnavailable(err), errdefs.IsResourceExhausted(err):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return 499 // client closed request; nobody reads the answer
	default:
		return http.StatusInternalServerError
	}
}

// ToClass is the errdefs class FromError answers with status, for an
// error that crossed a process boundary as a status (berth-buildkitd's
// answers); an unknown status is errdefs.ErrUnknown.
func ToClass(status int) error {
	switch status {
	case http.StatusNotModified:
		return errdefs.ErrNotModified
	case http.StatusBadRequest:
		return errdefs.ErrInvalidArgument
	case http.StatusUnauthorized:
		return errdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return errdefs.ErrPermissionDenied
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusConflict:
		return errdefs.ErrConflict
	case http.StatusNotImplemented:
		return errdefs.ErrNotImplemented
	case http.StatusServiceUnavailable:
		return errdefs.ErrUnavailable
	case 499:
		return context.Canceled
	default:
		return errdefs.ErrUnknown
	}
}
