#!/usr/bin/env bash
# Benchmark: the loader against the sqlite3 shell (issue 14's restore and
# verify rows), measured side by side in one run.
#
#   scripts/bench/loader.sh [DUMP] [RUNS]
#
# DUMP defaults to F155, made by shared/bench/gen_f155.py (155 MB, 800,000
# rows in the shape of a wrangler export). Its audit_log is renamed in a
# copy, because verify judges an audit_log by the audit chain that
# backups.toml declares, and F155's is not qbtime's. RUNS (default 3)
# rounds each run, in turn:
#   - the yardstick: the sqlite3 shell loading the dump into a new file
#     database in one transaction;
#   - `cargo xtask verify DUMP --no-manifest --no-record`;
#   - `cargo xtask restore DUMP --to local --no-manifest --yes` into an
#     empty local D1 (a fresh copy of one wrangler created).
# Prints each median, its ratio to the shell's median, and the xtask's own
# peak memory (VmHWM of its process; restore starts wrangler for its
# checks, whose memory is not counted). With BASELINE=<an xtask binary>
# (built from an older commit), each round times that binary's verify and
# restore too.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${2:-3}"
# The pinned Node (npm package `node`) runs wrangler.
export PATH="$root/node_modules/.bin:$PATH"
. "$root/scripts/bench/peak.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-loader-XXXXXX")"
[ -n "${BENCH_KEEP:-}" ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"

command -v sqlite3 >/dev/null || { echo "this benchmark needs the sqlite3 shell" >&2; exit 2; }
[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"

dump="${1:-}"
if [ -z "$dump" ]; then
    echo "generating F155..."
    python3 "$root/../shared/bench/gen_f155.py" "$work/f155-raw.sql" >/dev/null
    dump="$work/f155-raw.sql"
fi
sed 's/audit_log/audit_events/g' "$dump" >"$work/dump.sql"
rm -f "$work/f155-raw.sql"
dump="$work/dump.sql"

# A project with an empty local D1, kept as it is for every restore.
mkdir -p "$work/p"
cp "$root/wrangler.toml" "$root/.gitignore" "$work/p/"
git -C "$work/p" init -q
"$root/node_modules/.bin/wrangler" d1 execute qbtime_db_local --local --command "SELECT 1" \
    --config "$work/p/wrangler.toml" >/dev/null 2>&1
cp -a "$work/p/.wrangler" "$work/empty-d1"

# One binary's verify and restore, appended to the arrays named by $1.
declare -A peak
measure() {
    local who="$1" bin="$2"
    peak_run "$work/$who-verify.log" "$bin" --config "$work/p/wrangler.toml" verify "$dump" --no-manifest --no-record
    grep -q "Result: GOOD" "$work/$who-verify.log" || { cat "$work/$who-verify.log"; exit 1; }
    eval "${who}_verify+=(\"$seconds\")"
    [ "$peak_mb" -gt "${peak[${who}_verify]:-0}" ] && peak[${who}_verify]=$peak_mb
    rm -rf "$work/p/.wrangler" "$work/p/backups"
    cp -a "$work/empty-d1" "$work/p/.wrangler"
    peak_run "$work/$who-restore.log" "$bin" --config "$work/p/wrangler.toml" restore "$dump" --to local --no-manifest --yes
    eval "${who}_restore+=(\"$seconds\")"
    [ "$peak_mb" -gt "${peak[${who}_restore]:-0}" ] && peak[${who}_restore]=$peak_mb
    return 0
}
shell=(); this_verify=(); this_restore=(); base_verify=(); base_restore=()
for _ in $(seq "$runs"); do
    shell_load "$dump" "$work/shell.db"
    shell+=("$seconds")
    measure this "$xtask"
    [ -n "${BASELINE:-}" ] && measure base "$BASELINE"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms=$(median "${shell[@]}")
row() {
    local label="$1" who="$2" m
    local -n times="${who}"
    m=$(median "${times[@]}")
    printf '%-62s %8.2f %6.2fx %7d MB   %s\n' "$label" "$m" "$(echo "$m / $ms" | bc -l)" "${peak[$who]}" "${times[*]}"
}
echo "dump: $(stat -c %s "$dump") bytes, $(grep -c '^INSERT' "$dump") rows; medians of $runs runs, side by side"
printf '%-62s %8s %7s %10s   %s\n' "operation" "seconds" "ratio" "xtask peak" "runs (s)"
printf '%-62s %8.2f %7s %10s   %s\n' "sqlite3 shell: load into a file database, one transaction" "$ms" "1.00" "-" "${shell[*]}"
row "restore DUMP --to local --no-manifest --yes (empty local D1)" this_restore
row "verify DUMP --no-manifest" this_verify
if [ -n "${BASELINE:-}" ]; then
    row "  BASELINE: restore" base_restore
    row "  BASELINE: verify" base_verify
fi
echo "verify's phases (last run): $(grep 'seconds:' "$work/this-verify.log" | sed 's/^ *seconds: //')"
