//! The restore journal (`backups/restores.jsonl`): a line for each
//! restore that changes an environment, written by `restore` (and so by
//! `drill`) as its load starts and as it ends, and read back by `status`.
//!
//! A restore into an empty database (an emptied local D1, `--clean`, `--to
//! new:NAME`) takes no safety backup, so nothing among the backups says it
//! happened: the newest verified backup stays the one taken before, of a
//! database the restore replaced, and its migrations say nothing of the
//! database now. The journal says it, beside the Time Travel journal.
//!
//! Like every file in the backup directory it may be forged or broken, so
//! its reader only ever errs toward "unknown": a line that does not read
//! may be a restore of any environment, made when the journal was last
//! written; and the last restore is the one its last line records (the
//! journal is appended to), or the latest by date where that one's
//! outcome is worse: a line dated long ago, appended after a real one,
//! hides nothing, and a line dated after now (a clock running ahead, or
//! forged) is never the last, and is told (rvBX).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::environment::Environment;

/// The restore journal, in the backup directory.
pub const RESTORE_JOURNAL: &str = "restores.jsonl";

/// What a line records of a restore's state: its load is starting, it
/// ended checked, it failed, or a signal (SIGINT, SIGTERM, SIGHUP) stopped
/// it.
const STATUSES: [&str; 4] = ["started", "done", "failed", "interrupted"];

/// The longest backup name a line of the journal is shown with: a forged
/// one of a megabyte is cut.
const LONGEST_SHOWN: usize = 200;

/// Appends a line for a restore of `backup` into `target` in `mode`,
/// started at `started`, now `status` (`started`, `done`, `failed` or
/// `interrupted`), with where `target` is (`local` or `remote`: what a
/// stopped load may have changed depends on it); `changed_nothing` for a
/// `failed` or `interrupted` known to have written nothing to the target
/// (its load all or nothing and not committed, or stopped before it
/// began), which `status` does not count as a restore that came after the
/// target's backups.
pub fn record(
    backup_dir: &Path,
    target: &Environment,
    (backup, mode): (&str, &str),
    started: DateTime<Utc>,
    (status, changed_nothing): (&str, bool),
) -> Result<()> {
    let mut entry = serde_json::json!({
        "at": Utc::now(),
        "started_at": started,
        "environment": target.name,
        "database": target.database_name,
        "database_id": target.database_id,
        "backup": backup,
        "mode": mode,
        "location": target.location.to_string(),
        "status": status,
    });
    if changed_nothing {
        entry["changed_nothing"] = true.into();
    }
    crate::edge::fsutil::append_json_line(
        &backup_dir.join(RESTORE_JOURNAL),
        &entry,
        "the restore journal",
    )
}

/// Refuses a restore its journal has no room to record (a full disk, a
/// journal at its size limit, one held by another writer): the record is
/// what tells `status` that the backups predate the database.
///
/// A backup directory this user may not write into (mode 555, `chattr +i`)
/// is bad input, exit 2, told as every other command that writes there
/// tells it (the directory, `chmod u+w`, `chattr -i`, `--backup-dir`):
/// this check comes before the safety backup, which used to say it.
pub fn check_room(backup_dir: &Path) -> Result<()> {
    let journal = backup_dir.join(RESTORE_JOURNAL);
    crate::edge::fsutil::check_room(&journal, "the restore journal").map_err(|e| {
        let errno =
            crate::edge::fsutil::may_not_create_in(backup_dir).and_then(|e| e.raw_os_error());
        match errno.and_then(|n| crate::edge::fsutil::fix_for(backup_dir, n)) {
            Some(fix) => crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
                "the restore journal {} cannot take a record, so the restore would go \
                 unrecorded; nothing was done. {fix}",
                journal.display()
            )),
            None => e,
        }
    })
}

