/*
 * guildtab.h - shared-memory guild member tables: the whole public contract.
 *
 * A table is one named segment (by default /dev/shm/guildtab.NAME) holding the
 * member lists of many guilds. Any number of processes open it by name. Reads
 * (lookup, select, fanout, iteration) take no lock; writers of one guild are
 * serialised by a process-shared robust mutex kept in the guild, so writers of
 * different guilds run in parallel.
 *
 * Conventions (every function below follows them):
 * - Functions return int: 0 on success, a negative GT_E* code on failure.
 *   Codes that have an errno meaning use -errno (GT_EINVAL == -EINVAL); other
 *   system errors pass through as -errno. gt_strerror() describes any code.
 * - A member is keyed by (guild_id, user_id). Any 64-bit values are valid ids.
 * - "Concurrency:" says who may call a function while others do what.
 * - Processes: a handle stays usable in both parent and child after fork()
 *   (each process takes its own thread slots). Every process needs read and
 *   write permission on the table file, readers included: scans and writes
 *   record themselves in the table's slot table (as LMDB readers do in its
 *   lock file).
 *
 * Guarantees (tested; see README "Guarantees"):
 * 1. Readers never take a lock and never wait for a writer beyond a bounded
 *    retry time (GT_EBUSY after that). A reader never sees a torn record.
 * 2. Point operations on one key are linearizable.
 * 3. A select or fanout visits every member that matches for the whole scan
 *    exactly once, never visits one that is absent for the whole scan, and
 *    visits no member twice.
 * 4. Writes are all-or-nothing: a failed write changes nothing.
 * 5. Bad input gives an error code, never a crash; a full table or file system
 *    gives GT_EFULL / GT_ENOSPC, never SIGBUS.
 */
#ifndef GUILDTAB_H
#define GUILDTAB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GT_BUILDING_LIBRARY) && defined(__GNUC__)
#define GT_API __attribute__((visibility("default")))
#else
#define GT_API
#endif

#define GT_VERSION_MAJOR 0
#define GT_VERSION_MINOR 1
#define GT_VERSION_PATCH 0

/* Error codes. X(name, value, message); values are negative. */
#define GT_ERRNO_MAP(X)                                                        \
    X(EINVAL, -22, "invalid argument")                                         \
    X(ENOENT, -2, "no such table, guild or member")                            \
    X(EEXIST, -17, "already exists")                                           \
    X(ENOSPC, -28, "no space left on the file system holding the table")      \
    X(ENOMEM, -12, "out of process memory")                                    \
    X(EACCES, -13, "permission denied")                                        \
    X(EBUSY, -16, "a writer kept the data busy beyond the retry bound")        \
    X(EROFS, -30, "table was opened read-only")                                \
    X(ESTALE, -116, "scan stopped: it stalled while writers needed memory")   \
    X(EFULL, -3001, "table full (max_members, max_guilds or its heap)")        \
    X(ECORRUPT, -3002, "segment is corrupt or is not a guildtab table")        \
    X(EINCOMPAT, -3003, "segment made by an incompatible guildtab build")      \
    X(EMISMATCH, -3004, "options do not match the existing table")

typedef enum gt_error {
#define GT__ERR_ENUM(name, value, msg) GT_##name = (value),
    GT_ERRNO_MAP(GT__ERR_ENUM)
#undef GT__ERR_ENUM
} gt_error;

/* An open table. One handle may be used by any number of threads at once. */
typedef struct gt_table gt_table;

/* ---- member records ---------------------------------------------------- */

/* gt_member.flags: bits 0-15 belong to the library (only these two are
 * defined; the others must be zero), bits 16-31 are free for the host. */
#define GT_ONLINE 0x1u /* the user has a session */
#define GT_ACTIVE 0x2u /* the session receives fanout (is looking) */
#define GT_FLAGS_LIBRARY 0x0000FFFFu
#define GT_FLAGS_HOST 0xFFFF0000u
#define GT_FLAGS_DEFINED (GT_ONLINE | GT_ACTIVE | GT_FLAGS_HOST)

/* One member of one guild. 64 bytes. */
typedef struct gt_member {
    uint64_t user_id;
    uint64_t session_id; /* routing: which session of the user */
    uint64_t roles[4];   /* 256-bit role bitmap; role r is bit r%64 of [r/64] */
    int64_t joined_at;   /* host-defined timestamp, stored as given */
    uint32_t worker;     /* routing: which worker process holds the session */
    uint32_t flags;      /* GT_ONLINE, GT_ACTIVE, host bits 16-31 */
} gt_member;

