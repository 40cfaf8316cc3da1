package builder

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berthd/berth/runtime"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/go-archive"
	"github.com/moby/go-archive/compression"
	"github.com/moby/moby/api/types/container"
)

// copySpec is a COPY or ADD.
type copySpec struct {
	srcs  []string
	dest  string
	from  string // COPY --from: a stage (name or index) or an image
	chown string
	chmod string
	add   bool // ADD: local archives are unpacked
	text  string
}

// copy is a COPY or ADD step: the sources go into a container of the image
// so far, whose changes become the next image. Files are owned by root
// unless --chown says otherwise, as in dockerd.
func (r *build) copy(ctx context.Context, st *stageState, spec copySpec) error {
	root := r.contextDir
	if spec.from != "" {
		dir, err := os.MkdirTemp(r.b.tmpDir, "from-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := r.fetchFrom(ctx, spec, dir); err != nil {
			return err
		}
		root = dir
		for i, s := range spec.srcs {
			spec.srcs[i] = strconv.Itoa(i) + "/" + path.Base(path.Clean("/"+s))
		}
	}
	var srcs []string
	for _, s := range spec.srcs {
		matches, err := filepath.Glob(filepath.Join(root, filepath.Clean("/"+s)))
		var found []string
		for _, m := range matches {
			// symlinks resolve inside the context, never to the host's files
			rel, rerr := filepath.Rel(root, m)
			if rerr != nil {
				continue
			}
			safe, serr := securejoin.SecureJoin(root, rel)
			if _, lerr := os.Lstat(safe); serr == nil && lerr == nil {
				found = append(found, safe)
			}
		}
		if err != nil || len(found) == 0 {
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("COPY failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", s))
		}
		srcs = append(srcs, found...)
	}
	if len(srcs) > 1 && !strings.HasSuffix(spec.dest, "/") {
		return errdefs.ErrInvalidArgument.WithMessage("When using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	dest := spec.dest
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.cfg.WorkingDir, dest)
	}
	dest = path.Clean(dest)

	id, err := r.container(ctx, &container.Config{Image: st.image, Cmd: []string{"true"}, Entrypoint: []string{""}, Labels: map[string]string{}})
	if err != nil {
		return err
	}
	defer r.removeContainer(ctx, id)
	destIsDir := strings.HasSuffix(spec.dest, "/") || spec.dest == "." || len(srcs) > 1
	if !destIsDir {
		if stat, err := r.b.ctrs.StatPath(ctx, id, dest); err == nil && stat.Mode.IsDir() {
			destIsDir = true // an existing directory is copied into, like cp does
		}
	}
	owner, err := r.owner(ctx, id, spec.chown)
	if err != nil {
		return err
	}
	var mode *os.FileMode
	if spec.chmod != "" {
		m, err := strconv.ParseUint(spec.chmod, 8, 32)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid chmod parameter: %s", spec.chmod))
		}
		fm := os.FileMode(m)
		mode = &fm
	}

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := writeSources(tw, srcs, dest, destIsDir, spec.add && spec.from == "", owner, mode)
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	err = r.b.ctrs.ExtractToDir(ctx, id, "/", runtime.ExtractOptions{}, pr)
	pr.CloseWithError(errors.New("copy ended"))
	if err != nil {
		return err
	}
	return r.commit(ctx, st, id, "/bin/sh -c #(nop) "+spec.text)
}

