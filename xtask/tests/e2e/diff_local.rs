//! `cargo xtask diff`, end to end: two backups that the real wrangler took
//! around a change, the live local D1 after it, hostile dumps on either
//! side, and a large table diffed with bounded memory.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// What happens to the seeded database between the two backups: a column
/// and an index added, one customer added, one removed, one changed.
const CHANGE_SQL: &str = "
ALTER TABLE customers ADD COLUMN phone TEXT;
CREATE INDEX customers_by_phone ON customers (phone);
INSERT INTO customers (company_id, qbt_customer_id, name, email) VALUES (2, 'jc-10', 'Porch repair', 'porch-owner@example.com');
DELETE FROM customers WHERE id = 2;
UPDATE customers SET email = 'henderson-new@example.net' WHERE id = 1;
";

/// The newest backup file in backups/ other than `except`.
fn newest_backup(sb: &Sandbox, except: &[&str]) -> String {
    sb.backup_files()
        .into_iter()
        .filter(|n| n.ends_with(".sql") && !except.contains(&n.as_str()))
        .max()
        .expect("a backup")
}

/// Every file in backups/ with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn two_backups_around_a_change_and_the_live_database_after_it() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = newest_backup(&sb, &[]);
    sb.execute_sql(CHANGE_SQL);
    // Backups taken in the same minute get -2 names; both are found by name.
    sb.xtask(&["backup", "local"]).assert_ok();
    let after = newest_backup(&sb, &[&before]);
    let kept = snapshot(&sb.backups());

    let run = sb.xtask(&["diff", &before, &after]);
    assert_eq!(run.code, Some(1), "differences exit 1:\n{}", run.all());
    let out = &run.stdout;
    for needle in [
        "+ index customers_by_phone on customers added",
        "~ table customers changed",
        "columns added: phone",
        "customers: 3 -> 3 rows; 1 added, 1 removed, 1 changed (by id)",
        "added    id=4",
        "removed  id=2",
        "changed  id=1 (email)",
        "Result: DIFFERENT",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{}", run.all());
    }
    assert!(
        out.contains("Unchanged:") && out.contains("accounts"),
        "{out}"
    );
    // Keys, never values, without --show-values.
    for value in [
        "porch-owner@example.com",
        "henderson-new@example.net",
        "h@example.com",
        "Porch repair",
        "City of Boulder",
    ] {
        assert!(
            !run.all().contains(value),
            "{value} printed:\n{}",
            run.all()
        );
    }

    let shown = sb.xtask(&["diff", &before, &after, "--show-values"]);
    assert_eq!(shown.code, Some(1), "{}", shown.all());
    assert!(
        shown
            .stdout
            .contains("email: 'h@example.com' -> 'henderson-new@example.net'"),
        "{}",
        shown.all()
    );
    assert!(shown.stdout.contains("'Porch repair'"), "{}", shown.all());

    let json = sb.xtask(&["diff", &before, &after, "--json"]);
    assert_eq!(json.code, Some(1), "{}", json.all());
    let doc: Value =
        serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", json.all()));
    assert_eq!(doc["command"], "diff");
    assert_eq!(doc["identical"], false);
    assert_eq!(doc["values_shown"], false);
    let schema = doc["schema"].as_array().unwrap();
    assert!(schema.iter().any(|c| c["kind"] == "index"
        && c["name"] == "customers_by_phone"
        && c["change"] == "added"));
    let table = schema
        .iter()
        .find(|c| c["kind"] == "table" && c["name"] == "customers")
        .unwrap();
    assert_eq!(table["columns"]["added"], serde_json::json!(["phone"]));
    let customers = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "customers")
        .unwrap();
    assert_eq!(customers["rows"], serde_json::json!({"a": 3, "b": 3}));
    assert_eq!(customers["key"], serde_json::json!(["id"]));
    assert_eq!(customers["added"]["count"], 1);
    assert_eq!(customers["added"]["sample"][0]["key"]["id"], "4");
    assert_eq!(customers["removed"]["sample"][0]["key"]["id"], "2");
    assert_eq!(
        customers["changed"]["sample"][0]["columns"],
        serde_json::json!(["email"])
    );
    assert!(customers["changed"]["sample"][0].get("values").is_none());
    assert!(!json.stdout.contains("@example"), "{}", json.stdout);

    let same = sb.xtask(&["diff", &before, &before]);
    assert_eq!(same.code, Some(0), "{}", same.all());
    assert!(same.stdout.contains("Result: the same"), "{}", same.all());

    // The live database now is what the second backup holds, and differs
    // from the first as the second does.
    let dry = sb.xtask(&["diff", &before, "live:local", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}", dry.all());
    assert!(dry.stdout.contains("from its SQLite file"), "{}", dry.all());
    assert!(dry.stdout.contains("Dry run"), "{}", dry.all());
    let live = sb.xtask(&["diff", &after, "live:local"]);
    assert_eq!(live.code, Some(0), "{}", live.all());
    let live = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert_eq!(live.code, Some(0), "{}", live.all());
    sb.execute_sql("DELETE FROM notifications WHERE id = 2;");
    let live = sb.xtask(&["diff", &after, "live:local"]);
    assert_eq!(live.code, Some(1), "{}", live.all());
    assert!(
        live.stdout
            .contains("notifications: 2 -> 1 rows; 0 added, 1 removed"),
        "{}",
        live.all()
    );
    assert!(
        live.stdout.contains("b: live local -> qbtime_db_local"),
        "{}",
        live.all()
    );

    // Nothing was written to backups/: no backup of the live side, no
    // manifest changed (not even a verification recorded).
    assert_eq!(snapshot(&sb.backups()), kept);
    assert_no_partials(&sb);
}

