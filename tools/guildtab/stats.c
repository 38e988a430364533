/*
 * stats.c - `guildtab stats NAME [--watch]`: the counters the library keeps
 * in the table (gt_stats_read), once, or like top: redrawn every interval
 * with per-second rates, until interrupted or --count readings were shown.
 */
#include "cli.h"

#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

enum { OPT_DIR = 1, OPT_JSON, OPT_WATCH, OPT_INTERVAL, OPT_COUNT };

static const cli_option stats_options[] = {
    {"dir", true, OPT_DIR},
    {"json", false, OPT_JSON},
    {"watch", false, OPT_WATCH},
    {"interval", true, OPT_INTERVAL},
    {"count", true, OPT_COUNT},
    {NULL, false, 0},
};

static const char stats_usage[] =
    CLI_PROGRAM " stats NAME [--watch] [--interval MS] [--count N] [--dir DIR] "
                "[--json]";
static const char stats_help[] =
    "Print the counters table NAME keeps of what every process did to it:\n"
    "operations by kind, fanout recipients, read waits (reads that met a\n"
    "record mid-write), lock waits (writes that waited for another writer),\n"
    "recoveries of dead writers' writes, and the fanout latency histogram\n"
    "(one fanout in 8 is timed). Lookups are counted in per-thread batches of\n"
    "256, so the last few of a thread show up late.\n\n"
    "  --watch         redraw every interval with per-second rates, until\n"
    "                  interrupted (Ctrl-C)\n"
    "  --interval MS   time between readings (default 1000)\n"
    "  --count N       stop after N readings (with --watch)\n"
    "  --dir DIR       directory of the table (default " CLI_DEFAULT_DIR ")\n"
    "  --json          one JSON object per reading (one per line)\n";

#define NS_PER_S 1e9

#define NROWS 11
static const char *const row_names[NROWS] = {
    "lookups", "inserts", "deletes", "updates", "guild_deletes", "scans",
    "fanouts", "recipients", "read_waits", "lock_waits", "recoveries",
};
static void rows_of(const gt_stats *s, uint64_t v[NROWS]) {
    const uint64_t x[NROWS] = {s->lookups,   s->inserts,      s->deletes,
                               s->updates,   s->guild_deletes, s->scans,
                               s->fanouts,   s->recipients,   s->read_waits,
                               s->lock_waits, s->recoveries};
    for (int i = 0; i < NROWS; i++)
        v[i] = x[i];
}

/* Upper bound in microseconds of histogram bucket b ("<1", "<2", ...). */
static uint64_t bucket_us(int b) {
    return 1ull << b;
}

/* The bucket holding quantile q of the timed fanouts, or -1. */
static int quantile(const gt_stats *s, double q) {
    if (!s->fanouts_timed)
        return -1;
    uint64_t seen = 0, want = (uint64_t)((double)s->fanouts_timed * q);
    for (int b = 0; b < GT_STATS_BUCKETS; b++) {
        seen += s->fanout_us_log2[b];
        if (seen > want)
            return b;
    }
    return GT_STATS_BUCKETS - 1;
}

static void print_quantile(const char *label, int b) {
    if (b < 0)
        printf("  %s -", label);
    else if (b == GT_STATS_BUCKETS - 1)
        printf("  %s >=%" PRIu64 " us", label, bucket_us(b - 1));
    else
        printf("  %s <%" PRIu64 " us", label, bucket_us(b));
}

static void print_text(const char *name, const gt_stats *s, const gt_stats *prev,
                       double secs) {
    uint64_t v[NROWS], p[NROWS];
    rows_of(s, v);
    if (prev)
        rows_of(prev, p);
    printf("table ");
    cli_text(stdout, name);
    printf("\n%-14s %20s%s\n", "COUNTER", "TOTAL", prev ? "          PER_SEC" : "");
    for (int i = 0; i < NROWS; i++) {
        printf("%-14s %20" PRIu64, row_names[i], v[i]);
        if (prev)
            printf(" %16.1f", secs > 0 ? (double)(v[i] - p[i]) / secs : 0.0);
        putchar('\n');
    }
    printf("fanout latency (%" PRIu64 " timed):", s->fanouts_timed);
    print_quantile("p50", quantile(s, 0.5));
    print_quantile("p99", quantile(s, 0.99));
    printf("\n");
    for (int b = 0; b < GT_STATS_BUCKETS; b++) {
        if (!s->fanout_us_log2[b])
            continue;
        char label[32];
        snprintf(label, sizeof label, "%s%" PRIu64 " us",
                 b == GT_STATS_BUCKETS - 1 ? ">=" : "<",
                 bucket_us(b == GT_STATS_BUCKETS - 1 ? b - 1 : b));
        printf("  %12s %12" PRIu64 "\n", label, s->fanout_us_log2[b]);
    }
}

