/*
 * lmdb.c - the LMDB peer of tools/bench: the workload of bench.h run against
 * an LMDB environment, following the contract in README.md (metrics, units,
 * order).
 *
 * Usage: lmdb N   (prints JSON lines; see README.md)
 *
 * Layout. The key is 16 bytes big-endian (guild_id = 1, user_id): LMDB's
 * default comparison is memcmp, so big-endian keeps one guild in one key
 * range and a fanout is one cursor walk. The value is the 64-byte
 * struct bench_member.
 *
 * Environment. A fresh directory under /dev/shm (mkdtemp), so the pages are
 * memory and what is measured is LMDB's own work; it is removed at exit, on
 * bench_die and on SIGINT/SIGTERM/SIGHUP. Flags, for LMDB at its fastest in
 * memory with every write txn still committed and visible:
 * - MDB_WRITEMAP: a write txn changes pages in the shared map itself, not
 *   malloc'd copies written back with pwrite at commit: the fastest write
 *   path when the file is memory.
 * - MDB_NOSYNC: a commit skips msync/fdatasync. That gives up durability
 *   (not part of the contract: every peer here is in-memory), never
 *   visibility: the commit still switches the meta page in the shared map,
 *   and a read txn begun after mdb_txn_commit returns sees the write.
 *   MDB_NOMETASYNC only skips the meta page's sync, which NOSYNC already
 *   skips, so it would change nothing.
 * - not MDB_NOTLS: it matters only to a thread holding several read txns or
 *   moving one between threads; every process here has one thread and at
 *   most one read txn at a time.
 * - not MDB_NOLOCK: the lock file's reader table is what lets reader
 *   processes run beside the writer; LMDB without it is another system.
 *
 * Each timed figure and its workload, as the README asks:
 * - load_mps: n mdb_put (MDB_NOOVERWRITE) in member order, 100000 puts per
 *   write txn; each record is built (bench_member_make) inside the clock.
 * - bytes_member: pages up to the last one used, (me_last_pgno + 1) * page
 *   size, / n. rss_member: VmRSS growth over the load (the mapped pages
 *   the load wrote), / n.
 * - lookup_ns, miss_ns: L = bench_ops(2000000) mdb_get per round, all in one
 *   read txn per round (LMDB's fastest use: no reader-slot work per get);
 *   each copies the 64-byte value out. lookup_dep_ns: the same, the next
 *   key being the session_id just copied. Median of 3 rounds.
 * - lookup_1p/2p_mops, lookup_scaling: forked readers (readers.h); LMDB
 *   forbids using an environment across fork, so each opens its own
 *   (MDB_RDONLY) before the clock and looks up its half of the L keys in
 *   one read txn, which it keeps for the rounds.
 * - fanout_ms, role_ms, count_ms: one read txn and one cursor walk of the
 *   guild's key range each; median of repeated scans.
 * - flip_mps, churn_mps: the operations of bench_writes_make(F), F =
 *   min(L, 200000) (a write txn costs microseconds): F flips and F/2 churn
 *   pairs per round, one write txn each (a flip: get, copy, set flags, put;
 *   a pair: del, put), so each is committed and visible when it returns.
 *   Median of 3 rounds.
 */
#include "drive.h"

#include <lmdb.h>
#include <signal.h>
#include <stddef.h>

#define GUILD 1u
#define KEY_SIZE 16
#define LOAD_BATCH 100000u /* puts per write txn while loading */
#define FLIP_MAX 200000u   /* write txns per round at most: each takes microseconds */
/* The map is address space (a sparse file on tmpfs), so it is generous: the
 * tree takes ~135 B/member, and the file grows to 2.6x that (n = 1M) when
 * each load txn rewrites most leaves, since the pages a txn frees are reused
 * only two txns later. */
#define MAP_PER_MEMBER 1024u
#define MAP_SLACK (64ull << 20)

struct key16 {
    unsigned char b[KEY_SIZE];
};

struct lm {
    uint64_t n, a;     /* members; the dependent cycle's multiplier */
    MDB_env *env;      /* in a forked reader: its own, opened in lm_reader_open */
    MDB_txn *reader;   /* a forked reader's read txn */
    MDB_dbi dbi;
};

/* Every lookup copies its record here: a global the library calls that
 * follow could read, so the compiler has to perform the whole copy. */
struct bench_member copied_out;

/* ---- the environment's directory ---- */

static char dir_path[] = "/dev/shm/guildtab-lmdb-XXXXXX";
static char data_path[sizeof dir_path + 16], lock_path[sizeof dir_path + 16];
static volatile sig_atomic_t dir_owner; /* the pid that made it; 0: none yet */

