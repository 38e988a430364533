/*
 * segment.c - the table file: its layout, creation, validation on open,
 * and the table-wide counters.
 *
 * The layout is a pure function of (max_members, max_guilds, max_slots,
 * payload_size): gt__layout computes every offset and size from them. A new
 * table is built in a hidden temporary file and published with link(), so
 * nobody ever opens a half-initialised table and racing creators agree on
 * one winner. Opening an existing table trusts nothing: the geometry is read
 * with pread, checked (magic, version, layout signature, checksum), then
 * recomputed from its parameters and compared field by field before a single
 * offset from it is used.
 *
 * Committed at creation (written without further checks): the header, the
 * global log, the commit bitmap, the retire list and the slots. Everything
 * after (guild headers, directory, heap meta, heap) is committed page by
 * page before its first write (alloc.c).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_MEMBERS (1ull << 20)
#define DEFAULT_MAX_GUILDS 4096u
#define DEFAULT_MAX_SLOTS 256u
#define DEFAULT_STALL_MS 10000u
#define LIMIT_MAX_SLOTS 65536u
#define GLOG_DATA (32u << 10)
#define SMALL_GUILD_BYTES 8192u /* heap set aside per guild beyond members */
#define MAX_TOP_BLOCKS 1024u

static _Atomic uint64_t next_handle_id = 1;

uint64_t gt__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t layout_sig(void) {
    uint64_t sizes[] = {
        sizeof(struct gt_seg),     sizeof(struct gt_geom),
        sizeof(struct gt_guild),   sizeof(struct gt_slot),
        sizeof(struct gt_log),     sizeof(struct gt_log_ent),
        sizeof(struct gt_rec),     sizeof(struct gt_store),
        sizeof(struct gt_act),     sizeof(struct gt_chunk),
        sizeof(struct gt_aent),    sizeof(struct gt_aref),
        sizeof(struct gt_dirent),  offsetof(struct gt_chunk, e),
        sizeof(struct gt_retired), sizeof(pthread_mutex_t),
        GT_SLOT_LOG_ENTRIES,       GT_GLOBAL_LOG_ENTRIES,
        GT_HEAP_MIN_ORDER,         GT_CHUNK_ENTRIES,
    };
    return (uint32_t)XXH3_64bits(sizes, sizeof sizes);
}

static uint32_t ceil_log2(uint64_t v) {
    uint32_t o = 0;
    while (o < 63 && (1ull << o) < v)
        o++;
    return o;
}

uint64_t gt__act_bytes(uint32_t nchunks) {
    return sizeof(struct gt_act) + gt_align_up((nchunks + 7) / 8, GT_LINE) +
           (uint64_t)nchunks * sizeof(struct gt_chunk);
}

struct params {
    uint64_t max_members;
    uint32_t max_guilds, max_slots, payload_size, stall_ms;
};

