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
	add   bool   // ADD: local archives are unpacked
	name  string // "COPY" or "ADD"
}

// source is one thing to copy: found at path (symlinks resolved inside
// its root), named name in the destination (the source's own name, even
// when it is a symlink, as dockerd names it).
type source struct {
	path, name string
}

// copy is a COPY or ADD step: the sources go into a container of the image
// so far, whose changes become the next image. Files are owned by root
// unless --chown says otherwise, as in dockerd. The step's cache key
// carries a hash of the sources, so a changed file reruns it.
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
	srcs, err := findSources(root, spec.srcs, spec.name)
	if err != nil {
		return err
	}
	if len(srcs) > 1 && !strings.HasSuffix(spec.dest, "/") {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("When using %s with more than one source file, the destination must be a directory and end with a /", spec.name))
	}
	var mode *os.FileMode
	if spec.chmod != "" {
		m, err := strconv.ParseUint(spec.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid chmod parameter: %s", spec.chmod))
		}
		fm := os.FileMode(m)
		mode = &fm
	}
	hash, err := sourcesHash(srcs)
	if err != nil {
		return err
	}
	var flags string
	if spec.chown != "" {
		flags += "--chown=" + spec.chown + " "
	}
	if spec.chmod != "" {
		flags += "--chmod=" + spec.chmod + " "
	}
	probe := copyConfig(st.cfg)
	probe.Cmd = append(shellOf(st.cfg), fmt.Sprintf("#(nop) %s %s%s in %s ", spec.name, flags, hash, spec.dest))
	key := cacheKey(probe)
	if hit, err := r.probe(ctx, st, probe, key); err != nil || hit {
		return err
	}

	dest := spec.dest
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.cfg.WorkingDir, dest)
	}
	dest = path.Clean(dest)
	id, err := r.container(ctx, &container.Config{Image: st.image, Cmd: []string{"true"}, Entrypoint: []string{""}, Labels: map[string]string{}}, copyStep)
	if err != nil {
		return err
	}
	if err := r.copyInto(ctx, id, spec, srcs, dest, mode); err != nil {
		r.finishStep(ctx, id, false)
		return err
	}
	return r.commitContainer(ctx, st, id, probe, key)
}

// copyInto writes the sources into the container at dest.
func (r *build) copyInto(ctx context.Context, id string, spec copySpec, srcs []source, dest string, mode *os.FileMode) error {
	destIsDir := strings.HasSuffix(spec.dest, "/") || spec.dest == "." || strings.HasSuffix(spec.dest, "/.") || len(srcs) > 1
	destExists := false
	if stat, err := r.b.ctrs.StatPath(ctx, id, dest); err == nil {
		destExists = true
		if stat.Mode.IsDir() {
			destIsDir = true // an existing directory is copied into, like cp does
		}
	}
	owner, err := r.owner(ctx, id, spec.chown)
	if err != nil {
		return err
	}
	w := sourceWriter{dest: dest, destIsDir: destIsDir, makeDest: !destExists, unpack: spec.add && spec.from == "", owner: owner, mode: mode}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := w.write(tw, srcs)
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	err = r.b.ctrs.ExtractToDir(ctx, id, "/", runtime.ExtractOptions{}, pr)
	pr.CloseWithError(errors.New("copy ended"))
	return err
}

// findSources expands the sources (wildcards too) inside root; symlinks
// resolve inside root, never to the host's files.
func findSources(root string, patterns []string, name string) ([]source, error) {
	var srcs []source
	for _, s := range patterns {
		matches, err := filepath.Glob(filepath.Join(root, filepath.Clean("/"+s)))
		var found []source
		for _, m := range matches {
			rel, rerr := filepath.Rel(root, m)
			if rerr != nil {
				continue
			}
			safe, serr := securejoin.SecureJoin(root, rel)
			if _, lerr := os.Lstat(safe); serr == nil && lerr == nil {
				found = append(found, source{path: safe, name: filepath.Base(m)})
			}
		}
		if err != nil || len(found) == 0 {
			return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", name, s))
		}
		srcs = append(srcs, found...)
	}
	return srcs, nil
}

