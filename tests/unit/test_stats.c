/* test_stats.c - gt_stats_read: each counter follows the operations done,
 * exactly, from one thread, from threads that exit, and from processes
 * that close or are killed; lookups appear in per-thread batches of 256. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static gt_stats read_stats(gt_table *t) {
    gt_stats s;
    cr_assert_eq(gt_stats_read(t, &s), 0);
    return s;
}

static int nothing(void *ctx, const gt_member *m, const void *p) {
    (void)ctx, (void)m, (void)p;
    return 0;
}
static int take_all(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)w, (void)r;
    *(uint64_t *)ctx += n;
    return 0;
}

Test(stats, counters_follow_the_operations) {
    const char *name = tc_name("stats");
    gt_table *t = tc_open(name, 10000, 8, 0);
    gt_stats s = read_stats(t);
    cr_assert_eq(s.inserts + s.lookups + s.fanouts + s.scans, 0, "a new table");
    for (uint64_t u = 1; u <= 100; u++) {
        gt_member m = tc_member(u, u);
        m.flags |= u % 4 == 0 ? GT_ACTIVE : 0;
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    gt_member m = tc_member(5, 5);
    for (int i = 0; i < 5; i++) /* refused writes are not counted */
        cr_assert_eq(gt_insert_new(t, 1, &m, NULL), GT_EEXIST);
    for (uint64_t u = 101; u <= 105; u++) {
        gt_member n = tc_member(u, u);
        cr_assert_eq(gt_insert_new(t, 1, &n, NULL), 0);
    }
    for (uint64_t u = 1; u <= 10; u++)
        cr_assert_eq(gt_update_flags(t, 1, u, GT_ONLINE, 0, NULL), 0);
    for (uint64_t u = 1; u <= 3; u++)
        cr_assert_eq(gt_update_session(t, 1, u, 2, 77), 0);
    uint64_t roles[4] = {1, 2, 3, 4};
    for (uint64_t u = 1; u <= 2; u++)
        cr_assert_eq(gt_update_roles(t, 1, u, roles, NULL), 0);
    cr_assert_eq(gt_update_flags(t, 1, 999, GT_ONLINE, 0, NULL), GT_ENOENT);
    for (uint64_t u = 81; u <= 100; u++)
        cr_assert_eq(gt_delete(t, 1, u), 0);
    cr_assert_eq(gt_delete(t, 1, 999), GT_ENOENT);
    cr_assert_eq(gt_insert(t, 2, &m, NULL), 0);
    cr_assert_eq(gt_guild_delete(t, 2), 0);
    cr_assert_eq(gt_guild_delete(t, 2), GT_ENOENT);

    s = read_stats(t);
    cr_assert_eq(s.inserts, 106);
    cr_assert_eq(s.updates, 15);
    cr_assert_eq(s.deletes, 20);
    cr_assert_eq(s.guild_deletes, 1);
    cr_assert_eq(s.lock_waits, 0);
    cr_assert_eq(s.recoveries, 0);

    uint64_t c;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gt_select(t, 1, NULL, 0, 1, nothing, NULL), 0);
    for (int i = 0; i < 2; i++) /* answered by counters: no scan */
        cr_assert_eq(gt_select_count(t, 1, NULL, 0, 1, &c), 0);
    gt_filter walk = {.roles_any = {~0ull, ~0ull, ~0ull, ~0ull}};
    cr_assert_eq(gt_select_count(t, 1, &walk, 0, 1, &c), 0);
    gt_cursor cur;
    gt_member page[16];
    size_t n;
    uint64_t pages = 0; /* 85 members: 5 pages of 16, one of 5, which
                           ends the walk; the call after it reads nothing */
    cr_assert_eq(gt_iter_first(t, 1, NULL, &cur, page, NULL, 16, &n), 0);
    while (n > 0) {
        pages++;
        cr_assert_eq(gt_iter_next(t, &cur, NULL, page, NULL, 16, &n), 0);
    }
    cr_assert_eq(pages, 6);
    gt_filter active = {.flags_set = GT_ACTIVE};
    cr_assert_eq(gt_select_count(t, 1, &active, 0, 1, &c), 0);
    uint64_t got = 0;
    for (int i = 0; i < 17; i++)
        cr_assert_eq(gt_fanout(t, 1, &active, 0, 1, take_all, &got), 0);
    cr_assert_eq(gt_fanout(t, 99, &active, 0, 1, take_all, &got), GT_ENOENT);
    s = read_stats(t);
    cr_assert_eq(s.scans, 3 + 1 + pages, "scans %lu, pages %lu", (unsigned long)s.scans, (unsigned long)pages);
    cr_assert_eq(s.fanouts, 17, "a fanout of no guild is not counted");
    cr_assert_eq(s.recipients, got);
    cr_assert_eq(s.recipients, 17 * c);
    cr_assert_eq(s.fanouts_timed, 3, "fanouts 0, 8 and 16 of the thread");
    uint64_t timed = 0;
    for (int b = 0; b < GT_STATS_BUCKETS; b++)
        timed += s.fanout_us_log2[b];
    cr_assert_eq(timed, 3);

    for (uint64_t i = 0; i < 1000; i++)
        gt_lookup(t, 1, i % 120, NULL, NULL);
    for (uint64_t i = 0; i < 300; i++)
        gt_contains(t, 1, i);
    cr_assert_eq(read_stats(t).lookups, 5 * 256, "whole batches only");
    gt_close(t); /* counts this thread's batch */
    cr_assert_eq(gt_open(name, NULL, &t), 0);
    cr_assert_eq(read_stats(t).lookups, 1300);

    gt_table *ro;
    gt_options o = {.flags = GT_RDONLY};
    cr_assert_eq(gt_open(name, &o, &ro), 0);
    cr_assert_eq(gt_stats_read(ro, &s), 0);
    cr_assert_eq(s.inserts, 106);
    gt_close(ro);
    cr_assert_eq(gt_stats_read(NULL, &s), GT_EINVAL);
    cr_assert_eq(gt_stats_read(t, NULL), GT_EINVAL);
    tc_drop(t, name);
}

