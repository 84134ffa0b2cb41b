//! `cargo xtask restore` into local D1, end to end, with the real wrangler:
//! round trips that plain wrangler gets wrong, and every guard refusing
//! with nothing executed.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// Tables and data that plain export/import round trips get wrong, and a
/// trigger that counts rows (a clean restore must not count restored rows
/// again: the count, created first, is restored before them).
const TRICKY_MIGRATION: &str = r#"
CREATE TABLE tricky_count (n INTEGER NOT NULL);
CREATE TABLE tricky ("order" TEXT, "group" INTEGER, "select" BLOB, "from" REAL);
CREATE TRIGGER tricky_counted AFTER INSERT ON tricky BEGIN UPDATE tricky_count SET n = n + 1; END;
CREATE VIEW active_customers AS SELECT id, name FROM customers WHERE active = 1;
CREATE VIRTUAL TABLE customer_search USING fts5(name, email);
CREATE VIRTUAL TABLE report_search USING fts5(name, content='report_configs', content_rowid='id');
"#;

const TRICKY_ROWS: &str = r#"
INSERT INTO tricky_count VALUES (0);
INSERT INTO tricky VALUES ('a;b', 1, X'00010203', 1.5), ('line
break', NULL, NULL, -0.25), ('quote''s', 3, randomblob(60000), 2.0);
INSERT INTO notifications (account_id, company_id, kind, title, body)
  VALUES (1, 1, 'big', 'A row over 100 KB', hex(randomblob(80000)));
INSERT INTO customer_search (rowid, name, email) SELECT id, name, email FROM customers;
INSERT INTO report_search (report_search) VALUES ('rebuild');
"#;

fn source_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_tricky.sql"),
        TRICKY_MIGRATION,
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(TRICKY_ROWS);
    sb
}

/// An empty sandbox with the same migrations as the source.
fn target_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_tricky.sql"),
        TRICKY_MIGRATION,
    )
    .unwrap();
    sb
}

/// Everything a user could notice about a database: every row of every
/// table (sorted), the schema objects and sqlite_sequence.
fn snapshot(sb: &Sandbox) -> BTreeMap<String, Vec<String>> {
    let objects = sb.query(
        "SELECT type, name, tbl_name, sql FROM sqlite_master \
         WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name",
    );
    let mut snap = BTreeMap::new();
    snap.insert(
        "sqlite_master".to_owned(),
        objects[0].iter().map(|o| o.to_string()).collect(),
    );
    let tables: Vec<String> = objects[0]
        .iter()
        .filter(|o| o["type"] == "table" && !o["sql"].is_null())
        .filter(|o| !o["sql"].as_str().unwrap().starts_with("CREATE VIRTUAL"))
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    let sql = tables
        .iter()
        .map(|t| format!("SELECT * FROM \"{t}\""))
        .collect::<Vec<_>>()
        .join("; ");
    for (table, rows) in tables.iter().zip(sb.query(&sql)) {
        let mut rows: Vec<String> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if table == "d1_migrations" {
                    r["applied_at"] = Value::Null; // a clean restore applies them anew
                }
                r.to_string()
            })
            .collect();
        rows.sort();
        snap.insert(table.clone(), rows);
    }
    snap
}

/// Takes a backup and returns its file, whatever else is in backups/.
fn backup_named(sb: &Sandbox, extra: &[&str]) -> std::path::PathBuf {
    let before = sb.backup_files();
    let mut args = vec!["backup", "local"];
    args.extend_from_slice(extra);
    sb.xtask(&args).assert_ok();
    let new: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql") && !before.contains(f))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    sb.backups().join(&new[0])
}

fn backup(sb: &Sandbox, extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["backup", "local"];
    args.extend_from_slice(extra);
    sb.xtask(&args).assert_ok();
    sb.backups().join(only_backup(sb))
}

#[test]
fn round_trip_into_an_empty_local_d1_is_identical() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let before = snapshot(&source);

    let target = target_sandbox();
    let run = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("accounts references encryption_keys"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("split"),
        "the 160 KB row is split: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("recreates virtual table customer_search")
    );
    assert!(run.stdout.contains("[x] row counts"));
    assert_eq!(snapshot(&target), before);

    // The full-text indexes work after the rebuild, as D1 itself sees them.
    let hits = target.query_with_wrangler(
        "SELECT rowid FROM customer_search WHERE customer_search MATCH 'Henderson'; \
         SELECT rowid FROM report_search WHERE report_search MATCH 'weekly'",
    );
    assert_eq!(hits[0].len(), 1);
    assert_eq!(hits[1].len(), 1);
}

#[test]
fn round_trip_through_wrangler_execute_file_is_identical_too() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = target_sandbox();
    target
        .xtask(&[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "local",
            "--yes",
            "--via-wrangler",
        ])
        .assert_ok();
    assert_eq!(snapshot(&target), snapshot(&source));
    let db = target.local_d1_file();
    assert_eq!(mode_of(&db), 0o600);
    assert_eq!(mode_of(db.parent().unwrap()), 0o700);
}

/// rvAC: a restore into a local environment `--via-wrangler` checks its
/// content through `wrangler d1 export --local`, D1's export, not the
/// SQLite file; its `--json` result said `content_checked_through:
/// "sqlite_file"`, and its text report no "as D1's export shows them".
/// Both say what the check read through; a restore without it reads the
/// file, and says so.
#[test]
fn a_local_restore_through_wrangler_says_its_check_read_through_d1_export() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    for (via, through) in [(true, "d1_export"), (false, "sqlite_file")] {
        let target = target_sandbox();
        let mut args = vec!["restore", file.to_str().unwrap(), "--to", "local"];
        args.extend(["--yes", "--json"]);
        if via {
            args.push("--via-wrangler");
        }
        let run = target.xtask(&args);
        run.assert_ok();
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(doc["result"]["content_checked"], true, "{doc:#}");
        assert_eq!(doc["result"]["content_checked_through"], through, "{doc:#}");
        let said = run.stderr.contains("as D1's export shows them");
        assert_eq!(said, via, "{}", run.all());
    }
}

/// A row's text holding `BEGIN TRANSACTION;` (a note quoting SQL):
/// `wrangler d1 execute --local --file` removes the first
/// `BEGIN TRANSACTION;` and the first `COMMIT;` of the whole file, in row
/// values too, before it runs it. The restore through it loaded other
/// values than the backup's (in another row as well), and only its content
/// check said so afterwards, the target changed. It is refused before the
/// load, and the target keeps its rows.
#[test]
fn a_restore_through_wrangler_never_loads_rows_wrangler_rewrites() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "INSERT INTO companies (name) VALUES ('run COMMIT; then');\n\
         INSERT INTO companies (name) VALUES ('a BEGIN TRANSACTION; b COMMIT; c');",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let names = || sb.query("SELECT name FROM companies ORDER BY id");
    let before = names();
    let files = sb.backup_files();
    let run = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
        "--via-wrangler",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("BEGIN TRANSACTION"), "{}", run.all());
    assert_eq!(names(), before, "wrangler loaded other values");
    // rvF3: refused with the plan, before its safety backup was taken.
    assert_eq!(sb.backup_files(), files, "{}", run.all());
}

/// A restore through wrangler writes the repaired SQL to a file in the
/// temporary directory first; on a full disk there it stopped midway with
/// a bare IO error. It is refused with the plan, naming the directory, the
/// bytes needed and free, and the fix (TMPDIR), before anything ran: the
/// target's local D1 is still not made.
#[test]
fn a_restore_through_wrangler_with_no_room_for_its_file_is_refused_first() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = target_sandbox();
    let tmp = target.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let Some(cmd) = xtask_with_mounted(&tmp, Mounted::Full) else {
        return;
    };
    let args = [
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--yes",
        "--via-wrangler",
    ];
    let mut cmd = target.sandboxed(cmd, &args);
    cmd.env("TMPDIR", &tmp);
    let run = Run::from_output(cmd.output().unwrap());
    assert_eq!(run.code, Some(2), "{}", run.all());
    for said in [tmp.to_str().unwrap(), "free", "TMPDIR", "nothing was done"] {
        assert!(run.stderr.contains(said), "{said}:\n{}", run.all());
    }
    assert!(target.local_d1_files().is_empty(), "{}", run.all());
}

/// A restore of a dump with no manifest into a local D1 that holds rows
/// first loads the dump into a scratch database in the temporary
/// directory (its trial load), before the safety backup; on a full disk
/// there the scratch database filled, and the restore said the dump
/// "cannot be loaded", as if it were at fault. It is refused first, as the
/// file of a restore through wrangler is, naming the directory, the bytes
/// needed and free, and the fix (TMPDIR): no safety backup is taken, and
/// the target is unchanged.
#[test]
fn a_restore_whose_trial_load_has_no_room_is_refused_first() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = source_sandbox();
    let before = (snapshot(&target), target.backup_files());
    let tmp = target.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let Some(cmd) = xtask_with_mounted(&tmp, Mounted::Full) else {
        return;
    };
    let args = [
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--no-manifest",
        "--replace",
        "--yes",
    ];
    let mut cmd = target.sandboxed(cmd, &args);
    cmd.env("TMPDIR", &tmp);
    let run = Run::from_output(cmd.output().unwrap());
    assert_eq!(run.code, Some(2), "{}", run.all());
    for said in [
        tmp.to_str().unwrap(),
        "scratch database",
        "free",
        "TMPDIR",
        "nothing was done",
    ] {
        assert!(run.stderr.contains(said), "{said}:\n{}", run.all());
    }
    assert!(!run.stderr.contains("cannot be loaded"), "{}", run.all());
    assert!(snapshot(&target) == before.0, "the target changed");
    let files: Vec<String> = { target.backup_files().into_iter() }
        .filter(|f| f != ".lock")
        .collect();
    assert_eq!(files, before.1, "a safety backup was taken");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_runbooks_clean_restore_works_from_a_data_only_backup() {
    let source = source_sandbox();
    let file = backup(&source, &["--data-only"]);
    let target = target_sandbox();
    let run = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--yes",
    ]);
    run.assert_ok();
    assert!(run.stdout.contains("loads rows only"), "{}", run.stdout);
    let mut want = snapshot(&source);
    let mut got = snapshot(&target);
    // migrations apply stamps d1_migrations anew; everything else is equal.
    want.remove("d1_migrations");
    got.remove("d1_migrations");
    assert_eq!(got, want);
    // The trigger is back, as the migration made it, and counts new rows.
    target.execute_sql("INSERT INTO tricky (\"order\") VALUES ('new');");
    assert_eq!(target.query("SELECT n FROM tricky_count")[0][0]["n"], 4);
}

/// `restore --clean` reads migrations/ for its plan (the schema the rows
/// go into, the backup's recorded migrations against the files) and then
/// had wrangler read it again: a migration written there as wrangler
/// starts (here by a preload in the real wrangler's Node) was applied to
/// the target, never shown nor checked. wrangler applies the files the
/// plan read, from a private copy, to the project's own local D1: the
/// restore is whole, the new file stays in migrations/ and its table is
/// not made.
#[test]
fn a_clean_restore_applies_the_migrations_its_plan_read_not_one_added_as_wrangler_starts() {
    let source = source_sandbox();
    let file = backup(&source, &["--data-only"]);
    let target = target_sandbox();
    let surprise = target.path().join("migrations/0006_surprise.sql");
    let text = "CREATE TABLE surprise (x);\n";
    let f = file.to_str().unwrap();
    let mut cmd = target.xtask_command(&["restore", f, "--to", "local", "--clean", "--yes"]);
    let _hook = writing_as_migrations_apply_starts(&mut cmd, &surprise, text);
    let run = Run::from_output(cmd.output().unwrap());
    let written = std::fs::read_to_string(&surprise).ok();
    assert_eq!(written.as_deref(), Some(text), "no preload:\n{}", run.all());
    run.assert_ok();
    let made = target.query("SELECT name FROM sqlite_master WHERE name = 'surprise'");
    assert!(made[0].is_empty(), "{made:?}\n{}", run.all());
    let applied = target.query("SELECT name FROM d1_migrations ORDER BY id");
    assert_eq!(applied[0].len(), 5, "{applied:?}\n{}", run.all());
    let (mut want, mut got) = (snapshot(&source), snapshot(&target));
    want.remove("d1_migrations");
    got.remove("d1_migrations");
    assert_eq!(got, want);
}

/// atkBW: a whole data-only backup refused for `--replace` was told to
/// pass `--partial`, and `--replace --partial` then drops every table and
/// fails on the first row (`no such table`), after a safety backup: the
/// refusal names `--clean`, the road a data-only backup takes.
#[test]
fn a_data_only_backup_refused_for_replace_is_told_to_use_clean() {
    let source = source_sandbox();
    let file = backup(&source, &["--data-only"]);
    let target = target_sandbox();
    let before = target.backup_files();
    let run = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    run.assert_refused("--clean");
    assert!(
        !run.stderr.contains("Pass --partial"),
        "a data-only backup is sent to --partial, which fails with --replace:\n{}",
        run.all()
    );
    // Nothing was written but the backup lock, taken before the plan.
    let written: Vec<String> = { target.backup_files().into_iter() }
        .filter(|f| !before.contains(f) && f != ".lock")
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

/// rv5: a schema-only backup carries the d1_migrations table but none of its
/// rows, so after restoring it every migration read as pending while the
/// schema had them all, and nothing said so: `migrate` would apply them
/// again onto tables that exist. The plan and the end of the restore say it.
#[test]
fn a_schema_only_restore_says_no_migration_is_recorded_as_applied() {
    let source = source_sandbox();
    let file = backup(&source, &["--schema-only"]);
    let target = target_sandbox();
    let run = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--partial",
        "--yes",
    ]);
    run.assert_ok();
    let said =
        "no migration recorded as applied: a schema-only backup carries no d1_migrations rows";
    assert!(run.stdout.contains(said), "the plan:\n{}", run.stdout);
    // "now has", or "has" when the target had none recorded before (MR).
    assert!(
        run.stderr.lines().any(
            |l| l.starts_with("warning: qbtime_db_local") && l.contains(&format!("has {said}"))
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("0005_tricky.sql"), "{}", run.stderr);
    // As said: the schema is there, and no migration is recorded.
    assert!(target.query("SELECT name FROM d1_migrations")[0].is_empty());
    assert_eq!(
        target.query("SELECT count(*) AS n FROM tricky")[0][0]["n"],
        0
    );
}

/// ND 3: a schema-only backup (`--no-data`) restored `--partial --replace`
/// over a target with rows makes every table again empty, and its plan's
/// `LOSES` line said nothing of that (no table is missing from it): the
/// plan, a dry run's too, says plainly on one line that every table loses
/// its rows.
#[test]
fn a_schema_only_replace_plan_says_every_table_loses_its_rows() {
    let source = source_sandbox();
    let file = backup(&source, &["--schema-only"]);
    let target = target_sandbox();
    target.apply_migrations();
    target.execute_sql("INSERT INTO companies (name) VALUES ('kept until now');");
    let file = file.to_str().unwrap();
    let args = ["restore", file, "--dry-run", "--partial", "--replace"];
    let run = target.xtask(&[&args[..], &["--to", "local"]].concat());
    run.assert_ok();
    let loses: Vec<&str> = { run.stdout.lines() }
        .filter(|l| l.starts_with("  LOSES "))
        .collect();
    assert_eq!(loses.len(), 1, "the plan:\n{}", run.stdout);
    assert!(
        loses[0].contains("every row of every table"),
        "the plan:\n{}",
        run.stdout
    );
    assert_eq!(
        target.query("SELECT count(*) AS n FROM companies")[0][0]["n"],
        1
    );
}

/// A schema-only backup holds no rows: `--clean`, which loads only rows, was
/// told it "would leave the target without the rest of its data" and sent to
/// `--partial`, which would then load nothing; into an empty database it was
/// told the target would lose "the rest of its data", which it never had.
#[test]
fn a_schema_only_backup_is_told_what_clean_and_an_empty_database_would_get() {
    let source = source_sandbox();
    let file = backup(&source, &["--schema-only"]);
    let target = target_sandbox();
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", file.to_str().unwrap(), "--to", "local", "--yes"];
        args.extend_from_slice(extra);
        target.xtask(&args)
    };
    // Even --partial would load nothing with --clean.
    for clean in [&["--clean"][..], &["--clean", "--partial"]] {
        let run = restore(clean);
        run.assert_refused("it holds no rows, and --clean loads only rows");
        assert!(
            run.stderr.contains("`cargo xtask migrate local --yes`"),
            "{}",
            run.stderr
        );
    }
    let empty = restore(&[]);
    empty.assert_refused("the database would have its tables and no rows. Pass --partial");
    let tables = "SELECT name FROM sqlite_schema WHERE type = 'table'";
    assert!(target.query(tables)[0].is_empty());
}