/* Remove the environment's files and directory. Only the process that made
 * them does, so a forked reader that exits or dies leaves them alone.
 * Async-signal-safe; errors are ignored: a file may not exist yet, and at
 * exit there is nothing else to do about them. */
static void env_remove(void) {
    if (dir_owner != getpid())
        return;
    unlink(data_path);
    unlink(lock_path);
    rmdir(dir_path);
}

static void on_signal(int sig) {
    env_remove();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void env_dir_make(void) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (sigaction(sigs[i], &sa, NULL))
            bench_die("sigaction");
    if (atexit(env_remove))
        bench_die("atexit");
    if (!mkdtemp(dir_path))
        bench_die("mkdtemp under /dev/shm");
    if (snprintf(data_path, sizeof data_path, "%s/data.mdb", dir_path) < 0 ||
        snprintf(lock_path, sizeof lock_path, "%s/lock.mdb", dir_path) < 0)
        bench_die("snprintf");
    dir_owner = getpid();
}

/* ---- LMDB helpers ---- */

static void lm_check(int rc, const char *what) {
    if (rc == MDB_SUCCESS)
        return;
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, mdb_strerror(rc));
    bench_die(msg);
}

static void put_be64(unsigned char *p, uint64_t x) {
    for (int i = 7; i >= 0; i--, x >>= 8)
        p[i] = (unsigned char)x;
}

static struct key16 key_of(uint64_t user_id) {
    struct key16 k;
    put_be64(k.b, GUILD);
    put_be64(k.b + 8, user_id);
    return k;
}

static MDB_val val_of_key(const struct key16 *k) {
    /* LMDB takes MDB_val by non-const pointer but never writes a key. */
    return (MDB_val){.mv_size = KEY_SIZE, .mv_data = (void *)k->b};
}