/// The last restore of a database, as `status` gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restore {
    /// When it started (its load, after any safety backup), as recorded.
    pub at: String,
    /// The backup it loaded, escaped and redacted for printing.
    pub backup: String,
    /// `into-empty`, `replace` or `clean`; empty when not recorded.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// `done`, `failed`, `started` (a live run restoring into its
    /// environment holds the backup lock now) or `interrupted` (stopped by
    /// a signal, as its line says; or a start with no end, and no such
    /// run: it stopped before it ended, and may have loaded), as
    /// [`Restore::judged`] tells the last two.
    pub status: String,
    /// For one `failed` or `interrupted`: it wrote nothing to its target,
    /// as its run knew (a load all or nothing that was not committed, or
    /// none begun).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub changed_nothing: bool,
    /// What the database holds after it, as its run knew: `restored`
    /// (`done`), `running` (`started`), `unchanged` (one that changed
    /// nothing), `failed`, or `unknown` (`interrupted` once it may have
    /// changed the database: D1 may have begun an import it ends on its
    /// own), which `status` fails on (NT). Set by [`Restore::judged`].
    pub outcome: &'static str,
    /// Its line ended it `interrupted`: its run was stopped by a signal
    /// and said what it had changed, unlike a start with no end.
    #[serde(skip)]
    pub signalled: bool,
    /// For one whose outcome is unknown: the verified backup of its
    /// database taken after it, which records the database as it now is
    /// and so settles it (rvBX); set by `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_by: Option<String>,
    /// The environment's name its line records, when another than the
    /// one `status` tells it of: the name this database had then (OB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<String>,
    /// `local` or `remote`, as its line records it (empty in older lines).
    #[serde(skip)]
    pub location: String,
    #[serde(skip)]
    pub started: DateTime<Utc>,
    #[serde(skip)]
    pub database_id: Option<String>,
}

/// What the journal says: the last restore of each (environment,
/// database, database id), the last one of each that may have changed
/// its target ([`Restore::may_have_changed`]), and, when a line of it
/// does not read (or the journal itself does not), when it was last
/// written and which line; and the lines dated after now (`line N`, and
/// the date it claims), never taken as the last restore.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub last: BTreeMap<(String, String, String), Restore>,
    pub last_changing: BTreeMap<(String, String, String), Restore>,
    pub unread: Option<(DateTime<Utc>, String)>,
    pub dated_ahead: Vec<(String, DateTime<Utc>)>,
}

/// The last restore the journal in `backup_dir` records into `env`'s
/// database (its name and id, as the line records them) that may have
/// changed it; a line with no database or another id is not taken.
pub fn last_changing_into(backup_dir: &Path, env: &Environment) -> Option<Restore> {
    { read(backup_dir).last_changing.into_iter() }
        .filter(|((_, db, id), _)| {
            *db == env.database_name && id.eq_ignore_ascii_case(&env.database_id)
        })
        .map(|(_, r)| r)
        .max_by_key(|r| r.started)
}

/// Reads the journal in `backup_dir` (none when it is absent).
pub fn read(backup_dir: &Path) -> Journal {
    let path = backup_dir.join(RESTORE_JOURNAL);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Journal::default();
    };
    let written = meta.modified().map(DateTime::<Utc>::from).ok();
    // Undatable: as if written now, which every backup predates.
    let written = written
        .filter(|w| *w <= Utc::now())
        .unwrap_or_else(Utc::now);
    let shown = d1_core::names::shown_path(&path);
    match crate::edge::fsutil::read_own_lines(&path, "restore journal") {
        Ok(own) => {
            let mut journal = parse(&own.lines);
            let first = own.skipped.first().map(|n| format!("line {n}"));
            if let Some(line) = first.or(journal.unread.take().map(|(_, line)| line)) {
                journal.unread = Some((written, format!("{line} of {shown}")));
            }
            for (line, _) in &mut journal.dated_ahead {
                *line = format!("{line} of {shown}");
            }
            journal
        }
        Err(e) => {
            crate::warn!("{e:#}");
            Journal {
                unread: Some((written, shown)),
                ..Journal::default()
            }
        }
    }
}

