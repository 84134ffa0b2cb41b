//! `cargo xtask migrate <env>` and `cargo xtask with-backup <env> -- <cmd>`:
//! the runbook's "back up before every migration and every bulk operation".
//!
//! `migrate` works out the pending migrations, prints the plan, takes a full
//! backup (the pre-migration hook), asks for confirmation, and applies them
//! with `wrangler d1 migrations apply`. It refuses to apply when the backup
//! fails, and when applying fails it names the backup to restore from.
//!
//! D1's `d1_migrations` records names only, so an applied migration edited
//! afterwards would go unseen. Every backup's manifest records the sha256
//! of each applied migration (`migration_sha256`); `migrate` refuses, and
//! `migrate --check` fails, when `migrations/` no longer holds those
//! contents ([`edited_migrations`](crate::steps::migrations::edited_migrations)).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::local_d1;
use crate::edge::lock::BackupLock;
use crate::exit::Exit;
use crate::steps::backup::{self, BackupArgs, TakenFor};
use crate::steps::migrations::{
    MigrationPlan, Record, applied_migrations, apply, digests, edited_or_missing, edited_report,
    migration_files, plan, record_applying, record_for, stage, told_if_from_bucket,
};
use d1_core::wording::count;

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Environment to migrate: prod, staging or local (optional with --check:
    /// then every environment, against its backups' records only).
    #[arg(required_unless_present = "check")]
    pub env: Option<String>,
    /// Change nothing: fail (exit 1) when a migration already applied has
    /// other contents in migrations/ than when it was applied, comparing with
    /// the newest verified backup's record and the target's d1_migrations.
    /// It applies nothing, so it takes none of the flags of a run that does.
    #[arg(long, conflicts_with_all = ["no_backup", "dry_run", "yes", "confirm", "reason"])]
    pub check: bool,
    /// Skip the pre-migration backup; only together with --reason.
    #[arg(long, requires = "reason")]
    pub no_backup: bool,
    /// Why (recorded in the backup's manifest, or printed with --no-backup).
    #[arg(long, value_parser = crate::steps::backup::parse_reason)]
    pub reason: Option<String>,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan and the result as one JSON document on stdout.
    #[arg(long, conflicts_with = "check")]
    pub json: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

/// A refusal for want of a confirmation, saying that migrate asks it
/// before it reads what is pending, and so whether or not a migration is,
/// and how to see which are; a `--confirm` naming another database is told
/// as it is.
fn asked_with_nothing_pending(
    e: anyhow::Error,
    env: &crate::config::environment::Environment,
    given: &confirm::ConfirmArgs,
) -> anyhow::Error {
    if given.confirm.is_some() || crate::exit::Exit::of(&e) != Some(Exit::Refused) {
        return e;
    }
    Exit::Refused.error(anyhow::anyhow!(
        "{e} migrate asks it before it reads which migrations are pending, so whether or not a \
         migration is pending: a command line that passes on a day with nothing to apply is \
         then not refused the day one is; `cargo xtask migrate {} --dry-run` shows what is \
         pending, and needs no confirmation.",
        env.name
    ))
}

/// Before anything else, whatever is pending: a command line the day's
/// empty plan passes must not be one a pending migration refuses. Without
/// a terminal, a run that will not be confirmed is refused here, before
/// the lock and the plan, with or without a migration pending (as a
/// deploy); so is a TMPDIR the staging of the migrations would refuse
/// (exit 2), which was refused after the pre-migration backup, and so is
/// a migrations journal that cannot be written (a symbolic link). First, a
/// real database from a shell pointed at a rehearsal, `--no-backup` too
/// (`steps::rehearsals::refuse_real_database`).
fn refuse_before_anything(project: &Project, env: &Environment, args: &MigrateArgs) -> Result<()> {
    crate::steps::rehearsals::refuse_real_database(&project.backup_dir, env, "migrate")?;
    confirm::check_given(env, &args.confirm, args.dry_run, "apply migrations to")
        .map_err(|e| asked_with_nothing_pending(e, env, &args.confirm))?;
    crate::steps::migrations::check_stageable()?;
    crate::steps::migrations::check_journal_writable(project)
}

pub fn run(sh: &Shell, project: &Project, args: &MigrateArgs) -> Result<()> {
    if args.check {
        return check(sh, project, args.env.as_deref());
    }
    let envs = project.environments()?;
    let env = envs.resolve(
        args.env
            .as_deref()
            .context("name the environment to migrate")?,
    )?;
    refuse_before_anything(project, env, args)?;
    // Before the lock: wrangler would apply them wherever a link on the
    // way to the local D1 leads.
    crate::edge::local_d1::refuse_linked_env(&project.config_dir, env)?;
    let cmds = project.commands();
    // Before the applied migrations are read: with another database's id,
    // the plan would describe that database.
    crate::steps::identity::check(&project.wrangler(sh)?, &cmds, env, "migrate it")?;
    // Held from before the plan is read to the last migration: the plan
    // printed is the one applied, and a restore or another migration in
    // between would be undone by this one's way back, or would undo it. A
    // dry run takes none, as no dry run does.
    let lock = (!args.dry_run)
        .then(|| crate::steps::lock::acquire_lock(project, &format!("migrate {}", env.name)))
        .transpose()?;
    // Under the lock, as a local restore: a `wrangler dev`, or a killed
    // run's wrangler still applying, would commit beside this run.
    if let Some(file) = local_d1::existing_file(&project.config_dir, env).filter(|_| !args.dry_run)
    {
        local_d1::ensure_unheld_where_told(&file)?;
    }
    let plan = plan(sh, project, env)?;
    plan.print(project);
    let report = |applied: Option<Ran<'_>>| {
        if args.json {
            crate::out::json(&plan.json(args, &cmds.migrations_apply(env), applied));
        }
    };
    if plan.pending.is_empty() {
        // A dry run's `result` is null, as every command's is.
        report((!args.dry_run).then_some((Some(&[][..]), None, None)));
        return Ok(());
    }
    crate::steps::migrations::refuse_what_cannot_apply(&plan, !args.no_backup)?;
    match (&args.no_backup, &args.reason) {
        (true, Some(reason)) => {
            crate::say!(
                "  backup       SKIPPED (--no-backup), reason: {}",
                backup::recorded_reason(reason)
            )
        }
        _ => crate::say!(
            "  backup       a full backup of {} first; nothing is applied if it fails",
            env.database_name
        ),
    }
    crate::say!("  then         {}", cmds.migrations_apply(env));
    if args.dry_run {
        crate::say!("Dry run: nothing was changed.");
        report(None);
        return Ok(());
    }
    confirm::require(env, &args.confirm, "apply migrations to")?;
    let lock = lock.expect("a migrate that is not a dry run holds the backup lock");
    // Staged before the backup: a copy refused (a migration changed since
    // the plan) is refused before anything is written.
    let staged = stage(&plan)?;
    let backup_file = pre_migration_backup(sh, project, args, env, &plan.pending, &lock)?;
    let applying = record_applying(project, &lock, &plan, backup_file.as_deref())?;
    let ran = (backup_file.as_deref(), applying.way_back.as_deref());
    let applied = apply(sh, project, (&plan, &staged), applying.told())
        .inspect_err(|e| failure_document(&plan, (args, &cmds), e, ran))?;
    drop(lock);
    if let Some(file) = &backup_file {
        crate::say!("The pre-migration backup is {}", file.display());
        say_rows_lost(sh, project, env, file, &applying.advice);
    }
    report(Some((Some(&applied), ran.0, ran.1)));
    Ok(())
}

