package main

import (
	"encoding/json"
	"sync/atomic"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/sirupsen/logrus"

	"github.com/berthd/berth/runtime/ociruntime"
)

// live holds the configuration a SIGHUP reloads from daemon.json, as
// dockerd reloads it: the default log driver and log-opts, debug and the
// log level. Other keys keep the values berthd started with.
type live struct {
	log      atomic.Pointer[containertypes.LogConfig]
	debug    atomic.Bool
	runtimes ociruntime.Live
	mirrors  atomic.Pointer[[]string]
	// reloadMirrors hands new registry-mirrors to the image service.
	reloadMirrors func([]string) error
}

func newLive(c *config) (*live, error) {
	l := &live{}
	l.log.Store(&containertypes.LogConfig{Type: c.LogDriver, Config: c.logOpts})
	l.debug.Store(c.Debug)
	rts, err := ociruntime.NewSet(runtimesConfig(c))
	if err != nil {
		return nil, err
	}
	l.runtimes.Store(rts)
	l.mirrors.Store(&c.RegistryMirrors)
	l.reloadMirrors = func([]string) error { return nil }
	return l, nil
}

// runtimesConfig is what c says of the OCI runtimes.
func runtimesConfig(c *config) ociruntime.Config {
	return ociruntime.Config{Default: c.DefaultRuntime, Add: c.AddRuntimes, Args: c.runtimeArgs, ExecRoot: c.ExecRoot}
}

// logConfig is the daemon's default logging now.
func (l *live) logConfig() containertypes.LogConfig {
	lc := l.log.Load()
	cfg := make(map[string]string, len(lc.Config))
	for k, v := range lc.Config {
		cfg[k] = v
	}
	return containertypes.LogConfig{Type: lc.Type, Config: cfg}
}

// reload re-reads the command line and the config file; a file that does
// not parse, or whose values are bad, changes nothing (dockerd's "Error
// reconfiguring the daemon").
func (l *live) reload(args []string) {
	c, err := parseFlags(args)
	if err != nil {
		logrus.WithError(err).Error("Error reconfiguring the daemon")
		return
	}
	rts, err := ociruntime.NewSet(runtimesConfig(c))
	if err != nil {
		logrus.WithError(err).Error("Error reconfiguring the daemon")
		return
	}
	if err := l.reloadMirrors(c.RegistryMirrors); err != nil {
		logrus.WithError(err).Error("Error reconfiguring the daemon")
		return
	}
	l.mirrors.Store(&c.RegistryMirrors)
	l.runtimes.Store(rts)
	l.log.Store(&containertypes.LogConfig{Type: c.LogDriver, Config: c.logOpts})
	l.debug.Store(c.Debug)
	level, err := logrus.ParseLevel(c.LogLevel)
	if err == nil {
		if c.Debug {
			level = logrus.DebugLevel
		}
		logrus.SetLevel(level)
	}
	b, _ := json.Marshal(map[string]any{"log-driver": c.LogDriver, "log-opts": c.logOpts, "debug": c.Debug, "log-level": c.LogLevel,
		"runtimes": rts.Names(), "default-runtime": rts.Default(), "registry-mirrors": c.RegistryMirrors})
	logrus.Infof("Reloaded configuration: %s", b)
}

func (l *live) LoggingDriver() string { return l.log.Load().Type }
func (l *live) Runtimes() (map[string]system.RuntimeWithStatus, string) {
	return l.runtimes.Load().Info()
}
func (l *live) Debug() bool               { return l.debug.Load() }
func (l *live) RegistryMirrors() []string { return *l.mirrors.Load() }
