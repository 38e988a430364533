/*
 * check.c - gt_check: every invariant the other files keep, verified.
 *
 * The table is made quiescent first (quiesce): every guild lock a writer
 * could hold, and the global lock, which also keeps guilds from being made
 * meanwhile; what dead writers left is recovered, as any writer would.
 * Readers are not stopped (they write nothing the check reads, except their
 * own slots' epochs).
 *
 * Nothing read is trusted: every offset and index is range-checked before it
 * is followed, so a damaged table gives violations, not a crash (the
 * fuzz test drives this with damaged files).
 *
 * What is checked, per area (the invariants are stated in the files named):
 * - guild headers and directory (guild.c): live headers have one directory
 *   entry each, entries point at live headers of their id and are reachable
 *   by probing, counts and the free-header list agree;
 * - each guild's storage (index.c): control bytes agree with records (tag,
 *   LIVE, even sequence), every member is reachable from its home slot, no
 *   user twice, counters (members, online, active, tombstones) exact;
 * - each fanout set (active.c): chunk counts and bitmaps, every entry
 *   points at an ACTIVE record that points back, with the same routing;
 * - the heap (alloc.c): blocks tile it, free lists are consistent and hold
 *   exactly the free blocks, free buddies are merged, every used block is
 *   referenced exactly once (a guild's storage or fanout set, or the retire
 *   list), bytes in use add up, and every byte in use is committed;
 * - slots and logs (readers.c, lock.c): no undo log left pending.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct ref {
    uint64_t off;   /* heap block */
    uint64_t bytes; /* in use */
    int who;        /* guild index, or -1 for the retire list */
};

struct ck {
    gt_table *t;
    gt_check_report *rep;
    uint64_t done, total; /* members checked, for report->progress */
    uint64_t messages;
    struct ref *refs;
    size_t nrefs, cap;
};

__attribute__((format(printf, 2, 3))) static void bad(struct ck *c,
                                                      const char *fmt, ...) {
    c->rep->violations++;
    if (!c->rep->fn || c->messages > GT_CHECK_MAX_MESSAGES)
        return;
    char msg[256];
    if (++c->messages > GT_CHECK_MAX_MESSAGES) {
        snprintf(msg, sizeof msg, "more than %u violations: the rest are "
                 "only counted", GT_CHECK_MAX_MESSAGES);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    c->rep->fn(c->rep->ctx, msg);
}

static int add_ref(struct ck *c, uint64_t off, uint64_t bytes, int who) {
    if (c->nrefs == c->cap) {
        size_t n = c->cap ? 2 * c->cap : 256;
        struct ref *r = realloc(c->refs, n * sizeof *r);
        if (!r)
            return GT_ENOMEM;
        c->refs = r;
        c->cap = n;
    }
    c->refs[c->nrefs++] = (struct ref){off, bytes, who};
    return 0;
}

static bool committed(gt_table *t, uint64_t off, uint64_t len) {
    const a64 *bits = gt_at(t, t->g.commit_off);
    if (len == 0)
        return true;
    for (uint64_t p = off / GT_PAGE; p <= (off + len - 1) / GT_PAGE; p++)
        if (!(LOAD(&bits[p >> 6], relaxed) & (1ull << (p & 63))))
            return false;
    return true;
}

static bool in_heap(gt_table *t, uint64_t off, uint64_t bytes) {
    const struct gt_geom *g = &t->g;
    return off >= g->heap_off && off < g->heap_off + g->heap_size &&
           bytes <= g->heap_off + g->heap_size - off;
}

/* ---- one guild ------------------------------------------------------------ */

/* A small open-addressing set of user ids, to find duplicates. */
struct idset {
    uint64_t *v;
    bool *used;
    uint64_t mask;
};
static int idset_init(struct idset *s, uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n + 16)
        cap <<= 1;
    s->v = malloc(cap * sizeof *s->v);
    s->used = calloc(cap, 1);
    s->mask = cap - 1;
    return s->v && s->used ? 0 : GT_ENOMEM;
}
static bool idset_add(struct idset *s, uint64_t id) {
    uint64_t i = (id * 0x9E3779B97F4A7C15ull) >> 20 & s->mask;
    for (; s->used[i]; i = (i + 1) & s->mask)
        if (s->v[i] == id)
            return false;
    s->used[i] = true;
    s->v[i] = id;
    return true;
}
static void idset_free(struct idset *s) {
    free(s->v);
    free(s->used);
}

