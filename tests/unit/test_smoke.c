#include <criterion/criterion.h>
#include "common.h"

Test(smoke, insert_lookup_delete) {
    const char *name = tc_name("smoke");
    gt_table *t = tc_open(name, 10000, 16, 16);
    for (uint64_t u = 1; u <= 1000; u++) {
        gt_member m = tc_member(u, 7);
        char pay[16];
        memset(pay, (int)u, sizeof pay);
        cr_assert_eq(gt_insert(t, 42, &m, pay), 0);
    }
    for (uint64_t u = 1; u <= 1000; u++) {
        gt_member m, want = tc_member(u, 7);
        char pay[16];
        int r = gt_lookup(t, 42, u, &m, pay);
        cr_assert_eq(r, 0, "lookup %lu: %s", (unsigned long)u, gt_strerror(r));
        cr_assert(memcmp(&m, &want, sizeof m) == 0);
        cr_assert_eq(pay[5], (char)u);
    }
    cr_assert_eq(gt_lookup(t, 42, 5000, NULL, NULL), GT_ENOENT);
    for (uint64_t u = 1; u <= 1000; u += 2)
        cr_assert_eq(gt_delete(t, 42, u), 0);
    for (uint64_t u = 1; u <= 1000; u++)
        cr_assert_eq(gt_contains(t, 42, u), (int)(u % 2 == 0));
    tc_drop(t, name);
}
