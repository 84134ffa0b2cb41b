//! Disaster recovery on a new machine, by the README and the messages
//! alone: prod's data damaged by a bulk update, the laptop that took the
//! backups gone, the encrypted copy in R2 and the age identity pasted from
//! a password manager.

use crate::common;

use common::remote::*;
use common::*;

const BUCKET: &str = "qbtime-d1-backups";

/// A loopback prod whose encrypted backup went to R2 from a machine that
/// is gone (nothing in backups/), then damaged by a bulk update; the
/// copy fetched onto this new machine. Returns the remote, HOME, the
/// identity file, its recipient and the fetched backup's name.
fn fetched_on_a_new_machine() -> (
    Remote,
    tempfile::TempDir,
    std::path::PathBuf,
    String,
    String,
) {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    remote
        .xtask(
            home.path(),
            &["backup", "prod", "--encrypt-to", &recipient, "--upload"],
        )
        .assert_ok();
    std::fs::remove_dir_all(remote.sb.backups()).unwrap();
    execute_file(&remote.db, "UPDATE customers SET name = 'oops';");
    remote
        .xtask(
            home.path(),
            &["offsite", "fetch", "latest", "--env", "prod"],
        )
        .assert_ok();
    let name = remote
        .sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql.zst.age"))
        .unwrap();
    (remote, home, key, recipient, name)
}

fn private_file(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_public_key_pasted_instead_of_the_identity_is_named_and_the_fix_is_readable() {
    let (remote, home, key, recipient, name) = fetched_on_a_new_machine();
    let keytext = std::fs::read_to_string(&key).unwrap();
    let secret = keytext
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    // The password manager's "public key" field, pasted into the file the
    // operator then passes as --identity. It holds no secret, so nothing
    // needs hiding: the message must say what the file needs, readably,
    // and that what it holds is the public key (the recipient).
    let public = private_file(home.path(), "id.txt", &format!("{recipient}\r\n"), 0o600);
    let run = remote.xtask(
        home.path(),
        &["verify", &name, "--identity", &public, "--no-record"],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(!run.all().contains(&secret), "{}", run.all());
    assert!(
        !run.all().contains("[REDACTED]"),
        "the advice itself is redacted, so the fix cannot be read:\n{}",
        run.all()
    );
    assert!(
        run.all().contains("AGE-SECRET-KEY-"),
        "names the line the file needs:\n{}",
        run.all()
    );
    assert!(
        run.all().contains("public key") || run.all().contains("recipient"),
        "says the file holds the public key, not the identity:\n{}",
        run.all()
    );
    // The same recipient in the variable the README names: it is no file
    // at all, and the message says what the variable takes.
    let mut cmd = remote.xtask_command(home.path(), &["verify", &name, "--no-record"]);
    cmd.env("QBTIME_AGE_IDENTITY", &recipient);
    let run = Run::from_output(cmd.output().unwrap());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        !run.all().contains("[REDACTED]"),
        "the advice itself is redacted, so the fix cannot be read:\n{}",
        run.all()
    );
    assert!(
        run.all().contains("public key") || run.all().contains("recipient"),
        "says QBTIME_AGE_IDENTITY was given the public key:\n{}",
        run.all()
    );
    // Nothing was recorded and the backup is still there, unverified.
    assert!(remote.sb.backups().join(&name).is_file());
    assert_eq!(
        manifest_for(&remote.sb, &name)["verification"]["outcome"],
        serde_json::Value::Null
    );
}

#[test]
fn verify_with_the_wrong_identity_names_the_recipients_it_needs_as_restore_does() {
    let (remote, home, _key, recipient, name) = fetched_on_a_new_machine();
    let other = home.path().join("other.txt");
    remote
        .xtask(home.path(), &["keygen", "--out", other.to_str().unwrap()])
        .assert_ok();
    let other = other.to_str().unwrap();
    // restore (and diff) say which recipient's identity is needed.
    let restore = remote.xtask(
        home.path(),
        &[
            "restore",
            &name,
            "--to",
            "prod",
            "--replace",
            "--dry-run",
            "--identity",
            other,
        ],
    );
    assert_ne!(restore.code, Some(0), "{}", restore.all());
    assert!(restore.stderr.contains(&recipient), "{}", restore.all());
    // verify, the step the README and the fetch send the operator to
    // first, says only age's "no identity matched".
    let verify = remote.xtask(
        home.path(),
        &["verify", &name, "--identity", other, "--no-record"],
    );
    assert_eq!(verify.code, Some(2), "{}", verify.all());
    assert!(
        verify.stderr.contains(&recipient),
        "verify does not name the recipient whose identity is needed:\n{}",
        verify.all()
    );
}

#[test]
fn a_restore_into_prod_says_how_to_undo_it() {
    let (remote, home, key, _recipient, name) = fetched_on_a_new_machine();
    let key = key.to_str().unwrap();
    remote
        .xtask(home.path(), &["verify", &name, "--identity", key])
        .assert_ok();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:prod",
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
            "--identity",
            key,
        ],
    );
    run.assert_ok();
    let oops = query_file(&remote.db, "SELECT name FROM customers WHERE name = 'oops'");
    assert!(oops[0].is_empty(), "the bulk update is undone: {oops:?}");
    // The safety backup (prod as the bulk update left it) is named at the end.
    let safety = remote
        .sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql") && run.stdout.contains(f.as_str()))
        .expect("the safety backup is named");
    // The end names the safety backup; at 3 a.m. it must also say the one
    // command that puts prod back as it was before this restore.
    let undo_by_restore = run.stdout.lines().any(|l| {
        l.contains("cargo xtask restore")
            && l.contains(&safety)
            && l.contains("--to prod --replace --confirm qbtime_db_prod")
    });
    let undo_by_time_travel = run
        .stdout
        .contains("cargo xtask time-travel restore prod --bookmark");
    assert!(
        undo_by_restore || undo_by_time_travel,
        "no command to undo the restore:\n{}",
        run.stdout
    );
}

