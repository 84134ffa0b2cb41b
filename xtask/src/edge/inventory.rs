//! The backups on disk, read from their manifests: what `list` shows and
//! what `latest` means.
//!
//! `latest` is the newest backup of an environment that holds the whole
//! database and passed verification. A backup that failed verification stays
//! on disk, marked bad, and is never chosen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::config::environment::{Environment, Environments};
use crate::edge::manifest_file::ManifestFile;
use d1_core::manifest::{self, Manifest};

/// What [`Entry::verified`] calls a backup verified good whose manifest
/// was changed since.
pub const MANIFEST_CHANGED: &str = "manifest changed";

/// One backup file and its manifest.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: PathBuf,
    pub manifest: Manifest,
    /// The file's size when the directory was read.
    pub bytes_on_disk: u64,
}

impl Entry {
    /// A backup of the whole database (not `--table`, not schema- or data-only).
    pub fn is_whole(&self) -> bool {
        self.manifest.is_whole()
    }

    /// Whether this is the backup `file` (the same path: one restored from
    /// another directory may share its name), or one of its rows: its
    /// manifest records `content`, the content digest of `file`'s. Going
    /// back to either from a restore of `file` brings back nothing of
    /// before it.
    pub fn is_of_rows(&self, file: &Path, content: Option<&BTreeMap<String, String>>) -> bool {
        self.file == file || content.is_some_and(|c| self.manifest.content.as_ref() == Some(c))
    }

    /// `good`, `bad` or `unverified`, as the manifest records; `damaged`
    /// when the file is not the size its manifest records (truncated,
    /// emptied, replaced) and no verification has found it bad already;
    /// `manifest changed` when it was verified good, but its manifest is
    /// no longer the one verified ([`Manifest::changed_since_verified`]).
    pub fn verified(&self) -> &str {
        match &self.manifest.verification {
            Some(v) if v.outcome == "bad" => "bad",
            _ if !self.is_intact() => "damaged",
            Some(v) if v.is_good() && self.manifest.changed_since_verified() => MANIFEST_CHANGED,
            Some(v) if v.is_good() => "good",
            _ => "unverified",
        }
    }

    /// Whether the file is the size its manifest records. Only a size: the
    /// sha256 is checked wherever the bytes are read (verify, restore,
    /// upload, prune's newest verified backup), but every `list` and
    /// `status` cannot hash every backup.
    pub fn is_intact(&self) -> bool {
        self.bytes_on_disk == self.manifest.file.bytes
    }

    /// Whether the file is still the bytes its manifest records: its size,
    /// then its sha256 (the whole file is read). `Err` says what differs.
    pub fn still_as_verified(&self) -> std::result::Result<(), String> {
        let want = &self.manifest.file;
        self.still_its_size()?;
        match crate::edge::fsutil::check_recorded(&self.file, want) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("its file's sha256 is not the one recorded".to_owned()),
            Err(_) => Err("its file cannot be read".to_owned()),
        }
    }

    /// Whether the file is still the size its manifest records (its bytes
    /// are not read). `Err` says what differs.
    pub fn still_its_size(&self) -> std::result::Result<(), String> {
        let bytes = std::fs::symlink_metadata(&self.file)
            .map_err(|_| "its file cannot be read".to_owned())?
            .len();
        if bytes != self.manifest.file.bytes {
            return Err(format!(
                "its file is {bytes} bytes, not the {} recorded",
                self.manifest.file.bytes
            ));
        }
        Ok(())
    }

    /// Recorded as verified good, and still the size it was: what `latest`,
    /// `status` and the migration record may count on.
    pub fn is_verified_good(&self) -> bool {
        self.is_intact() && self.manifest.is_verified_good()
    }
}

/// Every backup in `dir` whose manifest reads and whose file is present,
/// newest first. A missing directory holds no backups. A manifest that
/// cannot be trusted is left out, with a warning (see [`scan_all`]), told
/// once in a run however often a command reads the directory.
pub fn scan(dir: &Path) -> Result<Vec<Entry>> {
    static TOLD: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let (found, refused) = scan_all(dir)?;
    let mut told = TOLD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for why in refused {
        if told.insert(why.clone()) {
            crate::warn!("{why}");
        }
    }
    Ok(found)
}

fn is_permission_denied(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    })
}

/// The one place that reads the backup directory: every backup whose
/// manifest reads and whose file is present, newest first, and, apart,
/// why each manifest that cannot be trusted was refused: one that cannot
/// be read or parsed (not a regular file, over the size limit, not JSON),
/// one that fails [`Manifest::validate`], one whose file is a symbolic
/// link or not a
/// regular file, and every manifest of a file that another manifest also
/// describes (two names for one file, through a hard link).
pub fn scan_all(dir: &Path) -> Result<(Vec<Entry>, Vec<String>)> {
    let mut found = Vec::new();
    let mut refused = Vec::new();
    // A directory that is not there holds no backups; one that cannot be
    // read is not an empty one.
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => Some(entries),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "cannot read the backup directory {}: {e}. Its backups are private to the user who \
             took them: run this as that user, or pass --backup-dir",
            d1_core::names::shown_path(dir)
        ),
    };
    for entry in entries.into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(manifest::MANIFEST_SUFFIX) {
            continue;
        }
        let path = entry.path();
        let Some(m) = trusted_manifest(dir, &path, &name, &mut refused)? else {
            continue;
        };
        let file = dir.join(&m.file.name);
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_file() => found.push(Entry {
                file,
                manifest: m,
                bytes_on_disk: meta.len(),
            }),
            Ok(meta) => refused.push(format!(
                "{} names {}, which is not a regular file ({}); it is ignored: move both aside",
                d1_core::names::shown_path(&path),
                d1_core::names::shown_path(&file),
                crate::edge::fsutil::not_regular(&meta).unwrap_or("not a file")
            )),
            Err(_) => {} // A manifest whose file is gone is ignored, as always.
        }
    }
    refuse_shared_files(&mut found, &mut refused);
    sort_newest_first(&mut found);
    Ok((found, refused))
}

