//! The guards on the backup against its target: its environment, its
//! binding, its database, its scope and its migrations, and the triggers
//! that could not run; the warnings about a safety backup restored or
//! already held.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;

use super::{KeyCheck, KeyRefusal, Mode, RestoreArgs, Source};
use crate::config::environment::{Environment, Environments, Location};
use crate::config::project::Project;
use crate::edge::manifest_file::ManifestFile;
use crate::steps::backup::{AS_D1_EXPORT_SHOWS, may_differ_said, written_alike_in};
use d1_core::manifest::Manifest;
use d1_core::names::file_name;

/// How a restore's safety backup states its reason; the rest is the
/// backup's file name.
pub(crate) const SAFETY_REASON: &str = "safety backup before restoring ";

/// What a restore's safety backup holding the very rows of the backup
/// restored says: the target already held them.
pub(super) enum AlreadyHeld {
    /// Its own rows (most often a backup just taken of it): the line that
    /// says no row changed, said after the way back.
    Own(String),
    /// Rows an earlier restore put there: this run's safety backup brings
    /// back nothing older. The warning that says so, and the one way back
    /// printed (rvCG), to the backup from before those rows.
    Older {
        warning: String,
        way_back: String,
        file: std::path::PathBuf,
    },
}

/// Whether the safety backup holds the very rows of the backup restored,
/// as their content digests tell.
pub(super) fn holds_its_rows(source: &Source, safety: Option<&Path>) -> bool {
    let wanted = source.manifest.as_ref().and_then(|m| m.content.as_ref());
    let held = safety.and_then(|s| Manifest::for_backup(s).ok());
    wanted.is_some() && held.is_some_and(|h| h.content.as_ref() == wanted)
}

/// A safety backup with the very rows of the backup restored: the target
/// already held them. Most often it is a backup just taken of it, and one
/// line says no row changed. When an earlier restore of these rows landed
/// (remote: run to its end, or interrupted and its load finished by D1:
/// the backups here do not tell which, so the warning claims neither),
/// this run's safety backup brings back nothing of before: the way back is
/// the safety backup taken before that earlier restore; or, that one gone
/// (pruned), the newest backup of the target here from before those rows.
/// `None` when the target held other rows.
pub(super) fn already_held(
    project: &Project,
    source: &Source,
    target: &Environment,
    safety: &Path,
    identity: Option<&Path>,
) -> Option<AlreadyHeld> {
    let wanted = source.manifest.as_ref().and_then(|m| m.content.as_ref())?;
    let held = Manifest::for_backup(safety).ok()?;
    if held.content.as_ref() != Some(wanted) {
        return None;
    }
    let entries = crate::edge::inventory::scan(&project.backup_dir).unwrap_or_default();
    let taken = source.manifest.as_ref().map(|m| m.created_at);
    let advice = |file: &Path| {
        crate::steps::migrations::restore_advice(project, file, target, "it", identity)
    };
    let (database, backup) = (&target.database_name, file_name(&source.file));
    // A local restore that did not run to its end changed nothing (its
    // load is one transaction); a remote one's load D1 may have finished.
    let landed = match target.location {
        Location::Remote => {
            "an earlier restore of them landed (run to its end, or interrupted and finished by \
             D1)"
        }
        Location::Local => "an earlier restore of them put them there",
    };
    let nothing_older = format!(
        "so this run's safety backup, {}, brings back nothing older",
        file_name(safety)
    );
    Some(
        match held_before(&entries, (&source.file, taken), target, safety, wanted) {
            HeldBefore::Own => AlreadyHeld::Own(held_own(source, target, &held)),
            HeldBefore::Restored(earlier) => AlreadyHeld::Older {
                warning: format!(
                    "{database} already held every row of {backup} before this run: {landed}, \
                     {nothing_older}. The safety backup taken before that restore is {}; it \
                     is the way back.",
                    earlier.display()
                ),
                way_back: format!(
                    "The way back is the safety backup taken before the earlier restore of \
                     these rows, {}; {}",
                    earlier.display(),
                    advice(&earlier)
                ),
                file: earlier,
            },
            HeldBefore::SafetyGone(newest) => AlreadyHeld::Older {
                warning: format!(
                    "{database} already held every row of {backup} before this run, and other \
                     rows after {backup} was taken: {landed}, and the safety backup it took is \
                     no longer in {} (pruned?), {nothing_older}. The newest backup of {} here \
                     from before those rows is {}; it is the way back.",
                    project.backup_dir.display(),
                    target.name,
                    newest.display()
                ),
                way_back: format!(
                    "The way back is the newest backup of {} here from before the rows \
                     restored, {}; {}",
                    target.name,
                    newest.display(),
                    advice(&newest)
                ),
                file: newest,
            },
        },
    )
}

/// The line that says the target held the backup's rows, its own: that
/// the restore changed none. A remote target's safety backup is D1's
/// export, as the backup's digests are unless it is a local one: what they
/// tell apart is said.
fn held_own(source: &Source, target: &Environment, held: &Manifest) -> String {
    let (database, backup) = (&target.database_name, file_name(&source.file));
    let through_export = target.location == Location::Remote;
    let may_differ = through_export.then(|| {
        let mut tables = written_alike_in(source.manifest.as_ref(), &source.wide_integers);
        tables.extend(written_alike_in(Some(held), &BTreeMap::new()));
        may_differ_said(&tables)
    });
    let seen = match through_export {
        true => format!(" {AS_D1_EXPORT_SHOWS}"),
        false => String::new(),
    };
    format!(
        "{database} already held every row of {backup}{seen}: {}",
        changed_no_row(source, may_differ.flatten().as_deref())
    )
}

/// That a restore of rows the target already held changed none, but for
/// the virtual tables the backup could not hold whole (a contentless FTS5
/// index, recreated empty), which it names: the warning after says why.
/// `may_differ` ([`may_differ_said`]): the tables whose values D1's export,
/// which both sides were read through, writes alike, so that no row changed
/// only as far as it shows.
fn changed_no_row(source: &Source, may_differ: Option<&str>) -> String {
    let lost: Vec<String> = { source.virtual_tables.iter() }
        .filter(|vt| vt.lost_by_a_backup().is_some())
        .map(|vt| d1_core::names::shown_name(&vt.name).into_owned())
        .collect();
    let recreated = || {
        format!(
            "recreated {} empty (see the warning below)",
            d1_core::wording::listed(&lost, "virtual table")
        )
    };
    let shown = "this restore changed none that export shows, but";
    match (may_differ, lost.is_empty()) {
        (None, true) => "this restore changed no row.".to_owned(),
        (None, false) => format!(
            "this restore changed no row of its tables, but {}.",
            recreated()
        ),
        (Some(differ), true) => format!("{shown} {differ}."),
        (Some(differ), false) => format!("{shown} {differ}; and it {}.", recreated()),
    }
}

/// Where the rows `wanted`, which the target held before this run, came
/// from, as the backups here tell.
#[derive(Debug)]
enum HeldBefore {
    /// The target's own: a backup just taken of them, or nothing says
    /// otherwise.
    Own,
    /// An earlier restore of them, and the safety backup it took.
    Restored(std::path::PathBuf),
    /// An earlier restore whose safety backup is gone (pruned): the target
    /// held other rows after the backup restored was taken. The newest
    /// backup of it here from before those rows.
    SafetyGone(std::path::PathBuf),
}

/// Going back from this run's safety backup (newest first, as
/// [`d1_core::order`] has it: one a fast clock dated after it was taken
/// before it; all of the target's, when it is missing from the listing),
/// past the target's backups that hold these rows, the first that does
/// not is a safety backup taken before restoring this backup, or another
/// of these rows: the earlier restore's. A backup of part of the target
/// (`--table`, data- or schema-only) is passed over. Another restore's
/// safety backup, or a backup of other rows, is no such undo point; but a
/// whole backup of other rows taken after the backup restored says they
/// came back since, by a restore whose safety backup is no longer here.
/// `source` is the backup restored: its path and when it was taken.
fn held_before(
    entries: &[crate::edge::inventory::Entry],
    source: (&Path, Option<chrono::DateTime<chrono::Utc>>),
    target: &Environment,
    safety: &Path,
    wanted: &BTreeMap<String, String>,
) -> HeldBefore {
    let (source_file, taken) = source;
    let source_name = file_name(source_file);
    let of_these_rows = |name: &str| {
        name == source_name || { entries.iter() }
            .any(|e| file_name(&e.file) == name && e.is_of_rows(source_file, Some(wanted)))
    };
    let from = { entries.iter() }
        .position(|e| e.file.file_name() == safety.file_name())
        .map_or(0, |at| at + 1);
    let Some(before) = entries[from..]
        .iter()
        .filter(|e| target.records(&e.manifest) && e.file.file_name() != safety.file_name())
        .filter(|e| e.is_whole())
        .find(|e| !e.is_of_rows(source_file, Some(wanted)))
    else {
        return HeldBefore::Own;
    };
    let restored =
        { before.manifest.reason.as_deref() }.and_then(|r| r.strip_prefix(SAFETY_REASON));
    if before.manifest.content.is_some() && restored.is_some_and(of_these_rows) {
        return HeldBefore::Restored(before.file.clone());
    }
    let since = before.is_whole()
        && before.manifest.content.is_some()
        && taken.is_some_and(|t| before.manifest.created_at > t);
    match since {
        true => HeldBefore::SafetyGone(before.file.clone()),
        false => HeldBefore::Own,
    }
}

/// `--to new:NAME --clean` takes a data-only backup: the migrations make
/// the schema and the backup brings the rows. A backup that brings its own
/// schema (full, schema-only) goes in without --clean.
pub(super) fn guard_clean_new_scope(source: &Source, target: &Environment) -> Result<()> {
    let Some(m) = source.manifest.as_ref().filter(|m| m.mode != "data-only") else {
        return Ok(());
    };
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{} is a {} backup: it brings its own schema, and --clean is for a data-only backup, \
         whose rows go into the schema the migrations make. Restore it to new:{} without \
         --clean{}. Nothing was done.",
        source.file.display(),
        m.mode,
        target.database_name,
        if m.mode == "schema-only" {
            " and with --partial, for a database with its tables and no rows"
        } else {
            ""
        }
    )
}

