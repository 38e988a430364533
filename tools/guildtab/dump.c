/*
 * dump.c - `guildtab dump`: every member of one guild (or of every guild,
 * by guild id), as an aligned table, RFC 4180 CSV or a JSON array.
 *
 * Members come from the cursor API a page at a time (gt_iter_first /
 * gt_iter_next), so memory stays at one page however large the guild, and
 * the dump is consistent in the cursor's sense: a member present for the
 * whole dump appears exactly once, others may or may not. Nothing is
 * printed until the first page arrived, so a missing guild leaves stdout
 * empty. Without --guild, the guilds present when the dump starts are
 * dumped one after another (one deleted meanwhile is skipped).
 *
 * roles are printed as one 64-digit hex number, most significant word
 * (roles[3]) first, so that role r is bit r of the number. Only numbers and
 * hex are printed, so CSV fields and JSON values never need escaping.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DUMP_PAGE 1024u /* members fetched per cursor call */
#define ROLE_WORDS 4u   /* gt_member.roles */

/* Table column widths: the widest value each column can hold. */
#define W_U64 20   /* digits of UINT64_MAX */
#define W_I64 20   /* digits of INT64_MIN, with its sign */
#define W_U32 10   /* digits of UINT32_MAX */
#define W_FLAGS 10 /* "0x" and 8 hex digits */
#define W_BOOL 6   /* "ONLINE" */
#define W_ROLES 64 /* 256 bits in hex */

static void roles_hex(FILE *f, const uint64_t roles[ROLE_WORDS]) {
    for (size_t w = ROLE_WORDS; w-- > 0;)
        fprintf(f, "%016" PRIx64, roles[w]);
}

static const char *yes_no(uint32_t flags, uint32_t bit) {
    return (flags & bit) ? "yes" : "no";
}

static const char *true_false(uint32_t flags, uint32_t bit) {
    return (flags & bit) ? "true" : "false";
}

/* One output format. payload is NULL when the table has no payload. */
struct dump_format {
    const char *name;
    void (*begin)(uint32_t payload_size);
    void (*row)(uint64_t guild, const gt_member *m, const void *payload,
                uint32_t size, uint64_t index);
    void (*end)(uint64_t rows);
};

/* ---- table --------------------------------------------------------------- */

static void table_begin(uint32_t payload_size) {
    printf("%*s  %*s  %*s  %*s  %-*s  %-*s  %-*s  %-*s  %*s%s\n", W_U64,
           "GUILD_ID", W_U64, "USER_ID",
           W_U64, "SESSION_ID", W_U32, "WORKER", W_FLAGS, "FLAGS", W_BOOL,
           "ONLINE", W_BOOL, "ACTIVE", W_ROLES, "ROLES", W_I64, "JOINED_AT",
           payload_size ? "  PAYLOAD" : "");
}

static void table_row(uint64_t guild, const gt_member *m, const void *payload,
                      uint32_t size, uint64_t index) {
    (void)index;
    printf("%*" PRIu64 "  %*" PRIu64 "  %*" PRIu64 "  %*" PRIu32 "  0x%08" PRIx32
           "  %-*s  %-*s  ",
           W_U64, guild, W_U64, m->user_id, W_U64, m->session_id, W_U32, m->worker, m->flags,
           W_BOOL, yes_no(m->flags, GT_ONLINE), W_BOOL,
           yes_no(m->flags, GT_ACTIVE));
    roles_hex(stdout, m->roles);
    printf("  %*" PRId64, W_I64, m->joined_at);
    if (payload) {
        fputs("  ", stdout);
        cli_hex(stdout, payload, size);
    }
    putchar('\n');
}

static void table_end(uint64_t rows) {
    (void)rows;
}

/* ---- csv (RFC 4180: CRLF line ends, header row) -------------------------- */

#define CSV_EOL "\r\n"

static void csv_begin(uint32_t payload_size) {
    printf("guild_id,user_id,session_id,worker,flags,online,active,roles,"
           "joined_at%"
           "s" CSV_EOL,
           payload_size ? ",payload" : "");
}

static void csv_row(uint64_t guild, const gt_member *m, const void *payload,
                    uint32_t size, uint64_t index) {
    (void)index;
    printf("%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu32 ",0x%08" PRIx32
           ",%s,%s,",
           guild, m->user_id, m->session_id, m->worker, m->flags,
           true_false(m->flags, GT_ONLINE), true_false(m->flags, GT_ACTIVE));
    roles_hex(stdout, m->roles);
    printf(",%" PRId64, m->joined_at);
    if (payload) {
        putchar(',');
        cli_hex(stdout, payload, size);
    }
    fputs(CSV_EOL, stdout);
}

static void csv_end(uint64_t rows) {
    (void)rows;
}

/* ---- json ---------------------------------------------------------------- */