/* ---- opening ----------------------------------------------------------- */

#define GT_CREATE 0x1u /* create the table if it does not exist */
#define GT_EXCL 0x2u   /* with GT_CREATE: fail with GT_EEXIST if it exists */
#define GT_RDONLY 0x4u /* refuse writes through this handle (GT_EROFS); the
                          file is still opened read-write (see above) */

#define GT_PAYLOAD_MAX 1024u

typedef struct gt_options {
    const char *dir;      /* directory of the segment file; NULL: /dev/shm */
    uint64_t max_members; /* members in all guilds; 0: 1048576 */
    uint32_t max_guilds;  /* 0: 4096 */
    uint32_t payload_size; /* opaque bytes stored per member, 0..1024 */
    uint32_t max_slots;   /* threads that scan or write at once, in all
                             processes together; 0: 256 */
    uint32_t mode;        /* file mode when created; 0: 0600 */
    uint32_t flags;       /* GT_CREATE, GT_EXCL, GT_RDONLY */
    uint32_t read_timeout_ms; /* how long a read of this handle waits for a
                                 record a writer holds mid-write before it
                                 returns GT_EBUSY; 0: 2000 */
    uint32_t stall_timeout_ms; /* table-wide, set at creation: a scan that
                                  has run this long may be stopped with
                                  GT_ESTALE when writers need the memory it
                                  holds; 0: 10000 */
} gt_options;

/*
 * gt_open - create or attach the table called name.
 * name: 1-200 characters from [A-Za-z0-9._-], not starting with '.'; the file
 *   is <dir>/guildtab.<name>.
 * opts: may be NULL (attach only, defaults). When attaching, size options
 *   that are non-zero must equal the table's own; zero means "whatever the
 *   table has". A new table reserves its maximum size sparsely: memory is used
 *   only as members are stored.
 * Huge pages: in a tmpfs mounted huge=advise (mount -o remount,huge=advise
 *   /dev/shm), memory a write takes in blocks of 2 MiB or more (a large
 *   guild's storage, its fanout set) comes in 2 MiB pages, which every
 *   process maps as such; the rest stays in 4 KiB pages. Large guilds' reads
 *   then miss the TLB far less (README: "Limits"). Other mounts are used as
 *   they are; huge=within_size or huge=always put every page of the table in
 *   a 2 MiB one, small tables' too.
 * out: receives the handle; set to NULL on failure.
 * Errors: GT_EINVAL (bad name, option out of range, out NULL, unknown flag),
 *   GT_ENOENT (no such table and no GT_CREATE), GT_EEXIST (GT_EXCL and it
 *   exists), GT_EMISMATCH (options differ from the existing table),
 *   GT_ECORRUPT (file too short, bad magic, bad header checksum, sizes or
 *   offsets out of range), GT_EINCOMPAT (other format version or layout),
 *   GT_EACCES (file permissions), GT_ENOSPC (file system full at creation),
 *   GT_ENOMEM, or another -errno from open/mmap.
 * Concurrency: any process and thread, at any time, including several racing
 *   to create the same table: exactly one creates it, the others attach.
 */
GT_API int gt_open(const char *name, const gt_options *opts, gt_table **out);

/*
 * gt_close - release the handle: its thread slots and its mapping.
 * The table stays (until gt_unlink). NULL is ignored.
 * Concurrency: no other thread may be using this handle.
 */
GT_API void gt_close(gt_table *t);

/*
 * gt_unlink - remove the table's file. Processes that have it open keep using
 * it until they close it; its memory is freed after the last close.
 * dir: NULL for /dev/shm.
 * Errors: GT_EINVAL (bad name), GT_ENOENT (no such table), GT_EACCES (no
 *   write permission on dir), -EPERM (a sticky dir such as /dev/shm, and the
 *   table belongs to another user), other -errno from unlink(2).
 * Concurrency: any time.
 */
GT_API int gt_unlink(const char *name, const char *dir);

/* ---- point operations ----------------------------------------------------
 * Writes serialise with the other writers of the same guild only. A write
 * either fully happens or (on any error) leaves the table unchanged.
 * Errors every write may return besides its own: GT_EINVAL (t or m NULL),
 * GT_EROFS (read-only handle), GT_EFULL (no slot for this thread: max_slots
 * threads are already using the table), GT_ECORRUPT (the guild's structures
 * fail validation), GT_ENOMEM.
 */

