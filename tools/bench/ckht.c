/*
 * ckht.c - the Concurrency Kit peer of tools/bench: the workload of bench.h
 * run against ck_ht, CK's single-producer multi-consumer hash table, in one
 * process, following the contract in README.md (metrics, units, order).
 *
 * Usage: ckht N   (prints JSON lines; see README.md)
 *
 * Layout. CK_HT_MODE_DIRECT | CK_HT_WORKLOAD_DELETE: a 64-bit key (the
 * user_id; 0 and ~0 mark empty and deleted slots, so no member may have
 * them, which the load and the key builders check) maps to a pointer-sized
 * value, with a per-slot probe bound that keeps probes short once members
 * are deleted. A slot holds a key and a pointer, not a record, so the
 * 64-byte records live in one array of n allocated up front, 64-byte
 * aligned (one cache line each, no per-record allocator headers: the
 * cheapest place a ck_ht user could keep them), and the value is the
 * record's address. The table is presized (ck_ht_init's size is slots, and
 * ck_ht keeps the load factor at or under 0.5, so it gets 2n) so that the
 * load never grows it; the hash is CK's default (MurmurHash64A).
 *
 * ck_ht indexes one key only: no guild grouping, no secondary index on flags
 * or roles. fanout, role select and count are therefore full scans of the
 * table (ck_ht_next over every slot), each entry followed to its record.
 *
 * Each timed figure and its workload, as the README asks:
 * - load_mps: n ck_ht_put_spmc in member order; each record is built
 *   (bench_member_make) into the array inside the clock, the table is
 *   created before it.
 * - bytes_member: the bytes ck_ht holds through its allocator (counted by
 *   the wrappers below) plus the record array, / n. rss_member: VmRSS
 *   growth from before the table and array exist to after the load, / n.
 * - lookup_ns, miss_ns: L = bench_ops(2000000) ck_ht_get_spmc per round,
 *   each copying the 64-byte record out. lookup_dep_ns: the next key is the
 *   session_id just copied. Median of 3 rounds.
 * - lookup_1p/2p_mops, lookup_scaling: forked readers (readers.h), each
 *   looking up its half of the L keys, read the parent's table and records
 *   through the fork's copy-on-write pages. They only read, so nothing is
 *   copied and this is the table's read path; but ck_ht is a structure of
 *   one process, and a forked reader sees a snapshot, not later writes.
 * - flip_mps, churn_mps: the operations of bench_writes_make(L), L flips and
 *   L/2 churn pairs per round. A flip is ck_ht_get_spmc, then a relaxed
 *   atomic store of the new flags into the record (the only writer; the
 *   table itself does not change); a pair is ck_ht_remove_spmc, then the
 *   record rewritten and ck_ht_put_spmc. Median of 3 rounds.
 */
#include "drive.h"

#include <ck_ht.h>

#define RECORD_ALIGN 64 /* one record per cache line */
#define SLOTS_PER_MEMBER 2 /* ck_ht grows past a load factor of 0.5 */
#define HASH_SEED 0x636b6874ull

struct ht_bench {
    uint64_t n, a;     /* members; the dependent cycle's multiplier */
    ck_ht_t ht;
    struct bench_member *rec; /* n records; the table's values point here */
};

/* Every lookup copies its record here: a global the library calls that
 * follow could read, so the compiler has to perform the whole copy. */
struct bench_member copied_out;

/* ---- the allocator: CK's own accounting of what it holds ---- */

static size_t heap_bytes; /* live bytes ck_ht holds through the wrappers */

static void *ht_malloc(size_t size) {
    void *p = malloc(size);
    if (p)
        heap_bytes += size;
    return p;
}

/* `defer` asks to delay a free until concurrent readers are done with it
 * (an SMR scheme such as ck_epoch). This process has no concurrent readers:
 * the forked ones have their own copy. So everything is freed at once. */
static void *ht_realloc(void *p, size_t old, size_t size, bool defer) {
    (void)defer;
    void *q = realloc(p, size);
    if (q)
        heap_bytes += size - old;
    return q;
}

static void ht_free(void *p, size_t size, bool defer) {
    (void)defer;
    free(p);
    heap_bytes -= size;
}

