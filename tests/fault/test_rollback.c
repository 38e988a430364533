/* test_rollback.c - what a writer's death at a chosen point undoes, and
 * what it leaves (each case in its section below): a scan that meets an
 * insert whose writer dies; each kind of write killed with its record
 * written; a delete killed while it shrinks its guild; a flag update killed
 * while it compacts the fanout set. All deterministic, with the test
 * library's stop points (src/hooks.c).
 *
 * A scan that meets an insert in flight whose writer then dies sees the
 * guild as it was, even when the guild's storage is reused memory full of
 * another guild's old records.
 *
 * The insert claims an empty slot: control byte set, record seqlock odd.
 * A scan that read that control byte waits on the seqlock; the writer is
 * killed; the rollback restores the control byte and the record's meta
 * (the insert logged only its seqlock and meta), and the scan, resuming,
 * copies the record under an even seqlock. It must take no member from
 * it: not the insert's, whose words stay, nor one the block held before
 * (the soak run once caught a scan delivering such a record).
 *
 * The writer stops once it has claimed the slot, the scanner the first
 * time it waits; then the writer is killed and the scanner resumed. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

#define OLD 1u  /* the guild whose block is reused */
#define NEW 2u  /* the guild that gets it */
#define OTHER 3u
#define BUDDY 4u /* holds the block next to OLD's: freeing OLD's merges
                    nothing, so its pages keep their bytes (not punched) */
#define N 400u

struct shared {
    uint64_t newbie; /* the user of the insert in flight */
    int seen, foreign, rc;
};
static struct shared *sh;
static const char *name;

static int on_member(void *ctx, const gt_member *m, const void *p) {
    (void)ctx, (void)p;
    sh->seen++;
    sh->foreign += m->user_id != 1; /* the one member NEW holds */
    return 0;
}

static int scan(void *arg) {
    (void)arg;
    gt_table *t = tc_child_open(name, "read_wait:1:stop");
    sh->rc = gt_select(t, NEW, NULL, 0, 1, on_member, NULL);
    gt_close(t);
    return 0;
}

Test(fault, scan_meets_rolled_back_insert_in_reused_block, .timeout = 120) {
    sh = tc_shared(sizeof *sh);
    name = tc_name("rollback");
    gt_table *t = tc_open(name, 100000, 16, 0);
    /* OLD's block: every slot it used holds a live record */
    cr_assert_eq(gt_guild_reserve(t, OLD, N), 0);
    cr_assert_eq(gt_guild_reserve(t, BUDDY, N), 0);
    for (uint64_t u = 1; u <= N; u++) {
        gt_member m = tc_member(1000 + u, u);
        cr_assert_eq(gt_insert(t, OLD, &m, NULL), 0);
    }
    cr_assert_eq(gt_guild_reserve(t, OTHER, 64), 0);
    struct gt_guild *g = gt_guild_lookup(t, OLD);
    uint64_t old_off = LOAD(&g->store_off, relaxed);
    uint32_t cap = LOAD(&g->cap, relaxed);
    /* the newcomer: one of OLD's members, sitting in its home slot, so in
     * NEW it claims that very slot, whose bytes are its old live record */
    const struct gt_store *st = gt_at(t, old_off);
    for (uint64_t u = 1001; u <= 1000 + N && !sh->newbie; u++) {
        uint64_t h = gt_hash(t, u), home = gt_fastrange(h, cap);
        if (gt__store_find(t, st, cap, u, h) == home &&
            home != gt_fastrange(gt_hash(t, 1), cap))
            sh->newbie = u;
    }
    cr_assert_neq(sh->newbie, 0);
    cr_assert_eq(gt_guild_delete(t, OLD), 0);
    /* commits reclaim retired blocks no reader holds (OTHER has room: these
     * inserts allocate nothing) */
    for (uint64_t u = 1; u <= 8; u++) {
        gt_member m = tc_member(u, u);
        cr_assert_eq(gt_insert(t, OTHER, &m, NULL), 0);
    }
    /* NEW, the same size, gets the block (else the test proves nothing) */
    cr_assert_eq(gt_guild_reserve(t, NEW, N), 0);
    g = gt_guild_lookup(t, NEW);
    uint64_t new_off = LOAD(&g->store_off, relaxed);
    cr_assert_eq(new_off, old_off, "the allocator did not reuse the block "
                 "(%#lx, now %#lx)", (unsigned long)old_off,
                 (unsigned long)new_off);
    cr_assert_eq(LOAD(&g->cap, relaxed), cap);
    gt_member one = tc_member(1, 1);
    cr_assert_eq(gt_insert(t, NEW, &one, NULL), 0);
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0, "reused block not clean");

    /* control byte set, record mid-write */
    pid_t w = tc_stuck_insert(name, NEW, sh->newbie);
    pid_t s = tc_spawn(scan, NULL);
    tc_stopped(s, "scan"); /* waiting on that record */
    kill(w, SIGKILL);
    cr_assert_eq(waitpid(w, NULL, 0), w);
    kill(s, SIGCONT); /* it sees the writer dead and rolls it back */
    tc_reap(&s, 1, "scanner");
    cr_assert_eq(sh->rc, 0, "gt_select: %s", gt_strerror(sh->rc));
    cr_assert_eq(sh->foreign, 0, "the scan delivered %d members NEW never had",
                 sh->foreign);
    cr_assert_eq(sh->seen, 1);
    cr_assert_eq(gt_lookup(t, NEW, sh->newbie, NULL, NULL), GT_ENOENT);
    cr_assert_eq(gt_check(t, &rep), 0);
    tc_drop(t, name);
}

