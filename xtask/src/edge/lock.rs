//! One backup at a time per backup directory.
//!
//! The lock is an OS file lock (`flock`) on `<backup dir>/.lock`, so it is
//! released by the kernel when its holder dies, however it dies. The file
//! also says who holds it; it is emptied on a clean release. Finding the file
//! unlocked but not empty therefore means its last holder died mid-run: that
//! stale lock is reported, with the temporary files it left behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const LOCK_FILE: &str = ".lock";

/// Who holds (or held) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub started_at: String,
    pub command: String,
    /// What the holder was doing that outlives it, if it dies in the middle
    /// (a load D1 finishes on its own), and the way back: what the next run
    /// tells the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doing: Option<String>,
    /// The backup file the holder is about to give its final name, before
    /// its manifest is written: a run killed between the two leaves that
    /// file unrecorded, and the next run removes that file, and only it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placing: Option<String>,
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct BackupLock {
    file: File,
    holder: Holder,
}

/// What a previous holder that died left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleLock {
    /// `None` when the file held something other than our JSON.
    pub holder: Option<Holder>,
}

impl BackupLock {
    /// Takes the lock or refuses at once, naming the holder.
    pub fn acquire(dir: &Path, command: &str) -> Result<(BackupLock, Option<StaleLock>)> {
        let path = dir.join(LOCK_FILE);
        // Another run may put a new lock file in place (below) between this
        // run's open and its lock: the lock then taken is on a file no name
        // leads to, and the open is made again.
        for _ in 0..16 {
            let file = Self::open(&path)?;
            if let Some(taken) = Self::take(file, dir, &path, command)? {
                return Ok(taken);
            }
        }
        bail!(
            "the backup lock {} was replaced again and again while this run took it; run the \
             command again",
            path.display()
        )
    }

    fn open(path: &Path) -> Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        std::os::unix::fs::OpenOptionsExt::mode(
            &mut options,
            crate::edge::fsutil::PRIVATE_FILE_MODE,
        );
        crate::edge::fsutil::open_no_follow_shared(&mut options, path, "the backup lock")
    }

    /// Locks the open lock file and writes the holder into it; `None` when
    /// the file turned out not to be (or no longer to be) `path`'s own.
    fn take(
        mut file: File,
        dir: &Path,
        path: &Path,
        command: &str,
    ) -> Result<Option<(BackupLock, Option<StaleLock>)>> {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                let who = match holder {
                    Some(h) => format!(
                        "pid {} running `{}` since {}",
                        h.pid, h.command, h.started_at
                    ),
                    None => "another process".to_owned(),
                };
                crate::stop!(
                    crate::exit::Exit::LockHeld,
                    "another backup or restore is running in {} ({who}); \
                     wait for it to finish, then run this again (lock: {})",
                    dir.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        if !crate::edge::fsutil::is_at(&file, path) {
            return Ok(None);
        }
        let previous = read_small(&mut file);
        if crate::edge::fsutil::link_count(&file, path)? > 1 {
            // Another name shares this file (a hard-link snapshot of the
            // backup directory): writing the holder would write there too.
            // While this lock is held, a file of its own, saying what this
            // one said, takes its place, and that one is taken.
            crate::edge::fsutil::replace_file(path, previous.as_bytes())?;
            return Ok(None);
        }
        let stale = (!previous.trim().is_empty()).then(|| StaleLock {
            holder: serde_json::from_str(&previous).ok(),
        });
        let holder = Holder {
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command: command.to_owned(),
            doing: None,
            placing: None,
        };
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(serde_json::to_string(&holder)?.as_bytes())?;
        file.sync_all()?;
        Ok(Some((BackupLock { file, holder }, stale)))
    }

    /// Writes into the lock what this run is about to do that a kill would
    /// leave half-told (a load into a database), so that the next run,
    /// finding the lock stale, says it. The new text is written over the old
    /// before the file is cut to its length: a crash in between leaves a
    /// file that is still not empty, so still reported stale.
    pub fn record(&self, doing: &str) -> Result<()> {
        self.write(&Holder {
            doing: Some(doing.to_owned()),
            ..self.holder.clone()
        })
    }

    /// Writes into the lock the name a backup file is about to be given
    /// (`None` once its manifest is written), so that the next run, finding
    /// the lock stale, removes that file if it was left without one.
    pub fn placing(&self, file_name: Option<&str>) -> Result<()> {
        self.write(&Holder {
            placing: file_name.map(str::to_owned),
            ..self.holder.clone()
        })
    }

    fn write(&self, holder: &Holder) -> Result<()> {
        let text = serde_json::to_string(holder)?;
        std::os::unix::fs::FileExt::write_all_at(&self.file, text.as_bytes(), 0)?;
        self.file.set_len(text.len() as u64)?;
        self.file.sync_all()?;
        Ok(())
    }
}

