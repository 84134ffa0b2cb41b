//! A loopback "Cloudflare" for the remote paths: the real wrangler's
//! `--remote` code runs against `d1_loopback` on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

use d1_loopback::{Config, DatabaseSpec, Server};

use super::template;
use super::*;

pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "loopback-api-token-0123456789";
pub const PROD_UUID: &str = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
/// `offsite lock` of prod, confirmed.
pub const LOCK_PROD: [&str; 6] = [
    "offsite",
    "lock",
    "--env",
    "prod",
    "--confirm",
    "qbtime_db_prod",
];
pub const STAGING_UUID: &str = "5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c";

/// A sandbox, and a loopback "Cloudflare" serving qbtime_db_prod from a
/// SQLite file prepared like a migrated, used production database, and an
/// empty qbtime_db_staging.
pub struct Remote {
    pub sb: Sandbox,
    pub server: Server,
    /// qbtime_db_prod's SQLite file.
    pub db: PathBuf,
    /// qbtime_db_staging's SQLite file.
    pub staging: PathBuf,
    _db_dir: tempfile::TempDir,
}

impl Remote {
    pub fn new(extra_sql: &str) -> Remote {
        Remote::with_migrations(extra_sql, usize::MAX)
    }

    /// Like `new`, with only the first `applied` migrations applied to prod.
    pub fn with_migrations(extra_sql: &str, applied: usize) -> Remote {
        Remote::serving(extra_sql, applied, "qbtime_db_prod")
    }

    /// Like `new`, with prod's database called `name` in the account (for
    /// a configuration that calls it so).
    pub fn with_prod_named(name: &str) -> Remote {
        Remote::serving("", usize::MAX, name)
    }

    fn serving(extra_sql: &str, applied: usize, prod_name: &str) -> Remote {
        let sb = Sandbox::new();
        let db_dir = tempfile::tempdir().unwrap();
        let db = db_dir.path().join("qbtime_db_prod.sqlite");
        // Made once per test process for each `extra_sql` and `applied`, so
        // that remotes made alike hold the same bytes (see `backup_prod`).
        let applied_tag = applied.to_string();
        let key = template::key(
            &repo_root(),
            "remote prod",
            &[extra_sql, &applied_tag, SEED_SQL],
            &[],
        );
        template::made_once(&key, db_dir.path(), || make_prod(&db, extra_sql, applied));
        let staging = db_dir.path().join("qbtime_db_staging.sqlite");
        let server = Server::start(Config {
            account_id: ACCOUNT.into(),
            api_token: TOKEN.into(),
            databases: vec![
                DatabaseSpec {
                    uuid: PROD_UUID.into(),
                    name: prod_name.into(),
                    path: db.clone(),
                },
                DatabaseSpec {
                    uuid: STAGING_UUID.into(),
                    name: "qbtime_db_staging".into(),
                    path: staging.clone(),
                },
            ],
            work_dir: None,
        })
        .unwrap();
        Remote {
            sb,
            server,
            db,
            staging,
            _db_dir: db_dir,
        }
    }

    /// A verified `backup prod` for a test to start from (not the backup
    /// under test): returns its file name. On a fresh remote (no request
    /// served yet, nothing in backups/) the first test process's run of
    /// the real `backup prod` is kept, keyed on everything it depends on
    /// (see [`Remote::fresh_key`]), and a later remote made alike gets a
    /// copy of its backups/ instead: the same bytes, as if taken a little
    /// earlier. Otherwise the real command runs.
    pub fn backup_prod(&self, home: &Path) -> String {
        self.backup_prod_with(home, &[])
    }

    /// [`Remote::backup_prod`] with `flags` after `backup prod` (as
    /// `--data-only`), kept and copied the same way.
    pub fn backup_prod_with(&self, home: &Path, flags: &[&str]) -> String {
        let step = [&["backup", "prod"], flags].concat();
        let real = || {
            self.xtask(home, &step).assert_ok();
        };
        match self.fresh_key(&step) {
            Some(key) => {
                template::made_once(&key, &self.sb.backups(), real);
            }
            None => real(),
        }
        let name = only_backup(&self.sb);
        let m = manifest_for(&self.sb, &name);
        assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
        name
    }