#[test]
fn usage_errors_exit_2_and_name_the_fix() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["diff", "nope.sql", "live:local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("no such file: nope.sql"),
        "{}",
        run.all()
    );
    let dump = sb.path().join("hand.sql");
    std::fs::write(&dump, "CREATE TABLE t(x);\n").unwrap();
    let path = dump.to_str().unwrap();
    let run = sb.xtask(&["diff", path, "live"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("live:prod"), "{}", run.all());
    let run = sb.xtask(&["diff", path, "live:nowhere"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let run = sb.xtask(&["diff", path, path, "--table", "missing"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains("--table missing: neither side has such a table"),
        "{}",
        run.all()
    );
}

/// OT 1: `diff --table` of a table neither side has echoed it, listed
/// the tables and said the one near it bare (`--table -y`, "did you mean
/// -x?"), and `--table -x`, typed from it, is refused by the parser: each
/// is given as it is typed, `--table=-x`.
#[test]
fn an_unknown_diff_table_is_said_as_typed_for_a_name_starting_with_a_dash() {
    let sb = Sandbox::new();
    let dump = sb.path().join("hand.sql");
    std::fs::write(&dump, "CREATE TABLE \"-x\"(id INTEGER PRIMARY KEY);\n").unwrap();
    let path = dump.to_str().unwrap();
    let run = sb.xtask(&["diff", path, path, "--table=-y"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    for said in [
        "--table=-y: neither side has such a table",
        "the tables are: --table=-x",
        "did you mean --table=-x?",
    ] {
        assert!(run.stderr.contains(said), "{said}:\n{}", run.all());
    }
}

#[test]
fn a_hostile_dump_on_either_side_is_refused_and_reaches_nothing_outside() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let decoy = outside.path().join("decoy.sqlite");
    rusqlite::Connection::open(&decoy)
        .unwrap()
        .execute_batch("CREATE TABLE x(v); INSERT INTO x VALUES('keep me');")
        .unwrap();
    let decoy_bytes = std::fs::read(&decoy).unwrap();
    let copy = outside.path().join("copy.sqlite");
    let quoted = |p: &Path| p.display().to_string().replace('\'', "''");
    let good = sb.path().join("good.sql");
    std::fs::write(
        &good,
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO \"t\" (\"id\",\"v\") VALUES(1,'a');\n",
    )
    .unwrap();
    for (i, hostile) in [
        format!("ATTACH '{}' AS o;\nDELETE FROM o.x;\n", quoted(&decoy)),
        format!("VACUUM INTO '{}';\n", quoted(&copy)),
        // The pragma alone is sqlite3's `.dump` wrapper, now removed (NM);
        // what it is there for, a write to sqlite_schema, is refused.
        "PRAGMA writable_schema=ON;\nUPDATE sqlite_schema SET sql = 'x' WHERE name = 't';\n"
            .to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let bad = sb.path().join(format!("hostile-{i}.sql"));
        std::fs::write(
            &bad,
            format!("{}{hostile}", std::fs::read_to_string(&good).unwrap()),
        )
        .unwrap();
        for (a, b) in [(&bad, &good), (&good, &bad)] {
            let run = sb.xtask(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
            assert_eq!(run.code, Some(2), "{hostile}:\n{}", run.all());
            assert!(
                run.stderr.contains("cannot be compared")
                    && run.stderr.contains("Nothing was compared"),
                "{hostile}:\n{}",
                run.all()
            );
            assert!(!run.all().contains("Result:"), "{}", run.all());
        }
    }
    assert_eq!(std::fs::read(&decoy).unwrap(), decoy_bytes);
    assert!(!copy.exists());
    // The good file diffed with itself is fine: the refusal was the dump's.
    let run = sb.xtask(&["diff", good.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

/// A dump in wrangler's format: one table of `rows` rows of about 200
/// bytes, every `every`th row's body changed by `salt`.
fn big_dump(path: &Path, rows: u64, salt: &str, every: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "PRAGMA defer_foreign_keys=TRUE;").unwrap();
    writeln!(
        out,
        "CREATE TABLE big(id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
    )
    .unwrap();
    let filler = "x".repeat(180);
    for id in 1..=rows {
        let body = if id % every == 0 { salt } else { "" };
        writeln!(
            out,
            "INSERT INTO \"big\" (\"id\",\"body\") VALUES({id},'{filler}{id}{body}');"
        )
        .unwrap();
    }
}

/// Runs the xtask and returns its exit code, its own peak resident memory
/// in bytes, and its output.
///
/// The peak is the kernel's high-water mark of the process (`VmHWM`),
/// read every few milliseconds while it runs. Not `wait4`'s `ru_maxrss`:
/// Linux records there, at `exec`, the high-water mark of the memory the
/// process had before it (this test harness's, shared or copied), so under
/// a full suite it measured the harness (103 MB) rather than the diff
/// (27 MB). A sample misses at most the last few milliseconds of growth;
/// a side held in memory is held for far longer.
fn peak_memory(sb: &Sandbox, args: &[&str]) -> (Option<i32>, u64, String) {
    let log = sb.path().join("run.log");
    let mut child = sb
        .xtask_command(args)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(peak_kib > 0, "no memory figure was read from {status_file}");
    (
        status.code(),
        peak_kib * 1024,
        std::fs::read_to_string(log).unwrap(),
    )
}

#[test]
fn a_large_table_is_diffed_with_bounded_memory() {
    let sb = Sandbox::new();
    let rows = 300_000;
    let (a, b) = (sb.path().join("big-a.sql"), sb.path().join("big-b.sql"));
    big_dump(&a, rows, "", 1);
    big_dump(&b, rows, "-changed", 1000);
    let size = std::fs::metadata(&a).unwrap().len();
    let (code, peak, out) = peak_memory(&sb, &["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "big: {rows} -> {rows} rows; 0 added, 0 removed, 300 changed"
        )),
        "{out}"
    );
    assert!(out.contains("... and 290 more changed"), "{out}");
    eprintln!("diff of two {size}-byte dumps: peak memory {peak} bytes");
    // Either side held in memory would alone take more than its dump.
    assert!(
        peak < size,
        "peak memory {peak} bytes for two {size}-byte dumps: not bounded"
    );
}

/// A dump in wrangler's format: one table with no key of `rows` narrow
/// rows (two integers), every `every`th row's second value moved by
/// `shift`.
fn keyless_dump(path: &Path, rows: u64, shift: u64, every: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "PRAGMA defer_foreign_keys=TRUE;").unwrap();
    writeln!(out, "CREATE TABLE events(at INTEGER, n INTEGER);").unwrap();
    for at in 1..=rows {
        let n = if at % every == 0 { at + shift } else { at };
        writeln!(
            out,
            "INSERT INTO \"events\" (\"at\",\"n\") VALUES({at},{n});"
        )
        .unwrap();
    }
}

/// A table with no key has its rows matched by all their values: the
/// count of each distinct row must not be held in memory for the whole
/// table, or an append-only log table of a few million rows takes
/// gigabytes where a keyed table of the same size takes a few megabytes.
#[test]
fn a_large_table_with_no_key_is_diffed_with_bounded_memory() {
    let sb = Sandbox::new();
    let rows = 1_000_000;
    let (a, b) = (sb.path().join("log-a.sql"), sb.path().join("log-b.sql"));
    keyless_dump(&a, rows, 0, 1);
    keyless_dump(&b, rows, 1, 1000);
    let size = std::fs::metadata(&a).unwrap().len();
    let (code, peak, out) = peak_memory(&sb, &["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "events: {rows} -> {rows} rows; 1000 added, 1000 removed, 0 changed"
        )),
        "{out}"
    );
    eprintln!("diff of two {size}-byte keyless dumps: peak memory {peak} bytes");
    assert!(
        peak < size,
        "peak memory {peak} bytes for two {size}-byte dumps of a table with no key: not bounded"
    );
}

/// rvAI: the README's own example, `diff latest:ENV live:ENV --table
/// customers`, no longer runs. `backup --table` now refuses chosen tables
/// whose foreign keys reference a table left out
/// (`catalog::refuse_missing_parents`), and the live side of a diff is
/// exported through the same `ExportScope::plan`: the diff stops with
/// exit 2, "customers references companies, which the backup does not
/// hold … Nothing was exported", although a diff restores nothing and
/// compares only the table named. Both sides are the same database here:
/// the diff must run and say so (exit 0).
#[test]
fn a_diff_of_one_table_that_references_another_runs_as_the_readme_shows() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "customers"]);
    assert!(
        !run.all().contains("which the backup does not hold"),
        "a diff refused as if it were a backup:\n{}",
        run.all()
    );
    assert_eq!(
        run.code,
        Some(0),
        "the same rows on both sides:\n{}",
        run.all()
    );
}

/// atkAQ: SQLite records a trigger's table as the `CREATE TRIGGER` wrote it
/// (`ON AUDIT_LOG` gives `tbl_name` `AUDIT_LOG`), while `--table` matches
/// it by exact name: a trigger added to `audit_log` that deletes every
/// customer is not in a `--table audit_log` diff, which says "the same"
/// and exits 0; and a trigger re-created `ON Audit_Log` is called
/// "removed" although the live database has it.
#[test]
fn a_diff_of_one_table_reports_its_triggers_whatever_case_they_name_it_in() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql(
        "CREATE TRIGGER audit_log_wipe AFTER INSERT ON AUDIT_LOG BEGIN DELETE FROM customers; END;",
    );
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "audit_log"]);
    assert_eq!(
        run.code,
        Some(1),
        "a trigger was added to audit_log:\n{}",
        run.all()
    );
    assert!(
        run.stdout.contains("+ trigger audit_log_wipe") && run.stdout.contains("Result: DIFFERENT"),
        "{}",
        run.all()
    );

    sb.execute_sql(
        "DROP TRIGGER audit_log_no_delete;
         CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON Audit_Log BEGIN SELECT 1; END;",
    );
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "audit_log"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains("~ trigger audit_log_no_delete")
            && !run
                .stdout
                .contains("audit_log_no_delete on audit_log removed"),
        "the live database has the trigger, changed, not removed:\n{}",
        run.all()
    );
}