/// `--to new:NAME --clean` applies the migrations of the database the
/// backup was taken from ([`super::source::migrations_dir_for`]): a dump without a
/// manifest names none unless `--source-env` does, a manifest may name a
/// database no environment of the configuration names now (`known` is
/// whether one was found), and the new database's default `migrations/`
/// may be no database's, or another's.
pub(super) fn guard_clean_new_migrations_known(
    source: &Source,
    target: &Environment,
    known: bool,
) -> Result<()> {
    if known {
        return Ok(());
    }
    if let Some(m) = &source.manifest {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{}'s manifest records the database {} ({}), which no environment of the \
             configuration names now, so which migrations make the schema its rows go into is \
             unknown. Put that database back in the configuration, or add --source-env ENV, \
             naming the environment whose migrations it was taken at; their migrations_dir is \
             applied to new:{}, and the manifest's record of its migrations must match them. \
             Nothing was done.",
            source.file.display(),
            d1_core::names::shown(&m.database.name),
            d1_core::names::shown(&m.environment),
            target.database_name
        )
    }
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{} has no manifest to say which database it was taken from, so which migrations make \
         the schema its rows go into is unknown: name that database's environment with \
         --source-env ENV, whose migrations_dir is applied to new:{}. Nothing was done.",
        source.file.display(),
        target.database_name
    )
}

/// Refuses a backup whose dump creates a trigger that its migrations do
/// not: a trigger runs on every later write that matches it, long after
/// this restore and its checks, so a planted one (every new account made
/// an admin) would outlive them. The reference is the migrations the
/// backup records as applied, run in memory from the target's
/// `migrations_dir`; a dump without a manifest is judged against every
/// migration there, and refused the same: a manifest can only vouch for
/// more, never less, and deleting a planted backup's manifest (or copying
/// the dump without it) must not turn the refusal into a warning (rvAT).
/// A trigger meant is installed by name with `--allow-trigger NAME`, which
/// the way back from a safety backup carries for the triggers the target
/// held ([`crate::steps::migrations::way_back_triggers`]). Names match as
/// SQLite matches them, ASCII case ignored. A backup that lacks a trigger
/// those migrations create ([`missing_triggers_judged`]) is refused too,
/// in the same refusal ([`TriggersRefused`]: every trigger named, and one
/// restore carrying every flag, LS). When the migrations cannot be run
/// (one does not run here, or cannot be read), the guard fails closed
/// ([`triggers_unchecked`]), and the
/// triggers of those before it, which ran, are required all the same. The
/// migrations applied are not the backup's records alone: those whose
/// tables or triggers its dump holds count too, whatever its records say
/// ([`crate::steps::migrations::triggers_required`]), so a forged
/// `"migrations": []` is no weaker than no manifest (LN); records that
/// leave them out are named inconsistent with the dump. A migration
/// edited since it was applied was refused before this guard
/// ([`guard_applied_migrations_unchanged`]). A clean restore loads no DDL
/// from the dump and is not concerned: its migrations make their triggers.
/// Returns the migrations' triggers the backup lacks that
/// `--allow-missing-trigger` named (restored without them), and the parts
/// of the refusal with their flags ([`guard_definitions`] says them); the
/// parts no flag answers (an `--allow-trigger` naming nothing, another
/// body under a migration's trigger name) go into `unflagged`, said in the
/// same refusal (MT: they came alone, and the key's and the flags' in a
/// second round).
fn guard_triggers(
    source: &Source,
    (target, dir): (&Environment, &Path),
    args: &RestoreArgs,
    (required, triggers, schema): Judged<'_>,
    unflagged: &mut Vec<Unflagged>,
) -> (Vec<String>, Vec<Refused>) {
    let tables = tables_in(schema);
    let made = &required.made;
    let foreign = { required.unrun.is_none() }.then(|| {
        d1_core::catalog::foreign_triggers(triggers, &crate::steps::migrations::texts(made))
    });
    unflagged.extend(an_allowed_trigger_not_created(
        args,
        triggers,
        foreign.as_deref(),
    ));
    // No flag installs these: named as the dump's to fix, not among the
    // foreign triggers `--allow-trigger` installs.
    let foreign = foreign.map(|foreign| {
        let (altered, refused) =
            another_body_under_a_migrations_name(source, dir, triggers, &foreign);
        unflagged.extend(refused);
        { foreign.into_iter() }
            .filter(|t| !altered.contains(t))
            .collect::<Vec<_>>()
    });
    let (missing, lacking) =
        missing_triggers_judged(source, (target, args, dir), required, (triggers, &tables));
    let unmade = match &required.unrun {
        Some(e) => triggers_unchecked(source, (target, dir), args, triggers, e),
        None => {
            if !required.unrecorded.is_empty() {
                crate::warn!(
                    "{}: {}.",
                    source.file.display(),
                    crate::steps::migrations::unrecorded_said(&required.unrecorded)
                );
            }
            foreign_triggers_judged(source, (target, args, dir), foreign.unwrap_or_default())
        }
    };
    // LS: both are known from the same dump, and independent: one refusal
    // names both, with one restore carrying every flag, where the first
    // alone (`--allow-missing-trigger`) was refused again for the second.
    let refused: Vec<Refused> = [lacking, unmade].into_iter().flatten().collect();
    (missing, refused)
}

/// The triggers `foreign` the backup creates that no migration it records
/// as applied creates (or, without a manifest, none in `dir`): those
/// `--allow-trigger` names are installed, with a warning; the rest are
/// refused, their part of the refusal and their flags returned.
fn foreign_triggers_judged(
    source: &Source,
    (target, args, dir): (&Environment, &RestoreArgs, &Path),
    foreign: Vec<String>,
) -> Option<(String, String)> {
    let (allowed, refused): (Vec<String>, Vec<String>) = foreign
        .into_iter()
        .partition(|t| allows(&args.allow_trigger, t));
    if !allowed.is_empty() {
        crate::warn!(
            "{} creates triggers that no migration creates, {} as --allow-trigger names \
             them: {}. They will run on later writes to {}.",
            source.file.display(),
            as_done(args, "installed"),
            crate::steps::migrations::trigger_names(&allowed),
            target.database_name
        );
    }
    if refused.is_empty() {
        return None;
    }
    let names = crate::steps::migrations::trigger_names(&refused);
    let which = match (&source.manifest, source.applied()) {
        (Some(_), _) => {
            "the migrations it records as applied do not create (or create otherwise)".to_owned()
        }
        // Held to the migrations its own d1_migrations rows name, not to
        // every file (MP): say so, not "no migration in DIR".
        (None, Some(_)) => format!(
            "the migrations in {} that its own d1_migrations rows record as applied do not \
             create (or create otherwise; it has no manifest)",
            dir.display()
        ),
        (None, None) => format!(
            "no migration in {} creates (it has no manifest, which could only have vouched \
             for more)",
            dir.display()
        ),
    };
    let flags = crate::steps::migrations::allow_trigger_flags(&refused);
    Some((
        format!(
            "{} creates triggers that {which}: {names}. A trigger runs on every later write it \
             matches, after this restore's checks, so this backup is refused; if the trigger is \
             meant, it belongs in a migration, or, having read it, restore with{flags}.",
            source.file.display(),
        ),
        flags,
    ))
}

/// What a flag's warning says is done with what it names: `done` in a
/// restore, "would be" so in a dry run, which ends "nothing was changed"
/// (rvBN: a dry run said the table was "restored as it has them").
fn as_done(args: &RestoreArgs, done: &str) -> String {
    match args.dry_run {
        true => format!("would be {done}"),
        false => done.to_owned(),
    }
}

/// A part of a refusal a flag answers: what it says, and its flags.
type Refused = (String, String);

/// What the trigger and schema guards judge: the migrations' run in
/// memory ([`crate::steps::migrations::triggers_required`], once for
/// both), and the dump's triggers (by name, their text) and schema
/// statements.
type Judged<'a> = (
    &'a crate::steps::migrations::Required,
    &'a BTreeMap<String, String>,
    &'a [String],
);

/// The backup's triggers ([`guard_triggers`]), then its tables and indexes
/// ([`guard_schema`]), judged against its migrations: what the dump
/// defines that acts on later writes. Every part a flag answers is said in
/// one refusal ([`TriggersRefused`]), with one restore (a drill: one
/// drill) carrying every flag, `--allow-schema-change` too, where the
/// trigger refusal used to come alone and the schema's in a second round
/// (LX2). A refusal for the backup's data-encryption key (`key`,
/// [`super::KeyRefusal`]) is said in it too, and its flag carried, where
/// it used to come alone, and the triggers' in a second round (MF); the
/// key's result (`key_check`) is returned as it is when nothing else is
/// refused. So are the parts no flag answers ([`Unflagged`]), and the
/// refusals `deferred` to it ([`Deferred`]: a target not empty without
/// `--replace`, MT; the backup's scope and the origin only the operator
/// may say, ND), each answered in the restore printed (each came alone,
/// the others in a later round); each alone is refused as it was. Returns the migrations' triggers the backup lacks
/// that `--allow-missing-trigger` named: restored without them.
pub(super) fn guard_definitions(
    source: &Source,
    (target, dir): (&Environment, &Path),
    args: &RestoreArgs,
    (triggers, schema, key_check, mut deferred, surveyed): Dumped<'_>,
) -> Result<(KeyCheck, Vec<String>)> {
    // The key's refusal waits for the guards, to be said with theirs.
    let key_check = match key_check {
        Err(e) if crate::exit::find::<KeyRefusal>(&e).is_none() => return Err(e),
        checked => checked,
    };
    if args.mode() == Mode::Clean {
        if let Some(first) = deferred.into_iter().next() {
            return Err(first.alone);
        }
        return Ok((key_check?, Vec::new()));
    }
    // One run of the migrations in memory for both guards (rvMD 2: each
    // ran them again).
    let applied = source.applied();
    let tables = tables_in(schema);
    let held = crate::steps::migrations::held_names(&tables, triggers);
    let required = crate::steps::migrations::triggers_required(applied, dir, &held);
    d1_core::interrupt::check()?;
    let judged = (&required, triggers, schema);
    let mut unflagged = Vec::new();
    let (without, mut refused) =
        guard_triggers(source, (target, dir), args, judged, &mut unflagged);
    refused.extend(guard_schema(
        source,
        (target, dir),
        args,
        judged,
        &mut unflagged,
    )?);
    let key = { key_check.as_ref().err() }.and_then(crate::exit::find::<KeyRefusal>);
    if refused.is_empty() && unflagged.is_empty() {
        warn_of_plain_indexes_unmade(source, target, judged);
    }
    let parts = refused.len() + unflagged.len() + usize::from(key.is_some());
    if let (0, [_]) = (parts, &deferred[..]) {
        return Err(deferred.remove(0).alone);
    }
    if parts + deferred.len() <= 1 {
        if let Some(alone) = unflagged.pop() {
            return Err(alone.alone);
        }
        if refused.is_empty() {
            guard_virtual_parents(source, surveyed)?;
            return Ok((key_check?, without));
        }
    }
    let key = key.map(ToString::to_string);
    let parts = (key, deferred, unflagged, refused);
    Err(refused_together(source, args, parts))
}

