/* test_batch.c - the batch calls, gt_lookup_many, gt_update_flags_many and
 * gt_insert_many:
 * each must give exactly what the same single calls give, and every error
 * it documents. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static const char *name;
static gt_table *t;

#define PAY 13u
#define USERS 3000u

static void setup(void) {
    name = tc_name("batch");
    t = tc_open(name, 100000, 16, PAY); /* odd payload: exercises the tail */
}
static void teardown(void) {
    tc_drop(t, name);
}
TestSuite(batch, .init = setup, .fini = teardown);

static void pay_fill(uint8_t *p, uint64_t u) {
    for (unsigned i = 0; i < PAY; i++)
        p[i] = (uint8_t)(u * 5 + i);
}

/* Guild g gets users 1..USERS, a third of them active, then every seventh
 * deleted (tombstones in the probes). */
static void fill(uint64_t g) {
    for (uint64_t u = 1; u <= USERS; u++) {
        gt_member m = tc_member(u, 1); /* the same in every guild */
        m.flags = GT_ONLINE | (u % 3 == 0 ? GT_ACTIVE : 0);
        uint8_t p[PAY];
        pay_fill(p, u);
        cr_assert_eq(gt_insert(t, g, &m, p), 0);
    }
    for (uint64_t u = 7; u <= USERS; u += 7)
        cr_assert_eq(gt_delete(t, g, u), 0);
}

Test(batch, lookup_many_equals_lookups) {
    fill(1);
    enum { N = 1000 }; /* many windows and a partial one */
    uint64_t ids[N];
    uint64_t rng = 42;
    for (int i = 0; i < N; i++) /* present, deleted, never there, repeats */
        ids[i] = 1 + tc_rand(&rng) % (USERS + 400);
    ids[5] = ids[4];
    gt_member *out = calloc(N, sizeof *out);
    uint8_t *pay = calloc(N, PAY), found[N];
    int got = gt_lookup_many(t, 1, ids, N, out, pay, found);
    int want_hits = 0;
    for (int i = 0; i < N; i++) {
        gt_member m;
        uint8_t p[PAY];
        int r = gt_lookup(t, 1, ids[i], &m, p);
        cr_assert(r == 0 || r == GT_ENOENT);
        cr_assert_eq(found[i], r == 0, "id %llu", (unsigned long long)ids[i]);
        if (r == 0) {
            want_hits++;
            cr_assert_arr_eq(&out[i], &m, sizeof m);
            cr_assert_arr_eq(pay + (size_t)i * PAY, p, PAY);
        }
    }
    cr_assert_eq(got, want_hits);
    cr_assert(want_hits > N / 2 && want_hits < N, "a mix of hits and misses");
    /* presence only */
    uint8_t found2[N];
    cr_assert_eq(gt_lookup_many(t, 1, ids, N, NULL, NULL, found2), want_hits);
    cr_assert_arr_eq(found, found2, N);
    free(out);
    free(pay);
}

Test(batch, lookup_many_leaves_absent_records_alone) {
    fill(1);
    uint64_t ids[2] = {1, USERS + 99};
    gt_member out[2];
    memset(out, 0xAB, sizeof out);
    uint8_t found[2];
    cr_assert_eq(gt_lookup_many(t, 1, ids, 2, out, NULL, found), 1);
    cr_assert_eq(found[0], 1);
    cr_assert_eq(found[1], 0);
    uint8_t untouched[sizeof(gt_member)];
    memset(untouched, 0xAB, sizeof untouched);
    cr_assert_arr_eq(&out[1], untouched, sizeof untouched);
}

