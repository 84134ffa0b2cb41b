//! `cargo xtask time-travel info|restore`: D1's point-in-time recovery,
//! with the guards of a restore.
//!
//! A Time Travel restore replaces the whole database with its state at a
//! bookmark. Before it runs, the plan names the database, the bookmark it
//! goes back to, and the bookmark it is at now, which undoes it; `--dry-run`
//! stops there. A run that is not a dry run holds the backup lock from
//! before the plan to the end of the restore, the name asked under it.
//! Production needs its database name typed (or `--confirm`),
//! other environments `--yes` when there is no terminal: wrangler's own
//! prompt is never relied on (with `--json` it does not ask at all). The
//! bookmarks before and after are appended to `backups/time-travel.jsonl`
//! before and after the restore, so the undo survives a lost terminal.

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, SecondsFormat, Timelike as _, Utc};
use xshell::Shell;

use crate::config::environment::{Environment, Environments, Location};
use crate::config::project::Project;
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::journals::{MIGRATIONS_JOURNAL, TIME_TRAVEL_JOURNAL};
use crate::edge::wrangler::{Commands, Invocation, Wrangler};
use crate::steps::backup;
use crate::steps::migrations::{applied_migrations, migration_files, pending};
use crate::steps::unsettled::Unsettled;
use d1_core::wording::count;

/// How far back D1 keeps history on paid plans (7 days on free ones).
const RETENTION_DAYS: i64 = 30;

#[derive(Debug, clap::Subcommand)]
pub enum TimeTravelCommand {
    /// Show a remote database's bookmark now, or at a past time.
    Info {
        /// prod or staging.
        env: String,
        /// RFC 3339 time (2026-11-24T09:30:00Z) or Unix seconds.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Print the bookmark as JSON (environment, database, at, bookmark).
        #[arg(long)]
        json: bool,
    },
    /// Restore a remote database to a past bookmark or time, guarded.
    Restore(RestoreArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// prod or staging.
    pub env: String,
    /// RFC 3339 time (2026-11-24T09:30:00Z) or Unix seconds.
    #[arg(
        long,
        value_name = "TIME",
        required_unless_present = "bookmark",
        conflicts_with = "bookmark"
    )]
    pub at: Option<String>,
    /// A bookmark from `time-travel info`, a backup's manifest or an earlier restore.
    #[arg(long)]
    pub bookmark: Option<String>,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Restore even when this tool's records (the migrations journal, a
    /// backup's manifest) say the restore takes back a migration that
    /// `d1_migrations.applied_at` puts before the time.
    #[arg(long)]
    pub allow_migration_taken_back: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

pub fn run(sh: &Shell, project: &Project, command: &TimeTravelCommand) -> Result<()> {
    match command {
        TimeTravelCommand::Info { env, at, json } => info(sh, project, env, at.as_deref(), *json),
        TimeTravelCommand::Restore(args) => restore(sh, project, args),
    }
}

/// Time Travel is Cloudflare's; local D1 has none.
fn remote<'a>(word: &str, envs: &'a Environments) -> Result<&'a Environment> {
    let env = envs.resolve(word)?;
    if env.location != Location::Remote {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} is local D1, which has no Time Travel (it is kept by Cloudflare for remote \
             databases only). To roll local D1 back, restore a backup: `cargo xtask restore \
             latest --to {} --replace`",
            env.name,
            env.name
        );
    }
    Ok(env)
}

/// The database a Time Travel restore acts on ([`remote`]): never a real
/// one from a shell pointed at a rehearsal, where its journal, the way
/// back, would go to the rehearsal's directory
/// (`steps::rehearsals::refuse_real_database`).
fn restore_target<'a>(
    project: &Project,
    word: &str,
    envs: &'a Environments,
) -> Result<&'a Environment> {
    let env = remote(word, envs)?;
    crate::steps::rehearsals::refuse_real_database(
        &project.backup_dir,
        env,
        "Time Travel restore",
    )?;
    Ok(env)
}

/// Reads `--at`: RFC 3339, or Unix seconds (milliseconds if 13 digits). It
/// must be in the past and within D1's 30 days. Returns the time as wrangler
/// is given it.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        // A number too large for any time is no time, as a word is not.
        let ms = text.parse::<i64>().ok().and_then(|n| {
            if text.len() >= 13 {
                Some(n)
            } else {
                n.checked_mul(1000)
            }
        });
        ms.and_then(DateTime::from_timestamp_millis)
    } else {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    if parsed.is_some_and(|at| at.nanosecond() >= 1_000_000_000) {
        // RFC 3339 allows a leap second (`:60`), chrono reads it on any
        // day, and wrangler refuses it once D1 has been asked the rest.
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--at {text:?} is a leap second (:60), which D1 does not take: give the second \
             before (:59) or the next minute"
        );
    }
    let Some(at) = parsed else {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--at {text:?} is not a time: give RFC 3339 with a zone, like 2026-11-24T09:30:00Z, \
             or Unix seconds (milliseconds if 13 digits)"
        );
    };
    if at > now {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--at {text} is in the future; Time Travel goes back, not forward"
        );
    }
    if at < now - Duration::days(RETENTION_DAYS) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--at {text} is more than {RETENTION_DAYS} days ago; D1 keeps {RETENTION_DAYS} days \
             of history (7 on the free plan). Restore a SQL backup instead: `cargo xtask list`"
        );
    }
    Ok(at)
}

fn wrangler_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A D1 bookmark: `00000085-0000024c-00004c6d-` and 32 hex digits.
pub fn check_bookmark(text: &str) -> Result<()> {
    if !d1_core::names::is_bookmark(text) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "--bookmark {text:?} is not a D1 bookmark (four groups of hex digits, like \
             00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683); get one with \
             `cargo xtask time-travel info ENV`, ENV the environment (with `--at TIME` for \
             another moment than now)"
        );
    }
    Ok(())
}

