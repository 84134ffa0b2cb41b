//! Restoring a backup: load it into a database, with every guard checked
//! before anything runs. The `restore` command runs it; `drill` restores
//! into a scratch database through it.
//!
//! The plan is always printed first: the source and its manifest, the
//! target, the mode, what will be dropped, the safety backup, and every
//! repair made to the dump. `--dry-run` stops there. Then, in order: the
//! confirmation, the safety backup of the target, (for `--clean`) the
//! migrations, the load, and the checks against the manifest.
//!
//! Every refusal happens before the first statement that changes a
//! database: a changed or truncated file, a backup from another environment
//! aimed at production, a missing confirmation, a target that is not empty,
//! or a data-encryption key that differs from the backup's.
//!
//! `--to new:NAME` restores into a database created first (see
//! `new_database`): no safety backup, no reading of the target before it
//! exists, and the binding printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::config::environment::{Environment, Environments, Location};
use crate::config::project::Project;
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::fsutil::{self, TempFile};
use crate::edge::local_d1;
use crate::edge::lock::BackupLock;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::reader::DatabaseReader as TargetReader;
use crate::edge::stored;
use crate::edge::wrangler::{Commands, ExportMode, Wrangler};
use crate::steps::backup::{self, BackupArgs};
use crate::steps::new_database::{self, NewDatabase};
use d1_core::app::KeyRecord;
use d1_core::catalog::{Catalog, StuckTrigger, VirtualTable};
use d1_core::dump::{self, KeyFingerprint};
use d1_core::gate;
use d1_core::manifest::{self, Manifest};
use d1_core::names::file_name;
use d1_core::repair::{self, Sink};
use d1_core::statement;
use d1_core::statement::quote_ident;

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
    /// With --no-manifest: the environment the dump came from.
    #[arg(long, value_name = "ENV", requires = "no_manifest")]
    pub source_env: Option<String>,
    /// Into production whose D1 database was replaced (deleted and created
    /// again under the same name, its new id in the configuration): the id
    /// of the database the backup was taken from, as its manifest records.
    #[arg(long, value_name = "ID", conflicts_with = "no_manifest")]
    pub previous_database_id: Option<String>,
    /// Restore even though the backup's data-encryption key differs from the target's.
    #[arg(long)]
    pub accept_key_change: bool,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    IntoEmpty,
    Replace,
    Clean,
}

impl RestoreArgs {
    fn mode(&self) -> Mode {
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
}

/// What a finished restore did, for the drill's log.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup taken of the target first, if one was.
    pub safety_backup: Option<PathBuf>,
    /// Per table: rows in the backup, rows found on the target afterwards.
    pub counts: Vec<TableCount>,
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
    confirm::check_named(target, &args.confirm)?;
    let Some(planned) = plan(sh, project, envs, args, target, new.as_deref())? else {
        return Ok(None);
    };
    let (source, access, inspected) = (&planned.source, &planned.access, &planned.inspected);
    confirm::require(
        target,
        &args.confirm,
        &format!("restore {} into", file_name(&source.file)),
    )?;

    // From here to the end, no backup or other restore can run in between.
    let lock = crate::steps::lock::acquire_lock(project, &format!("restore into {}", target.name))?;
    let created;
    let target = match new.as_deref_mut() {
        Some(n) => {
            created = n.create(&access.wrangler, &planned.migrations_dir)?;
            &created
        }
        None => target,
    };
    // The target as it is now, under the lock: unchanged since the plan,
    // and the schema its safety backup is taken by.
    let reader = access.reader(target);
    let now = (new.is_none())
        .then(|| guard_unchanged(&reader, inspected, target))
        .transpose()?;
    let local_file = match access.fast_local {
        true => Some(ready_local_file(access.local_file.clone(), args.mode())?),
        false => None,
    };
    let safety = match (planned.safety_backup, now) {
        (true, Some(schema)) => take_safety_backup(sh, project, source, (&lock, schema, target))?,
        _ => None,
    };
    let loading = Loading {
        wrangler: &access.wrangler,
        cmds: &access.cmds,
        target,
        source,
        mode: args.mode(),
        local_file: local_file.as_deref(),
        safety: &safety,
    };
    make_local_private(project, target)?;
    let on_import = record_loading(project, &lock, &loading, new.as_deref())?;
    loading.load(&planned.survey, &planned.options, inspected, on_import)?;
    crate::edge::signals::changed(loading.restored("its check did not finish"));
    drop(lock);
    let (counts, content) = loading.check(project)?;
    crate::edge::signals::changed(loading.restored("it was checked"));

    let restored = Restored {
        safety_backup: safety,
        counts,
        key_check: inspected.key_check.clone(),
    };
    let new = new.is_some();
    report(
        project, envs, args, source, target, new, &restored, &content,
    )?;
    warn_after_restore(&planned, target);
    if args.json {
        let database_id = new.then_some(target.database_id.as_str());
        let result = result_json(&restored, &content, database_id);
        print_json(false, planned.json, result);
    }
    Ok(Some(restored))
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

/// The load about to start, recorded in the lock (what another run or a
/// later one is told) and, for a remote target, as what an interrupt now
/// leaves. `--clean` first applies the migrations, each its own query:
/// an interrupt then leaves some applied and no row loaded, and the
/// import's outcome, returned, is what an interrupt leaves once they are.
fn record_loading(
    project: &Project,
    lock: &crate::edge::lock::BackupLock,
    loading: &Loading<'_>,
    new: Option<&NewDatabase>,
) -> Result<Option<String>> {
    let (target, source) = (loading.target, loading.source);
    let doing = crate::edge::lock::Doing::Loading {
        env: target.name.clone(),
        backup: file_name(&source.file).to_string(),
        safety: loading.safety.as_deref().map(|f| file_name(f).to_string()),
    };
    let underway = crate::steps::lock::told(&doing, project);
    lock.record(doing)?;
    if target.location == Location::Remote {
        // Once wrangler has handed D1 the file, an interrupt no longer
        // stops the import; a database this restore created stays either way.
        let left = new.and_then(NewDatabase::left_in_place);
        let with_left = |what: String| match &left {
            Some(left) => format!("{what}; {left}"),
            None => what,
        };
        let on_import = with_left(underway);
        crate::edge::signals::changed(match loading.mode {
            Mode::Clean => with_left(format!(
                "applying the migrations to {}: wrangler applies each as its own query, so some \
                 of them may be applied, and no row of the backup was loaded{}",
                target.database_name,
                loading.named_safety()
            )),
            _ => on_import.clone(),
        });
        return Ok(Some(on_import));
    }
    Ok(None)
}

/// What a finished restore warns of: migrations pending again, triggers
/// that cannot run, FTS tables rebuilt, rowids renumbered, virtual tables
/// a backup could not hold whole.
fn warn_after_restore(planned: &Planned, target: &Environment) {
    let source = &planned.source;
    if let Some(then) = pending_again(&planned.pending_after, target) {
        crate::warn!("{} now has {then}", target.database_name);
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
    for vt in &source.virtual_tables {
        if let Some(why) = vt.lost_by_a_backup() {
            crate::warn!(
                "{} was not restored whole: it is {why}",
                d1_core::names::shown(&vt.name)
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
    /// for `--clean`, made by): see [`migrations_dir_for`].
    migrations_dir: PathBuf,
    /// The triggers that cannot run once it is loaded.
    stuck: Vec<StuckTrigger>,
    /// FTS5 tables rebuilt otherwise than their triggers keep them.
    fts_rebuilt: Vec<String>,
    /// Tables whose rows come back renumbered, while triggers keep their
    /// rowids elsewhere (as the backup's manifest records).
    renumbered: Vec<String>,
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
        let fast_local = target.location == Location::Local && !args.via_wrangler;
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

    /// The target, read from its local D1 file (a fast local restore) or
    /// through wrangler, the same way each time.
    fn reader<'a>(&'a self, target: &'a Environment) -> TargetReader<'a> {
        match self.read_from_file {
            true => TargetReader::File(self.local_file.clone()),
            false => TargetReader::Wrangler(&self.wrangler, &self.cmds, target),
        }
    }

    /// The target's catalog and the objects in it, as the plan finds them.
    fn read(
        &self,
        args: &RestoreArgs,
        target: &Environment,
        new: Option<&NewDatabase>,
    ) -> Result<(Catalog, Vec<(String, String)>)> {
        // A local D1 that has no file yet is empty: reading it through wrangler
        // would make it, which a plan (a dry run's) never does.
        let local_absent = target.location == Location::Local && !self.local_file.is_file();
        match local_absent && new.is_none() {
            true => Ok((Catalog::default(), Vec::new())),
            false => read_target(args, (target, &self.reader(target)), &self.wrangler, new),
        }
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
    let (mut source, migrations_dir) = check_source(project, envs, target, args, new.is_some())?;
    let access = TargetAccess::new(sh, project, args, target, new)?;
    let (catalog, existing) = access.read(args, target, new)?;
    let (options, survey, mut triggers, schema) =
        survey_dump(project, &mut source, &migrations_dir, mode, &catalog)?;
    let uncounted = uncounted_sequences(&source, &schema);
    let key_check = check_keys(project, args, &source, &access.reader(target), &catalog)?;
    // The triggers the dump creates: as its statements read, and as SQLite
    // made them in the preflight.
    triggers.extend(preflight(&source, &survey, &options)?);
    let after = schema_after(&migrations_dir, mode, &source, schema)?;
    let (stuck, fts_rebuilt) =
        d1_core::catalog::restored_otherwise(&after, &source.virtual_tables)?;
    guard_triggers(&source, (target, &migrations_dir), mode, &triggers)?;
    let none_after = no_migrations_table_after(&existing, mode);
    let pending_after = pending_after(&source, mode, &migrations_dir, none_after);
    let inspected = Inspected {
        catalog,
        existing,
        key_check,
    };
    let safety_backup = takes_safety_backup(target, new, &inspected.existing);
    if safety_backup && source.manifest.is_none() && mode != Mode::Clean {
        trial_load(&source, &survey, &options)?;
    }
    print_plan(&PlanView {
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
        uncounted,
    });
    let renumbered = print_plan_notes(&source, &fts_rebuilt);
    let mut json = plan_json(
        &source,
        target,
        args,
        new.is_some(),
        &inspected,
        safety_backup,
    );
    add_plan_notes(&mut json, &source, &stuck, &fts_rebuilt);
    if args.dry_run {
        end_dry_run(args, json);
        return Ok(None);
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
        stuck,
        fts_rebuilt,
        renumbered,
    }))
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

/// A dry run stops after its plan: nothing was changed.
fn end_dry_run(args: &RestoreArgs, json: serde_json::Value) {
    crate::say!("Dry run: nothing was changed.");
    if args.json {
        print_json(true, json, serde_json::Value::Null);
    }
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

/// Whether the target has no `d1_migrations` table after the restore:
/// dropped by `--replace`, or never there (an empty database).
fn no_migrations_table_after(existing: &[(String, String)], mode: Mode) -> bool {
    let has_migrations_table = existing
        .iter()
        .any(|(kind, name)| kind == "table" && name == d1_core::statement::MIGRATIONS_TABLE);
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
    schema: Vec<String>,
) -> Result<Vec<String>> {
    Ok(match mode {
        Mode::Clean => crate::steps::migrations::schema_sql_of(migrations_dir)?,
        _ => source
            .virtual_tables
            .iter()
            .map(|vt| vt.sql.clone())
            .chain(schema)
            .collect(),
    })
}

/// The migrations directory the restored database is judged by (and
/// `--clean` makes its schema with): a new database has none of its own
/// yet, so it is the backup's database's, as the binding printed for it
/// says.
fn migrations_dir_for(
    project: &Project,
    envs: &Environments,
    source: &Source,
    target: &Environment,
    new: bool,
) -> PathBuf {
    let migrations_of = source_environment(envs, source)
        .filter(|_| new)
        .unwrap_or(target);
    project.config_dir.join(&migrations_of.migrations_dir)
}

/// The environment of the database the backup was taken from: by the
/// manifest's database, as every "whose backup is this?" goes (a short
/// name renamed since still finds it); else by the name `--source-env`
/// gave.
fn source_environment<'e>(envs: &'e Environments, source: &Source) -> Option<&'e Environment> {
    match &source.manifest {
        Some(m) => envs.iter().find(|e| e.records(m)),
        None => (source.environment.as_deref()).and_then(|env| envs.resolve(env).ok()),
    }
}

/// The plan's last lines: FTS tables rebuilt, rowids renumbered and wide
/// integers a backup rounded. Returns the renumbered tables, as said.
fn print_plan_notes(source: &Source, fts_rebuilt: &[String]) -> Vec<String> {
    for why in fts_rebuilt {
        crate::say!("  REBUILT      {why}");
    }
    let renumbered: Vec<String> = source
        .manifest
        .iter()
        .flat_map(|m| m.rowids_renumbered.iter().flatten())
        .map(|(table, triggers)| crate::steps::backup::renumbered_said(table, triggers))
        .collect();
    for why in &renumbered {
        crate::say!("  RENUMBERS    {why}");
    }
    if !source.wide_integers.is_empty() {
        crate::say!(
            "  ROUNDED?     {}",
            crate::steps::backup::wide_integers_said(&source.wide_integers)
        );
    }
    renumbered
}

/// The same notes in `--json`'s plan: `breaks`, `rebuilt`,
/// `wide_integers`, `renumbered`.
fn add_plan_notes(
    json: &mut serde_json::Value,
    source: &Source,
    stuck: &[d1_core::catalog::StuckTrigger],
    fts_rebuilt: &[String],
) {
    json["breaks"] = stuck
        .iter()
        .map(|t| {
            serde_json::json!({
                "table": t.table,
                "statement": t.statement,
                "triggers": t.triggers,
                "error": t.error,
            })
        })
        .collect();
    json["rebuilt"] = serde_json::json!(fts_rebuilt);
    json["wide_integers"] = serde_json::json!(source.wide_integers);
    json["renumbered"] = serde_json::json!(
        source
            .manifest
            .as_ref()
            .and_then(|m| m.rowids_renumbered.clone())
            .unwrap_or_default()
    );
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

/// Refuses a target whose tables, views or triggers changed between the
/// plan and the lock; returns its schema as read now.
fn guard_unchanged(
    target_reader: &TargetReader<'_>,
    inspected: &Inspected,
    target: &Environment,
) -> Result<Catalog> {
    let now = read_catalog(target_reader)?;
    if existing_objects(&now) != inspected.existing {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} changed since the plan was made (tables, views or triggers were added or dropped); \
             run the restore again to see the new plan. Nothing was done.",
            target.database_name
        );
    }
    Ok(now)
}

/// How a restore's safety backup states its reason; the rest is the
/// backup's file name.
const SAFETY_REASON: &str = "safety backup before restoring ";

/// A safety backup with the very rows of the backup restored: the target
/// already held them, because an earlier restore of it landed (an
/// interrupted load that D1 finished, a closed terminal). Its "to go
/// back" then brings back nothing of before, so the safety backup taken
/// before that earlier restore is named: the newest older one of the same
/// database whose rows are not the backup's.
fn warn_if_already_held(
    project: &Project,
    source: &Source,
    target: &Environment,
    safety: &Path,
    identity: Option<&Path>,
) {
    let Some(wanted) = source.manifest.as_ref().and_then(|m| m.content.as_ref()) else {
        return;
    };
    let Ok(held) = Manifest::for_backup(safety) else {
        return;
    };
    if held.content.as_ref() != Some(wanted) {
        return;
    }
    let earlier = crate::edge::inventory::scan(&project.backup_dir)
        .unwrap_or_default()
        .into_iter()
        .find(|e| {
            let m = &e.manifest;
            e.file != safety
                && target.records(m)
                && m.created_at < held.created_at
                && m.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(SAFETY_REASON))
                && m.content.as_ref().is_some_and(|c| c != wanted)
        });
    let before = match earlier {
        Some(e) => format!(
            ": the newest older safety backup whose rows are not the backup's is {}; {}",
            e.file.display(),
            crate::steps::migrations::restore_advice(&e.file, target, "it", identity)
        ),
        None => String::new(),
    };
    crate::warn!(
        "{} already held every row of {} before this run (its safety backup equals the \
         backup), so this run changed no row, and that safety backup brings back nothing \
         older. If an earlier restore of it landed (an interrupted load D1 finished), what \
         the database held before it is in that restore's safety backup{before}",
        target.database_name,
        file_name(&source.file)
    );
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
    restored: &Restored,
    content: &Option<Result<usize, Vec<String>>>,
) -> Result<()> {
    crate::say!(
        "Restored {} into {} ({}).",
        file_name(&source.file),
        target.database_name,
        target.name
    );
    if let Some(file) = &restored.safety_backup {
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
        let mut advice = crate::steps::migrations::restore_advice(file, target, "it", identity);
        if let (Some(_), None, false) = (args.identity.path(), identity, recipients.is_empty()) {
            let _ = write!(
                advice,
                "; it is sealed to {} today, and the identity this restore was given is not \
                 the key of any of them",
                recipients.join(", "),
            );
        }
        crate::say!(
            "The safety backup taken before the restore is {}; {advice}",
            file.display(),
        );
        warn_if_already_held(project, source, target, file, identity);
    }
    print_checklist(
        &project.settings()?.app,
        &restored.key_check,
        &restored.counts,
        source.manifest.is_some(),
    );
    match content {
        Some(Ok(tables)) => crate::say!(
            "  [x] content: {}, every row equal to the backup's, by content digest",
            d1_core::wording::count(*tables, "table")
        ),
        _ => crate::say!(
            "  [ ] content: the backup records no content digests; only row counts were compared"
        ),
    }
    if new {
        print_binding(project, envs, source, target, args.json)?;
    }
    Ok(())
}

/// The backup to restore, read and checked against the target before the
/// target is read: its environment, its binding, its scope and, for
/// `--clean`, its migrations. Returns it and the migrations directory the
/// restored database is judged by ([`migrations_dir_for`]).
fn check_source(
    project: &Project,
    envs: &Environments,
    target: &Environment,
    args: &RestoreArgs,
    new: bool,
) -> Result<(Source, PathBuf)> {
    let mode = args.mode();
    if new && mode == Mode::Replace {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--replace is not for a new database: it has nothing to replace. Restore a full \
             backup to new:{name} without --replace, or a data-only one with --clean. Nothing \
             was done.",
            name = target.database_name
        );
    }
    let source = resolve_source(project, envs, target, args)?;
    if new && mode == Mode::Clean {
        guard_clean_new_scope(&source, target)?;
        guard_clean_new_migrations_known(&source, target)?;
    }
    guard_source_environment(&source, target, args, envs, &project.backup_dir)?;
    guard_same_binding(&source, target, envs)?;
    guard_backup_scope(&source, target, mode, args.partial, new)?;
    let dir = migrations_dir_for(project, envs, &source, target, new);
    if mode == Mode::Clean {
        guard_same_migrations(&source, &dir)?;
        guard_applied_migrations_unchanged(&source, &dir)?;
    }
    Ok((source, dir))
}

/// `--to new:NAME --clean` takes a data-only backup: the migrations make
/// the schema and the backup brings the rows. A backup that brings its own
/// schema (full, schema-only) goes in without --clean.
fn guard_clean_new_scope(source: &Source, target: &Environment) -> Result<()> {
    let Some(m) = source.manifest.as_ref().filter(|m| m.mode != "data-only") else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{} is a {} backup: it brings its own schema, and --clean is for a data-only backup, \
         whose rows go into the schema the migrations make. Restore it to new:{} without \
         --clean{}. Nothing was done.",
        source.file.display(),
        m.mode,
        target.database_name,
        if m.mode == "schema-only" {
            " and with --partial, for a database with its tables and no rows"
        } else {
            ""
        }
    )
}

