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

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use d1_loopback::{Config, DatabaseSpec, Server};

use crate::config::environment::{Environment, Environments, Location};
use crate::config::project::Project;
use crate::config::settings::Settings;
use crate::edge::fsutil;
use crate::edge::inventory::{self, Latest};
use crate::edge::manifest_file::ManifestFile;
use crate::edge::stored;
use d1_core::manifest::Manifest;
use d1_core::repair;

const ACCOUNT: &str = "0000000000000000000000000000cafe";
/// The start of each rehearsal's API token; the rest is random, so that
/// no other local user can query the copy of prod it serves on 127.0.0.1.
const TOKEN_PREFIX: &str = "rehearsal-token-";

/// A token of this rehearsal's own: 32 random bytes from the kernel.
fn fresh_token() -> Result<String> {
    let bytes = crate::edge::fsutil::random_key("the rehearsal's API token")?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

#[derive(Debug, Clone, clap::Args)]
pub struct RehearseArgs {
    /// What prod starts as: a backup (a name that `list` prints, or a
    /// path), `latest:ENV` (that environment's newest verified backup), or
    /// `empty` (the migrations, no rows).
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

/// A step's name, how it ended, and its seconds.
type StepResult = (&'static str, Outcome, f64);

/// How a step ended: a step stopped by an interrupt (SIGINT, SIGTERM,
/// SIGHUP) exits non-zero too, but it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Interrupted,
}

impl Outcome {
    /// The summary's word.
    fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// `--json`'s `outcome`.
    fn json(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// The variables that point this tool's commands at the loopback API.
type Vars = [(&'static str, String); 6];

/// A Global API Key, which wrangler prefers to `CLOUDFLARE_API_TOKEN` (the
/// deprecated names too): left in a step's environment, it would be sent to
/// the loopback in place of its token, and every step refused.
const GLOBAL_KEY_VARS: [&str; 4] = [
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CF_API_KEY",
    "CF_EMAIL",
];

pub fn run(project: &Project, args: &RehearseArgs) -> Result<bool> {
    let envs = project.environments()?;
    let remotes = Remotes::of(&envs, args.from.as_deref())?;
    let from = choose_source(project, args, remotes.prod)?;
    let cleanup = create_dir(project, args)?;
    let dir = &cleanup.dir;
    let token = fresh_token()?;
    let server = start_server(project, &remotes, &from, args.identity.path(), dir, &token)?;
    let settings = project.settings()?;
    let buckets = add_buckets(&server, &settings, &remotes);
    let vars = loopback_vars(project, &server, dir, &token);
    // Marks the directory a rehearsal's, and its loopback this one's
    // (`steps::rehearsals::refuse_loopback_outside`).
    let mark = dir.join(crate::steps::rehearsals::LOOPBACK_MARK);
    let mut mark = fsutil::create_private_file(&mark)?;
    std::io::Write::write_all(&mut mark, format!("{}\n", server.api_base_url()).as_bytes())?;
    announce(&server, &remotes, &from, &buckets, dir);
    if args.serve {
        serve(&vars, &remotes, dir);
        // Stopped: the server and (without --keep) nothing else to clean;
        // main says it was interrupted and exits 130 or 143.
        drop(server);
        drop(cleanup);
        return Ok(true);
    }

    let (prod, staging) = (remotes.prod, remotes.staging);
    let steps = cycle(
        prod,
        staging,
        !buckets.is_empty() && settings.env(&prod.env_name).offsite.is_some(),
    );
    let results = run_cycle(project, args, &steps, &vars, dir)?;
    // The cycle stops at the first failure or interrupt: it passed if
    // every step ran and passed.
    let passed = results.len() == steps.len() && results.iter().all(|r| r.1 == Outcome::Pass);
    print_summary(&from, &steps, &results);
    match (passed, interrupted_at(&steps, &results)) {
        (true, _) => crate::say!("Every step passed."),
        // main says which signal, and exits 130, 143 or 129.
        (false, Some((name, true))) => {
            crate::say!("Interrupted during the {name} step; the steps after it did not run.")
        }
        (false, Some((name, false))) => crate::say!(
            "Interrupted before the {name} step; it and the steps after it did not run."
        ),
        (false, None) => {
            crate::say!("A step failed; its output is above.");
            // Under -q the headers and the summary are silenced: the step's
            // own error alone would not say it was the rehearsal's, nor
            // which step, nor that the rest did not run.
            let failed = { results.iter() }.find(|r| r.1 == Outcome::Fail);
            if let (crate::out::Level::Quiet, Some((name, ..))) = (crate::out::level(), failed) {
                crate::out::error(&format!(
                    "the rehearsal's {name} step failed (its error is above); the steps after \
                     it did not run"
                ));
            }
        }
    }
    if cleanup.keep {
        crate::say!("The rehearsal's files are in {}.", dir.display());
    }
    drop(server);
    drop(cleanup);
    // The document's verdict is taken once all of it is done: an interrupt
    // after the last step passed (during the summary or the clean-up) makes
    // main exit 130, 143 or 129, and the document says so too.
    let after_last = passed && crate::edge::signals::received().is_some();
    let ok = passed && !after_last;
    if args.json {
        crate::out::json_as_run(&json_report(&from, &steps, &results, ok, after_last));
    }
    Ok(ok)
}

/// The remote databases of `wrangler.toml`: all of them, prod, and the
/// first other one, which the cycle restores into.
struct Remotes<'a> {
    all: Vec<&'a Environment>,
    prod: &'a Environment,
    staging: &'a Environment,
}

impl<'a> Remotes<'a> {
    fn of(envs: &'a Environments, from: Option<&str>) -> Result<Self> {
        let all: Vec<&Environment> = envs
            .iter()
            .filter(|e| e.location == Location::Remote)
            .collect();
        let prod = prod_of(envs, &all, from)?;
        let staging = all
            .iter()
            .copied()
            .find(|e| !e.is_production())
            .context("wrangler.toml has no remote environment besides prod to restore into")?;
        Ok(Remotes { all, prod, staging })
    }
}

/// The database that plays prod's part: `prod`. In a configuration with
/// none (prod's short name changed, say to `live`), the remote production
/// environment `--from latest:ENV` names, else the only one: the rehearsal
/// is offline, so taking it writes nothing real. With several and none
/// named, it is refused, naming them.
fn prod_of<'a>(
    envs: &'a Environments,
    remote: &[&'a Environment],
    from: Option<&str>,
) -> Result<&'a Environment> {
    if envs.defines("prod") {
        return envs.resolve("prod");
    }
    let production: Vec<&Environment> = { remote.iter().copied() }
        .filter(|e| e.is_production())
        .collect();
    let named = { from.and_then(|w| w.strip_prefix("latest:")) }
        .and_then(|word| envs.resolve(word).ok())
        .filter(|env| production.iter().any(|p| p.name == env.name));
    match (named, production.as_slice()) {
        (Some(env), _) => Ok(env),
        (None, [env]) => Ok(*env),
        (None, []) => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "a rehearsal plays the remote cycle on prod, but the configuration has no `prod` \
             environment and no other remote one treated as production. The configuration \
             defines: {}. Nothing was run.",
            envs.describe()
        ),
        (None, many) => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "a rehearsal plays the remote cycle on prod, but the configuration has no `prod` \
             environment, and its production environments are {}: pass --from latest:ENV with \
             the one to rehearse. Nothing was run.",
            { many.iter() }
                .map(|e| format!("`{}`", e.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The rehearsal's private directory, under the backup directory, with its
/// own `backups/`; removed when the returned guard drops, unless kept.
fn create_dir(project: &Project, args: &RehearseArgs) -> Result<Cleanup> {
    fsutil::create_private_dir(&project.backup_dir)?;
    crate::steps::rehearsals::remove_killed(&project.backup_dir);
    let dir = project.backup_dir.join(format!(
        ".rehearsal-{}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        std::process::id()
    ));
    fsutil::create_private_dir(&dir.join("backups"))?;
    let keep = args.keep || args.serve;
    if !keep {
        // Marks the directory as one to remove: a run killed before its
        // cleanup leaves it for the next rehearsal, or the next run that
        // takes the backup lock, status, doctor or prune, to remove once it
        // is gone. The mark says where it runs (host, machine id, boot, pid
        // namespace): its pid names no process on another machine sharing
        // the backup directory, nor in a container, nor after a restart.
        let here = crate::edge::machine::Machine::here();
        std::fs::write(dir.join(crate::steps::rehearsals::UNKEPT), here.record())?;
    }
    Ok(Cleanup { dir, keep })
}

/// Creates a SQLite file per remote database, prod's loaded from `from`,
/// and serves them on the loopback API.
fn start_server(
    project: &Project,
    remotes: &Remotes,
    from: &From,
    identity: Option<&Path>,
    dir: &Path,
    token: &str,
) -> Result<Server> {
    let mut databases = Vec::new();
    for env in &remotes.all {
        let path = dir.join(format!("{}.sqlite", env.database_name));
        // A copy of prod: this user's alone, as the loopback's own files.
        fsutil::create_private_file(&path)?;
        if env.name == remotes.prod.name {
            load_prod(project, remotes.prod, from, identity, &path)?;
        }
        databases.push(DatabaseSpec {
            uuid: env.database_id.clone(),
            name: env.database_name.clone(),
            path,
        });
    }
    Server::start(Config {
        account_id: ACCOUNT.to_owned(),
        api_token: token.to_owned(),
        databases,
        // Its Time Travel snapshots are copies of prod: kept in the
        // rehearsal's directory, they go with it, a killed run's too.
        work_dir: Some(dir.to_owned()),
    })
}

/// Serves the R2 buckets of the remote environments' offsite copies;
/// returns their names.
fn add_buckets(server: &Server, settings: &Settings, remotes: &Remotes) -> Vec<String> {
    let buckets: Vec<String> = remotes
        .all
        .iter()
        .filter_map(|e| settings.env(&e.env_name).offsite.map(|o| o.bucket))
        .collect();
    for bucket in &buckets {
        server.add_bucket(bucket);
    }
    buckets
}

fn loopback_vars(project: &Project, server: &Server, dir: &Path, token: &str) -> Vars {
    [
        ("CLOUDFLARE_API_BASE_URL", server.api_base_url()),
        ("CLOUDFLARE_API_TOKEN", token.to_owned()),
        ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT.to_owned()),
        (
            "QBTIME_BACKUP_DIR",
            dir.join("backups").display().to_string(),
        ),
        (
            "QBTIME_WRANGLER_CONFIG",
            project.config.display().to_string(),
        ),
        // The rehearsal each backup taken against the loopback records
        // (its manifest's `rehearsal`): `restore` takes it back only here.
        (
            crate::steps::rehearsals::REHEARSAL_VAR,
            d1_core::names::file_name(dir),
        ),
    ]
}

fn announce(server: &Server, remotes: &Remotes, from: &From, buckets: &[String], dir: &Path) {
    crate::say!(
        "Rehearsal: a loopback Cloudflare API on {} (127.0.0.1 only) serves {}; {} starts as {}.{}",
        server.api_base_url(),
        remotes
            .all
            .iter()
            .map(|e| e.database_name.as_str())
            .collect::<Vec<_>>()
            .join(" and "),
        remotes.prod.database_name,
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
}

/// `--serve`: prints what to export and serves until SIGINT or SIGTERM.
fn serve(vars: &Vars, remotes: &Remotes, dir: &Path) {
    // Local is no loopback's: commands on it are refused in that shell
    // (`steps::rehearsals::refuse_real_database`).
    crate::say!(
        "\nIn another shell, export these and run this tool's commands on {} (local D1 is the \
         real one, which no rehearsal serves: commands on it are refused there):",
        remotes
            .all
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    for (name, value) in vars {
        // What --serve is asked for, pasted as it is: the loopback's own
        // token, not a Cloudflare one (never redacted by its name).
        crate::data!("  export {name}={}", d1_core::wording::shell_word(value));
    }
    crate::data!("  unset {}", GLOBAL_KEY_VARS.join(" "));
    crate::out::say_as_run(&format!(
        "  cargo xtask backup {p}\n  {migrate}\n  \
         cargo xtask restore latest:{p} --to {s} --replace --yes\n  \
         cargo xtask time-travel info {p}\n\
         Press Ctrl-C to stop. {} stays; remove it when done.",
        dir.display(),
        p = remotes.prod.name,
        s = remotes.staging.name,
        migrate = crate::edge::confirm::migrate_command(remotes.prod, ""),
    ));
    while crate::edge::signals::received().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs the steps in order, each as this program with the loopback's
/// variables, and stops at the first that fails or an interrupt: a step
/// that ends non-zero once a signal was received was stopped by it
/// ([`Outcome::Interrupted`]), and none starts after one.
fn run_cycle(
    project: &Project,
    args: &RehearseArgs,
    steps: &[Step],
    vars: &Vars,
    dir: &Path,
) -> Result<Vec<StepResult>> {
    let exe = std::env::current_exe().context("cannot find this program to run its steps")?;
    let mut results = Vec::new();
    for step in steps {
        // One interrupt stops the cycle at the next step (atkAM).
        if crate::edge::signals::received().is_some() {
            break;
        }
        crate::out::say_as_run(&format!(
            "\n== rehearse: {} (cargo xtask {})",
            step.name,
            step.args.join(" ")
        ));
        let started = Instant::now();
        let mut set: Vec<(&str, &OsStr)> = vars
            .iter()
            .map(|(name, value)| (*name, OsStr::new(value)))
            .collect();
        if let Some(id) = args.identity.path() {
            set.push((stored::IDENTITY_VAR, id.as_os_str()));
        }
        // A step speaks at the rehearsal's level: under -q, nothing but
        // its errors and warnings (and no listing it prints on stdout).
        let mut step_argv = match crate::out::level() {
            crate::out::Level::Quiet => vec!["--quiet".to_owned()],
            crate::out::Level::Verbose => vec!["--verbose".to_owned()],
            crate::out::Level::Normal => Vec::new(),
        };
        step_argv.extend(step_args(step, dir)?);
        let step_run = crate::edge::child::StepRun {
            exe: &exe,
            dir: &project.config_dir,
            set: &set,
            remove: &GLOBAL_KEY_VARS,
            args: &step_argv,
        };
        let passed = crate::edge::child::run_marked(&step_run, args.json)
            .with_context(|| format!("cannot run {}", exe.display()))?;
        let outcome = match passed {
            true => Outcome::Pass,
            false if crate::edge::signals::received().is_some() => Outcome::Interrupted,
            false => Outcome::Fail,
        };
        results.push((step.name, outcome, started.elapsed().as_secs_f64()));
        if outcome != Outcome::Pass {
            break;
        }
    }
    Ok(results)
}

/// The step's arguments, with [`BOOKMARK`] replaced by the bookmark it stands for.
fn step_args(step: &Step, dir: &Path) -> Result<Vec<String>> {
    Ok(match step.args.iter().any(|a| a == BOOKMARK) {
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
    })
}

fn print_summary(from: &From, steps: &[Step], results: &[StepResult]) {
    crate::say!(
        "\nRehearsal of the remote cycle, offline ({}):",
        from.describe()
    );
    for (name, outcome, seconds) in results {
        crate::say!("  {:<22} {:<5} {seconds:6.1} s", name, outcome.word());
    }
    for step in steps.iter().skip(results.len()) {
        crate::say!("  {:<22} not run", step.name);
    }
}

/// The step an interrupt stopped the cycle at, and whether it was running
/// (else it had not started); `None` when none did.
fn interrupted_at(steps: &[Step], results: &[StepResult]) -> Option<(&'static str, bool)> {
    if let Some((name, _, _)) = results.iter().find(|r| r.1 == Outcome::Interrupted) {
        return Some((name, true));
    }
    // The cycle stops early only at a failure or an interrupt.
    (results.len() < steps.len() && results.iter().all(|r| r.1 == Outcome::Pass))
        .then(|| (steps[results.len()].name, false))
}

/// What `--json`'s `interrupted` says of an interrupt once every step had passed.
const AFTER_LAST: &str = "after the last step";

/// `--json`: the plan (the steps), each step's outcome, and the step an
/// interrupt stopped the cycle at (`interrupted`, null when none did,
/// [`AFTER_LAST`] when it came once every step had passed).
fn json_report(
    from: &From,
    steps: &[Step],
    results: &[StepResult],
    ok: bool,
    after_last: bool,
) -> serde_json::Value {
    serde_json::json!({
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
            "interrupted": interrupted_at(steps, results)
                .map(|(name, _)| name)
                .or(after_last.then_some(AFTER_LAST)),
            "steps": steps.iter().enumerate().map(|(i, s)| match results.get(i) {
                Some((_, outcome, seconds)) => serde_json::json!({
                    "name": s.name,
                    "outcome": outcome.json(),
                    "seconds": seconds,
                }),
                None => serde_json::json!({"name": s.name, "outcome": "not run"}),
            }).collect::<Vec<_>>(),
        },
    })
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
    inventory::scan(backups)?
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
            From::Backup(file) => format!("a copy of {}", d1_core::names::file_name(file)),
            From::Empty => "the migrations, with no rows".to_owned(),
        }
    }
}

fn choose_source(project: &Project, args: &RehearseArgs, prod: &Environment) -> Result<From> {
    // `latest` alone is prod's; each `latest` is of the database its
    // environment names, whatever short name its backups were taken under.
    let resolve = |word: &str| project.resolve_backup(word, Some(&prod.name), Latest::Good);
    Ok(match args.from.as_deref() {
        Some("empty") => From::Empty,
        // `latest[:ENV]`, a name that `list` prints, or a path, as every
        // command takes it.
        Some(word) => From::Backup(resolve(word)?),
        None => newest_or_empty(project, prod, || resolve("latest"))?,
    })
}

/// prod's newest verified backup; the migrations only when prod has no
/// backup at all, said as a warning (which `-q` keeps); refused when it
/// has backups and none is verified good. An unreadable directory, or any
/// other failure to find the newest, is an error, never an empty prod.
fn newest_or_empty(
    project: &Project,
    prod: &Environment,
    latest: impl FnOnce() -> Result<PathBuf>,
) -> Result<From> {
    let entries = inventory::scan(&project.backup_dir)?;
    let prods: Vec<&Manifest> = { entries.iter().map(|e| &e.manifest) }
        .filter(|m| prod.records(m))
        .collect();
    if prods.is_empty() {
        crate::warn!(
            "there are no backups of {} in {}: the rehearsal's {} starts from the migrations, \
             with no rows (`--from FILE` names a backup to start from)",
            prod.name,
            project.backup_dir.display(),
            prod.database_name
        );
        return Ok(From::Empty);
    }
    if prods
        .iter()
        .any(|m| m.verification.as_ref().is_some_and(|v| v.is_good()))
    {
        return latest().map(From::Backup);
    }
    let named: Vec<String> = { prods.iter().take(3) }
        .map(|m| match &m.verification {
            Some(v) => format!("{} ({})", m.file.name, d1_core::names::shown(&v.outcome)),
            None => format!("{} (not verified)", m.file.name),
        })
        .collect();
    crate::stop!(
        crate::exit::Exit::Refused,
        "none of the {} backups of {} is verified good (the newest: {}), so there is no \
         `latest` to rehearse from, and a rehearsal does not start from empty in its place: take \
         a new one (`cargo xtask backup {}`), verify one (`cargo xtask verify FILE`), name one \
         as it is (`--from FILE`), or rehearse on the migrations alone (`--from empty`)",
        prods.len(),
        prod.name,
        named.join(", "),
        prod.name
    )
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
            conn.execute_batch(crate::steps::migrations::WRANGLERS_MIGRATIONS_TABLE)?;
            let dir = project.config_dir.join(&prod.migrations_dir);
            for name in crate::steps::migrations::migration_files(&dir)? {
                let sql = crate::edge::fsutil::read_text(&dir.join(&name), "migration")?;
                crate::steps::migrations::run_as_d1_does(conn, &sql)
                    .with_context(|| format!("applying {name} to the rehearsal's prod"))?;
                conn.execute("INSERT INTO d1_migrations (name) VALUES (?1)", [&name])?;
            }
            Ok(())
        }
        From::Backup(file) => {
            let manifest = Manifest::for_backup(file)
                .with_context(|| {
                    format!(
                        "a rehearsal starts from a backup with a manifest; {} has none",
                        file.display()
                    )
                })
                .map_err(crate::exit::could_not_run)?;
            if manifest.mode != "full" || !manifest.tables.is_empty() {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "{} is a {} backup; a rehearsal needs a full one",
                    file.display(),
                    manifest.mode
                );
            }
            // The file must be the one its manifest describes, as for
            // verify and restore: a dump changed after its manifest was
            // written is not the backup the rehearsal names.
            if let Err(differs) = crate::edge::fsutil::check_recorded(file, &manifest.file)? {
                crate::stop!(
                    crate::exit::Exit::Refused,
                    "{} no longer matches its manifest: {differs}. A rehearsal starts from a \
                     backup as it was taken; nothing was rehearsed",
                    file.display()
                );
            }
            crate::steps::restore::warn_if_failed_verification(file, &manifest);
            let source = stored::Source::for_file(file, identity, &project.age())?;
            let options = repair::Options {
                virtual_tables: manifest.virtual_table_ddl(),
                ..Default::default()
            };
            // Hashed again as it loads: a file swapped after the check
            // above fails the load.
            let (sql_sha256, sql_bytes) = manifest.sql_digest();
            let survey = repair::survey(source.open_checked(sql_sha256, sql_bytes)?, &options)?;
            survey.ensure_repairable()?;
            let mut loader = crate::edge::local_d1::Loader::open(db)?;
            loader.load(
                source.open_checked(sql_sha256, sql_bytes)?,
                &survey,
                &options,
            )?;
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
