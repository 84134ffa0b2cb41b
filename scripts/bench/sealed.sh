#!/usr/bin/env bash
# Benchmark: what compression and encryption cost a backup, and its verify.
#
#   scripts/bench/sealed.sh [ROWS]
#
# A deterministic dump of ROWS rows (default 400000, about 78 MB) over
# qbtime's schema, with a valid audit chain, is restored into a fresh local
# D1. Then, in one run, `cargo xtask backup local` three ways (plain SQL,
# --compress, --encrypt-to a fresh age key), each of which exports and
# verifies, and `cargo xtask verify` of each file (the encrypted one with
# --identity). Prints wall time, the xtask's own peak memory (VmHWM) and the
# stored size.
set -euo pipefail
rows="${1:-400000}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
# The pinned Node (npm package `node`) runs wrangler and the scripts.
export PATH="$root/node_modules/.bin:$PATH"
. "$root/scripts/bench/peak.sh"
. "$root/scripts/bench/generated-d1.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
[ -n "${BENCH_KEEP:-}" ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"

[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
(cd "$root" && cargo build -q -p xtask)
xtask="$root/target/debug/xtask"

generated_d1 "$rows"
x keygen --out "$work/key.txt" >"$work/keygen.log"
recipient=$(grep -o 'age1[0-9a-z]*' "$work/keygen.log" | head -1)
echo "dump: $(stat -c %s "$work/dump.sql") bytes, $rows rows"

printf '%-46s %9s %12s %14s\n' "what" "seconds" "peak memory" "stored bytes"
for how in plain compress encrypt; do
    case $how in
        plain) flags=(); suffix=.sql ;;
        compress) flags=(--compress); suffix=.sql.zst ;;
        encrypt) flags=(--encrypt-to "$recipient"); suffix=.sql.zst.age ;;
    esac
    peak_run "$work/backup-$how.log" "$xtask" --config "$work/p/wrangler.toml" backup local "${flags[@]}"
    file=$(ls "$work"/p/backups/backup-local-*"$suffix" | tail -1)
    printf '%-46s %9.2f %9d MB %14d\n' "backup local, $how (export + verify)" "$seconds" "$peak_mb" "$(stat -c %s "$file")"
    ids=()
    [ "$how" = encrypt ] && ids=(--identity "$work/key.txt")
    peak_run "$work/verify-$how.log" "$xtask" --config "$work/p/wrangler.toml" verify "$file" --no-record "${ids[@]}"
    printf '%-46s %9.2f %9d MB\n' "verify, $how" "$seconds" "$peak_mb"
done
