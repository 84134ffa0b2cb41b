//! The status report (`cargo xtask status`, and the last step of `deploy`):
//! each environment at a glance, for an operator and
//! for a monitor. For every environment in the wrangler configuration: its
//! newest verified full backup and its age, whether that backup is offsite,
//! the last restore drill of its backups and that drill's result, and the
//! last Time Travel restore. It fails when an environment's newest verified
//! backup is older than its `max_age` in `backups.toml`, so a cron job or an
//! uptime check can alert on a backup job that silently stopped.
//!
//! Everything is read from files: the manifests, the drill log, the Time
//! Travel journal and the offsite lock journal (what `offsite lock` set and
//! read back from this machine). Nothing calls wrangler; `doctor` reads the
//! bucket's lock rules themselves.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::project::Project;
use crate::config::settings::SETTINGS_FILE;
use crate::edge::inventory::{self, Entry};
use crate::steps::migrations::{migration_files, pending};
use d1_core::span::Span;

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Only this environment (default: every environment in the wrangler configuration).
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// An environment's offsite lock as `status --json` gives it: values a
/// script compares, the text line's advice apart (`said`, for the text
/// output alone). It was the line itself (PE 4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OffsiteLock {
    /// `locked` or `not_locked` (no lock recorded here for the bucket).
    pub state: &'static str,
    pub bucket: String,
    /// How many days after upload a copy stays locked; `null` when not
    /// locked.
    pub days: Option<i64>,
    /// The bucket's lock rule, as `offsite lock` set it; `null` when not
    /// locked.
    pub rule: Option<String>,
    /// When `offsite lock` set it and read it back; `null` when not locked.
    pub set_at: Option<String>,
    /// The text output's line ([`lock_line`]).
    #[serde(skip)]
    pub said: String,
}

/// One environment's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvStatus {
    pub environment: String,
    pub database: String,
    pub newest_verified: Option<Newest>,
    /// `max_age` from `backups.toml`, as written there.
    pub max_age: Option<String>,
    /// The newest verified backup is older than `max_age`, or there is none.
    pub stale: bool,
    /// The newest full backup, when it is newer than the newest verified
    /// one and failed verification: the backup job has started to take bad
    /// backups, which `latest` passes over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_is_bad: Option<String>,
    /// The newest full backup, when it is newer than the newest verified
    /// one and was never verified (its verification could not run): a
    /// warning, not a failure; `latest` passes it over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_unverified: Option<String>,
    /// The newest full backup, when it is newer than the newest verified
    /// one and was verified good, but its manifest was changed since (a
    /// row count, a digest edited): `latest` passes it over until a verify
    /// checks it again. A warning, not a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_changed: Option<String>,
    /// Full backups dated after this machine's clock (one that ran fast
    /// took them, or this one is behind): `latest` passes them over. A
    /// warning, not a failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dated_ahead: Vec<String>,
    /// The database id the newest verified backup was taken of, when it is
    /// not the one the configuration gives the environment now (its
    /// database was replaced under the same name): nothing written to the
    /// database configured now is in it, so the environment fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of_previous_database: Option<String>,
    /// The whole backups recorded under the environment's names with
    /// another database id, newer than its newest verified backup, that
    /// it passed over (`latest:ENV`'s rule): another checkout's database
    /// sharing the backup directory, or the one it had before it was
    /// created again. Always given, empty when there are none; a warning
    /// on stderr too.
    pub other_ids_passed_over: Vec<OtherId>,
    /// The backups recorded under the environment's name whose manifest
    /// names a database it does not have (another environment's, or
    /// none), which it passes over: misfiled, or relabelled by hand.
    /// Always given, empty when there are none; a warning on stderr too.
    pub other_databases_passed_over: Vec<crate::edge::inventory::Misfiled>,
    pub last_drill: Option<Drill>,
    pub last_time_travel_restore: Option<TimeTravelRestore>,
    /// The last restore of a backup into this database, from the restore
    /// journal (`backups/restores.jsonl`): when it started, the backup,
    /// its mode and how it ended; `null` when none is recorded.
    pub last_restore: Option<crate::steps::restores::Restore>,
    /// For an environment with an offsite bucket: the lock `offsite lock`
    /// last set and read back, or that none is recorded ([`OffsiteLock`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offsite_lock: Option<OffsiteLock>,
    /// The migrations in the environment's `migrations_dir` that its newest
    /// verified backup's database had not applied: pending then, and still
    /// pending unless they were applied since (after a Time Travel restore
    /// or a restore of an older backup, they are pending again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_migrations: Option<Vec<String>>,
    /// The command the migrations line advises to apply them
    /// ([`crate::edge::confirm::migrate_command`]): run as printed, it
    /// needs the flag that confirms it with no terminal to ask.
    #[serde(skip)]
    pub migrate_command: String,
    /// The migrations its newest verified backup's database had applied
    /// that the environment's `migrations_dir` here does not hold (a
    /// checkout of another branch than the one that applied them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lacking_migrations: Vec<String>,
    /// Why what the newest verified backup says of the migrations says
    /// nothing of the database now (a Time Travel restore or a restore
    /// came after it, or a line of the restore journal that does not read
    /// was written since); `pending_migrations` is then left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations_unknown: Option<String>,
    /// Why a restore of the newest verified backup would fail or be
    /// refused on this checkout though the backup is good: an
    /// applied migration edited since, a recipient no longer named. Each
    /// is a warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_warnings: Vec<String>,
    /// For an environment with an offsite bucket whose newest verified
    /// backup has no offsite copy: none of its backups has one, or the
    /// newest that has is older than `max_age` (a failed upload). A
    /// warning, even with `-q`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offsite_behind: Option<String>,
    /// After a key rotation: the older backups kept here that only a
    /// recipient `[<env>.encryption]` no longer names opens, and those
    /// recipients. A line of the report, not a warning: a rotation under
    /// way is no fault, and a scheduled `status -q` stays quiet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_keys: Option<String>,
    /// The runbook's quarterly drill is due: the last drill of this
    /// environment's backups failed, or passed more than
    /// [`DRILL_EVERY_DAYS`] ago; or production was never drilled and has
    /// kept backups longer than that. A warning, even with `-q`; a fresh
    /// project, or an environment other than production never drilled,
    /// gets none (it would be warned daily).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill_due: Option<String>,
}

/// A quarter, and a little: the runbook asks for a drill each quarter.
pub const DRILL_EVERY_DAYS: i64 = 92;

/// Why the drill is due, from the last drill's result and date; or, for
/// production never drilled, from the age of its oldest backup here
/// (`oldest`): backups kept a quarter without a drill are the runbook's
/// "guess".
fn drill_due(
    env: &crate::config::environment::Environment,
    drill: Option<&Drill>,
    oldest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    let rerun = format!(
        "`cargo xtask drill --from {} --dry-run` shows the plan, and `--yes` runs it",
        env.name
    );
    let Some(d) = drill else {
        let days = (now - oldest?).num_days();
        return (env.is_production() && days > DRILL_EVERY_DAYS).then(|| {
            format!(
                "no restore drill of its backups is recorded, and the oldest here is {days} days \
                 old; the runbook asks for one each quarter: {rerun}"
            )
        });
    };
    if d.result != "PASS" {
        return Some(format!(
            "the last restore drill of its backups, {} UTC → {}, ended {}: no drill since \
             shows that its backups restore; {rerun}",
            d.date, d.to, d.result
        ));
    }
    // The date is text in a committed file: one that is no date, or later
    // than now (written by a clock running ahead), proves no recent drill.
    let at = chrono::NaiveDateTime::parse_from_str(&d.date, "%Y-%m-%d %H:%M").ok();
    let Some(at) = at.filter(|at| *at <= now.naive_utc() + chrono::Duration::days(1)) else {
        return Some(format!(
            "the last restore drill of its backups is recorded as passed on {:?}, which is {} \
             ({}), so no record shows when its backups last restored; {rerun}",
            d.date,
            match at {
                Some(_) => "later than now",
                None => "not a date as `YYYY-MM-DD HH:MM`",
            },
            crate::edge::journals::DRILL_LOG
        ));
    };
    let days = (now.naive_utc() - at).num_days();
    (days > DRILL_EVERY_DAYS).then(|| {
        format!(
            "the last restore drill of its backups passed {} UTC, {days} days ago; the runbook \
             asks for one each quarter: {rerun}",
            d.date
        )
    })
}

/// A backup of another database id recorded under an environment's names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OtherId {
    pub file: String,
    pub database_id: String,
}

/// An environment's newest verified full backup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Newest {
    pub file: String,
    pub created_at: DateTime<Utc>,
    pub age_seconds: i64,
    /// `r2://bucket/key` when the backup has an offsite copy.
    pub offsite: Option<String>,
    /// The migrations its database had applied, from its manifest; `None`
    /// when the dump had no `d1_migrations` table.
    #[serde(skip)]
    pub applied_migrations: Option<Vec<String>>,
    /// The migrations it was taken to undo (`migrate`'s pre-migration
    /// backup): pending as of it, and applied just after, if that worked.
    /// In `--json` as `taken_before_migrations`, so that a monitor reading
    /// `pending_migrations` (as of this backup) can tell them apart.
    #[serde(
        rename = "taken_before_migrations",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub taken_before: Vec<String>,
    /// The age recipients it is sealed to, from its manifest.
    #[serde(skip)]
    pub sealed_to: Vec<String>,
    /// Its age as the report and the error give it: to the hour, and to
    /// the minute in the first hour past a `max_age` (whole hours), where
    /// the hour alone would equal it.
    #[serde(skip)]
    pub age_shown: String,
    /// It holds no tables (`Manifest::holds_no_tables`): fresh, and no
    /// copy of the environment's data; said beside it, and warned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub holds_no_tables: bool,
    /// For a restore's safety backup, the backup that restore loaded
    /// (from its reason): the restore came after this backup, which is a
    /// picture of what it undid, so its migrations say nothing of the
    /// database now (LP).
    #[serde(skip)]
    pub taken_before_restoring: Option<String>,
    /// It was verified without its migrations directory (taken on a
    /// checkout that lacked it): its migrations were not checked, so
    /// `status` calls them unknown, never "all applied" (MB).
    #[serde(skip)]
    pub migrations_unchecked: bool,
}

