#!/bin/sh
# test.sh - install what is missing, build, and run every test suite twice:
# a plain optimised build, then an AddressSanitizer + UndefinedBehavior-
# Sanitizer build; then the fuzz targets under libFuzzer (a clang build);
# then the benchmark at a tiny size (scripts/bench.sh --smoke: its figures
# mean nothing, but every driver must build, run and pass its checks).
# Exits non-zero on the first failing suite.
#
# GT_STRESS_SECONDS (seconds per stress test), GT_FAULT_KILLS (SIGKILLs in
# the random-kill test) and GT_FUZZ_SECONDS (per fuzz target) scale them.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
gt_ensure_deps clang libclang-rt-14-dev

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
echo "== libFuzzer (clang, ASan + UBSan)" >&2
CC=clang gt_build build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false
GT_FUZZ_SECONDS=${GT_FUZZ_SECONDS:-60} meson test -C build-fuzz --suite fuzz \
    --print-errorlogs
echo "== benchmark smoke (every peer builds, runs and sees the same data)" >&2
./scripts/bench.sh --smoke >/dev/null
echo "guildtab: all suites passed (plain, sanitizer and fuzz builds, bench smoke)" >&2
