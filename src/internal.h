/*
 * internal.h - what the modules of libguildtab share.
 *
 * Segment map (all offsets from the segment base; processes map it at
 * different addresses, so nothing inside holds a pointer):
 *
 *   [header page(s)]   struct gt_seg: immutable geometry (checksummed), then
 *                      the global lock and global counters
 *   [global log]       undo log of the global lock's sections
 *   [retire list]      blocks freed while readers may still use them
 *   [slots]            one per thread that scans or writes: epoch + undo log
 *   [commit bitmap]    one bit per page of the file: page is fallocated
 *   [guild headers]    max_guilds type-stable headers (never freed)
 *   [directory]        guild_id -> header index, linear probing
 *   [heap meta]        one byte per 128-byte heap unit (buddy allocator)
 *   [heap]             storage and fanout-set blocks of the guilds
 *
 * The layout is a pure function of the table's options (gt__layout); open()
 * recomputes it and rejects a header that disagrees.
 */
#ifndef GT_INTERNAL_H
#define GT_INTERNAL_H

#define GT_BUILDING_LIBRARY 1
#include "guildtab.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GT_LINE 64u
#define GT_PAGE 4096u
#define GT_INTERNAL __attribute__((visibility("hidden")))
#define GT_LIKELY(x) __builtin_expect(!!(x), 1)
#define GT_UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef _Atomic uint64_t a64;
typedef _Atomic uint32_t a32;
typedef _Atomic uint8_t a8;

#define LOAD(p, mo) atomic_load_explicit((p), memory_order_##mo)
#define STORE(p, v, mo) atomic_store_explicit((p), (v), memory_order_##mo)

static inline uint64_t gt_align_up(uint64_t v, uint64_t a) {
    return (v + a - 1) & ~(a - 1);
}

/* ---- format ------------------------------------------------------------ */

#define GT_MAGIC "guildtab"
#define GT_FORMAT_VERSION 2u
#define GT_NAME_MAX 200u

/* ---- undo log (lock.c) --------------------------------------------------
 * Every write to shared state that readers or later writers can reach is
 * preceded by a log entry holding the old bytes a rollback needs (of a
 * record that fills a free slot, or is deleted, only its seqlock and meta:
 * member.c's REC_HEAD). An operation commits by setting state COMMITTED
 * and then clearing the log. Rolling back (on error, or when a process
 * dies holding the lock) restores entries newest first.
 * Entry kinds beyond BYTES carry actions on other lock domains (heap, member
 * count), each marked done inside the global lock's own logged section so it
 * happens exactly once.
 */
enum gt_log_kind {
    GT_LOG_BYTES = 1, /* restore len old bytes at off */
    GT_LOG_ALLOC,     /* block off (order in len, 64-byte units in seq_rel)
                         was allocated for this op: freed on rollback */
    GT_LOG_RETIRE,    /* block off (as ALLOC) to retire once committed */
    GT_LOG_COUNT,     /* member count delta: pre (reserved, undone on
                         rollback) or post (applied once committed) */
    GT_LOG_UNDIR,     /* guild header len was deleted: once committed,
                         drop its directory entry and free the header */
    GT_LOG_SET,       /* store byte data at off when committing */
};
#define GT_LOG_SEQ 0x1u  /* BYTES: u32 at off+seq_rel is a seqlock: bump it */
#define GT_LOG_DONE 0x2u /* action performed */
#define GT_LOG_PRE 0x4u  /* COUNT: already applied */

#define GT_LOG_OPEN 0u
#define GT_LOG_COMMITTED 1u
#define GT_LOG_FAILED 2u /* global log: section must be rolled back */
/* Global log entries one heap action can need (3 per buddy level). */
#define GT_GLOG_HEADROOM 160u

struct gt_log_ent {
    uint64_t off;     /* segment offset (BYTES, ALLOC, RETIRE) */
    uint32_t len;     /* BYTES: length; ALLOC/RETIRE: order; COUNT: unused */
    uint16_t kind;
    uint16_t flags;
    uint32_t seq_rel; /* BYTES with GT_LOG_SEQ */
    uint32_t data;    /* BYTES: offset of the old bytes in the data area;
                         COUNT: delta as int32 */
};

#define GT_SLOT_LOG_ENTRIES 48u
#define GT_GLOBAL_LOG_ENTRIES 512u
struct gt_log {
    a32 n;        /* valid entries; written after the entry (program order) */
    a32 state;    /* GT_LOG_OPEN / GT_LOG_COMMITTED */
    a32 guild;    /* guild header index + 1 this log is for; 0: global */
    uint32_t data_used;
    uint32_t data_cap;
    uint32_t ent_cap;
    /* A filter of the ranges logged since the log was last cleared: the bit
     * gt__log_bytes picks for each BYTES entry's offset is set. It may hold
     * more bits (a crash, a truncation): a stray bit only costs a search for
     * a range that is not there, and a missing one only a second entry for
     * the range, which a rollback restores oldest last. */
    uint64_t seen;
    struct gt_log_ent ent[]; /* ent_cap entries, then data_cap bytes */
};
static inline uint8_t *gt_log_data(struct gt_log *l) {
    return (uint8_t *)&l->ent[l->ent_cap];
}
static inline uint64_t gt_log_size(uint32_t ents, uint32_t data) {
    return sizeof(struct gt_log) + (uint64_t)ents * sizeof(struct gt_log_ent) +
           data;
}
_Static_assert(sizeof(struct gt_log_ent) == 24, "log entry size");
_Static_assert(sizeof(struct gt_log) % 8 == 0, "log size");

/* ---- thread slots (readers.c) ------------------------------------------ */

#define GT_PID_REAPING UINT32_MAX /* slot pid while a sweeper frees it */
#define GT_PIN_BITS 16 /* low bits of a pin ticket: a per-thread counter */
/* A pin's ticket: the epoch it pinned at, made unique per pin, so a slot
 * whose pin changed cannot be mistaken for the old one. */
static inline uint64_t gt_pin_ticket(uint64_t epoch, uint32_t n) {
    return (epoch << GT_PIN_BITS) | (n & ((1u << GT_PIN_BITS) - 1));
}
/* ---- statistics (stats.c) -------------------------------------------------
 * Counters of what is done to a table, for gt_stats_read and `guildtab
 * stats`. Each thread slot holds counters only its owner thread writes
 * (plain increments of its own cache lines); they are never reset, so a
 * slot's next owner adds on top and nothing is lost when threads come and
 * go. Lookups (which hold no slot) are counted per thread in batches added
 * to the table's own counters, as are events met without a slot (read
 * retries, recoveries). A reading is the table's counters plus every
 * slot's. */
