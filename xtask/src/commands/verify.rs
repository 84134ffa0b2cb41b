//! `cargo xtask verify <backup>`: a simulated restore, under D1's rules,
//! into a scratch SQLite file that is deleted afterwards.
//!
//! The dump goes through the same repair as a restore and is loaded
//! statement by statement, streamed, with foreign keys enforced (deferred,
//! as D1 allows) and D1's 100,000-byte statement limit. Then SQLite's
//! `integrity_check` and `foreign_key_check` run, the rows per table are
//! compared with the manifest, and the audit log's hash chain is walked from
//! its first row to its last. A check that would pass only with plain
//! SQLite's defaults (foreign keys off) is not a pass.
//!
//! Exit codes: 0 the backup is good; 1 it is corrupt or does not match its
//! manifest; 2 the verification could not run.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::inventory;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::stored::{self, Source};
use crate::steps::migrations::Record;
use crate::steps::verify::{Report, Workspace, verify};
use d1_core::manifest::{self, Manifest};
use std::path::Path;

/// The backup is corrupt or does not match its manifest.
pub const EXIT_BAD: u8 = 1;
/// The verification could not run (unreadable file, no space, bad arguments).
pub const EXIT_COULD_NOT_RUN: u8 = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// A backup: a name that `list` prints, a path, or `latest:ENV` (that environment's newest full backup).
    pub backup: String,
    /// Verify a dump that has no manifest (a hand export, a sqlite3 .dump).
    #[arg(long)]
    pub no_manifest: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not record the outcome in the backup's manifest.
    #[arg(long)]
    pub no_record: bool,
    #[command(flatten)]
    pub identity: stored::IdentityArg,
}

pub fn run(project: &Project, args: &VerifyArgs) -> ExitCode {
    // A damaged file's advice leads on from verify, the command this is.
    stored::advise_as_verify();
    let activity = crate::out::Activity::counting("verifying", None);
    let result = run_inner(project, args);
    drop(activity);
    match result {
        Ok(report) => {
            if args.json {
                match serde_json::to_value(&report) {
                    Ok(value) => crate::out::json(&value),
                    Err(e) => crate::out::error(&e.to_string()),
                }
            } else {
                report.print(false);
            }
            if report.good {
                ExitCode::SUCCESS
            } else {
                // The verdict reaches stderr at every verbosity: a quiet
                // job's only output must say why it failed.
                crate::out::error(&format!(
                    "{} is BAD: {}",
                    report.file.display(),
                    report.failed().join("; ")
                ));
                ExitCode::from(EXIT_BAD)
            }
        }
        // Stopped by a signal: `main` says which, once, with what stays
        // changed (this said it too, so SIGTERM was told twice); this
        // says only that there is no verdict.
        Err(_) if crate::edge::signals::received().is_some() => {
            crate::out::failure(
                "verify",
                "the verification could not run: it was stopped before its verdict",
                EXIT_COULD_NOT_RUN,
            );
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }
        Err(e) => {
            // A guard's refusal keeps its own code (a backup directory
            // others can write to is 3, as for every command).
            let code = match crate::exit::Exit::of(&e) {
                Some(crate::exit::Exit::Refused) => crate::exit::Exit::Refused.code(),
                _ => EXIT_COULD_NOT_RUN,
            };
            let said = crate::redact::text(&format!("{e:#}"));
            let said = match code {
                EXIT_COULD_NOT_RUN => format!("the verification could not run: {said}"),
                _ => said,
            };
            crate::out::failure("verify", &said, code);
            ExitCode::from(code)
        }
    }
}

/// This machine's records of applied migrations that the backup `file` is
/// held to as a restore of it into its own environment (`own`, the one
/// its manifest records) holds it
/// ([`crate::steps::migrations::records_judging`]): verify predicts that
/// restore, and each restore into another environment whose migrations
/// are `dir` that its records refuse is told in a warning of its own
/// ([`warn_of_other_targets`]). Without an environment of its own (no
/// manifest), a dump restored into any of them may be said to be of
/// another (`--source-env`), and is held to every one's record.
fn machine_records(
    project: &Project,
    (scanned, targets): (&[inventory::Entry], &[&Environment]),
    own: Option<&Environment>,
    (file, dir): (&Path, &Path),
) -> Vec<crate::steps::migrations::Record> {
    match own {
        Some(own) => crate::steps::migrations::records_judging(
            project,
            scanned,
            (Some(own), own),
            (file, dir),
        ),
        None => crate::steps::migrations::machine_records(project, scanned, targets, (file, dir)),
    }
}

