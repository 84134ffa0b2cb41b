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
//! contents ([`edited_migrations`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::commands::backup::{self, BackupArgs};
use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::inventory;
use crate::exit::Exit;
use d1_core::statement;
use d1_core::wording::{count, shell_words};

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Environment to migrate: prod, staging or local (optional with --check:
    /// then every environment, against its backups' records only).
    #[arg(required_unless_present = "check")]
    pub env: Option<String>,
    /// Change nothing: fail (exit 1) when a migration already applied has
    /// other contents in migrations/ than when it was applied, comparing with
    /// the newest verified backup's record and the target's d1_migrations.
    #[arg(long, conflicts_with_all = ["no_backup", "dry_run"])]
    pub check: bool,
    /// Skip the pre-migration backup; only together with --reason.
    #[arg(long, requires = "reason")]
    pub no_backup: bool,
    /// Why (recorded in the backup's manifest, or printed with --no-backup).
    #[arg(long)]
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

#[derive(Debug, Clone, clap::Args)]
pub struct WithBackupArgs {
    /// Environment to back up first.
    pub env: String,
    /// Why (recorded in the backup's manifest).
    #[arg(long)]
    pub reason: Option<String>,
    /// The command to run once the backup is safe.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Migration files not yet recorded in `d1_migrations`, in name order.
pub fn pending(files: &[String], applied: &[String]) -> Vec<String> {
    let mut pending: Vec<String> = files
        .iter()
        .filter(|f| !applied.contains(f))
        .cloned()
        .collect();
    pending.sort();
    pending
}

/// The `.sql` files in the migrations directory.
pub fn migration_files(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") {
            files.push(name);
        }
    }
    files.sort();
    Ok(files)
}

/// The `CREATE TABLE` statements that running `migrations` in order makes,
/// read from an in-memory SQLite. Empty if one does not run there (oversized
/// rows then cannot be split, which the repair reports).
pub fn tables_created_by<'a>(
    migrations: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, String> {
    let Ok(gate) = d1_core::gate::Gate::memory() else {
        return BTreeMap::new();
    };
    let db = gate.db();
    for sql in migrations {
        if db.execute_batch(sql).is_err() {
            return BTreeMap::new();
        }
    }
    let Ok(mut stmt) =
        db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql NOT NULL")
    else {
        return BTreeMap::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

fn applied_migrations(sh: &Shell, project: &Project, env: &Environment) -> Result<Vec<String>> {
    let wrangler = project.wrangler(sh)?;
    let cmds = project.commands();
    let json = wrangler.run_json(&cmds.query_json(
        env,
        "read the applied migrations (read-only)",
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'd1_migrations'",
    ))?;
    let has_table = json
        .get(0)
        .and_then(|r| r.get("results"))
        .and_then(|r| r.as_array())
        .is_some_and(|r| !r.is_empty());
    if !has_table {
        return Ok(Vec::new());
    }
    let json = wrangler.run_json(&cmds.query_json(
        env,
        "read the applied migrations (read-only)",
        &format!(
            "SELECT name FROM {} ORDER BY id",
            statement::MIGRATIONS_TABLE
        ),
    ))?;
    Ok(json
        .get(0)
        .and_then(|r| r.get("results"))
        .and_then(|r| r.as_array())
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.get("name")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// What `migrate` would do to one environment: its migrations, the
/// applied ones and the pending ones.
pub struct MigrationPlan<'e> {
    pub env: &'e Environment,
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub applied: Vec<String>,
    pub pending: Vec<String>,
}

/// Reads the target's applied migrations and refuses (exit 3) when one of
/// them has changed in `migrations/` since it was applied.
pub fn plan<'e>(sh: &Shell, project: &Project, env: &'e Environment) -> Result<MigrationPlan<'e>> {
    let dir = project.config_dir.join(&env.migrations_dir);
    let files = migration_files(&dir)?;
    let applied = applied_migrations(sh, project, env)?;
    if let Some(record) = record_for(sh, project, env) {
        let edited = edited_migrations(&record.sha256, &applied, &digests(&dir, &applied));
        if !edited.is_empty() {
            crate::stop!(
                Exit::Refused,
                "refusing to migrate {}: {} Nothing was done.",
                env.database_name,
                edited_report(&edited, &dir, &record.source)
            );
        }
    }
    let pending = pending(&files, &applied);
    Ok(MigrationPlan {
        env,
        dir,
        files,
        applied,
        pending,
    })
}

impl MigrationPlan<'_> {
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
        crate::say!(
            "  applied      {} of {} in {}",
            self.applied.len(),
            count(self.files.len(), "migration"),
            self.dir.display()
        );
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
    }
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
    let plan = plan(sh, project, env)?;
    let cmds = project.commands();
    plan.print(project);
    let report = |applied: Option<(&[String], Option<&Path>)>| {
        if args.json {
            crate::out::json(&plan.json(args, &cmds.migrations_apply(env), applied));
        }
    };
    if plan.pending.is_empty() {
        report(Some((&[], None)));
        return Ok(());
    }
    match (&args.no_backup, &args.reason) {
        (true, Some(reason)) => {
            crate::say!("  backup       SKIPPED (--no-backup), reason: {reason}")
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

    let backup_file = if args.no_backup {
        crate::warn!(
            "migrating {} without a backup; reason given: {}",
            env.database_name,
            args.reason.as_deref().unwrap_or_default()
        );
        None
    } else {
        let reason = args
            .reason
            .clone()
            .unwrap_or_else(|| format!("pre-migration: {}", plan.pending.join(", ")));
        backup::run(sh, project, &BackupArgs::full(&env.name, reason)).map_err(|e| {
            e.context(format!(
                "the pre-migration backup of {} failed, so no migration was applied",
                env.database_name
            ))
        })?
    };
    let advice = match &backup_file {
        Some(file) => restore_advice(file, env),
        None => "no backup was taken (--no-backup)".to_owned(),
    };
    apply(sh, project, &plan, &advice)?;
    if let Some(file) = &backup_file {
        crate::say!("The pre-migration backup is {}", file.display());
    }
    report(Some((&plan.pending, backup_file.as_deref())));
    Ok(())
}

impl MigrationPlan<'_> {
    /// `--json`: the plan, and once run (`applied`), what was applied and
    /// the pre-migration backup.
    fn json(
        &self,
        args: &MigrateArgs,
        apply: &crate::edge::wrangler::Invocation,
        applied: Option<(&[String], Option<&Path>)>,
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
                "backup": if args.no_backup { "skipped" } else { "full backup first" },
                "wrangler_commands": if self.pending.is_empty() {
                    Vec::new()
                } else {
                    vec![serde_json::json!({"purpose": apply.purpose, "command": apply.to_string()})]
                },
            },
            "result": applied.map(|(names, backup)| serde_json::json!({
                "applied": names,
                "pre_migration_backup": backup,
            })),
        })
    }
}

