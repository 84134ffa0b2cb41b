//! The local D1 that `wrangler dev` uses, as a SQLite file, for the fast
//! local restore.
//!
//! `wrangler d1 execute --local --file` runs about 1,000 statements a
//! second, so a real staging dump takes minutes to hours. The fast path
//! loads the repaired dump straight into the SQLite file that wrangler's
//! local D1 (miniflare's `D1DatabaseObject`) keeps, in one transaction under
//! D1's rules, and is made safe by three things: it refuses while any other
//! process has the file open, it is all-or-nothing, and the restore counts
//! the rows in the file afterwards.
//!
//! The file's name is the Durable Object id that workerd derives from the
//! database id: the first 16 bytes are HMAC-SHA256(key, database id), the
//! last 16 are HMAC-SHA256(key, first 16), with key = SHA-256 of the
//! namespace's unique key, `miniflare-D1DatabaseObject`. A test checks this
//! against the file the pinned wrangler creates.

use crate::edge::fsutil::OnPath as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

const NAMESPACE: &str = "miniflare-D1DatabaseObject";

/// Where wrangler keeps local state, under the configuration's directory
/// (`--persist-to` names another).
pub const STATE_DIR: &str = ".wrangler/state";

/// The SQLite file of a local D1 database, given the directory that holds
/// the wrangler configuration (local state lives in `.wrangler/state` there).
pub fn database_file(config_dir: &Path, database_id: &str) -> PathBuf {
    config_dir
        .join(STATE_DIR)
        .join("v3/d1")
        .join(NAMESPACE)
        .join(format!("{}.sqlite", object_id(database_id)))
}

/// The two commands that empty a local D1 for a restore that needs a
/// database with no tables (`--clean`), in their order: a backup of what
/// it holds, then the removal of its SQLite file (`file`) and its `-wal`
/// and `-shm`, quoted for the shell. A restore's refusal of `--clean`
/// into a local D1 with tables and backup's rows-fell warning of a
/// data-only backup both print them.
pub fn emptying_commands(env_name: &str, file: &Path) -> [String; 2] {
    let file = file.display().to_string();
    let files: Vec<String> = { ["", "-wal", "-shm"].iter() }
        .map(|suffix| d1_core::wording::shell_word(&format!("{file}{suffix}")))
        .collect();
    [
        format!("cargo xtask backup {env_name}"),
        format!("rm -f -- {}", files.join(" ")),
    ]
}

/// The SQLite file of `env`'s database when `env` is a local D1 and the
/// file exists (wrangler creates it on first use): what the tool reads
/// itself instead of starting wrangler.
pub fn existing_file(
    config_dir: &Path,
    env: &crate::config::environment::Environment,
) -> Option<PathBuf> {
    (env.location == crate::config::environment::Location::Local)
        .then(|| database_file(config_dir, &env.local_id))
        .filter(|file| file.is_file())
}

/// workerd's `idFromName` for the D1 namespace, as hex.
fn object_id(name: &str) -> String {
    let key = Sha256::digest(NAMESPACE.as_bytes());
    let mac = |data: &[u8]| -> Vec<u8> {
        let mut m = hmac::Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let first = mac(name.as_bytes());
    let second = mac(&first[..16]);
    let mut id = first[..16].to_vec();
    id.extend_from_slice(&second[..16]);
    d1_core::names::hex(&id)
}

/// Processes (pid and command) that have `file` or its `-wal`/`-shm` open.
/// Linux reads `/proc`; elsewhere `lsof` is asked. `None` when neither can
/// tell, which the caller must treat as "maybe".
pub fn holders(file: &Path) -> Option<Vec<String>> {
    let targets: Vec<PathBuf> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut p = file.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        })
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    if targets.is_empty() {
        return Some(Vec::new());
    }
    let proc = Path::new("/proc");
    if proc.join("self/fd").is_dir() {
        let me = std::process::id();
        let mut found = Vec::new();
        for entry in std::fs::read_dir(proc).ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue; // gone, or not ours to read
            };
            let holds = fds
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|target| targets.contains(&target));
            if holds {
                // The program only: its arguments could hold a secret.
                let cmd = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
                let program = cmd.split('\0').next().unwrap_or_default();
                found.push(format!("pid {pid} ({program})"));
            }
        }
        return Some(found);
    }
    let out = std::process::Command::new("lsof")
        .arg("-t")
        .args(&targets)
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|pid| format!("pid {pid}"))
            .collect(),
    )
}

