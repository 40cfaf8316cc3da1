package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// defaultConfigFile is where berthd looks for its daemon.json when
// --config-file is not given (a missing default file is no error).
const defaultConfigFile = "/etc/berth/daemon.json"

// fileKeys maps daemon.json's keys (dockerd's names) to berthd's flags
// where the two differ (dockerd's "named options": a list in the file, a
// repeatable flag on the command line). Every other key is a flag's name.
var fileKeys = map[string]string{
	"hosts":                 "host",
	"log-opts":              "log-opt",
	"insecure-registries":   "insecure-registry",
	"registry-mirrors":      "registry-mirror",
	"default-address-pools": "default-address-pool",
	"runtimes":              "add-runtime",
}

// fileOnly are keys with no flag of their own.
var fileOnly = map[string]bool{"features": true}

// applyConfigFile reads the daemon.json at path into the flags the command
// line did not set, as dockerd does: unknown keys and keys also given as
// flags are errors in dockerd's words. explicit says the path was given
// (then a missing file is an error).
func applyConfigFile(fs *pflag.FlagSet, c *config, path string, explicit bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) && !explicit {
			return nil
		}
		return err
	}
	wrap := func(err error) error {
		return fmt.Errorf("unable to configure the Docker daemon with file %s: %w", path, err)
	}
	var file map[string]json.RawMessage
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return wrap(err)
	}
	flagOf := func(key string) *pflag.Flag {
		if name, ok := fileKeys[key]; ok {
			return fs.Lookup(name)
		}
		return fs.Lookup(key)
	}
	var unknown, conflicts []string
	for key, raw := range file {
		f := flagOf(key)
		switch {
		case f == nil && !fileOnly[key]:
			unknown = append(unknown, key)
		case f != nil && f.Changed:
			conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %v, from file: %s)", key, flagValue(f), compact(raw)))
		}
	}
	sort.Strings(unknown)
	sort.Strings(conflicts)
	if len(unknown) > 0 {
		return wrap(fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", ")))
	}
	if len(conflicts) > 0 {
		return wrap(fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", ")))
	}
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if err := applyKey(fs, c, key, file[key]); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// applyKey sets the flag behind one daemon.json key from its JSON value.
func applyKey(fs *pflag.FlagSet, c *config, key string, raw json.RawMessage) error {
	switch key {
	case "features":
		return json.Unmarshal(raw, &c.Features)
	case "log-opts":
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("log-opts: %w", err)
		}
		for k, v := range m {
			if err := fs.Set("log-opt", k+"="+v); err != nil {
				return err
			}
		}
		return nil
	case "default-address-pools":
		var pools []struct {
			Base string `json:"base"`
			Size int    `json:"size"`
		}
		if err := json.Unmarshal(raw, &pools); err != nil {
			return fmt.Errorf("default-address-pools: %w", err)
		}
		for _, p := range pools {
			if err := fs.Set("default-address-pool", fmt.Sprintf("base=%s,size=%d", p.Base, p.Size)); err != nil {
				return err
			}
		}
		return nil
	case "runtimes":
		var rts map[string]struct {
			Path        string   `json:"path"`
			RuntimeArgs []string `json:"runtimeArgs"`
		}
		if err := json.Unmarshal(raw, &rts); err != nil {
			return fmt.Errorf("runtimes: %w", err)
		}
		for name, r := range rts {
			if err := fs.Set("add-runtime", name+"="+r.Path); err != nil {
				return err
			}
			if len(r.RuntimeArgs) > 0 {
				if c.runtimeArgs == nil {
					c.runtimeArgs = map[string][]string{}
				}
				c.runtimeArgs[name] = r.RuntimeArgs
			}
		}
		return nil
	case "hosts":
		var hosts []string
		if err := json.Unmarshal(raw, &hosts); err != nil {
			return fmt.Errorf("hosts: %w", err)
		}
		if len(hosts) != 1 {
			return errors.New("hosts: berthd listens on exactly one unix socket")
		}
		return fs.Set("host", hosts[0])
	}
	f := fs.Lookup(fileKeys[key])
	if f == nil {
		f = fs.Lookup(key)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	set := func(s string) error {
		if err := fs.Set(f.Name, s); err != nil {
			return fmt.Errorf("invalid value for %s: %w", key, err)
		}
		return nil
	}
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			s, ok := item.(string)
			if !ok {
				return fmt.Errorf("%s: a list of strings is expected", key)
			}
			if err := set(s); err != nil {
				return err
			}
		}
		return nil
	case string:
		return set(x)
	case bool:
		return set(strconv.FormatBool(x))
	case float64:
		return set(strconv.FormatFloat(x, 'f', -1, 64))
	case nil:
		return nil
	}
	return fmt.Errorf("%s: unexpected value %s", key, compact(raw))
}

func flagValue(f *pflag.Flag) string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return "[" + strings.Join(sv.GetSlice(), " ") + "]"
	}
	return f.Value.String()
}

func compact(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}
