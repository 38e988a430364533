/*
 * lock.c - robust locks and the undo logs that make every write
 * all-or-nothing, whether it fails or its process dies.
 *
 * Two lock domains:
 * - one robust, process-shared mutex per guild, serialising the writers of
 *   that guild. The writer logs into the undo log of its own thread slot and
 *   records that slot in the guild (g->log_slot) before logging anything.
 * - one global robust mutex in the segment header for what guilds share: the
 *   heap, the retire list, the member count and the guild directory. It has
 *   its own undo log. Lock order: a guild lock, then the global lock; never
 *   two guild locks.
 *
 * The log protocol (the invariant every write keeps):
 *   before changing reachable shared bytes, copy the old bytes into the next
 *   entry, then publish the entry by incrementing n. A SIGKILL stops a
 *   process between two instructions, and every store it executed still
 *   reaches memory, so program order (kept by signal fences) is crash order:
 *   whatever changed is covered by a published entry.
 * Rolling back restores entries newest first. For seqlocked bytes the
 * sequence word is first made odd, the rest restored, and the word then set
 * past every value it had: a reader that copied during the aborted write
 * never sees its old sequence number again, so never accepts a torn copy.
 * Entries that act on the other domain (ALLOC, COUNT, RETIRE, UNDIR) are
 * performed inside a global-lock section that also marks them done, so a
 * death at any point performs each exactly once; done marks are read only
 * under the global lock, whose own recovery may roll a dead holder's back.
 * A committed log is rolled forward instead: its post-commit actions
 * (RETIRE, UNDIR, COUNT post) run once. A writer logs actions and deferred
 * stores only through gt__wr_action, which notes them in its gt_wr first:
 * its commit then skips the log scans for them when there are none (most
 * inserts and flips). A recovery, which has no such notes, scans.
 *
 * Recovery runs, without any manual step, in whoever next meets the dead
 * writer's work: the next writer of the guild (EOWNERDEAD, or a pending
 * log), a reader stuck on a record it left odd, a scan or counter read of
 * the guild, gt_open and gt_info (sweeps of dead slots), and any write
 * about to report GT_EFULL. A dead slot is freed only after the global lock
 * is settled, since a global undo may still point into its log.
 */
#include "internal.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

struct gt_log *gt__glog(gt_table *t) {
    return (struct gt_log *)gt_at(t, t->g.glog_off);
}

/* Copy into shared memory that lock-free readers may read: word stores when
 * aligned, so no reader sees a half-written word. */
static void shared_copy(void *dst, const void *src, uint32_t len) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (len && ((uintptr_t)d & 7)) {
        atomic_store_explicit((a8 *)d, *s, memory_order_relaxed);
        d++, s++, len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        atomic_store_explicit((a64 *)(void *)d, v, memory_order_relaxed);
        d += 8, s += 8, len -= 8;
    }
    while (len) {
        atomic_store_explicit((a8 *)d, *s, memory_order_relaxed);
        d++, s++, len--;
    }
}

int gt__log_bytes(gt_table *t, struct gt_log *log, const void *p, uint32_t len,
                  int seq_rel) {
    uint64_t off = gt_off(t, p), bit = gt_log_seen_bit(off);
    uint32_t n = LOAD(&log->n, relaxed);
    /* One entry per range and section is enough: the oldest bytes win. The
     * filter spares most new ranges the search (a batch logs dozens). */
    for (uint32_t i = 0; (log->seen & bit) && i < n; i++)
        if (gt_log_holds(&log->ent[i], off, len))
            return 0;
    return gt_log_append(log, off, p, len, seq_rel, bit);
}

/* Whether an entry of kind with flags is an action to perform when its log
 * commits (commit) or rolls back (!commit), done or not. */
static bool acts_on(uint16_t kind, uint16_t flags, bool commit) {
    bool pre = flags & GT_LOG_PRE;
    if (commit)
        return kind == GT_LOG_RETIRE || kind == GT_LOG_UNDIR ||
               (kind == GT_LOG_COUNT && !pre);
    return kind == GT_LOG_ALLOC || (kind == GT_LOG_COUNT && pre);
}

