//! atkBM: a week of an operator's days, judged by what the tool prints: a
//! Ctrl-C that lands while a new backup is verified, the age `status` gives
//! a stale backup against its `max_age`, and a restore plan of a database
//! that has grown to 150 tables.

use crate::common;

use common::*;

/// atkBM: the operator pressed Ctrl-C while `backup local` was verifying
/// the backup it had just written ("Backup written: …" was already on the
/// screen). The backup and its manifest stay, unverified (`list` says
/// `unverified`, `latest` passes it over), but the last line said
/// "error: interrupted by SIGINT: stopped, and removed what was unfinished;
/// the next run starts clean": nothing about the file left behind, nor
/// that it needs `cargo xtask verify`. It should say that the backup was
/// written but not verified, and give the verify command.
/// Cause: `verify_new_backup` (xtask/src/steps/backup.rs) records nothing
/// with `signals::changed` before the verification, so `main` falls back
/// to "the next run starts clean".
#[test]
fn ctrl_c_while_a_new_backup_is_verified_says_it_stays_unverified() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    // Big enough that the verification takes a moment (about a second).
    sb.execute_sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)
         INSERT INTO notes SELECT x, printf('%.*c', 200, 'n') || x FROM c;",
    );
    let run = interrupt_once_printed(sb.xtask_command(&["backup", "local"]), "Backup written: ");
    assert_eq!(run.code, Some(130), "{}", run.all());
    let name = only_backup(&sb);
    assert!(
        manifest_for(&sb, &name)["verification"].is_null(),
        "the verification was interrupted, so the backup is unverified:\n{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("the next run starts clean"),
        "an unverified backup was left behind, yet the error says the next run starts \
         clean:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains(&name)
            && run.stderr.contains("unverified")
            && run.stderr.contains("cargo xtask verify"),
        "the error names the backup left unverified and the command that verifies it:\n{}",
        run.all()
    );
}

/// atkBM: the scheduled prod backup missed a night. With the shipped
/// `max_age = "26h"`, a newest backup 27 hours old reads
/// "newest verified backup …, 1d old (max 26h): STALE" and "error: prod's
/// newest verified backup is 1d old, older than its max_age 26h": 1d is
/// less than 26h, so the line contradicts itself, and every age from 24h
/// to 47h reads the same. It should give an age that can be compared with
/// the max_age (27h, or 1d 3h).
/// Cause: `EnvStatus::render` and `say_failures` (xtask/src/steps/status.rs)
/// use `d1_core::wording::age`, which rounds down to whole days.
#[test]
fn status_gives_a_stale_backups_age_that_can_be_compared_with_max_age() {
    let (sb, name) = sandbox_with_a_backup();
    std::fs::write(
        sb.path().join("backups.toml"),
        "[local]\nmax_age = \"26h\"\n",
    )
    .unwrap();
    redate(
        &sb,
        &name,
        chrono::Utc::now() - chrono::Duration::minutes(27 * 60 + 10),
    );

    let run = sb.xtask(&["status", "--env", "local"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let told = |text: &str| text.contains("27h old") || text.contains("1d 3h old");
    assert!(
        told(&run.stdout) && run.stdout.contains("(max 26h): STALE"),
        "the report gives the backup's age as 27 hours, not `1d`:\n{}",
        run.all()
    );
    assert!(
        told(&run.stderr) && !run.stderr.contains("is 1d old"),
        "the error gives the backup's age as 27 hours, not `1d`:\n{}",
        run.all()
    );
}

/// atkBM: a year on, the database has grown by 150 tables since the
/// backup the operator restores (`restore … --to local --replace`). The
/// plan's `drops` line named all 161 tables and triggers, and its `LOSES`
/// line all 150 tables the backup does not have: two lines of some 8,000
/// characters each, where the README promises that "a message that names
/// tables, triggers or migrations names the first ten and then how many
/// more". `-v`, the full plan, still names them all.
/// Cause: `print_plan`'s replace lines (xtask/src/steps/restore/plan_text.rs, the
/// `drops` and `LOSES` lines) join every name instead of using
/// `d1_core::wording::listed`.
#[test]
fn a_restore_plan_over_150_tables_sums_up_the_names() {
    let (sb, name) = sandbox_with_a_backup();
    let mut sql = String::new();
    for t in 0..150 {
        sql.push_str(&format!(
            "CREATE TABLE \"ledger_entries_of_a_long_descriptive_name_{t:03}\" \
             (id INTEGER PRIMARY KEY, amount INTEGER);\n"
        ));
    }
    sb.execute_sql(&sql);

    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--dry-run"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let out = run.all();
    assert!(
        out.contains("drops") && out.contains("LOSES"),
        "the plan says what it drops and loses:\n{out}"
    );
    let named = (0..150)
        .filter(|t| out.contains(&format!("ledger_entries_of_a_long_descriptive_name_{t:03}")))
        .count();
    let longest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        named <= 20 && longest <= 1000,
        "150 tables are summed up, not each named ({named} of 150 named, longest line \
         {longest} characters):\n{out}"
    );
    assert!(
        out.contains("more"),
        "the plan says how many more there are:\n{out}"
    );
    // `-v` is the full plan: every name.
    let run = sb.xtask(&[
        "-v",
        "restore",
        &name,
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let out = run.all();
    assert!(
        (0..150)
            .all(|t| out.contains(&format!("ledger_entries_of_a_long_descriptive_name_{t:03}"))),
        "-v names every table the restore drops:\n{out}"
    );
}

/// rvAZ: the scheduled prod backup ran late, and `status` was run 26h10m
/// after the last good one, with the shipped `max_age = "26h"` (and the
/// same with `max_age = "24h"` at 24h10m). The report read "…, 1d 2h old
/// (max 26h): STALE" and the error "newest verified backup is 1d 2h old,
/// older than its max_age 26h" (and "1d old (max 24h)"): an age equal to
/// the max_age called older than it, the self-contradiction atkBM's fix
/// meant to end, now for the first hour after every max_age. The age shown
/// against a max_age it exceeds should be seen to exceed it (its minutes,
/// `1d 2h 10m`).
/// Cause: `EnvStatus::render` and `say_failures`
/// (xtask/src/steps/status.rs) use `d1_core::wording::age_to_the_hour`,
/// which floors to the hour, and a max_age is whole hours or days.
#[test]
fn status_in_the_first_hour_past_max_age_gives_an_age_past_it() {
    for (max, minutes, floored) in [("26h", 26 * 60 + 10, "1d 2h"), ("24h", 24 * 60 + 10, "1d")] {
        let (sb, name) = sandbox_with_a_backup();
        std::fs::write(
            sb.path().join("backups.toml"),
            format!("[local]\nmax_age = \"{max}\"\n"),
        )
        .unwrap();
        redate(
            &sb,
            &name,
            chrono::Utc::now() - chrono::Duration::minutes(minutes),
        );

        let run = sb.xtask(&["status", "--env", "local"]);
        assert_eq!(run.code, Some(1), "{}", run.all());
        assert!(
            run.stdout.contains(&format!("(max {max}): STALE")),
            "{}",
            run.all()
        );
        assert!(
            !run.stdout.contains(&format!("{floored} old")),
            "the report calls a backup {floored} old, no older than its max_age {max}, STALE:\n{}",
            run.all()
        );
        assert!(
            !run.stderr.contains(&format!("is {floored} old")),
            "the error calls {floored} older than the max_age {max}:\n{}",
            run.all()
        );
    }
}
