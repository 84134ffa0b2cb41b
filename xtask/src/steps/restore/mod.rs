//! Restoring a backup: load it into a database, with every guard checked
//! before anything runs. The `restore` command runs it; `drill` restores
//! into a scratch database through it.
//!
//! The plan is always printed first: the source and its manifest, the
//! target, the mode, what will be dropped, the safety backup, and every
//! repair made to the dump. `--dry-run` stops there. Then, in order: the
//! confirmation, the safety backup of the target, (for `--clean`) the
//! migrations, the load, and the checks against the manifest. A run that
//! is not a dry run holds the backup lock from before the plan to the end
//! of the load, the confirmation asked under it.
//!
//! Every refusal happens before the first statement that changes a
//! database: a changed or truncated file, a backup from another environment
//! aimed at production, a missing confirmation, a target that is not empty,
//! or a data-encryption key that differs from the backup's.
//!
//! `--to new:NAME` restores into a database created first (see
//! `new_database`): no safety backup, no reading of the target before it
//! exists, and the binding printed at the end.

mod check;
mod guards;
mod load;
mod plan_text;
mod source;
mod target;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::config::environment::{Environment, Environments, Location};
use crate::config::project::Project;
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::local_d1;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::reader::DatabaseReader as TargetReader;
use crate::edge::stored;
use crate::edge::wrangler::{Commands, Wrangler};
use crate::steps::migrations::FilesRead;
use crate::steps::new_database::NewDatabase;
use check::print_checklist;
use d1_core::catalog::{Catalog, StuckTrigger, VirtualTable, restored_otherwise};
use d1_core::dump::KeyFingerprint;
use d1_core::manifest::Manifest;
use d1_core::names::file_name;
use d1_core::repair;
use guards::{AlreadyHeld, Answer, Deferred, already_held, guard_definitions};
use load::{Loading, ready_local_file, take_safety_backup};
use plan_text::{
    PendingAfter, PlanView, pending_after, pending_again, plain_shadow_tables, plan_json,
    print_binding, print_plan, print_plan_notes, stuck_trigger,
};
use source::{check_source, preflight, survey_dump, trial_load};
use target::{Inspected, check_keys, guard_unchanged, read_catalog, read_target};

pub use check::TableCount;
pub(crate) use guards::SAFETY_REASON;
pub use guards::TriggersRefused;
pub(crate) use guards::{guard_applied_migrations_unchanged, warn_if_latest_is_a_safety_backup};
pub(crate) use plan_text::warn_if_failed_verification;
pub use target::{KeyCheck, KeyRefusal};

#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// A backup: a name that `list` prints, a path, `latest` (the target environment's newest verified backup) or `latest:ENV`.
    pub source: String,
    /// The environment to restore into: prod, staging or local; or new:NAME,
    /// a D1 database this restore creates (the configuration is not edited).
    #[arg(long = "to", value_name = "ENV|new:NAME")]
    pub to: String,
    /// With --to new:NAME: the primary location hint for the new database.
    #[arg(long, value_name = "HINT", value_parser = crate::steps::new_database::LOCATION_HINTS)]
    pub location: Option<String>,
    /// With --to new:NAME: create it in this remote environment's Cloudflare
    /// account (needed when the environments are in different accounts).
    #[arg(long, value_name = "ENV")]
    pub account_of: Option<String>,
    /// Load into a database with no tables (the default).
    #[arg(long, conflicts_with_all = ["replace", "clean"])]
    pub into_empty: bool,
    /// Drop the target's tables, views and triggers, then load, all in one step.
    #[arg(long, conflicts_with = "clean")]
    pub replace: bool,
    /// The runbook's brand-new-database path: `migrations apply`, then load the rows only.
    #[arg(long)]
    pub clean: bool,
    /// Restore a dump that has no manifest (a hand export, a sqlite3 .dump).
    #[arg(long)]
    pub no_manifest: bool,
    /// With --no-manifest: the environment the dump came from; with --to
    /// new:NAME, also for a backup whose manifest records a database no
    /// environment names now (whose migrations and binding it gets).
    #[arg(long, value_name = "ENV")]
    pub source_env: Option<String>,
    /// Into production whose D1 database was replaced (deleted and created
    /// again under the same name, its new id in the configuration): the id
    /// of the database the backup was taken from, as its manifest records.
    #[arg(long, value_name = "ID", conflicts_with = "no_manifest")]
    pub previous_database_id: Option<String>,
    /// Restore even though the backup's data-encryption key differs from the target's.
    #[arg(long)]
    pub accept_key_change: bool,
    /// Install this trigger though no migration creates it (repeat for
    /// each): one the backup's dump creates that restore refuses otherwise.
    #[arg(long = "allow-trigger", value_name = "NAME", conflicts_with = "clean")]
    pub allow_trigger: Vec<String>,
    /// Restore though the backup lacks this trigger, which its migrations
    /// create (repeat for each): restore refuses it otherwise, since the
    /// app relies on the migrations' triggers.
    #[arg(
        long = "allow-missing-trigger",
        value_name = "NAME",
        conflicts_with = "clean"
    )]
    pub allow_missing_trigger: Vec<String>,
    /// Restore this table or index as the backup defines it, though its
    /// migrations define it otherwise or the backup lacks it (repeat for
    /// each): restore refuses it otherwise, since a table's constraints act
    /// on every later write.
    #[arg(
        long = "allow-schema-change",
        value_name = "NAME",
        conflicts_with = "clean"
    )]
    pub allow_schema_change: Vec<String>,
    /// Restore a backup of chosen tables, or of the schema only, knowing the
    /// target keeps nothing else (with --replace) or gets nothing else.
    #[arg(long)]
    pub partial: bool,
    /// For --to local: load through `wrangler d1 execute --file` instead of the fast path.
    #[arg(long)]
    pub via_wrangler: bool,
    #[command(flatten)]
    pub identity: stored::IdentityArg,
    /// Print the plan (with --dry-run) or the result as one JSON document on
    /// stdout (fields in the README); everything else goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
    /// Set by a drill that checks the app (its audit chain, sign-in and
    /// report) once the restore is done: the checklist says so instead of
    /// leaving those three unchecked.
    #[arg(skip)]
    pub app_checked_next: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    IntoEmpty,
    Replace,
    Clean,
}

impl RestoreArgs {
    pub(crate) fn mode(&self) -> Mode {
        if self.replace {
            Mode::Replace
        } else if self.clean {
            Mode::Clean
        } else {
            Mode::IntoEmpty
        }
    }
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::IntoEmpty => "into-empty",
            Mode::Replace => "replace",
            Mode::Clean => "clean",
        }
    }
}

/// The runbook's warning for a restore under another key.
pub const KEY_WARNING: &str = "the encryption key in force where the data lands is not the one in \
force when the backup was taken: stored QuickBooks Time tokens, client secrets and MFA secrets will \
not decrypt, and every company will need to reconnect";

