//! The git questions a backup must answer before it writes anything: would
//! the file be ignored, and is any backup already tracked?

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// The tracked hooks directory, relative to the repository root.
pub const HOOKS_DIR: &str = "scripts/git-hooks";
/// The hooks in it.
pub const HOOKS: [&str; 2] = ["pre-commit", "pre-push"];

/// How git sees a path that is about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    Yes,
    No,
    /// The path is not inside a git work tree, so it cannot be committed.
    NotInRepository,
}

/// The git work tree that contains `dir` (or its nearest existing
/// ancestor); `None` when it is in none. A directory with a `.git` above it
/// is a checkout whatever git says: when git cannot be run (not on PATH),
/// or will not answer for it (a checkout owned by another user, "dubious
/// ownership"), that is an error, for the guards that keep backups out of
/// git must not take "git could not say" for "no repository". git is asked
/// about `dir` itself, whatever `GIT_DIR` or `GIT_WORK_TREE` say.
pub fn work_tree(sh: &Shell, dir: &Path) -> Result<Option<PathBuf>> {
    use std::os::unix::ffi::OsStrExt as _;
    let Some(existing) = dir.ancestors().find(|p| p.is_dir()) else {
        return Ok(None);
    };
    // git's refusal (exit 128: "not a git repository", "dubious
    // ownership") is its answer, read below; only a git that cannot be
    // started is an `Err`.
    let output = git(sh, existing, ["rev-parse", "--show-toplevel"])
        .ignore_status()
        .output();
    let why = match output {
        Ok(output) if output.status.success() => {
            // The path as git prints it, bytes and all (a checkout's path
            // need not be UTF-8).
            let mut top = output.stdout;
            while top.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                top.pop();
            }
            return Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(&top))));
        }
        Ok(output) => String::from_utf8_lossy(&output.stderr)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("it failed")
            .trim()
            .to_owned(),
        Err(e) => format!("git cannot be run ({e}); install git or put it on PATH"),
    };
    let checkout = { existing.ancestors() }.find(|p| p.join(".git").symlink_metadata().is_ok());
    match checkout {
        None => Ok(None),
        Some(top) => {
            // A directory (or a link on its way) that leads out of the
            // checkout: git was asked where it leads. That is the cause,
            // and its fix, said first; git's answer follows.
            let why = d1_core::names::shown(&why);
            Err(crate::exit::Exit::CouldNotRun.error(
                match (existing.canonicalize(), top.canonicalize()) {
                    (Ok(real), Ok(top_real)) if !real.starts_with(&top_real) => anyhow::anyhow!(
                        "{} leads out of the checkout {}, to {}: to keep backups there, name \
                         it with --backup-dir or QBTIME_BACKUP_DIR instead of the link (git, \
                         asked there whether backups stay out of the checkout, says: {why}). \
                         Nothing was written",
                        d1_core::names::shown(&existing.display().to_string()),
                        top.display(),
                        d1_core::names::shown(&real.display().to_string())
                    ),
                    _ => anyhow::anyhow!(
                        "{} is a git checkout, but git does not say whether backups stay out \
                         of it: {why}. Nothing was written",
                        top.display()
                    ),
                },
            ))
        }
    }
}

/// `git -C dir ARGS`, with git's own `GIT_DIR` and `GIT_WORK_TREE` left
/// out: the questions are about the checkout `dir` is in. git looks for
/// that checkout across file systems (`GIT_DISCOVERY_ACROSS_FILESYSTEM`):
/// a backup directory on one of its own inside the checkout (a USB disk,
/// an NFS mount, a tmpfs), where git would stop at its edge and say "not
/// a git repository", is in the checkout all the same, and a `git add`
/// run from the checkout would take its files.
fn git<'a, A: AsRef<std::ffi::OsStr>>(
    sh: &'a Shell,
    dir: &Path,
    args: impl IntoIterator<Item = A>,
) -> xshell::Cmd<'a> {
    cmd!(sh, "git -C {dir}")
        .args(args)
        .quiet()
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_DISCOVERY_ACROSS_FILESYSTEM", "1")
}

