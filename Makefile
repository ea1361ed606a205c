# pprofio: `make demo` shows the agent at work; `make check` runs every test.
# Both install what is missing first (.ci/deps.sh).

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
DEMO_DIR := pprofio-data

.PHONY: all deps build demo view check vet gotest e2e receiver otel bench bench-cycle bench-delta bench-fastdelta bench-godeltaprof memgrowth proto clean crash soak

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

# The web UI of the reference receiver (examples/ingest-server/viewer) on
# loopback, over examples/basic profiled for VIEW_DURATION (60 s) with every
# profile type; it prints the UI's URL and serves until Ctrl-C.
view: deps
	GO=$(GO) bash examples/view.sh

check: deps ctest vet gotest e2e receiver otel
	@echo "make check: all passed"

vet:
	$(GO) vet ./...
	cd tests && $(GO) vet ./...
	cd examples/ingest-server && $(GO) vet ./...
	cd tests/overhead && $(GO) vet ./...
	cd tests/fastdeltabench && $(GO) vet ./...
	cd tests/godeltabench && $(GO) vet ./...
	cd otel && $(GO) vet ./...

# go test's -timeout is a hang guard, not a speed limit: the default 10 m
# could cut short a package that a busy machine makes slow.
GOTEST_TIMEOUT ?= 30m

# Unit, build and end-to-end tests of the main module (includes the checks
# that edits to csrc/ rebuild the core, vendoring, and CGO_ENABLED=0).
gotest:
	$(GO) test -race -count=1 -timeout $(GOTEST_TIMEOUT) ./...

# End-to-end tests with their own module (test-only dependencies), and the
# report code of the fastdelta and godeltaprof benchmarks (their own modules).
e2e:
	cd tests && $(GO) test -race -count=1 -timeout $(GOTEST_TIMEOUT) ./...
	cd tests/fastdeltabench && $(GO) test -race -count=1 ./...
	cd tests/godeltabench && $(GO) test -race -count=1 ./...

# The reference receiver (its own module).
receiver:
	cd examples/ingest-server && $(GO) test -race -count=1 -timeout $(GOTEST_TIMEOUT) ./...

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
# profile pairs, rounds interleaved, by the wall clock and per CPU-second:
# writes tests/fastdeltabench/results/{results.json,latest.md,fastdelta.svg}
# (`go run . -render results` there redoes the last two).
# More rounds: make bench-fastdelta FASTDELTA_FLAGS='-rounds 9 -benchtime 2s'
FASTDELTA_FLAGS ?=
bench-fastdelta: deps
	cd tests/fastdeltabench && $(GO) run . $(FASTDELTA_FLAGS)

# One delta heap, mutex and block profile, ready to send, per cycle, beside
# pyroscope-go's godeltaprof (tests/godeltabench, its own module), in one
# program with 60,000 heap stacks: CPU (Go and C), Go allocations, size;
# writes tests/godeltabench/results/{results.json,latest.md,godeltaprof.svg}
# (`go run . -render results` there redoes the last two).
# More cycles: make bench-godeltaprof GODELTA_FLAGS='-cycles 15'
GODELTA_FLAGS ?=
bench-godeltaprof: deps
	cd tests/godeltabench && $(GO) run . $(GODELTA_FLAGS)

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

# The crash-safety figure (tests/crash/crash.c): CRASH_KILLS SIGKILLs of a
# process that spools and uploads over HTTPS to the reference receiver on
# loopback, then a last process delivers the rest; prints the counts and
# fails unless 0 corrupt batches were delivered, 0 completed batches lost
# and 0 delivered twice without a 409. Built with the Criterion objects
# (ASan/UBSan). A few minutes; not part of make check.
CRASH_KILLS ?= 1000
crash: deps $(CTEST_CORE_OBJS)
	@mkdir -p build/crash
	cd examples/ingest-server && $(GO) build -o $(CURDIR)/build/crash/ingest-server .
	$(CTEST_CC) $(CTEST_CFLAGS) tests/crash/crash.c $(CTEST_CORE_OBJS) $(CTEST_LDFLAGS) $(CTEST_LDLIBS) -o build/crash/crash
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=$(CTEST_UBSAN_OPTIONS) build/crash/crash build/crash/ingest-server $(CRASH_KILLS)

# The leak figures (tests/soak): SOAK_CYCLES New/Start/Stop cycles with
# every profile type and uploads over TLS to the reference receiver; prints
# RSS, C heap, Go heap growth per cycle after warm-up and the goroutine, fd
# and thread counts; then the same under go test -asan, where LeakSanitizer
# checks at exit (a leak fails the run). make check runs 30 cycles.
SOAK_CYCLES ?= 1000
SOAK_ASAN_CYCLES ?= $(SOAK_CYCLES)
SOAK_FILTER = grep -E 'soak:|^(ok|FAIL|PASS|---)|LeakSanitizer|SUMMARY'
soak: deps
	set -o pipefail; cd tests && PPROFIO_SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -v -timeout 90m \
		-run '^TestSoak$$' ./soak/ 2>&1 | $(SOAK_FILTER)
	set -o pipefail; cd tests && ASAN_OPTIONS=detect_leaks=1 PPROFIO_SOAK_CYCLES=$(SOAK_ASAN_CYCLES) \
		$(GO) test -asan -count=1 -v -timeout 90m -run '^TestSoak$$' ./soak/ 2>&1 | $(SOAK_FILTER)

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
	rm -rf build $(DEMO_DIR) pprofio-view

include tests/c/ctest.mk
include tests/fuzz/fuzz.mk