/*
 * gt_insert - insert the member, or replace it if (guild_id, m->user_id)
 * exists. Creates the guild if it does not exist.
 * payload: payload_size bytes to store, or NULL for zeros.
 * Errors: GT_EINVAL (flag bits 2-15 set), GT_EFULL (max_members members, or
 *   max_guilds guilds when the guild is new, or the segment heap is
 *   exhausted), GT_ENOSPC (the file system refused memory).
 * Concurrency: any thread; readers see the old or the new record, whole.
 */
GT_API int gt_insert(gt_table *t, uint64_t guild_id, const gt_member *m,
                     const void *payload);

/*
 * gt_insert_new - like gt_insert, but fails if the member exists.
 * Errors: as gt_insert, plus GT_EEXIST (member exists; nothing changed).
 */
GT_API int gt_insert_new(gt_table *t, uint64_t guild_id, const gt_member *m,
                         const void *payload);

/*
 * gt_insert_many - gt_insert for n members of one guild, in order (each
 * inserted, or replacing the member with its user_id). Faster than n calls
 * (README: "Figures"): the guild is locked once per 256 members, the
 * storage grown once for them, the members' memory fetched ahead, and up
 * to 16 members committed at a time (fewer when the records of members
 * they replace are large and fill the undo log; a new member's record is
 * not copied into it; a replacement that touches the fanout set, or an
 * entry that must grow it, is committed alone). Each member is whole to
 * readers; the batch is not one atomic write, but it is applied in order,
 * so after a crash or an error a prefix of it stands.
 * payloads: n * payload_size bytes, member i's at i * payload_size; NULL
 *   for zeros.
 * done: may be NULL; receives how many members, from the first, were
 *   applied (n on success).
 * Returns the number of members that were new (the others replaced one).
 * Errors: GT_EINVAL (t NULL, m NULL with n > 0, n > INT_MAX, flag bits 2-15
 *   set in any member; nothing applied), GT_EFULL (max_members members: the
 *   members before the first that did not fit were applied; or as
 *   gt_insert), GT_ENOSPC, and the other errors of gt_insert.
 * Concurrency: as gt_insert; other writers of the guild wait for at most
 *   256 members.
 */
GT_API int gt_insert_many(gt_table *t, uint64_t guild_id, const gt_member *m,
                          const void *payloads, size_t n, size_t *done);

/*
 * gt_lookup - copy the member out.
 * out: receives the record; may be NULL to test presence only.
 * payload: receives payload_size bytes; may be NULL.
 * Errors: GT_EINVAL (t NULL), GT_ENOENT (no such guild or member), GT_EBUSY
 *   (a writer kept the record mid-write beyond the retry bound: it stalled or
 *   died; retry later), GT_ECORRUPT (the guild's storage lies outside the
 *   segment).
 * Concurrency: any thread, lock-free, concurrently with writers.
 */
GT_API int gt_lookup(gt_table *t, uint64_t guild_id, uint64_t user_id,
                     gt_member *out, void *payload);

/*
 * gt_lookup_many - look up n members of one guild at once: what n calls of
 * gt_lookup would return, but the memory fetches of different members
 * overlap, so a batch costs a fraction of n calls once the guild is larger
 * than the caches (README: "Figures"). Each member is read whole, as by
 * gt_lookup; the batch is not one snapshot of the guild.
 * user_ids: the n ids (repeats allowed).
 * out: receives n records, out[i] for user_ids[i] when found[i] is 1 (left
 *   as it was otherwise); may be NULL to test presence only.
 * payloads: receives n * payload_size bytes, member i's at i * payload_size;
 *   may be NULL.
 * found: receives n bytes, 1 (found) or 0 (absent).
 * Returns the number found (0 also when there is no such guild).
 * Errors: GT_EINVAL (t NULL; user_ids or found NULL with n > 0; n > INT_MAX),
 *   GT_EBUSY (as gt_lookup; found[] and out[] are then incomplete),
 *   GT_ECORRUPT (the guild's storage lies outside the segment).
 * Concurrency: any thread, lock-free, concurrently with writers.
 */
