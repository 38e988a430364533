/*
 * test_segment.c - the table file's lifecycle: gt_open, gt_close, gt_unlink,
 * gt_info, and every error the header documents for them.
 *
 * White-box where it must be: the hostile-file tests include internal.h for
 * struct gt_geom, so they can damage one field of a valid header at a time
 * (with or without fixing its checksum) and check each damage is refused
 * with the documented code. Every open of a hostile file runs in a forked
 * child, so a crash is reported as that case failing, not as a lost test.
 *
 * Cleanup: everything a test creates (tables, hostile files, temp dirs,
 * mounts) is registered with track() and removed by the suite's fini, which
 * Criterion also runs after a failed assertion.
 */
#include <criterion/criterion.h>

#include "../../src/internal.h"
#include "common.h"

#include <xxhash.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"
#define NOBODY_ID 65534
#define DEFAULT_MEMBERS 1048576u
#define DEFAULT_GUILDS 4096u
#define DEFAULT_SLOTS 256u
#define REC_HEADER 72u /* record bytes without payload */
#define CHILD_DIED INT_MIN
#define MIB (1024ull * 1024ull)

/* ---- cleanup registry ---------------------------------------------------- */

enum { TR_TABLE, TR_MOUNT, TR_DIR };
struct tracked {
    int kind;
    char name[256];     /* TR_TABLE: table name */
    char dir[PATH_MAX]; /* TR_TABLE: its dir ("" = default); else the dir */
};
#define MAX_TRACKED 128
static struct tracked tracked[MAX_TRACKED];
static int ntracked;

static void track(int kind, const char *name, const char *dir) {
    cr_assert_lt(ntracked, MAX_TRACKED, "cleanup registry full");
    struct tracked *e = &tracked[ntracked++];
    e->kind = kind;
    snprintf(e->name, sizeof e->name, "%s", name ? name : "");
    snprintf(e->dir, sizeof e->dir, "%s", dir ? dir : "");
}

/* Tables first, then mounts, then directories (innermost last made). */
static void cleanup(void) {
    for (int i = 0; i < ntracked; i++)
        if (tracked[i].kind == TR_TABLE)
            gt_unlink(tracked[i].name,
                      tracked[i].dir[0] ? tracked[i].dir : NULL);
    for (int i = ntracked - 1; i >= 0; i--)
        if (tracked[i].kind == TR_MOUNT)
            umount2(tracked[i].dir, MNT_DETACH);
    for (int i = ntracked - 1; i >= 0; i--)
        if (tracked[i].kind == TR_DIR)
            rmdir(tracked[i].dir);
    ntracked = 0;
}

TestSuite(segment, .fini = cleanup);

/* A unique table name (in dir, NULL: /dev/shm), removed at the end. */
static const char *fresh(const char *prefix, const char *dir) {
    static char names[MAX_TRACKED][128];
    static int n;
    char *b = names[n++ % MAX_TRACKED];
    snprintf(b, sizeof names[0], "%s", tc_name(prefix));
    track(TR_TABLE, b, dir);
    return b;
}

static void path_of(char *buf, size_t len, const char *dir, const char *name) {
    snprintf(buf, len, "%s/guildtab.%s", dir ? dir : SHM_DIR, name);
}

static bool exists(const char *dir, const char *name) {
    char p[PATH_MAX];
    path_of(p, sizeof p, dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

static gt_options small_opts(uint32_t flags) {
    return (gt_options){.max_members = 1000,
                        .max_guilds = 16,
                        .max_slots = 8,
                        .payload_size = 16,
                        .flags = flags};
}

static gt_table *create(const char *name, gt_options o) {
    o.flags |= GT_CREATE | GT_EXCL;
    gt_table *t = NULL;
    int r = gt_open(name, &o, &t);
    cr_assert_eq(r, 0, "create %s: %s (%d)", name, gt_strerror(r), r);
    cr_assert_not_null(t);
    return t;
}

/* gt_open that must fail: checks *out is NULL afterwards. */
static char sentinel_byte;
static int open_fail(const char *name, const gt_options *o) {
    gt_table *t = (gt_table *)(void *)&sentinel_byte;
    int r = gt_open(name, o, &t);
    if (r == 0) {
        gt_close(t);
        return 0;
    }
    cr_assert_null(t, "gt_open failed (%s) but left *out non-NULL",
                   gt_errname(r));
    return r;
}

/* Compare two codes; the message names both. */
static void expect_code(int got, int want, const char *what) {
    cr_expect_eq(got, want, "%s: want %s (%d), got %s (%d)", what,
                 gt_errname(want), want, gt_errname(got), got);
}

/* ---- child processes ----------------------------------------------------- */

/* Run fn in a forked child; it fills up to 4 ints, which come back in vals.
 * Returns false if the child crashed or exited abnormally. */
typedef void (*child_fn)(void *arg, int vals[4]);
static bool run_child(child_fn fn, void *arg, int vals[4]) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        int v[4] = {CHILD_DIED, CHILD_DIED, CHILD_DIED, CHILD_DIED};
        fn(arg, v);
        ssize_t w = write(p[1], v, sizeof v);
        _exit(w == (ssize_t)sizeof v ? 0 : 1);
    }
    close(p[1]);
    int v[4];
    ssize_t n = read(p[0], v, sizeof v);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (n != (ssize_t)sizeof v || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFSIGNALED(st))
            cr_log_error("child died with signal %d", WTERMSIG(st));
        return false;
    }
    memcpy(vals, v, sizeof v);
    return true;
}

/* Drop root for good: groups, then gid, then uid (the only order that
 * works). Returns false if any step failed. */
static bool become_nobody(void) {
    return setgroups(0, NULL) == 0 && setgid(NOBODY_ID) == 0 &&
           setuid(NOBODY_ID) == 0 && geteuid() == NOBODY_ID;
}

/* ---- create, attach, persist -------------------------------------------- */

Test(segment, create_close_reattach) {
    const char *name = fresh("reattach", NULL);
    gt_options o = small_opts(0);
    gt_table *t = create(name, o);
    gt_close(t);
    cr_assert(exists(NULL, name));

    /* NULL opts: attach with whatever the table has */
    t = NULL;
    int r = gt_open(name, NULL, &t);
    cr_assert_eq(r, 0, "attach NULL opts: %s", gt_strerror(r));
    gt_table_stat s;
    cr_assert_eq(gt_info(t, &s), 0);
    cr_expect_eq(s.max_members, 1000);
    cr_expect_eq(s.max_guilds, 16);
    cr_expect_eq(s.max_slots, 8);
    cr_expect_eq(s.payload_size, 16);
    gt_close(t);

    /* opts with the same sizes, no flags */
    t = NULL;
    r = gt_open(name, &o, &t);
    cr_assert_eq(r, 0, "attach matching opts: %s", gt_strerror(r));
    gt_close(t);

    /* zero sizes mean "whatever the table has", one at a time */
    gt_options partial = {.payload_size = 16};
    t = NULL;
    r = gt_open(name, &partial, &t);
    cr_assert_eq(r, 0, "attach with only payload_size: %s", gt_strerror(r));
    gt_close(t);

    /* GT_CREATE without GT_EXCL on an existing table attaches to it */
    gt_options c = small_opts(GT_CREATE);
    t = NULL;
    r = gt_open(name, &c, &t);
    cr_assert_eq(r, 0, "GT_CREATE on existing: %s", gt_strerror(r));
    gt_close(t);

    /* two handles to one table in one process see each other's writes */
    gt_table *a = NULL, *b = NULL;
    cr_assert_eq(gt_open(name, NULL, &a), 0);
    cr_assert_eq(gt_open(name, NULL, &b), 0);
    gt_member m = tc_member(5, 1);
    cr_assert_eq(gt_insert(a, 9, &m, NULL), 0);
    cr_expect_eq(gt_contains(b, 9, 5), 1);
    gt_close(a);
    cr_expect_eq(gt_contains(b, 9, 5), 1, "closing a must not affect b");
    gt_close(b);
}

