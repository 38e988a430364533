/*
 * output.c - error messages and the small formatting helpers of the tool.
 *
 * Writes to stdout are not checked one by one: stdio errors are sticky, so
 * cli_finish checks ferror(stdout) once, after the final flush, and turns a
 * failed write into exit status 1 instead of a silently truncated listing.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#define BINARY_UNIT 1024.0
#define FIRST_PRINTABLE 0x20u /* ' ' */
#define LAST_PRINTABLE 0x7eu  /* '~' */

static int report(const char *why, const char *fmt, va_list ap) {
    fputs(CLI_PROGRAM ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s\n", why);
    return CLI_EXIT_ERROR;
}

int cli_fail(int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int st = report(gt_strerror(err), fmt, ap);
    va_end(ap);
    return st;
}

int cli_fail_errno(int errnum, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int st = report(strerror(errnum), fmt, ap);
    va_end(ap);
    return st;
}

int cli_finish(int status) {
    if (fflush(stdout) != 0)
        return cli_fail_errno(errno, "write output");
    if (ferror(stdout))
        return cli_fail_errno(EIO, "write output");
    return status;
}

static bool printable(unsigned char c) {
    return c >= FIRST_PRINTABLE && c <= LAST_PRINTABLE;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (printable(*c))
            fputc(*c, f);
        else
            fprintf(f, "\\u%04x", *c);
    }
    fputc('"', f);
}

void cli_text(FILE *f, const char *s) {
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        fputc(printable(*c) ? *c : '?', f);
}

void cli_hex(FILE *f, const void *bytes, size_t n) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        fputc(digits[b[i] >> 4], f);
        fputc(digits[b[i] & 0xfu], f);
    }
}

const char *cli_human_bytes(uint64_t bytes, char buf[CLI_HUMAN_MAX]) {
    static const char *const units[] = {"B",   "KiB", "MiB", "GiB",
                                        "TiB", "PiB", "EiB"};
    const size_t nunits = sizeof units / sizeof units[0];
    double v = (double)bytes;
    size_t u = 0;
    while (v >= BINARY_UNIT && u + 1 < nunits) {
        v /= BINARY_UNIT;
        u++;
    }
    if (u == 0)
        snprintf(buf, CLI_HUMAN_MAX, "%" PRIu64 " B", bytes);
    else
        snprintf(buf, CLI_HUMAN_MAX, "%.1f %s", v, units[u]);
    return buf;
}

int cli_digits(uint64_t v) {
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}
