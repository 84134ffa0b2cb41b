//! `cargo xtask drill`: the runbook's quarterly restore rehearsal.
//!
//! 1. Take the newest prod backup that passed verification, and verify it
//!    again now.
//! 2. Restore it into staging (or local D1 with `--to local`) through every
//!    guard of `restore --replace`, with the target's safety backup first.
//! 3. Check the rows on the target against the backup's manifest (the
//!    restore does), and the data-encryption key.
//! 4. When `QBTIME_APP_URL` and `QBTIME_DEVOPS_TOKEN` are set, ask the app
//!    to verify the audit chain, check a signed-in session, and run a report
//!    smoke check.
//! 5. Append the outcome to the tracked drill log, `docs/restore-drills.md`:
//!    the date, the backup, its sha256, pass or fail per check, and the
//!    durations. Nothing else: no rows, no names, no URLs, no tokens.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use xshell::Shell;

use crate::config::environment::{Environment, Environments};
use crate::config::project::Project;
use crate::config::settings::SETTINGS_FILE;
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::inventory;
use crate::edge::journals::DRILL_LOG;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::stored;
use crate::steps::restore::{self, KeyCheck, RestoreArgs};
use d1_core::app::DrillEndpoints;
use d1_core::manifest::{self, Manifest};
use d1_core::names::file_name;

const LOG_HEADER: &str = "# Restore drills\n\n\
Appended by `cargo xtask drill` (see README.md, `cargo xtask drill`). One row per drill: when, the \
backup rehearsed and its sha256, and pass, fail or skip for each check. It records no rows, names, \
URLs or tokens.\n\n\
| date (UTC) | from → to | backup | sha256 | verify | restore | rows | key | audit chain | sign-in | report | result | seconds |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

/// The checks of a [`Record`], in its order (the log's columns).
const CHECK_NAMES: [&str; 7] = [
    "verify",
    "restore",
    "rows",
    "key",
    "audit chain",
    "sign-in",
    "report",
];
/// The checks made through the app.
const APP_CHECKS: [&str; 3] = ["audit chain", "sign-in", "report"];

#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// Where to rehearse: staging (the runbook's) or local.
    #[arg(long = "to", value_name = "ENV", default_value = "staging")]
    pub to: String,
    /// The environment whose backup is rehearsed [default: prod; without a `prod` environment,
    /// the drill names the production environment to pass instead].
    #[arg(long, value_name = "ENV")]
    pub from: Option<String>,
    /// Rehearse this backup (a name that `list` prints, a path or `latest:ENV`) instead of the newest good one.
    #[arg(long, value_name = "BACKUP")]
    pub backup: Option<String>,
    /// Go on although the target's data-encryption key differs from the backup's.
    #[arg(long)]
    pub accept_key_change: bool,
    /// As restore's: install this trigger though no migration creates it
    /// (repeat for each); the drill's restore refuses it otherwise.
    #[arg(long = "allow-trigger", value_name = "NAME")]
    pub allow_trigger: Vec<String>,
    /// As restore's: rehearse the restore of a backup that lacks this
    /// trigger, which its migrations create (repeat for each); the drill's
    /// restore refuses it otherwise, and a drill that passed with it says so.
    #[arg(long = "allow-missing-trigger", value_name = "NAME")]
    pub allow_missing_trigger: Vec<String>,
    /// As restore's: rehearse the restore of a backup that defines this
    /// table or index otherwise than its migrations do, or lacks it (repeat
    /// for each); the drill's restore refuses it otherwise.
    #[arg(long = "allow-schema-change", value_name = "NAME")]
    pub allow_schema_change: Vec<String>,
    #[command(flatten)]
    pub identity: stored::IdentityArg,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        }
    }
}

/// One drill's results, in the log's column order.
#[derive(Debug, Clone)]
pub struct Record {
    pub date: chrono::DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub backup: String,
    pub sha256: String,
    /// verify, restore, rows, key, audit chain, sign-in, report.
    pub checks: [Outcome; 7],
    pub seconds: Vec<(&'static str, f64)>,
}

impl Record {
    pub fn passed(&self) -> bool {
        !self.checks.contains(&Outcome::Fail)
    }

    /// The log's table row.
    pub fn row(&self) -> String {
        let mut row = format!(
            "| {} | {} → {} | {} | {} |",
            self.date.format("%Y-%m-%d %H:%M"),
            self.from,
            self.to,
            self.backup,
            self.sha256
        );
        for c in self.checks {
            let _ = write!(row, " {} |", c.word());
        }
        let seconds: Vec<String> = self
            .seconds
            .iter()
            .map(|(what, s)| format!("{what} {s:.1}"))
            .collect();
        let _ = write!(
            row,
            " {} | {} |",
            if self.passed() { "PASS" } else { "FAIL" },
            seconds.join(", ")
        );
        row
    }
}

/// Appends a row to the drill log, creating it with its header (decided
/// under the append's lock: two drills at once write one header).
pub fn append_log(path: &Path, record: &Record) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = format!("{}\n", record.row());
    crate::edge::fsutil::append_record(path, LOG_HEADER, &text, "the drill log")
}

/// Refuses (exit 3) a drill in a shell pointed at a rehearsal
/// (`steps::rehearsals::holding`): into the real local D1, or a remote
/// database the exports left reaching Cloudflare, as restore refuses it;
/// and any other but a dry run, which would record a drill of the
/// rehearsal's loopback in the real drill log, which `status` reads.
fn refuse_in_a_rehearsal(project: &Project, drill: &Drill, dry_run: bool) -> Result<()> {
    let backups = &project.backup_dir;
    crate::steps::rehearsals::refuse_real_database(backups, drill.target, "drill into")?;
    let Some(rehearsal) = crate::steps::rehearsals::holding(backups).filter(|_| !dry_run) else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to run a drill in the rehearsal {rehearsal} (this shell's backup directory {} \
         is its): it would record a drill of the rehearsal's loopback in {DRILL_LOG}, the real \
         drill log, which `cargo xtask status` reads as this project's last drill. Nothing was \
         done. `--dry-run` shows its plan here; run the drill in a shell without the \
         rehearsal's exports (`{}`).",
        d1_core::names::shown_path(backups),
        crate::steps::rehearsals::UNSET_EXPORTS
    )
}

