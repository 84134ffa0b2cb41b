#!/usr/bin/env bash
# Benchmark: the wall time of the remote commands whose read-only wrangler
# calls run side by side (README, "Reads that run side by side"), through
# the real wrangler against the loopback server.
#
#   [BASELINE=<an older xtask binary>] scripts/bench/side-by-side.sh [RUNS]
#
# prod is the qbtime seed database the e2e tests serve (this repository's
# migrations, then the rows of SEED_SQL in xtask/tests/e2e/common/mod.rs),
# on a machine that holds a backup of it already. RUNS times (default 3),
# alternating with BASELINE when given, it times: `backup prod`; `restore
# BACKUP --to prod --replace`; `time-travel restore prod --bookmark B` (the
# bookmark `time-travel info` gave); `migrate prod` of 0004_audit_log.sql
# (on a prod with the first three applied). It prints each one's median
# and runs. COMMANDS="restore time-travel" (any of backup restore
# time-travel migrate) times only those. STRACE=1 also writes each run's wrangler calls, start and end
# in seconds from the command's start, to $work/<who>-<command>.calls
# (kept with BENCH_KEEP=1).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$root/node_modules/.bin:$PATH"
runs="${1:-3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/qbtime-side-by-side-XXXXXX")"
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true
# NO_BUILD=1 uses the binaries in target/ as they are.
[ -n "${NO_BUILD:-}" ] || (cd "$root" && cargo build -q -p xtask -p d1-loopback)
xtask="${XTASK:-$root/target/debug/xtask}"
uuid=$(sed -n '/env.production.d1_databases/,/^$/s/^database_id = "\(.*\)"/\1/p' "$root/wrangler.toml")

# A project, and prod with the first APPLIED migrations (and the seed rows
# once all are), served by a loopback of its own.
serve() { # APPLIED
    if [ -n "$server" ]; then kill "$server"; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work/p" "$work/home" "$work/prod.sqlite" && mkdir -p "$work/p" "$work/home"
    cp -r "$root/wrangler.toml" "$root/backups.toml" "$root/.gitignore" "$root/migrations" "$work/p/"
    git -C "$work/p" init -q
    {
        echo "PRAGMA foreign_keys=ON; CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, \
name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);"
        ls "$root/migrations"/*.sql | sort | head -"$1" | while read -r m; do
            cat "$m"; echo "INSERT INTO d1_migrations (name) VALUES ('$(basename "$m")');"
        done
        [ "$1" -lt 4 ] || sed -n '/^pub const SEED_SQL: &str = r#"/,/^"#;/p' \
            "$root/xtask/tests/e2e/common/mod.rs" | sed '1d;$d'
    } | sqlite3 "$work/prod.sqlite"
    rm -f "$work/url"
    "$root/target/debug/d1-loopback" --account 0123456789abcdef0123456789abcdef \
        --token loopback-bench-token-0123456789 --db "qbtime_db_prod=$uuid=$work/prod.sqlite" >"$work/url" &
    server=$!
    for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
    export CLOUDFLARE_API_BASE_URL="$(head -1 "$work/url")" CLOUDFLARE_API_TOKEN=loopback-bench-token-0123456789 \
        CLOUDFLARE_ACCOUNT_ID=0123456789abcdef0123456789abcdef HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config"
    cd "$work/p"
}
run() { # WHO NAME BIN ARGS...: appends the seconds to $work/r/WHO-NAME
    local who="$1" name="$2" bin="$3" start end; shift 3
    local trace=()
    [ -n "${STRACE:-}" ] && trace=(strace -f -tt -q -s 200 -e trace=execve -e signal=none -o "$work/$who-$name.strace")
    start=$(date +%s.%N)
    "${trace[@]}" "$bin" --config wrangler.toml "$@" >"$work/$who-$name.log" 2>&1 \
        || { echo "$who $name failed:"; tail -5 "$work/$who-$name.log"; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc >>"$work/r/$who-$name"
    [ -z "${STRACE:-}" ] || calls "$work/$who-$name.strace" "$start" >"$work/$who-$name.calls"
}
calls() { # STRACE START: each wrangler (its node), from and to, in seconds
    awk -v t0="$2" '
        function s(t, a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
        /execve\(.*--no-warnings", "[^"]*wrangler/ { o[++n] = $1; b[$1] = s($2); c = $0
            sub(/.*cli\.js", /, "", c); w[$1] = substr(c, 1, 90) }
        /\+\+\+ exited/ && ($1 in b) { e[$1] = s($2) }
        END { for (i = 1; i <= n; i++) printf "%7.2f %7.2f  %s\n", b[o[i]] - b[o[1]], e[o[i]] - b[o[1]], w[o[i]] }' "$1"
}
commands="${COMMANDS:-backup restore time-travel migrate}"
wants() { case " $commands " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
round() { # WHO BIN
    serve 4
    "$2" --config wrangler.toml backup prod >/dev/null 2>&1
    ! wants backup || run "$1" backup "$2" backup prod
    local file bookmark
    file=$(ls backups/backup-prod-*.sql | head -1)
    ! wants restore || run "$1" restore "$2" restore "$file" --to prod --replace --confirm qbtime_db_prod --yes
    bookmark=$("$2" --config wrangler.toml time-travel info prod --json 2>/dev/null \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["bookmark"])')
    ! wants time-travel || run "$1" time-travel "$2" time-travel restore prod --bookmark "$bookmark" \
        --confirm qbtime_db_prod --yes
    wants migrate || return 0
    serve 3
    "$2" --config wrangler.toml backup prod >/dev/null 2>&1
    run "$1" migrate "$2" migrate prod --confirm qbtime_db_prod --reason bench
}
mkdir -p "$work/r"
for _ in $(seq "$runs"); do
    round this "$xtask"
    [ -z "${BASELINE:-}" ] || round baseline "$BASELINE"
done
median() { sort -n "$1" | awk '{a[NR] = $1} END {printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
printf '%-12s %8s %8s   %s\n' command this baseline "runs (this / baseline)"
for name in $commands; do
    base=- baseruns=
    if [ -n "${BASELINE:-}" ]; then base=$(median "$work/r/baseline-$name"); baseruns=" / $(xargs printf '%.1f ' <"$work/r/baseline-$name")"; fi
    printf '%-12s %8s %8s   %s%s\n' "$name" "$(median "$work/r/this-$name")" "$base" \
        "$(xargs printf '%.1f ' <"$work/r/this-$name")" "$baseruns"
done
