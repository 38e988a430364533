/*
 * readers.h - lookups from forked reader processes: how well an engine's
 * reads scale from one process to two.
 *
 * bench_readers() forks two readers once. Each sets itself up (its own
 * handle, environment or connection) and makes one untimed warm-up pass: a
 * new process faults in its page tables of a shared mapping page by page,
 * which long-lived workers have long done. Then BENCH_READER_ROUNDS rounds
 * each time reader 0 alone and both readers at once, in turn (one round
 * 1 then 2, the next 2 then 1), and it emits
 *   lookup_1p_mops   the median over the rounds of reader 0 alone,
 *   lookup_2p_mops   the median of both at once (aggregate),
 *   lookup_scaling   the median of each round's 2-reader / 1-reader figure.
 * Pairing within a round cancels most of a VM's drift: one timed pass takes
 * tens of milliseconds, and a pass that loses its core to the host for part
 * of that skews a ratio of two such passes far more than a median of five.
 *
 * A reader waits for work blocked in read(2), not spinning, so the one left
 * out of a 1-reader pass takes no CPU from the other. A reader that dies
 * closes its pipe, and the parent stops with an error.
 */
#ifndef GT_BENCH_READERS_H
#define GT_BENCH_READERS_H

#include <signal.h>
#include <sys/wait.h>

#include "bench.h"

#define BENCH_READER_ROUNDS 5

typedef void (*bench_setup_fn)(void *ctx, int which);
typedef uint64_t (*bench_proc_fn)(void *ctx, int which);

struct bench_pass { /* shared with the readers */
    int arrived;    /* readers at the start line of this pass */
    struct {
        double t0, t1;
        uint64_t ops;
    } span[2];
};

static inline void bench_reader(struct bench_pass *sh, int which, int cmd,
                                int done, bench_setup_fn setup,
                                bench_proc_fn fn, void *ctx) {
    char c = 'r';
    if (setup)
        setup(ctx, which);
    fn(ctx, which);
    if (write(done, &c, 1) != 1)
        _exit(1);
    while (read(cmd, &c, 1) == 1 && c != 'q') {
        int procs = c - '0';
        /* both readers of a 2-reader pass start together */
        __atomic_add_fetch(&sh->arrived, 1, __ATOMIC_ACQ_REL);
        while (__atomic_load_n(&sh->arrived, __ATOMIC_ACQUIRE) < procs)
            ;
        sh->span[which].t0 = bench_now();
        sh->span[which].ops = fn(ctx, which);
        sh->span[which].t1 = bench_now();
        if (write(done, &c, 1) != 1)
            _exit(1);
    }
    _exit(c == 'q' ? 0 : 1);
}

/* Wait for reader p's byte on its done pipe; its end means it died. */
static inline void bench_reader_wait(const int *done, int p) {
    char c;
    if (read(done[p], &c, 1) != 1)
        bench_die("a reader process failed");
}

/* One timed pass of the first `procs` readers: aggregate operations per
 * second, from the first start to the last end. */
static inline double bench_time_pass(struct bench_pass *sh, const int *cmd,
                                     const int *done, int procs) {
    char c = (char)('0' + procs);
    sh->arrived = 0;
    for (int p = 0; p < procs; p++)
        if (write(cmd[p], &c, 1) != 1)
            bench_die("a reader process failed");
    for (int p = 0; p < procs; p++)
        bench_reader_wait(done, p);
    double t0 = sh->span[0].t0, t1 = sh->span[0].t1;
    uint64_t ops = 0;
    for (int p = 0; p < procs; p++) {
        t0 = sh->span[p].t0 < t0 ? sh->span[p].t0 : t0;
        t1 = sh->span[p].t1 > t1 ? sh->span[p].t1 : t1;
        ops += sh->span[p].ops;
    }
    return (double)ops / (t1 - t0);
}

/* Run fn(ctx, which) in two forked readers, after setup(ctx, which) (may
 * be NULL) in each; fn returns the operations it made. Emits the three
 * metrics above. */
static inline void bench_readers(bench_setup_fn setup, bench_proc_fn fn,
                                 void *ctx) {
    enum { R = BENCH_READER_ROUNDS };
    struct bench_pass *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        bench_die("mmap");
    int cmd[2], done[2];
    pid_t pid[2];
    signal(SIGPIPE, SIG_IGN); /* a dead reader's pipe: an error, not a kill */
    fflush(stdout);
    for (int p = 0; p < 2; p++) {
        int c[2], d[2];
        if (pipe(c) || pipe(d))
            bench_die("pipe");
        pid[p] = fork();
        if (pid[p] < 0)
            bench_die("fork");
        if (pid[p] == 0) {
            close(c[1]);
            close(d[0]);
            if (p == 1) { /* reader 0's ends: its pipes end with it */
                close(cmd[0]);
                close(done[0]);
            }
            bench_reader(sh, p, c[0], d[1], setup, fn, ctx);
        }
        close(c[0]);
        close(d[1]);
        cmd[p] = c[1];
        done[p] = d[0];
    }
    for (int p = 0; p < 2; p++)
        bench_reader_wait(done, p);

    double one[R], two[R], ratio[R];
    for (int r = 0; r < R; r++) {
        if (r % 2) {
            two[r] = bench_time_pass(sh, cmd, done, 2);
            one[r] = bench_time_pass(sh, cmd, done, 1);
        } else {
            one[r] = bench_time_pass(sh, cmd, done, 1);
            two[r] = bench_time_pass(sh, cmd, done, 2);
        }
        ratio[r] = two[r] / one[r];
    }

    bool ok = true;
    for (int p = 0; p < 2; p++) {
        int st;
        ok &= write(cmd[p], "q", 1) == 1;
        close(cmd[p]);
        close(done[p]);
        ok &= waitpid(pid[p], &st, 0) == pid[p] && WIFEXITED(st) &&
              WEXITSTATUS(st) == 0;
    }
    munmap(sh, sizeof *sh);
    if (!ok)
        bench_die("a reader process failed");
    bench_emit("lookup_1p_mops", bench_median(one, R) / 1e6);
    bench_emit("lookup_2p_mops", bench_median(two, R) / 1e6);
    bench_emit("lookup_scaling", bench_median(ratio, R));
}

#endif
