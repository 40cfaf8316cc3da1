package logdriver

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/berthd/berth/runtime/logfile"
	"github.com/docker/go-units"
)

// Log modes (the mode option), as Docker names them.
const (
	ModeBlocking    = "blocking"
	ModeNonBlocking = "non-blocking"
)

// defaultRingSize is max-buffer-size's default (dockerd's 1e6 bytes).
const defaultRingSize = 1_000_000

// Names are the drivers berth has, in the order `docker info` lists them.
var Names = []string{"fluentd", "gelf", "journald", "json-file", "local", "none", "syslog"}

// Known reports whether berth has a driver of that name.
func Known(name string) bool {
	for _, n := range Names {
		if n == name {
			return true
		}
	}
	return false
}

// commonOpts are accepted by every driver but none: the extra attributes
// and the tag.
var commonOpts = map[string]bool{"env": true, "env-regex": true, "labels": true, "labels-regex": true, "tag": true}

// cacheOpts are dual logging's options, accepted by every driver (dockerd
// adds them to its built-in options).
var cacheOpts = map[string]bool{"cache-disabled": true, "cache-max-size": true, "cache-max-file": true, "cache-compress": true}

// Validate checks a container's (or the daemon's default) log options for
// driver the way dockerd's logger.ValidateLogOpts does, with its messages.
func Validate(driver string, opts map[string]string) error {
	if driver == "none" {
		return nil
	}
	switch opts["mode"] {
	case "", ModeBlocking, ModeNonBlocking:
	default:
		return fmt.Errorf("logger: logging mode not supported: %s", opts["mode"])
	}
	if _, ok := opts["max-buffer-size"]; ok {
		if opts["mode"] != ModeNonBlocking {
			return fmt.Errorf("logger: max-buffer-size option is only supported with 'mode=%s'", ModeNonBlocking)
		}
		if _, err := bufferSize(opts); err != nil {
			return fmt.Errorf("error parsing option max-buffer-size: %w", err)
		}
	}
	if v := opts["cache-disabled"]; v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("invalid value for option cache-disabled: %s", v)
		}
	}
	if !Known(driver) {
		return fmt.Errorf("logger: no log driver named '%s' is registered", driver)
	}
	own := map[string]string{}
	for k, v := range opts {
		if k != "mode" && k != "max-buffer-size" && !cacheOpts[k] {
			own[k] = v
		}
	}
	if _, err := cacheRotation(opts); err != nil {
		return err
	}
	switch driver {
	case "json-file":
		_, err := JSONFileRotation(own)
		return err
	case "local":
		_, err := LocalRotation(own)
		return err
	case "syslog":
		return validateSyslog(own)
	case "fluentd":
		return validateFluentd(own)
	case "gelf":
		return validateGELF(own)
	case "journald":
		return validateJournald(own)
	}
	return nil
}

func bufferSize(opts map[string]string) (int64, error) {
	s, ok := opts["max-buffer-size"]
	if !ok {
		return defaultRingSize, nil
	}
	return units.RAMInBytes(s)
}