int gt__wr_action(struct gt_wr *w, uint16_t kind, uint16_t flags,
                  uint64_t off, uint32_t len, int32_t delta) {
    /* noted before the entry exists: a note without one costs only a scan */
    if (acts_on(kind, flags, true))
        w->acts |= GT_WR_ACTS;
    if (kind == GT_LOG_SET)
        w->acts |= GT_WR_SETS;
    struct gt_log *log = w->log;
    uint32_t n = LOAD(&log->n, relaxed);
    if (n >= log->ent_cap)
        return GT_EFULL;
    struct gt_log_ent *e = &log->ent[n];
    e->off = off;
    e->len = len;
    e->kind = kind;
    e->flags = flags;
    e->seq_rel = 0;
    e->data = (uint32_t)delta;
    gt_sig_fence();
    /* release: who sees the entry sees which guild the log is for */
    STORE(&log->n, n + 1, release);
    gt_sig_fence();
    return 0;
}

/* Retire block off (bytes in use) when w commits. */
int gt__log_retire(struct gt_wr *w, uint64_t off, uint64_t bytes) {
    int r = gt__wr_action(w, GT_LOG_RETIRE, 0, off, gt__block_order(w->t, off),
                          0);
    if (r == 0)
        w->log->ent[LOAD(&w->log->n, relaxed) - 1].seq_rel =
            (uint32_t)((bytes + 63) >> 6);
    return r;
}

static void log_clear(struct gt_log *log) {
    gt_sig_fence();
    STORE(&log->n, 0, relaxed);
    STORE(&log->state, GT_LOG_OPEN, relaxed);
    log->data_used = 0;
    log->seen = 0;
    gt_sig_fence();
}

static void restore_bytes(gt_table *t, struct gt_log *log,
                          const struct gt_log_ent *e) {
    uint8_t *dst = gt_at(t, e->off);
    const uint8_t *old = gt_log_data(log) + e->data;
    if (!(e->flags & GT_LOG_SEQ)) {
        shared_copy(dst, old, e->len);
        return;
    }
    a32 *seq = (a32 *)(void *)(dst + e->seq_rel);
    uint32_t cur = LOAD(seq, relaxed);
    STORE(seq, cur | 1u, relaxed); /* readers now wait or retry */
    atomic_thread_fence(memory_order_release);
    shared_copy(dst, old, e->seq_rel);
    shared_copy(dst + e->seq_rel + 4, old + e->seq_rel + 4,
                e->len - e->seq_rel - 4);
    /* past every value seq had: a copy taken during the aborted write fails
     * its final check (pairs with the reader's acquire load of seq) */
    STORE(seq, (cur | 1u) + 1u, release);
}

/* An entry a rollback may act on: logs live in the file, so a damaged table
 * must not make recovery write outside the table's mutable regions. */
static bool entry_ok(gt_table *t, const struct gt_log *log,
                     const struct gt_log_ent *e) {
    const struct gt_geom *g = &t->g;
    return e->off >= sizeof(struct gt_geom) && e->off < g->file_size &&
           e->len <= log->data_cap && e->len <= g->file_size - e->off &&
           e->data <= log->data_cap - e->len &&
           (!(e->flags & GT_LOG_SEQ) ||
            ((uint64_t)e->seq_rel + 4 <= e->len &&
             ((e->off + e->seq_rel) & 3) == 0));
}

int gt__wr_set(struct gt_wr *w, a8 *p, uint8_t v) {
    return gt__wr_action(w, GT_LOG_SET, 0, gt_off(w->t, p), 1, v);
}

/* Publish a committing write: apply its deferred stores, then end every
 * seqlock it opened (see gt_seq_begin). Idempotent, so recovery may redo
 * it. Entries are checked as a rollback checks them. */