/// Runs the pinned wrangler against the loopback from `dir` (no
/// configuration there: it finds databases by name in the account).
fn wrangler_in(remote: &Remote, home: &std::path::Path, dir: &std::path::Path, args: &[&str]) {
    let out = d1_loopback::pinned_wrangler_command(&repo_root())
        .args(args)
        .current_dir(dir)
        .env("CLOUDFLARE_API_BASE_URL", remote.server.api_base_url())
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
        .env("HOME", home)
        .env("WRANGLER_SEND_METRICS", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// atkCA: prod's D1 database was deleted in an incident, a new one created
/// under the same name (`wrangler d1 create qbtime_db_prod`) and its id put
/// in wrangler.toml, as Cloudflare's docs say. The backups of prod are
/// backups of qbtime_db_prod, environment prod; only the id differs. The
/// restore that brings prod back is refused, and the way the refusal offers
/// (`--to new:NAME`, then move the binding) cannot use the name prod has
/// (it is in use) and would leave every backup of prod no longer prod's.
/// A careful operator expects the restore to be possible, guarded: the
/// typed name, and the old id said on purpose (`--previous-database-id`),
/// never with `--yes`, and the refusal to name that way with the id.
#[test]
fn prod_moved_to_a_new_database_under_the_same_name_is_restorable_when_the_old_id_is_said() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let new_db = prod_on_a_new_database(&remote, home.path());

    // latest:prod finds prod's backup (same environment, same name), and
    // the refusal names the way in, with the backup's id.
    let base = INTO_PROD;
    let refused = remote.xtask(home.path(), &base);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains(&format!("--previous-database-id {PROD_UUID}")),
        "the refusal names no way to restore prod's backup into prod's new database:\n{}",
        refused.all()
    );
    assert_eq!(counts(&new_db).get("customers"), None, "nothing was loaded");

    // --yes is never enough for production, moved or not.
    let mut yes: Vec<&str> = vec!["restore", "latest:prod", "--to", "prod", "--yes"];
    yes.extend(["--previous-database-id", PROD_UUID]);
    let run = remote.xtask(home.path(), &yes);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert_eq!(counts(&new_db).get("customers"), None, "nothing was loaded");

    // Another id than the backup's is refused: it says nothing of this backup.
    let mut wrong: Vec<&str> = base.to_vec();
    wrong.extend(["--previous-database-id", STAGING_UUID]);
    let run = remote.xtask(home.path(), &wrong);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(counts(&new_db).get("customers"), None, "nothing was loaded");

    // Where it would do nothing (a target that is not production) the
    // flag is refused, never passed over.
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:prod",
            "--to",
            "staging",
            "--yes",
            "--previous-database-id",
            PROD_UUID,
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());

    // The typed name and the old id: prod is back.
    let mut ok: Vec<&str> = base.to_vec();
    ok.extend(["--previous-database-id", PROD_UUID]);
    let run = remote.xtask(home.path(), &ok);
    run.assert_ok();
    assert_eq!(counts(&new_db), counts(&remote.db), "{}", run.all());
    // The plan says plainly what goes in: a backup of the database replaced.
    assert!(
        run.stdout.contains(&format!(
            "a backup of qbtime_db_prod's REPLACED database (id \"{PROD_UUID}\")"
        )),
        "the plan does not say the backup is of the replaced database:\n{}",
        run.stdout
    );
}

