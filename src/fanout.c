/*
 * fanout.c - gt_fanout: the recipients of one message, grouped by worker.
 *
 * For a filter requiring GT_ACTIVE only the guild's fanout set is read, and
 * gt__scan (scan.c) hands it over a chunk at a time (struct gt_sink): each
 * passing entry is copied straight into its worker's batch while the
 * chunk's seqlock is open. If the seqlock check then fails, that chunk's
 * entries are taken out again (the batch of each is noted); if it holds,
 * the batches the chunk filled (GT_FANOUT_BATCH) go to the callback. So
 * only a validated copy is ever delivered, and each batch keeps room for a
 * chunk past its GT_FANOUT_BATCH, moved to its start after delivery. The
 * rest goes when the scan ends, in order of each worker's first
 * appearance. A filter that needs records (roles), or does not require
 * GT_ACTIVE, is read from them: its members come one at a time, checked
 * already, through fan_visit, into the same batches.
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
/* A batch's bytes, and the room of each: twice that, so that a chunk's
 * entries fit past a full batch until the chunk is validated. Batches are
 * aligned to their room, so a write finds its batch full by its address,
 * with no count kept. */
#define BATCH_BYTES (GT_FANOUT_BATCH * sizeof(gt_recipient))
#define ROOM_BYTES (2 * BATCH_BYTES)
_Static_assert((BATCH_BYTES & (BATCH_BYTES - 1)) == 0, "batch alignment");
_Static_assert(GT_CHUNK_ENTRIES <= GT_FANOUT_BATCH,
               "a chunk fills a batch at most once");

struct fan {
    gt_fanout_fn fn;
    void *ctx;
    uint32_t cap, count;   /* batches allocated, in use */
    gt_recipient *buf;     /* [cap] rooms of ROOM_BYTES, so aligned */
    gt_recipient **at;     /* [cap] the next free place in batch i */
    uint32_t *worker;      /* [cap] worker of batch i */
    uint32_t *map;         /* [2 * cap] large worker -> batch + 1 */
    uint16_t small[SMALL_WORKERS]; /* worker -> batch + 1 */
    void *mem;
    bool nested; /* a fanout inside a fanout callback: no scratch */
    bool own;    /* mem is ours to free (heap), not thread scratch */
    uint64_t delivered; /* recipients selected (for the statistics) */
    /* since the last fan_keep: the batch of each recipient put, and the
     * batches that filled */
    uint32_t nput, nfull;
    uint32_t put[GT_CHUNK_ENTRIES], full[GT_CHUNK_ENTRIES];
};

static _Thread_local int fan_depth;

static size_t fan_bytes(uint32_t cap) {
    return ROOM_BYTES + (size_t)cap * (ROOM_BYTES + sizeof(gt_recipient *) +
                                       3 * sizeof(uint32_t));
}

