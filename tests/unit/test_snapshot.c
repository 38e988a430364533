/* test_snapshot.c - gt_snapshot / gt_restore and their one-guild forms:
 * exact round trips, every documented error, damaged, truncated and forged
 * files, cancellation, and crashes (real SIGKILLs) mid-snapshot and
 * mid-restore. Concurrent writers: test_snapshot_live.c. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "snapcommon.h"

static char dir[128], path[256], name[128];
static gt_table *t;

static void setup(void) {
    snprintf(dir, sizeof dir, "/dev/shm/gt-snaptest-%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/snap.gts", dir);
    snprintf(name, sizeof name, "%s", tc_name("snap"));
    t = tc_open(name, 400000, 64, 13);
}
static void teardown(void) {
    tc_drop(t, name);
    sc_rmdir(dir);
}
TestSuite(snapshot, .init = setup, .fini = teardown);

/* A restored copy of path under a new name; asserts it worked. */
static gt_table *restored(const char *p, char *out, size_t n) {
    snprintf(out, n, "%s", tc_name("restored"));
    int r = gt_restore(p, out, NULL, NULL, NULL);
    cr_assert_eq(r, 0, "gt_restore: %s", gt_strerror(r));
    gt_table *c;
    cr_assert_eq(gt_open(out, NULL, &c), 0);
    return c;
}

Test(snapshot, round_trip_random_tables) {
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint64_t n = sc_fill(t, seed, 20, 6000);
        cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
        char cn[128];
        gt_table *c = restored(path, cn, sizeof cn);
        sc_assert_equal(t, c);
        gt_table_stat st;
        cr_assert_eq(gt_info(c, &st), 0);
        cr_assert_eq(st.members, n);
        cr_assert_eq(st.payload_size, 13);
        cr_assert_eq(st.max_members, 400000, "options travel with it");
        cr_assert_eq(gt_check(c, NULL), 0);
        tc_drop(c, cn);
        /* the next round changes every guild, and deletes some */
        sc_churn(t, seed);
    }
}

Test(snapshot, empty_table_and_empty_guilds) {
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    char cn[128];
    gt_table *c = restored(path, cn, sizeof cn);
    sc_assert_equal(t, c);
    tc_drop(c, cn);
    cr_assert_eq(gt_guild_reserve(t, 5, 100), 0); /* a guild of no one */
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    c = restored(path, cn, sizeof cn);
    sc_assert_equal(t, c);
    gt_guild_stat gs;
    cr_assert_eq(gt_guild_info(c, 5, &gs), 0);
    cr_assert_eq(gs.members, 0);
    tc_drop(c, cn);
}

Test(snapshot, one_guild_moves_between_tables) {
    sc_fill(t, 7, 10, 3000);
    uint64_t g = sc_some_guild(t);
    cr_assert_eq(gt_snapshot_guild(t, g, path, NULL, NULL), 0);
    char on[128];
    snprintf(on, sizeof on, "%s", tc_name("other"));
    gt_table *o = tc_open(on, 100000, 16, 13);
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(o, 999999, &m, NULL), 0); /* o has another */
    cr_assert_eq(gt_restore_guild(o, path, g, NULL, NULL), 0);
    sc_assert_guild_equal(t, o, g);
    cr_assert_eq(gt_lookup(o, 999999, 1, NULL, NULL), 0, "others untouched");
    /* already there; not in the file */
    cr_assert_eq(gt_restore_guild(o, path, g, NULL, NULL), GT_EEXIST);
    cr_assert_eq(gt_restore_guild(o, path, g + 1, NULL, NULL), GT_ENOENT);
    gt_guild_stat gs;
    cr_assert_eq(gt_guild_info(o, g + 1, &gs), GT_ENOENT, "nothing left");
    /* a whole-table snapshot holds that guild too */
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    cr_assert_eq(gt_guild_delete(o, g), 0);
    cr_assert_eq(gt_restore_guild(o, path, g, NULL, NULL), 0);
    sc_assert_guild_equal(t, o, g);
    cr_assert_eq(gt_check(o, NULL), 0);
    tc_drop(o, on);
}