/// A refusal that waits for the trigger and schema guards, to be said in
/// one refusal with theirs and the key's ([`guard_definitions`]) where it
/// used to come alone, before them (ND: the operator fixed one and met
/// the next): as it is refused alone, and how the restore printed
/// answers it.
pub(super) struct Deferred {
    pub(super) alone: anyhow::Error,
    pub(super) answer: Answer,
}

/// What the restore printed with a [`Deferred`] refusal changes.
pub(super) enum Answer {
    /// `--replace`, for a target that is not empty; `fast`: without
    /// `--via-wrangler`, which would refuse its drops (a name of the
    /// target's holds the text wrangler's local execute cuts).
    Replace { fast: bool },
    /// `--partial` given (for a backup that is not whole) or left out
    /// (for a whole one).
    Partial(bool),
    /// `--previous-database-id` naming the id the manifest records, for a
    /// backup of production's replaced database; `None`: left out, where
    /// it does nothing.
    PreviousDatabaseId(Option<String>),
    /// `--source-env` naming the target's environment, for a dump of
    /// unknown origin into production.
    SourceEnv(String),
}

impl Deferred {
    pub(super) fn new(alone: anyhow::Error, answer: Answer) -> Deferred {
        Deferred { alone, answer }
    }

    /// `again`, the restore to print, with this refusal answered; a name
    /// left out is added to `untaken`. A confirmation given is not carried
    /// into a restore that says or does more than the one confirmed
    /// (rvBQ 1: the printed `--replace --yes`, pasted, dropped every table
    /// without a question): `--replace`, a scope other than the one asked
    /// for, and what only the operator may say of a backup's origin; it
    /// shows its plan and asks again. A flag that did nothing, left out,
    /// leaves the restore confirmed as it was.
    fn answer(self, again: &mut RestoreArgs, untaken: &mut Vec<(&'static str, String)>) {
        let asks_again = match self.answer {
            Answer::Replace { fast } => {
                (again.into_empty, again.replace) = (false, true);
                again.via_wrangler &= !fast;
                true
            }
            Answer::Partial(partial) => {
                again.partial = partial;
                true
            }
            Answer::PreviousDatabaseId(Some(id)) => {
                again.previous_database_id = Some(id);
                true
            }
            Answer::PreviousDatabaseId(None) => {
                let id = again.previous_database_id.take();
                untaken.extend(id.map(|id| ("--previous-database-id", id)));
                false
            }
            Answer::SourceEnv(env) => {
                again.source_env = Some(env);
                true
            }
        };
        if asks_again {
            again.confirm = crate::edge::confirm::ConfirmArgs::default();
        }
    }
}

/// The parts of a refusal [`guard_definitions`] found: the key's said,
/// those deferred to it ([`Deferred`]), those no flag answers, those a
/// flag answers.
type Parts = (Option<String>, Vec<Deferred>, Vec<Unflagged>, Vec<Refused>);

/// One refusal ([`TriggersRefused`]) of `source` for every part, with the
/// restore `args` asked for, every flag added, the names that name
/// nothing left out, and each deferred refusal answered
/// ([`Deferred::answer`]). Its exit code is 3, refused by a guard, when
/// any part is a guard's, and 2 when every part is bad input as it is
/// alone (rvBT 1: `--partial` with a whole backup and a
/// `--previous-database-id` doing nothing, each exit 2, were exit 3
/// together).
fn refused_together(
    source: &Source,
    args: &RestoreArgs,
    (key, deferred, unflagged, mut refused): Parts,
) -> anyhow::Error {
    let bad_input =
        |e: &anyhow::Error| crate::exit::Exit::of(e) == Some(crate::exit::Exit::CouldNotRun);
    let exit = match refused.is_empty()
        && key.is_none()
        && deferred.iter().all(|d| bad_input(&d.alone))
        && unflagged.iter().all(|u| bad_input(&u.alone))
    {
        true => crate::exit::Exit::CouldNotRun,
        false => crate::exit::Exit::Refused,
    };
    let mut again = args.clone();
    let mut said = Vec::new();
    let mut untaken = Vec::new();
    for part in deferred {
        said.push(unsaid_nothing_done(&format!("{:#}", part.alone)));
        part.answer(&mut again, &mut untaken);
    }
    if let Some(key) = &key {
        said.push(unsaid_nothing_done(key));
        refused.insert(0, (String::new(), " --accept-key-change".to_owned()));
    }
    for part in &unflagged {
        said.push(unsaid_nothing_done(&format!("{:#}", part.alone)));
        if let Some((option, names)) = &part.untaken {
            let given = match *option {
                "--allow-trigger" => &mut again.allow_trigger,
                _ => &mut again.allow_schema_change,
            };
            given.retain(|n| !names.contains(n));
            untaken.extend(names.iter().map(|n| (*option, n.clone())));
        }
    }
    said.extend(
        { refused.iter() }
            .map(|(s, _)| s.clone())
            .filter(|s| !s.is_empty()),
    );
    let flags: String = refused.iter().map(|(_, f)| f.as_str()).collect();
    TriggersRefused::error(
        (source, exit),
        &again,
        (&said, flags),
        Unsettled {
            key: key.is_some(),
            untaken,
            dump_first: unflagged.iter().any(|u| u.untaken.is_none()),
        },
    )
}

/// `said` without its ending "Nothing was done.": a part of a refusal
/// that says so once, at its end.
fn unsaid_nothing_done(said: &str) -> String {
    said.trim_end_matches(" Nothing was done.").to_owned()
}

/// What [`guard_definitions`] judges: the dump's triggers and schema
/// statements, the key's check, and the refusals deferred to it (a target
/// not empty without `--replace`, the backup's scope, its origin), and
/// its survey, for [`guard_virtual_parents`] once they pass.
type Dumped<'a> = (
    &'a BTreeMap<String, String>,
    &'a [String],
    Result<KeyCheck>,
    Vec<Deferred>,
    &'a d1_core::repair::Survey,
);

