package registry

import (
	"fmt"
	"io"

	"github.com/berthd/berth/internal/diskspace"
	"github.com/containerd/errdefs"
)

// UploadLimit bounds what one request body (a build context, an image
// archive for load, a tarball for import) may write to the daemon's disk:
// at most Max bytes (0: no fixed cap), and never so much that less than
// Reserve bytes (0: diskspace.Reserve, 1% of the filesystem, at most 256
// MiB) stay free on the filesystem of Dir. The writer's caller removes what
// it wrote when the limit stops it.
type UploadLimit struct {
	Max     int64
	Dir     string
	Reserve int64
}

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
		if total, free, ok := diskspace.Stat(lr.l.Dir); ok && free < lr.reserve(total)+uint64(len(p)) {
			lr.err = errdefs.ErrResourceExhausted.WithMessage(fmt.Sprintf("not enough free space on the daemon's disk for the %s: %d bytes free, %d kept free", lr.what, free, lr.reserve(total)))
			return 0, lr.err
		}
	}
	return n, err
}

func (lr *LimitedReader) reserve(total uint64) uint64 {
	if lr.l.Reserve > 0 {
		return uint64(lr.l.Reserve)
	}
	return diskspace.Reserve(total)
}

// Err is the limit's error, if it stopped the upload.
func (lr *LimitedReader) Err() error { return lr.err }

// N is the number of bytes read.
func (lr *LimitedReader) N() int64 { return lr.n }
