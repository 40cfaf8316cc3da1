// Package errclass wraps an error with an errdefs class and a message while
// keeping the error it wraps, so callers can still find the cause
// (errors.Is/As) and the class (errdefs.IsX), and the API answers with the
// class given here (httpstatus.FromError takes the outermost class).
//
// It replaces errdefs.ErrX.WithMessage("..." + err.Error()), which keeps the
// class but drops the cause.
package errclass

import "errors"

// Wrap returns an error of class (an errdefs sentinel such as
// errdefs.ErrInvalidArgument) that reads "msg: cause" ("cause" alone when msg
// is empty) and wraps both class and cause. A nil cause gives nil.
func Wrap(class error, msg string, cause error) error {
	if cause == nil {
		return nil
	}
	return &wrapped{class: class, msg: msg, cause: cause}
}

type wrapped struct {
	class error
	msg   string
	cause error
}

func (w *wrapped) Error() string {
	if w.msg == "" {
		return w.cause.Error()
	}
	return w.msg + ": " + w.cause.Error()
}

// Unwrap lists the class first: errors.Is and errors.As look at it before the
// cause, and so does the first-class-wins rule of Outermost.
func (w *wrapped) Unwrap() []error { return []error{w.class, w.cause} }

// Class is the class given to the outermost Wrap in err's tree (visited in
// errors.Is order: the error, then depth-first through what it wraps), or
// nil when err holds none. A cause that has a class of its own keeps it for
// errors.Is, but the class a caller wrapped it in is the one that counts.
func Class(err error) error {
	var w *wrapped
	if errors.As(err, &w) {
		return w.class
	}
	return nil
}
