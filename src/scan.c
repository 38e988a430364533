/*
 * scan.c - walking a guild: gt_select, gt_select_count and the cursor, and
 * the one visiting mechanism (gt__scan) that gt_fanout also uses.
 *
 * A scan pins the reclamation epoch, reads the guild's view once, and walks
 * that view to the end even if the guild's storage is rebuilt meanwhile: the
 * replaced blocks are frozen from the moment they are replaced and are not
 * freed while the scan is pinned. So each slot (storage) or chunk (fanout
 * set) is read exactly once, under its seqlock, and:
 * - a member present and matching for the whole scan sits in one slot of
 *   the view (one entry of its fanout set) the whole time: visited once;
 * - a member absent for the whole scan is in no slot: never visited;
 * - a member is never visited twice: it occupies one slot of a view at a
 *   time, and a fanout-set entry activated after the scan began is skipped.
 *
 * Two sources: when the filter requires GT_ACTIVE the fanout set is walked
 * (only its entries, plus each member's record when the caller needs the
 * whole member or filters on roles); otherwise the storage slots.
 *
 * Partitions are hash ranges: partition p of P holds the users whose hash h
 * has floor(h * P / 2^64) == p. Storage scans of a partition walk only the
 * slots from the range's first home slot to the first EMPTY slot past its
 * last home slot (members never sit before their home, nor past an EMPTY
 * slot that follows it), checking each member's hash.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

/* ---- per-thread scratch ---------------------------------------------------- */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
#define SCRATCH_BUFS 3 /* 0, 1: cursor pages; 2: fanout batches */
struct scratch {
    void *p[SCRATCH_BUFS];
    size_t n[SCRATCH_BUFS];
};
static void scratch_free(void *v) {
    struct scratch *s = v;
    for (int i = 0; i < SCRATCH_BUFS; i++)
        free(s->p[i]);
    free(s);
}
static void scratch_init(void) {
    pthread_key_create(&scratch_key, scratch_free);
}

void *gt__scratch(size_t bytes, int which) {
    pthread_once(&scratch_once, scratch_init);
    struct scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->n[which] < bytes) {
        size_t n = s->n[which] ? s->n[which] : 4096;
        while (n < bytes)
            n *= 2;
        void *p = realloc(s->p[which], n);
        if (!p)
            return NULL;
        s->p[which] = p;
        s->n[which] = n;
    }
    return s->p[which];
}

/* ---- filters --------------------------------------------------------------- */

int gt__filter_prep(const gt_filter *f, struct gt_filt *o) {
    memset(o, 0, sizeof *o);
    if (!f)
        return 0;
    o->set = f->flags_set;
    o->clear = f->flags_clear;
    o->match_worker = f->match_worker != 0;
    o->worker = f->worker;
    for (int i = 0; i < 4; i++) {
        o->roles_any[i] = f->roles_any[i];
        o->roles |= f->roles_any[i] != 0;
    }
    return 0;
}

/* ---- the visiting mechanism -------------------------------------------------- */

/* First hash of partition p of n: ceil(p * 2^64 / n); n for p == n means
 * 2^64, returned as 0 with *end set. */
static uint64_t part_lo(uint32_t p, uint32_t n) {
    unsigned __int128 x = ((unsigned __int128)p << 64) + n - 1;
    return (uint64_t)(x / n);
}

/* Copy a record whole under its seqlock: 1 (it holds a member: its words w,
 * payload and *meta filled), 0 (no member), or the error of gt__wait
 * (GT_EBUSY). Inline: a scan calls it for every slot. */
static inline int rec_read(gt_table *t, struct gt_guild *g,
                           const struct gt_rec *r, uint32_t psize,
                           uint64_t w[8], uint64_t *payload, uint32_t *meta) {
    struct gt_wait wt = GT_WAIT_INIT;
    for (;;) {
        uint32_t s1 = LOAD(&r->seq, acquire);
        if (s1 & 1u) {
            int e = gt__wait(t, g, &wt);
            if (e)
                return e;
            continue;
        }
        w[0] = LOAD(&r->w[0], relaxed), w[1] = LOAD(&r->w[1], relaxed);
        w[2] = LOAD(&r->w[2], relaxed), w[3] = LOAD(&r->w[3], relaxed);
        w[4] = LOAD(&r->w[4], relaxed), w[5] = LOAD(&r->w[5], relaxed);
        w[6] = LOAD(&r->w[6], relaxed), w[7] = LOAD(&r->w[7], relaxed);
        uint32_t mt = LOAD(&r->meta, relaxed);
        if (payload)
            gt_rec_payload(r, psize, payload);
        /* pairs with the release fence of gt_seq_begin */
        atomic_thread_fence(memory_order_acquire);
        if (LOAD(&r->seq, relaxed) != s1)
            continue;
        *meta = mt;
        return (mt & GT_REC_LIVE) ? 1 : 0;
    }
}

