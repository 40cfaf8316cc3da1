package runtime

import (
	"encoding/json"

	"github.com/sirupsen/logrus"
)

// Readers never wait for writers. An operation (start, stop, remove...)
// holds its container's mutex for as long as it takes: a start holds it
// through mounts, copy-up, network attach and the OCI runtime. What only
// reads a container (docker ps, inspect, counts, name lookup, the compose
// views built from the list) reads the container's view instead: a frozen
// copy of its record, published whenever the record is saved or its state
// changes, as moby's container View does. A reader sees the state of the
// last published change: a starting container is "created" until its start
// is over.

// publish freezes the record as the container's view; call with c.mu held.
func (c *ctr) publish() {
	rec, err := cloneRecord(c.rec)
	if err != nil {
		// cannot happen for a record that was ever stored; readers keep
		// the last view rather than see half a record
		logrus.WithError(err).Errorf("publish the view of container %s", short(c.rec.ID))
		if c.view.Load() == nil {
			r := *c.rec
			c.view.Store(&r)
		}
		return
	}
	c.view.Store(rec)
}

// snapshot is the container's last published record. It is shared by
// every reader: never change it.
func (c *ctr) snapshot() *Record {
	return c.view.Load()
}

// cloneRecord is a deep copy of a record, through the form it is stored in,
// so that the copy is exactly what a daemon restart would load.
func cloneRecord(rec *Record) (*Record, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	out := &Record{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// views lists every container's published record.
func (s *Service) views() []*Record {
	all := s.all()
	out := make([]*Record, 0, len(all))
	for _, c := range all {
		out = append(out, c.snapshot())
	}
	return out
}
