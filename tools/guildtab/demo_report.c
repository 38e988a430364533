/*
 * demo_report.c - after the run: the checks that decide the demo's exit
 * status, and the summary.
 *
 * Checks (each failure is one "check failed" line on stderr):
 * - every child exited 0 and published its results;
 * - readers: no errors (GT_ENOENT on a loaded member, a wrong record, a
 *   wrong role count or cursor walk); GT_EBUSY is reported, not failed;
 * - writer: no errors;
 * - sender: every fanout returned 0 and delivered between 0 and N
 *   recipients (with the writer churning, no exact figure exists);
 * - once the children are gone, a final fanout delivers exactly
 *   gt_guild_info().active recipients, each with a routing that matches
 *   its user, and the guild still has N members.
 */
#include "demo.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define CPUINFO_PATH "/proc/cpuinfo"
#define CPUINFO_MODEL "model name"

struct checks {
    unsigned failed;
};

static void check(struct checks *ck, bool ok, const char *fmt, ...)
    CLI_PRINTF(3, 4);

static void check(struct checks *ck, bool ok, const char *fmt, ...) {
    if (ok)
        return;
    ck->failed++;
    va_list ap;
    va_start(ap, fmt);
    fputs(CLI_PROGRAM ": demo: check failed: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- the final state ----------------------------------------------------- */

struct final {
    gt_guild_stat guild;
    gt_table_stat table;
    uint64_t recipients;
    uint64_t misrouted; /* recipients whose worker or session is not theirs */
};

static int verify_batch(void *ctx, uint32_t worker, const gt_recipient *batch,
                        size_t n) {
    struct final *f = ctx;
    uint64_t tag_mask = (1ull << DEMO_SESSION_TAG_BITS) - 1;
    f->recipients += n;
    for (size_t i = 0; i < n; i++)
        if (worker != demo_worker(batch[i].user_id) ||
            (batch[i].session_id & tag_mask) !=
                demo_session_tag(batch[i].user_id))
            f->misrouted++;
    return 0;
}

/* Reopen the table (the parent closed its handle before forking). */
static int final_state(const struct demo_config *cfg, struct final *f) {
    gt_options o = {.dir = cfg->dir, .flags = GT_RDONLY};
    gt_table *t;
    int r = gt_open(cfg->name, &o, &t);
    if (r)
        return cli_fail(r, "demo: reopen table %s", cfg->name);
    const gt_filter active = {.flags_set = GT_ACTIVE};
    const char *what = "guild info";
    if ((r = gt_guild_info(t, DEMO_GUILD, &f->guild)) == 0) {
        what = "final fanout";
        r = gt_fanout(t, DEMO_GUILD, &active, 0, 1, verify_batch, f);
    }
    if (r == 0) {
        what = "table info";
        r = gt_info(t, &f->table);
    }
    gt_close(t);
    return r ? cli_fail(r, "demo: %s", what) : CLI_EXIT_OK;
}

/* ---- checks -------------------------------------------------------------- */

static bool published(const struct demo_shared *sh, enum demo_role role,
                      uint32_t index) {
    /* acquire: pairs with the child's release store after its results */
    return atomic_load_explicit(&sh->published[demo_child_slot(role, index)],
                                memory_order_acquire) != 0;
}

/* Each child exited 0 and published; a child that did not says so here,
 * and its (zero) results are not checked again. */
static void check_children(struct checks *ck, const struct demo_env *env,
                           const struct demo_child *kids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const struct demo_child *k = &kids[i];
        bool ok = demo_child_ok(k);
        check(ck, ok && published(env->shared, k->role, k->index),
              "%s %" PRIu32 " %s", demo_role_name(k->role), k->index,
              ok ? "published no results" : "failed");
    }
}

static void check_readers(struct checks *ck, const struct demo_env *env) {
    for (uint32_t i = 0; i < env->cfg->readers; i++) {
        const struct demo_reader_result *rd = &env->shared->readers[i];
        if (!published(env->shared, DEMO_READER, i))
            continue;
        check(ck, rd->c.errors == 0, "reader %" PRIu32 ": %" PRIu64 " errors",
              i, rd->c.errors);
        check(ck, rd->c.ops > 0, "reader %" PRIu32 " did no lookup", i);
    }
}

static void check_results(struct checks *ck, const struct demo_env *env) {
    const struct demo_shared *sh = env->shared;
    uint64_t n = env->cfg->members;
    check_readers(ck, env);
    if (published(sh, DEMO_WRITER, 0))
        check(ck, sh->writer.c.errors == 0, "writer: %" PRIu64 " errors",
              sh->writer.c.errors);
    if (!published(sh, DEMO_SENDER, 0))
        return;
    check(ck, sh->sender.c.errors == 0,
          "sender: %" PRIu64 " of %" PRIu64 " fanouts failed or were "
          "malformed",
          sh->sender.c.errors, sh->sender.c.ops);
    check(ck, sh->sender.c.ops > 0, "the sender did no fanout");
    check(ck, sh->sender.max_recipients <= n,
          "a fanout delivered %" PRIu64 " recipients of %" PRIu64 " members",
          sh->sender.max_recipients, n);
}

static void check_final(struct checks *ck, const struct demo_config *cfg,
                        const struct final *f) {
    check(ck, f->recipients == f->guild.active,
          "final fanout delivered %" PRIu64 " recipients; %" PRIu64
          " members are active",
          f->recipients, f->guild.active);
    check(ck, f->misrouted == 0,
          "final fanout: %" PRIu64 " recipients with another user's routing",
          f->misrouted);
    check(ck, f->guild.members == cfg->members,
          "the guild has %" PRIu64 " members after the run; %" PRIu64
          " were loaded",
          f->guild.members, cfg->members);
}

/* ---- summary ------------------------------------------------------------- */

/* The CPU model from /proc/cpuinfo, or NULL (not Linux, or no such line,
 * as on some ARM kernels). The caller frees it. */
static char *cpu_model(void) {
    FILE *f = fopen(CPUINFO_PATH, "r");
    if (!f)
        return NULL;
    char *line = NULL, *model = NULL;
    size_t cap = 0;
    while (!model && getline(&line, &cap, f) >= 0) {
        char *colon = strchr(line, ':');
        if (strncmp(line, CPUINFO_MODEL, strlen(CPUINFO_MODEL)) != 0 || !colon)
            continue;
        char *v = colon + 1 + strspn(colon + 1, " \t");
        v[strcspn(v, "\n")] = '\0';
        model = strdup(v);
    }
    free(line);
    fclose(f);
    return model;
}

/* Returns the CPUs online, or 0 if unknown. */
static long print_machine(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char *model = cpu_model();
    printf("machine         ");
    if (cpus > 0)
        printf("%ld CPUs online, ", cpus);
    else
        printf("CPUs unknown, ");
    cli_text(stdout, model ? model : "model unknown");
    putchar('\n');
    free(model);
    return cpus > 0 ? cpus : 0;
}

static double per_s(uint64_t count, uint64_t ns) {
    return ns ? (double)count * (double)NS_PER_S / (double)ns : 0.0;
}

static double ratio(uint64_t a, uint64_t b) {
    return b ? (double)a / (double)b : 0.0;
}

static void print_load(const struct demo_env *env) {
    const struct demo_config *cfg = env->cfg;
    const struct demo_load *ld = env->load;
    printf(CLI_PROGRAM " demo: %" PRIu64 " members in guild %u, %" PRIu32
                       "%% active; %" PRIu32 " readers, 1 writer, 1 sender "
                       "for %" PRIu32 " s\n",
           cfg->members, DEMO_GUILD, cfg->active_pct, cfg->readers,
           cfg->seconds);
    long cpus = print_machine();
    uint64_t busy = (uint64_t)cfg->readers + DEMO_FIXED_CHILDREN;
    if (cpus > 0 && busy > (uint64_t)cpus)
        printf("note            %" PRIu64 " busy processes share %ld CPUs: "
               "latency tails include time spent descheduled\n",
               busy, cpus);
    printf("load            %.3f s, %.0f members/s\n",
           (double)ld->load_ns / (double)NS_PER_S,
           per_s(cfg->members, ld->load_ns));
}

/* ms with at least three significant digits for sub-millisecond values */
static void print_ms(const char *label, uint64_t ns) {
    double ms = (double)ns / NS_PER_MS;
    int decimals = ms >= 10 ? 2 : ms >= 1 ? 3 : ms >= 0.01 ? 4 : 6;
    printf("%s %.*f ms", label, decimals, ms);
}

static void print_sender(const struct demo_sender_result *s) {
    printf("fanout          %" PRIu64 " fanouts, %.1f/s; latency", s->c.ops,
           per_s(s->c.ops, s->c.run_ns));
    print_ms(" p50", s->lat_p50_ns);
    print_ms(", p99", s->lat_p99_ns);
    print_ms(", max", s->lat_max_ns);
    if (s->lat_samples < s->c.ops)
        printf(" (percentiles of %" PRIu64 " sampled)", s->lat_samples);
    putchar('\n');
    printf(
        "recipients      %.1f per fanout (min %" PRIu64 ", max %" PRIu64 ")\n",
        ratio(s->recipients, s->c.ops), s->min_recipients, s->max_recipients);
}

/* The readers, the writer, and the GT_EBUSY counts of all. */
static void print_rates(const struct demo_env *env) {
    double rate = 0;
    uint64_t lookups = 0, selects = 0, pages = 0, walks = 0, busy = 0;
    for (uint32_t i = 0; i < env->cfg->readers; i++) {
        const struct demo_reader_result *rd = &env->shared->readers[i];
        rate += per_s(rd->c.ops, rd->c.run_ns);
        lookups += rd->c.ops;
        selects += rd->selects;
        pages += rd->pages;
        walks += rd->walks;
        busy += rd->c.busy;
    }
    printf("lookups         %.0f/s over %" PRIu32 " readers (%" PRIu64
           " in all)\n",
           rate, env->cfg->readers, lookups);
    printf("reader scans    %" PRIu64 " role counts, %" PRIu64
           " cursor pages, %" PRIu64 " full walks (all checked)\n",
           selects, pages, walks);
    const struct demo_writer_result *w = &env->shared->writer;
    printf("writes          %.0f/s (%" PRIu64 " flag updates, %" PRIu64
           " session updates)\n",
           per_s(w->c.ops, w->c.run_ns), w->flag_updates, w->session_updates);
    printf("EBUSY           readers %" PRIu64 ", writer %" PRIu64
           ", sender %" PRIu64 "\n",
           busy, w->c.busy, env->shared->sender.c.busy);
}

static void print_final(const struct demo_env *env, const struct final *f) {
    uint64_t n = f->guild.members;
    printf("active          %" PRIu64 " loaded, %" PRIu64 " at the end; "
           "final fanout delivered %" PRIu64 "\n",
           env->load->active, f->guild.active, f->recipients);
    char resident[CLI_HUMAN_MAX];
    printf("memory/member   %.1f B guild storage (bytes_used), %.1f B table "
           "resident (%s in all)\n",
           ratio(f->guild.bytes_used, n), ratio(f->table.bytes_resident, n),
           cli_human_bytes(f->table.bytes_resident, resident));
}

int demo_report(const struct demo_env *env, const struct demo_child *kids,
                size_t nkids) {
    struct checks ck = {0};
    struct final f;
    memset(&f, 0, sizeof f);
    check_children(&ck, env, kids, nkids);
    check_results(&ck, env);
    int st = final_state(env->cfg, &f);
    if (st == CLI_EXIT_OK)
        check_final(&ck, env->cfg, &f);
    print_load(env);
    print_sender(&env->shared->sender);
    print_rates(env);
    if (st == CLI_EXIT_OK)
        print_final(env, &f);
    printf("result          %s\n",
           st == CLI_EXIT_OK && ck.failed == 0 ? "PASS" : "FAIL");
    return ck.failed ? CLI_EXIT_ERROR : st;
}
