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

# cron's PATH is /usr/bin:/bin, where rustup's cargo is not: look in
# ~/.cargo/bin, else stop before anything runs, naming the two ways.
if [[ -z "${QBTIME_XTASK:-}" ]] && ! command -v cargo >/dev/null 2>&1; then
    if [[ -n "${HOME:-}" && -x "$HOME/.cargo/bin/cargo" ]]; then
        PATH="$HOME/.cargo/bin:$PATH"
    else
        fail "cargo is not on PATH (${PATH}), nor in \$HOME/.cargo/bin: set PATH in the crontab line (PATH=\"\$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin\", node too), or QBTIME_XTASK to a built xtask binary (README, The scheduled backup)"
    fi
fi

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

# The backup's standard error is also kept, to name the step that failed:
# only a failed upload leaves a verified backup for `upload latest` to copy.
said="$(mktemp)"
trap 'rm -f "$said"' EXIT
if ! { xtask ${level[@]+"${level[@]}"} backup "$env_name" --reason "scheduled backup" --upload=auto ${1+"$@"} 2>&1 1>&3 3>&- | tee "$said" >&2; } 3>&1; then
    # A bucket lock that keeps what the upload left under its key is told
    # first: its error says "is not marked offsite" too, but no re-run of
    # that upload can replace the object until the rule's retention ends.
    # Nor can any upload replace an object a lock rule holds that every
    # upload rewrites (the index): R2's code 10069, told as such.
    if grep -q "the bucket's lock rule" "$said"; then
        fail "the upload failed and a bucket lock rule keeps what it left in R2 (the error above says which); tonight's backup verified good and is kept here, not offsite, and no upload of it can replace that object until the rule's retention ends: take a new backup, which goes under a key of its own (\`cargo xtask backup ${env_name}\`, or run this job again), and upload that"
    elif grep -q "a bucket lock rule holds it" "$said"; then
        fail "the upload failed: R2 refused to replace an object a bucket lock rule holds (the error above says which); tonight's backup verified good and is kept here, not offsite, and no upload gets past that object until its age passes the rule's retention: \`cargo xtask offsite lock --env ${env_name} --dry-run\` and \`cargo xtask doctor\` show the bucket's lock rules"
    elif grep -q "is not marked offsite" "$said"; then
        fail "the upload failed; tonight's backup verified good and is kept here, not offsite (the error above says why): \`cargo xtask upload latest:${env_name}\` copies it once R2 answers"
    elif grep -q "failed verification\|verifying it could not run\|its verification did not finish" "$said"; then
        fail "tonight's backup was written but is not verified good, and was not uploaded (the error above says which check failed): fix the cause and run the job again; do not upload that backup"
    else
        fail "the backup failed before a verified backup was written, and nothing was uploaded (the error above says why): fix the cause and run the job again"
    fi
fi
# Retention from backups.toml; prune never deletes the newest verified backup.
xtask ${level[@]+"${level[@]}"} prune --env "$env_name" --yes || fail "pruning old backups failed"
xtask ${level[@]+"${level[@]}"} status --env "$env_name" \
    || fail "the newest verified backup is older than max_age, or bad"
[ "${level[*]-}" = "-q" ] || echo "scheduled backup of ${env_name}: done"
