#!/usr/bin/env bash
# The job an external scheduler runs (the GitHub Actions workflow in
# .github/workflows/scheduled-backup.yml, cron, or the app's cron Worker
# calling a runner): for one environment, prod by default,
#   1. a backup, which verifies itself (a simulated restore under D1's rules)
#      and, when backups.toml has an [<env>.offsite] bucket, is uploaded to R2
#      and read back (`--upload=auto`: xtask reads the settings, not this
#      script);
#   2. a prune by the retention policy in backups.toml;
#   3. `cargo xtask status --env ENV`, which fails when the newest verified
#      backup is older than the environment's max_age in backups.toml.
# Compression and encryption follow backups.toml (`compress`, and
# [<env>.encryption] recipients). Further arguments go to the backup, e.g.
# `--require-encryption`, which refuses to take an unencrypted one. It stops
# at the first failure, loudly and with a non-zero exit: a backup that fails
# verification, or an upload that does not read back whole, fails the job.
#
#   scripts/scheduled-backup.sh [-q|-v] [ENV [BACKUP-ARGS...]]
# (-q: nothing on standard output on a good day, for cron's mail; -v: every
# step in full)
#
# Remote environments need CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID.
# QBTIME_XTASK names a built xtask binary to run instead of `cargo xtask`.
set -euo pipefail
# -q first: print nothing on a good day (a cron job mails whatever it prints);
# or -v: every step in full.
level=()
case "${1:-}" in
    -q | -v)
        level=("$1")
        shift
        ;;
    -*)
        echo "scheduled-backup.sh: unknown option $1; use -q or -v before the environment" >&2
        exit 2
        ;;
esac
env_name="${1:-prod}"
[ "$#" -gt 0 ] && shift
cd "$(dirname "$0")/.."

fail() {
    echo "SCHEDULED BACKUP OF ${env_name} FAILED at $(date -u +%Y-%m-%dT%H:%M:%SZ): $1" >&2
    exit 1
}

xtask() {
    if [[ -n "${QBTIME_XTASK:-}" ]]; then
        "$QBTIME_XTASK" "$@"
    else
        # cargo prints "Finished …" and "Running …" on stderr unless its own
        # -q comes before the subcommand: a quiet job passes it there too.
        if [ "${level[*]-}" = "-q" ]; then
            cargo -q xtask "$@"
        else
            cargo xtask "$@"
        fi
    fi
}

xtask ${level[@]+"${level[@]}"} backup "$env_name" --reason "scheduled backup" --upload=auto ${1+"$@"} \
    || fail "the backup, its verification or its upload failed (the error above says which; a backup whose upload failed is kept here: \`cargo xtask upload latest:${env_name}\` copies it once R2 answers)"
# Retention from backups.toml; prune never deletes the newest verified backup.
xtask ${level[@]+"${level[@]}"} prune --env "$env_name" --yes || fail "pruning old backups failed"
xtask ${level[@]+"${level[@]}"} status --env "$env_name" \
    || fail "the newest verified backup is older than max_age, or bad"
[ "${level[*]-}" = "-q" ] || echo "scheduled backup of ${env_name}: done"