/// `--to new:NAME --clean` applies the migrations of the database the
/// backup was taken from ([`migrations_dir_for`]): a dump without a
/// manifest names none unless `--source-env` does, and the new database's
/// default `migrations/` may be no database's, or another's.
fn guard_clean_new_migrations_known(source: &Source, target: &Environment) -> Result<()> {
    if source.manifest.is_some() || source.environment.is_some() {
        return Ok(());
    }
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{} has no manifest to say which database it was taken from, so which migrations make \
         the schema its rows go into is unknown: name that database's environment with \
         --source-env ENV, whose migrations_dir is applied to new:{}. Nothing was done.",
        source.file.display(),
        target.database_name
    )
}

/// The repair the dump needs, surveyed in one pass over the dump; without
/// a manifest, the same pass counts the rows and reads the key in force.
#[allow(clippy::type_complexity)]
fn survey_dump(
    project: &Project,
    source: &mut Source,
    migrations_dir: &Path,
    mode: Mode,
    catalog: &Catalog,
) -> Result<(
    repair::Options,
    repair::Survey,
    BTreeMap<String, String>,
    Vec<String>,
)> {
    let options = repair_options(source, migrations_dir, mode, catalog)?;
    let settings = project.settings()?;
    // The dump's triggers, by name, and every statement of its schema, read
    // in the survey's pass.
    let mut triggers = BTreeMap::new();
    let mut schema = Vec::new();
    let mut creates = 0usize;
    let mut note_trigger = |sql: &str| {
        let created = statement::created_object(sql);
        creates += usize::from(created.is_some());
        if created.is_some() {
            schema.push(sql.to_owned());
        }
        if let Some(("trigger", name)) = created {
            triggers.insert(name, sql.to_owned());
        }
    };
    // The rows and the key are counted from the dump, in the survey's pass:
    // without a manifest they are the source's; with one, they must be
    // what the manifest says.
    let mut summary = dump::Summarizer::new(settings.app.encryption_key.as_ref());
    // A manifest an earlier version wrote records no integers beyond 2^53
    // (`Manifest::wide_integers`): they are read in the same pass, but in
    // the tables it says a native local export wrote exactly.
    let unrecorded = source
        .manifest
        .as_ref()
        .filter(|m| m.wide_integers.is_none());
    let mut wide = BTreeMap::<String, u64>::new();
    let (survey, summary) = repair::survey_observing(source.data.open()?, &options, |sql| {
        note_trigger(sql);
        if let Some(m) = unrecorded
            && let Some((table, n)) = d1_core::digest::wide_in_insert(sql)
            && !m
                .exact_values
                .as_ref()
                .is_some_and(|e| e.contains_key(&table))
        {
            *wide.entry(table).or_default() += n;
        }
        summary.statement(sql)
    })
    .and_then(|survey| {
        // A data-only export has no CREATE TABLE: the rows it reports by
        // content (the key in force) are read in the schema they go into,
        // the migrations' or the target's (a dump's own CREATE wins).
        Ok((survey, summary.finish(&options.known_tables)?))
    })
    .with_context(|| format!("reading {}", source.file.display()))?;
    check_surveyed(
        source,
        mode,
        migrations_dir,
        (survey.statements, creates),
        summary,
        wide,
        settings.app.encryption_key.is_some(),
    )?;
    Ok((options, survey, triggers, schema))
}

/// What the survey found, held against the source: a dump that is empty is
/// refused; one with a manifest must be what it describes (its wide
/// integers and key taken where an older manifest records none); one
/// without takes its rows and key from the dump.
fn check_surveyed(
    source: &mut Source,
    mode: Mode,
    migrations_dir: &Path,
    (statements, creates): (u64, usize),
    summary: dump::DumpSummary,
    wide: BTreeMap<String, u64>,
    key_configured: bool,
) -> Result<()> {
    // An export that wrote nothing, or only its header (wrangler's first
    // line; `sqlite3 mistyped.db .dump`'s PRAGMA, BEGIN and COMMIT): loaded,
    // it would replace the target with nothing. Without a manifest there is
    // no record that an empty database was what was backed up.
    let empty = statements == 0
        || (source.manifest.is_none() && creates == 0 && summary.rows.values().sum::<u64>() == 0);
    if empty {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} creates no table and holds no row (it is empty, or only a header, blanks and \
             comments): it is not a dump of a database. Nothing was done.",
            source.file.display()
        );
    }
    match &source.manifest {
        Some(m) => {
            let contradictions = m.contradictions(&summary, key_configured);
            if !contradictions.is_empty() {
                crate::stop!(
                    crate::exit::Exit::Refused,
                    "refusing to restore {}: its manifest does not describe it ({}). The manifest \
                     was changed after the backup was taken (or, for the key, [app.encryption_key] \
                     in backups.toml was since). Nothing was written. `cargo xtask verify` the \
                     file, or restore it with --no-manifest to go by the dump alone.",
                    source.file.display(),
                    contradictions.join("; ")
                );
            }
            if m.wide_integers.is_none() {
                source.wide_integers = wide;
            }
            // The dump's own key, where it shows one: a manifest written
            // before the key rule existed records none.
            if summary.encryption_key.is_some() {
                source.encryption_key = summary.encryption_key;
            }
        }
        None => {
            if mode == Mode::Clean {
                guard_dump_migrations(&source.file, &summary.migrations, migrations_dir)?;
            }
            source.rows = summary.rows;
            source.encryption_key = summary.encryption_key;
        }
    }
    Ok(())
}

/// The repair options for restoring `source` into `target` by `mode`: the
/// schema it goes into, its virtual tables, chosen tables and counters.
fn repair_options(
    source: &Source,
    migrations_dir: &Path,
    mode: Mode,
    catalog: &Catalog,
) -> Result<repair::Options> {
    let (known_tables, known_triggers) = if mode == Mode::Clean {
        // The schema `migrations apply` is about to make.
        schema_from_migrations(migrations_dir)?
    } else {
        (catalog.create_statements(), BTreeMap::new())
    };
    // A clean restore without a manifest has no record of virtual tables;
    // the migrations make them, and an external-content FTS5 index, whose
    // rows the dump fills with its triggers held off, is rebuilt from them
    // (else, after a hand `--no-schema` export, searches find nothing).
    let virtual_tables = match (mode, &source.manifest) {
        (Mode::Clean, None) => known_tables
            .iter()
            .filter_map(|(name, sql)| VirtualTable::from_sql(name, sql))
            .filter(|vt| {
                matches!(
                    vt.content,
                    d1_core::catalog::VirtualContent::External { .. }
                )
            })
            .collect(),
        _ => source.virtual_tables.clone(),
    };
    Ok(repair::Options {
        virtual_tables,
        data_into_existing_schema: mode == Mode::Clean,
        known_tables,
        known_triggers,
        chosen_tables: source
            .manifest
            .as_ref()
            .map(|m| m.tables.clone())
            .unwrap_or_default(),
        sequences: source
            .manifest
            .as_ref()
            .and_then(|m| m.sequences.clone())
            .unwrap_or_default(),
    })
}

