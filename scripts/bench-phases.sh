#!/bin/bash
# make bench-phases: where berthd's time goes in `docker run --rm busybox true` (and in
# --network none, create and exec). A private berthd runs with --debug, which logs one
# "phase" line per step a container takes in another subsystem (cmd/berthd/phasetrace.go)
# and one line per API request; this prints the median of each over PHASES_N runs.
# Env: PHASES_N=20
source "$(dirname "$0")/bench-lib.sh"
N=${PHASES_N:-20}
start_berthd --debug
B load -i "$IMAGE_TAR" >/dev/null
B tag "$(B images -q | head -1)" busybox:latest 2>/dev/null || true
B run --rm busybox true
LOG=$ROOT/berthd.log
summary() { # $1: title, $2: first log line of the series
    echo "== $1 (median of $N, ms)"
    tail -n +"$2" "$LOG" | awk '
    /msg=phase/ { p=""; d="";
        if (match($0, /phase="[^"]*"/)) p=substr($0, RSTART+7, RLENGTH-8); else if (match($0, /phase=[^ ]*/)) p=substr($0, RSTART+6, RLENGTH-6);
        if (match($0, / ms=[^ ]*/)) d=substr($0, RSTART+4, RLENGTH-4);
        g=""; if (match($0, /gap_ms=[^ ]*/)) g=substr($0, RSTART+7, RLENGTH-7);
        print "phase\t" p "\t" d; if (g != "") print "gap before\t" p "\t" g }
    /msg="(GET|POST|DELETE|HEAD|PUT) / { if (match($0, /msg="[A-Z]+ [^ ]* -> [0-9]+ \([^)]*\)/)) { r=substr($0, RSTART+5, RLENGTH-5);
        split(r, f, " "); u=f[2]; sub(/\?.*/, "", u);
        d=f[5]; gsub(/[()]/, "", d); print "request\t" f[1] " " u "\t" d } }' |
    python3 -c '
import sys, statistics, re
def ms(s):
    s = s.strip("\"")
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", s)
    if not m: return None
    v = float(m.group(1)); return v * {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1, "s": 1000}[m.group(2)]
rows = {}
order = []
for line in sys.stdin:
    k, name, d = line.rstrip("\n").split("\t")
    name = re.sub(r"/v1\.[0-9]+", "", re.sub(r"[0-9a-f]{64}|[0-9a-f]{12}\b", "<id>", name))
    if k == "gap before" and name in ("exec launch", "wait for exit", "monitor close"): continue
    v = ms(d)
    if v is None: continue
    key = (k, name)
    if key not in rows: rows[key] = []; order.append(key)
    rows[key].append(v)
for key in order:
    v = rows[key]
    print("%-12s %-40s %8.2f  (n=%d)" % (key[0], key[1], statistics.median(v), len(v)))
'
}
series() { # title, command...
    local title=$1 start i t=()
    shift
    start=$(( $(wc -l <"$LOG") + 1 ))
    for i in $(seq "$N"); do t+=("$(ms_of "$@")"); done
    summary "$title" "$start"
    printf '%s\n' "${t[@]}" | sort -n | awk -v t="$title" '{v[NR]=$1} END {printf "whole CLI command %s: median %.1f ms\n\n", t, NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}
echo "berth $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
series "run --rm busybox true" B run --rm busybox true
series "run --rm --network none busybox true" B run --rm --network none busybox true
ID=$(B run -d busybox sleep 3600)
series "exec <running> true" B exec "$ID" true
B rm -f "$ID" >/dev/null
start=$(( $(wc -l <"$LOG") + 1 ))
t=(); ids=()
for i in $(seq "$N"); do t0=${EPOCHREALTIME/./}; ids+=("$(B create busybox true)"); t1=${EPOCHREALTIME/./}; t+=("$(( (t1 - t0) / 1000 ))"); done
summary "create busybox true" "$start"
printf '%s\n' "${t[@]}" | sort -n | awk '{v[NR]=$1} END {printf "whole CLI command create: median %.1f ms\n", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
B rm "${ids[@]}" >/dev/null
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
