/*
 * test_error.c - error codes, their messages and names, and the version.
 *
 * The expected messages and names are generated here from the public
 * GT_ERRNO_MAP, so a code added to the map is checked without editing this
 * file; the errno equalities and the version arithmetic are written out by
 * hand, since those are the contract.
 */
#include <criterion/criterion.h>

#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

struct code {
    int value;
    const char *name;
    const char *msg;
};

static const struct code codes[] = {
#define X(name, value, msg) {GT_##name, "GT_" #name, msg},
    GT_ERRNO_MAP(X)
#undef X
};
#define NCODES (sizeof codes / sizeof codes[0])

Test(error, map_is_complete) {
    /* the thirteen documented codes, each in the map exactly once */
    static const int documented[] = {
        GT_EINVAL, GT_ENOENT,   GT_EEXIST,    GT_ENOSPC,    GT_ENOMEM,
        GT_EACCES, GT_EBUSY,    GT_EROFS,     GT_ESTALE,    GT_EFULL,
        GT_ECORRUPT, GT_EINCOMPAT, GT_EMISMATCH,
    };
    cr_assert_eq(NCODES, sizeof documented / sizeof documented[0]);
    for (size_t i = 0; i < NCODES; i++) {
        int seen = 0;
        for (size_t j = 0; j < NCODES; j++)
            seen += codes[j].value == documented[i];
        cr_expect_eq(seen, 1, "code %d appears %d times", documented[i], seen);
    }
}

Test(error, codes_are_negative_errno_where_documented) {
    cr_expect_eq(GT_EINVAL, -EINVAL);
    cr_expect_eq(GT_ENOENT, -ENOENT);
    cr_expect_eq(GT_EEXIST, -EEXIST);
    cr_expect_eq(GT_ENOSPC, -ENOSPC);
    cr_expect_eq(GT_ENOMEM, -ENOMEM);
    cr_expect_eq(GT_EACCES, -EACCES);
    cr_expect_eq(GT_EBUSY, -EBUSY);
    cr_expect_eq(GT_EROFS, -EROFS);
    cr_expect_eq(GT_ESTALE, -ESTALE);
    for (size_t i = 0; i < NCODES; i++)
        cr_expect_lt(codes[i].value, 0, "%s is not negative", codes[i].name);
    /* the library's own codes collide with no errno a system call returns */
    static const int own[] = {GT_EFULL, GT_ECORRUPT, GT_EINCOMPAT,
                              GT_EMISMATCH};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        const char *n = strerrorname_np(-own[i]);
        cr_expect_null(n, "code %d is also errno %s", own[i], n);
    }
}

Test(error, strerror_every_code) {
    for (size_t i = 0; i < NCODES; i++) {
        const char *m = gt_strerror(codes[i].value);
        cr_assert_not_null(m, "%s", codes[i].name);
        cr_expect_str_eq(m, codes[i].msg, "%s", codes[i].name);
        cr_expect_gt(strlen(m), 0);
        for (size_t j = 0; j < i; j++)
            cr_expect_str_neq(m, gt_strerror(codes[j].value),
                              "%s and %s share a message", codes[i].name,
                              codes[j].name);
        /* distinct from what success and unknown codes say */
        cr_expect_str_neq(m, gt_strerror(0), "%s", codes[i].name);
        cr_expect_str_neq(m, gt_strerror(INT_MIN), "%s", codes[i].name);
    }
}

Test(error, errname_every_code) {
    for (size_t i = 0; i < NCODES; i++) {
        const char *n = gt_errname(codes[i].value);
        cr_assert_not_null(n);
        cr_expect_str_eq(n, codes[i].name);
    }
    cr_expect_str_eq(gt_errname(GT_EINVAL), "GT_EINVAL");
    cr_expect_str_eq(gt_errname(GT_ENOENT), "GT_ENOENT");
    cr_expect_str_eq(gt_errname(GT_EFULL), "GT_EFULL");
    cr_expect_str_eq(gt_errname(GT_ECORRUPT), "GT_ECORRUPT");
    cr_expect_str_eq(gt_errname(GT_EINCOMPAT), "GT_EINCOMPAT");
    cr_expect_str_eq(gt_errname(GT_EMISMATCH), "GT_EMISMATCH");
    cr_expect_str_eq(gt_errname(GT_EROFS), "GT_EROFS");
    /* -errno spelled through the library's codes gets the library name */
    cr_expect_str_eq(gt_errname(-EACCES), "GT_EACCES");
}