void gt__log_seal(gt_table *t, struct gt_log *log, bool sets) {
    uint32_t n = LOAD(&log->n, relaxed);
    if (n > log->ent_cap)
        n = log->ent_cap;
    for (uint32_t i = 0; sets && i < n; i++) {
        const struct gt_log_ent *e = &log->ent[i];
        if (e->kind == GT_LOG_SET && e->off < t->g.file_size &&
            e->off >= sizeof(struct gt_geom))
            atomic_store_explicit((a8 *)gt_at(t, e->off), (uint8_t)e->data,
                                  memory_order_release);
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct gt_log_ent *e = &log->ent[i];
        if (e->kind != GT_LOG_BYTES || !(e->flags & GT_LOG_SEQ) ||
            !entry_ok(t, log, e))
            continue;
        a32 *seq = gt_at(t, e->off + e->seq_rel);
        uint32_t s = LOAD(seq, relaxed);
        /* pairs with the acquire load of seq at the start of a reader's
         * copy: everything the write stored is seen with the even value */
        if (s & 1u)
            STORE(seq, s + 1, release);
    }
}

/* Mark entry e of a slot log done; call inside a global section. */
static int mark_done(gt_table *t, struct gt_log_ent *e) {
    int r = gt__log_bytes(t, gt__glog(t), &e->flags, sizeof e->flags, -1);
    if (r == 0) {
        gt_sig_fence();
        e->flags |= GT_LOG_DONE;
        gt_sig_fence();
    }
    return r;
}

static void count_apply_locked(gt_table *t, int32_t delta) {
    struct gt_seg *s = t->seg;
    if (gt__log_bytes(t, gt__glog(t), &s->members, 8, -1) == 0)
        STORE(&s->members,
              (uint64_t)((int64_t)LOAD(&s->members, relaxed) + delta), relaxed);
}

/* Run the actions of a slot log in the global domain: on rollback the PRE
 * counts and allocations are undone; when committed, retires, post counts
 * and directory removals are applied. Each action and its done mark share
 * one global section, and done marks are read only under the global lock
 * (whose own recovery may roll a dead holder's marks back). Returns non-zero
 * if a section failed: the log must then be kept for a later recovery. */
static int run_actions(gt_table *t, struct gt_log *log, bool commit) {
    uint32_t n = LOAD(&log->n, relaxed);
    bool any = false;
    for (uint32_t i = 0; i < n; i++)
        any |= acts_on(log->ent[i].kind, log->ent[i].flags, commit);
    if (!any)
        return 0;
    int r = gt__glock(t);
    if (r)
        return r;
    n = LOAD(&log->n, relaxed); /* the lock's recovery may have shrunk it */
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = commit ? k : n - 1 - k;
        struct gt_log_ent *e = &log->ent[i];
        if (!acts_on(e->kind, e->flags, commit) || (e->flags & GT_LOG_DONE))
            continue;
        if (e->kind == GT_LOG_ALLOC) {
            gt__free_locked(t, e->off, e->len, e->seq_rel);
        } else if (e->kind == GT_LOG_RETIRE) {
            while (gt__retire_locked(t, e->off, e->len, e->seq_rel) ==
                   GT_EBUSY) {
                /* every retire entry waits for a pinned reader: let it go */
                if ((r = gt__gunlock(t)))
                    return r;
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
                if ((r = gt__glock(t)))
                    return r;
            }
        } else if (e->kind == GT_LOG_UNDIR) {
            gt__undir_locked(t, e->len);
        } else {
            count_apply_locked(t, commit ? (int32_t)e->data
                                         : -(int32_t)e->data);
        }
        GT_HOOK("action");
        mark_done(t, e);
        /* A section can only hold so many entries; finish in the next. */
        struct gt_log *gl = gt__glog(t);
        if (LOAD(&gl->n, relaxed) + GT_GLOG_HEADROOM > gl->ent_cap) {
            if ((r = gt__gunlock(t)))
                return r;
            if ((r = gt__glock(t)))
                return r;
        }
    }
    if (commit)
        gt__reclaim_locked(t, 4, false);
    return gt__gunlock(t);
}

