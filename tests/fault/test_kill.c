/* test_kill.c - writers killed with SIGKILL at random moments lose nothing
 * they acknowledged, and their in-flight write is all or nothing.
 *
 * Each round forks a writer doing a random mix of every write (inserts that
 * grow the storage and the fanout set, deletes that shrink them, updates,
 * guild deletes) and logs, in memory shared with the parent, each write's
 * intent before calling and its acknowledgement after it returns. The parent
 * kills the writer after a random delay, then has the guilds recovered (a
 * write on each takes its lock) and checks the whole table against the
 * acknowledged log: every acknowledged write is present, the one in flight
 * is either fully there or not at all, nothing else changed, and the guild
 * counters, fanout sets and member count agree. The next round continues
 * on the same table. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define GUILDS 3
#define USERS 6000u
#define LOG_MAX (1u << 21)

enum { OP_PUT, OP_DEL, OP_FLAGS, OP_SESSION, OP_GDEL };

struct entry {
    uint8_t op, done;
    uint16_t g;
    uint32_t u;
    uint32_t set, clear;
    gt_member m; /* OP_PUT: the record; OP_SESSION: worker, session_id */
};
struct shared {
    char name[128];
    _Atomic uint64_t n; /* entries written */
    _Atomic int started;
    int err, err_op; /* the writer's unexpected error, if any */
    struct entry e[LOG_MAX];
};
static struct shared *sh;

struct model {
    bool present[GUILDS][USERS];
    gt_member m[GUILDS][USERS];
};

static uint64_t gid(unsigned g) {
    return 500 + g;
}

static void apply(struct model *md, const struct entry *e) {
    bool *p = &md->present[e->g][e->u];
    gt_member *m = &md->m[e->g][e->u];
    switch (e->op) {
    case OP_PUT:
        *p = true;
        *m = e->m;
        break;
    case OP_DEL:
        *p = false;
        break;
    case OP_FLAGS:
        if (*p)
            m->flags = (m->flags & ~e->clear) | e->set;
        break;
    case OP_SESSION:
        if (*p)
            m->worker = e->m.worker, m->session_id = e->m.session_id;
        break;
    case OP_GDEL:
        memset(md->present[e->g], 0, sizeof md->present[e->g]);
        break;
    }
}

static int writer(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 10;
    atomic_store(&sh->started, 1);
    for (;;) {
        uint64_t n = atomic_load(&sh->n);
        if (n >= LOG_MAX)
            return 0;
        struct entry *e = &sh->e[n];
        memset(e, 0, sizeof *e);
        e->g = (uint16_t)(tc_rand(&rng) % GUILDS);
        e->u = (uint32_t)(tc_rand(&rng) % USERS);
        uint64_t r = tc_rand(&rng) % 1000;
        e->op = r < 450 ? OP_PUT : r < 750 ? OP_DEL : r < 900 ? OP_FLAGS
                : r < 999 ? OP_SESSION : OP_GDEL;
        if (e->op == OP_PUT) {
            e->m = tc_member(e->u, tc_rand(&rng));
            e->m.flags |= tc_rand(&rng) % 3 == 0 ? GT_ACTIVE : 0;
        }
        e->set = (uint32_t)tc_rand(&rng) & (GT_ONLINE | GT_ACTIVE | 0x00300000u);
        e->clear = (uint32_t)tc_rand(&rng) & (GT_ONLINE | GT_ACTIVE | 0x00300000u);
        e->m.worker = e->op == OP_SESSION ? (uint32_t)tc_rand(&rng) % 50 : e->m.worker;
        if (e->op == OP_SESSION)
            e->m.session_id = tc_rand(&rng);
        /* intent, then the write, then the acknowledgement */
        atomic_store(&sh->n, n + 1);
        int rc;
        switch (e->op) {
        case OP_PUT:
            rc = gt_insert(t, gid(e->g), &e->m, NULL);
            break;
        case OP_DEL:
            rc = gt_delete(t, gid(e->g), e->u);
            break;
        case OP_FLAGS:
            rc = gt_update_flags(t, gid(e->g), e->u, e->set, e->clear, NULL);
            break;
        case OP_SESSION:
            rc = gt_update_session(t, gid(e->g), e->u, e->m.worker,
                                   e->m.session_id);
            break;
        default:
            rc = gt_guild_delete(t, gid(e->g));
        }
        if (rc != 0 && rc != GT_ENOENT) {
            sh->err = rc, sh->err_op = e->op;
            return 11;
        }
        e->done = 1;
    }
}

struct cnt {
    uint64_t n;
};
static int count_fan(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)w, (void)r;
    ((struct cnt *)ctx)->n += n;
    return 0;
}

/* Check the table against the model; the in-flight entry (if any) may or
 * may not have happened: pick whichever the table shows, then demand
 * exactness. */
