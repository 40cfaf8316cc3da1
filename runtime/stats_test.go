package runtime

import (
	"testing"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
)

func TestParseCgroupMounts(t *testing.T) {
	mountinfo := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /nested /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	m := parseCgroupMounts([]byte(mountinfo))
	assert.DeepEqual(t, m, map[string]cgroupMount{
		"cpu":          {root: "/", dir: "/sys/fs/cgroup/cpu,cpuacct"},
		"cpuacct":      {root: "/", dir: "/sys/fs/cgroup/cpu,cpuacct"},
		"memory":       {root: "/nested", dir: "/sys/fs/cgroup/memory"},
		"name=systemd": {root: "/", dir: "/sys/fs/cgroup/systemd"},
	}, cmpUnexported)
}

func TestParseProcStat(t *testing.T) {
	usage, cpus, err := parseProcStat([]byte("cpu  100 2 30 400 5 0 6 7 0 0\ncpu0 50 1 15 200 2 0 3 3 0 0\ncpu1 50 1 15 200 3 0 3 4 0 0\nintr 1 2 3\n"))
	assert.NilError(t, err)
	assert.Equal(t, cpus, uint32(2))
	// the first seven fields, in USER_HZ ticks of 10ms
	assert.Equal(t, usage, uint64(100+2+30+400+5+0+6)*10_000_000)
	_, _, err = parseProcStat([]byte("intr 1\n"))
	assert.ErrorContains(t, err, "no cpu line")
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:     946      11    1    2    0     0          0         0      586       7    3    4    0     0       0          0
`
	assert.DeepEqual(t, parseNetDev([]byte(in)), map[string]container.NetworkStats{
		"eth0": {RxBytes: 946, RxPackets: 11, RxErrors: 1, RxDropped: 2, TxBytes: 586, TxPackets: 7, TxErrors: 3, TxDropped: 4},
	})
}

func TestParseBlkio(t *testing.T) {
	path := t.TempDir() + "/blkio.throttle.io_service_bytes_recursive"
	writeFile(t, path, "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\nTotal 4608\n")
	e, err := parseBlkio(path)
	assert.NilError(t, err)
	assert.DeepEqual(t, e, []container.BlkioStatEntry{
		{Major: 8, Minor: 0, Op: "Read", Value: 4096},
		{Major: 8, Minor: 0, Op: "Write", Value: 512},
		{Major: 8, Minor: 0, Op: "Sync", Value: 0},
	})
}
