/*
 * member.c - the point operations of the public API: insert, lookup,
 * delete and the atomic updates, keyed by (guild_id, user_id).
 *
 * Every write runs the same way: take the guild's lock (guild.c), log each
 * reachable byte before changing it (lock.c), change records under their
 * seqlocks, and commit; any error before the commit rolls the log back, so
 * a failed write changes nothing. A write touches at most: one record, its
 * control byte, one fanout-set entry and its chunk header, the guild's
 * counters line, and, when the storage or fanout set has to grow, a new
 * view. The slot log is sized for exactly that. A write that leaves the
 * guild sparse commits first and then rebuilds it smaller in a section of
 * its own (shrink): that rebuild may fail, or its process die, and be
 * undone alone, while the write stands.
 *
 * Linearization points: a write at its record's seqlock release (for an
 * insert, the control byte store that follows it); a lookup at its
 * record copy, validated by the record's seqlock and the guild's vseq.
 */
#include "internal.h"

#include <limits.h>
#include <string.h>

static void wview(struct gt_wr *w, struct gt_view *v) {
    struct gt_guild *g = w->g;
    uint64_t so = LOAD(&g->store_off, relaxed), ao = LOAD(&g->act_off, relaxed);
    v->g = g;
    v->vseq = LOAD(&g->vseq, relaxed);
    v->cap = LOAD(&g->cap, relaxed);
    v->st = so ? gt_at(w->t, so) : NULL;
    v->act = ao ? gt_at(w->t, ao) : NULL;
}

/* The batch calls fetch the memory of the member MANY_AHEAD places ahead of
 * the one they work on: enough fetches in flight to cover a miss's
 * latency, few enough that the lines stay in L1 until used. */
#define MANY_AHEAD 8u
/* Hashes in flight in the batch calls (struct ahead): from the furthest
 * fetch back to the oldest key still used, which gt_insert_many may take
 * again (16 back at most: a part formed anew). */
#define HASH_RING 64u
_Static_assert(HASH_RING >= 2 * MANY_AHEAD + 1 + 16 &&
                   (HASH_RING & (HASH_RING - 1)) == 0,
               "the ring holds every hash from a key to its furthest fetch");
/* Lookups whose view is re-checked together in gt_lookup_many. */
#define MANY_WINDOW 16u

/* The second stage of the batch calls' fetching, MANY_AHEAD places ahead:
 * the control group, fetched MANY_AHEAD places before that, is read to find
 * the slot the member likely is in or would go to (the first slot from home
 * with its tag or free, else home), and that record is fetched, not the
 * home one: two members in five are not in their home slot. Returns that
 * slot (< cap). Reads only inside the block; a hint, however the bytes
 * change meanwhile. */
static inline uint64_t fetch_match(gt_table *t, const struct gt_store *st,
                                   uint64_t cap, uint64_t h) {
    uint64_t pos = gt_fastrange(h, cap), grp = pos & ~7ull;
    uint64_t w = LOAD((const a64 *)(const void *)(gt_ctrl(st) + grp), relaxed);
    uint64_t m = gt_match_tag(w, gt_tag_word(h)) | gt_match_free(w);
    m &= gt_home_mask(pos); /* tag, or free, from home on */
    uint64_t i = m ? grp + ((uint64_t)__builtin_ctzll(m) >> 3) : pos;
    const uint8_t *rec = (const uint8_t *)gt_rec_at(t, st, cap, i);
    __builtin_prefetch(rec);
    __builtin_prefetch(rec + t->g.stride - 1);
    return i;
}

/* The batch calls' fetching ahead of the member they work on, in two
 * stages: control groups 2 * MANY_AHEAD members ahead, then (fetch_match)
 * records MANY_AHEAD ahead. Each hash is computed once, at the first stage,
 * and kept in a ring. Keys are user ids at key + i * stride: the arrays of
 * the batch calls, whose elements start with the user id. */
_Static_assert(offsetof(gt_member, user_id) == 0 &&
                   offsetof(gt_flag_update, user_id) == 0,
               "struct ahead reads user ids at the start of each element");
struct ahead {
    const uint8_t *key;
    size_t stride;
    size_t end;       /* keys [.., end) */
    size_t ctrl, rec; /* the next key to fetch the control group, record of */
    uint64_t h[HASH_RING];
    uint64_t slot[HASH_RING]; /* fetch_match's slot, once it has run */
};

/* Start fetching at key i (again: after a new view, or a new hold). */
static inline void ahead_from(struct ahead *a, size_t i, size_t end) {
    a->ctrl = a->rec = i;
    a->end = end;
}

/* Fetch ahead of key i, in view (st, cap) (st NULL: nothing to fetch), and
 * return its hash; with st, a->slot[i % HASH_RING] is then its slot from
 * fetch_match in this view. Keys are taken in order, or again at most 16
 * back. */
static inline uint64_t ahead_to(struct ahead *a, gt_table *t,
                                const struct gt_store *st, uint64_t cap,
                                size_t i) {
    size_t c_to = i + 2 * MANY_AHEAD + 1, r_to = i + MANY_AHEAD + 1;
    c_to = c_to < a->end ? c_to : a->end;
    r_to = r_to < a->end ? r_to : a->end;
    for (; a->ctrl < c_to; a->ctrl++) {
        uint64_t k;
        memcpy(&k, a->key + a->ctrl * a->stride, sizeof k);
        uint64_t h = a->h[a->ctrl % HASH_RING] = gt_hash(t, k);
        if (st)
            __builtin_prefetch(gt_ctrl(st) + (gt_fastrange(h, cap) & ~7ull));
    }
    for (; a->rec < r_to; a->rec++)
        if (st)
            a->slot[a->rec % HASH_RING] =
                fetch_match(t, st, cap, a->h[a->rec % HASH_RING]);
    return a->h[i % HASH_RING];
}

/* Start fetching what a probe of hash h will read first: the control group
 * and both lines of the home record. A hint only: no access is made. */
static inline void fetch_home(gt_table *t, const struct gt_store *st,
                              uint64_t cap, uint64_t h) {
    uint64_t pos = gt_fastrange(h, cap);
    const uint8_t *rec = (const uint8_t *)gt_rec_at(t, st, cap, pos);
    __builtin_prefetch(gt_ctrl(st) + (pos & ~7ull));
    __builtin_prefetch(rec);
    __builtin_prefetch(rec + t->g.stride - 1);
}
/* Writes per hold of the guild's lock in the batch calls: other writers of
 * the guild wait at most this many. */
#define MANY_HOLD 256u

/* Before a write takes its locks, start fetching the member's control
 * group and home record from the guild's current view, so that the misses
 * overlap the locking. A hint only: the view is read again under the lock. */
