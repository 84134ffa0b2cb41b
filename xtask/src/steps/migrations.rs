//! The migrations: which are pending, their plan and its application, and
//! the record of their contents (sha256 per applied migration) that every
//! backup's manifest carries, so an applied migration edited afterwards is
//! seen ([`edited_migrations`]).

use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::edge::fsutil::OnPath as _;
use crate::edge::inventory;
use crate::edge::journals::MIGRATIONS_JOURNAL;
use crate::edge::local_d1;
use crate::edge::reader::DatabaseReader;
use crate::exit::Exit;
use anyhow::{Context, Result};
use d1_core::statement;
use d1_core::wording::count;
use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use xshell::Shell;

/// Migration files not yet recorded in `d1_migrations`, in the order wrangler
/// applies them.
pub fn pending(files: &[String], applied: &[String]) -> Vec<String> {
    // In the order of `files`, which is wrangler's.
    files
        .iter()
        .filter(|f| !applied.contains(f))
        .cloned()
        .collect()
}

/// The migrations in the migrations directory, as wrangler finds and orders
/// them: its regular `.sql` files, not hidden ones (an editor's
/// `.#0005_x.sql` lock, a link), in [`wrangler_order`]. A backup put there
/// by mistake (named `backup-…`) would be applied as a migration, rows and
/// all: it is refused, naming it, before anything runs.
///
/// A directory that is not there (a fresh clone without it, moved aside)
/// is a missing file, exit 2, named with the fix, the same for every
/// command that reads it ([`require_dir`]).
pub fn migration_files(dir: &Path) -> Result<Vec<String>> {
    require_dir(dir)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // What wrangler skips (`isFile()` of an unfollowed entry, and a
        // pattern that matches no dot file) is no migration here either.
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if !kind.is_file() && !kind.is_dir() && !kind.is_symlink() {
            // A pipe, a socket or a device: wrangler skips it, so an
            // applied migration replaced by one looks applied and gone,
            // and reading it could block. Refused, naming it.
            crate::stop!(
                Exit::CouldNotRun,
                "{} is not a regular file (a pipe, a socket or a device); migrations/ holds \
                 only migration files. Move it aside and run the command again. Nothing was done.",
                d1_core::names::shown(&dir.join(&name).display().to_string())
            );
        }
        if !kind.is_file() {
            continue;
        }
        if name.starts_with("backup-") && name.contains(".sql") {
            crate::stop!(
                Exit::CouldNotRun,
                "{} is a backup, not a migration: applied, its rows would be inserted into the \
                 database, and it would be committed with the migrations. Move it to the backup \
                 directory. Nothing was done.",
                dir.join(&name).display()
            );
        }
        if name.ends_with(".sql") {
            // A name is printed in plans and recorded in every manifest,
            // which refuses one that is not a plain, printable file name:
            // applied, such a migration would leave no backup acceptable.
            if !d1_core::names::is_plain_file_name(&name) || name.contains('\u{fffd}') {
                crate::stop!(
                    Exit::CouldNotRun,
                    "the migration file {} has a name that is not a plain file name (a line \
                     break, a control or invisible character, or a name that is not UTF-8): \
                     rename it to letters, digits, `_`, `-` and `.sql`, like 0005_add_nickname.sql. \
                     Nothing was done.",
                    d1_core::names::shown(&dir.join(&name).display().to_string())
                );
            }
            files.push(name);
        }
    }
    files.sort_by(|a, b| wrangler_order(a, b));
    Ok(files)
}

/// The order wrangler applies migrations in (`compareSegments` in
/// workers-sdk's d1-migrations.ts): by the number before the first `_`,
/// read as JavaScript's `parseInt` reads it (`10_x.sql` after `9_x.sql`,
/// `0005` as 5, ` 2_x` as 2, `+3_x` as 3, `-1_x` as -1), numbered ones
/// first, then by name (as JavaScript compares strings: by UTF-16 code
/// unit).
pub fn wrangler_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let by_number = match (parse_int(a), parse_int(b)) {
        (Some(x), Some(y)) if x != y => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    };
    by_number.then_with(|| a.encode_utf16().cmp(b.encode_utf16()))
}

/// JavaScript's `parseInt(name.split("_")[0], 10)`: leading white space,
/// an optional sign, then decimal digits; `None` (NaN) without a digit, and
/// for a number beyond what a double holds, which is infinite and which
/// wrangler sorts as unnumbered.
fn parse_int(name: &str) -> Option<f64> {
    let first = name.split('_').next().unwrap_or_default();
    let rest = first.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let (negative, rest) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let digits = &rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())];
    let value: f64 = digits.parse().ok()?;
    // Infinite, as wrangler's `Number.isFinite` sees it: unnumbered.
    value
        .is_finite()
        .then_some(if negative { -value } else { value })
}

/// A trigger the migrations make: its `CREATE TRIGGER` text as SQLite
/// stores it, the table it is on, and the migration that made it so (the
/// last to create it, or to create it again otherwise).
#[derive(Clone)]
pub struct MadeTrigger {
    pub sql: String,
    pub table: String,
    pub migration: String,
}

/// The triggers that the migrations `applied` make, by name, run in order
/// from `dir` in memory as [`schema_created_by`] runs them: `None` for
/// `applied` runs every migration there (a dump without a manifest, or a
/// backup that records none). An applied migration missing from `dir`
/// makes none. `Err` when a migration cannot be read or does not run here
/// (the error names it): then nothing is known, which restore's trigger
/// guard takes as a refusal of any trigger not named, never as none.
pub fn triggers_made(
    applied: Option<&[String]>,
    dir: &Path,
) -> Result<BTreeMap<String, MadeTrigger>> {
    let present = migrations_present(dir)?;
    let names: Vec<String> = { applied.unwrap_or(&present).iter() }
        .filter(|name| present.contains(name))
        .cloned()
        .collect();
    let (made, unrun, _) = run_for_triggers(dir, &names, OnInterrupt::Stop);
    match unrun {
        Some(e) => Err(e),
        None => Ok(made),
    }
}

/// The one message for a migrations directory that is not there: it used
/// to be `cannot read …: No such file or directory`, exit 1, naming no
/// fix (LZ). Exit 2, a missing file, as the README's table says.
pub fn require_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        crate::stop!(
            Exit::CouldNotRun,
            "{}, then run the command again. Nothing was done.",
            missing_dir_said(dir)
        );
    }
    Ok(())
}

/// A migrations directory that is not there, named with its fix: the one
/// wording of [`require_dir`]'s refusal and of the warning a backup taken
/// without it gives (MB).
pub fn missing_dir_said(dir: &Path) -> String {
    let dir = dir.display().to_string();
    let shown = d1_core::names::shown(&dir);
    format!(
        "the migrations directory {shown} (migrations_dir in wrangler.toml, `migrations` by \
         default) does not exist: restore it (`git checkout -- {shown}`) or point \
         migrations_dir at the directory that holds the migrations"
    )
}

/// The migrations in `dir`, as [`migration_files`] finds them. A directory
/// that is not there, or cannot be read as `migrate` reads it (a pipe there
/// is refused), leaves them unknown, not none: a backup's triggers were
/// once held to no migrations at all, verify said GOOD and restore refused
/// them (LZ).
fn migrations_present(dir: &Path) -> Result<Vec<String>> {
    migration_files(dir)
}

/// The migrations `names` of `dir` run in order in memory, read one at a
/// time: the triggers they make ([`triggers_made`]), and the error of the
/// first that cannot be read or does not run here (naming it), with the
/// triggers of those before it, which ran; and the tables and indexes they
/// leave in `sqlite_schema` (of those that ran), as restore's schema guard
/// compares a dump's with them ([`Required::schema`]).
fn run_for_triggers(
    dir: &Path,
    names: &[String],
    on: OnInterrupt,
) -> (
    BTreeMap<String, MadeTrigger>,
    Option<anyhow::Error>,
    BTreeMap<String, d1_core::catalog::Defined>,
) {
    let (mut steps, unrun, _) = run_watching(dir, names, on, &BTreeSet::new());
    let last = steps.pop().unwrap_or_default();
    (last.made, unrun, last.schema)
}

/// What an in-memory run of the migrations has made at one point: the
/// triggers (each with the migration that made it as it stands) and the
/// tables and indexes in `sqlite_schema`.
#[derive(Default)]
struct Made {
    made: BTreeMap<String, MadeTrigger>,
    schema: BTreeMap<String, d1_core::catalog::Defined>,
}

/// The migrations `names` of `dir` run in order in memory, read one at a
/// time ([`run_for_triggers`]): what they made before any ran and after
/// each that ran, the error of the first that cannot be read or does not
/// run here (naming it), and through how many of them a dump holding the
/// tables and triggers `held` (names in lower case) has had: through the
/// last that creates one of them (ASCII case ignored, as SQLite names),
/// none past the first that failed (past which nothing is known, and
/// nothing is counted).
fn run_watching(
    dir: &Path,
    names: &[String],
    on: OnInterrupt,
    held: &BTreeSet<String>,
) -> (Vec<Made>, Option<anyhow::Error>, usize) {
    let mut steps = vec![Made::default()];
    let timed = match on.gate() {
        Ok(timed) => timed,
        Err(e) => return (steps, Some(or_interrupted(e.into())), 0),
    };
    let gate = &timed.0;
    if let Err(e) = gate.db().execute_batch(WRANGLERS_MIGRATIONS_TABLE) {
        return (steps, Some(e.into()), 0);
    }
    let created = |db: &rusqlite::Connection| -> BTreeSet<String> {
        ["table", "trigger"]
            .into_iter()
            .flat_map(|kind| d1_core::catalog::created_in(db, kind).into_keys())
            .map(|n| n.to_ascii_lowercase())
            .collect()
    };
    let mut through = 0;
    for (at, name) in names.iter().enumerate() {
        let before = created(gate.db());
        let ran = read_migrations(dir, std::slice::from_ref(name)).and_then(|read| {
            run_in_time(&timed, name, &read[0].1)?;
            triggers_with_tables(gate.db())
        });
        let now = match ran {
            Ok(now) => now,
            Err(e) => return (steps, Some(or_interrupted(e)), through),
        };
        let mut made = steps.last().map(|s| s.made.clone()).unwrap_or_default();
        made.retain(|n, _| now.contains_key(n));
        for (n, (sql, table)) in now {
            if made.get(&n).is_none_or(|m| m.sql != sql) {
                let migration = name.clone();
                made.insert(
                    n,
                    MadeTrigger {
                        sql,
                        table,
                        migration,
                    },
                );
            }
        }
        if created(gate.db())
            .difference(&before)
            .any(|n| held.contains(n))
        {
            through = at + 1;
        }
        let schema = d1_core::catalog::defined_in(gate.db());
        steps.push(Made { made, schema });
    }
    (steps, None, through)
}

/// The variable that changes the budget of the runs of the migrations in
/// memory ([`d1_core::fk_actions::TRIAL_SECONDS`]), in seconds: a slow
/// machine's may need longer, a test's endless statement less.
pub const TRIAL_VAR: &str = "QBTIME_TRIAL_SECONDS";

/// The longest budget `QBTIME_TRIAL_SECONDS` may set: an hour, past any
/// plan a migrate should hold the backup lock for.
pub const MAX_TRIAL_SECONDS: u64 = 60 * 60;

/// The budget `QBTIME_TRIAL_SECONDS` (`value`) gives, in seconds: unset
/// or empty (as every variable of the tool is taken: a CI variable from a
/// secret that is not set), the default; anything but a whole number from
/// 1 to [`MAX_TRIAL_SECONDS`] is bad input (exit 2), the range said.
pub fn trial_seconds_from(value: Option<&str>) -> Result<u64> {
    let default = d1_core::fk_actions::TRIAL_SECONDS;
    match value.filter(|text| !text.is_empty()) {
        None => Ok(default),
        Some(text) => crate::edge::wrangler::whole_seconds_within(text, MAX_TRIAL_SECONDS)
            .ok_or_else(|| {
                Exit::CouldNotRun.error(anyhow::anyhow!(
                    "{TRIAL_VAR}={text:?} is not a number of seconds from 1 to \
                     {MAX_TRIAL_SECONDS} (an hour); set it to, say, 60, or unset it for the \
                     default of {default} seconds"
                ))
            }),
    }
}

/// Sets this process's budget of the runs of the migrations in memory from
/// `QBTIME_TRIAL_SECONDS` ([`trial_seconds_from`]); a value that is not
/// UTF-8 is bad input (exit 2), not passed over for the default (rvCN).
/// Only a command that runs them reads it (`Task::runs_migrations_in_memory`).
pub fn set_trial_seconds_from_env() -> Result<()> {
    let value = match std::env::var(TRIAL_VAR) {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(value)) => {
            return Err(Exit::CouldNotRun.error(anyhow::anyhow!(
                "{TRIAL_VAR}={:?} is not UTF-8; set it to a number of seconds from 1 to \
                 {MAX_TRIAL_SECONDS} (an hour), or unset it for the default of {} seconds",
                value.to_string_lossy(),
                d1_core::fk_actions::TRIAL_SECONDS
            )));
        }
    };
    let seconds = trial_seconds_from(value.as_deref())?;
    d1_core::fk_actions::set_trial_seconds(seconds);
    Ok(())
}

/// How an in-memory run of the migrations meets an interrupt (Ctrl-C,
/// SIGTERM, SIGHUP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInterrupt {
    /// It stops the run, and the command exits as interrupted: a guard's
    /// run, a verification's, a plan's. After Ctrl-C a user expects the
    /// command to stop at once, not once the migrations have run (rvMD 3).
    Stop,
    /// The run finishes all the same (each statement still held to its
    /// limit): the way back an interrupted command prints on its way out,
    /// which, stopped there, named every trigger as a bypass (MA,
    /// [`d1_core::gate::Gate::memory_to_finish`]).
    Finish,
}

impl OnInterrupt {
    /// The gated database in memory the migrations run in, its
    /// statements stopped at the end of the run's budget, its time or its
    /// memory ([`d1_core::fk_actions::trial_ends`],
    /// [`d1_core::fk_actions::trial_memory`], the plan's trial's).
    fn gate(self) -> rusqlite::Result<Trial> {
        let gate = match self {
            OnInterrupt::Stop => d1_core::gate::Gate::memory(),
            OnInterrupt::Finish => d1_core::gate::Gate::memory_to_finish(),
        }?;
        let ends = d1_core::fk_actions::trial_ends();
        let ceiling = d1_core::fk_actions::trial_memory();
        gate.until(ends, ceiling);
        Ok((gate, ends, ceiling))
    }
}

/// An in-memory run of the migrations: its gate, and when and past how
/// much memory its statements stop ([`OnInterrupt::gate`]).
type Trial = (
    d1_core::gate::Gate,
    std::time::Instant,
    Option<d1_core::room::MemoryCeiling>,
);

/// One migration (`name`, `sql`) run in an in-memory `gate` as D1 runs it
/// ([`run_as_d1_does`]), one statement at a time as the plan's trial reads
/// them, so that one stopped by the run's budget (`ends`, `ceiling`) is
/// named: [`d1_core::fk_actions::Unfinished`] (rvBT 1: a statement that
/// never ended held `backup`, `verify` and `migrate` without limit; NL: one
/// past the memory was a migration that does not run here). A migration
/// whose statements cannot be read so runs whole.
fn run_in_time((gate, ends, ceiling): &Trial, name: &str, sql: &str) -> Result<()> {
    let db = gate.db();
    let _ = gate.take_denied();
    let statements: Option<Vec<String>> = d1_sql::statements::Statements::new(sql.as_bytes())
        .map(|s| s.ok().map(|s| s.sql))
        .collect();
    let mut at = None;
    let ran = match statements {
        None => run_as_d1_does(db, sql),
        Some(statements) => db.execute_batch("BEGIN").and_then(|()| {
            for (n, statement) in statements.iter().enumerate() {
                at = Some(n + 1);
                db.execute_batch(statement)?;
            }
            at = None;
            // The migration may have ended the transaction itself.
            match db.is_autocommit() {
                true => Ok(()),
                false => db.execute_batch("COMMIT"),
            }
        }),
    };
    if ran.is_err() && !db.is_autocommit() {
        let _ = db.execute_batch("ROLLBACK");
    }
    // The gate's database in memory fails a statement that would grow it
    // past its own bound ("full": it has no disk) before the process
    // passes the ceiling.
    let stopped = match &ran {
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
            Some(d1_core::fk_actions::Bound::Memory)
        }
        Err(_) => d1_core::fk_actions::stopped_by(*ends, *ceiling),
        Ok(()) => None,
    };
    if let (Err(_), Some(why)) = (&ran, gate.take_denied()) {
        return Err(not_in_d1(name, at, &why));
    }
    match (ran, stopped) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(by)) => {
            let at = match at {
                Some(n) => format!("{name}: its statement {n}"),
                None => name.to_owned(),
            };
            Err(d1_core::fk_actions::Unfinished { at, by }.into())
        }
        (Err(e), None) => match at.filter(|_| d1_core::fk_actions::fails_in_d1(&e.to_string())) {
            Some(n) => Err(anyhow::anyhow!(from_nothing_fails(name, n, &e))),
            None => Err(anyhow::Error::from(e)
                .context(format!("the migration {name} does not run in SQLite here"))),
        },
    }
}

/// Why migration `name` does not run in D1: its statement `at` (or, its
/// statements unread, the migration) does what the gate denies a
/// migration as D1 does (`why`: a function D1 does not allow).
fn not_in_d1(name: &str, at: Option<usize>, why: &d1_core::gate::Refusal) -> anyhow::Error {
    let what = match at {
        Some(n) => format!("its statement {n}"),
        None => "it".to_owned(),
    };
    anyhow::anyhow!(
        "the migration {name} does not run in D1, which refuses {what}: {why}. Fix the \
         migration"
    )
}

/// Why migration `name` stopped a run of the migrations, which starts
/// from an empty database, at its statement `n` for SQLite's `why` (a
/// name not there or already there, [`d1_core::fk_actions::fails_in_d1`]):
/// D1 fails it so too, and the fix is in the migration. A data-only
/// backup of a database it applied to by hand ended "does not run in
/// SQLite here" and advised a verify that fails the same way (OI 2).
fn from_nothing_fails(name: &str, n: usize, why: &rusqlite::Error) -> String {
    format!(
        "the migration {name} cannot apply to an empty database: its statement {n} fails on an \
         empty database with every migration before it applied ({why}), and so it does in D1 \
         (a `restore --clean` applies every migration so). Fix it to apply from nothing as \
         well: a misspelt name, or, if it assumes what an older migration or a change made by \
         hand left, `DROP INDEX IF EXISTS`, `CREATE ... IF NOT EXISTS`, or what it needs made \
         before it"
    )
}

/// Whether `e` is a run of the migrations stopped by its budget, of time
/// or memory.
fn is_unfinished(e: &anyhow::Error) -> bool {
    e.downcast_ref::<d1_core::fk_actions::Unfinished>()
        .is_some()
}

/// `e`, or, once a signal has come, the interrupt that stopped the run:
/// a migration stopped by Ctrl-C is no migration that cannot run here,
/// which a guard would refuse as such.
fn or_interrupted(e: anyhow::Error) -> anyhow::Error {
    match d1_core::interrupt::received() {
        Some(signal) => d1_core::interrupt::Interrupted(signal).into(),
        None => e,
    }
}

/// The `d1_migrations` table as the pinned wrangler makes it before it
/// applies a migration (cli.js, `getCreateMigrationsTableQuery`, to the
/// blank), made first in the in-memory run of [`run_for_triggers`], so
/// that [`Required::schema`] holds it and a dump's is compared with it as
/// a migration's table is: no migration makes it, and the schema guard
/// never looked at it, so a dump whose `d1_migrations` had `CHECK (name <
/// '0005')` restored without a word, and every later migration failed.
pub const WRANGLERS_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS \"d1_migrations\"(
\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,
\t\tname       TEXT UNIQUE,
\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);";

/// What restore's trigger guard and verify hold a backup's triggers to
/// ([`triggers_required`]).
pub struct Required {
    /// The triggers of the migrations counted as applied that ran here.
    pub made: BTreeMap<String, MadeTrigger>,
    /// Why the rest is unknown: the first migration counted as applied
    /// that cannot be read or does not run here (the error names it), or
    /// the directory that cannot be read. `made` holds the triggers of
    /// those before it, which are required all the same (LN: a broken
    /// migration used to excuse them all).
    pub unrun: Option<anyhow::Error>,
    /// The migrations the backup's records leave out although its dump
    /// holds a table or a trigger that they (or a later migration)
    /// create: counted as applied, whatever the records say.
    pub unrecorded: Vec<String>,
    /// The tables and indexes that the migrations of `made` leave in
    /// `sqlite_schema` when run, by name: what a dump's must be
    /// ([`d1_core::catalog::schema_changes`]). Of those that ran, when one
    /// did not (`unrun`).
    pub schema: BTreeMap<String, d1_core::catalog::Defined>,
}

impl Required {
    /// Why the triggers of `made` are required although the backup's
    /// records leave their migrations out, or a migration that does not
    /// run here came after them: each reason a sentence's clause, for a
    /// refusal or a warning that lists the triggers.
    pub fn why(&self) -> Vec<String> {
        let mut why = Vec::new();
        if !self.unrecorded.is_empty() {
            why.push(format!(
                "they are required all the same: {}",
                unrecorded_said(&self.unrecorded)
            ));
        }
        if let Some(e) = &self.unrun {
            why.push(format!(
                "they are those of the migrations that ran before one that cannot be run here \
                 ({}): the triggers of that one and of those after it are unknown, not none",
                unrun_said(e)
            ));
        }
        why
    }
}

/// Why a migration could not be run (`e`), as a refusal quotes it: without
/// the end that a refusal of its own (a pipe in `migrations/`) gives it.
pub fn unrun_said(e: &anyhow::Error) -> String {
    let why = format!("{e:#}");
    { why.trim_end_matches(" Nothing was done.") }
        .trim_end_matches('.')
        .to_owned()
}

