/* snapcommon.c - see snapcommon.h. */
#include "snapcommon.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

/* ---- tables ------------------------------------------------------------------ */

static uint64_t guild_id(uint64_t seed, int g) {
    /* small and huge ids: key order is numeric order */
    return g % 3 == 0 ? tc_mix(seed * 7919 + (uint64_t)g) : (uint64_t)g + 1;
}

static void payload_of(uint64_t g, const gt_member *m, uint8_t *p, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)(tc_mix(g ^ m->session_id) >> (i % 8 * 8));
}

static uint32_t psize(gt_table *t) {
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    return st.payload_size;
}

static gt_member random_member(uint64_t u, uint64_t *rng) {
    gt_member m = tc_member(u, tc_rand(rng));
    uint64_t r = tc_rand(rng);
    m.flags = (r & 1 ? GT_ONLINE : 0) | (r & 2 ? GT_ACTIVE : 0) |
              ((uint32_t)(r >> 8) & GT_FLAGS_HOST);
    return m;
}

uint64_t sc_fill(gt_table *t, uint64_t seed, int guilds, uint64_t max) {
    uint64_t rng = seed * 1000003, ps = psize(t);
    uint8_t pay[GT_PAYLOAD_MAX];
    for (int g = 0; g < guilds; g++) {
        uint64_t gid = guild_id(seed, g);
        uint64_t n = tc_rand(&rng) % max;
        if (g == 0)
            n = max - 1; /* one big guild */
        for (uint64_t i = 0; i < n; i++) {
            gt_member m = random_member(tc_rand(&rng) % (4 * max), &rng);
            payload_of(gid, &m, pay, (uint32_t)ps);
            int r = gt_insert(t, gid, &m, pay);
            cr_assert_eq(r, 0, "insert: %s", gt_strerror(r));
        }
    }
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    return st.members;
}

struct ids {
    uint64_t id[4096];
    uint64_t members[4096];
    size_t n;
};
static int collect(void *ctx, const gt_guild_stat *g) {
    struct ids *l = ctx;
    cr_assert_lt(l->n, 4096);
    l->members[l->n] = g->members;
    l->id[l->n++] = g->guild_id;
    return 0;
}
static void guild_list(gt_table *t, struct ids *l) {
    l->n = 0;
    cr_assert_eq(gt_guilds(t, collect, l), 0);
}

struct churn {
    gt_table *t;
    uint64_t g, rng;
    uint64_t users[256];
    size_t n;
};
static int pick(void *ctx, const gt_member *m, const void *p) {
    (void)p;
    struct churn *c = ctx;
    if (c->n < 256 && tc_rand(&c->rng) % 8 == 0)
        c->users[c->n++] = m->user_id;
    return 0;
}

void sc_churn(gt_table *t, uint64_t seed) {
    struct ids *l = malloc(sizeof *l);
    guild_list(t, l);
    struct churn c = {.t = t, .rng = seed * 31 + 7};
    uint8_t pay[GT_PAYLOAD_MAX];
    uint32_t ps = psize(t);
    for (size_t i = 0; i < l->n; i++) {
        c.g = l->id[i];
        c.n = 0;
        cr_assert_eq(gt_select(t, c.g, NULL, 0, 1, pick, &c), 0);
        for (size_t k = 0; k < c.n; k++) {
            uint64_t u = c.users[k];
            switch (k % 4) {
            case 0:
                cr_assert_eq(gt_delete(t, c.g, u), 0);
                break;
            case 1:
                cr_assert_eq(gt_update_flags(t, c.g, u, GT_ACTIVE, GT_ONLINE,
                                             NULL), 0);
                break;
            case 2:
                cr_assert_eq(gt_update_session(t, c.g, u, 3, tc_rand(&c.rng)),
                             0);
                break;
            default: {
                gt_member m = random_member(u + (1ull << 40), &c.rng);
                payload_of(c.g, &m, pay, ps);
                cr_assert_eq(gt_insert(t, c.g, &m, pay), 0);
            }
            }
        }
    }
    if (l->n > 2)
        cr_assert_eq(gt_guild_delete(t, l->id[1]), 0);
    free(l);
}

