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
#include "../../csrc/random.c"
#include "../../csrc/event.c"
#include "../../csrc/ledger.c"
#include "../../csrc/scheduler.c"
#include "../../csrc/buffer.c"
#include "../../csrc/store.c"
#include "../../csrc/ingest.pb-c.c"
#include "../../csrc/profile.pb-c.c"
#include "../../csrc/pprof.c"
#include "../../csrc/batch.c"
#include "../../csrc/curl_loader.c"
#include "../../csrc/upload.c"
#include "../../csrc/spool.c"
#include "../../csrc/retry.c"
#include "../../csrc/leak.c"
#include "../../csrc/config.c"
#include "../../csrc/intake.c"
#include "../../csrc/delivery.c"
#include "../../csrc/output.c"
#include "../../csrc/agent.c"