fn info(sh: &Shell, project: &Project, env: &str, at: Option<&str>, json: bool) -> Result<()> {
    let envs = project.environments()?;
    let env = remote(env, &envs)?;
    let at = at.map(|t| parse_time(t, Utc::now())).transpose()?;
    let wrangler = project.wrangler(sh)?;
    let cmds = project.commands();
    let invocation = match at {
        Some(t) => cmds.time_travel_info_at(env, &wrangler_time(t)),
        // `info` records nothing: it reads.
        None => crate::edge::wrangler::Invocation {
            purpose: format!("read the Time Travel bookmark of {}", env.database_name),
            ..cmds.time_travel_info(env)
        },
    };
    let bookmark = backup::time_travel_bookmark(&wrangler, &invocation)?;
    if json {
        crate::data!(
            "{}",
            serde_json::json!({
                "environment": env.name,
                "database": env.database_name,
                "at": at.map(wrangler_time),
                "bookmark": bookmark,
            })
        );
    } else {
        crate::data!(
            "{} ({}) {}: bookmark {bookmark}",
            env.database_name,
            env.name,
            match at {
                Some(t) => format!("at {}", wrangler_time(t)),
                None => "now".to_owned(),
            }
        );
    }
    Ok(())
}

fn restore(sh: &Shell, project: &Project, args: &RestoreArgs) -> Result<()> {
    let envs = project.environments()?;
    let env = restore_target(project, &args.env, &envs)?;
    let at = args
        .at
        .as_deref()
        .map(|t| parse_time(t, Utc::now()))
        .transpose()?;
    if let Some(b) = &args.bookmark {
        check_bookmark(b)?;
    }
    // Before the lock and before wrangler reads anything: a --confirm
    // naming another database, a dry run included, and what no terminal
    // can be asked.
    confirm::check_given(env, &args.confirm, args.dry_run, "Time Travel restore")?;
    // Held from before the plan is read to the end of the restore, the
    // name asked under it: no backup, restore or migrate runs between the
    // plan shown and the restore. A dry run takes none.
    let task = format!("time-travel restore {}", env.name);
    let lock = { (!args.dry_run).then(|| crate::steps::lock::acquire_lock(project, &task)) }
        .transpose()?;
    let wrangler = project.wrangler(sh)?;
    let cmds = project.commands();
    // When the tool saw the bookmark, if it did: how far back it goes.
    let recorded = { args.bookmark.as_deref() }.and_then(|b| bookmark_recorded(project, env, b));
    let mut plan = RestorePlan::read(&wrangler, &cmds, env, args.bookmark.as_deref(), at)?;
    if let Some((t, _)) = &recorded {
        plan.undone =
            Some(migrations_after(&wrangler, &cmds, env, *t).map_err(|e| format!("{e:#}")));
    }
    if let Some(t) = at.or(recorded.as_ref().map(|(t, _)| *t)) {
        plan.cross_check(project, t);
    }
    plan.recorded = recorded;
    // Told before the plan is confirmed, and in a dry run.
    let told = earlier_restore(project, env, &plan.current);
    match &told {
        Ok(earlier) => warn_unsettled(env, earlier),
        Err(why) => crate::warn!("{why}"),
    }
    plan.earlier = told.unwrap_or_default();
    plan.print(project, args.allow_migration_taken_back);
    // A restore its journal has no room to record is not run: the journal
    // holds its way back. A dry run says so too.
    crate::edge::fsutil::check_room(
        &project.backup_dir.join(TIME_TRAVEL_JOURNAL),
        "the Time Travel journal",
    )?;
    if args.dry_run {
        crate::say!("Dry run: nothing was changed.");
        return Ok(());
    }
    plan.check_disputed(args.allow_migration_taken_back)?;
    confirm::require(env, &args.confirm, "Time Travel restore")?;
    let lock = lock.expect("a Time Travel restore that is not a dry run holds the backup lock");
    // The bookmark that undoes the restore is the database's now: the app
    // may have written since the plan read it (the lock keeps only this
    // tool's runs out), and a way back to the plan's would lose those
    // writes.
    let now = backup::time_travel_bookmark(&wrangler, &cmds.time_travel_info(env))?;
    if now != plan.current {
        crate::say!(
            "  {} was written since the plan: bookmark {now} (not {}) now undoes this restore",
            env.database_name,
            plan.current
        );
        plan.current = now;
    }
    // What is applied now, so that a migration the restore takes back (the
    // one that broke the database, often) is told apart afterwards.
    // A failure to read them only leaves the advice vaguer; an interrupt
    // during the read stops here, before anything is started.
    let applied_before = applied_migrations(sh, project, env).ok();
    crate::edge::signals::check()?;
    plan.apply(project, &wrangler, &lock)?;
    plan.check_answers(&wrangler, &cmds)?;
    say_pending_again(sh, project, env, applied_before.as_deref());
    Ok(())
}

