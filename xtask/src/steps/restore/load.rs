//! The load, once the plan is confirmed and the lock held: the safety
//! backup, the local D1 file or wrangler, and the statements that drop
//! what `--replace` replaces.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use xshell::Shell;

use super::check::{self, Content, TableCount, check_content, check_fts_settings, check_rows};
use super::guards::SAFETY_REASON;
use super::target::Inspected;
use super::{Mode, Source};
use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::edge::fsutil::TempFile;
use crate::edge::local_d1;
use crate::edge::lock::BackupLock;
use crate::edge::reader::DatabaseReader as TargetReader;
use crate::edge::wrangler::{Commands, Wrangler};
use crate::steps::backup::{self, BackupArgs, TakenFor};
use d1_core::catalog::Catalog;
use d1_core::names::file_name;
use d1_core::repair::{self, Sink};
use d1_core::statement::quote_ident;

/// The local D1 file a fast local restore loads, checked: no other
/// process holds it, and it exists unless `--clean`'s migrations make it;
/// and the watch on it ([`Loading::watch`]), from here to the load's lock,
/// when it exists: a write by another process in between would be in
/// neither the safety backup nor the restore.
pub(super) fn ready_local_file(
    (file, env): (PathBuf, &str),
    mode: Mode,
) -> Result<(Option<PathBuf>, Option<local_d1::Watch>)> {
    if file.is_file() {
        local_d1::ensure_unheld(&file)?;
        let watch = local_d1::Watch::start((&file, env))?;
        return Ok((Some(file), Some(watch)));
    }
    if mode != Mode::Clean {
        // A clean restore's `migrations apply` creates it.
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the local D1 database file {} does not exist; nothing was done",
            file.display()
        );
    }
    Ok((Some(file), None))
}

/// The safety backup of the target, under the restore's lock; the restore
/// does not start without it.
pub(super) fn take_safety_backup(
    sh: &Shell,
    project: &Project,
    source: &Source,
    (lock, schema, target): (&BackupLock, Catalog, &Environment),
) -> Result<Option<PathBuf>> {
    crate::say!(
        "Taking a safety backup of {} ({} D1) first.",
        target.database_name,
        target.location
    );
    // Ctrl-C during the safety backup: the restore has not begun.
    crate::edge::signals::changed(format!(
        "nothing was restored: {} is as it was",
        target.database_name
    ));
    let reason = format!("{SAFETY_REASON}{}", file_name(&source.file));
    let args = BackupArgs::full(&target.name, reason, TakenFor::RestoreSafety);
    let held = backup::Held {
        lock,
        schema: Some(schema),
        of: target,
    };
    backup::run_under(sh, project, &args, held).map_err(|e| {
        e.context(format!(
            "the safety backup of {} failed, so the restore did not start; nothing was changed",
            target.database_name
        ))
    })
}

/// The error of a load that failed having written nothing to its target:
/// one all or nothing that was not committed (the local D1's file, or
/// wrangler stopped before it handed D1 the import), or an import D1
/// reported failed and an export then showed unchanged; never `--clean`'s,
/// whose migrations ran first. The restore journal records that it
/// changed nothing ([`super::load_journaled`]), so `status` does not call
/// the target's migrations unknown after it. Shown as the message it
/// holds.
#[derive(Debug)]
pub(super) struct NothingWritten(pub(super) String);

impl std::fmt::Display for NothingWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The load and its checks, once the plan is confirmed and the lock held.
pub(super) struct Loading<'a> {
    pub(super) wrangler: &'a Wrangler,
    pub(super) cmds: &'a Commands,
    pub(super) target: &'a Environment,
    pub(super) source: &'a Source,
    pub(super) mode: Mode,
    /// The local D1 file, for a fast local restore.
    pub(super) local_file: Option<&'a Path>,
    /// Other processes' commits to that file since before the safety
    /// backup, refused once the load holds the file.
    pub(super) watch: Option<&'a local_d1::Watch>,
    /// The safety backup, which every error after it names.
    pub(super) safety: &'a Option<PathBuf>,
    /// The `--allow-trigger` names the safety backup's way back needs
    /// ([`crate::steps::migrations::way_back_triggers`]).
    pub(super) safety_triggers: &'a crate::steps::migrations::WayBack,
    /// `--clean`'s migrations, as the plan read them.
    pub(super) staged: Option<&'a crate::steps::migrations::Staged>,
}

