package runtime

import (
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// mergeEnv overlays user entries on image entries by variable name.
func mergeEnv(image, user []string) []string {
	out := make([]string, 0, len(image)+len(user))
	index := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		add(kv)
	}
	for _, kv := range user {
		add(kv)
	}
	return out
}

// entrypointAndArgs splits the merged command into Path and Args.
func entrypointAndArgs(cfg *container.Config) (string, []string, error) {
	cmd := append([]string{}, cfg.Entrypoint...)
	if len(cmd) == 1 && cmd[0] == "" {
		cmd = nil // --entrypoint "" clears the image's entrypoint
	}
	cmd = append(cmd, cfg.Cmd...)
	if len(cmd) == 0 {
		return "", nil, errdefs.ErrInvalidArgument.WithMessage("no command specified")
	}
	return cmd[0], cmd[1:], nil
}
