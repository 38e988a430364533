/*
 * snapshot.c - the table to and from LMDB: gt_snapshot, gt_restore and their
 * one-guild forms.
 *
 * Format (version 1; every integer little-endian, keys big-endian so LMDB's
 * byte order is numeric order):
 *   database "meta",    key "manifest": struct manifest (the table's options,
 *                       guild and member counts, a digest over the guilds)
 *   database "guilds",  key guild_id: struct gmeta (counts, a digest over the
 *                       guild's records)
 *   database "members", key guild_id . user_id: the 64-byte member, its
 *                       payload, and a checksum of key and value
 * Each checksum and digest is XXH3; each level covers the one below, so a
 * damaged, missing, extra or moved record is found, and one counted twice.
 *
 * Consistency: a guild is copied whole while its writers wait (a memcpy of
 * its storage, the only time they wait), then encoded from the copy with no
 * lock held. So each guild is as of one moment; guilds are copied one after
 * another. Readers never wait.
 *
 * Atomicity: a snapshot is written to "<path>.tmp-<pid>" and renamed over
 * path once synced; a restore builds "<name>.restore-<pid>" and links it to
 * name once complete and verified. A crash leaves the previous file intact
 * and at most a temporary file, which the next snapshot to that path or
 * restore to that name removes if its process is gone.
 *
 * The loader (gt__snap_load) only sees records through struct gt_snap_reader,
 * so the fuzz test drives all of the validation without LMDB.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNAP_MAGIC "gtsnap\x01\x00"
#define SNAP_SEED 0x736e617073686f74ull /* + 0 manifest, + 1 guild record */
#define PROGRESS_EVERY 65536u
#define MEMBER_BYTES 64u
#define MAP_FULL (-0x7fff0001) /* internal: grow the map and try again */

