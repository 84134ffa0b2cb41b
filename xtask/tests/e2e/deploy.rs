//! The deploy (`cargo xtask deploy`, run by `.github/workflows/deploy.yml`)
//! end to end against the loopback, as the scheduled job is tested: with a
//! pending migration, without one, and with one that fails. Then applied
//! migrations that cannot change silently: `migrate`, `restore --clean`,
//! `migrate --check` and the deploy each refuse an edited one. And the
//! pre-push hook's warning. The Pages deploy is replaced by a harmless
//! command through `QBTIME_PAGES_DEPLOY` (a real one needs Cloudflare).

use crate::common;

use std::path::Path;

use common::remote::*;
use common::*;
use yaml_rust2::{Yaml, YamlLoader};

const BUCKET: &str = "qbtime-d1-backups";

/// The deploy as the workflow runs it, with the Pages deploy appending a
/// line to `deployed.log` in the sandbox.
fn deploy(remote: &Remote, home: &Path, args: &[&str]) -> Run {
    let mut all = vec!["deploy"];
    all.extend_from_slice(args);
    let mut cmd = remote.xtask_command(home, &all);
    cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log");
    Run::from_output(cmd.output().unwrap())
}

/// prod deployed from main, confirmed by its database's name.
const PROD_FROM_MAIN: &[&str] = &["prod", "--branch", "main", "--confirm", "qbtime_db_prod"];

fn deployed(remote: &Remote) -> bool {
    remote.sb.path().join("deployed.log").exists()
}

/// Prod's bucket exists and prod's backups are encrypted to a fresh key.
fn encrypted_offsite(remote: &Remote, home: &Path) -> std::path::PathBuf {
    remote.server.add_bucket(BUCKET);
    let key = home.join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home, &["keygen", "--out", key.to_str().unwrap()]));
    encrypt_backups_of(&remote.sb, "prod", &recipient);
    key
}

fn requests_to(remote: &Remote, path: &str) -> usize {
    remote
        .server
        .requests()
        .iter()
        .filter(|r| r.contains(path))
        .count()
}

#[track_caller]
fn in_order(text: &str, needles: &[&str]) {
    let mut at = 0;
    for needle in needles {
        match text[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("{needle:?} missing or out of order in:\n{text}"),
        }
    }
}

fn workflow() -> Yaml {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/deploy.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// The `run:` lines of a job's steps, in order.
fn runs(job: &Yaml) -> Vec<String> {
    job["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_workflow_deploys_prod_from_main_confirmed_by_name_in_an_environment_one_at_a_time() {
    let wf = workflow();
    let push: Vec<&str> = wf["on"]["push"]["branches"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert_eq!(push, ["main", "preview/**"]);
    assert!(!wf["on"]["workflow_dispatch"].is_badvalue());

    let prod = &wf["jobs"]["prod"];
    assert_eq!(prod["if"].as_str(), Some("github.ref == 'refs/heads/main'"));
    assert_eq!(prod["environment"].as_str(), Some("production"));
    let staging = &wf["jobs"]["staging"];
    assert_eq!(staging["environment"].as_str(), Some("preview"));
    let prod_group = prod["concurrency"]["group"].as_str().unwrap();
    let staging_group = staging["concurrency"]["group"].as_str().unwrap();
    assert_ne!(prod_group, staging_group, "one group per database");
    for job in [prod, staging] {
        assert_eq!(
            job["concurrency"]["cancel-in-progress"].as_bool(),
            Some(false)
        );
    }

    // Install first, then the site's build (a marked step the app fills
    // in, which does nothing without a build script), then the one command
    // that is the whole deploy.
    let prod_runs = runs(prod);
    assert_eq!(prod_runs.len(), 3, "{prod_runs:?}");
    assert!(prod_runs[0].starts_with("npm ci"), "{prod_runs:?}");
    for job in [prod, staging] {
        let build = &job["steps"].as_vec().unwrap()[4];
        assert!(
            build["name"]
                .as_str()
                .unwrap_or_default()
                .contains("build the site")
                && build["run"].as_str() == Some("npm run build --if-present"),
            "{build:?}"
        );
    }
    assert_eq!(
        prod_runs[2],
        "cargo xtask deploy prod --branch \"$BRANCH\" --confirm qbtime_db_prod"
    );
    assert!(
        prod_runs.iter().all(|r| !r.contains("--yes")),
        "never --yes for prod: {prod_runs:?}"
    );
    let staging_runs = runs(staging);
    assert!(
        staging_runs[2].starts_with("cargo xtask deploy staging ")
            && staging_runs[2].contains("--yes"),
        "{staging_runs:?}"
    );

    // No artifacts: nothing a backup could leak through.
    for job in [prod, staging] {
        for step in job["steps"].as_vec().unwrap() {
            let uses = step["uses"].as_str().unwrap_or_default();
            assert!(!uses.contains("upload-artifact"), "{uses}");
        }
    }
}

#[test]
fn a_pending_migration_is_backed_up_encrypted_and_offsite_then_migrated_then_deployed() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());

    // The workflow's own line, as a dry run: the order it will follow.
    let wf = workflow();
    let line = runs(&wf["jobs"]["prod"])[2].clone();
    let args: Vec<String> = line
        .trim_start_matches("cargo xtask deploy ")
        .replace("\"$BRANCH\"", "main")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut dry: Vec<&str> = args.iter().map(String::as_str).collect();
    dry.push("--dry-run");
    let run = deploy(&remote, home.path(), &dry);
    run.assert_ok();
    in_order(
        &run.stdout,
        &[
            "pending      0004_audit_log.sql",
            "Deploy plan: doctor -> pending migrations -> backup (encrypted, verified, offsite) \
             -> migrate with that backup -> Pages deploy -> status",
        ],
    );
    assert!(remote.sb.backup_files().iter().all(|f| f == ".lock"));
    assert!(!deployed(&remote));

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = deploy(&remote, home.path(), &args);
    run.assert_ok();
    in_order(
        &run.stdout,
        &[
            "doctor: no problem found",
            "Pre-migration backup ",
            "reads back as",
            "Applied 1 migration to qbtime_db_prod.",
            "Pages deploy: echo deployed",
            "newest verified backup",
            "deploy of prod: done (1 migration applied after the backup backup-prod-",
        ],
    );
    assert!(deployed(&remote));
    assert_eq!(counts(&remote.db)["d1_migrations"], 4);
    // JL: the line names what d1_migrations gained, not the plan's count.
    let done = { run.stdout.lines() }
        .find(|l| l.starts_with("deploy of prod: done"))
        .unwrap_or("");
    assert!(
        done.ends_with(": 0004_audit_log.sql)"),
        "the done line does not name what d1_migrations gained: {done}"
    );

    let backups: Vec<String> = remote
        .sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql.zst.age"))
        .collect();
    assert_eq!(backups.len(), 1, "{:?}", remote.sb.backup_files());
    let m = manifest_for(&remote.sb, &backups[0]);
    assert_eq!(m["reason"], "pre-migration: 0004_audit_log.sql (deploy)");
    assert_eq!(m["verification"]["outcome"], "good");
    assert!(m["offsite"]["key"].as_str().unwrap().ends_with(&backups[0]));
    // The three migrations applied before it, each with its sha256.
    let record = m["migration_sha256"].as_object().unwrap();
    assert_eq!(record.len(), 3, "{record:?}");
    for (name, sha) in record {
        let bytes = std::fs::read(remote.sb.path().join("migrations").join(name)).unwrap();
        assert_eq!(sha.as_str().unwrap(), sha256_hex(&bytes), "{name}");
    }
}

/// A deploy refused before its backup (`run`): no backup written beside
/// the files `before` (the backup lock's file aside), and nothing deployed.
#[track_caller]
fn nothing_written(remote: &Remote, before: &[String], run: &Run) {
    assert!(
        !run.stdout.contains("Pre-migration backup"),
        "{}",
        run.all()
    );
    let now: Vec<String> = { remote.sb.backup_files().into_iter() }
        .filter(|f| f != ".lock")
        .collect();
    assert_eq!(now, before, "{}", run.all());
    assert!(!deployed(remote));
}

/// KJ: a TMPDIR whose path holds a backslash (wrangler reads it as `/` in
/// the configuration naming the private copy of the migrations) was
/// refused only at the migrate step, after the deploy had taken,
/// verified and uploaded its pre-migration backup. It is refused (exit 2,
/// naming TMPDIR) before anything is written, the dry run included.
#[test]
fn a_tmpdir_the_migrate_step_refuses_is_refused_before_the_backup() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    let tmp = remote.sb.path().join("tmp\\dir");
    std::fs::create_dir(&tmp).unwrap();
    let before = remote.sb.backup_files();
    for dry in [true, false] {
        let mut args = PROD_FROM_MAIN.to_vec();
        args.extend(dry.then_some("--dry-run"));
        let mut cmd = remote.xtask_command(home.path(), &{ [&["deploy"][..], &args].concat() });
        cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log")
            .env("TMPDIR", &tmp);
        let run = Run::from_output(cmd.output().unwrap());
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(run.stderr.contains("TMPDIR"), "{}", run.all());
        assert_eq!(counts(&remote.db)["d1_migrations"], 3);
        nothing_written(&remote, &before, &run);
    }
}

#[test]
fn nothing_to_migrate_takes_no_backup_and_goes_straight_to_the_deploy() {
    // No encryption and no bucket: a deploy with nothing to migrate needs neither.
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let run = deploy(&remote, home.path(), PROD_FROM_MAIN);
    run.assert_ok();
    in_order(
        &run.stdout,
        &[
            "pending      none",
            "Deploy plan: doctor -> pending migrations -> Pages deploy -> status",
            "Nothing to migrate: no backup is taken; going straight to the Pages deploy.",
            "Pages deploy: echo deployed",
            "deploy of prod: done (nothing to migrate, no backup taken)",
        ],
    );
    assert!(deployed(&remote));
    assert_eq!(requests_to(&remote, "/export"), 0, "no export was started");
    assert!(
        remote.sb.backup_files().iter().all(|f| !f.contains(".sql")),
        "{:?}",
        remote.sb.backup_files()
    );

    // Prod still needs its name: --yes is not enough, and nothing is deployed.
    std::fs::remove_file(remote.sb.path().join("deployed.log")).unwrap();
    let run = deploy(&remote, home.path(), &["prod", "--branch", "main", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(!deployed(&remote));
}

/// A failed migration stops the deploy, restores nothing, and prints the
/// way back: fetch the backup onto any machine, then restore it. Its
/// restore ended `--identity <age identity file>`, which a shell reads as
/// input from a file `age` (MF): it names the identity KEYFILE, told on
/// the line before, as every way back does, and the two lines, pasted on
/// a machine without the backup, KEYFILE filled, run.
#[test]
fn a_failing_migration_stops_the_deploy_and_prints_the_way_back_without_restoring() {
    // 0004 applies before 0005 fails: the database changed, so the way
    // back is given (one that applied nothing has none to give, OF 2).
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    let key = encrypted_offsite(&remote, home.path());
    // A NULL where the column takes none: D1 refuses it, and the plan's
    // trial, which runs no rows, cannot know (a table not there is refused
    // before the backup, rvBW).
    std::fs::write(
        remote.sb.path().join("migrations/0005_broken.sql"),
        "INSERT INTO companies (name) VALUES (NULL);",
    )
    .unwrap();
    let before = dump_of(&remote.db);
    let run = deploy(&remote, home.path(), PROD_FROM_MAIN);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let name = remote
        .sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql.zst.age"))
        .expect("the backup was taken first");
    assert!(
        run.stderr
            .contains("DEPLOY OF prod FAILED at migrate with that backup"),
        "{}",
        run.stderr
    );
    let fetch = format!("cargo xtask offsite fetch {name} --env prod");
    let restore = format!(
        "cargo xtask restore {name} --to prod --replace --confirm qbtime_db_prod --identity KEYFILE"
    );
    let lines: Vec<&str> = run.stderr.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == fetch);
    assert!(
        at.is_some_and(|at| lines.get(at + 1) == Some(&restore.as_str())),
        "the way back is not the fetch then the restore, each a line of its own:\n{}",
        run.stderr
    );
    assert!(
        { lines.iter() }
            .any(|l| l.contains("KEYFILE") && l.contains("identity file") && *l != restore),
        "KEYFILE is not told on a line of its own:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Nothing was restored"),
        "{}",
        run.stderr
    );
    assert!(!deployed(&remote), "no deploy after a failed migration");
    assert_eq!(requests_to(&remote, "/import"), 0, "nothing was restored");
    assert_ne!(dump_of(&remote.db), before, "0004 was applied");
    assert_eq!(counts(&remote.db)["d1_migrations"], 4, "and not undone");
    assert!(
        remote
            .server
            .r2_keys(BUCKET)
            .iter()
            .any(|k| k.ends_with(&name)),
        "the way back is offsite"
    );
    // On a fresh machine: the two lines pasted as printed, KEYFILE filled,
    // fetch the backup and restore it.
    for file in remote.sb.backup_files() {
        std::fs::remove_file(remote.sb.backups().join(file)).unwrap();
    }
    let script = format!(
        "cargo() {{ shift; \"$XTASK\" \"$@\"; }}\n{fetch}\n{}",
        restore.replace("KEYFILE", key.to_str().unwrap())
    );
    wrangler_bin();
    let mut sh = remote
        .sb
        .sandboxed(std::process::Command::new("sh"), &["-c", &script]);
    remote.with_api(&mut sh, home.path());
    let ran = Run::from_output(
        sh.env("XTASK", env!("CARGO_BIN_EXE_xtask"))
            .output()
            .unwrap(),
    );
    assert_eq!(
        ran.code,
        Some(0),
        "the way back as printed:\n{script}\n{}",
        ran.all()
    );
}

