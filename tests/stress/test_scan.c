/* test_scan.c - every kind of scan, run by several processes while other
 * processes churn the guild, visits each member present for the whole scan
 * exactly once and never one absent for the whole scan.
 *
 * STABLE members are inserted first and never touched again; all are ACTIVE
 * and carry role bit 0. Churn writers insert fresh user ids in increasing
 * order (never reused), flip ACTIVE on them, and delete the oldest first, so
 * the guild's storage and fanout set grow, shrink and are rebuilt again and
 * again. A churn writer publishes `hi` (ids below it may have been inserted:
 * set before each insert) and `lo` (ids below it are deleted: set after each
 * delete returns). A scanner reads lo before and hi after each scan: a
 * churn id below lo or at/above hi was absent for the whole scan, and must
 * not be visited. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define STABLE 20000u
#define CHURNERS 2
#define SCANNERS 3
#define WINDOW 30000u
#define GUILD 7
#define CHURN_BASE(c) ((uint64_t)((c) + 1) << 40)
#define CHURNER_OF(u) ((int)((u) >> 40) - 1)

struct shared {
    char name[128];
    double end;
    _Atomic uint64_t hi[CHURNERS], lo[CHURNERS];
    uint64_t cycles[CHURNERS];
    uint64_t scans[SCANNERS][8];
    char fail[SCANNERS][256];
};
static struct shared *sh;

static gt_member stable(uint64_t i) {
    gt_member m = tc_member(i + 1, 3);
    m.flags = GT_ONLINE | GT_ACTIVE;
    m.roles[0] |= 1;
    m.worker = (uint32_t)(i % 9);
    return m;
}

static int churn(void *arg) {
    int c = (int)(intptr_t)arg;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 10;
    uint64_t rng = 99 + (uint64_t)c, next = CHURN_BASE(c), oldest = next;
    atomic_store(&sh->lo[c], next);
    atomic_store(&sh->hi[c], next);
    while (tc_now() < sh->end) {
        /* grow to a random size up to WINDOW, then drain to a random size */
        uint64_t target = tc_rand(&rng) % WINDOW;
        while (next - oldest < target && tc_now() < sh->end) {
            gt_member m = {.user_id = next, .session_id = next,
                           .worker = (uint32_t)(next % 5),
                           .flags = tc_rand(&rng) % 3 ? GT_ACTIVE : 0,
                           .roles = {2}}; /* never role bit 0 */
            atomic_store(&sh->hi[c], next + 1);
            int r = gt_insert_new(t, GUILD, &m, NULL);
            if (r) {
                snprintf(sh->fail[0], 256, "churner %d: insert: %s", c,
                         gt_strerror(r));
                return 11;
            }
            next++;
            if (tc_rand(&rng) % 4 == 0) {
                uint64_t u = oldest + tc_rand(&rng) % (next - oldest);
                bool on = tc_rand(&rng) & 1;
                int r = gt_update_flags(t, GUILD, u, on ? GT_ACTIVE : 0,
                                        on ? 0 : GT_ACTIVE, NULL);
                if (r) {
                    snprintf(sh->fail[0], 256, "churner %d: flags: %s", c,
                             gt_strerror(r));
                    return 12;
                }
            }
        }
        uint64_t keep = tc_rand(&rng) % (WINDOW / 4);
        while (next - oldest > keep && tc_now() < sh->end) {
            int r = gt_delete(t, GUILD, oldest);
            if (r) {
                snprintf(sh->fail[0], 256, "churner %d: delete: %s", c,
                         gt_strerror(r));
                return 13;
            }
            atomic_store(&sh->lo[c], ++oldest);
        }
        sh->cycles[c]++;
    }
    gt_close(t);
    return 0;
}

struct visit {
    uint8_t seen[STABLE];
    uint64_t lo[CHURNERS], hi[CHURNERS];
    const char *kind;
    char *fail;
    uint64_t visits;
    uint64_t *churn; /* churn ids visited, checked against hi afterwards */
    size_t nchurn, cap;
};

