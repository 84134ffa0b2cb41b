//! One backup at a time per backup directory.
//!
//! The lock is an OS file lock (`flock`) on `<backup dir>/.lock`, so it is
//! released by the kernel when its holder dies, however it dies. The file
//! also says who holds it; it is emptied on a clean release. Finding the file
//! unlocked but not empty therefore means its last holder died mid-run: that
//! stale lock is reported, with the temporary files it left behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const LOCK_FILE: &str = ".lock";

/// Who holds (or held) the lock. The lock is a file in the backup
/// directory, which anyone able to write there may have written: what it
/// records is data, checked before it is printed or acted on, never text
/// that the next run repeats as its own word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub started_at: String,
    pub command: String,
    /// What the holder was doing that outlives it, if it dies in the middle
    /// (a load D1 finishes on its own): the next run says it, and the way
    /// back, in its own words.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "read_or_unread"
    )]
    pub doing: Option<Doing>,
    /// The backup file the holder is about to give its final name, before
    /// its manifest is written: a run killed between the two leaves that
    /// file unrecorded, and the next run removes that file, and only it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "read_or_none"
    )]
    pub placing: Option<Placing>,
    /// The backup a `prune` is deleting, its file then its manifest: a
    /// prune killed between the two leaves one without the other, and the
    /// next run removes that one, and only it (the very file recorded).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "read_or_none"
    )]
    pub pruning: Option<Pruning>,
    /// The host, boot and pid namespace the holder ran in, as
    /// [`crate::edge::machine::Machine::record`] writes them: its pid says
    /// nothing of a process on another machine (a CI container's backup
    /// directory copied to a laptop), in a container on this boot, nor
    /// after a reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The repository the holder ran from: a backup directory shared by
    /// several (`--backup-dir`, `QBTIME_BACKUP_DIR`) is locked by a run of
    /// any of them, and the one refused is told which. Absent in records
    /// written before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Records of runs gone that a run found in a stale lock and did not
    /// tell whole, their way back being for another environment than its
    /// own ([`BackupLock::keep`]): kept, their `placing` dealt with, for a
    /// later run, the first one for that environment. At most
    /// [`MOST_KEPT`]; absent in records written before it was (a version
    /// that does not read it passes over it, and tells none of them).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "read_kept"
    )]
    pub kept: Vec<Holder>,
    /// Whether this is a record a run kept ([`Holder::kept_as`]), not the
    /// lock of the run it names: the lock it is read from was released
    /// clean, or left by the run that kept it, and the record is told as
    /// kept from a killed run, not as a lock just left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub was_kept: bool,
    /// The signal that stopped the run that left this record
    /// ([`BackupLock::leave_unsettled`]), by name (`SIGINT`): it was
    /// interrupted, as the restore journal says, not killed. Absent for a
    /// run killed, and in records written before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// The command a `with-backup` holder started, while it runs
    /// ([`BackupLock::running`]), or the wrangler another holder started
    /// for the step it recorded ([`wrangler_started`]): a holder killed
    /// (SIGKILL, the OOM killer) leaves it running, and the lock counts as
    /// held while it does, on this machine
    /// ([`crate::edge::machine::Machine::process`]). Absent in records
    /// written before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Running>,
}

/// A process a holder started ([`Holder::running`]): its pid, and when it
/// started ([`crate::edge::machine::start_of`]), which tells it from
/// another process given its pid since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
}

/// The variable a `with-backup` sets for the command it runs, saying its
/// lock ([`Holder::nesting`]): a locking run that finds the lock held by
/// that with-backup and this variable saying it was started by its
/// command, where no walk of `/proc` can tell (in another pid namespace: a
/// container, `unshare`), is told to run before or after with-backup, not
/// to wait for it.
pub const NESTED_ENV: &str = "QBTIME_WITH_BACKUP_LOCK";

/// How many records of runs gone a lock keeps ([`Holder::kept`]).
pub const MOST_KEPT: usize = 4;

/// How long a lock keeping records may be when it keeps them, this run's
/// own record with them: an older version reads 4 KiB of it, and this run
/// may still add what it is doing and the file it is placing (its own
/// names, a few hundred bytes), so the lock stays under about 3.5 KiB.
const MOST_KEPT_BYTES: usize = 3 * 1024;

/// The longest name (an environment, a file, a sha256, a bookmark, a
/// time) a record kept may hold: this tool's are far shorter.
const LONGEST_KEPT_NAME: usize = 128;

/// What a lock's holder was doing that a kill would leave half-told.
/// Names are of environments and of files in the backup directory, and
/// bookmarks; the next run checks each before it says anything of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Doing {
    /// Loading the file named `backup` into environment `env`'s database,
    /// after taking the safety backup `safety` (a file in the backup
    /// directory) of it. Each file is also recorded by the sha256 its
    /// manifest gives it (`file.sha256`, as a manifest's `taken_after`
    /// names a backup), where it has one: a file given its name since (the
    /// one recorded pruned, a new backup of the same minute) is another.
    /// Absent in records written before they were, which name by name only.
    Loading {
        env: String,
        backup: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup_sha256: Option<String>,
        #[serde(default)]
        safety: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        safety_sha256: Option<String>,
        /// `--clean`'s `migrations apply` first: no row is loaded yet, and
        /// some migrations may be applied.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        migrations_first: bool,
        /// The load is in (committed, or D1's import done), and its check
        /// (rows and content against the backup's) runs: the database holds
        /// the backup, unchecked. Absent in a record of a load still under
        /// way, so that an older version reads that one as it always did (and
        /// this one, a field it does not know, as a record it does not read).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        checking: bool,
    },
    /// Applying migrations to environment `env`'s database, after taking
    /// the pre-migration backup `backup` (a file in the backup directory,
    /// and the sha256 its manifest gives it, as for [`Doing::Loading`]),
    /// unless `--no-backup`.
    Migrating {
        env: String,
        #[serde(default)]
        backup: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup_sha256: Option<String>,
    },
    /// Restoring environment `env`'s database by Time Travel to bookmark
    /// `to`; bookmark `undo` was its state before.
    TimeTravel {
        env: String,
        to: String,
        undo: String,
    },
    /// A record this version does not read (written by another version,
    /// or by hand).
    #[serde(skip)]
    Unread,
}

impl Doing {
    /// The environment the record names; `None` for one unread.
    pub fn env(&self) -> Option<&str> {
        match self {
            Doing::Loading { env, .. }
            | Doing::Migrating { env, .. }
            | Doing::TimeTravel { env, .. } => Some(env),
            Doing::Unread => None,
        }
    }

    /// Whether every name the record holds is at most
    /// [`LONGEST_KEPT_NAME`] long, as this tool's are.
    fn is_short(&self) -> bool {
        let names = match self {
            Doing::Loading {
                env,
                backup,
                backup_sha256,
                safety,
                safety_sha256,
                ..
            } => vec![Some(env), Some(backup), backup_sha256.as_ref()]
                .into_iter()
                .chain([safety.as_ref(), safety_sha256.as_ref()])
                .collect(),
            Doing::Migrating {
                env,
                backup,
                backup_sha256,
            } => vec![Some(env), backup.as_ref(), backup_sha256.as_ref()],
            Doing::TimeTravel { env, to, undo } => vec![Some(env), Some(to), Some(undo)],
            Doing::Unread => Vec::new(),
        };
        { names.into_iter().flatten() }.all(|name| name.len() <= LONGEST_KEPT_NAME)
    }