enum gt_stat {
    GT_ST_LOOKUPS, GT_ST_INSERTS, GT_ST_DELETES, GT_ST_UPDATES,
    GT_ST_GUILD_DELETES, GT_ST_SCANS, GT_ST_FANOUTS, GT_ST_RECIPIENTS,
    GT_ST_READ_RETRIES, GT_ST_LOCK_WAITS, GT_ST_RECOVERIES, GT_ST_TIMED,
    GT_ST_COUNT
};
#define GT_ST_BUCKETS 16 /* fanout latency: see gt_stats in guildtab.h */
#define GT_ST_SAMPLE 8u  /* one fanout in 8 is timed */
#define GT_ST_LOOKUP_BATCH 256u
struct gt_counters {
    a64 c[GT_ST_COUNT];
    a64 hist[GT_ST_BUCKETS];
};

struct gt_slot {
    a32 pid;      /* owner process, 0 = free, GT_PID_REAPING */
    a32 tid;      /* owner thread */
    a64 owner;    /* owner handle id (meaningful inside pid only) */
    a64 epoch;    /* 0 = not pinned; else a pin ticket (gt_pin_ticket) */
    a64 pin_ns;   /* monotonic time of the current pin */
    uint8_t pad[GT_LINE - 32];
    alignas(GT_LINE) struct gt_counters stats; /* written by the owner only */
    alignas(GT_LINE) struct gt_log log; /* undo log of the guild write */
};
#define GT_SLOT_HEAD offsetof(struct gt_slot, log)
_Static_assert(GT_SLOT_HEAD % GT_LINE == 0, "slot header");

/* ---- guild headers (guild.c) -------------------------------------------- */

#define GT_GUILD_FREE 0u
#define GT_GUILD_LIVE 1u
#define GT_GUILD_UNDIR 0x1u

/* The view: the guild's current storage and fanout set. Readers read it under
 * vseq; a writer replacing either bumps vseq, so a reader that read through
 * a view that has since been replaced notices and retries. */
struct gt_guild {
    /* line 0: read by every reader */
    a64 id;
    a32 state;
    a32 vseq;      /* seqlock of the fields below and of state/id */
    a64 store_off; /* storage block (0 = none) */
    a64 act_off;   /* fanout-set block (0 = none) */
    a32 cap;       /* slots in the storage */
    a32 inited;    /* the lock has been initialised (once, ever) */
    a32 flags;     /* GT_GUILD_UNDIR: deleted, directory entry pending */
    a32 next_free; /* free list of headers (index + 1), while FREE */
    uint8_t pad1[GT_LINE - 48];
    /* line 1: written by the guild's writers, so kept off line 0 */
    a64 members, online, active, tombs;
    a64 act_seq;    /* activations so far (fanout "activated after" test) */
    a64 store_bytes, act_bytes;
    a32 log_slot;   /* slot whose log holds the running write */
    a32 writer_pid; /* pid of the lock holder, 0 when unlocked */
    /* lines 2-3: the lock */
    pthread_mutex_t lock;
    uint8_t pad3[2 * GT_LINE - sizeof(pthread_mutex_t)];
};
_Static_assert(sizeof(struct gt_guild) == 4 * GT_LINE, "guild header size");

struct gt_dirent {
    a64 id;
    a32 idx;   /* guild header index */
    a32 state; /* GT_DIR_* */
};
#define GT_DIR_EMPTY 0u
#define GT_DIR_LIVE 1u
#define GT_DIR_DEAD 2u
_Static_assert(sizeof(struct gt_dirent) == 16, "dirent size");

/* ---- retire list (alloc.c) ---------------------------------------------- */

struct gt_retired {
    uint64_t off;   /* 0 = entry free */
    uint32_t order;
    uint32_t units; /* bytes in use / 64 */
    uint64_t epoch; /* freed once every pinned reader has a later epoch */
};

/* ---- segment header (segment.c) ---------------------------------------- */

#define GT_HEAP_MIN_ORDER 7u /* 128-byte units */
#define GT_HEAP_ORDERS 48u

struct gt_geom {
    char magic[8];
    uint32_t version;
    uint32_t layout_sig;
    uint64_t file_size;
    uint64_t seed;
    uint64_t max_members;
    uint32_t max_guilds;
    uint32_t max_slots;
    uint32_t payload_size;
    uint32_t stride;     /* bytes per member record */
    uint32_t slot_size;  /* bytes per thread slot */
    uint32_t log_data;   /* data bytes of a slot's undo log */
    uint32_t dir_cap;
    uint32_t retire_cap;
    uint32_t top_order;  /* largest heap block: 1 << top_order */
    uint32_t glog_data;  /* data bytes of the global undo log */
    uint64_t commit_off, retire_off, slots_off, guilds_off, dir_off;
    uint64_t meta_off, heap_off, heap_size, glog_off;
    uint64_t created_ns;
    uint32_t mode;
    uint32_t stall_ms; /* scans pinned longer may be evicted (GT_ESTALE) */
    uint64_t checksum; /* XXH3 of everything above */
};

struct gt_seg {
    struct gt_geom g;
    alignas(GT_LINE) a64 epoch; /* reclamation epoch, own line */
    alignas(GT_LINE) pthread_mutex_t lock; /* the global lock */
    a32 lock_pid;
    a32 dir_seq; /* odd while the directory is rebuilt */
    /* written under the global lock (atomics: gt_info reads without it) */
    alignas(GT_LINE) struct gt_counters stats; /* beyond the slots' own */
    alignas(GT_LINE) a64 members;
    a64 guilds;
    a64 dir_dead;  /* dead directory entries */
    a64 heap_used; /* bytes in use in allocated blocks */
    a64 retired_bytes;
    a64 retired_n; /* must follow retired_bytes: logged together */
    uint64_t free_head[GT_HEAP_ORDERS]; /* heap offset + 1; 0 = empty */
    uint64_t guild_hw;   /* headers [0, guild_hw) have been used */
    uint64_t guild_free; /* free header list: index + 1; 0 = empty */
};

