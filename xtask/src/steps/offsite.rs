//! Offsite copies in R2: where each copy and the index go, the lifecycle
//! and lock rules that keep them, and the upload that every backup with an
//! `[<env>.offsite]` table ends with. The `offsite` command's verbs (list,
//! fetch, lifecycle, lock) are in `commands/offsite.rs`.

use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::config::settings::{Offsite, SETTINGS_FILE};
use crate::edge::fsutil::{self, TEXT_LIMIT, TempFile};
use crate::edge::lock::BackupLock;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::wrangler::{Commands, PrivateDir, Wrangler};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Datelike, Duration, Utc};
use d1_core::manifest::{self, Manifest, OffsiteCopy, TakenAfter};
use d1_core::names::file_name;
use d1_core::retention::Policy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use xshell::Shell;

pub const INDEX_VERSION: u32 = 1;

/// The most one object this tool uploads may hold: it puts each with one
/// `wrangler r2 object put`, which refuses a file over 300 MiB
/// (wrangler's `MAX_UPLOAD_SIZE_BYTES`; it has no multipart put). A
/// manifest in the bucket that records a larger copy was not written by an
/// upload of this tool.
pub const OBJECT_LIMIT: u64 = 300 << 20;

/// `prod/2026/11/backup-prod-20261124-0300.sql.zst.age`.
pub fn object_key(env: &str, created_at: DateTime<Utc>, file: &str) -> String {
    format!("{env}/{}/{file}", created_at.format("%Y/%m"))
}

/// The object that lists an environment's offsite copies.
pub fn index_key(env: &str) -> String {
    format!("index/{env}.json")
}

/// The lifecycle rule's name for an environment.
pub fn rule_name(env: &str) -> String {
    format!("qbtime-{env}-expire")
}

/// The lock rule's name for an environment and a retention.
pub fn lock_rule_name(env: &str, days: i64) -> String {
    format!("qbtime-{env}-lock-{days}d")
}

/// Whether a lock rule is one that `offsite lock` set for the environment.
pub fn is_our_lock(env: &str, rule: &str) -> bool {
    rule.strip_prefix(&format!("qbtime-{env}-lock-"))
        .and_then(|rest| rest.strip_suffix('d'))
        .is_some_and(|days| days.parse::<u32>().is_ok())
}

/// The longest span the retention policy keeps any backup, in whole days
/// (a month counted as 31 days, a part day rounded up).
pub fn policy_days(policy: &Policy) -> i64 {
    [
        policy.keep_within.map_or(0, |s| s.days_at_most()),
        i64::from(policy.keep_daily.unwrap_or(0)),
        7 * i64::from(policy.keep_weekly.unwrap_or(0)),
        31 * i64::from(policy.keep_monthly.unwrap_or(0)),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

/// The copies in the index that the retention `policy` keeps at `now` but
/// that an age rule of `days` has already passed (R2 deletes them as soon
/// as the rule is set), each as (file, why it is kept, when it expired).
/// An age rule cannot follow `prune`: "the newest of each of the last N
/// months that have a backup" reaches further back than N months after
/// months without one, and the newest verified copy is kept whatever its
/// age. A copy the rule will delete later is not told: whether the policy
/// keeps it then depends on the backups still to come (a daily schedule
/// under its own span is the case the rule fits).
pub fn kept_but_expiring(
    entries: &[IndexEntry],
    policy: &Policy,
    days: i64,
    now: DateTime<Utc>,
) -> Vec<(String, String, DateTime<Utc>)> {
    use d1_core::retention::{Candidate, decide};
    let candidates: Vec<Candidate> = entries
        .iter()
        .map(|e| Candidate {
            created_at: e.created_at,
            whole: e.whole,
            good: e.verified == "good",
            protected: false,
            file: e.file.clone(),
            sha256: e.sha256.clone(),
            taken_after: e.taken_after.clone(),
            // The index records no row counts: no fall is told here.
            rows: Default::default(),
        })
        .collect();
    decide(policy, &candidates, now)
        .into_iter()
        .zip(entries)
        .filter(|(reasons, _)| !reasons.is_empty())
        .filter_map(|(reasons, e)| {
            // A date past what a calendar holds never expires.
            let expires = e.uploaded_at.checked_add_signed(Duration::days(days))?;
            (expires <= now).then(|| {
                let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                (e.file.clone(), why.join(", "), expires)
            })
        })
        .collect()
}

/// How many days R2 keeps a copy: `expire_after`, or else the longest span
/// the retention policy keeps any backup (a month counted as 31 days).
/// `env` is the environment's short name, which names its table in
/// `backups.toml` in errors.
pub fn expire_days(env: &str, offsite: &Offsite, policy: &Policy) -> Result<i64> {
    // R2 counts whole days; a span's days are rounded up, so nothing expires early.
    let days = offsite
        .expire_after
        .map_or_else(|| policy_days(policy), |span| span.days_at_most());
    if days < 1 {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "no expiry for the offsite copies: set `expire_after` in the [{env}.offsite] table of \
             {SETTINGS_FILE}, or a retention policy"
        );
    }
    Ok(days)
}

/// How many days `offsite lock` keeps a copy from deletion: `lock_for`, or
/// else the longest span the retention policy keeps any backup, so that by
/// default the lock and the lifecycle rule agree. It must not outlast the
/// lifecycle rule, which would then try to delete locked copies.
pub fn lock_days(env: &str, offsite: &Offsite, policy: &Policy) -> Result<i64> {
    let days = offsite
        .lock_for
        .map_or_else(|| policy_days(policy), |span| span.days_at_most());
    if days < 1 {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "no span for the lock: set `lock_for` in the [{env}.offsite] table of \
             {SETTINGS_FILE}, or a retention policy"
        );
    }
    let expire = expire_days(env, offsite, policy)?;
    if expire < days {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "the lock would hold copies for {} but the lifecycle rule deletes them after {}: \
             set `expire_after` to at least the lock's span, or `lock_for` to at most the \
             expiry, in the [{env}.offsite] table of {SETTINGS_FILE}. Nothing was run.",
            d1_core::wording::count(days, "day"),
            d1_core::wording::count(expire, "day")
        );
    }
    Ok(days)
}

/// How long a lock rule holds an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retention {
    Days(i64),
    /// Until a date, `YYYY-MM-DD`.
    Until(String),
    Indefinite,
}

/// A lock rule as `wrangler r2 bucket lock list` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRule {
    pub name: String,
    pub enabled: bool,
    /// Empty for every object in the bucket.
    pub prefix: String,
    pub retention: Retention,
}

impl LockRule {
    /// Whether the rule reaches any object under `prefix`.
    pub fn covers(&self, prefix: &str) -> bool {
        self.enabled && (prefix.starts_with(&self.prefix) || self.prefix.starts_with(prefix))
    }

    /// Whether the rule keeps the object `key`.
    pub fn holds(&self, key: &str) -> bool {
        self.enabled && key.starts_with(&self.prefix)
    }

    pub fn describe(&self) -> String {
        let held = match &self.retention {
            Retention::Days(d) => {
                format!("for {} after upload", d1_core::wording::count(*d, "day"))
            }
            Retention::Until(date) => format!("until {date}"),
            Retention::Indefinite => "for ever".to_owned(),
        };
        let prefix = if self.prefix.is_empty() {
            "every object".to_owned()
        } else {
            format!("objects under {}", self.prefix)
        };
        format!("{}: {prefix} {held}", self.name)
    }
}

/// One rule of `wrangler r2 bucket lifecycle list` or `wrangler r2 bucket
/// lock list`. Both print each rule as a block of labelled lines (wrangler's
/// `formatLabelledValues`, the same in 4.86 and 4.164): `name:`,
/// `enabled:`, `prefix:`, and one saying what the rule does, `action:` for
/// a lifecycle rule and `condition:` for a lock. Lines before the first
/// `name:` ("Listing lifecycle rules for bucket ...", "There are no lock
/// rules ...") belong to no rule.
#[derive(Debug)]
struct ListedRule {
    name: String,
    enabled: bool,
    /// Empty for every object in the bucket (`(all prefixes)`).
    prefix: String,
    /// The `action:` of a lifecycle rule (`Expire objects after 372 days`,
    /// several joined by `, `) or the `condition:` of a lock (`after 372
    /// days`, `on 2027-01-01`, `indefinitely`); empty when there is none.
    does: String,
}

impl ListedRule {
    /// The days after upload at which a lifecycle rule deletes objects
    /// (`Expire objects after N days` among its actions); a part day holds
    /// as long as the next whole day, and 0 days as 1.
    fn expire_days(&self) -> Option<i64> {
        { self.does.split(", ") }
            .find_map(|a| {
                let days = a.strip_prefix("Expire objects after ")?;
                days.strip_suffix(" days")?.parse::<f64>().ok()
            })
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|d| (d.ceil() as i64).max(1))
    }

    /// How long a lock rule keeps objects. A condition this cannot read
    /// counts as indefinite, so an unknown lock is never taken for a
    /// shorter one.
    fn retention(&self) -> Retention {
        let days = { self.does.strip_prefix("after ") }
            .and_then(|v| v.split_whitespace().next())
            .and_then(|d| d.parse::<f64>().ok());
        match (days, self.does.strip_prefix("on ")) {
            // A part day holds as long as the next whole day.
            (Some(d), _) => Retention::Days(d.ceil() as i64),
            (None, Some(date)) => Retention::Until(date.trim().to_owned()),
            _ => Retention::Indefinite,
        }
    }
}

/// The rules of a `wrangler r2 bucket lifecycle list` or `wrangler r2
/// bucket lock list` output, in the order listed ([`ListedRule`]).
fn listed_rules(listing: &str) -> Vec<ListedRule> {
    let mut rules: Vec<ListedRule> = Vec::new();
    for line in listing.lines().map(crate::out::strip_ansi) {
        let Some((label, value)) = line.trim_start().split_once(':') else {
            continue;
        };
        let value = value.trim();
        if label == "name" {
            rules.push(ListedRule {
                name: value.to_owned(),
                enabled: true,
                prefix: String::new(),
                does: String::new(),
            });
            continue;
        }
        let Some(rule) = rules.last_mut() else {
            continue;
        };
        match label {
            "enabled" => rule.enabled = value == "Yes",
            "prefix" if value == "(all prefixes)" => rule.prefix = String::new(),
            "prefix" => rule.prefix = value.to_owned(),
            "action" | "condition" => rule.does = value.to_owned(),
            _ => {}
        }
    }
    rules
}

/// The rules in `wrangler r2 bucket lock list`'s output
/// ([`listed_rules`]), each held as its condition says
/// ([`ListedRule::retention`]).
pub fn lock_rules(listing: &str) -> Vec<LockRule> {
    { listed_rules(listing).into_iter() }
        .map(|rule| LockRule {
            retention: rule.retention(),
            name: rule.name,
            enabled: rule.enabled,
            prefix: rule.prefix,
        })
        .collect()
}

/// How long the enabled rules that hold every object under `prefix` keep
/// them, the longest first (`for 372 days after upload`); `None` when no
/// rule holds the whole prefix.
pub fn held_for(rules: &[LockRule], prefix: &str) -> Option<String> {
    let holding: Vec<&LockRule> = rules
        .iter()
        .filter(|r| r.enabled && prefix.starts_with(&r.prefix))
        .collect();
    holding
        .iter()
        .find(|r| r.retention == Retention::Indefinite)
        .or_else(|| {
            holding
                .iter()
                .find(|r| matches!(r.retention, Retention::Until(_)))
        })
        .or_else(|| {
            holding.iter().max_by_key(|r| match r.retention {
                Retention::Days(d) => d,
                _ => 0,
            })
        })
        .map(|r| r.describe())
}

/// Refuses a lifecycle rule that would expire objects under `prefix` after
/// `expire_days` while a lock rule still holds them: R2 would refuse those
/// deletions, and the rule would say something the bucket does not do.
pub fn check_expiry_against_locks(
    expire_days: i64,
    rules: &[LockRule],
    prefix: &str,
    today: chrono::NaiveDate,
) -> Result<()> {
    for rule in rules.iter().filter(|r| r.covers(prefix)) {
        let outlasts = match &rule.retention {
            Retention::Days(d) => *d > expire_days,
            Retention::Until(date) => chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_or(true, |until| until > today + Duration::days(expire_days)),
            Retention::Indefinite => true,
        };
        if outlasts {
            crate::stop!(
                crate::exit::Exit::Refused,
                "a lifecycle rule that deletes objects under {prefix} after {} would act before the \
                 lock allows ({}): set `expire_after` in {SETTINGS_FILE} to at least the lock's \
                 span. Nothing was changed.",
                d1_core::wording::count(expire_days, "day"),
                rule.describe()
            );
        }
    }
    Ok(())
}

/// The file in the backup directory where `offsite lock` records each lock
/// it set and read back, for `status`.
pub const LOCK_JOURNAL: &str = "offsite-locks.jsonl";

/// The last lock recorded for each environment and bucket, of the
/// environment's own prefix (`<env>/`): `(rule, days, at)`, by
/// `(environment, bucket)`. A lock recorded for another bucket (the
/// environment's earlier one) says nothing of the bucket in use now.
pub fn last_locks(
    journal: &str,
) -> std::collections::BTreeMap<(String, String), (String, i64, String)> {
    let mut last = std::collections::BTreeMap::new();
    for line in journal.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let text = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        if let (Some(env), Some(bucket), Some(prefix), Some(rule), Some(days), Some(at)) = (
            text("environment"),
            text("bucket"),
            text("prefix"),
            text("rule"),
            entry.get("days").and_then(|d| d.as_i64()),
            text("at"),
        ) && prefix == format!("{env}/")
            && days >= 1
            && DateTime::parse_from_rfc3339(&at).is_ok()
            && [&env, &bucket, &rule, &at]
                .iter()
                .all(|f| d1_core::names::is_printable(f))
        {
            last.insert((env, bucket), (rule, days, at));
        }
    }
    last
}

/// The list of an environment's offsite copies, kept in the bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub format_version: u32,
    pub environment: String,
    /// Newest first.
    pub backups: Vec<IndexEntry>,
    /// The entries read from the bucket that were set aside
    /// ([`Index::read`]): never listed, fetched or `latest`, and written
    /// back by an upload as they were read ([`Index::written`]).
    #[serde(skip)]
    pub set_aside: Vec<SetAside>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub file: String,
    pub key: String,
    pub manifest_key: String,
    pub created_at: DateTime<Utc>,
    pub uploaded_at: DateTime<Utc>,
    pub bytes: u64,
    pub sha256: String,
    /// `sql`, `zstd` or `zstd+age`: the one its file's extension says.
    pub format: String,
    /// `full`, `schema-only` or `data-only` ([`MODES`]).
    pub mode: String,
    pub whole: bool,
    /// `good` or `unverified`, when uploaded ([`VERIFIED`]).
    pub verified: String,
    /// Its manifest's `taken_after`: the copies dated after it that it
    /// ranks above ([`d1_core::order`]). Absent when there are none, and
    /// from an index an earlier version wrote or rewrote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken_after: Vec<TakenAfter>,
}

impl IndexEntry {
    fn dated(&self) -> d1_core::order::Dated<'_> {
        d1_core::order::Dated {
            created_at: self.created_at,
            file: &self.file,
            sha256: &self.sha256,
            // An index is of one environment's database.
            of: ("", ""),
            taken_after: &self.taken_after,
        }
    }
}

/// The environment an index is read for: its name, its database's name,
/// and the other names that database is known to have had.
pub type Of<'a> = (&'a str, &'a str, &'a [String]);

