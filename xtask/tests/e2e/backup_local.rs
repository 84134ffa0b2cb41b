//! `cargo xtask backup` against local D1, end to end, with the real wrangler.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::Value;

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn manifest_rows(manifest: &Value) -> BTreeMap<String, u64> {
    manifest["rows"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn seeded() -> Sandbox {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb
}

#[test]
fn full_backup_is_private_complete_and_its_manifest_matches_the_database() {
    let sb = seeded();
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();

    let name = only_backup(&sb);
    assert!(
        name.starts_with("backup-local-") && name.len() == "backup-local-20261123-2230.sql".len(),
        "{name}"
    );
    let file = sb.backups().join(&name);
    assert_eq!(mode_of(&sb.backups()), 0o700);
    assert_eq!(mode_of(&file), 0o600);
    let manifest_path = sb.backups().join(name.replace(".sql", ".manifest.json"));
    assert_eq!(mode_of(&manifest_path), 0o600);
    assert!(
        !sb.backup_files().iter().any(|f| f.ends_with(".partial")),
        "temporary file left behind: {:?}",
        sb.backup_files()
    );
    assert_eq!(
        std::fs::read_to_string(sb.backups().join(".lock")).unwrap(),
        "",
        "the lock is released"
    );

    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("PRAGMA defer_foreign_keys=TRUE;"));
    assert!(text.contains("CREATE TABLE accounts"));
    assert!(
        text.contains("X'00112233445566778899aabbccddeeff'"),
        "BLOBs survive"
    );

    let m = manifest_for(&sb, &name);
    assert_eq!(m["environment"], "local");
    assert_eq!(m["database"]["name"], "qbtime_db_local");
    assert_eq!(
        m["database"]["uuid"],
        "00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(m["database"]["location"], "local");
    assert_eq!(m["mode"], "full");
    assert_eq!(m["file"]["name"], name.as_str());
    assert_eq!(m["file"]["bytes"], bytes.len() as u64);
    assert_eq!(m["file"]["sha256"], sha256_hex(&bytes).as_str());
    // The version package.json pins, as the manifest records it.
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("package.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["wrangler_version"],
        package["devDependencies"]["wrangler"]
    );
    assert_eq!(m["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        m["time_travel_bookmark"].is_null(),
        "local D1 has no Time Travel"
    );
    assert!(m["virtual_tables"].is_null());
    assert!(m["created_at"].as_str().unwrap().ends_with('Z'));

    // Every figure is what the database itself says.
    assert_eq!(manifest_rows(&m), sb.live_row_counts());
    let applied: Vec<Value> = sb.query("SELECT name FROM d1_migrations ORDER BY id")[0]
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(m["migrations"].as_array().unwrap(), &applied);
    assert_eq!(applied.len(), 4);
    assert_eq!(m["encryption_key"]["key_id"], "dek-2026-01");
    assert_eq!(
        m["encryption_key"]["fingerprint"],
        "sha256:2222222222222222222222222222222222222222222222222222222222222222"
    );

    // A second backup gets its own name and leaves the first untouched (the
    // same-minute suffix itself is covered by the unit tests of claim_name).
    let first = std::fs::read(&file).unwrap();
    sb.xtask(&["backup", "local"]).assert_ok();
    let backups: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|n| n.ends_with(".sql"))
        .collect();
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(std::fs::read(&file).unwrap(), first);
}

#[test]
fn schema_only_data_only_and_chosen_tables() {
    let sb = seeded();
    let live = sb.live_row_counts();

    let run = sb.xtask(&["backup", "local", "--schema-only"]);
    run.assert_ok();
    // Its summary does not read as an empty database's.
    assert!(
        run.stdout.contains("the schema only, no rows") && !run.stdout.contains("0 tables"),
        "{}",
        run.stdout
    );
    let schema = only_backup(&sb);
    let text = std::fs::read_to_string(sb.backups().join(&schema)).unwrap();
    assert!(text.contains("CREATE TABLE customers"));
    assert!(text.contains("CREATE TRIGGER audit_log_no_update"));
    assert!(!text.contains("INSERT INTO"), "schema-only has no rows");
    let m = manifest_for(&sb, &schema);
    assert_eq!(m["mode"], "schema-only");
    assert!(manifest_rows(&m).is_empty());
    // It records no migrations (it has no d1_migrations rows), so its
    // triggers are held to those of migrations/: the restore's plan is made.
    sb.xtask(&[
        "restore",
        &schema,
        "--to",
        "local",
        "--replace",
        "--partial",
        "--dry-run",
    ])
    .assert_ok();
    std::fs::remove_file(sb.backups().join(&schema)).unwrap();
    std::fs::remove_file(sb.backups().join(schema.replace(".sql", ".manifest.json"))).unwrap();

    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let data = only_backup(&sb);
    let text = std::fs::read_to_string(sb.backups().join(&data)).unwrap();
    assert!(!text.contains("CREATE TABLE"), "data-only has no DDL");
    assert!(text.contains("INSERT INTO \"customers\""));
    let m = manifest_for(&sb, &data);
    assert_eq!(m["mode"], "data-only");
    assert_eq!(manifest_rows(&m), live);
    assert_eq!(m["migrations"].as_array().unwrap().len(), 4);
    std::fs::remove_file(sb.backups().join(&data)).unwrap();
    std::fs::remove_file(sb.backups().join(data.replace(".sql", ".manifest.json"))).unwrap();

    sb.xtask(&[
        "backup",
        "local",
        "--table",
        "customers",
        "--table",
        "companies",
    ])
    .assert_ok();
    let chosen = only_backup(&sb);
    let text = std::fs::read_to_string(sb.backups().join(&chosen)).unwrap();
    assert!(!text.contains("INSERT INTO \"accounts\""));
    assert!(
        text.contains("CREATE INDEX customers_by_company_name"),
        "a chosen table keeps its indexes, which plain wrangler drops"
    );
    let m = manifest_for(&sb, &chosen);
    assert_eq!(m["tables"], serde_json::json!(["customers", "companies"]));
    let rows = manifest_rows(&m);
    assert_eq!(
        rows,
        BTreeMap::from([
            ("companies".to_owned(), live["companies"]),
            ("customers".to_owned(), live["customers"]),
        ])
    );
}

#[test]
fn a_database_with_fts5_is_backed_up_and_its_virtual_tables_recorded() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_search.sql"),
        "CREATE VIRTUAL TABLE customer_search USING fts5(name, email);\n\
         CREATE VIRTUAL TABLE report_search USING fts5(name, content='report_configs', content_rowid='id');\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(
        "INSERT INTO customer_search (rowid, name, email) SELECT id, name, email FROM customers;\n\
         INSERT INTO report_search (report_search) VALUES ('rebuild');\n",
    );

    // The trap: plain wrangler refuses this database outright.
    let raw = sb.wrangler(&[
        "d1",
        "export",
        "qbtime_db_local",
        "--local",
        "--output",
        "raw.sql",
        "-y",
    ]);
    assert!(!raw.ok);
    assert!(
        raw.all()
            .contains("cannot export databases with Virtual Tables"),
        "{}",
        raw.all()
    );

    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let text = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let m = manifest_for(&sb, &name);

    let vt = &m["virtual_tables"];
    assert!(vt["note"].as_str().unwrap().contains("virtual tables"));
    let tables = vt["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[0]["name"], "customer_search");
    assert_eq!(tables[0]["module"], "fts5");
    assert!(
        tables[0]["sql"]
            .as_str()
            .unwrap()
            .starts_with("CREATE VIRTUAL TABLE customer_search")
    );
    assert_eq!(tables[0]["content"]["kind"], "internal");
    assert_eq!(tables[0]["content"]["table"], "customer_search_content");
    assert_eq!(tables[1]["content"]["kind"], "external");
    assert_eq!(tables[1]["content"]["table"], "report_configs");

    // The rows of the FTS table are kept, the index structures are not, and
    // no schema object is lost to wrangler's --table filter.
    assert_eq!(m["rows"]["customer_search_content"], 3);
    assert!(!text.contains("customer_search_data"));
    assert!(!text.contains("CREATE VIRTUAL TABLE"));
    for object in [
        "CREATE INDEX customers_by_company_name",
        "CREATE UNIQUE INDEX encryption_keys_one_in_force",
        "CREATE TRIGGER audit_log_no_delete",
        "CREATE TRIGGER report_configs_touch",
        "DELETE FROM sqlite_sequence;",
    ] {
        assert!(text.contains(object), "missing {object}");
    }
    let live = sb.live_row_counts();
    for (table, n) in manifest_rows(&m) {
        assert_eq!(live[&table], n, "{table}");
    }
    for table in ["accounts", "audit_log", "d1_migrations", "qbt_connections"] {
        assert_eq!(m["rows"][table], live[table], "{table}");
    }
}

#[test]
fn dry_run_prints_every_wrangler_command_and_writes_nothing() {
    let sb = seeded();
    let run = sb.xtask(&[
        "backup",
        "local",
        "--data-only",
        "--dry-run",
        "--via-wrangler",
    ]);
    run.assert_ok();
    assert!(run.stdout.contains("Backup plan"), "{}", run.stdout);
    assert!(run.stdout.contains("mode         data-only"));
    let export_line = run
        .stdout
        .lines()
        .find(|l| l.contains("wrangler d1 export"))
        .expect("the export command is shown");
    for arg in [
        "qbtime_db_local",
        "--local",
        "--no-schema",
        "-y",
        "--output",
    ] {
        assert!(export_line.contains(arg), "{export_line}");
    }
    assert!(run.stdout.contains("Dry run: nothing was changed."));
    assert!(
        !sb.backups().exists(),
        "dry run created {:?}",
        sb.backup_files()
    );
}

/// `backup local --table customers --table companies` announces itself as
/// "Backing up local -> qbtime_db_local (local D1), full, into …", the
/// same line as a whole backup; `list` calls the same backup
/// "full (customers, companies)". The first line should say which tables.
#[test]
fn a_backup_of_chosen_tables_says_so_in_its_first_line() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = sb.xtask(&[
        "backup",
        "local",
        "--table",
        "customers",
        "--table",
        "companies",
    ]);
    run.assert_ok();
    let first = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Backing up"))
        .unwrap_or_default();
    assert!(
        first.contains("customers") && first.contains("companies"),
        "the first line names the chosen tables: {first:?}\n{}",
        run.all()
    );
}

