#!/usr/bin/env bash
# Benchmark: `cargo xtask backup prod` (export, count, hash and verify)
# against raw `wrangler d1 export --remote` of the same database, both
# through the real wrangler against the loopback server
# (crates/d1-loopback), side by side in one run.
#
#   [XTASK=path] scripts/bench/remote-backup.sh DUMP [RUNS]
#
# DUMP is a dump in wrangler's shape, such as F155 from the project's shared
# folder (`python3 ../shared/bench/gen_f155.py f155.sql`). Its `audit_log`
# table, which is not qbtime's, is renamed in a copy (backup's verify would
# hold it to qbtime's audit chain). The copy is loaded with the sqlite3
# shell into a file the loopback serves as qbtime_db_prod; then the two
# commands alternate RUNS times (default 3). It prints each run, then the
# medians: wall time, the ratio xtask/wrangler, where the backup's time
# goes (its wrangler export, its verify, and the rest: wrangler's schema
# query and Time Travel bookmark, counting and hashing), and peak memory (GNU time's
# maximum resident size: the largest process of the command, which for the
# xtask is wrangler's node while it downloads).
set -euo pipefail
dump="$(realpath "${1:?usage: remote-backup.sh DUMP [RUNS]}")"
runs="${2:-3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$root/node_modules/.bin:$PATH"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"

command -v sqlite3 >/dev/null || { echo "this benchmark needs the sqlite3 shell"; exit 2; }
[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
wrangler="$root/node_modules/.bin/wrangler"
(cd "$root" && cargo build -q -p xtask -p d1-loopback)
# XTASK=path compares another build of the xtask (say, one from before a change).
xtask="${XTASK:-$root/target/debug/xtask}"

account=0123456789abcdef0123456789abcdef
token=loopback-bench-token-0123456789
uuid=$(sed -n '/env.production.d1_databases/,/^$/s/^database_id = "\(.*\)"/\1/p' "$root/wrangler.toml")
mkdir -p "$work/p" "$work/home"
cp "$root/wrangler.toml" "$root/.gitignore" "$work/p/"
git -C "$work/p" init -q
(echo 'BEGIN;'; sed 's/audit_log/audit_trail/g' "$dump"; echo 'COMMIT;') | sqlite3 "$work/prod.sqlite"
echo "database: $(stat -c %s "$work/prod.sqlite") bytes, loaded from $(basename "$dump")"

"$root/target/debug/d1-loopback" --account "$account" --token "$token" \
    --db "qbtime_db_prod=$uuid=$work/prod.sqlite" > "$work/url" &
server=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
export CLOUDFLARE_API_BASE_URL="$(head -1 "$work/url")" CLOUDFLARE_API_TOKEN="$token" \
    CLOUDFLARE_ACCOUNT_ID="$account" HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config"
cd "$work/p"

measure() { # LOG CMD... -> $secs $mb
    local log="$1"; shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$log.out" 2>&1 || { cat "$log.out"; exit 1; }
    read -r secs kb < "$work/time"
    mb=$((kb / 1024))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
printf '%-4s %-30s %9s %12s %9s %9s\n' run command seconds "peak MB" export verify
for i in $(seq "$runs"); do
    measure "$work/w" "$wrangler" d1 export qbtime_db_prod --env production --remote \
        --output "$work/raw.sql" -y
    echo "$secs" >> "$work/w.s"; echo "$mb" >> "$work/w.m"
    printf '%-4s %-30s %9s %12s\n' "$i" "wrangler d1 export --remote" "$secs" "$mb"
    rm -rf backups
    measure "$work/x" "$xtask" -v --config wrangler.toml backup prod
    export_s=$(sed -n 's/.*wrangler: export .* (\([0-9.]*\) s).*/\1/p' "$work/x.out" | tail -1)
    verify_s=$(sed -n 's/^Result: GOOD (\([0-9.]*\) s).*/\1/p' "$work/x.out" | tail -1)
    echo "$secs" >> "$work/x.s"; echo "$mb" >> "$work/x.m"
    echo "$export_s" >> "$work/x.e"; echo "$verify_s" >> "$work/x.v"
    printf '%-4s %-30s %9s %12s %9s %9s\n' "$i" "cargo xtask backup prod" "$secs" "$mb" "$export_s" "$verify_s"
    grep '^  seconds:' "$work/x.out" | sed 's/^  seconds:/     verify phases:/' || true
    cmp -s backups/backup-prod-*.sql "$work/raw.sql" || { echo "the two exports differ"; exit 1; }
    rm -f "$work/raw.sql"
done
w=$(median < "$work/w.s"); x=$(median < "$work/x.s")
echo "medians of $runs, the two files byte-identical in every run:"
printf '  wrangler d1 export --remote  %7.2f s  peak %5d MB\n' "$w" "$(median < "$work/w.m")"
printf '  cargo xtask backup prod      %7.2f s  peak %5d MB\n' "$x" "$(median < "$work/x.m")"
printf '  ratio, whole backup / wrangler export:   %.2fx\n' "$(echo "$x / $w" | bc -l)"
e=$(median < "$work/x.e"); v=$(median < "$work/x.v")
printf '  the backup: its export %.2f s, its verify %.2f s, the rest %.2f s\n' "$e" "$v" "$(echo "$x - $e - $v" | bc -l)"
