//! The backup a restore reads: choosing it (a name, a path, `latest`),
//! reading it with or without a manifest, and checking it against the
//! target before the target is read; the survey of the repair it needs,
//! the preflight and the trial load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::guards::{Deferred, guard_dump_scope};
use super::guards::{
    guard_applied_migrations_unchanged, guard_backup_scope, guard_clean_new_migrations_known,
    guard_clean_new_scope, guard_dump_migrations, guard_same_binding, guard_same_migrations,
    guard_source_environment, warn_if_latest_is_a_safety_backup,
};
use super::{Mode, RestoreArgs, Source};
use crate::config::environment::{Environment, Environments, Location};
use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::local_d1;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::stored;
use d1_core::catalog::{Catalog, VirtualTable};
use d1_core::dump;
use d1_core::manifest::{self, Manifest};
use d1_core::repair;
use d1_core::statement;

/// The migrations directory the restored database is judged by (and
/// `--clean` makes its schema with): a new database has none of its own
/// yet, so it is the backup's database's, as the binding printed for it
/// says.
pub(super) fn migrations_dir_for(
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
/// gave (for a manifest, only where no environment records its database:
/// [`said_beside_manifest`]).
pub(super) fn source_environment<'e>(
    envs: &'e Environments,
    source: &Source,
) -> Option<&'e Environment> {
    let said = |name: Option<&str>| name.and_then(|env| envs.resolve(env).ok());
    match &source.manifest {
        Some(m) => (envs.whose(m)).or_else(|| said(source.said_environment.as_deref())),
        None => said(source.environment.as_deref()),
    }
}

/// `--source-env` beside a manifest: taken only where it says what the
/// manifest cannot, whose migrations and binding a new database gets when
/// no environment names the database the manifest records now (the
/// configuration moved it). Where an environment records it, the manifest
/// already says; into an existing database, the source-environment guards
/// judge the manifest's own record, which a flag never overrides.
fn said_beside_manifest(
    envs: &Environments,
    source: &Source,
    said: &str,
    new: bool,
) -> Result<String> {
    let m = source.manifest.as_ref().expect("a manifest");
    if let Some(env) = envs.whose(m) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{}'s manifest records that it was taken from {} ({}): drop --source-env {}, which is \
             for a dump without a manifest, or one whose database no environment names now. \
             Nothing was done.",
            source.file.display(),
            env.name,
            d1_core::names::shown(&m.database.name),
            d1_core::names::shown(said)
        );
    }
    if !new {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--source-env {} beside {}'s manifest names whose migrations and binding a new \
             database gets: it is only for --to new:NAME. Into an existing database, a backup \
             is judged by the database its manifest records ({}). Nothing was done.",
            d1_core::names::shown(said),
            source.file.display(),
            d1_core::names::shown(&m.database.name)
        );
    }
    let env = envs.resolve(said)?;
    guard_said_is_the_manifests(envs, source, env)?;
    Ok(env.name.clone())
}

/// The environment `--source-env` names beside a manifest says which
/// database its environment has now, never which environment it was taken
/// from: that is the manifest's. Another one than the environment the
/// manifest records is refused while an environment has that name, and
/// production always (only production's backups go there).
fn guard_said_is_the_manifests(
    envs: &Environments,
    source: &Source,
    said: &Environment,
) -> Result<()> {
    let m = source.manifest.as_ref().expect("a manifest");
    let recorded = crate::config::environment::short_name(&m.environment);
    let its_own = envs.iter().find(|e| e.env_name == recorded);
    if said.env_name == recorded || (its_own.is_none() && !said.is_production()) {
        return Ok(());
    }
    let way = match its_own {
        Some(e) => format!("name that one (--source-env {})", e.name),
        None => "put that environment back in the configuration, and name it".to_owned(),
    };
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{}'s manifest records that it was taken from {}, not {}: --source-env names the \
         environment the backup was taken from, whose database has moved, never another one{}. \
         To give the new database that environment's migrations and binding, {way}. Nothing \
         was done.",
        source.file.display(),
        d1_core::names::shown(&m.environment),
        said.name,
        if said.is_production() {
            " (only production's backups may become production's database)"
        } else {
            ""
        }
    )
}

