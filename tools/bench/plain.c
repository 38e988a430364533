/*
 * plain.c - the baseline: a plain open-addressing table of 64-byte records
 * in shared memory, as little as a member table can be. Capacity is a power
 * of two at load below 0.5, the home slot is a multiplicative hash of the
 * user id, collisions probe linearly, deletion shifts the run back. It has
 * no concurrency control at all (a reader can see a torn record), no crash
 * safety and no index: fanout, role select and count scan every slot. It is
 * what guildtab's per-operation figures are held against.
 *
 * Usage: plain N   (prints JSON lines; see README.md)
 */
#include "readers.h"

#include <sys/mman.h>

struct table {
    struct bench_member *slot; /* user_id 0: empty (no member has id 0) */
    uint64_t mask;
    int shift;
};

static struct table T;
static uint64_t *lookup_keys, *miss_keys;
static uint64_t L;

static inline uint64_t home(uint64_t uid) {
    return (uid * 0x9e3779b97f4a7c15ull) >> T.shift;
}

static inline const struct bench_member *find(uint64_t uid) {
    for (uint64_t i = home(uid);; i = (i + 1) & T.mask) {
        const struct bench_member *s = &T.slot[i];
        if (s->user_id == uid)
            return s;
        if (s->user_id == 0)
            return NULL;
    }
}

static void put(const struct bench_member *m) {
    uint64_t i = home(m->user_id);
    while (T.slot[i].user_id != 0 && T.slot[i].user_id != m->user_id)
        i = (i + 1) & T.mask;
    T.slot[i] = *m;
}

/* Backward-shift deletion: move later members of the run into the hole
 * when their home slot allows, so no tombstones are needed. */
static void del(uint64_t uid) {
    uint64_t i = home(uid);
    while (T.slot[i].user_id != uid) {
        if (T.slot[i].user_id == 0)
            return;
        i = (i + 1) & T.mask;
    }
    for (uint64_t j = (i + 1) & T.mask; T.slot[j].user_id; j = (j + 1) & T.mask) {
        uint64_t h = home(T.slot[j].user_id);
        /* j may move to i if its home is not in (i, j] cyclically */
        if (((j - h) & T.mask) >= ((j - i) & T.mask)) {
            T.slot[i] = T.slot[j];
            i = j;
        }
    }
    T.slot[i].user_id = 0;
}

/* Where lookups copy records to: memory the compiler must keep writing. */
static struct bench_member copied_out[64];

static uint64_t lookups(const uint64_t *keys, uint64_t count, uint64_t *hits) {
    uint64_t sum = 0, h = 0;
    for (uint64_t k = 0; k < count; k++) {
        const struct bench_member *s = find(keys[k]);
        if (s) {
            copied_out[k & 63] = *s; /* the whole record, as engines copy */
            sum += copied_out[k & 63].session_id;
            h++;
        }
    }
    *hits = h;
    return sum;
}

static uint64_t proc_lookups(void *ctx, int which) {
    (void)ctx;
    uint64_t hits;
    volatile uint64_t sink = lookups(lookup_keys + (which ? L / 2 : 0),
                                     L / 2, &hits);
    (void)sink;
    return L / 2;
}

struct route {
    uint64_t *rec[BENCH_WORKERS]; /* (user_id, session_id) per worker */
    uint64_t len[BENCH_WORKERS];
    uint64_t *ids;
};

static uint64_t scan_fanout(void *ctx) {
    struct route *r = ctx;
    uint64_t total = 0;
    for (unsigned w = 0; w < BENCH_WORKERS; w++)
        r->len[w] = 0;
    for (uint64_t i = 0; i <= T.mask; i++) {
        const struct bench_member *s = &T.slot[i];
        if (s->user_id && (s->flags & BENCH_ACTIVE)) {
            uint32_t w = s->worker % BENCH_WORKERS;
            uint64_t *o = r->rec[w] + 2 * r->len[w]++;
            o[0] = s->user_id;
            o[1] = s->session_id;
            total++;
        }
    }
    return total;
}

static uint64_t scan_role(void *ctx) {
    struct route *r = ctx;
    uint64_t k = 0;
    for (uint64_t i = 0; i <= T.mask; i++)
        if (T.slot[i].user_id && (T.slot[i].roles[0] & (1ull << BENCH_ROLE)))
            r->ids[k++] = T.slot[i].user_id;
    return k;
}

