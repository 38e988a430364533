/*
 * fuzz_snaprecords.c - libFuzzer target: restore's record decoding and
 * validation (gt__snap_load) over arbitrary records must give an error code
 * or a sound table, never a crash.
 *
 * The input is a stream of records, each [u8 kind][u16 key len][u16 value
 * len][key][value] (kind 0 manifest, 1 guild, 2 member); the loader reads
 * the first manifest, the guild records and the member records in input
 * order, as it reads LMDB's. Built against the library with GT_FUZZING,
 * which skips checksum comparisons, so that mutated records reach the
 * checks behind them. The first byte's low bit picks a whole restore or a
 * one-guild restore (of the first guild record's id). Whatever loads must
 * pass gt_check.
 *
 * GT_FUZZ_WRITE_SEEDS=DIR writes the seed corpus (sound streams made with
 * the real encoders) to DIR and exits; GT_FUZZ_VERBOSE=1 prints each
 * input's result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define PAYLOAD 8u

struct stream {
    struct gt_snap_reader rd;
    const uint8_t *p;
    size_t n;
    size_t pos[3]; /* next read position per kind */
};

/* The next record of kind at or after s->pos[kind]. */
static int next(struct stream *s, int kind, const void **k, size_t *kn,
                const void **v, size_t *vn) {
    size_t at = s->pos[kind];
    while (at + 5 <= s->n) {
        size_t klen = (size_t)(s->p[at + 1] | s->p[at + 2] << 8);
        size_t vlen = (size_t)(s->p[at + 3] | s->p[at + 4] << 8);
        size_t end = at + 5 + klen + vlen;
        if (end > s->n)
            break;
        if (s->p[at] % 3 == kind) {
            *k = s->p + at + 5, *kn = klen;
            *v = s->p + at + 5 + klen, *vn = vlen;
            s->pos[kind] = end;
            return 0;
        }
        at = end;
    }
    s->pos[kind] = s->n;
    return GT_ENOENT;
}
static int manifest(struct gt_snap_reader *r, const void **v, size_t *n) {
    const void *k;
    size_t kn;
    int e = next((struct stream *)r, 0, &k, &kn, v, n);
    return e == GT_ENOENT ? GT_ECORRUPT : e;
}
static int guild(struct gt_snap_reader *r, const void **k, size_t *kn,
                 const void **v, size_t *vn) {
    return next((struct stream *)r, 1, k, kn, v, vn);
}
static int member(struct gt_snap_reader *r, const void **k, size_t *kn,
                  const void **v, size_t *vn) {
    return next((struct stream *)r, 2, k, kn, v, vn);
}

static gt_table *t;
static char dir[64];

static int collect(void *ctx, const gt_guild_stat *g) {
    uint64_t *ids = ctx;
    if (ids[0] < 64)
        ids[++ids[0]] = g->guild_id;
    return 0;
}

static void cleanup(void) {
    gt_close(t);
    gt_unlink("fuzz", dir);
    rmdir(dir);
}

/* ---- seeds ------------------------------------------------------------------- */

static void emit(FILE *f, int kind, const void *k, size_t kn, const void *v,
                 size_t vn) {
    uint8_t h[5] = {(uint8_t)kind, (uint8_t)kn, (uint8_t)(kn >> 8),
                    (uint8_t)vn, (uint8_t)(vn >> 8)};
    fwrite(h, 1, 5, f);
    fwrite(k, 1, kn, f);
    fwrite(v, 1, vn, f);
}

/* A sound stream of `guilds` guilds of `per` members. Kinds are read
 * independently, so each guild's record follows its members, and the
 * manifest (which covers the guild records) comes last. */