/// Refuses when another process has the local database open: a `wrangler
/// dev` writing while we load would be lost or would corrupt the load.
pub fn ensure_unheld(file: &Path) -> Result<()> {
    match holders(file) {
        Some(h) if h.is_empty() => Ok(()),
        // A guard's refusal (exit 3): nothing was changed.
        Some(h) => crate::stop!(
            crate::exit::Exit::Refused,
            "another process has the local D1 database open ({}); stop `wrangler dev` and any \
             other wrangler command using it, then run this again. Nothing was changed.",
            h.join("; ")
        ),
        None => bail!(
            "cannot tell whether another process has {} open (no /proc and no lsof); \
             run with --via-wrangler to load through wrangler instead",
            file.display()
        ),
    }
}

/// [`ensure_unheld`] where it can tell (on Linux, or with `lsof`): a
/// command that wrote the database through wrangler without this check
/// before (`migrate`) is not refused where it cannot.
pub fn ensure_unheld_where_told(file: &Path) -> Result<()> {
    match holders(file) {
        Some(_) => ensure_unheld(file),
        None => Ok(()),
    }
}

/// A local D1 database file, and the name of the local environment whose
/// database it is (the top level's `vars.APP_ENV`, `local` without one):
/// the name the advice for a damaged file gives.
pub type LocalFile<'a> = (&'a Path, &'a str);

/// Opens the local database file read-only, refusing a file that is not a
/// SQLite database before anything reads it.
fn open_read_only((file, env): LocalFile<'_>) -> Result<rusqlite::Connection> {
    // SQLite writes the `-shm` index even to read: never through a name
    // that is another file's too, whatever the command checked before.
    refuse_hard_linked(file)?;
    let mut header = Vec::with_capacity(16);
    crate::edge::fsutil::open_regular(file, "the local D1 database")
        .and_then(|f| {
            Ok(std::io::Read::read_to_end(
                &mut std::io::Read::take(f, 16),
                &mut header,
            )?)
        })
        .with_context(|| format!("cannot read the local D1 database {}", file.display()))?;
    // An empty file is an empty database to SQLite.
    if !header.is_empty() && header != b"SQLite format 3\0" {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the local D1 database {} is not a SQLite database: the local state is damaged. \
             Move the file aside (wrangler then starts an empty one) and restore a backup into \
             it with `cargo xtask restore latest:{env} --to {env}`. Nothing was read.",
            file.display()
        );
    }
    let db = rusqlite::Connection::open_with_flags(
        file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the local D1 database {}", file.display()))?;
    // A writer that is committing holds the file for a moment.
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    // The tool reads tables and the schema's text: a view here may be a
    // restored dump's, whose query is its own.
    d1_core::gate::only_stored(&db)?;
    Ok(db)
}

/// The values and rows of `tables` in the local database `file` that are
/// over D1's 2 MB ([`d1_core::value_limit`]), read without changing it.
/// `generated_only`: only those with a generated column (STORED, or
/// VIRTUAL, computed as it is read), whose values no pass over the dump's
/// sees (the native export's tally). A VIRTUAL generated column SQLite
/// cannot compute for some row is left unmeasured and named, not an error.
pub fn over_the_value_limit(
    (file, env): LocalFile<'_>,
    tables: &[String],
    generated_only: bool,
) -> Result<d1_core::value_limit::Found> {
    use d1_core::value_limit::{over_the_limit, with_generated};
    let read = open_read_only((file, env)).and_then(|db| {
        let tables = match generated_only {
            true => with_generated(&db, tables)?,
            false => tables.to_vec(),
        };
        over_the_limit(&db, &tables).map_err(anyhow::Error::from)
    });
    read.map_err(|e| said_of_the_machine(file, e))
}

/// Runs read-only statements against the local database file and answers
/// in the shape `wrangler d1 execute --json` does: one `{"results": [...]}`
/// per statement.
pub fn query_json((file, env): LocalFile<'_>, sql: &str) -> Result<serde_json::Value> {
    answer_json((file, env), sql).map_err(|e| said_of_the_machine(file, e))
}

