//! Projects configured as Cloudflare now creates them (`wrangler.jsonc`),
//! and environments with several D1 databases, through the real wrangler
//! against local D1.

use crate::common;

use common::*;

fn jsonc_sandbox() -> Sandbox {
    let sb = Sandbox::new().into_checkout();
    std::fs::remove_file(sb.path().join("wrangler.toml")).unwrap();
    std::fs::write(sb.path().join("wrangler.jsonc"), JSONC).unwrap();
    sb
}

#[test]
fn a_wrangler_jsonc_project_backs_up_restores_and_plans_like_a_toml_one() {
    let sb = jsonc_sandbox();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let before = sb.live_row_counts();

    sb.xtask_in_checkout(&["backup", "local"]).assert_ok();
    let manifest = sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".manifest.json"))
        .expect("a manifest");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.backups().join(manifest)).unwrap())
            .unwrap();
    assert_eq!(m["database"]["name"], "qbtime_db_local");
    assert_eq!(m["environment"], "local");

    sb.execute_sql("DELETE FROM notifications;");
    sb.xtask_in_checkout(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
    ])
    .assert_ok();
    assert_eq!(sb.live_row_counts(), before);

    // prod resolves from the JSONC, with its typed-name guard.
    let restore = sb.xtask_in_checkout(&["restore", "latest:local", "--to", "prod", "--yes"]);
    assert_eq!(restore.code, Some(3), "{}", restore.all());
}

#[test]
fn two_wrangler_configurations_side_by_side_are_refused_before_anything_runs() {
    let sb = jsonc_sandbox();
    let toml = std::fs::read_to_string(repo_root().join("wrangler.toml")).unwrap();
    // A stray wrangler.toml naming another database beside the JSONC.
    std::fs::write(
        sb.path().join("wrangler.toml"),
        toml.replace("qbtime_db_local", "someone_elses_db"),
    )
    .unwrap();
    let run = sb.xtask_in_checkout(&["backup", "local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("wrangler.jsonc and wrangler.toml") && run.stderr.contains("--config"),
        "{}",
        run.all()
    );
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
    // Naming one of them works.
    sb.xtask_in_checkout(&["--config", "wrangler.jsonc", "backup", "local", "--dry-run"])
        .assert_ok();
}

/// A project whose environments each have two D1 databases.
const TWO: &str = r#"
name = "qbtime"
[vars]
APP_ENV = "local"
[[d1_databases]]
binding = "DB"
database_name = "qbtime_db_local"
database_id = "00000000-0000-4000-8000-000000000000"
migrations_dir = "migrations"
[[d1_databases]]
binding = "ANALYTICS"
database_name = "analytics_local"
database_id = "00000000-0000-4000-8000-0000000000a1"
migrations_dir = "migrations-analytics"

[env.production.vars]
APP_ENV = "prod"
[[env.production.d1_databases]]
binding = "DB"
database_name = "qbtime_db_prod"
database_id = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
[[env.production.d1_databases]]
binding = "ANALYTICS"
database_name = "analytics_prod"
database_id = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7ca1"
migrations_dir = "migrations-analytics"
"#;

/// The rows of `table` in the local D1 database `database`, read by the
/// real wrangler.
fn local_rows(sb: &Sandbox, database: &str, table: &str) -> u64 {
    let sql = format!("SELECT count(*) AS n FROM {table}");
    let run = sb.wrangler(&[
        "d1",
        "execute",
        database,
        "--local",
        "--json",
        "--command",
        &sql,
    ]);
    run.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    json[0]["results"][0]["n"].as_u64().unwrap()
}

fn analytics_rows(sb: &Sandbox) -> u64 {
    local_rows(sb, "analytics_local", "events")
}

/// `config` (TWO, or TWO with more) with both local databases migrated,
/// seeded (three analytics events) and backed up.
fn two_databases(config: &str) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("wrangler.toml"), config).unwrap();
    // No staging here, and no app rules: the analytics database has none of
    // qbtime's tables.
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    let analytics = sb.path().join("migrations-analytics");
    std::fs::create_dir(&analytics).unwrap();
    std::fs::write(
        analytics.join("0001_events.sql"),
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.wrangler(&["d1", "migrations", "apply", "analytics_local", "--local"])
        .assert_ok();
    sb.execute_sql(SEED_SQL);
    sb.wrangler(&[
        "d1",
        "execute",
        "analytics_local",
        "--local",
        "--command",
        "INSERT INTO events (kind) VALUES ('login'), ('export'), ('login');",
    ])
    .assert_ok();
    sb
}

