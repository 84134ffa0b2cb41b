//! Taking a backup: export a D1 database to a private, git-ignored file
//! with a manifest beside it. The `backup` command takes one per database;
//! `restore`, `migrate`, `deploy`, `with-backup` and `time-travel` take one
//! first (the safety or pre-migration backup), through [`run`].
//!
//! The order of work is the safety argument:
//! 1. every refusal that needs no database (environment, git) comes first,
//!    before anything is written;
//! 2. the schema is read (read-only) to decide the export's scope, so that
//!    FTS5 tables do not make wrangler refuse the export; a remote
//!    database's Time Travel bookmark is read at the same time (it need only
//!    come before the export), unless this is a dry run;
//! 3. the plan is printed, and `--dry-run` stops there;
//! 4. under the backup lock, wrangler writes into a private temporary file,
//!    which is counted, hashed and only then renamed into place without ever
//!    replacing an existing backup; the manifest is written last.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use xshell::Shell;

use crate::config::environment::{Environment, Environments, Location};
use crate::config::project::Project;
use crate::edge::arriving::{Arrived, Arriving};
use crate::edge::fsutil::OnPath as _;
use crate::edge::fsutil::{self, TempFile};
use crate::edge::git::{self, Ignored};
use crate::edge::lock::{BackupLock, LOCK_FILE};
use crate::edge::manifest_file::ManifestFile;
use crate::edge::reader::DatabaseReader;
use crate::edge::stored::{self, Format, Sealer, Source};
use crate::edge::wrangler::{Commands, ExportMode, Invocation, Wrangler};
use d1_core::catalog::{CATALOG_SQL, Catalog, ExportScope, VirtualContent};
use d1_core::dump;
use d1_core::manifest::{self, Manifest};
use d1_core::names::file_name;
use d1_core::repair;

#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// Environment to back up: prod, staging or local (or a wrangler env name).
    pub env: String,
    /// Export the schema only (wrangler --no-data).
    #[arg(long, conflicts_with = "data_only")]
    pub schema_only: bool,
    /// Export the rows only (wrangler --no-schema).
    #[arg(long)]
    pub data_only: bool,
    /// Export only this table, with its indexes and triggers; repeatable.
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Why this backup is taken (recorded in the manifest).
    #[arg(long, value_parser = parse_reason)]
    pub reason: Option<String>,
    /// Store it zstd-compressed (`.sql.zst`), as `compress = true` in
    /// backups.toml does for every backup of the environment.
    #[arg(long)]
    pub compress: bool,
    /// Encrypt it with age to this recipient (`age1...`), stored as
    /// `.sql.zst.age`; repeatable, and added to the environment's recipients
    /// in backups.toml. The SQL never touches the disk unencrypted.
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Once verified, copy it and its manifest to the environment's R2
    /// bucket (`[<env>.offsite]` in backups.toml), as `cargo xtask upload`
    /// does. `--upload=auto` uploads only when the environment has a bucket.
    #[arg(
        long,
        value_name = "WHEN",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "always",
        value_enum
    )]
    pub upload: Option<UploadWhen>,
    /// Refuse, before anything runs, unless the backup will be encrypted
    /// (the scheduled job on shared runners uses this).
    #[arg(long)]
    pub require_encryption: bool,
    /// Print the plan (with --dry-run) or the result as one JSON document on
    /// stdout (fields in the README); everything else goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Print the plan and every wrangler command, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Export local D1 through `wrangler d1 export --local` (workerd) rather
    /// than reading its SQLite file directly; the dump is the same.
    #[arg(long)]
    pub via_wrangler: bool,
    /// Whether an empty local D1 gets its schema from migrations/ first (the
    /// fresh-clone path of `backup local`); never for backups other tasks take.
    #[arg(skip = true)]
    pub bootstrap_local: bool,
    /// The task that takes this backup: `backup` itself, or another task
    /// ([`TakenFor`]).
    #[arg(skip = TakenFor::Itself)]
    pub taken_for: TakenFor,
}

/// The task that takes a backup. Another task than `backup` has already
/// said which repository it acts on, and its backup takes no `--table`; a
/// refusal's way out is the task's ([`oversized_way_out`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenFor {
    /// `cargo xtask backup`, of its own.
    Itself,
    /// A migrate's or a deploy's pre-migration backup.
    Migration,
    /// with-backup's, before the command it runs.
    Command,
    /// A restore's safety backup of its target: the one backup that is
    /// taken even when it is a faithful copy of data whose foreign keys or
    /// audit chain are already broken, since a restore is how such a
    /// database is repaired, and the safety backup must not stand in its
    /// way.
    RestoreSafety,
}

impl TakenFor {
    /// Whether another task than `backup` takes it.
    fn is_a_task(self) -> bool {
        self != TakenFor::Itself
    }

    /// Whether the task tells this backup in a line of its own
    /// ([`say_taken_for`]): a restore's safety backup and a migration's
    /// (`restore`, `drill`, `migrate`, `deploy`), whose block (plan line,
    /// export, file, verification) `say!` prints only with -v while it is
    /// taken ([`crate::out::tuck`]). with-backup says its backup with the
    /// command it runs.
    fn told_in_a_line(self) -> bool {
        matches!(self, TakenFor::RestoreSafety | TakenFor::Migration)
    }

    /// Whether a backup that is a faithful copy, but of data whose foreign
    /// keys or audit chain are already broken, still counts as taken.
    fn accepts_broken_data(self) -> bool {
        self == TakenFor::RestoreSafety
    }
}

impl BackupArgs {
    /// A full backup of `env`, as other tasks take before they change it.
    pub fn full(env: &str, reason: String, taken_for: TakenFor) -> BackupArgs {
        BackupArgs {
            env: env.to_owned(),
            schema_only: false,
            data_only: false,
            tables: Vec::new(),
            reason: Some(reason),
            compress: false,
            encrypt_to: Vec::new(),
            upload: None,
            require_encryption: false,
            json: false,
            dry_run: false,
            via_wrangler: false,
            bootstrap_local: false,
            taken_for,
        }
    }

    fn mode(&self) -> ExportMode {
        if self.schema_only {
            ExportMode::SchemaOnly
        } else if self.data_only {
            ExportMode::DataOnly
        } else {
            ExportMode::Full
        }
    }
}

/// When `backup --upload` copies the backup offsite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UploadWhen {
    /// Always; an environment without a bucket is an error.
    Always,
    /// When backups.toml names a bucket for the environment.
    Auto,
}

/// A `--reason`: some words, not only spaces (with `migrate --no-backup`
/// the reason is all that stands for the backup not taken), and at most
/// [`d1_core::manifest::MAX_REASON`] bytes as recorded
/// ([`recorded_reason`]), so that it is printed whole. One that holds a
/// piece of an age secret key ([`d1_core::sealed::holds_a_piece_of_a_key`]:
/// a paste in the wrong place) is refused before anything is written: the
/// manifest, `list` and the copy offsite would keep it, and the redaction
/// of printed text knows only a whole key by its checksum. clap does not
/// quote it back (`main`'s `with_key_pieces_unshown`).
pub fn parse_reason(text: &str) -> Result<String, String> {
    if d1_core::sealed::holds_key_material(text) {
        return Err(format!(
            "the reason holds {} (not shown; nothing was written): if it is one, keep it secret \
             (clear it from the shell's history, and make a new key with `cargo xtask keygen` \
             if it was shared), and give --reason in words",
            where_key_material_is(text)
        ));
    }
    let most = d1_core::manifest::MAX_REASON;
    let recorded = recorded_reason(text).len();
    if recorded > most {
        return Err(format!(
            "a reason may hold at most {most} bytes, and this one holds {recorded}: say why \
             in fewer words"
        ));
    }
    match text.trim().is_empty() {
        true => Err("a reason needs some words: say why".to_owned()),
        false => Ok(text.to_owned()),
    }
}

/// Where in `text` a piece of an age secret key is, as the refusal of a
/// `--reason` says it, never quoting it: its length and its first and last
/// characters, counted as a person counts them (a `—` is one).
fn where_key_material_is(text: &str) -> String {
    let Some(piece) = d1_core::sealed::key_pieces(text).into_iter().next() else {
        return "an age secret key (AGE-SECRET-KEY-…)".to_owned();
    };
    let first = text[..piece.start].chars().count() + 1;
    let length = piece.len();
    format!(
        "{length} characters in a row (characters {first} to {}) of those an age secret key is \
         written in, all of one case, as a piece of a key does",
        first + length - 1
    )
}

/// A reason as the manifest records it and the plan prints it: on one line
/// (no line break or escape code of text from elsewhere), with no secret.
/// One the tool composes of a long command or many migrations is recorded
/// whole (`status` reads the migrations back); where a reason is printed
/// it is cut ([`d1_core::manifest::clip_reason`]).
pub fn recorded_reason(reason: &str) -> String {
    crate::redact::text(&d1_core::names::on_one_line(reason))
}

pub fn mode_name(mode: ExportMode) -> &'static str {
    match mode {
        ExportMode::Full => "full",
        ExportMode::SchemaOnly => "schema-only",
        ExportMode::DataOnly => "data-only",
    }
}

/// Exports `env`'s whole database (or `tables`) now, as a backup does: the
/// schema is read first, so that a database with virtual tables is
/// exported by naming everything else. `output` must be in a private
/// directory; nothing is recorded. `diff`'s live side. A local D1 whose
/// SQLite file `local_file` names is read from that file, as `backup
/// local` reads it (its values exactly, where wrangler's export would
/// change them). Through D1's export, an object it would write so that
/// the file cannot be read is refused first, as a backup refuses it. Each
/// FTS5 table's settings are read into the scope as a backup reads them
/// (no export carries them): a backup just taken and the database it was
/// taken of compare the same (rvCJ 1).
pub fn export_now(
    wrangler: &Wrangler,
    cmds: &crate::edge::wrangler::Commands,
    env: &Environment,
    tables: &[String],
    (output, local_file): (&Path, Option<&Path>),
) -> Result<ExportScope> {
    let local_file = local_file.filter(|f| f.is_file());
    let source = Schema {
        wrangler,
        cmds,
        env,
        local_file,
    };
    let catalog = source.reader().catalog("read the schema (read-only)")?;
    let tables = with_content_tables(&catalog, tables);
    let mut scope = match rowless_only(&catalog, &tables) {
        Some(scope) => scope,
        None => ExportScope::plan(&catalog, &tables).map_err(crate::exit::could_not_run)?,
    };
    // As a backup would be, before D1's export runs: the file it would
    // write cannot be read.
    refuse_commented_objects(
        env,
        (&catalog, &scope),
        ExportMode::Full,
        local_file.is_some(),
    )
    .map_err(crate::exit::could_not_run)?;
    // Before the export, as a backup reads them.
    source.read_fts_settings(&mut scope)?;
    if scope.data_tables.is_empty() && !scope.chosen.is_empty() {
        // Nothing to export: the virtual tables are made from the scope.
        use std::io::Write as _;
        fsutil::create_private_file(output)?.write_all(b"PRAGMA defer_foreign_keys=TRUE;\n")?;
        return Ok(scope);
    }
    match local_file {
        Some(file) => {
            let out = fsutil::create_private_file(output)?;
            let exported = crate::edge::local_d1::export(
                (file, &env.name),
                (ExportMode::Full, false),
                &scope.tables,
                out,
            )?;
            say_rewritten(&exported.counts.lossless);
        }
        None => wrangler.run_watching(
            &cmds.export(env, output, ExportMode::Full, &scope.tables),
            Some(output),
        )?,
    }
    Ok(scope)
}

/// The scope of `tables` when each is a virtual table that holds no rows
/// of its own (a contentless FTS5 table, an fts5vocab table, an
/// external-content one whose content table is gone): nothing is
/// exported, and `diff --table cl` says it is not compared rather than
/// being refused with a backup's advice to name another table (PL 2).
fn rowless_only(catalog: &Catalog, tables: &[String]) -> Option<ExportScope> {
    use d1_core::catalog::VirtualContent::{Contentless, Derived, External};
    let virtual_tables = catalog.virtual_tables();
    let chosen: Vec<&d1_core::catalog::VirtualTable> = { tables.iter() }
        .map(|t| {
            { virtual_tables.iter() }
                .find(|v| v.name.eq_ignore_ascii_case(t))
                .filter(|v| match &v.content {
                    Contentless | Derived => true,
                    // A content table the database lacks (renamed away).
                    External { table } => !{ catalog.objects.iter() }.any(|o| {
                        matches!(o.kind.as_str(), "table" | "view")
                            && o.name.eq_ignore_ascii_case(table)
                    }),
                    _ => false,
                })
        })
        .collect::<Option<_>>()?;
    (!chosen.is_empty()).then(|| ExportScope {
        chosen: chosen.iter().map(|v| v.name.clone()).collect(),
        tables: Vec::new(),
        data_tables: Vec::new(),
        virtual_tables: chosen.into_iter().cloned().collect(),
    })
}

/// `tables`, with the `content=` table of each external-content FTS5
/// table among them that the database has: its rows are that table's, and
/// `diff --table docs_fts` compares them (rvCJ 2); for a `content=` view,
/// the tables it reads, which bring the view with them (PL 1).
fn with_content_tables(catalog: &Catalog, tables: &[String]) -> Vec<String> {
    let mut out = tables.to_vec();
    for vt in catalog.virtual_tables() {
        let d1_core::catalog::VirtualContent::External { table } = &vt.content else {
            continue;
        };
        let named = |t: &String| t.eq_ignore_ascii_case(&vt.name);
        if !tables.iter().any(named) {
            continue;
        }
        // A view's rows are those of the tables it reads (PL 1).
        let holding = catalog.view_reads(table).unwrap_or_else(|| {
            { catalog.objects.iter() }
                .filter(|o| o.kind == "table" && o.name.eq_ignore_ascii_case(table))
                .map(|o| o.name.clone())
                .collect()
        });
        for t in holding {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&t)) {
                out.push(t);
            }
        }
    }
    out
}

/// Takes a backup under the backup directory's lock; returns the file
/// written (`None` for a dry run).
pub fn run(sh: &Shell, project: &Project, args: &BackupArgs) -> Result<Option<PathBuf>> {
    take(sh, project, args, None)
}

/// The backup lock a task holds, and the schema of the database it is
/// about to back up as that task read it under the lock, just before
/// (`None`: the backup reads it, under the same lock).
pub struct Held<'a> {
    pub lock: &'a BackupLock,
    pub schema: Option<Catalog>,
    /// The database the schema was read from.
    pub of: &'a Environment,
}

impl Held<'_> {
    /// Refuses when `env`, as the configuration names it now, is another
    /// database than the one the schema was read from.
    fn check_same_database(&self, env: &Environment) -> Result<()> {
        let of = self.of;
        if (&of.database_id, &of.local_id, of.location)
            != (&env.database_id, &env.local_id, env.location)
        {
            bail!(
                "{} names another database than the one whose schema was just read ({}): the \
                 configuration changed during the task; nothing was backed up",
                env.name,
                of.database_name
            );
        }
        Ok(())
    }
}

/// Takes a backup for a task that already holds the backup lock (a restore's
/// safety backup), so that nothing can run between the two. The backup
/// decides its scope from the schema the task read, instead of starting
/// wrangler to read it again; it refuses if the configuration now names
/// another database than the one that schema came from.
pub fn run_under(
    sh: &Shell,
    project: &Project,
    args: &BackupArgs,
    held: Held<'_>,
) -> Result<Option<PathBuf>> {
    let env = held.of;
    take(sh, project, args, Some(held)).map_err(|e| match e.downcast_ref::<BadForItsOwn>() {
        Some(BadForItsOwn(_, OwnFault::ForeignKey)) => anyhow::anyhow!(
            "{e:#} {}",
            own_key_way_out(sh, project, env, args.taken_for)
        ),
        Some(BadForItsOwn(_, OwnFault::Fts5Table)) => anyhow::anyhow!(
            "{e:#} {}",
            own_fts5_way_out(sh, project, env, args.taken_for)
        ),
        None => e,
    })
}

/// A backup just taken that its verification found BAD for a fault of its
/// database's own schema alone, which no backup of it is good without a
/// migration that repairs it. Shown as the message it holds.
#[derive(Debug)]
struct BadForItsOwn(String, OwnFault);

/// The fault of a database's own schema that leaves no backup of it good.
#[derive(Debug, Clone, Copy)]
enum OwnFault {
    /// A foreign key SQLite cannot check, its parent holding rows
    /// ([`crate::steps::verify::Report::failed_for_a_faulty_key`]).
    ForeignKey,
    /// An FTS5 table that reads what its content table lacks
    /// ([`crate::steps::verify::Report::failed_for_its_own_fts5_table`]).
    Fts5Table,
}

impl fmt::Display for BadForItsOwn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadForItsOwn {}

/// The way out of a task's backup of `env` that is BAD for a foreign key
/// of the database itself (rvCE): the migration that repairs it is
/// refused by its own pre-migration backup, so it is applied with
/// `--no-backup`, its reason and the database's typed confirmation, a
/// remote database's way back noted first (Time Travel's bookmark), as for
/// an object ending in a `--` comment ([`commented_object_way_out`]).
/// Whether the pending migrations repair it is the plan's word: the key is
/// gone, or sound, once they have run in memory.
fn own_key_way_out(sh: &Shell, project: &Project, env: &Environment, by: TakenFor) -> String {
    let (name, db) = (&env.name, &env.database_name);
    let apply = match mended_by_pending(sh, project, env, |f| f.mended_keys.clone()) {
        Some((pending, mended)) => format!(
            "The pending migrations ({}) make it sound ({} is gone once they have run): apply \
             them without that backup",
            pending.join(", "),
            mended.join(", ")
        ),
        None => "No pending migration makes it sound: add one that makes the key refer to its \
                 parent's PRIMARY KEY or UNIQUE columns, or gives those columns a UNIQUE index \
                 (ALTER TABLE cannot change a key: the table is made again), then apply it \
                 without that backup"
            .to_owned(),
    };
    let (noted, then) = way_out_around(env, by);
    format!(
        "It is BAD for a foreign key of {db} itself (see foreign keys), not for a fault of the \
         backup: while {db} holds that key and its parent holds rows, no backup of it can be \
         good, a dump deferring foreign keys. {apply}{noted}: `cargo xtask migrate {name} \
         --no-backup --reason \"repair a faulty foreign key\" --confirm {db}`, then {then}."
    )
}

/// The way out of a task's backup of `env` that is BAD for an FTS5 table
/// of the database itself that reads what its content table lacks (rvCJ
/// 1), as for a faulty foreign key ([`own_key_way_out`]): the migration
/// that makes it again is refused by its own pre-migration backup, so it
/// is applied with `--no-backup`. Whether the pending migrations repair
/// it is the plan's word: the FTS5 table is gone, or reads what is there,
/// once they have run in memory.
fn own_fts5_way_out(sh: &Shell, project: &Project, env: &Environment, by: TakenFor) -> String {
    let (name, db) = (&env.name, &env.database_name);
    let mended = mended_by_pending(sh, project, env, |f| {
        { f.mended_fts.iter() }
            .map(|t| d1_core::names::shown_name(t).into_owned())
            .collect()
    });
    let apply = match mended {
        Some((pending, mended)) => format!(
            "The pending migrations ({}) repair it ({} reads what is there once they have \
             run): apply them without that backup",
            pending.join(", "),
            mended.join(", ")
        ),
        None => "No pending migration repairs it: add one that drops the FTS5 table and \
                 creates it again, reading what its content table has (`content=`, \
                 `content_rowid=` and its columns as that table names them), then rebuilds its \
                 index (`INSERT INTO t(t) VALUES('rebuild')`), then apply it without that backup"
            .to_owned(),
    };
    let (noted, then) = way_out_around(env, by);
    format!(
        "It is BAD for an FTS5 table of {db} itself (see statements), not for a fault of the \
         backup: while it reads what its content table lacks, D1 fails every search of it and \
         no backup of {db} can be good, its index rebuilt from what is not there. \
         {apply}{noted}: `cargo xtask migrate {name} --no-backup --reason \"repair an FTS5 \
         table\" --confirm {db}`, then {then}."
    )
}

/// The pending migrations of `env` and what of its own faults they mend,
/// as `mended` reads the plan's trial: `None` when they mend none (or
/// there is no plan).
fn mended_by_pending(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    mended: fn(&d1_core::fk_actions::Found) -> Vec<String>,
) -> Option<(Vec<String>, Vec<String>)> {
    let plan = crate::steps::migrations::plan(sh, project, env).ok()?;
    let found = mended(plan.side_writes.as_ref().ok()?);
    (!found.is_empty()).then(|| (plan.pending.clone(), found))
}

