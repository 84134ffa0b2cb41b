//! `restore <backup> --to new:NAME`, end to end: the real wrangler creates
//! the database (`d1 create`), loads it through D1's import API and exports
//! it again for the content check, all against the loopback D1 API.

use crate::common;

use common::remote::*;
use common::*;

/// `wrangler d1 create` requests: `POST .../d1/database`.
fn create_requests(remote: &Remote) -> usize {
    remote
        .server
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST ") && r.ends_with("/d1/database"))
        .count()
}

fn prod_backup(remote: &Remote, home: &std::path::Path) -> String {
    let file = remote.sb.backups().join(remote.backup_prod(home));
    file.to_str().unwrap().to_owned()
}

/// `restore FILE --to new:NAME` with more arguments.
fn restore_new(
    remote: &Remote,
    home: &std::path::Path,
    file: &str,
    name: &str,
    more: &[&str],
) -> Run {
    let to = format!("new:{name}");
    let mut args = vec!["restore", file, "--to", &to];
    args.extend(more);
    remote.xtask(home, &args)
}

/// The runbook's hand export of prod (`wrangler d1 export --remote
/// --no-schema`), written to data.sql in the sandbox; returns its path.
fn hand_export_of_prod(remote: &Remote, home: &std::path::Path) -> std::path::PathBuf {
    let file = remote.sb.path().join("data.sql");
    let mut export = d1_loopback::pinned_wrangler_command(&common::repo_root());
    export.current_dir(remote.sb.path()).args([
        "d1",
        "export",
        "qbtime_db_prod",
        "--env",
        "production",
        "--remote",
        "--no-schema",
        "-y",
        "--output",
        file.to_str().unwrap(),
    ]);
    let out = Run::from_output(remote.with_api(&mut export, home).output().unwrap());
    out.assert_ok();
    file
}

fn config_text(remote: &Remote) -> String {
    std::fs::read_to_string(remote.sb.path().join("wrangler.toml")).unwrap()
}

#[test]
fn the_plan_and_a_dry_run_create_nothing_and_names_in_use_are_refused() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    let databases = remote.server.database_names();

    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        &["--location", "weur", "--dry-run"],
    );
    run.assert_ok();
    for line in [
        "target       new:qbtime_db_restored -> qbtime_db_restored (remote D1, a new database",
        "first        npx wrangler d1 create qbtime_db_restored --location weur (in the account",
        "safety       none: the database is new",
        "Dry run: nothing was changed.",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in:\n{}", run.stdout);
    }
    assert_eq!(create_requests(&remote), 0, "a dry run creates nothing");
    assert_eq!(remote.server.database_names(), databases);

    // Not confirmed: refused before anything is created.
    let run = restore_new(&remote, home.path(), &file, "qbtime_db_restored", &[]);
    run.assert_refused("pass --yes or --confirm qbtime_db_restored");
    assert_eq!(create_requests(&remote), 0);

    // A name the configuration uses, or the account has, is refused (3),
    // and nothing is created.
    let run = restore_new(&remote, home.path(), &file, "qbtime_db_staging", &["--yes"]);
    run.assert_refused("the configuration already uses that name for `staging`");
    assert_eq!(run.code, Some(3), "{}", run.all());
    let mut create = d1_loopback::pinned_wrangler_command(&repo_root());
    create
        .args(["d1", "create", "someone_elses_db"])
        .current_dir(home.path());
    let out = remote.with_api(&mut create, home.path()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let databases = remote.server.database_names();
    let creates = create_requests(&remote);
    let run = restore_new(&remote, home.path(), &file, "someone_elses_db", &["--yes"]);
    run.assert_refused("the account already has a D1 database of that name");
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(create_requests(&remote), creates);
    assert_eq!(remote.server.database_names(), databases);

    // A name D1 would refuse never reaches it (2).
    let requests = remote.server.requests().len();
    let run = restore_new(&remote, home.path(), &file, "Bad Name", &["--yes"]);
    run.assert_refused("not a name D1 accepts");
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert_eq!(remote.server.requests().len(), requests);
}

#[test]
fn a_prod_backup_restores_into_a_new_database_and_its_binding_is_printed() {
    // prod holds planner statistics, which no restore loads.
    let remote = Remote::new("ANALYZE;");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    let config = config_text(&remote);

    // A production backup into a new database is an ordinary restore:
    // --yes is enough, and the new database is not production's.
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        &["--location", "weur", "--yes", "--json"],
    );
    run.assert_ok();
    let path = remote
        .server
        .database_path("qbtime_db_restored")
        .expect("the database was created");
    let mut prods = counts(&remote.db);
    prods.retain(|table, _| !table.starts_with("sqlite_stat"));
    assert_eq!(counts(&path), prods, "rows equal prod's");
    assert_eq!(create_requests(&remote), 1);

    let listed = remote.wrangler_json(home.path(), &["d1", "list", "--json"]);
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == "qbtime_db_restored")
        .unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The content check exported the new database and compared every row.
    assert!(run.stderr.contains("[x] content"), "{}", run.stderr);
    // Where the binding goes to move prod onto it, and what then.
    assert!(
        run.stderr.contains(
            "To move prod onto it, put it in place of qbtime_db_prod's entry under \
             [env.production] (there, [[env.production.d1_databases]]), then deploy the app"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"qbtime_db_restored\"\n\
             database_id = \"{id}\"\nmigrations_dir = \"migrations\""
        )),
        "{}",
        run.stderr
    );
    // hlpDN: PRAGMA optimize is advised for the new database by name, in
    // its account (as the delete command is), and not run: it has no
    // statistics yet.
    let optimize = run
        .stderr
        .lines()
        .find(|l| l.contains("[ ] query plans"))
        .unwrap_or_else(|| panic!("no query plans line:\n{}", run.stderr));
    assert!(
        optimize.contains("npx wrangler d1 execute qbtime_db_restored --config ")
            && optimize.contains(" --remote --command 'PRAGMA optimize'`"),
        "{optimize}"
    );
    let stat = "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'";
    assert_eq!(query_file(&path, stat)[0][0]["n"], 0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["plan"]["target"]["new"], true);
    assert_eq!(doc["plan"]["safety_backup"], false);
    assert_eq!(doc["result"]["database_id"], id.as_str());
    assert_eq!(doc["result"]["content_checked"], true);

    // The configuration is untouched, no safety backup was taken, prod
    // was only read.
    assert_eq!(config_text(&remote), config);
    assert_eq!(
        remote
            .sb
            .backup_files()
            .iter()
            .filter(|f| f.ends_with(".sql"))
            .count(),
        1,
        "{:?}",
        remote.sb.backup_files()
    );
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );

    // Once it exists, the same name is refused and nothing changes in it.
    let before = dump_of(&path);
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        &["--yes"],
    );
    run.assert_refused(&format!(
        "already has a D1 database of that name (id {id}, created "
    ));
    assert_eq!(create_requests(&remote), 1);
    assert_eq!(dump_of(&path), before);
}

