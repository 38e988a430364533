/*
 * alloc.c - the segment heap: a buddy allocator over a sparse region, the
 * commit bitmap that keeps every write on fallocated pages, and the retire
 * list that frees blocks only after every reader that could hold them has
 * moved on.
 *
 * Invariants:
 * - Nothing is ever stored to a page of the file whose bit in the commit
 *   bitmap is clear; bits are set only after fallocate() succeeded. So a full
 *   file system is an ENOSPC from fallocate, never a SIGBUS on a store.
 *   Clearing a bit (before punching the page out) is always safe, so the
 *   bitmap needs no undo logging: it only ever errs towards "not committed".
 * - Heap blocks are 2^order bytes, order in [GT_HEAP_MIN_ORDER, top_order],
 *   aligned to their size relative to the heap start. meta[unit] describes
 *   the block that starts at that 128-byte unit: 0 (no block starts here),
 *   FREE|order or USED|order. Free blocks are on a doubly linked list per
 *   order whose links live in the first 16 bytes of the block; those bytes
 *   are committed before they are written.
 * - On a tmpfs that gives huge pages on request (huge=advise), a new block's
 *   whole 2 MiB pages are faulted in through a short-lived mapping marked
 *   MADV_HUGEPAGE just before fallocate commits the block (huge_fill). That
 *   stores nothing, and where it fails fallocate still decides: a full file
 *   system stays an ENOSPC.
 * - Only the part of a block its owner asks for is committed, so the buddy
 *   rounding costs address space, not memory. Freed blocks of 64 KiB or more
 *   give their pages back (all but the page holding the links), once the
 *   section that freed them has committed.
 * - All list, meta and counter writes happen under the global lock and are
 *   logged in the global undo log.
 * - A block retired at epoch e is freed only when every pinned reader slot
 *   holds an epoch > e: such readers pinned after the view that referenced
 *   the block was replaced, so cannot reach it. Lookups do not pin: they
 *   validate the guild's view sequence instead (see index.c).
 * - Memory pinned by readers is bounded: when the retire list or the heap is
 *   full, scans pinned longer than the table's stall_ms are evicted (they
 *   stop with GT_ESTALE, see readers.c), and a write waits at most
 *   ALLOC_WAIT_NS for scans to release memory before it reports GT_EFULL.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define META_FREE 0x80u
#define META_USED 0x40u
#define META_ORDER 0x3Fu
#define PUNCH_MIN_ORDER 16u

struct links {
    uint64_t next, prev; /* heap offset + 1; 0 = none */
};

static a64 *commit_words(gt_table *t) {
    return (a64 *)gt_at(t, t->g.commit_off);
}

static bool page_committed(const a64 *bits, uint64_t p) {
    return LOAD(&bits[p >> 6], relaxed) & (1ull << (p & 63));
}

/* The next run of pages with a clear commit bit in [*p, end): true and
 * [*p, *q) if there is one. */
static bool next_uncommitted(const a64 *bits, uint64_t *p, uint64_t end,
                             uint64_t *q) {
    while (*p < end && page_committed(bits, *p))
        ++*p;
    for (*q = *p; *q < end && !page_committed(bits, *q); ++*q)
        ;
    return *p < end;
}

int gt__commit(gt_table *t, uint64_t off, uint64_t len) {
    if (len == 0)
        return 0;
    a64 *bits = commit_words(t);
    uint64_t p = off / GT_PAGE, end = (off + len - 1) / GT_PAGE + 1, q;
    for (; next_uncommitted(bits, &p, end, &q); p = q) {
        if (fallocate(t->fd, 0, (off_t)(p * GT_PAGE),
                      (off_t)((q - p) * GT_PAGE)) != 0) {
            int e = errno;
            return e == ENOSPC ? GT_ENOSPC : -e;
        }
        for (uint64_t i = p; i < q; i++)
            atomic_fetch_or_explicit(&bits[i >> 6], 1ull << (i & 63),
                                     memory_order_relaxed);
    }
    return 0;
}

