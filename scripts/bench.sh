#!/bin/sh
# bench.sh - guildtab against its peers on one workload, in one run: install
# what is missing, build the drivers (tools/bench), run each peer at each
# size, then print one table with ratios and the goals, and write
# tools/bench/results/bench.json, bench.md (the tables in Markdown) and
# bench.png.
#
# Usage: scripts/bench.sh [--smoke]
#   --smoke   tiny sizes, to check that every driver builds, runs and agrees
#             (CI runs this; its figures mean nothing)
# Environment:
#   BENCH_SIZES      members per run (default "100000 1000000 10000000")
#   BENCH_PEERS      default "floor plain guildtab ck_ht lmdb ets redis"
#   BENCH_OPS        lookups per timed round (drivers have their defaults)
#   BENCH_REPEAT     runs of floor, plain and guildtab at sizes up to 1M,
#                    alternating, of which the report takes the median
#                    (default 3; 1 for --smoke): the goals compare these
#                    three, and a VM's speed drifts between runs
#   BENCH_EVICT_MB   MiB the C drivers read before each cold fanout
#                    (fanout_cold_ms) to empty the caches (default: twice
#                    the last-level cache the C library reports, at least
#                    64; 16 for --smoke)
#   BENCH_REDIS_PORT default 6399
#   BENCH_HUGE=1     (root) put guildtab's tables, plain's table and the
#                    floor's lines on a tmpfs mounted huge=advise for the
#                    run, so all three have 2 MiB pages where they ask for
#                    them; the other peers keep their own memory. Off by
#                    default: the machine's own /dev/shm is the benchmark.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
gt_ensure_deps erlang-nox redis-server libck-dev gnuplot-nox python3

sizes=${BENCH_SIZES:-"100000 1000000 10000000"}
peers=${BENCH_PEERS:-"floor plain guildtab ck_ht lmdb ets redis"}
if [ "${1:-}" = "--smoke" ]; then
    sizes=20000
    export BENCH_OPS=${BENCH_OPS:-20000}
    export BENCH_EVICT_MB=${BENCH_EVICT_MB:-16}
    BENCH_REPEAT=${BENCH_REPEAT:-1}
elif [ $# -gt 0 ]; then
    echo "usage: scripts/bench.sh [--smoke]" >&2
    exit 2
fi
port=${BENCH_REDIS_PORT:-6399}
repeat=${BENCH_REPEAT:-3}
case $repeat in
'' | *[!0-9]* | 0)
    echo "bench: BENCH_REPEAT must be a positive integer, not '$repeat'" >&2
    exit 2
    ;;
esac

echo "== build (build-bench, -Dbench=true)" >&2
gt_build build-bench -Dbench=true -Dtests=false
bin=build-bench/tools/bench
out=tools/bench/results
mkdir -p "$out"
raw=$out/raw.jsonl
: >"$raw"

redis_pid=""
redis_stop() {
    if [ -n "$redis_pid" ]; then
        redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 ||
            kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=""
    fi
}
hugedir=""
cleanup() {
    redis_stop
    if [ -n "$hugedir" ]; then
        umount "$hugedir" 2>/dev/null || true
        rmdir "$hugedir" 2>/dev/null || true
        hugedir=""
    fi
}
trap cleanup EXIT INT TERM

if [ "${BENCH_HUGE:-0}" = 1 ]; then
    hugedir=$(mktemp -d /tmp/bench-huge-XXXXXX)
    if ! mount -t tmpfs -o huge=advise,size=50% tmpfs "$hugedir"; then
        rmdir "$hugedir"
        hugedir=""
        echo "bench: BENCH_HUGE=1 needs root and a kernel with tmpfs huge pages" >&2
        exit 2
    fi
    export BENCH_SHM_DIR="$hugedir"
    echo "== 2 MiB pages: guildtab, plain and the floor on $hugedir (huge=advise)" >&2
fi

# A fresh server per size, so that its memory figures start from empty.
redis_start() {
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --logfile '' --loglevel warning >/dev/null &
    redis_pid=$!
    i=0
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "bench: redis-server did not start on port $port" >&2
            exit 1
        fi
        sleep 0.1
    done
}

run_peer() { # PEER N
    case $1 in
    floor | plain | guildtab | ck_ht | lmdb | redis)
        exe=$bin/bench-$(echo "$1" | tr -d _) ;;
    ets) exe="escript tools/bench/ets.escript" ;;
    *)
        echo "bench: unknown peer $1" >&2
        exit 2
        ;;
    esac
    [ "$1" = redis ] && redis_start
    start=$(date +%s)
    echo "== $1, n=$2" >&2
    # shellcheck disable=SC2086
    BENCH_REDIS_PORT=$port $exe "$2" >>"$raw"
    echo "   $(($(date +%s) - start)) s" >&2
    [ "$1" = redis ] && redis_stop
    return 0
}

for n in $sizes; do
    r=1
    while [ "$r" -le "$repeat" ]; do
        for p in $peers; do
            if [ "$r" -eq 1 ]; then
                run_peer "$p" "$n"
            elif [ "$n" -le 1000000 ]; then
                case $p in floor | plain | guildtab) run_peer "$p" "$n" ;; esac
            fi
        done
        r=$((r + 1))
    done
done

BENCH_HUGE=${BENCH_HUGE:-0} python3 tools/bench/report.py "$raw" "$out"
