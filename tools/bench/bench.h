/*
 * bench.h - the workload every C driver in tools/bench/ runs, and how the
 * drivers report. The Erlang driver (ets.escript) re-implements the same
 * definitions; the checks below make any divergence show in the report.
 *
 * Workload: one guild (id 1) of n members. Member i (0 <= i < n):
 *   user_id    = bench_uid(i)          splitmix64 of (seed ^ i): distinct,
 *                                      random-looking, reproducible
 *   session_id = bench_uid(bench_next(i, n))  the next member of one cycle
 *                                      through all n, in an order unrelated
 *                                      to i: a dependent lookup follows it
 *   roles      = {1 << (i % 8), 0, 0, 0}      role r = i % 8
 *   joined_at  = i
 *   worker     = i % 16
 *   flags      = ONLINE | (i % 10 == 0 ? ACTIVE : 0)      10% active
 * Lookup keys: the k-th random existing key is bench_uid(bench_pick(k, n));
 * miss keys are bench_uid(n + k), which no member has (splitmix64 is a
 * bijection).
 *
 * Output: one JSON object per line on stdout,
 *   {"peer":"plain","n":1000000,"metric":"lookup_ns","value":41.2}
 * The metric names and units are listed in tools/bench/README.md; every
 * driver prints the subset it can measure, and the check_* values, which
 * the report compares across peers.
 */
#ifndef GT_BENCH_H
#define GT_BENCH_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BENCH_SEED 0x67756c6474616231ull /* fixed: runs are reproducible */
#define BENCH_ONLINE 0x1u
#define BENCH_ACTIVE 0x2u
#define BENCH_WORKERS 16u
#define BENCH_ROLE 3u /* the role-filtered select: members with role 3 */

/* The record, laid out like gt_member: 64 bytes. */
struct bench_member {
    uint64_t user_id;
    uint64_t session_id;
    uint64_t roles[4];
    int64_t joined_at;
    uint32_t worker;
    uint32_t flags;
};

