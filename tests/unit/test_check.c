/* test_check.c - gt_check finds nothing wrong in tables the library built,
 * whatever they went through, and finds each kind of damage done to one. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "internal.h"

static const char *name;
static gt_table *t;

struct msgs {
    char text[8192];
};
static void collect(void *ctx, const char *what) {
    struct msgs *m = ctx;
    size_t n = strlen(m->text);
    snprintf(m->text + n, sizeof m->text - n, "%s\n", what);
}

/* Check t; expect clean, or a violation whose text contains want. */
static void expect(const char *want) {
    struct msgs m = {{0}};
    gt_check_report rep = {.fn = collect, .ctx = &m};
    int r = gt_check(t, &rep);
    if (!want) {
        cr_assert_eq(r, 0, "violations in a sound table:\n%s", m.text);
        cr_assert_eq(rep.violations, 0);
        return;
    }
    cr_assert_eq(r, GT_ECORRUPT, "damage not found (want '%s')", want);
    cr_assert_gt(rep.violations, 0);
    cr_assert_not_null(strstr(m.text, want), "want '%s' in:\n%s", want, m.text);
}

static void setup(void) {
    name = tc_name("check");
    t = tc_open(name, 200000, 32, 8);
}
static void teardown(void) {
    tc_drop(t, name);
}
TestSuite(check, .init = setup, .fini = teardown);

/* Guilds of several sizes, active members, deletes, a deleted guild. */
static void workload(void) {
    for (uint64_t g = 1; g <= 5; g++)
        for (uint64_t u = 0; u < g * 3000; u++) {
            gt_member m = tc_member(u, g);
            m.flags |= u % 7 == 0 ? GT_ACTIVE : 0;
            cr_assert_eq(gt_insert(t, g, &m, &u), 0);
        }
    for (uint64_t u = 0; u < 15000; u += 3)
        cr_assert_eq(gt_delete(t, 5, u), 0);
    for (uint64_t u = 1; u < 9000; u += 5)
        cr_assert_eq(gt_update_flags(t, 3, u, GT_ACTIVE, 0, NULL), 0);
    cr_assert_eq(gt_guild_delete(t, 2), 0);
}

Test(check, sound_tables_check_clean) {
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0, "empty table");
    cr_assert_eq(gt_check(t, NULL), 0, "NULL report");
    cr_assert_eq(gt_check(NULL, &rep), GT_EINVAL);
    workload();
    expect(NULL);
    cr_assert_eq(gt_check(t, &rep), 0);
    cr_assert_eq(rep.guilds, 4);
    cr_assert_eq(rep.members, 3000 + 9000 + 12000 + 10000);
    cr_assert_gt(rep.blocks, 8);
    /* shrink a guild to nothing and grow another: still sound */
    for (uint64_t u = 0; u < 3000; u++)
        cr_assert_eq(gt_delete(t, 1, u), 0);
    for (uint64_t u = 20000; u < 40000; u++) {
        gt_member m = tc_member(u, 4);
        cr_assert_eq(gt_insert(t, 4, &m, NULL), 0);
    }
    expect(NULL);
}

/* The storage and slot of a member, white-box. */
static struct gt_rec *rec_of(uint64_t g, uint64_t uid, struct gt_store **stp,
                             uint64_t *slotp, uint32_t *capp) {
    struct gt_guild *gg = gt_guild_lookup(t, g);
    cr_assert_not_null(gg);
    struct gt_store *st = gt_at(t, LOAD(&gg->store_off, relaxed));
    uint32_t cap = LOAD(&gg->cap, relaxed);
    uint64_t slot = gt__store_find(t, st, cap, uid, gt_hash(t, uid));
    cr_assert_neq(slot, GT_NOT_FOUND);
    *stp = st;
    *slotp = slot;
    *capp = cap;
    return gt_rec_at(t, st, cap, slot);
}

