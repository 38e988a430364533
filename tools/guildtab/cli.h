/*
 * cli.h - what the guildtab subcommands share: exit codes, the argument
 * parser, error reporting and small output helpers.
 *
 * The tool uses only the public API (guildtab.h). Every subcommand follows
 * one contract: exit 0 on success, 1 when the library or the system refused
 * (message "guildtab: <what>: <gt_strerror(err)>" on stderr), 2 for bad
 * arguments (a message and the usage line on stderr). --help prints the
 * usage and the options on stdout and exits 0.
 */
#ifndef GUILDTAB_CLI_H
#define GUILDTAB_CLI_H

#include <guildtab.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* printf-style checking where the compiler has it; nothing otherwise. */
#if defined(__GNUC__)
#define CLI_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CLI_PRINTF(fmt, args)
#endif

/* A macro's value as a string literal, for help texts. */
#define CLI_STR(x) CLI_STR_(x)
#define CLI_STR_(x) #x

#define CLI_PROGRAM "guildtab"
/* gt_open documents the file of table NAME as <dir>/guildtab.<NAME>. */
#define CLI_TABLE_PREFIX "guildtab."
#define CLI_DEFAULT_DIR "/dev/shm"

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_ERROR = 1, /* the library or the system refused */
    CLI_EXIT_USAGE = 2, /* bad arguments */
    CLI_EXIT_VIOLATIONS = 3, /* check: the table is not consistent */
    /* Not an exit code: a parser's "arguments are fine, run the command".
     * Parsers return it or the exit code to leave with (help, usage). */
    CLI_RUN = -1,
};

/* ---- argument parsing ----------------------------------------------------
 * Options are long only ("--name VALUE" or "--name=VALUE") and may come
 * before, between or after the positional arguments; "--" ends them. This
 * is done by hand rather than with getopt_long so that option permutation
 * behaves the same on every libc. */

typedef struct cli_option {
    const char *name; /* without the leading "--"; NULL ends a table */
    bool takes_value;
    int id; /* > 0: what cli_next returns for it */
} cli_option;

/* What cli_next returns besides option ids. */
enum {
    CLI_ARG_END = 0,         /* no arguments left */
    CLI_ARG_POSITIONAL = -1, /* *value is the argument */
    CLI_ARG_HELP = -2,       /* --help or -h */
    CLI_ARG_BAD = -3,        /* reported on stderr with the usage line */
};

typedef struct cli_args {
    int argc;
    char **argv;         /* argv[0] is the subcommand */
    int next;            /* index of the next argument to read */
    bool options_done;   /* "--" seen: the rest are positional */
    const char *command; /* "info", for messages */
    const char *usage;   /* one line, printed after usage errors */
    const cli_option *options;
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv, const char *usage,
                   const cli_option *options);
/* The next argument: an option id, or one of the CLI_ARG_* values. For an
 * option taking a value, *value receives it. */
int cli_next(cli_args *a, const char **value);

/* Strict decimal: digits only (no sign, space or base prefix), the whole
 * string, no overflow, min <= value <= max. On failure prints a usage error
 * naming opt and returns false. */
bool cli_u64(const cli_args *a, const char *opt, const char *text, uint64_t min,
             uint64_t max, uint64_t *out);
bool cli_u32(const cli_args *a, const char *opt, const char *text, uint32_t min,
             uint32_t max, uint32_t *out);

/* Print "guildtab: <command>: <message>" and the usage line on stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli_args *a, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Print the usage line and help text on stdout; returns CLI_EXIT_OK. */
int cli_help(const cli_args *a, const char *help);

/* ---- errors and output --------------------------------------------------- */

/* Print "guildtab: <what>: <gt_strerror(err)>" on stderr; returns
 * CLI_EXIT_ERROR. err is a GT_E* code or -errno. */
int cli_fail(int err, const char *fmt, ...) CLI_PRINTF(2, 3);
/* The same for a system call's errno (positive), with strerror's text:
 * gt_strerror(-ENOENT) speaks of tables, wrong for a missing directory. */
int cli_fail_errno(int errnum, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Flush stdout; a write error (full disk, closed pipe) turns status into
 * CLI_EXIT_ERROR with a message. Every command ends with it. */
int cli_finish(int status);

/* A JSON string literal for s (quotes included). Bytes that are not
 * printable ASCII are written as \u00XX, i.e. read as Latin-1, so that any
 * file name gives valid JSON. */
void cli_json_string(FILE *f, const char *s);
/* s for a terminal: bytes that are not printable ASCII become '?', one for
 * one, so strlen(s) is its width. */
void cli_text(FILE *f, const char *s);
/* n bytes as lowercase hex, most significant nibble first. */
void cli_hex(FILE *f, const void *bytes, size_t n);

/* Size in the largest binary unit below 1024 ("1.5 MiB"), written into buf
 * (CLI_HUMAN_MAX bytes, always terminated); returns buf. */
#define CLI_HUMAN_MAX 32u
const char *cli_human_bytes(uint64_t bytes, char buf[CLI_HUMAN_MAX]);
/* Digits of v in decimal, for column widths. */
int cli_digits(uint64_t v);

/* ---- progress --------------------------------------------------------------
 * A bar on stderr, drawn only on a terminal and only after the first second
 * (GUILDTAB_PROGRESS_DELAY_MS). Pass cli_progress_step as a gt_progress_fn
 * with the cli_progress as ctx. */
typedef struct cli_progress {
    const char *what; /* "snapshot" */
    const char *unit; /* "members" */
    uint64_t start_ns, delay_ns, done, total;
    bool tty, drawn;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *what, const char *unit);
int cli_progress_step(void *ctx, uint64_t done, uint64_t total);
/* Erase the bar before printing other lines on the terminal. */
void cli_progress_clear(cli_progress *p);
/* Ends the bar's line if one was drawn; returns the seconds since init. */
double cli_progress_end(cli_progress *p);

/* ---- guild lists (guilds.c) ------------------------------------------------
 * A walk of a table's guilds, largest first (most members, then lowest id).
 * keep: only the K largest (K entries of memory), 0: all. seen counts every
 * guild walked. */
typedef struct cli_guild_list {
    gt_guild_stat *v;
    size_t n, cap, keep;
    uint64_t seen;
} cli_guild_list;
/* 0, GT_ENOMEM or gt_guilds' error; free the list in every case. */
int cli_guild_list_read(gt_table *t, size_t keep, cli_guild_list *l);
void cli_guild_list_free(cli_guild_list *l);
/* A header line and a line per guild. */
void cli_guild_list_text(const cli_guild_list *l);
/* A JSON array of objects, its lines indented by indent, no newline after. */
void cli_guild_list_json(const cli_guild_list *l, const char *indent);

/* ---- subcommands ---------------------------------------------------------
 * argv[0] is the subcommand's name; each returns the exit code. */
int cmd_ls(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_guilds(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_readers(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
