//! `cargo xtask list [--env E] [--json]`: the backups in the backup
//! directory, newest first, with their state.

use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::environment::{Environment, Environments};
use crate::edge::inventory::{Entry, Misfiled, scan};
use d1_core::wording::{age, size};

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only this environment's backups.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub file: String,
    pub environment: String,
    /// The D1 database's name.
    pub database: String,
    pub mode: String,
    pub created_at: DateTime<Utc>,
    /// `None` (null) for a backup dated after now, whose age is unknown:
    /// a monitor must not read it as one just taken.
    pub age_seconds: Option<i64>,
    pub bytes: u64,
    pub verified: String,
    pub offsite: String,
    pub reason: Option<String>,
    /// What it is the undo point of (`pre-migration`, `safety`, `before
    /// task`), which prune keeps at least a week; shown after the mode.
    pub undo_point: Option<&'static str>,
    /// The rehearsal it was taken in (a copy of its loopback's databases
    /// copied among the real backups), which restore refuses outside that
    /// rehearsal and `status` and `prune` do not count: marked
    /// `rehearsal` after the mode.
    pub rehearsal: Option<String>,
    /// The age recipients (public keys) an encrypted backup is sealed to:
    /// whose identity opens it (a departed member's key still does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sealed_to: Vec<String>,
    /// Recorded under an environment's name, but of a database that
    /// environment does not have (another environment's, or none):
    /// `latest` and `status` pass it over. `null` for every other backup;
    /// marked `(not ENV's)` after the environment in the table.
    pub misfiled: Option<Misfiled>,
}

/// Whether `list` shows `e`: `envs`, when given, are the only databases
/// whose backups it shows (`Environment::recorded_as`).
fn shown(e: &Entry, envs: Option<&[Environment]>) -> bool {
    envs.is_none_or(|envs| { envs.iter() }.any(|env| env.records(&e.manifest)))
}

/// `envs`: only the backups of these databases; `misfiled`: the backups
/// recorded under an environment that is not their database's.
pub fn rows(
    entries: &[Entry],
    envs: Option<&[Environment]>,
    misfiled: &[Misfiled],
    now: DateTime<Utc>,
) -> Vec<Row> {
    entries
        .iter()
        .filter(|e| shown(e, envs))
        .map(|e| {
            let m = &e.manifest;
            let mode = if m.tables.is_empty() {
                m.mode.clone()
            } else {
                format!("{} ({})", m.mode, m.tables.join(", "))
            };
            let undo_point = d1_core::retention::undo_point(m);
            Row {
                file: m.file.name.clone(),
                environment: m.environment.clone(),
                database: m.database.name.clone(),
                mode,
                created_at: m.created_at,
                age_seconds: (m.created_at <= now).then(|| (now - m.created_at).num_seconds()),
                // The file as it is: a damaged one shows its own size.
                bytes: e.bytes_on_disk,
                verified: e.verified().to_owned(),
                offsite: match &m.offsite {
                    Some(copy) => format!("r2://{}/{}", copy.bucket, copy.key),
                    None => "no".to_owned(),
                },
                // Redacted as `list -v` prints it, names and all: a
                // manifest not written here can hold a credential. Cut
                // to 4 KiB: it may hold megabytes.
                reason: { m.reason.as_deref() }
                    .map(|r| d1_core::manifest::clip_reason(&crate::redact::text(r))),
                undo_point,
                rehearsal: crate::steps::rehearsals::of_entry(e),
                sealed_to: m.sealed_to().to_vec(),
                misfiled: misfiled.iter().find(|f| f.file == m.file.name).cloned(),
            }
        })
        .collect()
}

