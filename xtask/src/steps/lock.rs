//! Holding the backup directory's lock: every command that writes or
//! deletes in it takes it first, here, so a stale lock is reported and its
//! holder's unfinished files are removed the same way for each.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::lock::BackupLock;

/// Takes the backup directory's lock (creating the directory, private),
/// reporting a stale lock and removing the unfinished files its holder left.
pub fn acquire_lock(project: &Project, command: &str) -> Result<BackupLock> {
    fsutil::create_private_dir(&project.backup_dir)?;
    let (lock, stale) = BackupLock::acquire(&project.backup_dir, command)?;
    if let Some(stale) = stale {
        crate::warn!("{stale}");
        for leftover in leftover_partials(&project.backup_dir)? {
            crate::warn!("removing its unfinished file {}", leftover.display());
            // A download's own directory goes whole; a link, not what it
            // leads to.
            let directory = std::fs::symlink_metadata(&leftover).is_ok_and(|m| m.is_dir());
            if directory {
                std::fs::remove_dir_all(&leftover)
            } else {
                std::fs::remove_file(&leftover)
            }
            .with_context(|| format!("cannot remove {}", leftover.display()))?;
        }
    }
    Ok(lock)
}

/// Unfinished exports left by a run that died.
fn leftover_partials(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".partial") {
            found.push(dir.join(name));
        }
    }
    found.sort();
    Ok(found)
}