/// A read of the local D1 file that failed because of the machine rather
/// than the database, said so with its fix: SQLite grows the file's `-shm`
/// index even to read it, and a full disk or a `ulimit -f` stops that
/// with a bare "disk I/O error". Any other error is returned as it is.
fn said_of_the_machine(file: &Path, e: anyhow::Error) -> anyhow::Error {
    use rusqlite::ErrorCode;
    match crate::exit::find::<rusqlite::Error>(&e) {
        // Locked, past the busy timeout: no disk nor limit of the machine's.
        Some(sqlite)
            if matches!(
                sqlite.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) =>
        {
            anyhow::anyhow!(
                "cannot read the local D1 database {}: {sqlite}: another process holds it \
                 locked (a `sqlite3` shell in a transaction or exclusive mode, a stuck \
                 `wrangler dev`); nothing was written. End that process's transaction or stop \
                 it, then run again",
                file.display()
            )
        }
        Some(sqlite) if d1_core::checks::environmental(sqlite) => anyhow::anyhow!(
            "cannot read the local D1 database {}: {sqlite} (a full disk, a file-size limit \
             such as `ulimit -f`, permissions or memory; nothing was written). Free space or fix \
             the cause, then run again",
            file.display()
        ),
        _ => e,
    }
}

fn answer_json(file: LocalFile<'_>, sql: &str) -> Result<serde_json::Value> {
    use rusqlite::fallible_iterator::FallibleIterator;
    use rusqlite::types::ValueRef;
    let db = open_read_only(file)?;
    let mut sets = Vec::new();
    let mut batch = rusqlite::Batch::new(&db, sql);
    while let Some(mut stmt) = batch.next()? {
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.query([])?;
        let mut results = Vec::new();
        while let Some(row) = rows.next()? {
            let mut object = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let value = match row.get_ref(i)? {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(n) => n.into(),
                    ValueRef::Real(r) => r.into(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(b) => b.iter().map(|&x| serde_json::Value::from(x)).collect(),
                };
                object.insert(name.clone(), value);
            }
            results.push(serde_json::Value::Object(object));
        }
        sets.push(serde_json::json!({ "results": results }));
    }
    Ok(serde_json::Value::Array(sets))
}

/// Writes the dump `wrangler d1 export --local` would write for the local
/// database `file`, without starting wrangler or workerd: the same dumper
/// (`d1-dump`, a port of miniflare's `dumpSql`) over the same SQLite file,
/// byte for byte, except for the values wrangler's export would change
/// (`d1_dump::Lossless`), which are written to read back exactly.
///
/// The file is opened read-only and read inside one transaction, so the
/// dump is one consistent state of the database. miniflare keeps the file
/// in WAL mode: what a running `wrangler dev` committed before the first
/// read (in the file or still in its `-wal`) is in the dump, what it
/// commits afterwards is not, and neither side waits for the other. A file
/// in rollback-journal mode would instead make a writer wait until the
/// dump ends (our busy timeout covers the other direction).
/// A native export, and with a full one that asked for them the row sets
/// ([`d1_core::digest::row_sets`]) of the tables it wrote, read from the
/// database in the export's own transaction: what the backup's verification
/// must find its load holds.
pub struct Exported {
    pub counts: d1_dump::DumpCounts,
    pub row_sets: Option<std::collections::BTreeMap<String, String>>,
    /// The values and rows it wrote over D1's 2 MB, found as it wrote
    /// them ([`d1_core::value_limit::Tally`]): what
    /// [`over_the_value_limit`] would find, without reading the database
    /// again. With any, the row sets are not read: the backup is refused.
    pub oversized: Vec<d1_core::value_limit::Oversized>,
}

/// Tallies, table by table, the values a dump writes against D1's 2 MB.
#[derive(Default)]
struct Tallies(Vec<d1_core::value_limit::Tally>);

impl d1_dump::Watch for Tallies {
    fn table(&mut self, table: &str, columns: &[String]) {
        self.0
            .push(d1_core::value_limit::Tally::new(table, columns));
    }

