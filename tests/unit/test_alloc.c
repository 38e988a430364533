/* test_alloc.c - the heap: a full file system is an error code (never
 * SIGBUS) and leaves the table consistent and writable again after deletes;
 * freed guilds give their memory back. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common.h"

static char mnt[64];
static bool mounted;

static void small_tmpfs(const char *size) {
    if (geteuid() != 0)
        cr_skip_test("needs root to mount a tmpfs");
    snprintf(mnt, sizeof mnt, "/tmp/gt-alloc-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    char opt[32];
    snprintf(opt, sizeof opt, "size=%s", size);
    if (mount("tmpfs", mnt, "tmpfs", 0, opt) != 0) {
        rmdir(mnt);
        cr_skip_test("cannot mount a tmpfs here");
    }
    mounted = true;
}
static void cleanup(void) {
    if (mounted) {
        umount2(mnt, MNT_DETACH);
        rmdir(mnt);
        mounted = false;
    }
}
TestSuite(alloc, .fini = cleanup);

static gt_table *open_in(const char *name, uint64_t max_members) {
    gt_options o = {.dir = mnt, .max_members = max_members, .max_slots = 8,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    return t;
}

static void expect_members(gt_table *t, uint64_t g, uint64_t n) {
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, g, &st), 0);
    cr_assert_eq(st.members, n);
    uint64_t c;
    cr_assert_eq(gt_select_count(t, g, &(gt_filter){.roles_any = {~0ull, ~0ull}},
                                 0, 1, &c), 0);
    cr_assert_eq(c, n, "scan finds %lu, counter says %lu", (unsigned long)c,
                 (unsigned long)n);
}

Test(alloc, full_file_system_is_enospc_not_sigbus) {
    small_tmpfs("6m");
    const char *name = "enospc";
    gt_table *t = open_in(name, 1 << 20);
    uint64_t n = 0;
    int r;
    for (;; n++) {
        gt_member m = tc_member(n, 1);
        if ((r = gt_insert(t, 1, &m, NULL)) != 0)
            break;
    }
    cr_assert_eq(r, GT_ENOSPC, "insert %lu: %s", (unsigned long)n,
                 gt_strerror(r));
    cr_assert_gt(n, 1000);
    /* the failed write changed nothing; everything before it is intact */
    expect_members(t, 1, n);
    for (uint64_t u = 0; u < n; u++) {
        gt_member got, want = tc_member(u, 1);
        cr_assert_eq(gt_lookup(t, 1, u, &got, NULL), 0);
        cr_assert_arr_eq(&got, &want, sizeof got);
    }
    /* fanout sets need memory too: activations fail cleanly */
    uint64_t active = 0;
    for (uint64_t u = 0; u < n; u++) {
        uint32_t old;
        r = gt_update_flags(t, 1, u, GT_ACTIVE, 0, &old);
        if (r)
            break;
        active++;
    }
    cr_assert_neq(r, 0, "the file system is full: activating all must fail");
    {
        cr_assert_eq(r, GT_ENOSPC, "activation: %s", gt_strerror(r));
        gt_member got;
        cr_assert_eq(gt_lookup(t, 1, active, &got, NULL), 0);
        cr_assert_eq(got.flags & GT_ACTIVE, 0, "a failed activation stuck");
    }
    gt_guild_stat st;
    cr_assert_eq(gt_guild_info(t, 1, &st), 0);
    cr_assert_eq(st.active, active);
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0, "inconsistent after ENOSPC: %lu",
                 (unsigned long)rep.violations);
    /* room again after deletes */
    for (uint64_t u = 0; u < n; u += 2)
        cr_assert_eq(gt_delete(t, 1, u), 0);
    for (uint64_t u = 0; u < n; u += 2) {
        gt_member m = tc_member(u, 2);
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0, "re-insert %lu",
                     (unsigned long)u);
    }
    expect_members(t, 1, n);
    cr_assert_eq(gt_check(t, &rep), 0);
    /* a new guild may not fit at all: still a clean error */
    gt_member m = tc_member(1, 3);
    for (uint64_t g = 100; g < 200; g++) {
        r = gt_insert(t, g, &m, NULL);
        cr_assert(r == 0 || r == GT_ENOSPC, "new guild: %s", gt_strerror(r));
        if (r)
            cr_assert_eq(gt_guild_info(t, g, &(gt_guild_stat){0}), GT_ENOENT);
    }
    gt_close(t);
    /* reopened: the same, consistent table */
    gt_options o = {.dir = mnt};
    cr_assert_eq(gt_open(name, &o, &t), 0);
    expect_members(t, 1, n);
    cr_assert_eq(gt_check(t, &rep), 0);
    gt_close(t);
    cr_assert_eq(gt_unlink(name, mnt), 0);
}

Test(alloc, deleted_guilds_return_memory) {
    const char *name = tc_name("mem");
    gt_table *t = tc_open(name, 1 << 20, 16, 0);
    gt_table_stat st0, st1, st2;
    cr_assert_eq(gt_info(t, &st0), 0);
    for (uint64_t u = 0; u < 300000; u++) {
        gt_member m = tc_member(u, 1);
        m.flags |= u % 10 == 0 ? GT_ACTIVE : 0;
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    cr_assert_eq(gt_info(t, &st1), 0);
    gt_guild_stat gs;
    cr_assert_eq(gt_guild_info(t, 1, &gs), 0);
    cr_assert_eq(st1.bytes_used, gs.bytes_used, "no leaked blocks");
    cr_assert_lt(st1.bytes_per_member, 110.0, "%.1f bytes per member",
                 st1.bytes_per_member);
    /* growth went through many storages; only the last is resident */
    cr_assert_lt(st1.bytes_resident, st0.bytes_resident + 2 * gs.bytes_used,
                 "resident %lu for %lu used", (unsigned long)st1.bytes_resident,
                 (unsigned long)gs.bytes_used);
    cr_assert_eq(gt_guild_delete(t, 1), 0);
    cr_assert_eq(gt_info(t, &st2), 0);
    cr_assert_eq(st2.bytes_used, 0);
    cr_assert_eq(st2.members, 0);
    cr_assert_eq(st2.guilds, 0);
    cr_assert_lt(st2.bytes_resident, st0.bytes_resident + (4u << 20),
                 "resident %lu after delete (was %lu empty)",
                 (unsigned long)st2.bytes_resident,
                 (unsigned long)st0.bytes_resident);
    tc_drop(t, name);
}
