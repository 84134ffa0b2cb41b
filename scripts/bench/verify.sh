#!/usr/bin/env bash
# Benchmark: `cargo xtask verify` against the sqlite3 shell.
#
#   scripts/bench/verify.sh [ROWS]
#
# Builds a real backup with a manifest: a deterministic dump of ROWS rows
# (default 800000, about 155 MB) over qbtime's schema, with a valid audit
# chain, is restored into a fresh local D1 and backed up with
# `cargo xtask backup local` (which verifies it once itself). Then, on that
# backup file, in one run:
#   - the yardstick: the sqlite3 shell loading it into a file database inside
#     one transaction, then PRAGMA integrity_check on the result;
#   - `cargo xtask verify`: wall time and peak memory (VmHWM).
set -euo pipefail
rows="${1:-800000}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
# The pinned Node (npm package `node`) runs wrangler and the scripts.
export PATH="$root/node_modules/.bin:$PATH"
. "$root/scripts/bench/peak.sh"
. "$root/scripts/bench/generated-d1.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
[ -n "${BENCH_KEEP:-}" ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"

command -v sqlite3 >/dev/null || { echo "this benchmark needs the sqlite3 shell" >&2; exit 2; }
[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"
now() { date +%s.%N; }

generated_d1 "$rows"
start=$(now)
x backup local >"$work/backup.log" 2>&1 || { cat "$work/backup.log"; exit 1; }
end=$(now)
backup=$(ls "$work"/p/backups/backup-local-*.sql)
echo "backup: $(stat -c %s "$backup") bytes, $rows rows"
printf '%-52s %9s %12s\n' "what" "seconds" "peak memory"
printf '%-52s %9.2f %12s\n' "cargo xtask backup local (export + verify)" "$(echo "$end - $start" | bc)" "-"

shell_load "$backup" "$work/shell.db"
load=$seconds
mid=$(now)
sqlite3 "$work/shell.db" 'PRAGMA integrity_check' >/dev/null
end=$(now)
printf '%-52s %9.2f %12s\n' "sqlite3 shell: load in one transaction" "$load" "-"
printf '%-52s %9.2f %12s\n' "sqlite3 shell: PRAGMA integrity_check" "$(echo "$end - $mid" | bc)" "-"

peak_run "$work/verify.log" "$xtask" --config "$work/p/wrangler.toml" verify "$backup" --no-record
secs=$seconds
printf '%-52s %9.2f %9d MB\n' "cargo xtask verify (all checks)" "$secs" "$peak_mb"
printf '%-52s %9.2f\n' "  ratio to the shell's load" "$(echo "$secs / $load" | bc -l)"
sed 's/^/    /' "$work/verify.log"
