//! Where things are: the repository, its wrangler configuration, the backup
//! directory, and the pinned wrangler in `node_modules`.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::config::environment::{CONFIG_FILES, Environments, config_present};
use crate::config::settings::{SETTINGS_FILE, Settings};
use crate::edge::inventory;
use crate::edge::stored::Age;
use crate::edge::wrangler::{Commands, Wrangler};
use crate::exit::Exit;
use crate::redact::Redactor;

/// Options every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// The wrangler configuration that defines the environments.
    #[arg(
        long,
        global = true,
        env = "QBTIME_WRANGLER_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// Where backups and their manifests are kept [default: backups/ beside
    /// the wrangler configuration]. A relative path is taken from the
    /// current directory, and shown resolved.
    #[arg(long, global = true, env = "QBTIME_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Which D1 database, by binding or database name, when an environment
    /// has several (`backup` takes all of them without it).
    #[arg(long, global = true, value_name = "BINDING|NAME")]
    pub database: Option<String>,
}

/// The resolved locations for one run.
#[derive(Debug, Clone)]
pub struct Project {
    /// The checkout this run acts on, found at run time from the current
    /// directory (see [`find_checkout`]); printed in every plan.
    pub root: PathBuf,
    /// Where `package.json`, `node_modules/` and `scripts/` come from: the
    /// checkout itself, unless it has no `package.json` (a bare directory
    /// with a wrangler configuration), then the checkout the binary was
    /// built in, if it still exists.
    pub tool_root: PathBuf,
    /// The wrangler configuration file.
    pub config: PathBuf,
    /// The directory of the wrangler configuration: wrangler runs there, and
    /// its local D1 state lives in `.wrangler/` beside it.
    pub config_dir: PathBuf,
    pub backup_dir: PathBuf,
    /// `--database`, applied by [`Project::environments`].
    pub database: Option<String>,
}

impl Project {
    /// The global options of `typed` (ids: `config`, `backup_dir`,
    /// `database`) that a command printed for the user to paste must carry
    /// to reach what this run reached (the configuration and the backup
    /// directory as the absolute paths they resolved to, which reach the
    /// same from any directory; `--database` as typed): those that change
    /// it. A `--config` naming the configuration the checkout would be
    /// found by anyway, or a `--backup-dir` naming its default
    /// directory, is left off, as noise; but not when it was typed over its
    /// environment variable (`QBTIME_WRANGLER_CONFIG`, `QBTIME_BACKUP_DIR`),
    /// which the shell that pastes has too and would reach instead. One
    /// set only in its variable is left off too (the shell has it), unless
    /// it is relative: pasted elsewhere, it would reach another.
    pub fn globals_to_paste(
        &self,
        args: &ProjectArgs,
        typed: &[&str],
    ) -> Vec<(&'static str, String)> {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        // The option's environment variable, set: without the option, a
        // pasted command reads that, not the default.
        let overrides = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
        let found_anyway = || {
            if overrides("QBTIME_WRANGLER_CONFIG") {
                return Some(false);
            }
            let cwd = std::env::current_dir().ok()?;
            let config = default_config(&find_checkout(&cwd)?).ok()?;
            Some(same(&config, &self.config))
        };
        // Typed, it is carried unless it is noise; from its variable, the
        // shell that pastes has that too, but a relative path there,
        // pasted in another directory, reaches another.
        let carried = |id: &str, given: Option<&PathBuf>, noise: &dyn Fn() -> bool| match given {
            None => false,
            Some(_) if typed.contains(&id) => !noise(),
            Some(path) => path.is_relative(),
        };
        let mut globals = Vec::new();
        // The file and the directory reached, not the paths given: a
        // relative one, pasted in another directory, would reach another.
        if carried("config", args.config.as_ref(), &|| {
            found_anyway() == Some(true)
        }) {
            globals.push(("--config", self.config.to_string_lossy().into_owned()));
        }
        let default_dir = || {
            !overrides("QBTIME_BACKUP_DIR")
                && same(&self.backup_dir, &self.config_dir.join("backups"))
        };
        if carried("backup_dir", args.backup_dir.as_ref(), &default_dir) {
            let dir = self.backup_dir.to_string_lossy().into_owned();
            globals.push(("--backup-dir", dir));
        }
        if let Some(database) = args
            .database
            .as_ref()
            .filter(|_| typed.contains(&"database"))
        {
            globals.push(("--database", database.clone()));
        }
        globals
    }

