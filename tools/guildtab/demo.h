/*
 * demo.h - what the parts of `guildtab demo` share.
 *
 * The demo plays Discord's largest-guild problem on one host: one guild of
 * N members, P% of them ACTIVE (looking at the guild), read by R reader
 * processes, churned by one writer process (presence and sessions), and
 * fanned out to by one sender process, all at once, for S seconds.
 *
 * Processes: the parent creates and loads the table, closes it, and forks
 * the children; each child opens the table by name itself (a handle is
 * per process), waits at a start barrier, runs until a shared deadline,
 * stores its results in a shared anonymous mapping made before the fork,
 * and exits. The parent reaps them, reopens the table, checks and reports.
 *
 * Every member field is a pure function of the user id (or of the load
 * index, for the user id itself), so any process can rebuild the expected
 * record and check what the table returned without sharing state.
 */
#ifndef GUILDTAB_DEMO_H
#define GUILDTAB_DEMO_H

#include "cli.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define DEMO_GUILD 1u       /* the one guild the demo loads */
#define DEMO_MAX_GUILDS 64u /* table option; the demo needs one */
#define DEMO_WORKERS 16u    /* worker ids are in [0, DEMO_WORKERS) */
#define DEMO_ROLES 256u     /* each member holds one of the 256 roles */
#define DEMO_ROLE_WORDS 4u  /* gt_member.roles */
#define DEMO_WORD_BITS 64u  /* role r is bit r % 64 of roles[r / 64] */
#define DEMO_PCT 100u       /* --active-pct is a percentage */
#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000.0

/* ---- configuration and the loaded table ---------------------------------- */

struct demo_config {
    uint64_t members;    /* N */
    uint32_t active_pct; /* P */
    uint32_t seconds;    /* S */
    uint32_t readers;    /* R */
    const char *name, *dir;
    bool keep; /* leave the table in dir afterwards */
};

/* Facts of the load, computed by the parent before the fork, so children
 * inherit them (copy-on-write) and can check what they read. */
struct demo_load {
    bool created;     /* the table exists: the demo must remove it */
    uint64_t active;  /* members loaded ACTIVE */
    uint64_t load_ns; /* reserve and inserts */
    uint64_t role_count[DEMO_ROLES]; /* members holding each role */
};

/* ---- results shared with the children ------------------------------------ */

/* The writer and the sender first, so their slots are their roles. */
enum demo_role { DEMO_WRITER, DEMO_SENDER, DEMO_READER };

/* Each reader is a process; the table has 256 thread slots by default. */
#define DEMO_MAX_READERS 64
#define DEMO_FIXED_CHILDREN 2u /* the writer and the sender */
#define DEMO_MAX_CHILDREN (DEMO_MAX_READERS + DEMO_FIXED_CHILDREN)

/* A child's place in the children array and in demo_shared.published. */
static inline uint32_t demo_child_slot(enum demo_role role, uint32_t index) {
    return role == DEMO_READER ? DEMO_FIXED_CHILDREN + index : (uint32_t)role;
}

/* The children's start barrier: they count themselves in `ready`, then
 * wait for `phase` to leave WAIT. RUN publishes deadline_ns. */
enum demo_phase { DEMO_PHASE_WAIT, DEMO_PHASE_RUN, DEMO_PHASE_ABORT };

/* What every child reports. Children count in their own memory and copy
 * their results here once, at the end: counters bumped on every operation
 * in shared, adjacent memory would bounce cache lines between the CPUs and
 * slow down exactly what the demo measures. */
struct demo_counts {
    uint64_t ops;    /* lookups / writes / fanouts attempted */
    uint64_t errors; /* anything that fails the demo */
    uint64_t busy;   /* GT_EBUSY results (also counted in errors only for
                        the sender: every fanout must return 0) */
    uint64_t run_ns; /* time between the start and the child's last op */
};

struct demo_reader_result {
    struct demo_counts c;
    uint64_t selects; /* role-filtered gt_select_count, each checked */
    uint64_t pages;   /* cursor pages fetched */
    uint64_t walks;   /* complete cursor walks, each checked to see N */
};

struct demo_writer_result {
    struct demo_counts c;
    uint64_t flag_updates, session_updates;
};

struct demo_sender_result {
    struct demo_counts c;
    uint64_t recipients;     /* over all fanouts */
    uint64_t min_recipients; /* of one fanout */
    uint64_t max_recipients;
    uint64_t lat_p50_ns, lat_p99_ns, lat_max_ns;
    uint64_t lat_samples; /* < ops: percentiles are of a uniform sample */
};

struct demo_shared {
    _Atomic uint32_t ready; /* children that opened the table */
    _Atomic uint32_t phase; /* enum demo_phase */
    uint64_t deadline_ns;   /* CLOCK_MONOTONIC; valid once phase is RUN */
    /* by demo_child_slot: set (release) after the child's results */
    _Atomic uint32_t published[DEMO_MAX_CHILDREN];
    struct demo_writer_result writer;
    struct demo_sender_result sender;
    struct demo_reader_result readers[]; /* demo_config.readers */
};

/* The barrier and the results cross process boundaries through the
 * shared mapping, which only works for address-free lock-free atomics. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared atomics must be lock-free");

/* ---- the children -------------------------------------------------------- */

struct demo_child {
    enum demo_role role;
    uint32_t index; /* among the readers */
    pid_t pid;      /* 0 once reaped */
    int status;     /* from waitpid */
    bool lost;      /* waitpid failed: its status is unknown */
};

