/*
 * output.h: the output stage and its thread. It takes each sealed cycle's
 * profiles from the intake, turns cumulative ones into the window's share
 * (pprof.h) and runs the goroutine leak rule (leak.h) on goroutine
 * snapshots, writes each profile under output_dir (store.h), and wraps the
 * cycle in one batch (batch.h) that it pushes to delivery. With both on,
 * a large profile is deflated once: its file is made of the batch's own
 * deflate segment. Everything it has to say goes to the ledger.
 */
#ifndef PPROFIO_OUTPUT_H
#define PPROFIO_OUTPUT_H

#include "delivery.h"
#include "intake.h"
#include "ledger.h"
#include "pprofio.h"

typedef struct pprofio_output pprofio_output;

/* pprofio_output_new copies what it needs of cfg; delivery NULL: no upload. */
int pprofio_output_new(const pprofio_config *cfg, pprofio_intake *intake, pprofio_delivery *delivery,
                       pprofio_ledger *ledger, pprofio_output **out);

/* pprofio_output_free releases it (after close); NULL is fine. */
void pprofio_output_free(pprofio_output *o);

/* pprofio_output_start starts the output thread. */
int pprofio_output_start(pprofio_output *o);

/* pprofio_output_final marks the final cycle: its first write error is what close returns. */
void pprofio_output_final(pprofio_output *o);

/*
 * pprofio_output_close joins the thread, which ends once the intake is
 * sealed whole and empty (pprofio_intake_seal_all), and returns the first
 * write error of the final cycle in err.
 */
int pprofio_output_close(pprofio_output *o, pprofio_error *err);

#endif
