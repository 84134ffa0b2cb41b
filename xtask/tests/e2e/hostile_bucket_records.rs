//! What a hostile offsite bucket can plant, read through the real
//! wrangler's `r2` commands against the loopback API: anyone holding the
//! scheduled job's object token can write any object there, an index entry
//! marked verified good and a manifest of its own making included.

use crate::common;

use common::decoys::Decoys;
use common::remote::*;
use common::*;
use serde_json::Value;

const BUCKET: &str = "qbtime-d1-backups";

/// A loopback prod with its bucket, and a HOME for the runs.
fn remote() -> (Remote, tempfile::TempDir) {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    (remote, tempfile::tempdir().unwrap())
}

/// The sha256 of each migration in the sandbox's `migrations/`, by name.
fn migration_shas(sb: &Sandbox) -> std::collections::BTreeMap<String, String> {
    let dir = sb.path().join("migrations");
    { std::fs::read_dir(&dir).unwrap() }
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, sha256_hex(&std::fs::read(&p).unwrap()))
        })
        .collect()
}

/// Plants in prod's bucket an index whose one entry, `file`, is marked
/// verified good, and a manifest for it made from `real` (a manifest this
/// tool wrote) by `edit`; no backup object. Returns the manifest's key.
fn plant_entry(
    remote: &Remote,
    real: &Value,
    file: &str,
    created_at: chrono::DateTime<chrono::Utc>,
    edit: impl FnOnce(&mut Value),
) -> String {
    let stem = [".sql.zst.age", ".sql.zst", ".sql"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap();
    let month = created_at.format("%Y/%m");
    let key = format!("prod/{month}/{file}");
    let manifest_key = format!("prod/{month}/{stem}.manifest.json");
    let at = created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut manifest = real.clone();
    manifest["file"]["name"] = Value::from(file);
    manifest["created_at"] = Value::from(at.as_str());
    let object = manifest.as_object_mut().unwrap();
    object.remove("offsite");
    object.remove("taken_after");
    edit(&mut manifest);
    // Its author drops the hash that tells an edited manifest (MS): what
    // is planted reads as an earlier version's record, taken as it stands.
    as_recorded_before_manifest_hashes(&mut manifest);
    let index = serde_json::json!({
        "format_version": 1,
        "environment": "prod",
        "backups": [{
            "file": file,
            "key": key,
            "manifest_key": manifest_key,
            "created_at": at,
            "uploaded_at": at,
            "bytes": manifest["file"]["bytes"],
            "sha256": manifest["file"]["sha256"],
            "format": "sql",
            "mode": "full",
            "whole": true,
            "verified": "good",
        }],
    });
    for (k, v) in [
        (&manifest_key, &manifest),
        (&"index/prod.json".to_owned(), &index),
    ] {
        remote
            .server
            .r2_put_object(BUCKET, k, &serde_json::to_vec(v).unwrap())
            .unwrap();
    }
    manifest_key
}

/// The minute ten minutes ago, as a backup's name and date carry it.
fn ten_minutes_ago() -> (String, chrono::DateTime<chrono::Utc>) {
    use chrono::{DurationRound, TimeDelta};
    let at = (chrono::Utc::now() - TimeDelta::minutes(10))
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap();
    (at.format("%Y%m%d-%H%M").to_string(), at)
}

/// A CI runner: prod's bucket with the entry [`plant_entry`] plants, ten
/// minutes old, its manifest made by `edit` from one of a real backup,
/// and the checkout without backups/. Returns the manifest's key.
fn planted_on_a_fresh_machine(
    remote: &Remote,
    home: &std::path::Path,
    edit: impl FnOnce(&mut Value),
) -> String {
    let name = remote.backup_prod(home);
    let real = manifest_for(&remote.sb, &name);
    let (stamp, at) = ten_minutes_ago();
    let planted = format!("backup-prod-{stamp}.sql");
    let manifest_key = plant_entry(remote, &real, &planted, at, edit);
    std::fs::remove_dir_all(remote.sb.backups()).unwrap();
    manifest_key
}

/// On a fresh machine (backups/ empty, a CI runner) the migration record
/// came from the newest verified offsite copy's manifest, picked by the
/// index's own `verified: good` claim. A planted index entry and a
/// manifest with made-up `migration_sha256`, with no backup object at all,
/// made `migrate` refuse the real migrations as edited (exit 3), and the
/// runner's new backup carried the planted record forward, so it outlived
/// the planted objects. A record read from the bucket is now told, not
/// obeyed, and never carried into a new backup.
#[test]
fn a_planted_offsite_record_neither_blocks_migrate_nor_enters_a_new_backup() {
    let (remote, home) = remote();
    let sb = &remote.sb;
    let manifest_key = planted_on_a_fresh_machine(&remote, home.path(), |m| {
        for sha in m["migration_sha256"].as_object_mut().unwrap().values_mut() {
            *sha = Value::from("ab".repeat(32));
        }
    });
    // And a new migration.
    std::fs::write(
        sb.path().join("migrations/0005_after_the_plant.sql"),
        "CREATE TABLE after_the_plant(id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let object = format!("r2://{BUCKET}/{manifest_key}");

    let check = remote.xtask(home.path(), &["migrate", "prod", "--check"]);
    assert_eq!(check.code, Some(0), "{}", check.all());
    assert!(
        check.stderr.contains(&object),
        "the warning names the object:\n{}",
        check.all()
    );
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr.contains(&object) && run.stderr.contains("not carried"),
        "the warning names the object and says what is done with it:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("add a new migration"),
        "the warning gives the fix for a real edit:\n{}",
        run.all()
    );
    let tables: i64 = rusqlite::Connection::open(&remote.db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'after_the_plant'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "the new migration was not applied");
    // The pre-migration backup records the files as they are, not the
    // planted record.
    let taken = only_backup(sb);
    let recorded = manifest_for(sb, &taken)["migration_sha256"].clone();
    let shas = migration_shas(sb);
    for (migration, sha) in recorded.as_object().unwrap() {
        assert_eq!(
            sha.as_str(),
            shas.get(migration).map(String::as_str),
            "{migration}"
        );
    }
    assert!(!recorded.as_object().unwrap().is_empty());
    assert_eq!(decoys.hashes(), before);
}

/// Puts `entry` first in prod's index in the bucket.
fn plant_in_index(remote: &Remote, entry: Value) {
    let key = "index/prod.json";
    let mut index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
    index["backups"].as_array_mut().unwrap().insert(0, entry);
    remote
        .server
        .r2_put_object(BUCKET, key, &serde_json::to_vec(&index).unwrap())
        .unwrap();
}

/// The real copy's index entry, renamed `file` (its key too), and its
/// object copied under that key: what anyone with the bucket's token can
/// put there. Its manifest key is left to what `manifest_of` gives.
fn copy_named(remote: &Remote, file: &str, manifest_of: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, "index/prod.json").unwrap())
            .unwrap();
    let real = index["backups"][0].clone();
    let real_key = real["key"].as_str().unwrap();
    let dir = &real_key[..real_key.rfind('/').unwrap() + 1];
    let mut entry = real.clone();
    entry["file"] = Value::from(file);
    entry["key"] = Value::from(format!("{dir}{file}"));
    entry["manifest_key"] = Value::from(format!("{dir}{manifest_of}"));
    let bytes = remote.server.r2_object(BUCKET, real_key).unwrap();
    remote
        .server
        .r2_put_object(BUCKET, &format!("{dir}{file}"), &bytes)
        .unwrap();
    entry
}