/* Take delta members from max_members for the write w (delta > 0), as a PRE
 * count entry of its log: a rollback gives them back. */
int gt__count_reserve(struct gt_wr *w, int32_t delta) {
    gt_table *t = w->t;
    struct gt_seg *s = t->seg;
    bool swept = false;
    int r;
again:
    if ((r = gt__glock(t)))
        return r;
    uint64_t m = LOAD(&s->members, relaxed);
    if (m + (uint64_t)delta > t->g.max_members) {
        gt__gunlock(t);
        /* a dead writer's reservation may be what fills the table */
        if (!swept && (swept = true) && gt__sweep(t, false) > 0)
            goto again;
        return GT_EFULL;
    }
    struct gt_log *gl = gt__glog(t);
    /* the entry appears in w's log atomically with the count */
    if ((r = gt__log_bytes(t, gl, &s->members, 8, -1)) == 0 &&
        (r = gt__log_bytes(t, gl, &w->log->n, 4, -1)) == 0 &&
        (r = gt__wr_action(w, GT_LOG_COUNT, GT_LOG_PRE, 0, 0, delta)) == 0) {
        GT_HOOK("count_reserve");
        STORE(&s->members, m + (uint64_t)delta, relaxed);
    }
    int u = gt__gunlock(t);
    return r ? r : u;
}

void gt__log_rollback(gt_table *t, struct gt_log *log) {
    uint32_t n = LOAD(&log->n, relaxed);
    if (n > log->ent_cap)
        n = log->ent_cap;
    for (uint32_t k = 0; k < n; k++) {
        const struct gt_log_ent *e = &log->ent[n - 1 - k];
        if (e->kind == GT_LOG_BYTES && entry_ok(t, log, e))
            restore_bytes(t, log, e);
    }
}

/* ---- the global lock ---------------------------------------------------- */

static int mutex_lock(pthread_mutex_t *m, bool *owner_died) {
    int r = pthread_mutex_lock(m);
    *owner_died = (r == EOWNERDEAD);
    if (r == 0 || r == EOWNERDEAD)
        return 0;
    if (r == ENOTRECOVERABLE)
        return GT_ECORRUPT;
    return -r;
}

int gt__glock(gt_table *t) {
    struct gt_seg *s = t->seg;
    struct gt_log *gl = gt__glog(t);
    bool died;
    int r = mutex_lock(&s->lock, &died);
    if (r)
        return r;
    t->npunch = 0;
    if (died || LOAD(&gl->n, relaxed) != 0) {
        /* The previous holder died inside a section: undo it whole. A
         * directory rebuild in progress is redone from the guild headers. */
        gt_stat_shared(t, GT_ST_RECOVERIES);
        gt__log_rollback(t, gl);
        log_clear(gl);
        if (LOAD(&s->dir_seq, relaxed) & 1u)
            gt__dir_rebuild_locked(t);
    }
    if (died)
        pthread_mutex_consistent(&s->lock);
    STORE(&s->lock_pid, gt__pid(), relaxed);
    return 0;
}

int gt__gunlock(gt_table *t) {
    struct gt_seg *s = t->seg;
    struct gt_log *gl = gt__glog(t);
    bool failed = LOAD(&gl->state, relaxed) == GT_LOG_FAILED;
    if (failed)
        gt__log_rollback(t, gl);
    else
        gt__log_seal(t, gl, true);
    log_clear(gl); /* commit point of the section */
    gt__punch_locked(t, !failed);
    STORE(&s->lock_pid, 0, relaxed);
    pthread_mutex_unlock(&s->lock);
    return failed ? GT_EFULL : 0;
}

/* ---- guild locks ---------------------------------------------------------- */

/* Whether log holds entries of a write on guild gidx. The entries count is
 * read first (acquire, pairing with the release store of each entry): a
 * writer names the guild in its log before it appends, so entries seen
 * come with their guild. Reading guild first is wrong: a live writer that
 * last wrote gidx may, between the two reads, start a write on another
 * guild, and its new entries would be taken for an abandoned write on
 * gidx and rolled back under it. */