/* Copy the member with key *k into *out: 1 if found, 0 if absent. */
static inline int lm_get(MDB_txn *txn, MDB_dbi dbi, const struct key16 *k,
                         struct bench_member *out) {
    MDB_val key = val_of_key(k), val;
    int rc = mdb_get(txn, dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    lm_check(rc, "mdb_get");
    if (val.mv_size != sizeof *out)
        bench_die("a value is not a bench_member");
    memcpy(out, val.mv_data, sizeof *out);
    return 1;
}

static MDB_txn *lm_begin(MDB_env *env, unsigned flags) {
    MDB_txn *txn;
    lm_check(mdb_txn_begin(env, NULL, flags, &txn), "mdb_txn_begin");
    return txn;
}

static void lm_open(struct lm *b) {
    env_dir_make();
    lm_check(mdb_env_create(&b->env), "mdb_env_create");
    lm_check(mdb_env_set_mapsize(b->env, b->n * MAP_PER_MEMBER + MAP_SLACK),
             "mdb_env_set_mapsize");
    lm_check(mdb_env_open(b->env, dir_path, MDB_WRITEMAP | MDB_NOSYNC, 0600),
             "mdb_env_open");
    MDB_txn *txn = lm_begin(b->env, 0);
    lm_check(mdb_dbi_open(txn, NULL, 0, &b->dbi), "mdb_dbi_open");
    lm_check(mdb_txn_commit(txn), "mdb_txn_commit");
}

static uint64_t lm_entries(void *ctx) {
    struct lm *b = ctx;
    MDB_txn *txn = lm_begin(b->env, MDB_RDONLY);
    MDB_stat st;
    lm_check(mdb_stat(txn, b->dbi, &st), "mdb_stat");
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* ---- load and footprint ---- */

static double lm_load(void *ctx, uint64_t n, uint64_t a) {
    struct lm *b = ctx;
    b->n = n;
    b->a = a;
    lm_open(b);
    MDB_txn *txn = NULL;
    double t0 = bench_now();
    for (uint64_t i = 0; i < b->n; i++) {
        if (i % LOAD_BATCH == 0)
            txn = lm_begin(b->env, 0);
        struct bench_member m;
        bench_member_make(i, b->n, b->a, &m);
        struct key16 k = key_of(m.user_id);
        MDB_val key = val_of_key(&k), val = {.mv_size = sizeof m, .mv_data = &m};
        lm_check(mdb_put(txn, b->dbi, &key, &val, MDB_NOOVERWRITE), "mdb_put");
        if ((i + 1) % LOAD_BATCH == 0 || i + 1 == b->n)
            lm_check(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    double t = bench_now() - t0;
    if (lm_entries(b) != b->n)
        bench_die("the load lost members");
    return (double)b->n / t / 1e6;
}

static double lm_bytes_member(void *ctx) {
    struct lm *b = ctx;
    MDB_envinfo info;
    MDB_stat st;
    lm_check(mdb_env_info(b->env, &info), "mdb_env_info");
    lm_check(mdb_env_stat(b->env, &st), "mdb_env_stat");
    return (double)(info.me_last_pgno + 1) * st.ms_psize / (double)b->n;
}

/* ---- lookups ---- */

/* The run's keys as LMDB's: made before the clock. */
static const void *lm_keys(void *ctx, const uint64_t *ids, uint64_t count) {
    (void)ctx;
    struct key16 *k = bench_alloc(count * sizeof *k);
    for (uint64_t j = 0; j < count; j++)
        k[j] = key_of(ids[j]);
    return k;
}

/* Look up keys from .. from + count - 1 in one read txn (a forked reader's,
 * kept for its passes; else one begun and ended inside the clock): return
 * the hits and, in *sum, the sum of the members' joined_at (which says the
 * right records were copied). */
static uint64_t lm_lookups(void *ctx, const void *keys, uint64_t from,
                           uint64_t count, uint64_t *sum) {
    struct lm *b = ctx;
    const struct key16 *key = (const struct key16 *)keys + from;
    MDB_txn *txn = b->reader ? b->reader : lm_begin(b->env, MDB_RDONLY);
    uint64_t hits = 0, s = 0;
    for (uint64_t j = 0; j < count; j++)
        if (lm_get(txn, b->dbi, &key[j], &copied_out)) {
            hits++;
            s += (uint64_t)copied_out.joined_at;
        }
    if (!b->reader)
        mdb_txn_abort(txn);
    *sum = s;
    return hits;
}

/* `lookups` dependent lookups in one read txn, the first of member 0, each
 * next key the session_id of the record just copied; returns the sum of
 * joined_at % 1000 of the members found. */
static uint64_t lm_follow(void *ctx, uint64_t lookups) {
    struct lm *b = ctx;
    MDB_txn *txn = lm_begin(b->env, MDB_RDONLY);
    uint64_t user_id = bench_uid(0), active = 0;
    for (uint64_t s = 0; s < lookups; s++) {
        struct key16 k = key_of(user_id);
        if (!lm_get(txn, b->dbi, &k, &copied_out))
            bench_die("a dependent lookup missed");
        active += (uint64_t)copied_out.joined_at % 1000;
        user_id = copied_out.session_id;
    }
    mdb_txn_abort(txn);
    return active;
}

/* ---- forked readers ---- */

/* In the child, before the clock: the parent's environment must not be used
 * across fork, so open another on the same files, read-only, and begin the
 * read txn the reader's passes use. */
static void lm_reader_open(void *ctx, int which) {
    struct lm *b = ctx;
    (void)which;
    lm_check(mdb_env_create(&b->env), "mdb_env_create (reader)");
    lm_check(mdb_env_open(b->env, dir_path, MDB_RDONLY, 0600),
             "mdb_env_open (reader)");
    b->reader = lm_begin(b->env, MDB_RDONLY);
    lm_check(mdb_dbi_open(b->reader, NULL, 0, &b->dbi), "mdb_dbi_open (reader)");
}

/* The readers exited inside their read txns: free their reader slots, which
 * would otherwise pin old pages and grow the file under writes. */
static void lm_readers_done(void *ctx) {
    struct lm *b = ctx;
    int dead;
    lm_check(mdb_reader_check(b->env, &dead), "mdb_reader_check");
}

/* ---- scans of the guild's key range ---- */

struct walk {
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;
};

static void walk_open(struct lm *b, struct walk *w) {
    struct key16 first = key_of(0);
    w->txn = lm_begin(b->env, MDB_RDONLY);
    lm_check(mdb_cursor_open(w->txn, b->dbi, &w->cur), "mdb_cursor_open");
    w->key = val_of_key(&first);
    w->rc = mdb_cursor_get(w->cur, &w->key, &w->val, MDB_SET_RANGE);
}

/* The next member of the guild, or NULL past its range. Points into the
 * map: valid until the walk closes. */
static inline const unsigned char *walk_next(struct walk *w) {
    static const unsigned char guild[8] = {0, 0, 0, 0, 0, 0, 0, GUILD};
    if (w->rc == MDB_NOTFOUND)
        return NULL;
    lm_check(w->rc, "mdb_cursor_get");
    if (w->key.mv_size != KEY_SIZE || memcmp(w->key.mv_data, guild, sizeof guild))
        return NULL;
    const unsigned char *v = w->val.mv_data;
    w->rc = mdb_cursor_get(w->cur, &w->key, &w->val, MDB_NEXT);
    return v;
}

static void walk_close(struct walk *w) {
    mdb_cursor_close(w->cur);
    mdb_txn_abort(w->txn);
}

/* Values in the map are only 2-byte aligned: fields are read by memcpy. */
#define FIELD(v, name, out) \
    memcpy(&(out), (v) + offsetof(struct bench_member, name), sizeof(out))

static uint64_t lm_fanout(void *ctx, struct bench_out *o) {
    struct lm *b = ctx;
    uint64_t got = 0;
    struct walk w;
    walk_open(b, &w);
    for (const unsigned char *v; (v = walk_next(&w));) {
        uint32_t flags, worker;
        FIELD(v, flags, flags);
        if (!(flags & BENCH_ACTIVE))
            continue;
        FIELD(v, worker, worker);
        struct bench_recipient *r = bench_fan_room(o, worker, 1);
        FIELD(v, user_id, r->user_id);
        FIELD(v, session_id, r->session_id);
        got++;
    }
    walk_close(&w);
    return got;
}

static uint64_t lm_role(void *ctx, struct bench_out *o) {
    struct lm *b = ctx;
    struct walk w;
    walk_open(b, &w);
    for (const unsigned char *v; (v = walk_next(&w));) {
        uint64_t roles0, user_id;
        FIELD(v, roles[0], roles0);
        if (roles0 & (1ull << BENCH_ROLE)) {
            FIELD(v, user_id, user_id);
            bench_role_add(o, user_id);
        }
    }
    walk_close(&w);
    return o->nrole;
}

static uint64_t lm_count(void *ctx) {
    struct lm *b = ctx;
    uint64_t online = 0;
    struct walk w;
    walk_open(b, &w);
    for (const unsigned char *v; (v = walk_next(&w));) {
        uint32_t flags;
        FIELD(v, flags, flags);
        online += (flags & BENCH_ONLINE) != 0;
    }
    walk_close(&w);
    return online;
}

/* ---- writes: one write txn per operation, committed when it returns ---- */

static void lm_flips(void *ctx, const struct bench_writes *w) {
    struct lm *b = ctx;
    for (uint64_t k = 0; k < w->flips; k++) {
        struct key16 k16 = key_of(w->flip_uid[k]);
        MDB_txn *txn = lm_begin(b->env, 0);
        struct bench_member m;
        if (!lm_get(txn, b->dbi, &k16, &m))
            bench_die("flip: a member is missing");
        m.flags = w->flip_flags[k];
        MDB_val key = val_of_key(&k16);
        MDB_val val = {.mv_size = sizeof m, .mv_data = &m};
        lm_check(mdb_put(txn, b->dbi, &key, &val, 0), "mdb_put (flip)");
        lm_check(mdb_txn_commit(txn), "mdb_txn_commit (flip)");
    }
}

/* w's churn pairs: delete the member, insert it again, in one write txn. */
static void lm_churn(void *ctx, const struct bench_writes *w) {
    struct lm *b = ctx;
    for (uint64_t k = 0; k < w->churns; k++) {
        struct key16 k16 = key_of(w->churn[k].user_id);
        MDB_txn *txn = lm_begin(b->env, 0);
        MDB_val key = val_of_key(&k16);
        MDB_val val = {.mv_size = sizeof w->churn[k], .mv_data = &w->churn[k]};
        lm_check(mdb_del(txn, b->dbi, &key, NULL), "mdb_del (churn)");
        lm_check(mdb_put(txn, b->dbi, &key, &val, MDB_NOOVERWRITE),
                 "mdb_put (churn)");
        lm_check(mdb_txn_commit(txn), "mdb_txn_commit (churn)");
    }
}

static const struct bench_ops lm_ops = {
    .load = lm_load, .bytes_member = lm_bytes_member, .keys = lm_keys,
    .lookups = lm_lookups, .follow = lm_follow, .reader_open = lm_reader_open,
    .readers_done = lm_readers_done, .fanout = lm_fanout, .role = lm_role,
    .count = lm_count, .flips = lm_flips, .churn = lm_churn,
    .members = lm_entries, .max_writes = FLIP_MAX};

int main(int argc, char **argv) {
    struct lm b = {0};
    bench_drive(argc, argv, "lmdb", &lm_ops, &b);
    mdb_env_close(b.env);
    return 0;
}
