//! `cargo xtask prune`: the retention policy of `backups.toml`, applied.
//!
//! What to keep is decided by the core (`d1_core::retention`, restic's
//! policy with three guards); deleting is this thin edge around it, under
//! the backup lock, which is taken before the plan is read and held while
//! the question is asked (a dry run takes none, nor a run with no `--yes`
//! and no terminal, which is refused before it deletes anything).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::config::environment::{Environment, Environments};
use crate::config::project::Project;
use crate::config::settings::SETTINGS_FILE;
use crate::edge::fsutil;
use crate::edge::fsutil::OnPath as _;
use crate::edge::inventory::{self, Entry};
use crate::edge::lock::{BackupLock, Placing, Pruning};
use crate::edge::signals;
use d1_core::manifest;
use d1_core::retention::{self, Candidate, Policy, decide_all};
use d1_core::span::{self, Span};
use d1_core::wording::{count, shell_word};

#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// Only this environment (default: every environment with backups).
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Override the policy: keep every backup younger than this span (restic's 1y6m2w3d12h: 30d, 6m, 12h).
    #[arg(long, value_name = "SPAN", value_parser = span::parse)]
    pub keep_within: Option<Span>,
    /// Override the policy: keep the newest backup of each of the last N days that have one.
    #[arg(long, value_name = "N", value_parser = d1_core::retention::parse_count)]
    pub keep_daily: Option<u32>,
    /// Override the policy: keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N", value_parser = d1_core::retention::parse_count)]
    pub keep_weekly: Option<u32>,
    /// Override the policy: keep the newest backup of each of the last N months that have one.
    #[arg(long, value_name = "N", value_parser = d1_core::retention::parse_count)]
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
    /// Also prune the backups recorded with this database id under an
    /// environment's names: of the database it had before it was created
    /// again under the same name (left alone otherwise), judged apart.
    #[arg(long, value_name = "ID")]
    pub previous_database_id: Option<String>,
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
    let chosen = envs.chosen(args.env.as_deref())?;
    let only = chosen.as_deref();
    // A killed rehearsal's copy of prod goes, a dry run's too (no lock).
    crate::steps::rehearsals::remove_killed(&project.backup_dir);
    // Held from the plan's reading to the last deletion, the question
    // asked under it: nothing runs between the plan shown and the deletion.
    // None for a dry run, nor a run with no `--yes` and no terminal, which
    // [`confirm`] refuses (exit 3) if it would delete, whoever holds it.
    let deletes = !args.dry_run && (args.yes || std::io::stdin().is_terminal());
    let lock =
        { deletes.then(|| crate::steps::lock::acquire_lock(project, "prune")) }.transpose()?;
    let previous = args.previous_database_id.as_deref();
    let entries = backups(project, &envs, (only, previous), true)?;
    let policies = policies(&rules, &entries, args);
    let Judged {
        doomed,
        decisions,
        said,
        counts,
    } = judge(&policies, &entries);
    // A quiet dry run prints the counts alone (a year of backups is a
    // thousand lines); a quiet real run nothing (the scheduled job's).
    let counts_only = args.dry_run && crate::out::level() == crate::out::Level::Quiet;
    print_judged(&said, &counts, counts_only, args.json);
    let report = |deleted: usize, bytes_freed: u64| {
        if args.json {
            crate::out::json(&serde_json::json!({
                "command": "prune",
                "dry_run": args.dry_run,
                "backups": decisions,
                "deleted": deleted,
                "bytes_freed": bytes_freed,
            }));
        }
    };
    if doomed.is_empty() {
        if !counts_only {
            crate::say!("Nothing to delete.");
        }
        report(0, 0);
        return Ok(());
    }
    if args.dry_run {
        report(0, say_dry_run(&doomed, counts_only));
        return Ok(());
    }
    confirm(args.yes, doomed.len())?;
    // Judged again once confirmed: what takes no backup lock (a verify
    // recording its verdict, a file copied in or damaged by hand) may
    // have changed the plan while the question was open.
    let now = backups(project, &envs, (only, previous), false)?;
    let again = judge(&self::policies(&rules, &now, args), &now);
    if names(&again.doomed) != names(&doomed) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "the backups in {} changed while prune waited for its confirmation (a verify's \
             verdict, or a file copied in or changed by hand), and with them what the policy \
             deletes. Nothing was deleted; run prune again to see the new plan.",
            project.backup_dir.display()
        );
    }
    let (deleted, freed) = delete(&project.backup_dir, &doomed, lock.as_ref())?;
    crate::say!(
        "Deleted {} and their manifests, freeing {}.",
        count(deleted, "backup"),
        d1_core::wording::size(freed)
    );
    report(deleted, freed);
    Ok(())
}

