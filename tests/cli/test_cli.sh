#!/bin/sh
# test_cli.sh - the guildtab tool end to end: a short demo run, then every
# inspection command, snapshot and restore on the table it kept, and the
# exit codes of bad input.
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
"$gt" dump $name --dir "$dir" --format csv >"$out"
check "dump of every guild" 0 $?
[ "$(grep -c '^1,' "$out")" -eq 20000 ] ||
    { echo "FAIL: dump of every guild: not 20000 rows of guild 1" >&2; fail=1; }
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

"$gt" guilds $name --dir "$dir" >"$out"; check "guilds" 0 $?
contains "guilds" "$out" '^ *1 *20000 *20000 '
"$gt" guilds $name --dir "$dir" --top 1 --json >"$out"; check "guilds --json" 0 $?
contains "guilds --json" "$out" '"guild_id": 1, "members": 20000'
"$gt" guilds $name --dir "$dir" --top 0 >/dev/null 2>&1
check "guilds --top 0" 2 $?

# a member the dump printed, read back with get
uid=$("$gt" dump $name --guild 1 --dir "$dir" --format csv --limit 1 |
    tail -n 1 | cut -d, -f2)
"$gt" get $name 1 "$uid" --dir "$dir" >"$out"; check "get" 0 $?
contains "get" "$out" "^user_id *$uid\$"
"$gt" get $name 1 "$uid" --dir "$dir" --json >"$out"; check "get --json" 0 $?
contains "get --json" "$out" "\"user_id\": $uid,"
"$gt" get $name 1 0 --dir "$dir" >"$out" 2>&1; check "get missing member" 1 $?
contains "get missing member" "$out" "no such table, guild or member"
"$gt" get $name 1 --dir "$dir" >/dev/null 2>&1; check "get without U" 2 $?
"$gt" get $name x 1 --dir "$dir" >/dev/null 2>&1; check "get bad G" 2 $?

# stats: the demo's load is counted exactly; --watch reports rates
"$gt" stats $name --dir "$dir" >"$out"; check "stats" 0 $?
contains "stats" "$out" '^inserts  *20000$'
"$gt" stats $name --dir "$dir" --json >"$out"; check "stats --json" 0 $?
contains "stats --json" "$out" '"inserts": 20000,'
"$gt" stats $name --dir "$dir" --watch --interval 50 --count 2 --json >"$out"
check "stats --watch" 0 $?
[ "$(grep -c '"per_sec"' "$out")" -eq 2 ] ||
    { echo "FAIL: stats --watch --count 2: not 2 readings" >&2; fail=1; }
"$gt" stats $name --dir "$dir" --count 2 >/dev/null 2>&1
check "stats --count without --watch" 2 $?
"$gt" stats nosuchtable --dir "$dir" >/dev/null 2>&1
check "stats of a missing table" 1 $?

# readers: a dead process's slot is listed as dead until reaped
"$gt" readers $name --dir "$dir" >"$out"; check "readers" 0 $?
contains "readers" "$out" "SLOT *PID"
"$gt" readers $name --dir "$dir" --reap --json >"$out"
check "readers --reap --json" 0 $?
contains "readers --reap --json" "$out" '"reaped": 0, "slots": \[\]'

# snapshot, restore under another name, compare dumps; one guild moved
snap=$dir/snap.gts
"$gt" snapshot $name "$snap" --dir "$dir" >"$out"; check "snapshot" 0 $?
contains "snapshot" "$out" "20000 members"
"$gt" restore "$snap" copy --dir "$dir" --json >"$out"; check "restore" 0 $?
contains "restore" "$out" '"records": 20000'
"$gt" dump $name --guild 1 --dir "$dir" --format csv | sort >"$dir/a"
"$gt" dump copy --guild 1 --dir "$dir" --format csv | sort >"$dir/b"
cmp -s "$dir/a" "$dir/b" || { echo "FAIL: restored dump differs" >&2; fail=1; }
"$gt" restore "$snap" copy --dir "$dir" >/dev/null 2>&1
check "restore over an existing table" 1 $?
"$gt" rm copy --dir "$dir"; check "rm" 0 $?
"$gt" info copy --dir "$dir" >/dev/null 2>&1; check "info after rm" 1 $?
"$gt" snapshot $name "$dir/g1.gts" --guild 1 --dir "$dir" >/dev/null
check "snapshot --guild" 0 $?
"$gt" restore "$snap" copy --dir "$dir" --max-members 100 >"$out" 2>&1
check "restore into too small a table" 1 $?
"$gt" restore "$snap" copy --guild 1 --dir "$dir" >"$out" 2>&1
check "restore --guild into a missing table" 1 $?
"$gt" restore "$snap" copy --dir "$dir" >/dev/null; check "restore again" 0 $?
"$gt" restore "$dir/g1.gts" copy --guild 1 --dir "$dir" >"$out" 2>&1
check "restore --guild over a guild it has" 1 $?
contains "restore --guild over a guild it has" "$out" "exists"
"$gt" restore "$dir/g1.gts" copy --guild 2 --dir "$dir" >"$out" 2>&1
check "restore --guild of a guild the file lacks" 1 $?
head -c 5000 "$snap" >"$dir/cut.gts"
"$gt" restore "$dir/cut.gts" cut --dir "$dir" >"$out" 2>&1
check "restore of a truncated file" 1 $?
"$gt" info cut --dir "$dir" >/dev/null 2>&1; check "nothing left by it" 1 $?
"$gt" snapshot $name >/dev/null 2>&1; check "snapshot without PATH" 2 $?
"$gt" snapshot $name "$snap" --max-members 5 >/dev/null 2>&1
check "snapshot --max-members" 2 $?
"$gt" snapshot nosuchtable "$snap" --dir "$dir" >/dev/null 2>&1
check "snapshot of a missing table" 1 $?
"$gt" rm nosuchtable --dir "$dir" >/dev/null 2>&1; check "rm missing" 1 $?
"$gt" rm >/dev/null 2>&1; check "rm without NAME" 2 $?
# progress bars: on a terminal only (script(1) gives one), after
# GUILDTAB_PROGRESS_DELAY_MS; never in redirected output
"$gt" snapshot $name "$snap" --dir "$dir" >"$out" 2>&1
if grep -q 'snapshot: \[' "$out"; then
    echo "FAIL: a progress bar without a terminal" >&2; fail=1
fi
if command -v script >/dev/null 2>&1; then
    for c in "snapshot $name $snap" "check $name" "restore $snap bar" \
        "dump $name --format csv"; do
        GUILDTAB_PROGRESS_DELAY_MS=0 script -qc \
            "'$gt' $c --dir '$dir' >/dev/null" /dev/null >"$out" 2>&1
        contains "progress bar of $c" "$out" '100% 20000/20000 members'
    done
    "$gt" rm bar --dir "$dir"
fi

for c in guilds get stats readers snapshot restore rm; do
    "$gt" $c --help >"$out"; check "$c --help" 0 $?
    contains "$c --help" "$out" "^usage: guildtab $c"
done

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