/// rvW 3: backups/ on a file system of its own (a USB disk, an NFS mount,
/// a tmpfs: common for backups). git stops looking for the repository at
/// a file system's edge, so asked from backups/ it said "not a git
/// repository", and every backup (a restore's safety backup, a migration's
/// too) was refused: "… is a git checkout, but git does not say whether
/// backups stay out of it". Run in a mount namespace of its own
/// ([`xtask_with_mounted`]), so that no mount outlives the test.
#[test]
fn a_backup_directory_on_a_file_system_of_its_own_takes_backups() {
    let sb = seeded();
    std::fs::create_dir_all(sb.backups()).unwrap();
    let Some(cmd) = xtask_with_mounted(&sb.backups(), Mounted::Empty) else {
        return;
    };
    let run = Run::from_output(sb.sandboxed(cmd, &["backup", "local"]).output().unwrap());
    run.assert_ok();
    assert!(!run.stderr.contains("git does not say"), "{}", run.all());
    let listed: Vec<&str> = run.stdout.lines().collect();
    assert!(
        { listed.iter() }.any(|l| l.starts_with("backup-local-") && l.ends_with(".sql")),
        "no backup in the mount:\n{}",
        run.all()
    );
    assert!(
        { listed.iter() }.any(|l| l.starts_with("backup-local-") && l.ends_with(".manifest.json")),
        "no manifest in the mount:\n{}",
        run.all()
    );
}