/// Every manifest in `dir` that can be trusted, its backup file there or
/// not (a manifest may be all that records an offsite copy: `offsite
/// reindex` rebuilds an index from them); why each other was refused is
/// warned of.
pub fn trusted_manifests(dir: &Path) -> Result<Vec<Manifest>> {
    let mut found = Vec::new();
    let mut refused = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(manifest::MANIFEST_SUFFIX) {
            continue;
        }
        found.extend(trusted_manifest(dir, &entry.path(), &name, &mut refused)?);
    }
    for why in refused {
        crate::warn!("{why}");
    }
    Ok(found)
}

/// Says (a warning each) what in `dir` is half a backup, which no command
/// lists, restores or prunes: a manifest whose dump is gone (deleted or
/// moved by hand: "dump missing") and a file named as a backup is with no
/// manifest beside it. `list`, `status` and `prune` tell them, with the
/// fix; prune deletes neither (the manifest may be all that records an
/// offsite copy to fetch the dump back from, and a dump is data). A
/// manifest that cannot be trusted is told by [`scan`] instead. The file
/// a live run is `placing` (renamed into place, its manifest written
/// next; `crate::steps::lock::being_placed`) is passed over.
pub fn tell_loose_ends(dir: &Path, placing: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if name.starts_with('.') || !regular {
            continue;
        }
        if name.ends_with(manifest::MANIFEST_SUFFIX) {
            let trusted = Manifest::parse(&path)
                .ok()
                .filter(|m| m.validate(&name).is_ok());
            if let Some(m) = trusted.filter(|m| is_gone(&dir.join(&m.file.name))) {
                crate::warn!("{}", dump_missing(&path, &m));
            }
            continue;
        }
        if placing == Some(name.as_str()) {
            // A live run's backup, its manifest written next.
            continue;
        }
        let backup = manifest::backup_name(&name);
        if let Some(backup) = backup.filter(|_| is_gone(&manifest::manifest_path(&path))) {
            crate::warn!(
                "{} is named as a backup but has no manifest beside it ({}): no command lists, \
                 restores or prunes it, and prune leaves it. If its manifest was deleted and \
                 the backup was uploaded, `cargo xtask offsite fetch {} --env {}` puts it back \
                 beside it; otherwise check it with `cargo xtask verify {} --no-manifest`, and \
                 move it out of the backup directory or delete it",
                d1_core::names::shown_path(&path),
                d1_core::names::file_name(&manifest::manifest_path(&path)),
                d1_core::wording::shell_word(&name),
                d1_core::wording::shell_word(crate::config::environment::short_name(backup.env)),
                d1_core::wording::shell_word(&d1_core::names::shown_path(&path)),
            );
        }
    }
}

/// Nothing at `path`, not even a dangling link.
fn is_gone(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// What is said of the manifest at `path` (`m`) whose dump is gone, by
/// `list`, `status`, `prune` and a `verify` of the dump's name: where the
/// dump may come back from, and that the manifest is otherwise to delete.
pub fn dump_missing(path: &Path, m: &Manifest) -> String {
    let back = match &m.offsite {
        Some(_) => format!(
            "bring the dump back from its offsite copy with `cargo xtask offsite fetch {} --env \
             {}`, or, if it is not wanted, delete the manifest: rm {}",
            d1_core::wording::shell_word(&m.file.name),
            d1_core::wording::shell_word(&m.environment),
            d1_core::wording::shell_word(&d1_core::names::shown_path(path))
        ),
        None => format!(
            "it records no offsite copy: put the dump back if it was moved, or else delete the \
             manifest: rm {}",
            d1_core::wording::shell_word(&d1_core::names::shown_path(path))
        ),
    };
    format!(
        "{} records the backup {}, whose file is gone (dump missing): no command lists, \
         restores or prunes it, and prune leaves the manifest; {back}",
        d1_core::names::shown_path(path),
        d1_core::names::shown(&m.file.name),
    )
}

/// The manifest at `path`, if it can be trusted; if not, why it is refused
/// goes to `refused`. One that this user may not read, or that a newer
/// version wrote, stops the command.
fn trusted_manifest(
    dir: &Path,
    path: &Path,
    name: &str,
    refused: &mut Vec<String>,
) -> Result<Option<Manifest>> {
    // Manifests are written whole (a hidden partial file, renamed): one
    // that cannot be read or parsed is not this tool's, and is refused
    // like one that fails validation (a FIFO, a device, a huge file).
    let m = match Manifest::parse(path) {
        Ok(m) => m,
        // Not this user's to read (a directory it may list but not
        // enter, another operator's file): not an untrusted manifest.
        Err(e) if is_permission_denied(&e) => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "cannot read {}: permission denied. The backups in {} are private to the user \
             who took them: run this as that user, or pass --backup-dir",
            d1_core::names::shown_path(path),
            d1_core::names::shown_path(dir)
        ),
        Err(e) => {
            refused.push(format!(
                "{} cannot be read as a manifest and is ignored: {}",
                d1_core::names::shown_path(path),
                moved_aside(&e)
            ));
            return Ok(None);
        }
    };
    // A later version has used this directory: which backup is the
    // newest, or may go, is no longer this version's to say (passed
    // over, that backup would leave `latest` an older one).
    if m.is_newer_format() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} was written by a newer version of this tool (manifest format {}; this \
             version reads format {}), so this version cannot tell which backup in {} is the \
             newest or may be deleted. Update this checkout (`git pull`) and run the command \
             again, or pass --backup-dir. Nothing was done.",
            d1_core::names::shown_path(path),
            m.format_version,
            manifest::FORMAT_VERSION,
            d1_core::names::shown_path(dir)
        );
    }
    if let Err(e) = m.validate(name) {
        refused.push(format!(
            "{} cannot be trusted and is ignored: {}",
            d1_core::names::shown_path(path),
            moved_aside(&e)
        ));
        return Ok(None);
    }
    Ok(Some(m))
}

