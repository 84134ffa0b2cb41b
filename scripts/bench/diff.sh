#!/usr/bin/env bash
# Benchmark: `cargo xtask diff` of two large dumps.
#
#   scripts/bench/diff.sh [ROWS]
#
# Writes two dumps in wrangler's format of one table of ROWS rows (default
# 400000, about 95 MB each) of about 200 bytes, the second with every
# 1000th row changed, and diffs them (no wrangler involved): wall time and
# peak memory (VmHWM) of the xtask, which exits 1 because they differ.
set -euo pipefail
rows="${1:-400000}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"

dump() { # FILE EVERY: every EVERYth row's body gets "-changed"
    awk -v rows="$rows" -v every="$2" 'BEGIN {
        print "PRAGMA defer_foreign_keys=TRUE;"
        print "CREATE TABLE big(id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
        filler = sprintf("%180s", ""); gsub(/ /, "x", filler)
        for (id = 1; id <= rows; id++) {
            salt = (every > 0 && id % every == 0) ? "-changed" : ""
            printf "INSERT INTO \"big\" (\"id\",\"body\") VALUES(%d,\x27%s%d%s\x27);\n", id, filler, id, salt
        }
    }' >"$1"
}
dump "$work/a.sql" 0
dump "$work/b.sql" 1000
echo "two dumps of $(stat -c %s "$work/a.sql") bytes, $rows rows each"

start=$(date +%s.%N)
"$xtask" --config "$root/wrangler.toml" diff "$work/a.sql" "$work/b.sql" >"$work/diff.log" 2>&1 &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.05
done
code=0; wait "$pid" || code=$?
end=$(date +%s.%N)
[ "$code" -le 1 ] || { cat "$work/diff.log"; exit 1; }
printf 'cargo xtask diff: %.1f s, peak memory %d MB, exit %d\n' "$(echo "$end - $start" | bc)" $((peak / 1024)) "$code"
grep -E '^  big:|^Result' "$work/diff.log"
