# berth: a Docker-compatible container engine.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# build tags for the podman image/storage libraries (no gpgme, btrfs or devicemapper)
TAGS := containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper
export GOFLAGS := -tags=$(TAGS) -buildvcs=false
UNIT_PKGS = $$(go list ./... | grep -v /integration)

.PHONY: all deps build berthd-kube test unit e2e lint demo bench bench-phases bench-timeline bench-ab bench-scale soak images compose buildx tools berth clean fuzz fuzz-smoke fuzz-list kube-tools kube-coredns e2e-kube e2e-kubelet

all: build

# the Debian packages the build, tests and demo need, installed when missing
deps:
	./scripts/deps.sh

# berthd is static (CGO_ENABLED=0): it needs no C (pure-Go DNS and user
# lookups; no overlay project quotas: berth has no --storage-opt size), and
# not mapping ld.so and libc is 1.5 MB less resident (docs/benchmarks.md).
build:
	CGO_ENABLED=0 go build -o bin/berthd ./cmd/berthd
	go build -o bin/berth-buildkitd ./cmd/berth-buildkitd
	go build -o bin/berth-imagecopy ./cmd/berth-imagecopy
	CGO_ENABLED=0 go build -ldflags='-s -w' -o bin/berth-shim ./cmd/berth-shim
	CGO_ENABLED=0 go build -tags berth_remotelog -ldflags='-s -w' -o bin/berth-shim-remote ./cmd/berth-shim
	gcc -O2 -static -s -Wall -o bin/berth-nsexec cmd/berth-nsexec/*.c
	gcc -O2 -static -s -Wall -o bin/berth-shim-sleep cmd/berth-shim-sleep/*.c

# berthd with the Kubernetes backend (--kubeconfig; docs/kubernetes.md):
# client-go and k8s.io/api stay out of the default berthd's memory.
berthd-kube:
	go build -tags=$(TAGS),berth_kube -o bin/berthd-kube ./cmd/berthd

images: testdata/images/busybox.tar

testdata/images/busybox.tar:
	mkdir -p testdata/images
	go run ./internal/testimage/mkimage -o $@ -oci testdata/images/busybox-oci.tar

# The whole suite: lint, unit tests with the race detector, end-to-end tests
# against a real berthd with the real docker CLI, compose and docker-py.
test: deps lint build unit fuzz-smoke e2e

# -timeout: a package's tests may take 20 min, not go test's 10: runtime/shim's
# took 5.5 min under -race on a loaded 2-core machine (2 min when idle)
unit:
	go test -race -count=1 -timeout 20m $(UNIT_PKGS)

# The end-to-end tests wait far more than they compute (a serial run keeps
# 2 CPUs ~85% idle); the ones whose daemon shares nothing with another's
# (each has its own root, socket and address block: testenv.TakeNetSlot)
# call t.Parallel and run E2E_PARALLEL at a time. Those that time
# themselves or touch host-wide state stay serial.
E2E_PARALLEL ?= 3

e2e: build compose buildx
	go test -count=1 -timeout 50m -p 1 -parallel $(E2E_PARALLEL) ./integration/...

# Every fuzz target for FUZZTIME each: the Go ones (func Fuzz...) and the
# libFuzzer harnesses of berth-nsexec (clang); scripts/fuzz.sh. fuzz-smoke
# runs each briefly, so they stay compiled and green.
FUZZTIME ?= 30s

fuzz: deps
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh run

fuzz-smoke:
	FUZZTIME=1s ./scripts/fuzz.sh run

fuzz-list:
	./scripts/fuzz.sh list

# The Kubernetes backend's test control plane (kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd, kwok), built from the Go
# module proxy (tools/kube, its own modules) into a cache outside the
# checkout and reused; docs/kubernetes.md. Not part of test: the first build
# takes long on 2 cores.
kube-tools:
	./scripts/kube-tools.sh
	./scripts/coredns.sh

# CoreDNS with only the plugins the zone rewrite test needs (tools/coredns),
# into its own cache; make e2e-kube builds it too (docs/kubernetes.md, "DNS").
kube-coredns:
	./scripts/coredns.sh

# berthd-kube against that control plane (etcd, kube-apiserver, controller-manager,
# scheduler, kwok's nodes on loopback) through the docker CLI and compose, and
# CoreDNS with berth's zone rewrite (integration/kubee2e, build tag berth_kube_e2e); not part of test: docs/kubernetes.md
e2e-kube:
	./scripts/e2e-kube.sh

# opt-in: real pods on a kubelet with containerd (changes host state while it runs)
e2e-kubelet:
	./scripts/e2e-kubelet.sh

lint:
	go vet ./...
	go vet -tags=$(TAGS),berth_kube ./cmd/berthd
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# berthd on a private socket and data root, the bundled busybox image, two
# compose projects with the real docker compose, what berth's DNS answers
demo: deps build compose images berth
	./scripts/demo.sh

bench: deps build images compose buildx
	./scripts/bench.sh

# where berthd's time goes in run --rm, create and exec (berthd --debug's phase trace)
bench-phases: build
	./scripts/bench-phases.sh

bench-timeline: build
	./scripts/bench-timeline.sh

# two builds side by side, the same docker command alternating between them:
# make bench-ab A=<bin dir> B=<bin dir> [AB_N=120 AB_CMD="run --rm busybox true"]
bench-ab: images
	A=$(A) B=$(B) ./scripts/bench-ab.sh

# SCALE_N (default 1000) running containers: ps/inspect/DNS at N vs 10, restart after
# SIGKILL, rm -f of all, RSS and leaks (docs/benchmarks.md)
SCALE_N ?= 1000
bench-scale: build
	SCALE_N=$(SCALE_N) ./scripts/bench-scale.sh

# Long runs, not part of `make test`: SOAK_CYCLES compose up/down cycles of the
# compose-bench project (default 200; SOAK_CYCLES=1000 for the long run), ending
# with zero leaked mounts, veths, netns, rules, cgroups, monitors and addresses and
# a flat berthd RSS (integration/soak_test.go, build tag soak).
SOAK_CYCLES ?= 200

soak: build compose
	SOAK_CYCLES=$(SOAK_CYCLES) go test -tags containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,soak \
		-count=1 -timeout 6h -v -run TestSoak ./integration/

# docker compose v2, the real client the compose e2e tests drive, built from the
# Go module proxy by the tools module (tools/go.mod pins the version); rebuilt
# only when missing or when tools/go.mod or go.sum change. The tests install it
# as a CLI plugin in each test daemon's DOCKER_CONFIG (internal/testenv).
COMPOSE_VERSION = $(shell awk '$$1 == "github.com/docker/compose/v2" { print $$2 }' tools/go.mod)

compose: bin/docker-compose

bin/docker-compose: tools/go.mod tools/go.sum
	cd tools && go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$(COMPOSE_VERSION)" -o ../bin/docker-compose github.com/docker/compose/v2/cmd
	@./bin/docker-compose version

# buildx, the CLI plugin `docker build` and compose builds go through (BuildKit
# over berthd's /grpc and /session), from its own tools module (tools/buildx/go.mod
# pins the version, apart from compose's docker/cli); installed as a CLI plugin in
# each test daemon's DOCKER_CONFIG like compose.
BUILDX_VERSION = $(shell awk '$$1 == "github.com/docker/buildx" { print $$2 }' tools/buildx/go.mod)

buildx: bin/docker-buildx

bin/docker-buildx: tools/buildx/go.mod tools/buildx/go.sum
	cd tools/buildx && go build -trimpath -ldflags "-s -w -X github.com/docker/buildx/version.Version=$(BUILDX_VERSION) -X github.com/docker/buildx/version.Package=github.com/docker/buildx" -o ../../bin/docker-buildx github.com/docker/buildx/cmd/buildx
	@./bin/docker-buildx version

tools: compose buildx

# berth: the small client of berthd's own endpoints (berth compose up|ps|down).
berth:
	go build -o bin/berth ./cmd/berth

clean:
	rm -rf bin testdata/images