    fn row(&mut self, values: &[rusqlite::types::ValueRef<'_>]) {
        if let Some(tally) = self.0.last_mut() {
            tally.row(values);
        }
    }
}

/// `row_sets`: whether a full export reads its row sets too (a backup's
/// verification needs them; `diff`'s live side does not, and they are a
/// second read of every row).
pub fn export(
    (file, env): LocalFile<'_>,
    (mode, row_sets): (crate::edge::wrangler::ExportMode, bool),
    tables: &[String],
    out: impl std::io::Write,
) -> Result<Exported> {
    export_within((file, env), (mode, row_sets), tables, out)
        .map_err(|e| said_of_the_machine(file, e))
}

fn export_within(
    (file, env): LocalFile<'_>,
    (mode, row_sets): (crate::edge::wrangler::ExportMode, bool),
    tables: &[String],
    out: impl std::io::Write,
) -> Result<Exported> {
    use crate::edge::wrangler::ExportMode;
    let db = open_read_only((file, env))?;
    // One read transaction for the dump and the digests: both see the
    // same state of a database another process may be writing to.
    let txn = db.unchecked_transaction()?;
    let options = d1_dump::DumpOptions {
        no_schema: mode == ExportMode::DataOnly,
        no_data: mode == ExportMode::SchemaOnly,
        tables: tables.to_vec(),
        lossless: true,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, StopOnSignal(out));
    let mut tallies = Tallies::default();
    let counts = d1_dump::write_dump_watched(&txn, &options, &mut out, &mut tallies)
        .map_err(anyhow::Error::from)
        .and_then(|counts| Ok(out.flush().map(|()| counts)?))
        .map_err(|e| match crate::edge::fsutil::disk_full(&e) {
            // The dump's write failed, not the database: the caller names
            // where it was writing.
            true => e,
            false => e.context(format!(
                "cannot export the local D1 database {}",
                file.display()
            )),
        })?;
    let oversized: Vec<_> = tallies.0.iter().flat_map(|t| t.found()).collect();
    // A data-only backup is loaded into the migrations' schema, whose
    // columns may stand otherwise than the database's: its digests would
    // differ, values and all equal.
    let row_sets = match mode {
        ExportMode::Full if row_sets && oversized.is_empty() => Some(
            d1_core::digest::row_sets(
                &txn,
                { counts.rows.iter() }
                    .map(|(t, _)| t.as_str())
                    .filter(|t| d1_core::statement::rows_are_checked(t)),
            )
            .with_context(|| format!("reading the local D1 database {}", file.display()))?,
        ),
        _ => None,
    };
    drop(txn);
    Ok(Exported {
        counts,
        row_sets,
        oversized,
    })
}

/// The row sets ([`d1_core::digest::row_sets`]) of `tables` in the local
/// D1 database `file`, read in one transaction.
pub fn row_sets<'a>(
    (file, env): LocalFile<'_>,
    tables: impl IntoIterator<Item = &'a str>,
) -> Result<std::collections::BTreeMap<String, String>> {
    let db = open_read_only((file, env))?;
    let txn = db.unchecked_transaction()?;
    d1_core::digest::row_sets(&txn, tables)
        .with_context(|| format!("reading the local D1 database {}", file.display()))
}

/// A writer that fails once SIGINT or SIGTERM has come, so that a long
/// export stops within a buffer's worth of output.
struct StopOnSignal<W>(W);

impl<W: std::io::Write> std::io::Write for StopOnSignal<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if crate::edge::signals::received().is_some() {
            return Err(std::io::Error::other("interrupted"));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Commits to a local D1 file by any other connection from the moment the
/// watch starts: SQLite's `PRAGMA data_version`, read on a connection of
/// the watch's own, changes when another connection commits. A restore
/// starts one before its safety backup and asks once its own load holds
/// the write lock (`BEGIN IMMEDIATE`, after which no other writer can
/// commit): a row written between the two (a `wrangler d1 execute` in
/// another terminal) is in neither the safety backup nor the restore, and
/// the load would replace it without a word. The process check
/// ([`ensure_unheld`]) cannot see a writer that came and went.
pub struct Watch {
    db: rusqlite::Connection,
    file: PathBuf,
    seen: std::cell::Cell<i64>,
}

impl Watch {
    pub fn start((file, env): LocalFile<'_>) -> Result<Watch> {
        let db = open_read_only((file, env))?;
        let watch = Watch {
            db,
            file: file.to_path_buf(),
            seen: std::cell::Cell::new(0),
        };
        watch.seen.set(watch.version()?);
        Ok(watch)
    }