/// The age of a backup taken at `then`, as compared with `max_age`: to the
/// hour ([`d1_core::wording::age_to_the_hour`]), unless that hour is still
/// within `max_age` while the backup is past it, where the minutes say by
/// how much (`1d 2h 10m`, max 26h; never `1d 2h`).
fn age_shown(seconds: i64, then: DateTime<Utc>, max_age: Option<&Span>) -> String {
    let hours = d1_core::wording::age_to_the_hour(seconds);
    let minutes = seconds % 3600 / 60;
    // A backup a second younger than the hours shown: within `max_age`
    // when those hours are at most `max_age`.
    let floored = then + chrono::Duration::seconds(seconds % 3600 + 1);
    let now = then + chrono::Duration::seconds(seconds);
    match max_age {
        Some(max)
            if seconds >= 3600
                && minutes > 0
                && !max.holds(then, now)
                && max.holds(floored, now) =>
        {
            format!("{hours} {minutes}m")
        }
        _ => hours,
    }
}

/// Why the newest verified backup's migrations say nothing of the database
/// now: a Time Travel restore at or after the backup was taken may have
/// taken the database anywhere; and a restore's safety backup is the
/// state that restore undid, whatever the backup it loaded had applied
/// (after a failed migration, its way back: the safety backup has the
/// first migrations applied, the database none of them; LP). Remote or
/// local alike: every restore into an existing database takes one.
/// And a backup verified without its migrations directory, whose
/// migrations were not checked (MB).
fn migrations_unknown(
    newest: Option<&Newest>,
    restore: Option<&TimeTravelRestore>,
) -> Option<String> {
    let newest = newest?;
    let at = restore.and_then(|r| DateTime::parse_from_rfc3339(&r.at).ok());
    match at {
        Some(at) if at >= newest.created_at => Some(format!(
            "a Time Travel restore came after that backup ({})",
            minute_of(at)
        )),
        _ => match &newest.taken_before_restoring {
            Some(loaded) => Some(format!(
                "a restore came after that backup (it is the safety backup taken before \
                 restoring {}: the database as it was before that restore, not as it is now)",
                d1_core::names::shown(loaded)
            )),
            None => newest.migrations_unchecked.then(|| {
                format!(
                    "that backup's migrations were not checked (it was verified without the \
                     migrations directory; with it back, `cargo xtask verify {}` checks them)",
                    d1_core::wording::shell_word(&newest.file)
                )
            }),
        },
    }
}

/// Why the newest verified backup's migrations say nothing of the
/// database now, by the restore journal: a restore of this database that
/// may have changed it (`last`, the last such: not one that failed having
/// written nothing) started at or after that backup was taken (into an
/// empty database it takes no safety backup, so only the journal tells
/// it), or a line of the journal that does not read, which may be one,
/// was written since.
fn restore_unknown(
    newest: Option<&Newest>,
    last: Option<&crate::steps::restores::Restore>,
    unread: Option<&(DateTime<Utc>, String)>,
) -> Option<String> {
    let newest = newest?;
    if let Some(r) = last.filter(|r| r.started >= newest.created_at) {
        return Some(format!("a restore came after that backup ({})", r.told()));
    }
    { unread.filter(|(at, _)| *at >= newest.created_at) }.map(|(_, line)| {
        format!(
            "{line} does not read as a restore, and was written after that backup, so a \
             restore may have come after it (fix or delete that line once the migrations \
             are checked)"
        )
    })
}

/// A time as every other status line gives one (`2026-12-06 02:52 UTC`),
/// not as the journal records it (`2026-12-06T02:52:34.144184592Z`).
fn minute_of(at: DateTime<chrono::FixedOffset>) -> String {
    at.with_timezone(&Utc)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The migrations a pre-migration backup's reason names (`pre-migration:
/// 0005_a.sql, 0006_b.sql (why)`); none for any other reason.
pub(crate) fn migrations_taken_before(reason: Option<&str>) -> Vec<String> {
    let Some(names) = reason.and_then(|r| r.strip_prefix("pre-migration: ")) else {
        return Vec::new();
    };
    let names = names.split_once(" (").map_or(names, |(names, _)| names);
    names.split(", ").map(str::to_owned).collect()
}

/// A row of the drill log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drill {
    /// As the log writes it: `YYYY-MM-DD HH:MM` (UTC).
    pub date: String,
    pub to: String,
    pub backup: String,
    /// `PASS` or `FAIL`.
    pub result: String,
}

/// A line of the Time Travel journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeTravelRestore {
    pub at: String,
    /// `done`, `failed`, `interrupted`, `started` (its run is still going),
    /// or `stopped` (started, and its run is gone: killed before it
    /// finished).
    pub status: String,
    /// The bookmark the database was at before, which undoes it: kept when
    /// it has a bookmark's shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bookmark_before: Option<String>,
    /// The `database_id` the restore went to (absent in older journals):
    /// the same database under another short name is still this one.
    #[serde(skip)]
    pub database_id: Option<String>,
    /// Every restore of the database since the last one done whose
    /// outcome is unknown, oldest first (one still running left out): for
    /// a `stopped` or `interrupted` one, told when there are several (the
    /// last line's bookmark undoes only the latest); after any other, told
    /// as restores before it that may have been made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unsettled: Vec<crate::steps::unsettled::Unsettled>,
}

impl TimeTravelRestore {
    /// A `started` restore of `env` whose run is gone (no live run holds
    /// the backup lock doing it) is `stopped`: killed before it finished.
    fn judged(mut self, env: &str, running: Option<&str>) -> Self {
        if self.status == "started" && running != Some(env) {
            self.status = "stopped".to_owned();
        }
        self
    }

    /// Its status, and for one `stopped`, what that leaves and the
    /// bookmark that undoes it.
    fn told(&self, env: &str) -> String {
        let what = match self.status.as_str() {
            "stopped" => "started, and its run stopped before it finished",
            "interrupted" => "interrupted, or failed after D1 was asked: its outcome is unknown",
            _ => return format!("{}{}", self.status, self.unsettled_before(env)),
        };
        let undo = match &self.bookmark_before {
            _ if self.unsettled.len() > 1 => format!(
                "; {} restores stopped unfinished: {} (`cargo xtask time-travel restore {env} \
                 --bookmark BOOKMARK`)",
                self.unsettled.len(),
                crate::steps::unsettled::ways_back(&self.unsettled)
            ),
            Some(b) => {
                format!("; `cargo xtask time-travel restore {env} --bookmark {b}` undoes it")
            }
            None => String::new(),
        };
        format!(
            "{what}: the database may or may not be back (`cargo xtask time-travel info \
             {env}`){undo}"
        )
    }

    /// After a last line that settles nothing before it (`failed`, or a run
    /// still going): the earlier restores whose outcome is unknown, each
    /// with the bookmark from before it; empty when there are none.
    fn unsettled_before(&self, env: &str) -> String {
        let cmd = format!("`cargo xtask time-travel restore {env} --bookmark");
        match self.unsettled.as_slice() {
            [] => String::new(),
            [one] => format!(
                "; a restore before it, started at {}, stopped unfinished and D1 may have made \
                 it: {cmd} {}` goes back to before it, and discards every write made since",
                one.started_at, one.bookmark_before
            ),
            many => format!(
                "; {} restores before it stopped unfinished and D1 may have made any of them: \
                 {} ({cmd} BOOKMARK`)",
                many.len(),
                crate::steps::unsettled::ways_back(many)
            ),
        }
    }
}

/// The last drill of each environment's backups, from the drill log.
pub fn last_drills(log: &str) -> BTreeMap<String, Drill> {
    let mut last = BTreeMap::new();
    for line in log.lines() {
        let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        // "", date, from → to, backup, sha256, seven checks, result, seconds, "".
        if cells.len() != 15 || cells[1].starts_with("date") || cells[1].starts_with('-') {
            continue;
        }
        let Some((from, to)) = cells[2].split_once('→') else {
            continue;
        };
        if !cells.iter().all(|c| d1_core::names::is_printable(c)) {
            continue;
        }
        last.insert(
            from.trim().to_owned(),
            Drill {
                date: cells[1].to_owned(),
                to: to.trim().to_owned(),
                backup: cells[3].to_owned(),
                result: cells[12].to_owned(),
            },
        );
    }
    last
}

/// Time Travel restores by the environment name, the database and the
/// database id the journal recorded (each empty when a line has none; the
/// id in lower case): the last line of one database never hides the last
/// of another of the same name.
pub type Journal = BTreeMap<(String, String, String), TimeTravelRestore>;

/// The last Time Travel restore of each database, from the journal.
pub fn last_time_travel(journal: &str) -> Journal {
    let mut last = BTreeMap::new();
    for line in journal.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        if let (Some(env), Some(at), Some(status)) =
            (field("environment"), field("at"), field("status"))
            && d1_core::names::is_printable(&env)
            && DateTime::parse_from_rfc3339(&at).is_ok()
            && ["started", "done", "failed", "interrupted"].contains(&status.as_str())
        {
            let bookmark_before =
                field("bookmark_before").filter(|b| d1_core::names::is_bookmark(b));
            let (database, database_id, id) = crate::steps::restores::database_of(&entry);
            last.insert(
                (env, database, id),
                TimeTravelRestore {
                    at,
                    status,
                    bookmark_before,
                    database_id,
                    unsettled: Vec::new(),
                },
            );
        }
    }
    last
}

