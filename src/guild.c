/*
 * guild.c - guild headers, the guild directory, and guild views.
 *
 * Guild headers are type-stable: max_guilds of them sit at fixed offsets and
 * are never freed, so a reader may always dereference one and then check
 * that it still describes the guild it wants (id, state, view sequence).
 * A header's mutex is initialised once, the first time the header is used,
 * and never again: threads may be blocked on it while the guild is deleted
 * and its header reused, and they re-check the header after locking.
 *
 * The directory maps guild_id -> header index by linear probing with
 * tombstones. It is only a hint derived from the headers: a reader verifies
 * the header it finds, and when it finds nothing it re-checks dir_seq, which
 * is odd while the directory is rebuilt (in place, from the headers, when
 * tombstones pass a quarter of it). The directory has twice max_guilds
 * entries, so its load stays under 3/4.
 *
 * The view (storage, fanout set, capacity) is read under the header's vseq.
 * Creating and deleting guilds, and the directory, are global-lock work;
 * deletion happens in two steps: the guild's own write marks the header FREE
 * and retires its blocks, and its commit then removes the directory entry
 * and returns the header to the free list (GT_LOG_UNDIR), exactly once.
 */
#include "internal.h"

#include <errno.h>

static struct gt_dirent *dir_at(gt_table *t, uint64_t i) {
    return (struct gt_dirent *)gt_at(t, t->g.dir_off +
                                            i * sizeof(struct gt_dirent));
}

uint64_t gt__dir_home(gt_table *t, uint64_t id) {
    return XXH3_64bits_withSeed(&id, sizeof id, t->g.seed ^ 0x9e3779b97f4a7c15ull) &
           (t->g.dir_cap - 1);
}

static struct gt_guild *check_header(gt_table *t, uint64_t idx, uint64_t id) {
    if (idx >= t->g.max_guilds)
        return NULL;
    struct gt_guild *g = gt_guild_at(t, (uint32_t)idx);
    if (LOAD(&g->state, acquire) != GT_GUILD_LIVE || LOAD(&g->id, relaxed) != id)
        return NULL;
    return g;
}

/* Directory probe; no validation of dir_seq. */
static struct gt_dirent *dir_probe(gt_table *t, uint64_t id, uint64_t *idx) {
    uint64_t mask = t->g.dir_cap - 1, i = gt__dir_home(t, id);
    for (uint64_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
        struct gt_dirent *d = dir_at(t, i);
        uint32_t st = LOAD(&d->state, acquire);
        if (st == GT_DIR_EMPTY)
            return NULL;
        if (st == GT_DIR_LIVE && LOAD(&d->id, relaxed) == id) {
            *idx = LOAD(&d->idx, relaxed);
            return d;
        }
    }
    return NULL;
}

struct gt_guild *gt__guild_find(gt_table *t, uint64_t id) {
    uint64_t slot = id & 63;
    struct gt_seg *s = t->seg;
    struct gt_wait w = GT_WAIT_INIT;
    for (;;) {
        uint32_t seq = LOAD(&s->dir_seq, acquire);
        if (seq & 1u) {
            if (gt__wait(t, NULL, &w))
                return NULL;
            continue;
        }
        uint64_t idx = 0;
        if (dir_probe(t, id, &idx)) {
            struct gt_guild *g = check_header(t, idx, id);
            if (g) {
                STORE(&t->gcache[slot].idx, idx, relaxed);
                STORE(&t->gcache[slot].id, id, relaxed);
                return g;
            }
        }
        /* pairs with the release of dir_seq's end in a rebuild */
        atomic_thread_fence(memory_order_acquire);
        if (LOAD(&s->dir_seq, relaxed) == seq)
            return NULL;
    }
}

