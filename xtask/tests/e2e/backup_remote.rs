//! `cargo xtask backup prod`, end to end, through the real wrangler's
//! `--remote` code path pointed at the loopback D1 API on 127.0.0.1.

use crate::common;

use std::path::{Path, PathBuf};

use common::remote::*;
use common::*;

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_remote_backups_plan_says_d1_answers_no_other_query_while_it_exports() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let run = remote.xtask(home.path(), &["backup", "prod", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains(
            "downtime     D1 answers no other query on qbtime_db_prod while it exports it"
        ),
        "{}",
        run.stdout
    );
    // A local backup reads the file in a read transaction: the app's local
    // D1 keeps answering, and nothing is said.
    let run = remote.xtask(home.path(), &["backup", "local", "--dry-run"]);
    run.assert_ok();
    assert!(!run.stdout.contains("downtime"), "{}", run.stdout);
}

#[test]
fn remote_backup_records_the_bookmark_and_never_shows_the_signed_url() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    // -v shows wrangler's own lines, the signed URL's among them. An
    // operator's WRANGLER_LOG=debug, unsanitized, changes neither what is
    // read as JSON nor what is shown.
    let run = Run::from_output(
        remote
            .xtask_command(home.path(), &["-v", "backup", "prod"])
            .env("WRANGLER_LOG", "debug")
            .env("WRANGLER_LOG_SANITIZE", "false")
            .output()
            .unwrap(),
    );
    run.assert_ok();
    assert!(!run.stderr.contains("RESPONSE"), "{}", run.stderr);
    // The bucket has no index yet: R2's "The specified key does not exist."
    // is read as no offsite record, not as a failure to read one.
    assert!(!run.stderr.contains("could not read"), "{}", run.stderr);
    assert!(
        remote.server.unhandled().is_empty(),
        "wrangler asked for something the loopback does not serve: {:?}",
        remote.server.unhandled()
    );

    let sb = &remote.sb;
    let name = only_backup(sb);
    assert!(name.starts_with("backup-prod-"), "{name}");
    let bytes = std::fs::read(sb.backups().join(&name)).unwrap();
    let m = manifest_for(sb, &name);
    assert_eq!(m["environment"], "prod");
    assert_eq!(m["database"]["name"], "qbtime_db_prod");
    assert_eq!(m["database"]["uuid"], PROD_UUID);
    assert_eq!(m["database"]["wrangler_env"], "production");
    assert_eq!(m["database"]["location"], "remote");
    assert_eq!(m["file"]["sha256"], sha256_hex(&bytes).as_str());
    assert_eq!(m["file"]["bytes"], bytes.len() as u64);
    let rows: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(m["rows"].clone()).unwrap();
    assert_eq!(rows, remote.live_counts());
    assert_eq!(m["migrations"].as_array().unwrap().len(), 4);
    assert_eq!(m["encryption_key"]["key_id"], "dek-2026-01");

    // -v times every wrangler call, the reads before the export too.
    for call in [
        "wrangler: record the Time Travel bookmark of qbtime_db_prod (",
        "wrangler: export qbtime_db_prod (remote) (",
    ] {
        assert!(run.stderr.contains(call), "{call}:\n{}", run.all());
    }

    // The bookmark was taken before the export, and nothing has written
    // since, so it is the database's current bookmark.
    let requests = remote.server.requests();
    let bookmark_at = requests
        .iter()
        .position(|r| r.contains("/time_travel/bookmark"));
    let export_at = requests.iter().position(|r| r.contains("/export"));
    assert!(bookmark_at.unwrap() < export_at.unwrap(), "{requests:#?}");
    let current = remote.wrangler_json(
        home.path(),
        &[
            "d1",
            "time-travel",
            "info",
            "qbtime_db_prod",
            "--env",
            "production",
            "--json",
        ],
    );
    assert_eq!(m["time_travel_bookmark"], current["bookmark"]);

    // The signed URL reached wrangler, and nothing of it reached the
    // operator, the sandbox or any log.
    let urls = remote.server.signed_urls();
    assert_eq!(urls.len(), 1);
    let url = &urls[0];
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap();
    let path = url
        .split('?')
        .next()
        .unwrap()
        .rsplit_once("/__signed/")
        .unwrap()
        .1;
    for secret in [url.as_str(), signature, path, TOKEN] {
        assert!(
            !run.all().contains(secret),
            "{secret} leaked:\n{}",
            run.all()
        );
    }
    assert!(
        run.all().contains("[REDACTED]"),
        "wrangler's URL line is shown with -v, redacted:\n{}",
        run.all()
    );
    for file in files_under(sb.path())
        .into_iter()
        .chain(files_under(home.path()))
    {
        let content = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&content);
        assert!(
            !text.contains(signature),
            "signed URL found in {}",
            file.display()
        );
    }
}

#[test]
fn remote_backup_with_fts5_goes_through_the_table_list() {
    let remote = Remote::new(
        "CREATE VIRTUAL TABLE customer_search USING fts5(name, email);\n\
         INSERT INTO customer_search (rowid, name, email) SELECT id, name, email FROM customers;",
    );
    let home = tempfile::tempdir().unwrap();
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(m["virtual_tables"]["tables"][0]["name"], "customer_search");
    assert_eq!(m["rows"]["customer_search_content"], 3);
    assert_eq!(m["rows"]["customers"], 3);
    assert!(remote.server.unhandled().is_empty());
}

/// A plain remote backup is loaded into its verification's scratch
/// database as it downloads, its tables first (qbtime's `accounts`
/// references a table created after it, workers-sdk #5683). A database
/// whose export needs another repair (a row over D1's statement limit) is
/// loaded again after the download instead, and both are verified good.
#[test]
fn a_remote_backup_is_verified_from_the_load_made_as_it_arrived_when_its_order_allows() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let run = remote.xtask(home.path(), &["-v", "backup", "prod"]);
    run.assert_ok();
    assert!(
        run.all()
            .contains("The load made as the export arrived is used.")
            && run.all().contains(
                " ran with foreign keys on (deferred) and D1's 100 KB limit, as the export arrived"
            ),
        "{}",
        run.all()
    );
    let left: Vec<_> = files_under(&remote.sb.backups())
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("verify-"))
        .collect();
    assert!(left.is_empty(), "scratch files left: {left:?}");

    // Encrypted, it is loaded as it arrives too, into memory.
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    let run = remote.xtask(
        home.path(),
        &["-v", "backup", "prod", "--encrypt-to", &recipient],
    );
    run.assert_ok();
    assert!(
        run.all()
            .contains("The load made as the export arrived is used."),
        "{}",
        run.all()
    );
    let sealed = remote
        .sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql.zst.age"))
        .unwrap();
    let m = manifest_for(&remote.sb, &sealed);
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");

    let remote = Remote::new(
        "CREATE TABLE attachments (id INTEGER PRIMARY KEY, body BLOB);\n\
         INSERT INTO attachments VALUES (1, randomblob(60000));",
    );
    let run = remote.xtask(home.path(), &["-v", "backup", "prod"]);
    run.assert_ok();
    assert!(
        run.all()
            .contains("is not used (a statement to split): loading it again.")
            && !run.all().contains("as the export arrived\n"),
        "{}",
        run.all()
    );
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
    assert_eq!(m["rows"]["attachments"], 1);
}