/// An index as it is in the bucket, its entries not yet read: an index
/// not of this shape is not one this tool wrote, as a whole.
#[derive(Deserialize)]
struct RawIndex {
    format_version: u32,
    environment: String,
    backups: Vec<serde_json::Value>,
}

/// An entry of an index in the bucket that is not one this tool writes,
/// set aside by [`Index::read`]. `offsite list --json` prints each under
/// `set_aside`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetAside {
    /// The index it is in, `r2://bucket/index/<env>.json`.
    pub index: String,
    /// Its place in the index's list, from 1.
    pub position: usize,
    /// Its file's name, when it is a plain name that prints as itself
    /// (`null` otherwise: it is never printed).
    pub file: Option<String>,
    /// Its file's name as the index has it, to tell a fetch of it.
    #[serde(skip)]
    raw_file: Option<String>,
    /// The entry as the index has it, written back by an upload: this
    /// tool cannot tell it is no real copy's (a copy of the real entry
    /// with another digest sets both aside; a name this machine does not
    /// know as the database's may be another's). `None` for a word for
    /// word repeat of an earlier entry, which that one stands for.
    #[serde(skip)]
    raw: Option<serde_json::Value>,
    /// Why it was set aside.
    pub reason: String,
}

impl SetAside {
    /// `entry 2 (backup-prod-….sql)`, the name only when it prints as itself.
    fn described(&self) -> String {
        match &self.file {
            Some(file) => format!("entry {} ({file})", self.position),
            None => format!(
                "entry {} (a name that is not printed as it is)",
                self.position
            ),
        }
    }
}

/// Whether a file name from the bucket may be printed: a plain name that
/// prints as itself, no longer than a file name can be, read as a backup's
/// name (`backup-<env>-YYYYMMDD-HHMM…`) whose environment is a plain name;
/// any other words are the bucket writer's, not printed.
fn shows_as_itself(file: &str) -> bool {
    d1_core::names::is_plain_file_name(file)
        && file.len() <= 255
        && d1_core::manifest::backup_name(file).is_some_and(|b| {
            b.env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
}

/// For each entry of an index, why it is set aside for naming a file
/// another entry names too, when it is: an upload replaces a file's entry,
/// so no index this tool writes lists one twice. Entries alike in every
/// field are one record: the first is read as any other, the later ones
/// set aside as repeats. Entries that differ (another digest, size or
/// date) leave which is the copy's unknown: each of them is set aside,
/// the file's name refused, and the index's other entries kept. (Every
/// record of a file counted against every entry of it in `latest`'s
/// order: 20,000 of one file took it 100 seconds and gigabytes.)
fn repeated(entries: &[serde_json::Value]) -> Vec<Option<(String, bool)>> {
    let mut by_file: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, e) in entries.iter().enumerate() {
        if let Some(file) = e.get("file").and_then(|f| f.as_str()) {
            by_file.entry(file).or_default().push(i);
        }
    }
    let mut verdicts = vec![None; entries.len()];
    for places in by_file.values().filter(|p| p.len() > 1) {
        let first = &entries[places[0]];
        if places.iter().all(|&i| entries[i] == *first) {
            for &i in &places[1..] {
                verdicts[i] = Some((
                    format!(
                        "it repeats entry {} word for word (an upload replaces a file's entry)",
                        places[0] + 1
                    ),
                    true,
                ));
            }
            continue;
        }
        for &i in places {
            verdicts[i] = Some((
                format!(
                    "the index lists its file twice or more ({} entries), with different \
                     records (digest, size or date), so which is the copy's is unknown and none \
                     of them is taken (an upload replaces a file's entry)",
                    places.len()
                ),
                false,
            ));
        }
    }
    verdicts
}

/// The entry `value`, when it is one this tool writes into the index of
/// `of` ([`check_entry`]); else why it is not.
fn entry_from(value: serde_json::Value, of: Of<'_>) -> std::result::Result<IndexEntry, String> {
    let entry: IndexEntry = serde_json::from_value(value).map_err(|e| {
        // serde's words for a missing field name only the field; any other
        // would quote the value, which is not printed.
        let said = e.to_string();
        match said.strip_prefix("missing field ") {
            Some(field) if d1_core::names::is_printable(field) && field.len() < 40 => {
                format!("it has no {field}, which every entry this tool writes has")
            }
            _ => "a field of it is not of the kind this tool writes (a number, a date, a \
                  name)"
                .to_owned(),
        }
    })?;
    check_entry(&entry, of).map_err(|e| e.to_string())?;
    Ok(entry)
}

/// Refuses an entry that is not one this tool writes into the index of
/// `env`: a file named otherwise than a backup of `env` (or of one of
/// `older`, [`names_env`]) is, or dated otherwise than the minute its name
/// says, as a manifest's is; a name or printed field that holds a control
/// character; a date past the year 9999; a `taken_after` of anything but
/// backups' names and digests; objects elsewhere than where this tool puts
/// `env`'s copies (`<env>/YYYY/MM/<file>` and the manifest beside it):
/// anyone who can write to the bucket could otherwise send a fetch, a
/// migration record or `latest` to another environment's objects.
fn check_entry(e: &IndexEntry, (env, database, older): Of<'_>) -> Result<()> {
    // Its name is printed and looked up in the backup directory.
    let printed = [&e.format, &e.mode, &e.verified, &e.sha256];
    if !d1_core::names::is_plain_file_name(&e.file)
        || printed.iter().any(|v| !d1_core::names::is_printable(v))
    {
        bail!("its name is not a backup file name, or it holds a control character");
    }
    // This tool writes RFC 3339 times, whose years have four digits; a
    // later one is no upload, and no date to count from.
    if [e.created_at, e.uploaded_at]
        .iter()
        .any(|t| t.year() > 9999)
    {
        bail!("it is dated after the year 9999, which this tool never writes");
    }
    let Some(named) =
        manifest::backup_name(&e.file).filter(|b| names_env(b.env, env, database, older))
    else {
        bail!(
            "its name is not backup-<env>-YYYYMMDD-HHMM[-N] and .sql, .sql.zst or .sql.zst.age \
             with <env> {env} (or a name {env} had before), as the name of every backup of \
             {env} this tool uploads is"
        );
    };
    manifest::check_named_minute("it", named.stamp, e.created_at)?;
    check_words(e)?;
    // As a manifest's: names, each with a sha256.
    if !{ e.taken_after.iter() }.all(|t| {
        d1_core::names::is_plain_file_name(&t.file) && d1_core::names::is_sha256_hex(&t.sha256)
    }) {
        bail!("it records taken_after something other than a backup's file name and sha256");
    }
    let manifest = file_name(&manifest::manifest_path(Path::new(&e.file)));
    if e.key != object_key(env, e.created_at, &e.file)
        || e.manifest_key != object_key(env, e.created_at, &manifest)
    {
        bail!(
            "it names its objects elsewhere than {env}/YYYY/MM/ (its date's) under its own name \
             and its manifest's, where this tool puts {env}'s copies"
        );
    }
    Ok(())
}

/// The words [`index_entry`] writes as an entry's `mode` and `verified`.
const MODES: [&str; 3] = ["full", "schema-only", "data-only"];
const VERIFIED: [&str; 2] = ["good", "unverified"];

/// Refuses an entry whose `format`, `mode` or `verified` is not a word
/// [`index_entry`] writes: its `format` the one its file's extension says,
/// `whole` only of a `full` copy. `offsite list` prints them as columns:
/// a `.sql` copy listed as `zstd+age`, or `good` padded with blanks, would
/// mislead whoever reads it. The value is never quoted.
fn check_words(e: &IndexEntry) -> Result<()> {
    let format = d1_core::sealed::Format::of(Path::new(&e.file));
    let fields = [
        (
            "format",
            e.format == format.label(),
            format!("`{}` for a .{} file", format.label(), format.extension()),
        ),
        ("mode", MODES.contains(&e.mode.as_str()), MODES.join(", ")),
        (
            "verified",
            VERIFIED.contains(&e.verified.as_str()),
            VERIFIED.join(", "),
        ),
        (
            "whole",
            !e.whole || e.mode == "full",
            "false unless its mode is full".to_owned(),
        ),
    ];
    if let Some((field, _, wanted)) = fields.iter().find(|(_, ok, _)| !ok) {
        bail!(
            "its `{field}` is not one this tool writes ({wanted}); uploading the backup again \
             writes its entry as this tool does"
        );
    }
    Ok(())
}

/// Whether `named`, the environment in a backup's name, may stand in the
/// index of `env`, of database `database`: `env` itself, one of `older`
/// (names its database is known to have had), or any name a backup this
/// tool uploads under `env/` can have: one its manifest records
/// ([`crate::config::environment::Environment::recorded_as`]), a short
/// name or one qualified by `database`
/// ([`d1_core::names::may_name_database`], the one rule for both), as
/// after `vars.APP_ENV` changed (`prod` -> `live`, a copy of `prod` or
/// `prod.<database>` uploaded again under `live/` or `live.<database>/`).
fn names_env(named: &str, env: &str, database: &str, older: &[String]) -> bool {
    d1_core::names::is_environment_name(named)
        && (named == env
            || older.iter().any(|o| o == named)
            || d1_core::names::may_name_database(named, database))
}

/// The positions of `entries`, newest first, as `latest` orders backups
/// ([`d1_core::order`]).
fn newest_first(entries: &[IndexEntry]) -> Vec<usize> {
    let dated: Vec<_> = entries.iter().map(IndexEntry::dated).collect();
    d1_core::order::newest_first(&dated)
}

/// `entries` in the order of [`newest_first`].
fn sort_newest_first(entries: &mut Vec<IndexEntry>) {
    let order = newest_first(entries);
    let mut taken: Vec<Option<IndexEntry>> = entries.drain(..).map(Some).collect();
    entries.extend(order.into_iter().filter_map(|i| taken[i].take()));
}

impl Index {
    /// The index `text`, read from `object` (`r2://bucket/index/<env>.json`)
    /// for `env` of database `database` (`older`: other names it is known
    /// to have had, [`Target::other_names`]). An index that is not JSON of
    /// this shape, of another format, or another environment's is refused
    /// as a whole; in one that is, each entry that is not one this tool
    /// writes ([`check_entry`], [`repeated`], or one whose fields do not
    /// read) is set aside ([`SetAside`]): never listed, fetched or
    /// `latest`, and written back as it was by the next upload. One bad line (a
    /// bug, anyone who holds the bucket's token) thus no longer stops every
    /// list, fetch and upload.
    pub fn read(text: &str, object: &str, (env, database, older): Of<'_>) -> Result<Index> {
        let raw: RawIndex = serde_json::from_str(text)?;
        manifest::check_format_version("index", raw.format_version, INDEX_VERSION)?;
        if raw.environment != env {
            bail!(
                "it is the index of environment {:?}, not {env}",
                raw.environment.escape_debug().to_string()
            );
        }
        let mut index = Index::new(env);
        let mut verdicts = repeated(&raw.backups);
        for (i, value) in raw.backups.into_iter().enumerate() {
            let raw_file = value
                .get("file")
                .and_then(|f| f.as_str())
                .map(str::to_owned);
            let (read, raw) = match verdicts[i].take() {
                Some((why, repeat)) => (Err(why), (!repeat).then_some(value)),
                None => (
                    entry_from(value.clone(), (env, database, older)),
                    Some(value),
                ),
            };
            match read {
                Ok(entry) => index.backups.push(entry),
                Err(reason) => index.set_aside.push(SetAside {
                    raw,
                    index: object.to_owned(),
                    position: i + 1,
                    file: raw_file
                        .as_deref()
                        .filter(|f| shows_as_itself(f))
                        .map(str::to_owned),
                    raw_file,
                    reason,
                }),
            }
        }
        Ok(index)
    }

    /// Refuses an index that is not `env`'s as this tool writes it, or
    /// that has an entry [`Index::read`] sets aside (the first, named).
    #[cfg(test)]
    pub fn check_with(&self, env: &str, database: &str, older: &[String]) -> Result<()> {
        let text = serde_json::to_string(self)?;
        let index = Index::read(&text, "r2://b/index/x.json", (env, database, older))?;
        match index.set_aside.first() {
            Some(a) => bail!(
                "its entry {} ({:?}): {}",
                a.position,
                a.raw_file
                    .as_deref()
                    .unwrap_or_default()
                    .escape_debug()
                    .to_string(),
                a.reason
            ),
            None => Ok(()),
        }
    }

    /// The index of `env` rebuilt from `entries` (`offsite reindex`, each
    /// from a manifest here that records a copy), newest first and read
    /// back as [`Index::read`] reads the bucket's: an entry it would set
    /// aside is left out of `backups`, in `set_aside`.
    pub fn rebuilt(entries: Vec<IndexEntry>, object: &str, of: Of<'_>) -> Result<Index> {
        let mut index = Index::new(of.0);
        index.backups = entries;
        sort_newest_first(&mut index.backups);
        Index::read(&serde_json::to_string(&index)?, object, of)
    }

    /// The index as an upload writes it: its entries, then each entry set
    /// aside as it was read, but for one naming `recorded`, the file whose
    /// entry the upload has just recorded (its own record replaces it).
    pub fn written(&self, recorded: &str) -> Result<String> {
        let mut value = serde_json::to_value(self)?;
        if let Some(backups) = value["backups"].as_array_mut() {
            backups.extend(
                { self.set_aside.iter() }
                    .filter(|a| a.raw_file.as_deref() != Some(recorded))
                    .filter_map(|a| a.raw.clone()),
            );
        }
        let mut text = serde_json::to_string_pretty(&value)?;
        text.push('\n');
        Ok(text)
    }

    /// The positions of the entries set aside, for a message: `entry 2,
    /// entry 5`, the first ten and how many more.
    pub fn set_aside_positions(&self) -> String {
        let mut told: Vec<String> = { self.set_aside.iter().take(10) }
            .map(|a| format!("entry {}", a.position))
            .collect();
        if self.set_aside.len() > 10 {
            told.push(format!("{} more", self.set_aside.len() - 10));
        }
        told.join(", ")
    }

    pub fn new(env: &str) -> Index {
        Index {
            format_version: INDEX_VERSION,
            environment: env.to_owned(),
            backups: Vec::new(),
            set_aside: Vec::new(),
        }
    }

    /// Adds or replaces the entry for a file, and drops the entries that the
    /// lifecycle rule has expired by `now`. R2 counts a copy's age by its
    /// own clock: walking back from `now`, the uploads each within the
    /// rule's days of the next are this clock's timeline; one before a gap
    /// of more than the rule's days (this clock ahead, or theirs behind, or
    /// no upload for that long) is not known to be past the rule by this
    /// clock alone, nor by an earlier upload of the same clock, so none
    /// there is dropped, and `false` says so (for the first upload past the
    /// gap). Once uploads have gone on for the rule's days past the gap,
    /// they are past it by any clock.
    pub fn record(&mut self, entry: IndexEntry, now: DateTime<Utc>, expire_days: i64) -> bool {
        let rule = Duration::days(expire_days);
        // The uploads the index records up to now (the replaced one's too),
        // newest first: this clock's timeline reaches back to `since`, the
        // oldest no more than the rule's days before the next (or now).
        let mut times: Vec<DateTime<Utc>> = { self.backups.iter() }
            .map(|e| e.uploaded_at)
            .filter(|t| *t <= now)
            .collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let mut since = now;
        for t in times {
            if since - t > rule {
                break;
            }
            since = t;
        }
        self.backups.retain(|e| e.file != entry.file);
        // Before a gap no upload of this timeline has yet outlasted.
        let shielded = |e: &IndexEntry| e.uploaded_at < since && now - since < rule;
        let expired = |e: &IndexEntry| now - e.uploaded_at >= rule;
        // Told by the first upload past the gap, not by each one after it.
        let witnessed = since < now || !self.backups.iter().any(|e| expired(e) && shielded(e));
        self.backups.push(entry);
        self.backups.retain(|e| !expired(e) || shielded(e));
        sort_newest_first(&mut self.backups);
        witnessed
    }

    /// Whether [`Index::record`] of `entry` would drop another entry.
    pub fn would_drop(&self, entry: &IndexEntry, now: DateTime<Utc>, expire_days: i64) -> bool {
        let mut after = self.clone();
        after.record(entry.clone(), now, expire_days);
        { self.backups.iter() }
            .any(|e| e.file != entry.file && after.backups.iter().all(|a| a.file != e.file))
    }

    /// The whole copies verified good, dated up to now, newest first:
    /// `latest` is the first.
    pub fn verified_newest_first(&self) -> Vec<&IndexEntry> {
        let now = Utc::now();
        let mut good = self.good_newest_first();
        good.retain(|e| e.created_at <= now);
        good
    }

    /// The whole copies verified good, newest first whatever order the
    /// index (anyone's to write) lists them in, those dated after now too.
    fn good_newest_first(&self) -> Vec<&IndexEntry> {
        { newest_first(&self.backups).into_iter() }
            .map(|i| &self.backups[i])
            .filter(|e| e.whole && e.verified == "good")
            .collect()
    }

    /// A file by name, or `latest`: the newest whole copy verified good.
    pub fn find(&self, which: &str) -> Result<&IndexEntry> {
        if which == "latest" {
            // Newest first whatever order the index (anyone's to write)
            // lists them in; one dated after now is passed over, as
            // `latest` passes over a local one.
            let now = Utc::now();
            let good = self.good_newest_first();
            for ahead in &good {
                if let Some(why) = d1_core::wording::dated_ahead(ahead.created_at, now) {
                    crate::warn!("offsite latest passes over {}: it is {why}", ahead.file);
                }
            }
            if let (None, Some(newest)) = (good.iter().find(|e| e.created_at <= now), good.first())
            {
                bail!(
                    "offsite latest of {} is none of its copies: each verified one is dated after \
                     this machine's clock (the newest, {}). Check this machine's clock; meanwhile \
                     name the copy you mean (`cargo xtask offsite list --env {}`)",
                    self.environment,
                    newest.file,
                    self.environment
                );
            }
            return good
                .into_iter()
                .find(|e| e.created_at <= now)
                .with_context(|| {
                    format!(
                        "no verified full backup of {} is offsite; `cargo xtask offsite list --env {}` \
                         shows what is",
                        self.environment, self.environment
                    )
                });
        }
        let name = file_name(Path::new(which));
        if let Some(aside) = { self.set_aside.iter() }
            .find(|a| [which, name.as_str()].contains(&a.raw_file.as_deref().unwrap_or_default()))
            .filter(|_| self.backups.iter().all(|e| e.file != name))
        {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "{} is {} of {}, set aside: {}. It is not fetched; `cargo xtask offsite list \
                 --env {}` shows the copies that can be. Nothing was fetched.",
                d1_core::names::shown(&name),
                aside.described(),
                aside.index,
                aside.reason,
                self.environment
            );
        }
        self.backups
            .iter()
            .find(|e| e.file == name)
            .with_context(|| {
                let files = self.backups.iter().map(|e| e.file.clone());
                let guess =
                    crate::edge::inventory::did_you_mean(&crate::edge::inventory::nearest_names(files, &name));
                format!(
                    "{name} is not among the offsite copies of {}{guess}; `cargo xtask offsite list --env {}` \
                     shows them",
                    self.environment, self.environment
                )
            })
            .map_err(|e| crate::exit::Exit::CouldNotRun.error(e))
    }
}

