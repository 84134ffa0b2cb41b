//! `cargo xtask migrate <env>` and `cargo xtask with-backup <env> -- <cmd>`:
//! the runbook's "back up before every migration and every bulk operation".
//!
//! `migrate` works out the pending migrations, prints the plan, takes a full
//! backup (the pre-migration hook), asks for confirmation, and applies them
//! with `wrangler d1 migrations apply`. It refuses to apply when the backup
//! fails, and when applying fails it names the backup to restore from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::backup::{self, BackupArgs};
use crate::confirm::{self, ConfirmArgs};
use crate::dump;
use crate::environment::Environment;
use crate::project::Project;
use crate::wording::{count, shell_words};

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Environment to migrate: prod, staging or local.
    pub env: String,
    /// Skip the pre-migration backup; only together with --reason.
    #[arg(long, requires = "reason")]
    pub no_backup: bool,
    /// Why (recorded in the backup's manifest, or printed with --no-backup).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
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
    let Ok(gate) = crate::gate::Gate::memory() else {
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
        &format!("SELECT name FROM {} ORDER BY id", dump::MIGRATIONS_TABLE),
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

pub fn run(sh: &Shell, project: &Project, args: &MigrateArgs) -> Result<()> {
    let envs = project.environments()?;
    let env = envs.resolve(&args.env)?;
    let dir = project.config_dir.join(&env.migrations_dir);
    let files = migration_files(&dir)?;
    let applied = applied_migrations(sh, project, env)?;
    let pending = pending(&files, &applied);
    let cmds = project.commands();

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
        applied.len(),
        count(files.len(), "migration"),
        dir.display()
    );
    if pending.is_empty() {
        crate::say!(
            "  pending      none: {} is up to date. Nothing to do.",
            env.database_name
        );
        return Ok(());
    }
    for (i, name) in pending.iter().enumerate() {
        crate::say!(
            "  {}{name}",
            if i == 0 {
                "pending      "
            } else {
                "             "
            }
        );
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
            .unwrap_or_else(|| format!("pre-migration: {}", pending.join(", ")));
        backup::run(sh, project, &BackupArgs::full(&env.name, reason)).map_err(|e| {
            e.context(format!(
                "the pre-migration backup of {} failed, so no migration was applied",
                env.database_name
            ))
        })?
    };

    let wrangler = project.wrangler(sh)?;
    if let Err(e) = wrangler.run(&cmds.migrations_apply(env)) {
        let advice = match &backup_file {
            Some(file) => restore_advice(file, env),
            None => "no backup was taken (--no-backup)".to_owned(),
        };
        return Err(e.context(format!(
            "applying migrations to {} failed; {advice}",
            env.database_name
        )));
    }
    crate::say!(
        "Applied {} to {}.",
        count(pending.len(), "migration"),
        env.database_name
    );
    if let Some(file) = backup_file {
        crate::say!("The pre-migration backup is {}", file.display());
    }
    Ok(())
}

fn restore_advice(file: &Path, env: &Environment) -> String {
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
}
