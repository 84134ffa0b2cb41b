#!/usr/bin/env bash
# Benchmark: what the SQL gate (authorizer, defensive mode, D1's limits,
# the linear splitter) costs `cargo xtask verify`, before and after, in one
# run.
#
#   scripts/bench/gate-cost.sh [BASE_REV] [DUMP]
#
# BASE_REV (default e0f800b, the last commit before the gate) is built in a
# temporary tree beside this checkout's build. DUMP defaults to F155, made
# by shared/bench/gen_f155.py, with its audit_log renamed (it is not
# qbtime's). Both binaries verify the same file without a manifest,
# alternating, three times each; the medians are printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
base_rev="${1:-e0f800b}"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-gate-XXXXXX")"
trap 'rm -rf "$work"' EXIT
dump="${2:-}"
if [ -z "$dump" ]; then
    python3 "$root/../shared/bench/gen_f155.py" "$work/f155-raw.sql"
    sed 's/audit_log/audit_events/g' "$work/f155-raw.sql" >"$work/f155.sql"
    rm "$work/f155-raw.sql"
    dump="$work/f155.sql"
fi
mkdir -p "$work/base"
git -C "$root" archive "$base_rev" | tar -x -C "$work/base"
(cd "$work/base" && CARGO_TARGET_DIR="$work/base-target" cargo build -q -p xtask)
(cd "$root" && cargo build -q -p xtask)
before="$work/base-target/debug/xtask"
after="$root/target/debug/xtask"
time_one() {
    local start end
    start=$(date +%s.%N)
    (cd "$2" && "$1" verify "$dump" --no-manifest --no-record >"$work/log" 2>&1) || true
    grep -q "Result: GOOD" "$work/log" || { cat "$work/log" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
b=(); a=()
for _ in 1 2 3; do
    b+=("$(time_one "$before" "$work/base")")
    a+=("$(time_one "$after" "$root")")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
mb=$(median "${b[@]}"); ma=$(median "${a[@]}")
echo "dump: $(stat -c %s "$dump") bytes"
printf '%-34s %8s   %s\n' "verify --no-manifest" "median" "runs (s)"
printf '%-34s %8.2f   %s\n' "before the gate ($base_rev)" "$mb" "${b[*]}"
printf '%-34s %8.2f   %s\n' "with the gate (this checkout)" "$ma" "${a[*]}"
printf '%-34s %8.2f\n' "ratio" "$(echo "$ma / $mb" | bc -l)"
