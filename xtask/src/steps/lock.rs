//! Holding the backup directory's lock: every command that writes or
//! deletes in it takes it first, here, so a stale lock is reported and its
//! holder's unfinished files are removed the same way for each.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::lock::{BackupLock, Holder};

/// Takes the backup directory's lock (creating the directory, private),
/// reporting a stale lock, and removing the unfinished files that runs now
/// gone left there: a killed backup's, a killed verify's (which takes no
/// lock), and a backup file its killed run never wrote a manifest for.
/// A file of a run still alive is left alone.
pub fn acquire_lock(project: &Project, command: &str) -> Result<BackupLock> {
    fsutil::create_private_dir(&project.backup_dir)?;
    let (lock, stale) = BackupLock::acquire(&project.backup_dir, command)?;
    if let Some(stale) = &stale {
        crate::warn!("{stale}");
    }
    for leftover in leftover_partials(&project.backup_dir)? {
        crate::warn!(
            "removing its unfinished file {}: the run that left it is gone",
            leftover.display()
        );
        remove(&leftover)?;
    }
    let dead = stale.as_ref().and_then(|s| s.holder.as_ref());
    if let Some(orphan) = dead.and_then(|h| unrecorded_backup(&project.backup_dir, h)) {
        crate::warn!(
            "removing {}: the run that wrote it was killed before its manifest (it was never \
             recorded nor verified)",
            orphan.display()
        );
        remove(&orphan)?;
    }
    Ok(lock)
}

/// Removes a leftover: a download's own directory whole; a link, not what
/// it leads to.
fn remove(leftover: &Path) -> Result<()> {
    let directory = std::fs::symlink_metadata(leftover).is_ok_and(|m| m.is_dir());
    if directory {
        std::fs::remove_dir_all(leftover)
    } else {
        std::fs::remove_file(leftover)
    }
    .with_context(|| format!("cannot remove {}", leftover.display()))
}

/// Unfinished files (`.….partial`) whose run is gone: each name carries
/// its run's pid (`.verify-<pid>-…`, or `.<name>.<pid>.….partial`). One
/// whose pid names a live process is another run's, still working.
fn leftover_partials(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            && name.ends_with(".partial")
            && !owner(&name).is_some_and(is_alive)
        {
            found.push(dir.join(name));
        }
    }
    found.sort();
    Ok(found)
}

/// The pid in an unfinished file's name.
fn owner(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix(".verify-") {
        return rest.split('-').next()?.parse().ok();
    }
    name.split('.')
        .find(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

/// Whether a process with this pid exists (this one included).
fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The backup file a dead run named and was killed before recording: the
/// name it wrote into the lock just before the rename (`placing`), if that
/// file is still there without a manifest. The lock is a file in the backup
/// directory, which anyone may have written, so the name is also held to
/// what such a run leaves: a plain backup name (`backup-<env>-YYYYMMDD-HHMM
/// [-N]`) stamped from about when that run took the lock (a run names its
/// backup just before, so from the minute before) to a day after, a regular
/// file, changed since then. Any other file without a manifest (a hand dump
/// copied in, whatever its name) is the operator's, never removed.
fn unrecorded_backup(dir: &Path, dead: &Holder) -> Option<PathBuf> {
    use chrono::Timelike as _;
    let name = dead.placing.as_deref()?;
    let since: chrono::DateTime<chrono::Utc> =
        chrono::DateTime::parse_from_rfc3339(&dead.started_at)
            .ok()?
            .into();
    let from = since - chrono::Duration::seconds(i64::from(since.second()) + 60);
    let to = since + chrono::Duration::days(1);
    let stamped = d1_core::manifest::stamp_in_backup_name(name)
        .and_then(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d-%H%M").ok())
        .is_some_and(|at| (from..=to).contains(&at.and_utc()));
    let plain = d1_core::names::is_plain_file_name(name);
    let path = dir.join(name);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    let left = meta.file_type().is_file()
        && meta
            .modified()
            .is_ok_and(|m| m >= std::time::SystemTime::from(from))
        && !d1_core::manifest::manifest_path(&path).exists();
    (stamped && plain && left).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unfinished file the tool writes names its run's pid, and only
    /// that number is read as one (not a backup name's date).
    #[test]
    fn an_unfinished_files_run_is_read_from_its_name() {
        for (name, pid) in [
            (".backup-prod-20261201-1106.7754.sql.partial", Some(7754)),
            (
                ".backup-prod-20261201-1106.manifest.json.7754.partial",
                Some(7754),
            ),
            (
                ".verify-7754-backup-prod-20261201-1106.sql.sqlite.partial",
                Some(7754),
            ),
            (".verify-7754-arriving.sqlite.partial", Some(7754)),
            (".manifest.7754.download.partial", Some(7754)),
            ("..lock.7754.partial", Some(7754)),
            (".hand-made.partial", None),
        ] {
            assert_eq!(owner(name), pid, "{name}");
        }
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX));
    }
}
