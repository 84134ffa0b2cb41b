//! Shapes found by generating many schemas and data sets D1 accepts (STRICT
//! and WITHOUT ROWID tables, generated columns, every affinity and storage
//! class, odd identifiers, AUTOINCREMENT gaps, foreign-key cycles, triggers,
//! 100-column and 200+-table databases), applying them with the real
//! wrangler, and round-tripping each through backup, verify, diff and
//! restore (atkBP's report). Each test here failed when it was written.

use crate::common;

use common::*;

/// The REAL values of `table.column` in the local D1, read from its SQLite
/// file as the app's SQLite holds them (rowid order).
fn reals(sb: &Sandbox, table: &str, column: &str) -> Vec<f64> {
    let conn = rusqlite::Connection::open_with_flags(
        sb.local_d1_file(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT {column} FROM {table} ORDER BY rowid"))
        .unwrap();
    stmt.query_map([], |r| r.get::<_, f64>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The user stored `-0.0` in columns that keep the type they are given (no
/// declared type, BLOB, a STRICT table's ANY), as `DEFAULT -0.0` or an
/// INSERT does, took `backup local` (GOOD), and restored it, into the same
/// database and into a new one: every value came back as `+0.0`, a
/// different double (`atan2(v, -1)` gives pi instead of -pi, a Worker sees
/// `0` instead of `-0`), while verify, the restore's content check and
/// `diff BACKUP live:local` all said the data was the same. It should come
/// back with its sign, as every other REAL does. Cause: `d1-dump`'s
/// `write_cell` writes a REAL through `js_cell_number`, which prints -0 as
/// JavaScript does, `0`, and then adds `.0` to keep it REAL; it never writes
/// the sign. The digest (`d1_core::digest::canonical`, by bits) would see
/// the difference, but it is computed from the dump, not from the source.
#[test]
fn negative_zero_in_a_column_that_keeps_its_type_backs_up_and_restores_with_its_sign() {
    let shape = "CREATE TABLE zeros (id INTEGER PRIMARY KEY, v, b BLOB, d DEFAULT -0.0);\n\
                 CREATE TABLE strict_zeros (id INTEGER PRIMARY KEY, a ANY) STRICT;\n";
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("migrations/0005_shape.sql"), shape).unwrap();
    sb.apply_migrations();
    sb.execute_sql(
        "INSERT INTO zeros (id, v, b) VALUES (1, -0.0, -0.0), (2, 0.0, 0.0);\n\
         INSERT INTO strict_zeros VALUES (1, -0.0);",
    );
    let signs = |sb: &Sandbox| {
        let mut all = Vec::new();
        for (t, c) in [
            ("zeros", "v"),
            ("zeros", "b"),
            ("zeros", "d"),
            ("strict_zeros", "a"),
        ] {
            all.extend(reals(sb, t, c).iter().map(|x| (t, c, x.is_sign_negative())));
        }
        all
    };
    let before = signs(&sb);
    assert!(before.iter().any(|(_, _, neg)| *neg), "setup: {before:?}");

    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let path = sb.backups().join(&name);

    // Into the same database, after a change.
    sb.execute_sql("DELETE FROM strict_zeros;");
    restore_replacing(&sb, "latest:local").assert_ok();
    assert_eq!(
        signs(&sb),
        before,
        "restored in place: the sign of zero was lost"
    );

    // Into a brand-new local database of another checkout.
    let target = Sandbox::new();
    std::fs::write(target.path().join("migrations/0005_shape.sql"), shape).unwrap();
    target
        .xtask(&["restore", path.to_str().unwrap(), "--to", "local", "--yes"])
        .assert_ok();
    assert_eq!(
        signs(&target),
        before,
        "restored into a new database: the sign of zero was lost"
    );
}

/// The user's migration seeds rows whose foreign keys are deferred
/// (`DEFERRABLE INITIALLY DEFERRED`), a child before its parent, as a
/// foreign-key cycle needs. D1 (and the local D1, and the loopback) run
/// each migration as one query, in one transaction, so the migration
/// applies. Then `backup local` said `1 skipped (triggers)`, and a restore
/// warned that the backup's triggers "were not checked against its
/// migrations (the migration … does not run in SQLite here: FOREIGN KEY
/// constraint failed)": the check that keeps a trigger no migration makes
/// out of the database was off for every backup of this project, and a
/// restore went ahead without it. It should run the migrations as D1
/// does, so the check runs and passes. Cause:
/// `xtask/src/steps/migrations.rs`, `run_in_memory`: each migration runs
/// with `execute_batch` in autocommit, one transaction per statement, so a
/// deferred foreign key is checked at the end of each statement.
#[test]
fn a_migration_that_seeds_rows_with_deferred_foreign_keys_keeps_the_trigger_check_on() {
    let sb = sandbox_with_a_seeded_ring();

    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    assert!(
        !backup.all().contains("skipped (triggers)"),
        "the backup's verify skipped the trigger check:\n{}",
        backup.all()
    );
    let name = only_backup(&sb);
    let m = manifest_for(&sb, &name);
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");

    let restore = restore_replacing(&sb, "latest:local");
    restore.assert_ok();
    assert!(
        !restore.all().contains("were not checked"),
        "the restore went ahead without checking the backup's triggers:\n{}",
        restore.all()
    );

    // The runbook's path, a data-only backup into a brand-new database with
    // `--clean`, stopped: "a clean restore ... must know that schema".
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let data_only = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql") && f != &name)
        .max()
        .unwrap();
    let target = Sandbox::new();
    std::fs::copy(
        sb.path().join("migrations/0005_ring.sql"),
        target.path().join("migrations/0005_ring.sql"),
    )
    .unwrap();
    let path = sb.backups().join(&data_only);
    target
        .xtask(&[
            "restore",
            path.to_str().unwrap(),
            "--to",
            "local",
            "--clean",
            "--yes",
        ])
        .assert_ok();
    let counts = target
        .query("SELECT (SELECT count(*) FROM ring_a) AS a, (SELECT count(*) FROM ring_b) AS b");
    assert_eq!(
        counts,
        vec![vec![serde_json::json!({"a": 1, "b": 1})]],
        "the clean restore brought the rows back"
    );
}

/// prod holds an integer beyond 2^53 in a plain INTEGER column (a
/// nanosecond timestamp, a snowflake id). The user ran `cargo xtask backup
/// prod` (GOOD, no warning) and restored it into staging (`--replace`, its
/// content check passed, no warning): staging holds another number,
/// 1700000000123456800 for 1700000000123456789, and `diff BACKUP
/// live:staging` says the same. D1's own export writes every integer
/// through a JavaScript number (README, "Local backups without wrangler":
/// remote backups "keep D1's format with its losses"), so the backup cannot
/// hold the value; but nothing tells the operator, at the backup or at the
/// restore, that a value was changed. In a STRICT INTEGER column the same
/// rounding of 9223372036854775807 makes the backup BAD ("cannot store
/// REAL value in INTEGER column"), which at least is said, though not why.
/// It should warn at the backup, naming the table (and record it in the
/// manifest), or bring the value back exactly. Cause: `d1-dump`'s
/// `write_cell` (D1's dumper, faithfully) and, in the tool,
/// `xtask/src/steps/backup.rs`, which for a remote export never asks D1
/// whether a column holds integers beyond 2^53 (one `SELECT` per table of
/// `typeof(c)='integer' AND abs(c) > 9007199254740992` would say).
#[test]
fn a_remote_backup_that_rounds_an_integer_beyond_2_53_says_so() {
    let remote = common::remote::Remote::new(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, nanos INTEGER);\n\
         INSERT INTO events VALUES (1, 1700000000123456789);",
    );
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod", "--json"]);
    backup.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&backup.stdout).unwrap();
    assert_eq!(
        json["result"]["wide_integers"],
        serde_json::json!({"events": 1}),
        "{}",
        backup.all()
    );
    let restore = restored_to_staging(&remote, home.path());
    let staging = query_file(&remote.staging, "SELECT nanos FROM events WHERE id = 1");
    let exact = staging == vec![vec![serde_json::json!(1700000000123456789_i64)]];
    let warned = |run: &Run| {
        run.all()
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains("events"))
    };
    assert!(
        exact || warned(&backup),
        "staging holds {staging:?} for prod's 1700000000123456789, and nothing said so:\n\
         backup:\n{}\nrestore:\n{}",
        backup.all(),
        restore.all()
    );
    // The restore, days later, says it too, from what the manifest records.
    assert!(
        exact
            || restore
                .stdout
                .lines()
                .any(|l| l.contains("ROUNDED?") && l.contains("events (1)")),
        "the restore's plan does not say the backup may hold rounded integers:\n{}",
        restore.all()
    );
    // A native local export writes them exactly, and says nothing.
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, nanos INTEGER);\
         INSERT INTO events VALUES (1, 1700000000123456789);",
    );
    let local = sb.xtask(&["backup", "local"]);
    local.assert_ok();
    assert!(
        !local.all().contains("rounds such an integer"),
        "a local backup, which holds the integer exactly, warns of rounding:\n{}",
        local.all()
    );
}

