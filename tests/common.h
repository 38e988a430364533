/* common.h - helpers shared by the test suites. */
#ifndef GT_TEST_COMMON_H
#define GT_TEST_COMMON_H

#include <guildtab.h>
#include <stdint.h>

/* A table name unique to this process and call. */
const char *tc_name(const char *prefix);
/* Open a fresh table (created, EXCL) with the given sizes; asserts. */
gt_table *tc_open(const char *name, uint64_t max_members, uint32_t max_guilds,
                  uint32_t payload);
/* Close and unlink. */
void tc_drop(gt_table *t, const char *name);
/* A deterministic member for (seed, user). */
gt_member tc_member(uint64_t user, uint64_t seed);
uint64_t tc_mix(uint64_t x);

#endif