#[test]
fn an_environment_with_two_databases_backs_up_each_and_every_other_command_names_one() {
    let sb = two_databases(TWO);
    let main_rows = sb.live_row_counts();

    // `backup local` takes one backup of each database.
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(run.stdout.contains("2 D1 databases"), "{}", run.all());
    let manifests: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    assert!(
        manifests
            .iter()
            .any(|f| f.starts_with("backup-local.analytics_local-"))
            && manifests
                .iter()
                .any(|f| f.starts_with("backup-local.qbtime_db_local-")),
        "{manifests:?}"
    );
    let list = sb.xtask(&["list"]);
    list.assert_ok();
    assert!(
        list.stdout.contains("analytics_local") && list.stdout.contains("qbtime_db_local"),
        "{}",
        list.all()
    );

    // Without a pick, a restore, a verify and a migrate are refused, listing
    // the databases, and nothing runs.
    sb.wrangler(&[
        "d1",
        "execute",
        "analytics_local",
        "--local",
        "--command",
        "INSERT INTO events (kind) VALUES ('late');",
    ])
    .assert_ok();
    for args in [
        &[
            "restore",
            "latest:local",
            "--to",
            "local",
            "--replace",
            "--yes",
        ][..],
        &["verify", "latest:local"],
        &["migrate", "local", "--yes"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("--database")
                && run
                    .stderr
                    .contains("local.analytics_local (binding ANALYTICS)")
                && run.stderr.contains("local.qbtime_db_local (binding DB)"),
            "{args:?}: {}",
            run.all()
        );
    }
    assert_eq!(analytics_rows(&sb), 4);

    // --database picks one, by binding; the other database is untouched.
    sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
        "--database",
        "ANALYTICS",
    ])
    .assert_ok();
    assert_eq!(analytics_rows(&sb), 3);
    assert_eq!(sb.live_row_counts(), main_rows);
    // ...or by name, and a qualified name works alone.
    sb.xtask(&["verify", "latest:local", "--database", "qbtime_db_local"])
        .assert_ok();
    sb.xtask(&["verify", "latest:local.analytics_local"])
        .assert_ok();
    // A pick the environment does not have is refused.
    let run = sb.xtask(&["backup", "local", "--database", "nope", "--dry-run"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("--database nope"), "{}", run.all());

    // The wrong database of two: the analytics backup aimed at the main
    // database (by a qualified name, or by its file name) is refused before
    // anything runs, naming both; the main database keeps its tables.
    let analytics_file = sb
        .backup_files()
        .into_iter()
        .find(|f| f.starts_with("backup-local.analytics_local-") && f.ends_with(".sql"))
        .unwrap();
    let files_before = sb.backup_files();
    for source in ["latest:local.analytics_local", analytics_file.as_str()] {
        let run = sb.xtask(&[
            "restore",
            source,
            "--to",
            "local",
            "--database",
            "DB",
            "--replace",
            "--yes",
        ]);
        assert_eq!(run.code, Some(3), "{source}: {}", run.all());
        assert!(
            run.stderr.contains("analytics_local")
                && run.stderr.contains("qbtime_db_local")
                && run.stderr.contains("--database ANALYTICS"),
            "{source}: {}",
            run.all()
        );
    }
    assert_eq!(sb.live_row_counts(), main_rows);
    assert_eq!(
        sb.backup_files(),
        files_before,
        "no safety backup was taken"
    );
}

/// The targets a refusal of `restore ... --to <to>` advises, each as the
/// words of a command line: each `--to ...` it quotes, else its
/// `(--database NAME)` with the same `--to`.
fn advised_targets(said: &str, to: &str) -> Vec<Vec<String>> {
    let words = |line: &str| line.split_whitespace().map(str::to_owned).collect();
    let quoted: Vec<Vec<String>> = { said.split('`').skip(1).step_by(2) }
        .filter(|quoted| quoted.starts_with("--to ") && !quoted.contains("new:"))
        .map(words)
        .collect();
    match said.split_once("(--database ") {
        Some((_, rest)) if quoted.is_empty() => {
            let name = rest.split(')').next().unwrap_or_default();
            vec![words(&format!("--to {to} --database {name}"))]
        }
        _ => quoted,
    }
}

