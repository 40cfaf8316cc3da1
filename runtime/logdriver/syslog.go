package logdriver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The syslog driver's options, checked here (berthd) and used by
// logdriver/remote (the monitor), which writes with srslog as dockerd does.

// SyslogFacilities maps facility names to their codes.
var SyslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// SyslogFacility parses syslog-facility (a name or 0-23; daemon when
// unset) into a facility code.
func SyslogFacility(s string) (int, error) {
	if s == "" {
		return SyslogFacilities["daemon"], nil
	}
	if f, ok := SyslogFacilities[s]; ok {
		return f, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 23 {
		return n, nil
	}
	return 0, errors.New("invalid syslog facility")
}

// SyslogAddress parses syslog-address into a network and address, as
// dockerd does: unix:// and unixgram:// sockets must exist; udp, tcp and
// tcp+tls default to port 514. "" (the local syslog) gives "", "".
func SyslogAddress(address string) (network, addr string, err error) {
	if address == "" {
		return "", "", nil
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", "", err
	}
	if u.Scheme == "unix" || u.Scheme == "unixgram" {
		if _, err := os.Stat(u.Path); err != nil {
			return "", "", err
		}
		return u.Scheme, u.Path, nil
	}
	if u.Scheme != "udp" && u.Scheme != "tcp" && u.Scheme != "tcp+tls" {
		return "", "", fmt.Errorf("unsupported scheme: '%s'", u.Scheme)
	}
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		if !strings.Contains(err.Error(), "missing port in address") {
			return "", "", err
		}
		host = net.JoinHostPort(host, "514")
	}
	return u.Scheme, host, nil
}

// SyslogFormats are syslog-format's values ("" is the local syslog's
// format, as dockerd's).
var SyslogFormats = map[string]bool{"": true, "rfc3164": true, "rfc5424": true, "rfc5424micro": true}

func validateSyslog(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "syslog-address", "syslog-facility", "syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key",
			"syslog-tls-skip-verify", "syslog-format":
		default:
			if !commonOpts[k] {
				return fmt.Errorf("unknown log opt '%s' for syslog log driver", k)
			}
		}
	}
	if _, _, err := SyslogAddress(opts["syslog-address"]); err != nil {
		return err
	}
	if _, err := SyslogFacility(opts["syslog-facility"]); err != nil {
		return err
	}
	if !SyslogFormats[opts["syslog-format"]] {
		return errors.New("Invalid syslog format")
	}
	return nil
}
