# tests/fuzz/fuzz.mk: libFuzzer on every parser of bytes that come from
# outside the process, under AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer. One target per parser, each against the public functions of
# its module:
#
#   delta        the pprof decoder and delta engine (csrc/pprof*.c)       fuzz_delta.c
#   spool        the disk spool's file reader: headers, CRCs, truncation
#                (pprofio_spool_open/_peek/_pop, csrc/spool.c)            fuzz_spool.c
#   batch        the batch decoder used for 413 splits (csrc/batch.c)     fuzz_batch.c
#   retry_after  the Retry-After parser (csrc/upload.c)                   fuzz_retry_after.c
#   config       the config and tag checks of the C API
#                (pprofio_config_validate, pprofio_agent_new)             fuzz_config.c
#
#   make fuzz                          install clang if missing, build, fuzz each target for FUZZ_SECONDS (60)
#   make -j2 fuzz                      two targets at a time
#   make fuzz FUZZ_SECONDS=600         a long run
#   make fuzz FUZZ_TARGETS='spool batch'  some of them
#   make fuzz-build                    build build/fuzz/fuzz_<target> only
#   make fuzz-clean                    remove build/fuzz (and the corpora grown there)
#
# Include it from the top-level Makefile (`include tests/fuzz/fuzz.mk`) or run
# it on its own (`make -f tests/fuzz/fuzz.mk fuzz`). It defines only FUZZ_*
# variables and fuzz* targets, finds the repository from its own path, and
# leaves the including Makefile's default goal alone.
#
# Seeds: build/fuzz/fuzz_seeds writes each target's seed corpus with the
# core's own writers (batch files by pprofio_spool_push, batches by
# pprofio_batch_encode: tests/fuzz/fuzz_seeds.c); the delta target's seeds
# are the real profiles in tests/testdata/*.pb. tests/fuzz/<target>.dict, when
# present, gives libFuzzer the format's words (pprof.dict: protobuf tags,
# varints at the ends of int64, sample type names).
#
# Each corpus grows in build/fuzz/corpus/<target> and is kept between runs;
# each run also reads the inputs kept in tests/fuzz/regressions/ (the delta
# target's files at its top, the others' in regressions/<target>/). A finding
# is written to build/fuzz/artifacts/<target>/ (crash-*, leak-*, timeout-*,
# oom-*) and fails the run. After fixing it, copy the input into
# tests/fuzz/regressions/ (or regressions/<target>/): test_pprof.c and
# test_fuzz.c replay every file there (make ctest). Each run ends with one
# line per target: executions, edges covered (cov), features (ft), corpus size.
#
# clang comes from the Debian package `clang` (libFuzzer is part of it; where
# it is packaged apart, from libclang-rt-<version>-dev), installed with apt-get
# (through sudo when not root) the first time.

FUZZ_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)
FUZZ_MK := $(lastword $(MAKEFILE_LIST))
FUZZ_STANDALONE := $(if $(filter 1,$(words $(MAKEFILE_LIST))),1,)

FUZZ_ROOT := $(patsubst %/,%,$(abspath $(dir $(FUZZ_MK))/../..))
FUZZ_BUILD := $(FUZZ_ROOT)/build/fuzz

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 65536
FUZZ_FLAGS ?=
# The decoder's arena grows by ARENA_CHUNK (1 MiB in the agent; csrc/pprofdec.c
# takes another size from -DPPROFIO_PPROF_ARENA_CHUNK). Under ASan a
# chunk over 128 KiB is an mmap and munmap per decode, which made the target
# 8x slower; fuzz builds use 64 KiB chunks (more chunks per profile, and a
# smaller allowance for small inputs: n * 16 + 4 chunks). FUZZ_ARENA_CHUNK=
# (empty) fuzzes the agent's size.
FUZZ_ARENA_CHUNK ?= 65536u
comma := ,
FUZZ_SANITIZE = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra $(FUZZ_SANITIZE) -I$(FUZZ_ROOT)/include \
	-DFUZZ_TESTDATA='"$(FUZZ_ROOT)/tests/testdata"' $(if $(FUZZ_ARENA_CHUNK),-DPPROFIO_PPROF_ARENA_CHUNK=$(FUZZ_ARENA_CHUNK)) $(shell pkg-config --cflags zlib libprotobuf-c)