/// The days standing for "never expires": a century.
const NO_EXPIRY: i64 = 36_500;

/// The days after upload at which the bucket's lifecycle rules delete
/// every object under `prefix` (the shortest enabled rule over all of it),
/// read from `wrangler r2 bucket lifecycle list`'s output ([`listed_rules`],
/// [`ListedRule::expire_days`]); `None` when no rule does.
pub fn expiry_days(listing: &str, prefix: &str) -> Option<i64> {
    { listed_rules(listing).into_iter() }
        .filter(|rule| rule.enabled && prefix.starts_with(rule.prefix.as_str()))
        .filter_map(|rule| rule.expire_days())
        .min()
}

/// The rule names in `wrangler r2 bucket lifecycle list`'s output.
pub fn rule_names(listing: &str) -> Vec<String> {
    { listed_rules(listing).into_iter() }
        .map(|rule| rule.name)
        .collect()
}

/// An object downloaded into a directory of its own (created 0700, never
/// one that exists), removed with it when dropped.
pub struct Download {
    dir: PathBuf,
    file: PathBuf,
}

impl Download {
    fn create(dir: PathBuf) -> Result<Download> {
        fsutil::create_new_private_dir(&dir)?;
        let file = dir.join("object");
        let download = Download { dir, file };
        // Private from its creation: wrangler writes into this file, which
        // keeps its mode, rather than making one of the umask's mode that
        // an interrupt could leave before it is made private.
        fsutil::create_private_file(&download.file)?;
        Ok(download)
    }

    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An object in the bucket larger than the read of it could take: wrangler
/// was stopped soon past it, and nothing of it was kept.
#[derive(Debug)]
pub struct TooLarge {
    /// `r2://bucket/key`.
    pub object: String,
    /// The most bytes the read took.
    pub most: u64,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} holds more than the {} this read takes, more than this tool ever puts there: \
             the object was replaced. wrangler was stopped, and nothing of it was kept",
            self.object,
            d1_core::wording::size(self.most)
        )
    }
}

impl std::error::Error for TooLarge {}

/// An object that is not this upload's, under a key a bucket lock keeps:
/// no upload of this backup can replace it until the lock's retention ends,
/// so running the upload again is no way on; a new backup, which goes under
/// a key of its own, is.
#[derive(Debug)]
pub struct KeptByALock {
    /// `r2://bucket/key`.
    pub object: String,
    /// The lock rule that keeps it, described.
    pub rule: String,
    /// The environment whose backup it is.
    pub env: String,
}

impl std::fmt::Display for KeptByALock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} does not hold this backup's copy whole, and the bucket's lock rule ({}) keeps \
             it: no upload of this backup can replace it until that retention ends. Take a new backup \
             (`cargo xtask backup {}`), which goes under a key of its own, and upload that; \
             `offsite list` does not list the object kept",
            self.object, self.rule, self.env
        )
    }
}

impl std::error::Error for KeptByALock {}

/// What an offsite command needs: the environment, its bucket, wrangler.
pub struct Target<'a> {
    pub env: &'a Environment,
    pub offsite: Offsite,
    pub policy: Policy,
    pub wrangler: Wrangler,
    pub cmds: Commands,
    pub backup_dir: PathBuf,
    /// `[<env>.encryption]` names recipients: only sealed copies go offsite.
    pub encrypts: bool,
    /// `--from-env NAME` (`offsite list`, `offsite fetch`): a short name
    /// the environment had before, whose prefix is read too, for a machine
    /// with no local backup that records it. Never written to.
    pub from_env: Option<String>,
}

