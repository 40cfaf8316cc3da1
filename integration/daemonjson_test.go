package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"
)

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(path, b, 0o600))
}

// TestDaemonJSONOnly: berthd started with nothing but --config-file gets
// every key from the file (socket, roots, network, DNS, logging, registries,
// runtimes, debug).
func TestDaemonJSONOnly(t *testing.T) {
	testenv.RequireRoot(t)
	root := shortTempDir(t)
	slot := testenv.TakeNetSlot(t)
	runc, err := exec.LookPath("runc")
	assert.NilError(t, err)
	sock := filepath.Join(root, "d.sock")
	cfg := filepath.Join(root, "daemon.json")
	writeJSON(t, cfg, map[string]any{
		"hosts": []string{"unix://" + sock}, "data-root": filepath.Join(root, "data"), "exec-root": filepath.Join(root, "run"),
		"bridge": slot.Bridge, "bip": slot.BIP, "default-address-pools": []map[string]any{poolJSON(t, slot.Pool)},
		"dns": []string{"127.0.0.1"}, "dns-search": []string{"corp.example"}, "debug": true, "log-driver": "local", "log-opts": map[string]string{"max-size": "2m", "max-file": "3"},
		"insecure-registries": []string{"127.0.0.1:5999"}, "registry-mirrors": []string{"http://127.0.0.1:5998"},
		"runtimes": map[string]any{"mine": map[string]any{"path": runc}}, "default-runtime": "runc",
		"live-restore": true, "features": map[string]bool{"buildkit": false},
	})
	logf, err := os.Create(filepath.Join(root, "berthd.log"))
	assert.NilError(t, err)
	cmd := exec.Command(testenv.Binary(t), "--config-file", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	assert.NilError(t, cmd.Start())
	docker := func(args ...string) *icmd.Result {
		c := icmd.Command("docker", args...)
		c.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+root)
		return icmd.RunCmd(c)
	}
	t.Cleanup(func() {
		if ids := strings.Fields(docker("ps", "-aq").Stdout()); len(ids) > 0 {
			docker(append([]string{"rm", "-f"}, ids...)...)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		testenv.UnmountUnder(root)
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("berthd log:\n%s", b)
		}
	})
	waitFor(t, 60*time.Second, func() bool { return docker("version").ExitCode == 0 })

	info := docker("info", "--format", "{{.DockerRootDir}}|{{.LoggingDriver}}|{{.Debug}}|{{.RegistryConfig.Mirrors}}|{{index .RegistryConfig.IndexConfigs \"127.0.0.1:5999\"}}|{{range $k, $v := .Runtimes}}{{$k}} {{end}}")
	assert.Equal(t, info.ExitCode, 0, info.Combined())
	parts := strings.Split(strings.TrimSpace(info.Stdout()), "|")
	assert.Equal(t, len(parts), 6, info.Stdout())
	assert.Check(t, is.Equal(parts[0], filepath.Join(root, "data")))
	assert.Check(t, is.Equal(parts[1], "local"))
	assert.Check(t, is.Equal(parts[2], "true"))
	assert.Check(t, is.Equal(parts[3], "[http://127.0.0.1:5998]"))
	assert.Check(t, is.Contains(parts[4], "127.0.0.1:5999"))
	assert.Check(t, is.Equal(parts[5], "mine runc"))
	subnet := docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "bridge")
	assert.Check(t, is.Equal(strings.TrimSpace(subnet.Stdout()), strings.Split(slot.BIP, "/")[0]))

	archive, _ := testenv.BusyboxArchive(t)
	r := docker("load", "-i", archive)
	assert.Equal(t, r.ExitCode, 0, r.Combined())
	r = docker("run", "--name", "cj", "--runtime", "mine", "busybox", "echo", "hi")
	assert.Equal(t, r.Stdout(), "hi\n", r.Combined())
	r = docker("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Config}} {{.HostConfig.Runtime}}", "cj")
	assert.Equal(t, strings.TrimSpace(r.Stdout()), "local map[max-file:3 max-size:2m] mine")
	assert.Equal(t, docker("logs", "cj").Stdout(), "hi\n")
	r = docker("run", "--rm", "busybox", "grep", "^search", "/etc/resolv.conf")
	assert.Check(t, is.Contains(r.Stdout(), " corp.example"), r.Combined())
}

