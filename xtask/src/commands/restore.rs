//! `cargo xtask restore <backup|latest[:env]> --to <env|new:NAME>`: load a
//! backup into a database, with every guard checked before anything runs
//! (the plan, the guards and their order are in `steps::restore`).

use anyhow::Result;
use xshell::Shell;

use crate::config::project::Project;
use crate::steps::restore::{self, RestoreArgs};

pub fn run(sh: &Shell, project: &Project, args: &RestoreArgs) -> Result<()> {
    restore::run(sh, project, args).map(|_| ())
}