/// The journal's lines read: the last restore of each database (the one
/// its last line records, or the latest by date where that one's outcome
/// is worse: [`Restore::worse_than`]), and the last that may have changed
/// it, and the first line that does not read, as `line N` (dated by
/// [`read`]). A line dated after now is never the last restore; it still
/// counts among those that may have changed the database, erring toward
/// migrations unknown.
///
/// The lines of one restore share its date: its end (a later line)
/// stands before its start, except that an end saying it changed nothing
/// never stands before one that says otherwise (`done`, or a `failed`
/// that may have written): two ends of one restore are one forged, and
/// the journal errs toward a restore that counts.
pub fn parse(lines: &[String]) -> Journal {
    let mut journal = Journal::default();
    let now = Utc::now();
    let mut restores: BTreeMap<_, BTreeMap<DateTime<Utc>, Restore>> = BTreeMap::new();
    // The date of each database's restore its last line (not dated ahead)
    // records.
    let mut appended_last = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, restore)) = line_read(line) else {
            journal
                .unread
                .get_or_insert((Utc::now(), format!("line {}", i + 1)));
            continue;
        };
        if restore.started > now {
            journal
                .dated_ahead
                .push((format!("line {}", i + 1), restore.started));
        } else {
            appended_last.insert(key.clone(), restore.started);
        }
        let of_database = restores.entry(key).or_default();
        let kept = |old: &Restore| match old.status.as_str() {
            "started" => false,
            _ => restore.status == "started" || old.may_have_changed(),
        };
        match of_database.get(&restore.started) {
            Some(old) if kept(old) => {}
            _ => {
                of_database.insert(restore.started, restore);
            }
        }
    }
    for (key, of_database) in restores {
        let changing = { of_database.values().rev() }.find(|r| r.may_have_changed());
        if let Some(changing) = changing {
            journal.last_changing.insert(key.clone(), changing.clone());
        }
        let by_order = { appended_last.get(&key) }.and_then(|at| of_database.get(at));
        let by_date = { of_database.values().rev() }.find(|r| r.started <= now);
        let last = match (by_order, by_date) {
            (Some(o), Some(d)) if o.worse_than(d) => Some(o),
            (_, d) => d,
        };
        if let Some(last) = last {
            journal.last.insert(key, last.clone());
        }
    }
    journal
}

/// The database a journal's line records: its name and id when printable
/// (each empty or absent otherwise), and the id in lower case, its key.
pub fn database_of(entry: &serde_json::Value) -> (String, Option<String>, String) {
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let printable = |d: &String| d1_core::names::is_printable(d);
    let database = field("database").filter(printable).unwrap_or_default();
    let database_id = field("database_id").filter(printable);
    let id = database_id
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    (database, database_id, id)
}

/// One line, when it reads as this tool writes it.
fn line_read(line: &str) -> Option<((String, String, String), Restore)> {
    let entry = serde_json::from_str::<serde_json::Value>(line).ok()?;
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let env = field("environment").filter(|e| d1_core::names::is_printable(e))?;
    let at = field("started_at").or_else(|| field("at"))?;
    let started = DateTime::parse_from_rfc3339(&at).ok()?.with_timezone(&Utc);
    let status = field("status").filter(|s| STATUSES.contains(&s.as_str()))?;
    let (database, database_id, id) = database_of(&entry);
    let backup = field("backup").unwrap_or_default();
    let backup = d1_core::names::cut(&d1_core::names::shown(&backup), LONGEST_SHOWN).into_owned();
    let mode = field("mode")
        .filter(|m| ["into-empty", "replace", "clean"].contains(&m.as_str()))
        .unwrap_or_default();
    let changed_nothing = ["failed", "interrupted"].contains(&status.as_str())
        && entry.get("changed_nothing").and_then(|v| v.as_bool()) == Some(true);
    let location = field("location")
        .filter(|l| ["local", "remote"].contains(&l.as_str()))
        .unwrap_or_default();
    let restore = Restore {
        at,
        backup: crate::redact::text(&backup),
        mode,
        signalled: status == "interrupted",
        settled_by: None,
        recorded_as: None,
        outcome: outcome_of(&status, changed_nothing),
        status,
        changed_nothing,
        location,
        started,
        database_id,
    };
    Some(((env, database, id), restore))
}

