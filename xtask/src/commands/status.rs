//! `cargo xtask status [--env E] [--json]`: how fresh each environment's
//! backups, drills, Time Travel and offsite locks are (the report is
//! `steps::status`'s, which `deploy` prints at its end).

use anyhow::Result;

use crate::config::project::Project;
use crate::steps::status::{self, StatusArgs};

pub fn run(project: &Project, args: &StatusArgs) -> Result<bool> {
    status::run(project, args)
}
