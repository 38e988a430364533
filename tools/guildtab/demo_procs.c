/*
 * demo_procs.c - the demo's processes: signals, fork, the start barrier,
 * and reaping.
 *
 * Signals: the parent catches SIGINT and SIGTERM (stop the run and clean
 * up, so an interrupted demo does not leave its table in /dev/shm) and
 * SIGALRM (a watchdog: children still alive WATCHDOG_GRACE_S after the
 * deadline are hung and get SIGKILL). The handlers only set flags and are
 * installed without SA_RESTART, so a blocked waitpid returns EINTR and the
 * parent acts on the flag. Children ignore SIGINT (a terminal's ^C reaches
 * the whole process group): the parent stops them through the shared phase,
 * so they still report.
 */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_TIMEOUT_NS (30ull * NS_PER_S) /* children opening the table */
#define READY_POLL_NS 1000000L              /* 1 ms */
#define WATCHDOG_GRACE_S 30u /* past the deadline: a child is hung */

static volatile sig_atomic_t interrupted, alarmed;
static struct sigaction saved_int, saved_term, saved_alrm, saved_chld;

static void on_signal(int sig) {
    if (sig == SIGALRM)
        alarmed = 1;
    else
        interrupted = 1;
}

int demo_signals_install(void) {
    struct sigaction sa, dfl;
    memset(&sa, 0, sizeof sa);
    memset(&dfl, 0, sizeof dfl);
    sa.sa_handler = on_signal;
    sa.sa_flags = 0; /* no SA_RESTART: waitpid must see EINTR */
    /* SIGCHLD ignored (inheritable across exec) would reap the children
     * for us, and their exit statuses are the demo's verdict */
    dfl.sa_handler = SIG_DFL;
    if (sigemptyset(&sa.sa_mask) != 0 || sigemptyset(&dfl.sa_mask) != 0 ||
        sigaction(SIGINT, &sa, &saved_int) != 0 ||
        sigaction(SIGTERM, &sa, &saved_term) != 0 ||
        sigaction(SIGALRM, &sa, &saved_alrm) != 0 ||
        sigaction(SIGCHLD, &dfl, &saved_chld) != 0)
        return errno;
    return 0;
}

void demo_signals_restore(void) {
    /* cannot fail: valid signals, actions saved by sigaction itself */
    (void)sigaction(SIGINT, &saved_int, NULL);
    (void)sigaction(SIGTERM, &saved_term, NULL);
    (void)sigaction(SIGALRM, &saved_alrm, NULL);
    (void)sigaction(SIGCHLD, &saved_chld, NULL);
}

bool demo_interrupted(void) {
    return interrupted != 0;
}

/* In a new child: the parent's handlers would only set the child's copy
 * of the flags. signal() fails only for invalid signal numbers. */
static void child_signals(void) {
    (void)signal(SIGINT, SIG_IGN);
    (void)signal(SIGTERM, SIG_DFL);
    (void)signal(SIGALRM, SIG_DFL);
}

static void set_phase(struct demo_shared *sh, enum demo_phase phase) {
    /* release: pairs with the children's acquire load in wait_start */
    atomic_store_explicit(&sh->phase, (uint32_t)phase, memory_order_release);
}

bool demo_child_ok(const struct demo_child *kid) {
    const char *role = demo_role_name(kid->role);
    int s = kid->status;
    if (!kid->lost && WIFEXITED(s) && WEXITSTATUS(s) == DEMO_CHILD_OK)
        return true;
    if (kid->lost)
        fprintf(stderr, CLI_PROGRAM ": demo: %s %" PRIu32 " was lost\n", role,
                kid->index);
    else if (WIFEXITED(s))
        fprintf(stderr, CLI_PROGRAM ": demo: %s %" PRIu32 " exited with %d\n",
                role, kid->index, WEXITSTATUS(s));
    else if (WIFSIGNALED(s))
        fprintf(stderr,
                CLI_PROGRAM ": demo: %s %" PRIu32 " killed by signal %d (%s)\n",
                role, kid->index, WTERMSIG(s), strsignal(WTERMSIG(s)));
    else
        fprintf(stderr, CLI_PROGRAM ": demo: %s %" PRIu32 " ended oddly\n",
                role, kid->index);
    return false;
}

/* Reap kid (flags 0: wait for it; WNOHANG: only look); true once it is
 * gone. A reaped kid keeps its status and has pid 0. */