impl Drop for BackupLock {
    fn drop(&mut self) {
        // Emptying the file marks a clean release; the kernel drops the lock
        // when the file is closed.
        let _ = self.file.set_len(0);
        let _ = self.file.sync_all();
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    file.seek(SeekFrom::Start(0)).ok()?;
    serde_json::from_str(&read_small(file)).ok()
}

/// The lock file's text, as much as a holder's line can be (4 KiB): a
/// file grown (or planted) larger is not a holder this tool wrote, and is
/// not read into memory whole.
fn read_small(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = Read::take(&mut *file, 4096).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

impl std::fmt::Display for StaleLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Some(h) => {
                write!(
                    f,
                    "pid {} (`{}`, started {}) held the backup lock and is gone without releasing \
                     it",
                    h.pid, h.command, h.started_at
                )?;
                match &h.doing {
                    Some(doing) => write!(f, "; when it stopped it was {doing}"),
                    None => Ok(()),
                }
            }
            None => {
                f.write_str("a previous run held the backup lock and is gone without releasing it")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let (first, stale) = BackupLock::acquire(dir.path(), "backup local").unwrap();
        assert_eq!(stale, None);
        let err = BackupLock::acquire(dir.path(), "backup prod")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("backup local"), "{err}");
        drop(first);
        // A process that another test spawns shares our open files between
        // its fork and its exec, and with them the lock, for a moment.
        let mut again = BackupLock::acquire(dir.path(), "backup prod");
        for _ in 0..50 {
            if again.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = BackupLock::acquire(dir.path(), "backup prod");
        }
        let (_again, stale) = again.unwrap();
        assert_eq!(stale, None, "a clean release leaves no stale lock");
    }

    #[test]
    fn a_lock_file_with_another_name_is_replaced_and_the_other_name_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("snapshot-of-lock");
        let said = r#"{"pid":999999,"started_at":"2026-11-23T10:00:00Z","command":"backup prod"}"#;
        std::fs::write(&snapshot, said).unwrap();
        std::fs::hard_link(&snapshot, dir.path().join(LOCK_FILE)).unwrap();
        let (lock, stale) = BackupLock::acquire(dir.path(), "backup local").unwrap();
        // What the shared file said is still read: a holder that died.
        assert_eq!(stale.unwrap().holder.unwrap().pid, 999_999);
        assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), said);
        let own = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(own.contains("backup local"), "{own}");
        drop(lock);
        assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), said);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "the lock and the other name only");
    }

    #[test]
    fn a_lock_file_left_by_a_dead_holder_is_reported_stale() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder {
            pid: 999_999,
            started_at: "2026-11-23T10:00:00Z".into(),
            command: "backup prod".into(),
            doing: None,
            placing: None,
        };
        std::fs::write(
            dir.path().join(LOCK_FILE),
            serde_json::to_string(&holder).unwrap(),
        )
        .unwrap();
        let (_lock, stale) = BackupLock::acquire(dir.path(), "backup local").unwrap();
        let stale = stale.expect("stale lock reported");
        assert_eq!(stale.holder, Some(holder));
        assert!(stale.to_string().contains("pid 999999"));
    }

    #[test]
    fn what_a_holder_recorded_is_told_by_the_next_run_and_a_clean_release_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, _) = BackupLock::acquire(dir.path(), "restore into staging").unwrap();
        lock.record("loading backup-prod-x.sql into qbtime_db_staging")
            .unwrap();
        // The holder dies: its file is left as it was, unlocked.
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        drop(lock);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            "",
            "a clean release empties the lock"
        );
        std::fs::write(dir.path().join(LOCK_FILE), &text).unwrap();
        let (_lock, stale) = BackupLock::acquire(dir.path(), "backup local").unwrap();
        let told = stale.expect("stale lock reported").to_string();
        assert!(
            told.contains("`restore into staging`")
                && told.ends_with(
                    "; when it stopped it was loading backup-prod-x.sql into qbtime_db_staging"
                ),
            "{told}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_file_that_is_a_symbolic_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(LOCK_FILE)).unwrap();
        let err = format!(
            "{:#}",
            BackupLock::acquire(dir.path(), "backup local").unwrap_err()
        );
        assert!(err.contains("the backup lock"), "{err}");
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