/// One environment's state, from its backups on disk (`entries`, those
/// `Environment::recorded_as` names it in) and the logs.
/// `database` is its `database_name` and `database_id`.
pub fn environment_status(
    env: &str,
    (database, database_id): (&str, &str),
    entries: &[Entry],
    max_age: Option<Span>,
    drills: &BTreeMap<String, Drill>,
    journal: &Journal,
    now: DateTime<Utc>,
) -> EnvStatus {
    let whole: Vec<&Entry> = entries.iter().filter(|e| e.is_whole()).collect();
    // The newest verified backup's file is hashed: one replaced by a file
    // of the same size is not counted, and makes the environment fail.
    let (newest, passed_over) = crate::edge::inventory::newest_verified(&whole, now);
    // A backup dated after now is passed over for its date, not its bytes.
    let changed = passed_over
        .iter()
        .find(|(e, _)| e.is_verified_good() && e.manifest.created_at <= now)
        .map(|(e, _)| e.manifest.file.name.clone());
    let stale = match (max_age, newest) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(max), Some(e)) => !max.holds(e.manifest.created_at, now),
    };
    // The newest that is not dated after now, as `latest` orders them.
    let newest_by_date = whole.iter().find(|e| e.manifest.created_at <= now);
    let newest_is_bad = newest_by_date
        .filter(|e| matches!(e.verified(), "bad" | "damaged"))
        .map(|e| e.manifest.file.name.clone())
        .or(changed);
    let newest_unverified = newest_by_date
        .filter(|e| e.verified() == "unverified")
        .map(|e| e.manifest.file.name.clone());
    let manifest_changed = { passed_over.iter() }
        .find(|(e, _)| e.verified() == inventory::MANIFEST_CHANGED && e.manifest.created_at <= now)
        .map(|(e, _)| e.manifest.file.name.clone());
    let dated_ahead = { whole.iter() }
        .filter(|e| e.manifest.created_at > now)
        .map(|e| e.manifest.file.name.clone())
        .collect();
    let newest_verified = newest.map(|e| newest_shown(e, max_age.as_ref(), now));
    let last_time_travel_restore = last_restore_of(journal, env, (database, database_id));
    EnvStatus {
        environment: env.to_owned(),
        database: database.to_owned(),
        migrations_unknown: migrations_unknown(
            newest_verified.as_ref(),
            last_time_travel_restore.as_ref(),
        ),
        newest_verified,
        max_age: max_age.map(|s| s.to_string()),
        stale,
        newest_is_bad,
        newest_unverified,
        manifest_changed,
        dated_ahead,
        of_previous_database: None,
        other_ids_passed_over: Vec::new(),
        other_databases_passed_over: Vec::new(),
        restore_warnings: Vec::new(),
        offsite_behind: None,
        retired_keys: None,
        drill_due: None,
        last_drill: drills.get(env).cloned(),
        last_time_travel_restore,
        last_restore: None,
        offsite_lock: None,
        pending_migrations: None,
        migrate_command: String::new(),
        lacking_migrations: Vec::new(),
    }
}

/// What the report says of `newest`, the newest verified backup.
fn newest_shown(newest: &Entry, max_age: Option<&Span>, now: DateTime<Utc>) -> Newest {
    let e = newest;
    let age_seconds = (now - e.manifest.created_at).num_seconds().max(0);
    Newest {
        file: e.manifest.file.name.clone(),
        created_at: e.manifest.created_at,
        age_seconds,
        offsite: e
            .manifest
            .offsite
            .as_ref()
            .map(|c| format!("r2://{}/{}", c.bucket, c.key)),
        applied_migrations: e.manifest.applied_migrations().map(<[String]>::to_vec),
        // From the reason, which a manifest not written here may have
        // filled: redacted as `list --json` prints a reason.
        taken_before: { migrations_taken_before(e.manifest.reason.as_deref()).into_iter() }
            .map(|name| crate::redact::text(&name))
            .collect(),
        sealed_to: e.manifest.sealed_to().to_vec(),
        age_shown: age_shown(age_seconds, e.manifest.created_at, max_age),
        holds_no_tables: e.manifest.holds_no_tables(),
        taken_before_restoring: { e.manifest.reason.as_deref() }
            .and_then(|r| r.strip_prefix(crate::steps::restore::SAFETY_REASON))
            .map(crate::redact::text),
        migrations_unchecked: { e.manifest.verification.as_ref() }
            .is_some_and(|v| v.migrations_unchecked),
    }
}

/// A journal's line of a restore of a database: when, and the database
/// id it records, if any.
trait OfDatabase {
    fn date(&self) -> Option<DateTime<chrono::FixedOffset>>;
    fn database_id(&self) -> Option<&str>;
}

impl OfDatabase for TimeTravelRestore {
    fn date(&self) -> Option<DateTime<chrono::FixedOffset>> {
        DateTime::parse_from_rfc3339(&self.at).ok()
    }
    fn database_id(&self) -> Option<&str> {
        self.database_id.as_deref()
    }
}

impl OfDatabase for crate::steps::restores::Restore {
    fn date(&self) -> Option<DateTime<chrono::FixedOffset>> {
        Some(self.started.fixed_offset())
    }
    fn database_id(&self) -> Option<&str> {
        self.database_id.as_deref()
    }
}

/// The last restore in `journal` (Time Travel's, or the restore
/// journal's) of `env`'s database (its `database_name` and
/// `database_id`).
fn last_restore_of<T: OfDatabase + Clone>(
    journal: &BTreeMap<(String, String, String), T>,
    env: &str,
    database: (&str, &str),
) -> Option<T> {
    last_restore_named(journal, env, database).map(|(_, t)| t)
}

/// [`last_restore_of`], with the environment's name its line records:
/// another than `env`'s when the database had another name then.
fn last_restore_named<T: OfDatabase + Clone>(
    journal: &BTreeMap<(String, String, String), T>,
    env: &str,
    (database, database_id): (&str, &str),
) -> Option<(String, T)> {
    // Of this database, under whichever name its environment had then
    // (`prod`, or `prod.<db>` once it had several, or another short name
    // with the same `database_id`), as `Environment::recorded_as` reads a
    // backup; a line without a database (an older journal) by its name
    // alone. A line that records another `database_id` than the
    // configuration's is of another database of that name (made again
    // since): its bookmark is no way back for this one.
    use crate::config::environment::short_name;
    let same_id = |t: &T| {
        t.database_id()
            .map(|id| id.eq_ignore_ascii_case(database_id))
    };
    { journal.iter() }
        .filter(|((e, db, _), t)| match db.is_empty() {
            true => e == env,
            false if database_id.is_empty() => db == database && short_name(e) == short_name(env),
            false => {
                db == database
                    && match same_id(t) {
                        Some(same) => same,
                        None => short_name(e) == short_name(env),
                    }
            }
        })
        .max_by_key(|(_, t)| t.date())
        .map(|((e, _, _), t)| (e.clone(), t.clone()))
}

impl EnvStatus {
    /// Nothing was ever done to it here: no backup at all (verified, bad or
    /// unverified), no drill, no Time Travel restore, no offsite lock to
    /// tell, and it fails nothing.
    fn unused(&self) -> bool {
        self.newest_verified.is_none()
            && !self.stale
            && self.newest_is_bad.is_none()
            && self.newest_unverified.is_none()
            && self.manifest_changed.is_none()
            && self.dated_ahead.is_empty()
            && self.of_previous_database.is_none()
            && self.last_drill.is_none()
            && self.last_time_travel_restore.is_none()
            && self.last_restore.is_none()
            && self.offsite_lock.is_none()
            && self.retired_keys.is_none()
            && self.pending_migrations.is_none()
            && self.migrations_unknown.is_none()
            && self.restore_warnings.is_empty()
            && self.drill_due.is_none()
    }

    /// No full backup of it was ever taken here (verified, bad,
    /// unverified or dated ahead): it has no age to give.
    fn none_taken(&self) -> bool {
        self.newest_verified.is_none()
            && self.newest_is_bad.is_none()
            && self.newest_unverified.is_none()
            && self.manifest_changed.is_none()
            && self.dated_ahead.is_empty()
    }

    /// Its lines; an unused environment's in one (its full block with `-v`).
    fn render(&self) -> String {
        if self.unused() && !crate::out::verbose() {
            let freshness = match &self.max_age {
                None => "(no max_age)".to_owned(),
                Some(max) => format!("(max {max})"),
            };
            return format!(
                "{} ({})  no verified backup, drill or Time Travel restore yet {freshness}\n",
                self.environment, self.database
            );
        }
        self.render_block()
    }

    fn render_block(&self) -> String {
        let backup = match &self.newest_verified {
            None => "none".to_owned(),
            Some(n) if n.holds_no_tables => {
                format!("{}, {} old, and it holds no tables", n.file, n.age_shown)
            }
            Some(n) => format!("{}, {} old", n.file, n.age_shown),
        };
        let freshness = match (&self.max_age, self.stale) {
            _ if self.none_taken() => format!(
                "(no backup taken yet; take one with `cargo xtask backup {}`)",
                self.environment
            ),
            _ if self.of_previous_database.is_some() => {
                "(of the database it had before): STALE".to_owned()
            }
            (None, _) => "(no max_age)".to_owned(),
            (Some(max), false) => format!("(max {max}): ok"),
            (Some(max), true) => format!("(max {max}): STALE"),
        };
        let offsite = match &self.newest_verified {
            Some(Newest {
                offsite: Some(url), ..
            }) => url.clone(),
            Some(_) => "no".to_owned(),
            None => "-".to_owned(),
        };
        let drill = match &self.last_drill {
            // The log writes it in UTC, and says so only in its header.
            Some(d) => format!("{} UTC → {}, {} ({})", d.date, d.to, d.result, d.backup),
            None => "none recorded".to_owned(),
        };
        let time_travel = self.time_travel_shown();
        let lock = match &self.offsite_lock {
            Some(lock) => format!("  offsite lock              {}\n", lock.said),
            None => String::new(),
        };
        let bad = match (
            &self.newest_is_bad,
            &self.newest_unverified,
            &self.manifest_changed,
        ) {
            (Some(file), _, _) => format!("  newest backup             {file}: BAD, passed over\n"),
            (None, Some(file), _) => {
                format!("  newest backup             {file}: unverified, passed over\n")
            }
            (None, None, Some(file)) => format!(
                "  newest backup             {file}: manifest changed since verified, passed over\n"
            ),
            (None, None, None) => String::new(),
        };
        let migrations = self.migrations_line();
        let retired = match &self.retired_keys {
            Some(told) => format!("  retired keys              {told}\n"),
            None => String::new(),
        };
        let restore = match &self.last_restore {
            Some(r) => format!("  last restore              {}\n", r.told()),
            None => String::new(),
        };
        format!(
            "{} ({})\n  newest verified backup    {backup} {freshness}\n{bad}{migrations}  offsite                   \
             {offsite}\n{lock}{retired}  last drill                {drill}\n  last Time Travel restore  {time_travel}\n{restore}",
            self.environment, self.database
        )
    }

