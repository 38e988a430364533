/*
 * index.c - a guild's storage: an open-addressing table whose slots are the
 * member records themselves, with one control byte per slot beside them.
 *
 * Why this layout. DESIGN.md weighs two; tools/bench/layout.c measures them
 * (1M members in /dev/shm, 2-core AMD EPYC VM, three runs, ns per lookup):
 *                                       dependent   independent   B/member
 *   (a) index -> dense 72 B records       343-352        71-80        80
 *   (b) records in the slots + ctrl       206-212        74-76        86
 *   plain 64 B records, pow2, load <.5    183-195        50-55       134
 * (a) pays two dependent misses per lookup; (b) pays one, for 6 more bytes
 * per member. (b)'s other cost, scans passing empty slots, does not touch
 * fanout, which reads the packed fanout set (active.c). So (b), kept dense:
 * capacity is not a power of two, the home slot is fastrange(hash, cap), a
 * storage is built for load 0.8 and rebuilt at 0.9 (members + tombstones).
 * At that load linear probing over the records would read ~4 records per
 * hit and ~23 per miss, so probing runs over the control bytes instead
 * (7-bit hash tag, or EMPTY / DEAD), eight at a time; the control array is
 * 1/73 of the records and mostly stays in cache.
 *
 * Invariants:
 * - A member never moves while present: no backward-shift deletion, no
 *   Robin Hood; deletion leaves a DEAD control byte. Members move only when
 *   the whole storage is rebuilt into a new block (growth, shrink, tombstone
 *   and fanout-set compaction), which is then published as the guild's new
 *   view; the old block is frozen from that moment and retired.
 * - EMPTY control bytes only ever become full: a reader that finds one knows
 *   no member present since the block's publication lies beyond it.
 * - Home slots are monotone in the hash, so slot order is hash order up to
 *   probe displacement; partitions and cursors use hash ranges and stay
 *   valid across rebuilds.
 * - A record is written under its seqlock; its control byte is set after the
 *   record (release) on insert and turned DEAD after it on delete. The record
 *   (LIVE flag and user_id) is the truth; control bytes are hints.
 *
 * Lookups do not pin an epoch: they read a view (storage block and capacity)
 * under the guild's vseq, probe, copy the record under its seqlock, and
 * finally re-check vseq. If the view was replaced meanwhile, the block may
 * have been freed and reused, and the lookup starts over; every address it
 * formed lay inside the block, so it never read outside the segment.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

uint32_t gt__cap_for(uint64_t members) {
    uint64_t cap = members + members / 4 + 1; /* load 0.8 */
    cap = gt_align_up(cap < 8 ? 8 : cap, 8);
    return cap > UINT32_MAX - 8 ? UINT32_MAX - 8 : (uint32_t)cap;
}

bool gt__store_full(uint64_t members, uint64_t tombs, uint32_t cap) {
    return (members + tombs + 1) * 10 > (uint64_t)cap * 9; /* load 0.9 */
}

uint64_t gt__store_find(gt_table *t, const struct gt_store *st, uint32_t cap,
                        uint64_t user_id, uint64_t h) {
    uint64_t pos = gt_fastrange(h, cap), g = pos & ~7ull;
    uint64_t tagw = gt_tag_word(h);
    uint64_t mask = gt_home_mask(pos);
    for (uint64_t n = 0; n <= cap / 8; n++) {
        uint64_t w = gt_group_load(st, g);
        uint64_t m = gt_match_tag(w, tagw) & mask;
        while (m) {
            uint64_t i = g + ((uint64_t)__builtin_ctzll(m) >> 3);
            const struct gt_rec *r = gt_rec_at(t, st, cap, i);
            if (LOAD(&r->w[0], relaxed) == user_id)
                return i;
            m &= m - 1;
        }
        if (gt_match_empty(w) & mask)
            return GT_NOT_FOUND;
        mask = GT_MSB;
        g += 8;
        if (g >= cap)
            g = 0;
    }
    return GT_NOT_FOUND;
}

/* Writer only (lock held): the slot an absent key would take: the first DEAD
 * or EMPTY slot of its probe sequence. */
uint64_t gt__store_free_slot(const struct gt_store *st, uint32_t cap,
                             uint64_t h) {
    uint64_t pos = gt_fastrange(h, cap), g = pos & ~7ull;
    uint64_t mask = gt_home_mask(pos);
    for (uint64_t n = 0; n <= cap / 8; n++) {
        uint64_t m = gt_match_free(gt_group_load(st, g)) & mask;
        if (m)
            return g + ((uint64_t)__builtin_ctzll(m) >> 3);
        mask = GT_MSB;
        g += 8;
        if (g >= cap)
            g = 0;
    }
    return GT_NOT_FOUND;
}

