/*
 * guilds.c - `guildtab guilds NAME [--top K]`: the guilds of a table,
 * largest first (most members, then lowest id), with their online and
 * active counts. Walks gt_guilds once; with --top keeps only the K largest,
 * so memory is K entries however many guilds the table holds.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>

enum { OPT_DIR = 1, OPT_JSON, OPT_TOP };

static const cli_option guilds_options[] = {
    {"dir", true, OPT_DIR},
    {"json", false, OPT_JSON},
    {"top", true, OPT_TOP},
    {NULL, false, 0},
};

static const char guilds_usage[] =
    CLI_PROGRAM " guilds NAME [--top K] [--dir DIR] [--json]";
static const char guilds_help[] =
    "List the guilds of table NAME, largest first: members, online, active\n"
    "(the fanout set), member slots and bytes used.\n\n"
    "  --top K     only the K largest\n"
    "  --dir DIR   directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --json      a JSON array of objects instead of a table\n";

#define GUILDS_INITIAL_CAP 64u

struct glist {
    gt_guild_stat *v;
    size_t n, cap, keep; /* keep: the K of --top, or SIZE_MAX */
    uint64_t seen;
};

static bool larger(const gt_guild_stat *a, const gt_guild_stat *b) {
    if (a->members != b->members)
        return a->members > b->members;
    return a->guild_id < b->guild_id;
}

static int cmp(const void *a, const void *b) {
    return larger(a, b) ? -1 : larger(b, a) ? 1 : 0;
}

/* All guilds, or the K largest kept sorted by insertion. */
static int add(void *ctx, const gt_guild_stat *g) {
    struct glist *l = ctx;
    l->seen++;
    if (l->keep != SIZE_MAX) {
        if (l->n == l->keep && !larger(g, &l->v[l->n - 1]))
            return 0;
        size_t i = l->n < l->keep ? l->n++ : l->n - 1;
        for (; i > 0 && larger(g, &l->v[i - 1]); i--)
            l->v[i] = l->v[i - 1];
        l->v[i] = *g;
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : GUILDS_INITIAL_CAP;
        gt_guild_stat *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return GT_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *g;
    return 0;
}

static void print_json(const struct glist *l) {
    printf("[");
    for (size_t i = 0; i < l->n; i++) {
        const gt_guild_stat *g = &l->v[i];
        printf("%s\n  {\"guild_id\": %" PRIu64 ", \"members\": %" PRIu64
               ", \"online\": %" PRIu64 ", \"active\": %" PRIu64
               ", \"capacity\": %" PRIu64 ", \"bytes_used\": %" PRIu64 "}",
               i ? "," : "", g->guild_id, g->members, g->online, g->active,
               g->capacity, g->bytes_used);
    }
    printf("%s]\n", l->n ? "\n" : "");
}

static void print_text(const struct glist *l) {
    printf("%20s  %12s  %12s  %12s  %12s  %14s\n", "GUILD_ID", "MEMBERS",
           "ONLINE", "ACTIVE", "CAPACITY", "BYTES_USED");
    for (size_t i = 0; i < l->n; i++) {
        const gt_guild_stat *g = &l->v[i];
        printf("%20" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64
               "  %12" PRIu64 "  %14" PRIu64 "\n",
               g->guild_id, g->members, g->online, g->active, g->capacity,
               g->bytes_used);
    }
    if (l->n < l->seen)
        printf("(%zu of %" PRIu64 " guilds)\n", l->n, l->seen);
}

int cmd_guilds(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, guilds_usage, guilds_options);
    const char *dir = CLI_DEFAULT_DIR, *name = NULL, *v;
    bool json = false;
    uint64_t top = 0;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        switch (id) {
        case CLI_ARG_HELP:
            return cli_help(&a, guilds_help);
        case CLI_ARG_BAD:
            return CLI_EXIT_USAGE;
        case CLI_ARG_POSITIONAL:
            if (name)
                return cli_usage_error(&a, "unexpected argument '%s'", v);
            name = v;
            break;
        case OPT_DIR:
            dir = v;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_TOP:
            if (!cli_u64(&a, "--top", v, 1, 1u << 24, &top))
                return CLI_EXIT_USAGE;
            break;
        }
    }
    if (!name)
        return cli_usage_error(&a, "missing table NAME");
    struct glist l = {.keep = top ? (size_t)top : SIZE_MAX};
    if (top && !(l.v = calloc((size_t)top, sizeof *l.v)))
        return cli_fail(GT_ENOMEM, "guilds");
    gt_table *t;
    gt_options o = {.dir = dir, .flags = GT_RDONLY};
    int r = gt_open(name, &o, &t);
    if (r) {
        free(l.v);
        return cli_fail(r, "guilds: open table %s", name);
    }
    r = gt_guilds(t, add, &l);
    gt_close(t);
    if (r) {
        free(l.v);
        return cli_fail(r, "guilds: table %s", name);
    }
    if (!top)
        qsort(l.v, l.n, sizeof *l.v, cmp);
    if (json)
        print_json(&l);
    else
        print_text(&l);
    free(l.v);
    return cli_finish(CLI_EXIT_OK);
}
