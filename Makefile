# TiStream build, test and benchmark entry points. `make test` is what CI runs
# (.ci/run); `make demo` is the README's first command.
SHELL := /bin/bash
TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(PATH)

# Every package of every module in go.work.
GO_PKGS := ./... ./client/... ./libs/tidbcodec/... ./libs/formats/storeline/... ./proto/gen/go/...
FUZZTIME ?= 3s

.PHONY: all build tools generate check-generate lint test unit conformance tidb tidb-build bench-tidb fuzz fuzz-smoke bench demo soak clean

all: build

build:
	go build -o bin/tistream ./services/cmd/tistream

# Go tools from the module proxy, and MariaDB (Debian's package) for the
# MySQL sink's tests when it is missing.
tools:
	scripts/install-tools.sh
	scripts/install-mariadb.sh

generate: tools
	buf lint
	buf generate

# Regenerating must not change anything that is checked in.
check-generate: generate
	scripts/check-clean.sh proto/gen

lint:
	scripts/check-gofmt.sh
	go vet $(GO_PKGS)
	cd libs/tidbcodec/conformance && GOWORK=off go vet ./...
	cd e2e/tidb && GOWORK=off go vet ./...

# Everything CI runs. TISTREAM_REQUIRE_S3=1 and TISTREAM_REQUIRE_MARIADB=1
# turn a missing S3-compatible server or MariaDB into a failure instead of a
# skip. The fuzz targets' corpora (testdata/fuzz) run as ordinary tests
# here; new fuzzing is `make fuzz`, kept
# out of CI so a run's outcome does not depend on what a fuzzer stumbles on.
test: tools check-generate lint unit conformance tidb

unit:
	TISTREAM_REQUIRE_S3=1 TISTREAM_REQUIRE_KMS=1 TISTREAM_REQUIRE_MARIADB=1 go test -count=1 $(GO_PKGS)
	# A build without cgo has only the Go zstd codec (libs/formats/container).
	CGO_ENABLED=0 go test -count=1 ./libs/formats/container

# Byte-for-byte conformance of libs/tidbcodec with TiDB's own codec. A separate
# module (GOWORK=off) so TiDB's pinned dependencies never reach the product.
conformance:
	cd libs/tidbcodec/conformance && GOWORK=off go test -count=1 ./...

# A real TiDB as the upstream. tistream-tidb (e2e/tidb) is its own module,
# built with GOWORK=off so TiDB's pinned grpc, etcd and kvproto never reach
# the product; its capture writes store change lines that `tistream
# upstream` turns into files. Its unit tests run an embedded TiDB and check
# the capture alone; the e2e tests run it into a fleet of processes and
# compare every pulled image with TiDB's MVCC, and what `tistream sink
# mysql` applied to MariaDB with TiDB's snapshot reads.
TIDB_BIN := $(CURDIR)/bin/tistream-tidb
TIDB_DURATION ?= 20s
TIDB_TIMEOUT ?= 30m

tidb-build:
	cd e2e/tidb && GOWORK=off go build -o $(TIDB_BIN) ./cmd/tistream-tidb

tidb: tools tidb-build
	scripts/install-sysbench.sh
	cd e2e/tidb && GOWORK=off go test -count=1 -timeout 15m ./...
	TISTREAM_REQUIRE_S3=1 TISTREAM_REQUIRE_TIDB=1 TISTREAM_REQUIRE_MARIADB=1 TISTREAM_TIDB_BIN=$(TIDB_BIN) TISTREAM_TIDB_DURATION=$(TIDB_DURATION) \
		go test -count=1 -timeout $(TIDB_TIMEOUT) -v -run 'TestTiDBUpstream' ./e2e/

# sysbench with and without the capture, and the lag from a TiDB commit to a
# puller (docs/benchmarks.md); BENCH_TIDB_DURATION per sysbench test.
BENCH_TIDB_DURATION ?= 30s
bench-tidb: tools tidb-build
	scripts/install-sysbench.sh
	TISTREAM_REQUIRE_S3=1 TISTREAM_TIDB_BENCH=1 TISTREAM_TIDB_BIN=$(TIDB_BIN) TISTREAM_TIDB_BENCH_DURATION=$(BENCH_TIDB_DURATION) \
		go test -count=1 -timeout 30m -v -run 'TestTiDBSysbench' ./e2e/

# Runs every fuzz target for FUZZTIME (make fuzz FUZZTIME=5m for a real run);
# commit what it finds under testdata/fuzz.
fuzz-smoke fuzz:
	scripts/fuzz.sh $(FUZZTIME)

bench:
	scripts/bench.sh

# The fault suite for longer than make test's short run: random kill -9,
# SIGSTOP and restarts of every service kind under load, then verify.
# SOAK=30m for longer; each run draws a seed (printed), TISTREAM_FAULT_SEED=N repeats one.
SOAK ?= 10m
soak: tools
	TISTREAM_REQUIRE_S3=1 TISTREAM_FAULT_DURATION=$(SOAK) TISTREAM_FAULT_SEED=$${TISTREAM_FAULT_SEED:-$$RANDOM$$RANDOM} go test -count=1 -v -timeout 0 -run 'TestFaults$$' ./e2e/
	$(MAKE) tidb TIDB_DURATION=$(SOAK) TIDB_TIMEOUT=0

demo:
	scripts/demo.sh

clean:
	rm -rf bin demo-data
