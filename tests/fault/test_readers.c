/* test_readers.c - readers killed in the middle of scans, fanouts and
 * cursor walks, again and again, while writers churn the guild: writers
 * never fail, the surviving readers never see a torn record, the slots of
 * dead readers are reaped (more readers die than there are slots), and the
 * memory they pinned is freed. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define WRITERS 2
#define SCANNERS 3
#define BASE 20000u
#define GUILD 1

struct shared {
    char name[128];
    double end;
    _Atomic uint64_t scans, visits, writes;
    char fail[256];
};
static struct shared *sh;

static void failf(const char *what, uint64_t v) {
    if (!sh->fail[0])
        snprintf(sh->fail, sizeof sh->fail, "%s (%lu)", what, (unsigned long)v);
}

static int writer(void *arg) {
    uint64_t w = (uint64_t)(uintptr_t)arg, rng = 100 + w, ops = 0;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 1;
    /* own ids above BASE: grow to a random size, then drain, repeatedly */
    uint64_t lo = BASE + w * 1000000, hi = lo;
    while (tc_now() < sh->end) {
        uint64_t target = lo + tc_rand(&rng) % 30000;
        while (hi < target && tc_now() < sh->end) {
            gt_member m = tc_member(hi, 5);
            m.flags |= hi % 4 ? 0 : GT_ACTIVE;
            int r = gt_insert(t, GUILD, &m, NULL);
            if (r)
                return failf("writer insert", (uint64_t)-r), 2;
            hi++, ops++;
            if (hi % 8 == 0) {
                uint64_t u = lo + tc_rand(&rng) % (hi - lo);
                bool on = tc_rand(&rng) & 1;
                r = gt_update_flags(t, GUILD, u, on ? GT_ACTIVE : 0,
                                    on ? 0 : GT_ACTIVE, NULL);
                uint64_t s = tc_rand(&rng);
                if (r == 0)
                    r = gt_update_session(t, GUILD, u, tc_worker_of(s), s);
                if (r)
                    return failf("writer update", (uint64_t)-r), 3;
                ops += 2;
            }
        }
        while (hi > lo && tc_now() < sh->end) {
            int r = gt_delete(t, GUILD, --hi);
            if (r)
                return failf("writer delete", (uint64_t)-r), 4;
            ops++;
        }
    }
    while (hi > lo) { /* leave the guild as it was */
        int r = gt_delete(t, GUILD, --hi);
        if (r)
            return failf("writer delete", (uint64_t)-r), 5;
    }
    atomic_fetch_add(&sh->writes, ops);
    gt_close(t);
    return 0;
}

static int on_member(void *ctx, const gt_member *m, const void *p) {
    (void)ctx, (void)p;
    atomic_fetch_add_explicit(&sh->visits, 1, memory_order_relaxed);
    if (!tc_member_whole(m))
        failf("a reader saw a torn member", m->user_id);
    return 0;
}
static int on_batch(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        if (tc_worker_of(r[i].session_id) != w)
            failf("a recipient in the wrong worker's batch", r[i].user_id);
    atomic_fetch_add_explicit(&sh->visits, n, memory_order_relaxed);
    return 0;
}

static int scanner(void *arg) {
    (void)arg;
    gt_table *t;
    int r = gt_open(sh->name, NULL, &t);
    if (r)
        return failf("reader open", (uint64_t)-r), 1;
    gt_member page[64];
    for (uint64_t n = 0; tc_now() < sh->end; n++) {
        gt_filter active = {.flags_set = GT_ACTIVE};
        switch (n % 3) {
        case 0:
            r = gt_select(t, GUILD, NULL, 0, 1, on_member, NULL);
            break;
        case 1:
            r = gt_fanout(t, GUILD, &active, 0, 1, on_batch, NULL);
            break;
        default: {
            gt_cursor c;
            size_t got;
            r = gt_iter_first(t, GUILD, NULL, &c, page, NULL, 64, &got);
            while (r == 0 && got) {
                for (size_t i = 0; i < got; i++)
                    on_member(NULL, &page[i], NULL);
                r = gt_iter_next(t, &c, NULL, page, NULL, 64, &got);
            }
        }
        }
        if (r)
            return failf("reader scan", (uint64_t)-r), 2;
        atomic_fetch_add(&sh->scans, 1);
    }
    gt_close(t);
    return 0;
}

Test(fault, readers_killed_mid_scan, .timeout = 900) {
    sh = tc_shared(sizeof *sh);
    snprintf(sh->name, sizeof sh->name, "%s", tc_name("rkill"));
    gt_options o = {.max_members = BASE + WRITERS * 30000 + 100,
                    .max_slots = 8, .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(sh->name, &o, &t), 0);
    for (uint64_t u = 0; u < BASE; u++) {
        gt_member m = tc_member(u, 5);
        m.flags |= u % 10 ? 0 : GT_ACTIVE;
        cr_assert_eq(gt_insert(t, GUILD, &m, NULL), 0);
    }
    gt_close(t); /* the test process holds no slot while readers die */
    double secs = tc_seconds(6);
    sh->end = tc_now() + secs;
    pid_t w[WRITERS], s[SCANNERS];
    for (int i = 0; i < WRITERS; i++)
        w[i] = tc_spawn(writer, (void *)(uintptr_t)i);
    for (int i = 0; i < SCANNERS; i++)
        s[i] = tc_spawn(scanner, NULL);
    uint64_t rng = 7, killed = 0;
    while (tc_now() < sh->end - 0.5) {
        struct timespec d = {0, (long)(5000000 + tc_rand(&rng) % 30000000)};
        nanosleep(&d, NULL);
        int i = (int)(tc_rand(&rng) % SCANNERS);
        kill(s[i], SIGKILL);
        int st;
        waitpid(s[i], &st, 0);
        if (WIFEXITED(st)) /* it had already stopped: say why */
            cr_assert_eq(WEXITSTATUS(st), 0, "reader: %s", sh->fail);
        killed++;
        s[i] = tc_spawn(scanner, NULL);
    }
    tc_reap(w, WRITERS, "writer");
    tc_reap(s, SCANNERS, "reader");
    cr_assert_eq(sh->fail[0], 0, "%s", sh->fail);
    cr_assert_gt(killed, 8, "more readers must die than there are slots");
    cr_assert_gt(atomic_load(&sh->scans), 0);
    cr_assert_gt(atomic_load(&sh->writes), 0);

    cr_assert_eq(gt_open(sh->name, NULL, &t), 0);
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_eq(st.bytes_retired, 0, "memory pinned by dead readers");
    cr_assert_eq(st.members, BASE, "the writers drained what they added");
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0, "%lu violations",
                 (unsigned long)rep.violations);
    cr_log_info("readers killed: %lu, scans %lu, visits %lu, writes %lu",
                (unsigned long)killed, (unsigned long)atomic_load(&sh->scans),
                (unsigned long)atomic_load(&sh->visits),
                (unsigned long)atomic_load(&sh->writes));
    tc_drop(t, sh->name);
}
