/*
 * fuzz_segment.c - libFuzzer target: a damaged table file must give error
 * codes, never a crash, from gt_open, gt_check and every read.
 *
 * A small table is built once (three guilds, members active and not, a
 * deleted guild, grown and shrunk storage) and kept as the pristine image.
 * Each input is a list of patches, [u32 where][u8 len][len bytes], laid over
 * a copy of it: `where` indexes the concatenation of the regions that hold
 * state (header, global log, retire list, slots, guild headers, directory,
 * heap meta, the heap blocks in use). Lock words are left alone: a robust
 * mutex whose bytes say "held by a live thread" makes any locker wait, in
 * any process-shared mutex design (LMDB's included); that is a hang by
 * construction, not a bug to find.
 *
 * Then: gt_open (any error is fine), gt_check, and on each guild id the
 * table might hold: lookups, select, select_count, fanout, a cursor walk,
 * guild info; gt_info and gt_guilds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct region {
    uint64_t off, len;
};
static struct region regions[64];
static size_t nregions;
static uint64_t span;
static uint8_t *pristine;
static uint64_t file_size;
static char dir[64], path[128];
static const char *name = "fuzz";

static void add_region(uint64_t off, uint64_t len) {
    if (len && nregions < sizeof regions / sizeof regions[0]) {
        regions[nregions++] = (struct region){off, len};
        span += len;
    }
}

/* The regions of the header struct minus its lock: before and after it. */
static void add_around(uint64_t off, uint64_t len, uint64_t hole,
                       uint64_t hole_len) {
    add_region(off, hole - off);
    add_region(hole + hole_len, off + len - (hole + hole_len));
}

static int no_visit(void *c, const gt_member *m, const void *p) {
    (void)c, (void)m, (void)p;
    return 0;
}
static int no_batch(void *c, uint32_t w, const gt_recipient *r, size_t n) {
    (void)c, (void)w, (void)r, (void)n;
    return 0;
}
static int no_guild(void *c, const gt_guild_stat *g) {
    (void)c, (void)g;
    return 0;
}

static void build(void) {
    snprintf(dir, sizeof dir, "/dev/shm/gt-fuzz-%d", (int)getpid());
    mkdir(dir, 0700);
    gt_options o = {.dir = dir, .max_members = 400, .max_guilds = 8,
                    .max_slots = 4, .payload_size = 8,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    if (gt_open(name, &o, &t)) {
        fprintf(stderr, "fuzz_segment: cannot build the pristine table\n");
        exit(1);
    }
    for (uint64_t g = 1; g <= 4; g++)
        for (uint64_t u = 0; u < 40 * g; u++) {
            gt_member m = {.user_id = u * 7 + g, .session_id = u,
                           .worker = (uint32_t)(u % 3),
                           .flags = GT_ONLINE | (u % 3 ? 0 : GT_ACTIVE),
                           .roles = {u}};
            gt_insert(t, g, &m, &u);
        }
    for (uint64_t u = 0; u < 100; u += 2)
        gt_delete(t, 3, u * 7 + 3);
    gt_guild_delete(t, 2);
    gt_update_flags(t, 4, 11, GT_ACTIVE, 0, NULL);
    struct gt_seg *s = t->seg;
    const struct gt_geom *g = &s->g;
    add_around(0, sizeof *s, offsetof(struct gt_seg, lock),
               sizeof(pthread_mutex_t));
    add_region(g->glog_off, gt_log_size(GT_GLOBAL_LOG_ENTRIES, 0) + 512);
    add_region(g->retire_off, 256);
    add_region(g->slots_off, (uint64_t)g->max_slots * g->slot_size);
    for (uint32_t i = 0; i < g->max_guilds; i++)
        add_region(g->guilds_off + (uint64_t)i * sizeof(struct gt_guild),
                   offsetof(struct gt_guild, lock));
    add_region(g->dir_off, (uint64_t)g->dir_cap * sizeof(struct gt_dirent));
    add_region(g->meta_off, g->heap_size >> GT_HEAP_MIN_ORDER);
    for (uint64_t i = 0; i < s->guild_hw; i++) {
        struct gt_guild *gg = gt_guild_at(t, (uint32_t)i);
        if (LOAD(&gg->store_off, relaxed))
            add_region(LOAD(&gg->store_off, relaxed),
                       LOAD(&gg->store_bytes, relaxed));
        if (LOAD(&gg->act_off, relaxed))
            add_region(LOAD(&gg->act_off, relaxed), LOAD(&gg->act_bytes, relaxed));
    }
    file_size = g->file_size;
    gt_close(t);
    snprintf(path, sizeof path, "%s/guildtab.%s", dir, name);
    pristine = malloc(file_size);
    int fd = open(path, O_RDONLY);
    if (!pristine || fd < 0 || pread(fd, pristine, file_size, 0) != (ssize_t)file_size) {
        fprintf(stderr, "fuzz_segment: cannot read the pristine table\n");
        exit(1);
    }
    close(fd);
}

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    build();
    atexit(cleanup);
    return 0;
}

static void exercise(gt_table *t) {
    gt_check_report rep = {0};
    gt_check(t, &rep);
    gt_table_stat ts;
    gt_info(t, &ts);
    gt_guilds(t, no_guild, NULL);
    for (uint64_t g = 0; g <= 5; g++) {
        gt_member m;
        uint8_t pay[8];
        for (uint64_t u = 0; u < 200; u += 13)
            gt_lookup(t, g, u * 7 + g, &m, pay);
        gt_select(t, g, NULL, 0, 1, no_visit, NULL);
        gt_select(t, g, &(gt_filter){.flags_set = GT_ACTIVE}, 1, 3, no_visit,
                  NULL);
        uint64_t c;
        gt_select_count(t, g, &(gt_filter){.roles_any = {1}}, 0, 1, &c);
        gt_fanout(t, g, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1, no_batch,
                  NULL);
        gt_fanout(t, g, NULL, 0, 2, no_batch, NULL);
        gt_guild_stat st;
        gt_guild_info(t, g, &st);
        gt_cursor cur;
        gt_member page[16];
        uint8_t pays[16 * 8];
        size_t n;
        int r = gt_iter_first(t, g, NULL, &cur, page, pays, 16, &n);
        for (int i = 0; r == 0 && n && i < 100; i++)
            r = gt_iter_next(t, &cur, NULL, page, pays, 16, &n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *img = malloc(file_size);
    if (!img)
        return 0;
    memcpy(img, pristine, file_size);
    while (size >= 5) {
        uint32_t where;
        memcpy(&where, data, 4);
        size_t len = data[4];
        data += 5, size -= 5;
        if (len > size)
            len = size;
        uint64_t at = where % span;
        for (size_t i = 0; i < nregions; i++) {
            if (at < regions[i].len) {
                uint64_t off = regions[i].off + at;
                size_t n = len < regions[i].len - at ? len : regions[i].len - at;
                memcpy(img + off, data, n);
                break;
            }
            at -= regions[i].len;
        }
        data += len, size -= len;
    }
    int fd = open(path, O_RDWR);
    if (fd >= 0 && pwrite(fd, img, file_size, 0) == (ssize_t)file_size) {
        close(fd);
        gt_table *t;
        gt_options o = {.dir = dir, .read_timeout_ms = 1};
        if (gt_open(name, &o, &t) == 0) {
            exercise(t);
            gt_close(t);
        }
    } else if (fd >= 0) {
        close(fd);
    }
    free(img);
    return 0;
}