bool gt__log_is_for(const struct gt_log *log, uint32_t gidx) {
    uint32_t n = LOAD(&log->n, acquire);
    GT_HOOK("log_check"); /* tests/fault/test_race.c stops here */
    return n != 0 && LOAD(&log->guild, relaxed) == gidx + 1;
}

/* Finish the write a previous lock holder left in the guild: it died, or its
 * rollback could not reach the global lock. Lock held. */
int gt__recover_guild(gt_table *t, struct gt_guild *g) {
    uint32_t gidx = gt_guild_index(t, g);
    uint32_t si = LOAD(&g->log_slot, relaxed);
    int r = 0;
    if (si < t->g.max_slots) {
        struct gt_log *log = &gt_slot_at(t, si)->log;
        /* n first, then guild (see gt__log_is_for): the slot's owner may have
         * moved on to another guild's write meanwhile, and reading guild
         * first could pair our guild with its new entries */
        if (gt__log_is_for(log, gidx)) {
            /* Settle the global lock first: if the writer died inside a
             * global section, its recovery rolls back part of this log
             * (appended entries, done marks), which must be read after. */
            if ((r = gt__glock(t)))
                return r;
            gt__gunlock(t);
        }
        if (gt__log_is_for(log, gidx)) {
            gt_stat_shared(t, GT_ST_RECOVERIES);
            if (LOAD(&log->state, relaxed) == GT_LOG_COMMITTED) {
                gt__log_seal(t, log, true);
                r = run_actions(t, log, true);
            } else {
                gt__log_rollback(t, log);
                r = run_actions(t, log, false);
            }
            if (r == 0)
                log_clear(log);
        }
    }
    STORE(&g->writer_pid, 0, relaxed);
    return r;
}

int gt__guild_lock(gt_table *t, struct gt_guild *g, struct gt_wr *w) {
    uint32_t si;
    int r = gt__slot(t, &si);
    if (r)
        return r;
    /* Our previous write could not finish its post-commit actions (a lock
     * error): finish them before the log is reused. */
    struct gt_log *mine = &gt_slot_at(t, si)->log;
    uint32_t pg = LOAD(&mine->guild, relaxed);
    if (LOAD(&mine->n, relaxed) != 0 && pg != 0 && pg <= t->g.max_guilds &&
        (r = gt__guild_recover(t, gt_guild_at(t, pg - 1), false)))
        return r;
    bool died;
    int e = pthread_mutex_trylock(&g->lock);
    if (e == EBUSY) {
        gt_stat_add(t, si, GT_ST_LOCK_WAITS, 1);
        if ((r = mutex_lock(&g->lock, &died)))
            return r;
    } else if (e == EOWNERDEAD) {
        died = true;
    } else if (e == 0) {
        died = false;
    } else {
        return e == ENOTRECOVERABLE ? GT_ECORRUPT : -e;
    }
    if (died)
        pthread_mutex_consistent(&g->lock);
    /* Cheap when nothing is pending: the previous writer's log is empty. */
    r = gt__recover_guild(t, g);
    if (r) {
        pthread_mutex_unlock(&g->lock); /* the log stays for the next locker */
        return r;
    }
    struct gt_log *log = &gt_slot_at(t, si)->log;
    STORE(&g->writer_pid, gt__pid(), relaxed);
    STORE(&g->log_slot, si, relaxed);
    gt_sig_fence();
    STORE(&log->guild, gt_guild_index(t, g) + 1, relaxed);
    log_clear(log);
    w->t = t;
    w->g = g;
    w->log = log;
    w->slot = si;
    w->gidx = gt_guild_index(t, g);
    w->stat = GT_ST_COUNT;
    w->counters_ent = UINT32_MAX;
    w->optional = false;
    w->acts = 0;
    return 0;
}

/* If g's lock holder is a dead process, recover g now (never waiting for a
 * live one). Readers call this before reading counters or scanning, so a
 * dead writer's half-done write is not seen even before the next writer
 * comes; point lookups skip it (they see each record whole anyway). */