/// KJ: TWO with a staging of DB alone. A backup of local's ANALYTICS aimed
/// at staging is refused (another binding) with "restore it into the
/// database with binding ANALYTICS (--database ANALYTICS)", in staging,
/// which has none: that restore is refused too. The advice names an
/// environment that has one, and that restore runs.
#[test]
fn the_database_a_refused_restore_advises_is_one_its_environment_has() {
    let sb = two_databases(&format!(
        "{TWO}\n[env.staging.vars]\nAPP_ENV = \"staging\"\n[[env.staging.d1_databases]]\n\
         binding = \"DB\"\ndatabase_name = \"qbtime_db_staging\"\n\
         database_id = \"5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c\"\n"
    ));
    sb.xtask(&["backup", "local"]).assert_ok();
    let file = { sb.backup_files().into_iter() }
        .find(|f| f.starts_with("backup-local.analytics_local-") && f.ends_with(".sql"))
        .unwrap();
    let file = sb.backups().join(file);
    let file = file.to_str().unwrap();
    let run = sb.xtask(&["restore", file, "--to", "staging", "--yes", "--dry-run"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("binding ANALYTICS"), "{}", run.all());
    let advised = advised_targets(&run.stderr, "staging");
    assert!(!advised.is_empty(), "no `--to` advised: {}", run.all());
    for to in advised {
        let mut args = vec!["restore", file];
        args.extend(to.iter().map(String::as_str));
        args.extend(["--replace", "--yes"]);
        let run = sb.xtask(&args);
        assert!(
            run.ok,
            "advised `{}`, refused:\n{}",
            to.join(" "),
            run.all()
        );
    }
    assert_eq!(analytics_rows(&sb), 3);
}

/// A second database for the top level, appended to qbtime's one-database
/// `wrangler.toml`, as a project grows one: `DB_EU`, a shard with DB's
/// schema (the same `migrations_dir`).
const EU_SHARD: &str = r#"
[[d1_databases]]
binding = "DB_EU"
database_name = "qbtime_eu_local"
database_id = "00000000-0000-4000-8000-0000000000e1"
migrations_dir = "migrations"
"#;

fn add_eu_shard(sb: &Sandbox) {
    let path = sb.path().join("wrangler.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(EU_SHARD);
    std::fs::write(&path, text).unwrap();
}

fn eu_accounts(sb: &Sandbox) -> u64 {
    local_rows(sb, "qbtime_eu_local", "accounts")
}

/// atkAX: a backup of DB taken while local had one database records the
/// environment `local` (the plain name), and `DB` in its manifest's
/// database name. Once the project adds a second database, the guard "a
/// backup goes only into the database with its binding" looks the backup's
/// environment up among the qualified names, finds none, and lets it
/// through: `restore <DB's backup> --to local --database DB_EU --replace
/// --yes` replaced DB_EU's data with DB's. It must be refused (exit 3)
/// before anything runs, as a qualified backup of DB is.
#[test]
fn a_backup_taken_before_a_second_database_was_added_never_goes_into_the_other_one() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let old = only_backup(&sb);
    assert!(old.starts_with("backup-local-"), "{old}");

    add_eu_shard(&sb);
    sb.xtask(&["migrate", "local", "--database", "DB_EU", "--yes"])
        .assert_ok();
    sb.wrangler(&[
        "d1",
        "execute",
        "qbtime_eu_local",
        "--local",
        "--command",
        "INSERT INTO accounts (email, display_name, password_hash) \
         VALUES ('eu@example.com', 'EU', 'h');",
    ])
    .assert_ok();
    assert_eq!(eu_accounts(&sb), 1);
    let main_rows = sb.live_row_counts();

    let run = sb.xtask(&[
        "restore",
        &old,
        "--to",
        "local",
        "--database",
        "DB_EU",
        "--replace",
        "--yes",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("qbtime_db_local") && run.stderr.contains("qbtime_eu_local"),
        "{}",
        run.all()
    );
    assert_eq!(eu_accounts(&sb), 1, "DB_EU's data was replaced by DB's");
    assert_eq!(sb.live_row_counts(), main_rows);
}

/// atkAX: prod or local gaining a second database renames the first one's
/// backups (`local` becomes `local.qbtime_db_local`), and the record of
/// what each applied migration was, kept in those backups' manifests, is
/// looked up under the new name only. So an applied migration edited
/// before the second database was added, which `migrate` refused with one
/// database, is no longer seen: `migrate local --database DB --check`
/// says all is well, and the next backup records the edited file as what
/// was applied.
#[test]
fn a_second_database_does_not_forget_the_first_ones_applied_migrations() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = "0002_encryption_keys_and_qbt_tokens.sql";
    let path = sb.path().join("migrations").join(name);
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{original}\n-- edited after it was applied\n"),
    )
    .unwrap();
    // With one database, the edit is seen.
    let run = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains(name), "{}", run.all());

    add_eu_shard(&sb);
    let run = sb.xtask(&["migrate", "local", "--database", "DB", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains(name), "{}", run.all());
}

/// atkAX: `deploy ENV` of an environment with two databases is refused
/// without `--database`, and with it migrates that database only, then
/// publishes the app: the other database's pending migration is neither
/// applied nor named, and the deploy ends "done". The app then runs its
/// new code against the other database's old schema. A deploy must not
/// publish while any database of the environment has a migration pending
/// (or must migrate each, backed up first).
#[test]
fn a_deploy_never_publishes_while_the_other_database_has_a_migration_pending() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("wrangler.toml"), TWO).unwrap();
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    let analytics = sb.path().join("migrations-analytics");
    std::fs::create_dir(&analytics).unwrap();
    std::fs::write(
        analytics.join("0001_events.sql"),
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.wrangler(&["d1", "migrations", "apply", "analytics_local", "--local"])
        .assert_ok();
    // The release adds a migration to ANALYTICS alone.
    std::fs::write(
        analytics.join("0002_sessions.sql"),
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    sb.git(&["add", "."]).assert_ok();
    sb.git(&["commit", "-q", "-m", "release"]).assert_ok();
    sb.git(&["checkout", "-q", "-b", "preview/x"]).assert_ok();

    let (run, deployed) = deploy_db_to_preview(&sb);
    let sessions = sb.wrangler(&[
        "d1",
        "execute",
        "analytics_local",
        "--local",
        "--json",
        "--command",
        "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sessions'",
    ]);
    sessions.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&sessions.stdout).unwrap();
    let migrated = json[0]["results"][0]["n"].as_u64().unwrap() == 1;
    assert!(
        !deployed || migrated,
        "the app was published while analytics_local had 0002_sessions.sql pending:\n{}",
        run.all()
    );
    if !deployed {
        assert_ne!(run.code, Some(0), "{}", run.all());
        assert!(
            run.all().contains("0002_sessions.sql") || run.all().contains("analytics_local"),
            "{}",
            run.all()
        );
    }
}

/// `deploy local --database DB` to the branch `preview/x`, with a Pages
/// deploy that only writes `deployed.log`; and whether it got that far.
fn deploy_db_to_preview(sb: &Sandbox) -> (Run, bool) {
    let log = sb.path().join("deployed.log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = sb.xtask_command(&[
        "deploy",
        "local",
        "--database",
        "DB",
        "--branch",
        "preview/x",
        "--yes",
    ]);
    cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log");
    (Run::from_output(cmd.output().unwrap()), log.exists())
}

