/* test_fanout.c - gt_fanout: grouping by worker, batching, filters, and
 * agreement with gt_select. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "common.h"

static const char *name;
static gt_table *t;

static void setup(void) {
    name = tc_name("fanout");
    t = tc_open(name, 200000, 16, 0);
}
static void teardown(void) {
    tc_drop(t, name);
}
TestSuite(fanout, .init = setup, .fini = teardown);

#define MAXU 100000u

struct got {
    uint32_t times[MAXU];
    uint32_t worker_of[MAXU];
    uint64_t batches, total, bad;
};

/* user u of the test guild: worker w(u), session s(u) */
static uint32_t wk(uint64_t u, uint32_t nworkers, uint32_t base) {
    return base + (uint32_t)(tc_mix(u) % nworkers);
}
static uint64_t sess(uint64_t u) {
    return tc_mix(u + 99) | 1;
}

static int record(void *ctx, uint32_t worker, const gt_recipient *r,
                  size_t n) {
    struct got *g = ctx;
    g->batches++;
    if (n == 0 || n > GT_FANOUT_BATCH)
        g->bad++;
    for (size_t i = 0; i < n; i++) {
        uint64_t u = r[i].user_id;
        if (u >= MAXU || r[i].session_id != sess(u)) {
            g->bad++;
            continue;
        }
        g->times[u]++;
        g->worker_of[u] = worker;
        g->total++;
    }
    return 0;
}

static void load(uint64_t n, uint32_t nworkers, uint32_t base, int active_mod) {
    for (uint64_t u = 0; u < n; u++) {
        gt_member m = {.user_id = u, .session_id = sess(u),
                       .worker = wk(u, nworkers, base),
                       .flags = GT_ONLINE | (u % active_mod == 0 ? GT_ACTIVE : 0)};
        m.roles[u % 4] = 1ull << (u % 64);
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
}

static void expect(struct got *g, uint64_t n, uint32_t nworkers, uint32_t base,
                   bool (*want)(uint64_t)) {
    cr_assert_eq(g->bad, 0, "malformed batch or recipient");
    uint64_t count = 0;
    for (uint64_t u = 0; u < n; u++) {
        bool w = want(u);
        count += w;
        cr_assert_eq(g->times[u], w ? 1u : 0u, "user %lu delivered %u times",
                     (unsigned long)u, g->times[u]);
        if (w)
            cr_assert_eq(g->worker_of[u], wk(u, nworkers, base),
                         "user %lu in the batch of another worker",
                         (unsigned long)u);
    }
    cr_assert_eq(g->total, count);
}

static bool every_10th(uint64_t u) { return u % 10 == 0; }
static bool everyone(uint64_t u) { (void)u; return true; }

Test(fanout, active_members_grouped_by_worker) {
    load(50000, 16, 0, 10);
    struct got *g = calloc(1, sizeof *g);
    cr_assert_eq(gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                           record, g), 0);
    expect(g, 50000, 16, 0, every_10th);
    /* 5000 recipients over 16 workers: about 20 full batches + 16 tails */
    cr_assert(g->batches >= 16 && g->batches <= 5000 / GT_FANOUT_BATCH + 16);
    free(g);
}

Test(fanout, without_active_filter_reads_all_members) {
    load(20000, 16, 0, 10);
    struct got *g = calloc(1, sizeof *g);
    cr_assert_eq(gt_fanout(t, 1, NULL, 0, 1, record, g), 0);
    expect(g, 20000, 16, 0, everyone);
    free(g);
}

static bool active_role0(uint64_t u) {
    return u % 10 == 0 && u % 4 == 0 && (u % 64) < 8;
}

Test(fanout, role_and_worker_filters) {
    load(30000, 16, 0, 10);
    struct got *g = calloc(1, sizeof *g);
    gt_filter f = {.flags_set = GT_ACTIVE, .roles_any = {0xFF}};
    cr_assert_eq(gt_fanout(t, 1, &f, 0, 1, record, g), 0);
    expect(g, 30000, 16, 0, active_role0);
    free(g);
    g = calloc(1, sizeof *g);
    f = (gt_filter){.flags_set = GT_ACTIVE, .match_worker = 1, .worker = 5};
    cr_assert_eq(gt_fanout(t, 1, &f, 0, 1, record, g), 0);
    for (uint64_t u = 0; u < 30000; u++)
        cr_assert_eq(g->times[u], u % 10 == 0 && wk(u, 16, 0) == 5);
    free(g);
}

/* Every n-th member active, over nworkers workers from id base: each active
 * member delivered once, in its worker's batches. */