    /// Whether `command`, as a lock records its run's, is the one that
    /// writes this record, for the environment it names: `restore into
    /// ENV` a load, `migrate ENV` or `deploy ENV` migrations, `time-travel
    /// restore ENV` a Time Travel restore.
    pub fn is_written_by(&self, command: &str) -> bool {
        let by: &[&str] = match self {
            Doing::Loading { .. } => &["restore into"],
            Doing::Migrating { .. } => &["migrate", "deploy"],
            Doing::TimeTravel { .. } => &["time-travel restore"],
            Doing::Unread => &[],
        };
        let env = self.env().unwrap_or_default();
        by.iter().any(|run| command == format!("{run} {env}"))
    }
}

/// The environment a run is for, by the command a lock records of it
/// (`backup staging`, `restore into new:qbtime-copy`); `None` for
/// `prune`, which is for none, and for a command of another shape.
pub fn command_environment(command: &str) -> Option<&str> {
    let (_, env) = command.rsplit_once(' ')?;
    is_our_command(command).then_some(env)
}

/// The environment a with-backup's record `command` is for: its word
/// after `with-backup`, when it is one a lock record may name, whatever
/// follows it (`with-backup local -- sh` is for `local`, not `sh`).
/// Whether `h` is a `with-backup`'s lock, whose [`Holder::running`] is
/// the operator's command, not a wrangler.
fn is_with_backup(h: &Holder) -> bool {
    with_backup_environment(&h.command).is_some()
}

fn with_backup_environment(command: &str) -> Option<&str> {
    let env = command.strip_prefix("with-backup ")?.split(' ').next()?;
    is_our_command(&format!("with-backup {env}")).then_some(env)
}

/// The sha256 the manifest beside the backup `file` gives it, as a lock
/// records the file ([`Doing::Loading`]); `None` without a valid one.
pub fn sha256_of(file: &Path) -> Option<String> {
    use crate::edge::manifest_file::ManifestFile as _;
    let manifest = d1_core::manifest::Manifest::for_backup(file).ok()?;
    Some(manifest.file.sha256)
}

/// The backup file a run is about to give its final name: the name, and
/// the file itself (its device, inode and size, read before the rename,
/// which keeps them), so that the file removed after a crash is that very
/// file, never another given the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placing {
    pub name: String,
    pub device: u64,
    pub inode: u64,
    pub size: u64,
}

impl Placing {
    /// `file`, about to be named `name`.
    pub fn of(name: &str, file: &Path) -> Result<Placing> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::symlink_metadata(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        Ok(Placing {
            name: name.to_owned(),
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.len(),
        })
    }

    /// Whether `meta` is the file this names: a regular file, the same one.
    pub fn is(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        meta.file_type().is_file()
            && meta.dev() == self.device
            && meta.ino() == self.inode
            && meta.len() == self.size
    }
}

/// A backup a prune is deleting ([`Holder::pruning`]): its file and its
/// manifest, each by its name and the file itself, read before either is
/// deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pruning {
    pub backup: Placing,
    pub manifest: Placing,
}

/// A `doing` that does not read as a [`Doing`] is kept as
/// [`Doing::Unread`]: the next run says a record was left, not what.
fn read_or_unread<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Doing>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.map(|v| serde_json::from_value(v).unwrap_or(Doing::Unread)))
}

/// A `placing` that does not read as a [`Placing`] (a `pruning` as a
/// [`Pruning`]) names nothing.
fn read_or_none<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// The records kept ([`Holder::kept`]) that read as records, at most
/// [`MOST_KEPT`], as [`Holder::kept_as`] keeps them; anything else is none.
fn read_kept<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Holder>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let records = match value {
        Some(serde_json::Value::Array(records)) => records,
        _ => return Ok(Vec::new()),
    };
    Ok({ records.into_iter() }
        .filter_map(|v| serde_json::from_value::<Holder>(v).ok())
        .filter_map(Holder::kept_as)
        .take(MOST_KEPT)
        .collect())
}

impl Holder {
    /// This record as a lock keeps it for a later run: without the file
    /// it was placing (the run that found it removed that file, or left
    /// it as not that run's), nor, unless it is a prune's, the backup it
    /// was pruning (a manifest no run could remove yet is carried until one
    /// does: [`BackupLock::carry_pruning`]), the records it kept (kept beside it), the
    /// repository it ran from (no run is refused by it), nor the machine
    /// it ran on: it is of a run known gone, never read as one still
    /// running ([`crate::steps::lock::time_travel_running`]) when its pid
    /// names another process since. `None` for a record of another shape
    /// than this tool writes (a command not its own, a time not in RFC
    /// 3339, a name longer than [`LONGEST_KEPT_NAME`]): it is not carried
    /// from lock to lock, nor lets the lock grow past what a run reads.
    pub fn kept_as(self) -> Option<Holder> {
        let ours = is_our_command(&self.command)
            && self.started_at.len() <= LONGEST_KEPT_NAME
            && self.started().is_some()
            && self.doing.as_ref().is_none_or(Doing::is_short);
        let pruning = self.pruning.filter(|_| self.command == "prune");
        ours.then(|| Holder {
            placing: None,
            pruning,
            machine: None,
            repository: None,
            kept: Vec::new(),
            was_kept: true,
            running: None,
            ..self
        })
    }

    /// The signal that stopped its run ([`Holder::stopped_by`]), when the
    /// record names one this tool writes: a planted name is not repeated.
    fn interrupted_by(&self) -> Option<&str> {
        { self.stopped_by.as_deref() }.filter(|s| ["SIGINT", "SIGTERM", "SIGHUP"].contains(s))
    }

    /// What a `with-backup` holding this lock passes the command it runs in
    /// [`NESTED_ENV`]: its pid and when it started, as the lock records
    /// them.
    pub fn nesting(&self) -> String {
        format!("{}@{}", self.pid, self.started_at)
    }

    /// Whether this run was started by the command of the `with-backup`
    /// this lock's holder is, by [`NESTED_ENV`].
    fn nests_this_run(&self) -> bool {
        std::env::var(NESTED_ENV).is_ok_and(|v| v == self.nesting())
    }

    /// When the run started, if its record says so in RFC 3339.
    fn started(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        chrono::DateTime::parse_from_rfc3339(&self.started_at).ok()
    }

    /// `pid N (`command`, started T)`, with the command and the time only
    /// if they have the shapes this tool writes: a command of a few plain
    /// words that starts with one of its own (`restore into staging`), a
    /// time in RFC 3339. Anything else is not repeated.
    pub fn who(&self) -> String {
        let mut about = Vec::new();
        if is_our_command(&self.command) {
            about.push(format!("`{}`", self.command));
        }
        if self.started().is_some() {
            about.push(format!("started {}", self.started_at));
        }
        match about.is_empty() {
            true => format!("pid {}", self.pid),
            false => format!("pid {} ({})", self.pid, about.join(", ")),
        }
    }