#[test]
fn replace_takes_a_safety_backup_and_swaps_the_data_in_one_step() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = target_sandbox();
    target.apply_migrations();
    target.execute_sql(
        "INSERT INTO companies (name) VALUES ('only in the target');\n\
         CREATE TABLE leftover(x);\nINSERT INTO leftover VALUES (1);",
    );
    // As wrangler leaves them under a umask of 022: readable by everyone.
    let db = target.local_d1_file();
    set_mode(&db, 0o644);
    set_mode(db.parent().unwrap(), 0o755);
    let run = restore_replacing(&target, file.to_str().unwrap());
    run.assert_ok();
    // The restored rows are this user's alone, as the backup's were.
    assert_eq!(mode_of(&db), 0o600);
    assert_eq!(mode_of(db.parent().unwrap()), 0o700);
    assert!(run.stdout.contains("drops"), "{}", run.stdout);
    assert!(run.stdout.contains("table leftover"));
    assert!(
        run.stdout
            .contains("safety backup taken before the restore"),
        "{}",
        run.stdout
    );
    let safety = only_backup(&target);
    let safety_text = std::fs::read_to_string(target.backups().join(&safety)).unwrap();
    assert!(
        safety_text.contains("only in the target"),
        "the safety backup holds the old data"
    );
    assert_eq!(snapshot(&target), snapshot(&source));

    // `latest` is now that safety backup, and a restore of it says so.
    let again = target.xtask(&[
        "restore",
        "latest",
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    again.assert_ok();
    assert!(
        again
            .stderr
            .contains(&format!("latest is {safety}, the safety backup taken at")),
        "{}",
        again.all()
    );
}

/// `restore DUMP --to local --yes --no-manifest`.
fn restore_without_manifest(target: &Sandbox, dump: &std::path::Path) -> Run {
    restore_without_manifest_allowing(target, dump, &[])
}

/// [`restore_without_manifest`] with `--allow-trigger` for each of
/// `triggers`: a hand dump's own triggers, which no migration creates.
fn restore_without_manifest_allowing(
    target: &Sandbox,
    dump: &std::path::Path,
    triggers: &[&str],
) -> Run {
    let mut args = vec!["restore", dump.to_str().unwrap(), "--to", "local", "--yes"];
    args.push("--no-manifest");
    for trigger in triggers {
        args.extend(["--allow-trigger", trigger]);
    }
    target.xtask(&args)
}

#[test]
fn a_hand_edited_dump_keeps_a_values_own_cr_lf_and_loses_its_byte_order_mark() {
    // Saved by a Windows editor: a byte order mark first, the lines it
    // touched in CRLF, the rest in LF; the note was typed on Windows.
    let target = Sandbox::new();
    let dump = target.path().join("edited.sql");
    std::fs::write(
        &dump,
        "\u{feff}PRAGMA defer_foreign_keys=TRUE;\r\n\
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\r\n\
         INSERT INTO \"notes\" VALUES(1,'typed\r\non Windows');\r\n\
         INSERT INTO \"notes\" VALUES(2,'line one\nline two');\n",
    )
    .unwrap();
    let run = restore_without_manifest(&target, &dump);
    run.assert_ok();
    let rows = target.query("SELECT hex(body) AS body FROM notes ORDER BY id");
    assert_eq!(rows[0][0]["body"], "74797065640D0A6F6E2057696E646F7773");
    assert_eq!(rows[0][1]["body"], "6C696E65206F6E650A6C696E652074776F");
}

#[test]
fn a_sqlite3_dump_restores_with_no_manifest_even_with_crlf() {
    let target = Sandbox::new();
    let fixture =
        std::fs::read_to_string(repo_root().join("xtask/tests/fixtures/sqlite3-dump.sql")).unwrap();
    let dump = target.path().join("from-sqlite3.sql");
    std::fs::write(&dump, fixture.replace('\n', "\r\n")).unwrap();

    let refused = target.xtask(&["restore", dump.to_str().unwrap(), "--to", "local", "--yes"]);
    refused.assert_refused("has no manifest");
    // Its trigger parent_touch is no migration's: refused (exit 3) until
    // named (hostile_backups::a_restore_without_a_manifest_refuses_a_trigger_no_migration_makes_too).
    let refused = restore_without_manifest(&target, &dump);
    refused.assert_refused("--allow-trigger parent_touch");

    let run = restore_without_manifest_allowing(&target, &dump, &["parent_touch"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("skipped the sha256 and size check"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("removed 3 BEGIN/COMMIT/PRAGMA foreign_keys lines"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("CRLF"));
    assert!(run.stdout.contains("child references parent"));
    let rows = target.query(
        "SELECT name, hex(data) AS data FROM parent ORDER BY id; SELECT * FROM named ORDER BY id; \
         SELECT seq FROM sqlite_sequence WHERE name = 'parent'",
    );
    assert_eq!(rows[0][0]["name"], "it's; a\nmulti-line name");
    assert_eq!(rows[0][0]["data"], "00FF10");
    assert_eq!(rows[1].len(), 2);
    assert_eq!(rows[2][0]["seq"], 2);
}

/// Every row of every table in the local D1, read straight from its SQLite
/// file (no wrangler call, so nothing is disturbed), to show nothing changed.
fn local_state(sb: &Sandbox) -> BTreeMap<String, Vec<String>> {
    let file = sb.local_d1_file();
    let db =
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = db
        // _cf_METADATA is workerd's own bookkeeping, bumped by every access.
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND sql NOT LIKE 'CREATE VIRTUAL%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut state = BTreeMap::new();
    for t in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        state.insert(t, rows);
    }
    state
}

#[test]
fn guards_refuse_with_nothing_executed() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let path = file.to_str().unwrap();
    let target = target_sandbox();
    target.apply_migrations();
    target.execute_sql("INSERT INTO companies (name) VALUES ('keep me');");
    let before = local_state(&target);
    let unchanged = |why: &str| {
        assert_eq!(local_state(&target), before, "{why}: the target changed");
        assert!(
            !target.backups().exists() || target.backup_files().iter().all(|f| f == ".lock"),
            "{why}: {:?}",
            target.backup_files()
        );
    };

    // Not empty, and no --replace: the message says the default mode needs
    // an empty database (the operator typed no mode).
    target
        .xtask(&["restore", path, "--to", "local", "--yes"])
        .assert_refused("the default when no mode is given");
    unchanged("into-empty");

    // No confirmation when stdin is not a terminal.
    target
        .xtask(&["restore", path, "--to", "local", "--replace"])
        .assert_refused("--yes");
    unchanged("unconfirmed");

    // A flipped byte.
    let flipped = target.path().join("flipped");
    std::fs::create_dir(&flipped).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let copy = flipped.join(file.file_name().unwrap());
    std::fs::write(&copy, &bytes).unwrap();
    let manifest = file.to_str().unwrap().replace(".sql", ".manifest.json");
    std::fs::copy(
        &manifest,
        flipped.join(std::path::Path::new(&manifest).file_name().unwrap()),
    )
    .unwrap();
    target
        .xtask(&[
            "restore",
            copy.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
        ])
        .assert_refused("does not match its manifest");
    unchanged("flipped byte");

    // A truncated file.
    std::fs::write(&copy, &std::fs::read(&file).unwrap()[..at]).unwrap();
    target
        .xtask(&[
            "restore",
            copy.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
        ])
        .assert_refused("changed or truncated");
    unchanged("truncated");

    // A SQLite database file instead of SQL.
    let db = target.path().join("backup.sqlite");
    let mut sqlite = b"SQLite format 3\0".to_vec();
    sqlite.resize(4096, 0);
    std::fs::write(&db, sqlite).unwrap();
    target
        .xtask(&[
            "restore",
            db.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
            "--no-manifest",
        ])
        .assert_refused("SQLite database file");
    unchanged("sqlite file");

    // A gzipped dump under its .sql.gz name: named for what it is, exit 2.
    let gz = target.path().join("backup.sql.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff]).unwrap();
    let run = target.xtask(&[
        "restore",
        gz.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--yes",
        "--no-manifest",
    ]);
    // The command as pasted: `gunzip -k` refuses a name not ending in .gz.
    run.assert_refused(&format!(
        "gzip-compressed, not a SQL dump; unpack it with `gunzip -c {} > {}`",
        gz.display(),
        target.path().join("backup.sql").display()
    ));
    assert_eq!(run.code, Some(2), "{}", run.all());
    unchanged("gzip file");

    // A local backup aimed at production is refused before any network call.
    target
        .xtask(&[
            "restore",
            path,
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ])
        .assert_refused("only backups taken from production");
    // A dump of unknown origin too, unless its origin is stated.
    target
        .xtask(&[
            "restore",
            db.to_str().unwrap(),
            "--to",
            "prod",
            "--no-manifest",
            "--confirm",
            "qbtime_db_prod",
        ])
        .assert_refused("SQLite database file");
    let plain = target.path().join("plain.sql");
    std::fs::write(&plain, "CREATE TABLE t(x);\n").unwrap();
    target
        .xtask(&[
            "restore",
            plain.to_str().unwrap(),
            "--to",
            "prod",
            "--no-manifest",
            "--confirm",
            "qbtime_db_prod",
        ])
        .assert_refused("--source-env prod");
    unchanged("prod guards");

    // A backup of some tables only, or of the schema only, would wipe the
    // rest with --replace: it needs --partial.
    let partial = backup_named(&source, &["--table", "companies"]);
    target
        .xtask(&[
            "restore",
            partial.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
        ])
        .assert_refused("would leave the target without the rest of its data");
    unchanged("partial backup");

    // --clean into a schema other than the backup's.
    let data_only = backup_named(&source, &["--data-only"]);
    let extra = target.path().join("migrations/0006_more.sql");
    std::fs::write(&extra, "CREATE TABLE more(x);").unwrap();
    target
        .xtask(&[
            "restore",
            data_only.to_str().unwrap(),
            "--to",
            "local",
            "--clean",
            "--yes",
        ])
        .assert_refused("--clean would load its rows into a different schema");
    std::fs::remove_file(&extra).unwrap();
    unchanged("clean into another schema");

    // A different encryption key in force on the target.
    target.execute_sql(
        "UPDATE encryption_keys SET retired_at = '2026-11-01T00:00:00.000Z' WHERE retired_at IS NULL;\n\
         INSERT INTO encryption_keys (key_id, fingerprint) VALUES ('dek-other', 'sha256:9999');",
    );
    let before = local_state(&target);
    let run = target.xtask(&["restore", path, "--to", "local", "--replace", "--yes"]);
    run.assert_refused("will not decrypt");
    assert!(run.stderr.contains("dek-other"), "{}", run.stderr);
    assert_eq!(
        local_state(&target),
        before,
        "key mismatch: the target changed"
    );
    // A manifest edited to claim the target's key does not let the dump's
    // other key through: the dump, which the manifest's sha256 binds, says
    // otherwise. The same for the migrations it lists.
    let manifest_path = file.with_file_name(
        file.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".sql", ".manifest.json"),
    );
    let honest = std::fs::read_to_string(&manifest_path).unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&honest).unwrap();
    forged["encryption_key"] =
        serde_json::json!({"key_id": "dek-other", "fingerprint": "sha256:9999"});
    std::fs::write(&manifest_path, forged.to_string()).unwrap();
    let run = target.xtask(&["restore", path, "--to", "local", "--replace", "--yes"]);
    run.assert_refused("its manifest does not describe it");
    assert!(run.stderr.contains("data-encryption key"), "{}", run.stderr);
    assert!(!run.stderr.contains("sha256:"), "{}", run.stderr);
    let mut forged: serde_json::Value = serde_json::from_str(&honest).unwrap();
    let last = forged["migrations"].as_array_mut().unwrap().pop().unwrap();
    forged["migration_sha256"]
        .as_object_mut()
        .unwrap()
        .remove(last.as_str().unwrap());
    std::fs::write(&manifest_path, forged.to_string()).unwrap();
    target
        .xtask(&["restore", path, "--to", "local", "--replace", "--yes"])
        .assert_refused("d1_migrations rows");
    assert_eq!(
        local_state(&target),
        before,
        "forged manifest: the target changed"
    );
    std::fs::write(&manifest_path, &honest).unwrap();
    // ...and accepted explicitly, it goes ahead.
    let run = target.xtask(&[
        "restore",
        path,
        "--to",
        "local",
        "--replace",
        "--yes",
        "--accept-key-change",
    ]);
    run.assert_ok();
    assert!(
        run.stdout.contains("[!] encryption key: CHANGED"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_fast_path_refuses_while_another_process_holds_the_database() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = target_sandbox();
    target.query_with_wrangler("SELECT 1"); // creates the local database file
    let db = target.local_d1_file();
    let mut holder = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec 3<\"$0\"; sleep 30")
        .arg(&db)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let run = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    let _ = holder.kill();
    let _ = holder.wait();
    run.assert_refused("another process has the local D1 database open");
    assert!(
        run.stderr.contains(&format!("pid {}", holder.id())),
        "{}",
        run.stderr
    );
    let tables = target.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'accounts'");
    assert_eq!(tables[0][0]["n"], 0, "nothing was loaded");
}

/// A local load through wrangler that fails (here: the local D1 held by
/// another writer, `SQLITE_BUSY`) ran the file as one batch and changed
/// nothing. Since MO's fail-closed rule it was told as a remote import of
/// unknown outcome ("D1 may have been handed the import"), journaled as
/// possibly changed and the lock left unsettled (rvBM 1): it says the
/// target is as it was, is journaled `changed_nothing`, and status warns
/// of no run left unsettled.
#[test]
fn a_failed_local_load_through_wrangler_is_told_as_changing_nothing() {
    let sb = Sandbox::new();
    sb.xtask(&["backup", "local"]).assert_ok();
    let conn = rusqlite::Connection::open(sb.local_d1_file()).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let run = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
        "--via-wrangler",
    ]);
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains("so the target is as it was")
            && !run.stderr.contains("may have been handed the import"),
        "{}",
        run.all()
    );
    let journal = std::fs::read_to_string(sb.backups().join("restores.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["changed_nothing"], true, "{journal}");
    let status = sb.xtask(&["status"]);
    assert!(
        !status.all().contains("outcome is unknown"),
        "{}",
        status.all()
    );
}

#[test]
fn latest_picks_the_newest_backup_of_the_named_environment() {
    let source = source_sandbox();
    let full = backup(&source, &[]);
    // A newer backup of one table is not a candidate for `latest`.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    backup_named(&source, &["--table", "companies"]);
    let run = source.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains(&format!("source       {}", full.display())),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Dry run: nothing was changed."));
    let run = source.xtask(&["restore", "latest:staging", "--to", "local", "--dry-run"]);
    run.assert_refused("no full backup of staging");
}

/// The one new file in backups/ with this suffix.
fn new_backup_with_suffix(sb: &Sandbox, suffix: &str) -> std::path::PathBuf {
    let found: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(suffix) && !f.starts_with('.'))
        .collect();
    assert_eq!(found.len(), 1, "{:?}", sb.backup_files());
    sb.backups().join(&found[0])
}

#[test]
fn a_compressed_backup_verifies_and_restores_identically() {
    let source = source_sandbox();
    source.xtask(&["backup", "local", "--compress"]).assert_ok();
    let file = new_backup_with_suffix(&source, ".sql.zst");
    assert!(
        !source.backup_files().iter().any(|f| f.ends_with(".sql")),
        "{:?}",
        source.backup_files()
    );
    let stored = std::fs::read(&file).unwrap();
    let plain = zstd::decode_all(stored.as_slice()).unwrap();
    assert!(plain.starts_with(b"PRAGMA defer_foreign_keys=TRUE;"));
    // Mostly random blobs here: the ratio on real dumps is in the benchmark.
    assert!(
        stored.len() < plain.len(),
        "{} of {}",
        stored.len(),
        plain.len()
    );
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let m = manifest_for(&source, &name);
    assert_eq!(m["file"]["sha256"], sha256_hex(&stored).as_str());
    assert_eq!(m["sealed"]["format"], "zstd");
    assert_eq!(m["sealed"]["plaintext_sha256"], sha256_hex(&plain).as_str());
    assert_eq!(m["sealed"]["plaintext_bytes"], plain.len() as u64);
    assert_eq!(m["verification"]["outcome"], "good");

    let target = target_sandbox();
    target
        .xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"])
        .assert_ok();
    assert_eq!(snapshot(&target), snapshot(&source));
}

/// rvAT: `verify` of a compressed (not encrypted) `.sql.zst` cut short
/// said it "cannot be decoded to its end with a key of the recipients its
/// manifest records: ... or sealed to others", though it is sealed to
/// no one. It is told damaged or cut short, and nothing of recipients.
#[test]
fn a_cut_compressed_backup_is_told_cut_short_not_sealed_to_others() {
    let source = source_sandbox();
    source.xtask(&["backup", "local", "--compress"]).assert_ok();
    let file = new_backup_with_suffix(&source, ".sql.zst");
    let stored = std::fs::read(&file).unwrap();
    let cut = &stored[..stored.len() / 2];
    std::fs::write(&file, cut).unwrap();
    // Its manifest records the cut file, as one written by a backup cut
    // short before it was compressed to its end would.
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let mut m = manifest_for(&source, &name);
    m["file"]["sha256"] = sha256_hex(cut).into();
    m["file"]["bytes"] = (cut.len() as u64).into();
    std::fs::write(
        source
            .backups()
            .join(name.replace(".sql.zst", ".manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    let run = source.xtask(&["verify", file.to_str().unwrap()]);
    assert!(!run.ok, "{}", run.all());
    assert!(run.all().contains("cut short"), "{}", run.all());
    assert!(
        !run.all().contains("recipients") && !run.all().contains("sealed to others"),
        "a compressed backup told of recipients:\n{}",
        run.all()
    );
}

/// Every name that appears in `dir` while `work` runs, polled every
/// millisecond: a plaintext temporary file lives for the whole export or
/// verification, far longer than that.
fn names_seen_during<T>(dir: &std::path::Path, work: impl FnOnce() -> T) -> (T, Vec<String>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    seen.insert(entry.file_name().to_string_lossy().into_owned());
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen.into_iter().collect()
        });
        let result = work();
        stop.store(true, Ordering::Relaxed);
        (result, watcher.join().unwrap())
    })
}

#[cfg(unix)]
#[test]
fn an_encrypted_backup_never_writes_plaintext_and_restores_only_with_its_identity() {
    use std::os::unix::fs::PermissionsExt;
    let source = source_sandbox();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("backup-key.txt");
    let recipient = keygen_recipient(&source.xtask(&["keygen", "--out", key.to_str().unwrap()]));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::create_dir_all(source.backups()).unwrap();

    let (run, seen) = names_seen_during(&source.backups(), || {
        source.xtask(&["backup", "local", "--encrypt-to", &recipient])
    });
    run.assert_ok();
    // The routine output is short (the plan shows in full with --dry-run
    // or -v); it still says how the backup is stored.
    assert!(run.stdout.contains("stored as zstd+age"), "{}", run.stdout);
    // The export went through a pipe, the verify scratch stayed in memory:
    // no plaintext dump or scratch database ever had a name here.
    for name in &seen {
        assert!(
            !name.ends_with(".sql.partial") && !name.contains(".sqlite") && !name.ends_with(".sql"),
            "plaintext reached the disk as {name}: {seen:?}"
        );
    }
    // The pipe itself lives in a private directory outside backups/ (wrangler
    // opens it by name); here only the sealed file was ever written.
    assert!(
        seen.iter().any(|n| n.ends_with(".sql.zst.age.partial")),
        "{seen:?}"
    );
    let file = new_backup_with_suffix(&source, ".sql.zst.age");
    let stored = std::fs::read(&file).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));
    assert!(!stored.windows(9).any(|w| w == b"Henderson"));
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let m = manifest_for(&source, &name);
    assert_eq!(m["sealed"]["format"], "zstd+age");
    assert_eq!(m["sealed"]["recipients"][0], recipient.as_str());
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
    let path = file.to_str().unwrap();

    // Without the identity nothing can read it, and verify says it could not run.
    let run = source.xtask(&["verify", path]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("--identity FILE"), "{}", run.stderr);
    let stranger = keys.path().join("stranger.txt");
    source
        .xtask(&["keygen", "--out", stranger.to_str().unwrap()])
        .assert_ok();
    let run = source.xtask(&["verify", path, "--identity", stranger.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("no identity matched"), "{}", run.stderr);

    // With it, verify decrypts and checks the SQL inside as well as the file.
    let run = source.xtask(&["verify", path, "--identity", key.to_str().unwrap()]);
    run.assert_ok();
    assert!(run.stdout.contains("zstd+age decodes to"), "{}", run.stdout);

    let target = target_sandbox();
    target
        .xtask(&["restore", path, "--to", "local", "--yes"])
        .assert_refused("--identity FILE");
    assert!(target.query("SELECT name FROM sqlite_master")[0].is_empty());
    let restored = target
        .xtask_command(&["restore", path, "--to", "local", "--yes"])
        .env("QBTIME_AGE_IDENTITY", &key)
        .output()
        .unwrap();
    Run::from_output(restored).assert_ok();
    assert_eq!(snapshot(&target), snapshot(&source));
}

#[test]
fn a_recipient_that_is_not_an_age_key_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    sb.xtask(&["backup", "local", "--encrypt-to", "ssh-ed25519 AAAAC3Nza"])
        .assert_refused("is not an age recipient");
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
    assert!(!sb.path().join(".wrangler").exists(), "no D1 was touched");
}

