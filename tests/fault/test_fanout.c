/* test_fanout.c - a fanout or count that a writer overtakes in the middle
 * of a chunk of the fanout set sees each member once, as the chunk holds
 * it after the write: what it took of the chunk before the write is taken
 * out again, and a batch that copy filled is not delivered; fanout batches
 * hold at most GT_FANOUT_BATCH.
 *
 * A scan that reads no records hands the set to a sink a chunk at a time
 * (src/scan.c): gt_fanout copies each entry straight into its worker's
 * batch, a count counts it, while the chunk's seqlock is open, and keeps
 * or drops the copy by the seqlock's check. Deterministic, with the test
 * library's stop points (src/hooks.c): a reader process stops at
 * "chunk_taken" for chunk 4, copied whole (worker 1's batch filled in it)
 * but not checked yet. Meanwhile the test changes chunk 4; then it resumes
 * the reader. And a member that leaves the set and comes back into a chunk
 * the reader has yet to read is skipped there: each chunk records its
 * newest activation, and a reader tests its entries' activation numbers
 * only in a chunk newer than the reader's start. And a fanout evicted
 * while stopped there delivers nothing more: it ends with GT_ESTALE.
 *
 * Layout (entries take the lowest free place, so member i of N, activated
 * in order, is entry i: chunk i / 64): members 0..29 belong to worker 2,
 * 30..N-1 to worker 1, whose 256th recipient is member 285, in chunk 4. */
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
#define N 300u
#define W2 30u   /* members of worker 2, first */
#define FULL (W2 + GT_FANOUT_BATCH - 1) /* fills worker 1's batch */
#define DROP_LO 256u /* the drop case deactivates members [DROP_LO, DROP_HI) */
#define DROP_HI 296u
#define REPLACED 290u /* the replace case gives it a new session */
#define BACK 5u         /* the reactivate case: out of chunk 0 and back */
#define NEWCOMER 9999u  /* ...after this new member took its place */
_Static_assert(FULL / GT_CHUNK_ENTRIES == 4 &&
                   (N - 1) / GT_CHUNK_ENTRIES == 4 && N % GT_CHUNK_ENTRIES != 0 &&
                   DROP_LO / GT_CHUNK_ENTRIES == 4 && DROP_HI > FULL &&
                   REPLACED / GT_CHUNK_ENTRIES == 4,
               "chunk 4 fills worker 1's batch and is the one changed");

struct result {
    int rc;
    uint64_t count; /* the count case's */
    uint32_t n, bad; /* recipients, batches of a wrong size */
    uint32_t worker[2 * N];
    gt_recipient rec[2 * N];
};

static const char *name;
static struct result *res; /* shared with the reader */
static bool counting;      /* the reader counts (gt_select_count) */
static char stop[32];      /* where it stops */

static uint64_t user(uint32_t i) {
    return 1000 + i;
}

static uint64_t session(uint32_t i, unsigned version) {
    return user(i) << 8 | version;
}

static uint32_t worker(uint32_t i) {
    return i < W2 ? 2 : 1;
}

static void put(gt_table *t, uint32_t i, unsigned version) {
    gt_member m = {.user_id = user(i), .session_id = session(i, version),
                   .worker = worker(i), .flags = GT_ONLINE | GT_ACTIVE};
    cr_assert_eq(gt_insert(t, G, &m, NULL), 0);
}

static int take(void *ctx, uint32_t w, const gt_recipient *b, size_t n) {
    (void)ctx;
    if (n == 0 || n > GT_FANOUT_BATCH)
        res->bad++;
    for (size_t i = 0; i < n && res->n < 2 * N; i++) {
        res->worker[res->n] = w;
        res->rec[res->n++] = b[i];
    }
    return 0;
}