impl Loading<'_> {
    /// What the load leaves if this run dies in its middle, and the way
    /// back: written into the lock before the load, so that the next run
    /// says it.
    pub(super) fn named_safety(&self) -> String {
        match self.safety {
            Some(file) => format!("; the safety backup taken before it is {}", file.display()),
            None => String::new(),
        }
    }

    /// What this run did while [`Loading::watch`] watched: what another
    /// process's write then went past.
    fn meanwhile(&self) -> String {
        match self.safety {
            Some(_) => "while the restore took its safety backup".to_string(),
            None => "after the restore's plan read it".to_string(),
        }
    }

    /// What the target now is, once loaded: restored from the backup, in
    /// `state`, and the safety backup that was taken before.
    pub(super) fn restored(&self, state: &str) -> String {
        format!(
            "{} was restored from {}; {state}{}",
            self.target.database_name,
            file_name(&self.source.file),
            self.named_safety()
        )
    }

    /// `--replace`'s drops, `--clean`'s migrations, then the rows: all or
    /// nothing.
    /// `underway`: what the lock and an interrupt tell once the migrations
    /// are applied ([`super::record_loading`]).
    pub(super) fn load(
        &self,
        survey: &repair::Survey,
        options: &repair::Options,
        inspected: &Inspected,
        underway: super::Underway<'_>,
    ) -> Result<()> {
        let (target, mode) = (self.target, self.mode);
        let drops = if mode == Mode::Replace {
            drop_statements(&inspected.existing, &inspected.catalog)
        } else {
            Vec::new()
        };
        if let Some(staged) = self.staged.filter(|_| mode == Mode::Clean) {
            if let Some(watch) = self.watch {
                watch.unwritten(&self.meanwhile())?;
            }
            // Journaled as `migrate` journals them: the next backup records
            // what was applied, not the files as they are by then.
            { staged.apply_journaled(underway.project, target, self.wrangler) }.map_err(|e| {
                e.context(format!(
                    "applying migrations to {} failed, so no rows were loaded{}",
                    target.database_name,
                    self.named_safety()
                ))
            })?;
        }
        if let Some(watch) = self.watch.filter(|_| mode == Mode::Clean) {
            watch.rebase()?;
        }
        let (lock, project) = (underway.lock, underway.project);
        let left = underway.left.clone();
        underway.migrations_applied()?;
        let loading = self.local_file.map(|_| {
            crate::out::Activity::counting(
                format!("loading into {}", target.database_name),
                Some(survey.statements),
            )
        });
        let loaded = self.run_load(survey, options, &drops);
        drop(loading);
        if let Err(e) = loaded {
            // The local D1 through wrangler runs the file as one batch: no
            // import is handed to anyone (rvBM: a failed local load was told
            // as a remote import of unknown outcome, the lock kept).
            let remote = target.location == crate::config::environment::Location::Remote;
            if remote && import_may_have_started(&e) {
                return Err(self.after_failure(project, e, (lock, left.as_deref())));
            }
            if self.local_file.is_none() {
                self.told_not_handed(left.as_deref());
            }
            if mode == Mode::Clean {
                return Err(e.context(format!(
                    "the restore failed; the migrations were applied but no rows were loaded: \
                     the target has the schema only{}",
                    self.named_safety()
                )));
            }
            return Err(e.context(NothingWritten(format!(
                "the restore failed; the load is all-or-nothing, so the target is as it was{}",
                self.named_safety()
            ))));
        }
        Ok(())
    }

    /// Loads the dump into the target, from its SQLite file or through
    /// wrangler, after `drops`.
    fn run_load(
        &self,
        survey: &repair::Survey,
        options: &repair::Options,
        drops: &[String],
    ) -> Result<()> {
        let (target, source) = (self.target, self.source);
        let loaded = match self.local_file {
            Some(file) => {
                let watch = self.watch.map(|w| (w, self.meanwhile()));
                load_local(file, watch, source, (survey, options), drops)
            }
            None => load_with_wrangler(
                self.wrangler,
                self.cmds,
                target,
                source,
                survey,
                options,
                drops,
            ),
        };
        // Two integers wrangler's export rounded alike fail a UNIQUE
        // constraint: say so, where no manifest vouches for the dump; and
        // one it rounded past 64 bits fails a STRICT INTEGER column.
        loaded.map_err(|e| {
            let said = format!("{e:#}");
            let unique = { source.manifest.is_none() }
                .then(|| survey.unique_failure_cause(&said))
                .flatten();
            match unique.or_else(|| survey.strict_failure_cause(&said)) {
                Some(cause) => e.context(cause),
                None => e,
            }
        })
    }

    /// Stopped by a signal before wrangler handed D1 the import (its
    /// upload had not completed), or, for the local D1, before wrangler
    /// had run the file (one batch, all or nothing; nothing is uploaded):
    /// an interrupt tells that nothing was handed, or committed, and the
    /// target is as it was (for `--clean`, with the
    /// migrations applied), not what a handed import may leave, with what
    /// a restore into a database it created leaves in place (`left`).
    fn told_not_handed(&self, left: Option<&str>) {
        if crate::edge::signals::received().is_none() {
            return;
        }
        let db = &self.target.database_name;
        let state = match self.mode {
            Mode::Clean => format!(
                "no row was loaded: the migrations were applied, so {db} has the schema only"
            ),
            _ => format!("{db} is as it was"),
        };
        // A local target uploads nothing: wrangler runs the file against
        // the local D1 as one batch, all or nothing, which a stopped
        // wrangler never committed.
        let how = match self.target.location {
            crate::config::environment::Location::Local => {
                "the local D1 committed nothing: wrangler was stopped before it had run the \
                 backup against it, as one batch, all or nothing"
            }
            crate::config::environment::Location::Remote => {
                "nothing was handed to D1: wrangler was stopped before it had uploaded the \
                 backup for its import"
            }
        };
        let told = format!("{how}, so {state}{}", self.named_safety());
        crate::edge::signals::changed(match left {
            Some(left) => format!("{told}; {left}"),
            None => told,
        });
    }

    /// The error of an import wrangler failed to follow once D1 may have
    /// started it: D1 goes on without wrangler, so what the target holds
    /// is read ([`check::after_failed_import`]) and said. When it cannot
    /// be told, the lock keeps its record ([`BackupLock::leave_unsettled`])
    /// for `status` and the next run, with the way to check and undo.
    /// Stopped by a signal, it reads nothing and tells the same, with what
    /// a restore into a database it created leaves in place (`left`).
    fn after_failure(
        &self,
        project: &Project,
        e: anyhow::Error,
        (lock, left): (&BackupLock, Option<&str>),
    ) -> anyhow::Error {
        if crate::edge::signals::received().is_some() {
            // Stopped: D1 goes on with an import it was handed, and nothing
            // more runs here to read what it did.
            lock.leave_unsettled();
            let told =
                self.outcome_unknown("was stopped", "wrangler was stopped while it followed it");
            let told = match left {
                Some(left) => format!("{told}; {left}"),
                None => told,
            };
            crate::edge::signals::changed(told.clone());
            return e.context(told);
        }
        let access = (self.wrangler, self.cmds);
        let reported = crate::edge::wrangler::failed_import_reported_by_d1(&e);
        let outcome = check::after_failed_import(
            project,
            access,
            (self.target, self.source, self.mode),
            (self.safety.as_deref(), reported),
        );
        let why = match outcome {
            check::AfterFailure::Restored => {
                // Done, as far as its content tells: the record is settled.
                crate::edge::signals::changed(self.restored("despite wrangler's error"));
                self.restored(
                    "despite wrangler's error: D1 went on with the import, and its content now \
                     matches the backup's (its row counts and the after-restore checks did not \
                     run: `cargo xtask backup` it to check it whole)",
                )
            }
            check::AfterFailure::Unchanged => {
                let why = format!(
                    "the restore failed; the load is all-or-nothing, and D1 reported the import \
                     failed and did not apply it: an export of {} taken now holds what it held \
                     before (the safety backup's content, or no row), so it is unchanged{}",
                    self.target.database_name,
                    self.named_safety()
                );
                // `--clean`'s migrations ran before the import.
                if self.mode != Mode::Clean {
                    return e.context(NothingWritten(why));
                }
                why
            }
            check::AfterFailure::Unknown(why) => {
                lock.leave_unsettled();
                self.outcome_unknown("failed", &why)
            }
        };
        e.context(why)
    }

    /// What a remote restore tells when it `how` (failed, was stopped)
    /// once D1 may have been handed the import and what D1 did is not
    /// known (`why`): the diff that tells, the restore that undoes, and
    /// that the lock keeps it ([`BackupLock::leave_unsettled`]).
    fn outcome_unknown(&self, how: &str, why: &str) -> String {
        let (target, source) = (self.target, self.source);
        let db = &target.database_name;
        let file = |f: &Path| crate::out::to_paste(f.display().to_string());
        let check = format!(
            "`cargo xtask diff {} live:{}` tells whether it holds the backup",
            file(&source.file),
            target.name
        );
        let undo = match self.safety {
            Some(safety) => format!(
                "; {}",
                crate::steps::migrations::restore_advice_allowing(
                    safety,
                    target,
                    ("the safety backup taken before it", None),
                    self.safety_triggers,
                )
            ),
            None => String::new(),
        };
        format!(
            "the restore {how} once D1 may have been handed the import (nothing wrangler \
             printed shows it was not, and it says its upload completed even when the upload's \
             connection failed), and its outcome is \
             unknown ({why}): D1 applies an import whole or not at all, so {db} holds either \
             all of the backup or what it held before. {check}. The backup lock keeps this for \
             `cargo xtask status` and the next run{}{undo}",
            self.named_safety()
        )
    }

    /// The restored rows against the manifest (or the dump), then the
    /// content against the backup's digests. A remote target is exported
    /// once for its content, and its rows are counted in that export when
    /// it holds every counted table, rather than by a query that starts
    /// wrangler again.
    pub(super) fn check(&self, project: &Project) -> Result<(Vec<TableCount>, Content)> {
        // A local D1 file that `--via-wrangler`'s import created is made
        // private now (one that was there already, before the load).
        if let Some(file) = local_d1::existing_file(&project.config_dir, self.target) {
            local_d1::make_private(&file)?;
        }
        let (content, exported) = self.content(project)?;
        let counts = self.counts(exported)?;
        if let Some(differ) = content.as_ref().and_then(|c| c.as_ref().err()) {
            bail!(
                "the restored content does not match the backup's: {}{}",
                differ.join("; "),
                self.named_safety()
            );
        }
        self.fts_settings(project)?;
        Ok((counts, content))
    }

    /// The restored FTS5 tables' settings against the manifest's; refused
    /// when they differ. Without a manifest nothing records them.
    fn fts_settings(&self, project: &Project) -> Result<()> {
        if self.source.manifest.is_none() {
            return Ok(());
        }
        let file = { self.local_file.map(Path::to_path_buf) }
            .or_else(|| local_d1::existing_file(&project.config_dir, self.target));
        let reader = match file {
            Some(file) => TargetReader::File(file, &self.target.name),
            None => TargetReader::Wrangler(self.wrangler, self.cmds, self.target),
        };
        match check_fts_settings(&reader, &self.source.virtual_tables) {
            None => {}
            Some(Ok(tables)) => crate::say!(
                "FTS5 settings: {}, each as the backup records them (read from their _config \
                 tables)",
                d1_core::wording::count(tables, "table")
            ),
            Some(Err(differ)) => bail!(
                "the restored FTS5 settings do not match the backup's: {}{}",
                differ.join("; "),
                self.named_safety()
            ),
        }
        Ok(())
    }

    /// The target's rows counted table by table; refused when they differ
    /// from the manifest's, warned about when there is none.
    fn counts(&self, exported: Option<BTreeMap<String, u64>>) -> Result<Vec<TableCount>> {
        let (target, source, mode) = (self.target, self.source, self.mode);
        let (counts, wrong) = check_rows(
            (self.wrangler, self.cmds),
            target,
            source,
            mode,
            (self.local_file, exported),
        )
        .map_err(|e| {
            e.context(format!(
                "the restore ran, but its check failed{}",
                self.named_safety()
            ))
        })?;
        if !wrong.is_empty() {
            if source.manifest.is_some() {
                bail!(
                    "the restored rows do not match the backup's manifest: {}{}",
                    wrong.join("; "),
                    self.named_safety()
                );
            }
            // Without a manifest the expectation is every row the dump's
            // INSERTs write, which a hand-made dump need not meet: it is
            // said, not guessed at, naming an upsert where a table has one.
            let upserting: Vec<String> = { counts.iter() }
                .filter(|(table, want, got)| {
                    want != got
                        && source
                            .upserted
                            .iter()
                            .any(|u| u.eq_ignore_ascii_case(table))
                })
                .map(|(table, _, _)| table.clone())
                .collect();
            let upserts = match upserting.is_empty() {
                true => String::new(),
                false => format!(
                    " ({} {} INSERTs with an upsert clause (ON CONFLICT), which adds no row \
                     where one is already in)",
                    d1_core::wording::listed(&upserting, "table"),
                    if upserting.len() == 1 { "has" } else { "have" }
                ),
            };
            crate::warn!(
                "the restored tables hold another number of rows than the dump's INSERT \
                 statements write (every row of each, as if none met a row already in), and no \
                 manifest records the counts: {}. An INSERT OR IGNORE, INSERT OR REPLACE (or \
                 REPLACE) or upsert clause over a row already in does that{upserts}; compare \
                 with the dump if you did not expect it",
                wrong.join("; ")
            );
        }
        Ok(counts)
    }

    fn content(&self, project: &Project) -> Result<(Content, Option<BTreeMap<String, u64>>)> {
        // A local D1 is read from its file, however it was loaded (through
        // wrangler too): a wrangler export would write some values D1's way.
        let file = self
            .local_file
            .map(Path::to_path_buf)
            .or_else(|| local_d1::existing_file(&project.config_dir, self.target));
        check_content(
            project,
            self.wrangler,
            self.cmds,
            self.target,
            self.source,
            self.mode,
            file.as_deref(),
        )
        .map_err(|e| {
            e.context(format!(
                "the restore ran, but its content check failed{}",
                self.named_safety()
            ))
        })
    }
}