/// Refuses a backup whose dump creates a trigger that its migrations do
/// not: a trigger runs on every later write that matches it, long after
/// this restore and its checks, so a planted one (every new account made
/// an admin) would outlive them. The reference is the migrations the
/// backup records as applied, run in memory from the target's
/// `migrations_dir`. A dump without a manifest is not this tool's backup,
/// so its own triggers are named in a warning instead. A clean restore
/// loads no DDL from the dump and is not concerned.
fn guard_triggers(
    source: &Source,
    (target, dir): (&Environment, &Path),
    mode: Mode,
    triggers: &BTreeMap<String, String>,
) -> Result<()> {
    if triggers.is_empty() || mode == Mode::Clean {
        return Ok(());
    }
    let applied = source
        .manifest
        .as_ref()
        .and_then(|m| m.applied_migrations());
    let foreign = match crate::steps::migrations::foreign_triggers(applied, dir, triggers) {
        Ok(foreign) => foreign,
        Err(e) => {
            // The migrations are this repository's own: one this tool
            // cannot run in SQLite is its limit, not the backup's fault.
            crate::warn!(
                "the triggers {} creates were not checked against its migrations ({e:#}); check \
                 them before going on: {}",
                source.file.display(),
                crate::steps::migrations::trigger_names(triggers.keys())
            );
            return Ok(());
        }
    };
    if foreign.is_empty() {
        return Ok(());
    }
    let names = crate::steps::migrations::trigger_names(&foreign);
    if source.manifest.is_none() {
        crate::warn!(
            "{} creates triggers that no migration in {} creates: {names}. They will run on \
             later writes to {}; check them before going on.",
            source.file.display(),
            dir.display(),
            target.database_name
        );
        return Ok(());
    }
    crate::stop!(
        crate::exit::Exit::Refused,
        "{} creates triggers that the migrations it records as applied do not create (or \
         create otherwise): {names}. A trigger runs on every later write it matches, after this \
         restore's checks, so this backup is refused; if the trigger is meant, it belongs in a \
         migration. Nothing was done.",
        source.file.display()
    )
}

/// Every refusal the repair and the SQL gate can make, made now: nothing
/// has run against the target yet, not even the safety backup or
/// `--clean`'s migrations.
fn preflight(
    source: &Source,
    survey: &repair::Survey,
    options: &repair::Options,
) -> Result<BTreeMap<String, String>> {
    survey.ensure_repairable().with_context(|| {
        format!(
            "{} cannot be restored to D1; nothing was done",
            source.file.display()
        )
    })?;
    let mut preflight = repair::Preflight::new(options)?;
    // Read as the load will read it: a file changed since it was checked
    // is refused here, before the safety backup or anything else runs.
    repair::write_piped(source.open_for_load()?, survey, options, &mut preflight).with_context(
        || {
            format!(
                "{} cannot be loaded; nothing was done",
                source.file.display()
            )
        },
    )?;
    Ok(preflight.triggers())
}

/// A dump without a manifest, which no verification vouches for, loaded
/// whole into a scratch database first, as the load will run it, when a
/// safety backup is to be taken: a row that SQLite refuses whatever the
/// target holds (a key given twice, a broken foreign key) is refused here,
/// before the safety backup, rather than at each attempt after a new one.
/// Without a safety backup a failed load costs nothing (it is all or
/// nothing), so a restore into an empty database loads once. `--clean`
/// loads into the migrations' schema, which the preflight judges; it is
/// not tried here.
fn trial_load(source: &Source, survey: &repair::Survey, options: &repair::Options) -> Result<()> {
    let scratch = crate::edge::wrangler::PrivateDir::create("restore-trial")?;
    let db = scratch.path().join("trial.sqlite");
    let tried = std::fs::File::create(&db)
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            let mut loader = local_d1::Loader::open_scratch(&db)?;
            loader.load(source.open_for_load()?, survey, options)?;
            loader.commit()
        });
    tried.with_context(|| {
        format!(
            "{} cannot be loaded: it has no manifest, so it was first loaded into a scratch \
             database, which refused it; nothing ran against the target and no safety backup \
             was taken",
            source.file.display()
        )
    })?;
    Ok(())
}

/// The plan, as `--json` prints it.
fn plan_json(
    source: &Source,
    target: &Environment,
    args: &RestoreArgs,
    new: bool,
    inspected: &Inspected,
    safety_backup: bool,
) -> serde_json::Value {
    serde_json::json!({
        "source": source.file,
        "source_environment": source.environment,
        "target": {
            "environment": target.name,
            "database": target.database_name,
            "location": target.location.to_string(),
            "new": new,
            "location_hint": args.location,
        },
        "mode": args.mode().name(),
        "existing_objects": inspected.existing.len(),
        "safety_backup": safety_backup,
    })
}

/// The local D1 file a fast local restore loads, checked: no other
/// process holds it, and it exists unless `--clean`'s migrations make it.
fn ready_local_file(file: PathBuf, mode: Mode) -> Result<PathBuf> {
    if file.is_file() {
        local_d1::ensure_unheld(&file)?;
    } else if mode != Mode::Clean {
        // A clean restore's `migrations apply` creates it.
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the local D1 database file {} does not exist; nothing was done",
            file.display()
        );
    }
    Ok(file)
}

/// The safety backup of the target, under the restore's lock; the restore
/// does not start without it.
fn take_safety_backup(
    sh: &Shell,
    project: &Project,
    source: &Source,
    (lock, schema, target): (&BackupLock, Catalog, &Environment),
) -> Result<Option<PathBuf>> {
    crate::say!("Taking a safety backup of {} first.", target.database_name);
    let reason = format!("{SAFETY_REASON}{}", file_name(&source.file));
    let args = BackupArgs {
        accept_broken_data: true,
        ..BackupArgs::full(&target.name, reason)
    };
    let held = backup::Held {
        lock,
        schema: Some(schema),
        of: target,
    };
    backup::run_under(sh, project, &args, held).map_err(|e| {
        e.context(format!(
            "the safety backup of {} failed, so the restore did not start; nothing was changed",
            target.database_name
        ))
    })
}

/// The load and its checks, once the plan is confirmed and the lock held.
struct Loading<'a> {
    wrangler: &'a Wrangler,
    cmds: &'a Commands,
    target: &'a Environment,
    source: &'a Source,
    mode: Mode,
    /// The local D1 file, for a fast local restore.
    local_file: Option<&'a Path>,
    /// The safety backup, which every error after it names.
    safety: &'a Option<PathBuf>,
}

impl Loading<'_> {
    /// What the load leaves if this run dies in its middle, and the way
    /// back: written into the lock before the load, so that the next run
    /// says it.
    fn named_safety(&self) -> String {
        match self.safety {
            Some(file) => format!("; the safety backup taken before it is {}", file.display()),
            None => String::new(),
        }
    }

    /// What the target now is, once loaded: restored from the backup, in
    /// `state`, and the safety backup that was taken before.
    fn restored(&self, state: &str) -> String {
        format!(
            "{} was restored from {}; {state}{}",
            self.target.database_name,
            file_name(&self.source.file),
            self.named_safety()
        )
    }

    /// `--replace`'s drops, `--clean`'s migrations, then the rows: all or
    /// nothing.
    /// `on_import`: what an interrupt leaves once the migrations are
    /// applied ([`record_loading`]).
    fn load(
        &self,
        survey: &repair::Survey,
        options: &repair::Options,
        inspected: &Inspected,
        on_import: Option<String>,
    ) -> Result<()> {
        let (target, source, mode) = (self.target, self.source, self.mode);
        let drops = if mode == Mode::Replace {
            drop_statements(&inspected.existing, &inspected.catalog)
        } else {
            Vec::new()
        };
        if mode == Mode::Clean {
            self.wrangler
                .run(&self.cmds.migrations_apply(target))
                .map_err(|e| {
                    e.context(format!(
                        "applying migrations to {} failed, so no rows were loaded{}",
                        target.database_name,
                        self.named_safety()
                    ))
                })?;
            if let Some(left) = on_import {
                crate::edge::signals::changed(left);
            }
        }
        let loading = self.local_file.map(|_| {
            crate::out::Activity::counting(
                format!("loading into {}", target.database_name),
                Some(survey.statements),
            )
        });
        let loaded = match self.local_file {
            Some(file) => load_local(file, source, survey, options, &drops),
            None => load_with_wrangler(
                self.wrangler,
                self.cmds,
                target,
                source,
                survey,
                options,
                &drops,
            ),
        };
        drop(loading);
        if let Err(e) = loaded {
            let state = if mode == Mode::Clean {
                "the migrations were applied but no rows were loaded: the target has the schema only"
            } else {
                "the load is all-or-nothing, so the target is as it was"
            };
            return Err(e.context(format!(
                "the restore failed; {state}{}",
                self.named_safety()
            )));
        }
        Ok(())
    }

    /// The restored rows against the manifest (or the dump), then the
    /// content against the backup's digests. A remote target is exported
    /// once for its content, and its rows are counted in that export when
    /// it holds every counted table, rather than by a query that starts
    /// wrangler again.
    fn check(&self, project: &Project) -> Result<(Vec<TableCount>, Content)> {
        // A local D1 file that `--via-wrangler`'s import created is made
        // private now (one that was there already, before the load).
        if let Some(file) = local_d1::existing_file(&project.config_dir, self.target) {
            local_d1::make_private(&file)?;
        }
        let (content, exported) = self.content(project)?;
        let counts = self.counts(exported)?;
        if let Some(differ) = content.as_ref().and_then(|c| c.as_ref().err()) {
            bail!(
                "the restored content does not match the backup's: {}{}",
                differ.join("; "),
                self.named_safety()
            );
        }
        Ok((counts, content))
    }

    /// The target's rows counted table by table; refused when they differ
    /// from the manifest's, warned about when there is none.
    fn counts(&self, exported: Option<BTreeMap<String, u64>>) -> Result<Vec<TableCount>> {
        let (target, source, mode) = (self.target, self.source, self.mode);
        let (counts, wrong) = check_rows(
            (self.wrangler, self.cmds),
            target,
            source,
            mode,
            (self.local_file, exported),
        )
        .map_err(|e| {
            e.context(format!(
                "the restore ran, but its check failed{}",
                self.named_safety()
            ))
        })?;
        if !wrong.is_empty() {
            if source.manifest.is_some() {
                bail!(
                    "the restored rows do not match the backup's manifest: {}{}",
                    wrong.join("; "),
                    self.named_safety()
                );
            }
            // Without a manifest the expectation is one row per INSERT, which
            // a hand-made dump need not meet: it is said, not guessed at.
            crate::warn!(
                "the restored tables hold another number of rows than the dump has INSERT \
                 statements, and no manifest records the counts: {}. An INSERT of several \
                 rows, or a REPLACE or INSERT OR IGNORE over a row already in, does that; \
                 compare with the dump if you did not expect it",
                wrong.join("; ")
            );
        }
        Ok(counts)
    }

    fn content(&self, project: &Project) -> Result<(Content, Option<BTreeMap<String, u64>>)> {
        // A local D1 is read from its file, however it was loaded (through
        // wrangler too): a wrangler export would write some values D1's way.
        let file = self
            .local_file
            .map(Path::to_path_buf)
            .or_else(|| local_d1::existing_file(&project.config_dir, self.target));
        check_content(
            project,
            self.wrangler,
            self.cmds,
            self.target,
            self.source,
            self.mode,
            file.as_deref(),
        )
        .map_err(|e| {
            e.context(format!(
                "the restore ran, but its content check failed{}",
                self.named_safety()
            ))
        })
    }
}

/// What the target holds before the restore, read without changing it.
struct Inspected {
    catalog: Catalog,
    existing: Vec<(String, String)>,
    key_check: KeyCheck,
}

