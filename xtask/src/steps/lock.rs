//! Holding the backup directory's lock: every command that writes or
//! deletes in it takes it first, here, so a stale lock is reported and its
//! holder's unfinished files are removed the same way for each.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::environment::{Environment, Location};
use crate::config::project::Project;
use crate::edge::fsutil;
use crate::edge::fsutil::OnPath as _;
use crate::edge::lock::{BackupLock, Doing, Holder, StaleLock};

/// Takes the backup directory's lock (creating the directory, private),
/// reporting a stale lock, and removing the unfinished files that runs now
/// gone left there: a killed backup's, a killed verify's (which takes no
/// lock), and a backup file its killed run never wrote a manifest for.
/// A file of a run still alive is left alone, and so is the directory of
/// a rehearsal still running; a killed one's, a copy of prod, is removed
/// ([`crate::steps::rehearsals::remove_killed`]). The records of runs gone
/// whose way back is for another environment are kept in the lock for a
/// later run ([`tell_stale`]).
pub fn acquire_lock(project: &Project, command: &str) -> Result<BackupLock> {
    fsutil::set_backup_dir(&project.backup_dir);
    fsutil::create_private_dir(&project.backup_dir)?;
    let (mut lock, stale) = BackupLock::acquire(&project.backup_dir, command, &project.root)?;
    crate::steps::rehearsals::remove_killed(&project.backup_dir);
    if let Some(stale) = &stale {
        tell_stale(stale, project, command, &mut lock)?;
    }
    for leftover in leftover_partials(&project.backup_dir)? {
        crate::warn!(
            "removing its unfinished file {}: the run that left it is gone",
            d1_core::names::shown_path(&leftover)
        );
        remove(&leftover)?;
    }
    let dead = stale.as_ref().and_then(|s| s.holder.as_ref());
    if let Some(orphan) = dead.and_then(|h| unrecorded_backup(&project.backup_dir, h)) {
        crate::warn!(
            "removing {}: the run that wrote it was killed before its manifest (it was never \
             recorded nor verified)",
            d1_core::names::shown_path(&orphan)
        );
        remove(&orphan)?;
    }
    let pruned = dead.map(|h| std::iter::once(h).chain(&h.kept));
    for record in pruned.into_iter().flatten() {
        if let Some((half, told)) = half_pruned(&project.backup_dir, record) {
            crate::warn!("removing {}: {told}", d1_core::names::shown_path(&half));
            finish_pruning(&half, record, &mut lock)?;
        }
    }
    Ok(lock)
}

/// Removes `half`, the manifest a prune (`record`) left after deleting its
/// backup ([`half_pruned`]): one already gone (someone else removed it)
/// counts as removed. One that cannot be removed (an I/O error, a file
/// system remounted read-only) fails no run: this one warns, and carries
/// the record into its own lock ([`BackupLock::carry_pruning`]), so that a
/// later run removes it once it can.
fn finish_pruning(half: &Path, record: &Holder, lock: &mut BackupLock) -> Result<()> {
    match std::fs::remove_file(half) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            crate::warn!(
                "cannot remove {} ({e}): the lock keeps its record, and the next run that takes \
                 the backup lock tries again",
                half.display()
            );
            lock.carry_pruning(record)
        }
    }
}

/// Warns of the stale lock, and of each record of a run gone it holds: its
/// own holder's, and those it kept ([`crate::edge::lock::Holder::kept`]),
/// once each. The records not told whole to the run of `command`, being
/// for another environment, are kept in `lock` for a later one
/// ([`BackupLock::keep`]), which decides which before any is told kept.
fn tell_stale(
    stale: &StaleLock,
    project: &Project,
    command: &str,
    lock: &mut BackupLock,
) -> Result<()> {
    for warning in stale_told(stale, project, command, lock)? {
        crate::warn!("{warning}");
    }
    Ok(())
}

/// The warnings [`tell_stale`] prints, having kept in `lock` what it keeps.
fn stale_told(
    stale: &StaleLock,
    project: &Project,
    command: &str,
    lock: &mut BackupLock,
) -> Result<Vec<String>> {
    let Some(holder) = stale.holder.as_ref() else {
        return Ok(vec![stale.to_string()]);
    };
    let records: Vec<&Holder> = std::iter::once(holder).chain(&holder.kept).collect();
    let told: Vec<Option<(String, bool)>> = { records.iter() }
        .map(|dead| {
            let doing = dead.doing.as_ref()?;
            Some(told_to(doing, project, Reader::Next { dead, command }))
        })
        .collect();
    let wanted: Vec<Holder> = { records.iter().zip(&told) }
        .filter(|(_, told)| told.as_ref().is_some_and(|(_, keep)| *keep))
        .map(|(dead, _)| (*dead).clone())
        .collect();
    let mut kept = match wanted.is_empty() {
        true => Vec::new(),
        false => lock.keep(&wanted)?,
    }
    .into_iter();
    let mut warnings = Vec::new();
    for (dead, told) in records.into_iter().zip(told) {
        let Some((told, keep)) = told else {
            let gone = StaleLock {
                holder: Some(dead.clone()),
            };
            warnings.push(gone.to_string());
            continue;
        };
        let kept = match keep {
            true => kept_or_dropped(dead, kept.next().unwrap_or(false)),
            false => String::new(),
        };
        warnings.push(format!("{}{kept}", told_gone(dead, &told)));
    }
    Ok(warnings)
}