    fn version(&self) -> Result<i64> {
        self.db
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .with_context(|| format!("cannot read the local D1 database {}", self.file.display()))
    }

    /// Refuses (exit 3) when another connection has committed since the
    /// watch started, or since [`Watch::rebase`]; `during`: what this run
    /// was doing meanwhile.
    pub fn unwritten(&self, during: &str) -> Result<()> {
        if self.version()? != self.seen.get() {
            crate::stop!(
                crate::exit::Exit::Refused,
                "another process wrote to the local D1 database {} {during} (a `wrangler d1 \
                 execute`, `wrangler dev`, or another tool): the restore would replace that \
                 write with no backup holding it, so it loaded nothing. Nothing was changed. \
                 Stop what writes to it and run the restore again.",
                self.file.display()
            );
        }
        Ok(())
    }

    /// Takes this run's own commits (`--clean`'s migrations, applied by
    /// wrangler) as seen.
    pub fn rebase(&self) -> Result<()> {
        self.seen.set(self.version()?);
        Ok(())
    }
}

/// Loads statements into the local database file in one transaction under
/// D1's rules (foreign keys enforced, deferred to commit). Nothing changes
/// unless every statement succeeds and the commit's foreign-key check passes.
pub struct Loader {
    db: d1_core::gate::Gate,
    file: PathBuf,
    pub statements: u64,
    /// The repaired dump's statements run, without this tool's own (the
    /// drops of `--replace`): a failing one is named by this number, as
    /// verify names it.
    repaired: u64,
    /// A scratch database (restore's trial load): its failures say nothing
    /// of the operator's local database, which it is not.
    scratch: bool,
}

/// Refuses a symbolic link on the way from the configuration's directory
/// to a local D1 file (`.wrangler`, `.wrangler/state`, … down to the file
/// itself): the rows of a restore, or the migrations wrangler
/// applies, would land in the local D1 wherever it points (another
/// checkout's). `.wrangler/` in .gitignore matches a directory, not a link,
/// so a pull request can commit `.wrangler` as one. Then a hard link at
/// the file or beside it ([`refuse_hard_linked`]).
pub fn refuse_linked_state(file: &Path) -> Result<()> {
    for dir in file.ancestors() {
        refuse_link(dir)?;
        if dir.file_name() == Some(std::ffi::OsStr::new(".wrangler")) {
            break;
        }
    }
    // SQLite reads and rewrites these beside the file, by its name.
    for end in ["-wal", "-shm", "-journal"] {
        refuse_link(&beside(file, end))?;
    }
    refuse_hard_linked(file)
}

/// `file`'s name with `end` added: its `-wal`, `-shm` or `-journal`.
fn beside(file: &Path, end: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(end);
    PathBuf::from(name)
}

/// Refuses (exit 3) a local D1 file, or its `-wal`, `-shm` or `-journal`,
/// that has another name too, a hard link ([`fsutil::refuse_other_names`],
/// the check the backup directory's files get): SQLite writes the
/// database, its log and its index through the name, even to read it (the
/// `-shm` index), and a restore's chmod reaches the file wherever its
/// other name is. A checkout copied with `cp -al` shares every file of its
/// `.wrangler/state` with the original's so.
///
/// [`fsutil::refuse_other_names`]: crate::edge::fsutil::refuse_other_names
fn refuse_hard_linked(file: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    for end in ["", "-wal", "-shm", "-journal"] {
        let path = beside(file, end);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_file() {
            crate::edge::fsutil::refuse_other_names(
                &path,
                meta.nlink(),
                "the local D1 state ",
                || own_file_fix(file, &path),
            )
            .map_err(|e| crate::exit::Exit::Refused.error(e))?;
        }
    }
    Ok(())
}

/// The way out of [`refuse_hard_linked`] for `path`, of the local D1
/// `file`: a copy that gives the name a file of its own, the other name
/// keeping what it holds; for a checkout copied with `cp -al`, the same
/// for the whole of `.wrangler/state`. Each word quoted for the shell.
fn own_file_fix(file: &Path, path: &Path) -> String {
    let word = |p: &Path| d1_core::wording::shell_word(&p.display().to_string());
    let copied = |p: &Path| (word(p), word(&beside(p, ".own")));
    let (name, own) = copied(path);
    let mut fix = format!(
        "Nothing was done. With `wrangler dev` stopped, give it a file of its own: `cp {name} \
         {own} && mv {own} {name}` (the other name keeps what it holds)"
    );
    let state = file.ancestors().find(|dir| {
        dir.file_name() == Some(std::ffi::OsStr::new("state"))
            && dir.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new(".wrangler"))
    });
    if let Some(state) = state {
        let (state, own) = copied(state);
        fix.push_str(&format!(
            "; in a checkout copied with `cp -al`, whose every file under .wrangler/state is \
             the original's too, `cp -a {state} {own} && rm -r {state} && mv {own} {state}` \
             gives each its own"
        ));
    }
    fix + ". Then run this again."
}

