//go:build ignore

/* leak.c: the goroutine leak rule (see leak.h). */
#include "leak.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

void pprofio_leak_init(pprofio_leak *l, int windows, int min_growth_pct, int min_growth) {
    *l = (pprofio_leak){0};
    l->windows = windows;
    l->min_growth_pct = min_growth_pct;
    l->min_growth = min_growth;
}

void pprofio_leak_free(pprofio_leak *l) {
    pprofio_free(l->prev);
    pprofio_free(l->base);
    l->prev = l->base = NULL;
}

/* growth_message lists the stacks whose counts grew most since base. */
static void growth_message(const pprofio_stack_count *base, size_t nb, const pprofio_stack_count *cur, size_t nc,
                           char *msg, size_t cap) {
    struct {
        int64_t growth;
        size_t i;
    } top[3] = {{0, 0}, {0, 0}, {0, 0}};
    size_t j = 0;
    for (size_t i = 0; i < nc; i++) {
        while (j < nb && base[j].key < cur[i].key)
            j++;
        int64_t g = cur[i].count - (j < nb && base[j].key == cur[i].key ? base[j].count : 0);
        for (int k = 0; k < 3; k++)
            if (g > top[k].growth) {
                memmove(&top[k + 1], &top[k], (size_t)(2 - k) * sizeof top[0]);
                top[k].growth = g;
                top[k].i = i;
                break;
            }
    }
    size_t used = strlen(msg);
    for (int k = 0; k < 3 && top[k].growth > 0 && used < cap; k++) {
        int w = snprintf(msg + used, cap - used, "%s%s (+%lld)", k ? "; " : " Top growing stacks: ",
                         cur[top[k].i].desc, (long long)top[k].growth);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* track updates the streak: growth extends it, anything else ends the episode. */
static void track(pprofio_leak *l, int64_t total) {
    if (l->have_prev && total > l->prev_total) {
        if (l->streak++ == 0) { /* growth begins: remember where from */
            pprofio_free(l->base);
            l->base = l->prev;
            l->base_n = l->prev_n;
            l->base_total = l->prev_total;
            l->prev = NULL;
        }
    } else {
        l->streak = 0;
        l->episode = 0; /* the episode is over: a new one may fire again */
    }
}

int pprofio_leak_observe(pprofio_leak *l, pprofio_stack_count *cur, size_t n, int64_t total,
                         pprofio_leak_alert *alert) {
    track(l, total);
    int64_t growth = total - l->base_total;
    int fire = l->windows > 0 && l->streak >= l->windows && !l->episode && growth >= l->min_growth &&
               growth * 100 >= (int64_t)l->min_growth_pct * l->base_total;
    if (fire) {
        l->episode = 1;
        alert->count = total;
        alert->growth = growth;
        alert->windows = l->streak;
        snprintf(alert->message, sizeof alert->message, "goroutines grew from %lld to %lld over %d cycles.",
                 (long long)l->base_total, (long long)total, l->streak);
        growth_message(l->base, l->base_n, cur, n, alert->message, sizeof alert->message);
    }
    pprofio_free(l->prev);
    l->prev = cur;
    l->prev_n = n;
    l->prev_total = total;
    l->have_prev = 1;
    return fire;
}
