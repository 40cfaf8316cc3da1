package cgroups

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestParse(t *testing.T) {
	const mountinfo = `25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
27 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
28 30 0:23 /berth/abc /some/bind rw - cgroup cgroup rw,memory
29 25 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
30 1 8:1 / / rw - ext4 /dev/vda rw`
	assert.DeepEqual(t, Parse(mountinfo), []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"})
}