/// `manifest_path` cut a name at its first `.sql`, and the index's and the
/// manifest's name checks took `backup-prod-A.sql-B.sql` for a backup of
/// the minute B: its manifest is the real `backup-prod-A.manifest.json`.
/// Fetched beside the real backup, it was written into backups/ as a
/// second file of that manifest (or, on a machine without the real one,
/// took its manifest's name). A backup's name is exactly
/// `backup-<env>-<stamp>` and one of the extensions the tool writes.
#[test]
fn a_fetched_name_that_runs_on_past_sql_cannot_take_a_real_backups_manifest() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    let stem = name.strip_suffix(".sql").unwrap();
    let stamp = &stem[stem.len() - 13..];
    let planted = format!("{name}-{stamp}.sql");
    let entry = copy_named(&remote, &planted, &format!("{stem}.manifest.json"));
    plant_in_index(&remote, entry);
    fetch_is_refused_naming_the_index(&remote, home.path(), &planted, &[&planted]);
}

/// `offsite fetch PLANTED --env prod` refused as bad input (exit 2), naming
/// prod's index, what a backup's name is, and each of `said`, with the
/// decoys and backups/ as they were.
#[track_caller]
fn fetch_is_refused_naming_the_index(
    remote: &Remote,
    home: &std::path::Path,
    planted: &str,
    said: &[&str],
) {
    let decoys = Decoys::plant(remote.sb.path());
    let before = (decoys.hashes(), remote.sb.backup_files());

    let run = remote.xtask(home, &["offsite", "fetch", planted, "--env", "prod"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("r2://{BUCKET}/index/prod.json"))
            && said.iter().all(|s| run.stderr.contains(s))
            && run.stderr.contains("backup-<env>-YYYYMMDD-HHMM"),
        "the refusal names the index, {said:?} and what a backup's name is:\n{}",
        run.all()
    );
    assert_eq!((decoys.hashes(), remote.sb.backup_files()), before);
}

/// An index entry's name never had its `<env>` compared with anything
/// known, and a manifest's environment was any string when its database
/// name and id were prod's: `backup-prоd-…` (a Cyrillic `о`) planted in
/// prod's index, with a manifest of "prоd", was fetched into backups/ as
/// a backup of prod, printed as one. An environment is named by the
/// configuration's rule (letters, digits, `_` and `-`).
#[test]
fn a_look_alike_environment_in_an_offsite_entry_is_refused() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    let real = manifest_for(&remote.sb, &name);
    let planted = name.replacen("prod", "pr\u{043e}d", 1);
    let stem = planted.strip_suffix(".sql").unwrap();
    let entry = copy_named(&remote, &planted, &format!("{stem}.manifest.json"));
    let mut manifest = real.clone();
    manifest["environment"] = Value::from("pr\u{043e}d");
    manifest["file"]["name"] = Value::from(planted.as_str());
    manifest.as_object_mut().unwrap().remove("offsite");
    remote
        .server
        .r2_put_object(
            BUCKET,
            entry["manifest_key"].as_str().unwrap(),
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    plant_in_index(&remote, entry);
    fetch_is_refused_naming_the_index(&remote, home.path(), &planted, &[]);
}

