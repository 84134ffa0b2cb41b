//! A throwaway copy of the repository for end-to-end tests: its own git
//! repository, wrangler configuration, migrations and local D1 state, so no
//! test touches the real `.wrangler/` or `backups/`. The real, pinned
//! wrangler from the repository's `node_modules` does the work.

#![allow(dead_code)]

pub mod app;
pub mod decoys;
pub mod remote;
pub mod template;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The pinned wrangler, installed with `npm ci` on first use so that
/// `cargo test` works on a fresh clone.
pub fn wrangler_bin() -> PathBuf {
    d1_loopback::pinned_wrangler(&repo_root())
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// How the local D1 state was made, for copying it (see `template`).
    lineage: std::cell::RefCell<template::Lineage>,
}

/// The output of a command, decoded, with the exit status.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            ok: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Run {
        assert!(self.ok, "command failed ({:?}):\n{}", self.code, self.all());
        self
    }

    #[track_caller]
    pub fn assert_refused(&self, needle: &str) -> &Run {
        assert!(!self.ok, "command should have failed:\n{}", self.all());
        assert!(
            self.stderr.contains(needle),
            "expected {needle:?} in stderr:\n{}",
            self.all()
        );
        self
    }

    /// The first line of stdout holding `needle`; fails the test, showing
    /// stdout, when none does.
    #[track_caller]
    pub fn stdout_line_with(&self, needle: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in stdout:\n{}", self.all()))
    }
}