/// A deploy of one database refuses, as `migrate` would, while the other
/// database of its environment has an applied migration edited since it
/// was applied (its schema is no longer what its migrations say).
#[test]
fn a_deploy_refuses_while_the_other_database_has_an_applied_migration_edited() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("wrangler.toml"), TWO).unwrap();
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    sb.apply_migrations();
    sb.git(&["add", "."]).assert_ok();
    sb.git(&["commit", "-q", "-m", "release"]).assert_ok();
    sb.git(&["checkout", "-q", "-b", "preview/x"]).assert_ok();
    let analytics = sb.path().join("migrations-analytics");
    std::fs::create_dir(&analytics).unwrap();
    let first = analytics.join("0001_events.sql");
    std::fs::write(&first, "CREATE TABLE events (id INTEGER PRIMARY KEY);\n").unwrap();
    sb.wrangler(&["d1", "migrations", "apply", "analytics_local", "--local"])
        .assert_ok();
    sb.xtask(&["backup", "local.analytics_local"]).assert_ok();
    let (run, deployed) = deploy_db_to_preview(&sb);
    assert!(run.ok && deployed, "{}", run.all());
    // Then someone edits the applied migration instead of adding one.
    std::fs::write(
        &first,
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT);\n",
    )
    .unwrap();
    let (run, deployed) = deploy_db_to_preview(&sb);
    assert!(
        !deployed,
        "published with an edited migration:\n{}",
        run.all()
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("analytics_local") && run.stderr.contains("0001_events.sql"),
        "{}",
        run.all()
    );
}

/// atkAX: a qualified name and a `--database` that names the other
/// database of the environment contradict each other, and the qualified
/// name silently wins: `migrate local.analytics_local --database DB`
/// plans (and with `--yes` applies) ANALYTICS's migrations, and `backup
/// local.analytics_local --database DB` backs up ANALYTICS, although the
/// operator's `--database` said DB. Such a command must be refused before
/// anything runs (exit 2), naming both.
#[test]
fn a_qualified_name_and_a_database_flag_naming_the_other_database_are_refused() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("wrangler.toml"), TWO).unwrap();
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    std::fs::create_dir(sb.path().join("migrations-analytics")).unwrap();
    for args in [
        &[
            "migrate",
            "local.analytics_local",
            "--database",
            "DB",
            "--dry-run",
        ][..],
        &[
            "backup",
            "local.analytics_local",
            "--database",
            "DB",
            "--dry-run",
        ],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("analytics_local") && run.stderr.contains("--database DB"),
            "{args:?}: {}",
            run.all()
        );
    }
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
}

/// A backup of DB taken while local had one database (recorded as `local`),
/// then the DB_EU shard added: returns the backup's file name.
fn a_backup_from_before_the_shard(sb: &Sandbox) -> String {
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let old = only_backup(sb);
    assert!(old.starts_with("backup-local-"), "{old}");
    add_eu_shard(sb);
    old
}

/// rvAP: `status` now counts a backup taken before the second database was
/// added as DB's (`Environment::recorded_as`), and says DB has a verified
/// backup; but `latest:local.qbtime_db_local` (what every command's
/// `latest` resolves to, inventory.rs `latest_good`/`latest_any`) still
/// matches the manifest's environment by the qualified name only, and says
/// there is no full backup. The backup status vouches for is the one
/// `restore latest` cannot find.
#[test]
fn the_backup_status_counts_for_a_database_is_the_one_its_latest_finds() {
    let sb = Sandbox::new();
    let old = a_backup_from_before_the_shard(&sb);
    let status = sb.xtask(&["status", "--env", "local.qbtime_db_local", "--json"]);
    let json: serde_json::Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", status.all()));
    let counted = json.to_string().contains(old.trim_end_matches(".sql"));
    assert!(counted, "status does not count it: {}", status.all());
    for args in [
        &["verify", "latest:local.qbtime_db_local"][..],
        &["verify", "latest:local", "--database", "DB"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.all());
        assert!(run.all().contains(&old), "{args:?}: {}", run.all());
    }
}

/// rvAP: `list --env local.qbtime_eu_local` lists the backup of DB taken
/// before DB_EU was added: main.rs `resolve_env` adds the environment's
/// short name for every database of it, whatever database the manifest
/// records, so the shard's listing shows DB's backup (which status,
/// rightly, does not count for it).
#[test]
fn listing_one_database_never_shows_the_other_ones_backup_from_before_the_split() {
    let sb = Sandbox::new();
    let old = a_backup_from_before_the_shard(&sb);
    let run = sb.xtask(&["list", "--env", "local.qbtime_eu_local"]);
    run.assert_ok();
    assert!(
        !run.stdout.contains(old.trim_end_matches(".sql")),
        "DB's backup listed as DB_EU's:\n{}",
        run.all()
    );
    // DB's own listing shows it.
    let run = sb.xtask(&["list", "--env", "local.qbtime_db_local"]);
    run.assert_ok();
    assert!(
        run.stdout.contains(old.trim_end_matches(".sql")),
        "{}",
        run.all()
    );
}

