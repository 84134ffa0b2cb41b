#!/usr/bin/env bash
# Benchmark: restoring a large dump into local D1.
#
#   scripts/bench/restore-local.sh [ROWS] [SLICE]
#
# Generates a deterministic dump in D1's export format with ROWS rows
# (default 800000, about 155 MB) over qbtime's schema, then measures, in one
# run:
#   - the sqlite3 shell loading it into a file database in one transaction
#     (the yardstick; skipped if sqlite3 is not installed);
#   - `cargo xtask restore --to local` (the fast path) into an empty local D1,
#     wall time and the xtask's own peak memory (VmHWM);
#   - raw `wrangler d1 execute --local --file` on the first SLICE rows
#     (default 20000), extrapolated to ROWS.
set -euo pipefail
rows="${1:-800000}"
slice="${2:-20000}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
# The pinned Node (npm package `node`) runs wrangler and the scripts.
export PATH="$root/node_modules/.bin:$PATH"
. "$root/scripts/bench/peak.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"

[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
wrangler="$root/node_modules/.bin/wrangler"
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"

new_project() {
    mkdir -p "$1"
    cp "$root/wrangler.toml" "$root/.gitignore" "$1/"
    cp -r "$root/migrations" "$1/"
    git -C "$1" init -q
}

# The schema as D1 exports it: tables first, then indexes and triggers.
new_project "$work/schema"
"$xtask" --config "$work/schema/wrangler.toml" backup local --schema-only >/dev/null 2>&1
schema=$(ls "$work"/schema/backups/backup-local-*.sql)
first_late=$(grep -n -m1 -E '^CREATE (UNIQUE INDEX|INDEX|TRIGGER|VIEW)' "$schema" | cut -d: -f1)

echo "generating $rows rows..."
dump="$work/dump.sql"
node "$root/scripts/bench/gen-dump.mjs" "$schema" "$rows" "$dump"
size=$(stat -c %s "$dump")
echo "dump: $rows rows, $size bytes"
printf '%-46s %10s %14s\n' "what" "seconds" "peak memory"

if command -v sqlite3 >/dev/null; then
    shell_load "$dump" "$work/shell.db"
    printf '%-46s %10.2f %14s\n' "sqlite3 shell, one transaction" "$seconds" "-"
fi

new_project "$work/fast"
"$wrangler" d1 execute qbtime_db_local --local --command "SELECT 1" --config "$work/fast/wrangler.toml" >/dev/null 2>&1
peak_run "$work/fast.log" "$xtask" --config "$work/fast/wrangler.toml" restore "$dump" --to local --yes --no-manifest
printf '%-46s %10.2f %11d MB\n' "cargo xtask restore --to local (fast path)" "$seconds" "$peak_mb"
grep -E "row counts" "$work/fast.log" | sed 's/^/    /'

new_project "$work/raw"
{ head -n "$((first_late - 1 + slice))" "$dump"; tail -n "+$first_late" "$schema"; } > "$work/slice.sql"
start=$(date +%s.%N)
"$wrangler" d1 execute qbtime_db_local --local --file "$work/slice.sql" --config "$work/raw/wrangler.toml" -y >/dev/null 2>&1
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
printf '%-46s %10.2f %14s\n' "raw wrangler execute --file, $slice rows" "$secs" "-"
printf '%-46s %10.0f %14s\n' "  extrapolated to $rows rows" "$(echo "$secs * $rows / $slice" | bc -l)" "-"
