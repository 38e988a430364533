/* test_readers.c - thread slots and reclamation: handles across fork(),
 * max_slots, slots freed at thread exit and at process death, and memory a
 * dead reader was holding back. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static int nothing(void *ctx, const gt_member *m, const void *p) {
    (void)ctx, (void)m, (void)p;
    return 0;
}

static void fill(gt_table *t, uint64_t g, uint64_t n) {
    for (uint64_t u = 0; u < n; u++) {
        gt_member m = tc_member(u, g);
        m.flags |= u % 4 == 0 ? GT_ACTIVE : 0;
        cr_assert_eq(gt_insert(t, g, &m, NULL), 0);
    }
}

static gt_table *inherited;
static int child_uses_handle(void *arg) {
    (void)arg;
    gt_member m;
    if (gt_lookup(inherited, 1, 5, &m, NULL) != 0 || m.user_id != 5)
        return 1;
    gt_member n = tc_member(777777, 1);
    if (gt_insert(inherited, 1, &n, NULL) != 0)
        return 2;
    uint64_t c;
    if (gt_select_count(inherited, 1, &(gt_filter){.roles_any = {~0ull}}, 0, 1,
                        &c) != 0 || c != 1001)
        return 3;
    return 0;
}

Test(readers, handle_survives_fork) {
    const char *name = tc_name("fork");
    gt_table *t = tc_open(name, 10000, 8, 0);
    fill(t, 1, 1000);
    /* the parent holds a slot (scan and write) before forking */
    cr_assert_eq(gt_select(t, 1, NULL, 0, 1, nothing, NULL), 0);
    inherited = t;
    pid_t p = tc_spawn(child_uses_handle, NULL);
    tc_reap(&p, 1, "child");
    cr_assert_eq(gt_contains(t, 1, 777777), 1);
    cr_assert_eq(gt_select(t, 1, NULL, 0, 1, nothing, NULL), 0);
    tc_drop(t, name);
}

static int no_batch(void *ctx, uint32_t w, const gt_recipient *b, size_t n) {
    (void)ctx, (void)w, (void)b, (void)n;
    return 0;
}

struct thr {
    gt_table *t;
    int select_rc, insert_rc, lookup_rc, fanout_rc, iter_rc;
};
static void *second_thread(void *arg) {
    struct thr *a = arg;
    a->select_rc = gt_select(a->t, 1, NULL, 0, 1, nothing, NULL);
    a->fanout_rc = gt_fanout(a->t, 1, NULL, 0, 1, no_batch, NULL);
    gt_cursor c;
    gt_member page[2];
    size_t n;
    a->iter_rc = gt_iter_first(a->t, 1, NULL, &c, page, NULL, 2, &n);
    gt_member m = tc_member(5000, 1);
    a->insert_rc = gt_insert(a->t, 1, &m, NULL);
    a->lookup_rc = gt_lookup(a->t, 1, 3, NULL, NULL);
    return NULL;
}