/* ---- storage: one guild's members (index.c) ------------------------------
 * Block: [struct gt_store][ctrl: cap bytes][records: cap * stride]. */
#define GT_STORE_MAGIC 0x65726f7473746704ull
/* Readers never take a block's shape from the block itself (it may have been
 * freed and reused under a stale reader): record and control addresses come
 * from the view's capacity and the table's stride (gt_rec_at). The header is
 * for writers, checks and tools. */
struct gt_store {
    uint64_t magic;
    uint64_t guild_id;
    uint32_t cap;
    uint32_t pad0;
    uint64_t bytes; /* bytes of the block in use */
    uint8_t pad[GT_LINE - 32];
};
_Static_assert(sizeof(struct gt_store) == GT_LINE, "store header size");

#define GT_CTRL_EMPTY 0x80u
#define GT_CTRL_DEAD 0xFEu

/* A member record: seqlock, meta, the 64-byte gt_member as words, payload. */
#define GT_REC_LIVE 0x80000000u /* meta: record holds a member */
struct gt_rec {
    a32 seq;  /* odd while being written */
    a32 meta; /* GT_REC_LIVE | (fanout-set entry index + 1, or 0) */
    a64 w[8]; /* user_id, session_id, roles[4], joined_at, worker|flags<<32 */
    a64 payload[];
};
_Static_assert(sizeof(struct gt_rec) == 72, "record size");

/* ---- fanout set (active.c) --------------------------------------------- */
#define GT_ACT_MAGIC 0x7465737463616704ull
#define GT_CHUNK_ENTRIES 64u
/* An entry is in two parts: what a fanout reads (e: the recipient, its
 * worker and flags) and what only a scan that reads records, or a fanout
 * over a chunk activated into since it began, needs (ref). So a fanout
 * reads 24 of each entry's 32 bytes. */
struct gt_aent {
    a64 user_id;
    a64 session_id;
    a32 worker;
    a32 flags;
};
struct gt_aref {
    a32 act32; /* low 32 bits of the activation number */
    a32 slot;  /* storage slot of the member */
};
struct gt_chunk {
    a32 seq; /* odd while an entry is being written */
    uint32_t n;
    a64 occ;     /* bit i: e[i] and ref[i] hold an entry */
    a32 act_max; /* no entry's act32 is newer (the last activation here) */
    uint8_t pad[GT_LINE - 20];
    struct gt_aent e[GT_CHUNK_ENTRIES];
    struct gt_aref ref[GT_CHUNK_ENTRIES];
};
/* Whether chunk ch, read under its seqlock, may hold an entry activated
 * after a scan that began at act_seq: only then are its entries' act32
 * tested. */
static inline bool gt_chunk_fresh(const struct gt_chunk *ch,
                                  uint32_t act_seq) {
    return (int32_t)(LOAD(&ch->act_max, relaxed) - act_seq) > 0;
}
/* Block: [struct gt_act][nonfull bitmap][chunks], positions derived from
 * nchunks (gt_chunk_at), which a reader reads once and bounds-checks. */
struct gt_act {
    uint64_t magic;
    uint64_t guild_id;
    uint32_t nchunks; /* capacity */
    a32 hw;           /* chunks [0, hw) may hold entries */
    uint32_t live;    /* entries (writer only) */
    uint32_t pad;
    uint64_t bytes;
    uint8_t pad2[GT_LINE - 40];
};
_Static_assert(sizeof(struct gt_aent) == 24 && sizeof(struct gt_aref) == 8,
               "fanout entry size");
_Static_assert(sizeof(struct gt_chunk) == GT_LINE + 64 * 32, "chunk size");
_Static_assert(sizeof(struct gt_act) == GT_LINE, "fanout set header size");

/* ---- the handle --------------------------------------------------------- */

struct gt_table {
    uint8_t *base;     /* mapping, g.file_size bytes */
    struct gt_seg *seg;
    int fd;
    uint32_t flags;    /* GT_RDONLY */
    uint64_t id;       /* process-unique handle id */
    /* the geometry as validated when the table was opened (or as built):
     * the only one the library reads, never the segment's header, which any
     * process with write access could change after the validation */
    struct gt_geom g;
    bool huge; /* its tmpfs gives huge pages on request (alloc.c) */
    uint64_t read_timeout_ns;
    char *path;
    char *name;
    /* large blocks freed in the current global section, punched after it
     * commits (alloc.c) */
#define GT_PUNCH_MAX 16
    struct { uint64_t h; uint32_t order; } punch[GT_PUNCH_MAX];
    uint32_t npunch;
    /* guild id -> header index cache (hint; validated against the header) */
    struct { a64 id; a64 idx; } gcache[64];
};

/* ---- helpers ------------------------------------------------------------ */

static inline void *gt_at(const gt_table *t, uint64_t off) {
    return t->base + off;
}
static inline uint64_t gt_off(const gt_table *t, const void *p) {
    return (uint64_t)((const uint8_t *)p - t->base);
}
static inline struct gt_slot *gt_slot_at(const gt_table *t, uint32_t i) {
    return (struct gt_slot *)gt_at(t, t->g.slots_off +
                                          (uint64_t)i * t->g.slot_size);
}
static inline struct gt_guild *gt_guild_at(const gt_table *t, uint32_t i) {
    return (struct gt_guild *)gt_at(t, t->g.guilds_off +
                                           (uint64_t)i * sizeof(struct gt_guild));
}
static inline uint32_t gt_guild_index(const gt_table *t,
                                      const struct gt_guild *g) {
    return (uint32_t)((gt_off(t, g) - t->g.guilds_off) /
                      sizeof(struct gt_guild));
}

static inline void gt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

uint64_t gt__now_ns(void) GT_INTERNAL;
uint32_t gt__pid(void) GT_INTERNAL;

/* The member hash: XXH3 with the table's seed, inlined on hot paths. */
#define XXH_INLINE_ALL
#include <xxhash.h>
static inline uint64_t gt_hash(const gt_table *t, uint64_t user_id) {
    return XXH3_64bits_withSeed(&user_id, sizeof user_id, t->g.seed);
}

/* The home slot of a hash: monotone in the hash, so slot order follows hash
 * order, which partitions and cursors rely on. */
static inline uint64_t gt_fastrange(uint64_t h, uint64_t n) {
    return (uint64_t)(((unsigned __int128)h * n) >> 64);
}
/* The partition of a hash: the same mapping for every scan and fanout. */
static inline uint32_t gt_partition(uint64_t h, uint32_t nparts) {
    return (uint32_t)gt_fastrange(h, nparts);
}

