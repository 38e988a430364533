/*
 * inspect.c - `guildtab ls` and `guildtab info`: read-only views of tables.
 *
 * Both open tables with GT_RDONLY, so inspecting can never change a table.
 * ls lists every file named guildtab.NAME in the directory; one that fails
 * to open is listed with its error instead of numbers, and the listing goes
 * on (the exit status stays 0: the listing itself succeeded, and --json
 * readers find the error in the data).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define INFO_TOP_GUILDS 10 /* guilds info lists, largest first */
#define LIST_INITIAL_CAP 16u

enum { OPT_DIR = 1, OPT_JSON };

static const cli_option inspect_options[] = {
    {"dir", true, OPT_DIR},
    {"json", false, OPT_JSON},
    {NULL, false, 0},
};

struct inspect_args {
    const char *dir;
    const char *name; /* info only */
    bool json;
};

/* ls and info take the same options; info also takes NAME. */
static int parse(int argc, char **argv, const char *usage, const char *help,
                 bool want_name, struct inspect_args *out) {
    cli_args a;
    cli_args_init(&a, argc, argv, usage, inspect_options);
    *out = (struct inspect_args){.dir = CLI_DEFAULT_DIR};
    const char *v;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        switch (id) {
        case CLI_ARG_HELP:
            return cli_help(&a, help);
        case CLI_ARG_BAD:
            return CLI_EXIT_USAGE;
        case CLI_ARG_POSITIONAL:
            if (!want_name || out->name)
                return cli_usage_error(&a, "unexpected argument '%s'", v);
            out->name = v;
            break;
        case OPT_DIR:
            out->dir = v;
            break;
        case OPT_JSON:
            out->json = true;
            break;
        }
    }
    if (want_name && !out->name)
        return cli_usage_error(&a, "missing table NAME");
    return CLI_RUN;
}

static int open_rdonly(const char *dir, const char *name, gt_table **t) {
    gt_options o = {.dir = dir, .flags = GT_RDONLY};
    return gt_open(name, &o, t);
}

/* ---- ls ------------------------------------------------------------------ */

static const char ls_usage[] = CLI_PROGRAM " ls [--dir DIR] [--json]";
static const char ls_help[] =
    "List the tables (files " CLI_TABLE_PREFIX "NAME) in DIR with their\n"
    "guilds, members, heap bytes in use and resident bytes. A table that\n"
    "cannot be opened is listed with the error instead.\n\n"
    "  --dir DIR   directory of the tables (default " CLI_DEFAULT_DIR ")\n"
    "  --json      a JSON array of objects instead of a table\n";

struct ls_entry {
    char *name;
    int err; /* from gt_open or gt_info; 0: st is valid */
    gt_table_stat st;
};

struct ls_list {
    struct ls_entry *v;
    size_t n, cap;
};

static void ls_free(struct ls_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
}

/* 0 or ENOMEM. */
static int ls_push(struct ls_list *l, const char *name) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : LIST_INITIAL_CAP;
        struct ls_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return ENOMEM;
    l->v[l->n++] = (struct ls_entry){.name = copy};
    return 0;
}

/* NAME of a file called guildtab.NAME, or NULL for any other file. */
static const char *table_name(const char *file) {
    size_t plen = strlen(CLI_TABLE_PREFIX);
    if (strncmp(file, CLI_TABLE_PREFIX, plen) != 0)
        return NULL;
    const char *name = file + plen;
    return name[0] && name[0] != '.' ? name : NULL;
}

/* 0 or an errno value. */
static int ls_scan(const char *dir, struct ls_list *l) {
    DIR *d = opendir(dir);
    if (!d)
        return errno;
    int r = 0;
    for (;;) {
        errno = 0; /* readdir returns NULL at the end and on errors */
        struct dirent *e = readdir(d);
        if (!e) {
            r = errno;
            break;
        }
        const char *name = table_name(e->d_name);
        if (name && (r = ls_push(l, name)))
            break;
    }
    closedir(d);
    return r;
}