/// Where the source's facts come from.
#[derive(Debug, Clone)]
struct Source {
    file: PathBuf,
    /// The backup's SQL, decompressed and decrypted as it is read.
    data: stored::Source,
    manifest: Option<Manifest>,
    /// The environment the backup was taken from, when known.
    environment: Option<String>,
    /// The environment `--source-env` names for a backup whose manifest
    /// records a database no environment names now, restored into a new
    /// database: whose migrations and binding it gets.
    said_environment: Option<String>,
    /// Rows per table and the key, from the manifest or counted from the dump
    /// (in the survey's pass: empty until then).
    rows: BTreeMap<String, u64>,
    encryption_key: Option<KeyFingerprint>,
    virtual_tables: Vec<VirtualTable>,
    /// Without a manifest: the SQL's sha256 and size when the restore
    /// first read it, which every later read must match.
    pinned: Option<(String, u64)>,
    /// Per table, the integers beyond ±2^53 an export of D1's may have
    /// rounded: the manifest's record, or, for a manifest an earlier
    /// version wrote before it kept one, those the survey read in the dump
    /// (in the survey's pass: none until then).
    wide_integers: BTreeMap<String, u64>,
    /// Without a manifest: the migrations the dump's own `d1_migrations`
    /// rows record as applied (in the survey's pass: none until then),
    /// which its triggers and schema are held to ([`Source::applied`]).
    recorded: Vec<String>,
    /// Without a manifest: the tables the dump INSERTs into with an upsert
    /// clause (`ON CONFLICT`), as its INSERTs spell them (in the survey's
    /// pass: none until then), which the row-count warning names.
    upserted: BTreeSet<String>,
    /// Without a manifest: the dump makes the migrations' tables but holds
    /// no INSERT, not even of `d1_migrations` (`wrangler d1 export
    /// --no-data`), a schema-only backup ([`guards::guard_dump_scope`]).
    schema_only: bool,
    /// With `--clean`: what it leaves out of the backup, the tables the
    /// migrations do not make (each holding no row: rows with no table to
    /// go into are refused), with their indexes and triggers, and the
    /// views they lack, as (kind, name) ([`d1_core::catalog::left_out_of`]):
    /// the plan says so, and the checks do not look for them.
    left_out: Vec<(&'static str, String)>,
    /// With `--clean`: the backup's virtual tables no migration makes,
    /// each holding no row (rows of one are refused before anything
    /// runs), taken out of `virtual_tables`: not made, and left out by
    /// their own names, their shadow tables with them
    /// ([`source::leave_out_virtual_tables`]).
    left_out_virtual: Vec<VirtualTable>,
}

/// What a finished restore did, for the drill's log.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup taken of the target first, if one was.
    pub safety_backup: Option<PathBuf>,
    /// The target's schema before the restore was what it left (every
    /// table, index, view and trigger as SQL): with its rows the same, the
    /// safety backup brings back nothing an earlier restore did not.
    pub schema_as_left: bool,
    /// The triggers the target held that no migration creates, which the
    /// safety backup holds too, and its migrations' it had lost: its way
    /// back names them.
    pub safety_triggers: crate::steps::migrations::WayBack,
    /// Per table: rows in the backup, rows found on the target afterwards.
    pub counts: Vec<TableCount>,
    /// The migrations' triggers the backup lacked, restored without them
    /// as `--allow-missing-trigger` named them: a drill says so.
    pub without_triggers: Vec<String>,
    pub key_check: KeyCheck,
}

/// Restores a backup; `Ok(None)` for a dry run.
pub fn run(sh: &Shell, project: &Project, args: &RestoreArgs) -> Result<Option<Restored>> {
    let envs = project.environments()?;
    let mut new = NewDatabase::from_target(
        &envs,
        &project.commands(),
        &args.to,
        args.account_of.as_deref(),
        args.location.as_deref(),
    )?;
    if new.is_none() && (args.location.is_some() || args.account_of.is_some()) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--location and --account-of are for a database the restore creates (--to new:NAME); \
             `{}` exists already. Nothing was done.",
            args.to
        );
    }
    let restored = restore(sh, project, &envs, args, new.as_mut());
    // Whatever failed after the database was created, it stays, and the
    // operator is told how to delete it.
    match new.as_ref().and_then(NewDatabase::left_in_place) {
        Some(left) => restored.map_err(|e| e.context(left)),
        None => restored,
    }
}

fn restore(
    sh: &Shell,
    project: &Project,
    envs: &Environments,
    args: &RestoreArgs,
    mut new: Option<&mut NewDatabase>,
) -> Result<Option<Restored>> {
    let target = match &new {
        Some(n) => &n.target.clone(),
        None => envs.resolve(&args.to)?,
    };
    // A dry run too: its plan would promise a safety backup taken among a
    // rehearsal's.
    crate::steps::rehearsals::refuse_real_database(&project.backup_dir, target, "restore into")?;
    check_confirmation_given(target, args, new.is_some())?;
    let lock = lock_before_the_plan(project, target, args)?;
    let Some(planned) = plan(sh, project, envs, args, target, new.as_deref())? else {
        return Ok(None);
    };
    let (source, access, inspected) = (&planned.source, &planned.access, &planned.inspected);
    confirm::require(
        target,
        &args.confirm,
        &format!("restore {} into", file_name(&source.file)),
    )?;
    let lock = lock.expect("a restore that is not a dry run holds the backup lock");
    crate::steps::restores::check_room(&project.backup_dir)?;
    let staged = staged_migrations(&planned, target)?;
    let created = { new.as_deref_mut() }
        .map(|n| create_new(n, &planned, staged.as_ref()))
        .transpose()?;
    let target = created.as_ref().unwrap_or(target);
    // The target as it is now, under the lock: unchanged since the plan,
    // and the schema its safety backup is taken by.
    let reader = access.reader(target);
    let now = (new.is_none())
        .then(|| guard_unchanged(&reader, inspected, target))
        .transpose()?;
    let (local_file, watch) = match access.fast_local {
        true => ready_local_file((access.local_file.clone(), &target.name), args.mode())?,
        false => (None, None),
    };
    let before = now.as_ref().map(Catalog::schema_statements);
    let (safety, safety_triggers) = safety_backup(sh, project, &planned, (&lock, now, target))?;
    let loading = Loading {
        wrangler: &access.wrangler,
        cmds: &access.cmds,
        target,
        source,
        mode: args.mode(),
        local_file: local_file.as_deref(),
        watch: watch.as_ref(),
        safety: &safety,
        safety_triggers: &safety_triggers,
        staged: staged.as_ref(),
    };
    make_local_private(project, target)?;
    let underway = (lock, new.as_deref());
    let (counts, content) = load_journaled(project, underway, &loading, &planned)?;
    crate::edge::signals::changed(loading.restored("it was checked"));

    let restored = Restored {
        schema_as_left: schema_as_left(&reader, source, safety.as_deref(), before),
        safety_backup: safety,
        safety_triggers,
        counts,
        key_check: inspected.key_check.clone(),
        without_triggers: planned.without_triggers.clone(),
    };
    let optimize = optimize_command(project, target, new.as_deref(), (&planned, inspected));
    let (new, done) = (new.is_some(), (&restored, &content, optimize.as_deref()));
    let way_back = report(project, envs, args, source, target, new, done)?;
    warn_after_restore(&planned, target);
    let result = (&restored, &content, way_back);
    if args.json {
        print_result((args, source, target), new, result, planned.json);
    }
    Ok(Some(restored))
}