/// Whether the remote load that failed with `e` may have started D1's
/// import. wrangler's `init` ("Checking if file needs uploading") alone
/// starts it when D1 already has a file of the same MD5 (a retry), and its
/// answer may be lost (a 5xx, a 524, a reset, a signal) before wrangler
/// says "File already uploaded."; so from that line on D1 may have been
/// handed the import, unless wrangler began an upload (its spinner's
/// `├ 🌀 Uploading <file>`, which `init` asks for only when D1 lacks the
/// file) that never completed (`│ 🌀 Uploading complete.` is printed before
/// `ingest` is sent), or one of its upload failures (`✘ [ERROR] File could
/// not be uploaded…`) followed. Only wrangler's own lines count: D1's
/// messages, polled once the import is handed, are printed `🌀 <message>`,
/// with neither the spinner's prefix nor the error's.
///
/// Cloudflare refusing the token (code 10000 alone) before an upload
/// began or wrangler said "File already uploaded." refused `init` itself,
/// which never reached D1: nothing was handed.
///
/// Without that line it fails closed: wrangler may word it otherwise one
/// day, or be stopped before its output was read, and a restore that
/// changed the target must never be journaled as one that changed
/// nothing; so does a run whose output could not be read whole, whatever
/// the lines read say. Only a failure this tool knows came before wrangler
/// ran (the file for it not written, a signal before its start, no
/// credentials for it) leaves the target as it was.
fn import_may_have_started(e: &anyhow::Error) -> bool {
    if !crate::edge::wrangler::is_failure_of_a_run(e) {
        return false;
    }
    if crate::edge::wrangler::output_was_unread(e) {
        return true;
    }
    let said = crate::edge::wrangler::said_by_failed(e);
    let Some(checking) = said
        .iter()
        .position(|l| l.contains("Checking if file needs uploading"))
    else {
        return true;
    };
    let mut upload_begun = false;
    let mut upload_completed = false;
    for line in said[checking..].iter().map(|l| l.trim_start()) {
        if line.starts_with("🌀 File already uploaded.") {
            return true;
        }
        if line.starts_with("│ 🌀 Uploading complete.") {
            upload_completed = true;
            break;
        }
        upload_begun |= line.starts_with("├ 🌀 Uploading ");
    }
    if !upload_begun && crate::edge::wrangler::failed_for_its_credentials(e) {
        return false;
    }
    // wrangler's error is on its standard error, read before its output.
    let not_uploaded = said.iter().any(|l| {
        l.trim_start().strip_prefix("✘ [ERROR] ").is_some_and(|l| {
            [
                "File could not be uploaded",
                "File did not upload successfully",
                "File contents did not upload successfully",
            ]
            .iter()
            .any(|m| l.starts_with(m))
        })
    });
    (!upload_begun || upload_completed) && !not_uploaded
}

