/*
 * lmdbfile.c - the structure of an LMDB file, checked before LMDB reads it.
 *
 * LMDB trusts its file: page numbers, node offsets and sizes are followed
 * as found, so a damaged or forged file can make it read outside its map
 * (SIGSEGV, or SIGBUS past the end of the file) or trip an assertion
 * (abort). A snapshot comes from elsewhere, so before LMDB opens one,
 * gt__lmdb_check walks the parts LMDB will read for it: both meta pages,
 * the newer one's main tree and the named trees in it, every page and node,
 * and rejects anything LMDB could not read safely. Contents are the
 * loader's business (snapshot.c checks every record); this is only "LMDB
 * stays inside the file and its own rules".
 *
 * What is checked, for the on-disk format of LMDB 0.9 (data version 1;
 * anything else is refused as another format):
 * - meta pages 0 and 1: magic, version, page size (a power of two, 4 KiB to
 *   64 KiB); the one LMDB picks (the higher txnid) says how many pages the
 *   file has, and the file holds them all;
 * - each tree (main and each named one): no flags (plain keys, no
 *   duplicates), a root and depth LMDB accepts; every page reached once
 *   only (no cycles, no sharing), with its own number, the right kind
 *   (branch above, leaf at exactly the tree's depth), a sane header, at
 *   least two children per branch, and every node and its key and data
 *   inside its page; big data in overflow pages inside the file, reached
 *   once, and counted in whole pages;
 * - a named tree is a main-tree leaf node of exactly one MDB_db.
 * Page and node layouts below are LMDB's (mdb.c), restated as offsets.
 */
#include "internal.h"

#include <stdlib.h>

#define MDB_MAGIC 0xBEEFC0DEu
#define MDB_DATA_VERSION 1u
#define PAGEHDR 16u  /* pgno 8, pad 2, flags 2, lower 2, upper 2 */
#define NODEHDR 8u   /* lo 2, hi 2, flags 2, ksize 2 */
#define DB_BYTES 48u /* pad 4, flags 2, depth 2, 4 counts 8 each, root 8 */
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_META 0x08u
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define MAX_DEPTH 32u /* LMDB's cursor stack */
#define P_INVALID UINT64_MAX

static uint16_t u16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t u32(const uint8_t *p) {
    return (uint32_t)u16(p) | (uint32_t)u16(p + 2) << 16;
}
static uint64_t u64(const uint8_t *p) {
    return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32;
}

struct walk {
    const uint8_t *map;
    uint64_t psize, npages;
    uint8_t *seen; /* a bit per page */
};