/// A part of a refusal no flag answers, as it was refused alone (`alone`),
/// and what must change: the names an option gave that name nothing,
/// left out of the restore printed (`untaken`), or, `None`, the dump (a
/// trigger under a migration's name with another body).
pub(super) struct Unflagged {
    alone: anyhow::Error,
    untaken: Option<(&'static str, Vec<String>)>,
}

/// Refuses (exit 3, before anything runs, a dry run's plan too) a backup
/// whose dump defines a table or an index otherwise than the migrations
/// applied as of it make them, or lacks an index they make on a table it
/// holds ([`d1_core::catalog::schema_changes`]): a table's CHECK, DEFAULT,
/// UNIQUE and FOREIGN KEY act on every later write, as a trigger does
/// ([`guard_triggers`]), so a dump whose `accounts.role` defaults to
/// `'admin'` would make every later account an admin. The migrations
/// applied, and the run in memory of them, are the trigger guard's
/// ([`crate::steps::migrations::triggers_required`]), whose tables and
/// indexes are compared: an `ALTER TABLE` rewrites a table's stored text.
/// A table or index no migration makes is not judged (made by hand, or
/// another branch's), nor are any when a migration does not run here (the
/// trigger guard says so). `--allow-schema-change NAME` restores it as the
/// dump has it, with a warning; one naming nothing the backup changes is
/// refused, exit 2, as `--allow-trigger`'s typo is
/// ([`refuse_names_not_taken`]). A clean restore loads no DDL from the
/// dump. Returns this part of the refusal and its flags.
fn guard_schema(
    source: &Source,
    (target, dir): (&Environment, &Path),
    args: &RestoreArgs,
    (required, _, schema): Judged<'_>,
    unflagged: &mut Vec<Unflagged>,
) -> Result<Option<Refused>> {
    if let Some(e) = &required.unrun {
        let ran = (&required.schema, e);
        return schema_unchecked(source, (target, dir), args, (schema, ran), unflagged);
    }
    let defined = defined_by_dump(schema);
    let changes = d1_core::catalog::schema_changes_constraining(&defined, &required.schema);
    let changed: Vec<String> = { changes.changed.iter() }
        .chain(&changes.missing)
        .cloned()
        .collect();
    let (allowed, refused) = schema_names_allowed(
        args,
        changed,
        "the tables and indexes it defines otherwise than its migrations make them, or lacks",
        unflagged,
    );
    if !allowed.is_empty() {
        let shown: Vec<String> = { allowed.iter() }
            .map(|n| d1_core::names::shown_name(n).into_owned())
            .collect();
        crate::warn!(
            "{} defines tables or indexes otherwise than its migrations do, {} as it \
             has them as --allow-schema-change names them: {}. Their constraints act on later \
             writes to {}.",
            source.file.display(),
            as_done(args, "restored"),
            shown.join(", "),
            target.database_name
        );
    }
    if refused.is_empty() {
        return Ok(None);
    }
    let keep = |names: &[String]| -> Vec<String> {
        { names.iter() }
            .filter(|n| refused.contains(n))
            .cloned()
            .collect()
    };
    let changes = d1_core::catalog::SchemaChanges {
        changed: keep(&changes.changed),
        missing: keep(&changes.missing),
    };
    let said = crate::steps::migrations::schema_changes_said(&changes, &required.schema);
    let flags = crate::steps::migrations::schema_change_flags(&changes);
    Ok(Some((format!("{} {said}.", source.file.display()), flags)))
}

/// The tables, views and indexes of a backup whose migrations cannot all
/// be run here (`e`: one it records as applied does not run in SQLite, or
/// cannot be read): what the dump defines cannot be compared with what
/// they make. The guard used to warn and go on, and the refusal of its
/// triggers printed a command, "every flag at once", that restored a
/// changed table with no word of it. It fails closed, as the trigger guard
/// does ([`triggers_unchecked`]): each table, view and index the dump
/// defines otherwise than the migrations before that one make it (`ran`),
/// or that they do not make, or that they make and the dump lacks, is
/// refused unless `--allow-schema-change` names it, naming the migration
/// and the fixes; this part of the refusal, and its flags, returned.
fn schema_unchecked(
    source: &Source,
    (target, dir): (&Environment, &Path),
    args: &RestoreArgs,
    (schema, (ran, e)): (&[String], Ran<'_>),
    unflagged: &mut Vec<Unflagged>,
) -> Result<Option<Refused>> {
    let uncompared = crate::steps::migrations::uncompared(&defined_by_dump(schema), ran);
    let (allowed, refused) = schema_names_allowed(
        args,
        uncompared,
        "the tables, views and indexes it defines that cannot be compared with its migrations'",
        unflagged,
    );
    if !allowed.is_empty() {
        crate::warn!(
            "{} defines tables, views or indexes {} as it has them as \
             --allow-schema-change names them, not compared with its migrations ({e:#}): {}. \
             Their constraints act on later writes to {}.",
            source.file.display(),
            as_done(args, "restored"),
            d1_core::wording::listed(&allowed, "name"),
            target.database_name
        );
    }
    if refused.is_empty() {
        return Ok(None);
    }
    let why = crate::steps::migrations::unrun_said(e);
    let flags = crate::steps::migrations::flags("--allow-schema-change", &refused);
    Ok(Some((
        format!(
            "{} defines tables, views or indexes that cannot be compared with its migrations', \
             which ran only up to one that cannot be run here: {why}. They are {}. A table's \
             constraints and indexes act on every later write, so what cannot be compared is \
             refused: fix that migration, or move it out of {} until it runs, and restore \
             again; or, having read the dump's definitions, restore with{flags}.",
            source.file.display(),
            d1_core::wording::listed(&refused, "name"),
            dir.display(),
        ),
        flags,
    )))
}

/// The migrations' schema as far as they ran here, and the error of the
/// one that did not run ([`schema_unchecked`]).
type Ran<'a> = (
    &'a BTreeMap<String, d1_core::catalog::Defined>,
    &'a anyhow::Error,
);

/// `names`, what the schema guard would refuse (`what`, for the refusal
/// of a name no flag may take), split into those `--allow-schema-change`
/// names and the rest; a name it gives that is none of them goes into
/// `unflagged` ([`names_not_taken`]): one step of [`guard_schema`] and of
/// [`schema_unchecked`].
fn schema_names_allowed(
    args: &RestoreArgs,
    names: Vec<String>,
    what: &str,
    unflagged: &mut Vec<Unflagged>,
) -> (Vec<String>, Vec<String>) {
    unflagged.extend(names_not_taken(
        (
            "--allow-schema-change",
            "a table or index this backup does not change",
            "the backup changes no table or index",
        ),
        &args.allow_schema_change,
        |name| allows(&names, name),
        &format!(
            "{what}: {}",
            match names.is_empty() {
                true => "none".to_owned(),
                false => d1_core::wording::listed(&names, "name"),
            }
        ),
    ));
    { names.into_iter() }.partition(|n| allows(&args.allow_schema_change, n))
}

/// The indexes the dump makes that no migration makes, on a table one
/// makes, that are not UNIQUE ([`d1_core::catalog::unmade_indexes`]):
/// restored, with a warning naming them. Such an index constrains no
/// write (a UNIQUE one is refused, [`guard_schema`]); it only slows the
/// writes to its table, and takes room, until it is dropped. Not judged
/// when the migrations cannot all be run (the refusal names every index
/// then).
fn warn_of_plain_indexes_unmade(
    source: &Source,
    target: &Environment,
    (required, _, schema): Judged<'_>,
) {
    if required.unrun.is_some() {
        return;
    }
    let (_, plain) = d1_core::catalog::unmade_indexes(&defined_by_dump(schema), &required.schema);
    if !plain.is_empty() {
        crate::warn!(
            "{} makes indexes that no migration makes on tables its migrations make, restored \
             as it has them: {}. Not UNIQUE, they constrain no write, but each slows the writes \
             to its table in {} until it is dropped (or made by a migration).",
            source.file.display(),
            d1_core::wording::listed(&plain, "index"),
            target.database_name
        );
    }
}

/// A restore refused for the backup's triggers (one it creates that no
/// migration creates, or one of its migrations' it lacks), and the flags
/// that restore it as it is on purpose (` --allow-trigger NAME` or
/// ` --allow-missing-trigger NAME`, each name quoted). A type of its own, so that a drill,
/// whose restore takes the same flags, can print the drill that rehearses
/// that restore ([`crate::exit::find`]): restore's own advice, `restore
/// with …`, is no command a drill runs.
/// Every part of it is said at once, each with its flags, and `flags`
/// carries them all (LS: a backup both lacking a migration's trigger and
/// creating a foreign one was refused for the first, and again, once
/// restored with its flag, for the second).
#[derive(Debug)]
pub struct TriggersRefused {
    /// Why, each part's flags named, ending "Nothing was done.".
    pub said: String,
    pub flags: String,
    /// What no flag answers, and which of its parts is the key's.
    pub unsettled: Unsettled,
    /// The restore refused, again with every flag: the command to paste.
    command: String,
}

/// Of a [`TriggersRefused`]: its parts that no flag answers, and whether
/// one is the key's.
#[derive(Debug, Default)]
pub struct Unsettled {
    /// One of its parts is the key's ([`super::KeyRefusal`]): a drill's
    /// key check failed.
    pub key: bool,
    /// The names an option gave that name nothing in the backup, each
    /// with its option: left out of the command printed, which runs.
    pub untaken: Vec<(&'static str, String)>,
    /// One part is the dump's to fix (another body under a migration's
    /// trigger name): the command printed runs only once it is fixed.
    pub dump_first: bool,
}

impl TriggersRefused {
    /// The refusal (`exit`) of `source` for each part `said`, with the
    /// flags that would pass them; `args`, the restore printed with them,
    /// is the one refused with what `unsettled` says changed.
    fn error(
        (source, exit): (&Source, crate::exit::Exit),
        args: &RestoreArgs,
        (said, flags): (&[String], String),
        unsettled: Unsettled,
    ) -> anyhow::Error {
        exit.error(TriggersRefused {
            said: format!("{} Nothing was done.", said.join(" ")),
            command: restore_again(source, args, &flags),
            flags,
            unsettled,
        })
    }
}

impl std::fmt::Display for TriggersRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let said = self.said.trim_end_matches(" Nothing was done.");
        let command = &self.command;
        // Never a command said to restore what it would refuse again:
        // what must change first is named.
        let without = match self.unsettled.untaken.is_empty() {
            true => String::new(),
            false => format!("without {}, ", untaken_said(&self.unsettled.untaken)),
        };
        match self.unsettled.dump_first {
            true => write!(
                f,
                "{said} No flag restores it as it is: once the dump creates each trigger of a \
                 migration's name as that migration does, restore it {without}with every flag \
                 at once: `{command}`. Nothing was done."
            ),
            false => write!(
                f,
                "{said} To restore it {}every flag at once: `{command}`. Nothing was done.",
                match without.is_empty() {
                    true => "as it is, ".to_owned(),
                    false => format!("{without}with "),
                }
            ),
        }
    }
}