static void check_act(struct ck *c, uint32_t gi, const struct gt_store *st,
                      uint32_t cap, const struct gt_act *a, uint64_t *live) {
    gt_table *t = c->t;
    uint32_t n = a->nchunks, hw = LOAD(&a->hw, relaxed);
    const uint64_t *nf = gt_act_nonfull(a);
    *live = 0;
    for (uint32_t ch = 0; ch < n; ch++) {
        const struct gt_chunk *k = gt_chunk_at(a, n, ch);
        bool nonfull = nf[ch / 64] >> (ch % 64) & 1;
        if (ch >= hw) {
            if (!nonfull)
                bad(c, "guild #%u: unused fanout chunk %u marked full", gi, ch);
            continue;
        }
        uint64_t occ = LOAD(&k->occ, relaxed);
        if (LOAD(&k->seq, relaxed) & 1u)
            bad(c, "guild #%u: fanout chunk %u left mid-write", gi, ch);
        if (k->n != (uint32_t)__builtin_popcountll(occ))
            bad(c, "guild #%u: fanout chunk %u counts %u, holds %d", gi, ch,
                k->n, __builtin_popcountll(occ));
        if (nonfull != (k->n < GT_CHUNK_ENTRIES))
            bad(c, "guild #%u: fanout chunk %u nonfull bit wrong", gi, ch);
        *live += (uint64_t)__builtin_popcountll(occ);
        for (; occ; occ &= occ - 1) {
            uint32_t e = (uint32_t)__builtin_ctzll(occ);
            const struct gt_aent *x = &k->e[e];
            uint32_t slot = LOAD(&k->ref[e].slot, relaxed);
            uint32_t idx = ch * GT_CHUNK_ENTRIES + e;
            /* a fanout tests act32 only in a chunk whose act_max is new */
            if ((int32_t)(LOAD(&k->ref[e].act32, relaxed) -
                          LOAD(&k->act_max, relaxed)) > 0)
                bad(c, "guild #%u: fanout entry %u is newer than its chunk "
                    "says", gi, idx);
            if (!st || slot >= cap) {
                bad(c, "guild #%u: fanout entry %u points at slot %u of %u",
                    gi, idx, slot, cap);
                continue;
            }
            const struct gt_rec *r = gt_rec_at(t, st, cap, slot);
            uint32_t meta = LOAD(&r->meta, relaxed);
            uint64_t w7 = LOAD(&r->w[7], relaxed);
            if (meta != (GT_REC_LIVE | (idx + 1)) ||
                LOAD(&r->w[0], relaxed) != LOAD(&x->user_id, relaxed) ||
                LOAD(&r->w[1], relaxed) != LOAD(&x->session_id, relaxed) ||
                (uint32_t)w7 != LOAD(&x->worker, relaxed) ||
                (uint32_t)(w7 >> 32) != LOAD(&x->flags, relaxed))
                bad(c, "guild #%u: fanout entry %u does not match the record "
                    "in slot %u", gi, idx, slot);
        }
    }
    if (a->live != *live)
        bad(c, "guild #%u: fanout set counts %u entries, holds %lu", gi,
            a->live, (unsigned long)*live);
}

