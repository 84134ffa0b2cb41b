//! `cargo xtask with-backup <env> [--reason R] -- <command...>`: a full
//! backup, then the command; the runbook's "back up before every bulk
//! operation".

use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::steps::backup::{self, BackupArgs};
use anyhow::{Context, Result};
use d1_core::wording::shell_words;
use std::path::{Path, PathBuf};
use xshell::Shell;

#[derive(Debug, Clone, clap::Args)]
pub struct WithBackupArgs {
    /// Environment to back up first.
    pub env: String,
    /// Why (recorded in the backup's manifest).
    #[arg(long, value_parser = crate::steps::backup::parse_reason)]
    pub reason: Option<String>,
    /// The command to run once the backup is safe.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn with_backup(
    sh: &Shell,
    project: &Project,
    args: &WithBackupArgs,
) -> Result<std::process::ExitCode> {
    let envs = project.environments()?;
    let env = envs.resolve(&args.env)?;
    let shown = shell_words(&args.command);
    let (program, rest) = args.command.split_first().context("no command given")?;
    match startable(program) {
        Startable::Yes => {}
        // As a shell does: a command not found is 127, one found but not
        // executable 126; and no backup is taken for a command that
        // cannot run.
        Startable::Missing => {
            crate::out::error(&format!(
                "cannot start `{shown}`: no such program (a path, or a name on PATH); check the \
                 program name and PATH. No backup was taken"
            ));
            return Ok(std::process::ExitCode::from(127));
        }
        Startable::NotExecutable => {
            crate::out::error(&format!(
                "cannot start `{shown}`: permission denied ({program} is there but not an \
                 executable file; `chmod +x` it, or run it through its interpreter). No backup \
                 was taken"
            ));
            return Ok(std::process::ExitCode::from(126));
        }
    }
    // `before:` first, whatever reason is given: prune keeps a backup so
    // marked as the task's undo point.
    let reason = format!("before: {}", args.reason.as_deref().unwrap_or(&shown));
    let file: Option<PathBuf> = backup::run(sh, project, &BackupArgs::full(&env.name, reason))
        .map_err(|e| e.context(format!("the backup failed, so `{shown}` was not run")))?;
    if let Some(file) = &file {
        crate::say!("Backup taken: {}. Running: {shown}", file.display());
    }
    let taken = file
        .as_deref()
        .map_or_else(|| "none".into(), |f| f.display().to_string());
    // A SIGINT or SIGTERM that came once the backup was past its own
    // checks (while it recorded its verification, or said it was taken):
    // the operator asked to stop, so a command that may change the
    // database is not started, to be passed the signal.
    if let Some(signal) = crate::edge::signals::received() {
        crate::edge::signals::changed(format!(
            "the backup {taken} was taken, and `{shown}` was not run"
        ));
        return Err(crate::edge::signals::Interrupted(signal).into());
    }
    crate::edge::signals::changed(format!(
        "`{shown}` was started and may have changed {}; the backup taken before it is {taken}",
        env.database_name
    ));
    let status = match crate::edge::child::run_passing_signals(program, rest) {
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
            "`{shown}` failed ({status}); the backup taken before it is {taken}{}",
            file.as_deref()
                .map_or_else(String::new, |f| way_back(f, env))
        ));
        return Ok(std::process::ExitCode::from(shell_code(status)));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// What to do after the command failed partway: see what it changed, and
/// put the database back as it was before it, after a look at the plan.
fn way_back(file: &Path, env: &Environment) -> String {
    let file = d1_core::wording::shell_word(&file.display().to_string());
    format!(
        ". If it changed {} partway, `cargo xtask diff {file} live:{}` shows what it changed, \
         and `cargo xtask restore {file} --to {} --replace --dry-run` plans putting it back as it \
         was before it",
        env.database_name, env.name, env.name
    )
}

/// Whether a command can be started.
enum Startable {
    Yes,
    /// No such file (a path), or no such name on PATH.
    Missing,
    /// There, but not an executable file.
    NotExecutable,
}

/// Whether `program` names a file that can be run: a path, or a name
/// found on PATH, as the shell would look it up.
fn startable(program: &str) -> Startable {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Startable::Yes,
        Ok(_) => Startable::NotExecutable,
        Err(_) => Startable::Missing,
    };
    if program.contains('/') {
        return runnable(std::path::Path::new(program));
    }
    // The first runnable on PATH; else one that is there but not
    // executable; else none. As a shell does, a directory on PATH is
    // passed over: `tool` is not found because `./bin/tool/` exists.
    let mut found = Startable::Missing;
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join(program);
        if candidate.is_dir() {
            continue;
        }
        match runnable(&candidate) {
            Startable::Yes => return Startable::Yes,
            Startable::NotExecutable => found = Startable::NotExecutable,
            Startable::Missing => {}
        }
    }
    found
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
