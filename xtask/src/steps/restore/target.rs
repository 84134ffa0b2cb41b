//! The target as a restore reads it before anything changes: its schema
//! and objects, the state the mode needs, unchanged under the lock, and
//! its data-encryption key against the backup's.

use std::path::Path;

use anyhow::Result;

use super::{KEY_WARNING, Mode, RestoreArgs, Source};
use crate::config::environment::{Environment, Location};
use crate::config::project::Project;
use crate::edge::reader::DatabaseReader as TargetReader;
use crate::edge::wrangler::Wrangler;
use crate::steps::new_database::NewDatabase;
use d1_core::app::KeyRecord;
use d1_core::catalog::Catalog;
use d1_core::dump::KeyFingerprint;
use d1_core::statement;

/// Refuses a target whose tables, views or triggers changed between the
/// plan and the lock; returns its schema as read now.
pub(super) fn guard_unchanged(
    target_reader: &TargetReader<'_>,
    inspected: &Inspected,
    target: &Environment,
) -> Result<Catalog> {
    let now = read_catalog(target_reader)?;
    if existing_objects(&now) != inspected.existing {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} changed since the plan was made (tables, views or triggers were added or dropped); \
             run the restore again to see the new plan. Nothing was done.",
            target.database_name
        );
    }
    Ok(now)
}

/// What the target holds before the restore, read without changing it.
pub(super) struct Inspected {
    pub(super) catalog: Catalog,
    pub(super) existing: Vec<(String, String)>,
    pub(super) key_check: KeyCheck,
}

/// The target's catalog, the objects in it, and the refusal of a restore
/// into an empty database, for one that is not ([`read_target`]).
pub(super) type Read = (Catalog, Vec<(String, String)>, Result<()>);

