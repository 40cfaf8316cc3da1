package engine

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/berthd/berth/engine/httputil"
)

// Per-version quirks of the Engine API live here and nowhere else. Handlers
// always write the newest wire format (github.com/moby/moby/api types); for
// older clients a rule rewrites the JSON answer of one route.

type compatRule struct {
	method, path string
	// before: the rule applies to API versions older than this.
	before string
	// rewrite edits one decoded JSON answer in place.
	rewrite func(v any)
}

var compatRules = []compatRule{
	// API < 1.52 still carried the default network's endpoint at the top of
	// NetworkSettings (docker-py and scripts read NetworkSettings.IPAddress).
	{"GET", "/containers/{name:.*}/json", "1.52", legacyNetworkSettings},
}

func compatFor(route httputil.Route, version string) *compatRule {
	for i := range compatRules {
		c := &compatRules[i]
		if c.method == route.Method && c.path == route.Path && httputil.VersionLessThan(version, c.before) {
			return c
		}
	}
	return nil
}

func (c *compatRule) wrap(w http.ResponseWriter) http.ResponseWriter {
	return &compatWriter{ResponseWriter: w, rule: c}
}

// compatWriter buffers a JSON answer so the rule can rewrite it.
type compatWriter struct {
	http.ResponseWriter
	rule   *compatRule
	status int
	buf    bytes.Buffer
}

func (cw *compatWriter) WriteHeader(code int)        { cw.status = code }
func (cw *compatWriter) Write(b []byte) (int, error) { return cw.buf.Write(b) }

func (cw *compatWriter) finish() {
	if cw.status == 0 {
		cw.status = http.StatusOK
	}
	body := cw.buf.Bytes()
	var v any
	if cw.status < 300 && json.Unmarshal(body, &v) == nil {
		cw.rule.rewrite(v)
		if b, err := json.Marshal(v); err == nil {
			body = append(b, '\n')
		}
	}
	cw.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(body)))
	cw.ResponseWriter.WriteHeader(cw.status)
	_, _ = cw.ResponseWriter.Write(body)
}

func legacyNetworkSettings(v any) {
	obj, _ := v.(map[string]any)
	ns, _ := obj["NetworkSettings"].(map[string]any)
	if ns == nil {
		return
	}
	for _, k := range []string{"EndpointID", "Gateway", "GlobalIPv6Address", "IPAddress", "IPv6Gateway", "MacAddress"} {
		ns[k] = ""
	}
	ns["IPPrefixLen"], ns["GlobalIPv6PrefixLen"] = 0, 0
	ns["Bridge"], ns["HairpinMode"], ns["LinkLocalIPv6Address"], ns["LinkLocalIPv6PrefixLen"] = "", false, "", 0
	nets, _ := ns["Networks"].(map[string]any)
	ep, _ := nets["bridge"].(map[string]any)
	if ep == nil {
		return
	}
	for _, k := range []string{"EndpointID", "Gateway", "GlobalIPv6Address", "IPAddress", "IPv6Gateway", "MacAddress", "IPPrefixLen", "GlobalIPv6PrefixLen"} {
		if val, ok := ep[k]; ok {
			ns[k] = val
		}
	}
}