    /// The last Time Travel restore, as every other time here, to the
    /// minute; the journal's own text when it is not a time.
    fn time_travel_shown(&self) -> String {
        match &self.last_time_travel_restore {
            Some(t) => {
                let at = match chrono::DateTime::parse_from_rfc3339(&t.at) {
                    Ok(at) => at
                        .with_timezone(&Utc)
                        .format("%Y-%m-%d %H:%M UTC")
                        .to_string(),
                    Err(_) => t.at.clone(),
                };
                format!("{at} ({})", t.told(&self.environment))
            }
            None => "none".to_owned(),
        }
    }

    /// The migrations line (none when there is nothing to say), with the
    /// migrations the newest backup records that this checkout lacks.
    fn migrations_line(&self) -> String {
        let migrations = self.pending_line();
        match self.lacking_migrations.as_slice() {
            [] => migrations,
            _ if migrations.is_empty() => migrations,
            lacking => format!(
                "{}; that backup also records {} as applied, which this checkout lacks \
                 (another branch's, or deleted here)\n",
                migrations.trim_end(),
                d1_core::wording::listed(lacking, "migration"),
            ),
        }
    }

    /// What the migrations line says of the migrations pending as of the
    /// newest backup, or why they are unknown.
    fn pending_line(&self) -> String {
        match self.pending_migrations.as_deref() {
            None => match &self.migrations_unknown {
                // `migrate --check` answers, but this line reads the
                // backups: a new one is what gives it again (rvCG).
                Some(why) => format!(
                    "  migrations                unknown: {why} (`cargo xtask migrate {env} --check` \
                     reads them from the database; this line gives them again after a new \
                     `cargo xtask backup {env}`)\n",
                    env = self.environment
                ),
                None => String::new(),
            },
            Some([]) => "  migrations                all applied as of that backup\n".to_owned(),
            Some(names) => {
                // The backup `migrate` took before applying some of them:
                // those were applied just after it, unless that failed, and
                // are not told as pending; the others are.
                let taken = |name: &&String| {
                    { self.newest_verified.as_ref() }.is_some_and(|n| n.taken_before.contains(name))
                };
                let (taken, known): (Vec<&String>, Vec<&String>) =
                    names.iter().partition(|name| taken(name));
                let them = d1_core::wording::them;
                let check = |n: usize| {
                    format!(
                        "(`cargo xtask migrate {} --check` says whether {} applied now)",
                        self.environment,
                        if n == 1 { "it is" } else { "they are" }
                    )
                };
                let applies =
                    |n: usize| format!("(`{}` applies {})", self.migrate_command, them(n));
                let (listed_known, listed_taken) = (
                    d1_core::wording::listed(&known, "migration"),
                    d1_core::wording::listed(&taken, "migration"),
                );
                match (known.len(), taken.len()) {
                    (0, n) => format!(
                        "  migrations                {n} pending as of that backup, which `migrate` \
                         took before applying {}: {listed_taken} {}\n",
                        them(n),
                        check(n)
                    ),
                    (k, 0) => format!(
                        "  migrations                {k} pending as of that backup: {listed_known} \
                         {}\n",
                        applies(k)
                    ),
                    (k, n) => format!(
                        "  migrations                {k} pending: {listed_known} {}; \
                         {listed_taken}, pending as of that backup, which `migrate` took before \
                         applying {} {}\n",
                        applies(k),
                        them(n),
                        check(n)
                    ),
                }
            }
        }
    }
}

/// Whether Cloudflare credentials are here, for the offsite lock line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credentials {
    Here,
    Missing,
    /// Missing, and the environment's error says so, with how to set
    /// them: the line points to it (MR: the advice was said twice).
    MissingSaidBelow,
}

/// Whether Cloudflare credentials are here, for `env`'s offsite lock line;
/// `stale`: `say_failures` fails it, and for a remote environment its
/// error says how to set them ([`no_credentials`]).
fn lock_credentials(env: &crate::config::environment::Environment, stale: bool) -> Credentials {
    let remote = env.location == crate::config::environment::Location::Remote;
    match crate::steps::doctor::has_credentials() {
        true => Credentials::Here,
        false if remote && stale => Credentials::MissingSaidBelow,
        false => Credentials::Missing,
    }
}

/// The offsite lock of `bucket`, as `--json` gives it, with its line
/// ([`lock_line`]).
fn offsite_lock(
    bucket: &str,
    env: &str,
    lock: Option<&(String, i64, String)>,
    credentials: Credentials,
) -> OffsiteLock {
    OffsiteLock {
        state: match lock {
            Some(_) => "locked",
            None => "not_locked",
        },
        bucket: bucket.to_owned(),
        days: lock.map(|(_, days, _)| *days),
        rule: lock.map(|(rule, _, _)| rule.clone()),
        set_at: lock.map(|(_, _, at)| at.clone()),
        said: lock_line(bucket, env, lock, credentials),
    }
}

/// The offsite lock line: what `offsite lock` last set and read back.
/// The `offsite lock --dry-run` it advises reads the bucket's rules, which
/// needs Cloudflare credentials: without any here (`credentials`), the
/// line names them first, or points to the error that does.
fn lock_line(
    bucket: &str,
    env: &str,
    lock: Option<&(String, i64, String)>,
    credentials: Credentials,
) -> String {
    let first = match credentials {
        Credentials::Here => "",
        Credentials::Missing => {
            "no Cloudflare credentials were found here: set CLOUDFLARE_API_TOKEN and \
             CLOUDFLARE_ACCOUNT_ID (or run `npx wrangler login`), then "
        }
        Credentials::MissingSaidBelow => "with the Cloudflare credentials the error below names, ",
    };
    match lock {
        Some((rule, days, at)) => format!(
            "locked: {} after upload (rule {rule} in r2://{bucket}, set and read back {at}; \
             `cargo xtask doctor` reads the bucket)",
            d1_core::wording::count(*days, "day")
        ),
        None => format!(
            "not locked: no offsite lock recorded here for r2://{bucket} ({first}`cargo xtask \
             offsite lock --env {env} --dry-run` shows the rule it sets; `cargo xtask doctor` \
             reads the bucket)"
        ),
    }
}

/// What the logs on disk say: each environment's last drill, each
/// database's last Time Travel restore and each bucket's last offsite lock.
struct Logs {
    drills: BTreeMap<String, Drill>,
    journal: Journal,
    /// The Time Travel journal's text, for the restores of a database
    /// whose outcome is unknown.
    journal_text: String,
    locks: BTreeMap<(String, String), (String, i64, String)>,
    restores: crate::steps::restores::Journal,
    /// The environment a live run is restoring a backup into now, if any
    /// ([`crate::steps::lock::restore_running`]).
    restoring: Option<String>,
}

impl Logs {
    /// Reads the drill log, the Time Travel journal (judging a restore
    /// against the one running now, if any) and the offsite lock journal.
    fn read(project: &Project) -> Logs {
        let drills = last_drills(&read_journal(
            &project.config_dir.join(crate::edge::journals::DRILL_LOG),
        ));
        let running = crate::steps::lock::time_travel_running(&project.backup_dir);
        let journal_text = read_journal(
            &project
                .backup_dir
                .join(crate::edge::journals::TIME_TRAVEL_JOURNAL),
        );
        let journal: Journal = last_time_travel(&journal_text)
            .into_iter()
            .map(|((env, db, id), t)| {
                let t = t.judged(&env, running.as_deref());
                ((env, db, id), t)
            })
            .collect();
        let locks = crate::steps::offsite::last_locks(&read_journal(
            &project.backup_dir.join(crate::steps::offsite::LOCK_JOURNAL),
        ));
        Logs {
            drills,
            journal,
            journal_text,
            locks,
            restores: crate::steps::restores::read(&project.backup_dir),
            restoring: crate::steps::lock::restore_running(&project.backup_dir),
        }
    }
}

/// A journal's text: none when it is absent, and none with a warning
/// saying why when it cannot be read. A line that is not UTF-8 text (an
/// append cut inside a character) is passed over with a warning naming
/// it; the other lines are read.
fn read_journal(path: &std::path::Path) -> String {
    if std::fs::symlink_metadata(path).is_err() {
        return String::new();
    }
    match crate::edge::fsutil::read_own_lines(path, "journal") {
        Ok(lines) => {
            if let Some(warning) = lines.skipped_warning(path) {
                crate::warn!("{warning}");
            }
            lines.text()
        }
        Err(e) => {
            crate::warn!("{e:#}");
            String::new()
        }
    }
}