#[test]
fn a_failed_import_leaves_the_new_database_and_says_how_to_delete_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    // prod's account is named by the configuration, which wrangler reads
    // before CLOUDFLARE_ACCOUNT_ID.
    let config = remote.sb.path().join("wrangler.toml");
    let text = config_text(&remote).replace(
        "[env.production.vars]",
        &format!("[env.production]\naccount_id = \"{ACCOUNT}\"\n[env.production.vars]"),
    );
    std::fs::write(&config, text).unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        ingest_fail_after: Some(20),
        ..Default::default()
    });
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_broken",
        &["--account-of", "prod", "--yes"],
    );
    run.assert_refused("the new D1 database qbtime_db_broken (id ");
    assert!(
        run.stderr
            .contains("was left in place and nothing was deleted; inspect it, or delete it with"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the load is all-or-nothing"),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    // It is still there, and empty: the import was all or nothing.
    let path = remote
        .server
        .database_path("qbtime_db_broken")
        .expect("the new database was not deleted");
    assert!(counts(&path).is_empty(), "{:?}", counts(&path));

    // The advice, pasted as printed where CLOUDFLARE_ACCOUNT_ID names
    // another account, deletes that database and nothing else.
    let advice = run
        .stderr
        .split("delete it with `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no command to delete it in:\n{}", run.stderr));
    assert!(
        advice.starts_with("npx wrangler d1 delete qbtime_db_broken --config ")
            && advice.ends_with(" --env production"),
        "{advice}"
    );
    std::fs::copy(
        repo_root().join("package.json"),
        remote.sb.path().join("package.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        repo_root().join("node_modules").canonicalize().unwrap(),
        remote.sb.path().join("node_modules"),
    )
    .unwrap();
    let before = remote.server.database_names();
    let mut pasted = std::process::Command::new("sh");
    pasted.arg("-c").arg(advice).current_dir(remote.sb.path());
    remote.with_api(&mut pasted, home.path());
    pasted.env("CLOUDFLARE_ACCOUNT_ID", "fedcba9876543210fedcba9876543210");
    let out = Run::from_output(pasted.output().unwrap());
    assert_eq!(out.code, Some(0), "{}", out.all());
    let after = remote.server.database_names();
    assert!(!after.iter().any(|n| n == "qbtime_db_broken"), "{after:?}");
    assert_eq!(after.len() + 1, before.len(), "{before:?} -> {after:?}");
}

/// wrangler looks a database name up by binding first: with a database
/// bound as `analytics`, the advice to delete a failed `new:analytics`
/// (`npx wrangler d1 delete analytics --env production`) deleted that
/// database instead (atkJ). Such a name is refused before anything runs.
#[test]
fn a_name_the_configuration_binds_another_database_as_is_refused() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    let config = remote.sb.path().join("wrangler.toml");
    let text = config_text(&remote)
        + "\n[[env.production.d1_databases]]\nbinding = \"analytics\"\n\
           database_name = \"qbtime_analytics_prod\"\n\
           database_id = \"7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910\"\n";
    std::fs::write(&config, text).unwrap();
    let databases = remote.server.database_names();
    let requests = remote.server.requests().len();
    let run = restore_new(&remote, home.path(), &file, "analytics", &["--yes"]);
    run.assert_refused("binds qbtime_analytics_prod (`prod.qbtime_analytics_prod`) as `analytics`");
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(remote.server.requests().len(), requests, "nothing ran");
    assert_eq!(remote.server.database_names(), databases);
}

/// A new database takes the binding and the migrations of the database
/// its backup is of, whatever they are called: it was refused unless the
/// binding was `DB`, and its triggers were judged against `./migrations`,
/// so with the migrations elsewhere every trigger read as foreign.
#[test]
fn a_backup_of_a_database_bound_otherwise_can_go_into_a_new_one() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    bind_as_qbtime_db_with_migrations_in_db(&remote);
    let file = prod_backup(&remote, home.path());
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_copy",
        &["--dry-run"],
    );
    run.assert_ok();
    assert!(
        run.stdout
            .contains("target       new:qbtime_db_copy -> qbtime_db_copy"),
        "{}",
        run.all()
    );
    assert_eq!(create_requests(&remote), 0);
}

#[test]
fn a_jsonc_project_gets_its_binding_in_jsonc_and_its_configuration_untouched() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    std::fs::remove_file(remote.sb.path().join("wrangler.toml")).unwrap();
    let config = remote.sb.path().join("wrangler.jsonc");
    std::fs::write(&config, JSONC).unwrap();
    wrangler_bin();
    let xtask = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--config")
            .arg(&config)
            .args(args)
            .current_dir(remote.sb.path());
        Run::from_output(remote.with_api(&mut cmd, home.path()).output().unwrap())
    };
    xtask(&["backup", "prod"]).assert_ok();
    // The binding is the output asked for: `-q` keeps it, and only it.
    let run = xtask(&[
        "restore",
        "latest:prod",
        "--to",
        "new:qbtime_db_j",
        "--yes",
        "-q",
    ]);
    run.assert_ok();
    assert!(
        run.stdout.starts_with("To use qbtime_db_j"),
        "{}",
        run.stdout
    );
    let path = remote.server.database_path("qbtime_db_j").unwrap();
    assert_eq!(counts(&path), counts(&remote.db));
    let snippet = run
        .stdout
        .split_once(":\n")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        snippet.starts_with(
            "\"d1_databases\": [\n  {\n    \"binding\": \"DB\",\n    \
             \"database_name\": \"qbtime_db_j\",\n    \"database_id\": \""
        ),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), JSONC);
}

/// Runs `restore FILE --to new:NAME --yes` with the API answering each
/// request 1.5 s late from the first whose `METHOD URL` contains
/// `slow_from` on (those before it at once), sends `signal` to the xtask
/// alone once the loopback has received a request for which `when` holds,
/// and returns what it printed.
fn restore_new_signalled(
    remote: &Remote,
    home: &std::path::Path,
    file: &str,
    name: &str,
    (slow_from, when): (&str, impl Fn(&str) -> bool),
    signal: libc::c_int,
) -> Run {
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(1500),
        response_delay_from: Some(slow_from.into()),
        ..Default::default()
    });
    let to = format!("new:{name}");
    let mut child = remote
        .xtask_command(home, &["restore", file, "--to", &to, "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !remote.server.requests().iter().any(|r| when(r)) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore ended before the request: {:#?}",
            remote.server.requests()
        );
        assert!(std::time::Instant::now() < deadline, "no such request");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: the pid of our own child, not yet reaped.
    unsafe { libc::kill(pid, signal) };
    let run = Run::from_output(child.wait_with_output().unwrap());
    remote.server.set_faults(d1_loopback::Faults::default());
    run
}

/// atkBC: Ctrl-C (or a SIGINT from a supervisor) while `wrangler d1
/// create` makes the new database. D1 has made it; the xtask stops and says
/// "the next run starts clean", with neither the database's name left in
/// the account nor the command that deletes it, which a failure at the
/// same point gives. The next run of the same command is then refused
/// (exit 3, "the account already has a D1 database of that name"), with
/// advice to restore "through an environment of the configuration".
#[test]
fn an_interrupt_as_the_new_database_is_created_says_it_was_left_and_how_to_delete_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    let run = restore_new_signalled(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        (&create_request(), |r: &str| {
            r.starts_with("POST ") && r.ends_with("/d1/database")
        }),
        libc::SIGINT,
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    // The premise: D1 made the database.
    assert!(
        remote.server.database_path("qbtime_db_restored").is_some(),
        "{:?}\n{}",
        remote.server.database_names(),
        run.all()
    );
    assert!(
        !run.stderr.contains("the next run starts clean"),
        "an interrupted restore that left a new database in the account says the next run \
         starts clean:\n{}",
        run.all()
    );
    assert!(
        run.stderr
            .contains("npx wrangler d1 delete qbtime_db_restored"),
        "the interrupted restore does not say how to delete the database it created:\n{}",
        run.all()
    );
}

