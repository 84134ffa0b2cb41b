#!/usr/bin/env bash
# Benchmark: what the content check (issue "equal means equal") costs a
# local restore. In one run, restores the same backup into an empty local
# D1 twice per round:
#   - with its manifest: rows loaded, row counts and the per-table content
#     digest of the restored database compared with the manifest's;
#   - the same file with --no-manifest: rows loaded and row counts only.
#
#   scripts/bench/digest-cost.sh [DUMP] [ROUNDS]
#
# DUMP defaults to F155 (python3 ../shared/bench/gen_f155.py), generated
# into a temporary directory; its audit_log table is renamed, because that
# name is qbtime's and its shape is another (see README, "The app's own
# checks"). Prints wall and CPU seconds (the xtask and what it starts) of
# each, and the ratio of the medians.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$root/node_modules/.bin:$PATH"
rounds="${2:-3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"
[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
(cd "$root" && cargo build -q -p xtask)
xtask="${CARGO_TARGET_DIR:-$root/target}/debug/xtask"

dump="${1:-}"
if [ -z "$dump" ]; then
    gen="$root/../shared/bench/gen_f155.py"
    [ -f "$gen" ] || { echo "no DUMP given and $gen is missing" >&2; exit 2; }
    python3 "$gen" "$work/f155.sql" >/dev/null
    dump="$work/f155.sql"
fi
sed 's/"audit_log"/"f155_audit_log"/g; s/ audit_log / f155_audit_log /g; s/TABLE audit_log/TABLE f155_audit_log/g' "$dump" > "$work/input.sql"

new_project() {
    mkdir -p "$1"
    cp "$root/wrangler.toml" "$root/.gitignore" "$root/backups.toml" "$1/"
    cp -r "$root/migrations" "$1/"
    git -C "$1" init -q
}

# A backup of the loaded dump, with a manifest that records content digests.
new_project "$work/source"
"$xtask" -q --config "$work/source/wrangler.toml" restore "$work/input.sql" --to local --no-manifest --yes
"$xtask" -q --config "$work/source/wrangler.toml" backup local
backup=$(ls "$work"/source/backups/backup-local-*.sql)
mkdir "$work/bare" && cp "$backup" "$work/bare/"
bare="$work/bare/$(basename "$backup")"
echo "backup: $(basename "$backup"), $(stat -c %s "$backup") bytes"

cpu_of() { awk '{print $1 + $2}' "$1"; }
printf '%-52s %9s %9s\n' "restore into an empty local D1" "wall s" "cpu s"
for i in $(seq "$rounds"); do
    for kind in with without; do
        new_project "$work/$kind-$i"
        cfg="$work/$kind-$i/wrangler.toml"
        if [ "$kind" = with ]; then
            args=(restore "$(basename "$backup")" --backup-dir "$work/source/backups" --to local --yes)
        else
            args=(restore "$bare" --to local --no-manifest --yes)
        fi
        start=$(date +%s.%N)
        /usr/bin/time -f '%U %S' -o "$work/$kind-$i.cpu" "$xtask" --config "$cfg" "${args[@]}" >"$work/$kind-$i.log" 2>&1 \
            || { cat "$work/$kind-$i.log"; exit 1; }
        seconds=$(echo "$(date +%s.%N) - $start" | bc)
        if [ "$kind" = with ]; then
            grep -q "\[x\] content" "$work/$kind-$i.log" || { cat "$work/$kind-$i.log"; echo "no content check ran" >&2; exit 1; }
        fi
        printf '%-52s %9.2f %9.2f\n' \
            "round $i: $([ "$kind" = with ] && echo 'with the content check' || echo 'rows only (--no-manifest)')" \
            "$seconds" "$(cpu_of "$work/$kind-$i.cpu")"
        eval "${kind}_wall_$i=$seconds; ${kind}_cpu_$i=$(cpu_of "$work/$kind-$i.cpu")"
    done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ww=(); wo=(); cw=(); co=()
for i in $(seq "$rounds"); do
    eval "ww+=(\$with_wall_$i); wo+=(\$without_wall_$i); cw+=(\$with_cpu_$i); co+=(\$without_cpu_$i)"
done
mw=$(median "${ww[@]}"); mo=$(median "${wo[@]}"); mcw=$(median "${cw[@]}"); mco=$(median "${co[@]}")
printf 'median wall: %.2f s with, %.2f s without: the content check costs %.2fx the restore without it (%.0f%% more)\n' \
    "$mw" "$mo" "$(echo "$mw / $mo" | bc -l)" "$(echo "($mw / $mo - 1) * 100" | bc -l)"
printf 'median CPU:  %.2f s with, %.2f s without: %.2fx\n' "$mcw" "$mco" "$(echo "$mcw / $mco" | bc -l)"
