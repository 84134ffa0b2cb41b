//! `cargo xtask keygen --out FILE`: a new age identity, written privately,
//! and the recipient to put in `backups.toml`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use crate::config::project::Project;
use crate::edge::fsutil;

#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the identity file; it must not exist yet. Keep it out
    /// of the repository and off the machines that only take backups.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `cargo xtask keygen --out FILE`.
pub fn run(project: &Project, args: &KeygenArgs) -> Result<()> {
    let (identity, recipient) = project.age().keygen()?;
    let mut file = fsutil::create_private_file(&args.out)?;
    file.write_all(identity.as_bytes())?;
    file.sync_all()?;
    crate::data!(
        "Wrote the identity {} (mode 600). Its recipient, which is public:\n  {recipient}\n\
         Encrypt an environment's backups to it in backups.toml:\n  \
         [prod.encryption]\n  recipients = [\"{recipient}\"]\n\
         Keep the identity file offline or in a secret store: without it no encrypted backup \
         can be restored.",
        args.out.display()
    );
    Ok(())
}
