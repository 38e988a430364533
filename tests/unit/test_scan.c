/* test_scan.c - gt_select, gt_select_count, partitions and cursors, checked
 * against a brute-force model of the same members. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "common.h"

#define N 6000u
#define G 21u

static const char *name;
static gt_table *t;
static gt_member model[N];

static gt_member make(uint64_t i) {
    gt_member m = tc_member(i * 7919 + 11, 42);
    m.flags = (i % 2 ? GT_ONLINE : 0) | (i % 5 == 0 ? GT_ACTIVE : 0) |
              ((uint32_t)(i % 4) << 16);
    m.roles[0] = 1ull << (i % 64);
    m.roles[1] = i % 3 == 0 ? 1 : 0;
    m.roles[2] = m.roles[3] = 0;
    m.worker = (uint32_t)(i % 6);
    return m;
}

static void setup(void) {
    name = tc_name("scan");
    t = tc_open(name, 4 * N, 16, 8);
    for (uint64_t i = 0; i < N; i++) {
        model[i] = make(i);
        uint64_t p = model[i].user_id ^ 0x5555;
        cr_assert_eq(gt_insert(t, G, &model[i], &p), 0);
    }
}
static void teardown(void) {
    tc_drop(t, name);
}
TestSuite(scan, .init = setup, .fini = teardown);

static bool model_match(const gt_member *m, const gt_filter *f) {
    if (!f)
        return true;
    if ((m->flags & f->flags_set) != f->flags_set || (m->flags & f->flags_clear))
        return false;
    if (f->match_worker && m->worker != f->worker)
        return false;
    uint64_t any = 0, want = 0;
    for (int i = 0; i < 4; i++) {
        any |= m->roles[i] & f->roles_any[i];
        want |= f->roles_any[i];
    }
    return !want || any;
}

static int64_t index_of(uint64_t uid) {
    if (uid < 11 || (uid - 11) % 7919)
        return -1;
    uint64_t i = (uid - 11) / 7919;
    return i < N ? (int64_t)i : -1;
}

struct seen {
    uint8_t count[N];
    uint64_t total, bad;
};

static int collect(void *ctx, const gt_member *m, const void *payload) {
    struct seen *s = ctx;
    int64_t i = index_of(m->user_id);
    uint64_t p;
    memcpy(&p, payload, 8);
    if (i < 0 || memcmp(m, &model[i], sizeof *m) != 0 ||
        p != (m->user_id ^ 0x5555))
        s->bad++;
    else
        s->count[i]++;
    s->total++;
    return 0;
}

static void check_filter(const gt_filter *f) {
    struct seen *s = calloc(1, sizeof *s);
    cr_assert_eq(gt_select(t, G, f, 0, 1, collect, s), 0);
    cr_assert_eq(s->bad, 0, "visited a member that does not match its model");
    uint64_t want = 0;
    for (uint64_t i = 0; i < N; i++) {
        bool m = model_match(&model[i], f);
        want += m;
        cr_assert_eq(s->count[i], m ? 1 : 0, "member %lu visited %u times",
                     (unsigned long)i, s->count[i]);
    }
    uint64_t c = 0;
    cr_assert_eq(gt_select_count(t, G, f, 0, 1, &c), 0);
    cr_assert_eq(c, want, "count %lu, want %lu", (unsigned long)c,
                 (unsigned long)want);
    free(s);
}

Test(scan, filters_match_the_model) {
    check_filter(NULL);
    check_filter(&(gt_filter){0});
    check_filter(&(gt_filter){.flags_set = GT_ONLINE});
    check_filter(&(gt_filter){.flags_set = GT_ACTIVE});
    check_filter(&(gt_filter){.flags_set = GT_ACTIVE | GT_ONLINE});
    check_filter(&(gt_filter){.flags_set = GT_ACTIVE, .flags_clear = GT_ONLINE});
    check_filter(&(gt_filter){.flags_clear = GT_ACTIVE});
    check_filter(&(gt_filter){.flags_set = 0x00010000u});
    check_filter(&(gt_filter){.flags_set = GT_ACTIVE, .match_worker = 1, .worker = 3});
    check_filter(&(gt_filter){.match_worker = 1, .worker = 0});
    check_filter(&(gt_filter){.match_worker = 1, .worker = 99});
    check_filter(&(gt_filter){.roles_any = {0xF}});
    check_filter(&(gt_filter){.roles_any = {0, 1}});
    check_filter(&(gt_filter){.flags_set = GT_ACTIVE, .roles_any = {0x8000000000000001ull}});
    check_filter(&(gt_filter){.roles_any = {0, 0, 0, 1}}); /* nobody */
}