/// ND 1: prod's database replaced (its new id configured) and not empty:
/// `restore latest:prod --to prod --confirm qbtime_db_prod` was refused
/// for the missing `--previous-database-id` alone; with it, again for the
/// target not empty. One run (exit 3) names both, and prints one restore
/// with `--previous-database-id` and `--replace`, without the typed name
/// given for another restore: run as printed with no terminal, it asks
/// for it and changes nothing; with it, prod is back.
#[test]
fn a_replaced_prod_not_empty_and_no_previous_database_id_are_refused_in_one_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let new_db = prod_on_a_new_database(&remote, home.path());
    execute_file(
        &new_db,
        "CREATE TABLE leftover(x); INSERT INTO leftover VALUES (1);",
    );
    let state = || (counts(&new_db), remote.sb.backup_files());
    let before = state();
    let base = INTO_PROD;
    let refused = remote.xtask(home.path(), &base);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    let error = refused.stderr.split_once("error:").map_or("", |(_, e)| e);
    for part in ["--previous-database-id", "is not empty"] {
        assert!(error.contains(part), "no {part:?}:\n{}", refused.all());
    }
    assert_eq!(state(), before, "{}", refused.all());
    let printed: Vec<&str> = { error.split('`').skip(1).step_by(2) }
        .filter(|c| c.starts_with("cargo xtask restore "))
        .collect();
    assert_eq!(printed.len(), 1, "{}", refused.all());
    let words: Vec<String> = { printed[0].split_whitespace().skip(2) }
        .map(|w| w.trim_matches('\'').to_owned())
        .collect();
    assert!(
        words.iter().any(|w| w == "--replace")
            && words
                .windows(2)
                .any(|w| w == ["--previous-database-id", PROD_UUID])
            && !words.iter().any(|w| w == "--yes" || w == "--confirm"),
        "{words:?}"
    );
    let as_printed: Vec<&str> = words.iter().map(String::as_str).collect();
    let ran = remote.xtask(home.path(), &as_printed);
    assert_ne!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(state(), before, "{}", ran.all());
    let confirmed = [&as_printed[..], &["--confirm", "qbtime_db_prod"]].concat();
    let ran = remote.xtask(home.path(), &confirmed);
    ran.assert_ok();
    assert_eq!(counts(&new_db), counts(&remote.db), "{}", ran.all());
}

/// A backup directory shared with another checkout whose prod is another
/// D1 database of the same name (another account's, or one made by
/// `wrangler d1 create qbtime_db_prod` elsewhere): its backups say prod,
/// qbtime_db_prod, and an id this configuration does not know. Taken after
/// our own prod's backups, its database was never the one ours replaced:
/// the refusal must not hand the operator the id that lets it in, and the
/// flag must not take it; the way is a database of its own.
#[test]
fn another_checkouts_prod_backup_taken_after_ours_never_goes_into_prod_by_the_previous_id() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let ours = remote.backup_prod(home.path());
    let (theirs, theirs_id) = back_up_another_checkouts_prod(&remote, home.path(), &ours);

    let base = [
        "restore",
        &theirs,
        "--to",
        "prod",
        "--confirm",
        "qbtime_db_prod",
    ];
    let refused = remote.xtask(home.path(), &base);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    assert!(
        !refused.stderr.contains("--previous-database-id ")
            || refused.stderr.contains("does not take it"),
        "the refusal offers --previous-database-id for a backup that is not prod's replaced \
         database:\n{}",
        refused.all()
    );
    assert!(
        refused.stderr.contains("--to new:NAME"),
        "{}",
        refused.all()
    );
    assert_not_the_replaced_database(&remote, home.path(), (&theirs, &theirs_id), &ours);
}

/// fxEG: as above, but our backup was taken by a clock 40 minutes fast:
/// theirs, taken after it by a right clock, is dated before it and
/// records it (`taken_after`). Ours was still taken first, so their
/// database was never the one ours replaced: the flag must not take it.
#[test]
fn another_checkouts_prod_backup_taken_after_our_fast_clocks_never_goes_into_prod() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let ours = remote.backup_prod(home.path());
    let fast = chrono::Utc::now() + chrono::Duration::minutes(40);
    let ours = redate(&remote.sb, &ours, fast);
    let (theirs, theirs_id) = back_up_another_checkouts_prod(&remote, home.path(), &ours);
    assert_eq!(
        manifest_for(&remote.sb, &theirs)["taken_after"][0]["file"],
        ours.as_str()
    );
    assert_not_the_replaced_database(&remote, home.path(), (&theirs, &theirs_id), &ours);
}

