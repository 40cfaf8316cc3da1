#!/bin/bash
# make demo: start berthd on a private socket and data root, drive it with the
# real docker CLI, show what it does, and clean everything up again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(mktemp -d /tmp/berth-demo.XXXXXX)
SOCK=$ROOT/docker.sock
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$ROOT/docker-config DOCKER_CLI_HINTS=false
PID=
cleanup() {
    set +e
    if [ -n "$PID" ]; then
        ids=$(docker ps -aq 2>/dev/null); [ -n "$ids" ] && docker rm -fv $ids >/dev/null 2>&1
        kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null
    fi
    grep " $ROOT" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$ROOT"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

./bin/berthd -H "unix://$SOCK" --data-root "$ROOT/data" --exec-root "$ROOT/run" >"$ROOT/berthd.log" 2>&1 &
PID=$!
for i in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done

step docker version
step docker info --format 'Server {{.ServerVersion}}, driver {{.Driver}}, {{.NCPU}} CPUs, root {{.DockerRootDir}}'
echo
echo "demo done; berthd log: $(wc -l <"$ROOT/berthd.log") lines"