/// The earliest date a record here gives bookmark `bookmark` of `env`'s
/// database, and which record: the Time Travel journal (the bookmark
/// before a restore, or the one a restore left behind) or a backup's
/// manifest (`time_travel_bookmark`), each read as untrusted (a line or
/// manifest that does not read, or is dated ahead, is passed over). The
/// oldest, not the newest: a manifest dated minutes ago naming a bookmark
/// weeks old (copied, forged, or written by a clock ahead) must not hide
/// the age, and the older date errs toward the warning and toward naming
/// more migrations. None when neither has it.
fn bookmark_recorded(
    project: &Project,
    env: &Environment,
    bookmark: &str,
) -> Option<(DateTime<Utc>, String)> {
    let same = |v: &serde_json::Value| v.as_str().is_some_and(|b| b.eq_ignore_ascii_case(bookmark));
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let path = project.backup_dir.join(TIME_TRAVEL_JOURNAL);
    let lines = read_journal(&path, env).unwrap_or_default();
    let journaled = { lines.iter() }
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| crate::steps::lock::journal_line_is_of(e, env))
        .filter_map(|e| match () {
            _ if same(&e["bookmark_before"]) => time(&e["started_at"]),
            _ if same(&e["previous_bookmark"]) => time(&e["at"]),
            _ => None,
        })
        .map(|t| (t, "the Time Travel journal's date".to_owned()));
    let entries = crate::edge::inventory::scan(&project.backup_dir).unwrap_or_default();
    let manifests = { entries.iter() }
        .filter(|e| env.records(&e.manifest))
        .filter(|e| {
            { e.manifest.time_travel_bookmark.as_deref() }
                .is_some_and(|b| b.eq_ignore_ascii_case(bookmark))
        })
        .map(|e| {
            (
                e.manifest.created_at,
                format!("backup {}'s manifest's date", e.manifest.file.name),
            )
        });
    let now = Utc::now() + Duration::minutes(5);
    journaled
        .chain(manifests)
        .filter(|(t, _)| *t <= now)
        .min_by_key(|(t, _)| *t)
}

/// How long ago `then` was: in days from one day on, else hours, else
/// minutes.
fn ago(then: DateTime<Utc>) -> String {
    let age = Utc::now().signed_duration_since(then);
    match (age.num_days(), age.num_hours()) {
        (days, _) if days >= 1 => count(days, "day"),
        (_, hours) if hours >= 1 => count(hours, "hour"),
        _ => count(age.num_minutes().max(0), "minute"),
    }
}

/// What the Time Travel journal says of earlier restores of a database
/// whose outcome is unknown ([`Unsettled`], oldest first; none when there
/// is no such restore), or, when the journal cannot be read, the warning
/// that says so, naming it and the fix.
type Earlier = std::result::Result<Vec<Unsettled>, String>;

/// [`unsettled_restores`](crate::steps::unsettled::unsettled_restores) of
/// `env`, unless a restore of it is running now (its `started` line is no
/// unknown outcome); one whose bookmark is the database's `current` one
/// is no way back at all.
fn earlier_restore(project: &Project, env: &Environment, current: &str) -> Earlier {
    let running = crate::steps::lock::time_travel_running(&project.backup_dir);
    if running.as_deref() == Some(env.name.as_str()) {
        return Ok(Vec::new());
    }
    let path = project.backup_dir.join(TIME_TRAVEL_JOURNAL);
    let journal = read_journal(&path, env)?;
    let mut earlier =
        crate::steps::unsettled::unsettled_restores(journal.iter().map(String::as_str), env);
    earlier.retain(|u| !u.bookmark_before.eq_ignore_ascii_case(current));
    Ok(earlier)
}

/// Warns of earlier restores of `env`'s database whose outcome is unknown
/// ([`earlier_restore`]): when each started, and the bookmark from before
/// it.
fn warn_unsettled(env: &Environment, earlier: &[Unsettled]) {
    match earlier {
        [] => {}
        [one] => crate::warn!(
            "the Time Travel restore of {} started at {} stopped before D1 answered, and D1 \
             may have made it: {} was at bookmark {} before it. This restore's undo goes back \
             to where that one left it; bookmark {} brings back the database as it was before \
             both, and discards every write made since {}",
            env.name,
            one.started_at,
            env.database_name,
            one.bookmark_before,
            one.bookmark_before,
            one.started_at
        ),
        many => crate::warn!(
            "{} Time Travel restores of {} stopped before D1 answered, and D1 may have made any \
             of them. This restore's undo goes back to where they left {}; {}",
            many.len(),
            env.name,
            env.database_name,
            crate::steps::unsettled::ways_back(many)
        ),
    }
}

/// The Time Travel journal's lines (none when it is absent), for telling
/// an unsettled restore of `env`: one that cannot be read is said to be
/// (the warning, naming it and the fix), never passed over in silence.
fn read_journal(path: &std::path::Path, env: &Environment) -> Result<Vec<String>, String> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(Vec::new());
    }
    match crate::edge::fsutil::read_own_lines(path, "Time Travel journal") {
        Ok(lines) => Ok(lines.lines),
        Err(e) => Err(format!(
            "cannot tell whether an earlier Time Travel restore of {} stopped unfinished: {e:#}",
            env.name
        )),
    }
}

