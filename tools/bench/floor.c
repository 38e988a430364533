/*
 * floor.c - what the memory of this machine allows, with no engine at all:
 * a buffer of n 64-byte lines in shared memory (4 KiB tmpfs pages, as the
 * tables use), read
 *   - sequentially (count_ms: the cheapest full scan of n 64-byte records;
 *     seq_gbps: the bandwidth it reaches),
 *   - at random lines, independently (lookup_ns; lookup_1p/2p_mops from one
 *     and two processes),
 *   - at random lines, each address taken from the line read before
 *     (lookup_dep_ns: one dependent miss, the latency no lookup can beat).
 *
 * Usage: floor N   (prints JSON lines; see README.md)
 */
#include "readers.h"

struct line {
    uint64_t next; /* index of the next line of the cycle */
    uint64_t pad[7];
};

static struct line *B;
static uint64_t N, L, *idx;

static uint64_t reads(void *ctx, int which) {
    (void)ctx;
    uint64_t sum = 0, from = which ? L / 2 : 0;
    for (uint64_t k = from; k < from + L / 2; k++)
        sum += B[idx[k]].pad[3];
    volatile uint64_t sink = sum;
    (void)sink;
    return L / 2;
}

int main(int argc, char **argv) {
    N = bench_args(argc, argv, "floor");
    B = bench_shared(N * sizeof *B);
    /* one random cycle through all lines (Sattolo's shuffle) */
    uint64_t *perm = malloc(N * sizeof *perm);
    if (!perm)
        bench_die("out of memory");
    for (uint64_t i = 0; i < N; i++)
        perm[i] = i;
    for (uint64_t i = N - 1; i > 0; i--) {
        uint64_t j = bench_range(bench_mix(i), i), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint64_t i = 0; i < N; i++) {
        B[perm[i]].next = perm[(i + 1) % N];
        B[i].pad[3] = i;
    }
    free(perm);
    L = bench_ops(2000000);
    idx = malloc(L * sizeof *idx);
    if (!idx)
        bench_die("out of memory");
    for (uint64_t k = 0; k < L; k++)
        idx[k] = bench_pick(k, N);

    double v[3];
    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        reads(NULL, 0);
        reads(NULL, 1);
        v[r] = (bench_now() - s) / (double)L * 1e9;
    }
    bench_emit("lookup_ns", bench_median(v, 3));
    for (int r = 0; r < 3; r++) {
        uint64_t at = 0;
        double s = bench_now();
        for (uint64_t k = 0; k < L; k++)
            at = B[at].next;
        v[r] = (bench_now() - s) / (double)L * 1e9;
        volatile uint64_t sink = at;
        (void)sink;
    }
    bench_emit("lookup_dep_ns", bench_median(v, 3));
    bench_readers(NULL, reads, NULL);

    double t[1000];
    int k = 0;
    double start = bench_now();
    while (k < 3 || (k < 1000 && bench_now() - start < 0.3)) {
        const uint64_t *w = (const uint64_t *)B;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        double a = bench_now();
        for (uint64_t i = 0; i < N * 8; i += 4) {
            s0 += w[i];
            s1 += w[i + 1];
            s2 += w[i + 2];
            s3 += w[i + 3];
        }
        t[k++] = (bench_now() - a) * 1e3;
        volatile uint64_t sink = s0 + s1 + s2 + s3;
        (void)sink;
    }
    double ms = bench_median(t, k);
    bench_emit("count_ms", ms);
    bench_emit("seq_gbps", (double)N * sizeof *B / (ms * 1e-3) / 1e9);
    return 0;
}