impl Sandbox {
    /// A git repository holding the real wrangler.toml, migrations/,
    /// .gitignore and git hooks.
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("qbtime-test-")
            .tempdir()
            .unwrap();
        let root = repo_root();
        for file in ["wrangler.toml", ".gitignore", "backups.toml"] {
            std::fs::copy(root.join(file), dir.path().join(file)).unwrap();
        }
        copy_dir(&root.join("migrations"), &dir.path().join("migrations"));
        copy_dir(&root.join("scripts"), &dir.path().join("scripts"));
        let sb = Sandbox {
            dir,
            lineage: Default::default(),
        };
        sb.git(&["init", "-q", "-b", "main"]);
        sb.git(&["config", "user.email", "test@example.com"]);
        sb.git(&["config", "user.name", "Test"]);
        sb.git(&["config", "commit.gpgsign", "false"]);
        sb
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of this sandbox as `cp -al` makes one: every file in it a
    /// second name of this sandbox's (a hard link), its directories its own.
    pub fn copied_with_hard_links(&self) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("qbtime-test-")
            .tempdir()
            .unwrap();
        let copied = Command::new("cp")
            .arg("-al")
            .arg(self.path().join("."))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(copied.success(), "cp -al failed");
        Sandbox {
            dir,
            lineage: Default::default(),
        }
    }

    /// prod's short name changed, the same database: `vars.APP_ENV` "prod"
    /// -> "live" in wrangler.toml, and backups.toml's `[prod]` tables
    /// renamed with it, as a team renaming its environment does.
    pub fn rename_prod_to_live(&self) {
        let config = self.path().join("wrangler.toml");
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("APP_ENV = \"prod\"", "APP_ENV = \"live\"");
        std::fs::write(&config, text).unwrap();
        let settings = self.path().join("backups.toml");
        let text = std::fs::read_to_string(&settings)
            .unwrap()
            .replace("[prod]", "[live]")
            .replace("[prod.", "[live.");
        std::fs::write(&settings, text).unwrap();
    }

    /// Writes `content` to `path`, stages it (ignored or not) and commits,
    /// as the hooks see a commit; a refused commit is unstaged and its file
    /// removed, for the next attempt.
    pub fn try_commit(&self, path: &str, content: &[u8]) -> Run {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, content).unwrap();
        self.git(&["add", "-f", path]).assert_ok();
        let run = self.git(&["commit", "-q", "-m", "try"]);
        if !run.ok {
            self.git(&["reset", "-q"]).assert_ok();
            std::fs::remove_file(&full).unwrap();
        }
        run
    }

    pub fn backups(&self) -> PathBuf {
        self.path().join("backups")
    }

    /// Files in backups/, sorted, by name.
    pub fn backup_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.backups()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every file in backups/ but the lock, with its sha256: a backup
    /// taken, deleted or changed shows.
    pub fn backups_held(&self) -> std::collections::BTreeMap<String, String> {
        { self.backup_files().into_iter() }
            .filter(|name| name != ".lock")
            .map(|name| {
                let bytes = std::fs::read(self.backups().join(&name)).unwrap_or_default();
                (name, sha256_hex(&bytes))
            })
            .collect()
    }

    pub fn git(&self, args: &[&str]) -> Run {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        Run::from_output(out)
    }

    /// Makes the sandbox a checkout of its own (package.json, and the
    /// repository's node_modules linked in), so that the xtask finds it
    /// and its wrangler configuration from the current directory.
    pub fn into_checkout(self) -> Sandbox {
        std::fs::copy(
            repo_root().join("package.json"),
            self.path().join("package.json"),
        )
        .unwrap();
        let modules = repo_root().join("node_modules").canonicalize().unwrap();
        std::os::unix::fs::symlink(modules, self.path().join("node_modules")).unwrap();
        self
    }

    /// The xtask run in this sandbox as an operator runs it in a checkout:
    /// no `--config`, so it finds the wrangler configuration itself.
    pub fn xtask_in_checkout(&self, args: &[&str]) -> Run {
        Run::from_output(
            self.xtask_in_checkout_from(self.path(), args)
                .output()
                .unwrap(),
        )
    }

    /// The xtask run as [`Sandbox::xtask_in_checkout`] runs it, from `dir`
    /// (a directory of the checkout), as cargo's alias runs it where it
    /// was typed.
    pub fn xtask_in_checkout_from(&self, dir: &Path, args: &[&str]) -> Command {
        wrangler_bin();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args)
            .current_dir(dir)
            .env("WRANGLER_SEND_METRICS", "false")
            .env_remove("QBTIME_BACKUP_DIR")
            .env_remove("QBTIME_WRANGLER_CONFIG")
            .env_remove("QBTIME_REHEARSAL")
            .env_remove("CLOUDFLARE_API_BASE_URL");
        without_credentials(&mut cmd);
        cmd
    }

    /// The xtask binary, pointed at this sandbox, with no Cloudflare credentials.
    pub fn xtask_command(&self, args: &[&str]) -> Command {
        wrangler_bin();
        self.sandboxed(Command::new(env!("CARGO_BIN_EXE_xtask")), args)
    }

    /// `cmd` (the xtask, or a program that runs it, as `setpriv` does) with
    /// this sandbox's configuration (`QBTIME_WRANGLER_CONFIG`, as a shell
    /// that pastes a printed command has it too), `args`, and no Cloudflare
    /// credentials.
    pub fn sandboxed(&self, mut cmd: Command, args: &[&str]) -> Command {
        cmd.args(args)
            .current_dir(self.path())
            .env("WRANGLER_SEND_METRICS", "false")
            .env_remove("QBTIME_BACKUP_DIR")
            .env("QBTIME_WRANGLER_CONFIG", self.path().join("wrangler.toml"))
            // A rehearsal's, left in the shell that runs the suite, would
            // refuse every command (`steps::rehearsals::refuse_unless_live`).
            .env_remove("QBTIME_REHEARSAL")
            .env_remove("CLOUDFLARE_API_BASE_URL");
        without_credentials(&mut cmd);
        cmd
    }

    pub fn xtask(&self, args: &[&str]) -> Run {
        Run::from_output(self.xtask_command(args).output().unwrap())
    }

    /// The real wrangler, run in the sandbox, for setting up and inspecting
    /// the local D1.
    pub fn wrangler(&self, args: &[&str]) -> Run {
        let log_dir = self.path().join(".wrangler-test-logs");
        let out = d1_loopback::pinned_wrangler_command(&repo_root())
            .args(args)
            .current_dir(self.path())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_LOG_PATH", &log_dir)
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("CF_API_TOKEN")
            .output()
            .unwrap();
        Run::from_output(out)
    }

    /// The runbook's hand-made data-only export of the local D1 (`npx
    /// wrangler d1 export qbtime_db_local --local --no-schema --output
    /// FILE`), written to `name` in the sandbox; returns its path.
    pub fn export_data_only(&self, name: &str) -> PathBuf {
        let file = self.path().join(name);
        let output = file.to_str().unwrap();
        let args = ["d1", "export", "qbtime_db_local", "--local", "--no-schema"];
        self.wrangler(&[&args[..], &["--output", output]].concat())
            .assert_ok();
        file
    }

    /// Applies migrations/ to the local D1 with the real wrangler, or copies
    /// the state that the real wrangler left for the same configuration,
    /// migrations and prior steps in this test process (see `template`).
    pub fn apply_migrations(&self) {
        let args = ["d1", "migrations", "apply", "qbtime_db_local", "--local"];
        self.lineage.borrow_mut().step(self.path(), &args, || {
            self.wrangler(&args).assert_ok();
        });
    }

    /// Sets the local D1 up with `sql` (a copy of what an earlier run left
    /// for the same steps, see `template`). It is written into the local
    /// D1's SQLite file, as D1 runs it: in one transaction, with foreign
    /// keys enforced. A wrangler run costs about 2 s of CPU and this is
    /// setup, not what a test proves; a test of what D1 does with some SQL
    /// uses `execute_sql_with_wrangler`. Without a single local D1 file yet,
    /// wrangler runs it (and creates the database).
    pub fn execute_sql(&self, sql: &str) {
        self.lineage
            .borrow_mut()
            .step(self.path(), &["execute --file", sql], || {
                match self.local_d1_files().as_slice() {
                    [file] => execute_file(file, sql),
                    _ => self.execute_sql_with_wrangler(sql),
                }
            });
    }

    /// Runs a SQL file against the local D1 with the real wrangler.
    pub fn execute_sql_with_wrangler(&self, sql: &str) {
        let file = self.path().join(".seed.sql");
        std::fs::write(&file, sql).unwrap();
        self.wrangler(&[
            "d1",
            "execute",
            "qbtime_db_local",
            "--local",
            "--file",
            file.to_str().unwrap(),
        ])
        .assert_ok();
        std::fs::remove_file(file).unwrap();
    }

    /// Runs one or more statements against the local D1 and returns each
    /// statement's rows, as `wrangler d1 execute --json` gives them. For
    /// tests that only inspect the state, it reads a copy of the local D1's
    /// SQLite file (a wrangler run costs about 2 s of CPU); when there is no
    /// single local D1 file to read, it asks the real wrangler.
    pub fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        match self.local_d1_copy() {
            Some((_dir, db)) => query_file(&db, sql),
            None => self.query_with_wrangler(sql),
        }
    }

    /// `query` through the real wrangler, for a check that D1 itself sees
    /// the state (or that needs wrangler to create the local database).
    pub fn query_with_wrangler(&self, sql: &str) -> Vec<Vec<Value>> {
        let run = self.wrangler(&[
            "d1",
            "execute",
            "qbtime_db_local",
            "--local",
            "--json",
            "--command",
            sql,
        ]);
        run.assert_ok();
        let json: Value = serde_json::from_str(&run.stdout).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|r| r["results"].as_array().unwrap().clone())
            .collect()
    }

    /// The local D1's SQLite files in the sandbox (not workerd's
    /// `metadata.sqlite`).
    pub fn local_d1_files(&self) -> Vec<PathBuf> {
        let dir = self
            .path()
            .join(".wrangler/state/v3/d1/miniflare-D1DatabaseObject");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "sqlite") && !p.ends_with("metadata.sqlite")
            })
            .collect()
    }

    /// Empties the local D1 as the README's `--clean` procedure does: its
    /// SQLite files removed, with their `-wal` and `-shm`.
    pub fn empty_local_d1(&self) {
        for file in self.local_d1_files() {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }

    /// The local D1's SQLite file; panics unless there is exactly one.
    pub fn local_d1_file(&self) -> PathBuf {
        match self.local_d1_files().as_slice() {
            [file] => file.clone(),
            files => panic!("expected one local D1 database, found {files:?}"),
        }
    }

    /// A copy of the local D1's SQLite file (with its WAL, if any) in a
    /// temporary directory, when the sandbox has exactly one local D1 file;
    /// copied so that reading it leaves nothing behind in the sandbox.
    fn local_d1_copy(&self) -> Option<(tempfile::TempDir, PathBuf)> {
        let files = self.local_d1_files();
        let [file] = files.as_slice() else {
            return None;
        };
        let copy = tempfile::tempdir().unwrap();
        let db = copy.path().join("d1.sqlite");
        std::fs::copy(file, &db).unwrap();
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        if Path::new(&wal).exists() {
            std::fs::copy(&wal, copy.path().join("d1.sqlite-wal")).unwrap();
        }
        Some((copy, db))
    }

    /// Row counts of every table in the local D1, as the database sees them
    /// (read as `query` reads).
    pub fn live_row_counts(&self) -> std::collections::BTreeMap<String, u64> {
        if let Some((_dir, db)) = self.local_d1_copy() {
            return remote::counts(&db);
        }
        let tables = self.query_with_wrangler(
            "SELECT name FROM sqlite_master WHERE type='table' AND sql NOT NULL \
             AND name NOT LIKE '_cf_%' ORDER BY name",
        );
        let names: Vec<String> = tables[0]
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        // D1 caps compound SELECTs, so one statement per table.
        let sql = names
            .iter()
            .map(|n| format!("SELECT count(*) AS n FROM \"{n}\""))
            .collect::<Vec<_>>()
            .join("; ");
        let counts = self.query_with_wrangler(&sql);
        names
            .into_iter()
            .zip(counts)
            .map(|(name, rows)| (name, rows[0]["n"].as_u64().unwrap()))
            .collect()
    }
}