/// TWO's local databases with migrations applied, rows in each, and one
/// `backup local` (a backup of each); the sandbox's own one-database
/// `wrangler.toml` is returned, to go back to.
fn two_databases_backed_up(sb: &Sandbox) -> String {
    let one = std::fs::read_to_string(sb.path().join("wrangler.toml")).unwrap();
    std::fs::write(sb.path().join("wrangler.toml"), TWO).unwrap();
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    let analytics = sb.path().join("migrations-analytics");
    std::fs::create_dir(&analytics).unwrap();
    std::fs::write(
        analytics.join("0001_events.sql"),
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.wrangler(&["d1", "migrations", "apply", "analytics_local", "--local"])
        .assert_ok();
    sb.execute_sql(SEED_SQL);
    sb.wrangler(&[
        "d1",
        "execute",
        "analytics_local",
        "--local",
        "--command",
        "INSERT INTO events (kind) VALUES ('login');",
    ])
    .assert_ok();
    sb.xtask(&["backup", "local"]).assert_ok();
    one
}

/// rvAP: the reverse of atkAX's case. local had DB and ANALYTICS; ANALYTICS
/// is then taken out of the configuration (moved to another project), and
/// local has DB alone again. A backup of ANALYTICS (recorded
/// `local.analytics_local`) now matches no database, so restore's
/// `guard_same_binding` (steps/restore/guards.rs, the `let Some(from) = ... else
/// { return Ok(()) }`) lets it through: `restore <ANALYTICS's backup> --to
/// local --replace --yes` replaces DB's tables with the analytics events
/// table. It must be refused (exit 3), as it was while ANALYTICS was
/// configured.
#[test]
fn a_backup_of_a_database_taken_out_of_the_configuration_never_goes_into_the_one_left() {
    let sb = Sandbox::new();
    let one = two_databases_backed_up(&sb);
    let analytics = sb
        .backup_files()
        .into_iter()
        .find(|f| f.starts_with("backup-local.analytics_local-") && f.ends_with(".sql"))
        .expect("a backup of ANALYTICS");
    std::fs::write(sb.path().join("wrangler.toml"), one).unwrap();
    let before = sb.live_row_counts();

    let run = sb.xtask(&["restore", &analytics, "--to", "local", "--replace", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(
        sb.live_row_counts(),
        before,
        "DB's data was replaced by ANALYTICS's:\n{}",
        run.all()
    );
}

/// rvAP: taking the second database out forgets the first one's record of
/// its applied migrations (kept in its backups' manifests, recorded as
/// `local.qbtime_db_local`): `Environment::recorded_as` maps the short name
/// to a qualified one, never back. An applied migration edited while local
/// had two databases, which `migrate --check` then refused, passes once
/// local has one.
#[test]
fn taking_the_second_database_out_does_not_forget_the_first_ones_applied_migrations() {
    let sb = Sandbox::new();
    let one = two_databases_backed_up(&sb);
    let name = "0002_encryption_keys_and_qbt_tokens.sql";
    let path = sb.path().join("migrations").join(name);
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{original}\n-- edited after it was applied\n"),
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--database", "DB", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains(name), "{}", run.all());

    std::fs::write(sb.path().join("wrangler.toml"), one).unwrap();
    let run = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains(name), "{}", run.all());
}

/// rvAP: `Project::resolve_backup` drops `--database` for `latest:QUALIFIED`
/// ("a `--database` is then the target's (restore's)"), so in a command
/// with no target the contradiction atkAX had refused goes through
/// silently: `verify latest:local.analytics_local --database DB` verifies
/// ANALYTICS's backup and says it is good, and `diff
/// latest:local.analytics_local live:local --database DB` compares
/// ANALYTICS's backup with DB's live database. Each must be refused (exit
/// 2) naming both, as `backup` and `migrate` now are.
#[test]
fn a_qualified_latest_and_a_database_flag_naming_the_other_database_are_refused() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("wrangler.toml"), TWO).unwrap();
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    std::fs::create_dir(sb.path().join("migrations-analytics")).unwrap();
    sb.apply_migrations();
    sb.xtask(&["backup", "local", "--database", "ANALYTICS"])
        .assert_ok();
    for args in [
        &["verify", "latest:local.analytics_local", "--database", "DB"][..],
        &[
            "diff",
            "latest:local.analytics_local",
            "live:local",
            "--database",
            "DB",
            "--dry-run",
        ],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("analytics_local") && run.stderr.contains("--database DB"),
            "{args:?}: {}",
            run.all()
        );
    }
}

/// local as it is once DB has been taken out of TWO: ANALYTICS alone, so
/// named `local` again.
const ANALYTICS_ALONE: &str = r#"
name = "qbtime"
[vars]
APP_ENV = "local"
[[d1_databases]]
binding = "ANALYTICS"
database_name = "analytics_local"
database_id = "00000000-0000-4000-8000-0000000000a1"
migrations_dir = "migrations-analytics"
"#;

