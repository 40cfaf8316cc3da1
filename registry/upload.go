package registry

import (
	"fmt"
	"io"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// UploadLimit bounds what one request body (a build context, an image
// archive for load, a tarball for import) may write to the daemon's disk:
// at most Max bytes (0: no fixed cap), and never so much that less than
// Reserve bytes stay free on the filesystem of Dir. The writer's caller
// removes what it wrote when the limit stops it.
type UploadLimit struct {
	Max     int64
	Dir     string
	Reserve int64
}

// DefaultReserve is the free space an upload leaves on the daemon's disk.
const DefaultReserve = 512 << 20

// checkEvery is how many bytes pass between two looks at the free space.
const checkEvery = 16 << 20

// LimitedReader counts what passes through it and fails with a clear,
// classified error once the limit is crossed. Err is that error, which
// callers return in place of the wrapped errors of unpackers.
type LimitedReader struct {
	r       io.Reader
	l       UploadLimit
	what    string
	n, next int64
	err     error
}

// Reader limits r; what names the upload in errors ("build context").
func (l UploadLimit) Reader(r io.Reader, what string) *LimitedReader {
	return &LimitedReader{r: r, l: l, what: what}
}

func (lr *LimitedReader) Read(p []byte) (int, error) {
	if lr.err != nil {
		return 0, lr.err
	}
	n, err := lr.r.Read(p)
	lr.n += int64(n)
	if lr.l.Max > 0 && lr.n > lr.l.Max {
		lr.err = errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is larger than the daemon's limit of %d bytes (berthd --max-upload-size)", lr.what, lr.l.Max))
		return 0, lr.err
	}
	if lr.n >= lr.next && lr.l.Dir != "" {
		lr.next = lr.n + checkEvery
		if free, ok := freeBytes(lr.l.Dir); ok && free < lr.reserve()+int64(len(p)) {
			lr.err = errdefs.ErrResourceExhausted.WithMessage(fmt.Sprintf("not enough free space on the daemon's disk for the %s: %d bytes free, %d kept free", lr.what, free, lr.reserve()))
			return 0, lr.err
		}
	}
	return n, err
}

func (lr *LimitedReader) reserve() int64 {
	if lr.l.Reserve > 0 {
		return lr.l.Reserve
	}
	return DefaultReserve
}

// Err is the limit's error, if it stopped the upload.
func (lr *LimitedReader) Err() error { return lr.err }

// N is the number of bytes read.
func (lr *LimitedReader) N() int64 { return lr.n }

func freeBytes(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
