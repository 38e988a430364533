#!/bin/sh
# demo.sh - the main job: install what is missing, build, and run
# `guildtab demo` (a 1,000,000-member guild, 10% active, readers, a presence
# writer and a fanout sender in separate processes). Extra arguments go to
# the demo, e.g. ./scripts/demo.sh --seconds 30
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
gt_ensure_deps
gt_build build
exec ./build/tools/guildtab/guildtab demo "$@"
