/* common.h - helpers shared by the test suites. */
#ifndef GT_TEST_COMMON_H
#define GT_TEST_COMMON_H

#include <guildtab.h>
#include <stdbool.h>
#include <stdint.h>

/* A table name unique to this process and call (the string stays valid for
 * the next 7 calls). */
const char *tc_name(const char *prefix);
/* Open a fresh table (created, EXCL) with the given sizes; asserts. */
gt_table *tc_open(const char *name, uint64_t max_members, uint32_t max_guilds,
                  uint32_t payload);
/* Close and unlink. */
void tc_drop(gt_table *t, const char *name);
/* A deterministic member for (seed, user). Its fields keep relations that
 * tc_member_whole checks (a torn copy breaks them): roles[3] is a hash of
 * roles[0..2], worker of session_id (tc_worker_of), joined_at of user_id. */
gt_member tc_member(uint64_t user, uint64_t seed);
uint32_t tc_worker_of(uint64_t session_id);
bool tc_member_whole(const gt_member *m);
uint64_t tc_mix(uint64_t x);

#endif

/* ---- multi-process helpers ---- */
#include <stddef.h>
#include <sys/types.h>

/* Zeroed memory shared with children forked after the call. */
void *tc_shared(size_t bytes);
/* Fork a child that runs fn(arg) and exits with its return value. */
pid_t tc_spawn(int (*fn)(void *), void *arg);
/* In a forked child: table `name`, opened anew (the child exits 1 if it
 * cannot be), with GT_CRASH_AT set to `at` unless it is NULL (the step of
 * the test library's build to stop or die at). */
gt_table *tc_child_open(const char *name, const char *at);
/* Wait for the children; assert each exited 0 (naming the one that did not). */
void tc_reap(const pid_t *pids, int n, const char *what);
/* Wait until child pid stops (SIGSTOP at a GT_CRASH_AT stop point); assert
 * it did, naming it `what`. */
void tc_stopped(pid_t pid, const char *what);
/* Fork a writer that opens table `name` anew and stops inside its insert of
 * user (tc_member(user, 1)) into guild gid, holding the guild's lock with
 * the record's seqlock odd (the stop point insert_done); return it once
 * stopped. The caller kills it. */
pid_t tc_stuck_insert(const char *name, uint64_t gid, uint64_t user);
/* Recipients of guild gid's fanout of its active members; asserts it
 * succeeds. */
uint64_t tc_fanout_size(gt_table *t, uint64_t gid);
/* Deletes members *last, *last - 1, ... of guild gid (1..*last, or
 * 0..*last, are present) until the next delete must rebuild the guild
 * smaller (member.c: storage over 64 slots, a quarter used); returns the
 * guild's counts then. */
gt_guild_stat tc_to_shrink_point(gt_table *t, uint64_t gid, uint64_t *last);
/* Whether process pid holds a reader pin in t: 1, 0, or -1 (no slot). */
int tc_pinned(gt_table *t, pid_t pid);
/* Grow and shrink guild gid (by 45,000 members a round, at most 20
 * rounds) until the blocks it retires, which pid's stalled pin holds back,
 * make a write evict that pin; assert every write succeeds and the pin is
 * gone. t needs room for the members and a short stall_timeout_ms. */
void tc_evict(gt_table *t, uint64_t gid, pid_t pid);
/* Seconds stress tests run (GT_STRESS_SECONDS, default def). */
double tc_seconds(double def);
double tc_now(void);
/* A fast per-process random generator. */
uint64_t tc_rand(uint64_t *state);