/// Under `--json`, the failure document of an apply that failed (`e`) says
/// what this run did, as the success document would: what was applied
/// before it failed (`null`: d1_migrations could not be read again), the
/// pre-migration backup, and the command that restores it; it used to
/// say only the error (LP).
fn failure_document(
    plan: &MigrationPlan<'_>,
    (args, cmds): (&MigrateArgs, &crate::edge::wrangler::Commands),
    e: &anyhow::Error,
    (backup, way_back): (Option<&Path>, Option<&str>),
) {
    if !args.json {
        return;
    }
    let apply = &cmds.migrations_apply(plan.env);
    let failed = e.downcast_ref::<crate::steps::migrations::FailedApply>();
    let applied = failed.and_then(|f| f.applied.as_deref());
    // A run that applied nothing has no way back to give, as its text says.
    let way_back = way_back.filter(|_| !failed.is_some_and(|f| f.nothing_to_restore));
    crate::out::on_failure(plan.json(args, apply, Some((applied, backup, way_back))));
}

/// What a run that was no dry run did, for `--json`'s `result`: the
/// migrations it applied (`None`: not known, d1_migrations unread after a
/// failure), its pre-migration backup, and the command that restores it.
type Ran<'a> = (Option<&'a [String]>, Option<&'a Path>, Option<&'a str>);

