/*
 * hotpath.c - the cost of the hot operations through the public API, to
 * compare two builds of the library (run it with LD_LIBRARY_PATH pointing
 * at each): one guild of 1M members, 10% active; random independent
 * lookups, random presence flips (gt_update_flags), and fanouts of the
 * active members, three rounds each.
 *
 * Usage: hotpath [ROUNDS]   (default 3)
 * Used for the statistics' overhead in README: interleave runs of the two
 * builds on one core (taskset -c 1) and compare minima and medians.
 */
#include <guildtab.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define N 1000000u
#define LOOKUPS 5000000u
#define FLIPS 2000000u
#define FANOUTS 300u

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int take(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)w, (void)r;
    *(uint64_t *)ctx += n;
    return 0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    char name[64];
    snprintf(name, sizeof name, "bench-hotpath-%d", (int)getpid());
    gt_options o = {.max_members = N + N / 4, .max_guilds = 16,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    int r = gt_open(name, &o, &t);
    if (r == 0)
        r = gt_guild_reserve(t, 1, N);
    for (uint64_t i = 0; r == 0 && i < N; i++) {
        gt_member m = {.user_id = mix(i), .session_id = i,
                       .worker = (uint32_t)(i % 16),
                       .flags = GT_ONLINE | (i % 10 == 0 ? GT_ACTIVE : 0)};
        r = gt_insert(t, 1, &m, NULL);
    }
    if (r) {
        fprintf(stderr, "hotpath: %s\n", gt_strerror(r));
        return 1;
    }
    printf("%s: 1M members, 10%% active\n", gt_version_string());
    for (int round = 0; round < rounds; round++) {
        uint64_t rng = (uint64_t)round * 7 + 1, hits = 0, got = 0;
        double a = now();
        for (uint32_t i = 0; i < LOOKUPS; i++) {
            rng = mix(rng);
            gt_member m;
            hits += gt_lookup(t, 1, mix(rng % N), &m, NULL) == 0;
        }
        double b = now();
        for (uint32_t i = 0; i < FLIPS; i++) {
            rng = mix(rng);
            bool on = (rng >> 40) & 1;
            gt_update_flags(t, 1, mix(rng % N), on ? GT_ONLINE : 0,
                            on ? 0 : GT_ONLINE, NULL);
        }
        double c = now();
        gt_filter active = {.flags_set = GT_ACTIVE};
        for (uint32_t i = 0; i < FANOUTS; i++)
            gt_fanout(t, 1, &active, 0, 1, take, &got);
        double d = now();
        if (hits != LOOKUPS || got != (uint64_t)FANOUTS * N / 10) {
            fprintf(stderr, "hotpath: wrong results\n");
            return 1;
        }
        printf("lookup %.1f ns  update_flags %.1f ns  fanout %.3f ms\n",
               (b - a) / LOOKUPS * 1e9, (c - b) / FLIPS * 1e9,
               (d - c) / FANOUTS * 1e3);
    }
    gt_close(t);
    gt_unlink(name, NULL);
    return 0;
}
