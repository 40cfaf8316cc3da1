package backend

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/runtime"
)

// attachBackend is a synced backend over pods with the fake executor.
func attachBackend(t *testing.T, fx *fakeExecutor, pods ...corev1.Pod) (*Backend, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	for i := range pods {
		_, err := cs.CoreV1().Pods(pods[i].Namespace).Create(context.Background(), &pods[i], metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	b, err := New(Deps{Client: cs, Now: func() time.Time { return t0 }, Exec: fx})
	assert.NilError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	assert.NilError(t, b.Sync(ctx))
	return b, cs
}

// docker attach through the engine's containers router: the hijacked
// stream, multiplexed, to pods/attach of the pod's main container with the
// streams asked for (stdin since the container keeps it open).
func TestEngineAttachThroughRouter(t *testing.T) {
	fx := &fakeExecutor{run: func(req ExecRequest, so remotecommand.StreamOptions) error {
		in, _ := io.ReadAll(so.Stdin)
		_, _ = fmt.Fprintf(so.Stdout, "got %s", in)
		_, _ = io.WriteString(so.Stderr, "warn\n")
		return nil
	}}
	pods := shopPods()
	pods[0].Spec.Containers[0].Stdin = true
	b, _ := attachBackend(t, fx, pods...)
	srv := engineServer(t, b)
	conn, br := attachStream(t, srv)
	_, err := io.WriteString(conn, "hello")
	assert.NilError(t, err)
	assert.NilError(t, conn.(*net.TCPConn).CloseWrite())
	stdout, stderr := demux(t, br)
	assert.Equal(t, stdout, "got hello")
	assert.Equal(t, stderr, "warn\n")
	assert.DeepEqual(t, fx.last(), ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Stdin: true, Stdout: true, Stderr: true, Attach: true})

	// what cannot be expressed, or found, answers in Docker's words
	for _, tc := range []struct {
		query string
		code  int
		msg   string
	}{
		{"stream=1&stdout=1&detachKeys=ctrl-pq", http.StatusBadRequest, "Invalid detach keys (ctrl-pq) provided"},
		{"stream=1&stdout=1", http.StatusNotFound, "No such container: nope"},
	} {
		ref := "shop-db-1"
		if tc.code == http.StatusNotFound {
			ref = "nope"
		}
		resp, err := http.Post(srv.URL+"/v1.56/containers/"+ref+"/attach?"+tc.query, "", nil)
		assert.NilError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, tc.code, string(body))
		assert.Assert(t, strings.Contains(string(body), tc.msg), string(body))
	}
}

// engineServer serves b's routers over HTTP until the test ends.
func engineServer(t *testing.T, b *Backend) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, b.Routers(Version{Berth: "test", APIVersion: "1.56", MinAPIVersion: "1.24"})...).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// attachStream hijacks an attach to shop-db-1 with every stream, as the
// docker CLI does, and returns the connection and its reader after the
// 101 answer.
func attachStream(t *testing.T, srv *httptest.Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	assert.NilError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /v1.56/containers/shop-db-1/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	assert.NilError(t, err)
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	assert.NilError(t, err)
	assert.Equal(t, up.StatusCode, http.StatusSwitchingProtocols)
	return conn, br
}

// The detach keys end the attachment: pods/attach got the input before
// them, the client's stream ends, the pod is left running.
func TestEngineAttachDetachKeys(t *testing.T) {
	got := make(chan string, 1)
	fx := &fakeExecutor{run: func(req ExecRequest, so remotecommand.StreamOptions) error {
		in, _ := io.ReadAll(so.Stdin)
		got <- string(in)
		return nil
	}}
	pods := shopPods()
	pods[0].Spec.Containers[0].Stdin = true
	b, cs := attachBackend(t, fx, pods...)
	srv := engineServer(t, b)
	conn, br := attachStream(t, srv)
	_, err := io.WriteString(conn, "ls\x10\x11rm -rf /")
	assert.NilError(t, err)
	assert.Equal(t, <-got, "ls")
	_, _ = io.Copy(io.Discard, br) // the stream ends without the client closing its side
	_, err = cs.CoreV1().Pods("shop").Get(context.Background(), "db-1", metav1.GetOptions{})
	assert.NilError(t, err, "the pod runs on")
}

