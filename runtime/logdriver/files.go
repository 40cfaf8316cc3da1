package logdriver

import (
	"os"
	"path/filepath"

	"github.com/berthd/berth/runtime/logfile"
)

// openJSONFile opens the json-file driver: Docker's JSON lines at
// cfg.Path, rolled as max-size, max-file and compress say.
func openJSONFile(cfg Config) (Driver, error) {
	rot, err := JSONFileRotation(withoutCommon(cfg.Opts))
	if err != nil {
		return nil, err
	}
	w, err := logfile.OpenFormat(cfg.Path, logfile.JSONFile, rot, fileAttrs(cfg.Info))
	if err != nil {
		return nil, err
	}
	return fileDriver{w}, nil
}

// openLocal opens the local driver: Docker's compact protobuf format in
// cfg.Path (<container>/local-logs/container.log), 20 MB × 5 compressed
// unless the options say otherwise.
func openLocal(cfg Config) (Driver, error) {
	rot, err := LocalRotation(withoutCommon(cfg.Opts))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, err
	}
	w, err := logfile.OpenFormat(cfg.Path, logfile.Local, rot, fileAttrs(cfg.Info))
	if err != nil {
		return nil, err
	}
	return fileDriver{w}, nil
}

// fileAttrs are the attributes the file drivers store with every entry:
// the extra attributes and, only when the user set one, the tag.
func fileAttrs(info Info) map[string]string {
	if len(info.Attrs) == 0 && info.Tag == "" {
		return nil
	}
	out := make(map[string]string, len(info.Attrs)+1)
	for k, v := range info.Attrs {
		out[k] = v
	}
	if info.Tag != "" {
		out["tag"] = info.Tag
	}
	return out
}