FUZZ_LDLIBS = $(shell pkg-config --libs zlib libprotobuf-c)
FUZZ_ALL_TARGETS := delta spool batch retry_after config
FUZZ_TARGETS ?= $(FUZZ_ALL_TARGETS)
# The part of the core the delta target reaches (gz.c holds the byte buffer, sysio.c what gz.c calls).
FUZZ_CORE_SRCS = $(addprefix $(FUZZ_ROOT)/csrc/,pprof.c pprofdec.c pbwire.c baseline.c profile.pb-c.c alloc.c errors.c gz.c sysio.c)
# The other targets link the whole core (config builds an agent).
FUZZ_ALL_SRCS = $(sort $(wildcard $(FUZZ_ROOT)/csrc/*.c))
FUZZ_ALL_LDLIBS = $(shell pkg-config --libs zlib libcurl libprotobuf-c) -lpthread
FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_ALL_TARGETS))
FUZZ_SEEDER := $(FUZZ_BUILD)/fuzz_seeds
FUZZ_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: fuzz fuzz-deps fuzz-build fuzz-clean fuzz-seeds $(addprefix fuzz-run-,$(FUZZ_ALL_TARGETS))

# clang with a libFuzzer runtime: checked by building a one-line fuzz target.
fuzz-deps:
	@mkdir -p $(FUZZ_BUILD)
	@probe=$(FUZZ_BUILD)/probe; \
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' > $$probe.c; \
	works() { $(FUZZ_CC) -fsanitize=fuzzer,address,undefined $$probe.c -o $$probe >/dev/null 2>&1; }; \
	if works; then exit 0; fi; \
	if ! command -v $(FUZZ_CC) >/dev/null; then \
		echo "fuzz: installing clang (apt-get)"; \
		$(FUZZ_SUDO) apt-get install -y clang || { $(FUZZ_SUDO) apt-get update && $(FUZZ_SUDO) apt-get install -y clang; }; \
	fi; \
	if works; then exit 0; fi; \
	v=$$($(FUZZ_CC) -dumpversion 2>/dev/null | cut -d. -f1); \
	echo "fuzz: $(FUZZ_CC) has no libFuzzer runtime; installing libclang-rt-$$v-dev"; \
	$(FUZZ_SUDO) apt-get install -y libclang-rt-$$v-dev || true; \
	works || { echo "fuzz: $(FUZZ_CC) cannot build a libFuzzer target (-fsanitize=fuzzer)"; exit 1; }

$(FUZZ_BUILD)/fuzz_delta: $(FUZZ_ROOT)/tests/fuzz/fuzz_delta.c $(FUZZ_CORE_SRCS) $(wildcard $(FUZZ_ROOT)/csrc/*.h) $(FUZZ_MK) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ROOT)/tests/fuzz/fuzz_delta.c $(FUZZ_CORE_SRCS) $(FUZZ_LDLIBS) -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_ROOT)/tests/fuzz/fuzz_%.c $(FUZZ_ROOT)/tests/fuzz/fuzz.h $(FUZZ_ALL_SRCS) $(wildcard $(FUZZ_ROOT)/csrc/*.h) $(FUZZ_MK) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags libcurl) $< $(FUZZ_ALL_SRCS) $(FUZZ_ALL_LDLIBS) -o $@

# The seed writer: the core's own code, under ASan, but no fuzzer.
$(FUZZ_SEEDER): $(FUZZ_ROOT)/tests/fuzz/fuzz_seeds.c $(FUZZ_ALL_SRCS) $(wildcard $(FUZZ_ROOT)/csrc/*.h) $(FUZZ_MK) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(subst fuzzer$(comma),,$(FUZZ_CFLAGS)) $(shell pkg-config --cflags libcurl) $< $(FUZZ_ALL_SRCS) $(FUZZ_ALL_LDLIBS) -o $@

fuzz-build: $(FUZZ_BINS) $(FUZZ_SEEDER)

# Seeds are copied into one flat folder per target (libFuzzer would read
# tests/testdata/gen and the READMEs too); new inputs go to build/fuzz/corpus/<target>.
fuzz-seeds: $(FUZZ_SEEDER)
	@rm -rf $(FUZZ_BUILD)/seeds && mkdir -p $(FUZZ_BUILD)/seeds/delta
	@ASAN_OPTIONS=detect_leaks=0 $(FUZZ_SEEDER) $(FUZZ_BUILD)/seeds
	@cp $(FUZZ_ROOT)/tests/testdata/*.pb $(FUZZ_BUILD)/seeds/delta/
	@for f in $(FUZZ_ROOT)/tests/fuzz/regressions/*; do \
		[ -f "$$f" ] || continue; \
		case "$$f" in *.md) ;; *) cp "$$f" $(FUZZ_BUILD)/seeds/delta/;; esac; done
	@for t in $(FUZZ_TARGETS); do [ "$$t" = delta ] && continue; mkdir -p $(FUZZ_BUILD)/seeds/$$t; \
		for f in $(FUZZ_ROOT)/tests/fuzz/regressions/$$t/*; do [ -f "$$f" ] && cp "$$f" $(FUZZ_BUILD)/seeds/$$t/; done; \
		true; done

# One run per target; `make -j2 fuzz` runs two at a time.
fuzz: $(addprefix fuzz-run-,$(FUZZ_TARGETS))

$(addprefix fuzz-run-,$(FUZZ_ALL_TARGETS)): fuzz-run-%: fuzz-build fuzz-seeds
	@t=$*; bin=$(FUZZ_BUILD)/fuzz_$$t; dict=$(FUZZ_ROOT)/tests/fuzz/$$t.dict; [ "$$t" = delta ] && dict=$(FUZZ_ROOT)/tests/fuzz/pprof.dict; \
	mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts/$$t; \
	echo "fuzz: $$t for $(FUZZ_SECONDS) s; corpus $(FUZZ_BUILD)/corpus/$$t, log $(FUZZ_BUILD)/$$t.log"; \
	(cd $(FUZZ_BUILD) && FUZZ_TESTDATA=$(FUZZ_ROOT)/tests/testdata ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$$bin -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 $$( [ -f $$dict ] && echo -dict=$$dict ) -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t/ $(FUZZ_FLAGS) \
		$(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/seeds/$$t) >$(FUZZ_BUILD)/$$t.log 2>&1; rc=$$?; \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_BUILD)/$$t.log | tail -n 1); \
	last=$$(grep -aE '^#[0-9]+' $(FUZZ_BUILD)/$$t.log | tail -n 1 | sed -n 's/.*\(cov: [0-9]* ft: [0-9]* corp: [^ ]*\).*/\1/p'); \
	if [ $$rc -ne 0 ]; then \
		tail -n 40 $(FUZZ_BUILD)/$$t.log; \
		echo "fuzz: $$t: FINDING (exit $$rc) after $${runs:-?} runs: see $(FUZZ_BUILD)/artifacts/$$t/; once fixed, copy the input into tests/fuzz/regressions/"; \
		exit $$rc; \
	fi; \
	echo "fuzz: $$t: $${runs:-?} runs in $(FUZZ_SECONDS) s, $$last, no finding"

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

ifeq ($(FUZZ_STANDALONE),1)
.DEFAULT_GOAL := fuzz
else
.DEFAULT_GOAL := $(FUZZ_SAVED_DEFAULT_GOAL)
endif
