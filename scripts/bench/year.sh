#!/usr/bin/env bash
# Benchmark: a year of use. What the everyday commands cost an operator
# when backups/ holds about a thousand backups and migrations/ 204 files.
#
#   scripts/bench/year.sh [DAYS]
#
# Builds, in a scratch project: 200 generated migrations applied to the
# local D1 (timed: `migrate local`, one wrangler run), then three real
# backups of it (plain, zstd, zstd+age) taken by `backup local`, copied
# under the names and times a year of use leaves (DAYS, default 365:
# nightly prod and staging, pre-migration and with-backup ones, local
# ones; a few bad or unverified), each manifest edited as the tool writes
# it (gen-year.py). Then each command's wall time, peak memory (VmHWM),
# lines printed, and how many times it read one manifest (strace, when
# installed: every extra read of the directory parses all of them again).
set -euo pipefail
days="${1:-365}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$root/node_modules/.bin:$PATH"
. "$root/scripts/bench/peak.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
[ -n "${BENCH_KEEP:-}" ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"
command -v python3 >/dev/null || { echo "this benchmark needs python3" >&2; exit 2; }
[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"
p="$work/p"
mkdir -p "$p"
cp "$root/wrangler.toml" "$root/.gitignore" "$root/backups.toml" "$p/"
cp -r "$root/migrations" "$p/"
x() { "$xtask" --config "$p/wrangler.toml" "$@"; }
git -C "$p" init -q
(cd "$p" && wrangler d1 migrations apply qbtime_db_local --local >/dev/null 2>&1)
for i in $(seq 5 204); do
    case $((i % 3)) in
        0) sql="CREATE TABLE feature_$i (id INTEGER PRIMARY KEY, note TEXT);" ;;
        1) sql="ALTER TABLE customers ADD COLUMN extra_$i TEXT;" ;;
        2) sql="CREATE INDEX idx_customers_$i ON customers(company_id, id);" ;;
    esac
    printf -- '-- migration %s\n%s\n' "$i" "$sql" >"$p/migrations/$(printf %04d "$i")_change_$i.sql"
done
printf '%-44s %8s %10s %7s %6s\n' "command" "seconds" "peak" "lines" "reads"
peak_run "$work/m.log" "$xtask" --config "$p/wrangler.toml" migrate local --yes --no-backup --reason bench
printf '%-44s %8.2f %7d MB %7d %6s\n' "migrate local (200 pending)" "$seconds" "$peak_mb" "$(wc -l <"$work/m.log")" "-"
rm -rf "$p/backups"
key="$work/key.txt"
recipient=$(x keygen --out "$key" 2>&1 | grep -o 'age1[a-z0-9]*' | head -1)
cp "$p/backups.toml" "$work/settings"
tpl="$work/tpl"
mkdir -p "$tpl"
# Three backups in one directory, so that each has a name of its own.
x backup local >/dev/null 2>&1
printf '\n[local]\ncompress = true\n' >>"$p/backups.toml"
x backup local >/dev/null 2>&1
cp "$work/settings" "$p/backups.toml"
printf '\n[local.encryption]\nrecipients = ["%s"]\n' "$recipient" >>"$p/backups.toml"
x backup local >/dev/null 2>&1
cp "$work/settings" "$p/backups.toml"
mv "$p"/backups/backup-local-* "$tpl/"
python3 "$root/scripts/bench/gen-year.py" "$tpl" "$p/backups" "$days" >"$work/count"
echo "backups: $(cat "$work/count"), $(du -sh "$p/backups" | cut -f1)"
run() {
    local what="$1"
    shift
    local reads="-"
    peak_run "$work/o.log" "$xtask" --config "$p/wrangler.toml" "$@" || true
    local secs=$seconds mb=$peak_mb
    if command -v strace >/dev/null; then
        strace -f -e trace=openat -o "$work/st" "$xtask" --config "$p/wrangler.toml" "$@" >/dev/null 2>&1 || true
        reads=$(grep -c "$(cat "$work/probe")" "$work/st" || true)
    fi
    printf '%-44s %8.2f %7d MB %7d %6s\n' "$what" "$secs" "$mb" "$(wc -l <"$work/o.log")" "$reads"
}
# One manifest whose reads are counted: an old staging one, never chosen.
for f in "$p"/backups/backup-staging-*.manifest.json; do basename "$f" >"$work/probe"; break; done
run "list" list
run "list --json" list --json
run "status" status
run "verify latest:prod" verify latest:prod --identity "$key"
run "restore latest --to local --dry-run" restore latest --to local --replace --dry-run
run "migrate --check (204 applied)" migrate --check
run "prune --dry-run" prune --dry-run
run "backup local" backup local
run "restore latest --to local --replace" restore latest --to local --replace --yes
run "prune --yes" prune --yes