    pub fn resolve(args: &ProjectArgs) -> Result<Project> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let config = config_file(&cwd, args)?;
        // The configuration's directory is the one its path names, as
        // wrangler takes it: a `wrangler.toml` that is a link to a file
        // elsewhere (git stores links) is read, but migrations, the local
        // D1 and backups stay in the directory the link is in.
        let name = config
            .file_name()
            .context("the configuration's path names no file")?
            .to_owned();
        let config_dir = config
            .parent()
            .context("config has no directory")?
            .canonicalize()?;
        let config = config_dir.join(name);
        // The checkout that holds the configuration; a bare directory with
        // only a configuration stands for itself.
        let root = find_checkout(&config_dir)
            .or_else(|| find_checkout(&cwd))
            .unwrap_or_else(|| config_dir.clone());
        let tool_root = tools_for(&root)?;
        let backup_dir = backup_dir(&cwd, args, &config_dir)?;
        Ok(Project {
            root,
            tool_root,
            config,
            config_dir,
            backup_dir,
            database: args.database.clone(),
        })
    }

    /// The line every plan prints: which checkout the command acts on.
    pub fn plan_line(&self) -> String {
        let mut line = format!("repository: {}", self.root.display());
        if default_config(&self.root).ok().as_ref() != Some(&self.config) {
            line.push_str(&format!(" (configuration {})", self.config.display()));
        }
        if self.tool_root != self.root {
            line.push_str(&format!(
                " (wrangler and scripts from {})",
                self.tool_root.display()
            ));
        }
        line
    }

    /// Whether [`Project::plan_line`] tells more than a path under `dir`
    /// does: `dir` is outside the repository, or the configuration or
    /// wrangler come from elsewhere. A routine backup, whose first line
    /// names its backup directory, prints the repository only then (and
    /// with `-v`).
    pub fn plan_line_tells_more_than(&self, dir: &Path) -> bool {
        !dir.starts_with(&self.root)
            || default_config(&self.root).ok().as_ref() != Some(&self.config)
            || self.tool_root != self.root
    }

    /// The setting that chose the backup directory, as the user named
    /// it: `--backup-dir` typed, else `QBTIME_BACKUP_DIR`; `None` for the
    /// default `backups/` beside the configuration.
    fn backup_dir_given(&self) -> Option<&'static str> {
        if self.backup_dir == self.config_dir.join("backups") {
            return None;
        }
        let typed = std::env::args_os()
            .any(|a| a.to_string_lossy().split('=').next() == Some("--backup-dir"));
        let from_variable = std::env::var_os("QBTIME_BACKUP_DIR").is_some_and(|v| !v.is_empty());
        Some(if from_variable && !typed {
            "QBTIME_BACKUP_DIR"
        } else {
            "--backup-dir"
        })
    }

    /// The backup directory, as a message that looked in it names it: its
    /// path, and the setting that chose it when one did
    /// ([`Project::backup_dir_given`]), a rehearsal's exports named as such.
    pub fn backup_dir_said(&self) -> String {
        let dir = d1_core::names::shown_path(&self.backup_dir);
        let rehearsal = crate::steps::rehearsals::holding(&self.backup_dir);
        match (self.backup_dir_given(), rehearsal) {
            (None, _) => dir,
            (Some(given), Some(rehearsal)) => format!(
                "{dir} (the backup directory {given} names: the rehearsal {rehearsal}'s, as \
                 `cargo xtask rehearse --serve` exports it)"
            ),
            (Some(given), None) => format!("{dir} (the backup directory {given} names)"),
        }
    }

    /// The environments of the wrangler configuration, with `--database`.
    pub fn environments(&self) -> Result<Environments> {
        let envs = Environments::load(&self.config)?.picking(self.database.clone());
        // What "in the checkout" means for a migrations_dir reached through a
        // link: the git work tree holding the configuration (a monorepo's
        // app directory links to its root's migrations), else the checkout.
        let boundary = self
            .config_dir
            .ancestors()
            .find(|d| d.join(".git").exists())
            .unwrap_or(&self.root)
            .to_path_buf();
        for env in envs.iter() {
            env.check_migrations_outside(
                (&self.config_dir, &boundary),
                (&self.backup_dir, self.backup_dir_given()),
            )?;
            // A name the configuration gives is never taken for a secret a
            // variable holds (`redact::secret_named_values`).
            crate::redact::known_name(&env.name);
            crate::redact::known_name(&env.database_name);
        }
        Ok(envs)
    }

    /// `backups.toml` beside the wrangler configuration.
    /// A file that cannot be read or used is bad input (exit 2), whatever
    /// the reason: a typo, a bucket name R2 refuses, an unknown key.
    pub fn settings(&self) -> Result<Settings> {
        let envs = self.environments()?;
        Settings::load(&self.config_dir.join(SETTINGS_FILE))
            .and_then(|s| s.resolved(&envs))
            .map_err(crate::exit::could_not_run)
    }

    /// age, through `scripts/age.mjs` and the pinned package.
    pub fn age(&self) -> Age {
        Age::new(&self.tool_root)
    }

    pub fn commands(&self) -> Commands {
        Commands::new(&self.config)
    }

    pub fn node_bin(&self) -> PathBuf {
        self.tool_root.join("node_modules").join(".bin")
    }

    /// The Node that runs wrangler and the project's scripts.
    pub fn node(&self) -> PathBuf {
        crate::edge::node::node_at(&self.tool_root)
    }

    pub fn wrangler_installed(&self) -> bool {
        self.node_bin().join("wrangler").is_file()
    }

    /// The pinned wrangler, installed with `npm ci` first if it is missing.
    pub fn wrangler(&self, sh: &Shell) -> Result<Wrangler> {
        if !self.wrangler_installed() {
            install_wrangler(sh, &self.tool_root)?;
            if !self.wrangler_installed() {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "`npm ci` in {} did not install wrangler: its package.json and \
                     package-lock.json must pin wrangler (as this repository's do); restore \
                     them from git, then run this again",
                    self.tool_root.display()
                );
            }
        }
        let timeout = crate::edge::wrangler::timeout_from(
            std::env::var(crate::edge::wrangler::TIMEOUT_VAR)
                .ok()
                .as_deref(),
        )?;
        Ok(Wrangler::new(
            &self.node_bin(),
            &self.config_dir,
            Redactor::from_process_env(),
        )
        .with_timeout(timeout))
    }

    /// The file a command's backup argument names, the same for every command:
    /// `latest` (the environment `env`, when the command has one) or
    /// `latest:ENV`; a bare file name, as `list` prints it, looked up in the
    /// backup directory and refused if it leads outside it; or a path.
    pub fn resolve_backup(
        &self,
        word: &str,
        env: Option<&str>,
        latest: inventory::Latest,
    ) -> Result<PathBuf> {
        let named_env = match env_word(word, "latest") {
            Some(EnvWord::Alone) => Some(env.map(str::to_owned).ok_or_else(|| {
                Exit::CouldNotRun.error(anyhow::anyhow!(
                    "`latest` needs an environment here: give `latest:prod`, `latest:staging` or `latest:local`"
                ))
            })?),
            Some(EnvWord::Named(name)) => Some(name.to_owned()),
            None => None,
        };
        if let Some(word) = named_env {
            let envs = self
                .environments()
                .map_err(|e| Exit::CouldNotRun.error(e))?;
            // Known by its configured name: the backups `recorded_as` it.
            let env = match envs.resolve(&word) {
                Ok(env) => env.clone(),
                // `latest` of the command's own environment, resolved
                // already (a new database's, say).
                Err(_) if env == Some(word.as_str()) => {
                    return self.latest_recorded_as(&word, latest, |m| m.environment == word);
                }
                Err(e) => return Err(Exit::CouldNotRun.error(e)),
            };
            let entries =
                inventory::scan(&self.backup_dir).map_err(|e| Exit::CouldNotRun.error(e))?;
            inventory::say_misfiled(&envs, Some(&env), &entries);
            let counted = inventory::counted_for(&env, &entries);
            let found = self.latest_recorded_as(&env.name, latest, counted);
            if let Ok(chosen) = &found {
                inventory::say_other_ids_passed_over(
                    &env,
                    &entries,
                    chosen,
                    &format!("latest:{word}"),
                );
            }
            // None found, but backups of this database under its old name:
            // say so, and the way forward, not only "take one".
            return found.map_err(|e| {
                let entries = inventory::scan(&self.backup_dir).unwrap_or_default();
                let note = { entries.iter() }.find_map(|entry| {
                    let db = &entry.manifest.database;
                    env.renamed_from(&db.name, &db.uuid)
                });
                // In a shell pointed at a rehearsal, a real database's
                // backups are elsewhere, and its "take one" refused.
                let note = note.or_else(|| {
                    crate::steps::rehearsals::real_database_note(&self.backup_dir, &env)
                });
                match note {
                    Some(note) => Exit::CouldNotRun.error(anyhow::anyhow!("{e}; {note}")),
                    None => e,
                }
            });
        }
        inventory::locate(&self.backup_dir, word).map_err(|e| Exit::CouldNotRun.error(e))
    }

    /// The newest backup (`latest`) of those whose manifest `is_of` the
    /// database named `env`.
    fn latest_recorded_as(
        &self,
        env: &str,
        latest: inventory::Latest,
        is_of: impl Fn(&d1_core::manifest::Manifest) -> bool,
    ) -> Result<PathBuf> {
        let entries = inventory::scan(&self.backup_dir).map_err(|e| Exit::CouldNotRun.error(e))?;
        // A backup taken inside another rehearsal (copied in, manifest and
        // all) is a copy of its loopback's databases, which restore
        // refuses: never the newest of a real database.
        // By either mark: the manifest's, or the dump's first line.
        let (entries, rehearsals): (Vec<_>, Vec<_>) = { entries.into_iter() }
            .map(|e| (crate::steps::rehearsals::of_entry(&e), e))
            .partition(|(taken_in, _)| taken_in.is_none());
        let entries: Vec<_> = entries.into_iter().map(|(_, e)| e).collect();
        let looked_in = (env, self.backup_dir_said());
        let looked_in = (looked_in.0, looked_in.1.as_str());
        let found = match latest {
            inventory::Latest::Good => inventory::latest_good_of(&entries, looked_in, &is_of),
            inventory::Latest::Any => inventory::latest_any_of(&entries, looked_in, &is_of),
        };
        // None found: the rehearsals' backups passed over are named, as
        // they are beside a real one (below), never left unsaid.
        let chosen = found.map_err(|e| {
            let passed: Vec<String> = { rehearsals.iter() }
                .filter(|(_, e)| is_of(&e.manifest) && e.is_whole())
                .map(|(taken_in, e)| {
                    let taken_in = taken_in.as_deref().unwrap_or_default();
                    format!("{} ({taken_in})", e.manifest.file.name)
                })
                .collect();
            match passed.is_empty() {
                true => Exit::CouldNotRun.error(e),
                false => Exit::CouldNotRun.error(anyhow::anyhow!(
                    "{e}; passed over, taken inside a rehearsal, a copy of its loopback's \
                     databases that restore refuses outside it: {}",
                    passed.join(", ")
                )),
            }
        })?;
        let at = { entries.iter() }.find(|e| e.file == chosen);
        let newer = { rehearsals.iter() }.filter(|(_, e)| {
            is_of(&e.manifest)
                && e.is_whole()
                && at.is_some_and(|c| e.manifest.created_at > c.manifest.created_at)
        });
        for (taken_in, e) in newer {
            crate::warn!(
                "latest:{env} is {}: the newer {} was taken inside a rehearsal ({}), a copy of \
                 its loopback's databases that restore refuses outside it, and is passed over",
                d1_core::names::file_name(&chosen),
                e.manifest.file.name,
                taken_in.as_deref().unwrap_or_default()
            );
        }
        Ok(chosen)
    }

    pub fn wrangler_version(&self) -> Option<String> {
        package_version(&self.tool_root.join("node_modules/wrangler/package.json"))
    }
}