Test(error, zero) {
    const char *m = gt_strerror(0);
    cr_assert_not_null(m);
    cr_expect_gt(strlen(m), 0);
    const char *n = gt_errname(0);
    cr_assert_not_null(n);
    cr_expect_gt(strlen(n), 0);
    /* success is not mistaken for any error */
    for (size_t i = 0; i < NCODES; i++) {
        cr_expect_str_neq(n, codes[i].name);
        cr_expect_str_neq(m, codes[i].msg);
    }
}

Test(error, plain_errno_passes_through) {
    static const int errs[] = {EPIPE, EIO, EAGAIN, EPERM, EBADF, EMFILE,
                               ENAMETOOLONG, EFBIG, EOVERFLOW};
    static const char *names[] = {"EPIPE",  "EIO",          "EAGAIN",
                                  "EPERM",  "EBADF",        "EMFILE",
                                  "ENAMETOOLONG", "EFBIG",  "EOVERFLOW"};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "%s", strerror(errs[i]));
        const char *m = gt_strerror(-errs[i]);
        cr_assert_not_null(m);
        cr_expect_str_eq(m, want, "-%s", names[i]);
        const char *n = gt_errname(-errs[i]);
        cr_assert_not_null(n);
        cr_expect_str_eq(n, names[i]);
    }
}

Test(error, unknown_values) {
    static const int vals[] = {1,        5,          EPIPE,   4095,   4096,
                               100000,   INT_MAX,    -4095,   -4096,  -3000,
                               -3005,    -100000,    INT_MIN, INT_MIN + 1};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        const char *m = gt_strerror(vals[i]);
        cr_assert_not_null(m, "gt_strerror(%d)", vals[i]);
        cr_expect_gt(strlen(m), 0, "gt_strerror(%d)", vals[i]);
        const char *n = gt_errname(vals[i]);
        cr_assert_not_null(n, "gt_errname(%d)", vals[i]);
        /* positive values and values beyond any errno are "GT_E?" */
        if (vals[i] > 0 || vals[i] <= -4096)
            cr_expect_str_eq(n, "GT_E?", "gt_errname(%d)", vals[i]);
        for (size_t j = 0; j < NCODES; j++) {
            cr_expect_str_neq(n, codes[j].name, "gt_errname(%d)", vals[i]);
            cr_expect_str_neq(m, codes[j].msg, "gt_strerror(%d)", vals[i]);
        }
    }
    /* a negative value with no errno meaning has no errno name either */
    cr_expect_str_eq(gt_errname(-3000), "GT_E?");
    cr_expect_str_eq(gt_errname(-4095), "GT_E?");
}

Test(error, version) {
    unsigned want = ((unsigned)GT_VERSION_MAJOR << 16) |
                    ((unsigned)GT_VERSION_MINOR << 8) |
                    (unsigned)GT_VERSION_PATCH;
    cr_expect_eq(gt_version(), want, "gt_version 0x%x, want 0x%x",
                 gt_version(), want);
    char s[64];
    snprintf(s, sizeof s, "%d.%d.%d", GT_VERSION_MAJOR, GT_VERSION_MINOR,
             GT_VERSION_PATCH);
    cr_assert_not_null(gt_version_string());
    cr_expect_str_eq(gt_version_string(), s);
    /* the two agree */
    unsigned maj, min, pat;
    cr_assert_eq(sscanf(gt_version_string(), "%u.%u.%u", &maj, &min, &pat), 3);
    cr_expect_eq((maj << 16) | (min << 8) | pat, gt_version());
}
