/*
 * demo_roles.c - the demo's child processes: readers, the writer and the
 * sender. Each runs in its own forked process with its own handle.
 *
 * Readers do random gt_lookup of loaded members (each record is checked
 * against what demo.h says it must be: a torn or foreign record is an
 * error), a cursor page every READER_LOOKUPS_PER_PAGE lookups (a complete
 * walk must return exactly N members, since none joins or leaves during the
 * run), and a role-filtered gt_select_count every READER_SELECT_PERIOD_NS
 * (roles never change, so the count must equal the load's exactly).
 *
 * The writer flips GT_ACTIVE on random members, setting it with
 * probability P% and clearing it otherwise, so the active share stays near
 * P% however long it runs; every WRITER_SESSION_EVERY-th write moves a
 * session instead.
 *
 * The sender fans out to the ACTIVE members in a loop and times each
 * fanout. The number of fanouts is unknown before the fork, while the
 * shared results must be sized before it, so the sender keeps the
 * latencies in its own memory and publishes percentiles. It keeps every
 * latency up to LATENCY_MAX_SAMPLES (more than a 10 s run of a large guild
 * makes); a longer or tinier run would grow without bound, so beyond that a
 * uniform reservoir sample (Vitter's algorithm R) stands in for them, and
 * the maximum stays exact.
 *
 * Loops read the clock every CLOCK_EVERY operations: often enough to stop
 * within a few microseconds of the deadline, rarely enough not to matter.
 */
#include "demo.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define CLOCK_EVERY 256u              /* operations between clock reads */
#define START_POLL_NS 100000L         /* barrier poll: 100 us */
#define READER_PAGE 1024u             /* members per cursor page */
#define READER_LOOKUPS_PER_PAGE 4096u /* lookups between two pages */
#define READER_SELECT_PERIOD_NS (250ull * 1000 * 1000)
#define WRITER_SESSION_EVERY 16u /* one write in 16 moves a session */
#define LATENCY_INITIAL_CAP 4096u
#define LATENCY_MAX_SAMPLES (1u << 22) /* 32 MiB of samples */
#define PCT_MEDIAN 50u
#define PCT_TAIL 99u

const char *demo_role_name(enum demo_role role) {
    switch (role) {
    case DEMO_WRITER:
        return "writer";
    case DEMO_SENDER:
        return "sender";
    case DEMO_READER:
        return "reader";
    }
    return "child";
}

/* One child's state, whatever its role. */
struct child {
    gt_table *t;
    const struct demo_env *env;
    const struct demo_child *self;
    struct demo_counts *counts; /* in the role's private results */
    uint64_t rng;
    uint64_t start_ns;
};

/* Count an error; print only the first, so a broken run does not flood
 * stderr. err 0: a check failed, not a call. */
static void child_error(struct child *c, int err, const char *fmt, ...)
    CLI_PRINTF(3, 4);

static void child_error(struct child *c, int err, const char *fmt, ...) {
    if (c->counts->errors++ > 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, CLI_PROGRAM ": demo %s %" PRIu32 ": ",
            demo_role_name(c->self->role), c->self->index);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s%s\n", err ? ": " : "", err ? gt_strerror(err) : "");
}

/* GT_EBUSY is counted apart (a writer held a record past the retry bound);
 * any other failure is an error. */
static void child_result(struct child *c, int r, const char *what,
                         uint64_t id) {
    if (r == GT_EBUSY)
        c->counts->busy++;
    else if (r)
        child_error(c, r, "%s %" PRIu64, what, id);
}

static bool should_stop(const struct child *c, uint64_t now) {
    const struct demo_shared *sh = c->env->shared;
    return now >= sh->deadline_ns ||
           atomic_load_explicit(&sh->phase, memory_order_relaxed) ==
               DEMO_PHASE_ABORT;
}

static uint64_t random_user(struct child *c) {
    return demo_user(demo_rand_below(&c->rng, c->env->cfg->members));
}

/* ---- reader -------------------------------------------------------------- */