uint64_t sc_some_guild(gt_table *t) {
    struct ids *l = malloc(sizeof *l);
    guild_list(t, l);
    uint64_t g = 0;
    for (size_t i = 0; i < l->n && !g; i++)
        if (l->members[i])
            g = l->id[i];
    free(l);
    cr_assert_neq(g, 0, "no guild with members");
    return g;
}

uint64_t sc_largest_guild(gt_table *t) {
    struct ids *l = malloc(sizeof *l);
    guild_list(t, l);
    uint64_t g = 0, best = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->members[i] >= best)
            best = l->members[i], g = l->id[i];
    free(l);
    return g;
}

struct cmp {
    gt_table *b;
    uint64_t g, seen;
    uint32_t ps;
};
static int compare_one(void *ctx, const gt_member *m, const void *p) {
    struct cmp *c = ctx;
    gt_member o;
    uint8_t pay[GT_PAYLOAD_MAX];
    int r = gt_lookup(c->b, c->g, m->user_id, &o, pay);
    cr_assert_eq(r, 0, "guild %lu user %lu missing: %s", (unsigned long)c->g,
                 (unsigned long)m->user_id, gt_strerror(r));
    cr_assert_eq(memcmp(&o, m, sizeof o), 0, "guild %lu user %lu differs",
                 (unsigned long)c->g, (unsigned long)m->user_id);
    cr_assert_eq(memcmp(pay, p, c->ps), 0, "payload of %lu differs",
                 (unsigned long)m->user_id);
    c->seen++;
    return 0;
}

void sc_assert_guild_equal(gt_table *a, gt_table *b, uint64_t g) {
    gt_guild_stat x, y;
    cr_assert_eq(gt_guild_info(a, g, &x), 0);
    int r = gt_guild_info(b, g, &y);
    cr_assert_eq(r, 0, "guild %lu: %s", (unsigned long)g, gt_strerror(r));
    cr_assert_eq(x.members, y.members, "guild %lu", (unsigned long)g);
    cr_assert_eq(x.online, y.online);
    cr_assert_eq(x.active, y.active);
    struct cmp c = {b, g, 0, psize(a)};
    cr_assert_eq(psize(b), c.ps);
    cr_assert_eq(gt_select(a, g, NULL, 0, 1, compare_one, &c), 0);
    cr_assert_eq(c.seen, x.members);
}

void sc_assert_equal(gt_table *a, gt_table *b) {
    struct ids *la = malloc(sizeof *la), *lb = malloc(sizeof *lb);
    guild_list(a, la);
    guild_list(b, lb);
    cr_assert_eq(la->n, lb->n, "guilds: %zu and %zu", la->n, lb->n);
    for (size_t i = 0; i < la->n; i++)
        sc_assert_guild_equal(a, b, la->id[i]);
    free(la);
    free(lb);
}

/* ---- files ---------------------------------------------------------------------- */

int sc_count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
             strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

int sc_count_files(const char *dir) {
    return sc_count_prefix(dir, "");
}

