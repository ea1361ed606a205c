//go:build cgo

/*
 * core.c: the C core, compiled as one translation unit by cgo. The sources
 * live in csrc/ (see csrc/csrc.go for why they are included from here).
 */
#include "../../csrc/alloc.c"
#include "../../csrc/clock.c"
#include "../../csrc/errors.c"
#include "../../csrc/sysio.c"
#include "../../csrc/gz.c"
#include "../../csrc/scheduler.c"
#include "../../csrc/hist.c"
#include "../../csrc/spans.c"
#include "../../csrc/spool.c"
#include "../../csrc/store.c"
#include "../../csrc/ingest.pb-c.c"
#include "../../csrc/profile.pb-c.c"
#include "../../csrc/pbwire.c"
#include "../../csrc/baseline.c"
#include "../../csrc/pprof.c"
#include "../../csrc/batch.c"
#include "../../csrc/curl_loader.c"
#include "../../csrc/upload.c"
#include "../../csrc/queue.c"
#include "../../csrc/pyroscope_types.pb-c.c"
#include "../../csrc/pyroscope_push.pb-c.c"
#include "../../csrc/pyroscope.c"
#include "../../csrc/agent.c"
