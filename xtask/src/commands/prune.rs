//! `cargo xtask prune`: the retention policy of `backups.toml`, applied.
//!
//! The policy is restic's: a backup is kept if any rule keeps it
//! (`keep_within`, `keep_daily`, `keep_weekly`, `keep_monthly`). On top of
//! the rules, three guards: an environment's newest verified backup is never
//! deleted; a pre-migration or safety backup younger than the window is
//! never deleted; and an environment with no verified backup loses nothing.
//! Deciding is a pure function of the backups, the policy and the clock
//! ([`decide`]); deleting is the thin edge around it, under the backup lock.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;

use crate::commands::backup;
use crate::config::project::Project;
use crate::config::settings::SETTINGS_FILE;
use crate::edge::fsutil;
use crate::edge::inventory::{self, Entry};
use d1_core::manifest;
use d1_core::span::{self, Span};
use d1_core::wording::count;

/// How long protected backups are kept when `keep_within` is not set.
const DEFAULT_WINDOW: Span = Span::days(30);

/// One environment's retention rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default, deserialize_with = "span::deserialize_option")]
    pub keep_within: Option<Span>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
}

impl Policy {
    fn is_empty(&self) -> bool {
        self.keep_within.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
    }

    /// How long pre-migration and safety backups are protected.
    fn window(&self) -> Span {
        self.keep_within.unwrap_or(DEFAULT_WINDOW)
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
#[derive(Debug, Clone)]
pub struct Candidate {
    pub created_at: DateTime<Utc>,
    /// A full backup of the whole database.
    pub whole: bool,
    /// Passed verification.
    pub good: bool,
    /// Taken before a migration or a restore (its manifest's reason says so).
    pub protected: bool,
}

impl Candidate {
    pub fn of(entry: &Entry) -> Candidate {
        let reason = entry.manifest.reason.as_deref().unwrap_or("");
        Candidate {
            created_at: entry.manifest.created_at,
            whole: entry.is_whole(),
            good: entry.manifest.is_verified_good(),
            protected: reason.starts_with("pre-migration") || reason.starts_with("safety backup"),
        }
    }
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
                write!(f, "a pre-migration or safety backup younger than {span}")
            }
            Reason::NothingVerified => {
                f.write_str("the environment has no verified backup, so nothing is deleted")
            }
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
    // Newest first; ties broken by position, for a stable answer.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        candidates[b]
            .created_at
            .cmp(&candidates[a].created_at)
            .then(a.cmp(&b))
    });

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
    if let Some(within) = policy.keep_within {
        for (i, c) in candidates.iter().enumerate() {
            if within.holds(c.created_at, now) {
                keep[i].insert(Reason::Within(within.to_string()));
            }
        }
    }
    let window = policy.window();
    for (i, c) in candidates.iter().enumerate() {
        if c.protected && window.holds(c.created_at, now) {
            keep[i].insert(Reason::Protected(window.to_string()));
        }
    }
    // Each calendar bucket keeps its newest whole backup, a verified one if
    // it has one, for the last N buckets that have any.
    let buckets: [CalendarRule; 3] = [
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
    ];
    for (count, bucket_of, reason) in buckets {
        let Some(count) = count else { continue };
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
        for (bucket, i) in chosen {
            keep[i].insert(reason(bucket));
        }
    }
    keep
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

#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// Only this environment (default: every environment with backups).
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Override the policy: keep every backup younger than this span (restic's 1y6m2w3d12h: 30d, 6m, 12h).
    #[arg(long, value_name = "SPAN", value_parser = span::parse)]
    pub keep_within: Option<Span>,
    /// Override the policy: keep the newest backup of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Override the policy: keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Override the policy: keep the newest backup of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Print what would be kept and deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking (required when there is no terminal).
    #[arg(long)]
    pub yes: bool,
    /// Print each backup's verdict and what was deleted as one JSON document
    /// on stdout (fields in the README).
    #[arg(long)]
    pub json: bool,
}