/// The backup migrate takes first, under its lock, as its way back; none
/// with `--no-backup`, which is warned of.
fn pre_migration_backup(
    sh: &Shell,
    project: &Project,
    args: &MigrateArgs,
    env: &Environment,
    pending: &[String],
    lock: &BackupLock,
) -> Result<Option<PathBuf>> {
    if args.no_backup {
        crate::warn!(
            "migrating {} without a backup; reason given: {}",
            env.database_name,
            backup::recorded_reason(args.reason.as_deref().unwrap_or_default())
        );
        Ok(None)
    } else {
        // `pre-migration:` first, whatever reason is given: prune keeps a
        // backup so marked as the migration's undo point.
        let pending = pending.join(", ");
        let reason = match &args.reason {
            Some(given) => format!("pre-migration: {pending} ({given})"),
            None => format!("pre-migration: {pending}"),
        };
        let held = backup::Held {
            lock,
            schema: None,
            of: env,
        };
        let args = BackupArgs::full(&env.name, reason, TakenFor::Migration);
        backup::run_under(sh, project, &args, held).map_err(|e| {
            e.context(format!(
                "the pre-migration backup of {} failed, so no migration was applied",
                env.database_name
            ))
        })
    }
}

/// Warns (even with -q) of every table the migrations left with fewer rows
/// than the pre-migration backup counted, or took away: a migration may
/// mean it, but a cascade nobody meant must not go unsaid. Applying
/// succeeded whatever this finds; a count that cannot be made is said too.
fn say_rows_lost(sh: &Shell, project: &Project, env: &Environment, file: &Path, advice: &str) {
    use crate::edge::manifest_file::ManifestFile as _;
    let lost = d1_core::manifest::Manifest::for_backup(file)
        .and_then(|m| crate::steps::migrations::rows_lost(sh, project, env, &m.rows));
    match lost {
        Ok(lost) => {
            let said = |(table, before, now): &(String, u64, Option<u64>)| {
                let table = d1_core::names::shown_name(table);
                match now {
                    Some(now) => format!("{table} {before} -> {now} rows"),
                    None => format!(
                        "{table} ({}) is gone",
                        d1_core::wording::count(*before, "row")
                    ),
                }
            };
            // Fewer rows in a table that is still there is what a cascade
            // does (D1 enforces foreign keys during a migration), and no
            // migration that keeps a table means to: a warning, even if the
            // app deleted some meanwhile. A table gone was renamed or
            // dropped by a migration that says so: only said.
            let (fewer, gone): (Vec<_>, Vec<_>) =
                lost.iter().partition(|(_, _, now)| now.is_some());
            if !gone.is_empty() {
                crate::say!(
                    "No longer there (renamed or dropped by a migration): {}",
                    gone.into_iter().map(said).collect::<Vec<_>>().join(", ")
                );
            }
            if !fewer.is_empty() {
                crate::warn!(
                    "the migrations left tables of {} with fewer rows than the pre-migration \
                     backup counted: {}. D1 enforces foreign keys during a migration, so a DROP \
                     TABLE cascades to the tables that reference it; unless the app deleted them \
                     meanwhile, {advice}",
                    env.database_name,
                    fewer.into_iter().map(said).collect::<Vec<_>>().join(", ")
                );
            }
        }
        Err(e) => crate::warn!(
            "the rows of {} were not counted after the migrations ({e:#}); compare with the \
             pre-migration backup: `cargo xtask diff {} live:{}`",
            env.database_name,
            d1_core::wording::shell_word(&file.display().to_string()),
            env.name
        ),
    }
}