/// [`refuse_linked_state`] for `env`'s local D1, whether the tool reads its
/// file or wrangler does; nothing for a remote database. Every command that
/// reads or writes a local D1 checks here first: a backup or a diff read
/// through such a link would label another checkout's rows as this one's.
pub fn refuse_linked_env(
    config_dir: &Path,
    env: &crate::config::environment::Environment,
) -> Result<()> {
    match env.location {
        crate::config::environment::Location::Local => {
            refuse_linked_state(&database_file(config_dir, &env.local_id))
        }
        crate::config::environment::Location::Remote => Ok(()),
    }
}

/// Refuses `path` when it is a symbolic link (of the local D1 state).
fn refuse_link(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "the local D1 state {} is a symbolic link: this command would read or write \
             the local D1 wherever it points (another checkout's). Nothing was done. Remove \
             the link alone, `rm {}` (never `rm -r` through it, nor a directory under it: \
             that deletes what it leads to), and run again; wrangler makes a new local D1 \
             here.",
            path.display(),
            d1_core::wording::shell_word(&path.display().to_string())
        );
    }
    Ok(())
}

/// Makes a local D1's database file (with its `-wal` and `-shm`) and the
/// directory holding it this user's alone, as a backup is: wrangler and
/// workerd create them under the umask, readable by every local user, and
/// a restore puts staging's or production's rows there. A link in their
/// place, symbolic or hard, or on the way to them
/// ([`refuse_linked_state`]), is refused, never followed: the rows would
/// land wherever it points, and the chmod with them.
pub fn make_private(file: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    refuse_linked_state(file)?;
    let tighten = |path: &Path, dir: bool, mode: u32| -> Result<()> {
        refuse_link(path)?;
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(());
        };
        let kind_ok = if dir { meta.is_dir() } else { meta.is_file() };
        if kind_ok && meta.permissions().mode() & 0o7777 != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(
                || format!("cannot make {} private (mode {mode:o})", path.display()),
            )?;
        }
        Ok(())
    };
    if let Some(dir) = file.parent() {
        // Made here, 0700, when wrangler has not made it yet (a first
        // `--via-wrangler` restore): the file it then creates is private
        // from the start.
        if std::fs::symlink_metadata(dir).is_err() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .on_path(dir, || format!("cannot create {}", dir.display()))?;
        }
        tighten(dir, true, 0o700)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        tighten(Path::new(&name), false, 0o600)?;
    }
    Ok(())
}

impl Loader {
    pub fn open(file: &Path) -> Result<Loader> {
        // Before a row goes in.
        make_private(file)?;
        Loader::open_made_private(file, false)
    }

    /// [`Loader::open`] for a scratch database of this tool's own, whose
    /// failures are worded as the scratch's, not the local database's. It
    /// lives in a 0700 directory the tool made ([`PrivateDir`]), so it is
    /// private already; the way to it goes through TMPDIR, which may be a
    /// symbolic link of the operator's choosing (macOS's `/tmp`, a bigger
    /// disk) and is not the local D1 state that [`make_private`] refuses
    /// links in (rvBI 5: the trial load blamed "the local D1 state" and
    /// advised removing the operator's TMPDIR link).
    ///
    /// [`PrivateDir`]: crate::edge::wrangler::PrivateDir
    pub fn open_scratch(file: &Path) -> Result<Loader> {
        Loader::open_made_private(file, true)
    }

