/*
 * stats.c - counters of what is done to a table (gt_stats_read, `guildtab
 * stats`), kept cheap enough to stay on in production.
 *
 * Where counts live (see struct gt_counters in internal.h):
 *   - writes, scans, fanouts and lock waits are counted in the counters of
 *     the thread slot the operation already holds: plain increments of the
 *     thread's own cache lines, no atomic instruction, no shared line;
 *   - lookups hold no slot: each thread counts them in a thread-local batch
 *     per handle, added to the table's counters every GT_ST_LOOKUP_BATCH
 *     lookups, when the thread closes the handle and when it exits; a
 *     thread's last few lookups are therefore seen late (at most 255);
 *   - rare events met without a slot (a reader waiting on a writer's
 *     seqlock, a recovery) go to the table's counters atomically.
 * Slot counters are never reset: a slot's next owner adds on top, so a
 * reading (the table's counters plus every slot's) only grows and nothing
 * is lost when threads come and go, or die.
 *
 * Fanout latency: one fanout in GT_ST_SAMPLE per thread is timed (two
 * clock reads, ~40 ns, against fanouts of microseconds to milliseconds)
 * and filed in a log2 histogram of microseconds.
 */
#include "internal.h"

#include <string.h>

_Thread_local struct gt_lk_ent gt__lk[GT_LK_ENTRIES]
    __attribute__((tls_model("initial-exec")));

static void lk_flush(struct gt_lk_ent *e) {
    if (e->n)
        atomic_fetch_add_explicit(&e->t->seg->stats.c[GT_ST_LOOKUPS], e->n,
                                  memory_order_relaxed);
    e->n = 0;
}

/* The first entry's batch is full (gt_stat_lookup counted it), or t's batch
 * is elsewhere or nowhere. */
void gt__stat_lookup_slow(gt_table *t) {
    struct gt_lk_ent *lk = gt__lk;
    if (lk[0].t == t && lk[0].handle == t->id) {
        lk_flush(&lk[0]);
        return;
    }
    for (uint32_t i = 1; i < GT_LK_ENTRIES; i++)
        if (lk[i].t == t && lk[i].handle == t->id) {
            /* to the front: the next lookups take the inline path */
            struct gt_lk_ent e = lk[i];
            lk[i] = lk[0];
            lk[0] = e;
            if (++lk[0].n >= GT_ST_LOOKUP_BATCH)
                lk_flush(&lk[0]);
            return;
        }
    /* a handle this thread has no batch for: the front entry moves to a
     * free entry, else the last entry's pending count is dropped (its
     * handle may be closed by now: at most 255 lookups uncounted) */
    uint32_t k = GT_LK_ENTRIES - 1;
    for (uint32_t i = 1; i < GT_LK_ENTRIES; i++)
        if (!lk[i].t) {
            k = i;
            break;
        }
    lk[k] = lk[0];
    lk[0] = (struct gt_lk_ent){.t = t, .handle = t->id, .n = 1};
    gt__thread_exit_hook(); /* flush at exit */
}

void gt__stat_flush(gt_table *t) {
    for (uint32_t i = 0; i < GT_LK_ENTRIES; i++)
        if (gt__lk[i].t == t && gt__lk[i].handle == t->id) {
            lk_flush(&gt__lk[i]);
            gt__lk[i] = (struct gt_lk_ent){0};
        }
}

/* In a forked child: the batches are the parent thread's to count. */
void gt__stat_fork_child(void) {
    memset(gt__lk, 0, sizeof gt__lk);
}

static _Thread_local uint32_t fanouts_started;

uint64_t gt__stat_fanout_start(void) {
    return fanouts_started++ % GT_ST_SAMPLE == 0 ? gt__now_ns() : 0;
}

static unsigned bucket(uint64_t ns) {
    uint64_t us = ns / 1000;
    unsigned b = 0;
    while (us && b < GT_ST_BUCKETS - 1) {
        us >>= 1;
        b++;
    }
    return b;
}

void gt__stat_fanout_end(gt_table *t, uint32_t slot, uint64_t start,
                         uint64_t recipients) {
    struct gt_counters *c = &gt_slot_at(t, slot)->stats;
    gt_stat_add(t, slot, GT_ST_FANOUTS, 1);
    gt_stat_add(t, slot, GT_ST_RECIPIENTS, recipients);
    if (start) {
        a64 *h = &c->hist[bucket(gt__now_ns() - start)];
        STORE(h, LOAD(h, relaxed) + 1, relaxed);
        gt_stat_add(t, slot, GT_ST_TIMED, 1);
    }
}

static void sum(uint64_t *c, uint64_t *h, const struct gt_counters *s) {
    for (unsigned k = 0; k < GT_ST_COUNT; k++)
        c[k] += LOAD(&s->c[k], relaxed);
    for (unsigned b = 0; b < GT_ST_BUCKETS; b++)
        h[b] += LOAD(&s->hist[b], relaxed);
}

GT_API int gt_stats_read(gt_table *t, gt_stats *out) {
    if (!t || !out)
        return GT_EINVAL;
    uint64_t c[GT_ST_COUNT] = {0}, h[GT_ST_BUCKETS] = {0};
    sum(c, h, &t->seg->stats);
    for (uint32_t i = 0; i < t->g.max_slots; i++)
        sum(c, h, &gt_slot_at(t, i)->stats);
    *out = (gt_stats){
        .lookups = c[GT_ST_LOOKUPS],
        .inserts = c[GT_ST_INSERTS],
        .deletes = c[GT_ST_DELETES],
        .updates = c[GT_ST_UPDATES],
        .guild_deletes = c[GT_ST_GUILD_DELETES],
        .scans = c[GT_ST_SCANS],
        .fanouts = c[GT_ST_FANOUTS],
        .recipients = c[GT_ST_RECIPIENTS],
        .read_waits = c[GT_ST_READ_RETRIES],
        .lock_waits = c[GT_ST_LOCK_WAITS],
        .recoveries = c[GT_ST_RECOVERIES],
        .fanouts_timed = c[GT_ST_TIMED],
    };
    _Static_assert(sizeof out->fanout_us_log2 / sizeof out->fanout_us_log2[0] ==
                       GT_ST_BUCKETS, "histogram buckets");
    memcpy(out->fanout_us_log2, h, sizeof h);
    return 0;
}