static bool reaped(struct demo_child *kid, int flags) {
    if (kid->pid == 0)
        return true;
    pid_t r = waitpid(kid->pid, &kid->status, flags);
    if (r == kid->pid) {
        kid->pid = 0;
        return true;
    }
    if (r < 0 && errno != EINTR) { /* ECHILD: cannot happen, see above */
        cli_fail_errno(errno, "demo: wait for the %s",
                       demo_role_name(kid->role));
        kid->lost = true;
        kid->pid = 0;
        return true;
    }
    return false; /* still running (WNOHANG), or EINTR */
}

static void kill_all(struct demo_child *kids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (kids[i].pid > 0)
            (void)kill(kids[i].pid, SIGKILL); /* ESRCH: exited meanwhile */
}

/* Block until every started child is gone, acting on signals meanwhile. */
static void reap_all(struct demo_shared *sh, struct demo_child *kids,
                     size_t n) {
    bool killed = false;
    for (size_t i = 0; i < n; i++) {
        while (!reaped(&kids[i], 0)) {
            if (interrupted)
                set_phase(sh, DEMO_PHASE_ABORT);
            if (alarmed && !killed) {
                fprintf(stderr,
                        CLI_PROGRAM ": demo: children still running "
                                    "%u s after the deadline; killing them\n",
                        WATCHDOG_GRACE_S);
                kill_all(kids, n);
                killed = true;
            }
        }
    }
}

static int fork_all(const struct demo_env *env, struct demo_child *kids,
                    size_t n, size_t *started) {
    /* what stdio holds would otherwise be written by every child too */
    fflush(NULL);
    for (*started = 0; *started < n; (*started)++) {
        pid_t pid = fork();
        if (pid < 0)
            return cli_fail_errno(errno, "demo: fork the %s",
                                  demo_role_name(kids[*started].role));
        if (pid == 0) {
            child_signals();
            demo_child_main(env, &kids[*started]);
        }
        kids[*started].pid = pid;
    }
    return CLI_EXIT_OK;
}

/* The start barrier: every child has opened the table. Children that die
 * first (a failed open prints its own error) end the wait. */
static int wait_ready(struct demo_shared *sh, struct demo_child *kids,
                      size_t n) {
    const struct timespec nap = {0, READY_POLL_NS};
    uint64_t give_up = demo_now_ns() + READY_TIMEOUT_NS;
    /* acquire: pairs with each child's release increment */
    while (atomic_load_explicit(&sh->ready, memory_order_acquire) < n) {
        if (interrupted) {
            fprintf(stderr, CLI_PROGRAM ": demo: interrupted\n");
            return CLI_EXIT_ERROR;
        }
        for (size_t i = 0; i < n; i++)
            if (reaped(&kids[i], WNOHANG)) {
                demo_child_ok(&kids[i]);
                fprintf(stderr, CLI_PROGRAM ": demo: a child ended before "
                                            "the start\n");
                return CLI_EXIT_ERROR;
            }
        if (demo_now_ns() > give_up) {
            fprintf(stderr,
                    CLI_PROGRAM ": demo: children not ready after "
                                "%llu s\n",
                    READY_TIMEOUT_NS / NS_PER_S);
            return CLI_EXIT_ERROR;
        }
        nanosleep(&nap, NULL); /* EINTR only shortens the nap */
    }
    return CLI_EXIT_OK;
}

int demo_procs_run(const struct demo_env *env, struct demo_child *kids,
                   size_t nkids) {
    struct demo_shared *sh = env->shared;
    size_t started;
    int st = fork_all(env, kids, nkids, &started);
    if (st == CLI_EXIT_OK)
        st = wait_ready(sh, kids, started);
    if (st == CLI_EXIT_OK) {
        sh->deadline_ns =
            demo_now_ns() + (uint64_t)env->cfg->seconds * NS_PER_S;
        set_phase(sh, DEMO_PHASE_RUN);
        alarm(env->cfg->seconds + WATCHDOG_GRACE_S);
    } else {
        set_phase(sh, DEMO_PHASE_ABORT);
    }
    reap_all(sh, kids, started);
    alarm(0);
    if (st == CLI_EXIT_OK && interrupted) {
        fprintf(stderr, CLI_PROGRAM ": demo: interrupted\n");
        st = CLI_EXIT_ERROR;
    }
    return st;
}