/// atkBC: a SIGTERM (systemd, a CI timeout, `kill`) while the backup loads
/// into the new database. The error says the database holds all of the
/// backup or "what it held before", but not its id nor the command that
/// deletes it, which a failed load gives
/// (`a_failed_import_leaves_the_new_database_and_says_how_to_delete_it`):
/// the signal's message replaces the error that carried them. Running the
/// same command again is refused, as the name is taken, and said no more
/// than "pick another name": the refusal now says when the database was
/// created and how to delete it if it is the earlier run's leftover.
#[test]
fn an_interrupted_load_into_a_new_database_names_it_and_how_to_delete_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    let run = restore_new_signalled(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        ("/import", |r: &str| r.contains("/import")),
        libc::SIGTERM,
    );
    assert_eq!(run.code, Some(143), "{}", run.all());
    let listed = remote.wrangler_json(home.path(), &["d1", "list", "--json"]);
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == "qbtime_db_restored")
        .unwrap_or_else(|| panic!("no new database: {listed}\n{}", run.all()))["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        run.stderr.contains(&id),
        "the interrupted restore does not name the new database's id {id}:\n{}",
        run.all()
    );
    assert!(
        run.stderr
            .contains("npx wrangler d1 delete qbtime_db_restored"),
        "the interrupted restore does not say how to delete the database it created:\n{}",
        run.all()
    );

    let again = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        &["--yes"],
    );
    again.assert_refused(&format!(
        "already has a D1 database of that name (id {id}, created "
    ));
    assert!(
        again
            .stderr
            .contains("npx wrangler d1 delete qbtime_db_restored"),
        "the re-run does not say how to delete the leftover:\n{}",
        again.all()
    );
    assert!(
        remote.server.database_path("qbtime_db_restored").is_some(),
        "the re-run deleted the database"
    );
}

/// Points prod's binding at `name`, as the binding `--to new:` printed
/// says: its name and id replace qbtime_db_prod's in wrangler.toml.
fn move_prod_to(remote: &Remote, home: &std::path::Path, name: &str) {
    let listed = remote.wrangler_json(home, &["d1", "list", "--json"]);
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == name)
        .unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = remote.sb.path().join("wrangler.toml");
    let text = config_text(remote)
        .replace(
            "database_name = \"qbtime_db_prod\"",
            &format!("database_name = \"{name}\""),
        )
        .replace(
            &format!("database_id = \"{PROD_UUID}\""),
            &format!("database_id = \"{id}\""),
        );
    std::fs::write(&config, text).unwrap();
}

/// atkBC: the way back the README offers beside Time Travel: restore the
/// good backup into a new database, then point prod's binding at it. The
/// backup it was made from is now refused for prod (its manifest names
/// qbtime_db_prod's id), and the refusal says to "restore this one into the
/// environment it came from": prod, the very target refused. An operator
/// who needs it again (the new database was changed by mistake) is sent in
/// a circle; a way that works is `--to new:NAME` again.
#[test]
fn after_prod_is_moved_to_a_restored_database_its_backups_are_not_sent_back_to_prod() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        &["--yes"],
    )
    .assert_ok();
    move_prod_to(&remote, home.path(), "qbtime_db_restored");

    let run = remote.xtask(
        home.path(),
        &["restore", &file, "--to", "prod", "--replace", "--dry-run"],
    );
    if run.code != Some(0) {
        assert!(
            !run.stderr
                .contains("restore this one into the environment it came from"),
            "a backup of prod, refused for prod, is sent back to prod:\n{}",
            run.all()
        );
        assert!(
            run.stderr.contains("--to new:"),
            "the refusal names no way to restore prod's backup:\n{}",
            run.all()
        );
    }
}

/// atkBC: after prod's binding is moved to the database restored with
/// `--to new:`, and its first backup taken, `status` gives prod the last
/// drill of the old database's backup (PASS), although `list --env prod`
/// no longer counts that backup as prod's and no backup of the new
/// database was ever drilled.
#[test]
fn after_prod_is_moved_to_a_restored_database_status_does_not_give_it_the_old_ones_drill() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    let old = std::path::Path::new(&file)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    remote.xtask(home.path(), &["drill", "--yes"]).assert_ok();
    restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_restored",
        &["--yes"],
    )
    .assert_ok();
    move_prod_to(&remote, home.path(), "qbtime_db_restored");
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();

    // The premise: the old database's backup is no longer prod's.
    let list = remote.xtask(home.path(), &["list", "--env", "prod"]);
    list.assert_ok();
    assert!(!list.stdout.contains(&old), "{}", list.stdout);

    let status = remote.xtask(home.path(), &["status", "--env", "prod", "--json"]);
    status.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let prod = &json["environments"][0];
    assert_eq!(prod["database"], "qbtime_db_restored", "{json:#}");
    assert!(
        prod["last_drill"]["backup"] != old.as_str(),
        "status gives qbtime_db_restored the drill of {old}, a backup of qbtime_db_prod:\n{json:#}"
    );
}

/// The runbook's clean restore starts from a data-only backup. Taken to a
/// new database, it was refused with "Restore it with --clean"; with
/// `--clean` it was refused again ("--clean is not for a new database: it
/// restores with the backup's own schema into an empty database (the
/// default)"), which sends the operator back to the first refusal. The
/// refusal without `--clean` names `--clean` with new:NAME, which takes
/// it, and creates nothing.
#[test]
fn a_data_only_backup_taken_to_a_new_database_is_told_a_way_in_not_sent_in_a_circle() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    let file = file.as_str();

    let plain = restore_new(
        &remote,
        home.path(),
        file,
        "qbtime_db_fresh",
        &["--dry-run"],
    );
    assert_eq!(plain.code, Some(3), "{}", plain.all());
    assert!(
        plain.stderr.contains("--to new:qbtime_db_fresh --clean"),
        "the refusal does not name --clean with new:NAME as the way in:\n{}",
        plain.stderr
    );
    assert_eq!(create_requests(&remote), 0, "a refusal creates nothing");
    // The way it names is taken.
    let clean = restore_new(
        &remote,
        home.path(),
        file,
        "qbtime_db_fresh",
        &["--clean", "--dry-run"],
    );
    clean.assert_ok();
    assert_eq!(create_requests(&remote), 0, "a dry run creates nothing");
}

/// A data-only backup of prod, taken as `backup prod --data-only`.
fn data_only_prod_backup(remote: &Remote, home: &std::path::Path) -> String {
    let name = remote.backup_prod_with(home, &["--data-only"]);
    let file = remote.sb.backups().join(name);
    file.to_str().unwrap().to_owned()
}