static void fetch_ahead(gt_table *t, uint64_t gid, uint64_t h) {
    struct gt_guild *g = gt_guild_lookup(t, gid);
    if (!g)
        return;
    uint64_t so = LOAD(&g->store_off, relaxed), cap = LOAD(&g->cap, relaxed);
    if (so && gt_store_ok(&t->g, so, cap, t->g.stride))
        fetch_home(t, gt_at(t, so), cap, h);
}

static void add(a64 *c, int64_t d) {
    STORE(c, (uint64_t)((int64_t)LOAD(c, relaxed) + d), relaxed);
}

/* Move the guild's counters from (old flags, was present) to (new flags, is
 * present). The counters line is already logged. */
static void count_flags(struct gt_guild *g, uint32_t oldf, bool was,
                        uint32_t newf, bool is) {
    add(&g->members, (int64_t)is - (int64_t)was);
    add(&g->online, (int64_t)(is && (newf & GT_ONLINE)) -
                        (int64_t)(was && (oldf & GT_ONLINE)));
    add(&g->active, (int64_t)(is && (newf & GT_ACTIVE)) -
                        (int64_t)(was && (oldf & GT_ACTIVE)));
}

/* The eight words, spelled out: compilers do not unroll loops of atomic
 * accesses, and the loop cost a write some 30 instructions (callgrind). */
static void read_words(const struct gt_rec *r, uint64_t w[8]) {
    w[0] = LOAD(&r->w[0], relaxed), w[1] = LOAD(&r->w[1], relaxed);
    w[2] = LOAD(&r->w[2], relaxed), w[3] = LOAD(&r->w[3], relaxed);
    w[4] = LOAD(&r->w[4], relaxed), w[5] = LOAD(&r->w[5], relaxed);
    w[6] = LOAD(&r->w[6], relaxed), w[7] = LOAD(&r->w[7], relaxed);
}

static void write_words(struct gt_rec *r, const uint64_t w[8]) {
    STORE(&r->w[0], w[0], relaxed), STORE(&r->w[1], w[1], relaxed);
    STORE(&r->w[2], w[2], relaxed), STORE(&r->w[3], w[3], relaxed);
    STORE(&r->w[4], w[4], relaxed), STORE(&r->w[5], w[5], relaxed);
    STORE(&r->w[6], w[6], relaxed), STORE(&r->w[7], w[7], relaxed);
}

/* What a write logs of a record for its rollback: all of it (the stride),
 * or only its seqlock and meta (REC_HEAD) where a rollback need not bring
 * back its words and payload: in a free slot, which a write fills (every
 * reader tests meta's GT_REC_LIVE after its seqlock check, so a free
 * slot's words are never taken for a member; see gt__store_make), and in
 * a delete (the new meta without GT_REC_LIVE), which keeps them: gt_delete
 * writes the words it read. */
#define REC_HEAD ((uint32_t)offsetof(struct gt_rec, w))
_Static_assert(offsetof(struct gt_rec, seq) == 0 &&
                   offsetof(struct gt_rec, meta) == 4,
               "REC_HEAD is the seqlock and meta");
static uint32_t rec_logged(const gt_table *t, const struct gt_rec *r,
                           uint32_t meta) {
    bool fills = !(LOAD(&r->meta, relaxed) & GT_REC_LIVE);
    bool frees = !(meta & GT_REC_LIVE);
    return fills || frees ? REC_HEAD : t->g.stride;
}

/* Write a record whole (words, payload if write_payload, meta). */
static int rec_write(struct gt_wr *w, struct gt_rec *r, const uint64_t nw[8],
                     bool write_payload, const void *payload, uint32_t meta) {
    gt_table *t = w->t;
    /* Only this function makes a record's seqlock odd, after logging the
     * record, and it stays odd until the section ends (gt__log_seal, or a
     * rollback's restore; a store rebuild copies records with an even
     * one). So odd: the record is in the log already; even: it is not, and
     * no search of the log is needed. So the first write of the section
     * chooses what is logged (rec_logged): a slot free when the section
     * began is free again after its rollback, whatever later writes put
     * there; a delete is the last write of its section to its record. */
    if (!(LOAD(&r->seq, relaxed) & 1u)) {
        /* the common head apart: its length known, the copy is one move */
        uint32_t len = rec_logged(t, r, meta);
        int seq = (int)offsetof(struct gt_rec, seq);
        int e = len == REC_HEAD ? gt_log_new(t, w->log, r, REC_HEAD, seq)
                                : gt_log_new(t, w->log, r, len, seq);
        if (e)
            return e;
    }
    GT_HOOK("record");
    gt_seq_begin(&r->seq);
    write_words(r, nw);
    if (write_payload) {
        uint32_t ps = t->g.payload_size;
        const uint8_t *p = payload;
        for (uint32_t i = 0; i < (ps + 7) / 8; i++) {
            uint64_t v = 0;
            if (p)
                memcpy(&v, p + i * 8, ps - i * 8 < 8 ? ps - i * 8 : 8);
            STORE(&r->payload[i], v, relaxed);
        }
    }
    STORE(&r->meta, meta, relaxed);
    GT_HOOK("record_written");
    return 0;
}

/* Keep the fanout set in step with a change of flags or routing. idx: the
 * record's entry index + 1 (0: none); returns the new one in *nidx. */
static int act_sync(struct gt_wr *w, struct gt_view *v, uint64_t slot,
                    uint32_t oldf, const gt_member *m, uint32_t idx,
                    uint32_t *nidx) {
    bool was = oldf & GT_ACTIVE, now = m->flags & GT_ACTIVE;
    int r = 0;
    *nidx = idx;
    if (was && !now) {
        r = idx ? gt__act_remove(w, v, idx - 1) : GT_ECORRUPT;
        *nidx = 0;
    } else if (!was && now) {
        uint32_t i;
        r = gt__act_add(w, v, slot, m, &i);
        *nidx = i + 1;
    } else if (was && now) {
        r = idx ? gt__act_update(w, v, idx - 1, m) : GT_ECORRUPT;
    }
    return r;
}

static int check_flags(uint32_t f) {
    return (f & GT_FLAGS_LIBRARY & ~(GT_ONLINE | GT_ACTIVE)) ? GT_EINVAL : 0;
}

