/* test_snapshot_live.c - snapshots taken while writer processes churn the
 * table: each guild in a snapshot is exactly the guild as of one moment
 * within the snapshot's run, and later snapshots never go back in time.
 *
 * Each writer process owns some guilds and logs every write to a guild
 * (intent first, then the write) in shared memory, so a guild's history is
 * a sequence. A guild in a snapshot must equal the replay of some prefix k
 * of its log, with k at least the writes acknowledged when the snapshot
 * began and at most those begun when it ended. Each restored guild is
 * compared with the replayed prefix member by member, payload included.
 * The longest a write waited during the snapshots is printed (the writer
 * stall; a figure, not a pass condition). */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define GUILDS 8
#define WRITERS 2
#define USERS 4000u
#define LOG_MAX 2000000u
#define SNAPS 4

enum { OP_PUT, OP_DEL, OP_FLAGS, OP_SESSION, OP_GDEL };
struct entry { /* 24 bytes: the member and payload derive from seed */
    uint8_t op;
    uint32_t u;
    uint32_t set, clear;
    uint64_t seed;
};
static gt_member member_of(const struct entry *e) {
    gt_member m = tc_member(e->u, e->seed);
    m.flags |= e->seed & 1 ? GT_ACTIVE : 0;
    return m;
}
static uint64_t payload_of(const struct entry *e) {
    return tc_mix(e->seed + 1);
}
struct shared {
    char name[128];
    _Atomic int stop;
    _Atomic uint64_t begun[GUILDS], acked[GUILDS];
    _Atomic uint64_t max_wait_ns;
    struct entry log[GUILDS][LOG_MAX];
};
static struct shared *sh;

static int writer(void *arg) {
    int me = (int)(intptr_t)arg;
    uint64_t rng = 77 + (uint64_t)me;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 1;
    while (!atomic_load(&sh->stop)) {
        int g = me + WRITERS * (int)(tc_rand(&rng) % (GUILDS / WRITERS));
        uint64_t n = atomic_load(&sh->begun[g]);
        if (n == LOG_MAX)
            break;
        struct entry *e = &sh->log[g][n];
        uint64_t r = tc_rand(&rng) % 1000;
        e->op = r < 500 ? OP_PUT : r < 750 ? OP_DEL : r < 900 ? OP_FLAGS
              : r < 999 ? OP_SESSION : OP_GDEL;
        e->u = (uint32_t)(tc_rand(&rng) % USERS);
        e->seed = tc_rand(&rng);
        gt_member m = member_of(e);
        uint64_t pay = payload_of(e);
        e->set = (uint32_t)tc_rand(&rng) & (GT_ONLINE | GT_ACTIVE | 0x00F00000u);
        e->clear = (uint32_t)tc_rand(&rng) & (GT_ONLINE | GT_ACTIVE | 0x00F00000u);
        atomic_store(&sh->begun[g], n + 1); /* intent before the write */
        double t0 = tc_now();
        int rc;
        switch (e->op) {
        case OP_PUT:
            rc = gt_insert(t, (uint64_t)g + 1, &m, &pay);
            break;
        case OP_DEL:
            rc = gt_delete(t, (uint64_t)g + 1, e->u);
            break;
        case OP_FLAGS:
            rc = gt_update_flags(t, (uint64_t)g + 1, e->u, e->set, e->clear,
                                 NULL);
            break;
        case OP_SESSION:
            rc = gt_update_session(t, (uint64_t)g + 1, e->u, m.worker,
                                   m.session_id);
            break;
        default:
            rc = gt_guild_delete(t, (uint64_t)g + 1);
        }
        uint64_t ns = (uint64_t)((tc_now() - t0) * 1e9);
        uint64_t mx = atomic_load(&sh->max_wait_ns);
        while (ns > mx && !atomic_compare_exchange_weak(&sh->max_wait_ns, &mx, ns))
            ;
        if (rc && rc != GT_ENOENT)
            return 2;
        atomic_store(&sh->acked[g], n + 1);
    }
    gt_close(t);
    return 0;
}

/* A guild's state, replayed from its log. */
struct model {
    bool present[USERS];
    gt_member m[USERS];
    uint64_t pay[USERS];
    uint64_t count, digest; /* digest: XOR of member hashes */
};

static uint64_t member_hash(const gt_member *m, uint64_t pay) {
    const uint64_t *w = (const uint64_t *)(const void *)m;
    uint64_t h = pay;
    for (size_t i = 0; i < sizeof *m / 8; i++)
        h = tc_mix(h ^ w[i]);
    return h;
}

static void set(struct model *md, uint32_t u, bool present, const gt_member *m,
                uint64_t pay) {
    if (md->present[u]) {
        md->digest ^= member_hash(&md->m[u], md->pay[u]);
        md->count--;
    }
    md->present[u] = present;
    if (present) {
        md->m[u] = *m;
        md->pay[u] = pay;
        md->digest ^= member_hash(m, pay);
        md->count++;
    }
}

