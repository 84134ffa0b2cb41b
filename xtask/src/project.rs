//! Where things are: the repository, its wrangler configuration, the backup
//! directory, and the pinned wrangler in `node_modules`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::environment::Environments;
use crate::redact::Redactor;
use crate::settings::{SETTINGS_FILE, Settings};
use crate::stored::Age;
use crate::wrangler::{Commands, Wrangler};

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
    /// Where backups and their manifests are kept.
    #[arg(long, global = true, env = "QBTIME_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
}

/// The resolved locations for one run.
#[derive(Debug, Clone)]
pub struct Project {
    /// The repository that holds `package.json` and `node_modules/`.
    pub tool_root: PathBuf,
    /// The wrangler configuration file.
    pub config: PathBuf,
    /// The directory of the wrangler configuration: wrangler runs there, and
    /// its local D1 state lives in `.wrangler/` beside it.
    pub config_dir: PathBuf,
    pub backup_dir: PathBuf,
}

impl Project {
    pub fn resolve(args: &ProjectArgs) -> Result<Project> {
        let tool_root = tool_root();
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let config = match &args.config {
            Some(p) => cwd.join(p),
            None => tool_root.join("wrangler.toml"),
        };
        if !config.is_file() {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "the wrangler configuration {} does not exist; pass --config PATH",
                config.display()
            );
        }
        let config = config.canonicalize()?;
        let config_dir = config
            .parent()
            .context("config has no directory")?
            .to_path_buf();
        let backup_dir = match &args.backup_dir {
            Some(p) => cwd.join(p),
            None => config_dir.join("backups"),
        };
        Ok(Project {
            tool_root,
            config,
            config_dir,
            backup_dir,
        })
    }

    pub fn environments(&self) -> Result<Environments> {
        Environments::load(&self.config)
    }

    /// `backups.toml` beside the wrangler configuration.
    pub fn settings(&self) -> Result<Settings> {
        Settings::load(&self.config_dir.join(SETTINGS_FILE))?.resolved(&self.environments()?)
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

    pub fn wrangler_installed(&self) -> bool {
        self.node_bin().join("wrangler").is_file()
    }

    /// The pinned wrangler, installed with `npm ci` first if it is missing.
    pub fn wrangler(&self, sh: &Shell) -> Result<Wrangler> {
        if !self.wrangler_installed() {
            install_wrangler(sh, &self.tool_root)?;
        }
        let timeout = crate::wrangler::timeout_from(
            std::env::var(crate::wrangler::TIMEOUT_VAR).ok().as_deref(),
        )?;
        Ok(Wrangler::new(
            &self.node_bin(),
            &self.config_dir,
            Redactor::from_process_env(),
        )
        .with_timeout(timeout))
    }

    /// The installed wrangler's version, from its package.json.
    pub fn wrangler_version(&self) -> Option<String> {
        package_version(&self.tool_root.join("node_modules/wrangler/package.json"))
    }
}

/// The repository root: the parent of the xtask crate.
pub fn tool_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository root")
        .to_path_buf()
}

fn install_wrangler(sh: &Shell, root: &Path) -> Result<()> {
    let npm = which::which("npm").context(
        "wrangler is not installed and npm is not on PATH; install Node.js 20.3 or newer \
         (it brings npm), then run this again",
    )?;
    eprintln!(
        "wrangler is not installed: running `npm ci` in {} (one time, about a minute)",
        root.display()
    );
    let _dir = sh.push_dir(root);
    cmd!(sh, "{npm} ci --no-audit --no-fund")
        .quiet()
        .run()
        .context("`npm ci` failed; fix the error above, then run this again")?;
    Ok(())
}

pub fn package_version(package_json: &Path) -> Option<String> {
    let text = std::fs::read_to_string(package_json).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("version")?.as_str().map(str::to_owned)
}
