#!/bin/bash
# make bench-timeline: `docker run --rm busybox true` seen from outside berthd, as the
# processes it is made of (the CLI, the monitor, runc, runc's init, the container's
# process). Each run is recorded with the kernel's process events (perf's
# sched_process_exec/_exit tracepoints, system-wide) and cut at the moments any engine
# driven by this CLI and this runc passes through; this prints the median of each
# interval over TIMELINE_N runs. Where `make bench-phases` times berthd's own steps, this
# shows what runc and the CLI cost around them (docs/benchmarks.md "The start seen as
# processes"). Needs perf (Debian: linux-perf). Env: TIMELINE_N=15, TIMELINE_NET=bridge
source "$(dirname "$0")/bench-lib.sh"
N=${TIMELINE_N:-15}
NET=${TIMELINE_NET:-bridge}
command -v perf >/dev/null || die "bench-timeline needs perf (apt-get install linux-perf)"
ERR=$ROOT/timeline.err
start_berthd
B load -i "$IMAGE_TAR" >/dev/null
B tag "$(B images -q | head -1)" busybox:latest 2>/dev/null || true
for i in 1 2 3; do B run --rm --network "$NET" busybox true >/dev/null; done
mkdir -p "$ROOT/timeline"
for i in $(seq "$N"); do
    perf record -q -a -o "$ROOT/timeline/$i.data" -e sched:sched_process_exec -e sched:sched_process_exit -- \
        docker -H "unix://$BSOCK" run --rm --network "$NET" busybox true >/dev/null 2>>"$ERR" || die "run $i failed"
    perf script -i "$ROOT/timeline/$i.data" -F pid,time,event,trace >"$ROOT/timeline/$i.txt" 2>>"$ERR"
done
echo "berth $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== docker run --rm --network $NET busybox true, as processes (median of $N, ms)"
python3 - "$ROOT/timeline" "$N" <<'PY'
import os, re, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
# the moments, in the order a run passes them
marks = [
    ("cli", "the CLI's process starts"),
    ("shim", "berthd starts the monitor (the start request has begun)"),
    ("runc", "the monitor runs `runc create`"),
    ("init", "runc starts its init (`runc init`)"),
    ("created", "`runc create` exits: the container is created"),
    ("exec", "the container's process runs (`true` is exec'd)"),
    ("exit", "the container's process exits"),
    ("shimexit", "the monitor exits (exit told, runc's state deleted)"),
    ("done", "the CLI exits (the removal answered)"),
]
rows = {k: [] for k, _ in marks}
for i in range(1, n + 1):
    ev = []
    for line in open(os.path.join(d, "%d.txt" % i)):
        m = re.match(r"\s*(\d+)\s+([\d.]+):\s+sched:(\w+):\s+(.*)", line)
        if m:
            ev.append((int(m.group(1)), float(m.group(2)) * 1000, m.group(3), m.group(4)))
    t, pids = {}, {}
    for pid, ts, name, trace in ev:
        if name == "sched_process_exec":
            fn = re.search(r"filename=(\S+)", trace).group(1)
            base = os.path.basename(fn)
            if base == "docker" and "cli" not in t:
                t["cli"], pids["cli"] = ts, pid
            elif base == "berth-shim" and "shim" not in t:
                t["shim"], pids["shim"] = ts, pid
            elif base == "runc" and "runc" not in t and "shim" in t:
                t["runc"], pids["runc"] = ts, pid
            elif fn == "/proc/self/exe" and "init" not in t and "runc" in t:
                t["init"] = ts
            elif fn == "/bin/true" and "exec" not in t:
                t["exec"], pids["exec"] = ts, pid
        elif name == "sched_process_exit" and "group_dead=true" in trace:
            for k, mark in (("runc", "created"), ("exec", "exit"), ("shim", "shimexit"), ("cli", "done")):
                if pids.get(k) == pid and mark not in t:
                    t[mark] = ts
    missing = [k for k, _ in marks if k not in t]
    if missing:
        print("run %d: no %s seen; skipped" % (i, ", ".join(missing)))
        continue
    for k, _ in marks:
        rows[k].append(t[k] - t["cli"])
prev = None
for k, what in marks:
    v = rows[k]
    if not v:
        sys.exit("no complete run")
    at = statistics.median(v)
    step = "" if prev is None else "%7.1f" % statistics.median([a - b for a, b in zip(v, rows[prev])])
    print("%8.1f  %7s  %s" % (at, step, what))
    prev = k
print("(first column: median time since the CLI's start; second: median of the step that ends there)")
PY
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