#[test]
fn a_dump_outside_the_backup_directory_needs_its_manifest_or_says_so() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("from-a-colleague.sql");
    std::fs::copy(&file, &copy).unwrap();
    let target = target_sandbox();
    target
        .xtask(&["restore", copy.to_str().unwrap(), "--to", "local", "--yes"])
        .assert_refused("has no manifest beside it");
    assert!(target.query("SELECT name FROM sqlite_master")[0].is_empty());
}

/// The size of a SQLite write-ahead log's header: a log longer than this
/// holds a frame, a page a write transaction wrote.
const WAL_HEADER: u64 = 32;

/// Stops `child` (SIGSTOP) and waits until it is stopped, or has ended
/// (left for `wait`): whether it is stopped.
fn stop(child: &std::process::Child) -> bool {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) and waitid(2) on our own child, not waited for yet;
    // WNOWAIT leaves an end to `wait`, and a zeroed siginfo_t is valid.
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WSTOPPED | libc::WEXITED | libc::WNOWAIT;
        assert_eq!(
            libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags),
            0
        );
        info.si_code == libc::CLD_STOPPED
    }
}

/// SIGINT while the load is writing: the restore is stopped as soon as
/// the target's write-ahead log holds a page of the load's transaction
/// (the safety backup only reads the file, so the load is the only
/// writer), and the signal is sent while it is stopped, so it lands with
/// the load under way whatever the machine's load; nothing is timed.
#[test]
fn an_interrupted_restore_rolls_back_and_leaves_the_target_as_it_was() {
    let target = target_sandbox();
    target.apply_migrations();
    target.execute_sql("INSERT INTO companies (name) VALUES ('keep me');");
    let before = local_state(&target);
    // A dump long enough that its load writes pages before it commits.
    let dump = target.path().join("bulk.sql");
    let mut text = String::from(
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE bulk (id INTEGER PRIMARY KEY, v TEXT);\n",
    );
    for i in 0..600_000 {
        text.push_str(&format!(
            "INSERT INTO \"bulk\" VALUES({i},'row {i} of the bulk table');\n"
        ));
    }
    std::fs::write(&dump, text).unwrap();
    let wal = {
        let mut name = target.local_d1_file().into_os_string();
        name.push("-wal");
        std::path::PathBuf::from(name)
    };
    let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(
        wal_size() <= WAL_HEADER,
        "the log holds pages before the restore"
    );

    // SIGINT as a terminal's Ctrl-C sends it, handled (at its default
    // here, see `common::SIGINT_AT_ITS_DEFAULT`).
    let child = target
        .xtask_command(&[
            "restore",
            dump.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--no-manifest",
            "--yes",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // Looked at only while it is stopped: the page seen is what it has
    // written when the signal is sent.
    loop {
        if !stop(&child) {
            let run = Run::from_output(child.wait_with_output().unwrap());
            panic!(
                "the restore ended before its load wrote a page:\n{}",
                run.all()
            );
        }
        if wal_size() > WAL_HEADER {
            break;
        }
        // SAFETY: kill(2) on our own child, not waited for yet.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        { target.backup_files().into_iter() }
            .any(|f| f.starts_with("backup-local-") && f.ends_with(".sql")),
        "the load wrote before the safety backup was taken: {:?}",
        target.backup_files()
    );
    // SAFETY: kill(2) on our own child, stopped and not waited for: the
    // SIGINT is pending until it runs on.
    unsafe {
        libc::kill(pid, libc::SIGINT);
        libc::kill(pid, libc::SIGCONT);
    }
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(
        run.stderr.contains("interrupted by SIGINT"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("Restored"), "{}", run.stdout);
    // Nothing of the dump landed, and the drops of --replace were undone.
    assert_eq!(local_state(&target), before);
    // NT 3: the safety backup is what the database still holds: status
    // does not call it "a picture of what that restore undid" (it undid
    // nothing), nor the migrations unknown for it.
    let status = target.xtask(&["status", "--env", "local"]);
    let said = status.all();
    assert!(
        !said.contains("what that restore undid") && !said.contains("migrations unknown"),
        "{said}"
    );
    // The safety backup stays, whole; nothing unfinished is left.
    assert_no_partials(&target);
    let safety = only_backup(&target);
    let safety_text = std::fs::read_to_string(target.backups().join(&safety)).unwrap();
    assert!(safety_text.contains("keep me"));
    let lock = std::fs::read(target.backups().join(".lock")).unwrap_or_default();
    assert!(lock.is_empty(), "the lock was not released cleanly");
    // MO: its journal line ends `interrupted`, not `failed`, and `status`
    // tells it so: the load, one transaction, was never committed, so it
    // changed nothing.
    let journal = std::fs::read_to_string(target.backups().join("restores.jsonl")).unwrap();
    let end: Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(end["status"], "interrupted", "{journal}");
    let status = target.xtask(&["status", "--env", "local"]);
    let last = status.stdout_line_with("last restore ");
    assert!(
        last.contains("interrupted by a signal") && last.contains("changed nothing"),
        "{}",
        status.all()
    );
}

/// Restoring a backup taken before a table existed (before the migration
/// that made it) drops that table and its rows: the plan says so, in its
/// own line, before anything runs.
#[test]
fn a_replace_plan_names_the_tables_the_backup_does_not_have() {
    let (sb, name) = sandbox_with_a_backup();
    let later = migration_applied_after(&sb, "INSERT INTO made_later VALUES (1);");
    let run = replace_plan(&sb, &name);
    let loses = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("LOSES"))
        .unwrap_or_else(|| panic!("no LOSES line:\n{}", run.stdout));
    assert!(loses.contains("table made_later"), "{loses}");
    for kept in ["customers", "accounts", "d1_migrations"] {
        assert!(!loses.contains(kept), "{loses}");
    }
    let pending = format!(
        "1 migration pending, which the backup predates: {later} (`cargo xtask migrate local --yes` \
         applies it)"
    );
    assert!(
        run.stdout.contains(&format!("  then         {pending}")),
        "{}",
        run.stdout
    );
    // A backup with every table the target has loses none, and leaves no
    // migration pending.
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&[
        "restore",
        "latest",
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    run.assert_ok();
    assert!(!run.stdout.contains("LOSES"), "{}", run.stdout);
    assert!(!run.stdout.contains("pending"), "{}", run.stdout);
    // Restoring the older one says so again, quiet or not, and migrate
    // agrees.
    let run = sb.xtask(&[
        "-q",
        "restore",
        &name,
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains(&format!("warning: qbtime_db_local now has {pending}")),
        "{}",
        run.all()
    );
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains(&format!("pending      {later}")),
        "{}",
        run.stdout
    );
}

/// A local D1 file that is a link to a file elsewhere: the restore would
/// write the rows wherever it points. It is refused, and the file it
/// points to is unchanged.
#[test]
fn a_local_d1_file_that_is_a_link_is_refused_and_its_target_unchanged() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = target_sandbox();
    target.apply_migrations();
    let db = target.local_d1_file();
    let decoy_dir = tempfile::tempdir().unwrap();
    let decoy = decoy_dir.path().join("elsewhere.sqlite");
    std::fs::rename(&db, &decoy).unwrap();
    std::os::unix::fs::symlink(&decoy, &db).unwrap();
    set_mode(&decoy, 0o644);
    let before = std::fs::read(&decoy).unwrap();
    let run = restore_replacing(&target, file.to_str().unwrap());
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("the local D1 state"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(&decoy).unwrap(),
        before,
        "the decoy was written"
    );
    assert_eq!(mode_of(&decoy), 0o644, "the decoy's mode was changed");
}

/// `.wrangler` as a link to a directory out of the checkout (`.wrangler/`
/// in .gitignore matches a directory, not a link, so a pull request can
/// commit one): the local D1 file under it is another checkout's, and the
/// restore wrote the rows there. It is refused; that database is unchanged.
#[test]
fn a_wrangler_directory_linked_out_of_the_checkout_is_refused_and_its_target_unchanged() {
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = target_sandbox();
    target.apply_migrations();
    let elsewhere = tempfile::tempdir().unwrap();
    let state = elsewhere.path().join(".wrangler");
    std::fs::rename(target.path().join(".wrangler"), &state).unwrap();
    std::os::unix::fs::symlink(&state, target.path().join(".wrangler")).unwrap();
    assert!(
        !target.git(&["check-ignore", "-q", ".wrangler"]).ok,
        "git would commit the link"
    );
    let before = target.live_row_counts();
    let files = target.backup_files();
    let run = restore_replacing(&target, file.to_str().unwrap());
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("the local D1 state"), "{}", run.stderr);
    assert!(run.stderr.contains(".wrangler"), "{}", run.stderr);
    assert_eq!(
        target.live_row_counts(),
        before,
        "the other checkout's local D1 was written"
    );
    // rvF1: refused before anything read through the link, so no safety
    // backup of the other checkout's rows became `latest:local` here.
    assert_eq!(target.backup_files(), files, "{}", run.all());
}

/// An empty file (a `sqlite3 .dump > by-hand.sql` that failed, an export
/// that wrote nothing) is not a dump: `verify --no-manifest` calls it good
/// today, and `restore --no-manifest --replace --yes` drops every table,
/// loads "the dump's 0 statements" and says "Restored", exit 0. A careful
/// operator expects the empty file to be refused, the target untouched.
#[test]
fn an_empty_file_is_not_a_dump_and_replaces_nothing() {
    let (sb, _) = sandbox_with_a_backup();
    let before = local_state(&sb);
    let empty = sb.path().join("by-hand.sql");
    std::fs::write(&empty, b"").unwrap();
    let path = empty.to_str().unwrap();

    let verify = sb.xtask(&["verify", path, "--no-manifest"]);
    assert_eq!(
        verify.code,
        Some(1),
        "an empty file is not a good backup:\n{}",
        verify.all()
    );

    let run = sb.xtask(&[
        "restore",
        path,
        "--to",
        "local",
        "--no-manifest",
        "--replace",
        "--yes",
    ]);
    assert!(!run.ok, "an empty file was restored:\n{}", run.all());
    assert!(
        run.stderr.contains("empty"),
        "the refusal says the file is empty:\n{}",
        run.all()
    );
    assert_eq!(local_state(&sb), before, "the target changed");
}

/// atkR: the atkP fix refuses a dump with no statement at all, but a dump
/// that holds only a header is as empty and still replaces everything:
/// - `PRAGMA defer_foreign_keys=TRUE;` alone: wrangler's first line, all an
///   export that failed after it began leaves;
/// - `PRAGMA foreign_keys=OFF; BEGIN TRANSACTION; COMMIT;`: exactly what
///   `sqlite3 wrong-path.db .dump > by-hand.sql` writes when the path is
///   mistyped (sqlite3 creates an empty database and dumps it).
///
/// Today `verify --no-manifest` calls each GOOD (exit 0), and `restore
/// --no-manifest --replace --yes` drops every table, loads "the dump's 1
/// statement" and says it restored (exit 0): `0 tables, 0 rows`. A careful
/// operator expects a dump with no table and no row to be refused (as the
/// empty file is), the target untouched.
#[test]
fn a_dump_with_only_a_header_is_not_a_dump_and_replaces_nothing() {
    let (sb, _) = sandbox_with_a_backup();
    let before = local_state(&sb);
    let mut wrong = Vec::new();
    for (name, text) in [
        ("header-only.sql", "PRAGMA defer_foreign_keys=TRUE;\n"),
        (
            "sqlite3-empty.sql",
            "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCOMMIT;\n",
        ),
    ] {
        let file = sb.path().join(name);
        std::fs::write(&file, text).unwrap();
        let path = file.to_str().unwrap();
        let verify = sb.xtask(&["verify", path, "--no-manifest"]);
        if verify.code != Some(1) {
            wrong.push(format!(
                "verify {name}: exit {:?}, not 1 (bad)",
                verify.code
            ));
        }
        let run = sb.xtask(&[
            "restore",
            path,
            "--to",
            "local",
            "--no-manifest",
            "--replace",
            "--yes",
        ]);
        if run.ok {
            wrong.push(format!("restore {name} succeeded:\n{}", run.all()));
        }
        if local_state(&sb) != before {
            wrong.push(format!("restore {name} changed the target"));
            break;
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_dump_in_crlf_throughout_without_a_final_line_break_gives_its_values_their_lf_back() {
    // An old sqlite3 `.dump` (a raw LF inside the string), then converted
    // to CRLF whole by git's autocrlf or a Windows editor, which also
    // dropped the line break after the last line (Notepad does). Every
    // line ending is CRLF, so the LF inside the note became CR LF with
    // them and must turn back; but the last statement ends in no line
    // break at all, which `Survey::endings` counts as an LF line
    // (statements.rs: `crlf = buf.ends_with("\r\n")`), so the dump is
    // taken as `Endings::Mixed` and the note is restored with a CR that
    // was never in it.
    let target = Sandbox::new();
    let dump = target.path().join("converted.sql");
    std::fs::write(
        &dump,
        "PRAGMA defer_foreign_keys=TRUE;\r\n\
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\r\n\
         INSERT INTO \"notes\" VALUES(1,'line one\r\nline two');\r\n\
         INSERT INTO \"notes\" VALUES(2,'last');",
    )
    .unwrap();
    let run = restore_without_manifest(&target, &dump);
    run.assert_ok();
    let rows = target.query("SELECT hex(body) AS body FROM notes ORDER BY id");
    assert_eq!(
        rows[0][0]["body"], "6C696E65206F6E650A6C696E652074776F",
        "the note came back with a CR LF instead of its LF"
    );
}

/// A backup of chosen tables records their AUTOINCREMENT counters in its
/// manifest's `sequences`, and a restore sets them, "never below what the
/// rows make them", but never checks them against anything above: a
/// manifest edited to say 9223372036854775807 (a non-negative counter of
/// a chosen table, which `validate` accepts) passes the plan without a
/// word, and afterwards every new notification fails with "database or
/// disk is full" (SQLITE_FULL: AUTOINCREMENT has no id left) (rvW).
#[test]
fn a_manifests_autoincrement_counter_cannot_leave_a_table_without_ids() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    let file = backup(
        &source,
        &[
            "--table",
            "encryption_keys",
            "--table",
            "accounts",
            "--table",
            "companies",
            "--table",
            "notifications",
        ],
    );
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let mut m = manifest_for(&source, &name);
    assert!(m["sequences"].is_object(), "{m}");
    m["sequences"]["notifications"] = serde_json::json!(i64::MAX);
    let stem = name.split(".sql").next().unwrap();
    std::fs::write(
        source.backups().join(format!("{stem}.manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    let target = Sandbox::new();
    target.apply_migrations();
    target.execute_sql(SEED_SQL);
    let run = target.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--partial",
        "--yes",
    ]);
    if run.code != Some(0) {
        // Refused: nothing changed, which is fine.
        return;
    }
    let seq = target.query("SELECT seq FROM sqlite_sequence WHERE name = 'notifications'");
    assert_ne!(
        seq[0][0]["seq"],
        serde_json::json!(i64::MAX),
        "notifications can take no new row now: {}",
        run.all()
    );
}

/// Every file under the sandbox's `.wrangler/` (local D1's state).
fn wrangler_state(sb: &Sandbox) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&sb.path().join(".wrangler"), &mut out);
    out.sort();
    out
}

/// A fresh clone's target and a copy of `source`'s backups in it.
fn clone_with_backups_of(source: &Sandbox) -> Sandbox {
    let target = Sandbox::new();
    std::fs::create_dir_all(target.backups()).unwrap();
    for f in source.backup_files() {
        std::fs::copy(source.backups().join(&f), target.backups().join(&f)).unwrap();
    }
    target
}

/// atkAT: on a fresh clone (no local D1 file yet) `restore --to local
/// --dry-run` prints "Dry run: nothing was changed." and leaves behind a
/// new local D1 database (its SQLite file, WAL and miniflare's metadata
/// and cache files under `.wrangler/state`): the plan reads the target
/// through `wrangler d1 execute --local`, which creates it
/// (xtask/src/steps/restore/mod.rs `plan`: `read_from_file` is false when the
/// file does not exist, so `read_catalog` goes through wrangler).
#[test]
fn a_dry_run_into_a_fresh_local_d1_creates_no_database() {
    let (source, name) = sandbox_with_a_backup();
    let target = clone_with_backups_of(&source);
    assert!(wrangler_state(&target).is_empty(), "a fresh clone");
    let path = target.backups().join(&name);
    let run = target.xtask(&[
        "restore",
        path.to_str().unwrap(),
        "--to",
        "local",
        "--dry-run",
    ]);
    run.assert_ok();
    assert!(run.stdout.contains("nothing was changed"), "{}", run.stdout);
    assert_eq!(
        wrangler_state(&target),
        Vec::<String>::new(),
        "the dry run created local D1 state"
    );
}

/// A clone with an empty local D1, holding a backup of one table
/// (`backup local --table companies`) of another's seeded database.
fn companies_backup_beside_an_empty_local_d1() -> (Sandbox, std::path::PathBuf) {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    source
        .xtask(&["backup", "local", "--table", "companies"])
        .assert_ok();
    let name = only_backup(&source);
    let target = clone_with_backups_of(&source);
    target.query_with_wrangler("SELECT 1");
    let path = target.backups().join(&name);
    (target, path)
}

/// atkAT: a backup of chosen tables (`backup local --table companies`,
/// which has no `d1_migrations`) restored with `--partial` into an empty
/// local D1 leaves a database with `companies` and no `d1_migrations`:
/// every migration reads as pending, and `cargo xtask migrate local` then
/// fails with `table companies already exists`. Neither the plan nor the
/// end says so (no `then` line, no warning), as they do for `--replace
/// --partial` and for a schema-only backup
/// (xtask/src/steps/restore/plan_text.rs `pending_after`: `record_dropped` needs
/// `drops_migrations_table`, true only for `--replace` over a target that
/// had the table; an empty target has none to drop, yet ends without it).
#[test]
fn a_partial_restore_into_an_empty_database_says_every_migration_is_pending() {
    let (target, path) = companies_backup_beside_an_empty_local_d1();
    let plan = target.xtask(&[
        "restore",
        path.to_str().unwrap(),
        "--to",
        "local",
        "--partial",
        "--dry-run",
    ]);
    plan.assert_ok();
    let run = target.xtask(&[
        "restore",
        path.to_str().unwrap(),
        "--to",
        "local",
        "--partial",
        "--yes",
    ]);
    run.assert_ok();
    // As it did: every migration is pending, and migrate cannot apply them.
    let migrate = target.xtask(&["migrate", "local", "--yes"]);
    assert!(!migrate.ok, "{}", migrate.all());
    assert!(
        migrate.all().contains("table companies already exists"),
        "{}",
        migrate.all()
    );
    assert!(
        plan.stdout
            .contains("0001_accounts_companies_customers.sql"),
        "the plan does not say every migration reads as pending afterwards:\n{}",
        plan.stdout
    );
    assert!(
        run.stderr.contains("0001_accounts_companies_customers.sql"),
        "the end does not say every migration reads as pending:\n{}",
        run.all()
    );
}

/// atkAT: the after-restore checklist of a one-table backup says
/// "content: 1 tables" (xtask/src/steps/restore/mod.rs, `report`, has no singular;
/// the row-count line above it says "1 table").
#[test]
fn the_checklist_counts_one_table_in_the_singular() {
    let (target, path) = companies_backup_beside_an_empty_local_d1();
    let run = target.xtask(&[
        "restore",
        path.to_str().unwrap(),
        "--to",
        "local",
        "--partial",
        "--yes",
    ]);
    run.assert_ok();
    assert!(
        run.stdout.contains("[x] row counts: 1 table, 2 rows"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("content: 1 tables"), "{}", run.stdout);
}

/// README `restore`: "a `--clean` refused for a target that is not empty
/// names a new database as the way in". It named `--to new:NAME`, which
/// refused `--clean` ("--clean is not for a new database") and, without
/// it, refuses a data-only backup (it restores with the backup's own
/// schema, which a data-only backup does not have): a developer told to
/// take that way with the runbook's data-only backup met two refusals and
/// no way in. The advice must be one the backup can take: `--to new:NAME
/// --clean`, which creates the database and migrates it (followed to the
/// end in `restore_new`, against the loopback).
#[test]
fn a_clean_restore_refused_for_a_target_with_tables_advises_a_way_a_data_only_backup_can_take() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let file = sb.backups().join(only_backup(&sb));
    let file = file.to_str().unwrap();
    let run = sb.xtask(&["restore", file, "--to", "local", "--clean", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    run.assert_refused("is not empty");
    assert!(
        run.stderr.contains("`--to new:NAME --clean`"),
        "the refusal names no way to a database with no tables that a data-only backup can \
         take:\n{}",
        run.all()
    );
    // `--to new:NAME` alone refuses a data-only backup.
    assert_eq!(
        run.stderr.matches("--to new:NAME").count(),
        run.stderr.matches("--to new:NAME --clean").count(),
        "{}",
        run.all()
    );
}

/// rvBJ: a data-only backup of chosen tables, one of them referenced by
/// another table with a foreign-key action (`report_configs.owner_id ...
/// ON DELETE SET NULL` on `accounts`), could not be restored `--clean
/// --partial`: the repair empties the chosen tables before their rows go
/// in, and the gate refused that DELETE for what its action might change
/// ("it changes rows already in report_configs"). It restores, every row
/// of the chosen tables equal to the source's.
#[test]
fn a_data_only_backup_of_tables_others_reference_with_an_action_restores_clean_and_partial() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(
        "INSERT INTO encryption_keys (key_id, fingerprint, activated_at) VALUES \
         ('k1', 'sha256:' || hex(randomblob(32)), '2026-01-01T00:00:00.000Z'); \
         INSERT INTO accounts (email, display_name, password_hash) VALUES \
         ('a@example.com', 'A', 'h'), ('b@example.com', 'B', 'h');",
    );
    let file = backup(
        &source,
        &[
            "--data-only",
            "--table",
            "accounts",
            "--table",
            "encryption_keys",
        ],
    );
    let target = Sandbox::new();
    restore_clean_partial(&target, &file).assert_ok();
    for table in ["accounts", "encryption_keys"] {
        let sql = format!("SELECT * FROM {table} ORDER BY 1");
        assert_eq!(target.query(&sql), source.query(&sql), "{table}");
    }
}

#[test]
fn another_projects_backup_in_a_shared_directory_is_refused_as_a_database_this_configuration_does_not_define()
 {
    let other = another_project();
    other.xtask(&["backup", "local"]).assert_ok();
    let theirs = only_backup(&other);
    let shared = other.backups();
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = sb.xtask(&[
        "--backup-dir",
        shared.to_str().unwrap(),
        "restore",
        &theirs,
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    // Never "no longer has": this configuration never had it, and the fix
    // is another project's checkout, not the git history of this one.
    assert!(
        run.stderr.contains("other_db_local")
            && run.stderr.contains("not defined by this configuration")
            && !run.stderr.contains("no longer has"),
        "{}",
        run.all()
    );
}

#[test]
fn another_projects_backup_of_an_environment_this_configuration_lacks_is_refused_not_loaded() {
    let other = another_project();
    local_named_dev(other.path());
    other.xtask(&["backup", "dev"]).assert_ok();
    let theirs = only_backup(&other);
    let shared = other.backups();
    let before = std::fs::read_dir(&shared).unwrap().count();
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = sb.xtask(&[
        "--backup-dir",
        shared.to_str().unwrap(),
        "restore",
        &theirs,
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    assert_eq!(
        run.code,
        Some(3),
        "another project's other_db_local was loaded into this one's local:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("other_db_local")
            && run.stderr.contains("not defined by this configuration")
            && run.stderr.contains("new:"),
        "{}",
        run.all()
    );
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        before,
        "a refused restore took a safety backup:\n{}",
        run.all()
    );
}

/// A `--clean` restore of a backup taken at other migrations is refused
/// with "Check out the commit the manifest names": a backup taken where
/// git had no commit (or outside git) names none, and the advice read
/// "Check out the commit the manifest names (unknown)", a commit nobody
/// can check out. It says the manifest names none, and what to look for.
#[test]
fn a_clean_restore_refused_for_other_migrations_never_names_an_unknown_commit() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let file = sb.backups().join(only_backup(&sb));
    let manifest = manifest_for(&sb, &only_backup(&sb));
    assert!(manifest["git_commit"].is_null(), "{manifest}");
    std::fs::write(
        sb.path().join("migrations/0005_x.sql"),
        "CREATE TABLE x (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let run = sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--yes",
    ]);
    run.assert_refused("different schema");
    let all = run.all();
    assert!(!all.contains("unknown"), "{all}");
    assert!(
        all.contains(
            "names no commit: check out one whose migrations are those the backup was taken with"
        ) && all.contains("restore without --clean"),
        "{all}"
    );
}

/// A year of migrations leaves a schema of a hundred tables: a restore
/// refused for a target that is not empty named every one of them, a
/// screenful of names before the fix. It names a few, then how many more,
/// as every list of names in a message does.
#[test]
fn a_restore_refused_for_a_target_with_many_tables_names_a_few_and_counts_the_rest() {
    let (sb, name) = sandbox_with_a_backup();
    let tables: String = (1..=60)
        .map(|i| format!("CREATE TABLE feature_{i} (id INTEGER PRIMARY KEY);\n"))
        .collect();
    sb.execute_sql(&tables);
    let run = sb.xtask(&["restore", &name, "--to", "local", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    run.assert_refused("is not empty");
    let named = (1..=60)
        .filter(|i| {
            run.stderr.contains(&format!("feature_{i},"))
                || run.stderr.contains(&format!("feature_{i})"))
        })
        .count();
    assert!(
        named <= 10,
        "{named} of the tables are named:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("more tables"), "{}", run.stderr);
    assert!(!run.stderr.contains("tabless"), "{}", run.stderr);
}

/// A dump of no manifest whose rows break a constraint (a key given
/// twice) cannot be loaded: SQLite refuses it whatever the target holds.
/// Each attempt took a safety backup of the target and only then failed
/// its load: seven attempts left seven identical safety backups. It is
/// refused before the safety backup, and nothing is written.
#[test]
fn a_dump_whose_rows_cannot_load_is_refused_before_the_safety_backup() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let mut sql = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let dup = sql
        .lines()
        .find(|l| {
            l.starts_with("INSERT INTO \"companies\"") || l.starts_with("INSERT INTO companies")
        })
        .unwrap_or_else(|| panic!("no companies row in the dump"))
        .to_owned();
    sql.push_str(&dup);
    sql.push('\n');
    let dump = sb.path().join("hand.sql");
    std::fs::write(&dump, sql).unwrap();
    let before = sb.backup_files();
    for _ in 0..2 {
        let run = sb.xtask(&[
            "restore",
            dump.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
            "--no-manifest",
        ]);
        assert_ne!(run.code, Some(0), "{}", run.all());
        assert!(
            run.stderr
                .contains("UNIQUE constraint failed: companies.id")
                && run.stderr.contains("no safety backup was taken"),
            "{}",
            run.all()
        );
        // The loader's words are about the scratch database, not the
        // operator's local one, which nothing touched.
        assert!(
            !run.stderr.contains("the local database was left unchanged"),
            "{}",
            run.all()
        );
    }
    assert_eq!(sb.backup_files(), before, "safety backups were taken");
}

/// verify named a failing statement "statement 25" where a restore of the
/// same dump named it "repaired statement 39" (it counted `--replace`'s
/// drops): the operator could not tell they were one statement. Both then
/// named it "repaired statement N", a number in the repaired dump the
/// operator never sees (the repair puts the schema first and writes
/// statements of its own) (LD). Both name the line of the operator's file
/// the failing statement starts on, and what it is, never its values.
#[test]
fn verify_and_restore_name_a_failing_statement_by_the_same_number() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let mut sql = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let dup = sql
        .lines()
        .find(|l| l.starts_with("INSERT INTO \"companies\""))
        .unwrap_or_else(|| panic!("no companies row in the dump"))
        .to_owned();
    sql.push_str(&dup);
    sql.push('\n');
    let line = sql.lines().count();
    let dump = sb.path().join("hand.sql");
    std::fs::write(&dump, sql).unwrap();
    let path = dump.to_str().unwrap();
    let values = &dup[dup.find("VALUES").unwrap()..];
    let verify = sb.xtask(&["verify", path, "--no-manifest"]);
    assert_eq!(verify.code, Some(1), "{}", verify.all());
    let restore = sb.xtask(&[
        "restore",
        path,
        "--to",
        "local",
        "--replace",
        "--yes",
        "--no-manifest",
    ]);
    assert_ne!(restore.code, Some(0), "{}", restore.all());
    for run in [&verify, &restore] {
        let text = run.all();
        assert!(
            text.contains(&format!(
                "line {line} of the dump (an INSERT into companies)"
            )),
            "{text}"
        );
        assert!(!text.contains("repaired statement "), "{text}");
        assert!(!text.contains(values), "{text}");
    }
}

/// A tired operator restoring over a live database must be told, before
/// anything runs, that what was written to it after the backup was taken
/// is not in the backup: it leaves the target, and only the safety backup
/// keeps it. The plan's `manifest` line gives the backup's time, but
/// nothing says what that time costs.
#[test]
fn a_replace_plan_says_the_writes_made_since_the_backup_leave_the_target() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql("UPDATE customers SET name = 'written after the backup';");
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--dry-run"]);
    run.assert_ok();
    let since = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("since"))
        .unwrap_or_else(|| panic!("no `since` line:\n{}", run.stdout));
    assert!(
        since.contains("written to qbtime_db_local after")
            && since.contains("only the safety backup keeps"),
        "{since}"
    );
    // Row values are never quoted.
    assert!(
        !run.all().contains("written after the backup"),
        "{}",
        run.all()
    );
}

/// `latest` after the damage is often the backup taken by hand of the
/// damaged state: the plan shows the reason it was taken with, beside its
/// time, so that the operator sees which backup `latest` is.
#[test]
fn a_restore_plan_shows_the_reason_its_backup_was_taken() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql("DELETE FROM report_configs;");
    backup_named(
        &sb,
        &["--reason", "after the bad import, for the postmortem"],
    );
    let run = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    run.assert_ok();
    assert!(
        { run.stdout.lines() }.any(|l| l.trim_start().starts_with("reason")
            && l.contains("after the bad import, for the postmortem")),
        "{}",
        run.stdout
    );
}

/// The runbook: after a restore, "confirm the encryption key in that
/// environment matches the one in force when the backup was taken —
/// otherwise ... every company will need to reconnect". The key refusal
/// said "Restore with the right DATA_ENCRYPTION_KEY in place", but the
/// check reads the target's `encryption_keys` table, not the secret: an
/// operator who set the secret and ran the command again met the same
/// refusal. And with `--accept-key-change` the checklist said only that
/// every company will reconnect, not how to avoid it. Both must name what
/// is compared and the key the environment's secret has to become.
#[test]
fn a_key_refusal_says_what_it_compares_and_which_key_the_secret_must_become() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    let file = backup(&source, &[]);
    let path = file.to_str().unwrap();
    let target = Sandbox::new();
    target.apply_migrations();
    target.execute_sql(
        "INSERT INTO encryption_keys (key_id, fingerprint) VALUES ('dek-other', 'sha256:9999');",
    );
    let run = target.xtask(&["restore", path, "--to", "local", "--replace", "--yes"]);
    run.assert_refused("will not decrypt");
    assert!(
        !run.stderr.contains("in place, or pass --accept-key-change"),
        "the refusal advises a secret change its check cannot see:\n{}",
        run.stderr
    );
    for want in [
        "encryption_keys",
        "DATA_ENCRYPTION_KEY secret to dek-2026-01",
    ] {
        assert!(run.stderr.contains(want), "{want:?} in:\n{}", run.stderr);
    }
    let run = target.xtask(&[
        "restore",
        path,
        "--to",
        "local",
        "--replace",
        "--yes",
        "--accept-key-change",
    ]);
    run.assert_ok();
    let line = run.stdout_line_with("[!] encryption key");
    assert!(
        line.contains("DATA_ENCRYPTION_KEY secret to dek-2026-01"),
        "the checklist does not say which key the environment's secret must become:\n{line}"
    );
}

/// The words of a command printed to paste (single quotes as
/// `shell_word` writes them), less its leading `npx wrangler`.
fn pasted_wrangler_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in command.chars() {
        match c {
            '\'' => (quoted, any) = (!quoted, true),
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    assert_eq!(words[..2], ["npx", "wrangler"], "{command}");
    words.split_off(2)
}

/// hlpDN: no restore loads `sqlite_stat1` (D1 reserves `sqlite_` names),
/// so a restored database has no planner statistics, though the backup
/// held them (taken after an ANALYZE). The restore says to run `PRAGMA
/// optimize` with a command that can be pasted as printed, runs nothing
/// itself, and `-q` prints no such advice.
#[test]
fn a_restore_advises_pragma_optimize_with_a_command_that_fills_sqlite_stat1() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    source.execute_sql("ANALYZE;");
    source.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&source);
    let file = source.backups().join(&name);
    let file = file.to_str().unwrap();

    let quiet = Sandbox::new();
    let run = quiet.xtask(&["-q", "restore", file, "--to", "local", "--yes"]);
    run.assert_ok();
    assert!(!run.all().contains("PRAGMA optimize"), "{}", run.all());

    let target = Sandbox::new();
    let run = target.xtask(&["restore", file, "--to", "local", "--yes"]);
    run.assert_ok();
    let line = run.stdout_line_with("PRAGMA optimize");
    assert!(line.contains("sqlite_stat1"), "{line}");
    let command = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `command` in: {line}"));
    let words = pasted_wrangler_words(command);
    assert_eq!(
        words[..3],
        ["d1", "execute", "qbtime_db_local"],
        "{command}"
    );
    assert!(words.contains(&"--local".to_owned()), "{command}");
    assert!(!words.contains(&"--remote".to_owned()), "{command}");
    // The restore ran nothing: no statistics yet.
    let stat = "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'";
    assert_eq!(target.query(stat)[0][0]["n"], 0);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    target.wrangler(&words).assert_ok();
    let rows = target.query_with_wrangler("SELECT count(*) AS n FROM sqlite_stat1");
    assert!(
        rows[0][0]["n"].as_u64().is_some_and(|n| n > 0),
        "PRAGMA optimize filled no statistics: {rows:?}"
    );
}

