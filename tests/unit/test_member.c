/* test_member.c - point operations: insert, lookup, delete, updates, and
 * every error they document. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "internal.h"

static const char *name;
static gt_table *t;

static void setup(void) {
    name = tc_name("member");
    t = tc_open(name, 100000, 16, 13); /* odd payload: exercises the tail */
}
static void teardown(void) {
    tc_drop(t, name);
}
TestSuite(member, .init = setup, .fini = teardown);

static void pay_fill(uint8_t *p, uint64_t u) {
    for (int i = 0; i < 13; i++)
        p[i] = (uint8_t)(u * 7 + (uint64_t)i);
}

Test(member, roundtrip_with_payload) {
    for (uint64_t u = 1; u <= 500; u++) {
        gt_member m = tc_member(u, 1);
        uint8_t p[13];
        pay_fill(p, u);
        cr_assert_eq(gt_insert(t, 9, &m, p), 0);
    }
    for (uint64_t u = 1; u <= 500; u++) {
        gt_member m, want = tc_member(u, 1);
        uint8_t p[16], wp[13];
        memset(p, 0xAA, sizeof p);
        pay_fill(wp, u);
        cr_assert_eq(gt_lookup(t, 9, u, &m, p), 0);
        cr_assert_arr_eq(&m, &want, sizeof m);
        cr_assert_arr_eq(p, wp, 13);
        cr_assert_eq(p[13], 0xAA, "lookup wrote past payload_size");
    }
}

Test(member, null_payload_stores_zeros) {
    gt_member m = tc_member(5, 1);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    uint8_t p[13];
    memset(p, 0x55, sizeof p);
    cr_assert_eq(gt_lookup(t, 1, 5, NULL, p), 0);
    for (int i = 0; i < 13; i++)
        cr_assert_eq(p[i], 0);
}

Test(member, insert_replaces_insert_new_refuses) {
    gt_member a = tc_member(7, 1), b = tc_member(7, 2), got;
    cr_assert_eq(gt_insert_new(t, 1, &a, NULL), 0);
    cr_assert_eq(gt_insert_new(t, 1, &b, NULL), GT_EEXIST);
    cr_assert_eq(gt_lookup(t, 1, 7, &got, NULL), 0);
    cr_assert_arr_eq(&got, &a, sizeof got, "insert_new changed the record");
    cr_assert_eq(gt_insert(t, 1, &b, NULL), 0);
    cr_assert_eq(gt_lookup(t, 1, 7, &got, NULL), 0);
    cr_assert_arr_eq(&got, &b, sizeof got);
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    cr_assert_eq(st.members, 1);
}

Test(member, missing_guild_and_member) {
    cr_assert_eq(gt_lookup(t, 1, 1, NULL, NULL), GT_ENOENT);
    cr_assert_eq(gt_contains(t, 1, 1), 0);
    cr_assert_eq(gt_delete(t, 1, 1), GT_ENOENT);
    cr_assert_eq(gt_update_flags(t, 1, 1, GT_ONLINE, 0, NULL), GT_ENOENT);
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    cr_assert_eq(gt_lookup(t, 1, 2, NULL, NULL), GT_ENOENT);
    cr_assert_eq(gt_contains(t, 1, 2), 0);
    cr_assert_eq(gt_contains(t, 1, 1), 1);
    cr_assert_eq(gt_delete(t, 1, 2), GT_ENOENT);
    cr_assert_eq(gt_update_flags(t, 1, 2, GT_ONLINE, 0, NULL), GT_ENOENT);
    cr_assert_eq(gt_update_session(t, 1, 2, 1, 1), GT_ENOENT);
    cr_assert_eq(gt_update_roles(t, 1, 2, NULL, NULL), GT_ENOENT);
    cr_assert_eq(gt_lookup(t, 2, 1, NULL, NULL), GT_ENOENT, "other guild");
}