/// One bad entry (here a name qualified by another database, its object
/// copied beside the real one's) in prod's index made the whole index
/// "not an offsite index this tool wrote": `offsite list`, `offsite fetch
/// latest` and every upload refused (exit 2), and no command repaired it,
/// so anyone with the bucket's token stopped every offsite recovery with
/// one line. The entry is set aside: the list shows the good copies and
/// warns of it (the index, its position, why, the fix), `--json` carries
/// it under `set_aside`, `fetch latest` fetches the good copy, a fetch of
/// the planted name is refused naming it, and the next upload keeps it in
/// the index as it was (its dry run says it would), removing no object.
#[test]
fn a_bad_index_entry_beside_a_good_copy_is_set_aside_not_the_whole_index() {
    let (remote, home) = remote();
    let home = home.path();
    let sb = &remote.sb;
    let name = remote.backup_and_upload_prod(home);
    let stem = name.strip_suffix(".sql").unwrap();
    let stamp = &stem[stem.len() - 13..];
    let planted = format!("backup-prod.qbtime_db_other-{stamp}.sql");
    let entry = copy_named(&remote, &planted, &format!("{stem}.manifest.json"));
    plant_in_index(&remote, entry);
    let index_object = format!("r2://{BUCKET}/index/prod.json");

    let list = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
    list.assert_ok();
    assert!(
        list.stdout.contains(&name) && !list.stdout.contains(&planted),
        "{}",
        list.all()
    );
    assert!(
        list.stderr.contains(&index_object)
            && list.stderr.contains("entry 1")
            && list.stderr.contains(&planted)
            && list.stderr.contains("set aside")
            && list.stderr.contains("backup-<env>-YYYYMMDD-HHMM")
            && list.stderr.contains("keep it in the index")
            && list.stderr.contains("wrangler r2 object get"),
        "the warning names the index, the entry, why and the fix:\n{}",
        list.all()
    );
    let json = remote.xtask(home, &["offsite", "list", "--env", "prod", "--json"]);
    json.assert_ok();
    let listed: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(listed["backups"].as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed["backups"][0]["file"], name.as_str());
    let aside = &listed["set_aside"][0];
    assert_eq!(aside["position"], 1, "{listed:#}");
    assert_eq!(aside["file"], planted.as_str(), "{listed:#}");
    assert_eq!(aside["index"], index_object.as_str(), "{listed:#}");
    assert!(aside["reason"].as_str().unwrap().contains("backup-<env>"));

    let dry = remote.xtask(home, &["upload", "latest:prod", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains("entry 1") && dry.stdout.contains("keeps"),
        "the dry run says the upload keeps the entry in the index:\n{}",
        dry.all()
    );
    // `backup --upload --dry-run` says what its upload would, as `upload
    // --dry-run` does, and puts nothing.
    let keys = remote.server.r2_keys(BUCKET);
    let dry = remote.xtask(home, &["backup", "prod", "--upload", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains("entry 1")
            && dry.stdout.contains("keeps")
            && dry.stderr.contains(&index_object)
            && dry.stderr.contains(&planted)
            && dry.stderr.contains("set aside"),
        "the backup's dry run warns of the entry and says its upload keeps it:\n{}",
        dry.all()
    );
    assert_eq!(remote.server.r2_keys(BUCKET), keys, "{}", dry.all());

    // A fresh machine: fetch latest takes the good copy only.
    for f in sb.backup_files() {
        std::fs::remove_file(sb.backups().join(f)).unwrap();
    }
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let fetch = remote.xtask(home, &["offsite", "fetch", "latest", "--env", "prod"]);
    fetch.assert_ok();
    let manifest = format!("{stem}.manifest.json");
    let held: Vec<String> = sb.backups_held().into_keys().collect();
    assert_eq!(held, [manifest.clone(), name.clone()], "{}", fetch.all());
    assert_eq!(decoys.hashes(), before);
    let refused = remote.xtask(home, &["offsite", "fetch", &planted, "--env", "prod"]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    assert!(
        [
            &index_object,
            &planted,
            "entry 1",
            "set aside",
            "backup-<env>-YYYYMMDD-HHMM"
        ]
        .iter()
        .all(|s| refused.stderr.contains(*s)),
        "the refusal names the entry, the index and why:\n{}",
        refused.all()
    );
    let held: Vec<String> = sb.backups_held().into_keys().collect();
    assert_eq!(held, [manifest, name.clone()], "{}", refused.all());
    assert_eq!(decoys.hashes(), before);

    let keys = remote.server.r2_keys(BUCKET);
    let up = remote.xtask(home, &["backup", "prod", "--upload"]);
    up.assert_ok();
    assert!(
        up.all().contains(&index_object)
            && up.all().contains("entry 1")
            && up.all().contains("kept as it was"),
        "the upload says it kept the entry in the index:\n{}",
        up.all()
    );
    let index = remote.server.r2_object(BUCKET, "index/prod.json").unwrap();
    let index = String::from_utf8(index).unwrap();
    assert!(index.contains(&planted) && index.contains(&name), "{index}");
    let after = remote.server.r2_keys(BUCKET);
    assert!(
        keys.iter().all(|k| after.contains(k)),
        "an object was removed: {keys:?} then {after:?}"
    );
    let again = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
    again.assert_ok();
    assert!(again.stderr.contains("set aside"), "{}", again.all());
}

/// An index that is not JSON is still refused as a whole, by `offsite
/// list`, `offsite fetch latest`, an upload and a backup's upload, and
/// their dry runs (exit 2), naming it, and nothing is written to backups/
/// or outside it. The index is read before anything is put: no upload
/// puts an object in the bucket (a backup taken first is kept).
#[test]
fn an_index_that_is_not_json_is_still_refused_as_a_whole() {
    let (remote, home) = remote();
    let home = home.path();
    remote.backup_and_upload_prod(home);
    remote
        .server
        .r2_put_object(
            BUCKET,
            "index/prod.json",
            b"{\"format_version\": 1, \"backups\": [",
        )
        .unwrap();
    let decoys = Decoys::plant(remote.sb.path());
    let before = (decoys.hashes(), remote.sb.backup_files());
    let bucket = |remote: &Remote| -> Vec<(String, Vec<u8>)> {
        { remote.server.r2_keys(BUCKET).into_iter() }
            .map(|k| (k.clone(), remote.server.r2_object(BUCKET, &k).unwrap()))
            .collect()
    };
    let held = bucket(&remote);
    for args in [
        &["offsite", "list", "--env", "prod"][..],
        &["offsite", "fetch", "latest", "--env", "prod"][..],
        &["upload", "latest:prod", "--dry-run"][..],
        &["upload", "latest:prod"][..],
        &["backup", "prod", "--upload", "--dry-run"][..],
        &["backup", "prod", "--upload"][..],
    ] {
        let run = remote.xtask(home, args);
        assert_eq!(run.code, Some(2), "{args:?}\n{}", run.all());
        assert!(
            run.stderr
                .contains(&format!("r2://{BUCKET}/index/prod.json"))
                && run.stderr.contains("not an offsite index this tool wrote"),
            "{args:?}\n{}",
            run.all()
        );
        assert!(
            bucket(&remote) == held,
            "{args:?} put an object\n{}",
            run.all()
        );
        if args[0] != "backup" || args.contains(&"--dry-run") {
            assert_eq!((decoys.hashes(), remote.sb.backup_files()), before);
        }
    }
    assert_eq!(decoys.hashes(), before.0);
}

/// A copy of the real copy's entry with its sha256 changed makes both
/// entries of that file set aside (which is the copy's is unknown). The
/// next upload (a scheduled `backup --upload`) wrote the index without
/// them: the real copy's entry was gone from the index for good. Each
/// entry set aside is written back as it was read, and still warned of.
#[test]
fn an_upload_keeps_the_entries_set_aside_in_the_index_as_they_were() {
    let (remote, home) = remote();
    let home = home.path();
    let name = remote.backup_and_upload_prod(home);
    let index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, "index/prod.json").unwrap())
            .unwrap();
    let real = index["backups"][0].clone();
    let mut planted = real.clone();
    planted["sha256"] = Value::from("0".repeat(64));
    plant_in_index(&remote, planted.clone());

    let list = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
    list.assert_ok();
    assert!(list.stderr.contains("set aside"), "{}", list.all());

    let up = remote.xtask(home, &["backup", "prod", "--upload"]);
    up.assert_ok();
    let after: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, "index/prod.json").unwrap())
            .unwrap();
    let entries = after["backups"].as_array().unwrap();
    assert!(
        entries.contains(&real) && entries.contains(&planted),
        "the index keeps both entries as they were:\n{}\n{after:#}",
        up.all()
    );
    assert!(
        entries.iter().any(|e| e["file"] != name.as_str()),
        "the new copy is recorded too: {after:#}"
    );
    let again = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
    again.assert_ok();
    assert!(
        again.stderr.contains("set aside") && again.stderr.contains(&name),
        "{}",
        again.all()
    );
    // The recovery the warning gives: the local backup uploaded again is
    // recorded anew in place of the entries of its name.
    let file = format!("backups/{name}");
    let redo = remote.xtask(home, &["upload", &file]);
    redo.assert_ok();
    let list = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
    list.assert_ok();
    assert!(
        list.stdout.contains(&name) && !list.stderr.contains("set aside"),
        "{}\n{}",
        redo.all(),
        list.all()
    );
}