impl Target<'_> {
    pub fn bucket(&self) -> &str {
        &self.offsite.bucket
    }

    /// Downloads an object into a private temporary directory made for it
    /// in the backup directory (on its filesystem, so that the file can be
    /// moved into place); `None` when it does not exist. wrangler writes
    /// only inside that new directory, never to a name in the backup
    /// directory itself, which a link could have taken. An object of more
    /// than `most` bytes is a [`TooLarge`] error: the bucket is anyone's to
    /// write who holds its token, and wrangler is stopped soon past it.
    pub fn download(&self, key: &str, label: &str, most: u64) -> Result<Option<Download>> {
        fsutil::create_private_dir(&self.backup_dir)?;
        let download = Download::create(
            self.backup_dir
                .join(format!(".{label}.{}.download.partial", std::process::id())),
        )?;
        // Private already (`Download::create`); made so again in case
        // wrangler replaced the file rather than writing into it.
        if self.get_within(key, download.path(), most)? {
            fsutil::make_private(download.path())?;
            Ok(Some(download))
        } else {
            Ok(None)
        }
    }

    /// `wrangler r2 object get` into `file`, which may hold no more than
    /// `most` bytes; `Ok(false)` when the object does not exist. wrangler
    /// writes no file past the larger of `most` and the 64 MiB a text this
    /// tool reads may hold (its own files, such as Node's compile cache,
    /// stay under that), then its write fails and it stops.
    fn get_within(&self, key: &str, file: &Path, most: u64) -> Result<bool> {
        let wrangler = { self.wrangler.clone() }.writing_at_most(most.max(TEXT_LIMIT) + 1);
        let got = wrangler.run_unless_missing(&self.cmds.r2_get(self.bucket(), key, file));
        let held = std::fs::symlink_metadata(file).map_or(0, |m| m.len());
        if held > most {
            return Err(anyhow::Error::new(TooLarge {
                object: format!("r2://{}/{key}", self.bucket()),
                most,
            }));
        }
        got
    }

    /// Uploads `file`, then downloads it again and compares. A PUT that
    /// fails over an object already there is no failure when that object
    /// is what this upload would have put (`kept`: the same bytes, or for
    /// a manifest one of the same backup): a bucket lock keeps, and refuses
    /// to replace, what an upload killed after its PUT left there.
    pub fn put_checked(&self, file: &Path, key: &str, kept: Kept) -> Result<()> {
        let put = self
            .wrangler
            .run(&self.cmds.r2_put(self.bucket(), key, file));
        let (sha256, bytes) = fsutil::sha256_file(file)?;
        // A PUT that failed keeps its own error, whatever the read after it.
        // A manifest of the same backup kept under a lock may be longer
        // than this one: bounded as any manifest is.
        let most = match kept {
            Kept::SameBackup => bytes.max(TEXT_LIMIT),
            _ => bytes,
        };
        let back = match (put, self.download(key, &file_name(file), most)) {
            (Ok(()), read) => read?,
            (Err(e), Ok(Some(there))) if kept.takes(file, there.path())? => {
                crate::say!(
                    "  r2://{}/{key} is already there, {}: an earlier upload put it, and the \
                     PUT over it failed (a bucket lock keeps what it holds); it is kept",
                    self.bucket(),
                    kept.said()
                );
                crate::detail!("  the PUT over it failed: {e:#}");
                return Ok(());
            }
            (Err(e), Ok(Some(_))) => {
                return Err(match self.kept_by_a_lock(key, kept) {
                    Some(locked) => locked.context(format!("the PUT over it failed: {e:#}")),
                    None => e,
                });
            }
            (Err(e), _) => return Err(e),
        };
        let back = match back {
            Some(back) => back,
            None => bail!(
                "wrangler reported the upload of {} complete, but r2://{}/{key} does not exist",
                file.display(),
                self.bucket()
            ),
        };
        let (got_sha, got_bytes) = fsutil::sha256_file(back.path())?;
        if got_sha != sha256 || got_bytes != bytes {
            let e = anyhow::anyhow!(
                "r2://{}/{key} holds {got_bytes} bytes with sha256 {got_sha}, but {} is {bytes} \
                 bytes with sha256 {sha256}: the upload did not arrive whole",
                self.bucket(),
                file.display()
            );
            return Err(match self.kept_by_a_lock(key, kept) {
                Some(locked) => locked.context(e.to_string()),
                None => e,
            });
        }
        crate::say!(
            "  checked: r2://{}/{key} reads back as {bytes} bytes, sha256 {sha256}",
            self.bucket()
        );
        Ok(())
    }

    /// A [`KeptByALock`] error when an enabled lock rule of the bucket
    /// holds `key`, whose object is not this upload's backup or manifest
    /// (`kept`; an index, rewritten by every upload, is no backup's): no
    /// PUT replaces it until the rule's retention ends. `None` when none
    /// does, or the rules cannot be read (the caller's own error is then
    /// the one told).
    fn kept_by_a_lock(&self, key: &str, kept: Kept) -> Option<anyhow::Error> {
        if matches!(kept, Kept::Never) {
            return None;
        }
        let rule = self.locks().ok()?.into_iter().find(|r| r.holds(key))?;
        Some(anyhow::Error::new(KeptByALock {
            object: format!("r2://{}/{key}", self.bucket()),
            rule: rule.describe(),
            env: self.env.name.clone(),
        }))
    }

    /// The bucket's lock rules, read with wrangler.
    pub fn locks(&self) -> Result<Vec<LockRule>> {
        let listing = self
            .wrangler
            .run_captured(&self.cmds.r2_lock_list(self.bucket()))?;
        Ok(lock_rules(&listing))
    }

    /// With no index found, that the bucket is there in the account
    /// wrangler reads (one read-only request: its lock rules). wrangler
    /// says "The specified key does not exist" for every 404 of an object
    /// read, a bucket this account does not hold or cannot reach too (the
    /// project moved to another Cloudflare account): without this, list and
    /// fetch would say nothing was ever uploaded.
    pub fn check_bucket_reachable(&self) -> Result<()> {
        let account = match &self.env.account_id {
            Some(id) => format!("account {id} (the configuration's account_id)"),
            None => match crate::edge::wrangler::env_account() {
                Some(read) => format!("account {} ({})", read.id, read.name),
                None => "the account wrangler uses".to_owned(),
            },
        };
        self.locks().map(drop).map_err(|e| {
            e.context(format!(
                "no index of {1}'s offsite copies was found in r2://{0}, and the bucket itself \
                 cannot be read in {account}: the copies may well be there. If the \
                 project moved to another Cloudflare account, read them with the account that \
                 holds the bucket (`account_id` in wrangler.toml, or CLOUDFLARE_ACCOUNT_ID when \
                 it names none); if the bucket was renamed, give its name with --bucket",
                self.bucket(),
                self.env.name
            ))
        })
    }

    /// How many days after upload the bucket's lifecycle rules delete every
    /// copy under this environment's prefix ([`expiry_days`]); `None` when
    /// no rule does, or the rules cannot be read (a token not allowed to,
    /// which is said): then no copy is known to be gone.
    fn expiry_in_bucket(&self) -> Option<i64> {
        let read = self.cmds.r2_lifecycle_list(self.bucket());
        let Ok(listing) = self.wrangler.run_captured(&read) else {
            crate::warn!(
                "the lifecycle rules of r2://{} cannot be read with this token (one allowed \
                 objects only?), so the offsite index of {} keeps every copy it lists: \
                 `offsite list` may show copies R2 has deleted since. A token that may read \
                 the bucket's settings lets the index drop them",
                self.bucket(),
                self.env.name
            );
            return None;
        };
        expiry_days(&listing, &format!("{}/", self.env.name))
    }

    /// Downloads `key` into a private temporary directory, not the backup
    /// directory: for reads that must leave no trace there (a dry run's).
    /// It is a text this tool reads (an index, a manifest): one of more
    /// than the 64 MiB such a text may hold is a [`TooLarge`] error.
    pub fn download_private(&self, key: &str) -> Result<Option<(PrivateDir, PathBuf)>> {
        let dir = PrivateDir::create("offsite-read")?;
        let file = dir.path().join("object");
        if self.get_within(key, &file, TEXT_LIMIT)? {
            fsutil::make_private(&file)?;
            Ok(Some((dir, file)))
        } else {
            Ok(None)
        }
    }

    /// The manifest `key` of this bucket, downloaded to `file`, parsed and
    /// validated as stored as `stored_as`. One that is no manifest, or
    /// cannot be trusted, is an [`UntrustedManifest`] (exit 2), naming the
    /// object in the bucket, not the temporary file it was downloaded to
    /// (deleted as the command ends): its caller says what was not done
    /// and the way on ([`UntrustedManifest::then`]).
    pub fn manifest_from(&self, key: &str, file: &Path, stored_as: &str) -> Result<Manifest> {
        let untrusted = |why: String| {
            crate::exit::Exit::CouldNotRun.error(UntrustedManifest {
                object: format!("r2://{}/{key}", self.bucket()),
                why,
            })
        };
        let manifest = Manifest::parse(file).map_err(|e| {
            untrusted(format!(
                "it is not a valid backup manifest ({})",
                e.root_cause()
            ))
        })?;
        { manifest.validate(stored_as) }.map_err(|e| untrusted(format!("{e:#}")))?;
        Ok(manifest)
    }

    /// The manifest of `entry` in this bucket, downloaded into a private
    /// temporary directory and read as [`Target::manifest_from`] does:
    /// `None` when it is not there.
    pub fn entry_manifest(&self, entry: &IndexEntry) -> Result<Option<Manifest>> {
        let Some((_dir, file)) = self.download_private(&entry.manifest_key)? else {
            return Ok(None);
        };
        let expected = manifest::manifest_path(Path::new(&entry.file));
        self.manifest_from(&entry.manifest_key, &file, &file_name(&expected))
            .map(Some)
    }

    /// The entry for `which` (a file name, or `latest`), looked up in this
    /// environment's index and, only when it is not there, in the indexes
    /// of its database's other name ([`Target::read_indexes`]): `None` when
    /// there is no index at all, else what [`Index::find`] says. Each index
    /// is read once.
    pub fn find_entry(&self, which: &str) -> Result<Option<Result<IndexEntry>>> {
        Ok(self.find_entry_reading(which)?.0)
    }

    /// [`Target::find_entry`], with the indexes it read, for a caller that
    /// goes on to read them all ([`Target::read_indexes`]) without reading
    /// any twice.
    fn find_entry_reading(&self, which: &str) -> Result<(Option<Result<IndexEntry>>, Read)> {
        let own = self.read_index()?;
        if let Some(Ok(entry)) = own.as_ref().map(|i| i.find(which)) {
            let entry = entry.clone();
            return Ok((Some(Ok(entry)), Read::Own(own)));
        }
        let all = self.with_other_names(own)?;
        let found = all.as_ref().map(|index| index.find(which).cloned());
        Ok((found, Read::All(all)))
    }

    /// [`Target::read_indexes`], from what [`Target::find_entry_reading`]
    /// read: only the indexes under the other names are read here, when
    /// it read this environment's alone.
    fn all_indexes(&self, read: Read) -> Result<Option<Index>> {
        match read {
            Read::Own(own) => self.with_other_names(own),
            Read::All(all) => Ok(all),
        }
    }

    /// Whether `key` is under this environment's own prefix, not under
    /// its database's other name.
    pub fn is_own_key(&self, key: &str) -> bool {
        key.starts_with(&format!("{}/", self.env.name))
    }

    /// The index this environment's uploads write to.
    pub fn read_index(&self) -> Result<Option<Index>> {
        self.read_index_of(&self.env.name)
    }

    /// The copies `list`, `fetch` and the migration record see: this
    /// environment's index, and the one its database's copies were listed
    /// in under its other name, from before a second database was added to
    /// the environment (`prod`, now `prod.<db>`) or after one was taken out
    /// (the reverse). Each index is checked against its own name (its
    /// objects under `<name>/`). `None` when neither index exists.
    pub fn read_indexes(&self) -> Result<Option<Index>> {
        let own = self.read_index()?;
        self.with_other_names(own)
    }

    /// `own` with the copies of this database listed under its other names.
    fn with_other_names(&self, own: Option<Index>) -> Result<Option<Index>> {
        let mut other: Option<(Vec<IndexEntry>, Vec<SetAside>)> = None;
        for name in self.other_names() {
            if let Some(index) = self.other_index(&name)? {
                let (entries, aside) = other.get_or_insert_with(Default::default);
                entries.extend(index.backups);
                aside.extend(index.set_aside);
            }
        }
        if own.is_none() && other.is_none() {
            return Ok(None);
        }
        let mut index = own.unwrap_or_else(|| Index::new(&self.env.name));
        let (other, aside) = other.unwrap_or_default();
        index.backups.extend(other);
        index.set_aside.extend(aside);
        sort_newest_first(&mut index.backups);
        Ok(Some(index))
    }

    /// The other names this environment's database had its copies listed
    /// under: [`other_names`], then the prefixes of the offsite keys that
    /// the manifests here of this database record in this bucket, other
    /// than its own (its short name changed since they were uploaded:
    /// `vars.APP_ENV` prod -> live leaves them under `prod/`).
    pub fn other_names(&self) -> Vec<String> {
        let mut names = other_names(self.env);
        names.extend(old_prefixes(self.env, self.bucket(), &self.backup_dir));
        names.extend(self.from_env.clone());
        names.retain(|n| n != &self.env.name);
        names.sort();
        names.dedup();
        names
    }

    /// The index under `name`, another name of this environment's
    /// database, when its copies are of this database: a qualified name of
    /// this environment (`prod.<db>`) names it; any other name (the
    /// environment's short name `prod`, which listed the copies of the one
    /// database it had then, or the short name it had before `vars.APP_ENV`
    /// changed) is judged by the database the manifest of its newest copy
    /// names. `None` when there is none, or it is another database's.
    fn other_index(&self, name: &str) -> Result<Option<Index>> {
        let Some(index) = self.read_index_of(name)? else {
            return Ok(None);
        };
        if name == format!("{}.{}", self.env.env_name, self.env.database_name) {
            return Ok(Some(index));
        }
        let Some(newest) = index.backups.first() else {
            return Ok(None);
        };
        let database = match self.database_of(newest) {
            Ok(database) => database,
            Err(e) => {
                // One manifest no one can trust does not stop the other
                // copies being read: these are judged as another
                // database's.
                crate::warn!(
                    "{}. It is the newest copy's listed under {name}/ (r2://{}/{}), which tells \
                     whose copies those are: none of them is taken as {}'s but those the \
                     backups on this machine record as its own",
                    UntrustedManifest::within(e)?,
                    self.bucket(),
                    index_key(name),
                    self.env.name
                );
                None
            }
        };
        if database.as_deref() == Some(&self.env.database_name) {
            return Ok(Some(index));
        }
        // The newest is another database's (the old short name is another
        // environment's now, or someone wrote it there), or cannot be
        // trusted: the copies the backups here of this database record
        // under it are still ours (a fetch checks each one's manifest all
        // the same).
        let recorded = recorded_keys(self.env, self.bucket(), &self.backup_dir);
        let mut index = index;
        index.backups.retain(|e| recorded.contains(&e.key));
        Ok((!index.backups.is_empty()).then_some(index))
    }

    /// The database the manifest of `entry` in the bucket records, when it
    /// is there and describes that entry's file of this environment: under
    /// its short name, or under an old one with this database's name and id
    /// ([`Environment::recorded_as`]).
    pub fn database_of(&self, entry: &IndexEntry) -> Result<Option<String>> {
        let Some(m) = self.entry_manifest(entry)? else {
            return Ok(None);
        };
        let of_this_env = (crate::config::environment::short_name(&m.environment)
            == self.env.env_name
            || self.env.records(&m))
            && m.file.name == entry.file;
        Ok(of_this_env.then_some(m.database.name))
    }

    /// With `--from-env NAME` given: the database whose copies NAME's
    /// index lists when that is another database (the name its newest
    /// copy's manifest records; `None` when that manifest is gone or its
    /// name would not print as itself), so that a fetch finding none of
    /// this database's copies says whose they are. `Ok(None)` without
    /// `--from-env`, without an index under NAME, or when it is this
    /// database's or lists a copy the backups here record as this one's.
    pub fn another_database_under_from_env(&self) -> Result<Option<(String, Option<String>)>> {
        let Some(name) = self.from_env.as_deref().filter(|n| *n != self.env.name) else {
            return Ok(None);
        };
        let Some(index) = self.read_index_of(name)? else {
            return Ok(None);
        };
        let Some(newest) = index.backups.first() else {
            return Ok(None);
        };
        let manifest = match self.entry_manifest(newest) {
            Ok(Some(manifest)) => manifest,
            Ok(None) => return Ok(Some((name.to_owned(), None))),
            // Whose they are cannot be told from it: the index under NAME,
            // read too ([`Target::other_index`]), says so and is judged as
            // another database's.
            Err(e) => {
                UntrustedManifest::within(e)?;
                return Ok(None);
            }
        };
        let database = manifest.database.name;
        if database == self.env.database_name {
            return Ok(None);
        }
        // The copies the backups here of this database record under NAME
        // are still its own, whoever's the newest is: they are listed and
        // fetched ([`Target::other_index`]), not refused.
        let recorded = recorded_keys(self.env, self.bucket(), &self.backup_dir);
        if index.backups.iter().any(|e| recorded.contains(&e.key)) {
            return Ok(None);
        }
        let database = Some(database).filter(|d| d1_core::names::is_printable(d));
        Ok(Some((name.to_owned(), database)))
    }

    fn read_index_of(&self, name: &str) -> Result<Option<Index>> {
        let object = format!("r2://{}/{}", self.bucket(), index_key(name));
        // An index this tool cannot judge is bad input, as a manifest is:
        // nothing is done with it (exit 2), and no command that reads it
        // gets past it until it is replaced ([`UnreadableIndex`]).
        let unreadable = |why: String, later: bool| {
            crate::exit::Exit::CouldNotRun.error(UnreadableIndex {
                object: object.clone(),
                why,
                later,
                own: (name == self.env.name).then(|| self.env.name.clone()),
                env: self.env.name.clone(),
            })
        };
        let downloaded = self.download_private(&index_key(name)).map_err(|e| {
            match e.downcast_ref::<TooLarge>() {
                Some(large) => unreadable(
                    format!(
                        "it holds more than the {} an index may hold (wrangler was stopped, and \
                         nothing of it was kept)",
                        d1_core::wording::size(large.most)
                    ),
                    false,
                ),
                None => e,
            }
        })?;
        let Some((_dir, file)) = downloaded else {
            return Ok(None);
        };
        let text = crate::edge::fsutil::read_text(&file, "offsite index")
            .map_err(|_| unreadable("it is not text (UTF-8)".to_owned(), false))?;
        let older = self.other_names();
        let index =
            Index::read(&text, &object, (name, &self.env.database_name, &older)).map_err(|_| {
                let (why, later) = why_unreadable(&text, name);
                unreadable(why, later)
            })?;
        warn_set_aside(&index, &self.env.name);
        Ok(Some(index))
    }
}

/// Why [`Index::read`] refused `text` as the index of `name`, said without
/// quoting any of it (the bucket is anyone's to write who holds its
/// token), and whether it is of a later format (which an update reads).
fn why_unreadable(text: &str, name: &str) -> (String, bool) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return ("it is not JSON".to_owned(), false);
    };
    let Ok(raw) = serde_json::from_value::<RawIndex>(value) else {
        return (
            "it is JSON, but not of the index's shape (`format_version`, `environment`, \
             `backups`)"
                .to_owned(),
            false,
        );
    };
    if raw.format_version > INDEX_VERSION {
        let why = format!(
            "it was written by a newer version of this tool (index format {}; this version \
             reads format {INDEX_VERSION})",
            raw.format_version
        );
        return (why, true);
    }
    if raw.format_version != INDEX_VERSION {
        let why = format!(
            "its index format {} is not one this tool ever wrote (it writes {INDEX_VERSION})",
            raw.format_version
        );
        return (why, false);
    }
    if raw.environment != name {
        return (
            format!("it is another environment's index, not {name}'s"),
            false,
        );
    }
    ("it cannot be read as an index".to_owned(), false)
}

/// An offsite index this tool cannot judge as a whole: not JSON of the
/// index's shape, over the size an index may hold, another environment's
/// or of another format. Every command that reads it (`offsite list`,
/// `offsite fetch`, `upload`, `backup --upload`) is refused by it alike
/// (exit 2), with the way on: running again never helps, replacing the
/// index does (`offsite reindex`), or, for a later format, an update.
#[derive(Debug)]
pub struct UnreadableIndex {
    /// `r2://bucket/index/<name>.json`.
    pub object: String,
    /// What is wrong with it, never quoting it.
    pub why: String,
    /// It is of a later format: an update reads it, a reindex would lose it.
    pub later: bool,
    /// The environment whose own index it is; `None` for the index of
    /// another name the environment had, which no command here rewrites.
    pub own: Option<String>,
    /// The environment the command was run for.
    pub env: String,
}

impl std::fmt::Display for UnreadableIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.later {
            true => "cannot be read by this version",
            false => "is not an offsite index this tool wrote",
        };
        write!(
            f,
            "{} {what}: {}; the copies in the bucket are untouched, but no offsite list, fetch \
             or upload of {} gets past this index, and running one again does not help. ",
            self.object, self.why, self.env
        )?;
        match (&self.own, self.later) {
            (_, true) => write!(
                f,
                "Update this checkout (`git pull`) and run the command again; do not replace the \
                 index, which a newer version wrote"
            ),
            (Some(env), false) => write!(
                f,
                "Replace it with one rebuilt from the manifests in backups/ that record {env}'s \
                 copies: `cargo xtask offsite reindex --env {env} --dry-run` shows what the new \
                 index would hold and where the old one is kept aside; run it from the machine \
                 that holds those backups"
            ),
            (None, false) => write!(
                f,
                "It is the index of a name {} had before; `cargo xtask offsite reindex` replaces \
                 only {}'s own index, so whoever holds the bucket must restore or remove this one",
                self.env, self.env
            ),
        }
    }
}

impl std::error::Error for UnreadableIndex {}

/// Warns once (per index a command reads) of each entry of `index` set
/// aside (the first ten, then how many more), naming the index, the
/// entry's place, why, and what is done: uploads keep them in the index as
/// they were, never used; how to recover a real copy among them.
fn warn_set_aside(index: &Index, env: &str) {
    static TOLD: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Some(object) = index.set_aside.first().map(|a| a.index.clone()) else {
        return;
    };
    if let Ok(mut told) = TOLD.lock() {
        if told.contains(&object) {
            return;
        }
        told.push(object.clone());
    }
    let kept = match object.ends_with(&format!("/{}", index_key(env))) {
        true => format!("uploads of {env} keep it in the index as it is"),
        false => format!("uploads of {env} do not write this index; it is left as it is"),
    };
    let fix = format!(
        "{kept}, and remove no object. If it is a real copy (FILE below: its backup's file \
         name; BUCKET: the bucket; KEY: its object's key, {env}/YYYY/MM/FILE), its object is \
         at r2://BUCKET/KEY: re-upload the local backup if this machine still has it (`cargo \
         xtask upload FILE`), else get the object and its manifest with `wrangler r2 object \
         get BUCKET/KEY --file backups/FILE --remote` and run `cargo xtask verify FILE`"
    );
    for aside in index.set_aside.iter().take(10) {
        crate::warn!(
            "{object}: {} is set aside: {}. It is not listed, fetched or taken as latest; {fix}",
            aside.described(),
            aside.reason
        );
    }
    if index.set_aside.len() > 10 {
        crate::warn!(
            "{object}: {} more entries are set aside (`cargo xtask offsite list --env {env} \
             --json` gives each under set_aside); {fix}",
            index.set_aside.len() - 10
        );
    }
}