/// Replaces an applied migration's contents, as an edit would.
fn edit(sb: &Sandbox, name: &str) -> String {
    let path = sb.path().join("migrations").join(name);
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{original}\n-- edited after it was applied\n"),
    )
    .unwrap();
    original
}

#[test]
fn an_edited_applied_migration_is_refused_by_migrate_restore_clean_the_check_and_the_deploy() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    // Nothing recorded yet: the check has nothing to compare the contents with.
    let run = remote.xtask(home.path(), &["migrate", "--check"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("nothing to compare with"),
        "{}",
        run.stdout
    );

    let first = remote.backup_prod(home.path());
    let check = remote.xtask(home.path(), &["migrate", "prod", "--check"]);
    check.assert_ok();
    assert!(
        check
            .stdout
            .contains("prod: 4 migrations applied, unchanged"),
        "{}",
        check.stdout
    );

    let original = edit(sb, "0002_encryption_keys_and_qbt_tokens.sql");
    let fix = "Add a new migration, don't edit an applied one";

    // A backup taken now keeps what was applied, and says so.
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("records the migrations as they were applied"),
        "{}",
        run.stderr
    );
    for f in sb.backup_files().iter().filter(|f| f.ends_with(".sql")) {
        let m = manifest_for(sb, f);
        assert_eq!(
            m["migration_sha256"]["0002_encryption_keys_and_qbt_tokens.sql"],
            sha256_hex(original.as_bytes()).as_str(),
            "{f}"
        );
    }

    // The check: against the record and prod's d1_migrations (exit 1), and
    // against the records alone with no environment named.
    for args in [&["migrate", "prod", "--check"][..], &["migrate", "--check"]] {
        let run = remote.xtask(home.path(), args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.all());
        assert!(
            run.stderr
                .contains("0002_encryption_keys_and_qbt_tokens.sql"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(fix), "{}", run.stderr);
    }

    // migrate refuses before any backup, with a new migration pending too.
    std::fs::write(
        sb.path().join("migrations/0005_more.sql"),
        "CREATE TABLE more_things(id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    let files_before = sb.backup_files();
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("refusing to migrate qbtime_db_prod"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("0002_encryption_keys_and_qbt_tokens.sql"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(fix), "{}", run.stderr);
    assert_eq!(sb.backup_files(), files_before, "no backup was taken");
    assert_eq!(counts(&remote.db)["d1_migrations"], 4);

    // So does the deploy, before its backup, and nothing is deployed.
    let run = deploy(&remote, home.path(), PROD_FROM_MAIN);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr
            .contains("DEPLOY OF prod FAILED at pending migrations"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("This run took no backup"),
        "{}",
        run.stderr
    );
    assert!(!deployed(&remote));
    std::fs::remove_file(sb.path().join("migrations/0005_more.sql")).unwrap();

    // restore --clean would build the edited schema: refused, staging untouched.
    let run = remote.xtask(
        home.path(),
        &["restore", &first, "--to", "staging", "--clean", "--yes"],
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("--clean"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("0002_encryption_keys_and_qbt_tokens.sql"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(fix), "{}", run.stderr);
    assert_eq!(requests_to(&remote, "/import"), 0);

    // Put back as it was, everything passes again.
    std::fs::write(
        sb.path()
            .join("migrations/0002_encryption_keys_and_qbt_tokens.sql"),
        original,
    )
    .unwrap();
    remote
        .xtask(home.path(), &["migrate", "prod", "--check"])
        .assert_ok();
}

#[cfg(unix)]
#[test]
fn the_pre_push_hook_warns_about_a_new_migration_and_lets_the_push_through() {
    let sb = Sandbox::new();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let origin = tempfile::tempdir().unwrap();
    let git_in = |dir: &Path, args: &[&str]| {
        Run::from_output(
            std::process::Command::new("git")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap(),
        )
    };
    git_in(origin.path(), &["init", "-q", "--bare"]).assert_ok();
    sb.git(&["remote", "add", "origin", origin.path().to_str().unwrap()])
        .assert_ok();
    sb.git(&["add", "wrangler.toml", "migrations", "scripts"])
        .assert_ok();
    sb.git(&["commit", "-q", "-m", "start"]).assert_ok();
    // A new branch whose commits add migrations (the ones already there).
    let run = sb.git(&["push", "-q", "origin", "main"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("pre-push: these commits add migrations"),
        "{}",
        run.stderr
    );

    std::fs::write(sb.path().join("notes.txt"), "no migration").unwrap();
    sb.git(&["add", "notes.txt"]).assert_ok();
    sb.git(&["commit", "-q", "-m", "notes"]).assert_ok();
    let run = sb.git(&["push", "-q", "origin", "main"]);
    run.assert_ok();
    assert!(!run.stderr.contains("pre-push"), "{}", run.stderr);

    std::fs::write(
        sb.path().join("migrations/0005_more.sql"),
        "CREATE TABLE more_things(id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    sb.git(&["add", "migrations/0005_more.sql"]).assert_ok();
    sb.git(&["commit", "-q", "-m", "a migration"]).assert_ok();
    let run = sb.git(&["push", "-q", "origin", "main"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("  migrations/0005_more.sql"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("0001_accounts"),
        "only what this push adds: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("`cargo xtask migrate prod --confirm qbtime_db_prod`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("skips the backup"), "{}", run.stderr);
}

/// A migration renumbered after a rebase onto a branch that took its number
/// (`git mv 0005_more.sql 0006_more.sql`) is a new migration to wrangler,
/// which applies it again on every database that applied 0005_more.sql; git
/// logs the change as a rename, so the hook (which listed only added files)
/// pushed it without a word.
#[cfg(unix)]
#[test]
fn the_pre_push_hook_warns_about_a_migration_renumbered_after_a_rebase() {
    let sb = Sandbox::new();
    sb.xtask(&["hooks", "install"]).assert_ok();
    let origin = tempfile::tempdir().unwrap();
    let bare = std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .current_dir(origin.path())
        .output()
        .unwrap();
    assert!(bare.status.success(), "{bare:?}");
    sb.git(&["remote", "add", "origin", origin.path().to_str().unwrap()])
        .assert_ok();
    std::fs::write(
        sb.path().join("migrations/0005_more.sql"),
        "CREATE TABLE more_things(id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    sb.git(&["add", "wrangler.toml", "migrations", "scripts"])
        .assert_ok();
    sb.git(&["commit", "-q", "-m", "start"]).assert_ok();
    sb.git(&["push", "-q", "origin", "main"]).assert_ok();

    sb.git(&["mv", "migrations/0005_more.sql", "migrations/0006_more.sql"])
        .assert_ok();
    sb.git(&["commit", "-q", "-m", "renumber after the rebase"])
        .assert_ok();
    let run = sb.git(&["push", "-q", "origin", "main"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("  migrations/0006_more.sql"),
        "the push of a renumbered migration, which wrangler applies again, warned of nothing: {}",
        run.stderr
    );
}

/// On a fresh runner the record comes from the offsite manifest, which
/// anyone holding the bucket's object token can write: an edit it shows is
/// warned about, naming the object and the fix, not refused, and the
/// runner's new backup records the files as they are, not the bucket's
/// record (a planted one would otherwise outlive the planted objects:
/// `hostile_bucket_records::a_planted_offsite_record_neither_blocks_migrate_nor_enters_a_new_backup`).
#[test]
fn on_a_fresh_runner_an_edit_against_the_offsite_record_is_warned_about_naming_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    // Prod's backups are encrypted; the record is read from the manifest,
    // which needs no identity.
    let _key = encrypted_offsite(&remote, home.path());
    let sb = &remote.sb;
    // The scheduled job's backup, verified and uploaded with its manifest.
    remote
        .xtask(home.path(), &["backup", "prod", "--upload"])
        .assert_ok();
    // A CI runner: the checkout without backups/.
    std::fs::remove_dir_all(sb.backups()).unwrap();
    edit(sb, "0002_encryption_keys_and_qbt_tokens.sql");

    let told = |run: &Run| {
        assert!(
            run.stderr
                .contains("0002_encryption_keys_and_qbt_tokens.sql")
                && run.stderr.contains(&format!("r2://{BUCKET}/"))
                && run.stderr.contains("add a new migration"),
            "the warning names the file, the offsite record and the fix:\n{}",
            run.all()
        );
        let warning = { run.stderr.lines() }
            .find(|l| l.contains("not a refusal"))
            .unwrap_or_default();
        assert!(
            !warning.is_empty() && !warning.contains("  "),
            "the warning reads as one sentence after another:\n{}",
            run.all()
        );
    };
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    told(&run);
    let check = remote.xtask(home.path(), &["migrate", "prod", "--check"]);
    assert_eq!(check.code, Some(0), "{}", check.all());
    told(&check);
    // A backup taken on the runner records the file as it is now.
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    run.assert_ok();
    told(&run);
    assert!(run.stderr.contains("not carried"), "{}", run.all());
}

/// A loopback whose local and staging databases have every migration:
/// a deploy of either goes straight to the Pages deploy.
fn nothing_to_migrate() -> (Remote, tempfile::TempDir) {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.sb.apply_migrations();
    let args = [
        "migrate",
        "staging",
        "--yes",
        "--no-backup",
        "--reason",
        "setup",
    ];
    remote.xtask(home.path(), &args).assert_ok();
    (remote, home)
}

/// atkO: the Pages deploy of `--branch main` is production's (the
/// workflow's `prod` job deploys main; "the production branch serves
/// prod"), yet `deploy staging --branch main --yes` and `deploy local
/// --branch main --yes` ran it with staging's or local's confirmation:
/// production's site replaced, its typed name never asked, after
/// migrating another database (or none). A deploy of a non-production
/// environment must refuse production's branch before anything runs.
#[test]
fn a_deploy_of_staging_or_local_never_publishes_the_production_branch() {
    // Nothing to migrate in either: the deploy goes straight to Pages.
    let (remote, home) = nothing_to_migrate();
    for env in ["staging", "local"] {
        let run = deploy(&remote, home.path(), &[env, "--branch", "main", "--yes"]);
        assert_eq!(
            run.code,
            Some(3),
            "deploy {env} --branch main:\n{}",
            run.all()
        );
        assert!(
            !deployed(&remote),
            "deploy {env} ran the Pages deploy of main"
        );
    }
    // Nor does prod publish a preview branch after migrating prod.
    let run = deploy(
        &remote,
        home.path(),
        &[
            "prod",
            "--branch",
            "preview/x",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(!deployed(&remote));
    // From its own branch, checked out, staging deploys; the plan says
    // which site.
    remote
        .sb
        .git(&["checkout", "-q", "-b", "preview/x"])
        .assert_ok();
    let run = deploy(
        &remote,
        home.path(),
        &["staging", "--branch", "preview/x", "--yes"],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("Pages branch: preview/x (a preview)"),
        "{}",
        run.stdout
    );
    assert!(deployed(&remote));
}

/// rv7: the branch check compares `--branch` with "main", but an empty
/// `--branch ""` is passed on to `wrangler pages deploy --branch ""`, and
/// wrangler 4.164 treats an empty branch as none: it asks git (`if
/// (!branch) branch = git rev-parse --abbrev-ref HEAD`, wrangler-dist/cli.js
/// near line 304924) and, on a checkout of main, sends `branch=main` to the
/// Pages API (checked against a stub Pages API: the deployment's form field
/// `branch` was `main`). So `deploy staging --branch "" --yes` on main
/// replaces the production site with staging's confirmation, the atkO
/// finding through an empty string (a workflow whose BRANCH came out empty
/// would do the same). An empty branch must be refused before anything runs.
#[test]
fn an_empty_branch_is_refused_before_wrangler_picks_the_checkouts_branch() {
    let (remote, home) = nothing_to_migrate();
    // The sandbox is a checkout of main, as the operator's usually is.
    assert_eq!(
        remote
            .sb
            .git(&["symbolic-ref", "--short", "HEAD"])
            .stdout
            .trim(),
        "main"
    );
    let run = deploy(&remote, home.path(), &["staging", "--branch", "", "--yes"]);
    assert!(
        matches!(run.code, Some(2 | 3)),
        "deploy staging --branch \"\" was not refused:\n{}",
        run.all()
    );
    assert!(
        !deployed(&remote),
        "deploy staging --branch \"\" ran the Pages deploy, which wrangler publishes as main"
    );
}

/// rv7: "prod deploys from main only" is checked on the `--branch` label,
/// not on what is checked out. A tired operator on a feature branch who
/// pastes the README's `deploy prod --branch main --confirm qbtime_db_prod`
/// applies that branch's migrations to prod and publishes its working tree
/// as the production site (wrangler takes the files from the checkout and
/// the branch from the flag). A `--branch` that is not the checkout's
/// branch must be refused before anything runs.
#[test]
fn a_prod_deploy_from_a_feature_checkout_is_refused_whatever_branch_it_names() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote
        .sb
        .git(&["checkout", "-q", "-b", "feature/new-report"])
        .assert_ok();
    let run = deploy(&remote, home.path(), PROD_FROM_MAIN);
    assert_eq!(
        run.code,
        Some(3),
        "deploy prod --branch main from a checkout of feature/new-report:\n{}",
        run.all()
    );
    assert!(
        !deployed(&remote),
        "the feature branch's checkout was published as the production site"
    );
}

/// The README: a deploy with a migration to apply needs prod's recipients
/// and bucket, and without them "fails, loudly, before anything runs". Its
/// dry run, the way an operator previews the deploy, must say so too, not
/// show a plan and "nothing was changed" for a run that is bound to fail.
const PROD_DRY_RUN: [&str; 6] = [
    "prod",
    "--branch",
    "main",
    "--confirm",
    "qbtime_db_prod",
    "--dry-run",
];

#[test]
fn a_dry_run_of_a_deploy_that_cannot_take_its_encrypted_backup_is_refused_naming_the_fix() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    remote.server.add_bucket(BUCKET);
    // prod has a bucket but no [prod.encryption] recipients (as shipped).
    let run = deploy(&remote, home.path(), &PROD_DRY_RUN);
    assert_eq!(run.code, Some(3), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("[prod.encryption]") && run.stderr.contains("recipients"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("Dry run: nothing was changed."),
        "{}",
        run.stdout
    );
    // Its doctor step claims no readiness the next step denies.
    assert!(
        run.stdout.contains("doctor: no problem found")
            && !run.stdout.contains("everything a backup needs is in place"),
        "{}",
        run.stdout
    );
    assert!(!deployed(&remote));
    assert_eq!(counts(&remote.db)["d1_migrations"], 3);

    // With nothing to migrate, no backup is needed, and the dry run passes.
    let remote = Remote::new("");
    let run = deploy(&remote, home.path(), &PROD_DRY_RUN);
    run.assert_ok();
}

/// Under `nohup`, the Pages deploy command outlives the terminal as the
/// rest of the deploy does: Node.js (wrangler, npx) puts SIGHUP back to
/// its default, and would die of the hangup the job is sent, leaving the
/// database migrated and the site not deployed.
#[test]
fn a_pages_deploy_command_run_under_nohup_outlives_the_terminal() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let started = remote.sb.path().join("deploy-started");
    let script = "require('fs').writeFileSync('deploy-started', 'yes'); \
         setTimeout(() => require('fs').writeFileSync('deployed.log', 'yes'), 3000)";
    let mut cmd = remote.xtask_command(
        home.path(),
        &[
            "deploy",
            "prod",
            "--branch",
            "main",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    cmd.env("QBTIME_PAGES_DEPLOY", format!("node -e \"{script}\""));
    let child = as_a_job_ignoring(&mut cmd, &[libc::SIGHUP])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    while !started.exists() {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(120),
            "the Pages deploy never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the group our own child leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGHUP) };
    let run = Run::from_output(child.wait_with_output().unwrap());
    run.assert_ok();
    assert!(
        deployed(&remote),
        "the Pages deploy died of the hangup:\n{}",
        run.all()
    );
}

/// A branch name is chosen by whoever pushes it, and git allows `;` and
/// `$` in one (`preview/a;touch${IFS}PWNED` passes `git check-ref-format`).
/// deploy refuses a `--branch` other than the one checked out, and tells
/// the operator to paste `git switch BRANCH`, with the name unquoted:
/// pasted, it runs what follows the `;`. It must be quoted for the shell,
/// as every printed command is. Cause: `xtask/src/commands/deploy.rs`,
/// `check_checkout`.
#[test]
fn the_git_switch_a_deploy_refusal_prints_is_quoted_for_the_shell() {
    let sb = Sandbox::new();
    sb.git(&["add", "-A"]).assert_ok();
    sb.git(&["commit", "-qm", "init"]).assert_ok();
    let branch = "preview/a;touch${IFS}PWNED";
    assert!(
        sb.git(&["check-ref-format", "--branch", branch]).ok,
        "git takes it"
    );
    let run = sb.xtask(&["deploy", "staging", "--branch", branch, "--dry-run"]);
    assert!(!run.ok, "{}", run.all());
    let switch = run
        .stderr
        .split('`')
        .find(|p| p.starts_with("git switch "))
        .unwrap_or_else(|| panic!("no git switch printed:\n{}", run.all()))
        .to_owned();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("git() {{ printf '%s\\n' \"$@\"; }}; {switch}"),
        ])
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(
        !sb.path().join("PWNED").exists(),
        "pasting `{switch}` ran what follows the `;`"
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("switch\n{branch}\n"),
        "`{switch}`"
    );
}

/// rvEF: the check of what the Pages deploy publishes ran before the
/// deploy's own backup, and judged only what was there: on a fresh runner
/// (no `backups/` yet) a link in `dist` to `../backups`, or a backup
/// directory inside `dist` (`QBTIME_BACKUP_DIR=dist/backups`), passed it,
/// and the backup the deploy then took was published with the site. And a
/// `node_modules` or `.git` under a dot-directory (`dist/.well-known/`),
/// which wrangler publishes (its `**/node_modules` passes over dot
/// directories), was passed over as wrangler's own. Each is refused (exit
/// 2) before anything runs; the build's own `dist` deploys.
#[test]
fn a_deploy_never_publishes_the_backup_it_takes_nor_what_wrangler_does_not_leave_out() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    let sb = &remote.sb;
    let dist = sb.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<h1>qbtime</h1>\n").unwrap();
    let args = ["prod", "--branch", "main", "--confirm", "qbtime_db_prod"];
    let refused = |how: &str, run: Run| {
        assert_eq!(run.code, Some(2), "{how}:\n{}", run.all());
        assert!(!deployed(&remote), "{how}: deployed:\n{}", run.all());
        assert!(
            !run.stdout.contains("Pre-migration backup"),
            "{how}: backed up:\n{}",
            run.all()
        );
    };

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("id.txt"), "private\n").unwrap();
    let hidden = dist.join(".well-known");
    std::fs::create_dir(&hidden).unwrap();
    std::os::unix::fs::symlink(outside.path(), hidden.join("node_modules")).unwrap();
    refused(
        "dist/.well-known/node_modules out of the checkout",
        deploy(&remote, home.path(), &args),
    );
    std::fs::remove_dir_all(&hidden).unwrap();

    assert!(!sb.path().join("backups").exists());
    std::os::unix::fs::symlink("../backups", dist.join("assets")).unwrap();
    refused(
        "a link in dist to backups/, not made yet",
        deploy(&remote, home.path(), &args),
    );
    std::fs::remove_file(dist.join("assets")).unwrap();

    let mut cmd = remote.xtask_command(home.path(), &[&["deploy"][..], &args].concat());
    cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log")
        .env("QBTIME_BACKUP_DIR", dist.join("backups"));
    refused(
        "a backup directory inside dist, not made yet",
        Run::from_output(cmd.output().unwrap()),
    );

    deploy(&remote, home.path(), &args).assert_ok();
    assert!(deployed(&remote));
}

/// A deploy refused for its confirmation, with no terminal to ask (prod's
/// `--yes`), is refused before the backup lock, the doctor and the plan:
/// it creates no backups/ and prints no plan.
#[test]
fn a_deploy_without_its_confirmation_is_refused_before_the_lock_and_the_plan() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    let run = deploy(&remote, home.path(), &["prod", "--branch", "main", "--yes"]);
    run.assert_refused("--confirm qbtime_db_prod");
    for plan in ["pending ", "Deploy plan", "doctor:"] {
        assert!(
            !run.stdout.contains(plan),
            "{plan:?} printed:\n{}",
            run.all()
        );
    }
    assert!(!remote.sb.backups().exists(), "refused before the lock");
    assert!(!deployed(&remote));
    assert_eq!(counts(&remote.db)["d1_migrations"], 3);
}

/// rvFA1: a deploy worked out its pending migrations before it took the
/// backup lock, and with none pending took no lock at all. While another
/// terminal's `migrate prod` held it, the deploy printed a plan read from
/// the database that run was changing ("pending 0004…", then failed at its
/// backup), and once that run's migration had landed it published the site
/// with nothing locked, whatever the other run did next. The deploy takes
/// the lock before it reads the pending migrations: refused (exit 4), it
/// prints no plan, takes no backup and publishes nothing.
#[test]
fn a_deploy_while_another_run_holds_the_backup_lock_prints_no_plan_and_publishes_nothing() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    let args = ["prod", "--branch", "main", "--confirm", "qbtime_db_prod"];
    let lock = hold_backup_lock(&remote.sb, "migrate prod");
    let refused = |run: &Run, applied: u64| {
        assert_eq!(run.code, Some(4), "{}", run.all());
        assert!(
            run.stderr.contains("another backup or restore is running")
                && run.stderr.contains("`migrate prod`"),
            "{}",
            run.all()
        );
        for plan in ["pending ", "Deploy plan", "Nothing to migrate"] {
            assert!(
                !run.stdout.contains(plan),
                "{plan:?} printed:\n{}",
                run.all()
            );
        }
        assert!(!deployed(&remote), "published under another run's lock");
        assert_eq!(remote.sb.backup_files(), [".lock"]);
        assert_eq!(requests_to(&remote, "/export"), 0, "no backup was started");
        assert_eq!(counts(&remote.db)["d1_migrations"], applied);
    };
    // 0004 is pending when the other run started.
    refused(&deploy(&remote, home.path(), &args), 3);
    // The other run's migration lands while it still holds the lock.
    let migration =
        std::fs::read_to_string(remote.sb.path().join("migrations/0004_audit_log.sql")).unwrap();
    query_file(
        &remote.db,
        &format!("{migration}\nINSERT INTO d1_migrations (name) VALUES ('0004_audit_log.sql');"),
    );
    refused(&deploy(&remote, home.path(), &args), 4);
    // Released, the deploy reads the database as that run left it.
    drop(lock);
    let run = deploy(&remote, home.path(), &args);
    run.assert_ok();
    assert!(run.stdout.contains("Nothing to migrate"), "{}", run.all());
    assert!(deployed(&remote));
}

/// FC: the deploy told a backup in the build by its name or its inode
/// alone, so a plain copy under another name was published: the local
/// D1's SQLite file copied to `dist/data.bin`, `dist/app.sqlite` or
/// `dist/assets/x.db`, its write-ahead log beside it, a backup's dump
/// saved as `dist/notes.txt`, compressed or encrypted as backups are and
/// renamed. Each is told by its first bytes and refused (exit 2) before
/// wrangler runs, naming the file from the checkout and the fix, and
/// never printing what it holds; a build of HTML, JavaScript and images
/// deploys.
#[test]
fn a_deploy_never_publishes_a_copy_of_a_database_or_a_backup_under_another_name() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let dump = sb.backups().join(remote.backup_prod(home.path()));
    let key = home.path().join("key.txt");
    let keygen = remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]);
    encrypt_backups_of(sb, "prod", &keygen_recipient(&keygen));
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let sealed = { sb.backup_files().into_iter() }
        .find(|f| f.ends_with(".sql.zst.age"))
        .map(|f| sb.backups().join(f))
        .unwrap();
    sb.execute_sql("CREATE TABLE IF NOT EXISTS deploy_probe(x);");
    let local = sb.local_d1_file();
    let dist = sb.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), "<h1>qbtime</h1>\n").unwrap();
    std::fs::write(dist.join("assets/app.js"), "const rows = [];\n").unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    std::fs::write(dist.join("assets/logo.png"), png).unwrap();
    let args = ["prod", "--branch", "main", "--confirm", "qbtime_db_prod"];
    let refused = |file: &str, bytes: &[u8], why: &str| {
        refused_in_the_build(&remote, home.path(), file, bytes, why, &["INSERT INTO"]);
    };

    let database = std::fs::read(&local).unwrap();
    for copy in ["data.bin", "app.sqlite", "assets/x.db"] {
        refused(copy, &database, "SQLite database");
    }
    // A write-ahead log, as SQLite keeps beside the database while it is
    // open (copied then): the rows written last are in it.
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("d1.sqlite");
    std::fs::copy(&local, &db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    { conn.execute_batch("CREATE TABLE wal_probe(x); INSERT INTO wal_probe VALUES ('row');") }
        .unwrap();
    let wal = std::fs::read(scratch.path().join("d1.sqlite-wal")).unwrap();
    refused("data.bin-wal", &wal, "write-ahead log");
    drop(conn);

    let plain = std::fs::read(&dump).unwrap();
    refused("notes.txt", &plain, "SQL dump");
    // With a byte order mark and a blank line first, as an editor saves
    // it; the reader still restores it.
    refused(
        "notes.txt",
        &[&b"\xef\xbb\xbf\n"[..], &plain].concat(),
        "SQL dump",
    );
    let sqlite_dump = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(x);\n\
                       INSERT INTO t VALUES(1);\nCOMMIT;\n";
    refused("assets/data.txt", sqlite_dump.as_bytes(), "SQL dump");
    refused(
        "blob.bin",
        &zstd::encode_all(&plain[..], 3).unwrap(),
        "SQL dump",
    );
    refused("download.bin", &std::fs::read(&sealed).unwrap(), "age");

    deploy(&remote, home.path(), &args).assert_ok();
    assert!(deployed(&remote));
}

/// A prod deploy with 0004 pending, of a site built in `dist` (HTML,
/// JavaScript, CSS, JSON, a schema shipped for its docs, a page that shows
/// what an identity looks like), after a plain `backup prod`: returns the
/// remote, its HOME (with prod's identity at `key.txt`) and that backup's
/// dump.
fn a_site_with_a_migration_pending() -> (Remote, tempfile::TempDir, Vec<u8>) {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    let dump = std::fs::read(remote.sb.backups().join(remote.backup_prod(home.path()))).unwrap();
    encrypted_offsite(&remote, home.path());
    let dist = remote.sb.path().join("dist");
    for (file, text) in [
        ("index.html", "<!doctype html><h1>qbtime</h1>\n"),
        (
            "assets/app.js",
            "const rows = []; // INSERT INTO t VALUES(1);\n",
        ),
        ("assets/style.css", "/* site */\nbody { margin: 0; }\n"),
        ("data.json", "{\"rows\": [[1, \"a\"]]}\n"),
        (
            "docs/schema.sql",
            "-- The app's schema, for the docs.\nCREATE TABLE t(id INTEGER PRIMARY KEY, name \
             TEXT);\nCREATE INDEX t_name ON t(name);\n",
        ),
        (
            "docs/keys.html",
            "<p>An identity file holds a line AGE-SECRET-KEY-1... after # public key: age1...\n",
        ),
        (
            ".well-known/security.txt",
            "Contact: mailto:security@example.com\n",
        ),
        (
            "queries/add_user.sql",
            "INSERT INTO users (name, email) VALUES (?, ?)",
        ),
    ] {
        let path = dist.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    (remote, home, dump)
}

const PROD_DEPLOY: [&str; 5] = ["prod", "--branch", "main", "--confirm", "qbtime_db_prod"];

/// With `bytes` at `dist/<file>`, the deploy (and its dry run) is refused
/// (exit 2) naming the file, `why` and the fix, before anything ran: no
/// doctor, no backup, no migration, no Pages deploy; and none of
/// `never_printed` (a key, row values) is in its output. The file is
/// removed after.
#[track_caller]
fn refused_in_the_build(
    remote: &Remote,
    home: &Path,
    file: &str,
    bytes: &[u8],
    why: &str,
    never_printed: &[&str],
) {
    let path = remote.sb.path().join("dist").join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let before = counts(&remote.db);
    for dry in [&["--dry-run"][..], &[]] {
        let run = deploy(remote, home, &[&PROD_DEPLOY[..], dry].concat());
        let told = [
            &format!("dist/{file} "),
            why,
            "Remove it from pages_build_output_dir",
        ];
        assert!(
            run.code == Some(2) && told.iter().all(|t| run.stderr.contains(t)),
            "{file} {dry:?}:\n{}",
            run.all()
        );
        let ran = run.stdout.contains("doctor") || run.stdout.contains("Pre-migration backup");
        assert!(!ran && !deployed(remote), "{file}: ran:\n{}", run.all());
        assert_eq!(counts(&remote.db), before, "{file}: migrated");
        for secret in never_printed {
            assert!(!run.all().contains(secret), "{file}: printed {secret:?}");
        }
    }
    std::fs::remove_file(&path).unwrap();
}

/// A file in the build that hides the identity `key` (compressed, packed
/// in another layer) is refused as [`refused_in_the_build`] says, never
/// printing a part of the key; its raw bytes must not hold the key, or
/// the file would be refused for them alone and prove nothing.
fn hidden_key_refused(
    remote: &Remote,
    home: &Path,
    key: &str,
    (file, bytes): (&str, &[u8]),
    why: &str,
) {
    let hidden = bytes.windows(key.len()).any(|w| w == key.as_bytes());
    assert!(!hidden, "{file}: the key is in its raw bytes");
    let secret = [&key["AGE-SECRET-KEY-1".len()..][..20], "AGE-SECRET-KEY"];
    refused_in_the_build(remote, home, file, bytes, why, &secret);
}

/// The site deploys as far as its dry run: nothing in it was refused.
fn the_site_deploys(remote: &Remote, home: &Path) {
    let run = deploy(remote, home, &[&PROD_DEPLOY[..], &["--dry-run"]].concat());
    run.assert_ok();
    assert!(
        run.stdout.contains("Dry run: nothing was changed"),
        "{}",
        run.all()
    );
}

fn utf16(text: &[u8], big_endian: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let units = std::iter::once(0xfeff).chain(text.encode_utf16());
    units
        .flat_map(|u| match big_endian {
            true => u.to_be_bytes(),
            false => u.to_le_bytes(),
        })
        .collect()
}

/// The identity file `keygen` wrote in `home`, and its key's line.
fn the_identity(home: &Path) -> (String, String) {
    let identity = std::fs::read_to_string(home.join("key.txt")).unwrap();
    let key = { identity.lines() }
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_owned();
    (identity, key)
}

/// FG 1: an age identity (the tool's own secret, as `keygen` writes it)
/// copied into the build under any name was published. It is refused
/// under any name, with its comment lines or without, with CRLF and a byte
/// order mark, saved as UTF-16 (Windows PowerShell's `>`), and a plugin
/// identity too; the refusal never prints the key. One encrypted with a
/// passphrase (armored) is refused as age-encrypted. A page that only
/// shows what an identity looks like deploys.
#[test]
fn a_deploy_never_publishes_an_age_identity_under_any_name() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (identity, key) = the_identity(home);
    let secret = [&key["AGE-SECRET-KEY-1".len()..][..20], "AGE-SECRET-KEY"];
    let refused = |file: &str, bytes: &[u8], why: &str| {
        refused_in_the_build(&remote, home, file, bytes, why, &secret);
    };
    refused("key.txt", identity.as_bytes(), "age identity");
    refused(
        "assets/app.cfg",
        format!("{key}\n").as_bytes(),
        "age identity",
    );
    let windows = format!("\u{feff}{}", identity.replace('\n', "\r\n"));
    refused("k", windows.as_bytes(), "age identity");
    refused(
        "favicon.ico",
        &utf16(identity.as_bytes(), false),
        "age identity",
    );
    // Built from halves, so that no identity stands in this file.
    let plugin = concat!(
        "# recipient: age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t\n",
        "AGE-PLUGIN-",
        "YUBIKEY-1QYQ3Z6W5QXSQZ8AWMCVY82PC7\n"
    );
    refused("plugin.txt", plugin.as_bytes(), "age identity");

    // Under a passphrase (`age -p -a`), by the age package the tool runs.
    let mut node = std::process::Command::new("node");
    node.current_dir(repo_root())
        .args(["--input-type=module", "-e"])
        .arg(
            "import { Encrypter, armor } from 'age-encryption';\n\
             const e = new Encrypter(); e.setPassphrase('correct horse'); e.setScryptWorkFactor(10);\n\
             process.stdout.write(armor.encode(await e.encrypt(process.argv[1])));",
        )
        .arg(&identity);
    let sealed = node.output().unwrap();
    assert!(sealed.status.success(), "{sealed:?}");
    refused("identity.age.txt", &sealed.stdout, "encrypted with age");

    the_site_deploys(&remote, home);
}

/// rvHJ: an age identity that punctuation ends (`Your key: AGE-SECRET-KEY-1….`,
/// or in lower case) was published, though the pre-commit hook's grep
/// refuses it: it is refused, naming the file, never printing the key,
/// with nothing run.
#[test]
fn a_deploy_never_publishes_an_age_identity_that_punctuation_ends() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let body = &key["AGE-SECRET-KEY-1".len()..];
    let lower = key.to_ascii_lowercase();
    let body_lower = body.to_ascii_lowercase();
    let secret = [&body[..20], &body_lower[..20], "AGE-SECRET-KEY"];
    for (file, text) in [
        ("notes.txt", format!("Your key: {key}.\n")),
        ("assets/app.js", format!("// {lower}.\nconst k = 1;\n")),
        ("readme.md", format!("{key}_old and more\n")),
    ] {
        refused_in_the_build(
            &remote,
            home,
            file,
            text.as_bytes(),
            "age identity",
            &secret,
        );
    }
    the_site_deploys(&remote, home);
}

/// HL: an age identity a letter ends (`…EXb`, `…EXB`: `B`, `I`, `O` and
/// `b` are no Bech32 in that case) or that a line break wraps (a JSON or
/// minified file wrapping at a column, with LF or CRLF, or `\n` escaped in
/// a JS string) was published: the scan wanted exactly the key's run of
/// Bech32 with no letter after it. Each is refused by the key's checksum,
/// naming the file, never printing the key, with nothing run. A
/// placeholder of 58 `X`s (refused before) and a key with one character
/// changed deploy.
#[test]
fn a_deploy_never_publishes_an_age_identity_a_letter_ends_or_a_line_break_wraps() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let (head, tail) = key.split_at(40);
    let lower = key.to_ascii_lowercase();
    let minified = format!("var a=1;var k=\"{head}\n{tail}\";var b=2;\n");
    for (file, text) in [
        ("notes.txt", format!("Your key: {key}b\n")),
        ("readme.md", format!("{key}B and more\n")),
        ("assets/app.js", format!("// {lower}B\nconst k = 1;\n")),
        ("keys.txt", format!("{key}IO\n")),
        ("data.json", format!("{{\"k\": \"{head}\\n{tail}\"}}\n")),
        ("assets/min.js", minified),
        ("wrapped.txt", format!("{head}\r\n{tail}\r\n")),
        ("short.txt", format!("{}\n{}\n", &key[..17], &key[17..])),
    ] {
        identity_refused(&remote, home, &key, file, text.as_bytes());
    }

    let dist = remote.sb.path().join("dist");
    let placeholder = format!("<pre>AGE-SECRET-KEY-1{}</pre>\n", "X".repeat(58));
    std::fs::write(dist.join("docs/placeholder.html"), placeholder).unwrap();
    let at = 30;
    let changed = match key.as_bytes()[at] {
        b'Q' => 'P',
        _ => 'Q',
    };
    let typo = format!("{}{changed}{}", &key[..at], &key[at + 1..]);
    std::fs::write(dist.join("docs/typo.txt"), format!("{typo}\n")).unwrap();
    let wrapped_typo = format!("{}\n{}\n", &typo[..40], &typo[40..]);
    std::fs::write(dist.join("docs/typo2.txt"), wrapped_typo).unwrap();
    the_site_deploys(&remote, home);
}

