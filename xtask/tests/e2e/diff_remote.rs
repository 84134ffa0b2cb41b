//! `cargo xtask diff` with a live remote side: the real wrangler exports
//! prod from the loopback D1 API, and a failure injected in that export
//! leaves nothing behind.

use crate::common;

use common::remote::Remote;
use common::*;

/// How many exports the loopback has been asked for.
fn exports(remote: &Remote) -> usize {
    let requests = remote.server.requests();
    requests.iter().filter(|q| q.contains("/export")).count()
}

/// Every file in backups/ with its bytes.
fn snapshot(sb: &Sandbox) -> Vec<(String, Vec<u8>)> {
    sb.backup_files()
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(sb.backups().join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect()
}

#[test]
fn a_backup_against_live_prod_reports_what_changed_and_a_failed_export_changes_nothing() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let backup = remote.backup_prod(home.path());

    // After the backup, prod changes: one customer edited, one added.
    let conn = rusqlite::Connection::open(&remote.db).unwrap();
    conn.execute_batch(
        "UPDATE customers SET email = 'moved-away@example.net' WHERE id = 1;\n\
         INSERT INTO customers (company_id, qbt_customer_id, name, email) \
         VALUES (2, 'jc-77', 'Garage door', 'garage@example.com');",
    )
    .unwrap();
    drop(conn);
    let prod_before = std::fs::read(&remote.db).unwrap();
    let kept = snapshot(&remote.sb);
    let exports_before = exports(&remote);

    let run = remote.xtask(home.path(), &["diff", &backup, "live:prod"]);
    assert_eq!(run.code, Some(1), "differences exit 1:\n{}", run.all());
    assert!(
        exports(&remote) > exports_before,
        "live:prod was not exported"
    );
    let out = &run.stdout;
    assert!(out.contains("customers"), "{out}");
    assert!(
        out.contains("1 added") && out.contains("1 changed"),
        "the report says what changed:\n{out}"
    );
    for value in [
        "moved-away@example.net",
        "garage@example.com",
        "h@example.com",
    ] {
        assert!(!run.all().contains(value), "a value was printed: {value}");
    }
    // Read-only: no backup recorded, no file left, prod untouched.
    assert_eq!(snapshot(&remote.sb), kept);
    assert_eq!(std::fs::read(&remote.db).unwrap(), prod_before);
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );

    // The export fails part-way: the diff could not run, and nothing changed.
    remote.server.set_faults(d1_loopback::Faults {
        export_api_error: Some("D1 could not start the export".into()),
        ..Default::default()
    });
    let run = remote.xtask(home.path(), &["diff", &backup, "live:prod"]);
    assert_eq!(
        run.code,
        Some(2),
        "a failed export is could-not-run:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("D1 could not start the export"),
        "{}",
        run.all()
    );
    assert_eq!(snapshot(&remote.sb), kept);
    assert_eq!(std::fs::read(&remote.db).unwrap(), prod_before);
}

/// prod holding `prod` (after the migrations), and a local backup of the
/// local D1 holding `local`: the remote, its wrangler home, and the
/// backup's name.
fn prod_and_a_local_backup(prod: &str, local: &str) -> (Remote, tempfile::TempDir, String) {
    let remote = Remote::new(prod);
    let home = tempfile::tempdir().unwrap();
    remote.sb.apply_migrations();
    remote.sb.execute_sql(local);
    remote.sb.xtask(&["backup", "local"]).assert_ok();
    let backup = only_backup(&remote.sb);
    (remote, home, backup)
}

/// `diff A B --table k` exits 0: prod holds what the backup holds.
#[track_caller]
fn diff_says_the_same(remote: &Remote, home: &std::path::Path, [a, b]: [&str; 2]) {
    let run = remote.xtask(home, &["diff", a, b, "--table", "k"]);
    assert_eq!(
        run.code,
        Some(0),
        "prod holds what the backup holds, yet:\n{}",
        run.all()
    );
}

/// prod and the local D1 hold the same rows in a column with no type (which
/// keeps the type each value is given): 1.0 (a REAL) and -0.0. The user
/// took a local backup (which keeps each value exactly) and ran `cargo
/// xtask diff BACKUP live:prod --table k`: "DIFFERENT", 2 rows changed, exit
/// 1, though prod holds exactly what the backup holds. D1's export of prod
/// writes 1.0 as `1` (an INTEGER once loaded) and -0.0 as `0`, so the live
/// side the diff loads is not prod. It should not report the export's own
/// rewriting as a change in the database.
#[test]
fn a_local_backup_against_live_prod_does_not_report_whole_reals_the_export_rewrote() {
    let rows = "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
                INSERT INTO k VALUES (1, 1.0), (2, -0.0), (3, 'x');";
    let (remote, home, backup) = prod_and_a_local_backup(rows, rows);
    diff_says_the_same(&remote, home.path(), [&backup, "live:prod"]);
}