/// Ends a dry run: how many backups it would delete and the bytes that
/// frees (unless `counts_only`), which it returns.
fn say_dry_run(doomed: &[&Entry], counts_only: bool) -> u64 {
    let freed: u64 = doomed.iter().map(|e| e.bytes_on_disk).sum();
    if !counts_only {
        crate::say!(
            "Dry run: {} would be deleted, freeing {}; nothing was.",
            count(doomed.len(), "backup"),
            d1_core::wording::size(freed)
        );
    }
    freed
}

/// Each backup's verdict (its warnings even when quiet), then what each
/// environment keeps and deletes; with `counts_only`, the counts alone,
/// as data.
fn print_judged(said: &[(bool, String)], counts: &str, counts_only: bool, json: bool) {
    for (warning, line) in said {
        match warning {
            true => crate::warn!("{line}"),
            false if counts_only => {}
            false => crate::say!("{line}"),
        }
    }
    // After a line per backup, what each environment keeps and deletes.
    if !counts.is_empty() && !json {
        match counts_only {
            true => crate::data!("{counts}"),
            false => crate::say!("{counts}"),
        }
    }
}

/// The file names of the backups to delete, to compare two judgements.
fn names(doomed: &[&Entry]) -> Vec<String> {
    doomed
        .iter()
        .map(|e| e.manifest.file.name.clone())
        .collect()
}

/// A backup, the database it is judged under
/// ([`Environments::database_of`]), and whose rules: of the environment
/// whose backup it is ([`Environments::whose`]), as `latest:ENV` and
/// `status` count it.
struct Judgeable {
    entry: Entry,
    database: String,
    /// The short name of the environment whose `backups.toml` rules judge it.
    rules_of: String,
    /// For a misfiled backup ([`inventory::misfiled`]), the environment
    /// name it is recorded under, which its plan line names.
    recorded_under: Option<String>,
}

