//! The directories rehearsals leave under the backup directory
//! (`.rehearsal-<stamp>-<pid>`): each holds a plain copy of prod (the
//! loopback's databases, and backups decrypted), removed when its
//! rehearsal ends unless kept. One whose rehearsal was killed is removed by
//! the next run that sweeps ([`remove_killed`]).

use std::path::{Path, PathBuf};

/// In a rehearsal's directory that is removed when it ends (no `--keep`).
pub const UNKEPT: &str = ".removed-when-done";

/// Set by a rehearsal on each of its steps (and among `--serve`'s
/// exports) to its directory's name: the rehearsal a command runs in.
pub const REHEARSAL_VAR: &str = "QBTIME_REHEARSAL";

/// Whether `name` is a rehearsal directory's: `.rehearsal-` and then
/// letters, digits and `-` alone (printed, so nothing else is taken).
fn is_rehearsal_name(name: &str) -> bool {
    name.strip_prefix(".rehearsal-").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The rehearsal this command runs in ([`REHEARSAL_VAR`]), if any.
pub fn current() -> Option<String> {
    { std::env::var(REHEARSAL_VAR).ok() }.filter(|name| is_rehearsal_name(name))
}

/// Refuses (exit 2), before a command does anything, a [`REHEARSAL_VAR`]
/// that names no live rehearsal: one left in a shell after `rehearse
/// --serve`'s exports (or set by hand) marked every backup taken there a
/// rehearsal's, which `latest` passes over and restore refuses for ever.
/// A rehearsal sets it with the backup directory at its own directory's
/// `backups/` (`QBTIME_BACKUP_DIR`, among `--serve`'s exports too), and
/// runs while its steps and `--serve`'s shell use it: live is a rehearsal
/// directory of that name whose `backups/` is `backup_dir`, and whose
/// rehearsal (the pid its name ends with) still runs on this machine, as
/// the loopback it serves on 127.0.0.1 does. An empty value is unset.
pub fn refuse_unless_live(backup_dir: &Path) -> anyhow::Result<()> {
    let Some(value) = std::env::var_os(REHEARSAL_VAR).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let value = value.to_string_lossy().into_owned();
    let why = if !is_rehearsal_name(&value) {
        // Not shown: a value that is no rehearsal's name may be anything.
        "is set to a value that is no rehearsal directory's name (`.rehearsal-<stamp>-<pid>`)"
            .to_owned()
    } else if !is_its_backups(backup_dir, &value) {
        format!(
            "names the rehearsal {value}, but this command's backup directory {} is not that \
             rehearsal directory's backups/",
            d1_core::names::shown_path(backup_dir)
        )
    } else if !runs(&value) {
        format!("names the rehearsal {value}, which no longer runs on this machine")
    } else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{REHEARSAL_VAR} {why}: left in this shell from a rehearsal's exports (`cargo xtask \
         rehearse --serve`) or set by hand, it would mark every backup taken here a rehearsal's, \
         which `latest` passes over and restore refuses outside that rehearsal. Nothing was done. \
         Run `unset {REHEARSAL_VAR}` (with the rest of that rehearsal's exports, if this shell \
         still holds them), then run the command again."
    )
}

/// [`UNSET_EXPORTS`], as a literal that [`WAY_OUT`] is made of.
macro_rules! unset_exports {
    () => {
        "unset QBTIME_REHEARSAL QBTIME_BACKUP_DIR CLOUDFLARE_API_BASE_URL CLOUDFLARE_API_TOKEN \
         CLOUDFLARE_ACCOUNT_ID"
    };
}

/// What `rehearse --serve` exports, unset: a shell that pasted its
/// exports acts on the real databases again, and keeps its backups among
/// the real ones (`commands::rehearse`'s `loopback_vars` names the same).
/// `QBTIME_WRANGLER_CONFIG` stays: it names the project's own
/// configuration, the one the rehearsal served.
pub const UNSET_EXPORTS: &str = unset_exports!();

/// The rehearsal whose directory this command's backup directory is in:
/// the one it runs in ([`current`], whose `backups/` it is once
/// [`refuse_unless_live`] passed), or one on its path (`QBTIME_BACKUP_DIR`
/// pasted from `--serve`'s exports without `QBTIME_REHEARSAL`). Every
/// backup taken there is a rehearsal's ([`of_backup`]).
pub fn holding(backup_dir: &Path) -> Option<String> {
    current().or_else(|| made_by_a_rehearsal(backup_dir))
}

/// Written by a rehearsal in its directory once its loopback serves: the
/// loopback's API base URL, as its exports give it. With [`UNKEPT`], what
/// tells a rehearsal's directory from one merely named like it.
pub const LOOPBACK_MARK: &str = ".loopback-api";

/// The rehearsal whose directory's `backups/` `backup_dir` is, by what a
/// rehearsal writes there ([`LOOPBACK_MARK`] or [`UNKEPT`]): a directory
/// typed by hand, or a checkout under one, named `.rehearsal-…` is none.
fn made_by_a_rehearsal(backup_dir: &Path) -> Option<String> {
    let absolute = std::path::absolute(backup_dir).ok()?;
    let dir = absolute.parent()?;
    let name = dir.file_name()?.to_str()?;
    let marked = [LOOPBACK_MARK, UNKEPT]
        .iter()
        .any(|m| dir.join(m).is_file());
    (absolute.file_name()? == "backups" && is_rehearsal_name(name) && marked)
        .then(|| name.to_owned())
}

/// Refuses (exit 3), before it does anything, a command run with
/// `CLOUDFLARE_API_BASE_URL` at the loopback of a rehearsal that still
/// runs (its [`LOOPBACK_MARK`], in a rehearsal directory under the backup
/// directory) while the backup directory is not that rehearsal's: a shell
/// that unset only part of `rehearse --serve`'s exports. A backup taken
/// there, a copy of the rehearsal's database, would pass for a real one
/// (`list` shows it plain, `latest` picks it). A loopback no rehearsal
/// serves (the tests' own, with a backup directory of theirs) is not one.
pub fn refuse_loopback_outside(backup_dir: &Path) -> anyhow::Result<()> {
    let url = std::env::var("CLOUDFLARE_API_BASE_URL").unwrap_or_default();
    if !is_loopback_url(&url) || holding(backup_dir).is_some() {
        return Ok(());
    }
    let Some(rehearsal) = serving(backup_dir, &url) else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to run this command: CLOUDFLARE_API_BASE_URL is the loopback of the rehearsal \
         {rehearsal}, which still runs, yet this shell's backup directory {} is not that \
         rehearsal's: a backup taken here would be a copy of the rehearsal's database, shown by \
         `list` as a real one and picked by `latest`. Nothing was done. This shell holds part \
         of the rehearsal's exports: to act on the real databases, `unset \
         CLOUDFLARE_API_BASE_URL CLOUDFLARE_API_TOKEN CLOUDFLARE_ACCOUNT_ID`; to act on the \
         rehearsal's, paste all of its exports again.",
        d1_core::names::shown_path(backup_dir)
    )
}

