//! The doctor's report on everything a backup depends on (`cargo xtask
//! doctor`, and the first step of `deploy`).
//!
//! Each check is `ok`, `warn` (works, but something is off) or `fail` (a
//! backup would not work or would not be safe). The exit code is non-zero
//! when any check fails. No check prints a secret: credentials are reported
//! by where they come from, never by value.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use xshell::Shell;

use crate::config::project::Project;
use crate::edge::git::{self, Ignored};

#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

fn check(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: fix.map(str::to_owned),
    }
}

/// `doctor`'s own last line when no check failed, and credentials were
/// found (without them, [`run_saying`] says what can run instead).
const ALL_IN_PLACE: &str = "doctor: everything a backup needs is in place";

/// Runs the checks and prints the report; returns whether every check passed.
pub fn run(sh: &Shell, project: &Project, args: &DoctorArgs) -> Result<bool> {
    run_saying(sh, project, args, ALL_IN_PLACE)
}

/// [`run`], ending a report with no failure in `all_good`: `deploy`'s
/// first step says less than "everything is in place", since what its
/// backup needs beyond the doctor's checks (encryption recipients, an
/// offsite bucket, when a migration is pending) is checked after it.
pub fn run_saying(
    sh: &Shell,
    project: &Project,
    args: &DoctorArgs,
    all_good: &str,
) -> Result<bool> {
    // A killed rehearsal's copy of prod goes, as with every sweeping run.
    crate::steps::rehearsals::remove_killed(&project.backup_dir);
    let report = report(sh, project);
    if args.json {
        crate::out::json(&serde_json::to_value(&report)?);
    } else {
        // `-q` (a scheduled job): only what is wrong, and nothing at all
        // when everything is in place.
        let quiet = crate::out::level() == crate::out::Level::Quiet;
        for c in report
            .checks
            .iter()
            .filter(|c| !quiet || c.status != Status::Ok)
        {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            crate::data!("[{tag}] {:<12} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                crate::data!("       {:<12} fix: {fix}", "");
            }
        }
        // Without credentials only local backups can run: the last line
        // says so, as `status` does, not that everything is in place.
        let no_credentials =
            { report.checks.iter() }.any(|c| c.name == "auth" && c.status != Status::Ok);
        if !(quiet && report.ok) {
            crate::data!(
                "{}",
                if report.ok && no_credentials {
                    "doctor: local backups have what they need; remote ones need Cloudflare \
                     credentials (see warn above)"
                } else if report.ok {
                    all_good
                } else {
                    "doctor: something a backup needs is wrong (see FAIL above)"
                }
            );
        }
    }
    Ok(report.ok)
}

pub fn report(sh: &Shell, project: &Project) -> Report {
    let mut checks = vec![wrangler_check(project), node_check(sh, project)];
    let mut auth = auth_check();
    // Without credentials no bucket's lock is read: said in the one
    // warning of them, not again per bucket.
    let unchecked = unchecked_locks(project);
    if auth.status != Status::Ok && !unchecked.is_empty() {
        auth.detail = format!(
            "{}, and the offsite lock of {} is not checked",
            auth.detail,
            unchecked.join(", ")
        );
    }
    checks.push(auth);
    let account = account_check(project);
    let account_refused = account.is_some();
    checks.extend(account);
    checks.extend(config_checks(project));
    checks.extend(settings_check(project));
    checks.extend(identity_checks(project));
    checks.extend(backup_dir_checks(sh, project));
    checks.push(hooks_check(sh, project));
    // A token wrangler cannot send reads no lock either: said in its check.
    if !account_refused && crate::edge::wrangler::env_token_refused().is_none() {
        checks.extend(lock_checks(sh, project));
    }
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report { ok, checks }
}

fn wrangler_check(project: &Project) -> Check {
    match project.wrangler_version() {
        Some(v) if project.wrangler_installed() => check(
            "wrangler",
            Status::Ok,
            format!(
                "{v} (pinned, {})",
                project.node_bin().join("wrangler").display()
            ),
            None,
        ),
        _ => check(
            "wrangler",
            Status::Fail,
            "not installed in node_modules",
            Some("run `npm ci` in the repository root (`cargo xtask backup` does it for you)"),
        ),
    }
}

/// wrangler 4.87 and later refuse a Node older than this.
const NODE_MIN: (u32, u32) = (22, 12);