static int check_store(struct ck *c, uint32_t gi, struct gt_guild *g,
                       const struct gt_store *st, uint32_t cap,
                       const struct gt_act *a) {
    gt_table *t = c->t;
    uint64_t members = 0, online = 0, active = 0, tombs = 0;
    struct idset ids;
    if (idset_init(&ids, cap))
        return idset_free(&ids), GT_ENOMEM;
    const a8 *ctrl = gt_ctrl(st);
    for (uint64_t i = 0; i < cap; i++) {
        uint8_t cb = LOAD(&ctrl[i], relaxed);
        if (cb == GT_CTRL_EMPTY || cb == GT_CTRL_DEAD) {
            /* scans rely on it: see gt__store_make */
            const struct gt_rec *r = gt_rec_at(t, st, cap, i);
            if (LOAD(&r->meta, relaxed) & GT_REC_LIVE)
                bad(c, "guild #%u: %s slot %lu holds a live record", gi,
                    cb == GT_CTRL_DEAD ? "deleted" : "empty",
                    (unsigned long)i);
            tombs += cb == GT_CTRL_DEAD;
            continue;
        }
        if (cb & 0x80u) {
            bad(c, "guild #%u: slot %lu has control byte 0x%02x", gi,
                (unsigned long)i, cb);
            continue;
        }
        const struct gt_rec *r = gt_rec_at(t, st, cap, i);
        uint32_t meta = LOAD(&r->meta, relaxed);
        uint64_t uid = LOAD(&r->w[0], relaxed), h = gt_hash(t, uid);
        uint32_t flags = (uint32_t)(LOAD(&r->w[7], relaxed) >> 32);
        if (LOAD(&r->seq, relaxed) & 1u)
            bad(c, "guild #%u: slot %lu left mid-write", gi, (unsigned long)i);
        if (!(meta & GT_REC_LIVE)) {
            bad(c, "guild #%u: slot %lu is marked full but holds no member",
                gi, (unsigned long)i);
            continue;
        }
        members++;
        if ((++c->done & (GT_CHECK_PROGRESS_EVERY - 1)) == 0 &&
            c->rep->progress) {
            int stop = c->rep->progress(c->rep->progress_ctx, c->done, c->total);
            if (stop) {
                idset_free(&ids);
                return stop;
            }
        }
        if ((h & 0x7f) != cb)
            bad(c, "guild #%u: user %lu in slot %lu has the wrong tag", gi,
                (unsigned long)uid, (unsigned long)i);
        /* reachable: no EMPTY slot between its home and it */
        for (uint64_t j = gt_fastrange(h, cap); j != i; j = j + 1 == cap ? 0 : j + 1)
            if (LOAD(&ctrl[j], relaxed) == GT_CTRL_EMPTY) {
                bad(c, "guild #%u: user %lu in slot %lu is past an empty "
                    "slot: lookups cannot find it", gi, (unsigned long)uid,
                    (unsigned long)i);
                break;
            }
        if (!idset_add(&ids, uid))
            bad(c, "guild #%u: user %lu stored twice", gi, (unsigned long)uid);
        if (flags & GT_FLAGS_LIBRARY & ~(GT_ONLINE | GT_ACTIVE))
            bad(c, "guild #%u: user %lu has reserved flags 0x%x", gi,
                (unsigned long)uid, flags);
        online += !!(flags & GT_ONLINE);
        active += !!(flags & GT_ACTIVE);
        uint32_t idx = meta & ~GT_REC_LIVE;
        if (!!(flags & GT_ACTIVE) != (idx != 0))
            bad(c, "guild #%u: user %lu is %sactive but %s the fanout set",
                gi, (unsigned long)uid, flags & GT_ACTIVE ? "" : "not ",
                idx ? "in" : "not in");
        else if (idx && (!a || (idx - 1) / GT_CHUNK_ENTRIES >= LOAD(&a->hw, relaxed)))
            bad(c, "guild #%u: user %lu names fanout entry %u, out of range",
                gi, (unsigned long)uid, idx - 1);
    }
    idset_free(&ids);
    uint64_t live = 0;
    if (a)
        check_act(c, gi, st, cap, a, &live);
    if (live != active)
        bad(c, "guild #%u: %lu active members, %lu fanout entries", gi,
            (unsigned long)active, (unsigned long)live);
    if (LOAD(&g->members, relaxed) != members ||
        LOAD(&g->online, relaxed) != online ||
        LOAD(&g->active, relaxed) != active || LOAD(&g->tombs, relaxed) != tombs)
        bad(c, "guild #%u: counters say %lu members, %lu online, %lu active, "
            "%lu tombstones; storage holds %lu, %lu, %lu, %lu", gi,
            (unsigned long)LOAD(&g->members, relaxed),
            (unsigned long)LOAD(&g->online, relaxed),
            (unsigned long)LOAD(&g->active, relaxed),
            (unsigned long)LOAD(&g->tombs, relaxed), (unsigned long)members,
            (unsigned long)online, (unsigned long)active, (unsigned long)tombs);
    if (members + tombs > cap)
        bad(c, "guild #%u: more members than slots", gi);
    c->rep->members += members;
    return 0;
}