/// A dump at `dist/<file>` is refused as [`refused_in_the_build`] says,
/// printing none of its statements or rows.
#[track_caller]
fn dump_refused(remote: &Remote, home: &Path, file: &str, bytes: &[u8]) {
    let rows = ["INSERT", "VALUES(", "d1_migrations"];
    refused_in_the_build(remote, home, file, bytes, "SQL dump", &rows);
}

/// FG 2: a backup's dump saved as UTF-16 (Windows PowerShell's `>`
/// writes it, with a byte order mark), either byte order, was published:
/// the check read it as no SQL. The tool's reader refuses UTF-16 (it names
/// the conversion), but the file is still every row of the database; it is
/// refused, compressed too.
#[test]
fn a_deploy_never_publishes_a_dump_saved_as_utf16() {
    let (remote, home, dump) = a_site_with_a_migration_pending();
    let home = home.path();
    let refused = |file: &str, bytes: &[u8]| dump_refused(&remote, home, file, bytes);
    refused("notes.txt", &utf16(&dump, false));
    refused("assets/export.dat", &utf16(&dump, true));
    let packed = zstd::encode_all(&utf16(&dump, false)[..], 3).unwrap();
    refused("blob.bin", &packed);
    the_site_deploys(&remote, home);
}

/// FG 3: a dump with a comment or blank lines before its first statement,
/// or whose first statement is not an export's header (the header cut
/// off, a hand-made dump of `CREATE TABLE` and `INSERT INTO` rows, rows
/// alone) was published. A file of SQL statements that inserts rows is
/// refused; the site's HTML, JavaScript, CSS, JSON and a schema file of
/// `CREATE` statements alone deploy.
#[test]
fn a_deploy_never_publishes_a_dump_behind_a_comment_or_without_its_header() {
    let (remote, home, dump) = a_site_with_a_migration_pending();
    let home = home.path();
    let refused = |file: &str, bytes: &[u8]| dump_refused(&remote, home, file, bytes);
    let with = |before: &str| [before.as_bytes(), &dump].concat();
    refused("a.txt", &with("/* prod, before the migration */\n"));
    refused("b.txt", &with("-- prod\n\n\n-- taken by hand\n"));
    refused("c.txt", &with("/* a\n   b */ -- c\n\r\n"));
    let text = String::from_utf8(dump.clone()).unwrap();
    let headless = text.split_once('\n').unwrap().1;
    assert!(headless.starts_with("CREATE TABLE"), "{headless:.40}");
    refused("d.txt", headless.as_bytes());
    let by_hand = "CREATE TABLE accounts(id INTEGER PRIMARY KEY, email TEXT);\n\
                   INSERT INTO accounts VALUES(1,'someone@example.com');\n";
    refused("assets/e.sql", by_hand.as_bytes());
    let rows = "BEGIN;\nINSERT INTO \"accounts\" (\"id\",\"email\") VALUES(1,'a@example.com');\n";
    refused("f", rows.as_bytes());
    the_site_deploys(&remote, home);
}

