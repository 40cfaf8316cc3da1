package builder

import (
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/moby/go-archive"
)

// unpackContext unpacks the build context into dir: a tar, possibly
// compressed, or else a lone Dockerfile (docker build - < Dockerfile).
// Entries that would land outside dir are refused by the unpacker.
func unpackContext(r io.Reader, dir string) error {
	spool := filepath.Join(dir, ".berth-context")
	f, err := os.Create(spool)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	defer os.Remove(spool)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("reading the build context: " + err.Error())
	}
	if !isArchive(spool) {
		return os.Rename(spool, filepath.Join(dir, "Dockerfile"))
	}
	in, err := os.Open(spool)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := archive.Untar(in, dir, &archive.TarOptions{NoLchown: true}); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("invalid build context: " + err.Error())
	}
	return nil
}
