package transfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berth/registry/imagewire"
)

func TestPullError(t *testing.T) {
	hub, _ := reference.ParseDockerRef("nosuch/repo")
	private, _ := reference.ParseDockerRef("127.0.0.1:5000/library/nope:1")
	manifestUnknown := fmt.Errorf("reading manifest 1: %w", errcode.Error{Code: v2.ErrorCodeManifestUnknown, Message: "manifest unknown"})
	unauthorized := fmt.Errorf("reading manifest: %w", errcode.Error{Code: errcode.ErrorCodeUnauthorized, Message: "authentication required"})
	denied := errcode.Error{Code: errcode.ErrorCodeDenied, Message: "requested access to the resource is denied"}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name  string
		named reference.Named
		err   error
		class func(error) bool
		msg   string
	}{
		{"manifest unknown", private, manifestUnknown, errdefs.IsNotFound, "manifest for 127.0.0.1:5000/library/nope:1 not found: manifest unknown: manifest unknown"},
		{"hub 401", hub, unauthorized, errdefs.IsNotFound, "pull access denied for nosuch/repo, repository does not exist or may require 'docker login': unauthorized: authentication required"},
		{"hub denied", hub, denied, errdefs.IsNotFound, "pull access denied for nosuch/repo, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"},
		{"private 401", private, unauthorized, errdefs.IsPermissionDenied, "pull access denied for 127.0.0.1:5000/library/nope:1: unauthorized: authentication required"},
		{"down", private, fmt.Errorf("pinging container registry: %w", refused), errdefs.IsUnavailable, "registry 127.0.0.1:5000 is unreachable"},
		{"canceled", private, context.Canceled, func(err error) bool { return errors.Is(err, context.Canceled) }, "context canceled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := pullError(tc.err, imagewire.Request{Ref: tc.named.String()}, tc.named)
			assert.Check(t, tc.class(err), "%T %v", err, err)
			assert.Check(t, is.ErrorContains(err, tc.msg))
		})
	}
}