/* The whole geometry from the parameters. Pure: same input, same output. */
static void layout(const struct params *p, struct gt_geom *g) {
    memset(g, 0, sizeof *g);
    memcpy(g->magic, GT_MAGIC, 8);
    g->version = GT_FORMAT_VERSION;
    g->layout_sig = layout_sig();
    g->max_members = p->max_members;
    g->max_guilds = p->max_guilds;
    g->max_slots = p->max_slots;
    g->payload_size = p->payload_size;
    g->stride = (uint32_t)(sizeof(struct gt_rec) +
                           gt_align_up(p->payload_size, 8));
    g->log_data = (uint32_t)gt_align_up(2ull * g->stride + 2048, GT_LINE);
    g->slot_size = (uint32_t)gt_align_up(
        GT_SLOT_HEAD + gt_log_size(GT_SLOT_LOG_ENTRIES, g->log_data), GT_LINE);
    g->glog_data = GLOG_DATA;
    g->dir_cap = 16;
    while (g->dir_cap < 2ull * p->max_guilds)
        g->dir_cap <<= 1;
    g->retire_cap = 4 * p->max_slots + 256;

    /* Heap: room for the largest guild twice over while it is rebuilt, its
     * retired predecessors (kept while scans that began before the rebuild
     * run), buddy rounding, and every other guild's minimum. Only address
     * space: memory is used as blocks are committed. */
    uint32_t cap = gt__cap_for(p->max_members);
    uint64_t big = gt__store_bytes(cap, g->stride);
    uint64_t act = gt__act_bytes(
        (uint32_t)((p->max_members + GT_CHUNK_ENTRIES - 1) / GT_CHUNK_ENTRIES));
    g->top_order = ceil_log2(big > act ? big : act);
    if (g->top_order < 16)
        g->top_order = 16;
    uint64_t top = 1ull << g->top_order;
    uint64_t extra = (uint64_t)p->max_guilds * SMALL_GUILD_BYTES + 2 * act;
    g->heap_size = 8 * top + gt_align_up(extra, top);
    /* Each top block is linked into the free list at creation, which
     * commits a page of it: with many guilds and few members (small top
     * blocks, a large heap), bigger top blocks keep that to a few MB. */
    while ((g->heap_size >> g->top_order) > MAX_TOP_BLOCKS) {
        top = 1ull << ++g->top_order;
        g->heap_size = 8 * top + gt_align_up(extra, top);
    }

    uint64_t off = gt_align_up(sizeof(struct gt_seg), GT_PAGE);
    g->glog_off = off;
    off += gt_align_up(gt_log_size(GT_GLOBAL_LOG_ENTRIES, g->glog_data), GT_PAGE);
    g->retire_off = off;
    off += gt_align_up((uint64_t)g->retire_cap * sizeof(struct gt_retired),
                       GT_PAGE);
    g->slots_off = off;
    off += gt_align_up((uint64_t)p->max_slots * g->slot_size, GT_PAGE);
    g->commit_off = off;
    /* the bitmap covers the whole file, itself included: settle its size */
    uint64_t meta = gt_align_up(g->heap_size >> GT_HEAP_MIN_ORDER, GT_PAGE);
    uint64_t rest = gt_align_up((uint64_t)p->max_guilds * sizeof(struct gt_guild),
                                GT_PAGE) +
                    gt_align_up((uint64_t)g->dir_cap * sizeof(struct gt_dirent),
                                GT_PAGE) +
                    meta + g->heap_size + (2u << 20);
    uint64_t cbytes = GT_PAGE;
    for (int i = 0; i < 3; i++)
        cbytes = gt_align_up((off + cbytes + rest) / GT_PAGE / 8 + 8, GT_PAGE);
    off += cbytes;
    g->guilds_off = off;
    off += gt_align_up((uint64_t)p->max_guilds * sizeof(struct gt_guild), GT_PAGE);
    g->dir_off = off;
    off += gt_align_up((uint64_t)g->dir_cap * sizeof(struct gt_dirent), GT_PAGE);
    g->meta_off = off;
    off += meta;
    g->heap_off = gt_align_up(off, 2u << 20);
    g->file_size = g->heap_off + g->heap_size;
}

static uint64_t geom_checksum(const struct gt_geom *g) {
    return XXH3_64bits(g, offsetof(struct gt_geom, checksum));
}

int gt__check_name(const char *name) {
    if (!name || !name[0] || name[0] == '.')
        return GT_EINVAL;
    size_t n = 0;
    for (const char *c = name; *c; c++, n++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' ||
                  *c == '-';
        if (!ok || n >= GT_NAME_MAX)
            return GT_EINVAL;
    }
    return 0;
}

static char *path_of(const char *dir, const char *name) {
    if (!dir)
        dir = "/dev/shm";
    size_t n = strlen(dir) + strlen(name) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/guildtab.%s", dir, name);
    return p;
}

static int errno_code(int e) {
    return e ? -e : GT_EINVAL;
}

