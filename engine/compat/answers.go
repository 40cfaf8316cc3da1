// Package compat is the one home of the Engine API's per-version quirks:
// what an older client's request means (requests.go) and how its answers
// are shaped (answers.go). Handlers always write the newest wire format
// (github.com/moby/moby/api types) and ask this package what a request of
// an older version means; nothing else compares API versions.
package compat

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/berthd/berth/engine/httputil"
)

// For older clients a rule rewrites the JSON answer of one route.
type compatRule struct {
	method, path string
	// before: the rule applies to API versions older than this.
	before string
	// rewrite edits one decoded JSON answer in place.
	rewrite func(v any)
	// stream: the answer is a stream of JSON documents, one per write
	// (events); each is rewritten on its way out.
	stream bool
}

var compatRules = []compatRule{
	// API < 1.52 still carried the default network's endpoint at the top of
	// NetworkSettings (docker-py and scripts read NetworkSettings.IPAddress).
	{method: "GET", path: "/containers/{name:.*}/json", before: "1.52", rewrite: legacyNetworkSettings},
	// API < 1.44 reported VirtualSize (equal to Size) for images.
	{method: "GET", path: "/images/json", before: "1.44", rewrite: eachItem(virtualSize)},
	{method: "GET", path: "/images/{name:.*}/json", before: "1.44", rewrite: all(virtualSize, legacyImageFields)},
	// API < 1.52 always carried Parent, Comment, DockerVersion and Author.
	{method: "GET", path: "/images/{name:.*}/json", before: "1.52", rewrite: legacyImageFields},
	// API < 1.52 answered /system/df with flat lists (LayersSize, Images,
	// Containers, Volumes, BuildCache) instead of per-kind usage objects.
	{method: "GET", path: "/system/df", before: "1.52", rewrite: legacyDiskUsage},
	// API < 1.52 events carried the legacy status, id and from fields.
	{method: "GET", path: "/events", before: "1.52", rewrite: legacyEvent, stream: true},
}

// Answer wraps w so the answer of route is shaped as a client of version
// expects. finish must be called after a handler that returned no error
// (it writes a buffered answer); it does nothing when no rule applies.
func Answer(route httputil.Route, version string, w http.ResponseWriter) (out http.ResponseWriter, finish func()) {
	for i := range compatRules {
		c := &compatRules[i]
		if c.method == route.Method && c.path == route.Path && httputil.VersionLessThan(version, c.before) {
			if c.stream {
				return &streamCompatWriter{ResponseWriter: w, rule: c}, func() {}
			}
			cw := &compatWriter{ResponseWriter: w, rule: c}
			return cw, cw.finish
		}
	}
	return w, func() {}
}

// streamCompatWriter rewrites each JSON document of a stream as it is
// written; the stream's writers emit one whole document per Write.
type streamCompatWriter struct {
	http.ResponseWriter
	rule *compatRule
}

func (sw *streamCompatWriter) Write(b []byte) (int, error) {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return sw.ResponseWriter.Write(b)
	}
	sw.rule.rewrite(v)
	out, err := json.Marshal(v)
	if err != nil {
		return sw.ResponseWriter.Write(b)
	}
	if _, err := sw.ResponseWriter.Write(append(out, '\n')); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (sw *streamCompatWriter) Flush() {
	if f, ok := sw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
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

func eachItem(f func(v any)) func(v any) {
	return func(v any) {
		list, _ := v.([]any)
		for _, item := range list {
			f(item)
		}
	}
}

// all applies several rewrites to one answer (only the first rule that
// matches a request applies).
func all(fs ...func(v any)) func(v any) {
	return func(v any) {
		for _, f := range fs {
			f(v)
		}
	}
}

func legacyImageFields(v any) {
	if obj, ok := v.(map[string]any); ok {
		for _, k := range []string{"Parent", "Comment", "DockerVersion", "Author"} {
			if _, ok := obj[k]; !ok {
				obj[k] = ""
			}
		}
	}
}

func virtualSize(v any) {
	if obj, ok := v.(map[string]any); ok {
		if size, ok := obj["Size"]; ok {
			obj["VirtualSize"] = size
		}
	}
}

func legacyEvent(v any) {
	obj, _ := v.(map[string]any)
	if obj == nil {
		return
	}
	actor, _ := obj["Actor"].(map[string]any)
	if obj["Type"] != "container" && obj["Type"] != "image" || actor == nil {
		return
	}
	obj["status"] = obj["Action"]
	obj["id"] = actor["ID"]
	if attrs, ok := actor["Attributes"].(map[string]any); ok && obj["Type"] == "container" {
		obj["from"] = attrs["image"]
	}
}

// legacyDiskUsage turns {"ImageUsage":{"Items":[...],"TotalSize":n},...}
// into {"LayersSize":n,"Images":[...],"Containers":[...],...}. The rewrite
// works in place, so the new keys replace the old ones in the same map.
func legacyDiskUsage(v any) {
	obj, _ := v.(map[string]any)
	if obj == nil {
		return
	}
	take := func(usage, list string) {
		u, ok := obj[usage].(map[string]any)
		delete(obj, usage)
		if !ok {
			return
		}
		items, _ := u["Items"].([]any)
		if items == nil {
			items = []any{}
		}
		obj[list] = items
		if usage == "ImageUsage" {
			obj["LayersSize"] = u["TotalSize"]
			if obj["LayersSize"] == nil {
				obj["LayersSize"] = 0
			}
		}
	}
	take("ImageUsage", "Images")
	take("ContainerUsage", "Containers")
	take("VolumeUsage", "Volumes")
	take("BuildCacheUsage", "BuildCache")
}