/// [`Restore::outcome`] of a restore that ended `status`.
fn outcome_of(status: &str, changed_nothing: bool) -> &'static str {
    match status {
        "done" => "restored",
        "started" => "running",
        "failed" | "interrupted" if changed_nothing => "unchanged",
        "failed" => "failed",
        _ => "unknown",
    }
}

impl Restore {
    /// Whether it may have changed its target: every restore but one
    /// `failed` or `interrupted` that wrote nothing, a start with no end
    /// included.
    pub fn may_have_changed(&self) -> bool {
        !(matches!(self.status.as_str(), "failed" | "interrupted") && self.changed_nothing)
    }

    /// A `started` restore of `env` is `interrupted` unless a live run
    /// restoring into `env` holds the backup lock now (`running`, by
    /// [`crate::steps::lock::restore_running`]): its run stopped before
    /// it recorded an end.
    pub fn judged(mut self, env: &str, running: Option<&str>) -> Self {
        if self.status == "started" && running != Some(env) {
            self.status = "interrupted".to_owned();
        }
        self.outcome = outcome_of(&self.status, self.changed_nothing);
        self
    }

    /// Its outcome is unknown ([`Restore::outcome`]).
    pub fn outcome_unknown(&self) -> bool {
        self.outcome == "unknown"
    }

    /// Its outcome is unknown, and no verified backup of its database
    /// taken after it settles what the database holds
    /// ([`Restore::settled_by`]): `status` fails on it.
    pub fn unsettled(&self) -> bool {
        self.outcome_unknown() && self.settled_by.is_none()
    }

    /// Its outcome is worse than `other`'s, where the journal's last line
    /// and the latest date disagree: unknown (or a start with no end,
    /// which may be) before failed, before restored, before unchanged.
    fn worse_than(&self, other: &Restore) -> bool {
        let rank = |r: &Restore| match r.outcome {
            "unknown" | "running" => 3,
            "failed" => 2,
            "restored" => 1,
            _ => 0,
        };
        rank(self) > rank(other)
    }

    /// Its line in the report: when, from which backup, how it ended.
    pub fn told(&self) -> String {
        let at = self.started.format("%Y-%m-%d %H:%M UTC");
        let mode = match self.mode.as_str() {
            "" => String::new(),
            mode => format!(" ({mode})"),
        };
        let status = match self.status.as_str() {
            "started" => {
                "started, and no end is recorded yet: a run doing it holds the backup \
                          lock now"
            }
            "interrupted" if self.signalled => self.signalled_told(),
            "interrupted" => {
                "interrupted: it started, no end is recorded, and no run doing it holds the \
                 backup lock, so its run stopped before it ended (it may have loaded)"
            }
            "failed" if self.changed_nothing => "failed, and changed nothing",
            other => other,
        };
        let settled = match &self.settled_by {
            Some(file) if self.outcome_unknown() => format!(
                "; its outcome was unknown, but {file}, taken after it, records the database \
                 as it now is"
            ),
            _ => String::new(),
        };
        let named = { self.recorded_as.as_deref() }
            .map(|e| format!(" (recorded as {})", d1_core::names::shown(e)))
            .unwrap_or_default();
        format!("{at}, {}{mode}: {status}{named}{settled}", self.backup)
    }