Test(scan, partitions_are_disjoint_and_complete) {
    const uint32_t parts[] = {2, 3, 7, 64};
    const gt_filter *filters[] = {NULL, &(gt_filter){.flags_set = GT_ACTIVE}};
    for (size_t fi = 0; fi < 2; fi++)
        for (size_t pi = 0; pi < 4; pi++) {
            struct seen *s = calloc(1, sizeof *s);
            uint64_t sum = 0;
            for (uint32_t p = 0; p < parts[pi]; p++) {
                uint64_t before = s->total, c = 0;
                cr_assert_eq(gt_select(t, G, filters[fi], p, parts[pi], collect, s), 0);
                cr_assert_eq(gt_select_count(t, G, filters[fi], p, parts[pi], &c), 0);
                cr_assert_eq(c, s->total - before, "count of partition %u", p);
                sum += c;
            }
            uint64_t all = 0;
            cr_assert_eq(gt_select_count(t, G, filters[fi], 0, 1, &all), 0);
            cr_assert_eq(sum, all, "partition counts add up to the guild's");
            cr_assert_eq(s->bad, 0);
            for (uint64_t i = 0; i < N; i++)
                cr_assert_eq(s->count[i], model_match(&model[i], filters[fi]),
                             "P=%u member %lu seen %u times", parts[pi],
                             (unsigned long)i, s->count[i]);
            free(s);
        }
}

struct part_of {
    uint8_t part[N];
    uint32_t cur;
};
static int mark_part(void *ctx, const gt_member *m, const void *p) {
    (void)p;
    struct part_of *s = ctx;
    s->part[index_of(m->user_id)] = (uint8_t)(s->cur + 1);
    return 0;
}
static int mark_part_fan(void *ctx, uint32_t w, const gt_recipient *r,
                         size_t n) {
    (void)w;
    struct part_of *s = ctx;
    for (size_t i = 0; i < n; i++)
        if (s->part[index_of(r[i].user_id)] != s->cur + 1)
            return 1;
    return 0;
}

Test(scan, fanout_and_select_agree_on_partitions) {
    struct part_of *s = calloc(1, sizeof *s);
    gt_filter f = {.flags_set = GT_ACTIVE};
    for (s->cur = 0; s->cur < 5; s->cur++)
        cr_assert_eq(gt_select(t, G, NULL, s->cur, 5, mark_part, s), 0);
    for (s->cur = 0; s->cur < 5; s->cur++)
        cr_assert_eq(gt_fanout(t, G, &f, s->cur, 5, mark_part_fan, s), 0,
                     "fanout partition %u holds users select put elsewhere",
                     s->cur);
    free(s);
}

static int stop_at_3(void *ctx, const gt_member *m, const void *p) {
    (void)m, (void)p;
    return ++*(int *)ctx == 3 ? 77 : 0;
}

Test(scan, errors_and_stop) {
    int n = 0;
    cr_assert_eq(gt_select(t, G, NULL, 0, 1, stop_at_3, &n), 77);
    cr_assert_eq(n, 3);
    uint64_t c;
    cr_assert_eq(gt_select(NULL, G, NULL, 0, 1, stop_at_3, &n), GT_EINVAL);
    cr_assert_eq(gt_select(t, G, NULL, 0, 1, NULL, &n), GT_EINVAL);
    cr_assert_eq(gt_select(t, G, NULL, 3, 3, stop_at_3, &n), GT_EINVAL);
    cr_assert_eq(gt_select(t, 999, NULL, 0, 1, stop_at_3, &n), GT_ENOENT);
    cr_assert_eq(gt_select_count(t, G, NULL, 0, 1, NULL), GT_EINVAL);
    cr_assert_eq(gt_select_count(NULL, G, NULL, 0, 1, &c), GT_EINVAL);
    cr_assert_eq(gt_select_count(t, G, NULL, 5, 2, &c), GT_EINVAL);
    cr_assert_eq(gt_select_count(t, 999, NULL, 0, 1, &c), GT_ENOENT);
    cr_assert_eq(gt_select_count(t, 999, &(gt_filter){.roles_any = {1}}, 0, 1, &c),
                 GT_ENOENT);
    /* nparts 0 and 1 both mean the whole guild */
    cr_assert_eq(gt_select_count(t, G, &(gt_filter){.roles_any = {~0ull}}, 0, 0, &c), 0);
    cr_assert_eq(c, N);
}