/// rvAB: a manifest in the bucket that fails validation (its sha256 and
/// size right, but a `migration_sha256` entry not among its `migrations`;
/// or not JSON at all) was refused as "the manifest
/// backups/.manifest.NNN.download.partial/object cannot be trusted
/// … move it aside (or fetch the backup again with `offsite fetch`)": a
/// temporary path already deleted, and a fetch that meets the same
/// manifest again. The refusal names the object in the bucket, says
/// nothing was fetched and points to the other copies; exit 2 as before,
/// nothing in backups/ but the backup lock, and the decoys as they were.
#[test]
fn a_bucket_manifest_that_cannot_be_trusted_is_named_in_the_bucket() {
    let (remote, home) = remote();
    let sb = &remote.sb;
    let name = remote.backup_and_upload_prod(home.path());
    let index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, "index/prod.json").unwrap())
            .unwrap();
    let manifest_key = index["backups"][0]["manifest_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut planted = manifest_for(sb, &name);
    planted["migration_sha256"]["9999_not_among_its_migrations.sql"] = Value::from("ab".repeat(32));
    std::fs::remove_dir_all(sb.backups()).unwrap();
    std::fs::create_dir(sb.backups()).unwrap();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let object = format!("r2://{BUCKET}/{manifest_key}");
    for bytes in [
        serde_json::to_vec(&planted).unwrap(),
        b"{ not json".to_vec(),
    ] {
        { remote.server.r2_put_object(BUCKET, &manifest_key, &bytes) }.unwrap();
        let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr
                .contains(&format!("the manifest {object} cannot be trusted"))
                && run.stderr.contains("othing was fetched")
                && run.stderr.contains("offsite list --env prod"),
            "the refusal names {object}, says nothing was fetched and where the other \
             copies are:\n{}",
            run.all()
        );
        assert!(
            !run.all().contains(".partial")
                && !run.all().contains("fetch the backup again")
                && !run.all().contains("fetch its backup again"),
            "the refusal names a temporary file, or a fetch again:\n{}",
            run.all()
        );
        assert_eq!(decoys.hashes(), before);
        // The backup lock, and nothing else.
        let written = sb.backup_files();
        assert!(written.iter().all(|f| f == ".lock"), "{written:?}");
    }
}

/// A manifest in the bucket read for another purpose than a fetch (here
/// the newest copy under `--from-env NAME`, read to tell whose copies are
/// there) that fails validation was refused naming the temporary file it
/// was downloaded to, already deleted, and "move it aside"; then (rvJR)
/// `offsite list` failed outright (exit 2) saying "nothing was fetched.
/// `cargo xtask offsite list --env prod` names the other copies": the
/// command that had just failed, and nothing was being fetched. One
/// untrustworthy manifest under the old name is warned about, naming it in
/// the bucket, and the copies that can be listed are: prod's own, not the
/// old name's (whose they are cannot be told). The decoys and backups/ as
/// they were.
#[test]
fn a_bucket_manifest_read_for_from_env_that_cannot_be_trusted_is_named_and_the_rest_listed() {
    let (remote, home) = remote();
    let sb = &remote.sb;
    let name = remote.backup_and_upload_prod(home.path());
    let index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, "index/prod.json").unwrap())
            .unwrap();
    // The copy listed under the old name `old`, where its objects would be.
    let mut old = index.clone();
    old["environment"] = Value::from("old");
    for field in ["key", "manifest_key"] {
        let key = index["backups"][0][field].as_str().unwrap();
        old["backups"][0][field] = Value::from(key.replacen("prod/", "old/", 1));
    }
    {
        remote
            .server
            .r2_put_object(BUCKET, "index/old.json", &serde_json::to_vec(&old).unwrap())
    }
    .unwrap();
    let manifest_key = old["backups"][0]["manifest_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut planted = manifest_for(sb, &name);
    planted["migration_sha256"]["9999_not_among_its_migrations.sql"] = Value::from("ab".repeat(32));
    {
        remote.server.r2_put_object(
            BUCKET,
            &manifest_key,
            &serde_json::to_vec(&planted).unwrap(),
        )
    }
    .unwrap();
    let decoys = Decoys::plant(sb.path());
    let before = (decoys.hashes(), sb.backup_files());
    let object = format!("r2://{BUCKET}/{manifest_key}");
    let list = ["offsite", "list", "--env", "prod", "--from-env", "old"];
    let run = remote.xtask(home.path(), &list);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("the manifest {object} cannot be trusted"))
            && run.stdout.contains(&name),
        "the warning names {object}, and prod's copy is listed:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains("othing was fetched") && !run.all().contains("offsite list --env"),
        "the warning sends the user to `offsite list`, or speaks of a fetch:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains("offsite-read") && !run.all().contains("move it aside"),
        "the warning names a temporary file to move aside:\n{}",
        run.all()
    );
    let json = remote.xtask(home.path(), &[&list[..], &["--json"]].concat());
    assert_eq!(json.code, Some(0), "{}", json.all());
    let listed: Value = serde_json::from_str(&json.stdout).unwrap();
    let keys: Vec<&str> = { listed["backups"].as_array().unwrap().iter() }
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [index["backups"][0]["key"].as_str().unwrap()]);
    assert_eq!((decoys.hashes(), sb.backup_files()), before);
}

