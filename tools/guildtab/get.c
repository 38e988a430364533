/*
 * get.c - `guildtab get NAME G U`: one member, looked up with gt_lookup
 * (lock-free, the record and payload copied out whole).
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>

enum { OPT_DIR = 1, OPT_JSON };

static const cli_option get_options[] = {
    {"dir", true, OPT_DIR},
    {"json", false, OPT_JSON},
    {NULL, false, 0},
};

static const char get_usage[] = CLI_PROGRAM " get NAME G U [--dir DIR] [--json]";
static const char get_help[] =
    "Print member U (user id) of guild G in table NAME: its fields, its\n"
    "roles as 64 hex digits (role r is bit r) and its payload in hex.\n"
    "Exit status 1 with \"no such table, guild or member\" when absent.\n\n"
    "  --dir DIR   directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --json      one JSON object instead of text\n";

static void roles_hex(const uint64_t roles[4]) {
    for (int w = 3; w >= 0; w--)
        printf("%016" PRIx64, roles[w]);
}

static void print_text(uint64_t g, const gt_member *m, const void *pay,
                       uint32_t size) {
    printf("guild       %" PRIu64 "\nuser_id     %" PRIu64
           "\nsession_id  %" PRIu64 "\nworker      %" PRIu32
           "\nflags       0x%08" PRIx32 "%s%s\nroles       ",
           g, m->user_id, m->session_id, m->worker, m->flags,
           (m->flags & GT_ONLINE) ? " ONLINE" : "",
           (m->flags & GT_ACTIVE) ? " ACTIVE" : "");
    roles_hex(m->roles);
    printf("\njoined_at   %" PRId64 "\n", m->joined_at);
    if (size) {
        printf("payload     ");
        cli_hex(stdout, pay, size);
        putchar('\n');
    }
}

static void print_json(uint64_t g, const gt_member *m, const void *pay,
                       uint32_t size) {
    printf("{\"guild_id\": %" PRIu64 ", \"user_id\": %" PRIu64
           ", \"session_id\": %" PRIu64 ", \"worker\": %" PRIu32
           ", \"flags\": %" PRIu32 ", \"online\": %s, \"active\": %s"
           ", \"roles\": \"",
           g, m->user_id, m->session_id, m->worker, m->flags,
           (m->flags & GT_ONLINE) ? "true" : "false",
           (m->flags & GT_ACTIVE) ? "true" : "false");
    roles_hex(m->roles);
    printf("\", \"joined_at\": %" PRId64, m->joined_at);
    if (size) {
        printf(", \"payload\": \"");
        cli_hex(stdout, pay, size);
        putchar('"');
    }
    printf("}\n");
}

int cmd_get(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, get_usage, get_options);
    const char *dir = CLI_DEFAULT_DIR, *pos[3] = {0}, *v;
    int npos = 0;
    bool json = false;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        if (id == CLI_ARG_HELP)
            return cli_help(&a, get_help);
        if (id == CLI_ARG_BAD)
            return CLI_EXIT_USAGE;
        if (id == OPT_DIR)
            dir = v;
        else if (id == OPT_JSON)
            json = true;
        else if (npos == 3)
            return cli_usage_error(&a, "unexpected argument '%s'", v);
        else
            pos[npos++] = v;
    }
    uint64_t g, u;
    if (npos < 3)
        return cli_usage_error(&a, "expected NAME, guild G and user U");
    if (!cli_u64(&a, "G", pos[1], 0, UINT64_MAX, &g) ||
        !cli_u64(&a, "U", pos[2], 0, UINT64_MAX, &u))
        return CLI_EXIT_USAGE;
    gt_table *t;
    gt_options o = {.dir = dir, .flags = GT_RDONLY};
    int r = gt_open(pos[0], &o, &t);
    if (r)
        return cli_fail(r, "get: open table %s", pos[0]);
    gt_table_stat st;
    gt_member m;
    void *pay = NULL;
    if ((r = gt_info(t, &st)) == 0) {
        pay = calloc(1, st.payload_size + 1u);
        r = pay ? gt_lookup(t, g, u, &m, pay) : GT_ENOMEM;
    }
    gt_close(t);
    if (r) {
        free(pay);
        return cli_fail(r, "get: member %" PRIu64 " of guild %" PRIu64
                           " in table %s", u, g, pos[0]);
    }
    if (json)
        print_json(g, &m, pay, st.payload_size);
    else
        print_text(g, &m, pay, st.payload_size);
    free(pay);
    return cli_finish(CLI_EXIT_OK);
}