    fn open_made_private(file: &Path, scratch: bool) -> Result<Loader> {
        let db = rusqlite::Connection::open_with_flags(
            file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open the local D1 database {}", file.display()))?;
        // The dump's statements run under the SQL gate, D1's limits included.
        let db = d1_core::gate::Gate::new(db)
            .with_context(|| format!("cannot open the local D1 database {}", file.display()))?;
        db.db()
            .execute_batch("PRAGMA foreign_keys=ON; BEGIN IMMEDIATE; PRAGMA defer_foreign_keys=ON;")
            .context("cannot lock the local D1 database for the restore")?;
        Ok(Loader {
            db,
            file: file.to_path_buf(),
            statements: 0,
            repaired: 0,
            scratch,
        })
    }

    /// Runs a statement this tool built (a `--replace` drop), outside the
    /// gate's rules for dumps; the transaction still holds it.
    pub fn tool_statement(&mut self, sql: &str) -> Result<()> {
        self.statements += 1;
        self.db
            .db()
            .execute_batch(sql)
            .map_err(|e| anyhow::anyhow!("{}", d1_core::gate::without_values(&e)))
            .with_context(|| {
                format!(
                    "statement {} ({}) failed; the local database was left unchanged",
                    self.statements,
                    d1_core::statement::describe(sql)
                )
            })
    }

    /// Commits, or rolls everything back if the deferred foreign-key check fails.
    pub fn commit(self) -> Result<u64> {
        // Anything that opened the database while we loaded would not see,
        // or would fight, this transaction: check again before it lands.
        ensure_unheld(&self.file)?;
        self.db
            .db()
            .execute_batch("COMMIT")
            .map_err(|e| commit_failed(e, self.scratch))?;
        Ok(self.statements)
    }
}

/// Why a load's `COMMIT` failed, from SQLite's code: the deferred
/// foreign-key check, or a write the disk had no room for (a full disk, a
/// file-size limit: SQLite says "disk I/O error").
fn commit_failed(e: rusqlite::Error, scratch: bool) -> anyhow::Error {
    let why = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) if scratch => {
            "the dump breaks a foreign key"
        }
        Some(rusqlite::ErrorCode::ConstraintViolation) => "the restore broke a foreign key",
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) if scratch => {
            "the scratch database could not be written: the temporary directory's disk is full, \
             or a file-size limit (`ulimit -f`) stopped the write; free space there, or set \
             TMPDIR to a directory with room, and run this again"
        }
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
            "the local database could not be written: its disk is full, or a file-size limit \
             (`ulimit -f`) stopped the write; free space where it lives (`.wrangler/state`) and \
             run this again"
        }
        _ => "the restore could not be committed",
    };
    match scratch {
        true => anyhow::Error::new(e).context(why),
        false => {
            anyhow::Error::new(e).context(format!("{why}; the local database was left unchanged"))
        }
    }
}

impl Loader {
    /// Loads the repaired dump; its statements run on this thread while the
    /// repair reads ahead on another ([`d1_core::repair::write_piped`]).
    pub fn load(
        &mut self,
        reader: impl std::io::BufRead + Send,
        survey: &d1_core::repair::Survey,
        options: &d1_core::repair::Options,
    ) -> Result<Vec<d1_core::repair::Repair>> {
        // A clean restore loads into a schema whose triggers the repair
        // holds off while the rows load.
        self.db
            .allow_dropping_triggers(options.known_triggers.keys());
        self.db.allow_emptying(options.emptied_tables());
        let mut loading = Loading {
            runner: d1_core::gate::Runner::new(&self.db),
            statements: &mut self.statements,
            repaired: &mut self.repaired,
            scratch: self.scratch,
            line: None,
        };
        d1_core::repair::write_piped(reader, survey, options, &mut loading)
    }
}

/// A [`Loader`] while the dump loads.
struct Loading<'l> {
    runner: d1_core::gate::Runner<'l>,
    statements: &'l mut u64,
    repaired: &'l mut u64,
    scratch: bool,
    /// [`d1_core::repair::Sink::at_line`]'s last: where a failure is named.
    line: Option<usize>,
}

