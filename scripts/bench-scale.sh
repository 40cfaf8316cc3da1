#!/bin/bash
# make bench-scale: berthd with SCALE_N running containers (default 1000). Times `ps -a`,
# `inspect` and a DNS lookup by name at 10 and at N containers, the start of N with
# `run -d`, a berthd restart after SIGKILL with N running (until /_ping answers, until
# all N are listed running, and a stop + start of the last one), `rm -f` of all, and
# berthd's RSS idle / with N / after the removal, then counts what is left on the host
# (mounts under the data root, veths on the bridge, cgroups under the bench's cgroup
# parent, monitors of its exec root). Not part of make test.
# Env: SCALE_N=1000  SCALE_K=5 (samples per timed command, median)
source "$(dirname "$0")/bench-lib.sh"
N=${SCALE_N:-1000}
K=${SCALE_K:-5}
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 20 ] && [ "$N" -le 2000 ] || die "SCALE_N must be 20..2000 (the bench network is a /21)"
echo "berth $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), N=$N"
[ "${SCALE_DEBUG:-0}" = 1 ] && BERTHD_ARGS+=(--debug)
start_berthd
B load -i "$IMAGE_TAR" >/dev/null
B tag "$(B images -q | head -1)" busybox:latest 2>/dev/null || true
B network create --subnet 10.222.32.0/21 scale >/dev/null
sleep 2
IDLE_RSS=$(rss_kb "$BPID") IDLE_PARTS=$(rss_parts "$BPID")
grep " $ROOT" /proc/self/mountinfo | awk '{print $5}' | grep -vx "$EXECROOT/netns" | sort >"$ROOT/mounts.0"
M0=$(count_mounts); V0=$(count_veths); C0=$(count_cgroups); S0=$(count_shims)

