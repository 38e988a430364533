/*
 * drive.h - the run every C driver of a member table makes (plain,
 * guildtab, ck_ht, LMDB): the contract's metrics (README.md) in its order,
 * each timed, repeated and checked the same way whatever the peer. A driver
 * gives its operations in a struct bench_ops and calls the phases in turn:
 *
 *   bench_start    arguments, BENCH_OPS, the key arrays (before any clock)
 *   bench_load     load_mps, bytes_member, rss_member
 *   bench_lookups  lookup_ns, lookup_dep_ns, miss_ns, then the forked
 *                  readers: lookup_1p_mops, lookup_2p_mops, lookup_scaling
 *   bench_scans    fanout_ms, fanout_cold_ms, role_ms, count_ms
 *   bench_writes   flip_mps, churn_mps
 *   bench_finish   the check_* values and ops_lookup
 *
 * bench_drive() makes them all. A driver that calls them one by one may
 * measure, between two, what only it has (guildtab's batch calls) on the
 * run's keys and writes. The run checks every result it can against the
 * workload (bench.h): each round of lookups finds every existing key and
 * copies the right records (the sum of their joined_at), each reader its
 * half, no miss key is found, a dependent lookup never misses, and the
 * churn leaves n members. What it cannot know (the scans' results,
 * check_dep) it emits for the report to compare across peers.
 */
#ifndef GT_BENCH_DRIVE_H
#define GT_BENCH_DRIVE_H

#include "readers.h"

#define BENCH_ROUNDS 3           /* timed rounds of lookups and writes */
#define BENCH_LOOKUPS 2000000u   /* L, lookups per round, unless BENCH_OPS */
#define BENCH_DEP_CHECK 10000u   /* check_dep: over this many dependent lookups */
#define BENCH_COLD_RUNS 5        /* fanout_cold_ms: fanouts, each cold */

/* Where the scans deliver: the fanout's recipients grouped by worker, the
 * role select's user ids. The run allocates it for bench_scans. */
struct bench_recipient {
    uint64_t user_id, session_id;
};

struct bench_out {
    struct bench_recipient *fan; /* BENCH_WORKERS lists of fan_cap each */
    uint64_t fan_cap, fill[BENCH_WORKERS];
    uint64_t *role, nrole, role_cap;
};

/* Room for k more recipients of worker w (dies past the worker's share:
 * the members of one worker are at most ceil(n / BENCH_WORKERS)). */
static inline struct bench_recipient *bench_fan_room(struct bench_out *o,
                                                     uint32_t w, uint64_t k) {
    if (w >= BENCH_WORKERS || o->fill[w] + k > o->fan_cap)
        bench_die("fanout: a worker out of range, or too many recipients");
    struct bench_recipient *r = o->fan + w * o->fan_cap + o->fill[w];
    o->fill[w] += k;
    return r;
}

static inline void bench_role_add(struct bench_out *o, uint64_t user_id) {
    if (o->nrole == o->role_cap)
        bench_die("role: more members than loaded");
    o->role[o->nrole++] = user_id;
}

/* What a driver does; ctx is its own state. Each operation dies
 * (bench_die) on an engine error. */