/// The new database `n`, created once its migrations are `staged` (a file
/// changed since the plan is refused with nothing made, never after `d1
/// create`, which would leave an empty database behind: rvAP), and their
/// private configuration then naming it, by its id.
fn create_new(
    n: &mut NewDatabase,
    planned: &Planned,
    staged: Option<&crate::steps::migrations::Staged>,
) -> Result<Environment> {
    let created = n.create(&planned.access.wrangler, &planned.migrations_dir)?;
    if let Some(staged) = staged {
        staged
            .for_database(&created)
            .map_err(crate::exit::could_not_run)?;
    }
    Ok(created)
}

/// `--clean`'s migrations, their names and digests, read before the
/// schema they make: a file changed since is refused
/// ([`crate::steps::migrations::stage`]), never applied unseen; one that
/// migrate's guards refuse (it writes d1_migrations), or that D1 refuses
/// on an empty database, is refused in restore's words, a dry run too,
/// before the dump is surveyed in the schema they make
/// ([`crate::steps::migrations::refuse_what_cannot_apply_to_empty`]).
fn clean_migrations_read(
    mode: Mode,
    dir: &Path,
    target: &Environment,
    new: bool,
) -> Result<Option<FilesRead>> {
    use crate::steps::migrations::FromNothing;
    if mode != Mode::Clean {
        return Ok(None);
    }
    let files = crate::steps::migrations::migration_files(dir)?;
    let digests = crate::steps::migrations::digests(dir, &files);
    let read = (files, digests);
    let by = match new {
        true => FromNothing::NewDatabase,
        false => FromNothing::CleanRestore,
    };
    crate::steps::migrations::refuse_what_cannot_apply_to_empty(target, dir, read.clone(), by)?;
    Ok(Some(read))
}

/// `--clean`'s migrations staged for wrangler, before anything is changed ([`crate::steps::migrations::stage`]):
/// the files the plan read, copied privately, as wrangler reads
/// migrations/ again itself. Refuses (exit 3) when one changed since the
/// plan, nothing restored.
fn staged_migrations(
    planned: &Planned,
    target: &Environment,
) -> Result<Option<crate::steps::migrations::Staged>> {
    let Some(read) = planned.clean_migrations.clone() else {
        return Ok(None);
    };
    let plan = crate::steps::migrations::plan_of_all(target, &planned.migrations_dir, read);
    crate::steps::migrations::stage(&plan)
        .map(Some)
        .context("nothing was restored: restore again to see the new plan")
}

/// Refuses (exit 3) a `--confirm` naming another database, a dry run
/// included, and, for a restore whose plan reads its target through
/// wrangler against the account (a remote target, or a new database),
/// what the confirmation would refuse with no terminal to ask: as migrate
/// and deploy refuse, before the backup lock and any request. A local
/// target's plan reads local files alone: it goes on, so that a restore
/// with no backup to restore says which backup to take first, and its
/// confirmation is asked (or refused) after its plan.
fn check_confirmation_given(target: &Environment, args: &RestoreArgs, new: bool) -> Result<()> {
    if new || target.location == Location::Remote {
        confirm::check_given(target, &args.confirm, args.dry_run, "restore a backup into")
    } else {
        confirm::check_named(target, &args.confirm)
    }
}

/// A restore through wrangler hands it files in a private temporary
/// directory (a remote safety backup's export, the load, the export that
/// checks it); `--clean` a configuration naming its migrations' copy
/// there. A TMPDIR refused then is refused first (exit 2), before the
/// lock, the plan and the safety backup. A local restore that neither
/// wrangler runs nor `--clean` reads and writes the local D1's file
/// itself, and is left to run.
fn check_temp_dir(args: &RestoreArgs, target: &Environment) -> Result<()> {
    let through_wrangler =
        args.via_wrangler || target.is_new || target.location == Location::Remote;
    match (args.clean, through_wrangler) {
        (true, _) => crate::steps::migrations::check_stageable(),
        (false, true) => crate::edge::wrangler::check_temp_dir(),
        (false, false) => Ok(()),
    }
}

/// The backup lock a restore holds from before its plan reads the target
/// to the end of the load's check, as migrate and deploy hold theirs: no backup,
/// migration or other restore runs between the plan printed and confirmed
/// and the run, and a run another holds the lock for is refused before a
/// plan is printed or the database name asked. A dry run takes none, as
/// no dry run does. A link on the way to a local target is refused first,
/// before the lock (as migrate refuses it) and before anything reads the
/// target through it (its safety backup would be of another checkout's
/// rows). So is a TMPDIR the restore would refuse ([`check_temp_dir`]).
fn lock_before_the_plan(
    project: &Project,
    target: &Environment,
    args: &RestoreArgs,
) -> Result<Option<crate::edge::lock::BackupLock>> {
    check_temp_dir(args, target)?;
    local_d1::refuse_linked_env(&project.config_dir, target)?;
    let task = format!("restore into {}", target.name);
    { (!args.dry_run).then(|| crate::steps::lock::acquire_lock(project, &task)) }.transpose()
}

/// The `PRAGMA optimize` the after-restore checklist gives to paste: for a
/// new database, by its name in its account. None for a backup that held
/// no planner statistics (no `sqlite_stat1` rows, nor the `ANALYZE` before
/// them) restored into a target that had none (`had`): the restored
/// database lacks none either had, and the item is not there (rvCG, rvCH).
fn optimize_command(
    project: &Project,
    target: &Environment,
    new: Option<&NewDatabase>,
    (planned, inspected): (&Planned, &Inspected),
) -> Option<String> {
    let survey = &planned.survey;
    let had = { inspected.catalog.objects.iter() }
        .any(|o| o.kind == "table" && o.name.eq_ignore_ascii_case("sqlite_stat1"));
    let statistics = |table: &str| {
        { table.get(..11) }.is_some_and(|start| start.eq_ignore_ascii_case("sqlite_stat"))
    };
    let held = { survey.repairs.iter() }
        .any(|r| matches!(r, repair::Repair::DroppedReserved { table, .. } if statistics(table)));
    (held || had).then(|| match new {
        Some(n) => n.optimize_command(),
        None => project.commands().optimize(target).to_string(),
    })
}

/// A local target's D1 file, made private before a row goes in, however
/// it is loaded.
fn make_local_private(project: &Project, target: &Environment) -> Result<()> {
    if target.location == Location::Local {
        local_d1::make_private(&local_d1::database_file(
            &project.config_dir,
            &target.local_id,
        ))?;
    }
    Ok(())
}