/// Every table, index, trigger and view of a SQLite file but D1's own.
fn schema(db: &std::path::Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE sql NOT NULL \
             AND name NOT IN ('d1_migrations', 'sqlite_sequence') \
             AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn migrations_recorded(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM d1_migrations ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Binds prod's database as `QBTIME_DB` and moves the migrations to
/// `db/migrations`, as a project may; returns the configuration's text.
fn bind_as_qbtime_db_with_migrations_in_db(remote: &Remote) -> String {
    let text = config_text(remote)
        .replace("binding = \"DB\"", "binding = \"QBTIME_DB\"")
        .replace(
            "migrations_dir = \"migrations\"",
            "migrations_dir = \"db/migrations\"",
        );
    std::fs::write(remote.sb.path().join("wrangler.toml"), &text).unwrap();
    std::fs::create_dir(remote.sb.path().join("db")).unwrap();
    std::fs::rename(
        remote.sb.path().join("migrations"),
        remote.sb.path().join("db/migrations"),
    )
    .unwrap();
    text
}

/// The runbook's clean restore into a brand-new database, in one command:
/// `restore DATA-ONLY --to new:NAME --clean` creates the database, applies
/// the migrations of the backup's database through wrangler (here kept in
/// db/migrations, which the private configuration wrangler runs with must
/// name), loads the rows, checks them and prints the binding.
#[test]
fn a_data_only_backup_restores_clean_into_a_new_database_through_its_migrations() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let text = bind_as_qbtime_db_with_migrations_in_db(&remote);
    let file = data_only_prod_backup(&remote, home.path());

    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--yes", "--json"],
    );
    run.assert_ok();
    let path = remote
        .server
        .database_path("qbtime_db_fresh")
        .expect("the database was created");
    assert_eq!(create_requests(&remote), 1);
    assert_eq!(schema(&path), schema(&remote.db), "the migrations' schema");
    assert_eq!(counts(&path), counts(&remote.db), "rows equal prod's");
    let mut files: Vec<String> = std::fs::read_dir(remote.sb.path().join("db/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(migrations_recorded(&path), files);

    let listed = remote.wrangler_json(home.path(), &["d1", "list", "--json"]);
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == "qbtime_db_fresh")
        .unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    // wrangler applied them: `migrations apply` queries the database.
    assert!(
        remote
            .server
            .requests()
            .iter()
            .any(|r| r.starts_with("POST ") && r.ends_with(&format!("/{id}/query"))),
        "{:#?}",
        remote.server.requests()
    );
    assert!(run.stderr.contains("[x] content"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "[[d1_databases]]\nbinding = \"QBTIME_DB\"\ndatabase_name = \"qbtime_db_fresh\"\n\
             database_id = \"{id}\"\nmigrations_dir = \"db/migrations\""
        )),
        "{}",
        run.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["plan"]["mode"], "clean");
    assert_eq!(doc["plan"]["target"]["new"], true);
    assert_eq!(doc["result"]["database_id"], id.as_str());
    // The configuration is untouched, and wrangler made no migrations
    // directory of its own anywhere in the project.
    assert_eq!(config_text(&remote), text);
    assert!(!remote.sb.path().join("migrations").exists());
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );
}

#[test]
fn a_clean_dry_run_into_a_new_database_plans_the_create_the_migrations_and_the_load() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    let databases = remote.server.database_names();
    let requests = |remote: &Remote| {
        remote
            .server
            .requests()
            .iter()
            .filter(|r| r.contains("/query") || r.contains("/import"))
            .count()
    };
    let before = requests(&remote);
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--dry-run"],
    );
    run.assert_ok();
    for line in [
        "target       new:qbtime_db_fresh -> qbtime_db_fresh (remote D1, a new database",
        "first        npx wrangler d1 create qbtime_db_fresh (in the account",
        "mode         clean",
        "first        npx wrangler d1 migrations apply qbtime_db_fresh --remote",
        "loads        the dump's ",
        "Dry run: nothing was changed.",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in:\n{}", run.stdout);
    }
    assert_eq!(create_requests(&remote), 0, "a dry run creates nothing");
    assert_eq!(requests(&remote), before, "nor queries or imports anything");
    assert_eq!(remote.server.database_names(), databases);
}

/// `--clean` loads the rows into the schema today's migrations make: a
/// data-only backup taken at other migrations is refused before a new
/// database is created for it, as it is for an existing one; a full
/// backup, which brings its own schema, is told to drop --clean.
#[test]
fn a_clean_restore_into_a_new_database_is_refused_before_the_create_when_it_cannot_fit() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    std::fs::write(
        remote.sb.path().join("migrations/0005_extra.sql"),
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let databases = remote.server.database_names();
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--yes"],
    );
    run.assert_refused("the backup was taken with migrations [");
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(create_requests(&remote), 0, "nothing was created");
    assert_eq!(remote.server.database_names(), databases);
    std::fs::remove_file(remote.sb.path().join("migrations/0005_extra.sql")).unwrap();

    let full = prod_backup_among(&remote, home.path());
    let run = restore_new(
        &remote,
        home.path(),
        &full,
        "qbtime_db_fresh",
        &["--clean", "--yes"],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("without --clean") && !run.stderr.contains("d1 create"),
        "a full backup with --clean is not told to drop it:\n{}",
        run.stderr
    );
    assert_eq!(create_requests(&remote), 0, "nothing was created");
}

/// `backup prod` beside the backups already taken: its file.
fn prod_backup_among(remote: &Remote, home: &std::path::Path) -> String {
    let before = remote.sb.backup_files();
    remote.xtask(home, &["backup", "prod"]).assert_ok();
    let taken: Vec<String> = remote
        .sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql") && !before.contains(f))
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let file = remote.sb.backups().join(&taken[0]);
    file.to_str().unwrap().to_owned()
}

/// D1 refuses a migration (here the last one's record of itself) while
/// `migrations apply` runs on the new database: the restore stops before
/// any row is loaded, leaves the database and says how to delete it.
#[test]
fn a_failed_migrations_apply_leaves_the_new_database_named_and_loads_no_row() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("0004_audit_log.sql".to_owned()),
        ..Default::default()
    });
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--yes"],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr
            .contains("applying migrations to qbtime_db_fresh failed, so no rows were loaded"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the new D1 database qbtime_db_fresh (id ")
            && run
                .stderr
                .contains("was left in place and nothing was deleted")
            && run
                .stderr
                .contains("npx wrangler d1 delete qbtime_db_fresh --config "),
        "{}",
        run.stderr
    );
    let path = remote
        .server
        .database_path("qbtime_db_fresh")
        .expect("the new database was not deleted");
    assert!(
        !remote
            .server
            .requests()
            .iter()
            .any(|r| r.contains("/import")),
        "rows were loaded: {:#?}",
        remote.server.requests()
    );
    for (table, rows) in counts(&path) {
        if table != "d1_migrations" && table != "sqlite_sequence" {
            assert_eq!(rows, 0, "{table} has rows");
        }
    }
}

