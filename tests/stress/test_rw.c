/* test_rw.c - readers against writers, in separate processes.
 *
 * Writers own disjoint sets of users (user % WRITERS) in shared guilds, so
 * they contend on the guild locks, and each keeps an exact model of its
 * users. Every record carries relations between its fields that each write
 * kind preserves; a torn read breaks one of them:
 *   R1 worker     == mix(session_id) % 61          (insert, update_session)
 *   R2 roles[3]   == mix(roles[0]^roles[1]^roles[2]) (insert, update_roles)
 *   R3 joined_at  == mix(user_id ^ v), payload bytes all == v (insert)
 *   R4 session_id >> 20 == user_id                 (insert, update_session)
 * Readers look members up (with and without payloads), select, fan out and
 * page with cursors, checking the relations of everything they see, and
 * that members nobody deletes (STABLE) are always found. At the end every
 * writer checks the table holds exactly its model, and the guild counters
 * equal the models' sums. A side writer deletes and re-creates its own
 * guild meanwhile. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

#define WRITERS 3
#define READERS 3
#define GUILDS 4
#define GUILD0 100
#define USERS 24000u
#define PAY 16
#define CHURN_GUILD 900
/* members USERS + 1 .. USERS + STABLE of each guild: in it from the start,
 * never written again, so every lookup of one must find it */
#define STABLE 32

struct shared {
    char name[128];
    double end;
    uint64_t writes[WRITERS], lookups[READERS], found[READERS];
    uint64_t scanned[READERS], torn[READERS], errors[READERS], busy[READERS];
    uint64_t lost[READERS]; /* lookups that missed a stable member */
    /* per writer, per guild: members, online, active of its model */
    uint64_t members[WRITERS][GUILDS], online[WRITERS][GUILDS],
        active[WRITERS][GUILDS];
    uint64_t churn_cycles, checks;
    char fail[256];
};
static struct shared *sh;

static void fail(const char *fmt, uint64_t a, uint64_t b, int c) {
    snprintf(sh->fail, sizeof sh->fail, fmt, (unsigned long)a,
             (unsigned long)b, c);
}

/* ---- the relations ---- */
static uint32_t worker_of(uint64_t session) {
    return (uint32_t)(tc_mix(session) % 61);
}
static void make(gt_member *m, uint8_t *pay, uint64_t u, uint64_t *rng) {
    memset(m, 0, sizeof *m);
    uint8_t v = (uint8_t)tc_rand(rng);
    m->user_id = u;
    m->session_id = (u << 20) | (tc_rand(rng) & 0xFFFFF);
    m->worker = worker_of(m->session_id);
    m->roles[0] = tc_rand(rng);
    m->roles[1] = tc_rand(rng);
    m->roles[2] = tc_rand(rng);
    m->roles[3] = tc_mix(m->roles[0] ^ m->roles[1] ^ m->roles[2]);
    m->joined_at = (int64_t)tc_mix(u ^ v);
    m->flags = (tc_rand(rng) & 1 ? GT_ONLINE : 0) |
               (tc_rand(rng) % 4 == 0 ? GT_ACTIVE : 0) |
               ((uint32_t)tc_rand(rng) & GT_FLAGS_HOST);
    memset(pay, v, PAY);
}
static bool consistent(const gt_member *m, const uint8_t *pay) {
    if (m->worker != worker_of(m->session_id) ||
        m->roles[3] != tc_mix(m->roles[0] ^ m->roles[1] ^ m->roles[2]) ||
        (m->session_id >> 20) != m->user_id ||
        (m->flags & GT_FLAGS_LIBRARY & ~(GT_ONLINE | GT_ACTIVE)))
        return false;
    if (pay) {
        for (int i = 1; i < PAY; i++)
            if (pay[i] != pay[0])
                return false;
        if ((uint64_t)m->joined_at != tc_mix(m->user_id ^ pay[0]))
            return false;
    }
    return true;
}

/* ---- writers ---- */
struct model {
    bool present[GUILDS][USERS / WRITERS + 1];
    gt_member m[GUILDS][USERS / WRITERS + 1];
    uint8_t pay[GUILDS][USERS / WRITERS + 1][PAY];
};