/* Validate a geometry read from an untrusted file of size fsize. */
static int validate(const struct gt_geom *g, uint64_t fsize) {
    if (memcmp(g->magic, GT_MAGIC, 8) != 0)
        return GT_ECORRUPT;
    if (g->version != GT_FORMAT_VERSION || g->layout_sig != layout_sig())
        return GT_EINCOMPAT;
    if (g->checksum != geom_checksum(g))
        return GT_ECORRUPT;
    if (g->max_members == 0 || g->max_members > GT_LIMIT_MAX_MEMBERS ||
        g->max_guilds == 0 || g->max_guilds > GT_LIMIT_MAX_GUILDS ||
        g->max_slots == 0 || g->max_slots > LIMIT_MAX_SLOTS ||
        g->payload_size > GT_PAYLOAD_MAX)
        return GT_ECORRUPT;
    struct params p = {g->max_members, g->max_guilds, g->max_slots,
                       g->payload_size, 0};
    struct gt_geom want;
    layout(&p, &want);
    want.seed = g->seed;
    want.created_ns = g->created_ns;
    want.mode = g->mode;
    want.stall_ms = g->stall_ms;
    want.checksum = geom_checksum(&want);
    if (memcmp(&want, g, sizeof want) != 0 || g->stall_ms == 0)
        return GT_ECORRUPT;
    if (g->file_size != fsize)
        return GT_ECORRUPT;
    return 0;
}

/* Map the file of geometry g (validated or just built) and keep g. */
static int map(gt_table *t, const struct gt_geom *g) {
    void *p = mmap(NULL, g->file_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   t->fd, 0);
    if (p == MAP_FAILED)
        return errno_code(errno);
    t->base = p;
    t->seg = p;
    t->g = *g;
    t->huge = gt__huge_on_request(t->fd);
    return 0;
}

static int init_robust(pthread_mutex_t *m) {
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r == 0)
        r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (r == 0)
        r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return r ? -r : 0;
}

int gt__mutex_init(pthread_mutex_t *m) {
    return init_robust(m);
}

static void init_log(struct gt_log *l, uint32_t ents, uint32_t data) {
    l->ent_cap = ents;
    l->data_cap = data;
}

/* Build a new table in the open, empty file t->fd. */
static int build(gt_table *t, const struct params *p, uint32_t mode,
                 uint32_t stall_ms) {
    struct gt_geom g;
    layout(p, &g);
    if (getrandom(&g.seed, sizeof g.seed, 0) != sizeof g.seed)
        g.seed = gt__now_ns() ^ ((uint64_t)getpid() << 32);
    g.created_ns = (uint64_t)time(NULL) * 1000000000ull;
    g.mode = mode;
    g.stall_ms = stall_ms;
    g.checksum = geom_checksum(&g);
    if (ftruncate(t->fd, (off_t)g.file_size) != 0)
        return errno_code(errno);
    if (fallocate(t->fd, 0, 0, (off_t)g.guilds_off) != 0)
        return errno == ENOSPC ? GT_ENOSPC : errno_code(errno);
    int r = map(t, &g);
    if (r)
        return r;
    struct gt_seg *s = t->seg;
    s->g = g;
    a64 *bits = gt_at(t, g.commit_off);
    for (uint64_t pg = 0; pg < g.guilds_off / GT_PAGE; pg++)
        bits[pg >> 6] |= 1ull << (pg & 63);
    STORE(&s->epoch, 1, relaxed);
    if ((r = init_robust(&s->lock)))
        return r;
    init_log(gt__glog(t), GT_GLOBAL_LOG_ENTRIES, g.glog_data);
    for (uint32_t i = 0; i < g.max_slots; i++)
        init_log(&gt_slot_at(t, i)->log, GT_SLOT_LOG_ENTRIES, g.log_data);
    return gt__heap_init(t);
}

/* The logs recovery will read: their shape must be the one this build
 * gave them (they are in the committed fixed region, so safe to read). */