/// What a way out of a task's backup BAD for its database's own fault
/// notes first (a remote database's way back, Time Travel's bookmark, as
/// no backup can be taken), and what it does after: the task again.
fn way_out_around(env: &Environment, by: TakenFor) -> (String, String) {
    let name = &env.name;
    let noted = match env.location {
        Location::Local => String::new(),
        Location::Remote => format!(
            " (first note the bookmark `cargo xtask time-travel info {name}` prints, the way \
             back: `cargo xtask time-travel restore {name} --bookmark BOOKMARK`)"
        ),
    };
    let then = match by {
        TakenFor::RestoreSafety => "restore again: its safety backup is then good".to_owned(),
        TakenFor::Command => "run with-backup again".to_owned(),
        TakenFor::Migration | TakenFor::Itself => {
            format!("back up again (`cargo xtask backup {name}`)")
        }
    };
    (noted, then)
}

/// Refuses, as the backup itself would and before anything runs, a backup
/// `args` asks for that the settings cannot give (unencrypted under
/// `--require-encryption`, an upload with no bucket): for a task's dry run,
/// which must not show a plan that is bound to fail.
pub fn check_can_take(project: &Project, args: &BackupArgs) -> Result<()> {
    let envs = project.environments()?;
    Request::check(project, args, &envs).map(|_| ())
}

fn take(
    sh: &Shell,
    project: &Project,
    args: &BackupArgs,
    held: Option<Held<'_>>,
) -> Result<Option<PathBuf>> {
    let tucked = args.taken_for.told_in_a_line().then(crate::out::tuck);
    let envs = project.environments()?;
    let request = Request::check(project, args, &envs)?;
    let env = request.env;
    if let Some(read) = &held {
        read.check_same_database(env)?;
    }
    let (held, schema) = (held.as_ref().map(|h| h.lock), held.and_then(|h| h.schema));
    let started = Utc::now();
    let names = request.names(&project.backup_dir, started);
    guard_backup_dir(sh, project, &names)?;
    let cmds = project.commands();
    let local_file = local_sqlite_file(project, env, args);
    if args.dry_run && !project.wrangler_installed() {
        dry_run_without_wrangler(project, args, env, &names, &cmds, local_file.as_deref());
        return Ok(None);
    }
    let wrangler = project.wrangler(sh)?;
    let source = Schema {
        wrangler: &wrangler,
        cmds: &cmds,
        env,
        local_file: local_file.as_deref(),
    };
    let early = EarlyBookmark::start(&source, schema.is_none() && !args.dry_run);
    let (catalog, scope, plan, bootstrap) = source.plan(project, args, &names, schema)?;
    refuse_unexportable(env, (&catalog, &scope), args, local_file.is_some())?;
    refuse_values_over_the_limit(project, env, args, (&scope, local_file.is_some()))?;
    if args.dry_run {
        return dry_run_done((sh, project), &request, args, (&names, &plan));
    }

    let lock = lock_unless_held(project, env, held)?;
    let holding = held.or(lock.as_ref()).expect("the backup lock is held");
    let (catalog, mut scope) = match bootstrap {
        true => source.bootstrap(project, args)?,
        false => (catalog, scope),
    };
    refuse_unexportable(env, (&catalog, &scope), args, local_file.is_some())?;
    let new_database = warn_no_tables_or_left_out(project, env, args, (&catalog, &scope));
    let bookmark = early.finish_or(&source)?;
    source.read_fts_settings(&mut scope)?;
    let rowids_renumbered = source.rowids_renumbered(args, (&catalog, &scope))?;
    warn_renumbered(rowids_renumbered.as_ref());

    let mut taken = Taken {
        request: &request,
        started,
        bookmark,
        scope: &scope,
        sequences: source.sequences(args, (&catalog, &scope))?,
        rowids_renumbered,
        whole_reals: source.whole_reals(args, (&catalog, &scope))?,
        text_written_otherwise: [None, None],
    };
    let (file, manifest_path, written) = write_verified(
        sh,
        project,
        args,
        &mut taken,
        (&names, holding),
        (&source, &catalog),
    )?;
    say_taken_for((tucked, args.taken_for), (&file, &written), new_database);
    if let Some(bucket) = &request.upload {
        upload_kept((sh, project), env, (&file, &written, bucket), holding)?;
    }
    drop(lock);
    if args.json {
        print_json_written(env, args, (&names, &plan), (&file, &manifest_path))?;
    }
    Ok(Some(file))
}

/// The backup lock a backup of `env` takes of its own, unless its task
/// already `held` it.
fn lock_unless_held(
    project: &Project,
    env: &Environment,
    held: Option<&BackupLock>,
) -> Result<Option<BackupLock>> {
    let task = format!("backup {}", env.name);
    { held.is_none() }
        .then(|| crate::steps::lock::acquire_lock(project, &task))
        .transpose()
}

/// The one line that tells a backup another task took first (`by`), its
/// block `tucked` under -v: its file, its verdict and what it holds. Said
/// once written and verified, before its upload (a deploy's), whose lines
/// are a step of the task. Nothing for a backup of its own (no `tucked`).
fn say_taken_for(
    (tucked, by): (Option<crate::out::Tucked>, TakenFor),
    (file, manifest): (&Path, &Manifest),
    new_database: bool,
) {
    let Some(tucked) = tucked else { return };
    drop(tucked);
    let label = match by {
        TakenFor::RestoreSafety => "Safety backup",
        TakenFor::Migration => "Pre-migration backup",
        TakenFor::Command | TakenFor::Itself => "Backup",
    };
    let verdict = match manifest.is_verified_good() {
        true => "verified GOOD",
        false => "verified BAD (see the warning above)",
    };
    // A new database (its first migrate, a first deploy) is not warned of
    // ([`warn_no_tables_or_left_out`]): said as what it is.
    let holds = match new_database {
        true => "no tables yet (a new database, whose tables the migrations create)".to_owned(),
        false => holds_said(manifest),
    };
    crate::say!(
        "{label} {}: {verdict}, {holds} ({})",
        file.display(),
        d1_core::wording::size(manifest.file.bytes)
    );
}

/// What a backup holds, as its summary says it: `10 tables, 17 rows`, or
/// of a schema-only backup, which counts no rows, `the schema only, no
/// rows` ("0 tables, 0 rows" would read as an empty database).
fn holds_said(manifest: &Manifest) -> String {
    if manifest.mode == "schema-only" {
        return "the schema only, no rows".to_owned();
    }
    let (tables, total_rows) = manifest.checked_rows();
    format!(
        "{}, {}",
        d1_core::wording::count(tables, "table"),
        d1_core::wording::count(total_rows, "row")
    )
}

/// `backup --upload`'s upload of `file`, written and verified (`written`:
/// its manifest as the verification recorded it), to `bucket`. From its
/// start an interrupt leaves the backup kept, but not offsite: main says
/// so, and how to copy it ([`kept_not_uploaded`]).
fn upload_kept(
    (sh, project): (&Shell, &Project),
    env: &Environment,
    (file, written, bucket): (&Path, &Manifest, &str),
    holding: &BackupLock,
) -> Result<()> {
    let before = crate::edge::signals::what_changed();
    crate::edge::signals::changed(kept_not_uploaded(env, (file, written), bucket));
    crate::steps::offsite::upload(sh, project, env, file, holding)?;
    crate::edge::signals::changed_back_to(before);
    Ok(())
}

/// What stays after `backup --upload` is stopped once its backup is
/// written and verified: the backup, kept here with no offsite copy
/// recorded, and the upload that copies it, as it can be pasted.
/// `written` is its manifest as its verification recorded it: the upload
/// reads the one on disk, once.
fn kept_not_uploaded(
    env: &Environment,
    (file, written): (&Path, &Manifest),
    bucket: &str,
) -> String {
    let verdict = match written.is_verified_good() {
        true => "verified GOOD",
        false => "not verified GOOD",
    };
    format!(
        "{} was written and {verdict}, and is kept, but not uploaded to r2://{bucket}: copy it \
         with `cargo xtask upload {} --env {}`",
        file.display(),
        d1_core::wording::shell_word(&file_name(file)),
        env.name
    )
}

/// A backup is taken without its migrations directory (a broken checkout
/// in an emergency is when it is needed most): warned of once, with the
/// fix. Its verification checks the data and says the migrations were not
/// checked, and its manifest records so, for `status` to call them
/// unknown. It used to be refused, nothing taken (LZ). `migrate` and
/// `restore`, which judge with the migrations, refuse before their backup.
///
/// A fresh clone without it, whose local D1 has no file yet, has nothing
/// to back up and nothing to create its schema from: refused, exit 2,
/// with both fixes, before wrangler makes `.wrangler/state`.
fn warn_migrations_unchecked(
    project: &Project,
    env: &Environment,
    args: &BackupArgs,
) -> Result<()> {
    let dir = project.config_dir.join(&env.migrations_dir);
    if !dir.exists() && local_d1_absent(project, env, args) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the local D1 of {} has no database yet (a fresh clone's), so there is nothing to \
             back up, and {}: then `cargo xtask migrate {}` creates it. Nothing was done.",
            env.name,
            crate::steps::migrations::missing_dir_said(&dir),
            env.name
        );
    }
    if !dir.exists() {
        crate::warn!(
            "{}. The backup is taken all the same and its data verified, but its triggers and \
             schema are not checked against the migrations, and its manifest says so (`status` \
             calls its migrations unknown until `cargo xtask verify` checks it with the \
             directory back).",
            crate::steps::migrations::missing_dir_said(&dir)
        );
    }
    Ok(())
}

/// Whether this is a fresh clone's first backup of local D1, whose SQLite
/// file does not exist yet: its schema is known empty, without starting
/// wrangler to read it (which took a second and made `.wrangler/state` in
/// a dry run that changed nothing; MB).
fn local_d1_absent(project: &Project, env: &Environment, args: &BackupArgs) -> bool {
    args.bootstrap_local
        && env.location == Location::Local
        && !crate::edge::local_d1::database_file(&project.config_dir, &env.local_id).is_file()
}

/// The SQLite file local D1 is exported from, unless `--via-wrangler`;
/// `None` for a remote database.
fn local_sqlite_file(project: &Project, env: &Environment, args: &BackupArgs) -> Option<PathBuf> {
    (env.location == Location::Local && !args.via_wrangler)
        .then(|| crate::edge::local_d1::database_file(&project.config_dir, &env.local_id))
}

/// A full `--via-wrangler` backup of local D1 (of every table, or of the
/// tables `--table` names, whose load holds only those) is held to its
/// SQLite file: wrangler's export writes numbers as JavaScript does (3.0
/// as 3, -0.0 as 0) and text that is not UTF-8 as U+FFFD, which no check
/// of the dump alone can see.
fn via_wrangler_source(
    project: &Project,
    env: &Environment,
    args: &BackupArgs,
) -> Option<crate::steps::verify::SourceRows> {
    (env.location == Location::Local && args.via_wrangler && args.mode() == ExportMode::Full).then(
        || {
            crate::steps::verify::SourceRows::File(
                crate::edge::local_d1::database_file(&project.config_dir, &env.local_id),
                env.name.clone(),
                export_causes,
            )
        },
    )
}

/// `--json`: the plan, with the backup written (`file`) and its manifest
/// as read back from `manifest_path`.
fn print_json_written(
    env: &Environment,
    args: &BackupArgs,
    (names, plan): (&BackupNames, &Plan),
    (file, manifest_path): (&Path, &Path),
) -> Result<()> {
    let manifest = Manifest::read(manifest_path)?;
    let written = Some((file, manifest_path, &manifest));
    crate::out::json(&plan_json(env, args, names, plan, written));
    Ok(())
}

/// Refuses a backup into a directory git would commit or others can write
/// to. The backups there are read before anything runs: a directory this
/// version cannot judge (a newer version wrote to it) stops the backup
/// here, not after the export, when its migration record is read.
fn guard_backup_dir(sh: &Shell, project: &Project, names: &BackupNames) -> Result<()> {
    guard_git(sh, project, names)?;
    fsutil::refuse_shared_dir(&project.backup_dir)?;
    crate::edge::inventory::scan(&project.backup_dir)?;
    Ok(())
}

/// Refuses, before anything is exported, a backup that no export could
/// hold or that D1's export (not `native`) would write so that it cannot
/// be loaded.
fn refuse_unexportable(
    env: &Environment,
    (catalog, scope): (&Catalog, &ExportScope),
    args: &BackupArgs,
    native: bool,
) -> Result<()> {
    refuse_unknown_virtual_tables(env, scope, args)?;
    refuse_unprintable_chosen_tables(scope)?;
    refuse_commented_objects(env, (catalog, scope), args.mode(), native)
}

/// Refuses, before anything is exported, a backup of chosen tables one of
/// which is named with a control or invisible character (D1 accepts a table
/// `"new<LF>line"`): the manifest lists the chosen tables, and a manifest
/// holding such a character is refused (printed, it would read as
/// something else), so the backup could never be restored or listed. A
/// full backup lists no table and holds that one.
fn refuse_unprintable_chosen_tables(scope: &ExportScope) -> Result<()> {
    let Some((i, name)) =
        { scope.chosen.iter().enumerate() }.find(|(_, t)| !d1_core::names::is_printable(t))
    else {
        return Ok(());
    };
    Err(crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
        "--table {} (table {} of {} chosen) is named with a control character (a line \
         break, a tab) or an invisible one: a backup's manifest lists its tables and holds no \
         such character, so no backup of chosen tables can name it: nothing was written. \
         Take a full backup (without --table), which holds that table",
        d1_core::names::shown_name(name),
        i + 1,
        scope.chosen.len(),
    )))
}

/// Refuses, before anything is written, a backup whose `scope` holds a
/// virtual table of a module other than FTS5 (local D1 creates R*Tree
/// tables): no restore can recreate it, and a backup of it would fail its
/// own check. The other tables can be backed up by name: by `backup`'s
/// `--table`, which a task's backup (with-backup's, a migration's, a
/// restore's safety backup) does not take, so its refusal names the whole
/// command ([`virtual_table_way_out`]).
fn refuse_unknown_virtual_tables(
    env: &Environment,
    scope: &ExportScope,
    args: &BackupArgs,
) -> Result<()> {
    let Some(vt) = scope
        .virtual_tables
        .iter()
        .find(|vt| vt.content == VirtualContent::Unknown)
    else {
        return Ok(());
    };
    Err(crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
        "{} is a virtual table of the module {}, which this tool cannot back up or restore \
         (only FTS5 tables; wrangler's `d1 export` refuses the whole database): nothing was \
         written. {}",
        d1_core::names::shown_name(&vt.name),
        d1_core::names::shown(&vt.module),
        virtual_table_way_out(env, args, &d1_core::names::shown_name(&vt.name)),
    )))
}

/// The way round [`refuse_unknown_virtual_tables`] for the task that takes
/// the backup: `backup`'s own `--table`, or, for a task that takes no such
/// flag, the `backup` command that does, and the way the task runs again.
fn virtual_table_way_out(env: &Environment, args: &BackupArgs, name: &str) -> String {
    let keep = format!("keep {name}'s rows some other way (README, FTS5)");
    if !args.taken_for.is_a_task() {
        return format!(
            "Back up the other tables by name with `--table=NAME`, once for each, and {keep}"
        );
    }
    format!(
        "This task backs up the whole database, which no backup can hold while {name} is in it: \
         back up the other tables by name (`cargo xtask backup {} --table=NAME`, once for each), \
         {keep}, and drop {name} (in a migration) before running it again",
        d1_core::wording::shell_word(&env.name)
    )
}

/// Refuses, before anything is exported, a backup through D1's export
/// (remote, or `--via-wrangler`) whose tables, indexes or views include one
/// whose text ends in a `--` comment: the export writes `... -- comment;`,
/// whose `;` the comment holds, so that the next statement runs into the
/// object (a table's first row into its CREATE), or the file never ends,
/// and no such export loads. The native export of a local D1 writes the `;`
/// on a line of its own; a data-only export writes no CREATE. The way out
/// is said for `env` ([`commented_object_way_out`]).
fn refuse_commented_objects(
    env: &Environment,
    (catalog, scope): (&Catalog, &ExportScope),
    mode: ExportMode,
    native: bool,
) -> Result<()> {
    if native || mode == ExportMode::DataOnly {
        return Ok(());
    }
    let exported = scope.expected_objects(catalog);
    let Some(o) = catalog.objects.iter().find(|o| {
        exported.contains(&(o.kind.clone(), o.name.clone())) && { o.sql.as_deref() }
            .is_some_and(d1_sql::statements::ends_in_a_line_comment)
    }) else {
        return Ok(());
    };
    bail!(
        "{} {} ends in a `--` comment, which holds the `;` D1's export writes after it, so the \
         next statement runs into it (or the file never ends) and no export of this database \
         can be loaded or verified, however whole the download: {}. Nothing was exported.",
        o.kind,
        d1_core::names::shown_name(&o.name),
        commented_object_way_out(env, &o.kind)
    )
}

/// How to recreate a `kind` object of `env` without the comment at its
/// end. A local D1 is backed up natively. A remote one cannot be backed up
/// through D1's export until the object is recreated, and `migrate`'s own
/// pre-migration backup (as `with-backup`'s and `deploy`'s) is refused the
/// same way: its way back is Time Travel's bookmark, noted first, and the
/// migration is applied with `--no-backup`, which takes a reason and the
/// typed confirmation (the database's name, which every environment takes).
fn commented_object_way_out(env: &Environment, kind: &str) -> String {
    if env.location == Location::Local {
        return format!(
            "back up without --via-wrangler (`cargo xtask backup {}`), whose export writes it so \
             that it loads, or recreate it without the comment at its end (in a migration), then \
             back up again",
            env.name
        );
    }
    let (name, db) = (&env.name, &env.database_name);
    format!(
        "recreate it without the comment at its end in a migration; as no backup of {db} can be \
         taken until then (a migrate's pre-migration backup is refused the same way), note the \
         bookmark `cargo xtask time-travel info {name}` prints (the way back: `cargo xtask \
         time-travel restore {name} --bookmark BOOKMARK`), apply the migration with `cargo xtask \
         migrate {name} --no-backup --reason \"recreate the {kind} without its trailing comment\" \
         --confirm {db}`, then back up again"
    )
}

/// Refuses, before anything is written, a backup of local D1 whose rows
/// hold a string, BLOB or row over D1's 2 MB (local D1 holds one, D1 does
/// not): every load of such a dump fails, so the backup would be written
/// only to fail its own check. Exported with `--via-wrangler`, or for a
/// dry run, the local D1's file is read here. The native export (`native`)
/// finds them in its own pass over the values instead, and the backup is
/// refused ([`values_over_the_limit`]) before its file is named or
/// recorded, the private file it wrote removed. A remote D1 holds none.
fn refuse_values_over_the_limit(
    project: &Project,
    env: &Environment,
    args: &BackupArgs,
    (scope, native): (&ExportScope, bool),
) -> Result<()> {
    let file = crate::edge::local_d1::database_file(&project.config_dir, &env.local_id);
    if env.location != Location::Local || args.schema_only || !file.is_file() {
        return Ok(());
    }
    // The native export tallies what it writes: all but a generated
    // column's values (STORED, or VIRTUAL), which the dump does not carry.
    let generated_only = native && !args.dry_run;
    let found = crate::edge::local_d1::over_the_value_limit(
        (&file, &env.name),
        &scope.data_tables,
        generated_only,
    )?;
    warn_uncomputed(&found.uncomputed);
    match found.oversized.is_empty() {
        true => Ok(()),
        false => Err(values_over_the_limit(env, args, &found.oversized)),
    }
}

/// Warns of each VIRTUAL generated column local D1 cannot compute for some
/// row: its size is not measured, and D1 fails every read of it on that
/// row. The backup goes on: its rows are what the database holds, and no
/// dump carries a generated column's values.
fn warn_uncomputed(uncomputed: &[d1_core::value_limit::Uncomputed]) {
    for column in uncomputed {
        crate::warn!(
            "{}: a VIRTUAL generated column SQLite cannot compute for some row, so its size \
             was not checked against D1's 2 MB; D1 fails every read of it (a SELECT naming it, \
             or *) on that row, as local D1 does, and loading that row fails. The backup goes \
             on; fix the column's expression or the rows it fails on",
            column.said()
        );
    }
}

/// The refusal of a backup of local D1 that holds the values and rows
/// `found` (not empty), over D1's 2 MB: naming each place, never a value,
/// and the way past it for this backup ([`oversized_way_out`]).
fn values_over_the_limit(
    env: &Environment,
    args: &BackupArgs,
    found: &[d1_core::value_limit::Oversized],
) -> anyhow::Error {
    let said: Vec<String> = found.iter().map(|o| o.said()).collect();
    crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
        "{} cannot be backed up: {}: {} {}{}. Nothing was written.",
        env.name,
        d1_core::wording::first_of(&said, d1_core::wording::NAMES_SHOWN),
        match found.len() {
            1 => "it is",
            _ => "each is",
        },
        over_the_limit_said(found),
        oversized_way_out(env, args, &found[0]),
    ))
}