/// The migrations a backup records as applied, which its triggers and
/// schema are held to ([`triggers_required`]): its manifest's, or without
/// one the names in its dump's own `d1_migrations` rows (`rows`); `None`
/// (a dump with none, or a manifest that records none): every migration
/// in the directory. The one rule restore refuses by and verify warns by
/// (MP: verify held a dump without a manifest to every migration, and
/// warned of an older schema restore accepted, and passed one it refused).
pub fn applied_recorded<'a>(
    manifest: Option<&'a d1_core::manifest::Manifest>,
    rows: &'a [String],
) -> Option<&'a [String]> {
    match manifest {
        Some(m) => m.applied_migrations(),
        None => (!rows.is_empty()).then_some(rows),
    }
}

/// The triggers a backup must hold: those of the migrations it records as
/// applied (`applied`; `None`, every migration in `dir`, as
/// [`triggers_made`] runs them), and of every migration up to the last
/// whose tables or triggers its dump holds (`held`, names), whatever its
/// records say. Records are the backup's word (its manifest's list, its
/// dump's `d1_migrations` rows): a forged `"migrations": []` with the
/// triggers cut from the dump used to be restored without them, where the
/// same dump without a manifest was refused (LN). Migrations run in
/// order, so a dump that holds what one creates has had those before it
/// too. The migrations the records leave out so are
/// [`Required::unrecorded`]: a record inconsistent with its dump, after
/// which `migrate` would apply them again and fail.
pub fn triggers_required(applied: Option<&[String]>, dir: &Path, held: &[String]) -> Required {
    triggers_required_as(applied, dir, held, OnInterrupt::Stop)
}

/// [`triggers_required`], its run in memory meeting an interrupt as `on`
/// says: [`OnInterrupt::Finish`] for a way back.
pub fn triggers_required_as(
    applied: Option<&[String]>,
    dir: &Path,
    held: &[String],
    on: OnInterrupt,
) -> Required {
    let present = match migrations_present(dir) {
        Ok(present) => present,
        Err(e) => {
            return Required {
                made: BTreeMap::new(),
                unrun: Some(e),
                unrecorded: Vec::new(),
                schema: BTreeMap::new(),
            };
        }
    };
    let (names, unrecorded, ran) = match applied {
        None => (present, Vec::new(), None),
        Some(applied) => {
            // Every migration here runs once, in order, to learn which the
            // dump has had; the run of those counted as applied is the
            // start of that one when they are its first (a backup of every
            // migration up to some point), and only otherwise a run of its
            // own (rvMD 2: they ran twice, and again for the schema guard).
            let held: BTreeSet<String> = held.iter().map(|n| n.to_ascii_lowercase()).collect();
            let (mut steps, failed, through) = run_watching(dir, &present, on, &held);
            let unrecorded: Vec<String> = { present[..through].iter() }
                .filter(|name| !applied.contains(name))
                .cloned()
                .collect();
            let names: Vec<String> = { present.iter() }
                .filter(|name| applied.contains(name) || unrecorded.contains(name))
                .cloned()
                .collect();
            let done = steps.len() - 1;
            let ran = match (present[..names.len()] == names[..], failed) {
                // Out of time, even in a migration not applied: what it and
                // those after it make is not known, nor whether the dump
                // has had them, and a second run would only run out again
                // (rvBT 1).
                (prefix, Some(e)) if is_unfinished(&e) => Some(match prefix {
                    true => (steps.swap_remove(names.len().min(done)), Some(e)),
                    false => (Made::default(), Some(e)),
                }),
                (true, _) if names.len() <= done => Some((steps.swap_remove(names.len()), None)),
                (true, failed) => Some((steps.swap_remove(done), failed)),
                (false, _) => None,
            };
            (names, unrecorded, ran)
        }
    };
    let (made, unrun, schema) = match ran {
        Some((made, unrun)) => (made.made, unrun, made.schema),
        None => run_for_triggers(dir, &names, on),
    };
    // Said even with -q, where a skipped check is counted, not told: the
    // user must bound that statement before D1 stops it.
    if let Some(e) = unrun.as_ref().filter(|e| is_unfinished(e)) {
        warn_once(&format!(
            "the triggers and schema the migrations make are not known, so the check that a \
             backup holds them cannot be made: {e}"
        ));
    }
    Required {
        made,
        unrun,
        unrecorded,
        schema,
    }
}

/// The names [`triggers_required`] takes as what a dump holds: its
/// tables' and its triggers'.
pub fn held_names<'a>(
    tables: impl IntoIterator<Item = &'a String>,
    triggers: &'a BTreeMap<String, String>,
) -> Vec<String> {
    { tables.into_iter().chain(triggers.keys()) }
        .cloned()
        .collect()
}

/// The migrations of [`Required::unrecorded`] as a message names them:
/// the backup's records say they are not applied, but its dump holds what
/// they create, so `migrate` would apply them again after a restore, and
/// fail.
pub fn unrecorded_said(unrecorded: &[String]) -> String {
    let n = unrecorded.len();
    let (_, are) = d1_core::wording::they_are(n);
    let them = d1_core::wording::them(n);
    let shown: Vec<String> = { unrecorded.iter() }
        .map(|name| d1_core::names::shown(name).into_owned())
        .collect();
    format!(
        "its records (its manifest's migrations, its dump's d1_migrations rows) say {} {are} not \
         applied, but its dump holds tables or triggers made by {them} or by a later migration: \
         the records are inconsistent with the dump, and after a restore `migrate` would apply \
         {them} again and fail (table … already exists). Counted as applied here, so {} \
         triggers are required",
        shown.join(", "),
        if n == 1 { "its" } else { "their" }
    )
}

/// Each trigger of `db`: its text and the table it is on, by name.
fn triggers_with_tables(db: &rusqlite::Connection) -> Result<BTreeMap<String, (String, String)>> {
    let mut stmt = db.prepare(
        "SELECT name, sql, tbl_name FROM sqlite_master WHERE type = 'trigger' AND sql NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How a backup's tables and indexes differ from its migrations'
/// (`changes`, against `made`, [`Required::schema`]), as restore refuses
/// them and verify warns of them, in the same words: each object by kind
/// and escaped name, never a value, and the flags that restore it as it is.
pub fn schema_changes_said(
    changes: &d1_core::catalog::SchemaChanges,
    made: &BTreeMap<String, d1_core::catalog::Defined>,
) -> String {
    format!(
        "{}. A table's constraints and indexes act on every later write, after a restore's \
         checks, so restore refuses this backup as it stands; if the change is meant, it \
         belongs in a migration, or, having read the dump's definitions, restore it with{}",
        schema_changes_what(changes, made).join(", and "),
        schema_change_flags(changes)
    )
}

/// The same changes as verify warns of them on every backup of a database
/// that has them (MR: the paragraph above, ~560 characters, every night):
/// what differs, and the flag restore takes; `-v` adds why
/// ([`schema_changes_said`]).
pub fn schema_changes_short(
    changes: &d1_core::catalog::SchemaChanges,
    made: &BTreeMap<String, d1_core::catalog::Defined>,
) -> String {
    if crate::out::verbose() {
        return schema_changes_said(changes, made);
    }
    format!(
        "{}; restore refuses it without{} (-v says why)",
        schema_changes_what(changes, made).join(", and "),
        schema_change_flags(changes)
    )
}

/// What [`schema_changes_said`] names: each kind of change, a clause.
fn schema_changes_what(
    changes: &d1_core::catalog::SchemaChanges,
    made: &BTreeMap<String, d1_core::catalog::Defined>,
) -> Vec<String> {
    let named = |names: &[String]| -> String {
        let shown: Vec<String> = { names.iter() }
            .map(|n| {
                let kind = same_name(made.keys(), n).map_or("table", |m| made[m].kind.as_str());
                format!("{kind} {}", d1_core::names::shown_name(n))
            })
            .collect();
        shown.join(", ")
    };
    let mut what = Vec::new();
    // A name no migration makes is a UNIQUE index of
    // [`d1_core::catalog::unmade_indexes`].
    let (otherwise, unmade): (Vec<String>, Vec<String>) = { changes.changed.iter() }
        .cloned()
        .partition(|n| same_name(made.keys(), n).is_some());
    if !otherwise.is_empty() {
        what.push(format!(
            "defines {} otherwise than its migrations do (another CHECK, DEFAULT, UNIQUE, \
             FOREIGN KEY, collation or column; d1_migrations as wrangler makes it)",
            named(&otherwise)
        ));
    }
    if !unmade.is_empty() {
        let shown: Vec<String> = { unmade.iter() }
            .map(|n| d1_core::names::shown_name(n).into_owned())
            .collect();
        what.push(format!(
            "makes {}, which no migration makes, constraining writes to a table its migrations \
             make (a UNIQUE index on it, or a table whose FOREIGN KEY refers to it)",
            shown.join(", ")
        ));
    }
    if !changes.missing.is_empty() {
        what.push(format!(
            "lacks {}, which its migrations make on a table it holds",
            named(&changes.missing)
        ));
    }
    what
}

/// What a dump defines (`defined`: by name, its `CREATE` text) that cannot
/// be compared with its migrations when one of them does not run here:
/// each table, view and index defined otherwise than those that ran make
/// it (`ran`), or that they do not make, and each index of theirs it
/// lacks. Restore refuses them unless `--allow-schema-change` names them
/// (it used to compare nothing then, and restore them with a warning).
pub fn uncompared(
    defined: &BTreeMap<String, String>,
    ran: &BTreeMap<String, d1_core::catalog::Defined>,
) -> Vec<String> {
    let changes = d1_core::catalog::schema_changes_constraining(defined, ran);
    let unmade = { defined.keys() }.filter(|n| same_name(ran.keys(), n).is_none());
    let mut uncompared: Vec<String> = { changes.changed.iter() }
        .chain(&changes.missing)
        .chain(unmade)
        .cloned()
        .collect();
    uncompared.sort();
    uncompared.dedup();
    uncompared
}

/// ` --allow-schema-change NAME` for each table and index of `changes`.
pub fn schema_change_flags(changes: &d1_core::catalog::SchemaChanges) -> String {
    flags(
        "--allow-schema-change",
        changes.changed.iter().chain(&changes.missing),
    )
}

/// The texts of `made`, by name, as [`d1_core::catalog::foreign_triggers`]
/// compares them.
pub fn texts(made: &BTreeMap<String, MadeTrigger>) -> BTreeMap<String, String> {
    { made.iter() }
        .map(|(n, m)| (n.clone(), m.sql.clone()))
        .collect()
}

/// The name among `names` that is `name` as SQLite finds names (ASCII case
/// ignored): `AUDIT_LOG_NO_DELETE` is the trigger `audit_log_no_delete`.
pub fn same_name<'a>(
    names: impl IntoIterator<Item = &'a String>,
    name: &str,
) -> Option<&'a String> {
    { names.into_iter() }.find(|n| n.eq_ignore_ascii_case(name))
}

/// The triggers of `triggers` under a name that a migration in `dir` (any
/// of them) gives a trigger of another text, each with that migration's
/// trigger's name: that migration's trigger changed, which
/// `--allow-trigger` never installs. Names match as SQLite matches them,
/// ASCII case ignored, so `AUDIT_LOG_NO_DELETE` shadows
/// `audit_log_no_delete`.
pub fn triggers_changed_from_migrations(
    dir: &Path,
    triggers: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>> {
    let made = texts(&triggers_made(None, dir)?);
    let named: BTreeMap<String, String> = { triggers.iter() }
        .filter(|(name, _)| same_name(made.keys(), name).is_some())
        .map(|(n, sql)| (n.clone(), sql.clone()))
        .collect();
    Ok(
        { d1_core::catalog::foreign_triggers(&named, &made).into_iter() }
            .filter_map(|n| Some((n.clone(), same_name(made.keys(), &n)?.clone())))
            .collect(),
    )
}

/// The triggers of `made` (the migrations') on a table among `tables` (a
/// dump's) that `triggers` (the dump's) lacks under any case of its name:
/// restored, the database would be without them.
pub fn missing_triggers<'a>(
    made: &'a BTreeMap<String, MadeTrigger>,
    triggers: &BTreeMap<String, String>,
    tables: &[String],
) -> Vec<(&'a String, &'a MadeTrigger)> {
    { made.iter() }
        .filter(|(_, m)| same_name(tables, &m.table).is_some())
        .filter(|(n, _)| same_name(triggers.keys(), n).is_none())
        .collect()
}

/// The triggers of [`missing_triggers`] as a message lists them: each with
/// the table it is on and the migration that creates it.
pub fn missing_said(missing: &[(&String, &MadeTrigger)]) -> String {
    // Each name read from a dump is cut, not the item: cut whole at 120
    // characters, it lost the migration's name, what to fix (LR).
    let shown: Vec<String> = { missing.iter() }
        .map(|(n, m)| {
            format!(
                "{} on {} ({})",
                d1_core::names::shown_cut(n),
                d1_core::names::shown_cut(&m.table),
                d1_core::names::shown(&m.migration)
            )
        })
        .collect();
    d1_core::wording::listed_as_shown(&shown, "trigger")
}

/// ` --allow-trigger NAME` for each of `names`, quoted for the shell: the
/// triggers a restore installs though no migration creates them.
pub fn allow_trigger_flags(names: &[String]) -> String {
    flags("--allow-trigger", names)
}

/// ` FLAG NAME` for each of `names`, quoted for the shell.
pub fn flags<'a>(flag: &str, names: impl IntoIterator<Item = &'a String>) -> String {
    { names.into_iter() }
        .map(|n| format!(" {flag} {}", d1_core::wording::shell_word(n)))
        .collect()
}

/// Trigger names as a message lists them: escaped as every name read from
/// a database is ([`d1_core::names::shown`]: `t\u{a}nl`, not Rust's
/// `t\nnl`), and cut after [`d1_core::wording::NAMES_SHOWN`] with how many
/// more.
pub fn trigger_names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<String> = { names.into_iter() }
        .map(|n| d1_core::names::shown_name(n).into_owned())
        .collect();
    d1_core::wording::listed(&names, "trigger")
}

/// The statements of the schema that every migration in `dir` makes, run
/// in memory as [`schema_created_by`] runs them ([`d1_core::catalog::schema_sql`]).
pub fn schema_sql_of(dir: &Path) -> Result<Vec<String>> {
    let gate = run_in_memory(&read_migrations(dir, &migration_files(dir)?)?)?;
    Ok(d1_core::catalog::schema_sql(gate.db())?)
}

/// The texts of the migrations `names` in `dir`, in that order.
pub fn read_migrations(dir: &Path, names: &[String]) -> Result<Vec<(String, String)>> {
    names
        .iter()
        .map(|name| {
            let text = crate::edge::fsutil::read_text(&dir.join(name), "migration")?;
            Ok((name.clone(), text))
        })
        .collect()
}

/// The tables and the triggers that running `migrations` (name, text) in
/// order makes, each as SQLite stores it, by name. They run in memory, as
/// this tool's own statements on a gated connection: ALTER TABLE and the
/// math functions run as in D1, and what D1 refuses (`ATTACH`, `VACUUM
/// INTO`, which would write files) fails. `Err` names the migration that
/// does not run here.
pub fn schema_created_by(
    migrations: &[(String, String)],
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let gate = run_in_memory(migrations)?;
    Ok((
        d1_core::catalog::created_in(gate.db(), "table"),
        d1_core::catalog::created_in(gate.db(), "trigger"),
    ))
}

/// `migrations` (name, text) run in order in memory, as
/// [`schema_created_by`] says, each as D1 runs it ([`run_as_d1_does`]).
fn run_in_memory(migrations: &[(String, String)]) -> Result<d1_core::gate::Gate> {
    let gate = OnInterrupt::Stop.gate()?;
    for (name, sql) in migrations {
        run_in_time(&gate, name, sql).map_err(or_interrupted)?;
    }
    Ok(gate.0)
}

/// One migration's `sql` run in `db` in a transaction of its own, as D1
/// runs a migration (one query, all or nothing), so that a deferred
/// foreign key (a cycle's rows, a child seeded before its parent) is
/// checked at the migration's end, not at each statement's. Every replay
/// of the migrations runs each so.
pub fn run_as_d1_does(db: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    let ran = db
        .execute_batch("BEGIN")
        .and_then(|()| db.execute_batch(sql))
        .and_then(|()| db.execute_batch("COMMIT"));
    if ran.is_err() && !db.is_autocommit() {
        let _ = db.execute_batch("ROLLBACK");
    }
    ran
}

/// How a dump's own `d1_migrations` rows (`recorded`) differ from the
/// migration `files` of today, said with the names of `files` and a count
/// only (the dump's rows are its values, which a message never quotes);
/// `None` when they name the same migrations, compared as sets (wrangler's
/// order of applying unpadded names is not the directory's), or when the
/// dump records none, which tells nothing. `restore --clean` refuses such
/// a dump, and verify fails it, loaded as that restore loads it.
pub fn dump_records_others(recorded: &[String], files: &[String]) -> Option<String> {
    let same = recorded.len() == files.len() && files.iter().all(|f| recorded.contains(f));
    if recorded.is_empty() || same {
        return None;
    }
    let after: Vec<&str> = files
        .iter()
        .filter(|f| !recorded.contains(f))
        .map(String::as_str)
        .collect();
    let unknown = recorded.iter().filter(|r| !files.contains(r)).count();
    let mut differs = Vec::new();
    if !after.is_empty() {
        differs.push(format!(
            "it records none of {} (--clean would empty what {} made, and load none of it back)",
            after.join(", "),
            if after.len() == 1 {
                "that migration"
            } else {
                "those migrations"
            }
        ));
    }
    if unknown > 0 {
        differs.push(format!(
            "it records {} that the migrations directory does not hold",
            count(unknown, "migration"),
        ));
    }
    if differs.is_empty() {
        differs.push("it records one of them more than once".to_owned());
    }
    Some(differs.join("; "))
}

/// After migrations: the tables whose rows the pre-migration backup counted
/// (`before`) and that now hold fewer, or are gone, as
/// `(table, before, now)`. D1 enforces foreign keys whatever a migration
/// says, so a `DROP TABLE` in a table's redefinition (Prisma's) deletes its
/// rows and cascades to the tables that reference it; nothing else would
/// tell. Counted from the local D1's file, or with two read-only queries.
pub fn rows_lost(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    before: &BTreeMap<String, u64>,
) -> Result<Vec<(String, u64, Option<u64>)>> {
    const PURPOSE: &str = "count the rows after the migrations (read-only)";
    let wrangler;
    let cmds = project.commands();
    let reader = match local_d1::existing_file(&project.config_dir, env) {
        Some(file) => DatabaseReader::File(file, &env.name),
        None => {
            wrangler = project.wrangler(sh)?;
            DatabaseReader::Wrangler(&wrangler, &cmds, env)
        }
    };
    let tables = reader.query(
        PURPOSE,
        "SELECT name FROM sqlite_master WHERE type = 'table'",
    )?;
    // By name as SQLite matches them, ignoring ASCII case (a Prisma
    // redefinition may bring `notes` back as `Notes`).
    let now: BTreeSet<String> = crate::edge::reader::column_texts(&tables, "name")
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let had: Vec<(&String, u64)> = before
        .iter()
        .filter(|(t, n)| **n > 0 && !is_never_counted(t))
        .map(|(t, n)| (t, *n))
        .collect();
    let (kept, gone): (Vec<_>, Vec<_>) = had
        .into_iter()
        .partition(|(t, _)| now.contains(&t.to_ascii_lowercase()));
    let mut lost: Vec<(String, u64, Option<u64>)> = gone
        .into_iter()
        .map(|(t, n)| (t.clone(), n, None))
        .collect();
    if !kept.is_empty() {
        let tables: Vec<&str> = kept.iter().map(|(t, _)| t.as_str()).collect();
        let counts = reader.row_counts(PURPOSE, &tables)?;
        for ((table, n), after) in kept.into_iter().zip(counts) {
            if after < n {
                lost.push((table.clone(), n, Some(after)));
            }
        }
    }
    lost.sort();
    Ok(lost)
}

/// Tables whose rows are not the app's: SQLite's, D1's, wrangler's.
fn is_never_counted(table: &str) -> bool {
    let lower = table.to_ascii_lowercase();
    lower.starts_with("sqlite_") || lower.starts_with("_cf_") || lower == "d1_migrations"
}

/// The migrations recorded in the database's `d1_migrations`, in the
/// order they were applied; none when the table does not exist yet. A
/// local D1 is read from its file when it has one; otherwise wrangler asks
/// for the rows at once, and "no such table" means none.
pub fn applied_migrations(sh: &Shell, project: &Project, env: &Environment) -> Result<Vec<String>> {
    const PURPOSE: &str = "read the applied migrations (read-only)";
    // Through a link on the way to the local D1 they would be another
    // checkout's, and the plan would describe that database.
    local_d1::refuse_linked_env(&project.config_dir, env)?;
    let rows = format!(
        "SELECT name FROM {} ORDER BY id",
        statement::MIGRATIONS_TABLE
    );
    let json = match local_d1::existing_file(&project.config_dir, env) {
        Some(file) => {
            let reader = DatabaseReader::File(file, &env.name);
            let has_table = reader.query(
                PURPOSE,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'd1_migrations'",
            )?;
            let has_table = !crate::edge::reader::result_rows(&has_table, 0).is_empty();
            if !has_table {
                return Ok(Vec::new());
            }
            reader.query(PURPOSE, &rows)?
        }
        None => {
            let wrangler = project.wrangler(sh)?;
            let query = project.commands().query_json(env, PURPOSE, &rows);
            let missing = format!("no such table: {}:", statement::MIGRATIONS_TABLE);
            match wrangler.run_json_unless(&query, &missing)? {
                Some(json) => json,
                None => {
                    crate::detail!(
                        "{} has no {} table yet: no migration has been applied",
                        env.database_name,
                        statement::MIGRATIONS_TABLE
                    );
                    return Ok(Vec::new());
                }
            }
        }
    };
    Ok(crate::edge::reader::column_texts(&json, "name"))
}

