package oci

import (
	"math"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rlimitResources maps OCI rlimit names to getrlimit resources.
var rlimitResources = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// rlimitValue turns a Docker ulimit number into an rlimit; Docker's API
// uses -1 for unlimited.
func rlimitValue(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64 // RLIM_INFINITY
	}
	return uint64(v)
}

// rlimits sets only what --ulimit asks for (no 1048576 nofile default:
// the engine may not be allowed that), lowered to the engine's own hard
// limit, which runc cannot raise without CAP_SYS_RESOURCE.
func rlimits(ulimits []*container.Ulimit, host map[string]Rlimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]int{}
	for _, ul := range ulimits {
		if ul == nil {
			continue
		}
		typ := "RLIMIT_" + strings.ToUpper(ul.Name)
		if _, ok := rlimitResources[typ]; !ok {
			return nil, invalid("invalid ulimit type: %s", ul.Name)
		}
		rl := specs.POSIXRlimit{Type: typ, Soft: rlimitValue(ul.Soft), Hard: rlimitValue(ul.Hard)}
		if rl.Soft > rl.Hard {
			return nil, invalid("ulimit soft limit must be less than or equal to hard limit: %d > %d", ul.Soft, ul.Hard)
		}
		if h, ok := host[typ]; ok && rl.Hard > h.Hard {
			rl.Hard = h.Hard
			rl.Soft = min(rl.Soft, rl.Hard)
		}
		if i, dup := seen[typ]; dup {
			out[i] = rl // the last one wins, as in Docker's map of ulimits
			continue
		}
		seen[typ] = len(out)
		out = append(out, rl)
	}
	return out, nil
}
