package remote

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/RackSec/srslog"
	"github.com/berthd/berth/runtime/logdriver"
)

// syslogDriver writes each entry as one syslog message with srslog, as
// dockerd: severity info (stdout) or err (stderr) in syslog-facility,
// the tag as the app name, framed by message length (RFC 5425) over
// tcp+tls with the rfc5424 formats.
type syslogDriver struct {
	w *srslog.Writer
}

// rfc5424 formats as dockerd does: the tag is both the APP-NAME and the
// MSGID, no structured data; micro gives the timestamp microseconds.
func rfc5424(micro bool) srslog.Formatter {
	layout := time.RFC3339
	if micro {
		layout = "2006-01-02T15:04:05.000000Z07:00"
	}
	return func(p srslog.Priority, hostname, tag, content string) string {
		return fmt.Sprintf("<%d>%d %s %s %s %d %s - %s", p, 1, time.Now().Format(layout), hostname, tag, os.Getpid(), tag, content)
	}
}

func formatAndFramer(format, network string) (srslog.Formatter, srslog.Framer) {
	framer := srslog.Framer(srslog.DefaultFramer)
	if network == "tcp+tls" && strings.HasPrefix(format, "rfc5424") {
		framer = srslog.RFC5425MessageLengthFramer
	}
	switch format {
	case "rfc3164":
		return srslog.RFC3164Formatter, framer
	case "rfc5424":
		return rfc5424(false), framer
	case "rfc5424micro":
		return rfc5424(true), framer
	}
	return srslog.UnixFormatter, framer
}

func openSyslog(cfg logdriver.Config) (logdriver.Driver, error) {
	network, addr, err := logdriver.SyslogAddress(cfg.Opts["syslog-address"])
	if err != nil {
		return nil, err
	}
	facility, err := logdriver.SyslogFacility(cfg.Opts["syslog-facility"])
	if err != nil {
		return nil, err
	}
	prio := srslog.Priority(facility << 3)
	var w *srslog.Writer
	if network == "tcp+tls" {
		tc, err := syslogTLS(cfg.Opts)
		if err != nil {
			return nil, err
		}
		w, err = srslog.DialWithTLSConfig(network, addr, prio, cfg.Info.Tag, tc)
		if err != nil {
			return nil, err
		}
	} else if w, err = srslog.Dial(network, addr, prio, cfg.Info.Tag); err != nil {
		return nil, err
	}
	format, framer := formatAndFramer(cfg.Opts["syslog-format"], network)
	w.SetFormatter(format)
	w.SetFramer(framer)
	return &syslogDriver{w: w}, nil
}

// syslogTLS is the client TLS of syslog-tls-ca-cert, -cert, -key and
// -skip-verify (present means skip, whatever its value, as dockerd).
func syslogTLS(opts map[string]string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if _, skip := opts["syslog-tls-skip-verify"]; skip {
		tc.InsecureSkipVerify = true
	}
	if ca := opts["syslog-tls-ca-cert"]; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("could not read CA certificate %q: %v", ca, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("failed to append certificates from PEM file: %q", ca)
		}
		tc.RootCAs = pool
	}
	cert, key := opts["syslog-tls-cert"], opts["syslog-tls-key"]
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("could not load X509 key pair: %v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

func (d *syslogDriver) Log(m *logdriver.Message) error {
	line := m.Line
	if len(line) == 0 {
		return nil
	}
	if m.Stream == "stderr" {
		return d.w.Err(string(line))
	}
	return d.w.Info(string(line))
}

func (d *syslogDriver) Close() error { return d.w.Close() }