struct bench_ops {
    /* Make the table and insert the n members in member order
     * (bench_member_make with n and a; the driver's header says whether the
     * records are built inside the clock): M members/s. */
    double (*load)(void *ctx, uint64_t n, uint64_t a);
    /* The engine's own accounting of the bytes it holds, / n. */
    double (*bytes_member)(void *ctx);
    /* Optional: ids[0..count) in the driver's own key form (LMDB's 16-byte
     * keys), made before the clock; NULL: the 64-bit user ids as they are. */
    const void *(*keys)(void *ctx, const uint64_t *ids, uint64_t count);
    /* Look up keys from .. from + count - 1 one at a time, each copying the
     * whole record out: the hits, and in *sum the sum of their joined_at. */
    uint64_t (*lookups)(void *ctx, const void *keys, uint64_t from,
                        uint64_t count, uint64_t *sum);
    /* count dependent lookups from member 0, each next key the session_id
     * of the record just copied; dies on a miss. The sum of joined_at % 1000
     * of the members found. */
    uint64_t (*follow)(void *ctx, uint64_t count);
    /* Optional: in each forked reader, before its first pass (its own
     * handle or environment, as a worker would have). */
    bench_setup_fn reader_open;
    /* Optional: in the driver, once the readers have exited. */
    void (*readers_done)(void *ctx);
    /* The scans: the recipients of the fanout (ACTIVE, grouped by worker),
     * the members with role BENCH_ROLE, the number of ONLINE members, each
     * looking at every member it must. Each returns how many it found. */
    uint64_t (*fanout)(void *ctx, struct bench_out *out);
    uint64_t (*role)(void *ctx, struct bench_out *out);
    uint64_t (*count)(void *ctx);
    /* Perform w's flips, w's churn pairs: each visible to readers when it
     * returns. */
    void (*flips)(void *ctx, const struct bench_writes *w);
    void (*churn)(void *ctx, const struct bench_writes *w);
    /* The members the table holds. */
    uint64_t (*members)(void *ctx);
    /* Flips per round at most (0: L), for a peer whose writes take
     * microseconds; the churn pairs are half as many. */
    uint64_t max_writes;
};

/* The check_* values. */
struct bench_checks {
    uint64_t hits, misses, dep, active, role, count;
};

struct bench_run {
    const struct bench_ops *op;
    void *ctx;
    uint64_t n, a, ops;          /* members; bench_lcg_a(n); L */
    uint64_t *hit_ids, *miss_ids; /* L random existing and absent user ids */
    const void *hit, *miss;      /* the same in the driver's key form */
    uint64_t hit_sum;            /* joined_at summed over the hit keys */
    uint64_t half_sum[2];        /* the same over each reader's half */
    struct bench_writes *w;      /* made by bench_writes */
    struct bench_checks c;
};

static inline void bench_start(struct bench_run *r, int argc, char **argv,
                               const char *peer, const struct bench_ops *op,
                               void *ctx) {
    memset(r, 0, sizeof *r);
    r->op = op;
    r->ctx = ctx;
    r->n = bench_args(argc, argv, peer);
    r->a = bench_lcg_a(r->n);
    r->ops = bench_ops(BENCH_LOOKUPS);
    if (r->ops < 2)
        bench_die("BENCH_OPS must be at least 2");
    r->hit_ids = bench_keys(r->ops, r->n, false);
    r->miss_ids = bench_keys(r->ops, r->n, true);
    r->hit = op->keys ? op->keys(ctx, r->hit_ids, r->ops) : r->hit_ids;
    r->miss = op->keys ? op->keys(ctx, r->miss_ids, r->ops) : r->miss_ids;
    uint64_t half = r->ops / 2;
    for (uint64_t j = 0; j < r->ops; j++) {
        uint64_t joined_at = bench_pick(j, r->n); /* member i joined at i */
        r->hit_sum += joined_at;
        if (j < 2 * half)
            r->half_sum[j / half] += joined_at;
    }
}

static inline void bench_load(struct bench_run *r) {
    double rss0 = bench_rss();
    bench_emit("load_mps", r->op->load(r->ctx, r->n, r->a));
    double rss1 = bench_rss();
    bench_emit("bytes_member", r->op->bytes_member(r->ctx));
    bench_emit("rss_member", (rss1 - rss0) / (double)r->n);
}

/* One round of r's lookups of keys: ns per lookup. */
static inline double bench_lookup_round(struct bench_run *r, const void *keys,
                                        uint64_t *hits, uint64_t *sum) {
    double t0 = bench_now();
    *hits = r->op->lookups(r->ctx, keys, 0, r->ops, sum);
    return (bench_now() - t0) / (double)r->ops * 1e9;
}

/* Reader `which` looks up its half of the existing keys. */
static inline uint64_t bench_reader_lookups(void *ctx, int which) {
    struct bench_run *r = ctx;
    uint64_t half = r->ops / 2, sum;
    uint64_t hits = r->op->lookups(r->ctx, r->hit, (uint64_t)which * half,
                                   half, &sum);
    if (hits != half || sum != r->half_sum[which])
        bench_die("a reader process read wrong records");
    return half;
}

