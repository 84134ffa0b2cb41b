//! `cargo xtask rehearse`: the whole remote cycle, offline. The loopback
//! Cloudflare API (`crates/d1-loopback`) serves every remote database of
//! `wrangler.toml` on 127.0.0.1 from SQLite files in a private directory,
//! prod loaded from a backup, and this tool's own commands then run against
//! it through the real wrangler's `--remote` code paths: backup, verify,
//! migrate, restore, Time Travel and the offsite copy.
//!
//! Nothing reaches Cloudflare, and nothing touches the real backups: the
//! rehearsal's backups live in its own directory under `backups/`, which is
//! removed afterwards unless `--keep`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use d1_loopback::{Config, DatabaseSpec, Server};

use crate::config::environment::{Environment, Location};
use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::inventory;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::stored;
use d1_core::manifest::Manifest;
use d1_core::repair;

const ACCOUNT: &str = "0000000000000000000000000000cafe";
const TOKEN: &str = "rehearsal-token-not-a-cloudflare-token";

#[derive(Debug, Clone, clap::Args)]
pub struct RehearseArgs {
    /// What prod starts as: a backup file, `latest:ENV` (that environment's
    /// newest verified backup), or `empty` (the migrations, no rows).
    /// Default: the newest verified prod backup, else `empty`.
    #[arg(long, value_name = "FILE|latest:ENV|empty")]
    pub from: Option<String>,
    #[command(flatten)]
    pub identity: stored::IdentityArg,
    /// Serve the API until stopped (Ctrl-C) instead of running the cycle,
    /// and print what to export to run commands against it by hand.
    #[arg(long)]
    pub serve: bool,
    /// Keep the rehearsal's directory (its databases and backups).
    #[arg(long)]
    pub keep: bool,
    /// Print the steps and their results as one JSON document on stdout;
    /// the steps' own output goes to stderr.
    #[arg(long)]
    pub json: bool,
}

/// One step of the cycle: a command of this tool, and why.
struct Step {
    name: &'static str,
    args: Vec<String>,
}