static struct ck_malloc allocator = {
    .malloc = ht_malloc, .realloc = ht_realloc, .free = ht_free};

/* ---- table helpers ---- */

static void key_ok(uint64_t key) {
    if (key == CK_HT_KEY_EMPTY || key == CK_HT_KEY_TOMBSTONE)
        bench_die("a key is one of ck_ht's reserved values");
}

/* The record of member `key`, or NULL. */
static inline struct bench_member *ht_find(ck_ht_t *ht, uint64_t key) {
    ck_ht_hash_t h;
    ck_ht_entry_t e;
    ck_ht_hash_direct(&h, ht, key);
    ck_ht_entry_key_set_direct(&e, key);
    if (!ck_ht_get_spmc(ht, h, &e))
        return NULL;
    return (struct bench_member *)ck_ht_entry_value_direct(&e);
}

static void ht_insert(ck_ht_t *ht, struct bench_member *m) {
    ck_ht_hash_t h;
    ck_ht_entry_t e;
    ck_ht_hash_direct(&h, ht, m->user_id);
    ck_ht_entry_set_direct(&e, h, m->user_id, (uintptr_t)m);
    if (!ck_ht_put_spmc(ht, h, &e))
        bench_die("ck_ht_put_spmc: a duplicate key or out of memory");
}

/* ---- load and footprint ---- */

static double ht_load(void *ctx, uint64_t n, uint64_t a) {
    struct ht_bench *b = ctx;
    b->n = n;
    b->a = a;
    b->rec = aligned_alloc(RECORD_ALIGN, b->n * sizeof *b->rec);
    if (!b->rec)
        bench_die("out of memory for the records");
    if (!ck_ht_init(&b->ht, CK_HT_MODE_DIRECT | CK_HT_WORKLOAD_DELETE, NULL,
                    &allocator, b->n * SLOTS_PER_MEMBER, HASH_SEED))
        bench_die("ck_ht_init");
    size_t presized = heap_bytes;
    double t0 = bench_now();
    for (uint64_t i = 0; i < b->n; i++) {
        struct bench_member *m = &b->rec[i];
        bench_member_make(i, b->n, b->a, m);
        key_ok(m->user_id);
        ht_insert(&b->ht, m);
    }
    double t = bench_now() - t0;
    if (ck_ht_count(&b->ht) != b->n)
        bench_die("the load lost members");
    if (heap_bytes != presized)
        bench_die("the table grew during the load: presized too small");
    return (double)b->n / t / 1e6;
}

static double ht_bytes_member(void *ctx) {
    struct ht_bench *b = ctx;
    return (double)(heap_bytes + b->n * sizeof *b->rec) / (double)b->n;
}

static uint64_t ht_members(void *ctx) {
    struct ht_bench *b = ctx;
    return ck_ht_count(&b->ht);
}

/* ---- lookups ---- */

/* No key may be one of ck_ht's reserved values (the hit keys are members',
 * which the load checks). */
static const void *ht_keys(void *ctx, const uint64_t *ids, uint64_t count) {
    (void)ctx;
    for (uint64_t j = 0; j < count; j++)
        key_ok(ids[j]);
    return ids;
}

/* Look up keys from .. from + count - 1: return the hits and, in *sum, the
 * sum of the members' joined_at (which says the right records were
 * copied). */
static uint64_t ht_lookups(void *ctx, const void *keys, uint64_t from,
                           uint64_t count, uint64_t *sum) {
    struct ht_bench *b = ctx;
    const uint64_t *key = (const uint64_t *)keys + from;
    uint64_t hits = 0, s = 0;
    for (uint64_t j = 0; j < count; j++) {
        const struct bench_member *m = ht_find(&b->ht, key[j]);
        if (m) {
            memcpy(&copied_out, m, sizeof copied_out);
            hits++;
            s += (uint64_t)copied_out.joined_at;
        }
    }
    *sum = s;
    return hits;
}

/* `lookups` dependent lookups, the first of member 0, each next key the
 * session_id of the record just copied; returns the sum of joined_at % 1000
 * of the members found. */
