/* test_lookup.c - a lookup that a writer overtakes returns one whole
 * version of the member, or none if it was deleted: never a mix of two
 * versions, never a deleted member, never what another guild's storage
 * holds in a block the member's guild gave up under it, never a member of
 * a guild made in its guild's place.
 *
 * Deterministic, with the test library's stop points (src/hooks.c): a
 * reader process stops inside its lookup, at "lookup_guild" (the guild
 * found, its storage not yet), "lookup_view" (the guild's storage found,
 * nothing in it read yet), "lookup_record" (the record found by its
 * control byte, not read yet) or "lookup_copy" (half of the record copied
 * out). Meanwhile the test replaces or deletes the member, or moves its
 * guild to new storage and gives the old block to another guild, or
 * deletes the guild and makes another in its place; then it resumes the
 * reader. gt_lookup is stopped in its straight pass (lookup_fast in
 * src/member.c), gt_lookup_many in its first read, of the record it
 * fetched ahead, which it follows with the full probe when that read finds
 * the record changed: so each way of reading a record is checked. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

#define G 7u
#define H 8u     /* gets G's old block */
#define BUDDY 9u /* holds the block next to G's: freeing G's merges nothing */
#define OTHER 10u
/* The reader looks up each of TRIES members in turn (x): with a seed of
 * its own, a table may place one member past the two control groups the
 * straight pass reads, or behind another member with the same tag, and the
 * reader then stops in the probe that goes on or at the other record
 * instead (with one member, about one run in eight did). */
#define TRIES 4
#define X0 4242u
#define PAY 24

struct result {
    int rc;
    uint8_t found; /* gt_lookup_many's */
    gt_member m;
    uint8_t pay[PAY];
};

static const char *name;
static struct result *res; /* shared with the reader */
static const char *stop_at;
static bool batch; /* the reader calls gt_lookup_many, not gt_lookup */
static uint64_t x;  /* the member it looks up */

static int reader(void *arg) {
    (void)arg;
    gt_table *t = tc_child_open(name, NULL);
    /* a first lookup puts G in the handle's cache, which the straight
     * pass needs */
    if (gt_lookup(t, G, 1, NULL, NULL))
        return 2;
    setenv("GT_CRASH_AT", stop_at, 1);
    if (batch) {
        uint64_t id = x;
        res->rc = gt_lookup_many(t, G, &id, 1, &res->m, res->pay, &res->found);
    } else {
        res->rc = gt_lookup(t, G, x, &res->m, res->pay);
    }
    unsetenv("GT_CRASH_AT");
    gt_close(t);
    return 0;
}

/* Member user of guild gid at version (its payload bytes all version). */
static void put(gt_table *t, uint64_t gid, uint64_t user, uint8_t version) {
    gt_member m = tc_member(user, version);
    uint8_t pay[PAY];
    memset(pay, version, PAY);
    cr_assert_eq(gt_insert(t, gid, &m, pay), 0);
}

static struct gt_guild *g_was; /* G's place in the table */

/* For each of TRIES members x: a fresh table with G of 21 members, x at
 * version 1 (G's neighbours BUDDY and OTHER reserved, for the block-reuse
 * cases); a reader of x stopped at `at`, with `write` done meanwhile;
 * `check` of the reader's result. */
static void overtake(const char *at, bool many, void (*write)(gt_table *),
                     void (*check)(void)) {
    stop_at = at;
    batch = many;
    res = tc_shared(sizeof *res);
    for (x = X0; x < X0 + TRIES; x++) {
        name = tc_name("lookup");
        memset(res, 0, sizeof *res);
        res->rc = 99;
        gt_table *t = tc_open(name, 10000, 16, PAY);
        cr_assert_eq(gt_guild_reserve(t, G, 21), 0);
        cr_assert_eq(gt_guild_reserve(t, BUDDY, 21), 0);
        cr_assert_eq(gt_guild_reserve(t, OTHER, 64), 0);
        /* few members, so that x's tag rarely matches another's on the way
         * (a reader stopped at another record checks nothing); storage of
         * at most 64 slots, which a delete does not shrink: the reader's
         * view stays, so only x's record tells it x is gone */
        for (uint64_t u = 1; u <= 20; u++)
            put(t, G, u, 1);
        put(t, G, x, 1);
        g_was = gt_guild_lookup(t, G);
        pid_t p = tc_spawn(reader, NULL);
        tc_stopped(p, "reader");
        write(t);
        kill(p, SIGCONT);
        tc_reap(&p, 1, "reader");
        check();
        gt_check_report rep = {0};
        cr_assert_eq(gt_check(t, &rep), 0, "%lu violations",
                     (unsigned long)rep.violations);
        tc_drop(t, name);
    }
}

static void replace(gt_table *t) {
    put(t, G, x, 2);
}

static void delete(gt_table *t) {
    cr_assert_eq(gt_delete(t, G, x), 0);
}

/* The reader copied x out at version 2, whole. */
static void whole_version_2(void) {
    gt_member want = tc_member(x, 2);
    cr_assert_eq(memcmp(&res->m, &want, sizeof want), 0,
                 "not version 2 whole: session %#lx (v2 %#lx), roles[3] %#lx "
                 "(v2 %#lx)",
                 (unsigned long)res->m.session_id,
                 (unsigned long)want.session_id,
                 (unsigned long)res->m.roles[3],
                 (unsigned long)want.roles[3]);
    for (int i = 0; i < PAY; i++)
        cr_assert_eq(res->pay[i], 2, "payload byte %d", i);
}