GT_API int gt_lookup_many(gt_table *t, uint64_t guild_id,
                          const uint64_t *user_ids, size_t n, gt_member *out,
                          void *payloads, uint8_t *found);

/*
 * gt_contains - 1 if the member exists, 0 if not, or a negative error as
 * gt_lookup (never GT_ENOENT).
 */
GT_API int gt_contains(gt_table *t, uint64_t guild_id, uint64_t user_id);

/*
 * gt_delete - remove the member. The guild stays, even when empty.
 * A delete that leaves the guild's storage or fanout set sparse then
 * rebuilds the guild smaller, after the delete has committed. That rebuild
 * is optional: it takes only memory that is free at once (it does not wait
 * for scans to release memory, as writes that need memory do); if it cannot
 * get memory (or its process dies), it is undone, the delete stands, and
 * the next write that finds the guild sparse tries again.
 * Errors: GT_ENOENT (no such guild or member).
 */
GT_API int gt_delete(gt_table *t, uint64_t guild_id, uint64_t user_id);

/*
 * gt_update_flags - flags = (flags & ~clear) | set, atomically.
 * old_flags: receives the flags before the change; may be NULL.
 * Setting or clearing GT_ACTIVE adds or removes the member from the guild's
 * fanout set; a set left sparse is rebuilt smaller as gt_delete does (the
 * update stands if that fails).
 * Errors: GT_EINVAL (set or clear has bits 2-15), GT_ENOENT, GT_EFULL /
 *   GT_ENOSPC (the fanout set had to grow and no memory could be had).
 */
GT_API int gt_update_flags(gt_table *t, uint64_t guild_id, uint64_t user_id,
                           uint32_t set, uint32_t clear, uint32_t *old_flags);

/* One member's change of flags in gt_update_flags_many. */
typedef struct gt_flag_update {
    uint64_t user_id;
    uint32_t set, clear; /* as gt_update_flags */
} gt_flag_update;

/*
 * gt_update_flags_many - gt_update_flags for n members of one guild, in
 * order: each member's new flags are (old & ~clear) | set. Absent members
 * are skipped. Faster than n calls (README: "Figures"): the guild is locked
 * once per 256 updates, the members' memory is fetched ahead, and updates
 * that leave GT_ACTIVE alone are committed some twenty at a time. Each
 * update is whole to readers; the batch is not one atomic write, but it
 * is applied in order, so after a crash or an error a prefix of it stands.
 * done: may be NULL; receives how many updates, from the first, were
 *   applied or skipped (n on success).
 * Returns the number of members whose flags changed.
 * Errors: GT_EINVAL (t NULL, u NULL with n > 0, n > INT_MAX, a set or clear
 *   with library bits other than GT_ONLINE and GT_ACTIVE; nothing applied),
 *   and the errors of gt_update_flags other than GT_ENOENT for an absent
 *   member (GT_ENOENT: no such guild).
 * Concurrency: as gt_update_flags; other writers of the guild wait for at
 *   most 256 updates.
 */
GT_API int gt_update_flags_many(gt_table *t, uint64_t guild_id,
                                const gt_flag_update *u, size_t n,
                                size_t *done);

/*
 * gt_update_session - set the member's routing (worker, session_id).
 * Errors: GT_ENOENT.
 */
GT_API int gt_update_session(gt_table *t, uint64_t guild_id, uint64_t user_id,
                             uint32_t worker, uint64_t session_id);

/*
 * gt_update_roles - roles = (roles & ~clear) | set, atomically.
 * set, clear: 4 words each; either may be NULL (no bits).
 * Errors: GT_ENOENT.
 */
GT_API int gt_update_roles(gt_table *t, uint64_t guild_id, uint64_t user_id,
                           const uint64_t set[4], const uint64_t clear[4]);

/* ---- guilds and the table ---------------------------------------------- */

/*
 * gt_guild_reserve - create the guild if needed and make room for at least
 * members members, so a bulk load does not grow the storage repeatedly.
 * Errors: GT_EINVAL (members > max_members), GT_EFULL, GT_ENOSPC, as writes.
 */
GT_API int gt_guild_reserve(gt_table *t, uint64_t guild_id, uint64_t members);

/*
 * gt_guild_delete - remove the guild and all its members. Scans already
 * running on it finish on the members they started with.
 * Errors: GT_ENOENT (no such guild), as writes.
 */
GT_API int gt_guild_delete(gt_table *t, uint64_t guild_id);