Test(check, storage_damage) {
    workload();
    struct gt_store *st;
    uint64_t slot;
    uint32_t cap;
    struct gt_rec *r = rec_of(3, 14, &st, &slot, &cap);
    a8 *cb = &gt_ctrl(st)[slot];
    uint8_t old = LOAD(cb, relaxed);
    STORE(cb, (uint8_t)((old + 1) & 0x7f), relaxed);
    expect("wrong tag");
    STORE(cb, GT_CTRL_EMPTY, relaxed);
    expect("counters say");
    expect("empty slot"); /* ... holds a live record: scans rely on it */
    STORE(cb, GT_CTRL_DEAD, relaxed);
    expect("deleted slot");
    STORE(cb, old, relaxed);
    expect(NULL);

    STORE(&r->seq, LOAD(&r->seq, relaxed) + 1, relaxed);
    expect("mid-write");
    STORE(&r->seq, LOAD(&r->seq, relaxed) + 1, relaxed);
    uint64_t w7 = LOAD(&r->w[7], relaxed);
    STORE(&r->w[7], w7 | (0x10ull << 32), relaxed);
    expect("reserved flags");
    STORE(&r->w[7], w7, relaxed);

    /* a second copy of a member further along its probe chain */
    uint64_t h = gt_hash(t, 14), e = slot;
    while (LOAD(&gt_ctrl(st)[e], relaxed) != GT_CTRL_EMPTY)
        e = e + 1 == cap ? 0 : e + 1;
    struct gt_rec *copy = gt_rec_at(t, st, cap, e);
    memcpy((void *)copy, (void *)r, t->g.stride);
    STORE(&copy->meta, GT_REC_LIVE, relaxed); /* not in the fanout set */
    STORE(&gt_ctrl(st)[e], (uint8_t)(h & 0x7f), relaxed);
    expect("stored twice");
    STORE(&gt_ctrl(st)[e], GT_CTRL_EMPTY, relaxed);
    expect("holds a live record");
    STORE(&copy->meta, 0, relaxed);
    expect(NULL);

    struct gt_guild *g = gt_guild_lookup(t, 3);
    STORE(&g->online, LOAD(&g->online, relaxed) + 1, relaxed);
    expect("counters say");
    STORE(&g->online, LOAD(&g->online, relaxed) - 1, relaxed);
    expect(NULL);
}

Test(check, fanout_set_damage) {
    workload();
    struct gt_store *st;
    uint64_t slot;
    uint32_t cap;
    struct gt_rec *r = rec_of(3, 14, &st, &slot, &cap); /* 14 % 7: active */
    uint32_t idx = (LOAD(&r->meta, relaxed) & ~GT_REC_LIVE) - 1;
    struct gt_guild *g = gt_guild_lookup(t, 3);
    struct gt_act *a = gt_at(t, LOAD(&g->act_off, relaxed));
    struct gt_chunk *ch = gt_chunk_at(a, a->nchunks, idx / GT_CHUNK_ENTRIES);
    struct gt_aent *x = &ch->e[idx % GT_CHUNK_ENTRIES];
    uint64_t sid = LOAD(&x->session_id, relaxed);
    STORE(&x->session_id, sid + 1, relaxed);
    expect("does not match the record");
    STORE(&x->session_id, sid, relaxed);
    ch->n++;
    expect("counts");
    ch->n--;
    uint32_t act_max = LOAD(&ch->act_max, relaxed);
    STORE(&ch->act_max,
          LOAD(&ch->ref[idx % GT_CHUNK_ENTRIES].act32, relaxed) - 1, relaxed);
    expect("newer than its chunk says");
    STORE(&ch->act_max, act_max, relaxed);
    uint32_t meta = LOAD(&r->meta, relaxed);
    STORE(&r->meta, GT_REC_LIVE, relaxed);
    expect("not in the fanout set");
    STORE(&r->meta, meta, relaxed);
    expect(NULL);
}

Test(check, heap_and_table_damage) {
    workload();
    struct gt_seg *s = t->seg;
    uint64_t m = LOAD(&s->members, relaxed);
    STORE(&s->members, m + 1, relaxed);
    expect("counts");
    STORE(&s->members, m, relaxed);

    uint64_t used = LOAD(&s->heap_used, relaxed);
    STORE(&s->heap_used, used + 64, relaxed);
    expect("bytes in use");
    STORE(&s->heap_used, used, relaxed);

    /* a free block marked used: leaked */
    uint32_t o = s->g.top_order;
    while (o >= GT_HEAP_MIN_ORDER && !s->free_head[o])
        o--;
    uint64_t h = s->free_head[o] - 1;
    uint8_t *meta = gt_at(t, s->g.meta_off + (h >> GT_HEAP_MIN_ORDER));
    uint8_t mm = *meta;
    *meta = (uint8_t)(0x40u | o);
    expect("leaked");
    *meta = mm;
    uint64_t head = s->free_head[o];
    s->free_head[o] = 0;
    expect("free list");
    s->free_head[o] = head;
    expect(NULL);

    /* a storage page no longer committed */
    struct gt_guild *g = gt_guild_lookup(t, 4);
    uint64_t p = LOAD(&g->store_off, relaxed) / GT_PAGE + 1;
    a64 *bits = gt_at(t, s->g.commit_off);
    atomic_fetch_and(&bits[p >> 6], ~(1ull << (p & 63)));
    expect("not committed");
    atomic_fetch_or(&bits[p >> 6], 1ull << (p & 63));
    expect(NULL);
}