/// Ctrl-C (SIGINT to the whole process group, as a terminal sends it)
/// while `migrations apply` runs on the database `--clean` created: no
/// import was started, and wrangler applies each migration as its own
/// query, so some may be applied. The error said the load's outcome, "D1
/// ends an import it was given on its own, whole or not at all, so
/// qbtime_db_fresh holds either all of the backup or what it held before":
/// an operator reads that the new database may hold the whole backup. It
/// says the migrations were being applied and no row was loaded, with the
/// database left and how to delete it. Nothing outside the backup
/// directory changed, and the configuration is untouched.
#[test]
fn ctrl_c_during_a_clean_restores_migrations_says_no_row_was_loaded() {
    use std::os::unix::process::CommandExt;
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let decoys = common::decoys::Decoys::plant(remote.sb.path());
    let before = decoys.hashes();
    let file = data_only_prod_backup(&remote, home.path());
    let config = config_text(&remote);
    let (mut child, from) = slow_clean_restore_new(&remote, home.path(), &file, "/query", |cmd| {
        cmd.process_group(0);
    });
    // The new database's first query: `migrations apply`.
    wait_for_request(&remote, &mut child, from, |r| r.ends_with("/query"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let group = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: the process group of our own child, not yet reaped.
    unsafe { libc::kill(-group, libc::SIGINT) };
    let run = Run::from_output(child.wait_with_output().unwrap());
    remote.server.set_faults(d1_loopback::Faults::default());
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(
        !remote.server.requests()[from..]
            .iter()
            .any(|r| r.contains("/import")),
        "the premise: no import was started"
    );
    assert!(
        !run.stderr.contains("holds either all of the backup")
            && run
                .stderr
                .contains("applying the migrations to qbtime_db_fresh")
            && run.stderr.contains("no row of the backup was loaded")
            && run
                .stderr
                .contains("npx wrangler d1 delete qbtime_db_fresh"),
        "{}",
        run.all()
    );
    assert_eq!(decoys.hashes(), before);
    assert_eq!(config_text(&remote), config);
}

/// A dump without a manifest, restored `--clean` into a new database with
/// no `--source-env`, says nothing of which database's migrations make its
/// schema. The new database's own default, `migrations/`, was taken: with
/// the project's migrations in db/migrations the restore stopped with
/// "cannot read .../migrations: No such file or directory", naming no way
/// on; with a stale `migrations/` directory beside them, it judged the dump
/// by that. It is refused, naming --source-env; with it, the plan applies
/// that environment's migrations.
#[test]
fn a_clean_restore_of_a_dump_without_a_manifest_into_a_new_database_asks_for_source_env() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    bind_as_qbtime_db_with_migrations_in_db(&remote);
    let file = data_only_prod_backup(&remote, home.path());
    let copy = remote.sb.path().join("handmade.sql");
    std::fs::copy(&file, &copy).unwrap();
    let copy = copy.to_str().unwrap();
    let plain = ["--no-manifest", "--clean", "--dry-run"];
    let run = restore_new(&remote, home.path(), copy, "qbtime_db_fresh", &plain);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("--source-env") && !run.stderr.contains("os error"),
        "{}",
        run.all()
    );
    std::fs::create_dir(remote.sb.path().join("migrations")).unwrap();
    std::fs::write(
        remote.sb.path().join("migrations/0001_other.sql"),
        "CREATE TABLE other(x);\n",
    )
    .unwrap();
    let run = restore_new(&remote, home.path(), copy, "qbtime_db_fresh", &plain);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("--source-env"), "{}", run.all());
    let named = [
        "--no-manifest",
        "--source-env",
        "prod",
        "--clean",
        "--dry-run",
    ];
    let run = restore_new(&remote, home.path(), copy, "qbtime_db_fresh", &named);
    run.assert_ok();
    assert!(
        run.stdout.contains(&format!(
            "the migrations in {}",
            remote.sb.path().join("db/migrations").display()
        )),
        "{}",
        run.stdout
    );
    assert_eq!(create_requests(&remote), 0);
}

/// A backup recorded under a short name prod no longer has (`APP_ENV`
/// renamed from `prod` to `live`) is still prod's database's: every other
/// command finds it so, by its database's name and id. `--to new:NAME
/// --clean` looked its migrations up by the recorded name alone, found no
/// environment, and took the new database's default `migrations/`:
/// "cannot read .../migrations", with the project's migrations in
/// db/migrations. It applies the migrations of the database the backup
/// was taken from.
#[test]
fn a_clean_restore_into_a_new_database_finds_the_migrations_of_a_renamed_environment() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let text = bind_as_qbtime_db_with_migrations_in_db(&remote);
    let file = data_only_prod_backup(&remote, home.path());
    std::fs::write(
        remote.sb.path().join("wrangler.toml"),
        text.replace("APP_ENV = \"prod\"", "APP_ENV = \"live\""),
    )
    .unwrap();
    let settings = remote.sb.path().join("backups.toml");
    let renamed = std::fs::read_to_string(&settings)
        .unwrap()
        .replace("[prod", "[live");
    std::fs::write(&settings, renamed).unwrap();
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--dry-run"],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains(&format!(
            "the migrations in {}",
            remote.sb.path().join("db/migrations").display()
        )),
        "{}",
        run.all()
    );
    // The binding printed after it is the one prod's database has.
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--yes"],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("binding = \"QBTIME_DB\"")
            && run.stdout.contains("migrations_dir = \"db/migrations\""),
        "{}",
        run.all()
    );
}

/// A backup whose manifest names a database no environment has now (prod
/// moved to another database since; a backup from another checkout)
/// says, like a dump without a manifest, nothing of which migrations make
/// its schema. `--to new:NAME --clean` took the new database's default
/// `migrations/` ("cannot read .../migrations", with the project's in
/// db/migrations), and `--source-env` was not asked for. It asks for
/// `--source-env`, or applies the migrations of the environment named.
#[test]
fn a_clean_restore_into_a_new_database_of_a_backup_of_no_configured_database_asks_for_source_env() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let text = bind_as_qbtime_db_with_migrations_in_db(&remote);
    let file = data_only_prod_backup(&remote, home.path());
    assert!(text.contains("\"qbtime_db_prod\""), "{text}");
    // The configuration moves prod to another database (and gives staging
    // other migrations): no environment names the manifest's database now.
    std::fs::write(
        remote.sb.path().join("wrangler.toml"),
        text.replace("\"qbtime_db_prod\"", "\"qbtime_db_prod_v2\"")
            .replace(
                "database_id = \"5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c\"\nmigrations_dir = \"db/migrations\"",
                "database_id = \"5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c\"\nmigrations_dir = \"staging-migrations\"",
            ),
    )
    .unwrap();
    let staging_dir = remote.sb.path().join("staging-migrations");
    std::fs::create_dir(&staging_dir).unwrap();
    std::fs::write(
        staging_dir.join("0001_other.sql"),
        "CREATE TABLE other (id INTEGER);\n",
    )
    .unwrap();
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--dry-run"],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("add --source-env ENV"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("os error"), "{}", run.all());

    // --source-env beside the manifest names whose migrations and binding
    // the new database gets; the manifest's checks still hold.
    let said = ["--clean", "--source-env", "prod"];
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &[&said[..], &["--dry-run"]].concat(),
    );
    run.assert_ok();
    let migrations_in_db = format!(
        "the migrations in {}",
        remote.sb.path().join("db/migrations").display()
    );
    assert!(run.stdout.contains(&migrations_in_db), "{}", run.stdout);
    assert_eq!(create_requests(&remote), 0);

    // Named wrongly (another environment's migrations): refused by the
    // manifest's record of its migrations, before anything is created.
    let wrong = ["--clean", "--source-env", "staging", "--yes"];
    let run = restore_new(&remote, home.path(), &file, "qbtime_db_fresh", &wrong);
    assert!(!run.ok && run.code != Some(0), "{}", run.all());
    assert!(run.stderr.contains("migrations"), "{}", run.stderr);
    assert_eq!(create_requests(&remote), 0);

    // Into an existing database the flag would override the manifest's own
    // record: refused, nothing run.
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            &file,
            "--to",
            "staging",
            "--clean",
            "--source-env",
            "prod",
            "--yes",
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("only for --to new:NAME"),
        "{}",
        run.stderr
    );

    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &[&said[..], &["--yes"]].concat(),
    );
    run.assert_ok();
    let path = remote
        .server
        .database_path("qbtime_db_fresh")
        .expect("the database was created");
    assert_eq!(create_requests(&remote), 1);
    assert_eq!(schema(&path), schema(&remote.db), "the migrations' schema");
    assert_eq!(counts(&path), counts(&remote.db), "rows equal prod's");
    assert!(
        run.all().contains("binding = \"QBTIME_DB\""),
        "{}",
        run.all()
    );
}