#[test]
fn a_hard_link_snapshot_of_the_backup_directory_does_not_stop_the_next_backup() {
    // `cp -al backups backups.2026-12-01`, the cheap snapshot of a
    // directory (rsnapshot's rotation), gives every file in backups/ a
    // second name: the lock that each backup leaves behind (emptied) and
    // the journals. Since atkU's fix, `open_no_follow` refuses any file
    // with two names (fsutil.rs `only_name`), so every backup from then on
    // fails on `.lock`, and the fix it prints is to `rm` the tool's own
    // files (the Time Travel journal among them, which status reads).
    let sb = seeded();
    sb.xtask(&["backup", "local"]).assert_ok();
    let snapshot = sb.path().join("backups.snapshot");
    std::fs::create_dir(&snapshot).unwrap();
    let mut linked = Vec::new();
    for entry in std::fs::read_dir(sb.backups()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::hard_link(entry.path(), snapshot.join(entry.file_name())).unwrap();
            linked.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    assert!(linked.iter().any(|n| n == ".lock"), "{linked:?}");
    let snapshot_before: BTreeMap<String, Vec<u8>> = linked
        .iter()
        .map(|n| (n.clone(), std::fs::read(snapshot.join(n)).unwrap()))
        .collect();

    let run = sb.xtask(&["backup", "local", "--reason", "after the snapshot"]);
    run.assert_ok();
    let after: BTreeMap<String, Vec<u8>> = linked
        .iter()
        .map(|n| (n.clone(), std::fs::read(snapshot.join(n)).unwrap()))
        .collect();
    assert_eq!(after, snapshot_before, "the snapshot was written through");
}

#[test]
fn a_reason_with_an_emoji_or_a_persian_word_is_kept_as_typed() {
    // rvAG: the reason is cleaned with `names::unprintable`, which holds
    // every Default_Ignorable_Code_Point: U+FE0F (the emoji form of ❤️),
    // U+200D (the joiner in 👩‍💻) and U+200C (the non-joiner Persian writes
    // inside words) each become a space, so `list` and the manifest show
    // "❤ ", "👩 💻" and a Persian word split in two: not what was typed,
    // and none of them a lookalike of anything.
    let sb = Sandbox::new();
    let reason = "deploy ❤️ by 👩‍💻: پیش‌از به‌روزرسانی";
    sb.xtask(&["backup", "local", "--reason", reason])
        .assert_ok();
    let name = only_backup(&sb);
    assert_eq!(
        manifest_for(&sb, &name)["reason"],
        reason,
        "the reason as typed"
    );
}

/// rvAI: the refusal of a `--table` list without a referenced table names
/// the parent as the foreign key spells it, not as the database does.
/// SQLite matches the two ignoring case (`REFERENCES companies` finds
/// `Companies`), and so does `missing_parents`, but `--table` does not:
/// the advice "Take companies with --table too", followed, is refused
/// with "--table companies: no such table in the database".
#[test]
fn the_fix_a_refused_table_list_advises_is_taken() {
    let sb = Sandbox::new();
    sb.execute_sql(
        "CREATE TABLE Companies (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE customers (id INTEGER PRIMARY KEY,
             company_id INTEGER REFERENCES companies (id));
         INSERT INTO Companies VALUES (1, 'Acme');
         INSERT INTO customers VALUES (1, 1);",
    );
    let refused = sb.xtask(&["backup", "local", "--table", "customers"]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    let advised = refused
        .stderr
        .split("Take ")
        .nth(1)
        .and_then(|rest| rest.split(" with --table too").next())
        .unwrap_or_else(|| panic!("no advice:\n{}", refused.all()))
        .to_owned();
    let run = sb.xtask(&[
        "backup",
        "local",
        "--table",
        "customers",
        "--table",
        &advised,
    ]);
    assert!(
        run.ok,
        "the advised `--table {advised}` was refused:\n{}",
        run.all()
    );
}

/// rvCB 3: a table to add whose name starts with `-` was advised bare
/// ("Take \"-x\" with --table too"), and `--table -x` is refused by the
/// parser as an option of its own. The advice gives it as `--table=-x`,
/// which, followed, is taken.
#[test]
fn the_fix_a_refused_table_list_advises_is_taken_for_a_name_starting_with_a_dash() {
    let sb = Sandbox::new();
    sb.execute_sql(
        "CREATE TABLE \"-x\" (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE customers (id INTEGER PRIMARY KEY,
             company_id INTEGER REFERENCES \"-x\" (id));
         INSERT INTO \"-x\" VALUES (1, 'Acme');
         INSERT INTO customers VALUES (1, 1);",
    );
    let refused = sb.xtask(&["backup", "local", "--table", "customers"]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    assert!(refused.stderr.contains("`--table=-x`"), "{}", refused.all());
    let run = sb.xtask(&["backup", "local", "--table", "customers", "--table=-x"]);
    assert!(
        run.ok,
        "the advised `--table=-x` was refused:\n{}",
        run.all()
    );
}

/// OT 1: a `--table` no table of the database answers to was refused
/// listing its tables bare ("its tables are: -x"), and `--table -x`,
/// typed from it, is refused by the parser. Each table is listed as it is
/// typed, `--table=-x`, as the advice gives it.
#[test]
fn the_tables_an_unknown_table_is_refused_with_are_typed_joined_for_a_name_starting_with_a_dash() {
    let sb = Sandbox::new();
    sb.execute_sql("CREATE TABLE \"-x\" (id INTEGER PRIMARY KEY, name TEXT);");
    let refused = sb.xtask(&["backup", "local", "--table=-y"]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    for said in ["--table=-y: no such table", "its tables are: --table=-x"] {
        assert!(refused.stderr.contains(said), "{said}:\n{}", refused.all());
    }
}

/// `backup local --via-wrangler --table NAME` for names wrangler's parser
/// could read otherwise: within quotes, with `=`, starting with a dash. The
/// backup holds each named table's rows.
#[test]
fn a_via_wrangler_backup_of_named_tables_keeps_names_within_quotes_or_with_a_dash() {
    let sb = seeded();
    let names = ["\"q\"", "'r'", "a=b", "-x"];
    let mut sql = String::new();
    for n in names {
        let q = format!("\"{}\"", n.replace('"', "\"\""));
        sql.push_str(&format!(
            "CREATE TABLE {q} (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO {q} VALUES (1, 'a'), (2, 'b');\n"
        ));
    }
    sb.execute_sql(&sql);
    let mut args = vec!["backup", "local", "--via-wrangler"];
    let flags: Vec<String> = names.iter().map(|n| format!("--table={n}")).collect();
    args.extend(flags.iter().map(String::as_str));
    sb.xtask(&args).assert_ok();
    let m = manifest_for(&sb, &only_backup(&sb));
    for n in names {
        assert_eq!(m["rows"][n], 2, "{n}: {m:#}");
    }
}

/// FF: `.wrangler` committed as a link to a directory out of the checkout
/// (git stores links): `backup local` read the local D1 there, another
/// checkout's, and wrote it to backups/ as this project's local backup;
/// `diff … live:local` compared with it. Both are refused (exit 3) before
/// anything is read, naming the link; the backup writes nothing.
#[test]
fn reading_a_local_d1_through_a_wrangler_directory_linked_out_of_the_checkout_is_refused() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Acme');");
    sb.xtask(&["backup", "local"]).assert_ok();
    let taken = sb.backup_files();
    let elsewhere = tempfile::tempdir().unwrap();
    let state = elsewhere.path().join(".wrangler");
    std::fs::rename(sb.path().join(".wrangler"), &state).unwrap();
    std::os::unix::fs::symlink(&state, sb.path().join(".wrangler")).unwrap();
    for args in [
        &["backup", "local"][..],
        &["backup", "local", "--via-wrangler"],
        &["diff", "latest:local", "live:local"],
        &["diff", "latest:local", "live:local", "--dry-run"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("is a symbolic link"),
            "{args:?}: {}",
            run.all()
        );
        assert_eq!(sb.backup_files(), taken, "{args:?} wrote to backups/");
        // rvG1: the way out removes the link alone; `rm -r .wrangler/state`
        // would go through it and delete the other checkout's local D1.
        let link = sb.path().join(".wrangler");
        assert!(
            run.stderr.contains(&format!("rm {}", link.display()))
                && !run.stderr.contains("the whole .wrangler/state directory"),
            "{args:?}: {}",
            run.all()
        );
    }
}

/// rvG5: the local D1's write-ahead log committed as a link (its name is
/// the database file's, `-wal` added): SQLite reads and rewrites the log
/// wherever it leads. A backup refuses it, and what it leads to is left
/// as it was.
#[test]
fn a_local_d1_write_ahead_log_that_is_a_link_is_refused_and_what_it_leads_to_unchanged() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let taken = sb.backup_files();
    let decoy = tempfile::tempdir().unwrap();
    let target = decoy.path().join("notes.txt");
    std::fs::write(&target, "not a write-ahead log\n").unwrap();
    let wal = format!("{}-wal", sb.local_d1_file().display());
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(&target, &wal).unwrap();
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("is a symbolic link"), "{}", run.all());
    assert_eq!(sb.backup_files(), taken, "a backup was written");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "not a write-ahead log\n"
    );
}

