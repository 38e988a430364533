/*
 * demo.c - `guildtab demo`: its options and the order of its steps.
 *
 *   create and load the table (demo_load.c)
 *   fork readers, a writer and a sender; run them; reap (demo_procs.c,
 *   demo_roles.c)
 *   check and summarise (demo_report.c)
 *   remove the table unless --keep
 *
 * The table is removed on every path once created, including failures and
 * ^C, so a demo never leaves a large segment behind in /dev/shm by
 * accident.
 */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>

#define DEMO_DEFAULT_MEMBERS 1000000
#define DEMO_DEFAULT_PCT 10
#define DEMO_DEFAULT_SECONDS 10
#define DEMO_DEFAULT_READERS 2
#define DEMO_DEFAULT_NAME "demo"
/* Bounds that keep the demo's own arithmetic (N + N/4, N * P) far from
 * overflow; the library applies its own, lower, member limit. */
#define DEMO_MAX_MEMBERS (1ull << 32)
#define DEMO_MAX_SECONDS 86400u /* a day */

static const char demo_usage[] =
    CLI_PROGRAM " demo [--members N] [--active-pct P] [--seconds S] "
                "[--readers R] [--name NAME] [--dir DIR] [--keep]";
/* clang-format off */
static const char demo_help[] =
    "Create table NAME with one guild of N members, P% of them active, then\n"
    "run R reader processes (lookups, role counts, cursor pages), a writer\n"
    "process (presence and session churn) and a sender process (fanout to\n"
    "the active members) against it for S seconds; check what they saw and\n"
    "print latencies, rates and memory per member.\n\n"
    "  --members N     members in the guild (default "
    CLI_STR(DEMO_DEFAULT_MEMBERS) ")\n"
    "  --active-pct P  percent of members active, 0-100 (default "
    CLI_STR(DEMO_DEFAULT_PCT) ")\n"
    "  --seconds S     length of the run (default "
    CLI_STR(DEMO_DEFAULT_SECONDS) ")\n"
    "  --readers R     reader processes, 0-" CLI_STR(DEMO_MAX_READERS)
    " (default " CLI_STR(DEMO_DEFAULT_READERS) ")\n"
    "  --name NAME     table name (default " DEMO_DEFAULT_NAME "); an\n"
    "                  existing table of that name is replaced\n"
    "  --dir DIR       directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --keep          keep the table afterwards (default: remove it)\n";
/* clang-format on */

enum {
    OPT_MEMBERS = 1,
    OPT_ACTIVE_PCT,
    OPT_SECONDS,
    OPT_READERS,
    OPT_NAME,
    OPT_DIR,
    OPT_KEEP,
};

static const cli_option demo_options[] = {
    {"members", true, OPT_MEMBERS}, {"active-pct", true, OPT_ACTIVE_PCT},
    {"seconds", true, OPT_SECONDS}, {"readers", true, OPT_READERS},
    {"name", true, OPT_NAME},       {"dir", true, OPT_DIR},
    {"keep", false, OPT_KEEP},      {NULL, false, 0},
};

/* One option; CLI_RUN when it was fine. */
static int parse_one(cli_args *a, int id, const char *v,
                     struct demo_config *cfg) {
    switch (id) {
    case CLI_ARG_HELP:
        return cli_help(a, demo_help);
    case CLI_ARG_BAD:
        return CLI_EXIT_USAGE;
    case CLI_ARG_POSITIONAL:
        return cli_usage_error(a, "unexpected argument '%s'", v);
    case OPT_MEMBERS:
        return cli_u64(a, "--members", v, 1, DEMO_MAX_MEMBERS, &cfg->members)
                   ? CLI_RUN
                   : CLI_EXIT_USAGE;
    case OPT_ACTIVE_PCT:
        return cli_u32(a, "--active-pct", v, 0, DEMO_PCT, &cfg->active_pct)
                   ? CLI_RUN
                   : CLI_EXIT_USAGE;
    case OPT_SECONDS:
        return cli_u32(a, "--seconds", v, 1, DEMO_MAX_SECONDS, &cfg->seconds)
                   ? CLI_RUN
                   : CLI_EXIT_USAGE;
    case OPT_READERS:
        return cli_u32(a, "--readers", v, 0, DEMO_MAX_READERS, &cfg->readers)
                   ? CLI_RUN
                   : CLI_EXIT_USAGE;
    case OPT_NAME:
        cfg->name = v;
        return CLI_RUN;
    case OPT_DIR:
        cfg->dir = v;
        return CLI_RUN;
    case OPT_KEEP:
        cfg->keep = true;
        return CLI_RUN;
    }
    return CLI_RUN;
}

