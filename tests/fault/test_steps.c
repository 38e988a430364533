/* test_steps.c - a writer killed at every named step of every write (the
 * GT_HOOK crash points of the test library, src/hooks.c) loses nothing it
 * acknowledged, and its write in flight is all or nothing.
 *
 * For each step and several occurrences of it, a writer runs the random
 * write mix of harness.c with GT_CRASH_AT=step:n and kills itself there.
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

Test(fault, every_named_step, .timeout = 900) {
    gt_table *t = fh_setup("steps");
    struct fh_model *md = calloc(1, sizeof *md);
    int kills = 0;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        for (size_t o = 0; o < sizeof occurrences / sizeof occurrences[0]; o++) {
            char at[96];
            snprintf(at, sizeof at, "%s:%ld", steps[s], occurrences[o]);
            cr_log_info("steps: %s", at);
            pid_t p = fh_writer(s * 131 + o + 1, at, 30000);
            bool killed = fh_reap(p);
            if (occurrences[o] == 1)
                cr_assert(killed, "step %s never reached", steps[s]);
            kills += killed;
            struct fh_entry in[FH_MANY_MAX];
            int inflight = fh_apply(md, in);
            if (o % 2 == 0) {
                gt_table_stat st;
                cr_assert_eq(gt_info(t, &st), 0); /* sweeps the dead writer */
            } /* else the checks' own reads meet its work first: a reader
               * waiting on a seqlock it left odd recovers the guild */
            fh_verify(t, md, in, inflight);
        }
    }
    cr_log_info("steps: %d deaths at %zu named steps", kills,
                sizeof steps / sizeof steps[0]);
    free(md);
    fh_teardown(t);
}