    /// What a restore stopped by a signal may have changed, by where its
    /// target is: a local load is one transaction, which a stopped run did
    /// not commit; D1 goes on with an import it was handed.
    fn signalled_told(&self) -> &'static str {
        match (self.changed_nothing, self.location.as_str()) {
            (true, "local") => {
                "interrupted by a signal before its load was committed: the load is one \
                 transaction, so it changed nothing"
            }
            (true, "remote") => {
                "interrupted by a signal before D1 was handed the import, so it changed nothing"
            }
            (true, _) => {
                "interrupted by a signal before anything was loaded, so it changed nothing"
            }
            (false, "remote") => {
                "interrupted by a signal once it may have changed the database (D1 may have \
                 begun the import, which it ends on its own, or --clean's migrations were \
                 applied): it may have loaded"
            }
            (false, _) => {
                "interrupted by a signal once it may have changed the database (--clean's \
                 migrations were applied, or its load was committed): it may have loaded"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, backup: &str, status: &str) -> String {
        serde_json::json!({
            "at": at, "started_at": at, "environment": "prod", "database": "db",
            "database_id": "ID", "backup": backup, "mode": "clean", "status": status,
        })
        .to_string()
    }

    #[test]
    fn the_last_restore_is_the_latest_by_date_and_its_end_after_its_start() {
        let lines = [
            line("2026-12-01T10:00:00Z", "a.sql", "started"),
            line("2026-12-01T10:00:00Z", "a.sql", "done"),
            // Dated long ago, appended later: hides nothing.
            line("2001-01-01T00:00:00Z", "old.sql", "done"),
        ];
        let journal = parse(&lines.map(String::from));
        let last = &journal.last[&("prod".into(), "db".into(), "id".into())];
        assert_eq!(
            (last.backup.as_str(), last.status.as_str()),
            ("a.sql", "done")
        );
        assert_eq!(last.told(), "2026-12-01 10:00 UTC, a.sql (clean): done");
        assert!(journal.unread.is_none());
    }

    /// rvBX: a line dated after now is never the last restore, and is
    /// named; the journal's last line is, where its outcome is worse than
    /// the latest by date's.
    #[test]
    fn the_last_line_with_the_worse_outcome_wins_and_a_line_dated_ahead_never_does() {
        let journal = parse(&[
            line("2026-12-01T10:00:00Z", "a.sql", "done"),
            line("2099-01-01T00:00:00Z", "forged.sql", "done"),
            line("2026-11-01T10:00:00Z", "b.sql", "interrupted"),
        ]);
        let last = journal.last.values().next().expect("a last restore");
        assert_eq!((last.backup.as_str(), last.outcome), ("b.sql", "unknown"));
        let ahead: Vec<&str> = { journal.dated_ahead.iter() }
            .map(|(l, _)| l.as_str())
            .collect();
        assert_eq!(ahead, ["line 2"]);
    }

    /// ME: a `failed` that wrote nothing is the last restore, told so,
    /// and not the last that may have changed the database: that is the
    /// one before it. A forged end saying "changed nothing" after a `done`
    /// of the same restore hides nothing; a start with no end counts, told
    /// `interrupted` unless a run restoring into its environment holds the
    /// backup lock now.
    #[test]
    fn a_failure_that_changed_nothing_is_told_and_does_not_count() {
        let unchanged = |at: &str| {
            let mut v: serde_json::Value =
                serde_json::from_str(&line(at, "b.sql", "failed")).unwrap();
            v["changed_nothing"] = true.into();
            v.to_string()
        };
        let key = ("prod".to_owned(), "db".to_owned(), "id".to_owned());
        let lines = [
            line("2026-12-01T10:00:00Z", "a.sql", "started"),
            line("2026-12-01T10:00:00Z", "a.sql", "done"),
            unchanged("2026-12-01T10:00:00Z"),
            line("2026-12-02T10:00:00Z", "b.sql", "started"),
            unchanged("2026-12-02T10:00:00Z"),
        ];
        let journal = parse(&lines.map(String::from));
        let last = &journal.last[&key];
        assert_eq!(
            last.told(),
            "2026-12-02 10:00 UTC, b.sql (clean): failed, and changed nothing"
        );
        let changing = &journal.last_changing[&key];
        assert_eq!(changing.told(), "2026-12-01 10:00 UTC, a.sql (clean): done");

        let started = [line("2026-12-03T10:00:00Z", "c.sql", "started")];
        let journal = parse(&started.map(String::from));
        let last = journal.last_changing[&key].clone();
        assert_eq!(last.clone().judged("prod", Some("prod")).status, "started");
        assert_eq!(
            last.clone().judged("prod", Some("staging")).status,
            "interrupted"
        );
        assert!(last.judged("prod", None).told().contains("interrupted"));
    }

    /// MO: a restore stopped by SIGINT or SIGTERM was journaled
    /// `failed`, as if it had run to an error. Its end says `interrupted`,
    /// and `status` tells it so, with what it may have changed: a local
    /// load stopped before its commit (one transaction) changed nothing; a
    /// remote one stopped once D1 may have been handed the import may have
    /// loaded. An older `failed` line reads as before.
    #[test]
    fn a_restore_stopped_by_a_signal_is_told_interrupted_with_what_it_may_have_changed() {
        let ended = |at: &str, location: &str, nothing: bool| {
            let mut v: serde_json::Value =
                serde_json::from_str(&line(at, "a.sql", "interrupted")).unwrap();
            v["location"] = location.into();
            if nothing {
                v["changed_nothing"] = true.into();
            }
            v.to_string()
        };
        let key = ("prod".to_owned(), "db".to_owned(), "id".to_owned());
        let lines = [
            line("2026-12-01T10:00:00Z", "a.sql", "started"),
            ended("2026-12-01T10:00:00Z", "local", true),
        ];
        let journal = parse(&lines.map(String::from));
        let last = journal.last[&key].clone().judged("prod", None);
        assert_eq!(last.status, "interrupted");
        let told = last.told();
        assert!(
            told.contains("interrupted by a signal") && told.contains("changed nothing"),
            "{told}"
        );
        assert!(!journal.last_changing.contains_key(&key));

        let lines = [
            line("2026-12-01T10:00:00Z", "a.sql", "started"),
            ended("2026-12-01T10:00:00Z", "remote", false),
        ];
        let journal = parse(&lines.map(String::from));
        let told = journal.last_changing[&key].told();
        assert!(
            told.contains("interrupted by a signal")
                && told.contains("D1 may have begun the import")
                && !told.contains("changed nothing"),
            "{told}"
        );

        let mut old: serde_json::Value =
            serde_json::from_str(&line("2026-12-01T10:00:00Z", "a.sql", "failed")).unwrap();
        old["changed_nothing"] = true.into();
        let journal = parse(&[old.to_string()]);
        assert_eq!(
            journal.last[&key].told(),
            "2026-12-01 10:00 UTC, a.sql (clean): failed, and changed nothing"
        );
    }

    #[test]
    fn a_line_that_does_not_read_is_named_and_a_name_is_escaped() {
        let lines = [
            "{\"at\": \"2026-12-01T10:00:00Z\", \"environ".to_owned(),
            line("2026-12-01T10:00:00Z", "a\u{1b}[31m.sql", "done"),
            line("yesterday", "b.sql", "done"),
            line("2026-12-01T10:00:00Z", "c.sql", "restored"),
        ];
        let journal = parse(&lines);
        assert_eq!(journal.unread.map(|(_, l)| l).as_deref(), Some("line 1"));
        let last = &journal.last[&("prod".into(), "db".into(), "id".into())];
        assert!(!last.backup.contains('\u{1b}'), "{}", last.backup);
        assert_eq!(journal.last.len(), 1);
    }
}
