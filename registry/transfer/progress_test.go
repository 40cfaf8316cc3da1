package transfer

import (
	"encoding/json"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const (
	layerDigest  = digest.Digest("sha256:d368b3138fd1d7168480b4b3b12874b547cc3c0e896bf07c695e58715df267b1")
	configDigest = digest.Digest("sha256:eb788b0d2283e08eb86369b003777bfc3fe31e5e6d378916bcf16e36e32f9ece")
)

func layer(size int64) types.BlobInfo {
	return types.BlobInfo{Digest: layerDigest, Size: size, MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip"}
}

// wire is the JSON a message puts on the stream, for comparisons.
func wire(t *testing.T, ms []jsonstream.Message) []string {
	t.Helper()
	out := []string{}
	for _, m := range ms {
		b, err := json.Marshal(m)
		assert.NilError(t, err)
		out = append(out, string(b))
	}
	return out
}

func TestTranslate(t *testing.T) {
	cfg := types.BlobInfo{Digest: configDigest, Size: 385, MediaType: "application/vnd.docker.container.image.v1+json"}
	ociCfg := types.BlobInfo{Digest: configDigest, Size: 385, MediaType: "application/vnd.oci.image.config.v1+json"}
	cases := []struct {
		name string
		kind progressKind
		ev   types.ProgressProperties
		want []string
	}{
		{"pull start", pullProgress, types.ProgressProperties{Event: types.ProgressEventNewArtifact, Artifact: layer(1000)},
			[]string{`{"status":"Downloading","progressDetail":{"total":1000},"id":"d368b3138fd1"}`}},
		{"pull read", pullProgress, types.ProgressProperties{Event: types.ProgressEventRead, Artifact: layer(1000), Offset: 400, OffsetUpdate: 400},
			[]string{`{"status":"Downloading","progressDetail":{"current":400,"total":1000},"id":"d368b3138fd1"}`}},
		{"pull read, size unknown", pullProgress, types.ProgressProperties{Event: types.ProgressEventRead, Artifact: layer(-1), Offset: 400},
			[]string{`{"status":"Downloading","progressDetail":{"current":400},"id":"d368b3138fd1"}`}},
		{"pull done", pullProgress, types.ProgressProperties{Event: types.ProgressEventDone, Artifact: layer(1000), Offset: 1000},
			[]string{`{"status":"Verifying Checksum","progressDetail":{},"id":"d368b3138fd1"}`, `{"status":"Download complete","progressDetail":{},"id":"d368b3138fd1"}`}},
		{"pull skipped", pullProgress, types.ProgressProperties{Event: types.ProgressEventSkipped, Artifact: layer(1000)},
			[]string{`{"status":"Already exists","progressDetail":{},"id":"d368b3138fd1"}`}},
		{"pull config is silent", pullProgress, types.ProgressProperties{Event: types.ProgressEventNewArtifact, Artifact: cfg}, []string{}},
		{"OCI config is silent", pullProgress, types.ProgressProperties{Event: types.ProgressEventDone, Artifact: ociCfg}, []string{}},
		{"push read", pushProgress, types.ProgressProperties{Event: types.ProgressEventRead, Artifact: layer(1000), Offset: 10},
			[]string{`{"status":"Pushing","progressDetail":{"current":10,"total":1000},"id":"d368b3138fd1"}`}},
		{"push done", pushProgress, types.ProgressProperties{Event: types.ProgressEventDone, Artifact: layer(1000)},
			[]string{`{"status":"Pushed","progressDetail":{},"id":"d368b3138fd1"}`}},
		{"push skipped", pushProgress, types.ProgressProperties{Event: types.ProgressEventSkipped, Artifact: layer(1000)},
			[]string{`{"status":"Layer already exists","progressDetail":{},"id":"d368b3138fd1"}`}},
		{"load read", loadProgress, types.ProgressProperties{Event: types.ProgressEventRead, Artifact: layer(1000), Offset: 500},
			[]string{`{"status":"Loading layer","progressDetail":{"current":500,"total":1000},"id":"d368b3138fd1"}`}},
		{"load done", loadProgress, types.ProgressProperties{Event: types.ProgressEventDone, Artifact: layer(-1), Offset: 700},
			[]string{`{"status":"Loading layer","progressDetail":{"current":700,"total":700},"id":"d368b3138fd1"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.DeepEqual(t, wire(t, newTranslator(tc.kind).translate(tc.ev)), tc.want)
		})
	}
}

func TestTranslateFinish(t *testing.T) {
	other := types.BlobInfo{Digest: configDigest, Size: 10, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}
	tr := newTranslator(pullProgress)
	tr.translate(types.ProgressProperties{Event: types.ProgressEventNewArtifact, Artifact: layer(1)})
	tr.translate(types.ProgressProperties{Event: types.ProgressEventSkipped, Artifact: other})
	tr.translate(types.ProgressProperties{Event: types.ProgressEventDone, Artifact: layer(1)})
	assert.DeepEqual(t, wire(t, tr.finish()), []string{`{"status":"Pull complete","progressDetail":{},"id":"d368b3138fd1"}`})
	assert.Check(t, is.Len(newTranslator(loadProgress).finish(), 0))
}

type recordOutput struct{ msgs []jsonstream.Message }

func (r *recordOutput) send(m jsonstream.Message) { r.msgs = append(r.msgs, m) }

func TestPump(t *testing.T) {
	out := &recordOutput{}
	p := startPump(loadProgress, out.send, false)
	p.ch <- types.ProgressProperties{Event: types.ProgressEventNewArtifact, Artifact: layer(5)}
	p.ch <- types.ProgressProperties{Event: types.ProgressEventDone, Artifact: layer(5), Offset: 5}
	p.stop()
	p.stop() // idempotent
	assert.Check(t, is.Len(out.msgs, 2))

	quiet := &recordOutput{}
	p = startPump(loadProgress, quiet.send, true)
	p.ch <- types.ProgressProperties{Event: types.ProgressEventNewArtifact, Artifact: layer(5)}
	p.stop()
	assert.Check(t, is.Len(quiet.msgs, 0))
}