static void write_seed(const char *out, int mode, int guilds, int per) {
    FILE *f = fopen(out, "wb");
    if (!f)
        exit(1);
    fputc(mode, f);
    struct gt_snap_manifest man = {.payload_size = PAYLOAD, .max_guilds = 16,
                                   .max_members = 1000};
    XXH3_state_t all;
    XXH3_64bits_reset_withSeed(&all, GT_SNAP_SEED_TABLE);
    for (int g = 1; g <= guilds; g++) {
        struct gt_snap_guild gs = {.guild_id = (uint64_t)g * 1000};
        XXH3_state_t dig;
        XXH3_64bits_reset_withSeed(&dig, GT_SNAP_SEED_GUILD);
        for (int u = 1; u <= per; u++) {
            gt_member m = {.user_id = (uint64_t)u * 17, .session_id = (uint64_t)u,
                           .worker = (uint32_t)u % 4,
                           .flags = GT_ONLINE | (u % 3 ? 0 : GT_ACTIVE),
                           .roles = {(uint64_t)u}};
            uint64_t w[8], pay = (uint64_t)u * 3;
            gt__rec_pack(&m, w);
            uint8_t key[16], val[GT_SNAP_MEMBER_BYTES(PAYLOAD)];
            gt__snap_member_encode(gs.guild_id, w, (const uint8_t *)&pay,
                                   PAYLOAD, key, val);
            emit(f, 2, key, 16, val, sizeof val);
            XXH3_64bits_update(&dig, val + sizeof val - 8, 8);
            gs.members++;
            gs.online++;
            gs.active += !!(m.flags & GT_ACTIVE);
        }
        gs.digest = XXH3_64bits_digest(&dig);
        uint8_t gk[8], gv[GT_SNAP_GUILD_BYTES];
        for (int i = 0; i < 8; i++)
            gk[i] = (uint8_t)(gs.guild_id >> (56 - 8 * i));
        gt__snap_guild_encode(&gs, gv);
        XXH3_64bits_update(&all, gv, sizeof gv);
        emit(f, 1, gk, 8, gv, sizeof gv);
        man.guilds++;
        man.members += gs.members;
    }
    man.digest = XXH3_64bits_digest(&all);
    uint8_t mb[GT_SNAP_MANIFEST_BYTES];
    gt__snap_manifest_encode(&man, GT_SNAP_VERSION, mb);
    emit(f, 0, "manifest", 8, mb, sizeof mb);
    fclose(f);
}

static void write_seeds(const char *out) {
    mkdir(out, 0755);
    char p[512];
    const int shapes[][3] = {{0, 0, 0}, {0, 1, 0}, {0, 1, 1}, {0, 2, 5},
                             {0, 3, 9}, {1, 3, 4}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        snprintf(p, sizeof p, "%s/seed-%zu", out, i);
        write_seed(p, shapes[i][0], shapes[i][1], shapes[i][2]);
    }
    exit(0);
}

/* ---- the target ------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *out = getenv("GT_FUZZ_WRITE_SEEDS");
    if (out)
        write_seeds(out);
    snprintf(dir, sizeof dir, "/dev/shm/gt-fuzzrec-%d", (int)getpid());
    mkdir(dir, 0700);
    gt_options o = {.dir = dir, .max_members = 4096, .max_guilds = 64,
                    .max_slots = 4, .payload_size = PAYLOAD,
                    .flags = GT_CREATE | GT_EXCL};
    if (gt_open("fuzz", &o, &t)) {
        fprintf(stderr, "fuzz_snaprecords: cannot create the table\n");
        exit(1);
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    struct stream s = {{(size - 1) / (5 + 16 + GT_SNAP_MEMBER_BYTES(0)),
                        manifest, guild, member},
                       data + 1, size - 1, {0}};
    bool one = data[0] & 1;
    uint64_t only = 0;
    if (one) { /* the first guild record's id, if any */
        struct stream probe = s;
        const void *k, *v;
        size_t kn, vn;
        if (guild(&probe.rd, &k, &kn, &v, &vn) == 0 && kn == 8)
            for (int i = 0; i < 8; i++)
                only = only << 8 | ((const uint8_t *)k)[i];
    }
    int r = gt__snap_load(t, &s.rd, one, only, NULL, NULL);
    if (getenv("GT_FUZZ_VERBOSE")) /* for checking the seeds */
        fprintf(stderr, "load: %s\n", gt_strerror(r));
    if (gt_check(t, NULL) != 0)
        abort(); /* whatever the loader let in must be a sound table */
    uint64_t ids[65] = {0};
    gt_guilds(t, collect, ids);
    for (uint64_t i = 1; i <= ids[0]; i++)
        gt_guild_delete(t, ids[i]);
    return 0;
}
