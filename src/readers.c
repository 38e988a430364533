/*
 * readers.c - the slot table: one slot per thread that scans or writes,
 * holding its reclamation epoch and its undo log.
 *
 * Like LMDB's reader table, slots live in the segment so every process sees
 * every reader. A slot is owned by (pid, tid); a thread takes one on first
 * use and keeps it, cached in thread-local storage, until it exits or closes
 * the handle. Point lookups never need a slot (they validate instead of
 * pinning), so only scanning and writing threads count against max_slots.
 *
 * Epochs: a scan pins by storing the current global epoch in its slot and
 * then issuing a full fence before it reads any guild view; it unpins by
 * storing 0. A retired block carries the epoch at which it was retired and
 * is freed once every pinned slot holds a larger epoch (alloc.c). The
 * fence pairs with the fence the reclaimer issues before reading slots:
 * either the reclaimer sees the pin, or the reader sees the replaced view.
 *
 * Dead owners: a slot whose process is gone (or a zombie) is reaped: its
 * pin stops counting at once, and it is freed as soon as its undo log is
 * empty (a non-empty log belongs to a guild lock the dead thread held;
 * gt__sweep recovers it first).
 *
 * Stalled owners: a live scan pinned for longer than the table's stall_ms,
 * when writers need the memory it holds, is evicted: its pin is cleared
 * (gt__min_epoch), and the scan notices before it delivers anything more
 * (gt_pin_held) and stops with GT_ESTALE. So a stopped or stuck reader
 * bounds how long memory waits for it, not how much of it accumulates.
 *
 * fork(): a child inherits the parent's thread-local cache but not its
 * slots; an atfork handler bumps a generation so the child takes its own.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#define TLS_CACHE 8u

struct tls_ent {
    uint64_t handle; /* 0 = unused */
    uint32_t slot;
    uint32_t depth; /* nesting of pins (callbacks may scan) */
    uint32_t forkgen;
    uint32_t pins;  /* makes each pin's ticket unique (gt_pin_ticket) */
};

static _Thread_local struct tls_ent tls[TLS_CACHE];
static _Atomic uint32_t forkgen = 1;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

/* Open handles of this process, so a thread exiting after gt_close does not
 * touch a freed handle. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
#define REG_MAX 1024u
static gt_table *reg[REG_MAX];

static _Atomic uint32_t my_pid;

uint32_t gt__pid(void) {
    uint32_t p = LOAD(&my_pid, relaxed);
    if (GT_UNLIKELY(p == 0)) {
        p = (uint32_t)getpid();
        STORE(&my_pid, p, relaxed);
    }
    return p;
}

static void on_fork_child(void) {
    gt__stat_fork_child();
    STORE(&my_pid, (uint32_t)getpid(), relaxed);
    atomic_fetch_add(&forkgen, 1);
    pthread_mutex_init(&reg_lock, NULL);
}

static void release(gt_table *t, uint32_t i) {
    struct gt_slot *s = gt_slot_at(t, i);
    if (LOAD(&s->pid, relaxed) != gt__pid())
        return;
    if (LOAD(&s->log.n, relaxed) != 0)
        return; /* a write is in flight: cannot happen outside a write */
    STORE(&s->epoch, 0, relaxed);
    STORE(&s->owner, 0, relaxed);
    /* pairs with the acquire CAS of a thread taking the slot */
    STORE(&s->pid, 0, release);
}

static void on_thread_exit(void *arg) {
    (void)arg;
    pthread_mutex_lock(&reg_lock);
    for (uint32_t k = 0; k < REG_MAX; k++)
        if (reg[k])
            gt__stat_flush(reg[k]); /* this thread's lookup batches */
    for (uint32_t i = 0; i < TLS_CACHE; i++) {
        if (!tls[i].handle || tls[i].forkgen != LOAD(&forkgen, relaxed))
            continue;
        for (uint32_t k = 0; k < REG_MAX; k++)
            if (reg[k] && reg[k]->id == tls[i].handle)
                release(reg[k], tls[i].slot);
        tls[i].handle = 0;
    }
    pthread_mutex_unlock(&reg_lock);
}

static void init_once(void) {
    pthread_atfork(NULL, NULL, on_fork_child);
    pthread_key_create(&exit_key, on_thread_exit);
}

