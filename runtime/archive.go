package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/runtime/oci"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// ExtractOptions are the options of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir fails the copy where it would replace a
	// directory with a non-directory or the other way round.
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives the files the container user's uid and gid.
	CopyUIDGID bool
}

// StatPath answers HEAD /containers/{id}/archive. A missing path is
// ErrNotFound ("Could not find the file /x in container y"); a path with a
// NUL byte ErrInvalidArgument.
func (s *Service) StatPath(ctx context.Context, name, path string) (*container.PathStat, error) {
	l, v, err := s.openArchive(ctx, name, path)
	if err != nil {
		return nil, err
	}
	defer func() { v.close(); l.release() }()
	var st *container.PathStat
	err = v.run(func() (err error) {
		st, err = statInView(path)
		return err
	})
	if err != nil {
		return nil, archiveErr(err, path, name)
	}
	return st, nil
}

// ArchivePath answers GET /containers/{id}/archive: a tar of the file or
// directory at path, and its stat. Closing the reader ends the operation.
func (s *Service) ArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error) {
	l, v, err := s.openArchive(ctx, name, path)
	if err != nil {
		return nil, nil, err
	}
	abs := archive.PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)
	var (
		st *container.PathStat
		tb *archive.Tarballer
	)
	err = v.run(func() (err error) {
		if st, err = statInView(abs); err != nil {
			return err
		}
		// a directory is archived as its contents under its base name; a
		// file or symlink from its parent directory
		srcDir, srcBase := abs, "."
		if !st.Mode.IsDir() {
			srcDir, srcBase = filepath.Split(abs)
		}
		tb, err = archive.NewTarballer(srcDir, archive.TarResourceRebaseOpts(srcBase, filepath.Base(abs)))
		return err
	})
	if err != nil {
		v.close()
		l.release()
		return nil, nil, archiveErr(err, path, name)
	}
	v.goRun(tb.Do)
	s.event(l.rec, events.ActionArchivePath, nil)
	return &viewReader{ReadCloser: tb.Reader(), done: func() { v.close(); l.release() }}, st, nil
}

// ExtractToDir answers PUT /containers/{id}/archive: it unpacks the tar
// (optionally compressed) in content into the directory at path. Entries
// never land outside the container's root: paths and symlinks resolve
// inside it. A path that is not a directory, a read-only destination or a
// malformed archive is ErrInvalidArgument.
func (s *Service) ExtractToDir(ctx context.Context, name, path string, opts ExtractOptions, content io.Reader) error {
	l, v, err := s.openArchive(ctx, name, path)
	if err != nil {
		return err
	}
	defer func() { v.close(); l.release() }()
	topts := &archive.TarOptions{NoOverwriteDirNonDir: opts.NoOverwriteDirNonDir}
	if opts.CopyUIDGID && l.rec.Config.User != "" {
		u, err := oci.ResolveUser(l.rootfs, l.rec.Config.User, nil)
		if err != nil {
			return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		topts.ChownOpts = &archive.ChownOpts{UID: int(u.UID), GID: int(u.GID)}
	}
	// /proc is not mounted in the view; the extractor needs it for modes
	topts, closeOpts, err := archive.WithProcSelfFD(topts)
	if err != nil {
		return err
	}
	defer closeOpts()
	// decompressed here, on a host thread: decompressors may run helper
	// binaries, which must be the host's and not the container's
	r, err := decompressUpload(content)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "invalid archive", err)
	}
	defer r.Close()
	var dirErr error
	err = v.run(func() error {
		// the destination may be a symlink to a directory: follow it,
		// inside the root
		abs, err := filepath.EvalSymlinks(filepath.Join("/", path))
		if err != nil {
			return err
		}
		abs = archive.PreserveTrailingDotOrSeparator(abs, path)
		fi, err := os.Lstat(abs)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			dirErr = errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
			return dirErr
		}
		if dirErr = l.writableAt(filepath.Clean(abs)); dirErr != nil {
			return dirErr
		}
		g := newGuardedTar(r, abs)
		if err := archive.UntarUncompressed(g, abs, topts); err != nil {
			return g.rollback(err)
		}
		return nil
	})
	switch {
	case err == nil:
	case dirErr != nil:
		return dirErr
	case isNotExist(err):
		return fileNotFound(path, name)
	default:
		return unpackErr(err)
	}
	s.event(l.rec, events.ActionExtractToDir, nil)
	return nil
}

