# Sourced by the benchmarks.
#
#   peak_run LOG CMD...   runs CMD with its output in LOG, and sets
#                         $seconds (wall time), $peak_mb (the peak resident
#                         memory, VmHWM, of CMD's own process) and $tree_mb
#                         (GNU time's maximum resident size: the largest of
#                         CMD and the processes it started, such as wrangler's
#                         node or workerd), and $cpu (GNU time's user plus
#                         system seconds of CMD and every process it waited
#                         for). Exits with LOG shown if CMD fails.
peak_run() {
    local log="$1"; shift
    local start end hwm pid child peak=0
    start=$(date +%s.%N)
    /usr/bin/time -f '%M %U %S' -o "$log.rss" "$@" >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        # CMD is GNU time's one child.
        child=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/${child%% *}/status" 2>/dev/null || true)
        [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
        sleep 0.05
    done
    wait "$pid" || { cat "$log"; exit 1; }
    end=$(date +%s.%N)
    seconds=$(echo "$end - $start" | bc)
    peak_mb=$((peak / 1024))
    tree_mb=$(($(tail -1 "$log.rss" | cut -d' ' -f1) / 1024))
    cpu=$(tail -1 "$log.rss" | awk '{printf "%.2f", $2 + $3}')
}

#   shell_load DUMP DB    the yardstick: the sqlite3 shell loading DUMP into
#                         a new file database DB in one transaction. Sets
#                         $seconds. Needs the sqlite3 shell.
shell_load() {
    local start end
    rm -f "$2"
    start=$(date +%s.%N)
    (echo 'BEGIN;'; cat "$1"; echo 'COMMIT;') | sqlite3 "$2"
    end=$(date +%s.%N)
    seconds=$(echo "$end - $start" | bc)
}

#   bench_tools           exits unless the sqlite3 shell and GNU time are
#                         there; installs the pinned wrangler if missing,
#                         and sets $wrangler to it. Needs $root.
bench_tools() {
    command -v sqlite3 >/dev/null || { echo "this benchmark needs the sqlite3 shell" >&2; exit 2; }
    [ -x /usr/bin/time ] || { echo "this benchmark needs GNU time (/usr/bin/time)" >&2; exit 2; }
    [ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
    wrangler="$root/node_modules/.bin/wrangler"
}