struct reader {
    struct child *c;
    struct demo_reader_result res;
    gt_member *page; /* READER_PAGE members */
    gt_cursor cursor;
    bool walking;    /* cursor is mid-walk */
    uint64_t walked; /* members the current walk returned */
};

static void reader_lookup(struct reader *rd) {
    uint64_t uid = random_user(rd->c);
    gt_member m;
    int r = gt_lookup(rd->c->t, DEMO_GUILD, uid, &m, NULL);
    rd->res.c.ops++;
    if (r)
        child_result(rd->c, r, "lookup of user", uid);
    else if (!demo_member_valid(&m, uid))
        child_error(rd->c, 0,
                    "lookup of user %" PRIu64
                    " returned a record that was never written",
                    uid);
}

static void reader_walk_done(struct reader *rd) {
    uint64_t n = rd->c->env->cfg->members;
    rd->res.walks++;
    rd->walking = false;
    if (rd->walked != n)
        child_error(rd->c, 0,
                    "a cursor walk returned %" PRIu64 " members of the %" PRIu64
                    " present",
                    rd->walked, n);
}

static void reader_page(struct reader *rd) {
    gt_table *t = rd->c->t;
    size_t n;
    int r = rd->walking ? gt_iter_next(t, &rd->cursor, NULL, rd->page, NULL,
                                       READER_PAGE, &n)
                        : gt_iter_first(t, DEMO_GUILD, NULL, &rd->cursor,
                                        rd->page, NULL, READER_PAGE, &n);
    rd->res.pages++;
    if (r) {
        child_result(rd->c, r, "cursor page after", rd->walked);
        rd->walking = false; /* start over: the walk's count is void */
        return;
    }
    if (!rd->walking)
        rd->walked = 0;
    rd->walking = true;
    rd->walked += n;
    for (size_t i = 0; i < n; i++)
        if (!demo_member_valid(&rd->page[i], rd->page[i].user_id))
            child_error(rd->c, 0,
                        "cursor page holds a bad record of user "
                        "%" PRIu64,
                        rd->page[i].user_id);
    if (n == 0)
        reader_walk_done(rd);
}

static void reader_select(struct reader *rd) {
    uint32_t role = (uint32_t)demo_rand_below(&rd->c->rng, DEMO_ROLES);
    gt_filter f = {0};
    f.roles_any[role / DEMO_WORD_BITS] = 1ull << (role % DEMO_WORD_BITS);
    uint64_t count;
    int r = gt_select_count(rd->c->t, DEMO_GUILD, &f, 0, 1, &count);
    rd->res.selects++;
    uint64_t want = rd->c->env->load->role_count[role];
    if (r)
        child_result(rd->c, r, "select_count of role", role);
    else if (count != want)
        child_error(rd->c, 0,
                    "select_count of role %" PRIu32 " found %" PRIu64
                    " members; %" PRIu64 " hold it",
                    role, count, want);
}

static int run_reader(struct child *c) {
    struct reader rd = {.c = c};
    c->counts = &rd.res.c;
    rd.page = calloc(READER_PAGE, sizeof *rd.page);
    if (!rd.page) {
        child_error(c, GT_ENOMEM, "cursor page");
        return DEMO_CHILD_FAILED;
    }
    uint64_t next_select = c->start_ns + READER_SELECT_PERIOD_NS, now;
    uint64_t since_page = 0;
    do {
        for (uint32_t k = 0; k < CLOCK_EVERY; k++)
            reader_lookup(&rd);
        if ((since_page += CLOCK_EVERY) >= READER_LOOKUPS_PER_PAGE) {
            reader_page(&rd);
            since_page = 0;
        }
        now = demo_now_ns();
        if (now >= next_select) {
            reader_select(&rd);
            next_select = now + READER_SELECT_PERIOD_NS;
        }
    } while (!should_stop(c, now));
    free(rd.page);
    rd.res.c.run_ns = now - c->start_ns;
    c->env->shared->readers[c->self->index] = rd.res;
    return DEMO_CHILD_OK;
}

/* ---- writer -------------------------------------------------------------- */

