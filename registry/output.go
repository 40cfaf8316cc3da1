package registry

import "github.com/moby/moby/api/types/jsonstream"

// Output receives the JSON progress messages of a pull, push or load; the
// engine's JSONStream is one.
type Output interface {
	Send(v any) error
}

// StartFunc is called once an operation has checked everything that can
// fail with a proper status code (the reference, the registry's answer for
// the manifest, the archive's format). It starts the response stream;
// errors after it go into the stream.
type StartFunc func() Output

func errorMessage(err error) jsonstream.Message {
	return jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}}
}

// ErrorMessage is the JSON stream form of an error that happens after a
// stream started: {"errorDetail":{"message":...},"error":...}.
func ErrorMessage(err error) any {
	return struct {
		jsonstream.Message
		ErrorText string `json:"error,omitempty"`
	}{errorMessage(err), err.Error()}
}