/// `restore THEIRS --to prod --previous-database-id THEIRS_ID` is refused
/// (exit 3) naming `ours`, the backup of prod's database taken before it.
fn assert_not_the_replaced_database(
    remote: &Remote,
    home: &std::path::Path,
    (theirs, theirs_id): (&str, &str),
    ours: &str,
) {
    let run = remote.xtask(
        home,
        &[
            "restore",
            theirs,
            "--to",
            "prod",
            "--confirm",
            "qbtime_db_prod",
            "--previous-database-id",
            theirs_id,
            "--dry-run",
        ],
    );
    assert_eq!(
        run.code,
        Some(3),
        "{theirs}, taken after {ours}, is taken as the database prod replaced:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains(ours),
        "names our earlier backup:\n{}",
        run.all()
    );
}

/// Another checkout's prod, a database of the same name with another id,
/// backed up into the same directory after `ours`: its backup's name and
/// its database's id. Prod's database is then that other one.
fn back_up_another_checkouts_prod(
    remote: &Remote,
    home: &std::path::Path,
    ours: &str,
) -> (String, String) {
    let bare = tempfile::tempdir().unwrap();
    wrangler_in(
        remote,
        home,
        bare.path(),
        &["d1", "delete", "qbtime_db_prod", "-y"],
    );
    wrangler_in(
        remote,
        home,
        bare.path(),
        &["d1", "create", "qbtime_db_prod"],
    );
    let listed = remote.wrangler_json(home, &["d1", "list", "--json"]);
    let theirs_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == "qbtime_db_prod")
        .unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs_db = remote.server.database_path("qbtime_db_prod").unwrap();
    execute_file(
        &theirs_db,
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); \
         INSERT INTO customers VALUES (1, 'theirs');",
    );
    let config = remote.sb.path().join("wrangler.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        original.replace(
            &format!("database_id = \"{PROD_UUID}\""),
            &format!("database_id = \"{theirs_id}\""),
        ),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    remote.xtask(home, &["backup", "prod"]).assert_ok();
    std::fs::write(&config, &original).unwrap();
    let theirs = remote
        .sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql") && *f != ours)
        .expect("the other checkout's backup");
    assert_eq!(
        manifest_for(&remote.sb, &theirs)["database"]["uuid"],
        theirs_id
    );
    (theirs, theirs_id)
}

/// The refusal's advice is a command to paste: the id it names comes from
/// the manifest, which anyone who can write to backups/ can edit, so it is
/// quoted as a shell reads it back, as every command the tool prints is.
#[test]
fn the_previous_database_id_the_refusal_offers_is_quoted_for_the_shell() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod(home.path());
    let stem = name.split(".sql").next().unwrap();
    let path = remote.sb.backups().join(format!("{stem}.manifest.json"));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["database"]["uuid"] = serde_json::Value::from("x $(touch pwned)");
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            &name,
            "--to",
            "prod",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr
            .contains("--previous-database-id 'x $(touch pwned)'"),
        "the advice names a manifest's id unquoted:\n{}",
        run.all()
    );
}

/// atkCB: prod's short name changed (`vars.APP_ENV = "prod"` became
/// `"live"`, backups.toml's `[prod]` tables renamed with it), as a team
/// does when it renames its environments; the database is the same (same
/// `database_name`, same `database_id`). prod's backups are backups of that
/// database: `latest:live` finds them, `status` counts them, and a restore
/// into it is a production restore (typed name, `--yes` never enough), not
/// refused as "not taken from production" with no way forward.
#[test]
fn prod_whose_short_name_changed_still_restores_its_backups_with_the_typed_name() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod(home.path());
    execute_file(&remote.db, "UPDATE customers SET name = 'oops';");
    remote.sb.rename_prod_to_live();

    // status counts the backup of the same database as live's.
    let status = remote.xtask(home.path(), &["status", "--env", "live"]);
    assert!(
        status.stdout.contains(&name),
        "status does not count prod's backup of the same database as live's:\n{}",
        status.all()
    );

    // --yes is never enough: it is production.
    let yes = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:live",
            "--to",
            "live",
            "--replace",
            "--yes",
        ],
    );
    assert_ne!(yes.code, Some(0), "{}", yes.all());
    let oops = query_file(&remote.db, "SELECT name FROM customers WHERE name = 'oops'");
    assert!(!oops[0].is_empty(), "nothing was loaded with --yes alone");

    // By name and by latest: the typed name brings prod's data back.
    let by_name = remote.xtask(
        home.path(),
        &["restore", &name, "--to", "live", "--replace", "--dry-run"],
    );
    by_name.assert_ok();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:live",
            "--to",
            "live",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    run.assert_ok();
    let oops = query_file(&remote.db, "SELECT name FROM customers WHERE name = 'oops'");
    assert!(oops[0].is_empty(), "the bulk update is undone: {oops:?}");
}

