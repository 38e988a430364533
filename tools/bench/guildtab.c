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
#include "drive.h"

#include <guildtab.h>

#include <stddef.h>

_Static_assert(sizeof(struct bench_member) == sizeof(gt_member) &&
                   offsetof(struct bench_member, flags) ==
                       offsetof(gt_member, flags),
               "the bench record is laid out like gt_member");

static char name[64];
static gt_table *T;
static gt_member *members; /* the n members, built before the clocks */

static void check(int r, const char *what) {
    if (r) {
        fprintf(stderr, "bench guildtab: %s: %s\n", what, gt_strerror(r));
        exit(1);
    }
}

/* The tables' directory: BENCH_SHM_DIR (bench.sh's BENCH_HUGE=1), else
 * /dev/shm. */
static const char *dir(void) {
    const char *d = getenv("BENCH_SHM_DIR");
    return d && *d ? d : NULL;
}

static void cleanup(void) { gt_unlink(name, dir()); }

/* ---- the contract's operations (drive.h): T is the table, no ctx ---- */

/* The records are `members`, built by main before the clock with this n
 * and a. */
static double load(void *ctx, uint64_t n, uint64_t a) {
    (void)ctx;
    (void)a;
    /* room for a second copy of the guild: the batch load below */
    gt_options o = {.dir = dir(), .max_members = 2 * n + n / 4 + 1024,
                    .max_guilds = 16, .flags = GT_CREATE | GT_EXCL};
    check(gt_open(name, &o, &T), "open");
    atexit(cleanup);
    double t0 = bench_now();
    check(gt_guild_reserve(T, 1, n), "reserve");
    for (uint64_t i = 0; i < n; i++)
        check(gt_insert(T, 1, &members[i], NULL), "insert");
    return (double)n / (bench_now() - t0) / 1e6;
}

static double bytes_member(void *ctx) {
    (void)ctx;
    gt_table_stat ts;
    check(gt_info(T, &ts), "info");
    return ts.bytes_per_member;
}

static uint64_t lookups(void *ctx, const void *keys, uint64_t from,
                        uint64_t count, uint64_t *sum) {
    (void)ctx;
    gt_table *t = T;
    const uint64_t *key = (const uint64_t *)keys + from;
    uint64_t s = 0, h = 0;
    for (uint64_t k = 0; k < count; k++) {
        gt_member m;
        if (gt_lookup(t, 1, key[k], &m, NULL) == 0) {
            s += (uint64_t)m.joined_at;
            h++;
        }
    }
    *sum = s;
    return h;
}

static uint64_t follow(void *ctx, uint64_t count) {
    (void)ctx;
    gt_table *t = T;
    uint64_t uid = bench_uid(0), sum = 0;
    for (uint64_t k = 0; k < count; k++) {
        gt_member m;
        check(gt_lookup(t, 1, uid, &m, NULL), "dependent lookup");
        sum += (uint64_t)m.joined_at % 1000;
        uid = m.session_id;
    }
    return sum;
}

/* Each reader process opens its own handle, as a worker would. */
static void reader_open(void *ctx, int which) {
    (void)ctx;
    (void)which;
    check(gt_open(name, &(gt_options){.dir = dir()}, &T), "open in a reader");
}

static int take_fanout(void *ctx, uint32_t w, const gt_recipient *b, size_t n) {
    struct bench_recipient *o = bench_fan_room(ctx, w, n);
    for (size_t i = 0; i < n; i++)
        o[i] = (struct bench_recipient){b[i].user_id, b[i].session_id};
    return 0;
}

static int take_role(void *ctx, const gt_member *m, const void *payload) {
    (void)payload;
    bench_role_add(ctx, m->user_id);
    return 0;
}

static uint64_t scan_fanout(void *ctx, struct bench_out *o) {
    (void)ctx;
    gt_filter f = {.flags_set = GT_ACTIVE};
    check(gt_fanout(T, 1, &f, 0, 1, take_fanout, o), "fanout");
    uint64_t total = 0;
    for (unsigned w = 0; w < BENCH_WORKERS; w++)
        total += o->fill[w];
    return total;
}

