# pprofio: `make demo` shows the agent at work; `make check` runs every test.
# Both install what is missing first (.ci/deps.sh).

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
DEMO_DIR := pprofio-data

.PHONY: all deps build demo check vet gotest e2e receiver otel bench bench-cycle bench-delta bench-fastdelta memgrowth proto clean

all: build

deps:
	@bash .ci/deps.sh

build: deps
	$(GO) build ./...

# The example program, profiled for about 30 s with a 5 s cycle: profiles
# written to ./pprofio-data and uploaded over HTTPS to the reference
# receiver on loopback; then the top of one CPU and one heap profile.
demo: deps
	GO=$(GO) bash examples/demo.sh

check: deps ctest vet gotest e2e receiver otel
	@echo "make check: all passed"

vet:
	$(GO) vet ./...
	cd tests && $(GO) vet ./...
	cd examples/ingest-server && $(GO) vet ./...
	cd tests/overhead && $(GO) vet ./...
	cd tests/fastdeltabench && $(GO) vet ./...
	cd otel && $(GO) vet ./...

# Unit, build and end-to-end tests of the main module (includes the checks
# that edits to csrc/ rebuild the core, vendoring, and CGO_ENABLED=0).
gotest:
	$(GO) test -race -count=1 ./...

# End-to-end tests with their own module (test-only dependencies).
e2e:
	cd tests && $(GO) test -race -count=1 ./...

# The reference receiver (its own module).
receiver:
	cd examples/ingest-server && $(GO) test -race -count=1 ./...

# The OpenTelemetry bridge (its own module, so the main one does not
# depend on OpenTelemetry), against the real OpenTelemetry SDK.
otel:
	cd otel && $(GO) test -race -count=1 ./...

# pprofio against no profiler and pyroscope-go (tests/overhead, its own
# module): writes tests/overhead/results/{latest.md,overhead.svg}. Longer and
# tighter: make bench BENCH_FLAGS='-rounds 12 -work 160000'
BENCH_FLAGS ?=
bench: deps
	cd tests/overhead && $(GO) run . $(BENCH_FLAGS)

# The agent's own cost per cycle on an idle program (CPU, Go heap).
bench-cycle: deps
	$(GO) test -run '^$$' -bench . -benchtime 10x .

# The C delta path against github.com/google/pprof's, on 1 MB and 10 MB heap profiles.
bench-delta: deps
	cd tests && $(GO) test -run '^$$' -bench . -benchtime 10x ./deltabench/

# The C delta path beside dd-trace-go's fastdelta (tests/fastdeltabench, its
# own module), on fastdelta's benchmark files and on 1 MB and 10 MB heap
# profile pairs, rounds interleaved: writes tests/fastdeltabench/results/latest.md.
# More rounds: make bench-fastdelta FASTDELTA_FLAGS='-rounds 9 -benchtime 2s'
FASTDELTA_FLAGS ?=
bench-fastdelta: deps
	cd tests/fastdeltabench && $(GO) run . $(FASTDELTA_FLAGS)

# C heap kept per cycle (glibc mallinfo2) over many simulated cycles
# (tests/c/memgrowth.c): without uploads, with HTTPS uploads on one kept
# connection, with a new TLS connection per batch, the same with glibc's
# per-thread cache off (mallinfo2 counts the chunks parked there as in
# use), and over plain HTTP.
# Longer: make memgrowth MEMGROWTH_FLAGS='-cycles 8000 -warmup 500'
MEMGROWTH_FLAGS ?= -cycles 2000 -warmup 200
MEMGROWTH_PKGS := zlib libcurl libprotobuf-c
memgrowth: deps
	@mkdir -p build
	cc -std=gnu11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Iinclude $$(pkg-config --cflags $(MEMGROWTH_PKGS)) \
		tests/c/memgrowth.c csrc/*.c -o build/memgrowth $$(pkg-config --libs $(MEMGROWTH_PKGS)) -ldl -lpthread
	cd examples/ingest-server && $(GO) build -o ../../build/memgrowth-receiver .
	./build/memgrowth $(MEMGROWTH_FLAGS)
	./build/memgrowth $(MEMGROWTH_FLAGS) -server build/memgrowth-receiver
	./build/memgrowth $(MEMGROWTH_FLAGS) -server build/memgrowth-receiver -new-connections
	GLIBC_TUNABLES=glibc.malloc.tcache_count=0 ./build/memgrowth $(MEMGROWTH_FLAGS) \
		-server build/memgrowth-receiver -new-connections
	./build/memgrowth $(MEMGROWTH_FLAGS) -server build/memgrowth-receiver -new-connections -plain

# Regenerate the protobuf-c code of the ingest contract (csrc/proto/ingest.proto),
# of the pprof format (profile.proto) and of Grafana Pyroscope's push request
# (pyroscope_push.proto, pyroscope_types.proto), and the reference receiver's
# Go code. The generated files are committed.
PROTOS := ingest profile pyroscope_types pyroscope_push
proto: deps
	@command -v protoc >/dev/null || { echo "make proto needs protoc (Debian: protobuf-compiler) and protoc-gen-go"; exit 1; }
	protoc-c --proto_path=csrc/proto --c_out=csrc $(PROTOS:%=csrc/proto/%.proto)
	sed -i '1i //go:build ignore\n' $(PROTOS:%=csrc/%.pb-c.c)
	cd examples/ingest-server && ./generate.sh

clean: ctest-clean fuzz-clean
	rm -rf build $(DEMO_DIR)

include tests/c/ctest.mk
include tests/fuzz/fuzz.mk