/// A database wrangler migrated holds `d1_migrations` as wrangler makes it,
/// its name quoted, and D1's export writes that table `CREATE TABLE IF NOT
/// EXISTS "d1_migrations"`, where the schema read before the export says
/// `CREATE TABLE "d1_migrations"`: the same table, so the load made as the
/// export arrived is used (rvCG 1).
#[test]
fn a_remote_backup_of_a_database_wrangler_migrated_uses_the_load_made_as_it_arrived() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote
        .xtask(home.path(), &["migrate", "staging", "--yes"])
        .assert_ok();
    let run = remote.xtask(home.path(), &["-v", "backup", "staging"]);
    run.assert_ok();
    // migrate took a backup of its own first: this run's is the one named.
    let name = (remote.sb.backup_files().into_iter())
        .find(|f| f.ends_with(".sql") && run.all().contains(f.as_str()))
        .unwrap_or_else(|| panic!("no backup named:\n{}", run.all()));
    let dump = std::fs::read_to_string(remote.sb.backups().join(&name)).unwrap();
    assert!(
        dump.contains("CREATE TABLE IF NOT EXISTS \"d1_migrations\""),
        "{dump}"
    );
    assert!(
        run.all()
            .contains("The load made as the export arrived is used."),
        "{}",
        run.all()
    );
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
}

/// In a log (no terminal), a wrangler call that measures nothing is said
/// to be still running only once it has run 15 s: every call's own start
/// takes one to five seconds, and a line at 5 s came for nearly every one,
/// a read's before the backup's header (for a step the output never names
/// otherwise), a migration's then said again by its finish line (rvCG 2).
/// The schema read here takes over 5 s (the loopback holds its answer).
#[test]
fn in_a_log_a_wrangler_call_is_said_to_be_still_running_only_past_15_seconds() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(6_000),
        response_delay_from: Some("/query".into()),
        ..d1_loopback::Faults::default()
    });
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    remote.server.set_faults(d1_loopback::Faults::default());
    run.assert_ok();
    let seconds = |line: &str| -> u64 {
        let (_, after) = line.rsplit_once(" (").unwrap();
        let time = after.trim_end_matches(')');
        match time.split_once('m') {
            Some((m, s)) => {
                m.parse::<u64>().unwrap() * 60 + s.trim_end_matches('s').parse::<u64>().unwrap()
            }
            None => time.trim_end_matches(" s").parse().unwrap(),
        }
    };
    // The export measures its bytes: its lines come every 5 s, as before.
    let early: Vec<&str> = (run.stderr.lines())
        .filter(|l| l.starts_with("  … wrangler: ") && !l.contains(": export "))
        .filter(|l| seconds(l) < 15)
        .collect();
    assert!(early.is_empty(), "{early:#?}\n{}", run.all());
}

/// Runs `backup prod` under `faults` and checks that it failed with `message`
/// and left nothing that looks like a backup: no file, no manifest, the
/// lock released.
fn backup_fails_cleanly(faults: d1_loopback::Faults, message: &str) -> Run {
    let remote = Remote::new("");
    remote.server.set_faults(faults);
    let home = tempfile::tempdir().unwrap();
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    run.assert_refused(message);
    assert_eq!(
        remote.sb.backup_files(),
        [".lock"],
        "only the released lock may remain:\n{}",
        run.all()
    );
    assert_eq!(
        std::fs::read_to_string(remote.sb.backups().join(".lock")).unwrap(),
        ""
    );
    for url in remote.server.signed_urls() {
        assert!(!run.all().contains(&url));
    }
    run
}

#[test]
fn an_export_the_api_refuses_leaves_nothing() {
    let _ = backup_fails_cleanly(
        d1_loopback::Faults {
            export_api_error: Some("D1 is unavailable right now".into()),
            ..Default::default()
        },
        "D1 is unavailable right now",
    );
}

#[test]
fn a_download_that_fails_leaves_nothing() {
    let _ = backup_fails_cleanly(
        d1_loopback::Faults {
            download_status: Some(500),
            ..Default::default()
        },
        "status code: 500",
    );
}

#[test]
fn a_download_that_stops_short_is_caught_even_though_wrangler_succeeds() {
    let run = backup_fails_cleanly(
        d1_loopback::Faults {
            download_truncate_to: Some(3000),
            ..Default::default()
        },
        "truncated",
    );
    // wrangler's own run is summarised as a success; the tool's check of
    // the file is what fails.
    assert!(
        run.all()
            .contains("wrangler: export qbtime_db_prod (remote) (")
            && !run.stderr.contains("wrangler failed"),
        "wrangler itself reported success:\n{}",
        run.all()
    );
}

#[test]
fn a_download_cut_between_two_statements_is_caught_as_incomplete() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let good =
        std::fs::read_to_string(remote.sb.backups().join(remote.backup_prod(home.path()))).unwrap();
    std::fs::remove_dir_all(remote.sb.backups()).unwrap();

    // Cut just before the first CREATE INDEX: every statement kept is whole,
    // so only the missing schema objects can give the cut away.
    let cut = good.find("\nCREATE INDEX").unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        download_truncate_to: Some(cut),
        ..Default::default()
    });
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    run.assert_refused("the export is incomplete");
    assert!(
        run.stderr.contains("index customers_by_company_name"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("trigger audit_log_no_delete"),
        "{}",
        run.stderr
    );
    assert_eq!(remote.sb.backup_files(), [".lock"]);
}

/// prod has an FTS5 table, so `backup prod` names every other table,
/// index and view to wrangler with `--table`; one of them is called
/// `-x` (a name SQLite takes quoted). The user ran `cargo xtask backup
/// prod`: it failed with wrangler's "Unknown arguments: x", and no remote
/// backup of prod could be taken at all. wrangler's argument parser read
/// `--table -x` as a flag `-x`, not as the table's name. It should back up
/// the table like any other, and a restore bring its rows back.
#[test]
fn a_remote_backup_with_fts5_keeps_a_table_whose_name_starts_with_a_dash() {
    let remote = Remote::new(
        "CREATE VIRTUAL TABLE customer_search USING fts5(name);\n\
         INSERT INTO customer_search (rowid, name) SELECT id, name FROM customers;\n\
         CREATE TABLE \"-x\" (id INTEGER PRIMARY KEY, v TEXT);\n\
         CREATE INDEX \"--index\" ON \"-x\" (v);\n\
         INSERT INTO \"-x\" VALUES (1, 'a'), (2, 'b');",
    );
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod"]);
    backup.assert_ok();
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(m["rows"]["-x"], 2, "{m:#}");
    let dump = std::fs::read_to_string(remote.sb.backups().join(&name)).unwrap();
    assert!(dump.contains("CREATE INDEX \"--index\""), "{dump}");
    remote
        .xtask(
            home.path(),
            &["restore", &name, "--to", "staging", "--replace", "--yes"],
        )
        .assert_ok();
    assert_eq!(counts(&remote.staging)["-x"], 2);
}