/// Prints every environment's state; `Ok(false)` when one is stale.
pub fn run(project: &Project, args: &StatusArgs) -> Result<bool> {
    let envs = project.environments()?;
    let only: Option<Vec<String>> = envs
        .chosen(args.env.as_deref())?
        .map(|dbs| dbs.iter().map(|d| d.name.clone()).collect());
    let settings = project.settings()?;
    // A killed rehearsal's copy of prod goes; one still there is named.
    crate::steps::rehearsals::remove_killed(&project.backup_dir);
    crate::steps::rehearsals::tell_left(&project.backup_dir);
    let entries = without_rehearsals(inventory::scan(&project.backup_dir)?);
    crate::steps::lock::tell_loose_ends(&project.backup_dir);
    let logs = Logs::read(project);
    let now = Utc::now();
    let all: Vec<EnvStatus> = envs
        .iter()
        .filter(|env| only.as_ref().is_none_or(|names| names.contains(&env.name)))
        .map(|env| {
            let settings = settings.env(&env.env_name);
            EnvStatus {
                other_databases_passed_over: inventory::say_misfiled(&envs, Some(env), &entries),
                ..status_of(project, env, &settings, &entries, &logs, now)
            }
        })
        .collect();
    let stale: Vec<&EnvStatus> = { all.iter() }
        .filter(|s| s.stale || s.of_previous_database.is_some())
        .collect();
    let bad: Vec<&EnvStatus> = all.iter().filter(|s| s.newest_is_bad.is_some()).collect();
    // A backup directory others can write to is one where anyone could
    // plant a "verified" backup that keeps this check green: every backup
    // refuses it, and so does the check.
    let shared = crate::edge::fsutil::refuse_shared_dir(&project.backup_dir).err();
    let unknown = outcome_unknown(&all);
    let ok = stale.is_empty() && bad.is_empty() && unknown.is_empty() && shared.is_none();
    print_report(&all, ok, shared.as_ref(), args.json)?;
    // A backup of a remote database needs Cloudflare credentials, which
    // doctor looks for: without them, say so rather than only the command.
    let remote: Vec<&str> = { envs.iter() }
        .filter(|env| env.location == crate::config::environment::Location::Remote)
        .map(|env| env.name.as_str())
        .collect();
    let local = { envs.iter() }
        .find(|env| env.location == crate::config::environment::Location::Local)
        .map(|env| env.name.as_str());
    // Said whole in the first error that needs them, and pointed to by
    // the others: it was the same ~390 characters in each (PE 4).
    let said = std::cell::Cell::new(false);
    let needs_credentials =
        |name: &str| match remote.contains(&name) && !crate::steps::doctor::has_credentials() {
            true if said.replace(true) => NO_CREDENTIALS_AGAIN.to_owned(),
            true => no_credentials(local),
            false => String::new(),
        };
    say_failures(&stale, &bad, &needs_credentials);
    say_outcome_unknown(&unknown);
    if let Some(e) = &shared {
        crate::out::error(&format!("{e:#}"));
    }
    warn_each(&all);
    say_restores_dated_ahead(&logs.restores);
    // A load or migrations a run gone left unfinished: what the database
    // may hold and the way back, as the next run that takes the lock
    // tells it, for the operator who runs `status` first after a crash.
    for (_, told) in { crate::steps::lock::left_unfinished(project).into_iter() }
        .filter(|(env, _)| only.as_ref().is_none_or(|names| names.contains(env)))
    {
        crate::warn!(
            "a run stopped unfinished and its outcome is unknown (the backup lock keeps its \
             record, which the next command that takes the lock tells too): {told}"
        );
    }
    Ok(ok)
}

/// The environments whose last restore's outcome is unknown (interrupted
/// once D1 may have begun its import) and no verified backup taken since
/// settles (rvBX): the database is unknown, a failure, exit 1, as a stale
/// backup is (NT).
fn outcome_unknown(all: &[EnvStatus]) -> Vec<&EnvStatus> {
    { all.iter() }
        .filter(|s| s.last_restore.as_ref().is_some_and(|r| r.unsettled()))
        .collect()
}

/// An error for each of [`outcome_unknown`], with the fix: a backup taken
/// now records what the database holds (and settles it here), and a diff
/// against the newest backup before the restore tells what that changed.
fn say_outcome_unknown(unknown: &[&EnvStatus]) {
    for s in unknown {
        let told = { s.last_restore.as_ref() }
            .map(|r| r.told())
            .unwrap_or_default();
        let env = &s.environment;
        let diff = match &s.newest_verified {
            Some(n) => format!(
                " (`cargo xtask diff {} latest:{env}`)",
                d1_core::wording::shell_word(&n.file)
            ),
            None => String::new(),
        };
        crate::out::error(&format!(
            "{env}: the outcome of its last restore is unknown ({told}); take a backup: \
             `cargo xtask backup {env}`, then diff it against the backup before the \
             restore{diff}. A verified backup taken after the restore settles it here"
        ));
    }
}

/// Warns of each line of the restore journal dated after now: never taken
/// as the last restore (a clock running ahead, or a forged line, would
/// hide the real last one), as a drill dated after now proves none.
fn say_restores_dated_ahead(journal: &crate::steps::restores::Journal) {
    for (line, at) in &journal.dated_ahead {
        crate::warn!(
            "{line} is dated {}, after now (a clock running ahead, or a forged line): it is \
             never taken as the last restore; fix or delete it (until then, status counts it \
             as a restore that may have come after every backup)",
            at.format("%Y-%m-%d %H:%M UTC")
        );
    }
}

/// `entries` but the backups taken inside a rehearsal (copied among the
/// real ones, manifest and all), each named once: restore refuses them
/// outside their rehearsal, so none is an environment's newest verified
/// backup, nor any backup of it.
fn without_rehearsals(entries: Vec<Entry>) -> Vec<Entry> {
    let (real, rehearsals): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| crate::steps::rehearsals::of_entry(e).is_none());
    for e in &rehearsals {
        crate::warn!(
            "{} was taken inside a rehearsal ({}), a copy of its loopback's databases that \
             restore refuses outside it: status counts it as no backup of {}. Delete it and \
             its manifest once it is no longer needed",
            d1_core::names::shown_path(&e.file),
            crate::steps::rehearsals::of_entry(e).unwrap_or_default(),
            d1_core::names::shown(&e.manifest.environment)
        );
    }
    real
}

/// One environment's state: `environment_status` of its backups, with
/// what the configuration, this checkout's migrations and every backup on
/// disk (`entries`) add to it.
fn status_of(
    project: &Project,
    env: &crate::config::environment::Environment,
    settings: &crate::config::settings::EnvSettings,
    entries: &[Entry],
    logs: &Logs,
    now: DateTime<Utc>,
) -> EnvStatus {
    let counted = crate::edge::inventory::counted_for(env, entries);
    let mine: Vec<Entry> = { entries.iter() }
        .filter(|e| counted(&e.manifest))
        .cloned()
        .collect();
    let mut status = environment_status(
        &env.name,
        (&env.database_name, &env.database_id),
        &mine,
        settings.max_age,
        &logs.drills,
        &logs.journal,
        now,
    );
    // Whatever the last line says: restores killed before one that
    // failed (or one still running) may have been made all the same.
    if let Some(t) = status.last_time_travel_restore.as_mut() {
        let mut unsettled =
            crate::steps::unsettled::unsettled_restores(logs.journal_text.lines(), env);
        // One still running is not told as one that stopped.
        if t.status == "started"
            && unsettled.last().map(|u| Some(&u.bookmark_before))
                == Some(t.bookmark_before.as_ref())
        {
            unsettled.pop();
        }
        t.unsettled = unsettled;
    }
    with_last_restore(
        &mut status,
        env,
        (&logs.restores, logs.restoring.as_deref()),
    );
    let applied = { status.newest_verified.as_ref() }
        .and_then(|n| n.applied_migrations.as_deref())
        .filter(|_| status.migrations_unknown.is_none());
    let files = applied.and_then(|_| {
        migration_files(&project.config_dir.join(&env.migrations_dir))
            .map_err(|e| crate::detail!("no migrations line: {e:#}"))
            .ok()
    });
    let other_ids_passed_over = say_other_ids_passed_over(env, entries, &mine, &status);
    // The newest verified backup, of a database this environment's
    // name had before (the id in the configuration changed since).
    let of_previous_database = { status.newest_verified.as_ref() }
        .and_then(|n| mine.iter().find(|e| e.manifest.file.name == n.file))
        .map(|e| e.manifest.database.uuid.clone())
        .filter(|id| !id.is_empty() && !id.eq_ignore_ascii_case(&env.database_id));
    let credentials = lock_credentials(env, status.stale || of_previous_database.is_some());
    EnvStatus {
        of_previous_database,
        other_ids_passed_over,
        offsite_lock: settings.offsite.as_ref().map(|o| {
            offsite_lock(
                &o.bucket,
                &env.name,
                logs.locks.get(&(env.name.clone(), o.bucket.clone())),
                credentials,
            )
        }),
        pending_migrations: applied.zip(files.as_deref()).map(|(a, f)| pending(f, a)),
        migrate_command: crate::edge::confirm::migrate_command(env, ""),
        lacking_migrations: { applied.zip(files.as_deref()) }
            .map(|(a, f)| pending(a, f))
            .unwrap_or_default(),
        restore_warnings: restore_warnings(project, entries, env, settings, &status),
        offsite_behind: offsite_behind(env, settings, &mine, now),
        retired_keys: retired_keys(entries, env, &settings.encryption.recipients),
        ..status_with_drill(env, status, entries, &mine, &logs.drills, now)
    }
}

/// `status` with the last restore of `env`'s database in the restore
/// journal (a start with no end judged against the run restoring now,
/// `running`), and the migrations unknown when the last that may have
/// changed it (or a line that does not read) came after the newest
/// verified backup.
fn with_last_restore(
    status: &mut EnvStatus,
    env: &crate::config::environment::Environment,
    (journal, running): (&crate::steps::restores::Journal, Option<&str>),
) {
    let database = (env.database_name.as_str(), env.database_id.as_str());
    let judged = |r: crate::steps::restores::Restore| r.judged(&env.name, running);
    // A line records the name its environment had then: the same
    // database under another (`APP_ENV` renamed, or the configuration moved
    // onto a database another name restored into) is still this one's, its
    // data changed whatever the name, and is said so (OB).
    status.last_restore =
        { last_restore_named(&journal.last, &env.name, database) }.map(|(named, r)| {
            crate::steps::restores::Restore {
                recorded_as: Some(named).filter(|n| *n != env.name),
                ..judged(r)
            }
        });
    let changing = last_restore_of(&journal.last_changing, &env.name, database).map(judged);
    // One of unknown outcome is settled by a verified backup of its
    // database taken after it: that backup records what it holds now
    // (rvBX). The restore held the backup lock, so no backup was taken
    // while its run went on.
    let newest = status.newest_verified.as_ref();
    if let Some(r) = { status.last_restore.as_mut() }.filter(|r| r.outcome_unknown()) {
        r.settled_by = { newest.filter(|n| n.created_at > r.started) }.map(|n| n.file.clone());
    }
    // A safety backup whose restore changed nothing (stopped before its
    // load was committed, or before D1 was handed it) is what the database
    // still holds, not a picture of what that restore undid: its
    // migrations are the database's (NT).
    let last = status.last_restore.as_ref();
    if let Some(newest) =
        { status.newest_verified.as_ref() }.filter(|n| undid_nothing(n, last, changing.as_ref()))
    {
        let newest = Newest {
            taken_before_restoring: None,
            ..newest.clone()
        };
        let time_travel = status.last_time_travel_restore.as_ref();
        status.migrations_unknown = migrations_unknown(Some(&newest), time_travel);
    }
    if status.migrations_unknown.is_none() {
        status.migrations_unknown = restore_unknown(
            status.newest_verified.as_ref(),
            changing.as_ref(),
            journal.unread.as_ref(),
        );
    }
}

