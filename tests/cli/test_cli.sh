#!/bin/sh
# test_cli.sh - the guildtab tool end to end: a short demo run, then ls,
# info and dump on the table it kept, and the exit codes of bad input.
# usage: test_cli.sh PATH-TO-guildtab
set -u
gt=$1
dir=$(mktemp -d /dev/shm/gt-cli-XXXXXX)
name=cli
fail=0
trap 'rm -rf "$dir"' EXIT

check() { # check WHAT EXPECTED-STATUS ACTUAL-STATUS
    if [ "$2" != "$3" ]; then
        echo "FAIL: $1: exit $3, expected $2" >&2
        fail=1
    fi
}
contains() { # contains WHAT FILE PATTERN
    if ! grep -q -- "$3" "$2"; then
        echo "FAIL: $1: no '$3' in output:" >&2
        sed 's/^/    /' "$2" >&2
        fail=1
    fi
}
out=$dir/out

"$gt" --version >"$out"; check "--version" 0 $?
contains "--version" "$out" '^guildtab [0-9]*\.[0-9]*\.[0-9]*$'
"$gt" >/dev/null 2>&1; check "no command" 2 $?
"$gt" frobnicate >/dev/null 2>&1; check "unknown command" 2 $?

"$gt" demo --members 20000 --active-pct 10 --seconds 1 --readers 1 \
    --name $name --dir "$dir" --keep >"$out" 2>/dev/null
check "demo" 0 $?
contains "demo" "$out" 'result *PASS'

"$gt" ls --dir "$dir" >"$out"; check "ls" 0 $?
contains "ls" "$out" "$name"
"$gt" info $name --dir "$dir" >"$out"; check "info" 0 $?
contains "info" "$out" "20000"
"$gt" info $name --dir "$dir" --json >"$out"; check "info --json" 0 $?
contains "info --json" "$out" '"members": *20000'

"$gt" dump $name --guild 1 --dir "$dir" --format csv >"$out"
check "dump csv" 0 $?
lines=$(wc -l <"$out")
[ "$lines" -eq 20001 ] || { echo "FAIL: dump csv: $lines lines" >&2; fail=1; }
"$gt" dump $name --guild 1 --dir "$dir" --format json --limit 5 >"$out"
check "dump json" 0 $?
contains "dump json" "$out" '"user_id"'
"$gt" dump $name --guild 1 --dir "$dir" --limit 3 >"$out"
check "dump table" 0 $?
[ "$(wc -l <"$out")" -eq 4 ] || { echo "FAIL: dump table --limit 3" >&2; fail=1; }

"$gt" check $name --dir "$dir" >"$out"; check "check" 0 $?
contains "check" "$out" "consistent"
"$gt" check $name --dir "$dir" --json >"$out"; check "check --json" 0 $?
contains "check --json" "$out" '"consistent": true'

"$gt" info >/dev/null 2>&1; check "info without NAME" 2 $?
"$gt" check >/dev/null 2>&1; check "check without NAME" 2 $?
"$gt" dump $name --guild abc --dir "$dir" >/dev/null 2>&1
check "dump --guild abc" 2 $?
"$gt" dump $name --guild 1 --format xml --dir "$dir" >/dev/null 2>&1
check "dump --format xml" 2 $?
"$gt" demo --members -5 >/dev/null 2>&1; check "demo --members -5" 2 $?
"$gt" info nosuchtable --dir "$dir" >/dev/null 2>&1; check "missing table" 1 $?
"$gt" dump $name --guild 999 --dir "$dir" >"$out" 2>&1
check "missing guild" 1 $?
contains "missing guild" "$out" "no such table, guild or member"
exit $fail