/* ---- encoding ------------------------------------------------------------ */

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static void put_be(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint64_t get_be(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static uint64_t sum(const void *p, size_t n, uint64_t kind) {
    return XXH3_64bits_withSeed(p, n, SNAP_SEED + kind);
}

/* manifest: magic[8] version payload_size max_guilds flags, max_members
 * guilds members created digest checksum */
void gt__snap_manifest_encode(const struct gt_snap_manifest *m, uint32_t version,
                              uint8_t *b) {
    memcpy(b, SNAP_MAGIC, 8);
    put64(b + 8, (uint64_t)version | (uint64_t)m->payload_size << 32);
    put64(b + 16, (uint64_t)m->max_guilds);
    put64(b + 24, m->max_members);
    put64(b + 32, m->guilds);
    put64(b + 40, m->members);
    put64(b + 48, m->created);
    put64(b + 56, m->digest);
    put64(b + 64, sum(b, 64, 0));
}
/* the checksum of the manifest: a fuzz build skips every such comparison,
 * so that the fuzzer gets past them to the rest of the validation */
#ifdef GT_FUZZING
#define SUM_OK(stored, computed) ((void)(stored), (void)(computed), true)
#else
#define SUM_OK(stored, computed) ((stored) == (computed))
#endif

int gt__snap_manifest_decode(const void *v, size_t n,
                             struct gt_snap_manifest *m) {
    const uint8_t *b = v;
    if (n != GT_SNAP_MANIFEST_BYTES || memcmp(b, SNAP_MAGIC, 6) != 0)
        return GT_ECORRUPT;
    if (memcmp(b, SNAP_MAGIC, 8) != 0 || (uint32_t)get64(b + 8) != GT_SNAP_VERSION)
        return GT_EINCOMPAT;
    if (!SUM_OK(get64(b + 64), sum(b, 64, 0)))
        return GT_ECORRUPT;
    uint64_t guilds = get64(b + 16);
    m->payload_size = (uint32_t)(get64(b + 8) >> 32);
    m->max_guilds = (uint32_t)guilds;
    m->max_members = get64(b + 24);
    m->guilds = get64(b + 32);
    m->members = get64(b + 40);
    m->created = get64(b + 48);
    m->digest = get64(b + 56);
    if (m->payload_size > GT_PAYLOAD_MAX || guilds > GT_LIMIT_MAX_GUILDS ||
        m->max_guilds == 0 || m->max_members == 0 ||
        m->max_members > GT_LIMIT_MAX_MEMBERS || m->guilds > m->max_guilds ||
        m->members > m->max_members)
        return GT_ECORRUPT;
    return 0;
}

/* guild: guild_id members online active digest checksum */
void gt__snap_guild_encode(const struct gt_snap_guild *g, uint8_t *b) {
    put64(b, g->guild_id);
    put64(b + 8, g->members);
    put64(b + 16, g->online);
    put64(b + 24, g->active);
    put64(b + 32, g->digest);
    put64(b + 40, sum(b, 40, 1));
}

int gt__snap_guild_decode(const void *k, size_t kn, const void *v, size_t vn,
                          struct gt_snap_guild *g) {
    const uint8_t *b = v;
    if (kn != 8 || vn != GT_SNAP_GUILD_BYTES ||
        !SUM_OK(get64(b + 40), sum(b, 40, 1)))
        return GT_ECORRUPT;
    g->guild_id = get64(b);
    g->members = get64(b + 8);
    g->online = get64(b + 16);
    g->active = get64(b + 24);
    g->digest = get64(b + 32);
    if (get_be(k) != g->guild_id || g->online > g->members ||
        g->active > g->members)
        return GT_ECORRUPT;
    return 0;
}

/* member key: guild_id user_id (big-endian); value: the member's 8 words,
 * payload, checksum over key and value */
static size_t member_value_bytes(uint32_t payload) {
    return GT_SNAP_MEMBER_BYTES(payload);
}

void gt__snap_member_encode(uint64_t guild, const uint64_t w[8],
                            const uint8_t *payload, uint32_t psize,
                            uint8_t key[16], uint8_t *val) {
    put_be(key, guild);
    put_be(key + 8, w[0]);
    for (int i = 0; i < 8; i++)
        put64(val + 8 * i, w[i]);
    memcpy(val + MEMBER_BYTES, payload, psize);
    XXH3_state_t st = {0};
    XXH3_64bits_reset_withSeed(&st, GT_SNAP_SEED_MEMBER);
    XXH3_64bits_update(&st, key, 16);
    XXH3_64bits_update(&st, val, MEMBER_BYTES + psize);
    put64(val + MEMBER_BYTES + psize, XXH3_64bits_digest(&st));
}

int gt__snap_member_decode(const void *k, size_t kn, const void *v, size_t vn,
                           uint32_t psize, uint64_t *guild, gt_member *m,
                           const uint8_t **payload, uint64_t *check) {
    const uint8_t *b = v;
    if (kn != 16 || vn != member_value_bytes(psize))
        return GT_ECORRUPT;
    XXH3_state_t st = {0};
    XXH3_64bits_reset_withSeed(&st, GT_SNAP_SEED_MEMBER);
    XXH3_64bits_update(&st, k, 16);
    XXH3_64bits_update(&st, b, MEMBER_BYTES + psize);
    *check = XXH3_64bits_digest(&st);
    if (!SUM_OK(get64(b + MEMBER_BYTES + psize), *check))
        return GT_ECORRUPT;
    uint64_t w[8];
    for (int i = 0; i < 8; i++)
        w[i] = get64(b + 8 * i);
    gt__rec_unpack(w, m);
    *guild = get_be(k);
    *payload = b + MEMBER_BYTES;
    if (get_be((const uint8_t *)k + 8) != m->user_id ||
        (m->flags & GT_FLAGS_LIBRARY & ~(GT_ONLINE | GT_ACTIVE)))
        return GT_ECORRUPT;
    return 0;
}

/* ---- loading (LMDB-free) ---------------------------------------------------- */

static int progress(gt_progress_fn fn, void *ctx, uint64_t done,
                    uint64_t total, bool last) {
    if (fn && (last || done % PROGRESS_EVERY == 0))
        return fn(ctx, done, total);
    return 0;
}

/* Load the guilds the reader yields (all, or only `only`) into t, verifying
 * everything. On error the caller discards what was loaded. */
int gt__snap_load(gt_table *t, struct gt_snap_reader *rd, bool one,
                  uint64_t only, gt_progress_fn fn, void *ctx) {
    struct gt_snap_manifest man;
    const void *k, *v, *mk = NULL, *mv = NULL; /* a guild's; a member's */
    size_t kn, vn, mkn = 0, mvn = 0;
    int r = rd->manifest(rd, &v, &vn);
    if (r == 0)
        r = gt__snap_manifest_decode(v, vn, &man);
    if (r)
        return r;
    if (man.payload_size != t->g.payload_size)
        return GT_EMISMATCH;
    if (man.members > rd->max_records)
        return GT_ECORRUPT;
    uint64_t guilds = 0, members = 0, done = 0, total = man.members;
    bool found = false, have_member = false;
    XXH3_state_t all = {0};
    XXH3_64bits_reset_withSeed(&all, GT_SNAP_SEED_TABLE);
    /* one walk over guilds and one over members, in key order together */
    while ((r = rd->guild(rd, &k, &kn, &v, &vn)) == 0) {
        struct gt_snap_guild g;
        if ((r = gt__snap_guild_decode(k, kn, v, vn, &g)))
            return r;
        XXH3_64bits_update(&all, v, GT_SNAP_GUILD_BYTES);
        guilds++;
        bool take = !one || g.guild_id == only;
        found |= take;
        if (g.members > man.members) /* so also within max_records */
            return GT_ECORRUPT;
        /* a guild of no one is a guild too */
        if (take && (r = gt_guild_reserve(t, g.guild_id, g.members)))
            return r;
        uint64_t n = 0, online = 0, active = 0;
        XXH3_state_t dig = {0};
        XXH3_64bits_reset_withSeed(&dig, GT_SNAP_SEED_GUILD);
        for (;;) {
            if (!have_member) {
                r = rd->member(rd, &mk, &mkn, &mv, &mvn);
                if (r == GT_ENOENT)
                    break;
                if (r)
                    return r;
                have_member = true;
            }
            uint64_t gid, check;
            gt_member m;
            const uint8_t *pay;
            if ((r = gt__snap_member_decode(mk, mkn, mv, mvn, man.payload_size,
                                            &gid, &m, &pay, &check)))
                return r;
            if (gid != g.guild_id)
                break; /* the next guild's (or a stray one: caught below) */
            have_member = false;
            XXH3_64bits_update(&dig, &check, sizeof check);
            n++;
            online += !!(m.flags & GT_ONLINE);
            active += !!(m.flags & GT_ACTIVE);
            if (take && (r = gt_insert_new(t, g.guild_id, &m, pay)))
                return r == GT_EEXIST ? GT_ECORRUPT : r;
            if (take && (r = progress(fn, ctx, ++done, total, false)))
                return r;
        }
        if (n != g.members || online != g.online || active != g.active ||
            !SUM_OK(XXH3_64bits_digest(&dig), g.digest))
            return GT_ECORRUPT;
        members += n;
    }
    if (r != GT_ENOENT)
        return r;
    /* nothing may follow the last guild's members */
    if (have_member || (r = rd->member(rd, &mk, &mkn, &mv, &mvn)) != GT_ENOENT)
        return have_member || r == 0 ? GT_ECORRUPT : r;
    if (guilds != man.guilds || members != man.members ||
        !SUM_OK(XXH3_64bits_digest(&all), man.digest))
        return GT_ECORRUPT;
    if (one && !found)
        return GT_ENOENT;
    return progress(fn, ctx, done, total, true);
}

/* ---- LMDB ------------------------------------------------------------------ */

/* LMDB's codes stop here: the library's own come out. */
static int lmdb_error(int rc) {
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_VERSION_MISMATCH:
        return GT_EINCOMPAT;
    case MDB_MAP_FULL:
        return MAP_FULL;
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
    case MDB_MAP_RESIZED:
        return GT_ENOSPC;
    case MDB_NOTFOUND:
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PANIC:
    case MDB_PAGE_NOTFOUND:
    case MDB_KEYEXIST:
    case MDB_DBS_FULL:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
    case MDB_TLS_FULL:
    case MDB_READERS_FULL:
        return GT_ECORRUPT;
    default:
        return rc > 0 ? -rc : GT_ECORRUPT;
    }
}

static int open_env(const char *path, bool write, uint64_t mapsize,
                    MDB_env **out) {
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 4);
    if (rc == 0 && mapsize)
        rc = mdb_env_set_mapsize(env, (size_t)mapsize);
    /* no MDB_WRITEMAP: a full file system must be ENOSPC from a write, not
     * SIGBUS from a store into the map */
    unsigned flags = MDB_NOSUBDIR | MDB_NOLOCK | (write ? MDB_NOSYNC : MDB_RDONLY);
    if (rc == 0)
        rc = mdb_env_open(env, path, flags, 0600);
    if (rc) {
        mdb_env_close(env);
        return lmdb_error(rc);
    }
    *out = env;
    return 0;
}

