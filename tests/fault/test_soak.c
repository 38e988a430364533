/* test_soak.c - the soak run (not in CI): readers, a writer, and random
 * SIGKILLs of both, for GT_SOAK_MINUTES minutes; skipped when that is unset.
 *
 *   GT_SOAK_MINUTES=10 ./build/tests/fault_soak
 *
 * Each round a writer (harness.c: every kind of write, acknowledged in a
 * log) runs until it is killed at a random moment, and now and then a
 * reader is killed in the middle of whatever it was reading and replaced.
 * After every writer death the guilds are recovered and the whole table is
 * checked against the acknowledged writes and by gt_check. Readers check
 * every member and recipient they see for tearing. Any violation fails the
 * run at once; the end prints writes, reads, kills survived and violations
 * (then necessarily 0). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "harness.h"

#define READERS 2

struct shared {
    _Atomic uint64_t reads;
    double end;
    char fail[512];
};
static struct shared *rs;

static int on_member(void *ctx, const gt_member *m, const void *p) {
    (void)p;
    atomic_fetch_add_explicit(&rs->reads, 1, memory_order_relaxed);
    if (!tc_member_whole(m) && !rs->fail[0])
        snprintf(rs->fail, sizeof rs->fail,
                 "torn member from %s: user %lu session %lu worker %u "
                 "flags %#x joined %ld roles %lx %lx %lx %lx",
                 (const char *)ctx, (unsigned long)m->user_id,
                 (unsigned long)m->session_id, (unsigned)m->worker,
                 (unsigned)m->flags, (long)m->joined_at,
                 (unsigned long)m->roles[0], (unsigned long)m->roles[1],
                 (unsigned long)m->roles[2], (unsigned long)m->roles[3]);
    return 0;
}
static int on_batch(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)ctx;
    atomic_fetch_add_explicit(&rs->reads, n, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        if (tc_worker_of(r[i].session_id) != w && !rs->fail[0])
            snprintf(rs->fail, sizeof rs->fail, "recipient %lu misrouted",
                     (unsigned long)r[i].user_id);
    return 0;
}

static int reader(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    gt_table *t;
    if (gt_open(fh_name(), NULL, &t))
        return 1;
    while (tc_now() < rs->end) {
        uint64_t g = fh_gid((unsigned)(tc_rand(&rng) % FH_GUILDS));
        for (int i = 0; i < 200; i++) {
            gt_member m;
            if (gt_lookup(t, g, tc_rand(&rng) % FH_USERS, &m, NULL) == 0)
                on_member("lookup", &m, NULL);
        }
        int r = tc_rand(&rng) & 1
                    ? gt_select(t, g, NULL, 0, 1, on_member, "select")
                    : gt_fanout(t, g, &(gt_filter){.flags_set = GT_ACTIVE}, 0,
                                1, on_batch, NULL);
        if (r && r != GT_ENOENT && r != GT_EBUSY && !rs->fail[0])
            snprintf(rs->fail, sizeof rs->fail, "reader: %s", gt_strerror(r));
    }
    gt_close(t);
    return 0;
}

Test(fault, soak, .timeout = 0) {
    const char *e = getenv("GT_SOAK_MINUTES");
    if (!e || atof(e) <= 0)
        cr_skip_test("set GT_SOAK_MINUTES to run the soak");
    rs = tc_shared(sizeof *rs);
    gt_table *t = fh_setup("soak");
    struct fh_model *md = calloc(1, sizeof *md);
    rs->end = tc_now() + atof(e) * 60;
    pid_t r[READERS];
    for (int i = 0; i < READERS; i++)
        r[i] = tc_spawn(reader, (void *)(uintptr_t)(i + 1));
    uint64_t rng = 31337, wkills = 0, rkills = 0, writes = 0;
    double last = tc_now();
    while (tc_now() < rs->end) {
        pid_t w = fh_writer(wkills + 1, NULL, UINT64_MAX);
        struct timespec d = {0, (long)(tc_rand(&rng) % 50000000)};
        nanosleep(&d, NULL);
        kill(w, SIGKILL);
        cr_assert(fh_reap(w));
        wkills++;
        if (tc_rand(&rng) % 3 == 0) { /* and a reader, mid-read */
            int i = (int)(tc_rand(&rng) % READERS);
            kill(r[i], SIGKILL);
            waitpid(r[i], NULL, 0);
            rkills++;
            r[i] = tc_spawn(reader, (void *)(uintptr_t)(rng & 0xFFFF));
        }
        struct fh_entry in[FH_MANY_MAX];
        int inflight = fh_apply(md, in);
        for (unsigned g = 0; g < FH_GUILDS; g++)
            gt_update_flags(t, fh_gid(g), UINT64_MAX, 0, 0, NULL);
        fh_verify(t, md, in, inflight);
        cr_assert_eq(rs->fail[0], 0, "%s", rs->fail);
        if (tc_now() - last > 60) {
            fprintf(stderr, "soak: %.0f min, %lu writer and %lu reader kills\n",
                    (tc_now() - rs->end) / 60 + atof(e),
                    (unsigned long)wkills, (unsigned long)rkills);
            last = tc_now();
        }
    }
    tc_reap(r, READERS, "reader");
    cr_assert_eq(rs->fail[0], 0, "%s", rs->fail);
    writes = fh_acknowledged();
    fprintf(stderr,
            "soak: %s min: %lu writes acknowledged, %lu reads checked, "
            "%lu writer kills and %lu reader kills survived, 0 violations\n",
            e, (unsigned long)writes, (unsigned long)atomic_load(&rs->reads),
            (unsigned long)wkills, (unsigned long)rkills);
    free(md);
    fh_teardown(t);
}