/// The options and names `untaken` as given: `--allow-trigger a`.
fn untaken_said(untaken: &[(&'static str, String)]) -> String {
    let given: Vec<String> = { untaken.iter() }
        .map(|(option, name)| format!("{option} {}", d1_core::names::shown_name(name)))
        .collect();
    given.join(", ")
}

/// The restore `args` asked for, of `source`'s file (what `latest` was),
/// with `flags` added: every option it was given, as given (a path, a
/// database's name, no secret), so that it runs as printed.
fn restore_again(source: &Source, args: &RestoreArgs, flags: &str) -> String {
    let word = d1_core::wording::shell_word;
    let mut words = format!(
        "cargo xtask restore {} --to {}",
        word(&source.file.display().to_string()),
        word(&args.to)
    );
    let switches = [
        (args.into_empty, "--into-empty"),
        (args.replace, "--replace"),
        (args.partial, "--partial"),
        (args.no_manifest, "--no-manifest"),
        (args.accept_key_change, "--accept-key-change"),
        (args.via_wrangler, "--via-wrangler"),
        (args.json, "--json"),
        (args.dry_run, "--dry-run"),
        (args.confirm.yes, "--yes"),
    ];
    for (_, switch) in switches.iter().filter(|(on, _)| *on) {
        words += &format!(" {switch}");
    }
    let identity = args.identity.path().map(|p| p.display().to_string());
    let options = [
        ("--source-env", args.source_env.as_ref()),
        ("--previous-database-id", args.previous_database_id.as_ref()),
        ("--location", args.location.as_ref()),
        ("--account-of", args.account_of.as_ref()),
        ("--confirm", args.confirm.confirm.as_ref()),
        ("--identity", identity.as_ref()),
    ];
    for (option, value) in options.iter().filter_map(|(o, v)| Some((o, (*v)?))) {
        words += &format!(" {option} {}", word(value));
    }
    words += &crate::steps::migrations::flags("--allow-trigger", &args.allow_trigger);
    words +=
        &crate::steps::migrations::flags("--allow-missing-trigger", &args.allow_missing_trigger);
    words += &crate::steps::migrations::flags("--allow-schema-change", &args.allow_schema_change);
    words + flags
}

impl std::error::Error for TriggersRefused {}

/// The refusal (exit 2) of `--allow-trigger NAME` where the backup
/// creates no trigger NAME (`triggers`, its dump's): a typo would be
/// silent, and the trigger meant refused after all, or worse, meant for
/// another backup. Names the triggers it does create that no migration
/// creates (`foreign`; `None` when they could not be judged), which are
/// the names it takes. In the plan, before the safety backup, a dry run's
/// too.
fn an_allowed_trigger_not_created(
    args: &RestoreArgs,
    triggers: &BTreeMap<String, String>,
    foreign: Option<&[String]>,
) -> Option<Unflagged> {
    let foreign = match foreign {
        Some([]) => "none".to_owned(),
        Some(names) => crate::steps::migrations::trigger_names(names),
        None => format!(
            "not judged (its migrations did not run here); it creates {}",
            crate::steps::migrations::trigger_names(triggers.keys())
        ),
    };
    names_not_taken(
        (
            "--allow-trigger",
            "a trigger this backup does not create",
            "the backup creates no trigger",
        ),
        &args.allow_trigger,
        |name| triggers.keys().any(|t| t.eq_ignore_ascii_case(name)),
        &format!("the triggers it creates that no migration creates: {foreign}"),
    )
}

/// The refusal (exit 2) of an `option NAME` (`named`) that names none of
/// what the backup has for it to name (`taken`: false), naming each such
/// NAME and what it does have (`takes`): a typo would be silent, and the
/// thing meant refused after all. `--allow-trigger`'s and
/// `--allow-schema-change`'s (LX2: a typo of it was ignored). `lacks`
/// leads the names (`the backup creates no trigger`).
fn names_not_taken(
    (option, what, lacks): (&'static str, &str, &str),
    named: &[String],
    taken: impl Fn(&str) -> bool,
    takes: &str,
) -> Option<Unflagged> {
    let absent: Vec<String> = { named.iter() }
        .filter(|name| !taken(name))
        .cloned()
        .collect();
    if absent.is_empty() {
        return None;
    }
    let shown: Vec<_> = { absent.iter() }
        .map(|name| d1_core::names::shown_name(name))
        .collect();
    let alone = crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
        "{option} names {what}: {lacks} {}; {takes}. Name only those (a typo here would leave \
         the one meant refused). Nothing was done.",
        shown.join(", ")
    ));
    Some(Unflagged {
        alone,
        untaken: Some((option, absent)),
    })
}

/// Whether a `--allow-trigger` (or `--allow-missing-trigger`) of `named`
/// names `trigger`, as SQLite matches names (ASCII case ignored).
fn allows(named: &[String], trigger: &str) -> bool {
    crate::steps::migrations::same_name(named, trigger).is_some()
}

/// Which triggers the migrations make is unknown (`e`: one of them does
/// not run here, or cannot be read). The guard used to warn and go on,
/// installing whatever trigger the dump held; it fails closed: a dump
/// with a trigger that `--allow-trigger` does not name is refused (exit
/// 3), naming the migration (in `e`) and the fixes: this part of the
/// refusal, and its flags, returned. A dump with no trigger is not
/// concerned, but whether it lacks one of the migrations' is unknown too,
/// and said.
fn triggers_unchecked(
    source: &Source,
    (target, dir): (&Environment, &Path),
    args: &RestoreArgs,
    triggers: &BTreeMap<String, String>,
    e: &anyhow::Error,
) -> Option<(String, String)> {
    let unnamed: Vec<String> = { triggers.keys() }
        .filter(|t| !allows(&args.allow_trigger, t))
        .cloned()
        .collect();
    if triggers.is_empty() {
        crate::warn!(
            "whether {} lacks a trigger that a migration from the one that cannot be run here on \
             creates was not checked: which triggers those create is unknown ({e:#}); those of \
             the migrations before it were.",
            source.file.display()
        );
        return None;
    }
    if unnamed.is_empty() {
        crate::warn!(
            "{} creates triggers {} as --allow-trigger names them, unchecked against its \
             migrations ({e:#}): {}. They will run on later writes to {}.",
            source.file.display(),
            as_done(args, "installed"),
            crate::steps::migrations::trigger_names(triggers.keys()),
            target.database_name
        );
        return None;
    }
    let why = crate::steps::migrations::unrun_said(e);
    let flags = crate::steps::migrations::allow_trigger_flags(&unnamed);
    Some((
        format!(
            "{} creates triggers, and which triggers its migrations create is unknown: {why}. A \
             trigger runs on every later write it matches, so one that cannot be checked is \
             refused: fix that migration, or move it out of {} until it runs, and restore \
             again; or, having read the backup's triggers, restore with{flags}.",
            source.file.display(),
            dir.display(),
        ),
        flags,
    ))
}

/// Judges, for a refusal (exit 3), a backup that lacks a trigger its
/// migrations create (`required.made`, as [`guard_triggers`] takes them) on a table its dump
/// creates (`tables`): restored, the database would be without it, and
/// a trigger is a guard the app relies on (the audit log's append-only
/// triggers). A backup of chosen tables is judged on those tables only: a
/// table it does not hold goes with its triggers, which `--partial` says
/// is meant. `--allow-missing-trigger NAME` restores it without the
/// trigger on purpose; `--clean` makes the migrations' triggers. Returns
/// the triggers so restored without, and the part of the refusal for the
/// rest, with its flags.
fn missing_triggers_judged(
    source: &Source,
    (target, args, dir): (&Environment, &RestoreArgs, &Path),
    required: &crate::steps::migrations::Required,
    (triggers, tables): (&BTreeMap<String, String>, &[String]),
) -> (Vec<String>, Option<(String, String)>) {
    let missing = crate::steps::migrations::missing_triggers(&required.made, triggers, tables);
    let (allowed, refused): (Vec<_>, Vec<_>) =
        { missing.into_iter() }.partition(|(n, _)| allows(&args.allow_missing_trigger, n));
    if !allowed.is_empty() {
        crate::warn!(
            "{} lacks triggers its migrations create, restored without them as \
             --allow-missing-trigger names them: {}. {} will be without them until they are \
             made again.",
            source.file.display(),
            crate::steps::migrations::missing_said(&allowed),
            target.database_name
        );
    }
    let allowed = allowed.into_iter().map(|(n, _)| n.clone()).collect();
    if refused.is_empty() {
        return (allowed, None);
    }
    // Why these are required though the backup's records, or a migration
    // that does not run, would have left them out; and that one's fix.
    let mut why: String = { required.why().into_iter() }
        .map(|w| format!(" {}{}.", w[..1].to_uppercase(), &w[1..]))
        .collect();
    if required.unrun.is_some() {
        why += &format!(
            " To have the rest judged, fix that migration, or move it out of {} until it runs, \
             and restore again.",
            dir.display()
        );
    }
    let flags =
        crate::steps::migrations::flags("--allow-missing-trigger", refused.iter().map(|(n, _)| *n));
    let said = format!(
        "{} lacks triggers its migrations create: {}. Restored, {} would be without them, and a \
         trigger is a guard the app relies on, so this backup is refused.{why} If it is meant to \
         be without them, restore with{flags}.",
        source.file.display(),
        crate::steps::migrations::missing_said(&refused),
        target.database_name,
    );
    (allowed, Some((said, flags)))
}

/// The tables (virtual ones too), views and indexes the dump's `schema`
/// creates, by name, with their `CREATE` text: what [`guard_schema`]
/// compares with the migrations'. A view or a virtual table under a
/// migration's table's name is that table defined otherwise (an FTS5
/// `accounts` holds no CHECK, no key, no default).
fn defined_by_dump(schema: &[String]) -> BTreeMap<String, String> {
    { schema.iter() }
        .filter_map(|sql| match d1_core::statement::created_any(sql) {
            Some(("table" | "index" | "view" | "virtual table", name)) => Some((name, sql.clone())),
            _ => None,
        })
        .collect()
}

/// The names of the tables the dump's `schema` creates.
fn tables_in(schema: &[String]) -> Vec<String> {
    { schema.iter() }
        .filter_map(|sql| match d1_core::statement::created_object(sql) {
            Some(("table", name)) => Some(name),
            _ => None,
        })
        .collect()
}

/// Refuses (exit 3) a backup's trigger under the name a migration in `dir`
/// gives another trigger (ASCII case ignored, as SQLite names): that
/// migration's trigger with its body changed. `--allow-trigger` names a
/// trigger no migration makes; the name of one a migration makes would
/// vouch for what it is not, so no flag installs it. When every migration
/// in `dir` cannot be run (one not applied fails), those the backup
/// records as applied have judged the triggers already. Returns those of
/// `foreign` so refused, and the refusal.
fn another_body_under_a_migrations_name(
    source: &Source,
    dir: &Path,
    triggers: &BTreeMap<String, String>,
    foreign: &[String],
) -> (Vec<String>, Option<Unflagged>) {
    if foreign.is_empty() {
        return (Vec::new(), None);
    }
    let changed = crate::steps::migrations::triggers_changed_from_migrations(dir, triggers);
    let (names, altered): (Vec<String>, Vec<String>) = { changed.unwrap_or_default().into_iter() }
        .filter(|(t, _)| foreign.contains(t))
        .map(|(t, theirs)| match t == theirs {
            true => (t.clone(), t),
            false => (t.clone(), format!("{t} (the migration's {theirs})")),
        })
        .unzip();
    if altered.is_empty() {
        return (names, None);
    }
    let alone = crate::exit::Exit::Refused.error(anyhow::anyhow!(
        "{} creates triggers under the name a migration gives another trigger, with another \
         body: {}. A trigger runs on every later write it matches, so this backup is refused, \
         and --allow-trigger does not install these: a trigger of a migration's name must be \
         that migration's. Compare it with the migrations in {} (`{}` names the backup's \
         triggers). Nothing was done.",
        source.file.display(),
        crate::steps::migrations::trigger_names(&altered),
        dir.display(),
        crate::edge::manifest_file::verify_command(&source.file, source.data.identity())
    ));
    let untaken = None;
    (names, Some(Unflagged { alone, untaken }))
}

/// A schema-only backup holds no rows, and `--clean` loads only rows: even
/// with `--partial` it would load nothing. (Into a new database
/// [`guard_clean_new_scope`] tells it first.)
pub(super) fn refuse_a_schema_only_backup_with_clean(
    source: &Source,
    m: &Manifest,
    target: &Environment,
    mode: Mode,
) -> Result<()> {
    if m.mode == "schema-only" && mode == Mode::Clean {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is a schema-only backup: it holds no rows, and --clean loads only rows into the \
             schema the migrations make, so it would load nothing. To make the schema, `{}` \
             applies the migrations; to restore the backup's own schema, restore it --replace \
             --partial. Nothing was done.",
            source.file.display(),
            crate::edge::confirm::migrate_command(target, "")
        )
    }
    Ok(())
}

/// A data-only backup (whole, or of chosen tables) in a mode that cannot
/// use it: each refusal names the way that can.
pub(super) fn refuse_a_data_only_backup_without_clean(
    source: &Source,
    m: &Manifest,
    target: &Environment,
    mode: Mode,
    new: bool,
) -> Result<()> {
    // Its rows go into tables it does not create: `--replace` drops them
    // all, and an empty target has none, so `--partial` cannot help.
    let clean = match m.tables.is_empty() {
        true => "--clean",
        false => "--clean --partial",
    };
    if m.mode == "data-only" && new {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is a data-only backup: it creates no table, and without --clean a new database \
             gets the backup's own schema. Take the runbook's clean path, `--to new:{name} \
             {clean}`, which creates the database, applies the migrations of the database the \
             backup was taken from and loads the rows into them; or restore a full backup to \
             new:{name} (`cargo xtask list` shows each backup's mode). Nothing was done.",
            source.file.display(),
            name = target.database_name
        )
    }
    if m.mode == "data-only" {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} is a data-only backup: it creates no table, so restoring it --{} would load its \
             rows into tables the target does not have then. Restore it with {clean}, which \
             applies the migrations to a database with no tables and loads the rows into \
             them. Nothing was done.",
            source.file.display(),
            mode.name()
        )
    }
    Ok(())
}

