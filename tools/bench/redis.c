/*
 * redis.c - the bench workload (bench.h, README.md) against a Redis 7
 * server, peer "redis", through a minimal RESP2 client of its own.
 *
 * Usage: redis N, with the server on 127.0.0.1 at port BENCH_REDIS_PORT
 * (default 6399); scripts/bench.sh starts it with
 * `redis-server --port P --save '' --appendonly no`. The driver begins with
 * FLUSHALL: the server's whole data set is the guild, so INFO's memory
 * figures are the guild's.
 *
 * Data model, guild 1:
 *   g:1             hash: field = user_id, value = the 64-byte struct
 *                   bench_member as it is in memory
 *   g:1:active:W    set per worker W (0..15) of its active members, each
 *                   element the 16 bytes (user_id, session_id): a fanout
 *                   delivers what SMEMBERS returns, without a record lookup
 *   g:1:role:R      set per role R (0..7) of user ids
 * A user id is its 8 bytes in host order, not decimal text: it is the key
 * guildtab itself uses, it costs no formatting or parsing, and its sds
 * (3-byte header + 8 + NUL) fits jemalloc's 16-byte class where up to 20
 * digits would take 32. Decimal would let a small set be an intset, but a
 * set turns into a hash table past set-max-intset-entries (512) anyway.
 * Every peer runs on this one host, so byte order is not an issue.
 *
 * How the figures map onto Redis:
 * - Throughput figures pipeline PIPE_BATCH commands (ops for flips and
 *   churn): write them all, then read all the replies. Without pipelining
 *   each would cost a loopback round trip.
 * - lookup_dep_ns cannot pipeline, the next key is in the reply: it is one
 *   HGET per round trip, so it measures Redis' latency over loopback TCP.
 * - bytes_member is INFO's used_memory (zmalloc's own count), rss_member
 *   its used_memory_rss, the server's resident set; after vs before load.
 * - A flip rewrites the whole record with HSET, as the value is opaque to
 *   Redis. It is visible to every other client when its reply arrives:
 *   Redis executes commands one at a time, in order.
 * - count_ms reads every record (HVALS) to count the online ones, as the
 *   contract asks; a Redis application would keep a counter instead.
 * Replies are checked: each HSET, SADD, HDEL and SREM must report the change
 * the model implies (1 added or removed, 0 for a flip's overwrite), and a
 * record found must be the one asked for. Any other reply, an error reply
 * included, ends the run through bench_die.
 */
#include "readers.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>

#define DEFAULT_PORT 6399
#define DEFAULT_OPS 200000u
#define MIN_OPS 4u           /* the dependent walk takes L / 4 steps */
#define MAX_OPS (1ull << 30) /* keeps the operation arrays' sizes in range */
#define PIPE_BATCH 1000u     /* commands (load) or ops per pipelined batch */
#define ROUNDS 3
#define SCAN_MIN_RUNS 3
#define SCAN_MIN_SECS 0.3
#define SCAN_MAX_RUNS 4096 /* bounds the run times kept for a tiny n */
#define CHECK_DEP_STEPS 10000u
#define SETTLE_US 300000 /* serverCron samples the RSS every 100 ms */
#define WBUF_SIZE (64 * 1024)
#define RBUF_INIT (256 * 1024)
#define MAX_LINE 4096       /* a reply's header line: type, number, CRLF */
#define MAX_BULK (64 << 20) /* INFO is a few kB, a record 64 B */
#define CONNECT_TRIES 50    /* with CONNECT_RETRY_US: 5 s to start up */
#define CONNECT_RETRY_US 100000
#define GUILD_KEY "g:1"
#define ROLES 8u
#define KEY_MAX 32

/* One connection: buffered writes, and a read buffer that a reply's bytes
 * stay in until the next read call (it grows to hold the largest bulk). */
struct conn {
    int fd;
    char *w;
    size_t wlen;
    char *r;
    size_t rpos, rend, rcap;
};

struct recipient {
    uint64_t user_id, session_id;
};

