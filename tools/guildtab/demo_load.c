/*
 * demo_load.c - the demo's table: created fresh and loaded with one guild
 * of N members, P% of them ACTIVE, all ONLINE.
 *
 * Member i is ACTIVE when i < N*P/100: the user ids are random, so the
 * first indices are a random subset, and the expected count is exact. The
 * load is checked against gt_guild_info before any child starts, so a
 * failure later is the concurrent run's, not the load's.
 */
#include "demo.h"

#include <inttypes.h>
#include <unistd.h>

/* Room beyond N, as a host keeps for joins; the demo itself never adds a
 * member after the load. */
#define DEMO_HEADROOM_DIV 4u
#define DEMO_HEADROOM_MIN 1024u
#define PROGRESS_TTY_STEP 1u   /* percent between \r updates on a terminal */
#define PROGRESS_LINE_STEP 10u /* percent between lines otherwise */

/* Progress on stderr: a line redrawn with \r on a terminal, plain lines
 * (no \r, which logs render badly) anywhere else. */
struct progress {
    bool tty;
    uint32_t step, next_pct;
    uint64_t total;
};

static void progress_init(struct progress *p, uint64_t total) {
    p->tty = isatty(STDERR_FILENO) == 1;
    p->step = p->tty ? PROGRESS_TTY_STEP : PROGRESS_LINE_STEP;
    p->next_pct = p->step;
    p->total = total;
}

static void progress_update(struct progress *p, uint64_t done) {
    uint32_t pct = (uint32_t)(done * DEMO_PCT / p->total);
    if (pct < p->next_pct)
        return;
    p->next_pct = pct + p->step;
    fprintf(stderr,
            "%sloading: %3" PRIu32 "%% (%" PRIu64 " of %" PRIu64 " members)%s",
            p->tty ? "\r" : "", pct, done, p->total, p->tty ? "" : "\n");
}

static void progress_end(const struct progress *p) {
    if (p->tty)
        fputc('\n', stderr);
}

static gt_member member_at(uint64_t i, bool active) {
    uint64_t uid = demo_user(i);
    gt_member m = {
        .user_id = uid,
        .session_id = demo_session(uid, 0),
        .joined_at = demo_joined_at(uid),
        .worker = demo_worker(uid),
        .flags = GT_ONLINE | (active ? GT_ACTIVE : 0),
    };
    demo_roles(uid, m.roles);
    return m;
}

static int insert_all(gt_table *t, const struct demo_config *cfg,
                      struct demo_load *out) {
    struct progress p;
    progress_init(&p, cfg->members);
    for (uint64_t i = 0; i < cfg->members; i++) {
        if (demo_interrupted()) {
            progress_end(&p);
            fprintf(stderr, CLI_PROGRAM ": demo: interrupted\n");
            return CLI_EXIT_ERROR;
        }
        gt_member m = member_at(i, i < out->active);
        int r = gt_insert_new(t, DEMO_GUILD, &m, NULL);
        if (r) {
            progress_end(&p);
            return cli_fail(
                r, "demo: insert member %" PRIu64 " (user %" PRIu64 ")", i,
                m.user_id);
        }
        out->role_count[demo_role(m.user_id)]++;
        progress_update(&p, i + 1);
    }
    progress_end(&p);
    return CLI_EXIT_OK;
}

static int load(gt_table *t, const struct demo_config *cfg,
                struct demo_load *out) {
    out->active = cfg->members * cfg->active_pct / DEMO_PCT;
    uint64_t t0 = demo_now_ns();
    int r = gt_guild_reserve(t, DEMO_GUILD, cfg->members);
    if (r)
        return cli_fail(r, "demo: reserve %" PRIu64 " members", cfg->members);
    int st = insert_all(t, cfg, out);
    out->load_ns = demo_now_ns() - t0;
    return st;
}

static int check_load(gt_table *t, const struct demo_config *cfg,
                      const struct demo_load *ld) {
    gt_guild_stat g;
    int r = gt_guild_info(t, DEMO_GUILD, &g);
    if (r)
        return cli_fail(r, "demo: guild info after the load");
    if (g.members == cfg->members && g.online == cfg->members &&
        g.active == ld->active)
        return CLI_EXIT_OK;
    fprintf(
        stderr,
        CLI_PROGRAM ": demo: after the load the guild has %" PRIu64
                    " members, %" PRIu64 " online, %" PRIu64
                    " active; expected %" PRIu64 ", %" PRIu64 ", %" PRIu64 "\n",
        g.members, g.online, g.active, cfg->members, cfg->members, ld->active);
    return CLI_EXIT_ERROR;
}

int demo_load_table(const struct demo_config *cfg, struct demo_load *out) {
    int r = gt_unlink(cfg->name, cfg->dir);
    if (r && r != GT_ENOENT)
        return cli_fail(r, "demo: remove old table %s", cfg->name);
    gt_options o = {
        .dir = cfg->dir,
        .max_members =
            cfg->members + cfg->members / DEMO_HEADROOM_DIV + DEMO_HEADROOM_MIN,
        .max_guilds = DEMO_MAX_GUILDS,
        .payload_size = 0,
        .flags = GT_CREATE | GT_EXCL,
    };
    gt_table *t;
    if ((r = gt_open(cfg->name, &o, &t)))
        return cli_fail(r, "demo: create table %s", cfg->name);
    out->created = true;
    int st = load(t, cfg, out);
    if (st == CLI_EXIT_OK)
        st = check_load(t, cfg, out);
    gt_close(t);
    return st;
}