/// The backups to judge: of the databases this configuration defines
/// (the `only` ones if given), never another's: a backup directory shared
/// by several projects or checkouts (`QBTIME_BACKUP_DIR` in a shell
/// profile) holds backups this configuration has no rules for, and those
/// are left alone, saying so when `say_left_alone` (as it says half a
/// backup, [`inventory::tell_loose_ends`]); so are those recorded
/// under a database's names with another id than it has
/// ([`of_another_id`]), unless that id is `previous`. Any file in the
/// backup directory that the inventory refuses stops the prune (exit 3).
fn backups(
    project: &Project,
    envs: &Environments,
    (only, previous): (Option<&[&Environment]>, Option<&str>),
    say_left_alone: bool,
) -> Result<Vec<Judgeable>> {
    let (entries, refused) = inventory::scan_all(&project.backup_dir)?;
    if !refused.is_empty() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to prune {}: {}. Nothing was deleted.",
            project.backup_dir.display(),
            refused.join("; ")
        );
    }
    // A rehearsal's backup copied among the real ones is a copy of its
    // loopback's databases, which restore refuses outside it: never what
    // keeps a database's newest verified backup, nor deleted unasked.
    let (entries, rehearsals): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| crate::steps::rehearsals::of_entry(e).is_none());
    // Half a backup is judged by no policy: named, with its fix, and left.
    if say_left_alone {
        crate::steps::lock::tell_loose_ends(&project.backup_dir);
    }
    if say_left_alone && !rehearsals.is_empty() {
        let files: Vec<&str> = { rehearsals.iter() }
            .map(|e| e.manifest.file.name.as_str())
            .collect();
        crate::say!(
            "left alone: {} taken inside a rehearsal ({}), copies of its loopback's databases \
             that restore refuses outside it: no backup of any environment, counted toward \
             nothing kept. Delete each and its manifest by hand once it is no longer needed",
            count(rehearsals.len(), "backup"),
            named(&files)
        );
    }
    if say_left_alone {
        say_misfiled(envs, only, &entries);
    }
    let (ours, theirs): (Vec<Entry>, Vec<Entry>) =
        { entries.into_iter() }.partition(|e| envs.whose(&e.manifest).is_some());
    if say_left_alone && only.is_none() && !theirs.is_empty() {
        let databases: BTreeSet<String> = theirs
            .iter()
            .map(|e| {
                envs.database_of(
                    &e.manifest.environment,
                    &e.manifest.database.name,
                    &e.manifest.database.uuid,
                )
            })
            .collect();
        crate::say!(
            "left alone: {} of {}, not defined by this configuration (another project's or \
             checkout's, sharing {}, or a database taken out of the configuration): prune them \
             with the configuration that defines them, or delete a backup and its manifest by hand",
            count(theirs.len(), "backup"),
            databases.into_iter().collect::<Vec<_>>().join(", "),
            project.backup_dir.display()
        );
    }
    let ours = { ours.into_iter() }
        .filter(|e| only.is_none_or(|dbs| dbs.iter().any(|d| d.records(&e.manifest))));
    let (ours, others): (Vec<Entry>, Vec<Entry>) = ours.partition(|e| {
        of_another_id(envs, &e.manifest)
            .is_none_or(|(_, id)| previous.is_some_and(|p| p.eq_ignore_ascii_case(id)))
    });
    if say_left_alone {
        say_other_ids(envs, &others, &project.backup_dir);
    }
    if let Some(id) = previous {
        previous_does_something(envs, &ours, id)?;
    }
    Ok(ours.into_iter().map(|e| judgeable(envs, e)).collect())
}

/// `entry` as prune judges it: in its database's group ([`group_of`]),
/// under the rules of the environment whose backup it is
/// ([`Environments::whose`]), a misfiled one marked with the name it is
/// recorded under.
fn judgeable(envs: &Environments, entry: Entry) -> Judgeable {
    let m = &entry.manifest;
    Judgeable {
        database: group_of(envs, m),
        rules_of: { envs.whose(m) }.map_or_else(String::new, |e| e.env_name.clone()),
        recorded_under: inventory::misfiled(envs, m)
            .map(|_| crate::config::environment::short_name(&m.environment).to_owned()),
        entry,
    }
}

/// Warns of the misfiled backups ([`inventory::misfiled`]) among
/// `entries` whose database an environment has, those of the `only`
/// databases (recorded under one's environment name, or naming one's
/// database) when given, as `list` and `status` do. Each is judged as
/// that environment's backup, under its rules, as `latest:ENV` takes it
/// ([`Environments::whose`]); its plan line says it is misfiled. One whose
/// database no environment has is another database's, left alone and
/// said as such with the prune that deletes them.
fn say_misfiled(envs: &Environments, only: Option<&[&Environment]>, entries: &[Entry]) {
    let relevant: Vec<Entry> = { entries.iter() }
        .filter(|e| envs.whose(&e.manifest).is_some())
        .filter(|e| {
            only.is_none_or(|dbs| {
                let short = crate::config::environment::short_name(&e.manifest.environment);
                dbs.iter()
                    .any(|d| d.env_name == short || d.records(&e.manifest))
            })
        })
        .cloned()
        .collect();
    inventory::say_misfiled(envs, None, &relevant);
}