struct bench {
    uint64_t n, a, ops; /* members, the cycle's multiplier, L */
    int port;
    struct conn *c;
    uint64_t *hit_keys, *miss_keys; /* L each */
    uint64_t *flip_i;               /* ROUNDS * L flips: member, flags */
    uint32_t *flip_flags;
    uint64_t *churn_i;                    /* ROUNDS * L churn pairs: member */
    struct recipient *fan[BENCH_WORKERS]; /* a fanout, by worker */
    uint64_t fan_cap[BENCH_WORKERS];
    uint64_t *role_ids;
    uint64_t role_cap;
};

static char role_key[ROLES][KEY_MAX], active_key[BENCH_WORKERS][KEY_MAX];

/* Where lookups copy records out to: stores to it cannot be optimised
 * away, so each lookup pays for its copy as the contract says. */
static struct bench_member sink[PIPE_BATCH];

static void die_errno(const char *what) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
    bench_die(msg);
}

static void *xrealloc(void *p, size_t size) {
    p = realloc(p, size ? size : 1);
    if (!p)
        bench_die("out of memory");
    return p;
}

/* ---- the RESP2 client ---- */

static struct conn *conn_open(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int tries = 1;; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die_errno("socket");
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            /* Batches go out in large writes anyway; a lone dependent
             * lookup must not wait behind Nagle's algorithm for an ACK. */
            int one = 1;
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one))
                die_errno("TCP_NODELAY");
            struct conn *c = xrealloc(NULL, sizeof *c);
            *c = (struct conn){.fd = fd, .rcap = RBUF_INIT};
            c->w = xrealloc(NULL, WBUF_SIZE);
            c->r = xrealloc(NULL, RBUF_INIT);
            return c;
        }
        int e = errno;
        close(fd);
        if (e != ECONNREFUSED || tries == CONNECT_TRIES) {
            errno = e;
            die_errno("connect to redis");
        }
        usleep(CONNECT_RETRY_US);
    }
}

static void conn_close(struct conn *c) {
    if (close(c->fd))
        die_errno("close");
    free(c->w);
    free(c->r);
    free(c);
}

static void write_all(int fd, const char *p, size_t len) {
    while (len) {
        /* MSG_NOSIGNAL: a server gone away is an error to report, not a
         * silent SIGPIPE death. */
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            die_errno("write to redis");
        p += k;
        len -= (size_t)k;
    }
}

static void conn_flush(struct conn *c) {
    write_all(c->fd, c->w, c->wlen);
    c->wlen = 0;
}

static void put(struct conn *c, const void *p, size_t len) {
    if (c->wlen + len > WBUF_SIZE)
        conn_flush(c);
    if (len > WBUF_SIZE) {
        write_all(c->fd, p, len);
        return;
    }
    memcpy(c->w + c->wlen, p, len);
    c->wlen += len;
}

/* "<tag><v>\r\n": an array's or a bulk string's header. */
static void put_header(struct conn *c, char tag, uint64_t v) {
    char s[24], *p = s + sizeof s;
    *--p = '\n';
    *--p = '\r';
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    *--p = tag;
    put(c, p, (size_t)(s + sizeof s - p));
}

static void put_arg(struct conn *c, const void *p, size_t len) {
    put_header(c, '$', len);
    put(c, p, len);
    put(c, "\r\n", 2);
}

static void put_str(struct conn *c, const char *s) {
    put_arg(c, s, strlen(s));
}

static void put_uid(struct conn *c, uint64_t uid) {
    put_arg(c, &uid, sizeof uid);
}

/* Start a command of argc arguments, the name included. */
static void put_cmd(struct conn *c, unsigned argc, const char *name) {
    put_header(c, '*', argc);
    put_str(c, name);
}

/* Make at least `need` unread bytes available. Pending writes go out first:
 * this is where a pipeline turns from writing to reading. */