Test(segment, data_persists_across_close) {
    const char *name = fresh("persist", NULL);
    gt_table *t = create(name, small_opts(0));
    gt_member want = tc_member(123456789, 3);
    uint8_t pay[16];
    for (int i = 0; i < 16; i++)
        pay[i] = (uint8_t)(0xA0 + i);
    cr_assert_eq(gt_insert(t, 77, &want, pay), 0);
    gt_close(t);

    t = NULL;
    cr_assert_eq(gt_open(name, NULL, &t), 0);
    gt_member got;
    uint8_t gpay[16] = {0};
    int r = gt_lookup(t, 77, want.user_id, &got, gpay);
    cr_assert_eq(r, 0, "lookup after reopen: %s", gt_strerror(r));
    cr_expect(memcmp(&got, &want, sizeof got) == 0, "member differs");
    cr_expect(memcmp(gpay, pay, sizeof pay) == 0, "payload differs");
    gt_table_stat s;
    cr_assert_eq(gt_info(t, &s), 0);
    cr_expect_eq(s.members, 1);
    cr_expect_eq(s.guilds, 1);
    cr_expect_eq(gt_lookup(t, 77, 1, NULL, NULL), GT_ENOENT);
    gt_close(t);
}

/* ---- gt_info ------------------------------------------------------------- */

static void check_info_vs_file(const char *name, const gt_table_stat *s) {
    char p[PATH_MAX];
    path_of(p, sizeof p, NULL, name);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq(s->bytes_reserved, (uint64_t)st.st_size,
                 "bytes_reserved %llu, file size %llu",
                 (unsigned long long)s->bytes_reserved,
                 (unsigned long long)st.st_size);
    cr_expect_leq(s->bytes_resident, s->bytes_reserved,
                  "resident beyond the file");
}

Test(segment, info_echoes_options) {
    const char *name = fresh("info", NULL);
    gt_options o = {.max_members = 5000,
                    .max_guilds = 33,
                    .max_slots = 5,
                    .payload_size = 40};
    gt_table *t = create(name, o);
    gt_table_stat s;
    memset(&s, 0xFF, sizeof s);
    cr_assert_eq(gt_info(t, &s), 0);
    cr_expect_eq(s.max_members, 5000);
    cr_expect_eq(s.max_guilds, 33);
    cr_expect_eq(s.max_slots, 5);
    cr_expect_eq(s.payload_size, 40);
    cr_expect_eq(s.record_bytes, REC_HEADER + 40);
    cr_expect_eq(s.members, 0);
    cr_expect_eq(s.guilds, 0);
    cr_expect_eq(s.version, GT_FORMAT_VERSION);
    cr_expect(s.bytes_per_member == 0.0, "empty table: bytes_per_member 0");
    cr_expect_leq(s.slots_used, s.max_slots);
    check_info_vs_file(name, &s);

    for (uint64_t u = 1; u <= 10; u++) {
        gt_member m = tc_member(u, 0);
        cr_assert_eq(gt_insert(t, u % 3, &m, NULL), 0);
    }
    cr_assert_eq(gt_info(t, &s), 0);
    cr_expect_eq(s.members, 10);
    cr_expect_eq(s.guilds, 3);
    cr_expect_gt(s.bytes_used, 0);
    cr_expect(s.bytes_per_member > 0.0);
    check_info_vs_file(name, &s);
    gt_close(t);
}

Test(segment, info_defaults) {
    const char *name = fresh("defaults", NULL);
    gt_table *t = create(name, (gt_options){0});
    gt_table_stat s;
    cr_assert_eq(gt_info(t, &s), 0);
    cr_expect_eq(s.max_members, DEFAULT_MEMBERS);
    cr_expect_eq(s.max_guilds, DEFAULT_GUILDS);
    cr_expect_eq(s.max_slots, DEFAULT_SLOTS);
    cr_expect_eq(s.payload_size, 0);
    cr_expect_eq(s.record_bytes, REC_HEADER);
    check_info_vs_file(name, &s);
    gt_close(t);

    /* the same through a NULL-opts attach */
    t = NULL;
    cr_assert_eq(gt_open(name, NULL, &t), 0);
    gt_table_stat s2;
    cr_assert_eq(gt_info(t, &s2), 0);
    cr_expect_eq(s2.max_members, DEFAULT_MEMBERS);
    cr_expect_eq(s2.max_guilds, DEFAULT_GUILDS);
    cr_expect_eq(s2.max_slots, DEFAULT_SLOTS);
    cr_expect_eq(s2.bytes_reserved, s.bytes_reserved);
    gt_close(t);
}

Test(segment, info_record_bytes_rounding) {
    static const uint32_t pay[] = {0, 1, 7, 8, 9, 13, 16, 100, 1023, 1024};
    for (size_t i = 0; i < sizeof pay / sizeof pay[0]; i++) {
        const char *name = fresh("recbytes", NULL);
        gt_options o = {.max_members = 100,
                        .max_guilds = 2,
                        .max_slots = 2,
                        .payload_size = pay[i]};
        gt_table *t = create(name, o);
        gt_table_stat s;
        cr_assert_eq(gt_info(t, &s), 0);
        uint64_t want = REC_HEADER + ((pay[i] + 7u) / 8u) * 8u;
        cr_expect_eq(s.record_bytes, want, "payload %u: record_bytes %llu",
                     pay[i], (unsigned long long)s.record_bytes);
        cr_expect_eq(s.payload_size, pay[i]);
        gt_close(t);
        gt_unlink(name, NULL);
    }
}

Test(segment, info_bad_args_and_close_null) {
    gt_close(NULL); /* must be a no-op */
    gt_table_stat s;
    cr_expect_eq(gt_info(NULL, &s), GT_EINVAL);
    const char *name = fresh("infoargs", NULL);
    gt_table *t = create(name, small_opts(0));
    cr_expect_eq(gt_info(t, NULL), GT_EINVAL);
    cr_expect_eq(gt_info(t, &s), 0);
    gt_close(t);
}

/* ---- file mode ----------------------------------------------------------- */

static unsigned file_mode(const char *name) {
    char p[PATH_MAX];
    path_of(p, sizeof p, NULL, name);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p, strerror(errno));
    return (unsigned)(st.st_mode & 07777);
}

Test(segment, mode_default_0600) {
    const char *name = fresh("mode0", NULL);
    gt_close(create(name, small_opts(0)));
    cr_expect_eq(file_mode(name), 0600, "mode %o", file_mode(name));
}

Test(segment, mode_explicit) {
    static const uint32_t modes[] = {0640, 0644, 0660, 0604};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        const char *name = fresh("mode", NULL);
        gt_options o = small_opts(0);
        o.mode = modes[i];
        gt_close(create(name, o));
        cr_expect_eq(file_mode(name), modes[i], "asked %o, got %o", modes[i],
                     file_mode(name));
        /* the mode is a creation option only: attaching ignores it */
        gt_options a = {.mode = 0666};
        gt_table *t = NULL;
        cr_assert_eq(gt_open(name, &a, &t), 0);
        gt_close(t);
        cr_expect_eq(file_mode(name), modes[i], "attach changed the mode");
    }
}

/* ---- GT_EINVAL ------------------------------------------------------------ */

Test(segment, einval_out_null) {
    const char *name = fresh("outnull", NULL);
    gt_options o = small_opts(GT_CREATE);
    cr_expect_eq(gt_open(name, &o, NULL), GT_EINVAL);
    cr_expect_not(exists(NULL, name), "a failed gt_open created the table");
    cr_expect_eq(gt_open(name, NULL, NULL), GT_EINVAL);
}

