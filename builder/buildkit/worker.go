package buildkit

import (
	"github.com/moby/buildkit/exporter"
	imageexporter "github.com/moby/buildkit/exporter/containerimage"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/worker/base"
)

// mobyWorker is BuildKit's OCI worker with one more exporter: "moby", the
// output buildx asks the docker driver for (--load, and by default), which
// lands the image in berth's image store.
type mobyWorker struct {
	*base.Worker
	moby *mobyExporter
}

func newMobyWorker(w *base.Worker, images Images, contentDir, exportDir string) *mobyWorker {
	iw, _ := imageexporter.NewImageWriter(imageexporter.WriterOpt{
		Snapshotter:  w.Snapshotter,
		ContentStore: w.ContentStore(),
		Applier:      w.Applier,
		Differ:       w.Differ,
	})
	return &mobyWorker{Worker: w, moby: &mobyExporter{
		writer:     iw,
		images:     images,
		leases:     w.LeaseManager(),
		content:    w.ContentStore(),
		contentDir: contentDir,
		exportDir:  exportDir,
	}}
}

// Exporter implements worker.Worker.
func (w *mobyWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	if name == mobyExporterName {
		return w.moby, nil
	}
	return w.Worker.Exporter(name, sm)
}