static void visit_user(struct visit *v, uint64_t u, uint64_t session) {
    v->visits++;
    if (v->fail[0])
        return;
    if (u >= 1 && u <= STABLE) {
        if (v->seen[u - 1]++ && !v->fail[0])
            snprintf(v->fail, 256, "%s: stable user %lu visited twice", v->kind,
                     (unsigned long)u);
        if (session != stable(u - 1).session_id)
            snprintf(v->fail, 256, "%s: stable user %lu has session %lx",
                     v->kind, (unsigned long)u, (unsigned long)session);
        return;
    }
    for (int c = 0; c < CHURNERS; c++) {
        if (CHURNER_OF(u) == c) {
            if (u < v->lo[c])
                snprintf(v->fail, 256,
                         "%s: churn user %lu deleted before the scan began "
                         "(all below %lu were)",
                         v->kind, (unsigned long)u, (unsigned long)v->lo[c]);
            else if (session != u)
                snprintf(v->fail, 256, "%s: user %lu has session %lx", v->kind,
                         (unsigned long)u, (unsigned long)session);
            if (v->nchurn == v->cap) {
                v->cap = v->cap ? 2 * v->cap : 4096;
                v->churn = realloc(v->churn, v->cap * sizeof *v->churn);
            }
            v->churn[v->nchurn++] = u;
            return;
        }
    }
    snprintf(v->fail, 256, "%s: unknown user %lu", v->kind, (unsigned long)u);
}

static int on_member(void *ctx, const gt_member *m, const void *p) {
    (void)p;
    struct visit *v = ctx;
    if (m->user_id >= 1 && m->user_id <= STABLE) {
        gt_member want = stable(m->user_id - 1);
        if (memcmp(m, &want, sizeof want) && !v->fail[0])
            snprintf(v->fail, 256, "%s: stable user %lu changed", v->kind,
                     (unsigned long)m->user_id);
    }
    visit_user(v, m->user_id, m->session_id);
    return 0;
}
static int on_batch(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    struct visit *v = ctx;
    for (size_t i = 0; i < n; i++) {
        uint64_t u = r[i].user_id;
        uint32_t want = u <= STABLE ? (uint32_t)((u - 1) % 9) : (uint32_t)(u % 5);
        if (w != want && !v->fail[0])
            snprintf(v->fail, 256, "%s: user %lu in worker %u's batch",
                     v->kind, (unsigned long)u, w);
        visit_user(v, u, r[i].session_id);
    }
    return 0;
}

static void begin(struct visit *v, const char *kind) {
    memset(v->seen, 0, sizeof v->seen);
    v->kind = kind;
    v->nchurn = 0;
    for (int c = 0; c < CHURNERS; c++)
        v->lo[c] = atomic_load(&sh->lo[c]);
}
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* After the scan: a churn id at or above hi was inserted after it ended;
 * and no churn member may have been visited twice either. */
static void end_check(struct visit *v) {
    for (int c = 0; c < CHURNERS; c++)
        v->hi[c] = atomic_load(&sh->hi[c]);
    qsort(v->churn, v->nchurn, sizeof *v->churn, cmp_u64);
    for (size_t i = 0; i < v->nchurn && !v->fail[0]; i++) {
        uint64_t u = v->churn[i];
        if (i && v->churn[i - 1] == u)
            snprintf(v->fail, 256, "%s: churn user %lu visited twice",
                     v->kind, (unsigned long)u);
        int c = CHURNER_OF(u);
        if (u >= v->hi[c])
            snprintf(v->fail, 256,
                     "%s: churn user %lu inserted after the scan ended "
                     "(ids below %lu had begun)",
                     v->kind, (unsigned long)u, (unsigned long)v->hi[c]);
    }
}

