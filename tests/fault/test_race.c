/* test_race.c - a writer that locks a guild never takes the live write of
 * another writer for an abandoned one.
 *
 * Locking a guild finishes what its previous writer left: the log of the
 * slot the guild names, if that log holds entries of a write on this guild.
 * That previous writer may be alive and already busy with another guild.
 * The check once read the log's guild before its entry count; between the
 * two reads the previous writer could start a write on another guild, and
 * its fresh entries were rolled back under it as if abandoned (the stress
 * test saw it as a member counter one off, once in dozens of runs).
 *
 * Deterministic, with the test library's stop points (src/hooks.c): W
 * writes guild G, X starts a write on G and stops inside that check; W
 * starts a write on guild H and stops in the middle of it; X resumes. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define G 1u
#define H 2u

static const char *name;
static int to_parent[2], to_w[2];
static int *rc; /* shared: W's insert on H, X's insert on G */

static int writer_w(void *arg) {
    (void)arg;
    gt_table *t = tc_child_open(name, NULL);
    gt_member m = tc_member(100, 1);
    if (gt_insert(t, G, &m, NULL)) /* its log now names G, empty */
        return 2;
    char c = 'x';
    if (write(to_parent[1], &c, 1) != 1 || read(to_w[0], &c, 1) != 1)
        return 3;
    setenv("GT_CRASH_AT", "insert_done:1:stop", 1);
    gt_member n = tc_member(200, 2);
    rc[0] = gt_insert(t, H, &n, NULL); /* stops mid-write, then finishes */
    gt_close(t);
    return 0;
}

static int writer_x(void *arg) {
    (void)arg;
    /* the second look at G's previous writer's log, between its reads */
    gt_table *t = tc_child_open(name, "log_check:2:stop");
    gt_member m = tc_member(300, 3);
    rc[1] = gt_insert(t, G, &m, NULL);
    gt_close(t);
    return 0;
}

Test(fault, a_live_writers_log_is_not_recovered, .timeout = 60) {
    name = tc_name("race");
    rc = tc_shared(2 * sizeof *rc);
    rc[0] = rc[1] = 99;
    gt_table *t = tc_open(name, 10000, 8, 0);
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, G, &m, NULL), 0);
    cr_assert_eq(gt_insert(t, H, &m, NULL), 0);
    cr_assert_eq(pipe(to_parent), 0);
    cr_assert_eq(pipe(to_w), 0);

    pid_t w = tc_spawn(writer_w, NULL);
    char c;
    cr_assert_eq(read(to_parent[0], &c, 1), 1); /* W wrote G */
    pid_t x = tc_spawn(writer_x, NULL);
    tc_stopped(x, "writer X"); /* X holds G, inside the check of W's log */
    cr_assert_eq(write(to_w[1], "g", 1), 1);
    tc_stopped(w, "writer W"); /* W holds H, its log full of H's write */
    kill(x, SIGCONT);
    tc_reap(&x, 1, "writer X");
    kill(w, SIGCONT);
    tc_reap(&w, 1, "writer W");

    cr_assert_eq(rc[0], 0);
    cr_assert_eq(rc[1], 0);
    cr_assert_eq(gt_lookup(t, H, 200, NULL, NULL), 0, "W's write survived");
    cr_assert_eq(gt_lookup(t, G, 300, NULL, NULL), 0);
    gt_stats s;
    cr_assert_eq(gt_stats_read(t, &s), 0);
    cr_assert_eq(s.recoveries, 0, "nothing was abandoned");
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0, "%lu violations",
                 (unsigned long)rep.violations);
    tc_drop(t, name);
}