/// As above, with names wrangler's parser could read otherwise once given
/// as `--table=NAME`: an `=`, a name that is a wrangler flag, spaces and
/// quotes, digits, unicode. Each table's rows are in the backup.
#[test]
fn a_remote_backup_with_fts5_keeps_tables_named_like_flags_and_values() {
    let names = [
        "a=b", "=", "--local", "--table", "-y", "x y", "it's", "\"q\"", "1", "true", "é表",
    ];
    let mut sql = String::from(
        "CREATE VIRTUAL TABLE customer_search USING fts5(name);\n\
         INSERT INTO customer_search (rowid, name) SELECT id, name FROM customers;\n",
    );
    for n in names {
        let q = format!("\"{}\"", n.replace('"', "\"\""));
        sql.push_str(&format!(
            "CREATE TABLE {q} (id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO {q} VALUES (1, 'a'), (2, 'b');\n"
        ));
    }
    let remote = Remote::new(&sql);
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod"]);
    backup.assert_ok();
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    for n in names {
        assert_eq!(m["rows"][n], 2, "{n}: {m:#}");
    }
}

/// The pinned wrangler reads `CLOUDFLARE_API_TOKEN` whenever it is set,
/// empty too, and `CF_API_TOKEN` only when it is not set at all: with
/// `CLOUDFLARE_API_TOKEN=""` next to a good `CF_API_TOKEN` a remote backup
/// has no credentials. The error said "set CLOUDFLARE_API_TOKEN", to an
/// operator who had set a token; it should say that the empty variable is
/// why `CF_API_TOKEN` is ignored, and never show the token.
#[test]
fn an_empty_cloudflare_api_token_is_named_as_why_cf_api_token_is_ignored() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let mut cmd = remote.xtask_command(home.path(), &["backup", "prod"]);
    cmd.env("CLOUDFLARE_API_TOKEN", "")
        .env("CF_API_TOKEN", TOKEN);
    let run = Run::from_output(cmd.output().unwrap());
    run.assert_refused("CLOUDFLARE_API_TOKEN is set but empty");
    assert!(
        run.stderr.contains("CF_API_TOKEN is ignored")
            && run.stderr.contains("unset CLOUDFLARE_API_TOKEN"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains(TOKEN), "{}", run.all());
    assert!(
        remote.sb.backup_files().iter().all(|f| f == ".lock"),
        "{:?}",
        remote.sb.backup_files()
    );

    // Unset, the older name is read, as wrangler does: the same backup works.
    let mut cmd = remote.xtask_command(home.path(), &["backup", "prod"]);
    cmd.env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env("CF_API_TOKEN", TOKEN)
        .env("CF_ACCOUNT_ID", ACCOUNT);
    let run = Run::from_output(cmd.output().unwrap());
    run.assert_ok();
    assert!(!run.all().contains(TOKEN), "{}", run.all());
    assert!(
        remote.sb.backup_files().iter().any(|f| f.ends_with(".sql")),
        "{:?}",
        remote.sb.backup_files()
    );
}

/// prod holds whole REALs (3.0, 1e15, -0.0, 1e18) in columns of BLOB
/// affinity (no declared type, `BLOB`, a STRICT table's `ANY`), where SQLite
/// keeps them REALs. D1's export writes each through a JavaScript number, as
/// an integer literal (3, 1000000000000000, 0): a restore brings back
/// INTEGERs there, and no check of the dump alone can see it. The backup
/// counts them before the export (a read-only query): it warns, table by
/// table, records them in its manifest (`whole_reals`), and a restore's
/// plan says `RETYPED?`. A whole REAL in a REAL column (which turns the
/// integer back into a REAL), 3.5, and 1e300 or ±2^63 (written with an
/// exponent, or too big for an INTEGER, so read back as REALs) are not
/// counted.
#[test]
fn a_remote_backup_of_whole_reals_in_untyped_columns_says_a_restore_may_retype_them() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, v, b BLOB, r REAL);\n\
         INSERT INTO readings VALUES (1, 3.0, 1e15, 2.0), (2, 3.5, -0.0, 4.0), \
         (3, 1e300, 9223372036854775808.0, 5.0), (4, -9223372036854775808.0, 1e18, 6.0);\n\
         CREATE TABLE anys (id INTEGER PRIMARY KEY, a ANY) STRICT;\n\
         INSERT INTO anys VALUES (1, 8.0);",
    );
    backup.assert_ok();
    let warned = |table: &str| {
        backup
            .all()
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains(table) && l.contains("whole REAL"))
    };
    assert!(
        warned("readings (4)") && warned("anys (1)"),
        "the backup did not say its export turned whole REALs into integers:\n{}",
        backup.all()
    );
    assert!(
        !backup.all().contains("1e15") && !backup.all().contains("1000000000000000"),
        "{}",
        backup.all()
    );
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(
        m["whole_reals"],
        serde_json::json!({"anys": 1, "readings": 4}),
        "{m:#}"
    );
    let restore = crate::generated_shapes::restored_to_staging(&remote, home.path());
    assert!(
        restore
            .stdout
            .lines()
            .any(|l| l.contains("RETYPED?") && l.contains("readings (4)")),
        "the restore's plan does not say the backup may hold whole REALs as integers:\n{}",
        restore.all()
    );
    assert_eq!(
        query_file(
            &remote.staging,
            "SELECT typeof(v) AS t FROM readings WHERE id = 1"
        ),
        vec![vec![serde_json::json!({"t": "integer"})]],
        "the premise: a restore brings back an INTEGER where prod holds 3.0"
    );
}

/// prod holds 600 tables with an untyped column. D1's SQLite refuses a
/// compound SELECT of over 500 terms, and the count of whole REALs was one
/// `UNION ALL` of them all, split only by size: its error failed the
/// backup. The count is split at 400 tables a query, and never fails a
/// backup: the backup is good and counts all 600.
#[test]
fn a_remote_backup_of_600_untyped_tables_counts_their_whole_reals_and_succeeds() {
    let sql: String = (0..600)
        .map(|i| format!("CREATE TABLE t{i} (v);\nINSERT INTO t{i} VALUES (2.0);\n"))
        .collect();
    let (remote, _home, backup) = crate::generated_shapes::remote_backup_of(&sql);
    backup.assert_ok();
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    let counted = m["whole_reals"].as_object().map(|o| o.len());
    assert_eq!(counted, Some(600), "{}", backup.all());
}