/// Runs `sql` against a SQLite file in one transaction, with foreign keys
/// enforced as D1 enforces them.
pub fn execute_file(db: &Path, sql: &str) {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(sql)
        .unwrap_or_else(|e| panic!("{e} in:\n{sql}"));
    tx.commit().unwrap();
}

/// Each statement's rows from a SQLite file, shaped as wrangler's `--json`
/// shapes them: one object per row, by column name; a whole REAL as an
/// integer, as JavaScript prints it; a BLOB as the text `[0, 17, 255]`.
pub fn query_file(db: &Path, sql: &str) -> Vec<Vec<Value>> {
    use rusqlite::fallible_iterator::FallibleIterator as _;
    use rusqlite::types::ValueRef;
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut batch = rusqlite::Batch::new(&conn, sql);
    let mut out = Vec::new();
    while let Some(mut stmt) = batch.next().unwrap() {
        let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
        let mut rows = stmt.raw_query();
        let mut results = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let mut object = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let value = match row.get_ref(i).unwrap() {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => n.into(),
                    ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).into(),
                    ValueRef::Real(f) => f.into(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(b) => format!("{b:?}").into(),
                };
                object.insert(name.clone(), value);
            }
            results.push(Value::Object(object));
        }
        out.push(results);
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Realistic rows for every qbtime table, including BLOB ciphertext,
/// strings with quotes, semicolons and newlines, and a two-row audit chain
/// whose hashes follow the rule in migrations/0004_audit_log.sql.
pub const SEED_SQL: &str = r#"
INSERT INTO encryption_keys (key_id, fingerprint, activated_at, retired_at) VALUES
  ('dek-2025-01', 'sha256:1111111111111111111111111111111111111111111111111111111111111111', '2025-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),
  ('dek-2026-01', 'sha256:2222222222222222222222222222222222222222222222222222222222222222', '2026-01-01T00:00:00.000Z', NULL);
INSERT INTO accounts (email, display_name, password_hash, role, mfa_secret_ciphertext, mfa_key_id) VALUES
  ('owner@example.com', 'Olive O''Neil', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', 'admin', X'00112233445566778899aabbccddeeff', 'dek-2026-01'),
  ('ops@example.com', 'Ops; the "team"', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaB', 'devops', NULL, NULL),
  ('member@example.com', 'Multi
line name', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaC', 'member', NULL, NULL);
INSERT INTO companies (name, qbt_company_id, timezone) VALUES
  ('Acme Plumbing; Ltd.', 'qbt-1001', 'America/Denver'),
  ('Bob''s Builders', NULL, 'UTC');
INSERT INTO company_members (company_id, account_id, role) VALUES (1, 1, 'owner'), (1, 3, 'viewer'), (2, 1, 'manager');
INSERT INTO customers (company_id, qbt_customer_id, name, email) VALUES
  (1, 'jc-1', 'Henderson Residence', 'h@example.com'),
  (1, 'jc-2', 'City of Boulder', NULL),
  (2, 'jc-9', 'Kitchen remodel', 'k@example.com');
INSERT INTO qbt_connections (company_id, key_id, access_token_ciphertext, refresh_token_ciphertext, client_id, client_secret_ciphertext, access_expires_at, connected_by)
  VALUES (1, 'dek-2026-01', X'a1a2a3a4a5a6a7a8a9aaabacadaeaf00', X'b1b2b3b4b5b6b7b8', 'client-acme', X'c1c2c3c4', '2026-11-24T00:00:00.000Z', 1);
INSERT INTO report_configs (company_id, name, kind, filters_json, recipients_json, created_by)
  VALUES (1, 'Weekly hours', 'timesheet', '{"range":"last_week"}', '["owner@example.com"]', 1);
INSERT INTO notifications (account_id, company_id, kind, title, body) VALUES
  (1, 1, 'report_ready', 'Weekly hours is ready', 'Open it; it''s fine'),
  (3, NULL, 'welcome', 'Welcome', '');
INSERT INTO audit_log (occurred_at, actor_account_id, company_id, action, target_type, target_id, details_json, prev_hash, hash) VALUES
  ('2026-11-01T10:00:00.000Z', 1, 1, 'qbt.connect', 'company', '1', '{"via":"oauth"}',
   '0000000000000000000000000000000000000000000000000000000000000000',
   'a92efd7bab5c4e40dde02ffe15abbc157afdad0d8f323c93c792625d0d7404dd'),
  ('2026-11-02T10:00:00.000Z', 1, 1, 'report.run', 'report_config', '1', NULL,
   'a92efd7bab5c4e40dde02ffe15abbc157afdad0d8f323c93c792625d0d7404dd',
   '0630ec1385e8a202f0e07c5aa5bfe30a0ad42e1d678740b6c23851b85653d117');
"#;

/// Reads the manifest beside a backup file in the sandbox.
pub fn manifest_for(sb: &Sandbox, backup_name: &str) -> Value {
    let stem = backup_name.split(".sql").next().unwrap();
    let text = std::fs::read_to_string(sb.backups().join(format!("{stem}.manifest.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Copies `backup` and its manifest to a backup of `env` taken at `at`, as
/// a run at that time would have named and recorded it; `edit` changes
/// its manifest further. Returns the copy's file name.
pub fn copy_taken_at(
    sb: &Sandbox,
    backup: &str,
    env: &str,
    at: chrono::DateTime<chrono::Utc>,
    edit: impl FnOnce(&mut Value),
) -> String {
    let name = format!("backup-{env}-{}.sql", at.format("%Y%m%d-%H%M"));
    copy_as(sb, backup, (&name, at), edit)
}

/// Copies `backup` and its manifest to the backup `name` taken at `at`;
/// `edit` changes its manifest further. Returns `name`.
pub fn copy_as(
    sb: &Sandbox,
    backup: &str,
    (name, at): (&str, chrono::DateTime<chrono::Utc>),
    edit: impl FnOnce(&mut Value),
) -> String {
    std::fs::copy(sb.backups().join(backup), sb.backups().join(name)).unwrap();
    let mut m = manifest_for(sb, backup);
    m["created_at"] = at.to_rfc3339().into();
    m["file"]["name"] = name.into();
    edit(&mut m);
    write_manifest(sb, &m);
    name.to_owned()
}

/// Moves `backup` and its manifest to a backup taken at `at` (another
/// minute), named and dated as a run at that time would have left it;
/// returns its new name.
pub fn redate(sb: &Sandbox, backup: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let env = manifest_for(sb, backup)["environment"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = copy_taken_at(sb, backup, &env, at, |_| {});
    assert_ne!(name, backup, "redated to its own minute");
    let stem = backup.split(".sql").next().unwrap();
    std::fs::remove_file(sb.backups().join(backup)).unwrap();
    std::fs::remove_file(sb.backups().join(format!("{stem}.manifest.json"))).unwrap();
    name
}

/// A sandbox whose only backup holds the seed rows, and another whose
/// local D1 holds one other row (no backup yet): the source and the
/// target of a restore over a row.
pub fn seed_backup_and_a_row() -> (Sandbox, Sandbox) {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    source.xtask(&["backup", "local"]).assert_ok();
    let target = Sandbox::new();
    target.apply_migrations();
    target.execute_sql(
        "INSERT INTO companies (name, qbt_company_id, timezone) VALUES ('Before', 'qbt-9', 'UTC');",
    );
    (source, target)
}

/// A backup of the seed rows restored over a database holding another row
/// (`--replace --yes`): the source and target sandboxes, the restore's
/// arguments, and the safety backup it took.
pub fn restored_over_a_row() -> (Sandbox, Sandbox, Vec<String>, String) {
    let (source, target) = seed_backup_and_a_row();
    let file = source.backups().join(only_backup(&source));
    let file = file.to_str().unwrap();
    let restore = ["restore", file, "--to", "local", "--replace", "--yes"];
    target.xtask(&restore).assert_ok();
    let safety = only_backup(&target);
    let restore = restore.iter().map(|a| (*a).to_owned()).collect();
    (source, target, restore, safety)
}

/// Makes the verification `m` records, if any, an earlier version's, one
/// that records no `manifest_sha256`: a test that builds a state by
/// editing a verified manifest (another database's id, a rehearsal's
/// mark, a reason) builds the manifest of a backup taken so, not one
/// changed since its verification, which `latest`, `list` and `status`
/// pass over (MS; `restore_local::a_manifest_edited_after_its_verification_is_not_called_good_before_verify_runs`).
pub fn as_recorded_before_manifest_hashes(m: &mut Value) {
    if let Some(v) = m.get_mut("verification").and_then(Value::as_object_mut) {
        v.remove("manifest_sha256");
    }
}

/// Edits the manifest beside `backup` in place, as a backup taken so
/// ([`as_recorded_before_manifest_hashes`]).
pub fn edit_manifest(sb: &Sandbox, backup: &str, edit: impl FnOnce(&mut Value)) {
    let mut m = manifest_for(sb, backup);
    edit(&mut m);
    as_recorded_before_manifest_hashes(&mut m);
    let stem = backup.split(".sql").next().unwrap();
    std::fs::write(
        sb.backups().join(format!("{stem}.manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

/// Writes the manifest `m` beside the backup it names, in the sandbox, as
/// a backup taken so ([`as_recorded_before_manifest_hashes`]).
pub fn write_manifest(sb: &Sandbox, m: &Value) {
    let name = m["file"]["name"].as_str().unwrap();
    let stem = name.split(".sql").next().unwrap();
    let mut m = m.clone();
    as_recorded_before_manifest_hashes(&mut m);
    std::fs::write(
        sb.backups().join(format!("{stem}.manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

/// The plan of `restore latest:local --to local --replace`: which backup
/// `latest` is.
pub fn plan_of_latest(sb: &Sandbox) -> Run {
    sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ])
}

/// A sandbox whose migrations are applied and hold the rows `seed`, and a
/// run of `args` (a `migrate local`) once the migration `sql` is added:
/// the migration fails, exit 1, which this asserts.
#[track_caller]
pub fn failed_migration(seed: &str, sql: &str, args: &[&str]) -> Run {
    let sb = Sandbox::new();
    sb.apply_migrations();
    if !seed.is_empty() {
        sb.execute_sql(seed);
    }
    std::fs::write(sb.path().join("migrations/0005_shape.sql"), sql).unwrap();
    let run = sb.xtask(args);
    assert_eq!(run.code, Some(1), "the migration fails:\n{}", run.all());
    run
}

/// A migration applied to the sandbox's local D1 after its backup was
/// taken, as `migrate` records one: `0005_made_later.sql`, which makes the
/// table `made_later`, then runs `rows` (SQL). Returns its name.
pub fn migration_applied_after(sb: &Sandbox, rows: &str) -> &'static str {
    let later = "0005_made_later.sql";
    let sql = "CREATE TABLE made_later (id INTEGER PRIMARY KEY);";
    std::fs::write(sb.path().join("migrations").join(later), sql).unwrap();
    sb.execute_sql(&format!(
        "{sql} {rows} INSERT INTO d1_migrations (name) VALUES ('{later}');"
    ));
    later
}

/// A migration that does not run (it updates a table no migration
/// makes), added to the sandbox's migrations/ as `0005_broken.sql`;
/// returns its name.
pub fn add_broken_migration(sb: &Sandbox) -> &'static str {
    let broken = "0005_broken.sql";
    let sql = "UPDATE nosuchtable SET x = 1;\n";
    std::fs::write(sb.path().join("migrations").join(broken), sql).unwrap();
    broken
}

/// The plan of a `restore BACKUP --to local --replace`, a dry run that passes.
#[track_caller]
pub fn replace_plan(sb: &Sandbox, backup: &str) -> Run {
    let run = sb.xtask(&["restore", backup, "--to", "local", "--replace", "--dry-run"]);
    run.assert_ok();
    run
}

/// The one backup (not manifest, not hidden) in the sandbox's backups/.
#[track_caller]
pub fn only_backup(sb: &Sandbox) -> String {
    let backups: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|n| n.ends_with(".sql"))
        .collect();
    assert_eq!(backups.len(), 1, "expected one backup, found {backups:?}");
    backups[0].clone()
}

/// A run of `restore FILE --to local --clean --partial --yes` in `sb`.
pub fn restore_clean_partial(sb: &Sandbox, file: &Path) -> Run {
    let args = ["--to", "local", "--clean", "--partial", "--yes"];
    sb.xtask(&[&["restore", file.to_str().unwrap()][..], &args].concat())
}

/// A sandbox with the migrations applied, the seed rows, and one more
/// migration pending: `name` in migrations/, holding `sql`.
pub fn sandbox_with_a_pending_migration(name: &str, sql: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    std::fs::write(sb.path().join("migrations").join(name), sql).unwrap();
    sb
}

/// A sandbox with the migrations applied, the seed rows, and one verified
/// local backup; returns the sandbox and the backup's file name.
pub fn sandbox_with_a_backup() -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    (sb, name)
}

/// Adds migration `name` (holding `sql`) and applies it with `migrate
/// local --yes`, which takes its pre-migration backup first.
pub fn migrate_local_with(sb: &Sandbox, name: &str, sql: &str) {
    std::fs::write(sb.path().join("migrations").join(name), sql).unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
}

/// `bytes` gzip-compressed, as `gzip` writes them.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut packed = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    packed.write_all(bytes).unwrap();
    packed.finish().unwrap()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The age recipient that a `cargo xtask keygen` run printed.
#[track_caller]
pub fn keygen_recipient(run: &Run) -> String {
    run.assert_ok();
    run.stdout
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .expect("keygen prints the recipient")
        .to_owned()
}

/// No unfinished temporary file is left in the sandbox's backups/.
#[track_caller]
pub fn assert_no_partials(sb: &Sandbox) {
    let files = sb.backup_files();
    assert!(!files.iter().any(|f| f.ends_with(".partial")), "{files:?}");
}

/// Makes every backup of `env` in the sandbox encrypted to `recipient`, as
/// `[<env>.encryption]` in backups.toml does in production.
pub fn encrypt_backups_of(sb: &Sandbox, env: &str, recipient: &str) {
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        format!("[{env}.encryption]\nrecipients = [\"{recipient}\"]\n\n{text}"),
    )
    .unwrap();
}

/// The secret key line (`AGE-SECRET-KEY-1…`) of the identity file `key`.
pub fn secret_key_line(key: &Path) -> String {
    let text = std::fs::read_to_string(key).unwrap();
    let line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1"));
    line.unwrap().to_owned()
}

/// The standard output of `cmd`, given `input` on its standard input
/// (written from a thread, so that a large output never blocks it); the
/// command must succeed.
pub fn output_fed(mut cmd: Command, input: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An encrypted backup of the sandbox's local D1: an identity made with
/// `keygen` at `key`, local's backups sealed to its recipient, and one
/// `backup local`. The recipient and the backup's file name.
pub fn sealed_local_backup(sb: &Sandbox, key: &Path) -> (String, String) {
    let recipient = keygen_recipient(&sb.xtask(&["keygen", "--out", key.to_str().unwrap()]));
    encrypt_backups_of(sb, "local", &recipient);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = sb
        .backup_files()
        .into_iter()
        .find(|n| n.ends_with(".sql.zst.age"))
        .expect("an encrypted backup");
    (recipient, name)
}

/// A sandbox with the seed rows and one encrypted local backup: the
/// sandbox, the directory holding the identity, the identity file, the
/// recipient and the backup's file name.
pub fn sealed_backup() -> (Sandbox, tempfile::TempDir, PathBuf, String, String) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("local.agekey");
    let (recipient, name) = sealed_local_backup(&sb, &key);
    (sb, keys, key, recipient, name)
}

/// The repository's wrangler.toml, as `wrangler.jsonc` with comments and
/// trailing commas.
pub const JSONC: &str = r#"// qbtime, configured in JSONC.
{
  "name": "qbtime",
  "pages_build_output_dir": "dist",
  "compatibility_date": "2026-04-01",
  /* The top level is local development. */
  "vars": { "APP_ENV": "local" },
  "d1_databases": [
    {
      "binding": "DB",
      "database_name": "qbtime_db_local",
      "database_id": "00000000-0000-4000-8000-000000000000",
      "migrations_dir": "migrations", // trailing commas, as wrangler allows
    },
  ],
  "env": {
    "preview": {
      "vars": { "APP_ENV": "staging" },
      "d1_databases": [
        { "binding": "DB", "database_name": "qbtime_db_staging",
          "database_id": "5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c", "migrations_dir": "migrations" }
      ]
    },
    "production": {
      "vars": { "APP_ENV": "prod" },
      "d1_databases": [
        { "binding": "DB", "database_name": "qbtime_db_prod",
          "database_id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "migrations_dir": "migrations" }
      ]
    }
  }
}
"#;

/// Runs `cmd` until a line of its stdout contains `needle`, then sends it
/// SIGINT and waits: what an operator's Ctrl-C at that point does. The
/// lines read before it come first in the returned stdout. A command still
/// running a minute after that one SIGINT fails the test (and is killed).
pub fn interrupt_once_printed(cmd: Command, needle: &str) -> Run {
    signal_once_printed(cmd, needle, |pid| {
        // SAFETY: kill(2) on our own child, which has not been waited for.
        unsafe { libc::kill(pid, libc::SIGINT) };
    })
}

/// As [`interrupt_once_printed`], for a terminal that goes away once
/// `needle` is printed: the xtask runs as a shell's job (a process group
/// of its own), and SIGHUP goes to the whole group, wrangler included.
pub fn hang_up_once_printed(mut cmd: Command, needle: &str) -> Run {
    as_a_job_ignoring(&mut cmd, &[]);
    signal_once_printed(cmd, needle, |pid| {
        // SAFETY: kill(2) on the group our own child leads.
        unsafe { libc::kill(-pid, libc::SIGHUP) };
    })
}

/// As [`interrupt_once_printed`], for a terminal's Ctrl-C: the xtask runs
/// as a shell's job, and SIGINT goes to the whole group, the command a
/// `with-backup` runs included.
pub fn interrupt_job_once_printed(mut cmd: Command, needle: &str) -> Run {
    as_a_job_ignoring(&mut cmd, &[]);
    signal_once_printed(cmd, needle, |pid| {
        // SAFETY: kill(2) on the group our own child leads.
        unsafe { libc::kill(-pid, libc::SIGINT) };
    })
}

fn signal_once_printed(cmd: Command, needle: &str, send: impl FnOnce(libc::pid_t)) -> Run {
    signal_once_shown(cmd, (needle, false), send)
}

/// As [`interrupt_once_printed`], once `needle` is on stderr (an activity
/// line, which names the step running).
pub fn interrupt_once_on_stderr(cmd: Command, needle: &str) -> Run {
    signal_once_shown(cmd, (needle, true), |pid| {
        // SAFETY: kill(2) on our own child, which has not been waited for.
        unsafe { libc::kill(pid, libc::SIGINT) };
    })
}

/// Runs `cmd` and calls `send` with its pid once `needle` is on its
/// stdout, or its stderr when `on_stderr`.
fn signal_once_shown(
    mut cmd: Command,
    (needle, on_stderr): (&str, bool),
    send: impl FnOnce(libc::pid_t),
) -> Run {
    use std::io::{BufRead, Read};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (watched, mut other): (Box<dyn Read + Send>, Box<dyn Read + Send>) = match on_stderr {
        true => (Box::new(err), Box::new(out)),
        false => (Box::new(out), Box::new(err)),
    };
    let other = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = other.read_to_end(&mut text);
        text
    });
    let mut watched = std::io::BufReader::new(watched);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = watched.read_line(&mut line).unwrap();
        assert!(n > 0, "it ended before printing {needle:?}:\n{seen}");
        seen.push_str(&line);
        if line.contains(needle) {
            break;
        }
    }
    send(child.id() as libc::pid_t);
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = watched.read_to_string(&mut rest);
        rest
    });
    let Some(status) = ended_within(&mut child, std::time::Duration::from_secs(120)) else {
        panic!("still running two minutes after one signal:\n{seen}");
    };
    seen.push_str(&rest.join().unwrap());
    let (seen, other) = (seen.into_bytes(), other.join().unwrap());
    let (stdout, stderr) = match on_stderr {
        true => (other, seen),
        false => (seen, other),
    };
    Run::from_output(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

/// `with-backup local` stopped by one SIGINT while its command runs: the
/// command prints `started`, then sleeps. The `Running:` line, which shows
/// the command, comes before it starts, so the command's text says it as
/// `st''arted`: a SIGINT on that line would stop with-backup before the
/// command starts.
pub fn with_backup_interrupted_in_its_command(sb: &Sandbox) -> Run {
    let cmd = sb.xtask_command(&[
        "with-backup",
        "local",
        "--",
        "sh",
        "-c",
        "echo st''arted; sleep 30",
    ]);
    interrupt_once_printed(cmd, "started")
}

/// `child`'s exit status once it ends; None if it still runs after
/// `limit`, when it is killed.
pub fn ended_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `restore BACKUP --to local --replace --yes` in `sb`: a backup's name,
/// path or `latest:ENV`.
pub fn restore_replacing(sb: &Sandbox, backup: &str) -> Run {
    sb.xtask(&replacing_local(backup))
}

/// The arguments of a confirmed `--replace` restore of `backup` into local.
pub fn replacing_local(backup: &str) -> [&str; 6] {
    ["restore", backup, "--to", "local", "--replace", "--yes"]
}

/// A D1 bookmark of the shape Time Travel gives, ending in `last`.
pub fn bookmark(last: &str) -> String {
    format!("00000085-0000024c-00004c6d-8e61117bf38d4adb71b3342e9b8e{last}")
}

/// A Time Travel journal whose one restore of prod, from
/// `bookmark("0000")` to `bookmark("0001")`, started and never finished.
pub fn plant_started_time_travel(sb: &Sandbox) {
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(
        sb.backups().join("time-travel.jsonl"),
        format!(
            "{}\n",
            serde_json::json!({
                "environment": "prod",
                "at": "2026-11-30T10:00:00Z",
                "status": "started",
                "restore_to": bookmark("0001"),
                "bookmark_before": bookmark("0000"),
            })
        ),
    )
    .unwrap();
}

/// `status --env prod`'s `last Time Travel restore` line.
pub fn time_travel_line(sb: &Sandbox) -> String {
    let run = sb.xtask(&["status", "--env", "prod"]);
    run.stdout
        .lines()
        .find(|l| l.contains("last Time Travel restore"))
        .unwrap_or_else(|| panic!("{}", run.all()))
        .to_owned()
}

/// The plain SQL backups in the sandbox's backup directory, by name.
pub fn sql_backups(sb: &Sandbox) -> Vec<String> {
    sb.backup_files()
        .into_iter()
        .filter(|n| n.ends_with(".sql"))
        .collect()
}

/// SIGINT at its default in this test process, before any test runs, and
/// so in every child it starts (an ignored signal stays ignored across
/// fork and exec). Started from a script's `cargo test … &`, it is
/// ignored (POSIX: a non-interactive shell's background job ignores
/// SIGINT), and a test's Ctrl-C to the xtask would then be no Ctrl-C:
/// it runs on until the test gives up, or passes for another reason. A
/// test that means a job started ignoring it says so
/// ([`as_a_job_ignoring`]).
// SAFETY: a function in the initializers' array runs once, before main,
// on the one thread there is then; it calls signal(2) only.
#[used]
#[cfg_attr(
    any(target_os = "macos", target_os = "ios"),
    unsafe(link_section = "__DATA,__mod_init_func")
)]
#[cfg_attr(
    not(any(target_os = "macos", target_os = "ios")),
    unsafe(link_section = ".init_array")
)]
static SIGINT_AT_ITS_DEFAULT: extern "C" fn() = sigint_at_its_default;

extern "C" fn sigint_at_its_default() {
    // SAFETY: signal(2) on a signal no handler of this process is set for.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// `cmd` started as a shell starts a job: in a process group of its own
/// (so the test can signal the whole job, as a terminal or a shell does),
/// with `ignoring` ignored from the start, as `nohup` leaves SIGHUP and a
/// script's `&` SIGINT.
pub fn as_a_job_ignoring<'c>(cmd: &'c mut Command, ignoring: &'static [i32]) -> &'c mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for &s in ignoring {
                libc::signal(s, libc::SIG_IGN);
            }
            Ok(())
        })
    }
    .process_group(0)
}