/// `--source-env` beside a manifest whose database an environment records
/// would do nothing or contradict the manifest: refused, nothing created.
#[test]
fn source_env_beside_a_manifest_that_names_its_environment_is_refused() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    for env in ["prod", "staging"] {
        let run = restore_new(
            &remote,
            home.path(),
            &file,
            "qbtime_db_fresh",
            &["--clean", "--source-env", env, "--yes"],
        );
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr
                .contains("manifest records that it was taken from prod")
                && run.stderr.contains("drop --source-env"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(create_requests(&remote), 0);
}

/// rvCA: `--to new:NAME --clean` makes the new database's schema by
/// applying the migrations to it, empty: one that drops an index made by
/// hand (it applied to prod, and fails on an empty database) was refused
/// in migrate's words, "`cargo xtask migrate ...`", which migrates no new
/// database. It is refused (exit 3) before the create, the dry run too, in
/// restore's words: the migrations cannot make it from nothing (file and
/// statement), the fix, no database created.
#[test]
fn a_clean_restore_into_a_new_database_refuses_a_migration_that_cannot_apply_to_an_empty_one() {
    let said = [
        "0005_drop_hand.sql: its statement 1",
        "cannot make it from nothing",
        "IF EXISTS",
    ];
    refused_into_new_in_restores_words("0005_drop_hand.sql", "DROP INDEX hand_idx;\n", &said);
}

/// OI 1: a trigger whose body names a table no migration makes (so
/// whether it writes d1_migrations cannot be known) was refused in
/// migrate's words to a user restoring into a new database; then (OU 1)
/// in restore's own, "make what its body names in that migration or one
/// before it, or take the trigger out": an edit of a migration prod
/// applied. None of the migrations the restore applies can fire it, so
/// its dry run plans the restore (exit 0), warning of the trigger and
/// naming the migration, as of a faulty foreign key D1 applies, and no
/// advice names migrate.
#[test]
fn a_clean_restore_into_a_new_database_warns_of_an_unjudged_trigger_d1_applies() {
    let migration = crate::migrate_local::UNJUDGED_T5;
    let warned = crate::migrate_local::warned_of_unjudged_t5;
    dry_run_into_new_goes_ahead(migration, warned);
}

/// The dry run of a clean restore into `new:scratch1` of the runbook's
/// hand export of a prod that applied `migration` (name, SQL), also in
/// migrations/: it plans the restore (exit 0), `warned`, no advice naming
/// migrate, nothing created.
fn dry_run_into_new_goes_ahead((name, sql): (&str, &str), warned: fn(&Run) -> bool) {
    let (remote, home, file) = prod_that_applied((name, sql), sql);
    let file = file.to_str().unwrap();
    let hand = ["--clean", "--no-manifest", "--source-env", "prod"];
    let hand = [&hand[..], &["--dry-run"]].concat();
    let run = restore_new(&remote, home.path(), file, "scratch1", &hand);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(warned(&run), "{}", run.all());
    assert!(!run.all().contains("cargo xtask migrate"), "{}", run.all());
    assert_eq!(create_requests(&remote), 0, "a dry run creates nothing");
}

/// A prod whose d1_migrations records the migration (name, SQL), also
/// written into migrations/, having run `ran` (the migration's SQL, or
/// none), the home its commands run with, and the runbook's hand export
/// of it.
fn prod_that_applied(
    (name, sql): (&str, &str),
    ran: &str,
) -> (Remote, tempfile::TempDir, std::path::PathBuf) {
    let remote = Remote::new(&format!(
        "{ran}INSERT INTO d1_migrations (name) VALUES ('{name}');"
    ));
    let home = tempfile::tempdir().unwrap();
    std::fs::write(remote.sb.path().join("migrations").join(name), sql).unwrap();
    let file = hand_export_of_prod(&remote, home.path());
    (remote, home, file)
}

/// Writes `sql` as the migration `name`, applied to prod (recorded in its
/// d1_migrations) and the runbook's hand export of prod taken (a backup's
/// verify applies every migration to an empty database too, and cannot
/// run): `restore --to new:qbtime_db_fresh --clean` refuses it (exit 3),
/// the dry run too, saying `said` in restore's words, never migrate's,
/// before the create.
fn refused_into_new_in_restores_words(name: &str, sql: &str, said: &[&str]) {
    let (remote, home, file) = prod_that_applied((name, sql), "");
    let file = file.to_str().unwrap();
    let databases = remote.server.database_names();
    for last in ["--dry-run", "--yes"] {
        let hand = ["--clean", "--no-manifest", "--source-env", "prod", last];
        let run = restore_new(&remote, home.path(), file, "qbtime_db_fresh", &hand);
        assert_eq!(run.code, Some(3), "{last}:\n{}", run.all());
        assert!(
            run.stderr
                .contains("refusing to restore into new:qbtime_db_fresh")
                && said.iter().all(|s| run.stderr.contains(s))
                && run.stderr.contains("no database was created")
                && !run.stderr.contains("cargo xtask migrate")
                && !run.stderr.contains("no backup was taken"),
            "{last}:\n{}",
            run.all()
        );
        assert_eq!(create_requests(&remote), 0, "{last}: nothing was created");
        assert_eq!(remote.server.database_names(), databases);
    }
}

/// The runbook's hand export (`wrangler d1 export --remote --no-schema`)
/// of a prod whose schema drifted from its migrations (a column added by
/// hand, a table the app made itself): its rows name a column and a table
/// that `migrations apply` never makes, so the clean restore into a new
/// database could only fail at the load, after the create. It is refused
/// before the create (the dry run too), naming the table and the column,
/// never quoting a row.
#[test]
fn a_clean_restore_into_a_new_database_of_rows_the_migrations_have_no_place_for_is_refused_before_the_create()
 {
    let remote = Remote::new(
        "ALTER TABLE customers ADD COLUMN nickname TEXT;\n\
         UPDATE customers SET nickname = 'secret-nick';\n\
         CREATE TABLE made_by_app (id INTEGER PRIMARY KEY, note TEXT);\n\
         INSERT INTO made_by_app VALUES (1, 'secret-note');\n",
    );
    let home = tempfile::tempdir().unwrap();
    let file = hand_export_of_prod(&remote, home.path());
    let file = file.to_str().unwrap();
    let databases = remote.server.database_names();
    let hand = ["--clean", "--no-manifest", "--source-env", "prod"];
    for last in ["--dry-run", "--yes"] {
        let mut more = hand.to_vec();
        more.push(last);
        let run = restore_new(&remote, home.path(), file, "qbtime_db_fresh", &more);
        assert!(!run.ok, "{last} should be refused:\n{}", run.all());
        assert!(
            run.stderr.contains("customers") && run.stderr.contains("nickname"),
            "{last}: the refusal names the table and the column:\n{}",
            run.all()
        );
        assert!(
            !run.all().contains("secret-"),
            "{last}: a row value was quoted:\n{}",
            run.all()
        );
        assert_eq!(create_requests(&remote), 0, "{last}: nothing was created");
        assert_eq!(remote.server.database_names(), databases);
    }
}

/// `--clean` loads a data-only dump's rows into the schema the migrations
/// make, which the restore knows before anything runs. A dump with rows
/// for a table the migrations do not make (its `CREATE TABLE` dropped, as
/// `--clean` drops all of a dump's DDL), or for a column they do not give
/// a table, passed the preflight: the new database was created, the
/// migrations applied, and the import then failed (`no such table`),
/// leaving a database to delete by hand. It is refused before the create,
/// naming the table and not the row's values.
#[test]
fn a_clean_restore_of_rows_the_migrations_schema_cannot_hold_is_refused_before_the_create() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    let good = std::fs::read_to_string(&file).unwrap();
    let databases = remote.server.database_names();
    for (what, extra, named) in [
        (
            "a table the migrations do not make",
            "CREATE TABLE planted(x);\nINSERT INTO \"planted\" VALUES('zq-row-value');\n",
            "planted",
        ),
        (
            "a column the migrations do not give",
            "INSERT INTO \"accounts\" (\"planted_col\") VALUES('zq-row-value');\n",
            "accounts",
        ),
    ] {
        let copy = remote.sb.path().join("handmade.sql");
        std::fs::write(&copy, format!("{good}{extra}")).unwrap();
        let run = restore_new(
            &remote,
            home.path(),
            copy.to_str().unwrap(),
            "qbtime_db_fresh",
            &["--no-manifest", "--source-env", "prod", "--clean", "--yes"],
        );
        assert!(!run.ok, "{what}: restored\n{}", run.all());
        assert_eq!(
            create_requests(&remote),
            0,
            "{what}: a database was created\n{}",
            run.all()
        );
        assert_eq!(remote.server.database_names(), databases, "{what}");
        assert!(
            run.stderr.contains(named) && run.stderr.contains("nothing was done"),
            "{what}: the refusal does not name {named}\n{}",
            run.all()
        );
        assert!(
            !run.all().contains("zq-row-value"),
            "{what}: a value printed\n{}",
            run.all()
        );
    }
}