fn node_check(sh: &Shell, project: &Project) -> Check {
    let node = project.node();
    let version = crate::edge::node::version(sh, &node, &project.node_bin());
    let fix =
        "run `npm ci`: it installs the pinned Node (the npm package `node`) into node_modules";
    match version {
        Ok(v) => {
            let v = v.trim().to_owned();
            let mut parts = v
                .trim_start_matches('v')
                .split('.')
                .map(|p| p.parse::<u32>().unwrap_or(0));
            let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
            if found >= NODE_MIN {
                check("node", Status::Ok, v, None)
            } else {
                check(
                    "node",
                    Status::Fail,
                    format!(
                        "{v} is too old for the pinned wrangler, which needs {}.{} or newer",
                        NODE_MIN.0, NODE_MIN.1
                    ),
                    Some(fix),
                )
            }
        }
        Err(_) => check("node", Status::Fail, "node cannot be run", Some(fix)),
    }
}

/// Which credentials wrangler will use, by the names of the variables
/// that hold them (never their values), and each variable it does not take
/// and why: an empty `CLOUDFLARE_` name hides its older `CF_` one.
fn auth_check() -> Check {
    use crate::edge::wrangler::{EnvAuth, env_account_id, env_auth, env_notes, env_token};
    let notes: String = env_notes().iter().map(|n| format!("; {n}")).collect();
    let said = match env_account_id() {
        Some(name) => format!("; {name} is set{notes}"),
        None => {
            format!("; no account id is set, so wrangler will look the account up{notes}")
        }
    };
    // As wrangler chooses: a Global API Key before a token, each under its
    // `CLOUDFLARE_` name or, when that is not set, its older `CF_` one.
    match env_auth() {
        Some(EnvAuth::GlobalKey { key, email }) => {
            let instead = env_token().map_or_else(String::new, |t| format!(" instead of {t}"));
            let detail = format!(
                "{key} and {email} are set (a Global API Key, values not shown), which wrangler \
                 uses{instead}{said}"
            );
            check("auth", Status::Ok, detail, None)
        }
        Some(EnvAuth::Token(token)) => match crate::edge::wrangler::env_token_refused() {
            Some((refused, fix)) => {
                check("auth", Status::Fail, format!("{refused}{said}"), Some(&fix))
            }
            None => {
                let detail = format!("{token} is set (value not shown), which wrangler uses{said}");
                check("auth", Status::Ok, detail, None)
            }
        },
        None => login_check(&said, &notes),
    }
}

/// A warning when the account id in the environment is not one (32
/// lowercase hex digits): wrangler refuses it before any request, or
/// sends it (an API token pasted there), and every remote command then
/// fails where the configuration names no `account_id`. The
/// variable is named, never its value (a token pasted there by mistake
/// would be one); no bucket's lock is read with it, and that is said.
fn account_check(project: &Project) -> Option<Check> {
    let name = crate::edge::wrangler::env_account_refused()?;
    let unchecked: Vec<String> = { project.environments().ok() }
        .zip(project.settings().ok())
        .map(|(envs, settings)| {
            { envs.iter() }
                .filter_map(|env| {
                    let offsite = settings.env(&env.name).offsite?;
                    Some(format!("{}'s r2://{}", env.name, offsite.bucket))
                })
                .collect()
        })
        .unwrap_or_default();
    let locks = match unchecked.is_empty() {
        true => String::new(),
        false => format!(
            "; the offsite lock of {} is not checked",
            unchecked.join(", ")
        ),
    };
    let detail = format!(
        "{name} holds a value (not shown: an API token pasted there would be a secret) that is \
         not an account id, 32 lowercase hex digits, so every remote command fails where the \
         configuration names no account_id{locks}"
    );
    let fix = format!(
        "set {name} to the account id alone, the 32 lowercase hex digits `npx wrangler whoami` \
         prints (no quotes, spaces or line breaks), or unset it and set account_id in \
         wrangler.toml"
    );
    Some(check("account", Status::Warn, detail, Some(&fix)))
}

/// [`auth_check`] with no credentials in the environment: wrangler's own
/// login, if any. A value an empty variable hides is a warning either way.
/// `said`: the account and the `notes`.
fn login_check(said: &str, notes: &str) -> Check {
    let hidden = crate::edge::wrangler::hidden_credential();
    let fix = hidden.as_ref().map(|(_, fix)| fix.as_str());
    match (oauth_config_file(), fix) {
        (Some(file), None) => check(
            "auth",
            Status::Ok,
            format!(
                "wrangler login credentials found in {}{said}",
                file.display()
            ),
            None,
        ),
        (Some(file), Some(fix)) => check(
            "auth",
            Status::Warn,
            format!(
                "wrangler uses the `wrangler login` credentials in {}{said}",
                file.display()
            ),
            Some(fix),
        ),
        (None, fix) => check(
            "auth",
            Status::Warn,
            format!("no Cloudflare credentials: local backups work, remote ones will not{notes}"),
            Some(fix.unwrap_or(
                "set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID), or run `npx wrangler login`",
            )),
        ),
    }
}

