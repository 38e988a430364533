/*
 * args.c - the subcommands' argument parser and strict number parsing.
 *
 * Numbers are validated strictly: strtoull alone accepts leading spaces, a
 * sign ("-1" wraps to 2^64-1) and trailing junk, so the text must be all
 * decimal digits before strtoull sees it, and must be consumed whole.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_args_init(cli_args *a, int argc, char **argv, const char *usage,
                   const cli_option *options) {
    *a = (cli_args){
        .argc = argc,
        .argv = argv,
        .next = 1,
        .command = argv[0],
        .usage = usage,
        .options = options,
    };
}

static const cli_option *find_option(const cli_args *a, const char *name,
                                     size_t len) {
    for (const cli_option *o = a->options; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* arg is "--name" or "--name=value". */
static int long_option(cli_args *a, const char *arg, const char **value) {
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_option *o = find_option(a, name, len);
    if (!o) {
        cli_usage_error(a, "unknown option '%s'", arg);
        return CLI_ARG_BAD;
    }
    if (!o->takes_value) {
        if (eq) {
            cli_usage_error(a, "option --%s takes no value", o->name);
            return CLI_ARG_BAD;
        }
        return o->id;
    }
    if (eq) {
        *value = eq + 1;
    } else if (a->next < a->argc) {
        *value = a->argv[a->next++];
    } else {
        cli_usage_error(a, "option --%s needs a value", o->name);
        return CLI_ARG_BAD;
    }
    return o->id;
}

int cli_next(cli_args *a, const char **value) {
    *value = NULL;
    while (a->next < a->argc) {
        const char *arg = a->argv[a->next++];
        /* "-" alone is an ordinary word, as in most tools */
        if (a->options_done || arg[0] != '-' || arg[1] == '\0') {
            *value = arg;
            return CLI_ARG_POSITIONAL;
        }
        if (strcmp(arg, "--") == 0) {
            a->options_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return CLI_ARG_HELP;
        if (arg[1] != '-') {
            cli_usage_error(a, "unknown option '%s'", arg);
            return CLI_ARG_BAD;
        }
        return long_option(a, arg, value);
    }
    return CLI_ARG_END;
}

/* strtoull's range is exactly uint64_t's, so ERANGE is the overflow check */
_Static_assert(ULLONG_MAX == UINT64_MAX, "unsigned long long is 64 bits");

bool cli_u64(const cli_args *a, const char *opt, const char *text, uint64_t min,
             uint64_t max, uint64_t *out) {
    bool digits = text[0] != '\0';
    for (const char *c = text; *c && digits; c++)
        digits = *c >= '0' && *c <= '9';
    unsigned long long v = 0;
    if (digits) {
        char *end = NULL;
        errno = 0;
        v = strtoull(text, &end, 10);
        digits = errno == 0 && *end == '\0';
    }
    if (!digits || v < min || v > max) {
        cli_usage_error(a,
                        "%s: expected a whole number from %llu to %llu, "
                        "got '%s'",
                        opt, (unsigned long long)min, (unsigned long long)max,
                        text);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

bool cli_u32(const cli_args *a, const char *opt, const char *text, uint32_t min,
             uint32_t max, uint32_t *out) {
    uint64_t v;
    if (!cli_u64(a, opt, text, min, max, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

int cli_usage_error(const cli_args *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, CLI_PROGRAM ": %s: ", a->command);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", a->usage);
    return CLI_EXIT_USAGE;
}

int cli_help(const cli_args *a, const char *help) {
    printf("usage: %s\n\n%s", a->usage, help);
    return cli_finish(CLI_EXIT_OK);
}
