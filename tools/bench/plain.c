/*
 * plain.c - the baseline: a plain open-addressing table of 64-byte records
 * in shared memory, as little as a member table can be. Capacity is a power
 * of two at load below 0.5, the home slot is a multiplicative hash of the
 * user id, collisions probe linearly, deletion shifts the run back. It has
 * no concurrency control at all (a reader can see a torn record), no crash
 * safety and no index: fanout, role select and count scan every slot. It is
 * what guildtab's per-operation figures are held against.
 *
 * Usage: plain N   (prints JSON lines; see README.md)
 */
#include "drive.h"


struct table {
    struct bench_member *slot; /* user_id 0: empty (no member has id 0) */
    uint64_t mask, n;
    int shift;
};

static struct table T;

static inline uint64_t home(uint64_t uid) {
    return (uid * 0x9e3779b97f4a7c15ull) >> T.shift;
}

static inline const struct bench_member *find(uint64_t uid) {
    for (uint64_t i = home(uid);; i = (i + 1) & T.mask) {
        const struct bench_member *s = &T.slot[i];
        if (s->user_id == uid)
            return s;
        if (s->user_id == 0)
            return NULL;
    }
}

static void put(const struct bench_member *m) {
    uint64_t i = home(m->user_id);
    while (T.slot[i].user_id != 0 && T.slot[i].user_id != m->user_id)
        i = (i + 1) & T.mask;
    T.slot[i] = *m;
}

/* Backward-shift deletion: move later members of the run into the hole
 * when their home slot allows, so no tombstones are needed. */
static void del(uint64_t uid) {
    uint64_t i = home(uid);
    while (T.slot[i].user_id != uid) {
        if (T.slot[i].user_id == 0)
            return;
        i = (i + 1) & T.mask;
    }
    for (uint64_t j = (i + 1) & T.mask; T.slot[j].user_id; j = (j + 1) & T.mask) {
        uint64_t h = home(T.slot[j].user_id);
        /* j may move to i if its home is not in (i, j] cyclically */
        if (((j - h) & T.mask) >= ((j - i) & T.mask)) {
            T.slot[i] = T.slot[j];
            i = j;
        }
    }
    T.slot[i].user_id = 0;
}

/* Where lookups copy records to: memory the compiler must keep writing. */
static struct bench_member copied_out[64];

static uint64_t lookups(void *ctx, const void *keys, uint64_t from,
                        uint64_t count, uint64_t *sum) {
    (void)ctx;
    const uint64_t *key = (const uint64_t *)keys + from;
    uint64_t s = 0, h = 0;
    for (uint64_t k = 0; k < count; k++) {
        const struct bench_member *m = find(key[k]);
        if (m) {
            copied_out[k & 63] = *m; /* the whole record, as engines copy */
            s += (uint64_t)copied_out[k & 63].joined_at;
            h++;
        }
    }
    *sum = s;
    return h;
}

static uint64_t follow(void *ctx, uint64_t count) {
    (void)ctx;
    uint64_t uid = bench_uid(0), sum = 0;
    for (uint64_t k = 0; k < count; k++) {
        const struct bench_member *m = find(uid);
        if (!m)
            bench_die("a dependent lookup missed");
        sum += (uint64_t)m->joined_at % 1000;
        uid = m->session_id;
    }
    return sum;
}

static uint64_t scan_fanout(void *ctx, struct bench_out *o) {
    (void)ctx;
    uint64_t total = 0;
    for (uint64_t i = 0; i <= T.mask; i++) {
        const struct bench_member *s = &T.slot[i];
        if (s->user_id && (s->flags & BENCH_ACTIVE)) {
            *bench_fan_room(o, s->worker, 1) =
                (struct bench_recipient){s->user_id, s->session_id};
            total++;
        }
    }
    return total;
}

static uint64_t scan_role(void *ctx, struct bench_out *o) {
    (void)ctx;
    for (uint64_t i = 0; i <= T.mask; i++)
        if (T.slot[i].user_id && (T.slot[i].roles[0] & (1ull << BENCH_ROLE)))
            bench_role_add(o, T.slot[i].user_id);
    return o->nrole;
}

static uint64_t scan_count(void *ctx) {
    (void)ctx;
    uint64_t k = 0;
    for (uint64_t i = 0; i <= T.mask; i++)
        k += T.slot[i].user_id && (T.slot[i].flags & BENCH_ONLINE);
    return k;
}

static uint64_t members(void *ctx) {
    (void)ctx;
    uint64_t k = 0;
    for (uint64_t i = 0; i <= T.mask; i++)
        k += T.slot[i].user_id != 0;
    return k;
}

static double load(void *ctx, uint64_t n, uint64_t a) {
    (void)ctx;
    uint64_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    T.mask = cap - 1;
    T.shift = 64 - __builtin_ctzll(cap);
    /* shared memory, with the pages guildtab's tables get (bench_shared) */
    T.slot = bench_shared(cap * sizeof *T.slot);
    T.n = n;

    double t0 = bench_now();
    for (uint64_t i = 0; i < n; i++) {
        struct bench_member m;
        bench_member_make(i, n, a, &m);
        if (m.user_id == 0)
            bench_die("a user id is 0");
        put(&m);
    }
    return (double)n / (bench_now() - t0) / 1e6;
}

static double bytes_member(void *ctx) {
    (void)ctx;
    return (double)((T.mask + 1) * sizeof *T.slot) / (double)T.n;
}

static void flips(void *ctx, const struct bench_writes *w) {
    (void)ctx;
    for (uint64_t k = 0; k < w->flips; k++) {
        struct bench_member *m = (struct bench_member *)find(w->flip_uid[k]);
        m->flags = w->flip_flags[k];
    }
}

static void churn(void *ctx, const struct bench_writes *w) {
    (void)ctx;
    for (uint64_t k = 0; k < w->churns; k++) {
        del(w->churn[k].user_id);
        put(&w->churn[k]);
    }
}

static const struct bench_ops plain_ops = {
    .load = load, .bytes_member = bytes_member, .lookups = lookups,
    .follow = follow, .fanout = scan_fanout, .role = scan_role,
    .count = scan_count, .flips = flips, .churn = churn, .members = members};

int main(int argc, char **argv) {
    bench_drive(argc, argv, "plain", &plain_ops, NULL); /* T is the table */
    return 0;
}
