# Sourced by the benchmarks that need a local D1 full of generated rows.
#
#   generated_d1 ROWS   makes $work/p, a project with qbtime's schema in its
#                       own git repository, fills its local D1 with a
#                       deterministic dump of ROWS rows ($work/dump.sql, with
#                       a valid audit chain), and leaves its backups/ empty.
#                       Needs $root, $work and $xtask; defines x (the xtask
#                       pointed at that project).
generated_d1() {
    local rows="$1" schema
    mkdir -p "$work/p"
    cp "$root/wrangler.toml" "$root/.gitignore" "$work/p/"
    cp -r "$root/migrations" "$work/p/"
    git -C "$work/p" init -q
    x() { "$xtask" --config "$work/p/wrangler.toml" "$@"; }
    x backup local --schema-only >/dev/null 2>&1
    schema=$(ls "$work"/p/backups/backup-local-*.sql)
    echo "generating $rows rows..."
    node "$root/scripts/bench/gen-dump.mjs" "$schema" "$rows" "$work/dump.sql"
    rm -f "$work"/p/backups/backup-local-*
    x restore "$work/dump.sql" --to local --replace --yes --no-manifest >"$work/restore.log" 2>&1 \
        || { cat "$work/restore.log"; exit 1; }
    rm -f "$work"/p/backups/backup-local-*
}