static void writer_op(struct child *c, struct demo_writer_result *res,
                      uint64_t *generation) {
    uint64_t uid = random_user(c);
    int r;
    if (demo_rand_below(&c->rng, WRITER_SESSION_EVERY) == 0) {
        r = gt_update_session(c->t, DEMO_GUILD, uid, demo_worker(uid),
                              demo_session(uid, ++*generation));
        res->session_updates += r == 0;
    } else {
        bool set = demo_rand_below(&c->rng, DEMO_PCT) < c->env->cfg->active_pct;
        r = gt_update_flags(c->t, DEMO_GUILD, uid, set ? GT_ACTIVE : 0,
                            set ? 0 : GT_ACTIVE, NULL);
        res->flag_updates += r == 0;
    }
    res->c.ops++;
    child_result(c, r, "update of user", uid);
}

static int run_writer(struct child *c) {
    struct demo_writer_result res;
    memset(&res, 0, sizeof res);
    c->counts = &res.c;
    uint64_t generation = 0, now;
    do {
        for (uint32_t k = 0; k < CLOCK_EVERY; k++)
            writer_op(c, &res, &generation);
        now = demo_now_ns();
    } while (!should_stop(c, now));
    res.c.run_ns = now - c->start_ns;
    c->env->shared->writer = res;
    return DEMO_CHILD_OK;
}

/* ---- sender -------------------------------------------------------------- */

/* What one fanout delivered. */
struct tally {
    uint64_t recipients;
    uint64_t bad_batches; /* empty, oversized, or for an unknown worker */
};

static int count_batch(void *ctx, uint32_t worker, const gt_recipient *batch,
                       size_t n) {
    struct tally *t = ctx;
    (void)batch;
    t->recipients += n;
    if (worker >= DEMO_WORKERS || n == 0 || n > GT_FANOUT_BATCH)
        t->bad_batches++;
    return 0;
}

struct latencies {
    uint64_t *ns;
    size_t n, cap;
    uint64_t seen; /* fanouts timed; > n once sampling */
    uint64_t max;
    uint64_t rng;
};