static int dir_insert_locked(gt_table *t, uint64_t id, uint32_t idx,
                             bool logged) {
    struct gt_seg *s = t->seg;
    uint64_t mask = t->g.dir_cap - 1, i = gt__dir_home(t, id);
    for (uint64_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
        struct gt_dirent *d = dir_at(t, i);
        uint32_t st = LOAD(&d->state, relaxed);
        if (st == GT_DIR_LIVE)
            continue;
        int r = gt__commit(t, gt_off(t, d), sizeof *d);
        if (r == 0 && logged)
            r = gt__log_bytes(t, gt__glog(t), d, sizeof *d, -1);
        if (r == 0 && logged && st == GT_DIR_DEAD) {
            r = gt__log_bytes(t, gt__glog(t), &s->dir_dead, 8, -1);
            if (r == 0)
                STORE(&s->dir_dead, LOAD(&s->dir_dead, relaxed) - 1, relaxed);
        }
        if (r)
            return r;
        STORE(&d->id, id, relaxed);
        STORE(&d->idx, idx, relaxed);
        /* pairs with the acquire load of state in dir_probe */
        STORE(&d->state, GT_DIR_LIVE, release);
        return 0;
    }
    return GT_EFULL;
}

/* Rebuild the directory from the headers. Not logged: dir_seq stays odd
 * until it is done, and gt__glock redoes it if the rebuilder died. */