/// `--table` naming a table whose name holds a line break or a tab (D1
/// accepts one) is refused before anything is exported: a manifest lists
/// its tables and refuses a control character in them, so such a backup
/// could never be restored or listed. A full backup holds that table.
#[test]
fn a_chosen_table_whose_name_holds_a_control_character_is_refused_before_the_export() {
    let sb = Sandbox::new();
    sb.execute_sql(
        "CREATE TABLE \"new\nline\" (id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE \"tab\there\" (id INTEGER PRIMARY KEY);
         INSERT INTO \"new\nline\" VALUES (1, 'a');",
    );
    for name in ["new\nline", "tab\there"] {
        let run = sb.xtask(&["backup", "local", "--table", name]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(run.stderr.contains("control character"), "{}", run.all());
        assert!(run.stderr.contains("full backup"), "{}", run.all());
        assert!(
            !run.stderr.contains(name),
            "the name is shown escaped, never raw:\n{}",
            run.all()
        );
        assert!(
            sb.backup_files().iter().all(|f| f.starts_with('.')),
            "nothing is left in backups/: {:?}",
            sb.backup_files()
        );
    }
    // The way out said: a full backup of that database.
    sb.xtask(&["backup", "local"]).assert_ok();
}

/// `backup --json`'s `rows` are the tables the text counts ("10 tables"):
/// SQLite's own `sqlite_sequence` (and `sqlite_stat1`, `_cf_*` when there)
/// are listed apart, in `internal_rows`. The manifest keeps them all, and
/// a restore of the backup puts `sqlite_sequence` back as before.
#[test]
fn backup_json_lists_sqlites_own_tables_apart_from_the_users() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let run = sb.xtask(&["backup", "local", "--json"]);
    run.assert_ok();
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let rows = v["result"]["rows"].as_object().unwrap();
    assert!(rows.keys().all(|t| !t.starts_with("sqlite_")), "{rows:?}");
    let internal = v["result"]["internal_rows"].as_object().unwrap();
    assert!(internal.contains_key("sqlite_sequence"), "{v}");
    let backup = only_backup(&sb);
    let m = manifest_for(&sb, &backup);
    assert!(m["rows"].get("sqlite_sequence").is_some(), "{m}");
    let seq = "SELECT name, seq FROM sqlite_sequence ORDER BY name";
    let before = sb.query(seq);
    restore_replacing(&sb, &backup).assert_ok();
    assert_eq!(sb.query(seq), before);
}