/// Applies the plan's pending migrations, the pre-migration backup already
/// taken; a failure carries `advice`, the way back.
pub fn apply(sh: &Shell, project: &Project, plan: &MigrationPlan<'_>, advice: &str) -> Result<()> {
    let env = plan.env;
    let wrangler = project.wrangler(sh)?;
    if let Err(e) = wrangler.run(&project.commands().migrations_apply(env)) {
        return Err(e.context(format!(
            "applying migrations to {} failed; {advice}",
            env.database_name
        )));
    }
    crate::say!(
        "Applied {} to {}.",
        count(plan.pending.len(), "migration"),
        env.database_name
    );
    Ok(())
}

/// The sha256 of each of `names` in `dir`; a name whose file is not there
/// (or cannot be read) is left out.
pub fn digests(dir: &Path, names: &[String]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter(|n| crate::edge::fsutil::is_plain_file_name(n))
        .filter_map(|n| {
            let (sha, _) = crate::edge::fsutil::sha256_file(&dir.join(n)).ok()?;
            Some((n.clone(), sha))
        })
        .collect()
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
    current: &BTreeMap<String, String>,
) -> Vec<EditedMigration> {
    let mut edited: Vec<EditedMigration> = applied
        .iter()
        .filter_map(|name| {
            let recorded = record.get(name)?;
            let now = current.get(name);
            (now != Some(recorded)).then(|| EditedMigration {
                name: name.clone(),
                recorded: recorded.clone(),
                now: now.cloned(),
            })
        })
        .collect();
    edited.sort_by(|a, b| a.name.cmp(&b.name));
    edited.dedup();
    edited
}

/// The record a new backup writes for its `applied` migrations: the
/// `previous` backup's sha256 where it has one (an edit made since is not
/// recorded as what was applied), else the file's sha256 now.
pub fn carried_record(
    applied: &[String],
    previous: Option<&BTreeMap<String, String>>,
    current: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    applied
        .iter()
        .filter_map(|name| {
            let sha = previous
                .and_then(|p| p.get(name))
                .or_else(|| current.get(name))?;
            Some((name.clone(), sha.clone()))
        })
        .collect()
}

