#!/usr/bin/env bash
# Benchmark: `cargo xtask backup local` against raw `wrangler d1 export --local`
# on the same local D1 database, measured in the same run.
#
#   scripts/bench/backup-vs-wrangler.sh [ROWS] [RUNS]
#
# It builds a throwaway project (this repository's wrangler.toml and
# migrations/ in a temporary git repository), applies the migrations, fills
# `customers` and `audit_log` with ROWS rows each (default 100000) and
# `notifications` with ROWS/2, then alternates the two commands RUNS times
# (default 3), printing wall time and peak memory (GNU time) of each run.
set -euo pipefail
rows="${1:-100000}"
runs="${2:-3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
# The pinned Node (npm package `node`) runs wrangler and the scripts.
export PATH="$root/node_modules/.bin:$PATH"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_LOG_PATH="$work/logs"

[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
wrangler="$root/node_modules/.bin/wrangler"
cp "$root/wrangler.toml" "$root/.gitignore" "$work/"
cp -r "$root/migrations" "$work/"
git -C "$work" init -q
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"

cd "$work"
"$wrangler" d1 migrations apply qbtime_db_local --local >/dev/null 2>&1
cat > seed.sql <<SQL
INSERT INTO companies (name, qbt_company_id) VALUES ('Acme', 'qbt-1'), ('Bob''s', 'qbt-2');
INSERT INTO accounts (email, display_name, password_hash) VALUES ('a@example.com', 'A', 'h');
INSERT INTO customers (company_id, qbt_customer_id, name, email)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
  SELECT 1 + (i % 2), 'jc-' || i, 'Customer ' || i || '; "quoted" ''name''', 'c' || i || '@example.com' FROM n;
INSERT INTO audit_log (occurred_at, actor_account_id, company_id, action, target_type, target_id, details_json, prev_hash, hash)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
  SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 1, 1, 'report.run', 'report_config', i, '{"i":' || i || '}',
         printf('%064d', i - 1), printf('%064d', i) FROM n;
INSERT INTO notifications (account_id, company_id, kind, title, body)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows / 2)
  SELECT 1, 1, 'report_ready', 'Report ' || i, 'line one' || char(10) || 'line two' FROM n;
SQL
"$wrangler" d1 execute qbtime_db_local --local --file seed.sql >/dev/null 2>&1
"$xtask" --config "$work/wrangler.toml" backup local >/dev/null 2>&1   # warm-up
size=$(stat -c %s backups/backup-local-*.sql | head -1)
rm -rf backups
echo "database: customers=$rows audit_log=$rows notifications=$((rows / 2)); export is $size bytes"
printf '%-34s %10s %12s\n' "command" "seconds" "peak RSS MB"
measure() {
    local label="$1"; shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>&1
    read -r secs kb < "$work/time"
    printf '%-34s %10s %12s\n' "$label" "$secs" "$((kb / 1024))"
}
for i in $(seq "$runs"); do
    measure "wrangler d1 export --local" "$wrangler" d1 export qbtime_db_local --local --output "$work/raw.sql" -y
    rm -f "$work/raw.sql"
    measure "cargo xtask backup local" "$xtask" --config "$work/wrangler.toml" backup local
    rm -rf backups
done
echo "(peak RSS is of the command's largest process: workerd or node for wrangler, the xtask itself for xtask)"
