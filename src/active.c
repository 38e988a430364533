/*
 * active.c - a guild's fanout set: the routing fields of its ACTIVE members,
 * packed, so a fanout reads little more than them.
 *
 * Why a separate set (tools/bench/layout.c, 1M members, 10% active, three
 * runs): reading the routing fields of the active tenth out of member
 * storage, guided by an active bitmap, takes 0.79-1.20 ms (from 72-byte
 * records) or 0.71-1.07 ms (from a 32-byte routing column): at 10% density
 * nearly every line of the column is touched. The same entries packed read
 * in 0.06-0.08 ms. The set is chunks of 64 entries; chunk occupancy bitmaps
 * are the "active bitmap", and empty chunks cost one header line each.
 *
 * Invariants:
 * - A member is in the set iff its record has GT_ACTIVE; its record's meta
 *   holds the entry index + 1, and the entry holds the member's storage slot
 *   in the same view, plus copies of user_id, session_id, worker and flags.
 * - An entry never moves while its member stays active, except when the
 *   whole set is rebuilt together with the storage (index.c), into new
 *   blocks published as one view. Growing the set copies chunks verbatim:
 *   indices stay.
 * - Chunks [0, hw) may hold entries; a chunk is initialised before hw covers
 *   it, and hw is raised before the guild's act_seq, so a fanout that reads
 *   act_seq, then hw, sees every chunk of every entry activated before.
 * - Each chunk has a seqlock; a fanout copies a chunk whole under it, so it
 *   reads each chunk exactly once and can never see an entry twice. An entry
 *   carries the low 32 bits of its activation number; a fanout skips entries
 *   activated after it read act_seq, so a member that was deactivated and
 *   re-activated into another chunk mid-fanout is not delivered twice.
 *   Each chunk's act_max is its last activation, so no entry's act32 is
 *   newer (a rolled-back activation may leave it newer than them all): a
 *   fanout tests act32 only in a chunk whose act_max is newer than its
 *   start, and otherwise reads only the entries' first parts (e), not
 *   their act32 and slot (ref).
 * - New entries take the lowest free place (lowest chunk with room), which
 *   keeps the set packed at the front.
 */
#include "internal.h"

/* Writers: the set is live and locked, so its own nchunks is trusted. */
#define chunk_at(a, c) gt_chunk_at((a), (a)->nchunks, (c))
#define nonfull_words gt_act_nonfull

/* A new, empty set with room for nchunks chunks, not yet published. */
static int act_make(struct gt_wr *w, uint32_t nchunks, struct gt_act **out,
                    uint64_t *off) {
    gt_table *t = w->t;
    uint64_t bytes = gt__act_bytes(nchunks);
    int r = gt__alloc(w, bytes, off, !w->optional);
    if (r)
        return r;
    struct gt_act *a = gt_at(t, *off);
    memset(a, 0, sizeof *a);
    a->magic = GT_ACT_MAGIC;
    a->guild_id = LOAD(&w->g->id, relaxed);
    a->nchunks = nchunks;
    a->bytes = bytes;
    uint64_t *nf = nonfull_words(a);
    for (uint32_t c = 0; c < nchunks; c += 64) {
        uint32_t k = nchunks - c < 64 ? nchunks - c : 64;
        nf[c / 64] = k == 64 ? ~0ull : ((1ull << k) - 1);
    }
    *out = a;
    return 0;
}

static void chunk_init(struct gt_chunk *ch) {
    STORE(&ch->seq, 0, relaxed);
    ch->n = 0;
    STORE(&ch->occ, 0, relaxed);
    STORE(&ch->act_max, 0, relaxed);
}

static void log_sizes(struct gt_wr *w, struct gt_act *a, int *r) {
    /* hw and live, logged together */
    if (*r == 0)
        *r = gt__log_bytes(w->t, w->log, &a->hw, 8, -1);
}