Test(batch, lookup_many_errors) {
    fill(1);
    uint64_t ids[3] = {1, 2, 3};
    uint8_t found[3] = {9, 9, 9};
    gt_member out[3];
    cr_assert_eq(gt_lookup_many(NULL, 1, ids, 3, out, NULL, found), GT_EINVAL);
    cr_assert_eq(gt_lookup_many(t, 1, NULL, 3, out, NULL, found), GT_EINVAL);
    cr_assert_eq(gt_lookup_many(t, 1, ids, 3, out, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_lookup_many(t, 1, ids, (size_t)INT_MAX + 1, out, NULL,
                                found), GT_EINVAL);
    cr_assert_eq(gt_lookup_many(t, 1, NULL, 0, NULL, NULL, NULL), 0);
    /* no such guild: nothing found, not an error */
    cr_assert_eq(gt_lookup_many(t, 77, ids, 3, out, NULL, found), 0);
    cr_assert(!found[0] && !found[1] && !found[2]);
}

struct fan {
    uint64_t sum, n;
};
static int fan_take(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    struct fan *f = ctx;
    for (size_t i = 0; i < n; i++)
        f->sum += tc_mix(r[i].user_id ^ w), f->n++;
    return 0;
}

/* Guilds 1 and 2 hold the same members; the same updates go to guild 1 one
 * call each and to guild 2 in one batch: they must end up the same. */
Test(batch, update_flags_many_equals_updates) {
    fill(1);
    fill(2);
    enum { N = 2000 }; /* several lock holds, windows and parts */
    gt_flag_update *u = calloc(N, sizeof *u);
    uint64_t rng = 7;
    int want_changed = 0;
    uint64_t found = 0;
    for (int i = 0; i < N; i++) {
        u[i].user_id = 1 + tc_rand(&rng) % (USERS + 200);
        uint32_t bits = GT_ONLINE | (i % 4 == 0 ? GT_ACTIVE : 0) | 0x00010000u;
        u[i].set = (uint32_t)tc_rand(&rng) & bits;
        u[i].clear = (uint32_t)tc_rand(&rng) & bits & ~u[i].set;
        uint32_t old;
        int r = gt_update_flags(t, 1, u[i].user_id, u[i].set, u[i].clear, &old);
        cr_assert(r == 0 || r == GT_ENOENT);
        found += r == 0;
        want_changed += r == 0 && ((old & ~u[i].clear) | u[i].set) != old;
    }
    size_t done = 0;
    cr_assert_eq(gt_update_flags_many(t, 2, u, N, &done), want_changed);
    cr_assert_eq(done, N);
    cr_assert(want_changed > N / 4, "the updates change something");
    for (uint64_t id = 1; id <= USERS + 200; id++) {
        gt_member a, b;
        int ra = gt_lookup(t, 1, id, &a, NULL), rb = gt_lookup(t, 2, id, &b, NULL);
        cr_assert_eq(ra, rb);
        if (ra == 0)
            cr_assert_eq(a.flags, b.flags, "user %llu", (unsigned long long)id);
    }
    gt_guild_stat s1, s2;
    cr_assert_eq(gt_guild_info(t, 1, &s1), 0);
    cr_assert_eq(gt_guild_info(t, 2, &s2), 0);
    cr_assert_eq(s1.online, s2.online);
    cr_assert_eq(s1.active, s2.active);
    struct fan f1 = {0}, f2 = {0};
    gt_filter act = {.flags_set = GT_ACTIVE};
    cr_assert_eq(gt_fanout(t, 1, &act, 0, 1, fan_take, &f1), 0);
    cr_assert_eq(gt_fanout(t, 2, &act, 0, 1, fan_take, &f2), 0);
    cr_assert_eq(f1.n, s1.active);
    cr_assert_eq(f2.n, f1.n);
    cr_assert_eq(f2.sum, f1.sum, "the same fanout sets");
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0);
    cr_assert_eq(rep.violations, 0);
    gt_stats st;
    cr_assert_eq(gt_stats_read(t, &st), 0);
    cr_assert_eq(st.updates, 2 * found, "a batch counts what the calls count");
    free(u);
}

/* A batch that takes its guild's fanout set below an eighth full shrinks
 * the guild midway (storage and set rebuilt for its members, in the same
 * hold of the lock). The few updates right after that were fetched ahead
 * in the old storage: the slots chosen for them there, most of them past
 * the new storage's end, must not be taken; every update after the shrink
 * must find its member in the new storage. */