/// atkAQ: diff never compares `sqlite_sequence` (every `sqlite_*` name is
/// left out as internal), so a live database whose AUTOINCREMENT counter
/// moved on (a row inserted and deleted since the backup) is "the same" as
/// the backup, exit 0, although restoring that backup would give the
/// deleted row's id to the next new row, which restore otherwise takes
/// care never to do.
#[test]
fn a_diff_tells_an_autoincrement_counter_that_moved_on() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql(
        "INSERT INTO companies (name) VALUES ('Short-lived');
         DELETE FROM companies WHERE name = 'Short-lived';",
    );
    let seq = sb.query("SELECT seq FROM sqlite_sequence WHERE name = 'companies'");
    assert_eq!(seq[0][0]["seq"], 3, "the counter moved on: {seq:?}");
    let run = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert_eq!(
        run.code,
        Some(1),
        "the counter of companies is 2 in the backup and 3 live:\n{}",
        run.all()
    );
    assert!(run.stdout.contains("Result: DIFFERENT"), "{}", run.all());
    assert!(
        run.stdout.contains("AUTOINCREMENT counter: 2 -> 3"),
        "{}",
        run.all()
    );
    let json = sb.xtask(&["diff", "latest:local", "live:local", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let companies = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "companies")
        .unwrap();
    assert_eq!(
        companies["autoincrement"],
        serde_json::json!({"a": 2, "b": 3})
    );
}

