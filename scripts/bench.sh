#!/bin/bash
# make bench: time the same whole docker CLI commands against berthd and against the
# reference dockerd (Debian docker.io 20.10, ../shared/anchors/start-dockerd.sh) in one
# run, and measure the memory of the daemons and of the per-container monitors.
#
# berthd runs on a private socket, data root and exec root under a temp dir, with its own
# bridge and address block (10.222.0.0/16: clear of berthd's default 10.210.0.0/16, the
# tests' 10.216.0.0/14 and the anchors' 10.213/10.214). The anchor dockerd is started only
# when it is not already answering, and then stopped again (by PID, stop-anchors.sh).
# Samples of the two engines are interleaved (berth, dockerd, dockerd, berth, ...) so load
# from anything else on the machine hits both alike. Everything the bench creates is
# removed on exit, also on failure or ^C.
#
# Env: BENCH_N=20 (samples per command and engine)   BENCH_CONTAINERS=50
#      BENCH_DEBUG=1 (berthd --debug: per-request durations in the log)
#      BENCH_LOG=/tmp/berth-bench-berthd.log (where berthd's log is kept after the run)
#      BENCH_TIMEOUT=120 (seconds one timed command may take before it is killed)
#      BENCH_MD=FILE (also write the result table as markdown to FILE)
#      BENCH_ONLY=latency,compose,build (which parts to run; default all of them;
#      quick: only run --rm, run --rm --network none, create, exec and idle memory)
#      ANCHORS=../shared/anchors   BENCH_BRIDGE=bbench0 BENCH_BIP=10.222.0.1/24
#      BENCH_POOL=base=10.222.16.0/20,size=24
#      BENCH_ANCHOR_TMPFS=1 (the anchor's /run/anchor on a tmpfs while it runs; see below)
# Needs: root, the docker CLI, runc, iptables, bin/berthd + bin/berth-buildkitd + bin/berth-imagecopy + bin/berth-shim + bin/berth-nsexec (make build),
# bin/docker-compose (make compose), bin/docker-buildx (make buildx), testdata/images/busybox.tar (make images), and for
# the reference engine Debian docker.io (apt-get install -y docker.io busybox-static skopeo).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
N=${BENCH_N:-20}
NCT=${BENCH_CONTAINERS:-50}
ANCHORS=$(cd "${ANCHORS:-$REPO/../shared/anchors}" && pwd)
BRIDGE=${BENCH_BRIDGE:-bbench0}
BIP=${BENCH_BIP:-10.222.0.1/24}
POOL=${BENCH_POOL:-base=10.222.16.0/20,size=24}
KEEPLOG=${BENCH_LOG:-/tmp/berth-bench-berthd.log}
TIMEOUT=${BENCH_TIMEOUT:-120}
COMPOSE_FILE=$ANCHORS/compose-bench/compose.yaml
ASOCK=/run/anchor/docker.sock
RUNID=$$

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (it runs container engines)"
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] || die "BENCH_N must be a positive integer"
for t in docker runc iptables dockerd containerd; do
    command -v "$t" >/dev/null || die "$t not found: apt-get install -y docker.io runc iptables (docker CLI: /usr/local/bin/docker)"
done
for f in bin/berthd bin/berth-buildkitd bin/berth-imagecopy bin/berth-shim bin/berth-shim-remote bin/berth-nsexec bin/berth-shim-sleep bin/docker-compose bin/docker-buildx testdata/images/busybox.tar "$COMPOSE_FILE" "$ANCHORS/start-dockerd.sh"; do
    [ -e "$f" ] || die "$f missing (make build images compose buildx; anchors at $ANCHORS)"
done
ONLY=${BENCH_ONLY:-latency,compose,build}
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# One bench at a time on this host: the bridge name and address block are ours alone
# while the lock is held, so a leftover bridge is from a bench that died (scrubbed below).
exec 9>/run/berth-bench.lock
flock -n 9 || die "another make bench is running (/run/berth-bench.lock)"

ROOT=$(mktemp -d /tmp/berth-bench.XXXXXX)
BSOCK=$ROOT/docker.sock
EXECROOT=$ROOT/run
export DOCKER_CONFIG=$ROOT/docker-config DOCKER_CLI_HINTS=false
mkdir -p "$DOCKER_CONFIG/cli-plugins" "$ROOT/samples"
# docker build goes through buildx (BuildKit) on both engines, as users run it
cp bin/docker-buildx "$DOCKER_CONFIG/cli-plugins/docker-buildx"
ERR=$ROOT/stderr
BPID=
WPID=
SINKPID=
IPID=
ANCHOR_STARTED=0
ANCHOR_TMPFS=0
COMPOSE_UP=0