/// Whole-database backups restore as they are. A backup of chosen tables, or
/// of the schema only, would leave the target without the rest of its data,
/// so it needs `--partial`; a data-only backup is what `--clean` expects.
/// `--partial` missing, or given for a whole backup, is refused with the
/// guards after it ([`Deferred`]), the rest here.
pub(super) fn guard_backup_scope(
    source: &Source,
    target: &Environment,
    mode: Mode,
    partial: bool,
    new: bool,
) -> Result<Option<Deferred>> {
    let Some(m) = &source.manifest else {
        return Ok(None);
    };
    let whole = m.tables.is_empty();
    let fits = match m.mode.as_str() {
        "full" => whole,
        "data-only" => whole && mode == Mode::Clean,
        _ => false,
    };
    refuse_a_schema_only_backup_with_clean(source, m, target, mode)?;
    if fits && partial {
        // `--partial` says "only some tables": a whole backup would replace
        // them all whatever it said, a flag accepted and then ignored.
        // `latest` is the newest backup, whole or not: a whole one is
        // refused here too, never passed over for an older partial one.
        let alone = crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
            "{} is a whole {} backup (of every table), not a partial one: --partial is for a \
             backup of chosen tables or of the schema only, and this restore would replace \
             every table whatever it said. Drop --partial to restore it whole, or name a \
             partial backup's file (`cargo xtask list` shows each backup's tables). Nothing \
             was done.",
            source.file.display(),
            m.mode,
        ));
        return Ok(Some(Deferred::new(alone, Answer::Partial(false))));
    }
    // A data-only backup creates no table, whole or of chosen tables:
    // `--partial` does not let it by (LK: `--replace --partial` took a
    // safety backup, dropped the tables and failed loading rows into them).
    if m.mode == "data-only" && mode != Mode::Clean {
        refuse_a_data_only_backup_without_clean(source, m, target, mode, new)?;
    }
    if fits || partial {
        return Ok(None);
    }
    let what = if whole {
        format!("a {} backup", m.mode)
    } else {
        format!("a {} backup of only {}", m.mode, m.tables.join(", "))
    };
    Ok(Some(refuse_without_partial(
        source,
        &what,
        mode,
        m.mode == "schema-only",
    )))
}

/// A backup that is not the whole database, restored without `--partial`:
/// refused, saying what the target would be left with; deferred, to be
/// said with the other refusals, `--partial` in the restore printed.
fn refuse_without_partial(source: &Source, what: &str, mode: Mode, schema_only: bool) -> Deferred {
    let leaves = match mode {
        Mode::IntoEmpty if schema_only => {
            "restored, the database would have its tables and no rows".to_owned()
        }
        Mode::IntoEmpty => "restored, the database would hold only those tables".to_owned(),
        _ => format!(
            "restoring it --{} would leave the target without the rest of its data",
            mode.name()
        ),
    };
    let alone = crate::exit::Exit::Refused.error(anyhow::anyhow!(
        "{} is {what}; {leaves}. Pass --partial if that is what you want. Nothing was done.",
        source.file.display(),
    ));
    Deferred::new(alone, Answer::Partial(true))
}

/// A dump without a manifest whose table, filled, references a table it
/// does not create (a hand `wrangler d1 export --table child` without its
/// `parent`), restored otherwise than `--clean`: the database it leaves
/// has the dump's tables alone (an empty database has no other, and
/// `--replace` drops the rest), so D1, which enforces foreign keys,
/// refuses every row ("no such table: main.parent"). Refused in the plan,
/// a dry run's too, before anything runs against the target, naming the
/// table, its parent and the export that holds both; it used to fail at
/// the load with D1's words alone (rvBP 5). `--clean` loads rows into the
/// migrations' schema, which may make the parent.
pub(super) fn guard_missing_parents(
    source: &Source,
    survey: &d1_core::repair::Survey,
    mode: Mode,
) -> Result<()> {
    if source.manifest.is_some() || mode == Mode::Clean {
        return Ok(());
    }
    let missing = survey.unloadable_without_parents();
    if missing.is_empty() {
        return Ok(());
    }
    refuse_unloadable(
        source,
        &d1_core::catalog::export_without_parents_said(&missing),
    )
}

/// A table the dump creates whose foreign key names a virtual table the
/// restore makes (an FTS5 table a sqlite3 .dump records, or one a
/// manifest does), restored otherwise than `--clean`: refused (exit 3,
/// before anything runs, a dry run's plan too), with or without a
/// manifest, filled or not, in the words verify's foreign key check calls
/// it BAD with. No foreign key can refer to a virtual table, so no row of
/// it loads into D1, nor does the app's next write (NZ: such a parent was
/// said to be missing from the dump, and verify could not run). Judged
/// once the guards of [`guard_definitions`] pass (a clean restore loads
/// no DDL of the dump): a dump that makes a migration's table an FTS5
/// table is told so first.
fn guard_virtual_parents(source: &Source, survey: &d1_core::repair::Survey) -> Result<()> {
    let referencing = survey.referencing_virtual_tables(&source.virtual_tables);
    match referencing.is_empty() {
        true => Ok(()),
        false => refuse_unloadable(
            source,
            &d1_core::catalog::mismatched_parents_said(&referencing),
        ),
    }
}

/// Refuses (exit 3) `source`, whose rows cannot load, for the reason `said`.
fn refuse_unloadable(source: &Source, said: &str) -> Result<()> {
    crate::stop!(
        crate::exit::Exit::Refused,
        "{} cannot be restored: {said}. Nothing was done.",
        source.file.display(),
    )
}

/// [`guard_backup_scope`] for a dump without a manifest, judged by what it
/// holds. One that makes the migrations' tables (or `d1_migrations`) and
/// holds no INSERT at all, `d1_migrations`' included, is a schema-only
/// backup (`wrangler d1 export --no-data`): it used to replace every
/// table's rows with none and leave every migration pending. One that
/// makes only some of the tables the migrations it records make (all of
/// them, recording none: `wrangler d1 export --table`) is partial. An
/// honestly empty full export still holds its `d1_migrations` rows. A
/// dump that makes none of the migrations' tables is judged elsewhere.
/// Its refusal is said with the guards after it ([`Deferred`]).
pub(super) fn guard_dump_scope(
    source: &mut Source,
    schema: &[String],
    dir: &Path,
    mode: Mode,
    partial: bool,
) -> Option<Deferred> {
    if source.manifest.is_some() || mode == Mode::Clean {
        return None;
    }
    let (created, missing) =
        crate::steps::migrations::migration_tables_made(schema, dir, &source.recorded)?;
    let no_rows = source.rows.values().sum::<u64>() == 0 && source.recorded.is_empty();
    source.schema_only = no_rows;
    if partial || (!no_rows && missing.is_empty()) {
        return None;
    }
    let what = match no_rows {
        true => "a schema-only backup (without a manifest: it makes the migrations' tables and \
                 holds no INSERT, not even d1_migrations' rows, as `wrangler d1 export \
                 --no-data` writes)"
            .to_owned(),
        false => format!(
            "a backup of only {} (without a manifest: it makes only some of the tables its \
                 migrations make, not {}, as `wrangler d1 export --table` writes)",
            d1_core::wording::listed(&shown_names(&created), "table"),
            d1_core::wording::listed(&shown_names(&missing), "table")
        ),
    };
    Some(refuse_without_partial(source, &what, mode, no_rows))
}

/// `--clean` loads rows into the schema of today's migrations/; refuse when
/// the backup was taken at another set of migrations, where the rows'
/// columns may not line up.
pub(super) fn guard_same_migrations(source: &Source, dir: &Path) -> Result<()> {
    let Some(m) = &source.manifest else {
        return Ok(());
    };
    // Migrations that cannot be listed: what they make is not known, and
    // the trigger and schema guards refuse what they cannot check.
    let Ok(files) = crate::steps::migrations::migration_files(dir) else {
        return Ok(());
    };
    if m.migrations.is_empty() && !files.is_empty() && !m.rows_go_on_todays_migrations() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{}; --clean applies the migrations in {} and loads the rows into the schema they \
             make, and nothing tells that the backup's rows fit it (no checkout of any commit \
             would). {} Nothing was done.",
            match m.tables.is_empty() {
                true => "the backup records no migrations: the database it was taken of had no \
                         d1_migrations rows"
                    .to_owned(),
                false => format!(
                    "the backup holds chosen tables ({}) without d1_migrations, so it records no \
                     migrations",
                    d1_core::wording::listed(&shown_names(&m.tables), "table")
                ),
            },
            dir.display(),
            match m.tables.is_empty() {
                true =>
                    "Restore it without --clean (--replace, or into an empty database), \
                         which makes the backup's own tables.",
                false =>
                    "Restore it without --clean, with --partial, into a new database \
                          (`--to new:NAME --partial`) or an empty one, which makes the \
                          backup's own tables from its CREATE TABLE statements; --replace \
                          --partial would drop every other table of the target and its rows, \
                          leaving it only the backup's.",
            }
        );
    }
    if m.migrations != files && !m.rows_go_on_todays_migrations() {
        crate::stop!(
            crate::exit::Exit::Refused,
            "the backup was taken with migrations [{}], but {} now holds [{}]; --clean would load \
             its rows into a different schema. {} or restore without --clean. Nothing was done.",
            m.migrations.join(", "),
            dir.display(),
            files.join(", "),
            match m.git_commit.as_deref() {
                Some(commit) => format!("Check out the commit the manifest names ({commit})"),
                // Taken outside git, or before its first commit.
                None =>
                    "The manifest names no commit: check out one whose migrations are those the \
                         backup was taken with"
                        .to_owned(),
            }
        );
    }
    Ok(())
}

/// [`guard_same_migrations`] for a dump without a manifest: its own
/// `d1_migrations` rows (a data-only export carries them) say which
/// migrations made the schema its rows came from. A later migration that
/// made a table and seeded it would otherwise be emptied by `--clean`,
/// which empties every table before the rows load, and a dropped or
/// renamed column would not line up. A dump with no such rows tells
/// nothing, and goes by the tables it fills.
pub(super) fn guard_dump_migrations(file: &Path, recorded: &[String], dir: &Path) -> Result<()> {
    // Migrations that cannot be listed: what they make is not known, and
    // the trigger and schema guards refuse what they cannot check.
    let Ok(files) = crate::steps::migrations::migration_files(dir) else {
        return Ok(());
    };
    if let Some(differs) = crate::steps::migrations::dump_records_others(recorded, &files) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} was taken with other migrations than {} holds, by its d1_migrations rows: {}. \
             --clean would load its rows into a different schema. Check out the migrations of \
             that time, or restore it into a database made by them. Nothing was done.",
            file.display(),
            dir.display(),
            differs
        );
    }
    Ok(())
}

