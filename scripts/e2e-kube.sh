#!/bin/bash
# make e2e-kube: berthd's Kubernetes backend against a real control plane.
# Builds (or reuses) the control plane with make kube-tools, CoreDNS with
# scripts/coredns.sh, bin/berthd-kube and bin/docker-compose, then runs
# integration/kubee2e (build tag berth_kube_e2e): etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok on loopback with certificates made by the test,
# berthd-kube on a temp socket, the docker CLI and docker compose against it,
# and CoreDNS with berth's zone rewrite (kube/dnsrewrite) on a loopback port.
# Every process the test starts is stopped by its PID and its temp dir
# removed, pass or fail. docs/kubernetes.md, "make e2e-kube".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$(./scripts/kube-tools.sh)
coredns=$(./scripts/coredns.sh)/coredns
# berthd-kube again when a Go file of berth's (not the tools', not the tests') is newer
[ -x bin/berthd-kube ] && [ -z "$(find . -name '*.go' -newer bin/berthd-kube -not -path './tools/*' -not -path './integration/*' -not -name '*_test.go' -print -quit)" ] || make berthd-kube
[ -x bin/docker-compose ] || make compose
make berth
export KUBE_TOOLS=$tools COREDNS=$coredns BERTHD_KUBE=$root/bin/berthd-kube COMPOSE=$root/bin/docker-compose BERTH=$root/bin/berth
export DOCKER=${DOCKER:-$(command -v docker || echo /usr/local/bin/docker)}
start=$(date +%s)
go test -tags=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,berth_kube_e2e \
	-count=1 -timeout 20m -v ${E2E_KUBE_RUN:+-run "$E2E_KUBE_RUN"} ./integration/kubee2e/
echo "e2e-kube: $(($(date +%s) - start))s (go test, build included)" >&2