/// The migrations applied to `env`, in the order they were applied, each
/// with whether `d1_migrations`' `applied_at` (UTC, to the second, as D1
/// writes it) puts it at or after `at` (one with none is taken as after):
/// one read-only query. None when the table does not exist.
fn migrations_after(
    wrangler: &Wrangler,
    cmds: &Commands,
    env: &Environment,
    at: DateTime<Utc>,
) -> Result<Vec<Applied>> {
    const PURPOSE: &str = "read the migrations applied since then (read-only)";
    // The time is this tool's own, formatted: no text of anyone else's.
    // D1 writes `applied_at` to the second: one applied in the second `at`
    // names may come after it, and is told (at worst, one applied earlier
    // in that second is told too).
    //
    // A row whose applied_at is earlier than that of a row listed before
    // it (a lower id: wrangler inserts them in the order it applies them,
    // each with the time then) was set back, by hand or by a trigger: its
    // applied_at says nothing of when it was applied (`set_back`).
    let sql = format!(
        "SELECT name, coalesce(applied_at >= '{}', 1) AS since, \
         coalesce(applied_at < (SELECT max(e.applied_at) FROM {table} AS e \
         WHERE e.id < {table}.id), 0) AS set_back FROM {table} ORDER BY id",
        at.format("%Y-%m-%d %H:%M:%S"),
        table = d1_core::statement::MIGRATIONS_TABLE
    );
    let missing = format!("no such table: {}:", d1_core::statement::MIGRATIONS_TABLE);
    let Some(json) = wrangler.run_json_unless(&cmds.query_json(env, PURPOSE, &sql), &missing)?
    else {
        return Ok(Vec::new());
    };
    let rows = crate::edge::reader::result_rows(&json, 0);
    Ok({ rows.iter() }
        .filter_map(|r| {
            let name = r.get("name")?.as_str()?;
            let flag = |column: &str, unread: bool| {
                { r.get(column).and_then(|v| v.as_i64()) }.map_or(unread, |v| v != 0)
            };
            Some(Applied {
                name: d1_core::names::shown(name).into_owned(),
                since: flag("since", true),
                set_back: flag("set_back", true),
            })
        })
        .collect())
}

/// A migration `d1_migrations` lists, as a Time Travel restore's plan
/// reads it ([`migrations_after`]).
struct Applied {
    name: String,
    /// Its `applied_at` puts it at or after the restore's time (or cannot
    /// be read): the restore takes it back.
    since: bool,
    /// Its `applied_at` is earlier than that of a migration listed before
    /// it: set back, so it dates nothing.
    set_back: bool,
}

/// Of `names` (migrations `d1_migrations`' `applied_at` puts before `at`),
/// those this tool's own records put at or after `at`, each with the
/// record: the migrations journal (a run that ended at or after `at`
/// applying it, or one staged then that wrote no end), or a whole backup's
/// manifest dated at or after `at` that does not list it (applied after
/// that backup). Both are files in the backup directory, read as
/// untrusted: they only ever add a migration to what the restore takes
/// back, never take one off. Also those the records put before `at` (a
/// run that ended before it applying it, a whole backup dated before it
/// that lists it), which only spare a migration the plan's line that
/// applied_at alone dates it. Err when the journal cannot be read (a
/// symbolic link, too large), naming it.
fn recorded_after(
    project: &Project,
    env: &Environment,
    at: DateTime<Utc>,
    names: &[String],
) -> std::result::Result<Records, String> {
    let path = project.backup_dir.join(MIGRATIONS_JOURNAL);
    let lines = match std::fs::symlink_metadata(&path) {
        Err(_) => Vec::new(),
        Ok(_) => {
            crate::edge::fsutil::read_own_lines(&path, "migrations journal")
                .map_err(|e| format!("{e:#}"))?
                .lines
        }
    };
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let entries: Vec<serde_json::Value> = { lines.iter() }
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["env"] == env.name.as_str() && e["database"] == env.database_name.as_str())
        .collect();
    let ended: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["applied"].is_array()).collect();
    let lists = |e: &serde_json::Value, name: &str| {
        { e["applied"].as_array().into_iter().flatten() }.any(|n| n.as_str() == Some(name))
    };
    let journaled = |name: &str| {
        let after_end = ended
            .iter()
            .any(|e| lists(e, name) && time(&e["ended_at"]).is_some_and(|t| t >= at));
        let unended = entries.iter().any(|e| {
            e["migrations"].get(name).is_some()
                && time(&e["staged_at"]).is_some_and(|t| t >= at)
                && !ended.iter().any(|end| end["run"] == e["run"])
        });
        (after_end || unended).then(|| "the migrations journal puts it after".to_owned())
    };
    let journaled_before = |name: &str| {
        { ended.iter() }.any(|e| lists(e, name) && time(&e["ended_at"]).is_some_and(|t| t < at))
    };
    let manifests = crate::edge::inventory::scan(&project.backup_dir).unwrap_or_default();
    let whole: Vec<_> = { manifests.iter() }
        .map(|e| &e.manifest)
        .filter(|m| env.records(m) && m.mode == "full" && m.tables.is_empty())
        .collect();
    let backup = |name: &str| {
        { whole.iter() }
            .filter(|m| m.created_at >= at && m.created_at <= Utc::now() + Duration::minutes(5))
            .find(|m| !m.migrations.iter().any(|n| n == name))
            .map(|m| {
                format!(
                    "backup {}'s manifest (taken after it, without it) puts it after",
                    m.file.name
                )
            })
    };
    let backed_up_before = |name: &str| {
        { whole.iter() }.any(|m| m.created_at < at && m.migrations.iter().any(|n| n == name))
    };
    Ok(Records {
        after: { names.iter() }
            .filter_map(|n| Some((n.clone(), journaled(n).or_else(|| backup(n))?)))
            .collect(),
        before: { names.iter() }
            .filter(|n| journaled_before(n) || backed_up_before(n))
            .cloned()
            .collect(),
    })
}

/// What this tool's own records say of migrations `applied_at` puts
/// before a restore's time ([`recorded_after`]).
struct Records {
    /// Each they put after it, with the record that does.
    after: Vec<(String, String)>,
    /// Each they put before it.
    before: Vec<String>,
}

