#!/bin/bash
# Installs the Debian packages berth's build, tests and demo need, when one is
# missing (`make deps`; make test, demo and bench run it first). Needs root
# and Debian's apt. Go itself is expected at /usr/local/go.
set -euo pipefail
missing=()
need() { # need <package> <check command...>
    local pkg=$1; shift
    "$@" >/dev/null 2>&1 || missing+=("$pkg")
}
need runc             command -v runc
# headers of two cgo libraries that berth's build tags leave out; a plain
# `go vet ./...` or `go build ./...` without GOFLAGS compiles them
need pkg-config       command -v pkg-config
need libgpgme-dev     pkg-config --exists gpgme
need libbtrfs-dev     test -f /usr/include/btrfs/ioctl.h
need crun             command -v crun
need busybox-static   test -x /usr/bin/busybox
need docker-registry  command -v docker-registry
need skopeo           command -v skopeo
need iptables         command -v iptables
need iproute2         command -v ip
need tini             command -v tini
need catatonit        command -v catatonit
need python3-docker   /usr/bin/python3 -c 'import docker'
need gcc              command -v gcc
need libc6-dev        test -f /usr/lib/x86_64-linux-gnu/libc.a
# clang and its libFuzzer/sanitizer runtimes: berth-nsexec's fuzz harnesses
need clang            command -v clang
need libclang-rt-14-dev sh -c 'ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a'
need make             command -v make
need git              command -v git
need curl             command -v curl
need ca-certificates  test -d /etc/ssl/certs
need procps           command -v ps
need bsdutils         command -v script
need util-linux       command -v flock
# the docker CLI: the machine kind ships 28.x in /usr/local/bin; Debian's
# docker.io brings one (20.10) where it is missing
need docker.io        command -v docker
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "berth needs these Debian packages (run as root to install them): ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