Test(segment, einval_names) {
    gt_options o = small_opts(GT_CREATE);
    char n201[202], n200[201];
    memset(n201, 'a', 201);
    n201[201] = 0;
    memset(n200, 'b', 200);
    n200[200] = 0;
    static const char *bad[] = {
        "",      ".",      "..",     ".hidden", "a/b",  "/abs",
        "a b",   " a",     "a\tb",   "a\nb",    "a*b",  "a:b",
        "a\\b",  "a~b",    "a+b",    "a%b",     "a@b",  "caf\xc3\xa9",
        "a?b",   "a\x7f",  "../x",   "x/../y",  "a,b",  "a=b",
    };
    expect_code(open_fail(NULL, &o), GT_EINVAL, "NULL name");
    expect_code(open_fail(NULL, NULL), GT_EINVAL, "NULL name, NULL opts");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "name #%zu", i);
        expect_code(open_fail(bad[i], &o), GT_EINVAL, what);
        expect_code(gt_unlink(bad[i], NULL), GT_EINVAL, what);
    }
    expect_code(open_fail(n201, &o), GT_EINVAL, "201 chars");
    expect_code(gt_unlink(n201, NULL), GT_EINVAL, "unlink 201 chars");
    expect_code(gt_unlink(NULL, NULL), GT_EINVAL, "unlink NULL");
    cr_expect_not(exists(NULL, n201));

    /* 200 characters and the whole alphabet are fine */
    track(TR_TABLE, n200, NULL);
    gt_table *t = NULL;
    gt_options c = small_opts(GT_CREATE | GT_EXCL);
    int r = gt_open(n200, &c, &t);
    cr_expect_eq(r, 0, "200-char name: %s", gt_strerror(r));
    gt_close(t);
    cr_expect_eq(gt_unlink(n200, NULL), 0);

    char odd[128];
    snprintf(odd, sizeof odd, "-_%s.AZaz09", tc_name("alpha"));
    track(TR_TABLE, odd, NULL);
    t = NULL;
    r = gt_open(odd, &c, &t);
    cr_expect_eq(r, 0, "name %s: %s", odd, gt_strerror(r));
    gt_close(t);
    cr_expect_eq(gt_unlink(odd, NULL), 0);
}

Test(segment, einval_flags_and_options) {
    const char *name = fresh("badopt", NULL);
    struct {
        const char *what;
        gt_options o;
    } cases[] = {
        {"unknown flag 0x8", {.flags = GT_CREATE | 0x8u}},
        {"unknown flag 0x100", {.flags = GT_CREATE | 0x100u}},
        {"unknown flag 1<<31", {.flags = GT_CREATE | 0x80000000u}},
        {"unknown flag alone", {.flags = 0x10u}},
        {"GT_EXCL without GT_CREATE", {.flags = GT_EXCL}},
        {"GT_RDONLY with GT_CREATE", {.flags = GT_RDONLY | GT_CREATE}},
        {"GT_RDONLY|GT_CREATE|GT_EXCL",
         {.flags = GT_RDONLY | GT_CREATE | GT_EXCL}},
        {"payload 1025", {.payload_size = 1025, .flags = GT_CREATE}},
        {"payload UINT32_MAX", {.payload_size = UINT32_MAX, .flags = GT_CREATE}},
        {"max_members 2^30+1",
         {.max_members = (1ull << 30) + 1, .flags = GT_CREATE}},
        {"max_members UINT64_MAX",
         {.max_members = UINT64_MAX, .flags = GT_CREATE}},
        {"mode 010000", {.mode = 010000, .flags = GT_CREATE}},
        {"mode 0xFFFFFFFF", {.mode = 0xFFFFFFFFu, .flags = GT_CREATE}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_code(open_fail(name, &cases[i].o), GT_EINVAL, cases[i].what);
        cr_expect_not(exists(NULL, name), "%s: a table was created",
                      cases[i].what);
    }

    /* the limits themselves are accepted: validation passes, so a missing
     * table without GT_CREATE gives GT_ENOENT, not GT_EINVAL */
    gt_options ok[] = {
        {.payload_size = GT_PAYLOAD_MAX},
        {.max_members = 1ull << 30},
        {.mode = 07777},
        {.flags = GT_RDONLY},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        expect_code(open_fail(name, &ok[i]), GT_ENOENT, "limit accepted");

    /* payload 1024 really creates */
    gt_options p = {.max_members = 100,
                    .max_guilds = 2,
                    .max_slots = 2,
                    .payload_size = GT_PAYLOAD_MAX};
    gt_table *t = create(name, p);
    uint8_t big[GT_PAYLOAD_MAX], back[GT_PAYLOAD_MAX];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    gt_member m = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, 1, &m, big), 0);
    cr_assert_eq(gt_lookup(t, 1, 1, NULL, back), 0);
    cr_expect(memcmp(big, back, sizeof big) == 0);
    gt_close(t);
}

/* ---- ENOENT, EEXIST, EMISMATCH, unlink ------------------------------------ */

Test(segment, enoent) {
    const char *name = fresh("missing", NULL);
    expect_code(open_fail(name, NULL), GT_ENOENT, "attach missing, NULL opts");
    gt_options o = small_opts(0);
    expect_code(open_fail(name, &o), GT_ENOENT, "attach missing, sizes");
    o.flags = GT_RDONLY;
    expect_code(open_fail(name, &o), GT_ENOENT, "attach missing, RDONLY");
    cr_expect_not(exists(NULL, name));
    expect_code(gt_unlink(name, NULL), GT_ENOENT, "unlink missing");

    /* after unlink the name is gone */
    gt_close(create(name, small_opts(0)));
    cr_expect_eq(gt_unlink(name, NULL), 0);
    expect_code(gt_unlink(name, NULL), GT_ENOENT, "unlink twice");
    expect_code(open_fail(name, NULL), GT_ENOENT, "attach after unlink");
}

Test(segment, eexist) {
    const char *name = fresh("exist", NULL);
    gt_table *t = create(name, small_opts(0));
    gt_member m = tc_member(42, 0);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    gt_options o = small_opts(GT_CREATE | GT_EXCL);
    expect_code(open_fail(name, &o), GT_EEXIST, "CREATE|EXCL existing");
    gt_options z = {.flags = GT_CREATE | GT_EXCL};
    expect_code(open_fail(name, &z), GT_EEXIST, "CREATE|EXCL, no sizes");
    /* the existing table is untouched */
    cr_expect_eq(gt_contains(t, 1, 42), 1);
    gt_close(t);
    t = NULL;
    cr_assert_eq(gt_open(name, NULL, &t), 0);
    cr_expect_eq(gt_contains(t, 1, 42), 1);
    gt_close(t);
}

