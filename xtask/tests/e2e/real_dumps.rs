//! Real inputs that nobody here wrote, restored through the real wrangler
//! into local D1: the runbook's clean restore exactly as written.

use crate::common;

use common::*;
use std::path::Path;

#[test]
fn the_runbooks_clean_restore_of_a_hand_made_data_only_export_works() {
    // The runbook: `wrangler d1 export --no-schema` by hand...
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    let data = source.export_data_only("data.sql");
    let text = std::fs::read_to_string(&data).unwrap();
    assert!(!text.contains("CREATE TABLE"), "not a data-only export");
    assert!(text.contains("d1_migrations"), "{text}");

    // ...then `migrations apply` and the rows, into a brand-new database.
    let target = Sandbox::new();
    let plan = target.xtask(&[
        "restore",
        data.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--no-manifest",
        "--dry-run",
    ]);
    plan.assert_ok();
    assert!(
        !plan.all().contains("owner@example.com"),
        "a value was quoted"
    );
    target
        .xtask(&[
            "restore",
            data.to_str().unwrap(),
            "--to",
            "local",
            "--clean",
            "--no-manifest",
            "--yes",
        ])
        .assert_ok();
    assert_eq!(target.live_row_counts(), source.live_row_counts());
    let emails = |sb: &Sandbox| sb.query("SELECT email FROM accounts ORDER BY id")[0].clone();
    assert_eq!(emails(&target), emails(&source));
}

/// SQLite reads a table's name without regard to ASCII case, so a
/// data-only dump whose rows go into `"D1_Migrations"` holds rows of
/// `d1_migrations`: `--clean` skips them as it skips `d1_migrations`'s;
/// it used to refuse the dump as rows into a table the migrations do not
/// create (rvCE 1).
#[test]
fn a_clean_restore_reads_the_migrations_table_in_another_case_as_d1_migrations() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    let data = source.export_data_only("data.sql");
    let text = std::fs::read_to_string(&data).unwrap();
    let spelled = text.replace(
        "INSERT INTO \"d1_migrations\"",
        "INSERT INTO \"D1_Migrations\"",
    );
    assert_ne!(spelled, text, "no d1_migrations rows:\n{text}");
    std::fs::write(&data, spelled).unwrap();
    let target = Sandbox::new();
    let run = target.xtask(&[
        "restore",
        data.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--no-manifest",
        "--yes",
    ]);
    run.assert_ok();
    assert_eq!(target.live_row_counts(), source.live_row_counts());
}

#[test]
fn a_new_sqlite3_dump_with_unistr_restores_with_the_same_strings() {
    // sqlite3 3.50 and later write strings with control characters so.
    let dump = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n\
        CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\n\
        INSERT INTO notes VALUES(1,unistr('line one\\u000aline two\\u0009tabbed; it''s \\\\ ok'));\n\
        INSERT INTO notes VALUES(2,'plain');\n\
        COMMIT;\n";
    let sb = Sandbox::new();
    let file = sb.path().join("new-sqlite3.sql");
    std::fs::write(&file, dump).unwrap();
    let run = sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--no-manifest",
        "--via-wrangler",
        "--yes",
    ]);
    run.assert_ok();
    assert!(
        run.stdout.contains("unistr"),
        "the plan names the repair\n{}",
        run.all()
    );
    let rows = sb.query("SELECT body FROM notes ORDER BY id");
    assert_eq!(rows[0][0]["body"], "line one\nline two\ttabbed; it's \\ ok");
    assert_eq!(rows[0][1]["body"], "plain");
}

#[test]
fn another_apps_audit_log_is_not_qbtimes_chain_and_blocks_nothing() {
    // Another app: an audit_log of its own shape, and no [app] rules.
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0004_audit_log.sql"),
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT, actor TEXT, action TEXT);\n",
    )
    .unwrap();
    let settings = std::fs::read_to_string(sb.path().join("backups.toml")).unwrap();
    let without_app = settings.split("\n[app.").next().unwrap().to_owned();
    std::fs::write(sb.path().join("backups.toml"), without_app).unwrap();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO audit_log VALUES (1, '2026-11-30', 'me', 'sign-in');");

    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["verify", "latest:local", "--json"]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let chain = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "audit chain")
        .unwrap()
        .clone();
    assert_eq!(chain["status"], "skipped", "{chain}");
    assert!(
        chain["detail"]
            .as_str()
            .unwrap()
            .contains("declares no hash chain"),
        "{chain}"
    );
    let restored = restore_replacing(&sb, "latest:local");
    restored.assert_ok();
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM audit_log")[0][0]["n"],
        1
    );
    // With no key rule, the plan's key line says so, not that the target
    // "records no key yet".
    let key = restored.stdout_line_with("  key  ");
    assert!(
        key.contains("the app declares no data-encryption key ([app.encryption_key]"),
        "{key}"
    );
}

#[test]
fn the_content_digest_catches_one_changed_value_that_row_counts_miss() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let file = sb.backups().join(&name);
    let manifest_path = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert!(
        manifest["content"]["companies"].is_string(),
        "the backup records its content digests: {manifest:#}"
    );

    // One value changed, same length, and the manifest's checksum made to
    // match: only the content digest can tell.
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen("Acme Plumbing; Ltd.", "Acme Plumbing; Ltc.", 1);
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).unwrap();
    manifest["file"]["sha256"] = sha256_hex(edited.as_bytes()).into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();

    let run = sb.xtask(&["verify", file.to_str().unwrap(), "--no-record", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["content"], "{report:#}");

    let run = restore_replacing(&sb, file.to_str().unwrap());
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("companies: its rows differ"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("safety backup"), "{}", run.all());
    assert!(!run.all().contains("Ltc."), "a value was quoted");
}

/// Writes `dump` into the sandbox and restores it into its empty local D1
/// with `--no-manifest --yes`, as an operator restores a file from elsewhere.
fn restore_foreign_dump(sb: &Sandbox, name: &str, dump: &str) -> Run {
    std::fs::write(sb.path().join(name), dump).unwrap();
    restore_written_dump(sb, name, &[])
}

/// `restore NAME --to local --no-manifest --yes` and `extra`, of a dump
/// written in the sandbox as `name` (or at the absolute path `name`).
fn restore_written_dump(sb: &Sandbox, name: &str, extra: &[&str]) -> Run {
    let file = sb.path().join(name);
    let args = ["restore", file.to_str().unwrap(), "--to", "local"];
    sb.xtask(&[&args[..], &["--no-manifest", "--yes"], extra].concat())
}

/// A notes field of 600 lines, dumped by `sqlite3` 3.50 or later (which
/// writes a string with control characters as `unistr('…\u000a…')`), is a
/// plain legitimate dump of 5 KB: `sqlite3` loads it and so does D1 once
/// `unistr` is rewritten.
///
/// What happened: `verify --no-manifest` said BAD and `restore` failed with
/// `Expression tree is too large (maximum depth 1000)`, nothing restored.
/// The cause: `repair::char_expression` (crates/d1-core/src/repair.rs)
/// rewrites `unistr('…')` as one left-deep chain `'a'||char(10)||'b'||…`,
/// two terms per control character, and SQLite refuses an expression more
/// than 1,000 deep: about 500 line breaks or tabs in one value, so any
/// longer text with line breaks (a note, a log, a CSV pasted into a field).
/// It should come back exactly, as a value of `replace(…,char(10))` shape,
/// which D1's own exports use, does at any length.
#[test]
fn a_new_sqlite3_dump_of_a_text_with_hundreds_of_line_breaks_restores_exactly() {
    let text: String = (0..600)
        .map(|i| format!("line {i}\tit's"))
        .collect::<Vec<_>>()
        .join("\n");
    let literal = text
        .replace('\'', "''")
        .replace('\n', "\\u000a")
        .replace('\t', "\\u0009");
    let dump = format!(
        "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n\
         CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES(1,unistr('{literal}'));\n\
         INSERT INTO notes VALUES(2,'plain');\n\
         COMMIT;\n"
    );
    let sb = Sandbox::new();
    let file = sb.path().join("new-sqlite3-long.sql");
    std::fs::write(&file, &dump).unwrap();
    let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    assert!(verify.ok, "a plain sqlite3 dump is BAD:\n{}", verify.all());

    restore_foreign_dump(&sb, "new-sqlite3-long.sql", &dump).assert_ok();
    let rows = sb.query("SELECT body FROM notes ORDER BY id");
    assert_eq!(rows[0].len(), 2, "{rows:?}");
    assert_eq!(rows[0][0]["body"], text.as_str());
    assert_eq!(rows[0][1]["body"], "plain");
}