/// FG 4: wrangler's local secrets (`.dev.vars`, `.dev.vars.<env>`) and
/// `.env` files in the build were published (`wrangler pages deploy`
/// leaves out no dotfile). Each is refused by its name, whatever it holds,
/// and never printed.
#[test]
fn a_deploy_never_publishes_wranglers_local_secrets_or_an_env_file() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let vars = b"CLOUDFLARE_API_TOKEN=s3cr3t-t0ken\nQBT_CLIENT_SECRET=hunter2\n";
    for file in [
        ".dev.vars",
        ".dev.vars.staging",
        ".env",
        ".env.production",
        "assets/.env.local",
        ".well-known/.dev.vars",
    ] {
        let never = ["s3cr3t-t0ken", "hunter2"];
        refused_in_the_build(&remote, home, file, vars, "secrets", &never);
    }
    the_site_deploys(&remote, home);
}

/// rvH: an identity after a byte that is not UTF-8 (a Latin-1 notes
/// file, a key appended to an image) was published: the check read the
/// text only up to that byte. So was a dump without its header whose
/// first row is longer than the 4 KiB read (a large TEXT or JSON value),
/// and one in UTF-16 without a byte order mark that starts with a line
/// break. Each is refused, printing neither the key nor a row; so is an
/// identity after units of ASCII with NUL bytes (which read as UTF-32).
/// The site deploys, with its query template that ends inside an
/// `INSERT` (a whole file, not a head cut off).
#[test]
fn a_deploy_never_publishes_an_identity_after_a_byte_that_is_not_utf8_nor_a_dump_cut_by_its_head() {
    let (remote, home, dump) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let secret = [&key["AGE-SECRET-KEY-1".len()..][..20], "AGE-SECRET-KEY"];
    let latin1 = [&b"# cl\xe9 de sauvegarde\n"[..], key.as_bytes(), b"\n"].concat();
    refused_in_the_build(&remote, home, "notes.txt", &latin1, "age identity", &secret);
    let png = [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], key.as_bytes()].concat();
    refused_in_the_build(&remote, home, "logo.png", &png, "age identity", &secret);
    let tabs = b"\t\0\0\0\t\0\0\0\t\0\0\0A\0\0\0\n";
    let after_tabs = [&tabs[..], key.as_bytes(), b"\n"].concat();
    refused_in_the_build(
        &remote,
        home,
        "tabs.txt",
        &after_tabs,
        "age identity",
        &secret,
    );
    let rows = format!(
        "CREATE TABLE accounts(id INTEGER PRIMARY KEY, notes TEXT);\n\
         INSERT INTO accounts VALUES(1,'{}');\nINSERT INTO accounts VALUES(2,'b');\n",
        "a".repeat(5000)
    );
    dump_refused(&remote, home, "rows.txt", rows.as_bytes());
    let text = format!("\r\n{}", String::from_utf8(dump).unwrap());
    let bare: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    dump_refused(&remote, home, "export.txt", &bare);
    the_site_deploys(&remote, home);
}

