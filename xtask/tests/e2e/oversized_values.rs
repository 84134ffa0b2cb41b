//! Values over D1's limit of 2,000,000 bytes on a string, a BLOB or a row,
//! which local D1 (miniflare's SQLite) accepts and D1 refuses: a backup
//! holding one could never be loaded, so none is written; a dump made
//! elsewhere that holds one is BAD, naming its table and line.

use crate::common;

use common::*;

const SHAPE: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
     CREATE TABLE files (id INTEGER PRIMARY KEY, data BLOB);\n\
     CREATE TABLE pairs (id INTEGER PRIMARY KEY, a TEXT, b BLOB);\n\
     CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT);\n";

/// A local D1 with `SHAPE`'s tables, filled through the real wrangler.
/// Each value is made by SQL that runs in local D1 (no statement wrangler
/// sends holds it): `notes` a 2.5 MB TEXT, `files` a 2.5 MB BLOB, `pairs` a
/// row of two 1.2 MB values (each legal, the row not), `small` a row D1
/// holds.
fn oversized_local() -> Sandbox {
    let sb = with_shape(SHAPE);
    sb.execute_sql_with_wrangler(
        "INSERT INTO notes VALUES (1, 'short');\n\
         INSERT INTO notes VALUES (2, hex(randomblob(1250000)));\n\
         INSERT INTO files VALUES (1, randomblob(2500000));\n\
         INSERT INTO pairs VALUES (1, hex(randomblob(600000)), randomblob(1200000));\n\
         INSERT INTO small VALUES (1, 'kept');",
    );
    sb
}

/// A local D1 with the tables `shape` creates, as a migration.
fn with_shape(shape: &str) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("migrations/0005_shape.sql"), shape).unwrap();
    sb.apply_migrations();
    sb
}