static inline uint64_t bench_mix(uint64_t x) { /* splitmix64 */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t bench_uid(uint64_t i) { return bench_mix(BENCH_SEED ^ i); }

/* An index in [0, n) from a random 64-bit value (Lemire's multiply-shift). */
static inline uint64_t bench_range(uint64_t x, uint64_t n) {
    return (uint64_t)(((unsigned __int128)x * n) >> 64);
}

static inline uint64_t bench_pick(uint64_t k, uint64_t n) {
    return bench_range(bench_mix(k ^ 0x6c6f6f6b7570ull), n);
}

/* The multiplier of a full-period LCG modulo n (Hull-Dobell: a - 1 divisible
 * by every prime factor of n, and by 4 if 4 divides n), near 0.618 n so that
 * consecutive members of the cycle lie far apart in insertion order. */
static inline uint64_t bench_lcg_a(uint64_t n) {
    uint64_t m = 1, r = n;
    for (uint64_t p = 2; p * p <= r; p++)
        if (r % p == 0) {
            m *= p;
            while (r % p == 0)
                r /= p;
        }
    if (r > 1)
        m *= r;
    if (n % 4 == 0 && m % 4 != 0)
        m *= 2;
    uint64_t a = (uint64_t)((double)n * 0.6180339887) / m * m + 1;
    return a % n ? a % n : 1;
}

/* The member after i in the dependent-lookup cycle: (a * i + 1) mod n, one
 * cycle through all n members. */
static inline uint64_t bench_next(uint64_t i, uint64_t n, uint64_t a) {
    return (uint64_t)(((unsigned __int128)a * i + 1) % n);
}

static inline void bench_member_make(uint64_t i, uint64_t n, uint64_t a,
                                     struct bench_member *m) {
    memset(m, 0, sizeof *m);
    m->user_id = bench_uid(i);
    m->session_id = bench_uid(bench_next(i, n, a));
    m->roles[0] = 1ull << (i % 8);
    m->joined_at = (int64_t)i;
    m->worker = (uint32_t)(i % BENCH_WORKERS);
    m->flags = BENCH_ONLINE | (i % 10 == 0 ? BENCH_ACTIVE : 0);
}

/* The k-th presence flip: member *i gets flags *flags (ONLINE set or
 * cleared at random, ACTIVE as loaded), without reading the record first. */
static inline void bench_flip(uint64_t k, uint64_t n, uint64_t *i,
                              uint32_t *flags) {
    uint64_t x = bench_mix(k ^ 0x666c6970ull);
    *i = bench_range(x, n);
    *flags = (x & 1 ? BENCH_ONLINE : 0) | (*i % 10 == 0 ? BENCH_ACTIVE : 0);
}

/* The k-th churn pair deletes member bench_churn(k, n), then inserts it. */
static inline uint64_t bench_churn(uint64_t k, uint64_t n) {
    return bench_range(bench_mix(k ^ 0x636875726eull), n);
}

/* The write rounds' operations, built before the clock starts: `flips`
 * presence flips (user id, new flags) and `churns` members to delete and
 * insert again. */
struct bench_writes {
    uint64_t flips, churns;
    uint64_t *flip_uid;
    uint32_t *flip_flags;
    struct bench_member *churn;
};

static inline void bench_die(const char *what);

static inline struct bench_writes *bench_writes_make(uint64_t ops, uint64_t n) {
    struct bench_writes *w = calloc(1, sizeof *w);
    uint64_t a = bench_lcg_a(n);
    if (!w)
        bench_die("out of memory");
    w->flips = ops;
    w->churns = ops / 2;
    w->flip_uid = malloc(w->flips * sizeof *w->flip_uid);
    w->flip_flags = malloc(w->flips * sizeof *w->flip_flags);
    w->churn = malloc(w->churns * sizeof *w->churn);
    if (!w->flip_uid || !w->flip_flags || !w->churn)
        bench_die("out of memory");
    for (uint64_t k = 0; k < w->flips; k++) {
        uint64_t i;
        bench_flip(k, n, &i, &w->flip_flags[k]);
        w->flip_uid[k] = bench_uid(i);
    }
    for (uint64_t k = 0; k < w->churns; k++)
        bench_member_make(bench_churn(k, n), n, a, &w->churn[k]);
    return w;
}

/* Expected results, for the checks. */
static inline uint64_t bench_expect_active(uint64_t n) { return (n + 9) / 10; }
static inline uint64_t bench_expect_role(uint64_t n) {
    return n / 8 + (n % 8 > BENCH_ROLE);
}

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *bench_peer = "?";
static uint64_t bench_n;

/* Whole values (counts) exactly, others to 6 significant digits. */
static inline void bench_emit(const char *metric, double value) {
    bool whole = value == (double)(int64_t)value && value < 9e15 && value > -9e15;
    printf("{\"peer\":\"%s\",\"n\":%" PRIu64 ",\"metric\":\"%s\",\"value\":",
           bench_peer, bench_n, metric);
    printf(whole ? "%.0f}\n" : "%.6g}\n", value);
    fflush(stdout);
}

static inline void bench_die(const char *what) {
    fprintf(stderr, "bench %s n=%" PRIu64 ": %s\n", bench_peer, bench_n, what);
    exit(1);
}

/* Parse "DRIVER N" (n >= 16). Sets bench_peer and bench_n. */
static inline uint64_t bench_args(int argc, char **argv, const char *peer) {
    bench_peer = peer;
    char *end = NULL;
    unsigned long long n = argc == 2 ? strtoull(argv[1], &end, 10) : 0;
    if (argc != 2 || !end || *end || n < 16 || n > 1000000000ull) {
        fprintf(stderr, "usage: %s N   (members, 16..1e9)\n", argv[0]);
        exit(2);
    }
    bench_n = n;
    return n;
}

/* Operations per timed round, from BENCH_OPS or the default. */
static inline uint64_t bench_ops(uint64_t dflt) {
    const char *s = getenv("BENCH_OPS");
    return s && *s ? strtoull(s, NULL, 10) : dflt;
}

/* The random existing keys of the lookups, the miss keys. */
static inline uint64_t *bench_keys(uint64_t count, uint64_t n, bool miss) {
    uint64_t *k = malloc(count * sizeof *k);
    if (!k)
        bench_die("out of memory");
    for (uint64_t j = 0; j < count; j++)
        k[j] = miss ? bench_uid(n + j) : bench_uid(bench_pick(j, n));
    return k;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..k). */
static inline double bench_median(double *v, int k) {
    qsort(v, (size_t)k, sizeof *v, bench_cmp_double);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

static inline void *bench_alloc(size_t size) {
    void *p = malloc(size);
    if (!p)
        bench_die("out of memory");
    return p;
}

static inline void bench_writes_free(struct bench_writes *w) {
    free(w->flip_uid);
    free(w->flip_flags);
    free(w->churn);
    free(w);
}

/* Shared memory of size bytes for plain's table and the floor's lines, as
 * guildtab's tables are: anonymous shared memory (4 KiB pages here), or,
 * when BENCH_SHM_DIR names a tmpfs (bench.sh's BENCH_HUGE=1 mounts one
 * huge=advise), an unlinked file there marked MADV_HUGEPAGE, whose pages
 * come in 2 MiB as they are first touched. */
static inline void *bench_shared(size_t size) {
    const char *dir = getenv("BENCH_SHM_DIR");
    int fd = -1;
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/bench-XXXXXX", dir);
        if ((fd = mkstemp(path)) < 0 || unlink(path) != 0 ||
            ftruncate(fd, (off_t)size) != 0)
            bench_die("BENCH_SHM_DIR file");
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   fd < 0 ? MAP_SHARED | MAP_ANONYMOUS : MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        bench_die("mmap");
    if (fd >= 0) {
        if (madvise(p, size, MADV_HUGEPAGE) != 0)
            bench_die("madvise");
        close(fd);
    }
    return p;
}

/* Resident set of this process in bytes (VmRSS: anonymous, file and shared
 * memory pages it has touched). */
static inline double bench_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return kib * 1024;
}

#endif
