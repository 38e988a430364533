/*
 * hooks.c - named crash points, compiled only into the test library
 * (tests/meson.build builds it with GT_FAULT_HOOKS; the installed library
 * has none: GT_HOOK expands to nothing).
 *
 * GT_CRASH_AT="step:n" makes the process SIGKILL itself the n-th time
 * (counting from 1) it reaches the GT_HOOK named step; GT_CRASH_AT="step"
 * means the first time, and "step:n:stop" SIGSTOPs instead, so a test can
 * line processes up (stop a scanner where it waits, kill the writer it
 * waits for, resume it). The fault tests use it to die at every step of
 * every write, deterministically, instead of at random moments. The
 * variable is read at every hook, so a forked child may set it.
 */
#include "internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static char seen_env[96]; /* the setting the counter below belongs to */
static long reached;

void gt__hook(const char *step) {
    const char *e = getenv("GT_CRASH_AT");
    if (!e || !*e)
        return;
    if (strncmp(e, seen_env, sizeof seen_env) != 0) {
        snprintf(seen_env, sizeof seen_env, "%s", e);
        reached = 0;
    }
    size_t n = strcspn(e, ":");
    if (strlen(step) != n || strncmp(step, e, n) != 0)
        return;
    char *rest = (char *)e + n;
    long at = *rest == ':' ? strtol(rest + 1, &rest, 10) : 1;
    if (++reached == at)
        raise(strcmp(rest, ":stop") == 0 ? SIGSTOP : SIGKILL);
}
