#!/usr/bin/env bash
# The job an external scheduler (cron, a CI schedule) runs: a backup of one
# environment, prod by default, which verifies itself (a simulated restore
# under D1's rules; see `cargo xtask verify`). It fails loudly and non-zero on
# any error, a backup that fails verification included. Then it prunes the
# environment's old backups by the policy in backups.toml.
#
#   scripts/scheduled-backup.sh [ENV]
#
# Remote environments need CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID.
set -euo pipefail
env_name="${1:-prod}"
cd "$(dirname "$0")/.."

fail() {
    echo "SCHEDULED BACKUP OF ${env_name} FAILED at $(date -u +%Y-%m-%dT%H:%M:%SZ): $1" >&2
    exit 1
}

cargo xtask backup "$env_name" --reason "scheduled backup" || fail "the backup or its verification failed"
# Retention from backups.toml; prune never deletes the newest verified backup.
cargo xtask prune --env "$env_name" --yes || fail "pruning old backups failed"
