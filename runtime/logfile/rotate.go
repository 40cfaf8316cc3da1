package logfile

import (
	"compress/gzip"
	"io"
	"os"
	"strconv"
)

// Rotation is the json-file driver's max-size, max-file and compress
// options. The zero value never rotates.
type Rotation struct {
	// MaxSize is the size in bytes at which the log is rolled before the
	// next entry; 0 never rolls.
	MaxSize int64 `json:",omitempty"`
	// MaxFiles is how many files are kept, the current one included; the
	// rolled ones are path.1 (newest) to path.<MaxFiles-1>. 0 counts as 1.
	MaxFiles int `json:",omitempty"`
	// Compress gzips the rolled files (path.N.gz).
	Compress bool `json:",omitempty"`
}

// files is how many files a reader reads, the current one included.
func (r Rotation) files() int {
	if r.MaxFiles < 1 {
		return 1
	}
	return r.MaxFiles
}

// rolled returns the name of the n-th rolled file of the log at path.
func rolled(path string, n int, compressed bool) string {
	name := path + "." + strconv.Itoa(n)
	if compressed {
		name += ".gz"
	}
	return name
}

// roll moves the log at path to path.1, shifting the older ones up and
// dropping the oldest, as dockerd does. An error means path was not moved. With a single file kept, path.1 is
// overwritten (it is never read back, as in Docker).
func roll(path string, r Rotation) error {
	keep := r.files()
	if keep > 1 {
		for _, gz := range []bool{false, true} {
			if err := os.Remove(rolled(path, keep-1, gz)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		for i := keep - 1; i > 1; i-- {
			for _, gz := range []bool{false, true} {
				if err := os.Rename(rolled(path, i-1, gz), rolled(path, i, gz)); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
		}
	}
	if err := os.Rename(path, rolled(path, 1, false)); err != nil {
		return err
	}
	if r.Compress && keep > 1 {
		// One that fails leaves path.1 plain, which readers read as well.
		_ = compress(rolled(path, 1, false), rolled(path, 1, true))
	}
	return nil
}

// compress gzips src into dst (through a temporary name, so a reader sees
// either file whole) and removes src.
func compress(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(src)
}