/// The lines of a run that tell the target already held the backup's rows.
fn already_held(run: &Run) -> Vec<String> {
    run.all()
        .lines()
        .filter(|l| l.contains("already held"))
        .map(str::to_owned)
        .collect()
}

/// EH: `backup local` then `restore latest:local` is a developer's normal
/// round trip. It said, as a warning of three sentences, that the database
/// held the rows, that the safety backup brings back nothing older, and
/// what to do if an earlier restore had landed, of which there was none.
/// It is one line now, no warning, and the way back is still named.
#[test]
fn a_restore_of_the_backup_just_taken_says_in_one_line_that_no_row_changed() {
    let (sb, _) = sandbox_with_a_backup();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    let told = already_held(&run);
    assert!(
        told.len() == 1 && told[0].contains("changed no row"),
        "one line that no row changed:\n{}",
        run.all()
    );
    assert!(!run.stderr.contains("warning:"), "{}", run.all());
    assert!(!run.all().contains("earlier restore"), "{}", run.all());
    assert!(
        run.stdout.contains("to go back, restore it"),
        "{}",
        run.all()
    );
}

/// EH: a safety backup that an earlier restore of other rows took is no
/// way back for a restore of the backup just taken: it was named as the
/// undo point of an earlier restore that never was.
#[test]
fn a_restore_of_the_backup_just_taken_names_no_safety_backup_of_another_restore() {
    let (sb, first) = sandbox_with_a_backup();
    sb.execute_sql(
        "INSERT INTO companies (name, qbt_company_id, timezone) VALUES ('One', 'qbt-1', 'UTC');",
    );
    restore_replacing(&sb, &first).assert_ok();
    sb.execute_sql(
        "INSERT INTO companies (name, qbt_company_id, timezone) VALUES ('Two', 'qbt-2', 'UTC');",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    let told = already_held(&run);
    assert!(
        told.len() == 1 && told[0].contains("changed no row"),
        "one line that no row changed:\n{}",
        run.all()
    );
    assert!(!run.stderr.contains("warning:"), "{}", run.all());
}

/// FB: a restore run again after its load landed named the safety backup
/// the earlier restore took as the way back; once that file was pruned,
/// the re-run said only that no row changed, and its own safety backup
/// (the backup's rows) was the one way back it gave. The database held
/// other rows after the backup was taken (a backup of it says so), so it
/// warns, and names the newest backup of it from before those rows.
#[test]
fn a_restore_run_again_after_its_safety_backup_was_pruned_names_the_newest_earlier_backup() {
    let (source, sb) = seed_backup_and_a_row();
    let file = source.backups().join(only_backup(&source));
    let file = file.to_str().unwrap();
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    let restore = ["restore", file, "--to", "local", "--replace", "--yes"];
    sb.xtask(&restore).assert_ok();
    // The earlier restore's safety backup, pruned (by hand here).
    let safety = sql_backups(&sb).into_iter().find(|f| *f != before).unwrap();
    let stem = safety.split(".sql").next().unwrap().to_owned();
    std::fs::remove_file(sb.backups().join(&safety)).unwrap();
    std::fs::remove_file(sb.backups().join(format!("{stem}.manifest.json"))).unwrap();

    let run = sb.xtask(&restore);
    run.assert_ok();
    let told = already_held(&run).join("\n");
    assert!(
        !told.contains("changed no row") && run.stderr.contains("warning:"),
        "the re-run says only that no row changed:\n{}",
        run.all()
    );
    let named = before.split(".sql").next().unwrap();
    assert!(
        run.stderr.contains(named) && run.stderr.contains("no longer"),
        "the re-run does not name {before}, the newest backup from before the earlier \
         restore, its safety backup gone:\n{}",
        run.all()
    );
}

/// rvAB: `restore BACKUP --to local --replace --yes` run twice, nothing
/// interrupted, warned that "an earlier restore of them landed (an
/// interrupted load D1 finished)". The tool cannot tell a restore that ran
/// to its end from one whose load D1 finished after an interrupt: the
/// warning claims no interruption (one is named only as one of the two),
/// and still names the first restore's safety backup as the way back.
#[test]
fn a_restore_run_again_with_nothing_interrupted_does_not_say_one_was() {
    let (_source, sb, restore, safety) = restored_over_a_row();
    let run = sb.xtask(&restore.iter().map(String::as_str).collect::<Vec<_>>());
    run.assert_ok();
    let told = already_held(&run).join("\n");
    let claimed: Vec<&str> = { told.match_indices("interrupt") }
        .filter(|(at, _)| !told[..*at].ends_with("or "))
        .map(|(at, _)| &told[at.saturating_sub(30)..])
        .collect();
    assert!(
        claimed.is_empty(),
        "the warning says an interruption happened:\n{}",
        run.all()
    );
    let stem = safety.split(".sql").next().unwrap();
    assert!(
        told.contains("earlier restore") && told.contains(stem),
        "the warning no longer names {safety} as the way back:\n{}",
        run.all()
    );
}

/// The printed commands of a run that restore a backup (a way back's).
fn restore_commands(out: &str) -> Vec<&str> {
    { out.lines().map(str::trim_start) }
        .filter(|l| l.starts_with("cargo xtask restore "))
        .collect()
}

/// rvCG: a restore run again after its load landed printed two ways back
/// that contradict each other: on stdout this run's safety backup ("to go
/// back, restore it: … -3.sql"), which holds the very rows restored, and
/// in a warning the safety backup the first restore took, the one that
/// brings back the older rows; and the warning said the first restore may
/// have been "interrupted and finished by D1", of a local D1. One way back
/// is printed, the older one, on stdout, which `-q` keeps; a drill's
/// restore the same.
#[test]
fn a_restore_run_again_prints_one_way_back_the_one_from_before_the_first() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql(
        "INSERT INTO companies (name, qbt_company_id, timezone) VALUES ('Later', 'qbt-9', 'UTC');",
    );
    let before = sql_backups(&sb);
    restore_replacing(&sb, &name).assert_ok();
    let first = { sql_backups(&sb).into_iter() }
        .find(|f| !before.contains(f))
        .unwrap();
    let again = [
        "restore",
        name.as_str(),
        "--to",
        "local",
        "--replace",
        "--yes",
    ];
    let quiet = [&["-q"][..], &again].concat();
    let drill = ["-q", "drill", "--to", "local", "--from", "local", "--yes"];
    for args in [&again[..], &quiet, &drill] {
        let run = sb.xtask(args);
        run.assert_ok();
        let all = run.all();
        let ways = restore_commands(&all);
        assert!(
            ways.len() == 1 && ways[0].contains(&first),
            "{args:?}: not one way back, to {first}:\n{all}"
        );
        assert_eq!(
            restore_commands(&run.stdout),
            ways,
            "{args:?}: the way back is not on stdout:\n{all}"
        );
        assert!(!all.contains("finished by D1"), "{args:?}:\n{all}");
    }
}

