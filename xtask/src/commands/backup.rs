//! `cargo xtask backup <env>`: a backup of each of the environment's D1
//! databases, one file and manifest each (see `steps::backup` for the
//! order of work, which is the safety argument).

use std::path::PathBuf;

use anyhow::Result;
use xshell::Shell;

use crate::config::project::Project;
use crate::steps::backup::{BackupArgs, run};

/// `cargo xtask backup ENV`: a backup of each of the environment's D1
/// databases (most have one; `--database` picks one), one file and
/// manifest each. The first failure stops the rest; the backups already
/// taken stay.
pub fn run_each(sh: &Shell, project: &Project, args: &BackupArgs) -> Result<Vec<PathBuf>> {
    let envs = project.environments()?;
    let databases = envs.databases(&args.env)?;
    // A missing migrations directory does not stop a backup: it is taken,
    // its migrations unchecked and said so (`steps::backup`, MB).
    let names: Vec<String> = databases.iter().map(|e| e.name.clone()).collect();
    if names.len() > 1 && args.json {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "`{}` has {} D1 databases and --json prints one document: pass --database \
             BINDING|NAME, or run once per database ({}). Nothing was run.",
            args.env,
            names.len(),
            names.join(", ")
        );
    }
    if names.len() > 1 {
        crate::say!(
            "`{}` has {} D1 databases; each gets its own backup: {}",
            args.env,
            names.len(),
            names.join(", ")
        );
    }
    let mut files = Vec::new();
    for name in names {
        let one = BackupArgs {
            env: name,
            ..args.clone()
        };
        files.extend(run(sh, project, &one)?);
    }
    Ok(files)
}