/// Takes out every entry whose file is also another entry's file.
fn refuse_shared_files(found: &mut Vec<Entry>, refused: &mut Vec<String>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let id = |e: &Entry| {
            std::fs::symlink_metadata(&e.file)
                .map(|m| (m.dev(), m.ino()))
                .ok()
        };
        let ids: Vec<_> = found.iter().map(id).collect();
        let mut keep = vec![true; found.len()];
        for i in 0..found.len() {
            for j in i + 1..found.len() {
                if ids[i].is_some() && ids[i] == ids[j] {
                    keep[i] = false;
                    keep[j] = false;
                    refused.push(format!(
                        "{} and {} are one file (two manifests describe it); both are ignored: \
                         move one backup and its manifest aside",
                        d1_core::names::shown_path(&found[i].file),
                        d1_core::names::shown_path(&found[j].file)
                    ));
                }
            }
        }
        let mut flags = keep.into_iter();
        found.retain(|_| flags.next().unwrap_or(true));
    }
}

/// Newest first, as [`d1_core::order`] places them: by date, and each
/// backup above the backups dated after it that it was taken after.
pub(crate) fn sort_newest_first(entries: &mut Vec<Entry>) {
    let order = newest_first(entries.iter().map(|e| &e.manifest));
    let mut taken: Vec<Option<Entry>> = entries.drain(..).map(Some).collect();
    entries.extend(order.into_iter().filter_map(|i| taken[i].take()));
}

/// The positions of `manifests`' backups, newest first ([`d1_core::order`]).
pub fn newest_first<'a>(manifests: impl Iterator<Item = &'a Manifest>) -> Vec<usize> {
    let dated: Vec<_> = manifests.map(d1_core::order::Dated::of_manifest).collect();
    d1_core::order::newest_first(&dated)
}

/// Which of `entries` the newest backup of `env` is chosen from, the one
/// rule of `latest:ENV`, `status` and the way back a killed restore names:
/// its own backups ([`Environment::owns`]) when it has a whole one
/// verified good;
/// only when it has none, every backup recorded under its names, so that a
/// database created again under the same name still finds (and the
/// restore guards judge) the backups of the one it replaced.
pub fn counted_for<'a>(
    env: &'a crate::config::environment::Environment,
    entries: &[Entry],
) -> impl Fn(&Manifest) -> bool + 'a {
    // A whole backup of its own that failed verification (a database
    // created again, whose first backup is BAD) leaves the old id's
    // verified backups counted, for `latest:` and the way back to find.
    let own =
        { entries.iter() }.any(|e| e.is_whole() && e.is_verified_good() && env.owns(&e.manifest));
    move |m| env.records(m) && (!own || env.owns(m))
}

/// The whole backups recorded under `env`'s names with another database
/// id, newer than `chosen`, that [`counted_for`] passed over in choosing
/// it, in `entries`' order; none when `chosen` is not among them.
pub fn other_ids_passed_over<'e>(
    env: &crate::config::environment::Environment,
    entries: &'e [Entry],
    chosen: &Path,
) -> Vec<&'e Entry> {
    let Some(chosen) = entries.iter().find(|e| e.file == chosen) else {
        return Vec::new();
    };
    { entries.iter() }
        .filter(|e| e.is_whole() && env.records(&e.manifest) && !env.owns(&e.manifest))
        .filter(|e| e.manifest.created_at > chosen.manifest.created_at)
        .collect()
}

/// Says (a warning) how many whole backups recorded under `env`'s names
/// with another database id, newer than `chosen`, [`counted_for`] passed
/// over in choosing `what` (`latest:prod`), and the way to pick one: by its
/// file. None is ever passed over quietly.
pub fn say_other_ids_passed_over(
    env: &crate::config::environment::Environment,
    entries: &[Entry],
    chosen: &Path,
    what: &str,
) {
    let newer = other_ids_passed_over(env, entries, chosen);
    let (Some(chosen), Some(newest)) = (entries.iter().find(|e| e.file == chosen), newer.first())
    else {
        return;
    };
    let ids: BTreeSet<&str> = newer
        .iter()
        .map(|e| e.manifest.database.uuid.as_str())
        .collect();
    let ids: Vec<String> = ids
        .into_iter()
        .map(|id| d1_core::names::shown(id).into_owned())
        .collect();
    crate::warn!(
        "{what} is {}, of {}'s database (id {}): {} newer {} recorded under its names with \
         another database id ({}) {} passed over: another checkout's database sharing the \
         backup directory, or the one {} had before it was created again. To use one, give \
         its file (as `cargo xtask list` prints it), such as {}",
        chosen.manifest.file.name,
        env.name,
        d1_core::names::shown(&env.database_id),
        newer.len(),
        if newer.len() == 1 {
            "backup"
        } else {
            "backups"
        },
        ids.join(", "),
        if newer.len() == 1 { "is" } else { "are" },
        env.name,
        d1_core::wording::shell_word(&newest.manifest.file.name)
    );
}