/// atkBA: a year on, the schema has 150 tables. A diff of two backups that
/// differ in one row of one table says which table changed, and sums up
/// the 159 that did not (150 of them ours), instead of naming each on one line of
/// several kilobytes, in which the one that changed is easy to miss.
#[test]
fn a_diff_of_a_150_table_database_sums_up_the_unchanged_tables() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let mut sql = String::from(SEED_SQL);
    for t in 0..150 {
        sql.push_str(&format!(
            "CREATE TABLE \"ledger_entries_of_a_long_descriptive_name_{t:03}\" \
             (id INTEGER PRIMARY KEY, amount INTEGER, memo TEXT);\n\
             INSERT INTO \"ledger_entries_of_a_long_descriptive_name_{t:03}\" \
             (id, amount, memo) VALUES (1, {t}, 'opening balance');\n"
        ));
    }
    sb.execute_sql(&sql);
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = newest_backup(&sb, &[]);
    sb.execute_sql(
        "UPDATE \"ledger_entries_of_a_long_descriptive_name_042\" SET amount = 4200 WHERE id = 1;",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let after = newest_backup(&sb, &[&before]);

    let run = sb.xtask(&["diff", &before, &after]);
    assert_eq!(run.code, Some(1), "differences exit 1:\n{}", run.all());
    let out = &run.stdout;
    assert!(
        out.contains("ledger_entries_of_a_long_descriptive_name_042"),
        "the table that changed is named:\n{out}"
    );
    assert!(
        out.contains("Unchanged: 159 tables"),
        "the unchanged ones are counted:\n{out}"
    );
    let named = (0..150)
        .filter(|t| out.contains(&format!("ledger_entries_of_a_long_descriptive_name_{t:03}")))
        .count();
    let longest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        named <= 20 && longest <= 1000,
        "149 unchanged tables are summed up, not each named ({named} of 150 tables named, \
         longest line {longest} characters):\n{out}"
    );
}