/// HE 1: an age identity in lower case (`age-secret-key-1…`) was
/// published: Bech32 is case-insensitive as a whole, and rage (the Rust
/// age) reads such a key as the same identity (its Bech32 compares the
/// key's prefix in any case); the key is the same secret either way. It
/// is refused as one in upper case is, under any name, never printed. A
/// page that shows only the shape in lower case deploys.
#[test]
fn a_deploy_never_publishes_an_age_identity_in_lower_case() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (identity, key) = the_identity(home);
    let lower = key.to_ascii_lowercase();
    let body = &lower["age-secret-key-1".len()..][..20];
    let upper = body.to_ascii_uppercase();
    let secret = [body, &upper, "age-secret-key-1"];
    let refused = |file: &str, bytes: &[u8]| {
        refused_in_the_build(&remote, home, file, bytes, "age identity", &secret);
    };
    refused("key.txt", identity.to_ascii_lowercase().as_bytes());
    refused(
        "assets/app.js",
        format!("const k = \"{lower}\";\n").as_bytes(),
    );
    refused("k", &utf16(format!("{lower}\r\n").as_bytes(), false));
    let shape = "<p>age-keygen writes a line age-secret-key-1… (or age-secret-key-1...)\n";
    std::fs::write(remote.sb.path().join("dist/docs/lower.html"), shape).unwrap();
    the_site_deploys(&remote, home);
}

/// A made-up PEM body: base64 as a key's is, no key of anyone's.
const PEM_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDHe3v9q8Xb2pLr\n\
                        0Zk1vS4mT7YwN2hJ5cF8uQ3aE6rD9gK1oP4sW7zB0xV2nM5jL8tRfQ2aZ6yU1cH3";

/// The parts of [`PEM_BODY`] no refusal prints.
const PEM_NEVER_PRINTED: [&str; 2] = ["MIIEvQIBADANBgkq", "0Zk1vS4mT7YwN2hJ"];