/// The running rehearsal, among the directories under `backup_dir`,
/// whose loopback is `url` ([`LOOPBACK_MARK`]).
fn serving(backup_dir: &Path, url: &str) -> Option<String> {
    let same = |mark: &str| mark.trim().trim_end_matches('/') == url.trim().trim_end_matches('/');
    { std::fs::read_dir(backup_dir).ok()? }
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| is_rehearsal_name(name) && runs(name))
        .find(|name| {
            { std::fs::read_to_string(backup_dir.join(name).join(LOOPBACK_MARK)) }
                .is_ok_and(|mark| same(&mark))
        })
}

/// Whether the rehearsal `name` (the pid its name ends with) still runs
/// on this machine.
fn runs(name: &str) -> bool {
    pid_of(name).is_some_and(crate::edge::machine::pid_exists)
}

/// The pid a rehearsal's directory name (`.rehearsal-…-PID`) ends with.
fn pid_of(name: &str) -> Option<u32> {
    name.strip_prefix(".rehearsal-")?
        .rsplit('-')
        .next()?
        .parse()
        .ok()
}

/// Whether `CLOUDFLARE_API_BASE_URL` names a server on a loopback address
/// ([`is_loopback_url`]), where a rehearsal's API serves: unset, wrangler
/// talks to Cloudflare's.
fn api_on_loopback() -> bool {
    is_loopback_url(&std::env::var("CLOUDFLARE_API_BASE_URL").unwrap_or_default())
}