# B/A: the docker CLI against berthd / the anchor dockerd; C: compose on engine $1.
HOST_B=unix://$BSOCK HOST_A=unix://$ASOCK
B() { DOCKER_HOST=$HOST_B docker "$@"; }
A() { DOCKER_HOST=$HOST_A docker "$@"; }
C() { local e=$1; shift; DOCKER_HOST=unix://$(sock "$e") "$REPO/bin/docker-compose" -f "$COMPOSE_FILE" -p "$(project "$e")" "$@"; }
sock() { if [ "$1" = B ]; then echo "$BSOCK"; else echo "$ASOCK"; fi; }
project() { if [ "$1" = B ]; then echo bench-berth; else echo bench-dockerd; fi; }
name() { if [ "$1" = B ]; then echo berth; else echo dockerd; fi; }

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

cleanup() {
    local rc=$? ids
    set +e
    trap - EXIT INT TERM
    [ $rc != 0 ] && [ -s "$ERR" ] && { echo "bench: last stderr:" >&2; tail -20 "$ERR" >&2; }
    echo "bench: cleaning up" >&2
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null
    [ -n "$SINKPID" ] && kill "$SINKPID" 2>/dev/null
    [ -n "$IPID" ] && kill "$IPID" 2>/dev/null
    if [ "$COMPOSE_UP" = 1 ]; then
        DOCKER_HOST=$HOST_A timeout 60 "$REPO/bin/docker-compose" -f "$COMPOSE_FILE" -p "$(project A)" down -t 0 >/dev/null 2>&1
        [ -n "$BPID" ] && DOCKER_HOST=$HOST_B timeout 60 "$REPO/bin/docker-compose" -f "$COMPOSE_FILE" -p "$(project B)" down -t 0 >/dev/null 2>&1
    fi
    # (timeout runs programs, not the A/B/C functions: the docker CLI with DOCKER_HOST)
    # the anchor: only what this run created (tracked ids and the run's label)
    ids=$( { cat "$ROOT/ids.A" 2>/dev/null; DOCKER_HOST=$HOST_A timeout 30 docker ps -aq --filter "label=berth.bench=$RUNID" 2>/dev/null; } | sort -u)
    [ -n "$ids" ] && DOCKER_HOST=$HOST_A timeout 120 docker rm -f $ids >/dev/null 2>&1
    DOCKER_HOST=$HOST_A timeout 60 docker image prune -af --filter "label=berth.bench=$RUNID" >/dev/null 2>&1
    if [ -n "$BPID" ]; then
        ids=$(DOCKER_HOST=$HOST_B timeout 30 docker ps -aq 2>/dev/null)
        [ -n "$ids" ] && DOCKER_HOST=$HOST_B timeout 120 docker rm -f $ids >/dev/null 2>&1
        kill -TERM "$BPID" 2>/dev/null
        for i in $(seq 150); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$BPID" 2>/dev/null && { echo "bench: berthd $BPID did not stop, SIGKILL" >&2; kill -KILL "$BPID"; }
        wait "$BPID" 2>/dev/null
        # monitors of this daemon's exec root that are still there (a failed rm)
        for p in $(shim_pids); do echo "bench: leftover shim $p" >&2; kill -KILL "$p" 2>/dev/null; done
    fi
    grep " $ROOT" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    scrub_host
    [ "$ANCHOR_STARTED" = 1 ] && "$ANCHORS/stop-anchors.sh" docker >&2
    [ "$ANCHOR_TMPFS" = 1 ] && umount -l /run/anchor
    [ -f "$ROOT/berthd.log" ] && cp "$ROOT/berthd.log" "$KEEPLOG"
    rm -rf "$ROOT"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- measuring helpers
# timeit CASE ENGINE docker|compose ARGS...: run the docker CLI (or compose) against the
# engine once, stdout to $ROOT/out, and append its wall time in ms to samples/CASE.ENGINE.
# Bash's $EPOCHREALTIME, and the command is a plain background job: one fork+exec, as for
# a command typed at a shell, so the watchdog can end it by PID when it hangs longer
# than BENCH_TIMEOUT seconds.
timeit() {
    local c=$1 e=$2 hv=HOST_$2 cmd=(docker) t0 t1 pid
    [ "$3" = compose ] && cmd=("$REPO/bin/docker-compose" -f "$COMPOSE_FILE" -p "$(project "$e")")
    shift 3
    t0=${EPOCHREALTIME/./}
    DOCKER_HOST=${!hv} "${cmd[@]}" "$@" >"$ROOT/out" 2>>"$ERR" &
    pid=$!
    echo "$pid $t0" >"$ROOT/current"
    wait "$pid" || die "$(name "$e"): '${cmd[*]} $*' failed (exit $?)"
    t1=${EPOCHREALTIME/./}
    : >"$ROOT/current"
    echo "$(( (t1 - t0) / 1000 )).$(printf %03d $(( (t1 - t0) % 1000 )))" >>"$ROOT/samples/$c.$e"
}
watchdog() {
    local pid t0 now
    while sleep 5; do
        read -r pid t0 <"$ROOT/current" 2>/dev/null || continue
        [ -n "$pid" ] || continue
        now=${EPOCHREALTIME/./}
        if [ $(( (now - t0) / 1000000 )) -ge "$TIMEOUT" ]; then
            echo "bench: pid $pid ran longer than ${TIMEOUT}s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    done
}
# order I: berth first on even iterations, dockerd first on odd ones
order() { if [ $(( $1 % 2 )) = 0 ]; then echo B A; else echo A B; fi; }
# stats FILE: "median p90" in ms (p90: nearest rank)
stats() { sort -n "$1" | awk '{v[NR]=$1} END {m = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
    r = int(0.9*NR); if (r < 0.9*NR) r++; printf "%.1f %.1f\n", m, v[r]}'; }

shim_pids() { # berth-shim processes whose state dir (argv[1]) is under our exec root
    local p
    for p in $(pgrep -x berth-shim) $(pgrep -x berth-shim-slee); do
        { tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | sed -n 2p | grep -q "^$EXECROOT/" && echo "$p"
    done
    return 0
}
# berth-buildkitd processes of our berthd (their config, argv[1], names our exec root)
buildkitd_pids() {
    local p
    for p in $(pgrep -x berth-buildkitd); do
        { tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | sed -n 2p | grep -qF "\"$EXECROOT/" && echo "$p"
    done
    return 0
}
# containerd-shim-runc-v2 processes of the anchor's containerd that serve one of the
# containers listed in $1 (other users of the anchor may have containers of their own)
anchor_shim_pids() {
    local p id
    for p in $(pgrep -f '^/usr/bin/containerd-shim-runc-v2 .*-address /run/anchor/containerd/'); do
        id=$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | grep -A1 -x -- -id | tail -1) || true
        [ -n "$id" ] && grep -qx "$id" "$1" && echo "$p"
    done
    return 0
}
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss_kb() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum_pss_kb() { local s=0 p; for p in "$@"; do s=$(( s + $(pss_kb "$p") )); done; echo $s; }
sum_rss_kb() { local s=0 p; for p in "$@"; do s=$(( s + $(rss_kb "$p") )); done; echo $s; }
mb() { awk -v k="$1" 'BEGIN {printf "%.2f", k/1024}'; }
declare -A MEM

# BENCH_ANCHOR_TMPFS=1: the anchor's /run/anchor (dockerd's exec root, containerd's state)
# on a tmpfs, as /run is on a usual host; berthd mounts one on its own exec root when that
# is on a disk filesystem (this machine's /run is ext4), the anchor scripts do not. Only
# when no anchor of /run/anchor runs (their pid files would be hidden).
anchor_tmpfs() {
    local f
    [ "$(stat -f -c %T /run/anchor 2>/dev/null)" = tmpfs ] && return 0
    for f in /run/anchor/*.pid; do
        [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && { echo "bench: $f is alive: /run/anchor stays as it is" >&2; return 0; }
    done
    mkdir -p /run/anchor && mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run/anchor && ANCHOR_TMPFS=1
    echo "bench: /run/anchor on a tmpfs for this run"
}

# ---------------------------------------------------------------- engines
echo "bench: N=$N, $NCT containers, root $ROOT"
if ! A version >/dev/null 2>&1; then
    echo "bench: starting the anchor dockerd ($ANCHORS/start-dockerd.sh)"
    ANCHOR_STARTED=1
    if [ "${BENCH_ANCHOR_TMPFS:-0}" = 1 ]; then anchor_tmpfs; fi
    NO_VERIFY=1 "$ANCHORS/start-dockerd.sh" >&2
else
    echo "bench: anchor dockerd already answering on $ASOCK (left running afterwards)"
    # it has the busybox image if start-dockerd.sh ran; load it otherwise
    A image inspect busybox:latest >/dev/null 2>&1 || NO_VERIFY=1 "$ANCHORS/start-dockerd.sh" >&2
fi
APID=$(cat /run/anchor/docker.pid)
CPID=$(cat /run/anchor/containerd.pid)

scrub_host
# run copies of the binaries: others may rebuild bin/ while the bench runs
mkdir -p "$ROOT/bin"
cp bin/berthd bin/berth-buildkitd bin/berth-imagecopy bin/berth-shim bin/berth-shim-remote bin/berth-nsexec bin/berth-shim-sleep "$ROOT/bin/"
# Read the daemon's code from disk, as an installed daemon's is at boot: a file
# just written sits in the page cache in large folios, and one touch maps a
# whole folio (up to 2 MB; smaps' FilePmdMapped), so berthd's idle RSS would
# depend on how its copy was written (docs/benchmarks.md, "BuildKit out of
# berthd").
for f in "$ROOT"/bin/*; do sync "$f"; dd if="$f" iflag=nocache count=0 status=none; done
ARGS=(-H "unix://$BSOCK" --data-root "$ROOT/data" --exec-root "$EXECROOT"
    --bridge "$BRIDGE" --bip "$BIP" --default-address-pool "$POOL" --dns 127.0.0.1)
[ "${BENCH_DEBUG:-0}" = 1 ] && ARGS+=(--debug)
setsid "$ROOT/bin/berthd" "${ARGS[@]}" >"$ROOT/berthd.log" 2>&1 </dev/null &
BPID=$!
for i in $(seq 100); do B version >/dev/null 2>&1 && break; kill -0 "$BPID" || break; sleep 0.1; done
B version >/dev/null 2>&1 || { tail -20 "$ROOT/berthd.log" >&2; die "berthd did not come up"; }
B load -i testdata/images/busybox.tar >/dev/null
: >"$ROOT/current"
watchdog &
WPID=$!
echo "bench: berthd pid $BPID ($(B version --format '{{.Server.Version}}')); dockerd pid $APID ($(A version --format '{{.Server.Version}}')), containerd pid $CPID"
echo "bench: containers present before: berth $(B ps -aq | wc -l), dockerd $(A ps -aq | wc -l)"

sleep 2
MEM[idle.B.rss]=$(rss_kb "$BPID"); MEM[idle.B.pss]=$(pss_kb "$BPID")
MEM[idle.A.rss]=$(sum_rss_kb "$APID" "$CPID"); MEM[idle.A.pss]=$(sum_pss_kb "$APID" "$CPID")

LOGLINES=${BENCH_LOG_LINES:-100000}
LOGN=${BENCH_LOG_N:-5}

# ---------------------------------------------------------------- floors
# floors: what no engine driven by this docker CLI and this runc goes below on this
# machine (docs/benchmarks.md "Floors"), sampled in the same run: the CLI's own start
# (`docker --version`: no request at all), and runc alone on berth's own spec (the
# running exec container's config.json: its root filesystem, mounts, seccomp profile
# and capabilities, with `true`, a new network namespace and a cgroup of its own):
# `runc run` (create, start, wait, delete in one runc), the same without seccomp, and
# `runc create` alone (berth starts through the init's exec fifo and deletes after
# it has answered, so create is what a `docker run --rm` waits for). And the CLI's own
# share of each quick line: the same command against scripts/instant-engine.py, which
# answers every request at once without doing anything.
floor_sample() { # name cmd...
    local c=$1 t0 t1
    shift
    t0=${EPOCHREALTIME/./}
    "$@" >/dev/null 2>>"$ERR" || die "floor $c: '$*' failed"
    t1=${EPOCHREALTIME/./}
    echo "$(( (t1 - t0) / 1000 )).$(printf %03d $(( (t1 - t0) % 1000 )))" >>"$ROOT/samples/floor-$c"
}
floors() {
    local spec=$EXECROOT/c/${QEXEC_B:0:24}/config.json st=$ROOT/floor-state i
    [ -f "$spec" ] || die "floors: no bundle at $spec"
    mkdir -p "$ROOT/floor" "$ROOT/floor-noseccomp" "$st"
    python3 - "$spec" "$ROOT" <<'PY'
import json, sys
spec, root = sys.argv[1], sys.argv[2]
c = json.load(open(spec))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["linux"]["namespaces"] = [{"type": n["type"]} for n in c["linux"]["namespaces"]]
c["linux"]["cgroupsPath"] = "/berth-bench-floor/floor"  # one run at a time: runc deletes it
json.dump(c, open(root + "/floor/config.json", "w"))
c["linux"].pop("seccomp", None)
json.dump(c, open(root + "/floor-noseccomp/config.json", "w"))
PY
    echo "bench: floors: docker --version, the CLI against an instant engine, runc run / create of berth's spec"
    local isock=$ROOT/instant.sock
    python3 scripts/instant-engine.py "$isock" "$(B version --format '{{.Server.APIVersion}}')" 2>>"$ERR" &
    IPID=$!
    for i in $(seq 100); do curl -sf --unix-socket "$isock" http://x/_ping >/dev/null 2>&1 && break; sleep 0.05; done
    for i in $(seq "$N"); do
        floor_sample cli docker --version
        floor_sample cli-run docker -H "unix://$isock" run --rm busybox true
        floor_sample cli-create docker -H "unix://$isock" create busybox true
        floor_sample cli-exec docker -H "unix://$isock" exec x true
        floor_sample cli-rund docker -H "unix://$isock" run -d busybox sleep 3600
        floor_sample runc-run runc --root "$st" run --bundle "$ROOT/floor" "floor$RUNID-r$i"
        floor_sample runc-run-noseccomp runc --root "$st" run --bundle "$ROOT/floor-noseccomp" "floor$RUNID-n$i"
        floor_sample runc-create runc --root "$st" create --bundle "$ROOT/floor" "floor$RUNID-c$i"
        runc --root "$st" delete --force "floor$RUNID-c$i" >/dev/null 2>&1 || true
    done
    kill "$IPID" 2>/dev/null
    wait "$IPID" 2>/dev/null || true
    IPID=
    for i in /sys/fs/cgroup/*/berth-bench-floor /sys/fs/cgroup/berth-bench-floor; do
        [ -d "$i" ] && find "$i" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}

# ---------------------------------------------------------------- quick
# BENCH_ONLY=quick: the lines of issue 17's table that take seconds, not minutes
# (run --rm, run --rm --network none, create, exec) and idle memory.
if want quick; then
echo "bench: quick: run --rm, run --rm --network none, create, exec"
for e in B A; do $e run --rm busybox true >/dev/null; $e run --rm --network none busybox true >/dev/null; done # warm-up
for e in B A; do declare "QEXEC_$e=$($e run -d --label "berth.bench=$RUNID" busybox sleep 3600)"; t=QEXEC_$e; echo "${!t}" >>"$ROOT/ids.$e"; done
for i in $(seq "$N"); do
    for e in $(order "$i"); do
        timeit run "$e" docker run --rm busybox true
        timeit runnone "$e" docker run --rm --network none busybox true
        timeit create "$e" docker create --label "berth.bench=$RUNID" busybox true
        cat "$ROOT/out" >>"$ROOT/ids.$e"
        t=QEXEC_$e; timeit exec "$e" docker exec "${!t}" true
    done
done
floors
for e in B A; do $e rm -f $(cat "$ROOT/ids.$e") >/dev/null 2>&1 || true; : >"$ROOT/ids.$e"; done
fi

# ---------------------------------------------------------------- latency
if want latency; then
echo "bench: run --rm"
for e in B A; do $e run --rm busybox true >/dev/null; done # warm-up
for i in $(seq "$N"); do for e in $(order "$i"); do timeit run "$e" docker run --rm busybox true; done; done
echo "bench: run --rm --network none"
for i in $(seq "$N"); do for e in $(order "$i"); do timeit runnone "$e" docker run --rm --network none busybox true; done; done

echo "bench: create, start -a"
for e in B A; do id=$($e create busybox true); $e rm "$id" >/dev/null; done
for i in $(seq "$N"); do
    for e in $(order "$i"); do
        timeit create "$e" docker create busybox true
        id=$(cat "$ROOT/out"); echo "$id" >>"$ROOT/ids.$e"
        timeit start "$e" docker start -a "$id"
        $e rm "$id" >/dev/null
    done
done

echo "bench: $NCT running containers"
for e in B A; do
    # the whole sequence is one sample: $NCT x `run -d`, as a script that starts them runs it
    t0=${EPOCHREALTIME/./}
    for i in $(seq "$NCT"); do $e run -d --label "berth.bench=$RUNID" busybox sleep 3600 >>"$ROOT/pool.$e"; done
    t1=${EPOCHREALTIME/./}
    echo "$(( (t1 - t0) / 1000 )).$(printf %03d $(( (t1 - t0) % 1000 )))" >>"$ROOT/samples/rund.$e"
    cat "$ROOT/pool.$e" >>"$ROOT/ids.$e"
done
sleep 3 # let the monitors settle (the berth shim trims after start-up bursts)
mapfile -t BSHIMS < <(shim_pids)
mapfile -t ASHIMS < <(anchor_shim_pids "$ROOT/pool.A")
MEM[shim.B.n]=${#BSHIMS[@]}; MEM[shim.A.n]=${#ASHIMS[@]}
MEM[shim.B.pss]=$(sum_pss_kb "${BSHIMS[@]}"); MEM[shim.A.pss]=$(sum_pss_kb "${ASHIMS[@]}")
MEM[shim.B.rss]=$(sum_rss_kb "${BSHIMS[@]}"); MEM[shim.A.rss]=$(sum_rss_kb "${ASHIMS[@]}")
MEM[busy.B.rss]=$(rss_kb "$BPID"); MEM[busy.B.pss]=$(pss_kb "$BPID")
MEM[busy.A.rss]=$(sum_rss_kb "$APID" "$CPID"); MEM[busy.A.pss]=$(sum_pss_kb "$APID" "$CPID")
PSN_B=$(B ps -aq | wc -l); PSN_A=$(A ps -aq | wc -l)

echo "bench: ps -a ($PSN_B / $PSN_A containers), exec"
for e in B A; do $e ps -a >/dev/null; done
for i in $(seq "$N"); do for e in $(order "$i"); do timeit ps "$e" docker ps -a; done; done
for e in B A; do declare "EXEC_$e=$(tail -1 "$ROOT/pool.$e")"; done
for e in B A; do t=EXEC_$e; $e exec "${!t}" true; done
for i in $(seq "$N"); do for e in $(order "$i"); do t=EXEC_$e; timeit exec "$e" docker exec "${!t}" true; done; done

echo "bench: logs of 100000 lines"
for e in B A; do
    id=$($e run -d busybox seq 1 100000); echo "$id" >>"$ROOT/ids.$e"
    [ "$($e wait "$id")" = 0 ] || die "$(name $e): seq container failed"
    n=$($e logs "$id" | wc -l); [ "$n" = 100000 ] || die "$(name $e): logs has $n lines, not 100000"
    declare "LOGS_$e=$id"
done
for i in $(seq "$N"); do for e in $(order "$i"); do t=LOGS_$e; timeit logs "$e" docker logs "${!t}"; done; done

# Log throughput per driver: `docker run` of `seq 1 $LOGLINES` with only stderr attached,
# so stdout goes through the logging driver alone (in dockerd, through dockerd; in berth,
# through the container's monitor). The remote drivers send to sinks on 127.0.0.1 run by
# this script (one python3 process: a UDP socket for syslog and gelf, a TCP listener for
# fluentd; both read and discard).
echo "bench: log throughput per driver ($LOGLINES lines, $LOGN runs each)"
python3 -u -c '
import socket, threading, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen(64)
print(u.getsockname()[1], t.getsockname()[1], flush=True)
def udp():
    while True: u.recv(65536)
def conn(c):
    while c.recv(65536): pass
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = t.accept(); threading.Thread(target=conn, args=(c,), daemon=True).start()
' >"$ROOT/sink.ports" 2>>"$ERR" &
SINKPID=$!
for i in $(seq 50); do [ -s "$ROOT/sink.ports" ] && break; sleep 0.1; done
read -r UDPPORT TCPPORT <"$ROOT/sink.ports" || die "log sinks did not start"
LOGDRIVERS=(json-file local none syslog gelf fluentd)
logopts() {
    case $1 in
    syslog) echo "--log-opt syslog-address=udp://127.0.0.1:$UDPPORT" ;;
    gelf) echo "--log-opt gelf-address=udp://127.0.0.1:$UDPPORT" ;;
    fluentd) echo "--log-opt fluentd-address=127.0.0.1:$TCPPORT" ;;
    esac
}
for drv in "${LOGDRIVERS[@]}"; do
    for e in B A; do $e run --rm -a stderr --log-driver "$drv" $(logopts "$drv") busybox true >/dev/null 2>>"$ERR"; done
    for i in $(seq "$LOGN"); do for e in $(order "$i"); do
        timeit "log-$drv" "$e" docker run --rm -a stderr --label "berth.bench=$RUNID" --log-driver "$drv" $(logopts "$drv") busybox seq 1 "$LOGLINES"
    done; done
done
kill "$SINKPID" 2>/dev/null; SINKPID=

echo "bench: removing the containers"
for e in B A; do $e rm -f $(cat "$ROOT/ids.$e") >/dev/null 2>&1 || true; : >"$ROOT/ids.$e"; done
fi

if want compose; then
echo "bench: compose up -d / down -t 0"
COMPOSE_UP=1
for e in B A; do C "$e" up -d >/dev/null 2>>"$ERR"; C "$e" down -t 0 >/dev/null 2>>"$ERR"; done
for i in $(seq "$N"); do
    for e in $(order "$i"); do
        timeit up "$e" compose up -d
        n=$($e ps -q --filter "label=com.docker.compose.project=$(project "$e")" | wc -l)
        [ "$n" = 3 ] || die "$(name $e): compose up -d left $n running containers, not 3"
        timeit down "$e" compose down -t 0
    done
done
COMPOSE_UP=0
fi

# ---------------------------------------------------------------- build (BuildKit)
# A 3-stage Dockerfile built with every step run (--no-cache: the base image is
# local, nothing else is reused) and then with nothing changed (all cached); the
# context is a fresh copy for each engine, the images are removed at the end.
if want build; then
echo "bench: docker build (BuildKit through buildx): 3 stages, --no-cache and fully cached"
BCTX=$ROOT/build-context
mkdir -p "$BCTX/src"
for i in $(seq 20); do head -c 65536 /dev/urandom >"$BCTX/src/part$i"; done
cat >"$BCTX/Dockerfile" <<'DOCKERFILE'
FROM busybox AS base
RUN echo base >/base && dd if=/dev/zero of=/blob bs=1k count=1024 2>/dev/null
FROM base AS build
COPY src/ /src/
RUN cat /src/* >/out && sha256sum /out >/out.sum
FROM busybox
COPY --from=build /out /out.sum /
CMD ["cat", "/out.sum"]
DOCKERFILE
bt() { local c=$1 e=$2; shift 2; (cd "$BCTX" && timeit "$c" "$e" docker build "$@" --label "berth.bench=$RUNID" -t "berth-bench-build:$RUNID" .); }
for e in B A; do bt warm "$e" --no-cache; done
for i in $(seq "$N"); do for e in $(order "$i"); do bt bcold "$e" --no-cache; done; done
for i in $(seq "$N"); do for e in $(order "$i"); do bt bcached "$e"; done; done
for e in B A; do
    [ "$($e run --rm "berth-bench-build:$RUNID" | wc -l)" = 1 ] || die "$(name $e): the built image does not run"
    $e rmi "berth-bench-build:$RUNID" >/dev/null 2>&1 || true
    $e image prune -f --filter "label=berth.bench=$RUNID" >/dev/null 2>&1 || true
done
# BuildKit is in dockerd's process and in berth-buildkitd: count both sides whole
BKPIDS=$(buildkitd_pids)
[ -n "$BKPIDS" ] || die "no berth-buildkitd after the builds"
MEM[build.B.rss]=$(sum_rss_kb "$BPID" $BKPIDS); MEM[build.A.rss]=$(sum_rss_kb "$APID" "$CPID")
MEM[build.Bd.rss]=$(rss_kb "$BPID"); MEM[build.Bk.rss]=$(sum_rss_kb $BKPIDS)
fi

# ---------------------------------------------------------------- report
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
table() {
    local c label target mb ma pb pa
    printf '| command (median / p90 of %s, ms) | berth | dockerd | berth/dockerd | target |\n' "$N"
    printf '|---|---:|---:|---:|---|\n'
    while IFS='|' read -r c label target; do
        [ -s "$ROOT/samples/$c.B" ] || continue
        read -r mb pb < <(stats "$ROOT/samples/$c.B")
        read -r ma pa < <(stats "$ROOT/samples/$c.A")
        printf '| %s | %s / %s | %s / %s | %s | %s |\n' "$label" "$mb" "$pb" "$ma" "$pa" \
            "$(awk -v b="$mb" -v a="$ma" 'BEGIN {printf "%.2fx", b/a}')" "$target"
    done <<EOF
run|\`docker run --rm busybox true\`|<= 0.25x
runnone|\`docker run --rm --network none busybox true\`|<= 0.25x
create|\`docker create busybox true\`|<= 0.6x
start|\`docker start -a <created>\`|
rund|$NCT x \`docker run -d\`, sequential (one sample: the whole sequence)|<= 0.25x
ps|\`docker ps -a\` (${PSN_B:-} / ${PSN_A:-} containers)|
exec|\`docker exec <running> true\`|<= 0.3x
logs|\`docker logs\` (100000 lines)|
log-json-file|\`docker run\` of $LOGLINES lines, json-file (of $LOGN)|
log-local|\`docker run\` of $LOGLINES lines, local (of $LOGN)|
log-none|\`docker run\` of $LOGLINES lines, none (of $LOGN)|
log-syslog|\`docker run\` of $LOGLINES lines, syslog to udp (of $LOGN)|
log-gelf|\`docker run\` of $LOGLINES lines, gelf to udp (of $LOGN)|
log-fluentd|\`docker run\` of $LOGLINES lines, fluentd to tcp (of $LOGN)|
up|compose \`up -d\` (compose-bench, 3 services)|<= 0.2x
down|compose \`down -t 0\`|<= 0.25x
bcold|\`docker build --no-cache\` (3 stages, BuildKit)|<= 1.2x
bcached|\`docker build\`, all cached (3 stages, BuildKit)|<= 1.0x
EOF
    echo
    printf '| memory (MB) | berth | dockerd | berth/dockerd | target |\n'
    printf '|---|---:|---:|---:|---|\n'
    local sb=$(( MEM[shim.B.pss] / (MEM[shim.B.n] > 0 ? MEM[shim.B.n] : 1) ))
    local sa=$(( MEM[shim.A.pss] / (MEM[shim.A.n] > 0 ? MEM[shim.A.n] : 1) ))
    row() { printf '| %s | %s | %s | %s | %s |\n' "$1" "$(mb "$2")" "$(mb "$3")" "$(awk -v b="$2" -v a="$3" 'BEGIN {printf "%.2fx", a ? b/a : 0}')" "$4"; }
    if want latency; then
    row "monitor PSS per container ($NCT running; ${MEM[shim.B.n]} berth-shim / ${MEM[shim.A.n]} containerd-shim-runc-v2)" "$sb" "$sa" "<= 0.3 MB"
    row "monitor RSS per container" $(( MEM[shim.B.rss] / (MEM[shim.B.n] > 0 ? MEM[shim.B.n] : 1) )) $(( MEM[shim.A.rss] / (MEM[shim.A.n] > 0 ? MEM[shim.A.n] : 1) )) ""
    row "all monitors PSS ($NCT running)" "${MEM[shim.B.pss]}" "${MEM[shim.A.pss]}" ""
    fi
    row "daemon PSS idle (berthd vs dockerd+containerd)" "${MEM[idle.B.pss]}" "${MEM[idle.A.pss]}" ""
    row "daemon RSS idle" "${MEM[idle.B.rss]}" "${MEM[idle.A.rss]}" ""
    if want latency; then
    row "daemon PSS with $NCT running" "${MEM[busy.B.pss]}" "${MEM[busy.A.pss]}" ""
    row "daemon RSS with $NCT running" "${MEM[busy.B.rss]}" "${MEM[busy.A.rss]}" ""
    fi
    if want build; then
    row "daemon RSS after the builds (BuildKit started; berthd $(mb "${MEM[build.Bd.rss]}") + berth-buildkitd $(mb "${MEM[build.Bk.rss]}") vs dockerd + containerd)" "${MEM[build.B.rss]}" "${MEM[build.A.rss]}" ""
    fi
}
# floor_table: the floors' medians, and the quick lines' targets in ms next to the
# floor they stand on.
floor_table() {
    [ -s "$ROOT/samples/floor-cli" ] || return 0
    local cli crun ccreate cexec rc run create exec x
    med() { stats "$ROOT/samples/$1" | cut -d' ' -f1; }
    cli=$(med floor-cli) rc=$(med floor-runc-create)
    crun=$(med floor-cli-run) ccreate=$(med floor-cli-create) cexec=$(med floor-cli-exec)
    echo
    printf '| floor (median / p90 of %s, ms) | |\n|---|---:|\n' "$N"
    for x in "cli|the docker CLI's start: \`docker --version\` (no request)" \
        "cli-run|the CLI's \`run --rm busybox true\` against an engine that answers at once" \
        "cli-create|the CLI's \`create busybox true\` against it" \
        "cli-exec|the CLI's \`exec <ctr> true\` against it" \
        "cli-rund|the CLI's \`run -d busybox sleep 3600\` against it" \
        "runc-run|\`runc run\` of berth's spec (\`true\`: create, start, wait, delete)" \
        "runc-run-noseccomp|the same without seccomp" \
        "runc-create|\`runc create\` of berth's spec"; do
        printf '| %s | %s |\n' "${x#*|}" "$(stats "$ROOT/samples/floor-${x%%|*}" | sed 's# # / #')"
    done
    run=$(med run.A) create=$(med create.A) exec=$(med exec.A)
    echo
    printf '| line | target (ms) | floor (ms) |\n|---|---:|---:|\n'
    awk -v t="$run" -v c="$crun" -v r="$rc" 'BEGIN {printf "| `run --rm` <= 0.25x | %.1f | %.1f (the CLI against an instant engine + runc create) |\n", 0.25*t, c+r}'
    awk -v t="$create" -v c="$ccreate" 'BEGIN {printf "| `create` <= 0.6x | %.1f | %.1f (the CLI against an instant engine) |\n", 0.6*t, c}'
    awk -v t="$exec" -v c="$cexec" 'BEGIN {printf "| `exec` <= 0.3x | %.1f | %.1f (the CLI against an instant engine) |\n", 0.3*t, c}'
    # the latency part's one sample of the whole sequence, per run
    if [ -s "$ROOT/samples/rund.A" ]; then
        awk -v t="$(med rund.A)" -v n="$NCT" -v c="$(med floor-cli-rund)" -v r="$rc" 'BEGIN {printf "| %d x `run -d` <= 0.25x, per run | %.1f | %.1f (the CLI against an instant engine + runc create) |\n", n, 0.25*t/n, c+r}'
    fi
}

echo
echo "berth $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- . 2>/dev/null || echo ' (+ uncommitted changes in the tree)'), dockerd $(A version --format '{{.Server.Version}}'), docker CLI $(docker version --format '{{.Client.Version}}' 2>/dev/null), compose $("$REPO/bin/docker-compose" version --short)"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), load average at the end $LOAD"
echo
{ table; floor_table; } | tee "$ROOT/table.md"
[ -n "${BENCH_MD:-}" ] && cp "$ROOT/table.md" "$BENCH_MD"
echo
echo "samples (ms) are in each engine's order of the run; berthd log kept at $KEEPLOG"
if [ "${BENCH_SAMPLES:-0}" = 1 ]; then
    for f in "$ROOT"/samples/*; do echo "$(basename "$f"): $(tr '\n' ' ' <"$f")"; done
fi
