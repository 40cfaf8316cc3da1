// Package diskspace is berth's one rule for how much of a filesystem an
// upload (a docker cp, a build context, an image archive) must leave free.
package diskspace

import "golang.org/x/sys/unix"

// MaxReserve caps the reserve on large filesystems.
const MaxReserve = 256 << 20

// Reserve is what an upload leaves free on a filesystem of total bytes:
// 1% of it, at most MaxReserve. A small data root (a 64 MiB tmpfs) keeps
// working; a large disk keeps enough for the daemon's own records.
func Reserve(total uint64) uint64 {
	return min(total/100, MaxReserve)
}

// Stat returns the total and available bytes of the filesystem of path.
func Stat(path string) (total, free uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	return Totals(&st)
}

// Totals reads the total and available bytes of st.
func Totals(st *unix.Statfs_t) (total, free uint64, ok bool) {
	bsize := uint64(st.Bsize)
	if st.Frsize > 0 {
		bsize = uint64(st.Frsize)
	}
	return st.Blocks * bsize, st.Bavail * bsize, st.Blocks > 0
}