/// A second project (its own wrangler.toml: the same environment names,
/// other database names, `other_db_local` and so on, and ids), its local
/// D1 migrated, as one whose backups land in a backup directory shared by
/// a `QBTIME_BACKUP_DIR` set in a shell profile.
pub fn another_project() -> Sandbox {
    let other = Sandbox::new();
    let config = other.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("qbtime_db_", "other_db_")
        .replace(
            "00000000-0000-4000-8000-000000000000",
            "11111111-1111-4111-8111-111111111111",
        )
        .replace(
            "5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c",
            "22222222-2222-4222-8222-222222222222",
        )
        .replace(
            "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "33333333-3333-4333-8333-333333333333",
        );
    std::fs::write(&config, text).unwrap();
    other
        .wrangler(&["d1", "migrations", "apply", "other_db_local", "--local"])
        .assert_ok();
    other
}

/// What [`xtask_with_mounted`] mounts over a directory.
#[derive(Debug, Clone, Copy)]
pub enum Mounted {
    /// The directory itself, read-only: a file system mounted `ro`.
    ReadOnly,
    /// A tmpfs of 128 KiB, filled: a full disk.
    Full,
    /// An empty tmpfs of 64 MiB, mode 700: a file system of its own (a USB
    /// disk, an NFS mount). The names in it once the run ends well follow
    /// its output on stdout, one a line, as `ls` prints them.
    Empty,
}

