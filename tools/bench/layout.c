/*
 * layout.c - the measurements behind guildtab's storage layout (see the
 * comments at the top of src/index.c and src/active.c).
 *
 * DESIGN.md weighs two layouts for a guild's members:
 *   (a) an index (user_id -> position) in front of densely packed records:
 *       two dependent cache misses per lookup;
 *   (b) an open-addressing table whose slots are the records, with a
 *       control-byte array for probing: one miss per lookup, empty slots.
 * and asks what a fanout of the active 10% must read. This program builds
 * both (plus a plain power-of-two table with 64-byte records, the usual
 * baseline) in /dev/shm-backed memory, and times:
 *   - dependent lookups (each key comes from the previous record) and
 *     independent lookups;
 *   - reading the routing fields of the active 10% of N members straight
 *     from member storage, versus from a packed set of them.
 * Usage: layout [N]   (default 1000000)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define LOAD_B 0.85 /* layout (b) runs between 0.8 and 0.9 */
#define LSB 0x0101010101010101ull
#define MSB 0x8080808080808080ull

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Shared-memory backed, like a table: same page size, same TLB costs. */
static void *shm(size_t bytes) {
    char name[64];
    snprintf(name, sizeof name, "/dev/shm/gt-layout-%d", (int)getpid());
    int fd = open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) {
        perror("shm");
        exit(1);
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    unlink(name);
    close(fd);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

static uint64_t hash(uint64_t k) {
    return XXH3_64bits(&k, sizeof k);
}
static uint64_t fastrange(uint64_t h, uint64_t n) {
    return (uint64_t)(((unsigned __int128)h * n) >> 64);
}

/* A 72-byte record: seq/meta, key, the chain link (next key), filler. */
struct rec {
    uint32_t seq, meta;
    uint64_t key, next, pad[6];
};

struct table_a { /* index of positions + dense records */
    uint32_t *idx;
    struct rec *recs;
    uint64_t cap;
};
struct table_b { /* records in the slots + control bytes */
    uint8_t *ctrl;
    struct rec *slots;
    uint64_t cap;
};
struct table_p { /* plain: 64-byte records, power of two, load <= 0.5 */
    struct { uint64_t key, next, pad[6]; } *slots;
    uint64_t mask;
};

static uint64_t lookup_a(const struct table_a *t, uint64_t k) {
    for (uint64_t s = hash(k) & (t->cap - 1);; s = (s + 1) & (t->cap - 1)) {
        const struct rec *r = &t->recs[t->idx[s] - 1];
        if (r->key == k)
            return r->next;
    }
}

static uint64_t lookup_b(const struct table_b *t, uint64_t k) {
    uint64_t h = hash(k), pos = fastrange(h, t->cap), g = pos & ~7ull;
    uint64_t tagw = LSB * (h & 0x7f), mask = MSB & (~0ull << ((pos & 7) * 8));
    for (;;) {
        uint64_t w;
        memcpy(&w, t->ctrl + g, 8);
        uint64_t x = w ^ tagw, m = ((x - LSB) & ~x & MSB) & mask;
        while (m) {
            const struct rec *r = &t->slots[g + (__builtin_ctzll(m) >> 3)];
            if (r->key == k)
                return r->next;
            m &= m - 1;
        }
        mask = MSB;
        g = g + 8 >= t->cap ? 0 : g + 8;
    }
}

static uint64_t lookup_p(const struct table_p *t, uint64_t k) {
    for (uint64_t s = hash(k) & t->mask;; s = (s + 1) & t->mask)
        if (t->slots[s].key == k)
            return t->slots[s].next;
}

#define TIME_LOOKUPS(label, fn, tab)                                            \
    do {                                                                        \
        uint64_t k = keys[0], sum = 0;                                          \
        double t0 = now();                                                      \
        for (size_t i = 0; i < iters; i++)                                      \
            k = fn(tab, k);                                                     \
        double t1 = now();                                                      \
        for (size_t i = 0; i < iters; i++)                                      \
            sum += fn(tab, keys[probe[i]]);                                     \
        double t2 = now();                                                      \
        printf("%-34s %10.1f %12.1f   (%lx)\n", label,                          \
               (t1 - t0) / (double)iters * 1e9,                                 \
               (t2 - t1) / (double)iters * 1e9, (unsigned long)(sum ^ k));      \
    } while (0)

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    if (n < 1000) {
        fprintf(stderr, "usage: layout [N >= 1000]\n");
        return 2;
    }
    size_t iters = 3000000;
    uint64_t *keys = malloc(n * sizeof *keys);
    size_t *perm = malloc(n * sizeof *perm), *probe = malloc(iters * sizeof *probe);
    for (size_t i = 0; i < n; i++)
        keys[i] = next() | 1, perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) { /* a random cycle for dependence */
        size_t j = next() % (i + 1), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    for (size_t i = 0; i < iters; i++)
        probe[i] = next() % n;

    struct table_a a = {.cap = 1};
    while (a.cap < n * 2)
        a.cap <<= 1;
    a.idx = shm(a.cap * sizeof *a.idx);
    a.recs = shm(n * sizeof *a.recs);
    struct table_b b = {.cap = ((uint64_t)((double)n / LOAD_B) + 7) & ~7ull};
    b.ctrl = shm(b.cap + 8);
    b.slots = shm(b.cap * sizeof *b.slots);
    memset(b.ctrl, 0x80, b.cap);
    struct table_p p = {.mask = 1};
    while (p.mask < n * 2)
        p.mask <<= 1;
    p.slots = shm(p.mask * sizeof *p.slots);
    p.mask -= 1;
    for (size_t i = 0; i < n; i++) {
        size_t at = perm[i], nx = perm[(i + 1) % n];
        uint64_t k = keys[at], h = hash(k);
        a.recs[at] = (struct rec){.key = k, .next = keys[nx]};
        uint64_t s = h & (a.cap - 1);
        while (a.idx[s])
            s = (s + 1) & (a.cap - 1);
        a.idx[s] = (uint32_t)at + 1;
        s = fastrange(h, b.cap);
        while (b.ctrl[s] != 0x80)
            s = s + 1 == b.cap ? 0 : s + 1;
        b.ctrl[s] = (uint8_t)(h & 0x7f);
        b.slots[s] = (struct rec){.key = k, .next = keys[nx]};
        s = h & p.mask;
        while (p.slots[s].key)
            s = (s + 1) & p.mask;
        p.slots[s].key = k;
        p.slots[s].next = keys[nx];
    }

    printf("guildtab layout probe: %zu members in /dev/shm memory\n\n", n);
    printf("%-34s %10s %12s\n", "lookup, ns per lookup", "dependent",
           "independent");
    TIME_LOOKUPS("(a) index -> dense 72 B records", lookup_a, &a);
    TIME_LOOKUPS("(b) 72 B records in slots, ctrl", lookup_b, &b);
    TIME_LOOKUPS("plain 64 B records, pow2 table", lookup_p, &p);
    printf("%-34s %10.1f B/member (a), %.1f (b), %.1f (plain)\n",
           "memory", (double)(a.cap * 4 + n * sizeof(struct rec)) / (double)n,
           (double)(b.cap * (1 + sizeof(struct rec))) / (double)n,
           (double)((p.mask + 1) * 64) / (double)n);

    /* Fanout: routing fields (user, session, worker: 32 B with padding) of
     * the active 10%, read from storage order versus from a packed set. */
    size_t act = n / 10;
    uint8_t *is_active = calloc(n, 1);
    for (size_t i = 0; i < act; i++)
        is_active[next() % n] = 1;
    struct route { uint64_t user, session; uint32_t worker, flags, a, b; };
    struct route *column = shm(n * sizeof *column), *packed = shm(act * sizeof *packed);
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        column[i] = (struct route){keys[i], i, (uint32_t)(i % 16), 0, 0, 0};
        if (is_active[i] && np < act)
            packed[np++] = column[i];
    }
    uint64_t *bitmap = calloc(n / 64 + 1, 8);
    for (size_t i = 0; i < n; i++)
        if (is_active[i])
            bitmap[i / 64] |= 1ull << (i % 64);
    /* the same members as 72-byte records in the slots of layout (b) */
    uint64_t *bbits = calloc(b.cap / 64 + 1, 8);
    for (size_t i = 0; i < n; i++)
        if (is_active[i]) {
            uint64_t s = fastrange(hash(keys[i]), b.cap);
            while (b.slots[s].key != keys[i])
                s = s + 1 == b.cap ? 0 : s + 1;
            bbits[s / 64] |= 1ull << (s % 64);
        }
    double best_col = 1e9, best_packed = 1e9, best_rec = 1e9;
    uint64_t sum = 0;
    for (int rep = 0; rep < 20; rep++) {
        double tr = now();
        for (size_t w = 0; w <= b.cap / 64; w++)
            for (uint64_t m = bbits[w]; m; m &= m - 1) {
                const struct rec *r = &b.slots[w * 64 + __builtin_ctzll(m)];
                sum += r->key ^ r->next ^ r->pad[0];
            }
        best_rec = now() - tr < best_rec ? now() - tr : best_rec;
        double t0 = now();
        for (size_t w = 0; w <= n / 64; w++)
            for (uint64_t m = bitmap[w]; m; m &= m - 1) {
                const struct route *r = &column[w * 64 + __builtin_ctzll(m)];
                sum += r->user ^ r->session ^ r->worker;
            }
        double t1 = now();
        for (size_t i = 0; i < np; i++)
            sum += packed[i].user ^ packed[i].session ^ packed[i].worker;
        double t2 = now();
        best_col = t1 - t0 < best_col ? t1 - t0 : best_col;
        best_packed = t2 - t1 < best_packed ? t2 - t1 : best_packed;
    }
    printf("\n%-34s %10s   (%zu of %zu members)\n", "fanout read, ms", "best",
           np, n);
    printf("%-34s %10.3f\n", "bitmap + 72 B records of (b)", best_rec * 1e3);
    printf("%-34s %10.3f\n", "bitmap + 32 B routing column", best_col * 1e3);
    printf("%-34s %10.3f   (%lx)\n", "packed set of the active", best_packed * 1e3,
           (unsigned long)sum);
    return 0;
}