/// The warning a remote backup gives when D1's export may have rounded an
/// integer, for the roads that round one and were not counted.
/// A local D1 whose migration `0005_ring.sql` makes two tables that
/// reference each other under deferred foreign keys and seeds a row in
/// each, as D1 applies it: one transaction.
pub fn sandbox_with_a_seeded_ring() -> Sandbox {
    let ring = "CREATE TABLE ring_a (id INTEGER PRIMARY KEY, \
                b_id INTEGER REFERENCES ring_b(id) DEFERRABLE INITIALLY DEFERRED);\n\
                CREATE TABLE ring_b (id INTEGER PRIMARY KEY, \
                a_id INTEGER REFERENCES ring_a(id) DEFERRABLE INITIALLY DEFERRED);\n\
                INSERT INTO ring_a VALUES (1, 1);\n\
                INSERT INTO ring_b VALUES (1, 1);\n";
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("migrations/0005_ring.sql"), ring).unwrap();
    sb.apply_migrations();
    sb
}

/// The one backup of prod restored into staging with `--replace`, as it
/// went.
pub fn restored_to_staging(remote: &common::remote::Remote, home: &std::path::Path) -> Run {
    let path = remote.sb.backups().join(only_backup(&remote.sb));
    let restore = remote.xtask(
        home,
        &[
            "restore",
            path.to_str().unwrap(),
            "--to",
            "staging",
            "--replace",
            "--yes",
        ],
    );
    restore.assert_ok();
    restore
}