/// The backup to restore, read and checked against the target before the
/// target is read: its environment, its binding, its scope and, for
/// `--clean`, its migrations. Returns it, the migrations directory the
/// restored database is judged by ([`migrations_dir_for`]), and the
/// refusals said with the guards after ([`Deferred`]).
pub(super) fn check_source(
    project: &Project,
    envs: &Environments,
    target: &Environment,
    args: &RestoreArgs,
    new: bool,
) -> Result<(Source, PathBuf, Vec<Deferred>)> {
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
    let mut source = resolve_source(project, envs, target, args)?;
    if let Some(said) = args
        .source_env
        .as_deref()
        .filter(|_| source.manifest.is_some())
    {
        source.said_environment = Some(said_beside_manifest(envs, &source, said, new)?);
    }
    if new && mode == Mode::Clean {
        guard_clean_new_scope(&source, target)?;
        let known = source_environment(envs, &source).is_some();
        guard_clean_new_migrations_known(&source, target, known)?;
    }
    // Taken inside a rehearsal, by its manifest's mark or by the dump's
    // own first line (a copy of the file alone, `--no-manifest`).
    crate::steps::rehearsals::refuse_outside_its_rehearsal(
        &source.file,
        { source.manifest.as_ref() }.and_then(|m| m.rehearsal.as_deref()),
        || source.data.head_up_to(stored::MARKED_HEAD).ok(),
        &target.database_name,
    )?;
    let origin = guard_source_environment(&source, target, args, envs, &project.backup_dir)?;
    // A dump of unknown origin aimed at production is refused here, alone,
    // before production is read: gathered with the later refusals, it
    // came after the credentials' (found by the suite:
    // `restore_local::guards_refuse_with_nothing_executed`).
    let origin = match origin {
        Some(d) if matches!(d.answer, super::guards::Answer::SourceEnv(_)) => return Err(d.alone),
        origin => origin,
    };
    guard_same_binding(&source, target, envs)?;
    let scope = guard_backup_scope(&source, target, mode, args.partial, new)?;
    let dir = migrations_dir_for(project, envs, &source, target, new);
    // Every guard judges with the migrations: without their directory the
    // restore stops here, named with its fix, exit 2, not at the trigger
    // guard advising --allow-trigger for every trigger (MB).
    crate::steps::migrations::require_dir(&dir)?;
    if mode == Mode::Clean {
        guard_same_migrations(&source, &dir)?;
    }
    let records = applied_records(project, envs, (&source, target), &dir)?;
    guard_applied_migrations_unchanged(
        (&source.file, source.manifest.as_ref()),
        (&dir, &records),
        mode,
    )?;
    Ok((source, dir, origin.into_iter().chain(scope).collect()))
}

/// This machine's records of what was applied that the backup is held to
/// besides its own manifest's
/// ([`crate::steps::migrations::records_judging`]): the target's and the
/// backup's environment's (by its manifest, or `--source-env` without
/// one), where their migrations are `dir`'s.
fn applied_records(
    project: &Project,
    envs: &Environments,
    (source, target): (&Source, &Environment),
    dir: &Path,
) -> Result<Vec<crate::steps::migrations::Record>> {
    Ok(crate::steps::migrations::records_judging(
        project,
        &crate::edge::inventory::scan(&project.backup_dir)?,
        (source_environment(envs, source), target),
        (&source.file, dir),
    ))
}

/// The repair the dump needs, surveyed in one pass over the dump; without
/// a manifest, the same pass counts the rows and reads the key in force.
/// What it finds to warn of is said ([`super::warn_of_the_dump`]); a
/// scope it refuses is added to `deferred`.
#[allow(clippy::type_complexity)]
pub(super) fn survey_dump(
    project: &Project,
    source: &mut Source,
    migrations_dir: &Path,
    (args, target, deferred): (&RestoreArgs, &Environment, &mut Vec<Deferred>),
    catalog: &Catalog,
) -> Result<(
    repair::Options,
    repair::Survey,
    BTreeMap<String, String>,
    Vec<String>,
)> {
    let mode = args.mode();
    let options = clean_options(source, migrations_dir, (mode, target), catalog)?;
    let settings = project.settings()?;
    // The dump's triggers, by name, and every statement of its schema, read
    // in the survey's pass.
    let mut triggers = BTreeMap::new();
    let mut schema = Vec::new();
    let mut creates = 0usize;
    let mut named = NamedOnce::default();
    let mut note_trigger =
        |sql: &str| note_schema(sql, (&mut triggers, &mut schema, &mut creates, &mut named));
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
    let (survey, mut summary) = repair::survey_observing(source.data.open()?, &options, |sql| {
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
        source.upserted.extend(upserted_table(sql));
        summary.statement(sql)
    })
    .and_then(|survey| {
        // A data-only export has no CREATE TABLE: the rows it reports by
        // content (the key in force) are read in the schema they go into,
        // the migrations' or the target's (a dump's own CREATE wins).
        Ok((survey, summary.finish(&options.known_tables)?))
    })
    .with_context(|| format!("reading {}", source.file.display()))?;
    recorded_virtual_tables(source).for_each(&mut note_trigger);
    named.refuse_twice(&source.file)?;
    if source.manifest.is_none() {
        // Rows are counted where the repair loads them.
        summary
            .rows
            .retain(|t, _| survey.loads_rows_of(&options, t));
    }
    check_surveyed(
        source,
        mode,
        migrations_dir,
        (survey.statements, creates),
        summary,
        wide,
        settings.app.encryption_key.is_some(),
    )?;
    super::guards::guard_missing_parents(source, &survey, mode)?;
    let scope = guard_dump_scope(source, &schema, migrations_dir, mode, args.partial);
    deferred.extend(scope);
    super::warn_of_the_dump(source, &survey);
    Ok((options, survey, triggers, schema))
}