static void verify(gt_table *t, struct model *md, const struct entry *inflight) {
    if (inflight) {
        struct model *after = malloc(sizeof *after);
        memcpy(after, md, sizeof *after);
        apply(after, inflight);
        /* decide by the first user of the guild whose state differs */
        bool took = false, decided = false;
        for (uint32_t u = 0; u < USERS && !decided; u++) {
            bool b = md->present[inflight->g][u], a = after->present[inflight->g][u];
            if (a == b && (!a || !memcmp(&md->m[inflight->g][u],
                                         &after->m[inflight->g][u], sizeof(gt_member))))
                continue;
            gt_member got;
            int r = gt_lookup(t, gid(inflight->g), u, &got, NULL);
            took = (r == 0) == a && (!a || !memcmp(&got, &after->m[inflight->g][u],
                                                   sizeof got));
            decided = true;
        }
        if (took)
            memcpy(md, after, sizeof *md);
        free(after);
    }
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    uint64_t total = 0;
    for (unsigned g = 0; g < GUILDS; g++) {
        uint64_t members = 0, online = 0, active = 0;
        for (uint32_t u = 0; u < USERS; u++) {
            gt_member got;
            int r = gt_lookup(t, gid(g), u, &got, NULL);
            if (!md->present[g][u]) {
                cr_assert_eq(r, GT_ENOENT, "guild %u user %u should be absent (%d)",
                             g, u, r);
                continue;
            }
            cr_assert_eq(r, 0, "guild %u user %u lost (%s)", g, u, gt_strerror(r));
            cr_assert_arr_eq(&got, &md->m[g][u], sizeof got,
                             "guild %u user %u differs", g, u);
            members++;
            online += !!(got.flags & GT_ONLINE);
            active += !!(got.flags & GT_ACTIVE);
        }
        gt_guild_stat st;
        int r = gt_guild_info(t, gid(g), &st);
        if (r == GT_ENOENT) {
            cr_assert_eq(members, 0);
            continue;
        }
        cr_assert_eq(r, 0);
        cr_assert_eq(st.members, members, "guild %u members", g);
        cr_assert_eq(st.online, online, "guild %u online", g);
        cr_assert_eq(st.active, active, "guild %u active", g);
        struct cnt c = {0};
        cr_assert_eq(gt_fanout(t, gid(g), &(gt_filter){.flags_set = GT_ACTIVE},
                               0, 1, count_fan, &c), 0);
        cr_assert_eq(c.n, active, "guild %u fanout set", g);
        uint64_t scanned;
        cr_assert_eq(gt_select_count(t, gid(g), &(gt_filter){.flags_clear = 0x80000000u},
                                     0, 1, &scanned), 0);
        cr_assert_eq(scanned, members);
        total += members;
    }
    cr_assert_eq(ts.members, total, "table member count %lu, guilds hold %lu (in flight: %d)",
                 (unsigned long)ts.members, (unsigned long)total,
                 inflight ? inflight->op : -1);
}

Test(fault, sigkill_writers_lose_nothing, .timeout = 600) {
    sh = tc_shared(sizeof *sh);
    snprintf(sh->name, sizeof sh->name, "%s", tc_name("kill"));
    gt_table *t = tc_open(sh->name, GUILDS * USERS + 100, 8, 0);
    struct model *md = calloc(1, sizeof *md);
    const char *e = getenv("GT_FAULT_KILLS");
    int kills = e ? atoi(e) : 40;
    uint64_t applied = 0, rng = 4242;
    for (int k = 0; k < kills; k++) {
        atomic_store(&sh->started, 0);
        pid_t p = tc_spawn(writer, (void *)(uintptr_t)(k + 1));
        while (!atomic_load(&sh->started))
            usleep(100);
        struct timespec d = {0, (long)(tc_rand(&rng) % 20000000)};
        nanosleep(&d, NULL);
        kill(p, SIGKILL);
        int st;
        waitpid(p, &st, 0);
        if (!WIFSIGNALED(st)) {
            gt_table_stat ts;
            gt_info(t, &ts);
            fprintf(stderr, "members %lu guilds %lu used %lu retired %lu slots %u\n",
                    (unsigned long)ts.members, (unsigned long)ts.guilds, (unsigned long)ts.bytes_used,
                    (unsigned long)ts.bytes_retired, ts.slots_used);
        }
        cr_assert(WIFSIGNALED(st), "writer %d exited by itself (%d): op %d: %s",
                  k, WEXITSTATUS(st), sh->err_op, gt_strerror(sh->err));
        uint64_t n = atomic_load(&sh->n);
        const struct entry *inflight = NULL;
        for (uint64_t i = 0; i < n; i++) {
            if (sh->e[i].done)
                apply(md, &sh->e[i]);
            else
                inflight = &sh->e[i];
        }
        cr_assert(!inflight || inflight == &sh->e[n - 1]);
        applied += n;
        /* a write on each guild takes its lock and recovers it */
        for (unsigned g = 0; g < GUILDS; g++) {
            int r = gt_update_flags(t, gid(g), UINT64_MAX, 0, 0, NULL);
            cr_assert(r == GT_ENOENT, "recovering guild %u: %s", g, gt_strerror(r));
        }
        verify(t, md, inflight);
        {
            gt_table_stat ts;
            gt_info(t, &ts);
            if (ts.guilds > GUILDS)
                cr_assert_fail("round %d: %lu guilds after in-flight op %d (n=%lu)", k,
                               (unsigned long)ts.guilds, inflight ? inflight->op : -1,
                               (unsigned long)n);
        }
        atomic_store(&sh->n, 0); /* the log restarts each round */
    }
    cr_log_info("kill: %d kills, %lu writes acknowledged", kills,
                (unsigned long)applied);
    free(md);
    tc_drop(t, sh->name);
}
