package builder

import (
	"strings"
	"testing"
)

// FuzzParseExpose: EXPOSE words from a Dockerfile never panic, and what
// is accepted is ports of a known protocol.
func FuzzParseExpose(f *testing.F) {
	for _, s := range []string{"80", "8000-8002", "53/udp", "1.2.3.4:80:81/tcp", "80/xyz", "-", "65535-1", "0-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ports, err := parseExpose(strings.Fields(spec))
		if err != nil {
			return
		}
		for _, p := range ports {
			switch p.Proto() {
			case "tcp", "udp", "sctp":
			default:
				t.Fatalf("%q: port %v", spec, p)
			}
		}
	})
}

// FuzzParseTags: t parameters never panic; accepted ones have a tag.
func FuzzParseTags(f *testing.F) {
	for _, s := range []string{"app", "app:1", "localhost:5000/a/b:v", "UPPER", "a@sha256:" + strings.Repeat("0", 64), ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		tags, err := parseTags([]string{tag})
		if err != nil {
			return
		}
		for _, tn := range tags {
			if tn.tag == "" || tn.repo == "" {
				t.Fatalf("%q: %+v", tag, tn)
			}
		}
	})
}