    /// `a run of `command` (pid N, started T)`, for a record kept
    /// ([`Holder::was_kept`]), with the command and the time only if they
    /// have the shapes this tool writes, as [`Holder::who`].
    fn kept_run(&self) -> String {
        let started = match self.started() {
            Some(_) => format!(", started {}", self.started_at),
            None => String::new(),
        };
        match is_our_command(&self.command) {
            true => format!("a run of `{}` (pid {}{started})", self.command, self.pid),
            false => format!("a run (pid {}{started})", self.pid),
        }
    }

    /// `, from REPOSITORY` when the holder recorded a repository other than
    /// `here`, as an absolute path of characters that print as themselves
    /// (`d1_core::names::is_printable`: no control character, bidi
    /// override or zero-width space; anything else is not repeated).
    pub fn elsewhere(&self, here: &Path) -> String {
        match self.repository.as_deref() {
            Some(there)
                if there.starts_with('/')
                    && there.len() <= 1024
                    && d1_core::names::is_printable(there)
                    && !there.contains('`')
                    && !same_directory(Path::new(there), here) =>
            {
                format!(", from {there}, another repository that shares this backup directory")
            }
            _ => String::new(),
        }
    }
}

/// Whether `a` and `b` name one directory: the same checkout reached
/// through a symlink is the same repository. A path that no longer
/// resolves is compared as given.
fn same_directory(a: &Path, b: &Path) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// Whether `command` is one this tool writes into its lock: `prune`,
/// `backup ENV`, `restore into ENV`, `time-travel restore ENV`, … with an
/// environment of letters, digits and `_.:-`.
fn is_our_command(command: &str) -> bool {
    let env = |w: &str| {
        !w.is_empty()
            && w.len() <= 64
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
    };
    match command.split(' ').collect::<Vec<_>>().as_slice() {
        ["prune"] => true,
        [
            "backup" | "migrate" | "deploy" | "upload" | "with-backup",
            e,
        ]
        | ["restore", "into", e]
        | ["time-travel", "restore", e]
        | ["offsite", "fetch", e] => env(e),
        _ => false,
    }
}

/// The refusal (exit 4) of a run that found the lock held by another: it
/// names the holder and what to do, and says what the refused run left.
/// Every command takes the lock before it changes anything, so that is
/// "Nothing was changed." unless a caller that did more first says what
/// ([`HeldElsewhere::saying_left`]).
#[derive(Debug, Clone)]
pub struct HeldElsewhere {
    dir: String,
    who: String,
    /// What to do: wait for the holder, unless this run was started by
    /// the command a `with-backup` holding the lock runs.
    advice: String,
    lock: String,
    left: String,
}

impl HeldElsewhere {
    /// The same refusal, saying `left` of what the run left instead.
    pub fn saying_left(&self, left: String) -> anyhow::Error {
        let held = HeldElsewhere {
            left,
            ..self.clone()
        };
        crate::exit::Exit::LockHeld.error(held)
    }
}

impl std::fmt::Display for HeldElsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another backup or restore is running in {} ({}); {} (lock: {}). {}",
            self.dir, self.who, self.advice, self.lock, self.left
        )
    }
}

impl std::error::Error for HeldElsewhere {}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct BackupLock {
    file: File,
    holder: Holder,
    /// Whether [`BackupLock::record`] wrote what this run is doing.
    told: std::sync::atomic::AtomicBool,
    /// Whether the record stays when the lock is released
    /// ([`BackupLock::leave_unsettled`]).
    unsettled: std::sync::atomic::AtomicBool,
}

/// What a previous holder that died left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleLock {
    /// `None` when the file held something other than our JSON.
    pub holder: Option<Holder>,
}

impl BackupLock {
    /// Takes the lock or refuses at once, naming the holder.
    /// `repository` is the one this run is from, recorded for a run of
    /// another that shares the directory.
    pub fn acquire(
        dir: &Path,
        command: &str,
        repository: &Path,
    ) -> Result<(BackupLock, Option<StaleLock>)> {
        let path = dir.join(LOCK_FILE);
        // Another run may put a new lock file in place (below) between this
        // run's open and its lock: the lock then taken is on a file no name
        // leads to, and the open is made again.
        for _ in 0..16 {
            let file = Self::open(&path)?;
            if let Some(taken) = Self::take(file, dir, &path, command, repository)? {
                return Ok(taken);
            }
        }
        bail!(
            "the backup lock {} was replaced again and again while this run took it; run the \
             command again",
            path.display()
        )
    }

    /// Refuses the lock file in `dir` as [`BackupLock::acquire`] would (a
    /// symbolic link, a FIFO, a directory, one this user may not write),
    /// neither taking it nor making one: `doctor`'s check of it.
    pub fn check_file(dir: &Path) -> Result<()> {
        let path = dir.join(LOCK_FILE);
        match std::fs::symlink_metadata(&path) {
            Err(_) => Ok(()),
            Ok(_) => Self::open(&path).map(drop),
        }
    }