/// The table `sql` INSERTs into with an upsert clause (`ON CONFLICT`), if
/// it is such an INSERT: the row-count warning names it.
fn upserted_table(sql: &str) -> Option<String> {
    d1_core::statement::is_upsert(sql)
        .then(|| d1_core::statement::insert_target(sql))
        .flatten()
}

/// The CREATEs of the FTS5 tables a backup's manifest records, which its
/// export leaves out and the restore makes: every guard judges them as it
/// judges a sqlite3 .dump's record ([`note_schema`]). A manifest recording
/// `d1_migrations`, or a migration's table, as one (its dump not making
/// it) went in unjudged (NZ).
fn recorded_virtual_tables(source: &Source) -> impl Iterator<Item = &str> {
    let recorded = source.manifest.is_some().then_some(&source.virtual_tables);
    recorded.into_iter().flatten().map(|vt| vt.sql.as_str())
}

/// What the survey found, held against the source: a dump that is empty is
/// refused; one with a manifest must be what it describes (its wide
/// integers and key taken where an older manifest records none); one
/// without takes its rows and key from the dump.
pub(super) fn check_surveyed(
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
                     in backups.toml was since). Nothing was written. `cargo xtask verify {}` \
                     records it as BAD, and `latest` then passes it over; or restore it with \
                     --no-manifest to go by the dump alone.",
                    source.file.display(),
                    contradictions.join("; "),
                    d1_core::wording::shell_word(&source.file.display().to_string())
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
            refuse_a_data_only_dump_without_clean(source, mode, creates)?;
            if mode == Mode::Clean {
                guard_dump_migrations(&source.file, &summary.migrations, migrations_dir)?;
            }
            source.rows = summary.rows;
            source.encryption_key = summary.encryption_key;
            source.recorded = summary.migrations;
        }
    }
    Ok(())
}

/// Whether `sql` creates an object of the schema: a dump with none is a
/// data-only dump.
/// The names a dump's `CREATE` statements give, to find one given twice.
/// A database's schema holds one table, view or index of a name (they share
/// one namespace, a virtual table too) and one trigger, as SQLite matches
/// names (ASCII case aside), so no export creates one twice. A dump that
/// does, its own object first and the migrations' text after it under `IF
/// NOT EXISTS`, has SQLite keep the first and pass over the second, while
/// the guards, reading the dump's statements by name, judged the second:
/// a table without its CHECK, or a trigger that does nothing, went in
/// unjudged. Such a dump is refused before anything is judged or run.
#[derive(Default)]
struct NamedOnce {
    seen: std::collections::HashSet<(bool, String)>,
    twice: Vec<(&'static str, String)>,
}

impl NamedOnce {
    fn note(&mut self, sql: &str) {
        if let Some((kind, name)) = statement::created_any(sql) {
            let key = (kind == "trigger", name.to_ascii_lowercase());
            if !self.seen.insert(key) && self.twice.len() < 20 {
                self.twice.push((kind, name));
            }
        }
    }

    fn refuse_twice(&self, file: &Path) -> Result<()> {
        if self.twice.is_empty() {
            return Ok(());
        }
        let said: Vec<String> = { self.twice.iter() }
            .map(|(kind, name)| format!("{kind} {}", d1_core::names::shown_name(name)))
            .collect();
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} creates a name twice ({}): a database's schema holds one object of a name, so no \
             export of one does this; SQLite would keep the first and pass over the second, \
             which is the one the checks would judge. Restore a backup the tool or wrangler \
             wrote. Nothing was done.",
            file.display(),
            said.join(", ")
        );
    }
}

/// Notes `sql` if it is a statement of the dump's schema: its text (a
/// trigger's by name too), whether it creates an object, and its name, to
/// find one given twice. A sqlite3 .dump's record of an FTS5 table is read
/// as the CREATE it is made with (`repair::judged_create`): every guard
/// judges it so.
fn note_schema(
    sql: &str,
    (triggers, schema, creates, named): (
        &mut BTreeMap<String, String>,
        &mut Vec<String>,
        &mut usize,
        &mut NamedOnce,
    ),
) {
    let Some(sql) = repair::judged_create(sql) else {
        return;
    };
    *creates += usize::from(creates_an_object(&sql));
    named.note(&sql);
    if let Some(("trigger", name)) = statement::created_object(&sql) {
        triggers.insert(name, sql.clone().into_owned());
    }
    schema.push(sql.into_owned());
}

fn creates_an_object(sql: &str) -> bool {
    let virtual_table = { statement::strip_keyword(statement::skip_trivia(sql), "CREATE") }
        .and_then(|rest| statement::strip_keyword(rest, "VIRTUAL"))
        .and_then(|rest| statement::strip_keyword(rest, "TABLE"))
        .is_some();
    virtual_table || statement::created_object(sql).is_some()
}