/* Bounded waiting for a seqlock held by a writer: spin, then yield, then
 * check the writer is alive, then give up with GT_EBUSY. */
struct gt_wait {
    uint32_t spins;
    uint64_t start_ns;
};
#define GT_WAIT_INIT {0, 0}
#define GT_READ_TIMEOUT_MS 2000u
int gt__wait(gt_table *t, struct gt_guild *g, struct gt_wait *w) GT_INTERNAL;

/* ---- segment.c ---------------------------------------------------------- */
int gt__check_name(const char *name) GT_INTERNAL;
int gt__mutex_init(pthread_mutex_t *m) GT_INTERNAL;
static inline uint64_t gt_store_size(uint64_t cap, uint32_t stride) {
    return GT_LINE + gt_align_up(cap, GT_LINE) + cap * stride;
}
#define gt__store_bytes(cap, stride) gt_store_size((cap), (stride))
/* A guild view's storage as readers may follow it: inside the heap, and a
 * capacity the probing code can walk (whole groups of 8 control bytes). */
static inline bool gt_store_ok(const struct gt_geom *g, uint64_t off,
                               uint64_t cap, uint32_t stride) {
    return off >= g->heap_off && off < g->file_size && cap >= 8 &&
           cap % 8 == 0 && cap <= UINT32_MAX &&
           gt_store_size(cap, stride) <= g->file_size - off;
}
uint64_t gt__act_bytes(uint32_t nchunks) GT_INTERNAL;

/* ---- readers.c: slots and epochs ----------------------------------------- */
int gt__register(gt_table *t) GT_INTERNAL;
int gt__slot(gt_table *t, uint32_t *idx) GT_INTERNAL;
int gt__pin(gt_table *t, uint32_t *slot) GT_INTERNAL;
void gt__unpin(gt_table *t, uint32_t slot) GT_INTERNAL;
uint64_t gt__min_epoch(gt_table *t, uint64_t below, uint64_t evict_before)
    GT_INTERNAL;
bool gt__pid_running(uint32_t pid) GT_INTERNAL;
/* Whether the scan pinned in slot still holds its pin (a stalled scan may be
 * evicted, see alloc.c); call after copying data, before delivering it. */
static inline bool gt_pin_held(const gt_table *t, uint32_t slot) {
    /* pairs with the fence an evicting writer issues after clearing the pin
     * and before reusing memory: if what we copied came from reused memory,
     * we see the pin cleared */
    atomic_thread_fence(memory_order_acquire);
    return LOAD(&gt_slot_at(t, slot)->epoch, relaxed) != 0;
}
void gt__slots_release(gt_table *t) GT_INTERNAL;
void gt__thread_exit_hook(void) GT_INTERNAL;
uint32_t gt__slots_used(gt_table *t) GT_INTERNAL;
bool gt__pid_alive(uint32_t pid) GT_INTERNAL;

/* ---- stats.c ------------------------------------------------------------- */

/* Count n events of kind k for the thread that owns slot (its own lines). */
static inline void gt_stat_add(gt_table *t, uint32_t slot, unsigned k,
                               uint64_t n) {
    a64 *c = &gt_slot_at(t, slot)->stats.c[k];
    STORE(c, LOAD(c, relaxed) + n, relaxed);
}
/* Count an event met without a slot of our own: the table's counters. */
static inline void gt_stat_shared(gt_table *t, unsigned k) {
    atomic_fetch_add_explicit(&t->seg->stats.c[k], 1, memory_order_relaxed);
}
/* A thread's lookup batch for one handle (stats.c). Initial-exec TLS: a
 * thread-pointer-relative access, no __tls_get_addr call on the hot path. */
struct gt_lk_ent {
    gt_table *t; /* NULL = unused */
    uint64_t handle;
    uint64_t n;
};
#define GT_LK_ENTRIES 4u
extern _Thread_local struct gt_lk_ent gt__lk[GT_LK_ENTRIES]
    __attribute__((tls_model("initial-exec"))) GT_INTERNAL;
void gt__stat_lookup_slow(gt_table *t) GT_INTERNAL;
/* Count a lookup: the first entry's handle is the common case. */
static inline void gt_stat_lookup(gt_table *t) {
    struct gt_lk_ent *e = &gt__lk[0];
    if (GT_LIKELY(e->t == t && e->handle == t->id &&
                  ++e->n < GT_ST_LOOKUP_BATCH))
        return;
    gt__stat_lookup_slow(t);
}
/* Count n >= 1 lookups (the batch call). */
static inline void gt_stat_lookups(gt_table *t, uint64_t n) {
    struct gt_lk_ent *e = &gt__lk[0];
    if (e->t == t && e->handle == t->id)
        e->n += n - 1; /* the last one flushes, if the batch is full */
    else
        for (; n > 1; n--)
            gt_stat_lookup(t);
    gt_stat_lookup(t);
}
void gt__stat_flush(gt_table *t) GT_INTERNAL; /* this thread's lookups on t */
void gt__stat_fork_child(void) GT_INTERNAL;
/* Time every GT_ST_SAMPLE-th fanout of the thread: the start (0: not
 * timed), and the end, which counts it in the slot and files the latency. */
uint64_t gt__stat_fanout_start(void) GT_INTERNAL;
void gt__stat_fanout_end(gt_table *t, uint32_t slot, uint64_t start,
                         uint64_t recipients) GT_INTERNAL;

/* ---- lock.c: locks and undo logs ------------------------------------------ */

