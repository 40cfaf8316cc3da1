package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// The bridge driver options berth reads (dockerd's names). Options berth
// cannot honour are refused at create, never accepted and ignored.
const (
	optICC          = "com.docker.network.bridge.enable_icc"
	optMasquerade   = "com.docker.network.bridge.enable_ip_masquerade"
	optHostBinding  = "com.docker.network.bridge.host_binding_ipv4"
	optMTU          = "com.docker.network.driver.mtu"
	optIfPrefix     = "com.docker.network.container_iface_prefix"
	optGatewayMode  = "com.docker.network.bridge.gateway_mode_ipv4"
	optGatewayMode6 = "com.docker.network.bridge.gateway_mode_ipv6"
	optInhibitIPv4  = "com.docker.network.bridge.inhibit_ipv4"
	optEnableIPv4   = "com.docker.network.enable_ipv4"
	optEnableIPv6   = "com.docker.network.enable_ipv6"
	// optIfName is the endpoint driver option (compose interface_name)
	// that names the interface in the container.
	optIfName = "com.docker.network.endpoint.ifname"
)

// unsupportedOptions are dockerd bridge options whose effect berth does not
// have; a network asking for them is refused with the reason.
var unsupportedOptions = map[string]string{
	"com.docker.network.host_ipv4":                      "a fixed source address for outgoing traffic is not supported by berth",
	"com.docker.network.host_ipv6":                      "a fixed source address for outgoing traffic is not supported by berth",
	"com.docker.network.bridge.trusted_host_interfaces": "trusted host interfaces are not supported by berth",
}

// bridgeOptions are a bridge network's driver options, parsed.
type bridgeOptions struct {
	ICC        bool       // containers on the bridge reach each other
	Masquerade bool       // traffic leaving the bridge takes the host's address
	HostIP     netip.Addr // where ports published without an address bind
	MTU        int        // 0: the kernel's default
	IfPrefix   string     // interface names in the container: <prefix><N>
}

// parseBridgeOptions reads opts with dockerd's defaults and error words
// ("failed to parse <option> value: <v> (<why>)"). Errors are
// ErrInvalidArgument.
func parseBridgeOptions(opts map[string]string) (bridgeOptions, error) {
	o := bridgeOptions{ICC: true, Masquerade: true, HostIP: netip.IPv4Unspecified(), IfPrefix: "eth"}
	bad := func(k, v, why string) (bridgeOptions, error) {
		return bridgeOptions{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse %s value: %s (%s)", k, v, why))
	}
	for k, v := range opts {
		if why, ok := unsupportedOptions[k]; ok {
			return bridgeOptions{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network option %s: %s", k, why))
		}
		var err error
		switch k {
		case optICC:
			o.ICC, err = strconv.ParseBool(v)
		case optMasquerade:
			o.Masquerade, err = strconv.ParseBool(v)
		case optHostBinding:
			ip, perr := netip.ParseAddr(v)
			switch {
			case perr != nil:
				return bad(k, v, "nil ip")
			case !ip.Is4():
				return bad(k, v, "berth takes an IPv4 address here")
			}
			o.HostIP = ip
		case optMTU:
			if o.MTU, err = strconv.Atoi(v); err == nil && (o.MTU < 68 || o.MTU > 65535) {
				return bad(k, v, "the MTU must be between 68 and 65535")
			}
		case optIfPrefix:
			if v == "" || len(v) > 12 || strings.ContainsAny(v, "/: \t\n%") {
				return bad(k, v, "not a valid interface name prefix")
			}
			o.IfPrefix = v
		case optGatewayMode, optGatewayMode6:
			if v != "nat" {
				return bad(k, v, "berth supports gateway mode nat only")
			}
		case optEnableIPv4, optEnableIPv6:
			_, err = strconv.ParseBool(v)
		case optInhibitIPv4:
			var inhibit bool
			if inhibit, err = strconv.ParseBool(v); err == nil && inhibit {
				return bad(k, v, "a bridge without an IPv4 gateway address is not supported by berth")
			}
		}
		if err != nil {
			return bad(k, v, err.Error())
		}
	}
	return o, nil
}

// validIfName reports whether name can name a network interface.
func validIfName(name string) bool {
	return name != "" && len(name) <= 15 && name != "." && name != ".." && !strings.ContainsAny(name, "/: \t\n%")
}