impl d1_core::repair::Sink for Loading<'_> {
    fn at_line(&mut self, line: Option<usize>) {
        self.line = line;
    }

    fn statement(&mut self, sql: &str) -> Result<()> {
        // An interrupt rolls the whole load back.
        crate::edge::signals::check()?;
        // The repair writes our own defer pragma first; the transaction
        // already defers, and this pragma must not reset it.
        if sql.starts_with("PRAGMA defer_foreign_keys") {
            return Ok(());
        }
        *self.statements += 1;
        *self.repaired += 1;
        crate::out::count_one();
        // Name the statement, never its values: they are customer data.
        self.runner.run_checked(sql).with_context(|| {
            let left = match self.scratch {
                true => "",
                false => "; the local database was left unchanged",
            };
            // A table, index or view the next statement ran into: say why.
            let cause = d1_core::statement::ran_into_a_commented_object(sql)
                .map(|told| format!(": {told}"))
                .unwrap_or_default();
            format!(
                "{} failed{left}{cause}",
                d1_core::repair::named_statement(self.line, sql)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_is_workerds_durable_object_id_for_the_database() {
        // Checked against the file wrangler 4.86.0 created for this id.
        assert_eq!(
            object_id("00000000-0000-4000-8000-000000000000"),
            "faaf2b0445ab934c3aac48ddf0cdfade8f9bac050be98993748742cdd2cb05fb"
        );
        assert!(
            database_file(Path::new("/p"), "x")
                .starts_with("/p/.wrangler/state/v3/d1/miniflare-D1DatabaseObject")
        );
    }

    #[test]
    fn a_watch_sees_another_connections_commit_and_not_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.sqlite");
        let other = rusqlite::Connection::open(&file).unwrap();
        other
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
            .unwrap();
        let watch = Watch::start((&file, "local")).unwrap();
        other
            .query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .unwrap();
        watch.unwritten("meanwhile").unwrap();
        other.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let refused = watch.unwritten("while it was watched").unwrap_err();
        assert_eq!(
            crate::exit::Exit::of(&refused),
            Some(crate::exit::Exit::Refused)
        );
        assert!(
            format!("{refused}").contains("wrote to the local D1 database"),
            "{refused}"
        );
        // This run's own writes are taken as seen.
        watch.rebase().unwrap();
        watch.unwritten("after").unwrap();
    }

    #[test]
    fn a_file_this_process_holds_is_not_reported_and_another_holder_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.sqlite");
        std::fs::write(&file, "").unwrap();
        let _ours = std::fs::File::open(&file).unwrap();
        assert_eq!(holders(&file), Some(Vec::new()));
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3<\"$0\"; sleep 5")
            .arg(&file)
            .spawn()
            .unwrap();
        let mut held = Vec::new();
        for _ in 0..50 {
            held = holders(&file).unwrap();
            if !held.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let pid = format!("pid {} ", child.id());
        assert!(held.iter().any(|h| h.starts_with(&pid)), "{held:?}");
        assert!(ensure_unheld(dir.path().join("absent.sqlite").as_path()).is_ok());
    }

    /// A read of a local D1 whose `-shm` is another file's second name is
    /// refused (exit 3) before SQLite opens anything, and the copies the
    /// refusal gives are quoted for the shell: a checkout's path may hold
    /// a space.
    #[test]
    fn a_hard_linked_shm_is_refused_before_a_read_with_its_fix_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = database_file(&dir.path().join("my app"), "x");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        rusqlite::Connection::open(&file)
            .unwrap()
            .execute_batch("CREATE TABLE t(x);")
            .unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "mine\n").unwrap();
        let shm = beside(&file, "-shm");
        std::fs::hard_link(&outside, &shm).unwrap();
        let refused = query_json((&file, "local"), "SELECT 1").unwrap_err();
        assert_eq!(
            crate::exit::Exit::of(&refused),
            Some(crate::exit::Exit::Refused)
        );
        let said = format!("{refused:#}");
        let quoted = |p: &Path| format!("'{}'", p.display());
        let state = dir.path().join("my app/.wrangler/state");
        for fix in [
            format!(
                "`cp {0} {1} && mv {1} {0}`",
                quoted(&shm),
                quoted(&beside(&shm, ".own"))
            ),
            format!(
                "`cp -a {0} {1} && rm -r {0} && mv {1} {0}`",
                quoted(&state),
                quoted(&beside(&state, ".own"))
            ),
        ] {
            assert!(said.contains(&fix), "{fix} in {said}");
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "mine\n");
        std::fs::remove_file(&shm).unwrap();
        assert!(query_json((&file, "local"), "SELECT 1").is_ok());
    }
}