/// After a restore to a time before a migration, that migration is
/// pending again: the database's `d1_migrations` went back with it. Says
/// which migrations are pending, and how to apply them; one pending
/// before the restore too (never applied) is among them, as only the
/// database afterwards is read. A migration the restore took back (applied
/// in `applied_before`, pending now) may be what broke the database: then
/// the way on is to fix it first, not to apply it again as it is. A failure
/// to read them is a warning, as the restore itself is done.
fn say_pending_again(
    sh: &Shell,
    project: &Project,
    env: &Environment,
    applied_before: Option<&[String]>,
) {
    let dir = project.config_dir.join(&env.migrations_dir);
    let pending = migration_files(&dir).and_then(|files| {
        let applied = applied_migrations(sh, project, env)?;
        Ok(pending(&files, &applied))
    });
    let names = match pending {
        Ok(names) => names,
        Err(e) => {
            return crate::warn!(
                "could not read which migrations {} has applied after the restore ({e:#}); \
                 `cargo xtask migrate {} --dry-run` lists any that are pending again",
                env.database_name,
                env.name
            );
        }
    };
    if names.is_empty() {
        return crate::detail!(
            "{} has every migration in {} applied",
            env.database_name,
            dir.display()
        );
    }
    let taken_back: Vec<String> = names
        .iter()
        .filter(|n| applied_before.is_some_and(|before| before.contains(n)))
        .cloned()
        .collect();
    if taken_back.is_empty() {
        return crate::warn!(
            "{} has {} pending after the restore ({}): {}. Apply {} with `{}`, or undo this \
             restore with the command above",
            env.database_name,
            count(names.len(), "migration"),
            match applied_before {
                Some(_) => "not applied before it either",
                None => "applied after the time it went back to, or never applied",
            },
            d1_core::wording::listed(&names, "migration"),
            d1_core::wording::them(names.len()),
            crate::edge::confirm::migrate_command(env, "")
        );
    }
    let it = d1_core::wording::them(taken_back.len());
    let (they, are) = d1_core::wording::they_are(taken_back.len());
    crate::warn!(
        "{} has {} pending after the restore: {}. The restore took back {} ({}), applied \
         after the time it went back to: if {they} broke the database, fix or remove {it} in \
         the migrations directory first, as `{}` would apply {it} again as {they} {are}; or \
         undo this restore with the command above",
        env.database_name,
        count(names.len(), "migration"),
        d1_core::wording::listed(&names, "migration"),
        count(taken_back.len(), "migration"),
        taken_back.join(", "),
        crate::edge::confirm::migrate_command(env, ""),
    )
}

/// A Time Travel restore: the database, the bookmark it goes back to (of
/// `--at`, if given) and the bookmark it is at now, which undoes it.
struct RestorePlan<'a> {
    env: &'a Environment,
    at: Option<DateTime<Utc>>,
    target: String,
    current: String,
    restore: Invocation,
    /// For `--at`: the migrations applied, each with whether `applied_at`
    /// puts it after that time (the restore takes those back: their schema
    /// and their `d1_migrations` rows), or why they could not be read.
    undone: Option<std::result::Result<Vec<Applied>, String>>,
    /// The applied migrations `applied_at` puts before the time that this
    /// tool's own records put after it, each with the record
    /// ([`recorded_after`]): taken back too, the worse of the two, and the
    /// restore refused without `--allow-migration-taken-back`.
    disputed: Vec<(String, String)>,
    /// The last migration `applied_at` puts before the time (the rest were
    /// applied before it), when nothing else dates it: no record of this
    /// tool's puts it before or after, and d1_migrations' own order does
    /// not give it away (it was applied with wrangler, or its applied_at
    /// set back to a time after the migration before it). Said in the
    /// plan, not refused: a migration applied outside this tool is as
    /// honest as any.
    dated_alone: Option<String>,
    /// Why this tool's records could not be read, when they could not.
    unread: Option<String>,
    /// For `--bookmark`: when the bookmark was last recorded here, and
    /// where ([`bookmark_recorded`]).
    recorded: Option<(DateTime<Utc>, String)>,
    /// The earlier restores of this database whose outcome is unknown
    /// (interrupted, or killed) with nothing done since, oldest first.
    earlier: Vec<Unsettled>,
}

impl<'a> RestorePlan<'a> {
    /// Asks D1 for the bookmark now and, for `--at`, the bookmark then.
    fn read(
        wrangler: &Wrangler,
        cmds: &Commands,
        env: &'a Environment,
        bookmark: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> Result<Self> {
        let current = crate::steps::identity::check_beside(
            wrangler,
            cmds,
            env,
            "restore it with Time Travel",
            || backup::time_travel_bookmark(wrangler, &cmds.time_travel_info(env)),
        )?;
        let target = match (bookmark, at) {
            (Some(b), _) => b.to_owned(),
            (None, Some(t)) => backup::time_travel_bookmark(
                wrangler,
                &cmds.time_travel_info_at(env, &wrangler_time(t)),
            )?,
            (None, None) => crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "give --at TIME or --bookmark B"
            ),
        };
        let restore = cmds.time_travel_restore(env, &target);
        let undone =
            at.map(|t| migrations_after(wrangler, cmds, env, t).map_err(|e| format!("{e:#}")));
        Ok(RestorePlan {
            env,
            at,
            target,
            current,
            restore,
            undone,
            disputed: Vec::new(),
            dated_alone: None,
            unread: None,
            recorded: None,
            earlier: Vec::new(),
        })
    }