/// Reads the target's schema, and refuses a target the mode cannot
/// restore into.
fn read_target(
    args: &RestoreArgs,
    (target, target_reader): (&Environment, &TargetReader<'_>),
    wrangler: &Wrangler,
    new: Option<&NewDatabase>,
) -> Result<(Catalog, Vec<(String, String)>)> {
    let catalog = match new {
        // Nothing to read before the database exists; a name in use is refused.
        Some(n) => {
            n.ensure_absent(wrangler)?;
            Catalog::default()
        }
        None => {
            if let TargetReader::Wrangler(_, cmds, _) = target_reader {
                crate::steps::identity::check(wrangler, cmds, target, "restore into it")?;
            }
            read_catalog(target_reader)?
        }
    };
    let existing = existing_objects(&catalog);
    // `wrangler d1 migrations list` leaves a new database with an empty
    // d1_migrations: for `--clean`, which applies the migrations first, that
    // database is as empty as a new one.
    let only_unused_migrations_table = args.mode() == Mode::Clean
        && existing == [("table".to_owned(), statement::MIGRATIONS_TABLE.to_owned())]
        && target_reader
            .query(
                "count the target's recorded migrations (read-only)",
                &format!("SELECT count(*) AS n FROM {}", statement::MIGRATIONS_TABLE),
            )
            .ok()
            .and_then(|json| json.pointer("/0/results/0/n").and_then(|n| n.as_u64()))
            == Some(0);
    if !only_unused_migrations_table {
        guard_target_state(args.mode(), &existing, target)?;
    }
    Ok((catalog, existing))
}

/// Reads the target's data-encryption key, and refuses one that differs
/// from the backup's (unless `--accept-key-change`).
fn check_keys(
    project: &Project,
    args: &RestoreArgs,
    source: &Source,
    target_reader: &TargetReader<'_>,
    catalog: &Catalog,
) -> Result<KeyCheck> {
    let settings = project.settings()?;
    let target_key = target_key(target_reader, catalog, settings.app.encryption_key.as_ref())?;
    let table = settings
        .app
        .encryption_key
        .as_ref()
        .map_or("", |rule| rule.table.as_str());
    compare_keys(
        source.encryption_key.as_ref(),
        target_key.as_ref(),
        args.accept_key_change,
        table,
    )
}

impl Source {
    /// The SQL for loading, hashed as it is read and refused at its end
    /// unless it is the SQL the manifest records or, without a manifest,
    /// the SQL the restore first read and surveyed: a file changed between
    /// the plan and the load never reaches the target.
    fn open_for_load(&self) -> Result<Box<dyn std::io::BufRead + Send>> {
        match &self.manifest {
            Some(m) => {
                let (sha256, bytes) = m.sql_digest();
                self.data.open_checked(sha256, bytes)
            }
            None => match &self.pinned {
                Some((sha256, bytes)) => self.data.open_checked(sha256, *bytes),
                None => self.data.open(),
            },
        }
    }
}

/// A schema-only backup holds no rows, and `--clean` loads only rows: even
/// with `--partial` it would load nothing. (Into a new database
/// [`guard_clean_new_scope`] tells it first.)
fn refuse_a_schema_only_backup_with_clean(
    source: &Source,
    m: &Manifest,
    target: &Environment,
    mode: Mode,
) -> Result<()> {
    if m.mode == "schema-only" && mode == Mode::Clean {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is a schema-only backup: it holds no rows, and --clean loads only rows into the \
             schema the migrations make, so it would load nothing. To make the schema, `cargo \
             xtask migrate {}` applies the migrations; to restore the backup's own schema, \
             restore it --replace --partial. Nothing was done.",
            source.file.display(),
            target.name
        )
    }
    Ok(())
}

/// A whole data-only backup in a mode that cannot use it: each refusal
/// names the way that can.
fn refuse_a_data_only_backup_without_clean(
    source: &Source,
    m: &Manifest,
    target: &Environment,
    mode: Mode,
    new: bool,
) -> Result<()> {
    // Its rows go into tables it does not create: `--replace` drops them
    // all, and an empty target has none, so `--partial` cannot help.
    if m.tables.is_empty() && m.mode == "data-only" && new {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is a data-only backup: it creates no table, and without --clean a new database \
             gets the backup's own schema. Take the runbook's clean path, `--to new:{name} \
             --clean`, which creates the database, applies the migrations of the database the \
             backup was taken from and loads the rows into them; or restore a full backup to \
             new:{name} (`cargo xtask list` shows each backup's mode). Nothing was done.",
            source.file.display(),
            name = target.database_name
        )
    }
    if m.tables.is_empty() && m.mode == "data-only" {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is a data-only backup: it creates no table, so restoring it --{} would load its \
             rows into tables the target does not have then. Restore it with --clean, which \
             applies the migrations to a database with no tables and loads the rows into \
             them. Nothing was done.",
            source.file.display(),
            mode.name()
        )
    }
    Ok(())
}

/// Whole-database backups restore as they are. A backup of chosen tables, or
/// of the schema only, would leave the target without the rest of its data,
/// so it needs `--partial`; a data-only backup is what `--clean` expects.
fn guard_backup_scope(
    source: &Source,
    target: &Environment,
    mode: Mode,
    partial: bool,
    new: bool,
) -> Result<()> {
    let Some(m) = &source.manifest else {
        return Ok(());
    };
    let whole = m.tables.is_empty();
    let fits = match m.mode.as_str() {
        "full" => whole,
        "data-only" => whole && mode == Mode::Clean,
        _ => false,
    };
    refuse_a_schema_only_backup_with_clean(source, m, target, mode)?;
    if fits || partial {
        return Ok(());
    }
    refuse_a_data_only_backup_without_clean(source, m, target, mode, new)?;
    let what = if whole {
        format!("a {} backup", m.mode)
    } else {
        format!("a {} backup of only {}", m.mode, m.tables.join(", "))
    };
    let leaves = match mode {
        Mode::IntoEmpty if m.mode == "schema-only" => {
            "restored, the database would have its tables and no rows".to_owned()
        }
        Mode::IntoEmpty => "restored, the database would hold only those tables".to_owned(),
        _ => format!(
            "restoring it --{} would leave the target without the rest of its data",
            mode.name()
        ),
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "{} is {what}; {leaves}. Pass --partial if that is what you want. Nothing was done.",
        source.file.display(),
    )
}

/// `--clean` loads rows into the schema of today's migrations/; refuse when
/// the backup was taken at another set of migrations, where the rows'
/// columns may not line up.
fn guard_same_migrations(source: &Source, dir: &Path) -> Result<()> {
    let Some(m) = &source.manifest else {
        return Ok(());
    };
    let files = crate::steps::migrations::migration_files(dir)?;
    if m.migrations != files && !m.rows_go_on_todays_migrations() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "the backup was taken with migrations [{}], but {} now holds [{}]; --clean would load \
             its rows into a different schema. {} or restore without --clean. Nothing was done.",
            m.migrations.join(", "),
            dir.display(),
            files.join(", "),
            match m.git_commit.as_deref() {
                Some(commit) => format!("Check out the commit the manifest names ({commit})"),
                // Taken outside git, or before its first commit.
                None =>
                    "The manifest names no commit: check out one whose migrations are those the \
                         backup was taken with"
                        .to_owned(),
            }
        );
    }
    Ok(())
}

/// [`guard_same_migrations`] for a dump without a manifest: its own
/// `d1_migrations` rows (a data-only export carries them) say which
/// migrations made the schema its rows came from. A later migration that
/// made a table and seeded it would otherwise be emptied by `--clean`,
/// which empties every table before the rows load, and a dropped or
/// renamed column would not line up. A dump with no such rows tells
/// nothing, and goes by the tables it fills.
fn guard_dump_migrations(file: &Path, recorded: &[String], dir: &Path) -> Result<()> {
    let files = crate::steps::migrations::migration_files(dir)?;
    if let Some(differs) = crate::steps::migrations::dump_records_others(recorded, &files) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} was taken with other migrations than {} holds, by its d1_migrations rows: {}. \
             --clean would load its rows into a different schema. Check out the migrations of \
             that time, or restore it into a database made by them. Nothing was done.",
            file.display(),
            dir.display(),
            differs
        );
    }
    Ok(())
}

/// `--clean` rebuilds the schema from `migrations/`; refuse (exit 3) when a
/// migration the backup had applied now has other contents there (its
/// manifest's `migration_sha256`), which would build another schema than
/// the one the rows came from.
fn guard_applied_migrations_unchanged(source: &Source, dir: &Path) -> Result<()> {
    let Some(m) = &source.manifest else {
        return Ok(());
    };
    let Some(record) = &m.migration_sha256 else {
        return Ok(());
    };
    let edited = crate::steps::migrations::edited_migrations(
        record,
        &m.migrations,
        &crate::steps::migrations::digests(dir, &m.migrations),
    );
    if !edited.is_empty() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore {} --clean: {} Or restore it with --replace, which keeps the \
             backup's own schema. Nothing was done.",
            source.file.display(),
            crate::steps::migrations::edited_report(&edited, dir, &m.file.name)
        );
    }
    Ok(())
}

/// The `CREATE TABLE` and `CREATE TRIGGER` statements that applying `dir`'s
/// migrations makes. A clean restore needs them (the tables name a split
/// row's columns, the triggers are held off while the rows load): one that
/// does not run here stops it, before anything runs.
fn schema_from_migrations(
    dir: &Path,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    use crate::steps::migrations::{migration_files, read_migrations, schema_created_by};
    schema_created_by(&read_migrations(dir, &migration_files(dir)?)?).context(
        "a clean restore loads the rows into the schema the migrations make, holding their \
         triggers off, so it must know that schema; restore a full backup with --replace \
         instead. Nothing was done",
    )
}

/// Finds the source file and its facts, and checks it against its manifest.
/// `latest` after a restore is often the safety backup that restore took:
/// restoring it again puts back the state from before. Said, so that an
/// operator repeating a restore by `latest` sees which backup it is.
fn warn_if_latest_is_a_safety_backup(source: &str, manifest: &Manifest) {
    let reason = manifest.reason.as_deref().unwrap_or("");
    if source.starts_with("latest") && reason.starts_with("safety backup") {
        crate::warn!(
            "{source} is {}, the safety backup taken at {} ({}): restoring it puts back what \
             the target held before that restore. To restore another backup, name its file.",
            manifest.file.name,
            manifest.created_at.format("%Y-%m-%d %H:%M UTC"),
            reason.escape_debug()
        );
    }
}

fn resolve_source(
    project: &Project,
    envs: &Environments,
    target: &Environment,
    args: &RestoreArgs,
) -> Result<Source> {
    let file = backup_file(project, target, args)?;
    let data = stored::Source::for_file(&file, args.identity.path(), &project.age())?;
    // A header no backup has (thousands of stanzas, each tried on every
    // read) is refused before age reads it.
    if d1_core::sealed::Format::of(&file) == d1_core::sealed::Format::ZstdAge
        && let Err(e) = stored::age_stanzas(&file)
    {
        crate::stop!(crate::exit::Exit::Refused, "{e:#}; refusing to restore it.");
    }
    // One that the key of a recipient its manifest records does not open
    // (sealed to others, or damaged) is refused, as the whole read below
    // refuses it; a key that is none of theirs is bad input (exit 2).
    let head = data
        .head()
        .map_err(|e| match e.downcast_ref::<stored::SealedToOthers>() {
            Some(_) => crate::exit::Exit::Refused.error(e.context("refusing to restore it")),
            None => e,
        })?;
    dump::check_looks_like_sql(&head)
        .with_context(|| format!("{}", file.display()))
        .map_err(crate::exit::could_not_run)?;

    if args.no_manifest {
        return source_without_manifest(file, data, envs, args);
    }
    let manifest_path = manifest::manifest_path(&file);
    // Whatever is there (a FIFO, a link) is read, or refused, as a
    // manifest: it is not a missing one.
    if std::fs::symlink_metadata(&manifest_path).is_err() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} has no manifest beside it ({}); if it is an export made by hand or a sqlite3 .dump, \
             pass --no-manifest (the plan lists the checks that skips)",
            file.display(),
            manifest_path.display()
        );
    }
    let manifest = Manifest::for_backup(&file)?;
    if let Err(differs) = fsutil::check_recorded(&file, &manifest.file)? {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} does not match its manifest: {differs}. Refusing to restore it.",
            file.display()
        );
    }
    if let Some(sealed) = &manifest.sealed {
        check_sealed_plaintext(&file, &data, sealed)?;
    }
    warn_if_latest_is_a_safety_backup(&args.source, &manifest);
    Ok(Source {
        file,
        data,
        environment: Some(manifest.environment.clone()),
        rows: manifest.rows.clone(),
        encryption_key: manifest.encryption_key.clone(),
        virtual_tables: manifest.virtual_table_ddl(),
        wide_integers: manifest.wide_integers.clone().unwrap_or_default(),
        manifest: Some(manifest),
        pinned: None,
    })
}

/// A backup restored with `--no-manifest`: its environment is the one
/// `--source-env` names, if any, and what it holds is read from the dump.
fn source_without_manifest(
    file: PathBuf,
    data: stored::Source,
    envs: &Environments,
    args: &RestoreArgs,
) -> Result<Source> {
    let environment = match &args.source_env {
        Some(name) => Some(envs.resolve(name)?.name.clone()),
        None => None,
    };
    // The rows and the key are counted from the dump in the survey's
    // pass; what the load reads must be what was read now.
    let pinned = Some(data.plaintext_digest()?);
    Ok(Source {
        file,
        data,
        manifest: None,
        environment,
        rows: BTreeMap::new(),
        encryption_key: None,
        virtual_tables: Vec::new(),
        pinned,
        wide_integers: BTreeMap::new(),
    })
}

/// A sealed backup must decrypt and decompress to the SQL its manifest
/// records, byte for byte, with a key of the recipients it names.
fn check_sealed_plaintext(
    file: &Path,
    data: &stored::Source,
    sealed: &d1_core::manifest::Sealed,
) -> Result<()> {
    let (sha256, bytes) = match data.plaintext_digest_up_to(sealed.plaintext_bytes)? {
        Ok(digest) => digest,
        Err(e) if data.is_unopened(&sealed.recipients) => return Err(e),
        Err(_) => crate::stop!(
            crate::exit::Exit::Refused,
            "{} cannot be decrypted and decompressed to its end with a key of the recipients \
             its manifest records: it was written damaged, cut short, or sealed to others; \
             refusing to restore it.",
            file.display()
        ),
    };
    if bytes > sealed.plaintext_bytes {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} decodes to more SQL than the {} bytes its manifest records (read no \
             further); refusing to restore it.",
            file.display(),
            sealed.plaintext_bytes
        );
    }
    if bytes != sealed.plaintext_bytes || sha256 != sealed.plaintext_sha256 {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} decodes to {bytes} bytes of SQL with sha256 {sha256}, but its manifest records \
             {} bytes with sha256 {}; refusing to restore it.",
            file.display(),
            sealed.plaintext_bytes,
            sealed.plaintext_sha256
        );
    }
    Ok(())
}