/// What `migrate` would do to one environment: its migrations, the
/// applied ones and the pending ones.
pub struct MigrationPlan<'e> {
    pub env: &'e Environment,
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub applied: Vec<String>,
    pub pending: Vec<String>,
    /// The digest of each pending migration's bytes as the plan read them,
    /// to refuse an edit made before they are applied
    /// ([`unchanged_since_planned`]).
    pub pending_digests: BTreeMap<String, FileDigest>,
    /// What the pending migrations change through foreign key actions
    /// ([`side_writes`]), or why that is not known.
    pub side_writes: Result<d1_core::fk_actions::Found, String>,
}

/// Migration files by name, with the digests a read found them with.
pub type FilesRead = (Vec<String>, BTreeMap<String, FileDigest>);

/// The plan of a database with no migration applied (`restore
/// --clean`'s target), from `dir`'s files and their digests as an earlier
/// read found them (`files`), for [`stage`] to copy those bytes alone.
pub fn plan_of_all<'e>(
    env: &'e Environment,
    dir: &Path,
    (files, pending_digests): FilesRead,
) -> MigrationPlan<'e> {
    MigrationPlan {
        env,
        dir: dir.to_path_buf(),
        pending: files.clone(),
        files,
        applied: Vec::new(),
        pending_digests,
        side_writes: Err("not read for a database with no migration applied".to_owned()),
    }
}

/// Reads the target's applied migrations and refuses (exit 3) when one of
/// them has changed in `migrations/` since it was applied, or when a
/// pending one is not what this machine's record says it was applied as
/// ([`refuse_pending_recorded_otherwise`]).
pub fn plan<'e>(sh: &Shell, project: &Project, env: &'e Environment) -> Result<MigrationPlan<'e>> {
    let dir = project.config_dir.join(&env.migrations_dir);
    let files = migration_files(&dir)?;
    let applied = applied_migrations(sh, project, env)?;
    let record = record_for(sh, project, env)?;
    if let Some(report) = edited_against(record.as_ref(), env, &dir, &applied) {
        crate::stop!(
            Exit::Refused,
            "refusing to migrate {}: {report} Nothing was done.",
            env.database_name,
        );
    }
    let pending = pending(&files, &applied);
    let pending_digests = digests(&dir, &pending);
    refuse_pending_recorded_otherwise(env, (&dir, &files), &pending_digests, record.as_ref())?;
    let side_writes =
        side_writes(sh, project, env, &dir, (&applied, &pending)).map_err(|e| format!("{e:#}"));
    Ok(MigrationPlan {
        env,
        dir,
        files,
        applied,
        pending,
        pending_digests,
        side_writes,
    })
}

/// Which of `env`'s `applied` migrations have changed in `dir` since they
/// were applied, as the record of its newest backup has them, and which
/// are gone from `dir` (another branch's, as its d1_migrations names them,
/// recorded or not), told with what to do instead, in the words of
/// `migrate --check`; `None` when none has.
pub fn edited_since_applied(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    dir: &Path,
    applied: &[String],
) -> Result<Option<String>> {
    let record = record_for(sh, project, env)?;
    Ok(edited_against(record.as_ref(), env, dir, applied))
}

/// [`edited_since_applied`]'s report, against `record` read already.
fn edited_against(
    record: Option<&Record>,
    env: &Environment,
    dir: &Path,
    applied: &[String],
) -> Option<String> {
    let current = digests(dir, applied);
    let source = match record {
        Some(r) => format!("{} and {}'s d1_migrations", r.source, env.database_name),
        None => format!("{}'s d1_migrations", env.database_name),
    };
    let edited = edited_or_missing(applied, &current, record);
    let (edited, _) = told_if_from_bucket(edited, record, dir, env);
    let database = env.database_name.as_str();
    (!edited.is_empty()).then(|| edited_report(&edited, dir, (&source, database)))
}

/// Refuses (exit 3), a dry run too and before the pre-migration backup
/// (`migrate`'s and `deploy`'s, which plan with [`plan`]), a pending
/// migration whose file is not what `record`, this machine's record of
/// what was applied, says it was applied as: one applied, recorded by a
/// backup, rolled back by a restore to before it, then edited. Applied
/// again under its own name, it used to go through without a word (only
/// applied migrations were compared), and the next backup recorded the
/// first text (the record of a name is the oldest backup's, which a
/// planted manifest cannot replace: [`record_in`]), so every later
/// `migrate` was refused "put it back as it was", a text the database no
/// longer had. Every database that applied the first text (another
/// developer's, staging) would never get the edit either: the fix goes in
/// a new migration file, named here. A record read from the bucket is
/// anyone's to write who holds its token: warned of, as
/// [`told_if_from_bucket`] does, not refused.
fn refuse_pending_recorded_otherwise(
    env: &Environment,
    (dir, files): (&Path, &[String]),
    pending_digests: &BTreeMap<String, FileDigest>,
    record: Option<&Record>,
) -> Result<()> {
    let Some(record) = record else {
        return Ok(());
    };
    let pending: Vec<String> = pending_digests.keys().cloned().collect();
    let edited = edited_migrations(&record.sha256, &pending, pending_digests);
    if edited.is_empty() {
        return Ok(());
    }
    let n = edited.len();
    let them = d1_core::wording::them(n);
    let new_files: Vec<String> = { edited.iter().enumerate() }
        .map(|(i, e)| next_migration_name(files, &e.name, i))
        .collect();
    let said = format!(
        "{} pending in {} {} recorded as applied with another text (rolled back since? a \
         restore of a backup taken before {them} leaves {them} pending): {}; recorded in {}. \
         D1 records migrations by name only, so a database that applied the first text \
         (another developer's, staging) would never get this one, and this machine's record \
         keeps the first, so every later `migrate` would refuse it. Never edit a migration \
         under the same name once applied: make the fix a new migration file ({}), and leave \
         {them} as {} first applied (or delete {them} if no database still has {them} \
         applied). {}",
        count(n, "migration"),
        dir.display(),
        if n == 1 { "was" } else { "were" },
        changed_lines(&edited),
        record.source,
        new_files.join(", "),
        if n == 1 { "it was" } else { "they were" },
        where_the_edit_shows(&changed_paths(&edited, dir)),
    );
    if record.from_bucket {
        warn_once(&format!(
            "{said} That record was read from the bucket, anyone's to write who holds its \
             object token: this is not a refusal."
        ));
        return Ok(());
    }
    crate::stop!(
        Exit::Refused,
        "refusing to migrate {}: {said} Nothing was done; no backup was taken.",
        env.database_name
    );
}

/// The name of the new migration file to make a fix of `edited` in: the
/// number after the highest of `files` (plus `later`, for the fixes
/// before it), as wide as `edited`'s, and the rest of its name
/// (`0005_extra.sql` with 0005 the last: `0006_extra.sql`).
fn next_migration_name(files: &[String], edited: &str, later: usize) -> String {
    let highest = { files.iter() }
        .filter_map(|f| parse_int(f))
        .fold(0.0, f64::max);
    let digits = edited.bytes().take_while(u8::is_ascii_digit).count();
    let rest = edited.split_once('_').map_or(edited, |(_, rest)| rest);
    let number = highest as u64 + 1 + later as u64;
    format!("{number:0width$}_{rest}", width = digits.max(1))
}

/// Of `edited` ([`edited_or_missing`]), those to refuse, and how many
/// were only warned about: with a `record` read from the bucket, an
/// applied migration whose file differs from it is told
/// ([`bucket_edit_warning`]), not refused, since anyone holding the
/// bucket's object token can write that record. One gone from `dir` is
/// refused all the same: that needs no record.
pub fn told_if_from_bucket(
    edited: Vec<EditedMigration>,
    record: Option<&Record>,
    dir: &Path,
    env: &Environment,
) -> (Vec<EditedMigration>, usize) {
    let Some(record) = record.filter(|r| r.from_bucket) else {
        return (edited, 0);
    };
    let (changed, refused): (Vec<EditedMigration>, Vec<EditedMigration>) =
        edited.into_iter().partition(|e| e.now.is_some());
    if !changed.is_empty() {
        warn_once(&bucket_edit_warning(&changed, dir, record, env));
    }
    (refused, changed.len())
}

/// Warns `text` unless this run has warned it already: `migrate` reads
/// the record for its plan and again for its pre-migration backup.
fn warn_once(text: &str) {
    static TOLD: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let fresh = TOLD
        .lock()
        .map_or(true, |mut told| told.insert(text.to_owned()));
    if fresh {
        crate::warn!("{text}");
    }
}

/// What an applied migration that differs from the record read from the
/// bucket (`record.source`, `r2://bucket/key`) is told as: where the record
/// came from, that it is not obeyed, and the fix for either cause.
pub fn bucket_edit_warning(
    changed: &[EditedMigration],
    dir: &Path,
    record: &Record,
    env: &Environment,
) -> String {
    format!(
        "{} already applied in {} {} from the record read from {} ({}). No verified backup of \
         {} on this machine records them, and that object is anyone's to write who holds the \
         bucket's object token, so this is not a refusal, and its record is not carried into a \
         new backup. If an applied migration was edited, add a new migration instead: put {} \
         back as {} and make the change in a new migration file. {} If none was, that object was not written by this tool's backups: find who wrote \
         it (a leaked token?); a verified backup of {} on this machine (`cargo xtask backup {}`) \
         is the record from then on.",
        count(changed.len(), "migration"),
        dir.display(),
        if changed.len() == 1 {
            "differs"
        } else {
            "differ"
        },
        record.source,
        changed_lines(changed),
        env.name,
        d1_core::wording::them(changed.len()),
        if changed.len() == 1 {
            "it was"
        } else {
            "they were"
        },
        where_the_edit_shows(&changed_paths(changed, dir)),
        env.name,
        env.name,
    )
}

/// The applied migrations whose contents differ from the record, and those
/// missing from `migrations/` (recorded as "unknown" when not already named).
/// The sha256 [`edited_or_missing`] gives an applied migration whose file
/// is gone and that no backup records.
const UNRECORDED: &str = "unknown";

pub fn edited_or_missing(
    applied: &[String],
    current: &BTreeMap<String, FileDigest>,
    record: Option<&Record>,
) -> Vec<EditedMigration> {
    let mut edited = record
        .map(|r| edited_migrations(&r.sha256, applied, current))
        .unwrap_or_default();
    for name in applied.iter().filter(|n| !current.contains_key(*n)) {
        if !edited.iter().any(|e| &e.name == name) {
            edited.push(EditedMigration {
                name: name.clone(),
                recorded: UNRECORDED.to_owned(),
                now: None,
            });
        }
    }
    edited.sort_by(|a, b| a.name.cmp(&b.name));
    edited
}

/// What the `pending` migrations change in tables they do not name,
/// through foreign key actions (see [`d1_core::fk_actions`]): prepared in
/// memory on an empty copy of the target's schema, read from the local
/// D1's file or with one read-only query. Every pending migration is
/// tried, whatever its statements: one of schema statements alone cannot
/// run an action, but may name a column that is not there, or not parse,
/// which D1 refuses too; it used to be left untried, passed the dry run,
/// and failed after the pre-migration backup, each retry another backup
/// (rvBW). A local database with no file yet has no rows for an action to
/// change: its migrations are tried on the migrations table alone, which
/// wrangler makes before it applies one, as it is added to any schema read.
/// A schema that cannot be read leaves the side writes unknown, but not
/// the guards of [`refuse_what_cannot_apply`]: the pending migrations are
/// tried on the schema the `applied` ones make ([`guarded_unread`]).
fn side_writes(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    dir: &Path,
    (applied, pending): (&[String], &[String]),
) -> Result<d1_core::fk_actions::Found> {
    const PURPOSE: &str = "read the schema the migrations apply to (read-only)";
    if pending.is_empty() {
        return Ok(Default::default());
    }
    let pending = read_migrations(dir, pending)?;
    let wrangler;
    let cmds = project.commands();
    let reader = match local_d1::existing_file(&project.config_dir, env) {
        Some(file) => Some(DatabaseReader::File(file, &env.name)),
        None if env.location == crate::config::environment::Location::Local => None,
        None => {
            wrangler = project.wrangler(sh)?;
            Some(DatabaseReader::Wrangler(&wrangler, &cmds, env))
        }
    };
    let mut schema = match reader.map(|r| r.catalog(PURPOSE)) {
        Some(Ok(catalog)) => catalog.schema_statements(),
        Some(Err(e)) => return guarded_unread(dir, applied, &pending, e),
        None => Vec::new(),
    };
    // No migration applied and no table but wrangler's record of them:
    // every migration is applied to nothing, as a first backup applies
    // them, those production may have applied too (rvCC 2).
    let from_nothing = applied.is_empty() && schema.iter().all(|sql| makes_migrations_table(sql));
    schema.push(WRANGLERS_MIGRATIONS_TABLE.to_owned());
    let mut found = d1_core::fk_actions::side_writes(&schema, &pending)?;
    if from_nothing {
        warn_of_what_d1_applies_broken(&mut found, dir);
    }
    for (name, _) in pending.iter().filter(|(_, sql)| may_limit_rows(sql)) {
        let at = format!("{name}: its statement ");
        for said in { found.unknown.iter_mut() }.filter(|s| s.starts_with(&at)) {
            *said = said.replace("(syntax error)", MAY_LIMIT_ROWS);
        }
    }
    Ok(found)
}

/// Whether `sql` is the CREATE TABLE of wrangler's `d1_migrations`.
fn makes_migrations_table(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase().replace(['"', '`', '[', ']'], "");
    let named = sql.trim_start_matches("create table ");
    let named = named.trim_start_matches("if not exists ").trim_start();
    named.starts_with("d1_migrations(") || named.starts_with("d1_migrations ")
}

/// What a syntax error is said to be in a migration that may hold an
/// UPDATE or DELETE with `ORDER BY` or `LIMIT` ([`may_limit_rows`]): no
/// parse error known, but a guess about D1.
const MAY_LIMIT_ROWS: &str = "(D1 may take it: an UPDATE or DELETE with ORDER BY or LIMIT, \
                              which D1's SQLite parses and this one does not; else a syntax error)";

/// Whether `sql` may hold an UPDATE or DELETE with `ORDER BY` or `LIMIT`,
/// which D1's SQLite takes (the local D1 applies `DELETE FROM t WHERE 0
/// LIMIT 1`) and the SQLite here does not parse (it is built without
/// `SQLITE_ENABLE_UPDATE_DELETE_LIMIT`): a syntax error in such a
/// migration is no parse error known to D1 ([`does_not_parse`]).
fn may_limit_rows(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    (sql.contains("update") || sql.contains("delete"))
        && (sql.contains("limit") || sql.contains("order"))
}

/// The guards' findings on `pending` (name, text) when the target's schema
/// could not be read (`unread`): tried on the schema the `applied`
/// migrations in `dir` make, a statement that writes the migrations table
/// or cannot complete in the trial is found as on the target's own schema
/// (NL: the guard was skipped, and `migrate --no-backup` applied one that
/// wrote d1_migrations); otherwise `unread`, as the side writes on the
/// target's rows stay unknown.
fn guarded_unread(
    dir: &Path,
    applied: &[String],
    pending: &[(String, String)],
    unread: anyhow::Error,
) -> Result<d1_core::fk_actions::Found> {
    let present: Vec<String> = { applied.iter() }
        .filter(|n| dir.join(n).is_file())
        .cloned()
        .collect();
    let made_by = read_migrations(dir, &present)?;
    let schema = [WRANGLERS_MIGRATIONS_TABLE.to_owned()];
    let found = d1_core::fk_actions::side_writes_after(&schema, &made_by, pending)?;
    match (found.migrations_table, found.unfinished) {
        (None, None) => Err(unread),
        (migrations_table, unfinished) => Ok(d1_core::fk_actions::Found {
            migrations_table,
            unfinished,
            ..Default::default()
        }),
    }
}

/// Which command applies every migration to a database with none applied
/// and no schema yet, for its refusal's words
/// ([`refuse_what_cannot_apply_to_empty`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FromNothing {
    /// A fresh clone's first backup, which gives the new local D1 its
    /// schema before it backs it up.
    FirstBackup,
    /// `restore --clean` into an environment's emptied database.
    CleanRestore,
    /// `restore --to new:NAME --clean`, into the database it creates.
    NewDatabase,
}

/// Refuses (exit 3), before anything runs, a migration of `dir` (`files`
/// as read) that its guards refuse, applied to `env`'s database with none
/// applied and no schema yet: `restore --clean`'s target, a fresh clone's
/// first backup (`by`). Only migrate and deploy held their migrations to
/// them, and these applied every migration that writes d1_migrations
/// (NL). Each refusal is told in `by`'s own words ([`Told`]): what that
/// command did not do and how to see its plan again, never a migrate the
/// user did not run (rvCA, OI 1). One that D1 refuses on an empty
/// database is told why: migrate applied it, as it assumes what a
/// hand-made change or an older migration left, and the fix is in the
/// migration.
pub fn refuse_what_cannot_apply_to_empty(
    env: &Environment,
    dir: &Path,
    files: FilesRead,
    by: FromNothing,
) -> Result<()> {
    let mut plan = plan_of_all(env, dir, files);
    let pending = read_migrations(dir, &plan.pending)?;
    let schema = [WRANGLERS_MIGRATIONS_TABLE.to_owned()];
    plan.side_writes =
        d1_core::fk_actions::side_writes(&schema, &pending).map_err(|e| format!("{e:#}"));
    if let Ok(found) = &mut plan.side_writes {
        warn_of_what_d1_applies_broken(found, dir);
    }
    match &plan.side_writes {
        Ok(found) => refuse_found(&plan, found, &Told::from_nothing(&plan, by)),
        Err(_) => Ok(()),
    }
}

/// The words a refusal of pending migrations is told in: migrate's (and
/// deploy's, which migrates), or those of a command that applies every
/// migration to a database with none yet ([`FromNothing`]): a user who
/// ran a backup or a restore reads what it did not do and that command's
/// dry run, never `cargo xtask migrate`, which they did not run (OI 1).
struct Told {
    /// "refusing to migrate DB", or what the command refuses and why it
    /// applies the migrations.
    refusing: String,
    /// Between `refusing` and what is refused.
    but: &'static str,
    /// What the trial that stopped was of.
    trial: &'static str,
    /// Before the fix: that nothing is applied yet.
    yet: &'static str,
    /// The command that shows the plan again.
    again: String,
    /// What was not done, after "Nothing was done; ".
    nothing: &'static str,
    /// Which command, when it applies every migration to nothing.
    by: Option<FromNothing>,
}

impl Told {
    /// Migrate's words, for `plan`'s database.
    fn migrate(plan: &MigrationPlan<'_>) -> Told {
        Told {
            refusing: format!("refusing to migrate {}", plan.env.database_name),
            but: ": ",
            trial: "the plan's trial of the pending migrations",
            yet: "It is not applied yet",
            again: format!("`cargo xtask migrate {} --dry-run`", plan.env.name),
            nothing: "no backup was taken",
            by: None,
        }
    }

    /// `by`'s words, which applies every migration in `plan`'s directory
    /// to a database with none.
    fn from_nothing(plan: &MigrationPlan<'_>, by: FromNothing) -> Told {
        let env = plan.env;
        let (refusing, made, nothing) = match by {
            FromNothing::FirstBackup => (
                format!("back up {}: the local D1 is new", env.database_name),
                "a backup first makes its schema by applying",
                "nothing was backed up",
            ),
            FromNothing::CleanRestore => (
                format!("restore into {}: it is empty", env.database_name),
                "--clean makes its schema by applying",
                "nothing was restored",
            ),
            FromNothing::NewDatabase => (
                format!("restore into new:{}", env.database_name),
                "--clean makes the new database's schema by applying",
                "no database was created",
            ),
        };
        let again = match by {
            FromNothing::FirstBackup => format!("`cargo xtask backup {} --dry-run`", env.name),
            _ => "the same restore with --dry-run".to_owned(),
        };
        Told {
            refusing: format!(
                "refusing to {refusing}, and {made} the migrations in {}",
                plan.dir.display()
            ),
            but: ", but ",
            trial: "the trial of those migrations",
            yet: "No migration is applied yet",
            again,
            nothing,
            by: Some(by),
        }
    }
}

/// Warns of the trigger, view or foreign key that the migrations applied
/// to an empty database leave unable to run, and takes it out of `found`
/// so that it refuses nothing: D1 applies such a migration, and every
/// migration is applied here, those production applied too, which the
/// tool forbids editing (rvCB 2: a fresh clone's first backup and a clean
/// restore were refused "fix that migration"). Only what D1 refuses
/// stops them. A trigger a migration makes whose body names what none
/// makes ([`d1_core::fk_actions::Found::unjudged_trigger`]), refused on a
/// database with tables as whether it writes d1_migrations cannot be
/// known, is warned of and taken out too (OU 1): D1 applies it, and none
/// of the migrations applied here can fire it (every statement that does
/// fails), while a trigger that writes d1_migrations as they run is
/// refused all the same.
fn warn_of_what_d1_applies_broken(found: &mut d1_core::fk_actions::Found, dir: &Path) {
    found.breaks = None;
    let dir = dir.display();
    if let Some(trigger) = found.unjudged_trigger.take() {
        crate::warn!(
            "{trigger}, in {dir}: D1 applies it, so it is applied here too, as wherever these \
             migrations ran; from then on every statement that fires it fails, and whether it \
             writes {} cannot be known until what its body names is made (a migration that \
             makes it is judged then). Where that migration is applied already, repair it in a \
             new migration (make what its body names, or drop the trigger) rather than editing \
             it.",
            d1_core::statement::MIGRATIONS_TABLE
        );
    }
    let Some(broken) = found.broken.take() else {
        return;
    };
    crate::warn!(
        "{broken}, in {dir}: D1 applies it, so it is applied here too, as wherever these \
         migrations ran; from then on what uses it fails. Where that migration is applied \
         already, repair what it left in a new migration rather than editing it."
    );
}