/// Whether `url` is one on a loopback address, as the rehearsal's are
/// (`http://127.0.0.1:PORT/client/v4`): `localhost`, 127.0.0.0/8 or
/// `[::1]`, not a host whose name starts so.
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = match rest.strip_prefix("[::1]") {
        Some(after) => return after.is_empty() || after.starts_with([':', '/']),
        None => rest.split([':', '/']).next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses (exit 3), before it does anything, a command that would act on
/// `env`'s real database (`doing` it), or take a backup of it, in a shell
/// whose backup directory is a rehearsal's ([`holding`]): the local D1,
/// which no rehearsal serves (its loopback serves the remote environments
/// alone), or a remote database when `CLOUDFLARE_API_BASE_URL` is not the
/// loopback's (left out of the exports pasted). Its backup, a restore's
/// safety backup included, would land in the rehearsal's `backups/`, a
/// rehearsal's: `list` does not show it, restore refuses it outside that
/// rehearsal (its printed way back too), and the `rm -rf` that `status`
/// advises for the rehearsal's directory deletes it.
pub fn refuse_real_database(
    backup_dir: &Path,
    env: &crate::config::environment::Environment,
    doing: &str,
) -> anyhow::Result<()> {
    let Some((rehearsal, why)) = real_in_a_rehearsal(backup_dir, env) else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to {doing} {}: {why}. Yet this shell's backup directory {} is the rehearsal \
         {rehearsal}'s, and a backup of {} taken there (a restore's safety backup included) \
         would be a rehearsal's: `list` does not show it, restore refuses it outside that \
         rehearsal, and removing the rehearsal's directory deletes it. Nothing was done. {}",
        env.name,
        d1_core::names::shown_path(backup_dir),
        env.name,
        way_out()
    )
}

/// The rehearsal `backup_dir` is in ([`holding`]), and why `env` is a real
/// database there, when it is one ([`refuse_real_database`]).
fn real_in_a_rehearsal(
    backup_dir: &Path,
    env: &crate::config::environment::Environment,
) -> Option<(String, String)> {
    use crate::config::environment::Location;
    let rehearsal = holding(backup_dir)?;
    let why = match env.location {
        Location::Remote if api_on_loopback() => return None,
        Location::Remote => format!(
            "CLOUDFLARE_API_BASE_URL is not on a loopback address, as the rehearsal's is, so {} \
             is the real {}",
            env.name, env.database_name
        ),
        Location::Local => format!(
            "{} is this checkout's real local D1 ({}, under .wrangler/state), which no \
             rehearsal serves: its loopback serves the remote environments alone",
            env.name, env.database_name
        ),
    };
    Some((rehearsal, why))
}

/// What `latest:ENV` finding no backup of `env` in a rehearsal's backup
/// directory adds when `env` is a real database there
/// ([`real_in_a_rehearsal`]): its `take one with cargo xtask backup ENV`
/// is refused in this shell, and its real backups are elsewhere.
pub fn real_database_note(
    backup_dir: &Path,
    env: &crate::config::environment::Environment,
) -> Option<String> {
    let (_, why) = real_in_a_rehearsal(backup_dir, env)?;
    Some(format!(
        "in this shell that is refused, since {why}. Its backups are among the real ones: \
         read them, or take one, in a shell without the rehearsal's exports (`{UNSET_EXPORTS}`)"
    ))
}

/// How a refusal of [`refuse_real_database`] and [`refuse_real_r2`] ends.
const WAY_OUT: &str = concat!(
    "Run it in a shell without the rehearsal's exports (`",
    unset_exports!(),
    "`); with them, act on the rehearsal's remote environments only."
);

/// How a refusal of [`refuse_real_database`] and [`refuse_real_r2`] ends:
/// [`WAY_OUT`], or, when `--backup-dir` typed on the command line named
/// the rehearsal's `backups/` (no rehearsal's exports in this shell),
/// leaving it out, the one thing that changes the outcome.
fn way_out() -> String {
    let typed =
        std::env::args_os().any(|a| a.to_string_lossy().split('=').next() == Some("--backup-dir"));
    match typed && current().is_none() {
        true => "Run it again and leave out `--backup-dir`, which names the rehearsal's \
                 backups/; with it, act on the rehearsal's remote environments only."
            .to_owned(),
        false => WAY_OUT.to_owned(),
    }
}

/// Refuses (exit 3), before it does anything, an offsite command (`doing`)
/// that would reach the real R2 in a shell whose backup directory is a
/// rehearsal's ([`holding`]) while `CLOUDFLARE_API_BASE_URL` is not its
/// loopback's: an upload would put the rehearsal's copies in the real
/// bucket, a fetch a real backup among the rehearsal's, where it is taken
/// for one of them ([`refuse_real_database`]).
pub fn refuse_real_r2(backup_dir: &Path, doing: &str) -> anyhow::Result<()> {
    let Some(rehearsal) = holding(backup_dir).filter(|_| !api_on_loopback()) else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to {doing}: CLOUDFLARE_API_BASE_URL is not on a loopback address, as the \
         rehearsal's is, so R2 is the real one, yet this shell's backup directory {} is the \
         rehearsal {rehearsal}'s, whose backups are copies of its loopback's databases, and \
         where a real backup fetched would be taken for one. Nothing was done. {}",
        d1_core::names::shown_path(backup_dir),
        way_out()
    )
}

