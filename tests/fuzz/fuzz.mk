# tests/fuzz/fuzz.mk: libFuzzer on the pprof decoder and delta engine
# (tests/fuzz/fuzz_delta.c against csrc/pprof.c), under AddressSanitizer,
# UndefinedBehaviorSanitizer and LeakSanitizer.
#
#   make fuzz                     install clang if missing, build, fuzz for FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=600    a long run
#   make fuzz-build               build build/fuzz/fuzz_delta only
#   make fuzz-clean               remove build/fuzz (and the corpus grown there)
#
# Include it from the top-level Makefile (`include tests/fuzz/fuzz.mk`) or run
# it on its own (`make -f tests/fuzz/fuzz.mk fuzz`). It defines only FUZZ_*
# variables and fuzz* targets, finds the repository from its own path, and
# leaves the including Makefile's default goal alone.
#
# tests/fuzz/pprof.dict gives libFuzzer protobuf tags, varints at the ends of
# int64 and the sample type names the engine looks for.
#
# The corpus grows in build/fuzz/corpus and is kept between runs; each run
# also reads the seeds: the real profiles in tests/testdata/*.pb and the
# inputs in tests/fuzz/regressions/. A finding is written to
# build/fuzz/artifacts/ (crash-*, leak-*, timeout-*, oom-*) and fails the run.
# After fixing it, copy the file into tests/fuzz/regressions/: test_pprof.c
# runs every file there (make ctest).
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
# The decoder's arena grows by ARENA_CHUNK (1 MiB in the agent; csrc/pprof.c
# takes another size from -DPPROFIO_PPROF_ARENA_CHUNK). Under ASan a
# chunk over 128 KiB is an mmap and munmap per decode, which made the target
# 8x slower; fuzz builds use 64 KiB chunks (more chunks per profile, and a
# smaller allowance for small inputs: n * 16 + 4 chunks). FUZZ_ARENA_CHUNK=
# (empty) fuzzes the agent's size.
FUZZ_ARENA_CHUNK ?= 65536u
FUZZ_SANITIZE = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra $(FUZZ_SANITIZE) -I$(FUZZ_ROOT)/include \
	-DFUZZ_TESTDATA='"$(FUZZ_ROOT)/tests/testdata"' $(if $(FUZZ_ARENA_CHUNK),-DPPROFIO_PPROF_ARENA_CHUNK=$(FUZZ_ARENA_CHUNK)) $(shell pkg-config --cflags zlib libprotobuf-c)
FUZZ_LDLIBS = $(shell pkg-config --libs zlib libprotobuf-c)
# The part of the core the target reaches (gz.c holds the byte buffer, sysio.c what gz.c calls).
FUZZ_CORE_SRCS = $(addprefix $(FUZZ_ROOT)/csrc/,pprof.c pbwire.c baseline.c profile.pb-c.c alloc.c errors.c gz.c sysio.c)
FUZZ_BIN := $(FUZZ_BUILD)/fuzz_delta
FUZZ_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: fuzz fuzz-deps fuzz-build fuzz-clean

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

$(FUZZ_BIN): $(FUZZ_ROOT)/tests/fuzz/fuzz_delta.c $(FUZZ_CORE_SRCS) $(wildcard $(FUZZ_ROOT)/csrc/*.h) $(FUZZ_MK) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ROOT)/tests/fuzz/fuzz_delta.c $(FUZZ_CORE_SRCS) $(FUZZ_LDLIBS) -o $@

fuzz-build: $(FUZZ_BIN)

# Seeds are copied into one flat folder (libFuzzer would read tests/testdata/gen
# and the READMEs too); new inputs go to build/fuzz/corpus.
fuzz: fuzz-build
	@rm -rf $(FUZZ_BUILD)/seeds && mkdir -p $(FUZZ_BUILD)/seeds $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts
	@cp $(FUZZ_ROOT)/tests/testdata/*.pb $(FUZZ_BUILD)/seeds/
	@for f in $(FUZZ_ROOT)/tests/fuzz/regressions/*; do \
		case "$$f" in *.md|*'*') ;; *) cp "$$f" $(FUZZ_BUILD)/seeds/;; esac; done
	@echo "fuzz: $(FUZZ_BIN) for $(FUZZ_SECONDS) s; corpus $(FUZZ_BUILD)/corpus"
	@cd $(FUZZ_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -dict=$(FUZZ_ROOT)/tests/fuzz/pprof.dict -artifact_prefix=$(FUZZ_BUILD)/artifacts/ $(FUZZ_FLAGS) \
		$(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seeds; rc=$$?; \
	if [ $$rc -ne 0 ]; then \
		echo "fuzz: FINDING (exit $$rc): see $(FUZZ_BUILD)/artifacts/; once fixed, copy the input into tests/fuzz/regressions/"; \
		exit $$rc; \
	fi; \
	echo "fuzz: no finding in $(FUZZ_SECONDS) s"

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

ifeq ($(FUZZ_STANDALONE),1)
.DEFAULT_GOAL := fuzz
else
.DEFAULT_GOAL := $(FUZZ_SAVED_DEFAULT_GOAL)
endif