/// The fast local path: straight into the local D1's SQLite file.
/// The write lock taken, `watch` (see [`Loading::watch`]) is asked whether
/// another process wrote since it started, and what this run did meanwhile.
pub(super) fn load_local(
    file: &Path,
    watch: Option<(&local_d1::Watch, String)>,
    source: &Source,
    (survey, options): (&repair::Survey, &repair::Options),
    drops: &[String],
) -> Result<()> {
    let mut loader = local_d1::Loader::open(file)?;
    if let Some((watch, meanwhile)) = watch {
        watch.unwritten(&meanwhile)?;
    }
    for sql in drops {
        loader.tool_statement(sql)?;
    }
    loader.load(source.open_for_load()?, survey, options)?;
    crate::out::stage("loaded; committing (the foreign-key check, then the write to disk)");
    let ran = loader.commit()?;
    crate::say!(
        "{}",
        loaded_line(survey.statements, ran, &file.display().to_string())
    );
    Ok(())
}

/// The end of a local load, counting as the plan and the manifest do: the
/// dump's statements, and the number run only where it differs (the
/// repair's own, the drops of `--replace`, less the pragmas it leaves out).
pub(super) fn loaded_line(dumps: u64, ran: u64, into: &str) -> String {
    let count = |n| d1_core::wording::count(n, "statement");
    match ran == dumps {
        true => format!("Loaded the dump's {} into {into}.", count(dumps)),
        false => format!(
            "Loaded the dump's {} into {into} ({ran} run, with the repair's own and the drops).",
            count(dumps)
        ),
    }
}