/// Whether `backup_dir` is the `backups/` of the rehearsal directory
/// `name` (a real directory, no link), as a rehearsal exports it.
fn is_its_backups(backup_dir: &Path, name: &str) -> bool {
    let Some(dir) = backup_dir.parent() else {
        return false;
    };
    backup_dir.file_name().is_some_and(|n| n == "backups")
        && dir.file_name().is_some_and(|n| n == name)
        && [dir, backup_dir]
            .iter()
            .all(|d| std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()))
}

/// The rehearsal a backup was taken in: the one its manifest records
/// (a copy moved out of that rehearsal's directory keeps it), else the
/// rehearsal directory on its path (a backup of a version that recorded
/// none). A manifest's value that is no rehearsal's name is still one
/// (a hostile one must not pass for the real prod's): shown as
/// `unnamed`.
pub fn of_backup(file: &Path, recorded: Option<&str>) -> Option<String> {
    if let Some(name) = recorded {
        return Some(match is_rehearsal_name(name) {
            true => name.to_owned(),
            false => "unnamed".to_owned(),
        });
    }
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    [file, absolute.as_path()]
        .into_iter()
        .flat_map(Path::components)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .find(|c| is_rehearsal_name(c))
}

/// How the first line of a dump taken inside a rehearsal starts: a SQL
/// comment (which every reader of a dump, this tool's and D1's, passes
/// over) naming the rehearsal, then why. The manifest's mark stays with
/// the manifest; this one travels with the dump, compressed and encrypted
/// inside it, so a copy of the file alone (`cp …/.rehearsal-…/backups/
/// backup-prod-….sql /tmp/`, restored with `--no-manifest`) is still
/// known for a rehearsal's.
const DUMP_MARK: &str = "-- qbtime-xtask: taken inside the rehearsal ";

/// The line a backup taken inside the rehearsal this command runs in
/// starts its dump with ([`DUMP_MARK`]), if it runs in one.
pub fn dump_mark() -> Option<String> {
    current().map(|name| {
        format!(
            "{DUMP_MARK}{name}: a copy of its loopback's databases, never of a real one, \
             restored only within that rehearsal\n"
        )
    })
}

