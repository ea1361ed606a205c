# tests/c/ctest.mk: the Criterion tests of the C core, under AddressSanitizer,
# LeakSanitizer and UndefinedBehaviorSanitizer.
#
#   make ctest          build every tests/c/test_*.c against csrc/*.c and run it
#   make ctest-clean    remove build/ctest
#
# Include it from the top-level Makefile (`include tests/c/ctest.mk`) or run it on
# its own (`make -f tests/c/ctest.mk ctest`). It defines only CTEST_* variables and
# ctest* targets, finds the repository from its own path, and leaves the
# including Makefile's default goal alone.
#
# Each csrc/*.c is compiled on its own into build/ctest/obj/ (its first line,
# `//go:build ignore`, is a C comment), and each test file links them into
# one binary in build/ctest/. libcurl is not linked: the core loads
# libcurl.so.4 at run time (csrc/curl_loader.c), in the tests as in a Go
# program, so only its headers are needed here. Criterion runs every test
# in its own process; LTest (tests/c/helpers.h) makes each test ask
# LeakSanitizer for leaks when it ends, so a leak fails that test.
#
# LeakSanitizer needs to stop the process's threads the way a debugger does
# (ptrace). Some sandboxes forbid that; there LSan itself dies with "LeakSanitizer
# has encountered a fatal error" and every test would crash. `make ctest`
# therefore first runs a tiny program that leaks on purpose: if LSan reports
# the leak, the tests run with detect_leaks=1; if not, it says so loudly and
# runs them with detect_leaks=0 (still under ASan and UBSan). Set
# CTEST_REQUIRE_LSAN=1 to make that case an error instead. The check at exit
# is off (leak_check_at_exit=0): LTest has already checked each test, and
# Criterion would ignore an at-exit report anyway; after a failed assertion
# it would only list the buffers that the abandoned test did not free.

CTEST_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)
CTEST_MK := $(lastword $(MAKEFILE_LIST))
CTEST_STANDALONE := $(if $(filter 1,$(words $(MAKEFILE_LIST))),1,)

CTEST_ROOT := $(patsubst %/,%,$(abspath $(dir $(CTEST_MK))/../..))
CTEST_BUILD := $(CTEST_ROOT)/build/ctest

CTEST_CC ?= cc
CTEST_JOBS ?= 2
CTEST_REQUIRE_LSAN ?= 0
CTEST_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CTEST_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror $(CTEST_SANITIZE) \
	-I$(CTEST_ROOT)/include $(shell pkg-config --cflags zlib libcurl libprotobuf-c criterion)
CTEST_LDFLAGS = $(CTEST_SANITIZE)
CTEST_LDLIBS = $(shell pkg-config --libs zlib libprotobuf-c criterion) -ldl -lpthread
CTEST_ASAN_OPTIONS = leak_check_at_exit=0:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1
CTEST_UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1

