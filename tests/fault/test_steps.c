/* test_steps.c - a writer killed at every named step of every write (the
 * GT_HOOK crash points of the test library, src/hooks.c) loses nothing it
 * acknowledged, and its write in flight is all or nothing.
 *
 * For each step and several occurrences of it, a writer runs the random
 * write mix of harness.c with GT_CRASH_AT=step:n and kills itself there;
 * then a second one that begins by emptying a guild, whose first rebuilds
 * shrink it (the mix alone rarely does before the step is reached).
 * Recovery is left to what any reader does first: every other death a
 * gt_info (a sweep of dead slots), otherwise the checks' own lookups and
 * scans, which meet the seqlocks the dead writer left odd, wait, see it is
 * dead and recover it. Every step must be reached at least once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "harness.h"

static const char *const steps[] = {
    /* guild writes (undo log in the writer's slot) */
    "record", "record_written", "insert_ctrl", "insert_done", "act_add",
    "act_remove", "guild_drop", "rebuild_made", "rebuild_copied",
    "rebuild_published", "commit", "sealed",
    /* global-lock sections (the global undo log) */
    "alloc", "heap_split", "heap_merge", "retire", "undir", "guild_create",
    "count_reserve", "action",
};
static const long occurrences[] = {1, 2, 5, 23, 150, 1000};

/* Waits for writer p, has what it left recovered (by a gt_info if sweep,
 * else by the checks' own reads: a reader waiting on a seqlock it left odd
 * recovers the guild) and checks the table against md. True if it was
 * killed. */
static bool settle(gt_table *t, struct fh_model *md, pid_t p, bool sweep) {
    bool killed = fh_reap(p);
    struct fh_entry in[FH_MANY_MAX];
    int inflight = fh_apply(md, in);
    if (sweep) {
        gt_table_stat st;
        cr_assert_eq(gt_info(t, &st), 0); /* sweeps the dead writer */
    }
    fh_verify(t, md, in, inflight);
    return killed;
}

Test(fault, every_named_step, .timeout = 900) {
    gt_table *t = fh_setup("steps");
    struct fh_model *md = calloc(1, sizeof *md);
    int kills = 0;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        for (size_t o = 0; o < sizeof occurrences / sizeof occurrences[0]; o++) {
            char at[96];
            snprintf(at, sizeof at, "%s:%ld", steps[s], occurrences[o]);
            cr_log_info("steps: %s", at);
            uint64_t seed = s * 131 + o + 1;
            bool killed = settle(t, md, fh_writer(seed, at, 30000), o % 2 == 0);
            if (occurrences[o] == 1)
                cr_assert(killed, "step %s never reached", steps[s]);
            kills += killed;
            /* and one that begins by emptying a guild, so that the steps
             * of its first rebuilds are those of shrinks */
            kills += settle(t, md, fh_drainer(seed, at, 30000), o % 2 == 1);
        }
    }
    cr_log_info("steps: %d deaths at %zu named steps", kills,
                sizeof steps / sizeof steps[0]);
    free(md);
    fh_teardown(t);
}