/// The xtask run in a mount namespace of its own, made with `unshare` in
/// an unprivileged user namespace (no root needed; the files stay this
/// user's), where `dir` is `mounted` over. The mount ends with the run;
/// the directory outside it is as it was. Give it the sandbox's arguments
/// with [`Sandbox::sandboxed`]. None, said on stderr, where user
/// namespaces are not allowed.
pub fn xtask_with_mounted(dir: &Path, mounted: Mounted) -> Option<Command> {
    let allowed = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        eprintln!("unshare cannot make a user namespace here: nothing to check");
        return None;
    }
    let script = match mounted {
        Mounted::ReadOnly => {
            r#"mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@""#
        }
        Mounted::Full => {
            r#"mount -t tmpfs -o size=128k tmpfs "$0" && { head -c 1M /dev/zero > "$0/fill" 2>/dev/null; exec "$@"; }"#
        }
        Mounted::Empty => r#"mount -t tmpfs -o size=64m,mode=700 tmpfs "$0" && "$@" && ls "$0""#,
    };
    wrangler_bin();
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_xtask"));
    Some(cmd)
}

/// The backup lock held by this test process, its record naming `command`
/// as another terminal's run writes it.
pub fn hold_backup_lock(sb: &Sandbox, command: &str) -> std::fs::File {
    std::fs::create_dir_all(sb.backups()).unwrap();
    let record = serde_json::json!({
        "pid": std::process::id(),
        "started_at": "2026-12-04T10:00:00Z",
        "command": command,
    });
    std::fs::write(sb.backups().join(".lock"), record.to_string()).unwrap();
    let lock = std::fs::File::open(sb.backups().join(".lock")).unwrap();
    lock.try_lock().unwrap();
    lock
}