/// A dump without a manifest that holds rows and creates no table: a
/// data-only export (the runbook's hand-made `wrangler d1 export
/// --no-schema`), known so without a manifest too, whose rows go into the
/// schema the migrations make: `--clean` is its way, as for a data-only
/// backup ([`super::guards::refuse_a_data_only_backup_without_clean`]).
/// Any other mode would load them into tables that are not there (the
/// trial load of `--replace` failed on "no such table: d1_migrations").
fn refuse_a_data_only_dump_without_clean(
    source: &Source,
    mode: Mode,
    creates: usize,
) -> Result<()> {
    if creates == 0 && mode != Mode::Clean {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} creates no table: it is a data-only dump (as `wrangler d1 export --no-schema` \
             writes), whose rows go into the schema the migrations make, so restoring it --{} \
             would load them into tables that are not there. Restore it with --clean, which \
             applies the migrations to a database with no tables and loads the rows into them. \
             Nothing was done.",
            source.file.display(),
            mode.name()
        )
    }
    Ok(())
}

/// [`repair_options`], and with `--clean` without the virtual tables of
/// the backup's that it leaves out ([`leave_out_virtual_tables`]).
fn clean_options(
    source: &mut Source,
    migrations_dir: &Path,
    (mode, target): (Mode, &Environment),
    catalog: &Catalog,
) -> Result<repair::Options> {
    let mut options = repair_options(source, migrations_dir, (mode, target), catalog)?;
    if mode == Mode::Clean {
        leave_out_virtual_tables(source, &options.known_tables)?;
        let left = &source.left_out_virtual;
        (options.virtual_tables).retain(|v| !left.iter().any(|l| l.name == v.name));
    }
    Ok(options)
}

/// With `--clean`, takes out of `source.virtual_tables` those the
/// migrations' schema (`made`, by name) does not make, into
/// `source.left_out_virtual`: they are not made, and the plan says so.
/// Refuses (exit 3), before anything runs, one the backup holds rows of
/// (as the manifest counts them, in its content table): they would have
/// no table to go into, as rows of a plain table the migrations lack.
pub(super) fn leave_out_virtual_tables(
    source: &mut Source,
    made: &BTreeMap<String, String>,
) -> Result<()> {
    let is_made = |name: &str| made.keys().any(|m| m.eq_ignore_ascii_case(name));
    let (kept, left): (Vec<VirtualTable>, Vec<VirtualTable>) =
        { std::mem::take(&mut source.virtual_tables).into_iter() }.partition(|v| is_made(&v.name));
    source.virtual_tables = kept;
    let held: Vec<String> = { left.iter() }
        .filter_map(|v| {
            let rows = d1_core::catalog::rows_of_virtual_table(v, &source.rows);
            (rows > 0).then(|| {
                format!(
                    "{} of virtual table {}",
                    d1_core::wording::count(rows, "row"),
                    d1_core::names::shown_name(&v.name)
                )
            })
        })
        .collect();
    if !held.is_empty() {
        return Err(crate::exit::Exit::Refused.error(anyhow::anyhow!(
            "{} holds {}, which the migrations do not create: a clean restore loads rows into \
             the schema the migrations make, not the backup's own. Restore it with --replace \
             instead, or make that table a migration (then apply it and restore again). \
             Nothing was done",
            source.file.display(),
            held.join(", ")
        )));
    }
    source.left_out_virtual = left;
    Ok(())
}

/// The repair options for restoring `source` into `target` by `mode`: the
/// schema it goes into, its virtual tables, chosen tables and counters,
/// and, for a remote target (a new database too), every `--` comment at
/// the end of an object's text closed, so that D1's export of it loads. A
/// local target keeps the text as written: its backups, native, cope, and
/// a backup of it is the backup restored, byte for byte.
pub(super) fn repair_options(
    source: &Source,
    migrations_dir: &Path,
    (mode, target): (Mode, &Environment),
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
        close_line_comments: target.location == Location::Remote,
        // The migrations `--clean` applies are those the backup was taken
        // under: their schema tells the order of unnamed INSERTs' columns.
        schema_is_the_dumps: mode == Mode::Clean && { source.manifest.as_ref() }
            .is_some_and(|m| crate::steps::migrations::made_the_schema_of(m, migrations_dir)),
        taken_at_commit: { source.manifest.as_ref() }.and_then(|m| m.git_commit.clone()),
    })
}

/// Every refusal the repair and the SQL gate can make, made now: nothing
/// has run against the target yet, not even the safety backup or
/// `--clean`'s migrations.
/// `local_wrangler` is the target when `wrangler d1 execute --local` is to
/// run the load: a statement it would rewrite is refused here too
/// ([`super::load::LOCAL_WRANGLER_TRIMS`]).
/// The dump's triggers, as its statements read and as SQLite made them, go
/// into `triggers`; it returns the bytes of the
/// repaired SQL as a load through wrangler writes it to its file (drops
/// and pragma aside).
pub(super) fn preflight(
    source: &Source,
    survey: &repair::Survey,
    options: &repair::Options,
    local_wrangler: Option<&Environment>,
    triggers: &mut BTreeMap<String, String>,
) -> Result<u64> {
    survey
        .ensure_repairable()
        .map_err(misfit_refused)
        .with_context(|| {
            format!(
                "{} cannot be restored to D1; nothing was done",
                source.file.display()
            )
        })?;
    refuse_rows_into_fts5_shadow_tables(source, survey, options)?;
    let mut preflight = Watching {
        sink: repair::Preflight::new(options)?.of_dump(survey),
        trimmed: false,
        bytes: 0,
    };
    // Read as the load will read it: a file changed since it was checked
    // is refused here, before the safety backup or anything else runs.
    repair::write_piped(source.open_for_load()?, survey, options, &mut preflight)
        .map_err(misfit_refused)
        .with_context(|| {
            format!(
                "{} cannot be loaded; nothing was done",
                source.file.display()
            )
        })?;
    if let Some(target) = local_wrangler.filter(|_| preflight.trimmed) {
        super::load::refuse_local_wrangler_rewrite(target, "Nothing was done")?;
    }
    triggers.extend(preflight.sink.triggers());
    Ok(preflight.bytes)
}