static uint64_t ht_follow(void *ctx, uint64_t lookups) {
    struct ht_bench *b = ctx;
    uint64_t user_id = bench_uid(0), active = 0;
    for (uint64_t s = 0; s < lookups; s++) {
        const struct bench_member *m = ht_find(&b->ht, user_id);
        if (!m)
            bench_die("a dependent lookup missed");
        memcpy(&copied_out, m, sizeof copied_out);
        active += (uint64_t)copied_out.joined_at % 1000;
        user_id = copied_out.session_id;
    }
    return active;
}

/* ---- full scans (ck_ht has no secondary index) ---- */

static inline const struct bench_member *scan_next(ck_ht_t *ht,
                                                   ck_ht_iterator_t *it) {
    ck_ht_entry_t *e;
    if (!ck_ht_next(ht, it, &e))
        return NULL;
    return (const struct bench_member *)ck_ht_entry_value_direct(e);
}

static uint64_t ht_fanout(void *ctx, struct bench_out *o) {
    struct ht_bench *b = ctx;
    uint64_t got = 0;
    ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
    for (const struct bench_member *m; (m = scan_next(&b->ht, &it));) {
        if (!(m->flags & BENCH_ACTIVE))
            continue;
        *bench_fan_room(o, m->worker, 1) =
            (struct bench_recipient){m->user_id, m->session_id};
        got++;
    }
    return got;
}

static uint64_t ht_role(void *ctx, struct bench_out *o) {
    struct ht_bench *b = ctx;
    ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
    for (const struct bench_member *m; (m = scan_next(&b->ht, &it));)
        if (m->roles[0] & (1ull << BENCH_ROLE))
            bench_role_add(o, m->user_id);
    return o->nrole;
}

static uint64_t ht_count(void *ctx) {
    struct ht_bench *b = ctx;
    uint64_t online = 0;
    ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
    for (const struct bench_member *m; (m = scan_next(&b->ht, &it));)
        online += (m->flags & BENCH_ONLINE) != 0;
    return online;
}

/* ---- writes (this process is the single producer) ---- */

static void ht_flips(void *ctx, const struct bench_writes *w) {
    struct ht_bench *b = ctx;
    for (uint64_t k = 0; k < w->flips; k++) {
        struct bench_member *m = ht_find(&b->ht, w->flip_uid[k]);
        if (!m)
            bench_die("flip: a member is missing");
        /* Relaxed: a flip publishes nothing but these 4 bytes, which a
         * reader must see whole, never torn; no other write is ordered by
         * it, so no fence is owed. */
        __atomic_store_n(&m->flags, w->flip_flags[k], __ATOMIC_RELAXED);
    }
}

/* w's churn pairs: remove the member, insert it again. */
static void ht_churn(void *ctx, const struct bench_writes *w) {
    struct ht_bench *b = ctx;
    for (uint64_t k = 0; k < w->churns; k++) {
        uint64_t key = w->churn[k].user_id;
        ck_ht_hash_t h;
        ck_ht_entry_t e;
        ck_ht_hash_direct(&h, &b->ht, key);
        ck_ht_entry_key_set_direct(&e, key);
        if (!ck_ht_remove_spmc(&b->ht, h, &e))
            bench_die("churn: a member is missing");
        /* The removed record's place is rewritten and reused at once: no
         * reader runs in this process. With concurrent readers it could be
         * reused only once they are done with it (ck_epoch). */
        struct bench_member *m =
            (struct bench_member *)ck_ht_entry_value_direct(&e);
        *m = w->churn[k];
        ht_insert(&b->ht, m);
    }
}

static const struct bench_ops ht_ops = {
    .load = ht_load, .bytes_member = ht_bytes_member, .keys = ht_keys,
    .lookups = ht_lookups, .follow = ht_follow, .fanout = ht_fanout,
    .role = ht_role, .count = ht_count, .flips = ht_flips, .churn = ht_churn,
    .members = ht_members};

int main(int argc, char **argv) {
    struct ht_bench b = {0};
    bench_drive(argc, argv, "ck_ht", &ht_ops, &b);
    ck_ht_destroy(&b.ht);
    free(b.rec);
    return 0;
}
