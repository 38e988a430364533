#include "common.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned counter;

const char *tc_name(const char *prefix) {
    static __thread char buf[128];
    snprintf(buf, sizeof buf, "test-%s-%d-%u", prefix, (int)getpid(),
             counter++);
    return buf;
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
    m.roles[3] = tc_mix(h + 4);
    m.joined_at = (int64_t)(h >> 1);
    m.worker = (uint32_t)(h % 16);
    m.flags = GT_ONLINE | ((uint32_t)(h >> 40) & GT_FLAGS_HOST);
    return m;
}