/// What the lock records of `loading`: its target, and the backup loaded
/// and the safety backup by name and by the sha256 each one's manifest
/// gives it; `migrations_first` while `--clean`'s migrations apply,
/// `checking` once the load is in.
fn recorded(
    loading: &Loading<'_>,
    migrations_first: bool,
    checking: bool,
) -> crate::edge::lock::Doing {
    let safety = loading.safety.as_deref();
    crate::edge::lock::Doing::Loading {
        env: loading.target.name.clone(),
        backup: file_name(&loading.source.file).to_string(),
        backup_sha256: { loading.source.manifest.as_ref() }.map(|m| m.file.sha256.clone()),
        safety: safety.map(|f| file_name(f).to_string()),
        safety_sha256: safety.and_then(crate::edge::lock::sha256_of),
        migrations_first,
        checking,
    }
}

/// The load and its check, under the lock, journaled as they start and
/// end ([`journal_line`]): `started` before anything is loaded (a journal
/// that cannot take it stops the restore there), then `done` or `failed`.
fn load_journaled(
    project: &Project,
    (lock, new): (crate::edge::lock::BackupLock, Option<&NewDatabase>),
    loading: &Loading<'_>,
    planned: &Planned,
) -> Result<(Vec<TableCount>, check::Content)> {
    let journal = journal_line(project, loading.target, &loading.source.file, loading.mode);
    journal("started", false)?;
    // Nothing is loaded before the lock records the load.
    let underway = record_loading(project, &lock, loading, new).inspect_err(|_| {
        let _ = journal(ended_how(), true);
    })?;
    let (survey, options) = (&planned.survey, &planned.options);
    let checked = { loading.load(survey, options, &planned.inspected, underway) }
        .and_then(|()| check_under_lock(project, lock, loading))
        .inspect_err(|e| {
            let _ = journal(
                ended_how(),
                e.downcast_ref::<load::NothingWritten>().is_some(),
            );
        })?;
    // Its start is recorded, which is what `status` needs: an end that
    // cannot be is warned of, and leaves it `started` there.
    if let Err(e) = journal("done", false) {
        crate::warn!(
            "{}: {e:#}",
            loading.restored("it was checked, but the restore journal could not record that")
        );
    }
    Ok(checked)
}

/// How a restore that did not end checked is journaled: `interrupted`
/// when a signal stopped it (what `status` tells apart from an error),
/// else `failed`.
fn ended_how() -> &'static str {
    match crate::edge::signals::received() {
        Some(_) => "interrupted",
        None => "failed",
    }
}

/// Appends the restore of `source` into `target` to the restore journal
/// as its status changes, each line dated by its start (now): what tells
/// `status` that the environment's backups predate its database, as no
/// safety backup does for an empty target. A `failed` known to have
/// written nothing ([`load::NothingWritten`], or before the load began)
/// says so, and `status` does not count it.
fn journal_line<'a>(
    project: &'a Project,
    target: &'a Environment,
    source: &Path,
    mode: Mode,
) -> impl Fn(&str, bool) -> Result<()> + 'a {
    let started = chrono::Utc::now();
    let backup = file_name(source).to_string();
    move |status, changed_nothing| {
        crate::steps::restores::record(
            &project.backup_dir,
            target,
            (&backup, mode.name()),
            started,
            (status, changed_nothing),
        )
    }
}

/// The check of a load that is in, under the lock, which says so from now
/// on ("checking": the database holds the backup, unchecked): a run killed
/// during the check, or stopped by SIGHUP (its terminal gone, with what it
/// printed), leaves the next run to say that, how to check it, and the
/// safety backup's restore. A check that passes settles the record; one
/// that fails says what it found, and the lock is released as it is on any
/// other error.
fn check_under_lock(
    project: &Project,
    lock: crate::edge::lock::BackupLock,
    loading: &Loading<'_>,
) -> Result<(Vec<TableCount>, check::Content)> {
    crate::edge::signals::changed(loading.restored("its check did not finish"));
    { lock.record(recorded(loading, false, true)) }
        .map_err(|e| e.context(loading.restored("its check did not run")))?;
    let checked = loading.check(project)?;
    // Released next, emptied: a record left by a failed write would only
    // say the check did not end.
    let _ = lock.settled();
    Ok(checked)
}

/// The load about to start, recorded in the lock (what another run or a
/// later one is told) and, for a remote target, as what an interrupt now
/// leaves. `--clean` first applies the migrations, each its own query:
/// until they are, the lock and an interrupt tell that some may be applied
/// and no row was loaded; [`Underway::migrations_applied`] then tells the
/// load.
fn record_loading<'l>(
    project: &'l Project,
    lock: &'l crate::edge::lock::BackupLock,
    loading: &Loading<'_>,
    new: Option<&NewDatabase>,
) -> Result<Underway<'l>> {
    let target = loading.target;
    let doing = |migrations_first| recorded(loading, migrations_first, false);
    let clean = loading.mode == Mode::Clean;
    let underway = crate::steps::lock::told(&doing(false), project);
    lock.record(doing(clean))?;
    let mut then = Underway {
        lock,
        project,
        loading: clean.then(|| doing(false)),
        on_import: None,
        left: None,
    };
    if target.location == Location::Local {
        crate::edge::signals::changed(local_underway(loading, clean));
        if clean {
            then.on_import = Some(loading_local(loading));
        }
    }
    if target.location == Location::Remote {
        // Once wrangler has handed D1 the file, an interrupt no longer
        // stops the import; a database this restore created stays either way.
        let left = new.and_then(NewDatabase::left_in_place);
        let with_left = |what: String| match &left {
            Some(left) => format!("{what}; {left}"),
            None => what,
        };
        let on_import = with_left(underway);
        crate::edge::signals::changed(match clean {
            true => with_left(format!(
                "applying the migrations to {}: wrangler applies each as its own query, so some \
                 of them may be applied, and no row of the backup was loaded{}",
                target.database_name,
                loading.named_safety()
            )),
            false => on_import.clone(),
        });
        then.on_import = clean.then_some(on_import);
        then.left = left;
    }
    Ok(then)
}

/// What an interrupt tells of a local restore before its rows load: for
/// `--clean`, while wrangler applies the migrations (each its own query).
fn local_underway(loading: &Loading<'_>, clean: bool) -> String {
    match clean {
        true => format!(
            "no row of the backup was loaded; wrangler was applying the migrations to {}, each \
             as its own query, so some of them may be applied{}",
            loading.target.database_name,
            loading.named_safety()
        ),
        false => loading_local(loading),
    }
}

/// What an interrupt tells of a local restore while its rows load: the
/// load is one transaction, which an interrupt leaves uncommitted.
fn loading_local(loading: &Loading<'_>) -> String {
    let name = &loading.target.database_name;
    match loading.mode == Mode::Clean {
        true => format!(
            "nothing was restored: the load into {name} is one transaction, which did not \
             commit; the migrations were applied, so {name} has the schema only{}",
            loading.named_safety()
        ),
        false => format!(
            "nothing was restored: the load into {name} is one transaction, which did not \
             commit, so {name} is as it was{}",
            loading.named_safety()
        ),
    }
}