/// atkCB: prod's database replaced by a new one under the same name (new
/// id in wrangler.toml), and `status` read before anything is backed up
/// from it. Its newest verified backup is of the previous database: it
/// holds nothing written to the new one, so "ok" is a false comfort. A
/// careful operator expects status to fail (exit 1), saying the newest
/// backup is of the previous database id, and to take a backup of prod.
#[test]
fn status_does_not_call_prod_fresh_on_the_backups_of_the_database_it_replaced() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    prod_on_a_new_database(&remote, home.path());

    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert_eq!(
        status.code,
        Some(1),
        "status calls prod fresh on the backup of the database it replaced:\n{}",
        status.all()
    );
    assert!(
        status.all().contains(PROD_UUID) && status.all().contains("cargo xtask backup prod"),
        "status does not say the newest backup is of the previous database:\n{}",
        status.all()
    );
}

/// Deletes prod's D1 database and creates it again under the same name,
/// with the real wrangler against the loopback, as after an incident; the
/// new database's id.
/// `restore latest:prod --to prod` with prod's database name typed.
const INTO_PROD: [&str; 6] = [
    "restore",
    "latest:prod",
    "--to",
    "prod",
    "--confirm",
    "qbtime_db_prod",
];

/// prod's database replaced ([`replace_prod_database`]) and its new id
/// put in wrangler.toml, as Cloudflare's docs say; returns the new
/// database's SQLite file.
fn prod_on_a_new_database(remote: &Remote, home: &std::path::Path) -> std::path::PathBuf {
    let new_id = replace_prod_database(remote, home);
    assert_ne!(new_id, PROD_UUID);
    let config = remote.sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("database_id = \"{PROD_UUID}\""),
        &format!("database_id = \"{new_id}\""),
    );
    std::fs::write(&config, text).unwrap();
    remote.server.database_path("qbtime_db_prod").unwrap()
}

fn replace_prod_database(remote: &Remote, home: &std::path::Path) -> String {
    let bare = tempfile::tempdir().unwrap();
    wrangler_in(
        remote,
        home,
        bare.path(),
        &["d1", "delete", "qbtime_db_prod", "-y"],
    );
    wrangler_in(
        remote,
        home,
        bare.path(),
        &["d1", "create", "qbtime_db_prod"],
    );
    let listed = remote.wrangler_json(home, &["d1", "list", "--json"]);
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == "qbtime_db_prod")
        .unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A migration broke the database; the operator restores the backup
/// `migrate` took just before applying it. The restore must not end by
/// telling a tired operator to run `cargo xtask migrate`, as if the
/// pending migration were one the backup merely predates: it is the very
/// one being undone, and `migrate` would apply it again as it is.
#[test]
fn undoing_a_bad_migration_by_its_pre_migration_backup_does_not_advise_applying_it_again() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let bad = "0005_rename_every_customer.sql";
    std::fs::write(
        sb.path().join("migrations").join(bad),
        "UPDATE customers SET name = 'oops';",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    let pre_migration = only_backup(&sb);
    let run = sb.xtask(&[
        "restore",
        &pre_migration,
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    run.assert_ok();
    let oops = sb.query("SELECT name FROM customers WHERE name = 'oops'");
    assert!(oops[0].is_empty(), "the migration is undone: {oops:?}");
    // The plan's `then` line and the warning at the end both name the
    // migration as pending; neither may read as plain advice to apply it.
    // (The plan's `reason` line names it too, as the backup's reason.)
    let all = run.all();
    let said: Vec<&str> = all
        .lines()
        .filter(|l| l.contains(bad) && l.contains("pending"))
        .collect();
    assert!(said.len() >= 2, "the plan and the end name {bad}:\n{all}");
    for line in said {
        assert!(
            !line.contains("(`cargo xtask migrate local --yes` applies it)"),
            "advises re-applying the migration being undone: {line}"
        );
        assert!(
            line.contains("was taken by `migrate` just before applying it")
                && line.contains("would apply it again"),
            "does not say the backup undoes {bad}: {line}"
        );
    }
}
