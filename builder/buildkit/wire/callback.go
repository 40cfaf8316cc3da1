package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/berthd/berth/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/net/http2"
)

// Images is berth's image store as the builder needs it (registry.Service).
type Images interface {
	// ImageContent is a local image's config and layers; ErrNotFound when
	// there is no such image.
	ImageContent(ctx context.Context, ref string) (*registry.ImageContent, error)
	// OpenLayer reads layer i of ic, uncompressed.
	OpenLayer(ctx context.Context, ic *registry.ImageContent, i int) (io.ReadCloser, error)
	// ImportOCILayout stores the one image of an OCI layout, untagged,
	// and returns its ID.
	ImportOCILayout(ctx context.Context, dir string) (string, error)
	// Tag names an image repo:tag, taking the name from any other image.
	Tag(ctx context.Context, ref, repo, tag string) error
	// IsInsecure says whether a registry host is reached over plain HTTP
	// or without TLS verification.
	IsInsecure(host string) bool
}

// Sandboxes gives RUN steps their network namespaces on the default bridge.
type Sandboxes interface {
	// Join creates a network namespace named id, attached to the default
	// bridge with the given hostname, and returns its path.
	Join(ctx context.Context, id, hostname string) (string, error)
	// Leave detaches id's namespace from its networks and removes it.
	Leave(ctx context.Context, id string) error
}

// The callback endpoints berthd serves the helper.
const (
	pathImageContent = "/images/content"
	pathOpenLayer    = "/images/layer"
	pathImport       = "/images/import"
	pathTag          = "/images/tag"
	pathInsecure     = "/registries/insecure"
	pathJoin         = "/sandboxes/join"
	pathLeave        = "/sandboxes/leave"
)

// callback is every callback's request body; each uses its own fields.
type callback struct {
	Ref      string        `json:"ref,omitempty"`
	ID       digest.Digest `json:"id,omitempty"`
	Index    int           `json:"index,omitempty"`
	Dir      string        `json:"dir,omitempty"`
	Repo     string        `json:"repo,omitempty"`
	Tag      string        `json:"tag,omitempty"`
	Host     string        `json:"host,omitempty"`
	Sandbox  string        `json:"sandbox,omitempty"`
	Hostname string        `json:"hostname,omitempty"`
}

// imageContent is registry.ImageContent on the wire.
type imageContent struct {
	ID     digest.Digest        `json:"id"`
	Config []byte               `json:"config"`
	Layers []ocispec.Descriptor `json:"layers"`
}

