package logdriver

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/coreos/go-systemd/v22/journal"
)

// journaldDriver sends entries to the systemd journal's native socket with
// github.com/coreos/go-systemd's journal package, with dockerd's fields:
// MESSAGE, PRIORITY 6 (stdout) or 3 (stderr), CONTAINER_ID,
// CONTAINER_ID_FULL, CONTAINER_NAME, CONTAINER_TAG, IMAGE_NAME,
// SYSLOG_IDENTIFIER and the extra attributes as journal field names.
// `docker logs` reads the dual-logging cache (reading the journal back
// needs libsystemd through cgo, which berth does not link).
type journaldDriver struct {
	vars map[string]string
}

// JournalSocket is the journal's native socket.
const JournalSocket = "/run/systemd/journal/socket"

func validateJournald(opts map[string]string) error {
	for k := range opts {
		if !commonOpts[k] {
			return fmt.Errorf("unknown log opt '%s' for journald log driver", k)
		}
	}
	return nil
}

// JournaldEnabled is dockerd's check: journald is there when its socket is.
func JournaldEnabled() error {
	if _, err := os.Stat(JournalSocket); err != nil {
		return errors.New("journald is not enabled on this host")
	}
	return nil
}

// journalField turns an attribute name into a journal field name as
// dockerd does: upper case letters, digits and '_', no leading '_'.
func journalField(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(unicode.ToUpper(r))
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9' && b.Len() > 0, r == '_' && b.Len() > 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func openJournald(cfg Config) (Driver, error) {
	if err := JournaldEnabled(); err != nil {
		return nil, err
	}
	in := cfg.Info
	vars := map[string]string{
		"CONTAINER_ID": short(in.ContainerID), "CONTAINER_ID_FULL": in.ContainerID,
		"CONTAINER_NAME": in.ContainerName, "CONTAINER_TAG": in.Tag, "IMAGE_NAME": in.ImageName,
		"SYSLOG_IDENTIFIER": in.Tag,
	}
	for k, v := range in.Attrs {
		if f := journalField(k); f != "" {
			vars[f] = v
		}
	}
	return &journaldDriver{vars: vars}, nil
}

func (d *journaldDriver) Log(m *Message) error {
	prio := journal.PriInfo
	if m.Stream == "stderr" {
		prio = journal.PriErr
	}
	return journal.Send(string(trimNewline(m.Line)), prio, d.vars)
}

func (d *journaldDriver) Close() error { return nil }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