/* Batch i of the batches at buf. */
static gt_recipient *batch_at(gt_recipient *buf, uint32_t i) {
    return buf + (size_t)i * (ROOM_BYTES / sizeof(gt_recipient));
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
        (gt_recipient *)gt_align_up((uintptr_t)mem, ROOM_BYTES);
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

/* The batch of a worker that is not direct-mapped to one yet (fan_place
 * looks there first): found in the map of large ids, or made. Returns the
 * batch, or GT_ENOMEM (< 0). */
static int64_t batch_of(struct fan *f, uint32_t worker) {
    uint32_t *slot = NULL;
    if (worker >= SMALL_WORKERS) {
        uint32_t mask = 2 * f->cap - 1, j = (worker * 0x9E3779B1u) & mask;
        while (f->map[j]) {
            if (f->worker[f->map[j] - 1] == worker)
                return f->map[j] - 1;
            j = (j + 1) & mask;
        }
        slot = &f->map[j];
    }
    if (f->count == f->cap) {
        int r = fan_resize(f, f->cap * 2);
        if (r)
            return r;
        if (worker >= SMALL_WORKERS)
            return batch_of(f, worker); /* the map was rebuilt */
    }
    uint32_t b = f->count++;
    f->worker[b] = worker;
    f->at[b] = batch_at(f->buf, b);
    if (worker < SMALL_WORKERS)
        f->small[worker] = (uint16_t)(b + 1);
    else
        *slot = b + 1;
    return b;
}

/* What fan_place changes, kept in registers by its callers: f->at (the
 * stores into batches would otherwise make the compiler reload it through
 * f; only a new batch moves it, fan_resize) and the counts of f->put and
 * f->full, which go back to f when the caller is done. */
struct putter {
    gt_recipient **at;
    uint32_t nput, nfull;
};

/* Per recipient: find worker w's batch, take its next place for the
 * recipient (*dst), and note the batch (to take the recipient out again if
 * its chunk was torn), and the batch again if the recipient fills it.
 * Returns 0 or GT_ENOMEM. */
static inline __attribute__((always_inline)) int
fan_place(struct fan *f, struct putter *p, uint32_t w, gt_recipient **dst) {
    uint32_t b;
    if (w < SMALL_WORKERS && f->small[w]) {
        b = f->small[w] - 1u;
    } else {
        int64_t r = batch_of(f, w);
        if (r < 0)
            return (int)r;
        b = (uint32_t)r;
        p->at = f->at;
    }
    *dst = p->at[b]++;
    f->put[p->nput++] = b;
    if (((uintptr_t)p->at[b] & (ROOM_BYTES - 1)) == BATCH_BYTES)
        f->full[p->nfull++] = b;
    return 0;
}

/* The recipients put since the last call stand (ok): the batches they
 * filled go to the callback, and what a chunk put past a full batch moves
 * to its start. Or they are dropped (!ok): each is taken out again. */
static int fan_keep(void *ctx, bool ok) {
    struct fan *f = ctx;
    uint32_t nput = f->nput, nfull = f->nfull;
    f->nput = f->nfull = 0;
    if (!ok) {
        for (uint32_t i = 0; i < nput; i++)
            f->at[f->put[i]]--;
        return 0;
    }
    f->delivered += nput;
    for (uint32_t i = 0; i < nfull; i++) {
        uint32_t b = f->full[i];
        gt_recipient *dst = batch_at(f->buf, b);
        int r = f->fn(f->ctx, f->worker[b], dst, GT_FANOUT_BATCH);
        if (r)
            return r;
        uint32_t over = pending(f, b) - GT_FANOUT_BATCH;
        memcpy(dst, dst + GT_FANOUT_BATCH, over * sizeof *dst);
        f->at[b] = dst + over;
    }
    return 0;
}

/* A chunk's passing entries into their batches (struct gt_sink). Inlined
 * once for the usual case (no entry activated since the fanout began,
 * every entry of the set active, one partition: no test per entry) and
 * once for the rest. */
static inline __attribute__((always_inline)) int
fan_copy(struct fan *f, gt_table *t, const struct gt_scan *sc,
         const struct gt_chunk *ch, uint32_t act_seq, bool fresh,
         bool flagged, bool general) {
    struct putter p = {f->at, 0, 0};
    const struct gt_filt filt = sc->filt;
    uint64_t occ = LOAD(&ch->occ, relaxed);
    int r = 0;
    while (occ) {
        unsigned i = (unsigned)__builtin_ctzll(occ);
        const struct gt_aent *x = &ch->e[i];
        occ &= occ - 1;
        uint32_t w = LOAD(&x->worker, relaxed);
        if (general && !gt_aent_pass(ch, i, w, act_seq, fresh, flagged, &filt))
            continue;
        if (general && !gt_in_part(t, sc, LOAD(&x->user_id, relaxed)))
            continue;
        gt_recipient *dst = NULL;
        if ((r = fan_place(f, &p, w, &dst)))
            break;
        dst->session_id = LOAD(&x->session_id, relaxed);
        dst->user_id = LOAD(&x->user_id, relaxed);
    }
    f->nput = p.nput;
    f->nfull = p.nfull;
    return r;
}

static int fan_take(void *ctx, gt_table *t, const struct gt_scan *sc,
                    const struct gt_chunk *ch, uint32_t act_seq,
                    bool flagged) {
    bool fresh = gt_chunk_fresh(ch, act_seq);
    if (!fresh && !flagged && sc->nparts <= 1)
        return fan_copy(ctx, t, sc, ch, act_seq, false, false, false);
    return fan_copy(ctx, t, sc, ch, act_seq, fresh, flagged, true);
}

/* A member of a scan that reads records (a role filter, or a filter
 * without GT_ACTIVE): checked already, so it stands at once. */
static int fan_visit(void *ctx, const gt_member *m, const void *payload) {
    (void)payload;
    struct fan *f = ctx;
    struct putter p = {f->at, 0, 0};
    gt_recipient *dst = NULL;
    int r = fan_place(f, &p, m->worker, &dst);
    if (r)
        return r;
    dst->session_id = m->session_id;
    dst->user_id = m->user_id;
    f->nput = p.nput;
    f->nfull = p.nfull;
    return fan_keep(f, true);
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
    struct gt_sink sink = {fan_take, fan_keep, f};
    struct gt_scan sc = {.part = part, .nparts = nparts, .fn = fan_visit,
                         .ctx = f, .sink = &sink, .fanout = true};
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