/* Run on_thread_exit when this thread exits (it counts lookups, or holds a
 * slot). */
void gt__thread_exit_hook(void) {
    pthread_setspecific(exit_key, (void *)1);
}

int gt__register(gt_table *t) {
    pthread_once(&once, init_once);
    pthread_mutex_lock(&reg_lock);
    int r = GT_ENOMEM;
    for (uint32_t k = 0; k < REG_MAX; k++)
        if (!reg[k]) {
            reg[k] = t;
            r = 0;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    return r;
}

bool gt__pid_alive(uint32_t pid) {
    if (pid == 0)
        return false;
    if (pid > INT32_MAX)
        return true; /* GT_PID_REAPING: a sweeper is freeing the slot */
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Alive and not a zombie: a process that died but was not reaped yet still
 * answers kill(pid, 0). Reads /proc, so only for slow paths (reclamation,
 * sweeps), where a zombie's pin must not hold memory until it is reaped. */
bool gt__pid_running(uint32_t pid) {
    if (!gt__pid_alive(pid))
        return false;
    char path[32], buf[256];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return true; /* no /proc: trust kill() */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* Finish what dead processes left: recover the guild write a dead thread
 * was in the middle of (its log), and free its slot (with all, also the
 * idle slots of dead processes). Never waits for a lock a
 * live thread holds, so callers may hold guild locks (not the global lock).
 * Returns slots freed.
 *
 * A dead slot is freed only after the global lock has been settled: a global
 * section its owner died in may hold undo entries pointing into the slot's
 * log, and rolling them back onto a slot already handed to another thread
 * would overwrite that thread's log. */
/* If the global lock's holder died, take the lock: the taker rolls its
 * section back. True if it was settled so. */
static bool glock_settle(gt_table *t) {
    uint32_t gp = LOAD(&t->seg->lock_pid, relaxed);
    if (gp && !gt__pid_running(gp) && gt__glock(t) == 0) {
        gt__gunlock(t);
        return true;
    }
    return false;
}

int gt__sweep(gt_table *t, bool all) {
    uint32_t n = t->g.max_slots;
    int freed = 0;
    /* A dead holder of the global lock: its section is rolled back by the
     * next taker, so take it now (counters read after this are whole). */
    bool settled = glock_settle(t);
    for (uint32_t i = 0; i < n; i++) {
        struct gt_slot *s = gt_slot_at(t, i);
        uint32_t pid = LOAD(&s->pid, acquire);
        /* !all: only slots with a write in flight (cheap: no syscall for
         * the idle ones); all: also free idle slots of dead processes */
        if (pid == 0 || (!all && LOAD(&s->log.n, relaxed) == 0) ||
            gt__pid_running(pid))
            continue;
        if (!settled) {
            if (gt__glock(t))
                return freed;
            gt__gunlock(t);
            settled = true;
        }
        uint32_t gi = LOAD(&s->log.guild, relaxed);
        if (LOAD(&s->log.n, relaxed) != 0 && gi != 0 &&
            gi <= t->g.max_guilds) {
            gt__guild_recover(t, gt_guild_at(t, gi - 1), true);
            if (LOAD(&s->log.n, relaxed) != 0)
                continue; /* someone else is recovering it: next time */
        }
        /* claim the slot before touching it: another sweeper may have
         * freed it, and a new owner pinned in it, since we read pid */
        uint32_t expect = pid;
        if (!atomic_compare_exchange_strong(&s->pid, &expect, GT_PID_REAPING))
            continue;
        STORE(&s->epoch, 0, relaxed);
        /* pairs with the acquire CAS of a thread taking the slot */
        STORE(&s->pid, 0, release);
        freed++;
    }
    return freed;
}

static struct tls_ent *tls_find(gt_table *t) {
    uint32_t fg = LOAD(&forkgen, relaxed);
    for (uint32_t i = 0; i < TLS_CACHE; i++)
        if (tls[i].handle == t->id && tls[i].forkgen == fg)
            return &tls[i];
    return NULL;
}

static int take(gt_table *t, struct tls_ent **out) {
    uint32_t n = t->g.max_slots, me = gt__pid();
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < n; i++) {
            struct gt_slot *s = gt_slot_at(t, i);
            uint32_t zero = 0;
            if (LOAD(&s->pid, relaxed) != 0 ||
                !atomic_compare_exchange_strong_explicit(
                    &s->pid, &zero, me, memory_order_acquire,
                    memory_order_relaxed))
                continue;
            STORE(&s->tid, (uint32_t)gettid(), relaxed);
            STORE(&s->owner, t->id, relaxed);
            STORE(&s->epoch, 0, relaxed);
            /* Pick a cache entry: a free one, one of a closed handle or
             * another process generation, else the first (its slot stays
             * ours until gt_close). */
            uint32_t fg = LOAD(&forkgen, relaxed), k = 0;
            for (uint32_t j = 0; j < TLS_CACHE; j++)
                if (!tls[j].handle || tls[j].forkgen != fg) {
                    k = j;
                    break;
                }
            tls[k].handle = t->id;
            tls[k].slot = i;
            tls[k].depth = 0;
            tls[k].forkgen = fg;
            pthread_setspecific(exit_key, (void *)1);
            *out = &tls[k];
            return 0;
        }
        if (pass == 0)
            gt__sweep(t, true);
    }
    return GT_EFULL;
}

/* This thread's cache entry for t, taking a slot on first use. */
static int mine(gt_table *t, struct tls_ent **e) {
    *e = tls_find(t);
    return *e ? 0 : take(t, e);
}

int gt__slot(gt_table *t, uint32_t *idx) {
    struct tls_ent *e;
    int r = mine(t, &e);
    if (r == 0)
        *idx = e->slot;
    return r;
}

int gt__pin(gt_table *t, uint32_t *slot) {
    struct tls_ent *e;
    int r = mine(t, &e);
    if (r)
        return r;
    *slot = e->slot;
    if (e->depth++ > 0)
        return 0;
    struct gt_slot *s = gt_slot_at(t, e->slot);
    uint64_t ep = LOAD(&t->seg->epoch, acquire);
    /* the time first: an evictor that sees this pin (acquire on epoch)
     * must see when it was taken, not the previous pin's time */
    STORE(&s->pin_ns, gt__now_ns(), relaxed);
    STORE(&s->epoch, gt_pin_ticket(ep, ++e->pins), release);
    /* pairs with the fence in gt__reclaim_locked */
    atomic_thread_fence(memory_order_seq_cst);
    return 0;
}

void gt__unpin(gt_table *t, uint32_t slot) {
    struct tls_ent *e = tls_find(t);
    if (!e || e->slot != slot || e->depth == 0)
        return;
    if (--e->depth > 0)
        return;
    /* pairs with the acquire loads of gt__min_epoch: our reads of retired
     * memory happen before it is freed */
    STORE(&gt_slot_at(t, slot)->epoch, 0, release);
}

/* The smallest epoch a live reader is pinned at (UINT64_MAX: none). Only
 * pins at or below `below` hold something back; for those, pins of dead
 * processes are dropped, and pins taken before evict_before (monotonic ns;
 * 0: never) are evicted: their scan stops with GT_ESTALE at its next check
 * (gt_pin_held), and they no longer hold memory. */
uint64_t gt__min_epoch(gt_table *t, uint64_t below, uint64_t evict_before) {
    uint64_t min = UINT64_MAX;
    uint32_t n = t->g.max_slots;
    for (uint32_t i = 0; i < n; i++) {
        struct gt_slot *s = gt_slot_at(t, i);
        uint64_t ticket = LOAD(&s->epoch, acquire), e = ticket >> GT_PIN_BITS;
        if (ticket == 0 || e >= min)
            continue;
        if (e <= below) {
            bool dead = !gt__pid_running(LOAD(&s->pid, relaxed));
            bool stalled = LOAD(&s->pin_ns, relaxed) < evict_before;
            uint64_t expect = ticket;
            /* tickets are unique per pin: a slot that moved on to another
             * pin (or owner) meanwhile is left alone */
            if ((dead || stalled) &&
                atomic_compare_exchange_strong(&s->epoch, &expect, 0))
                continue;
            if (dead || stalled) {
                e = expect >> GT_PIN_BITS;
                if (expect == 0 || e >= min)
                    continue;
            }
        }
        min = e;
    }
    /* pairs with gt_pin_held: a scan we evicted sees its pin gone before
     * it can deliver anything read from memory freed after this point */
    atomic_thread_fence(memory_order_seq_cst);
    return min;
}

void gt__slots_release(gt_table *t) {
    gt__stat_flush(t);
    uint32_t n = t->g.max_slots, me = gt__pid();
    for (uint32_t i = 0; i < n; i++) {
        struct gt_slot *s = gt_slot_at(t, i);
        if (LOAD(&s->pid, relaxed) == me && LOAD(&s->owner, relaxed) == t->id)
            release(t, i);
    }
    pthread_mutex_lock(&reg_lock);
    for (uint32_t k = 0; k < REG_MAX; k++)
        if (reg[k] == t)
            reg[k] = NULL;
    pthread_mutex_unlock(&reg_lock);
    struct tls_ent *e = tls_find(t);
    if (e)
        e->handle = 0;
}

uint32_t gt__slots_used(gt_table *t) {
    uint32_t n = t->g.max_slots, used = 0;
    for (uint32_t i = 0; i < n; i++)
        used += LOAD(&gt_slot_at(t, i)->pid, relaxed) != 0;
    return used;
}

/* Wait for a seqlock a writer holds odd. Spins, then yields; every ~1 ms
 * checks whether the guild's writer died, and if so recovers the guild by
 * taking its lock (or, with no guild writer, whether the global lock's
 * holder died, and if so settles it); gives up after the read timeout with
 * GT_EBUSY. */
int gt__wait(gt_table *t, struct gt_guild *g, struct gt_wait *w) {
    if (w->spins == 0) {
        GT_HOOK("read_wait");
        gt_stat_shared(t, GT_ST_READ_RETRIES);
    }
    if (w->spins++ < 64) {
        gt_cpu_relax();
        return 0;
    }
    uint64_t now = gt__now_ns();
    if (w->start_ns == 0)
        w->start_ns = now;
    if ((w->spins & 255) == 0 && g) {
        uint32_t pid = LOAD(&g->writer_pid, relaxed);
        if (pid && !gt__pid_alive(pid))
            gt__guild_recover(t, g, true); /* never waits for a live one */
        else if (!pid) /* no guild writer: a global section (a guild being
                          made) holds it, whose owner may have died */
            glock_settle(t);
    }
    if (now - w->start_ns > t->read_timeout_ns)
        return GT_EBUSY;
    sched_yield();
    return 0;
}

GT_API int gt_readers(gt_table *t, gt_reader_fn fn, void *ctx) {
    if (!t || !fn)
        return GT_EINVAL;
    uint32_t n = t->g.max_slots;
    uint64_t now = gt__now_ns(), epoch = LOAD(&t->seg->epoch, acquire);
    for (uint32_t i = 0; i < n; i++) {
        const struct gt_slot *s = gt_slot_at(t, i);
        uint32_t pid = LOAD(&s->pid, acquire);
        if (pid == 0 || pid > INT32_MAX) /* free, or being freed */
            continue;
        uint64_t ticket = LOAD(&s->epoch, acquire);
        uint64_t pin_ns = LOAD(&s->pin_ns, relaxed);
        uint64_t pin_epoch = ticket >> GT_PIN_BITS;
        gt_reader_stat r = {
            .slot = i,
            .pid = pid,
            .tid = LOAD(&s->tid, relaxed),
            .alive = gt__pid_running(pid),
            .pinned = ticket != 0,
            .writing = LOAD(&s->log.n, relaxed) != 0,
            .pinned_ns = ticket && now > pin_ns ? now - pin_ns : 0,
            .epoch_lag = ticket && epoch > pin_epoch ? epoch - pin_epoch : 0,
        };
        int rc = fn(ctx, &r);
        if (rc)
            return rc;
    }
    return 0;
}

GT_API int gt_reap(gt_table *t, uint32_t *reaped) {
    if (!t)
        return GT_EINVAL;
    if (t->flags & GT_RDONLY)
        return GT_EROFS;
    int freed = gt__sweep(t, true);
    if (reaped)
        *reaped = (uint32_t)freed;
    return 0;
}