/// A dry run refuses what the run refuses before it reads anything: an
/// encrypted side without `--identity`, and an identity file that is not
/// there. It never says nothing is wrong (exit 0) for a diff that then
/// stops at once, as `restore --dry-run` does not.
#[test]
fn a_diff_dry_run_refuses_an_encrypted_side_without_an_identity_as_the_run_does() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let (_, name) = sealed_local_backup(&sb, &keys.path().join("local.agekey"));

    let run = sb.xtask(&["diff", &name, "live:local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let dry = sb.xtask(&["diff", &name, "live:local", "--dry-run"]);
    assert_eq!(
        dry.code,
        Some(2),
        "the dry run passes what the run refuses:\n{}",
        dry.all()
    );
    assert!(dry.stderr.contains("--identity"), "{}", dry.all());
    let json = sb.xtask(&["diff", &name, "live:local", "--dry-run", "--json"]);
    assert_eq!(json.code, Some(2), "{}", json.all());
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["exit_code"], 2, "{doc}");

    let missing = keys.path().join("typo.agekey");
    let dry = sb.xtask(&[
        "diff",
        &name,
        "live:local",
        "--dry-run",
        "--identity",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(dry.code, Some(2), "{}", dry.all());
    assert!(dry.stderr.contains("typo.agekey"), "{}", dry.all());
    let with_key = sb.xtask(&[
        "diff",
        &name,
        "live:local",
        "--dry-run",
        "--identity",
        keys.path().join("local.agekey").to_str().unwrap(),
    ]);
    with_key.assert_ok();

    // Two live sides: the run refuses a mistyped identity, so does its
    // dry run.
    let typo = ["--identity", missing.to_str().unwrap()];
    let run = sb.xtask(&[&["diff", "live:local", "live:local"][..], &typo].concat());
    assert_eq!(run.code, Some(2), "{}", run.all());
    let dry = sb.xtask(
        &[
            &["diff", "live:local", "live:local", "--dry-run"][..],
            &typo,
        ]
        .concat(),
    );
    assert_eq!(
        dry.code,
        Some(2),
        "the dry run passes what the run refuses:\n{}",
        dry.all()
    );
    assert!(dry.stderr.contains("typo.agekey"), "{}", dry.all());
}

/// `diff A live:ENV --table nosuch` exported the live database and only
/// then said that neither side has such a table (exit 2). The backup's
/// manifest and the migrations already say which tables there can be:
/// a table in neither is refused before anything runs against a database,
/// the dry run too.
#[test]
fn a_diff_of_an_unknown_table_is_refused_before_the_live_database_is_exported() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    for dry in [false, true] {
        let mut args = vec!["diff", "latest:local", "live:local", "--table", "nosuch"];
        if dry {
            args.push("--dry-run");
        }
        let run = sb.xtask(&args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr
                .contains("--table nosuch: neither side has such a table"),
            "{args:?}:\n{}",
            run.all()
        );
        assert!(
            !run.all().contains("Exporting"),
            "{args:?} exported the live database before refusing:\n{}",
            run.all()
        );
    }
}

/// A table that a migration added after the backup is in the live
/// database and not in the backup: `--table` on it is not refused as
/// unknown, and the diff shows it on the live side only. Its row is
/// counted ("1 added"), not told as "... and 1 more added" under no row
/// shown (a table on one side has no key to show rows by).
#[test]
fn a_diff_of_a_table_that_a_later_migration_added_shows_it_on_the_live_side() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    std::fs::write(
        sb.path().join("migrations/0005_ledger_notes.sql"),
        "CREATE TABLE ledger_notes (id INTEGER PRIMARY KEY, note TEXT);\n\
         INSERT INTO ledger_notes (note) VALUES ('first');\n",
    )
    .unwrap();
    sb.apply_migrations();
    let run = sb.xtask(&[
        "diff",
        "latest:local",
        "live:local",
        "--table",
        "ledger_notes",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains("+ table ledger_notes added")
            && run.stdout.contains("the table is only in b"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("1 added") && !run.stdout.contains("more added"),
        "{}",
        run.all()
    );
}

/// A table's name is the database's: SQLite takes any text, `cargo xtask
/// backup prod` too. With `--backup-dir DIR` typed, every printed line and
/// every string of a `--json` document has the typed options put after
/// each `cargo xtask COMMAND` in it, table names included: `diff` reports
/// the table `cargo xtask --backup-dir DIR backup prod`, which the
/// database does not have (unchanged, in its text; in `--json`, the
/// `table` a script looks up). A listing names what the database holds,
/// as it is; only the tool's own advice carries the options.
#[test]
fn a_table_named_like_a_command_is_listed_as_it_is_under_a_typed_backup_dir() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(
        "CREATE TABLE \"cargo xtask backup prod\" (id INTEGER PRIMARY KEY);\n\
         INSERT INTO \"cargo xtask backup prod\" VALUES (1);\n",
    );
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("nightly");
    let dir_arg = dir.to_str().unwrap();
    sb.xtask(&["--backup-dir", dir_arg, "backup", "local"])
        .assert_ok();
    sb.execute_sql("INSERT INTO \"cargo xtask backup prod\" VALUES (2);\n");

    let run = sb.xtask(&[
        "--backup-dir",
        dir_arg,
        "diff",
        "latest:local",
        "live:local",
    ]);
    assert!(
        run.all().contains("cargo xtask backup prod") && !run.all().contains("--backup-dir"),
        "diff does not name the table as the database has it:\n{}",
        run.all()
    );
    let run = sb.xtask(&[
        "--backup-dir",
        dir_arg,
        "diff",
        "latest:local",
        "live:local",
        "--json",
    ]);
    let doc: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let text = doc.to_string();
    assert!(
        text.contains("\"cargo xtask backup prod\"") && !text.contains("--backup-dir"),
        "diff --json does not name the table as the database has it: {doc:#}"
    );
}

/// A table that no migration makes (made by hand, or by the app itself
/// with `CREATE TABLE IF NOT EXISTS`) is in the live database and not in
/// an older backup: `--table` on it shows it on the live side. The check
/// made before the export took the migrations for all the live side can
/// have, and refused it as a table neither side has.
#[test]
fn a_diff_of_a_table_made_outside_the_migrations_shows_it_on_the_live_side() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql(
        "CREATE TABLE app_cache (id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO app_cache (v) VALUES ('warm');\n",
    );
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "app_cache"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains("+ table app_cache added")
            && run.stdout.contains("the table is only in b"),
        "{}",
        run.all()
    );
}

/// A table with no key (`CREATE TABLE t (a, b)`) has rows matched by their
/// rowid, but no export carries a rowid it does not have to: each side's
/// rows are numbered 1, 2, 3… as they are loaded. One row deleted from the
/// middle made every row after it "changed" (each compared with its next
/// neighbour) and the last one "removed". Such rows are matched by all
/// their values, as rows whose key holds NULL are: one row removed.
#[test]
fn a_row_deleted_from_a_table_with_no_key_is_one_row_removed_not_every_later_row_changed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE events (kind TEXT, at INTEGER);\n\
         INSERT INTO events VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4), ('e', 5), ('a', 1);\n",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    sb.execute_sql("DELETE FROM events WHERE kind = 'b';\n");
    let run = sb.xtask(&["diff", &before, "live:local", "--table", "events", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()));
    let events = doc["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "events"))
        .unwrap_or_else(|| panic!("no events table:\n{doc:#}"));
    assert_eq!(
        [
            &events["added"]["count"],
            &events["removed"]["count"],
            &events["changed"]["count"]
        ],
        [0, 1, 0],
        "one row was deleted:\n{doc:#}"
    );
    // Without it the row is only counted, and the result line says so.
    let run = sb.xtask(&["diff", &before, "live:local", "--table", "events"]);
    assert!(
        run.stdout.contains(
            "Result: DIFFERENT (rows counted only; --show-values prints the rows' values)"
        ),
        "{}",
        run.all()
    );
    // With --show-values the row is shown by its values, there being no key.
    let run = sb.xtask(&[
        "diff",
        &before,
        "live:local",
        "--table",
        "events",
        "--show-values",
    ]);
    assert!(
        run.stdout.contains("    removed  kind: 'b'; at: 2\n"),
        "{}",
        run.all()
    );
    // The same rows in the same order, and a duplicate row kept: the same.
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "events"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

/// A data-only backup and a full backup of the same database, a moment
/// apart, hold the same rows (the data-only export carries d1_migrations's
/// rows too); diff reported them DIFFERENT, d1_migrations "only in b", as
/// it reports a data-only backup against the live database it was taken
/// from.
#[test]
fn a_data_only_backup_and_a_full_backup_of_the_same_rows_are_the_same() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let data_only = only_backup(&sb);
    sb.xtask(&["backup", "local"]).assert_ok();
    let full = newest_backup(&sb, &[&data_only]);

    for (a, b) in [
        (data_only.as_str(), full.as_str()),
        (data_only.as_str(), "live:local"),
    ] {
        let run = sb.xtask(&["diff", a, b]);
        assert_eq!(
            run.code,
            Some(0),
            "diff {a} {b}: the same rows reported as different:\n{}",
            run.all()
        );
        assert!(run.stdout.contains("Result: the same"), "{}", run.stdout);
    }
}