pub fn remote_backup_of(sql: &str) -> (common::remote::Remote, tempfile::TempDir, Run) {
    let remote = common::remote::Remote::new(sql);
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod"]);
    (remote, home, backup)
}

/// prod holds 9007199254740993 (2^53 + 1, a snowflake id just past the
/// line) in an INTEGER column. The user ran `cargo xtask backup prod`:
/// GOOD, and no warning, though the backup holds 9007199254740992, another
/// number (D1's export writes it through a JavaScript number, which rounds
/// 2^53 + 1 to 2^53). A restore brings back the wrong id and its plan says
/// nothing (`ROUNDED?`). It should warn, as it does for 9007199254740995.
/// Cause: `crates/d1-core/src/digest.rs`, `digest_and_wide`, counts
/// integers `> 2^53` in the backup; but what the export rounded lands ON
/// ±2^53 too, and the backup holds only the rounded value, so ±2^53 itself
/// may be a rounding and must be counted (`>=`).
#[test]
fn a_remote_backup_of_an_integer_that_rounds_to_2_53_says_so() {
    let (_remote, _home, backup) = remote_backup_of(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, snowflake INTEGER);\n\
         INSERT INTO events VALUES (1, 9007199254740993);\n\
         INSERT INTO events VALUES (2, -9007199254740993);",
    );
    backup.assert_ok();
    assert!(
        backup
            .all()
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains("events (2)")),
        "the backup holds ±9007199254740992 for prod's ±9007199254740993 and said nothing:\n{}",
        backup.all()
    );
}