/* Mark pages [p, p + n) reached; false if any is outside or seen before. */
static bool reach(struct walk *w, uint64_t p, uint64_t n) {
    if (p >= w->npages || n > w->npages - p || n == 0)
        return false;
    for (uint64_t i = p; i < p + n; i++) {
        if (w->seen[i / 8] & (1u << (i % 8)))
            return false;
        w->seen[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    return true;
}

struct db {
    uint16_t flags, depth;
    uint64_t root;
};
static void db_read(const uint8_t *p, struct db *d) {
    d->flags = u16(p + 4);
    d->depth = u16(p + 6);
    d->root = u64(p + 40);
}

struct sub {
    const char *const *names; /* the named trees wanted; NULL-terminated */
    uint8_t found[8];
};

static int tree(struct walk *w, const struct db *d, struct sub *subs);

/* The page pg at `level` (1 = root) of a tree `depth` deep. */
static int page(struct walk *w, uint64_t pg, uint32_t level, uint32_t depth,
                struct sub *subs) {
    if (!reach(w, pg, 1))
        return GT_ECORRUPT;
    const uint8_t *p = w->map + pg * w->psize;
    uint16_t flags = u16(p + 10), lower = u16(p + 12), upper = u16(p + 14);
    bool leaf = level == depth;
    if (u64(p) != pg || flags != (leaf ? P_LEAF : P_BRANCH) ||
        lower < PAGEHDR || (lower - PAGEHDR) % 2 || lower > upper ||
        upper > w->psize)
        return GT_ECORRUPT;
    uint32_t n = (lower - PAGEHDR) / 2u;
    if (!leaf && n < 2)
        return GT_ECORRUPT; /* LMDB asserts on a branch with one child */
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = u16(p + PAGEHDR + 2 * i);
        if (off < upper || off + NODEHDR > w->psize)
            return GT_ECORRUPT;
        const uint8_t *nd = p + off;
        uint64_t lo = u16(nd), hi = u16(nd + 2), nf = u16(nd + 4);
        uint64_t ksize = u16(nd + 6), end = off + NODEHDR + ksize;
        if (end > w->psize)
            return GT_ECORRUPT;
        if (!leaf) {
            int r = page(w, lo | hi << 16 | nf << 32, level + 1, depth, subs);
            if (r)
                return r;
            continue;
        }
        uint64_t dsize = lo | hi << 16;
        const uint8_t *data = nd + NODEHDR + ksize;
        if (nf & ~(uint64_t)(F_BIGDATA | (subs ? F_SUBDATA : 0)))
            return GT_ECORRUPT;
        if (nf & F_BIGDATA) {
            if (nf & F_SUBDATA || end + 8 > w->psize)
                return GT_ECORRUPT;
            uint64_t ov = u64(data);
            uint64_t pages = (PAGEHDR + dsize + w->psize - 1) / w->psize;
            if (!reach(w, ov, pages) ||
                u16(w->map + ov * w->psize + 10) != P_OVERFLOW ||
                u64(w->map + ov * w->psize) != ov)
                return GT_ECORRUPT;
            continue;
        }
        if (end + dsize > w->psize)
            return GT_ECORRUPT;
        if (!(nf & F_SUBDATA))
            continue;
        /* a named tree: only those the caller opens are followed */
        if (dsize != DB_BYTES)
            return GT_ECORRUPT;
        for (int k = 0; subs->names[k]; k++) {
            if (strlen(subs->names[k]) != ksize ||
                memcmp(subs->names[k], nd + NODEHDR, ksize) != 0)
                continue;
            struct db sd;
            db_read(data, &sd);
            int r = tree(w, &sd, NULL);
            if (r)
                return r;
            subs->found[k] = 1;
        }
    }
    return 0;
}

static int tree(struct walk *w, const struct db *d, struct sub *subs) {
    if (d->flags != 0)
        return GT_ECORRUPT; /* sorted duplicates, integer keys...: not ours */
    if (d->root == P_INVALID)
        return d->depth == 0 ? 0 : GT_ECORRUPT;
    if (d->depth == 0 || d->depth > MAX_DEPTH)
        return GT_ECORRUPT;
    return page(w, d->root, 1, d->depth, subs);
}

/* Check the LMDB file of `size` bytes at map before LMDB opens it, and that
 * it holds every named tree of names (NULL-terminated, at most 8): 0, or
 * GT_ECORRUPT (damaged or not LMDB), GT_EINCOMPAT (another LMDB format),
 * GT_ENOMEM. */
int gt__lmdb_check(const void *map, uint64_t size, const char *const *names) {
    const uint8_t *m = map;
    if (size < 2 * 4096)
        return GT_ECORRUPT;
    /* meta 0 gives the page size, which places meta 1 */
    uint64_t psize = u32(m + PAGEHDR + 24); /* mm_dbs[0].md_pad */
    if (psize < 4096 || psize > 65536 || (psize & (psize - 1)) ||
        size < 2 * psize)
        return GT_ECORRUPT;
    const uint8_t *best = NULL;
    for (int i = 0; i < 2; i++) {
        const uint8_t *pg = m + (uint64_t)i * psize, *mt = pg + PAGEHDR;
        if (u16(pg + 10) != P_META || u32(mt) != MDB_MAGIC)
            return GT_ECORRUPT;
        if (u32(mt + 4) != MDB_DATA_VERSION)
            return GT_EINCOMPAT;
        if (u32(mt + 24) != psize)
            return GT_ECORRUPT;
        if (!best || u64(mt + 128) > u64(best + 128))
            best = mt;
    }
    uint64_t last = u64(best + 120);
    if (last < 1 || last >= size / psize)
        return GT_ECORRUPT; /* LMDB maps every page up to last */
    struct walk w = {m, psize, last + 1, calloc((last + 8) / 8, 1)};
    if (!w.seen)
        return GT_ENOMEM;
    reach(&w, 0, 2);
    struct sub subs = {names, {0}};
    struct db main;
    db_read(best + 24 + DB_BYTES, &main);
    int r = tree(&w, &main, &subs);
    for (int k = 0; r == 0 && names[k]; k++)
        if (!subs.found[k])
            r = GT_ECORRUPT;
    free(w.seen);
    return r;
}