// Export answers GET /containers/{id}/export: a tar of the container's
// root filesystem, without its volumes and binds (as dockerd).
func (s *Service) Export(ctx context.Context, name string) (io.ReadCloser, error) {
	c, err := s.ready(ctx, name)
	if err != nil {
		return nil, err
	}
	l, err := s.leaseFS(ctx, c)
	if err != nil {
		return nil, err
	}
	// a view without mounts: symlinks resolve inside the rootfs even if
	// the running container swaps a directory for one mid-walk
	v, err := openFSView(l.rootfs, nil)
	if err != nil {
		l.release()
		return nil, err
	}
	tb, err := archive.NewTarballer("/", &archive.TarOptions{Compression: compression.None})
	if err != nil {
		v.close()
		l.release()
		return nil, err
	}
	v.goRun(tb.Do)
	s.event(l.rec, events.ActionExport, nil)
	return &viewReader{ReadCloser: tb.Reader(), done: func() { v.close(); l.release() }}, nil
}

// openArchive checks the path, finds the container and opens a view of
// its filesystem; the caller closes the view, then releases the lease.
func (s *Service) openArchive(ctx context.Context, name, path string) (*fsLease, *fsView, error) {
	if path == "" {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage("bad parameter: path cannot be empty")
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage("invalid path: it contains a NUL byte")
	}
	c, err := s.ready(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	l, err := s.leaseFS(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	v, err := openFSView(l.rootfs, l.mounts)
	if err != nil {
		l.release()
		return nil, nil, fmt.Errorf("open the filesystem of container %s: %w", l.rec.ID[:12], err)
	}
	return l, v, nil
}

// statInView stats path in the view (the last element not followed); a
// symlink's LinkTarget is where it leads, resolved inside the root.
func statInView(path string) (*container.PathStat, error) {
	// not cleaned: a trailing "/" follows a symlink to a directory, as
	// the kernel (and dockerd) has it
	abs := path
	if !strings.HasPrefix(abs, "/") {
		abs = "/" + abs
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, err
	}
	var target string
	if fi.Mode()&os.ModeSymlink != 0 {
		if target, err = securejoin.SecureJoin("/", abs); err != nil {
			return nil, err
		}
	}
	return &container.PathStat{Name: filepath.Base(abs), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime(), LinkTarget: target}, nil
}

func fileNotFound(path, name string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find the file %s in container %s", path, name))
}

// isNotExist is a missing path. A path through a non-directory
// ("/etc/passwd/x", "/etc/passwd/") is not: it keeps its own error ("lstat
// /etc/passwd/x: not a directory"), a server error as in dockerd.
func isNotExist(err error) bool {
	return errors.Is(err, os.ErrNotExist)
}

func archiveErr(err error, path, name string) error {
	if isNotExist(err) {
		return fileNotFound(path, name)
	}
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENAMETOOLONG) {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	return err
}

// unpackErr classifies an extraction failure: the file system's errors
// (an errno) stay server errors, but for a read-only mount, which is the
// client's; anything else is the archive's fault (entries or links
// escaping the root, a directory replaced by a file with
// noOverwriteDirNonDir, a malformed or truncated archive).
func unpackErr(err error) error {
	if errdefs.IsResourceExhausted(err) {
		return err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != syscall.EROFS {
		return err
	}
	return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
}

// viewReader is an archive stream; Close ends the view and the lease once.
type viewReader struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (r *viewReader) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.done)
	return err
}