/// Whether `newest` is the safety backup of the `last` restore, which
/// changed nothing, and no restore that may have changed the database
/// (`changing`) came after it.
fn undid_nothing(
    newest: &Newest,
    last: Option<&crate::steps::restores::Restore>,
    changing: Option<&crate::steps::restores::Restore>,
) -> bool {
    newest.taken_before_restoring.is_some()
        && last.is_some_and(|r| !r.may_have_changed() && r.started >= newest.created_at)
        && changing.is_none_or(|r| r.started < newest.created_at)
}

/// Names the newer backups under `env`'s names with another id that its
/// newest verified backup passed over (`latest:ENV`'s rule and words), and
/// gives them for `--json`.
fn say_other_ids_passed_over(
    env: &crate::config::environment::Environment,
    entries: &[Entry],
    mine: &[Entry],
    status: &EnvStatus,
) -> Vec<OtherId> {
    let Some(e) = { status.newest_verified.as_ref() }
        .and_then(|n| mine.iter().find(|e| e.manifest.file.name == n.file))
    else {
        return Vec::new();
    };
    let what = format!("{}'s newest verified backup", env.name);
    crate::edge::inventory::say_other_ids_passed_over(env, entries, &e.file, &what);
    { crate::edge::inventory::other_ids_passed_over(env, entries, &e.file).into_iter() }
        .map(|other| OtherId {
            file: other.manifest.file.name.clone(),
            database_id: other.manifest.database.uuid.clone(),
        })
        .collect()
}

/// `status` with the last drill of this database, and whether one is due.
fn status_with_drill(
    env: &crate::config::environment::Environment,
    status: EnvStatus,
    entries: &[Entry],
    mine: &[Entry],
    drills: &BTreeMap<String, Drill>,
    now: DateTime<Utc>,
) -> EnvStatus {
    let last = last_drill(env, status.last_drill.as_ref(), entries, mine, drills);
    EnvStatus {
        drill_due: drill_due(
            env,
            last.as_ref(),
            mine.iter().map(|e| e.manifest.created_at).min(),
            now,
        ),
        last_drill: last,
        ..status
    }
}

/// The last drill of this database. A drill of a backup of another
/// database (the environment's binding was moved since) is not this
/// database's, though logged under `env`'s name (`by_name`); one of a
/// backup of this database (`mine`) logged under another short name
/// (APP_ENV renamed) is.
fn last_drill(
    env: &crate::config::environment::Environment,
    by_name: Option<&Drill>,
    entries: &[Entry],
    mine: &[Entry],
    drills: &BTreeMap<String, Drill>,
) -> Option<Drill> {
    by_name
        .into_iter()
        .filter(|d| {
            !{ entries.iter() }
                .any(|e| e.manifest.file.name == d.backup && !env.records(&e.manifest))
        })
        .chain(
            { drills.values() }.filter(|d| mine.iter().any(|e| e.manifest.file.name == d.backup)),
        )
        .max_by(|a, b| a.date.cmp(&b.date))
        .cloned()
}

/// Prints the report: as JSON, or each environment's lines (under `-q`, a
/// scheduled job, only the environments that are not ok).
fn print_report(
    all: &[EnvStatus],
    ok: bool,
    shared: Option<&anyhow::Error>,
    json: bool,
) -> Result<()> {
    if json {
        let report = match shared {
            None => serde_json::json!({ "ok": ok, "environments": all }),
            Some(e) => serde_json::json!({
                "ok": ok,
                "backup_dir": format!("{e:#}"),
                "environments": all,
            }),
        };
        crate::out::json(&serde_json::to_value(&report)?);
    } else {
        let quiet = crate::out::level() == crate::out::Level::Quiet;
        for status in all.iter().filter(|s| {
            !quiet
                || s.stale
                || s.of_previous_database.is_some()
                || s.newest_is_bad.is_some()
                || s.last_restore.as_ref().is_some_and(|r| r.unsettled())
        }) {
            crate::data!("{}", status.render());
        }
    }
    Ok(())
}

/// Warns, environment by environment, of what is not a failure but wants
/// a look: a restore that would fail, offsite copies fallen behind,
/// backups dated ahead of the clock, a newest backup never verified or
/// whose manifest was changed since it was.
fn warn_each(all: &[EnvStatus]) {
    for s in all {
        for why in &s.restore_warnings {
            crate::warn!("{}: {why}", s.environment);
        }
        if let Some(why) = &s.offsite_behind {
            crate::warn!("{}: {why}", s.environment);
        }
        if let Some(why) = &s.drill_due {
            crate::warn!("{}: {why}", s.environment);
        }
        if let Some(file) = s.dated_ahead.first() {
            crate::warn!(
                "{}: {} dated after this machine's clock, so `latest` passes {them} over (the \
                 newest, {file}); check the clock of this machine and of the one that took {them}",
                s.environment,
                match s.dated_ahead.len() {
                    1 => "1 backup is".to_owned(),
                    n => format!("{n} backups are"),
                },
                them = d1_core::wording::them(s.dated_ahead.len()),
            );
        }
        if let Some(n) = s.newest_verified.as_ref().filter(|n| n.holds_no_tables) {
            crate::warn!(
                "{}'s newest verified backup, {}, holds no tables: {} had none when it was \
                 taken, so it is no copy of the environment's data. If it should have tables, \
                 check the database_id of {} in wrangler.toml (another database's, or one \
                 emptied since)",
                s.environment,
                n.file,
                s.database,
                s.environment
            );
        }
        if let Some(file) = &s.manifest_changed {
            crate::warn!(
                "{}'s newest backup, {file}, was verified good, but its manifest was changed \
                 since (by hand, or by a copy), so `latest` passes it over until `cargo xtask \
                 verify {}` checks the backup against it again: it records BAD if the manifest \
                 no longer describes the backup",
                s.environment,
                d1_core::wording::shell_word(file)
            );
        }
        if let Some(file) = &s.newest_unverified {
            crate::warn!(
                "{}'s newest backup, {file}, was never verified (its verification did not \
                 run or did not finish), so `latest` passes it over; check it with `cargo xtask \
                 verify {}`",
                s.environment,
                d1_core::wording::shell_word(file)
            );
        }
    }
}

/// Whether `env`'s offsite copies have fallen behind: its bucket is set,
/// its newest verified whole backup has no offsite copy, and no backup has
/// one, or the newest that has one is older than `max_age` (a nightly
/// upload that failed), or it was taken with `--upload` (an upload
/// interrupted or failed). A backup taken by hand meanwhile without it,
/// not uploaded, is no fault while last night's copy is within `max_age`.
fn offsite_behind(
    env: &crate::config::environment::Environment,
    settings: &crate::config::settings::EnvSettings,
    mine: &[Entry],
    now: DateTime<Utc>,
) -> Option<String> {
    let offsite = settings.offsite.as_ref()?;
    // `mine` is newest first, as `latest` orders them.
    let newest = { mine.iter() }
        .find(|e| e.is_verified_good() && e.is_whole() && e.manifest.created_at <= now)?;
    if newest.manifest.offsite.is_some() {
        return None;
    }
    let copied = { mine.iter() }
        .filter(|e| e.manifest.offsite.is_some())
        .map(|e| e.manifest.created_at)
        .max();
    let upload = format!(
        "copy it with `cargo xtask upload {} --env {}`",
        d1_core::wording::shell_word(&newest.manifest.file.name),
        env.name
    );
    match (copied, settings.max_age) {
        (None, _) => Some(format!(
            "none of its backups here has an offsite copy, though [{}.offsite] names r2://{}; \
             its newest verified backup is {}: {upload}",
            env.env_name, offsite.bucket, newest.manifest.file.name
        )),
        (Some(at), Some(max_age)) if at < max_age.before(now) => Some(format!(
            "its newest offsite copy is of a backup taken {} ago, more than max_age ({max_age}); \
             its newest verified backup, {}, has none: {upload}",
            d1_core::wording::age((now - at).num_seconds()),
            newest.manifest.file.name
        )),
        // Taken to be uploaded, and never was: its upload was interrupted
        // or failed, which a recent copy of an older backup does not
        // make up for.
        _ if newest.manifest.upload_asked => Some(format!(
            "its newest verified backup, {}, was taken with --upload but has no offsite copy \
             in r2://{} (its upload did not finish): {upload}",
            newest.manifest.file.name, offsite.bucket
        )),
        _ => None,
    }
}