/// What the lock and an interrupt are to tell once `--clean`'s migrations
/// are applied and its rows start to load ([`record_loading`]).
struct Underway<'l> {
    lock: &'l crate::edge::lock::BackupLock,
    /// The project, which a failed import's check reads.
    project: &'l Project,
    loading: Option<crate::edge::lock::Doing>,
    on_import: Option<String>,
    /// What a remote restore into a database it created leaves in place,
    /// which an interrupt tells whatever else it tells.
    left: Option<String>,
}

impl Underway<'_> {
    /// The migrations are applied: the lock, and an interrupt, now tell the
    /// load.
    fn migrations_applied(self) -> Result<()> {
        if let Some(doing) = self.loading {
            self.lock.record(doing)?;
        }
        if let Some(left) = self.on_import {
            crate::edge::signals::changed(left);
        }
        Ok(())
    }
}

/// What a finished restore warns of: migrations pending again, triggers
/// that cannot run, FTS tables rebuilt, rowids renumbered, virtual tables
/// a backup could not hold whole.
fn warn_after_restore(planned: &Planned, target: &Environment) {
    let source = &planned.source;
    if let Some(then) = pending_again(&planned.pending_after, target) {
        let now = match planned.pending_after.all_already() {
            true => "",
            false => " now",
        };
        crate::warn!("{}{now} has {then}", target.database_name);
    }
    for stuck in &planned.stuck {
        crate::warn!(
            "in {}, {}",
            target.database_name,
            stuck_trigger(stuck, source)
        );
    }
    for why in planned.fts_rebuilt.iter().chain(&planned.renumbered) {
        crate::warn!("{why}");
    }
    for (fts, content) in planned.survey.not_rebuilt(&planned.options) {
        crate::warn!(
            "{fts} was not restored whole: it names a content table, {content}, that the backup \
             does not have, so its index was not rebuilt; reading its rows fails (no such table) \
             until {content} exists and `INSERT INTO {fts}({fts}) VALUES('rebuild')` is run \
             (README, FTS5)",
            fts = d1_core::names::shown_name(fts),
            content = d1_core::names::shown_name(content),
        );
    }
    for vt in &source.virtual_tables {
        if let Some(why) = vt.lost_by_a_backup() {
            crate::warn!(
                "{} was not restored whole: it is {why}",
                d1_core::names::shown_name(&vt.name)
            );
        }
    }
}

/// A restore's plan, made and printed before anything changes.
struct Planned {
    source: Source,
    access: TargetAccess,
    inspected: Inspected,
    options: repair::Options,
    survey: repair::Survey,
    safety_backup: bool,
    json: serde_json::Value,
    /// The migrations pending once the backup is loaded.
    pending_after: PendingAfter,
    /// The migrations directory the restored database is judged by (and,
    /// for `--clean`, made by): see [`source::migrations_dir_for`].
    migrations_dir: PathBuf,
    /// `--clean`'s migrations, as the plan read them: their names and
    /// digests, what wrangler is given a copy of.
    clean_migrations: Option<FilesRead>,
    /// The triggers that cannot run once it is loaded.
    stuck: Vec<StuckTrigger>,
    /// FTS5 tables rebuilt otherwise than their triggers keep them.
    fts_rebuilt: Vec<String>,
    /// Tables whose rows come back renumbered, while triggers keep their
    /// rowids elsewhere (as the backup's manifest records).
    renumbered: Vec<String>,
    /// The migrations' triggers the backup lacks, restored without them as
    /// `--allow-missing-trigger` names them.
    without_triggers: Vec<String>,
}

/// How a restore reaches its target: through wrangler, or (a fast local
/// restore) straight through its local D1 file.
struct TargetAccess {
    cmds: Commands,
    wrangler: Wrangler,
    /// A fast local restore, straight into the local D1 file.
    fast_local: bool,
    local_file: PathBuf,
    /// The target is read from its file, not through wrangler.
    read_from_file: bool,
}

impl TargetAccess {
    fn new(
        sh: &Shell,
        project: &Project,
        args: &RestoreArgs,
        target: &Environment,
        new: Option<&NewDatabase>,
    ) -> Result<TargetAccess> {
        let cmds = match new {
            Some(n) => n.cmds.clone(),
            None => project.commands(),
        };
        let wrangler = project.wrangler(sh)?;
        let fast_local = !checked_through_export(args, target);
        let local_file = local_d1::database_file(&project.config_dir, &target.local_id);
        // A fast local restore reads the target from its file, as it loads it.
        let read_from_file = fast_local && local_file.is_file();
        Ok(TargetAccess {
            cmds,
            wrangler,
            fast_local,
            local_file,
            read_from_file,
        })
    }

    /// The target, when `wrangler d1 execute --local` is to load it.
    fn local_wrangler<'t>(&self, target: &'t Environment) -> Option<&'t Environment> {
        (target.location == Location::Local && !self.fast_local).then_some(target)
    }

    /// The target, read from its local D1 file (a fast local restore) or
    /// through wrangler, the same way each time.
    fn reader<'a>(&'a self, target: &'a Environment) -> TargetReader<'a> {
        match self.read_from_file {
            true => TargetReader::File(self.local_file.clone(), &target.name),
            false => TargetReader::Wrangler(&self.wrangler, &self.cmds, target),
        }
    }

    /// The target's catalog and the objects in it, as the plan finds them,
    /// and the refusal of a restore into an empty database, for one that
    /// is not ([`read_target`]), added to `deferred`: said with the
    /// guards' refusals.
    fn read(
        &self,
        args: &RestoreArgs,
        target: &Environment,
        new: Option<&NewDatabase>,
        deferred: &mut Vec<Deferred>,
    ) -> Result<(Catalog, Vec<(String, String)>)> {
        // A local D1 that has no file yet is empty: reading it through wrangler
        // would make it, which a plan (a dry run's) never does.
        let local_absent = target.location == Location::Local && !self.local_file.is_file();
        if local_absent && new.is_none() {
            return Ok((Catalog::default(), Vec::new()));
        }
        let reader = self.reader(target);
        let local_file = &self.local_file;
        let (catalog, existing, not_empty) =
            read_target(args, (target, &reader), &self.wrangler, new, local_file)?;
        // The `--replace` printed: without `--via-wrangler` when its drops
        // would be refused through it.
        let through_wrangler = self.local_wrangler(target).is_some();
        let fast = through_wrangler && load::drops_rewritten(&existing, &catalog);
        let answer = Answer::Replace { fast };
        deferred.extend({ not_empty.err() }.map(|e| Deferred::new(e, answer)));
        Ok((catalog, existing))
    }
}