/// What is over D1's 2 MB in `found`, and its fix: a value's (shrink it,
/// move it to R2), a row's whose values each fit (spread them across rows
/// or tables, move one to R2), or both.
fn over_the_limit_said(found: &[d1_core::value_limit::Oversized]) -> &'static str {
    use d1_core::gate::{OVER_D1_ROW_LIMIT, OVER_D1_VALUE_LIMIT, OVER_D1_VALUE_OR_ROW_LIMIT};
    let rows = found.iter().filter(|o| o.column.is_none()).count();
    match rows {
        0 => OVER_D1_VALUE_LIMIT,
        n if n == found.len() => OVER_D1_ROW_LIMIT,
        _ => OVER_D1_VALUE_OR_ROW_LIMIT,
    }
}

/// The wrangler command, to paste, whose UPDATE shrinks `first`'s value in
/// the local D1 `database`: its shape, naming the table and column, never
/// a value; the names quoted in SQL, and the whole quoted for the shell,
/// since a hostile backup restored into local D1 names them.
fn shrink_command(database: &str, first: &d1_core::value_limit::Oversized) -> String {
    use d1_core::statement::quote_ident;
    let table = quote_ident(&first.table);
    let update = match &first.column {
        Some(column) => {
            let column = quote_ident(column);
            format!(
                "UPDATE {table} SET {column} = <a smaller value, or its key in R2> WHERE \
                 length(CAST({column} AS BLOB)) > 2000000"
            )
        }
        None => format!(
            "UPDATE {table} SET <one of its columns> = <a smaller value, or its key in R2> \
             WHERE <that row>"
        ),
    };
    let words = [
        "npx",
        "wrangler",
        "d1",
        "execute",
        database,
        "--local",
        "--command",
    ];
    let command = d1_core::wording::shell_words(&[&words[..], &[update.as_str()]].concat());
    // A name that does not print as itself is shown escaped, inside the
    // quotes, which no escape opens.
    d1_core::names::shown(&command).into_owned()
}

/// The way past [`refuse_values_over_the_limit`], which ends its sentence
/// on the value's fix, chosen by the task that takes the backup
/// ([`TakenFor`]): a backup of its own backs up the other tables by
/// name; one another task takes (a migrate's pre-migration backup, a restore's
/// safety backup, with-backup's) takes no `--table`, so it is told to
/// shrink or move the value in local D1 first, by the shape of the
/// UPDATE that does (naming the table and column, never a value), and a
/// migrate that `--no-backup` applies it without one.
fn oversized_way_out(
    env: &Environment,
    args: &BackupArgs,
    first: &d1_core::value_limit::Oversized,
) -> String {
    let then = match args.taken_for {
        TakenFor::Itself => {
            return ", or back up the other tables by name with `--table=NAME`, once for each; \
                    then back up again"
                .to_owned();
        }
        TakenFor::Migration => format!(
            "then migrate again; or apply the migrations without a backup: `{}`",
            crate::edge::confirm::migrate_command(
                env,
                "--no-backup --reason \"the backup is refused for a value over 2 MB\""
            )
        ),
        TakenFor::RestoreSafety => format!(
            "then restore again: the safety backup of {} cannot be taken while it holds one, \
             and a restore does not start without it",
            env.database_name
        ),
        TakenFor::Command => "then run again".to_owned(),
    };
    format!(
        " in local D1 first (`{}`, for each), {then}",
        shrink_command(&env.database_name, first)
    )
}

/// `result` of a read that never fails a backup (its error is warned of,
/// and the backup goes on), unless it failed because a signal came: the
/// backup does not go on then, and the interrupt alone is said (by main),
/// not a warning that would say it does.
fn unless_interrupted<T>(result: Result<T>) -> Result<Result<T>> {
    match result {
        Err(e) if crate::edge::signals::received().is_some() => Err(e),
        result => Ok(result),
    }
}

/// Warns of each table whose rowids a restore of this backup renumbers
/// ([`renumbered_said`]).
fn warn_renumbered(renumbered: Option<&BTreeMap<String, Vec<String>>>) {
    for (table, triggers) in renumbered.into_iter().flatten() {
        crate::warn!("{}", renumbered_said(table, triggers));
    }
}

/// The settings of each FTS5 table of `names` that `read` (the JSON of one
/// query of a statement per table, or why it failed) holds, and a warning
/// for each left out: all, if the read failed; any FTS5 would not take
/// back, named by table and key (its value, which may be any text, never).
pub(crate) fn fts_settings_read(
    names: &[&str],
    read: Result<serde_json::Value>,
) -> (Vec<Vec<d1_core::catalog::FtsSetting>>, Vec<String>) {
    const DEFAULTS: &str = "a restore leaves them at their defaults (README, FTS5)";
    let json = match read {
        Ok(json) => json,
        Err(e) => {
            let warning = format!(
                "the FTS5 tables' settings could not be read ({e:#}): the backup goes on \
                 without them, and {DEFAULTS}"
            );
            return (vec![Vec::new(); names.len()], vec![warning]);
        }
    };
    let mut warnings = Vec::new();
    let settings = { names.iter().enumerate() }
        .map(|(n, name)| {
            let name = d1_core::names::shown_name(name);
            let Some(rows) = json
                .pointer(&format!("/{n}/results"))
                .and_then(|r| r.as_array())
            else {
                warnings.push(format!(
                    "the settings of the FTS5 table {name} could not be read: the backup goes \
                     on without them, and {DEFAULTS}"
                ));
                return Vec::new();
            };
            { rows.iter() }
                .filter_map(|r| {
                    let key = r.get("k").and_then(|k| k.as_str()).unwrap_or_default();
                    let value = r.get("v").unwrap_or(&serde_json::Value::Null);
                    d1_core::catalog::FtsSetting::from_row(key, value)
                        .map_err(|e| {
                            warnings.push(format!(
                                "the FTS5 table {name}'s setting {} is left out of the backup \
                                 ({e:#}): a restore leaves it at its default",
                                d1_core::names::shown(key)
                            ))
                        })
                        .ok()
                })
                .collect()
        })
        .collect();
    (settings, warnings)
}

/// What the backup leaves out, said before it is taken: virtual tables
/// no export holds whole, and tables taken for shadow tables.
fn warn_left_out(catalog: &Catalog, scope: &ExportScope) {
    warn_lost_virtual_tables(scope);
    warn_unrebuildable(catalog, scope);
    warn_tables_taken_for_shadow_tables(catalog);
}

/// Warns of each external-content FTS5 table whose `content=` table the
/// database does not have, or the `--table` list leaves out
/// ([`ExportScope::unrebuildable`]): the backup is good, but a restore
/// cannot rebuild its index. Said at every verbosity.
fn warn_unrebuildable(catalog: &Catalog, scope: &ExportScope) {
    for (fts, content, exists) in scope.unrebuildable(catalog) {
        let content_name = &content;
        let (fts, content) = (
            d1_core::names::shown_name(&fts),
            d1_core::names::shown_name(&content),
        );
        let (missing, fix) = match exists {
            false => (
                "that the database does not have (renamed or dropped?)",
                format!(
                    "create {content} again (or recreate {fts} naming its content table), then \
                     rebuild it"
                ),
            ),
            true => (
                "that this backup leaves out",
                format!(
                    "add `{}` to back it up with its index",
                    content_options(catalog, content_name)
                ),
            ),
        };
        crate::warn!(
            "{fts} names a content table, {content}, {missing}: its index cannot be rebuilt, so \
             a restore recreates {fts} with its index empty, and reading its rows fails (no such \
             table) until {content} exists and it is rebuilt; {fix} (README, FTS5)"
        );
    }
}

/// The `--table`s that bring `content`, an FTS5 table's `content=`: the
/// table itself, or the tables a view reads (no `--table` takes a view,
/// and a backup holding them exports the view too: PL 1).
fn content_options(catalog: &Catalog, content: &str) -> String {
    let tables = catalog
        .view_reads(content)
        .unwrap_or_else(|| vec![content.to_owned()]);
    { tables.iter() }
        .map(|t| d1_core::wording::table_option(t))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Warns of each virtual table in `scope` a restore of this backup will
/// not have; said at every verbosity.
fn warn_lost_virtual_tables(scope: &ExportScope) {
    for vt in &scope.virtual_tables {
        if let Some(why) = vt.lost_by_a_backup() {
            crate::warn!(
                "{} is {why} (README, FTS5)",
                d1_core::names::shown_name(&vt.name)
            );
        }
    }
}

/// Warns of each table of the app's that SQLite takes for an FTS5 table's
/// shadow table by its name: no export carries its rows. Said at every
/// verbosity.
fn warn_tables_taken_for_shadow_tables(catalog: &Catalog) {
    let virtual_tables = catalog.virtual_tables();
    for (table, fts5) in catalog.tables_taken_for_shadow_tables() {
        // Its content= table: its 'rebuild' reads a table the backup lacks.
        let its_content = virtual_tables.iter().any(|v| {
            v.name == fts5
                && matches!(&v.content, VirtualContent::External { table: t }
                    if t.eq_ignore_ascii_case(&table))
        });
        let bad = match its_content {
            true => format!(
                "; it is {}'s content= table, which its 'rebuild' reads, so every backup is \
                 BAD until it is renamed",
                d1_core::names::shown_name(&fts5),
            ),
            false => String::new(),
        };
        crate::warn!(
            "{} is not in this backup, nor any of its rows: SQLite takes it for a shadow table \
             of the FTS5 table {} by its name, so no export carries it (and D1 allows no write \
             to it){bad}. Give it another name: drop {}, rename it (ALTER TABLE … RENAME TO …, \
             in a statement of its own), and create {} again (README, FTS5)",
            d1_core::names::shown_name(&table),
            d1_core::names::shown_name(&fts5),
            d1_core::names::shown_name(&fts5),
            d1_core::names::shown_name(&fts5),
        );
    }
}

/// Writes the backup `taken` and verifies it as it was written: its file,
/// its manifest's path, and that manifest as the verification recorded it.
fn write_verified(
    sh: &Shell,
    project: &Project,
    args: &BackupArgs,
    taken: &mut Taken<'_>,
    (names, lock): (&BackupNames, &BackupLock),
    (source, catalog): (&Schema<'_>, &Catalog),
) -> Result<(PathBuf, PathBuf, Manifest)> {
    let age = project.age();
    let (file, manifest, manifest_path, mut stored) = write(
        sh,
        project,
        args,
        taken,
        (names, lock),
        source,
        catalog,
        &age,
    )?;
    let verified = verify_new_backup(
        project,
        source.env,
        &file,
        (&stored.source(&file)?, std::mem::take(&mut stored.arrival)),
        manifest,
        &manifest_path,
        NewBackup {
            accept_broken_data: args.taken_for.accepts_broken_data(),
            warns_rows_fell: args.taken_for != TakenFor::RestoreSafety,
            // Written by D1's export (wrangler's), not read from the SQLite file.
            d1_export: source.local_file.is_none(),
        },
    )?;
    Ok((file, manifest_path, verified))
}

/// Ends a dry run once its plan is printed: nothing was written. With
/// `--upload`, the index is read as the upload reads it
/// ([`crate::steps::offsite::dry_run_index`]).
fn dry_run_done(
    (sh, project): (&Shell, &Project),
    request: &Request<'_>,
    args: &BackupArgs,
    (names, plan): (&BackupNames, &Plan),
) -> Result<Option<PathBuf>> {
    let env = request.env;
    if request.upload.is_some() {
        crate::steps::offsite::dry_run_upload_index(sh, project, env)?;
    }
    crate::say!("Dry run: nothing was changed.");
    if args.json {
        crate::out::json(&plan_json(env, args, names, plan, None));
    }
    Ok(None)
}

/// How the new backup is stored, and so how to read it back.
struct StoredAs<'a> {
    format: Format,
    sealed: Option<stored::Sealed>,
    age: &'a stored::Age,
    /// The repair survey and the scratch load made as the export arrived,
    /// which its verification need not make again.
    arrival: crate::steps::verify::OnArrival,
    /// Per table, the values the native export wrote exactly where D1's
    /// export would change them (none for a wrangler export).
    exact_values: BTreeMap<String, u64>,
}

impl StoredAs<'_> {
    /// An encrypted backup is read from the compressed copy in memory: the
    /// identity is usually not on the machine that takes backups.
    fn source(&self, path: &Path) -> Result<Source> {
        match (self.format, &self.sealed) {
            (Format::Sql, _) => Source::for_file(path, None, self.age),
            (
                _,
                Some(stored::Sealed {
                    compressed: Some(bytes),
                    ..
                }),
            ) => Ok(Source::Memory(bytes.clone())),
            _ => Ok(Source::compressed(path)),
        }
    }
}

/// Refuses, before anything runs, a backup whose settings are missing:
/// recipients it must be encrypted to (`unencrypted`), a bucket it must
/// go to (`no_bucket`); each named in one refusal, so that a dry run tells
/// every one at once. A backup of its own names its flags (`--encrypt-to`,
/// `--require-encryption`) and the setting; a deploy's, which always
/// encrypts and uploads and has no such flags, names only the settings of
/// backups.toml, and the `keygen` that makes a key, exit 3 whichever is
/// missing.
fn refuse_missing_settings(
    env: &Environment,
    args: &BackupArgs,
    (unencrypted, no_bucket): (bool, bool),
) -> Result<()> {
    use crate::exit::Exit;
    let section = &env.env_name;
    let task = args.taken_for.is_a_task();
    let mut missing = Vec::new();
    if unencrypted && task {
        missing.push(format!(
            "deploy backs up {} encrypted, always (its backup goes offsite, and a runner's \
             disk holds it), and backups.toml names no recipients for it: add \
             `[{section}.encryption]` with `recipients = [\"age1...\"]` to backups.toml, the \
             public key `cargo xtask keygen --out FILE` prints (keep FILE, the identity, off \
             the runner)",
            env.name
        ));
    } else if unencrypted {
        missing.push(format!(
            "refusing to back up {} unencrypted (--require-encryption): give --encrypt-to \
             age1..., or set `recipients` under [{section}.encryption] in backups.toml",
            env.name
        ));
    }
    if no_bucket && task {
        missing.push(format!(
            "deploy copies its backup of {} offsite, always, and backups.toml names no bucket \
             for it: add `[{section}.offsite]` with `bucket = \"...\"` (an R2 bucket of the \
             account) to backups.toml",
            env.name
        ));
    } else if no_bucket {
        missing.push(format!(
            "--upload needs a bucket: add `[{section}.offsite]` with `bucket = \"...\"` to \
             backups.toml"
        ));
    }
    if missing.is_empty() {
        return Ok(());
    }
    let exit = if unencrypted || task {
        Exit::Refused
    } else {
        Exit::CouldNotRun
    };
    crate::stop!(exit, "{}. Nothing was run.", missing.join("; and "))
}

/// What a backup was asked for, checked before anything is read or
/// written: the environment, the encryption recipients and the stored
/// format they lead to, and whether the backup goes offsite.
struct Request<'e> {
    env: &'e Environment,
    recipients: Vec<String>,
    format: Format,
    /// The bucket the backup is then copied to, with `--upload`.
    upload: Option<String>,
}

impl<'e> Request<'e> {
    /// The names of the backup this request writes in `backup_dir`, taken
    /// at `started`.
    fn names(&self, backup_dir: &Path, started: DateTime<Utc>) -> BackupNames {
        BackupNames::new(backup_dir, &self.env.name, started, self.format)
            .encrypted_to(self.recipients.clone())
            .uploaded_to(self.upload.clone())
    }

    fn check(project: &Project, args: &BackupArgs, envs: &'e Environments) -> Result<Request<'e>> {
        let env = envs.resolve(&args.env)?;
        // Every backup (a restore's, a migration's, with-backup's, deploy's
        // included): never a real database's into a rehearsal's backups/.
        crate::steps::rehearsals::refuse_real_database(&project.backup_dir, env, "back up")?;
        crate::edge::local_d1::refuse_linked_env(&project.config_dir, env)?;
        for table in &args.tables {
            if table.trim().is_empty() || table.contains('\0') {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "--table needs a table name; got {table:?}"
                );
            }
        }
        let settings = project.settings()?.env(&env.env_name);
        let mut recipients = settings.encryption.recipients.clone();
        for recipient in &args.encrypt_to {
            stored::check_recipient(recipient)
                .context("--encrypt-to")
                .map_err(crate::exit::could_not_run)?;
            if !recipients.contains(recipient) {
                recipients.push(recipient.clone());
            }
        }
        let format = Format::choose(args.compress || settings.compress, &recipients);
        let upload = match args.upload {
            None => false,
            Some(UploadWhen::Auto) => settings.offsite.is_some(),
            Some(UploadWhen::Always) => true,
        };
        let unencrypted = args.require_encryption && format != Format::ZstdAge;
        let no_bucket = upload && settings.offsite.is_none();
        refuse_missing_settings(env, args, (unencrypted, no_bucket))?;
        let upload = { upload.then_some(settings.offsite.as_ref()).flatten() }
            .map(|offsite| offsite.bucket.clone());
        warn_migrations_unchecked(project, env, args)?;
        Ok(Request {
            env,
            recipients,
            format,
            upload,
        })
    }
}

/// The tables left out ([`warn_left_out`]); and a database with no tables
/// is backed up ("0 tables, 0 rows", GOOD), and warned of, under -q too: for a remote database, a wrong `database_id`
/// or an emptied database is what a careful operator needs to hear. A
/// local D1 with none was given its schema first ([`Schema::bootstrap`]),
/// which said so. A restore's safety backup of an empty target is routine,
/// and so is a migration's of a new database (no tables, never backed up
/// here: its first migrate, a first deploy): its plan lists every
/// migration as pending (no `d1_migrations` either), and its backup's line
/// says the database is new ([`say_taken_for`]); whether it is one is
/// returned. One backed up before is one emptied since: warned.
fn warn_no_tables_or_left_out(
    project: &Project,
    env: &Environment,
    args: &BackupArgs,
    (catalog, scope): (&Catalog, &ExportScope),
) -> bool {
    warn_left_out(catalog, scope);
    let no_tables = catalog.user_tables().next().is_none();
    let new_database =
        no_tables && args.taken_for == TakenFor::Migration && !backed_up_before(project, env);
    if !no_tables || args.taken_for == TakenFor::RestoreSafety || new_database {
        return new_database;
    }
    let check = match env.location {
        Location::Remote => format!(
            "check {}'s database_id in the wrangler configuration ({}): another database's, or \
             one emptied since its last backup",
            env.name, env.database_id
        ),
        Location::Local => "check that .wrangler/state holds this checkout's local D1 (a \
                             `rm -rf .wrangler`, or state copied from another checkout, leaves \
                             one without them)"
            .to_owned(),
    };
    crate::warn!(
        "{} ({}) has no tables: this backup holds none, and is no copy of the environment's \
         data. If it should have tables, {check}",
        env.database_name,
        env.name,
    );
    false
}

/// `--dry-run` before `npm ci` has run: the plan, without the table list
/// that reading the schema would decide.
fn dry_run_without_wrangler(
    project: &Project,
    args: &BackupArgs,
    env: &Environment,
    names: &BackupNames,
    cmds: &Commands,
    local_file: Option<&Path>,
) {
    let catalog_query = cmds.query_json(env, "read the schema (read-only)", CATALOG_SQL);
    let mut plan = Plan::new(env, args, names, cmds, None, false, None, local_file);
    plan.lines.insert(0, project.plan_line());
    crate::say!("{plan}");
    crate::say!(
        "wrangler is not installed: a real run first runs `npm ci`, then reads the schema\n\
         with `{catalog_query}` to decide the table list.\nDry run: nothing was changed."
    );
}

/// Where the database's schema is read from, and its export made.
struct Schema<'a> {
    wrangler: &'a Wrangler,
    cmds: &'a Commands,
    env: &'a Environment,
    /// The local D1's SQLite file, when the export reads it directly.
    local_file: Option<&'a Path>,
}

