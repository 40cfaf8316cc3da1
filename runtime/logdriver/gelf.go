package logdriver

import (
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/Graylog2/go-gelf/gelf"
)

// gelfDriver sends GELF 1.1 messages over UDP (chunked, compressed) or TCP
// (null-terminated) with github.com/Graylog2/go-gelf, as dockerd does,
// with dockerd's fields: the line as short_message, level 6 (stdout) or 3
// (stderr), and _container_id, _container_name, _image_id, _image_name,
// _command, _tag, _created plus the extra attributes as "_" fields.
type gelfDriver struct {
	mu       sync.Mutex // the UDP writer reuses its buffers
	w        gelfWriter
	hostname string
	extra    json.RawMessage
}

type gelfWriter interface {
	WriteMessage(*gelf.Message) error
	Close() error
}

func gelfURL(address string) (*url.URL, error) {
	if address == "" {
		return nil, errors.New("gelf-address is a required parameter")
	}
	u, err := url.Parse(address)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "udp" && u.Scheme != "tcp" {
		return nil, errors.New("gelf: endpoint needs to be TCP or UDP")
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, errors.New("gelf: please provide gelf-address as proto://host:port")
	}
	return u, nil
}

func validateGELF(opts map[string]string) error {
	u, err := gelfURL(opts["gelf-address"])
	if err != nil {
		return err
	}
	for k, v := range opts {
		switch k {
		case "gelf-address":
		case "gelf-compression-level":
			if u.Scheme != "udp" {
				return errors.New("compression is only supported on UDP")
			}
			i, err := strconv.Atoi(v)
			if err != nil || i < flate.DefaultCompression || i > flate.BestCompression {
				return fmt.Errorf("unknown value %q for log opt %q for gelf log driver", v, k)
			}
		case "gelf-compression-type":
			if u.Scheme != "udp" {
				return errors.New("compression is only supported on UDP")
			}
			if v != "gzip" && v != "zlib" && v != "none" {
				return fmt.Errorf("unknown value %q for log opt %q for gelf log driver", v, k)
			}
		case "gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay":
			if u.Scheme != "tcp" {
				return fmt.Errorf("%q is only valid for TCP", k)
			}
			if i, err := strconv.Atoi(v); err != nil || i < 0 {
				return fmt.Errorf("%q must be a positive integer", k)
			}
		default:
			if !commonOpts[k] {
				return fmt.Errorf("unknown log opt %q for gelf log driver", k)
			}
		}
	}
	return nil
}

func openGELF(cfg Config) (Driver, error) {
	u, err := gelfURL(cfg.Opts["gelf-address"])
	if err != nil {
		return nil, err
	}
	hostname, err := os.Hostname()
	if err != nil {
		return nil, errors.New("gelf: cannot access hostname to set source field")
	}
	in := cfg.Info
	extra := map[string]any{
		"_container_id": in.ContainerID, "_container_name": in.ContainerName,
		"_image_id": in.ImageID, "_image_name": in.ImageName, "_command": in.Command,
		"_tag": in.Tag, "_created": in.Created,
	}
	for k, v := range in.Attrs {
		if k == "" {
			continue
		}
		if k[0] != '_' {
			k = "_" + k
		}
		extra[k] = v
	}
	raw, err := json.Marshal(extra)
	if err != nil {
		return nil, err
	}
	d := &gelfDriver{hostname: hostname, extra: raw}
	switch u.Scheme {
	case "udp":
		ctype, level := gelf.CompressGzip, flate.BestSpeed // go-gelf's defaults, as dockerd's
		switch cfg.Opts["gelf-compression-type"] {
		case "zlib":
			ctype = gelf.CompressZlib
		case "none":
			ctype = gelf.CompressNone
		}
		if v, ok := cfg.Opts["gelf-compression-level"]; ok {
			level, _ = strconv.Atoi(v)
		}
		w, err := newGELFUDP(u.Host, ctype, level)
		if err != nil {
			return nil, fmt.Errorf("gelf: cannot connect to GELF endpoint: %s %v", u.Host, err)
		}
		d.w = w
	default:
		w, err := gelf.NewTCPWriter(u.Host)
		if err != nil {
			return nil, fmt.Errorf("gelf: cannot connect to GELF endpoint: %s %v", u.Host, err)
		}
		if v, ok := cfg.Opts["gelf-tcp-max-reconnect"]; ok {
			w.MaxReconnect, _ = strconv.Atoi(v)
		}
		if v, ok := cfg.Opts["gelf-tcp-reconnect-delay"]; ok {
			n, _ := strconv.Atoi(v)
			w.ReconnectDelay = time.Duration(n) // go-gelf counts it in seconds
		}
		d.w = w
	}
	return d, nil
}

func (d *gelfDriver) Log(m *Message) error {
	line := trimNewline(m.Line)
	if len(line) == 0 {
		return nil
	}
	level := int32(gelf.LOG_INFO)
	if m.Stream == "stderr" {
		level = gelf.LOG_ERR
	}
	msg := gelf.Message{
		Version: "1.1", Host: d.hostname, Short: string(line),
		TimeUnix: float64(m.Time.UnixNano()/int64(time.Millisecond)) / 1000.0,
		Level:    level, RawExtra: d.extra,
	}
	d.mu.Lock()
	err := d.w.WriteMessage(&msg)
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("gelf: cannot send GELF message: %v", err)
	}
	return nil
}

func (d *gelfDriver) Close() error { return d.w.Close() }
