package transfer

import (
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"go.podman.io/image/v5/types"

	"github.com/berthd/berth/registry/imagewire"
)

// progressKind says which of Docker's vocabularies a translator speaks.
type progressKind int

const (
	pullProgress progressKind = iota
	pushProgress
	loadProgress
)

// translator turns containers/image copy progress events into the JSON
// messages dockerd sends, so the docker CLI draws its progress bars. It is
// a pure function of the events it has seen.
type translator struct {
	kind progressKind
	// done remembers layers seen, in order, and whether each was skipped.
	order   []string
	skipped map[string]bool
}

func newTranslator(kind progressKind) *translator {
	return &translator{kind: kind, skipped: map[string]bool{}}
}

// isConfig reports whether a blob is an image config: dockerd reports
// layers only.
func isConfig(b types.BlobInfo) bool {
	mt := b.MediaType
	return strings.Contains(mt, "config") || strings.HasSuffix(mt, "container.image.v1+json")
}

func progressDetail(current, total int64) *jsonstream.Progress {
	p := &jsonstream.Progress{Current: current}
	if total > 0 {
		p.Total = total
	}
	return p
}

// translate returns the messages for one event.
func (t *translator) translate(p types.ProgressProperties) []jsonstream.Message {
	if isConfig(p.Artifact) {
		return nil
	}
	id := imagewire.ShortID(p.Artifact.Digest.String())
	size := p.Artifact.Size
	msg := func(status string, prog *jsonstream.Progress) jsonstream.Message {
		if prog == nil {
			prog = &jsonstream.Progress{}
		}
		return jsonstream.Message{Status: status, Progress: prog, ID: id}
	}
	verb := map[progressKind]string{pullProgress: "Downloading", pushProgress: "Pushing", loadProgress: "Loading layer"}[t.kind]
	switch p.Event {
	case types.ProgressEventNewArtifact:
		t.see(id, false)
		return []jsonstream.Message{msg(verb, progressDetail(0, size))}
	case types.ProgressEventRead:
		return []jsonstream.Message{msg(verb, progressDetail(int64(p.Offset), size))}
	case types.ProgressEventDone:
		total := size
		if total <= 0 {
			total = int64(p.Offset)
		}
		switch t.kind {
		case pullProgress:
			return []jsonstream.Message{msg("Verifying Checksum", nil), msg("Download complete", nil)}
		case pushProgress:
			return []jsonstream.Message{msg("Pushed", nil)}
		default:
			return []jsonstream.Message{msg(verb, progressDetail(total, total))}
		}
	case types.ProgressEventSkipped:
		t.see(id, true)
		switch t.kind {
		case pullProgress:
			return []jsonstream.Message{msg("Already exists", nil)}
		case pushProgress:
			return []jsonstream.Message{msg("Layer already exists", nil)}
		}
	}
	return nil
}

func (t *translator) see(id string, skipped bool) {
	if _, ok := t.skipped[id]; !ok {
		t.order = append(t.order, id)
	}
	t.skipped[id] = skipped
}

// finish returns the messages that close a successful copy: "Pull complete"
// for each layer a pull fetched (extraction happens inside the copy).
func (t *translator) finish() []jsonstream.Message {
	if t.kind != pullProgress {
		return nil
	}
	var out []jsonstream.Message
	for _, id := range t.order {
		if !t.skipped[id] {
			out = append(out, jsonstream.Message{Status: "Pull complete", Progress: &jsonstream.Progress{}, ID: id})
		}
	}
	return out
}

// progressPump feeds copy progress events through a translator to out
// until stop is called. The copy blocks on the channel, so it is always
// drained.
type progressPump struct {
	ch   chan types.ProgressProperties
	done chan struct{}
	once sync.Once
	t    *translator
}

const progressInterval = 100 * time.Millisecond

func startPump(kind progressKind, out func(jsonstream.Message), quiet bool) *progressPump {
	p := &progressPump{ch: make(chan types.ProgressProperties, 16), done: make(chan struct{}), t: newTranslator(kind)}
	go func() {
		defer close(p.done)
		for ev := range p.ch {
			for _, m := range p.t.translate(ev) {
				if !quiet && out != nil {
					out(m)
				}
			}
		}
	}()
	return p
}

// stop ends the pump and waits until every event has been sent.
func (p *progressPump) stop() {
	p.once.Do(func() { close(p.ch) })
	<-p.done
}