static int entry_cmp(const void *a, const void *b) {
    const struct ls_entry *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static void ls_stat(const char *dir, struct ls_entry *e) {
    gt_table *t;
    e->err = open_rdonly(dir, e->name, &t);
    if (e->err)
        return;
    e->err = gt_info(t, &e->st);
    gt_close(t);
}

static void ls_print_json(const struct ls_list *l) {
    printf("[");
    for (size_t i = 0; i < l->n; i++) {
        const struct ls_entry *e = &l->v[i];
        printf("%s\n  {\"name\": ", i ? "," : "");
        cli_json_string(stdout, e->name);
        if (e->err) {
            printf(", \"error\": ");
            cli_json_string(stdout, gt_strerror(e->err));
            printf(", \"error_name\": ");
            cli_json_string(stdout, gt_errname(e->err));
            printf("}");
            continue;
        }
        printf(", \"guilds\": %" PRIu64 ", \"members\": %" PRIu64
               ", \"bytes_used\": %" PRIu64 ", \"bytes_resident\": %" PRIu64
               "}",
               e->st.guilds, e->st.members, e->st.bytes_used,
               e->st.bytes_resident);
    }
    printf("%s]\n", l->n ? "\n" : "");
}

/* Column widths: the widest of the header and every value. */
struct ls_widths {
    int name, guilds, members, used, resident;
};

static int max_int(int a, int b) {
    return a > b ? a : b;
}

static struct ls_widths ls_measure(const struct ls_list *l) {
    struct ls_widths w = {4, 6, 7, 10, 8}; /* the header words */
    for (size_t i = 0; i < l->n; i++) {
        const struct ls_entry *e = &l->v[i];
        w.name = max_int(w.name, (int)strlen(e->name));
        if (e->err)
            continue;
        w.guilds = max_int(w.guilds, cli_digits(e->st.guilds));
        w.members = max_int(w.members, cli_digits(e->st.members));
        w.used = max_int(w.used, cli_digits(e->st.bytes_used));
        w.resident = max_int(w.resident, cli_digits(e->st.bytes_resident));
    }
    return w;
}

static void ls_print_text(const struct ls_list *l) {
    struct ls_widths w = ls_measure(l);
    printf("%-*s  %*s  %*s  %*s  %*s\n", w.name, "NAME", w.guilds, "GUILDS",
           w.members, "MEMBERS", w.used, "BYTES_USED", w.resident, "RESIDENT");
    for (size_t i = 0; i < l->n; i++) {
        const struct ls_entry *e = &l->v[i];
        cli_text(stdout, e->name);
        printf("%*s  ", w.name - (int)strlen(e->name), "");
        if (e->err)
            printf("error: %s\n", gt_strerror(e->err));
        else
            printf("%*" PRIu64 "  %*" PRIu64 "  %*" PRIu64 "  %*" PRIu64 "\n",
                   w.guilds, e->st.guilds, w.members, e->st.members, w.used,
                   e->st.bytes_used, w.resident, e->st.bytes_resident);
    }
}

int cmd_ls(int argc, char **argv) {
    struct inspect_args args;
    int st = parse(argc, argv, ls_usage, ls_help, false, &args);
    if (st != CLI_RUN)
        return st;
    struct ls_list l = {0};
    int r = ls_scan(args.dir, &l);
    if (r) {
        ls_free(&l);
        return cli_fail_errno(r, "ls: read directory %s", args.dir);
    }
    qsort(l.v, l.n, sizeof *l.v, entry_cmp);
    for (size_t i = 0; i < l.n; i++)
        ls_stat(args.dir, &l.v[i]);
    if (args.json)
        ls_print_json(&l);
    else
        ls_print_text(&l);
    ls_free(&l);
    return cli_finish(CLI_EXIT_OK);
}

/* ---- info ---------------------------------------------------------------- */

static const char info_usage[] = CLI_PROGRAM " info NAME [--dir DIR] [--json]";
/* clang-format off */
static const char info_help[] =
    "Print every counter of table NAME (gt_info) and, walking its guilds,\n"
    "the number of guilds and the " CLI_STR(INFO_TOP_GUILDS)
    " largest by members.\n\n"
    "  --dir DIR   directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --json      one JSON object instead of text\n";
/* clang-format on */

static void info_print_text(const struct inspect_args *a,
                            const gt_table_stat *s,
                            const cli_guild_list *top) {
    char h1[CLI_HUMAN_MAX], h2[CLI_HUMAN_MAX], h3[CLI_HUMAN_MAX],
        h4[CLI_HUMAN_MAX];
    printf("table             ");
    cli_text(stdout, a->name);
    printf("\nfile              ");
    cli_text(stdout, a->dir);
    printf("/" CLI_TABLE_PREFIX);
    cli_text(stdout, a->name);
    printf("\nformat version    %" PRIu32 "\n", s->version);
    printf("guilds            %" PRIu64 " of %" PRIu64 " (%" PRIu64
           " walked)\n",
           s->guilds, s->max_guilds, top->seen);
    printf("members           %" PRIu64 " of %" PRIu64 "\n", s->members,
           s->max_members);
    printf("payload size      %" PRIu32 " bytes\n", s->payload_size);
    printf("record bytes      %" PRIu64 "\n", s->record_bytes);
    printf("slots used        %" PRIu32 " of %" PRIu32 "\n", s->slots_used,
           s->max_slots);
    printf("bytes used        %" PRIu64 " (%s)\n", s->bytes_used,
           cli_human_bytes(s->bytes_used, h1));
    printf("bytes retired     %" PRIu64 " (%s)\n", s->bytes_retired,
           cli_human_bytes(s->bytes_retired, h2));
    printf("bytes resident    %" PRIu64 " (%s)\n", s->bytes_resident,
           cli_human_bytes(s->bytes_resident, h3));
    printf("bytes reserved    %" PRIu64 " (%s)\n", s->bytes_reserved,
           cli_human_bytes(s->bytes_reserved, h4));
    printf("bytes per member  %.1f\n", s->bytes_per_member);
    if (top->n == 0)
        return;
    printf("\nlargest guilds (%zu of %" PRIu64 "):\n", top->n, top->seen);
    cli_guild_list_text(top);
}

static void info_print_guilds_json(const cli_guild_list *top) {
    printf("  \"largest_guilds\": ");
    cli_guild_list_json(top, "  ");
    putchar('\n');
}

static void info_print_json(const struct inspect_args *a,
                            const gt_table_stat *s,
                            const cli_guild_list *top) {
    printf("{\n  \"name\": ");
    cli_json_string(stdout, a->name);
    printf(",\n  \"dir\": ");
    cli_json_string(stdout, a->dir);
    printf(",\n  \"version\": %" PRIu32 ",\n", s->version);
    printf("  \"guilds\": %" PRIu64 ",\n  \"max_guilds\": %" PRIu64 ",\n",
           s->guilds, s->max_guilds);
    printf("  \"members\": %" PRIu64 ",\n  \"max_members\": %" PRIu64 ",\n",
           s->members, s->max_members);
    printf("  \"payload_size\": %" PRIu32 ",\n  \"record_bytes\": %" PRIu64
           ",\n",
           s->payload_size, s->record_bytes);
    printf("  \"slots_used\": %" PRIu32 ",\n  \"max_slots\": %" PRIu32 ",\n",
           s->slots_used, s->max_slots);
    printf("  \"bytes_used\": %" PRIu64 ",\n  \"bytes_retired\": %" PRIu64
           ",\n",
           s->bytes_used, s->bytes_retired);
    printf("  \"bytes_resident\": %" PRIu64 ",\n  \"bytes_reserved\": %" PRIu64
           ",\n",
           s->bytes_resident, s->bytes_reserved);
    printf("  \"bytes_per_member\": %.3f,\n", s->bytes_per_member);
    printf("  \"guilds_walked\": %" PRIu64 ",\n", top->seen);
    info_print_guilds_json(top);
    printf("}\n");
}

int cmd_info(int argc, char **argv) {
    struct inspect_args args;
    int st = parse(argc, argv, info_usage, info_help, true, &args);
    if (st != CLI_RUN)
        return st;
    gt_table *t;
    int r = open_rdonly(args.dir, args.name, &t);
    if (r)
        return cli_fail(r, "info: open table %s", args.name);
    gt_table_stat s;
    cli_guild_list top = {0};
    if ((r = gt_info(t, &s)) == 0)
        r = cli_guild_list_read(t, INFO_TOP_GUILDS, &top);
    gt_close(t);
    if (r) {
        cli_guild_list_free(&top);
        return cli_fail(r, "info: read table %s", args.name);
    }
    if (args.json)
        info_print_json(&args, &s, &top);
    else
        info_print_text(&args, &s, &top);
    cli_guild_list_free(&top);
    return cli_finish(CLI_EXIT_OK);
}

/* ---- check ----------------------------------------------------------------- */

static const char check_usage[] = CLI_PROGRAM " check NAME [--dir DIR] [--json]";
static const char check_help[] =
    "Check table NAME for consistency: guild directory and headers, every\n"
    "guild's members, fanout sets, the heap, the retire list, slots and\n"
    "undo logs. Writers of the table wait while it runs; readers go on.\n"
    "Each violation is printed on its own line.\n\n"
    "  --dir DIR   directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --json      one JSON object: counts and the violations\n\n"
    "Exit status: 0 consistent, 3 violations found, 1 error, 2 bad "
    "arguments.\n";

struct violations {
    char **msg;
    size_t n, cap;
    bool json;
    cli_progress *bar;
};

static void on_violation(void *ctx, const char *what) {
    struct violations *v = ctx;
    if (!v->json) {
        cli_progress_clear(v->bar);
        printf("violation: ");
        cli_text(stdout, what);
        putchar('\n');
        return;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        char **m = realloc(v->msg, cap * sizeof *m);
        if (!m)
            return; /* counted by the library all the same */
        v->msg = m;
        v->cap = cap;
    }
    if ((v->msg[v->n] = strdup(what)))
        v->n++;
}

int cmd_check(int argc, char **argv) {
    struct inspect_args args;
    int st = parse(argc, argv, check_usage, check_help, true, &args);
    if (st != CLI_RUN)
        return st;
    gt_table *t;
    gt_options o = {.dir = args.dir};
    int r = gt_open(args.name, &o, &t); /* recovery may need to write */
    if (r)
        return cli_fail(r, "check: open table %s", args.name);
    cli_progress bar;
    cli_progress_init(&bar, "check", "members");
    struct violations v = {.json = args.json, .bar = &bar};
    gt_check_report rep = {.fn = on_violation, .ctx = &v,
                           .progress = cli_progress_step, .progress_ctx = &bar};
    r = gt_check(t, &rep);
    cli_progress_end(&bar);
    gt_close(t);
    if (r && r != GT_ECORRUPT) {
        for (size_t i = 0; i < v.n; i++)
            free(v.msg[i]);
        free(v.msg);
        return cli_fail(r, "check: table %s", args.name);
    }
    if (args.json) {
        printf("{\"table\": ");
        cli_json_string(stdout, args.name);
        printf(", \"consistent\": %s, \"violations\": %llu, \"guilds\": %llu, "
               "\"members\": %llu, \"blocks\": %llu, \"messages\": [",
               rep.violations ? "false" : "true",
               (unsigned long long)rep.violations,
               (unsigned long long)rep.guilds, (unsigned long long)rep.members,
               (unsigned long long)rep.blocks);
        for (size_t i = 0; i < v.n; i++) {
            printf(i ? ", " : "");
            cli_json_string(stdout, v.msg[i]);
            free(v.msg[i]);
        }
        printf("]}\n");
    } else if (rep.violations) {
        printf("%s: %llu violations (%llu guilds, %llu members, %llu heap "
               "blocks checked)\n", args.name,
               (unsigned long long)rep.violations, (unsigned long long)rep.guilds,
               (unsigned long long)rep.members, (unsigned long long)rep.blocks);
    } else {
        printf("%s: consistent (%llu guilds, %llu members, %llu heap blocks)\n",
               args.name, (unsigned long long)rep.guilds,
               (unsigned long long)rep.members, (unsigned long long)rep.blocks);
    }
    free(v.msg);
    return cli_finish(rep.violations ? CLI_EXIT_VIOLATIONS : CLI_EXIT_OK);
}