/// In a pipe, the export of the new database that the content check reads
/// says how much has arrived, as a backup's download does, not only how
/// long it has run.
#[test]
fn the_export_again_of_a_new_database_says_the_bytes_it_has_received() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    let size = std::fs::metadata(&file).unwrap().len();
    // The export back takes about eight seconds: past the first progress line.
    remote.server.set_faults(d1_loopback::Faults {
        download_bytes_per_sec: Some(size / 8 + 1),
        ..Default::default()
    });
    let run = restore_new(&remote, home.path(), &file, "qbtime_db_fresh", &["--yes"]);
    run.assert_ok();
    let lines: Vec<&str> = (run.stderr.lines())
        .filter(|l| l.contains("… wrangler: export qbtime_db_fresh"))
        .collect();
    assert!(!lines.is_empty(), "{}", run.stderr);
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" s): ") && l.contains("B/s")),
        "{lines:#?}"
    );
}

/// rvDP: `--source-env` beside a manifest whose database no environment
/// names now was taken whatever the manifest says it was taken from: a
/// staging backup (staging's database renamed since) restored to a new
/// database `--source-env prod` got prod's migrations and binding, and the
/// advice to move prod onto it; only production's backups go there. The
/// flag may say which environment's database it is now, never another
/// environment than the manifest's.
#[test]
fn source_env_beside_a_manifest_never_names_another_environment_than_the_manifests() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    std::fs::copy(&remote.db, &remote.staging).unwrap();
    remote
        .xtask(home.path(), &["backup", "staging", "--data-only"])
        .assert_ok();
    let file = remote.sb.backups().join(only_backup(&remote.sb));
    let file = file.to_str().unwrap();
    let text = config_text(&remote);
    assert!(text.contains("\"qbtime_db_staging\""), "{text}");
    std::fs::write(
        remote.sb.path().join("wrangler.toml"),
        text.replace("\"qbtime_db_staging\"", "\"qbtime_db_staging_v2\""),
    )
    .unwrap();

    let run = restore_new(
        &remote,
        home.path(),
        file,
        "qbtime_db_fresh",
        &["--clean", "--source-env", "prod", "--yes"],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("taken from staging") && run.stderr.contains("--source-env staging"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("To move prod onto it"), "{}", run.all());
    assert_eq!(create_requests(&remote), 0);

    // Its own environment's name is taken: staging's migrations and binding.
    let run = restore_new(
        &remote,
        home.path(),
        file,
        "qbtime_db_fresh",
        &["--clean", "--source-env", "staging", "--dry-run"],
    );
    run.assert_ok();
}

/// With the account given only under wrangler's older name
/// `CF_ACCOUNT_ID` (which wrangler reads when `CLOUDFLARE_ACCOUNT_ID` is
/// not set), and no `account_id` in the configuration, the new database is
/// made in that account, but the advice to delete it after a failed load
/// did not pin the account, as it does for `CLOUDFLARE_ACCOUNT_ID`: pasted
/// in a shell set for another account, it acts there.
#[test]
fn the_advice_pins_an_account_given_as_cf_account_id() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    remote.server.set_faults(d1_loopback::Faults {
        ingest_fail_after: Some(20),
        ..Default::default()
    });
    let mut cmd = remote.xtask_command(
        home.path(),
        &["restore", &file, "--to", "new:qbtime_db_broken", "--yes"],
    );
    cmd.env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env("CF_API_TOKEN", TOKEN)
        .env("CF_ACCOUNT_ID", ACCOUNT);
    let run = Run::from_output(cmd.output().unwrap());
    run.assert_refused("the new D1 database qbtime_db_broken (id ");
    assert!(
        remote.server.database_path("qbtime_db_broken").is_some(),
        "wrangler read CF_ACCOUNT_ID and made the database in that account:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains(&format!(
            "delete it with `CLOUDFLARE_ACCOUNT_ID={ACCOUNT} npx wrangler d1 delete \
             qbtime_db_broken"
        )),
        "{}",
        run.all()
    );
    assert!(
        run.all()
            .contains(&format!("(in the account {ACCOUNT} (CF_ACCOUNT_ID);")),
        "the plan names the account and where it is read from:\n{}",
        run.all()
    );
    assert!(!run.all().contains(TOKEN), "{}", run.all());
}

/// The backup of `restore_remote::remote_with_a_commented_backup`
/// (objects ending in a `--` comment, one holding `*/`) restored into a
/// new database: as into staging, the plan (a dry run's, which creates
/// nothing, too) says per object that its comment is written as a `/* */`
/// one or dropped, and the new database keeps no text ending in a `--`
/// comment, so that it can be backed up once an environment binds it.
#[test]
fn a_restore_into_a_new_database_closes_trailing_line_comments() {
    use crate::restore_remote::{CLOSED_COMMENTS, object_sql, remote_with_a_commented_backup};
    let (remote, home, file) = remote_with_a_commented_backup();
    let file = file.as_str();
    let name = "qbtime_db_restored";
    let dry = restore_new(&remote, home.path(), file, name, &["--yes", "--dry-run"]);
    dry.assert_ok();
    assert_eq!(create_requests(&remote), 0, "a dry run creates nothing");
    let run = restore_new(&remote, home.path(), file, name, &["--yes"]);
    run.assert_ok();
    for said in CLOSED_COMMENTS {
        for run in [&dry, &run] {
            assert!(run.stdout.contains(said), "{said:?} unsaid: {}", run.all());
        }
    }
    let sql = object_sql(&remote.server.database_path(name).unwrap());
    assert_eq!(sql.len(), 3, "{sql:?}");
    for (object, text) in &sql {
        let text = text.trim_end();
        assert!(
            !d1_sql::statements::ends_in_a_line_comment(text),
            "{object}: {text}"
        );
    }
    assert!(
        sql["shifts_live"].ends_with("/* live rows only */"),
        "{sql:?}"
    );
}