Test(segment, emismatch) {
    const char *name = fresh("mismatch", NULL);
    gt_close(create(name, small_opts(0))); /* 1000, 16, 8 slots, 16 */
    struct {
        const char *what;
        gt_options o;
    } cases[] = {
        {"payload_size", {.payload_size = 8}},
        {"payload_size larger", {.payload_size = 17}},
        {"max_members", {.max_members = 1001}},
        {"max_members smaller", {.max_members = 999}},
        {"max_guilds", {.max_guilds = 17}},
        {"max_slots", {.max_slots = 9}},
        {"all but one match",
         {.max_members = 1000, .max_guilds = 16, .max_slots = 8,
          .payload_size = 32}},
        {"with GT_CREATE", {.max_members = 2000, .flags = GT_CREATE}},
        {"with GT_RDONLY", {.max_guilds = 1, .flags = GT_RDONLY}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_code(open_fail(name, &cases[i].o), GT_EMISMATCH,
                    cases[i].what);
    /* the table is still fine with its own sizes */
    gt_table *t = NULL;
    gt_options same = small_opts(0);
    cr_expect_eq(gt_open(name, &same, &t), 0);
    gt_close(t);
}

Test(segment, unlink_while_open) {
    const char *name = fresh("unlinkopen", NULL);
    gt_table *t = create(name, small_opts(0));
    gt_member m = tc_member(1, 0);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    cr_assert_eq(gt_unlink(name, NULL), 0);
    cr_expect_not(exists(NULL, name));
    /* the open handle keeps working on the unlinked table */
    cr_expect_eq(gt_contains(t, 1, 1), 1);
    gt_member m2 = tc_member(2, 0);
    cr_expect_eq(gt_insert(t, 1, &m2, NULL), 0);
    cr_expect_eq(gt_contains(t, 1, 2), 1);
    gt_table_stat s;
    cr_expect_eq(gt_info(t, &s), 0);
    cr_expect_eq(s.members, 2);
    expect_code(open_fail(name, NULL), GT_ENOENT, "attach unlinked");

    /* a new table of the same name is a different, empty table */
    gt_table *n = create(name, small_opts(0));
    cr_expect_eq(gt_contains(n, 1, 1), 0);
    cr_expect_eq(gt_contains(t, 1, 1), 1);
    gt_close(n);
    gt_close(t);
}

/* ---- GT_EROFS ------------------------------------------------------------- */

Test(segment, erofs_readonly_handle) {
    const char *name = fresh("rdonly", NULL);
    gt_table *w = create(name, small_opts(0));
    gt_member m = tc_member(10, 1);
    uint8_t pay[16];
    memset(pay, 0x5A, sizeof pay);
    cr_assert_eq(gt_insert(w, 1, &m, pay), 0);
    gt_member m2 = tc_member(11, 1);
    cr_assert_eq(gt_insert(w, 1, &m2, NULL), 0);

    gt_table *r = NULL;
    gt_options o = {.flags = GT_RDONLY};
    cr_assert_eq(gt_open(name, &o, &r), 0);

    gt_member nm = tc_member(12, 1);
    expect_code(gt_insert(r, 1, &nm, NULL), GT_EROFS, "insert new");
    expect_code(gt_insert(r, 1, &m, NULL), GT_EROFS, "insert replace");
    expect_code(gt_insert(r, 99, &nm, NULL), GT_EROFS, "insert new guild");
    expect_code(gt_insert_new(r, 1, &nm, NULL), GT_EROFS, "insert_new");
    expect_code(gt_delete(r, 1, 10), GT_EROFS, "delete");
    expect_code(gt_update_flags(r, 1, 10, GT_ACTIVE, 0, NULL), GT_EROFS,
                "update_flags");
    expect_code(gt_update_session(r, 1, 10, 3, 4), GT_EROFS,
                "update_session");
    expect_code(gt_update_roles(r, 1, 10, (uint64_t[4]){1, 0, 0, 0}, NULL),
                GT_EROFS, "update_roles");
    expect_code(gt_guild_delete(r, 1), GT_EROFS, "guild_delete");
    expect_code(gt_guild_reserve(r, 1, 10), GT_EROFS, "guild_reserve");
    expect_code(gt_guild_reserve(r, 5, 10), GT_EROFS, "guild_reserve new");

    /* reads work */
    gt_member got;
    uint8_t gp[16];
    cr_expect_eq(gt_lookup(r, 1, 10, &got, gp), 0);
    cr_expect(memcmp(&got, &m, sizeof got) == 0);
    cr_expect(memcmp(gp, pay, sizeof gp) == 0);
    cr_expect_eq(gt_contains(r, 1, 12), 0);
    uint64_t count = 0;
    int rc = gt_select_count(r, 1, NULL, 0, 1, &count);
    cr_expect_eq(rc, 0, "select_count on RDONLY: %s", gt_strerror(rc));
    cr_expect_eq(count, 2);
    gt_table_stat s;
    cr_expect_eq(gt_info(r, &s), 0);
    cr_expect_eq(s.members, 2);
    cr_expect_eq(s.guilds, 1, "refused writes must not create guilds");

    /* nothing changed, as seen by the writer */
    cr_expect_eq(gt_lookup(w, 1, 10, &got, NULL), 0);
    cr_expect(memcmp(&got, &m, sizeof got) == 0, "refused update applied");
    cr_expect_eq(gt_contains(w, 1, 11), 1);
    cr_expect_eq(gt_contains(w, 1, 12), 0);
    cr_expect_eq(gt_guild_info(w, 5, &(gt_guild_stat){0}), GT_ENOENT);
    gt_close(r);
    gt_close(w);
}

/* ---- racing creators ------------------------------------------------------
 * RACERS children open one new name with GT_CREATE at the same moment and
 * each insert a member; WATCHERS children attach without GT_CREATE at the
 * same moment, retrying only on GT_ENOENT: a half-built table would show up
 * as any other error. The start gate is a pipe: every child blocks reading
 * it, and the parent closing the write end wakes them all at once. */

#define RACERS 8
#define WATCHERS 4
#define RACE_ROUNDS 6
#define WATCH_NS (5ull * 1000000000ull)
struct race {
    _Atomic int ready;
    int open_r[RACERS + WATCHERS];
    int insert_r[RACERS];
};

static void race_gate(struct race *sh, int gate) {
    atomic_fetch_add(&sh->ready, 1);
    char c;
    while (read(gate, &c, 1) < 0 && errno == EINTR)
        ; /* EOF: the parent released everyone at once */
}

static gt_options race_opts(uint32_t flags) {
    return (gt_options){.max_members = 1000,
                        .max_guilds = 16,
                        .max_slots = 32,
                        .payload_size = 8,
                        .flags = flags};
}

static void racer(const char *name, int i, struct race *sh, int gate,
                  uint32_t flags) {
    race_gate(sh, gate);
    gt_options o = race_opts(flags);
    gt_table *t = NULL;
    int r = gt_open(name, &o, &t);
    sh->open_r[i] = r;
    if (r == 0) {
        gt_member m = tc_member(1000u + (uint64_t)i, 5);
        uint64_t pay = 0xC0FFEE00u + (uint64_t)i;
        sh->insert_r[i] = gt_insert(t, 1, &m, &pay);
        gt_close(t);
    }
    _exit(0);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void watcher(const char *name, int i, struct race *sh, int gate) {
    race_gate(sh, gate);
    uint64_t start = now_ns();
    int r;
    do {
        gt_table *t = NULL;
        r = gt_open(name, NULL, &t);
        if (r == 0) {
            gt_table_stat s;
            r = gt_info(t, &s);
            if (r == 0 && (s.max_members != 1000 || s.payload_size != 8))
                r = INT_MIN + 1; /* attached to something half-made */
            gt_close(t);
        }
    } while (r == GT_ENOENT && now_ns() - start < WATCH_NS);
    sh->open_r[RACERS + i] = r;
    _exit(0);
}

static int count_hidden(const char *dir, const char *name) {
    char pre[300];
    snprintf(pre, sizeof pre, ".guildtab.%s.", name);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, pre, strlen(pre)) == 0)
            n++;
    closedir(d);
    return n;
}

/* One round: all children started together; returns when all are reaped. */
static void race_round(const char *name, struct race *sh, uint32_t flags) {
    memset(sh, 0, sizeof *sh);
    for (int i = 0; i < RACERS + WATCHERS; i++)
        sh->open_r[i] = CHILD_DIED;
    for (int i = 0; i < RACERS; i++)
        sh->insert_r[i] = CHILD_DIED;
    int gate[2];
    cr_assert_eq(pipe(gate), 0);
    pid_t pids[RACERS + WATCHERS];
    for (int i = 0; i < RACERS + WATCHERS; i++) {
        pids[i] = fork();
        cr_assert_neq(pids[i], -1);
        if (pids[i] == 0) {
            close(gate[1]);
            if (i < RACERS)
                racer(name, i, sh, gate[0], flags);
            watcher(name, i - RACERS, sh, gate[0]);
        }
    }
    close(gate[0]);
    while (atomic_load(&sh->ready) < RACERS + WATCHERS)
        usleep(100);
    close(gate[1]); /* everyone wakes on EOF together */
    for (int i = 0; i < RACERS + WATCHERS; i++) {
        int st = 0;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "child %d: status 0x%x", i, st);
    }
    for (int i = 0; i < WATCHERS; i++)
        cr_expect_eq(sh->open_r[RACERS + i], 0,
                     "watcher %d: attach during creation gave %s (%d)", i,
                     gt_errname(sh->open_r[RACERS + i]),
                     sh->open_r[RACERS + i]);
    cr_expect_eq(count_hidden(SHM_DIR, name), 0, "temporary files left");
}

