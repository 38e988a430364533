/*
 * progress.c - a progress bar on stderr for the long commands (snapshot,
 * restore, check, dump): drawn only when stderr is a terminal, and only
 * once the work has lasted a second (GUILDTAB_PROGRESS_DELAY_MS changes
 * that; tests set 0), so quick runs and logs stay clean.
 * cli_progress_step has the gt_progress_fn signature.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_DELAY_MS 1000u /* nothing drawn in the first second */
#define PROGRESS_DELAY_MAX_MS 3600000u
#define PROGRESS_WIDTH 30 /* characters of the bar */
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* GUILDTAB_PROGRESS_DELAY_MS if it is a whole number in range, else the
 * default. */
static uint64_t delay_ns(void) {
    const char *e = getenv("GUILDTAB_PROGRESS_DELAY_MS");
    if (!e || !*e)
        return PROGRESS_DELAY_MS * NS_PER_MS;
    uint64_t v = 0;
    for (const char *c = e; *c; c++) {
        if (*c < '0' || *c > '9' || v > PROGRESS_DELAY_MAX_MS)
            return PROGRESS_DELAY_MS * NS_PER_MS;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    return (v > PROGRESS_DELAY_MAX_MS ? PROGRESS_DELAY_MS : v) * NS_PER_MS;
}

void cli_progress_init(cli_progress *p, const char *what, const char *unit) {
    *p = (cli_progress){.what = what, .unit = unit, .start_ns = now_ns(),
                        .delay_ns = delay_ns(),
                        .tty = isatty(STDERR_FILENO) == 1};
}

int cli_progress_step(void *ctx, uint64_t done, uint64_t total) {
    cli_progress *p = ctx;
    p->done = done;
    p->total = total;
    if (!p->tty || now_ns() - p->start_ns < p->delay_ns)
        return 0;
    p->drawn = true;
    if (total == 0 || done > total) { /* total unknown: a count only */
        fprintf(stderr, "\r%s: %" PRIu64 " %s", p->what, done, p->unit);
        return 0;
    }
    int fill = (int)(done * PROGRESS_WIDTH / total);
    fprintf(stderr, "\r%s: [%.*s%*s] %3d%% %" PRIu64 "/%" PRIu64 " %s",
            p->what, fill, "##############################",
            PROGRESS_WIDTH - fill, "", (int)(done * 100 / total), done, total,
            p->unit);
    return 0;
}

void cli_progress_clear(cli_progress *p) {
    if (p->drawn)
        fputs("\r\033[K", stderr); /* the line is redrawn at the next step */
    p->drawn = false;
}

double cli_progress_end(cli_progress *p) {
    if (p->drawn)
        fputc('\n', stderr);
    p->drawn = false;
    return (double)(now_ns() - p->start_ns) / (double)NS_PER_S;
}