/// `restore FILE --to new:qbtime_db_fresh --clean --yes` started (with
/// `more` done to its command) against a loopback that answers every
/// request 1.5 s late from the first whose `METHOD URL` contains
/// `slow_from` on (those before it at once), and how many requests the
/// server had had then.
fn slow_clean_restore_new(
    remote: &Remote,
    home: &std::path::Path,
    file: &str,
    slow_from: &str,
    more: impl FnOnce(&mut std::process::Command),
) -> (std::process::Child, usize) {
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(1500),
        response_delay_from: Some(slow_from.into()),
        ..Default::default()
    });
    let args = [
        "restore",
        file,
        "--to",
        "new:qbtime_db_fresh",
        "--clean",
        "--yes",
    ];
    let mut cmd = remote.xtask_command(home, &args);
    more(&mut cmd);
    let from = remote.server.requests().len();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (child, from)
}

/// The request line of `wrangler d1 create` (`POST` of the account's
/// databases), as the loopback logs it.
fn create_request() -> String {
    format!("POST /client/v4/accounts/{ACCOUNT}/d1/database")
}

/// Waits, two minutes at most, for a request past the first `from` that
/// `matches`, while `child` runs.
fn wait_for_request(
    remote: &Remote,
    child: &mut std::process::Child,
    from: usize,
    matches: impl Fn(&str) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !remote.server.requests()[from..].iter().any(|r| matches(r)) {
        assert!(child.try_wait().unwrap().is_none(), "ended before it");
        assert!(std::time::Instant::now() < deadline, "no such request");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// rvAP: a migration edited after the plan of `restore --to new:NAME
/// --clean` (while `d1 create` is answered) was refused, "nothing was
/// restored", but the new database had been created first and was left,
/// empty, in the account. Cause: steps/restore/mod.rs `restore` staged the
/// migrations only after `NewDatabase::create`. Staged first, the files
/// the plan read are what wrangler applies, and an edit made past that is
/// no refusal; a refusal never leaves a database it created.
#[test]
fn a_migration_edited_as_the_new_database_is_created_leaves_no_empty_database() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    let migrations = remote.sb.path().join("migrations");
    let mut first: Vec<_> = std::fs::read_dir(&migrations)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    first.sort();
    let first = first.remove(0);
    let create = create_request();
    let (mut child, from) = slow_clean_restore_new(&remote, home.path(), &file, &create, |_| {});
    wait_for_request(&remote, &mut child, from, |r| {
        r.starts_with("POST ") && r.ends_with("/d1/database")
    });
    let mut text = std::fs::read_to_string(&first).unwrap();
    text.push_str("\n-- edited after the plan\n");
    std::fs::write(&first, text).unwrap();
    remote.server.set_faults(d1_loopback::Faults::default());
    let run = Run::from_output(child.wait_with_output().unwrap());
    let left = remote.server.database_path("qbtime_db_fresh").is_some();
    assert!(
        run.ok || !left,
        "refused, and the database it created was left:\n{}",
        run.all()
    );
    run.assert_ok();
}

/// LV: a restore into a database it creates takes no safety backup, and
/// left no record `status` reads: once prod is moved onto the restored
/// database, its status said nothing of the restore that made it. It
/// names that restore (when, from which backup, done), found by the new
/// database's id, in the text and in `--json`'s `last_restore`.
#[test]
fn status_names_the_restore_that_made_the_database_prod_was_moved_to() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod(home.path());
    let file = remote.sb.backups().join(&name);
    let file = file.to_str().unwrap();
    restore_new(&remote, home.path(), file, "qbtime_db_restored", &["--yes"]).assert_ok();
    move_prod_to(&remote, home.path(), "qbtime_db_restored");

    let text = remote.xtask(home.path(), &["status", "--env", "prod", "-v"]);
    let line = text.stdout_line_with("last restore ");
    assert!(
        line.contains(&name) && line.contains("done"),
        "{}",
        text.all()
    );
    let status = remote.xtask(home.path(), &["status", "--env", "prod", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let prod = &json["environments"][0];
    assert_eq!(prod["last_restore"]["backup"], name.as_str(), "{json:#}");
    assert_eq!(prod["last_restore"]["status"], "done", "{json:#}");
}

/// rvBQ 4: a migration the backup does not record, pending once the
/// backup is restored into a database the restore creates, was said to be
/// "pending already before this restore", of a database not there before
/// it. It is said as the restore's: the backup predates it.
#[test]
fn a_migration_pending_in_a_new_database_is_not_said_pending_before_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    std::fs::write(
        remote.sb.path().join("migrations/0005_extra.sql"),
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let run = restore_new(&remote, home.path(), &file, "qbtime_db_x", &["--dry-run"]);
    run.assert_ok();
    assert!(
        run.all().contains("0005_extra.sql") && run.all().contains("which the backup predates"),
        "{}",
        run.all()
    );
    assert!(
        !run.all().contains("pending already"),
        "a database the restore creates had nothing pending before it:\n{}",
        run.all()
    );
}

/// rvBS 3: a backup of local restored into a new database printed "To
/// move local onto it, put it in place of qbtime_db_local's entry at the
/// top level": the top level is the local D1 on this machine, which no
/// remote database replaces. It says so, and where a remote database goes.
#[test]
fn a_local_backup_in_a_new_database_is_not_advised_onto_the_local_entry() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.sb.apply_migrations();
    remote.sb.execute_sql(SEED_SQL);
    remote.sb.xtask(&["backup", "local"]).assert_ok();
    let file = remote.sb.backups().join(only_backup(&remote.sb));
    let run = restore_new(
        &remote,
        home.path(),
        file.to_str().unwrap(),
        "qbtime_db_from_local",
        &["--yes"],
    );
    run.assert_ok();
    assert!(
        !run.all().contains("To move local onto it"),
        "{}",
        run.all()
    );
    assert!(
        run.all().contains(
            "local's entry at the top level is the local D1 on this machine, which no remote \
             database replaces"
        ),
        "{}",
        run.all()
    );
}

/// rvCB 2: with a migration D1 applies although it leaves a foreign key
/// whose parent key is not UNIQUE (prod applied it; the tool forbids
/// editing it), a clean restore into a new database was refused "fix that
/// migration", naming `cargo xtask migrate new:NAME --dry-run`, which
/// cannot run. Its dry run plans the restore (exit 0), warning of the
/// key and naming the migration, and no advice names migrate.
#[test]
fn a_clean_restore_into_a_new_database_warns_of_a_faulty_foreign_key_d1_applies() {
    let migration = crate::migrate_local::MISMATCHED_PC;
    let warned = crate::migrate_local::warned_of_pcs_faulty_key;
    dry_run_into_new_goes_ahead(migration, warned);
}

/// PJ: a data-only backup of prod holding an empty table no migration
/// makes, restored `--clean` into a new database: the plan says t is not
/// made, and the restore ends verified with prod's other rows.
#[test]
fn a_clean_restore_into_a_new_database_leaves_out_an_empty_table_no_migration_makes() {
    let remote = Remote::new("CREATE TABLE t(a);");
    let home = tempfile::tempdir().unwrap();
    let file = data_only_prod_backup(&remote, home.path());
    let run = restore_new(
        &remote,
        home.path(),
        &file,
        "qbtime_db_fresh",
        &["--clean", "--yes"],
    );
    run.assert_ok();
    assert!(
        run.stdout_line_with("LOSES").contains("table t"),
        "{}",
        run.all()
    );
}
