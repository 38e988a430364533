/*
 * readers.c - `guildtab readers NAME [--reap]`: the table's thread slots
 * (gt_readers): owner pid and tid, whether the owner runs, whether it is
 * inside a read now and for how long, and whether a write of it is in
 * flight. --reap first frees the slots of dead processes (gt_reap).
 */
#include "cli.h"

#include <inttypes.h>

enum { OPT_DIR = 1, OPT_JSON, OPT_REAP };

static const cli_option readers_options[] = {
    {"dir", true, OPT_DIR},
    {"json", false, OPT_JSON},
    {"reap", false, OPT_REAP},
    {NULL, false, 0},
};

static const char readers_usage[] =
    CLI_PROGRAM " readers NAME [--reap] [--dir DIR] [--json]";
static const char readers_help[] =
    "List the thread slots in use in table NAME: SLOT, PID, TID, STATE\n"
    "(running or dead), PINNED_MS (how long the thread has been inside its\n"
    "current read; '-' when not reading), EPOCH_LAG (reclamation epochs since\n"
    "then) and WRITING (a guild write in flight). A dead process's slot is\n"
    "freed by the next gt_open of the table, or now by --reap.\n\n"
    "  --reap      free the slots of dead processes first (needs write access)\n"
    "  --dir DIR   directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --json      one JSON object instead of a table\n";

#define NS_PER_MS 1000000.0

struct out {
    bool json;
    uint64_t n;
};

static int print_slot(void *ctx, const gt_reader_stat *r) {
    struct out *o = ctx;
    if (o->json) {
        printf("%s\n    {\"slot\": %" PRIu32 ", \"pid\": %" PRIu32
               ", \"tid\": %" PRIu32 ", \"alive\": %s, \"pinned\": %s"
               ", \"pinned_ms\": %.3f, \"epoch_lag\": %" PRIu64
               ", \"writing\": %s}",
               o->n ? "," : "", r->slot, r->pid, r->tid,
               r->alive ? "true" : "false", r->pinned ? "true" : "false",
               (double)r->pinned_ns / NS_PER_MS, r->epoch_lag,
               r->writing ? "true" : "false");
    } else {
        printf("%6" PRIu32 "  %8" PRIu32 "  %8" PRIu32 "  %-7s  ", r->slot,
               r->pid, r->tid, r->alive ? "running" : "dead");
        if (r->pinned)
            printf("%10.3f  %9" PRIu64, (double)r->pinned_ns / NS_PER_MS,
                   r->epoch_lag);
        else
            printf("%10s  %9s", "-", "-");
        printf("  %s\n", r->writing ? "yes" : "no");
    }
    o->n++;
    return 0;
}

int cmd_readers(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, readers_usage, readers_options);
    const char *dir = CLI_DEFAULT_DIR, *name = NULL, *v;
    bool json = false, reap = false;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        if (id == CLI_ARG_HELP)
            return cli_help(&a, readers_help);
        if (id == CLI_ARG_BAD)
            return CLI_EXIT_USAGE;
        if (id == OPT_DIR)
            dir = v;
        else if (id == OPT_JSON)
            json = true;
        else if (id == OPT_REAP)
            reap = true;
        else if (name)
            return cli_usage_error(&a, "unexpected argument '%s'", v);
        else
            name = v;
    }
    if (!name)
        return cli_usage_error(&a, "missing table NAME");
    gt_table *t;
    /* read-only unless reaping. Note gt_open itself sweeps dead slots that
     * a writer needs; --reap is for a table nobody opens for a while. */
    gt_options o = {.dir = dir, .flags = reap ? 0 : GT_RDONLY};
    int r = gt_open(name, &o, &t);
    if (r)
        return cli_fail(r, "readers: open table %s", name);
    uint32_t reaped = 0;
    if (reap && (r = gt_reap(t, &reaped))) {
        gt_close(t);
        return cli_fail(r, "readers: reap table %s", name);
    }
    struct out out = {.json = json};
    if (json) {
        printf("{\"table\": ");
        cli_json_string(stdout, name);
        printf(", \"reaped\": %" PRIu32 ", \"slots\": [", reaped);
    } else {
        if (reap)
            printf("reaped %" PRIu32 " slots of dead processes\n", reaped);
        printf("%6s  %8s  %8s  %-7s  %10s  %9s  %s\n", "SLOT", "PID", "TID",
               "STATE", "PINNED_MS", "EPOCH_LAG", "WRITING");
    }
    r = gt_readers(t, print_slot, &out);
    gt_close(t);
    if (json)
        printf("%s]}\n", out.n ? "\n  " : "");
    if (r)
        return cli_fail(r, "readers: table %s", name);
    return cli_finish(CLI_EXIT_OK);
}
