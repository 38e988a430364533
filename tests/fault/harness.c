/* harness.c - see harness.h. */
#include "harness.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define LOG_MAX (1u << 20)
#define DRAIN_EVERY 10000u /* writes, on average, between drains */

struct shared {
    char name[128];
    char crash_at[96];
    uint64_t seed, max_ops;
    bool drain_first; /* the writer begins with a drain (fh_drainer) */
    _Atomic uint64_t n; /* entries written */
    _Atomic int started;
    int err, err_op; /* the writer's unexpected error, if any */
    struct fh_entry e[LOG_MAX];
};
static struct shared *sh;
static uint64_t acknowledged;
static uint64_t batch_deaths, batch_partial; /* batches cut short by deaths */

uint64_t fh_acknowledged(void) {
    return acknowledged;
}

uint64_t fh_gid(unsigned g) {
    return 500 + g;
}

const char *fh_name(void) {
    return sh->name;
}

static void apply(struct fh_model *md, const struct fh_entry *e) {
    bool *p = &md->present[e->g][e->u];
    gt_member *m = &md->m[e->g][e->u];
    switch (e->op) {
    case FH_PUT:
        *p = true;
        *m = e->m;
        break;
    case FH_DEL:
        *p = false;
        break;
    case FH_FLAGS:
        if (*p)
            m->flags = (m->flags & ~e->clear) | e->set;
        break;
    case FH_SESSION:
        if (*p)
            m->worker = e->m.worker, m->session_id = e->m.session_id;
        break;
    case FH_GDEL:
        memset(md->present[e->g], 0, sizeof md->present[e->g]);
        break;
    }
}

static void random_flags(struct fh_entry *e, uint64_t *rng) {
    e->set = (uint32_t)tc_rand(rng) & (GT_ONLINE | GT_ACTIVE | 0x00300000u);
    e->clear = (uint32_t)tc_rand(rng) & (GT_ONLINE | GT_ACTIVE | 0x00300000u);
}

/* Log a batch of flag updates or of inserts to one guild as entries n..,
 * run it with gt_update_flags_many or gt_insert_many, acknowledge it.
 * False: the log is full. */
static bool many(gt_table *t, uint64_t *rng, uint64_t n, uint8_t op) {
    uint32_t k = 2 + (uint32_t)(tc_rand(rng) % (FH_MANY_MAX - 1));
    if (n + k > LOG_MAX)
        return false;
    uint16_t g = (uint16_t)(tc_rand(rng) % FH_GUILDS);
    gt_flag_update u[FH_MANY_MAX];
    gt_member m[FH_MANY_MAX];
    for (uint32_t i = 0; i < k; i++) {
        struct fh_entry *e = &sh->e[n + i];
        memset(e, 0, sizeof *e);
        e->op = op;
        e->many = 1;
        e->g = g;
        e->u = (uint32_t)(tc_rand(rng) % FH_USERS);
        random_flags(e, rng);
        u[i] = (gt_flag_update){.user_id = e->u, .set = e->set,
                                .clear = e->clear};
        e->m = tc_member(e->u, tc_rand(rng));
        e->m.flags |= tc_rand(rng) % 3 == 0 ? GT_ACTIVE : 0;
        m[i] = e->m;
    }
    atomic_store(&sh->n, n + k); /* intent */
    int rc = op == FH_PUT ? gt_insert_many(t, fh_gid(g), m, NULL, k, NULL)
                          : gt_update_flags_many(t, fh_gid(g), u, k, NULL);
    if (rc < 0 && rc != GT_ENOENT) {
        sh->err = rc, sh->err_op = op;
        return false;
    }
    for (uint32_t i = 0; i < k; i++)
        sh->e[n + i].done = 1;
    return true;
}