/* Map a large block's pages into this process in one call: its owner
 * writes all of it next (a storage block is cleared whole), and one
 * MADV_POPULATE_WRITE costs less than a page fault per page: 90 MB of
 * fallocated tmpfs took 24 ms against 42 ms of faults (2-core EPYC VM).
 * Advisory: kernels before 5.14 refuse it, and the faults then happen as
 * before. The pages are committed first, so this never meets a hole. */
#define PREFAULT_MIN (1u << PUNCH_MIN_ORDER)
static void prefault(gt_table *t, uint64_t off, uint64_t len) {
#ifdef MADV_POPULATE_WRITE
    uint64_t start = off & ~(uint64_t)(GT_PAGE - 1);
    if (len >= PREFAULT_MIN)
        (void)madvise(gt_at(t, start), off + len - start,
                      MADV_POPULATE_WRITE);
#else
    (void)t, (void)off, (void)len;
#endif
}

/* ---- huge pages for large blocks ----------------------------------------- */

/* Whether the table's file system gives 2 MiB pages on request only: a
 * tmpfs mounted huge=advise (its superblock options in mountinfo, found by
 * the file's device). huge=within_size and huge=always give them to every
 * page fallocate commits, the sparse regions too; huge=never, the default,
 * to none. */
bool gt__huge_on_request(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return false;
    char dev[32];
    snprintf(dev, sizeof dev, "%u:%u", major(st.st_dev), minor(st.st_dev));
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    bool huge = false, found = false;
    char *line = NULL;
    size_t cap = 0;
    while (!found && getline(&line, &cap, f) > 0) {
        /* id parent major:minor root point options [tags] - type source super */
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        for (int i = 0; tok && i < 2; i++)
            tok = strtok_r(NULL, " \n", &save);
        if (!tok || strcmp(tok, dev) != 0)
            continue;
        while ((tok = strtok_r(NULL, " \n", &save)) && strcmp(tok, "-") != 0)
            ;
        const char *type = strtok_r(NULL, " \n", &save);
        const char *source = strtok_r(NULL, " \n", &save);
        char *super = strtok_r(NULL, " \n", &save);
        if (!type || !source || !super)
            continue;
        found = true;
        char *s2 = NULL;
        for (char *o = strtok_r(super, ",", &s2); o && !strcmp(type, "tmpfs");
             o = strtok_r(NULL, ",", &s2))
            huge |= strcmp(o, "huge=advise") == 0;
    }
    free(line);
    fclose(f);
    return huge;
}

#define HUGE_PAGE (2ull << 20)

/* Give back the pages of [off, off + len) whose commit bit is clear: what
 * huge_fill took for a block that then could not be committed. Nothing is
 * stored to such pages (the invariant above), so punching them is safe. */
static void drop_uncommitted(gt_table *t, uint64_t off, uint64_t len) {
    uint64_t p = off / GT_PAGE, end = (off + len) / GT_PAGE, q;
    for (; next_uncommitted(commit_words(t), &p, end, &q); p = q)
        (void)fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)(p * GT_PAGE), (off_t)((q - p) * GT_PAGE));
}

/* Give the whole 2 MiB pages of a new block huge pages where the mount
 * gives them on request (t->huge): fault them in through a short-lived
 * mapping of the block marked MADV_HUGEPAGE, before gt__commit's fallocate
 * (which then finds them there). A page the file holds whole is mapped as
 * one by every process (one TLB entry for 512 pages), so the table's own
 * mapping needs no mark and keeps none: nothing gathers its sparse regions
 * into huge pages later. Best effort: on any failure fallocate commits the
 * pages 4 KiB at a time, and a full tmpfs is still its GT_ENOSPC (a
 * populate reports errors; it raises no SIGBUS); what a failed populate,
 * or a populate whose block then fails to commit, took is given back.
 * Blocks of 2 MiB or more start on a 2 MiB boundary of the file, as
 * heap_off does. */