CTEST_CORE_SRCS := $(sort $(wildcard $(CTEST_ROOT)/csrc/*.c))
CTEST_CORE_OBJS := $(patsubst $(CTEST_ROOT)/csrc/%.c,$(CTEST_BUILD)/obj/%.o,$(CTEST_CORE_SRCS))
CTEST_SRCS := $(sort $(wildcard $(CTEST_ROOT)/tests/c/test_*.c))
CTEST_BINS := $(patsubst $(CTEST_ROOT)/tests/c/%.c,$(CTEST_BUILD)/%,$(CTEST_SRCS))
CTEST_PROBE := $(CTEST_BUILD)/lsan-probe
# A libcurl too old for the core (tests/c/old_curl.c), for test_curl_loader.
CTEST_OLD_CURL := $(CTEST_BUILD)/libcurl-7.58.so

.PHONY: ctest ctest-build ctest-clean

ctest-build: $(CTEST_BINS) $(CTEST_PROBE) $(CTEST_OLD_CURL)

# Every object and binary also depends on this file, so a flag change rebuilds.
$(CTEST_CORE_OBJS): $(CTEST_BUILD)/obj/%.o: $(CTEST_ROOT)/csrc/%.c $(CTEST_MK)
	@mkdir -p $(@D)
	$(CTEST_CC) $(CTEST_CFLAGS) -MMD -MP -c $< -o $@

$(CTEST_BINS): $(CTEST_BUILD)/%: $(CTEST_ROOT)/tests/c/%.c $(CTEST_CORE_OBJS) $(CTEST_MK)
	@mkdir -p $(@D)
	$(CTEST_CC) $(CTEST_CFLAGS) -MMD -MP $< $(CTEST_CORE_OBJS) $(CTEST_LDFLAGS) $(CTEST_LDLIBS) -o $@

$(CTEST_OLD_CURL): $(CTEST_ROOT)/tests/c/old_curl.c $(CTEST_MK)
	@mkdir -p $(@D)
	$(CTEST_CC) -shared -fPIC -O1 $(shell pkg-config --cflags libcurl) $< -o $@

# A program that leaks 4242 bytes: LeakSanitizer works here if it says so.
$(CTEST_PROBE): $(CTEST_MK)
	@mkdir -p $(@D)
	@printf '%s\n' '#include <stdlib.h>' 'void *volatile keep;' \
		'int main(void) { keep = malloc(4242); keep = 0; return 0; }' > $@.c
	$(CTEST_CC) -g -O0 -fsanitize=address $@.c -o $@

# Runs every test binary even after one fails, then prints one closing
# line, "ctest: N passed, N failed", and fails if any test or binary did.
ctest: ctest-build
	@leaks=1; \
	if ASAN_OPTIONS=detect_leaks=1:exitcode=23 $(CTEST_PROBE) >$(CTEST_PROBE).out 2>&1; then probe=0; else probe=$$?; fi; \
	if [ $$probe -ne 23 ] || ! grep -q 'detected memory leaks' $(CTEST_PROBE).out; then \
		leaks=0; \
		echo "ctest: WARNING: LeakSanitizer cannot run here (probe exit $$probe):"; \
		sed 's/^/ctest:   /' $(CTEST_PROBE).out | head -n 5; \
		if [ "$(CTEST_REQUIRE_LSAN)" = 1 ]; then echo "ctest: CTEST_REQUIRE_LSAN=1: giving up"; exit 1; fi; \
		echo "ctest: WARNING: running with detect_leaks=0; leaks will NOT be caught"; \
	fi; \
	passed=0; failed=0; status=0; \
	for t in $(CTEST_BINS); do \
		name=$${t##*/}; \
		echo "ctest: $$name"; \
		ASAN_OPTIONS=detect_leaks=$$leaks:$(CTEST_ASAN_OPTIONS) UBSAN_OPTIONS=$(CTEST_UBSAN_OPTIONS) \
			$$t --jobs $(CTEST_JOBS) >$$t.log 2>&1; rc=$$?; \
		cat $$t.log; \
		line=$$(grep 'Synthesis: Tested:' $$t.log | tail -n 1); \
		p=$$(echo "$$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p'); \
		f=$$(echo "$$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p'); \
		c=$$(echo "$$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p'); \
		bad=$$(( $${f:-0} + $${c:-0} )); \
		if [ $$rc -ne 0 ]; then \
			status=1; \
			if [ $$bad -eq 0 ]; then bad=1; fi; \
			echo "ctest: $$name FAILED (exit $$rc)"; \
		fi; \
		passed=$$((passed + $${p:-0})); failed=$$((failed + bad)); \
	done; \
	echo "ctest: $$passed passed, $$failed failed"; \
	exit $$status

ctest-clean:
	rm -rf $(CTEST_BUILD)

-include $(wildcard $(CTEST_BUILD)/*.d $(CTEST_BUILD)/obj/*.d)

ifeq ($(CTEST_STANDALONE),1)
.DEFAULT_GOAL := ctest
else
.DEFAULT_GOAL := $(CTEST_SAVED_DEFAULT_GOAL)
endif