/// An empty statement (`;;` after a row, or a `;` alone on a line, as files
/// joined by hand or pasted from the D1 console have) is nothing: `sqlite3`
/// and `wrangler d1 execute --file` both skip it and load the rows.
///
/// What happened: `verify` said BAD and `restore` refused the file, "a
/// statement that does not start with a keyword (restore cannot repair
/// this)", naming no fix. The cause: `Statements::next`
/// (crates/d1-sql/src/statements.rs) returns the bare `;` as a statement,
/// and `repair::classify_word` (crates/d1-core/src/repair.rs) refuses a
/// statement with no first word. It should be skipped as a comment is.
#[test]
fn empty_statements_between_rows_are_nothing_as_sqlite3_and_wrangler_read_them() {
    let dump = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
        INSERT INTO t VALUES(1,'a');;\n\
        ;\n\
        INSERT INTO \"t\" (\"id\",\"v\") VALUES(2,'b'); ; -- done\n";
    let sb = Sandbox::new();
    let file = sb.path().join("joined.sql");
    std::fs::write(&file, dump).unwrap();
    let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    assert!(verify.ok, "{}", verify.all());
    restore_foreign_dump(&sb, "joined.sql", dump).assert_ok();
    let rows = sb.query("SELECT v FROM t ORDER BY id");
    assert_eq!(rows[0].len(), 2, "{rows:?}");
    assert_eq!(rows[0][1]["v"], "b");
}

/// Statements copied from the D1 console, whose last one has no `;` (the
/// console, `sqlite3` and `wrangler d1 execute` all run it). Refusing it
/// is sound, since a file cut short looks the same, but the refusal
/// should say how to go on when the file is whole.
///
/// What happened: `restore` refused with "the dump ends inside an
/// unterminated statement starting on line 3; the file is probably
/// truncated", and nothing else: an operator holding the whole file is
/// not told that a `;` is all it lacks. The cause: `Statements::next`
/// (crates/d1-sql/src/statements.rs) says the same for a statement that
/// is complete but for its `;` as for one cut inside a string. Nothing may
/// run, and the message should name the missing `;` as the fix.
#[test]
fn a_pasted_dump_whose_last_statement_lacks_its_semicolon_is_refused_naming_the_fix() {
    let dump = "\u{feff}CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\r\n\
        INSERT INTO t VALUES(1,'a');\r\n\
        INSERT INTO t VALUES(2,'b')";
    let sb = Sandbox::new();
    let run = restore_foreign_dump(&sb, "pasted.sql", dump);
    assert!(!run.ok, "{}", run.all());
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains("line 3"), "{}", run.all());
    assert!(
        run.stderr.contains("add `;`"),
        "the refusal names the fix for a whole file:\n{}",
        run.all()
    );
    let d1 = sb
        .path()
        .join(".wrangler/state/v3/d1/miniflare-D1DatabaseObject");
    let made: Vec<_> = std::fs::read_dir(&d1)
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sqlite") && n != "metadata.sqlite")
                .collect()
        })
        .unwrap_or_default();
    assert!(made.is_empty(), "something ran: {made:?}");
}

/// A seed file written by hand (or a migration used as one) that creates
/// a trigger and then inserts the rows it should count: `sqlite3` and
/// `wrangler d1 execute --file` run the trigger on those rows (`c.n` is 2).
///
/// What happened: `restore` said `repairs none needed`, and the restored
/// `c.n` is 0: the trigger was moved after the rows, silently, and never
/// fired. The cause: `repair::write` (crates/d1-core/src/repair.rs) puts
/// every trigger after all rows, which is right for an export (its
/// triggers come last, and the rows already hold what they did) but
/// changes what a file whose trigger comes first means. The plan should
/// at least name the trigger it moved past rows of its table, or the
/// rows should come back as the file makes them.
#[test]
fn a_trigger_written_before_the_rows_it_counts_is_not_moved_past_them_silently() {
    let dump = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
        CREATE TABLE c(n INTEGER);\n\
        INSERT INTO c VALUES(0);\n\
        CREATE TRIGGER tc AFTER INSERT ON t BEGIN UPDATE c SET n = n + 1; END;\n\
        INSERT INTO t VALUES(1,'a');\n\
        INSERT INTO t VALUES(2,'b');\n";
    let sb = Sandbox::new();
    // No migration creates `tc`: refused unless named (`--allow-trigger`).
    let refused = restore_foreign_dump(&sb, "seed.sql", dump);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    let run = restore_written_dump(&sb, "seed.sql", &["--allow-trigger", "tc"]);
    run.assert_ok();
    let n = sb.query("SELECT n FROM c")[0][0]["n"].clone();
    assert!(
        n == 2 || (run.stdout.contains("tc") && !run.stdout.contains("repairs      none needed")),
        "c.n is {n}, and the plan does not say the trigger was moved:\n{}",
        run.all()
    );
}

/// A table of 101 columns (a key and 100 more): SQLite makes it, D1 does
/// not (`too many columns on w101`, D1 allows 100 columns in a table).
fn w101_dump() -> String {
    let columns: Vec<String> = (0..100).map(|i| format!("c{i} INTEGER")).collect();
    let values = vec!["1"; 101].join(",");
    format!(
        "CREATE TABLE w101 (id INTEGER PRIMARY KEY, {});\nINSERT INTO w101 VALUES({values});\n",
        columns.join(", ")
    )
}

/// A dump with a table over D1's 100 columns, which the pinned wrangler
/// refuses to create. What happened: `verify --no-manifest` said GOOD
/// ("nothing D1 would refuse"), and `restore --to local --replace` exited
/// 0 having written the table into local D1's file, after which every
/// wrangler query failed with `malformed database schema (w101) - too many
/// columns on w101`. It should be BAD naming the table and D1's limit, and
/// restore should refuse it before touching local D1, which stays usable.
#[test]
fn a_table_over_d1s_100_columns_is_bad_and_never_restored() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let file = sb.path().join("w101dump.sql");
    std::fs::write(&file, w101_dump()).unwrap();

    let run = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains("w101") && run.stdout.contains("100 columns"),
        "{}",
        run.all()
    );
    assert!(!run.stdout.contains("Result: GOOD"), "{}", run.all());

    let run = restore_written_dump(&sb, "w101dump.sql", &["--replace"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.all().contains("w101"), "{}", run.all());
    // Local D1 is untouched and still answers wrangler.
    let tables =
        sb.query_with_wrangler("SELECT count(*) AS n FROM sqlite_master WHERE name = 'w101'");
    assert_eq!(tables[0][0]["n"], 0, "{tables:?}");
}

