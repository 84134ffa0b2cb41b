#!/usr/bin/env bash
# Benchmark: where `cargo test --workspace` spends its time, one test target
# at a time: wall and CPU seconds (GNU time; CPU includes the wrangler, Node
# and workerd processes the tests start) and the number of wrangler
# invocations each target makes (counted by a Node preload that appends one
# line per wrangler start; wrangler itself is the real, pinned one).
#
#   scripts/bench/test-suite.sh [TARGET...]     # e.g. e2e xtask:bin d1-loopback:loopback
#   scripts/bench/test-suite.sh e2e/restore_local e2e/deploy
#
# The end-to-end tests are one binary per crate (xtask's `e2e`, the
# loopback's `loopback`); `TARGET/AREA` runs one area (a module) of such a
# binary alone, so its share is measured on its own. The slowest-tests
# list below names each test by its module.
# With no argument it runs every target of the workspace. The figures
# depend on the machine's load: the load average is printed with them.
# The slowest single tests follow (libtest's --report-time, which stable
# test binaries accept with RUSTC_BOOTSTRAP=1 set for them: wall seconds
# of each test, under the same load and test threads as the run).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cat >"$work/count.js" <<'JS'
// The CLI entry that wrangler's bin script starts as a second process.
if ((process.argv[1] || "").endsWith("wrangler-dist/cli.js")) {
  require("fs").appendFileSync(process.env.QBTIME_COUNT_FILE, process.argv.slice(2).slice(0, 3).join(" ") + "\n");
}
JS
cargo test --workspace --no-run -q 2>/dev/null
: >"$work/tests"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(d1-core:lib d1-core:room d1-dump:lib d1-sql:lib d1-loopback:lib d1-loopback:bin xtask:bin d1-loopback:loopback xtask:e2e)
fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8s %8s %6s %s\n' target wall_s cpu_s calls result
total_wall=0 total_cpu=0 total_calls=0
for t in "${targets[@]}"; do
    case "$t" in *:*) pkg="${t%%:*}" name="${t#*:}" ;; *) pkg=xtask name="$t" ;; esac
    area=()
    case "$name" in */*) area=("${name#*/}::") name="${name%%/*}" ;; esac
    case "$name" in lib) sel=(--lib) ;; bin) sel=(--bin "$pkg") ;; *) sel=(--test "$name") ;; esac
    : >"$work/calls"
    if QBTIME_COUNT_FILE="$work/calls" NODE_OPTIONS="--require $work/count.js" \
        RUSTC_BOOTSTRAP=1 /usr/bin/time -f '%e %U %S' -o "$work/time" \
        cargo test -p "$pkg" "${sel[@]}" -- "${area[@]}" -Z unstable-options --report-time >"$work/out" 2>&1; then
        result=ok
    else
        result=FAILED
    fi
    # GNU time puts "Command exited with non-zero status N" first on failure.
    read -r wall user sys < <(tail -1 "$work/time")
    cpu=$(echo "$user + $sys" | bc)
    calls=$(wc -l <"$work/calls")
    printf '%-34s %8s %8s %6s %s\n' "$t" "$wall" "$cpu" "$calls" "$result"
    [ "$result" = ok ] || tail -30 "$work/out"
    sed -n 's/^test \(.*\) \.\.\. [a-zA-Z]* <\([0-9.]*\)s>$/\2 '"$pkg:$name"' \1/p' "$work/out" >>"$work/tests"
    total_wall=$(echo "$total_wall + $wall" | bc)
    total_cpu=$(echo "$total_cpu + $cpu" | bc)
    total_calls=$((total_calls + calls))
done
printf '%-34s %8s %8s %6s\n' total "$total_wall" "$total_cpu" "$total_calls"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "slowest tests (wall s, target, test):"
sort -rn "$work/tests" | head -"${QBTIME_SLOWEST:-25}"