/// What becomes of `dead`'s record, one [`withheld`] keeps for a later
/// run: `kept` in the lock ([`BackupLock::keep`]), or dropped.
fn kept_or_dropped(dead: &Holder, kept: bool) -> String {
    let env = dead.doing.as_ref().and_then(Doing::env).unwrap_or_default();
    match kept {
        true => format!(
            "; the record is kept for the next run for {env} (`cargo xtask backup {env}` is \
             one), which tells it"
        ),
        false if dead.clone().kept_as().is_none() => {
            "; the record is not kept: it is not in the shape this tool writes".to_owned()
        }
        false => format!(
            "; the record is not kept: the lock keeps at most {} records of runs gone, the \
             newest, and has no room for this older one, so no later run tells it",
            crate::edge::lock::MOST_KEPT
        ),
    }
}

/// What this run is doing, as the next run would tell it if this one
/// were killed ([`told_to`]), its way back included.
pub fn told(doing: &Doing, project: &Project) -> String {
    told_to(doing, project, Reader::Writer).0
}

/// Whom a lock's record is told to ([`told_to`]).
#[derive(Debug, Clone, Copy)]
enum Reader<'a> {
    /// The run that writes it, of its own step.
    Writer,
    /// A later run (`command`: `backup staging`, `prune`, …) that found
    /// it left by `dead`, a run gone.
    Next { dead: &'a Holder, command: &'a str },
}

/// What a run was doing when it stopped, and the way back, in this tool's
/// words: the environment is looked up in the configuration (its database
/// named from there), a backup file to go back to must be a whole backup of
/// that environment in the backup directory ([`way_back`]), bookmarks must
/// be the Time Travel journal's ([`journaled`]), and a name is repeated
/// only if it is one plain word. The way back is told only where
/// [`withheld`] does not say why not; with whether the record is kept for
/// a later run, the first for its environment. What
/// does not check out is not repeated: the lock is a file anyone who can
/// write the backup directory may have written.
fn told_to(doing: &Doing, project: &Project, reader: Reader<'_>) -> (String, bool) {
    const UNKNOWN: &str = "working on a database this configuration does not name; nothing \
                           more is told";
    let unknown = || (UNKNOWN.to_owned(), false);
    let env = |name: &str| environment(project, name);
    match doing {
        Doing::Loading { env: name, .. } => match env(name) {
            Some(env) => told_load(doing, project, &env, reader),
            None => unknown(),
        },
        Doing::Migrating {
            env: name,
            backup,
            backup_sha256,
        } => {
            let Some(env) = env(name) else {
                return unknown();
            };
            let withheld = withheld(reader, doing, &env, backup.is_some());
            let (advice, kept) = or_withheld(withheld, || {
                Some(match backup {
                    Some(file) => way_back(
                        project,
                        &env,
                        (file, backup_sha256.as_deref()),
                        None,
                        "the pre-migration backup",
                    ),
                    None => "no backup was taken (--no-backup)".to_owned(),
                })
            });
            let db = &env.database_name;
            let told = format!("applying migrations to {db}, some of which may be applied");
            (format!("{told}; {}", advice.unwrap_or_default()), kept)
        }
        Doing::TimeTravel {
            env: name,
            to,
            undo,
        } => {
            let Some(env) = env(name).filter(|e| e.location == Location::Remote) else {
                return unknown();
            };
            let withheld = withheld(reader, doing, &env, true);
            let kept = withheld.as_ref().is_some_and(|w| w.kept);
            let said = withheld.map(|w| w.said);
            (told_time_travel(project, &env, (to, undo), said), kept)
        }
        Doing::Unread => (
            "something this version does not read from its record".to_owned(),
            false,
        ),
    }
}

/// A load into `env`'s database ([`Doing::Loading`], `doing`), told as
/// [`told_to`] tells it: what the database holds, how to tell, and the
/// safety backup's restore as the way back.
fn told_load(
    doing: &Doing,
    project: &Project,
    env: &Environment,
    reader: Reader<'_>,
) -> (String, bool) {
    let Doing::Loading {
        backup,
        backup_sha256,
        safety,
        safety_sha256,
        migrations_first,
        checking,
        ..
    } = doing
    else {
        unreachable!("told_load is given a load");
    };
    let loaded = (backup.as_str(), backup_sha256.as_deref());
    let withheld = withheld(reader, doing, env, safety.is_some());
    let (back, kept) = or_withheld(withheld, || {
        let safety = safety.as_deref()?;
        Some(way_back(
            project,
            env,
            (safety, safety_sha256.as_deref()),
            Some(loaded),
            "the safety backup taken before it",
        ))
    });
    let back = back.map(|b| format!("; {b}")).unwrap_or_default();
    let diff = diff_with(project, env, loaded);
    let db = &env.database_name;
    let told = match (checking, one_word(backup)) {
        (true, named) => format!(
            "checking {db}, into which it had loaded {}: {db} holds {}, unchecked{}",
            named.unwrap_or("a backup"),
            named.unwrap_or("the backup it loaded"),
            diff.map(|d| format!(" ({d} compares the two)"))
                .unwrap_or_default()
        ),
        (false, named) => format!(
            "loading {} into {db}: {}",
            named.unwrap_or("a backup"),
            left_by_a_load(env, *migrations_first, diff)
        ),
    };
    (format!("{told}{back}"), kept)
}

/// The `cargo xtask diff` that compares `env`'s database with the backup
/// `file` a load recorded: by its path in the backup directory when it is
/// there, a file of a plain name that is the very one recorded (the
/// sha256 the record has from its manifest); else, and for a load that
/// records no sha256 (a dump with no manifest, maybe loaded from
/// elsewhere), with BACKUP for it. `None` for a new database, which no
/// environment names.
fn diff_with(project: &Project, env: &Environment, (file, sha256): Recorded<'_>) -> Option<String> {
    let live = format!("live:{}", one_word(&env.name)?);
    let path = project.backup_dir.join(file);
    let there = one_word(file).is_some()
        && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file())
        && sha256.is_some_and(|sha| crate::edge::lock::sha256_of(&path).as_deref() == Some(sha));
    Some(match there {
        true => format!(
            "`cargo xtask diff {} {live}`",
            d1_core::wording::shell_word(&path.display().to_string())
        ),
        false => format!("`cargo xtask diff BACKUP {live}` (BACKUP: the backup it loaded)"),
    })
}

