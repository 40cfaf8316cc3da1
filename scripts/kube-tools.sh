#!/bin/bash
# Builds the test control plane of the Kubernetes backend from the Go module
# proxy (tools/kube: kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd; tools/kube/kwok: kwok) into a cache directory outside the checkout,
# keyed by the tools modules' go.sum, and reuses it. Prints the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
key=$(cat tools/kube/go.mod tools/kube/go.sum tools/kube/etcd/main.go tools/kube/kwok/go.mod tools/kube/kwok/go.sum | sha256sum | cut -c1-16)
base=${KUBE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kube-tools}
dir=$base/$key
bins=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
have=1
for b in "${bins[@]}"; do [ -x "$dir/$b" ] || have=0; done
if [ "$have" = 1 ]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$base"
tmp=$(mktemp -d "$base/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# only the podman libraries of the main module need berth's build tags
export GOFLAGS=-buildvcs=false
start=$(date +%s)
(cd tools/kube && go build -trimpath -ldflags='-s -w' -o "$tmp/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler ./etcd)
(cd tools/kube/kwok && go build -trimpath -ldflags='-s -w' -o "$tmp/" sigs.k8s.io/kwok/cmd/kwok)
echo "kube-tools: built ${bins[*]} in $(($(date +%s) - start))s" >&2
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