/// The xtask run with a terminal (`script` gives it one), so that it asks
/// its questions: what it prints is read as it comes, and it is answered
/// on its stdin. Its stdout and stderr both go to the terminal.
pub struct InATerminal {
    child: std::process::Child,
    printed: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl InATerminal {
    pub fn start(sb: &Sandbox, args: &[&str]) -> InATerminal {
        InATerminal::of(sb.xtask_command(args))
    }

    /// `cmd` (the xtask, with its arguments and environment, as
    /// `Remote::xtask_command` gives it) run with a terminal, in its
    /// directory.
    pub fn of(cmd: Command) -> InATerminal {
        use std::io::Read as _;
        let line: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| format!("'{}'", a.to_str().unwrap()))
            .collect();
        let mut child = Command::new("script")
            .args(["-qec", &line.join(" "), "/dev/null"])
            .current_dir(cmd.get_current_dir().unwrap())
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, printed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        InATerminal {
            child,
            printed,
            seen: Vec::new(),
        }
    }

    /// Whether it prints `needle` within a minute; `false` as soon as it
    /// ends without having printed it.
    pub fn prints(&mut self, needle: &str) -> bool {
        loop {
            if self.seen().contains(needle) {
                return true;
            }
            match self
                .printed
                .recv_timeout(std::time::Duration::from_secs(60))
            {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => return false,
            }
        }
    }

