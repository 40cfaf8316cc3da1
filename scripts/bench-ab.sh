#!/bin/bash
# make bench-ab A=<dir> B=<dir>: two berthds side by side, one from the binaries in each
# directory (berthd and its helpers, as `make build` leaves them in bin/), and the same
# command alternating between them, AB_N times each (the order flips every round), so that
# both see the same machine. A change of a few ms is under the spread of two `make bench`
# runs hours apart; interleaved like this, 120 runs each tell 3-5 ms apart
# (docs/benchmarks.md, issue 17's fifth stop). Prints the median and quartiles of each.
# Env: AB_N=120, AB_CMD="run --rm busybox true" (a docker command; "run -d ..." containers
# are removed every 25 rounds, outside the timing), AB_ENV_A / AB_ENV_B (extra environment
# for either berthd, e.g. AB_ENV_B="BERTH_SHIM_SLEEP_AFTER=off").
set -euo pipefail
cd "$(dirname "$0")/.."
A=${A:?A=<directory of the first build>}
B=${B:?B=<directory of the second build>}
N=${AB_N:-120}
read -r -a CMD <<<"${AB_CMD:-run --rm busybox true}"
IMAGE_TAR=testdata/images/busybox-oci.tar
die() { echo "bench-ab: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (it runs container engines)"
for d in "$A" "$B"; do
    for f in berthd berth-shim berth-nsexec berth-shim-sleep berth-imagecopy; do
        [ -x "$d/$f" ] || die "$d/$f missing"
    done
done
[ -e "$IMAGE_TAR" ] || die "$IMAGE_TAR missing (make images)"
exec 9>/run/berth-bench.lock
flock -n 9 || die "another bench is running (/run/berth-bench.lock)"

ROOT=$(mktemp -d /tmp/berth-ab.XXXXXX)
declare -A PID
sock() { echo "unix://$ROOT/$1/docker.sock"; }
D() { local e=$1; shift; DOCKER_HOST=$(sock "$e") DOCKER_CONFIG=$ROOT/cfg docker "$@"; }
start() { # name bindir bridge net extra-env
    mkdir -p "$ROOT/$1"
    # shellcheck disable=SC2086 # the extra environment is words
    env $5 "$2/berthd" -H "$(sock "$1")" --data-root "$ROOT/$1/data" --exec-root "$ROOT/$1/run" \
        --bridge "$3" --bip "$4.0.1/24" --default-address-pool "base=$4.16.0/20,size=24" \
        --cgroup-parent "berth-ab-$1-$$" >"$ROOT/$1/berthd.log" 2>&1 &
    PID[$1]=$!
    for _ in $(seq 200); do D "$1" version >/dev/null 2>&1 && break; sleep 0.05; done
    D "$1" version >/dev/null || die "berthd $1 did not start: $(tail -3 "$ROOT/$1/berthd.log")"
    D "$1" load -i "$IMAGE_TAR" >/dev/null
    D "$1" tag "$(D "$1" images -q | head -1)" busybox:latest
}
removeAll() { local ids; ids=$(D "$1" ps -aq); [ -z "$ids" ] || D "$1" rm -f $ids >/dev/null; }
cleanup() {
    for e in "${!PID[@]}"; do
        removeAll "$e" 2>/dev/null || true
        kill "${PID[$e]}" 2>/dev/null || true
        wait "${PID[$e]}" 2>/dev/null || true
        find /sys/fs/cgroup -depth -type d -path "*/berth-ab-$e-$$*" -exec rmdir {} + 2>/dev/null || true
    done
    # the exec roots' tmpfs and netns directories (berthd keeps them, as /run)
    grep " $ROOT" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$ROOT"
}
trap cleanup EXIT
mkdir -p "$ROOT/cfg"
start A "$A" bdab0 10.232 "${AB_ENV_A:-}"
start B "$B" bdab1 10.233 "${AB_ENV_B:-}"
for e in A B; do for _ in 1 2 3; do D "$e" "${CMD[@]}" >/dev/null; done; removeAll "$e"; done

echo "bench-ab: A=$A B=$B, docker ${CMD[*]}, $N each, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
for i in $(seq "$N"); do
    order="A B"; [ $((i % 2)) = 0 ] && order="B A"
    for e in $order; do
        t0=${EPOCHREALTIME/./}
        D "$e" "${CMD[@]}" >/dev/null
        t1=${EPOCHREALTIME/./}
        echo "$e $((t1 - t0))" >>"$ROOT/samples"
    done
    [ $((i % 25)) = 0 ] && { removeAll A; removeAll B; }
done
python3 - "$ROOT/samples" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    e, us = line.split()
    d[e].append(int(us) / 1000)
for e in sorted(d):
    q = statistics.quantiles(d[e], n=4)
    print("%s  median %6.1f ms  p25 %6.1f  p75 %6.1f  (n=%d)" % (e, statistics.median(d[e]), q[0], q[2], len(d[e])))
print("B - A: %+.1f ms (medians)" % (statistics.median(d["B"]) - statistics.median(d["A"])))
PY