static int writer(void *arg) {
    (void)arg;
    uint64_t rng = sh->seed;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 10;
    atomic_store(&sh->started, 1);
    /* Now and then a drain deletes every user of one guild, one write each,
     * in order: the guild's storage and fanout set go sparse and are rebuilt
     * smaller (the random mix alone keeps guilds about 60% full). */
    uint32_t drain = sh->drain_first ? 0 : FH_USERS; /* the drain's next
                                                        user; FH_USERS: none */
    uint16_t drain_g = (uint16_t)(sh->seed % FH_GUILDS);
    for (uint64_t ops = 0; ops < sh->max_ops; ops++) {
        uint64_t n = atomic_load(&sh->n);
        if (n >= LOG_MAX)
            return 0;
        struct fh_entry *e = &sh->e[n];
        memset(e, 0, sizeof *e);
        e->g = (uint16_t)(tc_rand(&rng) % FH_GUILDS);
        e->u = (uint32_t)(tc_rand(&rng) % FH_USERS);
        uint64_t r = tc_rand(&rng) % 1000;
        if (drain == FH_USERS && tc_rand(&rng) % DRAIN_EVERY == 0)
            drain = 0, drain_g = e->g;
        if (drain == FH_USERS && r >= 880 && r < 930) {
            /* a batch of flag updates or inserts */
            if (!many(t, &rng, n, r < 905 ? FH_FLAGS : FH_PUT))
                return 0;
            continue;
        }
        e->op = r < 450 ? FH_PUT : r < 750 ? FH_DEL : r < 880 ? FH_FLAGS
                : r < 999 ? FH_SESSION : FH_GDEL;
        if (drain < FH_USERS) /* the drain's next delete instead */
            e->op = FH_DEL, e->g = drain_g, e->u = drain++;
        if (e->op == FH_PUT) {
            e->m = tc_member(e->u, tc_rand(&rng));
            e->m.flags |= tc_rand(&rng) % 3 == 0 ? GT_ACTIVE : 0;
        }
        random_flags(e, &rng);
        if (e->op == FH_SESSION) { /* keeps tc_member_whole true */
            e->m.session_id = tc_rand(&rng);
            e->m.worker = tc_worker_of(e->m.session_id);
        }
        /* intent, then the write, then the acknowledgement */
        atomic_store(&sh->n, n + 1);
        int rc;
        switch (e->op) {
        case FH_PUT:
            rc = gt_insert(t, fh_gid(e->g), &e->m, NULL);
            break;
        case FH_DEL:
            rc = gt_delete(t, fh_gid(e->g), e->u);
            break;
        case FH_FLAGS:
            rc = gt_update_flags(t, fh_gid(e->g), e->u, e->set, e->clear, NULL);
            break;
        case FH_SESSION:
            rc = gt_update_session(t, fh_gid(e->g), e->u, e->m.worker,
                                   e->m.session_id);
            break;
        default:
            rc = gt_guild_delete(t, fh_gid(e->g));
        }
        if (rc != 0 && rc != GT_ENOENT) {
            sh->err = rc, sh->err_op = e->op;
            return 11;
        }
        e->done = 1;
    }
    gt_close(t);
    return 0;
}

/* Check the table against the model; the in-flight entry (if any) may or
 * may not have happened: pick whichever the table shows, then demand
 * exactness. */
/* Whether guild g of the table holds exactly what m says. */
static bool guild_is(gt_table *t, const struct fh_model *m, unsigned g) {
    for (uint32_t u = 0; u < FH_USERS; u++) {
        gt_member got;
        int r = gt_lookup(t, fh_gid(g), u, &got, NULL);
        cr_assert(r == 0 || r == GT_ENOENT, "guild %u user %u: %s", g, u,
                  gt_strerror(r));
        if ((r == 0) != m->present[g][u] ||
            (r == 0 && memcmp(&got, &m->m[g][u], sizeof got)))
            return false;
    }
    return true;
}