impl Schema<'_> {
    /// Creates the local D1's schema from the migrations (a fresh clone's
    /// first backup), then reads it and decides the scope again.
    fn bootstrap(&self, project: &Project, args: &BackupArgs) -> Result<(Catalog, ExportScope)> {
        // The summary after it counts d1_migrations' rows: said so here.
        let said = "local D1 has no tables: creating its schema from migrations/ first, so this \
                    backup holds no rows but d1_migrations' records of the migrations applied";
        match backed_up_before(project, self.env) {
            // A warning, under -q too: a database backed up before had its
            // file removed, and the backup made now holds none of its rows.
            true => crate::warn!(
                "the {said} (this database was backed up before: if the local D1 had rows, they \
                 are gone, its file under .wrangler/state removed or emptied)"
            ),
            // A fresh clone's first backup: routine, silent under -q.
            false => crate::say!("The {said} (a fresh clone's first backup)."),
        }
        self.wrangler.run(&self.cmds.migrations_apply(self.env))?;
        let catalog = self.reader().catalog("read the schema (read-only)")?;
        let scope =
            ExportScope::plan(&catalog, &args.tables).map_err(crate::exit::could_not_run)?;
        scope
            .refuse_missing_parents(&catalog)
            .map_err(crate::exit::could_not_run)?;
        Ok((catalog, scope))
    }

    /// A remote database's Time Travel bookmark, taken before the export.
    fn bookmark(&self) -> Result<Option<String>> {
        match self.env.location {
            Location::Remote => Ok(Some(time_travel_bookmark(
                self.wrangler,
                &self.cmds.time_travel_info(self.env),
            )?)),
            Location::Local => Ok(None),
        }
    }

    /// The call that reads a remote database's Time Travel bookmark.
    fn bookmark_reader(&self) -> Option<Invocation> {
        (self.env.location == Location::Remote).then(|| self.cmds.time_travel_info(self.env))
    }

    /// Each FTS5 table's settings (a rank function, secure-delete, ...),
    /// which its `_config` shadow table keeps and no export carries, into
    /// the scope's virtual tables, for the manifest to record and a restore
    /// to set again. One read-only query of a statement per table, only
    /// when there is one. Never fails the backup: a read refused (D1 may
    /// refuse one of a shadow table) or a setting no restore could set is
    /// left out with a warning naming the table and the key.
    fn read_fts_settings(&self, scope: &mut ExportScope) -> Result<()> {
        let tables: Vec<usize> = { scope.virtual_tables.iter().enumerate() }
            .filter(|(_, vt)| vt.keeps_settings())
            .map(|(i, _)| i)
            .collect();
        if tables.is_empty() {
            return Ok(());
        }
        let sql: Vec<String> = { tables.iter() }
            .map(|i| d1_core::catalog::FtsSetting::query(&scope.virtual_tables[*i].name))
            .collect();
        let json = unless_interrupted(self.reader().query(
            "read the FTS5 tables' settings (read-only)",
            &sql.join("; "),
        ))?;
        let names: Vec<&str> = { tables.iter() }
            .map(|i| scope.virtual_tables[*i].name.as_str())
            .collect();
        let (settings, warnings) = fts_settings_read(&names, json);
        for warning in warnings {
            crate::warn!("{warning}");
        }
        for (i, settings) in tables.into_iter().zip(settings) {
            scope.virtual_tables[i].settings = settings;
        }
        Ok(())
    }

    /// A backup of chosen tables with rows: the `sqlite_sequence` counters
    /// of those that are AUTOINCREMENT, which the export leaves out; read
    /// before it, so never above what it holds. `None` otherwise.
    fn sequences(
        &self,
        args: &BackupArgs,
        (catalog, scope): (&Catalog, &ExportScope),
    ) -> Result<Option<BTreeMap<String, i64>>> {
        if args.tables.is_empty() {
            return Ok(None);
        }
        let counted = catalog.autoincrement_tables(&scope.data_tables);
        if args.schema_only || counted.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = counted
            .iter()
            .map(|t| d1_core::statement::quote_literal(t))
            .collect();
        let rows = self.reader().rows(
            "read the chosen tables' AUTOINCREMENT counters (read-only)",
            &format!(
                "SELECT name, seq FROM sqlite_sequence WHERE name IN ({})",
                names.join(", ")
            ),
            "reading sqlite_sequence gave no rows",
        )?;
        Ok(Some(
            rows.iter()
                .filter_map(|r| {
                    Some((r.get("name")?.as_str()?.to_owned(), r.get("seq")?.as_i64()?))
                })
                .filter(|(name, seq)| *seq >= 0 && counted.contains(&name))
                .collect(),
        ))
    }

    /// The tables this backup holds rows of whose rowids no export carries
    /// (no `INTEGER PRIMARY KEY`), that triggers keep elsewhere, and that
    /// have had rows deleted (their rowids are not 1 to their count): a
    /// restore renumbers them. One read-only query, only when the schema
    /// has such a table.
    fn rowids_renumbered(
        &self,
        args: &BackupArgs,
        (catalog, scope): (&Catalog, &ExportScope),
    ) -> Result<Option<BTreeMap<String, Vec<String>>>> {
        if args.schema_only {
            return Ok(None);
        }
        let kept: Vec<d1_core::catalog::RowidsKept> =
            d1_core::catalog::rowids_kept_by_triggers(&catalog.schema_statements())?
                .into_iter()
                .filter(|k| scope.data_tables.contains(&k.table))
                .collect();
        if kept.is_empty() {
            return Ok(None);
        }
        let sql = kept
            .iter()
            .map(|k| {
                format!(
                    "SELECT {} AS name, count(*) = coalesce(max(rowid), 0) AS dense FROM {}",
                    d1_core::statement::quote_literal(&k.table),
                    d1_core::statement::quote_ident(&k.table)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows = self.reader().rows(
            "read whether rows were deleted from tables whose rowids triggers keep (read-only)",
            &sql,
            "reading the rowids gave no rows",
        )?;
        let sparse: Vec<&str> = rows
            .iter()
            .filter(|r| r.get("dense").and_then(|d| d.as_i64()) == Some(0))
            .filter_map(|r| r.get("name")?.as_str())
            .collect();
        let renumbered: BTreeMap<String, Vec<String>> = kept
            .into_iter()
            .filter(|k| sparse.contains(&k.table.as_str()))
            .map(|k| (k.table, k.triggers))
            .collect();
        Ok((!renumbered.is_empty()).then_some(renumbered))
    }

    /// A remote backup's whole REALs in columns that keep them as REALs
    /// (`Manifest::whole_reals`), per table: D1's export writes each as
    /// an integer, said in a warning. Read-only, one query (more past 400
    /// tables or D1's statement limit), only when the schema has such a
    /// column. Recorded when counted, empty where there are none, so that
    /// a reader tells "none" from "not counted". The count never fails a
    /// backup: any error is a warning, and nothing is recorded; nor is a
    /// count that left a table out, though what it found is warned of. An
    /// interrupt is no such error: it stops the backup
    /// ([`unless_interrupted`]).
    fn whole_reals(
        &self,
        args: &BackupArgs,
        (catalog, scope): (&Catalog, &ExportScope),
    ) -> Result<Option<BTreeMap<String, u64>>> {
        if args.schema_only || self.env.location != Location::Remote {
            return Ok(None);
        }
        let (whole, complete) = match unless_interrupted(self.count_whole_reals(catalog, scope))? {
            Ok(counted) => counted,
            Err(e) => {
                crate::warn!(
                    "whole REALs not counted: {e:#}; the backup goes on, and a restore of it \
                     cannot say whether its export wrote any as integers (README, Whole REALs \
                     in a remote backup)"
                );
                return Ok(None);
            }
        };
        if !whole.is_empty() {
            crate::warn!("{}", whole_reals_said(&whole));
        }
        // A count that left a table out is not a count of the backup's.
        Ok(complete.then_some(whole))
    }

    /// [`Self::whole_reals`]'s queries, their counts over zero, and
    /// whether every table was counted.
    fn count_whole_reals(
        &self,
        catalog: &Catalog,
        scope: &ExportScope,
    ) -> Result<(BTreeMap<String, u64>, bool)> {
        let columns = d1_core::catalog::columns_keeping_whole_reals(
            &catalog.schema_statements(),
            &scope.data_tables,
        )?;
        let limit = d1_core::gate::D1_STATEMENT_LIMIT as usize - 1_000;
        let made = d1_core::catalog::whole_reals_queries(&columns, limit);
        if !made.left_out.is_empty() {
            let tables: Vec<_> = made
                .left_out
                .iter()
                .map(|t| d1_core::names::shown_name(t))
                .collect();
            crate::warn!(
                "whole REALs not counted in {}: the query alone would pass D1's statement \
                 limit; the backup goes on, and a restore of it cannot say whether its export \
                 wrote any there as integers (README, Whole REALs in a remote backup)",
                crate::out::listed(&tables, "table")
            );
        }
        let complete = made.left_out.is_empty();
        let whole = read_whole_reals(&self.reader(), &made.queries)?;
        Ok((whole, complete))
    }

    /// What a remote backup's export writes otherwise than the database
    /// holds it, per table and column, said in a warning naming the
    /// columns and counts, never a value, each `None` where not counted:
    /// text that is not UTF-8 (`Manifest::replaced_text`; D1 hands text to
    /// JavaScript, which decodes such bytes as U+FFFD), and text holding a
    /// line break and the two characters `\n` (or `\r`;
    /// `Manifest::ambiguous_text`: the export writes a value with a line
    /// break as `replace('…\n…','\n',char(10))`, which turns that `\n`
    /// into a line break too). Looked for after the export, only in the
    /// tables whose rows it wrote with U+FFFD (`holding_fffd`, from its
    /// summary), or with `replace(` (`holding_line_breaks`): any other
    /// holds none, and with none no query is run; a table of both is asked
    /// both in the same query. Read-only, one pass over each such table
    /// (more queries past 400 tables or D1's statement limit). As
    /// [`Self::whole_reals`]: never fails a backup, recorded only when
    /// complete, empty where there are none.
    fn text_written_otherwise(
        &self,
        args: &BackupArgs,
        (catalog, scope): (&Catalog, &ExportScope),
        summary: &dump::DumpSummary,
    ) -> Result<[Option<PerColumn>; 2]> {
        if args.schema_only || self.env.location != Location::Remote {
            return Ok([None, None]);
        }
        // An FTS5 table's rows, written as its shadow table's, are looked
        // for, warned of and recorded under its own name.
        let holding = [&summary.holding_fffd, &summary.holding_line_breaks]
            .map(|h| h.iter().map(|t| scope.read_as(t).to_owned()).collect());
        let holding = [&holding[0], &holding[1]];
        Ok(
            match unless_interrupted(self.count_text_written_otherwise(catalog, scope, holding))? {
                Ok(looked) => looked.map(|(found, looks, complete)| {
                    if !found.is_empty() {
                        crate::warn!("{}", (looks.said)(&found));
                    }
                    complete.then_some(found)
                }),
                Err(e) => {
                    let all: Vec<String> = holding.iter().flat_map(|h| h.iter().cloned()).collect();
                    not_looked_for(&all, holding, &format!("{e:#}"));
                    [None, None]
                }
            },
        )
    }

    /// [`Self::text_written_otherwise`]'s queries, of the tables in
    /// `holding` only ([`TEXT_LOOKS`], in order), the values they found,
    /// and whether every table was read. A query D1 fails is tried again
    /// table by table: a table whose own read fails is left out, named in
    /// a warning, and the others are counted.
    fn count_text_written_otherwise(
        &self,
        catalog: &Catalog,
        scope: &ExportScope,
        holding: [&std::collections::BTreeSet<String>; 2],
    ) -> Result<[(PerColumn, &'static TextLook, bool); 2]> {
        let exported = match holding.iter().all(|h| h.is_empty()) {
            true => Vec::new(),
            false => d1_core::catalog::columns_exported(
                &catalog.schema_statements(),
                &{ scope.data_tables.iter() }
                    .map(|t| scope.read_as(t).to_owned())
                    .collect::<Vec<_>>(),
            )?,
        };
        let columns = holding.map(|h| {
            let mut columns = exported.clone();
            columns.retain(|(t, _)| h.iter().any(|h| h.eq_ignore_ascii_case(t)));
            columns
        });
        for (look, columns) in TEXT_LOOKS.iter().zip(&columns) {
            say_where_text_is_looked_for(look, columns);
        }
        let limit = d1_core::gate::D1_STATEMENT_LIMIT as usize - 1_000;
        let [not_utf8, line_breaks] = &columns;
        let made = d1_core::catalog::exported_text_queries(not_utf8, line_breaks, limit);
        if !made.left_out.is_empty() {
            not_looked_for(
                &made.left_out,
                holding,
                "the query alone would pass D1's statement limit",
            );
        }
        let mut found = [PerColumn::new(), PerColumn::new()];
        let mut failed = Vec::new();
        for (sql, tables) in made.queries.iter().zip(&made.tables) {
            let Err(e) = unless_interrupted(read_text(&self.reader(), &columns, sql, &mut found))?
            else {
                continue;
            };
            if let [table] = &tables[..] {
                failed.push((table.clone(), e));
                continue;
            }
            // One table's read failing (say D1's limits) fails the query
            // of all it joins: read each on its own.
            for table in tables {
                let [not_utf8, line_breaks] = columns.each_ref().map(|columns| {
                    { columns.iter() }
                        .filter(|(t, _)| t == table)
                        .cloned()
                        .collect::<Vec<_>>()
                });
                let one = d1_core::catalog::exported_text_queries(&not_utf8, &line_breaks, limit);
                let sql = one.queries.first().context("no query for a table")?;
                if let Err(e) =
                    unless_interrupted(read_text(&self.reader(), &columns, sql, &mut found))?
                {
                    failed.push((table.clone(), e));
                }
            }
        }
        if let Some((_, e)) = failed.last() {
            let tables: Vec<String> = failed.iter().map(|(t, _)| t.clone()).collect();
            not_looked_for(&tables, holding, &format!("{e:#}"));
        }
        let unread: Vec<&String> = made
            .left_out
            .iter()
            .chain(failed.iter().map(|(t, _)| t))
            .collect();
        let mut looks = TEXT_LOOKS.iter();
        Ok([0, 1].map(|n| {
            let complete = !unread
                .iter()
                .any(|t| columns[n].iter().any(|(c, _)| c == *t));
            let look = looks.next().expect("a look of each");
            (std::mem::take(&mut found[n]), look, complete)
        }))
    }

    /// The schema is read from the local file when there is one; a fresh
    /// clone's first backup has none until wrangler makes it.
    fn reader(&self) -> DatabaseReader<'_> {
        match self.local_file {
            Some(file) if file.is_file() => {
                DatabaseReader::File(file.to_path_buf(), &self.env.name)
            }
            _ => DatabaseReader::Wrangler(self.wrangler, self.cmds, self.env),
        }
    }

    /// Reads the schema (read-only) unless the caller just read it under the
    /// lock (`known`), decides the export's scope and prints the plan: whole
    /// with `--dry-run` or `-v`, else in two lines. Returns the schema, the
    /// scope, the plan and whether the local D1 must first be created from
    /// the migrations.
    fn plan(
        &self,
        project: &Project,
        args: &BackupArgs,
        names: &BackupNames,
        known: Option<Catalog>,
    ) -> Result<(Catalog, ExportScope, Plan, bool)> {
        let env = self.env;
        let catalog_query = self
            .cmds
            .query_json(env, "read the schema (read-only)", CATALOG_SQL);
        let absent = known.is_none() && local_d1_absent(project, env, args);
        let schema_read = self.reader();
        let read_through_wrangler =
            !absent && known.is_none() && matches!(schema_read, DatabaseReader::Wrangler(..));
        let catalog = match (known, absent) {
            (Some(catalog), _) => catalog,
            (None, true) => Catalog::default(),
            (None, false) => schema_read.catalog("read the schema (read-only)")?,
        };
        let bootstrap = bootstraps(project, env, args, &catalog);
        refuse_bootstrap_migrations(project, env, bootstrap)?;
        let scope =
            ExportScope::plan(&catalog, &args.tables).map_err(crate::exit::could_not_run)?;
        scope
            .refuse_missing_parents(&catalog)
            .map_err(crate::exit::could_not_run)?;
        let mut plan = Plan::new(
            env,
            args,
            names,
            self.cmds,
            Some(&scope),
            bootstrap,
            read_through_wrangler.then_some(&catalog_query),
            self.local_file,
        );
        plan.lines.insert(0, project.plan_line());
        if args.dry_run || crate::out::verbose() {
            crate::say!("{plan}");
        } else {
            // A real run says what it does in one line (the repository too
            // when the backup directory does not name it, and not for
            // another task, which named it); --dry-run or -v show the whole
            // plan with every wrangler command.
            if !args.taken_for.is_a_task() && project.plan_line_tells_more_than(&names.dir) {
                crate::say!("{}", project.plan_line());
            }
            // The file's name is known once it is claimed (another backup of
            // the same minute takes `-2`): "Backup written" names it.
            // As `list` shows it: `full (customers, companies)`.
            let mode = match scope.chosen.as_slice() {
                [] => mode_name(args.mode()).to_owned(),
                tables => format!(
                    "{} ({})",
                    mode_name(args.mode()),
                    tables
                        .iter()
                        .map(|t| d1_core::names::shown_name(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            crate::say!(
                "Backing up {} -> {} ({} D1), {mode}, into {}",
                env.name,
                env.database_name,
                env.location,
                names.dir.display()
            );
        }
        Ok((catalog, scope, plan, bootstrap))
    }
}

/// Refuses (exit 3), a dry run too and before the local D1 is written, a
/// migration that migrate's guards refuse (one that writes d1_migrations),
/// which a fresh clone's first backup would apply to give the local D1
/// its schema ([`Schema::bootstrap`]): it applied every migration
/// unguarded (NL).
fn refuse_bootstrap_migrations(
    project: &Project,
    env: &Environment,
    bootstrap: bool,
) -> Result<()> {
    if !bootstrap {
        return Ok(());
    }
    let dir = project.config_dir.join(&env.migrations_dir);
    let files = crate::steps::migrations::migration_files(&dir)?;
    let digests = crate::steps::migrations::digests(&dir, &files);
    let by = crate::steps::migrations::FromNothing::FirstBackup;
    crate::steps::migrations::refuse_what_cannot_apply_to_empty(env, &dir, (files, digests), by)
}

/// Whether `backup` first gives the local D1 its schema from migrations/:
/// only a database with nothing of the user's in it (a fresh clone's, or
/// one whose file was removed); one of views or triggers alone is backed
/// up as it is, never written to. Not without the migrations directory:
/// an empty database is then backed up as it is (MB).
fn bootstraps(project: &Project, env: &Environment, args: &BackupArgs, catalog: &Catalog) -> bool {
    args.bootstrap_local
        && env.location == Location::Local
        && project.config_dir.join(&env.migrations_dir).exists()
        && catalog.user_tables().next().is_none()
        && !catalog.objects.iter().any(|o| {
            matches!(o.kind.as_str(), "view" | "trigger" | "index")
                && !o.name.starts_with("sqlite_")
                && !o.name.starts_with("_cf_")
        })
}

/// A remote database's bookmark, read beside the schema
/// ([`crate::edge::wrangler::Beside`]); without one, it is read in turn.
struct EarlyBookmark(Option<crate::edge::wrangler::Beside<String>>);

impl EarlyBookmark {
    /// Starts reading the bookmark of a remote database, if `wanted`, while
    /// its schema is read: both come before the export, and neither needs
    /// the other. Not with a `wrangler login`, which two wranglers at once
    /// can break.
    fn start(source: &Schema<'_>, wanted: bool) -> EarlyBookmark {
        let reader = source.bookmark_reader().filter(|_| wanted);
        EarlyBookmark(reader.and_then(|info| {
            crate::edge::wrangler::Beside::start(source.wrangler, info, time_travel_bookmark)
        }))
    }

    /// The bookmark read early, or else read now (`None` for local D1).
    fn finish_or(self, source: &Schema<'_>) -> Result<Option<String>> {
        match self.0 {
            Some(beside) => beside.finish().map(Some),
            None => source.bookmark(),
        }
    }
}

/// What the export left besides the file: the sealer's digests and its
/// compressed copy, or, for a plain remote export, what was counted and
/// hashed as it arrived.
struct Exported {
    sealed: Option<stored::Sealed>,
    arrived: Option<Arrived>,
    native: Native,
    /// The scratch load made as a plain remote export arrived.
    preloaded: Option<crate::steps::verify::Preloaded>,
}

/// The export's file, whole on disk: synced, the private directory
/// wrangler wrote through removed, and an encrypted one's age header
/// checked against its recipients.
fn written(
    partial: &TempFile,
    partial_file: std::fs::File,
    private: crate::edge::wrangler::PrivateDir,
    (format, recipients): (Format, usize),
) -> Result<()> {
    partial_file.sync_all()?;
    drop(partial_file);
    drop(private);
    fsutil::sync_file(partial.path())?;
    if format == Format::ZstdAge {
        stored::check_age_header(partial.path(), recipients)?;
    }
    Ok(())
}

/// Exports into the backup's private temporary file, sealed on the way
/// when the format says so, and synced; the file is not yet named.
fn export(
    args: &BackupArgs,
    request: &Request<'_>,
    names: &BackupNames,
    source: &Schema<'_>,
    (catalog, scope): (&Catalog, &ExportScope),
    (age, key_rule): (&stored::Age, Option<&d1_core::app::KeyRecord>),
) -> Result<(TempFile, Exported)> {
    let (env, format, recipients) = (request.env, request.format, &request.recipients);
    let (partial, mut partial_file) = TempFile::create_open(names.partial.clone())?;
    // wrangler writes by name, and follows links: it writes into a directory
    // that only this user can enter, never to a name in the backup
    // directory, which others may be able to change.
    let private = crate::edge::wrangler::PrivateDir::create("export")?;
    // wrangler writes into a FIFO; the export's progress is the size of
    // the backup's file, which grows as the download arrives.
    let export = |output: &Path| {
        let invocation = source.cmds.export(env, output, args.mode(), &scope.tables);
        source
            .wrangler
            .run_watching(&invocation, Some(partial.path()))
    };
    let mut arrived: Option<Arrived> = None;
    let mut preloaded = None;
    let mut native = Native::default();
    let sealed = match (format, source.local_file) {
        (_, Some(file)) => {
            let (sealed, exported) = export_local_into(
                (env, file, args.mode(), &scope.tables),
                (&partial, &mut partial_file),
                (format, recipients, age),
            )?;
            // Found in the export's own pass: the private file it wrote
            // is removed, unnamed and unrecorded.
            if !exported.oversized.is_empty() {
                return Err(values_over_the_limit(env, args, &exported.oversized));
            }
            native = exported;
            sealed
        }
        (_, None) => {
            // Written as it arrives (through the handle that created the
            // backup's file, or sealed on the way), hashed, counted and
            // surveyed on the way, and loaded into the verification's
            // scratch database when its order allows.
            let fifo = private.path().join("export.fifo");
            let plan = (args, names, catalog, scope, key_rule);
            let (came, sealed, loaded) = match format {
                Format::Sql => {
                    let (came, (), loaded) =
                        arrive(partial_file.try_clone()?, &fifo, plan, true, || {
                            export(&fifo)
                        })?;
                    (came, None, loaded)
                }
                Format::Zstd | Format::ZstdAge => {
                    let sealer = Sealer::create(partial.path(), format, recipients, age)?;
                    // An encrypted backup's SQL never touches the disk.
                    let on_disk = format == Format::Zstd;
                    let (came, sealed, loaded) =
                        arrive(sealer, &fifo, plan, on_disk, || export(&fifo))?;
                    (came, Some(sealed), loaded)
                }
            };
            arrived = Some(came);
            preloaded = loaded;
            sealed
        }
    };
    written(&partial, partial_file, private, (format, recipients.len()))?;
    Ok((
        partial,
        Exported {
            sealed,
            arrived,
            native,
            preloaded,
        },
    ))
}

/// What an export through the FIFO is checked against as it arrives.
type ArrivalPlan<'a> = (
    &'a BackupArgs,
    &'a BackupNames,
    &'a Catalog,
    &'a ExportScope,
    Option<&'a d1_core::app::KeyRecord>,
);

/// Runs `export` into the FIFO `fifo` while its bytes go on to `out` (the
/// backup's file, or the sealer writing it), hashed, counted and surveyed
/// as they arrive, and loaded into the verification's scratch database (on
/// disk when `on_disk`) when the export's order allows.
fn arrive<O: stored::Drain>(
    out: O,
    fifo: &Path,
    (args, names, catalog, scope, key_rule): ArrivalPlan<'_>,
    on_disk: bool,
    export: impl FnOnce() -> Result<()>,
) -> Result<(Arrived, O::Done, Option<crate::steps::verify::Preloaded>)> {
    let options = survey_options(args.mode(), scope);
    let (preload, forward) = start_preload(args, options.as_ref(), names, catalog, on_disk).unzip();
    let mut arriving = Arriving::start(
        out,
        catalog.create_statements(),
        key_rule.cloned(),
        options,
        forward,
    );
    // Taken inside a rehearsal: the dump itself says so on its first line,
    // so a copy of the file without its manifest is still known for one.
    if let Some(mark) = crate::steps::rehearsals::dump_mark() {
        std::io::Write::write_all(&mut arriving, mark.as_bytes())?;
    }
    let (arrived, done) = stored::export_through_fifo(fifo, arriving, export)?;
    let preloaded = preload.and_then(crate::steps::verify::Preload::finish);
    Ok((arrived, done, preloaded))
}

/// The scratch load of a whole export as it arrives, for its verification,
/// when its survey options allow one (no virtual table to stage). Only a
/// shortcut: a load that cannot start leaves the verification to load the
/// file, as it always can.
fn start_preload(
    args: &BackupArgs,
    options: Option<&repair::Options>,
    names: &BackupNames,
    catalog: &Catalog,
    on_disk: bool,
) -> Option<(
    crate::steps::verify::Preload,
    std::sync::mpsc::SyncSender<d1_core::statement::Packed>,
)> {
    if options != Some(&repair::Options::default()) || !args.tables.is_empty() {
        crate::detail!(
            "Not loading the export as it arrives: {}; the verification loads it afterwards.",
            match options {
                _ if !args.tables.is_empty() => "a backup of chosen tables",
                None => "a data-only backup, whose schema its migrations make",
                Some(_) => "its virtual tables are recreated in a second pass",
            }
        );
        return None;
    }
    crate::steps::verify::Preload::start(&names.dir, catalog.exported_tables(), on_disk)
        .inspect_err(|e| crate::detail!("Not loading the export as it arrives: {e:#}."))
        .ok()
}

/// The native export of a local D1 into the backup's file: written through
/// the handle that created it, or sealed on the way. Returns the sealer's
/// digests, if sealed, and the values written exactly where D1's export
/// would change them.
fn export_local_into(
    (env, file, mode, tables): (&Environment, &Path, ExportMode, &[String]),
    (partial, partial_file): (&TempFile, &mut std::fs::File),
    (format, recipients, age): (Format, &[String], &stored::Age),
) -> Result<(Option<stored::Sealed>, Native)> {
    if format == Format::Sql {
        let native = export_local_file(env, file, mode, tables, partial, partial_file)?;
        return Ok((None, native));
    }
    let mut sealer = Sealer::create(partial.path(), format, recipients, age)?;
    let exported = export_local_file(env, file, mode, tables, partial, &mut sealer);
    let fed = match &exported {
        Ok(_) => Ok(()),
        Err(_) => Err(std::io::Error::other("the export failed")),
    };
    let sealed = sealer
        .finish(fed)
        .map_err(|e| no_room_said(e, partial.path()));
    match (exported, sealed) {
        // The sealer's full disk cut the export short: it is the cause.
        (Err(_), Err(e)) if crate::edge::fsutil::disk_full(&e) => Err(e),
        (exported, sealed) => {
            let native = exported?;
            Ok((Some(sealed?), native))
        }
    }
}

/// The options the backup's verification will survey it under, as far as
/// they are known before the manifest is written: a data-only backup's
/// depend on the migrations its rows record, so it is surveyed by the
/// verification itself. The verification uses a survey made under other
/// options than its own only to throw it away.
fn survey_options(mode: ExportMode, scope: &ExportScope) -> Option<repair::Options> {
    (mode != ExportMode::DataOnly).then(|| repair::Options {
        virtual_tables: match scope.works_around_virtual_tables() {
            true => scope.virtual_tables.clone(),
            false => Vec::new(),
        },
        ..repair::Options::default()
    })
}

/// Exports, counts and hashes the backup, names it and writes its
/// manifest: everything up to its verification.
#[allow(clippy::too_many_arguments)]
fn write<'a>(
    sh: &Shell,
    project: &Project,
    args: &BackupArgs,
    taken: &mut Taken<'_>,
    (names, lock): (&BackupNames, &BackupLock),
    source: &Schema<'_>,
    catalog: &Catalog,
    age: &'a stored::Age,
) -> Result<(PathBuf, Manifest, PathBuf, StoredAs<'a>)> {
    let (request, scope) = (taken.request, taken.scope);
    let key_rule = project.settings()?.app.encryption_key;
    let (partial, exported) = export(
        args,
        request,
        names,
        source,
        (catalog, scope),
        (age, key_rule.as_ref()),
    )?;
    let mut arrived = exported.arrived;
    let stored = StoredAs {
        format: request.format,
        sealed: exported.sealed,
        age,
        arrival: crate::steps::verify::OnArrival {
            surveyed: arrived.as_mut().and_then(|a| a.survey.take()),
            preloaded: exported.preloaded,
            source_rows: { exported.native.source_rows }
                .map(crate::steps::verify::SourceRows::Read)
                .or_else(|| via_wrangler_source(project, request.env, args)),
        },
        exact_values: exported.native.exact_values,
    };
    let (summary, facts) = count_and_hash(
        args,
        partial.path(),
        arrived,
        &stored,
        (catalog, scope),
        key_rule.as_ref(),
    )?;
    taken.text_written_otherwise =
        source.text_written_otherwise(args, (catalog, scope), &summary)?;
    let file = claim_name(partial, names, lock)?;
    let (manifest, manifest_path) =
        record(sh, project, args, taken, &file, facts, &stored, summary)?;
    lock.placing(None)?;
    Ok((file, manifest, manifest_path, stored))
}

/// Counts, hashes and checks the export: from what was counted as it
/// arrived, or by reading the file back. Refuses an export that is not a
/// D1 dump, or that lacks a table the schema has.
fn count_and_hash(
    args: &BackupArgs,
    partial: &Path,
    arrived: Option<Arrived>,
    stored: &StoredAs<'_>,
    (catalog, scope): (&Catalog, &ExportScope),
    key_rule: Option<&d1_core::app::KeyRecord>,
) -> Result<(dump::DumpSummary, (String, u64))> {
    let (summary, facts) = match arrived {
        Some(arrived) => {
            // Only wrangler writes through the FIFO an export arrives by.
            check_head(
                crate::steps::rehearsals::past_mark(&arrived.head),
                WrittenBy::Wrangler,
            )?;
            let summary = arrived
                .summary
                .with_context(|| format!("reading {}", WrittenBy::Wrangler.export()))?;
            let plaintext = (arrived.sha256, arrived.bytes);
            let facts = match &stored.sealed {
                None => plaintext,
                // The file holds the sealed bytes; the sealer hashed the
                // same plaintext as the arrival did.
                Some(sealed) => {
                    if sealed.plaintext != plaintext {
                        bail!(
                            "the export's bytes were hashed twice as they arrived, and the hashes differ"
                        );
                    }
                    fsutil::sha256_file(partial)?
                }
            };
            (in_scope(summary, scope, args.mode()), facts)
        }
        None => (
            summarize(
                &stored.source(partial)?,
                catalog,
                scope,
                args.mode(),
                key_rule,
            )?,
            fsutil::sha256_file(partial)?,
        ),
    };
    check_complete(&summary, catalog, scope, args.mode())?;
    Ok((summary, facts))
}

/// What a backup learnt while it was taken, for its manifest.
struct Taken<'a> {
    request: &'a Request<'a>,
    started: DateTime<Utc>,
    bookmark: Option<String>,
    scope: &'a ExportScope,
    /// A backup of chosen tables: their AUTOINCREMENT counters.
    sequences: Option<BTreeMap<String, i64>>,
    /// The tables a restore renumbers, by the triggers that keep their rowids.
    rowids_renumbered: Option<BTreeMap<String, Vec<String>>>,
    /// A remote backup: the whole REALs its export writes as integers.
    whole_reals: Option<BTreeMap<String, u64>>,
    /// A remote backup: per table and column, its text values that are
    /// not UTF-8, which its export writes with U+FFFD, and those holding a
    /// line break and `\n` (or `\r`), whose `\n` its export turns into a
    /// line break ([`TEXT_LOOKS`]' order); looked for once the export has
    /// shown where (`write`).
    text_written_otherwise: [Option<PerColumn>; 2],
}

/// Counts per table, per column.
pub type PerColumn = BTreeMap<String, BTreeMap<String, u64>>;

/// One of the looks at text a remote backup's export writes otherwise
/// ([`TEXT_LOOKS`]).
struct TextLook {
    /// What it looks for, as `-v` and its warnings name it.
    what: &'static str,
    /// Where the export shows it, said where it looks nowhere.
    shown_by: &'static str,
    /// Why a table's export shows it.
    why: &'static str,
    /// Its README section.
    section: &'static str,
    /// What it cannot say of a table it did not look in.
    unsaid: &'static str,
    /// Its warning of what it found.
    said: fn(&PerColumn) -> String,
}

/// The looks after a remote backup's export: text that is not UTF-8
/// (`Manifest::replaced_text`), and text with a line break and `\n`
/// (`Manifest::ambiguous_text`).
const TEXT_LOOKS: [TextLook; 2] = [
    TextLook {
        what: "text that is not UTF-8",
        shown_by: "the export holds no U+FFFD, which D1's export writes for every such byte",
        why: "whose rows the export wrote with U+FFFD",
        section: "Text that is not UTF-8 in a remote backup",
        unsaid: "whether its export replaced any there with U+FFFD",
        said: replaced_text_said,
    },
    TextLook {
        what: "text with a line break and `\\n`",
        shown_by: "the export wrote no line break in text, which D1's export wraps in `replace(`",
        why: "whose rows the export wrote with `replace(`",
        section: "Text with a line break and `\\n` in a remote backup",
        unsaid: "whether its export turned a `\\n` there into a line break",
        said: ambiguous_text_said,
    },
];

/// Says, with `-v`, where `look` looks: in the tables of `columns`, whose
/// rows the export wrote so, or nowhere, none holding any.
fn say_where_text_is_looked_for(look: &TextLook, columns: &[(String, Vec<String>)]) {
    let mut what = look.what.to_owned();
    what[..1].make_ascii_uppercase();
    if columns.is_empty() {
        crate::detail!("{what}: none to look for ({}).", look.shown_by);
        return;
    }
    let tables: Vec<_> = { columns.iter() }
        .map(|(t, _)| d1_core::names::shown_name(t))
        .collect();
    crate::detail!(
        "{what}: looked for in {}, {}.",
        crate::out::listed(&tables, "table"),
        look.why
    );
}

/// Warns that of `tables`, those `holding` (in [`TEXT_LOOKS`]' order) were
/// not looked in, for `why`: the backup goes on.
fn not_looked_for(tables: &[String], holding: [&std::collections::BTreeSet<String>; 2], why: &str) {
    for (look, holding) in TEXT_LOOKS.iter().zip(holding) {
        let shown: Vec<_> = { tables.iter() }
            .filter(|t| holding.iter().any(|h| h.eq_ignore_ascii_case(t)))
            .map(|t| d1_core::names::shown_name(t))
            .collect();
        if !shown.is_empty() {
            crate::warn!(
                "{} not looked for in {}: {why}; the backup goes on, and cannot say {} (README, \
                 {})",
                look.what,
                crate::out::listed(&shown, "table"),
                look.unsaid,
                look.section
            );
        }
    }
}

/// Writes the manifest of the backup now named `file` and says what was
/// written.
#[allow(clippy::too_many_arguments)]
fn record(
    sh: &Shell,
    project: &Project,
    args: &BackupArgs,
    taken: &Taken<'_>,
    file: &Path,
    (sha256, bytes): (String, u64),
    stored: &StoredAs<'_>,
    summary: dump::DumpSummary,
) -> Result<(Manifest, PathBuf)> {
    let (request, env) = (taken.request, taken.request.env);
    let manifest = Manifest {
        created_at: taken.started,
        file: manifest::FileFacts {
            name: file_name(file),
            bytes,
            sha256,
        },
        sealed: stored.sealed.as_ref().map(|s| manifest::Sealed {
            format: request.format.label().to_owned(),
            recipients: request.recipients.clone(),
            plaintext_bytes: s.plaintext.1,
            plaintext_sha256: s.plaintext.0.clone(),
        }),
        migration_sha256: Some(migration_record(sh, project, env, &summary.migrations)?),
        wrangler_version: project.wrangler_version(),
        git_commit: git::describe_commit(sh, &project.config_dir),
        time_travel_bookmark: taken.bookmark.clone(),
        exact_values: (!stored.exact_values.is_empty()).then(|| stored.exact_values.clone()),
        sequences: taken.sequences.clone(),
        rowids_renumbered: taken.rowids_renumbered.clone(),
        whole_reals: taken.whole_reals.clone(),
        replaced_text: taken.text_written_otherwise[0].clone(),
        ambiguous_text: taken.text_written_otherwise[1].clone(),
        taken_after: taken_after_ahead(project, env)?,
        upload_asked: request.upload.is_some(),
        ..new_manifest(env, args, taken.scope, summary)
    };
    let manifest_path = recorded_or_removed(file, || write_manifest(file, &manifest))?;
    fsutil::sync_dir(&project.backup_dir);
    say_written(file, &manifest, &manifest_path);
    Ok((manifest, manifest_path))
}

/// The backups of `env`'s database here dated after now (by a clock that
/// ran fast, or this one set back), which the backup now recorded was
/// taken after: its manifest records them, so that it stays the newer
/// once the clock passes their dates ([`d1_core::order`]). They are told.
fn taken_after_ahead(project: &Project, env: &Environment) -> Result<Vec<manifest::TakenAfter>> {
    let now = Utc::now();
    let ahead: Vec<_> = crate::edge::inventory::scan(&project.backup_dir)?
        .into_iter()
        .filter(|e| {
            let m = &e.manifest;
            m.environment == env.name && m.database.name == env.database_name
        })
        .filter_map(|e| {
            Some((
                d1_core::wording::dated_ahead(e.manifest.created_at, now)?,
                e,
            ))
        })
        .collect();
    // Newest first: the first is the newest of them.
    if let Some((why, newest)) = ahead.first() {
        let others = match ahead.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        crate::warn!(
            "{}{others} is {why}: this backup, taken after it, records it in its manifest and \
             stays the newer once the clock passes that date. Check both clocks",
            newest.manifest.file.name
        );
    }
    Ok({ ahead.into_iter() }
        .map(|(_, e)| manifest::TakenAfter {
            file: e.manifest.file.name,
            sha256: e.manifest.file.sha256,
        })
        .collect())
}

/// The manifest's fields that follow from the request and the dump alone;
/// the caller adds the file's facts and what it learnt while taking it.
fn new_manifest(
    env: &Environment,
    args: &BackupArgs,
    scope: &ExportScope,
    summary: dump::DumpSummary,
) -> Manifest {
    Manifest {
        format_version: manifest::FORMAT_VERSION,
        tool: manifest::Tool::this(),
        created_at: Utc::now(),
        environment: env.name.clone(),
        database: manifest::Database {
            name: env.database_name.clone(),
            uuid: env.database_id.clone(),
            wrangler_env: env.wrangler_env.clone(),
            location: env.location.to_string(),
        },
        mode: mode_name(args.mode()).to_owned(),
        tables: scope.chosen.clone(),
        file: manifest::FileFacts {
            name: String::new(),
            bytes: 0,
            sha256: String::new(),
        },
        sealed: None,
        rows: summary.rows,
        statements: summary.statements,
        migration_sha256: None,
        migrations: summary.migrations,
        encryption_key: summary.encryption_key,
        wrangler_version: None,
        git_commit: None,
        time_travel_bookmark: None,
        virtual_tables: scope.works_around_virtual_tables().then(|| {
            manifest::VirtualTableWorkaround {
                note: "wrangler cannot export a database with virtual tables; the export named \
                       every other table and schema object instead, and each virtual table's DDL \
                       is recorded here for the restore to recreate and rebuild it"
                    .to_owned(),
                export_tables: scope.tables.clone(),
                tables: scope.virtual_tables.clone(),
            }
        }),
        // A manifest holds no unprintable characters (`Manifest::validate`),
        // and no secret: `list --json` prints it, and an upload copies it
        // in clear beside an encrypted backup.
        reason: args.reason.as_deref().map(recorded_reason),
        rehearsal: crate::steps::rehearsals::current(),
        verification: None,
        offsite: None,
        content: None,
        exact_values: None,
        // Recorded on every backup, empty where none: a manifest without
        // it is an earlier version's, whose export may have rounded them
        // unseen (`commands::verify`'s `unrecorded_wide_integers`).
        wide_integers: Some(Default::default()),
        sequences: None,
        rowids_renumbered: None,
        whole_reals: None,
        replaced_text: None,
        ambiguous_text: None,
        taken_after: Vec::new(),
        upload_asked: false,
    }
}

/// What integers beyond ±2^53 in an export of D1's may be, per table
/// (`Manifest::wide_integers`), and what keeps them exactly.
pub fn wide_integers_said(wide: &BTreeMap<String, u64>) -> String {
    let tables: Vec<String> = wide
        .iter()
        .map(|(t, n)| format!("{} ({n})", d1_core::names::shown_name(t)))
        .collect();
    format!(
        "integers at or beyond ±2^53 in this backup (or rounded past 2^63 into a REAL), in {}: \
         D1's export writes every number as JavaScript does, which rounds such an integer, so \
         each may differ from the \
         database's, and a restore of this backup brings back what it holds. A local backup \
         reads the SQLite file and keeps them exactly; of a remote database, Time Travel \
         (`cargo xtask time-travel restore`) brings them back exactly (README, Integers \
         beyond 2^53)",
        crate::out::listed(&tables, "table")
    )
}

/// What whole REALs an export of D1's wrote as integers, per table
/// (`Manifest::whole_reals`), and what keeps them.
pub fn whole_reals_said(whole: &BTreeMap<String, u64>) -> String {
    let tables: Vec<String> = whole
        .iter()
        .map(|(t, n)| format!("{} ({n})", d1_core::names::shown_name(t)))
        .collect();
    format!(
        "whole REALs (such as 3.0) in columns without a type, of type BLOB or a STRICT \
         table's ANY, in {}: D1's export writes each as an integer (3), so a restore of this \
         backup brings back an INTEGER there, equal in value. A local backup reads the SQLite \
         file and keeps them; of a remote database, Time Travel (`cargo xtask time-travel \
         restore`) brings them back as they were, or declare those columns REAL (README, Whole \
         REALs in a remote backup)",
        crate::out::listed(&tables, "table")
    )
}

/// What text that is not UTF-8 an export of D1's replaced, per table and
/// column (`Manifest::replaced_text`), and what keeps it. Names columns
/// and counts of rows, never a value.
pub fn replaced_text_said(replaced: &PerColumn) -> String {
    format!(
        "text that is not valid UTF-8 in {}: D1's export decodes it as JavaScript does, with \
         U+FFFD in place of each bad byte, so this backup holds another value there and a \
         restore of it brings that back. A local backup reads the SQLite file and keeps the \
         bytes; of a remote database, Time Travel (`cargo xtask time-travel restore`) brings \
         them back, or store such values as BLOBs (README, Text that is not UTF-8 in a remote \
         backup)",
        columns_counted(replaced)
    )
}

/// What text holding a line break and `\n` (or `\r`) an export of D1's
/// wrote so that a restore turns that `\n` into a line break, per table
/// and column (`Manifest::ambiguous_text`), and what keeps it. Names
/// columns and counts of rows, never a value.
pub fn ambiguous_text_said(ambiguous: &PerColumn) -> String {
    format!(
        "text holding a line break and the two characters `\\n` (or a carriage return and \
         `\\r`) in {}: D1's export writes such a value as `replace('…\\n…','\\n',char(10))`, \
         which turns that `\\n` into a line break too, so a restore of this backup brings back \
         another value there (JSON made invalid, a path changed). No check of the dump can \
         tell; of a remote database, Time Travel (`cargo xtask time-travel restore`) brings \
         the value back, or store such text as a BLOB, or without the `\\n` escape (README, \
         Text with a line break and `\\n` in a remote backup)",
        columns_counted(ambiguous)
    )
}

/// Adds to `found` what the read `sql` (of
/// [`d1_core::catalog::exported_text_queries`]) finds: text that is
/// not UTF-8, and text with a line break and its escape (`columns` as
/// given to it, in [`TEXT_LOOKS`]' order).
fn read_text(
    reader: &DatabaseReader<'_>,
    [not_utf8, line_breaks]: &[Vec<(String, Vec<String>)>; 2],
    sql: &str,
    found: &mut [PerColumn; 2],
) -> Result<()> {
    let purpose = match (not_utf8.is_empty(), line_breaks.is_empty()) {
        (false, true) => "look for text that is not UTF-8, which the export replaces (read-only)",
        (true, false) => {
            "look for text with a line break and `\\n`, whose `\\n` the export turns into a \
             line break (read-only)"
        }
        _ => {
            "look for text that is not UTF-8, or with a line break and `\\n`, which the \
             export writes otherwise (read-only)"
        }
    };
    let rows = reader.rows(
        purpose,
        sql,
        "looking for text the export changes gave no rows",
    )?;
    // One row a piece of a value, in order; or a column's count.
    let mut reading = d1_core::catalog::NotUtf8::default();
    let [replaced, ambiguous] = found;
    for r in rows {
        let number = |key: &str| r.get(key).and_then(|n| n.as_u64());
        let name = r.get("name").and_then(|n| n.as_str());
        if let (Some(name), Some(i), Some(n)) = (name, number("i"), number("n")) {
            d1_core::catalog::line_breaks_row(line_breaks, (name, i as usize, n), ambiguous);
        } else if let (Some(name), Some(i), Some(p), Some(last), Some(hex)) = (
            name,
            number("i"),
            number("p"),
            number("last"),
            r.get("h").and_then(|h| h.as_str()),
        ) {
            let piece = (name, i as usize, p as usize, last == 1, hex);
            reading.row(not_utf8, piece, replaced);
        }
    }
    Ok(())
}

/// The whole REALs the `queries` (of [`d1_core::catalog::whole_reals_queries`])
/// count, per table, those over zero.
fn read_whole_reals(
    reader: &DatabaseReader<'_>,
    queries: &[String],
) -> Result<BTreeMap<String, u64>> {
    let mut whole = BTreeMap::new();
    for sql in queries {
        let rows = reader.rows(
            "count whole REALs the export writes as integers (read-only)",
            sql,
            "counting whole REALs gave no rows",
        )?;
        whole.extend(rows.iter().filter_map(|r| {
            let n = r.get("n")?.as_u64().filter(|n| *n > 0)?;
            Some((r.get("name")?.as_str()?.to_owned(), n))
        }));
    }
    Ok(whole)
}

/// What a `--via-wrangler` backup's source check says of the `tables`
/// whose rows it holds otherwise than local D1's SQLite `file`: the looks
/// a remote backup runs after its export (whole REALs, text that is not
/// UTF-8, text with a line break and `\n`), read-only, run on the file
/// for those tables, each way found named with its tables or columns and
/// counts, never a value; a table where none is found is named with what
/// is left (an integer beyond 2^53, which no look counts, or a write
/// during the backup). It used to list every way, whichever applied.
pub fn export_causes(file: &Path, env: &str, tables: &[String]) -> Result<String> {
    let reader = DatabaseReader::File(file.to_path_buf(), env);
    let schema = reader
        .catalog("read the schema (read-only)")?
        .schema_statements();
    let limit = d1_core::gate::D1_STATEMENT_LIMIT as usize - 1_000;
    let columns = d1_core::catalog::columns_exported(&schema, tables)?;
    let made = d1_core::catalog::exported_text_queries(&columns, &columns, limit);
    let columns = [columns.clone(), columns];
    let mut found = [PerColumn::new(), PerColumn::new()];
    for sql in &made.queries {
        read_text(&reader, &columns, sql, &mut found)?;
    }
    let whole_columns = d1_core::catalog::columns_keeping_whole_reals(&schema, tables)?;
    let whole_made = d1_core::catalog::whole_reals_queries(&whole_columns, limit);
    let whole = read_whole_reals(&reader, &whole_made.queries)?;
    let [replaced, ambiguous] = &found;
    let mut said = Vec::new();
    if !whole.is_empty() {
        let counted: Vec<String> = { whole.iter() }
            .map(|(t, n)| format!("{} ({n})", d1_core::names::shown_name(t)))
            .collect();
        said.push(format!(
            "it wrote the whole REALs (such as 3.0) in {} as integers",
            crate::out::listed(&counted, "table")
        ));
    }
    if !replaced.is_empty() {
        said.push(format!(
            "it wrote the text that is not valid UTF-8 in {} with U+FFFD in place of each bad \
             byte",
            columns_counted(replaced)
        ));
    }
    if !ambiguous.is_empty() {
        said.push(format!(
            "it wrote the text holding a line break and the two characters `\\n` (or a carriage \
             return and `\\r`) in {} as `replace('…\\n…','\\n',char(10))`, which turns that \
             `\\n` into a line break too",
            columns_counted(ambiguous)
        ));
    }
    let unexplained: Vec<_> = { tables.iter() }
        .filter(|t| {
            !whole.contains_key(*t) && !replaced.contains_key(*t) && !ambiguous.contains_key(*t)
        })
        .map(|t| d1_core::names::shown_name(t))
        .collect();
    if !unexplained.is_empty() {
        said.push(format!(
            "in {} it holds no whole REAL, no text that is not UTF-8 and none with a line break \
             and `\\n`: an integer beyond 2^53, which it rounds, or a write to the database \
             during the backup",
            crate::out::listed(&unexplained, "table")
        ));
    }
    Ok(said.join("; "))
}

/// `table.column (N rows)` of each column `counted`, listed: each name
/// cut as a list cuts a name, and the count kept (cut whole, a long
/// column's item lost its count; rvCB).
fn columns_counted(counted: &PerColumn) -> String {
    let cut = |name: &str| d1_core::names::shown_cut(&d1_core::names::shown_name(name));
    let columns: Vec<String> = { counted.iter() }
        .flat_map(|(t, columns)| {
            columns.iter().map(move |(c, n)| {
                format!(
                    "{}.{} ({})",
                    cut(t),
                    cut(c),
                    d1_core::wording::count(*n, "row")
                )
            })
        })
        .collect();
    crate::out::listed_as_shown(&columns, "column")
}

/// What a claim of equality between two reads through D1's export (a
/// remote database exported now, a backup of one) compared.
pub const AS_D1_EXPORT_SHOWS: &str = "as D1's export shows them";

/// The tables a backup's `manifest` records values of that D1's export
/// writes alike where the database holds others (`whole_reals`,
/// `wide_integers`, `replaced_text`: text that is not UTF-8, written
/// with U+FFFD, and `ambiguous_text`: text with a line break and `\n`),
/// with `counted` (integers beyond ±2^53 read now).
pub fn written_alike_in(
    manifest: Option<&Manifest>,
    counted: &BTreeMap<String, u64>,
) -> std::collections::BTreeSet<String> {
    let recorded = manifest.map_or([None, None], |m| {
        [m.whole_reals.as_ref(), m.wide_integers.as_ref()]
    });
    let per_column = manifest.map(|m| [&m.replaced_text, &m.ambiguous_text]);
    let replaced = { per_column.into_iter().flatten().flatten() }
        .flatten()
        .filter(|(_, columns)| columns.values().any(|n| *n > 0))
        .map(|(table, _)| table.clone());
    { recorded.into_iter().flatten().chain([counted]) }
        .flat_map(|per_table| per_table.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(table, _)| table.clone())
        .chain(replaced)
        .collect()
}

/// Beside a claim of equality [`AS_D1_EXPORT_SHOWS`]: that the values of
/// `tables` ([`written_alike_in`]) may differ all the same, naming the
/// tables, never a value. `None` for no table.
pub fn may_differ_said(tables: &std::collections::BTreeSet<String>) -> Option<String> {
    let shown: Vec<String> = { tables.iter() }
        .map(|t| d1_core::names::shown_name(t).into_owned())
        .collect();
    (!shown.is_empty()).then(|| {
        format!(
            "whole REALs, integers beyond ±2^53, text that is not UTF-8 or text with a line \
             break and `\\n` in {} may differ in storage class or value all the same (D1's export writes them alike: README, Equal \
             as D1's export shows them)",
            crate::out::listed(&shown, "table")
        )
    })
}

/// What a restore of a backup does to a table whose rowids `triggers` keep
/// ([`Schema::rowids_renumbered`]), and the fix.
pub fn renumbered_said(table: &str, triggers: &[String]) -> String {
    let table = d1_core::names::shown_name(table);
    let triggers: Vec<_> = triggers
        .iter()
        .map(|t| d1_core::names::shown_name(t))
        .collect();
    format!(
        "{table} has no INTEGER PRIMARY KEY, so no export carries its rowids, and rows were \
         deleted from it: a restore gives its rows new rowids (1, 2, …), while its triggers \
         {} keep rowids elsewhere (an FTS5 index), which then name other rows. Give {table} an \
         INTEGER PRIMARY KEY, or rebuild what those triggers keep after a restore (README, \
         Rowids)",
        triggers.join(", ")
    )
}

/// The lines that say a backup was written, and what it holds.
fn say_written(file: &Path, manifest: &Manifest, manifest_path: &Path) {
    let holds = holds_said(manifest);
    crate::say!(
        "Backup written: {}\n  {}, sha256 {}, {holds}",
        file.display(),
        d1_core::wording::size(manifest.file.bytes),
        manifest.file.sha256,
    );
    // Next to the backup, under its name: only -v names it.
    if crate::out::verbose() {
        crate::say!("  manifest: {}", manifest_path.display());
    }
    if let Some(sealed) = &manifest.sealed {
        crate::say!(
            "  stored as {}: the SQL inside is {}, sha256 {}",
            sealed.format,
            d1_core::wording::size(sealed.plaintext_bytes),
            sealed.plaintext_sha256
        );
    }
}

/// Exports local D1 from its SQLite file into `out` (see
/// `local_d1::export`), showing the stored file's size as it grows, and
/// says so in one line, as a wrangler call does.
fn export_local_file(
    env: &Environment,
    file: &Path,
    mode: ExportMode,
    tables: &[String],
    partial: &TempFile,
    out: impl std::io::Write,
) -> Result<Native> {
    let started = std::time::Instant::now();
    let activity = crate::out::Activity::watching_file(
        format!("exporting {} from its SQLite file", env.database_name),
        partial.path().to_path_buf(),
    );
    let exported = crate::edge::local_d1::export((file, &env.name), (mode, true), tables, out)
        .map_err(|e| no_room_said(e, partial.path()))?;
    drop(activity);
    if !exported.oversized.is_empty() {
        return Ok(Native {
            oversized: exported.oversized,
            ..Native::default()
        });
    }
    crate::say!(
        "  exported {} from its SQLite file, without wrangler ({:.1} s)",
        env.database_name,
        started.elapsed().as_secs_f64()
    );
    say_rewritten(&exported.counts.lossless);
    Ok(Native {
        exact_values: exported.counts.lossless.rewritten.into_iter().collect(),
        source_rows: exported.row_sets,
        oversized: Vec::new(),
    })
}

/// What a native export knows beyond its dump.
#[derive(Default)]
struct Native {
    /// See [`StoredAs::exact_values`].
    exact_values: BTreeMap<String, u64>,
    /// See [`crate::steps::verify::OnArrival::source_rows`].
    source_rows: Option<BTreeMap<String, String>>,
    /// The values and rows over D1's 2 MB it wrote, for which the backup
    /// is refused ([`crate::edge::local_d1::Exported::oversized`]).
    oversized: Vec<d1_core::value_limit::Oversized>,
}

/// `e`, said as a full disk where it is one, naming the directory of
/// `file` (the backup being written) to free.
fn no_room_said(e: anyhow::Error, file: &Path) -> anyhow::Error {
    match crate::edge::fsutil::disk_full(&e) {
        true => e.context(format!(
            "the backup could not be written: the disk is full, or a file-size limit \
             (`ulimit -f`) stopped the write. Nothing was kept. Free space in {} (or choose \
             another directory with --backup-dir) and run it again",
            file.parent().unwrap_or(Path::new(".")).display()
        )),
        false => e,
    }
}

/// Says where a native export holds values that `wrangler d1 export` would
/// have changed.
fn say_rewritten(lossless: &d1_dump::Lossless) {
    if lossless.rewritten.is_empty() {
        return;
    }
    let tables: Vec<String> = lossless
        .rewritten
        .iter()
        .map(|(table, n)| {
            format!(
                "{} in {}",
                d1_core::wording::count(*n as usize, "value"),
                d1_core::names::shown_name(table)
            )
        })
        .collect();
    crate::say!(
        "  written exactly where `wrangler d1 export` would change them: {} (the kinds of value \
         it changes are in the README's \"Local backups without wrangler\")",
        tables.join(", ")
    );
}

/// Warns of the applied migrations `journaled` takes from a run of
/// `migrate` (or `deploy`, `restore --clean`) that wrote no end: killed
/// while wrangler applied them, it never said which it applied, so each
/// is recorded as that run staged it, which is wrong for one that failed
/// then and was fixed and applied otherwise since (MG2).
fn warn_unended(
    journaled: &BTreeMap<String, crate::steps::migrations::Journaled>,
    env: &Environment,
) {
    let unended: Vec<String> = { journaled.iter() }
        .filter_map(|(name, j)| {
            let at = j.unended.as_ref()?;
            Some(format!(
                "{} (staged {at})",
                d1_core::names::shown_name(name)
            ))
        })
        .collect();
    if !unended.is_empty() {
        crate::warn!(
            "this backup records {} as a run that applied migrations to {} staged {}, but that \
             run never recorded which it applied (it was killed while wrangler applied them?): \
             if one failed then and was fixed and applied otherwise since, its record is the \
             text that failed, and `cargo xtask migrate {} --check` will call it edited",
            unended.join(", "),
            env.database_name,
            d1_core::wording::them(unended.len()),
            env.name
        );
    }
}

/// The sha256 of each applied migration as it was applied: the
/// environment's previous verified backup on this machine's record where
/// it has one, else the migrations journal's ([`journaled`], what
/// `migrate` staged for wrangler), else (a migration applied by hand, or
/// before the journal) as `migrations/` holds it now. An edit made since
/// is warned about, never recorded as the original: one made between a
/// migrate and the next backup was (MG). A record read from the bucket is
/// compared with (a difference is warned about), never carried.
///
/// [`journaled`]: crate::steps::migrations::journaled
fn migration_record(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    applied: &[String],
) -> Result<BTreeMap<String, String>> {
    use crate::steps::migrations::{edited_migrations, edited_report};
    let dir = project.config_dir.join(&env.migrations_dir);
    if !dir.exists() {
        // Nothing to compare with (the backup warned of it once): this
        // machine's record of what was applied, where it has one (MB).
        let previous = crate::steps::migrations::record_on_this_machine(project, env)?;
        return Ok(crate::steps::migrations::carried_record(
            applied,
            previous.as_ref().map(|p| &p.sha256),
            &BTreeMap::new(),
        ));
    }
    let current = crate::steps::migrations::digests(&dir, applied);
    let previous = crate::steps::migrations::record_for(sh, project, env)?;
    let warn = |edited: &[_], source: &str| {
        if !edited.is_empty() {
            crate::warn!(
                "this backup records the migrations as they were applied, not as {} holds them \
                 now: {}",
                dir.display(),
                edited_report(edited, &dir, (source, &env.database_name))
            );
        }
    };
    if let Some(previous) = &previous {
        let edited = edited_migrations(&previous.sha256, applied, &current);
        if previous.from_bucket {
            // Told, and not carried (below); a file gone is not recorded.
            crate::steps::migrations::told_if_from_bucket(edited, Some(previous), &dir, env);
        } else {
            warn(&edited, &previous.source);
        }
    }
    // A record read from the bucket is anyone's with its token to write:
    // carried forward, a planted one would outlive the planted objects.
    let mut record = { previous.as_ref() }
        .filter(|p| !p.from_bucket)
        .map(|p| p.sha256.clone())
        .unwrap_or_default();
    let journaled: BTreeMap<_, _> = { crate::steps::migrations::journaled(project, env) }
        .into_iter()
        .filter(|(name, _)| !record.contains_key(name) && applied.contains(name))
        .collect();
    warn_unended(&journaled, env);
    let journal: BTreeMap<String, String> = { journaled.into_iter() }
        .map(|(name, j)| (name, j.sha256))
        .collect();
    let source = format!(
        "{}, what migrate applied",
        project
            .backup_dir
            .join(crate::edge::journals::MIGRATIONS_JOURNAL)
            .display()
    );
    warn(&edited_migrations(&journal, applied, &current), &source);
    record.extend(journal);
    Ok(crate::steps::migrations::carried_record(
        applied,
        Some(&record),
        &current,
    ))
}

/// How a new backup was taken, as its verification needs to know.
struct NewBackup {
    accept_broken_data: bool,
    /// Whether a fall in rows since the backup before it is warned of:
    /// not for a restore's safety backup, whose database the operator
    /// is replacing on purpose, its plan confirmed
    /// ([`warn_rows_fell`]).
    warns_rows_fell: bool,
    /// Written by D1's export, which rounds integers beyond 2^53.
    d1_export: bool,
}

/// What a backup BAD for rows of database `db` that name a parent row not
/// there (its check of foreign keys alone) says after its finding: they
/// are the database's own, no backup of it is good while they are there,
/// and D1 refuses a migration that copies them, a table's rebuild (rvCE 4:
/// the plan reads no rows, so the pre-migration backup is what refuses it).
fn orphans_said(db: &str) -> String {
    format!(
        " Those rows are {db}'s own: no backup of it is good while they name a parent row that \
         is not there, and D1 refuses a migration that copies them into a new table (Drizzle's \
         or Prisma's rebuild of a table: FOREIGN KEY constraint failed). Delete them, or insert \
         the parent rows they name (`PRAGMA foreign_key_check` lists each), then try again."
    )
}

/// Verifies a backup just written and records the outcome in its manifest.
/// A backup that fails stays on disk, marked bad, and the command fails.
fn verify_new_backup(
    project: &Project,
    env: &Environment,
    file: &Path,
    (source, arrival): (&Source, crate::steps::verify::OnArrival),
    mut manifest: Manifest,
    manifest_path: &Path,
    NewBackup {
        accept_broken_data,
        warns_rows_fell,
        d1_export,
    }: NewBackup,
) -> Result<Manifest> {
    crate::detail!("Verifying it: a simulated restore under D1's rules into a scratch database.");
    let migrations_dir = project.config_dir.join(&env.migrations_dir);
    let settings = project.settings()?;
    let workspace = crate::steps::verify::Workspace {
        migrations_dir: &migrations_dir,
        app: &settings.app,
        scratch_dir: &project.backup_dir,
        applied: &[],
        migrations_optional: true,
    };
    // A backup loaded as it arrived has its statements counted already:
    // its verification shows a plain spinner rather than 0 of them.
    let label = format!("verifying {}", file_name(file));
    let activity = match arrival.preloaded.is_some() {
        true => crate::out::Activity::start(label),
        false => crate::out::Activity::counting(label, Some(manifest.statements)),
    };
    // Ctrl-C from here on leaves the backup written and unverified: the
    // interrupt's message says so, not that the next run starts clean.
    // What was said before (a restore's "nothing was restored") still holds.
    let before = crate::edge::signals::what_changed();
    let unverified = format!(
        "{} was written, but its verification did not finish: it stays unverified and will \
         not be chosen as `latest`; run `cargo xtask verify {}`",
        file_name(file),
        d1_core::wording::shell_word(&file.display().to_string())
    );
    crate::edge::signals::changed(match &before {
        Some(before) => format!("{before}; {unverified}"),
        None => unverified,
    });
    let report =
        crate::steps::verify::verify_surveyed(file, source, Some(&manifest), &workspace, arrival);
    drop(activity);
    let report = report.map_err(|e| {
        e.context(format!(
            "{} was written, but verifying it could not run: it stays unverified and will not be \
             chosen as `latest`; run `cargo xtask verify {}` once the cause is fixed",
            file.display(),
            d1_core::wording::shell_word(&file.display().to_string())
        ))
    })?;
    match report.good {
        true => report.print(true),
        // A failed verification is shown whole, whoever took the backup.
        false => crate::out::untucked(|| report.print(true)),
    }
    if let Some(schema) = &report.schema {
        crate::steps::migrations::remember_schema(file, schema);
    }
    if d1_export && !report.wide_integers.is_empty() {
        crate::warn!("{}", wide_integers_said(&report.wide_integers));
        let wide = report.wide_integers.clone();
        manifest.wide_integers = Some(wide.clone());
        d1_core::manifest::Manifest::update(manifest_path, |m| m.wide_integers = Some(wide))?;
    }
    if report.good && manifest.content.is_none() {
        // What a restore of this backup must reproduce, table by table.
        let digests = report.content.clone();
        manifest.content = Some(digests.clone());
        d1_core::manifest::Manifest::update(manifest_path, |m| m.content = Some(digests))?;
    }
    manifest.record_verification(manifest_path, report.verification())?;
    // Verified, its outcome recorded: nothing unfinished stays.
    crate::edge::signals::changed_back_to(before);
    if report.good {
        say_same_data(project, env, &manifest);
        if warns_rows_fell {
            warn_rows_fell(project, env, &manifest);
        }
    }
    if !report.good && accept_broken_data && report.is_faithful() {
        crate::warn!(
            "{} is a faithful copy, but the data in {} already fails verification ({}); \
             it is marked bad and will not be chosen as `latest`",
            file.display(),
            env.database_name,
            report.failed().join("; ")
        );
        return Ok(manifest);
    }
    if !report.good {
        let failed = report.failed().join("; ");
        // A STRICT INTEGER (or INT) column refuses a REAL: in an export of
        // D1's, an integer near ±2^63 that JavaScript rounded past i64.
        let why = match d1_export && failed.contains("cannot store REAL value in INT") {
            true => {
                " D1's export writes every number as JavaScript does, which rounds an integer \
                 beyond ±2^53: one within 512 of 2^63 (9223372036854775807) becomes \
                 9223372036854775808, a REAL, which the STRICT table's INTEGER column named above \
                 refuses, so no backup of this database through D1's export can be good while it \
                 holds such a value. A local backup reads the SQLite file and keeps it exactly; of \
                 a remote database, Time Travel (`cargo xtask time-travel restore`) brings it back \
                 exactly (README, Integers beyond 2^53)."
            }
            false => "",
        };
        let why = match report.failed_for_rows_naming_no_parent() {
            true => orphans_said(&env.database_name),
            false => why.to_owned(),
        };
        let said = format!(
            "{} failed verification ({failed}). It is kept, marked bad in its manifest, and will \
             never be chosen as `latest`.{why}",
            file.display(),
        );
        return Err(
            match (
                report.failed_for_a_faulty_key(),
                report.failed_for_its_own_fts5_table(),
            ) {
                (true, _) => BadForItsOwn(said, OwnFault::ForeignKey).into(),
                (_, true) => BadForItsOwn(said, OwnFault::Fts5Table).into(),
                _ => anyhow::anyhow!(said),
            },
        );
    }
    Ok(manifest)
}

/// Whether any backup of this environment's database is in the backup
/// directory: a local D1 found empty after one was taken had its file
/// removed, and one never backed up is a fresh clone's.
fn backed_up_before(project: &Project, env: &Environment) -> bool {
    crate::edge::inventory::scan_all(&project.backup_dir)
        .is_ok_and(|(entries, _)| entries.iter().any(|e| env.records(&e.manifest)))
}

/// Says, in one line, when a backup just verified holds the same rows
/// (its content digests, table by table) as the newest backup of its
/// database before it: a `with-backup` or `migrate` run again with nothing
/// changed. The manifest records no digest of the schema, so an index, a
/// trigger or a view added since is not seen, and the line says so, unless
/// the two files are the same bytes (the same sha256), which it says.
/// Nothing is deleted; prune's rules judge both as any others.
fn say_same_data(project: &Project, env: &Environment, new: &Manifest) {
    let Some(content) = &new.content else { return };
    // The backups the inventory refuses are warned of where they are used.
    let Ok((entries, _)) = crate::edge::inventory::scan_all(&project.backup_dir) else {
        return;
    };
    // Newest first, in the order `latest` uses (d1_core::order): the one
    // after this backup in it is the backup before it.
    let newest = { entries.iter().map(|e| &e.manifest) }
        .filter(|m| env.records(m))
        .skip_while(|m| m.file.name != new.file.name)
        .nth(1);
    let Some(m) = newest.filter(|m| m.mode == new.mode && m.content.as_ref() == Some(content))
    else {
        return;
    };
    // The same bytes are the same schema too: no caveat to make of them.
    match m.file.sha256 == new.file.sha256 {
        true => crate::say!(
            "It is the same file, byte for byte, as {}, the backup before it.",
            m.file.name
        ),
        false => crate::say!(
            "It holds the same rows as {}, the backup before it (the schema is not compared).",
            m.file.name
        ),
    }
}

/// Warns, on stderr even under `-q` (a cron job mails it), when a backup
/// just verified holds far fewer rows than the previous good backup of its
/// database taken alike (the same mode and tables): a table that had rows
/// and has none or is gone, or all its rows down by more than half. Names
/// tables and counts, never values, and counts as the backup's summary
/// does (not `sqlite_sequence`). The backup stays good: it is a faithful
/// copy of what the database holds now. The restore it names is one the
/// tool accepts as written ([`restore_advised`]). A restore's safety
/// backup does not warn (the caller's `warns_rows_fell`): restoring an
/// older backup B, then the safety backup S taken of the rows B replaced,
/// takes a safety backup of B's rows, fewer than S's on purpose.
fn warn_rows_fell(project: &Project, env: &Environment, new: &Manifest) {
    let Ok((entries, _)) = crate::edge::inventory::scan_all(&project.backup_dir) else {
        return;
    };
    let previous = { entries.iter().map(|e| &e.manifest) }
        .filter(|m| env.records(m))
        .skip_while(|m| m.file.name != new.file.name)
        .skip(1)
        .find(|m| {
            m.verification.as_ref().is_some_and(|v| v.is_good())
                && m.mode == new.mode
                && m.tables == new.tables
        });
    let Some(previous) = previous else { return };
    // A restore this tool made since (its journal's line, done) loaded
    // the rows now held on purpose: the backup is compared with what it
    // loaded, when that backup is here, or the fall is told as the
    // restore's, with nothing to undo (rvCM 2).
    let restored = { crate::steps::restores::last_changing_into(&project.backup_dir, env) }
        .filter(|r| r.status == "done" && r.started > previous.created_at);
    if let Some(restored) = restored {
        let loaded = { entries.iter().map(|e| &e.manifest) }
            .find(|m| m.file.name == restored.backup && m.mode == new.mode);
        match loaded {
            Some(loaded) if loaded.tables == new.tables => {
                warn_fell_since(project, env, new, loaded)
            }
            _ => say_fell_by_restore(new, previous, &restored),
        }
        return;
    }
    warn_fell_since(project, env, new, previous);
}

/// The fall of rows from `previous`, before it, to `new`, when a restore
/// this tool made since `previous` was taken ([`warn_rows_fell`]) loaded
/// a backup that is not here to compare with: said, once, as the
/// restore's, never with a restore that would undo it.
fn say_fell_by_restore(
    new: &Manifest,
    previous: &Manifest,
    restored: &crate::steps::restores::Restore,
) {
    if let Some(fell) = d1_core::retention::rows_fell_said(&previous.rows, &new.rows) {
        crate::say!(
            "{} holds fewer rows than {}, the good backup before it ({fell}): that follows the \
             restore of {} at {} (the restore journal), which replaced them; nothing was lost \
             since",
            new.file.name,
            previous.file.name,
            restored.backup,
            restored.started.format("%Y-%m-%d %H:%M UTC")
        );
    }
}

/// [`warn_rows_fell`]'s warning, of `new` against `previous`.
fn warn_fell_since(project: &Project, env: &Environment, new: &Manifest, previous: &Manifest) {
    if let Some(fell) = d1_core::retention::rows_fell_said(&previous.rows, &new.rows) {
        // "Far fewer" only of a total that fell by half; a table emptied or
        // gone while the total held or grew lost rows all the same.
        let rows_in_all = d1_core::retention::rows_in_all;
        let (was, is) = (rows_in_all(&previous.rows), rows_in_all(&new.rows));
        let fewer = if is.saturating_mul(2) < was {
            "holds far fewer rows than"
        } else {
            "lost a table's rows that are in"
        };
        crate::warn!(
            "{} {fewer} {}, the good backup of {} before it: {fell}. If the \
             rows were not removed on purpose, that backup still holds them ({}; add \
             --dry-run to its restore to see its plan first); prune keeps a whole backup so taken, as the last \
             before the rows fell, only until rows fall again, so copy it aside to keep it",
            new.file.name,
            previous.file.name,
            env.database_name,
            restore_advised(project, env, previous),
        );
    }
}

/// The restore that brings a backup's rows back into `env`, as the tool
/// accepts it, between backticks: its database has tables, so a full
/// backup replaces them (`--replace`), confirmed by the database's name, which every
/// environment takes, production too, at a terminal or not. A data-only
/// backup creates no table, and restores (`--clean`) only into a database
/// with none: a local D1 emptied first, for a whole one, by the commands
/// a refused `--clean` names ([`local_d1::emptying_commands`]); a new
/// database otherwise, since emptying the database for a backup of chosen
/// tables would lose the others, and a remote one has no command that
/// empties it. `--clean` alone used to be advised, which restore refuses
/// for a database with tables (exit 3), and for chosen tables without
/// `--partial`. A full backup of chosen tables too goes into a new
/// database (`--to new:NAME --partial`), said as such: `--replace
/// --partial` would leave `env`'s database only those tables (PD 3).
///
/// [`local_d1::emptying_commands`]: crate::edge::local_d1::emptying_commands
fn restore_advised(project: &Project, env: &Environment, backup: &Manifest) -> String {
    let file = d1_core::wording::shell_word(&backup.file.name);
    let whole = backup.tables.is_empty();
    if backup.mode == "data-only" {
        if whole && env.location == Location::Local {
            let local = crate::edge::local_d1::database_file(&project.config_dir, &env.local_id);
            let [back_up, remove] = crate::edge::local_d1::emptying_commands(&env.name, &local);
            return format!(
                "a data-only backup restores only into a database with no tables: back up {} \
                 (`{back_up}`), remove its SQLite file (`{remove}`), then `cargo xtask restore \
                 {file} --to {} --clean --confirm {}`",
                env.name,
                env.name,
                d1_core::wording::shell_word(&env.database_name)
            );
        }
        let partial = if whole { "" } else { " --partial" };
        return format!(
            "a data-only backup restores only into a database with no tables, such as a new \
             one beside {}: `cargo xtask restore {file} --to new:NAME --clean{partial} --yes`, \
             NAME a name of your choosing",
            env.database_name
        );
    }
    // The backup's triggers that no migration creates are installed by
    // the names they take.
    let path = project.backup_dir.join(&backup.file.name);
    let held = (None, None);
    let allow = crate::steps::migrations::way_back_triggers(project, &path, env, held).flags();
    if !whole {
        // `--replace --partial` would leave the database only the chosen
        // tables (PD 3): a new database beside it keeps the others.
        return format!(
            "it holds {} only, so restoring it into {db} (--replace --partial) would drop every \
             other table of {db} and its rows: restore it into a new database beside it instead, \
             `cargo xtask restore {file} --to new:NAME --partial{allow} --yes`, NAME a name of \
             your choosing, and copy the rows back from there",
            d1_core::wording::listed(&backup.tables, "table"),
            db = env.database_name
        );
    }
    format!(
        "`cargo xtask restore {file} --to {} --replace{allow} --confirm {}`",
        env.name,
        d1_core::wording::shell_word(&env.database_name)
    )
}

/// The names one backup may use, and how it is stored.
#[derive(Debug, Clone)]
struct BackupNames {
    dir: PathBuf,
    env: String,
    at: DateTime<Utc>,
    /// `backup-<env>-YYYYMMDD-HHMM`
    stem: String,
    format: Format,
    /// The age recipients, when `format` encrypts.
    recipients: Vec<String>,
    /// The bucket the backup is then copied to (`--upload`).
    bucket: Option<String>,
    partial: PathBuf,
}

impl BackupNames {
    fn new(dir: &Path, env: &str, at: DateTime<Utc>, format: Format) -> BackupNames {
        let stem = format!("backup-{env}-{}", at.format("%Y%m%d-%H%M"));
        let pid = std::process::id();
        let extension = format.extension();
        BackupNames {
            format,
            recipients: Vec::new(),
            bucket: None,
            env: env.to_owned(),
            at,
            dir: dir.to_path_buf(),
            partial: dir.join(format!(".{stem}.{pid}.{extension}.partial")),
            stem,
        }
    }

    fn encrypted_to(self, recipients: Vec<String>) -> BackupNames {
        BackupNames { recipients, ..self }
    }

    fn uploaded_to(self, bucket: Option<String>) -> BackupNames {
        BackupNames { bucket, ..self }
    }

    /// Where `--upload` puts the backup: its bucket and its object's key
    /// (a later name, if the first is taken, goes beside it).
    fn offsite(&self, file: &Path) -> Option<(&str, String)> {
        let bucket = self.bucket.as_deref()?;
        let file = file_name(file);
        Some((
            bucket,
            crate::steps::offsite::object_key(&self.env, self.at, &file),
        ))
    }

    /// The name the backup would take now: the first candidate that
    /// neither exists nor has a manifest, as [`claim_name`] takes it (a
    /// backup of the same minute already there takes `-2`).
    fn planned(&self) -> PathBuf {
        (1..1000)
            .map(|n| self.candidate(n))
            .find(|c| !c.exists() && !manifest::manifest_path(c).exists())
            .unwrap_or_else(|| self.candidate(1))
    }

    /// `backup-prod-20261123-2230.sql`, then `...-2.sql`, `...-3.sql`.
    fn candidate(&self, n: u32) -> PathBuf {
        match n {
            1 => self
                .dir
                .join(format!("{}.{}", self.stem, self.format.extension())),
            n => self
                .dir
                .join(format!("{}-{n}.{}", self.stem, self.format.extension())),
        }
    }
}

/// Refuses, before anything is written, when a backup could end up in git.
fn guard_git(sh: &Shell, project: &Project, names: &BackupNames) -> Result<()> {
    let first = names.candidate(1);
    let paths = [
        first.clone(),
        manifest::manifest_path(&first),
        names.partial.clone(),
        names.dir.join(LOCK_FILE),
    ];
    refuse_unless_ignored(sh, project, &paths, "back up")
}

/// Refuses, before anything is written, when git would not ignore one of
/// `paths` (the files a command is about to write into the backup
/// directory), or already tracks a backup file: `refusing to <doing>`.
pub fn refuse_unless_ignored(
    sh: &Shell,
    project: &Project,
    paths: &[PathBuf],
    doing: &str,
) -> Result<()> {
    for path in paths {
        match git::check_ignored(sh, path)? {
            Ignored::Yes => {}
            Ignored::NotInRepository => {
                // Nothing to do about it: said only with -v.
                crate::detail!(
                    "{} is not inside a git work tree, so git cannot pick it up",
                    project.backup_dir.display()
                );
                break;
            }
            Ignored::No => crate::stop!(
                crate::exit::Exit::Refused,
                "refusing to {doing}: git would not ignore {}.\n\
                 Backups hold customer PII and token ciphertext and must never be committed. \
                 Add the backup directory to .gitignore (the repository's .gitignore has `/backups/`), \
                 or choose an ignored --backup-dir. Nothing was written.",
                path.display()
            ),
        }
    }
    let tracked = git::tracked_backups(sh, &project.backup_dir)?;
    if !tracked.is_empty() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to {doing}: git already tracks backup files:\n  {}\n\
             Remove them from the index, FILE each of them: `git rm --cached FILE` (and purge \
             them from history if they were pushed), then run this again. Nothing was written.",
            tracked.join("\n  ")
        );
    }
    Ok(())
}

/// The database's Time Travel bookmark now, as `wrangler d1 time-travel
/// info --json` reads it; an answer that is not a bookmark's shape is an
/// error (it is recorded in manifests and printed in commands to paste).
pub fn time_travel_bookmark(wrangler: &Wrangler, info: &Invocation) -> Result<String> {
    let json = wrangler.run_json(info)?;
    json.get("bookmark")
        .and_then(|b| b.as_str())
        .filter(|b| d1_core::names::is_bookmark(b))
        .map(str::to_owned)
        .context("`wrangler d1 time-travel info --json` returned no D1 bookmark")
}

/// Reads back the native export of a local D1's SQLite file, the one
/// export that does not arrive through a FIFO.
fn summarize(
    source: &Source,
    catalog: &Catalog,
    scope: &ExportScope,
    mode: ExportMode,
    key: Option<&d1_core::app::KeyRecord>,
) -> Result<dump::DumpSummary> {
    check_head(&source.head()?, WrittenBy::Native)?;
    let summary = dump::summarize(source.open()?, &catalog.create_statements(), key)
        .with_context(|| format!("reading {}", WrittenBy::Native.export()))?;
    Ok(in_scope(summary, scope, mode))
}

/// What wrote a backup's export, as its errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WrittenBy {
    /// `wrangler d1 export`: a remote backup, or a local one `--via-wrangler`.
    Wrangler,
    /// The native export of a local D1's SQLite file, without wrangler.
    Native,
}

