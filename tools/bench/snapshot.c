/*
 * snapshot.c - what a snapshot costs: gt_snapshot and gt_restore time and
 * file size for one guild of N members (10% active, payload 0), and how
 * long a writer of that guild waited while the snapshot ran.
 *
 * A forked writer flips presence flags of random members (gt_update_flags)
 * as fast as it can, timing every write, for one second before the snapshot
 * (the baseline) and during it; the parent snapshots to a file in DIR,
 * then restores it into a second table and checks its member count. Each
 * guild is copied under its lock (writers wait, readers do not), so the
 * longest write during the snapshot is the stall the snapshot caused.
 *
 * Usage: snapshot [DIR [N...]]   (default /tmp, 1000000 10000000)
 * Prints one line per N and the growth of per-member cost with N.
 */
#include <guildtab.h>

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GUILD 1u
#define ACTIVE_PCT 10u
#define BASELINE_NS 1000000000ull
#define MAX_SIZES 8

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser: ids from indices */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Shared with the writer. phase: 0 baseline, 1 snapshot running, 2 stop. */
struct shared {
    _Atomic int phase, ready;
    uint64_t ops[2], max_ns[2], sum_ns[2];
};

static void writer(const char *name, uint64_t n, struct shared *sh) {
    gt_table *t;
    if (gt_open(name, NULL, &t))
        _exit(1);
    uint64_t rng = 12345;
    atomic_store(&sh->ready, 1);
    for (int ph; (ph = atomic_load_explicit(&sh->phase, memory_order_relaxed)) < 2;) {
        rng = mix(rng);
        uint64_t u = mix(rng % n);
        uint64_t t0 = now_ns();
        int r = gt_update_flags(t, GUILD, u, (rng >> 32) & 1 ? GT_ONLINE : 0,
                                (rng >> 32) & 1 ? 0 : GT_ONLINE, NULL);
        uint64_t d = now_ns() - t0;
        if (r)
            _exit(2);
        sh->ops[ph]++;
        sh->sum_ns[ph] += d;
        if (d > sh->max_ns[ph])
            sh->max_ns[ph] = d;
    }
    gt_close(t);
    _exit(0);
}

static int load(gt_table *t, uint64_t n) {
    int r = gt_guild_reserve(t, GUILD, n);
    for (uint64_t i = 0; r == 0 && i < n; i++) {
        gt_member m = {.user_id = mix(i), .session_id = i, .worker = (uint32_t)(i % 16),
                       .flags = GT_ONLINE | (i % 100 < ACTIVE_PCT ? GT_ACTIVE : 0),
                       .roles = {1ull << (i % 64)}, .joined_at = (int64_t)i};
        r = gt_insert(t, GUILD, &m, NULL);
    }
    return r;
}

struct result {
    uint64_t n, file_bytes;
    double snap_s, restore_s, base_max_ms, snap_max_ms, base_mean_us, snap_mean_us;
    uint64_t snap_ops;
};

