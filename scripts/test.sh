#!/bin/sh
# test.sh - install what is missing, build, and run every test suite twice:
# a plain optimised build, then an AddressSanitizer + UndefinedBehavior-
# Sanitizer build. Exits non-zero on the first failing suite.
#
# GT_STRESS_SECONDS (seconds per stress test) and GT_FAULT_KILLS (SIGKILLs
# in the random-kill test) scale the multi-process suites.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
gt_ensure_deps

echo "== plain build" >&2
gt_build build
GT_STRESS_SECONDS=${GT_STRESS_SECONDS:-20} GT_FAULT_KILLS=${GT_FAULT_KILLS:-300} \
    meson test -C build --print-errorlogs

echo "== ASan + UBSan build" >&2
gt_build build-san -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
GT_STRESS_SECONDS=${GT_STRESS_SECONDS_SAN:-8} GT_FAULT_KILLS=${GT_FAULT_KILLS_SAN:-100} \
    meson test -C build-san --print-errorlogs
echo "guildtab: all suites passed (plain and sanitizer builds)" >&2
