/* harness.h - the fault tests' shared machinery: a writer that logs each
 * write's intent before it and its acknowledgement after it, in memory
 * shared with the test, a model of what was acknowledged, and the check of
 * a whole table against it. */
#ifndef GT_FAULT_HARNESS_H
#define GT_FAULT_HARNESS_H

#include <guildtab.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define FH_GUILDS 3
#define FH_USERS 6000u

enum { FH_PUT, FH_DEL, FH_FLAGS, FH_SESSION, FH_GDEL };
/* Most entries of one gt_update_flags_many or gt_insert_many batch: its
 * writes are logged as FH_FLAGS or FH_PUT entries with `many` set, and after
 * a crash a prefix of them may have happened. */
#define FH_MANY_MAX 40

struct fh_entry {
    uint8_t op, done, many;
    uint16_t g;
    uint32_t u;
    uint32_t set, clear;
    gt_member m; /* FH_PUT: the record; FH_SESSION: worker, session_id */
};

struct fh_model {
    bool present[FH_GUILDS][FH_USERS];
    gt_member m[FH_GUILDS][FH_USERS];
};

/* Create the shared log and a fresh table for prefix; returns the table. */
gt_table *fh_setup(const char *prefix);
void fh_teardown(gt_table *t);
/* Fork a writer: random writes from seed until max_ops (then it exits 0) or
 * until it dies. crash_at: GT_CRASH_AT for it, or NULL. Returns once the
 * writer has its table open. */
pid_t fh_writer(uint64_t seed, const char *crash_at, uint64_t max_ops);
/* As fh_writer, but the writer begins by draining guild seed % FH_GUILDS
 * (every user deleted in turn): its first rebuilds shrink that guild. */
pid_t fh_drainer(uint64_t seed, const char *crash_at, uint64_t max_ops);
/* Wait for the writer: true if it was killed (SIGKILL), false if it finished
 * its max_ops; any other end fails the test. */
bool fh_reap(pid_t p);
/* Apply the writer's acknowledged writes to md and restart the log; returns
 * how many entries it was in the middle of (copied to out[0..FH_MANY_MAX)):
 * 0, 1, or the unacknowledged tail of a batch. */
int fh_apply(struct fh_model *md, struct fh_entry *out);
/* Check the table against md; of the k entries in flight, a prefix may have
 * happened (the table decides: a single write is all or nothing), after
 * which everything must match exactly: records, guild counters, fanout
 * sets, scans, the member count. */
void fh_verify(gt_table *t, struct fh_model *md, const struct fh_entry *inflight,
               int k);
uint64_t fh_gid(unsigned g);
/* Writes acknowledged by all writers so far. */
uint64_t fh_acknowledged(void);
/* The table's name, for other processes to open. */
const char *fh_name(void);
/* gt_check must find nothing wrong (violations are logged). */
void fh_check(gt_table *t);

#endif