/* A member that passed the filter: to the scan's callback, as a gt_member
 * unpacked from its words. Out of line: the walk stays small. */
static __attribute__((noinline)) int deliver(gt_table *t,
                                             const struct gt_scan *sc,
                                             const uint64_t w[8],
                                             uint64_t *pbuf) {
    if (!gt_pin_held(t, sc->slot))
        return GT_ESTALE; /* evicted: what we copied may be reused memory */
    gt_member m;
    gt__rec_unpack(w, &m);
    return sc->fn(sc->ctx, &m, pbuf);
}

/* Inlined into each walk: as a call per slot, saving and restoring
 * registers and zeroing w took 29% of a role select's instructions
 * (callgrind). */
static inline __attribute__((always_inline)) int
visit_record(gt_table *t, struct gt_view *v, uint64_t slot,
             const struct gt_scan *sc, uint64_t *pbuf, uint64_t want_uid) {
    uint64_t w[8]; /* set by rec_read when it returns 1 */
    uint32_t meta;
    int r = rec_read(t, v->g, gt_rec_at(t, v->st, v->cap, slot),
                     sc->want_payload ? t->g.payload_size : 0, w, pbuf,
                     &meta);
    if (r <= 0)
        return r; /* error, or the slot holds no member now */
    /* the filter reads the words themselves: the gt_member is built for a
     * hit only (and read back from registers, not from its stores) */
    uint32_t flags = (uint32_t)(w[7] >> 32), worker = (uint32_t)w[7];
    if (want_uid != UINT64_MAX && w[0] != want_uid)
        return 0; /* the entry's member left this slot meanwhile */
    if (!gt_filt_flags(&sc->filt, flags, worker) ||
        !gt_filt_roles(&sc->filt, &w[2]))
        return 0;
    if (!gt_in_part(t, sc, w[0]))
        return 0;
    if (sc->count) {
        ++*sc->count;
        return 0;
    }
    return deliver(t, sc, w, pbuf);
}

static int scan_store(gt_table *t, struct gt_view *v, const struct gt_scan *sc,
                      uint64_t *pbuf) {
    uint64_t cap = v->cap, first = 0, last = cap; /* home slots [first,last) */
    bool windowed = sc->nparts > 1;
    if (windowed) {
        first = gt_fastrange(part_lo(sc->part, sc->nparts), cap);
        last = sc->part + 1 == sc->nparts
                   ? cap
                   : gt_fastrange(part_lo(sc->part + 1, sc->nparts) - 1, cap) + 1;
    }
    const a8 *ctrl = gt_ctrl(v->st);
    /* Eight control bytes at a time: a branch per member, not per slot
     * (whether a slot is full is a coin toss the CPU cannot predict). */
    for (uint64_t k = 0; k < cap;) {
        uint64_t i = first + k;
        if (i >= cap)
            i -= cap;
        uint64_t off = i & 7, n = 8 - off < cap - k ? 8 - off : cap - k;
        if (windowed && first + k + n > last) {
            /* the window's end: slot by slot, to stop at its first EMPTY */
            uint8_t c = LOAD(&ctrl[i], relaxed);
            if (first + k >= last && c == GT_CTRL_EMPTY)
                break; /* past the last home slot and its cluster */
            k++;
            if (c & 0x80u)
                continue;
            /* pairs with the release store of the control byte */
            atomic_thread_fence(memory_order_acquire);
            int r = visit_record(t, v, i, sc, pbuf, UINT64_MAX);
            if (r)
                return r;
            continue;
        }
        uint64_t grp = i - off;
        uint64_t full = ~gt_match_free(gt_group_load(v->st, grp)) & gt_home_mask(off);
        if (off + n < 8)
            full &= (1ull << ((off + n) * 8)) - 1;
        for (; full; full &= full - 1) {
            int r = visit_record(t, v, grp + ((uint64_t)__builtin_ctzll(full) >> 3),
                                 sc, pbuf, UINT64_MAX);
            if (r)
                return r;
        }
        k += n;
    }
    return 0;
}