static void huge_fill(gt_table *t, uint64_t off, uint64_t len) {
#ifdef MADV_POPULATE_WRITE
    uint64_t n = len & ~(HUGE_PAGE - 1);
    if (!t->huge || n == 0 || off % HUGE_PAGE)
        return;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd,
                   (off_t)off);
    if (p == MAP_FAILED)
        return;
    bool taken = madvise(p, n, MADV_HUGEPAGE) == 0 &&
                 madvise(p, n, MADV_POPULATE_WRITE) == 0;
    munmap(p, n);
    if (!taken) /* a full file system, say: leave it all to fallocate */
        drop_uncommitted(t, off, n);
#else
    (void)t, (void)off, (void)len;
#endif
}

static void uncommit(gt_table *t, uint64_t off, uint64_t len) {
    uint64_t start = gt_align_up(off, GT_PAGE), end = (off + len) & ~(uint64_t)(GT_PAGE - 1);
    if (end <= start)
        return;
    a64 *bits = commit_words(t);
    for (uint64_t p = start / GT_PAGE; p < end / GT_PAGE; p++)
        atomic_fetch_and_explicit(&bits[p >> 6], ~(1ull << (p & 63)),
                                  memory_order_relaxed);
    /* best effort: a page that stays allocated is only memory */
    (void)fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    (off_t)start, (off_t)(end - start));
}

/* ---- buddy lists (global lock held, writes logged) ---------------------- */

static uint8_t *meta_at(gt_table *t, uint64_t h) {
    return gt_at(t, t->g.meta_off + (h >> GT_HEAP_MIN_ORDER));
}
static struct links *links_at(gt_table *t, uint64_t h) {
    return gt_at(t, t->g.heap_off + h);
}

static int set_meta(gt_table *t, uint64_t h, uint8_t v) {
    uint8_t *m = meta_at(t, h);
    int r = gt__commit(t, gt_off(t, m), 1);
    if (r == 0)
        r = gt__log_bytes(t, gt__glog(t), m, 1, -1);
    if (r == 0)
        atomic_store_explicit((a8 *)m, v, memory_order_relaxed);
    return r;
}

static int log_heads(gt_table *t) {
    struct gt_seg *s = t->seg;
    return gt__log_bytes(t, gt__glog(t), s->free_head, sizeof s->free_head, -1);
}

/* A free-list link (heap offset + 1) that names a free block of order. The
 * lists live in the file, so a damaged table must not send us elsewhere. */
static bool link_ok(gt_table *t, uint64_t link, uint32_t order) {
    uint64_t h = link - 1;
    return link == 0 ||
           (h < t->g.heap_size && !(h & ((1ull << GT_HEAP_MIN_ORDER) - 1)) &&
            *meta_at(t, h) == (META_FREE | order));
}

static int push(gt_table *t, uint64_t h, uint32_t order) {
    struct gt_seg *s = t->seg;
    struct links *l = links_at(t, h);
    int r = gt__commit(t, gt_off(t, l), sizeof *l);
    if (r)
        return r;
    uint64_t head = s->free_head[order];
    if (!link_ok(t, head, order))
        return GT_ECORRUPT;
    if (head) {
        struct links *hl = links_at(t, head - 1);
        r = gt__log_bytes(t, gt__glog(t), &hl->prev, 8, -1);
        if (r)
            return r;
        hl->prev = h + 1;
    }
    /* h may start a block that was free before this section (a merge with
     * a lower buddy): a rollback must find its old links again */
    if ((r = gt__log_bytes(t, gt__glog(t), l, sizeof *l, -1)))
        return r;
    l->next = head;
    l->prev = 0;
    r = set_meta(t, h, (uint8_t)(META_FREE | order));
    if (r)
        return r;
    s->free_head[order] = h + 1;
    return 0;
}

