package runtime

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
)

// parseLink reads one HostConfig.Links entry as dockerd's opts.ParseLink
// does: "name", "name:alias", or the form inspect shows,
// "/name:/parent/alias", which a client may send back.
func parseLink(val string) (name, alias string, err error) {
	if val == "" {
		return "", "", errdefs.ErrInvalidArgument.WithMessage("empty string specified for links")
	}
	parts := strings.Split(val, ":")
	switch {
	case len(parts) > 2:
		return "", "", errdefs.ErrInvalidArgument.WithMessage("bad format for links: " + val)
	case len(parts) == 1:
		return val, val, nil
	case strings.HasPrefix(parts[0], "/"):
		_, alias := path.Split(parts[1])
		return parts[0][1:], alias, nil
	}
	return parts[0], parts[1], nil
}

// linkEnv is the environment a legacy link gives the linking container, as
// dockerd's links.Link.ToEnv makes it: <ALIAS>_PORT and the per-port
// variables for every exposed port of the linked container (tcp first, runs
// of consecutive ports also as _START/_END), <ALIAS>_NAME, and the linked
// container's own variables as <ALIAS>_ENV_<name> (but HOME and PATH).
// name is the link's full name, "/parent/alias"; childIP the linked
// container's address on the default bridge.
func linkEnv(childIP, name string, childEnv []string, exposed network.PortSet) []string {
	_, short := path.Split(name)
	alias := strings.ReplaceAll(strings.ToUpper(short), "-", "_")
	ports := make([]network.Port, 0, len(exposed))
	for p := range exposed {
		ports = append(ports, p)
	}
	slices.SortFunc(ports, tcpFirst)

	env := make([]string, 0, 1+len(ports)*4)
	var start, end network.Port
	for i, p := range ports {
		if i == 0 {
			start, end = p, p
			env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", alias, p.Proto(), childIP, p.Num()))
		}
		prefix := fmt.Sprintf("%s_PORT_%d_%s", alias, p.Num(), strings.ToUpper(string(p.Proto())))
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", prefix, p.Proto(), childIP, p.Num()),
			fmt.Sprintf("%s_ADDR=%s", prefix, childIP),
			fmt.Sprintf("%s_PORT=%d", prefix, p.Num()),
			fmt.Sprintf("%s_PROTO=%s", prefix, p.Proto()))
		if p.Num() == end.Num()+1 && p.Proto() == end.Proto() {
			end = p
			if i < len(ports)-1 {
				continue
			}
		}
		if end != start {
			prefix = fmt.Sprintf("%s_PORT_%d_%s", alias, start.Num(), strings.ToUpper(string(start.Proto())))
			env = append(env,
				fmt.Sprintf("%s_START=%s://%s:%d", prefix, start.Proto(), childIP, start.Num()),
				fmt.Sprintf("%s_PORT_START=%d", prefix, start.Num()),
				fmt.Sprintf("%s_END=%s://%s:%d", prefix, end.Proto(), childIP, end.Num()),
				fmt.Sprintf("%s_PORT_END=%d", prefix, end.Num()))
		}
		start, end = p, p
	}
	env = append(env, fmt.Sprintf("%s_NAME=%s", alias, name))
	for _, kv := range childEnv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue // dockerd leaves out what builds set
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", alias, k, v))
	}
	return env
}

// tcpFirst orders ports by protocol, tcp first, then by number.
func tcpFirst(a, b network.Port) int {
	switch {
	case a.Proto() == b.Proto():
		return cmp.Compare(a.Num(), b.Num())
	case a.Proto() == network.TCP:
		return -1
	case b.Proto() == network.TCP:
		return 1
	}
	return cmp.Compare(a.Proto(), b.Proto())
}