/* Copy the storage slots and user ids of a fanout-set chunk's entries that
 * pass (gt_aent_pass), under the chunk's seqlock (the caller checks it;
 * what a torn read let through is dropped with it when the check fails):
 * returns how many. */
static uint32_t chunk_slots(const struct gt_chunk *ch,
                            const struct gt_filt *filt, uint32_t act_seq,
                            uint64_t *uid, uint32_t *slot) {
    uint64_t occ = LOAD(&ch->occ, relaxed);
    bool fresh = gt_chunk_fresh(ch, act_seq);
    uint32_t n = 0;
    while (occ) {
        unsigned i = (unsigned)__builtin_ctzll(occ);
        occ &= occ - 1;
        if (!gt_aent_pass(ch, i, LOAD(&ch->e[i].worker, relaxed), act_seq,
                          fresh, true, filt))
            continue;
        slot[n] = LOAD(&ch->ref[i].slot, relaxed);
        uid[n++] = LOAD(&ch->e[i].user_id, relaxed);
    }
    return n;
}

/* The sink of a counting scan: a chunk's passing entries, counted. */
struct tally {
    uint64_t *count;
    uint32_t n; /* of the chunk being taken */
};

static int tally_take(void *ctx, gt_table *t, const struct gt_scan *sc,
                      const struct gt_chunk *ch, uint32_t act_seq,
                      bool flagged) {
    struct tally *y = ctx;
    uint64_t occ = LOAD(&ch->occ, relaxed);
    bool fresh = gt_chunk_fresh(ch, act_seq);
    y->n = 0;
    while (occ) {
        unsigned i = (unsigned)__builtin_ctzll(occ);
        occ &= occ - 1;
        y->n += gt_aent_pass(ch, i, LOAD(&ch->e[i].worker, relaxed), act_seq,
                             fresh, flagged, &sc->filt) &&
                gt_in_part(t, sc, LOAD(&ch->e[i].user_id, relaxed));
    }
    return 0;
}

static int tally_keep(void *ctx, bool ok) {
    struct tally *y = ctx;
    if (ok)
        *y->count += y->n;
    return 0;
}

/* Chunks of the fanout set fetched ahead of the walk, into L2: the
 * hardware prefetcher stops at each 4 KiB page, and a chunk is 2112 bytes
 * (a fanout reads the first 1600). Into L2, not L1: the L1's few miss
 * buffers then stay free for the walk's own loads. Fanout A/B on the AMD
 * VM, one build switching between the ways at run time, alternating every
 * fanout (1M and 10M members, 10% active): fetching into L2, 2 to 8 chunks
 * ahead, took 28% less time than into L1 2 chunks ahead at 10M (4.89 ms
 * against 6.80 at the median) and 32% less at 1M with the caches flushed
 * before each fanout (0.51 against 0.71 ms), and 2-3% more at 1M when the
 * set stays in L3 between fanouts (0.342 against 0.335 ms). Fetching into
 * both (L2 far ahead, L1 one chunk ahead) did worse than L2 alone. The
 * earlier way, into L1, had been chosen on the Intel VM (at 10M 21-23%
 * faster than no fetch; 1, 2 and 4 chunks alike, 8 worse). */
#define CHUNKS_AHEAD 4

/* The fanout set, a chunk at a time, each chunk copied under its seqlock
 * and again if a writer overlapped the copy: to the scan's sink (or
 * counted) when no records are needed, else each entry's record visited. */