/// Where the backup to restore is (a path, a name `list` prints,
/// `latest:ENV`).
fn backup_file(project: &Project, target: &Environment, args: &RestoreArgs) -> Result<PathBuf> {
    // `--database` picks the target; a qualified `latest:ENV.DB` names its
    // own database, and one that is not the target's is refused by the
    // binding guard, naming both.
    let qualified = args.source.strip_prefix("latest:").is_some_and(|name| {
        project.environments().is_ok_and(|envs| {
            envs.iter()
                .any(|e| e.name == name && e.databases_in_env > 1)
        })
    });
    let unpicked;
    let source_project = match qualified {
        true => {
            unpicked = Project {
                database: None,
                ..project.clone()
            };
            &unpicked
        }
        false => project,
    };
    source_project.resolve_backup(
        &args.source,
        // A new database has no backups of its own: `latest:ENV` says whose.
        (!target.is_new).then_some(target.name.as_str()),
        crate::edge::inventory::Latest::Good,
    )
}

/// Only a backup taken from production may go into production.
fn guard_source_environment(
    source: &Source,
    target: &Environment,
    args: &RestoreArgs,
    envs: &Environments,
    backup_dir: &Path,
) -> Result<()> {
    if let Some(id) = &args.previous_database_id {
        let moved = target.is_production()
            && (source.manifest.as_ref())
                .is_some_and(|m| !m.database.uuid.eq_ignore_ascii_case(&target.database_id));
        if !moved {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "--previous-database-id {} would do nothing here: it is for a backup of \
                 production's previous database (its manifest's id differs from the configured \
                 database_id of {}), restored into production. Nothing was done.",
                d1_core::names::shown(id),
                target.database_name
            );
        }
    }
    if !target.is_production() {
        return Ok(());
    }
    // Recorded under the name the target had when it was taken (before a
    // second database was added, or after one was taken out); its
    // database's name and id are then checked as any other's.
    let recorded_as_target = |env: &str| {
        env == target.name
            || (source.manifest.as_ref())
                .is_some_and(|m| target.recorded_as(env, &m.database.name, &m.database.uuid))
    };
    match source.environment.as_deref() {
        Some(env) if recorded_as_target(env) => match &source.manifest {
            Some(m) => guard_same_database(m, target, args, envs, backup_dir),
            None => Ok(()),
        },
        Some(env) => crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore a backup of {env} into {} (production): only backups taken from \
             production may go there. Nothing was done.",
            target.database_name
        ),
        None if args.no_manifest => crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore a dump of unknown origin into {} (production): if it was taken from \
             production, say so with --source-env {} (and --confirm {}). Nothing was done.",
            target.database_name,
            target.name,
            target.database_name
        ),
        None => {
            crate::stop!(
                crate::exit::Exit::Refused,
                "the backup's environment is unknown; refusing to restore it into production"
            )
        }
    }
}

/// A backup of one of an environment's databases goes only into the
/// database with the same binding (the same database in every
/// environment): a backup of `ANALYTICS` never replaces `DB`, in any
/// environment, whatever `--database` picked for the target.
fn guard_same_binding(source: &Source, target: &Environment, envs: &Environments) -> Result<()> {
    // A new database has no binding yet: the one printed for it afterwards
    // is the backup's own.
    if target.is_new {
        return Ok(());
    }
    // A backup taken while its environment had another number of
    // databases is recorded under another name: its database's name says
    // which it is now (`Environment::recorded_as`).
    let database = source.manifest.as_ref().map(|m| m.database.name.as_str());
    let id = source
        .manifest
        .as_ref()
        .map_or("", |m| m.database.uuid.as_str());
    let Some(from) = source.environment.as_deref().and_then(|name| {
        envs.iter().find(|e| match database {
            Some(database) => e.recorded_as(name, database, id),
            None => e.name == name,
        })
    }) else {
        // Of no database configured now, in any environment: one taken out
        // of the configuration, or another project's (a shared backup
        // directory), is another database, with another schema; only a
        // new database (above) takes it.
        if let (Some(name), Some(database)) = (source.environment.as_deref(), database)
            && database != target.database_name
        {
            if let Some(note) = target.renamed_from(database, id) {
                crate::stop!(
                    crate::exit::Exit::Refused,
                    "refusing to restore a backup of {database} (recorded as {name}) into {} ({}): \
                     {note}. Nothing was done.",
                    target.name,
                    target.database_name
                );
            }
            crate::stop!(
                crate::exit::Exit::Refused,
                "refusing to restore a backup of {database} (recorded as {name}) into {} ({}): \
                 {database} is not defined by this configuration (another project's or \
                 checkout's database sharing this backup directory, or one taken out of the \
                 configuration), so it is another database, with another schema. Restore it \
                 with the configuration that defines it, or into a database of its own with \
                 `--to new:NAME`. Nothing was done.",
                target.name,
                target.database_name
            );
        }
        return Ok(());
    };
    if from.binding != target.binding {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore a backup of {} ({}, binding {}) into {} ({}, binding {}): it is \
             another database, with another schema. Restore it into the database with binding {} \
             (--database {}). Nothing was done.",
            from.name,
            from.database_name,
            from.binding,
            target.name,
            target.database_name,
            target.binding,
            from.binding,
            from.binding,
        );
    }
    Ok(())
}

/// A backup going to production must say, in every field, that it was
/// taken from production's database: its environment, and its database's
/// name and id. A manifest relabelled by hand changes one and not the rest.
/// Production's database replaced by a new one under the same name (the
/// old one deleted after an incident, the new id in the configuration)
/// keeps its backups, recorded with the old id: they go into the new one
/// when the operator says that id (`--previous-database-id`), besides the
/// typed name; never an id another environment of this configuration has,
/// and never a backup taken after one of the database now configured: that
/// one's database was still production's somewhere (another checkout's or
/// account's, sharing the backup directory) when ours already was, so it is
/// not the one replaced.
fn guard_same_database(
    m: &Manifest,
    target: &Environment,
    args: &RestoreArgs,
    envs: &Environments,
    backup_dir: &Path,
) -> Result<()> {
    let db = &m.database;
    let ours = target.recorded_as(&m.environment, &db.name, &db.uuid);
    if ours && db.uuid.eq_ignore_ascii_case(&target.database_id) {
        return Ok(());
    }
    if ours {
        return guard_replaced_database(m, target, args, envs, backup_dir);
    }
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to restore into {} (production, database id {}): the backup's manifest says \
         environment {:?}, database {:?} with id {:?}, which is not production's database. Only \
         a backup taken from {} may go there. If this is production's backup from before its \
         binding was moved to {}, restore it into a database of its own with `--to new:NAME` \
         and move the binding to that one (README, \"Into a brand-new database\"); otherwise \
         restore it into the environment it came from. Nothing was done.",
        target.database_name,
        target.database_id,
        m.environment,
        db.name,
        db.uuid,
        target.database_name,
        target.database_name
    )
}

/// A backup of production's environment and database name, with another
/// id than the one configured now: it goes there only if it is of the
/// database production replaced, as `--previous-database-id` says, and no
/// other environment has its id, and no backup of the database configured
/// now was taken before it.
fn guard_replaced_database(
    m: &Manifest,
    target: &Environment,
    args: &RestoreArgs,
    envs: &Environments,
    backup_dir: &Path,
) -> Result<()> {
    let db = &m.database;
    let said = args.previous_database_id.as_deref();
    let elsewhere = envs
        .iter()
        .find(|e| !e.database_id.is_empty() && e.database_id.eq_ignore_ascii_case(&db.uuid));
    if let Some(other) = elsewhere {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore into {} (production, database id {}): the backup's manifest \
             says database {:?} with id {:?}, which this configuration gives {} ({}). It is \
             not production's database. Nothing was done.",
            target.database_name,
            target.database_id,
            db.name,
            db.uuid,
            other.name,
            other.database_name
        );
    }
    if let Some(before) = backed_up_before(backup_dir, target, m)? {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore into {} (production, database id {}): the backup is of {} \
             ({}) with id {:?}, taken {}, after {} was already backed up as production's \
             database with the configured id ({}). So it is not the database production \
             replaced: it is another (another checkout's or account's production sharing \
             this backup directory, or a manifest edited by hand), and \
             --previous-database-id does not take it. Restore it into a database of its \
             own with `--to new:NAME`. Nothing was done.",
            target.database_name,
            target.database_id,
            db.name,
            m.environment,
            db.uuid,
            m.created_at.format("%Y-%m-%d %H:%M UTC"),
            target.database_name,
            before
        );
    }
    match said {
        Some(id) if id.eq_ignore_ascii_case(&db.uuid) => Ok(()),
        Some(id) => crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore into {} (production, database id {}): \
             --previous-database-id {} is not the id the backup's manifest records ({:?}). \
             Nothing was done.",
            target.database_name,
            target.database_id,
            d1_core::names::shown(id),
            db.uuid
        ),
        None => crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore into {} (production, database id {}): the backup is of {} \
             ({}) with id {:?}, taken {}, another D1 database than the one the \
             configuration now gives it. Only if production's database was replaced after \
             that (deleted, and created again under this name) and {:?} was its id, say \
             that this backup is of the one replaced: add --previous-database-id {} (with \
             --confirm {}). A backup of another checkout's or account's production is not \
             one: restore it with `--to new:NAME`. Nothing was done.",
            target.database_name,
            target.database_id,
            db.name,
            m.environment,
            db.uuid,
            m.created_at.format("%Y-%m-%d %H:%M UTC"),
            db.uuid,
            d1_core::wording::shell_word(&db.uuid),
            d1_core::wording::shell_word(&target.database_name)
        ),
    }
}

/// The name of a backup in `backup_dir` of `target`'s database with its
/// configured id, taken before `m` was: the database `m` records was then
/// not yet replaced by it.
fn backed_up_before(
    backup_dir: &Path,
    target: &Environment,
    m: &Manifest,
) -> Result<Option<String>> {
    let (entries, _) = crate::edge::inventory::scan_all(backup_dir)?;
    Ok(entries
        .iter()
        .filter(|e| {
            let o = &e.manifest;
            target.records(o)
                && o.database.uuid.eq_ignore_ascii_case(&target.database_id)
                && o.created_at < m.created_at
        })
        .min_by_key(|e| e.manifest.created_at)
        .map(|e| e.manifest.file.name.clone()))
}

/// Tables, views and triggers a restore would collide with or drop:
/// everything but SQLite's, D1's and the shadow tables of virtual tables.
fn existing_objects(catalog: &Catalog) -> Vec<(String, String)> {
    catalog
        .objects
        .iter()
        .filter(|o| matches!(o.kind.as_str(), "table" | "view" | "trigger"))
        .filter(|o| o.sql.is_some())
        .filter(|o| !o.name.starts_with("sqlite_") && !o.name.starts_with("_cf_"))
        .filter(|o| o.table_kind.as_deref() != Some("shadow"))
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect()
}

fn guard_target_state(
    mode: Mode,
    existing: &[(String, String)],
    target: &Environment,
) -> Result<()> {
    if mode == Mode::Replace || existing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = existing
        .iter()
        .filter(|(k, _)| k == "table")
        .map(|(_, n)| n.as_str())
        .collect();
    let how = match mode {
        Mode::IntoEmpty => "a restore (--into-empty, the default when no mode is given)".to_owned(),
        other => format!("--{}", other.name()),
    };
    // --replace takes only a whole backup; --clean is for a data-only one.
    let fix = match mode {
        Mode::Clean => {
            "Restore it into a database with no tables: a new one, which `--to new:NAME --clean` \
             creates and migrates, or this one emptied first; a whole backup can replace this \
             one with --replace"
        }
        _ => {
            "Use --replace to drop them and load the backup in one step (a safety backup is \
             taken first)"
        }
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "{} is not empty (tables: {}); {how} needs a database with no tables. {fix}. Nothing was \
         done.",
        target.database_name,
        d1_core::wording::listed(&names, "tables")
    )
}

fn read_catalog(reader: &TargetReader<'_>) -> Result<Catalog> {
    reader.catalog("read the target's schema (read-only)")
}

fn target_key(
    reader: &TargetReader<'_>,
    catalog: &Catalog,
    rule: Option<&KeyRecord>,
) -> Result<Option<KeyFingerprint>> {
    let Some(rule) = rule else {
        return Ok(None);
    };
    if !catalog
        .objects
        .iter()
        .any(|o| o.kind == "table" && o.name == rule.table)
    {
        return Ok(None);
    }
    let Ok(json) = reader.query(
        "read the target's encryption-key fingerprint (read-only)",
        &rule.select(),
    ) else {
        // A table of another shape than declared records no key.
        return Ok(None);
    };
    let row = crate::edge::reader::result_rows(&json, 0).first();
    Ok(row.and_then(|r| {
        Some(KeyFingerprint::new(
            r.get(&rule.key_id)?.as_str()?,
            r.get(&rule.fingerprint)?.as_str()?,
        ))
    }))
}