/// rvJR: the newest verified copy's manifest in the bucket, read on a
/// fresh machine for the migration record by `migrate` and `backup`, that
/// cannot be trusted was warned about as "…; nothing was fetched. `cargo
/// xtask offsite list --env prod` names the other copies to fetch": no
/// fetch was under way. The warning says what was being read, names the
/// object, and that this machine's backups are compared only; both run on,
/// the decoys as they were and nothing written but in backups/.
#[test]
fn an_untrusted_bucket_manifest_read_for_the_migration_record_is_told_as_such() {
    let (remote, home) = remote();
    let sb = &remote.sb;
    let manifest_key = planted_on_a_fresh_machine(&remote, home.path(), |m| {
        m["migration_sha256"]["9999_not_among_its_migrations.sql"] = Value::from("ab".repeat(32));
    });
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let object = format!("r2://{BUCKET}/{manifest_key}");
    for args in [&["migrate", "prod", "--check"][..], &["backup", "prod"]] {
        let run = remote.xtask(home.path(), args);
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains(&format!(
                "could not read prod's newest offsite manifest for the migration record: the \
                 manifest {object} cannot be trusted"
            )) && run.stderr.contains("backups on this machine only"),
            "{args:?}: the warning names what was read and {object}:\n{}",
            run.all()
        );
        assert!(
            !run.all().contains("othing was fetched") && !run.all().contains("offsite list --env"),
            "{args:?}: the warning speaks of a fetch:\n{}",
            run.all()
        );
        assert_eq!(decoys.hashes(), before, "{args:?}");
    }
}

/// rvBO 2: an index that cannot be judged (not JSON, or over the 64 MiB an
/// index may hold) failed every upload with "copy it once R2 answers:
/// `cargo xtask upload …`", a retry that never helps, and the oversized
/// one exited 1. Every command that reads it now refuses it alike (exit 2):
/// the object, what is wrong (never its content), that the copies in the
/// bucket are untouched, and the fix, `offsite reindex`; a backup taken by
/// `backup --upload` is kept, and said to be.
#[test]
fn an_index_that_cannot_be_judged_is_refused_alike_with_its_fix_and_no_retry() {
    let (remote, home) = remote();
    let home = home.path();
    remote.backup_and_upload_prod(home);
    let object = format!("r2://{BUCKET}/index/prod.json");
    for (what, bytes) in [
        (
            "not JSON",
            b"{\"format_version\": 1, \"backups\": [".to_vec(),
        ),
        ("over 64 MiB", vec![b' '; (64 << 20) + 1]),
    ] {
        (remote.server)
            .r2_put_object(BUCKET, "index/prod.json", &bytes)
            .unwrap();
        for args in [
            &["offsite", "list", "--env", "prod"][..],
            &["offsite", "fetch", "latest", "--env", "prod"][..],
            &["upload", "latest:prod"][..],
            &["backup", "prod", "--upload"][..],
        ] {
            let before = remote.sb.backup_files();
            let run = remote.xtask(home, args);
            assert_eq!(run.code, Some(2), "{what}: {args:?}\n{}", run.all());
            for said in [
                object.as_str(),
                "the copies in the bucket are untouched",
                "cargo xtask offsite reindex --env prod",
            ] {
                assert!(
                    run.stderr.contains(said),
                    "{what}: {args:?} does not say {said:?}:\n{}",
                    run.all()
                );
            }
            for never in ["once R2 answers", "\"backups\": ["] {
                assert!(
                    !run.all().contains(never),
                    "{what}: {args:?}\n{}",
                    run.all()
                );
            }
            if args[0] == "backup" {
                let after = remote.sb.backup_files();
                assert!(
                    after.len() > before.len() && run.stderr.contains("the local backup is kept"),
                    "{what}: the backup is kept, and said to be:\n{}",
                    run.all()
                );
            }
            assert!(
                remote.server.r2_object(BUCKET, "index/prod.json").unwrap() == bytes,
                "{what}: {args:?} changed the index"
            );
        }
    }
}