/// A Time Travel restore of `env`'s database to bookmark `to`, from
/// bookmark `undo` ([`Doing::TimeTravel`]), told with the bookmark that
/// undoes it if the journal says so ([`journaled`]) and it is not
/// `withheld` ([`withheld`]).
fn told_time_travel(
    project: &Project,
    env: &Environment,
    (to, undo): (&str, &str),
    withheld: Option<String>,
) -> String {
    let db = &env.database_name;
    let info = format!("cargo xtask time-travel info {}", env.name);
    if let Some(why) = withheld {
        return format!("restoring {db} by Time Travel; {why} (`{info}` shows where it is now)");
    }
    match journaled(project, env, to, undo) {
        true => format!(
            "restoring {db} by Time Travel to bookmark {to}: it may already be back there; \
             restoring to bookmark {undo} undoes it"
        ),
        false => format!(
            "restoring {db} by Time Travel (the bookmarks it recorded are not the Time Travel \
             journal's; `{info}` shows where it is now)"
        ),
    }
}

/// A way back not told ([`withheld`]): the words told instead, and
/// whether the record is kept for a later run.
struct Withheld {
    said: String,
    kept: bool,
}

/// The way back `told` gives, or the words `withheld` tells instead; with
/// whether the record is kept for a later run.
fn or_withheld(
    withheld: Option<Withheld>,
    told: impl FnOnce() -> Option<String>,
) -> (Option<String>, bool) {
    match withheld {
        Some(why) => (Some(why.said), why.kept),
        None => (told(), false),
    }
}

/// Why the way back from `doing`, a record of `env`'s, is not told to
/// `reader`, in the words told instead; `None` when it is. A run's own
/// record is told to it whole. Found stale, it is the word of a file anyone
/// who can write the backup directory may have written, so its way back is
/// told only where that record is one this tool writes for the command its
/// lock records (`restore into ENV` a load into ENV, …: a lock pairing a
/// load into prod with `restore into staging` is not), and only to a run
/// for that same environment: a lock left (or planted) by a run for prod
/// never has a `backup staging` hand its operator a restore into prod.
/// A record of the first kind is told by no run, and not kept; one of
/// another environment's is kept for a later run, so that the first run
/// for that environment tells what the database may hold, and the way
/// back where `back` says there is one: a `migrate prod --no-backup`
/// killed half-way leaves prod half-migrated all the same. A load into a
/// new database is not kept: no run but that restore is for it.
fn withheld(reader: Reader<'_>, doing: &Doing, env: &Environment, back: bool) -> Option<Withheld> {
    let Reader::Next { dead, command } = reader else {
        return None;
    };
    if !doing.is_written_by(&dead.command) {
        return Some(Withheld {
            said: "no way back is told: the command its lock records is not the run that \
                   writes such a record"
                .to_owned(),
            kept: false,
        });
    }
    let name = &env.name;
    let said = match back {
        true => format!(
            "no way back is told to a run that is not for {name} (this one is `{command}`); \
             `cargo xtask list` lists the backups here"
        ),
        false => "it took no backup of its database before it, so there is no way back to \
                  tell"
            .to_owned(),
    };
    match crate::edge::lock::command_environment(command) {
        Some(this) if this == env.name => None,
        _ => Some(Withheld {
            said,
            kept: !name.starts_with("new:"),
        }),
    }
}

/// What a load into `env` that did not finish leaves in its database
/// ([`Doing::Loading`]), with `diff`, the command that tells which
/// ([`diff_with`]). A local load is one transaction: a run stopped before
/// its `COMMIT` leaves it to be rolled back when the database is next
/// opened, one stopped in it (or just after, before the record says the
/// load is in) may have committed it all.
fn left_by_a_load(env: &Environment, migrations_first: bool, diff: Option<String>) -> String {
    let db = &env.database_name;
    match env.location {
        _ if migrations_first => format!(
            "the migrations are applied first, each as its own query, so some of them may be \
             applied to {db}, and no row of the backup was loaded"
        ),
        Location::Remote => format!(
            "D1 ends an import it was given on its own, whole or not at all, so {db} holds \
             either all of the backup or what it held before"
        ),
        Location::Local => format!(
            "{db} holds either all of the backup or what it held before: the load is one \
             transaction, which a run stopped as it committed may have committed, and which is \
             rolled back when {db} is next opened if it did not{}",
            diff.map(|d| format!("; {d} tells which: no difference means all of the backup"))
                .unwrap_or_default()
        ),
    }
}

/// Whether the Time Travel journal's last line for `env`'s database
/// ([`journal_line_is_of`]) is a restore of it to bookmark `to` from
/// bookmark `undo` that started and never ended (or ended interrupted, its
/// outcome unknown), each a bookmark in D1's shape: a Time Travel restore
/// journals that line before it writes the lock.
fn journaled(project: &Project, env: &Environment, to: &str, undo: &str) -> bool {
    let path = project
        .backup_dir
        .join(crate::edge::journals::TIME_TRAVEL_JOURNAL);
    let Ok(journal) = fsutil::read_own_lines(&path, "Time Travel journal") else {
        return false;
    };
    let last = { journal.lines.iter().rev() }
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| journal_line_is_of(entry, env));
    d1_core::names::is_bookmark(to)
        && d1_core::names::is_bookmark(undo)
        && last.is_some_and(|entry| {
            // Interrupted (a SIGHUP whose lock record stays): D1's answer
            // is as unknown as after a kill.
            (entry["status"] == "started" || entry["status"] == "interrupted")
                && entry["restore_to"] == to
                && entry["bookmark_before"] == undo
        })
}

