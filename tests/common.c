#include "common.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned counter;

const char *tc_name(const char *prefix) {
    /* a ring of buffers: a test may hold a few names at once (its suite's
     * table and its own); one buffer made the second clobber the first,
     * and the suite's table was left in /dev/shm */
    static __thread char buf[8][128];
    static __thread unsigned next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "test-%s-%d-%u", prefix, (int)getpid(),
             counter++);
    return b;
}

gt_table *tc_open(const char *name, uint64_t max_members, uint32_t max_guilds,
                  uint32_t payload) {
    gt_options o = {.max_members = max_members,
                    .max_guilds = max_guilds,
                    .payload_size = payload,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t = NULL;
    int r = gt_open(name, &o, &t);
    cr_assert_eq(r, 0, "gt_open(%s): %s", name, gt_strerror(r));
    return t;
}

void tc_drop(gt_table *t, const char *name) {
    gt_close(t);
    gt_unlink(name, NULL);
}

uint64_t tc_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

gt_member tc_member(uint64_t user, uint64_t seed) {
    gt_member m = {0};
    uint64_t h = tc_mix(user ^ seed);
    m.user_id = user;
    m.session_id = h;
    m.roles[0] = tc_mix(h + 1);
    m.roles[1] = tc_mix(h + 2);
    m.roles[2] = tc_mix(h + 3);
    m.roles[3] = tc_mix(m.roles[0] ^ m.roles[1] ^ m.roles[2]);
    m.joined_at = (int64_t)(tc_mix(user) >> 1);
    m.worker = tc_worker_of(m.session_id);
    m.flags = GT_ONLINE | ((uint32_t)(h >> 40) & GT_FLAGS_HOST);
    return m;
}

uint32_t tc_worker_of(uint64_t session_id) {
    return (uint32_t)(tc_mix(session_id) % 16);
}

bool tc_member_whole(const gt_member *m) {
    return m->roles[3] == tc_mix(m->roles[0] ^ m->roles[1] ^ m->roles[2]) &&
           m->worker == tc_worker_of(m->session_id) &&
           (uint64_t)m->joined_at == tc_mix(m->user_id) >> 1;
}

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

void *tc_shared(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED, "mmap shared");
    return p;
}

pid_t tc_spawn(int (*fn)(void *), void *arg) {
    fflush(NULL);
    pid_t p = fork();
    cr_assert_neq(p, -1, "fork");
    if (p == 0)
        _exit(fn(arg));
    return p;
}

gt_table *tc_child_open(const char *name, const char *at) {
    gt_table *t;
    if (gt_open(name, NULL, &t))
        _exit(1);
    if (at)
        setenv("GT_CRASH_AT", at, 1);
    return t;
}

void tc_reap(const pid_t *pids, int n, const char *what) {
    for (int i = 0; i < n; i++) {
        int st;
        pid_t r;
        while ((r = waitpid(pids[i], &st, 0)) < 0 && errno == EINTR)
            ;
        cr_assert_eq(r, pids[i], "waitpid");
        if (WIFSIGNALED(st))
            cr_assert_fail("%s %d killed by signal %d", what, i, WTERMSIG(st));
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "%s %d exited with %d", what, i, WEXITSTATUS(st));
    }
}

double tc_seconds(double def) {
    const char *e = getenv("GT_STRESS_SECONDS");
    double v = e ? atof(e) : 0;
    return v > 0 ? v : def;
}

double tc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t tc_rand(uint64_t *s) {
    *s += 0x9e3779b97f4a7c15ull;
    return tc_mix(*s);
}

struct pin_of {
    pid_t pid;
    int pinned;
};
static int see_pin(void *ctx, const gt_reader_stat *r) {
    struct pin_of *p = ctx;
    if (r->pid == (uint32_t)p->pid)
        p->pinned = r->pinned ? 1 : p->pinned < 0 ? 0 : p->pinned;
    return 0;
}

static int count_fan(void *ctx, uint32_t w, const gt_recipient *r, size_t n) {
    (void)w, (void)r;
    *(uint64_t *)ctx += n;
    return 0;
}

uint64_t tc_fanout_size(gt_table *t, uint64_t gid) {
    uint64_t n = 0;
    int r = gt_fanout(t, gid, &(gt_filter){.flags_set = GT_ACTIVE}, 0, 1,
                      count_fan, &n);
    cr_assert_eq(r, 0, "gt_fanout of guild %lu: %s", (unsigned long)gid,
                 gt_strerror(r));
    return n;
}

gt_guild_stat tc_to_shrink_point(gt_table *t, uint64_t gid, uint64_t *last) {
    gt_guild_stat st;
    for (;;) {
        cr_assert_eq(gt_guild_info(t, gid, &st), 0);
        if ((st.members - 1) * 4 < st.capacity)
            break;
        cr_assert_eq(gt_delete(t, gid, (*last)--), 0);
    }
    cr_assert_gt(st.capacity, 64);
    return st;
}

int tc_pinned(gt_table *t, pid_t pid) {
    struct pin_of p = {pid, -1};
    cr_assert_eq(gt_readers(t, see_pin, &p), 0);
    return p.pinned;
}

void tc_evict(gt_table *t, uint64_t gid, pid_t pid) {
    int round = 0;
    for (; round < 20 && tc_pinned(t, pid) == 1; round++) {
        for (uint64_t u = 1; u < 45000; u++) {
            gt_member m = tc_member(u, 2);
            int r = gt_insert(t, gid, &m, NULL);
            cr_assert_eq(r, 0, "round %d insert %lu: %s", round,
                         (unsigned long)u, gt_strerror(r));
        }
        for (uint64_t u = 1; u < 45000; u++)
            cr_assert_eq(gt_delete(t, gid, u), 0);
    }
    cr_assert_eq(tc_pinned(t, pid), 0, "the stalled reader kept its pin "
                 "through %d rounds of churn", round);
}

void tc_stopped(pid_t pid, const char *what) {
    int st;
    cr_assert_eq(waitpid(pid, &st, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(st), "the %s (pid %d) did not stop (status %#x)",
              what, (int)pid, st);
}

pid_t tc_stuck_insert(const char *name, uint64_t gid, uint64_t user) {
    fflush(NULL);
    pid_t p = fork();
    cr_assert_neq(p, -1, "fork");
    if (p == 0) {
        gt_table *t = tc_child_open(name, "insert_done:1:stop");
        gt_member m = tc_member(user, 1);
        gt_insert(t, gid, &m, NULL);
        _exit(2); /* never reached: stopped, then killed */
    }
    tc_stopped(p, "stuck writer");
    return p;
}