/// `migrate --check [ENV]`: each environment's applied migrations against
/// `migrations/`. Exit 1 when one was edited; 2 when an environment named
/// has nothing to compare with.
fn check(sh: &Shell, project: &Project, only: Option<&str>) -> Result<()> {
    let envs = project.environments()?;
    let chosen: Vec<&Environment> = match only {
        Some(word) => vec![envs.resolve(word)?],
        None => envs.iter().collect(),
    };
    // Without an environment named, each is compared with this machine's
    // backups only: the directory is read once for all of them.
    let scanned = match only {
        Some(_) => None,
        None => Some(crate::edge::inventory::scan(&project.backup_dir)?),
    };
    let mut failures = Vec::new();
    for env in chosen {
        if let Some(report) = check_env(sh, project, env, scanned.as_deref())? {
            failures.push(format!("{}: {report}", env.name));
        }
    }
    if !failures.is_empty() {
        crate::stop!(Exit::Failure, "migrate --check: {}", failures.join("\n"));
    }
    Ok(())
}

/// One environment of `migrate --check`: the report of its edited
/// migrations, or `None` when none was edited or there is nothing to compare
/// with. A named environment (`scanned` is `None`) is reached (its
/// d1_migrations, its bucket); without one the check reads only this
/// machine's files, the backups `scanned` from its directory.
fn check_env(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    scanned: Option<&[crate::edge::inventory::Entry]>,
) -> Result<Option<String>> {
    let named = scanned.is_none();
    let dir = project.config_dir.join(&env.migrations_dir);
    let record = match scanned {
        None => record_for(sh, project, env)?,
        Some(entries) => crate::steps::migrations::record_in(entries, env),
    };
    // The target's names, when one was named and answers.
    let target = named.then(|| target_names(sh, project, env)).flatten();
    let Some(applied) = applied_names(project, env, &target, &record, named)? else {
        return Ok(None);
    };
    let current = digests(&dir, &applied);
    let edited = edited_or_missing(&applied, &current, record.as_ref());
    let (edited, told) = told_if_from_bucket(edited, record.as_ref(), &dir, env);
    let unrecorded = applied
        .iter()
        .filter(|n| record.as_ref().is_none_or(|r| !r.sha256.contains_key(*n)))
        .count();
    let source = match (&record, &target) {
        (Some(r), Some(_)) => format!("{} and {}'s d1_migrations", r.source, env.database_name),
        (Some(r), None) => r.source.clone(),
        (None, _) => format!("{}'s d1_migrations (names only)", env.database_name),
    };
    say_pending(env, &dir, &applied, target.is_some())?;
    if edited.is_empty() {
        crate::say!(
            "{}: {} applied, unchanged in {} (compared with {source}){}",
            env.name,
            count(applied.len(), "migration"),
            dir.display(),
            if unrecorded > 0 {
                format!(
                    "; {unrecorded} without a recorded sha256 {} checked by name only",
                    if unrecorded == 1 { "was" } else { "were" }
                )
            } else {
                String::new()
            }
        );
        if told > 0 {
            crate::say!(
                "{}: {} {} from the bucket's record only (warned above): not a failure",
                env.name,
                count(told, "migration"),
                if told == 1 { "differs" } else { "differ" }
            );
        }
        Ok(None)
    } else {
        let report = edited_report(&edited, &dir, (&source, &env.database_name));
        crate::say!("{}: FAILED: {report}", env.name);
        Ok(Some(report))
    }
}