/* One batch of own users of guild gi, through gt_insert_many or
 * gt_update_flags_many, checked against the model: false on a mismatch. */
static bool batch(gt_table *t, struct model *md, int w, uint32_t gi,
                  uint64_t *rng) {
    uint32_t n = 2 + (uint32_t)(tc_rand(rng) % 40), k[42];
    bool ins = tc_rand(rng) & 1;
    gt_member ms[42];
    uint8_t pays[42][PAY];
    gt_flag_update fu[42];
    int want = 0;
    for (uint32_t i = 0; i < n; i++) { /* in order, repeats allowed */
        k[i] = (uint32_t)(tc_rand(rng) % (USERS / WRITERS));
        uint64_t u = (uint64_t)k[i] * WRITERS + (uint64_t)w + 1;
        gt_member *mm = &md->m[gi][k[i]];
        if (ins) {
            make(&ms[i], pays[i], u, rng);
            want += !md->present[gi][k[i]];
            *mm = ms[i];
            memcpy(md->pay[gi][k[i]], pays[i], PAY);
            md->present[gi][k[i]] = true;
        } else {
            fu[i] = (gt_flag_update){
                .user_id = u,
                .set = (uint32_t)tc_rand(rng) & (GT_ONLINE | GT_ACTIVE | 0x00F00000u),
                .clear = (uint32_t)tc_rand(rng) & (GT_ONLINE | GT_ACTIVE | 0x00F00000u)};
            if (md->present[gi][k[i]]) {
                uint32_t nf = (mm->flags & ~fu[i].clear) | fu[i].set;
                want += nf != mm->flags;
                mm->flags = nf;
            }
        }
    }
    size_t done = 0;
    int r = ins ? gt_insert_many(t, GUILD0 + gi, ms, pays, n, &done)
                : gt_update_flags_many(t, GUILD0 + gi, fu, n, &done);
    /* the guild may not exist yet (nobody inserted into it) */
    bool no_guild = !ins && r == GT_ENOENT && want == 0 && done == 0;
    if (!no_guild && (r != want || done != n)) {
        fail("writer: batch of %lu returned %lu (w%d)", n, (uint64_t)r, w);
        return false;
    }
    return true;
}