static void json_begin(uint32_t payload_size) {
    (void)payload_size;
    putchar('[');
}

static void json_row(uint64_t guild, const gt_member *m, const void *payload,
                     uint32_t size, uint64_t index) {
    printf("%s\n  {\"guild_id\": %" PRIu64 ", \"user_id\": %" PRIu64
           ", \"session_id\": %" PRIu64
           ", \"worker\": %" PRIu32 ", \"flags\": %" PRIu32
           ", \"online\": %s, \"active\": %s, \"roles\": \"",
           index ? "," : "", guild, m->user_id, m->session_id, m->worker, m->flags,
           true_false(m->flags, GT_ONLINE), true_false(m->flags, GT_ACTIVE));
    roles_hex(stdout, m->roles);
    printf("\", \"joined_at\": %" PRId64, m->joined_at);
    if (payload) {
        fputs(", \"payload\": \"", stdout);
        cli_hex(stdout, payload, size);
        putchar('"');
    }
    putchar('}');
}

static void json_end(uint64_t rows) {
    printf("%s]\n", rows ? "\n" : "");
}

static const struct dump_format formats[] = {
    {"table", table_begin, table_row, table_end},
    {"csv", csv_begin, csv_row, csv_end},
    {"json", json_begin, json_row, json_end},
};
#define NFORMATS (sizeof formats / sizeof formats[0])

/* ---- arguments ----------------------------------------------------------- */

static const char dump_usage[] =
    CLI_PROGRAM " dump NAME [--guild G] [--format table|csv|json] [--dir DIR] "
                "[--limit N]";
static const char dump_help[] =
    "Print the members of guild G of table NAME (of every guild without\n"
    "--guild, ordered by guild id): guild_id, user_id, session_id,\n"
    "worker, flags, online, active, roles (256 bits as 64 hex digits, role r\n"
    "is bit r), joined_at, and the payload in hex when the table has one.\n\n"
    "  --guild G       only guild G\n"
    "  --format F      table (default), csv (RFC 4180) or json (an array;\n"
    "                  ids are JSON numbers, roles and payload hex strings)\n"
    "  --limit N       print at most N members\n"
    "  --dir DIR       directory of the table (default " CLI_DEFAULT_DIR ")\n";

enum { OPT_DIR = 1, OPT_GUILD, OPT_FORMAT, OPT_LIMIT };

static const cli_option dump_options[] = {
    {"dir", true, OPT_DIR},
    {"guild", true, OPT_GUILD},
    {"format", true, OPT_FORMAT},
    {"limit", true, OPT_LIMIT},
    {NULL, false, 0},
};

struct dump_args {
    const char *dir, *name;
    uint64_t guild, limit;
    bool have_guild;
    const struct dump_format *format;
};

static const struct dump_format *find_format(const char *name) {
    for (size_t i = 0; i < NFORMATS; i++)
        if (strcmp(formats[i].name, name) == 0)
            return &formats[i];
    return NULL;
}

/* One option or positional argument; CLI_RUN when it was fine. */
static int parse_one(cli_args *a, int id, const char *v, struct dump_args *d) {
    switch (id) {
    case CLI_ARG_HELP:
        return cli_help(a, dump_help);
    case CLI_ARG_BAD:
        return CLI_EXIT_USAGE;
    case CLI_ARG_POSITIONAL:
        if (d->name)
            return cli_usage_error(a, "unexpected argument '%s'", v);
        d->name = v;
        return CLI_RUN;
    case OPT_DIR:
        d->dir = v;
        return CLI_RUN;
    case OPT_GUILD:
        d->have_guild = true;
        return cli_u64(a, "--guild", v, 0, UINT64_MAX, &d->guild)
                   ? CLI_RUN
                   : CLI_EXIT_USAGE;
    case OPT_LIMIT:
        return cli_u64(a, "--limit", v, 1, UINT64_MAX, &d->limit)
                   ? CLI_RUN
                   : CLI_EXIT_USAGE;
    case OPT_FORMAT:
        d->format = find_format(v);
        return d->format ? CLI_RUN
                         : cli_usage_error(a, "unknown format '%s'", v);
    }
    return CLI_RUN;
}

static int parse(int argc, char **argv, struct dump_args *d) {
    cli_args a;
    cli_args_init(&a, argc, argv, dump_usage, dump_options);
    *d = (struct dump_args){
        .dir = CLI_DEFAULT_DIR, .limit = UINT64_MAX, .format = &formats[0]};
    const char *v;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        int st = parse_one(&a, id, v, d);
        if (st != CLI_RUN)
            return st;
    }
    if (!d->name)
        return cli_usage_error(&a, "missing table NAME");
    return CLI_RUN;
}

/* ---- the dump ------------------------------------------------------------ */

struct page {
    cli_progress *bar; /* rows against the members to dump */
    gt_member *members;
    unsigned char *payloads; /* DUMP_PAGE * payload_size bytes, or NULL */
    uint32_t payload_size;
};