/// The outcome of comparing the backup's key fingerprint with the target's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    Same(String),
    /// The target has no key recorded (an empty database): nothing to compare.
    TargetHasNone,
    /// The backup recorded no key.
    BackupHasNone,
    AcceptedChange {
        backup: String,
        target: String,
        /// The backup's key id: the key the environment's secret must
        /// become for the restored rows to decrypt.
        backup_key_id: String,
    },
}

pub fn compare_keys(
    backup: Option<&KeyFingerprint>,
    target: Option<&KeyFingerprint>,
    accept: bool,
    table: &str,
) -> Result<KeyCheck> {
    match (backup, target) {
        (_, None) => Ok(KeyCheck::TargetHasNone),
        (None, Some(_)) => Ok(KeyCheck::BackupHasNone),
        (Some(b), Some(t)) if b.fingerprint == t.fingerprint => {
            Ok(KeyCheck::Same(b.fingerprint.clone()))
        }
        (Some(b), Some(t)) if accept => Ok(KeyCheck::AcceptedChange {
            backup: b.fingerprint.clone(),
            target: t.fingerprint.clone(),
            backup_key_id: b.key_id.clone(),
        }),
        (Some(b), Some(t)) => Err(crate::exit::Exit::Refused.error(KeyRefusal {
            backup: b.clone(),
            target: t.clone(),
            table: d1_core::names::shown(table).to_string(),
        })),
    }
}

/// A restore refused because the backup was taken under another
/// data-encryption key than the target has in force. A type of its own,
/// so that the drill can log it as its key check's failure
/// ([`crate::exit::find`]).
#[derive(Debug)]
pub struct KeyRefusal {
    backup: KeyFingerprint,
    target: KeyFingerprint,
    /// The target's table the key in force was read from.
    table: String,
}

impl std::fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refusing to restore: the backup was taken under data-encryption key {b} ({}), \
             but the target's {} table records key {t} ({}) in force. Warning from the runbook: \
             {KEY_WARNING}. This check reads that table, not the environment's secret, so \
             changing the secret does not change its answer. To use these rows under {b}, pass \
             --accept-key-change and set this environment's DATA_ENCRYPTION_KEY secret to {b}'s \
             key (from where the keys are kept) before the app uses them; otherwise restore a \
             backup taken under {t}. Nothing was done.",
            self.backup.fingerprint,
            self.table,
            self.target.fingerprint,
            b = self.backup.key_id,
            t = self.target.key_id,
        )
    }
}

impl std::error::Error for KeyRefusal {}

struct PlanView<'a> {
    repository: String,
    source: &'a Source,
    target: &'a Environment,
    mode: Mode,
    existing: &'a [(String, String)],
    survey: &'a repair::Survey,
    safety_backup: bool,
    fast_local: bool,
    key_check: &'a KeyCheck,
    cmds: &'a Commands,
    new: Option<&'a NewDatabase>,
    /// See [`migrations_dir_for`].
    migrations_dir: &'a Path,
    pending_after: &'a PendingAfter,
    stuck: &'a [StuckTrigger],
    /// See `plan`: a backup of chosen tables that records no counters.
    uncounted: bool,
}

fn print_plan(p: &PlanView<'_>) {
    let mut out = String::from("Restore plan\n");
    let _ = writeln!(out, "  {}", p.repository);
    plan_source(&mut out, p);
    plan_target(&mut out, p);
    plan_load(&mut out, p);
    plan_repairs(&mut out, p);
    crate::say!("{out}");
}

/// The plan's line on the backup's last verification, as its manifest
/// records it; a backup that failed it is restored with a warning.
fn plan_verification(out: &mut String, s: &Source, m: &Manifest) {
    let Some(v) = &m.verification else {
        let _ = writeln!(
            out,
            "  verified     never (`cargo xtask verify {}` checks it first)",
            d1_core::wording::shell_word(&s.file.display().to_string())
        );
        return;
    };
    let at = v.verified_at.format("%Y-%m-%d %H:%M UTC");
    let Some(failed) = failed_checks(m) else {
        let _ = writeln!(out, "  verified     GOOD, {at}");
        return;
    };
    let _ = writeln!(out, "  verified     BAD, {at}: failed {failed}");
    warn_if_failed_verification(&s.file, m);
}

/// The names of the checks the backup's last verification failed, as its
/// manifest records them, shown as one list; `None` when it passed or
/// never ran. By name only: what they found is the file's, not a message's.
fn failed_checks(m: &Manifest) -> Option<String> {
    let v = m.verification.as_ref().filter(|v| !v.is_good())?;
    let failed: Vec<&str> = v
        .failed
        .iter()
        .map(|f| f.split(':').next().unwrap_or_default().trim())
        .collect();
    Some(d1_core::names::shown(&failed.join(", ")).to_string())
}

/// The warning (even with `-q`) that a backup about to be loaded, by
/// `restore` or as a rehearsal's prod, failed its last verification.
pub(crate) fn warn_if_failed_verification(file: &Path, m: &Manifest) {
    if let Some(failed) = failed_checks(m) {
        crate::warn!(
            "{} failed its verification ({failed}): a restore of it may not give back the \
             database it was taken from; `cargo xtask list` names the good backups",
            file.display(),
        );
    }
}

/// The plan's lines on the backup and its manifest.
fn plan_source(out: &mut String, p: &PlanView<'_>) {
    let s = p.source;
    let _ = writeln!(out, "  source       {}", s.file.display());
    match &s.manifest {
        Some(m) => {
            // Counted as the backup and its verify count them.
            let (tables, rows) = m.checked_rows();
            let _ = writeln!(
                out,
                "  manifest     {} backup of {} ({}), taken {}, {}, {}; sha256 and size match",
                m.mode,
                m.database.name,
                m.environment,
                m.created_at.format("%Y-%m-%d %H:%M UTC"),
                d1_core::wording::count(tables, "table"),
                d1_core::wording::count(rows, "row")
            );
            // `latest` after the damage may be the damaged state, taken by
            // hand with a reason that says so.
            if let Some(reason) = m.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                let _ = writeln!(out, "  reason       {}", d1_core::names::shown(reason));
            }
            if p.target.is_production()
                && !m.database.uuid.eq_ignore_ascii_case(&p.target.database_id)
            {
                let _ = writeln!(
                    out,
                    "  replaced     a backup of {}'s REPLACED database (id {:?}), not of the one now \
                     configured (id {}): --previous-database-id says production's database was \
                     deleted and created again under this name after this backup",
                    m.database.name, m.database.uuid, p.target.database_id
                );
            }
            plan_verification(out, s, m);
            if let Some(sequences) = m.sequences.as_ref().filter(|s| !s.is_empty()) {
                let listed: Vec<String> = sequences
                    .iter()
                    .map(|(table, seq)| format!("{} {seq}", d1_core::names::shown(table)))
                    .collect();
                let _ = writeln!(
                    out,
                    "  counters     {} (AUTOINCREMENT, as the manifest records them; set after \
                     the rows, never below what they make them)",
                    listed.join(", ")
                );
            } else if p.uncounted {
                // A backup of chosen tables written before their counters
                // were recorded: the export leaves `sqlite_sequence` out.
                let _ = writeln!(
                    out,
                    "  counters     not recorded (an earlier version of this tool took this \
                     backup of chosen tables before it recorded their AUTOINCREMENT counters): \
                     each is set from the rows, so an id deleted before the backup, above the \
                     highest kept, may be given again to a new row"
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "  manifest     none (--no-manifest): skipped the sha256 and size check, the source-environment \
                 check{}, and the virtual-table records; row counts are checked against the dump itself",
                if s.environment.is_some() {
                    " (you stated the source environment)"
                } else {
                    ""
                }
            );
        }
    }
}

/// The plan's lines on the target, the mode and what goes first.
fn plan_target(out: &mut String, p: &PlanView<'_>) {
    let t = p.target;
    let _ = writeln!(
        out,
        "  target       {} -> {} ({} D1{})",
        t.name,
        t.database_name,
        t.location,
        if p.new.is_some() {
            ", a new database; no database of that name exists in the account"
        } else {
            ""
        }
    );
    if let Some(n) = p.new {
        let _ = writeln!(
            out,
            "  first        {} (in the account {}; wrangler runs with a private \
             configuration, removed when the restore ends)",
            n.cmds
                .d1_create(&t.database_name, n.location.as_deref())
                .without_config(),
            t.account_id
                .as_deref()
                .unwrap_or("of CLOUDFLARE_ACCOUNT_ID or `wrangler login`")
        );
    }
    let _ = writeln!(out, "  mode         {}", p.mode.name());
    if p.mode == Mode::Replace && !p.existing.is_empty() {
        let names: Vec<String> = p.existing.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "  drops        {}",
            crate::out::listed(&names, "object")
        );
        // Tables the backup does not have are not replaced: their rows are
        // gone afterwards (a backup from before the migration that made them).
        let lost = lost_tables(p.existing, p.survey, p.source);
        if !lost.is_empty() {
            let it = d1_core::wording::them(lost.len());
            let why = match p.source.manifest.as_ref().filter(|m| !m.tables.is_empty()) {
                Some(m) => format!(
                    "it holds chosen tables only ({})",
                    d1_core::names::shown(&m.tables.join(", "))
                ),
                None => format!("taken before the migration that made {it}?"),
            };
            let _ = writeln!(
                out,
                "  LOSES        {} and every row in {it}: the backup does not have {it} ({why}); \
                 afterwards the database has the backup's schema, and `cargo xtask migrate` \
                 lists what is pending again",
                crate::out::listed(
                    &lost
                        .iter()
                        .map(|t| format!("table {}", d1_core::names::shown(t)))
                        .collect::<Vec<_>>(),
                    "table"
                ),
            );
        }
    }
    plan_migrations(out, p);
}

/// The plan's line on `--clean`'s `migrations apply`. A new database's
/// private configuration names the migrations directory by its absolute
/// path: the operator is shown which one.
fn plan_migrations(out: &mut String, p: &PlanView<'_>) {
    if p.mode != Mode::Clean {
        return;
    }
    let apply = p.cmds.migrations_apply(p.target);
    let _ = match p.new {
        Some(_) => writeln!(
            out,
            "  first        {} (the migrations in {}, of the database the backup was taken \
             from)",
            apply.without_config(),
            p.migrations_dir.display()
        ),
        None => writeln!(out, "  first        {apply}"),
    };
}

/// The plan's lines on the safety backup, the key and the load.
fn plan_load(out: &mut String, p: &PlanView<'_>) {
    let t = p.target;
    let _ = writeln!(
        out,
        "  safety       {}",
        if p.safety_backup {
            format!(
                "a full backup of {} is taken first; the restore stops if it fails",
                t.database_name
            )
        } else if p.new.is_some() {
            "none: the database is new, so there is nothing on it to lose".to_owned()
        } else {
            "none: the target is an empty local database".to_owned()
        }
    );
    plan_since(out, p);
    if t.location == crate::config::environment::Location::Remote && p.new.is_none() {
        let _ = writeln!(
            out,
            "  downtime     D1 answers no other query on {} while {}the import runs, which \
             takes it offline: the app's requests to it fail until the restore ends",
            t.database_name,
            match p.safety_backup {
                true => "the safety backup exports it and ",
                false => "",
            }
        );
    }
    let _ = writeln!(
        out,
        "  key          {}",
        match p.key_check {
            KeyCheck::Same(f) => format!("backup and target both use {f}"),
            KeyCheck::TargetHasNone =>
                "the target records no key yet; nothing to compare".to_owned(),
            KeyCheck::BackupHasNone => "the backup records no key; nothing to compare".to_owned(),
            KeyCheck::AcceptedChange { backup, target, .. } =>
                format!("CHANGES from {target} to {backup} (--accept-key-change): {KEY_WARNING}"),
        }
    );
    let _ = writeln!(
        out,
        "  loads        the dump's {}, repaired, {}",
        d1_core::wording::count(p.survey.statements, "statement"),
        if p.fast_local {
            "straight into the local D1's SQLite file in one transaction (refused while another process has it open)"
        } else {
            "as one file through `wrangler d1 execute --file`, all or nothing"
        }
    );
    if let Some(then) = pending_again(p.pending_after, p.target) {
        let _ = writeln!(out, "  then         {then}");
    }
    for stuck in p.stuck {
        let _ = writeln!(out, "  BREAKS       {}", stuck_trigger(stuck, p.source));
    }
}

/// The target's tables that `--replace` drops and the backup does not
/// make again: their rows are gone afterwards.
fn lost_tables<'a>(
    existing: &'a [(String, String)],
    survey: &repair::Survey,
    source: &Source,
) -> Vec<&'a str> {
    existing
        .iter()
        .filter(|(kind, name)| {
            kind == "table"
                && !name.starts_with("sqlite_")
                && !survey.creates_table(name)
                // A virtual table and its shadow tables are remade.
                && !source
                    .virtual_tables
                    .iter()
                    .any(|vt| *name == vt.name || name.starts_with(&format!("{}_", vt.name)))
        })
        .map(|(_, name)| name.as_str())
        .collect()
}