/// prod holds 9223372036854775807 (i64::MAX, a "never" sentinel) in a
/// plain INTEGER column and in a column with no type, and i64::MIN
/// (-9223372036854775808, which JavaScript prints -9223372036854776000,
/// another REAL to SQLite). The user ran
/// `cargo xtask backup prod`: GOOD, and no warning. The backup holds
/// 9.223372036854776e18, a REAL: the export wrote 9223372036854775808,
/// which SQLite reads as a REAL since it does not fit an integer, so a
/// restore changes both the value and its type (`typeof` is 'real', `=
/// 9223372036854775807` no longer matches), and its plan says nothing. It
/// should warn, naming the table, as it does for an integer it rounds into
/// another integer. Cause: `crates/d1-core/src/digest.rs`,
/// `digest_and_wide`, counts only INTEGER values beyond 2^53; a rounding
/// past ±2^63 arrives as a REAL of magnitude 2^63 or more, which no integer
/// holds and which is not counted.
#[test]
fn a_remote_backup_that_rounds_an_integer_past_2_63_into_a_real_says_so() {
    let (_remote, _home, backup) = remote_backup_of(
        "CREATE TABLE sentinels (id INTEGER PRIMARY KEY, until INTEGER, anything);\n\
         INSERT INTO sentinels VALUES (1, 9223372036854775807, 9223372036854775807);\n\
         INSERT INTO sentinels VALUES (2, -9223372036854775808, NULL);",
    );
    backup.assert_ok();
    assert!(
        backup
            .all()
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains("sentinels (3)")),
        "the backup holds a REAL for prod's 9223372036854775807 (twice) and \
         -9223372036854775808 and said nothing:\n{}",
        backup.all()
    );
}

/// prod holds 9223372036854775807 in a STRICT table's INTEGER column (or
/// -9223372036854775808 in an INT one). The
/// user ran `cargo xtask backup prod`: BAD ("cannot store REAL value in
/// INTEGER column"), and nothing says why (D1's export rounded the integer
/// past 2^63) nor what to do (a local backup keeps it; Time Travel brings
/// it back; the backup can never be GOOD, so `latest` and `migrate` stay
/// stuck). It should say that the export rounded an integer beyond 2^53,
/// naming the table, as a GOOD backup's warning does. Cause:
/// `xtask/src/steps/backup.rs`, `verify_written` (the `wide_integers`
/// warning is given from the verify report's count, which a load that fails
/// never makes).
#[test]
fn a_remote_backup_bad_because_a_rounded_integer_no_longer_fits_a_strict_column_says_why() {
    // SQLite names the column's declared type: `INTEGER` or `INT`.
    for (declared, value) in [
        ("INTEGER", "9223372036854775807"),
        ("INT", "-9223372036854775808"),
    ] {
        let (_remote, _home, backup) = remote_backup_of(&format!(
            "CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount {declared}) STRICT;\n\
             INSERT INTO ledger VALUES (1, {value});"
        ));
        assert!(!backup.ok, "the backup is not BAD:\n{}", backup.all());
        let all = backup.all();
        let error: Vec<&str> = all.lines().filter(|l| l.starts_with("error:")).collect();
        assert!(
            error
                .iter()
                .any(|l| l.contains("2^53") && l.contains("Time Travel")),
            "{declared} {value}: a BAD backup's error does not say D1's export rounded an \
             integer, nor what keeps it:\n{}",
            backup.all()
        );
    }
}

/// The user took `backup local`, then a bulk job wrote `-0.0` where a
/// column held `0.0` (a balance negated, `v * -1`), and took another. The
/// restore and the digests tell the two doubles apart (they differ in sign;
/// `generated_shapes::negative_zero_in_a_column_that_keeps_its_type_backs_up_and_restores_with_its_sign`),
/// and the two backups' content digests differ; but `diff A B` said
/// "Result: the same" (exit 0), listing the table as unchanged. It should
/// report the row changed (exit 1), as README says: "a changed value is one
/// of another type or other bytes". Cause: `xtask/src/commands/diff.rs`,
/// `KeyMatch::changed`, compares each column with `x.c IS NOT y.c COLLATE
/// BINARY`, and SQL's `=` holds `0.0 = -0.0`.
#[test]
fn a_diff_of_two_backups_tells_negative_zero_from_zero() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_shape.sql"),
        "CREATE TABLE balances (id INTEGER PRIMARY KEY, v);\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO balances VALUES (1, 0.0), (2, 2.5);");
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql("UPDATE balances SET v = -0.0 WHERE id = 1;");
    assert!(
        reals(&sb, "balances", "v")[0].is_sign_negative(),
        "setup: the local D1 keeps -0.0"
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let sql: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql"))
        .collect();
    assert_eq!(sql.len(), 2, "{sql:?}");
    let a = sb.backups().join(&sql[0]);
    let b = sb.backups().join(&sql[1]);
    let diff = sb.xtask(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(
        diff.code,
        Some(1),
        "diff calls 0.0 and -0.0 the same:\n{}",
        diff.all()
    );
    assert!(
        diff.stdout
            .lines()
            .any(|l| l.contains("balances") && l.contains("1 changed")),
        "diff does not report balances' row 1 changed:\n{}",
        diff.all()
    );
}

/// The error of a backup of `remote`'s prod that failed (exit 1) for an
/// object whose text ends in a `--` comment, having named it (`cause`)
/// and the way out ([`refused_over_a_comment`]).
#[track_caller]
fn failed_over_a_comment<'r>(
    remote: &common::remote::Remote,
    backup: &'r Run,
    cause: &str,
) -> &'r str {
    let way_out = "recreate it without the comment at its end";
    refused_over_a_comment(&remote.sb, backup, &[cause, way_out])
}