static int check_guild(struct ck *c, uint32_t gi, uint64_t *members) {
    gt_table *t = c->t;
    struct gt_guild *g = gt_guild_at(t, gi);
    uint32_t state = LOAD(&g->state, relaxed);
    uint64_t so = LOAD(&g->store_off, relaxed), ao = LOAD(&g->act_off, relaxed);
    uint32_t cap = LOAD(&g->cap, relaxed);
    if (LOAD(&g->vseq, relaxed) & 1u)
        bad(c, "guild #%u: view left mid-change", gi);
    if (state == GT_GUILD_FREE) {
        if (so || ao || LOAD(&g->flags, relaxed) || LOAD(&g->members, relaxed))
            bad(c, "guild #%u: free header still holds a guild", gi);
        return 0;
    }
    if (state != GT_GUILD_LIVE) {
        bad(c, "guild #%u: state %u", gi, state);
        return 0;
    }
    c->rep->guilds++;
    *members += LOAD(&g->members, relaxed);
    const struct gt_store *st = NULL;
    const struct gt_act *a = NULL;
    if (so) {
        uint64_t bytes = gt_store_size(cap, t->g.stride);
        st = gt_at(t, so);
        if (!gt_store_ok(&t->g, so, cap, t->g.stride) ||
            !in_heap(t, so, bytes) || !committed(t, so, bytes)) {
            bad(c, "guild #%u: storage at %lu (%u slots) is not in the heap or "
                "not committed", gi, (unsigned long)so, cap);
            return 0;
        }
        if (st->magic != GT_STORE_MAGIC || st->cap != cap ||
            st->guild_id != LOAD(&g->id, relaxed) || st->bytes != bytes ||
            LOAD(&g->store_bytes, relaxed) != bytes)
            bad(c, "guild #%u: storage header does not match the guild", gi);
        int r = add_ref(c, so, bytes, (int)gi);
        if (r)
            return r;
    } else if (LOAD(&g->members, relaxed)) {
        bad(c, "guild #%u: members but no storage", gi);
    }
    if (ao) {
        a = gt_at(t, ao);
        if (!in_heap(t, ao, sizeof *a) || !committed(t, ao, sizeof *a) ||
            !in_heap(t, ao, gt__act_bytes(a->nchunks)) ||
            !committed(t, ao, gt__act_bytes(a->nchunks)) ||
            LOAD(&a->hw, relaxed) > a->nchunks) {
            bad(c, "guild #%u: fanout set at %lu is not in the heap or not "
                "committed", gi, (unsigned long)ao);
            return 0;
        }
        if (a->magic != GT_ACT_MAGIC || a->guild_id != LOAD(&g->id, relaxed) ||
            a->bytes != gt__act_bytes(a->nchunks) ||
            LOAD(&g->act_bytes, relaxed) != a->bytes)
            bad(c, "guild #%u: fanout set header does not match the guild", gi);
        int r = add_ref(c, ao, a->bytes, (int)gi);
        if (r)
            return r;
    }
    return st ? check_store(c, gi, g, st, cap, a) : 0;
}