Test(batch, update_flags_many_goes_on_after_a_shrink) {
    enum { N = 1100 };
    cr_assert_eq(gt_guild_reserve(t, 1, 4000), 0);
    for (uint64_t u = 1; u <= N; u++) {
        gt_member m = tc_member(u, 1);
        m.flags = GT_ONLINE | GT_ACTIVE;
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    gt_guild_stat before, after;
    cr_assert_eq(gt_guild_info(t, 1, &before), 0);
    gt_flag_update u[N];
    for (int i = 0; i < N; i++)
        u[i] = (gt_flag_update){.user_id = (uint64_t)i + 1,
                                .clear = GT_ACTIVE};
    size_t done = 0;
    cr_assert_eq(gt_update_flags_many(t, 1, u, N, &done), N);
    cr_assert_eq(done, N);
    cr_assert_eq(gt_guild_info(t, 1, &after), 0);
    cr_assert_lt(after.capacity * 2, before.capacity, "the guild shrank");
    cr_assert_eq(after.members, N);
    cr_assert_eq(after.active, 0);
    for (uint64_t id = 1; id <= N; id++) {
        gt_member m;
        cr_assert_eq(gt_lookup(t, 1, id, &m, NULL), 0);
        cr_assert_eq(m.flags, GT_ONLINE, "user %llu", (unsigned long long)id);
    }
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0);
    cr_assert_eq(rep.violations, 0);
}

Test(batch, update_flags_many_errors) {
    fill(1);
    gt_flag_update u[2] = {{.user_id = 1, .set = GT_ACTIVE},
                           {.user_id = 2, .set = 0x4u}}; /* library bit */
    size_t done = 99;
    cr_assert_eq(gt_update_flags_many(t, 1, u, 2, &done), GT_EINVAL);
    cr_assert_eq(done, 0);
    gt_member m;
    cr_assert_eq(gt_lookup(t, 1, 1, &m, NULL), 0);
    cr_assert_eq(m.flags & GT_ACTIVE, 0, "nothing applied");
    u[1].set = 0;
    u[1].clear = 0x8u;
    cr_assert_eq(gt_update_flags_many(t, 1, u, 2, NULL), GT_EINVAL);
    cr_assert_eq(gt_update_flags_many(NULL, 1, u, 1, &done), GT_EINVAL);
    cr_assert_eq(gt_update_flags_many(t, 1, NULL, 1, &done), GT_EINVAL);
    cr_assert_eq(gt_update_flags_many(t, 1, u, (size_t)INT_MAX + 1, &done),
                 GT_EINVAL);
    cr_assert_eq(gt_update_flags_many(t, 1, NULL, 0, &done), 0);
    cr_assert_eq(done, 0);
    cr_assert_eq(gt_update_flags_many(t, 77, u, 1, &done), GT_ENOENT);
    cr_assert_eq(done, 0);
    gt_table *ro;
    gt_options o = {.flags = GT_RDONLY};
    cr_assert_eq(gt_open(name, &o, &ro), 0);
    cr_assert_eq(gt_update_flags_many(ro, 1, u, 1, &done), GT_EROFS);
    gt_close(ro);
    /* absent members are skipped, not errors */
    gt_flag_update v[2] = {{.user_id = USERS + 50, .set = GT_ACTIVE},
                           {.user_id = 1, .set = GT_ACTIVE}};
    cr_assert_eq(gt_update_flags_many(t, 1, v, 2, &done), 1);
    cr_assert_eq(done, 2);
    cr_assert_eq(gt_lookup(t, 1, 1, &m, NULL), 0);
    cr_assert_neq(m.flags & GT_ACTIVE, 0);
}

/* Guilds 1 and 2 start alike; the same inserts go to guild 1 one call each
 * and to guild 2 in one batch: new members, replacements (into and out of
 * the fanout set), repeats within the batch, payloads. */
