package network

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestRedump(t *testing.T) {
	other := errors.New("permission denied")
	for _, tc := range []struct {
		name      string
		fails     int   // interrupted dumps before a whole one
		err       error // of the whole one
		want      []int
		wantErr   error
		wantCalls int
	}{
		{name: "whole at once", want: []int{1, 2}, wantCalls: 1},
		{name: "interrupted twice", fails: 2, want: []int{1, 2}, wantCalls: 3},
		{name: "always interrupted", fails: 100, wantErr: netlink.ErrDumpInterrupted, wantCalls: dumpTries},
		{name: "other error not retried", err: other, wantErr: other, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			got, err := redump(func() ([]int, error) {
				calls++
				if calls <= tc.fails {
					return []int{1}, netlink.ErrDumpInterrupted // partial
				}
				if tc.err != nil {
					return nil, tc.err
				}
				return []int{1, 2}, nil
			})
			assert.Check(t, is.Equal(calls, tc.wantCalls))
			if tc.wantErr != nil {
				assert.Check(t, errors.Is(err, tc.wantErr), "%v", err)
				assert.Check(t, is.Len(got, 0), "partial results must not be used")
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(got, tc.want))
		})
	}
}
