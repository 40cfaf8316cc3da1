#!/bin/bash
# Builds the test control plane of the Kubernetes backend from the Go module
# proxy (tools/kube: kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd; tools/kube/kwok: kwok) into a cache directory outside the checkout,
# keyed by the tools modules' go.sum, and reuses it. Prints the directory.
# kwok's binary has no stages of its own (kwokctl embeds them): the ones
# kwokctl uses by default (node-initialize, node-heartbeat-with-lease,
# pod-ready, pod-complete, pod-delete) are copied from the kwok module into
# <dir>/stages for `make e2e-kube`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolcache.sh
key=$(cat tools/kube/go.mod tools/kube/go.sum tools/kube/etcd/main.go tools/kube/kwok/go.mod tools/kube/kwok/go.sum | sha256sum | cut -c1-16)
base=${KUBE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kube-tools}
dir=$base/$key
bins=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
# stages DIR: kwok's default stages from its module into DIR/stages
stages() {
	local k
	k=$(cd tools/kube/kwok && GOFLAGS=-buildvcs=false go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	mkdir -p "$1/stages"
	cp "$k/kustomize/stage/node/fast/node-initialize.yaml" \
		"$k/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
		"$k"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml "$1/stages/"
	chmod u+w "$1"/stages/*.yaml
}
if tool_cached "$dir" "${bins[@]}"; then
	[ -f "$dir/stages/pod-ready.yaml" ] || stages "$dir"
	echo "$dir"
	exit 0
fi
build() {
	(cd tools/kube && go build -trimpath -ldflags='-s -w' -o "$1/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler ./etcd)
	(cd tools/kube/kwok && go build -trimpath -ldflags='-s -w' -o "$1/" sigs.k8s.io/kwok/cmd/kwok)
	stages "$1"
}
tool_build "kube-tools (${bins[*]})" "$dir" build
echo "$dir"