/// One repaired file, run by `wrangler d1 execute --file`, which D1 applies
/// all-or-nothing.
#[allow(clippy::too_many_arguments)]
pub(super) fn load_with_wrangler(
    wrangler: &Wrangler,
    cmds: &Commands,
    target: &Environment,
    source: &Source,
    survey: &repair::Survey,
    options: &repair::Options,
    drops: &[String],
) -> Result<()> {
    // wrangler reads the file by name, more than once: it lives in a
    // directory only this user can enter, so nobody can swap it between
    // the SQL gate's preflight and the import.
    let private = crate::edge::wrangler::PrivateDir::create("restore")?;
    let partial = private.path().join(format!("restore-{}.sql", target.name));
    let (_temp, file) = TempFile::create_open(partial.clone())?;
    let mut writer = FileSink(BufWriter::new(file));
    // The drops must be deferred too, and come before the repair's own lines.
    writer.statement(DEFER_FOREIGN_KEYS)?;
    for sql in drops {
        writer.statement(sql)?;
    }
    repair::write(source.open_for_load()?, survey, options, &mut writer)?;
    writer.0.flush()?;
    drop(writer);
    if target.location == crate::config::environment::Location::Local {
        refuse_what_local_wrangler_rewrites(&partial, target)?;
    }
    wrangler.run(&cmds.execute_file(target, &partial))
}

/// The line [`load_with_wrangler`] puts first in its file.
const DEFER_FOREIGN_KEYS: &str = "PRAGMA defer_foreign_keys=TRUE;";