API=$(curl -sf --unix-socket "$BSOCK" http://x/version | python3 -c 'import json, sys; print(json.load(sys.stdin)["ApiVersion"])')
REPLAY_PID=
# replay_ps: `docker ps -a` against scripts/instant-engine.py serving berthd's answer of
# now: the CLI's own share of the `ps -a` figure (its floor)
replay_ps() {
    local body=$ROOT/ps.json rsock=$ROOT/replay.sock t i
    curl -sf --unix-socket "$BSOCK" "http://x/v$API/containers/json?all=1" -o "$body"
    python3 scripts/instant-engine.py "$rsock" "$API" "$body" &
    REPLAY_PID=$!
    for i in $(seq 100); do curl -sf --unix-socket "$rsock" http://x/_ping >/dev/null 2>&1 && break; sleep 0.05; done
    t=$(median_of "$K" docker -H "unix://$rsock" ps -a)
    kill "$REPLAY_PID"; wait "$REPLAY_PID" 2>/dev/null || true
    REPLAY_PID=
    echo "$t"
}
runone() { B run -d --network scale --name "s$1" busybox sleep 36000 >/dev/null; }
measure() { # label
    local ps ins dns api rp
    ps=$(median_of "$K" B ps -a)
    # berthd's answer alone (curl), and the CLI alone on a replay of it
    api=$(median_of "$K" curl -sf --unix-socket "$BSOCK" -o /dev/null "http://x/v$API/containers/json?all=1")
    rp=$(replay_ps)
    ins=$(median_of "$K" B inspect s1)
    dns=$(median_of "$K" B exec s1 nslookup s2)
    # the exec alone, to take out of the DNS figure
    ex=$(median_of "$K" B exec s1 true)
    echo "$1|$ps|$ins|$dns|$ex|$api|$rp"
}
t0=$(now_ms)
for i in $(seq 10); do runone "$i"; done
AT10=$(measure 10)
for i in $(seq 11 "$N"); do
    runone "$i"
    [ $(( i % 100 )) = 0 ] && echo "bench: $i running ($(( ($(now_ms) - t0) / i )) ms per run -d so far)" >&2
done
RUN_MS=$(( ($(now_ms) - t0) / N ))
sleep 3
N_RSS=$(rss_kb "$BPID")
SHIMS=$(count_shims)
ATN=$(measure "$N")

# restart after SIGKILL with N running
kill -KILL "$BPID"; wait "$BPID" 2>/dev/null || true
LOGLINE=$(( $(wc -l <"$ROOT/berthd.log") + 1 ))
t0=$(now_ms)
start_berthd
PING_MS=$(( $(now_ms) - t0 ))
# an operation on the last container, sent once the API answers: it waits
# for that container's restore (the restore runs while the API is served)
B exec "s$N" true && FIRSTOP_MS="$(( $(now_ms) - t0 )) ms" || FIRSTOP_MS="exec failed"
for i in $(seq 600); do
    n=$(B ps -q --filter status=running 2>/dev/null | wc -l)
    [ "$n" = "$N" ] && break
    sleep 0.1
done
ALL_MS=$(( $(now_ms) - t0 ))
for i in $(seq 1200); do
    tail -n +"$LOGLINE" "$ROOT/berthd.log" | grep -q 'msg="restore phase over' && break
    sleep 0.1
done
PHASE_MS=$(( $(now_ms) - t0 ))
RESTORE_LINE=$(tail -n +"$LOGLINE" "$ROOT/berthd.log" | grep -o 'restored [0-9]* containers in [^:]*' | head -1)
RESTORED=$n
MANAGE=ok
B exec "s$N" true || MANAGE="exec failed"
B stop -t 1 "s$N" >/dev/null && B start "s$N" >/dev/null || MANAGE="stop/start failed"
B exec s1 nslookup "s$N" >/dev/null 2>&1 || MANAGE="$MANAGE; DNS of s$N failed"
sleep 3
RESTART_RSS=$(rss_kb "$BPID")

t0=$(now_ms)
B rm -f $(B ps -aq) >/dev/null
RM_MS=$(( $(now_ms) - t0 ))
sleep 5
AFTER_RSS=$(rss_kb "$BPID") AFTER_PARTS=$(rss_parts "$BPID")
grep " $ROOT" /proc/self/mountinfo | awk '{print $5}' | grep -vx "$EXECROOT/netns" | sort >"$ROOT/mounts.1"
M1=$(count_mounts); V1=$(count_veths); C1=$(count_cgroups); S1=$(count_shims)

echo
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| measure (median of $K, ms) | 10 containers | $N containers | ratio |"
echo "|---|---:|---:|---:|"
IFS='|' read -r _ ps10 in10 dn10 ex10 api10 rp10 <<<"$AT10"
IFS='|' read -r _ psN inN dnN exN apiN rpN <<<"$ATN"
row() { echo "| $1 | $2 | $3 | $(awk -v a="$2" -v b="$3" 'BEGIN {printf "%.2fx", (a > 0) ? b/a : 0}') |"; }
row '`docker ps -a`' "$ps10" "$psN"
row '... berthd alone: `GET /containers/json?all=1` (curl)' "$api10" "$apiN"
row '... the CLI alone: `docker ps -a` against a replay of that answer' "$rp10" "$rpN"
row '`docker inspect s1`' "$in10" "$inN"
row '`docker exec s1 nslookup s2` (DNS by name on a user network)' "$dn10" "$dnN"
row '`docker exec s1 true` (the exec alone)' "$ex10" "$exN"
echo
echo "| measure | value |"
echo "|---|---:|"
echo "| \`run -d\` of $N, mean per container | $RUN_MS ms |"
echo "| berthd restart after SIGKILL with $N running: API answers (/_ping) | $PING_MS ms |"
echo "| ... all $N listed running | $ALL_MS ms ($RESTORED restored) |"
echo "| ... \`exec s$N true\` sent at /_ping returned | $FIRSTOP_MS |"
echo "| ... restore phase over (seen in the log, polled every 0.1 s) | $PHASE_MS ms ($RESTORE_LINE) |"
echo "| after the restart: exec, stop + start, DNS of the last container | $MANAGE |"
echo "| \`rm -f\` of all $N | $RM_MS ms |"
echo "| berthd RSS idle / with $N / after restart with $N / after rm -f of all | $(( IDLE_RSS / 1024 )) / $(( N_RSS / 1024 )) / $(( RESTART_RSS / 1024 )) / $(( AFTER_RSS / 1024 )) MB |"
echo "| berthd RSS anonymous / file-backed: idle / after rm -f of all | $IDLE_PARTS / $AFTER_PARTS MB |"
echo "| RSS after rm -f vs idle | $(awk -v a="$IDLE_RSS" -v b="$AFTER_RSS" 'BEGIN {printf "%+.0f%%", (b-a)*100/a}') |"
echo "| monitors running with $N | $SHIMS |"
comm -13 "$ROOT/mounts.0" "$ROOT/mounts.1" | sed 's/^/new mount after rm -f: /' >&2
echo "| left after rm -f (before → after): mounts, veths, cgroups, monitors | $M0→$M1, $V0→$V1, $C0→$C1, $S0→$S1 |"