/// The indexes [`Target::find_entry_reading`] read: this environment's
/// alone, when what it looked for is there; else with those under its
/// database's other names ([`Target::read_indexes`]).
enum Read {
    Own(Option<Index>),
    All(Option<Index>),
}

/// The other name `env`'s database had its copies listed under: the
/// environment's short name when it now has several databases (`prod`),
/// else the qualified name it had while it had several (`prod.<db>`).
fn other_names(env: &Environment) -> Vec<String> {
    if env.is_new {
        return Vec::new();
    }
    match env.name != env.env_name {
        true => vec![env.env_name.clone()],
        false => vec![format!("{}.{}", env.env_name, env.database_name)],
    }
}

impl Target<'_> {
    /// Reads the copies listed under `name` too (`--from-env`), checked
    /// before any request: a name this tool could have written a key under.
    pub fn read_from_env(&mut self, name: Option<&str>) -> Result<()> {
        let Some(name) = name else {
            return Ok(());
        };
        if !d1_core::names::is_environment_name(name) {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "--from-env is {:?}; name the short name (vars.APP_ENV) the environment had \
                 when its copies were uploaded: letters, digits, `_` and `-` only, as in \
                 `--from-env prod`. Nothing was run.",
                name.escape_debug().to_string()
            );
        }
        self.from_env = Some(name.to_owned());
        Ok(())
    }
}

/// The prefixes (`prod`, `prod.<db>`) of the offsite keys in `bucket` that
/// the manifests in `backup_dir` of `env`'s database record
/// ([`Environment::recorded_as`]) under another short name: where its
/// copies went under a short name it had before (`vars.APP_ENV` changed).
/// Only names this tool could have written a key under.
pub fn old_prefixes(env: &Environment, bucket: &str, backup_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = recorded_keys(env, bucket, backup_dir)
        .into_iter()
        .filter_map(|key| key.split_once('/').map(|(name, _)| name.to_owned()))
        .filter(|name| {
            crate::config::environment::short_name(name) != env.env_name
                && d1_core::names::is_environment_name(name)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The offsite keys in `bucket` that the manifests in `backup_dir` of
/// `env`'s database ([`Environment::recorded_as`]) record.
fn recorded_keys(env: &Environment, bucket: &str, backup_dir: &Path) -> Vec<String> {
    recorded_copies(env, backup_dir)
        .into_iter()
        .filter(|o| o.bucket == bucket)
        .map(|o| o.key)
        .collect()
}

/// The offsite copies, in any bucket, that the manifests in `backup_dir`
/// of `env`'s database ([`Environment::recorded_as`]) record.
pub fn recorded_copies(env: &Environment, backup_dir: &Path) -> Vec<manifest::OffsiteCopy> {
    crate::edge::inventory::scan(backup_dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| env.records(&e.manifest))
        .filter_map(|e| e.manifest.offsite)
        .collect()
}

/// A manifest in the bucket that is no manifest, or cannot be trusted
/// ([`Target::manifest_from`]), named by its object there. Read by a
/// fetch, by `offsite list`, or for the migration record: what was not
/// done and the way on are its caller's to say.
#[derive(Debug, Clone)]
pub struct UntrustedManifest {
    object: String,
    why: String,
}

impl std::fmt::Display for UntrustedManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the manifest {} cannot be trusted: {}",
            self.object, self.why
        )
    }
}

impl std::error::Error for UntrustedManifest {}

impl UntrustedManifest {
    /// The untrusted manifest `error` is; any other error is returned.
    pub fn within(error: anyhow::Error) -> Result<UntrustedManifest> {
        match crate::exit::find::<UntrustedManifest>(&error) {
            Some(untrusted) => Ok(untrusted.clone()),
            None => Err(error),
        }
    }

    /// `read`, with `then` (what was not done, and the way on) told after
    /// an untrusted manifest; any other error as it is.
    pub fn then<T>(read: Result<T>, then: impl FnOnce() -> String) -> Result<T> {
        read.map_err(|e| match UntrustedManifest::within(e) {
            Ok(untrusted) => {
                crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!("{untrusted}; {}", then()))
            }
            Err(e) => e,
        })
    }
}

pub fn target<'a>(sh: &Shell, project: &Project, env: &'a Environment) -> Result<Target<'a>> {
    target_in(sh, project, env, None)
}

/// [`target`], reading `bucket` (`--bucket`: the bucket the copies went to
/// before backups.toml named another) instead of the configured one. Only
/// for reads (`offsite list`, `offsite fetch`); the name is checked as
/// backups.toml's is, before any request.
pub fn target_in<'a>(
    sh: &Shell,
    project: &Project,
    env: &'a Environment,
    bucket: Option<&str>,
) -> Result<Target<'a>> {
    if let Some(bucket) = bucket {
        crate::config::settings::check_bucket_name(bucket)
            .context("--bucket")
            .map_err(|e| crate::exit::Exit::CouldNotRun.error(e))?;
    }
    let settings = project.settings()?.env(&env.env_name);
    let offsite = match (settings.offsite, bucket) {
        (Some(offsite), Some(bucket)) => Some(Offsite {
            bucket: bucket.to_owned(),
            ..offsite
        }),
        (None, Some(bucket)) => Some(Offsite {
            bucket: bucket.to_owned(),
            expire_after: None,
            lock_for: None,
        }),
        (offsite, None) => offsite,
    };
    let Some(offsite) = offsite else {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} has no offsite bucket: add `[{}.offsite]` with `bucket = \"...\"` to {SETTINGS_FILE}. \
             Nothing was run.",
            env.name,
            env.name
        );
    };
    Ok(Target {
        env,
        offsite,
        policy: settings.retention,
        wrangler: project.wrangler(sh)?,
        cmds: project.commands(),
        backup_dir: project.backup_dir.clone(),
        encrypts: !settings.encryption.recipients.is_empty(),
        from_env: None,
    })
}

/// For an upload's dry run: the index the upload writes to, read as the
/// upload reads it before it puts anything. One it would refuse is refused
/// here, and the entries set aside in it, which the upload keeps, are
/// warned of and said.
pub fn dry_run_index(target: &Target<'_>) -> Result<()> {
    if let Some(index) = target.read_index()?
        && !index.set_aside.is_empty()
    {
        crate::say!(
            "  keeps        in the index what is set aside in it as it is ({}: see the \
             warnings), never used; no object is removed",
            index.set_aside_positions()
        );
    }
    Ok(())
}

/// [`dry_run_index`] for `backup --upload --dry-run`.
pub fn dry_run_upload_index(sh: &Shell, project: &Project, env: &Environment) -> Result<()> {
    dry_run_index(&target(sh, project, env)?)
}

/// Uploads a backup for a task that holds the backup lock (`backup --upload`).
pub fn upload(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    file: &Path,
    lock: &BackupLock,
) -> Result<()> {
    upload_with(&target(sh, project, env)?, file, lock)
}

pub fn checked_manifest(target: &Target<'_>, file: &Path) -> Result<Manifest> {
    let env = target.env;
    if !file.is_file() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} is not a backup file; give a path or `latest`",
            file.display()
        );
    }
    let manifest = Manifest::for_backup(file)?;
    if manifest.environment != env.name && !of_old_short_name(env, &manifest) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is a backup of {}, not {}: it would land under the wrong prefix. Nothing was uploaded.",
            file.display(),
            manifest.environment,
            env.name
        );
    }
    if !manifest.is_verified_good() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} has not passed verification; run `cargo xtask verify {}` first. Nothing was uploaded.",
            file.display(),
            d1_core::wording::shell_word(&file.display().to_string())
        );
    }
    if let Err(differs) = fsutil::check_recorded(file, &manifest.file)? {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} no longer matches its manifest: {differs}. It will not be copied offsite",
            file.display()
        );
    }
    if target.encrypts && !manifest.is_age_sealed() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is not encrypted, but [{}.encryption] in {SETTINGS_FILE} names recipients: a \
             backup of {} goes offsite encrypted or not at all (it was taken before the \
             recipients were set). Take a new one, which is encrypted, and upload that: `cargo \
             xtask backup {} --upload`. Nothing was uploaded.",
            file.display(),
            env.env_name,
            env.name,
            env.name
        );
    }
    Ok(manifest)
}

/// Whether `manifest` is of `env`'s database under a short name the
/// environment had before (`vars.APP_ENV` prod -> live, the same database
/// name and id: [`Environment::recorded_as`]). Such a backup is uploaded
/// under the environment's prefix now, unless it is offsite already
/// (`already_offsite_under_old_name`).
fn of_old_short_name(env: &Environment, manifest: &Manifest) -> bool {
    crate::config::environment::short_name(&manifest.environment) != env.env_name
        && env.records(manifest)
}

/// Says where the copy of a backup taken under the environment's old short
/// name already is in this bucket (under that name's prefix, where `offsite
/// list` and `offsite fetch` find it), when it is: `true`, and no second
/// copy is uploaded. The local manifest's record is not enough: the copy's
/// manifest must be in the bucket, this backup's, and an index read for
/// this environment must list the copy (a rule for the old prefix expires
/// copies, and anyone may delete them); else it is uploaded under the
/// environment's prefix now.
pub fn told_already_offsite(target: &Target<'_>, file: &Path, manifest: &Manifest) -> Result<bool> {
    let Some(copy) = { manifest.offsite.as_ref() }.filter(|o| {
        of_old_short_name(target.env, manifest)
            && o.bucket == target.bucket()
            && !target.is_own_key(&o.key)
    }) else {
        return Ok(false);
    };
    let ours = manifest::manifest_path(file);
    let Some(there) = target.download(&copy.manifest_key, &file_name(&ours), TEXT_LIMIT)? else {
        return Ok(false);
    };
    if !Kept::SameBackup.takes(&ours, there.path())? {
        return Ok(false);
    }
    // An index that cannot be read (planted, or of a later version) does
    // not list it: the upload goes on under this environment's prefix.
    let listed = { target.read_indexes().ok().flatten() }
        .is_some_and(|index| index.backups.iter().any(|e| e.key == copy.key));
    if !listed {
        return Ok(false);
    }
    let env = &target.env.name;
    crate::say!(
        "{} is a backup of {env} taken while its short name was {}: it is already offsite, in \
         r2://{}/{} (`cargo xtask offsite list --env {env}` lists it, and `offsite fetch` \
         fetches it). Nothing was uploaded.",
        file.display(),
        manifest.environment,
        copy.bucket,
        copy.key,
    );
    Ok(true)
}

pub fn print_upload_plan(target: &Target<'_>, file: &Path, manifest: &Manifest) {
    let key = object_key(&target.env.name, manifest.created_at, &manifest.file.name);
    crate::say!("Upload plan");
    crate::say!(
        "  backup       {} ({})",
        file.display(),
        d1_core::wording::size(manifest.file.bytes)
    );
    crate::say!("  to           r2://{}/{key}", target.bucket());
    crate::say!(
        "  then         its manifest beside it, and the index r2://{}/{}",
        target.bucket(),
        index_key(&target.env.name)
    );
    crate::say!(
        "  first        refuse if its key or its manifest's holds another backup of that name"
    );
    crate::say!(
        "  wrangler     {}",
        target.cmds.r2_put(target.bucket(), &key, file)
    );
    crate::say!("  check        download it again and compare SHA-256 and size");
    if !manifest.is_age_sealed() && target.env.is_production() {
        crate::warn!(
            "{} is not encrypted, and holds {}: its offsite copy has every row readable to anyone who can \
             read the bucket. `recipients` in [{}.encryption] of backups.toml encrypts the backups \
             (`cargo xtask keygen --out ~/secure/qbtime-backups.agekey` writes an identity \
             outside the repository and prints the recipient to put there)",
            file.display(),
            target.env.database_name,
            target.env.env_name
        );
    }
}

/// What an object already under an upload's key must be for the upload to
/// keep it when its PUT fails ([`Target::put_checked`]).
#[derive(Debug, Clone, Copy)]
pub enum Kept {
    /// Never: the object is rewritten each time (the index).
    Never,
    /// The file's own bytes.
    SameBytes,
    /// This backup's manifest: the one an earlier upload put differs only
    /// in where the copy went and when, and in a verification made since.
    SameBackup,
}

impl Kept {
    fn takes(self, file: &Path, there: &Path) -> Result<bool> {
        Ok(match self {
            Kept::Never => false,
            Kept::SameBytes => fsutil::sha256_file(file)? == fsutil::sha256_file(there)?,
            // Every field but where the copy went and what this machine
            // found when it verified: anyone who can write to the bucket
            // knows the backup's name, size and sha256 once its data is
            // there, and could put a manifest of other rows under the key.
            Kept::SameBackup => {
                let read = |path: &Path| -> Option<serde_json::Value> {
                    let mut m = serde_json::to_value(Manifest::parse(path).ok()?).ok()?;
                    let fields = m.as_object_mut()?;
                    fields.remove("offsite");
                    fields.remove("verification");
                    Some(m)
                };
                read(file).is_some_and(|ours| read(there) == Some(ours))
            }
        })
    }

    fn said(self) -> &'static str {
        match self {
            Kept::Never | Kept::SameBytes => "identical",
            Kept::SameBackup => "a manifest of the same backup",
        }
    }
}

/// An upload's failure, with what is left and the way on: run it again
/// once R2 answers, or, for an object a bucket lock keeps, what that error
/// says, or (R2 refused a PUT over an object a lock rule holds, the
/// index) that no run gets past the lock until the object is old enough.
fn upload_failed(e: anyhow::Error, file: &Path, name: &str, env: &str) -> anyhow::Error {
    let what = format!(
        "the offsite copy of {} failed; the local backup is kept and is not marked offsite",
        file.display()
    );
    // Neither a lock nor an index that cannot be judged gives way to
    // the same upload run again: the error itself says what does.
    if e.chain().any(|c| c.is::<KeptByALock>())
        || crate::exit::find::<UnreadableIndex>(&e).is_some()
    {
        return e.context(what);
    }
    if crate::edge::wrangler::failed_on_a_bucket_lock(&e) {
        return e.context(format!(
            "{what}: R2 refused to replace an object of this upload because a bucket lock rule \
             holds it (code {}), and no upload replaces it until its age passes the rule's \
             retention. `cargo xtask offsite lock --env {env} --dry-run` and `cargo xtask \
             doctor` show the bucket's lock rules",
            crate::edge::wrangler::R2_OBJECT_LOCKED
        ));
    }
    e.context(format!(
        "{what} (copy it once R2 answers: `cargo xtask upload {} --env {env}`)",
        d1_core::wording::shell_word(name)
    ))
}