/// Refuses (exit 3) a backup whose manifest records a migration as applied
/// with other contents than its file in `dir` has now (its
/// `migration_sha256`), or, for `--clean`, whose file is gone (another
/// branch's: the triggers it made are then foreign to the migrations
/// here, which the trigger guard refuses), as `migrate` refuses one
/// ([`crate::steps::migrations::edited_migrations`]). `--clean` would
/// rebuild another schema than the one the rows came from; every other
/// mode judges the backup's triggers against the migrations it records as
/// applied, and an edited one is not what was applied (LN: a trigger
/// appended to an applied migration and to the dump was installed, and
/// `--replace` was said to be unaffected). The manifest is the backup's
/// word: this machine's record of what was applied (`machine`,
/// [`crate::steps::migrations::machine_records`]) is compared too, with a
/// manifest or without, so that one that leaves out a sha256 or records
/// the edited file's, or none at all, passes no edit the record knows
/// (LW: [`crate::steps::migrations::edited_for_backup`] decides, as for
/// verify). Before anything runs, a dry run's plan too, and before a
/// drill logs anything (the checkout is at fault, not the backup).
pub(crate) fn guard_applied_migrations_unchanged(
    (file, manifest): (&Path, Option<&Manifest>),
    (dir, machine): (&Path, &[crate::steps::migrations::Record]),
    mode: Mode,
) -> Result<()> {
    let found = match mode {
        Mode::Clean => crate::steps::migrations::edited_for_backup(manifest, machine, dir),
        _ => crate::steps::migrations::edited_and_here(manifest, machine, dir),
    };
    if found.is_empty() {
        return Ok(());
    }
    let (how, why) = match mode {
        Mode::Clean => (" --clean", ""),
        _ => (
            "",
            " A restore judges the backup's triggers against the migrations it records as \
             applied, as they were applied: an edited one is no such reference.",
        ),
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to restore {}{how}: {}{why} Every restore of a backup that records it as \
         applied (--clean, --replace, a full backup of that time) is refused until its file is \
         as it was applied. Nothing was done.",
        file.display(),
        crate::steps::migrations::edited_for_backup_report(&found, dir)
    )
}

/// `latest` after a restore is often the safety backup that restore took:
/// restoring it again puts back the state from before. Said, so that an
/// operator repeating a restore by `latest` sees which backup it is; and
/// by a drill, which restores the newest backup too (rvBS: a local drill
/// after a restore undid it, saying nothing). `another` says how to name
/// another backup. A warning, which `-q` does not hide: it changes what
/// the target will hold.
pub(crate) fn warn_if_latest_is_a_safety_backup(source: &str, manifest: &Manifest, another: &str) {
    let reason = manifest.reason.as_deref().unwrap_or("");
    if source.starts_with("latest") && reason.starts_with("safety backup") {
        crate::warn!(
            "{source} is {}, the safety backup taken at {} ({}): restoring it puts back what \
             {} held before that restore. {another}",
            manifest.file.name,
            manifest.created_at.format("%Y-%m-%d %H:%M UTC"),
            reason.escape_debug(),
            // The database it was taken of, which need not be this
            // restore's target (`latest:prod --to staging`).
            d1_core::names::shown(&manifest.database.name)
        );
    }
}

/// Only a backup taken from production may go into production. What the
/// operator alone can say of a backup's origin (`--previous-database-id`
/// missing, or given where it does nothing; `--source-env` for a dump of
/// unknown origin) is refused with the guards after it ([`Deferred`]);
/// a backup of another environment, whose way is another target that
/// makes every other refusal here moot, alone.
pub(super) fn guard_source_environment(
    source: &Source,
    target: &Environment,
    args: &RestoreArgs,
    envs: &Environments,
    backup_dir: &Path,
) -> Result<Option<Deferred>> {
    let mut unused = None;
    if let Some(id) = &args.previous_database_id {
        let moved = target.is_production()
            && (source.manifest.as_ref())
                .is_some_and(|m| !m.database.uuid.eq_ignore_ascii_case(&target.database_id));
        if !moved {
            let alone = crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
                "--previous-database-id {} would do nothing here: it is for a backup of \
                 production's previous database (its manifest's id differs from the configured \
                 database_id of {}), restored into production. Nothing was done.",
                d1_core::names::shown(id),
                target.database_name
            ));
            unused = Some(Deferred::new(alone, Answer::PreviousDatabaseId(None)));
        }
    }
    if !target.is_production() {
        return Ok(unused);
    }
    // Recorded under the name the target had when it was taken (before a
    // second database was added, or after one was taken out); its
    // database's name and id are then checked as any other's.
    let recorded_as_target = |env: &str| {
        env == target.name
            || (source.manifest.as_ref())
                .is_some_and(|m| target.recorded_as(env, &m.database.name, &m.database.uuid))
    };
    match source.environment.as_deref() {
        Some(env) if recorded_as_target(env) => match &source.manifest {
            Some(m) => guard_same_database((&source.file, m), target, args, envs, backup_dir)
                .map(|replaced| replaced.or(unused)),
            None => Ok(unused),
        },
        Some(env) => crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore a backup of {env} into {} (production): only backups taken from \
             production may go there. {} Nothing was done.",
            target.database_name,
            ways_elsewhere(source, target, envs)
        ),
        None if args.no_manifest => {
            let alone = crate::exit::Exit::Refused.error(anyhow::anyhow!(
                "refusing to restore a dump of unknown origin into {} (production): if it was \
                 taken from production, say so with --source-env {} (and --confirm {}). Nothing \
                 was done.",
                target.database_name,
                target.name,
                target.database_name
            ));
            let answer = Answer::SourceEnv(target.name.clone());
            Ok(Some(Deferred::new(alone, answer)))
        }
        None => {
            crate::stop!(
                crate::exit::Exit::Refused,
                "the backup's environment is unknown; refusing to restore it into production \
                 ({}): only backups taken from production may go there. {} Nothing was done.",
                target.database_name,
                ways_elsewhere(source, target, envs)
            )
        }
    }
}

/// Where a backup production refuses can go instead: its own environment
/// when that is a configured one that is not production (`--to staging`),
/// else the environments that are not production and have the target's
/// binding (a backup goes into no database of another binding,
/// [`guard_same_binding`]), or a database of its own (`--to new:NAME`).
/// A database whose names the manifest records with another id
/// ([`Environment::another_id`]) is not its own, and is not offered.
fn ways_elsewhere(source: &Source, target: &Environment, envs: &Environments) -> String {
    let of_another_id = |e: &Environment| {
        (source.manifest.as_ref()).is_some_and(|m| e.records(m) && e.another_id(&m.database.uuid))
    };
    let own = match &source.manifest {
        Some(m) => envs.whose(m),
        None => (source.environment.as_deref()).and_then(|name| envs.resolve(name).ok()),
    };
    let names: BTreeSet<&str> = match own.filter(|e| !e.is_production() && !of_another_id(e)) {
        Some(e) => BTreeSet::from([e.name.as_str()]),
        None => { envs.iter() }
            .filter(|e| !e.is_production() && e.binding == target.binding && !of_another_id(e))
            .map(|e| e.name.as_str())
            .collect(),
    };
    let to: Vec<String> = { names.iter() }
        .map(|n| format!("`--to {}`", d1_core::wording::shell_word(n)))
        .collect();
    match to.is_empty() {
        true => "Restore it into a database of its own with `--to new:NAME`.".to_owned(),
        false => format!(
            "Restore it into {}, or into a database of its own with `--to new:NAME`.",
            to.join(" or ")
        ),
    }
}

/// A backup of one of an environment's databases goes only into the
/// database with the same binding (the same database in every
/// environment): a backup of `ANALYTICS` never replaces `DB`, in any
/// environment, whatever `--database` picked for the target.
pub(super) fn guard_same_binding(
    source: &Source,
    target: &Environment,
    envs: &Environments,
) -> Result<()> {
    // A new database has no binding yet: the one printed for it afterwards
    // is the backup's own.
    if target.is_new {
        return Ok(());
    }
    // A backup taken while its environment had another number of
    // databases is recorded under another name: its database's name says
    // which it is now (`Environment::recorded_as`).
    let database = source.manifest.as_ref().map(|m| m.database.name.as_str());
    let id = source
        .manifest
        .as_ref()
        .map_or("", |m| m.database.uuid.as_str());
    let Some(from) = source.environment.as_deref().and_then(|name| {
        envs.iter().find(|e| match database {
            Some(database) => e.recorded_as(name, database, id),
            None => e.name == name,
        })
    }) else {
        // Of no database configured now, in any environment: one taken out
        // of the configuration, or another project's (a shared backup
        // directory), is another database, with another schema; only a
        // new database (above) takes it.
        if let (Some(name), Some(database)) = (source.environment.as_deref(), database)
            && database != target.database_name
        {
            if let Some(note) = target.renamed_from(database, id) {
                crate::stop!(
                    crate::exit::Exit::Refused,
                    "refusing to restore a backup of {database} (recorded as {name}) into {} ({}): \
                     {note}. Nothing was done.",
                    target.name,
                    target.database_name
                );
            }
            crate::stop!(
                crate::exit::Exit::Refused,
                "refusing to restore a backup of {database} (recorded as {name}) into {} ({}): \
                 {database} is not defined by this configuration (another project's or \
                 checkout's database sharing this backup directory, or one taken out of the \
                 configuration), so it is another database, with another schema. Restore it \
                 with the configuration that defines it, or into a database of its own with \
                 `--to new:NAME`. Nothing was done.",
                target.name,
                target.database_name
            );
        }
        return Ok(());
    };
    if from.binding != target.binding {
        return Err(another_binding(from, target, envs));
    }
    Ok(())
}

/// The refusal (exit 3) of a backup of `from`'s database into `target`,
/// of another binding, with the restore that takes it: into the target's
/// environment when it has a database of that binding, else into the
/// backup's own, which has (`--database` in an environment without one is
/// refused in turn).
fn another_binding(from: &Environment, target: &Environment, envs: &Environments) -> anyhow::Error {
    let has_it =
        { envs.iter() }.any(|e| e.env_name == target.env_name && e.binding == from.binding);
    let into = if has_it {
        &target.env_name
    } else {
        &from.env_name
    };
    crate::exit::Exit::Refused.error(anyhow::anyhow!(
        "refusing to restore a backup of {} ({}, binding {}) into {} ({}, binding {}): it is \
         another database, with another schema. Restore it into a database with binding {}: \
         `--to {} --database {}`. Nothing was done.",
        from.name,
        from.database_name,
        from.binding,
        target.name,
        target.database_name,
        target.binding,
        from.binding,
        d1_core::wording::shell_word(into),
        d1_core::wording::shell_word(&from.binding),
    ))
}