/// Which files changed, against what, and what to do instead.
pub fn edited_report(edited: &[EditedMigration], dir: &Path, source: &str) -> String {
    let lines: Vec<String> = edited
        .iter()
        .map(|e| match &e.now {
            Some(now) => format!(
                "{} (applied as sha256 {}, now {})",
                e.name,
                short(&e.recorded),
                short(now)
            ),
            None => format!(
                "{} (applied as sha256 {}, now missing)",
                e.name,
                short(&e.recorded)
            ),
        })
        .collect();
    format!(
        "{} already applied changed in {} since it was applied ({}; recorded in {source}). D1 \
         records migrations by name only, so the change would never reach the database, and a \
         clean restore would build another schema. Add a new migration, don't edit an applied \
         one: put {} back as it was (`git log -p -- {}` shows the edit) and make the change in \
         a new migration file.",
        count(edited.len(), "migration"),
        dir.display(),
        lines.join("; "),
        if edited.len() == 1 { "it" } else { "them" },
        edited
            .iter()
            .map(|e| format!("{}/{}", dir.display(), e.name))
            .collect::<Vec<_>>()
            .join(" ")
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
}

/// The record of what was applied: the newest verified backup's on this
/// machine, or else the newest verified offsite copy's manifest, read from
/// the environment's bucket, so that a fresh machine (a CI runner, whose
/// `backups/` is empty) compares with the record too. An unreadable bucket
/// is a warning, and only this machine's backups are compared.
pub fn record_for(sh: &Shell, project: &Project, env: &Environment) -> Option<Record> {
    newest_record(project, &env.name).or_else(|| {
        match crate::commands::offsite::newest_manifest(sh, project, env) {
            Ok(Some((manifest, source))) => Some(Record {
                sha256: manifest.migration_sha256?,
                source,
            }),
            Ok(None) => None,
            Err(e) => {
                crate::warn!(
                    "could not read {}'s newest offsite manifest for the migration record \
                     ({e:#}); comparing with the backups on this machine only",
                    env.name
                );
                None
            }
        }
    })
}

pub fn newest_record(project: &Project, env: &str) -> Option<Record> {
    inventory::scan(&project.backup_dir)
        .into_iter()
        // Only a whole backup saw every applied migration: one of chosen
        // tables or of the schema holds no d1_migrations rows, and its empty
        // record would let an edit through (and be carried forward).
        .filter(|e| e.manifest.environment == env && e.manifest.is_verified_good() && e.is_whole())
        .find_map(|e| {
            Some(Record {
                sha256: e.manifest.migration_sha256.clone()?,
                source: e.manifest.file.name.clone(),
            })
        })
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
    let mut failures = Vec::new();
    for env in chosen {
        let dir = project.config_dir.join(&env.migrations_dir);
        // A named environment is reached (its d1_migrations, its bucket);
        // without one the check reads only this machine's files.
        let record = match only {
            Some(_) => record_for(sh, project, env),
            None => newest_record(project, &env.name),
        };
        // The target's names, when one was named and answers.
        let target = match only {
            Some(_) => match applied_migrations(sh, project, env) {
                Ok(names) => Some(names),
                Err(e) => {
                    crate::say!(
                        "{}: {} did not answer ({e:#}); comparing with the backup record only",
                        env.name,
                        env.database_name
                    );
                    None
                }
            },
            None => None,
        };
        let applied: Vec<String> = match (&target, &record) {
            (Some(names), _) => names.clone(),
            (None, Some(r)) => r.sha256.keys().cloned().collect(),
            (None, None) => {
                let why = format!(
                    "{}: no verified backup in {} records its migrations' contents, and no \
                     target was read; nothing to compare with. Take one with `cargo xtask \
                     backup {}` (or `cargo xtask offsite fetch latest --env {}`)",
                    env.name,
                    project.backup_dir.display(),
                    env.name,
                    env.name
                );
                if only.is_some() {
                    crate::stop!(Exit::CouldNotRun, "{why}");
                }
                crate::say!("{why}");
                continue;
            }
        };
        let current = digests(&dir, &applied);
        let missing: Vec<&String> = applied
            .iter()
            .filter(|n| !current.contains_key(*n))
            .collect();
        let mut edited = record
            .as_ref()
            .map(|r| edited_migrations(&r.sha256, &applied, &current))
            .unwrap_or_default();
        let unrecorded = applied
            .iter()
            .filter(|n| record.as_ref().is_none_or(|r| !r.sha256.contains_key(*n)))
            .count();
        for name in missing {
            if !edited.iter().any(|e| &e.name == name) {
                edited.push(EditedMigration {
                    name: name.clone(),
                    recorded: "unknown".to_owned(),
                    now: None,
                });
            }
        }
        let source = match (&record, &target) {
            (Some(r), Some(_)) => format!("{} and {}'s d1_migrations", r.source, env.database_name),
            (Some(r), None) => r.source.clone(),
            (None, _) => format!("{}'s d1_migrations (names only)", env.database_name),
        };
        if edited.is_empty() {
            crate::say!(
                "{}: {} applied, unchanged in {} (compared with {source}){}",
                env.name,
                count(applied.len(), "migration"),
                dir.display(),
                if unrecorded > 0 {
                    format!("; {unrecorded} without a recorded sha256 were checked by name only")
                } else {
                    String::new()
                }
            );
        } else {
            let report = edited_report(&edited, &dir, &source);
            crate::say!("{}: FAILED: {report}", env.name);
            failures.push(format!("{}: {report}", env.name));
        }
    }
    if !failures.is_empty() {
        crate::stop!(Exit::Failure, "migrate --check: {}", failures.join("\n"));
    }
    Ok(())
}

pub fn restore_advice(file: &Path, env: &Environment) -> String {
    let confirm = if env.is_production() {
        format!(" --confirm {}", env.database_name)
    } else {
        " --yes".to_owned()
    };
    format!(
        "to go back, restore the pre-migration backup: cargo xtask restore {} --to {} --replace{confirm}",
        file.display(),
        env.name
    )
}

pub fn with_backup(
    sh: &Shell,
    project: &Project,
    args: &WithBackupArgs,
) -> Result<std::process::ExitCode> {
    let envs = project.environments()?;
    let env = envs.resolve(&args.env)?;
    let shown = shell_words(&args.command);
    let reason = args
        .reason
        .clone()
        .unwrap_or_else(|| format!("before: {shown}"));
    let file: Option<PathBuf> = backup::run(sh, project, &BackupArgs::full(&env.name, reason))
        .map_err(|e| e.context(format!("the backup failed, so `{shown}` was not run")))?;
    if let Some(file) = &file {
        crate::say!("Backup taken: {}. Running: {shown}", file.display());
    }
    let taken = file
        .as_deref()
        .map_or_else(|| "none".into(), |f| f.display().to_string());
    let (program, rest) = args.command.split_first().context("no command given")?;
    let status = match std::process::Command::new(program).args(rest).status() {
        Ok(status) => status,
        Err(e) => {
            // As a shell does: a command that cannot be started is 127.
            crate::out::error(&format!(
                "cannot start `{shown}`: {e}; check the program name and PATH. \
                 The backup taken before it is {taken}"
            ));
            return Ok(std::process::ExitCode::from(127));
        }
    };
    if !status.success() {
        crate::out::error(&format!(
            "`{shown}` failed ({status}); the backup taken before it is {taken}"
        ));
        return Ok(std::process::ExitCode::from(shell_code(status)));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The code a shell would report for a finished command: its own, or 128
/// plus the signal that stopped it.
fn shell_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    u8::try_from(code).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_is_what_is_not_applied_in_name_order() {
        let files = ["0002_b.sql", "0001_a.sql", "0003_c.sql"].map(String::from);
        let applied = ["0001_a.sql"].map(String::from);
        assert_eq!(pending(&files, &applied), ["0002_b.sql", "0003_c.sql"]);
        assert!(pending(&files[..1], &files[..1]).is_empty());
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
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
        let current = map(&[("0001_a.sql", "aa"), ("0002_b.sql", "XX")]);
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
        assert!(edited_migrations(&record, &unrecorded, &map(&[("0001_a.sql", "aa")])).is_empty());
    }

    #[test]
    fn a_new_record_keeps_what_was_applied_not_a_later_edit() {
        let applied = ["0001_a.sql", "0002_b.sql"].map(String::from);
        let previous = map(&[("0001_a.sql", "original")]);
        let current = map(&[("0001_a.sql", "edited"), ("0002_b.sql", "bb")]);
        assert_eq!(
            carried_record(&applied, Some(&previous), &current),
            map(&[("0001_a.sql", "original"), ("0002_b.sql", "bb")])
        );
        assert_eq!(
            carried_record(&applied, None, &current),
            map(&[("0001_a.sql", "edited"), ("0002_b.sql", "bb")])
        );
        // A migration applied but no longer in migrations/ is not invented.
        assert_eq!(carried_record(&applied, None, &map(&[])), map(&[]));
    }

    #[test]
    fn the_report_names_the_files_and_the_fix() {
        let edited = [EditedMigration {
            name: "0002_b.sql".into(),
            recorded: "b".repeat(64),
            now: Some("c".repeat(64)),
        }];
        let text = edited_report(&edited, Path::new("migrations"), "backup-prod-1.sql");
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
}