/// The wrangler configuration to act on: `--config`, or the one of the
/// checkout the current directory is in; a regular file that exists.
fn config_file(cwd: &Path, args: &ProjectArgs) -> Result<PathBuf> {
    let config = match &args.config {
        Some(p) => cwd.join(p),
        None => {
            let Some(root) = find_checkout(cwd) else {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "cannot find the repository to act on: no directory from {} upwards \
                     holds Cargo.toml with xtask/, or package.json with a wrangler \
                     configuration (wrangler.toml, wrangler.jsonc or wrangler.json). Run \
                     cargo xtask inside a qbtime checkout, or pass --config PATH",
                    cwd.display()
                );
            };
            default_config(&root)?
        }
    };
    if std::fs::metadata(&config).is_ok_and(|m| !m.is_file()) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the wrangler configuration {} is not a regular file (a pipe, a device or a \
             directory?); this tool reads only a regular file there. Put the configuration's \
             own file in its place, or pass --config PATH",
            config.display()
        );
    }
    if !config.is_file() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the wrangler configuration {:?} does not exist; pass --config PATH (or \
             QBTIME_WRANGLER_CONFIG){}",
            config.to_string_lossy(),
            match args.config.as_ref().map(|p| p.to_string_lossy()) {
                Some(p) if p.trim() != p => ", without the white space at its end",
                _ => "",
            }
        );
    }
    Ok(config)
}

