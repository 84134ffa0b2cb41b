//! The retention policy of `backups.toml`, decided.
//!
//! The policy is restic's: a backup is kept if any rule keeps it
//! (`keep_within`, `keep_daily`, `keep_weekly`, `keep_monthly`). On top of
//! the rules, three guards: an environment's newest verified backup is never
//! deleted; a pre-migration or safety backup younger than the window (and
//! never less than a week) is never deleted; and an environment with no verified backup loses nothing.
//! Deciding is a pure function of the backups, the policy and the clock
//! ([`decide`]); the xtask's `prune` deletes, under the backup lock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;

use crate::manifest::{Manifest, TakenAfter};
use crate::order::{self, Dated};
use crate::span::{self, Span};

/// How long protected backups are kept when `keep_within` is not set.
const DEFAULT_WINDOW: Span = Span::days(30);
/// How long protected backups are kept whatever `keep_within` says: a
/// migration's undo point outlives a `--keep-within 0d` run right after it.
const PROTECTED_FLOOR: Span = Span::days(7);

/// One environment's retention rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default, deserialize_with = "span::deserialize_option")]
    pub keep_within: Option<Span>,
    #[serde(default, deserialize_with = "deserialize_count")]
    pub keep_daily: Option<u32>,
    #[serde(default, deserialize_with = "deserialize_count")]
    pub keep_weekly: Option<u32>,
    #[serde(default, deserialize_with = "deserialize_count")]
    pub keep_monthly: Option<u32>,
}

/// The most a `keep_daily`, `keep_weekly` or `keep_monthly` count may be,
/// as a span's numbers: far more than any schedule keeps (a monthly
/// backup for 8,000 years), and a bound that keeps every date a policy
/// reaches (an offsite rule's expiry) one a calendar can hold.
pub const MOST_KEPT: u32 = 100_000;

/// A `keep_*` count: a whole number from 0 to [`MOST_KEPT`].
pub fn parse_count(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number from 0 to {MOST_KEPT}"))?;
    check_count(n)
}

fn check_count(n: u32) -> Result<u32, String> {
    if n > MOST_KEPT {
        return Err(format!(
            "{n} is more than {MOST_KEPT}, the most backups a count keeps"
        ));
    }
    Ok(n)
}

fn deserialize_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = <u32 as Deserialize>::deserialize(d)?;
    check_count(n).map(Some).map_err(serde::de::Error::custom)
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.keep_within.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
    }

    /// How long pre-migration and safety backups are protected at `now`:
    /// `keep_within` (30 days if unset), never less than a week.
    fn window(&self, now: DateTime<Utc>) -> Span {
        let within = self.keep_within.unwrap_or(DEFAULT_WINDOW);
        if within.before(now) > PROTECTED_FLOOR.before(now) {
            PROTECTED_FLOOR
        } else {
            within
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(w) = self.keep_within {
            parts.push(format!("keep_within {w}"));
        }
        for (name, n) in [
            ("keep_daily", self.keep_daily),
            ("keep_weekly", self.keep_weekly),
            ("keep_monthly", self.keep_monthly),
        ] {
            if let Some(n) = n {
                parts.push(format!("{name} {n}"));
            }
        }
        f.write_str(&parts.join(", "))
    }
}

/// What prune knows of one backup.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub created_at: DateTime<Utc>,
    /// A full backup of the whole database.
    pub whole: bool,
    /// Passed verification.
    pub good: bool,
    /// Taken before a migration, a restore or another task (its
    /// manifest's reason says so: `pre-migration:`, `safety backup`,
    /// `before:`, or an older deploy's `pre-deploy migration:`).
    pub protected: bool,
    /// Its file's name and recorded sha256, and the backups dated after
    /// it that it was taken after: what places it among the others
    /// ([`order::newest_first`]).
    pub file: String,
    pub sha256: String,
    pub taken_after: Vec<TakenAfter>,
    /// Its row counts, per table, as its manifest records them: what
    /// tells a fall in rows from the backup before it ([`rows_fell_said`]).
    pub rows: BTreeMap<String, u64>,
}

impl Candidate {
    pub fn of(manifest: &Manifest) -> Candidate {
        Candidate {
            created_at: manifest.created_at,
            whole: manifest.is_whole(),
            good: manifest.is_verified_good(),
            protected: undo_point(manifest).is_some(),
            file: manifest.file.name.clone(),
            sha256: manifest.file.sha256.clone(),
            taken_after: manifest.taken_after.clone(),
            rows: manifest.rows.clone(),
        }
    }

