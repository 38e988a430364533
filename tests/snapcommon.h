/* snapcommon.h - helpers of the snapshot tests: random tables, exact
 * comparison, files, and forgeries of snapshot files. */
#ifndef GT_TEST_SNAPCOMMON_H
#define GT_TEST_SNAPCOMMON_H

#include <guildtab.h>
#include <stdint.h>

/* Add members to `guilds` guilds (ids spread over the 64-bit range) of
 * random sizes below max, with random flags, roles and payloads; returns
 * the table's member count. */
uint64_t sc_fill(gt_table *t, uint64_t seed, int guilds, uint64_t max);
/* Change every guild: flags, sessions, deletions, insertions; and delete
 * one guild. */
void sc_churn(gt_table *t, uint64_t seed);
/* a and b hold the same guilds with the same members and payloads. */
void sc_assert_equal(gt_table *a, gt_table *b);
void sc_assert_guild_equal(gt_table *a, gt_table *b, uint64_t guild);
uint64_t sc_some_guild(gt_table *t);
uint64_t sc_largest_guild(gt_table *t);

int sc_count_files(const char *dir);
int sc_count_prefix(const char *dir, const char *prefix);
void sc_copy(const char *from, const char *to);
void sc_rmdir(const char *dir);

/* Forgeries of the snapshot at path, made through LMDB (so the file stays
 * sound LMDB, and only the snapshot's own checks can tell). "Resealed"
 * ones recompute every checksum and digest after the change. */
enum {
    SC_FORGE_NONE,          /* resealed without change: must restore */
    SC_FORGE_FLIP_VALUE,    /* a byte of a member changed */
    SC_FORGE_MOVE,          /* a member's record under another's key */
    SC_FORGE_DROP_MEMBER,
    SC_FORGE_DROP_GUILD,
    SC_FORGE_DROP_MANIFEST,
    SC_FORGE_STRAY_MEMBER,  /* a sound record of a guild not listed */
    SC_FORGE_EXTRA_MEMBER,  /* a sound record added to a listed guild */
    SC_FORGE_EDIT_MEMBER,   /* a member changed and its checksum redone */
    SC_FORGE_VERSION,       /* another format version */
    SC_FORGE_SEALED_FLAGS,  /* reserved flag bits, resealed */
    SC_FORGE_SEALED_COUNT,  /* a guild's online count off by one, resealed */
    SC_FORGE_SEALED_MAX,    /* max_members below the members, resealed */
    SC_FORGE_SEALED_PAYLOAD, /* the manifest's payload size changed */
    SC_FORGE_SEALED_GUILD_ID, /* a guild record under another id, resealed */
    SC_FORGERIES
};
void sc_forge(const char *path, int kind);
const char *sc_forgery_name(int kind);

#endif