/// The comparison leaves d1_migrations out when a side is a data-only
/// backup: a migration applied to the live database after the backup was
/// taken (a table added, empty) must still show, as the backup is loaded
/// on the migrations its manifest records, not on today's.
#[test]
fn a_migration_applied_after_a_data_only_backup_is_a_difference() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let data_only = only_backup(&sb);
    std::fs::write(
        sb.path().join("migrations/0005_flags.sql"),
        "CREATE TABLE flags(id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    )
    .unwrap();
    sb.wrangler(&["d1", "migrations", "apply", "qbtime_db_local", "--local"])
        .assert_ok();
    let run = sb.xtask(&["diff", &data_only, "live:local"]);
    assert_eq!(
        run.code,
        Some(1),
        "a migration applied since the backup was taken:\n{}",
        run.all()
    );
    assert!(
        run.stdout.contains("Result: DIFFERENT") && run.stdout.contains("flags"),
        "{}",
        run.all()
    );
}

/// SQLite names are case-insensitive, and an export, a migration or an ORM
/// may respell one: a backup's `User` and the live database's `user` are
/// one table, their rows compared, not one table removed and another added.
#[test]
fn a_table_respelt_in_case_is_compared_not_removed_and_added() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE User (id INTEGER PRIMARY KEY, name TEXT);\n\
         INSERT INTO User (id, name) VALUES (1, 'ada'), (2, 'bob');\n",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    sb.execute_sql(
        "DROP TABLE User;\n\
         CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT);\n\
         INSERT INTO user (id, name) VALUES (1, 'ada'), (2, 'bob');\n",
    );
    let run = sb.xtask(&["diff", &before, "live:local"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("Result: the same"), "{}", run.all());
    sb.execute_sql("UPDATE user SET name = 'cy' WHERE id = 2;\n");
    let run = sb.xtask(&["diff", &before, "live:local", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()));
    let users: Vec<&Value> = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["table"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("user"))
        })
        .collect();
    assert_eq!(users.len(), 1, "one table, compared:\n{doc:#}");
    assert_eq!(
        [
            &users[0]["added"]["count"],
            &users[0]["removed"]["count"],
            &users[0]["changed"]["count"]
        ],
        [0, 0, 1],
        "one row changed:\n{doc:#}"
    );
}

/// An index, trigger or view naming its table in another case or quoting
/// (`ON "user"` for `User`) names the same table to SQLite: the texts are
/// the same schema, not a change.
#[test]
fn an_object_naming_its_table_respelt_is_no_schema_change() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE User (id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE INDEX user_name ON User (name);\n\
         CREATE TRIGGER user_touch AFTER UPDATE ON User BEGIN SELECT 1; END;\n\
         CREATE VIEW user_names AS SELECT name FROM User;\n\
         INSERT INTO User (id, name) VALUES (1, 'ada');\n",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    sb.execute_sql(
        "DROP INDEX user_name;\n\
         DROP TRIGGER user_touch;\n\
         DROP VIEW user_names;\n\
         CREATE INDEX user_name ON \"user\" (name);\n\
         CREATE TRIGGER user_touch AFTER UPDATE ON [USER] BEGIN SELECT 1; END;\n\
         CREATE VIEW user_names AS SELECT name FROM `user`;\n",
    );
    let run = sb.xtask(&["diff", &before, "live:local"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("Result: the same"), "{}", run.all());
    // A real change to the index is still one.
    sb.execute_sql(
        "DROP INDEX user_name;\n\
         CREATE INDEX user_name ON \"user\" (id, name);\n",
    );
    let run = sb.xtask(&["diff", &before, "live:local"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("user_name"), "{}", run.all());
}

/// `--table` names a table as SQLite finds it, ASCII case aside; one that
/// no side has is refused naming the tables of a near name.
#[test]
fn a_diff_table_is_matched_case_insensitively_and_a_near_miss_is_named() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql("UPDATE customers SET name = 'x' WHERE id = 1;\n");
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "CUSTOMERS"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("customers"), "{}", run.all());
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "customer"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("did you mean --table customers?"),
        "{}",
        run.all()
    );
}