    fn open(path: &Path) -> Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        std::os::unix::fs::OpenOptionsExt::mode(
            &mut options,
            crate::edge::fsutil::PRIVATE_FILE_MODE,
        );
        crate::edge::fsutil::open_no_follow_shared(&mut options, path, "the backup lock").map_err(
            |e| match crate::edge::fsutil::unwritable(&e) {
                Some(why) => unwritable_dir(path, why),
                None => e,
            },
        )
    }

    /// Locks the open lock file and writes the holder into it; `None` when
    /// the file turned out not to be (or no longer to be) `path`'s own.
    fn take(
        mut file: File,
        dir: &Path,
        path: &Path,
        command: &str,
        repository: &Path,
    ) -> Result<Option<(BackupLock, Option<StaleLock>)>> {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                let who = match &holder {
                    Some(h) => format!("{}{}", h.who(), h.elsewhere(repository)),
                    None => "another process".to_owned(),
                };
                let held = HeldElsewhere {
                    dir: dir.display().to_string(),
                    who,
                    advice: advice(holder.as_ref()),
                    lock: path.display().to_string(),
                    left: "Nothing was changed.".to_owned(),
                };
                return Err(crate::exit::Exit::LockHeld.error(held));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        if !crate::edge::fsutil::is_at(&file, path) {
            return Ok(None);
        }
        let previous = read_small(&mut file);
        if crate::edge::fsutil::link_count(&file, path)? > 1 {
            // Another name shares this file (a hard-link snapshot of the
            // backup directory): writing the holder would write there too.
            // While this lock is held, a file of its own, saying what this
            // one said, takes its place, and that one is taken.
            crate::edge::fsutil::replace_file(path, previous.as_bytes())?;
            return Ok(None);
        }
        let stale = (!previous.trim().is_empty()).then(|| StaleLock {
            holder: serde_json::from_str(&previous).ok(),
        });
        if let Some(held) = stale
            .as_ref()
            .and_then(|s| still_running(s.holder.as_ref()?, path))
        {
            // Its file is left as it is, saying who still runs.
            let held = HeldElsewhere {
                dir: dir.display().to_string(),
                left: "Nothing was changed.".to_owned(),
                ..held
            };
            return Err(crate::exit::Exit::LockHeld.error(held));
        }
        let holder = Holder {
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command: command.to_owned(),
            doing: None,
            placing: None,
            pruning: None,
            machine: Some(crate::edge::machine::Machine::here().record()),
            kept: Vec::new(),
            was_kept: false,
            stopped_by: None,
            running: None,
            // Canonical, so that another run names the checkout alike
            // whichever path (a symlink) each was started through.
            repository: std::fs::canonicalize(repository)
                .unwrap_or_else(|_| repository.to_owned())
                .to_str()
                .map(str::to_owned),
        };
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(serde_json::to_string(&holder)?.as_bytes())?;
        file.sync_all()?;
        Ok(Some((BackupLock::held(file, holder), stale)))
    }

    /// The lock held in `file`, its record `holder` written, nothing told.
    fn held(file: File, holder: Holder) -> BackupLock {
        BackupLock {
            file,
            holder,
            told: std::sync::atomic::AtomicBool::new(false),
            unsettled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Writes into the lock what this run is about to do that a kill would
    /// leave half-told (a load into a database), so that the next run,
    /// finding the lock stale, says it. The new text is written over the old
    /// before the file is cut to its length: a crash in between leaves a
    /// file that is still not empty, so still reported stale.
    /// Until [`BackupLock::settled`], each wrangler this run starts is
    /// written into the record too ([`wrangler_started`]).
    pub fn record(&self, doing: Doing) -> Result<()> {
        self.told.store(true, std::sync::atomic::Ordering::SeqCst);
        let holder = Holder {
            doing: Some(doing),
            ..self.holder.clone()
        };
        self.write(&holder)?;
        *recording() = Some((self.file.try_clone()?, holder));
        Ok(())
    }

    /// Takes back what [`BackupLock::record`] wrote, once that step is over
    /// and told for good elsewhere (a journal): a kill or a SIGHUP after it
    /// must not leave the next run a record of a step still underway.
    pub fn settled(&self) -> Result<()> {
        self.told.store(false, std::sync::atomic::Ordering::SeqCst);
        *recording() = None;
        self.write(&self.holder)
    }

    /// Leaves what [`BackupLock::record`] wrote in the lock when it is
    /// released, as a killed run leaves it: the step's outcome is unknown
    /// (a remote import wrangler lost track of), and `status` and the next
    /// run tell it, with its way back.
    pub fn leave_unsettled(&self) {
        self.unsettled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Leaves the `pruning` record ([`BackupLock::pruning`]) in the lock
    /// when it is released, as a prune killed between a backup's two
    /// deletes leaves it: the manifest whose delete failed after its
    /// backup's stays recorded, and the next run that takes the lock
    /// removes it, the very file recorded, saying so.
    pub fn leave_pruning(&self) {
        self.told.store(true, std::sync::atomic::Ordering::SeqCst);
        self.leave_unsettled();
    }

    /// Keeps in the lock the records of runs gone that this run found and
    /// did not tell whole, being for another environment
    /// ([`Holder::kept`]): written now, so that a kill of this run leaves
    /// them to the next with its own, and written back in the place of this
    /// run's on a clean release, so that the next run finds them as the
    /// lock its first one left. Only records of this tool's shape are kept
    /// ([`Holder::kept_as`]), the newest (by when their runs started) first,
    /// at most [`MOST_KEPT`], and the oldest dropped until the lock, with
    /// this run's own record, is at most [`MOST_KEPT_BYTES`] long. Returns,
    /// for each of `records`, whether it is kept: decided before any run
    /// is told that it is.
    pub fn keep(&mut self, records: &[Holder]) -> Result<Vec<bool>> {
        let mut kept: Vec<(usize, Holder)> = { records.iter().cloned().enumerate() }
            .filter_map(|(i, record)| Some((i, record.kept_as()?)))
            .collect();
        kept.sort_by_key(|(_, record)| std::cmp::Reverse(record.started()));
        kept.truncate(MOST_KEPT);
        loop {
            self.holder.kept = kept.iter().map(|(_, record)| record.clone()).collect();
            if kept.is_empty() || serde_json::to_string(&self.holder)?.len() <= MOST_KEPT_BYTES {
                break;
            }
            kept.pop();
        }
        self.write(&self.holder)?;
        Ok((0..records.len())
            .map(|i| kept.iter().any(|(k, _)| *k == i))
            .collect())
    }

    /// Carries `record`, a prune's whose manifest this run could not remove
    /// ([`Holder::pruning`]), into this lock, first among the records kept
    /// ([`Holder::kept`]): a kill of this run leaves it to the next with its
    /// own, and a clean release writes it back as the lock its prune left,
    /// so that the next run that takes the lock tries again. Records kept
    /// for another environment are dropped, the oldest first, if the lock
    /// has no room for all.
    pub fn carry_pruning(&mut self, record: &Holder) -> Result<()> {
        let Some(carried) = record.clone().kept_as() else {
            return Ok(());
        };
        self.holder.kept.retain(|k| k.pruning != carried.pruning);
        self.holder.kept.insert(0, carried);
        self.holder.kept.truncate(MOST_KEPT);
        while self.holder.kept.len() > 1
            && serde_json::to_string(&self.holder)?.len() > MOST_KEPT_BYTES
        {
            self.holder.kept.pop();
        }
        self.write(&self.holder)
    }

    /// Writes into the lock the command this run (a `with-backup`) started,
    /// process `pid`, so that the lock counts as held while that command
    /// runs, even once this run is killed ([`Holder::running`]).
    pub fn running(&mut self, pid: u32) -> Result<()> {
        let start = crate::edge::machine::start_of(pid);
        self.holder.running = Some(Running { pid, start });
        self.write(&self.holder)
    }

    /// What a `with-backup` holding this lock passes the command it runs
    /// in [`NESTED_ENV`] ([`Holder::nesting`]).
    pub fn nesting(&self) -> String {
        self.holder.nesting()
    }

    /// Writes into the lock the backup file about to be given its name
    /// (`None` once its manifest is written), so that the next run, finding
    /// the lock stale, removes that file if it was left without one.
    pub fn placing(&self, file: Option<Placing>) -> Result<()> {
        self.write(&Holder {
            placing: file,
            ..self.holder.clone()
        })
    }

    /// Writes into the lock the backup a prune is about to delete, its
    /// file then its manifest (`None` once done), so that the next run,
    /// finding the lock stale, removes the one a kill left without the
    /// other.
    pub fn pruning(&self, backup: Option<Pruning>) -> Result<()> {
        self.write(&Holder {
            pruning: backup,
            ..self.holder.clone()
        })
    }

    fn write(&self, holder: &Holder) -> Result<()> {
        // One writer at a time: a wrangler started on another thread
        // writes its pid into this file too.
        let _one = recording();
        write_to(&self.file, holder)
    }
}

/// Writes `holder` into the lock `file`.
fn write_to(file: &File, holder: &Holder) -> Result<()> {
    let text = serde_json::to_string(holder)?;
    std::os::unix::fs::FileExt::write_all_at(file, text.as_bytes(), 0)?;
    file.set_len(text.len() as u64)?;
    file.sync_all()?;
    Ok(())
}

/// The lock of a run while it does what it recorded ([`BackupLock::record`])
/// and the record written: the lock a wrangler started then is written
/// into ([`wrangler_started`]). Its guard is also held by every write of a
/// lock, so that writes from two threads do not interleave.
static RECORDING: std::sync::Mutex<Option<(File, Holder)>> = std::sync::Mutex::new(None);

fn recording() -> std::sync::MutexGuard<'static, Option<(File, Holder)>> {
    RECORDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes wrangler's `pid` (and when it started) into the lock of this
/// run while it does what it recorded (a migration, a load): killed
/// (SIGKILL, the OOM killer), this run leaves that wrangler, and the
/// workerd it runs, perhaps still writing to the database for a moment
/// (it is sent SIGTERM: `signals::shield`), and the lock counts as held
/// while it lives ([`Holder::running`]), so that no next run works on the
/// database beside it or tells it that nothing was applied. Best effort:
/// a lock that cannot be written now is told as the run's own (`-v`).
pub fn wrangler_started(pid: u32) {
    let mut recording = recording();
    let Some((file, holder)) = recording.as_mut() else {
        return;
    };
    holder.running = Some(Running {
        pid,
        start: crate::edge::machine::start_of(pid),
    });
    if let Err(e) = write_to(file, holder) {
        crate::detail!("  cannot write wrangler's pid {pid} into the backup lock: {e:#}");
    }
}

impl Drop for BackupLock {
    fn drop(&mut self) {
        let recorded = recording().take().map(|(_, holder)| holder);
        // A run stopped by SIGHUP (its terminal gone) while it did what it
        // recorded told its operator nothing: what it printed went with the
        // terminal. It leaves the record, as a killed run does, for the
        // next run to say what the database may hold and the way back.
        let told = self.told.load(std::sync::atomic::Ordering::SeqCst);
        if told && self.unsettled.load(std::sync::atomic::Ordering::SeqCst) {
            // The record says the run was interrupted, as its journal
            // does: the next run does not call it killed.
            if let (Some(signal), Some(holder)) = (crate::edge::signals::received(), recorded) {
                let name = d1_core::interrupt::name(signal).to_owned();
                let holder = Holder {
                    stopped_by: Some(name),
                    ..holder
                };
                let _ = self.write(&holder);
            }
            let _ = self.file.sync_all();
            return;
        }
        if told && crate::edge::signals::received() == Some(libc::SIGHUP) {
            let _ = self.file.sync_all();
            crate::edge::signals::left_told();
            return;
        }
        // Emptying the file marks a clean release; the kernel drops the lock
        // when the file is closed. Records kept for a later run are written
        // back instead, the first as the lock its run left, keeping the
        // others: the next run finds them as stale as this one did.
        let mut kept = std::mem::take(&mut self.holder.kept).into_iter();
        if let Some(first) = kept.next() {
            let back = Holder {
                kept: kept.collect(),
                ..first
            };
            if self.write(&back).is_ok() {
                return;
            }
        }
        let _ = self.file.set_len(0);
        let _ = self.file.sync_all();
    }
}

/// The refusal (exit 2, as a backup directory that is a file) of a backup
/// directory this run cannot write into (`why`: a read-only file system,
/// or its permissions): which, and the fix.
fn unwritable_dir(lock: &Path, why: crate::edge::fsutil::Unwritable) -> anyhow::Error {
    let dir = lock.parent().unwrap_or(lock).display().to_string();
    let (what, fix) = match why {
        crate::edge::fsutil::Unwritable::ReadOnly => {
            ("it is on a read-only file system", "remount it read-write")
        }
        crate::edge::fsutil::Unwritable::Denied => (
            "permission denied",
            "give this user write permission there (`ls -ld` shows who may write; `chmod u+w` \
             if it is yours), and clear an immutable flag if `lsattr -d` shows one (`chattr -i`, \
             as root)",
        ),
    };
    crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
        "the backup directory {dir} cannot be written ({what}: its lock {} cannot be opened): \
         choose a writable directory with --backup-dir DIR (or QBTIME_BACKUP_DIR), or {fix}, \
         then run the command again. Nothing was done.",
        lock.display()
    ))
}