    /// As the order sees it: every candidate [`decide`] is given is of
    /// one database.
    fn dated(&self) -> Dated<'_> {
        Dated {
            created_at: self.created_at,
            file: &self.file,
            sha256: &self.sha256,
            of: ("", ""),
            taken_after: &self.taken_after,
        }
    }
}

/// What a backup is the undo point of, as its manifest's reason says, in a
/// word: `pre-migration` (also an older deploy's `pre-deploy migration:`),
/// `safety` (a restore's), or `before task` (`with-backup`'s). `list` shows
/// it, and prune keeps such a backup at least seven days (`PROTECTED_FLOOR`).
pub fn undo_point(manifest: &Manifest) -> Option<&'static str> {
    let reason = manifest.reason.as_deref().unwrap_or("");
    [
        ("pre-migration", "pre-migration"),
        ("pre-deploy migration", "pre-migration"),
        ("safety backup", "safety"),
        ("before:", "before task"),
    ]
    .into_iter()
    .find(|(prefix, _)| reason.starts_with(prefix))
    .map(|(_, kind)| kind)
}

/// Why a backup is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Newest,
    Within(String),
    Daily(String),
    Weekly(String),
    Monthly(String),
    Protected(String),
    NothingVerified,
    /// The newest verified backup before the newest fall in rows (the
    /// backup named, its successor, holds far fewer): the last copy of the
    /// rows that fell.
    BeforeFall(String),
    /// Dated after the clock that decides: it cannot be placed among the
    /// others, so it is kept, and the others are judged without it.
    Ahead,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Newest => f.write_str("the newest verified backup"),
            Reason::Within(span) => write!(f, "within {span}"),
            Reason::Daily(day) => write!(f, "daily {day}"),
            Reason::Weekly(week) => write!(f, "weekly {week}"),
            Reason::Monthly(month) => write!(f, "monthly {month}"),
            Reason::Protected(span) => {
                write!(
                    f,
                    "an undo point (taken before a migration, a restore or a task) younger than {span}"
                )
            }
            Reason::NothingVerified => {
                f.write_str("the environment has no verified backup, so nothing is deleted")
            }
            Reason::BeforeFall(after) => write!(
                f,
                "the last verified backup before the rows fell: {after}, after it, holds far \
                 fewer rows"
            ),
            Reason::Ahead => f.write_str(
                "dated after this machine's clock (the clock that took it ran fast, or this \
                 one is behind): kept, and the others judged without it",
            ),
        }
    }
}

impl Reason {
    /// The reason as a plan's line says it, beside the backup's name: what
    /// differs from line to line. What a kind of reason means, the same on
    /// every line that has it, is its [`Reason::footnote`], said once.
    pub fn label(&self) -> String {
        match self {
            Reason::Protected(_) => "an undo point".to_owned(),
            Reason::NothingVerified => "no verified backup".to_owned(),
            Reason::Ahead => "dated ahead".to_owned(),
            other => other.to_string(),
        }
    }

