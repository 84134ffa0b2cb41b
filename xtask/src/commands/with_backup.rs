//! `cargo xtask with-backup <env> [--reason R] -- <command...>`: a full
//! backup, then the command; the runbook's "back up before every bulk
//! operation".

use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::steps::backup::{self, BackupArgs, TakenFor};
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
    // Every database the command may change: all of the environment's
    // (`backup ENV`'s rule), unless `--database` or a qualified name picks
    // one, which is then told.
    let targets = envs.databases(&args.env)?;
    // Redacted whole, once: a quoted word may hold a line break (`--data
    // $'{"password":\n "…"}'`), which the output, redacted line by line,
    // would cut between a secret's name and its value.
    // A piece of an age secret key in it is not shown either: the reason
    // made of it is kept in the manifest, listed and sent offsite.
    let shown =
        crate::redact::key_pieces_unshown(&crate::redact::text(&shell_words(&args.command)));
    let (program, rest) = args.command.split_first().context("no command given")?;
    if let Some(code) = unstartable(program, &shown) {
        return Ok(code);
    }
    warn_of_databases_left_out(project, &envs, &targets, &shown);
    // Held from before the backup until the command ends: a restore, a
    // migration or a prune started meanwhile would change the database
    // under the command, or undo it past the backup taken before it.
    let mut lock = crate::steps::lock::acquire_lock(project, &format!("with-backup {}", args.env))?;
    // `before:` first, whatever reason is given: prune keeps a backup so
    // marked as the task's undo point.
    let reason = format!("before: {}", args.reason.as_deref().unwrap_or(&shown));
    let backups = take_backups(sh, project, (&targets, &lock), &reason, &shown)?;
    let taken = named(&backups);
    // "the backup taken before it is X", or "the backups … are X, Y".
    let before_it = match backups.len() {
        0 | 1 => format!("the backup taken before it is {taken}"),
        _ => format!("the backups taken before it are {taken}"),
    };
    say_taken(backups.len(), &taken, &shown);
    // A SIGINT or SIGTERM that came once the backup was past its own
    // checks (while it recorded its verification, or said it was taken):
    // the operator asked to stop, so a command that may change the
    // database is not started, to be passed the signal.
    if let Some(signal) = crate::edge::signals::received() {
        crate::edge::signals::changed(format!("backup taken: {taken}; `{shown}` was not run"));
        return Err(crate::edge::signals::Interrupted(signal).into());
    }
    let databases: Vec<&str> = targets.iter().map(|e| e.database_name.as_str()).collect();
    let may_have_changed = format!(
        "`{shown}` was started and may have changed {}; {before_it}",
        databases.join(", ")
    );
    crate::edge::signals::changed(may_have_changed.clone());
    let nesting = lock.nesting();
    let vars = [(crate::edge::lock::NESTED_ENV, nesting.as_str())];
    let started = |pid: u32| record_running(&mut lock, &shown, pid);
    let status = match crate::edge::child::run_passing_signals(program, rest, &vars, started) {
        Ok(status) => status,
        Err(e) => {
            // As a shell does: a command that cannot be started is 127.
            crate::out::error(&format!(
                "cannot start `{shown}`: {e}; check the program name and PATH; \
                 {before_it}"
            ));
            return Ok(std::process::ExitCode::from(127));
        }
    };
    if !status.success() {
        let said = (
            shown.as_str(),
            before_it.as_str(),
            may_have_changed.as_str(),
        );
        return Ok(say_failed(project, &backups, said, status));
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `Backup taken: X. Running: COMMAND`, or `Backups taken: …` for more
/// than one; nothing when none was taken.
fn say_taken(backups: usize, taken: &str, shown: &str) {
    let label = match backups {
        0 => return,
        1 => "Backup",
        _ => "Backups",
    };
    crate::say!("{label} taken: {taken}. Running: {shown}");
}

/// A command that ended failed: its code, as a shell gives it, and its
/// failure with the backups taken before it and the way back from each.
/// Stopped by a signal this run was sent too (a terminal's Ctrl-C reaches
/// the whole job), the interruption is the one thing said (`main`), with
/// what the command may have changed and the way back, not a failure of
/// the command as well (NT).
fn say_failed(
    project: &Project,
    backups: &[(PathBuf, &Environment)],
    (shown, before_it, may_have_changed): (&str, &str, &str),
    status: std::process::ExitStatus,
) -> std::process::ExitCode {
    let back: String = { backups.iter() }
        .map(|(f, env)| way_back(project, f, env))
        .collect();
    if crate::edge::signals::received().is_some() {
        crate::edge::signals::changed(format!("{may_have_changed}{back}"));
    } else {
        crate::out::error(&format!("`{shown}` failed ({status}); {before_it}{back}"));
    }
    std::process::ExitCode::from(shell_code(status))
}

/// Records in the lock the command `shown`, started as process `pid`:
/// killed, this run leaves the lock held while the command runs.
fn record_running(lock: &mut crate::edge::lock::BackupLock, shown: &str, pid: u32) {
    if let Err(e) = lock.running(pid) {
        crate::warn!(
            "could not record `{shown}` (pid {pid}) in the backup lock ({e:#}): if this run is \
             killed, the lock is free while it still runs"
        );
    }
}

/// A full backup of each of `targets`, in order, each file with its
/// database. The first failure stops the rest, and the command is not run;
/// the backups already taken stay, and are named.
fn take_backups<'a>(
    sh: &Shell,
    project: &Project,
    (targets, lock): (&[&'a Environment], &crate::edge::lock::BackupLock),
    reason: &str,
    shown: &str,
) -> Result<Vec<(PathBuf, &'a Environment)>> {
    if targets.len() > 1 {
        let names: Vec<&str> = targets.iter().map(|e| e.name.as_str()).collect();
        crate::say!(
            "`{}` has {} D1 databases, which `{shown}` may change; each gets its own backup \
             first: {}",
            targets[0].env_name,
            targets.len(),
            names.join(", ")
        );
    }
    let mut backups = Vec::new();
    for env in targets {
        let args = BackupArgs::full(&env.name, reason.to_owned(), TakenFor::Command);
        let held = backup::Held {
            lock,
            schema: None,
            of: env,
        };
        let file = backup::run_under(sh, project, &args, held).map_err(|e| {
            let kept = match backups.is_empty() {
                true => String::new(),
                false => format!("; the backups taken stay: {}", named(&backups)),
            };
            e.context(format!(
                "the backup of {} failed, so `{shown}` was not run{kept}",
                env.name
            ))
        })?;
        backups.extend(file.map(|f| (f, *env)));
    }
    Ok(backups)
}

/// The backups' files, comma-separated; `none` for none.
fn named(backups: &[(PathBuf, &Environment)]) -> String {
    if backups.is_empty() {
        return "none".to_owned();
    }
    let files: Vec<String> = { backups.iter() }
        .map(|(f, _)| f.display().to_string())
        .collect();
    files.join(", ")
}

/// Warns when `--database` or a qualified name picked one of several
/// databases of the environment: the command may change the others too,
/// and they are not backed up before it.
fn warn_of_databases_left_out(
    project: &Project,
    envs: &crate::config::environment::Environments,
    targets: &[&Environment],
    shown: &str,
) {
    let [picked] = targets else { return };
    let left: Vec<String> = { envs.siblings(picked) }
        .map(|e| format!("{} (binding {})", e.database_name, e.binding))
        .collect();
    if left.is_empty() {
        return;
    }
    let how = match &project.database {
        Some(pick) => format!("--database {pick}"),
        None => format!("`{}`", picked.name),
    };
    let (verb, them) = match left.len() {
        1 => ("is", "it"),
        _ => ("are", "them"),
    };
    crate::warn!(
        "{how} picks {} alone, so {} of `{}` {verb} not backed up before `{shown}`, which may \
         change {them} too; `with-backup {}` without --database backs up every database of `{}` \
         first",
        picked.database_name,
        left.join(", "),
        picked.env_name,
        picked.env_name,
        picked.env_name
    );
}

/// The exit code for a command that cannot be started, told before any
/// backup is taken; `None` when it can be.
fn unstartable(program: &str, shown: &str) -> Option<std::process::ExitCode> {
    match startable(program) {
        Startable::Yes => None,
        // As a shell does: a command not found is 127, one found but not
        // executable 126; and no backup is taken for a command that
        // cannot run.
        Startable::Missing => {
            crate::out::error(&format!(
                "cannot start `{shown}`: no such program (a path, or a name on PATH); check the \
                 program name and PATH. No backup was taken"
            ));
            Some(std::process::ExitCode::from(127))
        }
        Startable::NoInterpreter(interpreter) => {
            crate::out::error(&format!(
                "cannot start `{shown}`: {program} is there, but the interpreter its `#!` line \
                 names, {interpreter:?}, is not there (or, after env, a name on no PATH), and a \
                 shell says \"No such file or directory\"; install it or fix the `#!` line. No \
                 backup was taken"
            ));
            Some(std::process::ExitCode::from(127))
        }
        Startable::InterpreterNotExecutable(interpreter) => {
            crate::out::error(&format!(
                "cannot start `{shown}`: {program} is there, and so is the interpreter its `#!` \
                 line names, {interpreter:?}, but it is not executable (not an executable file), \
                 and a shell says \"Permission denied\"; make it executable or fix the `#!` \
                 line. No backup was taken"
            ));
            Some(std::process::ExitCode::from(126))
        }
        Startable::NotExecutable => {
            crate::out::error(&format!(
                "cannot start `{shown}`: permission denied ({program} is there but not an \
                 executable file; `chmod +x` it, or run it through its interpreter). No backup \
                 was taken"
            ));
            Some(std::process::ExitCode::from(126))
        }
    }
}

/// What to do after the command failed partway: see what it changed, and
/// put the database back as it was before it, after a look at the plan,
/// with the `--allow-trigger` names the backup needs
/// ([`crate::steps::migrations::way_back_triggers`]).
fn way_back(project: &Project, file: &Path, env: &Environment) -> String {
    let allow =
        crate::steps::migrations::way_back_triggers(project, file, env, (None, None)).flags();
    let file = d1_core::wording::shell_word(&file.display().to_string());
    format!(
        ". If it changed {} partway, `cargo xtask diff {file} live:{}` shows what it changed, \
         and `cargo xtask restore {file} --to {} --replace{allow} --dry-run` plans putting it \
         back as it was before it",
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
    /// A script whose `#!` interpreter is missing (it, as its line names
    /// it).
    NoInterpreter(String),
    /// A script whose `#!` interpreter is there, but not an executable
    /// file (it, as its line names it).
    InterpreterNotExecutable(String),
}

/// Whether `program` names a file that can be run: a path, or a name
/// found on PATH, as the shell would look it up; a script, only if its
/// `#!` interpreter can be run too ([`missing_interpreter`]).
fn startable(program: &str) -> Startable {
    match found(program) {
        (Startable::Yes, Some(path)) => missing_interpreter(&path).unwrap_or(Startable::Yes),
        (other, _) => other,
    }
}

/// Whether `program` names an executable file, a path or a name on PATH,
/// and the file found.
fn found(program: &str) -> (Startable, Option<PathBuf>) {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return (startable_file(&path), Some(path));
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
        match startable_file(&candidate) {
            Startable::Yes => return (Startable::Yes, Some(candidate)),
            Startable::NotExecutable => found = Startable::NotExecutable,
            _ => {}
        }
    }
    (found, None)
}

/// The `#!` interpreter of the script at `path` when it certainly cannot
/// be run, as its line names it ([`Startable::NoInterpreter`] when it is
/// missing, [`Startable::InterpreterNotExecutable`] when it is there but
/// cannot be run). Only the simple lines are judged: `#!/abs/path [arg]`
/// (the kernel takes the path as written, up to a space or tab: a `\r`
/// left by CRLF is part of it), and `#!/usr/bin/env NAME`, NAME alone,
/// looked up on this PATH. Any other (env's options, assignments, a
/// relative path) is left to run as it is: a wrong guess would refuse a
/// script that runs. Only the first 256 bytes are read (the kernel reads
/// no more); the line ends at a newline or at the end of a shorter file;
/// one that does not end within them is not judged.
fn missing_interpreter(path: &std::path::Path) -> Option<Startable> {
    use std::io::Read as _;
    const READ: usize = 256;
    let mut head = Vec::new();
    { std::fs::File::open(path).ok()? }
        .take(READ as u64)
        .read_to_end(&mut head)
        .ok()?;
    let line = head.strip_prefix(b"#!")?;
    let end = match line.iter().position(|&b| b == b'\n') {
        Some(end) => end,
        None if head.len() < READ => line.len(),
        None => return None,
    };
    let line = String::from_utf8_lossy(&line[..end]);
    let words: Vec<&str> = { line.split([' ', '\t']) }
        .filter(|w| !w.is_empty())
        .collect();
    let (&interpreter, args) = words.split_first()?;
    if !interpreter.starts_with('/') {
        return None;
    }
    let told = |named: String, how: Startable| match how {
        Startable::Yes => None,
        Startable::NotExecutable => Some(Startable::InterpreterNotExecutable(named)),
        _ => Some(Startable::NoInterpreter(named)),
    };
    match startable_file(std::path::Path::new(interpreter)) {
        Startable::Yes => {}
        how => return told(interpreter.to_owned(), how),
    }
    let is_env = std::path::Path::new(interpreter).file_name() == Some(std::ffi::OsStr::new("env"));
    match args {
        [name] if is_env && !name.starts_with('-') && !name.contains('=') => {
            told(format!("{interpreter} {name}"), found(name).0)
        }
        _ => None,
    }
}

/// Whether the file at `p` is an executable file.
fn startable_file(p: &std::path::Path) -> Startable {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Startable::Yes,
        Ok(_) => Startable::NotExecutable,
        Err(_) => Startable::Missing,
    }
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
    use std::os::unix::fs::PermissionsExt as _;

    /// Writes `text` as an executable script in `dir`, and judges it.
    fn judged(dir: &std::path::Path, text: &str) -> Startable {
        let path = dir.join("script");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        startable(&path.display().to_string())
    }

    /// rvAJ: env's options and assignments were judged as if they named
    /// the interpreter (`-u PYTHONPATH`, `-C /srv`, `PATH=…` against the
    /// xtask's own PATH), and a `#!` line ending at the end of the file
    /// within 256 bytes was not judged.
    #[test]
    fn only_a_certainly_missing_interpreter_is_judged() {
        let dir = tempfile::tempdir().unwrap();
        for not_refused in [
            "#!/usr/bin/env -S -u PYTHONPATH sh\nexit 0\n",
            "#!/usr/bin/env -C /srv sh\nexit 0\n",
            "#!/usr/bin/env -S PATH=/nonexistent-kd:${PATH} no-such-tool-kd\n",
            "#!/usr/bin/env no-such-tool-kd -u\n",
            "#!/bin/sh",
        ] {
            assert!(
                matches!(judged(dir.path(), not_refused), Startable::Yes),
                "{not_refused:?}"
            );
        }
        for (text, named) in [
            ("#!/nonexistent-kd/python3", "/nonexistent-kd/python3"),
            (
                "#!/usr/bin/env no-such-tool-kd\n",
                "/usr/bin/env no-such-tool-kd",
            ),
        ] {
            assert!(
                matches!(judged(dir.path(), text), Startable::NoInterpreter(i) if i == named),
                "{text:?}"
            );
        }
    }
}