/// Reads the target's schema, and refuses a target the mode cannot
/// restore into; the refusal of a restore into an empty database is
/// returned (`Err` in the `Ok`), to be said with the backup's
/// ([`super::guards::guard_definitions`]).
pub(super) fn read_target(
    args: &RestoreArgs,
    (target, target_reader): (&Environment, &TargetReader<'_>),
    wrangler: &Wrangler,
    new: Option<&NewDatabase>,
    local_file: &Path,
) -> Result<Read> {
    let catalog = match new {
        // Nothing to read before the database exists; a name in use is refused.
        Some(n) => {
            n.ensure_absent(wrangler)?;
            Catalog::default()
        }
        None => {
            let read = || read_catalog(target_reader);
            match target_reader {
                TargetReader::Wrangler(_, cmds, _) => crate::steps::identity::check_beside(
                    wrangler,
                    cmds,
                    target,
                    "restore into it",
                    read,
                )?,
                _ => read()?,
            }
        }
    };
    let existing = existing_objects(&catalog);
    // `wrangler d1 migrations list` leaves a new database with an empty
    // d1_migrations: for `--clean`, which applies the migrations first, that
    // database is as empty as a new one. In any case (`D1_Migrations`), as
    // SQLite and wrangler's `CREATE TABLE IF NOT EXISTS d1_migrations`
    // read the name (PD 5).
    let only_unused_migrations_table = args.mode() == Mode::Clean
        && matches!(existing.as_slice(), [(kind, name)]
            if kind == "table" && statement::is_migrations_table(name))
        && target_reader
            .query(
                "count the target's recorded migrations (read-only)",
                &format!("SELECT count(*) AS n FROM {}", statement::MIGRATIONS_TABLE),
            )
            .ok()
            .and_then(|json| json.pointer("/0/results/0/n").and_then(|n| n.as_u64()))
            == Some(0);
    // A restore into an empty database is refused for a target that is
    // not in one refusal with the backup's (MT: --replace alone led a
    // second round to the key's).
    let state = (!only_unused_migrations_table)
        .then(|| guard_target_state(args.mode(), &existing, (target, local_file)));
    match (args.mode(), state) {
        (Mode::IntoEmpty, Some(not_empty)) => Ok((catalog, existing, not_empty)),
        (_, state) => {
            state.transpose()?;
            Ok((catalog, existing, Ok(())))
        }
    }
}

/// Reads the target's data-encryption key, and refuses one that differs
/// from the backup's (unless `--accept-key-change`).
pub(super) fn check_keys(
    project: &Project,
    args: &RestoreArgs,
    source: &Source,
    target_reader: &TargetReader<'_>,
    catalog: &Catalog,
) -> Result<KeyCheck> {
    let settings = project.settings()?;
    if settings.app.encryption_key.is_none() {
        return Ok(KeyCheck::NoRule);
    }
    let target_key = target_key(target_reader, catalog, settings.app.encryption_key.as_ref())?;
    let table = settings
        .app
        .encryption_key
        .as_ref()
        .map_or("", |rule| rule.table.as_str());
    compare_keys(
        source.encryption_key.as_ref(),
        target_key.as_ref(),
        args.accept_key_change,
        table,
    )
}

/// Tables, views and triggers a restore would collide with or drop:
/// everything but SQLite's, D1's and the shadow tables of virtual tables.
pub(super) fn existing_objects(catalog: &Catalog) -> Vec<(String, String)> {
    catalog
        .objects
        .iter()
        .filter(|o| matches!(o.kind.as_str(), "table" | "view" | "trigger"))
        .filter(|o| o.sql.is_some())
        .filter(|o| !o.name.starts_with("sqlite_") && !o.name.starts_with("_cf_"))
        .filter(|o| o.table_kind.as_deref() != Some("shadow"))
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect()
}

/// The target's indexes, triggers and views, as (kind, name): what
/// `--replace` drops besides its tables, SQLite's own and D1's left out.
pub(super) fn dependent_objects(catalog: &Catalog) -> Vec<(String, String)> {
    { catalog.objects.iter() }
        .filter(|o| matches!(o.kind.as_str(), "index" | "view" | "trigger"))
        .filter(|o| o.sql.is_some() && !o.name.starts_with("_cf_"))
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect()
}

/// `local_file` is the local D1's SQLite file (of a local target): the
/// refusal of `--clean` into a local D1 with tables names the commands
/// that empty it, a backup first. Its tables are named as SQL spells
/// them, the first ten and how many more, every one with `-v`, as a plan
/// lists them.
pub(super) fn guard_target_state(
    mode: Mode,
    existing: &[(String, String)],
    (target, local_file): (&Environment, &Path),
) -> Result<()> {
    if mode == Mode::Replace || existing.is_empty() {
        return Ok(());
    }
    let names: Vec<_> = existing
        .iter()
        .filter(|(k, _)| k == "table")
        .map(|(_, n)| d1_core::names::shown_name(n))
        .collect();
    let how = match mode {
        Mode::IntoEmpty => "a restore (--into-empty, the default when no mode is given)".to_owned(),
        other => format!("--{}", other.name()),
    };
    // --replace takes only a whole backup; --clean is for a data-only one.
    let fix = match mode {
        Mode::Clean if target.location == Location::Local => {
            let [backup, remove] =
                crate::edge::local_d1::emptying_commands(&target.name, local_file);
            format!(
                "Restore it into a database with no tables: a new one, which `--to new:NAME \
                 --clean` creates and migrates, or this local D1 emptied first: back it up \
                 (`{backup}`), then remove its SQLite file (`{remove}`), and run this restore \
                 again, which applies the migrations and loads the rows; a whole backup can \
                 replace this one with --replace"
            )
        }
        Mode::Clean => "Restore it into a database with no tables: a new one, which `--to \
                        new:NAME --clean` creates and migrates, or this one emptied first; a \
                        whole backup can replace this one with --replace"
            .to_owned(),
        _ => "Use --replace to drop them and load the backup in one step (a safety backup is \
              taken first); a data-only backup or dump, which creates no table, takes --clean \
              instead"
            .to_owned(),
    };
    // A database of views or triggers alone holds no table to list: what
    // it holds is counted by kind ("1 view and no tables").
    let others: Vec<String> = ["view", "trigger"]
        .iter()
        .map(|kind| (kind, existing.iter().filter(|(k, _)| k == kind).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| d1_core::wording::count(n, kind))
        .collect();
    let holds = match (names.is_empty(), others.is_empty()) {
        (true, _) => format!("it holds {} and no tables", others.join(", ")),
        (false, true) => format!("tables: {}", crate::out::listed(&names, "table")),
        (false, false) => format!(
            "tables: {}; and {}",
            crate::out::listed(&names, "table"),
            others.join(", ")
        ),
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "{} is not empty ({holds}); {how} needs a database with no tables. {fix}. Nothing was \
         done.",
        target.database_name,
    )
}

pub(super) fn read_catalog(reader: &TargetReader<'_>) -> Result<Catalog> {
    reader.catalog("read the target's schema (read-only)")
}

pub(super) fn target_key(
    reader: &TargetReader<'_>,
    catalog: &Catalog,
    rule: Option<&KeyRecord>,
) -> Result<Option<KeyFingerprint>> {
    let Some(rule) = rule else {
        return Ok(None);
    };
    if !catalog
        .objects
        .iter()
        .any(|o| o.kind == "table" && o.name == rule.table)
    {
        return Ok(None);
    }
    let Ok(json) = reader.query(
        "read the target's encryption-key fingerprint (read-only)",
        &rule.select(),
    ) else {
        // A table of another shape than declared records no key.
        return Ok(None);
    };
    let row = crate::edge::reader::result_rows(&json, 0).first();
    Ok(row.and_then(|r| {
        Some(KeyFingerprint::new(
            r.get(&rule.key_id)?.as_str()?,
            r.get(&rule.fingerprint)?.as_str()?,
        ))
    }))
}

/// The outcome of comparing the backup's key fingerprint with the target's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    Same(String),
    /// The target has no key recorded (an empty database): nothing to compare.
    TargetHasNone,
    /// The backup recorded no key.
    BackupHasNone,
    /// The app declares no data-encryption key (`[app.encryption_key]` in
    /// backups.toml): there is none to compare.
    NoRule,
    AcceptedChange {
        backup: String,
        target: String,
        /// The backup's key id: the key the environment's secret must
        /// become for the restored rows to decrypt.
        backup_key_id: String,
    },
}

pub fn compare_keys(
    backup: Option<&KeyFingerprint>,
    target: Option<&KeyFingerprint>,
    accept: bool,
    table: &str,
) -> Result<KeyCheck> {
    match (backup, target) {
        (_, None) => Ok(KeyCheck::TargetHasNone),
        (None, Some(_)) => Ok(KeyCheck::BackupHasNone),
        (Some(b), Some(t)) if b.fingerprint == t.fingerprint => {
            Ok(KeyCheck::Same(b.fingerprint.clone()))
        }
        (Some(b), Some(t)) if accept => Ok(KeyCheck::AcceptedChange {
            backup: b.fingerprint.clone(),
            target: t.fingerprint.clone(),
            backup_key_id: b.key_id.clone(),
        }),
        (Some(b), Some(t)) => Err(crate::exit::Exit::Refused.error(KeyRefusal {
            backup: b.clone(),
            target: t.clone(),
            table: d1_core::names::shown_name(table).to_string(),
        })),
    }
}

/// A restore refused because the backup was taken under another
/// data-encryption key than the target has in force. A type of its own,
/// so that the drill can log it as its key check's failure
/// ([`crate::exit::find`]).
#[derive(Debug)]
pub struct KeyRefusal {
    backup: KeyFingerprint,
    target: KeyFingerprint,
    /// The target's table the key in force was read from.
    table: String,
}

impl std::fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refusing to restore: the backup was taken under data-encryption key {b} ({}), \
             but the target's {} table records key {t} ({}) in force. Warning from the runbook: \
             {KEY_WARNING}. This check reads that table, not the environment's secret, so \
             changing the secret does not change its answer. To use these rows under {b}, pass \
             --accept-key-change and set this environment's DATA_ENCRYPTION_KEY secret to {b}'s \
             key (from where the keys are kept) before the app uses them; otherwise restore a \
             backup taken under {t}. Nothing was done.",
            self.backup.fingerprint,
            self.table,
            self.target.fingerprint,
            b = self.backup.key_id,
            t = self.target.key_id,
        )
    }
}

impl std::error::Error for KeyRefusal {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str) -> KeyFingerprint {
        KeyFingerprint {
            key_id: "k".into(),
            fingerprint: f.into(),
        }
    }

    #[test]
    fn a_different_key_is_refused_with_the_runbooks_warning() {
        let err = compare_keys(
            Some(&key("sha256:a")),
            Some(&key("sha256:b")),
            false,
            "keys",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("will not decrypt"), "{err}");
        assert!(err.contains("--accept-key-change"), "{err}");
        assert_eq!(
            compare_keys(Some(&key("sha256:a")), Some(&key("sha256:b")), true, "keys").unwrap(),
            KeyCheck::AcceptedChange {
                backup: "sha256:a".into(),
                target: "sha256:b".into(),
                backup_key_id: key("sha256:a").key_id,
            }
        );
        assert_eq!(
            compare_keys(
                Some(&key("sha256:a")),
                Some(&key("sha256:a")),
                false,
                "keys"
            )
            .unwrap(),
            KeyCheck::Same("sha256:a".into())
        );
        assert_eq!(
            compare_keys(Some(&key("x")), None, false, "keys").unwrap(),
            KeyCheck::TargetHasNone
        );
    }
}