/// Refuses, before anything runs, a load through wrangler whose file (the
/// `repaired` bytes of the dump, with `--replace`'s drops and the pragma)
/// the temporary directory has no room for: it failed midway writing it,
/// with a bare IO error. None is written unless `through_wrangler`.
pub(super) fn refuse_no_room_for_file(
    through_wrangler: bool,
    repaired: u64,
    mode: Mode,
    inspected: &Inspected,
) -> Result<()> {
    if !through_wrangler {
        return Ok(());
    }
    let drops = match mode {
        Mode::Replace => drop_statements(&inspected.existing, &inspected.catalog),
        _ => Vec::new(),
    };
    let bytes = std::iter::once(DEFER_FOREIGN_KEYS)
        .chain(drops.iter().map(String::as_str))
        .fold(repaired, |sum, sql| sum + sql.len() as u64 + 1);
    let dir = std::env::temp_dir();
    let Some(free) = d1_core::room::short_of(bytes, d1_core::room::available_bytes(&dir)) else {
        return Ok(());
    };
    let size = d1_core::wording::size;
    Err(crate::exit::could_not_run(anyhow::anyhow!(
        "the restore writes the repaired SQL ({}, {bytes} bytes) to a file in the temporary \
         directory {} for `wrangler d1 execute --file`, and the file system holding it has {} \
         ({free} bytes) free; nothing was done. Free space there, or set TMPDIR to a directory \
         with room, then restore again",
        size(bytes),
        dir.display(),
        size(free)
    )))
}

/// What `wrangler d1 execute --local --file` (workers-sdk's d1-trimmer)
/// looks for: in a file that holds it anywhere, row values included, it
/// removes the first `BEGIN TRANSACTION;` and the first `COMMIT;` before it
/// runs the file, which then loads other values than the backup's. Remote
/// D1's import takes the file as it is.
pub(super) const LOCAL_WRANGLER_TRIMS: &str = "BEGIN TRANSACTION";

/// Stops a `--via-wrangler` restore into the local D1 `target` of a
/// backup whose statements hold [`LOCAL_WRANGLER_TRIMS`]; `loaded` says
/// what was done by then.
pub(super) fn refuse_local_wrangler_rewrite(target: &Environment, loaded: &str) -> Result<()> {
    crate::stop!(
        crate::exit::Exit::Refused,
        "the backup holds the text `BEGIN TRANSACTION` (in a row's value or a name): \
         `wrangler d1 execute --local --file` removes the first `BEGIN TRANSACTION;` \
         and the first `COMMIT;` of the whole file, values included, before it runs \
         it, so --via-wrangler would load other values than the backup's into {}. \
         {loaded}; restore without --via-wrangler, which loads the local D1 exactly.",
        target.database_name
    )
}

/// [`refuse_local_wrangler_rewrite`] for `--replace`'s drops, which go in
/// the same file, named as the target's tables are.
pub(super) fn refuse_drops_local_wrangler_rewrites(
    local_wrangler: Option<&Environment>,
    mode: Mode,
    inspected: &Inspected,
) -> Result<()> {
    let Some(target) = local_wrangler.filter(|_| mode == Mode::Replace) else {
        return Ok(());
    };
    match drops_rewritten(&inspected.existing, &inspected.catalog) {
        true => refuse_local_wrangler_rewrite(target, "Nothing was done"),
        false => Ok(()),
    }
}

/// Whether `--replace`'s drops of `existing` hold [`LOCAL_WRANGLER_TRIMS`]
/// (a name of the target's): `--via-wrangler` would be refused
/// ([`refuse_drops_local_wrangler_rewrites`]), and a `--replace` printed
/// to paste leaves it out.
pub(super) fn drops_rewritten(existing: &[(String, String)], catalog: &Catalog) -> bool {
    let drops = drop_statements(existing, catalog);
    drops.iter().any(|sql| sql.contains(LOCAL_WRANGLER_TRIMS))
}

/// The file about to be run, read once more for [`LOCAL_WRANGLER_TRIMS`]
/// (the plan judged its statements): what wrangler will be handed.
fn refuse_what_local_wrangler_rewrites(file: &Path, target: &Environment) -> Result<()> {
    use std::io::Read;
    const MARK: &[u8] = LOCAL_WRANGLER_TRIMS.as_bytes();
    let mut reader = File::open(file)?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut seen: Vec<u8> = Vec::new();
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        seen.extend_from_slice(&chunk[..n]);
        if seen.windows(MARK.len()).any(|w| w == MARK) {
            refuse_local_wrangler_rewrite(target, "Nothing was loaded")?;
        }
        seen.drain(..seen.len() - (MARK.len() - 1).min(seen.len()));
    }
}

/// `DROP` statements for `--replace`: triggers and views, then tables with
/// every referencing table before the table it references, because D1
/// enforces foreign keys and SQLite cannot check a key whose table is gone.
pub(super) fn drop_statements(existing: &[(String, String)], catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["trigger", "view"] {
        for (k, name) in existing {
            if k == kind {
                out.push(format!(
                    "DROP {} IF EXISTS {};",
                    kind.to_uppercase(),
                    quote_ident(name)
                ));
            }
        }
    }
    let tables: Vec<&str> = existing
        .iter()
        .filter(|(k, _)| k == "table")
        .map(|(_, n)| n.as_str())
        .collect();
    for name in children_first(&tables, &catalog.create_statements()) {
        out.push(format!("DROP TABLE IF EXISTS {};", quote_ident(&name)));
    }
    out
}