/// The statement the plan's trial knows D1 refuses, and why it knows:
/// one that calls a function D1 does not allow
/// ([`d1_core::fk_actions::Found::d1_refuses`]), one that failed `on` its schema with every statement before it applied
/// ([`d1_core::fk_actions::Found::fails`]), or one SQLite cannot parse
/// ([`does_not_parse`]).
fn known_to_fail<'f>(found: &'f d1_core::fk_actions::Found, on: &str) -> Option<(&'f str, String)> {
    let before_it = format!("{on} with every statement before it applied");
    let parsed = "whatever the schema and the statements before it: SQLite cannot parse it, \
                  and D1's SQLite parses no more than this one";
    let function = "whatever the schema and the statements before it: D1 lets a statement call \
                    only the functions it allows";
    { found.d1_refuses.as_deref() }
        .map(|calls| (calls, function.to_owned()))
        .or_else(|| found.fails.as_deref().map(|fails| (fails, before_it)))
        .or_else(|| does_not_parse(found).map(|statement| (statement, parsed.to_owned())))
}

/// Refuses (exit 3), a dry run too and before the pre-migration backup
/// (`migrate`'s and `deploy`'s alike),
/// pending migrations the plan knows D1 refuses: a statement that names a
/// table, column, index, trigger or view not there, or makes one that is
/// (OA 1), every statement before it having prepared and run on a full
/// copy of the target's own schema (never on one its migrations make when
/// it cannot be read: that stays a warning)
/// ([`d1_core::fk_actions::Found::fails`]), or one SQLite cannot parse
/// ([`does_not_parse`]). Retried, each run would take the same backup
/// again and fail the same way. A statement that only may fail (one
/// before it did not run here, a function or module SQLite here lacks)
/// is no refusal: the plan says why its backup is taken all the same.
/// A statement that fails SQLite's check of every trigger and view after
/// an ALTER TABLE (a DROP COLUMN of a column a trigger's body names) fails
/// so in D1 too; one that D1 applies but that leaves a trigger or view the
/// target had unable to run ([`d1_core::fk_actions::Found::breaks`]: a
/// DROP TABLE of a table its body names) is refused as well: from then on
/// every insert that fires the trigger fails. Both name the fix: drop the
/// trigger or view in the same migration, or make it again there.
pub fn refuse_what_cannot_apply(plan: &MigrationPlan<'_>, backs_up: bool) -> Result<()> {
    let Ok(found) = &plan.side_writes else {
        return Ok(());
    };
    refuse_found(plan, found, &Told::migrate(plan))?;
    if backs_up && !found.unknown.is_empty() {
        crate::say!(
            "  backup       taken all the same: what does not prepare or run here may run in D1 \
             (it follows a statement this copy could not run, or uses what SQLite here lacks), \
             so the plan cannot know it fails"
        );
    }
    Ok(())
}

/// Refuses (exit 3) what the plan's trial `found` that its guards refuse
/// ([`refuse_what_cannot_apply`]), in the words `told`: the first that
/// writes the migrations table, a trial that did not finish, a statement
/// known to fail, one that breaks a trigger, a view or a foreign key.
fn refuse_found(
    plan: &MigrationPlan<'_>,
    found: &d1_core::fk_actions::Found,
    told: &Told,
) -> Result<()> {
    let Told {
        refusing,
        but,
        yet,
        again,
        nothing,
        ..
    } = told;
    let dir = plan.dir.display();
    // The first thing to take out, as migrate tells it.
    refuse_writing_migrations_table(plan, found, told)?;
    if let Some(unfinished) = &found.unfinished {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{refusing}{but}{} stopped: {unfinished}, in {dir}, then {again} shows the plan \
             again. Nothing was done; {nothing}.",
            told.trial,
        );
    }
    let on = match told.by {
        Some(_) => "on an empty database",
        None => "on its schema",
    };
    // Why the plan knows, told after the statement.
    let fails = known_to_fail(found, on);
    if let (Some(_), Some((fails, known))) = (told.by, &fails) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{refusing}, which cannot make it from nothing: {fails}, {known}, so D1 refuses it \
             too. That migration assumes what an older migration or a change made by hand left \
             in the database it was written for: make it apply to an empty database as well \
             (`DROP INDEX IF EXISTS`, `CREATE ... IF NOT EXISTS`, or what it needs made before \
             it), then {again} shows the plan again. Nothing was done; {nothing}.",
        );
    }
    if let Some((fails, known)) = fails {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{refusing}{but}{fails}, {known}, so D1 refuses it too (wrangler would fail after \
             the pre-migration backup). {yet}: fix that statement in {dir}, then {again} shows \
             the plan again. Nothing was done; {nothing}.",
        );
    }
    if let Some(breaks) = &found.breaks {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{refusing}{but}{breaks}. {yet}: fix each migration named here, in {dir}, then \
             {again} shows the plan again. Nothing was done; {nothing}.",
        );
    }
    Ok(())
}

/// SQLite's words ([`d1_core::gate::without_values`]'s) for a statement it
/// cannot parse: a misspelt keyword, a stray token, a statement cut short.
/// Parsing depends on no schema nor on any statement before it, and the
/// SQLite here is newer than D1's, whose grammar only grows: D1 refuses it
/// too, but for the `ORDER BY` and `LIMIT` of an UPDATE or DELETE, which
/// only D1's is built to parse ([`MAY_LIMIT_ROWS`]). Anything else a statement does not prepare for (`no such
/// function`, `no such module`, what D1's SQLite may have and this one
/// lacks) stays a guess about D1.
const PARSE_ERRORS: [&str; 3] = ["syntax error", "unrecognized token", "incomplete input"];

/// The first statement the plan's trial found SQLite cannot parse
/// ([`PARSE_ERRORS`]), as it was said ([`d1_core::fk_actions::Found::unknown`]:
/// its migration, its number and SQLite's reason, never its values).
fn does_not_parse(found: &d1_core::fk_actions::Found) -> Option<&str> {
    let parse_error = |said: &&String| {
        said.split_once(" does not prepare here (")
            .is_some_and(|(_, why)| PARSE_ERRORS.iter().any(|e| why.starts_with(e)))
    };
    found.unknown.iter().find(parse_error).map(String::as_str)
}

/// Refuses (exit 3), a dry run too and before the pre-migration backup, a
/// pending migration with a statement that writes, alters, drops or puts a
/// trigger on the migrations table, as the plan's trial found it
/// ([`d1_core::fk_actions::Found::migrations_table`]). Wrangler records
/// each migration it applies there, and takes what it lists as applied: a
/// migration that inserted `0006_y.sql` applied with exit 0, and the real
/// 0006_y.sql never ran, "up to date" (rvBR 1); one that rewrote
/// `applied_at` misled a Time Travel restore's plan about which
/// migrations it takes back. A trigger a pending migration makes whose
/// body does not prepare once they all have run cannot be judged, and is
/// refused too ([`d1_core::fk_actions::Found::unjudged_trigger`], rvBU),
/// but where every migration is applied to nothing, which warns of it
/// ([`warn_of_what_d1_applies_broken`]).
fn refuse_writing_migrations_table(
    plan: &MigrationPlan<'_>,
    found: &d1_core::fk_actions::Found,
    told: &Told,
) -> Result<()> {
    let (dir, table) = (plan.dir.display(), d1_core::statement::MIGRATIONS_TABLE);
    let (refusing, but) = (&told.refusing, told.but);
    let fix_then = |fix: String| {
        format!(
            "{}: {fix}, then {} shows the plan again. Nothing was done; {}.",
            told.yet, told.again, told.nothing
        )
    };
    if let (None, Some(trigger)) = (&found.migrations_table, &found.unjudged_trigger) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{refusing}{but}{trigger}, so whether it writes {table} cannot be known (wrangler \
             records each migration it applies there and skips every one listed). {}",
            fix_then(format!(
                "make what its body names in that migration or one before it, or take the \
                 trigger out of {dir}"
            )),
        );
    }
    let Some(statement) = &found.migrations_table else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "{refusing}{but}{statement}. Wrangler records each migration it applies in {table} and \
         skips every migration listed there, so a migration that changes that table makes a \
         later one never apply, or seem applied when it was not. {}",
        fix_then(format!(
            "take that statement out of {dir} (a migration's schema and data go in its own \
             tables; wrangler writes {table} itself)"
        )),
    );
}