/// prod holds the INTEGER -9223372036854775808 (i64::MIN) beside a whole
/// REAL in an untyped column. The count took `abs` of every value, which
/// fails on that one ("integer overflow"): no whole REAL of any table was
/// counted, and the backup warned "whole REALs not counted". It counts
/// them now.
#[test]
fn a_remote_backup_holding_i64_min_still_counts_its_whole_reals() {
    let (_remote, _home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, v);\n\
         INSERT INTO readings VALUES (1, -9223372036854775808), (2, 3.0), (3, 9223372036854775807);",
    );
    backup.assert_ok();
    let all = backup.all();
    assert!(!all.contains("not counted"), "{all}");
    assert!(
        all.lines().any(|l| l.starts_with("warning:")
            && l.contains("readings (1)")
            && l.contains("whole REAL")),
        "the backup did not count the whole REAL beside i64::MIN:\n{all}"
    );
}

/// ML: a remote backup interrupted while it counted whole REALs warned
/// "whole REALs not counted: interrupted by SIGINT; the backup goes on",
/// then stopped. The count's failure was the interrupt: it is said once,
/// as the interrupt, with nothing of whole REALs and never that the
/// backup goes on; no backup is left. The loopback's answers are held
/// back 20 s from the Time Travel bookmark's on, so that the count is
/// still waiting when its progress line ("… wrangler: count whole REALs
/// …", 15 s in) is printed.
#[test]
fn a_remote_backup_interrupted_while_counting_whole_reals_says_only_that_it_was_interrupted() {
    let remote = Remote::new(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, v);\n\
         INSERT INTO readings VALUES (1, 3.0);",
    );
    let home = tempfile::tempdir().unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(20_000),
        response_delay_from: Some("/time_travel/bookmark".into()),
        ..d1_loopback::Faults::default()
    });
    let run = interrupt_once_on_stderr(
        remote.xtask_command(home.path(), &["backup", "prod"]),
        "wrangler: count whole REALs",
    );
    remote.server.set_faults(d1_loopback::Faults::default());
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(
        run.stderr.contains("interrupted by SIGINT"),
        "{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("not counted") && !run.stderr.contains("the backup goes on"),
        "an interrupted backup said it goes on:\n{}",
        run.all()
    );
    let left: Vec<String> = { remote.sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql"))
        .collect();
    assert!(left.is_empty(), "{left:?}\n{}", run.all());
}

/// The control: a remote backup whose REALs come back as they are (3.5 in
/// an untyped column, 3.0 in a REAL column, '3.0' text) says nothing of
/// whole REALs, and records that it counted none (`whole_reals: {}`), which
/// its manifest left out, as an earlier version's does: "counted, none"
/// looked like "not counted". A restore's plan says nothing of them, and
/// its `--json` gives `whole_reals_counted: true`.
#[test]
fn a_remote_backup_of_reals_the_export_keeps_says_nothing_of_them() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, v, r REAL, t TEXT);\n\
         INSERT INTO readings VALUES (1, 3.5, 3.0, '3.0'), (2, 1e300, 1e15, 'x');",
    );
    backup.assert_ok();
    // No warning of them; the count's own progress line ("… wrangler:
    // count whole REALs …", printed when it takes 5 s on a loaded
    // machine) is not one.
    let all = backup.all();
    let warned =
        { all.lines() }.any(|l| l.contains("whole REAL") && !l.trim_start().starts_with('…'));
    assert!(!warned, "{}", backup.all());
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(m.get("whole_reals"), Some(&serde_json::json!({})), "{m:#}");
    let plan = whole_reals_plan(&remote, home.path(), &name);
    assert_eq!(plan["whole_reals_counted"], true, "{plan:#}");
    assert_eq!(plan["whole_reals"], serde_json::json!({}), "{plan:#}");
    let restore = crate::generated_shapes::restored_to_staging(&remote, home.path());
    assert!(!restore.all().contains("RETYPED?"), "{}", restore.all());
}

/// prod holds a table too wide to count (its query alone would pass D1's
/// statement limit: 100 untyped columns of 260-character names) and
/// another with a whole REAL. The count left the wide table out, warned
/// so, and recorded the other's count as `whole_reals`, read as a
/// complete count: a restore would take the wide table for one with none.
/// A count that left a table out is not recorded (absent, as the manifest
/// says), the whole REALs it found still warned of.
#[test]
fn a_remote_backup_that_left_a_table_out_of_its_whole_reals_count_records_none() {
    let columns: Vec<String> = (0..100)
        .map(|i| format!("c{i:03}_{}", "w".repeat(256)))
        .collect();
    let sql = format!(
        "CREATE TABLE wide ({});\nINSERT INTO wide ({}) VALUES (1.0);\n\
         CREATE TABLE readings (id INTEGER PRIMARY KEY, v);\n\
         INSERT INTO readings VALUES (1, 3.0);",
        columns.join(", "),
        columns[0]
    );
    let (remote, _home, backup) = crate::generated_shapes::remote_backup_of(&sql);
    backup.assert_ok();
    let all = backup.all();
    assert!(all.contains("whole REALs not counted in wide"), "{all}");
    assert!(
        all.lines()
            .any(|l| l.starts_with("warning:") && l.contains("readings (1)")),
        "{all}"
    );
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    assert_eq!(m.get("whole_reals"), None, "{m:#}");
}

/// `restore BACKUP --to staging --dry-run --json`'s plan.
fn whole_reals_plan(
    remote: &crate::common::remote::Remote,
    home: &std::path::Path,
    name: &str,
) -> serde_json::Value {
    let path = remote.sb.backups().join(name);
    let args = ["restore", path.to_str().unwrap(), "--to", "staging"];
    let run = remote.xtask(
        home,
        &[&args[..], &["--replace", "--dry-run", "--json"]].concat(),
    );
    run.assert_ok();
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    doc["plan"].clone()
}

/// rvZ 3: a dump with no manifest (a `wrangler d1 export` of its own,
/// say) restored to a remote target gave `whole_reals_counted: null`, as
/// where no count applies; nobody counted its whole REALs, and a remote
/// export may have written them as integers: `false`. `null` still where
/// no count applies: a local target, a dump of no rows.
#[test]
fn a_dump_with_no_manifest_restored_remotely_gives_whole_reals_not_counted() {
    let schema = "PRAGMA defer_foreign_keys=TRUE;\n\
                  CREATE TABLE readings (id INTEGER PRIMARY KEY, v);\n";
    let remote = crate::common::remote::Remote::new(schema);
    let home = tempfile::tempdir().unwrap();
    let plan = |sql: &str, to: &str, partial: &[&str]| {
        let path = home.path().join("export.sql");
        std::fs::write(&path, sql).unwrap();
        let args = [
            "restore",
            path.to_str().unwrap(),
            "--to",
            to,
            "--replace",
            "--no-manifest",
        ];
        let args = [&args[..], partial, &["--dry-run", "--json"]].concat();
        let run = remote.xtask(home.path(), &args);
        run.assert_ok();
        let doc: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
        doc["plan"]["whole_reals_counted"].clone()
    };
    let rows = format!("{schema}INSERT INTO readings VALUES (1, 3.5);\n");
    assert_eq!(plan(&rows, "staging", &[]), false, "staging");
    assert_eq!(plan(&rows, "local", &[]), serde_json::Value::Null, "local");
    let none = plan(schema, "staging", &["--partial"]);
    assert_eq!(none, serde_json::Value::Null, "schema only");
}