/// Checks the backup, reads the target, surveys the repair and prints the
/// plan; `None` for a dry run, which stops there.
fn plan(
    sh: &Shell,
    project: &Project,
    envs: &Environments,
    args: &RestoreArgs,
    target: &Environment,
    new: Option<&NewDatabase>,
) -> Result<Option<Planned>> {
    let mode = args.mode();
    let (mut source, migrations_dir, mut deferred) =
        check_source(project, envs, target, args, new.is_some())?;
    let access = TargetAccess::new(sh, project, args, target, new)?;
    let (catalog, existing) = access.read(args, target, new, &mut deferred)?;
    let clean_migrations = clean_migrations_read(mode, &migrations_dir, target, new.is_some())?;
    let into = (args, target, &mut deferred);
    let (options, survey, mut triggers, schema) =
        survey_dump(project, &mut source, &migrations_dir, into, &catalog)?;
    let reader = access.reader(target);
    let key_check = check_keys(project, args, &source, &reader, &catalog);
    let local_wrangler = access.local_wrangler(target);
    let repaired = preflight(&source, &survey, &options, local_wrangler, &mut triggers)?;
    let after = schema_after_noting_left_out(&migrations_dir, mode, &mut source, &schema)?;
    let (stuck, fts_rebuilt) = restored_otherwise(&after, &source.virtual_tables)?;
    let dump = (&triggers, &schema[..], key_check, deferred, &survey);
    let (key_check, without) = guard_definitions(&source, (target, &migrations_dir), args, dump)?;
    let target_now = (new.is_none().then_some(&existing[..]), &reader);
    let pending_after = pending_after(&source, mode, &migrations_dir, target_now);
    let inspected = Inspected {
        catalog,
        existing,
        key_check,
    };
    load::refuse_drops_local_wrangler_rewrites(local_wrangler, mode, &inspected)?;
    load::refuse_no_room_for_file(!access.fast_local, repaired, mode, &inspected)?;
    let safety_backup = takes_safety_backup(target, new, &inspected.existing);
    trial_load(&source, &survey, &options, repaired, (safety_backup, mode))?;
    let view = PlanView {
        repository: project.plan_line(),
        source: &source,
        target,
        mode,
        existing: &inspected.existing,
        survey: &survey,
        safety_backup,
        fast_local: access.fast_local,
        key_check: &inspected.key_check,
        cmds: &access.cmds,
        new,
        migrations_dir: &migrations_dir,
        pending_after: &pending_after,
        stuck: &stuck,
        uncounted: uncounted_sequences(&source, &schema),
        args,
        fts_rebuilt: &fts_rebuilt,
        no_fts5: &plain_shadow_tables(&source, &schema, mode),
        dropped: &dropped_not_made(mode, &after, &inspected.catalog),
    };
    print_plan(&view);
    let renumbered = print_plan_notes(&view);
    let json = plan_json(&view);
    if args.dry_run {
        return Ok(end_dry_run(args, json));
    }
    Ok(Some(Planned {
        source,
        access,
        inspected,
        options,
        survey,
        safety_backup,
        json,
        pending_after,
        migrations_dir,
        clean_migrations,
        stuck,
        fts_rebuilt,
        renumbered,
        without_triggers: without,
    }))
}

/// The safety backup of the target, when the plan takes one (`now`, the
/// target's schema read under the lock, is what it is taken by), and the
/// triggers its way back allows
/// ([`crate::steps::migrations::way_back_triggers`], of the target's
/// triggers as read just before: a safety backup holds what it held).
fn safety_backup(
    sh: &Shell,
    project: &Project,
    planned: &Planned,
    (lock, now, target): (
        &crate::edge::lock::BackupLock,
        Option<Catalog>,
        &Environment,
    ),
) -> Result<(Option<PathBuf>, crate::steps::migrations::WayBack)> {
    let (true, Some(schema)) = (planned.safety_backup, now) else {
        return Ok((None, Default::default()));
    };
    let held = (
        triggers_of(&schema),
        tables_of(&schema),
        defined_of(&schema),
    );
    let file = take_safety_backup(sh, project, &planned.source, (lock, schema, target))?;
    let allowed = { file.as_deref() }
        .map(|file| {
            let held = (Some(&held), None);
            crate::steps::migrations::way_back_triggers(project, file, target, held)
        })
        .unwrap_or_default();
    Ok((file, allowed))
}

/// The triggers of `schema` (by name, their `CREATE TRIGGER` text).
fn triggers_of(schema: &Catalog) -> BTreeMap<String, String> {
    { schema.objects.iter() }
        .filter(|o| o.kind == "trigger")
        .filter_map(|o| Some((o.name.clone(), o.sql.clone()?)))
        .collect()
}

/// The tables and indexes of `schema` (by name, their text), as restore's
/// schema guard judges a dump's: a way back carries
/// `--allow-schema-change` for those its migrations make otherwise.
fn defined_of(schema: &Catalog) -> BTreeMap<String, String> {
    { schema.objects.iter() }
        .filter(|o| o.kind == "table" || o.kind == "index")
        .filter_map(|o| Some((o.name.clone(), o.sql.clone()?)))
        .collect()
}

/// The names of the tables of `schema`.
fn tables_of(schema: &Catalog) -> Vec<String> {
    { schema.objects.iter() }
        .filter(|o| o.kind == "table")
        .map(|o| o.name.clone())
        .collect()
}

/// Whether the restore takes a safety backup of the target first: of a
/// remote one, or a local one with something in it. A new database has
/// nothing to lose.
fn takes_safety_backup(
    target: &Environment,
    new: Option<&NewDatabase>,
    existing: &[(String, String)],
) -> bool {
    new.is_none() && (target.location == Location::Remote || !existing.is_empty())
}

/// A dry run stops after its plan: nothing was changed, and nothing is
/// left to carry out.
fn end_dry_run(args: &RestoreArgs, json: serde_json::Value) -> Option<Planned> {
    crate::say!("Dry run: nothing was changed.");
    if args.json {
        print_json(true, json, serde_json::Value::Null);
    }
    None
}

/// A backup of chosen tables, some AUTOINCREMENT, whose manifest has no
/// counters: an earlier version's, before it recorded them.
fn uncounted_sequences(source: &Source, schema: &[String]) -> bool {
    source
        .manifest
        .as_ref()
        .is_some_and(|m| m.sequences.is_none() && !m.tables.is_empty() && m.mode != "schema-only")
        && schema
            .iter()
            .any(|sql| sql.to_ascii_uppercase().contains("AUTOINCREMENT"))
}

/// The dump's warnings, before anything is changed: AUTOINCREMENT counters
/// it does not carry, and integers wrangler's export rounded past 64 bits
/// (once, any dump; a backup whose manifest records its wide integers
/// says `ROUNDED?` in the plan instead).
fn warn_of_the_dump(source: &Source, survey: &d1_core::repair::Survey) {
    warn_counters_not_carried(source, survey);
    // A manifest that records its wide integers says what its export
    // wrote: exactly (this tool's native export), or counted (D1's).
    let recorded = { source.manifest.as_ref() }.is_some_and(|m| m.wide_integers.is_some());
    if source.wide_integers.is_empty()
        && !recorded
        && let Some(said) = survey.rounded_integers_said()
    {
        crate::warn!("{said}");
    }
    if source.manifest.is_none() {
        for said in [survey.wide_integers_said(), survey.whole_reals_said()]
            .into_iter()
            .flatten()
        {
            crate::warn!("{said}");
        }
    }
}