/// The backup directory: `--backup-dir`, or `backups` beside the
/// configuration; a directory, or a path to create.
fn backup_dir(cwd: &Path, args: &ProjectArgs, config_dir: &Path) -> Result<PathBuf> {
    let backup_dir = match &args.backup_dir {
        Some(p) => {
            // A space at either end is a paste mistake (`"backups "`):
            // taken as it is, it names a directory with no backups, and
            // every command would say there are none.
            let text = p.to_string_lossy();
            if text.trim() != text {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "the backup directory {:?} (--backup-dir, or QBTIME_BACKUP_DIR) begins or \
                     ends with white space; give it without. Nothing was run.",
                    text
                );
            }
            from_cwd(cwd, p)
        }
        None => config_dir.join("backups"),
    };
    // Every command reads or writes there: a file in its place is bad
    // input for all of them, not "no backups".
    if backup_dir.exists() && !backup_dir.is_dir() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the backup directory {} is not a directory; give --backup-dir a directory (or a \
             path to create)",
            backup_dir.display()
        );
    }
    Ok(backup_dir)
}

/// `path` taken from `cwd`, as every command line tool takes a relative
/// path (cargo's alias runs the xtask where it was typed), and shown as
/// the directory it reaches: without `.`, and without the `..` that climb
/// out of `cwd`, which has no symbolic link in it (the system gives the
/// path it is at). A `..` after a name of `path` stays: that name may be a
/// link, and `..` then leads out of where the link leads.
fn from_cwd(cwd: &Path, path: &Path) -> PathBuf {
    let mut resolved = cwd.to_path_buf();
    let mut named = false;
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if !named => {
                resolved.pop();
            }
            Component::Normal(_) | Component::ParentDir => {
                named = true;
                resolved.push(part);
            }
            Component::RootDir | Component::Prefix(_) => {
                resolved.push(part);
            }
        }
    }
    resolved
}