pub fn run(sh: &Shell, project: &Project, args: &DrillArgs) -> Result<()> {
    let envs = project.environments()?;
    let mut drill = Drill::prepare(project, &envs, args)?;
    refuse_in_a_rehearsal(project, &drill, args.dry_run)?;
    // The guards of the backup directory the restore's safety backup goes
    // to, before anything is logged: a machine's problem, not a failed
    // rehearsal of the backup.
    crate::edge::fsutil::refuse_shared_dir(&project.backup_dir)?;
    // So is a link in the local D1 state of a local target, symbolic or
    // hard (exit 3): the restore would refuse it, and the log blame the
    // backup for the checkout's state.
    crate::edge::local_d1::refuse_linked_env(&project.config_dir, drill.target)?;
    // A drill its log has no room to record is not run (a dry run says so),
    // nor one whose log would go out of the checkout.
    let log = project.config_dir.join(DRILL_LOG);
    crate::edge::fsutil::refuse_dir_out_of_checkout(&log, &project.root, "the drill log")?;
    crate::edge::fsutil::check_room(&log, "the drill log")?;
    if !args.dry_run {
        let lock = project.backup_dir.join(crate::edge::lock::LOCK_FILE);
        crate::steps::backup::refuse_unless_ignored(sh, project, &[lock], "drill")?;
    }
    drill.refuse_edited_migrations(project)?;
    drill.print_plan(project);
    if args.dry_run {
        crate::say!("The restore's own plan follows.");
        restore::run(sh, project, &drill.restore_args)?;
        return Ok(());
    }
    drill.confirm(args)?;

    let mut rehearsal = Rehearsal::start(&drill);
    if rehearsal.verify(project, &drill)? {
        rehearsal.restore(sh, project, &drill)?;
    }
    if rehearsal.record.checks[1] == Outcome::Pass
        && let Some(app) = &drill.app
    {
        rehearsal.app(project, app);
    }
    // An interrupt during a check (a verify, an app call stopped by it)
    // is no failed drill: none is logged, as for one during the restore.
    crate::edge::signals::check()?;
    rehearsal.log(project)
}

/// A drill, resolved and checked before anything runs: where from and to,
/// the backup and its manifest, the app checks, and the restore it runs.
struct Drill<'a> {
    target: &'a Environment,
    from: &'a Environment,
    app: Option<AppChecks>,
    file: PathBuf,
    manifest_path: PathBuf,
    manifest: Manifest,
    source: stored::Source,
    restore_args: RestoreArgs,
}

/// `e`, a drill's backup not found, with the drill that can run on a
/// machine with no Cloudflare credentials (`doctor`'s rule) named, when the
/// newest backup of a remote environment was asked for: the backup the
/// error advises cannot be taken there. The local environment is named as
/// the configuration names it (`local`, or the top level's `APP_ENV`);
/// with none, no local drill is advised.
fn with_local_drill_named(
    e: anyhow::Error,
    (from, envs): (&Environment, &Environments),
    newest: bool,
) -> anyhow::Error {
    let remote = from.location == crate::config::environment::Location::Remote;
    if !(newest && remote) || crate::steps::doctor::has_credentials() {
        return e;
    }
    let local = { envs.iter() }
        .find(|e| e.location == crate::config::environment::Location::Local)
        .map(|local| {
            format!(
                "; `cargo xtask drill --to {0} --from {0} --yes` rehearses a backup of the local \
                 database here",
                local.name
            )
        });
    // One message, in place of `e`'s: its advice (`cargo xtask backup
    // prod`) cannot run here. Its exit code is kept.
    let exit = crate::exit::Exit::of(&e).unwrap_or(crate::exit::Exit::CouldNotRun);
    exit.error(anyhow::anyhow!(
        "no backup of {} to rehearse, and no Cloudflare credentials were found on this machine \
         to take one (set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID, or run `npx wrangler \
         login`){}",
        from.name,
        local.unwrap_or_default()
    ))
}

impl<'a> Drill<'a> {
    /// Refuses (exit 3) before anything is logged a drill of a backup
    /// whose applied migrations have been edited here since, by its
    /// manifest's record or this machine's, as its restore would refuse it
    /// ([`restore::guard_applied_migrations_unchanged`]): the checkout is
    /// at fault, not the backup, and a drill logged FAIL would blame it (a
    /// forged manifest used to get a PASS logged, LW).
    fn refuse_edited_migrations(&self, project: &Project) -> Result<()> {
        let dir = project.config_dir.join(&self.target.migrations_dir);
        let machine = crate::steps::migrations::machine_records(
            project,
            &crate::edge::inventory::scan(&project.backup_dir)?,
            &[self.target, self.from],
            (&self.file, &dir),
        );
        restore::guard_applied_migrations_unchanged(
            (&self.file, Some(&self.manifest)),
            (&dir, &machine),
            self.restore_args.mode(),
        )
    }

