#!/usr/bin/env bash
# Benchmark: issue 14's table, every row measured side by side in one run.
#
#   [XTASK=<xtask binary>] [BASELINE=<xtask binary>] \
#   [ROWS="restore verify local remote"] scripts/bench/perf.sh [F155-PATH] [RUNS]
#
# F155-PATH defaults to F155, generated with shared/bench/gen_f155.py (155
# MB, 800,000 rows in the shape of a wrangler export). Its `audit_log` is
# renamed in a copy, because verify and backup judge an audit_log by the
# audit chain that backups.toml declares, and F155's is not qbtime's.
# RUNS (default 3) rounds each run, in turn, the operations of the rows
# chosen by ROWS (default all four):
#   restore  the sqlite3 shell loading the dump into a new file database in
#            one transaction (the yardstick), then `cargo xtask restore DUMP
#            --to local --no-manifest --yes` into an empty local D1;
#   verify   `cargo xtask verify DUMP --no-manifest --no-record`, against
#            the same shell load;
#   local    raw `wrangler d1 export --local`, then `cargo xtask backup
#            local`, of a local D1 holding the dump (the two files must be
#            byte-identical);
#   remote   raw `wrangler d1 export --remote`, then `cargo xtask backup
#            prod`, both through the real wrangler against the loopback
#            server (crates/d1-loopback) serving the dump (byte-identical).
#            DOWNLOAD_MBPS=<n> has the loopback send the export at n MB/s,
#            as a network would, instead of as fast as 127.0.0.1 carries it.
# It prints each row's median wall time, the reference's, their ratio,
# issue 14's goal, the xtask's own peak memory (VmHWM of its process) and,
# separately, the largest process under it or under the reference
# (wrangler's node or workerd), and the 1-minute load average while the
# row ran. BASELINE=<an xtask binary built from an older commit> times
# that binary's restore, verify and backups too, in the same rounds.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${2:-3}"
rows="${ROWS:-restore verify local remote}"
# The pinned Node (npm package `node`) runs wrangler.
export PATH="$root/node_modules/.bin:$PATH"
. "$root/scripts/bench/peak.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-perf-XXXXXX")"
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_LOG_PATH="$work/logs"
wants() { case " $rows " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

command -v sqlite3 >/dev/null || { echo "this benchmark needs the sqlite3 shell" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "this benchmark needs GNU time (/usr/bin/time)" >&2; exit 2; }
[ -x "$root/node_modules/.bin/wrangler" ] || (cd "$root" && npm ci --no-audit --no-fund)
wrangler="$root/node_modules/.bin/wrangler"
(cd "$root" && cargo build -q -p xtask -p d1-loopback)
# XTASK=path measures another build as "this" (say, a copy kept aside).
xtask="${XTASK:-$root/target/debug/xtask}"

dump="${1:-}"
if [ -z "$dump" ]; then
    echo "generating F155..."
    python3 "$root/../shared/bench/gen_f155.py" "$work/f155-raw.sql" >/dev/null
    dump="$work/f155-raw.sql"
fi
sed 's/audit_log/audit_events/g' "$dump" >"$work/dump.sql"
rm -f "$work/f155-raw.sql"
dump="$work/dump.sql"

# A project, and a copy of an empty local D1 that every restore starts from.
mkdir -p "$work/p" "$work/home"
cp "$root/wrangler.toml" "$root/.gitignore" "$work/p/"
git -C "$work/p" init -q
cd "$work/p"
"$wrangler" d1 execute qbtime_db_local --local --command "SELECT 1" >/dev/null 2>&1
cp -a .wrangler "$work/empty-d1"
local_db=$(ls .wrangler/state/v3/d1/miniflare-D1DatabaseObject/*.sqlite | grep -v metadata)
# The database the backups read: the local D1 and the loopback's, each the
# dump loaded by the shell.
if wants local; then
    cp -a .wrangler "$work/loaded-d1"
    (echo 'BEGIN;'; cat "$dump"; echo 'COMMIT;') | sqlite3 "$work/loaded-d1/${local_db#.wrangler/}"
fi
if wants remote; then
    (echo 'BEGIN;'; cat "$dump"; echo 'COMMIT;') | sqlite3 "$work/prod.sqlite"
    account=0123456789abcdef0123456789abcdef
    token=loopback-bench-token-0123456789
    uuid=$(sed -n '/env.production.d1_databases/,/^$/s/^database_id = "\(.*\)"/\1/p' wrangler.toml)
    rate=()
    [ -n "${DOWNLOAD_MBPS:-}" ] && rate=(--download-rate "$((DOWNLOAD_MBPS * 1000000))")
    "$root/target/debug/d1-loopback" --account "$account" --token "$token" \
        --db "qbtime_db_prod=$uuid=$work/prod.sqlite" "${rate[@]}" >"$work/url" &
    server=$!
    for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
    export CLOUDFLARE_API_BASE_URL="$(head -1 "$work/url")" CLOUDFLARE_API_TOKEN="$token" \
        CLOUDFLARE_ACCOUNT_ID="$account" HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config"
fi
fresh_d1() { rm -rf .wrangler backups; cp -a "$1" .wrangler; }

# Each measurement appends to the files $work/r/NAME.{s,own,tree,load}.
mkdir -p "$work/r"
record() { # NAME: the figures peak_run just set
    printf '%.2f\n' "$seconds" >>"$work/r/$1.s"
    echo "$cpu" >>"$work/r/$1.cpu"
    echo "$peak_mb" >>"$work/r/$1.own"
    echo "$tree_mb" >>"$work/r/$1.tree"
    echo "$load" >>"$work/r/$1.load"
}
# The CPU seconds (user and system) the loopback server has used so far.
server_cpu() {
    [ -n "$server" ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$server/stat"
}
run() { # NAME CMD...
    local name="$1" before; shift
    load=$(cut -d' ' -f1 /proc/loadavg)
    before=$(server_cpu)
    peak_run "$work/$name.log" "$@"
    echo "$(server_cpu) - $before" | bc >>"$work/r/$name.server"
    record "$name"
}
shell_row() {
    load=$(cut -d' ' -f1 /proc/loadavg)
    shell_load "$dump" "$work/shell.db"
    peak_mb=0 tree_mb=0 cpu=0
    record shell
}
# One binary's operations, as WHO (this or base).
measure() {
    local who="$1" bin="$2" step
    if wants verify; then
        run "$who-verify" "$bin" --config wrangler.toml verify "$dump" --no-manifest --no-record
        grep -q "Result: GOOD" "$work/$who-verify.log" || { cat "$work/$who-verify.log"; exit 1; }
    fi
    if wants restore; then
        fresh_d1 "$work/empty-d1"
        run "$who-restore" "$bin" --config wrangler.toml restore "$dump" --to local --no-manifest --yes
    fi
    if wants local; then
        fresh_d1 "$work/loaded-d1"
        run "$who-local" "$bin" --config wrangler.toml backup local
        step=$(sed -n 's/.*exported .* without wrangler (\([0-9.]*\) s).*/\1/p' "$work/$who-local.log")
        echo "${step:-0}" >>"$work/r/$who-local.step"
        cmp -s backups/backup-local-*.sql "$work/raw-local.sql" || { echo "backup local differs from wrangler's export"; exit 1; }
    fi
    if wants remote; then
        rm -rf backups
        run "$who-remote" "$bin" -v --config wrangler.toml backup prod
        step=$(sed -n 's/.*wrangler: export .* (\([0-9.]*\) s).*/\1/p' "$work/$who-remote.log" | tail -1)
        echo "${step:-0}" >>"$work/r/$who-remote.step"
        cmp -s backups/backup-prod-*.sql "$work/raw-remote.sql" || { echo "backup prod differs from wrangler's export"; exit 1; }
    fi
}
echo "dump: $(stat -c %s "$dump") bytes, $(grep -c '^INSERT' "$dump") rows; $runs rounds of: $rows"
for i in $(seq "$runs"); do
    echo "round $i, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    { wants restore || wants verify; } && shell_row
    if wants local; then
        fresh_d1 "$work/loaded-d1"
        run wrangler-local "$wrangler" d1 export qbtime_db_local --local --output "$work/raw-local.sql" -y
    fi
    if wants remote; then
        run wrangler-remote "$wrangler" d1 export qbtime_db_prod --env production --remote \
            --output "$work/raw-remote.sql" -y
    fi
    measure this "$xtask"
    [ -n "${BASELINE:-}" ] && measure base "$BASELINE"
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
most() { sort -n "$1" | tail -1; }
loads() { sort -n "$1" | awk 'NR==1 {lo=$1} {hi=$1} END {if (lo==hi) print lo; else print lo "-" hi}'; }
fmt='%-44s %8s %8s %7s %6s %9s %10s %6s  %s\n'
echo
echo "medians of $runs runs; seconds; peak memory in MB"
printf "$fmt" "operation" "xtask" "ref" "ratio" "goal" "own peak" "other peak" "load" "runs (xtask / ref)"
row() { # LABEL NAME REF GOAL
    local label="$1" name="$2" ref="$3" goal="$4" m r
    [ -s "$work/r/$name.s" ] || return 0
    m=$(median "$work/r/$name.s"); r=$(median "$work/r/$ref.s")
    local other=$(most "$work/r/$name.tree")
    # The largest process under the xtask, if not the xtask itself.
    [ "$other" -le "$(most "$work/r/$name.own")" ] && other="-"
    printf "$fmt" "$label" "$m" "$r" "$(printf '%.2fx' "$(echo "$m / $r" | bc -l)")" "$goal" \
        "$(most "$work/r/$name.own")" "$other" "$(loads "$work/r/$name.load")" \
        "$(paste -sd' ' "$work/r/$name.s") / $(paste -sd' ' "$work/r/$ref.s")"
}
ref_row() { # LABEL NAME
    [ -s "$work/r/$2.s" ] || return 0
    local other=$(most "$work/r/$2.tree")
    [ "$other" -gt 0 ] || other="-"
    printf "$fmt" "$1" "-" "$(median "$work/r/$2.s")" "" "" "-" "$other" \
        "$(loads "$work/r/$2.load")" "$(paste -sd' ' "$work/r/$2.s")"
}
step_row() { # LABEL NAME REF GOAL
    [ -s "$work/r/$2.step" ] || return 0
    local m r
    m=$(median "$work/r/$2.step"); r=$(median "$work/r/$3.s")
    printf "$fmt" "$1" "$m" "$r" "$(printf '%.2fx' "$(echo "$m / $r" | bc -l)")" "$4" "" "" "" \
        "$(paste -sd' ' "$work/r/$2.step")"
}
for who in this base; do
    [ "$who" = base ] && { [ -n "${BASELINE:-}" ] || break; echo "BASELINE ($BASELINE):"; }
    row "restore --to local --no-manifest --yes" "$who-restore" shell "1.00x"
    row "verify --no-manifest" "$who-verify" shell "1.00x"
    row "backup local (export, count, hash, verify)" "$who-local" wrangler-local ""
    step_row "  its export step" "$who-local" wrangler-local "0.30x"
    row "backup prod, loopback${DOWNLOAD_MBPS:+ at $DOWNLOAD_MBPS MB/s}" "$who-remote" wrangler-remote "1.15x"
    step_row "  its wrangler export" "$who-remote" wrangler-remote ""
done
echo "references:"
ref_row "sqlite3 shell, file database, one transaction" shell
ref_row "wrangler d1 export --local" wrangler-local
ref_row "wrangler d1 export --remote" wrangler-remote
if wants verify; then
    echo "verify's phases (last run): $(grep 'seconds:' "$work/this-verify.log" | sed 's/^ *seconds: //')"
fi
if wants remote; then
    echo "backup prod's verify phases (last run): $(grep 'seconds:' "$work/this-remote.log" | sed 's/^ *seconds: //')"
    # The cores give at most that many CPU seconds a second: whatever the
    # order of the work, a run takes at least its CPU seconds (its own and,
    # on this machine, the loopback's) over the cores.
    cpu_line() { # LABEL NAME
        local own srv
        own=$(median "$work/r/$2.cpu"); srv=$(median "$work/r/$2.server")
        printf '  %-28s %6s + loopback %5s = %6s CPU s; on %s cores, at least %5s s\n' "$1" "$own" "$srv" \
            "$(echo "$own + $srv" | bc)" "$(nproc)" "$(echo "scale=2; ($own + $srv) / $(nproc)" | bc)"
    }
    echo "CPU seconds (user + system, medians) of the command and every process it started, and the loopback's:"
    cpu_line "wrangler d1 export --remote" wrangler-remote
    cpu_line "backup prod" this-remote
fi