/// A remote backup whose manifest an earlier version wrote, with no
/// `whole_reals` (it recorded them only when there were any; or the count
/// failed): whether its export turned whole REALs into integers is not
/// known. Its restore's plan said nothing, as for a backup that counted
/// none; it says `RETYPED?` that they were not counted, and `--json` gives
/// `whole_reals_counted: false`. The restore still runs.
#[test]
fn a_remote_backup_that_did_not_count_whole_reals_says_so_in_the_restore_plan() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, v);\n\
         INSERT INTO readings VALUES (1, 3.5);",
    );
    backup.assert_ok();
    let name = only_backup(&remote.sb);
    edit_manifest(&remote.sb, &name, |m| {
        m.as_object_mut().unwrap().remove("whole_reals");
    });
    let plan = whole_reals_plan(&remote, home.path(), &name);
    assert_eq!(plan["whole_reals_counted"], false, "{plan:#}");
    let restore = crate::generated_shapes::restored_to_staging(&remote, home.path());
    assert!(
        restore
            .stdout
            .lines()
            .any(|l| l.contains("RETYPED?") && l.contains("not counted")),
        "{}",
        restore.all()
    );
}

/// prod holds text that is not UTF-8 (`CAST(x'41ff42' AS TEXT)`, which
/// SQLite and D1 keep as it is). D1's export decodes it as JavaScript
/// does, with U+FFFD, and the backup held another value, GOOD and silent.
/// The backup warns naming the column and the count of rows, never the
/// value, records it in its manifest (`replaced_text`), and `verify` says
/// so; valid non-ASCII text (`café`) and plain text are not counted.
#[test]
fn a_remote_backup_of_text_that_is_not_utf8_says_its_export_replaced_it() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, title);\n\
         INSERT INTO notes VALUES (1, CAST(x'41ff42' AS TEXT), 'caf' || char(233)), \
         (2, CAST(x'c3' AS TEXT), 'plain'), (3, 'ok', CAST(x'80' AS TEXT)), \
         (4, 'caf' || char(233), 'x');",
    );
    backup.assert_ok();
    let warned = backup.all().lines().any(|l| {
        l.starts_with("warning:")
            && l.contains("notes.body (2 rows)")
            && l.contains("notes.title (1 row)")
            && l.contains("U+FFFD")
    });
    assert!(
        warned,
        "the backup did not say D1's export replaced text that is not UTF-8:\n{}",
        backup.all()
    );
    assert!(!backup.all().contains('\u{FFFD}'), "{}", backup.all());
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(
        m["replaced_text"],
        serde_json::json!({"notes": {"body": 2, "title": 1}}),
        "{m:#}"
    );
    let verify = remote.xtask(home.path(), &["verify", &name, "--no-record"]);
    assert!(
        verify
            .all()
            .lines()
            .any(|l| l.contains("notes.body (2 rows)") && l.contains("U+FFFD")),
        "verify does not say the backup holds text D1's export replaced:\n{}",
        verify.all()
    );
}

/// A remote backup of text that is not UTF-8 restored into a remote
/// database: the plan says `REPLACED` naming the column (`plan.replaced_text`
/// in `--json`), and the content check, read through D1's export, which
/// writes U+FFFD on both sides, called the table equal while its bytes
/// differ. The table is among those that may differ (`may_differ`, and the
/// text beside "as D1's export shows them"); a valid one is not.
#[test]
fn a_remote_restore_of_text_d1_export_replaced_says_the_table_may_differ() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, CAST(x'41ff42' AS TEXT));\n\
         CREATE TABLE plain (id INTEGER PRIMARY KEY, t TEXT);\n\
         INSERT INTO plain VALUES (1, 'a');",
    );
    backup.assert_ok();
    let name = only_backup(&remote.sb);
    let plan = whole_reals_plan(&remote, home.path(), &name);
    assert_eq!(
        plan["replaced_text"],
        serde_json::json!({"notes": {"body": 1}}),
        "{plan:#}"
    );
    let doc = restored_to_staging_saying(
        &remote,
        home.path(),
        &name,
        ("REPLACED", "notes.body (1 row)"),
    );
    assert_eq!(
        doc["result"]["content_checked_through"], "d1_export",
        "{doc:#}"
    );
    assert_eq!(
        doc["result"]["may_differ"],
        serde_json::json!(["notes"]),
        "{doc:#}"
    );
    let path = remote.sb.backups().join(&name);
    let args = ["restore", path.to_str().unwrap(), "--to", "staging"];
    let text = remote.xtask(home.path(), &[&args[..], &["--replace", "--yes"]].concat());
    text.assert_ok();
    assert!(
        text.all()
            .lines()
            .any(|l| l.contains("may differ") && l.contains("notes") && l.contains("UTF-8")),
        "{}",
        text.all()
    );
}

/// Text that is all valid UTF-8, non-ASCII too, is counted as none: the
/// manifest records `{}` and nothing is warned.
#[test]
fn a_remote_backup_of_valid_utf8_text_records_none_replaced() {
    let (remote, _home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, 'caf' || char(233)), (2, char(128512)), (3, 'plain');",
    );
    backup.assert_ok();
    assert!(!backup.all().contains("U+FFFD"), "{}", backup.all());
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(m["replaced_text"], serde_json::json!({}), "{m:#}");
}

/// JZ 1: a remote backup read, before its export, the hex of every
/// non-ASCII text value to look for text that is not UTF-8: at 100,000
/// rows a table with half its text non-ASCII, 34 s of a query and 741 MB
/// of memory, though there was none. D1's export writes every such value
/// with U+FFFD: a dump without U+FFFD holds none, and the backup runs no
/// query for it (here the loopback fails any that comes: "not looked
/// for"), records `{}` (counted, none), and `-v` says why.
#[test]
fn a_remote_backup_of_valid_non_ascii_text_runs_no_search_for_text_not_utf8() {
    let remote = Remote::new(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, title);\n\
         INSERT INTO notes VALUES (1, 'caf' || char(233), char(128512)), (2, 'plain', 'x');",
    );
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("CAST(v AS BLOB)".to_owned()),
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["-v", "backup", "prod"]);
    backup.assert_ok();
    let all = backup.all();
    assert!(!all.contains("not looked for"), "{all}");
    assert!(
        !all.contains("wrangler: look for text that is not UTF-8"),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|l| l.contains("not UTF-8") && l.contains("no U+FFFD")),
        "-v does not say why it did not look for text that is not UTF-8:\n{all}"
    );
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    assert_eq!(m["replaced_text"], serde_json::json!({}), "{m:#}");
}

