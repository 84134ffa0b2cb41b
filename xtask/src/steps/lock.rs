//! Holding the backup directory's lock: every command that writes or
//! deletes in it takes it first, here, so a stale lock is reported and its
//! holder's unfinished files are removed the same way for each.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::lock::BackupLock;

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
    let since = stale
        .as_ref()
        .and_then(|s| s.holder.as_ref())
        .and_then(|h| chrono::DateTime::parse_from_rfc3339(&h.started_at).ok());
    if let Some(since) = since {
        for orphan in unrecorded_backups(&project.backup_dir, since.into())? {
            crate::warn!(
                "removing {}: the run that wrote it was killed before its manifest (it was never \
                 recorded nor verified)",
                orphan.display()
            );
            remove(&orphan)?;
        }
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

/// Backup files with no manifest beside them that the run that died wrote:
/// its backup was renamed into place, then killed before the manifest.
/// Only a name a backup run gives (`backup-<env>-YYYYMMDD-HHMM[-N]`), timed
/// from about when that run took the lock (`since`; a run names its backup
/// just before, so from the minute before) to a day after, and a file
/// changed since then: a hand dump copied in meanwhile
/// (`backup-local-handmade.sql`, or one named as a backup of another
/// time) is the operator's, never removed.
fn unrecorded_backups(dir: &Path, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<PathBuf>> {
    use chrono::Timelike as _;
    let from = since - chrono::Duration::seconds(i64::from(since.second()) + 60);
    let to = since + chrono::Duration::days(1);
    let written_by_it = |name: &str| {
        d1_core::manifest::stamp_in_backup_name(name)
            .and_then(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d-%H%M").ok())
            .is_some_and(|at| (from..=to).contains(&at.and_utc()))
    };
    let changed_since = std::time::SystemTime::from(from);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = dir.join(&name);
        let meta = entry.metadata()?;
        if written_by_it(&name)
            && meta.file_type().is_file()
            && meta.modified().is_ok_and(|m| m >= changed_since)
            && !d1_core::manifest::manifest_path(&path).exists()
        {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
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