static int scanner(void *arg) {
    int id = (int)(intptr_t)arg;
    gt_table *t;
    if (gt_open(sh->name, NULL, &t))
        return 30;
    struct visit *v = calloc(1, sizeof *v);
    v->fail = sh->fail[id];
    gt_member *page = calloc(500, sizeof *page);
    gt_filter active = {.flags_set = GT_ACTIVE};
    for (uint64_t n = (uint64_t)id; tc_now() < sh->end && !v->fail[0]; n++) {
        int kind = (int)(n % 8), r = 0;
        static const char *names[] = {"select", "select/3", "fanout",
                                      "fanout/4", "select active", "cursor",
                                      "count", "count flags"};
        begin(v, names[kind]);
        struct visit *pre = v;
        switch (kind) {
        case 0:
            r = gt_select(t, GUILD, NULL, 0, 1, on_member, pre);
            break;
        case 1:
            for (uint32_t p = 0; p < 3 && !r; p++)
                r = gt_select(t, GUILD, NULL, p, 3, on_member, pre);
            break;
        case 2:
            r = gt_fanout(t, GUILD, &active, 0, 1, on_batch, pre);
            break;
        case 3:
            for (uint32_t p = 0; p < 4 && !r; p++)
                r = gt_fanout(t, GUILD, &active, p, 4, on_batch, pre);
            break;
        case 4:
            r = gt_select(t, GUILD, &active, 0, 1, on_member, pre);
            break;
        case 5: {
            gt_cursor c;
            size_t got;
            r = gt_iter_first(t, GUILD, NULL, &c, page, NULL, 500, &got);
            while (!r && got) {
                for (size_t i = 0; i < got; i++)
                    on_member(v, &page[i], NULL);
                r = gt_iter_next(t, &c, NULL, page, NULL, 500, &got);
            }
            break;
        }
        case 6: {
            /* reads each entry's record: only stable members have role 0 */
            uint64_t cnt = 0;
            r = gt_select_count(t, GUILD,
                                &(gt_filter){.flags_set = GT_ACTIVE,
                                             .roles_any = {1}},
                                0, 1, &cnt);
            if (!r && cnt != STABLE)
                snprintf(v->fail, 256, "count: %lu, want %u",
                         (unsigned long)cnt, STABLE);
            memset(v->seen, 1, sizeof v->seen);
            break;
        }
        default: {
            /* counts the fanout set's entries alone, whole and in three
             * partitions: only stable members are ONLINE */
            gt_filter f = {.flags_set = GT_ACTIVE | GT_ONLINE};
            for (uint32_t np = 1; np <= 3 && !r; np += 2) {
                uint64_t sum = 0;
                for (uint32_t p = 0; p < np && !r; p++) {
                    uint64_t cnt = 0;
                    r = gt_select_count(t, GUILD, &f, p, np, &cnt);
                    sum += cnt;
                }
                if (!r && sum != STABLE)
                    snprintf(v->fail, 256, "count flags/%u: %lu, want %u", np,
                             (unsigned long)sum, STABLE);
            }
            memset(v->seen, 1, sizeof v->seen);
        }
        }
        end_check(v);
        if (r) {
            snprintf(v->fail, 256, "%s returned %d", v->kind, r);
            break;
        }
        for (uint64_t i = 0; i < STABLE && !v->fail[0]; i++)
            if (v->seen[i] != 1)
                snprintf(v->fail, 256, "%s: stable user %lu visited %u times",
                         v->kind, (unsigned long)i + 1, v->seen[i]);
        sh->scans[id][kind]++;
    }
    free(page);
    free(v->churn);
    free(v);
    gt_close(t);
    return 0;
}

Test(stress, scans_visit_present_members_exactly_once, .timeout = 300) {
    sh = tc_shared(sizeof *sh);
    snprintf(sh->name, sizeof sh->name, "%s", tc_name("scan"));
    gt_table *t = tc_open(sh->name, STABLE + CHURNERS * WINDOW + 1000, 8, 0);
    for (uint64_t i = 0; i < STABLE; i++) {
        gt_member m = stable(i);
        cr_assert_eq(gt_insert(t, GUILD, &m, NULL), 0);
    }
    double secs = tc_seconds(6);
    sh->end = tc_now() + secs;
    pid_t c[CHURNERS], s[SCANNERS];
    for (int i = 0; i < CHURNERS; i++)
        c[i] = tc_spawn(churn, (void *)(intptr_t)i);
    for (int i = 0; i < SCANNERS; i++)
        s[i] = tc_spawn(scanner, (void *)(intptr_t)i);
    tc_reap(s, SCANNERS, "scanner");
    cr_assert_eq(sh->fail[0][0], 0, "%s", sh->fail[0]);
    tc_reap(c, CHURNERS, "churner");
    uint64_t total = 0;
    for (int i = 0; i < SCANNERS; i++) {
        cr_assert_eq(sh->fail[i][0], 0, "scanner %d: %s", i, sh->fail[i]);
        for (int k = 0; k < 8; k++) {
            cr_assert_gt(sh->scans[i][k] + sh->scans[(i + 1) % SCANNERS][k], 0,
                         "scan kind %d never ran", k);
            total += sh->scans[i][k];
        }
    }
    for (int i = 0; i < CHURNERS; i++)
        cr_assert_gt(sh->cycles[i], 0, "churner %d never cycled", i);
    cr_log_info("scan: %.0f s, %lu scans, churn cycles %lu+%lu", secs,
                (unsigned long)total, (unsigned long)sh->cycles[0],
                (unsigned long)sh->cycles[1]);
    gt_check_report rep = {0};
    cr_assert_eq(gt_check(t, &rep), 0, "gt_check: %lu violations",
                 (unsigned long)rep.violations);
    tc_drop(t, sh->name);
}