/// The rehearsal the first line of a dump (`head`, its first bytes) names,
/// if it is marked as one's ([`dump_mark`]); a mark naming no rehearsal's
/// directory still marks it (`unnamed`).
pub fn marked_in(head: &[u8]) -> Option<String> {
    let rest = head.strip_prefix(DUMP_MARK.as_bytes())?;
    let name: Vec<u8> = { rest.iter() }
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'.')
        .copied()
        .collect();
    let name = String::from_utf8_lossy(&name).into_owned();
    Some(match is_rehearsal_name(&name) {
        true => name,
        false => "unnamed".to_owned(),
    })
}

/// `head` past its rehearsal's mark line, if it has one: the export as
/// wrangler wrote it.
pub fn past_mark(head: &[u8]) -> &[u8] {
    match head.starts_with(DUMP_MARK.as_bytes()) {
        true => head
            .iter()
            .position(|b| *b == b'\n')
            .map_or(&[][..], |n| &head[n + 1..]),
        false => head,
    }
}

/// The rehearsal `file` was taken in ([`of_backup`]), when it is another
/// than the one this command runs in: a backup this command must not take
/// for a real one (restore refuses it, [`refuse_outside_its_rehearsal`]),
/// nor count as one (`list` marks it, `status` and `prune` pass over it).
pub fn of_another(file: &Path, recorded: Option<&str>) -> Option<String> {
    let taken_in = of_backup(file, recorded)?;
    (current().as_deref() != Some(taken_in.as_str())).then_some(taken_in)
}

/// The rehearsal `file` was taken in, when another than this command's
/// ([`of_another`]), by either mark: its manifest's (`recorded`), or else
/// its dump's first line ([`marked_in`]), read by `head` (the plaintext's
/// first bytes, `None` when they cannot be read) only when the manifest
/// records none. The one test of "a rehearsal's backup", for `latest`,
/// `list`, `status`, `prune` and `restore`: a dump copied out of a
/// rehearsal beside a manifest written anew without its mark is a
/// rehearsal's for each of them, not for restore alone.
pub fn of_another_by_either_mark(
    file: &Path,
    recorded: Option<&str>,
    head: impl FnOnce() -> Option<Vec<u8>>,
) -> Option<String> {
    let marked = match recorded {
        Some(_) => None,
        None => head().and_then(|head| marked_in(&head)),
    };
    of_another(file, recorded.or(marked.as_deref()))
}

/// The rehearsal the backup `e` was taken in, when restore would refuse
/// it here as a rehearsal's ([`of_another_by_either_mark`]): a copy of its
/// loopback's databases, no backup of the environment it names, wherever
/// it was copied. The dump's mark is read where no identity is needed
/// (plain or zstd, [`crate::edge::stored::unsealed_head`]); of a backup
/// sealed with age only the manifest's mark and its path count here, and
/// restore, which opens it, reads its dump's.
pub fn of_entry(e: &crate::edge::inventory::Entry) -> Option<String> {
    of_another_by_either_mark(&e.file, e.manifest.rehearsal.as_deref(), || {
        crate::edge::stored::unsealed_head(&e.file)
    })
}

/// Refuses (exit 3) to restore `file`, taken in a rehearsal, anywhere but
/// in that same rehearsal: its rows are a copy of the loopback's, and a
/// rehearsal's printed way back (`to go back, restore it: cargo xtask
/// restore <its directory>/backups/backup-prod-….sql --to prod …`), pasted
/// into a shell whose credentials reach Cloudflare, would put them into
/// the real prod.
pub fn refuse_outside_its_rehearsal(
    file: &Path,
    recorded: Option<&str>,
    head: impl FnOnce() -> Option<Vec<u8>>,
    target: &str,
) -> anyhow::Result<()> {
    let Some(taken_in) = of_another_by_either_mark(file, recorded, head) else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to restore {} into {target}: it was taken inside a rehearsal ({taken_in}), \
         and a rehearsal's backups are copies of its loopback's databases, not of any real \
         one; it is restored only within that rehearsal (with its exports set). Restore a \
         real backup instead (`cargo xtask list`). Nothing was done.",
        d1_core::names::file_name(file)
    )
}