    fn prepare(project: &Project, envs: &'a Environments, args: &DrillArgs) -> Result<Self> {
        let target = envs.resolve(&args.to)?;
        let from = match args.from.as_deref() {
            Some(word) => envs.resolve(word)?,
            None => default_from(envs)?,
        };
        if target.is_production() {
            crate::stop!(
                crate::exit::Exit::Refused,
                "a drill restores into staging or local D1, never into production ({}); \
                 use `cargo xtask restore` for a real restore. Nothing was done.",
                target.database_name
            );
        }
        let app = AppChecks::from_env(project.settings()?.app.drill.as_ref())
            .map_err(crate::exit::could_not_run)?;
        let file = project
            .resolve_backup(
                args.backup.as_deref().unwrap_or("latest"),
                Some(&from.name),
                inventory::Latest::Good,
            )
            .map_err(|e| with_local_drill_named(e, (from, envs), args.backup.is_none()))?;
        let manifest_path = manifest::manifest_path(&file);
        let manifest = Manifest::for_backup(&file).with_context(|| {
            format!(
                "a drill rehearses a backup with a manifest; {} has none",
                file.display()
            )
        })?;
        // The newest backup is rehearsed as `restore latest` would restore
        // it, a safety backup too (it is the environment's newest whole
        // backup); the drill says so as restore does.
        let word = { args.backup.clone() }.unwrap_or_else(|| format!("latest:{}", from.name));
        restore::warn_if_latest_is_a_safety_backup(
            &word,
            &manifest,
            "To rehearse another backup, pass --backup with its file.",
        );
        if !from.records(&manifest) {
            crate::stop!(
                crate::exit::Exit::Refused,
                "{} is a backup of {}, not {}; pass --from {}",
                file.display(),
                manifest.environment,
                from.name,
                manifest.environment
            );
        }
        // An encrypted backup without its identity cannot be rehearsed at all:
        // refuse before anything runs, rather than log a failed drill.
        let source = stored::Source::for_file(&file, args.identity.path(), &project.age())?;
        // And one whose identity is none of its recipients' keys: that is
        // no failed verification of the backup, and is not logged. A file
        // the key of a recorded recipient does not open is the backup's
        // fault (sealed to others, or damaged): the drill runs, and its
        // verify fails it, as it fails a damaged plain backup.
        if let Err(e) = source.head()
            && e.downcast_ref::<stored::SealedToOthers>().is_none()
        {
            return Err(e);
        }
        let mut restore_args = restore_args(&file, target, args);
        restore_args.app_checked_next = app.is_some();
        Ok(Drill {
            target,
            from,
            app,
            file,
            manifest_path,
            manifest,
            source,
            restore_args,
        })
    }

    fn print_plan(&self, project: &Project) {
        let Drill {
            target,
            file,
            manifest,
            app,
            ..
        } = self;
        crate::say!("Restore drill plan");
        crate::say!("  {}", project.plan_line());
        crate::say!(
            "  backup       {} ({} backup of {})",
            file.display(),
            manifest.mode,
            manifest.environment
        );
        crate::say!("  sha256       {}", manifest.file.sha256);
        crate::say!("  1. verify    the backup again, under D1's rules");
        crate::say!(
            "  2. restore   into {} ({}) with --replace, and a safety backup of it first if it holds anything",
            target.database_name,
            target.name
        );
        crate::say!(
            "  3. rows      on {} against the manifest; the encryption key",
            target.name
        );
        match app {
            // The host is named: a QBTIME_APP_URL left set from another
            // shell (prod's app) would otherwise pass a staging drill.
            Some(app) => crate::say!(
                "  4. app       at {}: GET {}, GET {}, POST {} with the DevOps token",
                app.base,
                app.audit_path,
                app.signin_path,
                app.report_path
            ),
            None => crate::say!(
                "  4. app       skipped: set QBTIME_APP_URL and QBTIME_DEVOPS_TOKEN to check the audit \
                 chain, sign-in and a report through the app"
            ),
        }
        crate::say!(
            "  5. log       {}",
            project.config_dir.join(DRILL_LOG).display()
        );
    }

    /// The drill that rehearses this one's restore with `flags` too (the
    /// trigger and `--allow-schema-change` flags its restore was refused
    /// without, [`restore::TriggersRefused`]),
    /// of this backup by its path, with the flags this drill was given:
    /// restore's advice (`restore with --allow-missing-trigger NAME`) is
    /// no command a drill runs. A name given that names nothing in the
    /// backup is left out, as restore leaves it out of its own; a dump to
    /// fix first is said so (MT).
    fn advice_with(&self, refused: &restore::TriggersRefused) -> String {
        let mut args = self.restore_args.clone();
        let untaken = &refused.unsettled.untaken;
        let taken = |option: &'static str| {
            move |n: &String| !untaken.iter().any(|(o, u)| *o == option && u == n)
        };
        args.allow_trigger.retain(taken("--allow-trigger"));
        args.allow_schema_change
            .retain(taken("--allow-schema-change"));
        let mut words = format!(
            "cargo xtask drill --to {} --from {} --backup {}",
            self.target.name,
            self.from.name,
            d1_core::wording::shell_word(&self.file.display().to_string())
        );
        words += &crate::steps::migrations::flags("--allow-trigger", &args.allow_trigger);
        words += &crate::steps::migrations::flags(
            "--allow-missing-trigger",
            &args.allow_missing_trigger,
        );
        words +=
            &crate::steps::migrations::flags("--allow-schema-change", &args.allow_schema_change);
        words += &refused.flags;
        if args.accept_key_change {
            words += " --accept-key-change";
        }
        if let Some(id) = args.identity.path() {
            words += &format!(
                " --identity {}",
                d1_core::wording::shell_word(&id.display().to_string())
            );
        }
        match refused.unsettled.dump_first {
            true => format!(
                "No flag restores this backup as it is (see above); once its dump is fixed, \
                 rehearse its restore: `{words} --yes`"
            ),
            false => format!(
                "If this backup is meant to be restored as it is, rehearse that restore: \
                 `{words} --yes`"
            ),
        }
    }

    /// Asked before anything runs, so that a drill nobody confirmed is
    /// neither run nor logged; the restore then takes it as given.
    fn confirm(&mut self, args: &DrillArgs) -> Result<()> {
        confirm::require(
            self.target,
            &args.confirm,
            "run a restore drill (replacing everything) into",
        )?;
        self.restore_args.confirm = ConfirmArgs {
            confirm: Some(self.target.database_name.clone()),
            yes: false,
        };
        Ok(())
    }
}