static int unlink_free(gt_table *t, uint64_t h, uint32_t order) {
    struct gt_seg *s = t->seg;
    struct links *l = links_at(t, h);
    int r;
    if (!link_ok(t, l->prev, order) || !link_ok(t, l->next, order))
        return GT_ECORRUPT;
    if (l->prev) {
        struct links *p = links_at(t, l->prev - 1);
        if ((r = gt__log_bytes(t, gt__glog(t), &p->next, 8, -1)))
            return r;
        p->next = l->next;
    } else {
        s->free_head[order] = l->next;
    }
    if (l->next) {
        struct links *n = links_at(t, l->next - 1);
        if ((r = gt__log_bytes(t, gt__glog(t), &n->prev, 8, -1)))
            return r;
        n->prev = l->prev;
    }
    return set_meta(t, h, 0);
}

static uint32_t order_for(uint64_t bytes) {
    uint32_t o = GT_HEAP_MIN_ORDER;
    while (o < 63 && (1ull << o) < bytes)
        o++;
    return o;
}

static bool h_valid(gt_table *t, uint64_t h, uint32_t order) {
    const struct gt_geom *g = &t->g;
    return order >= GT_HEAP_MIN_ORDER && order <= g->top_order &&
           h < g->heap_size && (h & ((1ull << order) - 1)) == 0;
}

static int alloc_locked(gt_table *t, uint32_t order, uint64_t *h_out) {
    struct gt_seg *s = t->seg;
    uint32_t top = t->g.top_order, k = order;
    while (k <= top && s->free_head[k] == 0)
        k++;
    if (k > top)
        return GT_EFULL;
    int r = log_heads(t);
    if (r)
        return r;
    uint64_t h = s->free_head[k] - 1;
    if (!h_valid(t, h, k) || *meta_at(t, h) != (META_FREE | k))
        return GT_ECORRUPT;
    if ((r = unlink_free(t, h, k)))
        return r;
    while (k > order) {
        k--;
        GT_HOOK("heap_split");
        if ((r = push(t, h + (1ull << k), k)))
            return r;
    }
    if ((r = set_meta(t, h, (uint8_t)(META_USED | order))))
        return r;
    *h_out = h;
    return 0;
}

void gt__free_locked(gt_table *t, uint64_t off, uint32_t order, uint32_t units) {
    struct gt_seg *s = t->seg;
    uint64_t h = off - t->g.heap_off;
    if (off < t->g.heap_off || !h_valid(t, h, order) ||
        *meta_at(t, h) != (META_USED | order))
        return; /* not a live block of that order: never corrupt the lists */
    if (log_heads(t) ||
        gt__log_bytes(t, gt__glog(t), &s->heap_used, 8, -1))
        return;
    STORE(&s->heap_used, LOAD(&s->heap_used, relaxed) - ((uint64_t)units << 6),
          relaxed);
    if (set_meta(t, h, 0))
        return;
    while (order < t->g.top_order) {
        uint64_t b = h ^ (1ull << order);
        if (b >= t->g.heap_size || *meta_at(t, b) != (META_FREE | order))
            break;
        if (unlink_free(t, b, order))
            return;
        GT_HOOK("heap_merge");
        h &= ~(1ull << order);
        order++;
    }
    if (push(t, h, order) == 0 && order >= PUNCH_MIN_ORDER &&
        t->npunch < GT_PUNCH_MAX) {
        t->punch[t->npunch].h = h;
        t->punch[t->npunch++].order = order;
    }
}

/* After a global section commits (lock still held): give the pages of the
 * large blocks it freed back to the file system. Only a block that is still
 * free and whole is punched, and never its first page (its links), so
 * nothing reachable is lost; a section that rolled back punches nothing. */
void gt__punch_locked(gt_table *t, bool committed) {
    for (uint32_t i = 0; committed && i < t->npunch; i++) {
        uint64_t h = t->punch[i].h;
        uint32_t o = t->punch[i].order;
        if (h < t->g.heap_size && *meta_at(t, h) == (META_FREE | o))
            uncommit(t, t->g.heap_off + h + GT_PAGE, (1ull << o) - GT_PAGE);
    }
    t->npunch = 0;
}

uint32_t gt__block_order(gt_table *t, uint64_t off) {
    const struct gt_geom *g = &t->g;
    if (off < g->heap_off || off - g->heap_off >= g->heap_size ||
        ((off - g->heap_off) & ((1u << GT_HEAP_MIN_ORDER) - 1)))
        return 0;
    uint8_t m = *meta_at(t, off - g->heap_off);
    return (m & META_USED) ? (m & META_ORDER) : 0;
}

