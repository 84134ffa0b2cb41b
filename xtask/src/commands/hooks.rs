//! `cargo xtask hooks install`: point git at the tracked hooks in
//! `scripts/git-hooks/`: pre-commit refuses a commit that adds a backup,
//! or made while git holds an age identity or a PEM private key;
//! pre-push warns when the pushed commits add a migration, and names the
//! command that applies it with a backup first.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::config::project::Project;
use crate::edge::git::{HOOKS_DIR, HooksProblem};
use crate::edge::{fsutil, git};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum HooksCommand {
    /// Set core.hooksPath to scripts/git-hooks.
    Install {
        /// Replace the hooks the repository already runs (another
        /// core.hooksPath, such as husky's, or hooks in .git/hooks): they
        /// stop running.
        #[arg(long)]
        replace: bool,
    },
}

pub fn run(sh: &Shell, project: &Project, command: &HooksCommand) -> Result<()> {
    match command {
        HooksCommand::Install { replace } => install(sh, project, *replace),
    }
}

fn install(sh: &Shell, project: &Project, replace: bool) -> Result<()> {
    let top = git::work_tree(sh, &project.config_dir)?.with_context(|| {
        format!(
            "{} is not inside a git repository",
            project.config_dir.display()
        )
    })?;
    let hooks = tracked_hooks(&top)?;
    // Setting core.hooksPath turns off every hook git runs now: another
    // hooks path (husky's `.husky`), or the hooks in `.git/hooks`. That is
    // never done without a word.
    let same = |dir: &std::path::Path| git::is_ours(&top, dir);
    if let Some((dir, whence)) = git::hooks_dir(sh, &top)
        && !same(&dir)
        && !replace
    {
        let running = git::hooks_in(&dir);
        if !running.is_empty() {
            crate::stop!(
                crate::exit::Exit::Refused,
                "git runs other hooks in this repository ({} in {}, from {whence}), which setting \
                 core.hooksPath to {HOOKS_DIR} here would turn off. Either call these from \
                 them (add `{HOOKS_DIR}/pre-commit \"$@\"` to that pre-commit hook and \
                 `{HOOKS_DIR}/pre-push \"$@\"` to that pre-push hook), or run `cargo xtask hooks \
                 install --replace` to run only these here. Nothing was changed.",
                d1_core::wording::listed(
                    &running
                        .iter()
                        .map(|h| d1_core::names::shown(h))
                        .collect::<Vec<_>>(),
                    "hooks"
                ),
                d1_core::names::shown(&dir.to_string_lossy())
            );
        }
    }
    // Only once nothing is refused: a refusal changes nothing, a hook's
    // mode included.
    for hook in &hooks {
        make_executable(hook)?;
    }
    git::set_hooks_path(sh, &top)?;
    // Read back as git reads it: a setting git reads first (a worktree's
    // own config) would leave ours set and never run.
    let runs = match git::hooks_dir(sh, &top) {
        Some((dir, _)) if same(&dir) => None,
        Some((dir, whence)) => Some(format!(
            "runs hooks from {} ({whence})",
            d1_core::names::shown(&dir.to_string_lossy())
        )),
        // An empty core.hooksPath git reads first: no hook runs at all.
        None => Some("runs no hooks (core.hooksPath is set empty)".to_owned()),
    };
    if let Some(runs) = runs {
        anyhow::bail!(
            "set core.hooksPath = {HOOKS_DIR} in this repository, but git still {runs}, by a \
             setting it reads first: unset that one (`git config --worktree --unset \
             core.hooksPath` for a worktree's), then run this again"
        );
    }
    crate::say!(
        "Installed: core.hooksPath = {HOOKS_DIR}. A commit that adds a backup (by name, by the D1 \
         export header, or a SQLite database file), or made while git holds a secret key (an age \
         identity, a PEM private key), is now refused, and a push that adds a migration is \
         warned to apply it with `cargo xtask migrate ENV`."
    );
    Ok(())
}

/// The tracked hooks, each as the file it is: refused (before anything is
/// changed) when one is missing, or when a symbolic link leads it out of
/// the checkout, where the `chmod` below and git's hooks would reach a
/// file of no commit (an identity made readable by everyone, a hook
/// someone else writes).
fn tracked_hooks(top: &Path) -> Result<Vec<PathBuf>> {
    match git::tracked_hooks(top)? {
        Ok(files) => {
            files.iter().try_for_each(|hook| only_name(hook))?;
            Ok(files)
        }
        Err(problem) => {
            let (exit, also) = match problem {
                HooksProblem::Missing(_) => (crate::exit::Exit::CouldNotRun, ""),
                HooksProblem::LeadsOut { .. } => (
                    crate::exit::Exit::Refused,
                    ", and installing would make it executable",
                ),
            };
            crate::stop!(
                exit,
                "{}{also}; {}. Nothing was changed.",
                problem.what(),
                problem.fix()
            )
        }
    }
}