/// The configured database whose names `m` records
/// ([`Environment::records`]) and the id it records, when that is another
/// than the database's `database_id`: another checkout's or account's
/// database of that name sharing the backup directory, or the one the
/// environment had before it was created again under the same name. A
/// manifest that records no id is the database's, as before.
fn of_another_id<'a>(
    envs: &'a Environments,
    m: &'a manifest::Manifest,
) -> Option<(&'a Environment, &'a str)> {
    let id = m.database.uuid.as_str();
    let env = envs.whose(m)?;
    env.another_id(id).then_some((env, id))
}

/// The group a backup is judged in: its database's
/// ([`Environments::database_of`]), or for one of the database it had
/// before (`--previous-database-id`), a group of its own, so that its
/// newest verified backup is kept as any database's is.
fn group_of(envs: &Environments, m: &manifest::Manifest) -> String {
    match of_another_id(envs, m) {
        Some((env, id)) => format!("{} (previous database {})", env.name, shell_word(id)),
        None => envs.database_of(&m.environment, &m.database.name, &m.database.uuid),
    }
}

/// Says, per database and id, which backups recorded under a configured
/// database's names with another id were left alone, and the way to prune
/// them.
fn say_other_ids(envs: &Environments, others: &[Entry], dir: &Path) {
    let mut by_id: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for e in others {
        if let Some((env, id)) = of_another_id(envs, &e.manifest) {
            by_id
                .entry((env.name.clone(), id.to_owned()))
                .or_default()
                .push(&e.manifest.file.name);
        }
    }
    for ((name, id), files) in by_id {
        let Some(env) = envs.iter().find(|e| e.name == name) else {
            continue;
        };
        crate::say!(
            "left alone: {} of {name} ({}) recorded with database id {:?} ({}), not the id the \
             configuration gives it ({}): another checkout's or account's database of that name \
             sharing {}, or the one {name} had before it was created again under this name. If \
             it is that one, prune them with `cargo xtask prune --env {} \
             --previous-database-id {}`; otherwise with the configuration that defines them",
            count(files.len(), "backup"),
            env.database_name,
            id,
            named(&files),
            env.database_id,
            dir.display(),
            shell_word(&name),
            shell_word(&id)
        );
    }
}

/// Up to three file names, and how many more: `files` in the order given,
/// newest first as the inventory lists backups ([`inventory::scan_all`]),
/// which partitioning and grouping keep.
fn named(files: &[&str]) -> String {
    match files.len() {
        0..=3 => files.join(", "),
        n => format!("{}, and {} more", files[..3].join(", "), n - 3),
    }
}

/// `--previous-database-id` refused (exit 2) where it would do nothing:
/// an id this configuration gives a database whose backups are the only
/// ones recording it, or one no backup to prune records. The id another
/// environment has (staging's) recorded under local's names (another
/// checkout's local database, its id copied from staging) is another id
/// to local: those backups are left alone and pruned with it, as the
/// left-alone message advises.
fn previous_does_something(envs: &Environments, ours: &[Entry], id: &str) -> Result<()> {
    let of_another = { ours.iter() }.any(|e| {
        of_another_id(envs, &e.manifest).is_some_and(|(_, other)| other.eq_ignore_ascii_case(id))
    });
    let configured = { envs.iter() }.find(|e| e.database_id.eq_ignore_ascii_case(id));
    if let Some(env) = configured.filter(|_| !of_another) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--previous-database-id {} is the database_id the configuration gives {} ({}): \
             its backups are pruned without it. Nothing was deleted.",
            d1_core::names::shown(id),
            env.name,
            env.database_name
        );
    }
    let recorded = ours
        .iter()
        .any(|e| e.manifest.database.uuid.eq_ignore_ascii_case(id));
    if !recorded {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--previous-database-id {} would do nothing here: no backup of these environments' \
             databases records that id. Nothing was deleted.",
            d1_core::names::shown(id)
        );
    }
    Ok(())
}