/* ---- the directory and free headers ----------------------------------------- */

static void check_directory(struct ck *c, uint64_t hw) {
    gt_table *t = c->t;
    struct gt_seg *s = t->seg;
    uint64_t cap = t->g.dir_cap, dead = 0;
    uint32_t *seen = calloc(hw ? hw : 1, sizeof *seen);
    if (!seen) {
        bad(c, "directory: out of memory to check it");
        return;
    }
    if (LOAD(&s->dir_seq, relaxed) & 1u)
        bad(c, "directory: left mid-rebuild");
    const struct gt_dirent *d = gt_at(t, t->g.dir_off);
    const uint64_t per_page = GT_PAGE / sizeof *d;
    _Static_assert(GT_PAGE % sizeof(struct gt_dirent) == 0, "entries per page");
    for (uint64_t i = 0; i < cap; i++) {
        /* a page never committed was never written: all EMPTY entries.
         * Skipping it keeps the check from faulting in (and so committing)
         * the whole directory of a table sized for many guilds. */
        if (i % per_page == 0 && !committed(t, gt_off(t, &d[i]), GT_PAGE)) {
            i += per_page - 1;
            continue;
        }
        uint32_t st = LOAD(&d[i].state, relaxed);
        if (st == GT_DIR_DEAD)
            dead++;
        if (st != GT_DIR_LIVE)
            continue;
        uint32_t idx = LOAD(&d[i].idx, relaxed);
        uint64_t id = LOAD(&d[i].id, relaxed);
        if (idx >= hw) {
            bad(c, "directory: entry %lu points at header %u of %lu",
                (unsigned long)i, idx, (unsigned long)hw);
            continue;
        }
        const struct gt_guild *g = gt_guild_at(t, idx);
        if (LOAD(&g->state, relaxed) != GT_GUILD_LIVE ||
            LOAD(&g->id, relaxed) != id) {
            bad(c, "directory: entry for guild %lu points at header %u, which "
                "holds another guild", (unsigned long)id, idx);
            continue;
        }
        seen[idx]++;
        for (uint64_t j = gt__dir_home(t, id); j != i; j = (j + 1) & (cap - 1))
            if (LOAD(&d[j].state, relaxed) == GT_DIR_EMPTY) {
                bad(c, "directory: guild %lu is past an empty entry",
                    (unsigned long)id);
                break;
            }
    }
    for (uint64_t i = 0; i < hw; i++) {
        const struct gt_guild *g = gt_guild_at(t, (uint32_t)i);
        bool live = LOAD(&g->state, relaxed) == GT_GUILD_LIVE;
        if (live && seen[i] != 1)
            bad(c, "directory: guild %lu (header %lu) has %u entries",
                (unsigned long)LOAD(&g->id, relaxed), (unsigned long)i, seen[i]);
    }
    free(seen);
    if (LOAD(&s->dir_dead, relaxed) != dead)
        bad(c, "directory: %lu tombstones counted, %lu found",
            (unsigned long)LOAD(&s->dir_dead, relaxed), (unsigned long)dead);
}

static void check_free_headers(struct ck *c, uint64_t hw, uint64_t live) {
    gt_table *t = c->t;
    uint64_t n = 0, f = t->seg->guild_free;
    while (f && n <= hw) {
        if (f - 1 >= hw) {
            bad(c, "guild headers: free list names header %lu of %lu",
                (unsigned long)(f - 1), (unsigned long)hw);
            return;
        }
        const struct gt_guild *g = gt_guild_at(t, (uint32_t)(f - 1));
        if (LOAD(&g->state, relaxed) != GT_GUILD_FREE) {
            bad(c, "guild headers: header %lu is live but on the free list",
                (unsigned long)(f - 1));
            return;
        }
        n++;
        f = LOAD(&g->next_free, relaxed);
    }
    if (n > hw)
        bad(c, "guild headers: the free list loops");
    else if (n + live != hw)
        bad(c, "guild headers: %lu used, %lu free, %lu live: some are lost",
            (unsigned long)hw, (unsigned long)n, (unsigned long)live);
}

