/*
 * snapshot.c - `guildtab snapshot` and `guildtab restore`: a table (or one
 * guild of it) to an LMDB snapshot file and back, with gt_snapshot and
 * gt_restore. Both report what they did (records, bytes, seconds) as text or
 * JSON, and draw a progress bar on a terminal when they take over a second.
 */
#include "cli.h"

#include <inttypes.h>
#include <sys/stat.h>

enum { OPT_DIR = 1, OPT_GUILD, OPT_JSON, OPT_MAX_MEMBERS, OPT_MAX_GUILDS };

static const cli_option snap_options[] = {
    {"dir", true, OPT_DIR},
    {"guild", true, OPT_GUILD},
    {"json", false, OPT_JSON},
    {"max-members", true, OPT_MAX_MEMBERS},
    {"max-guilds", true, OPT_MAX_GUILDS},
    {NULL, false, 0},
};

struct snap_args {
    const char *dir, *pos[2];
    int npos;
    uint64_t guild, max_members;
    uint32_t max_guilds;
    bool have_guild, json, have_max;
};

static int parse(int argc, char **argv, const char *usage, const char *help,
                 bool restore, struct snap_args *s) {
    cli_args a;
    cli_args_init(&a, argc, argv, usage, snap_options);
    *s = (struct snap_args){.dir = CLI_DEFAULT_DIR};
    const char *v;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        switch (id) {
        case CLI_ARG_HELP:
            return cli_help(&a, help);
        case CLI_ARG_BAD:
            return CLI_EXIT_USAGE;
        case CLI_ARG_POSITIONAL:
            if (s->npos == 2)
                return cli_usage_error(&a, "unexpected argument '%s'", v);
            s->pos[s->npos++] = v;
            break;
        case OPT_DIR:
            s->dir = v;
            break;
        case OPT_JSON:
            s->json = true;
            break;
        case OPT_GUILD:
            s->have_guild = true;
            if (!cli_u64(&a, "--guild", v, 0, UINT64_MAX, &s->guild))
                return CLI_EXIT_USAGE;
            break;
        case OPT_MAX_MEMBERS:
        case OPT_MAX_GUILDS:
            if (!restore)
                return cli_usage_error(&a, "--max-members and --max-guilds "
                                           "are options of restore");
            s->have_max = true;
            if (id == OPT_MAX_MEMBERS
                    ? !cli_u64(&a, "--max-members", v, 1, UINT64_MAX,
                               &s->max_members)
                    : !cli_u32(&a, "--max-guilds", v, 1, UINT32_MAX,
                               &s->max_guilds))
                return CLI_EXIT_USAGE;
            break;
        }
    }
    if (s->npos < 2)
        return cli_usage_error(&a, restore ? "expected PATH and NAME"
                                           : "expected NAME and PATH");
    if (restore && s->have_guild && s->have_max)
        return cli_usage_error(&a, "--max-members and --max-guilds apply to a "
                                   "new table, not to --guild");
    return CLI_RUN;
}

static void report(const struct snap_args *s, const char *verb,
                   const char *name, const char *path, const cli_progress *p,
                   double secs) {
    struct stat st;
    uint64_t bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (s->json) {
        printf("{\"%s\": ", verb);
        cli_json_string(stdout, name);
        printf(", \"path\": ");
        cli_json_string(stdout, path);
        if (s->have_guild)
            printf(", \"guild\": %" PRIu64, s->guild);
        printf(", \"records\": %" PRIu64 ", \"file_bytes\": %" PRIu64
               ", \"seconds\": %.3f}\n", p->done, bytes, secs);
        return;
    }
    char h[CLI_HUMAN_MAX];
    printf("%s ", verb);
    cli_text(stdout, name);
    if (s->have_guild)
        printf(" guild %" PRIu64, s->guild);
    printf(": %" PRIu64 " members, file ", p->done);
    cli_text(stdout, path);
    printf(" (%s), %.2f s\n", cli_human_bytes(bytes, h), secs);
}

/* ---- snapshot ------------------------------------------------------------- */

static const char snapshot_usage[] =
    CLI_PROGRAM " snapshot NAME PATH [--guild G] [--dir DIR] [--json]";
static const char snapshot_help[] =
    "Write every guild of table NAME (or only guild G) to the LMDB snapshot\n"
    "file PATH. Readers and writers of the table go on; each guild is copied\n"
    "as of one moment. PATH is replaced only when the new snapshot is whole\n"
    "and synced, so an interrupted snapshot leaves the previous one intact.\n\n"
    "  --guild G   only guild G (to move it: restore --guild elsewhere)\n"
    "  --dir DIR   directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --json      report as one JSON object\n";

int cmd_snapshot(int argc, char **argv) {
    struct snap_args s;
    int st = parse(argc, argv, snapshot_usage, snapshot_help, false, &s);
    if (st != CLI_RUN)
        return st;
    const char *name = s.pos[0], *path = s.pos[1];
    gt_table *t;
    gt_options o = {.dir = s.dir, .flags = GT_RDONLY};
    int r = gt_open(name, &o, &t);
    if (r)
        return cli_fail(r, "snapshot: open table %s", name);
    cli_progress p;
    cli_progress_init(&p, "snapshot", "members");
    r = s.have_guild
            ? gt_snapshot_guild(t, s.guild, path, cli_progress_step, &p)
            : gt_snapshot(t, path, cli_progress_step, &p);
    double secs = cli_progress_end(&p);
    gt_close(t);
    if (r)
        return cli_fail(r, "snapshot: table %s to %s", name, path);
    report(&s, "snapshot", name, path, &p, secs);
    return cli_finish(CLI_EXIT_OK);
}

/* ---- restore -------------------------------------------------------------- */

static const char restore_usage[] =
    CLI_PROGRAM " restore PATH NAME [--guild G] [--dir DIR] [--max-members N] "
                "[--max-guilds N] [--json]";
static const char restore_help[] =
    "Build the new table NAME from the snapshot file PATH, verifying every\n"
    "record first; the table appears only when complete. With --guild G,\n"
    "add guild G of the snapshot to the existing table NAME instead (it must\n"
    "not hold that guild). A damaged or forged file is refused and leaves\n"
    "nothing behind.\n\n"
    "  --guild G          restore only guild G, into an existing table\n"
    "  --max-members N    limits of the new table (default: the snapshot's\n"
    "  --max-guilds N     table's; they must hold what the snapshot holds)\n"
    "  --dir DIR          directory of the table (default " CLI_DEFAULT_DIR
    ")\n"
    "  --json             report as one JSON object\n";

int cmd_restore(int argc, char **argv) {
    struct snap_args s;
    int st = parse(argc, argv, restore_usage, restore_help, true, &s);
    if (st != CLI_RUN)
        return st;
    const char *path = s.pos[0], *name = s.pos[1];
    cli_progress p;
    cli_progress_init(&p, "restore", "members");
    int r;
    if (s.have_guild) {
        gt_table *t;
        gt_options o = {.dir = s.dir};
        if ((r = gt_open(name, &o, &t)))
            return cli_fail(r, "restore: open table %s", name);
        r = gt_restore_guild(t, path, s.guild, cli_progress_step, &p);
        gt_close(t);
    } else {
        gt_options o = {.dir = s.dir, .max_members = s.max_members,
                        .max_guilds = s.max_guilds};
        r = gt_restore(path, name, &o, cli_progress_step, &p);
    }
    double secs = cli_progress_end(&p);
    if (r)
        return cli_fail(r, "restore: %s into table %s", path, name);
    report(&s, "restore", name, path, &p, secs);
    return cli_finish(CLI_EXIT_OK);
}
