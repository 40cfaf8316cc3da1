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

	"github.com/sirupsen/logrus"
)

const (
	ipForwardPath = "/proc/sys/net/ipv4/ip_forward"
	// forwardingMarker, under the exec root (a tmpfs, cleared at boot like
	// the sysctl), says that this daemon turned IP forwarding on.
	forwardingMarker = "ip_forward-by-berth"
	bridgeNFPath     = "/proc/sys/net/bridge/bridge-nf-call-iptables"
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
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(marker), 0o711); err != nil {
			return err
		}
		note := fmt.Sprintf("berthd set %s to 1 and the iptables FORWARD policy to DROP at %s\n", procPath, time.Now().UTC().Format(time.RFC3339))
		if err := os.WriteFile(marker, []byte(note), 0o644); err != nil {
			return err
		}
		logrus.Info("network: IPv4 forwarding turned on; iptables FORWARD policy set to DROP")
		return dropPolicy(ctx)
	}
	if _, err := os.Stat(marker); err == nil {
		return dropPolicy(ctx)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	logrus.Debug("network: IPv4 forwarding was on before berthd; the FORWARD policy is left as it is")
	return nil
}

// bridgeNetfilter makes bridged traffic pass iptables (br_netfilter), which
// enable_icc=false needs to see traffic between containers of one bridge.
// Host-wide, as with dockerd.
func bridgeNetfilter() error {
	if _, err := os.Stat(bridgeNFPath); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("the br_netfilter kernel module is needed and could not be loaded: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return writeSysctl(bridgeNFPath, "1")
}