static void rd_need(struct conn *c, size_t need) {
    if (c->rend - c->rpos >= need)
        return;
    if (c->wlen)
        conn_flush(c);
    memmove(c->r, c->r + c->rpos, c->rend - c->rpos);
    c->rend -= c->rpos;
    c->rpos = 0;
    if (need > c->rcap) {
        c->r = xrealloc(c->r, need);
        c->rcap = need;
    }
    while (c->rend < need) {
        ssize_t k = read(c->fd, c->r + c->rend, c->rcap - c->rend);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            die_errno("read from redis");
        if (k == 0)
            bench_die("redis closed the connection");
        c->rend += (size_t)k;
    }
}

/* The next line, without its CRLF; valid until the next read call. */
static const char *rd_line(struct conn *c, size_t *len) {
    size_t scanned = 0;
    for (;;) {
        const char *s = c->r + c->rpos;
        size_t avail = c->rend - c->rpos;
        const char *nl = memchr(s + scanned, '\n', avail - scanned);
        if (nl) {
            if (nl == s || nl[-1] != '\r')
                bench_die("redis protocol: a line without CRLF");
            *len = (size_t)(nl - 1 - s);
            c->rpos += (size_t)(nl + 1 - s);
            return s;
        }
        if (avail >= MAX_LINE)
            bench_die("redis protocol: a line too long");
        scanned = avail;
        rd_need(c, avail + 1);
    }
}

/* The next reply's header line "<want><integer>"; an error reply ends the
 * run with its message. */
static int64_t rd_header(struct conn *c, char want) {
    size_t len;
    const char *s = rd_line(c, &len);
    char msg[MAX_LINE + 64];
    if (len && s[0] == '-') {
        snprintf(msg, sizeof msg, "redis error: %.*s", (int)len - 1, s + 1);
        bench_die(msg);
    }
    if (!len || s[0] != want) {
        snprintf(msg, sizeof msg, "redis protocol: wanted '%c', got \"%.*s\"",
                 want, (int)len, s);
        bench_die(msg);
    }
    size_t i = 1;
    bool neg = len > 1 && s[1] == '-';
    i += neg;
    if (i == len)
        bench_die("redis protocol: a header without a number");
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
            bench_die("redis protocol: a bad number");
        v = v * 10 + (s[i] - '0');
    }
    return neg ? -v : v;
}

static void rd_ok(struct conn *c) {
    size_t len;
    const char *s = rd_line(c, &len);
    if (len == 3 && !memcmp(s, "+OK", 3))
        return;
    char msg[MAX_LINE + 64];
    snprintf(msg, sizeof msg, "redis: wanted +OK, got \"%.*s\"", (int)len, s);
    bench_die(msg);
}

static void rd_int(struct conn *c, int64_t want) {
    int64_t v = rd_header(c, ':');
    if (v != want) {
        char msg[96];
        snprintf(msg, sizeof msg,
                 "redis: integer reply %" PRId64
                 " where the model implies %" PRId64,
                 v, want);
        bench_die(msg);
    }
}

static void rd_ints(struct conn *c, uint64_t count, int64_t want) {
    for (uint64_t j = 0; j < count; j++)
        rd_int(c, want);
}

/* The next reply as a bulk string: its bytes (valid until the next read
 * call) and *len, or NULL for nil. */
static const char *rd_bulk(struct conn *c, size_t *len) {
    int64_t k = rd_header(c, '$');
    if (k == -1)
        return NULL;
    if (k < 0 || k > MAX_BULK)
        bench_die("redis protocol: a bad bulk length");
    rd_need(c, (size_t)k + 2);
    const char *p = c->r + c->rpos;
    if (p[k] != '\r' || p[k + 1] != '\n')
        bench_die("redis protocol: a bulk string without CRLF");
    c->rpos += (size_t)k + 2;
    *len = (size_t)k;
    return p;
}

/* An array reply's element count; the elements follow. */
static uint64_t rd_array(struct conn *c) {
    int64_t k = rd_header(c, '*');
    if (k < 0)
        bench_die("redis: a nil array");
    return (uint64_t)k;
}