static int scan_act(gt_table *t, struct gt_view *v, uint64_t act_seq,
                    const struct gt_scan *sc, uint64_t *pbuf) {
    const struct gt_act *a = v->act;
    /* the set's shape is read once and checked; later reads of a reused
     * block cannot send us outside it */
    uint32_t hw = LOAD(&a->hw, acquire), nchunks = a->nchunks;
    const struct gt_geom *geo = &t->g;
    if (a->magic != GT_ACT_MAGIC || hw > nchunks ||
        gt__act_bytes(nchunks) > geo->file_size - gt_off(t, a))
        return GT_ECORRUPT;
    bool record = sc->need_member || sc->filt.roles;
    /* every entry of the set is active (the set holds the active members,
     * and a chunk read whole is consistent): a filter that asks only that
     * needs no test per entry */
    bool flagged = sc->filt.set != GT_ACTIVE || sc->filt.clear ||
                   sc->filt.match_worker;
    struct tally y = {.count = sc->count};
    struct gt_sink tally = {tally_take, tally_keep, &y};
    const struct gt_sink *sink = record ? NULL : sc->count ? &tally : sc->sink;
    uint32_t as = (uint32_t)act_seq;
    /* the entries' second parts only for records */
    size_t fetch = record ? sizeof(struct gt_chunk)
                          : offsetof(struct gt_chunk, ref);
    for (uint32_t c = 0; c < hw; c++) {
        const struct gt_chunk *ch = gt_chunk_at(a, nchunks, c);
        if (c + CHUNKS_AHEAD < hw) {
            const char *next =
                (const char *)gt_chunk_at(a, nchunks, c + CHUNKS_AHEAD);
            for (size_t l = 0; l < fetch; l += GT_LINE)
                __builtin_prefetch(next + l, 0, 2); /* read, into L2 */
        }
        uint64_t uid[GT_CHUNK_ENTRIES];
        uint32_t slot[GT_CHUNK_ENTRIES], n = 0;
        struct gt_wait wt = GT_WAIT_INIT;
        for (;;) {
            uint32_t s1 = LOAD(&ch->seq, acquire);
            if (s1 & 1u) {
                int r = gt__wait(t, v->g, &wt);
                if (r)
                    return r;
                continue;
            }
            if (sink) {
                int r = sink->take(sink->ctx, t, sc, ch, as, flagged);
                if (r)
                    return r;
                GT_HOOK("chunk_taken"); /* tests/fault/test_fanout.c */
            } else {
                n = chunk_slots(ch, &sc->filt, as, uid, slot);
            }
            /* pairs with the release fence of the chunk's gt_seq_begin */
            atomic_thread_fence(memory_order_acquire);
            bool ok = LOAD(&ch->seq, relaxed) == s1;
            if (sink) {
                if (ok && !gt_pin_held(t, sc->slot))
                    return GT_ESTALE;
                int r = sink->keep(sink->ctx, ok);
                if (r)
                    return r;
            }
            if (ok)
                break;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (slot[i] >= v->cap)
                return GT_ECORRUPT;
            /* visit_record applies the filter and partition again on the
             * record, which is at least as recent as the entry */
            int r = visit_record(t, v, slot[i], sc, pbuf, uid[i]);
            if (r)
                return r;
        }
    }
    return 0;
}

int gt__scan(gt_table *t, uint64_t gid, const struct gt_scan *sc) {
    if (sc->nparts > 1 && sc->part >= sc->nparts)
        return GT_EINVAL;
    struct gt_guild *g = gt_guild_lookup(t, gid);
    if (!g)
        return GT_ENOENT;
    gt__check_writer(t, g);
    struct gt_scan s = *sc;
    int r = gt__pin(t, &s.slot);
    if (r)
        return r;
    uint64_t pbuf[GT_PAYLOAD_MAX / 8];
    struct gt_view v;
    r = gt__view_read(t, g, gid, &v);
    if (r == 0) {
        /* act_seq read after the view: an entry in the view activated before
         * this moment is visited; pairs with the release store in act_add */
        uint64_t act_seq = LOAD(&g->act_seq, acquire);
        if (s.filt.set & GT_ACTIVE)
            r = v.act ? scan_act(t, &v, act_seq, &s, pbuf) : 0;
        else
            r = v.st ? scan_store(t, &v, &s, pbuf) : 0;
        /* an evicted scan may have skipped slots it read as empty from
         * memory already reused: it must not end as if complete */
        if (r == 0 && !gt_pin_held(t, s.slot))
            r = GT_ESTALE;
    }
    if (!s.fanout)
        gt_stat_add(t, s.slot, GT_ST_SCANS, 1);
    gt__unpin(t, s.slot);
    return r;
}

