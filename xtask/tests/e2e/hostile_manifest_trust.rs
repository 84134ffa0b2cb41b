//! What the manifest checks must not refuse: values from the database, and
//! a migration's history after a rollback. Each runs the real xtask
//! against the real wrangler's local D1.

use crate::common;

use common::*;

/// A row value in the app's database is not the tool's to refuse: a
/// key id with a line break (any app, any admin screen can write one)
/// used to be copied into every manifest's `encryption_key.key_id`, which
/// `Manifest::validate` then refuses as "a field this tool writes none
/// in". Every backup of that database then failed (exit 1) after it was
/// written, was left out of `list` and `latest`, and blocked `prune` (exit
/// 3) until moved aside by hand, day after day.
#[test]
fn a_key_id_with_a_line_break_in_the_database_leaves_backups_usable() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(
        "UPDATE encryption_keys SET retired_at = '2026-06-01T00:00:00.000Z' \
         WHERE retired_at IS NULL;\n\
         INSERT INTO encryption_keys (key_id, fingerprint, activated_at) VALUES \
         ('dek-2026-06' || char(10) || 'second line', 'sha256:' || hex(randomblob(32)), \
         '2026-06-01T00:00:00.000Z');",
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    let name = only_backup(&sb);
    let list = sb.xtask(&["list"]);
    list.assert_ok();
    assert!(
        list.stdout.contains(&name),
        "the backup just taken should be listed:\n{}",
        list.all()
    );
    assert!(
        !list.all().contains("second line"),
        "a row value must never be printed:\n{}",
        list.all()
    );
    sb.xtask(&["prune", "--env", "local", "--dry-run"])
        .assert_ok();
}

/// 0005 applied, recorded by a verified backup, then rolled back by a
/// restore of the backup taken before it: the sandbox, its migrations
/// directory and the sha256 0005 was applied as.
fn a_migration_applied_and_rolled_back() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    let migrations = sb.path().join("migrations");
    std::fs::write(
        migrations.join("0005_extra.sql"),
        "CREATE TABLE extra (a TEXT);\n",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    sb.xtask(&["backup", "local"]).assert_ok();
    let before_path = sb.backups().join(&before);
    sb.xtask(&[
        "restore",
        before_path.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--yes",
    ])
    .assert_ok();
    (sb, migrations)
}

/// The names in the local D1's d1_migrations.
fn applied_names(sb: &Sandbox) -> Vec<String> {
    {
        sb.query("SELECT name FROM d1_migrations ORDER BY id")
            .into_iter()
    }
    .map(|row| row[0].as_str().unwrap_or_default().to_owned())
    .collect()
}

/// A migration rolled back by a restore, then edited and applied again
/// under its own name, used to apply without a word (`migrate` compared
/// only applied migrations with the record): the next backup recorded the
/// first text's sha256 (the record of the oldest backup that has it), and
/// every later `migrate` was refused (exit 3) "put it back as it was", a
/// text the database no longer had. `migrate` refuses it up front (exit 3,
/// a dry run too, before its backup), saying it was applied with another
/// text and naming the new migration file to make instead; nothing is
/// applied and no backup taken.
#[test]
fn a_migration_rolled_back_and_edited_under_its_own_name_is_refused_before_it_is_applied() {
    let (sb, migrations) = a_migration_applied_and_rolled_back();
    std::fs::write(
        migrations.join("0005_extra.sql"),
        "CREATE TABLE extra (a TEXT, b TEXT);\n",
    )
    .unwrap();
    let backups = sb.backup_files();
    for dry in [&["--dry-run"][..], &["--yes"][..]] {
        let run = sb.xtask(&[&["migrate", "local"][..], dry].concat());
        assert_eq!(run.code, Some(3), "{dry:?}:\n{}", run.all());
        for said in [
            "0005_extra.sql",
            "recorded as applied with another text",
            "rolled back",
            "new migration file",
            "0006_",
        ] {
            run.assert_refused(said);
        }
        assert!(!run.all().contains("put it back as it was"), "{dry:?}");
    }
    assert!(
        !applied_names(&sb).contains(&"0005_extra.sql".to_owned()),
        "the edited 0005 was applied"
    );
    assert_eq!(sb.backup_files(), backups, "a backup was taken");
}

/// Rolling a migration back and fixing it, the way the deploy's recovery
/// leads to: 0005 is applied, a verified backup records it, the
/// pre-migration backup is restored (0005 is no longer applied). The
/// record of 0005 stays what the oldest backup recording it says (a newer
/// manifest that leaves it out, all that told the rollback, is what a
/// planted one does too), so the fix is a new migration: 0005's file
/// deleted (no database has it applied now), the fix as 0006, applied, and
/// every later `migrate` and `migrate --check` go on. Before, the record
/// started anew at a manifest without 0005, which a planted one dated
/// after every real backup used to erase the record of an edit. `status`
/// and `migrate --check` without an environment compare the record of
/// 0005 only with a database that has it applied (the newest verified
/// backup's): they used to say 0005 was lacking, and `migrate --check`
/// FAILED.
#[test]
fn a_migration_rolled_back_is_fixed_in_a_new_migration_and_migrate_goes_on() {
    let (sb, migrations) = a_migration_applied_and_rolled_back();
    // 0005 is applied nowhere now: its fix is a new migration.
    std::fs::remove_file(migrations.join("0005_extra.sql")).unwrap();
    std::fs::write(
        migrations.join("0006_extra.sql"),
        "CREATE TABLE extra (a TEXT, b TEXT);\n",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    std::fs::write(
        migrations.join("0007_more.sql"),
        "CREATE TABLE more (a TEXT);\n",
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert!(
        run.ok,
        "the fix went in a new migration; migrate should not be refused:\n{}",
        run.all()
    );
    sb.xtask(&["migrate", "local", "--check"]).assert_ok();
    let check = sb.xtask(&["migrate", "--check"]);
    assert!(
        check.ok && !check.all().contains("0005_extra.sql"),
        "no database has 0005 applied:\n{}",
        check.all()
    );
    let status = sb.xtask(&["status", "--env", "local"]);
    assert!(
        !status.all().contains("0005_extra.sql") && !status.all().contains("checkout lacks"),
        "no database has 0005 applied:\n{}",
        status.all()
    );
}