/// `e`, marked a guard's refusal (exit 3) when it is a [`repair::Misfit`]:
/// rows with no place in the migrations' schema a `--clean` restore loads
/// them into, refused before anything runs, as a table the dump defines
/// otherwise than its migrations is.
fn misfit_refused(e: anyhow::Error) -> anyhow::Error {
    match crate::exit::find::<repair::Misfit>(&e) {
        Some(_) => crate::exit::Exit::Refused.error(e),
        None => e,
    }
}

/// Refuses (exit 2) a dump whose rows go into a shadow table of an FTS5
/// table of the schema they load into (the migrations', for `--clean`),
/// which D1 allows no write to: an export of tables named one by one
/// (`wrangler d1 export --table`) writes FTS5 shadow tables as plain tables.
/// Else the load fails after the migrations ran, with the schema only left.
fn refuse_rows_into_fts5_shadow_tables(
    source: &Source,
    survey: &repair::Survey,
    options: &repair::Options,
) -> Result<()> {
    // Else the dump makes its own tables: `--replace` drops the target's.
    if !options.data_into_existing_schema {
        return Ok(());
    }
    let fts5: Vec<VirtualTable> = { options.known_tables.iter() }
        .filter_map(|(name, sql)| VirtualTable::from_sql(name, sql))
        .collect();
    let shown = d1_core::names::shown;
    let into: Vec<String> = { survey.rows.iter() }
        .filter(|(_, n)| **n > 0)
        .filter_map(|(table, _)| {
            let vt = d1_core::catalog::fts5_shadow_table_of(table, &fts5)?;
            Some(format!(
                "{} (of FTS5 table {})",
                shown(table),
                shown(&vt.name)
            ))
        })
        .collect();
    if !into.is_empty() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} cannot be restored here: it writes rows into {}, shadow tables of FTS5 tables \
             the migrations make, which D1 allows no write to. It looks like an export of \
             tables named one by one (`wrangler d1 export --table`), which writes FTS5 shadow \
             tables as plain tables. Nothing was done. Restore a backup `cargo xtask backup` \
             took, which carries FTS5 tables, or export again without the shadow tables and \
             fill the FTS5 tables from their rows after the restore.",
            source.file.display(),
            into.join(", ")
        );
    }
    Ok(())
}

/// The preflight's sink, which also notes a statement holding what
/// wrangler's local execute rewrites, and counts the bytes a load through
/// wrangler writes (each statement and its line break).
struct Watching {
    sink: repair::Preflight,
    trimmed: bool,
    bytes: u64,
}

impl repair::Sink for Watching {
    fn at_line(&mut self, line: Option<usize>) {
        self.sink.at_line(line);
    }

    fn statement(&mut self, sql: &str) -> Result<()> {
        self.trimmed |= sql.contains(super::load::LOCAL_WRANGLER_TRIMS);
        self.bytes += sql.len() as u64 + 1;
        self.sink.statement(sql)
    }
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
///
/// `repaired` (the bytes of the SQL it runs) stands for the scratch
/// database's size: one the temporary directory has no room for is
/// refused first ([`refuse_no_room_for_trial`]). `safety_backup` and
/// `mode` are the plan's: nothing is tried unless they call for it.
pub(super) fn trial_load(
    source: &Source,
    survey: &repair::Survey,
    options: &repair::Options,
    repaired: u64,
    (safety_backup, mode): (bool, Mode),
) -> Result<()> {
    if !safety_backup || source.manifest.is_some() || mode == Mode::Clean {
        return Ok(());
    }
    refuse_no_room_for_trial(repaired)?;
    let scratch = crate::edge::wrangler::PrivateDir::create("restore-trial")?;
    let db = scratch.path().join("trial.sqlite");
    let tried = std::fs::File::create(&db)
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            let mut loader = local_d1::Loader::open_scratch(&db)?;
            loader.load(source.open_for_load()?, survey, options)?;
            loader.commit()
        });
    let Err(e) = tried else {
        return Ok(());
    };
    // The machine's fault (the file could not be read, age was killed, the
    // scratch database could not be written) says nothing of the dump: its
    // error as it is, never "refused" (rvAY).
    if machine_fault(&e) {
        return Err(e.context(format!(
            "{} could not be loaded into a scratch database (it has no manifest, so it is \
             loaded there first); nothing ran against the target and no safety backup was taken",
            source.file.display()
        )));
    }
    // A refusal of the dump, before the target is touched: exit 3, as any
    // guard's (a table over D1's 100 columns, a key given twice).
    let e = match crate::exit::Exit::of(&e) {
        Some(_) => e,
        None => crate::exit::Exit::Refused.error(e),
    };
    Err(e.context(format!(
        "{} cannot be loaded: it has no manifest, so it was first loaded into a scratch \
         database, which refused it; nothing ran against the target and no safety backup was \
         taken",
        source.file.display()
    )))
}

