#!/usr/bin/env bash
# Benchmark: `cargo xtask backup local` (which reads the local D1's SQLite
# file itself) against raw `wrangler d1 export --local` of the same database,
# side by side in one run.
#
#   scripts/bench/local-export.sh DUMP [RUNS]
#
# DUMP is a dump in wrangler's shape, such as F155 from the project's shared
# folder (`python3 ../shared/bench/gen_f155.py f155.sql`). Its `audit_log`
# table, which is not qbtime's, is renamed in a copy (backup's verify would
# hold it to qbtime's audit chain). The copy is loaded into a new local D1
# (with the sqlite3 shell when there is one, else with `cargo xtask
# restore`), then the two commands alternate RUNS times (default 3). It
# prints each run, then the medians: wall time, the ratio xtask/wrangler,
# the export step alone (the xtask's own "exported ... (N s)" line; the rest
# of a backup is the count, hash and verify every backup gets) and peak
# memory (GNU time's maximum resident size: the xtask's own process; for
# wrangler, its largest process, workerd).
set -euo pipefail
dump="$(realpath "${1:?usage: local-export.sh DUMP [RUNS]}")"
runs="${2:-3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$root/node_modules/.bin:$PATH"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"

[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
wrangler="$root/node_modules/.bin/wrangler"
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"

mkdir -p "$work/p"
cp "$root/wrangler.toml" "$root/.gitignore" "$work/p/"
git -C "$work/p" init -q
cd "$work/p"
sed 's/audit_log/audit_trail/g' "$dump" > "$work/dump.sql"
"$wrangler" d1 execute qbtime_db_local --local --command "SELECT 1" >/dev/null 2>&1
db=$(ls .wrangler/state/v3/d1/miniflare-D1DatabaseObject/*.sqlite | grep -v metadata)
if command -v sqlite3 >/dev/null; then
    (echo 'BEGIN;'; cat "$work/dump.sql"; echo 'COMMIT;') | sqlite3 "$db"
else
    "$xtask" -q --config wrangler.toml restore "$work/dump.sql" --to local --no-manifest --yes
fi
rm "$work/dump.sql"
echo "database: $(stat -c %s "$db") bytes, loaded from $(basename "$dump")"

measure() { # LOG CMD... -> $secs $mb
    local log="$1"; shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$log.out" 2>&1 || { cat "$log.out"; exit 1; }
    read -r secs kb < "$work/time"
    mb=$((kb / 1024))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
printf '%-4s %-30s %9s %13s %12s\n' run command seconds "export step" "peak MB"
for i in $(seq "$runs"); do
    measure "$work/w" "$wrangler" d1 export qbtime_db_local --local --output "$work/raw.sql" -y
    echo "$secs" >> "$work/w.s"; echo "$mb" >> "$work/w.m"
    printf '%-4s %-30s %9s %13s %12s\n' "$i" "wrangler d1 export --local" "$secs" "$secs" "$mb"
    rm -rf backups
    measure "$work/x" "$xtask" --config wrangler.toml backup local
    step=$(sed -n 's/.*exported .* without wrangler (\([0-9.]*\) s).*/\1/p' "$work/x.out")
    echo "$secs" >> "$work/x.s"; echo "$mb" >> "$work/x.m"; echo "$step" >> "$work/x.e"
    printf '%-4s %-30s %9s %13s %12s\n' "$i" "cargo xtask backup local" "$secs" "$step" "$mb"
    cmp -s backups/backup-local-*.sql "$work/raw.sql" || { echo "the two exports differ"; exit 1; }
    rm -f "$work/raw.sql"
done
w=$(median < "$work/w.s"); x=$(median < "$work/x.s"); e=$(median < "$work/x.e")
echo "medians of $runs, the two files byte-identical in every run:"
printf '  wrangler d1 export --local   %7.2f s  peak %5d MB (workerd)\n' "$w" "$(median < "$work/w.m")"
printf '  cargo xtask backup local     %7.2f s  peak %5d MB (the xtask)\n' "$x" "$(median < "$work/x.m")"
printf '  ratio, whole backup / wrangler export:   %.2fx\n' "$(echo "$x / $w" | bc -l)"
printf '  ratio, export step alone / wrangler:     %.2fx (%.2f s)\n' "$(echo "$e / $w" | bc -l)" "$e"
