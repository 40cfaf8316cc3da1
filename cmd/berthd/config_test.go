package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "daemon.json")
	assert.NilError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestConfigFile(t *testing.T) {
	p := writeConfig(t, `{
		"hosts": ["unix:///tmp/x.sock"], "data-root": "/tmp/d", "exec-root": "/tmp/e", "debug": true,
		"log-driver": "local", "log-opts": {"max-size": "5m", "max-file": "2"},
		"dns": ["127.0.0.53"], "dns-search": ["a.example", "b.example"], "bip": "10.99.0.1/24", "default-address-pools": [{"base": "10.98.0.0/16", "size": 24}],
		"insecure-registries": ["reg:5000"], "registry-mirrors": ["http://127.0.0.1:5001"],
		"runtimes": {"crun": {"path": "/usr/bin/crun", "runtimeArgs": ["--debug"]}}, "default-runtime": "crun",
		"live-restore": true, "features": {"buildkit": false}
	}`)
	c, err := parseFlags([]string{"--config-file", p})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.Host, "unix:///tmp/x.sock"))
	assert.Check(t, is.Equal(c.DataRoot, "/tmp/d"))
	assert.Check(t, is.Equal(c.ExecRoot, "/tmp/e"))
	assert.Check(t, is.Equal(c.Pidfile, "/tmp/e/berthd.pid"))
	assert.Check(t, c.Debug)
	assert.Check(t, is.Equal(c.LogDriver, "local"))
	assert.Check(t, is.DeepEqual(c.logOpts, map[string]string{"max-size": "5m", "max-file": "2"}))
	assert.Check(t, is.DeepEqual(c.DNS, []string{"127.0.0.53"}))
	assert.Check(t, is.DeepEqual(c.DNSSearch, []string{"a.example", "b.example"}))
	assert.Check(t, is.Equal(c.BIP, "10.99.0.1/24"))
	assert.Check(t, is.DeepEqual(c.AddressPools, []string{"base=10.98.0.0/16,size=24"}))
	assert.Check(t, is.DeepEqual(c.InsecureRegistries, []string{"reg:5000"}))
	assert.Check(t, is.DeepEqual(c.RegistryMirrors, []string{"http://127.0.0.1:5001"}))
	assert.Check(t, is.DeepEqual(c.AddRuntimes, []string{"crun=/usr/bin/crun"}))
	assert.Check(t, is.DeepEqual(c.runtimeArgs, map[string][]string{"crun": {"--debug"}}))
	assert.Check(t, is.Equal(c.DefaultRuntime, "crun"))
	assert.Check(t, is.DeepEqual(c.Features, map[string]bool{"buildkit": false}))

	// flags win where the file is silent
	c, err = parseFlags([]string{"--config-file", p, "--dns-zone", "x.internal"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.DNSZone, "x.internal"))
}

func TestConfigFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	_, err := parseFlags([]string{"--config-file", missing})
	assert.Check(t, is.ErrorContains(err, "no such file or directory"), "an explicit file must exist")

	for _, tc := range []struct {
		body string
		args []string
		want string
	}{
		{`{"debug": tru}`, nil, "unable to configure the Docker daemon with file %s: invalid character"},
		{`{"bogus": 1, "also": 2}`, nil, "unable to configure the Docker daemon with file %s: the following directives don't match any configuration option: also, bogus"},
		{`{"debug": false, "dns": ["1.1.1.1"]}`, []string{"--debug", "--dns", "8.8.8.8"},
			"unable to configure the Docker daemon with file %s: the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: false), dns: (from flag: [8.8.8.8], from file: [1.1.1.1])"},
		{`{"log-opts": {"max-size": "x"}}`, nil, "failed to set log opts: invalid size: 'x'"},
		{`{"log-driver": "asdf"}`, nil, "failed to set log opts: logger: no log driver named 'asdf' is registered"},
		{`{"debug": "yes"}`, nil, `invalid value for debug`},
		{`{"hosts": ["unix:///a", "unix:///b"]}`, nil, "berthd listens on exactly one unix socket"},
	} {
		p := writeConfig(t, tc.body)
		want := tc.want
		if strings.Contains(want, "%s") {
			want = fmt.Sprintf(want, p)
		}
		_, err := parseFlags(append([]string{"--config-file", p}, tc.args...))
		assert.Check(t, is.ErrorContains(err, want), tc.body)
	}
}