/// The sandbox of the test above: a backup, a row added after it, and a
/// restore of the backup; the backup's name and the safety backup that
/// first restore took.
fn restored_once() -> (Sandbox, String, String) {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql(
        "INSERT INTO companies (name, qbt_company_id, timezone) VALUES ('Later', 'qbt-9', 'UTC');",
    );
    let before = sql_backups(&sb);
    restore_replacing(&sb, &name).assert_ok();
    let first = backup_since(&sb, &before);
    (sb, name, first)
}

/// The one plain backup in `sb` that is not among `before`.
fn backup_since(sb: &Sandbox, before: &[String]) -> String {
    { sql_backups(sb).into_iter() }
        .find(|f| !before.contains(f))
        .expect("a new backup")
}

/// `-q restore NAME --to local --replace --yes`, and `more`.
fn restore_quietly(sb: &Sandbox, name: &str, more: &[&str]) -> Run {
    let mut args = vec!["-q", "restore", name, "--to", "local", "--replace", "--yes"];
    args.extend(more);
    sb.xtask(&args)
}

/// rvCH 1: a restore run again onto a target holding the rows the first
/// restore put there, and an index made since, printed the first restore's
/// safety backup as the one way back and called this run's "brings back
/// nothing older"; yet this run's is the only backup with the index. Rows
/// alike are not enough: this run's own way back is printed unless the
/// schema too is what the first restore left.
#[test]
fn a_restore_run_again_after_the_schema_changed_prints_its_own_way_back() {
    let (sb, name, first) = restored_once();
    sb.execute_sql("CREATE INDEX companies_by_tz ON companies(timezone);");
    let before = sql_backups(&sb);
    let run = restore_quietly(&sb, &name, &[]);
    run.assert_ok();
    let second = backup_since(&sb, &before);
    let held = std::fs::read_to_string(sb.backups().join(&second)).unwrap();
    assert!(held.contains("companies_by_tz"), "{held}");
    let all = run.all();
    let ways = restore_commands(&run.stdout);
    assert!(
        ways.len() == 1 && ways[0].contains(&second) && !ways[0].contains(&first),
        "not this run's way back, {second}:\n{all}"
    );
    assert!(!all.contains("brings back nothing older"), "{all}");
}

/// rvCH 2: with `-q --json`, a restore run again printed no command at
/// all, its warning named the older safety backup by its bare file name,
/// and the document named only this run's safety backup, the one the
/// warning called useless. The document gives the way back, its backup
/// by path and its command, and the warning names that path.
#[test]
fn a_restore_run_again_with_json_gives_its_one_way_back_in_the_document() {
    let (sb, name, first) = restored_once();
    let run = restore_quietly(&sb, &name, &["--json"]);
    run.assert_ok();
    let all = run.all();
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let backup = doc["result"]["way_back_backup"]
        .as_str()
        .unwrap_or_default();
    let command = doc["result"]["way_back"].as_str().unwrap_or_default();
    assert!(
        backup.ends_with(&first) && backup != first,
        "not the earlier safety backup by its path: {doc}"
    );
    assert!(
        command.starts_with("cargo xtask restore ") && command.contains(backup),
        "{doc}"
    );
    assert!(run.stderr.contains(backup), "{all}");
}

/// status's migrations line for local.
fn migrations_line(sb: &Sandbox) -> String {
    let run = sb.xtask(&["status", "--env", "local"]);
    run.assert_ok();
    run.stdout_line_with("  migrations ").to_owned()
}

/// rvCG: after `backup local` then a restore of that backup, which said
/// "this restore changed no row", status called the restore's safety
/// backup "a picture of what that restore undid", and pointed at `migrate
/// local --check`, which reads the database but leaves the line as it was:
/// only a new backup clears it. The line says what the safety backup is
/// (the database before that restore) and that a new `backup local` gives
/// the migrations again, which it does.
#[test]
fn status_after_a_restore_names_what_gives_the_migrations_again() {
    let (sb, _) = sandbox_with_a_backup();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    assert!(
        run.stdout.contains("this restore changed no row"),
        "{}",
        run.all()
    );
    sb.xtask(&["migrate", "local", "--check"]).assert_ok();
    let line = migrations_line(&sb);
    assert!(
        line.contains("unknown") && !line.contains("undid"),
        "{line}"
    );
    assert!(
        line.contains("a new `cargo xtask backup local`"),
        "it does not name what gives the migrations again: {line}"
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let line = migrations_line(&sb);
    assert!(!line.contains("unknown"), "{line}");
}

/// FTS5 tables whose settings a migration and the app changed: a rank
/// function, secure-delete and automerge, kept in their `_config` shadow
/// tables, which no export carries.
pub(crate) const FTS_SETTINGS_MIGRATION: &str = r#"
CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);
CREATE VIRTUAL TABLE notes_fts USING fts5(note, tag UNINDEXED);
CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id');
"#;

const FTS_SETTINGS: &str = r#"
INSERT INTO notes_fts(notes_fts, rank) VALUES('rank', 'bm25(10.0, 5.0)');
INSERT INTO docs_fts(docs_fts, rank) VALUES('secure-delete', 1);
INSERT INTO docs_fts(docs_fts, rank) VALUES('automerge', 2);
INSERT INTO docs(id, body) VALUES (1, 'alpha beta'), (2, 'gamma');
INSERT INTO docs_fts(docs_fts) VALUES('rebuild');
INSERT INTO notes_fts(note, tag) VALUES ('hello world', 't1');
"#;

fn fts_settings(sb: &Sandbox) -> Vec<Vec<String>> {
    sb.query(
        "SELECT k, v FROM notes_fts_config WHERE k <> 'version' ORDER BY k; \
         SELECT k, v FROM docs_fts_config WHERE k <> 'version' ORDER BY k",
    )
    .iter()
    .map(|rows| {
        rows.iter()
            .map(|r| format!("{}={}", r["k"], r["v"]))
            .collect()
    })
    .collect()
}

pub(crate) fn fts_settings_sandbox() -> Sandbox {
    let sb = fts_target();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(FTS_SETTINGS);
    sb
}

#[test]
fn a_restore_keeps_each_fts5_tables_settings() {
    let sb = fts_settings_sandbox();
    let before = fts_settings(&sb);
    assert_eq!(
        before,
        vec![
            vec![r#""rank"="bm25(10.0, 5.0)""#.to_owned()],
            vec![
                r#""automerge"=2"#.to_owned(),
                r#""secure-delete"=1"#.to_owned()
            ],
        ]
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    assert_eq!(fts_settings(&sb), before, "{}", run.all());
    // The index still answers, ranked by the function kept.
    let hits = sb.query("SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'alpha'");
    assert_eq!(hits[0].len(), 1);
}

/// HZ: the check after a restore compares every restored table with the
/// backup, but not the FTS5 settings it carries (`settings` in the
/// manifest, set again by the restore): a setting that did not come back
/// would pass unseen. It compares them now, read from each `_config` as the
/// backup reads them, and says so (`check::tests` shows a difference fail).
#[test]
fn the_after_restore_check_compares_the_fts5_settings_with_the_backups() {
    let sb = fts_settings_sandbox();
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    assert!(
        run.stdout_line_with("FTS5 settings")
            .contains("2 tables, each as the backup records them"),
        "{}",
        run.all()
    );
}

/// FTS5 takes a setting's key in any case and keeps it as typed, and
/// takes `hashsize` too: the backup carries both, and the restore sets them.
#[test]
fn a_backup_keeps_an_fts5_setting_typed_in_any_case_and_hashsize() {
    let sb = fts_settings_sandbox();
    sb.execute_sql(
        "INSERT INTO docs_fts(docs_fts, rank) VALUES('Automerge', 4);\n\
         INSERT INTO notes_fts(notes_fts, rank) VALUES('hashsize', 2048);",
    );
    let before = fts_settings(&sb);
    assert!(
        before[1].contains(&r#""Automerge"=4"#.to_owned()),
        "{before:?}"
    );
    assert!(
        before[0].contains(&r#""hashsize"=2048"#.to_owned()),
        "{before:?}"
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    assert_eq!(fts_settings(&sb), before, "{}", run.all());
}

#[test]
fn a_manifest_holding_an_fts5_setting_no_restore_may_set_is_refused() {
    let sb = fts_settings_sandbox();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    sb.execute_sql("INSERT INTO docs(id, body) VALUES (3, 'after the backup');");
    let before = sb.live_row_counts();
    for (key, value) in [
        ("version", serde_json::json!(4)),
        ("rank'); DROP TABLE docs; --", serde_json::json!(1)),
        ("automerge", serde_json::json!("x".repeat(5000))),
        // Values FTS5 refuses, only once the table is loaded.
        ("pgsz", serde_json::json!(1_000_000_000)),
        ("usermerge", serde_json::json!(1)),
        ("rank", serde_json::json!("x")),
    ] {
        edit_manifest(&sb, &name, |m| {
            for t in m["virtual_tables"]["tables"].as_array_mut().unwrap() {
                if t["name"] == "docs_fts" {
                    t["settings"] = serde_json::json!([{ "key": key, "value": value }]);
                }
            }
        });
        let run = restore_replacing(&sb, &name);
        assert_eq!(run.code, Some(2), "{key}: {}", run.all());
        assert!(run.stderr.contains("docs_fts"), "{}", run.all());
        assert!(run.stderr.contains("setting"), "{}", run.all());
        assert_eq!(sb.live_row_counts(), before, "nothing ran");
    }
}

/// A restore of the backup just taken, of a database with a contentless
/// FTS5 table: the restore recreates that table empty, and says so in a
/// warning; the line before it said that the restore "changed no row".
#[test]
fn a_restore_that_empties_a_contentless_index_never_says_it_changed_no_row() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_cl.sql"),
        "CREATE VIRTUAL TABLE cl USING fts5(x, content='');\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO cl(rowid, x) VALUES (1, 'contentless row');");
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    assert!(
        run.stderr.contains("cl was not restored whole"),
        "{}",
        run.all()
    );
    let told = already_held(&run).join("\n");
    assert!(!told.contains("changed no row."), "{}", run.all());
    assert!(
        told.contains("cl"),
        "the line names what changed:\n{}",
        run.all()
    );
    let hits = sb.query("SELECT rowid FROM cl WHERE cl MATCH 'contentless'");
    assert!(hits[0].is_empty(), "the index is empty, as said");
}

/// After ANALYZE, an export carries sqlite_stat1's rows, which the restore
/// drops (a name D1 reserves): the checklist said that no export carries
/// them.
#[test]
fn the_checklist_says_the_backups_statistics_are_dropped() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql("ANALYZE;");
    sb.xtask(&["backup", "local"]).assert_ok();
    assert!(
        sql_backups(&sb).iter().any(|f| {
            std::fs::read_to_string(sb.backups().join(f))
                .unwrap()
                .contains("sqlite_stat1")
        }),
        "the export carries them"
    );
    let run = restore_replacing(&sb, "latest:local");
    run.assert_ok();
    let line = run.stdout_line_with("query plans");
    assert!(!line.contains("no export carries"), "{line}");
    assert!(line.contains("dropped"), "{line}");
    assert!(line.contains("PRAGMA optimize"), "{line}");
}

/// rvCG: the checklist ended "[ ] query plans: no restore loads
/// sqlite_stat1 … run `… PRAGMA optimize`" after every restore, of a backup
/// that held no statistics too (its manifest's internal rows only
/// sqlite_sequence's): the restored database lacks none the backup had.
/// The item is there only for a backup that held them (above).
#[test]
fn the_checklist_has_no_query_plans_item_for_a_backup_without_statistics() {
    let (sb, name) = sandbox_with_a_backup();
    let internal = manifest_for(&sb, &name)["rows"].clone();
    assert!(internal.get("sqlite_stat1").is_none(), "{internal}");
    let run = restore_replacing(&sb, &name);
    run.assert_ok();
    assert!(run.stdout.contains("[x] content"), "{}", run.all());
    assert!(
        !run.all().contains("query plans") && !run.all().contains("PRAGMA optimize"),
        "{}",
        run.all()
    );
}

/// rvCH 3: a target with planner statistics (after an `ANALYZE`) loses
/// them in a restore of a backup taken before them, and the checklist said
/// nothing: the item is there when the backup held statistics or the
/// target had them before the restore.
#[test]
fn the_checklist_has_a_query_plans_item_when_the_target_had_statistics() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql("ANALYZE;");
    let count = |sql: &str| sb.query(sql)[0][0]["n"].as_u64();
    let stats = "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'";
    assert_eq!(count(stats), Some(1), "ANALYZE made no statistics");
    let run = restore_replacing(&sb, &name);
    run.assert_ok();
    assert!(
        run.stdout.contains("[ ] query plans") && run.stdout.contains("PRAGMA optimize"),
        "{}",
        run.all()
    );
    let kept =
        count(stats) == Some(1) && count("SELECT count(*) AS n FROM sqlite_stat1") != Some(0);
    assert!(!kept, "the statistics are there still: {}", run.all());
}

/// HZ: a dump converted to CRLF whole. A CR LF inside a string of the
/// schema (a DEFAULT, a CHECK, a trigger, a view) turns into LF with the
/// line endings: right where the conversion made it of an LF, wrong where
/// the original held that CR LF and the converter kept it (unix2dos, an
/// editor's "CRLF" that leaves CR LF alone), which no byte tells apart.
/// The plan named none of them ("turned CRLF line endings into LF").
/// Both D1's export and `backup` write a row's CR and LF as `char()`, so
/// no conversion touches a row.
#[test]
fn a_dump_converted_to_crlf_names_each_object_whose_quoted_text_the_repair_changes() {
    let source = Sandbox::new();
    source.execute_sql_with_wrangler(
        "CREATE TABLE lit (id INTEGER PRIMARY KEY, d TEXT DEFAULT 'p\r\nq', \
         c TEXT CHECK (c <> 'r\r\ns'));\n\
         CREATE TABLE plain (id INTEGER PRIMARY KEY, note TEXT);\n\
         CREATE TRIGGER tr AFTER INSERT ON lit BEGIN UPDATE lit SET d = d || 'x\r\ny' \
         WHERE id = new.id; END;\n\
         CREATE VIEW v AS SELECT 'v\r\nw' AS k;\n\
         INSERT INTO lit(id, c) VALUES (1, 'raw\r\nrow');\n\
         INSERT INTO plain VALUES (1, 'one\r\ntwo');\n",
    );
    let schema = "SELECT name, hex(sql) AS s FROM sqlite_schema WHERE name IN ('lit', 'tr', 'v') \
                  ORDER BY name; SELECT hex(d) AS d, hex(c) AS c FROM lit; \
                  SELECT hex(note) AS n FROM plain";
    let before = source.query(schema);
    let file = backup(&source, &[]);
    let lf = std::fs::read_to_string(&file).unwrap();
    // sed 's/$/\r/' doubles a CR LF; unix2dos keeps it.
    let doubled = lf.replace('\n', "\r\n");
    let kept = lf.replace("\r\n", "\u{0}").replace(['\n', '\u{0}'], "\r\n");
    for (name, text) in [("doubled", doubled), ("kept", kept)] {
        let dump = source.path().join(format!("{name}.sql"));
        std::fs::write(&dump, text).unwrap();
        let target = Sandbox::new();
        let dry = target.xtask(&[
            "restore",
            dump.to_str().unwrap(),
            "--to",
            "local",
            "--no-manifest",
            "--allow-trigger",
            "tr",
            "--dry-run",
        ]);
        dry.assert_ok();
        let line = dry.stdout_line_with("repairs");
        for object in ["table lit", "trigger tr", "view v"] {
            assert!(
                line.contains(object),
                "{name}: {object} not named: {}",
                dry.all()
            );
        }
        assert!(!line.contains("plain"), "{name}: {}", dry.all());
        let run = restore_without_manifest_allowing(&target, &dump, &["tr"]);
        run.assert_ok();
        assert!(
            run.stdout_line_with("repairs").contains("trigger tr"),
            "{}",
            run.all()
        );
        let after = target.query(schema);
        // Rows are written with char(): never changed.
        assert_eq!(after[1], before[1], "{name}");
        assert_eq!(after[2], before[2], "{name}");
        if name == "doubled" {
            assert_eq!(after[0], before[0], "{name}: the schema's CR LF came back");
        } else {
            assert_ne!(after[0], before[0], "{name}: undecidable, and said so");
        }
    }
}

/// The backup holds the table `"Widgets"`, the database `widgets` (the
/// same table to SQLite, whose names are case-insensitive, made again
/// under another case). The plan of a `--replace` restore said "LOSES
/// table widgets and every row in it: the backup does not have it", which
/// it does; the restore brings its rows back. Names are now compared as
/// SQLite compares them.
#[test]
fn a_replace_plan_does_not_lose_a_table_the_backup_has_under_another_case() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE \"Widgets\" (id INTEGER PRIMARY KEY, v TEXT); \
         INSERT INTO \"Widgets\" VALUES (1, 'a');",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    sb.execute_sql(
        "DROP TABLE \"Widgets\"; CREATE TABLE widgets (id INTEGER PRIMARY KEY, v TEXT); \
         INSERT INTO widgets VALUES (2, 'b');",
    );
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--dry-run"]);
    run.assert_ok();
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("LOSES")),
        "{}",
        run.stdout
    );
}