// JSONFileRotation checks json-file's options as dockerd's driver does,
// with its messages, and returns the rotation they ask for.
func JSONFileRotation(opts map[string]string) (logfile.Rotation, error) {
	for k := range opts {
		if !commonOpts[k] && k != "max-file" && k != "max-size" && k != "compress" {
			return logfile.Rotation{}, fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	r := logfile.Rotation{MaxFiles: 1}
	if s, ok := opts["max-size"]; ok {
		n, err := units.FromHumanSize(s)
		if err != nil {
			return logfile.Rotation{}, err
		}
		if n <= 0 {
			return logfile.Rotation{}, errors.New("max-size must be a positive number")
		}
		r.MaxSize = n
	}
	if s, ok := opts["max-file"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			return logfile.Rotation{}, err
		}
		if n < 1 {
			return logfile.Rotation{}, errors.New("max-file cannot be less than 1")
		}
		r.MaxFiles = n
	}
	if s, ok := opts["compress"]; ok {
		c, err := strconv.ParseBool(s)
		if err != nil {
			return logfile.Rotation{}, err
		}
		if c && (r.MaxFiles == 1 || r.MaxSize == 0) {
			return logfile.Rotation{}, errors.New("compress cannot be true when max-file is less than 2 or max-size is not set")
		}
		r.Compress = c
	}
	if r.MaxSize == 0 {
		r.MaxFiles = 1 // max-file only counts with max-size, as in Docker
	}
	return r, nil
}

// Local driver defaults, as dockerd's: 20 MB files, 5 kept, compressed.
const (
	localMaxSize  = 20 * 1024 * 1024
	localMaxFiles = 5
)

// LocalRotation checks the local driver's options as dockerd does and
// returns its rotation (20 MB × 5, compressed, unless told otherwise).
func LocalRotation(opts map[string]string) (logfile.Rotation, error) {
	for k := range opts {
		if !commonOpts[k] && k != "max-file" && k != "max-size" && k != "compress" {
			return logfile.Rotation{}, fmt.Errorf("unknown log opt '%s' for log driver local", k)
		}
	}
	return localRotation(opts["max-size"], opts["max-file"], opts["compress"], "")
}

// localRotation parses a local log's max-size, max-file and compress
// (prefix names them in messages: "" or "cache-").
func localRotation(size, files, compress, prefix string) (logfile.Rotation, error) {
	r := logfile.Rotation{MaxSize: localMaxSize, MaxFiles: localMaxFiles, Compress: true}
	if size != "" {
		n, err := units.FromHumanSize(size)
		if err != nil {
			return r, fmt.Errorf("invalid value for %smax-size: %s: %w", prefix, size, err)
		}
		if n < 0 {
			return r, fmt.Errorf("%smax-size must not be negative", prefix)
		}
		r.MaxSize = n
	}
	if files != "" {
		n, err := strconv.Atoi(files)
		if err != nil {
			return r, fmt.Errorf("invalid value for %smax-file: %s: %w", prefix, files, err)
		}
		if n < 0 {
			return r, fmt.Errorf("%smax-file must not be negative", prefix)
		}
		r.MaxFiles = n
	}
	if compress != "" {
		c, err := strconv.ParseBool(compress)
		if err != nil {
			return r, fmt.Errorf("invalid boolean value for %scompress: %w", prefix, err)
		}
		r.Compress = c
	}
	if r.Compress && r.MaxFiles <= 1 {
		return r, errors.New("compression cannot be enabled when max file count is 1")
	}
	if r.MaxSize == 0 {
		r.MaxFiles = 1 // 0: never rolled
	}
	return r, nil
}

// TagsByDefault reports whether driver tags every entry, with the
// container's short ID when the tag option is not set (the remote
// drivers); the file drivers store a tag only when one is set.
func TagsByDefault(driver string) bool {
	switch driver {
	case "syslog", "fluentd", "gelf", "journald":
		return true
	}
	return false
}

// Storage is a log file that `docker logs` reads.
type Storage struct {
	// Name is the file's path relative to the container's directory.
	Name     string
	Format   logfile.Format
	Rotation logfile.Rotation
}

// Readable says where driver's entries can be read back for `docker logs`:
// its own file (json-file, local) or the dual-logging cache (the others
// unless cache-disabled). false: the driver does not support reading (none,
// or a remote driver without the cache). opts are assumed valid.
func Readable(driver, containerID string, opts map[string]string) (Storage, bool) {
	switch driver {
	case "json-file":
		r, _ := JSONFileRotation(withoutCommon(opts))
		return Storage{Name: containerID + "-json.log", Format: logfile.JSONFile, Rotation: r}, true
	case "local":
		r, _ := LocalRotation(withoutCommon(opts))
		return Storage{Name: "local-logs/container.log", Format: logfile.Local, Rotation: r}, true
	}
	return CacheStorage(driver, opts)
}

// CacheStorage is the dual-logging cache of a driver that cannot be read
// back: <container>/container-cached.log in the local format, rolled as the
// cache-max-size, cache-max-file and cache-compress options say (20 MB × 5,
// compressed by default). false for the file drivers, none, and
// cache-disabled=true.
func CacheStorage(driver string, opts map[string]string) (Storage, bool) {
	switch driver {
	case "none", "json-file", "local", "":
		return Storage{}, false
	}
	if off, _ := strconv.ParseBool(opts["cache-disabled"]); off {
		return Storage{}, false
	}
	r, _ := cacheRotation(opts)
	return Storage{Name: "container-cached.log", Format: logfile.Local, Rotation: r}, true
}

func cacheRotation(opts map[string]string) (logfile.Rotation, error) {
	return localRotation(opts["cache-max-size"], opts["cache-max-file"], opts["cache-compress"], "cache-")
}

func withoutCommon(opts map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range opts {
		if k != "mode" && k != "max-buffer-size" && !cacheOpts[k] {
			out[k] = v
		}
	}
	return out
}