/* The segment's header changed after the table was opened: gt_check says
 * so, and this handle goes on with the geometry it validated, so a header
 * rewritten to point elsewhere leads none of its reads astray. */
Test(check, header_damage) {
    workload();
    struct gt_seg *s = t->seg;
    struct gt_geom keep = s->g;
    s->g.guilds_off = s->g.file_size + GT_PAGE;
    s->g.max_guilds = UINT32_MAX;
    s->g.stride = 8;
    s->g.payload_size = 4096;
    expect("header: differs");
    gt_member m;
    uint64_t pl = 0;
    cr_assert_eq(gt_lookup(t, 4, 77, &m, &pl), 0);
    cr_assert(tc_member_whole(&m));
    cr_assert_eq(pl, 77, "the payload size of the open, not the header's");
    gt_member n = tc_member(90001, 1);
    cr_assert_eq(gt_insert(t, 1, &n, NULL), 0);
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_eq(st.max_guilds, 32);
    cr_assert_eq(st.record_bytes, keep.stride);
    s->g = keep;
    expect(NULL);
}

Test(check, directory_and_slot_damage) {
    workload();
    struct gt_seg *s = t->seg;
    struct gt_dirent *d = gt_at(t, s->g.dir_off);
    uint64_t i = gt__dir_home(t, 4);
    while (LOAD(&d[i].id, relaxed) != 4 || LOAD(&d[i].state, relaxed) != GT_DIR_LIVE)
        i = (i + 1) & (s->g.dir_cap - 1);
    STORE(&d[i].state, GT_DIR_DEAD, relaxed);
    expect("has 0 entries");
    STORE(&d[i].state, GT_DIR_LIVE, relaxed);
    expect(NULL);

    /* a pending undo log no guild's recovery will ever take up */
    uint32_t si;
    cr_assert_eq(gt__slot(t, &si), 0);
    struct gt_log *log = &gt_slot_at(t, si)->log;
    uint32_t gi = LOAD(&log->guild, relaxed);
    STORE(&log->guild, 0, relaxed);
    STORE(&log->n, 1, relaxed);
    expect("left pending");
    STORE(&log->n, 0, relaxed);
    STORE(&log->guild, gi, relaxed);
    expect(NULL);
}

/* A damaged table must not make the check itself crash: overwrite whole
 * regions with garbage and check (the fuzz test does this at random). */
Test(check, garbage_is_reported_not_followed) {
    workload();
    struct gt_guild *g = gt_guild_lookup(t, 4);
    uint8_t *blk = gt_at(t, LOAD(&g->store_off, relaxed));
    uint64_t n = gt_store_size(LOAD(&g->cap, relaxed), t->g.stride);
    uint64_t rng = 99;
    for (uint64_t i = 0; i < n; i += 8) {
        uint64_t v = tc_rand(&rng);
        memcpy(blk + i, &v, n - i < 8 ? n - i : 8);
    }
    struct gt_guild *g3 = gt_guild_lookup(t, 3);
    struct gt_act *a = gt_at(t, LOAD(&g3->act_off, relaxed));
    memset((uint8_t *)a + 64, 0xFF, 4096);
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), GT_ECORRUPT);
    cr_assert_gt(rep.violations, 10);
}

struct prog {
    uint64_t calls, last_done, last_total;
    int stop_at; /* call number that returns 7; 0: never */
};
static int on_progress(void *ctx, uint64_t done, uint64_t total) {
    struct prog *p = ctx;
    p->calls++;
    cr_assert_geq(done, p->last_done, "progress only goes forward");
    p->last_done = done;
    p->last_total = total;
    return p->stop_at && p->calls == (uint64_t)p->stop_at ? 7 : 0;
}

Test(check, progress_and_cancel) {
    /* 140,000 members: two calls on the way, one at the end */
    for (uint64_t g = 1; g <= 2; g++)
        for (uint64_t u = 0; u < 70000; u++) {
            gt_member m = tc_member(u, g);
            cr_assert_eq(gt_insert(t, g, &m, &u), 0);
        }
    struct prog p = {0};
    gt_check_report rep = {.progress = on_progress, .progress_ctx = &p};
    cr_assert_eq(gt_check(t, &rep), 0);
    cr_assert_eq(p.calls, 140000 / GT_CHECK_PROGRESS_EVERY + 1);
    cr_assert_eq(p.last_done, 140000);
    cr_assert_eq(p.last_total, 140000);
    p = (struct prog){.stop_at = 1};
    cr_assert_eq(gt_check(t, &rep), 7, "a non-zero return stops the check");
    cr_assert_eq(p.calls, 1);
    /* writers resume: the check released every lock */
    gt_member m = tc_member(999999, 1);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    cr_assert_eq(gt_check(t, NULL), 0);
}