/* ---- writing -------------------------------------------------------------------- */

/* The copy of a guild's storage. Its memory is mapped and touched before
 * the guild's lock is taken, so that under the lock only the copy itself
 * runs (page faults of a fresh gigabyte cost more than copying it). */
struct copybuf {
    uint8_t *p;
    size_t bytes;
};

struct writer {
    gt_table *t;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi members, guilds;
    uint64_t pending; /* puts in the open transaction */
    struct gt_snap_manifest man;
    XXH3_state_t all;
    gt_progress_fn fn;
    void *ctx;
    uint64_t done, total;
    struct copybuf buf; /* the guild being written, reused for the next */
};

static int commit_every(struct writer *w) {
    if (++w->pending < 100000)
        return 0;
    int rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    w->pending = 0;
    if (rc == 0)
        rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    return lmdb_error(rc);
}

struct rec_ref {
    uint64_t uid;
    const uint8_t *rec;
};
static int ref_cmp(const void *a, const void *b) {
    uint64_t x = ((const struct rec_ref *)a)->uid;
    uint64_t y = ((const struct rec_ref *)b)->uid;
    return x < y ? -1 : x > y;
}

/* Copy guild g's storage under its lock: the moment the guild is taken. */
static void buf_free(struct copybuf *b) {
    if (b->p)
        munmap(b->p, b->bytes);
    *b = (struct copybuf){0};
}