    /// The plan; `allowed`: `--allow-migration-taken-back` was given.
    fn print(&self, project: &Project, allowed: bool) {
        let RestorePlan {
            env,
            at,
            target,
            current,
            restore,
            undone,
            ..
        } = self;
        crate::say!("Time Travel restore plan");
        crate::say!("  {}", project.plan_line());
        crate::say!(
            "  database     {} ({}, remote)",
            env.database_name,
            env.name
        );
        match at {
            Some(t) => crate::say!("  back to      {} (bookmark {target})", wrangler_time(*t)),
            None => {
                crate::say!("  back to      bookmark {target}");
                self.say_recorded();
            }
        }
        crate::say!("  now at       bookmark {current}; restoring to it undoes this");
        crate::say!(
            "  effect       every table is replaced by its state at that bookmark; writes since then \
             are gone and in-flight queries are cancelled"
        );
        let names = undone.as_ref().map(|u| {
            u.as_ref().map(|all| {
                { all.iter() }
                    .filter(|a| a.since || self.disputed.iter().any(|(d, _)| *d == a.name))
                    .map(|a| a.name.clone())
                    .collect::<Vec<_>>()
            })
        });
        match &names {
            Some(Ok(names)) if !names.is_empty() => crate::say!(
                "  takes back   {} applied since then: {} (their schema and their \
                 d1_migrations rows go back; the app deployed for them meets the old schema, \
                 and `{}` applies them again)",
                count(names.len(), "migration"),
                d1_core::wording::listed(names, "migration"),
                crate::edge::confirm::migrate_command(env, "")
            ),
            Some(Ok(_)) if at.is_some() => {
                crate::say!("  takes back   no migration (none was applied since then)")
            }
            // A bookmark's date is only as its record wrote it.
            Some(Ok(_)) => crate::say!(
                "  takes back   no migration applied since the date recorded above (if that \
                 date is right)"
            ),
            Some(Err(why)) => crate::say!("  takes back   not known: {why}"),
            None => {}
        }
        self.say_disputed(allowed);
        crate::say!("  runs         {restore}");
        crate::say!(
            "  records      the bookmarks before and after in {}",
            project.backup_dir.join(TIME_TRAVEL_JOURNAL).display()
        );
        if target == current {
            crate::say!("  note         the database is already at this bookmark");
        }
    }

    /// Reads this tool's own records of when it applied migrations (the
    /// migrations journal, the backups' manifests) against `applied_at`
    /// for the restore's time `at` ([`recorded_after`]): a migration they
    /// put after it is [`RestorePlan::disputed`], never taken off, and so
    /// is one whose `applied_at` was set back before that of a migration
    /// applied ahead of it ([`Applied::set_back`]). The last one left
    /// before the time that nothing else dates is
    /// [`RestorePlan::dated_alone`].
    fn cross_check(&mut self, project: &Project, at: DateTime<Utc>) {
        let Some(Ok(applied)) = &self.undone else {
            return;
        };
        let before: Vec<&Applied> = applied.iter().filter(|a| !a.since).collect();
        let names: Vec<String> = before.iter().map(|a| a.name.clone()).collect();
        let records = match recorded_after(project, self.env, at, &names) {
            Ok(records) => records,
            Err(why) => {
                self.unread = Some(why);
                Records {
                    after: Vec::new(),
                    before: Vec::new(),
                }
            }
        };
        self.disputed = records.after;
        for set_back in before.iter().filter(|a| a.set_back) {
            if !self.disputed.iter().any(|(d, _)| *d == set_back.name) {
                self.disputed.push((
                    set_back.name.clone(),
                    "that applied_at is earlier than that of a migration applied before it (a \
                     lower id in d1_migrations), so it was set back and dates nothing"
                        .to_owned(),
                ));
            }
        }
        self.dated_alone = { before.last() }
            .map(|a| a.name.clone())
            .filter(|n| !self.disputed.iter().any(|(d, _)| d == n))
            .filter(|n| !records.before.contains(n));
    }

    /// The plan's lines on where `applied_at` and this tool's records
    /// disagree, and the flag that restores anyway; or that the records
    /// could not be read. `allowed`: the flag was given, and the guard
    /// line says so.
    fn say_disputed(&self, allowed: bool) {
        if let Some(why) = &self.unread {
            crate::say!(
                "  checked      applied_at alone: this tool's records could not be read ({why})"
            );
        }
        for (name, record) in &self.disputed {
            crate::say!(
                "  disputed     {name}: its applied_at in d1_migrations puts it before then, but \
                 {record}: taken back, the worse of the two (applied_at is anyone's to set who \
                 can write the database)"
            );
        }
        if let Some(name) = &self.dated_alone {
            crate::say!(
                "  dated        {name}, the last migration applied before then, is dated so by \
                 its applied_at alone: neither the migrations journal nor a backup taken before \
                 then records it (applied with wrangler, not this tool?). applied_at is \
                 anyone's to set who can write the database: if it was applied after then, the \
                 restore takes it back too, and `cargo xtask migrate {} --dry-run` lists it \
                 pending again",
                d1_core::wording::shell_word(&self.env.name)
            );
        }
        match (self.disputed.is_empty(), allowed) {
            (true, _) => {}
            (false, true) => crate::say!(
                "  guard        --allow-migration-taken-back was given: the restore takes {} \
                 back all the same",
                d1_core::wording::listed(
                    &{ self.disputed.iter() }
                        .map(|(d, _)| d.clone())
                        .collect::<Vec<_>>(),
                    "migration"
                )
            ),
            (false, false) => crate::say!(
                "  guard        the restore is refused without --allow-migration-taken-back"
            ),
        }
    }

    /// Refuses (exit 3) a restore whose plan has a migration
    /// [`RestorePlan::disputed`], unless `allowed`.
    fn check_disputed(&self, allowed: bool) -> Result<()> {
        if self.disputed.is_empty() || allowed {
            return Ok(());
        }
        let names: Vec<String> = self.disputed.iter().map(|(n, _)| n.clone()).collect();
        crate::stop!(
            crate::exit::Exit::Refused,
            "this restore may take back {} that d1_migrations' applied_at puts before its time \
             but this tool's records put after it ({}): nothing was restored. Check which \
             migrations were applied since then (`cargo xtask migrate {} --dry-run`, the plan \
             above), and run it again with --allow-migration-taken-back to restore anyway",
            count(names.len(), "migration"),
            names.join(", "),
            self.env.name
        );
    }