/// prod holds a view whose text ends in a `--` comment (a `schema.sql`
/// whose `;` stood on the line after the comment): D1 keeps the comment
/// without its line break, and its export writes the view last, as
/// `... -- soft-deleted rows hidden;`, whose `;` is inside the comment.
/// `cargo xtask backup prod` cannot read that export, and fails, but said
/// "the file is probably truncated": the operator takes it for a transfer
/// cut short and runs it again, night after night, and prod has no backup.
/// It should name the view and what to do.
#[test]
fn a_remote_backup_of_a_view_ending_in_a_line_comment_says_why_its_export_cannot_be_read() {
    let (remote, _home, backup) = remote_backup_of(
        "CREATE TABLE shifts (id INTEGER PRIMARY KEY, deleted_at TEXT);\n\
         CREATE VIEW live_shifts AS\n  SELECT id FROM shifts\n  \
         WHERE deleted_at IS NULL -- soft-deleted rows hidden\n;",
    );
    failed_over_a_comment(&remote, &backup, "view live_shifts ends in a `--` comment");
}

/// prod holds an index whose text ends in a `--` comment, without its line
/// break, as D1 keeps one from a `schema.sql` run with `wrangler d1
/// execute --file` (set here through `writable_schema`, as SQLite itself
/// keeps the line break). D1's export writes `... -- live rows only;`,
/// and the next statement, a trigger, runs into the index's. `cargo xtask
/// backup prod` fails, but said the download or write "was probably cut
/// short (a full disk?)": the operator frees disk space and tries again,
/// night after night. It should name the index and its comment as the
/// cause, and the way out.
#[test]
fn a_remote_backup_of_an_index_ending_in_a_line_comment_names_it_not_a_full_disk() {
    let (remote, _home, backup) = remote_backup_of(
        "CREATE TABLE shifts (id INTEGER PRIMARY KEY, deleted_at TEXT);\n\
         CREATE INDEX shifts_live ON shifts (id) WHERE deleted_at IS NULL -- live rows only\n;\n\
         PRAGMA writable_schema = ON;\n\
         UPDATE sqlite_schema SET sql = rtrim(sql, char(10)) WHERE name = 'shifts_live';\n\
         PRAGMA writable_schema = OFF;",
    );
    failed_over_a_comment(&remote, &backup, "index shifts_live ends in a `--` comment");
}

/// prod holds a WITHOUT ROWID table with rows whose text ends in a `--`
/// comment. D1's export writes `... WITHOUT ROWID -- keyed;` and the
/// table's first INSERT runs into it: no object goes missing, so the
/// backup was written, its manifest recording no rows, and its
/// verification failed with a syntax error "expected 1, but the table is
/// missing", the file marked BAD, as if it were corrupt. It should name
/// the table and the way out, and keep nothing.
#[test]
fn a_remote_backup_of_a_table_with_rows_ending_in_a_line_comment_names_it_not_a_bad_file() {
    let (remote, _home, backup) = remote_backup_of(
        "CREATE TABLE sessions (token TEXT PRIMARY KEY, account_id INTEGER) WITHOUT ROWID \
         -- keyed\n;\n\
         INSERT INTO sessions VALUES ('t0',1),('t1',2);\n\
         PRAGMA writable_schema = ON;\n\
         UPDATE sqlite_schema SET sql = rtrim(sql, char(10)) WHERE name = 'sessions';\n\
         PRAGMA writable_schema = OFF;",
    );
    let error = failed_over_a_comment(&remote, &backup, "table sessions ends in a `--` comment");
    assert!(!error.contains("t0") && !error.contains("t1"), "{error}");
}