/// A local D1 that holds a table over D1's 100 columns (written into its
/// file by hand, or by an older restore): the backup of it can never be
/// restored into D1, so `backup local` must not call it GOOD.
#[test]
fn a_backup_of_a_table_over_d1s_100_columns_is_not_good() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(&w101_dump());
    let run = sb.xtask(&["backup", "local"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(!run.all().contains("GOOD"), "{}", run.all());
    assert!(run.all().contains("w101"), "{}", run.all());
}

/// rvBP 6: `verify` of a hand `wrangler d1 export --no-schema` holding
/// rows of a table no migration makes said "BAD: corrupt". A data-only
/// export is judged as data only: the table is named, with what to do
/// (its one way back, `restore --clean`, refuses it), the verdict is BAD
/// but never "corrupt", and no trigger, which no data-only export holds,
/// is warned of.
#[test]
fn verify_of_a_no_schema_export_with_a_table_no_migration_makes_names_it_not_corruption() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    source.execute_sql(
        "CREATE TABLE extra(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO extra VALUES(1,'x');",
    );
    let data = source.export_data_only("data.sql");
    let sb = Sandbox::new();
    let run = sb.xtask(&["verify", data.to_str().unwrap(), "--no-manifest"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let all = run.all();
    assert!(!all.contains("corrupt"), "{all}");
    let schema = run.stdout_line_with("[FAIL] schema");
    assert!(schema.contains("extra, which no migration"), "{schema}");
    assert!(schema.contains("restore --clean"), "{schema}");
    assert!(schema.contains("without --no-schema"), "{schema}");
    let result = run.stdout_line_with("Result:");
    assert!(result.contains("the schema check"), "{result}");
    assert!(!run.stderr.contains("trigger"), "{}", run.stderr);
}

/// `sqlite3 COPY .dump` of a copy of `sb`'s local D1 file, written beside
/// it as `name`: the real shell's output, never text written here. `None`,
/// with the reason printed, only where the machine has no `sqlite3`.
fn sqlite3_dump(sb: &Sandbox, name: &str) -> Option<std::path::PathBuf> {
    sqlite3_dump_after(sb, name, "")
}

/// [`sqlite3_dump`] of a copy of `sb`'s local D1 that `sql` changed first
/// (as a hand edit of the file would).
fn sqlite3_dump_after(sb: &Sandbox, name: &str, sql: &str) -> Option<std::path::PathBuf> {
    let copy = sb.path().join(format!("{name}.sqlite"));
    std::fs::copy(sb.local_d1_file(), &copy).unwrap();
    // With its WAL, where wrangler's last writes may be.
    let wal = format!("{}-wal", sb.local_d1_file().display());
    if std::path::Path::new(&wal).exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display())).unwrap();
    }
    // By the shell, which makes the FTS5 tables it is asked to.
    if !sql.is_empty()
        && let Ok(edited) = std::process::Command::new("sqlite3")
            .arg(&copy)
            .arg(sql)
            .status()
    {
        assert!(edited.success(), "sqlite3 refused {sql}");
    }
    let out = match std::process::Command::new("sqlite3")
        .arg(&copy)
        .arg(".dump")
        .output()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: no sqlite3 shell on this machine to write a .dump with");
            return None;
        }
        out => out.unwrap(),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = sb.path().join(name);
    std::fs::write(&dump, &out.stdout).unwrap();
    Some(dump)
}

/// NM: a `sqlite3 .dump` of a local D1 holding FTS5 tables records each
/// with `PRAGMA writable_schema=ON; INSERT INTO sqlite_schema(...)
/// VALUES('table','notes_fts',...,'CREATE VIRTUAL TABLE ...');` and its
/// shadow tables' rows. verify called it BAD and restore refused it ("PRAGMA
/// writable_schema ... restore cannot repair this"), though the tool makes
/// FTS5 tables from its own backups. The idiom is taken for the CREATE
/// VIRTUAL TABLE it records: verify says GOOD, the restore (into an empty
/// local D1 and `--replace`) makes each FTS5 table from its rows or its
/// content table, its settings kept, and searches find what they found.
#[test]
fn a_sqlite3_dump_of_a_local_d1_with_fts5_tables_verifies_and_restores_searchable() {
    let source = crate::restore_local::fts_settings_sandbox();
    let Some(dump) = sqlite3_dump(&source, "fts.sql") else {
        return;
    };
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(text.contains("PRAGMA writable_schema=ON;"), "{text}");
    assert!(text.contains("INSERT INTO sqlite_schema("), "{text}");
    let target = Sandbox::new();
    let decoys = common::decoys::Decoys::plant(target.path());
    let before = decoys.hashes();
    let verify = target.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest"]);
    assert!(verify.ok, "{}", verify.all());
    assert!(verify.stdout.contains("GOOD"), "{}", verify.all());
    let searches = |sb: &Sandbox| {
        sb.query(
            "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'hello'; \
             SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'alpha'; \
             SELECT v FROM notes_fts_config WHERE k = 'rank'",
        )
    };
    let expected = searches(&source);
    let run = restore_written_dump(&target, dump.to_str().unwrap(), &[]);
    run.assert_ok();
    assert!(!run.all().contains("hello world"), "a value was quoted");
    // rvBX 2: the statements the repair leaves out or turns into a CREATE
    // were counted as rows the restore should hold.
    assert!(
        !run.all().contains("another number of rows"),
        "{}",
        run.all()
    );
    assert_eq!(searches(&target), expected, "{}", run.all());
    let replaced = Sandbox::new();
    replaced.apply_migrations();
    replaced.execute_sql(SEED_SQL);
    let run = restore_written_dump(&replaced, dump.to_str().unwrap(), &["--replace"]);
    run.assert_ok();
    assert_eq!(searches(&replaced), expected, "{}", run.all());
    assert_eq!(decoys.hashes(), before, "a decoy changed");
}

/// NM: an external-content FTS5 table whose index no longer matches its
/// table (rows changed with no trigger to keep the index) is dumped with
/// that stale index. The restore never loads that index: it rebuilds it
/// from the content table, as for every external-content table, and the
/// plan says so; searches find what the table holds.
#[test]
fn a_sqlite3_dump_of_a_stale_external_content_index_is_told_and_rebuilt() {
    let source = crate::restore_local::fts_settings_sandbox();
    source.execute_sql("UPDATE docs SET body = 'delta' WHERE id = 2;");
    let Some(dump) = sqlite3_dump(&source, "stale.sql") else {
        return;
    };
    let target = Sandbox::new();
    let verify = target.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest"]);
    assert!(verify.ok, "{}", verify.all());
    let run = restore_written_dump(&target, dump.to_str().unwrap(), &[]);
    run.assert_ok();
    let line = run.stdout_line_with("recreates virtual table docs_fts");
    assert!(line.contains("rebuilt from docs"), "{}", run.all());
    let hits = target.query("SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'delta'");
    assert_eq!(hits[0].len(), 1, "{}", run.all());
}

/// A `sqlite3 .dump`'s record of FTS5 table `d1_migrations`, naming the
/// four migrations in its `_content` rows (rvBX's dm.sql).
const D1_MIGRATIONS_AS_FTS5: &str = "PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
PRAGMA writable_schema=ON;
INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','d1_migrations','d1_migrations',0,'CREATE VIRTUAL TABLE d1_migrations USING fts5(id, name, applied_at)');
CREATE TABLE IF NOT EXISTS 'd1_migrations_content'(id INTEGER PRIMARY KEY, c0, c1, c2);
INSERT INTO d1_migrations_content VALUES(1,1,'0001_accounts_companies_customers.sql','2026-01-01 00:00:00');
INSERT INTO d1_migrations_content VALUES(2,2,'0002_encryption_keys_and_qbt_tokens.sql','2026-01-01 00:00:00');
INSERT INTO d1_migrations_content VALUES(3,3,'0003_report_configs_and_notifications.sql','2026-01-01 00:00:00');
INSERT INTO d1_migrations_content VALUES(4,4,'0004_audit_log.sql','2026-01-01 00:00:00');
PRAGMA writable_schema=OFF;
COMMIT;
";

/// The same `d1_migrations`, written as a plain CREATE TABLE.
const D1_MIGRATIONS_PLAIN: &str = "CREATE TABLE d1_migrations(id, name, applied_at);
INSERT INTO d1_migrations VALUES(1,'0001_accounts_companies_customers.sql','2026-01-01 00:00:00');
INSERT INTO d1_migrations VALUES(2,'0002_encryption_keys_and_qbt_tokens.sql','2026-01-01 00:00:00');
INSERT INTO d1_migrations VALUES(3,'0003_report_configs_and_notifications.sql','2026-01-01 00:00:00');
INSERT INTO d1_migrations VALUES(4,'0004_audit_log.sql','2026-01-01 00:00:00');
";

/// What restore, its dry run and verify say of `dumped` (a dump that
/// records a migration's table as an FTS5 table) must be what they say of
/// `plain` (that table made by a plain CREATE TABLE): refused, exit 3, as
/// defined otherwise than its migrations do, local D1 and backups/
/// untouched. With `referenced`, other tables' foreign keys name `table`:
/// verify calls the FTS5 one BAD, filled or not (NZ 3), and passes the
/// plain one's, which its tables, holding no rows, never fail (ON);
/// otherwise verify's exit codes are alike too.
fn judged_as_its_plain_create(
    sb: &Sandbox,
    dumped: &std::path::Path,
    plain: &std::path::Path,
    (table, referenced): (&str, bool),
) {
    let local_d1 = || -> Vec<Vec<u8>> {
        { sb.local_d1_files().into_iter() }
            .map(|f| std::fs::read(f).unwrap())
            .collect()
    };
    let (before, held) = (local_d1(), sb.backups_held());
    let restore = |file: &std::path::Path, extra: &[&str]| {
        let args = ["restore", file.to_str().unwrap(), "--to", "local"];
        sb.xtask(&[&args[..], &["--no-manifest", "--yes"], extra].concat())
    };
    refused_as_defined_otherwise(table, |extra| restore(dumped, extra));
    assert_eq!(restore(plain, &[]).code, Some(3));
    assert_eq!(local_d1(), before, "local D1 changed");
    assert_eq!(sb.backups_held(), held, "backups/ changed");
    let verify =
        |file: &std::path::Path| sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    let (dumped, plain) = (verify(dumped), verify(plain));
    match referenced {
        false => assert_eq!(dumped.code, plain.code, "{}\n{}", dumped.all(), plain.all()),
        true => assert!(
            dumped.code == Some(1)
                && dumped.stdout.contains("it names a virtual table (FTS5)")
                && plain.code == Some(0)
                && plain.stdout.contains("hold no rows to check"),
            "{}\n{}",
            dumped.all(),
            plain.all()
        ),
    }
    let otherwise = |run: &Run| run.all().contains("otherwise than its migrations do");
    assert_eq!(
        otherwise(&dumped),
        otherwise(&plain),
        "{}\n{}",
        dumped.all(),
        plain.all()
    );
}

