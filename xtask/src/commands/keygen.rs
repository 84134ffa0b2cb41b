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
    write_identity(&out, &identity).with_context(|| {
        format!(
            "cannot write the age identity to {}; free space on its disk (or fix the error) and \
             run keygen again. Nothing was left at that path",
            args.out.display()
        )
    })?;
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

/// Writes `identity` to `out`, which must not exist, whole or not at all:
/// into a private temporary file beside it (mode 600 from its creation),
/// synced, then linked to `out` without writing over anything there. A
/// write that fails part-way (a full disk, an I/O error) removes the
/// temporary file, so no partial identity is left for the rerun to refuse
/// as possibly the only key to older backups.
fn write_identity(out: &Path, identity: &str) -> Result<()> {
    let dir = out.parent().expect("checked to be a directory");
    let hidden = format!(
        ".{}.{}.partial",
        d1_core::names::file_name(out),
        std::process::id()
    );
    let (temp, mut file) = fsutil::TempFile::create_open(dir.join(hidden))?;
    file.write_all(identity.as_bytes())?;
    file.sync_all()?;
    drop(file);
    // A link never replaces a name that exists; the temporary name goes
    // when `temp` is dropped.
    std::fs::hard_link(temp.path(), out).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} appeared meanwhile and was left as it is", out.display())
        } else {
            format!("cannot link it to {}: {e}", out.display())
        };
        anyhow::anyhow!(why)
    })?;
    drop(temp);
    // Its directory entry too: a crash must not lose the only key to the
    // backups that will be encrypted to its recipient.
    fsutil::sync_dir(dir);
    Ok(())
}