/// Removes the directories of rehearsals that were killed (SIGKILL, the
/// OOM killer, a crash or a restart of the machine) before they removed
/// them: each holds a copy of the backup it started from, prod's rows
/// included. A directory kept (`--keep`, `--serve`), or whose rehearsal
/// still runs or may (on another machine), stays. Run by a rehearsal as it
/// starts, by every command that takes the backup lock, and by `status`,
/// `doctor` and `prune`: a rehearsal may never run again, and its copy of
/// prod must not wait for one.
pub fn remove_killed(backup_dir: &Path) {
    crate::edge::wrangler::remove_dirs_of_killed_runs(
        backup_dir,
        pid_of,
        |path, _, pid| ended(path, pid),
        "rehearsal",
    );
}

/// How the rehearsal (pid `pid`) whose directory is `path` ended, if it
/// did and its directory is one to remove (marked so, [`UNKEPT`]): killed
/// on this machine (this boot, this pid namespace: its pid is gone), or
/// stopped by a restart of this machine (it ran before this machine last
/// booted, whatever its pid names now: its mark says this host name and
/// this machine id). A mark of an older version, which says nothing of
/// where it ran, goes by the pid alone. One made on another machine
/// sharing the backup directory (a namesake host included), or in another
/// container on this one, or whose mark does not tell it from this
/// machine (no machine id), may be of a rehearsal running there: it is
/// left, and named with the way to remove it by hand.
fn ended(path: &Path, pid: u32) -> Option<&'static str> {
    use crate::edge::machine::{Machine, Run};
    use std::io::Read as _;
    let marker = path.join(UNKEPT);
    if !std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut on = String::new();
    let read = std::fs::File::open(&marker).and_then(|f| f.take(1024).read_to_string(&mut on));
    let (machine, run) = match read {
        Ok(_) if on.trim().is_empty() => (Machine::default(), Run::by_pid(pid)),
        Ok(_) => {
            let machine = Machine::read(&on);
            let run = machine.run(pid);
            (machine, run)
        }
        Err(_) => (Machine::default(), Run::Elsewhere),
    };
    match run {
        Run::Alive => None,
        Run::Killed => Some(crate::edge::wrangler::KILLED),
        Run::StoppedByRestart => Some(
            "that a restart of this machine stopped (a crash, a power loss or a reboot: it ran \
             before this machine last booted)",
        ),
        Run::Elsewhere => {
            let unsure = if machine.says_machine_id() {
                ""
            } else {
                " (its mark says no machine id, so it is not told from this machine)"
            };
            crate::note!(
                "left {}: a rehearsal on another machine sharing this backup directory, or in \
                 another container on this one, made it{}{unsure}, and may still run there; \
                 once none does, remove it with `rm -rf -- {}`",
                d1_core::names::shown_path(path),
                { machine.host() }
                    .map(|h| format!(" (its mark names host {h})"))
                    .unwrap_or_default(),
                d1_core::wording::shell_word(&path.display().to_string())
            );
            None
        }
    }
}