/// What a run refused by `holder`'s lock is told to do: wait for it and
/// run again, or, when the holder is a `with-backup` and this run was
/// started by the command it runs (the holder, on this machine and in this
/// pid namespace, is an ancestor of this process), run it outside
/// with-backup, which holds the lock until that command ends: waiting
/// would wait for itself.
fn advice(holder: Option<&Holder>) -> String {
    use crate::edge::machine::{Machine, Run, is_ancestor};
    let wait = "wait for it to finish, then run this again";
    let Some(h) = holder.filter(|h| h.command.starts_with("with-backup ")) else {
        return wait.to_owned();
    };
    let env = with_backup_environment(&h.command).unwrap_or("ENV");
    let here = { h.machine.as_deref() }.is_some_and(|m| Machine::read(m).run(h.pid) == Run::Alive);
    match (here && h.pid > 1 && is_ancestor(h.pid)) || h.nests_this_run() {
        true => nested(env),
        false => "with-backup holds the backup lock until its command ends: wait for that \
                  command to finish, then run this again"
            .to_owned(),
    }
}

/// The refusal of a run that took the lock from `h`, a `with-backup`
/// killed while the command it started still runs on this machine (in
/// this pid namespace, since it booted): the lock counts as held while it
/// runs (by its pid and start time, so a reused pid is not it). A record
/// (which anyone able to write the backup directory may have written)
/// naming pid 1 names no command it started, and holds nothing; its
/// `started_at` is not compared with the command's start by the clock,
/// which may have been stepped since, and which the record's writer chose.
/// The refusal says how to tell the lock `path` is stale and to remove it
/// then. Its directory and what was left are set by the caller.
fn still_running(h: &Holder, path: &Path) -> Option<HeldElsewhere> {
    use crate::edge::machine::{Machine, Run, is_ancestor};
    let running = h.running.as_ref().filter(|r| r.pid > 1)?;
    let machine = Machine::read(h.machine.as_deref()?);
    if machine.process(running.pid, running.start) != Run::Alive {
        return None;
    }
    let pid = running.pid;
    let Some(env) = with_backup_environment(&h.command) else {
        // A wrangler's record is believed only of the very process it
        // names: its start time as recorded, and a wrangler's (node's)
        // command line. A record planted (or copied) naming another
        // process, with no start, holds nothing, and never advises a kill.
        let wrangler = running.start.is_some()
            && crate::edge::machine::start_of(pid) == running.start
            && crate::edge::machine::is_wrangler(pid);
        return wrangler.then(|| wrangler_still_running(h, pid, path));
    };
    let advice = match is_ancestor(pid) || h.nests_this_run() {
        true => nested(env),
        false => format!(
            "with-backup was killed, but the command it started still runs and may change the \
             database, so the backup lock stays held until it ends: wait for pid {pid} to \
             finish, then run this again"
        ),
    };
    Some(HeldElsewhere {
        dir: String::new(),
        who: format!("pid {pid}, the command {} started", h.who()),
        advice: format!(
            "{advice}; if pid {pid} is not that command (`ps -p {pid}` shows it), remove {}",
            path.display()
        ),
        lock: path.display().to_string(),
        left: String::new(),
    })
}

