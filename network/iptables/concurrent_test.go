package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const privateNetEnv = "BERTH_IPTABLES_TEST_NETNS"

// inPrivateNet runs the calling test again in a network namespace of its
// own (unshare --net), so that it may change the host-wide chains: it
// returns false in the parent, which only reports the child's result.
func inPrivateNet(t *testing.T) bool {
	t.Helper()
	if os.Getenv(privateNetEnv) == "1" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root (a network namespace and iptables)")
	}
	cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), privateNetEnv+"=1")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "%s", out)
	assert.Check(t, strings.Contains(string(out), "--- PASS: "+t.Name()), "%s", out)
	return false
}

// Daemons starting together on a host whose FORWARD chain is empty each
// put BERTH-USER's jump first and their own right after it; whoever finds
// BERTH-USER not first moves it, which for a moment left no rule 2 for
// another's insert (an e2e run's berthd failed to start on it). Every
// start must succeed, and then BERTH-USER's jump is first and once, and
// each daemon's is there once.
func TestConcurrentStartsShareForward(t *testing.T) {
	if !inPrivateNet(t) {
		return
	}
	ctx := context.Background()
	const daemons = 4
	for round := range 4 {
		fws := make([]*Firewall, daemons)
		errs := make([]error, daemons)
		var wg sync.WaitGroup
		for i := range fws {
			fws[i] = New(fmt.Sprintf("bct%d", i))
			br := Bridge{Name: fmt.Sprintf("bct%d", i), Subnet: netip.MustParsePrefix(fmt.Sprintf("10.99.%d.0/24", i))}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = fws[i].Apply(ctx, []Bridge{br}, nil)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			assert.Check(t, err, "round %d, daemon %d", round, i)
		}
		out, err := run(ctx, nil, "iptables", "-w", "-t", "filter", "-S", "FORWARD")
		assert.NilError(t, err, out)
		rules := strings.Split(strings.TrimSpace(out), "\n")[1:] // after -P
		assert.Assert(t, len(rules) > 0, "round %d: %s", round, out)
		assert.Check(t, is.Equal(rules[0], "-A FORWARD -j "+UserChain), "round %d: %s", round, out)
		assert.Check(t, is.Equal(strings.Count(out, "-A FORWARD -j "+UserChain+"\n"), 1), "round %d: %s", round, out)
		for _, fw := range fws {
			assert.Check(t, is.Equal(strings.Count(out, "-A FORWARD -j "+fw.Chains.Forward+"\n"), 1), "round %d: %s", round, out)
		}
		// back to an empty FORWARD for the next round
		for _, fw := range fws {
			assert.Check(t, fw.Remove(ctx))
		}
		for {
			if _, err := run(ctx, nil, "iptables", "-w", "-t", "filter", "-D", "FORWARD", "-j", UserChain); err != nil {
				break
			}
		}
		_, _ = run(ctx, nil, "iptables", "-w", "-t", "filter", "-X", UserChain)
		if t.Failed() {
			return
		}
	}
}