/* A write in progress on one guild. */
struct gt_wr {
    gt_table *t;
    struct gt_guild *g;
    struct gt_log *log;
    uint32_t slot;
    uint32_t gidx;
    uint32_t stat; /* counted when it commits (enum gt_stat; GT_ST_COUNT: no) */
    uint32_t counters_ent; /* the log entry that last held g's counters line
                              (gt__log_counters checks it still does) */
    bool optional; /* a rebuild that may give up (a shrink): its memory
                      neither waits for scans nor evicts them (gt__alloc) */
    uint32_t acts; /* GT_WR_*: what the section logged that its commit must
                      act on. Only gt__wr_action logs actions, and notes
                      them here first, so a commit with none skips the
                      scans of its log for them. */
};
#define GT_WR_ACTS 1u /* actions a commit runs: RETIRE, UNDIR, a post count */
#define GT_WR_SETS 2u /* stores deferred to the commit (GT_LOG_SET) */
int gt__glock(gt_table *t) GT_INTERNAL;
int gt__gunlock(gt_table *t) GT_INTERNAL;
struct gt_log *gt__glog(gt_table *t) GT_INTERNAL;
int gt__guild_lock(gt_table *t, struct gt_guild *g, struct gt_wr *w) GT_INTERNAL;
bool gt__log_is_for(const struct gt_log *log, uint32_t gidx) GT_INTERNAL;
int gt__guild_recover(gt_table *t, struct gt_guild *g, bool try) GT_INTERNAL;
int gt__sweep(gt_table *t, bool all) GT_INTERNAL;
void gt__check_writer(gt_table *t, struct gt_guild *g) GT_INTERNAL;
int gt__wr_commit(struct gt_wr *w) GT_INTERNAL;
/* Commit what w wrote so far and keep the lock, for the next part of a
 * batch; on an error (the commit stands) the lock is released and w is
 * done. */
int gt__wr_checkpoint(struct gt_wr *w) GT_INTERNAL;
int gt__count_reserve(struct gt_wr *w, int32_t delta) GT_INTERNAL;
int gt__log_retire(struct gt_wr *w, uint64_t off, uint64_t bytes) GT_INTERNAL;
void gt__wr_abort(struct gt_wr *w) GT_INTERNAL;
/* Undo what w wrote since its last commit, keeping the lock. Returns 0, or
 * the lock error that stopped the undo's heap actions: the lock is then
 * released, and the log left for the next writer of the guild or of this
 * thread to finish. */
int gt__wr_undo(struct gt_wr *w) GT_INTERNAL;
/* Whether log entry e already holds the old bytes of [off, off + len). */
static inline bool gt_log_holds(const struct gt_log_ent *e, uint64_t off,
                                uint32_t len) {
    return e->kind == GT_LOG_BYTES && e->off == off && e->len >= len;
}
int gt__log_bytes(gt_table *t, struct gt_log *log, const void *p, uint32_t len,
                  int seq_rel) GT_INTERNAL;
/* Orders the stores around it in the instruction stream, which is what a
 * SIGKILL observes (see lock.c). */
static inline void gt_sig_fence(void) {
    atomic_signal_fence(memory_order_seq_cst);
}
/* The filter bit of a range at off (see struct gt_log). */
static inline uint64_t gt_log_seen_bit(uint64_t off) {
    return 1ull << (((off >> 3) * 0x9e3779b97f4a7c15ull) >> 58);
}
/* Append the old bytes of [p, p + len), at off, as the log's next entry,
 * and publish it; seq_rel as gt__log_bytes, bit the range's filter bit. */
static inline int gt_log_append(struct gt_log *log, uint64_t off,
                                const void *p, uint32_t len, int seq_rel,
                                uint64_t bit) {
    uint32_t n = LOAD(&log->n, relaxed);
    if (n >= log->ent_cap || log->data_used + len > log->data_cap) {
        /* An operation larger than its log: a bug. The section must not
         * commit half done: gt__gunlock rolls a failed section back. */
        STORE(&log->state, GT_LOG_FAILED, relaxed);
        return GT_EFULL;
    }
    struct gt_log_ent *e = &log->ent[n];
    e->off = off;
    e->len = len;
    e->kind = GT_LOG_BYTES;
    e->flags = seq_rel >= 0 ? GT_LOG_SEQ : 0;
    e->seq_rel = seq_rel >= 0 ? (uint32_t)seq_rel : 0;
    e->data = log->data_used;
    memcpy(gt_log_data(log) + log->data_used, p, len);
    log->data_used += (len + 7u) & ~7u;
    if (log->data_used > log->data_cap)
        log->data_used = log->data_cap;
    log->seen |= bit;
    gt_sig_fence();
    /* release: who sees the entry sees which guild the log is for */
    STORE(&log->n, n + 1, release);
    gt_sig_fence();
    return 0;
}
/* gt__log_bytes for a range the caller knows the log does not hold yet
 * (in this section): no search for it. A range logged twice all the same
 * costs only room: a rollback restores the oldest copy last. Inline, so
 * that a length known to the caller makes the copy a few moves: every
 * write logs its record and an insert its control byte this way. */
static inline int gt_log_new(gt_table *t, struct gt_log *log, const void *p,
                             uint32_t len, int seq_rel) {
    uint64_t off = gt_off(t, p);
    return gt_log_append(log, off, p, len, seq_rel, gt_log_seen_bit(off));
}
/* Log the guild's counters line, which most writes change: found in the
 * log by the entry it took last time, with no search. */
static inline int gt__log_counters(struct gt_wr *w) {
    const struct gt_log *l = w->log;
    uint64_t off = gt_off(w->t, &w->g->members);
    uint32_t i = w->counters_ent, n = LOAD(&l->n, relaxed);
    if (i < n && gt_log_holds(&l->ent[i], off, GT_LINE))
        return 0;
    /* where it goes if the log does not hold it yet; if it does, elsewhere,
     * the next call searches again */
    w->counters_ent = n;
    return gt__log_bytes(w->t, w->log, &w->g->members, GT_LINE, -1);
}
/* Log an action of w's section (kind, flags GT_LOG_PRE or 0, and the
 * kind's off, len and delta), noting in w.acts what its commit must do. */
int gt__wr_action(struct gt_wr *w, uint16_t kind, uint16_t flags,
                  uint64_t off, uint32_t len, int32_t delta) GT_INTERNAL;
void gt__log_rollback(gt_table *t, struct gt_log *log) GT_INTERNAL;
int gt__recover_guild(gt_table *t, struct gt_guild *g) GT_INTERNAL;

/* Seqlock writes on logged memory. A write makes each seqlock it touches
 * odd (once: a second touch in the same write changes nothing) and leaves
 * it odd until the write commits: gt__log_seal then makes them all even at
 * once, from the log's GT_LOG_SEQ entries. So a reader sees a write whole or
 * not at all, and one whose writer died waits and recovers it. */
static inline void gt_seq_begin(a32 *seq) {
    uint32_t s = LOAD(seq, relaxed);
    if (s & 1u)
        return;
    STORE(seq, s + 1, relaxed);
    /* pairs with the acquire fence readers issue before re-reading seq */
    atomic_thread_fence(memory_order_release);
}
/* sets: the log may hold GT_LOG_SET entries (a live writer knows it from
 * w.acts; a recovery does not). */
