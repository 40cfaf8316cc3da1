package logdriver

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// The fluentd driver's options, checked here (berthd) and used by
// logdriver/remote (the monitor), which writes with fluent-logger-golang
// as dockerd does.

// FluentdConfig is the parsed fluentd options.
type FluentdConfig struct {
	Network, Host, SocketPath string
	Port                      int
	BufferLimit               int
	RetryWait                 int // milliseconds
	MaxRetries                int
	Async                     bool
	AsyncReconnectInterval    int // milliseconds
	SubSecondPrecision        bool
	RequestAck                bool
	WriteTimeout, ReadTimeout time.Duration
}

var fluentdKeys = map[string]bool{
	"fluentd-address": true, "fluentd-async": true, "fluentd-async-reconnect-interval": true,
	"fluentd-buffer-limit": true, "fluentd-max-retries": true, "fluentd-request-ack": true,
	"fluentd-retry-wait": true, "fluentd-sub-second-precision": true, "fluentd-write-timeout": true,
	"fluentd-read-timeout": true,
}

func validateFluentd(opts map[string]string) error {
	for k := range opts {
		if !fluentdKeys[k] && !commonOpts[k] {
			return fmt.Errorf("unknown log opt '%s' for fluentd log driver", k)
		}
	}
	_, err := ParseFluentd(opts)
	return err
}

// ParseFluentd parses the fluentd options with dockerd's defaults
// (127.0.0.1:24224 over tcp, a 1 MiB buffer, retries every second without
// end) and messages.
func ParseFluentd(opts map[string]string) (FluentdConfig, error) {
	c := FluentdConfig{BufferLimit: 1024 * 1024, RetryWait: 1000, MaxRetries: math.MaxInt32}
	if err := c.parseAddress(opts["fluentd-address"]); err != nil {
		return c, fmt.Errorf("invalid fluentd-address (%s): %w", opts["fluentd-address"], err)
	}
	var err error
	if s := opts["fluentd-buffer-limit"]; s != "" {
		n, err := units.RAMInBytes(s)
		if err != nil {
			return c, err
		}
		c.BufferLimit = int(n)
	}
	if s := opts["fluentd-retry-wait"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return c, err
		}
		c.RetryWait = int(d.Seconds() * 1000)
	}
	if s := opts["fluentd-max-retries"]; s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return c, err
		}
		if n > math.MaxInt32 {
			return c, errors.New("invalid fluentd-max-retries: value out of range")
		}
		c.MaxRetries = int(n)
	}
	for key, dst := range map[string]*bool{"fluentd-async": &c.Async, "fluentd-sub-second-precision": &c.SubSecondPrecision, "fluentd-request-ack": &c.RequestAck} {
		if s := opts[key]; s != "" {
			if *dst, err = strconv.ParseBool(s); err != nil {
				return c, err
			}
		}
	}
	if s := opts["fluentd-async-reconnect-interval"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return c, fmt.Errorf("invalid value for fluentd-async-reconnect-interval: %w", err)
		}
		if d != 0 {
			if d < 100*time.Millisecond || d > 10*time.Second {
				return c, fmt.Errorf("invalid value for fluentd-async-reconnect-interval: value (%q) must be between %s and %s", d, 100*time.Millisecond, 10*time.Second)
			}
			c.AsyncReconnectInterval = int(d.Milliseconds())
		}
	}
	for key, dst := range map[string]*time.Duration{"fluentd-write-timeout": &c.WriteTimeout, "fluentd-read-timeout": &c.ReadTimeout} {
		if s := opts[key]; s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return c, fmt.Errorf("invalid value for %s: value must be a duration: %w", key, err)
			}
			if d < 0 {
				return c, fmt.Errorf("invalid value for %s: value must be a duration that is non-negative", key)
			}
			*dst = d
		}
	}
	return c, nil
}

func (c *FluentdConfig) parseAddress(address string) error {
	c.Network, c.Host, c.Port = "tcp", "127.0.0.1", 24224
	if address == "" {
		return nil
	}
	if !strings.Contains(address, "://") {
		address = "tcp://" + address
	}
	u, err := url.Parse(address)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "unix":
		if strings.TrimLeft(u.Path, "/") == "" {
			return errors.New("path is empty")
		}
		c.Network, c.SocketPath = "unix", u.Path
		return nil
	case "tcp", "tls":
	default:
		return fmt.Errorf("unsupported scheme: '%s'", u.Scheme)
	}
	if u.Path != "" {
		return errors.New("should not contain a path element")
	}
	c.Network = u.Scheme
	if h := u.Hostname(); h != "" {
		c.Host = h
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fmt.Errorf("invalid port: %w", err)
		}
		c.Port = int(n)
	}
	return nil
}
