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
#include "readers.h"

#include <lmdb.h>
#include <signal.h>
#include <stddef.h>

#define GUILD 1u
#define KEY_SIZE 16
#define ROUNDS 3
#define LOOKUPS_DEFAULT 2000000u
#define LOAD_BATCH 100000u /* puts per write txn while loading */
#define FLIP_MAX 200000u   /* write txns per round at most: each takes microseconds */
#define DEP_CHECK_LOOKUPS 10000u
/* The map is address space (a sparse file on tmpfs), so it is generous: the
 * tree takes ~135 B/member, and the file grows to 2.6x that (n = 1M) when
 * each load txn rewrites most leaves, since the pages a txn frees are reused
 * only two txns later. */
#define MAP_PER_MEMBER 1024u
#define MAP_SLACK (64ull << 20)

struct key16 {
    unsigned char b[KEY_SIZE];
};

struct recipient {
    uint64_t user_id, session_id;
};

struct lm {
    uint64_t n, a;     /* members; the dependent cycle's multiplier */
    MDB_env *env;      /* in a forked reader: its own, opened in lm_reader_open */
    MDB_txn *reader;   /* a forked reader's read txn */
    MDB_dbi dbi;
    uint64_t ops;      /* L: lookups per round */
    struct key16 *hit, *miss;
    uint64_t hit_sum;  /* sum of joined_at over the hit keys' members */
    uint64_t half_sum[2]; /* the same over each half, a reader's share */
    struct recipient *fan; /* BENCH_WORKERS lists of fan_cap each */
    uint64_t fan_cap;
    uint64_t *role_out;    /* n */
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

static uint64_t lm_entries(struct lm *b) {
    MDB_txn *txn = lm_begin(b->env, MDB_RDONLY);
    MDB_stat st;
    lm_check(mdb_stat(txn, b->dbi, &st), "mdb_stat");
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* ---- load and footprint ---- */

static double lm_load(struct lm *b) {
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

static double lm_bytes_member(struct lm *b) {
    MDB_envinfo info;
    MDB_stat st;
    lm_check(mdb_env_info(b->env, &info), "mdb_env_info");
    lm_check(mdb_env_stat(b->env, &st), "mdb_env_stat");
    return (double)(info.me_last_pgno + 1) * st.ms_psize / (double)b->n;
}

/* ---- lookups ---- */

static struct key16 *keys16(const uint64_t *ids, uint64_t count) {
    struct key16 *k = malloc(count * sizeof *k);
    if (!k)
        bench_die("out of memory");
    for (uint64_t j = 0; j < count; j++)
        k[j] = key_of(ids[j]);
    return k;
}

static void lm_keys(struct lm *b) {
    uint64_t *hit = bench_keys(b->ops, b->n, false);
    uint64_t *miss = bench_keys(b->ops, b->n, true);
    b->hit = keys16(hit, b->ops);
    b->miss = keys16(miss, b->ops);
    uint64_t half = b->ops / 2;
    for (uint64_t j = 0; j < b->ops; j++) {
        uint64_t joined_at = bench_pick(j, b->n);
        b->hit_sum += joined_at;
        if (j < 2 * half)
            b->half_sum[j / half] += joined_at;
    }
    free(hit);
    free(miss);
}

/* Look up keys[0..count): return the hits and, in *sum, the sum of the
 * members' joined_at (which says the right records were copied). */
static uint64_t lm_lookups(MDB_txn *txn, MDB_dbi dbi, const struct key16 *keys,
                           uint64_t count, uint64_t *sum) {
    uint64_t hits = 0, s = 0;
    for (uint64_t j = 0; j < count; j++)
        if (lm_get(txn, dbi, &keys[j], &copied_out)) {
            hits++;
            s += (uint64_t)copied_out.joined_at;
        }
    *sum = s;
    return hits;
}

/* One round of independent lookups in one read txn: ns per lookup. */
static double lm_round(struct lm *b, const struct key16 *keys, uint64_t *hits,
                       uint64_t *sum) {
    double t0 = bench_now();
    MDB_txn *txn = lm_begin(b->env, MDB_RDONLY);
    *hits = lm_lookups(txn, b->dbi, keys, b->ops, sum);
    mdb_txn_abort(txn);
    return (bench_now() - t0) / (double)b->ops * 1e9;
}

/* `lookups` dependent lookups in one read txn, the first of member 0, each
 * next key the session_id of the record just copied; returns how many of
 * sum of joined_at % 1000 of the members found (check_dep: of the first
 * 10000). */
static uint64_t lm_follow(struct lm *b, MDB_txn *txn, uint64_t lookups) {
    uint64_t user_id = bench_uid(0), active = 0;
    for (uint64_t s = 0; s < lookups; s++) {
        struct key16 k = key_of(user_id);
        if (!lm_get(txn, b->dbi, &k, &copied_out))
            bench_die("a dependent lookup missed");
        active += (uint64_t)copied_out.joined_at % 1000;
        user_id = copied_out.session_id;
    }
    return active;
}

static double lm_dep_round(struct lm *b) {
    double t0 = bench_now();
    MDB_txn *txn = lm_begin(b->env, MDB_RDONLY);
    lm_follow(b, txn, b->ops);
    mdb_txn_abort(txn);
    return (bench_now() - t0) / (double)b->ops * 1e9;
}

static uint64_t lm_dep_check(struct lm *b) {
    MDB_txn *txn = lm_begin(b->env, MDB_RDONLY);
    uint64_t active = lm_follow(b, txn, DEP_CHECK_LOOKUPS);
    mdb_txn_abort(txn);
    return active;
}

/* ---- forked readers ---- */

/* In the child, before the clock: the parent's environment must not be used
 * across fork, so open another on the same files, read-only. */
static void lm_reader_open(void *ctx, int which) {
    struct lm *b = ctx;
    (void)which;
    lm_check(mdb_env_create(&b->env), "mdb_env_create (reader)");
    lm_check(mdb_env_open(b->env, dir_path, MDB_RDONLY, 0600),
             "mdb_env_open (reader)");
    b->reader = lm_begin(b->env, MDB_RDONLY);
    lm_check(mdb_dbi_open(b->reader, NULL, 0, &b->dbi), "mdb_dbi_open (reader)");
}

/* Reader `which` looks up its half of the keys (as every driver does). */
static uint64_t lm_reader_run(void *ctx, int which) {
    struct lm *b = ctx;
    uint64_t half = b->ops / 2, sum;
    uint64_t hits = lm_lookups(b->reader, b->dbi, b->hit + (uint64_t)which * half,
                               half, &sum);
    if (hits != half || sum != b->half_sum[which])
        bench_die("a reader process read wrong records");
    return half;
}

static void lm_readers(struct lm *b) {
    bench_readers(lm_reader_open, lm_reader_run, b);
    /* The readers exited inside their read txns; free their reader slots,
     * which would otherwise pin old pages and grow the file under writes. */
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

static uint64_t lm_fanout(void *ctx) {
    struct lm *b = ctx;
    uint64_t fill[BENCH_WORKERS] = {0}, got = 0;
    struct walk w;
    walk_open(b, &w);
    for (const unsigned char *v; (v = walk_next(&w));) {
        uint32_t flags, worker;
        FIELD(v, flags, flags);
        if (!(flags & BENCH_ACTIVE))
            continue;
        FIELD(v, worker, worker);
        if (worker >= BENCH_WORKERS || fill[worker] == b->fan_cap)
            bench_die("fanout: a worker out of range");
        struct recipient *r = &b->fan[worker * b->fan_cap + fill[worker]++];
        FIELD(v, user_id, r->user_id);
        FIELD(v, session_id, r->session_id);
        got++;
    }
    walk_close(&w);
    return got;
}

static uint64_t lm_role(void *ctx) {
    struct lm *b = ctx;
    uint64_t got = 0;
    struct walk w;
    walk_open(b, &w);
    for (const unsigned char *v; (v = walk_next(&w));) {
        uint64_t roles0;
        FIELD(v, roles[0], roles0);
        if (roles0 & (1ull << BENCH_ROLE)) {
            if (got == b->n)
                bench_die("role: more members than loaded");
            FIELD(v, user_id, b->role_out[got]);
            got++;
        }
    }
    walk_close(&w);
    return got;
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

/* One round of w's flips: M flips/s. */
static double lm_flips(struct lm *b, const struct bench_writes *w) {
    double t0 = bench_now();
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
    return (double)w->flips / (bench_now() - t0) / 1e6;
}

/* One round of w's churn pairs (delete the member, insert it again, in one
 * write txn): M pairs/s. */
static double lm_churn(struct lm *b, const struct bench_writes *w) {
    double t0 = bench_now();
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
    return (double)w->churns / (bench_now() - t0) / 1e6;
}

/* ---- the run ---- */

static void run_lookups(struct lm *b, struct bench_checks *c) {
    double t[ROUNDS];
    uint64_t hits, sum;
    for (int r = 0; r < ROUNDS; r++) {
        t[r] = lm_round(b, b->hit, &hits, &sum);
        if (hits != b->ops || sum != b->hit_sum)
            bench_die("lookups returned wrong records");
        c->hits = hits;
    }
    bench_emit("lookup_ns", bench_median(t, ROUNDS));
    for (int r = 0; r < ROUNDS; r++)
        t[r] = lm_dep_round(b);
    bench_emit("lookup_dep_ns", bench_median(t, ROUNDS));
    c->dep = lm_dep_check(b);
    for (int r = 0; r < ROUNDS; r++) {
        t[r] = lm_round(b, b->miss, &hits, &sum);
        c->misses = hits;
    }
    bench_emit("miss_ns", bench_median(t, ROUNDS));
    lm_readers(b);
}

static void run_scans(struct lm *b, struct bench_checks *c) {
    b->fan_cap = (b->n + BENCH_WORKERS - 1) / BENCH_WORKERS;
    b->fan = bench_alloc(BENCH_WORKERS * b->fan_cap * sizeof *b->fan);
    b->role_out = bench_alloc(b->n * sizeof *b->role_out);
    bench_emit("fanout_ms", bench_scan_ms(lm_fanout, b, &c->active));
    bench_emit("role_ms", bench_scan_ms(lm_role, b, &c->role));
    bench_emit("count_ms", bench_scan_ms(lm_count, b, &c->count));
    free(b->fan);
    free(b->role_out);
}

static void run_writes(struct lm *b) {
    struct bench_writes *w =
        bench_writes_make(b->ops < FLIP_MAX ? b->ops : FLIP_MAX, b->n);
    double t[ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        t[r] = lm_flips(b, w);
    bench_emit("flip_mps", bench_median(t, ROUNDS));
    for (int r = 0; r < ROUNDS; r++)
        t[r] = lm_churn(b, w);
    if (lm_entries(b) != b->n)
        bench_die("churn changed the member count");
    bench_emit("churn_mps", bench_median(t, ROUNDS));
    bench_writes_free(w);
}

int main(int argc, char **argv) {
    struct lm b = {.n = bench_args(argc, argv, "lmdb")};
    b.a = bench_lcg_a(b.n);
    b.ops = bench_ops(LOOKUPS_DEFAULT);
    if (b.ops == 0)
        bench_die("BENCH_OPS must be positive");
    struct bench_checks c = {0};

    double rss0 = bench_rss();
    lm_open(&b);
    bench_emit("load_mps", lm_load(&b));
    double rss1 = bench_rss();
    bench_emit("bytes_member", lm_bytes_member(&b));
    bench_emit("rss_member", (rss1 - rss0) / (double)b.n);

    lm_keys(&b);
    run_lookups(&b, &c);
    run_scans(&b, &c);
    run_writes(&b);
    bench_emit_checks(&c, b.ops);

    free(b.hit);
    free(b.miss);
    mdb_env_close(b.env);
    return 0;
}