static void got_version_2(void) {
    cr_assert_eq(res->rc, 0);
    whole_version_2();
}

static void found_version_2(void) {
    cr_assert_eq(res->rc, 1); /* members found */
    cr_assert_eq(res->found, 1);
    whole_version_2();
}

static void got_none(void) {
    cr_assert_eq(res->rc, GT_ENOENT);
}

static void found_none(void) {
    cr_assert_eq(res->rc, 0);
    cr_assert_eq(res->found, 0);
}

Test(fault, a_lookup_overtaken_mid_copy_returns_the_new_version) {
    overtake("lookup_copy:1:stop", false, replace, got_version_2);
}

Test(fault, a_batch_lookup_overtaken_mid_copy_returns_the_new_version) {
    overtake("lookup_copy:1:stop", true, replace, found_version_2);
}

Test(fault, a_lookup_overtaken_by_a_delete_finds_nothing) {
    overtake("lookup_record:1:stop", false, delete, got_none);
}

Test(fault, a_batch_lookup_overtaken_by_a_delete_finds_nothing) {
    overtake("lookup_record:1:stop", true, delete, found_none);
}

/* ---- the storage replaced, its block reused ---- */

/* G, of 21 members, x at version 1, gets new storage, and H gets G's old
 * block, which H fills with the same members at the same slots, but for x
 * at version 2 (with_x) or no x at all: what the reader finds there is a
 * member of H, or nothing where G has x. */
static void reuse(gt_table *t, bool with_x) {
    struct gt_guild *g = gt_guild_lookup(t, G);
    uint64_t old_off = LOAD(&g->store_off, relaxed);
    uint32_t cap = LOAD(&g->cap, relaxed);
    cr_assert_eq(gt_guild_reserve(t, G, 500), 0); /* new storage */
    cr_assert_neq(LOAD(&g->store_off, relaxed), old_off);
    /* commits reclaim retired blocks no reader holds (a lookup holds none;
     * OTHER has room: these inserts allocate nothing) */
    for (uint64_t u = 1; u <= 8; u++) {
        gt_member m = tc_member(u, u);
        cr_assert_eq(gt_insert(t, OTHER, &m, NULL), 0);
    }
    cr_assert_eq(gt_guild_reserve(t, H, 21), 0);
    struct gt_guild *h = gt_guild_lookup(t, H);
    cr_assert_eq(LOAD(&h->store_off, relaxed), old_off,
                 "the allocator did not reuse the block (else the test "
                 "proves nothing)");
    cr_assert_eq(LOAD(&h->cap, relaxed), cap);
    for (uint64_t u = 1; u <= 20; u++) /* G's order: G's slots */
        put(t, H, u, 1);
    if (with_x)
        put(t, H, x, 2);
}

static void reuse_with_x(gt_table *t) {
    reuse(t, true);
}

static void reuse_without_x(gt_table *t) {
    reuse(t, false);
}

/* The reader must still find G's x, version 1, whole. */
static void whole_version_1(void) {
    gt_member want = tc_member(x, 1);
    cr_assert_eq(memcmp(&res->m, &want, sizeof want), 0,
                 "not G's x: session %#lx (G's %#lx)",
                 (unsigned long)res->m.session_id,
                 (unsigned long)want.session_id);
    for (int i = 0; i < PAY; i++)
        cr_assert_eq(res->pay[i], 1, "payload byte %d", i);
}

static void got_version_1(void) {
    cr_assert_eq(res->rc, 0, "x of G not found: %d", res->rc);
    whole_version_1();
}

static void found_version_1(void) {
    cr_assert_eq(res->rc, 1);
    cr_assert_eq(res->found, 1, "x of G not found");
    whole_version_1();
}

Test(fault, a_lookup_never_returns_a_member_of_a_reused_block) {
    overtake("lookup_view:1:stop", false, reuse_with_x, got_version_1);
}

Test(fault, a_batch_lookup_never_returns_a_member_of_a_reused_block) {
    overtake("lookup_view:1:stop", true, reuse_with_x, found_version_1);
}

Test(fault, a_lookup_never_misses_a_member_by_a_reused_block) {
    overtake("lookup_view:1:stop", false, reuse_without_x, got_version_1);
}

Test(fault, a_batch_lookup_never_misses_a_member_by_a_reused_block) {
    overtake("lookup_view:1:stop", true, reuse_without_x, found_version_1);
}

/* ---- the guild deleted, another made in its place ---- */

/* G is deleted and H made, in G's place, with x at version 2. */
static void replace_guild(gt_table *t) {
    cr_assert_eq(gt_guild_delete(t, G), 0);
    for (uint64_t u = 1; u <= 20; u++)
        put(t, H, u, 2);
    put(t, H, x, 2);
    cr_assert_eq(gt_guild_lookup(t, H), g_was,
                 "H is not in G's place (else the test proves nothing)");
}

Test(fault, a_lookup_never_returns_a_member_of_a_guild_made_in_its_place) {
    overtake("lookup_guild:1:stop", false, replace_guild, got_none);
}

Test(fault, a_batch_lookup_never_returns_a_member_of_a_guild_made_in_its_place) {
    overtake("lookup_guild:1:stop", true, replace_guild, found_none);
}
