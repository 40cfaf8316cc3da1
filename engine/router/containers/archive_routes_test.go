package containers

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestAcceptedEncoding(t *testing.T) {
	for h, want := range map[string]string{
		"":                        "",
		"gzip":                    "gzip",
		"deflate, gzip;q=1.0":     "gzip",
		"gzip;q=0, deflate":       "deflate",
		"identity":                "",
		"GZIP":                    "gzip",
		"br, deflate;q=0.5, x-gz": "deflate",
	} {
		assert.Check(t, acceptedEncoding(h) == want, "Accept-Encoding %q", h)
	}
}

func FuzzAcceptedEncoding(f *testing.F) {
	f.Add("gzip;q=0, deflate")
	f.Fuzz(func(t *testing.T, h string) {
		switch acceptedEncoding(h) {
		case "", "gzip", "deflate":
		default:
			t.Fatal("unexpected encoding")
		}
	})
}
