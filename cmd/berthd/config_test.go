package main

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLogFlags(t *testing.T) {
	c, err := parseFlags([]string{"--log-opt", "max-size=10m", "--log-opt", "max-file=3", "--log-opt", "labels=a=b"})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(c.logOpts, map[string]string{"max-size": "10m", "max-file": "3", "labels": "a=b"}))

	for want, args := range map[string][]string{
		`failed to set log opts: logger: no log driver named 'asdf' is registered`: {"--log-driver", "asdf"},
		`--log-opt "max-size": not a key=value pair`:                               {"--log-opt", "max-size"},
		`failed to set log opts: invalid size: 'x'`:                                {"--log-opt", "max-size=x"},
		`failed to set log opts: unknown log opt 'foo' for json-file log driver`:   {"--log-opt", "foo=1"},
		`failed to set log opts: unknown log opt 'max-size' for syslog log driver`: {"--log-driver", "syslog", "--log-opt", "max-size=1m"},
	} {
		_, err := parseFlags(args)
		assert.Check(t, is.Error(err, want))
	}
}

func TestDefaultIpcModeFlag(t *testing.T) {
	c, err := parseFlags(nil)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.DefaultIpcMode, "private"))
	for _, ok := range []string{"private", "shareable"} {
		c, err := parseFlags([]string{"--default-ipc-mode", ok})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(c.DefaultIpcMode, ok))
	}
	for arg, want := range map[string]string{
		"host":          `IPC mode "host" is not supported as default value; use "shareable" or "private"`,
		"container:abc": `IPC mode "container:abc" is not supported as default value; use "shareable" or "private"`,
		"none":          `IPC mode "none" is not supported as default value; use "shareable" or "private"`,
		"bogus":         `default IPC mode setting (bogus) is invalid; use "shareable" or "private"`,
	} {
		_, err := parseFlags([]string{"--default-ipc-mode", arg})
		assert.Check(t, is.Error(err, want), arg)
	}
}
