package runtime

import (
	"regexp"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/runtime/logfile"
	"github.com/berthd/berth/runtime/logtag"
	"github.com/containerd/errdefs"
)

// tagInfo is what a log tag template can name (dockerd's logger.Info),
// from the container's record.
func tagInfo(rec *Record) *logtag.Info {
	i := &logtag.Info{
		Config: rec.HostConfig.LogConfig.Config, ContainerID: rec.ID, ContainerName: rec.Name,
		ContainerEntrypoint: rec.Path, ContainerArgs: rec.Args, ContainerImageID: rec.Image,
		ContainerCreated: rec.Created, DaemonName: "docker", // what tools match on, as podman does too
		// LogPath stays empty: the record does not know its data root
	}
	if rec.Config != nil {
		i.ContainerImageName, i.ContainerEnv, i.ContainerLabels = rec.Config.Image, rec.Config.Env, rec.Config.Labels
	}
	return i
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
		rendered, err := logtag.Render(tag, tagInfo(rec))
		if err != nil {
			return nil, errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
		}
		attrs["tag"] = rendered
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
		tag = tagInfo(rec).ID()
	}
	return logdriver.Info{
		ContainerID: rec.ID, ContainerName: strings.TrimPrefix(rec.Name, "/"),
		ImageID: rec.Image, ImageName: rec.Config.Image, Command: tagInfo(rec).Command(),
		Created: rec.Created, Tag: tag, Attrs: attrs,
	}, nil
}