/// A backup recorded under an environment's name whose manifest names a
/// database that environment does not have: another environment's, or one
/// no environment has (a manifest misfiled, relabelled by hand, or
/// hostile). No database of that environment counts it
/// ([`Environment::records`]), so `latest:ENV` and `status` pass it over:
/// `list` marks it and every command that passes it over says so.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Misfiled {
    pub file: String,
    /// The database its manifest names, and that database's id.
    pub database: String,
    pub database_id: String,
    /// The environment whose database that is in wrangler.toml; `None`
    /// (null) when it is no environment's.
    pub database_of: Option<String>,
}

/// [`Misfiled`] when `m` is recorded under a configured environment's
/// name and names a database no database of that environment is. One of
/// a database the configuration renamed (the same id) is not: its backups
/// are told apart, with their own way forward
/// ([`Environment::renamed_from`]).
pub fn misfiled(envs: &Environments, m: &Manifest) -> Option<Misfiled> {
    let db = &m.database;
    let short = crate::config::environment::short_name(&m.environment);
    let mut under = envs.iter().filter(|e| e.env_name == short).peekable();
    under.peek()?;
    let not_its = |e: &Environment| !e.records(m) && e.renamed_from(&db.name, &db.uuid).is_none();
    if !under.all(not_its) {
        return None;
    }
    Some(Misfiled {
        file: m.file.name.clone(),
        database: db.name.clone(),
        database_id: db.uuid.clone(),
        database_of: envs.whose(m).map(|e| e.name.clone()),
    })
}

/// The [`misfiled`] backups among `entries` recorded under `env`'s
/// environment name, newest first, each said once in a run (a warning):
/// which file, why it is not `env`'s, and what to do with it. `list`,
/// `latest:ENV` and `status` all say it in these words.
pub fn say_misfiled(
    envs: &Environments,
    env: Option<&Environment>,
    entries: &[Entry],
) -> Vec<Misfiled> {
    static TOLD: std::sync::Mutex<BTreeSet<PathBuf>> = std::sync::Mutex::new(BTreeSet::new());
    let found: Vec<(&Entry, Misfiled)> = { entries.iter() }
        .filter_map(|e| Some((e, misfiled(envs, &e.manifest)?)))
        .filter(|(e, _)| {
            env.is_none_or(|env| {
                crate::config::environment::short_name(&e.manifest.environment) == env.env_name
            })
        })
        .collect();
    let mut told = TOLD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // One warning for the backups of one database under one name, not
    // one each: after prod's binding moved to a restored database, every
    // backup it kept is "no environment's", and `status` said a paragraph
    // for each of them, every run.
    let mut groups: Vec<Vec<&(&Entry, Misfiled)>> = Vec::new();
    for found in found.iter().filter(|(e, _)| told.insert(e.file.clone())) {
        let key = |(e, m): &(&Entry, Misfiled)| {
            let env = crate::config::environment::short_name(&e.manifest.environment);
            (env.to_owned(), m.database.clone(), m.database_id.clone())
        };
        match groups.iter_mut().find(|g| key(g[0]) == key(found)) {
            Some(group) => group.push(found),
            None => groups.push(vec![found]),
        }
    }
    for group in groups {
        let (newest, m) = group[0];
        let oldest =
            (group.len() > 1).then(|| (group.len(), group[group.len() - 1].1.file.as_str()));
        crate::warn!("{}", misfiled_words(&newest.manifest, m, oldest));
    }
    found.into_iter().map(|(_, m)| m).collect()
}

/// Why the misfiled backup `m` (of manifest `manifest`) is not the
/// backup of the environment it is recorded under, and what to do; with
/// `more` (how many, the oldest's file), for that many backups of the
/// same database under the same name, `m` the newest.
pub fn misfiled_words(manifest: &Manifest, m: &Misfiled, more: Option<(usize, &str)>) -> String {
    let recorded = crate::config::environment::short_name(&manifest.environment);
    let file = d1_core::wording::shell_word(&m.file);
    let (it, its, one) = match more {
        None => ("it", "it and its manifest", "it"),
        Some(_) => ("they", "them and their manifests", "one"),
    };
    let (whose, way) = match &m.database_of {
        Some(owner) => (
            format!("which is {owner}'s in wrangler.toml, not {recorded}'s"),
            format!(
                "If {it} {} {owner}'s, restore {one} there by its file: `cargo xtask restore \
                 {file} --to {}`; otherwise move {its} out of the backup directory, or delete \
                 them.",
                if more.is_some() { "are" } else { "is" },
                d1_core::wording::shell_word(owner)
            ),
        ),
        // Not deleted on our word: it may be the database this
        // environment had before its binding was moved to a restored one.
        None => (
            format!(
                "which is no environment's in wrangler.toml (the database {recorded} had before \
                 its binding was moved, another project's, or a manifest misfiled)"
            ),
            format!(
                "To use {one}, restore it into a database of its own: `cargo xtask restore \
                 {file} --to new:NAME`; if {it} {} not to keep, move {its} out of the backup \
                 directory.",
                if more.is_some() { "are" } else { "is" },
            ),
        ),
    };
    let database = format!(
        "database {} (id {}), {whose}",
        d1_core::names::shown(&m.database),
        d1_core::names::shown(&m.database_id),
    );
    match more {
        None => format!(
            "{} is recorded as a backup of {recorded}, but its manifest names {database}: it is \
             not {recorded}'s backup, and `latest:{recorded}` and `status` pass it over. {way}",
            d1_core::names::shown(&m.file),
        ),
        Some((count, oldest)) => format!(
            "{count} backups are recorded as backups of {recorded} (the newest {}, the oldest \
             {}; `cargo xtask list` marks each), but their manifests name {database}: they are \
             not {recorded}'s backups, and `latest:{recorded}` and `status` pass them over. {way}",
            d1_core::names::shown(&m.file),
            d1_core::names::shown(oldest),
        ),
    }
}