impl MigrationPlan<'_> {
    /// The plan, and a warning (even with -q) of the rows its migrations
    /// change through foreign key actions.
    pub fn print(&self, project: &Project) {
        let env = self.env;
        crate::say!("Migration plan");
        crate::say!("  {}", project.plan_line());
        crate::say!(
            "  environment  {} -> {} ({} D1)",
            env.name,
            env.database_name,
            env.location
        );
        let gone: Vec<std::borrow::Cow<'_, str>> = { self.applied.iter() }
            .filter(|n| !self.files.contains(n))
            .map(|n| d1_core::names::shown(n))
            .collect();
        crate::say!(
            "  applied      {} of {} in {}",
            self.applied.len() - gone.len(),
            count(self.files.len(), "migration"),
            self.dir.display()
        );
        if !gone.is_empty() {
            crate::say!(
                "  not found    {} (applied to {}, no longer in {})",
                d1_core::wording::listed(&gone, "migration"),
                env.database_name,
                self.dir.display()
            );
        }
        if self.pending.is_empty() {
            crate::say!(
                "  pending      none: {} is up to date. Nothing to do.",
                env.database_name
            );
        }
        for (i, name) in self.pending.iter().enumerate() {
            let label = if i == 0 { "pending" } else { "" };
            crate::say!("  {label:<13}{name}");
        }
        match &self.side_writes {
            Ok(found) => {
                for side in &found.side_writes {
                    crate::say!("  CHANGES      {}", side.describe());
                }
                for why in &found.unknown {
                    crate::say!("  CHANGES      not known: {why}");
                }
            }
            Err(why) => crate::say!("  CHANGES      not known: {why}"),
        }
        self.warn_of_side_writes();
    }

    /// Warns (even with -q), before anything is applied, of the rows the
    /// pending migrations change through foreign key actions.
    fn warn_of_side_writes(&self) {
        let found = match &self.side_writes {
            Ok(found) => found,
            Err(why) => {
                crate::warn!(
                    "what the pending migrations change through foreign key actions is not \
                     known ({why}); read them before you apply them"
                );
                return;
            }
        };
        if !found.unknown.is_empty() {
            crate::warn!(
                "some statements of the pending migrations do not prepare or run on {}'s schema \
                 here, so what they change through foreign key actions is not known, and D1 may \
                 refuse them too: {}",
                self.env.database_name,
                found.unknown.join("; ")
            );
        }
        let sides = &found.side_writes;
        if sides.is_empty() {
            return;
        }
        crate::warn!(
            "the pending migrations change rows of tables they do not name: {}. D1 enforces \
             foreign keys during a migration, so deleting a table's rows (a DROP TABLE, as in \
             a redefinition that copies it to a new table and renames that) runs the ON DELETE \
             action of every key that references it. If that is not meant, change the \
             migration to keep the table (an ALTER TABLE, where SQLite allows the change); the \
             pre-migration backup is the way back.",
            sides
                .iter()
                .map(|s| s.describe())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

/// Applies the plan's pending migrations from their copy, `staged`, the
/// pre-migration backup already taken and [`record_applying`] passed; a
/// failure carries `advice`, the way back, or, when it applied nothing,
/// `kept`, what is said of the backup instead ([`failed_said`]). Returns
/// what d1_migrations gained, read again afterwards, as the migrations
/// this run applied.
pub fn apply(
    sh: &Shell,
    project: &Project,
    (plan, staged): (&MigrationPlan<'_>, &Staged),
    (advice, kept): (&str, &str),
) -> Result<Vec<String>> {
    let env = plan.env;
    let wrangler = project.wrangler(sh)?;
    crate::edge::signals::changed(format!(
        "migrations may be partly applied to {}; {advice}",
        env.database_name
    ));
    let run = staged.journal(project, env)?;
    if let Err(e) = wrangler.run(&staged.apply(project, env)) {
        if e.chain()
            .any(|c| c.is::<crate::edge::signals::Interrupted>())
        {
            let now =
                crate::edge::signals::despite_interrupt(|| applied_migrations(sh, project, env));
            let said = interrupted_said(&now, plan, (advice, kept));
            crate::edge::signals::changed(said.clone());
            let applied = applied_of(plan, now);
            let nothing_to_restore = applied.as_ref().is_some_and(Vec::is_empty)
                && env.location == crate::config::environment::Location::Local;
            return Err(e.context(FailedApply {
                said,
                applied,
                nothing_to_restore,
            }));
        }
        let in_sql = crate::edge::wrangler::failed_in_sql(&e);
        let named = crate::edge::wrangler::failed_migration(&e);
        let failure = (in_sql, named.as_deref());
        // A remote request D1 did not refuse, whose answer was not an SQL
        // error, may have been carried out, or may still be.
        let may_land = env.location == crate::config::environment::Location::Remote
            && !in_sql
            && !crate::edge::wrangler::failed_refused_by_api(&e);
        let now = applied_migrations(sh, project, env);
        let said = failed_said(&now, (plan, failure), (advice, kept), may_land);
        let applied = applied_of(plan, now);
        if let Some(applied) = &applied {
            journal_end(project, env, &run, applied);
        }
        let nothing_to_restore = applied.as_ref().is_some_and(Vec::is_empty) && !may_land;
        return Err(e.context(FailedApply {
            said,
            applied,
            nothing_to_restore,
        }));
    }
    let gained = gained(sh, project, plan);
    journal_end(project, env, &run, &gained);
    crate::say!(
        "Applied {} to {}.",
        count(gained.len(), "migration"),
        env.database_name
    );
    Ok(gained)
}

/// Which of the plan's pending migrations `now` (d1_migrations read again
/// after a failed or interrupted apply) lists: `None` when that read
/// failed.
fn applied_of(plan: &MigrationPlan<'_>, now: Result<Vec<String>>) -> Option<Vec<String>> {
    { now.ok() }.map(|now| {
        { plan.pending.iter() }
            .filter(|p| now.contains(p))
            .cloned()
            .collect()
    })
}

/// Appends to the migrations journal the end of the run `run`
/// ([`Staged::journal`]): which of its staged migrations `env`'s database
/// lists now, as `d1_migrations` read again (or wrangler) told. A backup
/// takes that run's sha256 for those alone ([`journaled`]): one that
/// failed (a UNIQUE index the rows break), fixed and applied otherwise
/// since, was recorded as the text that never ran, and `migrate --check`
/// failed for good (MG2). A line that cannot be written is warned of:
/// the run is then one with no end, whose every migration is taken as
/// applied, and warned of by the next backup.
pub fn journal_end(project: &Project, env: &Environment, run: &str, applied: &[String]) {
    let path = project.backup_dir.join(MIGRATIONS_JOURNAL);
    let entry = serde_json::json!({
        "env": env.name,
        "database": env.database_name,
        "run": run,
        "ended_at": chrono::Utc::now().to_rfc3339(),
        "applied": applied,
    });
    if let Err(e) = crate::edge::fsutil::append_json_line(&path, &entry, JOURNAL_WHAT) {
        crate::warn!(
            "cannot record in {} which migrations were applied to {} ({e:#}); the next backup \
             takes every one this run staged as applied: check it with `cargo xtask migrate {} \
             --check` after that backup",
            path.display(),
            env.database_name,
            env.name
        );
    }
}

/// A migration's sha256 as [`journaled`] read it: `unended` names the
/// time of a run that wrote no end (killed while wrangler applied), whose
/// migrations are taken as applied, not known to be.
pub struct Journaled {
    pub sha256: String,
    pub unended: Option<String>,
}

/// The sha256 of each migration as it was last staged for `env`'s
/// database by a run that applied it ([`Staged::journal`], whose end,
/// [`journal_end`], names it): the text applied. A run's staged sha256 of
/// a migration its end does not name (one that failed) is never taken: a
/// migration fixed and applied otherwise since is recorded as its file is
/// (MG2). A run with no end (killed while wrangler applied, or written by
/// the version before ends) is taken whole, [`Journaled::unended`]. The
/// journal is in the backup directory, as trusted as the manifests beside
/// it, and read as hostile as they are: a line that is not one of this
/// tool's (not JSON, another environment's or database's, a name that is
/// no plain file name, a value that is no sha256) is passed over. One that
/// cannot be read at all (a link, too large) is warned of, naming it and
/// the fix, and nothing is taken from it: the record is then the file's
/// sha256 at the backup, as it was before the journal.
pub fn journaled(project: &Project, env: &Environment) -> BTreeMap<String, Journaled> {
    let path = project.backup_dir.join(MIGRATIONS_JOURNAL);
    if std::fs::symlink_metadata(&path).is_err() {
        return BTreeMap::new();
    }
    let lines = match crate::edge::fsutil::read_own_lines(&path, "migrations journal") {
        Ok(own) => own.lines,
        Err(e) => {
            crate::warn!(
                "cannot read the migrations journal ({e:#}); a migration applied since the last \
                 backup is recorded as {} holds it now. Move {} aside if it is not this tool's.",
                env.migrations_dir,
                path.display()
            );
            return BTreeMap::new();
        }
    };
    let entries: Vec<serde_json::Value> = { lines.iter() }
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            let of = |key: &str, is: &str| entry.get(key).and_then(|v| v.as_str()) == Some(is);
            of("env", &env.name) && of("database", &env.database_name)
        })
        .collect();
    let text = |entry: &serde_json::Value, key: &str| {
        entry.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    };
    // Each run's end: the migrations it applied.
    let mut ends: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in &entries {
        let (Some(run), Some(applied)) = (
            text(entry, "run"),
            entry.get("applied").and_then(|a| a.as_array()),
        ) else {
            continue;
        };
        let names = applied.iter().filter_map(|n| n.as_str()).map(str::to_owned);
        ends.entry(run).or_default().extend(names);
    }
    let mut staged = BTreeMap::new();
    for entry in &entries {
        let end = text(entry, "run").and_then(|run| ends.get(&run));
        for (name, sha) in entry
            .get("migrations")
            .and_then(|m| m.as_object())
            .into_iter()
            .flatten()
        {
            if let Some(sha) = sha.as_str().filter(|s| d1_core::names::is_sha256_hex(s))
                && d1_core::names::is_plain_file_name(name)
                && end.is_none_or(|applied| applied.contains(name))
            {
                // Said in a warning: a date, never the line's text.
                let unended = end.is_none().then(|| {
                    { text(entry, "staged_at") }
                        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
                        .map_or_else(|| "at a time not recorded".to_owned(), |at| at.to_rfc3339())
                });
                let sha256 = sha.to_owned();
                staged.insert(name.clone(), Journaled { sha256, unended });
            }
        }
    }
    staged
}

/// What `plan`'s database's d1_migrations gained by its apply: read again,
/// warned of (even with -q) when it is not the plan's pending migrations;
/// the plan's when it cannot be read again, which is warned of too.
fn gained(sh: &Shell, project: &Project, plan: &MigrationPlan<'_>) -> Vec<String> {
    let db = &plan.env.database_name;
    let listed = |names: &[String]| {
        let shown: Vec<_> = names.iter().map(|n| d1_core::names::shown(n)).collect();
        d1_core::wording::listed(&shown, "migration")
    };
    let gained: Vec<String> = match applied_migrations(sh, project, plan.env) {
        Ok(now) => now
            .into_iter()
            .filter(|n| !plan.applied.contains(n))
            .collect(),
        Err(e) => {
            crate::warn!(
                "wrangler applied the migrations, but {db}'s d1_migrations could not be read \
                 again to tell which ({e:#}); the plan's were {}. Run `cargo xtask migrate {} \
                 --check` to see what it lists.",
                listed(&plan.pending),
                plan.env.name
            );
            return plan.pending.clone();
        }
    };
    if gained != plan.pending {
        crate::warn!(
            "{db}'s d1_migrations gained {}, not the plan's {}: something else applied \
             migrations meanwhile. Run `cargo xtask migrate {} --check` and read what it lists.",
            listed(&gained),
            listed(&plan.pending),
            plan.env.name
        );
    }
    gained
}

/// Refuses (exit 3), before anything is applied, when the migrations
/// directory no longer holds what the plan showed: a migration added, or a
/// pending one edited or removed, after the plan was shown was never
/// shown, analysed nor confirmed. Copies each pending migration into the
/// directory `copy` as it reads it (streamed, whatever its size), and
/// compares the sha256 of what it copied with the one the plan read: the
/// copy is what [`stage`] gives wrangler. Refuses (exit 2) when the copy
/// cannot be written.
pub fn unchanged_since_planned(plan: &MigrationPlan<'_>, copy: &Path) -> Result<()> {
    let files = migration_files(&plan.dir)?;
    let now = pending(&files, &plan.applied);
    let mut changed: Vec<String> = Vec::new();
    for name in &plan.pending {
        let shown = d1_core::names::shown(name);
        if !now.contains(name) {
            changed.push(format!("{shown} (removed)"));
            continue;
        }
        let copied = match d1_core::names::is_plain_file_name(name) {
            true => crate::edge::fsutil::copy_to_private_file_hashing(
                &plan.dir.join(name),
                &copy.join(name),
            )
            .map_err(|e| Exit::CouldNotRun.error(e))?,
            false => None,
        };
        match (copied, plan.pending_digests.get(name)) {
            (Some(sha256), Some(then)) if sha256 == then.sha256 => {}
            (Some(_), _) => changed.push(format!("{shown} (edited)")),
            // Gone between the listing and the read, or turned into
            // something else.
            (None, _) => changed.push(format!("{shown} (could not be read again)")),
        }
    }
    for name in now.iter().filter(|n| !plan.pending.contains(n)) {
        changed.push(format!("{} (new)", d1_core::names::shown(name)));
    }
    if changed.is_empty() {
        return Ok(());
    }
    crate::stop!(
        Exit::Refused,
        "refusing to apply migrations to {}: {} changed in {} after the plan was shown, so \
         wrangler would apply what was never shown, analysed nor confirmed. Nothing was \
         applied: migrate again to see the new plan, and confirm that one.",
        plan.env.database_name,
        changed.join(", "),
        plan.dir.display()
    )
}

/// The plan's pending migrations as wrangler applies them: copied, as
/// [`unchanged_since_planned`] read them and found them to be the plan's,
/// into a private directory (0700, removed when this is dropped), with a
/// private configuration naming that copy as the database's
/// `migrations_dir`. wrangler reads migrations/ itself, each file again
/// just before it applies it, so a file written there after the tool's
/// last look (while wrangler starts, or applies an earlier migration) was
/// applied though never shown; it reads this copy instead, which nothing
/// else writes.
pub struct Staged {
    /// Commands against the private configuration.
    cmds: crate::edge::wrangler::Commands,
    dir: crate::edge::wrangler::PrivateDir,
    /// The sha256 of each migration copied, in the order wrangler applies
    /// them: what [`Staged::journal`] records.
    sha256: Vec<(String, String)>,
}

/// [`Staged`]: refuses (exit 3) as [`unchanged_since_planned`] does, and
/// (exit 2) when the copy cannot be made; nothing is applied then.
pub fn stage(plan: &MigrationPlan<'_>) -> Result<Staged> {
    let dir = crate::edge::wrangler::PrivateDir::create("migrations")?;
    let copy = dir.path().join("migrations");
    let could_not = |e: anyhow::Error| {
        Exit::CouldNotRun.error(e.context(format!(
            "cannot copy the pending migrations into a private directory for wrangler to apply \
             to {}; nothing was applied",
            plan.env.database_name
        )))
    };
    crate::edge::fsutil::create_new_private_dir(&copy).map_err(could_not)?;
    unchanged_since_planned(plan, &copy).map_err(|e| match Exit::of(&e) {
        Some(Exit::Refused) => e,
        _ => could_not(e),
    })?;
    let config = write_staged_config(plan.env, dir.path()).map_err(could_not)?;
    let sha256 = { plan.pending.iter() }
        .filter_map(|n| Some((n.clone(), plan.pending_digests.get(n)?.sha256.clone())))
        .collect();
    Ok(Staged {
        cmds: crate::edge::wrangler::Commands::new(&config),
        dir,
        sha256,
    })
}

/// Writes [`staged_config`] for `env` and the copy in `dir`, the
/// [`Staged`] directory, and returns its path.
fn write_staged_config(env: &Environment, dir: &Path) -> Result<PathBuf> {
    let config = dir.join("wrangler.json");
    let json = staged_config(env, &dir.join("migrations"))?;
    std::fs::write(&config, json)
        .on_path(&config, || format!("cannot write {}", config.display()))?;
    Ok(config)
}

impl Staged {
    /// The private configuration written again for `env`: the database
    /// the migrations were staged for before it existed (`restore --to
    /// new:NAME --clean` stages them before `d1 create`, so that a file
    /// changed since the plan is refused with no database made), now
    /// created, with its id.
    pub fn for_database(&self, env: &Environment) -> Result<()> {
        write_staged_config(env, self.dir.path()).map(drop)
    }

    /// Appends to the migrations journal ([`MIGRATIONS_JOURNAL`], in the
    /// backup directory) the sha256 of each migration staged, before
    /// wrangler applies them to `env`'s database: the copy is what it
    /// applies ([`unchanged_since_planned`] found it to be the plan's).
    /// Returns the run's id, which [`journal_end`] names once the run
    /// knows which it applied; the next backup records that text for
    /// those ([`journaled`]), never the file as it is by then: an edit made
    /// between the migrate and that backup was recorded as the text
    /// applied, so `migrate --check` passed it, and failed the file put
    /// back (MG). Written before applying, a run killed while wrangler
    /// applies leaves this line with no end, taken as applied, and warned
    /// of. Nothing is applied when it cannot be written (exit 2).
    pub fn journal(&self, project: &Project, env: &Environment) -> Result<String> {
        let path = project.backup_dir.join(MIGRATIONS_JOURNAL);
        let now = chrono::Utc::now().to_rfc3339();
        let run = format!("{now}-{}", std::process::id());
        let staged: serde_json::Map<String, serde_json::Value> = { self.sha256.iter() }
            .map(|(n, sha)| (n.clone(), serde_json::Value::from(sha.clone())))
            .collect();
        let entry = serde_json::json!({
            "env": env.name,
            "database": env.database_name,
            "run": run,
            "staged_at": now,
            "migrations": staged,
        });
        crate::edge::fsutil::append_json_line(&path, &entry, JOURNAL_WHAT).map_err(|e| {
            Exit::CouldNotRun.error(e.context(format!(
                "cannot record in {} the migrations about to be applied to {}, so none was \
                 applied: free space there or fix its permissions, and run this again",
                path.display(),
                env.database_name
            )))
        })?;
        Ok(run)
    }

    /// [`Staged::apply`] by `wrangler` to `env`'s database with no
    /// migration applied (`restore --clean`'s), journaled as `migrate`'s
    /// ([`Staged::journal`], [`journal_end`]). A failure's end names the
    /// migrations staged before the one wrangler said failed
    /// ([`crate::edge::wrangler::failed_migration`]), each applied in its
    /// own batch before it stopped there; none is written when it named
    /// none (which it applied is unknown).
    pub fn apply_journaled(
        &self,
        project: &Project,
        env: &Environment,
        wrangler: &crate::edge::wrangler::Wrangler,
    ) -> Result<()> {
        let run = self.journal(project, env)?;
        let applied = wrangler.run(&self.apply(project, env));
        let upto = match &applied {
            Ok(()) => Some(self.sha256.len()),
            Err(e) => {
                let failed = crate::edge::wrangler::failed_migration(e);
                { self.sha256.iter() }.position(|(n, _)| Some(n) == failed.as_ref())
            }
        };
        if let Some(upto) = upto {
            let names: Vec<String> = { self.sha256[..upto].iter() }
                .map(|(n, _)| n.clone())
                .collect();
            journal_end(project, env, &run, &names);
        }
        applied
    }

    /// `wrangler d1 migrations apply` of the copy, to `env`'s database:
    /// the one the project's configuration names, and for a local one the
    /// project's local D1.
    pub fn apply(&self, project: &Project, env: &Environment) -> crate::edge::wrangler::Invocation {
        let state = project.config_dir.join(local_d1::STATE_DIR);
        self.cmds.migrations_apply_persisting(env, &state)
    }
}

/// Refuses (exit 2) a temporary directory [`stage`] would refuse (one
/// [`crate::edge::wrangler::PrivateDir::create`] refuses, or whose path
/// wrangler's configuration cannot name), before anything is written:
/// migrate, deploy and `restore --clean` ask it first, whatever is
/// pending, a dry run included, so that none takes its lock or its backup
/// and only then refuses (as migrate did, the pre-migration backup taken,
/// with TMPDIR holding a backslash).
pub fn check_stageable() -> Result<()> {
    crate::edge::wrangler::check_temp_dir()?;
    named_in_a_configuration(&std::env::temp_dir())
        .map(drop)
        .map_err(|e| Exit::CouldNotRun.error(e.context("nothing was done")))
}

/// How the migrations journal ([`MIGRATIONS_JOURNAL`]) is named in what
/// its writers and `doctor` say of it.
pub const JOURNAL_WHAT: &str = "the migrations journal";

/// Refuses (exit 2) a migrations journal ([`MIGRATIONS_JOURNAL`]) that
/// [`Staged::journal`] could not append to: a symbolic link, which it never
/// follows, a directory, a file it may not write. Asked before anything,
/// a dry run included, as [`check_stageable`]: the refusal came after the
/// pre-migration backup was taken, and opened with "free space there or
/// fix its permissions" for a link (rvBR 3). Checked as every journal is
/// before the operation it records ([`crate::edge::fsutil::check_room`]):
/// a FIFO there was refused with a bare "No such device or address"
/// (rvBV 3), which the other journals name a pipe to move aside. One not
/// there yet is made when it is first written.
pub fn check_journal_writable(project: &Project) -> Result<()> {
    let path = project.backup_dir.join(MIGRATIONS_JOURNAL);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    crate::edge::fsutil::check_room(&path, JOURNAL_WHAT).map_err(|e| {
        Exit::CouldNotRun.error(e.context(format!(
            "migrations are recorded in {} as they are applied, and it cannot be written; \
                 nothing was done, no backup was taken",
            path.display()
        )))
    })
}

/// `dir` as wrangler's configuration can name it: UTF-8, and with no
/// backslash, which wrangler turns into `/` in `migrations_dir`, so would
/// look for the copy elsewhere ("No migrations present").
fn named_in_a_configuration(dir: &Path) -> Result<&str> {
    let dir = dir.to_str().with_context(|| {
        format!(
            "the private directory {} is not UTF-8, which wrangler's configuration cannot name; \
             set TMPDIR to a directory whose path is",
            dir.display()
        )
    })?;
    if dir.contains('\\') {
        anyhow::bail!(
            "the directory {dir:?} holds a backslash (\\), which wrangler reads as `/` in its \
             configuration's migrations_dir; set TMPDIR to a directory whose path holds none"
        );
    }
    Ok(dir)
}

/// The private configuration [`Staged`] gives wrangler: `env`'s database
/// alone, as wrangler finds it in the project's configuration (its
/// binding, name and id, in its wrangler environment, with its account),
/// its `migrations_dir` the private copy `dir`, by its absolute path.
/// Written as JSON (a `wrangler.json`). A local D1 file is keyed by
/// `preview_database_id ?? database_id ?? binding`, which is `local_id`.
fn staged_config(env: &Environment, dir: &Path) -> Result<String> {
    let dir = named_in_a_configuration(dir)?;
    let mut database = serde_json::json!({
        "binding": env.binding,
        "database_name": env.database_name,
        "migrations_dir": dir,
    });
    if !env.database_id.is_empty() {
        database["database_id"] = env.database_id.clone().into();
    }
    let keyed_by = match env.database_id.is_empty() {
        true => &env.binding,
        false => &env.database_id,
    };
    if env.location == crate::config::environment::Location::Local && &env.local_id != keyed_by {
        database["preview_database_id"] = env.local_id.clone().into();
    }
    let mut config = serde_json::Map::new();
    if let Some(account) = &env.account_id {
        config.insert("account_id".into(), account.clone().into());
    }
    let databases = serde_json::json!([database]);
    match &env.wrangler_env {
        None => config.insert("d1_databases".into(), databases),
        Some(name) => config.insert(
            "env".into(),
            serde_json::json!({ name: { "d1_databases": databases } }),
        ),
    };
    Ok(serde_json::Value::Object(config).to_string())
}

/// What an apply stopped by a signal left, `now` being d1_migrations read
/// again after it ([`crate::edge::signals::despite_interrupt`]): which of
/// the plan's pending migrations are applied and which not (D1 applies
/// each file as one batch, whole or not at all), or that it is unknown
/// when that read failed (a second signal stopped it); `migrate --check`
/// first, and the pre-migration backup's restore only as the way back.
/// It said "migrations may be partly applied" and gave the restore alone,
/// where one was applied whole, or none. Where none was applied to a
/// local D1, which nothing may still write, there is nothing to restore:
/// the backup is named as `kept` (it gave the restore all the same, OA 2).
fn interrupted_said(
    now: &Result<Vec<String>>,
    plan: &MigrationPlan<'_>,
    (advice, kept): (&str, &str),
) -> String {
    let (db, env) = (&plan.env.database_name, &plan.env.env_name);
    let check = format!("`cargo xtask migrate {env} --check` reads it again");
    // A remote request wrangler had sent may be carried out all the same.
    let may_land = match plan.env.location {
        crate::config::environment::Location::Remote => {
            " as D1 shows it now; D1 may still carry out what wrangler had sent it, so look again"
        }
        _ => "",
    };
    let listed = |names: &[String]| d1_core::wording::listed(names, "migration");
    let way_back = advice.strip_prefix("to go back, ").unwrap_or(advice);
    match now {
        Err(_) => format!(
            "whether the migrations were applied to {db} is unknown (d1_migrations could not be \
             read after the interrupt): {check} before anything else; should you need the way \
             back, {way_back}"
        ),
        Ok(now) => {
            let (applied, not): (Vec<String>, Vec<String>) =
                { plan.pending.iter().cloned() }.partition(|p| now.contains(p));
            let state = match (applied.is_empty(), not.is_empty()) {
                (true, _) if may_land.is_empty() => {
                    return format!(
                        "none of {} was applied to {db} (D1 applies each migration file as one \
                         batch): {check}; {db} is as it was before this run: there is nothing \
                         to restore. {kept}",
                        listed(&not)
                    );
                }
                (true, _) => format!("none of {} was applied to {db}", listed(&not)),
                (false, true) => format!("{} applied to {db}, whole", listed(&applied)),
                (false, false) => format!(
                    "{} applied to {db}, whole; {} not",
                    listed(&applied),
                    listed(&not)
                ),
            };
            format!(
                "{state}{may_land} (D1 applies each migration file as one batch): {check}; \
                 should you need the way back, {way_back}"
            )
        }
    }
}

/// What a failed `migrations apply` did, and `advice`. D1 applies each
/// migration file as one batch (wrangler sends it with its `d1_migrations`
/// INSERT as one query, locally and remotely), so when `d1_migrations`
/// (read again) still lists none of the pending ones, this run applied
/// nothing: the database is as it was, and the backup is named as `kept`,
/// with no restore advised; it used to end "should you need the way back,
/// restore the pre-migration backup" with its `--replace` command (rvBW
/// 2). Only a remote request D1 may still carry out (`may_land`) keeps
/// the way back. Then, unless wrangler's error was an SQL error from D1
/// (`in_sql`), the migration is not what failed (a network failure, a
/// token Cloudflare refused, D1 unavailable, wrangler itself): they are
/// told to fix that, not the migration. `named` is the file wrangler said
/// failed ([`crate::edge::wrangler::failed_migration`]).
fn failed_said(
    applied: &Result<Vec<String>>,
    (plan, (in_sql, named)): (&MigrationPlan<'_>, (bool, Option<&str>)),
    (advice, kept): (&str, &str),
    may_land: bool,
) -> String {
    let db = &plan.env.database_name;
    // The way back ends the message, its command on a line of its own:
    // what the error goes on with (wrangler's) starts the next (LP).
    let advice = &crate::out::command_apart(advice);
    let partly = { applied.as_ref().ok() }
        .and_then(|now| partly_applied_said(plan, now, (in_sql, named), advice));
    if let Some(said) = partly {
        return said;
    }
    let none = applied
        .as_ref()
        .is_ok_and(|a| !plan.pending.iter().any(|p| a.contains(p)));
    let way_back = advice.strip_prefix("to go back, ").unwrap_or(advice);
    let after = match may_land {
        true => format!("Should you need the way back, {way_back}"),
        false => format!("{db} is as it was before this run: there is nothing to restore. {kept}"),
    };
    match plan.pending.first() {
        Some(first) if none && in_sql => format!(
            "applying migrations to {db} failed, and nothing was applied by this run (D1 \
             applies each migration file as one batch): d1_migrations lists {} and every \
             migration after it as pending still; fix it and migrate again. {after}",
            d1_core::names::shown(first),
        ),
        Some(first) if none => format!(
            "applying migrations to {db} failed, but wrangler's error, below, is not an SQL \
             error from D1: a network failure, a token Cloudflare refused, D1 unavailable, the \
             database locked by another program, full or failing, or wrangler itself. \
             d1_migrations lists {} and every migration after it as pending still, so nothing \
             was applied by this run{}: fix what it names and migrate again. A timeout, a full \
             database or one out of memory may be the migration's, by its own size: D1 limits \
             one query to 30 s and a database to its plan's size, which a long or large \
             migration meets, and then it must be split into smaller ones or make room. \
             {after}",
            d1_core::names::shown(first),
            match may_land {
                true => format!(
                    " as D1 shows it now; but D1 may not have ended the request wrangler \
                     sent (an internal error, a lost answer), and may still apply it: look \
                     again with `cargo xtask migrate {} --dry-run` before you migrate again",
                    plan.env.env_name
                ),
                false => String::new(),
            },
        ),
        _ => format!("applying migrations to {db} failed; {advice}"),
    }
}

/// What a failed `migrations apply` that applied some of the plan's
/// pending migrations did, `now` being d1_migrations read again after it:
/// which of this run stay applied, what became of the one that failed
/// ([`failed_file_said`]), the cause (the migration's SQL when `in_sql`;
/// else the machine, D1, or the migration's own size) and the next step.
/// `named` is the file wrangler's own output says failed. `None` when this
/// run applied none of them, or every one.
fn partly_applied_said(
    plan: &MigrationPlan<'_>,
    now: &[String],
    (in_sql, named): (bool, Option<&str>),
    advice: &str,
) -> Option<String> {
    let stay: Vec<&String> = plan.pending.iter().filter(|p| now.contains(p)).collect();
    let failed = plan.pending.iter().find(|p| !now.contains(p))?;
    if stay.is_empty() {
        return None;
    }
    let shown = |names: &[&String]| {
        let shown: Vec<_> = names.iter().map(|n| d1_core::names::shown(n)).collect();
        match shown.split_last() {
            Some((last, rest))
                if !rest.is_empty() && shown.len() <= d1_core::wording::NAMES_SHOWN =>
            {
                format!("{} and {last}", rest.join(", "))
            }
            _ => d1_core::wording::listed(&shown, "migration"),
        }
    };
    let (were, stays) = if stay.len() == 1 {
        ("was", "stays")
    } else {
        ("were", "stay")
    };
    let cause = if in_sql {
        "wrangler's error, below, is an SQL error from D1 in it: fix it".to_owned()
    } else {
        "wrangler's error, below, is not an SQL error from D1: the cause is the machine or D1 \
         (a network failure, a token Cloudflare refused, D1 unavailable, the database locked \
         by another program, full or failing, or wrangler itself), or the migration itself, by \
         its own size: D1 limits one query to 30 s and a database to its plan's size, which a \
         long or large migration meets, and then it must be split into smaller ones or make \
         room. Fix what it names"
            .to_owned()
    };
    let named = named.filter(|n| plan.pending.iter().any(|p| p == n));
    let (what, next) = failed_file_said(plan, now, failed, (named, in_sql));
    Some(format!(
        "applying migrations to {} failed part way: {} {were} applied by this run and {stays} \
         applied (d1_migrations lists {}); then {what}. {cause}, then {next}. Or, to go back \
         to before this run, {}",
        plan.env.database_name,
        shown(&stay),
        if stay.len() == 1 { "it" } else { "them" },
        advice.strip_prefix("to go back, ").unwrap_or(advice),
    ))
}

/// What became of the file a partly applied `migrations apply` failed at,
/// and the next step. `failed` is the first pending file d1_migrations,
/// read again (`now`), does not list; `named` the one wrangler said failed, when
/// it said so. Only an SQL error D1 reported (`in_sql`) tells the file was
/// rolled back. Locally D1 runs inside wrangler, which has stopped, so
/// d1_migrations read again is the whole truth: the file was not applied.
/// Remotely wrangler sends each file as one request and stops at the
/// first error; when that error is not D1's, D1's answer may have been
/// lost, and D1 may have applied the file, or may still: checked first.
fn failed_file_said(
    plan: &MigrationPlan<'_>,
    now: &[String],
    failed: &str,
    (named, in_sql): (Option<&str>, bool),
) -> (String, String) {
    let shown = d1_core::names::shown(failed);
    let again = format!("migrate again: it applies {shown} and every migration after it");
    let local = plan.env.location == crate::config::environment::Location::Local;
    match named {
        _ if in_sql => (
            format!(
                "{shown} failed and was rolled back (D1 applies each migration file as one \
                 batch), and none after it was tried"
            ),
            again,
        ),
        _ if local => (
            format!(
                "{shown} {} not applied: d1_migrations, read again once wrangler and the local \
                 D1 it ran had stopped, does not list it, and D1 applies each migration file as \
                 one batch, so none of it was committed; none after it was tried",
                if named.is_some() {
                    "failed and was"
                } else {
                    "was"
                }
            ),
            again,
        ),
        Some(named) if now.iter().any(|n| n == named) => (
            format!(
                "wrangler says {} failed, but d1_migrations, read again, lists it: D1 applied \
                 it though its answer did not reach wrangler, and none after it was sent",
                d1_core::names::shown(named)
            ),
            again,
        ),
        _ => (
            format!(
                "{}d1_migrations, as read now, does not list it: wrangler sends each file as one \
                 request and stops at the first error, but this error is not D1 refusing it, so \
                 if wrangler lost D1's answer, D1 may have applied it, or may still; none after \
                 it was sent",
                match named {
                    Some(_) => format!("wrangler says {shown} failed, and "),
                    None => format!("{shown} was being applied or next, and "),
                }
            ),
            format!(
                "see what is pending with `cargo xtask migrate {} --dry-run`, which reads \
                 d1_migrations again, and migrate again, which applies what it lists",
                plan.env.name
            ),
        ),
    }
}

/// The digest of each of `names` in `dir`; a name whose file is not there
/// (or cannot be read) is left out.
pub fn digests(dir: &Path, names: &[String]) -> BTreeMap<String, FileDigest> {
    names
        .iter()
        .filter(|n| d1_core::names::is_plain_file_name(n))
        .filter_map(|n| {
            let path = dir.join(n);
            let digest = match crate::edge::fsutil::read_regular(&path, "migration") {
                Ok(bytes) => FileDigest::of(&bytes),
                // Too large to hold: its bytes as they are.
                Err(_) => FileDigest::bytes_only(crate::edge::fsutil::sha256_file(&path).ok()?.0),
            };
            Some((n.clone(), digest))
        })
        .collect()
}

/// A migration file's sha256, as a record writes it, and the sha256 of
/// its text with every line ending LF and with every one CRLF: git's
/// `core.autocrlf` checks the same migration out either way on different
/// machines (a record made on a Windows laptop, compared on a Linux CI
/// runner), and neither is an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    pub sha256: String,
    line_endings: [String; 2],
}

impl FileDigest {
    pub fn of(bytes: &[u8]) -> FileDigest {
        let sha = |b: &[u8]| d1_core::names::hex(&<sha2::Sha256 as sha2::Digest>::digest(b));
        let lf = replace_all(bytes, b"\r\n", b"\n");
        let crlf = replace_all(&lf, b"\n", b"\r\n");
        FileDigest {
            sha256: sha(bytes),
            line_endings: [sha(&lf), sha(&crlf)],
        }
    }

    /// A file known by the sha256 of its bytes alone.
    fn bytes_only(sha256: String) -> FileDigest {
        FileDigest {
            line_endings: [sha256.clone(), sha256.clone()],
            sha256,
        }
    }

    /// Whether `recorded` is this file's sha256, its line endings aside.
    pub fn is(&self, recorded: &str) -> bool {
        self.sha256 == recorded || self.line_endings.iter().any(|s| s == recorded)
    }
}

/// `bytes` with every `from` replaced by `to`.
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// An applied migration whose file in `migrations/` is not what was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditedMigration {
    pub name: String,
    /// The sha256 recorded when it was applied.
    pub recorded: String,
    /// Its sha256 now; `None` when the file is gone.
    pub now: Option<String>,
}

