// Package wire is the protocol between berthd and berth-buildkitd, the
// process BuildKit runs in. berthd starts the helper on the first build
// request (package builder/buildkit/remote) and passes it:
//
//   - argv[1]: its Config, as JSON;
//   - fd 3, the lifeline: the read end of a pipe whose write end only berthd
//     holds; EOF means berthd is gone or asks the helper to stop;
//   - fd 4, the callback connection: one end of a socket pair on which
//     berthd serves the image store and the build network (HostHandler) over
//     HTTP/2, and the helper is the client (Client);
//   - fd 5, the ready pipe: the helper writes "ok" once it serves on
//     Config.Socket, or why it cannot, and closes it.
//
// berthd reaches the helper on Config.Socket (HTTP/1 with upgrades for POST
// /session and /grpc, HTTP/2 with prior knowledge for gRPC, and the JSON
// endpoints PathDiskUsage and PathPrune). Errors cross either way as an
// HTTP status and Docker's {"message": ...} body, and become errdefs classes
// again on the other side (httpstatus.ToClass), so a missing image is still
// errdefs.IsNotFound in the helper.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/berthd/berth/engine/httpstatus"
	"github.com/berthd/berth/internal/errclass"
	"github.com/moby/moby/api/types/common"
)

// The helper's file descriptors (see the package comment).
const (
	FDLifeline = 3
	FDCallback = 4
	FDReady    = 5
)

// Ready is what the helper writes on the ready pipe when it serves.
const Ready = "ok"

// Config is what berthd tells the helper.
type Config struct {
	// Socket is the unix socket the helper serves berthd on.
	Socket string `json:"socket"`
	// Root holds BuildKit's state (<data-root>/buildkit).
	Root string `json:"root"`
	// Network runs RUN steps on berthd's default bridge (Join/Leave over
	// the callback connection); false runs them in the host's network.
	Network bool `json:"network"`
	// HostGateway is the address of host-gateway in --add-host.
	HostGateway string `json:"hostGateway,omitempty"`
	// DNS is the resolv.conf of RUN steps; empty copies the host's.
	DNS DNSConfig `json:"dns"`
	// CgroupParent is the cgroup under which steps run.
	CgroupParent string `json:"cgroupParent,omitempty"`
	// Debug logs at debug level.
	Debug bool `json:"debug,omitempty"`
}

// DNSConfig is what RUN steps' resolv.conf says.
type DNSConfig struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Search      []string `json:"search,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// PruneOptions are what POST /build/prune asks for.
type PruneOptions struct {
	// All removes also records that a later build could use (internal and
	// frontend ones are kept otherwise).
	All bool `json:"all,omitempty"`
	// KeepDuration keeps records used within it (the until filter).
	KeepDuration time.Duration `json:"keepDuration,omitempty"`
	// ReservedSpace, MaxUsedSpace and MinFreeSpace bound what is kept
	// (keep-storage is ReservedSpace).
	ReservedSpace int64 `json:"reservedSpace,omitempty"`
	MaxUsedSpace  int64 `json:"maxUsedSpace,omitempty"`
	MinFreeSpace  int64 `json:"minFreeSpace,omitempty"`
	// Fields select records by field (id, parent, type, description,
	// inuse, shared, private); a key with an empty value tests for truth.
	Fields map[string]string `json:"fields,omitempty"`
}

// CacheFields are the record fields a prune may filter on.
var CacheFields = []string{"id", "parent", "type", "description", "inuse", "shared", "private"}

// The helper's endpoints besides /session, /grpc and gRPC.
const (
	PathDiskUsage = "/berth/df"    // GET: build.DiskUsage
	PathPrune     = "/berth/prune" // POST PruneOptions: build.CachePruneReport
)

// WriteError answers err as berthd's API does: the status of its class and
// Docker's error body.
func WriteError(w http.ResponseWriter, err error) {
	WriteJSON(w, httpstatus.FromError(err), common.ErrorResponse{Message: err.Error()})
}

// WriteJSON answers v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ReadError turns an answer that is not a success into the error it
// carries, of the class of its status; the body is read and not closed.
func ReadError(resp *http.Response) error {
	var e common.ErrorResponse
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &e) != nil || e.Message == "" {
		e.Message = fmt.Sprintf("%s: %s", resp.Status, raw)
	}
	return errclass.Wrap(httpstatus.ToClass(resp.StatusCode), "", errors.New(e.Message))
}