void sc_copy(const char *from, const char *to) {
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC,
                                               0600);
    cr_assert(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

void sc_rmdir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ---- forgeries -------------------------------------------------------------------- */

static const char *const names[] = {
    "none", "flip value", "move", "drop member", "drop guild",
    "drop manifest", "stray member", "extra member", "edit member",
    "version", "sealed flags", "sealed count", "sealed max",
    "sealed payload", "sealed guild id",
};
_Static_assert(sizeof names / sizeof names[0] == SC_FORGERIES, "names");

const char *sc_forgery_name(int kind) {
    return kind >= 0 && kind < SC_FORGERIES ? names[kind] : "?";
}

struct snap {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, guilds, members;
    struct gt_snap_manifest man;
};

static void snap_open(const char *path, struct snap *s) {
    cr_assert_eq(mdb_env_create(&s->env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(s->env, 4), 0);
    cr_assert_eq(mdb_env_set_mapsize(s->env, 1ull << 30), 0);
    cr_assert_eq(mdb_env_open(s->env, path, MDB_NOSUBDIR | MDB_NOLOCK, 0600), 0);
    cr_assert_eq(mdb_txn_begin(s->env, NULL, 0, &s->txn), 0);
    cr_assert_eq(mdb_dbi_open(s->txn, "meta", 0, &s->meta), 0);
    cr_assert_eq(mdb_dbi_open(s->txn, "guilds", 0, &s->guilds), 0);
    cr_assert_eq(mdb_dbi_open(s->txn, "members", 0, &s->members), 0);
    MDB_val k = {8, "manifest"}, v;
    cr_assert_eq(mdb_get(s->txn, s->meta, &k, &v), 0);
    cr_assert_eq(gt__snap_manifest_decode(v.mv_data, v.mv_size, &s->man), 0);
}

static void snap_close(struct snap *s) {
    cr_assert_eq(mdb_txn_commit(s->txn), 0);
    mdb_env_close(s->env);
}

static void put_manifest(struct snap *s, uint32_t version) {
    uint8_t b[GT_SNAP_MANIFEST_BYTES];
    gt__snap_manifest_encode(&s->man, version, b);
    MDB_val k = {8, "manifest"}, v = {sizeof b, b};
    cr_assert_eq(mdb_put(s->txn, s->meta, &k, &v, 0), 0);
}

/* The first member record: its key, value and decoded member. */
static void first_member(struct snap *s, uint8_t key[16], uint8_t *val,
                         gt_member *m, uint64_t *guild) {
    MDB_cursor *c;
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_open(s->txn, s->members, &c), 0);
    cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    memcpy(key, k.mv_data, 16);
    memcpy(val, v.mv_data, v.mv_size);
    const uint8_t *p;
    uint64_t check;
    cr_assert_eq(gt__snap_member_decode(k.mv_data, 16, v.mv_data, v.mv_size,
                                        s->man.payload_size, guild, m, &p,
                                        &check), 0);
    mdb_cursor_close(c);
}

static void put_member(struct snap *s, uint64_t guild, const gt_member *m,
                       const uint8_t *payload, uint32_t ps) {
    uint64_t w[8];
    gt__rec_pack(m, w);
    uint8_t key[16], val[GT_SNAP_MEMBER_BYTES(GT_PAYLOAD_MAX)];
    gt__snap_member_encode(guild, w, payload, ps, key, val);
    MDB_val k = {16, key}, v = {GT_SNAP_MEMBER_BYTES(ps), val};
    cr_assert_eq(mdb_put(s->txn, s->members, &k, &v, 0), 0);
}

/* not inlined: GCC 12 misreads XXH3's inlined update on small arrays */
__attribute__((noinline)) static void upd(XXH3_state_t *s, const void *p,
                                          size_t n) {
    XXH3_64bits_update(s, p, n);
}

static uint64_t get_be8(const void *p) {
    const uint8_t *b = p;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | b[i];
    return x;
}

/* Recompute every checksum and digest (payloads resized to ps); counts too
 * if recount. */
static void reseal(struct snap *s, uint32_t ps, bool recount) {
    MDB_cursor *gc, *mc;
    MDB_val gk, gv, k, v;
    cr_assert_eq(mdb_cursor_open(s->txn, s->guilds, &gc), 0);
    cr_assert_eq(mdb_cursor_open(s->txn, s->members, &mc), 0);
    XXH3_state_t all;
    XXH3_64bits_reset_withSeed(&all, GT_SNAP_SEED_TABLE);
    uint64_t guilds = 0, members = 0;
    int gr = mdb_cursor_get(gc, &gk, &gv, MDB_FIRST);
    int mr = mdb_cursor_get(mc, &k, &v, MDB_FIRST);
    while (gr == 0) {
        struct gt_snap_guild g = {0};
        cr_assert_eq(gv.mv_size, GT_SNAP_GUILD_BYTES);
        uint64_t *gf[] = {&g.guild_id, &g.members, &g.online, &g.active};
        for (int i = 0; i < 4; i++)
            for (int j = 7; j >= 0; j--)
                *gf[i] = *gf[i] << 8 | ((const uint8_t *)gv.mv_data)[8 * i + j];
        XXH3_state_t dig;
        XXH3_64bits_reset_withSeed(&dig, GT_SNAP_SEED_GUILD);
        uint64_t n = 0, online = 0, active = 0;
        for (; mr == 0; mr = mdb_cursor_get(mc, &k, &v, MDB_NEXT)) {
            const uint8_t *kb = k.mv_data, *vb = v.mv_data;
            uint64_t gid = 0, w[8];
            for (int i = 0; i < 8; i++)
                gid = gid << 8 | kb[i];
            if (gid != g.guild_id && gid != get_be8(gk.mv_data))
                break;
            for (int i = 0; i < 8; i++) {
                w[i] = 0;
                for (int j = 7; j >= 0; j--)
                    w[i] = w[i] << 8 | vb[8 * i + j];
            }
            uint8_t pay[GT_PAYLOAD_MAX] = {0}, key[16];
            size_t have = v.mv_size - 72;
            memcpy(pay, vb + 64, have < ps ? have : ps);
            uint8_t *val = malloc(GT_SNAP_MEMBER_BYTES(ps));
            gt__snap_member_encode(gid, w, pay, ps, key, val);
            MDB_val nv = {GT_SNAP_MEMBER_BYTES(ps), val};
            cr_assert_eq(mdb_cursor_put(mc, &k, &nv, MDB_CURRENT), 0);
            upd(&dig, val + GT_SNAP_MEMBER_BYTES(ps) - 8, 8);
            free(val);
            uint32_t flags = (uint32_t)(w[7] >> 32);
            n++;
            online += !!(flags & GT_ONLINE);
            active += !!(flags & GT_ACTIVE);
        }
        if (recount)
            g.members = n, g.online = online, g.active = active;
        g.digest = XXH3_64bits_digest(&dig);
        uint8_t b[GT_SNAP_GUILD_BYTES];
        gt__snap_guild_encode(&g, b);
        MDB_val nv = {sizeof b, b};
        cr_assert_eq(mdb_cursor_put(gc, &gk, &nv, MDB_CURRENT), 0);
        upd(&all, b, sizeof b);
        guilds++;
        members += g.members;
        gr = mdb_cursor_get(gc, &gk, &gv, MDB_NEXT);
    }
    mdb_cursor_close(gc);
    mdb_cursor_close(mc);
    s->man.payload_size = ps;
    if (recount)
        s->man.guilds = guilds, s->man.members = members;
    s->man.digest = XXH3_64bits_digest(&all);
    put_manifest(s, GT_SNAP_VERSION);
}

void sc_forge(const char *path, int kind) {
    struct snap s;
    snap_open(path, &s);
    uint32_t ps = s.man.payload_size;
    uint8_t key[16], val[GT_SNAP_MEMBER_BYTES(GT_PAYLOAD_MAX)];
    uint8_t pay[GT_PAYLOAD_MAX] = {0};
    gt_member m;
    uint64_t guild;
    first_member(&s, key, val, &m, &guild);
    MDB_val k = {16, key}, v = {GT_SNAP_MEMBER_BYTES(ps), val};
    switch (kind) {
    case SC_FORGE_NONE:
        reseal(&s, ps, false);
        break;
    case SC_FORGE_FLIP_VALUE:
        val[20] ^= 4;
        cr_assert_eq(mdb_put(s.txn, s.members, &k, &v, 0), 0);
        break;
    case SC_FORGE_MOVE: {
        MDB_cursor *c;
        MDB_val k2, v2;
        cr_assert_eq(mdb_cursor_open(s.txn, s.members, &c), 0);
        cr_assert_eq(mdb_cursor_get(c, &k2, &v2, MDB_FIRST), 0);
        cr_assert_eq(mdb_cursor_get(c, &k2, &v2, MDB_NEXT), 0);
        cr_assert_eq(mdb_cursor_put(c, &k2, &v, MDB_CURRENT), 0);
        mdb_cursor_close(c);
        break;
    }
    case SC_FORGE_DROP_MEMBER:
        cr_assert_eq(mdb_del(s.txn, s.members, &k, NULL), 0);
        break;
    case SC_FORGE_DROP_GUILD: {
        uint8_t gk[8];
        memcpy(gk, key, 8);
        MDB_val g = {8, gk};
        cr_assert_eq(mdb_del(s.txn, s.guilds, &g, NULL), 0);
        break;
    }
    case SC_FORGE_DROP_MANIFEST: {
        MDB_val mk = {8, "manifest"};
        cr_assert_eq(mdb_del(s.txn, s.meta, &mk, NULL), 0);
        break;
    }
    case SC_FORGE_STRAY_MEMBER:
        put_member(&s, guild ^ 0x5555, &m, pay, ps);
        break;
    case SC_FORGE_EXTRA_MEMBER:
        m.user_id ^= 0xABCDEF12345ull;
        put_member(&s, guild, &m, pay, ps);
        break;
    case SC_FORGE_EDIT_MEMBER:
        m.roles[1] ^= 1;
        put_member(&s, guild, &m, pay, ps);
        break;
    case SC_FORGE_VERSION:
        put_manifest(&s, GT_SNAP_VERSION + 1);
        break;
    case SC_FORGE_SEALED_FLAGS:
        m.flags |= 0x100; /* a library bit that is not defined */
        put_member(&s, guild, &m, pay, ps);
        reseal(&s, ps, true);
        break;
    case SC_FORGE_SEALED_COUNT: {
        reseal(&s, ps, true);
        MDB_cursor *c;
        MDB_val gk, gv;
        cr_assert_eq(mdb_cursor_open(s.txn, s.guilds, &c), 0);
        cr_assert_eq(mdb_cursor_get(c, &gk, &gv, MDB_FIRST), 0);
        struct gt_snap_guild g;
        cr_assert_eq(gt__snap_guild_decode(gk.mv_data, 8, gv.mv_data, gv.mv_size,
                                           &g), 0);
        g.online = g.online ? g.online - 1 : 1;
        uint8_t b[GT_SNAP_GUILD_BYTES];
        gt__snap_guild_encode(&g, b);
        MDB_val nv = {sizeof b, b};
        cr_assert_eq(mdb_cursor_put(c, &gk, &nv, MDB_CURRENT), 0);
        mdb_cursor_close(c);
        reseal(&s, ps, false); /* digests over the changed record */
        break;
    }
    case SC_FORGE_SEALED_MAX:
        reseal(&s, ps, true);
        s.man.max_members = s.man.members - 1;
        put_manifest(&s, GT_SNAP_VERSION);
        break;
    case SC_FORGE_SEALED_PAYLOAD: /* the records keep theirs */
        reseal(&s, ps, true);
        s.man.payload_size = ps + 8;
        put_manifest(&s, GT_SNAP_VERSION);
        break;
    case SC_FORGE_SEALED_GUILD_ID: {
        /* guild record moved to another key, its id inside left */
        MDB_cursor *c;
        MDB_val gk, gv;
        cr_assert_eq(mdb_cursor_open(s.txn, s.guilds, &c), 0);
        cr_assert_eq(mdb_cursor_get(c, &gk, &gv, MDB_LAST), 0);
        uint8_t nk[8], b[GT_SNAP_GUILD_BYTES];
        memcpy(nk, gk.mv_data, 8);
        memcpy(b, gv.mv_data, sizeof b);
        nk[7] ^= 1;
        cr_assert_eq(mdb_cursor_del(c, 0), 0);
        mdb_cursor_close(c);
        MDB_val k2 = {8, nk}, v2 = {sizeof b, b};
        cr_assert_eq(mdb_put(s.txn, s.guilds, &k2, &v2, 0), 0);
        reseal(&s, ps, true);
        break;
    }
    default:
        cr_assert_fail("no forgery %d", kind);
    }
    snap_close(&s);
}