typedef struct gt_guild_stat {
    uint64_t guild_id;
    uint64_t members;    /* present members */
    uint64_t online;     /* members with GT_ONLINE */
    uint64_t active;     /* members with GT_ACTIVE (the fanout set) */
    uint64_t capacity;   /* member slots in the current storage */
    uint64_t bytes_used; /* storage and fanout set of this guild */
} gt_guild_stat;

/*
 * gt_guild_info - counters of one guild, each exact at one moment (not
 * necessarily the same moment for all fields while writers run).
 * Errors: GT_EINVAL (t or out NULL), GT_ENOENT.
 * Concurrency: any thread, lock-free.
 */
GT_API int gt_guild_info(gt_table *t, uint64_t guild_id, gt_guild_stat *out);

/*
 * gt_guilds - call fn once for every guild (in no particular order) with its
 * counters. A guild created or deleted during the walk may or may not be seen.
 * fn returns 0 to go on; any other value stops the walk and is returned.
 * Errors: GT_EINVAL (t or fn NULL).
 * Concurrency: any thread, lock-free.
 */
typedef int (*gt_guild_fn)(void *ctx, const gt_guild_stat *g);
GT_API int gt_guilds(gt_table *t, gt_guild_fn fn, void *ctx);

typedef struct gt_table_stat {
    uint64_t guilds, max_guilds;
    uint64_t members, max_members;
    uint32_t payload_size;
    uint32_t slots_used, max_slots;
    uint32_t version; /* format version of the segment */
    uint64_t bytes_used;      /* heap bytes holding guild data */
    uint64_t bytes_retired;   /* freed, waiting for readers to move on */
    uint64_t bytes_resident;  /* memory the file occupies (st_blocks) */
    uint64_t bytes_reserved;  /* size of the sparse file */
    double bytes_per_member;  /* bytes_used / members (0 if empty) */
    double overhead_per_member; /* bytes_per_member minus the member's own
                                   64 bytes and its payload */
    uint64_t record_bytes;    /* bytes of one member record with payload */
} gt_table_stat;

/*
 * gt_info - table-wide counters.
 * Errors: GT_EINVAL (t or out NULL), -errno from fstat.
 * Concurrency: any thread, lock-free.
 */
GT_API int gt_info(gt_table *t, gt_table_stat *out);

/* ---- statistics ------------------------------------------------------------
 * Counters of everything done to the table since it was created, by every
 * process, kept by the library at a cost of a few nanoseconds per operation
 * (see README). Counts only grow; rates are differences of two readings.
 * Lookups are counted per thread in batches of 256, so a thread's last few
 * lookups show up late (when it has done 256 more, closes the handle or
 * exits); everything else is counted when it happens.
 */
#define GT_STATS_BUCKETS 16
typedef struct gt_stats {
    uint64_t lookups;       /* gt_lookup and gt_contains calls */
    uint64_t inserts;       /* successful gt_insert / gt_insert_new */
    uint64_t deletes;       /* successful gt_delete */
    uint64_t updates;       /* successful gt_update_flags/_session/_roles,
                               members gt_update_flags_many found */
    uint64_t guild_deletes; /* successful gt_guild_delete */
    uint64_t scans;         /* gt_select calls, cursor pages read, and
                               gt_select_count calls that walk members (not
                               those the guild's counters answer) */
    uint64_t fanouts;       /* gt_fanout calls that ran */
    uint64_t recipients;    /* members those fanouts selected */
    uint64_t read_waits;    /* reads that found a record or chunk mid-write
                               and waited for its writer */
    uint64_t lock_waits;    /* writes that waited for another writer of the
                               guild */
    uint64_t recoveries;    /* half-done writes of dead processes finished */
    uint64_t fanouts_timed; /* one fanout in 8 per thread is timed: */
    uint64_t fanout_us_log2[GT_STATS_BUCKETS]; /* timed fanouts by latency:
        bucket 0 under 1 us, bucket b in [2^(b-1), 2^b) us, the last bucket
        2^14 us (16 ms) and over */
} gt_stats;

/*
 * gt_stats_read - the table's counters now.
 * Errors: GT_EINVAL (t or out NULL).
 * Concurrency: any thread, lock-free; works on GT_RDONLY handles. Each
 *   counter is exact at some moment during the call.
 */
GT_API int gt_stats_read(gt_table *t, gt_stats *out);