static void apply(struct model *md, const struct entry *e) {
    gt_member m = md->m[e->u], n = member_of(e);
    switch (e->op) {
    case OP_PUT:
        set(md, e->u, true, &n, payload_of(e));
        break;
    case OP_DEL:
        set(md, e->u, false, NULL, 0);
        break;
    case OP_FLAGS:
        if (md->present[e->u]) {
            m.flags = (m.flags & ~e->clear) | e->set;
            set(md, e->u, true, &m, md->pay[e->u]);
        }
        break;
    case OP_SESSION:
        if (md->present[e->u]) {
            m.worker = n.worker;
            m.session_id = n.session_id;
            set(md, e->u, true, &m, md->pay[e->u]);
        }
        break;
    default:
        for (uint32_t u = 0; u < USERS; u++)
            set(md, u, false, NULL, 0);
    }
}

struct seen {
    uint64_t count, digest;
    const struct model *md; /* when set: compare every member with it */
    bool differs;
};
static int visit(void *ctx, const gt_member *m, const void *p) {
    struct seen *s = ctx;
    uint64_t pay;
    memcpy(&pay, p, 8);
    s->count++;
    s->digest ^= member_hash(m, pay);
    if (s->md && (m->user_id >= USERS || !s->md->present[m->user_id] ||
                  memcmp(&s->md->m[m->user_id], m, sizeof *m) ||
                  s->md->pay[m->user_id] != pay))
        s->differs = true;
    return 0;
}

Test(stress, snapshots_under_writers_are_moments, .timeout = 600) {
    sh = tc_shared(sizeof *sh);
    snprintf(sh->name, sizeof sh->name, "%s", tc_name("snaplive"));
    gt_table *t = tc_open(sh->name, GUILDS * USERS + 100, 16, 8);
    char dir[128];
    snprintf(dir, sizeof dir, "/dev/shm/gt-snaplive-%d", (int)getpid());
    mkdir(dir, 0700);
    pid_t w[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        w[i] = tc_spawn(writer, (void *)(intptr_t)i);
    uint64_t lo[SNAPS][GUILDS], hi[SNAPS][GUILDS];
    double secs = tc_seconds(6) / (SNAPS + 1);
    for (int s = 0; s < SNAPS; s++) {
        struct timespec d = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
        nanosleep(&d, NULL);
        for (int g = 0; g < GUILDS; g++)
            lo[s][g] = atomic_load(&sh->acked[g]);
        char p[256];
        snprintf(p, sizeof p, "%s/%d.gts", dir, s);
        int r = gt_snapshot(t, p, NULL, NULL);
        cr_assert_eq(r, 0, "gt_snapshot: %s", gt_strerror(r));
        for (int g = 0; g < GUILDS; g++)
            hi[s][g] = atomic_load(&sh->begun[g]);
    }
    atomic_store(&sh->stop, 1);
    tc_reap(w, WRITERS, "writer");
    uint64_t writes = 0;
    for (int g = 0; g < GUILDS; g++)
        writes += atomic_load(&sh->acked[g]);

    struct model *md = calloc(1, sizeof *md);
    uint64_t prev[GUILDS] = {0};
    for (int s = 0; s < SNAPS; s++) {
        char p[256], cn[128];
        snprintf(p, sizeof p, "%s/%d.gts", dir, s);
        snprintf(cn, sizeof cn, "%s", tc_name("snaplive-r"));
        cr_assert_eq(gt_restore(p, cn, NULL, NULL, NULL), 0);
        gt_table *c;
        cr_assert_eq(gt_open(cn, NULL, &c), 0);
        cr_assert_eq(gt_check(c, NULL), 0);
        for (int g = 0; g < GUILDS; g++) {
            struct seen got = {0};
            int r = gt_select(c, (uint64_t)g + 1, NULL, 0, 1, visit, &got);
            cr_assert(r == 0 || r == GT_ENOENT);
            /* the prefix it equals: replay up to the window's end */
            memset(md, 0, sizeof *md);
            int64_t k = -1;
            for (uint64_t i = 0; i <= hi[s][g]; i++) {
                if (i >= lo[s][g] && md->count == got.count &&
                    md->digest == got.digest) {
                    k = (int64_t)i;
                    break;
                }
                if (i < hi[s][g])
                    apply(md, &sh->log[g][i]);
            }
            cr_assert_geq(k, 0, "snapshot %d, guild %d: %lu members, equal to "
                          "no moment in [%lu, %lu]", s, g,
                          (unsigned long)got.count, (unsigned long)lo[s][g],
                          (unsigned long)hi[s][g]);
            got = (struct seen){.md = md};
            gt_select(c, (uint64_t)g + 1, NULL, 0, 1, visit, &got);
            cr_assert(!got.differs && got.count == md->count,
                      "snapshot %d, guild %d differs from its moment", s, g);
            cr_assert_geq((uint64_t)k, prev[g], "went back in time");
            prev[g] = (uint64_t)k;
        }
        gt_close(c);
        gt_unlink(cn, NULL);
        char q[256];
        snprintf(q, sizeof q, "%s/%d.gts", dir, s);
        unlink(q);
    }
    rmdir(dir);
    cr_log_info("snapshot under writers: %d snapshots of %d guilds during %lu "
                "writes; longest write %.2f ms", SNAPS, GUILDS,
                (unsigned long)writes,
                (double)atomic_load(&sh->max_wait_ns) / 1e6);
    free(md);
    tc_drop(t, sh->name);
}