/// Why a restore of `status`'s newest verified backup would fail or be
/// refused on this checkout: an applied migration edited since it was
/// applied (restore refuses a backup whose triggers it made otherwise, and
/// migrate and `restore --clean` refuse), or a backup sealed only to
/// recipients the environment no longer names (a restore needs one of
/// their identities).
fn restore_warnings(
    project: &Project,
    entries: &[inventory::Entry],
    env: &crate::config::environment::Environment,
    settings: &crate::config::settings::EnvSettings,
    status: &EnvStatus,
) -> Vec<String> {
    let Some(newest) = &status.newest_verified else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    // Only a rotation is told: recipients named, none of them the
    // backup's. With none named, the backup was sealed with --encrypt-to
    // (or encryption was turned off), which says nothing of its key.
    let named = &settings.encryption.recipients;
    if !named.is_empty()
        && !newest.sealed_to.is_empty()
        && !newest.sealed_to.iter().any(|r| named.contains(r))
    {
        warnings.push(format!(
            "its newest verified backup, {}, is sealed to {}, which [{}.encryption] in \
             {SETTINGS_FILE} no longer names: restoring it needs the identity of one of those \
             recipients. Keep that identity until a backup sealed to today's recipients is \
             verified (`cargo xtask backup {}`)",
            newest.file,
            newest.sealed_to.join(", "),
            env.env_name,
            env.name
        ));
    }
    let dir = project.config_dir.join(&env.migrations_dir);
    if !dir.exists() {
        // Not every migration lacking, told at length: one directory (MB).
        warnings.push(format!(
            "{}: `restore` and `migrate` refuse until then",
            crate::steps::migrations::missing_dir_said(&dir)
        ));
        return warnings;
    }
    if let Some(record) = crate::steps::migrations::record_in(entries, env) {
        use crate::steps::migrations::{digests, edited_migrations, edited_report, missing_report};
        // Compared only for what its database had applied: the record
        // keeps a migration rolled back since, whose file may be deleted
        // (its fix a new migration), and said it lacking (MI2).
        let applied = newest.applied_migrations.clone().unwrap_or_default();
        let (edited, missing): (Vec<_>, Vec<_>) =
            edited_migrations(&record.sha256, &applied, &digests(&dir, &applied))
                .into_iter()
                .partition(|e| e.now.is_some());
        if !missing.is_empty() {
            let names: Vec<String> = missing.into_iter().map(|e| e.name).collect();
            warnings.push(format!(
                "its newest verified backup, {}, holds a database with {} this checkout lacks: \
                 `restore --clean` refuses it, and restored with --replace, both `migrate` \
                 (exit 3, applying nothing) and `migrate --check` fail on {}. {}",
                newest.file,
                d1_core::wording::count(names.len(), "migration"),
                d1_core::wording::them(names.len()),
                missing_report(&names, &dir, &record.source)
            ));
        }
        if !edited.is_empty() {
            warnings.push(format!(
                "a restore of its newest verified backup, {}, is refused when the triggers it \
                 holds are not those the migrations make now, and `migrate` refuses: {}",
                newest.file,
                edited_report(&edited, &dir, (&record.source, &env.database_name))
            ));
        }
    }
    warnings
}

/// The backups of `env` kept here that only a recipient no longer in
/// `named` opens (the newest verified one is also a warning, from
/// [`restore_warnings`]: a restore of `latest` needs that key), with those recipients and what it means: that identity must outlive
/// them (a key thrown away once the newest backup is sealed to today's
/// recipients would leave them unreadable).
fn retired_keys(
    entries: &[inventory::Entry],
    env: &crate::config::environment::Environment,
    named: &[String],
) -> Option<String> {
    // With none named (encryption turned off, or backups sealed with
    // --encrypt-to), every key a kept backup is sealed to is one the
    // configuration does not name.
    let retired = retired_only(entries, env, named);
    if retired.is_empty() {
        return None;
    }
    let mut keys: Vec<&String> = retired.iter().flat_map(|(_, to)| to).collect();
    keys.sort();
    keys.dedup();
    let files: Vec<&str> = retired.iter().map(|(f, _)| f.as_str()).collect();
    let who = format!(
        "{} [{}.encryption] {} names",
        match keys.len() {
            1 => "a recipient",
            _ => "recipients",
        },
        env.env_name,
        match named.is_empty() {
            true => "no longer (or never)",
            false => "no longer",
        }
    );
    let n = files.len();
    Some(format!(
        "{} kept here only {who} opens ({}: {}): keep that identity while {} kept, or delete {}",
        d1_core::wording::count(n, "backup"),
        keys.iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        d1_core::wording::listed(&files, "backup"),
        if n == 1 { "it is" } else { "they are" },
        d1_core::wording::them(n),
    ))
}

/// The backups of `env` kept here that are sealed only to recipients not in
/// `named` (today's), newest first, with those recipients.
fn retired_only(
    entries: &[inventory::Entry],
    env: &crate::config::environment::Environment,
    named: &[String],
) -> Vec<(String, Vec<String>)> {
    entries
        .iter()
        .filter(|e| env.records(&e.manifest))
        .filter_map(|e| {
            let to = e.manifest.sealed_to().to_vec();
            (!to.is_empty() && !to.iter().any(|r| named.contains(r)))
                .then(|| (e.manifest.file.name.clone(), to))
        })
        .collect()
}

/// What an environment's error adds when an earlier one said, whole, that
/// no Cloudflare credentials were found ([`no_credentials`]).
const NO_CREDENTIALS_AGAIN: &str = " (it too needs the Cloudflare credentials named above)";

/// Why `status` fails, per environment: stale, or its newest backup bad.
/// What a remote environment's advice to back it up adds when wrangler has
/// no credentials here (`doctor`'s rule).
/// `local`: the local environment's name in this configuration, when it
/// has one (wrangler.toml may call it `dev`), for the status that checks
/// it alone.
fn no_credentials(local: Option<&str>) -> String {
    let alone = local
        .map(|name| {
            format!(
                ". `cargo xtask status --env {}` checks the local database alone",
                d1_core::wording::shell_word(name)
            )
        })
        .unwrap_or_default();
    format!(
        " (no Cloudflare credentials were found on this machine, so that backup cannot run \
         here: set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID, or run `npx wrangler login`; \
         `cargo xtask doctor` checks{alone})"
    )
}