/// A warning for each environment whose migrations are `dir` (`targets`)
/// that a restore of the backup `file` into would refuse, by its record
/// of applied migrations, where verify's own line (`judged`, the records
/// of a restore into the backup's own environment) shows no edit: a
/// restore of a prod backup into staging is held to staging's record too
/// (rvMD 1).
fn warn_of_other_targets(
    project: &Project,
    (scanned, targets): (&[inventory::Entry], &[&Environment]),
    (manifest, own, judged): (Option<&Manifest>, Option<&Environment>, &[Record]),
    (file, dir): (&Path, &Path),
) {
    use crate::steps::migrations::{edited_and_here, edited_for_backup_report, records_judging};
    if !edited_and_here(manifest, judged, dir).is_empty() {
        return;
    }
    for target in targets {
        let records = records_judging(project, scanned, (own, target), (file, dir));
        let found = edited_and_here(manifest, &records, dir);
        if !found.is_empty() {
            crate::warn!(
                "a restore of {} into {} is refused until then (restore holds a backup to the \
                 target's record of applied migrations too): {}",
                d1_core::names::file_name(file),
                target.name,
                edited_for_backup_report(&found, dir)
            );
        }
    }
}

/// The records verify holds the backup `file` to ([`machine_records`]),
/// each other restore target's refusal warned of
/// ([`warn_of_other_targets`]).
fn judging_records(
    project: &Project,
    envs: &crate::config::environment::Environments,
    manifest: Option<&Manifest>,
    (file, dir): (&Path, &Path),
) -> Result<Vec<Record>> {
    let scanned = inventory::scan(&project.backup_dir)?;
    let targets: Vec<&Environment> = { envs.iter() }
        .filter(|env| project.config_dir.join(&env.migrations_dir) == dir)
        .collect();
    let own = manifest.and_then(|m| envs.whose(m));
    let on = (scanned.as_slice(), targets.as_slice());
    let applied = machine_records(project, on, own, (file, dir));
    warn_of_other_targets(project, on, (manifest, own, &applied), (file, dir));
    Ok(applied)
}

/// Refuses a file under a plain SQL name that its bytes show is no dump
/// (`gzip -c B.sql > B.sql.gz`, a SQLite file), before its manifest, or
/// the lack of one, is looked at, as restore does (with `--no-manifest`,
/// no manifest is looked for, and the `format` check tells it): what it is and how to
/// unpack it is the advice that works, not that its manifest names
/// another file or `--no-manifest` (bad input, exit 2).
fn refuse_unless_sql(file: &Path) -> Result<()> {
    use std::io::Read as _;
    if d1_core::sealed::Format::of(file) != d1_core::sealed::Format::Sql {
        return Ok(());
    }
    let mut head = Vec::new();
    fsutil::open_regular(file, "backup")?
        .take(64)
        .read_to_end(&mut head)
        .map_err(|e| anyhow::anyhow!(e).context(format!("cannot read {}", file.display())))?;
    d1_core::dump::check_file_looks_like_sql(&head, file)
        .map_err(|e| crate::exit::Exit::CouldNotRun.error(e.context(file.display().to_string())))
}