static int buf_ready(struct copybuf *b, size_t bytes) {
    if (b->p && b->bytes >= bytes)
        return 0;
    buf_free(b);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return GT_ENOMEM;
    madvise(p, bytes, MADV_HUGEPAGE); /* fewer faults and TLB misses; advisory */
    for (size_t o = 0; o < bytes; o += 4096)
        ((volatile uint8_t *)p)[o] = 0;
    b->p = p;
    b->bytes = bytes;
    return 0;
}

static int copy_guild(gt_table *t, uint64_t id, struct copybuf *b,
                      uint32_t *cap) {
    struct gt_wr w;
    struct gt_guild *g;
    int r;
    /* size the buffer for the storage as it is now, then lock; if the
     * guild grew meanwhile, size it again (outside the lock) */
    size_t want = 0;
    for (int tries = 0;; tries++) {
        if ((r = gt__guild_get(t, id, false, &g, NULL)))
            return r;
        uint32_t c = LOAD(&g->cap, relaxed);
        if (c && (r = buf_ready(b, want > gt_store_size(c, t->g.stride)
                                       ? want
                                       : gt_store_size(c, t->g.stride))))
            return r;
        if ((r = gt__guild_lock(t, g, &w)))
            return r;
        /* as gt__guild_write, but a read-only handle may snapshot */
        if (LOAD(&g->state, relaxed) != GT_GUILD_LIVE ||
            LOAD(&g->id, relaxed) != id) {
            gt__wr_commit(&w); /* deleted meanwhile: look it up again */
            continue;
        }
        uint64_t so = LOAD(&g->store_off, relaxed);
        *cap = so ? LOAD(&g->cap, relaxed) : 0;
        size_t bytes = so ? gt_store_size(*cap, t->g.stride) : 0;
        if (bytes <= b->bytes || tries >= 3)
            break;
        want = bytes + bytes / 4; /* it grows: leave it room */
        gt__wr_commit(&w);
    }
    uint64_t so = LOAD(&g->store_off, relaxed);
    if (so) {
        size_t bytes = gt_store_size(*cap, t->g.stride);
        if (bytes > b->bytes)
            r = buf_ready(b, bytes); /* still growing: under the lock */
        if (r == 0)
            memcpy(b->p, gt_at(t, so), bytes);
    }
    gt__wr_commit(&w); /* nothing changed: just the unlock */
    return r;
}