    /// For `--bookmark`: the earliest date recorded here for it (as written,
    /// not verified) and how long ago, with a
    /// warning when that is over a day (an undo pasted from scrollback
    /// carries `--confirm`, and runs without a question); or that neither
    /// the journal nor a manifest has it.
    fn say_recorded(&self) {
        let Some((t, source)) = &self.recorded else {
            return crate::say!(
                "  recorded     not in the journal nor any backup's manifest: how far back it \
                 goes is not known here"
            );
        };
        let at = t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let ago = ago(*t);
        crate::say!(
            "  recorded     at {at} ({ago} ago; the earliest date found, {source}, as written \
             there, not verified)"
        );
        if Utc::now().signed_duration_since(*t) > Duration::days(1) {
            crate::warn!(
                "bookmark {} was first recorded {ago} ago ({at}, as its record dates it): restoring to it discards every write \
                 made to {} since then. Check it is the one meant, not an old undo line",
                self.target,
                self.env.database_name
            );
        }
    }

    /// Runs the restore, with the bookmarks before and after appended to the
    /// journal before and after it, and prints the command that undoes it.
    fn apply(
        &self,
        project: &Project,
        wrangler: &Wrangler,
        lock: &crate::edge::lock::BackupLock,
    ) -> Result<()> {
        let RestorePlan {
            env,
            target,
            current,
            restore,
            ..
        } = self;
        let journal = project.backup_dir.join(TIME_TRAVEL_JOURNAL);
        let started = Utc::now();
        let record = |status: &str, extra: serde_json::Value| {
            self.journal_line(&journal, started, status, extra)
        };
        record("started", serde_json::json!({}))?;
        // Told by the next run if this one is killed (the lock), or now if
        // it is interrupted.
        let underway = format!(
            "{} may already be back at bookmark {target}; restoring to bookmark {current} undoes it",
            env.database_name
        );
        lock.record(crate::edge::lock::Doing::TimeTravel {
            env: env.name.clone(),
            to: target.to_string(),
            undo: current.to_string(),
        })?;
        crate::edge::signals::changed(underway);
        let result = match wrangler.run_json(restore) {
            Ok(r) => r,
            Err(e) => return Err(self.failed(e, record, wrangler, &project.commands())),
        };
        // Printed in a command to paste: only a bookmark's shape is taken
        // from the answer; otherwise the bookmark read before the restore.
        let previous = result
            .get("previous_bookmark")
            .and_then(|b| b.as_str())
            .filter(|b| d1_core::names::is_bookmark(b))
            .unwrap_or(current)
            .to_owned();
        // The undo first: it must reach the operator even if the journal
        // cannot, and with -q too (it is this command's result).
        self.say_undo(&previous);
        let earlier = self.earlier.first().map(|u| u.bookmark_before.as_str());
        record(
            "done",
            serde_json::json!({
                "previous_bookmark": previous,
                "response": result,
                "bookmark_before_unfinished": earlier,
                "unfinished_before": self.earlier,
            }),
        )
        .with_context(|| {
            format!(
                "{} was restored to bookmark {target} (its undo is above), but that could not be \
                 recorded in the Time Travel journal",
                env.database_name
            )
        })?;
        // Journaled done: the check that follows is no restore underway.
        crate::edge::signals::changed(format!(
            "{} is back at bookmark {target}; restoring to bookmark {previous} undoes it",
            env.database_name
        ));
        lock.settled()
    }