void gt__log_seal(gt_table *t, struct gt_log *log, bool sets) GT_INTERNAL;
/* A byte store deferred to w's commit (GT_LOG_SET), for what readers follow
 * without a seqlock: a delete's tombstone. */
int gt__wr_set(struct gt_wr *w, a8 *p, uint8_t v) GT_INTERNAL;

/* ---- alloc.c: heap ------------------------------------------------------- */
/* wait: on a full heap, wait for scans to release retired memory (evicting
 * stalled ones) before GT_EFULL. */
int gt__alloc(struct gt_wr *w, uint64_t bytes, uint64_t *off,
              bool wait) GT_INTERNAL;
void gt__free_locked(gt_table *t, uint64_t off, uint32_t order,
                     uint32_t units) GT_INTERNAL;
int gt__commit(gt_table *t, uint64_t off, uint64_t len) GT_INTERNAL;
bool gt__huge_on_request(int fd) GT_INTERNAL; /* tmpfs huge=advise */
void gt__reclaim_locked(gt_table *t, uint32_t max, bool evict) GT_INTERNAL;
int gt__retire_locked(gt_table *t, uint64_t off, uint32_t order,
                      uint32_t units) GT_INTERNAL;
uint32_t gt__block_order(gt_table *t, uint64_t off) GT_INTERNAL;
int gt__heap_init(gt_table *t) GT_INTERNAL;
void gt__punch_locked(gt_table *t, bool committed) GT_INTERNAL;

/* ---- guild.c ----------------------------------------------------------- */
void gt__dir_rebuild_locked(gt_table *t) GT_INTERNAL;
uint64_t gt__dir_home(gt_table *t, uint64_t id) GT_INTERNAL;
struct gt_guild *gt__guild_find(gt_table *t, uint64_t id) GT_INTERNAL;
/* The live guild id as the handle's cache has it, or NULL. */
static inline struct gt_guild *gt_guild_cached(gt_table *t, uint64_t id) {
    uint64_t c = id & 63;
    if (LOAD(&t->gcache[c].id, relaxed) == id) {
        uint64_t idx = LOAD(&t->gcache[c].idx, relaxed);
        if (idx < t->g.max_guilds) {
            struct gt_guild *g = gt_guild_at(t, (uint32_t)idx);
            /* pairs with the release store of state when a guild is made */
            if (LOAD(&g->state, acquire) == GT_GUILD_LIVE &&
                LOAD(&g->id, relaxed) == id)
                return g;
        }
    }
    return NULL;
}
/* gt__guild_find through the handle's cache first (the hot path). */
static inline struct gt_guild *gt_guild_lookup(gt_table *t, uint64_t id) {
    struct gt_guild *g = gt_guild_cached(t, id);
    return g ? g : gt__guild_find(t, id);
}
int gt__guild_get(gt_table *t, uint64_t id, bool create,
                  struct gt_guild **out, bool *created) GT_INTERNAL;
int gt__guild_write(gt_table *t, uint64_t id, bool create, struct gt_wr *w,
                    bool *created) GT_INTERNAL;
int gt__guild_drop(struct gt_wr *w) GT_INTERNAL;
int gt__undir_locked(gt_table *t, uint32_t idx) GT_INTERNAL;

/* A consistent read of a guild's view. */
struct gt_view {
    struct gt_guild *g;
    uint32_t vseq;
    uint32_t cap;
    struct gt_store *st; /* NULL when the guild has no storage */
    struct gt_act *act;  /* NULL when nobody was ever active */
    uint64_t act_seq;
};
int gt__view_read(gt_table *t, struct gt_guild *g, uint64_t id,
                  struct gt_view *v) GT_INTERNAL;
static inline bool gt_view_valid(const struct gt_view *v) {
    /* pairs with the release fence of gt_seq_begin on vseq: if anything we
     * read came from a writer that replaced the view, vseq has moved */
    atomic_thread_fence(memory_order_acquire);
    return LOAD(&v->g->vseq, relaxed) == v->vseq;
}
int gt__view_publish(struct gt_wr *w, uint64_t store_off, uint32_t cap,
                     uint64_t act_off) GT_INTERNAL;

/* ---- index.c: storage ---------------------------------------------------- */
/* Record i of a storage block of cap slots: from trusted values only. */
static inline struct gt_rec *gt_rec_at(const gt_table *t,
                                       const struct gt_store *st, uint64_t cap,
                                       uint64_t i) {
    return (struct gt_rec *)((uint8_t *)st + sizeof(struct gt_store) +
                             gt_align_up(cap, GT_LINE) + i * t->g.stride);
}
static inline a8 *gt_ctrl(const struct gt_store *st) {
    return (a8 *)((uint8_t *)st + sizeof(struct gt_store));
}
/* Control groups: the eight control bytes of slots [g, g + 8), g a multiple
 * of 8, read as one word; the tests below mark bytes by their bit 7. */
#define GT_LSB 0x0101010101010101ull
#define GT_MSB 0x8080808080808080ull
static inline uint64_t gt_group_load(const struct gt_store *st, uint64_t g) {
    uint64_t w = LOAD((const a64 *)(const void *)(gt_ctrl(st) + g), relaxed);
    /* pairs with the release store of a control byte: a tag seen means the
     * record written before it is seen */
    atomic_thread_fence(memory_order_acquire);
    return w;
}
/* The 7-bit tag of hash h in every byte, for gt_match_tag. */
static inline uint64_t gt_tag_word(uint64_t h) {
    return GT_LSB * (h & 0x7f);
}
/* The bytes of pos's group from pos on. */
static inline uint64_t gt_home_mask(uint64_t pos) {
    return GT_MSB & (~0ull << ((pos & 7) * 8));
}
/* Bytes of w equal to the tag in every byte of tagw (false positives
 * possible only above a true match, and callers verify the key anyway). */