/// JZ 1: the look for text that is not UTF-8 reads only the tables whose
/// rows the export wrote with U+FFFD. A genuine U+FFFD (valid UTF-8) beside
/// an invalid byte in another row of the same table: the table is read,
/// and only the invalid one counted; a table of valid non-ASCII text is
/// not read (the loopback fails a read of it).
#[test]
fn a_remote_backup_reads_only_tables_whose_export_holds_u_fffd_and_counts_right() {
    let remote = Remote::new(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, 'a' || char(65533)), (2, CAST(x'41ff' AS TEXT)), \
         (3, 'caf' || char(233));\n\
         CREATE TABLE plain (id INTEGER PRIMARY KEY, t TEXT);\n\
         INSERT INTO plain VALUES (1, 'caf' || char(233));",
    );
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("'plain' AS name, keys.".to_owned()),
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod"]);
    looked_and_found(
        &remote,
        &backup,
        "notes.body (1 row)",
        serde_json::json!({"notes": {"body": 1}}),
    );
}

/// A data-only remote backup (its dump without `CREATE TABLE`s) still
/// finds the tables whose rows its export wrote with U+FFFD, and counts.
#[test]
fn a_remote_data_only_backup_of_text_not_utf8_still_counts_it() {
    // A table of the migrations: a data-only backup loads into theirs.
    let remote = Remote::new(
        "INSERT INTO companies (name, qbt_company_id) VALUES (CAST(x'ff' AS TEXT), 'q1'), \
         ('caf' || char(233), 'q2');",
    );
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod", "--data-only"]);
    looked_and_found(
        &remote,
        &backup,
        "companies.name (1 row)",
        serde_json::json!({"companies": {"name": 1}}),
    );
}

/// `backup` is GOOD, looked at every table for text that is not UTF-8,
/// warned of `column` (`table.column (N rows)`), and recorded `recorded`.
fn looked_and_found(remote: &Remote, backup: &Run, column: &str, recorded: serde_json::Value) {
    backup.assert_ok();
    let all = backup.all();
    assert!(!all.contains("not looked for"), "{all}");
    assert!(
        all.lines()
            .any(|l| l.starts_with("warning:") && l.contains(column)),
        "{all}"
    );
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    assert_eq!(m["replaced_text"], recorded, "{m:#}");
}

/// rvAC 1: prod holds a row with 1.2 MB of valid non-ASCII text (legal:
/// D1 takes 2 MB) and, in another table, text that is not UTF-8. The look
/// for such text read each row's values as one hex string, twice their
/// size: over D1's 2 MB string limit ("string or blob too big"), and that
/// one failure left every table unread ("not looked for"), nothing
/// recorded. Each value is read on its own, in pieces under the limit.
#[test]
fn a_remote_backup_with_a_row_of_over_a_megabyte_of_non_ascii_text_still_looks_for_text_not_utf8() {
    let (remote, _home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, replace(hex(zeroblob(600000)), '00', char(233)));\n\
         CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT);\n\
         INSERT INTO names VALUES (1, CAST(x'ff' AS TEXT));",
    );
    looked_and_found(
        &remote,
        &backup,
        "names.name (1 row)",
        serde_json::json!({"names": {"name": 1}}),
    );
}

/// rvAC 2: text with a NUL byte before a byte that is not UTF-8
/// (`'a' || char(0) || x'ff'`): `GLOB` reads text as a C string, stops at
/// the NUL and never saw the 0xff, so the backup recorded none (`{}`) and
/// said nothing. A value with a NUL is read too.
#[test]
fn a_remote_backup_of_text_not_utf8_after_a_nul_byte_says_its_export_replaced_it() {
    let (remote, _home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, CAST(x'6100ff' AS TEXT)), (2, CAST(x'610062' AS TEXT));",
    );
    // The dump's statements with a NUL D1 refuses, so the backup is BAD
    // (kept, with its manifest): its warning must still be right.
    assert_eq!(backup.code, Some(1), "{}", backup.all());
    let all = backup.all();
    assert!(
        all.lines()
            .any(|l| l.starts_with("warning:") && l.contains("notes.body (1 row)")),
        "{all}"
    );
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    assert_eq!(
        m["replaced_text"],
        serde_json::json!({"notes": {"body": 1}}),
        "{m:#}"
    );
}

/// rvAC 3: a remote backup whose look for text not UTF-8 failed records no
/// `replaced_text`; its restore's plan gave `replaced_text: {}` and said
/// nothing, as for a backup that found none. `plan.replaced_text_counted`
/// tells them apart (`false` here, `true` where it looked), and the text
/// plan says `REPLACED` "not counted".
#[test]
fn a_remote_backup_that_did_not_look_for_text_not_utf8_says_so_in_the_restore_plan() {
    // Text that is not UTF-8: the export writes U+FFFD, so the backup
    // looks (a dump without one runs no look, and records none).
    let remote = Remote::new(
        "CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT);\n\
         INSERT INTO names VALUES (1, CAST(x'ff' AS TEXT));",
    );
    let home = tempfile::tempdir().unwrap();
    let counted = remote.backup_prod(home.path());
    let plan = whole_reals_plan(&remote, home.path(), &counted);
    assert_eq!(plan["replaced_text_counted"], true, "{plan:#}");
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("'names' AS name, keys.".to_owned()),
        ..Default::default()
    });
    let backup = remote.xtask(home.path(), &["backup", "prod"]);
    backup.assert_ok();
    remote.server.set_faults(d1_loopback::Faults::default());
    let name = std::fs::read_dir(remote.sb.backups())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql") && *n != counted)
        .max()
        .unwrap_or_else(|| panic!("no second backup: {}", backup.all()));
    let plan = whole_reals_plan(&remote, home.path(), &name);
    assert_eq!(plan["replaced_text_counted"], false, "{plan:#}");
    plan_says(&remote, home.path(), &name, ("REPLACED", "not counted"));
}

/// rvAC 1: D1 fails the read of one table's text (here the loopback fails
/// every query that reads `names`' values). That one failure left every
/// table unread: notes' text that is not UTF-8 went unsaid. The tables
/// read are counted and warned of; the one whose read failed is named as
/// not looked for, and the count, not complete, is not recorded.
#[test]
fn a_remote_backup_whose_read_of_one_tables_text_fails_still_counts_the_others() {
    let remote = Remote::new(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, CAST(x'ff' AS TEXT));\n\
         CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT);\n\
         INSERT INTO names VALUES (1, CAST(x'ff' AS TEXT));",
    );
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("'names' AS name, keys.".to_owned()),
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod"]);
    backup.assert_ok();
    let all = backup.all();
    assert!(
        all.lines()
            .any(|l| l.starts_with("warning:") && l.contains("notes.body (1 row)")),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|l| l.starts_with("warning:") && l.contains("not UTF-8 not looked for in names")),
        "{all}"
    );
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    assert_eq!(m.get("replaced_text"), None, "{m:#}");
}

