package safepath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// A Pin is a bind mount of an opened file or directory at a path that no
// container can change, for a consumer that only takes paths (the OCI
// runtime's mount sources). What the handle referred to when it was
// opened is what the pin shows, whatever is renamed or swapped for a
// symlink afterwards where it came from.
type Pin struct {
	Path string
}

// NewPin binds src (recursively, keeping its propagation, as a bind
// mount of a path would) at a new entry in dir, a directory of the
// daemon's own. Close removes it.
func NewPin(src *os.File, dir string) (*Pin, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return nil, err
	}
	var path string
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		p, err := os.MkdirTemp(dir, "pin-")
		if err != nil {
			return nil, err
		}
		path = p
	} else {
		f, err := os.CreateTemp(dir, "pin-")
		if err != nil {
			return nil, err
		}
		path = f.Name()
		f.Close()
	}
	root, err := OpenRoot(dir)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	defer root.Close()
	if err := Bind(src, root, filepath.Base(path), BindOptions{Recursive: true}); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("pin %s: %w", src.Name(), err)
	}
	return &Pin{Path: path}, nil
}

// Close unmounts the pin and removes its mount point. Mounts made from
// the pin meanwhile (in a container) are copies and stay.
func (p *Pin) Close() error {
	if err := unix.Unmount(p.Path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", p.Path, err)
	}
	if err := os.Remove(p.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ReapPins removes the pins a daemon that stopped in the middle of a
// start left in dir. It unmounts first and never removes recursively: a
// pin still mounted shows a volume's data, which must not be deleted.
func ReapPins(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "pin-") {
			continue
		}
		p := &Pin{Path: filepath.Join(dir, e.Name())}
		if err := p.Close(); err != nil {
			logrus.WithError(err).Warnf("remove the leftover mount %s", p.Path)
		}
	}
}