/// A trigger the restore leaves unable to run, and why: said in the plan
/// and again after the restore.
fn stuck_trigger(stuck: &StuckTrigger, source: &Source) -> String {
    if stuck.index_comes_back_empty {
        return format!(
            "{stuck}, until the app indexes every row again (no backup carries a contentless \
             index)"
        );
    }
    let chosen = source
        .manifest
        .as_ref()
        .is_some_and(|m| !m.tables.is_empty());
    format!(
        "{stuck}; the backup brings it back without what it names{}",
        match chosen {
            true =>
                " (a backup of chosen tables holds their triggers, not the tables those write to)",
            false => ", as the database it was taken from had it",
        }
    )
}

/// The migrations pending once the backup is loaded.
#[derive(Debug, Default)]
struct PendingAfter {
    names: Vec<String>,
    /// A schema-only backup: the target gets its tables, `d1_migrations`
    /// among them, but no rows, so every migration reads as pending
    /// although the schema already has what they make.
    none_recorded: bool,
    /// A backup of chosen tables without `d1_migrations`, replacing a
    /// target that had one: it is dropped, and every migration reads as
    /// pending.
    record_dropped: bool,
    /// Of `names`, those `migrate` took this backup just before applying
    /// (its reason, `pre-migration: …`): a restore of it is most likely
    /// undoing them, and `migrate` would apply them again as they are.
    undone: Vec<String>,
}

/// The migrations pending once the backup is loaded: the target gets the
/// backup's `d1_migrations`, so those in `dir` that it had not applied
/// are pending; after a schema-only backup, all of them. None for
/// `--clean`, which applies today's migrations first (and refuses a backup
/// taken at others), or without a manifest, or for chosen tables without
/// `d1_migrations` (the target keeps its own rows), unless the target has
/// none afterwards (`no_migrations_table`: `--replace` drops it, or an
/// empty database never had it): then all of them.
fn pending_after(
    source: &Source,
    mode: Mode,
    dir: &Path,
    no_migrations_table: bool,
) -> PendingAfter {
    let Some(m) = source.manifest.as_ref().filter(|_| mode != Mode::Clean) else {
        return PendingAfter::default();
    };
    let none_recorded = m.mode == "schema-only"
        && (m.tables.is_empty()
            || m.tables
                .iter()
                .any(|t| t == d1_core::statement::MIGRATIONS_TABLE));
    let record_dropped = !none_recorded
        && m.applied_migrations().is_none()
        && !m.tables.is_empty()
        && no_migrations_table;
    let applied: &[String] = match (none_recorded || record_dropped, m.applied_migrations()) {
        (true, _) => &[],
        (false, Some(applied)) => applied,
        (false, None) => return PendingAfter::default(),
    };
    match crate::steps::migrations::migration_files(dir) {
        Ok(files) => {
            let names = crate::steps::migrations::pending(&files, applied);
            let undone = crate::steps::status::migrations_taken_before(m.reason.as_deref())
                .into_iter()
                .filter(|n| names.contains(n))
                .collect();
            PendingAfter {
                names,
                none_recorded,
                record_dropped,
                undone,
            }
        }
        Err(e) => {
            crate::detail!("which migrations are pending after the restore is not known: {e:#}");
            PendingAfter::default()
        }
    }
}

/// Says which migrations the restore leaves pending, if any.
fn pending_again(pending: &PendingAfter, target: &Environment) -> Option<String> {
    let names = &pending.names;
    if names.is_empty() {
        return None;
    }
    let them = d1_core::wording::them(names.len());
    let env = if target.is_new { "ENV" } else { &target.name };
    if pending.record_dropped {
        return Some(format!(
            "no migration recorded as applied: the target has no d1_migrations afterwards \
             (--replace drops it, or it never had one), and this backup of chosen tables does not \
             carry it, so all {} ({}) read as pending. `cargo \
             xtask migrate {env}` would apply {them} onto the restored tables, and fail; restore \
             a full backup to get the rest of the database back",
            names.len(),
            names.join(", ")
        ));
    }
    if pending.none_recorded {
        return Some(format!(
            "no migration recorded as applied: a schema-only backup carries no d1_migrations \
             rows, so all {} ({}) read as pending although the schema was restored. `cargo \
             xtask migrate {env}` would apply {them} again onto tables that exist, and fail; \
             restore a full backup, or record in d1_migrations the ones the schema has",
            names.len(),
            names.join(", ")
        ));
    }
    if !pending.undone.is_empty() {
        let undone = &pending.undone;
        let it = d1_core::wording::them(undone.len());
        let (they, are) = d1_core::wording::they_are(undone.len());
        return Some(format!(
            "{} pending, which the backup predates: {}. This backup was taken by `migrate` just \
             before applying {it} ({}): if {they} broke the database, fix or remove {it} in the \
             migrations directory first, as `cargo xtask migrate {env}` would apply {it} again \
             as {they} {are}",
            d1_core::wording::count(names.len(), "migration"),
            names.join(", "),
            undone.join(", "),
        ));
    }
    let how = match target.is_new {
        true => format!(
            "`cargo xtask migrate ENV` applies {them} once an environment's binding names it"
        ),
        false => format!("`cargo xtask migrate {}` applies {them}", target.name),
    };
    Some(format!(
        "{} pending, which the backup predates: {} ({how})",
        d1_core::wording::count(names.len(), "migration"),
        names.join(", "),
    ))
}

/// The plan's line on what a replace costs: whatever was written to the
/// target after the backup was taken is not in it, so it leaves the
/// target (the safety backup keeps it); remotely, Time Travel can go back
/// to a moment instead, keeping the freshest state. Said of a backup of
/// the target itself.
fn plan_since(out: &mut String, p: &PlanView<'_>) {
    let Some(m) = p.source.manifest.as_ref() else {
        return;
    };
    let t = p.target;
    // Only a backup of the target itself: one of another database replaces
    // everything, as the plan's other lines say.
    if !p.safety_backup || p.mode != Mode::Replace || !t.records(m) {
        return;
    }
    let now = chrono::Utc::now();
    // Dated after the clock, it was taken at an unknown time: "0s ago"
    // would read as nothing written being lost.
    let taken = match d1_core::wording::dated_ahead(m.created_at, now) {
        Some(ahead) => format!("the backup was taken (it is {ahead}: when is unknown)"),
        None => format!(
            "{} ({} ago, when the backup was taken)",
            m.created_at.format("%Y-%m-%d %H:%M UTC"),
            d1_core::wording::age((now - m.created_at).num_seconds())
        ),
    };
    let _ = write!(
        out,
        "  since        anything written to {} after {taken} is not in it and leaves {}; only the \
         safety backup keeps it",
        t.database_name, t.database_name
    );
    if t.location == crate::config::environment::Location::Remote {
        let _ = write!(
            out,
            ". For the freshest state, D1 Time Travel goes back to a moment instead: \
             `cargo xtask time-travel restore {} --at TIME --dry-run`, TIME (RFC 3339) a moment \
             before the damage",
            t.name
        );
    }
    let _ = writeln!(out);
}

/// The plan's lines on the repairs the dump needs.
fn plan_repairs(out: &mut String, p: &PlanView<'_>) {
    let mut repairs: Vec<String> = p.survey.repairs.iter().map(|r| r.to_string()).collect();
    for (line, table, bytes) in &p.survey.oversized {
        repairs.push(format!(
            "splits the {bytes}-byte INSERT into {table} on line {line} (over D1's 100 KB limit)"
        ));
    }
    if p.new.is_some() {
        let _ = writeln!(
            out,
            "  then         the binding snippet with the new id; the configuration is not edited, \
             and a failed restore leaves the new database in place"
        );
    }
    if repairs.is_empty() {
        let _ = writeln!(out, "  repairs      none needed");
    } else {
        for (i, r) in repairs.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}{r}",
                if i == 0 {
                    "repairs      "
                } else {
                    "             "
                }
            );
        }
    }
}

/// The binding to add to the configuration to use the new database, in
/// the configuration's format, with the binding and migrations directory of
/// the database the backup was taken from (when the configuration has it).
/// It is what the operator asked for, so `-q` shows it too; with `--json`
/// the document carries the id and this goes to stderr.
fn print_binding(
    project: &Project,
    envs: &Environments,
    source: &Source,
    target: &Environment,
    json: bool,
) -> Result<()> {
    let from = source_environment(envs, source);
    let snippet = new_database::binding_snippet(
        crate::config::environment::Format::of(&project.config)?,
        from.map_or("DB", |e| e.binding.as_str()),
        &target.database_name,
        &target.database_id,
        from.map_or("migrations", |e| e.migrations_dir.as_str()),
    );
    let place = match from {
        Some(e) => format!(
            ". To move {} onto it, put it in place of {}'s entry{}, then deploy the app so \
             that it reads the new binding",
            e.name,
            e.database_name,
            match &e.wrangler_env {
                Some(w) => format!(" under [env.{w}] (there, [[env.{w}.d1_databases]])"),
                None => " at the top level".to_owned(),
            }
        ),
        None => " (under [env.NAME] for an environment)".to_owned(),
    };
    let text = format!(
        "To use {}, add its binding to {}; the configuration was not changed{place}:\n{snippet}",
        target.database_name,
        file_name(&project.config)
    );
    if json {
        crate::say!("{text}");
    } else {
        crate::data!("{text}");
    }
    Ok(())
}

/// The fast local path: straight into the local D1's SQLite file.
fn load_local(
    file: &Path,
    source: &Source,
    survey: &repair::Survey,
    options: &repair::Options,
    drops: &[String],
) -> Result<()> {
    let mut loader = local_d1::Loader::open(file)?;
    for sql in drops {
        loader.tool_statement(sql)?;
    }
    loader.load(source.open_for_load()?, survey, options)?;
    let ran = loader.commit()?;
    crate::say!(
        "{}",
        loaded_line(survey.statements, ran, &file.display().to_string())
    );
    Ok(())
}

/// The end of a local load, counting as the plan and the manifest do: the
/// dump's statements, and the number run only where it differs (the
/// repair's own, the drops of `--replace`, less the pragmas it leaves out).
fn loaded_line(dumps: u64, ran: u64, into: &str) -> String {
    let count = |n| d1_core::wording::count(n, "statement");
    match ran == dumps {
        true => format!("Loaded the dump's {} into {into}.", count(dumps)),
        false => format!(
            "Loaded the dump's {} into {into} ({ran} run, with the repair's own and the drops).",
            count(dumps)
        ),
    }
}

/// One repaired file, run by `wrangler d1 execute --file`, which D1 applies
/// all-or-nothing.
#[allow(clippy::too_many_arguments)]
fn load_with_wrangler(
    wrangler: &Wrangler,
    cmds: &Commands,
    target: &Environment,
    source: &Source,
    survey: &repair::Survey,
    options: &repair::Options,
    drops: &[String],
) -> Result<()> {
    // wrangler reads the file by name, more than once: it lives in a
    // directory only this user can enter, so nobody can swap it between
    // the SQL gate's preflight and the import.
    let private = crate::edge::wrangler::PrivateDir::create("restore")?;
    let partial = private.path().join(format!("restore-{}.sql", target.name));
    let (_temp, file) = TempFile::create_open(partial.clone())?;
    let mut writer = FileSink(BufWriter::new(file));
    // The drops must be deferred too, and come before the repair's own lines.
    writer.statement("PRAGMA defer_foreign_keys=TRUE;")?;
    for sql in drops {
        writer.statement(sql)?;
    }
    repair::write(source.open_for_load()?, survey, options, &mut writer)?;
    writer.0.flush()?;
    drop(writer);
    wrangler.run(&cmds.execute_file(target, &partial))
}

/// `DROP` statements for `--replace`: triggers and views, then tables with
/// every referencing table before the table it references, because D1
/// enforces foreign keys and SQLite cannot check a key whose table is gone.
fn drop_statements(existing: &[(String, String)], catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["trigger", "view"] {
        for (k, name) in existing {
            if k == kind {
                out.push(format!(
                    "DROP {} IF EXISTS {};",
                    kind.to_uppercase(),
                    quote_ident(name)
                ));
            }
        }
    }
    let tables: Vec<&str> = existing
        .iter()
        .filter(|(k, _)| k == "table")
        .map(|(_, n)| n.as_str())
        .collect();
    for name in children_first(&tables, &catalog.create_statements()) {
        out.push(format!("DROP TABLE IF EXISTS {};", quote_ident(&name)));
    }
    out
}