static void expect_workers(uint64_t n, uint32_t nworkers, uint32_t base,
                           int active_mod) {
    load(n, nworkers, base, active_mod);
    struct got *g = calloc(1, sizeof *g);
    cr_assert_eq(gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                           record, g), 0);
    cr_assert_eq(g->bad, 0);
    for (uint64_t u = 0; u < n; u++) {
        cr_assert_eq(g->times[u], u % active_mod == 0);
        if (u % active_mod == 0)
            cr_assert_eq(g->worker_of[u], wk(u, nworkers, base));
    }
    free(g);
}

Test(fanout, many_and_large_worker_ids) {
    /* 5000 workers, ids above the direct-mapped range */
    expect_workers(60000, 5000, 4000000000u, 3);
}

Test(fanout, worker_ids_on_both_sides_of_the_direct_map) {
    /* 3000 workers, ids 3000..5999: batches grow past their first 16 while
     * both the direct-mapped and the hashed ids are in use */
    expect_workers(60000, 3000, 3000, 2);
}

Test(fanout, follows_presence_changes) {
    load(1000, 4, 0, 1000000); /* only user 0 active */
    for (uint64_t u = 1; u < 1000; u += 2)
        cr_assert_eq(gt_update_flags(t, 1, u, GT_ACTIVE, 0, NULL), 0);
    cr_assert_eq(gt_update_flags(t, 1, 0, 0, GT_ACTIVE, NULL), 0);
    cr_assert_eq(gt_update_session(t, 1, 3, 3, sess(3)), 0);
    cr_assert_eq(gt_delete(t, 1, 5), 0);
    struct got *g = calloc(1, sizeof *g);
    cr_assert_eq(gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                           record, g), 0);
    cr_assert_eq(g->bad, 0);
    for (uint64_t u = 0; u < 1000; u++)
        cr_assert_eq(g->times[u], u % 2 == 1 && u != 5, "user %lu",
                     (unsigned long)u);
    cr_assert_eq(g->worker_of[3], 3, "routing update reached the fanout set");
    free(g);
}

Test(fanout, fanout_set_shrinks_and_regrows) {
    /* Activate 20000, deactivate almost all (the set is compacted), then
     * activate again: deliveries stay exact throughout. */
    load(20000, 8, 0, 1);
    for (uint64_t u = 0; u < 20000; u++)
        if (u % 100)
            cr_assert_eq(gt_update_flags(t, 1, u, 0, GT_ACTIVE, NULL), 0);
    struct got *g = calloc(1, sizeof *g);
    cr_assert_eq(gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                           record, g), 0);
    for (uint64_t u = 0; u < 20000; u++)
        cr_assert_eq(g->times[u], u % 100 == 0);
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    cr_assert_eq(st.active, 200);
    for (uint64_t u = 0; u < 20000; u += 2)
        cr_assert_eq(gt_update_flags(t, 1, u, GT_ACTIVE, 0, NULL), 0);
    memset(g, 0, sizeof *g);
    cr_assert_eq(gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                           record, g), 0);
    for (uint64_t u = 0; u < 20000; u++)
        cr_assert_eq(g->times[u], u % 2 == 0 || u % 100 == 0);
    free(g);
}

static int stop(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)w, (void)r, (void)n;
    return ++*(int *)ctx == 2 ? 55 : 0;
}

struct nested {
    gt_table *t;
    uint64_t inner;
    int depth;
};
static int count_inner(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)w, (void)r;
    ((struct nested *)ctx)->inner += n;
    return 0;
}
static int start_inner(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)w, (void)r, (void)n;
    struct nested *s = ctx;
    if (s->depth++ == 0)
        return gt_fanout(s->t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                         count_inner, s);
    return 0;
}

Test(fanout, errors_stop_and_nesting) {
    load(5000, 16, 0, 2);
    int k = 0;
    cr_assert_eq(gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                           stop, &k), 55);
    cr_assert_eq(gt_fanout(NULL, 1, NULL, 0, 1, stop, &k), GT_EINVAL);
    cr_assert_eq(gt_fanout(t, 1, NULL, 0, 1, NULL, &k), GT_EINVAL);
    cr_assert_eq(gt_fanout(t, 1, NULL, 4, 4, stop, &k), GT_EINVAL);
    cr_assert_eq(gt_fanout(t, 2, NULL, 0, 1, stop, &k), GT_ENOENT);
    struct nested s = {t, 0, 0};
    cr_assert_eq(gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                           start_inner, &s), 0);
    cr_assert_eq(s.inner, 2500, "a fanout inside a fanout callback");
}
