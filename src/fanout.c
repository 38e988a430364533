/*
 * fanout.c - gt_fanout: the recipients of one message, grouped by worker.
 *
 * The members come from gt__scan (scan.c), a fanout-set chunk at a time; for
 * a filter requiring GT_ACTIVE only the guild's fanout set is read. Each
 * recipient is appended to its worker's batch; a full batch
 * (GT_FANOUT_BATCH) goes to the callback at once, the rest when the scan
 * ends, in order of each worker's first appearance.
 *
 * Finding a worker's batch is on the per-recipient path, so worker ids below
 * SMALL_WORKERS (the usual case: a host has tens of worker processes) index
 * a table directly; larger ids go through a small open-addressing map.
 *
 * Memory: one batch per distinct worker, from per-thread scratch at the
 * outermost fanout of a thread (a callback that starts another fanout gets
 * heap memory), so a steady fanout loop allocates nothing.
 */
#include "internal.h"

#include <stdlib.h>

#define SMALL_WORKERS 4096u

struct fan {
    gt_fanout_fn fn;
    void *ctx;
    uint32_t cap, count;   /* batches allocated, in use */
    uint32_t *worker;      /* [cap] worker of batch i */
    uint32_t *n;           /* [cap] recipients pending in batch i */
    gt_recipient *buf;     /* [cap][GT_FANOUT_BATCH] */
    uint32_t *map;         /* [2 * cap] large worker -> batch + 1 */
    uint16_t small[SMALL_WORKERS]; /* worker -> batch + 1 */
    void *mem;
    bool nested; /* a fanout inside a fanout callback: no scratch */
    bool own;    /* mem is ours to free (heap), not thread scratch */
    uint64_t delivered; /* recipients selected (for the statistics) */
};

static _Thread_local int fan_depth;

static size_t fan_bytes(uint32_t cap) {
    return (size_t)cap * (GT_FANOUT_BATCH * sizeof(gt_recipient) +
                          4 * sizeof(uint32_t));
}

/* (Re)size to cap batches, keeping the first f->count. Only the first,
 * outermost allocation uses thread scratch; growth uses the heap. */
static int fan_resize(struct fan *f, uint32_t cap) {
    bool own = f->nested || f->cap != 0;
    void *mem = own ? malloc(fan_bytes(cap)) : gt__scratch(fan_bytes(cap), 2);
    if (!mem)
        return GT_ENOMEM;
    gt_recipient *buf = mem;
    uint32_t *worker = (uint32_t *)(buf + (size_t)cap * GT_FANOUT_BATCH);
    uint32_t *n = worker + cap;
    uint32_t *map = n + cap;
    memset(map, 0, 2 * cap * sizeof *map);
    for (uint32_t i = 0; i < f->count; i++) {
        memcpy(buf + (size_t)i * GT_FANOUT_BATCH,
               f->buf + (size_t)i * GT_FANOUT_BATCH, f->n[i] * sizeof *buf);
        worker[i] = f->worker[i];
        n[i] = f->n[i];
        if (worker[i] >= SMALL_WORKERS) {
            uint32_t j = (worker[i] * 0x9E3779B1u) & (2 * cap - 1);
            while (map[j])
                j = (j + 1) & (2 * cap - 1);
            map[j] = i + 1;
        }
    }
    if (f->own)
        free(f->mem);
    f->mem = mem;
    f->own = own;
    f->buf = buf;
    f->worker = worker;
    f->n = n;
    f->map = map;
    f->cap = cap;
    return 0;
}

/* The batch of a worker that is not direct-mapped to one yet (fan_visit
 * looks there first): found in the map of large ids, or made. */
static int batch_of(struct fan *f, uint32_t worker, uint32_t *out) {
    uint32_t *slot = NULL;
    if (worker >= SMALL_WORKERS) {
        uint32_t mask = 2 * f->cap - 1, j = (worker * 0x9E3779B1u) & mask;
        while (f->map[j]) {
            if (f->worker[f->map[j] - 1] == worker) {
                *out = f->map[j] - 1;
                return 0;
            }
            j = (j + 1) & mask;
        }
        slot = &f->map[j];
    }
    if (f->count == f->cap) {
        int r = fan_resize(f, f->cap * 2);
        if (r)
            return r;
        if (worker >= SMALL_WORKERS)
            return batch_of(f, worker, out); /* the map was rebuilt */
    }
    uint32_t b = f->count++;
    f->worker[b] = worker;
    f->n[b] = 0;
    if (worker < SMALL_WORKERS)
        f->small[worker] = (uint16_t)(b + 1);
    else
        *slot = b + 1;
    *out = b;
    return 0;
}

static int fan_visit(void *ctx, const struct gt_hit *h, size_t n) {
    struct fan *f = ctx;
    f->delivered += n;
    /* kept in registers: the stores below would make the compiler reload
     * them through f; only a new batch can move them (fan_resize) */
    gt_recipient *buf = f->buf;
    uint32_t *pending = f->n;
    for (size_t i = 0; i < n; i++) {
        uint32_t b, w = h[i].worker;
        if (w < SMALL_WORKERS && f->small[w]) {
            b = f->small[w] - 1u;
        } else {
            int r = batch_of(f, w, &b);
            if (r)
                return r;
            buf = f->buf;
            pending = f->n;
        }
        gt_recipient *dst = buf + (size_t)b * GT_FANOUT_BATCH + pending[b];
        dst->session_id = h[i].session_id;
        dst->user_id = h[i].user_id;
        if (++pending[b] == GT_FANOUT_BATCH) {
            pending[b] = 0;
            int r = f->fn(f->ctx, w, buf + (size_t)b * GT_FANOUT_BATCH,
                          GT_FANOUT_BATCH);
            if (r)
                return r;
        }
    }
    return 0;
}

GT_API int gt_fanout(gt_table *t, uint64_t guild_id, const gt_filter *filter,
                     uint32_t part, uint32_t nparts, gt_fanout_fn fn,
                     void *ctx) {
    if (!t || !fn || (nparts > 1 && part >= nparts))
        return GT_EINVAL;
    struct fan fs, *f = &fs;
    memset(f, 0, sizeof *f);
    f->fn = fn;
    f->ctx = ctx;
    f->nested = fan_depth > 0;
    int r = fan_resize(f, 16);
    if (r)
        return r;
    struct gt_scan sc = {.part = part, .nparts = nparts, .fn = fan_visit,
                         .ctx = f, .fanout = true};
    gt__filter_prep(filter, &sc.filt);
    uint64_t start = gt__stat_fanout_start();
    fan_depth++;
    r = gt__scan(t, guild_id, &sc);
    for (uint32_t b = 0; r == 0 && b < f->count; b++)
        if (f->n[b])
            r = fn(ctx, f->worker[b], f->buf + (size_t)b * GT_FANOUT_BATCH,
                   f->n[b]);
    fan_depth--;
    uint32_t slot; /* the slot the scan pinned: no slot, no scan */
    if (r != GT_ENOENT && gt__slot(t, &slot) == 0)
        gt__stat_fanout_end(t, slot, start, f->delivered);
    if (f->own)
        free(f->mem);
    return r;
}