impl WrittenBy {
    /// The export's file, named by what wrote it.
    fn export(self) -> &'static str {
        match self {
            WrittenBy::Wrangler => "the export wrangler wrote",
            WrittenBy::Native => {
                "the native export of the local D1's SQLite file (written without wrangler; \
                 `--via-wrangler` has wrangler write it)"
            }
        }
    }
}

/// Refuses an export that is empty, or does not start as a D1 export does.
fn check_head(head: &[u8], by: WrittenBy) -> Result<()> {
    let export = by.export();
    if head.is_empty() {
        bail!("{export} is empty, though its writer reported success");
    }
    dump::check_looks_like_sql(head)?;
    if !head.starts_with(dump::D1_EXPORT_HEADER.as_bytes()) {
        bail!("{export} does not start with the D1 export header; it is kept out of backups/");
    }
    Ok(())
}

/// The summary's rows as the backup records them: none for a schema-only
/// export, and every exported table, even an empty one, otherwise.
fn in_scope(
    mut summary: dump::DumpSummary,
    scope: &ExportScope,
    mode: ExportMode,
) -> dump::DumpSummary {
    match mode {
        ExportMode::SchemaOnly => summary.rows = BTreeMap::new(),
        ExportMode::Full | ExportMode::DataOnly => {
            for table in &scope.data_tables {
                summary.rows.entry(table.clone()).or_default();
            }
        }
    }
    summary
}