/// Warns, before anything is changed, when a dump with no manifest creates
/// AUTOINCREMENT tables and holds no `sqlite_sequence` rows for them (a
/// `wrangler d1 export --table T`, or this tool's backup of chosen tables
/// without its manifest, which records their counters apart): each counter
/// is set from the highest id restored, so an id the source deleted above
/// it may be given again to a new row. Names the tables, never a value,
/// and the fix.
fn warn_counters_not_carried(source: &Source, survey: &d1_core::repair::Survey) {
    if source.manifest.is_some() {
        return;
    }
    let tables: Vec<String> = { survey.autoincrement_tables_without_counters().into_iter() }
        .map(|t| d1_core::names::shown_name(t).into_owned())
        .collect();
    if tables.is_empty() {
        return;
    }
    let (uses, its) = match tables.len() {
        1 => ("uses", "its counter is"),
        _ => ("use", "their counters are"),
    };
    crate::warn!(
        "{} {uses} AUTOINCREMENT, and this dump holds no sqlite_sequence rows (`wrangler d1 \
         export --table` leaves them out, and no manifest records them): {its} set from the \
         highest id restored, so an id deleted above it before the export may be given again \
         to a new row. A backup of chosen tables by this tool records the counters in its \
         manifest; or set a counter after the restore (`UPDATE sqlite_sequence SET seq = N \
         WHERE name = 'TABLE'`)",
        d1_core::wording::listed(&tables, "tables")
    );
}

/// Whether the target has no `d1_migrations` table after the restore:
/// dropped by `--replace`, or never there (an empty database).
fn no_migrations_table_after(existing: &[(String, String)], mode: Mode) -> bool {
    let has_migrations_table = existing
        .iter()
        .any(|(kind, name)| kind == "table" && d1_core::statement::is_migrations_table(name));
    let drops_migrations_table = mode == Mode::Replace && has_migrations_table;
    drops_migrations_table || !has_migrations_table
}

/// The schema the target has afterwards: the migrations' for `--clean`,
/// else the backup's own (`--replace` drops the rest), whose triggers that
/// cannot run there the plan names.
fn schema_after(
    migrations_dir: &Path,
    mode: Mode,
    source: &Source,
    schema: &[String],
) -> Result<Vec<String>> {
    Ok(match mode {
        Mode::Clean => crate::steps::migrations::schema_sql_of(migrations_dir)?,
        // A sqlite3 .dump's FTS5 tables are in `schema` already.
        _ => { source.virtual_tables.iter() }
            .filter(|vt| !schema.contains(&vt.sql))
            .map(|vt| vt.sql.clone())
            .chain(schema.iter().cloned())
            .collect(),
    })
}

/// [`schema_after`], and with `--clean` what it leaves out of the backup,
/// noted in `source` ([`left_out_by_clean`]).
fn schema_after_noting_left_out(
    migrations_dir: &Path,
    mode: Mode,
    source: &mut Source,
    schema: &[String],
) -> Result<Vec<String>> {
    let after = schema_after(migrations_dir, mode, source, schema)?;
    source.left_out = left_out_by_clean(mode, &after, source, schema);
    Ok(after)
}

/// With `--clean`, what it leaves out of the backup: what the backup
/// records rows of (`source.rows`) and what its dump makes (`schema`)
/// that the migrations' schema (`after`) lacks
/// ([`d1_core::catalog::left_out_of`]). Nothing otherwise: the backup's
/// own schema is made.
fn left_out_by_clean(
    mode: Mode,
    after: &[String],
    source: &Source,
    schema: &[String],
) -> Vec<(&'static str, String)> {
    if mode != Mode::Clean {
        return Vec::new();
    }
    let tables: Vec<&str> = source.rows.keys().map(String::as_str).collect();
    d1_core::catalog::left_out_of(after, &tables, schema, &source.left_out_virtual)
}

/// With `--replace`, the target's indexes, triggers and views it drops
/// that the schema it makes (`after`, the backup's) does not make again
/// ([`d1_core::catalog::dropped_not_made`]): the plan's `LOSES` line
/// names them. Nothing otherwise: nothing is dropped.
fn dropped_not_made(
    mode: Mode,
    after: &[String],
    catalog: &Catalog,
) -> Vec<(&'static str, String)> {
    if mode != Mode::Replace {
        return Vec::new();
    }
    d1_core::catalog::dropped_not_made(after, &target::dependent_objects(catalog))
}

/// Rows the target held already: whether its schema (`before`) too was
/// what a restore of this backup leaves, read again only then (rvCH).
fn schema_as_left(
    reader: &TargetReader<'_>,
    source: &Source,
    safety: Option<&Path>,
    before: Option<Vec<String>>,
) -> bool {
    let before = before.filter(|_| guards::holds_its_rows(source, safety));
    before.is_some_and(|mut before| {
        let Ok(after) = read_catalog(reader) else {
            return false;
        };
        let mut after = after.schema_statements();
        before.sort();
        after.sort();
        before == after
    })
}

/// `--json`'s document after a restore: the plan, and the result.
fn print_result(
    (args, source, target): (&RestoreArgs, &Source, &Environment),
    new: bool,
    (restored, content, way_back): (&Restored, &check::Content, Option<WayBackChosen>),
    plan: serde_json::Value,
) {
    let database_id = new.then_some(target.database_id.as_str());
    let mut result = result_json(restored, content, database_id);
    add_checked_through(&mut result, source, checked_through_export(args, target));
    add_way_back(&mut result, way_back);
    print_json(false, plan, result);
}

/// The way back printed, by its backup's path and its command, as
/// `migrate --json` gives its own (rvCH).
fn add_way_back(result: &mut serde_json::Value, way_back: Option<WayBackChosen>) {
    let (backup, command, placeholders) = match way_back {
        Some(w) => (Some(w.backup), Some(w.command), Some(w.placeholders)),
        None => (None, None, None),
    };
    result["way_back_backup"] = serde_json::json!(backup);
    result["way_back"] = serde_json::json!(command);
    result["way_back_placeholders"] = serde_json::json!(placeholders);
}

/// `--json`'s one document: the plan, and what the restore did.
fn print_json(dry_run: bool, plan: serde_json::Value, result: serde_json::Value) {
    crate::out::json(&serde_json::json!({
        "command": "restore",
        "dry_run": dry_run,
        "plan": plan,
        "result": result,
    }));
}

/// `--json`'s result: the safety backup, the rows per table and whether
/// the content was checked.
fn result_json(
    restored: &Restored,
    content: &Option<Result<usize, Vec<String>>>,
    database_id: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "safety_backup": restored.safety_backup,
        "tables": restored.counts.iter().map(|(table, expected, found)| serde_json::json!({
            "table": table, "expected": expected, "found": found,
        })).collect::<Vec<_>>(),
        "content_checked": matches!(content, Some(Ok(_))),
        "database_id": database_id,
    })
}