/* reserved: the table's member count was reserved for it already. */
static int put_new(struct gt_wr *w, struct gt_view *v, uint64_t h,
                   const gt_member *m, const void *payload, bool reserved) {
    struct gt_guild *g = w->g;
    int r = reserved ? 0 : gt__count_reserve(w, 1);
    if (r)
        return r;
    /* Taking a tombstone adds no load; only a fresh slot may need room. */
    uint64_t slot = v->st ? gt__store_free_slot(v->st, v->cap, h) : GT_NOT_FOUND;
    if (!v->st || slot == GT_NOT_FOUND ||
        (LOAD(&gt_ctrl(v->st)[slot], relaxed) == GT_CTRL_EMPTY &&
         gt__store_full(LOAD(&g->members, relaxed), LOAD(&g->tombs, relaxed),
                        v->cap))) {
        if ((r = gt__store_rebuild(w, LOAD(&g->members, relaxed) + 1)))
            return r;
        wview(w, v);
        slot = gt__store_free_slot(v->st, v->cap, h);
    }
    if (slot == GT_NOT_FOUND)
        return GT_ECORRUPT;
    a8 *ctrl = &gt_ctrl(v->st)[slot];
    uint8_t old = LOAD(ctrl, relaxed);
    struct gt_rec *rec = gt_rec_at(w->t, v->st, v->cap, slot);
    uint32_t idx = 0;
    if ((r = gt__log_counters(w)) ||
        (r = act_sync(w, v, slot, 0, m, 0, &idx)))
        return r;
    uint64_t nw[8];
    gt__rec_pack(m, nw);
    /* the slot was free: its control byte is not in the log yet (no write
     * frees a slot and fills it again in one section) */
    if ((r = rec_write(w, rec, nw, true, payload, GT_REC_LIVE | idx)) ||
        (r = gt_log_new(w->t, w->log, ctrl, 1, -1)))
        return r;
    GT_HOOK("insert_ctrl");
    /* pairs with the acquire fence after a reader's control group load */
    STORE(ctrl, (uint8_t)(h & 0x7f), release);
    GT_HOOK("insert_done");
    if (old == GT_CTRL_DEAD)
        add(&g->tombs, -1);
    count_flags(g, 0, false, m->flags, true);
    return 0;
}

static int put_replace(struct gt_wr *w, struct gt_view *v, uint64_t slot,
                       const gt_member *m, const void *payload) {
    struct gt_rec *rec = gt_rec_at(w->t, v->st, v->cap, slot);
    uint64_t ow[8];
    read_words(rec, ow);
    uint32_t oldf = (uint32_t)(ow[7] >> 32);
    uint32_t meta = LOAD(&rec->meta, relaxed), idx;
    int r = gt__log_counters(w);
    if (r == 0)
        r = act_sync(w, v, slot, oldf, m, meta & ~GT_REC_LIVE, &idx);
    if (r)
        return r;
    uint64_t nw[8];
    gt__rec_pack(m, nw);
    if ((r = rec_write(w, rec, nw, true, payload, GT_REC_LIVE | idx)))
        return r;
    count_flags(w->g, oldf, true, m->flags, true);
    return 0;
}

/* A write that failed with r changes nothing: undo its open section and,
 * if it made the guild (created) and the guild holds no member, the guild
 * too; then let the lock go. Returns r. */
static int fail_write(struct gt_wr *w, bool created, int r) {
    if (gt__wr_undo(w) ||
        (created && LOAD(&w->g->members, relaxed) == 0 &&
         gt__guild_drop(w) != 0 && gt__wr_undo(w)))
        return r; /* the lock is gone */
    gt__wr_commit(w);
    return r;
}

static int put(gt_table *t, uint64_t gid, const gt_member *m,
               const void *payload, bool excl) {
    if (!t || !m)
        return GT_EINVAL;
    int r = check_flags(m->flags);
    if (r)
        return r;
    struct gt_wr w;
    bool created;
    uint64_t h = gt_hash(t, m->user_id);
    fetch_ahead(t, gid, h);
    if ((r = gt__guild_write(t, gid, true, &w, &created)))
        return r;
    struct gt_view v;
    wview(&w, &v);
    uint64_t slot = v.st ? gt__store_find(t, v.st, v.cap, m->user_id, h)
                         : GT_NOT_FOUND;
    if (slot == GT_NOT_FOUND)
        r = put_new(&w, &v, h, m, payload, false);
    else if (excl)
        r = GT_EEXIST;
    else
        r = put_replace(&w, &v, slot, m, payload);
    if (r)
        return fail_write(&w, created, r);
    w.stat = GT_ST_INSERTS;
    return gt__wr_commit(&w);
}

GT_API int gt_insert(gt_table *t, uint64_t guild_id, const gt_member *m,
                     const void *payload) {
    return put(t, guild_id, m, payload, false);
}

GT_API int gt_insert_new(gt_table *t, uint64_t guild_id, const gt_member *m,
                         const void *payload) {
    return put(t, guild_id, m, payload, true);
}

/* What a part of gt_insert_many may log, counted before it is applied so
 * that it fits the log: each insert its record (a new member's head only)
 * and control byte; a new
 * member joining the fanout set (with room) at most the set's sizes, a
 * chunk header and a bitmap word; the part the count it reserved and the
 * counters line. The first insert always fits: a log holds two records
 * and 2 KiB more (segment.c). */
#define PART_INSERTS 16
struct part_room {
    uint32_t ents, bytes; /* left in the log */
};
static struct part_room part_room(const struct gt_wr *w) {
    return (struct part_room){w->log->ent_cap - 2, w->log->data_cap - GT_LINE};
}
static bool part_take(struct part_room *pr, uint32_t logged, bool joins) {
    uint32_t ents = 2 + (joins ? 3 : 0), bytes = logged + 8 + (joins ? 32 : 0);
    if (ents > pr->ents || bytes > pr->bytes)
        return false;
    pr->ents -= ents;
    pr->bytes -= bytes;
    return true;
}

/* The slot of user_id (hash h) in v's storage, or GT_NOT_FOUND: hint, the
 * slot a batch call fetched ahead (perhaps in an earlier view), when it
 * holds the member, else the probe's answer. */
static inline uint64_t find_hinted(gt_table *t, const struct gt_view *v,
                                   uint64_t hint, uint64_t user_id,
                                   uint64_t h) {
    return gt_store_holds(t, v->st, v->cap, hint, user_id, h)
               ? hint
               : gt__store_find(t, v->st, v->cap, user_id, h);
}

/* One hold of the guild's lock in gt_insert_many: members [at, end).
 * Returns the members that were new, or a negative error; *done: the first
 * insert not applied. */