/// A view of about 95 KB (over the 90,000 bytes the restore splits INSERTs
/// to, under D1's 100,000-byte statement limit) is one D1 runs: the backup
/// of a database holding it is GOOD, and it restores with the view.
#[test]
fn a_95_kb_view_is_backed_up_good_and_restored_with_the_view() {
    let sb = seeded();
    let ids: Vec<String> = (100_000..113_500).map(|i| i.to_string()).collect();
    let view = format!(
        "CREATE VIEW big AS SELECT id FROM users WHERE id IN ({});",
        ids.join(",")
    );
    assert!((94_000..96_000).contains(&view.len()), "{}", view.len());
    sb.execute_sql(&view);
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(!run.stdout.contains("BAD"), "{}", run.stdout);
    let file = sb.backups().join(only_backup(&sb));
    let verified = sb.xtask(&["verify", file.to_str().unwrap(), "--no-record"]);
    verified.assert_ok();
    assert!(
        verified.stdout.contains("Result: GOOD"),
        "{}",
        verified.stdout
    );

    let target = Sandbox::new();
    let run = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    run.assert_ok();
    let views =
        target.query("SELECT name, length(sql) AS n FROM sqlite_schema WHERE type = 'view'");
    assert_eq!(views[0].len(), 1, "{views:?}");
    assert_eq!(views[0][0]["name"], "big");
    assert_eq!(
        views[0][0]["n"],
        view.len() as u64 - 1,
        "the view whole, without its ';'"
    );
}

/// The local D1's file is deleted after a backup of the seed rows: `backup
/// -q local` creates the schema from migrations/ on the database it backs
/// up and saves a backup of no rows as GOOD, and printed nothing at all.
/// It must say on stderr that it created the schema, and warn that the
/// tables that had rows in the backup before it have none now.
#[test]
fn a_quiet_backup_of_a_deleted_local_d1_warns_that_its_rows_are_gone() {
    let sb = seeded();
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    let companies = sb.live_row_counts()["companies"];
    sb.empty_local_d1();
    let run = sb.xtask(&["-q", "backup", "local"]);
    run.assert_ok();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("migrations/"),
        "backup -q local created the schema from migrations/ and did not say so:\n{}",
        run.stderr
    );
    let warning: Vec<&str> = { run.stderr.lines() }
        .filter(|l| l.contains("companies"))
        .collect();
    let warning = warning.join("\n");
    assert!(
        warning.contains(&before) && warning.contains(&format!("{companies} rows")),
        "backup -q local of an emptied D1 does not warn that the {companies} rows of companies \
         in {before} are gone:\n{}",
        run.stderr
    );
}

/// A second quiet backup, a row added since the first, says nothing.
#[test]
fn a_quiet_backup_with_the_same_rows_as_the_last_says_nothing() {
    let sb = seeded();
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    sb.execute_sql(
        "INSERT INTO companies (name, qbt_company_id, timezone) VALUES ('Later', 'qbt-9', 'UTC');",
    );
    let run = sb.xtask(&["-q", "backup", "local"]);
    run.assert_ok();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
}

/// The rows the "far fewer rows" warning names: its totals count as the
/// backup's summary counts (not `sqlite_sequence`), and the restore it
/// advises is one the tool accepts as written, which brings the rows
/// back. It used to advise `restore BACKUP --to local`, which a local D1
/// with tables refuses (exit 3, "Use --replace"), and to count
/// `sqlite_sequence` ("down from 8 rows" where the summary said 7).
#[test]
fn the_rows_fell_warning_counts_as_the_summary_and_advises_a_restore_that_works() {
    let sb = seeded();
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    let rows = manifest_rows(&manifest_for(&sb, &before));
    let summary: u64 = { rows.iter() }
        .filter(|(t, _)| !t.starts_with("sqlite_"))
        .map(|(_, n)| n)
        .sum();
    assert!(rows.contains_key("sqlite_sequence"), "{rows:?}");
    let counts = sb.live_row_counts();
    let warning = rows_fell_warning(&sb);
    assert!(
        warning.contains(&format!("down from {summary} rows")),
        "the warning does not count as the summary ({summary} rows):\n{warning}"
    );
    let advised = { warning.split('`') }
        .find(|s| s.starts_with("cargo xtask restore"))
        .unwrap_or_else(|| panic!("no restore advised:\n{warning}"));
    let words: Vec<&str> = advised.split_whitespace().skip(2).collect();
    let restored = sb.xtask(&words);
    restored.assert_ok();
    assert_eq!(
        sb.live_row_counts(),
        counts,
        "`{advised}` did not bring the rows back:\n{}",
        restored.all()
    );
}

