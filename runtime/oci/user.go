package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// maxUserFile bounds how much of a container's /etc/passwd or /etc/group is
// read: the image is untrusted.
const maxUserFile = 16 << 20

// ResolveUser resolves a Docker user spec ("", "name", "uid", "uid:gid",
// "name:group", "uid:group", "name:gid") and HostConfig.GroupAdd against the
// container's own /etc/passwd and /etc/group, as Docker does at start.
// Numeric ids need no entry (-u 1234 works on any image); an unknown name is
// ErrInvalidArgument with Docker's message, e.g. "unable to find user x: no
// matching entries in passwd file". The files are opened inside rootfs: a
// symlink in the image cannot lead the engine out of it.
func ResolveUser(rootfs, spec string, groupAdd []string) (User, error) {
	passwd, err := readRootfsFile(rootfs, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	group, err := readRootfsFile(rootfs, "/etc/group")
	if err != nil {
		return User{}, err
	}
	return resolveUser(spec, groupAdd, passwd, group)
}

// resolveUser does the lookup on file contents; nil means the file is missing.
func resolveUser(spec string, groupAdd []string, passwd, group []byte) (User, error) {
	reader := func(b []byte) io.Reader {
		if b == nil {
			return nil
		}
		return bytes.NewReader(b)
	}
	defaults := &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	eu, err := user.GetExecUser(spec, defaults, reader(passwd), reader(group))
	if err != nil {
		return User{}, invalid("%s", err)
	}
	u := User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), Home: eu.Home}
	u.AdditionalGids = []uint32{u.GID}
	gids := slices.Clone(eu.Sgids)
	if len(groupAdd) > 0 {
		added, err := user.GetAdditionalGroups(groupAdd, reader(group))
		if err != nil {
			return User{}, invalid("%s", err)
		}
		slices.Sort(added) // GetAdditionalGroups returns them in map order
		gids = append(gids, added...)
	}
	for _, g := range gids {
		if !slices.Contains(u.AdditionalGids, uint32(g)) {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}

// readRootfsFile reads a regular file of the rootfs, resolving symlinks as
// if rootfs were "/". A missing file gives nil, nil.
func readRootfsFile(rootfs, name string) ([]byte, error) {
	h, err := pathrs.OpenInRoot(rootfs, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s in container rootfs: %w", name, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat %s in container rootfs: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		// A FIFO or device would block or misbehave; Docker would fail to parse it.
		return nil, invalid("%s in the container is not a regular file", name)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("opening %s in container rootfs: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUserFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s in container rootfs: %w", name, err)
	}
	if len(b) > maxUserFile {
		return nil, invalid("%s in the container is larger than %d bytes", name, maxUserFile)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
