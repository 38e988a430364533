/*
 * error.c - error codes, their messages and names, and the version.
 *
 * One X-macro list in guildtab.h (GT_ERRNO_MAP) generates the enum, the
 * messages and the names, so the three cannot drift apart. Codes with an
 * errno meaning equal -errno; the asserts below keep that true.
 */
#include "internal.h"

#include <errno.h>

_Static_assert(GT_EINVAL == -EINVAL, "GT_EINVAL");
_Static_assert(GT_ENOENT == -ENOENT, "GT_ENOENT");
_Static_assert(GT_EEXIST == -EEXIST, "GT_EEXIST");
_Static_assert(GT_ENOSPC == -ENOSPC, "GT_ENOSPC");
_Static_assert(GT_ENOMEM == -ENOMEM, "GT_ENOMEM");
_Static_assert(GT_EACCES == -EACCES, "GT_EACCES");
_Static_assert(GT_EBUSY == -EBUSY, "GT_EBUSY");
_Static_assert(GT_EROFS == -EROFS, "GT_EROFS");
_Static_assert(GT_ESTALE == -ESTALE, "GT_ESTALE");

GT_API const char *gt_strerror(int err) {
    switch (err) {
    case 0:
        return "success";
#define GT__ERR_MSG(name, value, msg)                                          \
    case (value):                                                              \
        return (msg);
        GT_ERRNO_MAP(GT__ERR_MSG)
#undef GT__ERR_MSG
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err); /* glibc: static strings for known codes */
    return "unknown error";
}

GT_API const char *gt_errname(int err) {
    switch (err) {
    case 0:
        return "OK";
#define GT__ERR_NAME(name, value, msg)                                         \
    case (value):                                                              \
        return "GT_" #name;
        GT_ERRNO_MAP(GT__ERR_NAME)
#undef GT__ERR_NAME
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *n = strerrorname_np(-err);
        if (n)
            return n;
    }
    return "GT_E?";
}

GT_API unsigned gt_version(void) {
    return (GT_VERSION_MAJOR << 16) | (GT_VERSION_MINOR << 8) |
           GT_VERSION_PATCH;
}

#define GT__STR2(x) #x
#define GT__STR(x) GT__STR2(x)
GT_API const char *gt_version_string(void) {
    return GT__STR(GT_VERSION_MAJOR) "." GT__STR(GT_VERSION_MINOR) "." GT__STR(
        GT_VERSION_PATCH);
}
