package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/registry"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// maxLoneDockerfile is the most a context that is a lone Dockerfile (not
// a tar) may hold; it is read into memory.
const maxLoneDockerfile = 4 << 20

// unpackContext unpacks the build context into dir: a tar, possibly
// compressed, or else a lone Dockerfile (docker build - < Dockerfile). It
// is streamed, never spooled, and what it writes is counted against the
// builder's limit (after decompression, so a small bomb is caught too).
// Entries that would land outside dir are refused by the unpacker.
func (b *Builder) unpackContext(r io.Reader, dir string) error {
	in, err := compression.DecompressStream(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "reading the build context", err)
	}
	defer in.Close()
	limited := b.limit.Reader(in, "build context")
	br := bufio.NewReaderSize(limited, 64<<10)
	head, _ := br.Peek(512)
	if !isTarHeader(head) {
		df, err := io.ReadAll(io.LimitReader(br, maxLoneDockerfile+1))
		if err != nil {
			// a broken compressed stream: the client's input, not ours
			return limitErr(limited, errclass.Wrap(errdefs.ErrInvalidArgument, "reading the build context", err))
		}
		if len(df) > maxLoneDockerfile {
			return limitErr(limited, errdefs.ErrInvalidArgument.WithMessage("the build context is neither a tar archive nor a Dockerfile"))
		}
		return os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o600)
	}
	err = archive.Untar(br, dir, &archive.TarOptions{NoLchown: true, Compression: compression.None})
	if err != nil {
		var classified error = errclass.Wrap(errdefs.ErrInvalidArgument, "invalid build context", err)
		return limitErr(limited, classified)
	}
	return nil
}

// limitErr is the limit's error when it stopped the reader, else err.
func limitErr(lr *registry.LimitedReader, err error) error {
	if lerr := lr.Err(); lerr != nil {
		return lerr
	}
	return err
}

func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	_, err := tar.NewReader(bytes.NewReader(b)).Next()
	return err == nil || errors.Is(err, io.ErrUnexpectedEOF)
}

// readDockerfile reads and parses the context's Dockerfile. The name is
// resolved inside the context, symlinks included (a Dockerfile that is a
// link to /etc/shadow is the context's etc/shadow), as dockerd does. Then
// the Dockerfile and .dockerignore are removed from the context when
// .dockerignore excludes them, so COPY . does not copy them.
func readDockerfile(dir, name string) (*parser.Result, error) {
	f, err := pathrs.OpenInRoot(dir, name)
	if err != nil && name == defaultDockerfile && errors.Is(err, os.ErrNotExist) {
		if f, err = pathrs.OpenInRoot(dir, "dockerfile"); err == nil {
			name = "dockerfile"
		}
	}
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Cannot locate specified Dockerfile: " + name)
	}
	df, err := pathrs.Reopen(f, os.O_RDONLY)
	f.Close()
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Cannot locate specified Dockerfile: " + name)
	}
	defer df.Close()
	if fi, err := df.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Cannot locate specified Dockerfile: " + name)
	}
	br := bufio.NewReader(io.LimitReader(df, maxLoneDockerfile))
	if _, err := br.Peek(1); err == io.EOF {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the Dockerfile (%s) cannot be empty", name))
	}
	parsed, err := parser.Parse(br)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse %s: %v", name, err))
	}
	if err := applyIgnore(dir, name); err != nil {
		return nil, err
	}
	return parsed, nil
}

// applyIgnore removes .dockerignore and the Dockerfile from the context
// when .dockerignore's patterns exclude them: the client sends them in any
// case, for the daemon to read.
func applyIgnore(dir, dockerfile string) error {
	f, err := pathrs.OpenInRoot(dir, ".dockerignore")
	if err != nil {
		return nil // none, or not a file of the context: nothing to apply
	}
	rf, err := pathrs.Reopen(f, os.O_RDONLY)
	f.Close()
	if err != nil {
		return nil
	}
	excludes, err := ignorefile.ReadAll(io.LimitReader(rf, maxLoneDockerfile))
	rf.Close()
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "error reading .dockerignore", err)
	}
	for _, name := range []string{".dockerignore", dockerfile} {
		if rm, _ := patternmatcher.MatchesOrParentMatches(filepath.Clean(name), excludes); rm {
			// the name itself, not what a symlink of that name leads
			// to; its directory resolved inside the context
			parent, err := securejoin.SecureJoin(dir, filepath.Dir(filepath.Clean("/"+name)))
			if err != nil {
				return err
			}
			if err := os.Remove(filepath.Join(parent, filepath.Base(name))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