/// `label`'s PEM block around [`PEM_BODY`], its lines ended by `eol`.
fn pem(label: &str, eol: &str) -> String {
    let body = PEM_BODY.replace('\n', eol);
    format!("-----BEGIN {label}-----{eol}{body}{eol}-----END {label}-----{eol}")
}

/// HE 2: a PEM private key in the build (a TLS key, an SSH key, a
/// service account's key in a JSON file) was published. Each kind is
/// refused, under any name, with LF or CRLF, inside a JSON string (`\n`
/// escaped) and encrypted (PKCS#8's `ENCRYPTED PRIVATE KEY`, the legacy
/// `Proc-Type: 4,ENCRYPTED` header), naming the file and the fix, never
/// printing the key. A public key, a certificate and a page that shows
/// only the markers deploy.
#[test]
fn a_deploy_never_publishes_a_pem_private_key() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let refused = |file: &str, text: &str| {
        let never = PEM_NEVER_PRINTED;
        refused_in_the_build(&remote, home, file, text.as_bytes(), "private key", &never);
    };
    refused("server.key", &pem("PRIVATE KEY", "\n"));
    refused("assets/rsa.pem", &pem("RSA PRIVATE KEY", "\r\n"));
    refused("ec.txt", &pem("EC PRIVATE KEY", "\n"));
    refused(".ssh/id_ed25519", &pem("OPENSSH PRIVATE KEY", "\n"));
    refused("k.p8", &pem("ENCRYPTED PRIVATE KEY", "\n"));
    let legacy = pem("RSA PRIVATE KEY", "\n").replacen(
        "-----\n",
        "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n",
        1,
    );
    refused("legacy.pem", &legacy);
    let json = pem("PRIVATE KEY", "\\n");
    refused(
        "config/service-account.json",
        &format!("{{\"type\": \"service_account\", \"private_key\": \"{json}\"}}\n"),
    );

    let dist = remote.sb.path().join("dist");
    std::fs::write(dist.join("public.pem"), pem("PUBLIC KEY", "\n")).unwrap();
    std::fs::write(dist.join("cert.pem"), pem("CERTIFICATE", "\n")).unwrap();
    let shape = "<pre>-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----</pre>\n\
                 <p>Paste -----BEGIN RSA PRIVATE KEY----- &lt;your key here&gt;</p>\n";
    std::fs::write(dist.join("docs/tls.html"), shape).unwrap();
    the_site_deploys(&remote, home);
}

/// `text` after `at` bytes of JavaScript comments.
fn after_padding(at: usize, text: &str) -> Vec<u8> {
    let line = "// the site's bundle, a line of it\n";
    let mut padding = line.repeat(at / line.len() + 1);
    padding.truncate(at);
    [padding.as_bytes(), text.as_bytes()].concat()
}

/// `bytes` at `dist/<file>` is refused as an age identity, printing no
/// part of `key`.
#[track_caller]
fn identity_refused(remote: &Remote, home: &Path, key: &str, file: &str, bytes: &[u8]) {
    let secret = [&key["AGE-SECRET-KEY-1".len()..][..20], "AGE-SECRET-KEY"];
    refused_in_the_build(remote, home, file, bytes, "age identity", &secret);
}

/// HE 3: only the first 4 KiB of each file were read, so a secret after
/// them (a key pasted at the end of a bundle, a notes file) was published.
/// Each file is read whole: an identity or a PEM private key is refused
/// wherever it is, across the boundaries a reader would read the file in
/// too, in UTF-16 as well. A large bundle with no secret deploys.
#[test]
fn a_deploy_never_publishes_a_secret_past_the_first_4_kib() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let identity = |file: &str, bytes: &[u8]| identity_refused(&remote, home, &key, file, bytes);
    let line = format!("const k = \"{key}\";\n");
    identity("assets/app.js", &after_padding(8 * 1024, &line));
    for boundary in [4096, 64 << 10, 256 << 10, 1 << 20] {
        identity("big.txt", &after_padding(boundary - 40, &line));
    }
    let wide = utf16(&after_padding(6 * 1024, &line), false);
    identity("wide.txt", &wide);
    let key = pem("PRIVATE KEY", "\n");
    let never = PEM_NEVER_PRINTED;
    let notes = after_padding((3 << 20) + 17, &key);
    refused_in_the_build(&remote, home, "notes.txt", &notes, "private key", &never);

    let bundle = after_padding(12 << 20, "export {};\n");
    std::fs::write(remote.sb.path().join("dist/assets/vendor.js"), bundle).unwrap();
    the_site_deploys(&remote, home);
}

/// prod holds an index whose text ends in a `--` comment, and the
/// migration that recreates it without the comment is pending. The
/// deploy's pre-deploy backup is refused over that index: the deploy stops
/// there, publishing nothing and applying nothing, and the way out it
/// prints is migrate's (`migrate prod --no-backup --reason` with prod's
/// confirmation, once Time Travel's bookmark is noted), not a deploy retried.
#[test]
fn a_deploy_whose_backup_is_refused_over_a_commented_index_publishes_nothing_and_says_migrate() {
    use crate::generated_shapes::{PROD_WITH_A_COMMENTED_INDEX, says_the_way_that_works};
    let remote = Remote::new(PROD_WITH_A_COMMENTED_INDEX);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    std::fs::write(
        remote.sb.path().join("migrations/0005_shifts_live.sql"),
        "DROP INDEX shifts_live;\n\
         CREATE INDEX shifts_live ON shifts (id) WHERE deleted_at IS NULL;\n",
    )
    .unwrap();
    let before = dump_of(&remote.db);
    let run = deploy(&remote, home.path(), PROD_FROM_MAIN);
    says_the_way_that_works(&remote, &run);
    assert!(!deployed(&remote), "published:\n{}", run.all());
    assert!(!run.all().contains("Pages deploy: echo"), "{}", run.all());
    assert_eq!(counts(&remote.db)["d1_migrations"], 4);
    assert_eq!(dump_of(&remote.db), before, "prod changed");
    assert!(
        remote.server.r2_keys(BUCKET).is_empty(),
        "something uploaded"
    );
}

/// HU: a file that starts with zstd's magic bytes was searched only as
/// what it unpacks to: one whose frame does not unpack (its raw bytes
/// hold a key), and a valid frame with a key appended after it, were
/// published. Each is refused, small or past the first 4 KiB, naming the
/// file, never printing the key.
#[test]
fn a_deploy_never_publishes_an_identity_beside_a_zstd_frame() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let secret = [&key["AGE-SECRET-KEY-1".len()..][..20], "AGE-SECRET-KEY"];
    let refused = |file: &str, bytes: &[u8]| {
        refused_in_the_build(&remote, home, file, bytes, "age identity", &secret);
    };
    let line = format!("\n{key}\n");
    let bad = [&b"\x28\xb5\x2f\xfd\xff\xff\xff\xff"[..], line.as_bytes()].concat();
    refused("assets/app.js", &bad);
    let padding = vec![b'x'; 300 * 1024];
    let long = [
        &b"\x28\xb5\x2f\xfd\xff\xff\xff\xff"[..],
        &padding,
        line.as_bytes(),
    ]
    .concat();
    refused("assets/app.js", &long);
    let frame = zstd::encode_all(&b"const rows = [];\n"[..], 3).unwrap();
    refused("assets/app.js", &[&frame[..], line.as_bytes()].concat());
    let big = zstd::encode_all(&padding[..], 3).unwrap();
    refused("assets/app.js", &[&big[..], line.as_bytes()].concat());
    std::fs::write(remote.sb.path().join("dist/assets/app.js"), &frame).unwrap();
    the_site_deploys(&remote, home);
}

/// HX: a deploy unpacked only zstd, and only one frame of it, read to its
/// first 25 MiB: a gzip file (an identity gzipped, a backup's dump gzipped
/// under another name), a zstd frame inside another, or one after a
/// skippable frame (as pzstd writes) was published with what it holds. A
/// compressed file is unpacked whatever its form; one nested too deep is
/// refused, as it cannot be checked. A gzip asset of text, and one that
/// unpacks past 25 MiB (read to its end, IM), still deploy.
#[test]
fn a_deploy_never_publishes_what_gzip_nested_or_large_compression_hides() {
    let (remote, home, dump) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let refused = |file: &str, bytes: &[u8], why: &str| {
        hidden_key_refused(&remote, home, &key, (file, bytes), why);
    };
    let zstd = |bytes: &[u8]| zstd::encode_all(bytes, 3).unwrap();
    // Notes around the key, so that it is packed too (its bytes coded),
    // not stored as it is.
    let words = (0..600u32).map(|i| format!("w{} ", i.wrapping_mul(2_654_435_761) % 997));
    let notes = words.collect::<String>();
    let text = format!("# notes: {notes}\n{key}\n# more: {notes}\n");
    refused("id.txt.gz", &gzip(text.as_bytes()), "age identity");
    refused("data.bin", &gzip(&dump), "SQL dump");
    refused("nested.bin", &zstd(&zstd(text.as_bytes())), "age identity");
    let deep = (0..3).fold(zstd(text.as_bytes()), |packed, _| zstd(&packed));
    refused("deep.bin", &deep, "cannot be checked");
    let mut skipped = b"\x50\x2a\x4d\x18\x04\0\0\0pzst".to_vec();
    skipped.extend(zstd(text.as_bytes()));
    refused("app.js", &skipped, "age identity");
    let asset = "const rows = []; // see the docs\n".repeat(400);
    let path = remote.sb.path().join("dist/assets/app.js.gz");
    std::fs::write(path, gzip(asset.as_bytes())).unwrap();
    // rvR: an ordinary asset that unpacks past 25 MiB (a game's data, an
    // archive for download) is published; it is read to its end (IM).
    let large = vec![b'x'; 26 * 1024 * 1024];
    let path = remote.sb.path().join("dist/assets/game.data.gz");
    std::fs::write(path, gzip(&large)).unwrap();
    the_site_deploys(&remote, home);
}

/// IM 1: a deploy searched only the first 25 MiB of what a compressed
/// file unpacks to: a gzip file of a few KB holding 26 MiB of blanks and
/// then an age identity or a PEM private key was published. The whole
/// stream is searched, so each is refused; an asset that unpacks past 25
/// MiB holding neither still deploys.
#[test]
fn a_deploy_never_publishes_a_secret_past_25_mib_unpacked() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let blanks = vec![b' '; 26 << 20];
    let hidden = gzip(&[&blanks[..], key.as_bytes(), b"\n"].concat());
    assert!(hidden.len() < 100 << 10, "{}", hidden.len());
    hidden_key_refused(
        &remote,
        home,
        &key,
        ("game.data.gz", &hidden),
        "age identity",
    );
    let pem = concat!(
        "-----BEGIN PRIVATE ",
        "KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    );
    let packed = gzip(&[&blanks[..], pem.as_bytes()].concat());
    refused_in_the_build(
        &remote,
        home,
        "game.data.gz",
        &packed,
        "private key",
        &["MIIEvQ"],
    );
    let path = remote.sb.path().join("dist/assets/game.data.gz");
    std::fs::write(path, gzip(&blanks)).unwrap();
    the_site_deploys(&remote, home);
}