/// rvBO 2: an index that cannot be judged had no way out but deleting it
/// by hand. `offsite reindex --env ENV` rebuilds it from the manifests in
/// backups/ that record a copy in the bucket under `<env>/`: it refuses a
/// readable index (nothing to replace); its dry run lists what the new
/// index will hold and where the old one is kept, and changes nothing;
/// without confirmation (`--yes` is not enough for prod) the bucket's
/// index is byte-identical afterwards; confirmed, the old bytes are kept
/// in backups/ (mode 600) where it says, and the new index is one
/// `offsite list` reads and `offsite fetch latest` fetches from.
#[test]
fn reindex_replaces_an_unreadable_index_only_when_confirmed_keeping_the_old_bytes() {
    use std::os::unix::fs::PermissionsExt;
    let (remote, home) = remote();
    let home = home.path();
    let name = remote.backup_and_upload_prod(home);
    let index = || remote.server.r2_object(BUCKET, "index/prod.json").unwrap();
    let readable = index();
    let reindex = |more: &[&str]| {
        let mut args = vec!["offsite", "reindex", "--env", "prod"];
        args.extend_from_slice(more);
        remote.xtask(home, &args)
    };
    let run = reindex(&["--confirm", "qbtime_db_prod"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("nothing to replace"), "{}", run.all());
    assert!(index() == readable, "a readable index was replaced");

    let bad = b"{\"format_version\": 1, \"backups\": [".to_vec();
    (remote.server)
        .r2_put_object(BUCKET, "index/prod.json", &bad)
        .unwrap();
    let files = remote.sb.backup_files();
    let dry = reindex(&["--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains(&name)
            && dry.stdout.contains("kept aside")
            && dry.stdout.contains("Dry run: nothing was changed."),
        "{}",
        dry.all()
    );
    assert!(index() == bad && remote.sb.backup_files() == files);
    for unconfirmed in [&[][..], &["--yes"][..]] {
        let run = reindex(unconfirmed);
        assert_eq!(run.code, Some(3), "{unconfirmed:?}\n{}", run.all());
        assert!(
            index() == bad && remote.sb.backup_files() == files,
            "{unconfirmed:?} changed something:\n{}",
            run.all()
        );
    }

    let run = reindex(&["--confirm", "qbtime_db_prod"]);
    run.assert_ok();
    let aside: Vec<String> = { remote.sb.backup_files().into_iter() }
        .filter(|f| !files.contains(f))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}\n{}", run.all());
    let kept = remote.sb.backups().join(&aside[0]);
    assert!(run.stdout.contains(&aside[0]), "{}", run.all());
    assert_eq!(std::fs::read(&kept).unwrap(), bad);
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{aside:?}");

    let list = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
    list.assert_ok();
    assert!(list.stdout.contains(&name), "{}", list.all());
    let local = std::fs::read(remote.sb.backups().join(&name)).unwrap();
    std::fs::remove_file(remote.sb.backups().join(&name)).unwrap();
    let fetch = remote.xtask(home, &["offsite", "fetch", "latest", "--env", "prod"]);
    fetch.assert_ok();
    assert_eq!(
        std::fs::read(remote.sb.backups().join(&name)).unwrap(),
        local
    );
}

/// rvBT 2: `offsite reindex` kept the old index's bytes at
/// `backups/offsite-index-prod-<stamp>.json` whatever was there: its plan
/// named a name a symlink held, and the run ended "cannot keep the old
/// index at …: File exists", exit 1, without a word of what changed. The
/// plan names a free name (a counter added), never following or
/// replacing what is there: each link's target is byte-identical, and the
/// bucket's index is replaced by the confirmed run only.
#[test]
fn reindex_keeps_the_old_index_under_a_free_name_beside_a_symlink_at_its_name() {
    let (remote, home) = remote();
    let home = home.path();
    remote.backup_and_upload_prod(home);
    let index = || remote.server.r2_object(BUCKET, "index/prod.json").unwrap();
    let bad = b"{\"format_version\": 1, \"backups\": [".to_vec();
    (remote.server)
        .r2_put_object(BUCKET, "index/prod.json", &bad)
        .unwrap();
    // A link at every name the next minute's runs would take.
    let target = remote.sb.path().join("precious.txt");
    std::fs::write(&target, b"not the index").unwrap();
    let now = chrono::Utc::now();
    let links: Vec<_> = { (0..60).map(|s| now + chrono::Duration::seconds(s)) }
        .map(|at| {
            let stamp = at.format("%Y%m%d-%H%M%S");
            remote
                .sb
                .backups()
                .join(format!("offsite-index-prod-{stamp}.json"))
        })
        .collect();
    for link in &links {
        std::os::unix::fs::symlink(&target, link).unwrap();
    }
    let reindex = |more: &[&str]| {
        let args = [&["offsite", "reindex", "--env", "prod"][..], more].concat();
        remote.xtask(home, &args)
    };
    let files = remote.sb.backup_files();
    let dry = reindex(&["--dry-run"]);
    dry.assert_ok();
    let planned = |run: &Run| {
        { run.stdout.lines() }
            .find_map(|l| l.split_once("kept aside   its bytes, first, in "))
            .map(|(_, rest)| rest.split(' ').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no path kept aside:\n{}", run.all()))
    };
    let aside = std::path::PathBuf::from(planned(&dry));
    assert!(
        !links.contains(&aside) && std::fs::symlink_metadata(&aside).is_err(),
        "the plan names a name taken:\n{}",
        dry.all()
    );
    assert!(index() == bad && remote.sb.backup_files() == files);

    let run = reindex(&["--confirm", "qbtime_db_prod"]);
    run.assert_ok();
    let aside = std::path::PathBuf::from(planned(&run));
    assert!(!links.contains(&aside), "{}", run.all());
    let kept = std::fs::symlink_metadata(&aside).unwrap();
    assert!(kept.is_file(), "{}", run.all());
    assert_eq!(std::fs::read(&aside).unwrap(), bad);
    assert_eq!(std::fs::read(&target).unwrap(), b"not the index");
    for link in &links {
        assert!(std::fs::symlink_metadata(link).unwrap().is_symlink());
    }
    assert!(index() != bad, "the index was not replaced:\n{}", run.all());
    remote
        .xtask(home, &["offsite", "list", "--env", "prod"])
        .assert_ok();
}

/// NO 2: `offsite reindex` rebuilt the index from the manifests here that
/// record a copy in the bucket, never asking the bucket whether it still
/// holds it: an object replaced since (another's, cut short, or any bytes
/// but the backup's) was listed again as a copy, verified good. Each copy
/// is read back first, and one whose object is not the recorded size and
/// sha256 is left out, the plan saying which and why; the index written
/// lists none of them.
#[test]
fn reindex_leaves_out_a_copy_the_bucket_no_longer_holds_as_recorded() {
    let (remote, home) = remote();
    let home = home.path();
    let name = remote.backup_and_upload_prod(home);
    let copy = { remote.server.r2_keys(BUCKET).into_iter() }
        .find(|k| k.starts_with("prod/") && k.ends_with(&name))
        .unwrap_or_else(|| panic!("no copy of {name}: {:?}", remote.server.r2_keys(BUCKET)));
    let real = remote.server.r2_object(BUCKET, &copy).unwrap();
    let bad = b"{\"format_version\": 1, \"backups\": [".to_vec();
    (remote.server)
        .r2_put_object(BUCKET, "index/prod.json", &bad)
        .unwrap();
    let reindex = |more: &[&str]| {
        let args = [&["offsite", "reindex", "--env", "prod"][..], more].concat();
        remote.xtask(home, &args)
    };
    // Cut short, then the same length with other bytes.
    let mut other = real.clone();
    other[0] ^= 0x20;
    for (planted, why) in [
        (real[..real.len() / 2].to_vec(), "bytes"),
        (other, "sha256"),
    ] {
        (remote.server)
            .r2_put_object(BUCKET, &copy, &planted)
            .unwrap();
        let dry = reindex(&["--dry-run"]);
        dry.assert_ok();
        let left_out = { dry.stdout.lines() }
            .find(|l| l.contains("left out") && l.contains(&name))
            .unwrap_or_else(|| panic!("the plan does not leave {name} out:\n{}", dry.all()));
        assert!(left_out.contains(why), "{why}: {left_out}\n{}", dry.all());
        assert!(
            dry.stdout.contains("new index    0 "),
            "{why}:\n{}",
            dry.all()
        );
    }
    let run = reindex(&["--confirm", "qbtime_db_prod"]);
    run.assert_ok();
    let index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, "index/prod.json").unwrap())
            .unwrap();
    assert_eq!(index["backups"], serde_json::json!([]), "{}", run.all());
}

/// `offsite reindex --env prod --dry-run`'s line leaving `name` out.
fn reindex_left_out(remote: &Remote, home: &std::path::Path, name: &str) -> (String, Run) {
    let dry = remote.xtask(home, &["offsite", "reindex", "--env", "prod", "--dry-run"]);
    dry.assert_ok();
    let left_out = { dry.stdout.lines() }
        .find(|l| l.contains("left out") && l.contains(name))
        .unwrap_or_else(|| panic!("the plan does not leave {name} out:\n{}", dry.all()))
        .to_owned();
    assert!(dry.stdout.contains("new index    0 "), "{}", dry.all());
    (left_out, dry)
}

/// The key of `name`'s object in the bucket, under prod's prefix.
fn prod_key(remote: &Remote, name: &str) -> String {
    { remote.server.r2_keys(BUCKET).into_iter() }
        .find(|k| k.starts_with("prod/") && k.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("no {name}: {:?}", remote.server.r2_keys(BUCKET)))
}