/// Orders tables so that each comes before every table it references,
/// reading the references with SQLite from the tables' DDL. Cycles are
/// broken in the given order.
fn children_first(tables: &[&str], ddl: &BTreeMap<String, String>) -> Vec<String> {
    let mut references: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    // The DDL is the target's, read back from it: it runs under the gate.
    if let Ok(gate) = d1_core::gate::Gate::memory() {
        for t in tables {
            if let Some(sql) = ddl
                .get(*t)
                .filter(|s| !s.to_ascii_uppercase().contains("VIRTUAL TABLE"))
            {
                let _ = gate.run(sql);
            }
        }
        let db = gate.db();
        for t in tables {
            let refs = db
                .prepare(&format!(
                    "PRAGMA foreign_key_list(\"{}\")",
                    t.replace('"', "\"\"")
                ))
                .and_then(|mut s| {
                    s.query_map([], |r| r.get::<_, String>(2))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default();
            references.insert(t, refs);
        }
    }
    // A table may go once no remaining table references it.
    let mut remaining: Vec<&str> = tables.to_vec();
    let mut order = Vec::new();
    while !remaining.is_empty() {
        let referenced_by_others = |t: &str| {
            remaining.iter().any(|other| {
                *other != t
                    && references
                        .get(other)
                        .is_some_and(|r| r.iter().any(|x| x == t))
            })
        };
        let pick = remaining
            .iter()
            .position(|t| !referenced_by_others(t))
            .unwrap_or(0);
        order.push(remaining.remove(pick).to_owned());
    }
    order
}

struct FileSink(BufWriter<File>);

impl repair::Sink for FileSink {
    fn statement(&mut self, sql: &str) -> Result<()> {
        crate::edge::signals::check()?;
        self.0.write_all(sql.as_bytes())?;
        self.0.write_all(b"\n")?;
        Ok(())
    }
}

/// A content check's outcome: `None` when the backup records no digests,
/// else the number of tables equal, or what differs.
type Content = Option<Result<usize, Vec<String>>>;

/// The restored tables' content digests against the backup's. A local
/// target is read from its file; a remote one is exported again and loaded,
/// as verify loads a backup, and the rows of each table in that export are
/// returned too.
#[allow(clippy::too_many_arguments)]
fn check_content(
    project: &Project,
    wrangler: &Wrangler,
    cmds: &Commands,
    target: &Environment,
    source: &Source,
    mode: Mode,
    local_file: Option<&Path>,
) -> Result<(Content, Option<BTreeMap<String, u64>>)> {
    let Some(expected) = content_checked(source, mode) else {
        return Ok((None, None));
    };
    if expected.is_empty() {
        // Nothing recorded to compare with is not a content check passed.
        return Ok((None, None));
    }
    let mut exported = None;
    let mut expected = expected;
    let found = match local_file {
        Some(file) => {
            let db = gate::Gate::reading(file)?;
            d1_core::digest::tables(db.db(), expected.keys().map(String::as_str))?
        }
        None => {
            crate::say!(
                "Exporting {} again to compare its content with the backup's.",
                target.database_name
            );
            // wrangler writes by name: into a directory only this user can enter.
            let private = crate::edge::wrangler::PrivateDir::create("check")?;
            let temp = TempFile::create(private.path().join("export.sql"))?;
            let tables: Vec<String> = expected.keys().cloned().collect();
            wrangler.run(&cmds.export(target, temp.path(), ExportMode::Full, &tables))?;
            let settings = project.settings()?;
            let migrations_dir = project.config_dir.join(&target.migrations_dir);
            let ctx = crate::steps::verify::Workspace {
                migrations_dir: &migrations_dir,
                app: &settings.app,
                scratch_dir: &project.backup_dir,
            };
            let export = stored::Source::for_file(temp.path(), None, &project.age())?;
            let report = crate::steps::verify::verify(temp.path(), &export, None, &ctx)?;
            uncomparable_through_d1s_export(source, &mut expected);
            // The export holds every row of the tables it names: one INSERT
            // each, as wrangler writes them.
            let rows = dump::summarize(export.open()?, &BTreeMap::new(), None)?.rows;
            // A table the export lacks is not counted here: the count
            // query, or the content check, says it is missing.
            exported = Some(
                tables
                    .into_iter()
                    .filter_map(|t| rows.get(&t).map(|n| (t, *n)))
                    .collect(),
            );
            report.content
        }
    };
    if expected.is_empty() {
        // Nothing left to compare is not a content check passed.
        return Ok((None, exported));
    }
    let differ = d1_core::digest::differences(&expected, &found);
    let content = Some(if differ.is_empty() {
        Ok(expected.len())
    } else {
        Err(differ)
    });
    Ok((content, exported))
}

/// Takes out of `expected` the tables whose values a D1 export writes
/// otherwise than the backup holds them (`Manifest::exact_values`), and
/// says so: their rows were counted, their content cannot be compared
/// through D1's export.
fn uncomparable_through_d1s_export(source: &Source, expected: &mut BTreeMap<String, String>) {
    let Some(exact) = source
        .manifest
        .as_ref()
        .and_then(|m| m.exact_values.as_ref())
    else {
        return;
    };
    let tables: Vec<String> = exact
        .iter()
        .filter(|(t, _)| expected.remove(*t).is_some())
        .map(|(t, n)| {
            format!(
                "{} ({})",
                t.escape_debug(),
                d1_core::wording::count(*n as usize, "value")
            )
        })
        .collect();
    if !tables.is_empty() {
        crate::warn!(
            "content of {} not compared: the backup holds values exactly that D1's export \
             writes otherwise (integers beyond 2^53 and the like, see the README's \"Local \
             backups without wrangler\"); their rows were counted",
            tables.join(", ")
        );
    }
}

/// The content digests a restore is checked against: the manifest's, for
/// the tables whose rows are checked; `None` when it records none.
fn content_checked(source: &Source, mode: Mode) -> Option<BTreeMap<String, String>> {
    let recorded = source.manifest.as_ref()?.content.as_ref()?;
    Some(
        recorded
            .iter()
            .filter(|(t, _)| statement::rows_are_checked(t))
            .filter(|(t, _)| !(mode == Mode::Clean && t.as_str() == statement::MIGRATIONS_TABLE))
            .map(|(t, d)| (t.clone(), d.clone()))
            .collect(),
    )
}

/// The tables whose rows a restore counts, and how many each should hold.
fn counted(source: &Source, mode: Mode) -> Vec<(&String, &u64)> {
    source
        .rows
        .iter()
        .filter(|(t, _)| !(mode == Mode::Clean && t.as_str() == statement::MIGRATIONS_TABLE))
        .filter(|(t, _)| statement::rows_are_checked(t))
        .collect()
}

/// A table, the rows the source has, and the rows found on the target.
pub type TableCount = (String, u64, u64);

/// Row counts on the target, compared with the source's; the second list
/// names the tables that differ. A local target the fast path loaded is
/// counted in its file, read-only, without starting wrangler and workerd
/// (about 6 s): the file is the one wrangler's local D1 reads (the tests
/// read the restored rows back through wrangler). A remote target whose
/// content check exported every counted table (`exported`) is counted in
/// that export; otherwise a read-only query counts it.
fn check_rows(
    (wrangler, cmds): (&Wrangler, &Commands),
    target: &Environment,
    source: &Source,
    mode: Mode,
    (local_file, exported): (Option<&Path>, Option<BTreeMap<String, u64>>),
) -> Result<(Vec<TableCount>, Vec<String>)> {
    let expected = counted(source, mode);
    if expected.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let covered = |e: &BTreeMap<String, u64>| expected.iter().all(|(t, _)| e.contains_key(*t));
    if let Some(exported) = exported.filter(covered) {
        return compare_counts(&expected, |_, table| Ok(exported[table]));
    }
    let reader = match local_file {
        Some(file) => TargetReader::File(file.to_path_buf()),
        None => TargetReader::Wrangler(wrangler, cmds, target),
    };
    let tables: Vec<&str> = expected.iter().map(|(t, _)| t.as_str()).collect();
    let counts = reader.row_counts("count the restored rows (read-only)", &tables)?;
    compare_counts(&expected, |i, _| Ok(counts[i]))
}

/// Each counted table's expected rows against `found(i, table)`; the
/// second list names the tables that differ.
fn compare_counts(
    expected: &[(&String, &u64)],
    found: impl Fn(usize, &str) -> Result<u64>,
) -> Result<(Vec<TableCount>, Vec<String>)> {
    let mut counts = Vec::new();
    let mut wrong = Vec::new();
    for (i, (table, want)) in expected.iter().enumerate() {
        let got = found(i, table)?;
        if got != **want {
            wrong.push(format!(
                "{}: expected {want}, found {got}",
                d1_core::names::shown(table)
            ));
        }
        counts.push(((*table).clone(), **want, got));
    }
    Ok((counts, wrong))
}

/// The runbook's after-restore checklist: the checks of what the app
/// declares in `backups.toml` (its key, its audit chain, its endpoints),
/// and the row counts.
fn print_checklist(
    app: &d1_core::app::AppRules,
    key: &KeyCheck,
    counts: &[TableCount],
    has_manifest: bool,
) {
    crate::say!("After-restore checklist (the runbook's; [x] = checked automatically):");
    match key {
        KeyCheck::Same(f) => {
            crate::say!("  [x] encryption key: the target's key in force is the backup's ({f})")
        }
        KeyCheck::AcceptedChange { backup_key_id, .. } => crate::say!(
            "  [!] encryption key: CHANGED by --accept-key-change; {KEY_WARNING}, unless you set \
             this environment's DATA_ENCRYPTION_KEY secret to {backup_key_id}'s key (from where \
             the keys are kept) before the app uses these rows"
        ),
        _ => match &app.encryption_key {
            None => {}
            // A backup of chosen tables may not hold the key's table.
            Some(rule) if counts.iter().any(|(table, _, _)| *table == rule.table) => crate::say!(
                "  [ ] encryption key: confirm DATA_ENCRYPTION_KEY in this environment is the one in \
                 force when the backup was taken (its fingerprint is in the restored {} table)",
                d1_core::names::shown(&rule.table)
            ),
            Some(rule) => crate::say!(
                "  [ ] encryption key: confirm DATA_ENCRYPTION_KEY in this environment is the one in \
                 force when the backup was taken (the backup does not hold {}, so nothing here \
                 records it)",
                d1_core::names::shown(&rule.table)
            ),
        },
    }
    let total: u64 = counts.iter().map(|(_, _, n)| n).sum();
    if has_manifest {
        crate::say!(
            "  [x] row counts: {}, {}, equal to the backup's manifest",
            d1_core::wording::count(counts.len(), "table"),
            d1_core::wording::count(total, "row")
        );
    } else {
        crate::say!(
            "  [ ] row counts: {}, {}; no manifest, so compared with the dump's INSERTs only",
            d1_core::wording::count(counts.len(), "table"),
            d1_core::wording::count(total, "row")
        );
    }
    if let Some(drill) = &app.drill {
        if app.audit_chain.is_some() {
            crate::say!("  [ ] audit chain: GET {} as a DevOps account", drill.audit);
        }
        crate::say!("  [ ] sign-in: sign in as a known account");
        crate::say!("  [ ] reports: run a report by hand");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str) -> KeyFingerprint {
        KeyFingerprint {
            key_id: "k".into(),
            fingerprint: f.into(),
        }
    }

    #[test]
    fn a_new_database_is_told_which_environment_to_migrate_it_through() {
        let new = Environment::new_database("db_x", None);
        assert_eq!(pending_again(&PendingAfter::default(), &new), None);
        let one = PendingAfter {
            names: vec!["0005_a.sql".to_owned()],
            ..PendingAfter::default()
        };
        assert_eq!(
            pending_again(&one, &new).unwrap(),
            "1 migration pending, which the backup predates: 0005_a.sql (`cargo xtask migrate \
             ENV` applies it once an environment's binding names it)"
        );
    }

    #[test]
    fn a_different_key_is_refused_with_the_runbooks_warning() {
        let err = compare_keys(
            Some(&key("sha256:a")),
            Some(&key("sha256:b")),
            false,
            "keys",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("will not decrypt"), "{err}");
        assert!(err.contains("--accept-key-change"), "{err}");
        assert_eq!(
            compare_keys(Some(&key("sha256:a")), Some(&key("sha256:b")), true, "keys").unwrap(),
            KeyCheck::AcceptedChange {
                backup: "sha256:a".into(),
                target: "sha256:b".into(),
                backup_key_id: key("sha256:a").key_id,
            }
        );
        assert_eq!(
            compare_keys(
                Some(&key("sha256:a")),
                Some(&key("sha256:a")),
                false,
                "keys"
            )
            .unwrap(),
            KeyCheck::Same("sha256:a".into())
        );
        assert_eq!(
            compare_keys(Some(&key("x")), None, false, "keys").unwrap(),
            KeyCheck::TargetHasNone
        );
    }

    #[test]
    fn replace_drops_triggers_and_views_then_referencing_tables_first() {
        let existing: Vec<(String, String)> = [
            ("table", "keys"),
            ("table", "accounts"),
            ("trigger", "t"),
            ("table", "members"),
            ("view", "v"),
            ("table", "solo"),
        ]
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
        let ddl = BTreeMap::from([
            (
                "keys".to_owned(),
                "CREATE TABLE keys(id TEXT PRIMARY KEY)".to_owned(),
            ),
            (
                "accounts".to_owned(),
                "CREATE TABLE accounts(id INTEGER PRIMARY KEY, k TEXT REFERENCES keys(id))"
                    .to_owned(),
            ),
            (
                "members".to_owned(),
                "CREATE TABLE members(a INTEGER REFERENCES accounts(id))".to_owned(),
            ),
            ("solo".to_owned(), "CREATE TABLE solo(x)".to_owned()),
        ]);
        let tables = ["keys", "accounts", "members", "solo"];
        assert_eq!(
            children_first(&tables, &ddl),
            ["members", "accounts", "keys", "solo"]
        );
        let drops = drop_statements(&existing, &Catalog::default());
        assert_eq!(drops[0], "DROP TRIGGER IF EXISTS \"t\";");
        assert_eq!(drops[1], "DROP VIEW IF EXISTS \"v\";");
        assert_eq!(drops.len(), 6);
    }
}