static int run(const char *dir, uint64_t n, struct result *res) {
    char name[64], copy[64], path[512];
    snprintf(name, sizeof name, "bench-snap-%d", (int)getpid());
    snprintf(copy, sizeof copy, "bench-snap-%d-copy", (int)getpid());
    snprintf(path, sizeof path, "%s/guildtab-bench-%d.gts", dir, (int)getpid());
    gt_options o = {.max_members = n + n / 4, .max_guilds = 16,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    int r = gt_open(name, &o, &t);
    if (r || (r = load(t, n))) {
        fprintf(stderr, "snapshot: load of %" PRIu64 ": %s\n", n, gt_strerror(r));
        if (t)
            gt_close(t), gt_unlink(name, NULL);
        return 1;
    }
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    memset(sh, 0, sizeof *sh);
    pid_t p = fork();
    if (p == 0)
        writer(name, n, sh);
    while (!atomic_load(&sh->ready))
        usleep(1000);
    usleep(BASELINE_NS / 1000);
    atomic_store(&sh->phase, 1);
    uint64_t t0 = now_ns();
    r = gt_snapshot(t, path, NULL, NULL);
    uint64_t t1 = now_ns();
    atomic_store(&sh->phase, 2);
    int st;
    waitpid(p, &st, 0);
    if (r || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "snapshot: %s (writer status %d)\n", gt_strerror(r), st);
        return 1;
    }
    struct stat fs;
    stat(path, &fs);
    uint64_t t2 = now_ns();
    r = gt_restore(path, copy, NULL, NULL, NULL);
    uint64_t t3 = now_ns();
    gt_guild_stat gs = {0};
    gt_table *c = NULL;
    if (r == 0 && (r = gt_open(copy, NULL, &c)) == 0)
        r = gt_guild_info(c, GUILD, &gs);
    if (r || gs.members != n) {
        fprintf(stderr, "snapshot: restore: %s, %" PRIu64 " members\n",
                gt_strerror(r), gs.members);
        return 1;
    }
    *res = (struct result){
        .n = n, .file_bytes = (uint64_t)fs.st_size,
        .snap_s = (double)(t1 - t0) / 1e9, .restore_s = (double)(t3 - t2) / 1e9,
        .base_max_ms = (double)sh->max_ns[0] / 1e6,
        .snap_max_ms = (double)sh->max_ns[1] / 1e6,
        .base_mean_us = sh->ops[0] ? (double)sh->sum_ns[0] / (double)sh->ops[0] / 1e3 : 0,
        .snap_mean_us = sh->ops[1] ? (double)sh->sum_ns[1] / (double)sh->ops[1] / 1e3 : 0,
        .snap_ops = sh->ops[1],
    };
    gt_close(c);
    gt_close(t);
    gt_unlink(copy, NULL);
    gt_unlink(name, NULL);
    unlink(path);
    munmap(sh, sizeof *sh);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    uint64_t sizes[MAX_SIZES] = {1000000, 10000000};
    int ns = 2;
    if (argc > 2) {
        ns = 0;
        for (int i = 2; i < argc && ns < MAX_SIZES; i++)
            sizes[ns++] = strtoull(argv[i], NULL, 10);
    }
    struct result res[MAX_SIZES];
    printf("snapshot to %s: one guild, 10%% active, payload 0; a writer flips "
           "presence meanwhile\n", dir);
    printf("%10s  %9s  %9s  %9s  %9s  %9s  %10s  %10s  %10s\n", "members",
           "snap s", "ns/member", "restore s", "ns/member", "file MiB",
           "B/member", "write max", "(baseline)");
    for (int i = 0; i < ns; i++) {
        if (run(dir, sizes[i], &res[i]))
            return 1;
        const struct result *r = &res[i];
        printf("%10" PRIu64 "  %9.3f  %9.1f  %9.3f  %9.1f  %9.1f  %10.1f  %7.2f ms  %7.2f ms\n",
               r->n, r->snap_s, r->snap_s * 1e9 / (double)r->n, r->restore_s,
               r->restore_s * 1e9 / (double)r->n, (double)r->file_bytes / 1048576.0,
               (double)r->file_bytes / (double)r->n, r->snap_max_ms, r->base_max_ms);
        printf("%10s  writer during the snapshot: %" PRIu64 " writes, mean %.2f us "
               "(baseline %.2f us)\n", "", r->snap_ops, r->snap_mean_us,
               r->base_mean_us);
        fflush(stdout);
    }
    for (int i = 1; i < ns; i++)
        printf("growth %" PRIu64 " -> %" PRIu64 " members: snapshot per member x%.2f, "
               "restore per member x%.2f\n", res[0].n, res[i].n,
               (res[i].snap_s / (double)res[i].n) / (res[0].snap_s / (double)res[0].n),
               (res[i].restore_s / (double)res[i].n) /
                   (res[0].restore_s / (double)res[0].n));
    return 0;
}
