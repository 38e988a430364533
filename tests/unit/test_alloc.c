/* test_alloc.c - the heap: a full file system is an error code (never
 * SIGBUS) and leaves the table consistent and writable again after deletes;
 * freed guilds give their memory back; on a tmpfs that gives huge pages on
 * request, large guilds get them and nothing else does. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static char mnt[64];
static bool mounted;

/* Mount a tmpfs of the given options at mnt (skips the test if it cannot). */
static void tmpfs_with(const char *opt) {
    if (geteuid() != 0)
        cr_skip_test("needs root to mount a tmpfs");
    snprintf(mnt, sizeof mnt, "/tmp/gt-alloc-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, opt) != 0) {
        rmdir(mnt);
        cr_skip_test("cannot mount a tmpfs here");
    }
    mounted = true;
}
static void small_tmpfs(const char *size) {
    char opt[32];
    snprintf(opt, sizeof opt, "size=%s", size);
    tmpfs_with(opt);
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

/* Fill the tmpfs at mnt through one guild, then check every write fails
 * cleanly, nothing is lost, and deletes make room again. */
static void fill_and_recover(void) {
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

Test(alloc, full_file_system_is_enospc_not_sigbus) {
    small_tmpfs("6m");
    fill_and_recover();
}

/* The same where large blocks take huge pages first (huge_fill): a fill
 * that runs out of room leaves no pages behind for the deletes to miss. */
Test(alloc, full_file_system_with_huge_pages) {
    tmpfs_with("size=6m,huge=advise");
    fill_and_recover();
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

/* kB of this process's shared memory mapped as 2 MiB pages */
static long pmd_mapped_kb(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    cr_assert_not_null(f);
    char line[256];
    long kb = 0, v;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "ShmemPmdMapped: %ld", &v) == 1 ||
            sscanf(line, "FilePmdMapped: %ld", &v) == 1)
            kb += v;
    fclose(f);
    return kb;
}

/* Whether the kernel gives a file of mnt a 2 MiB page through a mapping
 * marked MADV_HUGEPAGE at all (memory may be too fragmented for one). */
static bool kernel_gives_huge_pages(void) {
    char path[96];
    snprintf(path, sizeof path, "%s/probe", mnt);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 4 << 20), 0);
    long before = pmd_mapped_kb();
    void *p = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(p, MAP_FAILED);
    bool yes = madvise(p, 4 << 20, MADV_HUGEPAGE) == 0 &&
               madvise(p, 4 << 20, MADV_POPULATE_WRITE) == 0 &&
               pmd_mapped_kb() > before;
    munmap(p, 4 << 20);
    close(fd);
    unlink(path);
    return yes;
}

static uint64_t lookup_all(gt_table *t, uint64_t n) {
    uint64_t found = 0;
    for (uint64_t u = 0; u < n; u++) {
        gt_member got;
        found += gt_lookup(t, 1, u, &got, NULL) == 0 && tc_member_whole(&got);
    }
    return found;
}

/* A table at mnt with guild 1 of n members (reserved first), each looked
 * up once so that this process maps all of its storage; *empty (may be
 * NULL): the table's figures before the guild. */
static gt_table *large_guild(const char *name, uint64_t n,
                             gt_table_stat *empty) {
    gt_table *t = open_in(name, n + n / 4);
    if (empty)
        cr_assert_eq(gt_info(t, empty), 0);
    cr_assert_eq(gt_guild_reserve(t, 1, n), 0);
    for (uint64_t u = 0; u < n; u++) {
        gt_member m = tc_member(u, 1);
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    cr_assert_eq(lookup_all(t, n), n);
    return t;
}

/* On a tmpfs that gives huge pages on request (huge=advise), a large
 * guild's storage gets them, and every process maps them as such (each a
 * TLB entry for 512 pages); the sparse regions do not, so a table of many
 * small guilds stays small there; and a deleted guild's memory comes
 * back. On the default mount (huge=never) nothing is mapped so. */
Test(alloc, huge_pages_on_request_for_large_guilds) {
    tmpfs_with("size=512m,huge=advise");
    if (!kernel_gives_huge_pages())
        cr_skip_test("the kernel gives no huge pages to this tmpfs");
    enum { N = 300000 };
    long base = pmd_mapped_kb();
    gt_table_stat st0, st1, st2;
    gt_table *t = large_guild("huge", N, &st0);
    gt_guild_stat gs;
    cr_assert_eq(gt_guild_info(t, 1, &gs), 0);
    long mine = pmd_mapped_kb() - base;
    /* the storage's whole 2 MiB pages: all but at most one of its pages */
    cr_assert_geq(mine * 1024l, (long)gs.bytes_used - (4l << 20),
                  "%ld kB mapped as 2 MiB pages for a storage of %lu bytes",
                  mine, (unsigned long)gs.bytes_used);
    /* another process, which marks nothing, maps them so too */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        gt_options o = {.dir = mnt};
        gt_table *r;
        long kb = -1;
        if (gt_open("huge", &o, &r) == 0 && lookup_all(r, N) == N)
            kb = pmd_mapped_kb();
        _exit(write(fds[1], &kb, sizeof kb) == sizeof kb ? 0 : 1);
    }
    long theirs = 0;
    cr_assert_eq(read(fds[0], &theirs, sizeof theirs), (ssize_t)sizeof theirs);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
    cr_assert_geq(theirs, mine, "the reader mapped %ld kB as 2 MiB pages, "
                  "the writer %ld", theirs, mine);
    /* the memory comes back with the guild */
    cr_assert_eq(gt_info(t, &st1), 0);
    cr_assert_eq(gt_guild_delete(t, 1), 0);
    cr_assert_eq(gt_info(t, &st2), 0);
    cr_assert_lt(st2.bytes_resident, st0.bytes_resident + (4u << 20),
                 "resident %lu after delete (%lu before the guild, %lu with)",
                 (unsigned long)st2.bytes_resident,
                 (unsigned long)st0.bytes_resident,
                 (unsigned long)st1.bytes_resident);
    gt_close(t);
    cr_assert_eq(gt_unlink("huge", mnt), 0);

    /* many small guilds: nothing large, nothing huge, little memory */
    gt_options o = {.dir = mnt, .max_members = 1000, .max_guilds = 1u << 24,
                    .flags = GT_CREATE | GT_EXCL};
    cr_assert_eq(gt_open("many", &o, &t), 0);
    for (uint64_t g = 1; g <= 50; g++)
        for (uint64_t u = 1; u <= 10; u++) {
            gt_member m = tc_member(u, g);
            cr_assert_eq(gt_insert(t, g * 7919, &m, NULL), 0);
        }
    cr_assert_eq(gt_info(t, &st1), 0);
    cr_assert_lt(st1.bytes_resident, 32u << 20, "resident %lu",
                 (unsigned long)st1.bytes_resident);
    gt_close(t);
    cr_assert_eq(gt_unlink("many", mnt), 0);
}

/* The default mount gives none: the large guild's pages stay 4 KiB. */
Test(alloc, no_huge_pages_unless_on_request) {
    tmpfs_with("size=512m,huge=never");
    long base = pmd_mapped_kb();
    gt_table *t = large_guild("small", 300000, NULL);
    cr_assert_eq(pmd_mapped_kb(), base);
    gt_close(t);
    cr_assert_eq(gt_unlink("small", mnt), 0);
}