/// A backup of DB taken while local had DB alone (recorded `local`), then
/// ANALYTICS added (TWO) with one event in it, then DB taken out of the
/// configuration: local is ANALYTICS alone, named `local` again. Returns
/// DB's backup.
fn a_backup_of_db_and_then_analytics_alone(sb: &Sandbox) -> String {
    std::fs::write(sb.path().join("backups.toml"), "").unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    // Without triggers (a restore refuses triggers its migrations do not
    // create, and ANALYTICS's migrations create none).
    sb.execute_sql(
        "DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_log_no_update; \
         DROP TRIGGER report_configs_touch;",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let old = only_backup(sb);
    assert!(old.starts_with("backup-local-"), "{old}");
    std::fs::write(sb.path().join("wrangler.toml"), TWO).unwrap();
    let analytics = sb.path().join("migrations-analytics");
    std::fs::create_dir(&analytics).unwrap();
    std::fs::write(
        analytics.join("0001_events.sql"),
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);\n",
    )
    .unwrap();
    sb.wrangler(&["d1", "migrations", "apply", "analytics_local", "--local"])
        .assert_ok();
    sb.wrangler(&[
        "d1",
        "execute",
        "analytics_local",
        "--local",
        "--command",
        "INSERT INTO events (kind) VALUES ('login');",
    ])
    .assert_ok();
    std::fs::write(sb.path().join("wrangler.toml"), ANALYTICS_ALONE).unwrap();
    assert_eq!(analytics_rows(sb), 1);
    old
}

/// rvAQ: the case rvAP's fix leaves open. `Environment::recorded_as`
/// (config/environment.rs:109) accepts `self.name == name` whatever the
/// manifest's database: a backup of DB recorded `local` (taken while local
/// had DB alone) is, once DB is taken out again and ANALYTICS is local's
/// only database (named `local` once more), ANALYTICS's backup to
/// `guard_same_binding` (steps/restore/guards.rs), whose `from` is then
/// ANALYTICS itself. `restore <DB's backup> --to local --replace --yes`
/// replaces ANALYTICS's events table with DB's tables. It must be refused
/// (exit 3), as the same backup recorded `local.qbtime_db_local` is.
#[test]
fn a_backup_from_before_the_split_never_goes_into_the_other_database_left_alone() {
    let sb = Sandbox::new();
    let old = a_backup_of_db_and_then_analytics_alone(&sb);
    let run = sb.xtask(&["restore", &old, "--to", "local", "--replace", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(
        analytics_rows(&sb),
        1,
        "ANALYTICS's events were replaced by DB's tables:\n{}",
        run.all()
    );
}

/// rvAQ: the same `recorded_as` (`self.name == name`, any database) makes
/// DB's backup from before the split ANALYTICS's to `list --env local`,
/// `status` and `latest:local`: status calls ANALYTICS backed up and
/// verified although it never was, and `verify latest:local` verifies
/// DB's backup and exits 0.
#[test]
fn the_database_left_alone_is_never_called_backed_up_by_the_other_ones_backup() {
    let sb = Sandbox::new();
    let old = a_backup_of_db_and_then_analytics_alone(&sb);
    let stem = old.trim_end_matches(".sql");
    let list = sb.xtask(&["list", "--env", "local"]);
    assert!(
        !list.stdout.contains(stem),
        "DB's backup listed as ANALYTICS's:\n{}",
        list.all()
    );
    let status = sb.xtask(&["status", "--env", "local", "--json"]);
    // MM: it is named only as passed over (its database is no
    // environment's now), never counted.
    let mut doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    doc["environments"][0]["other_databases_passed_over"] = serde_json::Value::Null;
    assert!(
        !doc.to_string().contains(stem),
        "status counts DB's backup for ANALYTICS:\n{}",
        status.all()
    );
    let verify = sb.xtask(&["verify", "latest:local"]);
    assert_ne!(verify.code, Some(0), "{}", verify.all());
    // Named only in the warning that it was passed over (MM).
    let passed_over = "is recorded as a backup of local, but its manifest names database";
    let all = verify.all();
    let named = { all.lines() }.any(|l| l.contains(stem) && !l.contains(passed_over));
    assert!(!named, "{}", verify.all());
}

/// rvAQ: production's side of `recorded_as`. A backup of prod taken while
/// prod had DB alone (recorded `prod`), then a second database added to
/// prod: `latest:prod.qbtime_db_prod` finds it (`recorded_as`), and
/// `guard_source_environment` lets it past its first check as recorded
/// under the target's earlier name, "its database's name and id then
/// checked as any other's"; but `guard_same_database`
/// (steps/restore/guards.rs) still demands `m.environment == target.name`
/// and refuses it (exit 3, "which is not production's database") although
/// its database name and id are production's. The one verified backup of
/// production's DB cannot be restored into it: here only as a dry run,
/// which must plan the restore (exit 0).
#[test]
fn a_production_backup_from_before_a_second_database_restores_into_its_database() {
    let remote = remote::Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = remote.backup_prod(home.path());
    assert!(old.starts_with("backup-prod-"), "{old}");
    let path = remote.sb.path().join("wrangler.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        r#"
[[env.production.d1_databases]]
binding = "ANALYTICS"
database_name = "analytics_prod"
database_id = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7ca1"
migrations_dir = "migrations"
"#,
    );
    std::fs::write(&path, text).unwrap();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:prod.qbtime_db_prod",
            "--to",
            "prod.qbtime_db_prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
            "--dry-run",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.all().contains(&old), "{}", run.all());
}

/// rvAX: `prune --database` (atkBH's fix, prune.rs `backups`) keeps the
/// backups whose manifest's environment is one of the picked databases'
/// names, never asking `Environment::recorded_as` as `list` does: a backup
/// of DB recorded `local` (taken while local had DB alone) counts, once
/// ANALYTICS is local's only database, as ANALYTICS's. `prune --database
/// ANALYTICS --keep-within 0d --keep-daily 0 --yes`, asked about
/// ANALYTICS's backups, deletes DB's only backup (the newest of the group
/// `local` being ANALYTICS's) and exits 0; `list --database ANALYTICS`
/// does not even show it.
#[test]
fn prune_of_one_database_never_deletes_the_other_ones_backup_from_before_the_split() {
    let sb = Sandbox::new();
    let old = a_backup_of_db_and_then_analytics_alone(&sb);
    sb.xtask(&["backup", "local"]).assert_ok();
    let list = sb.xtask(&["list", "--database", "ANALYTICS"]);
    list.assert_ok();
    assert!(!list.stdout.contains(&old), "{}", list.all());
    let run = sb.xtask(&[
        "prune",
        "--database",
        "ANALYTICS",
        "--keep-within",
        "0d",
        "--keep-daily",
        "0",
        "--yes",
    ]);
    assert!(
        sb.backups().join(&old).exists(),
        "prune --database ANALYTICS deleted DB's only backup {old}:\n{}",
        run.all()
    );
}

/// atkCB: the local database renamed in wrangler.toml (`database_name`
/// `qbtime_db_local` became `qbtime_dev`; the `database_id`, by which
/// wrangler keeps the local D1 file, unchanged). The name is part of "whose
/// backup is this", so its backups are not taken as qbtime_dev's; but the
/// refusal must not call them another project's, and `latest:local` must
/// not say there is no backup with no word why: both name the old name,
/// the id they share, and the way forward.
#[test]
fn backups_of_a_renamed_local_database_are_refused_naming_the_rename_and_the_way_back() {
    let (sb, name) = sandbox_with_a_backup();
    let config = sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "database_name = \"qbtime_db_local\"",
        "database_name = \"qbtime_dev\"",
    );
    std::fs::write(&config, text).unwrap();
    sb.execute_sql("DELETE FROM notifications;");
    let before = sb.live_row_counts();

    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        !run.stderr.contains("another project"),
        "the backup of this very database (same id) is called another project's:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("database_name = \"qbtime_db_local\""),
        "the refusal names no way to restore it:\n{}",
        run.all()
    );
    assert_eq!(sb.live_row_counts(), before, "nothing was loaded");

    let latest = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    assert_eq!(latest.code, Some(2), "{}", latest.all());
    assert!(
        latest.stderr.contains("qbtime_db_local"),
        "latest:local says there is no backup, with no word of the backups of the old name:\n{}",
        latest.all()
    );
    assert_eq!(sb.live_row_counts(), before, "nothing was loaded");
}