static inline uint64_t gt_match_tag(uint64_t w, uint64_t tagw) {
    uint64_t x = w ^ tagw;
    return (x - GT_LSB) & ~x & GT_MSB;
}
/* Bytes equal to GT_CTRL_EMPTY (0x80: bit 7 set, bit 1 clear), exactly. */
static inline uint64_t gt_match_empty(uint64_t w) {
    return w & ~(w << 6) & GT_MSB;
}
/* Bytes that are EMPTY or DEAD (bit 7 set). */
static inline uint64_t gt_match_free(uint64_t w) {
    return w & GT_MSB;
}
#define GT_NOT_FOUND UINT64_MAX
uint64_t gt__store_find(gt_table *t, const struct gt_store *st, uint32_t cap,
                        uint64_t user_id, uint64_t h) GT_INTERNAL;
/* Writers (lock held): whether slot, any value (a slot of another view,
 * GT_NOT_FOUND), is st's slot of user_id (hash h): in st, its control byte
 * h's tag and its record's key user_id. Inline, for a hint that saves the
 * probe of gt__store_find. */
static inline bool gt_store_holds(const gt_table *t, const struct gt_store *st,
                                  uint64_t cap, uint64_t slot,
                                  uint64_t user_id, uint64_t h) {
    return slot < cap && LOAD(&gt_ctrl(st)[slot], relaxed) == (h & 0x7f) &&
           LOAD(&gt_rec_at(t, st, cap, slot)->w[0], relaxed) == user_id;
}
uint64_t gt__store_free_slot(const struct gt_store *st, uint32_t cap,
                             uint64_t h) GT_INTERNAL;
bool gt__store_full(uint64_t members, uint64_t tombs, uint32_t cap) GT_INTERNAL;
/* Copy size bytes of record r's payload out, under its seqlock (the
 * caller checks it), a word at a time. */
static inline void gt_rec_payload(const struct gt_rec *r, uint32_t size,
                                  void *out) {
    uint8_t *p = out;
    for (uint32_t i = 0; i < size / 8; i++) {
        uint64_t v = LOAD(&r->payload[i], relaxed);
        memcpy(p + 8 * i, &v, 8);
    }
    if (size % 8) {
        uint64_t v = LOAD(&r->payload[size / 8], relaxed);
        memcpy(p + size - size % 8, &v, size % 8);
    }
}
/* A record's eight words <-> gt_member. */
static inline void gt__rec_unpack(const uint64_t w[8], gt_member *m) {
    m->user_id = w[0];
    m->session_id = w[1];
    m->roles[0] = w[2];
    m->roles[1] = w[3];
    m->roles[2] = w[4];
    m->roles[3] = w[5];
    m->joined_at = (int64_t)w[6];
    m->worker = (uint32_t)w[7];
    m->flags = (uint32_t)(w[7] >> 32);
}
static inline void gt__rec_pack(const gt_member *m, uint64_t w[8]) {
    w[0] = m->user_id;
    w[1] = m->session_id;
    w[2] = m->roles[0];
    w[3] = m->roles[1];
    w[4] = m->roles[2];
    w[5] = m->roles[3];
    w[6] = (uint64_t)m->joined_at;
    w[7] = (uint64_t)m->worker | ((uint64_t)m->flags << 32);
}
int gt__store_make(struct gt_wr *w, uint64_t members, uint64_t *off,
                   uint32_t *cap) GT_INTERNAL;
int gt__store_rebuild(struct gt_wr *w, uint64_t members) GT_INTERNAL;
uint32_t gt__cap_for(uint64_t members) GT_INTERNAL;

/* ---- active.c: fanout set ---------------------------------------------- */
/* Whether gt__act_add can place `adds` more entries in the view's set as
 * it is: then each logs a few bounded entries (the set's sizes, the chunk
 * header, the counters line, a bitmap word); otherwise it grows the set
 * first. Writer only, the guild locked. */
static inline bool gt_act_room(const struct gt_view *v, uint32_t adds) {
    return v->act && v->act->live + (uint64_t)adds <=
                         (uint64_t)v->act->nchunks * GT_CHUNK_ENTRIES;
}
int gt__act_add(struct gt_wr *w, struct gt_view *v, uint64_t slot,
                const gt_member *m, uint32_t *idx) GT_INTERNAL;
int gt__act_remove(struct gt_wr *w, struct gt_view *v, uint32_t idx)
    GT_INTERNAL;
int gt__act_update(struct gt_wr *w, struct gt_view *v, uint32_t idx,
                   const gt_member *m) GT_INTERNAL;
int gt__act_build(struct gt_wr *w, const struct gt_act *old,
                  struct gt_store *nst, const uint32_t *slot_map,
                  uint64_t *off) GT_INTERNAL;
bool gt__act_sparse(const struct gt_act *a) GT_INTERNAL;
static inline uint64_t *gt_act_nonfull(const struct gt_act *a) {
    return (uint64_t *)((uint8_t *)a + sizeof(struct gt_act));
}
/* Chunk c of a fanout set of nchunks chunks. */
static inline struct gt_chunk *gt_chunk_at(const struct gt_act *a,
                                           uint32_t nchunks, uint32_t c) {
    return (struct gt_chunk *)((uint8_t *)a + sizeof(struct gt_act) +
                               gt_align_up((nchunks + 7) / 8, GT_LINE) +
                               (uint64_t)c * sizeof(struct gt_chunk));
}

/* ---- filters (scan.c) ---------------------------------------------------- */
struct gt_filt {
    uint32_t set, clear;
    uint32_t worker;
    bool match_worker;
    bool roles;
    uint64_t roles_any[4];
};
int gt__filter_prep(const gt_filter *f, struct gt_filt *out) GT_INTERNAL;
static inline bool gt_filt_flags(const struct gt_filt *f, uint32_t flags,
                                 uint32_t worker) {
    /* one test, no branch per term: scans call this for every member */
    uint32_t wmask = f->match_worker ? UINT32_MAX : 0;
    return (((flags & f->set) ^ f->set) | (flags & f->clear) |
            ((worker ^ f->worker) & wmask)) == 0;
}
static inline bool gt_filt_roles(const struct gt_filt *f,
                                 const uint64_t roles[4]) {
    return !f->roles ||
           ((roles[0] & f->roles_any[0]) | (roles[1] & f->roles_any[1]) |
            (roles[2] & f->roles_any[2]) | (roles[3] & f->roles_any[3])) != 0;
}

/* Whether entry i of fanout-set chunk ch (of worker `worker`), read under
 * the chunk's seqlock, is one a scan that began at act_seq visits:
 * activated before that (tested only if the chunk is fresh), and, only if
 * flagged (a filter asking more than GT_ACTIVE), passing filt's flags and
 * worker. Inlined where entries are copied: no test of the case per entry. */
