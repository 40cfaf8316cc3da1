package runtime

import (
	"context"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// Changes answers GET /containers/{id}/changes (docker diff).
func (s *Service) Changes(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	c, err := s.ready(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	id := c.rec.ID
	c.mu.Unlock()
	changes, err := s.d.Images.RootfsChanges(ctx, id)
	if err != nil {
		return nil, err
	}
	return hideRuntimeFiles(changes), nil
}

// runtimeFiles are the mount points the OCI runtime creates in the
// writable layer at start. dockerd keeps them in an "init" layer under the
// writable one, so they never show in docker diff; berth has no such
// layer and leaves them out here instead.
var runtimeFiles = map[string]bool{
	"/dev": true, "/dev/pts": true, "/dev/shm": true, "/dev/console": true,
	"/proc": true, "/sys": true, "/.dockerenv": true, "/etc/mtab": true,
	"/etc/resolv.conf": true, "/etc/hosts": true, "/etc/hostname": true,
}

// hideRuntimeFiles drops the runtime's mount points, and the directories
// that changed only because those were created in them.
func hideRuntimeFiles(changes []container.FilesystemChange) []container.FilesystemChange {
	hidden := map[string]bool{} // parents of hidden entries
	kept := make([]container.FilesystemChange, 0, len(changes))
	for _, ch := range changes {
		if ch.Kind != container.ChangeDelete && runtimeFiles[ch.Path] {
			for p := parentDir(ch.Path); p != "/"; p = parentDir(p) {
				hidden[p] = true
			}
			continue
		}
		kept = append(kept, ch)
	}
	out := kept[:0]
	for i, ch := range kept {
		if ch.Kind == container.ChangeModify && hidden[ch.Path] && !hasChild(kept, i, ch.Path) {
			continue
		}
		out = append(out, ch)
	}
	return out
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// hasChild reports whether another entry of changes lies under dir.
func hasChild(changes []container.FilesystemChange, self int, dir string) bool {
	for j, ch := range changes {
		if j != self && strings.HasPrefix(ch.Path, dir+"/") {
			return true
		}
	}
	return false
}