Test(member, delete_then_absent_and_reinsert) {
    for (uint64_t u = 0; u < 2000; u++) {
        gt_member m = tc_member(u, 3);
        cr_assert_eq(gt_insert(t, 4, &m, NULL), 0);
    }
    for (uint64_t u = 0; u < 2000; u += 3)
        cr_assert_eq(gt_delete(t, 4, u), 0);
    for (uint64_t u = 0; u < 2000; u++)
        cr_assert_eq(gt_contains(t, 4, u), u % 3 != 0, "user %lu",
                     (unsigned long)u);
    for (uint64_t u = 0; u < 2000; u += 3) {
        gt_member m = tc_member(u, 4);
        cr_assert_eq(gt_insert_new(t, 4, &m, NULL), 0);
    }
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 4, &st), 0);
    cr_assert_eq(st.members, 2000);
}

Test(member, update_flags_semantics) {
    gt_member m = tc_member(1, 1);
    m.flags = GT_ONLINE | 0x00030000u;
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    uint32_t old = 0;
    cr_assert_eq(gt_update_flags(t, 1, 1, GT_ACTIVE | 0x00400000u,
                                 0x00010000u, &old), 0);
    cr_assert_eq(old, GT_ONLINE | 0x00030000u);
    gt_member got;
    cr_assert_eq(gt_lookup(t, 1, 1, &got, NULL), 0);
    cr_assert_eq(got.flags, GT_ONLINE | GT_ACTIVE | 0x00420000u);
    /* set wins over clear for the same bit */
    cr_assert_eq(gt_update_flags(t, 1, 1, GT_ONLINE, GT_ONLINE, &old), 0);
    cr_assert_eq(gt_lookup(t, 1, 1, &got, NULL), 0);
    cr_assert(got.flags & GT_ONLINE);
    /* no change: still reports old flags */
    cr_assert_eq(gt_update_flags(t, 1, 1, 0, 0, &old), 0);
    cr_assert_eq(old, got.flags);
    got.flags = 0;
    cr_assert_eq(gt_update_flags(t, 1, 1, 0, 0, NULL), 0, "NULL old_flags");
}

Test(member, reserved_flag_bits_rejected) {
    gt_member m = tc_member(1, 1);
    m.flags = 0x4u;
    cr_assert_eq(gt_insert(t, 1, &m, NULL), GT_EINVAL);
    cr_assert_eq(gt_guild_info(t, 1, &(gt_guild_stat){0}), GT_ENOENT,
                 "a refused insert created the guild");
    m.flags = GT_ONLINE;
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    for (uint32_t bit = 2; bit < 16; bit++) {
        cr_assert_eq(gt_update_flags(t, 1, 1, 1u << bit, 0, NULL), GT_EINVAL);
        cr_assert_eq(gt_update_flags(t, 1, 1, 0, 1u << bit, NULL), GT_EINVAL);
    }
}