fn run_inner(project: &Project, args: &VerifyArgs) -> Result<Report> {
    let file = project.resolve_backup(&args.backup, None, inventory::Latest::Any)?;
    // With `--no-manifest` the `format` check says it (exit 1), as before.
    if !args.no_manifest {
        refuse_unless_sql(&file)?;
    }
    let manifest_path = manifest::manifest_path(&file);
    let manifest = if args.no_manifest {
        None
    } else if std::fs::symlink_metadata(&manifest_path).is_ok() {
        // Whatever is there (a FIFO, a link) is read, or refused, as a
        // manifest: it is not a missing one.
        Some(Manifest::for_backup(&file)?)
    } else {
        bail!(
            "{} has no manifest beside it ({}); if it is an export made by hand or a sqlite3 \
             .dump, pass --no-manifest",
            file.display(),
            manifest_path.display()
        )
    };
    fsutil::create_private_dir(&project.backup_dir)?;
    // A data-only backup is verified on the schema of its environment's migrations.
    let envs = project.environments()?;
    let migrations_dir = project.config_dir.join(
        manifest
            .as_ref()
            .and_then(|m| envs.migrations_for(m))
            .map_or("migrations", |env| env.migrations_dir.as_str()),
    );
    warn_if_misfiled(&envs, manifest.as_ref());
    let settings = project.settings()?;
    let applied = judging_records(project, &envs, manifest.as_ref(), (&file, &migrations_dir))?;
    let ctx = Workspace {
        migrations_dir: &migrations_dir,
        app: &settings.app,
        scratch_dir: &project.backup_dir,
        applied: &applied,
        migrations_optional: false,
    };
    let source = Source::for_file(&file, args.identity.path(), &project.age())?;
    let report = verify(&file, &source, manifest.as_ref(), &ctx)?;
    let unrecorded = manifest
        .as_ref()
        .map(|m| unrecorded_wide_integers(m, &report))
        .unwrap_or_default();
    if !unrecorded.is_empty() {
        crate::warn!(
            "{}'s manifest records no integers beyond ±2^53: an earlier version of this tool \
             wrote it, before it kept that record, and its exports (a local one too, until it \
             read the SQLite file exactly) may have rounded them: {}",
            d1_core::names::file_name(&file),
            crate::steps::backup::wide_integers_said(&unrecorded)
        );
    }
    if let Some(m) = &manifest {
        warn_text_written_otherwise(&file, m);
    }
    if let Some(mut m) = manifest
        && !args.no_record
    {
        if !unrecorded.is_empty() {
            // So that a restore's plan says `ROUNDED?` of it, as of a
            // backup that recorded them.
            m = Manifest::update(&manifest_path, |m| m.wide_integers = Some(unrecorded))?;
        }
        m.record_verification(&manifest_path, report.verification())?;
    }
    Ok(report)
}

/// A misfiled backup ([`inventory::misfiled`]) verifies as any other, but
/// is not the backup of the environment its name says: said in one
/// warning, as `list` and `latest` say it.
fn warn_if_misfiled(envs: &crate::config::environment::Environments, manifest: Option<&Manifest>) {
    if let Some((m, f)) = manifest.and_then(|m| Some((m, inventory::misfiled(envs, m)?))) {
        crate::warn!("{}", inventory::misfiled_words(m, &f, None));
    }
}

/// The integers of ±2^53 or beyond that verifying a backup read, per
/// table, when its manifest predates `Manifest::wide_integers` (it has
/// none) and does not say they are exact (`Manifest::exact_values`, a
/// local backup that read the SQLite file): a backup written by an earlier
/// version, whose export may have rounded them. Empty otherwise.
fn unrecorded_wide_integers(
    manifest: &Manifest,
    report: &Report,
) -> std::collections::BTreeMap<String, u64> {
    if manifest.wide_integers.is_some() {
        return Default::default();
    }
    let exact = manifest.exact_values.as_ref();
    { report.wide_integers.iter() }
        .filter(|(table, _)| !exact.is_some_and(|e| e.contains_key(*table)))
        .map(|(table, n)| (table.clone(), *n))
        .collect()
}

/// Warns of the text `manifest`'s remote backup found its export wrote
/// otherwise (`replaced_text`, `ambiguous_text`), as the backup did. The
/// file is D1's export, checked whole; what it lost was lost before it
/// was written.
fn warn_text_written_otherwise(file: &std::path::Path, manifest: &Manifest) {
    let per_column = [
        (
            &manifest.replaced_text,
            crate::steps::backup::replaced_text_said as fn(&_) -> _,
        ),
        (
            &manifest.ambiguous_text,
            crate::steps::backup::ambiguous_text_said,
        ),
    ];
    for (recorded, said) in per_column {
        if let Some(found) = recorded.as_ref().filter(|r| !r.is_empty()) {
            crate::warn!("{}: {}", d1_core::names::file_name(file), said(found));
        }
    }
}