/// Whether `e` is the machine's fault, not the dump's: an OS error reading
/// or writing a file, a stored backup that could not be read
/// ([`crate::edge::stored::NotTheFile`]: age killed, an I/O error), or
/// SQLite failing for the machine ([`d1_core::checks::environmental`]: a
/// full disk, memory).
fn machine_fault(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<crate::edge::stored::NotTheFile>()
            || { c.downcast_ref::<std::io::Error>() }
                .is_some_and(crate::edge::stored::not_the_files_fault)
            || c.downcast_ref::<rusqlite::Error>()
                .is_some_and(d1_core::checks::environmental)
    })
}

/// Refuses, before anything runs, a trial load whose scratch database (of
/// about `repaired` bytes, the SQL it loads) the temporary directory has
/// no room for: it filled the disk there, and the dump was said to be
/// refused. The rule and words of `load::refuse_no_room_for_file`.
fn refuse_no_room_for_trial(repaired: u64) -> Result<()> {
    let dir = std::env::temp_dir();
    let free = d1_core::room::available_bytes(&dir);
    let Some(free) = d1_core::room::short_of(repaired, free) else {
        return Ok(());
    };
    let size = d1_core::wording::size;
    Err(crate::exit::could_not_run(anyhow::anyhow!(
        "the restore first loads the dump, which has no manifest, into a scratch database in \
         the temporary directory {} (about the size of its repaired SQL, {}, {repaired} \
         bytes), and the file system holding it has {} ({free} bytes) free; nothing was done. \
         Free space there, or set TMPDIR to a directory with room, then restore again",
        dir.display(),
        size(repaired),
        size(free)
    )))
}

impl Source {
    /// Whether `--clean` leaves out `table` ([`Source::left_out`]): it
    /// held no row, and is not made.
    pub(super) fn leaves_out(&self, table: &str) -> bool {
        { self.left_out.iter() }.any(|(kind, name)| *kind == "table" && name == table)
            || d1_core::catalog::fts5_shadow_table_of(table, &self.left_out_virtual).is_some()
    }

    /// The migrations the backup records as applied, which its triggers
    /// and schema are held to ([`crate::steps::migrations::applied_recorded`],
    /// as verify holds them). Without a manifest it used to be every one,
    /// and a pending migration that does not run in SQLite switched the
    /// schema guard off for a dump that never applied it.
    pub(super) fn applied(&self) -> Option<&[String]> {
        crate::steps::migrations::applied_recorded(self.manifest.as_ref(), &self.recorded)
    }

    /// The SQL for loading, hashed as it is read and refused at its end
    /// unless it is the SQL the manifest records or, without a manifest,
    /// the SQL the restore first read and surveyed: a file changed between
    /// the plan and the load never reaches the target.
    pub(super) fn open_for_load(&self) -> Result<Box<dyn std::io::BufRead + Send>> {
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

/// The `CREATE TABLE` and `CREATE TRIGGER` statements that applying `dir`'s
/// migrations makes. A clean restore needs them (the tables name a split
/// row's columns, the triggers are held off while the rows load): one that
/// does not run here stops it, before anything runs.
pub(super) fn schema_from_migrations(
    dir: &Path,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    use crate::steps::migrations::{migration_files, read_migrations, schema_created_by};
    schema_created_by(&read_migrations(dir, &migration_files(dir)?)?).context(
        "a clean restore loads the rows into the schema the migrations make, holding their \
         triggers off, so it must know that schema; restore a full backup with --replace \
         instead. Nothing was done",
    )
}

/// How `restore latest` that is a safety backup is told to name another.
const ANOTHER_BACKUP: &str = "To restore another backup, name its file.";

/// Finds the source file and its facts, and checks it against its manifest.
pub(super) fn resolve_source(
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
    dump::check_file_looks_like_sql(&head, &file)
        .with_context(|| format!("{}", file.display()))
        .map_err(crate::exit::could_not_run)?;
    if args.no_manifest {
        return source_without_manifest(file, data, envs, args);
    }
    let manifest_path = manifest::manifest_path(&file);
    // Whatever is there (a FIFO, a link) is read, or refused, as a
    // manifest: it is not a missing one.
    if std::fs::symlink_metadata(&manifest_path).is_err() {
        refuse_link_to_a_backup(&file)?;
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
        // The next step, as commands that run as printed: verify says
        // what else differs (and records it BAD, so `latest` passes it
        // over), list names the backups to restore instead.
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} does not match its manifest: {differs}. Refusing to restore it. `cargo xtask \
             verify {}` shows what differs; `cargo xtask list` lists the other backups, one of \
             which to restore instead (`latest:{}` is the newest verified one of the target).",
            file.display(),
            d1_core::wording::shell_word(&file.display().to_string()),
            target.name
        );
    }
    if let Some(sealed) = &manifest.sealed {
        check_sealed_plaintext(&file, &data, sealed)?;
    }
    warn_if_latest_is_a_safety_backup(&args.source, &manifest, ANOTHER_BACKUP);
    Ok(Source {
        file,
        data,
        environment: Some(manifest.environment.clone()),
        said_environment: None,
        rows: manifest.rows.clone(),
        encryption_key: manifest.encryption_key.clone(),
        virtual_tables: manifest.virtual_table_ddl(),
        wide_integers: manifest.wide_integers.clone().unwrap_or_default(),
        manifest: Some(manifest),
        pinned: None,
        recorded: Vec::new(),
        upserted: BTreeSet::new(),
        schema_only: false,
        left_out: Vec::new(),
        left_out_virtual: Vec::new(),
    })
}

