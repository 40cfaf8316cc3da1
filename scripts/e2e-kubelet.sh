#!/bin/bash
# make e2e-kubelet: the Kubernetes backend's data path with real containers.
# The control plane of make e2e-kube plus one real node: a kubelet (built by
# scripts/kubelet-tool.sh) on Debian's containerd (CRI plugin, a private
# instance) with runc and Debian's containernetworking-plugins, and CoreDNS
# (scripts/coredns.sh) with berth's zone rewrite as the cluster DNS. Opt-in, not
# part of make test or CI: it changes host state while it runs (a bridge,
# cgroups, the kubelet's iptables chains and kernel settings), all put back
# when the test ends. integration/kubee2e/kubelet_test.go;
# docs/kubernetes.md, "Real pods: make e2e-kubelet".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
for t in containerd ctr runc iptables; do
	command -v "$t" >/dev/null || { echo "e2e-kubelet: $t not found: apt-get install -y containerd runc iptables" >&2; exit 1; }
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || { echo "e2e-kubelet: CNI plugins not found: apt-get install -y containernetworking-plugins" >&2; exit 1; }
tools=$(./scripts/kube-tools.sh)
kubelet=$(./scripts/kubelet-tool.sh)
coredns=$(./scripts/coredns.sh)/coredns
[ -x bin/berthd-kube ] && [ -z "$(find . -name '*.go' -newer bin/berthd-kube -not -path './tools/*' -not -path './integration/*' -not -name '*_test.go' -print -quit)" ] || make berthd-kube
[ -x bin/docker-compose ] || make compose
export KUBE_TOOLS=$tools KUBELET=$kubelet COREDNS=$coredns BERTHD_KUBE=$root/bin/berthd-kube COMPOSE=$root/bin/docker-compose
export DOCKER=${DOCKER:-$(command -v docker || echo /usr/local/bin/docker)}
start=$(date +%s)
go test -tags=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,berth_kube_e2e,berth_kubelet_e2e \
	-count=1 -timeout 20m -v -run "${E2E_KUBELET_RUN:-TestKubelet}" ./integration/kubee2e/
echo "e2e-kubelet: $(($(date +%s) - start))s (go test, build included)" >&2
