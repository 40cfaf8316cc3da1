#!/bin/bash
# Builds the kubelet of the opt-in real-node test (make e2e-kubelet) from
# the Go module proxy (tools/kube/kubelet: k8s.io/kubernetes/cmd/kubelet, the
# control plane's release) into a cache directory outside the checkout,
# keyed by the module's go.mod and go.sum, and reuses it. Prints the
# kubelet's path.
set -euo pipefail
cd "$(dirname "$0")/.."
key=$(cat tools/kube/kubelet/go.mod tools/kube/kubelet/go.sum | sha256sum | cut -c1-16)
base=${KUBE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubelet}
dir=$base/$key
if [ -x "$dir/kubelet" ]; then
	echo "$dir/kubelet"
	exit 0
fi
mkdir -p "$base"
tmp=$(mktemp -d "$base/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export GOFLAGS=-buildvcs=false
start=$(date +%s)
(cd tools/kube/kubelet && go build -trimpath -ldflags='-s -w' -o "$tmp/" k8s.io/kubernetes/cmd/kubelet)
echo "kubelet-tool: built kubelet in $(($(date +%s) - start))s" >&2
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/kubelet"