pub fn upload_with(target: &Target<'_>, file: &Path, _lock: &BackupLock) -> Result<()> {
    let env = target.env;
    let mut manifest = checked_manifest(target, file)?;
    if told_already_offsite(target, file, &manifest)? {
        return Ok(());
    }
    print_upload_plan(target, file, &manifest);
    let key = object_key(&env.name, manifest.created_at, &manifest.file.name);
    let manifest_path = manifest::manifest_path(file);
    let manifest_key = object_key(&env.name, manifest.created_at, &file_name(&manifest_path));
    let failed = |e: anyhow::Error| upload_failed(e, file, &manifest.file.name, &env.name);

    // The index is read first as the last step reads it (again, then, for
    // what another machine added meanwhile): one it would refuse stops the
    // upload before anything is put.
    target.read_index().map_err(failed)?;
    refuse_another_backup(target, file, [&key, &manifest_key]).map_err(failed)?;
    // An interrupt from the first PUT on leaves an object in the bucket
    // that no index lists: main says what is there, not that the next run
    // starts clean. Deleting it is not tried: a bucket lock may hold it,
    // and the next upload of this backup replaces it (or, locked and
    // whole, keeps it and goes on).
    let before = crate::edge::signals::what_changed();
    let again = format!(
        "`cargo xtask upload {} --env {}`",
        d1_core::wording::shell_word(&manifest.file.name),
        env.name
    );
    let left = |what: &str| {
        let left = format!(
            "r2://{}/{key} {what}, with no index entry: `offsite list` does not show it, and \
             the next {again} replaces it (a bucket lock keeps it, and the upload goes on, \
             when it is whole)",
            target.bucket()
        );
        // What the command said stays before (`backup --upload`: the
        // backup is kept, not uploaded) still does.
        crate::edge::signals::changed(match &before {
            Some(before) => format!("{before}; {left}"),
            None => left,
        })
    };
    left("may hold part or all of this backup's copy (the upload stopped during its PUT)");
    target
        .put_checked(file, &key, Kept::SameBytes)
        .map_err(failed)?;
    left("holds this backup's copy, read back and checked");
    let now = Utc::now();
    manifest.offsite = Some(OffsiteCopy {
        bucket: target.bucket().to_owned(),
        key: key.clone(),
        manifest_key: manifest_key.clone(),
        uploaded_at: now,
    });
    let staged = put_manifest(target, &manifest, &manifest_key, failed)?;
    put_index(
        target,
        (&manifest, key.clone(), manifest_key, now),
        staged.path(),
        failed,
    )?;
    crate::edge::signals::changed(format!(
        "r2://{}/{key} holds this backup's copy and the index lists it, but {} does not \
         record it yet: the next {again} records it",
        target.bucket(),
        manifest_path.display()
    ));

    // Only the offsite record is written back, into the manifest as it is
    // now: a verify that ran meanwhile keeps its outcome.
    let copy = manifest.offsite.clone();
    Manifest::update(&manifest_path, |m| m.offsite = copy)?;
    crate::edge::signals::changed_back_to(before);
    crate::say!(
        "Offsite: {} is in r2://{}/{key}, read back and checked.",
        file.display(),
        target.bucket()
    );
    Ok(())
}

/// Puts `manifest` (recording its offsite copy) at `manifest_key`, written
/// through a file staged in the backup directory, which is returned for
/// the index; R2's errors are told by `failed`.
fn put_manifest(
    target: &Target<'_>,
    manifest: &Manifest,
    manifest_key: &str,
    failed: impl Fn(anyhow::Error) -> anyhow::Error,
) -> Result<TempFile> {
    let staged = TempFile::create(target.backup_dir.join(format!(
        ".{}.{}.upload.partial",
        manifest.file.name,
        std::process::id()
    )))?;
    fsutil::rewrite_no_follow(staged.path(), manifest.to_json()?.as_bytes())?;
    target
        .put_checked(staged.path(), manifest_key, Kept::SameBackup)
        .map_err(failed)?;
    Ok(staged)
}

/// Records the copy of `manifest`'s backup (its `key` and `manifest_key`,
/// uploaded at `now`) in the environment's offsite index, written through
/// `staged` and put back; R2's errors are told by `failed`.
fn put_index(
    target: &Target<'_>,
    (manifest, key, manifest_key, now): (&Manifest, String, String, DateTime<Utc>),
    staged: &Path,
    failed: impl Fn(anyhow::Error) -> anyhow::Error,
) -> Result<()> {
    let env = target.env;
    let configured =
        expire_days(&env.env_name, &target.offsite, &target.policy).unwrap_or(NO_EXPIRY);
    let mut index = target
        .read_index()
        .map_err(&failed)?
        .unwrap_or_else(|| Index::new(&env.name));
    let entry = index_entry(manifest, key, manifest_key, now);
    let recorded = entry.file.clone();
    // R2 deletes a copy by the rule set in the bucket, which backups.toml
    // may no longer say (a retention shortened since, a rule never set):
    // an entry is dropped only by that rule, read when one would go.
    let days = match index.would_drop(&entry, now, configured) {
        false => configured,
        true => target.expiry_in_bucket().unwrap_or(NO_EXPIRY),
    };
    if !index.record(entry, now, days) {
        crate::warn!(
            "this machine's clock ({}) is more than {} past uploads the offsite index of {} \
             records, with no upload between: they were not dropped from the index for the \
             lifecycle rule, as R2 counts a copy's age by its own clock (they are once uploads \
             have gone on for {} past that gap). Check this machine's clock",
            now.format("%Y-%m-%d %H:%M UTC"),
            d1_core::wording::count(days, "day"),
            env.name,
            d1_core::wording::count(days, "day"),
        );
    }
    let text = index.written(&recorded)?;
    fsutil::rewrite_no_follow(staged, text.as_bytes())?;
    target
        .put_checked(staged, &index_key(&env.name), Kept::Never)
        .map_err(failed)?;
    if !index.set_aside.is_empty() {
        crate::say!(
            "The index r2://{}/{} was written with what was set aside in it kept as it was \
             ({}: see the warnings), still never listed, fetched or taken as latest; an entry \
             of the file just uploaded is replaced by its new record.",
            target.bucket(),
            index_key(&env.name),
            index.set_aside_positions()
        );
    }
    Ok(())
}

/// Refuses, before anything is put, an upload whose keys (the backup's,
/// its manifest's) already hold another backup: two machines that back an
/// environment up in the same minute give their backups one name (each
/// claims names only in its own backup directory), and a PUT would replace
/// the other's offsite copy, whose local file may have gone with its
/// runner. What an earlier upload of this same backup left there (killed
/// after its PUT, or cut short: the start of this backup's bytes) is this
/// backup's, and goes on.
fn refuse_another_backup(target: &Target<'_>, file: &Path, keys: [&str; 2]) -> Result<()> {
    let manifest_path = manifest::manifest_path(file);
    let [key, manifest_key] = keys;
    for (key, ours, kept) in [
        (manifest_key, manifest_path.as_path(), Kept::SameBackup),
        (key, file, Kept::SameBytes),
    ] {
        // Data larger than ours is not ours. A manifest of the same backup
        // may be longer than ours (the copy an interrupted upload recorded
        // in it, a verification): bounded as any manifest is.
        let most = match kept {
            Kept::SameBackup => TEXT_LIMIT,
            _ => most_of(ours)?,
        };
        let there = match target.download(key, &file_name(ours), most) {
            Ok(None) => continue,
            Ok(Some(there)) => Some(there),
            Err(e) if e.is::<TooLarge>() => None,
            Err(e) => return Err(e),
        };
        let ours_there = |kept: Kept| match &there {
            Some(there) => kept.takes(ours, there.path()),
            None => Ok(false),
        };
        if matches!(kept, Kept::SameBackup) && ours_there(kept)? {
            // This backup's own manifest, which an upload puts after the
            // bytes it read back and checked: the bytes are ours too, and
            // are not downloaded again for nothing.
            return Ok(());
        }
        let ours_cut_short = match &there {
            Some(there) => matches!(kept, Kept::SameBytes) && starts(ours, there.path())?,
            None => false,
        };
        if !ours_cut_short && !ours_there(kept)? {
            crate::stop!(
                crate::exit::Exit::Refused,
                "refusing to upload {}: r2://{}/{key} already holds another backup of that name \
                 (another machine backed {} up in the same minute, or someone put it there), and \
                 the upload would replace it. Nothing was uploaded. Take a new backup, whose \
                 name differs, and upload that; or fetch the other one to compare \
                 (`cargo xtask offsite fetch {} --env {}`)",
                file.display(),
                target.bucket(),
                target.env.name,
                d1_core::wording::shell_word(&file_name(file)),
                target.env.name
            );
        }
    }
    Ok(())
}

/// The most bytes an object in the bucket that is `ours` (this backup's
/// data) can hold: its size.
fn most_of(ours: &Path) -> Result<u64> {
    Ok(std::fs::metadata(ours)
        .with_context(|| format!("cannot read {}", ours.display()))?
        .len())
}

/// Whether the file `part` holds the first bytes of `whole` (all of them
/// included).
fn starts(whole: &Path, part: &Path) -> Result<bool> {
    use std::io::Read as _;
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(std::io::BufReader::new)
            .with_context(|| format!("cannot read {}", p.display()))
    };
    let (mut whole, mut part) = (open(whole)?, open(part)?);
    let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = part.read(&mut b)?;
        if n == 0 {
            return Ok(true);
        }
        // `whole` ending first is no start of it.
        if whole.read_exact(&mut a[..n]).is_err() || a[..n] != b[..n] {
            return Ok(false);
        }
    }
}

/// The index's entry for an uploaded backup, from its manifest.
pub fn index_entry(
    manifest: &Manifest,
    key: String,
    manifest_key: String,
    uploaded_at: DateTime<Utc>,
) -> IndexEntry {
    IndexEntry {
        file: manifest.file.name.clone(),
        key,
        manifest_key,
        created_at: manifest.created_at,
        uploaded_at,
        bytes: manifest.file.bytes,
        sha256: manifest.file.sha256.clone(),
        format: manifest
            .sealed
            .as_ref()
            .map_or("sql", |s| s.format.as_str())
            .to_owned(),
        mode: manifest.mode.clone(),
        whole: manifest.mode == "full" && manifest.tables.is_empty(),
        verified: if manifest.is_verified_good() {
            "good"
        } else {
            "unverified"
        }
        .to_owned(),
        taken_after: manifest.taken_after.clone(),
    }
}

/// The manifest of the environment's newest offsite copy that passed
/// verification with its migrations checked, read from its bucket and
/// validated as any manifest is, with where it came from
/// (`r2://bucket/key`). `None` when the environment has no bucket, or
/// nothing verified was uploaded. A copy taken without `migrations/`
/// records `{}` while listing every applied migration: the newest, it was
/// the record on every fresh machine, and `migrate --check` there checked
/// names only; it is passed over for the next (MG2).
pub fn newest_manifest(
    sh: &Shell,
    project: &Project,
    env: &Environment,
) -> Result<Option<(Manifest, String)>> {
    if project.settings()?.env(&env.env_name).offsite.is_none() {
        return Ok(None);
    }
    let target = target(sh, project, env)?;
    let (found, read) = target.find_entry_reading("latest")?;
    let Some(entry) = found.and_then(Result::ok) else {
        return Ok(None);
    };
    let Some(manifest) = entry_manifest_of(&target, &entry)? else {
        return Ok(None);
    };
    let source = |entry: &IndexEntry| format!("r2://{}/{}", target.bucket(), entry.manifest_key);
    if manifest.is_migration_record() {
        return Ok(Some((manifest, source(&entry))));
    }
    let index = target.all_indexes(read)?;
    let older = { index.iter() }
        .flat_map(|i| i.verified_newest_first())
        .skip_while(|e| e.file != entry.file)
        .skip(1);
    for entry in older {
        if let Some(manifest) = entry_manifest_of(&target, entry)?
            && manifest.is_migration_record()
        {
            return Ok(Some((manifest, source(entry))));
        }
    }
    Ok(None)
}