/* A new, empty storage block for members, not yet published. */
int gt__store_make(struct gt_wr *w, uint64_t members, uint64_t *off,
                   uint32_t *cap) {
    gt_table *t = w->t;
    uint32_t c = gt__cap_for(members);
    uint64_t bytes = gt__store_bytes(c, t->g.stride);
    int r = gt__alloc(w, bytes, off, !w->optional);
    if (r)
        return r;
    struct gt_store *st = gt_at(t, *off);
    /* Whole: the block may be reused memory, and a slot's record must hold
     * no member (meta 0, seq even) unless its control byte says so. An
     * insert rolled back restores the record it logged; were that leftover
     * bytes, a scan that saw the insert's control byte before the rollback
     * would then copy them, seqlock intact, as a member. */
    memset(st, 0, bytes);
    st->magic = GT_STORE_MAGIC;
    st->guild_id = LOAD(&w->g->id, relaxed);
    st->cap = c;
    st->bytes = bytes;
    memset(gt_ctrl(st), GT_CTRL_EMPTY, c);
    *cap = c;
    return 0;
}

/* Rebuild the guild's storage for `members` members into a new block:
 * growth, shrinking, dropping tombstones and compacting the fanout set are
 * all this one operation. Lock held. */
int gt__store_rebuild(struct gt_wr *w, uint64_t members) {
    gt_table *t = w->t;
    struct gt_guild *g = w->g;
    uint64_t old_off = LOAD(&g->store_off, relaxed);
    uint64_t old_act = LOAD(&g->act_off, relaxed);
    uint32_t old_cap = LOAD(&g->cap, relaxed);
    uint64_t live = LOAD(&g->members, relaxed);
    if (members < live)
        members = live;
    uint64_t off;
    uint32_t cap;
    int r = gt__store_make(w, members, &off, &cap);
    if (r)
        return r;
    GT_HOOK("rebuild_made");
    struct gt_store *nst = gt_at(t, off);
    uint32_t *map = NULL;
    const struct gt_act *oact = old_act ? gt_at(t, old_act) : NULL;
    if (oact) {
        map = calloc((size_t)oact->nchunks * GT_CHUNK_ENTRIES, sizeof *map);
        if (!map)
            return GT_ENOMEM;
    }
    uint64_t copied = 0;
    if (old_off) {
        const struct gt_store *ost = gt_at(t, old_off);
        const a8 *ctrl = gt_ctrl(ost);
        uint32_t stride = t->g.stride;
        for (uint64_t i = 0; i < old_cap; i++) {
            if (LOAD(&ctrl[i], relaxed) & 0x80u)
                continue;
            const struct gt_rec *or = gt_rec_at(t, ost, old_cap, i);
            uint32_t meta = LOAD(&or->meta, relaxed);
            if (!(meta & GT_REC_LIVE))
                continue;
            uint64_t uid = LOAD(&or->w[0], relaxed);
            uint64_t h = gt_hash(t, uid);
            uint64_t j = gt__store_free_slot(nst, cap, h);
            if (j == GT_NOT_FOUND) {
                free(map);
                return GT_ECORRUPT;
            }
            struct gt_rec *nr = gt_rec_at(t, nst, cap, j);
            memcpy((void *)nr, (const void *)or, stride);
            STORE(&nr->seq, 0, relaxed);
            uint32_t ai = meta & ~GT_REC_LIVE;
            if (ai && map && ai <= oact->nchunks * GT_CHUNK_ENTRIES)
                map[ai - 1] = (uint32_t)j + 1;
            STORE(&gt_ctrl(nst)[j], (uint8_t)(h & 0x7f), relaxed);
            copied++;
        }
    }
    if (copied != live) {
        free(map);
        return GT_ECORRUPT;
    }
    uint64_t act_off = 0;
    if (oact) {
        r = gt__act_build(w, oact, nst, map, &act_off);
        free(map);
        if (r)
            return r;
    }
    GT_HOOK("rebuild_copied");
    if ((r = gt__log_counters(w)))
        return r;
    if ((r = gt__view_publish(w, off, cap, act_off)))
        return r;
    STORE(&g->tombs, 0, relaxed);
    STORE(&g->store_bytes, nst->bytes, relaxed);
    STORE(&g->act_bytes,
          act_off ? ((struct gt_act *)gt_at(t, act_off))->bytes : 0, relaxed);
    GT_HOOK("rebuild_published");
    if (old_off && (r = gt__log_retire(w, old_off,
                                       ((const struct gt_store *)gt_at(t, old_off))->bytes)))
        return r;
    if (old_act && (r = gt__log_retire(w, old_act, oact->bytes)))
        return r;
    return 0;
}
