package httputil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
)

// ParseForm parses query and form values; a malformed query is a 400.
func ParseForm(r *http.Request) error {
	if r == nil {
		return nil
	}
	if err := r.ParseForm(); err != nil && !strings.HasPrefix(err.Error(), "mime:") {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	return nil
}

// BoolValue reads a boolean query parameter the way dockerd does: anything
// but "", "0", "no", "false" and "none" is true.
func BoolValue(r *http.Request, k string) bool {
	s := strings.ToLower(strings.TrimSpace(r.FormValue(k)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// BoolValueOrDefault is BoolValue with a default for an absent parameter.
func BoolValueOrDefault(r *http.Request, k string, d bool) bool {
	if _, ok := r.Form[k]; !ok {
		return d
	}
	return BoolValue(r, k)
}

// Int64Value parses an integer query parameter; absent or empty gives def.
func Int64Value(r *http.Request, k string, def int64) (int64, error) {
	s := strings.TrimSpace(r.FormValue(k))
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid value for %s: %q: must be an integer", k, s))
	}
	return v, nil
}

// MaxJSONBody bounds a JSON request body (a create, a network, an exec):
// the largest real ones are a few hundred KiB, and a client must not make
// the daemon buffer gigabytes of JSON.
const MaxJSONBody = 16 << 20

// ReadJSON decodes the request body into v. An empty body is allowed when
// allowEmpty is set (v keeps its zero value); malformed JSON is a 400.
func ReadJSON(r *http.Request, v any, allowEmpty bool) error {
	if err := checkJSONType(r); err != nil {
		return err
	}
	body := &io.LimitedReader{R: r.Body, N: MaxJSONBody + 1}
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		if body.N <= 0 {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("request body is larger than %d MiB", MaxJSONBody>>20))
		}
		if errors.Is(err, io.EOF) {
			if allowEmpty {
				return nil
			}
			return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: request body is empty")
		}
		return errclass.Wrap(errdefs.ErrInvalidArgument, "invalid JSON", err)
	}
	return nil
}

// checkJSONType applies dockerd's rule to a request body's Content-Type: it
// must be application/json (parameters such as charset allowed). A request
// without a body may say anything (the docker CLI's attach says
// text/plain); unlike dockerd, a body without any Content-Type is read as
// JSON, as some old clients send it.
func checkJSONType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" || r.ContentLength == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("malformed Content-Type header (%s): %v", ct, err))
	}
	if mt != "application/json" {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unsupported Content-Type header (%s): must be 'application/json'", ct))
	}
	return nil
}

// WriteJSONBody writes v as JSON after the status line was already sent.
func WriteJSONBody(w http.ResponseWriter, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteJSON writes v as JSON with the given status code.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