/* ---- each write killed with its record written -------------------------
 * A write logs only the head (seqlock and meta) of a record in a free slot
 * and of one it deletes (member.c, rec_logged): their rollback brings back
 * the meta, and the words must not matter. Each kind of write (among them
 * a replacement that changes only the payload) is killed right after it
 * wrote its record, before its commit; its rollback must leave every
 * member as it was, whole, and the table clean. */
#define WGUILD 7u
#define WMEMBERS 300u
#define WPAYLOAD 40u

enum wkind { W_DELETE, W_NEW, W_REPLACE, W_PAYLOAD, W_FLAGS, W_SESSION,
             W_KINDS };
static const char *const wnames[W_KINDS] = {
    "delete", "new insert", "replace", "payload-only replace", "flag update",
    "session update"};
struct wjob {
    enum wkind kind;
    uint64_t user;
};

static void wpayload(uint64_t user, uint64_t seed, uint8_t *p) {
    for (uint32_t i = 0; i < WPAYLOAD; i++)
        p[i] = (uint8_t)(tc_mix(user * 131 + seed) >> (i % 8 * 8));
}

/* Member u as the test made it. */
static gt_member wmember(uint64_t u) {
    gt_member m = tc_member(u, 1);
    m.flags = GT_ONLINE | (u % 3 == 0 ? GT_ACTIVE : 0);
    return m;
}

static int killed_writer(void *arg) {
    const struct wjob *j = arg;
    gt_table *t = tc_child_open(name, "record_written:1");
    gt_member m = tc_member(j->user, 99); /* every field differs */
    m.flags = GT_ONLINE | GT_ACTIVE;
    uint8_t p[WPAYLOAD];
    wpayload(j->user, 99, p);
    switch (j->kind) {
    case W_DELETE:
        gt_delete(t, WGUILD, j->user);
        break;
    case W_NEW:
    case W_REPLACE:
        gt_insert(t, WGUILD, &m, p);
        break;
    case W_PAYLOAD: /* the same member, with another payload */
        m = wmember(j->user);
        gt_insert(t, WGUILD, &m, p);
        break;
    case W_FLAGS:
        gt_update_flags(t, WGUILD, j->user, GT_ACTIVE, GT_ONLINE, NULL);
        break;
    default:
        gt_update_session(t, WGUILD, j->user, m.worker, m.session_id);
    }
    return 2; /* never reached: killed */
}

Test(fault, write_killed_with_its_record_written_is_undone, .timeout = 120) {
    name = tc_name("rollback-rec");
    gt_table *t = tc_open(name, 10000, 4, WPAYLOAD);
    for (uint64_t u = 1; u <= WMEMBERS; u++) {
        gt_member m = wmember(u);
        uint8_t p[WPAYLOAD];
        wpayload(u, 1, p);
        cr_assert_eq(gt_insert(t, WGUILD, &m, p), 0);
    }
    for (int k = 0; k < W_KINDS; k++) {
        /* members 3, 9 and 15 are in the fanout set, 8 and 11 not */
        static const uint64_t users[W_KINDS] = {3, 5000, 8, 9, 11, 15};
        struct wjob j = {(enum wkind)k, users[k]};
        gt_guild_stat before;
        cr_assert_eq(gt_guild_info(t, WGUILD, &before), 0);
        uint64_t fan = tc_fanout_size(t, WGUILD);
        pid_t w = tc_spawn(killed_writer, &j);
        int st;
        cr_assert_eq(waitpid(w, &st, 0), w);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "%s: the writer was not killed at record_written (status "
                  "%#x)", wnames[k], st);
        gt_table_stat ts;
        cr_assert_eq(gt_info(t, &ts), 0); /* sweeps the dead writer */
        for (uint64_t u = 1; u <= WMEMBERS; u++) {
            gt_member m, want = wmember(u);
            uint8_t p[WPAYLOAD], wantp[WPAYLOAD];
            wpayload(u, 1, wantp);
            int r = gt_lookup(t, WGUILD, u, &m, p);
            cr_assert_eq(r, 0, "%s: member %lu: %s", wnames[k],
                         (unsigned long)u, gt_strerror(r));
            cr_assert(memcmp(&m, &want, sizeof m) == 0 &&
                          memcmp(p, wantp, sizeof p) == 0,
                      "%s: member %lu is not as it was", wnames[k],
                      (unsigned long)u);
        }
        cr_assert_eq(gt_lookup(t, WGUILD, 5000, NULL, NULL), GT_ENOENT,
                     "%s", wnames[k]);
        gt_guild_stat after;
        cr_assert_eq(gt_guild_info(t, WGUILD, &after), 0);
        cr_assert(memcmp(&before, &after, sizeof before) == 0,
                  "%s: the guild's counts changed", wnames[k]);
        cr_assert_eq(tc_fanout_size(t, WGUILD), fan, "%s", wnames[k]);
        gt_check_report rep = {0};
        cr_assert_eq(gt_check(t, &rep), 0, "%s", wnames[k]);
        cr_assert_eq(rep.violations, 0, "%s", wnames[k]);
    }
    tc_drop(t, name);
}