Test(segment, racing_creators, .timeout = 60) {
    struct race *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        const char *name = fresh("race", NULL);
        race_round(name, sh, GT_CREATE);
        for (int i = 0; i < RACERS; i++) {
            cr_expect_eq(sh->open_r[i], 0, "round %d racer %d: open %s",
                         round, i, gt_errname(sh->open_r[i]));
            cr_expect_eq(sh->insert_r[i], 0, "round %d racer %d: insert %s",
                         round, i, gt_errname(sh->insert_r[i]));
        }
        gt_table *t = NULL;
        int r = gt_open(name, NULL, &t);
        cr_assert_eq(r, 0, "round %d: parent open: %s", round, gt_strerror(r));
        gt_table_stat s;
        cr_assert_eq(gt_info(t, &s), 0);
        cr_expect_eq(s.members, RACERS, "round %d: %llu members", round,
                     (unsigned long long)s.members);
        cr_expect_eq(s.guilds, 1);
        cr_expect_eq(s.payload_size, 8);
        for (int i = 0; i < RACERS; i++) {
            gt_member got, want = tc_member(1000u + (uint64_t)i, 5);
            uint64_t pay = 0;
            r = gt_lookup(t, 1, want.user_id, &got, &pay);
            cr_expect_eq(r, 0, "round %d: member of racer %d: %s", round, i,
                         gt_strerror(r));
            if (r == 0) {
                cr_expect(memcmp(&got, &want, sizeof got) == 0);
                cr_expect_eq(pay, 0xC0FFEE00u + (uint64_t)i);
            }
        }
        uint64_t count = 0;
        cr_expect_eq(gt_select_count(t, 1, NULL, 0, 1, &count), 0);
        cr_expect_eq(count, RACERS);
        gt_close(t);
        gt_unlink(name, NULL);
    }
    munmap(sh, sizeof *sh);
}

/* With GT_EXCL the race has exactly one winner; the others get GT_EEXIST. */
Test(segment, racing_creators_excl, .timeout = 60) {
    struct race *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        const char *name = fresh("racex", NULL);
        race_round(name, sh, GT_CREATE | GT_EXCL);
        int won = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            if (sh->open_r[i] == 0) {
                won++;
                winner = i;
                cr_expect_eq(sh->insert_r[i], 0);
            } else {
                cr_expect_eq(sh->open_r[i], GT_EEXIST,
                             "round %d racer %d: %s", round, i,
                             gt_errname(sh->open_r[i]));
            }
        }
        cr_expect_eq(won, 1, "round %d: %d creators won", round, won);
        gt_table *t = NULL;
        cr_assert_eq(gt_open(name, NULL, &t), 0);
        gt_table_stat s;
        cr_assert_eq(gt_info(t, &s), 0);
        cr_expect_eq(s.members, (uint64_t)won);
        if (winner >= 0)
            cr_expect_eq(gt_contains(t, 1, 1000u + (uint64_t)winner), 1);
        gt_close(t);
        gt_unlink(name, NULL);
    }
    munmap(sh, sizeof *sh);
}

/* ---- hostile files -------------------------------------------------------- */

struct open_arg {
    const char *name;
};
static void child_open(void *arg, int v[4]) {
    const struct open_arg *a = arg;
    gt_table *t = (gt_table *)(void *)&sentinel_byte;
    v[0] = gt_open(a->name, NULL, &t);
    v[1] = v[0] == 0 ? (t != NULL) : (t == NULL); /* *out contract */
    if (v[0] == 0) {
        gt_table_stat s;
        v[2] = gt_info(t, &s);
        gt_close(t);
    }
}

/* Open name in a child; the code it returned, or CHILD_DIED. */
static int open_in_child(const char *name) {
    struct open_arg a = {name};
    int v[4];
    if (!run_child(child_open, &a, v))
        return CHILD_DIED;
    cr_expect_eq(v[1], 1, "%s: *out contract broken (code %d)", name, v[0]);
    return v[0];
}

static int open_file(const char *name, int flags) {
    char p[PATH_MAX];
    path_of(p, sizeof p, NULL, name);
    int fd = open(p, flags | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "open %s: %s", p, strerror(errno));
    return fd;
}

static void write_file(const char *name, const void *buf, size_t len) {
    int fd = open_file(name, O_RDWR | O_CREAT | O_TRUNC);
    if (len)
        cr_assert_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
    close(fd);
}

/* A deterministic byte stream that never starts with the magic. */
static void fill_random(uint8_t *buf, size_t len, uint64_t seed) {
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = tc_mix(seed + i);
        memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
    }
    if (len && buf[0] == 'g')
        buf[0] = 'G';
}

Test(segment, hostile_empty_and_short) {
    const char *name = fresh("empty", NULL);
    write_file(name, NULL, 0);
    expect_code(open_in_child(name), GT_ECORRUPT, "empty file");

    /* a real header, cut short */
    struct gt_geom g;
    memset(&g, 0, sizeof g);
    memcpy(g.magic, GT_MAGIC, 8);
    g.version = GT_FORMAT_VERSION;
    static const size_t cuts[] = {1, 8, 16, 64, sizeof(struct gt_geom) - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(name, &g, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "header cut to %zu bytes", cuts[i]);
        expect_code(open_in_child(name), GT_ECORRUPT, what);
    }
    /* and an attach-with-create must not overwrite the bad file */
    gt_options c = small_opts(GT_CREATE);
    int r = open_fail(name, &c);
    cr_expect_lt(r, 0, "GT_CREATE attached to a garbage file");
    struct stat st;
    char p[PATH_MAX];
    path_of(p, sizeof p, NULL, name);
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq((size_t)st.st_size, cuts[4], "the bad file was replaced");
}

Test(segment, hostile_random_bytes) {
    const char *name = fresh("random", NULL);
    static const size_t sizes[] = {
        1,    7,    64,    sizeof(struct gt_geom) - 1, sizeof(struct gt_geom),
        4096, 4097, 65536, 2u << 20,
    };
    size_t max = 2u << 20;
    uint8_t *buf = malloc(max);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (uint64_t seed = 1; seed <= 3; seed++) {
            fill_random(buf, sizes[i], seed * 1000003u + i);
            write_file(name, buf, sizes[i]);
            char what[80];
            snprintf(what, sizeof what, "%zu random bytes, seed %llu",
                     sizes[i], (unsigned long long)seed);
            expect_code(open_in_child(name), GT_ECORRUPT, what);
        }
    }
    /* the right magic followed by garbage: refused, never trusted */
    for (uint64_t seed = 1; seed <= 4; seed++) {
        fill_random(buf, 8192, seed);
        memcpy(buf, GT_MAGIC, 8);
        write_file(name, buf, 8192);
        int r = open_in_child(name);
        cr_expect(r == GT_ECORRUPT || r == GT_EINCOMPAT,
                  "magic + garbage: got %s (%d)", gt_errname(r), r);
    }
    /* magic, version and layout_sig right, the rest garbage: checksum */
    struct gt_geom g;
    {
        const char *v = fresh("random-src", NULL);
        gt_close(create(v, small_opts(0)));
        int fd = open_file(v, O_RDONLY);
        cr_assert_eq(pread(fd, &g, sizeof g, 0), (ssize_t)sizeof g);
        close(fd);
    }
    for (uint64_t seed = 1; seed <= 4; seed++) {
        fill_random(buf, 8192, seed + 77);
        memcpy(buf, &g, offsetof(struct gt_geom, file_size));
        write_file(name, buf, 8192);
        expect_code(open_in_child(name), GT_ECORRUPT, "valid prefix + garbage");
    }
    free(buf);
}

/* A valid small table (one member in guild 1) to damage copies of. */
static void make_pristine(const char *name) {
    gt_table *t = create(name, small_opts(0));
    gt_member m = tc_member(7, 7);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    gt_close(t);
}