/// IE 1: a compressed file whose stream stops unpacking with an error (a
/// byte after a gzip member, a zstd frame after one) was searched only as
/// its raw bytes: what it had unpacked before the error was thrown away,
/// so a gzipped identity or dump with a trailing byte, or an identity in a
/// zstd frame after a gzip member, was published. What was unpacked is
/// searched, and a stream that stops unpacking is refused as one that
/// cannot be checked when that holds nothing. An ordinary gzip asset still
/// deploys.
#[test]
fn a_deploy_never_publishes_what_a_compressed_stream_hides_before_an_error() {
    let (remote, home, dump) = a_site_with_a_migration_pending();
    let home = home.path();
    let (identity, key) = the_identity(home);
    let refused = |file: &str, bytes: &[u8], why: &str| {
        hidden_key_refused(&remote, home, &key, (file, bytes), why);
    };
    let words = (0..600u32).map(|i| format!("w{} ", i.wrapping_mul(2_654_435_761) % 997));
    let notes = words.collect::<String>();
    let text = format!("# notes: {notes}\n{key}\n# more: {notes}\n");
    let nul = |packed: Vec<u8>| [packed, vec![0]].concat();
    refused("id.txt.gz", &nul(gzip(identity.as_bytes())), "age identity");
    refused("notes.txt.gz", &nul(gzip(text.as_bytes())), "age identity");
    let after = [
        gzip(b"const rows = [];\n"),
        zstd::encode_all(text.as_bytes(), 3).unwrap(),
    ];
    refused("app.js.gz", &after.concat(), "cannot be checked");
    refused(
        "data.bin",
        &[gzip(&dump), b"\x01".to_vec()].concat(),
        "SQL dump",
    );
    let asset = "const rows = []; // see the docs\n".repeat(400);
    let path = remote.sb.path().join("dist/assets/app.js.gz");
    std::fs::write(path, gzip(asset.as_bytes())).unwrap();
    the_site_deploys(&remote, home);
}

/// IM 2: a gzip asset with zeros after its last member (valid to `gzip
/// -dc`, which ignores them) was refused as one that cannot be checked.
/// It deploys; a key in one is refused, and so is one whose tail holds
/// bytes that are neither zeros nor a gzip member.
#[test]
fn a_deploy_publishes_a_gzip_asset_with_zeros_after_its_last_member() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (identity, key) = the_identity(home);
    let zeros = vec![0; 1024];
    let asset = gzip("const rows = []; // see the docs\n".repeat(400).as_bytes());
    let packed = [gzip(identity.as_bytes()), zeros.clone()].concat();
    hidden_key_refused(&remote, home, &key, ("id.txt.gz", &packed), "age identity");
    let garbage = [asset.clone(), zeros.clone(), b"x".to_vec()].concat();
    let cut = ("assets/cut.js.gz", &garbage[..]);
    hidden_key_refused(&remote, home, &key, cut, "cannot be checked");
    let path = remote.sb.path().join("dist/assets/app.js.gz");
    std::fs::write(path, [asset, zeros].concat()).unwrap();
    the_site_deploys(&remote, home);
}

/// A gzip file of `pattern_mib` MiB of text (members of 1 MiB, each
/// packed once) with, after its first, a member storing `random_mib` MiB
/// of bytes that do not compress: a file of `random_mib` MiB that unpacks
/// to their sum, made cheaply.
fn large_gzip(random_mib: usize, pattern_mib: usize) -> Vec<u8> {
    use std::io::Read as _;
    let text = "const rows = []; // see the docs\n".repeat((1 << 20) / 33 + 1);
    let member = gzip(&text.as_bytes()[..1 << 20]);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise = (0..random_mib << 17).flat_map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()
    });
    let noise = noise.collect::<Vec<u8>>();
    let mut stored = flate2::read::GzEncoder::new(&noise[..], flate2::Compression::none());
    let mut packed = member.clone();
    stored.read_to_end(&mut packed).unwrap();
    packed.extend(member.repeat(pattern_mib - 1));
    packed
}

/// rvY 1: the 200 MiB bound on what a compressed file unpacks to counted
/// the file's own bytes and the pass over its head too, so an ordinary
/// asset of 20 MiB that unpacks to 190 MiB was refused, told it "unpacks
/// past 200 MiB" (it does not) and to compress it again with fewer layers
/// (which cannot help). Only what is unpacked is counted: it deploys. One
/// that really unpacks past 200 MiB is refused as too large to check,
/// with a way out that works: move it out of the build, or serve it
/// uncompressed under 25 MiB.
#[test]
fn a_deploy_publishes_a_gzip_asset_unpacking_under_200_mib_and_names_the_way_out_past_it() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let past = large_gzip(20, 185);
    let path = remote.sb.path().join("dist/assets/big.data.gz");
    std::fs::write(&path, &past).unwrap();
    let run = deploy(&remote, home, &[&PROD_DEPLOY[..], &["--dry-run"]].concat());
    let ways = [
        "move it out of the build",
        "R2",
        "uncompressed, under 25 MiB",
    ];
    let said = ways.iter().all(|w| run.stderr.contains(w));
    assert!(run.code == Some(2) && said, "{}", run.all());
    assert!(!run.stderr.contains("fewer layers"), "{}", run.all());
    let why = "unpacks to more than 200 MiB: too large to check";
    refused_in_the_build(&remote, home, "assets/big.data.gz", &past, why, &[]);
    let path = remote.sb.path().join("dist/assets/data.json.gz");
    std::fs::write(path, large_gzip(20, 170)).unwrap();
    the_site_deploys(&remote, home);
}

/// IM 3: a gzip file of a million empty members (20 MiB, unpacking to
/// nothing) was published after a deploy read it member by member. A
/// stream of more members than any ordinary file has cannot be checked,
/// and is refused; a gzip asset of a few members (`cat a.gz b.gz`) still
/// deploys.
#[test]
fn a_deploy_refuses_a_gzip_file_of_a_million_empty_members() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let members = gzip(b"").repeat(1 << 20);
    let bomb = ("members.bin", &members[..]);
    hidden_key_refused(&remote, home, &key, bomb, "cannot be checked");
    let asset = gzip("const rows = []; // see the docs\n".repeat(400).as_bytes());
    let path = remote.sb.path().join("dist/assets/app.js.gz");
    std::fs::write(path, asset.repeat(8)).unwrap();
    the_site_deploys(&remote, home);
}

/// JB 1, 2: a zstd stream's frames were not bounded as gzip members are:
/// a file of many empty frames (or skippable ones) was read frame by
/// frame, each begun anew; and a log gzipped a line at a time was refused
/// past 10,000 members. Each member or frame is counted against the bound
/// on what is unpacked: a million frames are too large to check, and the
/// file is refused, named, with the fix; 100,000 frames, and a log of
/// 100,000 gzip members, deploy.
#[test]
fn a_deploy_refuses_a_zstd_stream_of_a_million_frames_and_publishes_a_log_gzipped_a_line_at_a_time()
{
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let empty = zstd::encode_all(&b""[..], 3).unwrap();
    let skippable = [0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
    let fix = "compress it again whole";
    for frames in [
        empty.repeat(1 << 20),
        [&empty[..], &skippable.repeat(1 << 20)].concat(),
    ] {
        let file = ("frames.bin", &frames[..]);
        refused_in_the_build(&remote, home, file.0, file.1, "too large to check", &[]);
        refused_in_the_build(&remote, home, file.0, file.1, fix, &[]);
    }
    let assets = remote.sb.path().join("dist/assets");
    std::fs::write(assets.join("frames.bin"), empty.repeat(100_000)).unwrap();
    let log = gzip(b"12:00:00 GET /api/time 200 1234\n").repeat(100_000);
    std::fs::write(assets.join("app.log.gz"), log).unwrap();
    the_site_deploys(&remote, home);
}

/// IE 3: an entry of the build that is not a file `wrangler pages deploy`
/// can read was passed over by the deploy's check: a named pipe (its read
/// waits forever) or a file this user cannot read made the Pages deploy
/// hang or fail after the backup and the migrations ran. Each is refused
/// before anything runs (exit 2), named, with the fix. (The unreadable
/// file is not tried as root, who reads any file.)
#[test]
fn a_deploy_refuses_a_pipe_or_an_unreadable_file_in_the_build_before_anything_runs() {
    use std::os::unix::fs::PermissionsExt as _;
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let dist = remote.sb.path().join("dist");
    let refused = |file: &str, says: &str| {
        let before = counts(&remote.db);
        for dry in [&["--dry-run"][..], &[]] {
            let run = deploy(&remote, home, &[&PROD_DEPLOY[..], dry].concat());
            let told = [&format!("dist/{file} "), says, "Nothing was run"];
            assert!(
                run.code == Some(2) && told.iter().all(|t| run.stderr.contains(t)),
                "{file} {dry:?}:\n{}",
                run.all()
            );
            let ran = run.stdout.contains("doctor") || run.stdout.contains("Pre-migration backup");
            assert!(!ran && !deployed(&remote), "{file}: ran:\n{}", run.all());
            assert_eq!(counts(&remote.db), before, "{file}: migrated");
        }
    };
    let pipe = dist.join("assets/feed");
    let made = std::process::Command::new("mkfifo").arg(&pipe).status();
    assert!(made.unwrap().success());
    refused("assets/feed", "a pipe");
    std::fs::remove_file(&pipe).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        let secret = dist.join("notes.txt");
        std::fs::write(&secret, "notes\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        refused("notes.txt", "cannot read");
        std::fs::remove_file(&secret).unwrap();
    }
    the_site_deploys(&remote, home);
}

/// IA 1–3: a compressed file whose unpacking has no end worth reading (a
/// bomb: a small gzip of gzip members that unpack to nothing), or a zstd
/// frame that asks for a window larger than the decoder's limit (`zstd
/// --long=31`), was published unchecked; a key in the raw bytes of an
/// inner layer that does not unpack (a corrupt zstd frame, or one after a
/// skippable frame, inside gzip), or in a truncated gzip file, was not
/// searched. The deploy ends, refusing each (exit 2, naming the file);
/// a truncated gzip asset that holds nothing cannot be checked, and is
/// refused too; whole, it is published.
#[test]
fn a_deploy_refuses_a_compression_bomb_and_searches_a_layer_that_does_not_unpack() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let refused = |file: &str, bytes: &[u8], why: &str| {
        hidden_key_refused(&remote, home, &key, (file, bytes), why);
    };
    let words = (0..600u32).map(|i| format!("w{} ", i.wrapping_mul(2_654_435_761) % 997));
    let notes = words.collect::<String>();
    let text = format!("# notes: {notes}\n{key}\n# more: {notes}\n");
    // 1. A zstd skippable frame of 4 GiB, gzipped: 16 gzip members of 20
    // MiB of zeros after its header, 320 MiB that unpack to nothing.
    let zeros = gzip(&vec![0; 20 << 20]);
    let header = gzip(b"\x50\x2a\x4d\x18\xff\xff\xff\xff");
    let bomb = [header, zeros.repeat(16)].concat();
    refused("bomb.bin", &bomb, "cannot be checked");
    // 2. A corrupt zstd frame, its raw bytes holding the key, gzipped;
    // the key in a skippable frame before a valid one, gzipped; a
    // truncated gzip file, and one inside another.
    let line = format!("# {notes}\n{key}\n");
    let corrupt = [&b"\x28\xb5\x2f\xfd\xff\xff\xff\xff"[..], line.as_bytes()].concat();
    refused("corrupt.bin", &gzip(&corrupt), "age identity");
    let mut skipped = b"\x50\x2a\x4d\x18".to_vec();
    skipped.extend((line.len() as u32).to_le_bytes());
    skipped.extend(line.as_bytes());
    skipped.extend(zstd::encode_all(&b"const rows = [];\n"[..], 3).unwrap());
    refused("skipped.bin", &gzip(&skipped), "age identity");
    let truncated = |bytes: &[u8]| bytes[..bytes.len() - 8].to_vec();
    refused(
        "cut.js.gz",
        &truncated(&gzip(text.as_bytes())),
        "age identity",
    );
    let inner = truncated(&gzip(text.as_bytes()));
    refused("cut2.bin", &gzip(&inner), "age identity");
    // 3. A frame whose header asks for a 2 GiB window, as `zstd
    // --long=31` writes: the decoder's default limit refuses it.
    let mut wide = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    std::io::Write::write_all(&mut wide, text.as_bytes()).unwrap();
    let mut wide = wide.finish().unwrap();
    assert_eq!(wide[4] & 0xe0, 0, "a window descriptor follows");
    wide[5] = (31 - 10) << 3;
    refused("long.js.zst", &wide, "cannot be checked");
    refused("long.bin", &gzip(&wide), "cannot be checked");
    // A truncated gzip asset that holds nothing in what it unpacks: what
    // was cut off may have held a key, so it cannot be checked (IE 1).
    // Whole, it deploys.
    let asset = "const rows = []; // see the docs\n".repeat(400);
    let cut = truncated(&gzip(asset.as_bytes()));
    refused("assets/cut.js.gz", &cut, "cannot be checked");
    let path = remote.sb.path().join("dist/assets/cut.js.gz");
    std::fs::write(path, gzip(asset.as_bytes())).unwrap();
    the_site_deploys(&remote, home);
}