/* ---- a delete killed while it shrinks its guild ---------------------------
 * A delete that leaves its guild sparse commits, and only then rebuilds the
 * guild smaller, in a section of its own (member.c, shrink). Killed in that
 * rebuild, the delete stands and the rebuild is undone; killed once the
 * rebuild has committed, both stand. Either way every other member is
 * whole and the table clean. */
#define SGUILD 9u
#define SMEMBERS 400u

/* Where the delete is killed ("commit:2": the rebuild's commit, the
 * delete's being the first), and whether the rebuild then stands. */
static const struct {
    const char *at;
    bool shrunk;
} sat[] = {{"rebuild_made:1", false},
           {"rebuild_copied:1", false},
           {"rebuild_published:1", false},
           {"commit:2", true},
           {"sealed:2", true}};
struct sjob {
    const char *at;
    uint64_t user;
};

static int delete_in_shrink(void *arg) {
    const struct sjob *j = arg;
    gt_table *t = tc_child_open(name, j->at);
    gt_delete(t, SGUILD, j->user);
    return 2; /* never reached: killed */
}

Test(fault, delete_killed_in_its_shrink_stands, .timeout = 120) {
    name = tc_name("rollback-shrink");
    gt_table *t = tc_open(name, 10000, 4, 0);
    for (uint64_t u = 1; u <= SMEMBERS; u++) {
        gt_member m = wmember(u);
        cr_assert_eq(gt_insert(t, SGUILD, &m, NULL), 0);
    }
    uint64_t last = SMEMBERS;
    for (size_t k = 0; k < sizeof sat / sizeof sat[0]; k++, last--) {
        const char *at = sat[k].at;
        gt_guild_stat before = tc_to_shrink_point(t, SGUILD, &last), after;
        struct sjob j = {at, last};
        pid_t w = tc_spawn(delete_in_shrink, &j);
        int ws;
        cr_assert_eq(waitpid(w, &ws, 0), w);
        cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL,
                  "%s: the delete was not killed (status %#x)", at, ws);
        gt_table_stat ts;
        cr_assert_eq(gt_info(t, &ts), 0); /* sweeps the dead writer */
        cr_assert_eq(gt_lookup(t, SGUILD, last, NULL, NULL), GT_ENOENT,
                     "%s: the committed delete was undone", at);
        uint64_t active = 0;
        for (uint64_t u = 1; u < last; u++) {
            gt_member m, want = wmember(u);
            cr_assert_eq(gt_lookup(t, SGUILD, u, &m, NULL), 0);
            cr_assert(memcmp(&m, &want, sizeof m) == 0,
                      "%s: member %lu is not as it was", at, (unsigned long)u);
            active += (want.flags & GT_ACTIVE) != 0;
        }
        cr_assert_eq(gt_guild_info(t, SGUILD, &after), 0);
        cr_assert_eq(after.members, before.members - 1, "%s", at);
        cr_assert_eq(after.active, active, "%s", at);
        if (sat[k].shrunk)
            cr_assert_lt(after.capacity, before.capacity,
                         "%s: the committed rebuild was undone", at);
        else
            cr_assert_eq(after.capacity, before.capacity,
                         "%s: the killed rebuild was not undone", at);
        cr_assert_eq(tc_fanout_size(t, SGUILD), active, "%s", at);
        gt_check_report rep = {0};
        cr_assert_eq(gt_check(t, &rep), 0, "%s", at);
        cr_assert_eq(rep.violations, 0, "%s", at);
    }
    tc_drop(t, name);
}

