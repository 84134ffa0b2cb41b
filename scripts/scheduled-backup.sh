#!/usr/bin/env bash
# The job an external scheduler runs (the GitHub Actions workflow in
# .github/workflows/scheduled-backup.yml, cron, or the app's cron Worker
# calling a runner): for one environment, prod by default,
#   1. a backup, which verifies itself (a simulated restore under D1's rules)
#      and, when backups.toml has an [<env>.offsite] bucket, is uploaded to R2
#      and read back;
#   2. a prune by the retention policy in backups.toml.
# Compression and encryption follow backups.toml (`compress`, and
# [<env>.encryption] recipients). It stops at the first failure, loudly and
# with a non-zero exit: a backup that fails verification, or an upload that
# does not read back whole, fails the job.
#
#   scripts/scheduled-backup.sh [ENV]
#
# Remote environments need CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID.
# QBTIME_XTASK names a built xtask binary to run instead of `cargo xtask`.
set -euo pipefail
env_name="${1:-prod}"
cd "$(dirname "$0")/.."
settings="${QBTIME_SETTINGS:-backups.toml}"

fail() {
    echo "SCHEDULED BACKUP OF ${env_name} FAILED at $(date -u +%Y-%m-%dT%H:%M:%SZ): $1" >&2
    exit 1
}

xtask() {
    if [[ -n "${QBTIME_XTASK:-}" ]]; then
        "$QBTIME_XTASK" "$@"
    else
        cargo xtask "$@"
    fi
}

upload=()
if grep -q "^\[${env_name}\.offsite\]" "$settings" 2>/dev/null; then
    upload=(--upload)
fi

xtask backup "$env_name" --reason "scheduled backup" "${upload[@]}" \
    || fail "the backup, its verification or its upload failed"
# Retention from backups.toml; prune never deletes the newest verified backup.
xtask prune --env "$env_name" --yes || fail "pruning old backups failed"
echo "scheduled backup of ${env_name}: done"