static int reader(void *arg) {
    (void)arg;
    gt_table *t = tc_child_open(name, stop);
    if (counting) {
        /* ONLINE too: a count of ACTIVE alone is the guild's counter */
        gt_filter f = {.flags_set = GT_ACTIVE | GT_ONLINE};
        res->rc = gt_select_count(t, G, &f, 0, 1, &res->count);
    } else {
        gt_filter f = {.flags_set = GT_ACTIVE};
        res->rc = gt_fanout(t, G, &f, 0, 1, take, NULL);
    }
    unsetenv("GT_CRASH_AT");
    gt_close(t);
    return 0;
}

static pid_t stopped_reader; /* until resumed: killed if a test fails */
static void kill_reader(void) {
    if (stopped_reader > 0) {
        kill(stopped_reader, SIGKILL);
        waitpid(stopped_reader, NULL, 0);
        stopped_reader = 0;
    }
}

/* Entry i holds member `member`. */
static void entry_is(gt_table *t, uint32_t i, uint32_t member) {
    struct gt_guild *g = gt_guild_lookup(t, G);
    const struct gt_act *a = gt_at(t, LOAD(&g->act_off, relaxed));
    const struct gt_chunk *ch =
        gt_chunk_at(a, a->nchunks, i / GT_CHUNK_ENTRIES);
    cr_assert_eq(LOAD(&ch->e[i % GT_CHUNK_ENTRIES].user_id, relaxed),
                 user(member), "member %u is not entry %u", member, i);
}

/* A fresh table with G's N members; the reader (a fanout, or a count if
 * count) stopped with chunk `chunk` taken, not checked, while `write`
 * changes the set; then every member must be delivered once, at version
 * want(i) (0: not at all), to its worker; or counted once. */
static void overtake(bool count, uint32_t chunk, void (*write)(gt_table *),
                     unsigned (*want)(uint32_t)) {
    counting = count;
    snprintf(stop, sizeof stop, "chunk_taken:%u:stop", chunk + 1);
    name = tc_name("fanout");
    res = tc_shared(sizeof *res);
    res->rc = 99;
    gt_table *t = tc_open(name, 10000, 4, 0);
    for (uint32_t i = 0; i < N; i++)
        put(t, i, 1);
    entry_is(t, FULL, FULL);
    entry_is(t, DROP_LO, DROP_LO);
    entry_is(t, N - 1, N - 1);
    pid_t p = tc_spawn(reader, NULL);
    tc_stopped(p, "reader");
    write(t);
    kill(p, SIGCONT);
    tc_reap(&p, 1, "reader");
    cr_assert_eq(res->rc, 0, "the reader: %d", res->rc);
    uint32_t seen[N] = {0}, expect = 0;
    for (uint32_t i = 0; i < N; i++)
        expect += want(i) != 0;
    if (count) {
        cr_assert_eq(res->count, expect, "counted %lu, not %u",
                     (unsigned long)res->count, expect);
        tc_drop(t, name);
        return;
    }
    cr_assert_eq(res->bad, 0, "%u batches of a wrong size", res->bad);
    for (uint32_t k = 0; k < res->n; k++) {
        uint64_t u = res->rec[k].user_id;
        cr_assert(u >= user(0) && u < user(N), "a stranger: %lu",
                  (unsigned long)u);
        uint32_t i = (uint32_t)(u - user(0));
        seen[i]++;
        cr_assert_eq(res->rec[k].session_id, session(i, want(i)),
                     "member %u: session %#lx, not version %u", i,
                     (unsigned long)res->rec[k].session_id, want(i));
        cr_assert_eq(res->worker[k], worker(i), "member %u to worker %u", i,
                     res->worker[k]);
    }
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(seen[i], want(i) ? 1u : 0u, "member %u delivered %u "
                     "times", i, seen[i]);
    cr_assert_eq(res->n, expect);
    tc_drop(t, name);
}

/* Members around worker 1's fill leave the fanout set: after the write,
 * chunk 4 no longer fills the batch the reader's first copy filled. */