/* Replace the set by one twice its size, entries at the same indices. */
static int act_grow(struct gt_wr *w, struct gt_view *v) {
    gt_table *t = w->t;
    struct gt_act *old = v->act;
    uint32_t n = old ? old->nchunks * 2 : 1;
    struct gt_act *a;
    uint64_t off;
    int r = act_make(w, n, &a, &off);
    if (r)
        return r;
    if (old) {
        uint32_t hw = LOAD(&old->hw, relaxed);
        memcpy(chunk_at(a, 0), chunk_at(old, 0),
               (uint64_t)hw * sizeof(struct gt_chunk));
        for (uint32_t c = 0; c < hw; c++)
            STORE(&chunk_at(a, c)->seq, 0, relaxed);
        uint64_t *nf = nonfull_words(a);
        const uint64_t *onf = nonfull_words(old);
        for (uint32_t i = 0; i < (old->nchunks + 63) / 64; i++)
            nf[i] = onf[i];
        /* old chunks past the old capacity word boundary stay nonfull */
        for (uint32_t c = old->nchunks; c < n && c % 64; c++)
            nf[c / 64] |= 1ull << (c % 64);
        STORE(&a->hw, hw, relaxed);
        a->live = old->live;
    }
    if ((r = gt__log_counters(w)) ||
        (r = gt__view_publish(w, LOAD(&w->g->store_off, relaxed),
                              LOAD(&w->g->cap, relaxed), off)))
        return r;
    STORE(&w->g->act_bytes, a->bytes, relaxed);
    if (old && (r = gt__log_retire(w, gt_off(t, old), old->bytes)))
        return r;
    v->act = a;
    return 0;
}

/* The routing part of entry i of chunk ch: member m's. */
static void entry_write(struct gt_chunk *ch, uint32_t i, const gt_member *m) {
    STORE(&ch->e[i].user_id, m->user_id, relaxed);
    STORE(&ch->e[i].session_id, m->session_id, relaxed);
    STORE(&ch->e[i].worker, m->worker, relaxed);
    STORE(&ch->e[i].flags, m->flags, relaxed);
}

int gt__act_add(struct gt_wr *w, struct gt_view *v, uint64_t slot,
                const gt_member *m, uint32_t *idx) {
    gt_table *t = w->t;
    int r;
    if (!gt_act_room(v, 1)) {
        if ((r = act_grow(w, v)))
            return r;
    }
    struct gt_act *a = v->act;
    uint64_t *nf = nonfull_words(a);
    uint32_t c = UINT32_MAX;
    for (uint32_t i = 0; i < (a->nchunks + 63) / 64; i++)
        if (nf[i]) {
            c = i * 64 + (uint32_t)__builtin_ctzll(nf[i]);
            break;
        }
    if (c >= a->nchunks)
        return GT_ECORRUPT;
    struct gt_chunk *ch = chunk_at(a, c);
    uint32_t hw = LOAD(&a->hw, relaxed);
    r = 0;
    log_sizes(w, a, &r);
    if (r)
        return r;
    if (c >= hw) {
        chunk_init(ch); /* unreachable until hw covers it */
        /* pairs with the acquire load of hw in a fanout */
        STORE(&a->hw, c + 1, release);
    }
    uint64_t occ = LOAD(&ch->occ, relaxed);
    if (occ == ~0ull)
        return GT_ECORRUPT;
    uint32_t e = (uint32_t)__builtin_ctzll(~occ);
    if ((r = gt__log_bytes(t, w->log, ch, 16, 0)))
        return r;
    if ((r = gt__log_counters(w)))
        return r;
    uint64_t seqno = LOAD(&w->g->act_seq, relaxed) + 1;
    GT_HOOK("act_add");
    gt_seq_begin(&ch->seq);
    entry_write(ch, e, m);
    STORE(&ch->ref[e].act32, (uint32_t)seqno, relaxed);
    STORE(&ch->ref[e].slot, (uint32_t)slot, relaxed);
    /* not logged: after a rollback act_max is one activation too new, which
     * only makes fanouts test this chunk's entries one by one */
    STORE(&ch->act_max, (uint32_t)seqno, relaxed);
    STORE(&ch->occ, occ | (1ull << e), relaxed);
    ch->n++;
    if (ch->n == GT_CHUNK_ENTRIES) {
        if ((r = gt__log_bytes(t, w->log, &nf[c / 64], 8, -1)))
            return r;
        nf[c / 64] &= ~(1ull << (c % 64));
    }
    a->live++;
    /* pairs with the acquire load of act_seq at the start of a fanout */
    STORE(&w->g->act_seq, seqno, release);
    *idx = c * GT_CHUNK_ENTRIES + e;
    return 0;
}

static struct gt_chunk *entry_chunk(struct gt_view *v, uint32_t idx,
                                    uint32_t *e) {
    struct gt_act *a = v->act;
    if (!a || idx / GT_CHUNK_ENTRIES >= LOAD(&a->hw, relaxed))
        return NULL;
    struct gt_chunk *ch = chunk_at(a, idx / GT_CHUNK_ENTRIES);
    *e = idx % GT_CHUNK_ENTRIES;
    if (!(LOAD(&ch->occ, relaxed) & (1ull << *e)))
        return NULL;
    return ch;
}