/// Whether a backup or side argument stands for an environment's database
/// (`latest`, `latest:ENV`, `live:ENV`), so that `--database` picks which;
/// a file or a backup's name does not.
pub fn names_an_environment(word: &str) -> bool {
    env_word(word, "latest").is_some() || env_word(word, "live").is_some()
}

/// An argument that is `keyword` (`latest`, `live`) standing for an
/// environment's database: alone, or naming the environment after a colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvWord<'a> {
    /// `latest`: the command's own environment, if it has one.
    Alone,
    /// `latest:ENV`; the name may be empty (`latest:`).
    Named(&'a str),
}

/// `word` as `keyword` alone or `keyword:ENV`; `None` for any other
/// argument (a file, a backup's name, `latest.sql`, `lively`).
pub fn env_word<'a>(word: &'a str, keyword: &str) -> Option<EnvWord<'a>> {
    match word.strip_prefix(keyword)? {
        "" => Some(EnvWord::Alone),
        rest => rest.strip_prefix(':').map(EnvWord::Named),
    }
}

/// The checkout that holds `dir`: the nearest directory, from `dir`
/// upwards, with the workspace `Cargo.toml` and `xtask/`, or with
/// `package.json` and a wrangler configuration.
pub fn find_checkout(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            (d.join("Cargo.toml").is_file() && d.join("xtask").is_dir())
                || (d.join("package.json").is_file()
                    && CONFIG_FILES
                        .iter()
                        .any(|name| config_present(&d.join(name))))
        })
        .map(Path::to_path_buf)
}

