package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
	"gotest.tools/v3/poll"
)

// berthd serves its API while it restores. Its restore is held by the test
// seam (BERTHD_TEST_RESTORE_HOLD, a FIFO) after each SIGKILL, so what is
// asserted about "during the restore" does not depend on timing: /_ping
// answers, ps lists the containers from their records, and a stop waits
// for its container's restore. Once released, every container is
// manageable: exec, logs, stop + start, and in the end rm. Three restarts
// in a row.
func TestAPIServedDuringRestore(t *testing.T) {
	const n = 20
	d := testenv.StartDaemon(t, testenv.OwnCgroupParent(t)...)
	d.LoadBusybox(t)
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("w%d", i)
		d.DockerOK(t, "create", "--name", names[i], "busybox", "sh", "-c", "echo hello-$HOSTNAME; exec sleep 600")
	}
	d.DockerOK(t, append([]string{"start"}, names...)...)
	fifo := filepath.Join(d.Root, "restore-hold")
	assert.NilError(t, syscall.Mkfifo(fifo, 0o600))
	d.DaemonEnv = []string{"BERTHD_TEST_RESTORE_HOLD=" + fifo}
	phasesOver := func() int { return strings.Count(d.Log(), `msg="restore phase over`) }

	for round := 1; round <= 3; round++ {
		before := phasesOver()
		d.Kill(t)
		d.StartServing(t) // returns once the API answers
		assert.Assert(t, is.Contains(d.Log(), "restore held until "+fifo))
		assert.Equal(t, phasesOver(), before, "round %d: the restore ended while held", round)
		r := icmd.RunCmd(icmd.Command("curl", "-sf", "--unix-socket", d.Sock, "http://x/_ping"))
		assert.Check(t, is.Equal(r.Stdout(), "OK"), "round %d: /_ping during the restore: %s", round, r.Combined())
		ps := strings.Fields(d.DockerOK(t, "ps", "-q"))
		assert.Check(t, is.Len(ps, n), "round %d: ps during the restore lists the stored records", round)

		victim := fmt.Sprintf("w%d", round)
		stopped := make(chan *icmd.Result, 1)
		go func() { stopped <- d.Docker("stop", "-t", "0", victim) }()
		select {
		case res := <-stopped:
			t.Fatalf("round %d: a stop finished before its container was restored: %s", round, res.Combined())
		default:
		}
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // lets the restore go
		assert.NilError(t, err)
		assert.NilError(t, w.Close())
		res := <-stopped
		assert.Assert(t, res.ExitCode == 0, "round %d: stop after the restore: %s", round, res.Combined())
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if phasesOver() > before {
				return poll.Success()
			}
			return poll.Continue("restore phase of round %d not over", round)
		}, poll.WithTimeout(2*time.Minute))

		assert.Check(t, is.Equal(strings.TrimSpace(inspectF(t, d, "{{.State.Status}}", victim)), "exited"))
		d.DockerOK(t, "start", victim)
		// every container in the last round (the CLI is slow on a loaded
		// machine), the victim and its neighbour in the others
		check := names
		if round < 3 {
			check = []string{victim, fmt.Sprintf("w%d", round+10)}
		}
		for _, name := range check {
			d.DockerOK(t, "exec", name, "true")
			assert.Check(t, is.Contains(d.DockerOK(t, "logs", name), "hello-"), "round %d: logs of %s", round, name)
		}
		assert.Check(t, is.Len(strings.Fields(d.DockerOK(t, "ps", "-q")), n), "round %d", round)
	}
	logRestores(t, d)
	d.DockerOK(t, append([]string{"rm", "-f"}, names...)...)
	assert.Check(t, is.Len(strings.Fields(d.DockerOK(t, "ps", "-aq")), 0))
	waitEmpty(t, d)
}