static int write_guild(struct writer *w, uint64_t id) {
    gt_table *t = w->t;
    uint32_t cap;
    int r = copy_guild(t, id, &w->buf, &cap);
    if (r)
        return r;
    uint32_t psize = t->g.payload_size;
    struct rec_ref *refs = NULL;
    size_t n = 0;
    if (cap) {
        const struct gt_store *st = (const struct gt_store *)w->buf.p;
        const uint8_t *ctrl = w->buf.p + sizeof *st;
        refs = malloc((size_t)cap * sizeof *refs);
        if (!refs)
            return GT_ENOMEM;
        for (uint64_t i = 0; i < cap; i++) {
            if (ctrl[i] & 0x80u)
                continue;
            const struct gt_rec *rec = gt_rec_at(t, st, cap, i);
            if (!(LOAD(&rec->meta, relaxed) & GT_REC_LIVE))
                continue;
            refs[n++] = (struct rec_ref){LOAD(&rec->w[0], relaxed),
                                         (const uint8_t *)rec};
        }
        qsort(refs, n, sizeof *refs, ref_cmp);
    }
    struct gt_snap_guild g = {.guild_id = id, .members = n};
    XXH3_state_t dig = {0};
    XXH3_64bits_reset_withSeed(&dig, GT_SNAP_SEED_GUILD);
    uint8_t key[16], *val = malloc(member_value_bytes(psize));
    if (!val)
        r = GT_ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct gt_rec *rec = (const struct gt_rec *)refs[i].rec;
        uint64_t wds[8];
        for (int j = 0; j < 8; j++)
            wds[j] = LOAD(&rec->w[j], relaxed);
        uint32_t flags = (uint32_t)(wds[7] >> 32);
        g.online += !!(flags & GT_ONLINE);
        g.active += !!(flags & GT_ACTIVE);
        gt__snap_member_encode(id, wds, (const uint8_t *)rec->payload, psize, key, val);
        uint64_t check = get64(val + MEMBER_BYTES + psize);
        XXH3_64bits_update(&dig, &check, sizeof check);
        MDB_val k = {16, key}, v = {member_value_bytes(psize), val};
        int rc = mdb_put(w->txn, w->members, &k, &v, MDB_APPEND);
        r = lmdb_error(rc);
        if (r == 0)
            r = commit_every(w);
        if (r == 0)
            r = progress(w->fn, w->ctx, ++w->done, w->total, false);
    }
    free(val);
    free(refs);
    if (r)
        return r;
    g.digest = XXH3_64bits_digest(&dig);
    uint8_t gk[8], gv[GT_SNAP_GUILD_BYTES];
    put_be(gk, id);
    gt__snap_guild_encode(&g, gv);
    XXH3_64bits_update(&w->all, gv, GT_SNAP_GUILD_BYTES);
    MDB_val k = {8, gk}, v = {GT_SNAP_GUILD_BYTES, gv};
    r = lmdb_error(mdb_put(w->txn, w->guilds, &k, &v, MDB_APPEND));
    w->man.guilds++;
    w->man.members += n;
    return r;
}

struct id_list {
    uint64_t *ids;
    size_t n, cap;
    uint64_t members;
};
static int collect_id(void *ctx, const gt_guild_stat *g) {
    struct id_list *l = ctx;
    if (l->n == l->cap) {
        size_t c = l->cap ? 2 * l->cap : 64;
        uint64_t *p = realloc(l->ids, c * sizeof *p);
        if (!p)
            return GT_ENOMEM;
        l->ids = p;
        l->cap = c;
    }
    l->ids[l->n++] = g->guild_id;
    l->members += g->members;
    return 0;
}
static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Remove "<prefix><pid>" files of dead processes in dir (temporary files a
 * crash left behind). */
static void remove_stale(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t pl = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, pl) != 0)
            continue;
        char *end;
        unsigned long pid = strtoul(e->d_name + pl, &end, 10);
        if (end == e->d_name + pl || pid == 0 || pid > INT32_MAX ||
            gt__pid_running((uint32_t)pid))
            continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