/// What `--json`'s `content_checked` compared through, as the text
/// report says it: `content_checked_through` (`"d1_export"` for a remote
/// target, read through D1's export as the backup's digests were made;
/// `"sqlite_file"` for a local one; `null` when no content was compared)
/// and `may_differ`, the tables whose values may differ all the same
/// ([`crate::steps::backup::written_alike_in`]), as `diff --json` has.
fn add_checked_through(result: &mut serde_json::Value, source: &Source, through_export: bool) {
    let checked = result["content_checked"] == true;
    result["content_checked_through"] = match (checked, through_export) {
        (false, _) => serde_json::Value::Null,
        (true, true) => "d1_export".into(),
        (true, false) => "sqlite_file".into(),
    };
    let may_differ = match checked && through_export {
        true => {
            crate::steps::backup::written_alike_in(source.manifest.as_ref(), &source.wide_integers)
        }
        false => Default::default(),
    };
    result["may_differ"] = serde_json::json!(may_differ);
}

/// Whether the content check read the target through D1's export (a
/// remote one, or a local one restored `--via-wrangler`, read back through
/// `wrangler d1 export --local`), not the SQLite file.
fn checked_through_export(args: &RestoreArgs, target: &Environment) -> bool {
    target.location == Location::Remote || args.via_wrangler
}

/// How the content check read a target through D1's export, as the
/// backup's digests were made (`" as D1's export shows them"`), and the
/// tables whose values the backup records as ones that export writes
/// alike (`"; whole REALs … in T may differ …"`); empty for one read from
/// its SQLite file (`through_export` false).
fn content_seen(source: &Source, through_export: bool) -> (String, String) {
    if !through_export {
        return Default::default();
    }
    let tables =
        crate::steps::backup::written_alike_in(source.manifest.as_ref(), &source.wide_integers);
    let differ = crate::steps::backup::may_differ_said(&tables);
    (
        format!(" {}", crate::steps::backup::AS_D1_EXPORT_SHOWS),
        differ.map(|d| format!("; {d}")).unwrap_or_default(),
    )
}

/// The way back from a restore: its safety backup, and the command that
/// restores it.
fn say_way_back(
    project: &Project,
    args: &RestoreArgs,
    (source, target): (&Source, &Environment),
    restored: &Restored,
    file: &Path,
) -> WayBackChosen {
    // The safety backup is sealed to the target's recipients today,
    // which the identity that opened the source (a retired key's
    // backup) may not be the key of: then the way back names the
    // recipients whose identity it needs, not that one.
    let recipients = Manifest::for_backup(file)
        .map(|m| m.sealed_to().to_vec())
        .unwrap_or_default();
    let opens = |id: &Path| {
        { project.age().recipients_of(id) }
            .is_ok_and(|keys| keys.iter().any(|k| recipients.contains(k)))
    };
    let identity = { args.identity.path() }.filter(|id| recipients.is_empty() || opens(id));
    // Said before the way back, whose command ends the line (LR).
    let sealed = match (args.identity.path(), identity, recipients.is_empty()) {
        (Some(_), None, false) => format!(
            "; it is sealed to {} today, and the identity this restore was given is not the \
             key of any of them",
            recipients.join(", "),
        ),
        _ => String::new(),
    };
    let advice = crate::steps::migrations::restore_advice_allowing(
        file,
        target,
        ("it", identity),
        &restored.safety_triggers,
    );
    // Rows the target held already, that an earlier restore put there:
    // this run's safety backup holds them too, and the one way back
    // printed is to the rows from before (rvCG), after the warning.
    let held = already_held(project, source, target, file, identity)
        .filter(|h| restored.schema_as_left || matches!(h, AlreadyHeld::Own(_)));
    let (way_back, back_to) = match &held {
        Some(AlreadyHeld::Older {
            warning,
            way_back,
            file,
        }) => {
            crate::warn!("{warning}");
            let triggers = crate::steps::migrations::way_back_triggers(
                project,
                file,
                target,
                (None, identity),
            );
            (way_back.clone(), (file.clone(), triggers))
        }
        _ => (
            format!(
                "The safety backup taken before the restore is {}{sealed}; {advice}",
                file.display(),
            ),
            (file.to_path_buf(), restored.safety_triggers.clone()),
        ),
    };
    // The only way back: the command's result, printed under -q too
    // (as `time-travel restore`'s undo is), so a scripted restore's log
    // keeps it; with --json, whose document names the file, on stderr.
    match args.json {
        true => crate::say!("{way_back}"),
        false => crate::data!("{way_back}"),
    }
    if let Some(AlreadyHeld::Own(said)) = held {
        crate::say!("{said}");
    }
    let (back_to, triggers) = back_to;
    let command = crate::steps::migrations::restore_command(&back_to, target, identity, &triggers);
    WayBackChosen {
        placeholders: crate::steps::migrations::way_back_placeholders(&back_to, identity),
        backup: back_to,
        command,
    }
}

/// The one way back a restore printed: `--json` gives it (rvCH).
struct WayBackChosen {
    backup: PathBuf,
    command: String,
    placeholders: serde_json::Value,
}

/// What the restore did, and the checklist of what was checked.
#[allow(clippy::too_many_arguments)]
fn report(
    project: &Project,
    envs: &Environments,
    args: &RestoreArgs,
    source: &Source,
    target: &Environment,
    new: bool,
    (restored, content, optimize): (&Restored, &check::Content, Option<&str>),
) -> Result<Option<WayBackChosen>> {
    // Where it went, as the plan's target line says it: `local` is only
    // ever the local D1, yet `(local)` alone read as a name.
    crate::say!(
        "Restored {} into {} ({}, {} D1).",
        file_name(&source.file),
        target.database_name,
        target.name,
        target.location
    );
    let way_back = { restored.safety_backup.as_deref() }
        .map(|file| say_way_back(project, args, (source, target), restored, file));
    print_checklist(
        &project.settings()?.app,
        &restored.key_check,
        &restored.counts,
        (source.manifest.is_some(), args.app_checked_next),
    );
    match content {
        Some(Ok(tables)) => {
            let (seen, differ) = content_seen(source, checked_through_export(args, target));
            crate::say!(
                "  [x] content: {}, every row equal to the backup's{seen}, by content digest\
                 {differ}",
                d1_core::wording::count(*tables, "table"),
            )
        }
        _ => crate::say!(
            "  [ ] content: the backup records no content digests; only row counts were compared"
        ),
    }
    if let Some(optimize) = optimize {
        crate::say!(
            "  [ ] query plans: no restore loads sqlite_stat1 (the planner's statistics, a name \
             D1 reserves; the backup's rows of it or the target's, there after an ANALYZE, are \
             dropped), so the restored database has none: run `{optimize}` (PRAGMA optimize runs ANALYZE where it \
             helps)"
        );
    }
    if new {
        print_binding(project, envs, source, target, args.json)?;
    }
    Ok(way_back)
}