static int writer(void *arg) {
    int w = (int)(intptr_t)arg;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 10;
    struct model *md = calloc(1, sizeof *md);
    uint64_t rng = 1000 + (uint64_t)w, ops = 0;
    double start = tc_now();
    while (tc_now() < sh->end) {
        /* first half mostly grows the guilds, second half shrinks them */
        bool growing = tc_now() - start < (sh->end - start) / 2;
        uint32_t gi = (uint32_t)(tc_rand(&rng) % GUILDS);
        uint32_t k = (uint32_t)(tc_rand(&rng) % (USERS / WRITERS));
        uint64_t u = (uint64_t)k * WRITERS + (uint64_t)w + 1, g = GUILD0 + gi;
        bool *pres = &md->present[gi][k];
        gt_member *mm = &md->m[gi][k];
        uint8_t *pp = md->pay[gi][k];
        int op = (int)(tc_rand(&rng) % 100), r, want;
        if (op < 3) { /* a batch of inserts or flag updates */
            if (!batch(t, md, w, gi, &rng))
                return 15;
            ops++;
            continue;
        }
        if (op < (growing ? 45 : 15)) {
            make(mm, pp, u, &rng);
            r = gt_insert(t, g, mm, pp);
            want = 0;
            *pres = true;
        } else if (op < (growing ? 55 : 25)) {
            gt_member nm;
            uint8_t np[PAY];
            make(&nm, np, u, &rng);
            r = gt_insert_new(t, g, &nm, np);
            want = *pres ? GT_EEXIST : 0;
            if (!*pres) {
                *mm = nm;
                memcpy(pp, np, PAY);
                *pres = true;
            }
        } else if (op < (growing ? 65 : 60)) {
            r = gt_delete(t, g, u);
            want = *pres ? 0 : GT_ENOENT;
            *pres = false;
        } else if (op < 80) {
            uint32_t set = (uint32_t)tc_rand(&rng) & (GT_ONLINE | GT_ACTIVE | 0x00F00000u);
            uint32_t clr = (uint32_t)tc_rand(&rng) & (GT_ONLINE | GT_ACTIVE | 0x00F00000u);
            uint32_t old = 0;
            r = gt_update_flags(t, g, u, set, clr, &old);
            want = *pres ? 0 : GT_ENOENT;
            if (*pres) {
                if (old != mm->flags) {
                    fail("writer: old flags %lx, model %lx (w%d)", old, mm->flags, w);
                    return 11;
                }
                mm->flags = (mm->flags & ~clr) | set;
            }
        } else if (op < 90) {
            uint64_t s = (u << 20) | (tc_rand(&rng) & 0xFFFFF);
            r = gt_update_session(t, g, u, worker_of(s), s);
            want = *pres ? 0 : GT_ENOENT;
            if (*pres)
                mm->session_id = s, mm->worker = worker_of(s);
        } else {
            uint64_t nr[4] = {tc_rand(&rng), tc_rand(&rng), tc_rand(&rng), 0};
            nr[3] = tc_mix(nr[0] ^ nr[1] ^ nr[2]);
            uint64_t all[4] = {~0ull, ~0ull, ~0ull, ~0ull};
            r = gt_update_roles(t, g, u, nr, all);
            want = *pres ? 0 : GT_ENOENT;
            if (*pres)
                memcpy(mm->roles, nr, sizeof nr);
        }
        if (r != want) {
            fail("writer: op %lu on user %lu returned %d", (uint64_t)op, u, r);
            return 12;
        }
        if (++ops % 16 == 0) { /* read your own writes */
            gt_member got;
            uint8_t gp[PAY];
            r = gt_lookup(t, g, u, &got, gp);
            if (r != (*pres ? 0 : GT_ENOENT) ||
                (*pres && (memcmp(&got, mm, sizeof got) || memcmp(gp, pp, PAY)))) {
                fail("writer: lookup of own user %lu after write: %lu (w%d)", u,
                     (uint64_t)r, w);
                return 13;
            }
        }
    }
    sh->writes[w] = ops;
    /* The table must hold exactly the model (other writers own other
     * users, so nobody changes ours any more). */
    for (uint32_t gi = 0; gi < GUILDS; gi++)
        for (uint32_t k = 0; k < USERS / WRITERS; k++) {
            uint64_t u = (uint64_t)k * WRITERS + (uint64_t)w + 1;
            gt_member got;
            uint8_t gp[PAY];
            int r = gt_lookup(t, GUILD0 + gi, u, &got, gp);
            if (r != (md->present[gi][k] ? 0 : GT_ENOENT) ||
                (r == 0 && (memcmp(&got, &md->m[gi][k], sizeof got) ||
                            memcmp(gp, md->pay[gi][k], PAY)))) {
                fail("writer: final state of user %lu in guild %lu differs (%d)",
                     u, GUILD0 + gi, r);
                return 14;
            }
            if (md->present[gi][k]) {
                sh->members[w][gi]++;
                sh->online[w][gi] += !!(got.flags & GT_ONLINE);
                sh->active[w][gi] += !!(got.flags & GT_ACTIVE);
            }
        }
    free(md);
    gt_close(t);
    return 0;
}

/* Deletes and re-creates its own guild in a loop. */
static int churner(void *arg) {
    (void)arg;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 20;
    uint64_t rng = 77;
    while (tc_now() < sh->end) {
        for (uint64_t u = 1; u <= 3000; u++) {
            gt_member m;
            uint8_t p[PAY];
            make(&m, p, u, &rng);
            if (gt_insert(t, CHURN_GUILD, &m, p))
                return 21;
        }
        if (gt_guild_delete(t, CHURN_GUILD))
            return 22;
        sh->churn_cycles++;
    }
    gt_close(t);
    return 0;
}

