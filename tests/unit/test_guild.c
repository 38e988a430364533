/* test_guild.c - guilds: listing, deletion and re-creation, directory
 * churn, a damaged guild refused by writers, and the errors of each. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "common.h"
#include "internal.h"

static const char *name;
static gt_table *t;

static void setup(void) {
    name = tc_name("guild");
    t = tc_open(name, 100000, 64, 0);
}
static void teardown(void) {
    tc_drop(t, name);
}
TestSuite(guild, .init = setup, .fini = teardown);

struct listing {
    uint64_t seen[64], members[64];
    int n, stop_after;
};
static int list_one(void *ctx, const gt_guild_stat *g) {
    struct listing *l = ctx;
    l->seen[l->n] = g->guild_id;
    l->members[l->n] = g->members;
    return ++l->n == l->stop_after ? 42 : 0;
}

Test(guild, listing_and_counters) {
    for (uint64_t g = 1; g <= 10; g++)
        for (uint64_t u = 0; u < g * 10; u++) {
            gt_member m = tc_member(u, g);
            m.flags = u % 2 ? GT_ONLINE | GT_ACTIVE : 0;
            cr_assert_eq(gt_insert(t, g * 1000, &m, NULL), 0);
        }
    struct listing l = {.stop_after = -1};
    cr_assert_eq(gt_guilds(t, list_one, &l), 0);
    cr_assert_eq(l.n, 10);
    uint64_t mask = 0;
    for (int i = 0; i < l.n; i++) {
        uint64_t g = l.seen[i] / 1000;
        cr_assert(g >= 1 && g <= 10 && l.seen[i] % 1000 == 0);
        cr_assert_eq(l.members[i], g * 10);
        mask |= 1ull << g;
    }
    cr_assert_eq(mask, 0x7FEull, "every guild listed once");
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 7000, &st), 0);
    cr_assert_eq(st.guild_id, 7000);
    cr_assert_eq(st.members, 70);
    cr_assert_eq(st.online, 35);
    cr_assert_eq(st.active, 35);
    cr_assert_geq(st.capacity * 9, st.members * 10);
    cr_assert_gt(st.bytes_used, 70 * 72);
    struct listing stop = {.stop_after = 3};
    cr_assert_eq(gt_guilds(t, list_one, &stop), 42, "callback value returned");
    cr_assert_eq(stop.n, 3);
}

Test(guild, errors) {
    gt_guild_stat st;
    cr_assert_eq(gt_guilds(NULL, list_one, NULL), GT_EINVAL);
    cr_assert_eq(gt_guilds(t, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_guild_info(NULL, 1, &st), GT_EINVAL);
    cr_assert_eq(gt_guild_info(t, 1, NULL), GT_EINVAL);
    cr_assert_eq(gt_guild_info(t, 1, &st), GT_ENOENT);
    cr_assert_eq(gt_guild_delete(NULL, 1), GT_EINVAL);
    cr_assert_eq(gt_guild_delete(t, 1), GT_ENOENT);
    struct listing l = {.stop_after = -1};
    cr_assert_eq(gt_guilds(t, list_one, &l), 0);
    cr_assert_eq(l.n, 0, "empty table lists nothing");
}

Test(guild, delete_and_recreate) {
    for (uint64_t u = 0; u < 5000; u++) {
        gt_member m = tc_member(u, 1);
        m.flags |= GT_ACTIVE;
        cr_assert_eq(gt_insert(t, 5, &m, NULL), 0);
    }
    gt_member other = tc_member(1, 2);
    cr_assert_eq(gt_insert(t, 6, &other, NULL), 0);
    cr_assert_eq(gt_guild_delete(t, 5), 0);
    cr_assert_eq(gt_guild_delete(t, 5), GT_ENOENT);
    cr_assert_eq(gt_lookup(t, 5, 1, NULL, NULL), GT_ENOENT);
    cr_assert_eq(gt_guild_info(t, 5, &(gt_guild_stat){0}), GT_ENOENT);
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    cr_assert_eq(ts.members, 1);
    cr_assert_eq(ts.guilds, 1);
    gt_member m = tc_member(1, 3);
    cr_assert_eq(gt_insert(t, 5, &m, NULL), 0);
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 5, &st), 0);
    cr_assert_eq(st.members, 1, "a re-created guild starts empty");
    cr_assert_eq(st.active, 0);
    cr_assert_eq(gt_lookup(t, 6, 1, NULL, NULL), 0, "other guilds untouched");
}

static uint64_t churn_id(int round, uint64_t g) {
    return (uint64_t)round * 1000003 + g;
}

Test(guild, directory_churn) {
    /* Create and delete far more guilds than max_guilds over time: the
     * directory fills with tombstones and is rebuilt in place, and guilds
     * kept across rounds stay reachable throughout. */
    for (int round = 0; round < 40; round++) {
        for (uint64_t g = 0; g < 50; g++) {
            gt_member m = tc_member(g, 1);
            cr_assert_eq(gt_insert(t, churn_id(round, g), &m, NULL), 0,
                         "round %d guild %lu", round, (unsigned long)g);
        }
        for (uint64_t g = 0; g < 50; g++) {
            cr_assert_eq(gt_contains(t, churn_id(round, g), g), 1);
            if (g % 10) /* every tenth guild is kept one more round */
                cr_assert_eq(gt_guild_delete(t, churn_id(round, g)), 0);
        }
        for (uint64_t g = 0; g < 50; g += 10) {
            if (round > 0) {
                cr_assert_eq(gt_contains(t, churn_id(round - 1, g), g), 1);
                cr_assert_eq(gt_guild_delete(t, churn_id(round - 1, g)), 0);
            }
            cr_assert_eq(gt_contains(t, churn_id(round, g), g), 1);
        }
    }
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    cr_assert_eq(ts.guilds, 5);
    cr_assert_eq(ts.members, 5);
}