// poolJSON turns a base=CIDR,size=N flag value into daemon.json's object.
func poolJSON(t *testing.T, flag string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, kv := range strings.Split(flag, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "size" {
			n := 0
			for _, c := range v {
				n = n*10 + int(c-'0')
			}
			out[k] = n
		} else {
			out[k] = v
		}
	}
	return out
}

// TestDaemonJSONReload: SIGHUP re-reads log-driver and log-opts (new
// containers get them; existing ones keep theirs); a broken file changes
// nothing and berthd serves on.
func TestDaemonJSONReload(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	writeJSON(t, cfg, map[string]any{"log-opts": map[string]string{"max-size": "1k"}})
	d := testenv.StartDaemon(t, "--config-file", cfg)
	d.LoadBusybox(t)
	logCfg := func(name string) string {
		d.DockerOK(t, "create", "--name", name, "busybox", "true")
		return strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Config}}", name))
	}
	assert.Equal(t, logCfg("c1"), "json-file map[max-size:1k]")

	reloads := 0
	hup := func() {
		reloads++
		n := reloads
		assert.NilError(t, syscall.Kill(d.Pid(), syscall.SIGHUP))
		waitFor(t, 30*time.Second, func() bool {
			l := d.Log()
			return strings.Count(l, "Reloaded configuration")+strings.Count(l, "Error reconfiguring the daemon") >= n
		})
	}
	writeJSON(t, cfg, map[string]any{"log-opts": map[string]string{"max-size": "2k", "max-file": "3"}})
	hup()
	assert.Equal(t, logCfg("c2"), "json-file map[max-file:3 max-size:2k]")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "inspect", "-f", "{{.HostConfig.LogConfig.Config}}", "c1")), "map[max-size:1k]")

	writeJSON(t, cfg, map[string]any{"log-driver": "local", "log-opts": map[string]string{"max-size": "5m"}})
	hup()
	assert.Equal(t, logCfg("c3"), "local map[max-size:5m]")
	assert.Equal(t, strings.TrimSpace(d.DockerOK(t, "info", "--format", "{{.LoggingDriver}}")), "local")

	assert.NilError(t, os.WriteFile(cfg, []byte(`{"log-opts": {"max-size": `), 0o600))
	hup()
	assert.Check(t, is.Contains(d.Log(), "Error reconfiguring the daemon"))
	assert.Equal(t, logCfg("c4"), "local map[max-size:5m]", "a broken file changes nothing")
}

// TestDaemonJSONErrors: a malformed file, an unknown key and a key given
// both as a flag and in the file stop berthd at start in dockerd's words.
func TestDaemonJSONErrors(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		body string
		args []string
		want string
	}{
		{`{"debug": true,}`, nil, "unable to configure the Docker daemon with file %s: invalid character '}'"},
		{`{"log-driver": "json-file", "bogus-key": 1}`, nil, "the following directives don't match any configuration option: bogus-key"},
		{`{"log-driver": "local"}`, []string{"--log-driver", "json-file"},
			"the following directives are specified both as a flag and in the configuration file: log-driver: (from flag: json-file, from file: local)"},
		{`{"log-opts": {"max-size": "nope"}}`, nil, "failed to set log opts: invalid size: 'nope'"},
		{`{"registry-mirrors": ["ftp://m"]}`, nil, `invalid mirror: unsupported scheme`},
	} {
		cfg := filepath.Join(t.TempDir(), "daemon.json")
		assert.NilError(t, os.WriteFile(cfg, []byte(tc.body), 0o600))
		root := t.TempDir()
		cmd := exec.Command(testenv.Binary(t), append([]string{"--config-file", cfg, "-H", "unix://" + filepath.Join(shortTempDir(t), "s.sock"),
			"--data-root", root + "/data", "--exec-root", root + "/run"}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		assert.Check(t, err != nil, "berthd must not start: %s", out)
		want := tc.want
		if strings.Contains(want, "%s") {
			want = strings.Replace(want, "%s", cfg, 1)
		}
		assert.Check(t, is.Contains(string(out), want))
		assert.Check(t, is.Len(testenv.MountsUnder(root), 0), "nothing left mounted")
	}
}