/// Each database's policy: its environment's rules in the file, which the
/// command line overrides, rule by rule, for this run.
fn policies(
    rules: &BTreeMap<String, Policy>,
    entries: &[Judgeable],
    args: &PruneArgs,
) -> BTreeMap<String, Policy> {
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for e in entries {
        // Every backup of a group is of one environment (`database_of`
        // names the group after it), so the first one seen names its
        // rules: that environment's, not those of the name a misfiled one
        // is recorded under.
        let policy = { policies.entry(e.database.clone()) }
            .or_insert_with(|| rules.get(&e.rules_of).cloned().unwrap_or_default());
        if args.keep_within.is_some() {
            policy.keep_within = args.keep_within;
        }
        policy.keep_daily = args.keep_daily.or(policy.keep_daily);
        policy.keep_weekly = args.keep_weekly.or(policy.keep_weekly);
        policy.keep_monthly = args.keep_monthly.or(policy.keep_monthly);
    }
    policies
}

/// Each backup as retention judges it. A manifest's "verified" is only a
/// record: per database, newest first (as `latest` orders them), the file
/// of each whole backup recorded as verified is checked against its
/// manifest (size, then sha256) until one matches, and one that does not
/// is not counted as verified. So the backup kept as "the newest verified"
/// is one whose bytes are still those that were verified, and a damaged or
/// replaced newer file cannot let the last intact one be deleted. Every
/// older one is checked by its size, so a file cut short is not kept as its
/// day's, week's or month's backup in place of an intact one.
fn candidates(
    entries: &[Judgeable],
    now: DateTime<Utc>,
    said: &mut Vec<(bool, String)>,
) -> Vec<(String, Candidate)> {
    let mut backups: Vec<(String, Candidate)> = entries
        .iter()
        .map(|e| (e.database.clone(), Candidate::of(&e.entry.manifest)))
        .collect();
    let misfiled: Vec<bool> = { entries.iter() }
        .map(|e| e.recorded_under.is_some())
        .collect();
    let entries: Vec<&Entry> = entries.iter().map(|e| &e.entry).collect();
    let order = inventory::newest_first(entries.iter().map(|e| &e.manifest));
    let mut settled: BTreeSet<String> = BTreeSet::new();
    for i in order {
        let (env, candidate) = &mut backups[i];
        // One dated after now is kept whatever it holds, and is not the
        // newest (retention's `Ahead`).
        if !(candidate.whole && candidate.good) || candidate.created_at > now {
            continue;
        }
        let checked = if settled.contains(env.as_str()) {
            entries[i].still_its_size()
        } else {
            entries[i].still_as_verified()
        };
        match checked {
            // A misfiled one settles nothing: its database's own are
            // checked as if it were not there ([`passes`]).
            Ok(()) if misfiled[i] => {}
            Ok(()) => {
                settled.insert(env.clone());
            }
            Err(why) => {
                said.push((
                    true,
                    format!(
                        "{} is recorded as verified, but {why}: it is not counted as verified; \
                         run `cargo xtask verify {}` to see",
                        entries[i].manifest.file.name,
                        d1_core::wording::shell_word(&entries[i].file.display().to_string())
                    ),
                ));
                candidate.good = false;
            }
        }
    }
    backups
}

/// The verdicts: the backups to delete, each backup's decision for
/// `--json`, and what to print (warnings flagged `true`).
struct Judged<'a> {
    doomed: Vec<&'a Entry>,
    decisions: Vec<serde_json::Value>,
    said: Vec<(bool, String)>,
    /// `prod: keep 62, delete 448; staging: …`, or empty with no backups.
    counts: String,
}

/// Backups judged together ([`decide_all`]), and their verdicts.
struct Pass {
    backups: Vec<(String, Candidate)>,
    verdicts: Vec<Option<BTreeSet<retention::Reason>>>,
}