static inline __attribute__((always_inline)) bool
gt_aent_pass(const struct gt_chunk *ch, unsigned i, uint32_t worker,
             uint32_t act_seq, bool fresh, bool flagged,
             const struct gt_filt *filt) {
    return (!fresh ||
            (int32_t)(LOAD(&ch->ref[i].act32, relaxed) - act_seq) <= 0) &&
           (!flagged ||
            gt_filt_flags(filt, LOAD(&ch->e[i].flags, relaxed), worker));
}
struct gt_scan;
/* A sink takes the fanout set a chunk at a time when a scan reads no
 * records: gt_fanout copies the entries straight into its batches by
 * worker, a counting scan counts them. take copies the chunk's entries
 * that pass (gt_aent_pass, and the scan's partition: gt_in_part) while the
 * scan holds the chunk's seqlock open, and returns 0 or an error; keep
 * then says whether that copy stands (ok: the seqlock and the scan's pin
 * held, so it may be delivered) or must be dropped (a writer overlapped
 * it; the scan takes the chunk again). */
struct gt_sink {
    int (*take)(void *ctx, gt_table *t, const struct gt_scan *sc,
                const struct gt_chunk *ch, uint32_t act_seq, bool flagged);
    int (*keep)(void *ctx, bool ok);
    void *ctx;
};
struct gt_scan {
    struct gt_filt filt;
    uint32_t part, nparts;
    uint32_t slot;     /* the pinned slot (set by gt__scan) */
    bool need_member;  /* visit needs m (reads records on the fanout set) */
    bool want_payload; /* visit needs the payload */
    bool fanout;       /* counted by gt_fanout, not as a scan */
    gt_select_fn fn; /* each member visited, read from its record */
    void *ctx;
    /* A walk of the fanout set that reads no records goes to the sink (or
     * is counted), not to fn. */
    const struct gt_sink *sink;
    /* A counting scan: members are counted here, fn is not called. The pin
     * is then checked when the scan ends (gt__scan), not per member (on the
     * fanout set also per chunk, as for any sink). */
    uint64_t *count;
};
/* Whether member user_id is in the scan's partition. */
static inline bool gt_in_part(gt_table *t, const struct gt_scan *sc,
                              uint64_t user_id) {
    return sc->nparts <= 1 ||
           gt_partition(gt_hash(t, user_id), sc->nparts) == sc->part;
}
int gt__scan(gt_table *t, uint64_t gid, const struct gt_scan *sc) GT_INTERNAL;

/* Limits of gt_options (segment.c), also what a snapshot may ask for. */
#define GT_LIMIT_MAX_MEMBERS (1ull << 30)
#define GT_LIMIT_MAX_GUILDS (1u << 24)

/* ---- snapshot.c: the format, for the loader and its fuzz test ----------- */
struct gt_snap_manifest {
    uint32_t payload_size, max_guilds;
    uint64_t max_members, guilds, members, created, digest;
};
struct gt_snap_guild {
    uint64_t guild_id, members, online, active, digest;
};
/* Records in key order; each returns 0, GT_ENOENT at the end, or an error.
 * max_records bounds the member records the source can hold (from its
 * size): counts claimed beyond it are refused before anything is reserved
 * for them, so a forged count cannot make a restore take memory. */
struct gt_snap_reader {
    uint64_t max_records;
    int (*manifest)(struct gt_snap_reader *r, const void **v, size_t *n);
    int (*guild)(struct gt_snap_reader *r, const void **k, size_t *kn,
                 const void **v, size_t *vn);
    int (*member)(struct gt_snap_reader *r, const void **k, size_t *kn,
                  const void **v, size_t *vn);
};
#define GT_SNAP_VERSION 1u
#define GT_SNAP_MANIFEST_BYTES 72u
#define GT_SNAP_GUILD_BYTES 48u
#define GT_SNAP_MEMBER_BYTES(payload) (64u + (payload) + 8u)
/* Digests, XXH3 streams with these seeds: a guild's over its members'
 * checksums (the value's last 8 bytes, as stored) in key order; the
 * table's over its guild records in key order. */
#define GT_SNAP_SEED_MEMBER 0x736e617073686f76ull
#define GT_SNAP_SEED_TABLE 0x736e617073686f77ull
#define GT_SNAP_SEED_GUILD 0x736e617073686f78ull
void gt__snap_manifest_encode(const struct gt_snap_manifest *m,
                              uint32_t version, uint8_t *b) GT_INTERNAL;
void gt__snap_guild_encode(const struct gt_snap_guild *g, uint8_t *b)
    GT_INTERNAL;
/* key: guild_id, user_id big-endian; val: GT_SNAP_MEMBER_BYTES(psize) */
void gt__snap_member_encode(uint64_t guild, const uint64_t w[8],
                            const uint8_t *payload, uint32_t psize,
                            uint8_t key[16], uint8_t *val) GT_INTERNAL;
int gt__snap_manifest_decode(const void *v, size_t n,
                             struct gt_snap_manifest *m) GT_INTERNAL;
int gt__snap_guild_decode(const void *k, size_t kn, const void *v, size_t vn,
                          struct gt_snap_guild *g) GT_INTERNAL;
int gt__snap_member_decode(const void *k, size_t kn, const void *v, size_t vn,
                           uint32_t psize, uint64_t *guild, gt_member *m,
                           const uint8_t **payload, uint64_t *check) GT_INTERNAL;
int gt__snap_load(gt_table *t, struct gt_snap_reader *rd, bool one,
                  uint64_t only, gt_progress_fn fn, void *ctx) GT_INTERNAL;

/* lmdbfile.c: LMDB's structure of a file checked before LMDB reads it. */
int gt__lmdb_check(const void *map, uint64_t size, const char *const *names)
    GT_INTERNAL;

/* Per-thread scratch memory reused by scans (freed at thread exit). */
void *gt__scratch(size_t bytes, int which) GT_INTERNAL;

/* Named crash points where the fault tests kill a writer (hooks.c). Only the
 * test library is built with GT_FAULT_HOOKS; elsewhere they are nothing. */
#ifdef GT_FAULT_HOOKS
void gt__hook(const char *step) GT_INTERNAL;
#define GT_HOOK(step) gt__hook(step)
#else
#define GT_HOOK(step) ((void)0)
#endif

#endif /* GT_INTERNAL_H */