/* A bulk reply of exactly `len` bytes, or NULL for nil. */
static const char *rd_sized(struct conn *c, size_t len, const char *what) {
    size_t got;
    const char *p = rd_bulk(c, &got);
    if (p && got != len) {
        char msg[96];
        snprintf(msg, sizeof msg, "redis: %s of %zu bytes, not %zu", what, got,
                 len);
        bench_die(msg);
    }
    return p;
}

/* ---- the data model ---- */

static void keys_init(void) {
    for (unsigned r = 0; r < ROLES; r++)
        snprintf(role_key[r], KEY_MAX, GUILD_KEY ":role:%u", r);
    for (unsigned w = 0; w < BENCH_WORKERS; w++)
        snprintf(active_key[w], KEY_MAX, GUILD_KEY ":active:%u", w);
}

static void put_recipient(struct conn *c, const struct bench_member *m) {
    uint64_t pair[2] = {m->user_id, m->session_id};
    put_arg(c, pair, sizeof pair);
}

/* Queue the commands that insert member i (record m), or delete it; returns
 * how many. Its sets follow i as in bench_member_make. */
static unsigned put_member(struct conn *c, const struct bench_member *m,
                           uint64_t i, bool insert) {
    put_cmd(c, insert ? 4 : 3, insert ? "HSET" : "HDEL");
    put_str(c, GUILD_KEY);
    put_uid(c, m->user_id);
    if (insert)
        put_arg(c, m, sizeof *m);
    const char *set_verb = insert ? "SADD" : "SREM";
    put_cmd(c, 3, set_verb);
    put_str(c, role_key[i % ROLES]);
    put_uid(c, m->user_id);
    if (!(m->flags & BENCH_ACTIVE))
        return 2;
    put_cmd(c, 3, set_verb);
    put_str(c, active_key[m->worker]);
    put_recipient(c, m);
    return 3;
}

static void put_hget(struct conn *c, uint64_t uid) {
    put_cmd(c, 3, "HGET");
    put_str(c, GUILD_KEY);
    put_uid(c, uid);
}

/* Read an HGET reply into *m; false for a miss. */
static bool rd_member(struct conn *c, uint64_t uid, struct bench_member *m) {
    const char *p = rd_sized(c, sizeof *m, "a record");
    if (!p)
        return false;
    memcpy(m, p, sizeof *m);
    if (m->user_id != uid)
        bench_die("redis: HGET returned another member's record");
    return true;
}