static void copy_table(const char *src, const char *dst) {
    int in = open_file(src, O_RDONLY);
    int out = open_file(dst, O_WRONLY | O_CREAT | O_TRUNC);
    struct stat st;
    cr_assert_eq(fstat(in, &st), 0);
    static uint8_t buf[1 << 16];
    for (off_t off = 0; off < st.st_size;) {
        ssize_t n = pread(in, buf, sizeof buf, off);
        cr_assert_gt(n, 0);
        cr_assert_eq(pwrite(out, buf, (size_t)n, off), n);
        off += n;
    }
    cr_assert_eq(fchmod(out, st.st_mode & 07777), 0);
    close(in);
    close(out);
}

static void read_geom(const char *name, struct gt_geom *g) {
    int fd = open_file(name, O_RDONLY);
    cr_assert_eq(pread(fd, g, sizeof *g, 0), (ssize_t)sizeof *g);
    close(fd);
}

static void write_geom(const char *name, const struct gt_geom *g) {
    int fd = open_file(name, O_RDWR);
    cr_assert_eq(pwrite(fd, g, sizeof *g, 0), (ssize_t)sizeof *g);
    close(fd);
}

static uint64_t checksum(const struct gt_geom *g) {
    return XXH3_64bits(g, offsetof(struct gt_geom, checksum));
}

enum fix { STALE, FIX };
typedef void (*damage_fn)(struct gt_geom *g);

/* Copy pristine to a new name, damage its header, open it. */
static void expect_damage(const char *pristine, const char *what,
                          damage_fn fn, enum fix fix, int want) {
    const char *name = fresh("damaged", NULL);
    copy_table(pristine, name);
    struct gt_geom g;
    read_geom(name, &g);
    fn(&g);
    if (fix == FIX)
        g.checksum = checksum(&g);
    write_geom(name, &g);
    expect_code(open_in_child(name), want, what);
    gt_unlink(name, NULL);
}

static void d_magic(struct gt_geom *g) { g->magic[0] ^= 0x20; }
static void d_magic_last(struct gt_geom *g) { g->magic[7] = 0; }
static void d_version(struct gt_geom *g) { g->version += 1; }
static void d_version_zero(struct gt_geom *g) { g->version = 0; }
static void d_sig(struct gt_geom *g) { g->layout_sig ^= 0x1; }
static void d_members_byte(struct gt_geom *g) {
    ((uint8_t *)&g->max_members)[1] ^= 0x01;
}
static void d_members_x1000(struct gt_geom *g) { g->max_members *= 1000; }
static void d_members_zero(struct gt_geom *g) { g->max_members = 0; }
static void d_members_huge(struct gt_geom *g) { g->max_members = 1ull << 40; }
static void d_guilds_zero(struct gt_geom *g) { g->max_guilds = 0; }
static void d_guilds_huge(struct gt_geom *g) { g->max_guilds = UINT32_MAX; }
static void d_slots_zero(struct gt_geom *g) { g->max_slots = 0; }
static void d_slots_huge(struct gt_geom *g) { g->max_slots = UINT32_MAX; }
static void d_payload_huge(struct gt_geom *g) { g->payload_size = 5000; }
static void d_payload(struct gt_geom *g) { g->payload_size += 8; }
static void d_stride(struct gt_geom *g) { g->stride += 8; }
static void d_heap_off(struct gt_geom *g) { g->heap_off += GT_PAGE; }
static void d_heap_size(struct gt_geom *g) { g->heap_size *= 2; }
static void d_slots_off(struct gt_geom *g) { g->slots_off = 1ull << 62; }
static void d_file_size(struct gt_geom *g) { g->file_size += GT_PAGE; }
static void d_top_order(struct gt_geom *g) { g->top_order = 63; }
static void d_dir_cap(struct gt_geom *g) { g->dir_cap = 0; }
static void d_stall_zero(struct gt_geom *g) { g->stall_ms = 0; }
static void d_stall(struct gt_geom *g) { g->stall_ms += 1; }
static void d_checksum(struct gt_geom *g) { g->checksum ^= 1; }
static void d_seed(struct gt_geom *g) { g->seed ^= 1; }
static void d_nothing(struct gt_geom *g) { (void)g; }

Test(segment, hostile_damaged_header) {
    const char *pristine = fresh("pristine", NULL);
    make_pristine(pristine);

    /* control: an undamaged copy opens and holds the member */
    {
        const char *name = fresh("copy", NULL);
        copy_table(pristine, name);
        gt_table *t = NULL;
        cr_assert_eq(gt_open(name, NULL, &t), 0, "undamaged copy");
        cr_expect_eq(gt_contains(t, 1, 7), 1);
        gt_close(t);
        expect_damage(pristine, "rewrite with no change", d_nothing, FIX, 0);
    }

    expect_damage(pristine, "magic", d_magic, STALE, GT_ECORRUPT);
    expect_damage(pristine, "magic, checksum fixed", d_magic, FIX, GT_ECORRUPT);
    expect_damage(pristine, "magic last byte", d_magic_last, FIX, GT_ECORRUPT);
    expect_damage(pristine, "version", d_version, STALE, GT_EINCOMPAT);
    expect_damage(pristine, "version, checksum fixed", d_version, FIX,
                  GT_EINCOMPAT);
    expect_damage(pristine, "version 0", d_version_zero, FIX, GT_EINCOMPAT);
    expect_damage(pristine, "layout_sig", d_sig, STALE, GT_EINCOMPAT);
    expect_damage(pristine, "layout_sig, checksum fixed", d_sig, FIX,
                  GT_EINCOMPAT);
    expect_damage(pristine, "max_members byte, checksum stale",
                  d_members_byte, STALE, GT_ECORRUPT);
    expect_damage(pristine, "max_members x1000, checksum fixed",
                  d_members_x1000, FIX, GT_ECORRUPT);
    expect_damage(pristine, "max_members 0", d_members_zero, FIX, GT_ECORRUPT);
    expect_damage(pristine, "max_members 2^40", d_members_huge, FIX,
                  GT_ECORRUPT);
    expect_damage(pristine, "max_guilds 0", d_guilds_zero, FIX, GT_ECORRUPT);
    expect_damage(pristine, "max_guilds huge", d_guilds_huge, FIX,
                  GT_ECORRUPT);
    expect_damage(pristine, "max_slots 0", d_slots_zero, FIX, GT_ECORRUPT);
    expect_damage(pristine, "max_slots huge", d_slots_huge, FIX, GT_ECORRUPT);
    expect_damage(pristine, "payload 5000", d_payload_huge, FIX, GT_ECORRUPT);
    expect_damage(pristine, "payload +8", d_payload, FIX, GT_ECORRUPT);
    expect_damage(pristine, "stride", d_stride, FIX, GT_ECORRUPT);
    expect_damage(pristine, "heap_off", d_heap_off, FIX, GT_ECORRUPT);
    expect_damage(pristine, "heap_size", d_heap_size, FIX, GT_ECORRUPT);
    expect_damage(pristine, "slots_off 2^62", d_slots_off, FIX, GT_ECORRUPT);
    expect_damage(pristine, "file_size", d_file_size, FIX, GT_ECORRUPT);
    expect_damage(pristine, "top_order", d_top_order, FIX, GT_ECORRUPT);
    expect_damage(pristine, "dir_cap 0", d_dir_cap, FIX, GT_ECORRUPT);
    expect_damage(pristine, "stall_ms 0", d_stall_zero, FIX, GT_ECORRUPT);
    expect_damage(pristine, "stall_ms, checksum stale", d_stall, STALE,
                  GT_ECORRUPT);
    expect_damage(pristine, "checksum", d_checksum, STALE, GT_ECORRUPT);
    /* the seed is not derived from the layout: only the checksum guards it */
    expect_damage(pristine, "seed, checksum stale", d_seed, STALE,
                  GT_ECORRUPT);
}

