#!/usr/bin/env bash
# Benchmark: what a remote backup's search for text that is not UTF-8
# costs, through the real wrangler against the loopback server.
#
#   scripts/bench/non-utf8.sh [ROWS] [RUNS]
#
# After its export, `cargo xtask backup <remote env>` reads the bytes (in
# hex) of every text value that is not all ASCII (d1_core::catalog::
# non_ascii_text_queries), through `wrangler d1 execute --remote`, to count
# those that are not UTF-8, but only in the tables whose rows the export
# wrote with U+FFFD (D1's export writes every such byte so). Before
# that, it read every table's, before the export, and its cost grew
# with the non-ASCII text; here the text is valid UTF-8, so it reads none
# and its row shows `-` (no query).
# This builds two databases of the same size from this repository's
# migrations: `customers` and `notifications` with ROWS rows each (default
# 100000; `audit_log` stays empty, as its chain would have to be valid),
# one with all-ASCII text, the other with every text value of every second
# row non-ASCII (valid UTF-8: 'é' where the other has 'ee', the same bytes),
# about half of them. Each is served by its own loopback server as
# qbtime_db_prod. RUNS times (default 3) it runs, on each: raw `wrangler d1
# export --remote` (the reference) and `cargo xtask backup prod`, and prints
# the medians, the step the search took in the backup (its wrangler
# command's time from `-v`), and the search's rows and bytes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
. "$root/scripts/bench/peak.sh"
# The pinned Node (npm package `node`) runs wrangler.
export PATH="$root/node_modules/.bin:$PATH"
rows="${1:-100000}" runs="${2:-3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-nonutf8-XXXXXX")"
servers=()
cleanup() {
    for s in "${servers[@]}"; do kill "$s" 2>/dev/null || true; done
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"

bench_tools
(cd "$root" && cargo build -q -p xtask -p d1-loopback)
xtask="${XTASK:-$root/target/debug/xtask}"

# A project whose local D1 holds the migrations: its SQLite file, empty of
# rows, is the start of both databases (copied by the shell: workerd leaves
# it in WAL mode, its tables in the -wal file).
mkdir -p "$work/p" "$work/home"
cp "$root/wrangler.toml" "$root/.gitignore" "$root/backups.toml" "$work/p/"
cp -r "$root/migrations" "$work/p/"
git -C "$work/p" init -q
cd "$work/p"
"$wrangler" d1 migrations apply qbtime_db_local --local >/dev/null 2>&1
empty=$(ls .wrangler/state/v3/d1/miniflare-D1DatabaseObject/*.sqlite | grep -v metadata)

seed() { # FILE AFFIX: every text value of every second row ends in AFFIX
    local odd="CASE WHEN i % 2 = 0 THEN '$2' ELSE 'ee' END"
    sqlite3 "$empty" ".backup '$1'"
    sqlite3 "$1" <<SQL
BEGIN;
INSERT INTO companies (name, qbt_company_id) VALUES ('Acme', 'qbt-1'), ('Bob''s', 'qbt-2');
INSERT INTO accounts (email, display_name, password_hash) VALUES ('a@example.com', 'A', 'h');
INSERT INTO customers (company_id, qbt_customer_id, name, email, synced_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
  SELECT 1 + (i % 2), 'jc-' || i || $odd, 'Customer ' || i || '; "quoted" ''name'' ' || $odd,
         'c' || i || $odd || '@example.com', '2026-11-01T00:00:00.000Z' || $odd FROM n;
INSERT INTO notifications (account_id, company_id, kind, title, body, created_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
  SELECT 1, 1, 'report_ready' || $odd, 'Report ' || i || ' ' || $odd,
         'line one ' || $odd || char(10) || 'line two', '2026-11-01T00:00:00.000Z' || $odd FROM n;
COMMIT;
SQL
}
seed "$work/ascii.sqlite" ee
seed "$work/mixed.sqlite" é
texts() { # FILE: text values, and those with a byte over 0x7f
    sqlite3 "$1" "SELECT sum(n), sum(m) FROM (
      SELECT 4 AS n, 4 * (hex(qbt_customer_id || name || email || synced_at) GLOB '*C3A9*') AS m FROM customers
      UNION ALL SELECT 4, 4 * (hex(kind || title || body || created_at) GLOB '*C3A9*') FROM notifications)" | tr '|' ' '
}
read -r all_a non_a <<<"$(texts "$work/ascii.sqlite")"
read -r all_m non_m <<<"$(texts "$work/mixed.sqlite")"

# One loopback server per database, each as qbtime_db_prod.
account=0123456789abcdef0123456789abcdef
token=loopback-bench-token-0123456789
uuid=$(sed -n '/env.production.d1_databases/,/^$/s/^database_id = "\(.*\)"/\1/p' wrangler.toml)
for db in ascii mixed; do
    "$root/target/debug/d1-loopback" --account "$account" --token "$token" \
        --db "qbtime_db_prod=$uuid=$work/$db.sqlite" >"$work/$db.url" &
    servers+=($!)
    for _ in $(seq 100); do [ -s "$work/$db.url" ] && break; sleep 0.1; done
done
export CLOUDFLARE_API_TOKEN="$token" CLOUDFLARE_ACCOUNT_ID="$account" \
    HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config"
rm -rf .wrangler

mkdir -p "$work/r"
run() { # DB NAME CMD...: CMD against DB's loopback, its figures in $work/r/NAME.*
    local db="$1" name="$2"; shift 2
    CLOUDFLARE_API_BASE_URL="$(head -1 "$work/$db.url")" peak_run "$work/$name.log" "$@"
    printf '%.2f\n' "$seconds" >>"$work/r/$name.s"
    echo "$peak_mb" >>"$work/r/$name.own"
    cut -d' ' -f1 /proc/loadavg >>"$work/r/$name.load"
}
echo "customers=$rows notifications=$rows; text values: ascii $all_a ($non_a non-ASCII), mixed $all_m ($non_m non-ASCII); $runs rounds"
for i in $(seq "$runs"); do
    echo "round $i, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for db in ascii mixed; do
        run "$db" "$db-wrangler" "$wrangler" d1 export qbtime_db_prod --env production --remote \
            --output "$work/raw.sql" -y
        rm -rf backups
        run "$db" "$db-backup" "$xtask" -v --config wrangler.toml backup prod
        # The search's own wrangler command, as -v times it.
        sed -n 's/.*wrangler: look for text that is not UTF-8.* (\([0-9.]*\) s).*/\1/p' \
            "$work/$db-backup.log" | tail -1 >>"$work/r/$db-search.s"
        grep -q "not UTF-8 not looked for" "$work/$db-backup.log" &&
            echo "  $db: $(grep -m1 'not UTF-8 not looked for' "$work/$db-backup.log")"
        cmp -s backups/backup-prod-*.sql "$work/raw.sql" || { echo "backup prod differs from wrangler's export"; exit 1; }
    done
done
size=$(stat -c %s "$work/raw.sql")

median() { sort -n "$1" | awk 'NF {a[++n]=$1} END {if (n) print a[int((n+1)/2)]; else print "-"}'; }
fmt='%-44s %8s %9s %6s  %s\n'
echo
echo "medians of $runs runs; seconds; the export of the mixed database is $size bytes"
printf "$fmt" "operation" "seconds" "own peak" "load" "runs"
row() { # LABEL NAME
    local peak=-
    [ -s "$work/r/$2.own" ] && peak=$(sort -n "$work/r/$2.own" | tail -1)
    printf "$fmt" "$1" "$(median "$work/r/$2.s")" "$peak" "$([ -s "$work/r/$2.load" ] && median "$work/r/$2.load" || echo -)" \
        "$(paste -sd' ' "$work/r/$2.s")"
}
row "wrangler d1 export --remote, ASCII" ascii-wrangler
row "backup prod, ASCII" ascii-backup
row "  its search for text not UTF-8" ascii-search
row "wrangler d1 export --remote, half non-ASCII" mixed-wrangler
row "backup prod, half non-ASCII" mixed-backup
row "  its search for text not UTF-8" mixed-search