/// IA 4: a PEM private key and an age identity in a file saved as
/// UTF-16LE with a byte order mark are refused as in UTF-8.
#[test]
fn a_deploy_never_publishes_a_pem_key_or_an_identity_in_utf16() {
    let (remote, home, _) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let key_pem = pem("PRIVATE KEY", "\r\n");
    let never = PEM_NEVER_PRINTED;
    let wide = utf16(key_pem.as_bytes(), false);
    refused_in_the_build(&remote, home, "k.pem", &wide, "private key", &never);
    identity_refused(&remote, home, &key, "k.txt", &utf16(key.as_bytes(), false));
}

/// IL (rvV): a deploy never looked inside an archive: a tarball of a
/// backup (`tar czf dist/a.tar.gz backups/prod.sql.zst`), a zip file
/// holding an identity and a dump, the key file packed with `xz` or
/// `bzip2`, all were published. A zip (an empty one and a spanned one
/// too), a tar (plain, or inside gzip or zstd), a 7z, an xz or a bzip2
/// file is told by its magic bytes and refused, named, as an archive this
/// deploy does not look inside, with the fix. An ordinary gzip asset, and
/// a text file that says `ustar`, still deploy. A case whose tool is not
/// on the machine is skipped, and says so.
#[test]
fn a_deploy_refuses_an_archive_it_does_not_look_inside() {
    let (remote, home, dump) = a_site_with_a_migration_pending();
    let home = home.path();
    let (_, key) = the_identity(home);
    let secret = [&key["AGE-SECRET-KEY-1".len()..][..20], "AGE-SECRET-KEY"];
    let refused = |file: &str, bytes: &[u8]| {
        let hidden = bytes.windows(key.len()).any(|w| w == key.as_bytes());
        assert!(!hidden, "{file}: the key is in its raw bytes");
        refused_in_the_build(&remote, home, file, bytes, "does not look inside", &secret);
    };
    // The files a careless build packs: a backup, and notes around the key
    // (so that it is packed too, its bytes coded, not stored as they are).
    let words = (0..600u32).map(|i| format!("w{} ", i.wrapping_mul(2_654_435_761) % 997));
    let notes = words.collect::<String>();
    let text = format!("# notes: {notes}\n{key}\n# more: {notes}\n");
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("backups")).unwrap();
    let backup = zstd::encode_all(&dump[..], 3).unwrap();
    std::fs::write(work.path().join("backups/prod.sql.zst"), &backup).unwrap();
    std::fs::write(work.path().join("key.txt"), &text).unwrap();
    std::fs::write(work.path().join("dump.sql"), &dump).unwrap();
    let packed = |tool: &str, args: &[&str]| -> Option<Vec<u8>> {
        let run = std::process::Command::new(tool)
            .args(args)
            .current_dir(work.path())
            .output();
        match run {
            Ok(out) if out.status.success() => Some(out.stdout),
            Ok(out) => panic!("{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                eprintln!("SKIPPED: the {tool} case: {tool} is not on this machine ({e})");
                None
            }
        }
    };
    if let Some(tar) = packed("tar", &["cf", "-", "backups/prod.sql.zst"]) {
        refused("a.tar", &tar);
        refused("a.tar.gz", &gzip(&tar));
        refused("a.tar.zst", &zstd::encode_all(&tar[..], 3).unwrap());
    }
    if let Some(tgz) = packed("tar", &["czf", "-", "backups/prod.sql.zst"]) {
        refused("backup.tgz", &tgz);
    }
    if let Some(zip) = packed("zip", &["-q", "-9", "-", "key.txt", "dump.sql"]) {
        refused("b.zip", &zip);
    }
    if let Some(xz) = packed("xz", &["-c", "key.txt"]) {
        refused("key.txt.xz", &xz);
    }
    if let Some(bz) = packed("bzip2", &["-c", "key.txt"]) {
        refused("key.bz2", &bz);
    }
    // Made by hand: an empty zip (its end of central directory only), a
    // spanned zip's first bytes, a 7z's signature header.
    let mut empty = b"PK\x05\x06".to_vec();
    empty.extend([0; 18]);
    refused("empty.zip", &empty);
    let mut spanned = b"PK\x07\x08PK\x03\x04".to_vec();
    spanned.extend([0; 40]);
    refused("part.z01", &spanned);
    let mut seven = vec![0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4];
    seven.extend([0x11; 40]);
    refused("backups.7z", &seven);
    // Controls: an ordinary gzip asset, and text that says ustar at 257.
    let asset = "const rows = []; // see the docs\n".repeat(400);
    let path = remote.sb.path().join("dist/assets/app.js.gz");
    std::fs::write(path, gzip(asset.as_bytes())).unwrap();
    let words = format!("{}ustar is a tar format\n", "x".repeat(257));
    std::fs::write(remote.sb.path().join("dist/formats.txt"), words).unwrap();
    the_site_deploys(&remote, home);
}

/// JE: deploy applies through the same step as migrate: a migration
/// written after its plan was shown (here while the name is asked) is
/// refused (exit 3), named; prod gains nothing and Pages is not deployed.
#[test]
fn a_deploy_refuses_a_migration_added_after_its_plan_was_shown() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    let mut cmd = remote.xtask_command(home.path(), &["deploy", "prod", "--branch", "main"]);
    cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log");
    let mut run = InATerminal::of(cmd);
    add_a_migration_at_the_question(&mut run, remote.sb.path(), "qbtime_db_prod");
    let (code, out) = run.end();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("0005_surprise.sql (new)"), "{out}");
    assert!(!out.contains("Applied "), "{out}");
    assert!(!deployed(&remote), "{out}");
    assert_eq!(counts(&remote.db)["d1_migrations"], 3, "{out}");
    assert!(!counts(&remote.db).contains_key("surprise"), "{out}");
}

/// LD: `migrate` refuses, before its backup, a pending migration whose
/// statement names a table not there, every statement before it having
/// run on a full copy of the schema; the deploy took, verified and
/// uploaded its pre-migration backup and then failed at its migrate step.
/// It refuses it the same way (exit 3, the migration, the statement and
/// `migrate`'s words), the dry run included, before any backup, and
/// deploys nothing.
#[test]
fn a_migration_the_plan_knows_d1_refuses_is_refused_before_the_deploys_backup() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    let shape = remote.sb.path().join("migrations/0005_shape.sql");
    let sql = "CREATE TABLE shapes (id INTEGER PRIMARY KEY);\nINSERT INTO nowhere VALUES (1);\n";
    std::fs::write(shape, sql).unwrap();
    let before = remote.sb.backup_files();
    for dry in [true, false] {
        let mut args = PROD_FROM_MAIN.to_vec();
        args.extend(dry.then_some("--dry-run"));
        let run = deploy(&remote, home.path(), &args);
        assert_eq!(run.code, Some(3), "{}", run.all());
        for said in [
            "refusing to migrate qbtime_db_prod",
            "0005_shape.sql",
            "statement 2",
            "no such table: nowhere",
            "no backup was taken",
        ] {
            assert!(run.stderr.contains(said), "{said:?}:\n{}", run.all());
        }
        assert_eq!(requests_to(&remote, "/export"), 0, "no export was started");
        nothing_written(&remote, &before, &run);
    }
}

/// OF 2: a deploy of local interrupted while wrangler applied a migration
/// it had not begun said "there is nothing to restore. Its pre-migration
/// backup is named below.", then named none below, and gave a restore of
/// that backup as the way back. As `migrate` says it: nothing applied,
/// nothing to restore, the backup named as kept, and no restore to run.
#[test]
fn an_interrupted_local_deploy_that_applied_nothing_names_its_backup_and_no_restore() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.server.add_bucket(BUCKET);
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    encrypt_backups_of(&remote.sb, "local", &recipient);
    let settings = remote.sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        format!("[local.offsite]\nbucket = \"{BUCKET}\"\n\n{text}"),
    )
    .unwrap();
    remote.sb.apply_migrations();
    remote.sb.execute_sql(SEED_SQL);
    // Slow on the database's rows, quick on the plan's empty tables, as
    // migrate_local's interrupted migrate.
    std::fs::write(
        remote.sb.path().join("migrations/0005_slow.sql"),
        "CREATE TABLE slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 \
         FROM c WHERE x < 200000000 * (SELECT count(*) > 0 FROM accounts)) \
         SELECT count(*) AS n FROM c;\n",
    )
    .unwrap();
    remote
        .sb
        .git(&["checkout", "-q", "-b", "preview/x"])
        .assert_ok();
    let mut cmd = remote.xtask_command(
        home.path(),
        &["deploy", "local", "--branch", "preview/x", "--yes"],
    );
    cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log");
    let run = interrupt_once_on_stderr(cmd, "wrangler: apply migrations");
    assert_eq!(run.code, Some(130), "{}", run.all());
    let backup = { remote.sb.backup_files().into_iter() }
        .find(|f| f.ends_with(".sql.zst.age"))
        .unwrap_or_else(|| panic!("no backup taken:\n{}", run.all()));
    assert!(
        run.stderr
            .contains("none of 0005_slow.sql was applied to qbtime_db_local")
            && run.stderr.contains("there is nothing to restore"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("named below"), "{}", run.all());
    assert!(
        { run.stderr.lines() }.any(|l| l.contains(&backup) && l.contains("is kept")),
        "{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("restore backup-") && !run.stderr.contains("To go back"),
        "an interrupted deploy that applied nothing gives a restore:\n{}",
        run.all()
    );
    assert!(!deployed(&remote));
}

/// rvCC 2, for the deploy: onto prod with no migration applied and no
/// table but `d1_migrations`, a pending migration D1 applies whose
/// foreign key SQLite cannot check ([`crate::migrate_local::MISMATCHED_PC`])
/// is warned of in migrate's words, and the deploy goes on to the end.
#[test]
fn a_deploy_onto_a_database_without_tables_warns_of_a_faulty_foreign_key_d1_applies() {
    let remote = Remote::with_migrations("", 0);
    let home = tempfile::tempdir().unwrap();
    encrypted_offsite(&remote, home.path());
    let (name, sql) = crate::migrate_local::MISMATCHED_PC;
    std::fs::write(remote.sb.path().join("migrations").join(name), sql).unwrap();
    let run = deploy(&remote, home.path(), PROD_FROM_MAIN);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        crate::migrate_local::warned_of_pcs_faulty_key(&run),
        "{}",
        run.all()
    );
    assert!(deployed(&remote), "{}", run.all());
}