/* Copy pristine, set the copy's length to len, open it. */
static void resize_copy(const char *pristine, const char *what, off_t len) {
    const char *name = fresh("resized", NULL);
    copy_table(pristine, name);
    int fd = open_file(name, O_RDWR);
    cr_assert_eq(ftruncate(fd, len), 0);
    close(fd);
    expect_code(open_in_child(name), GT_ECORRUPT, what);
    gt_unlink(name, NULL);
}

Test(segment, hostile_wrong_file_size) {
    const char *pristine = fresh("pristine", NULL);
    make_pristine(pristine);
    char p[PATH_MAX];
    path_of(p, sizeof p, NULL, pristine);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    off_t size = st.st_size;
    resize_copy(pristine, "truncated by a page", size - GT_PAGE);
    resize_copy(pristine, "truncated by a byte", size - 1);
    resize_copy(pristine, "truncated to half", size / 2);
    resize_copy(pristine, "truncated to the header page", GT_PAGE);
    resize_copy(pristine, "truncated to the geometry",
                (off_t)sizeof(struct gt_geom));
    resize_copy(pristine, "extended by a byte", size + 1);
    resize_copy(pristine, "extended by a page", size + GT_PAGE);
    resize_copy(pristine, "extended by 1 GiB", size + (1ll << 30));
}

/* Things at the table's path that are not regular files. */
Test(segment, hostile_not_a_file) {
    char p[PATH_MAX];
    const char *name = fresh("notfile", NULL);
    path_of(p, sizeof p, NULL, name);

    cr_assert_eq(mkfifo(p, 0600), 0, "mkfifo: %s", strerror(errno));
    int r = open_in_child(name);
    cr_expect_lt(r, 0, "a FIFO opened as a table");
    cr_expect_neq(r, CHILD_DIED, "a FIFO crashed gt_open");
    cr_assert_eq(unlink(p), 0);

    cr_assert_eq(symlink("/dev/zero", p), 0);
    r = open_in_child(name);
    cr_expect_lt(r, 0, "/dev/zero opened as a table");
    cr_expect_neq(r, CHILD_DIED, "/dev/zero crashed gt_open");
    cr_assert_eq(unlink(p), 0);

    cr_assert_eq(symlink("/nonexistent/guildtab", p), 0);
    r = open_in_child(name);
    cr_expect_lt(r, 0, "a dangling symlink opened as a table");
    cr_expect_neq(r, CHILD_DIED);
    cr_assert_eq(unlink(p), 0);

    cr_assert_eq(mkdir(p, 0700), 0);
    r = open_in_child(name);
    cr_expect_lt(r, 0, "a directory opened as a table");
    cr_expect_neq(r, CHILD_DIED, "a directory crashed gt_open");
    gt_options c = small_opts(GT_CREATE);
    r = open_fail(name, &c);
    cr_expect_lt(r, 0, "GT_CREATE over a directory succeeded");
    cr_assert_eq(rmdir(p), 0);
}

/* ---- handle lifecycle ------------------------------------------------------ */

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Opening and closing many times leaks no file descriptor, mapping or
 * thread slot (max_slots is 2: a leaked slot runs out fast). */
Test(segment, open_close_cycles) {
    const char *name = fresh("cycles", NULL);
    gt_options o = small_opts(0);
    o.max_slots = 2;
    gt_close(create(name, o));
    int fds = count_fds(), maps = count_maps();
    for (uint64_t i = 0; i < 1500; i++) {
        gt_table *t = NULL;
        int r = gt_open(name, NULL, &t);
        cr_assert_eq(r, 0, "cycle %llu: open %s", (unsigned long long)i,
                     gt_strerror(r));
        gt_member m = tc_member(i % 500, 9); /* 500 distinct, then replaced */
        r = gt_insert(t, i % 4, &m, NULL);
        cr_assert_eq(r, 0, "cycle %llu: insert %s", (unsigned long long)i,
                     gt_strerror(r));
        uint64_t n = 0;
        r = gt_select_count(t, i % 4, NULL, 0, 1, &n);
        cr_assert_eq(r, 0, "cycle %llu: select_count %s",
                     (unsigned long long)i, gt_strerror(r));
        gt_close(t);
    }
    cr_expect_eq(count_fds(), fds, "file descriptors leaked");
    cr_expect_eq(count_maps(), maps, "mappings leaked");
    gt_table *t = NULL;
    cr_assert_eq(gt_open(name, NULL, &t), 0);
    gt_table_stat s;
    cr_assert_eq(gt_info(t, &s), 0);
    cr_expect_eq(s.slots_used, 0, "closed handles still hold %u slots",
                 s.slots_used);
    cr_expect_eq(s.members, 500, "members %llu",
                 (unsigned long long)s.members);
    gt_close(t);
}

/* A failed gt_open leaks nothing either. */
Test(segment, failed_open_leaks_nothing) {
    const char *name = fresh("failleak", NULL);
    gt_close(create(name, small_opts(0)));
    const char *bad = fresh("failleak-bad", NULL);
    write_file(bad, "garbage", 7);
    int fds = count_fds(), maps = count_maps();
    gt_options mism = {.payload_size = 1};
    gt_options excl = small_opts(GT_CREATE | GT_EXCL);
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(open_fail(name, &mism), GT_EMISMATCH);
        cr_assert_eq(open_fail(name, &excl), GT_EEXIST);
        cr_assert_eq(open_fail(bad, NULL), GT_ECORRUPT);
        cr_assert_eq(open_fail("no-such-table-here", NULL), GT_ENOENT);
    }
    cr_expect_eq(count_fds(), fds, "file descriptors leaked");
    cr_expect_eq(count_maps(), maps, "mappings leaked");
}

/* ---- GT_EACCES ------------------------------------------------------------ */

struct acc_arg {
    const char *name, *dir, *newname;
};

static void child_nobody_open(void *arg, int v[4]) {
    const struct acc_arg *a = arg;
    if (!become_nobody())
        return; /* v stays CHILD_DIED */
    gt_table *t = NULL;
    gt_options o = {.dir = a->dir};
    v[0] = gt_open(a->name, &o, &t);
    if (v[0] == 0)
        gt_close(t);
    t = NULL;
    o.flags = GT_RDONLY;
    v[1] = gt_open(a->name, &o, &t);
    if (v[1] == 0) {
        v[3] = gt_contains(t, 1, 7);
        gt_close(t);
    }
    v[2] = (t == NULL) || v[1] == 0;
}

static void skip_unless_root(const char *why) {
    if (geteuid() != 0)
        cr_skip_test("needs root: %s", why);
}

Test(segment, eacces_open) {
    skip_unless_root("to own a table another uid cannot open");
    const char *name = fresh("acc", NULL);
    gt_table *t = create(name, small_opts(0)); /* mode 0600, owner root */
    gt_member m = tc_member(7, 7);
    cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    gt_close(t);

    struct acc_arg a = {name, NULL, NULL};
    int v[4];
    cr_assert(run_child(child_nobody_open, &a, v), "child crashed");
    cr_assert_neq(v[0], CHILD_DIED, "could not drop to uid %d", NOBODY_ID);
    expect_code(v[0], GT_EACCES, "nobody opens 0600 root table");
    expect_code(v[1], GT_EACCES, "nobody opens 0600 root table RDONLY");
    cr_expect_eq(v[2], 1, "*out not NULL after failure");

    /* control: with permission the same child succeeds */
    char p[PATH_MAX];
    path_of(p, sizeof p, NULL, name);
    cr_assert_eq(chmod(p, 0666), 0);
    cr_assert(run_child(child_nobody_open, &a, v), "child crashed");
    expect_code(v[0], 0, "nobody opens 0666 table");
    expect_code(v[1], 0, "nobody opens 0666 table RDONLY");
    cr_expect_eq(v[3], 1, "nobody sees the member");
}