/// The rehearsals' directories still in `backup_dir` (real directories,
/// no link): kept (`--keep`, `--serve`), or of a rehearsal that runs, or
/// may, on another machine.
pub fn left(backup_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(backup_dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = { entries.flatten() }
        .filter(|e| e.file_name().to_string_lossy().starts_with(".rehearsal-"))
        .filter(|e| std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Says each rehearsal directory still in `backup_dir` ([`left`]), which
/// holds a copy of prod, and how to remove it once its rehearsal is over.
pub fn tell_left(backup_dir: &Path) {
    for dir in left(backup_dir) {
        let why = match dir.join(UNKEPT).exists() {
            true => "its rehearsal still runs, here or on another machine sharing this directory",
            false => "kept with --keep or --serve",
        };
        crate::note!(
            "{} holds a copy of prod from a rehearsal ({why}): once it is no longer needed, \
             remove it with `rm -rf -- {}`",
            d1_core::names::shown_path(&dir),
            d1_core::wording::shell_word(&dir.display().to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a URL on a loopback address (localhost, 127.0.0.0/8, [::1])
    /// is a rehearsal's loopback: Cloudflare's, none, or a host whose name
    /// merely starts with those digits reach something real.
    #[test]
    fn only_a_url_on_a_loopback_address_is_the_loopbacks() {
        for loopback in [
            "http://127.0.0.1:41234/client/v4",
            "http://127.0.0.1/client/v4",
            "http://127.3.2.1:41234/client/v4",
            "http://localhost:41234/client/v4",
            "http://LOCALHOST/client/v4",
            "http://[::1]:41234/client/v4",
        ] {
            assert!(is_loopback_url(loopback), "{loopback}");
        }
        for real in [
            "",
            "https://api.cloudflare.com/client/v4",
            "http://127.0.0.1.example.com/client/v4",
            "http://localhost.example.com/client/v4",
            "http://[::1].example.com/client/v4",
            "http://128.0.0.1:41234/client/v4",
            "https://127.0.0.1:41234/client/v4",
        ] {
            assert!(!is_loopback_url(real), "{real}");
        }
    }

    /// A backup is a rehearsal's by its manifest's mark, wherever the file
    /// now is, or else by a rehearsal directory on its path; a mark that
    /// is no rehearsal's name still makes it one.
    #[test]
    fn a_rehearsals_backup_is_told_by_its_mark_or_its_directory() {
        let moved = Path::new("backups/backup-prod-20261205-2330.sql");
        let inside = Path::new("backups/.rehearsal-20261205-233142-966/backups/b.sql");
        let name = ".rehearsal-20261205-233142-966";
        assert_eq!(of_backup(moved, None), None);
        assert_eq!(of_backup(moved, Some(name)).as_deref(), Some(name));
        assert_eq!(of_backup(inside, None).as_deref(), Some(name));
        assert_eq!(
            of_backup(moved, Some("prod\n; rm -rf ~")).as_deref(),
            Some("unnamed")
        );
        assert!(!is_rehearsal_name(".rehearsal-"));
        assert!(!is_rehearsal_name(".rehearsal-1 2"));
    }

    /// A dump's first line marks it a rehearsal's by name; one naming no
    /// rehearsal's directory (a hostile file's) is still one, `unnamed`;
    /// past the mark is the export as wrangler wrote it, and a dump with
    /// no mark is read as it is.
    #[test]
    fn a_dumps_mark_names_its_rehearsal_and_is_passed_over() {
        let export = "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(x);\n";
        let mark = format!("{DUMP_MARK}.rehearsal-20261205-233142-966: a copy\n");
        let marked = format!("{mark}{export}");
        assert_eq!(
            marked_in(marked.as_bytes()).as_deref(),
            Some(".rehearsal-20261205-233142-966")
        );
        assert_eq!(past_mark(marked.as_bytes()), export.as_bytes());
        let forged = format!("{DUMP_MARK}prod; rm -rf ~\n{export}");
        assert_eq!(marked_in(forged.as_bytes()).as_deref(), Some("unnamed"));
        assert_eq!(marked_in(export.as_bytes()), None);
        assert_eq!(past_mark(export.as_bytes()), export.as_bytes());
    }

    /// A backup is a rehearsal's by its manifest's mark, or, when that
    /// records none, by its dump's first line: the dump is read only then.
    #[test]
    fn either_mark_makes_a_backup_a_rehearsals() {
        let file = Path::new("backups/backup-prod-20261205-2330.sql");
        let name = ".rehearsal-20261205-233142-966";
        let marked = format!("{DUMP_MARK}{name}: a copy\nPRAGMA defer_foreign_keys=TRUE;\n");
        let head = || Some(marked.clone().into_bytes());
        assert_eq!(
            of_another_by_either_mark(file, None, head).as_deref(),
            Some(name)
        );
        let unread = || -> Option<Vec<u8>> { panic!("the dump was read") };
        assert_eq!(
            of_another_by_either_mark(file, Some(name), unread).as_deref(),
            Some(name)
        );
        let plain = || Some(b"PRAGMA defer_foreign_keys=TRUE;\n".to_vec());
        assert_eq!(of_another_by_either_mark(file, None, plain), None);
        assert_eq!(of_another_by_either_mark(file, None, || None), None);
    }
}