/// What `wrangler d1 export --local --table ...` writes for tables named
/// one by one, FTS5 shadow tables among them (a whole export of a database
/// with an FTS5 table is refused): each shadow table as a plain table with
/// its rows, and no `CREATE VIRTUAL TABLE`. It has no manifest.
pub(crate) fn shadow_tables_export(sb: &Sandbox) -> std::path::PathBuf {
    let tables = [
        "docs",
        "docs_fts_config",
        "notes_fts_content",
        "notes_fts_config",
    ];
    let dump = tables_export(sb, &tables, "shadow.sql");
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.contains("'notes_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID"));
    assert!(!text.contains("CREATE VIRTUAL TABLE"));
    dump
}

/// `wrangler d1 export --local --table T ...` of `tables`, into `output`
/// in the sandbox.
fn tables_export(sb: &Sandbox, tables: &[&str], output: &str) -> std::path::PathBuf {
    let mut args = vec!["d1", "export", "qbtime_db_local", "--local"];
    for table in tables {
        args.extend(["--table", table]);
    }
    args.extend(["--output", output, "-y"]);
    sb.wrangler(&args).assert_ok();
    sb.path().join(output)
}

/// An empty target whose migrations make [`FTS_SETTINGS_MIGRATION`]'s
/// FTS5 tables, not yet applied (for `--clean`).
pub(crate) fn fts_target() -> Sandbox {
    let target = Sandbox::new();
    std::fs::write(
        target.path().join("migrations/0005_fts.sql"),
        FTS_SETTINGS_MIGRATION,
    )
    .unwrap();
    target
}

/// [`shadow_tables_export`] of [`fts_settings_sandbox`] (kept, as the
/// dump is in it), and an empty target.
fn shadow_tables_and_a_target() -> (Sandbox, std::path::PathBuf, Sandbox) {
    let source = fts_settings_sandbox();
    let dump = shadow_tables_export(&source);
    (source, dump, Sandbox::new())
}

/// `restore DUMP --to local --no-manifest`, and `extra`.
fn restore_dump(target: &Sandbox, dump: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["restore", dump.to_str().unwrap(), "--to", "local"];
    args.push("--no-manifest");
    args.extend_from_slice(extra);
    target.xtask(&args)
}

/// IG: such an export restored into an empty database passed as "repairs
/// none needed": the shadow tables became plain tables, with no FTS5 table
/// and no search index, and nothing said so. The plan (the dry run's and
/// the run's) names them, the FTS5 tables they look like the shadow tables
/// of, and the backup that carries FTS5 tables; the rows are restored as
/// the dump says (exit 0).
#[test]
fn a_dump_of_fts5_shadow_tables_says_no_fts5_table_is_restored() {
    let source = fts_settings_sandbox();
    let dump = shadow_tables_export(&source);
    let target = Sandbox::new();
    let dry = restore_dump(&target, &dump, &["--dry-run"]);
    let run = restore_without_manifest(&target, &dump);
    for run in [&dry, &run] {
        run.assert_ok();
        let line = run.stdout_line_with("shadow tables");
        for name in [
            "notes_fts_content",
            "notes_fts_config",
            "docs_fts_config",
            "FTS5 table notes_fts",
            "FTS5 table docs_fts",
            "cargo xtask backup",
        ] {
            assert!(line.contains(name), "{name}: {}", run.all());
        }
    }
    let rows = target.query("SELECT count(*) AS n FROM notes_fts_content");
    assert_eq!(rows[0][0]["n"], 1, "the rows are restored as plain rows");
}

/// IQ: `--json` had no field for the plan's `NO FTS5` line, so a script
/// reading the plan never learnt that the shadow tables would be plain
/// tables with no search index. `plan.no_fts5` lists, per FTS5 table, the
/// tables the line names, as it names them; `{}` for a dump with none.
#[test]
fn a_json_restore_plan_lists_the_no_fts5_tables_as_the_text_plan_says_them() {
    let (_source, dump, target) = shadow_tables_and_a_target();
    let text = restore_dump(&target, &dump, &["--dry-run"]);
    text.assert_ok();
    let line = text.stdout_line_with("NO FTS5");
    let json = restore_dump(&target, &dump, &["--dry-run", "--json"]);
    json.assert_ok();
    assert!(json.stderr.contains(line), "{}", json.all());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let listed = doc["plan"]["no_fts5"].as_object().unwrap_or_else(|| {
        panic!("no plan.no_fts5:\n{}", json.stdout);
    });
    let mut named = Vec::new();
    for (fts5, tables) in listed {
        let tables: Vec<&str> = { tables.as_array().unwrap().iter() }
            .map(|t| t.as_str().unwrap())
            .collect();
        named.push(format!("{} of FTS5 table {fts5}", tables.join(", ")));
    }
    assert_eq!(
        named,
        [
            "docs_fts_config of FTS5 table docs_fts",
            "notes_fts_content, notes_fts_config of FTS5 table notes_fts"
        ]
    );
    let said = line.split(": these look like").next().unwrap();
    assert_eq!(said.trim_start_matches("  NO FTS5      "), named.join("; "));
    // A dump of no shadow table says none.
    let plain = target.path().join("plain.sql");
    std::fs::write(
        &plain,
        "CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO t VALUES (1);\n",
    )
    .unwrap();
    let json = restore_dump(&target, &plain, &["--dry-run", "--json"]);
    json.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["plan"]["no_fts5"],
        serde_json::json!({}),
        "{}",
        json.stdout
    );
}

/// IQ: an export of FTS5 shadow tables with no rows (a `_content` and a
/// `_docsize` of an FTS5 table holding nothing), restored `--clean` into
/// migrations that make that FTS5 table, loads: `--clean` skips the dump's
/// `CREATE`s and writes no row into them, so nothing is refused or lost.
/// But the plan said `NO FTS5` (they "will be plain tables ... with no
/// FTS5 table"), when the migrations make the FTS5 table and no plain
/// table is made. It says nothing of them now.
#[test]
fn a_clean_restore_of_empty_fts5_shadow_tables_makes_the_fts5_table_and_says_no_no_fts5() {
    let source = fts_settings_sandbox();
    source.execute_sql("DELETE FROM notes_fts;");
    let tables = ["docs", "notes_fts_content", "notes_fts_docsize"];
    let dump = tables_export(&source, &tables, "empty_shadow.sql");
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.contains("'notes_fts_content'(id INTEGER PRIMARY KEY, c0, c1)"));
    assert!(!text.contains("INTO \"notes_fts_content\""), "{text}");
    let target = fts_target();
    let run = restore_dump(&target, &dump, &["--clean", "--yes", "--json"]);
    run.assert_ok();
    assert!(!run.all().contains("NO FTS5"), "{}", run.all());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        doc["plan"]["no_fts5"],
        serde_json::json!({}),
        "{}",
        run.stdout
    );
    let made = target.query(
        "SELECT sql FROM sqlite_master WHERE name = 'notes_fts'; SELECT count(*) AS n FROM docs",
    );
    let sql = made[0][0]["sql"].as_str().unwrap_or_default();
    assert!(sql.contains("USING fts5"), "{made:?}");
    assert_eq!(made[1][0]["n"], 2, "the rows of docs are restored");
}

/// IQ: a dump without a manifest that creates its own FTS5 table beside
/// its shadow tables (the export above with `CREATE VIRTUAL TABLE` added
/// by hand) never gets the `NO FTS5` line, which would be untrue of it:
/// it is refused before the plan, naming the statement (D1's exports never
/// write one), into an empty database and `--clean` alike, and nothing
/// runs (the migrations not applied).
#[test]
fn a_dump_creating_its_own_fts5_table_beside_its_shadow_tables_is_refused_not_said_no_fts5() {
    let (_source, dump, target) = shadow_tables_and_a_target();
    let own = target.path().join("own_fts5.sql");
    let text = std::fs::read_to_string(&dump).unwrap();
    let create = "CREATE VIRTUAL TABLE notes_fts USING fts5(note, tag UNINDEXED);";
    std::fs::write(&own, format!("{create}\n{text}")).unwrap();
    let clean = fts_target();
    for (sb, extra) in [
        (&target, &["--dry-run"][..]),
        (&clean, &["--clean", "--yes"]),
    ] {
        let run = restore_dump(sb, &own, extra);
        run.assert_refused("creates virtual table notes_fts");
        assert!(!run.all().contains("NO FTS5"), "{}", run.all());
        assert!(run.stderr.contains("nothing was done"), "{}", run.all());
    }
    let tables = clean.query("SELECT name FROM sqlite_master WHERE name = 'docs'");
    assert!(tables[0].is_empty(), "the migrations did not run");
}

/// IG: the same export restored `--clean` into a target whose migrations
/// make the FTS5 tables failed after the migrations ran ("table
/// notes_fts_content may not be modified"), leaving the schema only. It is
/// refused before anything runs, naming the table and the fix.
#[test]
fn a_clean_restore_writing_into_fts5_shadow_tables_is_refused_before_anything_runs() {
    let source = fts_settings_sandbox();
    let dump = shadow_tables_export(&source);
    let target = fts_target();
    let run = restore_dump(&target, &dump, &["--clean", "--yes"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    for name in [
        "notes_fts_content",
        "FTS5 table notes_fts",
        "cargo xtask backup",
    ] {
        assert!(run.stderr.contains(name), "{name}: {}", run.all());
    }
    assert!(run.stderr.contains("Nothing was done"), "{}", run.all());
    let tables = target.query("SELECT name FROM sqlite_master WHERE name = 'docs'");
    assert!(tables[0].is_empty(), "the migrations did not run");
}

/// A local backup and a schema-only one take no count of whole REALs (a
/// local export writes them exactly; a schema-only one has no rows): the
/// restore's text plan rightly says nothing of them, but its `--json` gave
/// `whole_reals_counted: false`, as for a remote backup whose count is
/// missing. It gives `null` where no count applies.
#[test]
fn a_local_or_schema_only_backup_gives_no_whole_reals_count_in_the_json_plan() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    for args in [
        &["backup", "local"][..],
        &["backup", "local", "--schema-only"],
    ] {
        let before = sb.backup_files();
        sb.xtask(args).assert_ok();
        let name = { sb.backup_files().into_iter() }
            .find(|f| f.ends_with(".sql") && !before.contains(f))
            .unwrap_or_else(|| panic!("{args:?}: no backup written"));
        let path = sb.backups().join(&name);
        let mut restore = vec!["restore", path.to_str().unwrap(), "--to", "local"];
        restore.push("--replace");
        if args.contains(&"--schema-only") {
            restore.push("--partial");
        }
        let text = sb.xtask(&[&restore[..], &["--dry-run"]].concat());
        text.assert_ok();
        assert!(!text.all().contains("RETYPED?"), "{args:?}\n{}", text.all());
        let json = sb.xtask(&[&restore[..], &["--dry-run", "--json"]].concat());
        json.assert_ok();
        let doc: serde_json::Value = serde_json::from_str(&json.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", json.all()));
        assert_eq!(
            doc["plan"].get("whole_reals_counted"),
            Some(&serde_json::Value::Null),
            "{args:?}: {:#}",
            doc["plan"]
        );
    }
}

/// The shadow tables of one FTS5 table, named in another case in different
/// statements (`Notes_fts_data`, `notes_fts_config`), are of one FTS5 table
/// to SQLite: `plan.no_fts5` has one key for it, named as first written,
/// and the text plan names it once.
#[test]
fn shadow_tables_of_one_fts5_table_named_in_two_cases_are_one_no_fts5_key() {
    let target = Sandbox::new();
    let dump = target.path().join("shadows.sql");
    std::fs::write(
        &dump,
        "CREATE TABLE Notes_fts_data (id INTEGER PRIMARY KEY, block BLOB);\n\
         CREATE TABLE notes_fts_config (k PRIMARY KEY, v) WITHOUT ROWID;\n",
    )
    .unwrap();
    let json = restore_dump(&target, &dump, &["--dry-run", "--json"]);
    json.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["plan"]["no_fts5"],
        serde_json::json!({"Notes_fts": ["Notes_fts_data", "notes_fts_config"]}),
        "{}",
        json.stdout
    );
    let text = restore_dump(&target, &dump, &["--dry-run"]);
    text.assert_ok();
    let line = text.stdout_line_with("NO FTS5");
    assert!(
        line.contains("Notes_fts_data, notes_fts_config of FTS5 table Notes_fts:"),
        "{}",
        text.all()
    );
}

/// `restore --replace -q` at a terminal asks for the database name only
/// after showing what the restore destroys: the plan's `drops` and
/// `LOSES` lines, which -q hid, so the operator typed the name without
/// seeing that a table and its rows would be lost.
#[test]
fn a_quiet_restore_at_a_terminal_shows_what_it_loses_before_it_asks() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); \
         INSERT INTO notes (body) VALUES ('a'), ('b');",
    );
    let mut restore =
        InATerminal::start(&sb, &["-q", "restore", &name, "--to", "local", "--replace"]);
    let asked = restore.prints("Type the database name");
    let shown = restore.seen();
    restore.answer("not-the-name");
    let (code, out) = restore.end();
    assert!(asked, "it did not ask for the name:\n{out}");
    let asked_at = shown.find("Type the database name").unwrap();
    let before = &shown[..asked_at];
    assert!(
        before.contains("LOSES") && before.contains("table notes") && before.contains("drops"),
        "-q asked for the name without showing what is lost:\n{shown}"
    );
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(sb.query("SELECT count(*) AS n FROM notes")[0][0]["n"], 2);
}