static void child_nobody_dir(void *arg, int v[4]) {
    const struct acc_arg *a = arg;
    if (!become_nobody())
        return;
    v[0] = gt_unlink(a->name, a->dir);
    gt_table *t = NULL;
    gt_options o = small_opts(GT_CREATE);
    o.dir = a->dir;
    v[1] = gt_open(a->newname, &o, &t);
    if (v[1] == 0)
        gt_close(t);
    v[2] = t == NULL || v[1] == 0;
}

Test(segment, eacces_dir) {
    skip_unless_root("to own a directory another uid cannot write");
    char dir[] = SHM_DIR "/gt-test-acc-XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    track(TR_DIR, NULL, dir);
    cr_assert_eq(chmod(dir, 0755), 0);
    const char *name = fresh("accdir", dir);
    const char *newname = fresh("accnew", dir);
    gt_options o = small_opts(0);
    o.dir = dir;
    o.mode = 0666; /* the file is writable: only the directory refuses */
    gt_close(create(name, o));
    cr_assert(exists(dir, name));

    struct acc_arg a = {name, dir, newname};
    int v[4];
    cr_assert(run_child(child_nobody_dir, &a, v), "child crashed");
    cr_assert_neq(v[0], CHILD_DIED, "could not drop to uid %d", NOBODY_ID);
    expect_code(v[0], GT_EACCES, "nobody unlinks in a 0755 root dir");
    expect_code(v[1], GT_EACCES, "nobody creates in a 0755 root dir");
    cr_expect_eq(v[2], 1, "*out not NULL after failure");
    cr_expect(exists(dir, name), "the table was removed anyway");
    cr_expect_not(exists(dir, newname));
    cr_expect_eq(count_hidden(dir, newname), 0);

    cr_expect_eq(gt_unlink(name, dir), 0);
}

/* In a sticky directory (like /dev/shm itself) only the owner may remove a
 * table, even when the directory is writable to all: -EPERM. */
Test(segment, eperm_sticky_dir) {
    skip_unless_root("to own a table in a sticky directory");
    char dir[] = SHM_DIR "/gt-test-sticky-XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    track(TR_DIR, NULL, dir);
    cr_assert_eq(chmod(dir, 01777), 0);
    const char *name = fresh("sticky", dir);
    gt_options o = small_opts(0);
    o.dir = dir;
    o.mode = 0666;
    gt_close(create(name, o));
    struct acc_arg a = {name, dir, fresh("stickynew", dir)};
    int v[4];
    cr_assert(run_child(child_nobody_dir, &a, v), "child crashed");
    cr_assert_neq(v[0], CHILD_DIED, "could not drop to uid %d", NOBODY_ID);
    expect_code(v[0], -EPERM, "nobody unlinks root's table in a sticky dir");
    cr_expect(exists(dir, name));
    cr_expect_eq(gt_unlink(name, dir), 0);
    if (v[1] == 0) /* nobody could create its own table there */
        cr_expect_eq(gt_unlink(a.newname, dir), 0);
}

/* ---- GT_ENOSPC ------------------------------------------------------------ */

static bool dir_has_tables(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "guildtab.", 9) == 0 ||
            strncmp(e->d_name, ".guildtab.", 10) == 0) {
            cr_log_error("left behind: %s/%s", dir, e->d_name);
            any = true;
        }
    }
    closedir(d);
    return any;
}

Test(segment, enospc_at_create) {
    skip_unless_root("to mount a tiny tmpfs");
    char dir[] = "/tmp/gt-test-enospc-XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    if (mount("tmpfs", dir, "tmpfs", 0, "size=512k,mode=0755") != 0) {
        int e = errno;
        rmdir(dir); /* a skipped test runs no fini */
        cr_skip_test("cannot mount a tmpfs: %s", strerror(e));
    }
    track(TR_DIR, NULL, dir);
    track(TR_MOUNT, NULL, dir);
    struct statvfs before;
    cr_assert_eq(statvfs(dir, &before), 0);

    /* the slots alone are 4096 * ~5.5 KiB: tens of MB, committed up front */
    const char *name = fresh("nospc", dir);
    gt_options o = {.dir = dir,
                    .max_members = 1000,
                    .max_guilds = 16,
                    .max_slots = 4096,
                    .payload_size = GT_PAYLOAD_MAX};
    o.flags = GT_CREATE | GT_EXCL;
    expect_code(open_fail(name, &o), GT_ENOSPC, "create on a full fs");
    cr_expect_not(dir_has_tables(dir), "files left behind");
    o.flags = GT_CREATE;
    expect_code(open_fail(name, &o), GT_ENOSPC, "create (no EXCL)");
    cr_expect_not(dir_has_tables(dir), "files left behind");
    struct statvfs after;
    cr_assert_eq(statvfs(dir, &after), 0);
    cr_expect_eq(after.f_bfree, before.f_bfree, "space leaked: %lu -> %lu",
                 (unsigned long)before.f_bfree, (unsigned long)after.f_bfree);

    /* control: a table that fits is created on the same file system */
    const char *small = fresh("fits", dir);
    gt_options s = {.dir = dir,
                    .max_members = 16,
                    .max_guilds = 1,
                    .max_slots = 1,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t = NULL;
    int r = gt_open(small, &s, &t);
    cr_expect_eq(r, 0, "small table on the tmpfs: %s", gt_strerror(r));
    gt_close(t);
    gt_unlink(small, dir);
}

/* ---- GT_ENOMEM ------------------------------------------------------------ */

static uint64_t vm_size_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %lu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024u;
}

struct nomem_arg {
    const char *small, *big;
};
static void child_nomem(void *arg, int v[4]) {
    const struct nomem_arg *a = arg;
    uint64_t now = vm_size_bytes();
    if (now == 0)
        return;
    struct rlimit rl = {now + 256 * MIB, now + 256 * MIB};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return;
    gt_table *t = NULL;
    v[0] = gt_open(a->small, NULL, &t);
    if (v[0] == 0)
        gt_close(t);
    t = (gt_table *)(void *)&sentinel_byte;
    v[1] = gt_open(a->big, NULL, &t);
    v[2] = t == NULL;
    if (v[1] == 0)
        gt_close(t);
}

Test(segment, enomem_mmap) {
    const char *small = fresh("nomem-small", NULL);
    gt_close(create(small, small_opts(0)));
    const char *big = fresh("nomem-big", NULL);
    gt_table *t = create(big, (gt_options){.max_members = 1ull << 28});
    gt_table_stat s;
    cr_assert_eq(gt_info(t, &s), 0);
    cr_assert_gt(s.bytes_reserved, 4096 * MIB, "the file is not multi-GiB");
    gt_close(t);

    struct nomem_arg a = {small, big};
    int v[4];
    cr_assert(run_child(child_nomem, &a, v), "child crashed");
    cr_assert_neq(v[0], CHILD_DIED, "could not set RLIMIT_AS");
    expect_code(v[0], 0, "small table under the limit");
    expect_code(v[1], GT_ENOMEM, "multi-GiB table under a small RLIMIT_AS");
    cr_expect_eq(v[2], 1, "*out not NULL after failure");
}

/* A table sized for many more guilds than members costs memory for what it
 * holds, not for what it could: creating it, filling a few guilds and
 * checking it commit a few MB (it once committed 5 GB at creation, and
 * gt_check faulted in the whole directory). */
Test(segment, many_guilds_few_members_stay_small) {
    const char *name = tc_name("manyg");
    gt_options o = {.max_members = 1000, .max_guilds = 1u << 24,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    for (uint64_t g = 1; g <= 50; g++)
        for (uint64_t u = 1; u <= 10; u++) {
            gt_member m = tc_member(u, g);
            cr_assert_eq(gt_insert(t, g * 7919, &m, NULL), 0);
        }
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_lt(st.bytes_resident, 32u << 20, "resident %lu after creation",
                 (unsigned long)st.bytes_resident);
    cr_assert_eq(gt_check(t, NULL), 0);
    uint64_t before = st.bytes_resident;
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_lt(st.bytes_resident, before + (1u << 20),
                 "gt_check committed %lu bytes",
                 (unsigned long)(st.bytes_resident - before));
    tc_drop(t, name);
}