static inline void bench_reader_open(void *ctx, int which) {
    struct bench_run *r = ctx;
    r->op->reader_open(r->ctx, which);
}

static inline void bench_lookups(struct bench_run *r) {
    double t[BENCH_ROUNDS];
    uint64_t hits, sum;
    for (int k = 0; k < BENCH_ROUNDS; k++) {
        t[k] = bench_lookup_round(r, r->hit, &hits, &sum);
        if (hits != r->ops || sum != r->hit_sum)
            bench_die("lookups returned wrong records");
    }
    r->c.hits = hits;
    bench_emit("lookup_ns", bench_median(t, BENCH_ROUNDS));

    r->c.dep = r->op->follow(r->ctx, BENCH_DEP_CHECK);
    for (int k = 0; k < BENCH_ROUNDS; k++) {
        double t0 = bench_now();
        r->op->follow(r->ctx, r->ops);
        t[k] = (bench_now() - t0) / (double)r->ops * 1e9;
    }
    bench_emit("lookup_dep_ns", bench_median(t, BENCH_ROUNDS));

    for (int k = 0; k < BENCH_ROUNDS; k++) {
        t[k] = bench_lookup_round(r, r->miss, &hits, &sum);
        if (hits != 0)
            bench_die("a lookup found an absent key");
    }
    r->c.misses = hits;
    bench_emit("miss_ns", bench_median(t, BENCH_ROUNDS));

    bench_readers(r->op->reader_open ? bench_reader_open : NULL,
                  bench_reader_lookups, r);
    if (r->op->readers_done)
        r->op->readers_done(r->ctx);
}

enum bench_scan { BENCH_FANOUT, BENCH_ROLE_SELECT, BENCH_COUNT };

static inline uint64_t bench_scan_once(struct bench_run *r, enum bench_scan s,
                                       struct bench_out *o) {
    if (s == BENCH_FANOUT) {
        memset(o->fill, 0, sizeof o->fill);
        return r->op->fanout(r->ctx, o);
    }
    if (s == BENCH_ROLE_SELECT) {
        o->nrole = 0;
        return r->op->role(r->ctx, o);
    }
    return r->op->count(r->ctx);
}

/* One run of scan s, timed: its seconds. What it returns must be *result
 * when known (an earlier run's), and becomes *result. */
static inline double bench_scan_timed(struct bench_run *r, enum bench_scan s,
                                      struct bench_out *o, uint64_t *result,
                                      bool known) {
    double t0 = bench_now();
    uint64_t got = bench_scan_once(r, s, o);
    double t = bench_now() - t0;
    if (known && got != *result)
        bench_die("a scan's result changed between runs");
    *result = got;
    return t;
}

/* Run scan s until it has run 3 times and for 0.3 s in all (1000 times at
 * most: a scan may take microseconds); return the median in ms. What it
 * returns goes to *result, and must be the same every run. */
static inline double bench_scan_ms(struct bench_run *r, enum bench_scan s,
                                   struct bench_out *o, uint64_t *result) {
    enum { MIN_RUNS = 3, MAX_RUNS = 1000 };
    double t[MAX_RUNS], spent = 0;
    int runs = 0;
    while (runs < MIN_RUNS || (spent < 0.3 && runs < MAX_RUNS)) {
        t[runs] = bench_scan_timed(r, s, o, result, runs > 0);
        spent += t[runs++];
    }
    return bench_median(t, runs) * 1e3;
}

/* Bytes read to push a scan's data out of every cache: BENCH_EVICT_MB
 * MiB, else twice the last-level cache the C library reports (which may
 * overstate it: on the AMD VM it reports 320 MiB of L3, lscpu 32), and at
 * least 64 MiB. */
static inline size_t bench_evict_bytes(void) {
    const char *s = getenv("BENCH_EVICT_MB");
    if (s && *s) {
        size_t mb = (size_t)strtoull(s, NULL, 10);
        if (!mb)
            bench_die("BENCH_EVICT_MB must be a positive number of MiB");
        return mb << 20;
    }
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    size_t min = (size_t)64 << 20;
    return l3 > 0 && 2 * (size_t)l3 > min ? 2 * (size_t)l3 : min;
}