/// A backup going to production must say, in every field, that it was
/// taken from production's database: its environment, and its database's
/// name and id. A manifest relabelled by hand changes one and not the rest.
/// Production's database replaced by a new one under the same name (the
/// old one deleted after an incident, the new id in the configuration)
/// keeps its backups, recorded with the old id: they go into the new one
/// when the operator says that id (`--previous-database-id`), besides the
/// typed name; never an id another environment of this configuration has,
/// and never a backup taken after one of the database now configured: that
/// one's database was still production's somewhere (another checkout's or
/// account's, sharing the backup directory) when ours already was, so it is
/// not the one replaced.
pub(super) fn guard_same_database(
    (file, m): (&Path, &Manifest),
    target: &Environment,
    args: &RestoreArgs,
    envs: &Environments,
    backup_dir: &Path,
) -> Result<Option<Deferred>> {
    let db = &m.database;
    let ours = target.recorded_as(&m.environment, &db.name, &db.uuid);
    if ours && db.uuid.eq_ignore_ascii_case(&target.database_id) {
        return Ok(None);
    }
    if ours {
        return guard_replaced_database(m, target, args, envs, backup_dir);
    }
    crate::stop!(
        crate::exit::Exit::Refused,
        "refusing to restore into {} (production, database id {}): the backup's manifest says \
         environment {:?}, database {:?} with id {:?}, which is not production's database. Only \
         a backup taken from {} may go there. {} Nothing was done.",
        target.database_name,
        target.database_id,
        m.environment,
        db.name,
        db.uuid,
        target.database_name,
        way_of_another_database(file, m, target, envs)
    )
}

/// Where a backup of another database than production's, refused there,
/// goes: the environment whose database its manifest names (one recorded
/// under production's name, misfiled or relabelled, is that one's
/// backup), else a database of its own.
fn way_of_another_database(
    file: &Path,
    m: &Manifest,
    target: &Environment,
    envs: &Environments,
) -> String {
    if let Some(owner) = envs.iter().find(|e| e.records(m) && !e.is_production()) {
        return format!(
            "Its database is {}'s in wrangler.toml: restore it there, `cargo xtask restore {} \
             --to {}`.",
            owner.name,
            d1_core::wording::shell_word(&file.display().to_string()),
            d1_core::wording::shell_word(&owner.name)
        );
    }
    format!(
        "If this is production's backup from before its binding was moved to {}, restore it \
         into a database of its own with `--to new:NAME` and move the binding to that one \
         (README, \"Into a brand-new database\"); otherwise restore it into the environment it \
         came from.",
        target.database_name
    )
}

/// A backup of production's environment and database name, with another
/// id than the one configured now: it goes there only if it is of the
/// database production replaced, as `--previous-database-id` says, and no
/// other environment has its id, and no backup of the database configured
/// now was taken before it. The id not said is refused with the guards
/// after it ([`Deferred`]); another id than the manifest's, alone: it
/// says the operator meant another backup, whose refusals these are not.
pub(super) fn guard_replaced_database(
    m: &Manifest,
    target: &Environment,
    args: &RestoreArgs,
    envs: &Environments,
    backup_dir: &Path,
) -> Result<Option<Deferred>> {
    let db = &m.database;
    let said = args.previous_database_id.as_deref();
    let elsewhere = envs
        .iter()
        .find(|e| !e.database_id.is_empty() && e.database_id.eq_ignore_ascii_case(&db.uuid));
    if let Some(other) = elsewhere {
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore into {} (production, database id {}): the backup's manifest \
             says database {:?} with id {:?}, which this configuration gives {} ({}). It is \
             not production's database. Nothing was done.",
            target.database_name,
            target.database_id,
            db.name,
            db.uuid,
            other.name,
            other.database_name
        );
    }
    // What the backup is, as each refusal below begins.
    let of_it = format!(
        "refusing to restore into {} (production, database id {}): the backup is of {} ({}) \
         with id {:?}, taken {}",
        target.database_name,
        target.database_id,
        db.name,
        m.environment,
        db.uuid,
        m.created_at.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(before) = backed_up_before(backup_dir, target, m)? {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{of_it}, after {} was already backed up as production's database with the \
             configured id ({before}). So it is not the database production replaced: it is \
             another (another checkout's or account's production sharing this backup \
             directory, or a manifest edited by hand), and --previous-database-id does not \
             take it. Restore it into a database of its own with `--to new:NAME`. Nothing was \
             done.",
            target.database_name,
        );
    }
    match said {
        Some(id) if id.eq_ignore_ascii_case(&db.uuid) => Ok(None),
        Some(id) => crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to restore into {} (production, database id {}): \
             --previous-database-id {} is not the id the backup's manifest records ({:?}). \
             Nothing was done.",
            target.database_name,
            target.database_id,
            d1_core::names::shown(id),
            db.uuid
        ),
        None => Ok(Some(Deferred::new(
            crate::exit::Exit::Refused.error(anyhow::anyhow!(
                "{of_it}, another D1 database than the one the configuration now gives it. \
                 Only if production's database was replaced after that (deleted, and created \
                 again under this name) and {:?} was its id, say that this backup is of the \
                 one replaced: add --previous-database-id {} (with --confirm {}). A backup of \
                 another checkout's or account's production is not one: restore it with `--to \
                 new:NAME`. Nothing was done.",
                db.uuid,
                d1_core::wording::shell_word(&db.uuid),
                d1_core::wording::shell_word(&target.database_name)
            )),
            Answer::PreviousDatabaseId(Some(db.uuid.clone())),
        ))),
    }
}

/// The name of a backup in `backup_dir` of `target`'s database with its
/// configured id, taken before `m` was (the earliest): the database `m`
/// records was then not yet replaced by it. Taken before is as `latest`
/// orders backups ([`d1_core::order`]), not by date alone: a backup taken
/// after one a fast clock dated ahead records it, and was taken after it.
pub(super) fn backed_up_before(
    backup_dir: &Path,
    target: &Environment,
    m: &Manifest,
) -> Result<Option<String>> {
    let (entries, _) = crate::edge::inventory::scan_all(backup_dir)?;
    // `m` is placed among them (last: it may be one of them, or not here).
    let manifests: Vec<&Manifest> = { entries.iter() }.map(|e| &e.manifest).chain([m]).collect();
    let order = crate::edge::inventory::newest_first(manifests.iter().copied());
    Ok({ order.into_iter() }
        .skip_while(|&i| i != entries.len())
        .skip(1)
        .map(|i| manifests[i])
        .filter(|o| target.records(o) && o.database.uuid.eq_ignore_ascii_case(&target.database_id))
        .last()
        .map(|o| o.file.name.clone()))
}

/// Each of `names` as [`d1_core::names::shown_name`] prints it, for a list.
fn shown_names<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    { names.iter() }
        .map(|n| d1_core::names::shown_name(n.as_ref()).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    /// LX's guard compared only a dump's tables and indexes: a view under a
    /// migration's name, or a virtual table in place of a migration's
    /// table, was never judged. Both are now in what it compares.
    #[test]
    fn the_schema_guard_compares_views_and_virtual_tables_too() {
        let schema = [
            "CREATE TABLE t (a CHECK (a > 0))".to_owned(),
            "CREATE VIEW admins AS SELECT a FROM t".to_owned(),
            "CREATE VIRTUAL TABLE accounts USING fts5(email)".to_owned(),
            "CREATE INDEX t_a ON t (a)".to_owned(),
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END".to_owned(),
        ];
        let defined = defined_by_dump(&schema);
        assert_eq!(
            defined.keys().map(String::as_str).collect::<Vec<_>>(),
            ["accounts", "admins", "t", "t_a"]
        );
    }

    use super::*;
    use crate::edge::inventory::Entry;
    use crate::edge::inventory::tests::entry;

    /// The repository's prod, the content digest of the rows "restored",
    /// and backups of prod's database: each of `mode`, taken `minutes` in,
    /// of the rows named.
    fn prod_backups(
        backups: &[(&str, i64, &str)],
    ) -> (Environment, BTreeMap<String, String>, Vec<Entry>) {
        let prod = Environments::parse(include_str!("../../../../wrangler.toml"))
            .unwrap()
            .resolve("prod")
            .unwrap()
            .clone();
        let entries = { backups.iter() }
            .map(|&(mode, minutes, rows)| {
                let mut e = entry("prod", mode, minutes, Some("good"));
                e.manifest.database.name = prod.database_name.clone();
                e.manifest.database.uuid = prod.database_id.clone();
                e.manifest.content = Some([("t".to_owned(), rows.to_owned())].into());
                e
            })
            .collect();
        (
            prod,
            [("t".to_owned(), "restored".to_owned())].into(),
            entries,
        )
    }

    /// A `--table` or data-only backup of the target, taken after an
    /// earlier restore of these rows, is not the first backup of other
    /// rows: it holds part of the database. The safety backup that earlier
    /// restore took is still named, where "changed no row" was said.
    #[test]
    fn a_partial_backup_is_not_the_target_before_an_earlier_restore() {
        let (prod, wanted, mut entries) = prod_backups(&[
            ("full", 60, "restored"),
            ("data-only", 50, "part"),
            ("full", 40, "before"),
        ]);
        entries.push(entry("staging", "full", 0, Some("good")));
        entries[2].manifest.reason = Some(format!("{SAFETY_REASON}backup-staging-0.sql"));
        let source = (
            Path::new("b/backup-staging-0.sql"),
            Some(entries[3].manifest.created_at),
        );
        let safety = entries[0].file.clone();
        let held = held_before(&entries, source, &prod, &safety, &wanted);
        assert!(
            matches!(&held, HeldBefore::Restored(f) if *f == entries[2].file),
            "{held:?}"
        );
    }

    /// A backup restored from another directory may have the file name of
    /// a backup of the target here (both taken in the same minute): that
    /// one, of other rows and taken after it, is still the newest backup
    /// from before them, named where its safety backup is gone.
    #[test]
    fn a_backup_here_named_as_the_one_restored_from_elsewhere_is_not_it() {
        let (prod, wanted, entries) =
            prod_backups(&[("full", 60, "restored"), ("full", 40, "before")]);
        let elsewhere = Path::new("elsewhere").join(file_name(&entries[1].file));
        let taken = entries[1].manifest.created_at - chrono::Duration::seconds(30);
        let safety = entries[0].file.clone();
        let held = held_before(&entries, (&elsewhere, Some(taken)), &prod, &safety, &wanted);
        assert!(
            matches!(&held, HeldBefore::SafetyGone(f) if *f == entries[1].file),
            "{held:?}"
        );
    }
}