/// [`still_running`] of a run killed while the wrangler it started (`pid`)
/// for the step it recorded (a migration, a load) still runs: it may yet
/// change the database (commit the migration), so the lock stays held.
/// How to tell that `pid` is that wrangler comes before any advice to stop
/// it.
fn wrangler_still_running(h: &Holder, pid: u32, path: &Path) -> HeldElsewhere {
    HeldElsewhere {
        dir: String::new(),
        who: format!("pid {pid}, the wrangler {} started", h.who()),
        advice: format!(
            "that run was killed, but its wrangler still runs and may change the database (a \
             migration it applies may yet commit), so the backup lock stays held until it ends: \
             first check that pid {pid} is that wrangler (`ps -p {pid}` shows it): if it is not, \
             remove {}; if it is, wait for it to finish, or stop it (`kill {pid}`), then run \
             this again",
            path.display()
        ),
        lock: path.display().to_string(),
        left: String::new(),
    }
}

/// The advice to a run refused because the command `with-backup ENV` runs
/// started it: waiting would wait for itself.
fn nested(env: &str) -> String {
    format!(
        "this run was started by the command `with-backup {env}` runs, and with-backup holds \
         the backup lock until that command ends, so a command that takes the lock (backup, \
         restore, migrate, prune, deploy, offsite fetch) cannot run inside it: run it before \
         or after with-backup (migrate takes its own pre-migration backup)"
    )
}

fn read_holder(file: &mut File) -> Option<Holder> {
    file.seek(SeekFrom::Start(0)).ok()?;
    serde_json::from_str(&read_small(file)).ok()
}

