#!/usr/bin/env bash
# The job an external scheduler (cron, a CI schedule) runs: a backup of one
# environment, prod by default, which verifies itself (a simulated restore
# under D1's rules; see `cargo xtask verify`). It fails loudly and non-zero on
# any error, a backup that fails verification included.
#
#   scripts/scheduled-backup.sh [ENV]
#
# Remote environments need CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID.
set -euo pipefail
env_name="${1:-prod}"
cd "$(dirname "$0")/.."

if ! cargo xtask backup "$env_name" --reason "scheduled backup"; then
    echo "SCHEDULED BACKUP OF ${env_name} FAILED at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >&2
    exit 1
fi