int gt__act_remove(struct gt_wr *w, struct gt_view *v, uint32_t idx) {
    gt_table *t = w->t;
    uint32_t e;
    struct gt_chunk *ch = entry_chunk(v, idx, &e);
    if (!ch)
        return GT_ECORRUPT;
    struct gt_act *a = v->act;
    int r = gt__log_bytes(t, w->log, ch, 16, 0);
    log_sizes(w, a, &r);
    if (r)
        return r;
    uint32_t c = idx / GT_CHUNK_ENTRIES;
    uint64_t *nf = nonfull_words(a);
    if (ch->n == GT_CHUNK_ENTRIES) {
        if ((r = gt__log_bytes(t, w->log, &nf[c / 64], 8, -1)))
            return r;
        nf[c / 64] |= 1ull << (c % 64);
    }
    GT_HOOK("act_remove");
    gt_seq_begin(&ch->seq);
    STORE(&ch->occ, LOAD(&ch->occ, relaxed) & ~(1ull << e), relaxed);
    ch->n--;
    a->live--;
    return 0;
}

int gt__act_update(struct gt_wr *w, struct gt_view *v, uint32_t idx,
                   const gt_member *m) {
    uint32_t e;
    struct gt_chunk *ch = entry_chunk(v, idx, &e);
    if (!ch)
        return GT_ECORRUPT;
    int r = gt__log_bytes(w->t, w->log, ch, 16, 0);
    if (r == 0)
        r = gt__log_bytes(w->t, w->log, &ch->e[e], sizeof ch->e[e], -1);
    if (r)
        return r;
    gt_seq_begin(&ch->seq);
    entry_write(ch, e, m);
    return 0;
}

bool gt__act_sparse(const struct gt_act *a) {
    return a && a->nchunks >= 16 &&
           (uint64_t)a->live * 8 < (uint64_t)a->nchunks * GT_CHUNK_ENTRIES;
}

int gt__act_build(struct gt_wr *w, const struct gt_act *old,
                  struct gt_store *nst, const uint32_t *slot_map,
                  uint64_t *off) {
    *off = 0;
    if (!old || old->live == 0)
        return 0;
    uint32_t need = (old->live + GT_CHUNK_ENTRIES - 1) / GT_CHUNK_ENTRIES;
    struct gt_act *a;
    int r = act_make(w, need * 2, &a, off);
    if (r)
        return r;
    uint32_t j = 0, hw = LOAD(&old->hw, relaxed);
    for (uint32_t c = 0; c < hw; c++) {
        const struct gt_chunk *oc = chunk_at(old, c);
        uint64_t occ = LOAD(&oc->occ, relaxed);
        while (occ) {
            uint32_t e = (uint32_t)__builtin_ctzll(occ);
            occ &= occ - 1;
            uint32_t s = slot_map[c * GT_CHUNK_ENTRIES + e];
            if (!s || j >= a->nchunks * GT_CHUNK_ENTRIES)
                return GT_ECORRUPT;
            struct gt_chunk *nc = chunk_at(a, j / GT_CHUNK_ENTRIES);
            uint32_t k = j % GT_CHUNK_ENTRIES;
            if (k == 0) {
                chunk_init(nc);
                /* no copied entry is newer than the guild's last one */
                STORE(&nc->act_max, (uint32_t)LOAD(&w->g->act_seq, relaxed),
                      relaxed);
            }
            memcpy((void *)&nc->e[k], (const void *)&oc->e[e], sizeof nc->e[k]);
            STORE(&nc->ref[k].act32, LOAD(&oc->ref[e].act32, relaxed), relaxed);
            STORE(&nc->ref[k].slot, s - 1, relaxed);
            STORE(&nc->occ, LOAD(&nc->occ, relaxed) | (1ull << k), relaxed);
            nc->n++;
            STORE(&gt_rec_at(w->t, nst, nst->cap, s - 1)->meta,
                  GT_REC_LIVE | (j + 1), relaxed);
            j++;
        }
    }
    if (j != old->live)
        return GT_ECORRUPT;
    uint32_t nhw = (j + GT_CHUNK_ENTRIES - 1) / GT_CHUNK_ENTRIES;
    uint64_t *nf = nonfull_words(a);
    for (uint32_t c = 0; c < nhw; c++)
        if (chunk_at(a, c)->n == GT_CHUNK_ENTRIES)
            nf[c / 64] &= ~(1ull << (c % 64));
    STORE(&a->hw, nhw, relaxed);
    a->live = j;
    return 0;
}
