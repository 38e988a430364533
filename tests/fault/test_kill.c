/* test_kill.c - writers killed with SIGKILL at random moments lose nothing
 * they acknowledged, and their in-flight write is all or nothing.
 *
 * Each round forks a writer doing a random mix of every write (inserts that
 * grow the storage and the fanout set, deletes that shrink them, updates,
 * guild deletes; harness.c), kills it after a random delay, has the guilds
 * recovered the way a writer meets them (a write on each takes its lock),
 * and checks the whole table against the acknowledged writes. The next
 * round continues on the same table. GT_FAULT_KILLS sets the rounds. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"
#include "harness.h"

Test(fault, sigkill_writers_lose_nothing, .timeout = 900) {
    gt_table *t = fh_setup("kill");
    struct fh_model *md = calloc(1, sizeof *md);
    const char *e = getenv("GT_FAULT_KILLS");
    int kills = e ? atoi(e) : 40;
    uint64_t rng = 4242;
    for (int k = 0; k < kills; k++) {
        pid_t p = fh_writer((uint64_t)k + 1, NULL, UINT64_MAX);
        struct timespec d = {0, (long)(tc_rand(&rng) % 20000000)};
        nanosleep(&d, NULL);
        kill(p, SIGKILL);
        cr_assert(fh_reap(p), "writer %d was not killed", k);
        struct fh_entry in[FH_MANY_MAX];
        int inflight = fh_apply(md, in);
        for (unsigned g = 0; g < FH_GUILDS; g++) {
            int r = gt_update_flags(t, fh_gid(g), UINT64_MAX, 0, 0, NULL);
            cr_assert(r == GT_ENOENT, "recovering guild %u: %s", g,
                      gt_strerror(r));
        }
        fh_verify(t, md, in, inflight);
    }
    cr_log_info("kill: %d kills survived", kills);
    free(md);
    fh_teardown(t);
}