/// Of the `applied` migrations that `record` has a sha256 for, those whose
/// `current` sha256 differs or that are missing, in name order.
pub fn edited_migrations(
    record: &BTreeMap<String, String>,
    applied: &[String],
    current: &BTreeMap<String, FileDigest>,
) -> Vec<EditedMigration> {
    let mut edited: Vec<EditedMigration> = applied
        .iter()
        .filter_map(|name| {
            let recorded = record.get(name)?;
            let now = current.get(name);
            (!now.is_some_and(|d| d.is(recorded))).then(|| EditedMigration {
                name: name.clone(),
                recorded: recorded.clone(),
                now: now.map(|d| d.sha256.clone()),
            })
        })
        .collect();
    edited.sort_by(|a, b| a.name.cmp(&b.name));
    edited.dedup();
    edited
}

/// The migrations the backup of manifest `m` records as applied whose
/// file in `dir` has other contents than its record (`migration_sha256`)
/// says, or is gone: [`edited_migrations`], as `migrate` compares them.
/// None for a manifest written before that record.
pub fn edited_since(m: &d1_core::manifest::Manifest, dir: &Path) -> Vec<EditedMigration> {
    let Some(record) = &m.migration_sha256 else {
        return Vec::new();
    };
    edited_migrations(record, &m.migrations, &digests(dir, &m.migrations))
}

/// Whether the migrations in `dir` are those the backup of manifest `m`
/// records it was taken under, each unedited where it records its sha256:
/// the schema they make is then the one its rows were taken from.
pub fn made_the_schema_of(m: &d1_core::manifest::Manifest, dir: &Path) -> bool {
    !m.migrations.is_empty()
        && migration_files(dir).is_ok_and(|files| files == m.migrations)
        && edited_since(m, dir).is_empty()
}

/// The applied migrations whose file in `dir` is not what was applied, as
/// a backup is judged before its triggers are (restore in every mode, its
/// dry run, drill, verify), each list with the record it was found by: the
/// backup's own manifest's ([`edited_since`], none without a manifest),
/// and `machine`'s, this machine's record of what was applied
/// ([`machine_records`], what `migrate --check` reads) with only the
/// migrations whose file is here (another branch lacks some; no edit).
/// The machine's record is compared for every migration it has, whatever
/// the backup records: a manifest is the backup's word, and one that
/// leaves out its `migration_sha256`, or records an edited file's sha256,
/// used to pass the edit (LW), as a dump without a manifest passed with
/// no check at all; with no manifest, every migration in `dir` is the
/// trigger guard's reference. One found by both is told once, by the
/// manifest.
pub fn edited_for_backup(
    manifest: Option<&d1_core::manifest::Manifest>,
    machine: &[Record],
    dir: &Path,
) -> Vec<(Vec<EditedMigration>, String)> {
    let mut found = Vec::new();
    if let Some(m) = manifest {
        found.push((edited_since(m, dir), m.file.name.clone()));
    }
    for record in machine {
        let applied: Vec<String> = record.sha256.keys().cloned().collect();
        let mut edited = edited_migrations(&record.sha256, &applied, &digests(dir, &applied));
        edited.retain(|e| e.now.is_some());
        edited.retain(|e| {
            !found
                .iter()
                .any(|(f, _)| f.iter().any(|n| n.name == e.name))
        });
        found.push((edited, record.source.clone()));
    }
    found.retain(|(edited, _)| !edited.is_empty());
    found
}

/// [`edited_for_backup`]'s findings whose file is here (one gone is
/// another branch's, no edit; only `restore --clean` refuses it): what
/// every restore but `--clean` refuses, and verify warns of.
pub fn edited_and_here(
    manifest: Option<&d1_core::manifest::Manifest>,
    machine: &[Record],
    dir: &Path,
) -> Vec<(Vec<EditedMigration>, String)> {
    let mut found = edited_for_backup(manifest, machine, dir);
    for (edited, _) in &mut found {
        edited.retain(|e| e.now.is_some());
    }
    found.retain(|(edited, _)| !edited.is_empty());
    found
}

/// The records of what was applied that a backup of the environment
/// `source` (by its manifest, or `--source-env` without one; `None`
/// when neither says) is held to, besides its own manifest, when it is
/// restored into `target`: the target's and the source's
/// ([`machine_records`]), never another environment's. The one rule a
/// restore refuses by and verify predicts a restore by (rvMD 1: verify
/// held a backup to the record of every environment whose migrations are
/// `dir`, and warned "restore refuses" of a restore into prod that went
/// on, because staging's record showed an edit).
pub fn records_judging(
    project: &Project,
    scanned: &[inventory::Entry],
    (source, target): (Option<&Environment>, &Environment),
    (file, dir): (&Path, &Path),
) -> Vec<Record> {
    let of: Vec<&Environment> = std::iter::once(target).chain(source).collect();
    machine_records(project, scanned, &of, (file, dir))
}