// docker run -it: the attach comes before the start; it waits until the
// pod runs, then pods/attach with the terminal, sized by the resizes sent
// before (docker run's) and while it runs.
func TestAttachBeforeStartWaitsAndResizes(t *testing.T) {
	var mu sync.Mutex
	var sizes []remotecommand.TerminalSize
	var notRunning []string
	resized := make(chan struct{})
	var b *Backend
	fx := &fakeExecutor{run: func(req ExecRequest, so remotecommand.StreamOptions) error {
		if p, ok := b.inCluster(containerID(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Pod}})); !ok || podState(p, t0).status != container.StateRunning {
			mu.Lock()
			notRunning = append(notRunning, req.Pod)
			mu.Unlock()
		}
		for range 2 {
			sz := so.TerminalSizeQueue.Next()
			if sz == nil {
				break
			}
			mu.Lock()
			sizes = append(sizes, *sz)
			first := len(sizes) == 1
			mu.Unlock()
			if first {
				close(resized)
			}
		}
		in, _ := io.ReadAll(so.Stdin)
		_, _ = fmt.Fprintf(so.Stdout, "tty %s", in)
		return nil
	}}
	b, cs := attachBackend(t, fx)
	ctx := context.Background()
	created, err := b.Create(ctx, runtime.CreateRequest{Name: "it", Config: &container.Config{Image: "busybox", Cmd: []string{"sh"}, Tty: true, OpenStdin: true}, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	a, err := b.Attach(ctx, "it", runtime.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	assert.NilError(t, err)
	assert.Assert(t, a.TTY())
	assert.NilError(t, b.Resize(ctx, "it", 24, 80))

	stdinR, stdinW := io.Pipe()
	var out strings.Builder
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- a.Run(ctx, stdinR, &out, &out, func() { close(ready) }) }()
	<-ready
	assert.NilError(t, b.Start(ctx, created.ID))
	pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "it", metav1.GetOptions{})
	assert.NilError(t, err)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: pod.Spec.Containers[0].Name, State: running(t0)}}
	_, err = cs.CoreV1().Pods("berth-default").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	assert.NilError(t, err)
	select {
	case <-resized:
	case <-time.After(10 * time.Second):
		t.Fatal("no attach with the first size")
	}
	assert.NilError(t, b.Resize(ctx, created.ID, 40, 120))
	_, _ = io.WriteString(stdinW, "ls")
	_ = stdinW.Close()
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("attach did not end with its process")
	}
	assert.Equal(t, out.String(), "tty ls")
	mu.Lock()
	defer mu.Unlock()
	assert.DeepEqual(t, notRunning, []string(nil))
	assert.DeepEqual(t, sizes, []remotecommand.TerminalSize{{Width: 80, Height: 24}, {Width: 120, Height: 40}})
	assert.DeepEqual(t, fx.last(), ExecRequest{Namespace: "berth-default", Pod: "it", Container: pod.Spec.Containers[0].Name, Stdin: true, Stdout: true, TTY: true, Attach: true})
}

func TestAttachRefusals(t *testing.T) {
	nob, _ := newBackend(t, shopPods()...) // a fake clientset: no REST config
	_, err := nob.Attach(context.Background(), "shop-db-1", runtime.AttachOptions{Stream: true, Stdout: true})
	assert.Assert(t, errdefs.IsNotImplemented(err), "%v", err)
	b, _ := attachBackend(t, &fakeExecutor{})
	_, err = b.Attach(context.Background(), "nope", runtime.AttachOptions{Stream: true, Stdout: true})
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	assert.Assert(t, errdefs.IsNotFound(b.Resize(context.Background(), "nope", 1, 1)))
}

// The real executor asks pods/attach as kubectl attach does: websocket
// first, SPDY when the upgrade fails, no command.
func TestRemoteExecutorAttachURL(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		http.Error(w, "no upgrade here", http.StatusBadRequest)
	}))
	defer srv.Close()
	cs, err := NewClient(&rest.Config{Host: srv.URL})
	assert.NilError(t, err)
	c := cs.(client)
	x := remoteExecutor{cfg: c.cfg, core: c.core.RESTClient()}
	err = x.Exec(context.Background(), ExecRequest{Namespace: "shop", Pod: "db-1", Container: "db", Stdin: true, Stdout: true, TTY: true, Attach: true},
		remotecommand.StreamOptions{Stdin: strings.NewReader(""), Stdout: &nopWriter{}, Tty: true})
	assert.ErrorContains(t, err, "")
	const q = "container=db&stdin=true&stdout=true&tty=true"
	mu.Lock()
	defer mu.Unlock()
	assert.DeepEqual(t, seen, []string{
		"GET /api/v1/namespaces/shop/pods/db-1/attach?" + q,
		"POST /api/v1/namespaces/shop/pods/db-1/attach?" + q,
	})
}

// docker run of a short command without -i: the attach comes before the
// start and has no input; the process may run and end before any attach
// could reach the kubelet (here the informer never shows it running), so
// its output comes from the pod's log, from the start.
func TestAttachWithoutStdinBeforeStartFollowsTheLog(t *testing.T) {
	fx := &fakeExecutor{run: func(ExecRequest, remotecommand.StreamOptions) error { return nil }}
	b, cs := attachBackend(t, fx)
	var logOpts *corev1.PodLogOptions
	cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		logOpts = a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		return true, &k8sruntime.Unknown{Raw: []byte("2026-12-06T05:00:00Z hi\n")}, nil
	})
	ctx := context.Background()
	created, err := b.Create(ctx, runtime.CreateRequest{Name: "short", Config: &container.Config{Image: "busybox", Cmd: []string{"echo", "hi"}}, HostConfig: &container.HostConfig{}})
	assert.NilError(t, err)
	a, err := b.Attach(ctx, created.ID, runtime.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	assert.NilError(t, err)
	var out strings.Builder
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- a.Run(ctx, nil, &out, &out, func() { close(ready) }) }()
	<-ready
	assert.NilError(t, b.Start(ctx, created.ID))
	pod, err := cs.CoreV1().Pods("berth-default").Get(ctx, "short", metav1.GetOptions{})
	assert.NilError(t, err)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: pod.Spec.Containers[0].Name, State: exited(0, t0)}}
	_, err = cs.CoreV1().Pods("berth-default").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	assert.NilError(t, err)
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the attach did not end with the short process")
	}
	assert.Equal(t, out.String(), "hi\n")
	assert.Assert(t, logOpts != nil && logOpts.Follow && logOpts.TailLines == nil, "%+v", logOpts)
	fx.mu.Lock()
	defer fx.mu.Unlock()
	assert.Equal(t, len(fx.reqs), 0, "pods/attach asked: %+v", fx.reqs)
}
