package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthd/berth/network/iptables"
	"github.com/sirupsen/logrus"
)

const (
	ipForwardPath  = "/proc/sys/net/ipv4/ip_forward"
	ip6ForwardPath = "/proc/sys/net/ipv6/conf/all/forwarding"
	// forwardingMarker, under the exec root (a tmpfs, cleared at boot like
	// the sysctl), says that this daemon turned IP forwarding on;
	// forwardingMarker6 the same for IPv6.
	forwardingMarker  = "ip_forward-by-berth"
	forwardingMarker6 = "ip6_forward-by-berth"
	bridgeNFPath      = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	bridgeNFPath6     = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
)

// ensureForwarding turns IPv4 forwarding on, which bridge networks need.
// When berth is what turns it on, it also sets the FORWARD policy to DROP,
// as dockerd does, so that the host does not start routing for its LAN
// between interfaces that are none of berth's business; and it remembers
// that in marker, so that later starts keep the policy DROP (forwarding is
// then on already). When forwarding was on before berth, the policy is the
// admin's and stays as it is; berth's own chains still let into a bridge
// only replies and published ports. The policy stays DROP when berthd
// stops, as with dockerd.
func ensureForwarding(ctx context.Context, procPath, marker string, dropPolicy func(context.Context) error) error {
	b, err := os.ReadFile(procPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", procPath, err)
	}
	if strings.TrimSpace(string(b)) != "1" {
		if err := os.WriteFile(procPath, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("enable forwarding (%s): %w", procPath, err)
		}
		if err := os.MkdirAll(filepath.Dir(marker), 0o711); err != nil {
			return err
		}
		note := fmt.Sprintf("berthd set %s to 1 and the iptables FORWARD policy to DROP at %s\n", procPath, time.Now().UTC().Format(time.RFC3339))
		if err := os.WriteFile(marker, []byte(note), 0o644); err != nil {
			return err
		}
		logrus.Infof("network: %s turned on; the FORWARD policy set to DROP", procPath)
		return dropPolicy(ctx)
	}
	if _, err := os.Stat(marker); err == nil {
		return dropPolicy(ctx)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	logrus.Debugf("network: %s was on before berthd; the FORWARD policy is left as it is", procPath)
	return nil
}

// forwarding6Locked turns IPv6 forwarding on, as ensureForwarding does
// IPv4's (ip6tables FORWARD policy DROP when berth turns it on), when the
// first IPv6 network comes up: an IPv4-only daemon leaves the host's IPv6
// alone, as dockerd does. Callers hold m.mu.
func (m *Manager) forwarding6Locked() error {
	if m.fwd6 {
		return nil
	}
	if err := ensureForwarding(context.Background(), ip6ForwardPath, filepath.Join(m.cfg.ExecRoot, forwardingMarker6), iptables.DropForwarding6); err != nil {
		return err
	}
	m.fwd6 = true
	return nil
}

// bridgeNetfilter makes bridged traffic pass iptables (br_netfilter), which
// enable_icc=false needs to see traffic between containers of one bridge;
// with v6, ip6tables too. Host-wide, as with dockerd.
func bridgeNetfilter(v6 bool) error {
	if _, err := os.Stat(bridgeNFPath); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("the br_netfilter kernel module is needed and could not be loaded: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if v6 {
		if err := writeSysctl(bridgeNFPath6, "1"); err != nil {
			return err
		}
	}
	return writeSysctl(bridgeNFPath, "1")
}