/// Refuses an export that lacks a table, index, trigger or view the database
/// has: a download or write that stopped between two statements.
fn check_complete(
    summary: &dump::DumpSummary,
    catalog: &Catalog,
    scope: &ExportScope,
    mode: ExportMode,
) -> Result<()> {
    if mode == ExportMode::DataOnly {
        return Ok(()); // A data-only dump creates nothing to check against.
    }
    let missing: Vec<String> = scope
        .expected_objects(catalog)
        .difference(&summary.created)
        .map(|(kind, name)| format!("{kind} {}", d1_core::names::shown_name(name)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let missing = missing.join(", ");
    bail!(
        "the export is incomplete: it lacks {missing} that the database has; the download or \
         write was probably cut short (a full disk?). Nothing was kept in backups/."
    );
}

/// Moves the finished export to the first free backup name. Never replaces
/// a file: a name is taken only if neither it nor its manifest exists.
/// Each name is written into the lock before the move, so that if this run
/// dies before the manifest, the next removes the file it left, and only
/// that file.
fn claim_name(partial: TempFile, names: &BackupNames, lock: &BackupLock) -> Result<PathBuf> {
    for n in 1..1000 {
        let candidate = names.candidate(n);
        if manifest::manifest_path(&candidate).exists() {
            continue;
        }
        lock.placing(Some(crate::edge::lock::Placing::of(
            &file_name(&candidate),
            partial.path(),
        )?))?;
        match fsutil::rename_no_clobber(partial.path(), &candidate) {
            Ok(()) => {
                partial.disarm();
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).on_path(&candidate, || {
                    format!("cannot move the export to {}", candidate.display())
                });
            }
        }
    }
    bail!(
        "more than 999 backups of one environment in one minute in {}",
        names.dir.display()
    )
}

/// Writes a backup's manifest with `write`, or removes the backup: one
/// without its manifest is listed, pruned and cleaned by nothing, so a
/// backup that cannot be recorded (a full disk) is not kept.
fn recorded_or_removed(file: &Path, write: impl FnOnce() -> Result<PathBuf>) -> Result<PathBuf> {
    write().map_err(|e| {
        let removed = match std::fs::remove_file(file) {
            Ok(()) => "it was removed".to_owned(),
            Err(r) => format!("remove it by hand ({r})"),
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        e.context(format!(
            "cannot write the manifest of {}, so the backup is not recorded; {removed}. Free \
             space in {} (or fix the cause) and back up again",
            file.display(),
            dir.display()
        ))
    })
}

fn write_manifest(backup: &Path, manifest: &Manifest) -> Result<PathBuf> {
    let path = manifest::manifest_path(backup);
    manifest.create_at(&path)?;
    Ok(path)
}

/// `backup --json`: the plan, and with a finished backup its result (the
/// fields are documented in the README; keep them stable).
fn plan_json(
    env: &Environment,
    args: &BackupArgs,
    names: &BackupNames,
    plan: &Plan,
    done: Option<(&Path, &Path, &Manifest)>,
) -> serde_json::Value {
    let result = done.map(|(file, manifest_path, m)| {
        // The tables the text counts; SQLite's own (`sqlite_sequence`) apart.
        let (rows, internal_rows): (BTreeMap<_, _>, BTreeMap<_, _>) =
            { m.rows.iter() }.partition(|(t, _)| d1_core::statement::rows_are_checked(t));
        serde_json::json!({
            "file": file,
            "manifest": manifest_path,
            "bytes": m.file.bytes,
            "sha256": m.file.sha256,
            "format": names.format.label(),
            "statements": m.statements,
            "rows": rows,
            "internal_rows": internal_rows,
            "verification": m.verification.as_ref().map(|v| v.outcome.clone()),
            "offsite": m.offsite.as_ref().map(|o| format!("r2://{}/{}", o.bucket, o.key)),
            "wide_integers": m.wide_integers.clone().unwrap_or_default(),
        })
    });
    serde_json::json!({
        "command": "backup",
        "dry_run": args.dry_run,
        "plan": {
            "environment": env.name,
            "database": env.database_name,
            "location": env.location.to_string(),
            "mode": mode_name(args.mode()),
            "tables": args.tables,
            "format": names.format.label(),
            "upload": names.offsite(&plan.file).map(|(bucket, key)| format!("r2://{bucket}/{key}")),
            "file": plan.file,
            "local_file": plan.local_file,
            "wrangler_commands": plan.steps.iter().map(|s| serde_json::json!({
                "purpose": s.purpose,
                "command": s.to_string(),
            })).collect::<Vec<_>>(),
        },
        "result": result,
    })
}

/// The printed plan of a backup.
struct Plan {
    /// The backup's name as planned ([`BackupNames::planned`]).
    file: PathBuf,
    lines: Vec<String>,
    /// Read-only commands already run to make the plan.
    done: Vec<Invocation>,
    steps: Vec<Invocation>,
    /// The local D1 file the export reads, when it does not go through wrangler.
    local_file: Option<PathBuf>,
}

impl Plan {
    // Each argument is one fact the plan shows; a struct for them would be
    // this signature again.
    #[allow(clippy::too_many_arguments)]
    fn new(
        env: &Environment,
        args: &BackupArgs,
        names: &BackupNames,
        cmds: &Commands,
        scope: Option<&ExportScope>,
        bootstrap: bool,
        schema_read: Option<&Invocation>,
        local_file: Option<&Path>,
    ) -> Plan {
        let file = names.planned();
        let mut lines = Plan::facts(env, args, names, &file, local_file);
        if let Some(scope) = scope.filter(|s| s.works_around_virtual_tables()) {
            lines.extend(scope.virtual_tables.iter().map(Plan::virtual_table_line));
        }
        let mut steps = Plan::wrangler_steps(env, args, cmds, scope, bootstrap, local_file);
        if let Some((bucket, key)) = names.offsite(&file) {
            // Its other steps follow the same shape: named, not listed.
            let mut put = cmds.r2_put(bucket, &key, &file);
            put.purpose = format!(
                "{}, then its manifest and the index beside it, each put, downloaded again and \
                 compared",
                put.purpose
            );
            steps.push(put);
        }
        Plan {
            file,
            lines,
            done: schema_read.into_iter().cloned().collect(),
            steps,
            local_file: local_file.map(Path::to_path_buf),
        }
    }

    /// The plan's facts: where from, how, into which file, stored how, why.
    fn facts(
        env: &Environment,
        args: &BackupArgs,
        names: &BackupNames,
        first: &Path,
        local_file: Option<&Path>,
    ) -> Vec<String> {
        let mut lines = vec![
            format!(
                "environment  {} -> {} ({} D1{})",
                env.name,
                env.database_name,
                env.location,
                env.wrangler_env
                    .as_deref()
                    .map(|w| format!(", wrangler --env {w}"))
                    .unwrap_or_default()
            ),
            format!("mode         {}", mode_name(args.mode())),
        ];
        if !args.tables.is_empty() {
            lines.push(format!(
                "tables       only {} (a partial backup)",
                d1_core::wording::listed(
                    &args
                        .tables
                        .iter()
                        .map(|t| d1_core::names::shown_name(t))
                        .collect::<Vec<_>>(),
                    "tables"
                )
            ));
        }
        lines.extend([
            format!(
                "file         {} (a later name if taken; written first as {})",
                first.display(),
                file_name(&names.partial)
            ),
            format!("manifest     {}", manifest::manifest_path(first).display()),
        ]);
        if let Some((bucket, key)) = names.offsite(first) {
            lines.push(format!(
                "upload       then r2://{bucket}/{key}, its manifest beside it and the index \
                 r2://{bucket}/{}, each read back and compared",
                crate::steps::offsite::index_key(&names.env)
            ));
        }
        lines.extend(Plan::export_facts(env, names, local_file));
        if let Some(reason) = &args.reason {
            lines.push(format!("reason       {}", recorded_reason(reason)));
        }
        lines
    }

    /// The plan's facts on the export: what it costs the database, how it
    /// reads it and how the file is stored.
    fn export_facts(
        env: &Environment,
        names: &BackupNames,
        local_file: Option<&Path>,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        if env.location == crate::config::environment::Location::Remote {
            lines.push(format!(
                "downtime     D1 answers no other query on {} while it exports it: the app's \
                 requests to it wait or fail until the export ends",
                env.database_name
            ));
        }
        if let Some(file) = local_file {
            lines.push(format!(
                "export       read from {} (read-only, one transaction), without wrangler: \
                 the dump `wrangler d1 export --local` writes, byte for byte \
                 (--via-wrangler exports through wrangler)",
                file.display()
            ));
        }
        let exporter = match local_file {
            Some(_) => "the dump is",
            None => "wrangler exports into a pipe,",
        };
        match names.format {
            Format::Sql => {}
            Format::Zstd => lines.push(format!(
                "stored as    zstd: {exporter} compressed on the way"
            )),
            Format::ZstdAge => lines.push(format!(
                "stored as    zstd+age to {}: {exporter} compressed and encrypted on the way; \
                 the SQL never touches the disk",
                names.recipients.join(", ")
            )),
        }
        lines
    }

    /// The plan's line for a virtual table the export leaves out.
    fn virtual_table_line(vt: &d1_core::catalog::VirtualTable) -> String {
        let rows = match &vt.content {
            VirtualContent::Internal { table } => format!("rows kept from {table}"),
            VirtualContent::External { table } => format!("rows live in {table}"),
            VirtualContent::Contentless => "contentless: no rows to keep".to_owned(),
            VirtualContent::Derived => {
                "an fts5vocab table: recreated, it reads its FTS5 table's index".to_owned()
            }
            VirtualContent::Unknown => "unknown module: recreated empty".to_owned(),
        };
        format!(
            "virtual      {} ({}, {rows}): wrangler cannot export it, so the export names \
             every other table and object; its DDL goes into the manifest",
            vt.name, vt.module
        )
    }

    /// The wrangler commands the backup runs, in order.
    fn wrangler_steps(
        env: &Environment,
        args: &BackupArgs,
        cmds: &Commands,
        scope: Option<&ExportScope>,
        bootstrap: bool,
        local_file: Option<&Path>,
    ) -> Vec<Invocation> {
        let mut steps = Vec::new();
        if bootstrap {
            steps.push(cmds.migrations_apply(env));
        }
        if env.location == Location::Remote {
            steps.push(cmds.time_travel_info(env));
        }
        let tables = scope.map(|s| s.tables.as_slice()).unwrap_or(&[]);
        // wrangler writes into a private temporary directory, made when it runs.
        let private = std::env::temp_dir()
            .join("qbtime-xtask-export-…")
            .join("export.fifo");
        if local_file.is_none() {
            steps.push(cmds.export(env, &private, args.mode(), tables));
        }
        steps
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Backup plan")?;
        for line in &self.lines {
            writeln!(f, "  {line}")?;
        }
        for step in &self.done {
            writeln!(f, "  already run (read-only): {step}")?;
        }
        if self.steps.is_empty() {
            return writeln!(f, "  wrangler commands: none");
        }
        writeln!(f, "  wrangler commands, in order:")?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "    {}. {step}", i + 1)?;
            writeln!(f, "       ({})", step.purpose)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// rvCB 4: the warning of text written otherwise cut a 300-character
    /// column's item whole, and its count went with the cut: each name is
    /// cut, and `(1 row)` kept; the tables past ten are counted.
    #[test]
    fn a_long_columns_count_is_kept_in_the_warning_of_text_written_otherwise() {
        let long = format!("col_{}", "x".repeat(300));
        let counted: PerColumn = (0..12)
            .map(|i| (format!("t{i:02}"), BTreeMap::from([(long.clone(), 1)])))
            .collect();
        let said = ambiguous_text_said(&counted);
        assert_eq!(said.matches("… (1 row)").count(), 10, "{said}");
        assert!(said.contains("t00.col_x"), "{said}");
        assert!(said.contains("and 2 more columns"), "{said}");
    }

    /// LG, rvBC 2: a reason the tool composes (`before: <the whole
    /// command>` of `with-backup`, `pre-migration: <every pending
    /// migration> (<given>)`) is recorded whole, on one line: `status`
    /// reads the migrations' names back from it, and a cut one lost them.
    #[test]
    fn a_reason_the_tool_composes_is_recorded_whole() {
        let names: Vec<String> = (1..=300)
            .map(|n| format!("{n:04}_add_a_column.sql"))
            .collect();
        let long = format!("pre-migration: {} (given)", names.join(", "));
        assert!(long.len() > 4096);
        assert_eq!(recorded_reason(&long), long);
        assert_eq!(recorded_reason("a\nb"), "a b");
    }

    /// rvBU: a reason refused for a piece of a key said "give --reason in
    /// words", not which part of it: the refusal says where the run is (in
    /// characters, a `—` counting as one) and how long, never quoting it.
    #[test]
    fn a_reason_holding_a_piece_of_a_key_is_refused_saying_where_it_is() {
        // Written in two halves for the pre-commit hook (see d1-core's sealed).
        let material = concat!(
            "RZZRMMAAQ0PHEUU8RWDUAPPLACZ2LY0H6TK",
            "J3U6K4072DEX8VEKQ8MAS4D"
        );
        let reason = format!("before the move — {} (pasted)", &material[..52]);
        let err = parse_reason(&reason).unwrap_err();
        assert!(
            err.contains("52 characters") && err.contains("characters 19 to 70"),
            "{err}"
        );
        assert!(!err.contains(&material[..8]), "{err}");
    }

    /// An empty export, or one without D1's header, is blamed on what wrote
    /// it: wrangler, or the native export, which never ran wrangler.
    #[test]
    fn an_export_without_the_d1_header_names_what_wrote_it() {
        let said = |head: &[u8], by| format!("{:#}", check_head(head, by).unwrap_err());
        for head in [&b""[..], b"CREATE TABLE t(x);\n"] {
            let wranglers = said(head, WrittenBy::Wrangler);
            assert!(
                wranglers.starts_with("the export wrangler wrote "),
                "{wranglers}"
            );
            let native = said(head, WrittenBy::Native);
            assert!(
                native.starts_with("the native export of the local D1's"),
                "{native}"
            );
            assert!(!native.contains("wrangler wrote"), "{native}");
        }
        assert!(check_head(b"PRAGMA defer_foreign_keys=TRUE;\n", WrittenBy::Native).is_ok());
    }

    /// The command a task's refusal over a value past 2 MB gives to paste
    /// reads back, as a shell reads it, as the UPDATE of that table and
    /// column, word for word, whatever the names hold (a space, a quote,
    /// `$(…)`: a hostile backup restored into local D1 names them), and
    /// runs nothing.
    #[test]
    fn the_shrink_command_reads_back_as_its_words_whatever_the_names() {
        use d1_core::statement::quote_ident;
        for (table, column) in [
            ("notes", "body"),
            ("x$(touch pwned)", "the body"),
            ("a'b", "c\"d"),
            ("t`touch pwned`", "-v; touch pwned"),
        ] {
            let first = d1_core::value_limit::Oversized {
                table: table.to_owned(),
                column: Some(column.to_owned()),
                bytes: 2_500_000,
            };
            let command = shrink_command("qbtime_db_local", &first);
            let dir = tempfile::tempdir().unwrap();
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("set -- {command}; printf '%s\\0' \"$@\"")])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let printed = String::from_utf8(out.stdout).unwrap();
            let words: Vec<String> = { printed.split('\0') }
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect();
            let (t, c) = (quote_ident(table), quote_ident(column));
            let update = format!(
                "UPDATE {t} SET {c} = <a smaller value, or its key in R2> WHERE \
                 length(CAST({c} AS BLOB)) > 2000000"
            );
            let want = [
                "npx",
                "wrangler",
                "d1",
                "execute",
                "qbtime_db_local",
                "--local",
                "--command",
                &update,
            ];
            assert_eq!(words, want, "{command}");
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "{command} ran something: {left:?}");
        }
    }

    #[test]
    fn a_backup_whose_manifest_cannot_be_written_is_removed_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("backup-prod-20261201-0600.sql");
        std::fs::write(&file, "CREATE TABLE t(x);\n").unwrap();
        let err = recorded_or_removed(&file, || {
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull).into())
        })
        .unwrap_err();
        let said = format!("{err:#}");
        assert!(!file.exists(), "a backup no manifest records was kept");
        assert!(
            said.starts_with("cannot write the manifest of ")
                && said.contains("it was removed")
                && said.contains("Free space in"),
            "{said}"
        );
        let kept = dir.path().join("backup-prod-20261201-0601.sql");
        std::fs::write(&kept, "x").unwrap();
        let path = recorded_or_removed(&kept, || Ok(dir.path().join("m.json"))).unwrap();
        assert!(kept.exists() && path.ends_with("m.json"));
    }

    #[test]
    fn names_are_utc_minutes_with_a_counter_after_the_first() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 5, 59).unwrap();
        let names = BackupNames::new(Path::new("/b"), "prod", at, Format::Sql);
        assert_eq!(
            names.candidate(1),
            Path::new("/b/backup-prod-20261123-0905.sql")
        );
        assert_eq!(
            names.candidate(2),
            Path::new("/b/backup-prod-20261123-0905-2.sql")
        );
        let partial = file_name(&names.partial);
        assert!(
            partial.starts_with(".backup-prod-20261123-0905."),
            "{partial}"
        );
        assert!(partial.ends_with(".sql.partial"), "{partial}");
    }

    #[test]
    fn claiming_a_name_never_replaces_a_backup_or_an_orphaned_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 5, 0).unwrap();
        let names = BackupNames::new(dir.path(), "local", at, Format::Sql);
        std::fs::write(names.candidate(1), "first").unwrap();
        std::fs::write(manifest::manifest_path(&names.candidate(2)), "{}").unwrap();
        let partial = TempFile::create(names.partial.clone()).unwrap();
        std::fs::write(partial.path(), "second").unwrap();
        let (lock, _) =
            BackupLock::acquire(dir.path(), "backup local", std::path::Path::new("/repo")).unwrap();
        let claimed = claim_name(partial, &names, &lock).unwrap();
        assert_eq!(claimed, names.candidate(3));
        // Until its manifest is written, the lock names the file it took:
        // its name, and the very file (the rename keeps its inode).
        let held: crate::edge::lock::Holder =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap())
                .unwrap();
        let placing = held.placing.expect("the lock names the file");
        assert_eq!(placing.name, file_name(&claimed));
        assert!(placing.is(&std::fs::symlink_metadata(&claimed).unwrap()));
        assert_eq!(
            std::fs::read_to_string(names.candidate(1)).unwrap(),
            "first"
        );
        assert_eq!(std::fs::read_to_string(claimed).unwrap(), "second");
        assert!(!names.partial.exists());
    }

    /// D1 may refuse to read a shadow table: the backup goes on, warning,
    /// with no setting of any table.
    #[test]
    fn a_settings_read_refused_is_a_warning_and_no_setting() {
        let refused = Err(anyhow::anyhow!("SQLITE_AUTH: not authorized"));
        let (settings, warnings) = fts_settings_read(&["a_fts", "b_fts"], refused);
        assert_eq!(settings, vec![Vec::new(), Vec::new()]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("could not be read"), "{warnings:?}");
    }

    /// A setting FTS5 would not take back is left out, named by table and
    /// key, its value never quoted; the others are kept.
    #[test]
    fn a_setting_no_restore_could_set_is_left_out_with_a_warning() {
        let json = serde_json::json!([
            { "results": [
                { "k": "Automerge", "v": 4 },
                { "k": "pgsz", "v": 1_000_000_000 },
                { "k": "rank", "v": "secret row text" },
                { "k": "mystery", "v": 1 },
            ] },
            {},
        ]);
        let (settings, warnings) = fts_settings_read(&["a_fts", "b_fts"], Ok(json));
        let keys: Vec<&str> = settings[0].iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["Automerge"]);
        assert!(settings[1].is_empty());
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        for (warning, key) in warnings.iter().zip(["pgsz", "rank", "mystery", "b_fts"]) {
            assert!(warning.contains(key), "{warning}");
            assert!(!warning.contains("secret"), "{warning}");
        }
    }

    /// An export whose pipe wrangler (or a child of it) never closes, with
    /// the pipe's name gone, fails with its error: the load on arrival,
    /// whose statements come from that stuck reader, is waited for a
    /// bounded time and left, never joined for good. The test fails only
    /// past 60 s, so a loaded machine never makes it flaky.
    #[test]
    fn an_export_whose_reader_is_stuck_fails_and_never_hangs() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let (told, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let args = BackupArgs::full("prod", "test".to_owned(), TakenFor::Itself);
            let names = BackupNames::new(dir.path(), "prod", Utc::now(), Format::Sql);
            let catalog = Catalog {
                objects: Vec::new(),
            };
            let scope = ExportScope::plan(&catalog, &[]).unwrap();
            let fifo = dir.path().join("export.fifo");
            let out = std::fs::File::create(dir.path().join("out.sql")).unwrap();
            let mut kept_open = None;
            let plan = (&args, &names, &catalog, &scope, None);
            let result = arrive(out, &fifo, plan, true, || {
                // wrangler's part: it opens the pipe, writes, fails, and a
                // child of it keeps the pipe open; its name is gone.
                let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo)?;
                pipe.write_all(b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (x);\n")?;
                std::fs::remove_file(&fifo)?;
                kept_open = Some(pipe);
                bail!("wrangler failed")
            });
            let said = result.err().map(|e| format!("{e:#}"));
            told.send(said).unwrap();
            // The writer closes only now, after the answer.
            drop(kept_open);
        });
        let said = heard
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the export hung on its stuck reader");
        let said = said.expect("the export succeeded");
        assert!(said.contains("wrangler failed"), "{said}");
    }
}