/// `restore` (given the flags added) refuses, exit 3, as a dry run and
/// with `--partial` too, naming `table` as defined otherwise than its
/// migrations do.
#[track_caller]
fn refused_as_defined_otherwise(table: &str, restore: impl Fn(&[&str]) -> Run) {
    for extra in [&["--dry-run"][..], &[], &["--partial"]] {
        let run = restore(extra);
        assert_eq!(run.code, Some(3), "{extra:?}: {}", run.all());
        assert!(
            run.all().contains("otherwise than its migrations do") && run.all().contains(table),
            "{extra:?}: {}",
            run.all()
        );
        assert!(!run.all().contains("Restored"), "{}", run.all());
    }
}

/// rvBX 1: a `sqlite3 .dump`'s record of an FTS5 table named
/// `d1_migrations`, its rows naming every migration, was restored (exit 0,
/// "makes FTS5 table d1_migrations"): no app table existed after it, yet
/// `migrate local --dry-run` said the database was up to date. The record
/// is held to the guards a CREATE of that name is: `d1_migrations`
/// otherwise than wrangler makes it, refused, exit 3, as its plain CREATE
/// TABLE is, verify judging both alike.
#[test]
fn a_sqlite3_dumps_fts5_record_of_d1_migrations_is_refused_as_its_create_is() {
    let sb = Sandbox::new();
    let dumped = sb.path().join("dm.sql");
    std::fs::write(&dumped, D1_MIGRATIONS_AS_FTS5).unwrap();
    let plain = sb.path().join("dm2.sql");
    std::fs::write(&plain, D1_MIGRATIONS_PLAIN).unwrap();
    judged_as_its_plain_create(&sb, &dumped, &plain, ("d1_migrations", false));
    let pending = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert!(!pending.all().contains("up to date"), "{}", pending.all());
}

/// rvBX 1: a `sqlite3 .dump` recording a migration's table (`accounts`) as
/// an FTS5 table was called partial, then with `--partial` restored as a
/// virtual table: no CHECK, key or default of the migrations' held. It is
/// refused, exit 3, as defined otherwise than its migrations do, as the
/// same table written `CREATE TABLE accounts(id, email, role)` is.
#[test]
fn a_sqlite3_dumps_fts5_record_of_a_migrations_table_is_refused_as_its_create_is() {
    let source = Sandbox::new();
    source.apply_migrations();
    let drop = "PRAGMA foreign_keys=OFF; DROP TABLE accounts;";
    let as_fts5 = format!("{drop} CREATE VIRTUAL TABLE accounts USING fts5(id, email, role);");
    let Some(dumped) = sqlite3_dump_after(&source, "acc.sql", &as_fts5) else {
        return;
    };
    let plain = format!("{drop} CREATE TABLE accounts(id, email, role);");
    let plain = sqlite3_dump_after(&source, "acc2.sql", &plain).unwrap();
    let text = std::fs::read_to_string(&dumped).unwrap();
    assert!(text.contains("INSERT INTO sqlite_schema("), "{text}");
    let target = Sandbox::new();
    judged_as_its_plain_create(&target, &dumped, &plain, ("accounts", true));
}