static void redis_memory(struct conn *c, double *used, double *rss) {
    put_cmd(c, 2, "INFO");
    put_str(c, "memory");
    size_t len;
    const char *p = rd_bulk(c, &len);
    if (!p)
        bench_die("redis: INFO memory is nil");
    char *s = xrealloc(NULL, len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    const char *name[2] = {"used_memory", "used_memory_rss"};
    double *out[2] = {used, rss};
    for (int f = 0; f < 2; f++) {
        /* A field is "name:value" at a line's start; "used_memory" is also
         * the prefix of other fields. */
        size_t k = strlen(name[f]);
        const char *at = s;
        while ((at = strstr(at, name[f])) &&
               ((at > s && at[-1] != '\n') || at[k] != ':'))
            at += k;
        char *end;
        *out[f] = at ? strtod(at + k + 1, &end) : 0;
        if (!at || end == at + k + 1)
            bench_die("redis: INFO memory lacks used_memory or its rss");
    }
    free(s);
}

/* Both memory figures once serverCron has sampled the RSS (every 100 ms)
 * and finished any incremental rehash it can. */
static void settled_memory(struct conn *c, double *used, double *rss) {
    usleep(SETTLE_US);
    redis_memory(c, used, rss);
}

/* ---- the workload ---- */

/* Insert all n members, PIPE_BATCH commands (about) at a time. */
static void load(struct bench *b) {
    uint64_t pending = 0;
    for (uint64_t i = 0; i < b->n; i++) {
        struct bench_member m;
        bench_member_make(i, b->n, b->a, &m);
        pending += put_member(b->c, &m, i, true);
        if (pending >= PIPE_BATCH || i + 1 == b->n) {
            rd_ints(b->c, pending, 1);
            pending = 0;
        }
    }
}

/* Pipelined HGETs of keys[0..count); returns the hits. */
static uint64_t lookups(struct conn *c, const uint64_t *keys, uint64_t count) {
    uint64_t hits = 0;
    for (uint64_t j = 0; j < count; j += PIPE_BATCH) {
        uint64_t batch = count - j < PIPE_BATCH ? count - j : PIPE_BATCH;
        for (uint64_t k = 0; k < batch; k++)
            put_hget(c, keys[j + k]);
        for (uint64_t k = 0; k < batch; k++)
            hits += rd_member(c, keys[j + k], &sink[k]);
    }
    return hits;
}

/* Walk the cycle from member 0 for `steps` lookups, one round trip each:
 * lookup s (1-based) reads the (s-1)-th member after member 0, so member 0
 * itself is the first, as in report.py's expected check_dep. Returns the
 * sum of joined_at % 1000 over lookups 1..CHECK_DEP_STEPS. */
static uint64_t dep_walk(struct conn *c, uint64_t steps) {
    uint64_t key = bench_uid(0), active = 0;
    for (uint64_t s = 1; s <= steps; s++) {
        put_hget(c, key);
        if (!rd_member(c, key, &sink[0]))
            bench_die("redis: a dependent lookup missed");
        key = sink[0].session_id;
        active += s <= CHECK_DEP_STEPS ? (uint64_t)sink[0].joined_at % 1000 : 0;
    }
    return active;
}

typedef uint64_t (*run_fn)(struct bench *b, int run);

static uint64_t run_lookups(struct bench *b, int run) {
    (void)run;
    return lookups(b->c, b->hit_keys, b->ops);
}

static uint64_t run_dep(struct bench *b, int run) {
    (void)run;
    return dep_walk(b->c, b->ops / 4);
}

static uint64_t run_misses(struct bench *b, int run) {
    (void)run;
    return lookups(b->c, b->miss_keys, b->ops);
}

/* Grow *p to hold `need` items of `size` bytes. */
static void *grow(void *p, uint64_t *cap, uint64_t need, size_t size) {
    if (need <= *cap)
        return p;
    if (need > SIZE_MAX / size)
        bench_die("redis: a reply too large to hold");
    *cap = need;
    return xrealloc(p, need * size);
}

/* The active members as (user_id, session_id), grouped by worker; returns
 * how many. */
static uint64_t run_fanout(struct bench *b, int run) {
    (void)run;
    for (unsigned w = 0; w < BENCH_WORKERS; w++) {
        put_cmd(b->c, 2, "SMEMBERS");
        put_str(b->c, active_key[w]);
    }
    uint64_t total = 0;
    for (unsigned w = 0; w < BENCH_WORKERS; w++) {
        uint64_t count = rd_array(b->c);
        b->fan[w] = grow(b->fan[w], &b->fan_cap[w], count, sizeof *b->fan[w]);
        for (uint64_t j = 0; j < count; j++) {
            const char *p = rd_sized(b->c, sizeof *b->fan[w], "a recipient");
            if (!p)
                bench_die("redis: a nil set element");
            memcpy(&b->fan[w][j], p, sizeof *b->fan[w]);
        }
        total += count;
    }
    return total;
}

/* The user ids of role BENCH_ROLE; returns how many. */
static uint64_t run_role(struct bench *b, int run) {
    (void)run;
    put_cmd(b->c, 2, "SMEMBERS");
    put_str(b->c, role_key[BENCH_ROLE]);
    uint64_t count = rd_array(b->c);
    b->role_ids = grow(b->role_ids, &b->role_cap, count, sizeof *b->role_ids);
    for (uint64_t j = 0; j < count; j++) {
        const char *p = rd_sized(b->c, sizeof *b->role_ids, "a user id");
        if (!p)
            bench_die("redis: a nil set element");
        memcpy(&b->role_ids[j], p, sizeof *b->role_ids);
    }
    return count;
}

/* The online members, counted by reading every record's flags. */
static uint64_t run_count(struct bench *b, int run) {
    (void)run;
    put_cmd(b->c, 2, "HVALS");
    put_str(b->c, GUILD_KEY);
    uint64_t count = rd_array(b->c), online = 0;
    for (uint64_t j = 0; j < count; j++) {
        const char *p = rd_sized(b->c, sizeof(struct bench_member), "a record");
        uint32_t flags;
        if (!p)
            bench_die("redis: a nil record");
        memcpy(&flags, p + offsetof(struct bench_member, flags), sizeof flags);
        online += (flags & BENCH_ONLINE) != 0;
    }
    return online;
}

/* Flips [run * L, (run + 1) * L): each HSET overwrites a field, reply 0. */
static uint64_t run_flips(struct bench *b, int run) {
    const uint64_t *idx = b->flip_i + (uint64_t)run * b->ops;
    const uint32_t *flags = b->flip_flags + (uint64_t)run * b->ops;
    for (uint64_t j = 0; j < b->ops; j += PIPE_BATCH) {
        uint64_t batch = b->ops - j < PIPE_BATCH ? b->ops - j : PIPE_BATCH;
        for (uint64_t k = j; k < j + batch; k++) {
            struct bench_member m;
            bench_member_make(idx[k], b->n, b->a, &m);
            m.flags = flags[k];
            put_cmd(b->c, 4, "HSET");
            put_str(b->c, GUILD_KEY);
            put_uid(b->c, m.user_id);
            put_arg(b->c, &m, sizeof m);
        }
        rd_ints(b->c, batch, 0);
    }
    return 0;
}

/* Churn pairs [run * L, (run + 1) * L): every command removes or adds one
 * thing, reply 1, as a deleted member is re-inserted before its next pick. */
static uint64_t run_churn(struct bench *b, int run) {
    const uint64_t *idx = b->churn_i + (uint64_t)run * b->ops;
    for (uint64_t j = 0; j < b->ops; j += PIPE_BATCH) {
        uint64_t batch = b->ops - j < PIPE_BATCH ? b->ops - j : PIPE_BATCH;
        uint64_t pending = 0;
        for (uint64_t k = j; k < j + batch; k++) {
            struct bench_member m;
            bench_member_make(idx[k], b->n, b->a, &m);
            pending += put_member(b->c, &m, idx[k], false);
            pending += put_member(b->c, &m, idx[k], true);
        }
        rd_ints(b->c, pending, 1);
    }
    return 0;
}

/* Run fn until it has run min_runs times and min_secs in all, at most
 * max_runs times; returns the median seconds of a run. Each run does the
 * same work, so each returns the same *result. */
static double time_runs(struct bench *b, run_fn fn, int min_runs,
                        double min_secs, int max_runs, uint64_t *result) {
    static double t[SCAN_MAX_RUNS];
    double total = 0;
    int k = 0;
    for (; k < max_runs && (k < min_runs || total < min_secs); k++) {
        double t0 = bench_now();
        uint64_t r = fn(b, k);
        t[k] = bench_now() - t0;
        total += t[k];
        if (k == 0)
            *result = r;
        else if (r != *result)
            bench_die("runs of the same work disagree");
    }
    return bench_median(t, k);
}

static double time_rounds(struct bench *b, run_fn fn, uint64_t *result) {
    return time_runs(b, fn, ROUNDS, 0, ROUNDS, result);
}

static double time_scans(struct bench *b, run_fn fn, uint64_t *result) {
    return time_runs(b, fn, SCAN_MIN_RUNS, SCAN_MIN_SECS, SCAN_MAX_RUNS,
                     result);
}

/* A forked reader: its own connection, opened in setup (untimed). */
struct reader {
    struct bench *b;
    struct conn *c;
};

static void reader_setup(void *ctx, int which) {
    (void)which;
    struct reader *r = ctx;
    r->c = conn_open(r->b->port);
}

static uint64_t reader_run(void *ctx, int which) {
    (void)which;
    struct reader *r = ctx;
    if (lookups(r->c, r->b->hit_keys, r->b->ops) != r->b->ops)
        bench_die("redis: a reader's lookup missed");
    return r->b->ops;
}

static int env_port(void) {
    const char *s = getenv("BENCH_REDIS_PORT");
    if (!s || !*s)
        return DEFAULT_PORT;
    char *end;
    long p = strtol(s, &end, 10);
    if (*end || p < 1 || p > 65535)
        bench_die("BENCH_REDIS_PORT is not a port");
    return (int)p;
}

/* The operation arrays, built before any clock starts. */
static void prepare(struct bench *b) {
    b->hit_keys = bench_keys(b->ops, b->n, false);
    b->miss_keys = bench_keys(b->ops, b->n, true);
    uint64_t total = ROUNDS * b->ops;
    b->flip_i = xrealloc(NULL, total * sizeof *b->flip_i);
    b->flip_flags = xrealloc(NULL, total * sizeof *b->flip_flags);
    b->churn_i = xrealloc(NULL, total * sizeof *b->churn_i);
    for (uint64_t k = 0; k < total; k++) {
        bench_flip(k, b->n, &b->flip_i[k], &b->flip_flags[k]);
        b->churn_i[k] = bench_churn(k, b->n);
    }
}

static void bench_free(struct bench *b) {
    conn_close(b->c);
    free(b->hit_keys);
    free(b->miss_keys);
    free(b->flip_i);
    free(b->flip_flags);
    free(b->churn_i);
    for (unsigned w = 0; w < BENCH_WORKERS; w++)
        free(b->fan[w]);
    free(b->role_ids);
}

int main(int argc, char **argv) {
    struct bench b = {.n = bench_args(argc, argv, "redis")};
    b.ops = bench_ops(DEFAULT_OPS);
    if (b.ops < MIN_OPS || b.ops > MAX_OPS)
        bench_die("BENCH_OPS must be in 4..2^30");
    b.a = bench_lcg_a(b.n);
    b.port = env_port();
    keys_init();
    prepare(&b);
    b.c = conn_open(b.port);
    put_cmd(b.c, 1, "FLUSHALL");
    rd_ok(b.c);

    double used0, rss0, used1, rss1;
    settled_memory(b.c, &used0, &rss0);
    double t0 = bench_now();
    load(&b);
    bench_emit("load_mps", (double)b.n / (bench_now() - t0) / 1e6);
    settled_memory(b.c, &used1, &rss1);
    bench_emit("bytes_member", (used1 - used0) / (double)b.n);
    bench_emit("rss_member", (rss1 - rss0) / (double)b.n);

    uint64_t hits, dep, misses, active, role, online, none;
    double ops = (double)b.ops;
    bench_emit("lookup_ns", time_rounds(&b, run_lookups, &hits) / ops * 1e9);
    double dep_s = time_rounds(&b, run_dep, &dep);
    bench_emit("lookup_dep_ns", dep_s / (double)(b.ops / 4) * 1e9);
    if (b.ops / 4 < CHECK_DEP_STEPS)
        dep = dep_walk(b.c, CHECK_DEP_STEPS);
    bench_emit("miss_ns", time_rounds(&b, run_misses, &misses) / ops * 1e9);
    struct reader rd = {.b = &b};
    bench_readers(reader_setup, reader_run, &rd);
    bench_emit("fanout_ms", time_scans(&b, run_fanout, &active) * 1e3);
    bench_emit("role_ms", time_scans(&b, run_role, &role) * 1e3);
    bench_emit("count_ms", time_scans(&b, run_count, &online) * 1e3);
    bench_emit("flip_mps", ops / time_rounds(&b, run_flips, &none) / 1e6);
    bench_emit("churn_mps", ops / time_rounds(&b, run_churn, &none) / 1e6);

    bench_emit("check_hits", (double)hits);
    bench_emit("check_misses", (double)misses);
    bench_emit("check_dep", (double)dep);
    bench_emit("check_active", (double)active);
    bench_emit("check_role", (double)role);
    bench_emit("check_count", (double)online);
    bench_emit("ops_lookup", ops);
    bench_free(&b);
    return 0;
}
