/*
 * intake.h: profiles on their way in, and the memory they hold. The Go
 * collector streams each profile through a writer (pprofio_profile_*),
 * which inflates it into C memory; every byte of that memory is reserved
 * in the memory buffer (buffer.h, MaxBufferBytes) before it is allocated,
 * by a plain call from here, never by a callback. A profile is queued when
 * whole, and handed to the output stage once its cycle is sealed; the
 * output stage gives its bytes back when it is done with it. Drops and
 * evictions are recorded in the ledger. Locked inside: the collector and
 * the output thread use it at once.
 */
#ifndef PPROFIO_INTAKE_H
#define PPROFIO_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "ledger.h"
#include "pprofio.h"

typedef struct pprofio_intake pprofio_intake;

/* pprofio_intake_new holds at most max_bytes of profile data. */
int pprofio_intake_new(int64_t max_bytes, pprofio_ledger *ledger, pprofio_intake **out);

/* pprofio_intake_free frees every profile still held; NULL is fine. */
void pprofio_intake_free(pprofio_intake *in);

/* The writer side (the collector): see pprofio_profile_begin_ex in pprofio.h. */
int pprofio_intake_begin(pprofio_intake *in, int type, int64_t cycle, int64_t start_ns, int flags,
                         pprofio_profile_writer **out);
int pprofio_intake_write(pprofio_profile_writer *w, const void *p, size_t len);
int pprofio_intake_finish(pprofio_profile_writer *w, int ok, int64_t end_ns);
/* pprofio_intake_attach_spans gives the writer's profile its spans cycle (owned from here). */
void pprofio_intake_attach_spans(pprofio_profile_writer *w, struct pprofio_spans_cycle *c);

/* pprofio_intake_seal makes the profiles of `cycle` and before ready for output. */
void pprofio_intake_seal(pprofio_intake *in, int64_t cycle);

/* pprofio_intake_seal_all makes everything ready; take returns 0 once all is taken. */
void pprofio_intake_seal_all(pprofio_intake *in);

/*
 * pprofio_intake_take waits for sealed profiles and moves up to max of
 * them, all of one cycle, oldest first, into ps. It returns 0 only after
 * pprofio_intake_seal_all, when nothing is left.
 */
size_t pprofio_intake_take(pprofio_intake *in, pprofio_profile **ps, size_t max);

/* pprofio_intake_replace swaps p's bytes for *raw (left empty), keeping the books. */
void pprofio_intake_replace(pprofio_intake *in, pprofio_profile *p, pprofio_bytes *raw);

/* pprofio_intake_done frees a taken profile and gives its bytes back. */
void pprofio_intake_done(pprofio_intake *in, pprofio_profile *p);

/* pprofio_intake_held reports the bytes held now and the most ever held. */
void pprofio_intake_held(pprofio_intake *in, int64_t *now, int64_t *peak);

#endif
