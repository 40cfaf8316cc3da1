// Package errclass gives an error an errdefs class without losing it: the
// classified error says what the cause says, and errors.Is/As find both the
// class (so httpstatus.FromError maps it) and the cause with everything it
// wraps (so a caller can still tell an os.ErrNotExist or an errno). Use it
// where the message must stay the cause's own, as Docker words it; where a
// prefix is wanted, fmt.Errorf("prefix: %w", err) first.
package errclass

// With classifies err as class, an errdefs sentinel such as
// errdefs.ErrInvalidArgument. A nil err stays nil.
func With(class, err error) error {
	if err == nil {
		return nil
	}
	return classified{class: class, cause: err}
}

type classified struct{ class, cause error }

func (e classified) Error() string { return e.cause.Error() }

func (e classified) Unwrap() []error { return []error{e.class, e.cause} }