/* fanout_cold_ms: the fanout from caches that hold none of its data (as
 * when a sender turns to a guild after others): before each of
 * BENCH_COLD_RUNS fanouts a buffer larger than the caches is read, a line
 * at a time. The median in ms. fanout_ms, by contrast, repeats the fanout
 * back to back, so at 1M on a machine with a large last-level cache it
 * finds its data there and at 10M it does not. */
static inline double bench_scan_cold_ms(struct bench_run *r,
                                        struct bench_out *o,
                                        uint64_t *result) {
    size_t bytes = bench_evict_bytes();
    uint8_t *buf = bench_alloc(bytes);
    memset(buf, 1, bytes); /* real pages, not the shared zero page */
    double t[BENCH_COLD_RUNS];
    for (int k = 0; k < BENCH_COLD_RUNS; k++) {
        for (size_t i = 0; i < bytes; i += 64)
            (void)((volatile uint8_t *)buf)[i]; /* a load the compiler keeps */
        t[k] = bench_scan_timed(r, BENCH_FANOUT, o, result, true);
    }
    free(buf);
    return bench_median(t, BENCH_COLD_RUNS) * 1e3;
}

static inline void bench_scans(struct bench_run *r) {
    struct bench_out o = {.fan_cap = (r->n + BENCH_WORKERS - 1) / BENCH_WORKERS,
                          .role_cap = r->n};
    o.fan = bench_alloc(BENCH_WORKERS * o.fan_cap * sizeof *o.fan);
    o.role = bench_alloc(r->n * sizeof *o.role);
    bench_emit("fanout_ms", bench_scan_ms(r, BENCH_FANOUT, &o, &r->c.active));
    bench_emit("fanout_cold_ms", bench_scan_cold_ms(r, &o, &r->c.active));
    bench_emit("role_ms", bench_scan_ms(r, BENCH_ROLE_SELECT, &o, &r->c.role));
    bench_emit("count_ms", bench_scan_ms(r, BENCH_COUNT, &o, &r->c.count));
    free(o.fan);
    free(o.role);
}

static inline void bench_writes(struct bench_run *r) {
    uint64_t max = r->op->max_writes;
    r->w = bench_writes_make(max && max < r->ops ? max : r->ops, r->n);
    double t[BENCH_ROUNDS];
    for (int k = 0; k < BENCH_ROUNDS; k++) {
        double t0 = bench_now();
        r->op->flips(r->ctx, r->w);
        t[k] = (double)r->w->flips / (bench_now() - t0) / 1e6;
    }
    bench_emit("flip_mps", bench_median(t, BENCH_ROUNDS));
    for (int k = 0; k < BENCH_ROUNDS; k++) {
        double t0 = bench_now();
        r->op->churn(r->ctx, r->w);
        t[k] = (double)r->w->churns / (bench_now() - t0) / 1e6;
    }
    if (r->op->members(r->ctx) != r->n)
        bench_die("churn changed the member count");
    bench_emit("churn_mps", bench_median(t, BENCH_ROUNDS));
}

/* Emit the checks; free what the run holds (not the driver's table). */
static inline void bench_finish(struct bench_run *r) {
    const struct bench_checks *c = &r->c;
    bench_emit("check_hits", (double)c->hits);
    bench_emit("check_misses", (double)c->misses);
    bench_emit("check_dep", (double)c->dep);
    bench_emit("check_active", (double)c->active);
    bench_emit("check_role", (double)c->role);
    bench_emit("check_count", (double)c->count);
    bench_emit("ops_lookup", (double)r->ops);
    if (r->hit != r->hit_ids)
        free((void *)r->hit);
    if (r->miss != r->miss_ids)
        free((void *)r->miss);
    free(r->hit_ids);
    free(r->miss_ids);
    if (r->w)
        bench_writes_free(r->w);
}

/* The whole run, for a driver with nothing of its own to measure. */
static inline void bench_drive(int argc, char **argv, const char *peer,
                               const struct bench_ops *op, void *ctx) {
    struct bench_run r;
    bench_start(&r, argc, argv, peer, op, ctx);
    bench_load(&r);
    bench_lookups(&r);
    bench_scans(&r);
    bench_writes(&r);
    bench_finish(&r);
}

#endif
