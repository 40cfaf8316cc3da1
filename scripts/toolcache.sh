# Sourced by the scripts that build test tools from the Go module proxy into
# a cache directory outside the checkout, keyed by their modules' files, and
# reuse it: kube-tools.sh, coredns.sh, kubelet-tool.sh.

# tool_cached DIR BIN...: every BIN is an executable in DIR.
tool_cached() {
	local d=$1 b
	shift
	for b in "$@"; do [ -x "$d/$b" ] || return 1; done
}

# tool_build NAME DIR FUNC: runs FUNC TMP, which builds into the temp dir
# TMP next to DIR, then puts TMP in DIR's place (a build that fails or is
# stopped leaves no DIR behind), and says how long it took.
tool_build() {
	local name=$1 dir=$2 build=$3 tmp start
	mkdir -p "$(dirname "$dir")"
	tmp=$(mktemp -d "$(dirname "$dir")/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# only the podman libraries of the main module need berth's build tags
	export GOFLAGS=-buildvcs=false
	start=$(date +%s)
	"$build" "$tmp"
	echo "$name: built in $(($(date +%s) - start))s" >&2
	rm -rf "$dir"
	mv "$tmp" "$dir"
	trap - EXIT
}