/// `migrate --check`'s line naming the migrations in `dir` that are not
/// `applied` (what `status` points to it for), as of the target's
/// d1_migrations when it answered (`from_target`), else as of the newest
/// verified backup's record. Nothing when none is pending.
fn say_pending(env: &Environment, dir: &Path, applied: &[String], from_target: bool) -> Result<()> {
    let pending: Vec<String> = { migration_files(dir)?.into_iter() }
        .filter(|name| !applied.contains(name))
        .collect();
    if !pending.is_empty() {
        crate::say!(
            "{}: {} pending{}: {}",
            env.name,
            count(pending.len(), "migration"),
            if from_target {
                ""
            } else {
                " as of its newest verified backup"
            },
            pending.join(", ")
        );
    }
    Ok(())
}

/// The names in the target's d1_migrations, or `None` (said) when it does
/// not answer.
fn target_names(sh: &Shell, project: &Project, env: &Environment) -> Option<Vec<String>> {
    match applied_migrations(sh, project, env) {
        Ok(names) => Some(names),
        Err(e) => {
            crate::say!(
                "{}: {} did not answer ({e:#}); comparing with the backup record only",
                env.name,
                env.database_name
            );
            None
        }
    }
}

/// The applied migrations to check: the target's names, else those of the
/// newest verified backup's database (the record's `applied`). With neither there is nothing to compare with: a `named`
/// environment stops (exit 2), any other is skipped (`None`) with the reason.
fn applied_names(
    project: &Project,
    env: &Environment,
    target: &Option<Vec<String>>,
    record: &Option<Record>,
    named: bool,
) -> Result<Option<Vec<String>>> {
    Ok(Some(match (target, record) {
        (Some(names), _) => names.clone(),
        // The newest verified backup's database: a migration the record
        // keeps but that no longer lists (rolled back, its fix a new
        // migration) is applied nowhere it knows of.
        (None, Some(r)) => r.applied.clone(),
        (None, None) => {
            let why = format!(
                "{}: no verified backup in {} records its migrations' contents, and no \
                 target was read; nothing to compare with. Take one with `cargo xtask \
                 backup {}`, or fetch one with `cargo xtask offsite fetch latest --env {}` and \
                 verify it here",
                env.name,
                project.backup_dir.display(),
                env.name,
                env.name
            );
            if named {
                crate::stop!(Exit::CouldNotRun, "{why}");
            }
            crate::say!("{why}");
            return Ok(None);
        }
    }))
}

impl MigrationPlan<'_> {
    /// `--json`: the plan, and once run (`applied`), what was applied and
    /// the pre-migration backup.
    pub(crate) fn json(
        &self,
        args: &MigrateArgs,
        apply: &crate::edge::wrangler::Invocation,
        applied: Option<Ran<'_>>,
    ) -> serde_json::Value {
        serde_json::json!({
            "command": "migrate",
            "dry_run": args.dry_run,
            "plan": {
                "environment": self.env.name,
                "database": self.env.database_name,
                "location": self.env.location.to_string(),
                "migrations_dir": self.dir,
                "applied_before": self.applied,
                "pending": self.pending,
                "foreign_key_actions": match &self.side_writes {
                    Ok(found) => serde_json::json!(found.side_writes.iter().map(|s| serde_json::json!({
                        "migration": s.migration,
                        "statement": s.statement,
                        "table": s.target,
                        "changes": s.table,
                        "deletes_rows": s.deletes,
                        "sets_columns": s.sets,
                    })).collect::<Vec<_>>()),
                    Err(_) => serde_json::Value::Null,
                },
                "foreign_key_actions_not_known": match &self.side_writes {
                    Ok(found) => serde_json::json!(found.unknown),
                    Err(why) => serde_json::json!([why]),
                },
                "backup": if args.no_backup { "skipped" } else { "full backup first" },
                "wrangler_commands": if self.pending.is_empty() {
                    Vec::new()
                } else {
                    vec![serde_json::json!({"purpose": apply.purpose, "command": apply.to_string()})]
                },
            },
            "result": applied.map(|(names, backup, way_back)| serde_json::json!({
                "applied": names,
                "pre_migration_backup": backup,
                "way_back": way_back,
                // What a script fills in before it runs `way_back` (LR).
                "way_back_placeholders": way_back
                    .and(backup)
                    .map(|f| crate::steps::migrations::way_back_placeholders(f, None)),
            })),
        })
    }
}