struct nest {
    gt_table *t;
    uint64_t inner, outer;
};
static int inner_visit(void *ctx, const gt_member *m, const void *p) {
    (void)m, (void)p;
    ((struct nest *)ctx)->inner++;
    return 0;
}
static int outer_visit(void *ctx, const gt_member *m, const void *p) {
    (void)p;
    struct nest *s = ctx;
    if (s->outer++ % 1000 == 0) {
        cr_assert_eq(gt_lookup(s->t, G, m->user_id, NULL, NULL), 0);
        cr_assert_eq(gt_select(s->t, G, &(gt_filter){.flags_set = GT_ACTIVE},
                               0, 1, inner_visit, s), 0);
    }
    return 0;
}

Test(scan, callbacks_may_read) {
    struct nest s = {t, 0, 0};
    cr_assert_eq(gt_select(t, G, NULL, 0, 1, outer_visit, &s), 0);
    cr_assert_eq(s.outer, N);
    cr_assert_eq(s.inner, (N + 999) / 1000 * (N / 5));
}

/* ---- cursors ---- */

static void iterate_all(size_t page, const gt_filter *f, struct seen *s) {
    gt_cursor c;
    gt_member *out = calloc(page, sizeof *out);
    uint64_t *pay = calloc(page, 8);
    size_t n;
    cr_assert_eq(gt_iter_first(t, G, f, &c, out, pay, page, &n), 0);
    uint64_t last_page = 0;
    while (n) {
        cr_assert(n <= page);
        for (size_t i = 0; i < n; i++)
            collect(s, &out[i], &pay[i]);
        gt_cursor copy = c; /* a cursor is a plain value */
        cr_assert_eq(gt_iter_next(t, &copy, f, out, pay, page, &n), 0);
        c = copy;
        cr_assert(++last_page < N + 2, "iteration does not end");
    }
    cr_assert_eq(gt_iter_next(t, &c, f, out, pay, page, &n), 0);
    cr_assert_eq(n, 0, "a finished cursor stays finished");
    free(out);
    free(pay);
}

Test(scan, cursor_pages_cover_the_guild_once) {
    const size_t pages[] = {1, 7, 64, 1000, 100000};
    for (size_t k = 0; k < 5; k++) {
        struct seen *s = calloc(1, sizeof *s);
        iterate_all(pages[k], NULL, s);
        cr_assert_eq(s->bad, 0);
        for (uint64_t i = 0; i < N; i++)
            cr_assert_eq(s->count[i], 1, "page %zu: member %lu seen %u times",
                         pages[k], (unsigned long)i, s->count[i]);
        free(s);
    }
    struct seen *s = calloc(1, sizeof *s);
    gt_filter f = {.flags_set = GT_ONLINE, .roles_any = {0xFF}};
    iterate_all(13, &f, s);
    for (uint64_t i = 0; i < N; i++)
        cr_assert_eq(s->count[i], model_match(&model[i], &f));
    free(s);
}