/// The environment a drill without `--from` rehearses: `prod`. A
/// configuration without one (prod's short name changed, say to `live`)
/// is refused, naming the production environments to pass as `--from`:
/// the drill does not pick one of them by itself.
fn default_from(envs: &Environments) -> Result<&Environment> {
    if envs.defines("prod") {
        return envs.resolve("prod");
    }
    let production = envs.production_names();
    let way = match production.as_slice() {
        [] => "pass --from ENV, the environment whose backup to rehearse".to_owned(),
        [one] => format!("its production environment is `{one}`: pass --from {one}"),
        many => format!(
            "its production environments are {}: pass --from with the one to rehearse",
            many.iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "a drill without --from rehearses prod's backup, but the configuration has no `prod` \
         environment; {way}. The configuration defines: {}. Nothing was run.",
        envs.describe()
    )
}

/// The restore a drill runs: `restore --replace` of the backup into the target.
fn restore_args(file: &Path, target: &Environment, args: &DrillArgs) -> RestoreArgs {
    RestoreArgs {
        json: false,
        source: file.display().to_string(),
        to: target.name.clone(),
        location: None,
        account_of: None,
        into_empty: false,
        replace: true,
        clean: false,
        no_manifest: false,
        source_env: None,
        previous_database_id: None,
        accept_key_change: args.accept_key_change,
        allow_trigger: args.allow_trigger.clone(),
        allow_missing_trigger: args.allow_missing_trigger.clone(),
        allow_schema_change: args.allow_schema_change.clone(),
        partial: false,
        via_wrangler: false,
        identity: args.identity.clone(),
        dry_run: args.dry_run,
        confirm: args.confirm.clone(),
        app_checked_next: false,
    }
}

/// A drill under way: its record so far, and why it failed.
struct Rehearsal {
    started: Instant,
    record: Record,
    failures: Vec<String>,
    /// Why the key check did not run, when it did not.
    key_skipped: Option<String>,
    /// The drill to run when its restore was refused for the backup's
    /// triggers, which restore's flags let through on purpose.
    advice: Option<String>,
    /// The migrations' triggers the backup lacked, which the restore went
    /// without as `--allow-missing-trigger` named them.
    without_triggers: Vec<String>,
}

impl Rehearsal {
    fn start(drill: &Drill) -> Rehearsal {
        let started = Instant::now();
        let record = Record {
            date: Utc::now(),
            from: drill.from.name.clone(),
            to: drill.target.name.clone(),
            backup: file_name(&drill.file),
            sha256: drill.manifest.file.sha256.clone(),
            checks: [Outcome::Skip; 7],
            seconds: Vec::new(),
        };
        Rehearsal {
            started,
            record,
            failures: Vec::new(),
            key_skipped: None,
            advice: None,
            without_triggers: Vec::new(),
        }
    }

    /// Check 1: the backup verified again now, the result recorded in its
    /// manifest. Returns whether it passed.
    fn verify(&mut self, project: &Project, drill: &Drill) -> Result<bool> {
        let t = Instant::now();
        let migrations_dir = project.config_dir.join(&drill.from.migrations_dir);
        let applied = crate::steps::migrations::records_judging(
            project,
            &crate::edge::inventory::scan(&project.backup_dir)?,
            (Some(drill.from), drill.from),
            (&drill.file, &migrations_dir),
        );
        let report = crate::steps::verify::verify_shown(
            format!("verifying {}", file_name(&drill.file)),
            &drill.file,
            &drill.source,
            Some(&drill.manifest),
            &crate::steps::verify::Workspace {
                migrations_dir: &migrations_dir,
                app: &project.settings()?.app,
                scratch_dir: &project.backup_dir,
                applied: &applied,
                migrations_optional: false,
            },
        );
        self.record
            .seconds
            .push(("verify", t.elapsed().as_secs_f64()));
        let verified = match report {
            Ok(report) => {
                // The restore next says the schema's difference, as it
                // refuses it or restores it as `--allow-schema-change`
                // admits it; a verify that failed has no restore after
                // it, so it says it itself (rvBQ 3: it was never said).
                let restore_says = match report.good {
                    true => &["schema"][..],
                    false => &[],
                };
                report.print_but(false, restore_says);
                drill
                    .manifest
                    .clone()
                    .record_verification(&drill.manifest_path, report.verification())?;
                if !report.good {
                    self.failures
                        .push(format!("verify: {}", report.failed().join("; ")));
                }
                report.good
            }
            Err(e) => {
                self.failures.push(format!("verify could not run: {e:#}"));
                false
            }
        };
        self.record.checks[0] = if verified {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        Ok(verified)
    }

    /// Checks 2 to 4: the restore, the rows it restored against the
    /// manifest, and the data-encryption key.
    /// `Err` when the restore did not run at all (another run holds the
    /// backup lock, or an interrupt): that is no drill, and none is logged.
    fn restore(&mut self, sh: &Shell, project: &Project, drill: &Drill) -> Result<()> {
        let t = Instant::now();
        let restored = restore::run(sh, project, &drill.restore_args);
        if let Err(e) = &restored {
            // The verify before it has recorded its verdict: not nothing.
            if let Some(held) = crate::exit::find::<crate::edge::lock::HeldElsewhere>(e) {
                return Err(held.saying_left(format!(
                    "Nothing was restored and no drill was logged; its verify recorded its \
                     verdict in {}.",
                    drill.manifest_path.display()
                )));
            }
            if crate::exit::Exit::of(e) == Some(crate::exit::Exit::LockHeld)
                || crate::edge::signals::received().is_some()
            {
                return restored.map(|_| ());
            }
        }
        self.record
            .seconds
            .push(("restore", t.elapsed().as_secs_f64()));
        match restored {
            Ok(Some(r)) => {
                // The restore has said where its safety backup is.
                self.record.checks[1] = Outcome::Pass;
                self.without_triggers = r.without_triggers.clone();
                let wrong: Vec<String> = r
                    .counts
                    .iter()
                    .filter(|(_, want, got)| want != got)
                    .map(|(t, want, got)| format!("{t}: {want} in the backup, {got} restored"))
                    .collect();
                self.record.checks[2] = if wrong.is_empty() {
                    Outcome::Pass
                } else {
                    self.failures.push(format!("rows: {}", wrong.join("; ")));
                    Outcome::Fail
                };
                self.key_skipped = match r.key_check {
                    KeyCheck::Same(_) | KeyCheck::AcceptedChange { .. } => None,
                    KeyCheck::NoRule => Some(
                        "the key check needs the app's key rule, [app.encryption_key] in \
                             backups.toml"
                            .to_owned(),
                    ),
                    KeyCheck::TargetHasNone => Some(format!(
                        "the key check had nothing to compare: {} records no data-encryption key \
                         in force",
                        drill.target.name
                    )),
                    KeyCheck::BackupHasNone => Some(
                        "the key check had nothing to compare: the backup records no \
                         data-encryption key"
                            .to_owned(),
                    ),
                };
                // The operator accepted the target's own key (staging's is
                // its own): the restore said so, and it passes.
                self.record.checks[3] = if self.key_skipped.is_some() {
                    Outcome::Skip
                } else {
                    Outcome::Pass
                };
            }
            Ok(None) => unreachable!("not a dry run"),
            Err(e) => self.restore_failed(drill, &e),
        }
        Ok(())
    }

    /// The restore refused (a guard) or failed: either way the rehearsal
    /// failed; a refusal for the key is the key check's, and one for the
    /// backup's triggers gets the drill that rehearses it on purpose.
    fn restore_failed(&mut self, drill: &Drill, e: &anyhow::Error) {
        let refused = crate::exit::find::<restore::TriggersRefused>(e);
        let key = refused.is_some_and(|r| r.unsettled.key);
        if crate::exit::find::<restore::KeyRefusal>(e).is_some() || key {
            self.record.checks[3] = Outcome::Fail;
        }
        // Restore's refusal without the restore it prints: the drill
        // prints its own (`advice_with`), the same flags.
        match refused {
            Some(refused) => {
                self.advice = Some(drill.advice_with(refused));
                self.failures.push(format!("restore: {}", refused.said));
            }
            None => self.failures.push(format!("restore: {e:#}")),
        }
        self.record.checks[1] = Outcome::Fail;
    }

    /// Checks 5 to 7: the app's audit chain, sign-in and report.
    fn app(&mut self, project: &Project, app: &AppChecks) {
        let t = Instant::now();
        for (i, (name, result)) in app.run(project).into_iter().enumerate() {
            if crate::edge::signals::received().is_some() {
                // Stopped, not failed: the drill logs nothing (`run`).
                return;
            }
            self.record.checks[4 + i] = match result {
                Ok(detail) => {
                    crate::say!("  [pass] app {name}: {detail}");
                    Outcome::Pass
                }
                Err(e) => {
                    crate::say!("  [FAIL] app {name}: {e}");
                    self.failures.push(format!("{name}: {e}"));
                    Outcome::Fail
                }
            };
        }
        self.record.seconds.push(("app", t.elapsed().as_secs_f64()));
    }

    /// Appends the outcome to the drill log, then fails if any check failed.
    fn log(mut self, project: &Project) -> Result<()> {
        self.record
            .seconds
            .push(("total", self.started.elapsed().as_secs_f64()));
        let log = project.config_dir.join(DRILL_LOG);
        if let Err(e) = append_log(&log, &self.record) {
            return Err(self.not_recorded(&log, &e));
        }
        crate::say!(
            "Drill recorded in {}:\n{}",
            log.display(),
            self.record.row()
        );
        if !self.failures.is_empty() {
            bail!(
                "the restore drill FAILED:\n  {}{}",
                self.failures.join("\n  "),
                { self.advice.iter() }
                    .map(|a| format!("\n{a}"))
                    .collect::<String>()
            );
        }
        if !self.without_triggers.is_empty() {
            // A pass of a restore let through on purpose: every run of it
            // says so, as the restore's own warning does.
            crate::warn!(
                "the restore drill passed as a restore without triggers its migrations create, \
                 as --allow-missing-trigger names them: {}; restored, the database is without \
                 them until they are made again",
                crate::steps::migrations::trigger_names(&self.without_triggers)
            );
        }
        let skipped: Vec<&str> = CHECK_NAMES
            .iter()
            .zip(&self.record.checks)
            .filter(|(_, c)| **c == Outcome::Skip)
            .map(|(name, _)| *name)
            .collect();
        if !skipped.is_empty() {
            // A pass with checks that did not run is a partial drill; a
            // scheduled one must say so at every verbosity, naming them.
            // Each skipped check with why it did not run.
            let mut why: Vec<String> = Vec::new();
            if self.record.checks[3] == Outcome::Skip
                && let Some(key) = &self.key_skipped
            {
                why.push(key.clone());
            }
            if skipped.iter().any(|n| APP_CHECKS.contains(n)) {
                why.push(
                    "the runbook's audit, sign-in and report checks need QBTIME_APP_URL and \
                     QBTIME_DEVOPS_TOKEN"
                        .to_owned(),
                );
            }
            crate::warn!(
                "the restore drill passed, but {} of its {} checks did not run ({}; `skip` in \
                 the record){}",
                skipped.len(),
                self.record.checks.len(),
                skipped.join(", "),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.join("; "))
                }
            );
        }
        crate::say!("The restore drill passed. Commit {DRILL_LOG} to keep the record.");
        Ok(())
    }

    /// The error of a drill that ran and whose row could not be appended
    /// to `log` (`e`): how it went, why, and the row to append by hand.
    /// Exit 1, whether it passed or not: its record is missing.
    fn not_recorded(&self, log: &Path, e: &anyhow::Error) -> anyhow::Error {
        let went = match self.failures.is_empty() {
            true => "PASSED".to_owned(),
            false => format!("FAILED ({})", self.failures.join("; ")),
        };
        crate::exit::Exit::Failure.error(anyhow::anyhow!(
            "the restore drill ran and {went}, but it could not be recorded: {e:#}\nIts row, to \
             append to {} by hand once that is fixed (then commit it):\n{}",
            log.display(),
            self.record.row()
        ))
    }
}