/// Every backup's judgement. The backups recorded under their own
/// environment's name are judged together as if no misfiled one
/// ([`inventory::misfiled`]) were there: one, mistaken or planted, never
/// takes the place of one of theirs and has it deleted. Each misfiled one
/// is judged alone among its database's own backups, under that
/// environment's rules: deleted where they would delete it (as their
/// oldest), kept where they would keep it (as their newest, as
/// `latest:ENV` takes it).
fn passes(
    policies: &BTreeMap<String, Policy>,
    entries: &[Judgeable],
    backups: &[(String, Candidate)],
    now: DateTime<Utc>,
) -> Judgements {
    let own: Vec<usize> = { 0..entries.len() }
        .filter(|&i| entries[i].recorded_under.is_none())
        .collect();
    let mut groups = vec![own.clone()];
    for (i, misfiled) in entries.iter().enumerate() {
        if misfiled.recorded_under.is_some() {
            let mut group: Vec<usize> = { own.iter().copied() }
                .filter(|&j| entries[j].database == misfiled.database)
                .collect();
            group.push(i);
            groups.push(group);
        }
    }
    let mut place = vec![(0, 0); entries.len()];
    let mut passes = Vec::new();
    for (p, group) in groups.iter().enumerate() {
        // A misfiled pass decides its last backup alone, the misfiled one.
        let decides = if p == 0 { 0 } else { group.len() - 1 };
        for (k, &i) in group.iter().enumerate().skip(decides) {
            place[i] = (p, k);
        }
        let judged: Vec<(String, Candidate)> = group.iter().map(|&i| backups[i].clone()).collect();
        let verdicts = decide_all(policies, &judged, now);
        passes.push(Pass {
            backups: judged,
            verdicts,
        });
    }
    Judgements { passes, place }
}

/// The passes ([`passes`]), and for each backup the one that decides it
/// and its place there.
struct Judgements {
    passes: Vec<Pass>,
    place: Vec<(usize, usize)>,
}

impl Judgements {
    /// The pass that decides the `i`th backup, and its verdict there.
    fn of(&self, i: usize) -> (&Pass, &Option<BTreeSet<retention::Reason>>) {
        let (p, k) = self.place[i];
        (&self.passes[p], &self.passes[p].verdicts[k])
    }
}

/// Decides, and says per database its policy and each backup's verdict.
fn judge<'a>(policies: &BTreeMap<String, Policy>, entries: &'a [Judgeable]) -> Judged<'a> {
    let mut said = Vec::new();
    let now = Utc::now();
    let backups = candidates(entries, now, &mut said);
    let judgements = passes(policies, entries, &backups, now);
    let mut doomed: Vec<&Entry> = Vec::new();
    let mut decisions = Vec::new();
    let mut counts = Vec::new();
    let envs_seen: BTreeSet<&String> = backups.iter().map(|(env, _)| env).collect();
    for env in envs_seen {
        said.push((false, policy_line(policies, env)));
        let width = names_width(entries, env);
        let (mut kept, mut deleted) = (0, 0);
        // What a reason's label means, said once under the lines.
        let mut footnotes = BTreeSet::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.database != *env {
                continue;
            }
            let (pass, verdict) = judgements.of(i);
            match verdict {
                Some(reasons) if reasons.is_empty() => deleted += 1,
                _ => kept += 1,
            }
            let recorded_under = entry.recorded_under.as_deref();
            let note = misfiled_note(recorded_under, env);
            let (candidate, entry) = (&backups[i].1, &entry.entry);
            let name = &entry.manifest.file.name;
            let mut why = Vec::new();
            match verdict {
                Some(reasons) if reasons.is_empty() => {
                    why = why_deleted((policies, env), pass, candidate, now);
                    let size = d1_core::wording::size(entry.bytes_on_disk);
                    said.push((
                        false,
                        format!(
                            "  delete  {name:<width$}  ({note}{size}; {})",
                            why.join("; ")
                        ),
                    ));
                    doomed.push(entry);
                }
                Some(reasons) => {
                    let why: Vec<String> = reasons.iter().map(|r| r.label()).collect();
                    footnotes.extend(reasons.iter().filter_map(|r| r.footnote()));
                    said.push((
                        false,
                        format!("  keep    {name:<width$}  ({note}{})", why.join("; ")),
                    ));
                }
                None => said.push((false, format!("  keep    {name:<width$}  ({note}no rule)"))),
            }
            let reasons: Vec<String> = verdict.iter().flatten().map(|r| r.to_string()).collect();
            let keep = verdict.as_ref().is_none_or(|r| !r.is_empty());
            let mut decision = serde_json::json!({
                "environment": env,
                "file": entry.manifest.file.name,
                "action": if keep { "keep" } else { "delete" },
                "reasons": if verdict.is_none() { vec!["no rule".to_owned()] } else { reasons },
            });
            if let Some(under) = recorded_under {
                decision["recorded_under"] = under.into();
            }
            if !keep {
                decision["bytes"] = entry.bytes_on_disk.into();
                decision["why"] = why.into();
            }
            decisions.push(decision);
        }
        said.extend(footnotes.into_iter().map(|f| (false, format!("  * {f}"))));
        counts.push(format!("{env}: keep {kept}, delete {deleted}"));
    }
    Judged {
        doomed,
        decisions,
        said,
        counts: counts.join("; "),
    }
}