static uint32_t units_of(uint64_t bytes) {
    return (uint32_t)((bytes + 63) >> 6);
}

static int alloc_once(struct gt_wr *w, uint64_t bytes, uint64_t *off,
                      bool evict) {
    gt_table *t = w->t;
    struct gt_log *owner = w->log;
    uint32_t order = order_for(bytes);
    if (order > t->g.top_order)
        return GT_EFULL;
    int r = gt__glock(t);
    if (r)
        return r;
    uint64_t h;
    r = alloc_locked(t, order, &h);
    if (r == GT_EFULL) {
        gt__reclaim_locked(t, 16, evict);
        r = alloc_locked(t, order, &h);
        /* Still full: keep what the reclaim freed (the section holds only
         * that), so that the caller's next try starts from it. Rolled back,
         * a heap that needs more than one reclaim's worth of frees to merge
         * a block would never get one. */
        if (r == GT_EFULL) {
            int u = gt__gunlock(t);
            return u ? u : GT_EFULL;
        }
    }
    struct gt_seg *s = t->seg;
    if (r == 0)
        r = gt__log_bytes(t, gt__glog(t), &s->heap_used, 8, -1);
    if (r == 0) {
        /* the owner's entry appears atomically with the allocation */
        r = gt__log_bytes(t, gt__glog(t), &owner->n, 4, -1);
    }
    if (r == 0)
        r = gt__wr_action(w, GT_LOG_ALLOC, 0, t->g.heap_off + h, order, 0);
    if (r == 0) {
        owner->ent[LOAD(&owner->n, relaxed) - 1].seq_rel = units_of(bytes);
        STORE(&s->heap_used,
              LOAD(&s->heap_used, relaxed) + ((uint64_t)units_of(bytes) << 6),
              relaxed);
    }
    if (r) {
        STORE(&gt__glog(t)->state, GT_LOG_FAILED, relaxed);
        gt__gunlock(t); /* rolls the section back */
        return r;
    }
    if ((r = gt__gunlock(t)))
        return r;
    /* Commit outside the lock: fallocate of a large block takes time. On
     * failure the caller aborts, and the rollback frees the block. */
    *off = t->g.heap_off + h;
    GT_HOOK("alloc");
    huge_fill(t, *off, bytes);
    if ((r = gt__commit(t, *off, bytes))) {
        drop_uncommitted(t, *off, bytes); /* what huge_fill took */
        return r;
    }
    prefault(t, *off, bytes);
    return 0;
}

/* A full heap may only be waiting for scans to finish with retired blocks:
 * the write then waits for them (reclaiming as they unpin, and evicting
 * scans pinned longer than the table's stall_ms), at most this long, before
 * it reports GT_EFULL. */
#define ALLOC_WAIT_NS (1000ull * 1000 * 1000)

int gt__alloc(struct gt_wr *w, uint64_t bytes, uint64_t *off, bool wait) {
    gt_table *t = w->t;
    int r = alloc_once(w, bytes, off, false);
    if (r == GT_EFULL && gt__sweep(t, false) > 0)
        r = alloc_once(w, bytes, off, false); /* a dead writer's */
    uint64_t start = 0;
    while (wait && r == GT_EFULL && LOAD(&t->seg->retired_n, relaxed) != 0) {
        uint64_t now = gt__now_ns();
        if (!start)
            start = now;
        if (now - start > ALLOC_WAIT_NS)
            break;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        r = alloc_once(w, bytes, off, true); /* stalled scans go */
    }
    return r;
}

/* ---- retire and reclaim ---------------------------------------------------- */

static struct gt_retired *retire_list(gt_table *t) {
    return (struct gt_retired *)gt_at(t, t->g.retire_off);
}