static uint64_t scan_role(void *ctx, struct bench_out *o) {
    (void)ctx;
    gt_filter f = {.roles_any = {1ull << BENCH_ROLE}};
    check(gt_select(T, 1, &f, 0, 1, take_role, o), "select");
    return o->nrole;
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

static void flips(void *ctx, const struct bench_writes *w) {
    (void)ctx;
    for (uint64_t k = 0; k < w->flips; k++) {
        uint32_t f = w->flip_flags[k];
        check(gt_update_flags(T, 1, w->flip_uid[k], f & GT_ONLINE,
                              ~f & GT_ONLINE, NULL),
              "update_flags");
    }
}

static void churn(void *ctx, const struct bench_writes *w) {
    (void)ctx;
    for (uint64_t k = 0; k < w->churns; k++) {
        const gt_member *m = (const gt_member *)&w->churn[k];
        check(gt_delete(T, 1, m->user_id), "delete");
        check(gt_insert(T, 1, m, NULL), "insert");
    }
}

static uint64_t guild_members(void *ctx) {
    (void)ctx;
    gt_guild_stat gs;
    check(gt_guild_info(T, 1, &gs), "guild_info");
    return gs.members;
}

static const struct bench_ops guildtab_ops = {
    .load = load, .bytes_member = bytes_member, .lookups = lookups,
    .follow = follow, .reader_open = reader_open, .fanout = scan_fanout,
    .role = scan_role, .count = scan_count, .flips = flips, .churn = churn,
    .members = guild_members};

/* ---- the batch calls, on the same work ---- */

enum { BATCH = 64 }; /* members per gt_lookup_many, gt_update_flags_many */

/* load_many_mps: the load through gt_insert_many, 256 at a time, into guild
 * 2, which is then deleted. */
static void load_many(const struct bench_run *r) {
    uint64_t n = r->n;
    double t0 = bench_now();
    check(gt_guild_reserve(T, 2, n), "reserve");
    for (uint64_t i = 0; i < n; i += 256) {
        int got = gt_insert_many(T, 2, members + i, NULL,
                                 n - i < 256 ? n - i : 256, NULL);
        if (got < 0)
            check(got, "insert_many");
    }
    bench_emit("load_many_mps", (double)n / (bench_now() - t0) / 1e6);
    gt_guild_stat gs;
    check(gt_guild_info(T, 2, &gs), "guild_info");
    if (gs.members != n || gs.active != bench_expect_active(n))
        bench_die("gt_insert_many loaded a different guild");
    check(gt_guild_delete(T, 2), "guild_delete");
}

/* lookup_many_ns: the run's existing keys through gt_lookup_many. */
static void lookup_many(const struct bench_run *r) {
    uint64_t calls = r->ops / BATCH;
    double v[BENCH_ROUNDS];
    for (int k = 0; k < BENCH_ROUNDS; k++) {
        gt_member out[BATCH];
        uint8_t found[BATCH];
        uint64_t hits = 0;
        double s = bench_now();
        for (uint64_t c = 0; c < calls; c++) {
            int got = gt_lookup_many(T, 1, r->hit_ids + c * BATCH, BATCH, out,
                                     NULL, found);
            if (got < 0)
                check(got, "lookup_many");
            hits += (uint64_t)got;
        }
        v[k] = (bench_now() - s) / (double)(calls * BATCH) * 1e9;
        if (hits != calls * BATCH)
            bench_die("gt_lookup_many missed existing members");
    }
    bench_emit("lookup_many_ns", bench_median(v, BENCH_ROUNDS));
}

/* flip_many_mps: the run's flips through gt_update_flags_many. */
static void flip_many(const struct bench_run *r) {
    const struct bench_writes *w = r->w;
    uint64_t calls = w->flips / BATCH;
    gt_flag_update *fu = bench_alloc(w->flips * sizeof *fu);
    for (uint64_t k = 0; k < w->flips; k++)
        fu[k] = (gt_flag_update){.user_id = w->flip_uid[k],
                                 .set = w->flip_flags[k] & GT_ONLINE,
                                 .clear = ~w->flip_flags[k] & GT_ONLINE};
    double v[BENCH_ROUNDS];
    for (int k = 0; k < BENCH_ROUNDS; k++) {
        double s = bench_now();
        for (uint64_t c = 0; c < calls; c++) {
            int got = gt_update_flags_many(T, 1, fu + c * BATCH, BATCH, NULL);
            if (got < 0)
                check(got, "update_flags_many");
        }
        v[k] = (double)(calls * BATCH) / (bench_now() - s) / 1e6;
    }
    bench_emit("flip_many_mps", bench_median(v, BENCH_ROUNDS));
    free(fu);
}

int main(int argc, char **argv) {
    struct bench_run r;
    bench_start(&r, argc, argv, "guildtab", &guildtab_ops, NULL);
    snprintf(name, sizeof name, "bench-%d", (int)getpid());
    members = bench_alloc(r.n * sizeof *members);
    for (uint64_t i = 0; i < r.n; i++)
        bench_member_make(i, r.n, r.a, (struct bench_member *)&members[i]);

    bench_load(&r);
    load_many(&r);
    bench_lookups(&r);
    lookup_many(&r);
    bench_scans(&r);
    bench_writes(&r);
    flip_many(&r);
    bench_finish(&r);
    gt_close(T);
    free(members);
    return 0;
}