/// The app's own checks, called over HTTP(S) with a DevOps token.
#[derive(Debug, Clone)]
pub struct AppChecks {
    base: String,
    token: String,
    audit_path: String,
    signin_path: String,
    report_path: String,
}

impl AppChecks {
    /// From `QBTIME_APP_URL` and `QBTIME_DEVOPS_TOKEN` (both or neither), at
    /// the endpoints the app declares in `backups.toml`'s `[app.drill]`;
    /// `QBTIME_DRILL_SIGNIN_PATH` and `QBTIME_DRILL_REPORT_PATH` override two.
    pub fn from_env(endpoints: Option<&DrillEndpoints>) -> Result<Option<AppChecks>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (var("QBTIME_APP_URL"), var("QBTIME_DEVOPS_TOKEN")) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) if endpoints.is_none() => bail!(
                "QBTIME_APP_URL is set, but the app declares no drill endpoints: add an \
                 [app.drill] table (audit, sign_in, report) to {SETTINGS_FILE}. Nothing was done."
            ),
            (Some(base), Some(token)) => {
                let endpoints = endpoints.expect("checked above");
                for name in ["QBTIME_DRILL_SIGNIN_PATH", "QBTIME_DRILL_REPORT_PATH"] {
                    if let Some(path) = var(name) {
                        d1_core::app::check_endpoint(&path).context(name)?;
                    }
                }
                refuse_credentials_in_url(&base)?;
                if !(base.starts_with("https://") || base.starts_with("http://")) {
                    bail!(
                        "QBTIME_APP_URL must start with https:// (or http:// for a local app); got {base:?}"
                    );
                }
                refuse_plain_http_off_this_machine(&base)?;
                Ok(Some(AppChecks {
                    base: base.trim_end_matches('/').to_owned(),
                    token,
                    audit_path: endpoints.audit.clone(),
                    signin_path: var("QBTIME_DRILL_SIGNIN_PATH")
                        .unwrap_or_else(|| endpoints.sign_in.clone()),
                    report_path: var("QBTIME_DRILL_REPORT_PATH")
                        .unwrap_or_else(|| endpoints.report.clone()),
                }))
            }
            (Some(_), None) => bail!(
                "QBTIME_APP_URL is set but QBTIME_DEVOPS_TOKEN is not: the app checks need both. \
                 Nothing was done."
            ),
            (None, Some(_)) => bail!(
                "QBTIME_DEVOPS_TOKEN is set but QBTIME_APP_URL is not: the app checks need both. \
                 Nothing was done."
            ),
        }
    }

    /// The audit chain, sign-in and report checks, in the log's order.
    /// After an interrupt the rest do not run (the drill logs nothing).
    pub fn run(&self, project: &Project) -> Vec<(&'static str, Result<String, String>)> {
        vec![
            ("audit chain", self.call(project, "GET", &self.audit_path)),
            ("sign-in", self.call(project, "GET", &self.signin_path)),
            ("report", self.call(project, "POST", &self.report_path)),
        ]
    }

    /// Passes on a 2xx whose whole body is a JSON object that says
    /// `"ok": true` or `"valid": true`, and neither as anything else (see
    /// [`judge`]). Never echoes the token; quotes at most the body's
    /// `error` or `message`.
    fn call(&self, project: &Project, method: &str, path: &str) -> Result<String, String> {
        if crate::edge::signals::received().is_some() {
            return Err(format!("{method} {path}: not run: interrupted"));
        }
        let url = format!("{}{path}", self.base);
        let output = crate::edge::child::app_check(
            &project.node(),
            &project.tool_root.join("scripts/app-check.mjs"),
            method,
            &url,
            &self.token,
        )
        .map_err(|e| format!("{method} {path}: cannot run node: {e}"))?;
        // The app may echo the Authorization header it was sent: every
        // string in its reply is redacted before anything quotes it.
        crate::redact::hold(&self.token);
        let redact = |text: &str| crate::redact::text(text);
        let mut reply: serde_json::Value =
            serde_json::from_slice(&output.stdout).map_err(|_| {
                format!(
                    "{method} {path}: scripts/app-check.mjs failed: {}",
                    redact(String::from_utf8_lossy(&output.stderr).trim())
                )
            })?;
        if let Some(fields) = reply.as_object_mut() {
            for value in fields.values_mut() {
                if let Some(text) = value.as_str() {
                    *value = serde_json::Value::String(redact(text));
                }
            }
        }
        judge(method, path, &reply)
    }
}