/// Whether wrangler has credentials: in the environment, or a `wrangler
/// login`.
pub(crate) fn has_credentials() -> bool {
    crate::edge::wrangler::credentials_in_environment() || oauth_config_file().is_some()
}

/// For each environment with an offsite bucket: whether the bucket's lock
/// rules keep its copies from deletion, read with `wrangler r2 bucket lock
/// list` (only with credentials: without them nothing is asked). A missing
/// lock is a warning: backups work without one.
fn lock_checks(sh: &Shell, project: &Project) -> Vec<Check> {
    let (Ok(envs), Ok(settings)) = (project.environments(), project.settings()) else {
        return Vec::new();
    };
    let credentials = has_credentials();
    let mut checks = Vec::new();
    for env in envs.iter() {
        let Some(offsite) = settings.env(&env.name).offsite else {
            continue;
        };
        let fix = format!(
            "`cargo xtask offsite lock --env {} --dry-run` shows the rule, then the same without \
             --dry-run sets it (a lock costs the space it holds: README, \"Locks: copies a \
             leaked token cannot delete\")",
            env.name
        );
        if !credentials {
            // [`unchecked_locks`], in the auth warning.
            continue;
        }
        let listing = project
            .wrangler(sh)
            .and_then(|w| w.run_captured(&project.commands().r2_lock_list(&offsite.bucket)));
        let prefix = format!("{}/", env.name);
        checks.push(match listing {
            Err(e) => check(
                "offsite lock",
                Status::Warn,
                format!(
                    "{}: cannot read the lock rules of r2://{}: {e:#}",
                    env.name, offsite.bucket
                ),
                None,
            ),
            Ok(listing) => match crate::steps::offsite::held_for(
                &crate::steps::offsite::lock_rules(&listing),
                &prefix,
            ) {
                Some(held) => check(
                    "offsite lock",
                    Status::Ok,
                    format!(
                        "{}: r2://{}/{prefix} is locked {held}",
                        env.name, offsite.bucket
                    ),
                    None,
                ),
                None => check(
                    "offsite lock",
                    Status::Warn,
                    format!(
                        "{}: r2://{}/{prefix} is not locked: a leaked token can delete every copy",
                        env.name, offsite.bucket
                    ),
                    Some(&fix),
                ),
            },
        });
    }
    checks
}

/// The buckets whose lock [`lock_checks`] cannot read for want of
/// credentials, as `ENV's r2://BUCKET`; empty with credentials.
fn unchecked_locks(project: &Project) -> Vec<String> {
    let (Ok(envs), Ok(settings)) = (project.environments(), project.settings()) else {
        return Vec::new();
    };
    if has_credentials() {
        return Vec::new();
    }
    { envs.iter() }
        .filter_map(|env| {
            let offsite = settings.env(&env.name).offsite?;
            Some(format!("{}'s r2://{}", env.name, offsite.bucket))
        })
        .collect()
}

