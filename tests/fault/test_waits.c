/* test_waits.c - the statistics of contention and crashes: a writer that
 * waits for another writer of its guild counts one lock wait, a reader that
 * meets a record mid-write counts one read wait, and finishing the write of
 * a writer killed in the middle counts one recovery.
 *
 * Deterministic, with the test library's stop points (src/hooks.c): a
 * writer stops inside an insert, holding the guild's lock with the record's
 * seqlock odd; a second writer and a reader of that member pile up behind
 * it (the test waits for their counts); then the stopped writer is killed. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define G 7u
#define STUCK 4242u /* the member of the insert in flight */

static const char *name;
static int *rc; /* shared: the reader's lookup result, the writer's insert */

static int second_writer(void *arg) {
    (void)arg;
    gt_table *t = tc_child_open(name, NULL);
    gt_member m = tc_member(1, 2);
    rc[1] = gt_insert(t, G, &m, NULL);
    gt_close(t);
    return 0;
}

static int reader(void *arg) {
    (void)arg;
    gt_table *t;
    gt_options o = {.read_timeout_ms = 30000}; /* waits until the kill */
    if (gt_open(name, &o, &t))
        return 1;
    rc[0] = gt_lookup(t, G, STUCK, NULL, NULL);
    gt_close(t);
    return 0;
}


static uint64_t field(const gt_stats *s, int which) {
    return which == 0 ? s->lock_waits : which == 1 ? s->read_waits
                                                   : s->recoveries;
}

/* Poll until counter `which` reaches want (10 s at most). */
static void await(gt_table *t, int which, uint64_t want) {
    gt_stats s;
    for (int i = 0; i < 10000; i++) {
        cr_assert_eq(gt_stats_read(t, &s), 0);
        if (field(&s, which) >= want)
            return;
        usleep(1000);
    }
    cr_assert_fail("counter %d stayed at %lu", which,
                   (unsigned long)field(&s, which));
}

Test(fault, waits_and_recoveries_are_counted, .timeout = 60) {
    name = tc_name("waits");
    rc = tc_shared(2 * sizeof *rc);
    rc[0] = rc[1] = 99;
    gt_options o = {.max_members = 10000, .max_guilds = 8,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    gt_member m = tc_member(STUCK + 1, 3);
    cr_assert_eq(gt_insert(t, G, &m, NULL), 0);
    gt_stats s;
    cr_assert_eq(gt_stats_read(t, &s), 0);
    cr_assert(s.lock_waits == 0 && s.read_waits == 0 && s.recoveries == 0);

    pid_t w = tc_stuck_insert(name, G, STUCK);
    pid_t w2 = tc_spawn(second_writer, NULL);
    await(t, 0, 1); /* the second writer waits for the guild's lock */
    pid_t r = tc_spawn(reader, NULL);
    await(t, 1, 1); /* the reader waits for the record */
    kill(w, SIGKILL);
    cr_assert_eq(waitpid(w, NULL, 0), w);
    tc_reap(&w2, 1, "second writer");
    tc_reap(&r, 1, "reader");
    cr_assert_eq(rc[0], GT_ENOENT, "the killed insert is rolled back");
    cr_assert_eq(rc[1], 0);
    cr_assert_eq(gt_stats_read(t, &s), 0);
    cr_assert_eq(s.lock_waits, 1);
    cr_assert_eq(s.read_waits, 1);
    cr_assert_eq(s.recoveries, 1, "one write recovered, by whoever came first");
    cr_assert_eq(s.inserts, 2, "the killed insert is not counted");
    tc_drop(t, name);
}