/// The new backups in `sb` since `before`, by database (the manifests'
/// `database.name`), and the reasons they record.
fn new_backups_by_database(sb: &Sandbox, before: &[String]) -> Vec<(String, String)> {
    let mut taken: Vec<(String, String)> = { sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql") && !before.contains(f))
        .map(|f| {
            let m = manifest_for(sb, &f);
            let name = m["database"]["name"].as_str().unwrap().to_owned();
            (name, m["reason"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    taken.sort();
    taken
}

/// `with-backup ENV -- COMMAND` runs a command that may change any of the
/// environment's databases: with two, it was refused unless `--database`
/// picked one, and with `--database DB` it backed up DB alone before a
/// command that may change ANALYTICS too, saying nothing of it. Now
/// `with-backup local` backs up each of local's databases first, as
/// `backup local` does, and a `--database` that leaves one out is told,
/// naming the databases not backed up.
#[test]
fn with_backup_backs_up_every_database_of_the_environment_and_warns_of_those_left_out() {
    let sb = Sandbox::new();
    two_databases_backed_up(&sb);
    let before = sb.backup_files();
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", "exit 0"]);
    run.assert_ok();
    let taken = new_backups_by_database(&sb, &before);
    let names: Vec<&str> = taken.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["analytics_local", "qbtime_db_local"],
        "{}",
        run.all()
    );
    assert!(
        taken.iter().all(|(_, r)| r == "before: sh -c 'exit 0'"),
        "{taken:?}"
    );
    let before = sb.backup_files();
    let picked: Vec<&str> = { "with-backup local --database DB -- sh -c".split(' ') }
        .chain(["exit 0"])
        .collect();
    let run = sb.xtask(&picked);
    run.assert_ok();
    let taken = new_backups_by_database(&sb, &before);
    assert_eq!(taken.len(), 1, "{taken:?}\n{}", run.all());
    assert_eq!(taken[0].0, "qbtime_db_local");
    let warning = { run.stderr.lines() }
        .find(|l| l.starts_with("warning:") && l.contains("analytics_local"))
        .unwrap_or_else(|| panic!("no warning naming analytics_local:\n{}", run.all()));
    assert!(warning.contains("not backed up"), "{warning}");
}

/// After an environment's binding moved to another database (the
/// runbook's restore into a brand-new one, then wrangler.toml edited),
/// every backup it kept names a database that is no environment's.
/// `status` and `list` said a paragraph for each of them, every run: one
/// warning now tells them together, with how many, the newest and the
/// oldest, and `list` still marks each.
#[test]
fn the_backups_of_a_database_no_environment_has_are_told_in_one_warning() {
    let sb = Sandbox::new();
    for _ in 0..3 {
        sb.xtask(&["backup", "local"]).assert_ok();
    }
    let path = sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let moved = text
        .replacen(
            "database_name = \"qbtime_db_local\"",
            "database_name = \"qbtime_db_local2\"",
            1,
        )
        .replacen(
            "database_id = \"00000000-0000-4000-8000-000000000000\"",
            "database_id = \"00000000-0000-4000-8000-000000000002\"",
            1,
        );
    assert_ne!(
        moved, text,
        "the sandbox's wrangler.toml has no local database"
    );
    std::fs::write(&path, moved).unwrap();
    for command in [&["status", "--env", "local"][..], &["list"]] {
        let run = sb.xtask(command);
        let told: Vec<&str> = { run.stderr.lines() }
            .filter(|l| l.contains("qbtime_db_local ") || l.contains("qbtime_db_local,"))
            .filter(|l| l.starts_with("warning:"))
            .collect();
        assert_eq!(told.len(), 1, "{command:?}:\n{}", run.all());
        assert!(
            told[0].contains("3 backups are recorded as backups of local"),
            "{command:?}:\n{}",
            run.all()
        );
    }
    let list = sb.xtask(&["list"]);
    let marked = { list.stdout.lines() }
        .filter(|l| l.contains("local (not local's)"))
        .count();
    assert_eq!(marked, 3, "{}", list.all());
}

/// A key of the wrong type in any configuration file the tool reads
/// (`wrangler.jsonc`, `wrangler.json`, `wrangler.toml`, `backups.toml`) is
/// refused naming the file, the key's whole path with its list positions
/// (`env.production.d1_databases[0].database_name`), the type it must
/// have and the fix, and never the value (it may be a secret kept in the
/// wrong place): exit 2, and nothing run against a database.
#[test]
fn a_key_of_the_wrong_type_names_the_file_the_key_path_and_the_type_never_the_value() {
    const SECRET: &str = "sk_live_51Hwrongtype";
    const NUMBER: &str = "987654321987";
    let prod_name = "\"database_name\": \"qbtime_db_prod\"";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "wrangler.jsonc",
            JSONC.replacen("\"d1_databases\": [", "\"d1_databases\": {}, \"x\": [", 1),
            "`d1_databases`",
            "must be a list",
        ),
        (
            "wrangler.jsonc",
            JSONC.replacen(prod_name, &format!("\"database_name\": {NUMBER}"), 1),
            "`env.production.d1_databases[0].database_name`",
            "must be a string",
        ),
        (
            "wrangler.json",
            JSONC
                .lines()
                .filter(|l| !l.trim_start().starts_with("//") && !l.contains("/*"))
                .collect::<Vec<_>>()
                .join("\n")
                .replace(", // trailing commas, as wrangler allows", "")
                .replace("},\n  ],", "}\n  ],")
                .replacen(
                    "\"migrations_dir\": \"migrations\"",
                    &format!("\"migrations_dir\": [\"{SECRET}\"]"),
                    1,
                ),
            "`d1_databases[0].migrations_dir`",
            "must be a string",
        ),
        (
            "wrangler.jsonc",
            JSONC.replacen(
                "\"APP_ENV\": \"staging\" },\n      \"d1_databases\": [",
                &format!("\"APP_ENV\": \"staging\" }}, \"d1_databases\": \"{SECRET}\", \"x\": ["),
                1,
            ),
            "`env.preview.d1_databases`",
            "must be a list",
        ),
        (
            "wrangler.toml",
            include_str!("../../../wrangler.toml").replacen(
                "database_name = \"qbtime_db_prod\"",
                &format!("database_name = {NUMBER}"),
                1,
            ),
            "`env.production.d1_databases[0].database_name`",
            "must be a string",
        ),
        (
            "backups.toml",
            include_str!("../../../backups.toml").replacen(
                "keep_daily = 30",
                &format!("keep_daily = \"{SECRET}\""),
                1,
            ),
            "`prod.retention.keep_daily`",
            "must be a whole number",
        ),
        (
            "backups.toml",
            include_str!("../../../backups.toml").replacen(
                "table = \"audit_log\"",
                &format!("table = {NUMBER}"),
                1,
            ),
            "`app.audit_chain.table`",
            "must be a string",
        ),
    ];
    for (file, text, key, expected) in cases {
        let sb = Sandbox::new().into_checkout();
        if file != "backups.toml" {
            std::fs::remove_file(sb.path().join("wrangler.toml")).unwrap();
        }
        std::fs::write(sb.path().join(file), &text).unwrap();
        let run = sb.xtask_in_checkout(&["backup", "local"]);
        assert_eq!(run.code, Some(2), "{file} {key}:\n{}", run.all());
        for needle in [file, key, expected, "Nothing was run"] {
            assert!(
                run.stderr.contains(needle),
                "{file} {key}: {needle:?} not in:\n{}",
                run.all()
            );
        }
        assert!(
            !run.all().contains(SECRET) && !run.all().contains(NUMBER),
            "{file} {key}: the value is quoted:\n{}",
            run.all()
        );
        assert!(sb.backup_files().is_empty(), "{file} {key}: a backup ran");
    }
}