/// Refuses (exit 3) a tracked hook that is a hard link, a file with a
/// name elsewhere too, perhaps outside the checkout: the `chmod` would
/// reach it there, as it would through a symbolic link (rvCL 3). Checked
/// as every file the tool writes or chmods is
/// ([`fsutil::refuse_other_names`]).
fn only_name(hook: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let names = std::fs::metadata(hook)?.nlink();
    fsutil::refuse_other_names(hook, names, "the tracked hook ", || {
        format!(
            "Give it a file of its own (`rm {0}`, then `git checkout -- {0}`) and run this \
             again. Nothing was changed.",
            d1_core::wording::shell_word(&hook.display().to_string())
        )
    })
    .map_err(|e| crate::exit::Exit::Refused.error(e))
}

/// Makes a hook executable by those who can read it, and no one else: a
/// hook checked out private stays private. Through the file opened (never
/// a symbolic link, a hard link refused again: [`fsutil::open_no_follow`]),
/// so that nothing put in its name since it was checked is changed.
fn make_executable(hook: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let what = "the tracked hook";
    let file = fsutil::open_no_follow(std::fs::OpenOptions::new().read(true), hook, what)
        .map_err(|e| crate::exit::Exit::Refused.error(e))?;
    let mut perms = file.metadata()?.permissions();
    let mode = perms.mode();
    if mode & 0o111 == 0 {
        perms.set_mode(mode | 0o100 | ((mode & 0o444) >> 2));
        file.set_permissions(perms)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// No file git tracks here holds what the pre-commit hook takes for an
    /// age identity (its `identity` and `plugin` patterns): a test's is
    /// built from halves (`concat!("AGE-SECRET-KEY-1", "…")`), so that the
    /// hook, which warns of a tracked one on every commit and refuses a
    /// line that adds one, is quiet on this repository's own commits.
    #[test]
    fn no_tracked_file_holds_an_identity_whole() {
        let hook = include_str!("../../../scripts/git-hooks/pre-commit");
        let pattern = |name: &str| {
            let start = format!("\n{name}='");
            let (_, rest) = hook.split_once(&start).expect("the hook's pattern");
            rest.split_once("'\n").expect("its end").0.to_owned()
        };
        let either = format!("{}|{}", pattern("identity"), pattern("plugin"));
        let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let found = std::process::Command::new("git")
            .args(["grep", "-l", "-i", "-E", &either])
            .current_dir(top)
            .output()
            .unwrap();
        let files = String::from_utf8_lossy(&found.stdout);
        let said = String::from_utf8_lossy(&found.stderr);
        assert!(
            found.status.code() == Some(1) && files.is_empty(),
            "{files}{said}"
        );
    }

    /// The pre-commit hook's program that tells a PEM private key (`awk`,
    /// in the shell script) says what `deploy`'s rule says
    /// ([`d1_core::dump::private_key_at`]) of every text here: keys of
    /// each kind and shape, and texts that only show the markers.
    #[test]
    fn the_pre_commit_hook_tells_a_private_key_as_deploy_does() {
        use d1_core::dump::{Held, secret_in};
        let hook = include_str!("../../../scripts/git-hooks/pre-commit");
        let program = { hook.split_once("\npem_key='") }
            .and_then(|(_, rest)| rest.split_once("\n'\n"))
            .map(|(program, _)| program)
            .expect("the hook's pem_key program");
        // Built from halves, so that no key stands in this file.
        let begin = |label: &str| ["-----BEGIN ", label, "-----"].concat();
        let b64 = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        let mut texts = Vec::new();
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
            "PUBLIC KEY",
            "CERTIFICATE",
            "private key",
            "A VERY LONG LABEL THAT NAMES A PRIVATE KEY AT LAST",
        ] {
            for body in [
                format!("\n{b64}\n"),
                format!("\r\n\r\n{b64}\r\n"),
                format!("\\n{b64}\\n"),
                format!("\\\\n{b64}"),
                format!(" {b64}"),
                "\nProc-Type: 4,ENCRYPTED\nDEK-Info: x\n".to_owned(),
                "\nVersion: GnuPG v2\n\nlQOYBF\n".to_owned(),
                "\n...\n".to_owned(),
                " <your key here>\n".to_owned(),
                "\nMIIEvQ...\n".to_owned(),
                "\n\n\n".to_owned(),
                format!("\n\n{}\n{b64}\n", begin("PUBLIC KEY")),
            ] {
                texts.push(format!("{}{body}", begin(label)));
                texts.push(format!("x = \"-{}{body}\"\n", begin(label)));
            }
        }
        let mut told = [0, 0];
        let mut differ = Vec::new();
        for text in &texts {
            let deploy = secret_in(text.as_bytes(), text.len()) == Some(Held::PrivateKey);
            let mut awk = std::process::Command::new("awk")
                .arg(program)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            awk.stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let hook = awk.wait().unwrap().success();
            told[usize::from(deploy)] += 1;
            if hook != deploy {
                differ.push(format!("{text:?}: deploy {deploy}, hook {hook}"));
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
        assert!(told[0] > 20 && told[1] > 20, "{told:?}");
    }
}