/// The first hex digits of each oversized value, which no message may quote.
fn value_starts(sb: &Sandbox) -> Vec<String> {
    let rows = sb.query(
        "SELECT substr(body, 1, 24) AS s FROM notes WHERE id = 2 \
         UNION ALL SELECT hex(substr(data, 1, 12)) FROM files \
         UNION ALL SELECT substr(a, 1, 24) FROM pairs",
    );
    rows[0]
        .iter()
        .map(|r| r["s"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_local_backup_of_values_over_two_megabytes_is_refused_before_anything_is_written() {
    // The native export wrote them (7.5 MB), its own check failed ("string
    // or blob too big: Error code 18", and "a fault of this tool's export:
    // take the backup with --via-wrangler"), and the BAD file was kept in
    // backups/: a backup no restore can load, and a fix that changes
    // nothing.
    let sb = oversized_local();
    let starts = value_starts(&sb);
    for args in [
        &["backup", "local"][..],
        &["backup", "local", "--dry-run"],
        &["backup", "local", "--via-wrangler"],
    ] {
        let run = sb.xtask(args);
        let all = run.all();
        assert_eq!(run.code, Some(2), "{args:?}\n{all}");
        for named in [
            "notes.body",
            "files.data",
            "pairs",
            "2,000,000 bytes",
            "--table=NAME",
        ] {
            assert!(all.contains(named), "{args:?}: {named:?} not named\n{all}");
        }
        assert!(all.contains("out of D1"), "{args:?}: no fix named\n{all}");
        assert!(
            !all.contains("small"),
            "{args:?}: a table D1 holds named\n{all}"
        );
        assert!(!all.contains("--via-wrangler meanwhile"), "{args:?}\n{all}");
        for start in &starts {
            assert!(
                !all.contains(start.as_str()),
                "{args:?}: a value quoted\n{all}"
            );
        }
        assert!(
            sb.backup_files().iter().all(|f| f == ".lock"),
            "{args:?}: {:?}",
            sb.backup_files()
        );
    }
    // The local D1 is as it was, and the way round works.
    let lengths = sb.query("SELECT length(body) AS n FROM notes WHERE id = 2");
    assert_eq!(lengths[0][0]["n"], 2_500_000);
    sb.xtask(&["backup", "local", "--table=small"]).assert_ok();

    // A restore into it stops at its safety backup, before it changes
    // anything.
    let before = sha256_hex(&std::fs::read(sb.local_d1_file()).unwrap());
    let run = restore_made(&sb, "CREATE TABLE t(x);\nINSERT INTO \"t\" VALUES(1);\n");
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("notes.body holds a value of 2.5 MB"),
        "{}",
        run.all()
    );
    let after = sha256_hex(&std::fs::read(sb.local_d1_file()).unwrap());
    assert_eq!(after, before, "the local D1 changed");
}

#[test]
fn a_value_just_under_the_limit_backs_up_and_restores() {
    // 1,990,000 bytes of text: D1 holds it, so the backup must not be
    // refused, and it comes back whole.
    let sb = with_shape(SHAPE);
    sb.execute_sql_with_wrangler("INSERT INTO notes VALUES (1, hex(randomblob(995000)));");
    let probe = "SELECT id, length(body) AS n, body FROM notes";
    let before = sb.query(probe);
    sb.xtask(&["backup", "local"]).assert_ok();
    let file = sb.backups().join(only_backup(&sb));

    let target = Sandbox::new();
    std::fs::write(target.path().join("migrations/0005_shape.sql"), SHAPE).unwrap();
    let restore = target.xtask(&["restore", file.to_str().unwrap(), "--to", "local", "--yes"]);
    restore.assert_ok();
    assert_eq!(target.query(probe), before, "{}", restore.all());
}

const PREFIX: &str = "PRAGMA defer_foreign_keys=TRUE;\n\
    CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, data BLOB);\n\
    INSERT INTO \"notes\" VALUES(1,'first',NULL);\n";

/// Dumps made elsewhere (a `sqlite3 .dump` of local D1, a script) whose
/// fourth line holds a value D1 cannot hold; each marks its value with
/// HIDDENVALUE or as BLOB digits `abab…`.
fn oversized_dumps() -> Vec<(&'static str, String)> {
    let text = "HIDDENVALUE".repeat(230_000);
    let hex = "ab".repeat(2_500_000);
    let half = "HIDDENVALUE".repeat(110_000);
    let half_hex = "ab".repeat(1_100_000);
    vec![
        (
            "a 2.5 MB string",
            format!("{PREFIX}INSERT INTO \"notes\" VALUES(2,'{text}',NULL);\n"),
        ),
        (
            "a 2.5 MB BLOB",
            format!("{PREFIX}INSERT INTO \"notes\" VALUES(2,NULL,X'{hex}');\n"),
        ),
        (
            "a row of 2.3 MB",
            format!("{PREFIX}INSERT INTO \"notes\" VALUES(2,'{half}',X'{half_hex}');\n"),
        ),
    ]
}

fn assert_named(what: &str, run: &Run) {
    let all = run.all();
    for named in ["line 4", "notes", "2,000,000 bytes"] {
        assert!(all.contains(named), "{what}: {named:?} not named\n{all}");
    }
    assert!(
        !all.contains("Error code 18"),
        "{what}: SQLite's bare code\n{all}"
    );
    assert!(
        !all.contains("HIDDENVALUE") && !all.contains("ababab"),
        "{what}: a value was quoted"
    );
}

#[test]
fn verify_of_a_dump_holding_a_value_over_two_megabytes_names_its_table_and_line() {
    let sb = Sandbox::new();
    for (what, text) in oversized_dumps() {
        let file = sb.path().join("made.sql");
        std::fs::write(&file, text).unwrap();
        let run = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
        assert_eq!(
            run.code,
            Some(1),
            "{what}: verify must say BAD\n{}",
            run.all()
        );
        assert_named(what, &run);
    }
}

/// `restore DUMP --to local --no-manifest --replace --yes` of a dump
/// made by hand holding `text`.
fn restore_made(sb: &Sandbox, text: &str) -> Run {
    let file = sb.path().join("made.sql");
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    let flags = ["--no-manifest", "--replace", "--yes"];
    sb.xtask(&[&["restore", file, "--to", "local"][..], &flags].concat())
}

#[test]
fn restore_of_a_dump_holding_a_value_over_two_megabytes_names_it_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let target = sb.local_d1_file();
    let before = sha256_hex(&std::fs::read(&target).unwrap());
    for (what, text) in oversized_dumps() {
        let run = restore_made(&sb, &text);
        assert!(!run.ok, "{what}: restore ran\n{}", run.all());
        assert!(
            run.stderr.contains("nothing was done"),
            "{what}\n{}",
            run.all()
        );
        assert_named(what, &run);
        assert_eq!(
            sha256_hex(&std::fs::read(&target).unwrap()),
            before,
            "{what}: the target changed"
        );
    }
}

/// rvHJ: the refusal's way out is the task's: a migrate's pre-migration
/// backup and a restore's safety backup take no `--table`, so neither is
/// told to back up tables by name; each is told to shrink or move the
/// value first (the shape of the UPDATE, naming its table and column,
/// quoting no value), a migrate also that `--no-backup --reason` applies
/// it without one, a restore that its target's safety backup cannot be
/// taken. Nothing is applied, restored or written.
#[test]
fn a_task_whose_local_backup_is_refused_for_a_value_over_two_megabytes_is_told_its_own_way_out() {
    let sb = oversized_local();
    let starts = value_starts(&sb);
    std::fs::write(
        sb.path().join("migrations/0006_more.sql"),
        "CREATE TABLE more (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let told = |what: &str, run: &Run, named: &[&str]| {
        let all = run.all();
        assert_eq!(run.code, Some(2), "{what}\n{all}");
        for named in [
            &["notes.body", "UPDATE", "--local", "qbtime_db_local"][..],
            named,
        ]
        .concat()
        {
            assert!(all.contains(named), "{what}: {named:?} not named\n{all}");
        }
        assert!(!all.contains("--table"), "{what}: told --table\n{all}");
        for start in &starts {
            assert!(
                !all.contains(start.as_str()),
                "{what}: a value quoted\n{all}"
            );
        }
        assert!(
            sb.backup_files().iter().all(|f| f == ".lock"),
            "{what}: {:?}",
            sb.backup_files()
        );
    };
    let before = sha256_hex(&std::fs::read(sb.local_d1_file()).unwrap());

    let run = sb.xtask(&["migrate", "local", "--yes"]);
    told("migrate", &run, &["--no-backup --reason"]);
    let applied = sb.query("SELECT count(*) AS n FROM d1_migrations WHERE name = '0006_more.sql'");
    assert_eq!(applied[0][0]["n"], 0, "applied:\n{}", run.all());

    let run = restore_made(&sb, "CREATE TABLE t(x);\nINSERT INTO \"t\" VALUES(1);\n");
    told("restore", &run, &["safety backup", "cannot be taken"]);
    assert!(!run.all().contains("--no-backup"), "{}", run.all());

    let after = sha256_hex(&std::fs::read(sb.local_d1_file()).unwrap());
    assert_eq!(after, before, "the local D1 changed");
}

/// `with-backup local -- COMMAND` whose backup is refused for a value over
/// D1's 2 MB (exit 2): the command is not run, the refusal says so and
/// names the value's table and column with the UPDATE that shrinks it,
/// quoting no value, and nothing is written to backups/.
#[test]
fn a_with_backup_whose_backup_is_refused_for_a_value_over_two_megabytes_runs_nothing() {
    let sb = oversized_local();
    let starts = value_starts(&sb);
    let marker = sb.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let before = sha256_hex(&std::fs::read(sb.local_d1_file()).unwrap());
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", &touch]);
    let all = run.all();
    assert_eq!(run.code, Some(2), "{all}");
    assert!(!marker.exists(), "the command ran:\n{all}");
    let error = { run.stderr.lines() }
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    for said in ["was not run", "notes.body", "UPDATE"] {
        assert!(error.contains(said), "{said:?} unsaid:\n{all}");
    }
    assert!(!all.contains("Running:"), "{all}");
    for start in &starts {
        assert!(!all.contains(start.as_str()), "a value quoted:\n{all}");
    }
    assert!(
        sb.backup_files().iter().all(|f| f == ".lock"),
        "{:?}",
        sb.backup_files()
    );
    let after = sha256_hex(&std::fs::read(sb.local_d1_file()).unwrap());
    assert_eq!(after, before, "the local D1 changed");
}

/// A row D1 refuses though no string or BLOB in it is over the limit, nor
/// its strings and BLOBs together: D1's 2,000,000 bytes bound the row as
/// SQLite stores it (1,999,970 bytes of text, two 8-byte integers, a real
/// and an 8-byte header: 2,000,002). The backup's check counted only the
/// text, passed it, and its own verification failed after the export.
#[test]
fn a_local_backup_of_a_row_over_two_megabytes_by_its_numbers_is_refused_before_anything_is_written()
{
    let sb = with_shape("CREATE TABLE wide (a TEXT, b INTEGER, c INTEGER, d REAL);\n");
    sb.execute_sql_with_wrangler(
        "INSERT INTO wide VALUES (hex(randomblob(999985)), 9000000000000000000, \
         -9000000000000000000, 1.5);",
    );
    let run = sb.xtask(&["backup", "local"]);
    let all = run.all();
    assert_eq!(run.code, Some(2), "{all}");
    for named in [
        "a row of wide",
        "2,000,000 bytes",
        "out of D1",
        "The row itself is too big",
        "spread its values across rows or tables",
    ] {
        assert!(all.contains(named), "{named:?} not named\n{all}");
    }
    assert!(!all.contains("Shrink the value"), "{all}");
    assert!(
        sb.backup_files().iter().all(|f| f == ".lock"),
        "{:?}",
        sb.backup_files()
    );
}

/// A STORED generated column's value is in the row as SQLite stores it,
/// though the dump does not carry it: `x || x` of a 1.1 MB `x` is 2.2 MB,
/// which D1 refuses (the load computes it, and SQLite's length limit, which
/// D1 sets to 2,000,000 bytes, bounds the value and its record). Local D1
/// holds it (the real wrangler's local D1 stored even 4 MB here). The size
/// check read `PRAGMA table_info`, which leaves generated columns out, and
/// passed it; the backup is refused before anything is written, naming the
/// column, as for a value the dump carries.
#[test]
fn a_local_backup_of_a_stored_generated_value_over_two_megabytes_is_refused_first() {
    a_generated_value_over_two_megabytes_is_refused_first("STORED");
}

/// A VIRTUAL generated column's value is computed on each read, in no
/// record: `x || x` of a 1.1 MB `x` is 2.2 MB, which local D1 computes and
/// D1 refuses on every read of the column (SQLite's length limit), though
/// the backup loads. The size check read only the columns a record holds,
/// and passed it; the backup is refused before anything is written, naming
/// the column, as a STORED one's is.
#[test]
fn a_local_backup_of_a_virtual_generated_value_over_two_megabytes_is_refused_first() {
    a_generated_value_over_two_megabytes_is_refused_first("VIRTUAL");
}

/// A `docs` table whose column `g` is generated (`kind`: STORED or VIRTUAL)
/// as `x || x` from a 1.1 MB `x`: `backup local`, and its dry run, are
/// refused (exit 2) naming `docs.g`, D1's limit and the way out of D1, and
/// write nothing into backups/.
fn a_generated_value_over_two_megabytes_is_refused_first(kind: &str) {
    let sb = with_shape(&format!(
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, x TEXT, \
         g TEXT GENERATED ALWAYS AS (x || x) {kind});\n",
    ));
    sb.execute_sql_with_wrangler("INSERT INTO docs (x) VALUES (hex(randomblob(550000)));");
    for args in [&["backup", "local"][..], &["backup", "local", "--dry-run"]] {
        let run = sb.xtask(args);
        let all = run.all();
        assert_eq!(run.code, Some(2), "{kind} {args:?}\n{all}");
        for named in ["docs.g", "2,000,000 bytes", "out of D1"] {
            assert!(
                all.contains(named),
                "{kind} {args:?}: {named:?} not named\n{all}"
            );
        }
        assert!(
            sb.backup_files().iter().all(|f| f == ".lock"),
            "{kind} {args:?}: {:?}",
            sb.backup_files()
        );
    }
}