/* dirname/basename without modifying path: into d (a directory) and b. */
static void split_path(const char *path, char *d, char *b, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(d, n, ".");
        snprintf(b, n, "%s", path);
    } else {
        snprintf(d, n, "%.*s", (int)(slash > path ? slash - path : 1), path);
        snprintf(b, n, "%s", slash + 1);
    }
}

static int snapshot(gt_table *t, const uint64_t *one, const char *path,
                    gt_progress_fn fn, void *ctx) {
    if (!t || !path || strlen(path) > 4000)
        return GT_EINVAL;
    struct id_list ids = {0};
    int r;
    if (one) {
        gt_guild_stat st;
        if ((r = gt_guild_info(t, *one, &st)))
            return r;
        collect_id(&ids, &st);
        if (!ids.n)
            return GT_ENOMEM;
    } else if ((r = gt_guilds(t, collect_id, &ids))) {
        free(ids.ids);
        return r;
    }
    if (ids.n)
        qsort(ids.ids, ids.n, sizeof *ids.ids, u64_cmp);
    char dir[4096], base[4096], tmp[4096 + 64], prefix[4096 + 16];
    split_path(path, dir, base, sizeof dir);
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    remove_stale(dir, prefix);
    snprintf(tmp, sizeof tmp, "%s.tmp-%u", path, gt__pid());
    /* room for every record with LMDB's overhead; growing members meanwhile
     * are allowed for by the margin, and by retrying bigger */
    uint64_t psize = t->g.payload_size;
    uint64_t per = 16 + member_value_bytes((uint32_t)psize) + 24;
    uint64_t mapsize = (ids.members + ids.members / 2 + 1024) * per * 2 +
                       (64u << 20) + (uint64_t)ids.n * 256;
    struct writer w = {.t = t, .fn = fn, .ctx = ctx, .total = ids.members};
    for (int attempt = 0; attempt < 4; attempt++, mapsize *= 2) {
        unlink(tmp);
        w.man = (struct gt_snap_manifest){0};
        w.done = 0;
        XXH3_64bits_reset_withSeed(&w.all, GT_SNAP_SEED_TABLE);
        if ((r = open_env(tmp, true, mapsize, &w.env)))
            break;
        int rc = mdb_txn_begin(w.env, NULL, 0, &w.txn);
        if (rc == 0)
            rc = mdb_dbi_open(w.txn, "members", MDB_CREATE, &w.members);
        if (rc == 0)
            rc = mdb_dbi_open(w.txn, "guilds", MDB_CREATE, &w.guilds);
        r = lmdb_error(rc);
        for (size_t i = 0; i < ids.n && r == 0; i++) {
            r = write_guild(&w, ids.ids[i]);
            if (r == GT_ENOENT && !one)
                r = 0; /* deleted meanwhile: not in this snapshot */
        }
        if (r == 0) {
            MDB_dbi meta;
            struct gt_snap_manifest *m = &w.man;
            m->payload_size = (uint32_t)psize;
            m->max_members = t->g.max_members;
            m->max_guilds = t->g.max_guilds;
            m->created = (uint64_t)time(NULL);
            m->digest = XXH3_64bits_digest(&w.all);
            uint8_t mb[GT_SNAP_MANIFEST_BYTES];
            gt__snap_manifest_encode(m, GT_SNAP_VERSION, mb);
            MDB_val k = {8, "manifest"}, v = {GT_SNAP_MANIFEST_BYTES, mb};
            rc = mdb_dbi_open(w.txn, "meta", MDB_CREATE, &meta);
            if (rc == 0)
                rc = mdb_put(w.txn, meta, &k, &v, 0);
            if (rc == 0)
                rc = mdb_txn_commit(w.txn);
            else
                mdb_txn_abort(w.txn);
            w.txn = NULL;
            if (rc == 0)
                rc = mdb_env_sync(w.env, 1);
            r = lmdb_error(rc);
            if (r == 0 && fn) /* the last chance to cancel: before the rename */
                r = fn(ctx, w.done, w.total);
        } else if (w.txn) {
            mdb_txn_abort(w.txn);
            w.txn = NULL;
        }
        mdb_env_close(w.env);
        if (r != MAP_FULL)
            break;
        /* the map was too small (members added meanwhile): a bigger one */
        r = GT_ENOSPC;
    }
    free(ids.ids);
    buf_free(&w.buf);
    if (r == 0 && rename(tmp, path) != 0)
        r = errno == ENOSPC ? GT_ENOSPC : -errno;
    if (r == 0) {
        /* the rename itself must survive a crash: sync the directory */
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    } else {
        unlink(tmp);
    }
    return r;
}