void gt__check_writer(gt_table *t, struct gt_guild *g) {
    uint32_t pid = LOAD(&g->writer_pid, relaxed);
    if (GT_UNLIKELY(pid != 0) && !gt__pid_alive(pid))
        gt__guild_recover(t, g, true);
}

/* Finish what a dead writer left in g, without a slot of our own (the
 * recovery uses the dead writer's log). try: do not wait for a live holder.
 * Returns 0 if nothing is left pending. */
int gt__guild_recover(gt_table *t, struct gt_guild *g, bool try) {
    int r = try ? pthread_mutex_trylock(&g->lock) : pthread_mutex_lock(&g->lock);
    if (r == ENOTRECOVERABLE)
        return GT_ECORRUPT;
    if (r != 0 && r != EOWNERDEAD)
        return GT_EBUSY;
    if (r == EOWNERDEAD)
        pthread_mutex_consistent(&g->lock);
    r = gt__recover_guild(t, g);
    pthread_mutex_unlock(&g->lock);
    return r;
}

static void guild_unlock(struct gt_wr *w) {
    STORE(&w->g->writer_pid, 0, relaxed);
    pthread_mutex_unlock(&w->g->lock);
}

/* w's section is over: its log empty, nothing noted in w.acts. */
static void wr_clear(struct gt_wr *w) {
    log_clear(w->log);
    w->acts = 0;
}

/* Test builds check what w.acts rests on: every action a commit runs, and
 * every deferred store, was noted in it (by gt__wr_action). */
static void wr_check_acts(const struct gt_wr *w) {
#ifdef GT_FAULT_HOOKS
    uint32_t n = LOAD(&w->log->n, relaxed);
    for (uint32_t i = 0; i < n && i < w->log->ent_cap; i++) {
        const struct gt_log_ent *e = &w->log->ent[i];
        if ((acts_on(e->kind, e->flags, true) && !(w->acts & GT_WR_ACTS)) ||
            (e->kind == GT_LOG_SET && !(w->acts & GT_WR_SETS)))
            abort();
    }
#else
    (void)w;
#endif
}

/* Make w's write visible and finished; the lock stays held. Returns the
 * post-commit actions' error, if any: the write is done all the same, and
 * its log is left for a later recovery to roll forward. */
static int wr_finish(struct gt_wr *w) {
    gt_sig_fence();
    STORE(&w->log->state, GT_LOG_COMMITTED, relaxed);
    gt_sig_fence();
    GT_HOOK("commit");
    wr_check_acts(w);
    /* the write becomes visible, whole */
    gt__log_seal(w->t, w->log, w->acts & GT_WR_SETS);
    GT_HOOK("sealed");
    /* The write is done (linearized) whatever happens next. Its post-commit
     * actions wait, if they must, for readers to release memory (bounded by
     * eviction); a lock error leaves the log for a later recovery to roll
     * forward (the next write of this guild or of this thread). */
    int r = w->acts & GT_WR_ACTS ? run_actions(w->t, w->log, true) : 0;
    if (r == 0)
        wr_clear(w);
    if (w->stat < GT_ST_COUNT)
        gt_stat_add(w->t, w->slot, w->stat, 1);
    return r;
}

int gt__wr_commit(struct gt_wr *w) {
    wr_finish(w);
    guild_unlock(w);
    return 0;
}

int gt__wr_checkpoint(struct gt_wr *w) {
    int r = wr_finish(w);
    if (r)
        guild_unlock(w); /* the log must not take another write */
    return r;
}

int gt__wr_undo(struct gt_wr *w) {
    gt__log_rollback(w->t, w->log);
    int r = run_actions(w->t, w->log, false);
    if (r == 0)
        wr_clear(w);
    else
        guild_unlock(w); /* the log stays for the next writer to finish */
    return r;
}

void gt__wr_abort(struct gt_wr *w) {
    if (gt__wr_undo(w) == 0)
        guild_unlock(w);
}