static size_t page_max(uint64_t remaining) {
    return remaining < DUMP_PAGE ? (size_t)remaining : DUMP_PAGE;
}

static void print_page(const struct dump_args *d, const struct page *p,
                       uint64_t guild, size_t n, uint64_t *rows) {
    for (size_t i = 0; i < n; i++) {
        const void *pay =
            p->payloads ? p->payloads + i * p->payload_size : NULL;
        d->format->row(guild, &p->members[i], pay, p->payload_size, (*rows)++);
    }
    cli_progress_step(p->bar, *rows, p->bar->total);
}

/* The members of one guild, after *rows printed; begins the output before
 * the first row if *begun is false. */
static int dump_guild(gt_table *t, const struct dump_args *d,
                      const struct page *p, uint64_t guild, uint64_t *rows,
                      bool *begun) {
    gt_cursor c;
    size_t n;
    int r = gt_iter_first(t, guild, NULL, &c, p->members, p->payloads,
                          page_max(d->limit - *rows), &n);
    if (r)
        return r;
    if (!*begun) {
        d->format->begin(p->payload_size);
        *begun = true;
    }
    while (n > 0) {
        print_page(d, p, guild, n, rows);
        if (*rows == d->limit)
            break;
        r = gt_iter_next(t, &c, NULL, p->members, p->payloads,
                         page_max(d->limit - *rows), &n);
        if (r)
            return r; /* the output is incomplete: the exit status says so */
    }
    return 0;
}

struct ids {
    uint64_t *v;
    size_t n, cap;
};

static int collect(void *ctx, const gt_guild_stat *g) {
    struct ids *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        uint64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return GT_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = g->guild_id;
    return 0;
}

static int id_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every guild present at the start, by id; one deleted meanwhile is
 * skipped. An empty table prints an empty listing. */
static int dump_all(gt_table *t, const struct dump_args *d,
                    const struct page *p, uint64_t *rows, bool *begun) {
    struct ids l = {0};
    int r = gt_guilds(t, collect, &l);
    if (r == 0)
        qsort(l.v, l.n, sizeof *l.v, id_cmp);
    for (size_t i = 0; r == 0 && i < l.n && *rows < d->limit; i++) {
        r = dump_guild(t, d, p, l.v[i], rows, begun);
        if (r == GT_ENOENT)
            r = 0;
    }
    free(l.v);
    if (r == 0 && !*begun) {
        d->format->begin(p->payload_size);
        *begun = true;
    }
    return r;
}

static int page_alloc(struct page *p, uint32_t payload_size) {
    *p = (struct page){.payload_size = payload_size};
    p->members = calloc(DUMP_PAGE, sizeof *p->members);
    if (payload_size)
        p->payloads = calloc(DUMP_PAGE, payload_size);
    if (!p->members || (payload_size && !p->payloads)) {
        free(p->members);
        free(p->payloads);
        return GT_ENOMEM;
    }
    return 0;
}

int cmd_dump(int argc, char **argv) {
    struct dump_args d;
    int st = parse(argc, argv, &d);
    if (st != CLI_RUN)
        return st;
    gt_table *t;
    gt_options o = {.dir = d.dir, .flags = GT_RDONLY};
    int r = gt_open(d.name, &o, &t);
    if (r)
        return cli_fail(r, "dump: open table %s", d.name);
    gt_table_stat s;
    gt_guild_stat gs = {0};
    struct page p = {0};
    cli_progress bar;
    cli_progress_init(&bar, "dump", "members");
    /* with the rows on the terminal, a bar would only get in their way */
    bar.tty = bar.tty && isatty(STDOUT_FILENO) != 1;
    if ((r = gt_info(t, &s)) == 0 &&
        (!d.have_guild || (r = gt_guild_info(t, d.guild, &gs)) == 0) &&
        (r = page_alloc(&p, s.payload_size)) == 0) {
        p.bar = &bar;
        bar.total = d.have_guild ? gs.members : s.members;
        if (bar.total > d.limit)
            bar.total = d.limit;
        uint64_t rows = 0;
        bool begun = false;
        r = d.have_guild ? dump_guild(t, &d, &p, d.guild, &rows, &begun)
                         : dump_all(t, &d, &p, &rows, &begun);
        if (r == 0)
            d.format->end(rows);
        cli_progress_end(&bar);
        free(p.members);
        free(p.payloads);
    }
    gt_close(t);
    if (r) {
        fflush(stdout); /* what was printed goes before the error */
        if (d.have_guild)
            return cli_fail(r, "dump: guild %" PRIu64 " of table %s", d.guild,
                            d.name);
        return cli_fail(r, "dump: table %s", d.name);
    }
    return cli_finish(CLI_EXIT_OK);
}