static int insert_hold(gt_table *t, uint64_t gid, const gt_member *m,
                       const uint8_t *pay, size_t at, size_t end,
                       size_t *done) {
    struct gt_wr w;
    struct gt_view v;
    bool created;
    *done = at;
    int r = gt__guild_write(t, gid, true, &w, &created);
    if (r)
        return r;
    wview(&w, &v);
    struct gt_guild *g = w.g;
    uint32_t ps = t->g.payload_size;
    size_t pmax = PART_INSERTS;
    int added = 0;
    /* Room for every insert of the hold first, in a part of its own: then
     * no insert of a part has to grow the storage. */
    uint64_t grow = LOAD(&g->members, relaxed) + (end - at);
    if (!v.st || gt__store_full(grow, LOAD(&g->tombs, relaxed), v.cap)) {
        if ((r = gt__store_rebuild(&w, grow)))
            goto fail;
        if ((r = gt__wr_checkpoint(&w)))
            return r; /* the lock is gone */
        wview(&w, &v);
    }
    struct ahead ah = {.key = (const uint8_t *)m, .stride = sizeof *m};
    ahead_from(&ah, at, end);
    while (at < end) {
        /* Form a part: find each member, stop before a repeat of a new one
         * (it would be taken for new twice) or where the log would be full,
         * and put a change to the fanout set (unbounded log use) in a part
         * of its own, except a new member that joins a set with room for
         * it and for the part's other joiners (bounded, and counted). */
        uint64_t h[PART_INSERTS], slot[PART_INSERTS];
        uint64_t news = 0; /* a bit per new member's hash: most members
                              need no search for a repeat */
        struct part_room pr = part_room(&w);
        uint32_t joiners = 0;
        size_t k = 0;
        int32_t fresh = 0;
        while (at + k < end && k < pmax) {
            size_t i = at + k;
            uint64_t hi = ahead_to(&ah, t, v.st, v.cap, i);
            uint64_t si =
                find_hinted(t, &v, ah.slot[i % HASH_RING], m[i].user_id, hi);
            bool act = m[i].flags & GT_ACTIVE;
            if (si != GT_NOT_FOUND)
                act |= LOAD(&gt_rec_at(t, v.st, v.cap, si)->meta, relaxed) &
                       ~GT_REC_LIVE;
            bool repeat = false;
            uint64_t bit = 1ull << (hi >> 58);
            for (size_t j = 0; j < k && si == GT_NOT_FOUND && (news & bit); j++)
                repeat |= slot[j] == GT_NOT_FOUND &&
                          m[at + j].user_id == m[i].user_id;
            bool joins = act && si == GT_NOT_FOUND &&
                         gt_act_room(&v, joiners + 1);
            bool fits = part_take(
                &pr, si == GT_NOT_FOUND ? REC_HEAD : t->g.stride, joins);
            if (k && (repeat || (act && !joins) || !fits))
                break; /* (the first always fits) */
            h[k] = hi;
            slot[k] = si;
            news |= si == GT_NOT_FOUND ? bit : 0;
            fresh += si == GT_NOT_FOUND;
            joiners += joins;
            k++;
            if (act && !joins)
                break; /* a part of its own */
        }
        if (fresh && (r = gt__count_reserve(&w, fresh))) {
            if (r != GT_EFULL || k == 1)
                goto fail;
            pmax = 1; /* near max_members: one at a time, so that the
                         batch stops exactly where the table is full */
            continue;
        }
        for (size_t j = 0; j < k; j++) {
            const void *p = pay ? pay + (at + j) * ps : NULL;
            r = slot[j] == GT_NOT_FOUND
                    ? put_new(&w, &v, h[j], &m[at + j], p, true)
                    : put_replace(&w, &v, slot[j], &m[at + j], p);
            if (r)
                goto fail;
        }
        gt_stat_add(t, w.slot, GT_ST_INSERTS, k);
        if ((r = gt__wr_checkpoint(&w))) {
            *done = at + k; /* the part stands; the lock is gone */
            return r;
        }
        added += fresh;
        at += k;
        *done = at;
        wview(&w, &v); /* a fanout-set change may have made a new one */
    }
    gt__wr_commit(&w);
    return added;
fail: /* the open part is undone; earlier parts stand */
    return fail_write(&w, created, r);
}