int gt__retire_locked(gt_table *t, uint64_t off, uint32_t order,
                      uint32_t units) {
    struct gt_seg *s = t->seg;
    struct gt_retired *rl = retire_list(t);
    uint32_t cap = t->g.retire_cap;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < cap; i++) {
            if (rl[i].off)
                continue;
            struct gt_log *gl = gt__glog(t);
            int r = gt__log_bytes(t, gl, &rl[i], sizeof rl[i], -1);
            if (r == 0)
                r = gt__log_bytes(t, gl, &s->retired_bytes, 16, -1);
            if (r)
                return r;
            uint64_t e = LOAD(&s->epoch, relaxed);
            rl[i].order = order;
            rl[i].units = units;
            rl[i].epoch = e;
            rl[i].off = off;
            GT_HOOK("retire");
            STORE(&s->retired_bytes,
                  LOAD(&s->retired_bytes, relaxed) + ((uint64_t)units << 6),
                  relaxed);
            STORE(&s->retired_n, LOAD(&s->retired_n, relaxed) + 1, relaxed);
            /* Readers pinning from now on read epoch e + 1 and, after their
             * fence, the replaced view: pairs with the load in gt__pin. */
            atomic_fetch_add_explicit(&s->epoch, 1, memory_order_seq_cst);
            return 0;
        }
        /* full: readers stalled past stall_ms lose their pins */
        gt__reclaim_locked(t, 4, true);
    }
    return GT_EBUSY; /* every entry waits for a reader: caller retries */
}

void gt__reclaim_locked(gt_table *t, uint32_t max, bool evict) {
    struct gt_seg *s = t->seg;
    if (LOAD(&s->retired_n, relaxed) == 0)
        return;
    /* pairs with the slot stores of gt__pin: see the header comment */
    atomic_thread_fence(memory_order_seq_cst);
    struct gt_retired *rl = retire_list(t);
    uint64_t oldest = UINT64_MAX;
    for (uint32_t i = 0; i < t->g.retire_cap; i++)
        if (rl[i].off && rl[i].epoch < oldest)
            oldest = rl[i].epoch;
    uint64_t now = gt__now_ns(), stall = (uint64_t)t->g.stall_ms * 1000000ull;
    uint64_t min = gt__min_epoch(t, oldest, evict && now > stall ? now - stall : 0);
    struct gt_log *gl = gt__glog(t);
    for (uint32_t i = 0; i < t->g.retire_cap && max; i++) {
        if (!rl[i].off || rl[i].epoch >= min)
            continue;
        if (LOAD(&gl->n, relaxed) + GT_GLOG_HEADROOM > gl->ent_cap)
            break;
        if (gt__log_bytes(t, gl, &rl[i], sizeof rl[i], -1) ||
            gt__log_bytes(t, gl, &s->retired_bytes, 16, -1))
            break;
        uint64_t off = rl[i].off;
        rl[i].off = 0;
        STORE(&s->retired_bytes,
              LOAD(&s->retired_bytes, relaxed) - ((uint64_t)rl[i].units << 6),
              relaxed);
        STORE(&s->retired_n, LOAD(&s->retired_n, relaxed) - 1, relaxed);
        gt__free_locked(t, off, rl[i].order, rl[i].units);
        max--;
    }
}

/* ---- creation --------------------------------------------------------------- */

int gt__heap_init(gt_table *t) {
    struct gt_seg *s = t->seg;
    uint32_t top = t->g.top_order;
    /* Highest offset first, so the lowest block ends up at the list head. */
    for (uint64_t h = t->g.heap_size; h > 0;) {
        h -= 1ull << top;
        struct links *l = links_at(t, h);
        uint8_t *m = meta_at(t, h);
        int r = gt__commit(t, gt_off(t, l), sizeof *l);
        if (r == 0)
            r = gt__commit(t, gt_off(t, m), 1);
        if (r)
            return r;
        uint64_t head = s->free_head[top];
        if (head)
            links_at(t, head - 1)->prev = h + 1;
        l->next = head;
        l->prev = 0;
        *m = (uint8_t)(META_FREE | top);
        s->free_head[top] = h + 1;
    }
    return 0;
}
