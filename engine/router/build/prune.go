package build

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/berthd/berth/engine/compat"
	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
	"github.com/berthd/berth/registry"
	"github.com/containerd/errdefs"
	buildtypes "github.com/moby/moby/api/types/build"
)

// CacheBackend is the build cache (builder/buildkit/remote.Service).
type CacheBackend interface {
	// Prune removes the records o selects and reports them.
	Prune(ctx context.Context, o wire.PruneOptions) (*buildtypes.CachePruneReport, error)
}

// prune serves POST /build/prune: docker builder prune and system prune.
// The classic builder's cache is its images (docker image prune's); this
// is BuildKit's.
func (r *Router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	o, err := pruneOptions(req, time.Now())
	if err != nil {
		return err
	}
	report, err := r.cache.Prune(ctx, o)
	if err != nil {
		return err
	}
	return httputil.WriteJSON(w, http.StatusOK, report)
}

// pruneOptions reads /build/prune's parameters as dockerd does:
// keep-storage before API 1.48, reserved-space (keep-storage as its
// fallback), max-used-space and min-free-space from then on; filters until
// (or unused-for) and the record fields, one value each.
func pruneOptions(req *http.Request, now time.Time) (wire.PruneOptions, error) {
	o := wire.PruneOptions{All: httputil.BoolValue(req, "all")}
	f, err := filters.Parse(req.Form.Get("filters"))
	if err != nil {
		return o, err
	}
	if err := f.Validate(append([]string{"until", "unused-for", "label", "label!"}, wire.CacheFields...)...); err != nil {
		return o, err
	}
	bytes := func(name string) (int64, error) {
		v := req.Form.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is in bytes and expects an integer, got %v", name, v))
		}
		return n, nil
	}
	if compat.BuildPruneKeepStorage(httputil.VersionFromContext(req.Context())) {
		if o.ReservedSpace, err = bytes("keep-storage"); err != nil {
			return o, err
		}
	} else {
		for name, dst := range map[string]*int64{"reserved-space": &o.ReservedSpace, "max-used-space": &o.MaxUsedSpace, "min-free-space": &o.MinFreeSpace} {
			if *dst, err = bytes(name); err != nil {
				return o, err
			}
		}
		if o.ReservedSpace == 0 {
			if o.ReservedSpace, err = bytes("keep-storage"); err != nil {
				return o, err
			}
		}
	}
	until, unusedFor := f.Get("until"), f.Get("unused-for")
	if len(until) > 0 && len(unusedFor) > 0 {
		return o, errdefs.ErrInvalidArgument.WithMessage(`conflicting filters: "until" and "unused-for"`)
	}
	key := "until"
	if len(unusedFor) > 0 {
		key, until = "unused-for", unusedFor
	}
	switch len(until) {
	case 0:
	case 1:
		t, err := registry.ParseUntil(until[0], now)
		if err != nil {
			return o, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q filter expects a duration (e.g., '24h') or a timestamp", key))
		}
		o.KeepDuration = now.Sub(t)
	default:
		return o, errdefs.ErrInvalidArgument.WithMessage("filters expect only one value")
	}
	for _, field := range wire.CacheFields {
		switch vs := f.Get(field); len(vs) {
		case 0:
		case 1:
			if o.Fields == nil {
				o.Fields = map[string]string{}
			}
			o.Fields[field] = vs[0]
		default:
			return o, errdefs.ErrInvalidArgument.WithMessage("filters expect only one value")
		}
	}
	return o, nil
}