/// Refuses a QBTIME_APP_URL that holds a user name or password
/// (`http://ops:…@127.0.0.1:8787`), never quoting it: Node's fetch takes
/// no URL with credentials, so every app check would fail after the
/// restore, and a FAIL be logged, while the password stood in the drill's
/// output; the drill signs in with QBTIME_DEVOPS_TOKEN. The authority is
/// read as Node's URL parser reads it: after any `/` and `\` that follow
/// the scheme, up to the next `/`, `\`, `?` or `#`.
fn refuse_credentials_in_url(base: &str) -> Result<()> {
    let rest = base.split_once(':').map_or(base, |(_, rest)| rest);
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        bail!(
            "QBTIME_APP_URL holds a user name or password (`user:password@` before the host): the \
             app checks cannot send it, and the drill signs in with QBTIME_DEVOPS_TOKEN alone. Set \
             QBTIME_APP_URL to the app's address without it (https://host or https://host:port). \
             Nothing was done."
        );
    }
    Ok(())
}

/// Refuses an `http://` QBTIME_APP_URL whose host is not this machine's
/// loopback (127.0.0.0/8, ::1, localhost): the DevOps token would cross
/// the network in the clear. The host is read as Node's URL parser reads
/// it where it matters: a `\` ends the authority as a `/` does (else
/// `http://evil.example\@127.0.0.1/` would pass here and go to
/// evil.example), and userinfo before the last `@` is dropped.
fn refuse_plain_http_off_this_machine(base: &str) -> Result<()> {
    let Some(rest) = base.strip_prefix("http://") else {
        return Ok(());
    };
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "QBTIME_APP_URL is http:// to {host:?}, not this machine: the DevOps token would cross \
             the network in the clear. Use https:// (http:// is for an app on this machine: \
             127.0.0.1, ::1 or localhost). Nothing was done."
        );
    }
    Ok(())
}

