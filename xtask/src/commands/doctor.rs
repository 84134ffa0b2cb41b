//! `cargo xtask doctor`: whether everything a backup needs is in place
//! (the checks are `steps::doctor`'s, which `deploy` runs first).

use anyhow::Result;
use xshell::Shell;

use crate::config::project::Project;
use crate::steps::doctor::{self, DoctorArgs};

pub fn run(sh: &Shell, project: &Project, args: &DoctorArgs) -> Result<bool> {
    doctor::run(sh, project, args)
}