    /// What the [`Reason::label`] stands for, for the plan to say once
    /// under the lines that carry it (`None`: the label says it all). The
    /// label starts it, so the two read together.
    pub fn footnote(&self) -> Option<String> {
        match self {
            Reason::Protected(span) => Some(format!(
                "an undo point: a backup taken before a migration, a restore or a task, kept \
                 while younger than {span}"
            )),
            Reason::NothingVerified => Some(
                "no verified backup: the environment has none, so nothing of it is deleted"
                    .to_owned(),
            ),
            Reason::Ahead => Some(
                "dated ahead: dated after this machine's clock (the clock that took it ran \
                 fast, or this one is behind): kept, and the others judged without it"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// A calendar rule: how many buckets, a backup's bucket, and the reason.
type CalendarRule = (
    Option<u32>,
    fn(DateTime<Utc>) -> String,
    fn(String) -> Reason,
);

/// For each candidate, the reasons it is kept; an empty list means delete.
pub fn decide(
    policy: &Policy,
    candidates: &[Candidate],
    now: DateTime<Utc>,
) -> Vec<BTreeSet<Reason>> {
    let mut keep: Vec<BTreeSet<Reason>> = vec![BTreeSet::new(); candidates.len()];
    // A backup dated after now was taken by a clock that ran fast (or this
    // one is behind): taken as the newest, it would have the backup taken
    // since, after the clock was set right, deleted as an older one.
    for (i, c) in candidates.iter().enumerate() {
        if c.created_at > now {
            keep[i].insert(Reason::Ahead);
        }
    }
    let order: Vec<usize> = newest_first(candidates)
        .into_iter()
        .filter(|&i| candidates[i].created_at <= now)
        .collect();
    match order
        .iter()
        .find(|&&i| candidates[i].whole && candidates[i].good)
    {
        Some(&newest) => {
            keep[newest].insert(Reason::Newest);
        }
        None => {
            for k in &mut keep {
                k.insert(Reason::NothingVerified);
            }
            return keep;
        }
    }
    keep_before_fall(candidates, &order, &mut keep);
    keep_recent(policy, candidates, now, &mut keep);
    // Each calendar bucket keeps its newest whole backup, a verified one if
    // it has one, for the last N buckets that have any.
    for (count, bucket_of, reason) in calendar_rules(policy) {
        let Some(count) = count else { continue };
        for (bucket, i) in newest_per_bucket(candidates, &order, count, bucket_of) {
            keep[i].insert(reason(bucket));
        }
    }
    keep
}

/// The candidates' positions, newest first ([`order::newest_first`]).
fn newest_first(candidates: &[Candidate]) -> Vec<usize> {
    let dated: Vec<Dated<'_>> = candidates.iter().map(Candidate::dated).collect();
    order::newest_first(&dated)
}

/// Keeps the verified whole backup before the newest fall in rows: when a
/// backup holds far fewer rows than the verified whole one before it
/// (backup's warning, [`rows_fell_said`]), that one is the last copy of
/// the rows that fell, which a calendar rule (the day's newest) or an age
/// would delete. Only the newest fall's: a fall on purpose (a cleanup)
/// keeps its backup until the next fall, not for ever.
fn keep_before_fall(candidates: &[Candidate], order: &[usize], keep: &mut [BTreeSet<Reason>]) {
    let verified: Vec<usize> = { order.iter().copied() }
        .filter(|&i| candidates[i].whole && candidates[i].good)
        .collect();
    let fall = verified.windows(2).find(|pair| {
        let (after, before) = (&candidates[pair[0]], &candidates[pair[1]]);
        rows_fell_said(&before.rows, &after.rows).is_some()
    });
    if let Some(pair) = fall {
        keep[pair[1]].insert(Reason::BeforeFall(candidates[pair[0]].file.clone()));
    }
}

/// The rows in all of a backup's row counts, as its summary counts them:
/// SQLite's own tables (`sqlite_sequence`) apart.
pub fn rows_in_all(rows: &BTreeMap<String, u64>) -> u64 {
    { rows.iter() }
        .filter(|(t, _)| crate::statement::rows_are_checked(t))
        .map(|(_, n)| n)
        .sum()
}

/// What fell between two backups' row counts, when a table that had rows
/// has none (or is gone), or the rows in all are down by more than half;
/// the rows in all said as they went, down or up (a table gone while
/// others grew). Counted as the backup's summary counts: SQLite's own
/// tables (`sqlite_sequence`) apart. The first
/// [`crate::wording::NAMES_SHOWN`] such tables are named, each name cut
/// as a list cuts it, and the others counted: 300 tables dropped made one
/// line of them all (rvCB).
pub fn rows_fell_said(
    before: &BTreeMap<String, u64>,
    now: &BTreeMap<String, u64>,
) -> Option<String> {
    let counted = |rows: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        { rows.iter() }
            .filter(|(t, _)| crate::statement::rows_are_checked(t))
            .map(|(t, n)| (t.clone(), *n))
            .collect()
    };
    let (before, now) = (&counted(before), &counted(now));
    use crate::wording::{NAMES_SHOWN, count};
    let emptied: Vec<String> = { before.iter() }
        .filter(|(_, n)| **n > 0)
        .filter_map(|(t, n)| {
            let now = match now.get(t) {
                None => "is gone",
                Some(0) => "has none",
                Some(_) => return None,
            };
            let name = crate::names::shown_cut(&crate::names::shown_name(t));
            Some(format!("{name} had {} and {now}", count(*n, "row")))
        })
        .collect();
    let (was, is) = (rows_in_all(before), rows_in_all(now));
    let halved = is.saturating_mul(2) < was;
    if emptied.is_empty() && !halved {
        return None;
    }
    let mut said: Vec<String> = emptied.iter().take(NAMES_SHOWN).cloned().collect();
    if let Some(more) = emptied.len().checked_sub(NAMES_SHOWN).filter(|m| *m > 0) {
        said.push(format!("and {} emptied or gone", count(more, "more table")));
    }
    // A table gone while others grew: the total went up, and says so.
    let went = match is.cmp(&was) {
        std::cmp::Ordering::Less => "down from",
        std::cmp::Ordering::Greater => "up from",
        std::cmp::Ordering::Equal => "the same as",
    };
    said.push(format!(
        "{} in all, {went} {}",
        count(is, "row"),
        count(was, "row")
    ));
    Some(said.join("; "))
}

/// The rules by age: `keep_within`, and the window of protected backups.
fn keep_recent(
    policy: &Policy,
    candidates: &[Candidate],
    now: DateTime<Utc>,
    keep: &mut [BTreeSet<Reason>],
) {
    if let Some(within) = policy.keep_within {
        for (i, c) in candidates.iter().enumerate() {
            if c.created_at <= now && within.holds(c.created_at, now) {
                keep[i].insert(Reason::Within(within.to_string()));
            }
        }
    }
    let window = policy.window(now);
    for (i, c) in candidates.iter().enumerate() {
        if c.protected && c.created_at <= now && window.holds(c.created_at, now) {
            keep[i].insert(Reason::Protected(window.to_string()));
        }
    }
}

/// The daily, weekly and monthly rules of the policy.
fn calendar_rules(policy: &Policy) -> [CalendarRule; 3] {
    [
        (
            policy.keep_daily,
            |t| t.format("%Y-%m-%d").to_string(),
            Reason::Daily,
        ),
        (
            policy.keep_weekly,
            |t| {
                let w = t.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            },
            Reason::Weekly,
        ),
        (
            policy.keep_monthly,
            |t| t.format("%Y-%m").to_string(),
            Reason::Monthly,
        ),
    ]
}

/// For the newest `count` buckets that hold a whole backup, the backup each
/// keeps: its newest whole one, a verified one if it has one.
fn newest_per_bucket(
    candidates: &[Candidate],
    order: &[usize],
    count: u32,
    bucket_of: fn(DateTime<Utc>) -> String,
) -> BTreeMap<String, usize> {
    let mut seen: Vec<String> = Vec::new();
    let mut chosen: BTreeMap<String, usize> = BTreeMap::new();
    for &i in order.iter().filter(|&&i| candidates[i].whole) {
        let bucket = bucket_of(candidates[i].created_at);
        if !seen.contains(&bucket) {
            if seen.len() == count as usize {
                break;
            }
            seen.push(bucket.clone());
        }
        let better = match chosen.get(&bucket) {
            None => true,
            // Newest first, so a later one is only better if it is
            // verified and the chosen one is not.
            Some(&j) => candidates[i].good && !candidates[j].good,
        };
        if better {
            chosen.insert(bucket, i);
        }
    }
    chosen
}

/// Why no rule of `policy` keeps `deleted`, a backup [`decide`] deletes,
/// in the rules' words: `older than keep_within 7d`, `past keep_daily 3`
/// (its day is not among the last 3 kept), `keep_daily keeps NAME for
/// 2026-11-24` (another of its day is kept), an undo point older than its
/// window. `judged` is every backup of its database with its reasons.
pub fn why_deleted<'a>(
    policy: &Policy,
    deleted: &Candidate,
    judged: impl Iterator<Item = (&'a Candidate, &'a BTreeSet<Reason>)> + Clone,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(within) = policy.keep_within {
        why.push(format!("older than keep_within {within}"));
    }
    if deleted.protected {
        why.push(format!("an undo point older than {}", policy.window(now)));
    }
    if !deleted.whole {
        why.push("partial: the calendar rules keep whole backups".to_owned());
        return why;
    }
    let names = ["keep_daily", "keep_weekly", "keep_monthly"];
    for (name, (count, bucket_of, reason)) in names.into_iter().zip(calendar_rules(policy)) {
        let Some(count) = count else { continue };
        let bucket = bucket_of(deleted.created_at);
        let kept = reason(bucket.clone());
        match { judged.clone() }.find(|(_, reasons)| reasons.contains(&kept)) {
            Some((other, _)) => why.push(format!("{name} keeps {} for {bucket}", other.file)),
            None => why.push(format!("past {name} {count}")),
        }
    }
    why
}

/// [`decide`] for backups of several environments, each under its own
/// policy. `None` for a backup whose environment has no rule: it is kept.
pub fn decide_all(
    policies: &BTreeMap<String, Policy>,
    backups: &[(String, Candidate)],
    now: DateTime<Utc>,
) -> Vec<Option<BTreeSet<Reason>>> {
    let mut out = vec![None; backups.len()];
    let envs: BTreeSet<&String> = backups.iter().map(|(env, _)| env).collect();
    for env in envs {
        let Some(policy) = policies.get(env).filter(|p| !p.is_empty()) else {
            continue;
        };
        let (index, candidates): (Vec<usize>, Vec<Candidate>) = backups
            .iter()
            .enumerate()
            .filter(|(_, (e, _))| e == env)
            .map(|(i, (_, c))| (i, c.clone()))
            .unzip();
        for (i, reasons) in index.into_iter().zip(decide(policy, &candidates, now)) {
            out[i] = Some(reasons);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan line gives an undo point its label; what an undo point is,
    /// and how long it is kept, is the footnote said once (PE 2).
    #[test]
    fn an_undo_points_line_says_its_label_and_the_footnote_what_it_is() {
        let protected = Reason::Protected("7d".to_owned());
        assert_eq!(protected.label(), "an undo point");
        let footnote = protected.footnote().unwrap();
        assert!(footnote.starts_with("an undo point: ") && footnote.ends_with("7d"));
        assert_eq!(Reason::Within("7d".into()).label(), "within 7d");
        assert_eq!(Reason::Within("7d".into()).footnote(), None);
        for reason in [Reason::NothingVerified, Reason::Ahead] {
            assert!(reason.footnote().unwrap().starts_with(&reason.label()));
        }
    }

    /// rvCB 4: 300 tables gone made one line naming every one ("t0 had 1
    /// rows and is gone; t1 had 1 rows …"). The first ten are named,
    /// the rest counted, and one row is "1 row".
    #[test]
    fn a_fall_in_rows_names_the_first_tables_and_counts_the_rest() {
        let before: BTreeMap<String, u64> = (0..300).map(|i| (format!("t{i:03}"), 1)).collect();
        let said = rows_fell_said(&before, &BTreeMap::new()).unwrap();
        assert!(said.starts_with("t000 had 1 row and is gone; "), "{said}");
        assert!(said.contains("t009 had 1 row and is gone; "), "{said}");
        assert!(!said.contains("t010"), "{said}");
        assert!(
            said.ends_with(
                "; and 290 more tables emptied or gone; 0 rows in all, down from 300 rows"
            ),
            "{said}"
        );
        let now = BTreeMap::from([("t000".to_owned(), 0), ("big".to_owned(), 1)]);
        let before = BTreeMap::from([("t000".to_owned(), 2)]);
        assert_eq!(
            rows_fell_said(&before, &now).unwrap(),
            "t000 had 2 rows and has none; 1 row in all, down from 2 rows"
        );
    }

    #[test]
    fn a_count_too_large_for_a_calendar_is_refused() {
        let read = |text: &str| toml::from_str::<Policy>(text).map_err(|e| e.to_string());
        assert_eq!(read("keep_monthly = 12").unwrap().keep_monthly, Some(12));
        assert_eq!(
            read("keep_daily = 100000").unwrap().keep_daily,
            Some(100_000)
        );
        assert_eq!(read("").unwrap(), Policy::default());
        let err = read("keep_monthly = 4294967295").unwrap_err();
        assert!(
            err.contains("keep_monthly") && err.contains("100000"),
            "{err}"
        );
        assert!(read("keep_weekly = 100001").is_err());
        assert!(read("keep_daily = -1").is_err());
        assert_eq!(parse_count("7"), Ok(7));
        assert!(parse_count("100001").unwrap_err().contains("100000"));
        assert!(parse_count("x").is_err());
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn full(when: &str) -> Candidate {
        Candidate {
            created_at: at(when),
            whole: true,
            good: true,
            ..Candidate::default()
        }
    }

    fn kept(policy: &Policy, cs: &[Candidate], now: &str) -> Vec<bool> {
        decide(policy, cs, at(now))
            .iter()
            .map(|r| !r.is_empty())
            .collect()
    }

    fn policy(
        within: Option<&str>,
        daily: Option<u32>,
        weekly: Option<u32>,
        monthly: Option<u32>,
    ) -> Policy {
        Policy {
            keep_within: within.map(|w| span::parse(w).unwrap()),
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
        }
    }

    #[test]
    fn keep_within_6m_keeps_six_calendar_months() {
        let cs = [
            full("2026-05-24T11:59:59Z"), // six months and a second ago: out
            full("2026-05-24T12:00:01Z"), // within six months
            full("2026-11-24T11:00:00Z"),
        ];
        let p = policy(Some("6m"), None, None, None);
        assert_eq!(kept(&p, &cs, "2026-11-24T12:00:00Z"), [false, true, true]);
        let reasons = decide(&p, &cs, at("2026-11-24T12:00:00Z"));
        assert!(reasons[1].contains(&Reason::Within("6m".into())));
        // 0d is a policy: nothing is kept for its age, the newest still is.
        let p = policy(Some("0d"), None, None, None);
        assert_eq!(kept(&p, &cs, "2026-11-24T12:00:00Z"), [false, false, true]);
    }

    /// A backup whose successor holds far fewer rows (backup's "holds far
    /// fewer rows" warning: a table emptied, or the rows halved) is the
    /// last copy of the rows that fell. keep_daily 1 kept only the day's
    /// newest, the backup after the fall, and deleted the one before it.
    #[test]
    fn the_last_backup_before_the_rows_fell_is_kept() {
        let with_rows = |when: &str, file: &str, users: u64| {
            let text = format!(
                r#"{{"format_version":1,"tool":{{"name":"t","version":"0"}},"created_at":"{when}",
                "environment":"prod","database":{{"name":"db","uuid":"u","wrangler_env":"production","location":"remote"}},
                "mode":"full","tables":[],"file":{{"name":"{file}","bytes":1,"sha256":"x"}},
                "rows":{{"users":{users},"sqlite_sequence":1}},"statements":0,"migrations":[],
                "encryption_key":null,"wrangler_version":null,"git_commit":null,
                "time_travel_bookmark":null,"virtual_tables":null,"reason":null}}"#
            );
            let manifest: Manifest = serde_json::from_str(&text).unwrap();
            Candidate {
                good: true,
                ..Candidate::of(&manifest)
            }
        };
        let cs = [
            with_rows("2026-11-22T11:00:00Z", "a.sql", 1000),
            with_rows("2026-11-24T09:00:00Z", "b.sql", 1000),
            with_rows("2026-11-24T10:00:00Z", "c.sql", 0),
            with_rows("2026-11-24T11:00:00Z", "d.sql", 0),
        ];
        let p = policy(Some("0d"), Some(1), None, None);
        let now = "2026-11-24T12:00:00Z";
        assert_eq!(kept(&p, &cs, now), [false, true, false, true]);
        let why: Vec<String> = decide(&p, &cs, at(now))[1]
            .iter()
            .map(Reason::to_string)
            .collect();
        assert!(
            why.len() == 1 && why[0].contains("c.sql"),
            "the plan names the backup after the fall: {why:?}"
        );
        // Rows that fell by less than half keep nothing more.
        let cs = [
            with_rows("2026-11-24T09:00:00Z", "b.sql", 1000),
            with_rows("2026-11-24T10:00:00Z", "c.sql", 600),
        ];
        assert_eq!(kept(&p, &cs, now), [false, true]);
    }

    /// atkAV: a backup dated after now (a clock that ran fast, since set
    /// right) is kept, and is not the newest: the backup taken after the
    /// clock was set right is, and its day's.
    #[test]
    fn a_backup_dated_after_now_is_kept_and_never_taken_for_the_newest() {
        let cs = [
            full("2026-11-24T11:00:00Z"),
            full("2026-11-24T12:40:00Z"), // 40 minutes ahead
            full("2026-11-24T11:59:00Z"), // taken now, after the fix
        ];
        let p = policy(Some("0d"), Some(1), None, None);
        let reasons = decide(&p, &cs, at("2026-11-24T12:00:00Z"));
        assert_eq!(reasons[1], BTreeSet::from([Reason::Ahead]));
        assert!(reasons[2].contains(&Reason::Newest), "{reasons:?}");
        assert!(
            reasons[2].contains(&Reason::Daily("2026-11-24".into())),
            "{reasons:?}"
        );
        assert!(reasons[0].is_empty(), "{reasons:?}");
    }

    /// fxDY: once the clock passes the date of the backup a fast clock
    /// took, the backup taken after it (which records it) is still the
    /// newest, and its day's; the fast clock's is judged as the older.
    #[test]
    fn a_backup_taken_after_one_dated_ahead_stays_the_newest_once_its_date_has_passed() {
        let mut fast = full("2026-11-24T12:40:00Z");
        (fast.file, fast.sha256) = ("backup-prod-20261124-1240.sql".into(), "a".repeat(64));
        let mut after = full("2026-11-24T12:00:00Z");
        after.file = "backup-prod-20261124-1200.sql".into();
        after.taken_after = vec![TakenAfter {
            file: fast.file.clone(),
            sha256: fast.sha256.clone(),
        }];
        let cs = [full("2026-11-24T11:00:00Z"), fast, after];
        let p = policy(Some("0d"), Some(1), None, None);
        for now in ["2026-11-24T12:20:00Z", "2026-11-24T12:45:00Z"] {
            let reasons = decide(&p, &cs, at(now));
            assert!(reasons[2].contains(&Reason::Newest), "{now}: {reasons:?}");
            assert!(
                reasons[2].contains(&Reason::Daily("2026-11-24".into())),
                "{now}: {reasons:?}"
            );
            assert!(reasons[0].is_empty(), "{now}: {reasons:?}");
        }
        // Dated ahead, it is kept; once its date has passed, it is older
        // than the newest and the day's, and goes.
        assert_eq!(
            decide(&p, &cs, at("2026-11-24T12:20:00Z"))[1],
            BTreeSet::from([Reason::Ahead])
        );
        assert!(decide(&p, &cs, at("2026-11-24T12:45:00Z"))[1].is_empty());
    }

    #[test]
    fn keep_within_is_a_strict_boundary_on_an_injected_clock() {
        let cs = [
            full("2026-10-25T12:00:00Z"), // exactly 30 days old: out
            full("2026-10-25T12:00:01Z"), // a second younger: in
            full("2026-11-24T11:00:00Z"),
        ];
        let p = policy(Some("30d"), None, None, None);
        assert_eq!(kept(&p, &cs, "2026-11-24T12:00:00Z"), [false, true, true]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_of_the_last_n_days_that_have_backups() {
        let cs = [
            full("2026-11-20T01:00:00Z"),
            full("2026-11-20T23:00:00Z"), // the 20th's newest
            full("2026-11-22T08:00:00Z"),
            full("2026-11-22T09:00:00Z"), // the 22nd's newest
            full("2026-11-24T10:00:00Z"), // today's
            full("2026-11-18T10:00:00Z"), // a fourth day: beyond keep_daily 3
        ];
        let p = policy(None, Some(3), None, None);
        assert_eq!(
            kept(&p, &cs, "2026-11-24T12:00:00Z"),
            [false, true, false, true, true, false]
        );
        let reasons = decide(&p, &cs, at("2026-11-24T12:00:00Z"));
        assert!(reasons[1].contains(&Reason::Daily("2026-11-20".into())));
        assert!(reasons[4].contains(&Reason::Newest));
    }

    #[test]
    fn weekly_and_monthly_use_iso_weeks_and_calendar_months() {
        let cs = [
            full("2026-08-15T00:00:00Z"),
            full("2026-09-30T00:00:00Z"),
            full("2026-10-01T00:00:00Z"),
            full("2026-11-01T00:00:00Z"), // a Sunday: ISO week 44
            full("2026-11-02T00:00:00Z"), // a Monday: ISO week 45
        ];
        let monthly = policy(None, None, None, Some(3));
        assert_eq!(
            kept(&monthly, &cs, "2026-11-24T00:00:00Z"),
            [false, true, true, false, true]
        );
        let weekly = policy(None, None, Some(2), None);
        assert_eq!(
            kept(&weekly, &cs, "2026-11-24T00:00:00Z"),
            [false, false, false, true, true]
        );
    }

    #[test]
    fn the_newest_verified_backup_is_never_deleted() {
        let mut old_good = full("2026-01-01T00:00:00Z");
        old_good.good = true;
        let mut recent_bad = full("2026-11-24T00:00:00Z");
        recent_bad.good = false;
        let cs = [old_good, recent_bad];
        // A policy that would keep nothing older than a day.
        let p = policy(Some("1d"), None, None, None);
        let verdicts = decide(&p, &cs, at("2026-11-24T12:00:00Z"));
        assert!(verdicts[0].contains(&Reason::Newest), "{verdicts:?}");
        assert!(verdicts[1].contains(&Reason::Within("1d".into())));
    }

    #[test]
    fn a_day_keeps_its_verified_backup_over_a_newer_bad_one() {
        let mut bad = full("2026-11-23T20:00:00Z");
        bad.good = false;
        let good = full("2026-11-23T08:00:00Z");
        let today = full("2026-11-24T08:00:00Z");
        let p = policy(None, Some(2), None, None);
        assert_eq!(
            kept(&p, &[bad, good, today], "2026-11-24T12:00:00Z"),
            [false, true, true]
        );
    }

    #[test]
    fn safety_and_pre_migration_backups_are_kept_for_the_window() {
        let mut safety = full("2026-11-10T00:00:00Z");
        safety.protected = true;
        let mut old_safety = full("2026-09-01T00:00:00Z");
        old_safety.protected = true;
        let newest = full("2026-11-24T00:00:00Z");
        // keep_daily 1 alone would delete both; the window is 30 days by default.
        let p = policy(None, Some(1), None, None);
        assert_eq!(
            kept(
                &p,
                &[safety.clone(), old_safety.clone(), newest.clone()],
                "2026-11-24T12:00:00Z"
            ),
            [true, false, true]
        );
        // With keep_within 7d the window is 7 days.
        let p = policy(Some("7d"), None, None, None);
        assert_eq!(
            kept(
                &p,
                &[safety.clone(), old_safety.clone(), newest.clone()],
                "2026-11-24T12:00:00Z"
            ),
            [false, false, true]
        );
        // A shorter keep_within never protects them for less than a week: a
        // pre-migration backup of an hour ago outlives `--keep-within 0d`.
        let mut fresh = full("2026-11-24T11:00:00Z");
        fresh.protected = true;
        let newest = full("2026-11-24T11:30:00Z");
        for within in ["0d", "12h", "2d"] {
            let p = policy(Some(within), None, None, None);
            assert_eq!(
                kept(
                    &p,
                    &[fresh.clone(), safety.clone(), newest.clone()],
                    "2026-11-24T12:00:00Z"
                ),
                [true, false, true],
                "{within}"
            );
        }
        // A week and a day later, the floor no longer holds it.
        let p = policy(Some("0d"), None, None, None);
        assert_eq!(
            kept(&p, &[fresh, newest], "2026-12-02T12:00:00Z"),
            [false, true]
        );
    }

    #[test]
    fn partial_backups_are_kept_only_by_time_and_never_count_as_a_days_backup() {
        let mut schema = full("2026-11-24T09:00:00Z");
        schema.whole = false;
        let whole = full("2026-11-24T08:00:00Z");
        let p = policy(None, Some(1), None, None);
        assert_eq!(
            kept(&p, &[schema, whole], "2026-11-24T12:00:00Z"),
            [false, true]
        );
    }

    #[test]
    fn nothing_is_deleted_from_an_environment_without_a_verified_backup() {
        let mut a = full("2026-01-01T00:00:00Z");
        a.good = false;
        let mut b = full("2026-02-01T00:00:00Z");
        b.good = false;
        let p = policy(Some("1d"), None, None, None);
        let verdicts = decide(&p, &[a, b], at("2026-11-24T00:00:00Z"));
        assert!(
            verdicts
                .iter()
                .all(|r| r.contains(&Reason::NothingVerified))
        );
    }

    #[test]
    fn each_environment_is_judged_by_its_own_policy_and_its_own_newest() {
        let policies = BTreeMap::from([
            ("prod".to_owned(), policy(Some("30d"), None, None, None)),
            ("staging".to_owned(), policy(Some("1d"), None, None, None)),
        ]);
        let backups = vec![
            ("prod".to_owned(), full("2026-11-01T00:00:00Z")),
            ("staging".to_owned(), full("2026-11-01T00:00:00Z")),
            ("staging".to_owned(), full("2026-11-20T00:00:00Z")),
            ("local".to_owned(), full("2020-01-01T00:00:00Z")),
        ];
        let verdicts = decide_all(&policies, &backups, at("2026-11-24T00:00:00Z"));
        let kept: Vec<Option<bool>> = verdicts
            .iter()
            .map(|v| v.as_ref().map(|r| !r.is_empty()))
            .collect();
        // prod's is within 30d; staging's older one is outside 1d and not its
        // newest; staging's newest is kept as the newest; local has no rule.
        assert_eq!(kept, [Some(true), Some(false), Some(true), None]);
        // The staging backup that prod's window would keep is not kept by it.
        assert!(
            !verdicts[1]
                .as_ref()
                .unwrap()
                .contains(&Reason::Within("30d".into()))
        );
    }
}