/// prod's `jt` holds text with a line break and the two characters `\n`
/// (pretty JSON `{"a":"x\ny"}` and a newline; `C:\new`, a newline,
/// `next`), and, not counted, text with a line break alone and `\n`
/// alone. D1's export writes a value with a line break as
/// `replace('…\n…','\n',char(10))`, which turns its `\n` into a line
/// break too.
const AMBIGUOUS_TEXT: &str = "CREATE TABLE jt (id INTEGER PRIMARY KEY, j TEXT);\n\
     INSERT INTO jt VALUES (1, '{\"a\":\"x\\ny\"}' || char(10)), \
     (2, 'C:\\new' || char(10) || 'next'), (3, 'one' || char(10) || 'two'), \
     (4, 'C:\\new'), (5, 'a\\rb' || char(13));";

/// rvBY 1: a remote backup of text holding a line break and `\n` (or a
/// carriage return and `\r`) was GOOD and silent, though its export brings
/// the `\n` back as a line break (JSON made invalid). The backup warns
/// naming the column and the count of rows, never a value, records it in
/// its manifest (`ambiguous_text`), and `verify` says so.
#[test]
fn a_remote_backup_of_text_with_a_line_break_and_a_backslash_n_says_its_export_changes_it() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(AMBIGUOUS_TEXT);
    backup.assert_ok();
    let all = backup.all();
    assert!(
        all.lines().any(|l| l.starts_with("warning:")
            && l.contains("jt.j (3 rows)")
            && l.contains("line break")),
        "the backup did not say D1's export turns `\\n` into a line break:\n{all}"
    );
    assert!(!all.contains("C:\\new"), "{all}");
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(
        m["ambiguous_text"],
        serde_json::json!({"jt": {"j": 3}}),
        "{m:#}"
    );
    let verify = remote.xtask(home.path(), &["verify", &name, "--no-record"]);
    assert!(
        verify
            .all()
            .lines()
            .any(|l| l.contains("jt.j (3 rows)") && l.contains("line break")),
        "verify does not say the backup holds text D1's export changed:\n{}",
        verify.all()
    );
}

/// rvBY 1: a restore of such a backup said every row equal, though the
/// values it wrote differ. Its plan says `AMBIGUOUS` naming the column
/// (`plan.ambiguous_text`, `plan.ambiguous_text_counted: true`), and the
/// table is among those that may differ.
/// The dry run of a restore of backup `name` over staging has a plan line
/// with both words of `said` (a loss's label and its count, or "not
/// counted").
fn plan_says(remote: &Remote, home: &Path, name: &str, (label, what): (&str, &str)) {
    let path = remote.sb.backups().join(name);
    let args = ["restore", path.to_str().unwrap(), "--to", "staging"];
    let dry = remote.xtask(home, &[&args[..], &["--replace", "--dry-run"]].concat());
    dry.assert_ok();
    assert!(
        dry.stdout
            .lines()
            .any(|l| l.contains(label) && l.contains(what)),
        "{}",
        dry.all()
    );
}

/// Restores backup `name` over staging: its dry run's plan has a line
/// with both words of `said` (a loss's label and its `table.column (N
/// rows)`), then the restore itself runs with `--json`, whose document is
/// returned.
fn restored_to_staging_saying(
    remote: &Remote,
    home: &Path,
    name: &str,
    said: (&str, &str),
) -> serde_json::Value {
    plan_says(remote, home, name, said);
    let path = remote.sb.backups().join(name);
    let args = ["restore", path.to_str().unwrap(), "--to", "staging"];
    let run = remote.xtask(
        home,
        &[&args[..], &["--replace", "--yes", "--json"]].concat(),
    );
    run.assert_ok();
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_remote_restore_of_text_with_a_line_break_and_a_backslash_n_says_the_table_may_differ() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(AMBIGUOUS_TEXT);
    backup.assert_ok();
    let name = only_backup(&remote.sb);
    let plan = whole_reals_plan(&remote, home.path(), &name);
    assert_eq!(
        plan["ambiguous_text"],
        serde_json::json!({"jt": {"j": 3}}),
        "{plan:#}"
    );
    assert_eq!(plan["ambiguous_text_counted"], true, "{plan:#}");
    let doc =
        restored_to_staging_saying(&remote, home.path(), &name, ("AMBIGUOUS", "jt.j (3 rows)"));
    assert_eq!(
        doc["result"]["may_differ"],
        serde_json::json!(["jt"]),
        "{doc:#}"
    );
}

/// rvBY 1: text without a line break, `\n` in it or not, is written
/// without `replace(`: the backup runs no query of its table (the loopback
/// fails any that comes: "not looked for"; the seed's `accounts`, whose
/// text holds a line break, is asked, and no other), and records `{}`.
#[test]
fn a_remote_backup_of_text_without_line_breaks_runs_no_search_for_them() {
    let remote = Remote::new(
        "CREATE TABLE jt (id INTEGER PRIMARY KEY, j TEXT);\n\
         INSERT INTO jt VALUES (1, 'C:\\new'), (2, 'caf' || char(233));",
    );
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("'jt' AS name".to_owned()),
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["-v", "backup", "prod"]);
    backup.assert_ok();
    let all = backup.all();
    assert!(!all.contains("not looked for"), "{all}");
    assert!(
        all.lines().any(|l| l.contains("line break")
            && l.contains("looked for in accounts,")
            && l.contains("replace(")),
        "{all}"
    );
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    assert_eq!(m["ambiguous_text"], serde_json::json!({}), "{m:#}");
}

/// rvBY 1: text not UTF-8 in one table and text with a line break and
/// `\n` in another are looked for in one query (one wrangler start), and
/// both are warned of and recorded.
#[test]
fn a_remote_backup_looks_for_text_not_utf8_and_line_breaks_in_one_query() {
    let remote = Remote::new(&format!(
        "{AMBIGUOUS_TEXT}\nCREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         INSERT INTO notes VALUES (1, CAST(x'ff' AS TEXT));"
    ));
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["-v", "backup", "prod"]);
    backup.assert_ok();
    let all = backup.all();
    assert_eq!(
        all.lines()
            .filter(|l| l.contains("wrangler: look for"))
            .count(),
        1,
        "{all}"
    );
    let m = manifest_for(&remote.sb, &only_backup(&remote.sb));
    assert_eq!(
        m["replaced_text"],
        serde_json::json!({"notes": {"body": 1}}),
        "{m:#}"
    );
    assert_eq!(
        m["ambiguous_text"],
        serde_json::json!({"jt": {"j": 3}}),
        "{m:#}"
    );
}