GT_API int gt_snapshot(gt_table *t, const char *path, gt_progress_fn fn,
                       void *ctx) {
    return snapshot(t, NULL, path, fn, ctx);
}

GT_API int gt_snapshot_guild(gt_table *t, uint64_t guild_id, const char *path,
                             gt_progress_fn fn, void *ctx) {
    return snapshot(t, &guild_id, path, fn, ctx);
}

/* ---- reading ------------------------------------------------------------------ */

struct lmdb_reader {
    struct gt_snap_reader rd;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, guilds, members;
    MDB_cursor *gc, *mc;
    bool gstarted, mstarted;
    int fd;
};

static int rd_manifest(struct gt_snap_reader *r, const void **v, size_t *n) {
    struct lmdb_reader *l = (struct lmdb_reader *)r;
    MDB_val k = {8, "manifest"}, val;
    int rc = mdb_get(l->txn, l->meta, &k, &val);
    *v = val.mv_data;
    *n = val.mv_size;
    return rc == MDB_NOTFOUND ? GT_ECORRUPT : lmdb_error(rc);
}

static int rd_next(MDB_cursor *c, bool *started, const void **k, size_t *kn,
                   const void **v, size_t *vn) {
    MDB_val key, val;
    int rc = mdb_cursor_get(c, &key, &val, *started ? MDB_NEXT : MDB_FIRST);
    *started = true;
    if (rc == MDB_NOTFOUND)
        return GT_ENOENT;
    *k = key.mv_data, *kn = key.mv_size, *v = val.mv_data, *vn = val.mv_size;
    return lmdb_error(rc);
}
static int rd_guild(struct gt_snap_reader *r, const void **k, size_t *kn,
                    const void **v, size_t *vn) {
    struct lmdb_reader *l = (struct lmdb_reader *)r;
    return rd_next(l->gc, &l->gstarted, k, kn, v, vn);
}
static int rd_member(struct gt_snap_reader *r, const void **k, size_t *kn,
                     const void **v, size_t *vn) {
    struct lmdb_reader *l = (struct lmdb_reader *)r;
    return rd_next(l->mc, &l->mstarted, k, kn, v, vn);
}

static void reader_close(struct lmdb_reader *l) {
    if (l->gc)
        mdb_cursor_close(l->gc);
    if (l->mc)
        mdb_cursor_close(l->mc);
    if (l->txn)
        mdb_txn_abort(l->txn);
    if (l->env)
        mdb_env_close(l->env);
    if (l->fd >= 0)
        close(l->fd);
}

/* Open the snapshot at path for reading: its structure is checked first
 * (lmdbfile.c), then LMDB reads that very file (through /proc/self/fd, so
 * a file renamed over path meanwhile is not the one read). */