pub fn run(project: &Project, args: &RehearseArgs) -> Result<bool> {
    let envs = project.environments()?;
    let remotes: Vec<&Environment> = envs
        .iter()
        .filter(|e| e.location == Location::Remote)
        .collect();
    let prod = envs.resolve("prod")?;
    let staging = remotes
        .iter()
        .copied()
        .find(|e| !e.is_production())
        .context("wrangler.toml has no remote environment besides prod to restore into")?;
    let from = choose_source(project, args)?;

    fsutil::create_private_dir(&project.backup_dir)?;
    let dir = project.backup_dir.join(format!(
        ".rehearsal-{}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        std::process::id()
    ));
    fsutil::create_private_dir(&dir.join("backups"))?;
    let cleanup = Cleanup {
        dir: dir.clone(),
        keep: args.keep || args.serve,
    };

    let mut databases = Vec::new();
    for env in &remotes {
        let path = dir.join(format!("{}.sqlite", env.database_name));
        rusqlite::Connection::open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        if env.name == prod.name {
            load_prod(project, prod, &from, args.identity.path(), &path)?;
        }
        databases.push(DatabaseSpec {
            uuid: env.database_id.clone(),
            name: env.database_name.clone(),
            path,
        });
    }
    let server = Server::start(Config {
        account_id: ACCOUNT.to_owned(),
        api_token: TOKEN.to_owned(),
        databases,
    })?;
    let settings = project.settings()?;
    let buckets: Vec<String> = remotes
        .iter()
        .filter_map(|e| settings.env(&e.env_name).offsite.map(|o| o.bucket))
        .collect();
    for bucket in &buckets {
        server.add_bucket(bucket);
    }
    let vars = [
        ("CLOUDFLARE_API_BASE_URL", server.api_base_url()),
        ("CLOUDFLARE_API_TOKEN", TOKEN.to_owned()),
        ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT.to_owned()),
        (
            "QBTIME_BACKUP_DIR",
            dir.join("backups").display().to_string(),
        ),
        (
            "QBTIME_WRANGLER_CONFIG",
            project.config.display().to_string(),
        ),
    ];
    crate::say!(
        "Rehearsal: a loopback Cloudflare API on {} (127.0.0.1 only) serves {}; {} starts as {}.{}",
        server.api_base_url(),
        remotes
            .iter()
            .map(|e| e.database_name.as_str())
            .collect::<Vec<_>>()
            .join(" and "),
        prod.database_name,
        from.describe(),
        if buckets.is_empty() {
            String::new()
        } else {
            format!(" R2 bucket(s): {}.", buckets.join(", "))
        }
    );
    crate::say!(
        "Its backups go to {}, never to the real ones.",
        dir.join("backups").display()
    );

    if args.serve {
        crate::say!("\nIn another shell, export these and run any command of this tool:");
        for (name, value) in &vars {
            crate::say!("  export {name}='{value}'");
        }
        crate::say!(
            "  cargo xtask backup {p}\n  cargo xtask migrate {p} --confirm {db}\n  \
             cargo xtask restore latest:{p} --to {s} --replace --yes\n  \
             cargo xtask time-travel info {p}\n\
             Press Ctrl-C to stop. {} stays; remove it when done.",
            dir.display(),
            p = prod.name,
            s = staging.name,
            db = prod.database_name,
        );
        loop {
            std::thread::park();
        }
    }

    let steps = cycle(
        prod,
        staging,
        !buckets.is_empty() && settings.env(&prod.env_name).offsite.is_some(),
    );
    let exe = std::env::current_exe().context("cannot find this program to run its steps")?;
    let mut results = Vec::new();
    let mut ok = true;
    let json = args.json;
    for step in &steps {
        crate::say!(
            "\n== rehearse: {} (cargo xtask {})",
            step.name,
            step.args.join(" ")
        );
        let started = Instant::now();
        let mut cmd = Command::new(&exe);
        cmd.current_dir(&project.config_dir);
        for (name, value) in &vars {
            cmd.env(name, value);
        }
        if let Some(id) = args.identity.path() {
            cmd.env(stored::IDENTITY_VAR, id);
        }
        let args: Vec<String> = match step.args.iter().any(|a| a == BOOKMARK) {
            false => step.args.clone(),
            true => {
                let bookmark = first_bookmark(&dir.join("backups"))?;
                step.args
                    .iter()
                    .map(|a| {
                        if a == BOOKMARK {
                            bookmark.clone()
                        } else {
                            a.clone()
                        }
                    })
                    .collect()
            }
        };
        cmd.args(&args);
        if json {
            // stdout carries the one JSON document.
            cmd.stdout(std::process::Stdio::from(std::io::stderr()));
        }
        let passed = cmd
            .status()
            .with_context(|| format!("cannot run {}", exe.display()))?
            .success();
        results.push((step.name, passed, started.elapsed().as_secs_f64()));
        if !passed {
            ok = false;
            break;
        }
    }
    crate::say!(
        "\nRehearsal of the remote cycle, offline ({}):",
        from.describe()
    );
    for (name, passed, seconds) in &results {
        crate::say!(
            "  {:<22} {:<5} {seconds:6.1} s",
            name,
            if *passed { "pass" } else { "FAIL" }
        );
    }
    for step in steps.iter().skip(results.len()) {
        crate::say!("  {:<22} not run", step.name);
    }
    if json {
        crate::out::json(&serde_json::json!({
            "command": "rehearse",
            "dry_run": false,
            "plan": {
                "from": from.describe(),
                "steps": steps.iter().map(|s| serde_json::json!({
                    "name": s.name,
                    "command": format!("cargo xtask {}", s.args.join(" ")),
                })).collect::<Vec<_>>(),
            },
            "result": {
                "ok": ok,
                "steps": steps.iter().enumerate().map(|(i, s)| match results.get(i) {
                    Some((_, passed, seconds)) => serde_json::json!({
                        "name": s.name,
                        "outcome": if *passed { "pass" } else { "fail" },
                        "seconds": seconds,
                    }),
                    None => serde_json::json!({"name": s.name, "outcome": "not run"}),
                }).collect::<Vec<_>>(),
            },
        }));
    }
    crate::say!(
        "{}",
        if ok {
            "Every step passed."
        } else {
            "A step failed; its output is above."
        }
    );
    if cleanup.keep {
        crate::say!("The rehearsal's files are in {}.", dir.display());
    }
    drop(server);
    drop(cleanup);
    Ok(ok)
}