/// rvCB 1: an FTS5 table's rows are exported as its shadow table
/// `docs_content`'s, whose text D1's export writes as any other; the
/// backup looked only in ordinary tables, said "none to look for" and
/// recorded `{}`. It looks in the FTS5 table's own columns, warns of and
/// records them under its name (`docs.body`, never `docs_content.c1`),
/// and the restore plan says both.
#[test]
fn a_remote_backup_looks_for_text_not_utf8_and_line_breaks_in_an_fts5_tables_rows() {
    let remote = Remote::new(
        "CREATE VIRTUAL TABLE docs USING fts5(title, body);\n\
         INSERT INTO docs VALUES ('{\"a\":\"x\\ny\"}' || char(10), CAST(x'61ff62' AS TEXT));",
    );
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["-v", "backup", "prod"]);
    backup.assert_ok();
    let all = backup.all();
    for (column, what) in [
        ("docs.title (1 row)", "line break"),
        ("docs.body (1 row)", "UTF-8"),
    ] {
        assert!(
            all.lines()
                .any(|l| l.starts_with("warning:") && l.contains(column) && l.contains(what)),
            "no warning of {column}:\n{all}"
        );
    }
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(
        m["replaced_text"],
        serde_json::json!({"docs": {"body": 1}}),
        "{m:#}"
    );
    assert_eq!(
        m["ambiguous_text"],
        serde_json::json!({"docs": {"title": 1}}),
        "{m:#}"
    );
    plan_says(
        &remote,
        home.path(),
        &name,
        ("AMBIGUOUS", "docs.title (1 row)"),
    );
    plan_says(
        &remote,
        home.path(),
        &name,
        ("REPLACED", "docs.body (1 row)"),
    );
}

/// rvBY 1: a backup whose look for text with a line break and `\n` failed
/// records no `ambiguous_text` (as a manifest from before it): warned
/// "not looked for", and its restore plan says `AMBIGUOUS` "not counted",
/// `plan.ambiguous_text_counted: false`.
#[test]
fn a_remote_backup_that_did_not_look_for_line_breaks_says_so_in_the_restore_plan() {
    let remote = Remote::new(AMBIGUOUS_TEXT);
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("'jt' AS name".to_owned()),
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    let backup = remote.xtask(home.path(), &["backup", "prod"]);
    backup.assert_ok();
    remote.server.set_faults(d1_loopback::Faults::default());
    let all = backup.all();
    assert!(
        all.lines()
            .any(|l| l.starts_with("warning:") && l.contains("not looked for in jt")),
        "{all}"
    );
    let name = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &name);
    assert_eq!(m.get("ambiguous_text"), None, "{m:#}");
    let plan = whole_reals_plan(&remote, home.path(), &name);
    assert_eq!(plan["ambiguous_text_counted"], false, "{plan:#}");
    plan_says(&remote, home.path(), &name, ("AMBIGUOUS", "not counted"));
}

/// rvAR: a `CLOUDFLARE_API_TOKEN` holding a character no HTTP header may
/// carry (a no-break space, U+00A0, from a paste) made wrangler fail with
/// "fetch failed", whose advice is to check the internet or a VPN, while
/// `doctor` said `[ok] auth CLOUDFLARE_API_TOKEN is set`. Both refuse it,
/// naming the variable and the stray character, never the value, and no
/// request is sent.
#[test]
fn a_token_with_a_stray_character_from_a_paste_is_refused_before_wrangler_runs() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let token = format!("{TOKEN}\u{a0}");
    let run = |args: &[&str]| {
        let mut cmd = remote.xtask_command(home.path(), args);
        Run::from_output(cmd.env("CLOUDFLARE_API_TOKEN", &token).output().unwrap())
    };
    let doctor = run(&["doctor"]);
    let auth = doctor.stdout_line_with("auth").to_owned();
    assert!(
        !doctor.ok && auth.contains("[FAIL]") && auth.contains("CLOUDFLARE_API_TOKEN"),
        "{}",
        doctor.all()
    );
    let backup = run(&["backup", "prod"]);
    assert_eq!(backup.code, Some(2), "{}", backup.all());
    assert!(
        backup.stderr.contains("CLOUDFLARE_API_TOKEN") && backup.stderr.contains("paste"),
        "{}",
        backup.all()
    );
    for r in [&doctor, &backup] {
        assert!(
            !r.all().contains(TOKEN),
            "the token was printed:\n{}",
            r.all()
        );
    }
    assert!(
        remote.server.requests().is_empty(),
        "a request was sent: {:?}",
        remote.server.requests()
    );
}

/// LE: a remote database with no tables (a wrong database_id, or an
/// emptied database) is backed up, and said to have none: by the backup
/// (a warning, under -q too), by `status` next to the newest backup, and
/// by the plan of a restore of it over a database that has tables.
#[test]
fn a_backup_of_a_remote_database_with_no_tables_says_it_holds_none() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let run = remote.xtask(home.path(), &["-q", "backup", "staging"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("qbtime_db_staging (staging) has no tables: this backup holds none"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("database_id"), "{}", run.all());
    // A database with tables says nothing of it.
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    run.assert_ok();
    assert!(!run.all().contains("no tables"), "{}", run.all());

    let status = remote.xtask(home.path(), &["status"]);
    let line = status.stdout_line_with("backup-staging-");
    assert!(line.contains("it holds no tables"), "{}", status.all());
    let line = status.stdout_line_with("backup-prod-");
    assert!(!line.contains("no tables"), "{}", status.all());
    let json = remote.xtask(home.path(), &["status", "--json"]);
    assert!(
        json.stdout.contains("\"holds_no_tables\": true"),
        "{}",
        json.all()
    );

    let staging = { sql_backups(&remote.sb).into_iter() }
        .find(|n| n.starts_with("backup-staging-"))
        .unwrap();
    let path = remote.sb.backups().join(staging);
    // Over local D1 with the app's tables (prod takes only prod's backups).
    remote.sb.apply_migrations();
    let args = ["restore", path.to_str().unwrap(), "--to", "local"];
    let plan = remote.xtask(
        home.path(),
        &[&args[..], &["--replace", "--dry-run"]].concat(),
    );
    let loses = plan.stdout_line_with("  LOSES ");
    assert!(
        loses.contains("the backup holds no tables"),
        "{}",
        plan.all()
    );
}

/// PE 3: the first `migrate` of a remote database with no tables yet (a
/// new environment's first deploy) warned that it "has no tables" and to
/// check its database_id, as though something were wrong. It is the
/// normal first migrate: no warning; its pre-migration backup's line says
/// the database is new, and the migrations run.
#[test]
fn the_first_migrate_of_a_new_remote_database_does_not_warn_that_it_has_no_tables() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let run = remote.xtask(home.path(), &["migrate", "staging", "--yes"]);
    run.assert_ok();
    assert!(!run.stderr.contains("warning:"), "{}", run.all());
    let line = run.stdout_line_with("Pre-migration backup ");
    assert!(line.contains("no tables yet"), "{}", run.all());
    assert!(run.stdout.contains("Applied "), "{}", run.all());
}