/// Whether the Time Travel journal's line `entry` is of `env`'s database:
/// by the database id it records, as `status` reads it (a restore
/// journaled under a short name renamed since is still this database's,
/// and one of another configuration's environment of the same name is
/// not); a line without one (an older version's) by its environment and
/// database names.
pub fn journal_line_is_of(entry: &serde_json::Value, env: &Environment) -> bool {
    match entry["database_id"].as_str() {
        Some(id) => id.eq_ignore_ascii_case(&env.database_id),
        None => {
            entry["environment"] == env.name.as_str()
                && entry["database"] == env.database_name.as_str()
        }
    }
}

/// The environment named `name` in the configuration, or the new database
/// `new:NAME` a restore was creating.
fn environment(project: &Project, name: &str) -> Option<Environment> {
    if let Some(new) = name.strip_prefix("new:") {
        crate::config::environment::check_new_database_name(new).ok()?;
        return Some(Environment::new_database(new, None));
    }
    project
        .environments()
        .ok()?
        .iter()
        .find(|e| e.name == name)
        .cloned()
}

/// A backup file a lock records: its name, and the sha256 its manifest
/// gave it when the record was written (`None` in a record written before
/// it was, or of a file without a manifest).
type Recorded<'a> = (&'a str, Option<&'a str>);

/// The command that restores the backup `file` into `env`, if it is a
/// whole backup of `env` in the backup directory now (a regular file,
/// whose manifest is valid, names it and says it is `env`'s: a restore's
/// safety backup and a pre-migration backup are of the database they
/// protect), the very one recorded (its manifest gives it the sha256 the
/// record does, where the record has one); else that it is not there, and
/// the newest verified backup of `env` that is (older than the one
/// recorded: a run that took the lock since would have told this lock),
/// or that there is none. `restoring` is the backup a killed restore was
/// loading, never named as the way back.
fn way_back(
    project: &Project,
    env: &Environment,
    (file, sha256): Recorded<'_>,
    restoring: Option<Recorded<'_>>,
    which: &str,
) -> String {
    use crate::edge::manifest_file::ManifestFile as _;
    let path = project.backup_dir.join(file);
    let ours = d1_core::names::is_plain_file_name(file)
        && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file())
        && d1_core::manifest::Manifest::for_backup(&path).is_ok_and(|m| {
            m.environment == env.name
                && m.is_whole()
                && sha256.is_none_or(|sha| m.file.sha256 == sha)
        });
    match ours {
        true => crate::steps::migrations::restore_advice(project, &path, env, which, None),
        false => format!(
            "{which}, which it recorded, is not a backup in {} now; {}",
            project.backup_dir.display(),
            newest_way_back(project, env, restoring)
        ),
    }
}

/// The newest verified whole backup of `env` here (what `latest:ENV`
/// restores) but `restoring` and its rows ([`newest_way_back_among`]),
/// with the command that restores it; or that there is none.
fn newest_way_back(
    project: &Project,
    env: &Environment,
    restoring: Option<Recorded<'_>>,
) -> String {
    let entries = crate::edge::inventory::scan(&project.backup_dir).unwrap_or_default();
    match newest_way_back_among(&entries, env, restoring) {
        Some(e) => format!(
            "the newest verified backup of {} here is {}; {}",
            env.name,
            d1_core::names::file_name(&e.file),
            crate::steps::migrations::restore_advice(project, &e.file, env, "that", None)
        ),
        None => format!("no verified backup of {} is here to go back to", env.name),
    }
}

/// Of `entries`, the newest verified whole backup of `env` that is not
/// `restoring` (the backup a killed restore was loading: by the sha256 its
/// manifest records where the lock recorded one, else by its file name)
/// nor of its rows ([`crate::edge::inventory::Entry::is_of_rows`]): going
/// back to either brings back nothing of before that restore.
fn newest_way_back_among<'a>(
    entries: &'a [crate::edge::inventory::Entry],
    env: &Environment,
    restoring: Option<Recorded<'_>>,
) -> Option<&'a crate::edge::inventory::Entry> {
    let loaded = restoring.and_then(|(name, sha256)| {
        entries.iter().find(|e| match sha256 {
            Some(sha) => e.manifest.file.sha256 == sha,
            None => d1_core::names::file_name(&e.file) == name,
        })
    });
    let counted = crate::edge::inventory::counted_for(env, entries);
    let whole: Vec<&crate::edge::inventory::Entry> = { entries.iter() }
        .filter(|e| e.is_whole() && counted(&e.manifest))
        .filter(|e| !loaded.is_some_and(|l| e.is_of_rows(&l.file, l.manifest.content.as_ref())))
        .collect();
    crate::edge::inventory::newest_verified(&whole, chrono::Utc::now()).0
}

/// `name`, if it is one plain word (letters, digits, `._-`) of at most
/// 128 characters: a file name printed as it is, which cannot read as a
/// sentence or a command.
fn one_word(name: &str) -> Option<&str> {
    let plain = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    plain.then_some(name)
}

/// Removes a leftover: a download's own directory whole; a link, not what
/// it leads to.
fn remove(leftover: &Path) -> Result<()> {
    let directory = std::fs::symlink_metadata(leftover).is_ok_and(|m| m.is_dir());
    if directory {
        std::fs::remove_dir_all(leftover)
    } else {
        std::fs::remove_file(leftover)
    }
    .on_path(leftover, || format!("cannot remove {}", leftover.display()))
}