/// A file given by a link, with no manifest beside the link but one
/// beside the file it leads to: refused (exit 2) naming that file and its
/// manifest, the way to restore it checked. A manifest names the one file
/// it describes, so the link is never read as that backup, and
/// `--no-manifest` (which the missing manifest would otherwise suggest)
/// would skip every check the manifest makes.
fn refuse_link_to_a_backup(file: &Path) -> Result<()> {
    let Some(target) = link_target(file) else {
        return Ok(());
    };
    let beside = manifest::manifest_path(&target);
    if std::fs::symlink_metadata(&beside).is_err() {
        return Ok(());
    }
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{} is a link to {}, whose manifest is beside it ({}): restore that file by its own \
         path (or its name, as `cargo xtask list` prints it), so that its manifest is checked. \
         Nothing was done.",
        file.display(),
        target.display(),
        beside.display()
    );
}

/// The file `file` leads to, when it is a symbolic link (each link on the
/// way followed).
fn link_target(file: &Path) -> Option<PathBuf> {
    let linked = std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink());
    linked.then(|| std::fs::canonicalize(file).ok()).flatten()
}

/// A backup restored with `--no-manifest`: its environment is the one
/// `--source-env` names, if any, and what it holds is read from the dump.
pub(super) fn source_without_manifest(
    file: PathBuf,
    data: stored::Source,
    envs: &Environments,
    args: &RestoreArgs,
) -> Result<Source> {
    let environment = match &args.source_env {
        Some(name) => {
            let said = envs.resolve(name)?;
            guard_said_is_the_manifest_beside(&file, said, envs)?;
            Some(said.name.clone())
        }
        None => None,
    };
    // The rows and the key are counted from the dump in the survey's
    // pass; what the load reads must be what was read now.
    let pinned = Some(data.plaintext_digest()?);
    // The FTS5 tables a sqlite3 .dump records by writing sqlite_schema,
    // made as a backup's manifest has them made.
    let virtual_tables = repair::dumped_virtual_tables(data.open()?)?;
    Ok(Source {
        file,
        data,
        manifest: None,
        environment,
        said_environment: None,
        rows: BTreeMap::new(),
        encryption_key: None,
        virtual_tables,
        pinned,
        wide_integers: BTreeMap::new(),
        recorded: Vec::new(),
        upserted: BTreeSet::new(),
        schema_only: false,
        left_out: Vec::new(),
        left_out_virtual: Vec::new(),
    })
}

/// `--no-manifest --source-env ENV` on a file with a manifest beside it:
/// what it states must not contradict what the manifest records. One
/// recording another environment or database (another id) is refused
/// (exit 3), trusted or not: a manifest that fails validation
/// ([`ManifestFile::for_backup`], the one place that decides what in it to
/// trust; a copy renamed with its backup, `fix.manifest.json`, always
/// does) is no reason to believe it, but one contradicting what the
/// operator states is a reason to stop. One that agrees but cannot be
/// trusted is said to have been passed over.
///
/// A file given by a link (`latest.sql` leading to a backup) is judged by
/// the manifest beside the file it leads to as well: where the link is
/// says nothing of whose rows it holds. And something beside it that
/// cannot be read as a manifest at all (a link, a FIFO, broken JSON) is
/// refused too (exit 3), never gone on past with a warning: what it
/// records cannot be held against `--source-env`, so nothing says the rows
/// are that environment's. Moving it aside is the way.
fn guard_said_is_the_manifest_beside(
    file: &Path,
    said: &Environment,
    envs: &Environments,
) -> Result<()> {
    let target = link_target(file);
    for backup in std::iter::once(file).chain(target.as_deref()) {
        guard_said_is_the_manifest_of(backup, said, envs)?;
    }
    Ok(())
}