static void drop(gt_table *t) {
    for (uint32_t i = DROP_LO; i < DROP_HI; i++)
        cr_assert_eq(gt_update_flags(t, G, user(i), 0, GT_ACTIVE, NULL), 0);
}

static unsigned dropped(uint32_t i) {
    return i >= DROP_LO && i < DROP_HI ? 0 : 1;
}

/* A member the reader had copied gets a new session, in place. */
static void replace(gt_table *t) {
    put(t, REPLACED, 2);
}

static unsigned replaced(uint32_t i) {
    return i == REPLACED ? 2 : 1;
}

/* With chunk 3 taken: member BACK, in chunk 0, which the reader has read,
 * leaves the fanout set; a new member takes its place there; BACK comes
 * back, into chunk 4's first free place, which the reader has yet to
 * read. That entry is newer than the reader's start: skipped, or BACK
 * would be delivered twice. */
static void reactivate(gt_table *t) {
    cr_assert_eq(gt_update_flags(t, G, user(BACK), 0, GT_ACTIVE, NULL), 0);
    gt_member m = {.user_id = user(NEWCOMER), .session_id = 1, .worker = 3,
                   .flags = GT_ONLINE | GT_ACTIVE};
    cr_assert_eq(gt_insert(t, G, &m, NULL), 0);
    cr_assert_eq(gt_update_flags(t, G, user(BACK), GT_ACTIVE, 0, NULL), 0);
    entry_is(t, 0 * GT_CHUNK_ENTRIES + BACK, NEWCOMER);
    entry_is(t, N, BACK); /* in chunk 4 */
}

static unsigned unchanged(uint32_t i) {
    (void)i;
    return 1;
}

Test(fault, a_fanout_overtaken_mid_chunk_drops_what_it_copied) {
    overtake(false, 4, drop, dropped);
}

Test(fault, a_fanout_overtaken_mid_chunk_delivers_the_new_version_once) {
    overtake(false, 4, replace, replaced);
}

Test(fault, a_count_overtaken_mid_chunk_counts_what_the_chunk_holds) {
    overtake(true, 4, drop, dropped);
}

Test(fault, a_member_reactivated_mid_fanout_is_delivered_once) {
    overtake(false, 3, reactivate, unchanged);
}

Test(fault, a_member_reactivated_mid_count_is_counted_once) {
    overtake(true, 3, reactivate, unchanged);
}

/* A fanout stopped with chunk 4 taken (worker 1's batch filled in it, not
 * delivered yet) stalls until writers of another guild, needing the
 * memory its pin holds back, evict it. Resumed, it finds chunk 4's seqlock
 * unchanged (nothing wrote G), but it must not deliver the batch: what an
 * evicted reader copied may come from reused memory. It ends with
 * GT_ESTALE, having delivered nothing (no batch filled before chunk 4). */
Test(fault, an_evicted_fanout_delivers_nothing_more, .timeout = 120,
     .fini = kill_reader) {
    counting = false;
    snprintf(stop, sizeof stop, "chunk_taken:5:stop");
    name = tc_name("fanout");
    res = tc_shared(sizeof *res);
    res->rc = 99;
    gt_options o = {.max_members = 50000, .stall_timeout_ms = 200,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    for (uint32_t i = 0; i < N; i++)
        put(t, i, 1);
    entry_is(t, FULL, FULL);
    pid_t p = stopped_reader = tc_spawn(reader, NULL);
    tc_stopped(p, "reader");
    cr_assert_eq(tc_pinned(t, p), 1);
    tc_evict(t, G + 1, p); /* another guild's writes evict the pin */
    kill(p, SIGCONT);
    stopped_reader = 0;
    tc_reap(&p, 1, "reader");
    cr_assert_eq(res->rc, GT_ESTALE, "an evicted fanout returned %d",
                 res->rc);
    cr_assert_eq(res->n, 0, "an evicted fanout delivered %u recipients",
                 res->n);
    tc_drop(t, name);
}
