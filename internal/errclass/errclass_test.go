package errclass

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/containerd/errdefs"
)

func TestWrapKeepsClassAndCause(t *testing.T) {
	cause := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	err := Wrap(errdefs.ErrInvalidArgument, "invalid image archive", cause)
	if got, want := err.Error(), "invalid image archive: open /x: file does not exist"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if !errdefs.IsInvalidArgument(err) {
		t.Error("class lost")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("cause lost for errors.Is")
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/x" {
		t.Error("cause lost for errors.As")
	}
	if Class(fmt.Errorf("load: %w", err)) != errdefs.ErrInvalidArgument {
		t.Error("Class does not see through a further wrap")
	}
	if got := Wrap(errdefs.ErrNotFound, "", errors.New("gone")).Error(); got != "gone" {
		t.Errorf("empty msg: %q", got)
	}
	if Wrap(errdefs.ErrNotFound, "x", nil) != nil {
		t.Error("nil cause must give nil")
	}
}

func TestOutermostClassWins(t *testing.T) {
	inner := Wrap(errdefs.ErrNotFound, "no such layer", errors.New("x"))
	outer := Wrap(errdefs.ErrInvalidArgument, "invalid image archive", inner)
	if Class(outer) != errdefs.ErrInvalidArgument {
		t.Errorf("Class = %v, want the outer class", Class(outer))
	}
	if !errdefs.IsNotFound(outer) {
		t.Error("the cause's own class must stay visible to errors.Is")
	}
	if Class(errors.New("plain")) != nil || Class(errdefs.ErrConflict) != nil {
		t.Error("Class of an error without a Wrap must be nil")
	}
}