    /// What it has printed so far.
    pub fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Types `line` and Enter.
    pub fn answer(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// Its exit code and all it printed, once it ends.
    pub fn end(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        while let Ok(bytes) = self.printed.recv_timeout(std::time::Duration::from_secs(5)) {
            self.seen.extend(bytes);
        }
        (status.code(), self.seen())
    }
}

/// Waits for `run` to ask for the database name, then writes
/// `migrations/0005_surprise.sql` (`CREATE TABLE surprise`) into
/// `checkout`, after the plan was shown, and types `name`.
pub fn add_a_migration_at_the_question(run: &mut InATerminal, checkout: &Path, name: &str) {
    assert!(
        run.prints("Type the database name"),
        "it did not ask:\n{}",
        run.seen()
    );
    std::fs::write(
        checkout.join("migrations/0005_surprise.sql"),
        "CREATE TABLE surprise (x);\n",
    )
    .unwrap();
    run.answer(name);
}

/// Removes from `cmd` every variable wrangler reads Cloudflare credentials
/// from (both its names and the older `CF_` ones), so that a tester's own
/// environment never reaches a test: a test that wants one sets it again.
pub fn without_credentials(cmd: &mut Command) -> &mut Command {
    for name in [
        "CLOUDFLARE_API_TOKEN",
        "CF_API_TOKEN",
        "CLOUDFLARE_API_KEY",
        "CF_API_KEY",
        "CLOUDFLARE_EMAIL",
        "CF_EMAIL",
        "CLOUDFLARE_ACCOUNT_ID",
        "CF_ACCOUNT_ID",
    ] {
        cmd.env_remove(name);
    }
    cmd
}

/// The error of a backup (or a task's) that failed (exit 1) for an object
/// whose text ends in a `--` comment, having said each of `said`, blamed
/// no truncation, download or disk, and kept nothing in `sb`'s backups/
/// (no file marked BAD, no manifest).
#[track_caller]
pub fn refused_over_a_comment<'r>(sb: &Sandbox, run: &'r Run, said: &[&str]) -> &'r str {
    assert_eq!(run.code, Some(1), "{}", run.all());
    let error = { run.stderr.lines() }
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    for wrong in ["truncated", "cut short", "full disk", "syntax error"] {
        assert!(!error.contains(wrong), "{wrong:?} said: {}", run.all());
    }
    for said in said {
        assert!(error.contains(said), "{said:?} unsaid: {}", run.all());
    }
    let kept = sb.backup_files();
    assert!(kept.iter().all(|f| f.starts_with('.')), "{kept:?}");
    error
}

