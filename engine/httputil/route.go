// Package httputil holds what every router of the Engine API shares: the
// handler signature, route tables, the negotiated API version in the request
// context, and small helpers to read requests and write answers.
package httputil

import (
	"context"
	"net/http"
)

// APIFunc is the signature of every Engine API handler. A handler parses the
// request, calls one backend method, writes the answer, and returns an error
// only before it has written anything.
type APIFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error

// Route is one method + path served by a router. Path is the bare path
// (without the /v1.xx prefix): the server mounts it both ways.
type Route struct {
	Method  string
	Path    string
	Handler APIFunc
}

// Router is implemented by every resource router under engine/router.
type Router interface {
	Routes() []Route
}

func NewGetRoute(path string, h APIFunc) Route    { return Route{http.MethodGet, path, h} }
func NewPostRoute(path string, h APIFunc) Route   { return Route{http.MethodPost, path, h} }
func NewPutRoute(path string, h APIFunc) Route    { return Route{http.MethodPut, path, h} }
func NewDeleteRoute(path string, h APIFunc) Route { return Route{http.MethodDelete, path, h} }
func NewHeadRoute(path string, h APIFunc) Route   { return Route{http.MethodHead, path, h} }

type versionKey struct{}

// WithVersion stores the API version the client asked for in ctx.
func WithVersion(ctx context.Context, version string) context.Context {
	return context.WithValue(ctx, versionKey{}, version)
}

// VersionFromContext returns the API version of the request; the server
// always sets it (the advertised version when the path had none).
func VersionFromContext(ctx context.Context) string {
	v, _ := ctx.Value(versionKey{}).(string)
	return v
}