/// A migration that rebuilds `customers` (create new, copy, drop, rename)
/// with its name `COLLATE NOCASE` and a CHECK on the table: the
/// diff of the backups around it says what changed, on the column where
/// it is the column's, on the table where it is the table's, and in
/// `--json` too; names and kinds only, never a row's value.
#[test]
fn a_table_rebuilt_with_a_collation_says_what_changed_not_only_that_it_did() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = newest_backup(&sb, &[]);
    migrate_local_with(
        &sb,
        "0005_customers_name_nocase.sql",
        "CREATE TABLE customers_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id      INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    qbt_customer_id TEXT    NOT NULL,
    name            TEXT    NOT NULL COLLATE NOCASE,
    email           TEXT,
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    synced_at       TEXT,
    UNIQUE (company_id, qbt_customer_id),
    CHECK (length(name) > 0)
);
INSERT INTO customers_new SELECT * FROM customers;
DROP TABLE customers;
ALTER TABLE customers_new RENAME TO customers;
CREATE INDEX customers_by_company_name ON customers (company_id, name);
",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let after = newest_backup(&sb, &[&before]);

    let run = sb.xtask(&["-v", "diff", &before, &after]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    for needle in [
        "~ table customers changed",
        "columns changed: name (collation)",
        "table changed: CHECK",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            run.all()
        );
    }
    assert!(!run.stdout.contains("length(name)"), "{}", run.all());

    let json = sb.xtask(&["diff", &before, &after, "--json"]);
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    let customers = doc["schema"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "table" && c["name"] == "customers")
        .expect("customers in the schema's changes");
    assert_eq!(
        customers["columns"]["changed"],
        serde_json::json!(["name"]),
        "{customers}"
    );
    assert_eq!(
        customers["columns"]["how"]["name"],
        serde_json::json!(["collation"]),
        "{customers}"
    );
    assert_eq!(
        customers["table_changed"],
        serde_json::json!(["CHECK"]),
        "{customers}"
    );
}

/// rvCH: the tables a `diff --table` typo was told of, read from a
/// backup's manifest, held SQLite's own (`--table sqlite_sequence`), which
/// no `--table` can take (named, it was refused as a table neither side
/// has). They are left out of that list; the app's tables are in it.
#[test]
fn a_diff_of_a_mistyped_table_lists_no_internal_table() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&[
        "diff",
        "latest:local",
        "latest:local",
        "--table",
        "compnies",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("--table companies"), "{}", run.all());
    assert!(!run.stderr.contains("sqlite_"), "{}", run.all());
}

/// PD 2: `diff --table` of SQLite's or D1's own table (`sqlite_stat1`,
/// `sqlite_sequence`, `_cf_KV`) was told "neither side has such a table"
/// of a backup that holds it, or, with a live side, exported the database
/// first and then gave backup's refusal ("a full backup (without --table)
/// carries it"). It is told internal, as `backup --table` tells it, exit
/// 2, before anything is exported, whatever the sides.
#[test]
fn a_diff_of_an_internal_table_is_refused_as_internal_before_anything_runs() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("ANALYZE;");
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    let file = newest_backup(&sb, &[]);
    for table in ["sqlite_stat1", "sqlite_sequence", "_cf_KV", "SQLITE_MASTER"] {
        for b in [file.as_str(), "live:local"] {
            let run = sb.xtask(&["diff", &file, b, "--table", table]);
            assert_eq!(run.code, Some(2), "{table} against {b}:\n{}", run.all());
            let said = run.all();
            assert!(
                said.contains(&format!(
                    "--table {table}: this is SQLite's or D1's own table"
                )),
                "{table} against {b}:\n{said}"
            );
            for wrong in ["neither side has", "full backup", "Exporting"] {
                assert!(
                    !said.contains(wrong),
                    "{table} against {b} says {wrong:?}:\n{said}"
                );
            }
        }
    }
}

/// rvCJ 1: a backup keeps each FTS5 table's settings (a rank function,
/// secure-delete, automerge), which its `_config` shadow table holds; the
/// live side of a diff was exported without them, so a fresh backup and
/// the unchanged database it was taken of differed (`removed k='rank'`),
/// and `diff <backup> live:local` said a killed restore had not committed
/// when it had. The live side reads them as a backup does: the same, exit
/// 0; a setting changed since is still a difference.
#[test]
fn a_fresh_backup_of_a_database_with_fts5_settings_and_the_database_are_the_same() {
    let sb = crate::restore_local::fts_settings_sandbox();
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("the same"), "{}", run.all());

    sb.execute_sql("INSERT INTO notes_fts(notes_fts, rank) VALUES('rank', 'bm25(1.0, 1.0)');\n");
    let run = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("notes_fts_config"), "{}", run.all());
}

