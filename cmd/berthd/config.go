package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// config is berthd's command line, named like dockerd's flags.
type config struct {
	Host               string
	DataRoot           string
	ExecRoot           string
	Pidfile            string
	Debug              bool
	LogLevel           string
	InsecureRegistries []string
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := pflag.NewFlagSet("berthd", pflag.ContinueOnError)
	fs.StringVarP(&c.Host, "host", "H", "unix:///run/berth/docker.sock", "Daemon socket to listen on (unix://PATH)")
	fs.StringVar(&c.DataRoot, "data-root", "/var/lib/berth", "Root directory of persistent state")
	fs.StringVar(&c.ExecRoot, "exec-root", "/run/berth", "Root directory for execution state files")
	fs.StringVarP(&c.Pidfile, "pidfile", "p", "", "Path to use for the daemon PID file (default <exec-root>/berthd.pid)")
	fs.BoolVarP(&c.Debug, "debug", "D", false, "Enable debug mode")
	fs.StringVarP(&c.LogLevel, "log-level", "l", "info", `Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")`)
	fs.StringSliceVar(&c.InsecureRegistries, "insecure-registry", nil, "Registries reached over plain HTTP or without TLS verification")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.Pidfile == "" {
		c.Pidfile = c.ExecRoot + "/berthd.pid"
	}
	return c, nil
}

// socketPath returns the filesystem path of a unix:// host.
func (c *config) socketPath() (string, error) {
	p, ok := strings.CutPrefix(c.Host, "unix://")
	if !ok || p == "" {
		return "", fmt.Errorf("invalid --host %q: only unix:///path/to/socket is supported", c.Host)
	}
	return p, nil
}
