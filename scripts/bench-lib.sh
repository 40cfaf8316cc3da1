# Sourced by scripts/bench-scale.sh and scripts/bench-phases.sh: a private berthd
# on the bench's bridge and address block (see docs/benchmarks.md), started and
# stopped by PID, and the measuring helpers. Holds /run/berth-bench.lock, so it
# never runs beside make bench.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BRIDGE=${BENCH_BRIDGE:-bbench0}
BIP=${BENCH_BIP:-10.222.0.1/22}
POOL=${BENCH_POOL:-base=10.222.16.0/20,size=24}
IMAGE_TAR=${BENCH_IMAGE_TAR:-testdata/images/busybox-oci.tar}

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (it runs a container engine)"
for f in bin/berthd bin/berth-buildkitd bin/berth-imagecopy bin/berth-shim bin/berth-nsexec bin/berth-shim-sleep "$IMAGE_TAR"; do
    [ -e "$f" ] || die "$f missing (make build images)"
done
exec 9>/run/berth-bench.lock
flock -n 9 || die "another bench is running (/run/berth-bench.lock)"

ROOT=$(mktemp -d /tmp/berth-bench.XXXXXX)
BSOCK=$ROOT/docker.sock
EXECROOT=$ROOT/run
CGPARENT=berth-bench-$$
export DOCKER_CONFIG=$ROOT/docker-config DOCKER_CLI_HINTS=false DOCKER_HOST=unix://$BSOCK
mkdir -p "$DOCKER_CONFIG" "$ROOT/bin"
# copies: others may rebuild bin/ meanwhile
cp bin/berthd bin/berth-buildkitd bin/berth-imagecopy bin/berth-shim bin/berth-nsexec bin/berth-shim-sleep "$ROOT/bin/"
[ -e bin/berth-shim-remote ] && cp bin/berth-shim-remote "$ROOT/bin/"
# Read the daemon's code from disk, as an installed daemon's is at boot: a file
# just written sits in the page cache in large folios, and one touch maps a
# whole folio (up to 2 MB; smaps' FilePmdMapped), so berthd's idle RSS would
# depend on how its copy was written (docs/benchmarks.md, "BuildKit out of
# berthd").
for f in "$ROOT"/bin/*; do sync "$f"; dd if="$f" iflag=nocache count=0 status=none; done
BPID=
B() { docker "$@"; }
BERTHD_ARGS=(-H "unix://$BSOCK" --data-root "$ROOT/data" --exec-root "$EXECROOT"
    --bridge "$BRIDGE" --bip "$BIP" --default-address-pool "$POOL" --dns 127.0.0.1
    --cgroup-parent "$CGPARENT")

now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
# ms_of CMD...: wall time of one run of CMD in ms (output discarded)
ms_of() { local t0=${EPOCHREALTIME/./} t1; "$@" >/dev/null 2>&1 || { echo "bench: '$*' failed" >&2; return 1; }; t1=${EPOCHREALTIME/./}; echo "$(( (t1 - t0) / 1000 )).$(printf %03d $(( (t1 - t0) % 1000 )))"; }
# median_of K CMD...: median wall ms of K runs
median_of() { local k=$1 i; shift; for i in $(seq "$k"); do ms_of "$@"; done | sort -n | awk '{v[NR]=$1} END {printf "%.1f\n", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
rss_kb() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
# rss_parts PID: "anonymous / file-backed" resident MB (file-backed: the executable's pages)
rss_parts() { awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {printf "%.1f / %.1f", a/1024, f/1024}' "/proc/$1/status" 2>/dev/null; }
shim_pids() { # builtins only: with 1000 monitors, 3 processes per monitor took minutes
    local p a
    for p in $(pgrep -x berth-shim) $(pgrep -x berth-shim-remo) $(pgrep -x berth-shim-slee); do
        a=()
        mapfile -d '' -t a 2>/dev/null <"/proc/$p/cmdline" || continue
        [[ "${a[1]:-}" == "$EXECROOT/"* ]] && echo "$p"
    done
    return 0
}

start_berthd() { # extra berthd flags as arguments; waits for the API
    setsid "$ROOT/bin/berthd" "${BERTHD_ARGS[@]}" "$@" >>"$ROOT/berthd.log" 2>&1 </dev/null &
    BPID=$!
    local i
    for i in $(seq 300); do curl -sf --unix-socket "$BSOCK" http://x/_ping >/dev/null 2>&1 && return 0; kill -0 "$BPID" 2>/dev/null || break; sleep 0.05; done
    tail -20 "$ROOT/berthd.log" >&2
    die "berthd did not come up"
}

# leak counts of what this daemon's containers hold on the host
# (the exec root's netns directory is the daemon's own mount, made once)
count_mounts() { grep " $ROOT" /proc/self/mountinfo | grep -vc " $EXECROOT/netns " || true; }
count_veths() { ip -o link show master "$BRIDGE" 2>/dev/null | wc -l; }
count_cgroups() { find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path "*/$CGPARENT/*" 2>/dev/null | wc -l; }
count_shims() { shim_pids | wc -l; }

# scrub removes what a berthd on $BRIDGE left on the host: its bridges (those with an
# address in 10.222/16 or named $BRIDGE), their veths and its iptables chains.
scrub_host() {
    local l a t chains line
    # (other daemons' bridges come and go meanwhile: every lookup may fail)
    for l in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
        a=$(ip -o -4 addr show dev "$l" 2>/dev/null | awk '{print $4}') || true
        if [ "$l" = "$BRIDGE" ] || [[ "$a" == 10.222.* ]]; then
            for v in $(ip -o link show master "$l" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null || true; done
            ip link del "$l" 2>/dev/null && echo "bench: removed leftover bridge $l" >&2
        fi
    done
    for t in filter nat; do
        chains=$(iptables -w -t $t -S 2>/dev/null | awk -v s="-$BRIDGE" '$1=="-N" && $2 ~ /^BERTH-/ && substr($2, length($2)-length(s)+1)==s {print $2}') || true
        [ -z "$chains" ] && continue
        iptables -w -t $t -S | while read -r line; do
            set -- $line
            [ "$1" = -A ] || continue
            case "$2" in BERTH-*) continue ;; esac
            for c in $chains; do
                [ "${!#}" = "$c" ] && iptables -w -t $t -D "${@:2}" 2>/dev/null
            done
        done || true
        for c in $chains; do iptables -w -t $t -F "$c" 2>/dev/null || true; done
        for c in $chains; do iptables -w -t $t -X "$c" 2>/dev/null && echo "bench: removed leftover chain $t/$c" >&2; done
    done
    return 0
}

bench_cleanup() {
    local rc=$? ids p
    set +e
    trap - EXIT INT TERM
    echo "bench: cleaning up" >&2
    if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
        # (timeout runs a program: the docker CLI, not the B function)
        ids=$(timeout 60 docker ps -aq 2>/dev/null)
        [ -n "$ids" ] && timeout 600 docker rm -f $ids >/dev/null 2>&1
        for n in $(timeout 30 docker network ls -q --filter type=custom 2>/dev/null); do timeout 30 docker network rm "$n" >/dev/null 2>&1; done
        kill -TERM "$BPID"
        for i in $(seq 150); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$BPID" 2>/dev/null && kill -KILL "$BPID"
    fi
    [ -n "${REPLAY_PID:-}" ] && kill "$REPLAY_PID" 2>/dev/null
    for p in $(shim_pids); do echo "bench: leftover shim $p" >&2; kill -KILL "$p" 2>/dev/null; done
    # the containers of those: every process in this daemon's cgroup parent
    for p in $(find /sys/fs/cgroup/pids/"$CGPARENT" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    grep " $ROOT" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
    sleep 1 # the killed containers' namespaces go
    scrub_host
    find /sys/fs/cgroup -depth -type d -path "*/$CGPARENT*" -exec rmdir {} + 2>/dev/null
    [ -f "$ROOT/berthd.log" ] && cp "$ROOT/berthd.log" "${BENCH_LOG:-/tmp/berth-bench-berthd.log}"
    rm -rf "$ROOT"
    exit $rc
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
