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
/* A batch's bytes; batches are aligned to them, so the place after a
 * batch's last one is the first address so aligned: that is how a write
 * finds its batch full, with no count kept. */
#define BATCH_BYTES (GT_FANOUT_BATCH * sizeof(gt_recipient))
_Static_assert((BATCH_BYTES & (BATCH_BYTES - 1)) == 0, "batch alignment");
/* a hit holds the recipient's two words in gt_recipient's order */
_Static_assert(offsetof(struct gt_hit, user_id) -
                       offsetof(struct gt_hit, session_id) ==
                   offsetof(gt_recipient, user_id) -
                       offsetof(gt_recipient, session_id) &&
               sizeof(gt_recipient) == 16,
               "recipient words in a hit");

struct fan {
    gt_fanout_fn fn;
    void *ctx;
    uint32_t cap, count;   /* batches allocated, in use */
    gt_recipient *buf;     /* [cap][GT_FANOUT_BATCH], BATCH_BYTES-aligned */
    gt_recipient **at;     /* [cap] the next free place in batch i */
    uint32_t *worker;      /* [cap] worker of batch i */
    uint32_t *map;         /* [2 * cap] large worker -> batch + 1 */
    uint16_t small[SMALL_WORKERS]; /* worker -> batch + 1 */
    void *mem;
    bool nested; /* a fanout inside a fanout callback: no scratch */
    bool own;    /* mem is ours to free (heap), not thread scratch */
    uint64_t delivered; /* recipients selected (for the statistics) */
};

static _Thread_local int fan_depth;

static size_t fan_bytes(uint32_t cap) {
    return BATCH_BYTES + (size_t)cap * (BATCH_BYTES + sizeof(gt_recipient *) +
                                        3 * sizeof(uint32_t));
}

/* Batch i of the batches at buf. */
static gt_recipient *batch_at(gt_recipient *buf, uint32_t i) {
    return buf + (size_t)i * GT_FANOUT_BATCH;
}

/* Recipients waiting in batch i. */
static uint32_t pending(const struct fan *f, uint32_t i) {
    return (uint32_t)(f->at[i] - batch_at(f->buf, i));
}

/* (Re)size to cap batches, keeping the first f->count. Only the first,
 * outermost allocation uses thread scratch; growth uses the heap. */
static int fan_resize(struct fan *f, uint32_t cap) {
    bool own = f->nested || f->cap != 0;
    void *mem = own ? malloc(fan_bytes(cap)) : gt__scratch(fan_bytes(cap), 2);
    if (!mem)
        return GT_ENOMEM;
    gt_recipient *buf =
        (gt_recipient *)gt_align_up((uintptr_t)mem, BATCH_BYTES);
    gt_recipient **at = (gt_recipient **)batch_at(buf, cap);
    uint32_t *worker = (uint32_t *)(at + cap);
    uint32_t *map = worker + cap;
    memset(map, 0, 2 * cap * sizeof *map);
    for (uint32_t i = 0; i < f->count; i++) {
        gt_recipient *b = batch_at(buf, i);
        uint32_t n = pending(f, i);
        memcpy(b, batch_at(f->buf, i), n * sizeof *b);
        at[i] = b + n;
        worker[i] = f->worker[i];
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
    f->at = at;
    f->worker = worker;
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
    f->at[b] = batch_at(f->buf, b);
    if (worker < SMALL_WORKERS)
        f->small[worker] = (uint16_t)(b + 1);
    else
        *slot = b + 1;
    *out = b;
    return 0;
}

/* Per recipient: find its worker's batch, copy the pair in, and hand the
 * batch over when that filled it. callgrind: 20 instructions a recipient;
 * 26 when each batch kept a count of its recipients. */
static int fan_visit(void *ctx, const struct gt_hit *h, size_t n) {
    struct fan *f = ctx;
    f->delivered += n;
    /* kept in a register: the stores below would make the compiler reload
     * it through f; only a new batch can move it (fan_resize) */
    gt_recipient **at = f->at;
    for (size_t i = 0; i < n; i++) {
        uint32_t b, w = h[i].worker;
        if (w < SMALL_WORKERS && f->small[w]) {
            b = f->small[w] - 1u;
        } else {
            int r = batch_of(f, w, &b);
            if (r)
                return r;
            at = f->at;
        }
        gt_recipient *dst = at[b];
        memcpy(dst, &h[i].session_id, sizeof *dst);
        at[b] = ++dst;
        if (((uintptr_t)dst & (BATCH_BYTES - 1)) == 0) { /* full */
            at[b] = dst -= GT_FANOUT_BATCH;
            int r = f->fn(f->ctx, w, dst, GT_FANOUT_BATCH);
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
    for (uint32_t b = 0; r == 0 && b < f->count; b++) {
        uint32_t n = pending(f, b);
        if (n)
            r = fn(ctx, f->worker[b], batch_at(f->buf, b), n);
    }
    fan_depth--;
    uint32_t slot; /* the slot the scan pinned: no slot, no scan */
    if (r != GT_ENOENT && gt__slot(t, &slot) == 0)
        gt__stat_fanout_end(t, slot, start, f->delivered);
    if (f->own)
        free(f->mem);
    return r;
}