// fetchFrom copies each source of a COPY --from out of the stage's or
// image's filesystem into dir/<i>/.
func (r *build) fetchFrom(ctx context.Context, spec copySpec, dir string) error {
	var ref string
	if n, err := strconv.Atoi(spec.from); err == nil && n >= 0 && n < len(r.results) {
		ref = r.results[n]
	} else if j := stageIndex(r.stages[:len(r.results)], spec.from); j >= 0 {
		ref = r.results[j]
	} else {
		img, err := r.baseImage(ctx, spec.from, len(r.results))
		if err != nil {
			return err
		}
		ref = img.ID
	}
	id, err := r.container(ctx, &container.Config{Image: ref, Cmd: []string{"true"}, Entrypoint: []string{""}, Labels: map[string]string{}})
	if err != nil {
		return err
	}
	defer r.removeContainer(ctx, id)
	for i, s := range spec.srcs {
		rc, _, err := r.b.ctrs.ArchivePath(ctx, id, path.Clean("/"+s))
		if err != nil {
			return err
		}
		sub := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			rc.Close()
			return err
		}
		err = archive.Untar(rc, sub, &archive.TarOptions{NoLchown: true})
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ids is a uid and gid.
type ids struct{ uid, gid int }

// owner resolves --chown (user[:group], names looked up in the image's
// /etc/passwd and /etc/group); none is root.
func (r *build) owner(ctx context.Context, ctrID, chown string) (ids, error) {
	if chown == "" {
		return ids{}, nil
	}
	user, group, hasGroup := strings.Cut(chown, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(user); err == nil {
		uid = n
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		}
	}
	lookup := func(file, name string, field int) (int, error) {
		rc, _, err := r.b.ctrs.ArchivePath(ctx, ctrID, file)
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		if _, err := tr.Next(); err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(tr)
		for sc.Scan() {
			f := strings.Split(sc.Text(), ":")
			if len(f) > 3 && f[0] == name {
				return strconv.Atoi(f[field])
			}
		}
		return 0, fmt.Errorf("no such %s: %s", path.Base(file), name)
	}
	var err error
	if uid < 0 {
		if uid, err = lookup("/etc/passwd", user, 2); err != nil {
			return ids{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to convert uid/gid chown string to host mapping: %v", err))
		}
		if !hasGroup {
			gid, _ = lookup("/etc/passwd", user, 3)
		}
	}
	if gid < 0 {
		if !hasGroup {
			gid = uid
		} else if gid, err = lookup("/etc/group", group, 2); err != nil {
			return ids{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to convert uid/gid chown string to host mapping: %v", err))
		}
	}
	return ids{uid, gid}, nil
}

// writeSources writes the tar that puts srcs at dest: a directory's
// contents into dest, a file at dest (or into it when it is a directory),
// and with unpack a local archive's contents into dest.
func writeSources(tw *tar.Writer, srcs []string, dest string, destIsDir, unpack bool, owner ids, mode *os.FileMode) error {
	for _, src := range srcs {
		fi, err := os.Lstat(src)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			err = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				rel, err := filepath.Rel(src, p)
				if err != nil {
					return err
				}
				return writeEntry(tw, p, fi, path.Join(dest, filepath.ToSlash(rel)), owner, mode)
			})
		case unpack && isArchive(src):
			err = unpackInto(tw, src, dest)
		default:
			target := dest
			if destIsDir {
				target = path.Join(dest, fi.Name())
			}
			err = writeEntry(tw, src, fi, target, owner, mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeEntry(tw *tar.Writer, src string, fi os.FileInfo, target string, owner ids, mode *os.FileMode) error {
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(src); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = strings.TrimPrefix(target, "/")
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if hdr.Name == "" || hdr.Name == "/" {
		return nil // the root itself
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = owner.uid, owner.gid, "", ""
	if mode != nil && fi.Mode()&os.ModeSymlink == 0 {
		hdr.Mode = int64(*mode)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// isArchive tells a tar (possibly compressed) that ADD unpacks.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := compression.DecompressStream(f)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// unpackInto copies an archive's entries under dest, keeping their owners
// and modes (as ADD does); entries that would leave dest are refused.
func unpackInto(tw *tar.Writer, src, dest string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := compression.DecompressStream(f)
	if err != nil {
		return err
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + hdr.Name)
		hdr.Name = strings.TrimPrefix(path.Join(dest, name), "/")
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = strings.TrimPrefix(path.Join(dest, path.Clean("/"+hdr.Linkname)), "/")
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