/// A hostile pair made of a backup of [`fts_settings_sandbox`]: its dump
/// no longer makes `table` (its CREATE and rows taken out), and its
/// manifest, its file's size and digest made to match, records `table` as
/// a contentless FTS5 table in place of the virtual table `replaced`, as
/// a manifest records the FTS5 tables the export leaves out. Returns the
/// sandbox and the backup's name.
fn manifest_recording_as_fts5(table: &str, replaced: &str) -> (Sandbox, String) {
    let sb = crate::restore_local::fts_settings_sandbox();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let file = sb.backups().join(&name);
    let text = std::fs::read_to_string(&file).unwrap();
    let (mut kept, mut removed, mut in_create) = (String::new(), 0u64, false);
    let creates = [
        format!("CREATE TABLE IF NOT EXISTS \"{table}\"("),
        format!("CREATE TABLE {table} ("),
    ];
    for line in text.lines() {
        let starts = creates.iter().any(|c| line.starts_with(c.as_str()));
        if starts || line.starts_with(&format!("INSERT INTO \"{table}\" ")) {
            removed += 1;
            in_create = starts && !line.ends_with(");");
        } else if in_create {
            in_create = !line.ends_with(");");
        } else {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    assert!(removed > 1, "{table} in the dump:\n{text}");
    std::fs::write(&file, &kept).unwrap();
    edit_manifest(&sb, &name, |m| {
        m["file"]["bytes"] = kept.len().into();
        m["file"]["sha256"] = sha256_hex(kept.as_bytes()).into();
        m["statements"] = (m["statements"].as_u64().unwrap() - removed).into();
        for map in ["rows", "content"] {
            m[map].as_object_mut().unwrap().remove(table);
        }
        // The migrations it records are the rows of the d1_migrations
        // its dump holds: with none, it records none.
        if table == "d1_migrations" {
            m["migrations"] = serde_json::json!([]);
            m["migration_sha256"] = serde_json::json!({});
        }
        let vt = &mut m["virtual_tables"];
        vt["export_tables"]
            .as_array_mut()
            .unwrap()
            .retain(|t| t != table);
        let tables = vt["tables"].as_array_mut().unwrap();
        tables.retain(|t| t["name"] != replaced);
        tables.push(serde_json::json!({
            "name": table,
            "module": "fts5",
            "sql": format!("CREATE VIRTUAL TABLE {table} USING fts5(name, content='')"),
            "content": {"kind": "contentless"},
        }));
    });
    (sb, name)
}

/// What restore (its dry run, `--partial` too) and verify say of the
/// backup `name` whose manifest records `table`, a table the migrations
/// make, as an FTS5 table: refused, exit 3, as defined otherwise than its
/// migrations do, the local D1 untouched, and verify warning of it as of
/// a plain CREATE defined so.
fn a_manifests_fts5_table_is_judged_as_its_create(sb: &Sandbox, name: &str, table: &str) {
    let local_d1 = || -> Vec<Vec<u8>> {
        { sb.local_d1_files().into_iter() }
            .map(|f| std::fs::read(f).unwrap())
            .collect()
    };
    let before = local_d1();
    let file = sb.backups().join(name);
    let file = file.to_str().unwrap();
    refused_as_defined_otherwise(table, |extra| {
        let args = ["restore", file, "--to", "local", "--replace", "--yes"];
        sb.xtask(&[&args[..], extra].concat())
    });
    assert_eq!(local_d1(), before, "local D1 changed");
    // verify says so, as of a plain CREATE defined otherwise: its
    // schema warning names the table and the restore's refusal.
    let verify = sb.xtask(&["verify", file]);
    let refuses = format!("restore refuses it without --allow-schema-change {table}");
    assert!(
        verify.all().contains("otherwise than its migrations do")
            && verify.all().contains(&refuses),
        "{}",
        verify.all()
    );
}

/// NZ 1: a backup's manifest records the FTS5 tables its export leaves
/// out, and the restore makes them; one recording `d1_migrations` as an
/// FTS5 table, its dump no longer making it, was not held to the schema
/// guard a sqlite3 .dump's record of it is
/// ([`a_sqlite3_dumps_fts5_record_of_d1_migrations_is_refused_as_its_create_is`]).
/// It is refused as its CREATE is: exit 3, a dry run and `--partial` too.
#[test]
fn a_manifests_fts5_record_of_d1_migrations_is_refused_as_its_create_is() {
    let (sb, name) = manifest_recording_as_fts5("d1_migrations", "notes_fts");
    a_manifests_fts5_table_is_judged_as_its_create(&sb, &name, "d1_migrations");
}

/// NZ 1: the same of a table a migration makes (`docs`), recorded in the
/// manifest as an FTS5 table in place of its index `docs_fts`.
#[test]
fn a_manifests_fts5_record_of_a_migrations_table_is_refused_as_its_create_is() {
    let (sb, name) = manifest_recording_as_fts5("docs", "docs_fts");
    a_manifests_fts5_table_is_judged_as_its_create(&sb, &name, "docs");
}

/// A `sqlite3 .dump` of a local D1 with the migrations applied and
/// `tagged`, whose foreign key names `tags`, an FTS5 table (filled, or
/// left empty: `rows`).
fn dump_referencing_an_fts5_table(name: &str, rows: &str) -> Option<(Sandbox, std::path::PathBuf)> {
    let source = Sandbox::new();
    source.apply_migrations();
    let sql = format!(
        "CREATE VIRTUAL TABLE tags USING fts5(label); \
         CREATE TABLE tagged(id INTEGER PRIMARY KEY, tag_id INTEGER REFERENCES tags); \
         INSERT INTO tags(rowid, label) VALUES (1, 'urgent'); {rows}"
    );
    let dump = sqlite3_dump_after(&source, name, &sql)?;
    Some((source, dump))
}

/// The finding of a table whose foreign key names an FTS5 table: both
/// named, and the fix.
#[track_caller]
fn names_the_fts5_parent(run: &Run) {
    assert!(
        run.all().contains("tagged references tags"),
        "{}",
        run.all()
    );
    assert!(run.all().contains("FOREIGN KEY"), "{}", run.all());
    assert!(!run.all().contains("urgent"), "a value was quoted");
}

/// NZ 2: verify of a `sqlite3 .dump` whose table's foreign key names an
/// FTS5 table (no foreign key can refer to a virtual table) ended
/// "verification could not run: foreign key mismatch". It is a finding,
/// BAD (exit 1), naming the table, its parent and the fix.
#[test]
fn verify_of_a_dump_whose_foreign_key_names_an_fts5_table_is_bad_naming_both() {
    let filled = "INSERT INTO tagged VALUES (1, 1);";
    let Some((sb, dump)) = dump_referencing_an_fts5_table("fk.sql", filled) else {
        return;
    };
    let verify = sb.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest"]);
    assert_eq!(verify.code, Some(1), "{}", verify.all());
    assert!(verify.stdout.contains("BAD"), "{}", verify.all());
    assert!(!verify.all().contains("could not run"), "{}", verify.all());
    names_the_fts5_parent(&verify);
}

/// NZ 3: the missing-parent guard took a dumped FTS5 table for a table
/// the dump lacks, and told to export it too, which the dump does. A
/// table whose foreign key names an FTS5 table loads into no database
/// that enforces foreign keys ("foreign key mismatch"), filled or not
/// (the app's next write to it fails): refused, exit 3, before anything
/// runs (a dry run too), with verify's words.
#[test]
fn restore_of_a_dump_whose_foreign_key_names_an_fts5_table_is_refused_naming_both() {
    for (name, rows) in [
        ("fk.sql", "INSERT INTO tagged VALUES (1, 1);"),
        ("fk0.sql", ""),
    ] {
        let Some((_source, dump)) = dump_referencing_an_fts5_table(name, rows) else {
            return;
        };
        let target = Sandbox::new();
        for extra in [&["--dry-run"][..], &[]] {
            let args = ["restore", dump.to_str().unwrap(), "--to", "local"];
            let run = target.xtask(&[&args[..], &["--no-manifest", "--yes"], extra].concat());
            assert_eq!(run.code, Some(3), "{rows}: {}", run.all());
            names_the_fts5_parent(&run);
            assert!(!run.all().contains("does not hold"), "{}", run.all());
        }
        assert!(target.query("SELECT name FROM sqlite_schema WHERE name = 'tagged'")[0].is_empty());
        let verify = target.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest"]);
        assert_eq!(verify.code, Some(1), "{rows}: {}", verify.all());
        names_the_fts5_parent(&verify);
    }
}

/// A dump of wrangler before 4.94, whose INSERTs name no columns
/// (workers-sdk #7507), restored with `--clean`, as `restore` and `verify`
/// are given it: `xtask/tests/fixtures/NAME`, copied into the sandbox.
fn restore_wrangler_4_86_dump(sb: &Sandbox, name: &str, extra: &[&str]) -> Run {
    let file = sb.path().join(name);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::copy(fixture, &file).unwrap();
    restore_clean_without_manifest(sb, &file, extra)
}

fn restore_clean_without_manifest(sb: &Sandbox, file: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--no-manifest",
    ];
    args.extend_from_slice(extra);
    sb.xtask(&args)
}

/// rvCD: a wrangler 4.86 export whose `companies` has `timezone` before
/// `qbt_company_id`, the migrations' the other way round. `--clean` skips
/// the dump's CREATE TABLE and loaded its unnamed INSERTs by position into
/// the migrations' table: the time zone in `qbt_company_id`, exit 0,
/// "Restored". Each value must land in its own column, as SQLite loading
/// the dump itself puts it.
#[test]
fn a_clean_restore_of_a_wrangler_4_86_export_puts_each_value_in_its_own_column() {
    let name = "wrangler-4.86-export.sql";
    let sb = Sandbox::new();
    let plan = restore_wrangler_4_86_dump(&sb, name, &["--dry-run"]);
    plan.assert_ok();
    restore_wrangler_4_86_dump(&sb, name, &["--yes"]).assert_ok();

    let columns = "name, timezone, qbt_company_id, created_at, updated_at";
    let dump = std::fs::read_to_string(sb.path().join(name)).unwrap();
    let sqlite = rusqlite::Connection::open_in_memory().unwrap();
    sqlite.execute_batch(&dump).unwrap();
    let expected: Vec<Vec<String>> = sqlite
        .prepare(&format!("SELECT {columns} FROM companies ORDER BY id"))
        .unwrap()
        .query_map([], |r| {
            (0..5)
                .map(|i| r.get::<_, String>(i))
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let restored = sb.query(&format!("SELECT {columns} FROM companies ORDER BY id"));
    let restored: Vec<Vec<String>> = restored[0]
        .iter()
        .map(|row| {
            columns
                .split(", ")
                .map(|c| row[c].to_string().trim_matches('"').to_owned())
                .collect()
        })
        .collect();
    assert_eq!(restored, expected);
    assert_eq!(expected[0][1], "America/New_York", "{expected:?}");
    assert!(
        plan.stdout.contains("name no columns") && plan.stdout.contains("companies"),
        "the plan says the rows are bound by name\n{}",
        plan.all()
    );
}

/// The same rows exported without their schema (`--no-schema`): nothing
/// tells the order of their columns, so `--clean`, which loads them into
/// the migrations' tables, refuses before anything runs, naming the table
/// and the fix, the dry run too; local D1 is left as it was.
#[test]
fn a_clean_restore_of_a_wrangler_4_86_export_without_its_schema_is_refused_untouched() {
    let name = "wrangler-4.86-export-no-schema.sql";
    let sb = Sandbox::new();
    for extra in [&["--dry-run"][..], &["--yes"]] {
        let run = restore_wrangler_4_86_dump(&sb, name, extra);
        assert_eq!(run.code, Some(3), "{extra:?}\n{}", run.all());
        let said = run.all();
        assert!(
            said.contains("companies") && said.contains("4.94") && said.contains("no columns"),
            "{extra:?}: the refusal names the table and the fix\n{said}"
        );
        assert!(
            !said.contains("America/New_York"),
            "a value was quoted\n{said}"
        );
        assert!(
            sb.local_d1_files().is_empty(),
            "{extra:?}: local D1 was made\n{said}"
        );
    }
    let file = sb.path().join(name);
    let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    assert!(
        !verify.ok && verify.all().contains("4.94") && verify.all().contains("companies"),
        "verify tells it cannot be restored\n{}",
        verify.all()
    );
}

/// OT 2: `--clean` of a dump whose rows go into a table the migrations do
/// not create was refused calling every such dump "this data-only dump",
/// a whole one (its CREATE TABLE skipped) too, and exit 1, where every
/// other refusal of a dump's schema before anything runs is a guard's,
/// exit 3. Each is said for what it is, with its own way out, exit 3, and
/// local D1 is not made.
#[test]
fn a_clean_restore_of_rows_into_a_table_the_migrations_lack_is_refused_for_what_the_dump_is() {
    let rows = "INSERT INTO \"firms\" (\"id\",\"name\") VALUES(1,'Acme');\n";
    let whole = format!("CREATE TABLE firms (id INTEGER PRIMARY KEY, name TEXT);\n{rows}");
    for (dump, data_only) in [(whole.as_str(), false), (rows, true)] {
        let sb = Sandbox::new();
        let file = sb.path().join("firms.sql");
        std::fs::write(&file, dump).unwrap();
        let run = restore_clean_without_manifest(&sb, &file, &["--yes"]);
        assert_eq!(run.code, Some(3), "{data_only}: {}", run.all());
        let all = run.all();
        assert!(
            all.contains("firms") && all.contains("the migrations do not create"),
            "{data_only}: {all}"
        );
        assert_eq!(all.contains("data-only"), data_only, "{all}");
        if !data_only {
            assert!(all.contains("without --clean"), "{all}");
        }
        assert!(!all.contains("Acme"), "{all}");
        assert!(sb.local_d1_files().is_empty(), "local D1 was made\n{all}");
    }
}

/// rvCD: a dump whose `companies` lacks the migrations' `timezone` failed
/// with SQLite's bare "table companies has 6 columns but 5 values were
/// supplied". Bound by name, its rows go in, `timezone` taking its
/// default, and the restore says so; a dump column the migrations' table
/// lacks is refused before anything runs, naming table and column.
#[test]
fn a_clean_restore_of_a_table_with_other_columns_than_the_migrations_says_which() {
    let sb = Sandbox::new();
    let fewer = "PRAGMA defer_foreign_keys=TRUE;\n\
        CREATE TABLE companies (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, \
        qbt_company_id TEXT UNIQUE, created_at TEXT, updated_at TEXT);\n\
        INSERT INTO \"companies\" VALUES(1,'Acme','qbt-1','2026-01-01T00:00:00.000Z',\
        '2026-01-01T00:00:00.000Z');\n";
    let file = sb.path().join("fewer.sql");
    std::fs::write(&file, fewer).unwrap();
    let run = restore_clean_without_manifest(&sb, &file, &["--yes"]);
    run.assert_ok();
    assert!(
        run.all().contains("timezone") && !run.all().contains("values were supplied"),
        "the restore names the column that takes its default\n{}",
        run.all()
    );
    let rows = sb.query("SELECT name, qbt_company_id, timezone FROM companies");
    assert_eq!(rows[0][0]["qbt_company_id"], "qbt-1", "{rows:?}");
    assert_eq!(rows[0][0]["timezone"], "UTC", "{rows:?}");

    let other = Sandbox::new();
    let more = fewer
        .replace("updated_at TEXT)", "updated_at TEXT, plan TEXT)")
        .replace("0.000Z');", "0.000Z','gold');");
    let file = other.path().join("more.sql");
    std::fs::write(&file, more).unwrap();
    let run = restore_clean_without_manifest(&other, &file, &["--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.all().contains("companies") && run.all().contains("plan"),
        "the refusal names table and column\n{}",
        run.all()
    );
    assert!(
        !run.all().contains("gold"),
        "a value was quoted\n{}",
        run.all()
    );
    assert!(
        other.local_d1_files().is_empty(),
        "local D1 was made\n{}",
        run.all()
    );
}

/// `verify --no-manifest` of `dump` (written as `name`) and then its
/// restore into the sandbox's empty local D1: both must succeed, with no
/// statement called unsplittable or unreadable and no row count warned of.
fn verifies_and_restores(sb: &Sandbox, name: &str, dump: &str) {
    let file = sb.path().join(name);
    std::fs::write(&file, dump).unwrap();
    let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    assert!(verify.ok, "{name}: {}", verify.all());
    assert!(verify.stdout.contains("GOOD"), "{name}: {}", verify.all());
    let restore = restore_written_dump(sb, name, &[]);
    restore.assert_ok();
    for said in [
        "cannot be split",
        "cannot read",
        "cannot be read",
        "expected ",
    ] {
        assert!(!restore.all().contains(said), "{name}: {}", restore.all());
    }
}

/// rvCD 1: a multi-row INSERT over D1's 100 KB statement limit, which
/// `sqlite3` loads. What happened: verify failed ("an oversized multi-row
/// INSERT cannot be split; give each row its own INSERT") while the same
/// report said restore repairs it, and restore failed. The cause:
/// `Splitter::split` (crates/d1-core/src/repair.rs) read one row only. It
/// is split into one INSERT per row, with the statement's own head, and a
/// row still over the limit is split as any oversized row is. So is 1.3 MB
/// of 9,000 small rows in one INSERT.
#[test]
fn an_oversized_multi_row_insert_verifies_and_restores_row_by_row() {
    let x = "x".repeat(60_000);
    let sb = Sandbox::new();
    let two = format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO t VALUES(1,'{x}'),(2,'{x}');\n\
         INSERT OR REPLACE INTO t (v, id) VALUES('{x}{x}', 3), ('small', 4);\n"
    );
    verifies_and_restores(&sb, "multi.sql", &two);
    let rows = sb.query("SELECT id, length(v) AS n FROM t ORDER BY id");
    let lengths: Vec<(i64, i64)> = { rows[0].iter() }
        .map(|r| (r["id"].as_i64().unwrap(), r["n"].as_i64().unwrap()))
        .collect();
    assert_eq!(lengths, [(1, 60_000), (2, 60_000), (3, 120_000), (4, 5)]);

    let many: Vec<String> = (1..=9_000)
        .map(|i| {
            format!(
                "({i},'row {i} of a long list of rows, {}')",
                "y".repeat(110)
            )
        })
        .collect();
    let dump = format!(
        "CREATE TABLE m(id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO m VALUES{};\n",
        many.join(",\n")
    );
    assert!(dump.len() > 1_200_000, "{}", dump.len());
    let sb = Sandbox::new();
    verifies_and_restores(&sb, "multi1mb.sql", &dump);
    let rows = sb.query("SELECT count(*) AS n, sum(id) AS s FROM m");
    assert_eq!(rows[0][0]["n"], 9_000);
    assert_eq!(rows[0][0]["s"], 9_000 * 9_001 / 2);
}

/// rvCC 1 and 2: an INSERT with an upsert clause (`ON CONFLICT`). What
/// happened: of an oversized row of one, verify said FAIL "SQLite cannot
/// read the oversized row's values" and, in the same report, "split into
/// pieces under it (restore repairs this)"; restore failed with the first.
/// Of a small `DO UPDATE` one, restore said "the repaired dump's an INSERT
/// into t (the repair wrote it, or moved it ahead of the rows)": nothing
/// was repaired. Both are refused, naming the line, the table and the fix;
/// nothing is loaded.
#[test]
fn an_upsert_in_a_dump_is_refused_naming_its_line_and_the_fix() {
    let x = "x".repeat(120_000);
    let oversized = format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO t VALUES(1,'small');\n\
         INSERT INTO t VALUES(1,'{x}') ON CONFLICT(id) DO UPDATE SET v=excluded.v;\n"
    );
    let small = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
        INSERT INTO t VALUES(1,'a'),(2,'b') ON CONFLICT(id) DO UPDATE SET v='upd';\n";
    for (name, dump, line, said) in [
        (
            "oversized.sql",
            oversized.as_str(),
            "line 3",
            "plain INSERT",
        ),
        ("small.sql", small, "line 2", "upsert clause"),
    ] {
        let sb = Sandbox::new();
        let file = sb.path().join(name);
        std::fs::write(&file, dump).unwrap();
        let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
        assert!(!verify.ok, "{name}: {}", verify.all());
        assert!(
            !verify.all().contains("restore repairs this")
                && !verify.all().contains("cannot read the oversized"),
            "{name}: verify contradicts itself\n{}",
            verify.all()
        );
        let restore = restore_written_dump(&sb, name, &[]);
        assert!(!restore.ok, "{name}: {}", restore.all());
        for words in [line, said, "plain INSERT"] {
            assert!(restore.all().contains(words), "{name}: {}", restore.all());
        }
        for words in ["repaired dump's", "cannot read the oversized", "xxx", "'a'"] {
            assert!(!restore.all().contains(words), "{name}: {}", restore.all());
        }
        assert!(sb.local_d1_files().is_empty(), "{name}: {}", restore.all());
    }
}

/// rvCE 3: an INSERT over 100 KB of small rows with an upsert clause that
/// updates (`ON CONFLICT(id) DO UPDATE`): a split keeps the clause, which
/// this tool's SQL gate refuses in each piece. verify said FAIL "5 of 6
/// repaired statements failed under D1's rules" beside "[pass]
/// d1-restorable … restore repairs the 1 thing D1 refuses", and restore
/// refused it. verify now says it is not repairable, as restore does,
/// naming the statement's line, the upsert and the fix.
#[test]
fn an_oversized_upsert_that_updates_is_not_repairable_to_verify_as_to_restore() {
    let rows: Vec<String> = (1..=5)
        .map(|i| format!("({i},'{}')", "x".repeat(30_000)))
        .collect();
    let dump = format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO t VALUES{} ON CONFLICT(id) DO UPDATE SET v=excluded.v;\n",
        rows.join(",")
    );
    let sb = Sandbox::new();
    let file = sb.path().join("upsert.sql");
    std::fs::write(&file, dump).unwrap();
    let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
    assert!(!verify.ok, "{}", verify.all());
    let said = verify.all();
    for words in ["restore repairs", "D1's rules", "5 of 6", "xxx"] {
        assert!(!said.contains(words), "verify says {words:?}:\n{said}");
    }
    assert!(
        said.contains("line 2") && said.contains("ON CONFLICT") && said.contains("plain INSERT"),
        "{said}"
    );
    let restore = restore_written_dump(&sb, "upsert.sql", &[]);
    assert!(!restore.ok, "{}", restore.all());
    assert!(sb.local_d1_files().is_empty(), "{}", restore.all());
}

/// rvCD 2 and 3: comments where SQLite reads a space, between INSERT and
/// INTO, after the table, inside the column list, which D1 loads
/// (`wrangler d1 execute --file`). What happened: verify called the
/// first "an INSERT this tool cannot read the table of" among what "D1
/// refuses", and an oversized row with a comment "is not INSERT ... VALUES
/// and cannot be split" or had "the column list ... cannot be read". The
/// cause: `statement::strip_keyword` and the name readers
/// (crates/d1-core/src/statement.rs) skipped spaces but not comments.
#[test]
fn comments_inside_inserts_are_read_past_as_sqlite_reads_them() {
    let x = "x".repeat(120_000);
    let dump = format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT /* c */ INTO t VALUES(1,'a');\n\
         INSERT -- c\nINTO t VALUES(2,'b');\n\
         INSERT INTO t(id /* key */, v) VALUES(3,'c');\n\
         INSERT INTO t /* c */ VALUES(4,'{x}');\n\
         INSERT INTO t(id /* key */, v) VALUES(5,'{x}');\n\
         INSERT /* c */ INTO t VALUES(6,'{x}');\n"
    );
    let sb = Sandbox::new();
    verifies_and_restores(&sb, "comments.sql", &dump);
    let rows = sb.query("SELECT count(*) AS n, sum(length(v)) AS bytes FROM t");
    assert_eq!(rows[0][0]["n"], 6);
    assert_eq!(rows[0][0]["bytes"], 3 + 3 * 120_000);
}