/* ---- reader slots --------------------------------------------------------
 * Every thread that reads or writes a table holds one of its max_slots slots
 * while it has the table open. A slot's pin says the thread is inside a read
 * (memory retired since then is kept for it); a stalled pin is evicted after
 * stall_timeout_ms, a dead process's pin is dropped at once, and its slot is
 * freed by the next sweep: every gt_open sweeps, a thread short of a slot
 * sweeps, and gt_reap sweeps at once.
 */
typedef struct gt_reader_stat {
    uint32_t slot;     /* index of the slot */
    uint32_t pid;      /* owning process */
    uint32_t tid;      /* owning thread (Linux tid) */
    uint8_t alive;     /* 1 if the owning process is running */
    uint8_t pinned;    /* 1 if inside a read now */
    uint8_t writing;   /* 1 if a guild write is in flight (undo log) */
    uint8_t reserved_;
    uint64_t pinned_ns; /* how long the current pin has lasted (0: none) */
    uint64_t epoch_lag; /* reclamation epochs since the pin (0: none) */
} gt_reader_stat;
typedef int (*gt_reader_fn)(void *ctx, const gt_reader_stat *r);

/*
 * gt_readers - call fn for every slot in use, in slot order; a non-zero
 * return stops the walk and is returned. A snapshot of racing state: a slot
 * may be freed or taken while it is walked.
 * Errors: GT_EINVAL (t or fn NULL).
 * Concurrency: any thread, lock-free; works on GT_RDONLY handles.
 */
GT_API int gt_readers(gt_table *t, gt_reader_fn fn, void *ctx);

/*
 * gt_reap - free now the slots of dead processes (finishing first any write
 * one died in the middle of, as a writer would) and drop their pins.
 * reaped: may be NULL; receives the number of slots freed.
 * Errors: GT_EINVAL (t NULL), GT_EROFS (read-only handle).
 * Concurrency: any thread; takes the global lock briefly when it finds a
 *   dead slot.
 */
GT_API int gt_reap(gt_table *t, uint32_t *reaped);

/*
 * gt_check - check the whole table for consistency: header, guild directory
 * and headers, every guild's storage (control bytes, records, probe chains,
 * duplicates, counters), fanout sets against records, the heap (every block
 * accounted for exactly once, free lists, memory actually committed), the
 * retire list, slots and undo logs. Half-done writes of dead processes are
 * recovered first, as any writer would.
 * report: may be NULL. report->fn (may be NULL) is called with a one-line
 * description of each violation (at most GT_CHECK_MAX_MESSAGES; the rest are
 * counted); report->violations and the counters are filled in.
 * Returns 0 if the table is consistent, GT_ECORRUPT if any violation was
 * found, or: GT_EINVAL (t NULL), GT_ENOMEM, GT_ECORRUPT also when a lock of
 * the table is unrecoverable, or the non-zero value report->progress
 * returned to stop it.
 * Concurrency: stops every writer of the table while it runs (it takes every
 * guild's lock, then the global lock); readers go on.
 */