/// As above, against a backup of prod rather than prod now: D1's export
/// wrote that backup, so it holds 1.0 as `1` and -0.0 as `0` as well, and
/// the diff of the two backups reported both rows changed.
#[test]
fn a_local_backup_against_a_backup_of_prod_does_not_report_whole_reals_the_export_rewrote() {
    let rows = "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
                INSERT INTO k VALUES (1, 1.0), (2, -0.0), (3, 'x');";
    let (remote, home, backup) = prod_and_a_local_backup(rows, rows);
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let of_prod = { remote.sb.backup_files().into_iter() }
        .find(|f| f.starts_with("backup-prod-") && f.ends_with(".sql"))
        .unwrap_or_else(|| panic!("no backup of prod: {:?}", remote.sb.backup_files()));
    diff_says_the_same(&remote, home.path(), [&backup, &of_prod]);
    diff_says_the_same(&remote, home.path(), [&of_prod, &backup]);
}

/// As above, in a table whose key holds NULL, whose rows are matched by all
/// their values: the row holding 1.0 was reported removed, and the one
/// holding `1` (as the export wrote it) added.
#[test]
fn a_local_backup_against_live_prod_does_not_report_rows_matched_by_values_the_export_rewrote() {
    let rows = "CREATE TABLE k (id PRIMARY KEY, u);\n\
                INSERT INTO k VALUES (NULL, 1.0), (2, -0.0), (3.0, 'x');";
    let (remote, home, backup) = prod_and_a_local_backup(rows, rows);
    diff_says_the_same(&remote, home.path(), [&backup, "live:prod"]);
    // A number that really changed is still a row removed and one added.
    let changed = "CREATE TABLE k (id PRIMARY KEY, u);\n\
                   INSERT INTO k VALUES (NULL, 1.5), (2, -0.0), (3.0, 'x');";
    let (remote, home, backup) = prod_and_a_local_backup(changed, rows);
    let run = remote.xtask(home.path(), &["diff", &backup, "live:prod", "--table", "k"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.all().contains("1 added, 1 removed, 0 changed"),
        "{}",
        run.all()
    );
}

/// As above, but the whole REAL is the row's key, in a key column with no
/// type: `k (k PRIMARY KEY, v)` holding 1.0. prod holds exactly what the
/// backup holds; D1's export writes the key as `1`, an INTEGER once loaded.
/// The diff should not report the row as removed and added.
#[test]
fn a_local_backup_against_live_prod_does_not_report_a_whole_real_key_the_export_rewrote() {
    let rows = "CREATE TABLE k (k PRIMARY KEY, v TEXT);\n\
                INSERT INTO k VALUES (1.0, 'a'), (2.5, 'b');";
    let (remote, home, backup) = prod_and_a_local_backup(rows, rows);
    diff_says_the_same(&remote, home.path(), [&backup, "live:prod"]);
}

/// The diff against live:prod must still report a REAL that really changed
/// (1.5 to 1), a text '1' against an integer 1, and NULL against 0; the
/// text, `--json` and `--show-values` agree, and the exit code is 1.
#[test]
fn a_local_backup_against_live_prod_still_reports_numbers_that_really_changed() {
    let rows = "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
                INSERT INTO k VALUES (1, 1.5), (2, '1'), (3, NULL), (4, 1.0);";
    let (remote, home, backup) = prod_and_a_local_backup(
        "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
         INSERT INTO k VALUES (1, 1), (2, 1), (3, 0), (4, 1);",
        rows,
    );
    let run = remote.xtask(
        home.path(),
        &[
            "diff",
            &backup,
            "live:prod",
            "--table",
            "k",
            "--json",
            "--show-values",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("\"count\": 3"), "{}", run.all());
    let run = remote.xtask(home.path(), &["diff", &backup, "live:prod", "--table", "k"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.all().contains("0 added, 0 removed, 3 changed"),
        "{}",
        run.all()
    );
}

/// As above, with an integer key beyond 2^53 (a snowflake id), which D1's
/// export writes rounded to a double: prod holds exactly what the backup
/// holds, and the diff should not report the row as removed and added.
#[test]
fn a_local_backup_against_live_prod_does_not_report_a_big_integer_key_the_export_rounded() {
    let rows = "CREATE TABLE k (id INTEGER PRIMARY KEY, v TEXT);\n\
                INSERT INTO k VALUES (9007199254740993, 'a'), (2, 'b');";
    let (remote, home, backup) = prod_and_a_local_backup(rows, rows);
    for sides in [
        [backup.as_str(), "live:prod"],
        ["live:prod", backup.as_str()],
    ] {
        diff_says_the_same(&remote, home.path(), sides);
    }
}

/// prod, backed up yesterday, now holds a view whose text ends in a `--`
/// comment (a `schema.sql` run with `wrangler d1 execute --file`; D1
/// keeps the comment without its line break). `cargo xtask diff BACKUP
/// live:prod` exported prod (D1 answers no other query meanwhile) and then
/// could not compare (exit 2), saying "the dump ends inside an
/// unterminated statement starting on line 136: line 138 ends in a `--`
/// comment ...": the lines of an export it does not keep, not the view,
/// and "`cargo xtask backup local` writes it so that it loads", which no
/// remote database can use. It should refuse before exporting, as `backup
/// prod` does, naming the view and the way out that works for prod; a
/// diff of the other tables by name (`--table`) still runs.
#[test]
fn a_diff_with_live_prod_holding_a_view_ending_in_a_line_comment_names_it_before_exporting() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let backup = remote.backup_prod(home.path());
    let conn = rusqlite::Connection::open(&remote.db).unwrap();
    conn.execute_batch(
        "CREATE TABLE shifts (id INTEGER PRIMARY KEY, deleted_at TEXT);\n\
         INSERT INTO shifts VALUES (1, NULL), (2, 'gone-2026');\n\
         CREATE VIEW live_shifts AS\n  SELECT id FROM shifts\n  \
         WHERE deleted_at IS NULL -- soft-deleted rows hidden\n;\n\
         PRAGMA writable_schema = ON;\n\
         UPDATE sqlite_schema SET sql = rtrim(sql, char(10)) WHERE name = 'live_shifts';\n\
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
    drop(conn);
    let exports_before = exports(&remote);
    let kept = snapshot(&remote.sb);

    let run = remote.xtask(home.path(), &["diff", &backup, "live:prod"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let error = { run.stderr.lines() }
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    for said in [
        "view live_shifts ends in a `--` comment",
        "cargo xtask migrate prod --no-backup --reason \"",
        "Nothing was exported",
    ] {
        assert!(error.contains(said), "{said:?} unsaid: {}", run.all());
    }
    for wrong in ["line 13", "unterminated", "backup local", "gone-2026"] {
        assert!(!error.contains(wrong), "{wrong:?} said: {}", run.all());
    }
    assert_eq!(exports(&remote), exports_before, "prod was exported");
    assert_eq!(snapshot(&remote.sb), kept, "backups/ changed");

    let run = remote.xtask(
        home.path(),
        &["diff", &backup, "live:prod", "--table", "shifts"],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("shifts"), "{}", run.all());
}

/// `diff latest:prod live:prod` of a prod holding `rows`: its output.
fn a_backup_of_prod_against_live_prod(rows: &str) -> Run {
    let remote = Remote::new(rows);
    let home = tempfile::tempdir().unwrap();
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let run = remote.xtask(home.path(), &["diff", "latest:prod", "live:prod"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    run
}

/// prod holds 1.0 in a column with no type and 9007199254740993 (2^53 + 1);
/// its backup records both (`whole_reals`, `wide_integers`). `diff` of the
/// backup against prod said "Result: the same": both sides are D1's
/// exports, which write 1.0 as `1` and round the integer alike, so a
/// restore of the backup (which brings back the INTEGER 1) would read the
/// same too. It should say what it compared and name the table whose
/// values may differ, never a value.
#[test]
fn a_backup_of_prod_holding_whole_reals_is_not_called_the_same_as_prod_unqualified() {
    let run = a_backup_of_prod_against_live_prod(
        "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
         INSERT INTO k VALUES (1, 1.0), (2, 9007199254740993);",
    );
    let result = { run.stdout.lines() }
        .find(|l| l.starts_with("Result:"))
        .unwrap_or_else(|| panic!("no result:\n{}", run.all()));
    assert!(
        result.contains("as D1's export shows them") && result.contains("may differ"),
        "{}",
        run.all()
    );
    assert!(result.contains(" k"), "the table is not named: {result}");
    assert!(!run.all().contains("9007199254740992"), "{}", run.all());
}

/// The control: values D1's export keeps; the diff says plainly that the
/// two are the same.
#[test]
fn a_backup_of_prod_holding_ordinary_values_is_the_same_as_prod() {
    let run = a_backup_of_prod_against_live_prod(
        "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
         INSERT INTO k VALUES (1, 1.5), (2, 'x');",
    );
    assert!(run.stdout.contains("Result: the same"), "{}", run.all());
    assert!(!run.all().contains("may differ"), "{}", run.all());
}