static uint64_t scan_count(void *ctx) {
    (void)ctx;
    uint64_t k = 0;
    for (uint64_t i = 0; i <= T.mask; i++)
        k += T.slot[i].user_id && (T.slot[i].flags & BENCH_ONLINE);
    return k;
}

int main(int argc, char **argv) {
    uint64_t n = bench_args(argc, argv, "plain"), a = bench_lcg_a(n);
    uint64_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    T.mask = cap - 1;
    T.shift = 64 - __builtin_ctzll(cap);
    double rss0 = bench_rss();
    /* shared memory, as guildtab's (tmpfs pages, no transparent huge pages) */
    void *p = mmap(NULL, cap * sizeof *T.slot, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        bench_die("mmap");
    T.slot = p;

    double t0 = bench_now();
    for (uint64_t i = 0; i < n; i++) {
        struct bench_member m;
        bench_member_make(i, n, a, &m);
        if (m.user_id == 0)
            bench_die("a user id is 0");
        put(&m);
    }
    bench_emit("load_mps", (double)n / (bench_now() - t0) / 1e6);
    bench_emit("bytes_member", (double)(cap * sizeof *T.slot) / (double)n);
    bench_emit("rss_member", (bench_rss() - rss0) / (double)n);

    L = bench_ops(2000000);
    lookup_keys = bench_keys(L, n, false);
    miss_keys = bench_keys(L, n, true);
    bench_emit("ops_lookup", (double)L);
    double v[3];
    uint64_t hits = 0;
    volatile uint64_t sink;
    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        sink = lookups(lookup_keys, L, &hits);
        v[r] = (bench_now() - s) / (double)L * 1e9;
    }
    bench_emit("lookup_ns", bench_median(v, 3));
    bench_emit("check_hits", (double)hits);

    uint64_t act = 0;
    for (int r = 0; r < 3; r++) {
        uint64_t uid = bench_uid(0);
        double s = bench_now();
        for (uint64_t k = 0; k < L; k++) {
            const struct bench_member *m = find(uid);
            if (k < 10000)
                act += (uint64_t)m->joined_at % 1000;
            uid = m->session_id;
        }
        v[r] = (bench_now() - s) / (double)L * 1e9;
    }
    bench_emit("lookup_dep_ns", bench_median(v, 3));
    bench_emit("check_dep", (double)(act / 3));

    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        sink = lookups(miss_keys, L, &hits);
        v[r] = (bench_now() - s) / (double)L * 1e9;
    }
    (void)sink;
    bench_emit("miss_ns", bench_median(v, 3));
    bench_emit("check_misses", (double)hits);

    bench_readers(NULL, proc_lookups, NULL);

    struct route rt;
    for (unsigned w = 0; w < BENCH_WORKERS; w++)
        rt.rec[w] = bench_alloc((n / BENCH_WORKERS + 1) * 16);
    rt.ids = bench_alloc(n * 8);
    uint64_t got;
    bench_emit("fanout_ms", bench_scan_ms(scan_fanout, &rt, &got));
    bench_emit("check_active", (double)got);
    bench_emit("role_ms", bench_scan_ms(scan_role, &rt, &got));
    bench_emit("check_role", (double)got);
    bench_emit("count_ms", bench_scan_ms(scan_count, &rt, &got));
    bench_emit("check_count", (double)got);

    struct bench_writes *wr = bench_writes_make(L, n);
    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        for (uint64_t k = 0; k < wr->flips; k++) {
            struct bench_member *m = (struct bench_member *)find(wr->flip_uid[k]);
            m->flags = wr->flip_flags[k];
        }
        v[r] = (double)wr->flips / (bench_now() - s) / 1e6;
    }
    bench_emit("flip_mps", bench_median(v, 3));

    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        for (uint64_t k = 0; k < wr->churns; k++) {
            del(wr->churn[k].user_id);
            put(&wr->churn[k]);
        }
        v[r] = (double)wr->churns / (bench_now() - s) / 1e6;
    }
    bench_emit("churn_mps", bench_median(v, 3));
    return 0;
}