/// A restore's safety backup does not warn that rows fell: restore an
/// older backup (a safety backup S of the rows there is taken), then
/// restore S back as the tool advises; the second safety backup holds the
/// older backup's rows, fewer than S's, on purpose. It used to warn,
/// under -q, that the notes were gone.
#[test]
fn restoring_a_safety_backup_back_does_not_warn_that_rows_fell() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    let older = only_backup(&sb);
    sb.execute_sql(SEED_SQL);
    let counts = sb.live_row_counts();
    let first = sb.xtask(&[
        "-q",
        "restore",
        &older,
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    first.assert_ok();
    let safety: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql") && *f != older)
        .collect();
    assert_eq!(safety.len(), 1, "{safety:?}");
    let back = sb.xtask(&[
        "-q",
        "restore",
        &safety[0],
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    back.assert_ok();
    assert!(
        !back.stderr.contains("far fewer rows"),
        "restoring the safety backup back warned that rows fell:\n{}",
        back.stderr
    );
    assert_eq!(sb.live_row_counts(), counts);
}

/// A fresh clone's first backup says it holds no rows but d1_migrations'
/// records of the migrations, which its summary counts: "holds no rows"
/// alone was followed by "10 tables, 4 rows".
#[test]
fn a_fresh_clones_first_backup_says_its_only_rows_are_the_migrations_records() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    let line = run.stdout_line_with("creating its schema");
    assert!(
        line.contains("no rows but") && line.contains("d1_migrations"),
        "{line}\n{}",
        run.stdout
    );
}

/// KT: `backup local --table posts_fts`, posts_fts an external-content
/// FTS5 table (`content='posts'`), is refused before anything is
/// exported, naming the table and both ways out: its rows live in
/// `posts`, so `--table posts --table posts_fts` (or a whole backup)
/// holds them. It used to list no table at all for the export, which
/// then took the whole database, and wrangler refused it ("cannot export
/// databases with Virtual Tables"). The way out it names is taken. A
/// table that does not exist is refused naming the tables there are, and
/// a table named twice is backed up once.
#[test]
fn a_chosen_external_content_fts5_table_alone_is_refused_naming_its_content_table() {
    let sb = Sandbox::new();
    sb.execute_sql(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);
         CREATE VIRTUAL TABLE posts_fts USING fts5(title, content='posts', content_rowid='id');
         INSERT INTO posts VALUES (1, 'hello'), (2, 'world');
         INSERT INTO posts_fts (posts_fts) VALUES ('rebuild');",
    );
    let run = sb.xtask(&["backup", "local", "--table", "posts_fts"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        !run.all().contains("Virtual Tables"),
        "refused before wrangler runs:\n{}",
        run.all()
    );
    for said in ["posts_fts", "--table posts --table posts_fts", "whole"] {
        assert!(run.stderr.contains(said), "no {said:?}:\n{}", run.all());
    }
    assert!(
        sb.backup_files().iter().all(|f| f.starts_with('.')),
        "nothing is left in backups/: {:?}",
        sb.backup_files()
    );

    let missing = sb.xtask(&["backup", "local", "--table", "nope"]);
    assert_eq!(missing.code, Some(2), "{}", missing.all());
    assert!(
        missing.stderr.contains("--table nope: no such table") && missing.stderr.contains("posts"),
        "{}",
        missing.all()
    );

    let chosen = ["posts", "posts_fts", "posts"].map(|t| format!("--table={t}"));
    let mut args = vec!["backup", "local"];
    args.extend(chosen.iter().map(String::as_str));
    sb.xtask(&args).assert_ok();
    let name = only_backup(&sb);
    let (m, text) = (
        manifest_for(&sb, &name),
        std::fs::read_to_string(sb.backups().join(&name)).unwrap(),
    );
    assert_eq!(
        m["tables"],
        serde_json::json!(["posts", "posts_fts"]),
        "{m}"
    );
    assert_eq!(m["rows"]["posts"], 2, "{m}");
    assert_eq!(text.matches("CREATE TABLE posts").count(), 1, "{text}");
}

/// KT: a table whose name holds a line break is shown as every message
/// shows such a name (`d1_core::names::shown_name`: `"t\u{a}nl"`, quoted
/// since OB, as it is no plain identifier), in the line
/// that says where the backup wrote values exactly that wrangler would
/// change, and in the warning that its rows fell. The first used Rust's
/// own escaping (`t\nnl`), the only place a table's name was shown so.
#[test]
fn a_table_name_with_a_line_break_is_shown_alike_in_every_backup_message() {
    let sb = Sandbox::new();
    sb.execute_sql(
        "CREATE TABLE \"t\nnl\" (id INTEGER PRIMARY KEY, big INTEGER);
         INSERT INTO \"t\nnl\" VALUES (1, 9007199254740993), (2, 3);",
    );
    let first = sb.xtask(&["backup", "local"]);
    first.assert_ok();
    assert!(
        first.stdout.contains("1 value in \"t\\u{a}nl\""),
        "{}",
        first.all()
    );
    sb.execute_sql("DELETE FROM \"t\nnl\";");
    let second = sb.xtask(&["-q", "backup", "local"]);
    second.assert_ok();
    assert!(
        second
            .stderr
            .contains("\"t\\u{a}nl\" had 2 rows and has none"),
        "{}",
        second.all()
    );
    for run in [&first, &second] {
        assert!(!run.all().contains("t\\nnl"), "{}", run.all());
        assert!(!run.all().contains("t\nnl"), "{}", run.all());
    }
}

/// A table gone while the rows in all went up: worth the warning (the
/// gone table's rows are only in the backup before), in true words. What
/// happened: "holds far fewer rows … big had 1 rows and is gone; 5 rows in
/// all, down from 4 rows", a fall that was a rise.
#[test]
fn a_table_gone_while_rows_went_up_is_warned_as_up_not_down() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("CREATE TABLE big (x INTEGER); INSERT INTO big VALUES (1);");
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    sb.execute_sql(
        "DROP TABLE big; CREATE TABLE small (x INTEGER); \
         INSERT INTO small VALUES (1), (2), (3), (4), (5);",
    );
    let run = sb.xtask(&["-q", "backup", "local"]);
    run.assert_ok();
    let warning = { run.stderr.split("warning: ") }
        .find(|w| w.contains("big had 1 row and is gone"))
        .unwrap_or_else(|| panic!("no warning of the table gone:\n{}", run.stderr));
    assert!(warning.contains("up from"), "{warning}");
    assert!(
        !warning.contains("down from") && !warning.contains("far fewer rows"),
        "{warning}"
    );
}

/// A local D1 that holds only a view: no table to back up, but not the
/// fresh clone's empty database the first backup sets up from migrations/.
/// What happened: `backup local` ran `migrations apply` into it (ten
/// tables and triggers beside the user's view), a backup changing the
/// database it backs up, and warned that its file "was removed", which it
/// was not. It should back it up as it is and leave it unchanged; and a
/// restore into it should say what it holds ("1 view and no tables"), not
/// "tables: " and an empty list.
#[test]
fn a_local_d1_of_only_a_view_is_backed_up_as_it_is_never_migrated() {
    let sb = Sandbox::new();
    sb.execute_sql_with_wrangler("CREATE VIEW v_const AS SELECT 1 AS one;");
    let schema = |sb: &Sandbox| {
        sb.query("SELECT type, name FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name")
    };
    let before = schema(&sb);
    let run = sb.xtask(&["backup", "local"]);
    assert!(!run.all().contains("was removed"), "{}", run.all());
    assert_eq!(
        schema(&sb),
        before,
        "backup changed the database:\n{}",
        run.all()
    );

    let dump = sb.path().join("t.sql");
    std::fs::write(
        &dump,
        "CREATE TABLE t (x INTEGER);\nINSERT INTO t VALUES (1);\n",
    )
    .unwrap();
    let run = sb.xtask(&[
        "restore",
        dump.to_str().unwrap(),
        "--to",
        "local",
        "--no-manifest",
        "--yes",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("1 view and no tables") && !run.stderr.contains("tables: )"),
        "{}",
        run.stderr
    );
}

/// A `d1_migrations` table that is not wrangler's (another app's, or one a
/// tool of its own made), or wrangler's with a row of no name, is data
/// like any other table: `backup local` takes it, and the backup restores.
/// The backup failed with "no such column: name in SELECT name FROM
/// d1_migrations", blaming the export, and its advised `--via-wrangler`
/// failed the same way; a NULL name failed with "Invalid column type Null".
#[test]
fn a_d1_migrations_table_not_of_wranglers_shape_is_backed_up_as_data() {
    for sql in [
        "CREATE TABLE d1_migrations (version INTEGER PRIMARY KEY, applied TEXT);\n\
         INSERT INTO d1_migrations VALUES (1, '2026-01-01');\n\
         CREATE TABLE t (x INTEGER);\nINSERT INTO t VALUES (1);\n",
        "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, \
         applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);\n\
         INSERT INTO d1_migrations (id, name) VALUES (1, NULL);\n\
         CREATE TABLE t (x INTEGER);\nINSERT INTO t VALUES (1);\n",
    ] {
        let sb = Sandbox::new();
        sb.execute_sql_with_wrangler(sql);
        let run = sb.xtask(&["backup", "local"]);
        run.assert_ok();
        assert!(run.stdout.contains("Result: GOOD"), "{}", run.all());
        let backup = only_backup(&sb);
        sb.execute_sql("DELETE FROM t;");
        let restored = sb.xtask(&["restore", &backup, "--to", "local", "--replace", "--yes"]);
        restored.assert_ok();
        assert_eq!(sb.live_row_counts()["t"], 1, "{}", restored.all());
    }
}

/// A backup of a database unchanged since the last says it is the same
/// file, byte for byte, as the backup before it: its schema is the same
/// too, so "(the schema is not compared)", a caveat that made an operator
/// wonder, is not said of it.
#[test]
fn a_backup_byte_for_byte_the_last_says_so_without_the_schema_caveat() {
    let sb = seeded();
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("the same file, byte for byte,")
            && !run.stdout.contains("the schema is not compared"),
        "{}",
        run.all()
    );
}

/// MB: a backup taken while `migrations_dir` is missing (a broken checkout
/// in an emergency, when a backup is needed most) is taken: warned of once
/// on stderr with the fix, its verification GOOD of its data only and
/// saying its migrations were not checked, recorded so in its manifest.
/// with-backup's backup takes the same path. `status` calls the migrations
/// unknown; `migrate` and `restore`, which judge with the migrations, still
/// refuse without them; and once the directory is back the backup
/// restores, its migrations' triggers its own (none taken as foreign or
/// missing). It used to be refused, exit 2, nothing taken (LZ).
#[test]
fn a_backup_without_its_migrations_directory_is_taken_its_migrations_unchecked() {
    let sb = seeded();
    let (dir, aside) = (sb.path().join("migrations"), sb.path().join("moved"));
    std::fs::rename(&dir, &aside).unwrap();
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert_eq!(
        run.stderr.matches("git checkout -- ").count(),
        1,
        "warned once, with the fix:\n{}",
        run.all()
    );
    assert!(run.stderr.contains("migrations_dir"), "{}", run.all());
    let result = run.stdout_line_with("Result:");
    assert!(
        result.contains("GOOD") && result.contains("migrations were not checked"),
        "{result}"
    );
    let backup = only_backup(&sb);
    let m = manifest_for(&sb, &backup);
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
    assert_eq!(m["verification"]["migrations_unchecked"], true, "{m:#}");
    assert!(
        m["migrations"].as_array().is_some_and(|a| a.len() == 4),
        "the applied migrations are read from the rows, never none: {m:#}"
    );

    let run = sb.xtask(&["with-backup", "local", "--", "true"]);
    run.assert_ok();
    assert!(run.stderr.contains("migrations_dir"), "{}", run.all());

    let status = sb.xtask(&["status", "--env", "local"]);
    let line = status.stdout_line_with("migrations ");
    assert!(
        line.contains("unknown") && line.contains("not checked"),
        "{line}\n{}",
        status.all()
    );

    let migrate = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert_eq!(migrate.code, Some(2), "{}", migrate.all());
    let restore = sb.xtask(&[
        "restore",
        &backup,
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    assert_eq!(restore.code, Some(2), "{}", restore.all());
    assert!(
        restore.stderr.contains("migrations_dir"),
        "{}",
        restore.all()
    );

    std::fs::rename(&aside, &dir).unwrap();
    let before = sb.live_row_counts();
    restore_replacing(&sb, &backup).assert_ok();
    assert_eq!(sb.live_row_counts(), before);
}

/// MB: a fresh clone's `backup local --dry-run` starts no wrangler to read
/// the schema of a local D1 that does not exist yet: it used to, which
/// created `.wrangler/state` in a run that then said "nothing was changed".
/// Its plan still says the schema is created from the migrations first.
#[test]
fn a_fresh_clones_backup_dry_run_reads_no_schema_and_creates_no_state() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["backup", "local", "--dry-run"]);
    run.assert_ok();
    assert!(
        !sb.path().join(".wrangler").exists(),
        "a dry run created .wrangler:\n{}",
        run.all()
    );
    assert!(!run.stdout.contains("already run"), "{}", run.all());
    assert!(run.stdout.contains("migrations apply"), "{}", run.all());
}

/// MB: a fresh clone (no local D1 yet) whose migrations directory is
/// missing has nothing to back up and nothing to create its schema from:
/// told so, exit 2, with both fixes, and no `.wrangler/state` is made.
#[test]
fn a_fresh_clone_without_its_migrations_is_told_there_is_nothing_to_back_up() {
    let sb = Sandbox::new();
    std::fs::rename(sb.path().join("migrations"), sb.path().join("moved")).unwrap();
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    for said in [
        "no database yet",
        "nothing to back up",
        "git checkout -- ",
        "migrate local",
    ] {
        assert!(run.stderr.contains(said), "no {said:?}:\n{}", run.all());
    }
    assert!(!sb.path().join(".wrangler").exists(), "{}", run.all());
    assert!(
        !sb.backup_files().iter().any(|n| n.ends_with(".sql")),
        "{:?}",
        sb.backup_files()
    );
}

/// rvCH: `backup --table` of a mistyped name listed SQLite's own tables
/// among those to choose, and `--table sqlite_stat1` wrote a GOOD backup
/// of no table and no row. Those are left out of the list, and an
/// internal table named is refused (exit 2) saying a full backup carries
/// it where it can; no backup is written.
#[test]
fn a_backup_of_an_internal_table_is_refused_and_never_listed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql("ANALYZE;");
    let run = sb.xtask(&["backup", "local", "--table", "compnies"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("--table companies"), "{}", run.all());
    assert!(!run.stderr.contains("sqlite_"), "{}", run.all());
    let run = sb.xtask(&["backup", "local", "--table", "sqlite_stat1"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("full backup"), "{}", run.all());
    assert!(!run.all().contains("GOOD"), "{}", run.all());
}

/// rvCM 2: after a restore this tool made of a backup with more rows in
/// all but none in one table, the next backup warned that the table's
/// rows were lost, advising a restore of the restore's own safety backup
/// (which prune "keeps as the last before the rows fell"): the restore
/// journal records the change as deliberate. Compared with what the
/// restore loaded (a backup here), it warns of nothing; of a file with no
/// manifest here, the fall is told as that restore's, with no restore to
/// undo it.
#[test]
fn a_backup_after_a_restore_made_here_does_not_warn_of_the_rows_it_replaced() {
    let sb = seeded();
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    let before = only_backup(&sb);
    let mut many = String::from("DELETE FROM notifications;\n");
    for i in 0..20 {
        many.push_str(&format!(
            "INSERT INTO companies (name, timezone) VALUES ('Bulk {i}', 'UTC');\n"
        ));
    }
    sb.execute_sql(&many);
    sb.xtask(&["-q", "backup", "local", "--reason", "huge"])
        .assert_ok();
    let huge = { sb.backup_files().into_iter() }
        .find(|f| f.ends_with(".sql") && *f != before)
        .unwrap();
    let outside = sb.path().join("huge.sql");
    std::fs::copy(sb.backups().join(&huge), &outside).unwrap();
    let restore = |file: &str, flags: &[&str]| {
        let args = [
            &["-q", "restore", file, "--to", "local", "--replace", "--yes"],
            flags,
        ]
        .concat();
        sb.xtask(&args).assert_ok();
    };
    for (file, flags) in [
        (huge.as_str(), &[][..]),
        (outside.to_str().unwrap(), &["--no-manifest"][..]),
    ] {
        restore(&before, &[]);
        restore(file, flags);
        let run = sb.xtask(&["backup", "local"]);
        run.assert_ok();
        assert!(
            !run.stderr.contains("notifications") && !run.stderr.contains("prune keeps"),
            "{file}: the rows its restore replaced are warned of as lost:\n{}",
            run.all()
        );
        if flags.is_empty() {
            assert!(!run.stdout.contains("fewer rows"), "{}", run.all());
        } else {
            let line = run.stdout_line_with("fewer rows");
            assert!(
                line.contains("the restore of huge.sql") && line.contains("notifications"),
                "{}",
                run.all()
            );
        }
    }
}