static int parse(int argc, char **argv, struct demo_config *cfg) {
    cli_args a;
    cli_args_init(&a, argc, argv, demo_usage, demo_options);
    *cfg = (struct demo_config){
        .members = DEMO_DEFAULT_MEMBERS,
        .active_pct = DEMO_DEFAULT_PCT,
        .seconds = DEMO_DEFAULT_SECONDS,
        .readers = DEMO_DEFAULT_READERS,
        .name = DEMO_DEFAULT_NAME,
        .dir = CLI_DEFAULT_DIR,
    };
    const char *v;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        int st = parse_one(&a, id, v, cfg);
        if (st != CLI_RUN)
            return st;
    }
    return CLI_RUN;
}

/* The children: the writer, the sender, then the readers. */
static void plan_children(const struct demo_config *cfg,
                          struct demo_child *kids) {
    kids[0] = (struct demo_child){.role = DEMO_WRITER};
    kids[1] = (struct demo_child){.role = DEMO_SENDER};
    for (uint32_t i = 0; i < cfg->readers; i++)
        kids[DEMO_FIXED_CHILDREN + i] =
            (struct demo_child){.role = DEMO_READER, .index = i};
}

static int run(const struct demo_config *cfg, const struct demo_load *load) {
    size_t nkids = DEMO_FIXED_CHILDREN + cfg->readers;
    size_t bytes = sizeof(struct demo_shared) +
                   cfg->readers * sizeof(struct demo_reader_result);
    /* made before the fork, so parent and children share it; zero-filled */
    struct demo_shared *sh = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return cli_fail_errno(errno, "demo: map the shared results");
    atomic_init(&sh->ready, 0);
    atomic_init(&sh->phase, DEMO_PHASE_WAIT);
    struct demo_child *kids = calloc(nkids, sizeof *kids);
    int st = kids ? CLI_EXIT_OK : cli_fail(GT_ENOMEM, "demo: children");
    if (st == CLI_EXIT_OK) {
        const struct demo_env env = {cfg, load, sh};
        plan_children(cfg, kids);
        fprintf(stderr,
                "running: %" PRIu32 " readers, 1 writer, 1 sender "
                "for %" PRIu32 " s\n",
                cfg->readers, cfg->seconds);
        st = demo_procs_run(&env, kids, nkids);
        if (st == CLI_EXIT_OK)
            st = demo_report(&env, kids, nkids);
    }
    free(kids);
    if (munmap(sh, bytes) != 0 && st == CLI_EXIT_OK)
        st = cli_fail_errno(errno, "demo: unmap the shared results");
    return st;
}

static int remove_table(const struct demo_config *cfg, int st) {
    if (cfg->keep) {
        printf("table           kept: ");
        cli_text(stdout, cfg->dir);
        printf("/" CLI_TABLE_PREFIX);
        cli_text(stdout, cfg->name);
        putchar('\n');
        return st;
    }
    int r = gt_unlink(cfg->name, cfg->dir);
    if (r && r != GT_ENOENT)
        return cli_fail(r, "demo: remove table %s", cfg->name);
    return st;
}

int cmd_demo(int argc, char **argv) {
    struct demo_config cfg;
    int st = parse(argc, argv, &cfg);
    if (st != CLI_RUN)
        return st;
    if (!demo_clock_ok())
        return cli_fail_errno(errno, "demo: CLOCK_MONOTONIC");
    int r = demo_signals_install();
    if (r)
        return cli_fail_errno(r, "demo: install signal handlers");
    struct demo_load load = {0};
    st = demo_load_table(&cfg, &load);
    if (st == CLI_EXIT_OK)
        st = run(&cfg, &load);
    if (load.created)
        st = remove_table(&cfg, st);
    demo_signals_restore();
    return cli_finish(st);
}
