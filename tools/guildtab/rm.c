/*
 * rm.c - `guildtab rm NAME...`: remove tables (gt_unlink). Processes that
 * have a table open keep using it; its memory is freed when the last one
 * closes it. Every name is tried; the exit status is 1 if any failed.
 */
#include "cli.h"

#include <stdlib.h>

enum { OPT_DIR = 1 };

static const cli_option rm_options[] = {
    {"dir", true, OPT_DIR},
    {NULL, false, 0},
};

static const char rm_usage[] = CLI_PROGRAM " rm NAME... [--dir DIR]";
static const char rm_help[] =
    "Remove the tables NAME... from DIR. Processes that have one open go on\n"
    "using it; its memory is freed when the last of them closes it.\n\n"
    "  --dir DIR   directory of the tables (default " CLI_DEFAULT_DIR ")\n";

int cmd_rm(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, rm_usage, rm_options);
    const char *dir = CLI_DEFAULT_DIR, *v;
    /* options may follow the names: collect the names first */
    const char **names = calloc((size_t)argc, sizeof *names);
    if (!names)
        return cli_fail(GT_ENOMEM, "rm");
    int n = 0, status = CLI_RUN;
    for (int id; status == CLI_RUN && (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        if (id == CLI_ARG_HELP)
            status = cli_help(&a, rm_help);
        else if (id == CLI_ARG_BAD)
            status = CLI_EXIT_USAGE;
        else if (id == OPT_DIR)
            dir = v;
        else
            names[n++] = v;
    }
    if (status == CLI_RUN && n == 0)
        status = cli_usage_error(&a, "missing table NAME");
    if (status == CLI_RUN) {
        status = CLI_EXIT_OK;
        for (int i = 0; i < n; i++) {
            int r = gt_unlink(names[i], dir);
            if (r)
                status = cli_fail(r, "rm: table %s", names[i]);
        }
        status = cli_finish(status);
    }
    free(names);
    return status;
}