/* ---- gt_select and gt_select_count ------------------------------------------ */

GT_API int gt_select(gt_table *t, uint64_t guild_id, const gt_filter *f,
                     uint32_t part, uint32_t nparts, gt_select_fn fn,
                     void *ctx) {
    if (!t || !fn || (nparts > 1 && part >= nparts))
        return GT_EINVAL;
    struct gt_scan sc = {.part = part, .nparts = nparts, .need_member = true,
                         .want_payload = true, .fn = fn, .ctx = ctx};
    gt__filter_prep(f, &sc.filt);
    return gt__scan(t, guild_id, &sc);
}

GT_API int gt_select_count(gt_table *t, uint64_t guild_id, const gt_filter *f,
                           uint32_t part, uint32_t nparts, uint64_t *count) {
    if (!t || !count || (nparts > 1 && part >= nparts))
        return GT_EINVAL;
    *count = 0;
    struct gt_scan sc = {.part = part, .nparts = nparts, .count = count};
    gt__filter_prep(f, &sc.filt);
    const struct gt_filt *ft = &sc.filt;
    /* Exact counters answer the common questions without a walk. */
    if (nparts <= 1 && !ft->clear && !ft->match_worker && !ft->roles &&
        (ft->set == 0 || ft->set == GT_ONLINE || ft->set == GT_ACTIVE)) {
        gt_guild_stat st;
        int r = gt_guild_info(t, guild_id, &st);
        if (r == 0)
            *count = ft->set == 0 ? st.members
                     : ft->set == GT_ONLINE ? st.online
                                            : st.active;
        return r;
    }
    return gt__scan(t, guild_id, &sc);
}

/* ---- cursors ------------------------------------------------------------------ */

#define CUR_STARTED 0x1u
#define CUR_FIRST 0x2u /* no lower bound yet */
#define CUR_DONE 0x4u

struct cand {
    uint64_t h, uid;
    gt_member m;
    uint32_t pidx; /* index into the payload scratch */
};