/// Where `wrangler login` keeps its OAuth token, if it exists.
fn oauth_config_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    [
        xdg.map(|d| d.join(".wrangler/config/default.toml")),
        home.map(|h| h.join(".wrangler/config/default.toml")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

/// `backups.toml`, read as every command reads it: one that every backup
/// would refuse (an unknown environment, a bad value) fails here too. None
/// when the environments cannot be read (the config check says why).
fn settings_check(project: &Project) -> Option<Check> {
    project.environments().ok()?;
    let path = project
        .config_dir
        .join(crate::config::settings::SETTINGS_FILE);
    Some(match project.settings() {
        Ok(_) => check(
            "settings",
            Status::Ok,
            match path.is_file() {
                true => format!("{} reads", path.display()),
                false => format!("no {}: the defaults apply", path.display()),
            },
            None,
        ),
        Err(e) => check(
            "settings",
            Status::Fail,
            format!("{e:#}"),
            Some("fix backups.toml as the message says (README, backups.toml)"),
        ),
    })
}

fn config_checks(project: &Project) -> Vec<Check> {
    match project.environments() {
        Ok(envs) => {
            let mut checks = vec![check(
                "config",
                Status::Ok,
                format!("{} defines: {}", project.config.display(), envs.describe()),
                None,
            )];
            for env in envs.iter() {
                let migrations = project.config_dir.join(&env.migrations_dir);
                let status = if env.database_id.is_empty()
                    && env.location == crate::config::environment::Location::Remote
                {
                    check(
                        "environment",
                        Status::Fail,
                        format!("{}: {} has no database_id", env.name, env.database_name),
                        Some("add database_id from `npx wrangler d1 list` to wrangler.toml"),
                    )
                } else if !migrations.is_dir() {
                    check(
                        "environment",
                        Status::Fail,
                        format!(
                            "{}: migrations_dir {} does not exist",
                            env.name,
                            migrations.display()
                        ),
                        Some("point migrations_dir at the migrations/ directory"),
                    )
                } else {
                    check(
                        "environment",
                        Status::Ok,
                        format!(
                            "{} -> {} ({}, id {})",
                            env.name, env.database_name, env.location, env.database_id
                        ),
                        None,
                    )
                };
                checks.push(status);
            }
            checks
        }
        Err(e) => vec![check(
            "config",
            Status::Fail,
            format!("{e:#}"),
            Some("fix the wrangler configuration as the message says"),
        )],
    }
}

/// With an identity in force (`QBTIME_AGE_IDENTITY`), whether it opens
/// each environment's newest encrypted backup here: verify, restore and
/// drill of those backups need it, and stop at age's "no identity
/// matched" when it is another key's. Backups need only the recipients,
/// so nothing is asked without an identity, or without such a backup.
fn identity_checks(project: &Project) -> Vec<Check> {
    let Some(identity) = std::env::var_os(crate::edge::stored::IDENTITY_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
    else {
        return Vec::new();
    };
    // The file itself first, told once: a file that is no identity opens
    // no backup, and trying each would say so of each.
    let mut checks = match identity_file_check(&identity) {
        Ok(checks) => checks,
        Err(unusable) => return vec![unusable],
    };
    let entries = match crate::edge::inventory::scan(&project.backup_dir) {
        Ok(entries) => entries,
        Err(e) => {
            return vec![check(
                "identity",
                Status::Fail,
                format!("cannot read the backups to try the identity on: {e:#}"),
                None,
            )];
        }
    };
    let mut envs: Vec<&str> = Vec::new();
    // Each environment's older backups are tried once per set of
    // recipients they are sealed to (a rotation leaves two or three): one
    // the identity does not open is told, and the key it needs.
    let mut sets: Vec<(&str, Vec<String>)> = Vec::new();
    let now = chrono::Utc::now();
    let open = |entry: &crate::edge::inventory::Entry| {
        crate::edge::stored::Source::for_file(&entry.file, Some(&identity), &project.age())
            .and_then(|source| source.head())
    };
    for entry in &entries {
        let env = entry.manifest.environment.as_str();
        // Whole backups, as `latest` takes them; not one dated after now.
        if !entry.manifest.is_age_sealed() || !entry.is_whole() || entry.manifest.created_at > now {
            continue;
        }
        let mut to = entry.manifest.sealed_to().to_vec();
        to.sort();
        if sets.iter().any(|(e, t)| *e == env && *t == to) {
            continue;
        }
        sets.push((env, to.clone()));
        let name = d1_core::names::file_name(&entry.file);
        // Past the newest: one of each other set of recipients.
        if envs.contains(&env) {
            if open(entry).is_err() {
                checks.push(older_backup_unopened(&identity, env, &name, &to));
            }
            continue;
        }
        envs.push(env);
        checks.push(newest_backup_check(&identity, env, &name, open(entry)));
    }
    checks
}

/// What is wrong with the identity file itself: one that cannot be used
/// (the error), or one others can read (a warning, which the backups'
/// opening then does not repeat).
fn identity_file_check(identity: &Path) -> Result<Vec<Check>, Check> {
    let var = crate::edge::stored::IDENTITY_VAR;
    match crate::edge::stored::identity_file_mode(identity) {
        Ok(Some(mode)) if mode & 0o077 != 0 => {
            crate::edge::stored::first_told(identity);
            Ok(vec![check(
                "identity",
                Status::Warn,
                format!(
                    "{var}: {}",
                    crate::edge::stored::shared_identity(identity, mode)
                ),
                None,
            )])
        }
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(check(
            "identity",
            Status::Warn,
            format!("{var} cannot be used, so no encrypted backup was tried: {e:#}"),
            Some(
                "point QBTIME_AGE_IDENTITY at the identity file `cargo xtask keygen --out FILE` wrote (a regular file of mode 600 holding its AGE-SECRET-KEY-1… line)",
            ),
        )),
    }
}

/// An older backup of `env`, sealed to another set of recipients, that the
/// identity does not open.
fn older_backup_unopened(identity: &Path, env: &str, name: &str, to: &[String]) -> Check {
    check(
        "identity",
        Status::Warn,
        format!(
            "{} ({}) does not open {name}, a backup of {env} kept here, sealed to {}",
            crate::edge::stored::IDENTITY_VAR,
            identity.display(),
            to.join(", ")
        ),
        Some("keep the identity of one of those recipients while such backups are kept"),
    )
}

/// Whether the identity opens `env`'s newest encrypted backup.
fn newest_backup_check<T>(identity: &Path, env: &str, name: &str, opened: Result<T>) -> Check {
    match opened {
        Ok(_) => check(
            "identity",
            Status::Ok,
            format!(
                "{} opens {env}'s newest encrypted backup, {name}",
                crate::edge::stored::IDENTITY_VAR
            ),
            None,
        ),
        // A warning: backups need only the recipients, and the one
        // holding prod's key alone may run doctor.
        Err(e) => check(
            "identity",
            Status::Warn,
            format!(
                "{} ({}) does not open {env}'s newest encrypted backup, {name}: {}",
                crate::edge::stored::IDENTITY_VAR,
                identity.display(),
                format!("{e:#}")
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Some(
                "point QBTIME_AGE_IDENTITY at the identity of a recipient the backups were sealed to (their manifests name them)",
            ),
        ),
    }
}

fn backup_dir_checks(sh: &Shell, project: &Project) -> Vec<Check> {
    let dir = &project.backup_dir;
    let mut checks = vec![ignored_check(sh, dir), tracked_check(sh, dir)];
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(dir) {
        checks.push(permissions_check(dir, &meta));
    }
    checks.extend(own_file_checks(dir));
    checks
}

/// The journals this tool appends to in the backup directory, each named
/// as its writer names it.
const JOURNALS: [(&str, &str); 4] = [
    (
        crate::steps::restores::RESTORE_JOURNAL,
        "the restore journal",
    ),
    (
        crate::edge::journals::MIGRATIONS_JOURNAL,
        crate::steps::migrations::JOURNAL_WHAT,
    ),
    (
        crate::edge::journals::TIME_TRAVEL_JOURNAL,
        "the Time Travel journal",
    ),
    (
        crate::steps::offsite::LOCK_JOURNAL,
        "the offsite lock journal",
    ),
];

/// A failure for each file this tool writes in `dir` that a command would
/// refuse, by the check that command makes and in its words: the backup
/// lock as every command that takes it ([`crate::edge::lock::BackupLock::
/// check_file`]: a symbolic link, a FIFO), each journal as its writer
/// before the operation it records ([`crate::edge::fsutil::check_room`]),
/// and each manifest prune refuses the directory for (a directory or a
/// FIFO at a manifest's name, [`crate::edge::inventory::scan_all`]). A
/// link's target is never opened. Doctor said everything was in place
/// while any of them stopped every backup, restore, migrate or prune.
fn own_file_checks(dir: &Path) -> Vec<Check> {
    let mut refused = Vec::new();
    if let Err(e) = crate::edge::lock::BackupLock::check_file(dir) {
        refused.push(format!("{e:#}"));
    }
    for (name, what) in JOURNALS {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok()
            && let Err(e) = crate::edge::fsutil::check_room(&path, what)
        {
            refused.push(format!("{e:#}"));
        }
    }
    if let Ok((_, manifests)) = crate::edge::inventory::scan_all(dir) {
        refused.extend(manifests.into_iter().map(|why| {
            format!(
                "prune refuses {} (exit 3), nothing deleted: {why}",
                dir.display()
            )
        }));
    }
    { refused.into_iter() }
        .map(|why| check("backup files", Status::Fail, why, None))
        .collect()
}

/// Whether git ignores a backup written to `dir`.
fn ignored_check(sh: &Shell, dir: &Path) -> Check {
    let probe = dir.join("backup-doctor-probe.sql");
    match git::check_ignored(sh, &probe) {
        Ok(Ignored::Yes) => check(
            "backups",
            Status::Ok,
            format!("{} is git-ignored", dir.display()),
            None,
        ),
        Ok(Ignored::NotInRepository) => check(
            "backups",
            Status::Ok,
            format!("{} is outside any git work tree", dir.display()),
            None,
        ),
        Ok(Ignored::No) => check(
            "backups",
            Status::Fail,
            format!("git would not ignore backups written to {}", dir.display()),
            Some("add the backup directory to .gitignore"),
        ),
        Err(e) => check("backups", Status::Fail, format!("{e:#}"), None),
    }
}

/// Whether git tracks a backup file in `dir`.
fn tracked_check(sh: &Shell, dir: &Path) -> Check {
    match git::tracked_backups(sh, dir) {
        Ok(files) if files.is_empty() => check(
            "tracked",
            Status::Ok,
            "no backup file is tracked by git",
            None,
        ),
        Ok(files) => check(
            "tracked",
            Status::Fail,
            format!("git tracks backup files: {}", files.join(", ")),
            Some("FILE each of them: `git rm --cached FILE`, and purge history if pushed"),
        ),
        Err(e) => check("tracked", Status::Fail, format!("{e:#}"), None),
    }
}

/// Whether this user can use `dir`, and others cannot.
#[cfg(unix)]
fn permissions_check(dir: &Path, meta: &std::fs::Metadata) -> Check {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    // The rule every backup applies: a directory others can write to is
    // refused there, so it fails here, not a warning that passes.
    // The mode is the owner's; this user must be able to list, enter
    // and write in it, as every backup does (another operator's 0700
    // directory is private, and useless to this one).
    let usable = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .ok()
        // SAFETY: a NUL-terminated path; access() only reads it.
        .is_some_and(
            |c| unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK | libc::X_OK) } == 0,
        );
    if !usable {
        check(
            "permissions",
            Status::Fail,
            format!(
                "{} is mode {mode:o}, and this user cannot read and write in it: its \
                 backups are private to the user who took them",
                dir.display()
            ),
            Some(
                "run as the user who owns the backup directory, or pass --backup-dir a directory of your own",
            ),
        )
    } else if let Err(e) = crate::edge::fsutil::refuse_shared_dir(dir) {
        check(
            "permissions",
            Status::Fail,
            format!("{e:#}"),
            Some("chmod 700 the backup directory, or pass --backup-dir a new path"),
        )
    } else if mode & 0o077 == 0 {
        check(
            "permissions",
            Status::Ok,
            format!("{} is mode {mode:o}", dir.display()),
            None,
        )
    } else {
        check(
            "permissions",
            Status::Warn,
            format!(
                "{} is mode {mode:o}: other users can list it",
                dir.display()
            ),
            Some(
                "chmod 700 the backup directory (the tool never changes the mode of a directory it did not create)",
            ),
        )
    }
}

fn hooks_check(sh: &Shell, project: &Project) -> Check {
    let top = match git::work_tree(sh, &project.config_dir) {
        Ok(Some(top)) => top,
        Ok(None) => return check("hooks", Status::Warn, "not a git repository", None),
        Err(e) => return check("hooks", Status::Fail, format!("{e:#}"), None),
    };
    let expected = crate::edge::git::HOOKS_DIR;
    // As git reads it: the setting it reads first, `~` expanded, however
    // our own directory is spelled.
    let runs = match git::hooks_dir(sh, &top) {
        Some((dir, _)) if git::is_ours(&top, &dir) => None,
        Some((dir, whence)) => Some(format!(
            "git runs hooks from {} ({whence})",
            d1_core::names::shown(&dir.to_string_lossy())
        )),
        None => Some("git runs no hooks: core.hooksPath is set empty".to_owned()),
    };
    // Ours, but one of them a link out of the checkout (set by hand:
    // `hooks install` refuses it): git runs a file of no commit.
    if runs.is_none() {
        match git::tracked_hooks(&top) {
            Ok(Ok(_)) => {}
            Ok(Err(problem)) => {
                return check("hooks", Status::Fail, problem.what(), Some(&problem.fix()));
            }
            Err(e) => return check("hooks", Status::Fail, format!("{e:#}"), None),
        }
    }
    match runs {
        None => check(
            "hooks",
            Status::Ok,
            format!("git runs the hooks in {expected}: commits that add a backup are refused"),
            None,
        ),
        Some(runs) => check(
            "hooks",
            Status::Warn,
            format!("the pre-commit hook is not installed: {runs}"),
            Some("run `cargo xtask hooks install`"),
        ),
    }
}