/// Orders tables so that each comes before every table it references,
/// reading the references with SQLite from the tables' DDL. Cycles are
/// broken in the given order.
pub(super) fn children_first(tables: &[&str], ddl: &BTreeMap<String, String>) -> Vec<String> {
    let mut references: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    // The DDL is the target's, read back from it: it runs under the gate.
    if let Ok(gate) = d1_core::gate::Gate::memory() {
        for t in tables {
            if let Some(sql) = ddl
                .get(*t)
                .filter(|s| !s.to_ascii_uppercase().contains("VIRTUAL TABLE"))
            {
                let _ = gate.run(sql);
            }
        }
        let db = gate.db();
        for t in tables {
            let refs = db
                .prepare(&format!(
                    "PRAGMA foreign_key_list(\"{}\")",
                    t.replace('"', "\"\"")
                ))
                .and_then(|mut s| {
                    s.query_map([], |r| r.get::<_, String>(2))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default();
            references.insert(t, refs);
        }
    }
    // A table may go once no remaining table references it.
    let mut remaining: Vec<&str> = tables.to_vec();
    let mut order = Vec::new();
    while !remaining.is_empty() {
        let referenced_by_others = |t: &str| {
            remaining.iter().any(|other| {
                *other != t
                    && references
                        .get(other)
                        .is_some_and(|r| r.iter().any(|x| x == t))
            })
        };
        let pick = remaining
            .iter()
            .position(|t| !referenced_by_others(t))
            .unwrap_or(0);
        order.push(remaining.remove(pick).to_owned());
    }
    order
}

pub(super) struct FileSink(BufWriter<File>);

impl repair::Sink for FileSink {
    fn statement(&mut self, sql: &str) -> Result<()> {
        crate::edge::signals::check()?;
        self.0.write_all(sql.as_bytes())?;
        self.0.write_all(b"\n")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rvAE: a message of D1's polled after "File already uploaded."
    /// (wrangler prints each as `🌀 <message>`) holding "Uploading " was
    /// taken for wrangler's own upload that never completed, and the
    /// target told as it was while D1 ran the import. Only wrangler's own
    /// lines count, in the shapes the pinned wrangler prints them when its
    /// output is captured (its spinner's `├ 🌀 Uploading <file>` and
    /// `│ 🌀 Uploading complete.`, its `✘ [ERROR]` upload failures).
    #[test]
    fn only_wranglers_own_upload_lines_say_the_import_was_not_handed_to_d1() {
        let start = [
            "🌀 Executing on remote database qbtime_db_prod (9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d):",
            "🌀 To execute on your local development database, remove the --remote flag from your wrangler command.",
            "Note: if the execution fails to complete, your DB will return to its original state and you can safely retry.",
            "├ Checking if file needs uploading",
        ];
        let upload = "├ 🌀 Uploading 9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d-70a1827c6ffe95d01b961986e8b7ffd7.sql";
        let complete = "│ 🌀 Uploading complete.";
        let lost = "✘ [ERROR] fetch failed";
        let started = |after: &[&str]| {
            let said: Vec<&str> = start.iter().chain(after).copied().collect();
            import_may_have_started(&crate::edge::wrangler::failed_having_printed(&said))
        };
        for after in [
            &[
                "🌀 File already uploaded. Processing.",
                "🌀 Uploading rows of notes",
                lost,
            ][..],
            &[
                "🌀 File already uploaded. Processing.",
                "🌀 File could not be uploaded",
                lost,
            ],
            &[
                upload,
                complete,
                "🌀 Starting import of x.sql (12629 bytes).",
                lost,
            ],
            &[
                upload,
                complete,
                "🌀 Uploading into x",
                "🌀 File could not be uploaded",
                lost,
            ],
            &[lost],
            &[],
        ] {
            assert!(started(after), "{after:?}");
        }
        for after in [
            &[upload, lost][..],
            &[upload, "🌀 Uploading complete.", lost],
            &[
                upload,
                complete,
                "✘ [ERROR] File could not be uploaded. Please retry.",
            ],
            &[
                upload,
                complete,
                "✘ [ERROR] File did not upload successfully. Please retry.",
            ],
            &[
                upload,
                complete,
                "✘ [ERROR] File contents did not upload successfully. Please retry.",
            ],
        ] {
            assert!(!started(after), "{after:?}");
        }
        // As captured: wrangler's error (standard error) before its output.
        let error_first: Vec<&str> = ["✘ [ERROR] File could not be uploaded. Please retry."]
            .iter()
            .chain(&start)
            .chain(&[upload, complete])
            .copied()
            .collect();
        let failed = crate::edge::wrangler::failed_having_printed(&error_first);
        assert!(!import_may_have_started(&failed));
        // Stopped before it said it checked for the file: what it did is
        // not known here, so the import may have begun (MO).
        let before = crate::edge::wrangler::failed_having_printed(&start[..3]);
        assert!(import_may_have_started(&before));
    }

    /// MO: a wrangler whose output lacks "Checking if file needs
    /// uploading" (a later wrangler that words it otherwise, or one stopped
    /// before it printed anything) was taken for one that never began the
    /// import, and its failed restore journaled as having changed nothing,
    /// so `status` trusted the backup's migrations for a database D1 may
    /// have imported into. Only a failure this tool knows came before
    /// wrangler ran changes nothing.
    #[test]
    fn a_wrangler_failure_without_its_checking_line_may_have_started_the_import() {
        let reworded = [
            "🌀 Executing on remote database qbtime_db_prod (9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d):",
            "├ Looking for an earlier upload of this file",
            "🌀 Import handed over. Processing.",
            "✘ [ERROR] fetch failed",
        ];
        for said in [&reworded[..], &[], &reworded[..1]] {
            let failed = crate::edge::wrangler::failed_having_printed(said);
            assert!(import_may_have_started(&failed), "{said:?}");
        }
        // Before wrangler ran: the file for it could not be written.
        let before = anyhow::anyhow!("no space left on device");
        assert!(!import_may_have_started(&before));
        let stopped = anyhow::Error::new(crate::edge::signals::Interrupted(2));
        assert!(!import_may_have_started(&stopped));
    }

    /// MU: a read of wrangler's pipes that failed midway was no failure
    /// of a run, so the restore was journaled as having changed nothing:
    /// what wrangler did after the lines read is not known, and it may
    /// have handed D1 the import, whatever the lines read say (here an
    /// upload begun, which alone would say it was not).
    #[test]
    fn a_wrangler_whose_output_could_not_be_read_may_have_started_the_import() {
        let said = [
            "🌀 Executing on remote database qbtime_db_prod (9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d):",
            "├ Checking if file needs uploading",
            "├ 🌀 Uploading 9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d.sql",
        ];
        for read in [&said[..], &said[..2], &[]] {
            let error = std::io::Error::other("the pipe read failed");
            let failed = crate::edge::wrangler::failed_reading_output(read, error);
            assert!(import_may_have_started(&failed), "{read:?}");
        }
    }

    /// MU: Cloudflare refusing the token for `init` (code 10000, before
    /// any upload) was told as an import of unknown outcome; a refusal for
    /// the token is answered before the request reaches D1, so nothing was
    /// handed. A refusal once an upload completed (of `ingest`, or of a
    /// poll), or after "File already uploaded.", or with another code too,
    /// still may have been.
    #[test]
    fn an_init_refused_for_its_token_did_not_start_the_import() {
        let error = [
            "✘ [ERROR] A request to the Cloudflare API (/accounts/0123/d1/database/9c8b/import) failed.",
            "  Authentication error [code: 10000]",
        ];
        let checking = "├ Checking if file needs uploading";
        let refused: Vec<&str> = error.iter().copied().chain([checking]).collect();
        let failed = crate::edge::wrangler::failed_having_printed(&refused);
        assert!(!import_may_have_started(&failed));
        let uploaded = ["├ 🌀 Uploading 9c8b.sql", "│ 🌀 Uploading complete."];
        for then in [&uploaded[..], &["🌀 File already uploaded. Processing."]] {
            let later: Vec<&str> = refused.iter().chain(then).copied().collect();
            let failed = crate::edge::wrangler::failed_having_printed(&later);
            assert!(import_may_have_started(&failed), "{then:?}");
        }
        let other = [
            error[0],
            "  Internal error [code: 7500]",
            error[1],
            checking,
        ];
        let failed = crate::edge::wrangler::failed_having_printed(&other);
        assert!(import_may_have_started(&failed));
    }

    #[test]
    fn replace_drops_triggers_and_views_then_referencing_tables_first() {
        let existing: Vec<(String, String)> = [
            ("table", "keys"),
            ("table", "accounts"),
            ("trigger", "t"),
            ("table", "members"),
            ("view", "v"),
            ("table", "solo"),
        ]
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
        let ddl = BTreeMap::from([
            (
                "keys".to_owned(),
                "CREATE TABLE keys(id TEXT PRIMARY KEY)".to_owned(),
            ),
            (
                "accounts".to_owned(),
                "CREATE TABLE accounts(id INTEGER PRIMARY KEY, k TEXT REFERENCES keys(id))"
                    .to_owned(),
            ),
            (
                "members".to_owned(),
                "CREATE TABLE members(a INTEGER REFERENCES accounts(id))".to_owned(),
            ),
            ("solo".to_owned(), "CREATE TABLE solo(x)".to_owned()),
        ]);
        let tables = ["keys", "accounts", "members", "solo"];
        assert_eq!(
            children_first(&tables, &ddl),
            ["members", "accounts", "keys", "solo"]
        );
        let drops = drop_statements(&existing, &Catalog::default());
        assert_eq!(drops[0], "DROP TRIGGER IF EXISTS \"t\";");
        assert_eq!(drops[1], "DROP VIEW IF EXISTS \"v\";");
        assert_eq!(drops.len(), 6);
    }
}
