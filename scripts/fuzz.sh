#!/bin/bash
# Runs berth's fuzz targets, each for a fixed time (`make fuzz`; `make
# fuzz-smoke` runs each for a few seconds, as `make test` does):
#   - every Go `func Fuzz...` of the module: the packages are those whose
#     _test.go files declare one, the targets what each package's test
#     binary lists, so new targets are picked up without a change here;
#   - the libFuzzer harnesses of berth-nsexec (cmd/berth-nsexec/fuzz/
#     fuzz_*.c, built with clang, ASan and UBSan), each with its seed corpus
#     in cmd/berth-nsexec/fuzz/corpus/<name>.
#
#   scripts/fuzz.sh [list | run [NAME...]]
#
# FUZZTIME (default 30s; Ns or Nm) is the time per target. NAME picks
# targets (FuzzLogOptions, fuzz_config). A Go failure leaves its input in the
# package's testdata/fuzz/<target>/ (`go test -run <target>/<file>` replays
# it); a C one in bin/fuzz/artifacts/ (run the harness on it to replay).
# Corpora grown while fuzzing stay in Go's cache and bin/fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
: "${GOFLAGS:=-tags=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper -buildvcs=false}"
export GOFLAGS
FUZZTIME=${FUZZTIME:-30s}
CLANG=${CLANG:-clang}
out=bin/fuzz
cmd=${1:-run}
[ $# -gt 0 ] && shift
names=("$@")

case $FUZZTIME in
*s) secs=${FUZZTIME%s} ;;
*m) secs=$((${FUZZTIME%m} * 60)) ;;
*) echo "FUZZTIME: want Ns or Nm, not $FUZZTIME" >&2; exit 2 ;;
esac

wanted() { # wanted <name>: no names given, or one of them
    [ ${#names[@]} -eq 0 ] && return 0
    local n
    for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done
    return 1
}

# the packages with Go fuzz targets, as directories; none when the names
# given are all of C harnesses
go_dirs() {
    if [ ${#names[@]} -gt 0 ] && ! printf '%s\n' "${names[@]}" | grep -q '^Fuzz'; then
        return
    fi
    grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . \
        --exclude-dir=.git --exclude-dir=bin --exclude-dir=tools --exclude-dir=integration |
        xargs -n1 dirname | sort -u | sed 's|^\./||'
}

module=$(awk '$1 == "module" { print $2; exit }' go.mod)
passed=0 failed=0 failures=()

# go_build <dir>: the package's test binary with fuzzing instrumentation
go_build() {
    local bin=$out/go/${1//\//_}.test
    mkdir -p "$out/go"
    go test -c -fuzz=. -o "$bin" "./$1" >&2
    echo "$bin"
}

go_targets() { # go_targets <dir> <binary>
    (cd "$1" && "$OLDPWD/$2" -test.list '^Fuzz' | grep '^Fuzz' || true)
}

c_harnesses() {
    local f
    for f in cmd/berth-nsexec/fuzz/fuzz_*.c; do basename "$f" .c; done
}

# c_build <harness>: links the helper's files but nsexec.c (its main) and
# the one the harness includes (to reach its static functions)
c_build() {
    local src=cmd/berth-nsexec/fuzz/$1.c srcs=() f inc
    inc=$(sed -n 's|^#include "\.\./\(.*\.c\)"|\1|p' "$src")
    for f in cmd/berth-nsexec/*.c; do
        case $(basename "$f") in
        nsexec.c | "$inc") ;;
        *) srcs+=("$f") ;;
        esac
    done
    mkdir -p "$out/c"
    "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -DBERTH_FUZZ -Wall -o "$out/c/$1" "$src" cmd/berth-nsexec/fuzz/harness.c "${srcs[@]}"
}

# result <name> <rc> <log>
result() {
    if [ "$2" = 0 ]; then
        passed=$((passed + 1))
        echo "ok    $1"
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAIL  $1"
        tail -n 40 "$3"
    fi
}

list() {
    local d bin t h
    for d in $(go_dirs); do
        bin=$(go_build "$d")
        for t in $(go_targets "$d" "$bin"); do echo "go $d $t"; done
    done
    for h in $(c_harnesses); do echo "c cmd/berth-nsexec/fuzz $h"; done
}

run() {
    local d bin t h log rc cache start=$SECONDS
    cache=$(go env GOCACHE)/fuzz
    log=$(mktemp)
    trap 'rm -f "$log"' RETURN
    if ! command -v "$CLANG" >/dev/null; then
        echo "$CLANG is missing: make deps installs it" >&2
        return 1
    fi
    echo "fuzzing each target for $FUZZTIME"
    for d in $(go_dirs); do
        if ! bin=$(go_build "$d" 2>"$log"); then
            result "go $d (build)" 1 "$log"
            continue
        fi
        for t in $(go_targets "$d" "$bin"); do
            wanted "$t" || continue
            rc=0
            (cd "$d" && "$OLDPWD/$bin" -test.run='^$' -test.fuzz="^$t\$" -test.fuzztime="$FUZZTIME" \
                -test.fuzzcachedir="$cache/$module/$d") >"$log" 2>&1 || rc=$?
            # go's fuzzer fails with "context deadline exceeded" when its time
            # runs out while a slow input is still executing: that is no
            # finding (a finding writes its input and says so)
            if [ "$rc" != 0 ] && grep -q "context deadline exceeded" "$log" &&
                ! grep -qE "Failing input written|failure while testing seed corpus|panic:" "$log"; then
                rc=0
            fi
            result "go $d $t" "$rc" "$log"
        done
    done
    for h in $(c_harnesses); do
        wanted "$h" || continue
        local corpus=$out/corpus/${h#fuzz_}
        mkdir -p "$corpus" "$out/artifacts"
        rc=0
        { c_build "$h" &&
            "$out/c/$h" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
                -artifact_prefix="$out/artifacts/$h-" "$corpus" "cmd/berth-nsexec/fuzz/corpus/${h#fuzz_}"; } >"$log" 2>&1 || rc=$?
        result "c $h" "$rc" "$log"
    done
    echo "fuzz: $((SECONDS - start))s"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

case $cmd in
list) list ;;
run) run ;;
*) echo "usage: $0 [list | run [NAME...]]" >&2; exit 2 ;;
esac
