/*
 * progress.c - a progress bar on stderr for the long commands (snapshot,
 * restore): drawn only when stderr is a terminal, and only once the work
 * has lasted PROGRESS_DELAY_NS, so quick runs and logs stay clean.
 * cli_progress_step has the gt_progress_fn signature.
 */
#include "cli.h"

#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_DELAY_NS 1000000000ull /* nothing drawn in the first second */
#define PROGRESS_WIDTH 30                /* characters of the bar */
#define NS_PER_S 1000000000ull

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

void cli_progress_init(cli_progress *p, const char *what) {
    *p = (cli_progress){.what = what, .start_ns = now_ns(),
                        .tty = isatty(STDERR_FILENO) == 1};
}

int cli_progress_step(void *ctx, uint64_t done, uint64_t total) {
    cli_progress *p = ctx;
    p->done = done;
    p->total = total;
    if (!p->tty || now_ns() - p->start_ns < PROGRESS_DELAY_NS)
        return 0;
    p->drawn = true;
    if (total == 0 || done > total) { /* total unknown: a count only */
        fprintf(stderr, "\r%s: %" PRIu64 " records", p->what, done);
        return 0;
    }
    int fill = (int)(done * PROGRESS_WIDTH / total);
    fprintf(stderr, "\r%s: [%.*s%*s] %3d%% %" PRIu64 "/%" PRIu64 " records",
            p->what, fill, "##############################",
            PROGRESS_WIDTH - fill, "", (int)(done * 100 / total), done, total);
    return 0;
}

double cli_progress_end(cli_progress *p) {
    if (p->drawn)
        fputc('\n', stderr);
    return (double)(now_ns() - p->start_ns) / (double)NS_PER_S;
}