static int reader_open(const char *path, struct lmdb_reader *l) {
    memset(l, 0, sizeof *l);
    l->rd = (struct gt_snap_reader){0, rd_manifest, rd_guild, rd_member};
    l->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (l->fd < 0)
        return -errno;
    struct stat sb;
    int r = fstat(l->fd, &sb) ? -errno : !S_ISREG(sb.st_mode) ? GT_ECORRUPT : 0;
    if (r == 0 && sb.st_size < 8192)
        r = GT_ECORRUPT;
    if (r == 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE,
                       l->fd, 0);
        if (m == MAP_FAILED) {
            r = errno == ENOMEM ? GT_ENOMEM : -errno;
        } else {
            static const char *const names[] = {"meta", "guilds", "members",
                                                NULL};
            r = gt__lmdb_check(m, (uint64_t)sb.st_size, names);
            munmap(m, (size_t)sb.st_size);
            /* a member record takes its key and value in the file, at least */
            l->rd.max_records = (uint64_t)sb.st_size /
                                (16 + GT_SNAP_MEMBER_BYTES(0));
        }
    }
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", l->fd);
    if (r == 0)
        r = open_env(fdpath, false, 0, &l->env);
    if (r) {
        close(l->fd);
        l->fd = -1;
        return r;
    }
    int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->txn);
    if (rc == 0)
        rc = mdb_dbi_open(l->txn, "meta", 0, &l->meta);
    if (rc == 0)
        rc = mdb_dbi_open(l->txn, "guilds", 0, &l->guilds);
    if (rc == 0)
        rc = mdb_dbi_open(l->txn, "members", 0, &l->members);
    if (rc == 0)
        rc = mdb_cursor_open(l->txn, l->guilds, &l->gc);
    if (rc == 0)
        rc = mdb_cursor_open(l->txn, l->members, &l->mc);
    if (rc) {
        reader_close(l);
        return rc == MDB_NOTFOUND ? GT_ECORRUPT : lmdb_error(rc);
    }
    return 0;
}

static _Atomic uint32_t restore_seq;

GT_API int gt_restore(const char *path, const char *name,
                      const gt_options *opts, gt_progress_fn fn, void *ctx) {
    if (!path || gt__check_name(name))
        return GT_EINVAL;
    gt_options o = {0};
    if (opts)
        o = *opts;
    if (o.flags & ~(GT_CREATE | GT_EXCL))
        return GT_EINVAL;
    struct lmdb_reader l;
    int r = reader_open(path, &l);
    if (r)
        return r;
    struct gt_snap_manifest man;
    const void *mv;
    size_t mn;
    if ((r = rd_manifest(&l.rd, &mv, &mn)) == 0)
        r = gt__snap_manifest_decode(mv, mn, &man);
    if (r == 0 && ((o.payload_size && o.payload_size != man.payload_size) ||
                   (o.max_members && o.max_members < man.members) ||
                   (o.max_guilds && o.max_guilds < man.guilds)))
        r = GT_EMISMATCH;
    if (r) {
        reader_close(&l);
        return r;
    }
    const char *dir = o.dir ? o.dir : "/dev/shm";
    char final[4400], temp[64], tpath[4400];
    snprintf(final, sizeof final, "%s/guildtab.%s", dir, name);
    remove_stale(dir, "guildtab.restore-");
    snprintf(temp, sizeof temp, "restore-%u-%u", gt__pid(),
             atomic_fetch_add(&restore_seq, 1));
    snprintf(tpath, sizeof tpath, "%s/guildtab.%s", dir, temp);
    if (access(final, F_OK) == 0) {
        reader_close(&l);
        return GT_EEXIST;
    }
    gt_options to = o;
    to.flags = GT_CREATE | GT_EXCL;
    to.payload_size = man.payload_size;
    to.max_members = o.max_members ? o.max_members : man.max_members;
    to.max_guilds = o.max_guilds ? o.max_guilds : man.max_guilds;
    gt_table *t;
    if ((r = gt_open(temp, &to, &t)) == 0) {
        r = gt__snap_load(t, &l.rd, false, 0, fn, ctx);
        gt_close(t);
        /* appear whole, or not at all */
        if (r == 0 && link(tpath, final) != 0)
            r = errno == EEXIST ? GT_EEXIST : -errno;
        gt_unlink(temp, o.dir);
    }
    reader_close(&l);
    return r;
}

GT_API int gt_restore_guild(gt_table *t, const char *path, uint64_t guild_id,
                            gt_progress_fn fn, void *ctx) {
    if (!t || !path)
        return GT_EINVAL;
    if (t->flags & GT_RDONLY)
        return GT_EROFS;
    gt_guild_stat st;
    if (gt_guild_info(t, guild_id, &st) == 0)
        return GT_EEXIST;
    struct lmdb_reader l;
    int r = reader_open(path, &l);
    if (r)
        return r;
    r = gt__snap_load(t, &l.rd, true, guild_id, fn, ctx);
    reader_close(&l);
    if (r && r != GT_EEXIST)
        gt_guild_delete(t, guild_id); /* nothing half-done stays */
    return r;
}
