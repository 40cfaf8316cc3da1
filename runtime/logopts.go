package runtime

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"text/template"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/logfile"
	"github.com/containerd/errdefs"
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

// Command is the entrypoint and arguments, as dockerd's {{.Command}}.
func (i tagInfo) Command() string {
	return strings.TrimSpace(i.rec.Path + " " + strings.Join(i.rec.Args, " "))
}

// Hostname is the host's name, as dockerd's {{.Hostname}}.
func (i tagInfo) Hostname() (string, error) { return os.Hostname() }

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
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	env := map[string]string{}
	for _, kv := range rec.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if err := selectKeys(opts["env"], opts["env-regex"], env); err != nil {
		return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if tag, ok := opts["tag"]; ok && tag != "" {
		tmpl, err := template.New("log-tag").Parse(tag)
		if err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, tagInfo{rec}); err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
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
	return logdriver.JSONFileRotation(opts)
}

// logInfo is what the container's logging driver says besides each line,
// from its record: names, image, command, the rendered tag (the remote
// drivers' default is the short ID, as dockerd's) and the extra attributes.
func logInfo(rec *Record) (logdriver.Info, error) {
	attrs, err := logAttrs(rec)
	if err != nil {
		return logdriver.Info{}, err
	}
	tag := attrs["tag"]
	delete(attrs, "tag")
	if len(attrs) == 0 {
		attrs = nil
	}
	if tag == "" && logdriver.TagsByDefault(rec.HostConfig.LogConfig.Type) {
		tag = tagInfo{rec}.ID()
	}
	return logdriver.Info{
		ContainerID: rec.ID, ContainerName: strings.TrimPrefix(rec.Name, "/"),
		ImageID: rec.Image, ImageName: rec.Config.Image, Command: tagInfo{rec}.Command(),
		Created: rec.Created, Tag: tag, Attrs: attrs,
	}, nil
}