/// The runbook's hand-made data-only export (`wrangler d1 export --local
/// --no-schema`, no manifest) into the local D1 it came from: each
/// refusal names the way that works, and following them loads the rows.
/// Without --clean (into-empty, or --replace, whose scratch load failed
/// on "no such table: d1_migrations") it is told that a dump that creates
/// no table takes --clean; --clean into a local D1 with tables names the
/// command that empties it (after a backup), which used to be named by no
/// command ("this one emptied first").
#[test]
fn a_hand_made_data_only_export_is_told_clean_and_each_advised_command_works() {
    let (sb, _) = sandbox_with_a_backup();
    let counts = sb.live_row_counts();
    let data = sb.export_data_only("data.sql");
    let data = data.to_str().unwrap();
    for mode in [&[][..], &["--replace"][..]] {
        let mut args = vec![
            "restore",
            data,
            "--to",
            "local",
            "--no-manifest",
            "--dry-run",
        ];
        args.extend_from_slice(mode);
        let run = sb.xtask(&args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("data-only") && run.stderr.contains("--clean"),
            "{args:?} is not told that a data-only dump takes --clean:\n{}",
            run.stderr
        );
    }
    let clean = [
        &["restore", data][..],
        &["--to", "local", "--no-manifest", "--clean"],
        &["--yes"],
    ]
    .concat();
    let refused = sb.xtask(&clean);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    let empties = { refused.stderr.split('`') }
        .find(|s| s.starts_with("rm "))
        .unwrap_or_else(|| panic!("no command empties the local D1:\n{}", refused.stderr));
    assert!(
        refused.stderr.contains("cargo xtask backup local"),
        "{}",
        refused.stderr
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let emptied = std::process::Command::new("sh")
        .args(["-c", empties])
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(emptied.status.success(), "`{empties}`: {emptied:?}");
    let loaded = sb.xtask(&clean);
    loaded.assert_ok();
    assert_eq!(sb.live_row_counts(), counts, "{}", loaded.all());
}

/// The database id of another checkout's local database.
const OTHER_ID: &str = "7e1f0c3a-2b4d-4c5e-8f6a-9b0c1d2e3f4a";

/// A backup of `sb`'s local database, dated two hours ago: its file.
fn ours_two_hours_ago(sb: &Sandbox) -> String {
    let ours = backup(sb, &[]);
    let ours = ours.file_name().unwrap().to_str().unwrap().to_owned();
    redate(sb, &ours, chrono::Utc::now() - chrono::Duration::hours(2))
}

/// A copy of `ours` recorded with [`OTHER_ID`], dated 30 minutes ago: its
/// file.
fn of_other_id_since(sb: &Sandbox, ours: &str) -> String {
    let at = chrono::Utc::now() - chrono::Duration::minutes(30);
    copy_taken_at(sb, ours, "local", at, |m| {
        m["database"]["uuid"] = OTHER_ID.into()
    })
}

/// rvAL: a newer backup recorded with local's names but another database
/// id (another checkout's local database sharing the backup directory) is
/// not `latest:local`: the restore picks this database's own newest,
/// saying it passed over the other one and how to pick it by its file;
/// `status --env local` reports our own backup, not the other one as
/// "of the database it had before", and mentions it.
#[test]
fn latest_and_status_pass_over_a_newer_backup_of_another_database_id() {
    let sb = source_sandbox();
    let ours = ours_two_hours_ago(&sb);
    let theirs = of_other_id_since(&sb, &ours);
    let run = plan_of_latest(&sb);
    let source = format!("source       {}", sb.backups().join(&ours).display());
    let said = run.stderr.contains(OTHER_ID) && run.stderr.contains("1 newer backup");
    assert!(
        run.code == Some(0) && run.stdout.contains(&source) && said,
        "latest:local is not our own {ours}, or {theirs} is passed over without a word:\n{}",
        run.all()
    );
    let status = sb.xtask(&["status", "--env", "local"]).all();
    assert!(
        status.contains(&ours) && !status.contains("(of the database it had before)"),
        "status does not report our own {ours}:\n{status}"
    );
    assert!(status.contains(OTHER_ID), "{status}");
}

/// A row another process writes to the local D1 while the restore takes
/// its safety backup is in neither that backup nor the restored database
/// unless the restore sees it: it must refuse (the row stays) or run
/// after it, never overwrite it silently. The target is made big enough
/// that the safety backup takes a while; the row is written once the
/// backup's export has begun (its `.partial` file is in backups/).
#[test]
fn a_write_during_the_safety_backup_is_never_lost_by_the_restore() {
    use std::time::{Duration, Instant};
    let source = source_sandbox();
    let file = backup(&source, &[]);
    let target = target_sandbox();
    target.apply_migrations();
    target.execute_sql(
        "CREATE TABLE bulk (x TEXT);\n\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)\n\
         INSERT INTO bulk SELECT printf('%.90d', i) FROM n;",
    );
    let mut restore = target
        .xtask_command(&[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let exporting =
        |name: &String| name.starts_with(".backup-local-") && name.ends_with(".partial");
    while !target.backup_files().iter().any(exporting) {
        assert!(
            restore.try_wait().unwrap().is_none(),
            "the restore ended before its safety backup"
        );
        assert!(
            Instant::now() < deadline,
            "no safety backup after two minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let db = rusqlite::Connection::open(target.local_d1_file()).unwrap();
    db.busy_timeout(Duration::from_secs(120)).unwrap();
    db.execute(
        "INSERT INTO companies (name) VALUES ('written during the restore')",
        [],
    )
    .unwrap();
    drop(db);
    assert!(
        restore.try_wait().unwrap().is_none(),
        "the write came after the restore ended: the test missed its window"
    );
    let run = Run::from_output(restore.wait_with_output().unwrap());
    let kept = target
        .query("SELECT count(*) AS n FROM companies WHERE name = 'written during the restore'");
    let safety = only_backup(&target);
    let backed_up = std::fs::read_to_string(target.backups().join(&safety)).unwrap();
    assert!(
        kept[0][0]["n"] == 1 || backed_up.contains("written during the restore"),
        "the write is in neither the database nor the safety backup: {}",
        run.all()
    );
    if !run.ok {
        run.assert_refused("another process wrote to the local D1 database");
        assert!(run.stderr.contains("Nothing was changed"), "{}", run.stderr);
    }
}

/// KU: `status --json` carries the newer backups of another database id
/// that the environment's newest verified backup passed over, by file and
/// id, as `other_ids_passed_over` (an empty list when there are none); it
/// was said on stderr only, and a scheduled job reading the document never
/// heard of them. stderr says it as before.
#[test]
fn status_json_lists_the_newer_backups_of_another_database_id_it_passed_over() {
    let sb = source_sandbox();
    let ours = ours_two_hours_ago(&sb);
    let json = |sb: &Sandbox| {
        let run = sb.xtask(&["status", "--env", "local", "--json"]);
        let doc: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", run.all()));
        (doc["environments"][0]["other_ids_passed_over"].clone(), run)
    };
    let (none, run) = json(&sb);
    assert_eq!(none, serde_json::json!([]), "{}", run.all());
    let theirs = of_other_id_since(&sb, &ours);
    let (listed, run) = json(&sb);
    assert_eq!(
        listed,
        serde_json::json!([{ "file": theirs, "database_id": OTHER_ID }]),
        "status --json does not list {theirs}, passed over:\n{}",
        run.all()
    );
    assert!(run.stderr.contains(OTHER_ID), "{}", run.all());
}

/// KT: a manifest-less `wrangler d1 export --table t` of an AUTOINCREMENT
/// table holds no `sqlite_sequence` rows (wrangler writes them only when
/// they are named), so the restore sets t's counter from its highest id:
/// 2 here, where the source had given 3 before deleting it. It used to say
/// nothing; it warns, naming the table, that an id deleted above the
/// highest restored may be given again, and how to set the counter. A
/// whole export, which carries the counters, restores 3 and does not warn.
#[test]
fn a_manifest_less_table_export_of_an_autoincrement_table_warns_its_counter_is_not_carried() {
    let source = Sandbox::new();
    source.execute_sql(
        "CREATE TABLE tickets (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
         INSERT INTO tickets (v) VALUES ('a'), ('b'), ('c');
         DELETE FROM tickets WHERE id = 3;",
    );
    for (file, table) in [("chosen.sql", Some("tickets")), ("whole.sql", None)] {
        let mut args = vec![
            "d1",
            "export",
            "qbtime_db_local",
            "--local",
            "--output",
            file,
        ];
        args.extend(table.iter().flat_map(|t| ["--table", t]));
        let export = source.wrangler(&args);
        assert!(export.ok, "{}", export.all());
        let target = Sandbox::new();
        let run = restore_without_manifest(&target, &source.path().join(file));
        run.assert_ok();
        let seq = target.query("SELECT seq FROM sqlite_sequence WHERE name = 'tickets'");
        let warned = run.stderr.contains("warning: tickets uses AUTOINCREMENT");
        match table {
            Some(_) => {
                assert_eq!(seq[0][0]["seq"], 2, "the counter is the top id");
                assert!(warned, "no warning:\n{}", run.all());
                assert!(run.stderr.contains("sqlite_sequence"), "{}", run.all());
            }
            None => {
                assert_eq!(seq[0][0]["seq"], 3, "the counter is carried");
                assert!(!warned, "{}", run.all());
            }
        }
    }
}

/// rvAR: `restore -q` printed nothing of its safety backup: the way back
/// ("to go back, restore it: cargo xtask restore … --replace") was said at
/// the normal level, which -q silences, so a scripted restore's log kept
/// no way back. It is the command's result, as `time-travel restore -q`'s
/// undo is: printed under -q too.
#[test]
fn a_quiet_restore_still_prints_its_way_back() {
    let (sb, name) = sandbox_with_a_backup();
    let run = sb.xtask(&[
        "-q",
        "restore",
        &name,
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    run.assert_ok();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("  cargo xtask restore "))
        .filter(|_| {
            run.stdout
                .contains("to go back, restore it:\n  cargo xtask restore ")
        })
        .unwrap_or_else(|| panic!("-q hid the way back:\n{}", run.all()));
    assert!(
        line.contains("--to local --replace --yes"),
        "{line}\n{}",
        run.all()
    );
}

/// rvAR: after restoring a backup whose key table is empty, the checklist
/// said the key's "fingerprint is in the restored encryption_keys table",
/// which holds no row; the plan had said the target records no key yet.
#[test]
fn the_checklist_says_no_key_is_recorded_when_the_restored_key_table_is_empty() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    run.assert_ok();
    let line = run.stdout_line_with("encryption key:");
    assert!(
        !line.contains("its fingerprint is in the restored") && line.contains("records no key"),
        "{line}\n{}",
        run.all()
    );
}

/// `--partial` with a whole backup: the flag would be ignored, and the
/// restore replace the whole database. What happened: `restore latest:local
/// --to local --replace --partial --yes` planned `mode replace` and
/// replaced every table. It should be refused (exit 2, nothing run),
/// naming the backup and that it is whole; `latest` resolves to the newest
/// backup, whole or not, so a whole newest backup is refused the same way.
#[test]
fn partial_with_a_whole_backup_is_refused_not_ignored() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql("DELETE FROM notifications;");
    let before = snapshot(&sb);
    for source in [name.as_str(), "latest:local"] {
        let file = sb.backups().join(&name);
        let source = if source == name {
            file.to_str().unwrap()
        } else {
            source
        };
        let run = sb.xtask(&[
            "restore",
            source,
            "--to",
            "local",
            "--replace",
            "--partial",
            "--yes",
        ]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr.contains(&name) && run.stderr.contains("whole"),
            "{}",
            run.stderr
        );
        assert_eq!(snapshot(&sb), before, "the database changed");
    }
}

/// LK found: a data-only backup of chosen tables restored `--replace
/// --partial` passed the scope checks (`--partial` let it by), took a
/// safety backup, dropped the tables and failed loading rows into tables
/// it does not create ("no such table"). A data-only backup, whole or of
/// chosen tables, goes only where `--clean` puts it: refused before
/// anything runs (exit 3, no safety backup), naming `--clean`.
#[test]
fn a_data_only_backup_of_chosen_tables_is_refused_with_replace_partial_before_anything_runs() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let file = backup_named(&sb, &["--data-only", "--table", "companies"]);
    let before = sb.backup_files();
    let tables = sb.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    let run = sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--partial",
        "--yes",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("data-only") && run.stderr.contains("--clean --partial"),
        "the refusal does not name the way that works:\n{}",
        run.all()
    );
    assert_eq!(sb.backup_files(), before, "a safety backup was taken");
    let after = sb.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    assert_eq!(after, tables, "the target's tables changed");
}

/// LV: a restore into an empty local D1 takes no safety backup, so the
/// newest verified backup stays the one taken before it, of a database
/// that is gone. `status` gave that backup's migrations ("all applied as
/// of that backup") for a database the restore took back before 0005. It
/// says what the last restore did (when, and from which backup) and that
/// the migrations are unknown, with `migrate local --check` to tell; and
/// `--json` the same: `last_restore`, `migrations_unknown`, and no
/// `pending_migrations`.
#[test]
fn status_after_a_restore_into_an_emptied_local_d1_does_not_give_the_backup_before_it() {
    let (sb, older) = sandbox_with_a_backup();
    migrate_local_with(&sb, "0005_later.sql", "CREATE TABLE later (x TEXT);\n");
    sb.xtask(&["backup", "local"]).assert_ok();
    let premise = sb.xtask(&["status", "--env", "local"]);
    let migrations = premise.stdout_line_with("migrations ");
    assert!(
        migrations.ends_with("all applied as of that backup"),
        "{migrations}"
    );
    // The README's way to empty a local D1: remove its SQLite files.
    sb.empty_local_d1();
    sb.xtask(&["restore", &older, "--to", "local", "--yes"])
        .assert_ok();
    let applied = sb.query("SELECT count(*) AS n FROM d1_migrations");
    assert_eq!(
        applied[0][0]["n"], 4,
        "the premise: 0005 is not applied now"
    );

    let text = sb.xtask(&["status", "--env", "local"]);
    text.assert_ok();
    assert!(
        !text.stdout.contains("all applied as of that backup"),
        "status calls every migration applied after a restore took the database back before \
         0005:\n{}",
        text.all()
    );
    let line = text.stdout_line_with("migrations ");
    assert!(
        line.contains("unknown") && line.contains("migrate local --check"),
        "{}",
        text.all()
    );
    let last = text.stdout_line_with("last restore ");
    assert!(last.contains(&older), "{}", text.all());

    let run = sb.xtask(&["status", "--env", "local", "--json"]);
    run.assert_ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let local = &doc["environments"][0];
    assert!(local.get("pending_migrations").is_none(), "{doc:#}");
    assert!(local["migrations_unknown"].is_string(), "{doc:#}");
    assert_eq!(local["last_restore"]["backup"], older.as_str(), "{doc:#}");
    assert_eq!(local["last_restore"]["status"], "done", "{doc:#}");

    // A backup taken after the restore knows the migrations again.
    sb.xtask(&["backup", "local"]).assert_ok();
    let after = sb.xtask(&["status", "--env", "local"]);
    assert!(
        after
            .stdout
            .contains("1 pending as of that backup: 0005_later.sql"),
        "{}",
        after.all()
    );
}

/// ME: a restore that failed having written nothing (its load, all or
/// nothing, refused the dump into an empty local D1) is journaled
/// `started` then `failed`, and `status` called the environment's
/// migrations unknown after it ("a restore came after that backup"), as
/// after one that loaded. It changed nothing: the migrations line stays
/// the backup's, and the last restore line says it failed and changed
/// nothing. A `started` line with no end while no run holds the backup
/// lock is told as an interrupted restore (one that may have loaded: the
/// migrations are unknown then), in the text and in `--json`.
#[test]
fn status_after_a_restore_that_changed_nothing_still_gives_the_backups_migrations() {
    let (sb, _) = sandbox_with_a_backup();
    // Emptied by hand (status cannot know it): a restore into it loads
    // straight into the file, all or nothing.
    sb.empty_local_d1();
    sb.execute_sql("SELECT 1");
    let premise = sb.xtask(&["status", "--env", "local"]);
    let migrations = premise.stdout_line_with("migrations ");
    assert!(
        migrations.ends_with("all applied as of that backup"),
        "{migrations}"
    );
    let dump = sb.path().join("export.sql");
    std::fs::write(
        &dump,
        "CREATE TABLE shifts (id INTEGER PRIMARY KEY, deleted_at TEXT);\n\
         CREATE INDEX shifts_live ON shifts (id) WHERE deleted_at IS NULL -- live rows only;\n\
         CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\n",
    )
    .unwrap();
    let dump = dump.to_str().unwrap();
    let run = sb.xtask(&["restore", dump, "--to", "local", "--no-manifest", "--yes"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let tables = sb.query("SELECT count(*) AS n FROM sqlite_master");
    assert_eq!(tables[0][0]["n"], 0, "the premise: nothing was written");

    let text = sb.xtask(&["status", "--env", "local"]);
    assert_eq!(
        text.stdout_line_with("migrations "),
        migrations,
        "a restore that changed nothing made the migrations unknown:\n{}",
        text.all()
    );
    let last = text.stdout_line_with("last restore ");
    assert!(
        last.contains("export.sql") && last.contains("failed") && last.contains("changed nothing"),
        "{}",
        text.all()
    );
    let json = sb.xtask(&["status", "--env", "local", "--json"]);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    let local = &doc["environments"][0];
    assert!(local.get("migrations_unknown").is_none(), "{doc:#}");
    assert_eq!(local["last_restore"]["status"], "failed", "{doc:#}");
    assert_eq!(local["last_restore"]["changed_nothing"], true, "{doc:#}");

    // A start with no end, dated after that failure, while no run holds
    // the backup lock: a restore interrupted, which may have loaded.
    let journal = sb.backups().join("restores.jsonl");
    let lines = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut started = lines[0].clone();
    assert_eq!(started["status"], "started", "{lines:?}");
    started["started_at"] = lines[1]["at"].clone();
    started["at"] = lines[1]["at"].clone();
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str(&format!("{started}\n"));
    std::fs::write(&journal, text).unwrap();
    let text = sb.xtask(&["status", "--env", "local"]);
    let last = text.stdout_line_with("last restore ");
    assert!(
        last.contains("interrupted") && !last.contains("it is running"),
        "{}",
        text.all()
    );
    let line = text.stdout_line_with("migrations ");
    assert!(line.contains("unknown"), "{}", text.all());
    let json = sb.xtask(&["status", "--env", "local", "--json"]);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    let local = &doc["environments"][0];
    assert_eq!(local["last_restore"]["status"], "interrupted", "{doc:#}");
    assert!(local["migrations_unknown"].is_string(), "{doc:#}");
}

/// ME: the success line named the environment alone ("Restored … into
/// qbtime_db_local (local)."), and the safety backup's the database alone:
/// neither said where the restore went. Each says it as the plan's target
/// line does: `(local D1)`.
#[test]
fn a_restore_says_it_went_into_the_local_d1() {
    let (sb, name) = sandbox_with_a_backup();
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    run.assert_ok();
    let restored = run.stdout_line_with("Restored ");
    assert!(
        restored.ends_with(&format!(
            "Restored {name} into qbtime_db_local (local, local D1)."
        )),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .contains("Taking a safety backup of qbtime_db_local (local D1) first."),
        "{}",
        run.all()
    );
}

/// Two verified backups of local a second apart, the newest's manifest
/// then edited (its `accounts` row count one more): their file names,
/// the older first.
fn two_backups_the_newest_manifest_edited(sb: &Sandbox) -> (String, String) {
    let older = backup(sb, &[]);
    let older = older.file_name().unwrap().to_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.xtask(&["backup", "local"]).assert_ok();
    let newest = { sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql") && *f != older)
        .max()
        .unwrap();
    let manifest = sb.backups().join(newest.replace(".sql", ".manifest.json"));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let rows = m["rows"]["accounts"].as_u64().unwrap();
    m["rows"]["accounts"] = (rows + 1).into();
    std::fs::write(&manifest, m.to_string()).unwrap();
    (older, newest)
}

/// Runs the `cargo xtask verify …` that `advice` names, as printed
/// (`run`, what printed it, is shown if it names none): it exits 1,
/// saying BAD.
#[track_caller]
fn verify_as_printed_finds_it_bad(sb: &Sandbox, advice: &str, run: &Run) {
    let verify = { advice.split('`').skip(1).step_by(2) }
        .find_map(|c| c.strip_prefix("cargo xtask verify "))
        .unwrap_or_else(|| panic!("no verify command printed:\n{}", run.all()));
    let mut words = vec!["verify"];
    words.extend(verify.split_whitespace());
    let checked = sb.xtask(&words);
    assert_eq!(checked.code, Some(1), "{}", checked.all());
    assert!(checked.stdout.contains("BAD"), "{}", checked.all());
}

/// A manifest edited after its backup (a row count) makes restore refuse
/// the backup, but `status` and `list` still called it the newest good
/// one and `latest:local` kept choosing it; the refusal's advice,
/// "`cargo xtask verify` the file", could not be pasted (rvBN 1). The
/// refusal names `cargo xtask verify PATH`, which run as printed marks it
/// BAD, after which `latest:local` passes it over for the backup before.
/// (`latest` passes it over before that verify too, as its manifest is no
/// longer the one verified: it is restored here by its name.)
#[test]
fn a_backup_refused_for_its_edited_manifest_names_the_verify_that_sets_latest_past_it() {
    let sb = source_sandbox();
    let (older, newest) = two_backups_the_newest_manifest_edited(&sb);
    let run = sb.xtask(&["restore", &newest, "--to", "local", "--replace", "--yes"]);
    run.assert_refused("its manifest does not describe it");
    verify_as_printed_finds_it_bad(&sb, &run.stderr, &run);
    let plan = plan_of_latest(&sb);
    plan.assert_ok();
    assert!(plan.stdout.contains(&older), "{}", plan.all());
}

/// MS: a verified backup's manifest edited afterwards (a row count) is
/// no longer called good before anyone verifies it again: `list` marks
/// it, `status` warns naming the verify to run (which, run as printed,
/// records it BAD), and `latest` chooses the older good backup, saying
/// why. They read only manifests: the verification records the sha256 of
/// the manifest it checked, and a manifest that no longer hashes to it
/// is not verified good.
#[test]
fn a_manifest_edited_after_its_verification_is_not_called_good_before_verify_runs() {
    let sb = source_sandbox();
    let (older, newest) = two_backups_the_newest_manifest_edited(&sb);

    let list = sb.xtask(&["list"]);
    list.assert_ok();
    assert!(
        list.stdout_line_with(&newest).contains("manifest changed"),
        "{}",
        list.all()
    );
    assert!(
        list.stdout_line_with(&older).contains(" good "),
        "{}",
        list.all()
    );

    let dry_run = "restore latest --to local --replace --dry-run";
    let plan = sb.xtask(&dry_run.split(' ').collect::<Vec<_>>());
    plan.assert_ok();
    assert!(plan.stdout.contains(&older), "{}", plan.all());
    let passed_over = { plan.stderr.lines() }
        .find(|l| l.contains(&format!("the newer {newest}")))
        .unwrap_or_else(|| panic!("not said to be passed over:\n{}", plan.all()));
    assert!(
        passed_over.contains("manifest was changed since") && passed_over.contains("passed over"),
        "{}",
        plan.all()
    );

    let status = sb.xtask(&["status", "--env", "local"]);
    let warned: Vec<&str> = { status.stderr.lines() }
        .filter(|l| l.contains(&newest) && l.contains("manifest"))
        .collect();
    assert_eq!(warned.len(), 1, "{}", status.all());
    let newest_verified = status.stdout_line_with("newest verified backup");
    assert!(newest_verified.contains(&older), "{}", status.all());
    verify_as_printed_finds_it_bad(&sb, warned[0], &status);
    let list = sb.xtask(&["list"]);
    assert!(
        list.stdout_line_with(&newest).contains(" bad "),
        "{}",
        list.all()
    );
}

/// `wrangler d1 export` of the local D1 by hand, with `extra` flags, into
/// `name` in the sandbox: its path.
fn hand_export(sb: &Sandbox, name: &str, extra: &[&str]) -> String {
    let file = sb.path().join(name);
    let args = ["d1", "export", "qbtime_db_local", "--local", "--output"];
    let args = [&args[..], &[file.to_str().unwrap()], extra].concat();
    sb.wrangler(&args).assert_ok();
    file.to_str().unwrap().to_owned()
}

/// A hand `--no-data` export (no manifest, no INSERT, not even of
/// `d1_migrations`) is the schema-only backup it is: `--replace` and into
/// an empty D1 are refused without --partial as the tool's own
/// `backup --schema-only` is, the local D1 unchanged (it used to replace
/// every table's rows with none and leave every migration pending); with
/// --partial the plan says no migration is recorded as applied. A hand
/// `--table` export is partial too. An honestly empty full export (its
/// `d1_migrations` rows held) is not refused.
#[test]
fn a_hand_made_schema_only_or_table_export_needs_partial_as_the_tools_own() {
    let (sb, _) = sandbox_with_a_backup();
    let counts = sb.live_row_counts();
    let schema = hand_export(&sb, "nd.sql", &["--no-data"]);
    let table = hand_export(&sb, "companies.sql", &["--table", "companies"]);
    let restore = |file: &str, extra: &[&str]| {
        let args = [
            &["restore", file, "--to", "local", "--no-manifest"][..],
            extra,
        ]
        .concat();
        sb.xtask(&args)
    };
    let refused = restore(&schema, &["--replace", "--yes"]);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    assert!(
        refused.stderr.contains("schema-only") && refused.stderr.contains("--partial"),
        "{}",
        refused.stderr
    );
    assert_eq!(sb.live_row_counts(), counts, "{}", refused.all());
    let planned = restore(&schema, &["--replace", "--partial", "--dry-run"]);
    planned.assert_ok();
    assert!(
        planned.all().contains("no migration recorded as applied"),
        "{}",
        planned.all()
    );
    sb.empty_local_d1();
    for file in [&schema, &table] {
        let refused = restore(file, &["--yes"]);
        assert_eq!(refused.code, Some(3), "{file}: {}", refused.all());
        assert!(refused.stderr.contains("--partial"), "{}", refused.stderr);
        assert!(sb.local_d1_files().is_empty(), "{file}: {}", refused.all());
    }
    let fresh = Sandbox::new();
    fresh.apply_migrations();
    let empty = hand_export(&fresh, "empty.sql", &[]);
    let args = ["restore", &empty, "--to", "local", "--no-manifest"];
    fresh
        .xtask(&[&args[..], &["--replace", "--dry-run"]].concat())
        .assert_ok();
}

/// rvBP 5's other side: a hand export of chosen tables whose parent the
/// restored database has is not refused for lacking it. Rows alone
/// (`--no-schema --table accounts`, which references encryption_keys)
/// restored `--clean --partial` go into the migrations' schema, which
/// makes the parent: they restore, and verify calls them good.
#[test]
fn a_hand_export_of_rows_whose_parent_the_migrations_make_restores_clean_and_partial() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(
        "INSERT INTO accounts (email, display_name, password_hash) VALUES \
         ('a@example.com', 'A', 'h'), ('b@example.com', 'B', 'h');",
    );
    let rows = hand_export(
        &source,
        "accounts.sql",
        &["--no-schema", "--table", "accounts"],
    );
    let target = Sandbox::new();
    target
        .xtask(&["verify", &rows, "--no-manifest"])
        .assert_ok();
    let args = ["restore", &rows, "--to", "local", "--no-manifest"];
    let clean = ["--clean", "--partial", "--yes"];
    target.xtask(&[&args[..], &clean].concat()).assert_ok();
    let sql = "SELECT email FROM accounts ORDER BY 1";
    assert_eq!(target.query(sql), source.query(sql));
}

/// NT 1: `-q restore --replace --yes` over a table the backup does not
/// have (made by a migration after it) exited 0 saying nothing of it: the
/// plan's `LOSES` line, which -q hid, was the only word, and `--json`'s
/// plan had only a count of objects. Under -q each `LOSES` line is a
/// warning, and the plan's `loses` lists the table (its rows not counted).
#[test]
fn a_quiet_replace_warns_of_the_table_it_loses_and_its_json_plan_lists_it() {
    let (sb, name) = sandbox_with_a_backup();
    migrate_local_with(
        &sb,
        "0005_add_notes.sql",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, t TEXT);",
    );
    sb.execute_sql("INSERT INTO notes (t) VALUES ('a'), ('b');");
    let args = ["restore", name.as_str(), "--to", "local", "--replace"];
    let plan = sb.xtask(&[&args[..], &["--dry-run", "--json"]].concat());
    plan.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        json["plan"]["loses"],
        serde_json::json!([{ "kind": "table", "name": "notes", "rows": null }]),
        "{}",
        plan.all()
    );
    let run = sb.xtask(&[&["-q"][..], &args[..], &["--yes"]].concat());
    run.assert_ok();
    let warned = { run.stderr.lines() }
        .find(|l| l.starts_with("warning:") && l.contains("LOSES"))
        .unwrap_or_else(|| panic!("-q said nothing of the table lost:\n{}", run.all()));
    assert!(warned.contains("table notes"), "{warned}");
    let left = sb.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'notes'");
    assert_eq!(left[0][0]["n"], 0);
}

/// NT 1: a schema-only backup restored `-q --partial --replace --yes`
/// makes every table again empty: the `LOSES` line is a warning under -q,
/// and `--json`'s `loses` names each table whose rows go.
#[test]
fn a_quiet_schema_only_replace_warns_that_every_row_goes_and_its_json_plan_lists_them() {
    let source = source_sandbox();
    let file = backup(&source, &["--schema-only"]);
    let target = target_sandbox();
    target.apply_migrations();
    target.execute_sql("INSERT INTO companies (name) VALUES ('gone after');");
    let file = file.to_str().unwrap();
    let args = ["restore", file, "--to", "local", "--partial", "--replace"];
    let plan = target.xtask(&[&args[..], &["--dry-run", "--json"]].concat());
    plan.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let loses = json["plan"]["loses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        loses.contains(&serde_json::json!({ "kind": "rows", "name": "companies", "rows": null })),
        "{}",
        plan.all()
    );
    let run = target.xtask(&[&["-q"][..], &args[..], &["--yes"]].concat());
    run.assert_ok();
    assert!(
        { run.stderr.lines() }
            .any(|l| l.starts_with("warning:") && l.contains("every row of every table")),
        "-q said nothing of the rows lost:\n{}",
        run.all()
    );
    assert_eq!(
        target.query("SELECT count(*) AS n FROM companies")[0][0]["n"],
        0
    );
}

/// rvCF 2: `restore <a backup of chosen tables> --to local --clean
/// --dry-run` was refused saying "the backup was taken with migrations [],
/// but migrations/ now holds [0001…]" and advising to check out the commit
/// the manifest names: a backup of chosen tables without `d1_migrations`
/// never records migrations, at any commit. The refusal says so, and what
/// restores it: --partial, without --clean.
#[test]
fn a_clean_restore_of_chosen_tables_says_they_record_no_migrations_and_what_restores_them() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let chosen = ["customers", "companies"].map(|t| ["--table", t]).concat();
    sb.xtask(&[&["backup", "local"][..], &chosen].concat())
        .assert_ok();
    let file = only_backup(&sb);
    let run = sb.xtask(&["restore", &file, "--to", "local", "--clean", "--dry-run"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let said = run.all();
    assert!(
        !said.contains("migrations []") && !said.to_lowercase().contains("check out"),
        "{said}"
    );
    assert!(
        said.contains("records no migrations") && said.contains("--partial"),
        "{said}"
    );
}

/// PD 5: a local D1 whose one table is an empty `"D1_Migrations"` (the
/// name in another case, which SQLite, and wrangler's `CREATE TABLE IF
/// NOT EXISTS d1_migrations`, read as d1_migrations) was refused by a
/// `--clean` restore as not empty, where an empty `d1_migrations` counts
/// as empty. It counts as empty in any case: the migrations are applied,
/// recorded in it, and the rows load.
#[test]
fn a_clean_restore_takes_an_empty_migrations_table_in_another_case_as_an_empty_database() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Acme');");
    sb.xtask(&["-q", "backup", "local", "--data-only"])
        .assert_ok();
    let file = sb.backups().join(only_backup(&sb));
    std::fs::remove_dir_all(sb.path().join(".wrangler")).unwrap();
    sb.execute_sql_with_wrangler(
        "CREATE TABLE \"D1_Migrations\"(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, \
         applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);",
    );
    let file = file.to_str().unwrap();
    let run = sb.xtask(&["restore", file, "--to", "local", "--clean", "--yes"]);
    run.assert_ok();
    let rows = sb.query("SELECT name FROM companies");
    assert_eq!(rows[0][0]["name"], "Acme", "{rows:?}\n{}", run.all());
    let recorded = sb.query("SELECT count(*) AS n FROM d1_migrations");
    assert_eq!(recorded[0][0]["n"], 4, "{recorded:?}");
}

/// A full backup of a database holding an empty table no migration makes
/// (`CREATE TABLE t(a)` by hand), with an index and a view on it.
fn backup_with_an_empty_hand_made_table(extra: &[&str]) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(
        "CREATE TABLE t(a);\nCREATE INDEX t_a ON t(a);\nCREATE VIEW tv AS SELECT a FROM t;\n",
    );
    let file = backup_named(&sb, extra);
    (sb, file)
}

/// PJ: a `--clean` restore of a backup holding an empty table no migration
/// makes passed its dry run, applied the migrations, loaded the rows and
/// then failed its check ("count the restored rows (read-only): no such
/// table: t", exit 1). `--clean` loads rows into the migrations' schema:
/// the table (and its index and view) is not made, which the plan says in
/// a `LOSES` line, the dry run and the real run alike; it held no row, so
/// the restore is checked without it and ends verified, the other rows
/// the backup's.
#[test]
fn a_clean_restore_says_it_leaves_out_an_empty_table_no_migration_makes_and_checks_the_rest() {
    let (sb, file) = backup_with_an_empty_hand_made_table(&[]);
    let want = snapshot(&sb);
    sb.empty_local_d1();
    let f = file.to_str().unwrap();
    let losses = |run: &Run| {
        let line = run.stdout_line_with("LOSES");
        assert!(
            line.contains("table t") && line.contains("index t_a") && line.contains("view tv"),
            "{}",
            run.all()
        );
        assert!(line.contains("no migration makes"), "{line}");
    };
    let (doc, json) = clean_restore_planned_then_run(&sb, f, losses);
    assert_eq!(
        doc["plan"]["loses"][0],
        serde_json::json!({"kind": "table", "name": "t", "rows": 0}),
        "{}",
        json
    );
    let mut got = snapshot(&sb);
    let objects = got.remove("sqlite_master").unwrap();
    assert!(
        !objects
            .iter()
            .any(|o| o.contains("\"t\"") || o.contains("\"tv\"")),
        "{objects:?}"
    );
    let mut want = want;
    want.remove("sqlite_master");
    want.remove("t");
    for snap in [&mut want, &mut got] {
        snap.remove("d1_migrations");
    }
    assert_eq!(got, want);
}

/// The same table holding a row is refused before anything runs, as it
/// was: `--clean` has no table to put the row in.
#[test]
fn a_clean_restore_of_a_row_of_a_table_no_migration_makes_is_still_refused_untouched() {
    let (sb, _) = backup_with_an_empty_hand_made_table(&[]);
    sb.execute_sql("INSERT INTO t VALUES (1);");
    let file = backup_named(&sb, &[]);
    sb.empty_local_d1();
    let f = file.to_str().unwrap();
    let run = sb.xtask(&["restore", f, "--to", "local", "--clean", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.all().contains("the migrations do not create"),
        "{}",
        run.all()
    );
    assert!(
        sb.local_d1_files().is_empty(),
        "local D1 was made\n{}",
        run.all()
    );
}

/// A data-only backup of a database holding an empty table no migration
/// makes failed its own verification ("t: expected 0, but the
/// table is missing": it is loaded into the migrations' schema), and was
/// marked BAD. It verifies GOOD, and restores `--clean` saying that t is
/// not made.
#[test]
fn a_data_only_backup_with_an_empty_table_no_migration_makes_verifies_and_restores_clean() {
    let (sb, file) = backup_with_an_empty_hand_made_table(&["--data-only"]);
    let f = file.to_str().unwrap();
    sb.xtask(&["verify", f]).assert_ok();
    sb.empty_local_d1();
    let run = sb.xtask(&["restore", f, "--to", "local", "--clean", "--yes"]);
    run.assert_ok();
    assert!(
        run.stdout_line_with("LOSES").contains("table t"),
        "{}",
        run.all()
    );
    assert_eq!(sb.query("SELECT count(*) AS n FROM accounts")[0][0]["n"], 3);
}

/// rvCJ 5: the plan of a restore of `backup local --table accounts
/// --table companies --table encryption_keys` said "manifest     full
/// backup of qbtime_db_local … 3 tables": only its LOSES line said the
/// backup holds chosen tables. The manifest line says so, naming them.
#[test]
fn the_plans_manifest_line_says_a_backup_holds_chosen_tables() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let tables = ["accounts", "companies", "encryption_keys"];
    let chosen: Vec<&str> = tables.iter().flat_map(|t| ["--table", t]).collect();
    let file = backup(&sb, &chosen);
    let args = ["restore", file.to_str().unwrap(), "--to", "local"];
    let plan = sb.xtask(&[&args[..], &["--replace", "--partial", "--dry-run"]].concat());
    let line = plan.stdout_line_with("  manifest ");
    assert!(
        line.contains("chosen tables only (accounts, companies, encryption_keys)"),
        "{}",
        plan.all()
    );
    // A whole backup's line says nothing of chosen tables.
    let whole = backup_named(&sb, &[]);
    let args = ["restore", whole.to_str().unwrap(), "--to", "local"];
    let plan = sb.xtask(&[&args[..], &["--replace", "--dry-run"]].concat());
    let line = plan.stdout_line_with("  manifest ");
    assert!(
        line.contains("full backup of qbtime_db_local") && !line.contains("chosen"),
        "{}",
        plan.all()
    );
}

/// PK 1: a `--clean` restore of a backup holding an FTS5 table no
/// migration makes said "no row is lost" of its shadow table fx_content
/// (holding 2 rows) while it planned to recreate fx, then applied the
/// migrations and failed "no such table: fx" (exit 1). Its rows have no
/// table to go into: refused before anything runs (exit 3), naming fx,
/// as a plain table's rows are.
#[test]
fn a_clean_restore_of_rows_of_an_fts5_table_no_migration_makes_is_refused_untouched() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE VIRTUAL TABLE fx USING fts5(body);\n\
         INSERT INTO fx(body) VALUES ('hello world'), ('second doc');\n",
    );
    let file = backup_named(&sb, &[]);
    sb.empty_local_d1();
    let f = file.to_str().unwrap();
    for extra in [&["--dry-run"][..], &["--yes"][..]] {
        let args = [&["restore", f, "--to", "local", "--clean"][..], extra].concat();
        let run = sb.xtask(&args);
        assert_eq!(run.code, Some(3), "{}", run.all());
        assert!(
            run.all()
                .contains("2 rows of virtual table fx, which the migrations do not create"),
            "{}",
            run.all()
        );
        assert!(sb.local_d1_files().is_empty(), "{}", run.all());
    }
}