/// The checkout's wrangler configuration: `wrangler.json`, `wrangler.jsonc`
/// or `wrangler.toml` (two of them are refused), or the path that the error
/// for a missing configuration names.
fn default_config(root: &Path) -> Result<PathBuf> {
    Ok(crate::config::environment::config_in(root)?.unwrap_or_else(|| root.join("wrangler.toml")))
}

/// Where the pinned wrangler and `scripts/` are for a run in `root`.
fn tools_for(root: &Path) -> Result<PathBuf> {
    if root.join("package.json").is_file() {
        return Ok(root.to_path_buf());
    }
    let built = crate::edge::node::build_root();
    if built.join("package.json").is_file() {
        return Ok(built);
    }
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{} has no package.json, so it cannot pin wrangler, and the checkout this xtask was built \
         in ({}) is gone. Run cargo xtask inside a qbtime checkout (it has package.json and \
         scripts/).",
        root.display(),
        built.display()
    )
}

fn install_wrangler(sh: &Shell, root: &Path) -> Result<()> {
    let npm = which::which("npm").context(
        "wrangler is not installed and npm is not on PATH; install Node.js 20.3 or newer \
         (it brings npm), then run this again",
    )?;
    match crate::out::plan_asked() {
        // A dry run ends "nothing was changed": what it changes all the
        // same is said first, under -q too, as its plan is printed.
        true => crate::out::plan_note(&format!(
            "wrangler is not installed: installing the pinned wrangler (`npm ci`) into {} \
             first (one time, about a minute); nothing else is changed",
            root.join("node_modules").display()
        )),
        false => crate::note!(
            "wrangler is not installed: running `npm ci` in {} (one time, about a minute)",
            root.display()
        ),
    }
    crate::edge::node::npm_ci(sh, &npm, root)
}

pub fn package_version(package_json: &Path) -> Option<String> {
    let text = std::fs::read_to_string(package_json).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("version")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_backup_dir_is_resolved_from_the_current_directory() {
        let cwd = Path::new("/repo/app");
        let at = |p: &str| from_cwd(cwd, Path::new(p));
        assert_eq!(at("../kept"), Path::new("/repo/kept"));
        assert_eq!(at("./kept/."), Path::new("/repo/app/kept"));
        assert_eq!(at("../../x"), Path::new("/x"));
        assert_eq!(at("/srv/backups"), Path::new("/srv/backups"));
        // After a name, which may be a link, `..` is left to the system.
        assert_eq!(at("link/../kept"), Path::new("/repo/app/link/../kept"));
    }

    #[test]
    fn latest_and_live_stand_alone_or_name_an_environment_after_a_colon() {
        assert_eq!(env_word("latest", "latest"), Some(EnvWord::Alone));
        assert_eq!(
            env_word("latest:prod", "latest"),
            Some(EnvWord::Named("prod"))
        );
        assert_eq!(env_word("live:", "live"), Some(EnvWord::Named("")));
        assert_eq!(env_word("latest.sql", "latest"), None);
        assert_eq!(env_word("live:prod", "latest"), None);
    }

    #[test]
    fn only_latest_and_live_words_stand_for_an_environment() {
        for word in ["latest", "latest:prod", "live:local", "live"] {
            assert!(names_an_environment(word), "{word}");
        }
        for word in [
            "backup-local-20261202-1144.sql",
            "latest.sql",
            "lively",
            "./latest",
        ] {
            assert!(!names_an_environment(word), "{word}");
        }
    }

    #[test]
    fn the_checkout_is_found_upwards_from_any_directory_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("clone-b");
        std::fs::create_dir_all(root.join("xtask/src")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]").unwrap();
        assert_eq!(find_checkout(&root.join("xtask/src")), Some(root.clone()));

        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("migrations")).unwrap();
        std::fs::write(app.join("package.json"), "{}").unwrap();
        std::fs::write(app.join("wrangler.toml"), "").unwrap();
        assert_eq!(find_checkout(&app.join("migrations")), Some(app.clone()));
        assert_eq!(tools_for(&app).unwrap(), app);
        assert_eq!(find_checkout(dir.path()), None);
    }
}
