#!/bin/bash
# Builds CoreDNS (tools/coredns: core/dnsserver with only the bind, ready, errors,
# log, rewrite and kubernetes plugins) from the Go module proxy into a cache
# directory outside the checkout, keyed by that module's files, and reuses it.
# Prints the directory; the binary is <dir>/coredns. make e2e-kube runs it
# with the Corefile of `berth kube dns-config` (docs/kubernetes.md, "DNS").
set -euo pipefail
cd "$(dirname "$0")/.."
key=$(cat tools/coredns/go.mod tools/coredns/go.sum tools/coredns/main.go | sha256sum | cut -c1-16)
base=${COREDNS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/coredns}
dir=$base/$key
if [ -x "$dir/coredns" ]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$base"
tmp=$(mktemp -d "$base/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# only the podman libraries of the main module need berth's build tags
export GOFLAGS=-buildvcs=false
start=$(date +%s)
(cd tools/coredns && go build -trimpath -ldflags='-s -w' -o "$tmp/coredns" .)
echo "coredns: built in $(($(date +%s) - start))s" >&2
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
