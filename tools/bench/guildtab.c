/*
 * guildtab.c - the workload through guildtab's public API: one table in
 * /dev/shm, one guild presized with gt_guild_reserve (an API users have),
 * payload_size 0. Fanout is gt_fanout with the ACTIVE filter (it reads the
 * guild's packed fanout set), the role select and the count are gt_select
 * and gt_select_count (full scans: there is no role index; see scan_count).
 * Besides the contract's metrics it measures the batch calls on the same
 * work: load_many_mps (gt_insert_many), lookup_many_ns (gt_lookup_many),
 * flip_many_mps (gt_update_flags_many). Members and keys are built before
 * the clock starts; the timed loads include gt_guild_reserve.
 *
 * Usage: guildtab N   (prints JSON lines; see README.md)
 */
#include "readers.h"

#include <guildtab.h>

#include <stddef.h>

_Static_assert(sizeof(struct bench_member) == sizeof(gt_member) &&
                   offsetof(struct bench_member, flags) ==
                       offsetof(gt_member, flags),
               "the bench record is laid out like gt_member");

static char name[64];
static gt_table *T;
static uint64_t *lookup_keys, *miss_keys;
static uint64_t L;

static void check(int r, const char *what) {
    if (r) {
        fprintf(stderr, "bench guildtab: %s: %s\n", what, gt_strerror(r));
        exit(1);
    }
}

static uint64_t lookups(gt_table *t, const uint64_t *keys, uint64_t count,
                        uint64_t *hits) {
    uint64_t sum = 0, h = 0;
    for (uint64_t k = 0; k < count; k++) {
        gt_member m;
        if (gt_lookup(t, 1, keys[k], &m, NULL) == 0) {
            sum += m.session_id;
            h++;
        }
    }
    *hits = h;
    return sum;
}

/* Each reader process opens its own handle, as a worker would. */
static void proc_open(void *ctx, int which) {
    (void)which;
    check(gt_open(name, NULL, (gt_table **)ctx), "open in a reader");
}

static uint64_t proc_lookups(void *ctx, int which) {
    uint64_t hits;
    volatile uint64_t sink = lookups(*(gt_table **)ctx,
                                     lookup_keys + (which ? L / 2 : 0), L / 2,
                                     &hits);
    (void)sink;
    return L / 2;
}

struct route {
    uint64_t *rec[BENCH_WORKERS]; /* (user_id, session_id) per worker */
    uint64_t len[BENCH_WORKERS];
    uint64_t *ids, nids;
};

static int take_fanout(void *ctx, uint32_t w, const gt_recipient *b, size_t n) {
    struct route *r = ctx;
    uint64_t *o = r->rec[w % BENCH_WORKERS] + 2 * r->len[w % BENCH_WORKERS];
    for (size_t i = 0; i < n; i++) {
        o[2 * i] = b[i].user_id;
        o[2 * i + 1] = b[i].session_id;
    }
    r->len[w % BENCH_WORKERS] += n;
    return 0;
}

static int take_role(void *ctx, const gt_member *m, const void *payload) {
    (void)payload;
    struct route *r = ctx;
    r->ids[r->nids++] = m->user_id;
    return 0;
}

static uint64_t scan_fanout(void *ctx) {
    struct route *r = ctx;
    gt_filter f = {.flags_set = GT_ACTIVE};
    memset(r->len, 0, sizeof r->len);
    check(gt_fanout(T, 1, &f, 0, 1, take_fanout, r), "fanout");
    uint64_t total = 0;
    for (unsigned w = 0; w < BENCH_WORKERS; w++)
        total += r->len[w];
    return total;
}

static uint64_t scan_role(void *ctx) {
    struct route *r = ctx;
    gt_filter f = {.roles_any = {1ull << BENCH_ROLE}};
    r->nids = 0;
    check(gt_select(T, 1, &f, 0, 1, take_role, r), "select");
    return r->nids;
}

/* The contract counts by looking at every member. A plain ONLINE filter
 * would be answered from the guild's exact counters without a walk (tens of
 * ns); a role term (every member has a role) makes it a scan. */
static uint64_t scan_count(void *ctx) {
    (void)ctx;
    gt_filter f = {.flags_set = GT_ONLINE, .roles_any = {0xff}};
    uint64_t c;
    check(gt_select_count(T, 1, &f, 0, 1, &c), "select_count");
    return c;
}

static void cleanup(void) { gt_unlink(name, NULL); }