/// The newest whole backup of `env` that passed verification.
#[cfg(test)]
pub fn latest_good(entries: &[Entry], env: &str) -> Result<PathBuf> {
    latest_good_of(entries, (env, "backups"), |m| m.environment == env)
}

/// `latest_good` of the backups whose manifest `is_of` the database
/// `env` names (`Environment::recorded_as`), read from the backup
/// directory `looked_in` says ([`none_of`]).
pub fn latest_good_of(
    entries: &[Entry],
    (env, looked_in): (&str, &str),
    is_of: impl Fn(&Manifest) -> bool,
) -> Result<PathBuf> {
    let whole: Vec<&Entry> = entries
        .iter()
        .filter(|e| is_of(&e.manifest) && e.is_whole())
        .collect();
    let now = chrono::Utc::now();
    let (chosen, passed_over) = newest_verified(&whole, now);
    if let Some(chosen) = chosen {
        say_chosen(env, (&whole, chosen), &passed_over, now);
        return Ok(chosen.file.clone());
    }
    let verified_ahead =
        { passed_over.iter() }.find(|(e, _)| e.is_verified_good() && dated_ahead(e, now).is_some());
    if let Some((newest, why)) = verified_ahead {
        return Err(all_ahead(env, newest, why));
    }
    match passed_over.first() {
        None => Err(none_of(env, looked_in)),
        Some((newest, why)) => bail!(
            "no full backup of {env} has passed verification (the newest, {}, is {why}); check \
             it with `cargo xtask verify {}` or take a new one with `cargo xtask backup {env}`",
            newest.file.display(),
            d1_core::wording::shell_word(&newest.file.display().to_string())
        ),
    }
}

/// No whole backup of `env` in the backup directory `looked_in` says (its
/// path, and what chose it: a `QBTIME_BACKUP_DIR` left in a shell looks
/// elsewhere than `backups/`), as `list` names the one it read.
fn none_of(env: &str, looked_in: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no full backup of {env} in {looked_in}; take one with `cargo xtask backup {env}`"
    )
}

/// Of `whole` (one database's whole backups, newest first), the newest
/// recorded as verified good whose file is still the bytes that were
/// verified (hashed: a file replaced by one of the same size is not), and
/// each newer one passed over with why.
pub fn newest_verified<'a>(
    whole: &[&'a Entry],
    now: chrono::DateTime<chrono::Utc>,
) -> (Option<&'a Entry>, Vec<(&'a Entry, String)>) {
    let mut passed_over = Vec::new();
    for &e in whole {
        if let Some(why) = dated_ahead(e, now) {
            passed_over.push((e, why));
            continue;
        }
        if e.verified() == MANIFEST_CHANGED {
            passed_over.push((e, MANIFEST_CHANGED_SINCE.to_owned()));
            continue;
        }
        if !e.is_verified_good() {
            passed_over.push((e, e.verified().to_owned()));
            continue;
        }
        match e.still_as_verified() {
            Ok(()) => return (Some(e), passed_over),
            Err(why) => passed_over.push((e, format!("recorded as verified, but {why}"))),
        }
    }
    (None, passed_over)
}

/// Why a backup whose manifest was changed since it was verified is
/// passed over.
const MANIFEST_CHANGED_SINCE: &str = "recorded as verified, but its manifest was changed since";

/// [`d1_core::wording::dated_ahead`] of a backup.
fn dated_ahead(e: &Entry, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    d1_core::wording::dated_ahead(e.manifest.created_at, now)
}

/// The newest whole backup of `env`, verified or not (what `verify latest:ENV` checks).
#[cfg(test)]
pub fn latest_any(entries: &[Entry], env: &str) -> Result<PathBuf> {
    latest_any_of(entries, (env, "backups"), |m| m.environment == env)
}

/// `latest_any` of the backups whose manifest `is_of` the database `env`
/// names (`Environment::recorded_as`), read from the backup directory
/// `looked_in` says ([`none_of`]).
pub fn latest_any_of(
    entries: &[Entry],
    (env, looked_in): (&str, &str),
    is_of: impl Fn(&Manifest) -> bool,
) -> Result<PathBuf> {
    let now = chrono::Utc::now();
    let whole: Vec<&Entry> = { entries.iter() }
        .filter(|e| is_of(&e.manifest) && e.is_whole())
        .collect();
    let chosen = whole.iter().find(|e| dated_ahead(e, now).is_none());
    let ahead: Vec<(&Entry, String)> = { whole.iter() }
        .take_while(|e| dated_ahead(e, now).is_some())
        .filter_map(|e| Some((*e, dated_ahead(e, now)?)))
        .collect();
    match chosen {
        Some(chosen) => {
            say_chosen(env, (&whole, chosen), &ahead, now);
            Ok(chosen.file.clone())
        }
        None => match ahead.first() {
            Some((newest, why)) => Err(all_ahead(env, newest, why)),
            None => Err(none_of(env, looked_in)),
        },
    }
}