Test(guild, damaged_guild_refused_by_writers) {
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, 9, &m, NULL), 0);
    struct gt_guild *g = gt_guild_lookup(t, 9);
    cr_assert_not_null(g);
    uint64_t so = LOAD(&g->store_off, relaxed);
    struct gt_store *st = gt_at(t, so);
    st->magic ^= 1;
    cr_assert_eq(gt_insert(t, 9, &(gt_member){.user_id = 2}, NULL), GT_ECORRUPT);
    cr_assert_eq(gt_update_flags(t, 9, 1, GT_ACTIVE, 0, NULL), GT_ECORRUPT);
    cr_assert_eq(gt_delete(t, 9, 1), GT_ECORRUPT);
    st->magic ^= 1;
    STORE(&g->store_off, so + 128, relaxed); /* not a block */
    cr_assert_eq(gt_insert(t, 9, &(gt_member){.user_id = 2}, NULL), GT_ECORRUPT);
    STORE(&g->store_off, so, relaxed);
    cr_assert_eq(gt_insert(t, 9, &(gt_member){.user_id = 2}, NULL), 0);
    cr_assert_eq(gt_contains(t, 9, 2), 1);
}

/* A reservation the heap cannot hold (GT_EFULL) changes nothing, like any
 * failed write: a guild it would have made does not appear, and one that
 * was there stays as it was. */
Test(guild, refused_reserve_changes_nothing) {
    gt_member m = tc_member(7, 1);
    cr_assert_eq(gt_insert(t, 60, &m, NULL), 0);
    uint64_t gid = 1;
    int r;
    while ((r = gt_guild_reserve(t, gid, 100000)) == 0)
        cr_assert_lt(++gid, 60, "the heap held 59 guilds of max_members");
    cr_assert_eq(r, GT_EFULL, "%s", gt_strerror(r));
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, gid, &st), GT_ENOENT);
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    cr_assert_eq(ts.guilds, gid); /* 1..gid-1 and 60 */
    cr_assert_eq(gt_guild_info(t, 60, &st), 0);
    uint64_t cap = st.capacity;
    cr_assert_eq(gt_guild_reserve(t, 60, 100000), GT_EFULL);
    cr_assert_eq(gt_guild_info(t, 60, &st), 0);
    cr_assert_eq(st.members, 1);
    cr_assert_eq(st.capacity, cap);
    cr_assert_eq(gt_contains(t, 60, 7), 1);
}