/// The width of the longest name among `group`'s backups: their plan
/// lines' reasons start in one column, however long the names.
fn names_width(entries: &[Judgeable], group: &str) -> usize {
    { entries.iter() }
        .filter(|e| e.database == group)
        .map(|e| e.entry.manifest.file.name.chars().count())
        .max()
        .unwrap_or(0)
}

/// What a misfiled backup's plan line says first (empty for any other):
/// judged in `group`, it is recorded under another environment's name.
fn misfiled_note(recorded_under: Option<&str>, group: &str) -> String {
    recorded_under.map_or_else(String::new, |under| {
        format!("misfiled: recorded under {under}'s name, {group}'s database; ")
    })
}

/// A database's policy, as the plan heads its backups with it.
fn policy_line(policies: &BTreeMap<String, Policy>, env: &str) -> String {
    match policies.get(env).filter(|p| !p.is_empty()) {
        Some(policy) => format!("{env}: {policy}"),
        None => format!(
            "{env}: no retention rule in {SETTINGS_FILE} or on the command line; keeping every \
             backup"
        ),
    }
}

/// Why no rule keeps `deleted` ([`retention::why_deleted`]), judged among
/// the backups of its database in the `pass` that decided it, with their
/// verdicts.
fn why_deleted(
    (policies, env): (&BTreeMap<String, Policy>, &str),
    pass: &Pass,
    deleted: &Candidate,
    now: DateTime<Utc>,
) -> Vec<String> {
    let policy = policies.get(env).cloned().unwrap_or_default();
    let judged = { pass.backups.iter().zip(&pass.verdicts) }
        .filter(|((e, _), _)| e.as_str() == env)
        .filter_map(|((_, c), v)| Some((c, v.as_ref()?)));
    retention::why_deleted(&policy, deleted, judged, now)
}