/// Unfinished files (`.….partial`) whose run is gone: each name carries
/// its run's pid (`.verify-<pid>-…`, or `.<name>.<pid>.….partial`). One
/// whose pid names a live process (not a zombie, which has ended) is
/// another run's, still working, and is kept whenever it was written: a
/// process's start by the clock (boot time and its start after it) moves
/// with a clock stepped forward, or a container's own boot time, and would
/// have a live run's file removed; one of a pid given to another process
/// since is kept until that process ends. One with no pid in its name is
/// not this tool's, and is left alone.
fn leftover_partials(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            && name.ends_with(".partial")
            && owner(&name).is_some_and(|pid| !crate::edge::machine::is_running(pid, None))
        {
            found.push(dir.join(name));
        }
    }
    found.sort();
    Ok(found)
}

/// The pid in an unfinished file's name.
fn owner(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix(".verify-") {
        return rest.split('-').next()?.parse().ok();
    }
    name.split('.')
        .find(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

/// The environment whose Time Travel restore a live run is doing now, by
/// the backup lock in `dir`: its holder ran on this machine since it last
/// booted, in this pid namespace (a lock that does not say so, copied
/// from another machine, left by a container on this boot or written by
/// hand, is no run here: its pid names no process of ours), its process
/// exists, and its record says so.
/// Read, never locked: `status` must not make a run that starts meanwhile
/// find the lock taken.
pub fn time_travel_running(dir: &Path) -> Option<String> {
    match live_holder(dir)?.doing {
        Some(crate::edge::lock::Doing::TimeTravel { env, .. }) => Some(env),
        _ => None,
    }
}

/// The environment a live run is restoring a backup into now, by the
/// backup lock in `dir`, judged as [`time_travel_running`] judges its
/// holder: its command (`restore into ENV`, which a drill's restore takes
/// too), which it holds from before the restore journal's `started` to
/// after its end.
pub fn restore_running(dir: &Path) -> Option<String> {
    let holder = live_holder(dir)?;
    { holder.command.strip_prefix("restore into ") }.map(str::to_owned)
}

/// The backup file a live run holding the backup lock in `dir` is placing
/// now: renamed into place, its manifest not yet written. `list`,
/// `status` and `prune` take no lock, and told it as a backup without its
/// manifest, to delete (rvBK 7). A planted lock can only quiet that one
/// warning for a file it names.
pub fn being_placed(dir: &Path) -> Option<String> {
    live_holder(dir)?.placing.map(|p| p.name)
}

/// [`crate::edge::inventory::tell_loose_ends`] of `dir`, passing over the
/// backup a live run is placing ([`being_placed`]): what `list`, `status`
/// and `prune` each say of half backups.
pub fn tell_loose_ends(dir: &Path) {
    crate::edge::inventory::tell_loose_ends(dir, being_placed(dir).as_deref());
}

/// The backup lock's holder in `dir`, when it is a live run on this
/// machine ([`time_travel_running`]); read, never locked.
fn live_holder(dir: &Path) -> Option<Holder> {
    let text =
        crate::edge::fsutil::read_own_text(&dir.join(crate::edge::lock::LOCK_FILE), "lock").ok()?;
    let holder: Holder = serde_json::from_str(&text).ok()?;
    let machine = crate::edge::machine::Machine::read(holder.machine.as_deref()?);
    (machine.run(holder.pid) == crate::edge::machine::Run::Alive).then_some(holder)
}

/// The records of runs gone that left a load or migrations unfinished in
/// the backup lock in `project`'s backup directory (a kill, or
/// [`BackupLock::leave_unsettled`]): its holder's, once its run is gone,
/// and the records it keeps for a later run ([`Holder::kept`]). Each with
/// its environment, told as the next run for that environment tells it
/// ([`told_gone`]): which run, what the database may hold, and the way
/// back, which is withheld as that run withholds it ([`withheld`]). A Time
/// Travel restore is not among them: `status` tells it from its journal.
/// Read, never locked, as [`time_travel_running`] reads it: `status` must
/// not make a run that starts meanwhile find the lock taken.
pub fn left_unfinished(project: &Project) -> Vec<(String, String)> {
    let lock = project.backup_dir.join(crate::edge::lock::LOCK_FILE);
    let Ok(text) = crate::edge::fsutil::read_own_text(&lock, "lock") else {
        return Vec::new();
    };
    let Ok(holder) = serde_json::from_str::<Holder>(&text) else {
        return Vec::new();
    };
    // A holder that does not say where it ran is not judged gone.
    let gone = holder.was_kept
        || holder.machine.as_deref().is_some_and(|machine| {
            let machine = crate::edge::machine::Machine::read(machine);
            machine.run(holder.pid) != crate::edge::machine::Run::Alive
        });
    let gone = gone.then_some(&holder);
    { gone.into_iter().chain(&holder.kept) }
        .filter_map(|dead| {
            let doing = dead.doing.as_ref()?;
            let (Doing::Loading { env, .. } | Doing::Migrating { env, .. }) = doing else {
                return None;
            };
            let command = &dead.command;
            let (told, _) = told_to(doing, project, Reader::Next { dead, command });
            Some((env.clone(), told_gone(dead, &told)))
        })
        .collect()
}

/// A run gone (`dead`) and what it was doing when it stopped (`told`, by
/// [`told_to`]), in the words the next run that takes the lock and
/// `status` both use.
fn told_gone(dead: &Holder, told: &str) -> String {
    let gone = StaleLock {
        holder: Some(dead.clone()),
    };
    format!("{gone}; when it stopped it was {told}")
}

/// The backup file a dead run named and was killed before recording: the
/// file it wrote into the lock just before the rename (`placing`: its name,
/// device, inode and size), if that very file is still there without a
/// manifest. The lock is a file in the backup directory, which anyone may
/// have written, so the name is also held to what such a run leaves: a
/// plain backup name (`backup-<env>-YYYYMMDD-HHMM[-N]`) stamped from about
/// when that run took the lock (a run names its backup just before, so from
/// the minute before) to a day after. Any other file without a manifest (a
/// hand dump copied in, whatever its name, a copy of the dead run's file)
/// is the operator's, never removed.
fn unrecorded_backup(dir: &Path, dead: &Holder) -> Option<PathBuf> {
    use chrono::Timelike as _;
    let placing = dead.placing.as_ref()?;
    let name = placing.name.as_str();
    let since: chrono::DateTime<chrono::Utc> =
        chrono::DateTime::parse_from_rfc3339(&dead.started_at)
            .ok()?
            .into();
    let from = since - chrono::Duration::seconds(i64::from(since.second()) + 60);
    let to = since + chrono::Duration::days(1);
    let stamped = d1_core::manifest::stamp_in_backup_name(name)
        .and_then(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d-%H%M").ok())
        .is_some_and(|at| (from..=to).contains(&at.and_utc()));
    let plain = d1_core::names::is_plain_file_name(name);
    let path = dir.join(name);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    let left = placing.is(&meta) && !d1_core::manifest::manifest_path(&path).exists();
    (stamped && plain && left).then_some(path)
}

/// What a prune killed between a backup's two deletes left
/// ([`crate::edge::lock::Holder::pruning`]): its manifest without the
/// backup (the file goes first; a backup without its manifest is never
/// removed), with why it is removed. Only on a prune's record, of a backup name and its
/// manifest's, plain names in `dir`, and only the very file recorded (its
/// device, inode and size) whose partner is gone: a whole backup (killed
/// before either delete), a file given the name since, or anything a
/// planted record names elsewhere is left.
fn half_pruned(dir: &Path, dead: &Holder) -> Option<(PathBuf, String)> {
    let pruning = dead.pruning.as_ref().filter(|_| dead.command == "prune")?;
    let (backup, manifest) = (&pruning.backup, &pruning.manifest);
    let paired =
        d1_core::names::file_name(&d1_core::manifest::manifest_path(Path::new(&backup.name)))
            == manifest.name;
    let plain = [&backup.name, &manifest.name]
        .iter()
        .all(|n| d1_core::names::is_plain_file_name(n) && n.starts_with("backup-"));
    if !(paired && plain) {
        return None;
    }
    let meta = |name: &str| std::fs::symlink_metadata(dir.join(name)).ok();
    let name = &backup.name;
    let who = dead.who();
    match (meta(&backup.name), meta(&manifest.name)) {
        (None, Some(m)) if manifest.is(&m) => Some((
            dir.join(&manifest.name),
            format!(
                "{who} was deleting backup {name} when it was killed or its delete of this \
                 manifest failed, and had deleted its file but not this manifest, which records \
                 a backup no longer there"
            ),
        )),
        // A backup without its manifest is no prune's leftover (it deletes
        // the file first): the manifest was moved or removed since, by
        // someone else, and the backup's data stays (rvZ).
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unfinished file the tool writes names its run's pid, and only
    /// that number is read as one (not a backup name's date).
    #[test]
    fn an_unfinished_files_run_is_read_from_its_name() {
        for (name, pid) in [
            (".backup-prod-20261201-1106.7754.sql.partial", Some(7754)),
            (
                ".backup-prod-20261201-1106.manifest.json.7754.partial",
                Some(7754),
            ),
            (
                ".verify-7754-backup-prod-20261201-1106.sql.sqlite.partial",
                Some(7754),
            ),
            (".verify-7754-arriving.sqlite.partial", Some(7754)),
            (".manifest.7754.download.partial", Some(7754)),
            ("..lock.7754.partial", Some(7754)),
            (".hand-made.partial", None),
        ] {
            assert_eq!(owner(name), pid, "{name}");
        }
    }

    /// A Time Travel restore is running only by a lock its holder wrote on
    /// this machine, since it booted, in this pid namespace, and while its
    /// process lives: a lock copied from a CI container, whose pid 1 lives
    /// on every machine, one of a container on this boot (its pids are
    /// not ours), one left before a restart, or one that does not name
    /// its machine, is no run here.
    #[test]
    fn a_time_travel_restore_runs_only_by_a_lock_written_on_this_machine() {
        use crate::edge::lock::{Doing, Holder, LOCK_FILE};
        let dir = tempfile::tempdir().unwrap();
        let lock = |pid: u32, machine: Option<String>| {
            let holder = Holder {
                pid,
                started_at: "2026-11-30T10:00:00Z".into(),
                command: "time-travel restore prod".into(),
                doing: Some(Doing::TimeTravel {
                    env: "prod".into(),
                    to: "00000085-0000024c-00004c6d-8e61117bf38d4adb71b3342e9b8e0001".into(),
                    undo: "00000085-0000024c-00004c6d-8e61117bf38d4adb71b3342e9b8e0000".into(),
                }),
                placing: None,
                pruning: None,
                machine,
                repository: None,
                kept: Vec::new(),
                was_kept: false,
                stopped_by: None,
                running: None,
            };
            std::fs::write(
                dir.path().join(LOCK_FILE),
                serde_json::to_string(&holder).unwrap(),
            )
            .unwrap();
            time_travel_running(dir.path())
        };
        let read = |file: &str| std::fs::read_to_string(file).unwrap().trim().to_owned();
        let host = read("/proc/sys/kernel/hostname");
        let boot = read("/proc/sys/kernel/random/boot_id");
        let ns: String = { std::fs::read_link("/proc/self/ns/pid").unwrap() }
            .to_string_lossy()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let at =
            |boot: &str, ns: &str| Some(format!("host {host}\nboot {boot}\npid-namespace {ns}"));
        let me = std::process::id();
        assert_eq!(lock(me, at(&boot, &ns)), Some("prod".to_owned()));
        assert_eq!(lock(u32::MAX, at(&boot, &ns)), None, "its run is gone");
        let before = "00000000-0000-0000-0000-000000000000";
        assert_eq!(lock(me, at(before, &ns)), None, "left before a restart");
        assert_eq!(lock(me, at(&boot, "1")), None, "a container's");
        assert_eq!(lock(1, Some("ci-runner-7 0f3c".to_owned())), None);
        assert_eq!(lock(1, None), None);
        // An older version's record of this boot is read as it was.
        assert_eq!(lock(me, Some(format!("boot {boot}"))), Some("prod".into()));
    }

    /// The way back told for a killed restore is never the backup it was
    /// loading, nor one of the same rows (`restore latest:prod --to prod`
    /// with its safety backup pruned): restoring either brings back
    /// nothing of before.
    #[test]
    fn the_way_back_from_a_killed_restore_is_not_the_backup_it_loaded() {
        use crate::edge::inventory::tests::{entry, repo_environment};
        let prod = repo_environment("prod");
        let dir = tempfile::tempdir().unwrap();
        let mut entries = vec![
            entry("prod", "full", 20, Some("good")),
            entry("prod", "full", 10, Some("good")),
            entry("prod", "full", 0, Some("good")),
        ];
        for (i, e) in entries.iter_mut().enumerate() {
            e.file = dir.path().join(e.file.file_name().unwrap());
            // One byte each, of its own: three files, three sha256s.
            std::fs::write(&e.file, ["x", "y", "z"][i]).unwrap();
            e.manifest.file.sha256 = fsutil::sha256_file(&e.file).unwrap().0;
            e.manifest.database.name = prod.database_name.clone();
            e.manifest.database.uuid = prod.database_id.clone();
            let rows = if i < 2 { "same" } else { "before" };
            e.manifest.content = Some([("t".to_owned(), rows.to_owned())].into());
        }
        let name = |e: Option<&crate::edge::inventory::Entry>| {
            e.map(|e| d1_core::names::file_name(&e.file))
        };
        let newest = newest_way_back_among(&entries, &prod, None);
        assert_eq!(name(newest).as_deref(), Some("backup-prod-20.sql"));
        let back = newest_way_back_among(&entries, &prod, Some(("backup-prod-20.sql", None)));
        assert_eq!(name(back).as_deref(), Some("backup-prod-0.sql"));
        // The backup loaded is the one whose manifest records the sha256
        // the lock does, whatever file has its name now: here the oldest,
        // so the newest is the way back.
        let oldest = &entries[2].manifest.file.sha256;
        let loaded = Some(("backup-prod-20.sql", Some(oldest.as_str())));
        let back = newest_way_back_among(&entries, &prod, loaded);
        assert_eq!(name(back).as_deref(), Some("backup-prod-20.sql"));
    }

    /// A project of this checkout's configuration, its backups in `dir`.
    fn project(dir: &Path) -> Project {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        Project {
            root: root.to_owned(),
            tool_root: root.to_owned(),
            config: root.join("wrangler.toml"),
            config_dir: root.to_owned(),
            backup_dir: dir.to_owned(),
            database: None,
        }
    }

    /// The record a run of `command` killed while `doing` left.
    fn killed(command: &str, doing: &Doing) -> Holder {
        Holder {
            pid: 7,
            started_at: "2026-12-01T03:00:00Z".into(),
            command: command.into(),
            doing: Some(doing.clone()),
            placing: None,
            pruning: None,
            machine: None,
            repository: None,
            kept: Vec::new(),
            was_kept: false,
            stopped_by: None,
            running: None,
        }
    }

    /// GP: a run for another environment keeps every genuine record of a
    /// half-done step of prod's, whether or not it has a way back: a killed
    /// `migrate prod --no-backup`, or a load into prod that took no safety
    /// backup, leaves prod half-done all the same, and the next run for
    /// prod must be told so. The run for prod itself keeps nothing.
    #[test]
    fn a_half_done_record_of_another_environment_is_kept_with_or_without_a_way_back() {
        let dir = tempfile::tempdir().unwrap();
        let project = project(dir.path());
        let migrating = |backup: Option<&str>| Doing::Migrating {
            env: "prod".into(),
            backup: backup.map(str::to_owned),
            backup_sha256: None,
        };
        let loading = |safety: Option<&str>| Doing::Loading {
            env: "prod".into(),
            backup: "backup-staging-20261201-0300.sql".into(),
            backup_sha256: None,
            safety: safety.map(str::to_owned),
            safety_sha256: None,
            migrations_first: true,
            checking: false,
        };
        for (command, doing) in [
            ("migrate prod", migrating(None)),
            (
                "migrate prod",
                migrating(Some("backup-prod-20261201-0259.sql")),
            ),
            ("restore into prod", loading(None)),
            (
                "restore into prod",
                loading(Some("backup-prod-20261201-0259.sql")),
            ),
        ] {
            let dead = killed(command, &doing);
            let next = |command| Reader::Next {
                dead: &dead,
                command,
            };
            let (told, kept) = told_to(&doing, &project, next("backup staging"));
            assert!(kept, "`{command}` is not kept by a run for staging: {told}");
            let (told, kept) = told_to(&doing, &project, next("backup prod"));
            assert!(!kept, "`{command}` is kept by a run for prod: {told}");
        }
    }

    /// What the next `backup local` is told of a load into local killed
    /// while "loading", which recorded no sha256, of a backup whose file in
    /// the backup directory (the tempdir returned) holds `contents`: the
    /// directory, the backup's name, and the text.
    fn told_of_a_killed_local_load(contents: &str) -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let project = project(dir.path());
        let backup = "backup-local-20261201-0300.sql";
        std::fs::write(dir.path().join(backup), contents).unwrap();
        let doing = Doing::Loading {
            env: "local".into(),
            backup: backup.into(),
            backup_sha256: None,
            safety: None,
            safety_sha256: None,
            migrations_first: false,
            checking: false,
        };
        let dead = killed("restore into local", &doing);
        let next = Reader::Next {
            dead: &dead,
            command: "backup local",
        };
        let (told, _) = told_to(&doing, &project, next);
        (dir, backup.to_owned(), told)
    }

    /// rvW: a local restore killed as its load committed (the record still
    /// says "loading") left a database holding either all of the backup or
    /// what it held before; the next run said the load is undone, whole,
    /// which a committed load is not. It says both, and how to tell which.
    #[test]
    fn a_local_load_killed_as_it_committed_is_told_as_either_with_how_to_tell() {
        let (_dir, _, told) = told_of_a_killed_local_load("x");
        // No sha256 recorded (a dump with no manifest): BACKUP stands for it.
        let diff = "`cargo xtask diff BACKUP live:local`";
        assert!(
            told.contains("qbtime_db_local holds either all of the backup or what it held before")
                && told.contains(diff)
                && !told.contains("undone, whole, when"),
            "{told}"
        );
    }

    /// rvZ: a load of a dump with no manifest records no sha256, so a file
    /// of the same name in the backup directory may be another backup (the
    /// dump was loaded from elsewhere). The diff that tells is given with
    /// BACKUP, never naming that file as the one loaded.
    #[test]
    fn a_load_with_no_sha256_never_names_a_file_of_its_name_as_the_one_loaded() {
        let (dir, backup, told) = told_of_a_killed_local_load("another backup");
        assert!(
            told.contains("`cargo xtask diff BACKUP live:local`")
                && !told.contains(&dir.path().join(&backup).display().to_string()),
            "{told}"
        );
    }

    /// GP: five records of killed runs for prod, found by a run for
    /// staging: the lock keeps four, the newest, and each is told whether
    /// it is kept, decided before it is told; the oldest is told it is
    /// dropped, never that the lock keeps it.
    #[test]
    fn a_record_the_lock_has_no_room_for_is_told_dropped_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let project = project(dir.path());
        let migrating = Doing::Migrating {
            env: "prod".into(),
            backup: None,
            backup_sha256: None,
        };
        let dead = |pid: u32, hour: u32| Holder {
            pid,
            started_at: format!("2026-12-01T0{hour}:00:00Z"),
            ..killed("migrate prod", &migrating)
        };
        let stale = StaleLock {
            holder: Some(Holder {
                kept: vec![dead(11, 1), dead(12, 2), dead(13, 3), dead(14, 4)],
                ..dead(10, 0)
            }),
        };
        let (mut lock, _) = BackupLock::acquire(dir.path(), "backup staging", dir.path()).unwrap();
        let told = stale_told(&stale, &project, "backup staging", &mut lock).unwrap();
        assert_eq!(told.len(), 5, "{told:#?}");
        let dropped = told.iter().find(|t| t.contains("pid 10 ")).unwrap();
        assert!(
            dropped.contains("not kept") && !dropped.contains("is kept for"),
            "{dropped}"
        );
        for t in told.iter().filter(|t| !t.contains("pid 10 ")) {
            assert!(t.contains("kept for the next run for prod"), "{t}");
        }
        drop(lock);
        let text = std::fs::read_to_string(dir.path().join(crate::edge::lock::LOCK_FILE)).unwrap();
        assert!(!text.contains("\"pid\":10,"), "{text}");
    }

    /// rvU: a `.….partial` whose pid names a live process is that run's,
    /// however long before the process's start (`/proc/stat`'s btime and
    /// its start, by the clock) it was last written: a clock stepped
    /// forward, or a container's own btime, would have a live verify's
    /// scratch database removed as a leftover by a concurrent backup.
    #[test]
    fn an_unfinished_file_of_a_live_process_is_kept_whenever_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let file = format!(
            ".verify-{}-backup-prod-20261201-1106.sqlite.partial",
            live.id()
        );
        std::fs::write(dir.path().join(&file), "x").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let opened = std::fs::File::options()
            .write(true)
            .open(dir.path().join(&file));
        opened.unwrap().set_modified(hour_ago).unwrap();
        let found = leftover_partials(dir.path()).unwrap();
        let _ = live.kill();
        let _ = live.wait();
        assert_eq!(found, Vec::<PathBuf>::new());
    }

    /// atkAU: a `.….partial` with no pid in its name (an operator's own,
    /// a directory even) is not this tool's, and is never removed; one of
    /// a run gone is, and one of a run alive is not.
    #[test]
    fn only_the_unfinished_files_of_runs_gone_are_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let gone = format!(".backup-prod-20261201-1106.{}.sql.partial", u32::MAX - 1);
        let alive = format!(
            ".backup-prod-20261201-1106.{}.sql.partial",
            std::process::id()
        );
        for file in [&gone, &alive] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join(".hand-made.partial")).unwrap();
        assert_eq!(
            leftover_partials(dir.path()).unwrap(),
            [dir.path().join(gone)]
        );
    }
}