/// The lock file's text, as much as a holder's line can be (16 KiB, its
/// own record and [`MOST_KEPT`] kept): a file grown (or planted) larger is
/// not a holder this tool wrote, and is not read into memory whole.
fn read_small(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = Read::take(&mut *file, 16 * 1024).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

impl std::fmt::Display for StaleLock {
    /// Who held the lock; what it was doing is told by
    /// `steps::lock`, which checks it against the configuration first.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Some(h) if h.was_kept => match h.interrupted_by() {
                Some(signal) => write!(
                    f,
                    "a record kept from {}, which was interrupted by {signal}",
                    h.kept_run()
                ),
                None => write!(f, "a record kept from {}, which was killed", h.kept_run()),
            },
            Some(h) => {
                match h.interrupted_by() {
                    Some(signal) => write!(
                        f,
                        "{} was interrupted by {signal} and left its record in the backup lock",
                        h.who()
                    )?,
                    None => write!(
                        f,
                        "{} held the backup lock and is gone without releasing it",
                        h.who()
                    )?,
                }
                match h.running.as_ref().filter(|_| is_with_backup(h)) {
                    // pid 1 (the system's init) or 0 is never a command
                    // with-backup started (`still_running`).
                    Some(r) if r.pid <= 1 => write!(
                        f,
                        "; its record names pid {} as the command it started, which no command \
                         with-backup starts is, so it holds nothing",
                        r.pid
                    ),
                    // Judged by its pid here: a clone of this VM (the same
                    // machine id and boot id) runs processes not seen here.
                    Some(r) => write!(
                        f,
                        "; the command it started (pid {}) is not running on this machine (judged \
                         by its pid here: a clone of this VM, booted from one running snapshot, \
                         has its machine id and boot id, and its processes are not seen here)",
                        r.pid
                    ),
                    None => Ok(()),
                }
            }
            None => {
                f.write_str("a previous run held the backup lock and is gone without releasing it")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planted lock record's repository is printed only when it prints as
    /// itself: a bidi override (U+202E) or a zero-width space is no control
    /// character, and would show the refusal as something else.
    #[test]
    fn a_lock_records_repository_that_does_not_print_as_itself_is_not_repeated() {
        let holder = |repository: &str| Holder {
            pid: 1,
            started_at: "2026-11-23T01:02:03Z".to_owned(),
            command: "backup local".to_owned(),
            doing: None,
            placing: None,
            pruning: None,
            machine: None,
            repository: Some(repository.to_owned()),
            kept: Vec::new(),
            was_kept: false,
            stopped_by: None,
            running: None,
        };
        let here = Path::new("/repo");
        assert!(
            holder("/srv/other")
                .elsewhere(here)
                .contains("from /srv/other,")
        );
        for hostile in [
            "/srv/a\u{1b}[2Jb",
            "/srv/\u{202e}yrotisoper rehtona",
            "/srv/re\u{200b}po",
            "/srv/a\u{a0}b",
        ] {
            assert_eq!(holder(hostile).elsewhere(here), "", "{hostile:?}");
        }
        assert_eq!(
            holder(&format!("/{}", "a".repeat(1 << 20))).elsewhere(here),
            ""
        );
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let (first, stale) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        assert_eq!(stale, None);
        let err = BackupLock::acquire(dir.path(), "backup prod", Path::new("/repo"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("backup local"), "{err}");
        drop(first);
        // A process that another test spawns shares our open files between
        // its fork and its exec, and with them the lock, for a moment.
        let mut again = BackupLock::acquire(dir.path(), "backup prod", Path::new("/repo"));
        for _ in 0..50 {
            if again.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = BackupLock::acquire(dir.path(), "backup prod", Path::new("/repo"));
        }
        let (_again, stale) = again.unwrap();
        assert_eq!(stale, None, "a clean release leaves no stale lock");
    }

    #[test]
    fn a_lock_file_with_another_name_is_replaced_and_the_other_name_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("snapshot-of-lock");
        let said = r#"{"pid":999999,"started_at":"2026-11-23T10:00:00Z","command":"backup prod"}"#;
        std::fs::write(&snapshot, said).unwrap();
        std::fs::hard_link(&snapshot, dir.path().join(LOCK_FILE)).unwrap();
        let (lock, stale) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        // What the shared file said is still read: a holder that died.
        assert_eq!(stale.unwrap().holder.unwrap().pid, 999_999);
        assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), said);
        let own = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(own.contains("backup local"), "{own}");
        drop(lock);
        assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), said);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "the lock and the other name only");
    }

    /// IC: a stale with-backup whose command is judged ended here, by its
    /// pid on this machine, says how it was judged: a clone of this VM
    /// (the same machine id and boot id, from one running snapshot)
    /// sharing the backup directory runs processes not seen here.
    #[test]
    fn a_stale_with_backup_whose_command_is_judged_ended_names_the_clone_limit() {
        let holder = Holder {
            pid: u32::MAX - 1,
            started_at: "2026-11-23T10:00:00Z".into(),
            command: "with-backup prod".into(),
            doing: None,
            placing: None,
            pruning: None,
            machine: Some(crate::edge::machine::Machine::here().record()),
            repository: None,
            kept: Vec::new(),
            was_kept: false,
            stopped_by: None,
            running: Some(Running {
                pid: u32::MAX - 2,
                start: None,
            }),
        };
        let told = StaleLock {
            holder: Some(holder),
        }
        .to_string();
        assert!(told.contains(&format!("pid {}", u32::MAX - 2)), "{told}");
        assert!(told.contains("clone"), "{told}");
    }

    #[test]
    fn a_lock_file_left_by_a_dead_holder_is_reported_stale() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder {
            pid: 999_999,
            started_at: "2026-11-23T10:00:00Z".into(),
            command: "backup prod".into(),
            doing: None,
            placing: None,
            pruning: None,
            machine: None,
            repository: None,
            kept: Vec::new(),
            was_kept: false,
            stopped_by: None,
            running: None,
        };
        std::fs::write(
            dir.path().join(LOCK_FILE),
            serde_json::to_string(&holder).unwrap(),
        )
        .unwrap();
        let (_lock, stale) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        let stale = stale.expect("stale lock reported");
        assert_eq!(stale.holder, Some(holder));
        assert!(stale.to_string().contains("pid 999999"));
    }

    #[test]
    fn what_a_holder_recorded_is_read_by_the_next_run_and_a_clean_release_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, _) =
            BackupLock::acquire(dir.path(), "restore into staging", Path::new("/repo")).unwrap();
        let doing = Doing::Loading {
            env: "staging".into(),
            backup: "backup-prod-x.sql".into(),
            backup_sha256: Some("a".repeat(64)),
            safety: Some("backup-staging-y.sql".into()),
            safety_sha256: Some("b".repeat(64)),
            migrations_first: false,
            checking: false,
        };
        lock.record(doing.clone()).unwrap();
        // The holder dies: its file is left as it was, unlocked.
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        drop(lock);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            "",
            "a clean release empties the lock"
        );
        std::fs::write(dir.path().join(LOCK_FILE), &text).unwrap();
        let (_lock, stale) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        let holder = stale.expect("stale lock reported").holder.unwrap();
        assert_eq!(holder.doing, Some(doing));
        assert!(holder.who().contains("(`restore into staging`, started "));
    }

    /// GJ: records kept for a later run ([`BackupLock::keep`]) are in the
    /// lock while this run holds it, so a kill of this run leaves them to
    /// the next beside its own; a clean release writes them back as the
    /// lock their runs left, without the file one was placing nor the
    /// machine it ran on; a release with none kept empties the lock.
    #[test]
    fn records_kept_outlive_the_run_that_keeps_them_killed_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let dead = |pid: u32, env: &str| Holder {
            pid,
            started_at: "2026-11-23T10:00:00Z".into(),
            command: format!("migrate {env}"),
            doing: Some(Doing::Migrating {
                env: env.into(),
                backup: Some(format!("backup-{env}-20261123-0959.sql")),
                backup_sha256: None,
            }),
            placing: Some(Placing {
                name: format!("backup-{env}-20261123-1000.sql"),
                device: 1,
                inode: 2,
                size: 3,
            }),
            pruning: None,
            machine: Some(crate::edge::machine::Machine::here().record()),
            repository: None,
            kept: Vec::new(),
            was_kept: false,
            stopped_by: None,
            running: None,
        };
        let records = vec![dead(7, "prod"), dead(8, "staging")];
        let take = |command: &str| BackupLock::acquire(dir.path(), command, Path::new("/repo"));
        let (mut lock, _) = take("backup local").unwrap();
        lock.keep(&records).unwrap();
        lock.placing(None).unwrap();
        // Killed: the file is left as it was, unlocked.
        let text = std::fs::read_to_string(&path).unwrap();
        drop(lock);
        std::fs::write(&path, &text).unwrap();
        let (lock, stale) = take("backup local").unwrap();
        let holder = stale.unwrap().holder.unwrap();
        assert_eq!(holder.command, "backup local");
        let kept: Vec<Holder> = records.into_iter().filter_map(Holder::kept_as).collect();
        assert_eq!(holder.kept, kept);
        assert!(
            kept.iter()
                .all(|h| h.placing.is_none() && h.machine.is_none())
        );
        drop(lock);
        let (mut lock, stale) = take("backup local").unwrap();
        assert_eq!(stale, None, "a release keeping none empties the lock");
        lock.keep(&kept).unwrap();
        drop(lock);
        // Released clean: the first record is the lock, keeping the other.
        let (_lock, stale) = take("backup prod").unwrap();
        let holder = stale.unwrap().holder.unwrap();
        assert_eq!(holder.pid, 7);
        assert_eq!(holder.kept, kept[1..]);
    }

    /// A record of a `migrate ENV` killed at `started_at`, as a run for
    /// another environment keeps it.
    fn gone(pid: u32, env: &str, started_at: &str) -> Holder {
        Holder {
            pid,
            started_at: started_at.into(),
            command: format!("migrate {env}"),
            doing: Some(Doing::Migrating {
                env: env.into(),
                backup: Some(format!("backup-{env}-20261123-0959.sql")),
                backup_sha256: Some("a".repeat(64)),
            }),
            placing: None,
            pruning: None,
            machine: None,
            repository: Some("/srv/qbtime".into()),
            kept: Vec::new(),
            was_kept: false,
            stopped_by: None,
            running: None,
        }
    }

    /// The lock in `dir`, read as the next run reads it.
    fn lock_in(dir: &Path) -> Holder {
        serde_json::from_str(&std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap()).unwrap()
    }

    /// GP: over [`MOST_KEPT`], the newest records (by when their runs
    /// started) are kept, whatever order they are found in: the oldest is
    /// the one dropped.
    #[test]
    fn over_the_most_kept_the_newest_records_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut lock, _) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        let records: Vec<Holder> = { 0..6u32 }
            .map(|i| gone(10 + i, "prod", &format!("2026-11-23T1{i}:00:00Z")))
            .collect();
        lock.keep(&records).unwrap();
        let mut pids: Vec<u32> = lock_in(dir.path()).kept.iter().map(|h| h.pid).collect();
        pids.sort();
        assert_eq!(pids, [12, 13, 14, 15]);
    }

    /// GP: a record is kept only in the shapes this tool writes: a command
    /// of its own, a time in RFC 3339. Anything else is not carried from
    /// lock to lock.
    #[test]
    fn only_records_of_this_tools_shape_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut lock, _) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        let good = gone(7, "prod", "2026-11-23T10:00:00Z");
        let theirs = Holder {
            command: "migrate prod; run rm -rf /".into(),
            ..gone(8, "prod", "2026-11-23T10:00:00Z")
        };
        let untimed = gone(9, "prod", "an hour ago");
        lock.keep(&[theirs, good, untimed]).unwrap();
        let pids: Vec<u32> = lock_in(dir.path()).kept.iter().map(|h| h.pid).collect();
        assert_eq!(pids, [7]);
    }

    /// GP: a lock keeping records stays small enough for an older version
    /// to read (it reads 4 KiB), with this run's own record, what it is
    /// doing and the file it is placing: a record's long planted fields
    /// (a repository of 100 KiB, a name of 5 KB) are not copied, and the
    /// oldest records are dropped until it fits. Over what the next run
    /// reads, the lock would read as no holder at all, and a kill of this
    /// run would lose its own record.
    #[test]
    fn a_lock_keeping_records_stays_small_whatever_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let (mut lock, _) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        let long = |pid: u32, minute: u32| Holder {
            repository: Some(format!("/{}", "r".repeat(100 * 1024))),
            ..gone(pid, "prod", &format!("2026-11-23T10:{minute:02}:00Z"))
        };
        let named = Holder {
            doing: Some(Doing::Loading {
                env: "prod".into(),
                backup: "b".repeat(5000),
                backup_sha256: None,
                safety: Some("backup-prod-20261123-0959.sql".into()),
                safety_sha256: None,
                migrations_first: false,
                checking: false,
            }),
            command: "restore into prod".into(),
            ..gone(6, "prod", "2026-11-23T10:59:00Z")
        };
        lock.keep(&[long(1, 1), long(2, 2), named, long(3, 3), long(4, 4)])
            .unwrap();
        let size = || std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        lock.record(Doing::Migrating {
            env: "local".into(),
            backup: Some("backup-local-20261123-1100.sql".into()),
            backup_sha256: Some("c".repeat(64)),
        })
        .unwrap();
        assert!(size().len() <= 3584, "{} bytes", size().len());
        assert!(lock_in(dir.path()).doing.is_some());
        let file = dir.path().join("backup-local-20261123-1100.sql");
        std::fs::write(&file, "x").unwrap();
        let placing = Placing::of("backup-local-20261123-1100.sql", &file).unwrap();
        lock.placing(Some(placing)).unwrap();
        let text = size();
        assert!(text.len() <= 3584, "{} bytes", text.len());
        let holder = lock_in(dir.path());
        assert_eq!(holder.command, "backup local");
        assert!(holder.placing.is_some());
        assert!(!holder.kept.is_empty(), "a record of a plain size is kept");
        assert!(holder.kept.iter().all(|h| h.pid != 6), "{text}");
        drop(lock);
        // This run's own record is long (a deep checkout): the oldest
        // records kept are dropped to make room, the newest kept.
        let deep = format!("/{}", "d/".repeat(1200));
        let (mut lock, _) =
            BackupLock::acquire(dir.path(), "backup local", Path::new(&deep)).unwrap();
        let records: Vec<Holder> = { 0..4u32 }
            .map(|i| gone(20 + i, "prod", &format!("2026-11-23T1{i}:00:00Z")))
            .collect();
        lock.keep(&records).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        let pids: Vec<u32> = lock_in(dir.path()).kept.iter().map(|h| h.pid).collect();
        assert!(!pids.is_empty() && pids.len() < 4, "{pids:?}: {text}");
        assert!(pids.contains(&23) && !pids.contains(&20), "{pids:?}");
    }

    /// GP: a record kept and written back on a clean release is told as a
    /// record kept from a killed run, not as a lock its run just left: the
    /// run before released it cleanly.
    #[test]
    fn a_record_kept_is_told_as_kept_not_as_a_fresh_stale_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (mut lock, _) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        lock.keep(&[gone(7, "prod", "2026-11-23T10:00:00Z")])
            .unwrap();
        drop(lock);
        let (_lock, stale) =
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap();
        let told = stale.unwrap().to_string();
        assert_eq!(
            told,
            "a record kept from a run of `migrate prod` (pid 7, started \
             2026-11-23T10:00:00Z), which was killed"
        );
    }

    /// Records kept that do not read as records are none, and at most
    /// [`MOST_KEPT`] are read, none of them keeping more.
    #[test]
    fn records_kept_are_read_as_records_and_few() {
        let one = r#"{"pid":7,"started_at":"2026-11-23T10:00:00Z","command":"backup prod","kept":[{"pid":9,"started_at":"2026-11-23T09:00:00Z","command":"prune"}]}"#;
        let text = format!(
            r#"{{"pid":1,"started_at":"x","command":"prune","kept":[{},"rm -rf /",{one},{one},{one},{one}]}}"#,
            "{}"
        );
        let holder: Holder = serde_json::from_str(&text).unwrap();
        assert_eq!(holder.kept.len(), MOST_KEPT);
        assert!(holder.kept.iter().all(|h| h.pid == 7 && h.kept.is_empty()));
        let text = r#"{"pid":1,"started_at":"x","command":"prune","kept":"all of them"}"#;
        assert!(
            serde_json::from_str::<Holder>(text)
                .unwrap()
                .kept
                .is_empty()
        );
    }

    /// atkAU: a record in a shape this version does not write is not
    /// repeated: free text is unread, a name alone places nothing, and a
    /// command or a time of another shape is not printed.
    #[test]
    fn a_record_of_another_shape_is_never_repeated() {
        let text = r#"{"pid":7,"started_at":"an hour ago; run rm -rf /","command":"migrate prod; to go back run cargo xtask restore /tmp/x.sql --to prod","doing":"applying migrations; to go back run cargo xtask restore /tmp/x.sql","placing":"backup-local-20261202-0100.sql"}"#;
        let holder: Holder = serde_json::from_str(text).unwrap();
        assert_eq!(holder.doing, Some(Doing::Unread));
        assert_eq!(holder.placing, None);
        assert_eq!(holder.who(), "pid 7");
        for ours in [
            "backup local",
            "restore into new:qbtime-copy",
            "time-travel restore prod",
            "offsite fetch staging",
            "prune",
        ] {
            assert!(is_our_command(ours), "{ours}");
        }
        for theirs in [
            "",
            "rm -rf x",
            "backup local; run this",
            "backup  local",
            "restore x.sql --to prod",
        ] {
            assert!(!is_our_command(theirs), "{theirs}");
            assert_eq!(command_environment(theirs), None, "{theirs}");
        }
        assert_eq!(command_environment("restore into staging"), Some("staging"));
        assert_eq!(
            with_backup_environment("with-backup local -- sh"),
            Some("local")
        );
        assert_eq!(
            with_backup_environment("with-backup staging"),
            Some("staging")
        );
        assert_eq!(with_backup_environment("with-backup \u{1b}[2J -- sh"), None);
        assert_eq!(with_backup_environment("backup local"), None);
        assert_eq!(command_environment("prune"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_that_is_a_symbolic_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(LOCK_FILE)).unwrap();
        let err = format!(
            "{:#}",
            BackupLock::acquire(dir.path(), "backup local", Path::new("/repo")).unwrap_err()
        );
        assert!(err.contains("the backup lock"), "{err}");
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