Test(snapshot, read_only_handle_snapshots) {
    sc_fill(t, 3, 5, 500);
    gt_table *ro;
    gt_options o = {.flags = GT_RDONLY};
    cr_assert_eq(gt_open(name, &o, &ro), 0);
    cr_assert_eq(gt_snapshot(ro, path, NULL, NULL), 0);
    cr_assert_eq(gt_restore_guild(ro, path, 1, NULL, NULL), GT_EROFS);
    gt_close(ro);
    char cn[128];
    gt_table *c = restored(path, cn, sizeof cn);
    sc_assert_equal(t, c);
    tc_drop(c, cn);
}

Test(snapshot, argument_and_environment_errors) {
    cr_assert_eq(gt_snapshot(NULL, path, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_snapshot(t, NULL, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_snapshot_guild(t, 12345, path, NULL, NULL), GT_ENOENT);
    cr_assert_eq(access(path, F_OK), -1, "no file for a failed snapshot");
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/snap", dir);
    cr_assert_eq(gt_snapshot(t, bad, NULL, NULL), GT_ENOENT);
    cr_assert_eq(gt_restore(NULL, "x", NULL, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_restore(path, NULL, NULL, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_restore(path, "bad/name", NULL, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_restore(bad, "x", NULL, NULL, NULL), GT_ENOENT);
    cr_assert_eq(gt_restore_guild(NULL, path, 1, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_restore_guild(t, NULL, 1, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_restore_guild(t, bad, 1, NULL, NULL), GT_ENOENT);

    sc_fill(t, 9, 4, 800);
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    cr_assert_eq(gt_restore(path, name, NULL, NULL, NULL), GT_EEXIST);
    char cn[128];
    snprintf(cn, sizeof cn, "%s", tc_name("opts"));
    gt_options o = {.payload_size = 8};
    cr_assert_eq(gt_restore(path, cn, &o, NULL, NULL), GT_EMISMATCH);
    o = (gt_options){.max_members = 10};
    cr_assert_eq(gt_restore(path, cn, &o, NULL, NULL), GT_EMISMATCH);
    o = (gt_options){.max_guilds = 1};
    cr_assert_eq(gt_restore(path, cn, &o, NULL, NULL), GT_EMISMATCH);
    o = (gt_options){.flags = GT_RDONLY};
    cr_assert_eq(gt_restore(path, cn, &o, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_open(cn, NULL, &(gt_table *){0}), GT_ENOENT,
                 "a refused restore creates nothing");
    /* other options are the new table's own */
    o = (gt_options){.max_members = 300000, .dir = dir, .mode = 0640};
    cr_assert_eq(gt_restore(path, cn, &o, NULL, NULL), 0);
    gt_table *c;
    gt_options od = {.dir = dir};
    cr_assert_eq(gt_open(cn, &od, &c), 0);
    gt_table_stat st;
    cr_assert_eq(gt_info(c, &st), 0);
    cr_assert_eq(st.max_members, 300000);
    sc_assert_equal(t, c);
    gt_close(c);
    char seg[300];
    snprintf(seg, sizeof seg, "%s/guildtab.%s", dir, cn);
    struct stat sb;
    cr_assert_eq(stat(seg, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0640);
    cr_assert_eq(gt_unlink(cn, dir), 0);
    /* a payload size that does not fit the target table */
    char on[128];
    snprintf(on, sizeof on, "%s", tc_name("p0"));
    gt_table *p0 = tc_open(on, 1000, 4, 0);
    cr_assert_eq(gt_restore_guild(p0, path, sc_some_guild(t), NULL, NULL),
                 GT_EMISMATCH);
    tc_drop(p0, on);
}

struct prog {
    uint64_t calls, last_done, total;
    uint64_t cancel_at; /* return 42 at this call (0: never) */
    bool monotonic;
};
static int on_progress(void *ctx, uint64_t done, uint64_t total) {
    struct prog *p = ctx;
    p->calls++;
    if (done < p->last_done)
        p->monotonic = false;
    p->last_done = done;
    p->total = total;
    return p->cancel_at && p->calls == p->cancel_at ? 42 : 0;
}

Test(snapshot, progress_and_cancel) {
    uint64_t n = sc_fill(t, 11, 8, 40000);
    cr_assert_gt(n, 2 * 65536);
    struct prog p = {.monotonic = true};
    cr_assert_eq(gt_snapshot(t, path, on_progress, &p), 0);
    cr_assert(p.monotonic);
    cr_assert_geq(p.calls, n / 65536);
    cr_assert_eq(p.last_done, n);
    cr_assert_eq(p.total, n);
    struct stat before;
    cr_assert_eq(stat(path, &before), 0);
    /* cancelled: the previous file stays, no temporary is left */
    sc_churn(t, 11);
    p = (struct prog){.cancel_at = 2, .monotonic = true};
    cr_assert_eq(gt_snapshot(t, path, on_progress, &p), 42);
    struct stat after;
    cr_assert_eq(stat(path, &after), 0);
    cr_assert_eq(after.st_ino, before.st_ino);
    cr_assert_eq(sc_count_files(dir), 1);
    /* the last call comes after all is written, before the rename */
    uint64_t calls = p.calls;
    p = (struct prog){.monotonic = true};
    cr_assert_eq(gt_snapshot(t, path, on_progress, &p), 0);
    calls = p.calls;
    sc_churn(t, 12);
    p = (struct prog){.cancel_at = calls, .monotonic = true};
    cr_assert_eq(gt_snapshot(t, path, on_progress, &p), 42);
    cr_assert_eq(sc_count_files(dir), 1);

    /* restore: the same, and no table appears */
    char cn[128];
    snprintf(cn, sizeof cn, "%s", tc_name("cancel"));
    p = (struct prog){.cancel_at = 2, .monotonic = true};
    cr_assert_eq(gt_restore(path, cn, NULL, on_progress, &p), 42);
    cr_assert_eq(gt_open(cn, NULL, &(gt_table *){0}), GT_ENOENT);
    p = (struct prog){.monotonic = true};
    cr_assert_eq(gt_restore(path, cn, NULL, on_progress, &p), 0);
    cr_assert(p.monotonic);
    cr_assert_eq(p.last_done, p.total);
    cr_assert_eq(gt_unlink(cn, NULL), 0);
    uint64_t g = sc_largest_guild(t);
    char on[128];
    snprintf(on, sizeof on, "%s", tc_name("other"));
    gt_table *o = tc_open(on, 100000, 16, 13);
    p = (struct prog){.cancel_at = 1, .monotonic = true};
    cr_assert_eq(gt_restore_guild(o, path, g, on_progress, &p), 42);
    gt_guild_stat gs;
    cr_assert_eq(gt_guild_info(o, g, &gs), GT_ENOENT, "removed again");
    tc_drop(o, on);
}

/* ---- damaged and forged files ---------------------------------------------- */

/* Restore a copy of path changed by fn; returns gt_restore's result, and
 * asserts that a failed one created nothing and a successful one holds
 * exactly t. */
static int restore_changed(void (*fn)(const char *p, void *ctx), void *ctx) {
    char cp[300];
    snprintf(cp, sizeof cp, "%s/changed.gts", dir);
    sc_copy(path, cp);
    fn(cp, ctx);
    char cn[128];
    snprintf(cn, sizeof cn, "%s", tc_name("changed"));
    int r = gt_restore(cp, cn, NULL, NULL, NULL);
    gt_table *c = NULL;
    if (r) {
        cr_assert_eq(gt_open(cn, NULL, &c), GT_ENOENT);
    } else {
        cr_assert_eq(gt_open(cn, NULL, &c), 0);
        sc_assert_equal(t, c);
        tc_drop(c, cn);
    }
    unlink(cp);
    cr_assert_eq(sc_count_files(dir), 1, "restore left a file behind");
    return r;
}

static void truncate_to(const char *p, void *ctx) {
    cr_assert_eq(truncate(p, (off_t)(uintptr_t)ctx), 0);
}

Test(snapshot, truncated_files_are_refused) {
    sc_fill(t, 13, 6, 4000);
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    uint64_t size = (uint64_t)sb.st_size;
    uint64_t cuts[] = {0, 1, 100, 4096, 8191, 8192, 12288, size / 2,
                       size - 4096, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        int r = restore_changed(truncate_to, (void *)(uintptr_t)cuts[i]);
        cr_assert_eq(r, GT_ECORRUPT, "cut at %lu of %lu: %s",
                     (unsigned long)cuts[i], (unsigned long)size,
                     gt_strerror(r));
    }
}

struct flip {
    uint64_t off;
    uint8_t x;
};
static void flip_byte(const char *p, void *ctx) {
    struct flip *f = ctx;
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)f->off), 1);
    b ^= f->x;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)f->off), 1);
    close(fd);
}

/* Any byte of the file changed: the restore fails cleanly, or (a byte LMDB
 * does not use, such as free space in a page) gives back exactly t. */
Test(snapshot, damaged_bytes_never_restore_wrong_data) {
    sc_fill(t, 17, 6, 3000);
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    uint64_t rng = 99, refused = 0, tries = 400;
    for (uint64_t i = 0; i < tries; i++) {
        uint64_t at = tc_mix(rng++) % (uint64_t)sb.st_size;
        struct flip f = {at, (uint8_t)(1u << (tc_mix(rng++) % 8))};
        int r = restore_changed(flip_byte, &f);
        cr_assert(r == 0 || r == GT_ECORRUPT || r == GT_EINCOMPAT,
                  "byte %lu: %s", (unsigned long)f.off, gt_strerror(r));
        refused += r != 0;
    }
    cr_assert_gt(refused, 0);
    cr_log_info("damaged bytes: %lu of %lu refused, the rest unused",
                (unsigned long)refused, (unsigned long)tries);
}

/* Forgeries made through LMDB itself, so the file's structure is sound and
 * only the snapshot's own checks can refuse them. */
static void forge(const char *p, void *ctx) {
    sc_forge(p, (int)(intptr_t)ctx);
}

Test(snapshot, forged_contents_are_refused) {
    sc_fill(t, 19, 6, 2000);
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    for (int k = 0; k < SC_FORGERIES; k++) {
        int r = restore_changed(forge, (void *)(intptr_t)k);
        cr_assert_eq(r, k == SC_FORGE_NONE      ? 0
                        : k == SC_FORGE_VERSION ? GT_EINCOMPAT
                                                : GT_ECORRUPT,
                     "forgery %d (%s): %s", k, sc_forgery_name(k),
                     gt_strerror(r));
    }
}

Test(snapshot, not_a_snapshot) {
    const char *junk[] = {"", "hello", NULL};
    char p[300];
    snprintf(p, sizeof p, "%s/junk", dir);
    for (int i = 0; junk[i]; i++) {
        FILE *f = fopen(p, "w");
        fputs(junk[i], f);
        fclose(f);
        cr_assert_eq(gt_restore(p, "x-junk", NULL, NULL, NULL), GT_ECORRUPT);
    }
    /* a sound LMDB file without our databases */
    unlink(p);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
    cr_assert_eq(mdb_env_open(env, p, MDB_NOSUBDIR | MDB_NOLOCK, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "other", MDB_CREATE, &dbi), 0);
    MDB_val k = {1, "k"}, v = {1, "v"};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    cr_assert_eq(gt_restore(p, "x-junk", NULL, NULL, NULL), GT_ECORRUPT);
    /* a directory */
    cr_assert_eq(gt_restore(dir, "x-junk", NULL, NULL, NULL), GT_ECORRUPT);
    unlink(p);
}

/* ---- crashes ----------------------------------------------------------------- */

static int die_at; /* progress calls before the child kills itself */
static int die_progress(void *ctx, uint64_t done, uint64_t total) {
    (void)ctx, (void)done, (void)total;
    if (--die_at == 0)
        raise(SIGKILL);
    return 0;
}
static int snapshot_and_die(void *arg) {
    (void)arg;
    gt_table *c = tc_child_open(name, NULL);
    int r = gt_snapshot(c, path, die_progress, NULL);
    return 10 - r; /* status: what it returned, had it not died */
}
static char restore_name[128];
static int restore_and_die(void *arg) {
    (void)arg;
    int r = gt_restore(path, restore_name, NULL, die_progress, NULL);
    return 10 - r;
}
static int count_progress(void *ctx, uint64_t done, uint64_t total) {
    (void)done, (void)total;
    ++*(int *)ctx;
    return 0;
}
/* How many times a snapshot of t (or a restore of path) calls progress. */
static int progress_calls(bool restore) {
    int n = 0;
    char p[300], cn[128];
    snprintf(p, sizeof p, "%s/count.gts", dir);
    snprintf(cn, sizeof cn, "%s", tc_name("count"));
    if (restore) {
        cr_assert_eq(gt_restore(path, cn, NULL, count_progress, &n), 0);
        cr_assert_eq(gt_unlink(cn, NULL), 0);
    } else {
        cr_assert_eq(gt_snapshot(t, p, count_progress, &n), 0);
        unlink(p);
    }
    return n;
}

static void killed(pid_t p) {
    int st;
    cr_assert_eq(waitpid(p, &st, 0), p);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
}

Test(snapshot, sigkill_mid_snapshot_keeps_the_previous_one) {
    sc_fill(t, 23, 8, 40000);
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    char old[128];
    gt_table *before = restored(path, old, sizeof old);
    sc_churn(t, 23);
    int calls = progress_calls(false);
    cr_assert_geq(calls, 2);
    for (int at = 1; at <= calls; at++) {
        die_at = at;
        killed(tc_spawn(snapshot_and_die, NULL));
        cr_assert_eq(sc_count_files(dir), 2, "the dead one's temporary");
        char cn[128];
        gt_table *c = restored(path, cn, sizeof cn);
        sc_assert_equal(before, c);
        tc_drop(c, cn);
    }
    /* the next snapshot clears what the dead left, and is the new state */
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    cr_assert_eq(sc_count_files(dir), 1);
    char cn[128];
    gt_table *c = restored(path, cn, sizeof cn);
    sc_assert_equal(t, c);
    tc_drop(c, cn);
    tc_drop(before, old);
}

Test(snapshot, sigkill_mid_restore_creates_nothing) {
    sc_fill(t, 29, 8, 40000);
    cr_assert_eq(gt_snapshot(t, path, NULL, NULL), 0);
    snprintf(restore_name, sizeof restore_name, "%s", tc_name("dying"));
    int calls = progress_calls(true);
    cr_assert_geq(calls, 2);
    char left[64], before[64] = "";
    for (int at = 1; at <= calls; at++) {
        die_at = at;
        pid_t dead = tc_spawn(restore_and_die, NULL);
        killed(dead);
        cr_assert_eq(gt_open(restore_name, NULL, &(gt_table *){0}), GT_ENOENT);
        snprintf(left, sizeof left, "guildtab.restore-%d-", (int)dead);
        cr_assert_eq(sc_count_prefix("/dev/shm", left), 1, "the dead one's work");
        if (before[0]) /* cleared by the next restore */
            cr_assert_eq(sc_count_prefix("/dev/shm", before), 0);
        snprintf(before, sizeof before, "%s", left);
    }
    cr_assert_eq(gt_restore(path, restore_name, NULL, NULL, NULL), 0);
    cr_assert_eq(sc_count_prefix("/dev/shm", before), 0, "cleared");
    gt_table *c;
    cr_assert_eq(gt_open(restore_name, NULL, &c), 0);
    sc_assert_equal(t, c);
    tc_drop(c, restore_name);
}