static gt_table *shared_t;
static void *lookups_then_exit(void *arg) {
    (void)arg;
    for (uint64_t i = 0; i < 100; i++)
        gt_lookup(shared_t, 1, i, NULL, NULL);
    return NULL;
}

Test(stats, a_thread_exit_counts_its_lookups) {
    const char *name = tc_name("stthr");
    gt_table *t = tc_open(name, 10000, 8, 0);
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    shared_t = t;
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, lookups_then_exit, NULL), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(read_stats(t).lookups, 300);
    tc_drop(t, name);
}

struct job {
    const char *name;
    uint64_t guild;
    int ready_fd; /* killed child: writes here, then waits to be killed */
};

static int worker(void *arg) {
    struct job *j = arg;
    gt_table *t;
    if (gt_open(j->name, NULL, &t))
        return 1;
    int inserts = j->ready_fd >= 0 ? 300 : 500;
    for (int u = 1; u <= inserts; u++) {
        gt_member m = tc_member((uint64_t)u, (uint64_t)u);
        m.flags |= GT_ACTIVE;
        if (gt_insert(t, j->guild, &m, NULL))
            return 2;
    }
    int lookups = j->ready_fd >= 0 ? 100 : 700;
    for (int i = 0; i < lookups; i++)
        gt_lookup(t, j->guild, (uint64_t)i, NULL, NULL);
    uint64_t got = 0;
    for (int i = 0; i < 10; i++)
        if (gt_fanout(t, j->guild, NULL, 0, 1, take_all, &got))
            return 3;
    if (j->ready_fd >= 0) {
        if (write(j->ready_fd, "x", 1) != 1)
            return 4;
        for (;;)
            pause();
    }
    gt_close(t);
    return 0;
}

Test(stats, processes_that_close_or_die) {
    const char *name = tc_name("stproc");
    gt_table *t = tc_open(name, 100000, 16, 0);
    struct job jobs[5];
    pid_t p[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){name, 10 + (uint64_t)i, -1};
        p[i] = tc_spawn(worker, &jobs[i]);
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    jobs[4] = (struct job){name, 20, fds[1]};
    pid_t k = tc_spawn(worker, &jobs[4]);
    tc_reap(p, 4, "worker");
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 1);
    kill(k, SIGKILL);
    cr_assert_eq(waitpid(k, NULL, 0), k);
    gt_stats s = read_stats(t);
    cr_assert_eq(s.inserts, 4 * 500 + 300, "a killed process's writes stay "
                 "counted");
    cr_assert_eq(s.fanouts, 5 * 10);
    cr_assert_eq(s.recipients, 10 * (4 * 500 + 300));
    cr_assert_eq(s.lookups, 4 * 700, "a killed process's partial batch (100 "
                 "lookups) is lost, closed ones are counted");
    close(fds[0]);
    close(fds[1]);
    tc_drop(t, name);
}