/// prod holding the index of `a_remote_backup_of_an_index_ending_in_a_line_comment_names_it_not_a_full_disk`.
pub(crate) const PROD_WITH_A_COMMENTED_INDEX: &str = "CREATE TABLE shifts (id INTEGER PRIMARY KEY, deleted_at TEXT);\n\
     CREATE INDEX shifts_live ON shifts (id) WHERE deleted_at IS NULL -- live rows only\n;\n\
     PRAGMA writable_schema = ON;\n\
     UPDATE sqlite_schema SET sql = rtrim(sql, char(10)) WHERE name = 'shifts_live';\n\
     PRAGMA writable_schema = OFF;";

/// The way out a remote backup's refusal of an object ending in a `--`
/// comment gives must be one that runs: the migration that recreates the
/// object applied with `migrate --no-backup` (its reason and prod's typed
/// confirmation), once Time Travel's bookmark now is noted.
#[track_caller]
pub(crate) fn says_the_way_that_works(remote: &common::remote::Remote, run: &Run) {
    refused_over_a_comment(
        &remote.sb,
        run,
        &[
            "index shifts_live ends in a `--` comment",
            "cargo xtask time-travel info prod",
            "cargo xtask migrate prod --no-backup --reason \"",
            "--confirm qbtime_db_prod",
        ],
    );
}

/// prod holds an index whose text ends in a `--` comment, and the user
/// wrote the migration that recreates it without the comment, as the
/// refusal of `backup prod` said. `cargo xtask migrate prod` refused it:
/// its pre-migration backup is refused for the same index, and said to
/// "recreate it ... in a migration, then back up again", which is what it
/// was asked to do and cannot. It should name a way that works (`migrate
/// --no-backup --reason` with prod's confirmation, after noting Time
/// Travel's bookmark), and that way should apply the migration, after
/// which `backup prod` works.
#[test]
fn a_migrate_refused_by_its_pre_migration_backup_over_a_commented_index_gives_a_way_that_works() {
    let remote = common::remote::Remote::new(PROD_WITH_A_COMMENTED_INDEX);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.sb.path().join("migrations/0005_shifts_live.sql"),
        "DROP INDEX shifts_live;\n\
         CREATE INDEX shifts_live ON shifts (id) WHERE deleted_at IS NULL;\n",
    )
    .unwrap();
    let confirm = ["--confirm", "qbtime_db_prod"];
    let migrate = remote.xtask(home.path(), &[&["migrate", "prod"][..], &confirm].concat());
    says_the_way_that_works(&remote, &migrate);
    assert_eq!(common::remote::counts(&remote.db)["d1_migrations"], 4);

    remote
        .xtask(home.path(), &["time-travel", "info", "prod"])
        .assert_ok();
    let reason = ["--no-backup", "--reason", "recreate shifts_live"];
    let args = [&["migrate", "prod"][..], &reason, &confirm].concat();
    remote.xtask(home.path(), &args).assert_ok();
    assert_eq!(common::remote::counts(&remote.db)["d1_migrations"], 5);
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
}

/// `with-backup prod` backs up through the same refusal: it too should
/// name the way that works, and run nothing.
#[test]
fn a_with_backup_refused_over_a_commented_index_gives_a_way_that_works() {
    let remote = common::remote::Remote::new(PROD_WITH_A_COMMENTED_INDEX);
    let home = tempfile::tempdir().unwrap();
    let marker = remote.sb.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let run = remote.xtask(
        home.path(),
        &["with-backup", "prod", "--", "sh", "-c", &touch],
    );
    says_the_way_that_works(&remote, &run);
    assert!(!marker.exists(), "the command ran: {}", run.all());
}