/* ---- readers ---- */
struct rd {
    int id;
    uint64_t seen;
};
static int check_member(void *ctx, const gt_member *m, const void *p) {
    struct rd *r = ctx;
    r->seen++;
    if (!consistent(m, p))
        sh->torn[r->id]++;
    return 0;
}
static int check_recipients(void *ctx, uint32_t w, const gt_recipient *b,
                            size_t n) {
    struct rd *r = ctx;
    for (size_t i = 0; i < n; i++) {
        r->seen++;
        if ((b[i].session_id >> 20) != b[i].user_id ||
            worker_of(b[i].session_id) != w)
            sh->torn[r->id]++;
    }
    return 0;
}

static void first_violation(void *ctx, const char *what) {
    char *first = ctx;
    if (!first[0])
        snprintf(first, 160, "%s", what);
}

static int reader(void *arg) {
    int id = (int)(intptr_t)arg;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 30;
    uint64_t rng = 5000 + (uint64_t)id, n = 0, checks = 0;
    struct rd rd = {id, 0};
    gt_member out[64];
    uint8_t pays[64 * PAY];
    while (tc_now() < sh->end) {
        uint64_t g = (tc_rand(&rng) % 8 == 0) ? CHURN_GUILD
                                               : GUILD0 + tc_rand(&rng) % GUILDS;
        if (id == 0 && ++checks % 20000 == 0) {
            /* the check stops the writers meanwhile: it must find the table
             * whole at any moment they are stopped at */
            char first[160] = "";
            gt_check_report rep = {.fn = first_violation, .ctx = first};
            int r = gt_check(t, &rep);
            if (r)
                snprintf(sh->fail, sizeof sh->fail,
                         "gt_check while writing: %s, %lu violations, first: %s",
                         gt_strerror(r), (unsigned long)rep.violations, first);
            sh->checks++;
        }
        if (++n % 2000 == 0) {
            int r;
            switch ((n / 2000) % 4) {
            case 0:
                r = gt_select(t, g, NULL, 0, 1, check_member, &rd);
                break;
            case 1:
                r = gt_fanout(t, g, &(gt_filter){.flags_set = GT_ACTIVE},
                              (uint32_t)(n % 3), 3, check_recipients, &rd);
                break;
            case 2:
                r = gt_select(t, g, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                              check_member, &rd);
                break;
            default: {
                gt_cursor c;
                size_t got;
                r = gt_iter_first(t, g, NULL, &c, out, pays, 64, &got);
                while (r == 0 && got) {
                    for (size_t i = 0; i < got; i++)
                        check_member(&rd, &out[i], pays + i * PAY);
                    r = gt_iter_next(t, &c, NULL, out, pays, 64, &got);
                }
            }
            }
            if (r == GT_EBUSY)
                sh->busy[id]++;
            else if (r && r != GT_ENOENT)
                sh->errors[id]++;
            continue;
        }
        if (n % 64 == 1) { /* a batch lookup, every record whole */
            uint64_t ids[64];
            uint8_t found[64];
            for (int i = 0; i < 64; i++)
                ids[i] = 1 + tc_rand(&rng) % USERS;
            int r = gt_lookup_many(t, g, ids, 64, out, pays, found);
            sh->lookups[id] += 64;
            if (r == GT_EBUSY) {
                sh->busy[id]++;
            } else if (r < 0) {
                sh->errors[id]++;
            } else {
                for (int i = 0; i < 64; i++)
                    if (found[i] && (out[i].user_id != ids[i] ||
                                     !consistent(&out[i], pays + i * PAY)))
                        sh->torn[id]++;
                sh->found[id] += (uint64_t)r;
            }
            continue;
        }
        /* every 8th lookup is of a member nobody deletes; every other one
         * leaves the payload out, which copies less */
        bool stable = n % 8 == 3 && g != CHURN_GUILD;
        uint64_t u = stable ? USERS + 1 + tc_rand(&rng) % STABLE
                            : 1 + tc_rand(&rng) % USERS;
        gt_member m;
        uint8_t p[PAY], *pp = n & 1 ? p : NULL;
        int r = gt_lookup(t, g, u, &m, pp);
        sh->lookups[id]++;
        if (r == 0) {
            sh->found[id]++;
            if (m.user_id != u || !consistent(&m, pp))
                sh->torn[id]++;
        } else if (r == GT_EBUSY) {
            sh->busy[id]++;
        } else if (r != GT_ENOENT) {
            sh->errors[id]++;
        } else if (stable) {
            sh->lost[id]++;
        }
    }
    sh->scanned[id] = rd.seen;
    gt_close(t);
    return 0;
}

