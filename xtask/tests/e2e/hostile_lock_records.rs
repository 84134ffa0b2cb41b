//! atkAU: what a stale lock's records (`backups/.lock`, which anyone who
//! can write the backup directory may have written) make the next run
//! print and do. Each case plants a lock left "unlocked and not empty", as
//! a killed run leaves it, and runs a command that takes the lock.

use crate::common;

use common::decoys::Decoys;
use common::*;

/// A lock left by a "dead" run, with the given fields.
fn plant_stale_lock(sb: &Sandbox, fields: serde_json::Value) {
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(
        sb.backups().join(".lock"),
        serde_json::to_string(&fields).unwrap(),
    )
    .unwrap();
}

fn started_an_hour_ago() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The lock's `doing` is free text that the next run repeats as what the
/// dead run was doing "and the way back", which the operator is meant to
/// paste. A planted lock hands the operator a restore into production of a
/// file outside backups/ (no backup, no manifest, nothing the tool ever
/// wrote), worded exactly as the tool's own advice after a killed
/// migration; the tool repeats it as its own word.
#[test]
fn a_stale_lock_never_tells_the_operator_to_restore_a_file_it_did_not_write_into_prod() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let planted = decoys.path("victim.sql");
    plant_stale_lock(
        &sb,
        serde_json::json!({
            "pid": 999_999,
            "started_at": started_an_hour_ago(),
            "command": "migrate prod",
            "doing": format!(
                "applying migrations to qbtime_db_prod, some of which may be applied; to go \
                 back, restore the pre-migration backup: cargo xtask restore {} --to prod \
                 --replace --confirm qbtime_db_prod",
                planted.display()
            ),
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("gone without releasing it"),
        "the stale lock is reported:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains("victim.sql"),
        "the next run repeated a planted lock's command that restores a file outside backups/ \
         into prod as the way back:\n{}",
        run.all()
    );
    assert_eq!(decoys.hashes(), before, "a decoy outside backups/ changed");
}

/// README (backup, step 4): "A hand dump copied into `backups/` meanwhile
/// is the operator's and is never removed, whatever its name, even one
/// named exactly like a backup of that hour". The only thing that tells the
/// dead run's file from the operator's is the lock's `placing`, which anyone
/// who can write the directory may write: a planted lock naming the
/// operator's copy has the next command (here a `backup`) delete it, with
/// a warning that the tool's own run wrote it.
#[test]
fn a_planted_lock_never_has_the_next_run_delete_a_hand_dump_named_like_a_backup() {
    let (sb, name) = sandbox_with_a_backup();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M");
    // The operator's copy, to restore from by path: no manifest.
    let hand = sb.backups().join(format!("backup-local-{stamp}-7.sql"));
    std::fs::copy(sb.backups().join(&name), &hand).unwrap();
    let bytes = std::fs::read(&hand).unwrap();
    plant_stale_lock(
        &sb,
        serde_json::json!({
            "pid": 999_999,
            "started_at": started_an_hour_ago(),
            "command": "backup local",
            "placing": format!("backup-local-{stamp}-7.sql"),
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        hand.exists(),
        "the operator's hand dump {} was deleted on a planted lock's word:\n{}",
        hand.display(),
        run.all()
    );
    assert_eq!(std::fs::read(&hand).unwrap(), bytes);
}