/// Says which backup `latest:ENV` is, `chosen` of `whole` (newest
/// first), when it passes over a newer one (`passed_over`, with why):
/// passing one over is never done quietly. A backup dated after now that
/// ranks below `chosen` (a backup taken since recorded it,
/// [`d1_core::order`]) is named too: its date still says a clock is wrong.
fn say_chosen(
    env: &str,
    (whole, chosen): (&[&Entry], &Entry),
    passed_over: &[(&Entry, String)],
    now: chrono::DateTime<chrono::Utc>,
) {
    let name = &chosen.manifest.file.name;
    for (newer, why) in passed_over {
        // Run, the verify records what the file is now: BAD when the
        // manifest no longer describes it.
        let again = match newer.verified() == MANIFEST_CHANGED {
            true => format!(
                " (`cargo xtask verify {}` checks it again)",
                d1_core::wording::shell_word(&newer.file.display().to_string())
            ),
            false => String::new(),
        };
        crate::warn!(
            "latest:{env} is {name}: the newer {} is {why} and is passed over{again}",
            newer.manifest.file.name,
        );
    }
    let below = { whole.iter() }.skip_while(|e| !std::ptr::eq(**e, chosen));
    for (e, why) in below.filter_map(|e| Some((e, dated_ahead(e, now)?))) {
        crate::warn!(
            "latest:{env} is {name}, taken after {}, which is {why}",
            e.manifest.file.name,
        );
    }
}

/// `latest:ENV` refused because every backup that could be it is dated
/// after this machine's clock (`newest` the newest of them).
fn all_ahead(env: &str, newest: &Entry, why: &str) -> anyhow::Error {
    crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
        "latest:{env} is none of the backups of {env}: each one that could be is dated after \
         this machine's clock (the newest, {}, is {why}). Check this machine's clock; meanwhile \
         name the backup you mean by its path",
        newest.file.display()
    ))
}

/// Which backup `latest` means to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latest {
    /// The newest whole backup that passed verification (restore, upload).
    Good,
    /// The newest whole backup, verified or not (verify).
    Any,
}

/// A bare name in `backup_dir`, or a path; the file must exist.
pub fn locate(backup_dir: &Path, word: &str) -> Result<PathBuf> {
    let bare = !word.contains(std::path::MAIN_SEPARATOR) && !word.contains('/');
    if !bare {
        let path = PathBuf::from(word);
        if !path.exists() {
            bail!(
                "no such file: {word}; give a path or `latest:ENV`, or a name that `cargo xtask list` prints"
            );
        }
        if !path.is_file() {
            bail!("{word} is not a file; give a backup file, or `latest:ENV`");
        }
        return Ok(path);
    }
    if word.is_empty() || word == "." || word == ".." {
        bail!("{word:?} is not a backup name; `cargo xtask list` prints the names");
    }
    let path = backup_dir.join(word);
    let link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    if link && !path.is_file() {
        bail!(
            "{word} in the backup directory {} is a symbolic link that leads to no regular \
             file: a backup there is the file itself. Give the backup's own path instead, or a \
             name that `cargo xtask list` prints (remove the link if it is none of yours)",
            backup_dir.display()
        );
    }
    if path.exists() && !path.is_file() {
        bail!(
            "{word} in the backup directory {} is not a regular file (a directory, a pipe or a \
             device); a backup is a file that `cargo xtask list` prints",
            backup_dir.display()
        );
    }
    if !path.is_file() {
        let manifest = manifest::manifest_path(&path);
        let kept = Manifest::parse(&manifest)
            .ok()
            .filter(|m| m.file.name == word);
        if let Some(m) = kept {
            bail!(
                "no such file: {word} in the backup directory {}, but its manifest {} remains: \
                 {}",
                backup_dir.display(),
                d1_core::names::file_name(&manifest),
                dump_missing(&manifest, &m)
            );
        }
        let guess = did_you_mean(&nearest_backups(backup_dir, word));
        bail!(
            "no such file: {word} in the backup directory {}{guess}; `cargo xtask list` prints \
             the names there (for a file elsewhere, give its path, e.g. ./{word})",
            backup_dir.display()
        );
    }
    // A link in the backup directory must not lead a bare name elsewhere.
    let inside = match (path.canonicalize(), backup_dir.canonicalize()) {
        (Ok(file), Ok(dir)) => file.parent() == Some(dir.as_path()),
        _ => false,
    };
    if !inside {
        bail!(
            "{word} in {} leads outside the backup directory; give the file's own path instead",
            backup_dir.display()
        );
    }
    Ok(path)
}

/// At most three names in `backup_dir` near `word`, a bare name that is
/// not there: each a regular file (not a link, a pipe or a directory),
/// never `word` itself, with a name a backup run gives
/// ([`d1_core::manifest::backup_name`]) that prints as itself, and either
/// begins with `word` (its extension left off) or is within three edits of
/// it, by the whole name or by the name without its extension (`.sql` for
/// `.sql.zst`). Nearest first.
fn nearest_backups(backup_dir: &Path, word: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(backup_dir) else {
        return Vec::new();
    };
    let files = { entries.flatten() }
        // A regular file (a link is told as itself, not where it leads).
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok());
    nearest_names(files, word)
}

