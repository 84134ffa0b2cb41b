//! The programs a command runs that are neither wrangler nor git: the
//! command `with-backup` wraps, the Pages deploy's own command, the drill's
//! app checks (Node) and a rehearsal's steps (this program). Each runs
//! shielded from a hangup, and an interrupt is passed on to it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

use anyhow::{Context, Result};

/// Runs the command and waits for it; SIGINT or SIGTERM sent to this
/// process (by `kill`, systemd, a CI timeout: not only a terminal's Ctrl-C,
/// which reaches the whole group) is passed on to it, and its own outcome
/// is what is reported. It is given `vars` in its environment, and
/// `started` is given its pid once it runs.
pub fn run_passing_signals(
    program: &str,
    rest: &[String],
    vars: &[(&str, &str)],
    started: impl FnOnce(u32),
) -> std::io::Result<ExitStatus> {
    let _guard = crate::edge::signals::GuardingChild::new();
    let mut command = Command::new(program);
    command.args(rest).envs(vars.iter().copied());
    // Under `nohup`: a Node.js command would die of the job's SIGHUP.
    let mut child = crate::edge::signals::shield_from_hangup(&mut command).spawn()?;
    started(child.id());
    crate::edge::signals::wait_passing_signals(&mut child)
}

/// The Pages deploy's own command (`sh -c COMMAND` in `dir`), waited for;
/// an error unless it succeeded.
pub fn pages_deploy_command(command: &OsStr, dir: &Path) -> Result<()> {
    let mut deploy = Command::new("sh");
    deploy.arg("-c").arg(command).current_dir(dir);
    // Under `nohup`: a Node.js command would die of the job's SIGHUP.
    // In a group of its own it misses a Ctrl-C too: passed on to it.
    let mut child = crate::edge::signals::shield_from_hangup(&mut deploy)
        .spawn()
        .context("cannot start sh")?;
    let status = crate::edge::signals::wait_passing_signals(&mut child)
        .context("waiting for the Pages deploy")?;
    anyhow::ensure!(status.success(), "the Pages deploy failed ({status})");
    Ok(())
}

/// One of the drill's app checks: `node script METHOD`, with the URL in
/// `QBTIME_APP_CHECK_URL`, the DevOps token in `QBTIME_DEVOPS_TOKEN` and
/// no stdin; its output.
pub fn app_check(
    node: &Path,
    script: &Path,
    method: &str,
    url: &str,
    token: &str,
) -> std::io::Result<Output> {
    let mut check = Command::new(node);
    check
        .arg(script)
        .arg(method)
        // By the environment, as the token: a command line is shown to
        // every user (`ps`), and the URL may hold a secret (a query's).
        .env("QBTIME_APP_CHECK_URL", url)
        .env("QBTIME_DEVOPS_TOKEN", token)
        .stdin(Stdio::null());
    // Under `nohup`, as wrangler: Node.js would die of the job's SIGHUP.
    output_passing_signals(crate::edge::signals::shield(&mut check))
}

/// `cmd`'s output, as [`std::process::Command::output`] gives it, while
/// an interrupt is passed on to it ([`crate::edge::signals::wait_passing_signals`]):
/// an app check must not wait for its app after the drill was stopped.
fn output_passing_signals(cmd: &mut Command) -> std::io::Result<Output> {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let read = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = crate::edge::signals::wait_passing_signals(&mut child)?;
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// A rehearsal's step: this program (`exe`) run again in `dir`, with the
/// variables of `set` set and those of `remove` removed, and `args`.
pub struct StepRun<'a> {
    pub exe: &'a Path,
    pub dir: &'a Path,
    pub set: &'a [(&'a str, &'a OsStr)],
    pub remove: &'a [&'a str],
    pub args: &'a [String],
}

/// What a step prints is the rehearsal's, about the loopback's databases:
/// each line is passed on marked, so that none reads as a command to paste
/// (its "To undo it: cargo xtask time-travel restore prod …" would act on
/// the real prod). Under `--json`, stdout carries the one document, so the
/// step's stdout goes to stderr. Returns whether the step succeeded.
pub fn run_marked(step: &StepRun, json: bool) -> std::io::Result<bool> {
    let mut cmd = Command::new(step.exe);
    cmd.current_dir(step.dir);
    for (name, value) in step.set {
        cmd.env(name, value);
    }
    for name in step.remove {
        cmd.env_remove(name);
    }
    cmd.args(step.args);
    use std::io::BufRead;
    const MARK: &str = "  rehearsal | ";
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let relay = |stream: Box<dyn std::io::Read + Send>, to_stderr: bool| {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).split(b'\n') {
                let Ok(line) = line else { break };
                crate::out::relayed(to_stderr, MARK, &String::from_utf8_lossy(&line));
            }
        })
    };
    // Under -q a step's stdout holds only its listings, which are not what
    // the rehearsal was asked for: read and dropped.
    let quiet = crate::out::level() == crate::out::Level::Quiet;
    let out = child.stdout.take().map(|s| match quiet {
        false => relay(Box::new(s), json),
        true => std::thread::spawn(move || {
            let _ = std::io::copy(&mut { s }, &mut std::io::sink());
        }),
    });
    let err = child.stderr.take().map(|s| relay(Box::new(s), true));
    let status = {
        let _guard = crate::edge::signals::GuardingChild::new();
        crate::edge::signals::wait_passing_signals(&mut child)?
    };
    for thread in [out, err].into_iter().flatten() {
        let _ = thread.join();
    }
    Ok(status.success())
}