/// rvCD 4: one table named in other cases and with `main.` before it,
/// which SQLite reads as the one table. What happened: the restore loaded
/// every row and warned "USERS: expected 2, found 5; Users: expected 1,
/// found 5; users: ...", three tables and a false cause. The cause: the
/// dump's rows were counted under each spelling (`dump::Summarizer`,
/// crates/d1-core/src/dump.rs). They are counted per table as SQLite
/// resolves it, under the name its CREATE gives it.
#[test]
fn rows_of_a_table_named_in_other_cases_are_counted_as_its_own() {
    let dump = "CREATE TABLE Users(id INTEGER PRIMARY KEY, name TEXT);\n\
        INSERT INTO users VALUES(1,'a');\n\
        INSERT INTO \"USERS\" VALUES(2,'b');\n\
        INSERT INTO main.Users VALUES(3,'c');\n\
        INSERT INTO \"main\".\"users\"(id,name) VALUES(4,'d');\n\
        INSERT INTO USERS VALUES(5,'e');\n";
    let sb = Sandbox::new();
    verifies_and_restores(&sb, "case.sql", dump);
    let rows = sb.query("SELECT count(*) AS n FROM Users");
    assert_eq!(rows[0][0]["n"], 5);
}

/// rvCH: a `--clean` restore of a dump whose `companies` has a column the
/// migrations' lacks advised "Restore the dump without --clean (--replace,
/// or into an empty database)", and that restore was refused again, for
/// the flags only its own refusal named (`--partial`, the dump holding one
/// table, and `--allow-schema-change companies`). The first refusal names
/// them, and the restore it advises, run as it says, loads the rows.
#[test]
fn a_clean_restore_refused_for_an_extra_column_names_the_flags_its_way_out_needs() {
    let sb = Sandbox::new();
    let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
        CREATE TABLE companies (\n\
            id             INTEGER PRIMARY KEY AUTOINCREMENT,\n\
            name           TEXT    NOT NULL,\n\
            qbt_company_id TEXT    UNIQUE,\n\
            timezone       TEXT    NOT NULL DEFAULT 'UTC',\n\
            created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n\
            updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n\
            notes          TEXT\n\
        );\n\
        INSERT INTO \"companies\" (\"id\",\"name\",\"notes\") VALUES(1,'Acme','call first');\n";
    let file = sb.path().join("extra.sql");
    std::fs::write(&file, dump).unwrap();
    let run = restore_clean_without_manifest(&sb, &file, &["--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let all = run.all();
    assert!(
        all.contains("without --clean")
            && all.contains("--partial --allow-schema-change companies"),
        "the refusal names every flag its way out needs\n{all}"
    );
    assert!(sb.local_d1_files().is_empty(), "local D1 was made\n{all}");
    let file = file.to_str().unwrap();
    let args = ["restore", file, "--to", "local", "--no-manifest", "--yes"];
    let way_out = [
        &args[..],
        &["--partial", "--allow-schema-change", "companies"],
    ]
    .concat();
    sb.xtask(&way_out).assert_ok();
    let rows = sb.query("SELECT name, notes FROM companies");
    assert_eq!(rows[0][0]["notes"], "call first", "{rows:?}");
}

/// PD 1: a `--clean` restore of an export of chosen tables (`wrangler d1
/// export --table companies --table extras`) whose `extras` the
/// migrations do not create advised "Restore the dump without --clean
/// (--replace, or into an empty database)", and that restore was refused
/// again for `--partial`, which only its own refusal named. The first
/// refusal names it, and the restore it advises, run as it says, plans
/// the dump's own tables and loads the rows.
#[test]
fn a_clean_restore_refused_for_a_table_the_migrations_lack_names_the_flags_its_way_out_needs() {
    let sb = Sandbox::new();
    let companies = std::fs::read_to_string(
        sb.path()
            .join("migrations/0001_accounts_companies_customers.sql"),
    )
    .unwrap();
    let create = companies
        .split(';')
        .find(|s| s.contains("CREATE TABLE companies"))
        .unwrap()
        .trim();
    let dump = format!(
        "PRAGMA defer_foreign_keys=TRUE;\n{create};\n\
         INSERT INTO \"companies\" (\"id\",\"name\") VALUES(1,'Acme');\n\
         CREATE TABLE extras (id INTEGER PRIMARY KEY, note TEXT);\n\
         INSERT INTO \"extras\" (\"id\",\"note\") VALUES(1,'kept');\n"
    );
    let file = sb.path().join("mixed.sql");
    std::fs::write(&file, dump).unwrap();
    let run = restore_clean_without_manifest(&sb, &file, &["--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let all = run.all();
    assert!(
        all.contains("table extras, which the migrations do not create")
            && all.contains("without --clean, with --partial"),
        "the refusal names every flag its way out needs\n{all}"
    );
    assert!(sb.local_d1_files().is_empty(), "local D1 was made\n{all}");
    let file = file.to_str().unwrap();
    let args = [
        "restore",
        file,
        "--to",
        "local",
        "--no-manifest",
        "--partial",
    ];
    let plan = sb.xtask(&[&args[..], &["--dry-run"]].concat());
    plan.assert_ok();
    assert!(
        plan.stdout.contains("into-empty") && plan.stdout.contains("Dry run"),
        "{}",
        plan.all()
    );
    sb.xtask(&[&args[..], &["--yes"]].concat()).assert_ok();
    let rows = sb.query("SELECT note FROM extras");
    assert_eq!(rows[0][0]["note"], "kept", "{rows:?}");
}

/// A local D1 made by hand: tables `"order"` and `log`, views stacked
/// four deep on `"order"`, and a trigger on `"order"`.
const HAND_MADE_WITH_VIEWS: &str = "\
CREATE TABLE \"order\" (id INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT);\n\
CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, msg TEXT);\n\
INSERT INTO \"order\" (item) VALUES ('a'), ('b');\n\
INSERT INTO log (msg) VALUES ('x'), ('y'), ('z'), ('w');\n\
CREATE VIEW v1 AS SELECT id, item FROM \"order\";\n\
CREATE VIEW v2 AS SELECT id FROM v1;\n\
CREATE VIEW v3 AS SELECT id FROM v2;\n\
CREATE VIEW v4 AS SELECT id FROM v3;\n\
CREATE TRIGGER trg_order_ins AFTER INSERT ON \"order\" BEGIN \
INSERT INTO log (msg) VALUES ('ordered'); END;\n";

/// rvCM 1: a `--replace` restore of `wrangler d1 export --table order
/// --table log` (which holds no view or trigger) dropped the target's
/// views and its trigger on `"order"`, a table the dump makes again, and
/// never made them again, while its `LOSES` line (the one `-q` keeps)
/// named tables only and the plan's `drops` line ended "and 4 more
/// objects". Each view and trigger it drops and does not make again is
/// named, in the plan, under `-q`, in `--json`'s `loses`, dry run and real
/// run, `--partial` too.
#[test]
fn a_replace_restore_of_a_table_export_names_the_views_and_triggers_it_drops() {
    let sb = Sandbox::new();
    sb.execute_sql(HAND_MADE_WITH_VIEWS);
    let file = sb.path().join("tables.sql");
    let out = file.to_str().unwrap();
    let export = ["d1", "export", "qbtime_db_local", "--local"];
    let chosen = ["--table", "order", "--table", "log", "--output", out];
    sb.wrangler(&[&export[..], &chosen[..]].concat())
        .assert_ok();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("CREATE VIEW") && !text.contains("CREATE TRIGGER"),
        "{text}"
    );
    let lost = [
        "view v1",
        "view v2",
        "view v3",
        "view v4",
        "trigger trg_order_ins",
    ];
    let names_them = |said: &str, all: &str| {
        for object in lost {
            assert!(said.contains(object), "{object} not named:\n{all}");
        }
    };
    let args = [
        "restore",
        out,
        "--to",
        "local",
        "--replace",
        "--no-manifest",
    ];
    for partial in [&[][..], &["--partial"][..]] {
        let dry = sb.xtask(&[&args[..], partial, &["--dry-run"]].concat());
        dry.assert_ok();
        let said: Vec<&str> = dry.stdout.lines().filter(|l| l.contains("LOSES")).collect();
        names_them(&said.join("\n"), &dry.all());
        let json = sb.xtask(&[&args[..], partial, &["--dry-run", "--json"]].concat());
        json.assert_ok();
        let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let loses: Vec<String> = { doc["plan"]["loses"].as_array().unwrap().iter() }
            .map(|l| {
                format!(
                    "{} {}",
                    l["kind"].as_str().unwrap(),
                    l["name"].as_str().unwrap()
                )
            })
            .collect();
        names_them(&loses.join("\n"), &json.stdout);
    }
    let run = sb.xtask(&[&["-q"][..], &args[..], &["--yes"]].concat());
    run.assert_ok();
    let warned: Vec<&str> = { run.stderr.lines() }
        .filter(|l| l.contains("this restore LOSES"))
        .collect();
    names_them(&warned.join("\n"), &run.all());
    let left = sb.query("SELECT name FROM sqlite_schema ORDER BY name");
    assert_eq!(left[0].len(), 3, "{left:?}");
}

/// rvCM 3: `cat nodata.sql noschema.sql > combined.sql` (wrangler's
/// `--no-data` and `--no-schema` exports of one database) restored
/// `--replace` left `sqlite_sequence` with two rows for `log`, and verify
/// said GOOD. Each AUTOINCREMENT table keeps one counter, as the database
/// had it.
#[test]
fn a_schema_export_then_a_data_export_restores_one_counter_per_table() {
    let sb = Sandbox::new();
    sb.execute_sql(HAND_MADE_WITH_VIEWS);
    let export = ["d1", "export", "qbtime_db_local", "--local"];
    let mut combined = String::new();
    for (name, flag) in [("nodata.sql", "--no-data"), ("noschema.sql", "--no-schema")] {
        let file = sb.path().join(name);
        let out = ["--output", file.to_str().unwrap(), flag];
        sb.wrangler(&[&export[..], &out[..]].concat()).assert_ok();
        combined.push_str(&std::fs::read_to_string(&file).unwrap());
    }
    let before = sb.query("SELECT name, seq FROM sqlite_sequence ORDER BY name");
    std::fs::write(sb.path().join("combined.sql"), combined).unwrap();
    let allow = ["--replace", "--allow-trigger", "trg_order_ins"];
    let run = restore_written_dump(&sb, "combined.sql", &allow);
    if run.ok {
        let after = sb.query("SELECT name, seq FROM sqlite_sequence ORDER BY name");
        assert_eq!(after, before, "{}", run.all());
    } else {
        assert_eq!(run.code, Some(3), "{}", run.all());
        assert!(run.stderr.contains("sqlite_sequence"), "{}", run.all());
    }
}

/// rvCM 2: a wrangler export cut at a line boundary (`head -n 8`) makes
/// only some of the migrations' tables. `restore` refuses it without
/// `--partial`; `verify` said GOOD, exit 0. It says what restore will do:
/// a warning naming the file as partial and `--partial`.
#[test]
fn verify_of_an_export_cut_at_a_line_says_restore_needs_partial() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let full = sb.path().join("full.sql");
    let export = ["d1", "export", "qbtime_db_local", "--local", "--output"];
    sb.wrangler(&[&export[..], &[full.to_str().unwrap()]].concat())
        .assert_ok();
    let text = std::fs::read_to_string(&full).unwrap();
    let cut: Vec<&str> = text.lines().take(8).collect();
    let file = sb.path().join("cut.sql");
    std::fs::write(&file, cut.join("\n") + "\n").unwrap();
    let f = file.to_str().unwrap();
    let refused = sb.xtask(&[
        "restore",
        f,
        "--to",
        "local",
        "--replace",
        "--no-manifest",
        "--dry-run",
    ]);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    assert!(refused.all().contains("--partial"), "{}", refused.all());
    let verify = sb.xtask(&["verify", f, "--no-manifest"]);
    let said = verify.all();
    assert!(
        said.contains("--partial") && said.contains("only some of the tables"),
        "verify does not say what restore will do:\n{said}\nrestore:\n{}",
        refused.all()
    );
}

/// rvCM 2: `verify --no-manifest` of a `--no-schema` export holding a
/// 95 KB row of a table no migration makes failed its statements check
/// ("unknown table big") yet passed d1-restorable, its findings saying
/// restore repairs the row, and warned that the data-only file lacks the
/// triggers its migrations create, with `--allow-missing-trigger` advice,
/// though its one restore (`--clean`) makes them from the migrations.
/// One verdict: BAD, naming the table, and no trigger advice.
#[test]
fn verify_of_a_no_schema_export_with_a_big_row_of_an_unknown_table_says_one_verdict() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);\n\
         INSERT INTO big VALUES (1, printf('%.*c', 95000, 'x'));\n",
    );
    let data = sb.export_data_only("noschema.sql");
    let run = sb.xtask(&["verify", data.to_str().unwrap(), "--no-manifest"]);
    let said = run.all();
    assert!(!run.ok, "{said}");
    assert!(said.contains("big"), "{said}");
    assert!(!said.contains("[pass] d1-restorable"), "{said}");
    assert!(!said.contains("restore repairs this"), "{said}");
    assert!(!said.contains("--allow-missing-trigger"), "{said}");
}