/// A copy deleted from the bucket (by the real wrangler's `r2 object
/// delete`) is left out of the rebuilt index, the plan naming its key, why,
/// and the upload that puts it back while the backup is here.
#[test]
fn reindex_leaves_out_a_copy_deleted_from_the_bucket_naming_the_upload_that_puts_it_back() {
    let (remote, home) = remote();
    let home = home.path();
    let name = remote.backup_and_upload_prod(home);
    let copy = prod_key(&remote, &name);
    remote.wrangler_delete(home, BUCKET, &copy).assert_ok();
    assert_eq!(remote.server.r2_object(BUCKET, &copy), None);
    (remote.server)
        .r2_put_object(BUCKET, "index/prod.json", b"{\"backups\": [")
        .unwrap();
    let (left_out, dry) = reindex_left_out(&remote, home, &name);
    for said in [
        copy.as_str(),
        "no object",
        &format!("`cargo xtask upload {name} --env prod`"),
    ] {
        assert!(left_out.contains(said), "{said}: {left_out}\n{}", dry.all());
    }
}

/// A copy whose manifest object in the bucket is gone (deleted by the real
/// wrangler), or is not the copy's as `offsite fetch` takes it (another
/// sha256 or size than the manifest here records, another environment's or
/// database's, not JSON, over the 64 MiB a manifest may hold), is left out
/// of the rebuilt index, the plan naming the manifest's key and why, never
/// a value of the object: the index would list a copy `fetch` refuses.
#[test]
fn reindex_leaves_out_a_copy_whose_manifest_object_is_gone_or_not_its_own() {
    let (remote, home) = remote();
    let home = home.path();
    let name = remote.backup_and_upload_prod(home);
    let manifest_name = name
        .strip_suffix(".sql")
        .map(|stem| format!("{stem}.manifest.json"))
        .unwrap_or_else(|| panic!("{name} is not a .sql backup"));
    let manifest_key = prod_key(&remote, &manifest_name);
    let real = remote.server.r2_object(BUCKET, &manifest_key).unwrap();
    let real: Value = serde_json::from_slice(&real).unwrap();
    (remote.server)
        .r2_put_object(BUCKET, "index/prod.json", b"{\"backups\": [")
        .unwrap();
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut m = real.clone();
        edit(&mut m);
        serde_json::to_vec(&m).unwrap()
    };
    let bytes = real["file"]["bytes"].as_u64().unwrap();
    let planted_sha = "ab".repeat(32);
    let cases: Vec<(&str, Option<Vec<u8>>, &str)> = vec![
        ("gone", None, "no manifest object"),
        (
            "sha256",
            Some(edited(&|m| {
                m["file"]["sha256"] = Value::from(planted_sha.clone())
            })),
            "sha256",
        ),
        (
            "size",
            Some(edited(&|m| m["file"]["bytes"] = Value::from(bytes + 1))),
            "size",
        ),
        (
            "environment",
            Some(edited(&|m| {
                m["environment"] = Value::from("staging");
                m["database"]["name"] = Value::from("qbtime_db_staging");
                m["database"]["uuid"] = Value::from(STAGING_UUID);
            })),
            // Named for another environment than its file's name says.
            "cannot be trusted",
        ),
        (
            "database",
            Some(edited(&|m| {
                m["database"]["name"] = Value::from("qbtime_db_planted")
            })),
            "another backup",
        ),
        (
            "not JSON",
            Some(b"{\"planted-marker\": [".to_vec()),
            "cannot be trusted",
        ),
        ("oversized", Some(vec![b' '; (64 << 20) + 1]), "64 MiB"),
    ];
    for (case, planted, why) in cases {
        match planted {
            None => {
                remote
                    .wrangler_delete(home, BUCKET, &manifest_key)
                    .assert_ok();
            }
            Some(planted) => (remote.server)
                .r2_put_object(BUCKET, &manifest_key, &planted)
                .unwrap(),
        }
        let (left_out, dry) = reindex_left_out(&remote, home, &name);
        for said in [manifest_key.as_str(), why] {
            assert!(
                left_out.contains(said),
                "{case}: {said}: {left_out}\n{}",
                dry.all()
            );
        }
        for planted in [
            &planted_sha,
            "staging",
            "qbtime_db_planted",
            "planted-marker",
        ] {
            assert!(
                !dry.all().contains(planted),
                "{case}: {planted}\n{}",
                dry.all()
            );
        }
    }
}

/// Writes the sandbox's `file` as `edit` makes it.
fn edit_file(sb: &Sandbox, file: &str, edit: impl FnOnce(String) -> String) {
    let path = sb.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = edit(text.clone());
    assert_ne!(text, edited, "the edit changed nothing");
    std::fs::write(&path, edited).unwrap();
}

/// The bucket's lock rules, lifecycle rules and objects.
fn bucket_state(remote: &Remote) -> (Value, Value, Vec<String>) {
    let server = &remote.server;
    (
        server.r2_lock(BUCKET),
        server.r2_lifecycle(BUCKET),
        server.r2_keys(BUCKET),
    )
}

/// Staging's short name (`vars.APP_ENV`) set to `index`, with an offsite
/// bucket: its prefix `index/` is where every environment's index is
/// (`index/prod.json`), so `offsite lock --env index` locked prod's index
/// (every later upload of prod failed) and `offsite lifecycle --env index`
/// made R2 expire it. The configuration is refused (exit 2) before any
/// command reaches the bucket, naming the key and the fix; the bucket and
/// the files outside backups/ are as they were.
#[test]
fn an_environment_short_named_index_is_refused_before_it_reaches_the_indexes() {
    let (remote, home) = remote();
    let home = home.path();
    let sb = &remote.sb;
    remote.backup_and_upload_prod(home);
    edit_file(sb, "wrangler.toml", |t| {
        t.replace("APP_ENV = \"staging\"", "APP_ENV = \"index\"")
    });
    edit_file(sb, "backups.toml", |t| {
        t.replace("[staging.retention]", "[index.retention]")
            + &format!("\n[index.offsite]\nbucket = \"{BUCKET}\"\n")
    });
    let decoys = Decoys::plant(sb.path());
    let before = (decoys.hashes(), sb.backup_files(), bucket_state(&remote));

    for args in [
        &[
            "offsite",
            "lock",
            "--env",
            "index",
            "--confirm",
            "qbtime_db_staging",
        ][..],
        &[
            "offsite",
            "lifecycle",
            "--env",
            "index",
            "--confirm",
            "qbtime_db_staging",
        ],
        &["offsite", "lifecycle", "--env", "index", "--dry-run"],
        &["backup", "staging", "--upload"],
    ] {
        let run = remote.xtask(home, args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("vars.APP_ENV of [env.preview]")
                && run.stderr.contains("index/")
                && run.stderr.contains("Rename it"),
            "{args:?}: the refusal names the key, why and the fix:\n{}",
            run.all()
        );
    }
    let after = (decoys.hashes(), sb.backup_files(), bucket_state(&remote));
    assert_eq!(before, after);
}