/// The cycle: each step is this tool's own command, as an operator runs it.
fn cycle(prod: &Environment, staging: &Environment, offsite: bool) -> Vec<Step> {
    let step = |name, args: &[&str]| Step {
        name,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    };
    let latest = format!("latest:{}", prod.name);
    let mut steps = vec![
        step("backup", &["backup", &prod.name, "--reason", "rehearsal"]),
        step("verify", &["verify", &latest]),
        step(
            "migrate",
            &["migrate", &prod.name, "--confirm", &prod.database_name],
        ),
        step(
            "restore to staging",
            &[
                "restore",
                &latest,
                "--to",
                &staging.name,
                "--replace",
                "--yes",
            ],
        ),
        step(
            "restore to prod",
            &[
                "restore",
                &latest,
                "--to",
                &prod.name,
                "--replace",
                "--confirm",
                &prod.database_name,
            ],
        ),
    ];
    if offsite {
        steps.push(step("upload", &["upload", "latest", "--env", &prod.name]));
        steps.push(step(
            "offsite list",
            &["offsite", "list", "--env", &prod.name],
        ));
    }
    steps.push(step(
        "time-travel restore",
        &[
            "time-travel",
            "restore",
            &prod.name,
            "--bookmark",
            BOOKMARK,
            "--confirm",
            &prod.database_name,
        ],
    ));
    steps.push(step(
        "time-travel info",
        &["time-travel", "info", &prod.name],
    ));
    steps
}

/// Stands for the Time Travel bookmark of the rehearsal's first backup,
/// known only once it is taken: the restore goes back to before the cycle.
const BOOKMARK: &str = "{first-backup-bookmark}";

fn first_bookmark(backups: &Path) -> Result<String> {
    inventory::scan(backups)
        .into_iter()
        .filter(|e| e.manifest.reason.as_deref() == Some("rehearsal"))
        .filter_map(|e| e.manifest.time_travel_bookmark)
        .next()
        .context("the rehearsal's first backup recorded no Time Travel bookmark")
}

/// Where prod's data comes from.
enum From {
    Backup(PathBuf),
    Empty,
}

impl From {
    fn describe(&self) -> String {
        match self {
            From::Backup(file) => format!("a copy of {}", fsutil::file_name(file)),
            From::Empty => "the migrations, with no rows".to_owned(),
        }
    }
}

fn choose_source(project: &Project, args: &RehearseArgs) -> Result<From> {
    let scan = || inventory::scan(&project.backup_dir);
    Ok(match args.from.as_deref() {
        Some("empty") => From::Empty,
        Some(word) if word.starts_with("latest") => {
            let env = match word.strip_prefix("latest:") {
                Some(name) => project.environments()?.resolve(name)?.name.clone(),
                None => bail!("give `latest:ENV`, e.g. `latest:prod`"),
            };
            From::Backup(inventory::latest_good(&scan(), &env)?)
        }
        Some(path) => From::Backup(PathBuf::from(path)),
        None => match inventory::latest_good(&scan(), "prod") {
            Ok(file) => From::Backup(file),
            Err(_) => From::Empty,
        },
    })
}

/// Fills the rehearsal's prod database: a backup loaded under D1's rules,
/// or the migrations applied as `wrangler d1 migrations apply` records them.
fn load_prod(
    project: &Project,
    prod: &Environment,
    from: &From,
    identity: Option<&Path>,
    db: &Path,
) -> Result<()> {
    match from {
        From::Empty => {
            let gate = d1_core::gate::Gate::new(rusqlite::Connection::open(db)?)?;
            let conn = gate.db();
            conn.execute_batch(
                "CREATE TABLE d1_migrations(
                    id         INTEGER PRIMARY KEY AUTOINCREMENT,
                    name       TEXT UNIQUE,
                    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
                );",
            )?;
            let dir = project.config_dir.join(&prod.migrations_dir);
            for name in crate::steps::migrations::migration_files(&dir)? {
                let sql = std::fs::read_to_string(dir.join(&name))?;
                conn.execute_batch(&sql)
                    .with_context(|| format!("applying {name} to the rehearsal's prod"))?;
                conn.execute("INSERT INTO d1_migrations (name) VALUES (?1)", [&name])?;
            }
            Ok(())
        }
        From::Backup(file) => {
            let manifest = Manifest::for_backup(file).with_context(|| {
                format!(
                    "a rehearsal starts from a backup with a manifest; {} has none",
                    file.display()
                )
            })?;
            if manifest.mode != "full" || !manifest.tables.is_empty() {
                bail!(
                    "{} is a {} backup; a rehearsal needs a full one",
                    file.display(),
                    manifest.mode
                );
            }
            let source = stored::Source::for_file(file, identity, &project.age())?;
            let options = repair::Options {
                virtual_tables: manifest.virtual_table_ddl(),
                data_into_existing_schema: false,
                known_tables: BTreeMap::new(),
            };
            let survey = repair::survey(source.open()?, &options)?;
            survey.ensure_repairable()?;
            let mut loader = crate::edge::local_d1::Loader::open(db)?;
            repair::write(source.open()?, &survey, &options, &mut loader)?;
            loader.commit()?;
            Ok(())
        }
    }
}

/// Removes the rehearsal's directory unless it is to be kept.
struct Cleanup {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