    /// The commands that undo the restore, now back from bookmark
    /// `previous`, on stdout (this command's result, with -q too): its own
    /// undo, and the way back to before an earlier restore whose outcome
    /// was unknown.
    fn say_undo(&self, previous: &str) {
        let RestorePlan { env, target, .. } = self;
        let undo = crate::out::to_paste(format!(
            "cargo xtask time-travel restore {} --bookmark {previous} --confirm {}",
            env.name, env.database_name
        ));
        crate::data!(
            "Restored {} to bookmark {target}.\nTo undo it:\n  {undo}",
            env.database_name
        );
        // Its bookmark is read from the journal, which is only a file in
        // the backup directory: the command shows its plan, to be
        // confirmed, rather than run at once.
        let cmd = |before: &str| {
            crate::out::to_paste(format!(
                "cargo xtask time-travel restore {} --bookmark {before}",
                env.name
            ))
        };
        match self.earlier.as_slice() {
            [] => {}
            [one] => crate::data!(
                "To go back to before the restore started at {}, which stopped unfinished \
                 (every write since then is discarded; its plan asks to be confirmed):\n  {}",
                one.started_at,
                cmd(&one.bookmark_before)
            ),
            many => crate::data!(
                "{} restores stopped unfinished before this one: {}. Their plans ask to be \
                 confirmed:\n{}",
                many.len(),
                crate::steps::unsettled::ways_back(many),
                { many.iter().rev() }
                    .map(|u| format!("  {}", cmd(&u.bookmark_before)))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    /// Appends a line to the Time Travel journal (`journal`): this restore,
    /// started at `started`, now at `status`, with `extra` fields.
    fn journal_line(
        &self,
        journal: &std::path::Path,
        started: DateTime<Utc>,
        status: &str,
        extra: serde_json::Value,
    ) -> Result<()> {
        let RestorePlan {
            env,
            target,
            current,
            ..
        } = self;
        let mut entry = serde_json::json!({
            "at": Utc::now(),
            "started_at": started,
            "environment": env.name,
            "database": env.database_name,
            "database_id": env.database_id,
            "status": status,
            "restore_to": target,
            "bookmark_before": current,
        });
        if let (Some(map), serde_json::Value::Object(more)) = (entry.as_object_mut(), extra) {
            map.extend(more);
        }
        crate::edge::fsutil::append_json_line(journal, &entry, "the Time Travel journal")
    }

    /// The error of a restore wrangler did not finish, journaled (`record`)
    /// as failed when D1 refused it ([`crate::edge::wrangler::failed_refused_by_api`]),
    /// or else as interrupted: interrupted, or answered otherwise (a 5xx, a
    /// 524 from Cloudflare's edge, an answer wrangler could not read, none
    /// at all), D1 may have made it. Then the undo is printed, and where
    /// the database is now is read back and said.
    fn failed(
        &self,
        e: anyhow::Error,
        record: impl Fn(&str, serde_json::Value) -> Result<()>,
        wrangler: &Wrangler,
        cmds: &Commands,
    ) -> anyhow::Error {
        let RestorePlan { env, current, .. } = self;
        let interrupted = { e.chain() }.any(|c| c.is::<crate::edge::signals::Interrupted>());
        if !interrupted && crate::edge::wrangler::failed_refused_by_api(&e) {
            let _ = record("failed", serde_json::json!({ "error": format!("{e:#}") }));
            return e.context(format!(
                "the Time Travel restore of {} failed: D1 refused it, and applies a restore \
                 whole or not at all. It was at bookmark {current} before",
                env.database_name
            ));
        }
        let (how, now) = match interrupted {
            // wrangler was stopped with its request sent; no other runs.
            true => (
                "interrupted while wrangler waited for D1's answer".to_owned(),
                None,
            ),
            false => (
                "wrangler failed after D1 was asked, with no refusal from it (a 5xx, a 524, \
                 an answer it could not read, or none)"
                    .to_owned(),
                Some(self.where_now(wrangler, cmds)),
            ),
        };
        let undo = crate::out::to_paste(format!(
            "cargo xtask time-travel restore {} --bookmark {current} --confirm {}",
            env.name, env.database_name
        ));
        let why = format!(
            "{how}: its outcome is unknown. D1 applies a restore whole or not at all, and may \
             have made this one{}. `cargo xtask time-travel info {}` shows where the database \
             is; restoring to bookmark {current} undoes it:\n  {undo}\n",
            now.as_deref().unwrap_or_default(),
            env.name
        );
        let _ = record("interrupted", serde_json::json!({ "error": why }));
        e.context(why)
    }

    /// Where the database is now, by `time-travel info`, after a restore
    /// whose outcome is unknown ([`RestorePlan::failed`]).
    fn where_now(&self, wrangler: &Wrangler, cmds: &Commands) -> String {
        let RestorePlan { env, current, .. } = self;
        let db = &env.database_name;
        match backup::time_travel_bookmark(wrangler, &cmds.time_travel_info(env)) {
            Ok(now) if now.eq_ignore_ascii_case(current) => format!(
                " ({db} is now at bookmark {now}, as before it: not made yet, but a restore D1 \
                 is still working on may land later)"
            ),
            Ok(now) => format!(
                " ({db} is now at bookmark {now}, not {current}: D1 most likely made it, unless \
                 the app wrote since)"
            ),
            Err(e) => format!(" (where {db} is now could not be read: {e:#})"),
        }
    }

    /// After the restore: the database answers a read-only query.
    fn check_answers(&self, wrangler: &Wrangler, cmds: &Commands) -> Result<()> {
        let env = self.env;
        let check = wrangler.run_json(&cmds.query_json(
            env,
            "check that the database answers (read-only)",
            // The app's tables, as backups and restores count them: not
            // SQLite's own (sqlite_sequence) nor workerd's (_cf_*).
            "SELECT count(*) AS tables FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
        ));
        match check {
            Ok(json) => {
                let tables = crate::edge::reader::result_rows(&json, 0)
                    .first()
                    .and_then(|r| r.get("tables"))
                    .and_then(|n| n.as_u64())
                    .context("the database answered without a table count")?;
                crate::say!(
                    "{} answers: {}.",
                    env.database_name,
                    d1_core::wording::count(tables, "table")
                );
                Ok(())
            }
            Err(e) => Err(e.context(format!(
                "{} was restored to {} but does not answer a query; undo with the command above",
                env.database_name, self.target
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds_in_the_last_30_days() {
        assert_eq!(
            wrangler_time(parse_time("2026-11-24T09:30:00Z", now()).unwrap()),
            "2026-11-24T09:30:00.000Z"
        );
        assert_eq!(
            wrangler_time(parse_time("2026-11-24T10:30:00+01:00", now()).unwrap()),
            "2026-11-24T09:30:00.000Z"
        );
        let secs = now().timestamp() - 60;
        assert_eq!(
            parse_time(&secs.to_string(), now()).unwrap(),
            now() - Duration::seconds(60)
        );
        let ms = (now().timestamp() - 60) * 1000;
        assert_eq!(
            parse_time(&ms.to_string(), now()).unwrap(),
            now() - Duration::seconds(60)
        );
        for (bad, says) in [
            ("yesterday", "not a time"),
            ("2026-11-24 09:30", "not a time"),
            ("2026-11-25T00:00:00Z", "in the future"),
            ("2026-10-01T00:00:00Z", "more than 30 days"),
            ("99999999999999999999", "not a time"),
            ("9999999999999999", "not a time"),
            ("2026-11-24T09:29:60Z", "leap second"),
        ] {
            let err = parse_time(bad, now()).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn bookmarks_must_look_like_d1s() {
        check_bookmark("00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683").unwrap();
        for bad in [
            "",
            "latest",
            "00000085-0000024c-00004c6d",
            "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf89168",
            "0000008g-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683",
            "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683; DROP",
        ] {
            assert!(check_bookmark(bad).is_err(), "{bad}");
        }
    }
}