Test(member, null_arguments) {
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(NULL, 1, &m, NULL), GT_EINVAL);
    cr_assert_eq(gt_insert(t, 1, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_insert_new(t, 1, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_lookup(NULL, 1, 1, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_contains(NULL, 1, 1), GT_EINVAL);
    cr_assert_eq(gt_delete(NULL, 1, 1), GT_EINVAL);
    cr_assert_eq(gt_update_flags(NULL, 1, 1, 0, 0, NULL), GT_EINVAL);
    cr_assert_eq(gt_update_session(NULL, 1, 1, 0, 0), GT_EINVAL);
    cr_assert_eq(gt_update_roles(NULL, 1, 1, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_guild_reserve(NULL, 1, 1), GT_EINVAL);
}

Test(member, update_session_and_roles) {
    gt_member m = tc_member(3, 1), got;
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    cr_assert_eq(gt_update_session(t, 1, 3, 77, 0x1234), 0);
    cr_assert_eq(gt_lookup(t, 1, 3, &got, NULL), 0);
    cr_assert_eq(got.worker, 77);
    cr_assert_eq(got.session_id, 0x1234);
    cr_assert_eq(got.flags, m.flags, "session update touched flags");
    cr_assert_arr_eq(got.roles, m.roles, sizeof m.roles);

    uint64_t set[4] = {0xF0, 0, 0, 1ull << 63}, clear[4] = {~0ull, 0, 0, 0};
    cr_assert_eq(gt_update_roles(t, 1, 3, set, clear), 0);
    cr_assert_eq(gt_lookup(t, 1, 3, &got, NULL), 0);
    cr_assert_eq(got.roles[0], 0xF0);
    cr_assert_eq(got.roles[1], m.roles[1]);
    cr_assert_eq(got.roles[3], m.roles[3] | (1ull << 63));
    cr_assert_eq(gt_update_roles(t, 1, 3, NULL, set), 0);
    cr_assert_eq(gt_lookup(t, 1, 3, &got, NULL), 0);
    cr_assert_eq(got.roles[0], 0);
    cr_assert_eq(got.roles[3], m.roles[3] & ~(1ull << 63));
    cr_assert_eq(gt_update_roles(t, 1, 3, NULL, NULL), 0, "no-op update");
    cr_assert_eq(got.session_id, 0x1234);
}

Test(member, counters_follow_writes) {
    gt_guild_stat st;
    for (uint64_t u = 0; u < 300; u++) {
        gt_member m = tc_member(u, 1);
        m.flags = (u % 2 ? GT_ONLINE : 0) | (u % 3 == 0 ? GT_ACTIVE : 0);
        cr_assert_eq(gt_insert(t, 2, &m, NULL), 0);
    }
    cr_assert_eq(gt_guild_info(t, 2, &st), 0);
    cr_assert_eq(st.members, 300);
    cr_assert_eq(st.online, 150);
    cr_assert_eq(st.active, 100);
    cr_assert_eq(gt_update_flags(t, 2, 0, 0, GT_ACTIVE, NULL), 0); /* 0%3==0 */
    cr_assert_eq(gt_update_flags(t, 2, 1, GT_ACTIVE | GT_ONLINE, 0, NULL), 0);
    cr_assert_eq(gt_delete(t, 2, 3), 0); /* online, active */
    cr_assert_eq(gt_guild_info(t, 2, &st), 0);
    cr_assert_eq(st.members, 299);
    cr_assert_eq(st.online, 149);
    cr_assert_eq(st.active, 99);
    gt_member m = tc_member(9, 1); /* replace: online+active -> neither */
    m.flags = 0;
    cr_assert_eq(gt_insert(t, 2, &m, NULL), 0);
    cr_assert_eq(gt_guild_info(t, 2, &st), 0);
    cr_assert_eq(st.members, 299);
    cr_assert_eq(st.online, 148);
    cr_assert_eq(st.active, 98);
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    cr_assert_eq(ts.members, 299);
    cr_assert_eq(ts.guilds, 1);
}

Test(member, growth_and_shrink_keep_every_member) {
    const uint64_t n = 60000;
    gt_guild_stat st;
    uint64_t caps[4] = {0};
    for (uint64_t u = 0; u < n; u++) {
        gt_member m = tc_member(u * 977 + 1, 5);
        m.flags |= (u % 10 == 0) ? GT_ACTIVE : 0;
        cr_assert_eq(gt_insert(t, 3, &m, NULL), 0);
        if (u == 100 || u == 1000)
            gt_guild_info(t, 3, &st), caps[u == 1000] = st.capacity;
    }
    cr_assert_eq(gt_guild_info(t, 3, &st), 0);
    caps[2] = st.capacity;
    cr_assert(caps[0] < caps[1] && caps[1] < caps[2], "storage grew");
    cr_assert(st.capacity * 9 >= n * 10, "load at most 0.9");
    for (uint64_t u = 0; u < n; u++) {
        gt_member got, want = tc_member(u * 977 + 1, 5);
        want.flags |= (u % 10 == 0) ? GT_ACTIVE : 0;
        cr_assert_eq(gt_lookup(t, 3, u * 977 + 1, &got, NULL), 0);
        cr_assert_arr_eq(&got, &want, sizeof got);
    }
    for (uint64_t u = 0; u < n; u++)
        if (u % 20)
            cr_assert_eq(gt_delete(t, 3, u * 977 + 1), 0);
    cr_assert_eq(gt_guild_info(t, 3, &st), 0);
    cr_assert_eq(st.members, n / 20);
    cr_assert_eq(st.active, n / 20, "every 20th is a 10th: all active");
    cr_assert(st.capacity < caps[2], "storage shrank");
    for (uint64_t u = 0; u < n; u++)
        cr_assert_eq(gt_contains(t, 3, u * 977 + 1), u % 20 == 0);
}

Test(member, reserve) {
    cr_assert_eq(gt_guild_reserve(t, 8, 100001), GT_EINVAL, "above max");
    cr_assert_eq(gt_guild_reserve(t, 8, 50000), 0);
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 8, &st), 0);
    cr_assert_eq(st.members, 0);
    uint64_t cap = st.capacity;
    cr_assert(cap * 9 >= 50000ull * 10);
    for (uint64_t u = 0; u < 50000; u++) {
        gt_member m = tc_member(u, 8);
        cr_assert_eq(gt_insert(t, 8, &m, NULL), 0);
    }
    cr_assert_eq(gt_guild_info(t, 8, &st), 0);
    cr_assert_eq(st.capacity, cap, "a reserved guild grew during the load");
    cr_assert_eq(gt_guild_reserve(t, 8, 10), 0, "smaller: no-op");
    cr_assert_eq(gt_guild_info(t, 8, &st), 0);
    cr_assert_eq(st.capacity, cap);
}

Test(member, max_members_is_exact) {
    gt_table *s;
    const char *n2 = tc_name("maxm");
    s = tc_open(n2, 1000, 8, 0);
    for (uint64_t u = 0; u < 1000; u++) {
        gt_member m = tc_member(u, 1);
        cr_assert_eq(gt_insert(s, u % 3, &m, NULL), 0, "member %lu",
                     (unsigned long)u);
    }
    gt_member m = tc_member(5000, 1);
    cr_assert_eq(gt_insert(s, 0, &m, NULL), GT_EFULL);
    cr_assert_eq(gt_insert(s, 7, &m, NULL), GT_EFULL, "new guild");
    cr_assert_eq(gt_guild_info(s, 7, &(gt_guild_stat){0}), GT_ENOENT,
                 "a failed insert left its new guild behind");
    cr_assert_eq(gt_check(s, NULL), 0, "consistent when full");
    gt_member r = tc_member(3, 9); /* replacing needs no room */
    cr_assert_eq(gt_insert(s, 0, &r, NULL), 0);
    gt_table_stat ts;
    cr_assert_eq(gt_info(s, &ts), 0);
    cr_assert_eq(ts.members, 1000);
    cr_assert_eq(gt_delete(s, 1, 1), 0);
    cr_assert_eq(gt_insert(s, 0, &m, NULL), 0, "room again after a delete");
    cr_assert_eq(gt_insert(s, 0, &(gt_member){.user_id = 6000}, NULL), GT_EFULL);
    tc_drop(s, n2);
}

Test(member, max_guilds_is_exact) {
    const char *n2 = tc_name("maxg");
    gt_table *s = tc_open(n2, 1000, 4, 0);
    gt_member m = tc_member(1, 1);
    for (uint64_t g = 10; g < 14; g++)
        cr_assert_eq(gt_insert(s, g, &m, NULL), 0);
    cr_assert_eq(gt_insert(s, 99, &m, NULL), GT_EFULL);
    cr_assert_eq(gt_guild_reserve(s, 99, 1), GT_EFULL);
    cr_assert_eq(gt_guild_delete(s, 11), 0);
    cr_assert_eq(gt_insert(s, 99, &m, NULL), 0);
    gt_table_stat ts;
    cr_assert_eq(gt_info(s, &ts), 0);
    cr_assert_eq(ts.guilds, 4);
    cr_assert_eq(ts.members, 4);
    tc_drop(s, n2);
}

static int no_visit(void *ctx, const gt_member *m, const void *p) {
    (void)ctx, (void)m, (void)p;
    return 0;
}

static int no_batch(void *ctx, uint32_t w, const gt_recipient *b, size_t n) {
    (void)ctx, (void)w, (void)b, (void)n;
    return 0;
}

/* White-box: a record left odd (a writer that stalls mid-write) makes a
 * reader give up after read_timeout_ms with GT_EBUSY, not hang. */
Test(member, stalled_writer_gives_ebusy) {
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    gt_table *r;
    gt_options o = {.read_timeout_ms = 50};
    cr_assert_eq(gt_open(name, &o, &r), 0);
    struct gt_guild *g = gt_guild_lookup(r, 1);
    cr_assert_not_null(g);
    struct gt_store *st = gt_at(r, LOAD(&g->store_off, relaxed));
    uint64_t slot = gt__store_find(r, st, LOAD(&g->cap, relaxed), 1,
                                   gt_hash(r, 1));
    cr_assert_neq(slot, GT_NOT_FOUND);
    struct gt_rec *rec = gt_rec_at(r, st, LOAD(&g->cap, relaxed), slot);
    STORE(&rec->seq, LOAD(&rec->seq, relaxed) + 1, relaxed);
    STORE(&g->writer_pid, gt__pid(), relaxed); /* a live "writer" */
    uint64_t t0 = gt__now_ns();
    cr_assert_eq(gt_lookup(r, 1, 1, NULL, NULL), GT_EBUSY);
    cr_assert(gt__now_ns() - t0 >= 50ull * 1000 * 1000);
    cr_assert_eq(gt_select(r, 1, NULL, 0, 1, no_visit, NULL), GT_EBUSY);
    cr_assert_eq(gt_fanout(r, 1, NULL, 0, 1, no_batch, NULL), GT_EBUSY);
    gt_cursor c;
    gt_member page[4];
    size_t n;
    cr_assert_eq(gt_iter_first(r, 1, NULL, &c, page, NULL, 4, &n), GT_EBUSY);
    STORE(&rec->seq, LOAD(&rec->seq, relaxed) + 1, relaxed);
    STORE(&g->writer_pid, 0, relaxed);
    cr_assert_eq(gt_lookup(r, 1, 1, NULL, NULL), 0);
    gt_close(r);
}

/* White-box: a view pointing outside the heap is reported, not followed. */
Test(member, corrupt_view_is_reported) {
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    struct gt_guild *g = gt_guild_lookup(t, 1);
    uint64_t so = LOAD(&g->store_off, relaxed);
    STORE(&g->store_off, t->g.file_size - 64, relaxed);
    cr_assert_eq(gt_lookup(t, 1, 1, NULL, NULL), GT_ECORRUPT);
    cr_assert_eq(gt_select_count(t, 1, &(gt_filter){.flags_clear = 1}, 0, 1,
                                 &(uint64_t){0}),
                 GT_ECORRUPT);
    STORE(&g->store_off, 16, relaxed);
    cr_assert_eq(gt_lookup(t, 1, 1, NULL, NULL), GT_ECORRUPT);
    STORE(&g->store_off, so, relaxed);
    cr_assert_eq(gt_lookup(t, 1, 1, NULL, NULL), 0);
}

/* Allocation failure on demand: this test binary links the library
 * statically with --wrap=malloc,calloc,realloc,pthread_mutex_lock
 * (tests/meson.build). With fail_glock set, the table's global lock fails
 * (ENOTRECOVERABLE) once an allocation has failed. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
int __real_pthread_mutex_lock(pthread_mutex_t *m);
static bool fail_allocs, fail_glock, alloc_failed;
static void *failed(void) {
    alloc_failed = true;
    return NULL;
}
void *__wrap_malloc(size_t n) {
    return fail_allocs ? failed() : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t s) {
    return fail_allocs ? failed() : __real_calloc(n, s);
}
void *__wrap_realloc(void *p, size_t n) {
    return fail_allocs ? failed() : __real_realloc(p, n);
}
int __wrap_pthread_mutex_lock(pthread_mutex_t *m) {
    if (fail_glock && alloc_failed && t && m == &t->seg->lock)
        return ENOTRECOVERABLE;
    return __real_pthread_mutex_lock(m);
}

/* Out of process memory: a write that must rebuild a guild with a fanout
 * set (it needs a temporary map), a fanout and a cursor page report
 * GT_ENOMEM, and the failed write changes nothing. */
Test(member, out_of_process_memory) {
    for (uint64_t u = 0; u < 3000; u++) {
        gt_member m = tc_member(u, 1);
        m.flags |= GT_ACTIVE;
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    uint64_t cap = st.capacity;
    uint64_t grow = st.capacity * 9 / 10 - st.members; /* to a rebuild */
    for (uint64_t u = 0; u < grow; u++) {
        gt_member m = tc_member(100000 + u, 1);
        m.flags |= GT_ACTIVE;
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    cr_assert_eq(st.capacity, cap, "no rebuild yet");
    uint64_t members = st.members;

    gt_member m = tc_member(999999, 1);
    gt_cursor c;
    gt_member page[1];
    size_t n;
    fail_allocs = true;
    int r1 = gt_insert(t, 1, &m, NULL);
    int r2 = gt_fanout(t, 1, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                       no_batch, NULL);
    int r3 = gt_iter_first(t, 1, NULL, &c, page, NULL, 1, &n);
    fail_allocs = false;
    cr_assert_eq(r1, GT_ENOMEM, "insert: %s", gt_strerror(r1));
    cr_assert_eq(r2, GT_ENOMEM, "fanout: %s", gt_strerror(r2));
    cr_assert_eq(r3, GT_ENOMEM, "cursor: %s", gt_strerror(r3));
    cr_assert_eq(gt_contains(t, 1, 999999), 0);
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    cr_assert_eq(st.members, members);
    cr_assert_eq(st.capacity, cap, "the failed rebuild left its storage");
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0, "and works once memory is back");
}

/* Guild gid with members 0..SHRINK_N-1, all in its fanout set. */
#define SHRINK_N 3000u
static void fill_active(uint64_t gid) {
    for (uint64_t u = 0; u < SHRINK_N; u++) {
        gt_member m = tc_member(u, 1);
        m.flags |= GT_ACTIVE;
        cr_assert_eq(gt_insert(t, gid, &m, NULL), 0);
    }
}

/* Member u out of guild gid's fanout set: deleted (del) or GT_ACTIVE
 * cleared. */
static int take_out(uint64_t gid, bool del, uint64_t u) {
    return del ? gt_delete(t, gid, u)
               : gt_update_flags(t, gid, u, 0, GT_ACTIVE, NULL);
}

static void assert_clean(void) {
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0);
    cr_assert_eq(rep.violations, 0);
}

/* A delete, or a flag update that leaves the fanout set, that leaves its
 * guild sparse rebuilds it smaller once it has committed; that rebuild is
 * optional (guildtab.h). Members leave guild `gid` one call at a time with
 * allocations failing (a rebuild needs a temporary map), and the same
 * members leave guild `ref` with memory. Every call must succeed and
 * count. Where the call rebuilt `ref` smaller, `gid` must keep its size
 * (no memory) and stay clean; with memory back, the next call shrinks it. */
static void shrink_without_memory(uint64_t gid, uint64_t ref, bool del) {
    const char *what = del ? "delete" : "update";
    fill_active(gid);
    fill_active(ref);
    for (uint64_t u = 0; u + 1 < SHRINK_N; u++) {
        gt_guild_stat rb, ra, before, after;
        cr_assert_eq(gt_guild_info(t, ref, &rb), 0);
        cr_assert_eq(take_out(ref, del, u), 0);
        cr_assert_eq(gt_guild_info(t, ref, &ra), 0);
        cr_assert_eq(gt_guild_info(t, gid, &before), 0);
        fail_allocs = true;
        int r = take_out(gid, del, u);
        fail_allocs = false;
        cr_assert_eq(r, 0, "%s %lu: %s", what, (unsigned long)u,
                     gt_strerror(r));
        cr_assert_eq(gt_guild_info(t, gid, &after), 0);
        cr_assert_eq(after.members, ra.members, "%s %lu", what,
                     (unsigned long)u);
        cr_assert_eq(after.active, ra.active, "%s %lu", what,
                     (unsigned long)u);
        gt_member m;
        r = gt_lookup(t, gid, u, &m, NULL);
        cr_assert(del ? r == GT_ENOENT : r == 0 && !(m.flags & GT_ACTIVE),
                  "%s %lu did not stand", what, (unsigned long)u);
        if (ra.bytes_used >= rb.bytes_used)
            continue; /* no rebuild this time */
        cr_assert_eq(after.capacity, before.capacity, "%s %lu", what,
                     (unsigned long)u);
        cr_assert(after.bytes_used >= before.bytes_used,
                  "%s %lu rebuilt smaller without memory", what,
                  (unsigned long)u);
        assert_clean();
        cr_assert_eq(take_out(gid, del, u + 1), 0);
        cr_assert_eq(gt_guild_info(t, gid, &after), 0);
        cr_assert(after.bytes_used < before.bytes_used,
                  "the %s after it, with memory, did not shrink the guild",
                  what);
        assert_clean();
        return;
    }
    cr_assert_fail("no %s rebuilt the guild", what);
}

Test(member, shrink_out_of_process_memory) {
    shrink_without_memory(1, 2, false);
    shrink_without_memory(3, 4, true);
}

/* The same for gt_update_flags_many: every update of the batch stands. */
Test(member, shrink_out_of_process_memory_batch) {
    gt_flag_update u[SHRINK_N];
    for (uint64_t i = 0; i < SHRINK_N; i++)
        u[i] = (gt_flag_update){.user_id = i, .clear = GT_ACTIVE};
    fill_active(1);
    fill_active(2);
    gt_guild_stat ref, before, after;
    cr_assert_eq(gt_guild_info(t, 1, &before), 0);
    size_t done = 0;
    cr_assert_eq(gt_update_flags_many(t, 2, u, SHRINK_N, &done), SHRINK_N);
    cr_assert_eq(gt_guild_info(t, 2, &ref), 0);
    cr_assert(ref.bytes_used < before.bytes_used, "the batch never rebuilt");
    fail_allocs = true;
    int r = gt_update_flags_many(t, 1, u, SHRINK_N, &done);
    fail_allocs = false;
    cr_assert_eq(r, (int)SHRINK_N, "%s", r < 0 ? gt_strerror(r) : "");
    cr_assert_eq(done, SHRINK_N);
    cr_assert_eq(gt_guild_info(t, 1, &after), 0);
    cr_assert_eq(after.active, 0);
    cr_assert_eq(after.members, SHRINK_N);
    cr_assert_eq(tc_fanout_size(t, 1), 0);
    cr_assert(after.bytes_used > ref.bytes_used, "rebuilt without memory");
    assert_clean();
    cr_assert_eq(gt_update_flags(t, 1, 0, GT_ACTIVE, 0, NULL), 0);
    cr_assert_eq(gt_guild_info(t, 1, &after), 0);
    cr_assert(after.bytes_used < before.bytes_used,
              "the next change, with memory, did not shrink the guild");
    assert_clean();
}

/* ---- an undo that cannot take the global lock ------------------------------
 * A rebuild takes a block of the table's heap under the global lock, then
 * fails (here: no process memory for its map). Its undo must free the block,
 * again under the global lock; when that lock fails too, the write lets the
 * guild's lock go with the log still pending, and the next write of this
 * thread finishes the undo first. Meanwhile the block stays taken. */

/* Heap bytes in use. */
static uint64_t heap_used(void) {
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    return ts.bytes_used;
}

/* Runs write() with allocations and then the global lock failing; it must
 * return want. The block its rebuild took stays until the next write of
 * this thread (here one that finds no member, but takes the guild's lock),
 * which must first free it; the table must then be clean. */
static void undo_without_glock(int (*write)(void), int want, const char *what) {
    uint64_t before = heap_used();
    fail_allocs = fail_glock = true;
    alloc_failed = false;
    int r = write();
    fail_allocs = fail_glock = false;
    cr_assert(alloc_failed, "%s: no rebuild was tried", what);
    cr_assert_eq(r, want, "%s: %s", what, gt_strerror(r));
    cr_assert_gt(heap_used(), before, "%s: the block is free before the "
                 "next write", what);
    cr_assert_eq(gt_update_flags(t, 1, UINT64_MAX, 0, 0, NULL), GT_ENOENT);
    cr_assert_eq(heap_used(), before, "%s: the next write did not free the "
                 "block", what);
    assert_clean();
}

/* The delete that shrinks guild 1: member shrink_user. */
static uint64_t shrink_user;
static int delete_shrinking(void) {
    return gt_delete(t, 1, shrink_user);
}

Test(member, shrink_undone_without_global_lock) {
    fill_active(1);
    shrink_user = SHRINK_N - 1;
    gt_guild_stat st = tc_to_shrink_point(t, 1, &shrink_user);
    undo_without_glock(delete_shrinking, 0, "delete");
    cr_assert_eq(gt_contains(t, 1, shrink_user), 0, "the delete stands");
    gt_guild_stat after;
    cr_assert_eq(gt_guild_info(t, 1, &after), 0);
    cr_assert_eq(after.members, st.members - 1);
    cr_assert_eq(after.capacity, st.capacity);
}

/* The batch that takes every member of guild 1 out of its fanout set;
 * batch_done: its done. */
static size_t batch_done;
static int clear_all(void) {
    gt_flag_update u[SHRINK_N];
    for (uint64_t i = 0; i < SHRINK_N; i++)
        u[i] = (gt_flag_update){.user_id = i, .clear = GT_ACTIVE};
    return gt_update_flags_many(t, 1, u, SHRINK_N, &batch_done);
}

/* In a batch, the lock error ends the batch: the updates before the one
 * that left the set sparse, and that one, stand (done says so). */
Test(member, shrink_batch_undone_without_global_lock) {
    fill_active(1);
    undo_without_glock(clear_all, GT_ECORRUPT, "update_flags_many");
    cr_assert(batch_done > 0 && batch_done < SHRINK_N, "done %zu",
              batch_done);
    for (uint64_t u = 0; u < SHRINK_N; u++) {
        gt_member m;
        cr_assert_eq(gt_lookup(t, 1, u, &m, NULL), 0);
        cr_assert_eq(!(m.flags & GT_ACTIVE), u < batch_done, "member %lu",
                     (unsigned long)u);
    }
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    cr_assert_eq(st.active, SHRINK_N - batch_done);
}

/* A write is done once it has committed, even if what follows its commit
 * cannot take the global lock: here a delete that returns its member to
 * the table-wide count (a post-commit action), and would then shrink its
 * guild. It succeeds, lets the guild go, and the thread's next write
 * finishes the count first. */
Test(member, delete_done_when_its_commit_cannot_take_global_lock) {
    fill_active(1);
    shrink_user = SHRINK_N - 1;
    gt_guild_stat st = tc_to_shrink_point(t, 1, &shrink_user), after;
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    uint64_t members = ts.members;
    fail_glock = alloc_failed = true; /* the global lock fails at once */
    int r = gt_delete(t, 1, shrink_user);
    fail_glock = alloc_failed = false;
    cr_assert_eq(r, 0, "%s", gt_strerror(r));
    cr_assert_eq(gt_contains(t, 1, shrink_user), 0);
    cr_assert_eq(gt_guild_info(t, 1, &after), 0);
    cr_assert_eq(after.members, st.members - 1);
    cr_assert_eq(after.capacity, st.capacity, "no shrink without the lock");
    cr_assert_eq(gt_info(t, &ts), 0);
    cr_assert_eq(ts.members, members, "the count was returned");
    cr_assert_eq(gt_update_flags(t, 1, UINT64_MAX, 0, 0, NULL), GT_ENOENT);
    cr_assert_eq(gt_info(t, &ts), 0);
    cr_assert_eq(ts.members, members - 1, "the next write did not finish it");
    assert_clean();
    cr_assert_eq(gt_delete(t, 1, shrink_user - 1), 0);
    cr_assert_eq(gt_guild_info(t, 1, &after), 0);
    cr_assert_lt(after.capacity, st.capacity, "and the next delete shrinks");
}

/* An insert of member 999999 into guild 1 that must grow it, one call or
 * one batch. */
static int insert_growing(void) {
    gt_member m = tc_member(999999, 1);
    return gt_insert(t, 1, &m, NULL);
}
static int insert_many_growing(void) {
    gt_member m = tc_member(999999, 1);
    return gt_insert_many(t, 1, &m, NULL, 1, NULL);
}

Test(member, growth_undone_without_global_lock) {
    fill_active(1);
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    uint64_t grow = st.capacity * 9 / 10 - st.members; /* to a rebuild */
    for (uint64_t u = 0; u < grow; u++) {
        gt_member m = tc_member(100000 + u, 1);
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    undo_without_glock(insert_growing, GT_ENOMEM, "insert");
    undo_without_glock(insert_many_growing, GT_ENOMEM, "insert_many");
    cr_assert_eq(gt_contains(t, 1, 999999), 0);
    gt_guild_stat after;
    cr_assert_eq(gt_guild_info(t, 1, &after), 0);
    cr_assert_eq(after.members, st.members + grow);
    cr_assert_eq(after.capacity, st.capacity);
    cr_assert_eq(insert_growing(), 0, "and works once memory is back");
}