// reply is every callback's answer; each uses its own fields.
type reply struct {
	ID       string `json:"id,omitempty"`
	Path     string `json:"path,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
}

// HostHandler serves the callbacks on berthd's side. network may be nil
// (Config.Network false): Join and Leave then fail.
func HostHandler(images Images, network Sandboxes) http.Handler {
	h := &host{images: images, network: network}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathImageContent, h.imageContent)
	mux.HandleFunc("POST "+pathOpenLayer, h.openLayer)
	mux.HandleFunc("POST "+pathImport, h.call(func(ctx context.Context, c callback) (reply, error) {
		id, err := images.ImportOCILayout(ctx, c.Dir)
		return reply{ID: id}, err
	}))
	mux.HandleFunc("POST "+pathTag, h.call(func(ctx context.Context, c callback) (reply, error) {
		return reply{}, images.Tag(ctx, c.Ref, c.Repo, c.Tag)
	}))
	mux.HandleFunc("POST "+pathInsecure, h.call(func(_ context.Context, c callback) (reply, error) {
		return reply{Insecure: images.IsInsecure(c.Host)}, nil
	}))
	mux.HandleFunc("POST "+pathJoin, h.call(func(ctx context.Context, c callback) (reply, error) {
		if network == nil {
			return reply{}, errors.New("build steps have no bridge network")
		}
		path, err := network.Join(ctx, c.Sandbox, c.Hostname)
		return reply{Path: path}, err
	}))
	mux.HandleFunc("POST "+pathLeave, h.call(func(ctx context.Context, c callback) (reply, error) {
		if network == nil {
			return reply{}, errors.New("build steps have no bridge network")
		}
		return reply{}, network.Leave(ctx, c.Sandbox)
	}))
	return mux
}

type host struct {
	images  Images
	network Sandboxes
}

func decode(w http.ResponseWriter, r *http.Request) (callback, bool) {
	var c callback
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		WriteJSON(w, http.StatusBadRequest, map[string]string{"message": "callback: " + err.Error()})
		return c, false
	}
	return c, true
}

func (h *host) call(f func(context.Context, callback) (reply, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := decode(w, r)
		if !ok {
			return
		}
		rep, err := f(r.Context(), c)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, rep)
	}
}

func (h *host) imageContent(w http.ResponseWriter, r *http.Request) {
	c, ok := decode(w, r)
	if !ok {
		return
	}
	ic, err := h.images.ImageContent(r.Context(), c.Ref)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, imageContent{ID: ic.ID, Config: ic.Config, Layers: ic.Layers})
}

// openLayer looks the image up again by its ID: the store's layer IDs do
// not cross the wire.
func (h *host) openLayer(w http.ResponseWriter, r *http.Request) {
	c, ok := decode(w, r)
	if !ok {
		return
	}
	ic, err := h.images.ImageContent(r.Context(), c.ID.String())
	if err == nil && ic.ID != c.ID {
		err = errors.New("image " + c.ID.String() + " is gone")
	}
	if err == nil && (c.Index < 0 || c.Index >= len(ic.Layers)) {
		err = errors.New("no such layer")
	}
	var rc io.ReadCloser
	if err == nil {
		rc, err = h.images.OpenLayer(r.Context(), ic, c.Index)
	}
	if err != nil {
		WriteError(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
}

// ServeCallbacks serves h on conn (HTTP/2 with prior knowledge) until conn
// closes. A helper that dies is reported by whoever waits for it, not here.
func ServeCallbacks(conn net.Conn, h http.Handler) {
	quiet := &http.Server{ErrorLog: log.New(io.Discard, "", 0)}
	(&http2.Server{}).ServeConn(conn, &http2.ServeConnOpts{Handler: h, BaseConfig: quiet})
}

// Client is the helper's side of the callbacks: berthd's Images and
// Sandboxes, over the callback connection.
type Client struct {
	rt http.RoundTripper
}

var (
	_ Images    = (*Client)(nil)
	_ Sandboxes = (*Client)(nil)
)

// NewClient speaks HTTP/2 on conn, the callback connection.
func NewClient(conn net.Conn) (*Client, error) {
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	if err != nil {
		return nil, err
	}
	return &Client{rt: cc}, nil
}

// post sends c to path and returns the answer's body on success.
func (c *Client) post(ctx context.Context, path string, body callback) (io.ReadCloser, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://berthd"+path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, ReadError(resp)
	}
	return resp.Body, nil
}

func (c *Client) postJSON(ctx context.Context, path string, body callback, out any) error {
	rc, err := c.post(ctx, path, body)
	if err != nil {
		return err
	}
	defer rc.Close()
	return json.NewDecoder(rc).Decode(out)
}

func (c *Client) ImageContent(ctx context.Context, ref string) (*registry.ImageContent, error) {
	var ic imageContent
	if err := c.postJSON(ctx, pathImageContent, callback{Ref: ref}, &ic); err != nil {
		return nil, err
	}
	return &registry.ImageContent{ID: ic.ID, Config: ic.Config, Layers: ic.Layers}, nil
}

func (c *Client) OpenLayer(ctx context.Context, ic *registry.ImageContent, i int) (io.ReadCloser, error) {
	return c.post(ctx, pathOpenLayer, callback{ID: ic.ID, Index: i})
}

func (c *Client) ImportOCILayout(ctx context.Context, dir string) (string, error) {
	var rep reply
	err := c.postJSON(ctx, pathImport, callback{Dir: dir}, &rep)
	return rep.ID, err
}

func (c *Client) Tag(ctx context.Context, ref, repo, tag string) error {
	var rep reply
	return c.postJSON(ctx, pathTag, callback{Ref: ref, Repo: repo, Tag: tag}, &rep)
}

// IsInsecure answers false when berthd cannot be asked: TLS is verified.
func (c *Client) IsInsecure(host string) bool {
	var rep reply
	if err := c.postJSON(context.Background(), pathInsecure, callback{Host: host}, &rep); err != nil {
		return false
	}
	return rep.Insecure
}

func (c *Client) Join(ctx context.Context, id, hostname string) (string, error) {
	var rep reply
	err := c.postJSON(ctx, pathJoin, callback{Sandbox: id, Hostname: hostname}, &rep)
	return rep.Path, err
}

func (c *Client) Leave(ctx context.Context, id string) error {
	var rep reply
	return c.postJSON(ctx, pathLeave, callback{Sandbox: id}, &rep)
}