Test(readers, max_slots_and_thread_exit) {
    const char *name = tc_name("slots");
    gt_options o = {.max_members = 10000, .max_slots = 1,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    fill(t, 1, 100); /* the main thread takes the only slot */
    struct thr a = {t, 0, 0, 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, second_thread, &a);
    pthread_join(th, NULL);
    cr_assert_eq(a.select_rc, GT_EFULL, "a scan needs a slot");
    cr_assert_eq(a.fanout_rc, GT_EFULL, "a fanout needs a slot");
    cr_assert_eq(a.iter_rc, GT_EFULL, "a cursor page needs a slot");
    cr_assert_eq(a.insert_rc, GT_EFULL, "a write needs a slot");
    cr_assert_eq(a.lookup_rc, 0, "a lookup needs none");
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_eq(st.slots_used, 1);
    gt_close(t);

    /* threads that exit give their slots back */
    o.flags = 0;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    for (int i = 0; i < 5; i++) {
        struct thr b = {t, 0, 0, 0, 0, 0};
        pthread_create(&th, NULL, second_thread, &b);
        pthread_join(th, NULL);
        cr_assert_eq(b.select_rc, 0, "thread %d", i);
        cr_assert(b.insert_rc == 0, "thread %d: %s", i, gt_strerror(b.insert_rc));
    }
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_eq(st.slots_used, 0);
    tc_drop(t, name);
}

static int take_slot_and_die(void *arg) {
    gt_table *t;
    if (gt_open(arg, NULL, &t))
        return 1;
    gt_select(t, 1, NULL, 0, 1, nothing, NULL);
    _exit(0); /* no gt_close: like a crash */
}

Test(readers, dead_processes_slots_are_reaped) {
    const char *name = tc_name("reap");
    gt_options o = {.max_members = 10000, .max_slots = 4,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    fill(t, 1, 100);
    gt_close(t);
    pid_t p[4];
    for (int i = 0; i < 4; i++)
        p[i] = tc_spawn(take_slot_and_die, (void *)name);
    tc_reap(p, 4, "child");
    cr_assert_eq(gt_open(name, NULL, &t), 0);
    cr_assert_eq(gt_select(t, 1, NULL, 0, 1, nothing, NULL), 0,
                 "slots of dead processes were not reaped");
    tc_drop(t, name);
}

struct hold {
    const char *name;
    int fd; /* write end: "pinned" */
};
static int stall(void *ctx, const gt_member *m, const void *p) {
    (void)m, (void)p;
    struct hold *h = ctx;
    if (write(h->fd, "x", 1) != 1)
        _exit(3);
    for (;;)
        pause(); /* pinned until killed */
}
static int pin_forever(void *arg) {
    struct hold *h = arg;
    gt_table *t;
    if (gt_open(h->name, NULL, &t))
        return 1;
    return gt_select(t, 1, NULL, 0, 1, stall, h) ? 2 : 0;
}

Test(readers, dead_reader_releases_retired_memory) {
    const char *name = tc_name("dead");
    gt_table *t = tc_open(name, 200000, 8, 0);
    fill(t, 1, 1000);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    struct hold h = {name, pfd[1]};
    pid_t p = tc_spawn(pin_forever, &h);
    char c;
    cr_assert_eq(read(pfd[0], &c, 1), 1);
    /* grow the guild: its old storage is retired while the reader holds it */
    for (uint64_t u = 1000; u < 20000; u++) {
        gt_member m = tc_member(u, 1);
        cr_assert_eq(gt_insert(t, 1, &m, NULL), 0);
    }
    gt_table_stat st;
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_gt(st.bytes_retired, 0, "the pinned reader keeps old storage");
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_eq(st.bytes_retired, 0, "a dead reader's pin still counts");
    /* and what was freed is reused: used memory stays near the live guild */
    gt_guild_stat gs;
    cr_assert_eq(gt_guild_info(t, 1, &gs), 0);
    cr_assert_eq(st.bytes_used, gs.bytes_used);
    close(pfd[0]);
    close(pfd[1]);
    tc_drop(t, name);
}

struct stall {
    const char *name;
    int fd;
    _Atomic int *writer_done; /* shared with the parent */
};
static int stall_once(void *ctx, const gt_member *m, const void *p) {
    (void)m, (void)p;
    struct stall *s = ctx;
    if (s->fd >= 0) {
        if (write(s->fd, "x", 1) != 1)
            _exit(5);
        s->fd = -1;
        /* stall far past stall_timeout_ms: until the writer is through */
        while (!atomic_load(s->writer_done)) {
            struct timespec d = {0, 10000000};
            nanosleep(&d, NULL);
        }
    }
    return 0;
}
static int stalled_scanner(void *arg) {
    struct stall *s = arg;
    gt_table *t;
    if (gt_open(s->name, NULL, &t))
        return 1;
    int r = gt_select(t, 1, NULL, 0, 1, stall_once, s);
    gt_close(t);
    return r == GT_ESTALE ? 0 : 10 + (r < 0 ? -r % 100 : r);
}

/* A scan that stalls must not make memory grow without bound: when writers
 * need the memory it pins, it is evicted after stall_timeout_ms and returns
 * GT_ESTALE, and every write succeeds (how long the worst one waited is
 * logged, not asserted: that is a measurement). */
Test(readers, stalled_scan_is_evicted) {
    const char *name = tc_name("stall");
    gt_options o = {.max_members = 50000, .stall_timeout_ms = 200,
                    .flags = GT_CREATE | GT_EXCL};
    gt_table *t;
    cr_assert_eq(gt_open(name, &o, &t), 0);
    fill(t, 1, 1000);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    _Atomic int *done = tc_shared(sizeof *done);
    struct stall s = {name, pfd[1], done};
    pid_t p = tc_spawn(stalled_scanner, &s);
    char c;
    cr_assert_eq(read(pfd[0], &c, 1), 1);
    double worst = 0;
    gt_table_stat st;
    uint64_t peak = 0;
    for (int round = 0; round < 6; round++) { /* grow and shrink: rebuilds */
        for (uint64_t u = 1000; u < 45000; u++) {
            gt_member m = tc_member(u, 1);
            double w0 = tc_now();
            int r = gt_insert(t, 1, &m, NULL);
            cr_assert_eq(r, 0, "round %d insert %lu: %s", round,
                         (unsigned long)u, gt_strerror(r));
            worst = tc_now() - w0 > worst ? tc_now() - w0 : worst;
        }
        cr_assert_eq(gt_info(t, &st), 0);
        peak = st.bytes_retired > peak ? st.bytes_retired : peak;
        for (uint64_t u = 1000; u < 45000; u++)
            cr_assert_eq(gt_delete(t, 1, u), 0);
    }
    atomic_store(done, 1);
    tc_reap(&p, 1, "stalled scanner (must end with GT_ESTALE)");
    cr_assert_eq(gt_info(t, &st), 0);
    cr_assert_eq(st.bytes_retired, 0);
    cr_log_info("stall: worst write %.3f s, peak retired %lu bytes", worst,
                (unsigned long)peak);
    close(pfd[0]);
    close(pfd[1]);
    tc_drop(t, name);
}

struct seen {
    pid_t pid;
    int slots, alive, pinned;
};
static int see(void *ctx, const gt_reader_stat *r) {
    struct seen *s = ctx;
    if ((pid_t)r->pid != s->pid)
        return 0;
    s->slots++;
    s->alive += r->alive;
    s->pinned += r->pinned;
    if (r->pinned)
        cr_assert(r->epoch_lag < 1000000);
    else
        cr_assert_eq(r->pinned_ns, 0);
    return 0;
}
static struct seen look(gt_table *t, pid_t pid) {
    struct seen s = {.pid = pid};
    cr_assert_eq(gt_readers(t, see, &s), 0);
    return s;
}
static int look_inside(void *ctx, const gt_member *m, const void *p) {
    (void)m, (void)p;
    struct seen s = look(ctx, getpid());
    cr_assert_eq(s.pinned, 1, "a thread inside a scan shows as pinned");
    return 1;
}
static int stop_at_first(void *ctx, const gt_reader_stat *r) {
    (void)ctx, (void)r;
    return 7;
}

Test(readers, slots_are_listed_and_reaped) {
    const char *name = tc_name("list");
    gt_table *t = tc_open(name, 10000, 8, 0);
    fill(t, 1, 100);
    cr_assert_eq(gt_select(t, 1, NULL, 0, 1, nothing, NULL), 0);
    struct seen me = look(t, getpid());
    cr_assert(me.slots == 1 && me.alive == 1 && me.pinned == 0);
    cr_assert_eq(gt_select(t, 1, NULL, 0, 1, look_inside, t), 1);

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    struct hold h = {name, fds[1]};
    pid_t p = tc_spawn(pin_forever, &h);
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 1);
    struct seen child = look(t, p);
    cr_assert(child.slots == 1 && child.alive == 1 && child.pinned == 1,
              "a pinned child: %d slots, %d alive, %d pinned", child.slots,
              child.alive, child.pinned);
    gt_table *ro; /* opened now: gt_open sweeps dead slots */
    gt_options o = {.flags = GT_RDONLY};
    cr_assert_eq(gt_open(name, &o, &ro), 0);
    kill(p, SIGKILL);
    cr_assert_eq(waitpid(p, NULL, 0), p);
    child = look(t, p);
    cr_assert(child.slots == 1 && child.alive == 0, "a dead child's slot stays "
              "until reaped, shown dead");
    cr_assert_eq(gt_reap(ro, NULL), GT_EROFS);
    cr_assert_eq(look(ro, p).slots, 1, "listing works read-only");
    gt_close(ro);
    uint32_t reaped = 0;
    cr_assert_eq(gt_reap(t, &reaped), 0);
    cr_assert_geq(reaped, 1);
    cr_assert_eq(look(t, p).slots, 0);
    cr_assert_eq(look(t, getpid()).slots, 1, "live slots are kept");
    cr_assert_eq(gt_reap(t, &reaped), 0);
    cr_assert_eq(reaped, 0);

    cr_assert_eq(gt_readers(t, stop_at_first, NULL), 7);
    cr_assert_eq(gt_readers(NULL, see, NULL), GT_EINVAL);
    cr_assert_eq(gt_readers(t, NULL, NULL), GT_EINVAL);
    cr_assert_eq(gt_reap(NULL, NULL), GT_EINVAL);
    close(fds[0]);
    close(fds[1]);
    tc_drop(t, name);
}