/* ---- a flag update killed while it compacts the fanout set ---------------
 * Members leaving the fanout set leave it sparse at some point; the update
 * that does is committed, and the set is then rebuilt smaller in a section
 * of its own. Killed in that rebuild, the update stands and the rebuild is
 * undone: for gt_update_flags and for a batch (gt_update_flags_many), of
 * which the updates up to that one stand and none after it. The point is
 * found on a twin guild, with the same members, that nobody kills. */
#define FREF 1u   /* the twin */
#define FONE 2u   /* gt_update_flags killed */
#define FMANY 3u  /* gt_update_flags_many killed */
#define FMEMBERS 2000u
#define FPAST 10u /* updates of the batch after the one that compacts */

static gt_member fmember(uint64_t u) {
    gt_member m = tc_member(u, 3);
    m.flags = GT_ONLINE | GT_ACTIVE;
    return m;
}

struct fjob {
    uint64_t gid, k; /* k: the update that leaves the set sparse */
};

static int leave_in_compaction(void *arg) {
    const struct fjob *j = arg;
    gt_table *t = tc_child_open(name, "rebuild_copied:1");
    if (j->gid == FONE) {
        gt_update_flags(t, FONE, j->k, 0, GT_ACTIVE, NULL);
    } else {
        gt_flag_update u[FMEMBERS];
        for (uint64_t i = 0; i < j->k + FPAST; i++)
            u[i] = (gt_flag_update){.user_id = i + 1, .clear = GT_ACTIVE};
        gt_update_flags_many(t, FMANY, u, j->k + FPAST, NULL);
    }
    return 2; /* never reached: killed */
}

Test(fault, flag_update_killed_in_its_compaction_stands, .timeout = 120) {
    name = tc_name("rollback-compact");
    gt_table *t = tc_open(name, 3 * FMEMBERS + 100, 4, 0);
    for (uint64_t g = FREF; g <= FMANY; g++)
        for (uint64_t u = 1; u <= FMEMBERS; u++) {
            gt_member m = fmember(u);
            cr_assert_eq(gt_insert(t, g, &m, NULL), 0);
        }
    uint64_t k = 0;
    for (uint64_t u = 1; u <= FMEMBERS && !k; u++) {
        gt_guild_stat b, a;
        cr_assert_eq(gt_guild_info(t, FREF, &b), 0);
        cr_assert_eq(gt_update_flags(t, FREF, u, 0, GT_ACTIVE, NULL), 0);
        cr_assert_eq(gt_guild_info(t, FREF, &a), 0);
        k = a.bytes_used < b.bytes_used ? u : 0;
    }
    cr_assert(k && k + FPAST <= FMEMBERS, "no update compacted the set");
    for (uint64_t u = 1; u < k; u++)
        cr_assert_eq(gt_update_flags(t, FONE, u, 0, GT_ACTIVE, NULL), 0);
    for (uint64_t g = FONE; g <= FMANY; g++) {
        const char *what = g == FONE ? "gt_update_flags" : "the batch";
        gt_guild_stat before, after;
        cr_assert_eq(gt_guild_info(t, g, &before), 0);
        struct fjob j = {g, k};
        pid_t w = tc_spawn(leave_in_compaction, &j);
        int ws;
        cr_assert_eq(waitpid(w, &ws, 0), w);
        cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL,
                  "%s was not killed in its compaction (status %#x)", what,
                  ws);
        gt_table_stat ts;
        cr_assert_eq(gt_info(t, &ts), 0); /* sweeps the dead writer */
        for (uint64_t u = 1; u <= FMEMBERS; u++) {
            gt_member m, want = fmember(u);
            if (u <= k)
                want.flags &= ~GT_ACTIVE;
            cr_assert_eq(gt_lookup(t, g, u, &m, NULL), 0);
            cr_assert(memcmp(&m, &want, sizeof m) == 0,
                      "%s: member %lu is not as it should be (flags %#x)",
                      what, (unsigned long)u, m.flags);
        }
        cr_assert_eq(gt_guild_info(t, g, &after), 0);
        cr_assert_eq(after.active, FMEMBERS - k, "%s", what);
        cr_assert_eq(after.bytes_used, before.bytes_used,
                     "%s: the killed rebuild was not undone", what);
        cr_assert_eq(tc_fanout_size(t, g), FMEMBERS - k, "%s", what);
        gt_check_report rep = {0};
        cr_assert_eq(gt_check(t, &rep), 0, "%s", what);
        cr_assert_eq(rep.violations, 0, "%s", what);
    }
    tc_drop(t, name);
}