GT_API int gt_insert_many(gt_table *t, uint64_t guild_id, const gt_member *m,
                          const void *payloads, size_t n, size_t *done) {
    size_t ok = 0;
    int r = 0, added = 0;
    if (!t || (n && !m) || n > INT_MAX) {
        r = GT_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if ((r = check_flags(m[i].flags)))
            goto out;
    for (size_t at = 0; at < n; at = ok) {
        size_t end = n - at < MANY_HOLD ? n : at + MANY_HOLD;
        if ((r = insert_hold(t, guild_id, m, payloads, at, end, &ok)) < 0)
            goto out;
        added += r;
        r = 0;
    }
out:
    if (done)
        *done = ok;
    return r ? r : added;
}

/* ---- updates ----------------------------------------------------------------- */

/* Lock the guild and find the member; on success the caller must commit or
 * abort w. */
static int locate(gt_table *t, uint64_t gid, uint64_t uid, struct gt_wr *w,
                  struct gt_view *v, uint64_t *slot) {
    if (!t)
        return GT_EINVAL;
    uint64_t h = gt_hash(t, uid);
    fetch_ahead(t, gid, h);
    int r = gt__guild_write(t, gid, false, w, NULL);
    if (r)
        return r;
    wview(w, v);
    *slot = v->st ? gt__store_find(t, v->st, v->cap, uid, h) : GT_NOT_FOUND;
    if (*slot == GT_NOT_FOUND) {
        gt__wr_commit(w);
        return GT_ENOENT;
    }
    return 0;
}

/* Rebuild the guild smaller, the lock held, in a section of its own after
 * the write that left its storage or fanout set sparse has committed. It is
 * optional. It takes only memory free at once: it neither waits for scans
 * to release memory nor evicts them. A rebuild that fails (mostly for want
 * of memory) is rolled back alone, the write stands, and the next write
 * that finds the guild sparse tries again. Returns 0 with the lock held, or
 * a lock error of the rebuild's commit or undo (the lock is then gone; the
 * write stands). */
static int shrink(struct gt_wr *w) {
    w->optional = true;
    int r = gt__store_rebuild(w, LOAD(&w->g->members, relaxed));
    w->optional = false;
    return r == 0 ? gt__wr_checkpoint(w) : gt__wr_undo(w);
}

/* Commit the write, and then shrink the guild if it left it sparse.
 * Returns 0 as gt__wr_commit does: the write is done, whatever follows. */
static int commit_shrink(struct gt_wr *w, bool sparse) {
    if (!sparse)
        return gt__wr_commit(w);
    if (gt__wr_checkpoint(w))
        return 0; /* the lock is gone, the write done all the same */
    w->stat = GT_ST_COUNT; /* counted once, at its own commit */
    if (shrink(w) == 0)
        gt__wr_commit(w);
    return 0;
}

enum upd { UPD_FLAGS, UPD_SESSION, UPD_ROLES };
struct upd_args {
    uint32_t set, clear;
    uint32_t worker;
    uint64_t session;
    const uint64_t *rset, *rclear;
};

static int update(gt_table *t, uint64_t gid, uint64_t uid, enum upd kind,
                  const struct upd_args *a, uint32_t *old_flags) {
    struct gt_wr w;
    struct gt_view v;
    uint64_t slot;
    int r = locate(t, gid, uid, &w, &v, &slot);
    if (r)
        return r;
    struct gt_rec *rec = gt_rec_at(t, v.st, v.cap, slot);
    uint64_t ow[8], nw[8];
    read_words(rec, ow);
    memcpy(nw, ow, sizeof nw);
    uint32_t oldf = (uint32_t)(ow[7] >> 32);
    if (old_flags)
        *old_flags = oldf;
    switch (kind) {
    case UPD_FLAGS:
        nw[7] = (uint32_t)ow[7] |
                ((uint64_t)((oldf & ~a->clear) | a->set) << 32);
        break;
    case UPD_SESSION:
        nw[1] = a->session;
        nw[7] = (ow[7] & 0xFFFFFFFF00000000ull) | a->worker;
        break;
    case UPD_ROLES:
        for (int i = 0; i < 4; i++)
            nw[2 + i] = (ow[2 + i] & ~(a->rclear ? a->rclear[i] : 0)) |
                        (a->rset ? a->rset[i] : 0);
        break;
    }
    w.stat = GT_ST_UPDATES;
    if (memcmp(nw, ow, sizeof nw) == 0)
        return gt__wr_commit(&w); /* nothing changes: nothing to log */
    gt_member m;
    gt__rec_unpack(nw, &m);
    uint32_t meta = LOAD(&rec->meta, relaxed), idx;
    if ((r = gt__log_counters(&w)) ||
        (r = act_sync(&w, &v, slot, oldf, &m, meta & ~GT_REC_LIVE, &idx)) ||
        (r = rec_write(&w, rec, nw, false, NULL, GT_REC_LIVE | idx))) {
        gt__wr_abort(&w);
        return r;
    }
    count_flags(w.g, oldf, true, m.flags, true);
    return commit_shrink(&w, gt__act_sparse(v.act));
}

GT_API int gt_update_flags(gt_table *t, uint64_t guild_id, uint64_t user_id,
                           uint32_t set, uint32_t clear, uint32_t *old_flags) {
    if (check_flags(set) || check_flags(clear))
        return GT_EINVAL;
    struct upd_args a = {.set = set, .clear = clear};
    return update(t, guild_id, user_id, UPD_FLAGS, &a, old_flags);
}

/* Whether the log has room for one more update that leaves GT_ACTIVE alone:
 * its record, maybe its fanout entry, and the counters line. */
static bool log_room(const struct gt_wr *w) {
    const struct gt_log *l = w->log;
    uint32_t need = 2 * w->t->g.stride + 2 * GT_LINE;
    return LOAD(&l->n, relaxed) + 3 <= l->ent_cap &&
           l->data_used + need <= l->data_cap;
}

/* One update of a batch: where it lands and what it changes. */
struct many_op {
    struct gt_rec *rec;
    uint64_t slot;
    uint64_t ow[8];
    uint32_t oldf, newf;
};

/* Where the update lands (the lock held): -1 (absent), 0 (it changes
 * nothing) or 1. hint: the slot fetch_match chose, perhaps in an earlier
 * view, tried before the probe. */
static int many_find(gt_table *t, const struct gt_view *v, uint64_t h,
                     uint64_t hint, const gt_flag_update *u,
                     struct many_op *op) {
    if (!v->st)
        return -1;
    op->slot = find_hinted(t, v, hint, u->user_id, h);
    if (op->slot == GT_NOT_FOUND)
        return -1;
    op->rec = gt_rec_at(t, v->st, v->cap, op->slot);
    read_words(op->rec, op->ow);
    op->oldf = (uint32_t)(op->ow[7] >> 32);
    op->newf = (op->oldf & ~u->clear) | u->set;
    return op->newf != op->oldf;
}

/* Write one update into the open part, as update() does: 0, 1 (done, and
 * the fanout set is left sparse: shrink() the guild once the part is
 * committed) or a negative error (the part must be rolled back). */
static int many_apply(struct gt_wr *w, struct gt_view *v,
                      const struct many_op *op) {
    uint64_t nw[8];
    memcpy(nw, op->ow, sizeof nw);
    nw[7] = (uint32_t)op->ow[7] | ((uint64_t)op->newf << 32);
    gt_member m;
    gt__rec_unpack(nw, &m);
    uint32_t meta = LOAD(&op->rec->meta, relaxed), idx;
    int r;
    if ((r = gt__log_counters(w)) ||
        (r = act_sync(w, v, op->slot, op->oldf, &m, meta & ~GT_REC_LIVE,
                      &idx)) ||
        (r = rec_write(w, op->rec, nw, false, NULL, GT_REC_LIVE | idx)))
        return r;
    count_flags(w->g, op->oldf, true, op->newf, true);
    return gt__act_sparse(v->act);
}

/* Commit the open part (`part`: the updates to count) and keep the lock;
 * on an error the lock is released, the part committed all the same. */
static int many_checkpoint(struct gt_wr *w, uint32_t *part) {
    gt_stat_add(w->t, w->slot, GT_ST_UPDATES, *part);
    *part = 0;
    return gt__wr_checkpoint(w);
}

GT_API int gt_update_flags_many(gt_table *t, uint64_t guild_id,
                                const gt_flag_update *u, size_t n,
                                size_t *done) {
    if (done)
        *done = 0;
    if (!t || (n && !u) || n > INT_MAX)
        return GT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (check_flags(u[i].set) || check_flags(u[i].clear))
            return GT_EINVAL;
    int changed = 0, r = 0;
    size_t at = 0, part_from = 0; /* part_from: first update of the open part */
    struct ahead ah = {.key = (const uint8_t *)u, .stride = sizeof *u};
    while (at < n) { /* one hold of the lock */
        size_t end = n - at < MANY_HOLD ? n : at + MANY_HOLD;
        struct gt_wr w;
        struct gt_view v;
        if ((r = gt__guild_write(t, guild_id, false, &w, NULL)))
            goto out;
        wview(&w, &v);
        uint32_t part = 0;
        part_from = at;
        ahead_from(&ah, at, end);
        for (; at < end; at++) {
            uint64_t h = ahead_to(&ah, t, v.st, v.cap, at);
            struct many_op op;
            int f = many_find(t, &v, h, ah.slot[at % HASH_RING], &u[at],
                              &op);
            part += f == 0; /* counted as gt_update_flags counts it */
            if (f <= 0)
                continue;
            /* A change of GT_ACTIVE moves the fanout set, whose log use has
             * no small bound: it is a part of its own. */
            bool alone = (op.oldf ^ op.newf) & GT_ACTIVE;
            if ((alone || !log_room(&w)) && LOAD(&w.log->n, relaxed)) {
                if ((r = many_checkpoint(&w, &part))) {
                    part_from = at;
                    goto out;
                }
                part_from = at;
            }
            int sparse = many_apply(&w, &v, &op);
            if (sparse < 0) {
                r = sparse;
                gt__wr_abort(&w);
                goto out;
            }
            changed++;
            part++;
            if (alone || sparse) {
                r = many_checkpoint(&w, &part);
                part_from = at + 1;
                if (r || (sparse && (r = shrink(&w))))
                    goto out;
                wview(&w, &v);
            }
        }
        gt_stat_add(t, w.slot, GT_ST_UPDATES, part);
        gt__wr_commit(&w);
        part_from = at;
    }
out:
    if (done)
        *done = r ? part_from : n;
    return r ? r : changed;
}

GT_API int gt_update_session(gt_table *t, uint64_t guild_id, uint64_t user_id,
                             uint32_t worker, uint64_t session_id) {
    struct upd_args a = {.worker = worker, .session = session_id};
    return update(t, guild_id, user_id, UPD_SESSION, &a, NULL);
}

GT_API int gt_update_roles(gt_table *t, uint64_t guild_id, uint64_t user_id,
                           const uint64_t set[4], const uint64_t clear[4]) {
    struct upd_args a = {.rset = set, .rclear = clear};
    return update(t, guild_id, user_id, UPD_ROLES, &a, NULL);
}

GT_API int gt_delete(gt_table *t, uint64_t guild_id, uint64_t user_id) {
    struct gt_wr w;
    struct gt_view v;
    uint64_t slot;
    int r = locate(t, guild_id, user_id, &w, &v, &slot);
    if (r)
        return r;
    struct gt_guild *g = w.g;
    struct gt_rec *rec = gt_rec_at(t, v.st, v.cap, slot);
    uint64_t ow[8];
    read_words(rec, ow);
    uint32_t oldf = (uint32_t)(ow[7] >> 32);
    uint32_t idx = LOAD(&rec->meta, relaxed) & ~GT_REC_LIVE;
    a8 *ctrl = &gt_ctrl(v.st)[slot];
    if ((r = gt__log_counters(&w)))
        goto fail;
    if (idx && (r = gt__act_remove(&w, &v, idx - 1)))
        goto fail;
    /* the tombstone is stored at commit: a reader that skipped the slot
     * now would see the member gone before the delete is certain */
    if ((r = rec_write(&w, rec, ow, false, NULL, 0)) ||
        (r = gt__wr_set(&w, ctrl, GT_CTRL_DEAD)) ||
        (r = gt__wr_action(&w, GT_LOG_COUNT, 0, 0, 0, -1)))
        goto fail;
    add(&g->tombs, 1);
    count_flags(g, oldf, true, 0, false);
    uint64_t members = LOAD(&g->members, relaxed);
    w.stat = GT_ST_DELETES;
    return commit_shrink(&w, (v.cap > 64 && members * 4 < v.cap) ||
                                 gt__act_sparse(v.act));
fail:
    gt__wr_abort(&w);
    return r;
}

GT_API int gt_guild_reserve(gt_table *t, uint64_t guild_id, uint64_t members) {
    if (!t)
        return GT_EINVAL;
    if (members > t->g.max_members)
        return GT_EINVAL;
    struct gt_wr w;
    bool created;
    int r = gt__guild_write(t, guild_id, true, &w, &created);
    if (r)
        return r;
    struct gt_guild *g = w.g;
    uint32_t cap = LOAD(&g->cap, relaxed);
    uint64_t have = LOAD(&g->members, relaxed);
    if (members > have &&
        (!LOAD(&g->store_off, relaxed) ||
         gt__store_full(members - 1, LOAD(&g->tombs, relaxed), cap)) &&
        (r = gt__store_rebuild(&w, members)))
        return fail_write(&w, created, r);
    return gt__wr_commit(&w);
}

/* ---- reads ----------------------------------------------------------------- */

/* A record's words after its key, as a lookup copies them out under the
 * record's seqlock (named fields, so that they stay in registers). */
struct rec_copy {
    uint64_t session_id, roles[4], joined_at, worker_flags;
};
static inline __attribute__((always_inline)) struct rec_copy
rec_copy(const struct gt_rec *r) {
    struct rec_copy c;
    c.session_id = LOAD(&r->w[1], relaxed);
    c.roles[0] = LOAD(&r->w[2], relaxed);
    c.roles[1] = LOAD(&r->w[3], relaxed);
    c.roles[2] = LOAD(&r->w[4], relaxed);
    GT_HOOK("lookup_copy"); /* tests/fault/test_lookup.c stops here */
    c.roles[3] = LOAD(&r->w[5], relaxed);
    c.joined_at = LOAD(&r->w[6], relaxed);
    c.worker_flags = LOAD(&r->w[7], relaxed);
    return c;
}
static inline void rec_copy_out(const struct rec_copy *c, uint64_t uid,
                                gt_member *out) {
    out->user_id = uid;
    out->session_id = c->session_id;
    memcpy(out->roles, c->roles, sizeof out->roles);
    out->joined_at = (int64_t)c->joined_at;
    out->worker = (uint32_t)c->worker_flags;
    out->flags = (uint32_t)(c->worker_flags >> 32);
}

/* What rec_read found. */
enum { REC_OTHER, REC_FOUND, REC_BUSY };

/* One read of the record at r, if it holds uid, under its seqlock:
 * REC_FOUND (out and payload filled), REC_OTHER (it holds another member
 * or none; a writer may be mid-way: the caller re-validates the view) or
 * REC_BUSY (a writer holds it, or wrote it meanwhile: read again). The key
 * is checked first, so a probe that passes a tag collision reads one word,
 * not the record. */
static inline __attribute__((always_inline)) int
rec_read(gt_table *t, const struct gt_rec *r, uint64_t uid, gt_member *out,
         void *payload) {
    GT_HOOK("lookup_record"); /* tests/fault/test_lookup.c stops here */
    uint32_t s1 = LOAD(&r->seq, acquire);
    if (GT_UNLIKELY(s1 & 1u))
        return REC_BUSY;
    if (LOAD(&r->w[0], relaxed) != uid)
        return REC_OTHER;
    struct rec_copy c = rec_copy(r);
    uint32_t meta = LOAD(&r->meta, relaxed);
    if (payload)
        gt_rec_payload(r, t->g.payload_size, payload);
    /* pairs with the release fence of gt_seq_begin */
    atomic_thread_fence(memory_order_acquire);
    if (GT_UNLIKELY(LOAD(&r->seq, relaxed) != s1))
        return REC_BUSY;
    if (!(meta & GT_REC_LIVE))
        return REC_OTHER;
    if (out)
        rec_copy_out(&c, uid, out);
    return REC_FOUND;
}

/* rec_read until no writer is in the way: 1 found, 0 not, or GT_EBUSY
 * (or another error of gt__wait) when a writer holds the record too long. */
static inline int rec_get(gt_table *t, struct gt_guild *g,
                          const struct gt_rec *r, uint64_t uid, gt_member *out,
                          void *payload) {
    struct gt_wait wt = GT_WAIT_INIT;
    for (;;) {
        int x = rec_read(t, r, uid, out, payload);
        if (x != REC_BUSY)
            return x == REC_FOUND;
        if (LOAD(&r->seq, relaxed) & 1u) {
            int e = gt__wait(t, g, &wt);
            if (e)
                return e;
        }
    }
}

/* One member's probe of a view from control group grp on, with mask
 * (GT_MSB bits) over grp's slots: 1 (found, copied out), 0 (absent) or a
 * negative error. Reads only inside the block; the caller re-checks the
 * view afterwards. */
static inline int probe_from(gt_table *t, struct gt_guild *g,
                             const struct gt_store *st, uint64_t cap,
                             uint64_t h, uint64_t uid, gt_member *out,
                             void *payload, uint64_t grp, uint64_t mask) {
    uint64_t tagw = gt_tag_word(h);
    for (uint64_t n = 0; n <= cap / 8; n++) {
        uint64_t w = gt_group_load(st, grp);
        uint64_t m = gt_match_tag(w, tagw) & mask;
        while (m) {
            uint64_t i = grp + ((uint64_t)__builtin_ctzll(m) >> 3);
            int found = rec_get(t, g, gt_rec_at(t, st, cap, i), uid, out,
                                payload);
            if (found)
                return found;
            m &= m - 1;
        }
        if (gt_match_empty(w) & mask)
            return 0; /* an EMPTY slot ends the probe */
        mask = GT_MSB;
        grp += 8;
        if (grp >= cap)
            grp = 0;
    }
    return 0;
}

/* The probe from the member's home slot on. */
static inline int probe(gt_table *t, struct gt_guild *g,
                        const struct gt_store *st, uint64_t cap, uint64_t h,
                        uint64_t uid, gt_member *out, void *payload) {
    uint64_t pos = gt_fastrange(h, cap);
    return probe_from(t, g, st, cap, h, uid, out, payload, pos & ~7ull,
                      gt_home_mask(pos));
}

/* The probe on past the two groups lookup_fast reads, out of its line. */
static __attribute__((noinline)) int
probe_on(gt_table *t, struct gt_guild *g, const struct gt_store *st,
         uint64_t cap, uint64_t h, uint64_t uid, gt_member *out,
         void *payload, uint64_t grp) {
    return probe_from(t, g, st, cap, h, uid, out, payload, grp, GT_MSB);
}

/* A consistent read of the view lookups probe: 1 (st, cap set), 0 (the
 * guild is gone or has no storage) or a negative error. */
static inline int lookup_view(gt_table *t, struct gt_guild *g, uint64_t gid,
                              struct gt_wait *wt, uint32_t *vs,
                              const struct gt_store **st, uint64_t *cap) {
    GT_HOOK("lookup_guild"); /* tests/fault/test_lookup.c stops here */
    for (;;) {
        *vs = LOAD(&g->vseq, acquire);
        uint64_t so = LOAD(&g->store_off, relaxed);
        *cap = LOAD(&g->cap, relaxed);
        bool live = LOAD(&g->state, relaxed) == GT_GUILD_LIVE &&
                    LOAD(&g->id, relaxed) == gid;
        atomic_thread_fence(memory_order_acquire);
        if (GT_UNLIKELY((*vs & 1u) || LOAD(&g->vseq, relaxed) != *vs)) {
            int e = gt__wait(t, g, wt);
            if (e)
                return e;
            continue;
        }
        if (!live || !so)
            return 0;
        if (GT_UNLIKELY(!gt_store_ok(&t->g, so, *cap, t->g.stride)))
            return GT_ECORRUPT;
        *st = gt_at(t, so);
        GT_HOOK("lookup_view"); /* tests/fault/test_lookup.c stops here */
        return 1;
    }
}

/* Whether the view read with vs still stands after the probes; if not,
 * waits (the block may have been reused under them) and says so. */
static inline int lookup_recheck(gt_table *t, struct gt_guild *g,
                                 struct gt_wait *wt, uint32_t vs) {
    /* pairs with the release fence of the writer's vseq begin */
    atomic_thread_fence(memory_order_acquire);
    if (GT_LIKELY(LOAD(&g->vseq, relaxed) == vs))
        return 1;
    int e = gt__wait(t, g, wt);
    return e ? e : 0;
}

/* What lookup_fast returns when the lookup needs the full path. */
#define LOOKUP_SLOW 1

/* The usual lookup in one straight pass, with no retry: the guild is in
 * the handle's cache, no writer holds its view or the member's record, and
 * the member is the first tag match in the rest of its home control group
 * or in the next group, or an empty slot before any match says it is
 * absent; a probe that must go past the two groups goes on out of line
 * (probe_on). Returns 0 (found, out filled), GT_ENOENT (absent), a
 * negative error of the probe, or LOOKUP_SLOW for anything else (99
 * lookups of existing members in 100 do without it in the benchmark's
 * guild), which lookup_slow then handles from the start: everything read
 * here is validated before it is returned, and nothing is written but out
 * and payload, so giving up midway has no effect. Kept apart from
 * lookup_slow so that its few values stay in registers and more
 * independent lookups fit in the CPU's window at once. */
static inline __attribute__((always_inline)) int
lookup_fast(gt_table *t, uint64_t gid, uint64_t uid, gt_member *out,
            void *payload) {
    struct gt_guild *g = gt_guild_cached(t, gid);
    if (GT_UNLIKELY(!g))
        return LOOKUP_SLOW;
    GT_HOOK("lookup_guild");
    uint32_t vs = LOAD(&g->vseq, acquire);
    uint64_t so = LOAD(&g->store_off, relaxed), cap = LOAD(&g->cap, relaxed);
    if (GT_UNLIKELY((vs & 1u) || LOAD(&g->state, relaxed) != GT_GUILD_LIVE ||
                    LOAD(&g->id, relaxed) != gid || !so ||
                    !gt_store_ok(&t->g, so, cap, t->g.stride)))
        return LOOKUP_SLOW;
    GT_HOOK("lookup_view");
    /* (so, cap) may be torn by a writer that replaced the view since vs: it
     * is still inside the file (gt_store_ok), and the check of vseq at the
     * end refuses what was read through it */
    const struct gt_store *st = gt_at(t, so);
    uint64_t h = gt_hash(t, uid), pos = gt_fastrange(h, cap);
    fetch_home(t, st, cap, h);
    /* the home group from pos on, then the next group */
    uint64_t grp = pos & ~7ull, next = grp + 8 < cap ? grp + 8 : 0;
    uint64_t c0 = gt_group_load(st, grp), c1 = gt_group_load(st, next);
    uint64_t tagw = gt_tag_word(h), mask = gt_home_mask(pos);
    uint64_t m = gt_match_tag(c0, tagw) & mask;
    if (!m) {
        int found = 0; /* an EMPTY slot ends the probe */
        if (!(gt_match_empty(c0) & mask)) { /* no EMPTY: on */
            grp = next;
            m = gt_match_tag(c1, tagw);
            if (!m && !gt_match_empty(c1) &&
                (found = probe_on(t, g, st, cap, h, uid, out, payload,
                                  grp + 8 < cap ? grp + 8 : 0)) < 0)
                return found;
        }
        if (!m) {
            /* pairs with the release fence of the writer's vseq begin */
            atomic_thread_fence(memory_order_acquire);
            if (LOAD(&g->vseq, relaxed) != vs)
                return LOOKUP_SLOW;
            return found ? 0 : GT_ENOENT;
        }
    }
    const struct gt_rec *r =
        gt_rec_at(t, st, cap, grp + ((uint64_t)__builtin_ctzll(m) >> 3));
    if (GT_UNLIKELY(rec_read(t, r, uid, out, payload) != REC_FOUND))
        return LOOKUP_SLOW;
    /* the acquire fence of rec_read pairs with the view's seqlock too */
    if (GT_UNLIKELY(LOAD(&g->vseq, relaxed) != vs))
        return LOOKUP_SLOW;
    return 0;
}

/* Every lookup lookup_fast gives up: from the start, retrying while
 * writers hold what it reads, and reporting the errors. */
static __attribute__((noinline)) int
lookup_slow(gt_table *t, uint64_t gid, uint64_t uid, gt_member *out,
            void *payload) {
    struct gt_guild *g = gt_guild_lookup(t, gid);
    if (GT_UNLIKELY(!g))
        return GT_ENOENT;
    uint64_t h = gt_hash(t, uid);
    struct gt_wait wt = GT_WAIT_INIT;
    for (;;) {
        uint32_t vs;
        const struct gt_store *st = NULL; /* set when lookup_view returns 1
                                             (-O3 --coverage cannot tell) */
        uint64_t cap = 0;
        int r = lookup_view(t, g, gid, &wt, &vs, &st, &cap);
        if (r <= 0)
            return r ? r : GT_ENOENT;
        /* Most members sit in their home slot: start fetching its record
         * (both of its lines) now, so that the misses overlap the control
         * group's. */
        fetch_home(t, st, cap, h);
        int found = probe(t, g, st, cap, h, uid, out, payload);
        if (found < 0)
            return found;
        r = lookup_recheck(t, g, &wt, vs);
        if (r < 0)
            return r;
        if (r)
            return found ? 0 : GT_ENOENT;
    }
}

static int lookup(gt_table *t, uint64_t gid, uint64_t uid, gt_member *out,
                  void *payload) {
    if (GT_UNLIKELY(!t))
        return GT_EINVAL;
    gt_stat_lookup(t);
    int r = lookup_fast(t, gid, uid, out, payload);
    if (GT_LIKELY(r != LOOKUP_SLOW))
        return r;
    return lookup_slow(t, gid, uid, out, payload);
}

GT_API int gt_lookup_many(gt_table *t, uint64_t guild_id,
                          const uint64_t *user_ids, size_t n, gt_member *out,
                          void *payloads, uint8_t *found) {
    if (!t || (n && (!user_ids || !found)) || n > INT_MAX)
        return GT_EINVAL;
    if (!n)
        return 0;
    memset(found, 0, n);
    gt_stat_lookups(t, n);
    struct gt_guild *g = gt_guild_lookup(t, guild_id);
    if (!g)
        return 0;
    uint32_t ps = t->g.payload_size;
    struct gt_wait wt = GT_WAIT_INIT;
    struct ahead ah = {.key = (const uint8_t *)user_ids, .stride = sizeof *user_ids};
    int hits = 0;
    for (size_t at = 0; at < n;) { /* at: the first lookup not validated */
        uint32_t vs;
        const struct gt_store *st = NULL;
        uint64_t cap;
        int r = lookup_view(t, g, guild_id, &wt, &vs, &st, &cap);
        if (r <= 0)
            return r < 0 ? r : hits;
        ahead_from(&ah, at, n);
        int got = 0;
        for (size_t i = at; i < n;) {
            uint64_t h = ahead_to(&ah, t, st, cap, i);
            gt_member *o = out ? &out[i] : NULL;
            void *pl = payloads ? (uint8_t *)payloads + i * ps : NULL;
            /* the record fetched ahead first: most members are there, and
             * finding one there needs no control byte read again. A record
             * that holds the member whole answers (as a probe's would; the
             * view is re-checked below); anything else, the full probe */
            int f = 1;
            if (rec_read(t, gt_rec_at(t, st, cap, ah.slot[i % HASH_RING]),
                         user_ids[i], o, pl) != REC_FOUND &&
                (f = probe(t, g, st, cap, h, user_ids[i], o, pl)) < 0)
                return f;
            found[i] = (uint8_t)f;
            got += f;
            i++;
            if (i - at < MANY_WINDOW && i < n)
                continue;
            if ((r = lookup_recheck(t, g, &wt, vs)) < 0)
                return r;
            if (!r)
                break; /* the view changed: from `at` again, in a new one */
            hits += got;
            got = 0;
            at = i;
        }
    }
    return hits;
}

GT_API int gt_lookup(gt_table *t, uint64_t guild_id, uint64_t user_id,
                     gt_member *out, void *payload) {
    return lookup(t, guild_id, user_id, out, payload);
}

GT_API int gt_contains(gt_table *t, uint64_t guild_id, uint64_t user_id) {
    int r = lookup(t, guild_id, user_id, NULL, NULL);
    return r == 0 ? 1 : r == GT_ENOENT ? 0 : r;
}