Test(stress, readers_never_see_torn_records, .timeout = 300) {
    sh = tc_shared(sizeof *sh);
    snprintf(sh->name, sizeof sh->name, "%s", tc_name("rw"));
    gt_table *t = tc_open(sh->name, (uint64_t)USERS * GUILDS + 10000, 32, PAY);
    uint64_t rng = 99;
    for (uint32_t gi = 0; gi < GUILDS; gi++)
        for (uint64_t u = USERS + 1; u <= USERS + STABLE; u++) {
            gt_member m;
            uint8_t p[PAY];
            make(&m, p, u, &rng);
            m.flags = 0; /* the counters below count no stable member */
            cr_assert_eq(gt_insert(t, GUILD0 + gi, &m, p), 0);
        }
    double secs = tc_seconds(6);
    sh->end = tc_now() + secs;
    pid_t w[WRITERS + 1], r[READERS];
    for (int i = 0; i < WRITERS; i++)
        w[i] = tc_spawn(writer, (void *)(intptr_t)i);
    w[WRITERS] = tc_spawn(churner, NULL);
    for (int i = 0; i < READERS; i++)
        r[i] = tc_spawn(reader, (void *)(intptr_t)i);
    tc_reap(w, WRITERS + 1, "writer");
    tc_reap(r, READERS, "reader");
    cr_assert_eq(sh->fail[0], 0, "%s", sh->fail);

    uint64_t lookups = 0, found = 0, scanned = 0, writes = 0;
    for (int i = 0; i < READERS; i++) {
        cr_assert_eq(sh->torn[i], 0, "reader %d saw %lu torn records", i,
                     (unsigned long)sh->torn[i]);
        cr_assert_eq(sh->errors[i], 0, "reader %d had errors", i);
        cr_assert_eq(sh->lost[i], 0, "reader %d missed %lu stable members", i,
                     (unsigned long)sh->lost[i]);
        lookups += sh->lookups[i];
        found += sh->found[i];
        scanned += sh->scanned[i];
    }
    for (int i = 0; i < WRITERS; i++)
        writes += sh->writes[i];
    cr_assert(lookups > 1000 && found > 100 && scanned > 1000 && writes > 1000,
              "too little work: %lu lookups %lu found %lu scanned %lu writes",
              (unsigned long)lookups, (unsigned long)found,
              (unsigned long)scanned, (unsigned long)writes);
    cr_assert(sh->churn_cycles > 0);
    cr_assert_gt(sh->checks, 0, "gt_check never ran during the writes");
    for (uint32_t gi = 0; gi < GUILDS; gi++) {
        gt_guild_stat st;
        cr_assert_eq(gt_guild_info(t, GUILD0 + gi, &st), 0);
        uint64_t m = STABLE, on = 0, ac = 0;
        for (int i = 0; i < WRITERS; i++)
            m += sh->members[i][gi], on += sh->online[i][gi],
                ac += sh->active[i][gi];
        cr_assert_eq(st.members, m, "guild %u members", gi);
        cr_assert_eq(st.online, on, "guild %u online", gi);
        cr_assert_eq(st.active, ac, "guild %u active", gi);
        uint64_t c;
        cr_assert_eq(gt_select_count(t, GUILD0 + gi,
                                     &(gt_filter){.flags_set = GT_ACTIVE,
                                                  .roles_any = {~0ull, ~0ull, ~0ull, ~0ull}},
                                     0, 1, &c), 0);
        cr_assert_eq(c, ac, "guild %u: active count by scan", gi);
    }
    cr_log_info("rw: %.0f s, %lu writes, %lu lookups (%lu found), %lu scanned, "
                "%lu guild churn cycles, %lu checks",
                secs, (unsigned long)writes, (unsigned long)lookups,
                (unsigned long)found, (unsigned long)scanned,
                (unsigned long)sh->churn_cycles, (unsigned long)sh->checks);
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0, "gt_check: %lu violations",
                 (unsigned long)rep.violations);
    tc_drop(t, sh->name);
}