/// PK 1: an empty FTS5 table no migration makes failed the real run the
/// same way ("no such table: fe"). It is left out by its own name, its
/// shadow tables not listed, in the plan and the real run alike, and the
/// restore ends verified.
#[test]
fn a_clean_restore_leaves_out_an_empty_fts5_table_no_migration_makes_by_its_name() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql("CREATE VIRTUAL TABLE fe USING fts5(body);\n");
    let file = backup_named(&sb, &[]);
    sb.empty_local_d1();
    let f = file.to_str().unwrap();
    let losses = |run: &Run| {
        let line = run.stdout_line_with("LOSES");
        assert!(line.contains("table fe:"), "{}", run.all());
        assert!(!line.contains("fe_"), "{line}");
    };
    let (doc, json) = clean_restore_planned_then_run(&sb, f, losses);
    assert_eq!(
        doc["plan"]["loses"],
        serde_json::json!([{"kind": "table", "name": "fe", "rows": 0}]),
        "{}",
        json
    );
    assert_eq!(sb.query("SELECT count(*) AS n FROM accounts")[0][0]["n"], 3);
}

/// A `--clean` restore of `f` to the local D1: its dry run, then its real
/// run, each told by `losses`, and a `--json` dry run between them; returns
/// that plan's document and text. The real run ends verified.
fn clean_restore_planned_then_run(sb: &Sandbox, f: &str, losses: impl Fn(&Run)) -> (Value, String) {
    let dry = sb.xtask(&["restore", f, "--to", "local", "--clean", "--dry-run"]);
    dry.assert_ok();
    losses(&dry);
    let json = sb.xtask(&[
        "restore",
        f,
        "--to",
        "local",
        "--clean",
        "--dry-run",
        "--json",
    ]);
    json.assert_ok();
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    let run = sb.xtask(&["restore", f, "--to", "local", "--clean", "--yes"]);
    run.assert_ok();
    losses(&run);
    assert!(run.stdout.contains("[x] row counts"), "{}", run.all());
    (doc, json.stdout)
}

/// rvCM 2: "no full backup of local; take one with …" never named the
/// directory it looked in, though a shell left with a rehearsal's exports
/// (`QBTIME_BACKUP_DIR`) looks elsewhere than `backups/`. It names it, and
/// why it is that one (`QBTIME_BACKUP_DIR`, `--backup-dir`), as `list`
/// does; the default directory is named too.
#[test]
fn no_backup_for_latest_names_the_backup_directory_looked_in_and_why() {
    let sb = Sandbox::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().display().to_string();
    let mut cmd = sb.xtask_command(&["restore", "latest:local", "--to", "local", "--replace"]);
    cmd.env("QBTIME_BACKUP_DIR", elsewhere.path());
    let by_variable = Run::from_output(cmd.output().unwrap());
    let typed = sb.xtask(&["--backup-dir", &dir, "verify", "latest:local"]);
    let default = sb.xtask(&["restore", "latest:local", "--to", "local", "--replace"]);
    let backups = sb.backups().display().to_string();
    for (run, looked_in, why) in [
        (&by_variable, dir.as_str(), Some("QBTIME_BACKUP_DIR")),
        (&typed, dir.as_str(), Some("--backup-dir")),
        (&default, backups.as_str(), None),
    ] {
        assert_eq!(run.code, Some(2), "{}", run.all());
        let said = { run.stderr.lines() }
            .find(|l| l.contains("no full backup of local"))
            .unwrap_or_else(|| panic!("{}", run.all()));
        assert!(
            said.contains(&format!("no full backup of local in {looked_in}"))
                && why.is_none_or(|why| said.contains(why))
                && said.contains("backup local`"),
            "{said}"
        );
    }
}
