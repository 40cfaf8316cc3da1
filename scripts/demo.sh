#!/bin/bash
# make demo: the two-deployment DNS story with the real docker compose, then
# berth's service manager (scale, a replica restored, drift, jobs).
# Two compose projects, shop and blog, each with a db, both joined to one
# external network where both dbs carry the alias "db". Docker answers "db"
# with either; berth answers each web with its own deployment's db, and every
# deployment also has names in the daemon zone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(mktemp -d /tmp/berth-demo.XXXXXX)
SOCK=$ROOT/docker.sock
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$ROOT/docker-config DOCKER_CLI_HINTS=false
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$PWD/bin/docker-compose" "$DOCKER_CONFIG/cli-plugins/docker-compose"
PID=
cleanup() {
    set +e
    if [ -n "$PID" ]; then
        ids=$(docker ps -aq 2>/dev/null); [ -n "$ids" ] && docker rm -fv $ids >/dev/null 2>&1
        docker network prune -f >/dev/null 2>&1
        kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null
    fi
    grep " $ROOT" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$ROOT"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
addrs() { docker exec "$1" nslookup "$2" 2>/dev/null | awk '/^Name:/{a=1} a && /^Address/{print $2}' | sort | tr '\n' ' '; }

# A network slot of its own (the tests' scheme, internal/testenv/netslot.go),
# so the demo runs beside test daemons or a berthd on the default bridge.
mkdir -p /run/berth-test-pools
for n in $(seq 63 -1 48); do
    exec 9>"/run/berth-test-pools/$n.lock"
    flock -n 9 && break
done
BLOCK="10.$((216 + n / 16)).$(((n % 16) * 16))"
./bin/berthd -H "unix://$SOCK" --data-root "$ROOT/data" --exec-root "$ROOT/run" \
    --bridge "bt$n" --bip "$BLOCK.1/24" --default-address-pool "base=$BLOCK.0/20,size=24" --dns 127.0.0.1 \
    >"$ROOT/berthd.log" 2>&1 &
PID=$!
for i in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker version >/dev/null 2>&1 || { tail -5 "$ROOT/berthd.log"; exit 1; }
docker load -q -i testdata/images/busybox.tar >/dev/null

step docker network create berth-shared
step docker compose -f testdata/compose/shop/compose.yaml up -d --wait
step docker compose -f testdata/compose/blog/compose.yaml up -d --wait
step docker compose ls

echo
echo "shop's db: $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' named-db)"
echo "blog's db: $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' blog-db-1)"
for web in shop-web-1 blog-web-1; do
    declare -A seen=()
    for i in $(seq 20); do seen["$(addrs $web db)"]=1; done
    printf '%s asks "db" 20 times, gets: %s\n' "$web" "${!seen[*]}"
    unset seen
done
echo
echo "shop's web has dns: [127.0.0.1] in its compose file; its resolv.conf still names berth's server:"
docker exec shop-web-1 cat /etc/resolv.conf | sed 's/^/    /'
echo "and berth forwards only what it does not know to that resolver (inspect keeps it: $(docker inspect -f '{{json .HostConfig.Dns}}' shop-web-1))"
printf 'shop-web-1 asks db.blog.berth.internal: %s\n' "$(addrs shop-web-1 db.blog.berth.internal)"
printf 'blog-web-1 asks 2.worker.shop.berth.internal: %s (shop-worker-2 is %s)\n' \
    "$(addrs blog-web-1 2.worker.shop.berth.internal)" "$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' shop-worker-2)"

step docker exec shop_db_1 hostname
step docker logs --tail 1 shop-db-1
step docker exec db true || true
step docker compose -f testdata/compose/blog/compose.yaml down
step docker exec db hostname
step docker compose -f testdata/compose/shop/compose.yaml down

# The service manager: a deployment berth keeps (its record: the model,
# the desired replicas, the image each service runs), scaled, kept true
# behind its back, redeployed on a moved image, and its jobs.
berth() { ./bin/berth "$@"; }
step berth compose -f testdata/compose/fleet/compose.yaml up
step berth compose scale -p fleet worker=3
printf 'fleet-web-1 asks 3.worker.fleet.berth.internal: %s (fleet-worker-3 is %s)\n' \
    "$(addrs fleet-web-1 3.worker.fleet.berth.internal)" "$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' fleet-worker-3)"
step docker rm -f fleet-worker-2
for i in $(seq 100); do [ "$(docker inspect -f '{{.State.Running}}' fleet-worker-2 2>/dev/null)" = true ] && break; sleep 0.1; done
echo "berth put it back from the deployment's record:"
step berth compose ps -p fleet
step berth compose logs -p fleet --tail 1 worker
echo
echo "drift: busybox:latest moves to a new image (built here; a pull does the same)"
printf 'FROM busybox:latest\nRUN echo v2 > /version\n' | DOCKER_BUILDKIT=0 docker build -q -t busybox:latest - >/dev/null 2>&1
step berth compose up -p fleet
step docker exec fleet-worker-3 cat /version
step berth compose run-job -p fleet migrate
sleep 6
step berth compose jobs -p fleet --logs
step berth compose ls
step berth compose down -p fleet
echo
echo "demo done; berthd log: $(wc -l <"$ROOT/berthd.log") lines"