/* ---- the heap ------------------------------------------------------------------ */

static int ref_cmp(const void *a, const void *b) {
    const struct ref *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void check_heap(struct ck *c) {
    gt_table *t = c->t;
    struct gt_seg *s = t->seg;
    const struct gt_geom *g = &t->g;
    const uint8_t *meta = gt_at(t, g->meta_off);
    uint64_t free_blocks[GT_HEAP_ORDERS] = {0}, used_bytes = 0;
    if (c->nrefs)
        qsort(c->refs, c->nrefs, sizeof *c->refs, ref_cmp);
    size_t ri = 0;
    for (uint64_t h = 0; h < g->heap_size;) {
        uint8_t m = meta[h >> GT_HEAP_MIN_ORDER];
        uint32_t o = m & 0x3Fu;
        bool ok = (m & 0xC0u) && !((m & 0x80u) && (m & 0x40u)) &&
                  o >= GT_HEAP_MIN_ORDER && o <= g->top_order &&
                  !(h & ((1ull << o) - 1));
        if (!ok) {
            bad(c, "heap: no block starts at %lu (meta 0x%02x)",
                (unsigned long)h, m);
            h += 1ull << GT_HEAP_MIN_ORDER;
            continue;
        }
        c->rep->blocks++;
        uint64_t off = g->heap_off + h;
        while (ri < c->nrefs && c->refs[ri].off < off) {
            bad(c, "heap: %lu is referenced but starts no block",
                (unsigned long)c->refs[ri].off);
            ri++;
        }
        size_t refs = 0;
        while (ri < c->nrefs && c->refs[ri].off == off) {
            if (c->refs[ri].bytes > (1ull << o))
                bad(c, "heap: block %lu holds %lu bytes in %lu", (unsigned long)off,
                    (unsigned long)c->refs[ri].bytes, (unsigned long)(1ull << o));
            used_bytes += gt_align_up(c->refs[ri].bytes, 64);
            refs++, ri++;
        }
        if (m & 0x80u) {
            free_blocks[o]++;
            if (refs)
                bad(c, "heap: free block %lu is still referenced",
                    (unsigned long)off);
            if (!committed(t, off, 16))
                bad(c, "heap: links of free block %lu not committed",
                    (unsigned long)off);
            uint64_t b = h ^ (1ull << o);
            if (o < g->top_order && b < g->heap_size &&
                meta[b >> GT_HEAP_MIN_ORDER] == (0x80u | o))
                bad(c, "heap: free buddies %lu and %lu were not merged",
                    (unsigned long)off, (unsigned long)(g->heap_off + b));
        } else if (refs != 1) {
            bad(c, "heap: used block %lu is referenced %zu times%s",
                (unsigned long)off, refs, refs ? "" : " (leaked)");
        }
        if (!committed(t, g->meta_off + (h >> GT_HEAP_MIN_ORDER), 1))
            bad(c, "heap: meta of block %lu not committed", (unsigned long)off);
        h += 1ull << o;
    }
    for (; ri < c->nrefs; ri++)
        bad(c, "heap: %lu is referenced but outside the heap",
            (unsigned long)c->refs[ri].off);
    if (used_bytes != LOAD(&s->heap_used, relaxed))
        bad(c, "heap: %lu bytes in use counted, %lu referenced",
            (unsigned long)LOAD(&s->heap_used, relaxed), (unsigned long)used_bytes);
    /* the free lists hold exactly the free blocks, linked both ways */
    for (uint32_t o = GT_HEAP_MIN_ORDER; o <= g->top_order; o++) {
        uint64_t n = 0, prev = 0, link = s->free_head[o];
        while (link && n <= free_blocks[o]) {
            uint64_t h = link - 1;
            if (h >= g->heap_size || (h & ((1ull << o) - 1)) ||
                meta[h >> GT_HEAP_MIN_ORDER] != (0x80u | o)) {
                bad(c, "heap: free list %u names %lu, not a free block of that "
                    "order", o, (unsigned long)h);
                break;
            }
            const uint64_t *l = gt_at(t, g->heap_off + h);
            if (l[1] != prev)
                bad(c, "heap: free list %u: back link of %lu is wrong", o,
                    (unsigned long)h);
            prev = link;
            link = l[0];
            n++;
        }
        if (n != free_blocks[o])
            bad(c, "heap: free list %u holds %lu blocks, %lu are free%s", o,
                (unsigned long)n, (unsigned long)free_blocks[o],
                n > free_blocks[o] ? " (it loops)" : "");
    }
}

static int check_retired(struct ck *c) {
    gt_table *t = c->t;
    struct gt_seg *s = t->seg;
    const struct gt_retired *rl = gt_at(t, t->g.retire_off);
    uint64_t n = 0, bytes = 0;
    for (uint32_t i = 0; i < t->g.retire_cap; i++) {
        if (!rl[i].off)
            continue;
        n++;
        bytes += (uint64_t)rl[i].units << 6;
        if (rl[i].epoch > LOAD(&s->epoch, relaxed))
            bad(c, "retire list: entry %u from a future epoch", i);
        int r = add_ref(c, rl[i].off, (uint64_t)rl[i].units << 6, -1);
        if (r)
            return r;
    }
    if (n != LOAD(&s->retired_n, relaxed) ||
        bytes != LOAD(&s->retired_bytes, relaxed))
        bad(c, "retire list: counts %lu blocks, %lu bytes; holds %lu, %lu",
            (unsigned long)LOAD(&s->retired_n, relaxed),
            (unsigned long)LOAD(&s->retired_bytes, relaxed), (unsigned long)n,
            (unsigned long)bytes);
    return 0;
}

static void check_slots(struct ck *c) {
    gt_table *t = c->t;
    for (uint32_t i = 0; i < t->g.max_slots; i++) {
        struct gt_slot *s = gt_slot_at(t, i);
        if (LOAD(&s->log.n, relaxed) != 0)
            bad(c, "slot %u: an undo log is left pending", i);
        if (LOAD(&s->epoch, relaxed) >> GT_PIN_BITS > LOAD(&t->seg->epoch, relaxed))
            bad(c, "slot %u: pinned at a future epoch", i);
    }
}

/* ---- entry point ------------------------------------------------------------- */

static bool needs_recovery(gt_table *t, uint32_t gi) {
    struct gt_guild *g = gt_guild_at(t, gi);
    uint32_t si = LOAD(&g->log_slot, relaxed);
    if (si >= t->g.max_slots)
        return false;
    const struct gt_log *log = &gt_slot_at(t, si)->log;
    return gt__log_is_for(log, gi);
}

/* Stop every writer: hold every guild's lock that a writer could hold, and
 * the global lock (which also keeps new guilds from appearing). Guild locks
 * are only ever waited for in increasing index order, never while the
 * global lock is held, so neither writers (one guild lock, then the global
 * lock) nor another check can deadlock with this. Returns with the global
 * lock held and *hw the number of headers in use. */
static int quiesce(gt_table *t, bool *held, uint64_t *hw) {
    struct gt_seg *s = t->seg;
    uint64_t max = t->g.max_guilds;
    for (;;) {
        int r = gt__glock(t);
        if (r)
            return r;
        *hw = s->guild_hw < max ? s->guild_hw : max;
        uint64_t busy = UINT64_MAX;
        bool recover = false;
        for (uint64_t i = 0; i < *hw; i++) {
            struct gt_guild *g = gt_guild_at(t, (uint32_t)i);
            if (held[i] || !LOAD(&g->inited, relaxed))
                continue;
            int e = pthread_mutex_trylock(&g->lock);
            if (e == EOWNERDEAD)
                pthread_mutex_consistent(&g->lock);
            else if (e == EBUSY) {
                busy = i;
                break;
            } else if (e) {
                gt__gunlock(t);
                return e == ENOTRECOVERABLE ? GT_ECORRUPT : -e;
            }
            held[i] = true;
            recover |= needs_recovery(t, (uint32_t)i);
        }
        if (busy == UINT64_MAX && !recover)
            return 0;
        gt__gunlock(t);
        if (recover) /* a dead writer's log: recovery takes the global lock */
            for (uint64_t i = 0; i < *hw; i++)
                if (held[i])
                    gt__recover_guild(t, gt_guild_at(t, (uint32_t)i));
        if (busy != UINT64_MAX) {
            for (uint64_t i = busy + 1; i < *hw; i++)
                if (held[i]) {
                    pthread_mutex_unlock(&gt_guild_at(t, (uint32_t)i)->lock);
                    held[i] = false;
                }
            struct gt_guild *g = gt_guild_at(t, (uint32_t)busy);
            int e = pthread_mutex_lock(&g->lock);
            if (e == EOWNERDEAD)
                pthread_mutex_consistent(&g->lock);
            else if (e)
                return e == ENOTRECOVERABLE ? GT_ECORRUPT : -e;
            held[busy] = true;
            gt__recover_guild(t, g);
        }
    }
}

GT_API int gt_check(gt_table *t, gt_check_report *report) {
    if (!t)
        return GT_EINVAL;
    gt_check_report none = {0};
    if (!report)
        report = &none;
    report->violations = report->guilds = report->members = report->blocks = 0;
    struct ck c = {.t = t, .rep = report};
    struct gt_seg *s = t->seg;
    gt__sweep(t, false);
    bool *held = calloc(t->g.max_guilds, sizeof *held);
    if (!held)
        return GT_ENOMEM;
    uint64_t hw = 0;
    int r = quiesce(t, held, &hw);
    if (r == 0) {
        c.total = LOAD(&s->members, relaxed); /* writers are stopped */
        uint64_t live = 0, members = 0;
        for (uint64_t i = 0; i < hw && r == 0; i++)
            r = check_guild(&c, (uint32_t)i, &members);
        for (uint64_t i = 0; i < hw; i++)
            live += LOAD(&gt_guild_at(t, (uint32_t)i)->state, relaxed) ==
                    GT_GUILD_LIVE;
        if (r == 0)
            r = check_retired(&c);
        if (r == 0) {
            check_heap(&c);
            check_directory(&c, hw);
            check_free_headers(&c, hw, live);
            check_slots(&c);
            /* the library reads only its validated copy (t->g); a header
             * changed since is damage another opener would refuse */
            if (memcmp(&s->g, &t->g, sizeof t->g) != 0)
                bad(&c, "header: differs from the geometry validated at open");
            if (LOAD(&s->guilds, relaxed) != live)
                bad(&c, "table: counts %lu guilds, %lu are live",
                    (unsigned long)LOAD(&s->guilds, relaxed), (unsigned long)live);
            if (LOAD(&s->members, relaxed) != members)
                bad(&c, "table: counts %lu members, guilds hold %lu",
                    (unsigned long)LOAD(&s->members, relaxed),
                    (unsigned long)members);
            if (members > t->g.max_members || live > t->g.max_guilds)
                bad(&c, "table: over its limits");
        }
        gt__gunlock(t);
    }
    for (uint64_t i = 0; i < t->g.max_guilds; i++)
        if (held[i])
            pthread_mutex_unlock(&gt_guild_at(t, (uint32_t)i)->lock);
    free(held);
    free(c.refs);
    if (r)
        return r;
    if (report->progress)
        report->progress(report->progress_ctx, c.done, c.total);
    return report->violations ? GT_ECORRUPT : 0;
}