/// rvCJ 2: `diff --table` naming an FTS5 table said "the same" (exit 0,
/// `--json` `identical: true, tables: []`) when its rows had changed,
/// while `--table notes_fts_content` showed the row; between two backups
/// the name was refused as a table neither side has. An FTS5 table's rows,
/// index and settings live in its shadow tables: `--table notes_fts`
/// compares those, said so, against the live database and between two
/// backups alike.
#[test]
fn a_diff_of_an_fts5_table_compares_its_rows_in_its_shadow_tables() {
    let sb = crate::restore_local::fts_settings_sandbox();
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = newest_backup(&sb, &[]);
    let run = sb.xtask(&["diff", &before, "live:local", "--table", "notes_fts"]);
    assert_eq!(run.code, Some(0), "{}", run.all());

    sb.execute_sql("INSERT INTO notes_fts(note, tag) VALUES ('added', 't2');\n");
    let run = sb.xtask(&["diff", &before, "live:local", "--table", "notes_fts"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("notes_fts_content"), "{}", run.all());
    assert!(
        run.all().contains("notes_fts is an FTS5 table"),
        "{}",
        run.all()
    );
    let json = sb.xtask(&[
        "diff",
        &before,
        "live:local",
        "--table",
        "notes_fts",
        "--json",
    ]);
    assert_eq!(json.code, Some(1), "{}", json.all());
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(doc["identical"], false, "{doc}");
    let content = { doc["tables"].as_array().unwrap().iter() }
        .find(|t| t["table"] == "notes_fts_content")
        .unwrap_or_else(|| panic!("notes_fts_content not compared: {doc}"));
    assert_eq!(content["added"]["count"], 1, "{doc}");

    sb.xtask(&["backup", "local"]).assert_ok();
    let after = newest_backup(&sb, &[&before]);
    let run = sb.xtask(&["diff", &before, &after, "--table", "notes_fts"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("notes_fts_content"), "{}", run.all());
}

/// rvCJ 2: an external-content FTS5 table's rows are its `content=`
/// table's: `diff --table docs_fts` against the live database exports and
/// compares that table with its index (it was refused in the words of a
/// backup of chosen tables, exit 2), and says so.
#[test]
fn a_diff_of_an_external_content_fts5_table_compares_its_content_table_too() {
    let sb = crate::restore_local::fts_settings_sandbox();
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "docs_fts"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    sb.execute_sql(
        "INSERT INTO docs(id, body) VALUES (3, 'delta');\n\
         INSERT INTO docs_fts(rowid, body) VALUES (3, 'delta');\n",
    );
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "docs_fts"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("  docs: 2 -> 3 rows"), "{}", run.all());
    assert!(
        run.stderr.contains("and docs, whose rows it indexes"),
        "{}",
        run.all()
    );
}

/// `diff latest:local live:local --table NAME` of a table no backup can
/// hold: exit 2, "nothing compared: NAME not compared", never "the same";
/// with `--json`, exit 2, `not_compared: [NAME]`, `identical: null`.
fn alone_said_not_compared(sb: &Sandbox, name: &str) {
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", name]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let said = format!("Result: nothing compared: {name} not compared, and no other table was");
    assert!(run.stdout.contains(&said), "{}", run.all());
    assert!(!run.stdout.contains("Result: the same"), "{}", run.all());
    let args = [
        "diff",
        "latest:local",
        "live:local",
        "--table",
        name,
        "--json",
    ];
    let json = sb.xtask(&args);
    assert_eq!(json.code, Some(2), "{}", json.all());
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(doc["not_compared"], serde_json::json!([name]), "{doc}");
    assert_eq!(doc["identical"], Value::Null, "{doc}");
}

/// A local D1, migrated, with a contentless FTS5 table `cl`, backed up,
/// then rows put into `cl` only.
fn contentless_changed_since_its_backup() -> Sandbox {
    let sb = Sandbox::new();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    sb.execute_sql("CREATE VIRTUAL TABLE cl USING fts5(x, content='');\n");
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql(
        "INSERT INTO cl(rowid, x) VALUES (1, 'hello');\n\
         INSERT INTO cl(rowid, x) VALUES (2, 'world');\n",
    );
    sb
}

/// PV 1 (rvCN 1): an external-content FTS5 table whose content table is
/// gone keeps its index in no backup either (nor does a live export hold
/// it). With a row put into it only since the backup, `diff --table fg`
/// and a whole diff said "the same" (exit 0, `--json` `identical: true`):
/// it is said not compared, as a contentless one is, never the same.
#[test]
fn an_fts5_table_whose_content_table_is_gone_changed_since_its_backup_is_said_not_compared() {
    let sb = Sandbox::new();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    sb.execute_sql(
        "CREATE TABLE gone_src(t);
         CREATE VIRTUAL TABLE fg USING fts5(t, content='gone_src');
         DROP TABLE gone_src;
",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql("INSERT INTO fg(rowid, t) VALUES (7, 'x');\n");
    alone_said_not_compared(&sb, "fg");
    let run = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert!(
        run.stdout.contains("Result: the same, but fg not compared"),
        "{}",
        run.all()
    );
    for index in ["fg_data", "fg_idx", "fg_docsize"] {
        assert!(!run.stdout.contains(index), "{index}: {}", run.all());
    }
}

/// PL 2: a contentless FTS5 table (`content=''`) keeps its index in no
/// backup. With rows put into it only since the backup, `diff --table cl`
/// against the live database was refused with a backup's advice to name
/// another table beside it; it now says that cl was not compared and that
/// nothing was, never "the same" (exit 2, `--json` `identical: null`,
/// `not_compared: ["cl"]`). A whole diff says the rest is the same but cl
/// is not compared, and does not count cl's index tables as unchanged.
#[test]
fn a_contentless_fts5_table_changed_since_its_backup_is_said_not_compared() {
    let sb = contentless_changed_since_its_backup();
    alone_said_not_compared(&sb, "cl");
    let run = sb.xtask(&["diff", "latest:local", "live:local"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("Result: the same, but cl not compared"),
        "{}",
        run.all()
    );
    for index in ["cl_data", "cl_idx", "cl_docsize"] {
        assert!(!run.stdout.contains(index), "{index}: {}", run.all());
    }
    let json = sb.xtask(&["diff", "latest:local", "live:local", "--json"]);
    assert_eq!(json.code, Some(0), "{}", json.all());
    let doc: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(doc["not_compared"], serde_json::json!(["cl"]), "{doc}");
}
