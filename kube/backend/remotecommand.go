package backend

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// Executor runs a command in a pod's container and streams it: the
// cluster's pods/exec through remotecommand in berthd, a fake in tests.
type Executor interface {
	// Exec returns when the command ended: nil for exit code 0, an error
	// ExitCode reads for another, any other error when it did not run.
	Exec(ctx context.Context, req ExecRequest, streams remotecommand.StreamOptions) error
}

// ExecRequest is a pods/exec request, or with Attach a pods/attach one
// (no Cmd: the streams of the container's own process).
type ExecRequest struct {
	Namespace, Pod, Container string
	Cmd                       []string
	Stdin, Stdout, Stderr     bool
	TTY                       bool
	Attach                    bool
}

// ExitCode is the exit code of a command an Executor ran: the non-zero exit
// remotecommand reports as an error (kubectl maps utilexec.CodeExitError
// the same way); ok is false when err says the command did not run.
func ExitCode(err error) (code int, ok bool) {
	if err == nil {
		return 0, true
	}
	var ee utilexec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), true
	}
	return 0, false
}

// remoteExecutor is kubectl exec's (and attach's) executor: the websocket protocol, with
// SPDY when the API server (or a proxy) does not upgrade to websockets.
type remoteExecutor struct {
	cfg  *rest.Config
	core rest.Interface
}

// execCodec encodes PodExecOptions as query parameters; a scheme of the
// core group only (client-go's scheme package would link every group).
var execCodec = func() k8sruntime.ParameterCodec {
	s := k8sruntime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	return k8sruntime.NewParameterCodec(s)
}()

func (r remoteExecutor) Exec(ctx context.Context, req ExecRequest, streams remotecommand.StreamOptions) error {
	var opts k8sruntime.Object = &corev1.PodExecOptions{
		Container: req.Container, Command: req.Cmd,
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr, TTY: req.TTY,
	}
	sub := "exec"
	if req.Attach {
		sub, opts = "attach", &corev1.PodAttachOptions{
			Container: req.Container,
			Stdin:     req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr, TTY: req.TTY,
		}
	}
	u := r.core.Post().Resource("pods").Namespace(req.Namespace).Name(req.Pod).SubResource(sub).
		VersionedParams(opts, execCodec).URL()
	spdy, err := remotecommand.NewSPDYExecutor(r.cfg, "POST", u)
	if err != nil {
		return err
	}
	ws, err := remotecommand.NewWebSocketExecutor(r.cfg, "GET", u.String())
	if err != nil {
		return err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, streams)
}

// noExecutor is a Client without a REST config (a fake clientset): exec
// answers 501.
type noExecutor struct{}

func (noExecutor) Exec(_ context.Context, req ExecRequest, _ remotecommand.StreamOptions) error {
	if req.Attach {
		return notImplemented("attach without a REST config")
	}
	return notImplemented("exec without a REST config")
}