#define GT_CHECK_MAX_MESSAGES 1000u
#define GT_CHECK_PROGRESS_EVERY 65536u
typedef void (*gt_violation_fn)(void *ctx, const char *what);
typedef struct gt_check_report {
    gt_violation_fn fn; /* in: called per violation, or NULL */
    void *ctx;          /* in: passed to fn */
    uint64_t violations; /* out: violations found */
    uint64_t guilds, members, blocks; /* out: what was checked */
    /* in: called with (progress_ctx, members checked, members the table
     * counts) every GT_CHECK_PROGRESS_EVERY members and once at the end; a
     * non-zero return stops the check (writers resume), and gt_check returns
     * that value. NULL: none. */
    int (*progress)(void *progress_ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} gt_check_report;
GT_API int gt_check(gt_table *t, gt_check_report *report);

/* ---- scans --------------------------------------------------------------
 * A filter selects members: all of flags_set set, all of flags_clear clear,
 * at least one role of roles_any (unless roles_any is all zero), and, when
 * match_worker is non-zero, worker == worker. A NULL filter (or a zeroed one)
 * matches every member.
 *
 * part/nparts split a guild into nparts disjoint partitions by a hash of the
 * user id; partition part of every scan and fanout holds the same users, so
 * nparts processes (relays) can each take one. nparts 0 or 1: whole guild.
 *
 * Scans whose filter requires GT_ACTIVE read only the guild's fanout set.
 * Callbacks return 0 to go on; any other value stops the scan and is
 * returned by the scan function (use positive values to tell them apart from
 * GT_E* codes). Callbacks may call read functions on the table. A scan holds
 * on to the storage it started on, so memory the guild replaces meanwhile is
 * freed only when the scan ends; a scan that runs longer than the table's
 * stall_timeout_ms while writers need that memory is stopped: it returns
 * GT_ESTALE (what it delivered until then was correct; start it again).
 */
typedef struct gt_filter {
    uint32_t flags_set;
    uint32_t flags_clear;
    uint64_t roles_any[4];
    uint32_t worker;
    uint32_t match_worker;
} gt_filter;

typedef int (*gt_select_fn)(void *ctx, const gt_member *m,
                            const void *payload);

/*
 * gt_select - call fn for every member of the guild matching the filter.
 * payload passed to fn points to payload_size bytes (valid during the call).
 * Errors: GT_EINVAL (t or fn NULL, part >= nparts), GT_ENOENT (no such
 *   guild), GT_EBUSY (a record stayed mid-write beyond the retry bound; some
 *   members may have been delivered), GT_ESTALE (stopped after stalling, see
 *   above), GT_EFULL (no thread slot).
 * Concurrency: any thread, lock-free, concurrently with writers.
 */
GT_API int gt_select(gt_table *t, uint64_t guild_id, const gt_filter *f,
                     uint32_t part, uint32_t nparts, gt_select_fn fn,
                     void *ctx);

/*
 * gt_select_count - number of members gt_select would visit.
 * Errors: as gt_select (count NULL: GT_EINVAL).
 */
GT_API int gt_select_count(gt_table *t, uint64_t guild_id, const gt_filter *f,
                           uint32_t part, uint32_t nparts, uint64_t *count);

/*
 * Cursor for paging through a guild's members. Pages come in a stable order
 * (ascending hash of user_id); a cursor is a plain value: it can be kept,
 * copied, and resumed later from any process. A member present from
 * gt_iter_first until the end is returned exactly once; members added or
 * removed meanwhile may or may not be.
 */
typedef struct gt_cursor {
    uint64_t guild_id;
    uint64_t hash;    /* resume after (hash, user_id) */
    uint64_t user_id;
    uint32_t state;   /* internal: started / finished */
    uint32_t reserved;
} gt_cursor;

/*
 * gt_iter_first - start a cursor on guild_id and fetch the first page.
 * gt_iter_next - fetch the next page.
 * out: room for max members; payloads: room for max * payload_size bytes,
 *   or NULL. *n receives the number returned; 0 means the end was reached.
 * f: filter applied to each page (NULL: all).
 * Errors: GT_EINVAL (t, cursor, out or n NULL, max 0, cursor not started by
 *   gt_iter_first), GT_ENOENT (no such guild), GT_EBUSY, GT_ESTALE, GT_EFULL
 *   (no thread slot), GT_ENOMEM. After an error the cursor is still valid: calling
 *   gt_iter_next again resumes where the last successful page ended.
 * Concurrency: any thread, lock-free; pages may be fetched by different
 *   processes.
 */
GT_API int gt_iter_first(gt_table *t, uint64_t guild_id, const gt_filter *f,
                         gt_cursor *c, gt_member *out, void *payloads,
                         size_t max, size_t *n);
GT_API int gt_iter_next(gt_table *t, gt_cursor *c, const gt_filter *f,
                        gt_member *out, void *payloads, size_t max, size_t *n);

/* ---- fanout ------------------------------------------------------------- */

typedef struct gt_recipient {
    uint64_t session_id;
    uint64_t user_id;
} gt_recipient;

/* Called with a batch of recipients that all belong to one worker. */
typedef int (*gt_fanout_fn)(void *ctx, uint32_t worker,
                            const gt_recipient *batch, size_t n);

#define GT_FANOUT_BATCH 256u /* most recipients in one callback */

/*
 * gt_fanout - deliver the matching members' (session_id, user_id), grouped
 * by worker, in batches of at most GT_FANOUT_BATCH. A worker may receive
 * several batches. With a filter requiring GT_ACTIVE (the usual message
 * fanout) only the guild's fanout set is read; members activated after the
 * fanout started are not delivered, so no member is delivered twice.
 * Errors: as gt_select.
 * Concurrency: any thread, lock-free, concurrently with writers.
 */
GT_API int gt_fanout(gt_table *t, uint64_t guild_id, const gt_filter *f,
                     uint32_t part, uint32_t nparts, gt_fanout_fn fn,
                     void *ctx);

/* ---- snapshots (LMDB) ------------------------------------------------------
 * A snapshot is a single LMDB file holding every member record, checksummed
 * one by one, per guild and as a whole, with the table's options. It is
 * written to a temporary file beside path and renamed over path only when
 * complete and synced, so a crash mid-snapshot leaves the previous snapshot
 * intact. Checksums (XXH3) catch damage, truncation and inconsistent edits;
 * they are not a signature against a deliberate forger.
 *
 * Progress callbacks get the records done and the total (when known) every
 * 65536 records and at the end; a non-zero return cancels the operation,
 * which then leaves nothing behind and returns that value.
 */
typedef int (*gt_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/*
 * gt_snapshot - write every guild of t to path. Each guild is copied as of
 * one moment (its writers wait while its storage is copied in memory: about
 * 10 ms per million members; readers never wait); the guilds are copied one
 * after another.
 * Errors: GT_EINVAL (t or path NULL, path too long), GT_ENOSPC, GT_EACCES,
 *   GT_ENOMEM, GT_EFULL (no thread slot), other -errno (the file system).
 * Concurrency: any thread; readers and writers go on.
 */
GT_API int gt_snapshot(gt_table *t, const char *path, gt_progress_fn fn,
                       void *ctx);

/*
 * gt_snapshot_guild - the same for one guild (moving a guild between hosts
 * is gt_snapshot_guild here and gt_restore_guild there).
 * Errors: as gt_snapshot, plus GT_ENOENT (no such guild).
 */
GT_API int gt_snapshot_guild(gt_table *t, uint64_t guild_id, const char *path,
                             gt_progress_fn fn, void *ctx);

/*
 * gt_restore - build a new table name from the snapshot at path. Everything
 * is verified (format version, every checksum, counts, that each record is
 * a valid member in the right guild); the table is built under a temporary
 * name and appears only when complete, so a failed restore leaves nothing.
 * opts: may be NULL; dir, max_slots, mode, stall_timeout_ms are used;
 *   max_members / max_guilds default to the snapshot's (and must hold its
 *   members); payload_size must be 0 or the snapshot's.
 * Errors: GT_EINVAL (path or name NULL or bad), GT_ENOENT (no file at path),
 *   GT_EEXIST (table name exists), GT_ECORRUPT (not a snapshot, damaged,
 *   truncated, or inconsistent), GT_EINCOMPAT (another snapshot format),
 *   GT_EMISMATCH (opts conflict with it), GT_ENOSPC, GT_EACCES, GT_ENOMEM.
 * Concurrency: any time; the snapshot file may be read by others meanwhile.
 */
GT_API int gt_restore(const char *path, const char *name,
                      const gt_options *opts, gt_progress_fn fn, void *ctx);

/*
 * gt_restore_guild - add guild guild_id from the snapshot at path to the
 * open table t (which must not hold it). Verified as gt_restore; the guild
 * fills in as it is read and is removed again if anything fails.
 * Errors: as gt_restore (GT_ENOENT also: guild not in the snapshot;
 *   GT_EEXIST: t has the guild), plus GT_EFULL, GT_EROFS.
 * Concurrency: any thread; readers see the guild as it fills.
 */
GT_API int gt_restore_guild(gt_table *t, const char *path, uint64_t guild_id,
                            gt_progress_fn fn, void *ctx);

/* ---- errors and version -------------------------------------------------- */

/* Message for any code (GT_E* or -errno; 0: "success"); never NULL. Codes
 * shared with errno get the library's wording (GT_ENOENT: "no such table,
 * guild or member"). */
GT_API const char *gt_strerror(int err);
/* "GT_EFULL" style name for a GT_E* code, the errno name ("EPIPE") for other
 * -errno values, "OK" for 0, "GT_E?" otherwise. Never NULL. */
GT_API const char *gt_errname(int err);
/* Run-time version: (major << 16) | (minor << 8) | patch. */
GT_API unsigned gt_version(void);
/* Run-time version as "major.minor.patch". */
GT_API const char *gt_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* GUILDTAB_H */
