package runtime

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
)

func TestHideRuntimeFiles(t *testing.T) {
	m, a, d := container.ChangeModify, container.ChangeAdd, container.ChangeDelete
	ch := func(k container.ChangeType, p string) container.FilesystemChange {
		return container.FilesystemChange{Kind: k, Path: p}
	}
	cases := []struct {
		name    string
		in, out []container.FilesystemChange
	}{
		{"fresh container", []container.FilesystemChange{ch(m, "/etc"), ch(a, "/etc/hostname"), ch(a, "/etc/hosts"), ch(a, "/etc/resolv.conf")}, []container.FilesystemChange{}},
		{"real change in /etc kept", []container.FilesystemChange{ch(m, "/etc"), ch(d, "/etc/group"), ch(a, "/etc/hosts")}, []container.FilesystemChange{ch(m, "/etc"), ch(d, "/etc/group")}},
		{"volume mount point kept", []container.FilesystemChange{ch(a, "/data"), ch(a, "/proc")}, []container.FilesystemChange{ch(a, "/data")}},
		{"deleted hosts file shows", []container.FilesystemChange{ch(m, "/etc"), ch(d, "/etc/hosts")}, []container.FilesystemChange{ch(m, "/etc"), ch(d, "/etc/hosts")}},
		{"other dirs untouched", []container.FilesystemChange{ch(m, "/tmp"), ch(a, "/tmp/x")}, []container.FilesystemChange{ch(m, "/tmp"), ch(a, "/tmp/x")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.DeepEqual(t, hideRuntimeFiles(tc.in), tc.out)
		})
	}
}