void gt__dir_rebuild_locked(gt_table *t) {
    struct gt_seg *s = t->seg;
    uint32_t seq = LOAD(&s->dir_seq, relaxed);
    if (!(seq & 1u))
        STORE(&s->dir_seq, ++seq, relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    for (uint64_t i = 0; i < t->g.dir_cap; i++) {
        struct gt_dirent *d = dir_at(t, i);
        if (LOAD(&d->state, relaxed) != GT_DIR_EMPTY)
            STORE(&d->state, GT_DIR_EMPTY, relaxed);
    }
    uint64_t hw = s->guild_hw;
    for (uint64_t i = 0; i < hw && i < t->g.max_guilds; i++) {
        struct gt_guild *g = gt_guild_at(t, (uint32_t)i);
        if (LOAD(&g->state, relaxed) == GT_GUILD_LIVE &&
            !(LOAD(&g->flags, relaxed) & GT_GUILD_UNDIR))
            (void)dir_insert_locked(t, LOAD(&g->id, relaxed), (uint32_t)i,
                                    false);
    }
    STORE(&s->dir_dead, 0, relaxed);
    /* pairs with the acquire fence of gt__guild_find */
    STORE(&s->dir_seq, seq + 1, release);
}

static int header_take_locked(gt_table *t, uint32_t *idx) {
    struct gt_seg *s = t->seg;
    struct gt_log *gl = gt__glog(t);
    int r;
    if (s->guild_free) {
        uint32_t i = (uint32_t)(s->guild_free - 1);
        if (i >= t->g.max_guilds)
            return GT_ECORRUPT;
        struct gt_guild *g = gt_guild_at(t, i);
        if ((r = gt__log_bytes(t, gl, &s->guild_free, 8, -1)))
            return r;
        s->guild_free = LOAD(&g->next_free, relaxed);
        *idx = i;
        return 0;
    }
    if (s->guild_hw >= t->g.max_guilds)
        return GT_EFULL;
    if ((r = gt__log_bytes(t, gl, &s->guild_hw, 8, -1)))
        return r;
    *idx = (uint32_t)s->guild_hw++;
    return 0;
}

static int create_locked(gt_table *t, uint64_t id, struct gt_guild **out) {
    struct gt_seg *s = t->seg;
    struct gt_log *gl = gt__glog(t);
    if (LOAD(&s->guilds, relaxed) >= t->g.max_guilds)
        return GT_EFULL;
    if (LOAD(&s->dir_dead, relaxed) > t->g.dir_cap / 4)
        gt__dir_rebuild_locked(t);
    uint32_t idx;
    int r = header_take_locked(t, &idx);
    if (r)
        return r;
    struct gt_guild *g = gt_guild_at(t, idx);
    if ((r = gt__commit(t, gt_off(t, g), sizeof *g)))
        return r;
    if (!LOAD(&g->inited, relaxed)) {
        /* Never used: nobody can be waiting on this mutex. Redoing this after
         * a crash is harmless, so it is not logged. */
        if ((r = gt__mutex_init(&g->lock)))
            return r;
        STORE(&g->inited, 1, relaxed);
    }
    if ((r = gt__log_bytes(t, gl, g, 2 * GT_LINE, offsetof(struct gt_guild, vseq))))
        return r;
    gt_seq_begin(&g->vseq);
    STORE(&g->id, id, relaxed);
    STORE(&g->store_off, 0, relaxed);
    STORE(&g->act_off, 0, relaxed);
    STORE(&g->cap, 0, relaxed);
    STORE(&g->flags, 0, relaxed);
    STORE(&g->next_free, 0, relaxed);
    STORE(&g->members, 0, relaxed);
    STORE(&g->online, 0, relaxed);
    STORE(&g->active, 0, relaxed);
    STORE(&g->tombs, 0, relaxed);
    STORE(&g->act_seq, 0, relaxed);
    STORE(&g->store_bytes, 0, relaxed);
    STORE(&g->act_bytes, 0, relaxed);
    STORE(&g->writer_pid, 0, relaxed);
    /* pairs with the acquire load of state in check_header */
    STORE(&g->state, GT_GUILD_LIVE, release);
    GT_HOOK("guild_create");
    if ((r = dir_insert_locked(t, id, idx, true)))
        return r;
    if ((r = gt__log_bytes(t, gl, &s->guilds, 8, -1)))
        return r;
    STORE(&s->guilds, LOAD(&s->guilds, relaxed) + 1, relaxed);
    *out = g;
    return 0;
}

int gt__guild_get(gt_table *t, uint64_t id, bool create,
                  struct gt_guild **out, bool *created) {
    struct gt_guild *g = gt_guild_lookup(t, id);
    if (created)
        *created = false;
    if (g || !create) {
        *out = g;
        return g ? 0 : GT_ENOENT;
    }
    /* A deletion of this id that died before leaving the directory, or a
     * dead writer's leftovers that fill max_guilds: finish them first. */
    gt__sweep(t, false);
    int r = gt__glock(t);
    if (r)
        return r;
    uint64_t idx;
    if (dir_probe(t, id, &idx) && (g = check_header(t, idx, id))) {
        gt__gunlock(t);
        *out = g;
        return 0;
    }
    r = create_locked(t, id, &g);
    if (r)
        STORE(&gt__glog(t)->state, GT_LOG_FAILED, relaxed);
    int u = gt__gunlock(t); /* a failed section is rolled back here */
    if (r == 0)
        r = u;
    *out = r ? NULL : g;
    if (r == 0 && created)
        *created = true;
    return r;
}

static bool block_ok(gt_table *t, uint64_t off, uint64_t bytes) {
    const struct gt_geom *g = &t->g;
    return off >= g->heap_off && off < g->file_size &&
           bytes <= g->file_size - off;
}

/* A writer trusts the blocks of the guild it locked; check them once, so a
 * damaged segment is an error, not a wild write. */
static int view_check(gt_table *t, struct gt_guild *g) {
    uint64_t so = LOAD(&g->store_off, relaxed), ao = LOAD(&g->act_off, relaxed);
    uint32_t cap = LOAD(&g->cap, relaxed);
    if (so) {
        const struct gt_store *st = gt_at(t, so);
        if (!gt_store_ok(&t->g, so, cap, t->g.stride) ||
            st->magic != GT_STORE_MAGIC || st->cap != cap ||
            gt__block_order(t, so) == 0)
            return GT_ECORRUPT;
    }
    if (ao) {
        const struct gt_act *a = gt_at(t, ao);
        if (!block_ok(t, ao, sizeof *a) || a->magic != GT_ACT_MAGIC ||
            gt__act_bytes(a->nchunks) > t->g.file_size - ao ||
            LOAD(&a->hw, relaxed) > a->nchunks || gt__block_order(t, ao) == 0)
            return GT_ECORRUPT;
    }
    return 0;
}

int gt__guild_write(gt_table *t, uint64_t id, bool create, struct gt_wr *w,
                    bool *created) {
    if (t->flags & GT_RDONLY)
        return GT_EROFS;
    for (;;) {
        struct gt_guild *g;
        int r = gt__guild_get(t, id, create, &g, created);
        if (r)
            return r;
        if ((r = gt__guild_lock(t, g, w)))
            return r;
        if (LOAD(&g->state, relaxed) == GT_GUILD_LIVE &&
            LOAD(&g->id, relaxed) == id &&
            !(LOAD(&g->flags, relaxed) & GT_GUILD_UNDIR)) {
            if ((r = view_check(t, g)) == 0)
                return 0;
            gt__wr_commit(w); /* unlock; nothing was changed */
            return r;
        }
        /* deleted (and maybe reused) while we waited for the lock */
        gt__wr_commit(w);
    }
}

/* Remove a deleted guild from the directory and free its header. Global
 * lock held; part of the deleting write's commit. */
int gt__undir_locked(gt_table *t, uint32_t idx) {
    struct gt_seg *s = t->seg;
    struct gt_log *gl = gt__glog(t);
    if (idx >= t->g.max_guilds)
        return GT_ECORRUPT;
    struct gt_guild *g = gt_guild_at(t, idx);
    int r;
    for (uint64_t i = 0; i < t->g.dir_cap; i++) {
        /* the entry is near the home of the id the header last held */
        uint64_t j = (gt__dir_home(t, LOAD(&g->id, relaxed)) + i) & (t->g.dir_cap - 1);
        struct gt_dirent *d = dir_at(t, j);
        uint32_t st = LOAD(&d->state, relaxed);
        if (st == GT_DIR_EMPTY)
            break;
        if (st != GT_DIR_LIVE || LOAD(&d->idx, relaxed) != idx)
            continue;
        if ((r = gt__log_bytes(t, gl, d, sizeof *d, -1)) ||
            (r = gt__log_bytes(t, gl, &s->dir_dead, 8, -1)))
            return r;
        STORE(&d->state, GT_DIR_DEAD, release);
        STORE(&s->dir_dead, LOAD(&s->dir_dead, relaxed) + 1, relaxed);
        break;
    }
    if ((r = gt__log_bytes(t, gl, &s->guilds, 8, -1)) ||
        (r = gt__log_bytes(t, gl, &s->guild_free, 8, -1)) ||
        (r = gt__log_bytes(t, gl, g, GT_LINE, offsetof(struct gt_guild, vseq))))
        return r;
    STORE(&s->guilds, LOAD(&s->guilds, relaxed) - 1, relaxed);
    GT_HOOK("undir");
    gt_seq_begin(&g->vseq);
    STORE(&g->flags, 0, relaxed);
    STORE(&g->next_free, (uint32_t)s->guild_free, relaxed);
    s->guild_free = idx + 1;
    return 0;
}

/* ---- views ---------------------------------------------------------------- */

int gt__view_read(gt_table *t, struct gt_guild *g, uint64_t id,
                  struct gt_view *v) {
    struct gt_wait w = GT_WAIT_INIT;
    for (;;) {
        uint32_t vs = LOAD(&g->vseq, acquire);
        if (vs & 1u) {
            int r = gt__wait(t, g, &w);
            if (r)
                return r;
            continue;
        }
        bool live = LOAD(&g->state, relaxed) == GT_GUILD_LIVE &&
                    LOAD(&g->id, relaxed) == id;
        uint64_t so = LOAD(&g->store_off, relaxed);
        uint64_t ao = LOAD(&g->act_off, relaxed);
        uint32_t cap = LOAD(&g->cap, relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (LOAD(&g->vseq, relaxed) != vs)
            continue;
        if (!live)
            return GT_ENOENT;
        v->g = g;
        v->vseq = vs;
        v->cap = cap;
        v->st = NULL;
        v->act = NULL;
        if (so) {
            if (!gt_store_ok(&t->g, so, cap, t->g.stride))
                return GT_ECORRUPT;
            v->st = gt_at(t, so);
        }
        if (ao) {
            if (!block_ok(t, ao, sizeof(struct gt_act)))
                return GT_ECORRUPT;
            v->act = gt_at(t, ao);
        }
        return 0;
    }
}

int gt__view_publish(struct gt_wr *w, uint64_t store_off, uint32_t cap,
                     uint64_t act_off) {
    struct gt_guild *g = w->g;
    int r = gt__log_bytes(w->t, w->log, g, GT_LINE,
                          offsetof(struct gt_guild, vseq));
    if (r)
        return r;
    gt_seq_begin(&g->vseq);
    STORE(&g->store_off, store_off, relaxed);
    STORE(&g->cap, cap, relaxed);
    STORE(&g->act_off, act_off, relaxed);
    return 0;
}

/* ---- public guild functions --------------------------------------------------- */

static void fill_stat(struct gt_guild *g, gt_guild_stat *o) {
    o->guild_id = LOAD(&g->id, relaxed);
    o->members = LOAD(&g->members, relaxed);
    o->online = LOAD(&g->online, relaxed);
    o->active = LOAD(&g->active, relaxed);
    o->capacity = LOAD(&g->cap, relaxed);
    o->bytes_used = LOAD(&g->store_bytes, relaxed) + LOAD(&g->act_bytes, relaxed);
}

GT_API int gt_guild_info(gt_table *t, uint64_t guild_id, gt_guild_stat *out) {
    if (!t || !out)
        return GT_EINVAL;
    struct gt_guild *g = gt_guild_lookup(t, guild_id);
    if (!g)
        return GT_ENOENT;
    gt__check_writer(t, g);
    struct gt_view v;
    int r = gt__view_read(t, g, guild_id, &v);
    if (r)
        return r;
    fill_stat(g, out);
    out->guild_id = guild_id;
    return 0;
}

GT_API int gt_guilds(gt_table *t, gt_guild_fn fn, void *ctx) {
    if (!t || !fn)
        return GT_EINVAL;
    struct gt_seg *s = t->seg;
    uint64_t hw = __atomic_load_n(&s->guild_hw, __ATOMIC_RELAXED);
    for (uint64_t i = 0; i < hw && i < t->g.max_guilds; i++) {
        struct gt_guild *g = gt_guild_at(t, (uint32_t)i);
        if (LOAD(&g->state, acquire) != GT_GUILD_LIVE)
            continue;
        gt__check_writer(t, g);
        uint64_t id = LOAD(&g->id, relaxed);
        struct gt_view v;
        if (gt__view_read(t, g, id, &v) != 0)
            continue; /* deleted (or reused) meanwhile */
        gt_guild_stat st;
        fill_stat(g, &st);
        st.guild_id = id;
        int r = fn(ctx, &st);
        if (r)
            return r;
    }
    return 0;
}

/* Delete the guild w holds locked: its header becomes FREE now, its blocks
 * are retired and its directory entry dropped when w commits. */
int gt__guild_drop(struct gt_wr *w) {
    gt_table *t = w->t;
    struct gt_guild *g = w->g;
    uint64_t so = LOAD(&g->store_off, relaxed), ao = LOAD(&g->act_off, relaxed);
    uint64_t members = LOAD(&g->members, relaxed);
    int r;
    if ((r = gt__log_bytes(t, w->log, g, 2 * GT_LINE,
                           offsetof(struct gt_guild, vseq))) ||
        (so && (r = gt__log_retire(w, so, LOAD(&g->store_bytes, relaxed)))) ||
        (ao && (r = gt__log_retire(w, ao, LOAD(&g->act_bytes, relaxed)))) ||
        (members && (r = gt__wr_action(w, GT_LOG_COUNT, 0, 0, 0,
                                       -(int32_t)members))) ||
        (r = gt__wr_action(w, GT_LOG_UNDIR, 0, 0, w->gidx, 0)))
        return r;
    GT_HOOK("guild_drop");
    gt_seq_begin(&g->vseq);
    STORE(&g->state, GT_GUILD_FREE, relaxed);
    STORE(&g->flags, GT_GUILD_UNDIR, relaxed);
    STORE(&g->store_off, 0, relaxed);
    STORE(&g->act_off, 0, relaxed);
    STORE(&g->cap, 0, relaxed);
    STORE(&g->members, 0, relaxed);
    STORE(&g->online, 0, relaxed);
    STORE(&g->active, 0, relaxed);
    STORE(&g->tombs, 0, relaxed);
    STORE(&g->store_bytes, 0, relaxed);
    STORE(&g->act_bytes, 0, relaxed);
    return 0;
}

GT_API int gt_guild_delete(gt_table *t, uint64_t guild_id) {
    if (!t)
        return GT_EINVAL;
    struct gt_wr w;
    int r = gt__guild_write(t, guild_id, false, &w, NULL);
    if (r)
        return r;
    if ((r = gt__guild_drop(&w))) {
        gt__wr_abort(&w);
        return r;
    }
    w.stat = GT_ST_GUILD_DELETES;
    return gt__wr_commit(&w);
}
