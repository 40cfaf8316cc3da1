package runtime

import (
	"os"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/assert"
)

var cmpUnexported = cmp.Exporter(func(reflect.Type) bool { return true })

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	assert.NilError(t, os.WriteFile(path, []byte(data), 0o644))
}

func TestParsePSOutput(t *testing.T) {
	out := `UID   PID  PPID  C STIME TTY  TIME     CMD
root  10   1     0 21:56 ?    00:00:00 sleep 1000
root  11   1     0 21:56 ?    00:00:00 /usr/bin/other  daemon
root  12   10    0 21:56 ?    00:00:00 sh -c  echo  hi
`
	resp, err := parsePSOutput([]byte(out), []int{10, 12})
	assert.NilError(t, err)
	assert.DeepEqual(t, resp.Titles, []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"})
	assert.DeepEqual(t, resp.Processes, [][]string{
		{"root", "10", "1", "0", "21:56", "?", "00:00:00", "sleep 1000"},
		{"root", "12", "10", "0", "21:56", "?", "00:00:00", "sh -c echo hi"},
	})

	// thread lines ("-m") follow the process they belong to
	out = "PID TTY TIME CMD\n10 ? 00:00:00 sleep\n- - 00:00:00 -\n11 ? 00:00:00 other\n- - 00:00:00 -\n"
	resp, err = parsePSOutput([]byte(out), []int{10})
	assert.NilError(t, err)
	assert.Equal(t, len(resp.Processes), 2)

	_, err = parsePSOutput([]byte("UID CMD\nroot x\n"), nil)
	assert.ErrorContains(t, err, "PID field")
}

func TestValidatePSArgs(t *testing.T) {
	for args, ok := range map[string]bool{"-ef": true, "-o pid,comm": true, "-o pid=PID": true, "-o user=PID": false, "aux -o  comm=PIDX": false} {
		err := validatePSArgs(args)
		assert.Equal(t, err == nil, ok, args)
	}
	assert.Equal(t, psPidsArg([]int{1, 22, 333}), "-q1,22,333")
}

func FuzzTopParsers(f *testing.F) {
	f.Add("-ef", "PID CMD\n1 sleep\n- -\n")
	f.Add("-o user=PID", "UID PID\nroot x\n")
	f.Fuzz(func(t *testing.T, psArgs, out string) {
		_ = validatePSArgs(psArgs)
		_, _ = parsePSOutput([]byte(out), []int{1, 2})
	})
}