static bool latency_add(struct latencies *l, uint64_t ns) {
    l->seen++;
    if (ns > l->max)
        l->max = ns;
    if (l->n == LATENCY_MAX_SAMPLES) {
        /* algorithm R: sample k of seen replaces a kept one w.p. n/seen */
        uint64_t j = demo_rand_below(&l->rng, l->seen);
        if (j < l->n)
            l->ns[j] = ns;
        return true;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : LATENCY_INITIAL_CAP;
        uint64_t *v = realloc(l->ns, cap * sizeof *v);
        if (!v)
            return false;
        l->ns = v;
        l->cap = cap;
    }
    l->ns[l->n++] = ns;
    return true;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples (n > 0). */
static uint64_t percentile(const struct latencies *l, uint32_t pct) {
    size_t rank = (l->n * pct + DEMO_PCT - 1) / DEMO_PCT; /* ceil */
    return l->ns[rank ? rank - 1 : 0];
}

static void sender_summarise(struct demo_sender_result *res,
                             struct latencies *l) {
    if (res->min_recipients == UINT64_MAX) /* no fanout succeeded */
        res->min_recipients = 0;
    if (l->n == 0)
        return;
    qsort(l->ns, l->n, sizeof *l->ns, u64_cmp);
    res->lat_p50_ns = percentile(l, PCT_MEDIAN);
    res->lat_p99_ns = percentile(l, PCT_TAIL);
    res->lat_max_ns = l->max;
    res->lat_samples = l->n;
}

static void sender_check(struct child *c, struct demo_sender_result *res, int r,
                         const struct tally *t) {
    res->c.ops++;
    if (r) {
        if (r == GT_EBUSY)
            res->c.busy++; /* reported apart, and still a failed fanout */
        child_error(c, r, "fanout %" PRIu64, res->c.ops);
        return;
    }
    res->recipients += t->recipients;
    if (t->recipients < res->min_recipients)
        res->min_recipients = t->recipients;
    if (t->recipients > res->max_recipients)
        res->max_recipients = t->recipients;
    if (t->recipients > c->env->cfg->members || t->bad_batches)
        child_error(c, 0,
                    "fanout %" PRIu64 " delivered %" PRIu64
                    " recipients in %" PRIu64 " malformed batches",
                    res->c.ops, t->recipients, t->bad_batches);
}

static int run_sender(struct child *c) {
    struct demo_sender_result res = {.min_recipients = UINT64_MAX};
    const gt_filter active = {.flags_set = GT_ACTIVE};
    struct latencies lat = {.rng = c->rng};
    c->counts = &res.c;
    uint64_t t1;
    do {
        struct tally tally = {0};
        uint64_t t0 = demo_now_ns();
        int r = gt_fanout(c->t, DEMO_GUILD, &active, 0, 1, count_batch, &tally);
        t1 = demo_now_ns();
        if (!latency_add(&lat, t1 - t0)) {
            child_error(c, GT_ENOMEM, "latency samples");
            free(lat.ns);
            return DEMO_CHILD_FAILED;
        }
        sender_check(c, &res, r, &tally);
    } while (!should_stop(c, t1));
    res.c.run_ns = t1 - c->start_ns;
    sender_summarise(&res, &lat);
    free(lat.ns);
    c->env->shared->sender = res;
    return DEMO_CHILD_OK;
}

/* ---- the child's life ---------------------------------------------------- */

/* Wait at the barrier until the parent starts or aborts the run. */
static uint32_t wait_start(struct demo_shared *sh) {
    const struct timespec nap = {0, START_POLL_NS};
    uint32_t phase;
    /* acquire: pairs with the parent's release store of DEMO_PHASE_RUN,
     * so deadline_ns is visible */
    while ((phase = atomic_load_explicit(&sh->phase, memory_order_acquire)) ==
           DEMO_PHASE_WAIT)
        nanosleep(&nap, NULL); /* EINTR only shortens the nap */
    return phase;
}

static int run_role(struct child *c) {
    switch (c->self->role) {
    case DEMO_READER:
        return run_reader(c);
    case DEMO_WRITER:
        return run_writer(c);
    case DEMO_SENDER:
        return run_sender(c);
    }
    return DEMO_CHILD_FAILED;
}

/* Counts of a child that fails before its role starts counting. */
static struct demo_counts setup_counts;

/* Distinct, fixed random streams per child, so runs are reproducible up to
 * timing; xorshift needs a non-zero state. */
static uint64_t child_seed(const struct demo_child *self) {
    uint64_t stream = (uint64_t)self->role * DEMO_MAX_CHILDREN + self->index;
    return demo_mix(DEMO_SEED + stream * SPLITMIX_GAMMA) | 1;
}

_Noreturn void demo_child_main(const struct demo_env *env,
                               const struct demo_child *self) {
    struct demo_shared *sh = env->shared;
    struct child c = {
        .env = env,
        .self = self,
        .counts = &setup_counts,
        .rng = child_seed(self),
    };
    /* Only the writer writes; a stray write through the others' read-only
     * handles would fail with GT_EROFS instead of changing the table. */
    gt_options o = {.dir = env->cfg->dir,
                    .flags = self->role == DEMO_WRITER ? 0 : GT_RDONLY};
    int r = gt_open(env->cfg->name, &o, &c.t);
    if (r) {
        child_error(&c, r, "open table %s", env->cfg->name);
        _exit(DEMO_CHILD_FAILED);
    }
    /* release: the parent's acquire load of ready sees a child that is set */
    atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
    int status = DEMO_CHILD_ABORTED;
    if (wait_start(sh) == DEMO_PHASE_RUN) {
        c.start_ns = demo_now_ns();
        status = run_role(&c);
    }
    gt_close(c.t);
    if (status == DEMO_CHILD_OK) {
        /* release: the results stored by run_role happen before; pairs with
         * the parent's acquire load in demo_report */
        atomic_store_explicit(
            &sh->published[demo_child_slot(self->role, self->index)], 1,
            memory_order_release);
    }
    _exit(status);
}