/// A table `vj` whose VIRTUAL column `g` SQLite cannot compute for its
/// second row (id 2): its `x` is not JSON. Added after the rows, as
/// SQLite allows.
const VJ: &str = "CREATE TABLE vj(id INTEGER PRIMARY KEY, x TEXT);\n\
     INSERT INTO vj(x) VALUES ('{\"a\":1}'),('not json secret');\n\
     ALTER TABLE vj ADD COLUMN g TEXT AS (json_extract(x,'$.a')) VIRTUAL;\n";

/// A VIRTUAL generated column SQLite cannot compute for one row (its
/// `json_extract` of text that is not JSON) made the size check fail every
/// local backup ("malformed JSON: Error code 1", naming no table, nothing
/// written). Its measure is skipped with a warning naming the column, never
/// a value, and the backup is written and verified as before the check.
#[test]
fn a_virtual_column_that_cannot_be_computed_warns_and_the_backup_is_written() {
    let sb = with_shape(VJ);
    let dry = sb.xtask(&["backup", "local", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}", dry.all());
    assert!(dry.all().contains("warning: vj.g"), "{}", dry.all());
    let run = sb.xtask(&["backup", "local"]);
    let all = run.all();
    assert!(!all.contains("Error code 1"), "{all}");
    assert!(!all.contains("not json secret"), "a value is quoted\n{all}");
    assert!(
        all.contains("warning: vj.g") && all.contains("D1 fails every read of it"),
        "{all}"
    );
    let files = sb.backup_files();
    assert!(
        files.iter().any(|f| f.ends_with(".sql")) && files.iter().any(|f| f.ends_with(".json")),
        "{files:?}\n{all}"
    );
    // Verify's verdict, as before the size check: D1 fails the INSERT
    // that computes the column, so the load lacks that row, named by the
    // column and the row's key column (its INTEGER PRIMARY KEY), never its
    // value.
    assert!(all.contains("Result: BAD"), "{all}");
    assert!(
        all.contains("(an INSERT into vj): vj.g (malformed JSON)")
            && all.contains("the row of key (id)"),
        "{all}"
    );
    assert_eq!(run.code, Some(1), "{all}");
}

/// The row whose VIRTUAL column SQLite cannot compute is in the dump as
/// the database holds it; only verify's load (and D1, the real wrangler's
/// local D1 refusing the same INSERT) cannot insert it. The `source` check
/// blamed the export for the missing row ("did not write the database's
/// rows faithfully", "take the backup with --via-wrangler"; with
/// --via-wrangler, "Back up without --via-wrangler"), which neither would
/// mend. It tells that row as the load's, by column and key, never a
/// value, and the backup stays BAD: no restore can load that row.
#[test]
fn a_row_whose_virtual_column_cannot_be_computed_is_not_blamed_on_the_export() {
    let sb = with_shape(VJ);
    for args in [
        &["backup", "local"][..],
        &["backup", "local", "--via-wrangler"],
    ] {
        let run = sb.xtask(args);
        let all = run.all();
        assert!(all.contains("Result: BAD"), "{args:?}\n{all}");
        assert_eq!(run.code, Some(1), "{args:?}\n{all}");
        for blame in ["faithfully", "--via-wrangler", "a fault of this tool"] {
            assert!(!all.contains(blame), "{args:?}: {blame:?}\n{all}");
        }
        let source = { all.lines() }
            .find(|l| l.contains("] source"))
            .unwrap_or_else(|| panic!("{args:?}: no source check\n{all}"));
        for said in ["vj.g", "the row of key (id)", "could not insert"] {
            assert!(source.contains(said), "{args:?}: {said:?}\n{all}");
        }
        assert!(!all.contains("not json secret"), "{args:?}: a value\n{all}");
    }
}

/// Seven rows whose VIRTUAL column `g` SQLite cannot compute (ids 2 to
/// 8), and one it can.
const VJ_MANY: &str = "CREATE TABLE vj(id INTEGER PRIMARY KEY, x TEXT);\n\
     INSERT INTO vj(x) VALUES ('{\"a\":1}'),('not json secret'),('not json secret'),\
     ('not json secret'),('not json secret'),('not json secret'),('not json secret'),\
     ('not json secret');\n\
     ALTER TABLE vj ADD COLUMN g TEXT AS (json_extract(x,'$.a')) VIRTUAL;\n";

/// Only the first five failing statements were searched for the column
/// SQLite could not compute, so with six such rows or more the `source`
/// check found the table differing by rows it did not know of, and blamed
/// the export again ("did not write the database's rows faithfully",
/// "take the backup with --via-wrangler"). Every such row is counted (the
/// first few named, the rest as "and N more"), and the export is never
/// blamed.
#[test]
fn many_rows_whose_virtual_column_cannot_be_computed_are_not_blamed_on_the_export() {
    let sb = with_shape(VJ_MANY);
    let run = sb.xtask(&["backup", "local"]);
    let all = run.all();
    assert!(all.contains("Result: BAD"), "{all}");
    assert_eq!(run.code, Some(1), "{all}");
    for blame in ["faithfully", "--via-wrangler", "a fault of this tool"] {
        assert!(!all.contains(blame), "{blame:?}\n{all}");
    }
    let source = { all.lines() }
        .find(|l| l.contains("] source"))
        .unwrap_or_else(|| panic!("no source check\n{all}"));
    for said in ["7 rows", "could not insert", "vj.g", "and 2 more"] {
        assert!(source.contains(said), "{said:?}\n{all}");
    }
    assert!(!all.contains("not json secret"), "a value\n{all}");
}

/// A statement over D1's 100 KB is split into pieces by the restore; a
/// value over 2 MB cannot be, and verify told it would be ("split into
/// pieces under it (restore repairs this)") beside the failure. Each is
/// told its own: the statement that it is split, the value that its row
/// cannot be restored into D1, with the fix (shorten it, or move it to
/// R2). Both in `verify` and in `restore --dry-run`.
#[test]
fn a_value_over_two_megabytes_is_never_told_it_will_be_split() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let long = "HIDDENVALUE".repeat(14_000);
    let statement = format!("{PREFIX}INSERT INTO \"notes\" VALUES(2,'{long}',NULL);\n");
    for (what, text) in oversized_dumps().into_iter().take(2) {
        let file = sb.path().join("made.sql");
        std::fs::write(&file, &text).unwrap();
        let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest"]);
        let dry = sb.xtask(&[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "local",
            "--no-manifest",
            "--replace",
            "--dry-run",
        ]);
        for run in [&verify, &dry] {
            let all = run.all();
            assert!(!run.ok, "{what}\n{all}");
            assert!(!all.contains("split"), "{what}: told it is split\n{all}");
            for said in ["no restore can load it into D1", "R2"] {
                assert!(all.contains(said), "{what}: {said:?}\n{all}");
            }
        }
    }
    let file = sb.path().join("made.sql");
    std::fs::write(&file, &statement).unwrap();
    let verify = sb.xtask(&["verify", file.to_str().unwrap(), "--no-manifest", "-v"]);
    let all = verify.all();
    assert!(all.contains("split into pieces under it"), "{all}");
    assert!(!all.contains("no restore can load it"), "{all}");
}

