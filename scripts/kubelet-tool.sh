#!/bin/bash
# Builds the kubelet of the opt-in real-node test (make e2e-kubelet) from
# the Go module proxy (tools/kube/kubelet: k8s.io/kubernetes/cmd/kubelet, the
# control plane's release) into a cache directory outside the checkout,
# keyed by the module's go.mod and go.sum, and reuses it. Prints the
# kubelet's path.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolcache.sh
key=$(cat tools/kube/kubelet/go.mod tools/kube/kubelet/go.sum | sha256sum | cut -c1-16)
base=${KUBELET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/kubelet}
dir=$base/$key
if ! tool_cached "$dir" kubelet; then
	build() { (cd tools/kube/kubelet && go build -trimpath -ldflags='-s -w' -o "$1/" k8s.io/kubernetes/cmd/kubelet); }
	tool_build kubelet "$dir" build
fi
echo "$dir/kubelet"