void fh_verify(gt_table *t, struct fh_model *md, const struct fh_entry *inflight,
               int k) {
    batch_deaths += k > 1;
    if (k > 0) { /* which prefix happened: the longest the table shows */
        struct fh_model *after = malloc(sizeof *after);
        for (int p = k; p > 0; p--) {
            memcpy(after, md, sizeof *after);
            for (int i = 0; i < p; i++)
                apply(after, &inflight[i]);
            if (guild_is(t, after, inflight[0].g)) {
                memcpy(md, after, sizeof *md);
                batch_partial += k > 1 && p < k;
                break;
            }
        }
        free(after);
    }
    gt_table_stat ts;
    cr_assert_eq(gt_info(t, &ts), 0);
    uint64_t total = 0;
    for (unsigned g = 0; g < FH_GUILDS; g++) {
        uint64_t members = 0, online = 0, active = 0;
        for (uint32_t u = 0; u < FH_USERS; u++) {
            gt_member got;
            int r = gt_lookup(t, fh_gid(g), u, &got, NULL);
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
        int r = gt_guild_info(t, fh_gid(g), &st);
        if (r == GT_ENOENT) {
            cr_assert_eq(members, 0);
            continue;
        }
        cr_assert_eq(r, 0);
        cr_assert_eq(st.members, members, "guild %u members", g);
        cr_assert_eq(st.online, online, "guild %u online", g);
        cr_assert_eq(st.active, active, "guild %u active", g);
        cr_assert_eq(tc_fanout_size(t, fh_gid(g)), active,
                     "guild %u fanout set", g);
        uint64_t scanned;
        cr_assert_eq(gt_select_count(t, fh_gid(g), &(gt_filter){.flags_clear = 0x80000000u},
                                     0, 1, &scanned), 0);
        cr_assert_eq(scanned, members);
        total += members;
    }
    cr_assert_eq(ts.members, total, "table member count %lu, guilds hold %lu (in flight: %d)",
                 (unsigned long)ts.members, (unsigned long)total,
                 k ? inflight->op : -1);
    fh_check(t);
}

static void print_violation(void *ctx, const char *what) {
    (void)ctx;
    cr_log_error("gt_check: %s", what);
}

void fh_check(gt_table *t) {
    gt_check_report rep = {.fn = print_violation};
    int r = gt_check(t, &rep);
    cr_assert_eq(r, 0, "gt_check: %s, %lu violations", gt_strerror(r),
                 (unsigned long)rep.violations);
}


gt_table *fh_setup(const char *prefix) {
    sh = tc_shared(sizeof *sh);
    snprintf(sh->name, sizeof sh->name, "%s", tc_name(prefix));
    return tc_open(sh->name, FH_GUILDS * FH_USERS + 100, 8, 0);
}

void fh_teardown(gt_table *t) {
    cr_log_info("%lu deaths with a batch in flight; %lu of them kept part of it",
                (unsigned long)batch_deaths, (unsigned long)batch_partial);
    tc_drop(t, sh->name);
}

static int writer_main(void *arg) {
    if (sh->crash_at[0])
        setenv("GT_CRASH_AT", sh->crash_at, 1);
    return writer(arg);
}

static pid_t spawn_writer(uint64_t seed, const char *crash_at,
                          uint64_t max_ops, bool drain_first) {
    sh->seed = seed;
    sh->max_ops = max_ops;
    sh->drain_first = drain_first;
    snprintf(sh->crash_at, sizeof sh->crash_at, "%s", crash_at ? crash_at : "");
    atomic_store(&sh->started, 0);
    atomic_store(&sh->n, 0);
    pid_t p = tc_spawn(writer_main, NULL);
    while (!atomic_load(&sh->started)) {
        /* WNOWAIT: a writer that started and died at once (a crash at its
         * first step) is left for fh_reap */
        siginfo_t si = {0};
        cr_assert_eq(waitid(P_PID, (id_t)p, &si, WEXITED | WNOHANG | WNOWAIT), 0);
        if (si.si_pid == p && !atomic_load(&sh->started))
            cr_assert_fail("writer ended before it started (code %d, status %d)",
                           si.si_code, si.si_status);
        usleep(100);
    }
    return p;
}

pid_t fh_writer(uint64_t seed, const char *crash_at, uint64_t max_ops) {
    return spawn_writer(seed, crash_at, max_ops, false);
}

pid_t fh_drainer(uint64_t seed, const char *crash_at, uint64_t max_ops) {
    return spawn_writer(seed, crash_at, max_ops, true);
}

bool fh_reap(pid_t p) {
    int st;
    cr_assert_eq(waitpid(p, &st, 0), p);
    if (WIFSIGNALED(st)) {
        cr_assert_eq(WTERMSIG(st), SIGKILL, "writer died of signal %d",
                     WTERMSIG(st));
        return true;
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "writer exited with %d: op %d: %s", WEXITSTATUS(st), sh->err_op,
              gt_strerror(sh->err));
    return false;
}

int fh_apply(struct fh_model *md, struct fh_entry *out) {
    uint64_t n = atomic_load(&sh->n);
    int k = 0;
    for (uint64_t i = 0; i < n; i++) {
        const struct fh_entry *e = &sh->e[i];
        if (e->done && k == 0) {
            apply(md, e);
            acknowledged++;
            continue;
        }
        /* in flight: the last write, or the tail of the last batch (whose
         * acknowledgements may have been cut short: it is whole then) */
        cr_assert(k < FH_MANY_MAX, "too many writes in flight");
        cr_assert(k == 0 || (e->many && out[0].many && e->g == out[0].g),
                  "only the last write can be in flight");
        out[k++] = *e;
    }
    atomic_store(&sh->n, 0);
    return k;
}