/// `; did you mean A, B or C?` for the `near` names, or nothing.
pub fn did_you_mean(near: &[String]) -> String {
    match near.split_last() {
        None => String::new(),
        Some((one, [])) => format!("; did you mean {one}?"),
        Some((last, rest)) => format!("; did you mean {} or {last}?", rest.join(", ")),
    }
}

/// At most three of `names` (a backup directory's files, an offsite
/// index's copies) near `word`, by the rule of [`nearest_backups`]:
/// never `word` itself, a backup's name that prints as itself, beginning
/// with `word` or within three edits of it. Nearest first.
pub fn nearest_names(names: impl Iterator<Item = String>, word: &str) -> Vec<String> {
    let stem = |n: &str| d1_core::manifest::backup_name(n).map_or(n.len(), |b| b.stem.len());
    let typed = { d1_core::manifest::BACKUP_EXTENSIONS.iter() }
        .find_map(|ext| word.strip_suffix(ext))
        .unwrap_or(word);
    let mut near: Vec<(usize, usize, String)> = names
        .filter(|n| n != word && d1_core::names::is_plain_file_name(n))
        .filter(|n| {
            d1_core::manifest::backup_name(n)
                .is_some_and(|b| d1_core::names::is_environment_name(b.env))
        })
        .filter_map(|n| {
            let whole = edits(word, &n);
            let by_stem = edits(typed, &n[..stem(&n)]);
            let prefix = word.len() >= 8 && n.starts_with(word);
            let d = if prefix { 0 } else { whole.min(by_stem) };
            (d <= 3).then_some((d, whole, n))
        })
        .collect();
    near.sort();
    near.into_iter().take(3).map(|(_, _, n)| n).collect()
}