/// [`edited_for_backup`]'s findings told as `migrate` tells them, each with
/// its record.
pub fn edited_for_backup_report(found: &[(Vec<EditedMigration>, String)], dir: &Path) -> String {
    { found.iter() }
        .map(|(edited, source)| edited_report(edited, dir, (source, source)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// This machine's records of what was applied ([`record_in`], as `migrate
/// --check` reads them: the oldest verified backup's sha256 of each
/// migration) of each of `envs` whose migrations are `dir`'s, among the
/// backups `scanned`, leaving out the backup `file` being judged: its own
/// manifest is never its record. None on a machine with no verified whole
/// backup of them (a fresh clone restoring a colleague's backup): the
/// backup's own manifest is then all there is to compare with. The
/// bucket's record is not read: `migrate` only warns of what it shows
/// ([`told_if_from_bucket`]), and a restore from a file reads no bucket.
pub fn machine_records(
    project: &Project,
    scanned: &[inventory::Entry],
    envs: &[&Environment],
    (file, dir): (&Path, &Path),
) -> Vec<Record> {
    let itself = |entry: &inventory::Entry| {
        entry.file == file
            || std::fs::canonicalize(&entry.file)
                .is_ok_and(|a| std::fs::canonicalize(file).is_ok_and(|b| a == b))
    };
    let others: Vec<inventory::Entry> =
        { scanned.iter() }.filter(|e| !itself(e)).cloned().collect();
    let mut seen = BTreeSet::new();
    { envs.iter() }
        .filter(|env| project.config_dir.join(&env.migrations_dir) == dir)
        .filter(|env| seen.insert(env.name.clone()))
        .filter_map(|env| record_in(&others, env))
        .collect()
}

/// The record a new backup writes for its `applied` migrations: the
/// `previous` backup's sha256 where it has one (an edit made since is not
/// recorded as what was applied), else the file's sha256 now.
pub fn carried_record(
    applied: &[String],
    previous: Option<&BTreeMap<String, String>>,
    current: &BTreeMap<String, FileDigest>,
) -> BTreeMap<String, String> {
    applied
        .iter()
        .filter_map(|name| {
            let sha = previous
                .and_then(|p| p.get(name))
                .or_else(|| current.get(name).map(|d| &d.sha256))?;
            Some((name.clone(), sha.clone()))
        })
        .collect()
}

/// Which files changed, against what, and what to do instead; a file
/// that is gone is told apart ([`missing_report`]): a checkout of another
/// branch lacks it, which no `git log -p` shows as an edit.
///
/// A gone file no backup records (applied since the last one, `recorded`
/// `unknown`) is told as recorded in `database`'s d1_migrations alone,
/// never in a backup that predates it.
pub fn edited_report(
    edited: &[EditedMigration],
    dir: &Path,
    (source, database): (&str, &str),
) -> String {
    let (changed, missing): (Vec<&EditedMigration>, Vec<&EditedMigration>) =
        edited.iter().partition(|e| e.now.is_some());
    let (unrecorded, recorded): (Vec<&EditedMigration>, Vec<&EditedMigration>) =
        missing.iter().partition(|e| e.recorded == UNRECORDED);
    let names =
        |of: &[&EditedMigration]| -> Vec<String> { of.iter().map(|e| e.name.clone()).collect() };
    let alone = format!("{database}'s d1_migrations");
    let told: Vec<String> = [
        (names(&recorded), source),
        (names(&unrecorded), alone.as_str()),
    ]
    .into_iter()
    .filter(|(names, _)| !names.is_empty())
    .map(|(names, source)| missing_report(&names, dir, source))
    .collect();
    let missing = (!told.is_empty()).then(|| told.join(" "));
    if changed.is_empty() {
        return missing.unwrap_or_default();
    }
    let report = format!(
        "{} already applied changed in {} since it was applied ({}; recorded in {source}). D1 \
         records migrations by name only, so the change would never reach the database, and a \
         clean restore would build another schema. Add a new migration, don't edit an applied \
         one: put {} back as it was and make the change in a new migration file. {}",
        count(changed.len(), "migration"),
        dir.display(),
        changed_lines(&changed),
        d1_core::wording::them(changed.len()),
        where_the_edit_shows(&changed_paths(&changed, dir))
    );
    match missing {
        Some(missing) => format!("{report} {missing}"),
        None => report,
    }
}

/// How to see an edit to the applied migrations at `paths` (quoted for
/// the shell): `git log -p` prints nothing for a file never committed, so
/// what works then is said too (MG 2).
fn where_the_edit_shows(paths: &str) -> String {
    format!(
        "`git log -p -- {paths}` shows an edit committed, `git diff -- {paths}` one not yet \
         committed, and `git status -- {paths}` whether git has the file at all: for one it \
         never had, the text applied is kept nowhere (the backups and the migrations journal \
         record its sha256 only), and it is back when `sha256sum {paths}` prints the sha256 it \
         was applied as (its first digits are named above)."
    )
}

/// `0001_a.sql (applied as sha256 …, now …); …`.
fn changed_lines<E: Borrow<EditedMigration>>(changed: &[E]) -> String {
    let lines: Vec<String> = { changed.iter().map(Borrow::borrow) }
        .map(|e: &EditedMigration| {
            format!(
                "{} (applied as sha256 {}, now {})",
                e.name,
                short(&e.recorded),
                short(e.now.as_deref().unwrap_or_default())
            )
        })
        .collect();
    lines.join("; ")
}

/// The files of `changed` in `dir`, each quoted for the shell.
fn changed_paths<E: Borrow<EditedMigration>>(changed: &[E], dir: &Path) -> String {
    { changed.iter().map(Borrow::borrow) }
        .map(|e: &EditedMigration| {
            d1_core::wording::shell_word(&format!("{}/{}", dir.display(), e.name))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Applied migrations (as `source` records) that `dir` does not hold: this
/// checkout lacks them, as a checkout of another branch than the one that
/// applied them does.
pub fn missing_report(missing: &[String], dir: &Path, source: &str) -> String {
    let one = missing.len() == 1;
    let them = d1_core::wording::them(missing.len());
    format!(
        "{} applied (recorded in {source}) {} not in {} ({}): this checkout lacks {them}, as a \
         checkout of another branch than the one that applied {them} does, or {} deleted \
         here. To go on with that schema, check out the branch that has {them}; to stay on \
         this branch, restore a backup taken on this branch; if {} deleted or renamed on \
         purpose (a squash, a renumbering after a rebase), put {them} back (`git log \
         --diff-filter=DR --name-status -- {}` shows the commit and the file's new name) and \
         take out the file that replaced {them}, which would run again on a database that has \
         {them}: an applied migration's file stays as long as the database records it. If \
         {} recorded by hand (inserted into d1_migrations, with no file ever), add a file of \
         {} holding what the database already has, or, after checking that its schema has \
         nothing of {them}, delete {} from d1_migrations.",
        count(missing.len(), "migration"),
        if one { "is" } else { "are" },
        dir.display(),
        d1_core::wording::listed(missing, "migration"),
        if one { "it was" } else { "they were" },
        if one { "it was" } else { "they were" },
        d1_core::wording::shell_word(&dir.display().to_string()),
        if one { "it was" } else { "they were" },
        if one { "that name" } else { "each name" },
        if one { "its row" } else { "their rows" },
    )
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The migration record of an environment's newest verified whole backup
/// that has one, and which backup that is.
pub struct Record {
    pub sha256: BTreeMap<String, String>,
    pub source: String,
    /// The migrations the newest verified backup's database had applied
    /// (its manifest's list): the database `status` and `migrate --check`
    /// without a target compare the record for. The record keeps a
    /// migration rolled back since ([`record_in`]), which no database may
    /// have applied any more (its file deleted, its fix a new migration):
    /// taken as applied, it was told as lacking, and `migrate --check`
    /// FAILED on it.
    pub applied: Vec<String>,
    /// Read from the environment's bucket (this machine holds no verified
    /// backup of it): anyone holding the bucket's object token can write
    /// it, so an edit it shows is warned about, not refused
    /// ([`told_if_from_bucket`]), and it is never carried into a new backup.
    pub from_bucket: bool,
}

/// The record of what was applied: the newest verified backup's on this
/// machine, or else the newest verified offsite copy's manifest, read from
/// the environment's bucket, so that a fresh machine (a CI runner, whose
/// `backups/` is empty) compares with the record too. An unreadable bucket
/// is a warning, and only this machine's backups are compared. A backup
/// directory that cannot be read (or that a newer version wrote to) is an
/// error, never "no record": without the record an edited migration would
/// pass unseen.
pub fn record_for(sh: &Shell, project: &Project, env: &Environment) -> Result<Option<Record>> {
    if let Some(record) = record_on_this_machine(project, env)? {
        return Ok(Some(record));
    }
    Ok(
        match crate::steps::offsite::newest_manifest(sh, project, env) {
            Ok(Some((manifest, source))) => manifest.migration_sha256.map(|sha256| Record {
                sha256,
                source,
                applied: manifest.migrations,
                from_bucket: true,
            }),
            Ok(None) => None,
            Err(e) => {
                crate::warn!(
                    "could not read {}'s newest offsite manifest for the migration record: \
                     {e:#}; comparing with the backups on this machine only",
                    env.name
                );
                None
            }
        },
    )
}

/// The record of the verified backups on this machine ([`record_in`] of
/// the backup directory, read here).
pub fn record_on_this_machine(project: &Project, env: &Environment) -> Result<Option<Record>> {
    Ok(record_in(&inventory::scan(&project.backup_dir)?, env))
}

/// The record of the verified backups of `env` among those `scanned` (the
/// directory read once, by a command that reads it for more than this):
/// for each migration, the sha256 the oldest one recorded (what was
/// applied is what was first recorded). A newer manifest that leaves a
/// migration out, or records it otherwise, cannot whitewash an edit: the
/// older record stands, whatever any later manifest says.
///
/// A migration once seen unapplied again used to start a new record at the
/// next backup that saw it applied, so that one rolled back (a restore to
/// before it), fixed and applied again was judged by its new file. But a
/// manifest that leaves it out is all that told a rollback, and anyone who
/// can write to `backups/` can plant one dated after every real backup:
/// one that leaves an edited migration out erased its record (restore,
/// drill and `migrate --check` then compared nothing), and a second that
/// records the edited file became the record, carried into every later
/// backup. So a migration's name, once applied and recorded, keeps its
/// first sha256: a fix of one rolled back goes in a new migration file
/// (every database that applied the first, another developer's, staging,
/// would never get an edit made under the same name either). A migration
/// whose file is deleted keeps its record too: it is compared only while a
/// database has it applied and its file is here.
pub fn record_in(scanned: &[inventory::Entry], env: &Environment) -> Option<Record> {
    let now = chrono::Utc::now();
    let mut entries: Vec<_> = { scanned.iter() }
        // Only a whole backup saw every applied migration: one of chosen
        // tables or of the schema holds no d1_migrations rows, and its empty
        // record would let an edit through (and be carried forward).
        .filter(|e| env.records(&e.manifest))
        .filter(|e| e.is_verified_good() && e.is_whole())
        // One taken without migrations/ records `{}`: no record (MG2).
        .filter(|e| e.manifest.is_migration_record())
        // One dated after now is no newer record than those taken since
        // (a clock that ran fast, or a planted 2099 manifest).
        .filter(|e| e.manifest.created_at <= now)
        .collect();
    entries.reverse();
    let mut sha256: BTreeMap<String, (String, String)> = BTreeMap::new();
    for e in &entries {
        let m = &e.manifest;
        for (name, sha) in m.migration_sha256.iter().flatten() {
            sha256
                .entry(name.clone())
                .or_insert_with(|| (sha.clone(), m.file.name.clone()));
        }
    }
    let sources: BTreeSet<&String> = sha256.values().map(|(_, file)| file).collect();
    // The oldest by the backups' order (`entries` is oldest first), never by
    // their names' text: `…-0245-2.sql` sorts before `…-0245.sql`, and
    // `-10` before `-2`.
    let oldest = { entries.iter() }
        .map(|e| &e.manifest.file.name)
        .find(|name| sources.contains(name));
    let (Some(first), Some(oldest)) = (sources.iter().next(), oldest) else {
        return None;
    };
    // The newest verified backup carries the record (each backup carries
    // its predecessor's); where it was first made is said beside it.
    let newest = entries.last().map(|e| &e.manifest.file.name)?;
    let applied = { entries.last() }.map_or_else(Vec::new, |e| e.manifest.migrations.clone());
    let source = match sources.len() {
        1 if *first == newest => first.to_string(),
        1 => format!("{newest}, whose record of them dates from {first}"),
        n => format!(
            "{newest}, whose record of them dates from {n} verified backups of {}, the oldest \
             {oldest}",
            env.name
        ),
    };
    Some(Record {
        sha256: sha256.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        source,
        applied,
        from_bucket: false,
    })
}

/// Writes into the backup lock that `plan`'s migrations are being applied
/// to its database, with the way back from `backup` (the pre-migration
/// backup, if one was taken), so that if this run is killed the next run
/// that takes the lock tells it. Returns that way back. The plan's
/// migrations are copied for wrangler ([`stage`]) before this and before
/// the backup: a copy refused (exit 3, a migration changed since the plan)
/// is refused with nothing written.
pub fn record_applying(
    project: &Project,
    lock: &crate::edge::lock::BackupLock,
    plan: &MigrationPlan<'_>,
    backup: Option<&Path>,
) -> Result<Applying> {
    let env = plan.env;
    let applying = match backup {
        Some(file) => {
            let triggers = way_back_triggers(project, file, env, (None, None));
            Applying {
                advice: restore_advice_allowing(
                    file,
                    env,
                    ("the pre-migration backup", None),
                    &triggers,
                ),
                way_back: Some(restore_command(file, env, None, &triggers)),
                kept: format!(
                    "Its pre-migration backup, {}, is kept.",
                    d1_core::names::shown(&file.display().to_string())
                ),
            }
        }
        None => Applying {
            advice: "no backup was taken (--no-backup)".to_owned(),
            way_back: None,
            kept: "No backup was taken (--no-backup).".to_owned(),
        },
    };
    lock.record(crate::edge::lock::Doing::Migrating {
        env: env.name.clone(),
        backup: backup.map(|f| d1_core::names::file_name(f).to_string()),
        backup_sha256: backup.and_then(crate::edge::lock::sha256_of),
    })?;
    Ok(applying)
}

/// The way back from a migration, once [`record_applying`] wrote it: the
/// advice every failure and interruption ends with, and the command alone
/// (`None` with `--no-backup`), which `migrate --json` gives a script;
/// and what a failure that applied nothing says of the backup instead,
/// with nothing to restore (`kept`).
pub struct Applying {
    pub advice: String,
    pub way_back: Option<String>,
    pub kept: String,
}

impl Applying {
    /// What a failed [`apply`] tells: the way back, and what it says of
    /// the backup instead when it applied nothing.
    pub fn told(&self) -> (&str, &str) {
        (&self.advice, &self.kept)
    }
}

/// A failed [`apply`]'s error, as said ([`failed_said`]), with the
/// migrations this run applied before it failed, read again from
/// d1_migrations (`None` when that read failed): `migrate --json`'s
/// failure document gives them (LP).
#[derive(Debug)]
pub struct FailedApply {
    pub said: String,
    pub applied: Option<Vec<String>>,
    /// Whether it applied nothing, the database as it was before the run,
    /// so that its way back is no restore (`--json`'s `result.way_back`
    /// is null, as the text gives none: OA 2); a remote request D1 may
    /// still carry out keeps it.
    pub nothing_to_restore: bool,
}

impl std::fmt::Display for FailedApply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.said)
    }
}

/// The way back to what `env`'s database held when `which` backup (`the
/// pre-migration backup`) was taken: the command that restores it, with
/// the `--allow-trigger` names that backup needs ([`way_back_triggers`],
/// read from its dump).
pub fn restore_advice(
    project: &Project,
    file: &Path,
    env: &Environment,
    which: &str,
    identity: Option<&Path>,
) -> String {
    let triggers = way_back_triggers(project, file, env, (None, identity));
    restore_advice_allowing(file, env, (which, identity), &triggers)
}

/// The trigger names a restore of a backup needs, as restore's guard
/// judges them ([`way_back_triggers`]): a printed way back carries them.
#[derive(Debug, Clone, Default)]
pub struct WayBack {
    /// Its triggers that no migration it records creates:
    /// `--allow-trigger NAME`.
    pub foreign: Vec<String>,
    /// Its migrations' triggers it lacks on its tables (a target whose
    /// trigger was dropped by hand): `--allow-missing-trigger NAME`.
    pub missing: Vec<String>,
    /// Its tables and indexes defined otherwise than its migrations make
    /// them, or theirs it lacks (an index dropped by hand), as restore's
    /// schema guard judges them: `--allow-schema-change NAME` (LX2).
    pub changed: Vec<String>,
    /// Its schema could not be read here (a sealed backup this run holds
    /// no identity for, and did not read itself): no flag is known, and
    /// none is made up from what was not read (MF); the way back says
    /// that the restore names any trigger to allow.
    pub unread: bool,
}

impl WayBack {
    /// The flags, each name quoted for the shell: ` --allow-trigger a
    /// --allow-missing-trigger b`.
    pub fn flags(&self) -> String {
        flags("--allow-trigger", &self.foreign)
            + &flags("--allow-missing-trigger", &self.missing)
            + &flags("--allow-schema-change", &self.changed)
    }
}

/// A schema as [`way_back_triggers`] judges it: its triggers (by name,
/// their `CREATE TRIGGER` text), its tables' names, and its tables and
/// indexes (by name, their text).
pub type Held = d1_core::repair::SchemaHeld;

/// The names a restore of the backup `file` into `env` must be given
/// ([`WayBack`]): its triggers that no migration it records as applied
/// creates (of `env`'s migrations_dir), and those migrations' triggers it
/// lacks on its tables, as restore's guard judges them. Every printed way
/// back takes its names from here (rvAT, LA: one without them was refused
/// as printed, exit 3, for a trigger made by hand, or one dropped by
/// hand). `held`: the schema as read from the database just before the
/// backup was taken of it (a restore's safety backup: the target's, read
/// under the lock, whatever key the backup is sealed to); else it is read
/// from the backup's dump, opened with `identity` if it is sealed. The way
/// back names only a whole backup of that database, which holds what it
/// held. Empty, and [`WayBack::unread`], when the dump cannot be read (a
/// sealed backup and no identity): a restore of it then names them in its
/// refusal. When a
/// migration cannot be run here, every trigger is named (LF: the guard
/// then fails closed), and those of the migrations before it that the
/// backup lacks (LN: the guard requires them).
pub fn way_back_triggers(
    project: &Project,
    file: &Path,
    env: &Environment,
    (held, identity): (Option<&Held>, Option<&Path>),
) -> WayBack {
    let read;
    let (triggers, tables, defined) = match held {
        Some(held) => held,
        None => {
            let held = remembered_schema(file).or_else(|| {
                let held = schema_in_dump(project, file, identity).ok()?;
                remember_schema(file, &held);
                Some(held)
            });
            let Some(held) = held else {
                return WayBack {
                    unread: true,
                    ..WayBack::default()
                };
            };
            read = held;
            &read
        }
    };
    use crate::edge::manifest_file::ManifestFile as _;
    let manifest = d1_core::manifest::Manifest::for_backup(file).ok();
    let applied = manifest.as_ref().and_then(|m| m.applied_migrations());
    let dir = project.config_dir.join(&env.migrations_dir);
    // Printed on an interrupted command's way out too: it finishes (MA).
    let held = held_names(tables, triggers);
    let required = triggers_required_as(applied, &dir, &held, OnInterrupt::Finish);
    let missing = { missing_triggers(&required.made, triggers, tables).into_iter() }
        .map(|(name, _)| name.clone())
        .collect();
    match required.unrun {
        None => {
            let changes = d1_core::catalog::schema_changes_constraining(defined, &required.schema);
            WayBack {
                foreign: d1_core::catalog::foreign_triggers(triggers, &texts(&required.made)),
                missing,
                changed: { changes.changed.into_iter() }
                    .chain(changes.missing)
                    .collect(),
                unread: false,
            }
        }
        // Restore's schema guard refuses what it cannot compare then.
        Some(_) => WayBack {
            foreign: triggers.keys().cloned().collect(),
            missing,
            changed: uncompared(defined, &required.schema),
            unread: false,
        },
    }
}

/// The schemas ([`Held`]) of the dumps this run has read whole, by path:
/// the backup it just took, as its verification's survey read it
/// ([`crate::steps::verify::Report::schema`]), or a stored backup a way
/// back named. A way back to one of them takes its triggers from here:
/// reading a dump again, decompressed, decrypted and parsed, would take as
/// long as its verification did, for a backup of many gigabytes minutes
/// more (LJ: migrate's way back read the pre-migration backup it had just
/// verified a second time). Each is a backup this run wrote or read under
/// the backup lock.
static READ: std::sync::Mutex<Vec<(PathBuf, Held)>> = std::sync::Mutex::new(Vec::new());

/// Remembers that the dump `file` creates `held` ([`READ`]).
pub fn remember_schema(file: &Path, held: &Held) {
    let mut read = READ
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    read.retain(|(f, _)| f != file);
    read.push((file.to_path_buf(), held.clone()));
}

/// The schema of `file` as this run read it already ([`READ`]).
fn remembered_schema(file: &Path) -> Option<Held> {
    let read = READ
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    { read.iter() }
        .find(|(f, _)| f == file)
        .map(|(_, held)| held.clone())
}

/// The triggers the dump of the backup `file` creates (by name, their
/// `CREATE TRIGGER` text) and its tables, read a statement at a time.
fn schema_in_dump(project: &Project, file: &Path, identity: Option<&Path>) -> Result<Held> {
    let source = crate::edge::stored::Source::for_file(file, identity, &project.age())?;
    let (mut triggers, mut tables, mut defined) = (BTreeMap::new(), Vec::new(), BTreeMap::new());
    for statement in d1_core::statement::Statements::new(source.open()?) {
        let sql = statement?.sql;
        // A sqlite3 .dump's FTS5 record, as the CREATE restore judges it by.
        let Some(sql) = d1_core::repair::judged_create(&sql).map(Cow::into_owned) else {
            continue;
        };
        match d1_core::statement::created_any(&sql) {
            Some(("trigger", name)) => {
                triggers.insert(name, sql);
            }
            Some(("table", name)) => {
                tables.push(name.clone());
                defined.insert(name, sql);
            }
            Some(("index" | "view" | "virtual table", name)) => {
                defined.insert(name, sql);
            }
            _ => {}
        }
    }
    Ok((triggers, tables, defined))
}

/// [`restore_advice`], with the flags `triggers` names ([`WayBack`]): the
/// triggers the backup holds that no migration creates, and the
/// migrations' it lacks, which the restore refuses unless named (a safety
/// backup of a target that held them, or had lost them). Its command is a
/// line of its own, and that line ended ([`crate::out::command_apart`]):
/// whatever the message goes on with starts the next. What a placeholder
/// in it stands for (KEYFILE) is told before, never on the command's line,
/// which pasted whole must run (LR: `… --identity KEYFILE (KEYFILE: …)`
/// was a syntax error at `(`). Triggers not read ([`WayBack::unread`])
/// are said to be named by the restore, not guessed.
pub fn restore_advice_allowing(
    file: &Path,
    env: &Environment,
    (which, identity): (&str, Option<&Path>),
    triggers: &WayBack,
) -> String {
    let unread = match triggers.unread {
        true => {
            " (its triggers could not be read here: the restore names any trigger to allow, \
                  with its flag)"
        }
        false => "",
    };
    crate::out::command_apart(&format!(
        "to go back, restore {which}{unread}{}: {}",
        keyfile_told(file, identity),
        restore_command(file, env, identity, triggers)
    ))
}

/// ` (KEYFILE below: …)`, what the placeholder of a way back to `file`
/// stands for, told before the command ([`restore_advice_allowing`]);
/// empty when it has none.
pub fn keyfile_told(file: &Path, identity: Option<&Path>) -> String {
    match needs_keyfile(file, identity) {
        true => keyfile_note(),
        false => String::new(),
    }
}

/// What is told before a command that carries `--identity KEYFILE`.
pub fn keyfile_note() -> String {
    format!(" (KEYFILE below: {KEYFILE_IS})")
}

/// What KEYFILE, the placeholder of a way back to a sealed backup this run
/// was given no identity for, stands for.
const KEYFILE_IS: &str = "the age identity file of one of the recipients it is sealed to";

/// Whether the way back to `file` names its identity by a placeholder,
/// KEYFILE: an encrypted backup opens only with one, and this run was not
/// given one that opens it (`identity`).
fn needs_keyfile(file: &Path, identity: Option<&Path>) -> bool {
    file.extension().is_some_and(|e| e == "age") && identity.is_none()
}

/// The placeholders [`restore_command`] leaves in the way back to `file`,
/// each with what fills it (`{}` when it runs as it is): `migrate --json`
/// gives them with its `way_back`, which a script cannot run before it
/// fills them (LR).
pub fn way_back_placeholders(file: &Path, identity: Option<&Path>) -> serde_json::Value {
    match needs_keyfile(file, identity) {
        true => serde_json::json!({ "KEYFILE": KEYFILE_IS }),
        false => serde_json::json!({}),
    }
}

/// The command alone that [`restore_advice_allowing`] gives: a `--json`
/// document carries it for a script (`migrate`'s `result.way_back`).
pub fn restore_command(
    file: &Path,
    env: &Environment,
    identity: Option<&Path>,
    triggers: &WayBack,
) -> String {
    let confirm = if env.is_production() {
        format!(" --confirm {}", env.database_name)
    } else {
        " --yes".to_owned()
    };
    // An encrypted backup opens only with an identity: the one this run
    // used (a path, no secret), or else the file the operator must name.
    let identity = match (file.extension().is_some_and(|e| e == "age"), identity) {
        (false, _) => String::new(),
        (true, Some(id)) => format!(
            " --identity {}",
            d1_core::wording::shell_word(&id.display().to_string())
        ),
        (true, None) => " --identity KEYFILE".to_owned(),
    };
    crate::out::to_paste(format!(
        "cargo xtask restore {} --to {} --replace{confirm}{identity}{}",
        d1_core::wording::shell_word(&file.display().to_string()),
        env.name,
        triggers.flags()
    ))
}

/// Of a dump without a manifest whose schema statements are `schema`:
/// the tables it makes, and those of the migrations in `dir` (the ones
/// its `recorded` rows of `d1_migrations` name, else all) it does not
/// make, `d1_migrations` counted as theirs; `None` when it makes none of
/// them, or what they make is not known. A hand export of chosen tables
/// (`wrangler d1 export --table`, or one cut short) lacks some.
pub fn migration_tables_made(
    schema: &[String],
    dir: &Path,
    recorded: &[String],
) -> Option<(Vec<String>, Vec<String>)> {
    let created: Vec<String> = { schema.iter() }
        .filter_map(|sql| d1_core::statement::created_any(sql))
        .filter(|(kind, _)| *kind == "table")
        .map(|(_, name)| name)
        .collect();
    let creates = |name: &str| created.iter().any(|c| c.eq_ignore_ascii_case(name));
    // Migrations that cannot be listed: what they make is not known, and
    // the trigger and schema guards refuse what they cannot check.
    let Ok(files) = migration_files(dir) else {
        return None;
    };
    let applied: Vec<String> = match recorded.is_empty() {
        true => files,
        false => files.into_iter().filter(|f| recorded.contains(f)).collect(),
    };
    let made = read_migrations(dir, &applied).and_then(|read| schema_created_by(&read));
    let Ok((mut tables, _)) = made else {
        // Migrations that do not run here: what they make is not known.
        return None;
    };
    // SQLite's and D1's own tables are no table of the migrations', nor
    // their virtual tables and those tables' own (FTS5's `NAME_data` …),
    // which no export holds: the restore makes them from the migrations.
    let is_virtual = |sql: &str| d1_core::statement::created_virtual_table(sql).is_some();
    let shadowed: Vec<String> = { tables.iter() }
        .filter(|(_, sql)| is_virtual(sql))
        .map(|(t, _)| format!("{}_", t.to_ascii_lowercase()))
        .collect();
    tables.retain(|t, sql| {
        let own = |v: &String| t.to_ascii_lowercase().starts_with(v.as_str());
        !t.starts_with("sqlite_")
            && !t.starts_with("_cf_")
            && !is_virtual(sql)
            && !shadowed.iter().any(own)
    });
    tables.insert(
        d1_core::statement::MIGRATIONS_TABLE.to_owned(),
        String::new(),
    );
    if !tables.keys().any(|t| creates(t)) {
        return None;
    }
    let missing = tables.into_keys().filter(|t| !creates(t)).collect();
    Some((created, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MG2 3: a backup taken without `migrations/` (its verification says
    /// its migrations were not checked) records `{}` while listing every
    /// applied migration. Never the record, nor the backup named as the
    /// one compared with: the next verified backup that checked them is.
    #[test]
    fn a_backup_whose_migrations_were_not_checked_is_never_the_record() {
        use crate::edge::inventory::tests::{entry, repo_environment};
        let local = repo_environment("local");
        let of = |minutes: i64, unchecked: bool| {
            let mut e = entry("local", "full", minutes, Some("good"));
            e.manifest.database.name = local.database_name.clone();
            e.manifest.migrations = vec!["0001_a.sql".to_owned()];
            e.manifest.migration_sha256 = Some(match unchecked {
                true => BTreeMap::new(),
                false => [("0001_a.sql".to_owned(), "ab".repeat(32))].into(),
            });
            if let Some(v) = e.manifest.verification.as_mut() {
                v.migrations_unchecked = unchecked;
            }
            e
        };
        // Newest first, as the directory is scanned.
        let entries = vec![of(20, true), of(10, false)];
        let record = record_in(&entries, &local).expect("the checked backup's record");
        assert_eq!(record.source, entries[1].manifest.file.name);
        assert_eq!(record.sha256["0001_a.sql"], "ab".repeat(32));
        assert!(record_in(&entries[..1], &local).is_none());
    }

    /// LR 4: a refusal's missing triggers, `NAME on TABLE (MIGRATION)`, each
    /// name the migration that creates them whole, however long the
    /// trigger's and table's names (a dump's) are: each item was cut
    /// whole at 120 characters, and lost it. Those names are cut, each.
    #[test]
    fn a_missing_triggers_item_keeps_its_migration_however_long_its_names() {
        let (name, table) = ("t".repeat(300), "a".repeat(300));
        let made = MadeTrigger {
            sql: String::new(),
            table: table.clone(),
            migration: "0007_audit_log_guards.sql".to_owned(),
        };
        let said = missing_said(&[(&name, &made)]);
        assert!(said.ends_with(" (0007_audit_log_guards.sql)"), "{said}");
        assert!(said.contains(&format!("{}… on ", &name[..120])), "{said}");
        assert!(
            said.contains(&format!(" on {}… (", &table[..120])),
            "{said}"
        );
    }

    /// A fresh clone without `migrations/` (moved aside, not checked out)
    /// is told as a missing file, exit 2, naming the directory and the
    /// fix, not `cannot read …: No such file or directory`, exit 1 (LZ).
    #[test]
    fn a_missing_migrations_directory_is_named_with_its_fix_and_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("migrations");
        let e = migration_files(&gone).unwrap_err();
        assert_eq!(Exit::of(&e), Some(Exit::CouldNotRun), "{e:#}");
        let said = format!("{e:#}");
        assert!(said.contains(&gone.display().to_string()), "{said}");
        assert!(
            said.contains("migrations_dir") && said.contains("does not exist"),
            "{said}"
        );
        assert!(said.contains("git checkout"), "{said}");
    }

    /// Without the directory, what the migrations make is unknown, not
    /// none: restore refuses a backup's triggers saying why, and verify
    /// cannot call them its migrations' (LZ: verify said GOOD where
    /// restore refused).
    #[test]
    fn a_missing_migrations_directory_leaves_the_triggers_unknown_not_none() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("migrations");
        let required = triggers_required(None, &gone, &[]);
        let unrun = required.unrun.expect("unknown, not none");
        assert!(format!("{unrun:#}").contains("does not exist"), "{unrun:#}");
        assert!(triggers_made(None, &gone).is_err());
    }

    /// A migration deleted on purpose (a squash) has a way forward too, and
    /// the command it gives pastes into a shell as it reads.
    #[test]
    fn a_missing_migration_is_given_the_way_back_for_a_squash_quoted_for_the_shell() {
        let report = missing_report(
            &["0001_init.sql".to_owned()],
            Path::new("db migrations"),
            "the database's d1_migrations",
        );
        assert!(
            report.contains("if it was deleted or renamed on purpose"),
            "{report}"
        );
        assert!(
            report.contains("`git log --diff-filter=DR --name-status -- 'db migrations'`"),
            "{report}"
        );
    }

    #[test]
    fn pending_is_what_is_not_applied_in_name_order() {
        let files = ["0002_b.sql", "0001_a.sql", "0003_c.sql"].map(String::from);
        let applied = ["0001_a.sql"].map(String::from);
        assert_eq!(pending(&files, &applied), ["0002_b.sql", "0003_c.sql"]);
        assert!(pending(&files[..1], &files[..1]).is_empty());
    }

    #[test]
    fn a_dumps_own_migrations_differ_only_as_a_set_and_never_quote_its_rows() {
        let files = ["1_a.sql", "2_b.sql", "10_c.sql"].map(String::from);
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // wrangler's order of unpadded names, and no rows at all, pass.
        assert_eq!(
            dump_records_others(&names(&["1_a.sql", "10_c.sql", "2_b.sql"]), &files),
            None
        );
        assert_eq!(dump_records_others(&[], &files), None);
        let said = dump_records_others(&names(&["1_a.sql", "secret-row-value"]), &files).unwrap();
        assert!(said.contains("none of 2_b.sql, 10_c.sql"), "{said}");
        assert!(said.contains("records 1 migration that"), "{said}");
        assert!(!said.contains("secret"), "{said}");
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Files whose sha256 is the text given, whatever their line endings.
    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, FileDigest> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), FileDigest::bytes_only((*v).to_owned())))
            .collect()
    }

    #[test]
    fn an_applied_migration_with_other_contents_or_gone_is_edited() {
        let record = map(&[
            ("0001_a.sql", "aa"),
            ("0002_b.sql", "bb"),
            ("0003_c.sql", "cc"),
        ]);
        let applied = ["0001_a.sql", "0002_b.sql", "0003_c.sql"].map(String::from);
        let current = files(&[("0001_a.sql", "aa"), ("0002_b.sql", "XX")]);
        let edited = edited_migrations(&record, &applied, &current);
        assert_eq!(
            edited,
            [
                EditedMigration {
                    name: "0002_b.sql".into(),
                    recorded: "bb".into(),
                    now: Some("XX".into())
                },
                EditedMigration {
                    name: "0003_c.sql".into(),
                    recorded: "cc".into(),
                    now: None
                }
            ]
        );
        // Only what the target has applied counts: 0002 was rolled back.
        assert_eq!(
            edited_migrations(&record, &applied[..1], &current),
            Vec::new()
        );
        // Unchanged files, and names the record does not know, pass.
        let unrecorded = ["0001_a.sql", "0009_new.sql"].map(String::from);
        assert!(
            edited_migrations(&record, &unrecorded, &files(&[("0001_a.sql", "aa")])).is_empty()
        );
    }

    #[test]
    fn a_migration_checked_out_with_other_line_endings_is_not_edited() {
        let lf = "CREATE TABLE a(id INTEGER);\nCREATE TABLE b(id INTEGER);\n";
        let crlf = lf.replace('\n', "\r\n");
        let sha = |t: &str| FileDigest::of(t.as_bytes()).sha256;
        // Recorded on a Windows checkout (CRLF), compared on Linux (LF), and
        // the other way round; a file with both kinds is either.
        assert!(FileDigest::of(lf.as_bytes()).is(&sha(&crlf)));
        assert!(FileDigest::of(crlf.as_bytes()).is(&sha(lf)));
        let mixed = "CREATE TABLE a(id INTEGER);\r\nCREATE TABLE b(id INTEGER);\n";
        assert!(FileDigest::of(mixed.as_bytes()).is(&sha(lf)));
        assert!(FileDigest::of(mixed.as_bytes()).is(&sha(&crlf)));
        assert!(FileDigest::of(mixed.as_bytes()).is(&sha(mixed)));
        // Its own sha256 is what a record keeps.
        assert_eq!(
            FileDigest::of(b"x").sha256,
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
        );
        // An edit is an edit, whatever the line endings.
        let edited = lf.replace("b(id", "b(key");
        assert!(!FileDigest::of(edited.as_bytes()).is(&sha(lf)));
        assert!(!FileDigest::of(edited.replace('\n', "\r\n").as_bytes()).is(&sha(lf)));
        // Line endings inside the text are not the only difference told
        // apart: a line break removed is an edit.
        assert!(!FileDigest::of(lf.replace('\n', " ").as_bytes()).is(&sha(lf)));
    }

    #[test]
    fn a_new_record_keeps_what_was_applied_not_a_later_edit() {
        let applied = ["0001_a.sql", "0002_b.sql"].map(String::from);
        let previous = map(&[("0001_a.sql", "original")]);
        let current = files(&[("0001_a.sql", "edited"), ("0002_b.sql", "bb")]);
        assert_eq!(
            carried_record(&applied, Some(&previous), &current),
            map(&[("0001_a.sql", "original"), ("0002_b.sql", "bb")])
        );
        assert_eq!(
            carried_record(&applied, None, &current),
            map(&[("0001_a.sql", "edited"), ("0002_b.sql", "bb")])
        );
        // A migration applied but no longer in migrations/ is not invented.
        assert_eq!(carried_record(&applied, None, &files(&[])), map(&[]));
    }

    #[test]
    fn the_report_names_the_files_and_the_fix() {
        let edited = [EditedMigration {
            name: "0002_b.sql".into(),
            recorded: "b".repeat(64),
            now: Some("c".repeat(64)),
        }];
        let text = edited_report(
            &edited,
            Path::new("migrations"),
            ("backup-prod-1.sql", "db"),
        );
        assert!(
            text.contains("0002_b.sql (applied as sha256 bbbbbbbbbbbb, now cccccccccccc)"),
            "{text}"
        );
        assert!(
            text.contains("Add a new migration, don't edit an applied one"),
            "{text}"
        );
        assert!(text.contains("migrations/0002_b.sql"), "{text}");
        assert!(text.contains("backup-prod-1.sql"), "{text}");
    }

    /// A migration that is gone is not told as an edit: this checkout lacks
    /// it (another branch's), and the fix is that branch or a backup taken
    /// on this one; an edit beside it keeps its own wording.
    #[test]
    fn a_migration_gone_is_told_as_lacking_here_not_edited() {
        let gone = EditedMigration {
            name: "0005_x.sql".into(),
            recorded: "b".repeat(64),
            now: None,
        };
        let text = edited_report(
            std::slice::from_ref(&gone),
            Path::new("migrations"),
            ("backup-local-1.sql", "db"),
        );
        for said in [
            "0005_x.sql",
            "this checkout lacks it",
            "check out the branch that has it",
            "restore a backup taken on this branch",
            "backup-local-1.sql",
        ] {
            assert!(text.contains(said), "{said}: {text}");
        }
        assert!(
            !text.contains("git log -p") && !text.contains("changed in"),
            "{text}"
        );
        let edited = EditedMigration {
            name: "0002_b.sql".into(),
            recorded: "b".repeat(64),
            now: Some("c".repeat(64)),
        };
        let both = edited_report(&[edited, gone], Path::new("migrations"), ("b.sql", "db"));
        assert!(both.contains("0002_b.sql (applied as sha256 bbbbbbbbbbbb, now cccccccccccc)"));
        assert!(both.contains("this checkout lacks it"), "{both}");
    }

    /// Migrations that D1 applies (ALTER TABLE ... RENAME, RENAME COLUMN,
    /// DROP COLUMN; math functions such as ceil()) replay in memory too, or
    /// every trigger would be "foreign" and every backup BAD (found by an
    /// attack on this check); one that cannot run is an error naming it.
    #[test]
    fn triggers_survive_migrations_that_d1_applies() {
        let trigger =
            "CREATE TRIGGER t_count AFTER INSERT ON t BEGIN UPDATE tally SET n = n + 1; END";
        let first = format!(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, price REAL);\n\
             CREATE TABLE tally (n INTEGER NOT NULL);\n{trigger};\n"
        );
        let named = |later: &str| {
            vec![
                ("0001_a.sql".to_owned(), first.clone()),
                ("0002_b.sql".to_owned(), later.to_owned()),
            ]
        };
        for later in [
            "ALTER TABLE t RENAME COLUMN price TO amount;",
            "ALTER TABLE t ADD COLUMN old TEXT; ALTER TABLE t DROP COLUMN old;",
            "CREATE TABLE x (a); ALTER TABLE x RENAME TO y; ALTER TABLE tally RENAME TO counts;",
            "UPDATE t SET price = ceil(price) + pow(2, 3);",
        ] {
            let (tables, triggers) = schema_created_by(&named(later)).unwrap();
            assert!(triggers.contains_key("t_count"), "{later}: {triggers:?}");
            assert!(tables.contains_key("t"), "{later}");
        }
        let err = schema_created_by(&named("CREATE TABLE t (again);")).unwrap_err();
        assert!(format!("{err:#}").contains("0002_b.sql"), "{err:#}");
        // What D1 refuses, and what would write a file, fails by name and
        // writes nothing.
        let dir = tempfile::tempdir().unwrap();
        for (later, file) in [
            ("ATTACH '{}' AS x; CREATE TABLE x.t(a);", "attached.db"),
            ("VACUUM INTO '{}';", "vacuumed.db"),
        ] {
            let path = dir.path().join(file);
            let sql = later.replace("{}", path.to_str().unwrap());
            let err = schema_created_by(&named(&sql)).unwrap_err();
            assert!(format!("{err:#}").contains("0002_b.sql"), "{err:#}");
            assert!(!path.exists(), "{sql} wrote {}", path.display());
        }
    }

    /// The migrations whose tables or triggers a dump holds count as
    /// applied whatever its records say, with every one before them; a
    /// migration that does not run leaves the triggers of those before it
    /// known (LN).
    #[test]
    fn triggers_required_go_by_what_the_dump_holds_and_survive_a_broken_migration() {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in [
            (
                "0001_a.sql",
                "CREATE TABLE a (x); CREATE TRIGGER ta AFTER INSERT ON a BEGIN SELECT 1; END;",
            ),
            (
                "0002_b.sql",
                "CREATE TABLE b (x); CREATE TRIGGER tb AFTER INSERT ON b BEGIN SELECT 1; END;",
            ),
            ("0003_broken.sql", "UPDATE nosuchtable SET x = 1;"),
        ] {
            std::fs::write(dir.path().join(name), sql).unwrap();
        }
        let names = |made: &BTreeMap<String, MadeTrigger>| -> Vec<String> {
            made.keys().cloned().collect()
        };
        let held =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
        // Records of none, a dump holding `B` (case ignored): 0001 and 0002.
        let required = triggers_required(Some(&[]), dir.path(), &held(&["B"]));
        assert_eq!(required.unrecorded, ["0001_a.sql", "0002_b.sql"]);
        assert_eq!(names(&required.made), ["ta", "tb"]);
        assert!(required.unrun.is_none());
        // A dump holding only `a`'s trigger: 0001 alone.
        let required = triggers_required(Some(&[]), dir.path(), &held(&["ta"]));
        assert_eq!(required.unrecorded, ["0001_a.sql"]);
        // Records that name them all, the broken one too: the triggers of
        // those before it, and the broken one named.
        let all = held(&["0001_a.sql", "0002_b.sql", "0003_broken.sql"]);
        let required = triggers_required(Some(&all), dir.path(), &held(&["a", "b"]));
        assert!(required.unrecorded.is_empty());
        assert_eq!(names(&required.made), ["ta", "tb"]);
        let unrun = format!("{:#}", required.unrun.unwrap());
        assert!(unrun.contains("0003_broken.sql"), "{unrun}");
        // A dump of nothing the migrations make, recording none: none.
        let required = triggers_required(Some(&[]), dir.path(), &held(&["other"]));
        assert!(required.unrecorded.is_empty() && required.made.is_empty());
    }

    /// Restore's schema guard compares a dump's tables and indexes with
    /// what the migrations leave when run, not with their files: a table
    /// that `ALTER TABLE … ADD COLUMN` and `RENAME COLUMN` rewrote (and
    /// its index, renamed with it) is the migrations' own as a dump of it
    /// holds it, while a DEFAULT changed, a CHECK dropped or a UNIQUE
    /// index missing is caught.
    #[test]
    fn the_schema_guard_compares_what_the_migrations_leave_not_their_files() {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in [
            (
                "0001_accounts.sql",
                "CREATE TABLE accounts (\n  id INTEGER PRIMARY KEY,\n  email TEXT NOT NULL,\n  \
                 role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin'))\n);\n\
                 CREATE UNIQUE INDEX accounts_email ON accounts (email);",
            ),
            ("0002_mfa.sql", "ALTER TABLE accounts ADD COLUMN mfa BLOB;"),
            (
                "0003_login.sql",
                "ALTER TABLE accounts RENAME COLUMN email TO login;",
            ),
        ] {
            std::fs::write(dir.path().join(name), sql).unwrap();
        }
        let table = "CREATE TABLE accounts (\n  id INTEGER PRIMARY KEY,\n  login TEXT NOT NULL,\n  \
                     role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin'))\n\
                     , mfa BLOB);";
        let index = "CREATE UNIQUE INDEX accounts_email ON accounts (login);";
        let dump = |texts: &[&str]| -> BTreeMap<String, String> {
            { texts.iter() }
                .map(|sql| {
                    let (_, name) = d1_core::statement::created_object(sql).unwrap();
                    (name, (*sql).to_owned())
                })
                .collect()
        };
        let required = triggers_required(None, dir.path(), &["accounts".to_owned()]);
        let changes =
            |texts: &[&str]| d1_core::catalog::schema_changes(&dump(texts), &required.schema);
        assert!(changes(&[table, index]).is_empty(), "{:?}", required.schema);
        let admin = table
            .replace("DEFAULT 'member'", "DEFAULT 'admin'")
            .replace(" CHECK (role IN ('member', 'admin'))", "");
        assert_eq!(changes(&[&admin, index]).changed, ["accounts"]);
        let dropped = changes(&[table]);
        assert_eq!(
            (dropped.changed.len(), dropped.missing),
            (0, vec!["accounts_email".to_owned()])
        );
        let not_unique = index.replace("UNIQUE ", "");
        assert_eq!(changes(&[table, &not_unique]).changed, ["accounts_email"]);
        // A table no migration makes is not judged.
        assert!(changes(&[table, index, "CREATE TABLE notes (x)"]).is_empty());
    }

    /// wrangler's choice of files and its order: numbers read as numbers,
    /// numbered files first; hidden files and links are not migrations.
    #[test]
    fn migrations_are_the_files_wrangler_applies_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "10_nickname.sql",
            "1_accounts.sql",
            "2_b.sql",
            "0003_c.sql",
            "notes.sql",
        ] {
            std::fs::write(dir.path().join(name), "SELECT 1;").unwrap();
        }
        // An editor's lock (a dangling link) and a hidden file.
        std::os::unix::fs::symlink("user@host.1234", dir.path().join(".#2_b.sql")).unwrap();
        std::fs::write(dir.path().join(".draft.sql"), "SELECT 1;").unwrap();
        std::os::unix::fs::symlink("1_accounts.sql", dir.path().join("11_link.sql")).unwrap();
        assert_eq!(
            migration_files(dir.path()).unwrap(),
            [
                "1_accounts.sql",
                "2_b.sql",
                "0003_c.sql",
                "10_nickname.sql",
                "notes.sql"
            ]
        );
        let applied = ["1_accounts.sql".to_owned()];
        let files = migration_files(dir.path()).unwrap();
        assert_eq!(pending(&files, &applied)[..2], ["2_b.sql", "0003_c.sql"]);
        use std::cmp::Ordering::*;
        assert_eq!(
            wrangler_order("0005_a.sql", "5_b.sql"),
            Less,
            "same number: by name"
        );
        assert_eq!(
            wrangler_order("99999999999999999999_a.sql", "3_b.sql"),
            Greater
        );
        // The order the pinned wrangler lists them in (rvW's names).
        let listed = [
            "-1_neg.sql",
            "01_b.sql",
            "1_a.sql",
            "1a_x.sql",
            " 2_space.sql",
            "2_b.sql",
            "+3_plus.sql",
            "10.sql",
            "_x.sql",
            "with space_1.sql",
            "x_1.sql",
        ];
        let mut sorted = listed;
        sorted.reverse();
        sorted.sort_by(|a, b| wrangler_order(a, b));
        assert_eq!(sorted, listed);
        // Too many digits for a double: infinite, so unnumbered, by name.
        let huge = format!("{}_a.sql", "9".repeat(400));
        assert_eq!(wrangler_order(&huge, "x_1.sql"), Less);
        assert_eq!(wrangler_order(&huge, "5_a.sql"), Greater);
        assert_eq!(wrangler_order(&format!("-{huge}"), "5_a.sql"), Greater);
    }

    /// The new migration file a rolled-back migration's fix is told to go
    /// in: numbered after the last file, as wide as its own number.
    #[test]
    fn the_fix_of_a_rolled_back_migration_is_named_after_the_last_file() {
        let files = ["0001_a.sql", "0005_extra.sql", "0006_more.sql"].map(String::from);
        assert_eq!(
            next_migration_name(&files, "0005_extra.sql", 0),
            "0007_extra.sql"
        );
        assert_eq!(
            next_migration_name(&files, "0006_more.sql", 1),
            "0008_more.sql"
        );
        let files = ["1_a.sql", "9_b.sql"].map(String::from);
        assert_eq!(next_migration_name(&files, "1_a.sql", 0), "10_a.sql");
    }

    /// A backup dropped into migrations/ is refused, naming it, before it
    /// could be planned (or committed) as a migration.
    #[test]
    fn a_backup_in_the_migrations_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001_a.sql"), "CREATE TABLE a(x);").unwrap();
        assert_eq!(migration_files(dir.path()).unwrap(), ["0001_a.sql"]);
        std::fs::write(dir.path().join("backup-prod-20261130-1715.sql"), "").unwrap();
        let err = migration_files(dir.path()).unwrap_err();
        assert_eq!(crate::exit::Exit::of(&err), Some(Exit::CouldNotRun));
        assert!(format!("{err:#}").contains("backup-prod-20261130-1715.sql is a backup"));
    }

    /// A migration's name is printed and recorded in every manifest: one
    /// with a line break or a bidi override is refused before anything
    /// runs, named escaped.
    #[test]
    fn a_migration_whose_name_would_not_print_as_itself_is_refused() {
        for name in ["0006_x\nforged: Result: GOOD.sql", "0006_\u{202e}lqs.x.sql"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("0001_a.sql"), "CREATE TABLE a(x);").unwrap();
            std::fs::write(dir.path().join(name), "SELECT 1;").unwrap();
            let err = migration_files(dir.path()).unwrap_err();
            assert_eq!(crate::exit::Exit::of(&err), Some(Exit::CouldNotRun));
            let text = format!("{err:#}");
            assert!(text.contains("not a plain file name"), "{text}");
            assert!(
                !text.contains('\n') && !text.contains('\u{202e}'),
                "{text:?}"
            );
        }
    }

    /// A plan of `env` from wrangler.toml whose pending migrations are
    /// 0002, 0003 and 0004, 0001 applied before.
    fn plan_of(env: &Environment) -> MigrationPlan<'_> {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        MigrationPlan {
            env,
            dir: PathBuf::from("migrations"),
            files: names(&["0001_a.sql", "0002_b.sql", "0003_c.sql", "0004_d.sql"]),
            applied: names(&["0001_a.sql"]),
            pending: names(&["0002_b.sql", "0003_c.sql", "0004_d.sql"]),
            pending_digests: BTreeMap::new(),
            side_writes: Err("not read".to_owned()),
        }
    }

    fn env(name: &str) -> Environment {
        crate::config::environment::Environments::parse(include_str!("../../../wrangler.toml"))
            .unwrap()
            .resolve(name)
            .unwrap()
            .clone()
    }

    const BACK: &str = "to go back, run `cargo xtask restore backup-x.sql --to prod --replace`";

    /// rvAD: remotely an error that is not D1's (a lost answer, the time
    /// limit, Ctrl-C) leaves unknown whether D1 committed the file it was
    /// sent: it is not said to be rolled back, and the failed file is the
    /// one wrangler names, not the first d1_migrations lacks.
    #[test]
    fn a_remote_failure_that_is_not_ds_own_is_not_said_rolled_back() {
        let prod = env("prod");
        let plan = plan_of(&prod);
        let now = ["0001_a.sql", "0002_b.sql"].map(String::from);
        let said = partly_applied_said(&plan, &now, (false, Some("0003_c.sql")), BACK).unwrap();
        for wanted in [
            "0002_b.sql was applied by this run and stays applied",
            "wrangler says 0003_c.sql failed",
            "d1_migrations, as read now, does not list it",
            "if wrangler lost D1's answer, D1 may have applied it, or may still",
            "`cargo xtask migrate prod --dry-run`",
            "restore backup-x.sql",
        ] {
            assert!(said.contains(wanted), "{wanted:?} not in {said}");
        }
        assert!(!said.contains("rolled back"), "{said}");
        // D1 applied the file wrangler lost the answer of: the next one
        // was never sent, and is not said to have failed.
        let now = ["0001_a.sql", "0002_b.sql", "0003_c.sql"].map(String::from);
        let said = partly_applied_said(&plan, &now, (false, Some("0003_c.sql")), BACK).unwrap();
        for wanted in [
            "0002_b.sql and 0003_c.sql were applied by this run and stay applied",
            "wrangler says 0003_c.sql failed, but d1_migrations, read again, lists it",
            "none after it was sent",
        ] {
            assert!(said.contains(wanted), "{wanted:?} not in {said}");
        }
        assert!(!said.contains("0004_d.sql failed"), "{said}");
        assert!(!said.contains("rolled back"), "{said}");
    }

    /// An SQL error D1 reported rolls its file back, locally and remotely;
    /// a local failure that is not one (the local D1 stopped, its disk
    /// full) leaves the file not applied, as d1_migrations read once
    /// wrangler has stopped says: nothing of it is still under way.
    #[test]
    fn an_sql_error_is_rolled_back_and_a_local_failure_not_applied() {
        let prod = env("prod");
        let plan = plan_of(&prod);
        let now = ["0001_a.sql", "0002_b.sql"].map(String::from);
        let said = partly_applied_said(&plan, &now, (true, Some("0003_c.sql")), BACK).unwrap();
        for wanted in [
            "0002_b.sql was applied by this run and stays applied",
            "then 0003_c.sql failed and was rolled back",
            "none after it was tried",
            "is an SQL error from D1",
            "migrate again: it applies 0003_c.sql and every migration after it",
        ] {
            assert!(said.contains(wanted), "{wanted:?} not in {said}");
        }
        let local = env("local");
        let plan = plan_of(&local);
        for named in [Some("0003_c.sql"), None] {
            let said = partly_applied_said(&plan, &now, (false, named), BACK).unwrap();
            let failed = match named {
                Some(_) => "then 0003_c.sql failed and was not applied",
                None => "then 0003_c.sql was not applied",
            };
            for wanted in [
                failed,
                "none after it was tried",
                "not an SQL error from D1",
                "migrate again: it applies 0003_c.sql and every migration after it",
            ] {
                assert!(said.contains(wanted), "{wanted:?} not in {said}");
            }
            assert!(!said.contains("rolled back"), "{said}");
            assert!(!said.contains("may still"), "{said}");
        }
    }

    /// A pending migration past what is read whole (64 MiB, a large data
    /// load) is planned (its digest streamed): it is staged for wrangler
    /// too, byte for byte, not refused as "could not be read again".
    #[test]
    fn a_migration_past_64_mib_is_staged_whole() {
        let envs = crate::config::environment::Environments::parse(
            r#"d1_databases = [{ binding = "DB", database_name = "db_local", database_id = "local-id" }]"#,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let name = "0001_load.sql".to_owned();
        let line = b"INSERT INTO t VALUES (1);\n";
        let lines = (crate::edge::fsutil::TEXT_LIMIT as usize + (1 << 20)) / line.len();
        std::fs::write(dir.path().join(&name), line.repeat(lines)).unwrap();
        let pending = vec![name.clone()];
        let plan = MigrationPlan {
            env: envs.resolve("local").unwrap(),
            dir: dir.path().to_path_buf(),
            files: pending.clone(),
            applied: Vec::new(),
            pending_digests: digests(dir.path(), &pending),
            pending,
            side_writes: Err("not looked at".into()),
        };
        let staged = stage(&plan).map_err(|e| format!("{e:#}")).unwrap();
        let copy = staged.dir.path().join("migrations").join(&name);
        let (sha256, size) = crate::edge::fsutil::sha256_file(&copy).unwrap();
        assert_eq!(size, (lines * line.len()) as u64);
        assert_eq!(sha256, plan.pending_digests[&name].sha256);
    }

    /// wrangler turns each `\\` in `migrations_dir` into `/`: with a
    /// TMPDIR holding one, it would look for the copy elsewhere and say
    /// "No migrations present" after the backup was taken. Such a path is
    /// refused before wrangler is given it, naming TMPDIR.
    #[test]
    fn a_private_directory_with_a_backslash_is_refused_naming_tmpdir() {
        let envs = crate::config::environment::Environments::parse(
            r#"d1_databases = [{ binding = "DB", database_name = "db_local", database_id = "local-id" }]"#,
        )
        .unwrap();
        let env = envs.resolve("local").unwrap();
        let err = staged_config(
            env,
            Path::new("/tmp/a\\b/qbtime-xtask-migrations-1/migrations"),
        )
        .expect_err("a path wrangler would change was given it");
        let said = format!("{err:#}");
        assert!(said.contains("TMPDIR"), "{said}");
        assert!(said.contains("\\"), "{said}");
    }

    /// The private configuration names the database as wrangler finds it
    /// in the project's: the local one keyed as its local D1 file is
    /// (`preview_database_id`, else `database_id`), a remote one in its
    /// wrangler environment with its account; its migrations, the copy.
    #[test]
    fn the_staged_configuration_names_the_database_as_the_projects_does() {
        let envs = crate::config::environment::Environments::parse(
            r#"
            account_id = "0123456789abcdef0123456789abcdef"
            d1_databases = [{ binding = "DB", database_name = "db_local", database_id = "local-id", preview_database_id = "preview-id" }]
            [env.production]
            vars = { APP_ENV = "prod" }
            d1_databases = [{ binding = "DB", database_name = "db_prod", database_id = "prod-id" }]
            "#,
        )
        .unwrap();
        let read = |env: &str| -> serde_json::Value {
            let env = envs.resolve(env).unwrap();
            serde_json::from_str(&staged_config(env, Path::new("/private/m")).unwrap()).unwrap()
        };
        assert_eq!(
            read("local"),
            serde_json::json!({"d1_databases": [{
                "binding": "DB", "database_name": "db_local", "database_id": "local-id",
                "preview_database_id": "preview-id", "migrations_dir": "/private/m",
            }]})
        );
        assert_eq!(
            read("prod"),
            serde_json::json!({
                "account_id": "0123456789abcdef0123456789abcdef",
                "env": {"production": {"d1_databases": [{
                    "binding": "DB", "database_name": "db_prod", "database_id": "prod-id",
                    "migrations_dir": "/private/m",
                }]}},
            })
        );
    }
}