static int check_logs(gt_table *t) {
    const struct gt_geom *g = &t->g;
    const struct gt_log *gl = gt__glog(t);
    if (gl->ent_cap != GT_GLOBAL_LOG_ENTRIES || gl->data_cap != g->glog_data ||
        LOAD(&gl->n, relaxed) > gl->ent_cap)
        return GT_ECORRUPT;
    for (uint32_t i = 0; i < g->max_slots; i++) {
        const struct gt_log *l = &gt_slot_at(t, i)->log;
        if (l->ent_cap != GT_SLOT_LOG_ENTRIES || l->data_cap != g->log_data ||
            LOAD(&l->n, relaxed) > l->ent_cap)
            return GT_ECORRUPT;
    }
    return 0;
}

static int attach(gt_table *t, const struct params *want, uint32_t flags) {
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return errno_code(errno);
    struct gt_geom g;
    if ((uint64_t)st.st_size < sizeof g)
        return GT_ECORRUPT;
    if (pread(t->fd, &g, sizeof g, 0) != (ssize_t)sizeof g)
        return GT_ECORRUPT;
    int r = validate(&g, (uint64_t)st.st_size);
    if (r)
        return r;
    if ((want->max_members && want->max_members != g.max_members) ||
        (want->max_guilds && want->max_guilds != g.max_guilds) ||
        (want->max_slots && want->max_slots != g.max_slots) ||
        (want->payload_size && want->payload_size != g.payload_size) ||
        (want->stall_ms && want->stall_ms != g.stall_ms))
        return GT_EMISMATCH;
    (void)flags;
    if ((r = map(t, &g)))
        return r;
    return check_logs(t);
}

static int open_fd(const char *path, int oflags) {
    int fd = open(path, oflags | O_CLOEXEC);
    return fd >= 0 ? fd : errno_code(errno);
}

GT_API int gt_open(const char *name, const gt_options *opts,
                   gt_table **out) {
    if (!out)
        return GT_EINVAL;
    *out = NULL;
    gt_options o = {0};
    if (opts)
        o = *opts;
    int r = gt__check_name(name);
    if (r)
        return r;
    if ((o.flags & ~(GT_CREATE | GT_EXCL | GT_RDONLY)) ||
        ((o.flags & GT_EXCL) && !(o.flags & GT_CREATE)) ||
        ((o.flags & GT_RDONLY) && (o.flags & GT_CREATE)) ||
        o.max_members > GT_LIMIT_MAX_MEMBERS || o.max_guilds > GT_LIMIT_MAX_GUILDS ||
        o.max_slots > LIMIT_MAX_SLOTS || o.payload_size > GT_PAYLOAD_MAX ||
        (o.mode & ~07777u))
        return GT_EINVAL;
    struct params want = {o.max_members, o.max_guilds, o.max_slots,
                          o.payload_size, o.stall_timeout_ms};
    gt_table *t = calloc(1, sizeof *t);
    if (!t)
        return GT_ENOMEM;
    t->fd = -1;
    t->flags = o.flags & GT_RDONLY;
    t->id = atomic_fetch_add(&next_handle_id, 1);
    t->read_timeout_ns = (uint64_t)(o.read_timeout_ms ? o.read_timeout_ms
                                                      : GT_READ_TIMEOUT_MS) *
                         1000000ull;
    t->name = strdup(name);
    t->path = path_of(o.dir, name);
    char *tmp = NULL;
    if (!t->name || !t->path) {
        r = GT_ENOMEM;
        goto fail;
    }
    t->fd = open_fd(t->path, O_RDWR);
    if (t->fd >= 0) {
        r = (o.flags & GT_EXCL) ? GT_EEXIST : attach(t, &want, o.flags);
        goto done;
    }
    r = t->fd;
    t->fd = -1;
    if (r != GT_ENOENT || !(o.flags & GT_CREATE))
        goto done;

    /* Create in a hidden file, then publish it whole with link(). */
    size_t tl = strlen(t->path) + 32;
    tmp = malloc(tl);
    if (!tmp) {
        r = GT_ENOMEM;
        goto done;
    }
    const char *dir = o.dir ? o.dir : "/dev/shm";
    snprintf(tmp, tl, "%s/.guildtab.%s.XXXXXX", dir, name);
    t->fd = mkostemp(tmp, O_CLOEXEC);
    if (t->fd < 0) {
        r = errno_code(errno);
        free(tmp);
        tmp = NULL;
        goto done;
    }
    uint32_t mode = o.mode ? o.mode : 0600u;
    struct params p = {
        o.max_members ? o.max_members : DEFAULT_MAX_MEMBERS,
        o.max_guilds ? o.max_guilds : DEFAULT_MAX_GUILDS,
        o.max_slots ? o.max_slots : DEFAULT_MAX_SLOTS,
        o.payload_size,
        0,
    };
    r = fchmod(t->fd, mode) == 0 ? 0 : errno_code(errno);
    if (r == 0)
        r = build(t, &p, mode, o.stall_timeout_ms ? o.stall_timeout_ms
                                                   : DEFAULT_STALL_MS);
    if (r == 0 && link(tmp, t->path) != 0) {
        r = errno_code(errno);
        if (r == GT_EEXIST && !(o.flags & GT_EXCL)) {
            /* someone else created it first: use theirs */
            unlink(tmp);
            munmap(t->base, t->g.file_size);
            t->base = NULL;
            close(t->fd);
            t->fd = open_fd(t->path, O_RDWR);
            r = t->fd >= 0 ? attach(t, &want, o.flags) : t->fd;
            if (t->fd < 0)
                t->fd = -1;
        }
    }
    unlink(tmp);
done:
    free(tmp);
    if (r == 0)
        r = gt__register(t);
    if (r == 0)
        gt__sweep(t, true); /* finish what dead processes left */
    if (r == 0) {
        *out = t;
        return 0;
    }
fail:
    if (t->base)
        munmap(t->base, t->g.file_size);
    if (t->fd >= 0)
        close(t->fd);
    free(t->name);
    free(t->path);
    free(t);
    return r;
}