static void print_json(const char *name, const gt_stats *s, const gt_stats *prev,
                       double secs) {
    uint64_t v[NROWS], p[NROWS];
    rows_of(s, v);
    if (prev)
        rows_of(prev, p);
    printf("{\"table\": ");
    cli_json_string(stdout, name);
    for (int i = 0; i < NROWS; i++)
        printf(", \"%s\": %" PRIu64, row_names[i], v[i]);
    if (prev) {
        printf(", \"seconds\": %.3f, \"per_sec\": {", secs);
        for (int i = 0; i < NROWS; i++)
            printf("%s\"%s\": %.1f", i ? ", " : "", row_names[i],
                   secs > 0 ? (double)(v[i] - p[i]) / secs : 0.0);
        printf("}");
    }
    printf(", \"fanouts_timed\": %" PRIu64 ", \"fanout_us_log2\": [",
           s->fanouts_timed);
    for (int b = 0; b < GT_STATS_BUCKETS; b++)
        printf("%s%" PRIu64, b ? ", " : "", s->fanout_us_log2[b]);
    printf("]}\n");
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / NS_PER_S;
}

int cmd_stats(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, argc, argv, stats_usage, stats_options);
    const char *dir = CLI_DEFAULT_DIR, *name = NULL, *v;
    bool json = false, watch = false;
    uint64_t interval_ms = 1000, count = 0;
    for (int id; (id = cli_next(&a, &v)) != CLI_ARG_END;) {
        switch (id) {
        case CLI_ARG_HELP:
            return cli_help(&a, stats_help);
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
        case OPT_WATCH:
            watch = true;
            break;
        case OPT_INTERVAL:
            if (!cli_u64(&a, "--interval", v, 10, 3600000, &interval_ms))
                return CLI_EXIT_USAGE;
            break;
        case OPT_COUNT:
            if (!cli_u64(&a, "--count", v, 1, UINT32_MAX, &count))
                return CLI_EXIT_USAGE;
            break;
        }
    }
    if (!name)
        return cli_usage_error(&a, "missing table NAME");
    if (count && !watch)
        return cli_usage_error(&a, "--count goes with --watch");
    gt_table *t;
    gt_options o = {.dir = dir, .flags = GT_RDONLY};
    int r = gt_open(name, &o, &t);
    if (r)
        return cli_fail(r, "stats: open table %s", name);
    bool tty = isatty(STDOUT_FILENO) == 1 && !json;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    gt_stats prev, cur;
    double tprev = now_s();
    r = gt_stats_read(t, &prev);
    for (uint64_t n = 0; r == 0 && !stop;) {
        if (!watch) {
            (json ? print_json : print_text)(name, &prev, NULL, 0);
            break;
        }
        struct timespec ts = {(time_t)(interval_ms / 1000),
                              (long)(interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a signal ends it early: then we stop */
        if (stop)
            break;
        double tnow = now_s();
        if ((r = gt_stats_read(t, &cur)))
            break;
        if (tty)
            printf("\033[H\033[J"); /* like top: redraw in place */
        else if (n && !json)
            putchar('\n');
        (json ? print_json : print_text)(name, &cur, &prev, tnow - tprev);
        fflush(stdout);
        prev = cur;
        tprev = tnow;
        if (count && ++n >= count)
            break;
    }
    gt_close(t);
    if (r)
        return cli_fail(r, "stats: table %s", name);
    return cli_finish(CLI_EXIT_OK);
}
