package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// sourcesHash names what a COPY or ADD copies for its cache key and
// history entry, as dockerd's "file:<hash>", "dir:<hash>" and, for several
// sources, "multi:<hash>": any change of a name, mode, link target or
// content changes it.
func sourcesHash(srcs []source) (string, error) {
	var hashes []string
	for _, src := range srcs {
		h, err := sourceHash(src)
		if err != nil {
			return "", err
		}
		hashes = append(hashes, h)
	}
	if len(hashes) == 1 {
		return hashes[0], nil
	}
	return "multi:" + sum(strings.Join(hashes, ",")), nil
}

func sourceHash(src source) (string, error) {
	fi, err := os.Stat(src.path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		h, err := fileHash(src.path, fi)
		return "file:" + h, err
	}
	var parts []string
	err = filepath.Walk(src.path, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src.path, p)
		if err != nil {
			return err
		}
		h, err := fileHash(p, fi)
		if err != nil {
			return err
		}
		parts = append(parts, filepath.ToSlash(rel)+":"+h)
		return nil
	})
	if err != nil {
		return "", err
	}
	return "dir:" + sum(strings.Join(parts, ",")), nil
}

// fileHash covers a file's type and mode, a link's target and a regular
// file's content (not its times: dockerd's tarsum leaves them out too).
func fileHash(p string, fi os.FileInfo) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%o\x00", fi.Mode())
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		io.WriteString(h, link)
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