pub fn run(project: &Project, args: &PruneArgs) -> Result<()> {
    let envs = project.environments()?;
    let settings = project.settings()?;
    // backups.toml's rules are per environment; backups are judged per
    // database (an environment with several databases has several groups).
    let rules: BTreeMap<String, Policy> = settings
        .envs
        .into_iter()
        .map(|(env, s)| (env, s.retention))
        .collect();
    let only: Option<Vec<String>> = args
        .env
        .as_deref()
        .map(|e| envs.databases(e))
        .transpose()?
        .map(|dbs| dbs.iter().map(|d| d.name.clone()).collect());
    let (entries, refused) = inventory::scan_all(&project.backup_dir);
    if !refused.is_empty() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to prune {}: {}. Nothing was deleted.",
            project.backup_dir.display(),
            refused.join("; ")
        );
    }
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| {
            only.as_ref()
                .is_none_or(|names| names.contains(&e.manifest.environment))
        })
        .collect();
    // The command line overrides the file, rule by rule, for this run.
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for e in &entries {
        let policy = policies
            .entry(e.manifest.environment.clone())
            .or_insert_with(|| {
                envs.env_name(&e.manifest.environment)
                    .ok()
                    .and_then(|env| rules.get(&env).cloned())
                    .unwrap_or_default()
            });
        if args.keep_within.is_some() {
            policy.keep_within = args.keep_within;
        }
        policy.keep_daily = args.keep_daily.or(policy.keep_daily);
        policy.keep_weekly = args.keep_weekly.or(policy.keep_weekly);
        policy.keep_monthly = args.keep_monthly.or(policy.keep_monthly);
    }
    let backups: Vec<(String, Candidate)> = entries
        .iter()
        .map(|e| (e.manifest.environment.clone(), Candidate::of(e)))
        .collect();
    let verdicts = decide_all(&policies, &backups, Utc::now());
    let mut doomed: Vec<&Entry> = Vec::new();
    let mut decisions = Vec::new();
    let envs_seen: BTreeSet<&String> = backups.iter().map(|(env, _)| env).collect();
    for env in envs_seen {
        match policies.get(env).filter(|p| !p.is_empty()) {
            Some(policy) => crate::say!("{env}: {policy}"),
            None => crate::say!(
                "{env}: no retention rule in {SETTINGS_FILE} or on the command line; keeping every backup"
            ),
        }
        for (entry, verdict) in entries.iter().zip(&verdicts) {
            if entry.manifest.environment != *env {
                continue;
            }
            match verdict {
                Some(reasons) if reasons.is_empty() => {
                    crate::say!("  delete  {}", entry.manifest.file.name);
                    doomed.push(entry);
                }
                Some(reasons) => {
                    let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                    crate::say!(
                        "  keep    {}  ({})",
                        entry.manifest.file.name,
                        why.join("; ")
                    );
                }
                None => crate::say!("  keep    {}  (no rule)", entry.manifest.file.name),
            }
            let reasons: Vec<String> = verdict.iter().flatten().map(|r| r.to_string()).collect();
            let keep = verdict.as_ref().is_none_or(|r| !r.is_empty());
            decisions.push(serde_json::json!({
                "environment": env,
                "file": entry.manifest.file.name,
                "action": if keep { "keep" } else { "delete" },
                "reasons": if verdict.is_none() { vec!["no rule".to_owned()] } else { reasons },
            }));
        }
    }
    let report = |deleted: usize| {
        if args.json {
            crate::out::json(&serde_json::json!({
                "command": "prune",
                "dry_run": args.dry_run,
                "backups": decisions,
                "deleted": deleted,
            }));
        }
    };
    if doomed.is_empty() {
        crate::say!("Nothing to delete.");
        report(0);
        return Ok(());
    }
    if args.dry_run {
        crate::say!(
            "Dry run: {} would be deleted; nothing was.",
            count(doomed.len(), "backup")
        );
        report(0);
        return Ok(());
    }
    confirm(args.yes, doomed.len())?;
    let _lock = backup::acquire_lock(project, "prune")?;
    // Only paths resolved inside the backup directory are deleted, each a
    // regular file there, not a link to somewhere else; all of them are
    // checked before the first is deleted.
    let dir = &project.backup_dir;
    let mut paths = Vec::new();
    for entry in &doomed {
        let file = fsutil::resolve_inside(dir, &entry.manifest.file.name)?;
        let manifest = manifest::manifest_path(&file);
        let manifest = fsutil::resolve_inside(dir, &fsutil::file_name(&manifest))?;
        paths.push((file, manifest));
    }
    for (file, manifest) in paths {
        // The file goes first: a manifest without its file is ignored, a
        // file without its manifest would look like someone else's.
        std::fs::remove_file(&file).with_context(|| format!("cannot delete {}", file.display()))?;
        std::fs::remove_file(&manifest)
            .with_context(|| format!("cannot delete {}", manifest.display()))?;
    }
    fsutil::sync_dir(&project.backup_dir);
    crate::say!(
        "Deleted {} and their manifests.",
        count(doomed.len(), "backup")
    );
    report(doomed.len());
    Ok(())
}

/// `--yes`, or `yes` typed at a terminal; never wrangler's kind of default.
fn confirm(yes: bool, n: usize) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to delete {} without confirmation: pass --yes (or --dry-run to see the plan). Nothing was deleted.",
            count(n, "backup")
        );
    }
    eprint!("Delete {}? Type yes to continue: ", count(n, "backup"));
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "yes" {
        crate::stop!(
            crate::exit::Exit::Refused,
            "not confirmed; nothing was deleted"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            protected: false,
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
            kept(&p, &[safety, old_safety, newest], "2026-11-24T12:00:00Z"),
            [false, false, true]
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