Test(batch, insert_many_equals_inserts) {
    for (uint64_t u = 1; u <= 500; u++) { /* some exist already */
        gt_member m = tc_member(u, 1);
        m.flags = GT_ONLINE | (u % 2 ? GT_ACTIVE : 0);
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
        cr_assert_eq(gt_insert(t, 2, &m, NULL), 0);
    }
    enum { N = 2500 };
    gt_member *ms = calloc(N, sizeof *ms);
    uint8_t *pay = calloc(N, PAY);
    uint64_t rng = 11;
    int want_new = 0;
    for (int i = 0; i < N; i++) {
        uint64_t u = 1 + tc_rand(&rng) % 2000;
        ms[i] = tc_member(u, 1 + tc_rand(&rng) % 3);
        ms[i].flags = GT_ONLINE | (tc_rand(&rng) % 4 == 0 ? GT_ACTIVE : 0);
        pay_fill(pay + (size_t)i * PAY, u + (uint64_t)i);
        bool had = gt_contains(t, 1, u) == 1;
        cr_assert_eq(gt_insert(t, 1, &ms[i], pay + (size_t)i * PAY), 0);
        want_new += !had;
    }
    size_t done = 0;
    cr_assert_eq(gt_insert_many(t, 2, ms, pay, N, &done), want_new);
    cr_assert_eq(done, N);
    for (uint64_t u = 1; u <= 2000; u++) {
        gt_member a, b;
        uint8_t pa[PAY], pb[PAY];
        int ra = gt_lookup(t, 1, u, &a, pa), rb = gt_lookup(t, 2, u, &b, pb);
        cr_assert_eq(ra, rb, "user %llu", (unsigned long long)u);
        if (ra == 0) {
            cr_assert_arr_eq(&a, &b, sizeof a, "user %llu", (unsigned long long)u);
            cr_assert_arr_eq(pa, pb, PAY);
        }
    }
    gt_guild_stat s1, s2;
    cr_assert_eq(gt_guild_info(t, 1, &s1), 0);
    cr_assert_eq(gt_guild_info(t, 2, &s2), 0);
    cr_assert_eq(s1.members, s2.members);
    cr_assert_eq(s1.online, s2.online);
    cr_assert_eq(s1.active, s2.active);
    struct fan f1 = {0}, f2 = {0};
    gt_filter act = {.flags_set = GT_ACTIVE};
    cr_assert_eq(gt_fanout(t, 1, &act, 0, 1, fan_take, &f1), 0);
    cr_assert_eq(gt_fanout(t, 2, &act, 0, 1, fan_take, &f2), 0);
    cr_assert_eq(f2.n, f1.n);
    cr_assert_eq(f2.sum, f1.sum, "the same fanout sets");
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    cr_assert_eq(ts.members, s1.members + s2.members);
    gt_stats st;
    cr_assert_eq(gt_stats_read(t, &st), 0);
    cr_assert_eq(st.inserts, 2 * (500 + (uint64_t)N), "counted as the calls");
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0);
    free(ms);
    free(pay);
}

/* Into a new guild, no reserve: the storage grows hold by hold. */
Test(batch, insert_many_grows_a_new_guild) {
    enum { N = 5000 };
    gt_member *ms = calloc(N, sizeof *ms);
    for (int i = 0; i < N; i++) {
        ms[i] = tc_member((uint64_t)i + 1, 4);
        ms[i].flags = GT_ONLINE | (i % 10 == 0 ? GT_ACTIVE : 0);
    }
    cr_assert_eq(gt_insert_many(t, 9, ms, NULL, N, NULL), N);
    gt_guild_stat s;
    cr_assert_eq(gt_guild_info(t, 9, &s), 0);
    cr_assert_eq(s.members, N);
    cr_assert_eq(s.active, N / 10);
    for (int i = 0; i < N; i += 97) {
        gt_member got;
        cr_assert_eq(gt_lookup(t, 9, (uint64_t)i + 1, &got, NULL), 0);
        cr_assert_arr_eq(&got, &ms[i], sizeof got);
    }
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0);
    free(ms);
}

/* Records as large as they come, every member joining the fanout set: a
 * part of gt_insert_many must stop where its undo log would be full (a
 * part that overflowed it would fail the whole hold). */
