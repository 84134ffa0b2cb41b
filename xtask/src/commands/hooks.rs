//! `cargo xtask hooks install`: point git at the tracked hooks in
//! `scripts/git-hooks/`: pre-commit refuses a commit that adds a backup;
//! pre-push warns when the pushed commits add a migration, and names the
//! command that applies it with a backup first.

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::config::project::Project;
use crate::edge::git;
use crate::edge::git::{HOOKS, HOOKS_DIR};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum HooksCommand {
    /// Set core.hooksPath to scripts/git-hooks.
    Install,
}

pub fn run(sh: &Shell, project: &Project, command: &HooksCommand) -> Result<()> {
    match command {
        HooksCommand::Install => install(sh, project),
    }
}

fn install(sh: &Shell, project: &Project) -> Result<()> {
    let top = git::work_tree(sh, &project.config_dir)?.with_context(|| {
        format!(
            "{} is not inside a git repository",
            project.config_dir.display()
        )
    })?;
    for name in HOOKS {
        let hook = top.join(HOOKS_DIR).join(name);
        if !hook.is_file() {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "{} is missing; restore it with `git checkout -- {HOOKS_DIR}`",
                hook.display()
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mut perms = std::fs::metadata(&hook)?.permissions();
            if perms.mode() & 0o111 == 0 {
                perms.set_mode(perms.mode() | 0o755);
                std::fs::set_permissions(&hook, perms)?;
            }
        }
    }
    cmd!(sh, "git -C {top} config core.hooksPath {HOOKS_DIR}")
        .quiet()
        .run()
        .context("cannot set core.hooksPath")?;
    crate::say!(
        "Installed: core.hooksPath = {HOOKS_DIR}. A commit that adds a backup (by name, by the D1 \
         export header, or a SQLite database file) is now refused, and a push that adds a \
         migration is warned to apply it with `cargo xtask migrate ENV`."
    );
    Ok(())
}