/// `all`: the configuration's environments, when it reads, which tell a
/// backup recorded under an environment that is not its database's.
pub fn run(
    backup_dir: &Path,
    all: Option<&Environments>,
    envs: Option<&[Environment]>,
    json: bool,
) -> Result<()> {
    let now = Utc::now();
    let mut entries = scan(backup_dir)?;
    entries.retain(|e| shown(e, envs));
    let misfiled = all.map_or_else(Vec::new, |all| {
        crate::edge::inventory::say_misfiled(all, None, &entries)
    });
    let rows = rows(&entries, envs, &misfiled, now);
    // Half a backup (a manifest whose dump is gone, a dump without its
    // manifest) is no row: it is named apart, with its fix.
    crate::steps::lock::tell_loose_ends(backup_dir);
    if json {
        crate::out::json(&serde_json::to_value(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        // A typo in --backup-dir names no directory: not an empty one
        // (one that cannot be looked at is not said to be missing).
        if matches!(backup_dir.try_exists(), Ok(false)) {
            crate::data!(
                "No backups: {} does not exist (check --backup-dir or QBTIME_BACKUP_DIR; the \
                 first backup creates it).",
                backup_dir.display()
            );
            return Ok(());
        }
        match envs {
            Some(envs) => crate::data!(
                "No backups of {} in {}.",
                envs.iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                backup_dir.display()
            ),
            None => crate::data!("No backups in {}.", backup_dir.display()),
        }
        return Ok(());
    }
    print_table(&rows);
    if crate::out::verbose() {
        print_reasons(&rows);
    }
    Ok(())
}

/// `list`'s table: one line a backup, each column as wide as its widest
/// entry; a misfiled backup's environment marked `(not ENV's)`.
fn print_table(rows: &[Row]) {
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.file.clone(),
                match &r.misfiled {
                    Some(_) => format!(
                        "{} (not {}'s)",
                        r.environment,
                        crate::config::environment::short_name(&r.environment)
                    ),
                    None => r.environment.clone(),
                },
                r.database.clone(),
                match (r.undo_point, &r.rehearsal) {
                    (_, Some(_)) => format!("{}, rehearsal", r.mode),
                    (Some(kind), None) => format!("{}, {kind}", r.mode),
                    (None, None) => r.mode.clone(),
                },
                // Dated after now: `latest` passes it over.
                match r.age_seconds {
                    Some(seconds) => age(seconds),
                    None => "ahead".to_owned(),
                },
                size(r.bytes),
                r.verified.clone(),
                r.offsite.clone(),
            ]
        })
        .collect();
    let header = [
        "backup", "env", "database", "mode", "age", "size", "verified", "offsite",
    ];
    let right = [false, false, false, false, true, true, false, false];
    for line in d1_core::wording::table(header, &cells, right) {
        crate::data!("{line}");
    }
}

/// `list -v`: why each backup was taken, as its manifest says (a safety
/// backup's restore, a migration, a `with-backup` command). Manifest text
/// is anyone's: printed as every reason is ([`recorded_reason`]: on one
/// line, secrets redacted), cut at a line's length (120 characters).
///
/// [`recorded_reason`]: crate::steps::backup::recorded_reason
fn print_reasons(rows: &[Row]) {
    const LONGEST: usize = 120;
    let cells: Vec<[String; 2]> = rows
        .iter()
        .filter_map(|r| {
            let reason = r.reason.as_deref().filter(|r| !r.trim().is_empty())?;
            let shown = crate::steps::backup::recorded_reason(reason);
            let cut = d1_core::names::cut(&shown, LONGEST).into_owned();
            Some([r.file.clone(), cut])
        })
        .collect();
    if cells.is_empty() {
        return;
    }
    crate::data!("");
    for line in d1_core::wording::table(["backup", "reason"], &cells, [false, false]) {
        crate::data!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::inventory::sort_newest_first;
    use crate::edge::inventory::tests::entry;

    #[test]
    fn list_rows_are_filtered_by_environment_and_say_their_state() {
        let mut entries = vec![
            entry("prod", "full", 0, Some("good")),
            entry("staging", "full", 30, None),
            entry("prod", "full", 10, Some("bad")),
        ];
        sort_newest_first(&mut entries);
        let now = entries[0].manifest.created_at + chrono::Duration::hours(2);
        let all = rows(&entries, None, &[], now);
        let names: Vec<&str> = all.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(
            names,
            [
                "backup-staging-30.sql",
                "backup-prod-10.sql",
                "backup-prod-0.sql"
            ]
        );
        assert_eq!(all[0].verified, "unverified");
        assert_eq!(all[1].verified, "bad");
        assert_eq!(all[0].age_seconds.map(age).as_deref(), Some("2h"));
        let envs =
            crate::config::environment::Environments::parse(include_str!("../../../wrangler.toml"))
                .unwrap();
        // The test entries' database is "d".
        let mut prod_env = envs.resolve("prod").unwrap().clone();
        prod_env.database_name = "d".to_owned();
        let prod = rows(&entries, Some(&[prod_env]), &[], now);
        assert_eq!(prod.len(), 2);
        assert!(prod.iter().all(|r| r.environment == "prod"));
    }
}