/// A lock rule over `index/` (an administrator's on the whole bucket, or
/// one an earlier version's `offsite lock --env index` set) keeps prod's
/// index from being rewritten: R2 answers each upload's PUT of it 403,
/// code 10069. The upload said "copy it once R2 answers", which no wait
/// makes true: it now says a bucket lock holds the object until its age
/// passes the rule's, and how to see the bucket's lock rules.
#[test]
fn an_upload_a_bucket_lock_refuses_says_so_not_to_wait_for_r2() {
    let (remote, home) = remote();
    let home = home.path();
    remote.backup_and_upload_prod(home);
    let mut lock = d1_loopback::pinned_wrangler_command(&repo_root());
    lock.args(["r2", "bucket", "lock", "add", BUCKET, "hold-all", ""])
        .args(["--retention-days", "30", "--force"])
        .current_dir(remote.sb.path());
    let out = remote.with_api(&mut lock, home).output().unwrap();
    assert!(out.status.success(), "{out:?}");

    let run = remote.xtask(home, &["backup", "prod", "--upload"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        !run.stderr.contains("once R2 answers")
            && run.stderr.contains("bucket lock")
            && run.stderr.contains("offsite lock --env prod --dry-run")
            && run.stderr.contains("cargo xtask doctor"),
        "the failure says a bucket lock holds the object and how to see it:\n{}",
        run.all()
    );
}

/// An index entry's `format`, `mode` and `verified` were checked for
/// control characters alone: a forged index listed a plain `.sql` copy as
/// `zstd+age`, or `verified` as `"good   "` (padding that shifts the
/// list's columns), and `offsite list` showed it without a warning. Each
/// is held to the words this tool writes (the format the file's extension
/// says): an entry with another is set aside, named with its field and the
/// fix, its value never printed.
#[test]
fn an_index_entry_with_a_format_mode_or_verified_this_tool_never_writes_is_set_aside() {
    let (remote, home) = remote();
    let home = home.path();
    let name = remote.backup_and_upload_prod(home);
    let key = "index/prod.json";
    let real = remote.server.r2_object(BUCKET, key).unwrap();
    for (field, forged) in [
        ("format", "zstd+age"),
        ("verified", "good   "),
        ("mode", "everything"),
    ] {
        let mut index: Value = serde_json::from_slice(&real).unwrap();
        index["backups"][0][field] = Value::from(forged);
        let bytes = serde_json::to_vec(&index).unwrap();
        remote.server.r2_put_object(BUCKET, key, &bytes).unwrap();

        let list = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
        list.assert_ok();
        assert!(
            !list.stdout.contains(&name)
                && list.stderr.contains("entry 1")
                && list.stderr.contains("set aside")
                && list.stderr.contains(&format!("`{field}`"))
                && !list.all().contains(forged),
            "{field}: the entry is set aside, naming the field, never its value:\n{}",
            list.all()
        );
    }
}

/// `offsite reindex --json`, of a bucket whose copy's manifest object is
/// gone (and whose index is not JSON): one document on stdout, as
/// `offsite list --json` prints one, naming what the new index keeps,
/// the copy left out with its keys, why and the fix, and where the old
/// index's bytes go; the exit code is the text form's, and no token is
/// in it. The real run's document says the index was replaced and where
/// the old bytes are.
#[test]
fn reindex_json_names_the_copy_left_out_its_key_why_and_the_fix() {
    let (remote, home) = remote();
    let home = home.path();
    let name = remote.backup_and_upload_prod(home);
    let manifest_name = name.replace(".sql", ".manifest.json");
    let manifest_key = prod_key(&remote, &manifest_name);
    remote
        .wrangler_delete(home, BUCKET, &manifest_key)
        .assert_ok();
    (remote.server)
        .r2_put_object(BUCKET, "index/prod.json", b"{\"backups\": [")
        .unwrap();
    let text = remote.xtask(home, &["offsite", "reindex", "--env", "prod", "--dry-run"]);
    let run = |more: &[&str]| {
        let args = [&["offsite", "reindex", "--env", "prod", "--json"][..], more].concat();
        let run = remote.xtask(home, &args);
        assert!(!run.all().contains(TOKEN), "{}", run.all());
        let doc: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", run.all()));
        (run, doc)
    };
    let (dry, doc) = run(&["--dry-run"]);
    assert_eq!(dry.code, text.code, "{}\n{}", text.all(), dry.all());
    assert_eq!(doc["command"], "offsite reindex", "{doc:#}");
    assert_eq!(doc["dry_run"], true, "{doc:#}");
    assert_eq!(
        doc["index"],
        format!("r2://{BUCKET}/index/prod.json"),
        "{doc:#}"
    );
    assert_eq!(doc["backups"], Value::Array(vec![]), "{doc:#}");
    let left_out = &doc["left_out"][0];
    assert_eq!(left_out["file"], name.as_str(), "{doc:#}");
    assert_eq!(left_out["manifest_key"], manifest_key.as_str(), "{doc:#}");
    let reason = left_out["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no manifest object") && reason.contains(&manifest_key),
        "{doc:#}"
    );
    let fix = left_out["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains(&format!("`cargo xtask upload {name} --env prod`")),
        "{doc:#}"
    );
    assert!(!doc["old_index"]["why"].is_null(), "{doc:#}");
    assert_eq!(doc["replaced"], false, "{doc:#}");
    let (done, doc) = run(&["--confirm", "qbtime_db_prod"]);
    assert_eq!(done.code, Some(0), "{}", done.all());
    assert_eq!(doc["replaced"], true, "{doc:#}");
    let aside = doc["old_index"]["kept_aside"].as_str().unwrap_or_default();
    assert_eq!(
        std::fs::read(aside).ok().as_deref(),
        Some(&b"{\"backups\": ["[..]),
        "{doc:#}"
    );
}