    /// The key of taking `step` on this remote, when it is fresh (no
    /// request served yet, nothing in backups/): everything the step's
    /// result depends on (prod's and staging's bytes, the loopback's faults
    /// and its buckets with their objects, lock and lifecycle rules, the
    /// sandbox's wrangler.toml, backups.toml and migrations/). `None` when
    /// the remote is not fresh.
    fn fresh_key(&self, step: &[&str]) -> Option<String> {
        if !self.server.requests().is_empty() || !self.sb.backup_files().is_empty() {
            return None;
        }
        let read = |p: &Path| sha256_hex(&std::fs::read(p).unwrap_or_default());
        let mut from = format!(
            "backup of prod {} staging {} faults {:?}",
            read(&self.db),
            read(&self.staging),
            self.server.faults(),
        );
        for bucket in self.server.r2_buckets() {
            from.push_str(&format!(
                " bucket {bucket} lock {} lifecycle {}",
                self.server.r2_lock(&bucket),
                self.server.r2_lifecycle(&bucket)
            ));
            for key in self.server.r2_keys(&bucket) {
                let bytes = self.server.r2_object(&bucket, &key).unwrap_or_default();
                from.push_str(&format!(" object {key:?} {}", sha256_hex(&bytes)));
            }
        }
        Some(template::key(
            self.sb.path(),
            &from,
            step,
            &["backups.toml"],
        ))
    }

    /// [`Remote::backup_prod`], then `upload NAME --env prod`: prod's
    /// newest backup, offsite, for a test to start from (not the upload
    /// under test). Returns its name. Kept and copied as
    /// [`Remote::made_once`] keeps what it runs.
    pub fn backup_and_upload_prod(&self, home: &Path) -> String {
        let step = ["backup", "prod", "then upload NAME --env prod"];
        self.made_once(&step, |_| {
            let name = self.backup_prod(home);
            self.xtask(home, &["upload", &name, "--env", "prod"])
                .assert_ok();
        });
        only_backup(&self.sb)
    }

    /// Runs `real` (the real commands of `step`) on this remote and returns
    /// a directory holding what `real` wrote into the one it is given. As
    /// for `backup_prod`, on a fresh remote the first test process's run is
    /// kept (backups/, every object in the loopback's buckets, and that
    /// directory), and a later remote made alike gets copies instead: its
    /// backups/ as they were left, the same objects put in its buckets (as
    /// an upload without headers puts them, a little later), and the same
    /// directory. Otherwise `real` runs.
    pub fn made_once(&self, step: &[&str], real: impl FnOnce(&Path)) -> tempfile::TempDir {
        let kept = tempfile::tempdir().unwrap();
        let Some(key) = self.fresh_key(step) else {
            real(kept.path());
            return kept;
        };
        let mut here = false;
        template::made_once(&key, kept.path(), || {
            here = true;
            real(kept.path());
            self.keep_backups_and_objects(kept.path());
        });
        if !here {
            self.copy_backups_and_objects(kept.path());
        }
        kept
    }

    /// Writes backups/ (and its permission bits) and every R2 object under
    /// `dir`, for [`Remote::copy_backups_and_objects`].
    fn keep_backups_and_objects(&self, dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        copy_dir(&self.sb.backups(), &dir.join("backups"));
        let mode = std::fs::metadata(self.sb.backups()).unwrap().permissions();
        std::fs::write(dir.join("backups.mode"), mode.mode().to_string()).unwrap();
        let mut objects: Vec<(String, String, Vec<u8>)> = Vec::new();
        for bucket in self.server.r2_buckets() {
            for key in self.server.r2_keys(&bucket) {
                let bytes = self.server.r2_object(&bucket, &key).unwrap();
                objects.push((bucket.clone(), key, bytes));
            }
        }
        let json = serde_json::to_vec(&objects).unwrap();
        std::fs::write(dir.join("objects.json"), json).unwrap();
    }

    /// The backups/ and R2 objects that [`Remote::keep_backups_and_objects`]
    /// wrote under `dir`, copied into this remote.
    fn copy_backups_and_objects(&self, dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        copy_dir(&dir.join("backups"), &self.sb.backups());
        let mode = std::fs::read_to_string(dir.join("backups.mode")).unwrap();
        let mode = std::fs::Permissions::from_mode(mode.parse().unwrap());
        std::fs::set_permissions(self.sb.backups(), mode).unwrap();
        let json = std::fs::read(dir.join("objects.json")).unwrap();
        let objects: Vec<(String, String, Vec<u8>)> = serde_json::from_slice(&json).unwrap();
        for (bucket, key, bytes) in objects {
            self.server.r2_put_object(&bucket, &key, &bytes).unwrap();
        }
    }

    /// [`Remote::backup_prod`] into the bucket `qbtime-d1-backups`, with
    /// `offsite lock` set on prod's prefix, as prod's bucket should be.
    pub fn backup_prod_under_a_bucket_lock(&self, home: &Path) -> String {
        self.server.add_bucket("qbtime-d1-backups");
        let name = self.backup_prod(home);
        self.xtask(home, &LOCK_PROD).assert_ok();
        name
    }