static int cand_cmp(const void *a, const void *b) {
    const struct cand *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static bool after(const gt_cursor *c, uint64_t h, uint64_t uid) {
    if (c->state & CUR_FIRST)
        return true;
    return h > c->hash || (h == c->hash && uid > c->user_id);
}

/* One page: see the header comment of gt_cursor, and DESIGN notes below.
 * From the home slot of the cursor's hash, walk slots (virtual index k may
 * pass cap: wrapped) collecting members after the cursor, until at least
 * max are collected and an EMPTY slot E is reached. Then every member whose
 * hash lies between the cursor and the first hash homed at E has been seen,
 * so the smallest max of them, in (hash, user_id) order, form the page. */
static int iter_page(gt_table *t, struct gt_view *v, uint32_t pin,
                     gt_cursor *c, const struct gt_filt *ft, gt_member *out,
                     void *payloads, size_t max, size_t *n) {
    uint64_t cap = v->cap;
    uint32_t ps = t->g.payload_size;
    size_t ncand = 0, room = 0;
    struct cand *cs = NULL;
    uint8_t *pay = NULL;
    uint64_t pbuf[GT_PAYLOAD_MAX / 8];
    *n = 0;
    for (;;) { /* until a non-empty page or the end */
        uint64_t start = (c->state & CUR_FIRST) ? 0 : gt_fastrange(c->hash, cap);
        uint64_t k = start, end_k = start + 2 * cap;
        const a8 *ctrl = gt_ctrl(v->st);
        ncand = 0;
        for (; k < end_k; k++) {
            /* k >= cap: the wrap region, members displaced past the last
             * slot; it ends at its first EMPTY slot */
            uint64_t i = k < cap ? k : k - cap;
            uint8_t cb = LOAD(&ctrl[i], relaxed);
            if (cb == GT_CTRL_EMPTY && k > start && (ncand >= max || k >= cap))
                break;
            if (cb & 0x80u)
                continue;
            atomic_thread_fence(memory_order_acquire);
            uint64_t w[8] = {0};
            uint32_t meta;
            int r = rec_read(t, v->g, gt_rec_at(t, v->st, cap, i),
                             payloads ? ps : 0, w, pbuf, &meta);
            if (r < 0)
                return r;
            if (r == 0)
                continue;
            gt_member m;
            gt__rec_unpack(w, &m);
            uint64_t h = gt_hash(t, m.user_id), home = gt_fastrange(h, cap);
            /* in this walk: homed at or after start, and (first lap) not
             * wrapped from the end, or (wrap region) wrapped from the end */
            bool in = home >= start && (k < cap ? home <= i : home > i);
            if (!in || !after(c, h, m.user_id) ||
                !gt_filt_flags(ft, m.flags, m.worker) ||
                !gt_filt_roles(ft, m.roles))
                continue;
            if (ncand == room) {
                room = room ? room * 2 : 256;
                cs = gt__scratch(room * sizeof *cs, 0);
                pay = payloads ? gt__scratch(room * (size_t)ps + 8, 1) : NULL;
                if (!cs || (payloads && !pay))
                    return GT_ENOMEM;
            }
            cs[ncand] = (struct cand){h, m.user_id, m, (uint32_t)ncand};
            if (payloads && ps)
                memcpy(pay + ncand * (size_t)ps, pbuf, ps);
            ncand++;
        }
        bool wrapped = k >= cap;
        if (!gt_pin_held(t, pin))
            return GT_ESTALE; /* the cursor is unchanged: retry the page */
        if (ncand)
            qsort(cs, ncand, sizeof *cs, cand_cmp);
        size_t take = ncand < max ? ncand : max;
        for (size_t i = 0; i < take; i++) {
            out[i] = cs[i].m;
            if (payloads && ps)
                memcpy((uint8_t *)payloads + i * ps, pay + cs[i].pidx * (size_t)ps,
                       ps);
        }
        *n = take;
        if (ncand > max) {
            c->hash = cs[take - 1].h;
            c->user_id = cs[take - 1].uid;
            c->state &= ~CUR_FIRST;
            return 0;
        }
        if (wrapped) {
            c->state |= CUR_DONE;
            return 0;
        }
        /* everything below the first hash homed at slot k has been seen */
        unsigned __int128 b = ((unsigned __int128)k << 64) + cap - 1;
        c->hash = (uint64_t)(b / cap) - 1;
        c->user_id = UINT64_MAX;
        c->state &= ~CUR_FIRST;
        if (take)
            return 0;
    }
}

static int iter(gt_table *t, gt_cursor *c, const gt_filter *f, gt_member *out,
                void *payloads, size_t max, size_t *n) {
    *n = 0;
    if (c->state & CUR_DONE)
        return 0;
    struct gt_guild *g = gt_guild_lookup(t, c->guild_id);
    if (!g)
        return GT_ENOENT;
    gt__check_writer(t, g);
    struct gt_filt ft;
    gt__filter_prep(f, &ft);
    uint32_t slot;
    int r = gt__pin(t, &slot);
    if (r)
        return r;
    struct gt_view v;
    r = gt__view_read(t, g, c->guild_id, &v);
    if (r == 0) {
        if (v.st)
            r = iter_page(t, &v, slot, c, &ft, out, payloads, max, n);
        else
            c->state |= CUR_DONE;
    }
    gt_stat_add(t, slot, GT_ST_SCANS, 1);
    gt__unpin(t, slot);
    return r;
}

GT_API int gt_iter_first(gt_table *t, uint64_t guild_id, const gt_filter *f,
                         gt_cursor *c, gt_member *out, void *payloads,
                         size_t max, size_t *n) {
    if (!t || !c || !out || !n || max == 0)
        return GT_EINVAL;
    memset(c, 0, sizeof *c);
    c->guild_id = guild_id;
    c->state = CUR_STARTED | CUR_FIRST;
    return iter(t, c, f, out, payloads, max, n);
}

GT_API int gt_iter_next(gt_table *t, gt_cursor *c, const gt_filter *f,
                        gt_member *out, void *payloads, size_t max, size_t *n) {
    if (!t || !c || !out || !n || max == 0 || !(c->state & CUR_STARTED) ||
        (c->state & ~(CUR_STARTED | CUR_FIRST | CUR_DONE)))
        return GT_EINVAL;
    return iter(t, c, f, out, payloads, max, n);
}