GT_API void gt_close(gt_table *t) {
    if (!t)
        return;
    gt__slots_release(t);
    munmap(t->base, t->g.file_size);
    close(t->fd);
    free(t->name);
    free(t->path);
    free(t);
}

GT_API int gt_unlink(const char *name, const char *dir) {
    int r = gt__check_name(name);
    if (r)
        return r;
    char *p = path_of(dir, name);
    if (!p)
        return GT_ENOMEM;
    r = unlink(p) == 0 ? 0 : errno_code(errno);
    free(p);
    return r;
}

GT_API int gt_info(gt_table *t, gt_table_stat *out) {
    if (!t || !out)
        return GT_EINVAL;
    struct gt_seg *s = t->seg;
    gt__sweep(t, false); /* counters must not include a dead writer's half write */
    /* free what readers have moved past, a bounded batch per section */
    while (LOAD(&s->retired_n, relaxed) && gt__glock(t) == 0) {
        uint64_t before = LOAD(&s->retired_n, relaxed);
        gt__reclaim_locked(t, 16, false);
        gt__gunlock(t);
        if (LOAD(&s->retired_n, relaxed) == before)
            break;
    }
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return errno_code(errno);
    memset(out, 0, sizeof *out);
    out->guilds = LOAD(&s->guilds, relaxed);
    out->max_guilds = t->g.max_guilds;
    out->members = LOAD(&s->members, relaxed);
    out->max_members = t->g.max_members;
    out->payload_size = t->g.payload_size;
    out->slots_used = gt__slots_used(t);
    out->max_slots = t->g.max_slots;
    out->version = t->g.version;
    out->bytes_used = LOAD(&s->heap_used, relaxed);
    out->bytes_retired = LOAD(&s->retired_bytes, relaxed);
    out->bytes_resident = (uint64_t)st.st_blocks * 512u;
    out->bytes_reserved = t->g.file_size;
    out->bytes_per_member =
        out->members ? (double)out->bytes_used / (double)out->members : 0.0;
    out->overhead_per_member =
        out->members ? out->bytes_per_member - (double)sizeof(gt_member) -
                           (double)t->g.payload_size
                     : 0.0;
    out->record_bytes = t->g.stride;
    return 0;
}