/// The manifest of the copy `entry`, one of `target`'s environment's:
/// `None` when it is the other database's (the newest copy listed under
/// the environment's other name), an error when it describes another
/// file or environment.
fn entry_manifest_of(target: &Target<'_>, entry: &IndexEntry) -> Result<Option<Manifest>> {
    let env = target.env;
    let Some(manifest) = target.entry_manifest(entry)? else {
        return Ok(None);
    };
    let ours = env.records(&manifest);
    if !ours && !target.is_own_key(&entry.key) && manifest.file.name == entry.file {
        // The newest copy listed under the environment's other name is
        // the other database's: none of this one's is offsite.
        return Ok(None);
    }
    if manifest.file.name != entry.file || !ours {
        bail!(
            "r2://{}/{} describes {} of {}, not {} of {}",
            target.bucket(),
            entry.manifest_key,
            manifest.file.name,
            manifest.environment,
            entry.file,
            env.name
        );
    }
    Ok(Some(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy cut short is the start of the backup; another backup, or a
    /// longer file, is not.
    #[test]
    fn a_copy_cut_short_is_told_from_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let whole: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let ours = write("ours", &whole);
        assert!(starts(&ours, &write("cut", &whole[..70_000])).unwrap());
        assert!(starts(&ours, &write("same", &whole)).unwrap());
        assert!(starts(&ours, &write("empty", b"")).unwrap());
        let mut other = whole[..70_000].to_vec();
        other[69_999] ^= 1;
        assert!(!starts(&ours, &write("other", &other)).unwrap());
        let mut longer = whole.clone();
        longer.push(0);
        assert!(!starts(&ours, &write("longer", &longer)).unwrap());
    }
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 3, 0, 0).unwrap()
    }

    fn entry(file: &str, day: u32, good: bool, whole: bool) -> IndexEntry {
        IndexEntry {
            file: file.to_owned(),
            key: object_key("prod", at(day), file),
            manifest_key: String::new(),
            created_at: at(day),
            uploaded_at: at(day),
            bytes: 1,
            sha256: "a".repeat(64),
            format: d1_core::sealed::Format::of(Path::new(file)).label().into(),
            mode: "full".into(),
            whole,
            verified: if good { "good" } else { "unverified" }.into(),
            taken_after: Vec::new(),
        }
    }

    #[test]
    fn copies_the_policy_keeps_past_the_age_rule_are_told() {
        // Monthly 12 after a long gap: the copy of a year and more ago is
        // the newest of one of the last 12 months that have a backup.
        let old = IndexEntry {
            created_at: at(1) - Duration::days(400),
            uploaded_at: at(1) - Duration::days(400),
            ..entry("backup-prod-20250927-0300.sql", 1, true, true)
        };
        let new = entry("backup-prod-20261124-0300.sql", 24, true, true);
        let policy = Policy {
            keep_monthly: Some(12),
            ..Policy::default()
        };
        let days = policy_days(&policy);
        assert_eq!(days, 372);
        let told = kept_but_expiring(&[new.clone(), old.clone()], &policy, days, at(25));
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0].0, old.file);
        assert!(told[0].1.starts_with("monthly 2025-09"), "{told:?}");
        // The newest verified copy of a job that stopped uploading: kept
        // whatever its age, deleted by the rule once it is `days` old.
        let stopped = kept_but_expiring(
            std::slice::from_ref(&new),
            &policy,
            days,
            at(24) + Duration::days(380),
        );
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        assert!(
            stopped[0].1.contains("the newest verified backup"),
            "{stopped:?}"
        );
        // Nothing while every copy the policy keeps is younger than the rule.
        assert!(kept_but_expiring(&[new], &policy, days, at(25)).is_empty());
    }

    /// rvAJ: with `keep_daily = 7` and no `expire_after`, the rule is the
    /// policy's own span (7 days), and a job that uploads every day is the
    /// case it fits: each day's copy ages out of "daily 7" as R2 deletes
    /// it. Yet every copy the policy keeps today expires within the 30 day
    /// horizon, so `offsite lifecycle` warns that "an age rule cannot follow
    /// prune's policy" and names all seven, on every run of a healthy
    /// schedule: only a copy still kept when R2 deletes it is at risk.
    #[test]
    fn a_daily_schedule_under_its_own_age_rule_is_not_told() {
        let policy = Policy {
            keep_daily: Some(7),
            ..Policy::default()
        };
        let days = policy_days(&policy);
        let copies: Vec<IndexEntry> = (18..=24)
            .rev()
            .map(|d| entry(&format!("backup-prod-202611{d}-0300.sql"), d, true, true))
            .collect();
        let told = kept_but_expiring(&copies, &policy, days, at(24) + Duration::hours(1));
        assert!(
            told.len() <= 1,
            "a daily upload under expire_after = {days}d is told as deleted while kept: \
             {told:?}"
        );
    }

    #[test]
    fn an_index_naming_objects_outside_its_environment_is_refused() {
        let name = "backup-prod-20261124-0300.sql";
        let good = IndexEntry {
            manifest_key: object_key("prod", at(24), "backup-prod-20261124-0300.manifest.json"),
            ..entry(name, 24, true, true)
        };
        let index = |e: IndexEntry| Index {
            backups: vec![e],
            ..Index::new("prod")
        };
        index(good.clone())
            .check_with("prod", "qbtime_db_prod", &[])
            .unwrap();
        let staging = Index {
            environment: "staging".into(),
            ..index(good.clone())
        };
        assert!(
            staging
                .check_with("prod", "qbtime_db_prod", &[])
                .unwrap_err()
                .to_string()
                .contains("\"staging\"")
        );
        for hostile in [
            IndexEntry {
                key: "staging/2026/11/backup-staging-20261124-0300.sql".into(),
                ..good.clone()
            },
            IndexEntry {
                manifest_key: "staging/2026/11/x.manifest.json".into(),
                ..good.clone()
            },
            IndexEntry {
                key: "prod/2026/10/backup-prod-20261124-0300.sql".into(),
                ..good.clone()
            },
        ] {
            let err = index(hostile)
                .check_with("prod", "qbtime_db_prod", &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("where this tool puts prod's copies"), "{err}");
        }
        // A name with a path or a line break (it is printed, and looked up
        // in the backup directory), or a printed field with an escape code.
        for hostile in [
            IndexEntry {
                file: "/etc/passwd".into(),
                ..good.clone()
            },
            IndexEntry {
                file: "backup-prod-20261124-0300.sql\nforged row".into(),
                ..good.clone()
            },
            IndexEntry {
                verified: "good\u{1b}[2J".into(),
                ..good.clone()
            },
        ] {
            let err = index(hostile)
                .check_with("prod", "qbtime_db_prod", &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("control character"), "{err}");
        }
        // The words `offsite list` prints as columns, as this tool writes them.
        for (field, forged) in [
            (
                "format",
                IndexEntry {
                    format: "zstd+age".into(),
                    ..good.clone()
                },
            ),
            (
                "verified",
                IndexEntry {
                    verified: "good   ".into(),
                    ..good.clone()
                },
            ),
            (
                "mode",
                IndexEntry {
                    mode: "everything".into(),
                    ..good.clone()
                },
            ),
            (
                "whole",
                IndexEntry {
                    mode: "data-only".into(),
                    whole: true,
                    ..good.clone()
                },
            ),
        ] {
            let err = index(forged)
                .check_with("prod", "qbtime_db_prod", &[])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("`{field}`")) && !err.contains("good   "),
                "{err}"
            );
        }
        // `taken_after` as a manifest's: a file name with a sha256.
        let record = |file: &str, sha256: String| IndexEntry {
            taken_after: vec![TakenAfter {
                file: file.into(),
                sha256,
            }],
            ..good.clone()
        };
        index(record("backup-prod-20261124-0340.sql", "b".repeat(64)))
            .check_with("prod", "qbtime_db_prod", &[])
            .unwrap();
        for hostile in [
            record("../backup-prod-20261124-0340.sql", "b".repeat(64)),
            record("backup-prod-20261124-0340.sql\nforged", "b".repeat(64)),
            record("backup-prod-20261124-0340.sql", "B".into()),
        ] {
            let err = index(hostile)
                .check_with("prod", "qbtime_db_prod", &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("taken_after"), "{err}");
        }
    }

    #[test]
    fn keys_are_env_year_month_file_and_the_index_is_outside_the_prefix() {
        assert_eq!(
            object_key("prod", at(24), "backup-prod-20261124-0300.sql.zst.age"),
            "prod/2026/11/backup-prod-20261124-0300.sql.zst.age"
        );
        assert!(!index_key("prod").starts_with("prod/"));
    }

    #[test]
    fn expiry_is_expire_after_or_the_policys_longest_span() {
        let offsite = |expire: Option<&str>| Offsite {
            bucket: "b-1".into(),
            expire_after: expire.map(|e| d1_core::span::parse(e).unwrap()),
            lock_for: None,
        };
        let policy = Policy {
            keep_within: Some(d1_core::span::Span::days(30)),
            keep_daily: Some(30),
            keep_weekly: Some(12),
            keep_monthly: Some(12),
        };
        assert_eq!(expire_days("prod", &offsite(None), &policy).unwrap(), 372);
        assert_eq!(
            expire_days("prod", &offsite(Some("45d")), &policy).unwrap(),
            45
        );
        // A part day rounds up: nothing expires before its time.
        assert_eq!(
            expire_days("prod", &offsite(Some("25h")), &policy).unwrap(),
            2
        );
        let err = expire_days("prod", &offsite(None), &Policy::default()).unwrap_err();
        assert!(err.to_string().contains("expire_after"), "{err}");
        assert!(err.to_string().contains("[prod.offsite]"), "{err}");
    }

    #[test]
    fn the_index_replaces_by_file_drops_expired_and_finds_latest_good() {
        let mut index = Index::new("prod");
        index.record(entry("a.sql", 1, true, true), at(1), 30);
        index.record(entry("b.sql", 3, true, true), at(3), 30);
        index.record(entry("c.sql", 5, false, true), at(5), 30);
        index.record(entry("d.sql", 6, true, false), at(6), 30);
        let files: Vec<&str> = index.backups.iter().map(|e| e.file.as_str()).collect();
        assert_eq!(files, ["d.sql", "c.sql", "b.sql", "a.sql"]);
        // latest skips the bad one and the partial one.
        assert_eq!(index.find("latest").unwrap().file, "b.sql");
        // Whatever order the index lists them in; and one dated after now
        // (a clock that ran fast) is passed over.
        let mut other = index.clone();
        other.backups.reverse();
        assert_eq!(other.find("latest").unwrap().file, "b.sql");
        let mut ahead = entry("e.sql", 1, true, true);
        ahead.created_at = Utc::now() + Duration::minutes(40);
        other.backups.push(ahead);
        assert_eq!(other.find("latest").unwrap().file, "b.sql");
        assert_eq!(index.find("backups/a.sql").unwrap().file, "a.sql");
        assert!(
            index
                .find("zzz.sql")
                .unwrap_err()
                .to_string()
                .contains("offsite list")
        );
        // Uploading again replaces; three days later "a" (uploaded day 1) has expired.
        index.record(entry("b.sql", 3, true, true), at(4), 2);
        let files: Vec<&str> = index.backups.iter().map(|e| e.file.as_str()).collect();
        assert_eq!(files, ["d.sql", "c.sql", "b.sql"]);
    }

    /// fxEG: as a manifest's, an entry's created_at is the minute (UTC)
    /// its file's name says, and the name says one: an entry dated
    /// otherwise (with its objects where that date puts them) would be
    /// ordered (`latest`) by one time and listed by another, and refuses
    /// the index, as its other bad entries do.
    #[test]
    fn an_index_entry_dated_otherwise_than_its_name_is_refused() {
        let entry_of = |name: &str, created_at: DateTime<Utc>| {
            let manifest = file_name(&manifest::manifest_path(Path::new(name)));
            IndexEntry {
                created_at,
                key: object_key("prod", created_at, name),
                manifest_key: object_key("prod", created_at, &manifest),
                ..entry(name, 24, true, true)
            }
        };
        let index = |e: IndexEntry| Index {
            backups: vec![e],
            ..Index::new("prod")
        };
        let name = "backup-prod-20261124-0300-2.sql.zst.age";
        let late = at(24) + Duration::seconds(59);
        index(entry_of(name, late))
            .check_with("prod", "qbtime_db_prod", &[])
            .unwrap();
        for hostile in [
            entry_of(name, at(24) + Duration::minutes(40)),
            entry_of(name, at(25)),
            entry_of(name, at(24) - Duration::seconds(1)),
            entry_of("backup-prod-handmade.sql", at(24)),
        ] {
            let err = index(hostile)
                .check_with("prod", "qbtime_db_prod", &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("its name"), "{err}");
        }
    }

    /// EI: an index lists each file once (an upload replaces its entry).
    /// One that lists a file many times, each entry recording that file
    /// (`taken_after`) and dated a nanosecond apart, had every record
    /// count for every later entry: 20,000 entries (9 MB) took `latest`'s
    /// order 100 seconds and gigabytes, and an index of the 64 MiB read
    /// would never finish (offsite list, fetch, the scheduled upload). An
    /// index listing a file twice is refused, naming it.
    #[test]
    fn an_index_listing_a_file_twice_is_refused() {
        let name = "backup-prod-20261124-0300.sql";
        let mut first = entry(name, 24, true, true);
        first.manifest_key = object_key(
            "prod",
            first.created_at,
            "backup-prod-20261124-0300.manifest.json",
        );
        first.taken_after = vec![TakenAfter {
            file: name.to_owned(),
            sha256: first.sha256.clone(),
        }];
        let mut second = first.clone();
        second.created_at += Duration::nanoseconds(1);
        let index = Index {
            backups: vec![first.clone()],
            ..Index::new("prod")
        };
        index.check_with("prod", "qbtime_db_prod", &[]).unwrap();
        let twice = Index {
            backups: vec![first, second],
            ..Index::new("prod")
        };
        let err = twice
            .check_with("prod", "qbtime_db_prod", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains("twice"), "{err}");
    }

    /// A well-formed index keeps its good entries and sets the others
    /// aside, each with its place and why: a file listed twice with
    /// different records (another digest) loses both, one repeated word
    /// for word keeps its first, an entry whose fields do not read is set
    /// aside without quoting them, and a name that would not print as
    /// itself is not given. An index of another environment or a later
    /// format is still refused whole.
    #[test]
    fn an_index_sets_aside_its_bad_entries_and_keeps_the_others() {
        let of = |day: u32| {
            let name = format!("backup-prod-202611{day:02}-0300.sql");
            let mut e = entry(&name, day, true, true);
            e.manifest_key = object_key(
                "prod",
                at(day),
                &format!("backup-prod-202611{day:02}-0300.manifest.json"),
            );
            serde_json::to_value(e).unwrap()
        };
        let mut other_digest = of(2);
        other_digest["sha256"] = "b".repeat(64).into();
        let mut unreadable = of(4);
        unreadable["bytes"] = "many".into();
        let mut no_sha = of(5);
        no_sha.as_object_mut().unwrap().remove("sha256");
        let mut hostile = of(6);
        hostile["file"] = "backup-prod-20261106-0300.sql\n[pass]".into();
        let backups = vec![
            of(1),
            of(2),
            other_digest,
            of(3),
            of(3),
            unreadable,
            no_sha,
            hostile,
        ];
        let text = serde_json::json!({
            "format_version": 1, "environment": "prod", "backups": backups,
        })
        .to_string();
        let index = Index::read(&text, "r2://b/index/prod.json", ("prod", "db", &[])).unwrap();
        let kept: Vec<&str> = index.backups.iter().map(|e| e.file.as_str()).collect();
        assert_eq!(
            kept,
            [
                "backup-prod-20261101-0300.sql",
                "backup-prod-20261103-0300.sql"
            ]
        );
        let aside: Vec<(usize, Option<&str>)> = { index.set_aside.iter() }
            .map(|a| (a.position, a.file.as_deref()))
            .collect();
        assert_eq!(
            aside,
            [
                (2, Some("backup-prod-20261102-0300.sql")),
                (3, Some("backup-prod-20261102-0300.sql")),
                (5, Some("backup-prod-20261103-0300.sql")),
                (6, Some("backup-prod-20261104-0300.sql")),
                (7, Some("backup-prod-20261105-0300.sql")),
                (8, None),
            ]
        );
        let why: Vec<&str> = index.set_aside.iter().map(|a| a.reason.as_str()).collect();
        assert!(
            why[0].contains("different records") && why[1] == why[0],
            "{why:?}"
        );
        assert!(why[2].contains("repeats entry 4"), "{why:?}");
        assert!(!why[3].contains("many"), "{why:?}");
        assert!(why[4].contains("sha256"), "{why:?}");
        assert!(why[5].contains("control character"), "{why:?}");
        assert_eq!(
            index.set_aside_positions(),
            "entry 2, entry 3, entry 5, entry 6, entry 7, entry 8"
        );
        // An upload writes each back as it was read, but for a word for
        // word repeat and the one of the file it records anew.
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        let written: serde_json::Value =
            serde_json::from_str(&index.written("backup-prod-20261104-0300.sql").unwrap()).unwrap();
        let written = written["backups"].as_array().unwrap();
        assert_eq!(written.len(), 6, "{written:#?}");
        for i in [1, 2, 6, 7] {
            assert!(written.contains(&read["backups"][i]), "{i}: {written:#?}");
        }
        // A name is printed only when it reads as a backup's.
        assert!(shows_as_itself("backup-prod.db-20261101-0300.sql.zst"));
        for words in [
            "send-the-token-to-me.sql",
            "backup-pay now-20261101-0300.sql",
        ] {
            assert!(!shows_as_itself(words), "{words}");
        }
        // Never latest, and a fetch of one is refused naming it.
        assert_eq!(index.find("latest").unwrap().file, kept[1]);
        let err = index
            .find("backup-prod-20261102-0300.sql")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("set aside") && err.contains("entry 2"),
            "{err}"
        );
        // Refused whole: another environment's, a later format, not JSON.
        for whole in [
            text.replace("\"environment\":\"prod\"", "\"environment\":\"staging\""),
            text.replace("\"format_version\":1", "\"format_version\":2"),
            "[".to_owned(),
        ] {
            assert!(Index::read(&whole, "r2://b/index/prod.json", ("prod", "db", &[])).is_err());
        }
    }

    /// fxDY: the copy of a backup taken after a fast clock's (its
    /// manifest's `taken_after`, carried into the index) is offsite
    /// `latest` once the clock passes the fast one's date, and the index
    /// lists it first; a record whose sha256 is not that copy's changes
    /// nothing.
    #[test]
    fn offsite_latest_is_the_copy_taken_after_one_dated_ahead() {
        let mut fast = entry("backup-prod-20261105-0340.sql", 5, true, true);
        fast.created_at += Duration::minutes(40);
        let mut after = entry("backup-prod-20261105-0300.sql", 5, true, true);
        after.taken_after = vec![TakenAfter {
            file: fast.file.clone(),
            sha256: fast.sha256.clone(),
        }];
        let mut index = Index::new("prod");
        index.record(
            entry("backup-prod-20261101-0300.sql", 1, true, true),
            at(1),
            30,
        );
        index.record(fast, at(5), 30);
        index.record(after.clone(), at(5), 30);
        assert_eq!(index.find("latest").unwrap().file, after.file);
        assert_eq!(index.backups[0].file, after.file);
        after.taken_after[0].sha256 = "f".repeat(64);
        index.record(after, at(5), 30);
        assert_eq!(
            index.find("latest").unwrap().file,
            "backup-prod-20261105-0340.sql"
        );
    }

    /// atkDV: an upload by a clock a year ahead of every upload the index
    /// records drops none of them (R2 counts their age by its own clock),
    /// and says so; one within the rule's days of them drops as before.
    #[test]
    fn an_upload_a_year_after_every_other_drops_nothing_from_the_index() {
        let mut index = Index::new("prod");
        for day in 1..=10 {
            let file = format!("backup-prod-202611{day:02}-0300.sql");
            assert!(index.record(entry(&file, day, true, true), at(day), 372));
        }
        let fast = at(11) + Duration::days(400);
        let mut ahead = entry("backup-prod-20271215-0300.sql", 11, true, true);
        (ahead.created_at, ahead.uploaded_at) = (fast, fast);
        assert!(!index.record(ahead, fast, 372), "the gap is told");
        assert_eq!(index.backups.len(), 11, "{:?}", index.backups);
        assert!(index.find("backup-prod-20261110-0300.sql").is_ok());
        // The next upload within the rule's days of one the index has drops
        // the expired ones, as always.
        let mut index = Index::new("prod");
        index.record(entry("a.sql", 1, true, true), at(1), 2);
        index.record(entry("b.sql", 2, true, true), at(2), 2);
        assert!(index.record(entry("c.sql", 3, true, true), at(3), 2));
        let files: Vec<&str> = index.backups.iter().map(|e| e.file.as_str()).collect();
        assert_eq!(files, ["c.sql", "b.sql"]);
    }

    /// rvDX: the clock a year ahead uploads a second time: its first upload
    /// is no witness that the copies before the gap are gone. They are
    /// kept until uploads have gone on for the rule's days past the gap.
    #[test]
    fn a_second_upload_a_year_after_the_others_drops_nothing_either() {
        let mut index = Index::new("prod");
        for day in 1..=10 {
            let file = format!("backup-prod-202611{day:02}-0300.sql");
            assert!(index.record(entry(&file, day, true, true), at(day), 372));
        }
        let fast = at(11) + Duration::days(400);
        for (n, hours) in [0, 6, 30].into_iter().enumerate() {
            let t = fast + Duration::hours(hours);
            let mut ahead = entry(&format!("backup-prod-fast-{n}.sql"), 11, true, true);
            (ahead.created_at, ahead.uploaded_at) = (t, t);
            // Told once, by the first upload past the gap.
            assert_eq!(index.record(ahead, t, 372), n > 0, "upload {n}");
            assert_eq!(index.backups.len(), 11 + n, "{:?}", index.backups);
        }
        // Uploads that went on for the rule's days past the gap: the copies
        // before it are gone by any clock.
        let later = fast + Duration::days(372);
        let mut last = entry("backup-prod-later.sql", 11, true, true);
        (last.created_at, last.uploaded_at) = (later, later);
        index.record(last, later, 372);
        assert!(index.find("backup-prod-20261110-0300.sql").is_err());
    }

    /// An entry's name carries the index's environment, a name its
    /// database is known to have had, or any short name or one qualified
    /// by the index's database (every name an upload can give it, after
    /// `vars.APP_ENV` changed and a database was added or taken out); a
    /// name running on past `.sql`, qualified by another database, or not
    /// ASCII carries none.
    #[test]
    fn an_entrys_name_carries_the_indexs_environment() {
        let older = ["prod".to_owned()];
        assert!(names_env("live", "live", "db", &[]));
        assert!(names_env("prod", "live", "db", &older));
        assert!(
            names_env("prod", "live", "db", &[]),
            "a short name unknown here"
        );
        assert!(names_env("prod.db", "live.db", "db", &[]));
        assert!(names_env("prod", "live.db", "db", &[]), "a database added");
        assert!(
            names_env("prod.db", "live", "db", &[]),
            "a database taken out"
        );
        assert!(!names_env("prod-20261123-2230.sql", "prod", "db", &[]));
        assert!(!names_env("prod.other", "live.db", "db", &[]));
        assert!(!names_env("prod.other", "live", "db", &[]));
        assert!(!names_env("", "prod", "db", &[]));
        assert!(!names_env("pr\u{43e}d", "prod", "db", &[]), "a look-alike");
        assert!(!names_env("pr\u{43e}d.db", "live.db", "db", &[]));
        let mut index = Index::new("prod");
        let file = "backup-prod-20261101-0300.sql-20261101-0300.sql";
        let mut run_on = entry(file, 1, true, true);
        run_on.manifest_key = object_key("prod", at(1), "backup-prod-20261101-0300.manifest.json");
        index.backups.push(run_on);
        let err = index
            .check_with("prod", "qbtime_db_prod", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("backup-<env>-YYYYMMDD-HHMM"), "{err}");
    }

    #[test]
    fn rule_names_are_read_from_wranglers_listing() {
        let listing = "Listing lifecycle rules for bucket 'b'...\n\
                       \u{1b}[37mname:\u{1b}[39m     \u{1b}[90mqbtime-prod-expire\u{1b}[39m\n\
                       enabled:  Yes\nprefix:   prod/\naction:   Expire objects after 372 days\n\n\
                       name:     other\n";
        assert_eq!(rule_names(listing), ["qbtime-prod-expire", "other"]);
        assert!(rule_names("There are no lifecycle rules for bucket 'b'.").is_empty());
    }

    #[test]
    fn the_index_drops_copies_by_the_buckets_expiry_rule() {
        let listing = "\u{1b}[37mname:\u{1b}[39m     \u{1b}[90mqbtime-prod-expire\u{1b}[39m\n\
                       enabled:  Yes\nprefix:   prod/\naction:   Expire objects after 372 days\n\n\
                       name:     off\nenabled:  No\nprefix:   (all prefixes)\n\
                       action:   Expire objects after 1 days\n\n\
                       name:     staging\nenabled:  Yes\nprefix:   staging/\n\
                       action:   Expire objects after 7 days\n\n\
                       name:     ia\nenabled:  Yes\nprefix:   (all prefixes)\n\
                       action:   Transition to Infrequent Access after 30 days\n";
        assert_eq!(expiry_days(listing, "prod/"), Some(372));
        assert_eq!(expiry_days(listing, "staging/"), Some(7));
        assert_eq!(expiry_days(listing, "local/"), None);
        let half = "name: a\nenabled: Yes\nprefix: (all prefixes)\n\
                    action: Abort incomplete multipart uploads after 1 days, \
                    Expire objects after 30.5 days";
        assert_eq!(expiry_days(half, "prod/"), Some(31));
        assert_eq!(expiry_days("There are no lifecycle rules.", "prod/"), None);
        // An entry goes only when a rule would drop it.
        let mut index = Index::new("prod");
        for day in [1, 8, 15] {
            let file = format!("backup-prod-202611{day:02}-0000.sql");
            index.record(entry(&file, day, true, true), at(day), 30);
        }
        let next = entry("backup-prod-20261120-0000.sql", 20, true, true);
        assert!(!index.would_drop(&next, at(20), 30));
        assert!(index.would_drop(&next, at(20), 10));
        assert_eq!(index.backups.len(), 3);
    }

    fn policy() -> Policy {
        Policy {
            keep_within: Some(d1_core::span::Span::days(30)),
            keep_daily: Some(30),
            keep_weekly: Some(12),
            keep_monthly: Some(12),
        }
    }

    #[test]
    fn the_lock_defaults_to_the_policys_longest_span_and_never_outlasts_the_expiry() {
        let offsite = |expire: Option<&str>, lock: Option<&str>| Offsite {
            bucket: "b-1".into(),
            expire_after: expire.map(|e| d1_core::span::parse(e).unwrap()),
            lock_for: lock.map(|e| d1_core::span::parse(e).unwrap()),
        };
        assert_eq!(
            lock_days("prod", &offsite(None, None), &policy()).unwrap(),
            372
        );
        assert_eq!(
            lock_days("prod", &offsite(None, Some("90d")), &policy()).unwrap(),
            90
        );
        assert_eq!(
            lock_days("prod", &offsite(Some("90d"), Some("90d")), &policy()).unwrap(),
            90
        );
        // The lifecycle rule would delete what the lock holds: refused.
        let err = lock_days("prod", &offsite(Some("90d"), None), &policy()).unwrap_err();
        assert!(err.to_string().contains("372 days"), "{err}");
        assert!(err.to_string().contains("expire_after"), "{err}");
        // The table to edit is named as it is written, not as a placeholder.
        assert!(err.to_string().contains("[prod.offsite]"), "{err}");
        assert!(lock_days("prod", &offsite(None, Some("2y")), &policy()).is_err());
        assert!(lock_days("prod", &offsite(None, None), &Policy::default()).is_err());
    }

    #[test]
    fn our_lock_rules_are_told_from_others_by_name() {
        assert_eq!(lock_rule_name("prod", 372), "qbtime-prod-lock-372d");
        assert!(is_our_lock("prod", "qbtime-prod-lock-90d"));
        assert!(!is_our_lock("prod", "qbtime-prod-lock-ninety"));
        assert!(!is_our_lock("prod", "qbtime-staging-lock-90d"));
        assert!(!is_our_lock("prod", "legal-hold"));
    }

    /// A rule keeps the objects under its prefix; one whose prefix is a
    /// longer name that starts with the key reaches other objects, not it.
    #[test]
    fn a_lock_rule_holds_only_the_keys_under_its_prefix() {
        let rule = |prefix: &str, enabled: bool| LockRule {
            name: "r".into(),
            enabled,
            prefix: prefix.into(),
            retention: Retention::Indefinite,
        };
        let key = "prod/2026/12/backup-prod-20261203-2245.sql";
        assert!(rule("prod/", true).holds(key));
        assert!(rule("", true).holds(key));
        assert!(!rule("prod/", false).holds(key));
        assert!(!rule("staging/", true).holds(key));
        let longer = rule(&format!("{key}.manifest.json"), true);
        assert!(longer.covers(key) && !longer.holds(key));
    }

    /// What wrangler 4.86 prints (4.164 prints the same labels).
    const LOCKS: &str = "Listing lock rules for bucket 'b'...\n\
        \u{1b}[37mname:\u{1b}[39m       \u{1b}[90mqbtime-prod-lock-372d\u{1b}[39m\n\
        enabled:    Yes\nprefix:     prod/\ncondition:  after 372 days\n\n\
        name:       legal-hold\nenabled:    Yes\nprefix:     (all prefixes)\ncondition:  indefinitely\n\n\
        name:       old\nenabled:    No\nprefix:     prod/2025/\ncondition:  on 2027-01-01\n";

    #[test]
    fn lock_rules_are_read_from_wranglers_listing() {
        let rules = lock_rules(LOCKS);
        assert_eq!(
            rules,
            [
                LockRule {
                    name: "qbtime-prod-lock-372d".into(),
                    enabled: true,
                    prefix: "prod/".into(),
                    retention: Retention::Days(372),
                },
                LockRule {
                    name: "legal-hold".into(),
                    enabled: true,
                    prefix: String::new(),
                    retention: Retention::Indefinite,
                },
                LockRule {
                    name: "old".into(),
                    enabled: false,
                    prefix: "prod/2025/".into(),
                    retention: Retention::Until("2027-01-01".into()),
                },
            ]
        );
        assert!(lock_rules("There are no lock rules for bucket 'b'.").is_empty());
        // A condition this cannot read is taken as the longest lock.
        let odd = lock_rules("name: x\nenabled: Yes\nprefix: p/\ncondition: after a while\n");
        assert_eq!(odd[0].retention, Retention::Indefinite);
    }

    /// wrangler prints a lock of one day as `after 1 day` and a lifecycle
    /// rule with no action as `(none)` (`formatLockCondition`,
    /// `tableFromLifecycleRulesResponse` in 4.164).
    #[test]
    fn a_one_day_lock_and_a_rule_with_no_action_are_read_as_wrangler_prints_them() {
        let lock = "name:       day\nenabled:    Yes\nprefix:     prod/\ncondition:  after 1 day\n";
        assert_eq!(lock_rules(lock)[0].retention, Retention::Days(1));
        let lifecycle = "name:     ia\nenabled:  Yes\nprefix:   (all prefixes)\naction:   (none)\n";
        assert_eq!(rule_names(lifecycle), ["ia"]);
        assert_eq!(expiry_days(lifecycle, "prod/"), None);
    }

    #[test]
    fn a_prefix_is_held_only_by_an_enabled_rule_over_all_of_it() {
        let rules = lock_rules(LOCKS);
        assert_eq!(
            held_for(&rules, "prod/").unwrap(),
            "legal-hold: every object for ever"
        );
        assert_eq!(
            held_for(&rules[..1], "prod/").unwrap(),
            "qbtime-prod-lock-372d: objects under prod/ for 372 days after upload"
        );
        assert_eq!(held_for(&rules[..1], "staging/"), None);
        // A disabled rule, or one over part of the prefix, does not hold it.
        assert_eq!(held_for(&rules[2..], "prod/"), None);
    }

    #[test]
    fn a_lifecycle_rule_that_would_act_before_a_lock_allows_is_refused() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let lock = |prefix: &str, retention: Retention| LockRule {
            name: "l".into(),
            enabled: true,
            prefix: prefix.into(),
            retention,
        };
        let ok = |days, rules: &[LockRule]| {
            check_expiry_against_locks(days, rules, "prod/", today).is_ok()
        };
        assert!(ok(372, &[lock("prod/", Retention::Days(372))]));
        assert!(!ok(371, &[lock("prod/", Retention::Days(372))]));
        // Another environment's lock, and a disabled one, do not matter.
        assert!(ok(30, &[lock("staging/", Retention::Days(372))]));
        let mut off = lock("prod/", Retention::Indefinite);
        off.enabled = false;
        assert!(ok(30, &[off]));
        // A lock on the whole bucket, or on part of the prefix, does.
        assert!(!ok(30, &[lock("", Retention::Days(31))]));
        assert!(!ok(30, &[lock("prod/2026/", Retention::Days(31))]));
        assert!(!ok(10_000, &[lock("prod/", Retention::Indefinite)]));
        assert!(ok(
            31,
            &[lock("prod/", Retention::Until("2026-12-31".into()))]
        ));
        assert!(!ok(
            30,
            &[lock("prod/", Retention::Until("2026-12-31".into()))]
        ));
        let err =
            check_expiry_against_locks(30, &[lock("prod/", Retention::Days(372))], "prod/", today)
                .unwrap_err();
        assert!(err.to_string().contains("before the lock allows"), "{err}");
    }

    #[test]
    fn the_last_lock_of_each_environment_is_read_from_the_journal() {
        let line = |at: &str, bucket: &str, prefix: &str, rule: &str, days: i64| {
            format!(
                "{{\"at\":\"2026-11-0{at}T00:00:00Z\",\"environment\":\"prod\",\
                 \"bucket\":\"{bucket}\",\"prefix\":\"{prefix}\",\"rule\":\"{rule}\",\"days\":{days}}}\n"
            )
        };
        let journal = [
            line("1", "b", "prod/", "a", 90),
            "garbage\n".to_owned(),
            line("2", "b", "prod/", "b", 372),
            // Another bucket, and another prefix: not this bucket's lock.
            line("3", "old", "prod/", "c", 30),
            line("4", "b", "", "d", 7),
            // No lock the tool records: a span under a day, a time that is
            // no time.
            line("5", "b", "prod/", "e", -5),
            line("6", "b", "prod/", "f", 0),
            line("7", "b", "prod/", "g", 30).replace("2026-11-07T00:00:00Z", "yesterday"),
        ]
        .concat();
        let last = last_locks(&journal);
        let key = |bucket: &str| ("prod".to_owned(), bucket.to_owned());
        assert_eq!(
            last[&key("b")],
            ("b".into(), 372, "2026-11-02T00:00:00Z".into())
        );
        assert_eq!(last[&key("old")].0, "c");
        assert!(!last.contains_key(&("staging".to_owned(), "b".to_owned())));
    }
}