fn say_failures(stale: &[&EnvStatus], bad: &[&EnvStatus], needs: &dyn Fn(&str) -> String) {
    for s in stale {
        let max = s.max_age.as_deref().unwrap_or("?");
        if let (Some(id), Some(n)) = (&s.of_previous_database, &s.newest_verified) {
            crate::out::error(&format!(
                "{}'s newest verified backup, {}, is of the database it had before (id {id}), \
                 not of the one the configuration gives it now: nothing written to that one is \
                 backed up; take a backup with `cargo xtask backup {}`{}",
                s.environment,
                n.file,
                s.environment,
                needs(&s.environment)
            ));
            continue;
        }
        match &s.newest_verified {
            Some(n) => crate::out::error(&format!(
                "{}'s newest verified backup is {} old, older than its max_age {max} in \
                 {SETTINGS_FILE}; take one with `cargo xtask backup {}`{} and check the \
                 scheduled job",
                s.environment,
                n.age_shown,
                s.environment,
                needs(&s.environment)
            )),
            None => crate::out::error(&format!(
                "{} has no verified full backup, and its max_age in {SETTINGS_FILE} is \
                 {max}; take one with `cargo xtask backup {}`{}",
                s.environment,
                s.environment,
                needs(&s.environment)
            )),
        }
    }
    for s in bad {
        crate::out::error(&format!(
            "{}'s newest backup, {}, is bad (it failed verification, or its file is not the \
             size its manifest records): `cargo xtask verify {}` says why; `latest` uses the \
             newest verified one until a good backup is taken",
            s.environment,
            s.newest_is_bad.as_deref().unwrap_or("?"),
            d1_core::wording::shell_word(s.newest_is_bad.as_deref().unwrap_or("?"))
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rvAX: the Time Travel restore a backup's migrations are unknown
    /// after is dated as the other lines date times, to the minute in UTC.
    #[test]
    fn a_time_travel_restore_is_dated_to_the_minute_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T03:52:34.144184592+01:00").unwrap();
        assert_eq!(minute_of(at), "2026-12-06 02:52 UTC");
    }

    #[test]
    fn an_age_in_the_first_hour_past_max_age_has_its_minutes() {
        let max = d1_core::span::parse("26h").unwrap();
        let then = DateTime::parse_from_rfc3339("2026-11-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let shown = |minutes: i64| age_shown(minutes * 60, then, Some(&max));
        assert_eq!(shown(25 * 60 + 50), "1d 1h");
        assert_eq!(shown(26 * 60), "1d 2h");
        assert_eq!(shown(26 * 60 + 10), "1d 2h 10m");
        assert_eq!(shown(27 * 60 + 10), "1d 3h");
        assert_eq!(age_shown(26 * 3600 + 600, then, None), "1d 2h");
    }

    const LOG: &str = "# Restore drills\n\n\
        | date (UTC) | from → to | backup | sha256 | verify | restore | rows | key | audit chain | sign-in | report | result | seconds |\n\
        |---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
        | 2026-08-01 09:00 | prod → staging | backup-prod-1.sql | ab | pass | pass | pass | pass | skip | skip | skip | PASS | verify 1.0 |\n\
        | 2026-11-01 09:00 | prod → local | backup-prod-2.sql | cd | pass | FAIL | skip | skip | skip | skip | skip | FAIL | verify 1.0 |\n";

    #[test]
    fn the_last_drill_of_each_environment_is_read_from_the_log() {
        let drills = last_drills(LOG);
        assert_eq!(drills.len(), 1, "{drills:?}");
        let prod = &drills["prod"];
        assert_eq!(prod.date, "2026-11-01 09:00");
        assert_eq!(prod.to, "local");
        assert_eq!(prod.result, "FAIL");
        assert_eq!(prod.backup, "backup-prod-2.sql");
    }

    #[test]
    fn the_last_time_travel_restore_is_the_journals_last_line_for_the_environment() {
        let journal = r#"{"at":"2026-11-01T00:00:00Z","environment":"prod","status":"started"}
{"at":"2026-11-01T00:00:05Z","environment":"prod","status":"done"}
not json
{"at":"2026-11-02T00:00:00Z","environment":"staging","status":"failed"}"#;
        let last = last_time_travel(journal);
        let of = |env: &str| &last[&(env.to_owned(), String::new(), String::new())];
        assert_eq!(of("prod").status, "done");
        assert_eq!(of("prod").at, "2026-11-01T00:00:05Z");
        assert_eq!(of("staging").status, "failed");
        // A line whose fields would print rows of their own (a forged "ok"
        // environment), or that this tool never writes, is left out.
        let forged = format!(
            "{journal}\n{}\n{}\n{}",
            r#"{"at":"2026-11-03T00:00:00Z (done)\nprod ok","environment":"prod","status":"done"}"#,
            r#"{"at":"2026-11-03T00:00:00Z","environment":"prod\u001b[2J","status":"done"}"#,
            r#"{"at":"2026-11-03T00:00:00Z","environment":"prod","status":"verified GOOD"}"#
        );
        assert_eq!(last_time_travel(&forged), last);
    }

    /// A later line of another database of that name (the old one,
    /// restored from a checkout of an older configuration) never hides the
    /// last line of the configured one's (rvDS).
    #[test]
    fn another_databases_later_line_never_hides_the_configured_ones_unfinished_restore() {
        let journal = r#"{"at":"2026-11-01T00:00:00Z","environment":"prod","database":"db","database_id":"X","status":"started","bookmark_before":"00000001-00000002-00004e5f-0123456789abcdef0123456789abcdef"}
{"at":"2026-11-02T00:00:00Z","environment":"prod","database":"db","database_id":"Y","status":"done"}"#;
        let last = last_time_travel(journal);
        let ours = last_restore_of(&last, "prod", ("db", "x")).expect("the configured one's");
        assert_eq!(ours.status, "started");
        assert_eq!(ours.database_id.as_deref(), Some("X"));
    }

    #[test]
    fn stale_only_against_a_declared_max_age() {
        let none = BTreeMap::new();
        let now = Utc::now();
        let max = Some(d1_core::span::parse("26h").unwrap());
        // No backup at all: stale only when a max_age is declared.
        let s = environment_status("prod", ("db", ""), &[], max, &none, &BTreeMap::new(), now);
        assert!(s.stale && s.newest_verified.is_none());
        let s = environment_status("local", ("db", ""), &[], None, &none, &BTreeMap::new(), now);
        assert!(!s.stale);
        assert!(s.render_block().contains(
            "newest verified backup    none (no backup taken yet; take one with \
                 `cargo xtask backup local`)"
        ));
        // Unused: one line, which still says so.
        assert_eq!(
            s.render(),
            "local (db)  no verified backup, drill or Time Travel restore yet (no max_age)\n"
        );
    }

    /// prod's status with no backup, drill or Time Travel recorded.
    fn prod_without_backups() -> EnvStatus {
        let none = BTreeMap::new();
        environment_status(
            "prod",
            ("db", ""),
            &[],
            None,
            &none,
            &BTreeMap::new(),
            Utc::now(),
        )
    }

    #[test]
    fn a_pre_migration_backups_reason_names_the_migrations_it_was_taken_before() {
        assert_eq!(
            migrations_taken_before(Some("pre-migration: 0005_a.sql, 0006_b.sql (deploy)")),
            ["0005_a.sql", "0006_b.sql"]
        );
        assert_eq!(
            migrations_taken_before(Some("pre-migration: 0005_a.sql")),
            ["0005_a.sql"]
        );
        assert!(migrations_taken_before(Some("before: a task")).is_empty());
        assert!(migrations_taken_before(None).is_empty());
    }

    #[test]
    fn migrations_pending_as_of_the_newest_backup_are_named() {
        let mut s = prod_without_backups();
        assert!(!s.render().contains("migrations"), "unknown: no line");
        s.pending_migrations = Some(Vec::new());
        assert!(
            s.render()
                .contains("\n  migrations                all applied as of that backup\n")
        );
        s.pending_migrations = Some(vec!["0005_a.sql".to_owned(), "0006_b.sql".to_owned()]);
        s.migrate_command = "cargo xtask migrate prod --confirm db".to_owned();
        assert!(s.render().contains(
            "\n  migrations                2 pending as of that backup: 0005_a.sql, 0006_b.sql \
             (`cargo xtask migrate prod --confirm db` applies them)\n"
        ));
    }

    /// A newest verified backup of prod taken at `taken`, just now.
    fn newest_taken(taken: DateTime<chrono::FixedOffset>) -> Newest {
        Newest {
            file: "backup-prod-20261101-0900.sql".to_owned(),
            created_at: taken.with_timezone(&Utc),
            age_seconds: 0,
            offsite: None,
            applied_migrations: None,
            taken_before: Vec::new(),
            sealed_to: Vec::new(),
            age_shown: "0s".to_owned(),
            holds_no_tables: false,
            taken_before_restoring: None,
            migrations_unchecked: false,
        }
    }

    #[test]
    fn after_a_time_travel_restore_the_backups_migrations_are_not_todays() {
        let taken = DateTime::parse_from_rfc3339("2026-11-01T09:00:00Z").unwrap();
        let mut s = prod_without_backups();
        s.newest_verified = Some(newest_taken(taken));
        s.pending_migrations = Some(Vec::new());
        let restore = |at: &str| TimeTravelRestore {
            at: at.to_owned(),
            status: "done".to_owned(),
            bookmark_before: None,
            database_id: None,
            unsettled: Vec::new(),
        };
        let before = restore("2026-10-31T09:00:00Z");
        assert_eq!(
            migrations_unknown(s.newest_verified.as_ref(), Some(&before)),
            None
        );
        assert!(s.render().contains("all applied as of that backup"));
        let after = restore("2026-11-01T09:05:00Z");
        s.migrations_unknown = migrations_unknown(s.newest_verified.as_ref(), Some(&after));
        s.pending_migrations = None;
        let shown = s.render();
        assert!(
            shown.contains(
                "\n  migrations                unknown: a Time Travel restore came after that \
                 backup (2026-11-01 09:05 UTC) (`cargo xtask migrate prod --check` reads them \
                 from the database; this line gives them again after a new `cargo xtask backup \
                 prod`)\n"
            ),
            "{shown}"
        );
        // Its time to the minute, as every other time status prints.
        s.last_time_travel_restore = Some(restore("2026-12-01T13:11:01.249118036Z"));
        let shown = s.render();
        assert!(
            shown.contains("last Time Travel restore  2026-12-01 13:11 UTC (done)\n"),
            "{shown}"
        );
    }

    /// LP: a restore's safety backup, the newest verified backup of local
    /// (a local restore takes one as a remote one does), is the database
    /// before that restore: its migrations are not the database's. rvCG:
    /// it said "a picture of what that restore undid" of a restore that
    /// changed no row, and pointed at `migrate --check` alone, which
    /// leaves the line as it is; a new backup is what gives them again.
    #[test]
    fn after_a_restore_its_safety_backups_migrations_are_not_todays() {
        let taken = DateTime::parse_from_rfc3339("2026-11-01T09:00:00Z").unwrap();
        let mut s = prod_without_backups();
        s.environment = "local".to_owned();
        let newest = Newest {
            file: "backup-local-20261101-0900.sql".to_owned(),
            taken_before_restoring: Some("backup-local-20261101-0800.sql".to_owned()),
            ..newest_taken(taken)
        };
        s.migrations_unknown = migrations_unknown(Some(&newest), None);
        s.newest_verified = Some(newest);
        let shown = s.render();
        assert!(
            shown.contains(
                "\n  migrations                unknown: a restore came after that backup (it is \
                 the safety backup taken before restoring backup-local-20261101-0800.sql: the \
                 database as it was before that restore, not as it is now) (`cargo xtask \
                 migrate local --check` reads them from the database; this line gives them \
                 again after a new `cargo xtask backup local`)\n"
            ),
            "{shown}"
        );
    }

    /// LV: a restore into an empty database takes no safety backup; the
    /// restore journal tells it, and a line of it that does not read,
    /// written after the backup, leaves the migrations unknown too.
    #[test]
    fn after_a_journaled_restore_the_backups_migrations_are_not_todays() {
        let taken = DateTime::parse_from_rfc3339("2026-11-01T09:00:00Z").unwrap();
        let newest = newest_taken(taken);
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let restore = |t: &str| crate::steps::restores::Restore {
            at: t.to_owned(),
            backup: "backup-local-20261031-0900.sql".to_owned(),
            mode: "into-empty".to_owned(),
            status: "done".to_owned(),
            changed_nothing: false,
            signalled: false,
            settled_by: None,
            recorded_as: None,
            outcome: "restored",
            location: "local".to_owned(),
            started: at(t),
            database_id: None,
        };
        let after = restore("2026-11-01T09:30:00Z");
        assert_eq!(
            restore_unknown(Some(&newest), Some(&after), None).as_deref(),
            Some(
                "a restore came after that backup (2026-11-01 09:30 UTC, \
                 backup-local-20261031-0900.sql (into-empty): done)"
            )
        );
        let before = restore("2026-11-01T08:59:59Z");
        assert_eq!(restore_unknown(Some(&newest), Some(&before), None), None);
        let unread = |t: &str| (at(t), "line 3 of backups/restores.jsonl".to_owned());
        let since = unread("2026-11-01T10:00:00Z");
        let said = restore_unknown(Some(&newest), Some(&before), Some(&since)).unwrap();
        assert!(
            said.starts_with("line 3 of backups/restores.jsonl does not read"),
            "{said}"
        );
        let earlier = unread("2026-11-01T08:00:00Z");
        assert_eq!(restore_unknown(Some(&newest), None, Some(&earlier)), None);
    }

    #[test]
    fn an_offsite_environment_says_whether_it_is_locked() {
        let lock = (
            "qbtime-prod-lock-372d".to_owned(),
            372,
            "2026-11-30T00:00:00Z".to_owned(),
        );
        let mut s = prod_without_backups();
        assert!(!s.render().contains("offsite lock"), "no bucket, no line");
        s.offsite_lock = Some(offsite_lock("b-1", "prod", Some(&lock), Credentials::Here));
        assert!(
            s.render()
                .contains("offsite lock              locked: 372 days after upload")
        );
        s.offsite_lock = Some(offsite_lock("b-1", "prod", None, Credentials::Here));
        assert!(s.render().contains("offsite lock              not locked"));
    }

    /// The offsite lock line's commands, pasted, run: `offsite lock` needs
    /// the environment it locks.
    #[test]
    fn the_commands_the_offsite_lock_line_gives_parse() {
        let lock = ("rule".to_owned(), 30, "2026-11-30T00:00:00Z".to_owned());
        for line in [
            lock_line("b-1", "prod", None, Credentials::Here),
            lock_line("b-1", "prod", None, Credentials::Missing),
            lock_line("b-1", "prod", None, Credentials::MissingSaidBelow),
            lock_line("b-1", "prod", Some(&lock), Credentials::Here),
        ] {
            let parsed = crate::pasted_commands_parse(&line).unwrap_or_else(|e| panic!("{e}"));
            assert!(parsed > 0, "{line}");
        }
    }
}
