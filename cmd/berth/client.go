package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// defaultHost is berthd's default socket.
const defaultHost = "unix:///run/berth/docker.sock"

// client talks to berthd over its unix socket with plain net/http.
type client struct {
	http *http.Client
	sock string
}

func newClient(host string) (*client, error) {
	if host == "" {
		host = defaultHost
	}
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return nil, fmt.Errorf("unsupported host %q: berth speaks to unix:// sockets", host)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &client{http: &http.Client{Transport: tr}, sock: sock}, nil
}

// do sends a request and decodes a 2xx JSON answer into out; any other
// status is the daemon's error message.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// stream sends a request and returns the body of a 2xx answer.
func (c *client) stream(ctx context.Context, method, path string, query url.Values, body any) (io.ReadCloser, error) {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (c *client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	req, err := newRequest(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach berthd: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

func newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := "http://berthd" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// responseError is the daemon's error message of a non-2xx answer.
func responseError(resp *http.Response) error {
	var e struct{ Message string }
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return fmt.Errorf("%s", e.Message)
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}

// hijack sends a request that upgrades the connection (exec start) and
// returns the raw connection, with what was read past the answer.
func (c *client) hijack(ctx context.Context, path string, body any) (net.Conn, *bufio.Reader, error) {
	req, err := newRequest(ctx, http.MethodPost, path, nil, body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.sock)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach berthd: %w", err)
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return nil, nil, responseError(resp)
	}
	return conn, br, nil
}
