/* test_evict.c - a counting scan that stalls is evicted like any other and
 * ends with GT_ESTALE, not with a count.
 *
 * gt_select_count with a role term walks the records and counts without
 * calling back, so it checks its pin once, when the walk ends (scan.c),
 * instead of before each delivery. Deterministic, with the test library's
 * stop points (src/hooks.c): a writer stops inside an insert, holding the
 * guild's lock with the record's seqlock odd; the counting scan stops when
 * it meets that record; writers of another guild then need the memory the
 * scan's pin holds back, until the pin is evicted; then the stopped writer
 * is killed and the scan resumed. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define G 1u      /* the guild counted */
#define CHURN 2u  /* grown and shrunk to retire blocks */
#define STUCK 424242u
#define MEMBERS 2000u

static const char *name;
static int *rc; /* shared: the count's result */
static uint64_t *counted;
static pid_t kids[2]; /* the stopped writer and scan, until reaped */

/* A failed assertion must not leave stopped children behind: they would
 * hold the runner's pipes open. */
static void kill_kids(void) {
    for (int i = 0; i < 2; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
}

static int stuck_insert(void *arg) {
    (void)arg;
    gt_table *t;
    if (gt_open(name, NULL, &t))
        return 1;
    setenv("GT_CRASH_AT", "insert_done:1:stop", 1);
    gt_member m = tc_member(STUCK, 1);
    gt_insert(t, G, &m, NULL);
    return 2; /* never reached: stopped, then killed */
}

static int counter(void *arg) {
    (void)arg;
    gt_table *t;
    gt_options o = {.read_timeout_ms = 60000}; /* waits through the test */
    if (gt_open(name, &o, &t))
        return 1;
    setenv("GT_CRASH_AT", "read_wait:1:stop", 1);
    gt_filter f = {.roles_any = {~0ull, ~0ull, ~0ull, ~0ull}};
    rc[0] = gt_select_count(t, G, &f, 0, 1, counted);
    gt_close(t);
    return 0;
}

Test(fault, stalled_count_is_evicted, .timeout = 120, .fini = kill_kids) {
    name = tc_name("evict");
    rc = tc_shared(sizeof *rc + sizeof *counted);
    counted = (uint64_t *)(void *)(rc + 2);
    rc[0] = 99;
    gt_options o = {.max_members = 50000, .stall_timeout_ms = 200,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    for (uint64_t u = 1; u <= MEMBERS; u++) {
        gt_member m = tc_member(u, 1);
        cr_assert_eq(gt_insert(t, G, &m, NULL), 0);
    }
    pid_t w = kids[0] = tc_spawn(stuck_insert, NULL);
    tc_stopped(w, "writer");
    pid_t s = kids[1] = tc_spawn(counter, NULL);
    tc_stopped(s, "counting scan"); /* at the stuck record, pinned */
    cr_assert_eq(tc_pinned(t, s), 1);
    /* every write succeeds while the pin is evicted */
    tc_evict(t, CHURN, s);
    kill(w, SIGKILL);
    cr_assert_eq(waitpid(w, NULL, 0), w);
    kids[0] = 0;
    kill(s, SIGCONT); /* it recovers the guild, walks on, then sees it was
                         evicted */
    kids[1] = 0;
    tc_reap(&s, 1, "counting scan");
    cr_assert_eq(rc[0], GT_ESTALE, "an evicted count returned %d (%s), "
                 "counting %lu", rc[0], gt_strerror(rc[0]),
                 (unsigned long)*counted);
    /* the same count, not stalled, is exact */
    gt_filter f = {.roles_any = {~0ull, ~0ull, ~0ull, ~0ull}};
    uint64_t c = 0;
    cr_assert_eq(gt_select_count(t, G, &f, 0, 1, &c), 0);
    cr_assert_eq(c, MEMBERS);
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_eq(st.bytes_retired, 0);
    tc_drop(t, name);
}
