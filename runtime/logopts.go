package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/berthd/berth/runtime/logfile"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
)

// tagInfo is what a log tag template can name, as dockerd's logger.Info:
// {{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageID}}, {{.ImageFullID}},
// {{.ImageName}}, {{.DaemonName}}.
type tagInfo struct {
	rec *Record
}

func (i tagInfo) ID() string          { return i.rec.ID[:12] }
func (i tagInfo) FullID() string      { return i.rec.ID }
func (i tagInfo) Name() string        { return strings.TrimPrefix(i.rec.Name, "/") }
func (i tagInfo) ImageFullID() string { return i.rec.Image }
func (i tagInfo) ImageName() string   { return i.rec.Config.Image }
func (i tagInfo) DaemonName() string  { return "docker" } // what tools match on, as podman does too

// ImageID is the first 12 characters of the image ID, "sha256:" included,
// as dockerd cuts it.
func (i tagInfo) ImageID() string {
	if len(i.rec.Image) > 12 {
		return i.rec.Image[:12]
	}
	return i.rec.Image
}

// logAttrs returns the attributes the json-file driver stores with every
// entry of the container's log (and `docker logs --details` shows): the
// labels and environment variables its labels, labels-regex, env and
// env-regex options select, and the rendered tag when one is set. Errors are
// the options' and are in dockerd's words.
func logAttrs(rec *Record) (map[string]string, error) {
	opts := rec.HostConfig.LogConfig.Config
	attrs := map[string]string{}
	selectKeys := func(list, expr string, values map[string]string) error {
		for _, k := range strings.Split(list, ",") {
			if v, ok := values[k]; ok && k != "" {
				attrs[k] = v
			}
		}
		if expr == "" {
			return nil
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return err
		}
		for k, v := range values {
			if re.MatchString(k) {
				attrs[k] = v
			}
		}
		return nil
	}
	if err := selectKeys(opts["labels"], opts["labels-regex"], rec.Config.Labels); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	env := map[string]string{}
	for _, kv := range rec.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if err := selectKeys(opts["env"], opts["env-regex"], env); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if tag, ok := opts["tag"]; ok && tag != "" {
		tmpl, err := template.New("log-tag").Parse(tag)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, tagInfo{rec}); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		attrs["tag"] = b.String()
	}
	if len(attrs) == 0 {
		return nil, nil
	}
	return attrs, nil
}

// ParseLogOptions checks a json-file LogConfig.Config the way dockerd's
// driver does, with its messages, and returns the rotation it asks for.
func ParseLogOptions(opts map[string]string) (logfile.Rotation, error) {
	for k := range opts {
		switch k {
		case "max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag":
		default:
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