/* Everything a child needs; inherited across fork. */
struct demo_env {
    const struct demo_config *cfg;
    const struct demo_load *load;
    struct demo_shared *shared;
};

/* Exit statuses of a child; anything but OK fails the demo. */
enum { DEMO_CHILD_OK = 0, DEMO_CHILD_FAILED = 1, DEMO_CHILD_ABORTED = 3 };

/* demo_roles.c: run one child to completion; never returns. */
_Noreturn void demo_child_main(const struct demo_env *env,
                               const struct demo_child *self);
const char *demo_role_name(enum demo_role role);

/* demo_procs.c: signals, fork, the start barrier and reaping. */
int demo_signals_install(void); /* 0 or an errno value */
void demo_signals_restore(void);
bool demo_interrupted(void);
/* Fork every child, wait until all are ready, start them; on failure the
 * started ones are stopped and reaped. 0 or an exit code (reported). */
int demo_procs_run(const struct demo_env *env, struct demo_child *kids,
                   size_t nkids);
/* Print how a reaped child ended, if it did not exit DEMO_CHILD_OK;
 * returns whether it did. */
bool demo_child_ok(const struct demo_child *kid);

/* demo_load.c: a fresh table loaded with the guild; closed afterwards. */
int demo_load_table(const struct demo_config *cfg, struct demo_load *out);

/* demo_report.c: check the results, print the summary; 0 or an exit code. */
int demo_report(const struct demo_env *env, const struct demo_child *kids,
                size_t nkids);

/* ---- the members: pure functions of the load index / user id ------------- */

#define DEMO_SEED 0x6775696c64746162ull /* "guildtab" */
#define SPLITMIX_GAMMA 0x9e3779b97f4a7c15ull
#define DEMO_SESSION_TAG_BITS 32u /* session id bits that name the user */
#define DEMO_JOINED_BASE 1420070400000ll /* 2015-01-01 in ms */
#define DEMO_JOINED_SPAN 315360000000ull /* ten years in ms */

/* splitmix64's finalizer: a bijection on 64-bit values. */
static inline uint64_t demo_mix(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The user loaded at index i. SPLITMIX_GAMMA is odd, so i -> seed + i*gamma
 * is injective mod 2^64 and so is demo_mix: user ids never repeat. */
static inline uint64_t demo_user(uint64_t i) {
    return demo_mix(DEMO_SEED + i * SPLITMIX_GAMMA);
}

static inline uint32_t demo_worker(uint64_t uid) {
    return (uint32_t)(uid % DEMO_WORKERS);
}

static inline uint32_t demo_role(uint64_t uid) {
    return (uint32_t)(demo_mix(uid ^ DEMO_SEED) % DEMO_ROLES);
}

static inline void demo_roles(uint64_t uid, uint64_t roles[DEMO_ROLE_WORDS]) {
    uint32_t r = demo_role(uid);
    for (uint32_t w = 0; w < DEMO_ROLE_WORDS; w++)
        roles[w] = 0;
    roles[r / DEMO_WORD_BITS] = 1ull << (r % DEMO_WORD_BITS);
}

static inline int64_t demo_joined_at(uint64_t uid) {
    return DEMO_JOINED_BASE + (int64_t)(demo_mix(uid) % DEMO_JOINED_SPAN);
}

/* Session ids carry a tag of the user in their low bits and a generation
 * (bumped by the writer) above, so readers can check any version. */
static inline uint64_t demo_session_tag(uint64_t uid) {
    return demo_mix(~uid) & ((1ull << DEMO_SESSION_TAG_BITS) - 1);
}

static inline uint64_t demo_session(uint64_t uid, uint64_t generation) {
    return (generation << DEMO_SESSION_TAG_BITS) | demo_session_tag(uid);
}

/* The record a member of user uid must be, whatever the writer did: the
 * writer changes only GT_ACTIVE and the session generation. */
static inline bool demo_member_valid(const gt_member *m, uint64_t uid) {
    uint64_t roles[DEMO_ROLE_WORDS];
    demo_roles(uid, roles);
    uint64_t tag_mask = (1ull << DEMO_SESSION_TAG_BITS) - 1;
    return m->user_id == uid && m->worker == demo_worker(uid) &&
           memcmp(m->roles, roles, sizeof roles) == 0 &&
           m->joined_at == demo_joined_at(uid) &&
           (m->session_id & tag_mask) == demo_session_tag(uid) &&
           (m->flags & GT_ONLINE) && !(m->flags & ~(GT_ONLINE | GT_ACTIVE));
}

/* ---- randomness and time ------------------------------------------------- */

/* xorshift64*: fast, and good enough to pick members. state != 0. */
static inline uint64_t demo_rand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* A uniform index below n (n > 0). The modulo bias is below n / 2^64. */
static inline uint64_t demo_rand_below(uint64_t *state, uint64_t n) {
    return demo_rand(state) % n;
}

/* CLOCK_MONOTONIC, required by POSIX.1-2008 where the demo runs; the
 * only failure is EINVAL for a clock the system lacks, which the demo
 * checks once before it starts (demo_clock_ok). */
static inline uint64_t demo_now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        abort();
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline bool demo_clock_ok(void) {
    struct timespec ts;
    return clock_gettime(CLOCK_MONOTONIC, &ts) == 0;
}

#endif