    /// The xtask with credentials for the loopback API, and a HOME of its
    /// own so that nothing it or wrangler writes there goes unseen.
    pub fn xtask(&self, home: &Path, args: &[&str]) -> Run {
        Run::from_output(self.xtask_command(home, args).output().unwrap())
    }

    /// The command `xtask` runs, to add to before it runs.
    pub fn xtask_command(&self, home: &Path, args: &[&str]) -> Command {
        let mut cmd = self.sb.xtask_command(args);
        self.with_api(&mut cmd, home);
        cmd
    }

    /// Points any command at the loopback API, with a HOME of its own.
    pub fn with_api<'c>(&self, cmd: &'c mut Command, home: &Path) -> &'c mut Command {
        cmd.env("CLOUDFLARE_API_BASE_URL", self.server.api_base_url())
            .env("CLOUDFLARE_API_TOKEN", TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
    }

    /// The real wrangler's `r2 object delete` of `key` in `bucket`,
    /// against the loopback.
    pub fn wrangler_delete(&self, home: &Path, bucket: &str, key: &str) -> Run {
        let mut cmd = d1_loopback::pinned_wrangler_command(&repo_root());
        cmd.args([
            "r2",
            "object",
            "delete",
            &format!("{bucket}/{key}"),
            "--remote",
        ])
        .current_dir(self.sb.path());
        self.with_api(&mut cmd, home);
        Run::from_output(cmd.output().unwrap())
    }

    pub fn wrangler_json(&self, home: &Path, args: &[&str]) -> serde_json::Value {
        let out = d1_loopback::pinned_wrangler_command(&repo_root())
            .args(args)
            .current_dir(self.sb.path())
            .env("CLOUDFLARE_API_BASE_URL", self.server.api_base_url())
            .env("CLOUDFLARE_API_TOKEN", TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
            .env("HOME", home)
            .env("WRANGLER_SEND_METRICS", "false")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn live_counts(&self) -> std::collections::BTreeMap<String, u64> {
        counts(&self.db)
    }
}

/// `d1_migrations` as the pinned wrangler's `migrations apply` creates it
/// (`getCreateMigrationsTableQuery`): its name quoted, which SQLite keeps
/// and D1's export then writes `CREATE TABLE IF NOT EXISTS`.
pub const WRANGLERS_D1_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS \"d1_migrations\"(\n\
     \t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\
     \t\tname       TEXT UNIQUE,\n\
     \t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);";

/// A SQLite file prepared like a production database: the first `applied`
/// migrations applied and recorded, then (with all of them) the seed rows,
/// then `extra_sql`.
fn make_prod(db: &Path, extra_sql: &str, applied: usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys=ON;\n{WRANGLERS_D1_MIGRATIONS}"
    ))
    .unwrap();
    let mut migrations: Vec<PathBuf> = std::fs::read_dir(repo_root().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    migrations.sort();
    for m in migrations.iter().take(applied) {
        conn.execute_batch(&std::fs::read_to_string(m).unwrap())
            .unwrap();
        conn.execute(
            "INSERT INTO d1_migrations (name) VALUES (?1)",
            [m.file_name().unwrap().to_str().unwrap()],
        )
        .unwrap();
    }
    if applied >= migrations.len() {
        conn.execute_batch(SEED_SQL).unwrap();
    }
    conn.execute_batch(extra_sql).unwrap();
    drop(conn);
}

/// Row counts of every table in a SQLite file.
pub fn counts(db: &Path) -> std::collections::BTreeMap<String, u64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type='table' AND sql NOT NULL \
             AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names
        .into_iter()
        .map(|n| {
            let c: i64 = conn
                .query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0))
                .unwrap();
            (n, c as u64)
        })
        .collect()
}

/// Everything in a SQLite file, as D1 would export it.
pub fn dump_of(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    d1_dump::dump_sql(&conn, &d1_dump::DumpOptions::default()).unwrap()
}

/// The safety backup that a failed restore's error names: exactly one, whole
/// (its sha256 is its manifest's) and verified good. Returns its file name.
#[track_caller]
pub fn assert_safety_backup_named(remote: &Remote, run: &Run) -> String {
    let safety: Vec<String> = remote
        .sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql") && run.stderr.contains(f.as_str()))
        .collect();
    assert_eq!(safety.len(), 1, "{}", run.stderr);
    let m = manifest_for(&remote.sb, &safety[0]);
    let bytes = std::fs::read(remote.sb.backups().join(&safety[0])).unwrap();
    assert_eq!(
        m["file"]["sha256"],
        sha256_hex(&bytes).as_str(),
        "the safety backup is intact"
    );
    assert_eq!(m["verification"]["outcome"], "good");
    safety[0].clone()
}
