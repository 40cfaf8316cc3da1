#!/bin/bash
# Builds CoreDNS (tools/coredns: core/dnsserver with only the bind, ready, errors,
# log, rewrite and kubernetes plugins) from the Go module proxy into a cache
# directory outside the checkout, keyed by that module's files, and reuses it.
# Prints the directory; the binary is <dir>/coredns. make e2e-kube runs it
# with the Corefile of `berth kube dns-config` (docs/kubernetes.md, "DNS").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolcache.sh
key=$(cat tools/coredns/go.mod tools/coredns/go.sum tools/coredns/main.go | sha256sum | cut -c1-16)
base=${COREDNS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/coredns}
dir=$base/$key
if ! tool_cached "$dir" coredns; then
	build() { (cd tools/coredns && go build -trimpath -ldflags='-s -w' -o "$1/coredns" .); }
	tool_build coredns "$dir" build
fi
echo "$dir"