/// What one app call's reply means: `{"status", "body"}` or `{"error"}`.
fn judge(method: &str, path: &str, reply: &serde_json::Value) -> Result<String, String> {
    if let Some(error) = reply.get("error").and_then(|e| e.as_str()) {
        // The error's words on the drill's one line, as the app's own.
        return Err(format!(
            "{method} {path}: no answer: {}",
            d1_core::names::on_one_line(&crate::redact::text(error))
        ));
    }
    let status = reply.get("status").and_then(|s| s.as_u64()).unwrap_or(0);
    let body = reply.get("body").and_then(|b| b.as_str()).unwrap_or("");
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    // Redacted again once decoded: a token the app echoed with JSON
    // escapes (`\u0041…`) is only seen as itself here.
    let said = |key: &str| {
        json.as_ref()
            .and_then(|j| j.get(key))
            .and_then(|v| v.as_str())
            // The app's words, on the drill's one line: a line break in
            // them would print a line of the drill's own (`  [pass] app …`).
            .map(|s| {
                d1_core::names::on_one_line(&crate::redact::text(s))
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
    };
    let quoted = { said("error").or_else(|| said("message")) }
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(format!("{method} {path} answered {status}{quoted}"));
    }
    let refused = if reply.get("truncated") == Some(&serde_json::Value::Bool(true)) {
        Some("but its body was cut at the 1 MiB read: a check passes only on a whole reply")
    } else {
        json.as_ref().map_or(
            Some("but its body is not JSON (an HTML page, or none at all): not the app's check"),
            |json| repeated_verdict(body).or_else(|| says_true(json)),
        )
    };
    match refused {
        None => Ok(format!("{method} {path} answered {status}")),
        Some(why) => Err(format!("{method} {path} answered {status} {why}{quoted}")),
    }
}

/// Whether an app check's JSON body says it passed: `"ok"` or `"valid"`
/// is `true` (the boolean), and neither is anything else (`false`, the
/// string `"false"`, null), and it holds no `"error"` but an empty one
/// (null, `false`, `""`, `[]`, `{}`); `None` if so, else why not. A body
/// that says neither passes nothing: a page or a reply of something else
/// that answers at the path is not the app's check.
fn says_true(json: &serde_json::Value) -> Option<&'static str> {
    use serde_json::Value;
    let fields = ["ok", "valid"].map(|key| json.get(key));
    let error = json.get("error").is_some_and(|e| match e {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    });
    if { fields.iter().flatten() }.any(|v| **v != Value::Bool(true)) {
        Some("but its body says \"ok\" or \"valid\" is not true")
    } else if fields.iter().all(Option::is_none) {
        Some("but its body says neither \"ok\": true nor \"valid\": true")
    } else if error {
        Some("but its body holds an \"error\" beside it")
    } else {
        None
    }
}