Test(scan, cursor_survives_rebuilds) {
    /* Page slowly while the guild grows through rebuilds: every original
     * member is still returned exactly once. */
    struct seen *s = calloc(1, sizeof *s);
    gt_cursor c;
    gt_member out[50];
    size_t n, pages = 0;
    gt_guild_stat st0, st;
    gt_guild_info(t, G, &st0);
    cr_assert_eq(gt_iter_first(t, G, NULL, &c, out, NULL, 50, &n), 0);
    uint64_t extra = 0;
    while (n) {
        for (size_t i = 0; i < n; i++) {
            int64_t k = index_of(out[i].user_id);
            if (k >= 0)
                s->count[k]++;
        }
        if (++pages % 10 == 0 && extra < 12000) {
            for (int j = 0; j < 2000; j++, extra++) {
                gt_member m = tc_member(1000000000ull + extra, 1);
                cr_assert_eq(gt_insert(t, G, &m, NULL), 0);
            }
        }
        cr_assert_eq(gt_iter_next(t, &c, NULL, out, NULL, 50, &n), 0);
    }
    gt_guild_info(t, G, &st);
    cr_assert_neq(st.capacity, st0.capacity, "the storage was rebuilt");
    for (uint64_t i = 0; i < N; i++)
        cr_assert_eq(s->count[i], 1, "member %lu seen %u times",
                     (unsigned long)i, s->count[i]);
    free(s);
}

Test(scan, cursor_errors) {
    gt_cursor c;
    gt_member out[4];
    size_t n;
    cr_assert_eq(gt_iter_first(NULL, G, NULL, &c, out, NULL, 4, &n), GT_EINVAL);
    cr_assert_eq(gt_iter_first(t, G, NULL, NULL, out, NULL, 4, &n), GT_EINVAL);
    cr_assert_eq(gt_iter_first(t, G, NULL, &c, NULL, NULL, 4, &n), GT_EINVAL);
    cr_assert_eq(gt_iter_first(t, G, NULL, &c, out, NULL, 4, NULL), GT_EINVAL);
    cr_assert_eq(gt_iter_first(t, G, NULL, &c, out, NULL, 0, &n), GT_EINVAL);
    cr_assert_eq(gt_iter_first(t, 12345, NULL, &c, out, NULL, 4, &n), GT_ENOENT);
    gt_cursor blank = {0};
    cr_assert_eq(gt_iter_next(t, &blank, NULL, out, NULL, 4, &n), GT_EINVAL,
                 "cursor never started");
    cr_assert_eq(gt_iter_first(t, G, NULL, &c, out, NULL, 4, &n), 0);
    gt_cursor bad = c;
    bad.state |= 0x100;
    cr_assert_eq(gt_iter_next(t, &bad, NULL, out, NULL, 4, &n), GT_EINVAL);
    cr_assert_eq(gt_guild_delete(t, G), 0);
    cr_assert_eq(gt_iter_next(t, &c, NULL, out, NULL, 4, &n), GT_ENOENT);
}

Test(scan, empty_and_deleted_guild) {
    cr_assert_eq(gt_guild_reserve(t, 77, 10), 0);
    uint64_t c = 9;
    cr_assert_eq(gt_select_count(t, 77, &(gt_filter){.roles_any = {1}}, 0, 1, &c), 0);
    cr_assert_eq(c, 0);
    gt_cursor cur;
    gt_member out[4];
    size_t n = 9;
    cr_assert_eq(gt_iter_first(t, 77, NULL, &cur, out, NULL, 4, &n), 0);
    cr_assert_eq(n, 0);
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, 78, &m, NULL), 0);
    cr_assert_eq(gt_delete(t, 78, 1), 0);
    cr_assert_eq(gt_select_count(t, 78, NULL, 0, 1, &c), 0);
    cr_assert_eq(c, 0, "an emptied guild remains, empty");
}

struct del_ctx {
    gt_table *t;
    uint64_t seen;
};
static int delete_midway(void *ctx, const gt_member *m, const void *p) {
    (void)m, (void)p;
    struct del_ctx *d = ctx;
    if (d->seen++ == 10)
        cr_assert_eq(gt_guild_delete(d->t, G), 0);
    return 0;
}

Test(scan, guild_deleted_during_scan) {
    /* The scan keeps the members it started with. */
    struct del_ctx d = {t, 0};
    cr_assert_eq(gt_select(t, G, NULL, 0, 1, delete_midway, &d), 0);
    cr_assert_eq(d.seen, N);
    cr_assert_eq(gt_lookup(t, G, model[0].user_id, NULL, NULL), GT_ENOENT);
}
