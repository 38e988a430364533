#!/bin/sh
# run.sh - run a libFuzzer target for GT_FUZZ_SECONDS (default 30) from its
# seed corpus; new inputs go to a work directory in the build tree, so the
# committed corpus stays as it is. Crashes are left in the work directory.
# usage: run.sh TARGET SEED_DIR WORK_DIR [libFuzzer options...]
set -eu
target=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
seeds=$2 work=$3
shift 3
mkdir -p "$work"
cd "$work"
exec "$target" "$work" "$seeds" -max_total_time="${GT_FUZZ_SECONDS:-30}" \
    -timeout=10 -print_final_stats=1 "$@"