/// Why a JSON object `body` cannot be judged: it names `"ok"`, `"valid"`
/// or `"error"` more than once at its top level (serde keeps the last, so
/// `{"ok":false,"ok":true}` would read as true; which the app meant is
/// not known). Keys are compared decoded (`"o\u006b"` is `"ok"`). `None`
/// for any other body.
fn repeated_verdict(body: &str) -> Option<&'static str> {
    /// The keys of a JSON object's top level, in order, repeats kept.
    struct TopKeys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for TopKeys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> serde::de::Visitor<'de> for Keys {
                type Value = TopKeys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<TopKeys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        keys.push(key);
                    }
                    Ok(TopKeys(keys))
                }
            }
            d.deserialize_map(Keys)
        }
    }
    let TopKeys(keys) = serde_json::from_str(body).ok()?;
    let repeated = ["ok", "valid", "error"]
        .iter()
        .any(|name| keys.iter().filter(|k| k == name).count() > 1);
    repeated.then_some(
        "but its body names \"ok\", \"valid\" or \"error\" more than once: which one the app \
         meant is not known",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_words_stay_on_the_checks_one_line() {
        let forged = "refused\n  [pass] app sign-in: GET /api/v1/auth/session answered 200";
        for reply in [
            serde_json::json!({ "error": forged }),
            serde_json::json!({ "status": 500, "body": serde_json::json!({ "error": forged }).to_string() }),
        ] {
            let said = judge("GET", "/api/v1/auth/session", &reply).unwrap_err();
            assert!(!said.contains('\n'), "{said}");
            assert!(said.contains("refused"), "{said}");
        }
    }

    #[test]
    fn a_log_row_names_the_backup_and_each_check_and_nothing_else() {
        let record = Record {
            date: chrono::DateTime::parse_from_rfc3339("2026-11-24T09:30:00Z")
                .unwrap()
                .with_timezone(&Utc),
            from: "prod".into(),
            to: "staging".into(),
            backup: "backup-prod-20261124-0900.sql".into(),
            sha256: "ab".repeat(32),
            checks: [
                Outcome::Pass,
                Outcome::Pass,
                Outcome::Pass,
                Outcome::Pass,
                Outcome::Fail,
                Outcome::Skip,
                Outcome::Skip,
            ],
            seconds: vec![("verify", 1.26), ("total", 20.0)],
        };
        assert!(!record.passed());
        assert_eq!(
            record.row(),
            format!(
                "| 2026-11-24 09:30 | prod → staging | backup-prod-20261124-0900.sql | {} | pass | \
                 pass | pass | pass | FAIL | skip | skip | FAIL | verify 1.3, total 20.0 |",
                "ab".repeat(32)
            )
        );
        // The row has one cell per header column.
        let header_cells = LOG_HEADER
            .lines()
            .find(|l| l.starts_with("| date"))
            .unwrap()
            .matches('|')
            .count();
        assert_eq!(record.row().matches('|').count(), header_cells);
    }

    #[test]
    fn plain_http_is_for_this_machines_loopback_only() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://127.3.2.1/x",
            "http://[::1]:8787/",
            "http://LOCALHOST:3000",
            "http://user@localhost",
            "https://example.com",
        ] {
            assert!(refuse_plain_http_off_this_machine(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://example.invalid",
            "http://10.0.0.1:8787",
            "http://127.0.0.1.example.com/",
            "http://localhost.example.com",
            "http://127.0.0.1@example.com/",
            "http://example.com\\@127.0.0.1/",
            "http://[::ffff:1.2.3.4]/",
            "http://0x7f.1/",
        ] {
            let err = refuse_plain_http_off_this_machine(refused)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("QBTIME_APP_URL") && err.contains("https://"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_app_check_passes_on_2xx_only_when_its_whole_json_body_says_true() {
        let reply = |status: u64, body: &str| serde_json::json!({ "status": status, "body": body });
        assert!(judge("GET", "/a", &reply(200, r#"{"ok":true,"checked":12}"#)).is_ok());
        assert!(judge("GET", "/a", &reply(200, r#"{"valid":true}"#)).is_ok());
        let err = judge(
            "GET",
            "/a",
            &reply(200, r#"{"ok":false,"error":"chain broken at id 7"}"#),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "GET /a answered 200 but its body says \"ok\" or \"valid\" is not true: chain broken \
             at id 7"
        );
        for body in [
            r#"{"valid":false}"#,
            r#"{"ok":"false"}"#,
            r#"{"ok":true,"valid":false}"#,
            r#"{"ok":null}"#,
            r#"{"checked":12}"#,
            "true",
            "<!doctype html><html></html>",
            "",
        ] {
            assert!(judge("GET", "/a", &reply(204, body)).is_err(), "{body}");
        }
        let mut cut = reply(200, r#"{"ok":true}"#);
        cut["truncated"] = true.into();
        assert!(judge("GET", "/a", &cut).unwrap_err().contains("1 MiB"));
        assert_eq!(
            judge("POST", "/r", &reply(401, r#"{"message":"bad token"}"#)).unwrap_err(),
            "POST /r answered 401: bad token"
        );
        assert!(
            judge("GET", "/a", &reply(302, "")).is_err(),
            "a redirect is not a pass"
        );
        let err = judge(
            "GET",
            "/a",
            &serde_json::json!({ "error": "fetch failed (ECONNREFUSED)" }),
        )
        .unwrap_err();
        assert!(err.contains("ECONNREFUSED"), "{err}");
        // A token the app echoes in JSON escapes is redacted once decoded.
        let token = "drill-token-echoed-0123456789";
        crate::redact::hold(token);
        let escaped: String = token
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let err = judge(
            "GET",
            "/a",
            &reply(401, &format!(r#"{{"error":"bad token {escaped}"}}"#)),
        )
        .unwrap_err();
        assert!(!err.contains(token), "{err}");
    }

    /// rvAJ: serde keeps the last of a repeated key, so
    /// `{"ok":false,"ok":true}` passed; and so did `{"ok":true,"error":…}`.
    #[test]
    fn an_app_check_with_a_repeated_verdict_or_an_error_does_not_pass() {
        let reply = |body: &str| serde_json::json!({ "status": 200, "body": body });
        for body in [
            r#"{"ok":false,"ok":true}"#,
            r#"{"valid":false,"valid":true}"#,
            r#"{"ok":true,"o\u006b":true}"#,
            r#"{"ok":true,"error":"x","error":""}"#,
            r#"{"ok":true,"error":"chain broken"}"#,
            r#"{"valid":true,"error":{"id":7}}"#,
        ] {
            assert!(judge("GET", "/a", &reply(body)).is_err(), "{body}");
        }
        for body in [
            r#"{"ok":true,"error":null}"#,
            r#"{"ok":true,"error":""}"#,
            r#"{"ok":true,"detail":{"ok":false}}"#,
        ] {
            assert!(judge("GET", "/a", &reply(body)).is_ok(), "{body}");
        }
    }
}