Test(batch, insert_many_parts_fit_the_log) {
    const char *big_name = tc_name("batch-big");
    gt_table *big = tc_open(big_name, 10000, 4, GT_PAYLOAD_MAX);
    enum { N = 300 };
    gt_member *ms = calloc(N, sizeof *ms);
    uint8_t *pay = calloc(N, GT_PAYLOAD_MAX);
    for (int i = 0; i < N; i++) {
        ms[i] = tc_member((uint64_t)i + 1, 2);
        ms[i].flags = GT_ONLINE | GT_ACTIVE;
        for (unsigned b = 0; b < GT_PAYLOAD_MAX; b++)
            pay[(size_t)i * GT_PAYLOAD_MAX + b] = (uint8_t)(i * 7 + b);
    }
    size_t done = 0;
    cr_assert_eq(gt_insert_many(big, 1, ms, pay, N, &done), N);
    cr_assert_eq(done, N);
    gt_guild_stat s;
    cr_assert_eq(gt_guild_info(big, 1, &s), 0);
    cr_assert_eq(s.members, N);
    cr_assert_eq(s.active, N);
    uint8_t *got_pay = malloc(GT_PAYLOAD_MAX);
    for (int i = 0; i < N; i++) {
        gt_member got;
        cr_assert_eq(gt_lookup(big, 1, (uint64_t)i + 1, &got, got_pay), 0);
        cr_assert_arr_eq(&got, &ms[i], sizeof got);
        cr_assert_arr_eq(got_pay, pay + (size_t)i * GT_PAYLOAD_MAX,
                         GT_PAYLOAD_MAX);
    }
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(big, &rep), 0);
    free(got_pay);
    free(pay);
    free(ms);
    tc_drop(big, big_name);
}

Test(batch, insert_many_errors) {
    gt_member ms[3] = {tc_member(1, 1), tc_member(2, 1), tc_member(3, 1)};
    ms[2].flags |= 0x4u; /* a library bit */
    size_t done = 99;
    cr_assert_eq(gt_insert_many(t, 1, ms, NULL, 3, &done), GT_EINVAL);
    cr_assert_eq(done, 0);
    cr_assert_eq(gt_contains(t, 1, 1), 0, "nothing applied");
    ms[2].flags &= ~0x4u;
    cr_assert_eq(gt_insert_many(NULL, 1, ms, NULL, 3, &done), GT_EINVAL);
    cr_assert_eq(gt_insert_many(t, 1, NULL, NULL, 3, &done), GT_EINVAL);
    cr_assert_eq(gt_insert_many(t, 1, ms, NULL, (size_t)INT_MAX + 1, &done),
                 GT_EINVAL);
    cr_assert_eq(gt_insert_many(t, 1, NULL, NULL, 0, &done), 0);
    cr_assert_eq(done, 0);
    gt_table *ro;
    gt_options o = {.flags = GT_RDONLY};
    cr_assert_eq(gt_open(name, &o, &ro), 0);
    cr_assert_eq(gt_insert_many(ro, 1, ms, NULL, 3, &done), GT_EROFS);
    gt_close(ro);
    cr_assert_eq(gt_insert_many(t, 1, ms, NULL, 3, NULL), 3);
    cr_assert_eq(gt_insert_many(t, 1, ms, NULL, 3, NULL), 0, "all replaced");
}

/* max_members is exact: a batch stops where the table is full, with what
 * fitted applied, and a new guild that got nobody is not left behind. */
Test(batch, insert_many_stops_exactly_when_full) {
    const char *fname = tc_name("batchfull");
    gt_table *ft = tc_open(fname, 50, 8, 0);
    for (uint64_t u = 1; u <= 45; u++) {
        gt_member m = tc_member(u, 1);
        cr_assert_eq(gt_insert(ft, 1, &m, NULL), 0);
    }
    gt_member ms[10];
    for (int i = 0; i < 10; i++)
        ms[i] = tc_member(100 + (uint64_t)i, 1);
    size_t done = 0;
    cr_assert_eq(gt_insert_many(ft, 1, ms, NULL, 10, &done), GT_EFULL);
    cr_assert_eq(done, 5);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(gt_contains(ft, 1, 100 + (uint64_t)i), i < 5);
    gt_table_stat ts;
    cr_assert_eq(gt_info(ft, &ts), 0);
    cr_assert_eq(ts.members, 50);
    cr_assert_eq(gt_insert_many(ft, 7, ms + 5, NULL, 5, &done), GT_EFULL);
    cr_assert_eq(done, 0);
    gt_guild_stat gs;
    cr_assert_eq(gt_guild_info(ft, 7, &gs), GT_ENOENT, "no empty guild left");
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(ft, &rep), 0);
    tc_drop(ft, fname);
}
