/*
 * main.c - the guildtab command: dispatch to a subcommand, top-level usage
 * and --version. Exit codes are the contract of cli.h: 0 success, 1 the
 * library or system refused, 2 bad arguments.
 */
#include "cli.h"

#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"ls", cmd_ls, "list the tables in a directory"},
    {"info", cmd_info, "counters of one table and its largest guilds"},
    {"dump", cmd_dump, "print the members of one guild"},
    {"guilds", cmd_guilds, "list the guilds of a table, largest first"},
    {"get", cmd_get, "print one member"},
    {"check", cmd_check, "check a table for consistency"},
    {"stats", cmd_stats, "counters of what is done to a table; --watch: live"},
    {"readers", cmd_readers, "list the thread slots of a table; reap dead ones"},
    {"snapshot", cmd_snapshot, "write a table or guild to a snapshot file"},
    {"restore", cmd_restore, "build a table (or add a guild) from a snapshot"},
    {"rm", cmd_rm, "remove tables"},
    {"demo", cmd_demo,
     "load a big guild, run readers, a writer and a sender on it; report"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: " CLI_PROGRAM " COMMAND [OPTIONS]\n"
               "       " CLI_PROGRAM " --help | --version\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(
        f,
        "\nEvery command takes --help and --dir DIR (default " CLI_DEFAULT_DIR
        ").\n"
        "Exit status: 0 success, 1 error, 2 bad arguments (check: 3 when it\n"
        "finds violations).\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return cli_finish(CLI_EXIT_OK);
    }
    if (strcmp(cmd, "--version") == 0) {
        printf(CLI_PROGRAM " %s\n", gt_version_string());
        return cli_finish(CLI_EXIT_OK);
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, CLI_PROGRAM ": unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
