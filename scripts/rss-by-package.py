#!/usr/bin/env python3
"""Where a Go process's resident memory is, by package.

usage: scripts/rss-by-package.py PID [BINARY]

Reads /proc/PID/maps and /proc/PID/pagemap (root) for the mappings of the
process's executable, and `go tool nm -size -sort address BINARY` for its
symbols, and prints the resident MB of each mapping (text, rodata, data)
and, per mapping, by the package of the symbol each resident page starts in,
grouped (BuildKit, containers/image, compose-go, ...). Resident file pages
of the executable are clean page cache that counts in RSS; the kernel maps
up to 64 KiB around each page fault (fault-around), so a page is resident
when it or a neighbour was touched. docs/benchmarks.md, "Idle RSS by
package".
"""
import bisect
import collections
import os
import struct
import subprocess
import sys

GROUPS = [
    ("github.com/moby/buildkit", "buildkit"), ("github.com/tonistiigi", "buildkit"),
    ("go.opentelemetry.io", "otel (buildkit's)"), ("google.golang.org/grpc", "grpc"),
    ("google.golang.org/protobuf", "protobuf"), ("github.com/gogo", "protobuf"),
    ("github.com/golang/protobuf", "protobuf"), ("github.com/containerd", "containerd"),
    ("github.com/compose-spec", "compose-go"), ("github.com/santhosh-tekuri", "compose-go"),
    ("go.podman.io/image", "containers/image"), ("go.podman.io/storage", "containers/storage"),
    ("github.com/sigstore", "containers/image"), ("github.com/ProtonMail", "containers/image"),
    ("github.com/cloudflare/circl", "containers/image"), ("github.com/miekg/dns", "miekg/dns"),
    ("github.com/vishvananda", "netlink"), ("go.etcd.io/bbolt", "bbolt"),
    ("github.com/berthd/berth", "berth"), ("golang.org/x", "golang.org/x"),
]


def package(sym):
    if sym in ("runtime.pclntab", "runtime.epclntab") or sym.startswith("runtime.pcheader"):
        return "pclntab (function tables)"
    if sym.startswith(("go:", "type:", "runtime.types", "runtime.rodata")):
        return "type data"
    if sym.startswith("runtime.") or sym.startswith("runtime/"):
        return "runtime"
    slash = sym.rfind("/")
    dot = sym.find(".", slash + 1)
    return sym[:dot] if dot > 0 else sym


def group(pkg):
    for prefix, g in GROUPS:
        if pkg.startswith(prefix):
            return g
    if pkg in ("runtime", "type data", "pclntab (function tables)"):
        return pkg
    first = pkg.split("/")[0]
    if "." not in first:
        return "stdlib"
    return "other: " + "/".join(pkg.split("/")[:3])


def main():
    pid = int(sys.argv[1])
    exe = sys.argv[2] if len(sys.argv) > 2 else os.readlink(f"/proc/{pid}/exe")
    nm = subprocess.run(["go", "tool", "nm", "-size", "-sort", "address", exe],
                        check=True, capture_output=True, text=True).stdout
    syms = []
    for line in nm.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] != "0":
            syms.append((int(f[0], 16), " ".join(f[3:])))
    syms.sort()
    addrs = [a for a, _ in syms]
    real = os.path.realpath(exe)
    maps = [l.split() for l in open(f"/proc/{pid}/maps") if l.rstrip().endswith(real)]
    kind = {"r-xp": "text", "r--p": "rodata", "rw-p": "data"}
    per_map = collections.Counter()
    by = collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for m in maps:
            lo, hi = (int(x, 16) for x in m[0].split("-"))
            k = kind.get(m[1], m[1])
            for va in range(lo, hi, 4096):
                pm.seek(va // 4096 * 8)
                if not struct.unpack("<Q", pm.read(8))[0] >> 63:
                    continue
                per_map[m[0]] += 1
                i = bisect.bisect_right(addrs, va) - 1
                by[(k, group(package(syms[i][1])) if i >= 0 else "?")] += 1
    mb = lambda n: n * 4096 / 1e6
    for m in maps:
        lo, hi = (int(x, 16) for x in m[0].split("-"))
        k = kind.get(m[1], m[1])
        print(f"{k:7s} mapped {mb((hi - lo) // 4096):7.1f} MB  resident {mb(per_map[m[0]]):6.1f} MB")
    print()
    for (k, g), n in by.most_common(25):
        print(f"{k:7s} {g:40s} {mb(n):6.2f} MB")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        pass
