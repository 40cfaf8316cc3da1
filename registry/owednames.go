package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
)

// Names a pull or load owes its image. containers/image creates the image
// record (layers, manifest, config) in one call and adds the name it was
// asked for in a second; berth then adds the digest name and more tags.
// A daemon killed between those steps would leave a whole image under no
// name (or without some of its names) that the user never asked for as
// such. So before a copy berth writes down the image's ID and every name
// it is to have, and removes the note when the names are on; a start pays
// what the notes of cut copies owe, to images that exist (a copy cut
// before its image was created owes nothing; RemoveOrphanLayers takes its
// layers).
//
// That one call is not one write: containers/storage saves the image's
// record, then its config and manifests one file at a time. A copy cut in
// between (berthd killed, its helper gone with it) leaves an image with no
// config or no manifest, which no command can use: a start removes it, and
// its layers with it.

type owed struct {
	ID    string   `json:"id"`
	Names []string `json:"names"`
}

func (s *Service) owedDir() string { return filepath.Join(s.d.DataRoot, "owed-names") }

// owe notes that image id is to have names once the copy about to begin
// ends; the returned paid removes the note. A copy whose note could not
// be written is refused: nothing has been changed yet.
func (s *Service) owe(id string, names []string) (paid func(), err error) {
	b, err := json.Marshal(owed{ID: id, Names: names})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.owedDir(), 0o700); err != nil {
		return nil, fmt.Errorf("note the names of image %s: %w", ShortID(id), err)
	}
	// one file per copy: two pulls of one image may run at once
	f, err := os.CreateTemp(s.owedDir(), ShortID(id)+"-*.json")
	if err != nil {
		return nil, fmt.Errorf("note the names of image %s: %w", ShortID(id), err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("note the names of image %s: %w", ShortID(id), err)
	}
	return func() { _ = os.Remove(f.Name()) }, nil
}

// PayOwedNames gives the images of copies a stopped daemon cut the names
// they were to have, and returns how many images it named. Call it at
// start, before any pull or load can be in flight (a note being written
// when the daemon died is incomplete: its copy had not begun).
func (s *Service) PayOwedNames() (int, error) {
	ents, err := os.ReadDir(s.owedDir())
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read owed image names: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range ents {
		path := filepath.Join(s.owedDir(), e.Name())
		var o owed
		b, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(b, &o) == nil && o.ID != "" {
			if named, err := s.payOwed(o); err != nil {
				logrus.WithError(err).Warnf("name image %s as a cut pull or load asked", ShortID(o.ID))
			} else if named {
				logrus.Infof("named image %s %v as the pull or load a stop cut asked", ShortID(o.ID), o.Names)
				n++
			}
		}
		_ = os.Remove(path)
	}
	return n, nil
}

// payOwed adds the names o owes to its image, when the image exists and
// lacks one, and reports whether it did.
func (s *Service) payOwed(o owed) (bool, error) {
	img, err := s.store.Image(o.ID)
	if err != nil {
		return false, nil // the copy was cut before its image was made
	}
	if lack := s.halfWritten(img); lack != "" {
		if _, err := s.store.DeleteImage(o.ID, true); err != nil {
			return false, fmt.Errorf("remove image %s, cut while it was written (no %s): %w", ShortID(o.ID), lack, err)
		}
		logrus.Infof("removed image %s: a stop cut it while it was written (no %s)", ShortID(o.ID), lack)
		return false, nil
	}
	var missing []string
	for _, name := range o.Names {
		if !slices.Contains(img.Names, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return false, nil
	}
	if err := s.store.AddNames(o.ID, missing); err != nil {
		return false, err
	}
	s.touchTag(o.ID)
	return true, nil
}

// halfWritten names what a cut write left out of img (its config, its
// manifest), or is "" for a whole image. containers/image writes the
// config first and the manifest under storage.ImageDigestBigDataKey last
// of the two (signatures, when there are any, after them).
func (s *Service) halfWritten(img *storage.Image) string {
	if _, err := s.configBlob(img); err != nil {
		return "config"
	}
	if !slices.Contains(img.BigDataNames, storage.ImageDigestBigDataKey) {
		return "manifest"
	}
	return ""
}