/// [`guard_said_is_the_manifest_beside`] of the manifest beside `file`.
fn guard_said_is_the_manifest_of(
    file: &Path,
    said: &Environment,
    envs: &Environments,
) -> Result<()> {
    let path = manifest::manifest_path(file);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    let m = match Manifest::parse(&path) {
        Ok(m) => m,
        Err(e) => crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore {} as a backup of {}, as --source-env {} states: {} is beside \
             it but cannot be read as its manifest ({e:#}), so what it records cannot be held \
             against what you state. Move it aside (or put the manifest it should be in its \
             place) and run this again. Nothing was done.",
            file.display(),
            said.name,
            said.name,
            path.display()
        ),
    };
    let untrusted = Manifest::for_backup(file).err();
    let Some(contradiction) = contradiction(said, envs, &m) else {
        if let Some(e) = &untrusted {
            crate::warn!(
                "{} is beside the dump but could not be trusted as its manifest ({e:#}); going \
                 on as --source-env {} states, which it agrees with",
                path.display(),
                said.name
            );
        }
        return Ok(());
    };
    let (trust, way) = match &untrusted {
        Some(e) => (
            format!(", which cannot be trusted as its manifest ({e:#}) but still"),
            "To restore the backup that manifest describes, give that file, beside it, and drop \
             --no-manifest",
        ),
        None => (
            String::new(),
            "To restore it as its manifest records, drop --no-manifest",
        ),
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to restore {} as a backup of {} ({}, id {}), as --source-env {} states: the \
         manifest beside it, {}{trust}, {contradiction}. {way}; if that manifest is known to be \
         wrong, move it aside and run this again. Nothing was done.",
        file.display(),
        said.name,
        said.database_name,
        d1_core::names::shown(&said.database_id),
        said.name,
        path.display(),
    )
}

/// What the manifest `m` records that contradicts `--source-env` naming
/// `said`: its database with another id ([`Environment::another_id`]), or
/// another environment or database; `None` when it agrees. Ids are
/// quoted alike, as names are ([`d1_core::names::shown`]).
fn contradiction(said: &Environment, envs: &Environments, m: &Manifest) -> Option<String> {
    let shown = d1_core::names::shown;
    let id = m.database.uuid.as_str();
    if said.records(m) {
        return said.another_id(id).then(|| {
            format!(
                "records database id {}, not {} (the id the configuration gives {})",
                shown(id),
                shown(&said.database_id),
                said.name
            )
        });
    }
    let known = match envs.whose(m) {
        Some(e) if !e.another_id(id) => format!(", which is {}", e.name),
        _ => String::new(),
    };
    Some(format!(
        "records that it was taken from {} (database {}, id {}){known}",
        shown(&m.environment),
        shown(&m.database.name),
        shown(id)
    ))
}

/// A sealed backup must decrypt and decompress to the SQL its manifest
/// records, byte for byte, with a key of the recipients it names.
pub(super) fn check_sealed_plaintext(
    file: &Path,
    data: &stored::Source,
    sealed: &d1_core::manifest::Sealed,
) -> Result<()> {
    let (sha256, bytes) = match data.plaintext_digest_up_to(sealed.plaintext_bytes)? {
        Ok(digest) => digest,
        Err(e) if data.is_unopened(&sealed.recipients) => return Err(e),
        Err(_) => crate::stop!(
            crate::exit::Exit::Refused,
            "{} {}; refusing to restore it.",
            file.display(),
            crate::steps::verify::undecodable(sealed)
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
pub(super) fn backup_file(
    project: &Project,
    target: &Environment,
    args: &RestoreArgs,
) -> Result<PathBuf> {
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

#[cfg(test)]
mod tests {
    /// A trial load that failed for the machine (an OS error, age killed,
    /// a full disk) is told so, not as the dump refused; a statement SQLite
    /// refuses is the dump's.
    #[test]
    fn a_trial_load_failing_for_the_machine_is_no_refusal_of_the_dump() {
        let os = anyhow::Error::from(std::io::Error::from_raw_os_error(5)).context("reading");
        assert!(super::machine_fault(&os));
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(super::machine_fault(&anyhow::Error::from(full)));
        let key = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            Some("UNIQUE constraint failed".into()),
        );
        assert!(!super::machine_fault(
            &anyhow::Error::from(key).context("line 3")
        ));
        assert!(!super::machine_fault(&anyhow::anyhow!(
            "too many columns on w101"
        )));
    }

    /// rvAQ: a dump whose only CREATE is an FTS5 table's (`CREATE VIRTUAL
    /// TABLE … USING fts5`) was taken for a data-only dump and told
    /// `--clean`.
    #[test]
    fn a_virtual_tables_create_is_an_object_of_the_schema() {
        for sql in [
            "CREATE VIRTUAL TABLE docs USING fts5(body)",
            "create virtual table if not exists \"d o\" using fts5(body)",
            "/* c */ CREATE TABLE t(a)",
        ] {
            assert!(super::creates_an_object(sql), "{sql}");
        }
        assert!(!super::creates_an_object("INSERT INTO t VALUES(1)"));
    }
}
