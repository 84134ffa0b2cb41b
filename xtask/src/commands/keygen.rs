//! `cargo xtask keygen --out FILE`: a new age identity, written privately,
//! and the recipient to put in `backups.toml`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::git::{Ignored, check_ignored};
use crate::exit::Exit;

#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the identity file; it must not exist yet. Keep it out
    /// of the repository and off the machines that only take backups.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Why `out` (absolute), wherever links lead it, is no place for an
/// identity although git ignores it: under `pages_build_output_dir`, which
/// `deploy` publishes on a public site, or in the backup directory, beside
/// the backups it opens (a shared or copied backup directory hands it over
/// with them).
fn published_or_beside_backups(project: &Project, out: &Path) -> Option<String> {
    let real = fsutil::real_path_to_be(out)?;
    let backups = fsutil::real_path_to_be(&project.backup_dir);
    if backups.is_some_and(|b| real.starts_with(b)) {
        return Some(format!(
            "it is in the backup directory {}, beside the backups it opens: whoever has a copy of \
             that directory would have the key to every encrypted backup in it",
            project.backup_dir.display()
        ));
    }
    let envs = project.environments().ok()?;
    let built = envs.pages_output_dir().ok()??;
    let published = fsutil::real_path_to_be(&project.config_dir.join(built))?;
    real.starts_with(&published).then(|| {
        format!(
            "it is under pages_build_output_dir ({built}), which `cargo xtask deploy` publishes \
             on a public site, every file in it"
        )
    })
}

/// `cargo xtask keygen --out FILE`. A path that git would take (inside a
/// work tree and not ignored) is refused: the identity decrypts every
/// backup, and one `git add .` would commit it.
pub fn run(sh: &Shell, project: &Project, args: &KeygenArgs) -> Result<()> {
    let out = std::path::absolute(&args.out)
        .with_context(|| format!("cannot resolve {}", args.out.display()))?;
    if let Some(why) = published_or_beside_backups(project, &out) {
        crate::stop!(
            Exit::Refused,
            "refusing to write the age identity to {}: {why}. Write it outside the repository \
             (say ~/secure/qbtime-backups.agekey) or in a secret store. Nothing was written.",
            args.out.display()
        );
    }
    if check_ignored(sh, &out)? == Ignored::No {
        crate::stop!(
            Exit::Refused,
            "refusing to write the age identity to {}: it is inside a git work tree and not \
             ignored, so `git add` would commit the one key that decrypts every backup. Write it \
             outside the repository (say ~/secure/qbtime-backups.agekey) or in a secret store. \
             Nothing was written.",
            args.out.display()
        );
    }
    if !out.parent().is_some_and(Path::is_dir) {
        crate::stop!(
            Exit::CouldNotRun,
            "the directory of {} does not exist; create it (mode 700) first. Nothing was written.",
            args.out.display()
        );
    }
    if std::fs::symlink_metadata(&out).is_ok() {
        crate::stop!(
            Exit::Refused,
            "{} exists; keygen never writes over a file (an identity there may be the only key to \
             older backups). Choose a new path. Nothing was written.",
            args.out.display()
        );
    }
    let (identity, recipient) = project.age().keygen()?;
    write_identity(&out, &identity)?;
    // The recipient is the output asked for (alone under -q, so that
    // `R=$(cargo xtask -q keygen --out FILE)` takes it); the rest is advice.
    crate::say!(
        "Wrote the identity {} (mode 600). Its recipient, which is public:",
        args.out.display()
    );
    crate::data!("{recipient}");
    crate::say!(
        "Encrypt an environment's backups to it in backups.toml:\n  \
         [prod.encryption]\n  recipients = [\"{recipient}\"]\n\
         Keep the identity file offline or in a secret store: without it no encrypted backup \
         can be restored."
    );
    Ok(())
}

/// Writes `identity` to `out`, which must not exist: `out` itself is
/// created (never over a file, never through a link) with mode 600 from its
/// creation, written, and synced with its directory. A write that fails (a
/// full disk, an I/O error) removes it, this run's own new file, so that no
/// partial identity is left for the rerun to refuse as possibly the only
/// key to older backups. No other name is ever created beside it: a kill
/// mid-write (SIGKILL, a power cut) can leave a partial identity only at
/// `out`, a path already checked to be ignored by git and out of the
/// published build and the backup directory.
fn write_identity(out: &Path, identity: &str) -> Result<()> {
    let shown = out.display();
    let mut file = match fsutil::create_private_file(out) {
        Ok(file) => file,
        Err(e) if io_kind(&e) == Some(std::io::ErrorKind::AlreadyExists) => crate::stop!(
            Exit::Refused,
            "{shown} appeared while keygen ran and was left as it is; keygen never writes over a \
             file (an identity there may be the only key to older backups). Choose a new path. \
             Nothing was written."
        ),
        Err(e) => anyhow::bail!(
            "cannot create the age identity {shown}: {e:#}. Fix that and run keygen again. \
             Nothing was written."
        ),
    };
    if let Err(e) = file
        .write_all(identity.as_bytes())
        .and_then(|()| file.sync_all())
    {
        drop(file);
        let left = match std::fs::remove_file(out) {
            Ok(()) => "Nothing was left at that path.".to_owned(),
            Err(gone) => format!(
                "The partial identity left there could not be removed ({gone}): delete it \
                 (`rm {}`) before you run keygen again.",
                d1_core::wording::shell_word(&shown.to_string())
            ),
        };
        anyhow::bail!(
            "cannot write the age identity to {shown}: {e}. Fix that (a full disk: free space on \
             it) and run keygen again. {left}"
        );
    }
    // Its directory entry too: a crash must not lose the only key to the
    // backups that will be encrypted to its recipient.
    fsutil::sync_dir(out.parent().expect("checked to be a directory"));
    Ok(())
}

/// The kind of the I/O error behind `e`, if one is.
fn io_kind(e: &anyhow::Error) -> Option<std::io::ErrorKind> {
    e.chain()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that appears at `--out` after keygen looked is refused and
    /// left as it is, and the message says so, not that nothing was left
    /// at that path.
    #[test]
    fn an_out_that_appeared_meanwhile_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("prod.agekey");
        std::fs::write(&out, "older key").unwrap();
        let err = write_identity(&out, "AGE-SECRET-KEY-1NEW").unwrap_err();
        let message = format!("{err:#}");
        assert_eq!(Exit::of(&err), Some(Exit::Refused), "{message}");
        assert!(message.contains("appeared while keygen ran"), "{message}");
        assert!(message.contains("left as it is"), "{message}");
        assert!(!message.contains("Nothing was left"), "{message}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "older key");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