/// Deletes each backup and its manifest. Only paths resolved inside the
/// backup directory are deleted, each a regular file there, not a link to
/// somewhere else; all of them are checked before the first is deleted.
/// One that a run is reading is kept, saying so ([`fsutil::lock_for_removal`]).
/// Returns how many were deleted, and their files' bytes. An interrupt stops it between two backups; what was deleted is
/// recorded for main to say ([`signals::changed`]), never "the next run
/// starts clean".
fn delete(dir: &Path, doomed: &[&Entry], lock: Option<&BackupLock>) -> Result<(usize, u64)> {
    let mut paths = Vec::new();
    for entry in doomed {
        let file = fsutil::resolve_inside(dir, &entry.manifest.file.name)?;
        let manifest = manifest::manifest_path(&file);
        let manifest = fsutil::resolve_inside(dir, &d1_core::names::file_name(&manifest))?;
        paths.push((file, manifest, entry.bytes_on_disk));
    }
    let planned = paths.len();
    let said = |deleted: usize| match deleted == planned {
        true => format!(
            "prune had deleted all {} it planned to, with their manifests",
            count(planned, "backup")
        ),
        false => format!(
            "prune had deleted {deleted} of the {} it planned to, with their manifests; \
             run prune again to delete the rest",
            count(planned, "backup")
        ),
    };
    // Nothing deleted yet: the next run does start clean.
    signals::check()?;
    let (mut deleted, mut freed) = (0, 0);
    for (file, manifest, bytes) in paths {
        if signals::received().is_some() {
            break;
        }
        // A run reading it (verify, restore, diff, drill) holds its shared
        // lock: it is left for a later prune.
        let Some(_removing) = fsutil::lock_for_removal(&file) else {
            crate::warn!(
                "kept {} this time: it is being read by another run (a verify, restore, diff or \
                 drill; `lsof {}` names it); the next prune deletes it",
                d1_core::names::file_name(&file),
                d1_core::wording::shell_word(&file.display().to_string())
            );
            continue;
        };
        // The file goes first: a manifest without its file is ignored, a
        // file without its manifest would look like someone else's. The
        // pair is recorded in the lock first: a kill between the two
        // leaves the manifest to the next run that takes the lock, which
        // removes it, saying so.
        if let Some(lock) = lock {
            lock.pruning(Some(Pruning {
                backup: Placing::of(&d1_core::names::file_name(&file), &file)?,
                manifest: Placing::of(&d1_core::names::file_name(&manifest), &manifest)?,
            }))?;
        }
        std::fs::remove_file(&file)
            .on_path(&file, || format!("cannot delete {}", file.display()))?;
        deleted += 1;
        freed += bytes;
        signals::changed(said(deleted));
        // One already gone (someone else removed it) is deleted all the same.
        match std::fs::remove_file(&manifest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(manifest_left(&manifest, &file, lock, e));
            }
            _ => {}
        }
    }
    fsutil::sync_dir(dir);
    if let Some(lock) = lock {
        lock.pruning(None)?;
    }
    signals::check()?;
    Ok((deleted, freed))
}

/// The error of a prune that deleted backup `file` and then could not
/// delete its `manifest`: the lock keeps the `pruning` record when it is
/// released ([`BackupLock::leave_pruning`]), as a prune killed there leaves
/// it, so that the next run that takes the lock removes that manifest, and
/// the error says so. Without a lock, the manifest is left to the operator.
fn manifest_left(
    manifest: &Path,
    file: &Path,
    lock: Option<&BackupLock>,
    e: std::io::Error,
) -> anyhow::Error {
    let then = match lock {
        Some(lock) => {
            lock.leave_pruning();
            "the lock keeps its record, and the next run that takes the backup lock (a backup, \
             a prune, a restore) removes that manifest, saying so"
        }
        None => "delete it by hand",
    };
    anyhow::anyhow!(
        "cannot delete {} ({e}) after deleting its backup {}: that manifest is left, recording a \
         backup no longer there; {then}",
        d1_core::names::shown_path(manifest),
        d1_core::names::file_name(file)
    )
}

/// `--yes`, or `yes` typed at a terminal; never wrangler's kind of default.
fn confirm(yes: bool, n: usize) -> Result<()> {
    use std::io::BufRead;
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
    crate::out::prompt(&format!(
        "Delete {}? Type yes to continue: ",
        count(n, "backup")
    ));
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "yes" {
        crate::stop!(
            crate::exit::Exit::Refused,
            "not confirmed: only `yes` confirms; nothing was deleted. Run it again and type \
             yes, or pass --yes"
        );
    }
    Ok(())
}