/// A row over D1's 2 MB whose values each fit (a 1.2 MB string and a 1.1
/// MB BLOB): verify told it "split into pieces under it" beside the
/// failure, though no split makes a row smaller. Each of `verify`,
/// `restore --dry-run` and its `--json` says the row is too big for D1,
/// with the fix (shrink its values or move them out of D1), and never that
/// it is split; no value is quoted.
#[test]
fn a_row_over_two_megabytes_of_values_that_fit_is_never_told_it_will_be_split() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let (what, text) = oversized_dumps().remove(2);
    let file = sb.path().join("made.sql");
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap();
    let verify = sb.xtask(&["verify", file, "--no-manifest", "-v"]);
    let restore = [
        "restore",
        file,
        "--to",
        "local",
        "--no-manifest",
        "--replace",
    ];
    let dry = sb.xtask(&[&restore[..], &["--dry-run"]].concat());
    let json = sb.xtask(&[&restore[..], &["--dry-run", "--json"]].concat());
    for run in [&verify, &dry, &json] {
        let all = run.all();
        assert!(!run.ok, "{what}\n{all}");
        assert!(!all.contains("split"), "{what}: told it is split\n{all}");
        for said in ["a row of", "no restore can load it into D1", "R2", "line 4"] {
            assert!(all.contains(said), "{what}: {said:?}\n{all}");
        }
        assert!(
            !all.contains("HIDDENVALUE") && !all.contains("ababab"),
            "{what}: a value was quoted"
        );
    }
}

/// A value over D1's 2 MB, in a row of its own, is told as a value: shrink
/// it or move it to R2; no row is said to be too big.
#[test]
fn a_local_backup_of_one_value_over_two_megabytes_is_told_to_shrink_or_move_the_value() {
    let sb = with_shape("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n");
    sb.execute_sql_with_wrangler("INSERT INTO notes VALUES (1, hex(randomblob(1250000)));");
    let run = sb.xtask(&["backup", "local"]);
    let all = run.all();
    assert_eq!(run.code, Some(2), "{all}");
    for named in ["notes.body holds a value", "Shrink the value", "out of D1"] {
        assert!(all.contains(named), "{named:?} not named\n{all}");
    }
    assert!(!all.contains("The row itself"), "{all}");
    assert!(!all.contains("spread its values"), "{all}");
}