int main(int argc, char **argv) {
    uint64_t n = bench_args(argc, argv, "guildtab"), a = bench_lcg_a(n);
    snprintf(name, sizeof name, "bench-%d", (int)getpid());
    /* room for a second copy of the guild: the batch load below */
    gt_options o = {.max_members = 2 * n + n / 4 + 1024, .max_guilds = 16,
                    .flags = GT_CREATE | GT_EXCL};
    gt_member *members = malloc(n * sizeof *members);
    if (!members)
        bench_die("out of memory");
    for (uint64_t i = 0; i < n; i++) /* built before the clock starts */
        bench_member_make(i, n, a, (struct bench_member *)&members[i]);
    double rss0 = bench_rss();
    check(gt_open(name, &o, &T), "open");
    atexit(cleanup);

    double t0 = bench_now();
    check(gt_guild_reserve(T, 1, n), "reserve");
    for (uint64_t i = 0; i < n; i++)
        check(gt_insert(T, 1, &members[i], NULL), "insert");
    bench_emit("load_mps", (double)n / (bench_now() - t0) / 1e6);
    gt_table_stat ts;
    check(gt_info(T, &ts), "info");
    bench_emit("bytes_member", ts.bytes_per_member);
    bench_emit("rss_member", (bench_rss() - rss0) / (double)n);

    /* the same load through gt_insert_many, 256 at a time, into guild 2,
     * which is then deleted */
    t0 = bench_now();
    check(gt_guild_reserve(T, 2, n), "reserve");
    for (uint64_t i = 0; i < n; i += 256) {
        int r = gt_insert_many(T, 2, members + i, NULL, n - i < 256 ? n - i : 256,
                               NULL);
        if (r < 0)
            check(r, "insert_many");
    }
    bench_emit("load_many_mps", (double)n / (bench_now() - t0) / 1e6);
    gt_guild_stat gs;
    check(gt_guild_info(T, 2, &gs), "guild_info");
    if (gs.members != n || gs.active != bench_expect_active(n))
        bench_die("gt_insert_many loaded a different guild");
    check(gt_guild_delete(T, 2), "guild_delete");

    L = bench_ops(2000000);
    lookup_keys = bench_keys(L, n, false);
    miss_keys = bench_keys(L, n, true);
    bench_emit("ops_lookup", (double)L);
    double v[3];
    uint64_t hits = 0;
    volatile uint64_t sink;
    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        sink = lookups(T, lookup_keys, L, &hits);
        v[r] = (bench_now() - s) / (double)L * 1e9;
    }
    bench_emit("lookup_ns", bench_median(v, 3));
    bench_emit("check_hits", (double)hits);

    /* the same keys through gt_lookup_many, BATCH at a time */
    enum { BATCH = 64 };
    for (int r = 0; r < 3; r++) {
        gt_member out[BATCH];
        uint8_t found[BATCH];
        hits = 0;
        double s = bench_now();
        for (uint64_t k = 0; k + BATCH <= L; k += BATCH) {
            int got = gt_lookup_many(T, 1, lookup_keys + k, BATCH, out, NULL,
                                     found);
            if (got < 0)
                check(got, "lookup_many");
            hits += (uint64_t)got;
        }
        v[r] = (bench_now() - s) / (double)(L / BATCH * BATCH) * 1e9;
    }
    bench_emit("lookup_many_ns", bench_median(v, 3));
    if (hits != L / BATCH * BATCH)
        bench_die("gt_lookup_many missed existing members");

    uint64_t act = 0;
    for (int r = 0; r < 3; r++) {
        uint64_t uid = bench_uid(0);
        double s = bench_now();
        for (uint64_t k = 0; k < L; k++) {
            gt_member m;
            check(gt_lookup(T, 1, uid, &m, NULL), "dependent lookup");
            if (k < 10000)
                act += (uint64_t)m.joined_at % 1000;
            uid = m.session_id;
        }
        v[r] = (bench_now() - s) / (double)L * 1e9;
    }
    bench_emit("lookup_dep_ns", bench_median(v, 3));
    bench_emit("check_dep", (double)(act / 3));

    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        sink = lookups(T, miss_keys, L, &hits);
        v[r] = (bench_now() - s) / (double)L * 1e9;
    }
    (void)sink;
    bench_emit("miss_ns", bench_median(v, 3));
    bench_emit("check_misses", (double)hits);

    gt_table *child;
    bench_readers(proc_open, proc_lookups, &child);

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
            uint32_t f = wr->flip_flags[k];
            check(gt_update_flags(T, 1, wr->flip_uid[k], f & GT_ONLINE,
                                  ~f & GT_ONLINE, NULL),
                  "update_flags");
        }
        v[r] = (double)wr->flips / (bench_now() - s) / 1e6;
    }
    bench_emit("flip_mps", bench_median(v, 3));

    /* the same flips through gt_update_flags_many, BATCH at a time */
    gt_flag_update *fu = malloc(wr->flips * sizeof *fu);
    if (!fu)
        bench_die("out of memory");
    for (uint64_t k = 0; k < wr->flips; k++)
        fu[k] = (gt_flag_update){.user_id = wr->flip_uid[k],
                                 .set = wr->flip_flags[k] & GT_ONLINE,
                                 .clear = ~wr->flip_flags[k] & GT_ONLINE};
    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        for (uint64_t k = 0; k + BATCH <= wr->flips; k += BATCH) {
            int got = gt_update_flags_many(T, 1, fu + k, BATCH, NULL);
            if (got < 0)
                check(got, "update_flags_many");
        }
        v[r] = (double)(wr->flips / BATCH * BATCH) / (bench_now() - s) / 1e6;
    }
    bench_emit("flip_many_mps", bench_median(v, 3));

    for (int r = 0; r < 3; r++) {
        double s = bench_now();
        for (uint64_t k = 0; k < wr->churns; k++) {
            const gt_member *m = (const gt_member *)&wr->churn[k];
            check(gt_delete(T, 1, m->user_id), "delete");
            check(gt_insert(T, 1, m, NULL), "insert");
        }
        v[r] = (double)wr->churns / (bench_now() - s) / 1e6;
    }
    bench_emit("churn_mps", bench_median(v, 3));
    gt_close(T);
    return 0;
}
