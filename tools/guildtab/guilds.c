/*
 * guilds.c - `guildtab guilds NAME [--top K]`: the guilds of a table,
 * largest first (most members, then lowest id), with their online and
 * active counts; and the guild list `info` shows too. Walks gt_guilds once;
 * with --top keeps only the K largest, so memory is K entries however many
 * guilds the table holds.
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
    cli_guild_list *l = ctx;
    l->seen++;
    if (l->keep) {
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

int cli_guild_list_read(gt_table *t, size_t keep, cli_guild_list *l) {
    *l = (cli_guild_list){.keep = keep};
    if (keep && !(l->v = calloc(keep, sizeof *l->v)))
        return GT_ENOMEM;
    int r = gt_guilds(t, add, l);
    if (r == 0 && !keep)
        qsort(l->v, l->n, sizeof *l->v, cmp);
    return r;
}

void cli_guild_list_free(cli_guild_list *l) {
    free(l->v);
    *l = (cli_guild_list){0};
}

void cli_guild_list_text(const cli_guild_list *l) {
    printf("%20s  %12s  %12s  %12s  %12s  %14s\n", "GUILD_ID", "MEMBERS",
           "ONLINE", "ACTIVE", "CAPACITY", "BYTES_USED");
    for (size_t i = 0; i < l->n; i++) {
        const gt_guild_stat *g = &l->v[i];
        printf("%20" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64
               "  %12" PRIu64 "  %14" PRIu64 "\n",
               g->guild_id, g->members, g->online, g->active, g->capacity,
               g->bytes_used);
    }
}

void cli_guild_list_json(const cli_guild_list *l, const char *indent) {
    printf("[");
    for (size_t i = 0; i < l->n; i++) {
        const gt_guild_stat *g = &l->v[i];
        printf("%s\n%s  {\"guild_id\": %" PRIu64 ", \"members\": %" PRIu64
               ", \"online\": %" PRIu64 ", \"active\": %" PRIu64
               ", \"capacity\": %" PRIu64 ", \"bytes_used\": %" PRIu64 "}",
               i ? "," : "", indent, g->guild_id, g->members, g->online,
               g->active, g->capacity, g->bytes_used);
    }
    printf("%s%s]", l->n ? "\n" : "", l->n ? indent : "");
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
    gt_table *t;
    gt_options o = {.dir = dir, .flags = GT_RDONLY};
    int r = gt_open(name, &o, &t);
    if (r)
        return cli_fail(r, "guilds: open table %s", name);
    cli_guild_list l;
    r = cli_guild_list_read(t, (size_t)top, &l);
    gt_close(t);
    if (r) {
        cli_guild_list_free(&l);
        return cli_fail(r, "guilds: table %s", name);
    }
    if (json) {
        cli_guild_list_json(&l, "");
        putchar('\n');
    } else {
        cli_guild_list_text(&l);
        if (l.n < l.seen)
            printf("(%zu of %" PRIu64 " guilds)\n", l.n, l.seen);
    }
    cli_guild_list_free(&l);
    return cli_finish(CLI_EXIT_OK);
}
