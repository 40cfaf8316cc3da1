package oci

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		assert.NilError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		assert.NilError(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
		"www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
	testGroup = "root:x:0:\n" +
		"daemon:x:1:\n" +
		"www-data:x:33:\n" +
		"users:x:100:www-data\n" +
		"staff:x:50:www-data,daemon\n"
)

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})

	tests := []struct {
		spec     string
		groupAdd []string
		want     User
		wantErr  string
	}{
		{spec: "", want: User{UID: 0, GID: 0, AdditionalGids: []uint32{0}, Home: "/root"}},
		{spec: "root", want: User{UID: 0, GID: 0, AdditionalGids: []uint32{0}, Home: "/root"}},
		{spec: "www-data", want: User{UID: 33, GID: 33, AdditionalGids: []uint32{33, 100, 50}, Home: "/var/www"}},
		{spec: "33", want: User{UID: 33, GID: 33, AdditionalGids: []uint32{33, 100, 50}, Home: "/var/www"}},
		{spec: "www-data:users", want: User{UID: 33, GID: 100, AdditionalGids: []uint32{100}, Home: "/var/www"}},
		{spec: "33:1", want: User{UID: 33, GID: 1, AdditionalGids: []uint32{1}, Home: "/var/www"}},
		{spec: "1234", want: User{UID: 1234, GID: 0, AdditionalGids: []uint32{0}, Home: "/"}},
		{spec: "1234:5678", want: User{UID: 1234, GID: 5678, AdditionalGids: []uint32{5678}, Home: "/"}},
		{spec: "daemon", groupAdd: []string{"users", "4242", "staff"}, want: User{UID: 1, GID: 1, AdditionalGids: []uint32{1, 50, 100, 4242}, Home: "/usr/sbin"}},
		{spec: "nosuch", wantErr: "unable to find user nosuch: no matching entries in passwd file"},
		{spec: "www-data:nosuch", wantErr: "unable to find group nosuch: no matching entries in group file"},
		{spec: "", groupAdd: []string{"nosuch"}, wantErr: "unable to find group nosuch: no matching entries in group file"},
		{spec: "99999999999", wantErr: "uids and gids must be in range"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ResolveUser(root, tc.spec, tc.groupAdd)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.Assert(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	root := t.TempDir()
	u, err := ResolveUser(root, "1000:1000", []string{"27"})
	assert.NilError(t, err)
	assert.DeepEqual(t, u, User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 27}, Home: "/"})

	u, err = ResolveUser(root, "", nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, u, User{AdditionalGids: []uint32{0}, Home: "/"})

	_, err = ResolveUser(root, "www-data", nil)
	assert.ErrorContains(t, err, "unable to find user www-data: no matching entries in passwd file")
}

// A symlink in the image must not make the engine read a host file.
func TestResolveUserStaysInRootfs(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	writeFiles(t, dir, map[string]string{"outside/passwd": "evil:x:0:0::/:/bin/sh\n"})
	assert.NilError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))

	for _, target := range []string{"../../outside/passwd", filepath.Join(dir, "outside/passwd")} {
		t.Run(target, func(t *testing.T) {
			p := filepath.Join(root, "etc/passwd")
			_ = os.Remove(p)
			assert.NilError(t, os.Symlink(target, p))
			_, err := ResolveUser(root, "evil", nil)
			assert.ErrorContains(t, err, "unable to find user evil")
		})
	}

	// a symlink that stays inside is followed, resolved against the rootfs
	writeFiles(t, root, map[string]string{"usr/lib/passwd": "app:x:500:500::/app:/bin/sh\n"})
	p := filepath.Join(root, "etc/passwd")
	assert.NilError(t, os.Remove(p))
	assert.NilError(t, os.Symlink("/usr/lib/passwd", p))
	u, err := ResolveUser(root, "app", nil)
	assert.NilError(t, err)
	assert.Equal(t, u.UID, uint32(500))
}

func TestResolveUserRejectsSpecialFiles(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"etc/passwd": testPasswd})
	assert.NilError(t, unix.Mkfifo(filepath.Join(root, "etc/group"), 0o644))

	done := make(chan error, 1)
	go func() {
		_, err := ResolveUser(root, "root", nil)
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "/etc/group in the container is not a regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("ResolveUser blocked on a FIFO")
	}
}