// fetchFrom copies each source of a COPY --from out of the stage's or
// image's filesystem into dir/<i>/, a symlink followed inside that
// filesystem (and named as the source).
func (r *build) fetchFrom(ctx context.Context, spec copySpec, dir string) error {
	var ref string
	if n, err := strconv.Atoi(spec.from); err == nil && n >= 0 && n < len(r.results) {
		ref = r.results[n]
	} else if j := stageIndex(r.stages[:len(r.results)], spec.from); j >= 0 {
		ref = r.results[j]
	} else {
		img, err := r.baseImage(ctx, spec.from, len(r.results))
		if err != nil {
			return fmt.Errorf("invalid from flag value %s: %w", spec.from, err)
		}
		ref = img.ID
	}
	resp, err := r.b.ctrs.Create(ctx, runtime.CreateRequest{
		Config:     &container.Config{Image: ref, Cmd: []string{"true"}, Entrypoint: []string{""}, Labels: map[string]string{}},
		HostConfig: &container.HostConfig{NetworkMode: "none"}, NoImageVolumes: true,
	})
	if err != nil {
		return err
	}
	defer func() {
		_ = r.b.ctrs.Remove(context.WithoutCancel(ctx), resp.ID, runtime.RemoveOptions{Force: true, RemoveVolumes: true})
	}()
	for i, s := range spec.srcs {
		p := path.Clean("/" + s)
		if stat, err := r.b.ctrs.StatPath(ctx, resp.ID, p); err == nil && stat.Mode&os.ModeSymlink != 0 && stat.LinkTarget != "" {
			p = stat.LinkTarget
		}
		rc, _, err := r.b.ctrs.ArchivePath(ctx, resp.ID, p)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s failed: stat %s: file does not exist", spec.name, s))
			}
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
		if got, want := path.Base(p), path.Base(path.Clean("/"+s)); got != want {
			if err := os.Rename(filepath.Join(sub, got), filepath.Join(sub, want)); err != nil {
				return err
			}
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
	// an id out of range would wrap (4294967296 is root) or mean "leave
	// as is" (-1) when chowned: a hostile image's passwd must not do that
	for _, id := range []int{uid, gid} {
		if id < 0 || id > maxID {
			return ids{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to convert uid/gid chown string to host mapping: id %d out of range", id))
		}
	}
	return ids{uid, gid}, nil
}

// maxID is the largest uid or gid (2^32-1 is "no id" to the kernel).
const maxID = 1<<32 - 2

// sourceWriter writes the tar that puts sources at dest: a directory's
// contents into dest, a file at dest (or into it when it is a directory),
// and with unpack a local archive's contents into dest. makeDest creates
// dest (0755, the owner's) for a directory's contents when it is missing.
type sourceWriter struct {
	dest                string
	destIsDir, makeDest bool
	unpack              bool
	owner               ids
	mode                *os.FileMode
}

func (w sourceWriter) write(tw *tar.Writer, srcs []source) error {
	for _, src := range srcs {
		fi, err := os.Stat(src.path)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if w.makeDest {
				hdr := &tar.Header{Name: strings.TrimPrefix(w.dest, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: w.owner.uid, Gid: w.owner.gid, ModTime: fi.ModTime()}
				if hdr.Name != "/" {
					if err := tw.WriteHeader(hdr); err != nil {
						return err
					}
				}
			}
			err = filepath.Walk(src.path, func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				rel, err := filepath.Rel(src.path, p)
				if err != nil || rel == "." {
					return err // the directory itself is dest, made above
				}
				return writeEntry(tw, p, fi, path.Join(w.dest, filepath.ToSlash(rel)), w.owner, w.mode)
			})
		case w.unpack && isArchive(src.path):
			err = unpackInto(tw, src.path, w.dest)
		default:
			target := w.dest
			if w.destIsDir {
				target = path.Join(w.dest, src.name)
			}
			err = writeEntry(tw, src.path, fi, target, w.owner, w.mode)
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