/// The Levenshtein distance between `a` and `b`, by characters.
pub fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Why a manifest is ignored, ending with the fix, said once: the reader's
/// own error may already say to move the file aside.
fn moved_aside(e: &anyhow::Error) -> String {
    // The warning names the file: the reason is what follows the
    // context that names it again.
    let why = match e.downcast_ref::<crate::edge::manifest_file::NotAManifest>() {
        Some(_) => { e.chain().skip(1) }
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": "),
        None => format!("{e:#}"),
    };
    match why.to_ascii_lowercase().contains("move it aside") {
        true => why,
        false => format!("{why}; move it aside"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use d1_core::manifest::Verification;

    /// MM: a backup recorded under prod's name is misfiled when its
    /// manifest names staging's database (staging's, by name and id) or
    /// one no environment has; prod's own, one of prod's database with
    /// another id (told apart as another id), and one of prod's database
    /// renamed in the configuration (the same id) are not.
    #[test]
    fn a_backup_under_prods_name_naming_another_database_is_misfiled() {
        let envs = Environments::parse(include_str!("../../../wrangler.toml")).unwrap();
        let prod = envs.resolve("prod").unwrap();
        let staging = envs.resolve("staging").unwrap();
        let of = |name: &str, id: &str| {
            let mut m = entry("prod", "full", 0, Some("good")).manifest;
            m.database.name = name.to_owned();
            m.database.uuid = id.to_owned();
            misfiled(&envs, &m).map(|f| f.database_of)
        };
        let stagings = of(&staging.database_name, &staging.database_id);
        assert_eq!(stagings, Some(Some("staging".to_owned())));
        assert_eq!(of("qbtime_db_gone", "7e1f0c3a"), Some(None));
        assert_eq!(of(&prod.database_name, &prod.database_id), None);
        assert_eq!(of(&prod.database_name, "7e1f0c3a"), None);
        assert_eq!(of("qbtime_db_prod_old", &prod.database_id), None);
    }

    /// rvU: a dangling link or a pipe named like a backup was suggested
    /// ("did you mean …?"), and so was the typed word itself, a dangling
    /// link of that name: only regular files are, never what was typed.
    #[test]
    fn only_regular_files_other_than_the_word_typed_are_suggested() {
        let dir = tempfile::tempdir().unwrap();
        let typed = "backup-local-20261124-0900.sql";
        let file = "backup-local-20261124-0901.sql";
        std::fs::write(dir.path().join(file), "x").unwrap();
        let gone = dir.path().join("gone");
        std::os::unix::fs::symlink(&gone, dir.path().join(typed)).unwrap();
        std::os::unix::fs::symlink(&gone, dir.path().join("backup-local-20261124-0902.sql"))
            .unwrap();
        let fifo = dir.path().join("backup-local-20261124-0903.sql");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        assert_eq!(nearest_backups(dir.path(), typed), [file]);
    }

    /// The sha256 of the one byte `x`, each test entry's recorded content.
    const ONE_BYTE_SHA256: &str =
        "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";

    /// The environment `name` of this repository's own `wrangler.toml`.
    pub(crate) fn repo_environment(name: &str) -> crate::config::environment::Environment {
        crate::config::environment::Environments::parse(include_str!("../../../wrangler.toml"))
            .unwrap()
            .resolve(name)
            .unwrap()
            .clone()
    }

    pub(crate) fn entry(env: &str, mode: &str, minutes: i64, outcome: Option<&str>) -> Entry {
        let created_at = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(minutes);
        let text = format!(
            r#"{{"format_version":1,"tool":{{"name":"t","version":"0"}},"created_at":"{}",
            "environment":"{env}","database":{{"name":"d","uuid":"u","wrangler_env":null,"location":"local"}},
            "mode":"{mode}","tables":[],"file":{{"name":"backup-{env}-{minutes}.sql","bytes":1,"sha256":"{ONE_BYTE_SHA256}"}},
            "rows":{{}},"statements":0,"migrations":[],"encryption_key":null,"wrangler_version":null,
            "git_commit":null,"time_travel_bookmark":null,"virtual_tables":null,"reason":null}}"#,
            created_at.to_rfc3339()
        );
        let mut manifest: Manifest = serde_json::from_str(&text).unwrap();
        manifest.verification = outcome.map(|o| Verification {
            verified_at: created_at,
            outcome: o.to_owned(),
            failed: Vec::new(),
            seconds: 0.0,
            tool_version: "0".to_owned(),
            migrations_unchecked: false,
            manifest_sha256: None,
        });
        Entry {
            file: PathBuf::from(format!("b/backup-{env}-{minutes}.sql")),
            manifest,
            bytes_on_disk: 1,
        }
    }

    /// rvAQ: prod created again (a new id in the configuration), whose only
    /// backup of the new id failed verification: `latest:prod` still counts
    /// the old id's verified backups (the restore guards judge them), as
    /// it did before the rule of an environment's own backups; once a
    /// backup of the new id is verified, the old id's are passed over.
    #[test]
    fn an_environment_with_no_verified_backup_of_its_own_id_counts_the_old_ids() {
        let prod = repo_environment("prod");
        let of = |minutes: i64, id: &str, outcome: &str| {
            let mut e = entry("prod", "full", minutes, Some(outcome));
            e.manifest.database.name = prod.database_name.clone();
            e.manifest.database.uuid = id.to_owned();
            e
        };
        let old_id = "11111111-1111-4111-8111-111111111111";
        let entries = vec![of(10, &prod.database_id, "bad"), of(0, old_id, "good")];
        let counted = counted_for(&prod, &entries);
        assert!(
            counted(&entries[1].manifest),
            "the old id's verified backup"
        );
        let entries = vec![of(20, &prod.database_id, "good"), of(0, old_id, "good")];
        let counted = counted_for(&prod, &entries);
        assert!(!counted(&entries[1].manifest), "passed over for its own");
    }

    #[test]
    fn latest_is_the_newest_whole_backup_that_passed_verification() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = vec![
            entry("prod", "full", -5, Some("good")),
            entry("prod", "full", 0, Some("good")),
            entry("prod", "full", 10, Some("bad")),
            entry("prod", "data-only", 20, Some("good")),
            entry("staging", "full", 30, Some("good")),
            entry("prod", "full", 5, None),
        ];
        // Each file on disk, as its manifest records it.
        for e in &mut entries {
            e.file = dir.path().join(e.file.file_name().unwrap());
            std::fs::write(&e.file, "x").unwrap();
        }
        let at = |name: &str| dir.path().join(name);
        sort_newest_first(&mut entries);
        assert_eq!(
            latest_good(&entries, "prod").unwrap(),
            at("backup-prod-0.sql")
        );
        assert_eq!(
            latest_any(&entries, "prod").unwrap(),
            at("backup-prod-10.sql")
        );
        // Replaced by a file of the same size: not the bytes that were
        // verified, so passed over for the older good one.
        std::fs::write(at("backup-prod-0.sql"), "y").unwrap();
        assert_eq!(
            latest_good(&entries, "prod").unwrap(),
            at("backup-prod--5.sql")
        );
        let only_bad = vec![entry("prod", "full", 10, Some("bad"))];
        let err = latest_good(&only_bad, "prod").unwrap_err().to_string();
        assert!(err.contains("is bad"), "{err}");
        assert!(err.contains("cargo xtask verify"), "{err}");
        assert!(
            latest_good(&entries, "local")
                .unwrap_err()
                .to_string()
                .contains("cargo xtask backup local")
        );
    }

    #[test]
    fn a_bare_name_is_found_in_the_backup_directory_and_nowhere_else() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("backups");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("backup-local-1.sql"), "").unwrap();
        std::fs::write(root.path().join("outside.sql"), "").unwrap();
        assert_eq!(
            locate(&dir, "backup-local-1.sql").unwrap(),
            dir.join("backup-local-1.sql")
        );
        let err = locate(&dir, "backup-local-2.sql").unwrap_err().to_string();
        assert!(
            err.contains("no such file: backup-local-2.sql")
                && err.contains(&dir.display().to_string()),
            "{err}"
        );
        let path = root.path().join("missing.sql");
        let err = locate(&dir, path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("no such file: "), "{err}");
        assert!(locate(&dir, "..").is_err());
        assert!(locate(&dir, "").is_err());
        // Something that is there but is not a file is said to be so.
        std::fs::create_dir(dir.join("a-dir.sql")).unwrap();
        let err = locate(&dir, "a-dir.sql").unwrap_err().to_string();
        assert!(err.contains("is not a regular file"), "{err}");
        // A link in the directory that leads out is refused.
        std::os::unix::fs::symlink(root.path().join("outside.sql"), dir.join("link.sql")).unwrap();
        let err = locate(&dir, "link.sql").unwrap_err().to_string();
        assert!(err.contains("leads outside"), "{err}");
        // A path is a path.
        let outside = root.path().join("outside.sql");
        assert_eq!(locate(&dir, outside.to_str().unwrap()).unwrap(), outside);
    }
}
