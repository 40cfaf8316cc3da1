package backend

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"gotest.tools/v3/assert"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/berthd/berth/engine"
)

// docker exec through the engine's containers router on this backend: the
// create, the hijacked start with Docker's multiplexed stream, the exit
// code in the inspect, and the exec events.
func TestEngineExecThroughRouter(t *testing.T) {
	fx := &fakeExecutor{run: func(req ExecRequest, so remotecommand.StreamOptions) error {
		in, _ := io.ReadAll(so.Stdin)
		_, _ = fmt.Fprintf(so.Stdout, "got %s", in)
		_, _ = io.WriteString(so.Stderr, "warn\n")
		return exitErr(42)
	}}
	b := execBackend(t, fx)
	_, live, stop := b.bus.Subscribe(time.Time{})
	defer stop()
	srv := httptest.NewServer(engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, b.Routers(Version{Berth: "test", APIVersion: "1.56", MinAPIVersion: "1.24"})...).Handler())
	defer srv.Close()

	body := `{"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true,"AttachStderr":true}`
	resp, err := http.Post(srv.URL+"/v1.56/containers/shop-db-1/exec", "application/json", strings.NewReader(body))
	assert.NilError(t, err)
	var created container.ExecCreateResponse
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusCreated)

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	assert.NilError(t, err)
	defer conn.Close()
	start := `{"Detach":false,"Tty":false}`
	_, err = fmt.Fprintf(conn, "POST /v1.56/exec/%s/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %d\r\n\r\n%s", created.ID, len(start), start)
	assert.NilError(t, err)
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	assert.NilError(t, err)
	assert.Equal(t, up.StatusCode, http.StatusSwitchingProtocols)
	_, err = io.WriteString(conn, "hello")
	assert.NilError(t, err)
	assert.NilError(t, conn.(*net.TCPConn).CloseWrite())
	stdout, stderr := demux(t, br)
	assert.Equal(t, stdout, "got hello")
	assert.Equal(t, stderr, "warn\n")

	resp, err = http.Get(srv.URL + "/v1.56/exec/" + created.ID + "/json")
	assert.NilError(t, err)
	var insp container.ExecInspectResponse
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(&insp))
	resp.Body.Close()
	assert.Assert(t, insp.ExitCode != nil)
	assert.Equal(t, *insp.ExitCode, 42)

	var actions []string
	for len(actions) < 3 {
		select {
		case m := <-live:
			actions = append(actions, string(m.Action)+" "+m.Actor.Attributes["exitCode"])
		case <-time.After(10 * time.Second):
			t.Fatalf("exec events: %v", actions)
		}
	}
	assert.DeepEqual(t, actions, []string{string(events.ActionExecCreate) + " ", "exec_start: cat ", string(events.ActionExecDie) + " 42"})
}

// demux reads Docker's multiplexed stream to its end.
func demux(t *testing.T, r io.Reader) (string, string) {
	t.Helper()
	var out [3]bytes.Buffer
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			assert.Assert(t, err == io.EOF, "%v", err)
			return out[1].String(), out[2].String()
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		_, err := io.CopyN(&out[hdr[0]%3], r, int64(n))
		assert.NilError(t, err)
	}
}