/// Asks `git check-ignore` whether `path` would be ignored.
pub fn check_ignored(sh: &Shell, path: &Path) -> Result<Ignored> {
    let Some(parent) = path.parent() else {
        bail!("{} has no parent directory", path.display());
    };
    let Some(top) = work_tree(sh, parent)? else {
        return Ok(Ignored::NotInRepository);
    };
    let word = std::ffi::OsStr::new;
    let output = git(
        sh,
        &top,
        [
            word("check-ignore"),
            word("-q"),
            word("--"),
            path.as_os_str(),
        ],
    )
    .ignore_status()
    .output()
    .context("cannot run git check-ignore")?;
    match output.status.code() {
        Some(0) => Ok(Ignored::Yes),
        Some(1) => Ok(Ignored::No),
        _ => bail!(
            "git check-ignore failed for {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// Tracked files that are backups: anything tracked in the backup directory,
/// and anything anywhere named like a backup, outside `migrations/`.
pub fn tracked_backups(sh: &Shell, backup_dir: &Path) -> Result<Vec<String>> {
    let Some(top) = work_tree(sh, backup_dir)? else {
        return Ok(Vec::new());
    };
    let mut specs: Vec<String> = BACKUP_NAME_GLOBS
        .iter()
        .map(|g| format!(":(glob,icase){g}"))
        .collect();
    specs.push(backup_dir.display().to_string());
    let args = ["ls-files", "-z", "--full-name", "--"].map(str::to_owned);
    let out = git(sh, &top, args.into_iter().chain(specs))
        .read()
        .context("cannot run git ls-files")?;
    Ok(out
        .split('\0')
        .filter(|f| !f.is_empty() && !f.starts_with("migrations/"))
        .map(str::to_owned)
        .collect())
}

/// File names that are backups wherever they are: a dump, compressed or
/// encrypted as this tool stores it or by hand. The pre-commit hook
/// (`scripts/git-hooks/pre-commit`) refuses the same names.
pub const BACKUP_NAME_GLOBS: &[&str] = &[
    "**/backup-*.sql",
    "**/backup-*.sql.*",
    "**/*.sql.zst",
    "**/*.sql.age",
    "**/*.sql.zst.age",
    "**/*.sql.gz",
    "**/*.sql.bz2",
    "**/*.sql.xz",
    "**/*.sql.zip",
];

/// Whether a file called `name` is a backup or a backup's manifest by its
/// name: one of [`BACKUP_NAME_GLOBS`], or `backup-<env>-YYYYMMDD-HHMM[-N]`
/// with the manifest's suffix, as this tool names them; in any case (ASCII),
/// as a case-insensitive file system and a reader take it.
pub fn named_as_backup(name: &str) -> bool {
    use d1_core::manifest::{MANIFEST_SUFFIX, stamp_in_backup_name};
    let name = &name.to_ascii_lowercase();
    let manifest = name
        .strip_suffix(MANIFEST_SUFFIX)
        .is_some_and(|stem| stamp_in_backup_name(&format!("{stem}.sql")).is_some());
    manifest
        || BACKUP_NAME_GLOBS
            .iter()
            .any(|glob| matches_glob(glob.trim_start_matches("**/"), name))
}

/// Whether `name` matches `glob`, whose `*` stands for any run of
/// characters.
fn matches_glob(glob: &str, name: &str) -> bool {
    match glob.split_once('*') {
        None => glob == name,
        Some((head, rest)) => name.strip_prefix(head).is_some_and(|tail| {
            { tail.char_indices().map(|(i, _)| i) }
                .chain([tail.len()])
                .any(|i| matches_glob(rest, &tail[i..]))
        }),
    }
}

/// The commit the repository is at, with `-dirty` when it has changes.
pub fn describe_commit(sh: &Shell, dir: &Path) -> Option<String> {
    let top = work_tree(sh, dir).ok().flatten()?;
    let head = cmd!(sh, "git -C {top} rev-parse HEAD")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    let dirty = !cmd!(sh, "git -C {top} status --porcelain --untracked-files=no")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?
        .trim()
        .is_empty();
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// The branch checked out at `dir` (none when HEAD is detached).
pub fn current_branch(sh: &Shell, dir: &Path) -> Option<String> {
    cmd!(sh, "git -C {dir} symbolic-ref --quiet --short HEAD")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The directory git runs hooks from in the checkout at `top`, and where
/// that comes from: `core.hooksPath` (as git reads it: relative to the
/// checkout, and `~/` and `~user/` expanded by git itself) with the config
/// it is set in, or else the repository's own hooks directory
/// (`.git/hooks`, wherever a worktree keeps it).
pub fn hooks_dir(sh: &Shell, top: &Path) -> Option<(PathBuf, String)> {
    // Only the line break goes: a value's own spaces are git's too.
    let hooks_path = |how: &str| {
        let out = git(sh, top, ["config", how, "--get", "core.hooksPath"])
            .ignore_stderr()
            .read()
            .ok()?;
        Some(out.strip_suffix('\n').unwrap_or(&out).to_owned())
    };
    let scoped = hooks_path("--show-scope");
    if let Some((scope, value)) = scoped.as_deref().and_then(|s| s.split_once('\t')) {
        // Set empty, it makes git run no hooks at all.
        if value.is_empty() {
            return None;
        }
        // git expands `~/` and `~user/` (and fails on a user it does not
        // know, when the value is read as it is).
        let path = hooks_path("--type=path");
        let dir = top.join(path.as_deref().filter(|p| !p.is_empty()).unwrap_or(value));
        // Anyone's config: shown, never printed as it is.
        let value = d1_core::names::shown(value);
        let whence = match scope {
            "local" | "worktree" => format!("core.hooksPath = {value}, set in this repository"),
            other => format!(
                "core.hooksPath = {value}, set in your {} git config",
                d1_core::names::shown(other)
            ),
        };
        return Some((dir, whence));
    }
    let dir = git(sh, top, ["rev-parse", "--git-path", "hooks"])
        .read()
        .ok()?;
    Some((
        top.join(dir.trim()),
        "the repository's .git/hooks".to_owned(),
    ))
}

/// Sets `core.hooksPath` to [`HOOKS_DIR`] in the repository at `top`.
pub fn set_hooks_path(sh: &Shell, top: &Path) -> Result<()> {
    cmd!(sh, "git -C {top} config core.hooksPath {HOOKS_DIR}")
        .quiet()
        .run()
        .context("cannot set core.hooksPath")?;
    Ok(())
}

/// The hooks in `dir` git would run: its executable files, links to them
/// included, not git's `*.sample`s.
pub fn hooks_in(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.ends_with(".sample")
                && !name.starts_with('.')
                && std::fs::metadata(e.path())
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found
}

/// What keeps the tracked hooks of a checkout from being the hooks git
/// runs: one is missing, or a symbolic link (the hook, or a directory on
/// its way; git stores links, so a pull request can make one) leads it out
/// of the checkout, to a file of no commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HooksProblem {
    Missing(PathBuf),
    LeadsOut { hook: PathBuf, to: PathBuf },
}

impl HooksProblem {
    /// What is wrong, naming the hook.
    pub fn what(&self) -> String {
        match self {
            HooksProblem::Missing(hook) => format!("{} is missing", hook.display()),
            HooksProblem::LeadsOut { hook, to } => format!(
                "{} leads out of the checkout through a symbolic link, to {}: git would run \
                 that file as a hook",
                hook.display(),
                d1_core::names::shown(&to.to_string_lossy())
            ),
        }
    }

    /// The fix.
    pub fn fix(&self) -> String {
        match self {
            HooksProblem::Missing(_) => format!("restore it with `git checkout -- {HOOKS_DIR}`"),
            HooksProblem::LeadsOut { .. } => format!(
                "put the tracked hooks back (`git checkout -- {HOOKS_DIR}`, or remove the link)"
            ),
        }
    }
}

/// The tracked hooks of the checkout at `top`, each as the file it is, or
/// the first thing wrong with them ([`HooksProblem`]).
pub fn tracked_hooks(top: &Path) -> Result<std::result::Result<Vec<PathBuf>, HooksProblem>> {
    let checkout = top.canonicalize()?;
    let mut files = Vec::new();
    for name in HOOKS {
        let hook = top.join(HOOKS_DIR).join(name);
        if !hook.is_file() {
            return Ok(Err(HooksProblem::Missing(hook)));
        }
        let real = hook.canonicalize()?;
        if !real.starts_with(&checkout) {
            return Ok(Err(HooksProblem::LeadsOut { hook, to: real }));
        }
        files.push(real);
    }
    Ok(Ok(files))
}

/// Whether `dir` is the checkout at `top`'s own hooks directory,
/// [`HOOKS_DIR`], however it is spelled (`./scripts/git-hooks`, an
/// absolute path, a link).
pub fn is_ours(top: &Path, dir: &Path) -> bool {
    match (dir.canonicalize(), top.join(HOOKS_DIR).canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the pre-commit hook refuses by name, and a backup's manifest;
    /// not a site's own files.
    #[test]
    fn a_backup_or_its_manifest_is_told_by_its_name_and_a_sites_files_are_not() {
        for backup in [
            "backup-prod-20261130-1200.sql",
            "backup-prod-20261130-1200-2.sql.zst.age",
            "backup-staging-20261130-1200.sql.gz",
            "backup-prod-20261130-1200.manifest.json",
            "backup-prod.analytics-20261130-1200-3.manifest.json",
            "by-hand.sql.age",
            "export.sql.zst",
            "prod.sql.gz",
            "prod.sql.bz2",
            "prod.sql.xz",
            "prod.sql.zip",
            // In any case: on a case-insensitive file system, the same name.
            "BACKUP-PROD-20261130-1200.SQL",
            "Export.Sql.Zst",
            "backup-prod-20261130-1200.MANIFEST.JSON",
        ] {
            assert!(named_as_backup(backup), "{backup}");
        }
        for site in [
            "index.html",
            "schema.sql",
            "backup-guide.html",
            "backup-notes.manifest.json",
            "site.webmanifest",
            "sql.age",
            "a.sql.zst.txt",
            "fonts.tar.xz",
            "notes.txt.gz",
        ] {
            assert!(!named_as_backup(site), "{site}");
        }
    }

    /// The pre-commit hook refuses every name of [`BACKUP_NAME_GLOBS`]:
    /// the hook, a shell script, cannot read the list, so each of its
    /// names is a pattern of the hook's.
    #[test]
    fn the_pre_commit_hook_refuses_every_backup_name() {
        let hook = include_str!("../../../scripts/git-hooks/pre-commit");
        assert_eq!(unrefused_globs(hook), Vec::<&str>::new());
    }

    /// A glob taken out of the hook's `backup_name`, the function that
    /// refuses, is missed, though another `case` of the hook (the one for
    /// migrations/, which refuses nothing of it) holds it.
    #[test]
    fn a_glob_the_hooks_backup_name_lost_is_missed_wherever_else_it_is() {
        let hook = include_str!("../../../scripts/git-hooks/pre-commit");
        let lost = hook.replacen("|*.sql.age|", "|", 1).replacen(
            "migrations/backup-*)",
            "migrations/backup-*|*.sql.age)",
            1,
        );
        assert_ne!(lost, hook);
        assert_eq!(unrefused_globs(&lost), vec!["**/*.sql.age"]);
        let renamed = hook.replacen("backup_name() {", "backup_name_of() {", 1);
        assert_eq!(unrefused_globs(&renamed), BACKUP_NAME_GLOBS.to_vec());
    }

    /// The globs of [`BACKUP_NAME_GLOBS`] the hook's `backup_name`
    /// function (from `backup_name() {` to the `}` that closes it, at the
    /// start of a line), which every name is refused by, does not list in
    /// a `case` pattern; all of them where the hook has no such function.
    fn unrefused_globs(hook: &str) -> Vec<&'static str> {
        let body = { hook.split_once("\nbackup_name() {\n") }
            .and_then(|(_, rest)| rest.split_once("\n}\n"))
            .map_or("", |(body, _)| body);
        let patterns: Vec<&str> = { body.lines() }
            .filter_map(|line| line.trim().split_once(')'))
            .flat_map(|(patterns, _)| patterns.split('|'))
            .collect();
        let refused = |glob: &str| {
            let name = glob.trim_start_matches("**/");
            // `backup-*` at the top too, where `*/` matches nothing.
            let top = format!("*/{name}");
            let wanted = match name.starts_with('*') {
                true => vec![name],
                false => vec![name, top.as_str()],
            };
            wanted.iter().all(|w| patterns.contains(w))
        };
        { BACKUP_NAME_GLOBS.iter().copied() }
            .filter(|glob| !refused(glob))
            .collect()
    }
}
