package runtime

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/berthd/berth/internal/diskspace"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/go-archive/compression"
	"golang.org/x/sys/unix"
)

// Limits of PUT /containers/{id}/archive (docker cp into a container). The
// upload is streamed, never held whole: what bounds the daemon's memory is
// the decompressor (a zstd window, an xz dictionary, a tar header), and
// what bounds the disk is the free space of the filesystem an entry goes
// to, checked before the entry is written.
const (
	// maxZstdWindow is the largest zstd window accepted; zstd -19 uses
	// 8 MiB, --long 128 MiB.
	maxZstdWindow = 128 << 20
	// xzMemLimit bounds the xz decompressor (dictionaries of xz -9 need
	// 65 MiB).
	xzMemLimit = "256MiB"
	// maxRollback bounds what a failed extraction remembers to remove.
	maxRollback = 100_000
)

// decompressUpload opens the (possibly compressed) tar of a docker cp
// upload as a stream: gzip, bzip2, xz or zstd, detected by magic number,
// with bounded memory. It runs on a host thread: the xz decompressor is the
// host's binary, never one from the container.
func decompressUpload(body io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(body)
	head, err := br.Peek(10)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch compression.Detect(head) {
	case compression.Zstd:
		d, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case compression.Xz:
		return commandStream(exec.Command("xz", "-d", "-c", "-q", "--memlimit-decompress="+xzMemLimit), br)
	default:
		return compression.DecompressStream(br)
	}
}

// commandStream runs cmd with in as its stdin and gives its stdout; a
// failure of cmd (its stderr) is the stream's error. Close stops it.
func commandStream(cmd *exec.Cmd, in io.Reader) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, pw, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := cmd.Wait(); err != nil {
			pw.CloseWithError(fmt.Errorf("%s: %w: %s", cmd.Args[0], err, strings.TrimSpace(stderr.String())))
			return
		}
		pw.Close()
	}()
	return &cmdReader{PipeReader: pr, cmd: cmd, done: done}, nil
}

type cmdReader struct {
	*io.PipeReader
	cmd  *exec.Cmd
	done chan struct{}
}

func (r *cmdReader) Close() error {
	_ = r.cmd.Process.Kill()
	err := r.PipeReader.Close()
	<-r.done
	return err
}

// guardedTar passes a tar stream on to the extractor entry by entry, byte
// for byte, and checks each entry before the extractor sees it: an entry
// that would leave its filesystem with less than a reserve of free space
// or inodes stops the extraction before any of it is written (no file is
// left half-written). It remembers what the extraction creates, so that a
// failed extraction can take it away again (rollback). Read runs on the
// view thread, where paths are the container's.
type guardedTar struct {
	tr   *tar.Reader
	raw  bytes.Buffer // bytes of the source already parsed, not yet given out
	dest string       // the extraction directory, in the view
	// created are paths this extraction made that no earlier one did;
	// entries below a created directory are not listed (removing the
	// directory removes them). overflow is set once it would grow past
	// maxRollback.
	created    []string
	createdDir map[string]bool
	overflow   bool
	inEntry    bool
	scratch    []byte
}

func newGuardedTar(src io.Reader, dest string) *guardedTar {
	g := &guardedTar{dest: dest, createdDir: map[string]bool{}, scratch: make([]byte, 32<<10)}
	g.tr = tar.NewReader(io.TeeReader(src, &g.raw))
	return g
}

func (g *guardedTar) Read(p []byte) (int, error) {
	for g.raw.Len() == 0 {
		if g.inEntry {
			n, err := g.tr.Read(g.scratch)
			if n > 0 {
				continue // teed into raw
			}
			if errors.Is(err, io.EOF) {
				g.inEntry = false
				continue
			}
			return 0, err
		}
		hdr, err := g.tr.Next()
		if errors.Is(err, io.EOF) {
			if g.raw.Len() == 0 {
				return 0, io.EOF
			}
			break // the end-of-archive blocks
		}
		if err != nil {
			return 0, err
		}
		if err := g.admit(hdr); err != nil {
			return 0, err
		}
		g.inEntry = true
	}
	return g.raw.Read(p)
}

// admit checks one entry against the free space where it goes and notes
// whether it creates a path.
func (g *guardedTar) admit(hdr *tar.Header) error {
	target := filepath.Join(g.dest, filepath.Clean("/"+hdr.Name))
	parent := filepath.Dir(target)
	var fs unix.Statfs_t
	if err := unix.Statfs(parent, &fs); err != nil {
		if err := unix.Statfs(g.dest, &fs); err != nil {
			return err
		}
	}
	if err := checkSpace(&fs, hdr); err != nil {
		return err
	}
	if g.overflow || g.createdDir[parent] {
		if hdr.Typeflag == tar.TypeDir && !g.overflow {
			g.createdDir[target] = true
		}
		return nil
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if len(g.created) >= maxRollback {
		g.overflow = true
		return nil
	}
	g.created = append(g.created, target)
	if hdr.Typeflag == tar.TypeDir {
		g.createdDir[target] = true
	}
	return nil
}

// checkSpace refuses an entry that would leave less than a reserve free:
// diskspace.Reserve (1% of the filesystem, at most 256 MiB), and as many
// inodes.
func checkSpace(fs *unix.Statfs_t, hdr *tar.Header) error {
	total, free, _ := diskspace.Totals(fs)
	reserve := diskspace.Reserve(total)
	size := uint64(max(hdr.Size, 0))
	if total > 0 && size+reserve > free {
		return errdefs.ErrResourceExhausted.WithMessage(fmt.Sprintf(
			"no space left on device: %s (%d bytes) does not fit in the %d bytes free in the container's filesystem (%d kept in reserve)",
			hdr.Name, size, free, reserve))
	}
	if fs.Files > 0 && fs.Ffree <= min(fs.Files/100, 10_000) {
		return errdefs.ErrResourceExhausted.WithMessage(fmt.Sprintf(
			"no space left on device: %s: the container's filesystem has only %d inodes free", hdr.Name, fs.Ffree))
	}
	return nil
}

// rollback removes what a failed extraction created, newest first (on
// the view thread: inside the container's root), and says so in err.
// Files the copy replaced stay replaced. With too many entries to
// remember, what was not remembered stays, and the error says that too.
func (g *guardedTar) rollback(err error) error {
	for i := len(g.created) - 1; i >= 0; i-- {
		_ = os.RemoveAll(g.created[i])
	}
	switch {
	case g.overflow:
		return fmt.Errorf("%w (the copy was too large to take back whole: some of it stays)", err)
	case len(g.created) > 0:
		return fmt.Errorf("%w (what the copy had created was removed)", err)
	}
	return err
}
