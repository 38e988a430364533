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
    pid_t w = kids[0] = tc_stuck_insert(name, G, STUCK);
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

/* ---- a shrink neither waits for a stalled scan nor evicts it ----------------
 * A delete that leaves its guild sparse rebuilds it smaller only with memory
 * it can have at once (member.c, shrink). The heap is filled with reserved
 * guilds; a scan stalls, pinned; one reserved guild is deleted, so the heap
 * is full of a block only that scan holds back. The delete that would shrink
 * a guild then succeeds and leaves the scan pinned and the guild its size.
 * A write that must have memory evicts the scan, as any write does; then
 * the next delete shrinks the guild. */
#define SHRUNK 1u   /* the guild deleted down to its shrink */
#define FIRST_FILL 10u /* reserved guilds from here on fill the heap */

static int stall_cb(void *ctx, const gt_member *m, const void *p) {
    (void)ctx, (void)m, (void)p;
    raise(SIGSTOP); /* pinned, until killed */
    return 0;
}

static int stalled_scan(void *arg) {
    (void)arg;
    gt_table *t = tc_child_open(name, NULL);
    gt_select(t, SHRUNK, NULL, 0, 1, stall_cb, NULL);
    return 2; /* never reached: killed */
}

Test(fault, shrink_does_not_evict_a_stalled_scan, .timeout = 120,
     .fini = kill_kids) {
    name = tc_name("evict-shrink");
    gt_options o = {.max_members = 20000, .max_guilds = 512,
                    .stall_timeout_ms = 50, .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    uint64_t last = 400;
    for (uint64_t u = 1; u <= last; u++) {
        gt_member m = tc_member(u, 1); /* not active: no fanout set */
        cr_assert_eq(gt_insert(t, SHRUNK, &m, NULL), 0);
    }
    gt_guild_stat st = tc_to_shrink_point(t, SHRUNK, &last);
    /* fill the heap: reservations of every size, largest first, each
     * until the heap refuses it */
    uint64_t gid = FIRST_FILL;
    for (uint64_t n = o.max_members; n >= 1; n /= 2) {
        int r;
        while ((r = gt_guild_reserve(t, gid, n)) == 0)
            gid++;
        cr_assert_eq(r, GT_EFULL, "reserve %lu: %s", (unsigned long)n,
                     gt_strerror(r));
        cr_assert_lt(gid, o.max_guilds - 1);
    }
    pid_t s = kids[1] = tc_spawn(stalled_scan, NULL);
    tc_stopped(s, "scan");
    cr_assert_eq(tc_pinned(t, s), 1);
    cr_assert_eq(gt_guild_delete(t, FIRST_FILL), 0); /* retired, held */
    usleep(200 * 1000); /* the pin is now older than stall_timeout_ms */
    cr_assert_eq(gt_delete(t, SHRUNK, last), 0);
    cr_assert_eq(tc_pinned(t, s), 1, "the shrink evicted the stalled scan");
    gt_guild_stat after;
    cr_assert_eq(gt_guild_info(t, SHRUNK, &after), 0);
    cr_assert_eq(after.members, st.members - 1);
    cr_assert_eq(after.capacity, st.capacity, "rebuilt without the memory");
    /* a write that must have memory evicts it */
    cr_assert_eq(gt_guild_reserve(t, gid, 1), 0);
    cr_assert_eq(tc_pinned(t, s), 0, "a reservation kept the scan pinned");
    cr_assert_eq(gt_delete(t, SHRUNK, last - 1), 0);
    cr_assert_eq(gt_guild_info(t, SHRUNK, &after), 0);
    cr_assert_lt(after.capacity, st.capacity, "the next delete did not shrink");
    kill_kids();
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0);
    cr_assert_eq(rep.violations, 0);
    tc_drop(t, name);
}