/// This machine as a run's record (a rehearsal's directory, a lock)
/// says it: its host name, the
/// id the xtask derives from its machine id (HMAC-SHA256 keyed by it, of
/// the tool's own words, halved: never the machine id itself), the
/// kernel's id of this boot and this process's pid namespace, a line each
/// (`boot` given to say another).
pub fn machine_here(boot: Option<&str>) -> String {
    let read = |file: &str| std::fs::read_to_string(file).unwrap().trim().to_owned();
    let host = read("/proc/sys/kernel/hostname");
    let id = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/var/lib/dbus/machine-id"))
        .expect("this test needs a machine id");
    let id = {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(id.trim().as_bytes()).unwrap();
        mac.update(b"qbtime xtask: the machine a run ran on");
        d1_core::names::hex(&mac.finalize().into_bytes()[..16])
    };
    let boot = boot.map_or_else(|| read("/proc/sys/kernel/random/boot_id"), str::to_owned);
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ns: String = ns
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("host {host}\nmachine {id}\nboot {boot}\npid-namespace {ns}")
}

/// `cmd` with a preload in every Node it starts (`NODE_OPTIONS`) that, in
/// the real wrangler's `d1 migrations apply` alone, writes `text` to
/// `file` as wrangler starts: another process writing into migrations/
/// after the tool last read it and before wrangler reads it. The
/// directory returned holds the preload; keep it until `cmd` has run.
pub fn writing_as_migrations_apply_starts(
    cmd: &mut Command,
    file: &Path,
    text: &str,
) -> tempfile::TempDir {
    let hook = tempfile::tempdir().unwrap();
    let js = hook.path().join("hook.js");
    let preload = "const a = process.argv;\n\
        if (a.includes('migrations') && a.includes('apply')) {\n\
        \x20 require('fs').writeFileSync(process.env.JT_HOOK_FILE, process.env.JT_HOOK_TEXT);\n\
        }\n";
    std::fs::write(&js, preload).unwrap();
    cmd.env("NODE_OPTIONS", format!("--require={}", js.display()))
        .env("JT_HOOK_FILE", file)
        .env("JT_HOOK_TEXT", text);
    hook
}

/// Names the local environment of the project in `dir` `dev` (its top
/// level's `vars.APP_ENV`, and backups.toml's section with it).
pub fn local_named_dev(dir: &Path) {
    for (file, from, to) in [
        ("wrangler.toml", "APP_ENV = \"local\"", "APP_ENV = \"dev\""),
        ("backups.toml", "[local.retention]", "[dev.retention]"),
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap().replace(from, to);
        std::fs::write(&path, text).unwrap();
    }
}

/// Empties local's D1 (its SQLite files removed, every row gone) and backs
/// it up, `-q`: returns the warning that its rows fell, from `warning: `
/// to the end of stderr.
#[track_caller]
pub fn rows_fell_warning(sb: &Sandbox) -> String {
    sb.empty_local_d1();
    let run = sb.xtask(&["-q", "backup", "local"]);
    run.assert_ok();
    let warning = { run.stderr.split("warning: ") }
        .find(|w| w.contains("far fewer rows"))
        .unwrap_or_else(|| panic!("no rows-fell warning:\n{}", run.stderr));
    warning.to_owned()
}
