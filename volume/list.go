package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/berthd/berth/internal/filters"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"github.com/sirupsen/logrus"
)

// List returns the volumes matching f, sorted by name. Filters (dockerd's):
// name (substring or regular expression), label ("k", "k=v"), dangling
// (true: not referenced by any container), driver. Warnings are always nil
// (they are for unreachable volume plugins, which berth has none of).
// Errors: ErrInvalidArgument for an unknown filter or a bad dangling value.
func (s *Service) List(ctx context.Context, f filters.Args) ([]*volume.Volume, []string, error) {
	if err := f.Validate("name", "label", "dangling", "driver"); err != nil {
		return nil, nil, err
	}
	dangling, filterDangling, err := f.GetBool("dangling")
	if err != nil {
		return nil, nil, err
	}
	recs, err := s.records()
	if err != nil {
		return nil, nil, err
	}
	out := []*volume.Volume{}
	for _, rec := range recs {
		if !f.Match("name", rec.Name) || !f.ExactMatch("driver", rec.Driver) || !f.MatchKVList("label", rec.Labels) {
			continue
		}
		if filterDangling && (len(rec.Refs) == 0) != dangling {
			continue
		}
		out = append(out, s.toAPI(rec))
	}
	return out, nil, nil
}

// records lists every record sorted by name, skipping unreadable ones.
func (s *Service) records() ([]*record, error) {
	m, _, err := s.table.List()
	if err != nil {
		return nil, err
	}
	out := make([]*record, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Prune removes unused local volumes: by default only anonymous ones; with
// the filter all=true (what dockerd does for API < 1.42, and `docker volume
// prune -a`) named ones too. label and label! filters narrow it. Volumes
// created with mount options are never pruned (nothing to reclaim), as in
// dockerd. It publishes a "prune" event with the reclaimed bytes.
// Errors: ErrInvalidArgument for filters, ErrConflict when a prune is running.
func (s *Service) Prune(ctx context.Context, f filters.Args) (*volume.PruneReport, error) {
	if err := f.Validate("label", "label!", "all"); err != nil {
		return nil, err
	}
	all := false
	switch vs := f.Get("all"); {
	case len(vs) > 1:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'all=%s': only one value is expected", vs))
	case len(vs) == 1:
		b, err := strconv.ParseBool(vs[0])
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'all': %v", err))
		}
		all = b
	}
	if !s.pruning.CompareAndSwap(false, true) {
		return nil, errdefs.ErrConflict.WithMessage("a prune operation is already running")
	}
	defer s.pruning.Store(false)

	rep := &volume.PruneReport{VolumesDeleted: []string{}}
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	for _, cand := range recs {
		if err := ctx.Err(); err != nil {
			break
		}
		if len(cand.Options) > 0 || !matchLabels(f, cand.Labels) {
			continue
		}
		if _, anon := cand.Labels[AnonymousLabel]; !all && !anon {
			continue
		}
		size, _ := dirSize(ctx, s.dataPath(cand.Name))
		s.mu.Lock()
		// re-read under the lock: a container may have taken it meanwhile
		rec, err := s.table.Get(cand.Name)
		if err == nil && len(rec.Refs) == 0 {
			err = s.removeLocked(rec)
			if err == nil {
				rep.VolumesDeleted = append(rep.VolumesDeleted, rec.Name)
				rep.SpaceReclaimed += uint64(size)
			}
		}
		s.mu.Unlock()
		if err != nil && !errdefs.IsNotFound(err) {
			logrus.WithError(err).Warnf("prune: volume %s", cand.Name)
		}
	}
	s.events.Publish(pruneEvent(rep.SpaceReclaimed))
	return rep, nil
}

// matchLabels applies label (must match) and label! (must not match).
func matchLabels(f filters.Args, labels map[string]string) bool {
	if !f.MatchKVList("label", labels) {
		return false
	}
	for _, v := range f.Get("label!") {
		k, want, hasValue := strings.Cut(v, "=")
		if got, ok := labels[k]; ok && (!hasValue || got == want) {
			return false
		}
	}
	return true
}

// Usage is the size of the volume's data in bytes (-1 when it cannot be
// measured) and how many containers reference it, for `docker system df -v`.
// An unknown volume gives (-1, 0).
func (s *Service) Usage(ctx context.Context, name string) (size int64, refs int) {
	rec, err := s.get(name)
	if err != nil {
		return -1, 0
	}
	size, err = dirSize(ctx, s.dataPath(name))
	if err != nil {
		size = -1
	}
	return size, len(rec.Refs)
}

// DiskUsage is the volume part of GET /system/df: every volume with its
// UsageData, the totals, and what prune -a could reclaim. Volumes created
// with mount options are left out (their data lives elsewhere), as in
// dockerd; a size that cannot be measured is -1.
func (s *Service) DiskUsage(ctx context.Context) (*volume.DiskUsage, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	du := &volume.DiskUsage{Items: []volume.Volume{}}
	for _, rec := range recs {
		if len(rec.Options) > 0 {
			continue
		}
		v := s.toAPI(rec)
		size, err := dirSize(ctx, s.dataPath(rec.Name))
		if err != nil {
			size = -1
		}
		v.UsageData = &volume.UsageData{Size: size, RefCount: int64(len(rec.Refs))}
		du.TotalCount++
		if len(rec.Refs) > 0 {
			du.ActiveCount++
		}
		if size > 0 {
			du.TotalSize += size
			if len(rec.Refs) == 0 {
				du.Reclaimable += size
			}
		}
		du.Items = append(du.Items, *v)
	}
	return du, nil
}

// dirSize adds up the apparent sizes of everything under dir, counting
// hard-linked files once (dockerd's directory.Size).
func dirSize(ctx context.Context, dir string) (int64, error) {
	seen := map[uint64]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// files vanish while containers run; that is not an error
			if errors.Is(err, os.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 && !d.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		size += fi.Size()
		return nil
	})
	return size, err
}
