//! The checks after the load: rows per table and content digests
//! against the manifest, and the printed checklist.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::target::KeyCheck;
use super::{KEY_WARNING, Mode, Source};
use crate::config::environment::Environment;
use crate::config::project::Project;
use crate::edge::fsutil::TempFile;
use crate::edge::reader::DatabaseReader as TargetReader;
use crate::edge::stored;
use crate::edge::wrangler::{Commands, ExportMode, Wrangler};
use d1_core::catalog::{FtsSetting, FtsSettingValue, VirtualTable};
use d1_core::dump;
use d1_core::gate;
use d1_core::statement;

/// A content check's outcome: `None` when the backup records no digests,
/// else the number of tables equal, or what differs.
pub(super) type Content = Option<Result<usize, Vec<String>>>;

/// The restored tables' content digests against the backup's. A local
/// target is read from its file; a remote one is exported again and loaded,
/// as verify loads a backup, and the rows of each table in that export are
/// returned too.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_content(
    project: &Project,
    wrangler: &Wrangler,
    cmds: &Commands,
    target: &Environment,
    source: &Source,
    mode: Mode,
    local_file: Option<&Path>,
) -> Result<(Content, Option<BTreeMap<String, u64>>)> {
    let Some(mut expected) = content_checked(source, mode) else {
        return Ok((None, None));
    };
    if expected.is_empty() {
        // Nothing recorded to compare with is not a content check passed.
        return Ok((None, None));
    }
    let (found, exported) = match local_file {
        Some(file) => {
            let db = gate::Gate::reading(file)?;
            let found = d1_core::digest::tables(db.db(), expected.keys().map(String::as_str))?;
            (found, None)
        }
        None => {
            let (found, rows) =
                exported_again(project, (wrangler, cmds), target, source, &mut expected)?;
            (found, Some(rows))
        }
    };
    if expected.is_empty() {
        // Nothing left to compare is not a content check passed.
        return Ok((None, exported));
    }
    let differ = d1_core::digest::differences(&expected, &found);
    let content = Some(if differ.is_empty() {
        Ok(expected.len())
    } else {
        Err(differ)
    });
    Ok((content, exported))
}

/// The remote target's content digests, read from an export of it taken
/// again and loaded as verify loads a backup, and the rows of each table in
/// that export; `expected` loses the tables D1's export cannot compare.
fn exported_again(
    project: &Project,
    access: (&Wrangler, &Commands),
    target: &Environment,
    source: &Source,
    expected: &mut BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, u64>)> {
    crate::say!(
        "Exporting {} again to compare its content with the backup's.",
        target.database_name
    );
    let tables: Vec<String> = expected.keys().cloned().collect();
    let (content, rows) = export_verified(project, access, target, &tables)?;
    uncomparable_through_d1s_export(source, expected);
    // A table the export lacks is not counted here: the count query, or
    // the content check, says it is missing.
    let exported = tables
        .into_iter()
        .filter_map(|t| rows.get(&t).map(|n| (t, *n)))
        .collect();
    Ok((content, exported))
}

/// The remote target exported (`tables` of it; all of them when none are
/// named) and loaded as verify loads a backup: each table's content
/// digest, and its rows in the export (one INSERT each, as wrangler
/// writes them).
fn export_verified(
    project: &Project,
    (wrangler, cmds): (&Wrangler, &Commands),
    target: &Environment,
    tables: &[String],
) -> Result<(BTreeMap<String, String>, BTreeMap<String, u64>)> {
    // wrangler writes by name: into a directory only this user can enter.
    let private = crate::edge::wrangler::PrivateDir::create("check")?;
    let temp = TempFile::create(private.path().join("export.sql"))?;
    let export = cmds.export(target, temp.path(), ExportMode::Full, tables);
    wrangler.run_watching(&export, Some(temp.path()))?;
    let settings = project.settings()?;
    let migrations_dir = project.config_dir.join(&target.migrations_dir);
    let ctx = crate::steps::verify::Workspace {
        migrations_dir: &migrations_dir,
        app: &settings.app,
        scratch_dir: &project.backup_dir,
        applied: &[],
        migrations_optional: false,
    };
    let export = stored::Source::for_file(temp.path(), None, &project.age())?;
    let label = format!("verifying the export of {}", target.database_name);
    let report = crate::steps::verify::verify_shown(label, temp.path(), &export, None, &ctx)?;
    let rows = dump::summarize(export.open()?, &BTreeMap::new(), None)?.rows;
    Ok((report.content, rows))
}

/// What a remote target holds after an import wrangler failed to follow
/// to its end, once D1 may have started it ([`after_failed_import`]).
pub(super) enum AfterFailure {
    /// Its content is the backup's: D1 applied the import.
    Restored,
    /// D1 reported the import failed, and its content is the safety
    /// backup's (or, with none taken, it holds no row, as an empty target
    /// did): D1 did not apply it.
    Unchanged,
    /// Neither, or it could not be told: why.
    Unknown(String),
}

/// The remote target exported and compared with the backup's content
/// digests and with the safety backup's (`safety`), after an import
/// wrangler failed to follow: D1 goes on with an import it was handed, so
/// its outcome is read, not assumed. `reported`: D1 itself answered that
/// the import ended failed ([`crate::edge::wrangler::failed_import_reported_by_d1`]);
/// otherwise an export holding what the target held before tells only
/// that the import had not applied yet, as D1 may still be running it.
pub(super) fn after_failed_import(
    project: &Project,
    access: (&Wrangler, &Commands),
    (target, source, mode): (&Environment, &Source, Mode),
    (safety, reported): (Option<&Path>, bool),
) -> AfterFailure {
    let mut restored = content_checked(source, mode).unwrap_or_default();
    uncomparable_through_d1s_export(source, &mut restored);
    let unchanged = safety.map(safety_content).unwrap_or_default();
    crate::say!(
        "Exporting {} to find out what it holds after the failure.",
        target.database_name
    );
    let (found, rows) = match export_verified(project, access, target, &[]) {
        Ok(exported) => exported,
        Err(e) => return AfterFailure::Unknown(format!("its export failed: {e:#}")),
    };
    let matches = |expected: &BTreeMap<String, String>| {
        !expected.is_empty() && d1_core::digest::differences(expected, &found).is_empty()
    };
    // An empty target (a new database, which gets no safety backup, or
    // one whose safety backup records no table) is unchanged with no row.
    let empty_as_before = unchanged.is_empty() && rows.values().all(|n| *n == 0);
    // Both when the backup holds what the target held: nothing differs.
    match (matches(&restored), matches(&unchanged) || empty_as_before) {
        (_, true) if reported => AfterFailure::Unchanged,
        (_, true) => AfterFailure::Unknown(
            "an export taken now holds what it held before, but D1 did not report the import's \
             end: wrangler lost track of it, and D1 may still be running it, so it may still \
             land"
                .to_owned(),
        ),
        (true, false) => AfterFailure::Restored,
        (false, false) => AfterFailure::Unknown(
            "its content matches neither the backup's nor the safety backup's".to_owned(),
        ),
    }
}

/// The content digests the safety backup `file`'s manifest records, for
/// the tables a D1 export can compare; none when it records none.
fn safety_content(file: &Path) -> BTreeMap<String, String> {
    use crate::edge::manifest_file::ManifestFile as _;
    let Ok(manifest) = d1_core::manifest::Manifest::for_backup(file) else {
        return BTreeMap::new();
    };
    let exact = manifest.exact_values.unwrap_or_default();
    { manifest.content.unwrap_or_default().into_iter() }
        .filter(|(t, _)| statement::rows_are_checked(t) && !exact.contains_key(t))
        .collect()
}

/// Takes out of `expected` the tables whose values a D1 export writes
/// otherwise than the backup holds them (`Manifest::exact_values`), and
/// says so: their rows were counted, their content cannot be compared
/// through D1's export.
pub(super) fn uncomparable_through_d1s_export(
    source: &Source,
    expected: &mut BTreeMap<String, String>,
) {
    let Some(exact) = source
        .manifest
        .as_ref()
        .and_then(|m| m.exact_values.as_ref())
    else {
        return;
    };
    let tables: Vec<String> = exact
        .iter()
        .filter(|(t, _)| expected.remove(*t).is_some())
        .map(|(t, n)| {
            format!(
                "{} ({})",
                t.escape_debug(),
                d1_core::wording::count(*n as usize, "value")
            )
        })
        .collect();
    if !tables.is_empty() {
        crate::warn!(
            "content of {} not compared: the backup holds values exactly that D1's export \
             writes otherwise (integers beyond 2^53 and the like, see the README's \"Local \
             backups without wrangler\"); their rows were counted",
            tables.join(", ")
        );
    }
}

/// The content digests a restore is checked against: the manifest's, for
/// the tables whose rows are checked (not those `--clean` leaves out);
/// `None` when it records none.
pub(super) fn content_checked(source: &Source, mode: Mode) -> Option<BTreeMap<String, String>> {
    let recorded = source.manifest.as_ref()?.content.as_ref()?;
    Some(
        recorded
            .iter()
            .filter(|(t, _)| statement::rows_are_checked(t))
            .filter(|(t, _)| !(mode == Mode::Clean && statement::is_migrations_table(t)))
            .filter(|(t, _)| !source.leaves_out(t))
            .map(|(t, d)| (t.clone(), d.clone()))
            .collect(),
    )
}

/// The restored FTS5 tables' settings against the backup's
/// ([`VirtualTable::settings`]), each read from the table's `_config` as
/// the backup reads it and as FTS5 reads it (an integer setting recorded as
/// a text, `'4'`, is its integer): the number of tables compared, or the
/// differences, by table and key (never a value). `None` when no FTS5
/// table is recorded, or the read is refused (D1 may refuse reading a
/// shadow table), which is said.
pub(super) fn check_fts_settings(
    reader: &TargetReader,
    virtual_tables: &[VirtualTable],
) -> Option<Result<usize, Vec<String>>> {
    let tables: Vec<&VirtualTable> = { virtual_tables.iter() }
        .filter(|vt| vt.keeps_settings())
        .collect();
    if tables.is_empty() {
        return None;
    }
    let sql: Vec<String> = { tables.iter() }
        .map(|vt| FtsSetting::query(&vt.name))
        .collect();
    let read = reader.query(
        "read the restored FTS5 tables' settings (read-only)",
        &sql.join("; "),
    );
    let Ok(json) = read else {
        crate::warn!(
            "the restored FTS5 tables' settings could not be read, so they were not compared \
             with the backup's"
        );
        return None;
    };
    let names: Vec<&str> = tables.iter().map(|vt| vt.name.as_str()).collect();
    // A setting FTS5 would not take is left out, as the backup leaves it.
    let (found, _) = crate::steps::backup::fts_settings_read(&names, Ok(json));
    let mut differ = Vec::new();
    for (vt, found) in tables.iter().zip(&found) {
        let keys = settings_differing(&vt.settings, found);
        if !keys.is_empty() {
            differ.push(format!(
                "FTS5 table {}: setting {} {}",
                d1_core::names::shown_name(&vt.name),
                keys.join(", "),
                match keys.len() {
                    1 => "differs from the backup's",
                    _ => "differ from the backup's",
                }
            ));
        }
    }
    Some(if differ.is_empty() {
        Ok(tables.len())
    } else {
        Err(differ)
    })
}

/// The keys whose value differs between the backup's settings and those
/// found (one on one side only included), each read as FTS5 reads it.
fn settings_differing(recorded: &[FtsSetting], found: &[FtsSetting]) -> Vec<String> {
    let read = |settings: &[FtsSetting]| -> BTreeMap<String, Option<FtsSetting>> {
        { settings.iter() }
            .map(|s| {
                let value = match &s.value {
                    FtsSettingValue::Integer(n) => serde_json::json!(n),
                    FtsSettingValue::Text(t) => serde_json::json!(t),
                };
                (s.key.clone(), FtsSetting::from_row(&s.key, &value).ok())
            })
            .collect()
    };
    let (recorded, found) = (read(recorded), read(found));
    let keys: std::collections::BTreeSet<&String> = recorded.keys().chain(found.keys()).collect();
    { keys.into_iter() }
        .filter(|k| recorded.get(*k) != found.get(*k))
        .map(|k| d1_core::names::shown(k).into_owned())
        .collect()
}

/// The tables whose rows a restore counts, and how many each should hold:
/// not those `--clean` leaves out, which it does not make.
pub(super) fn counted(source: &Source, mode: Mode) -> Vec<(&String, &u64)> {
    source
        .rows
        .iter()
        .filter(|(t, _)| !(mode == Mode::Clean && statement::is_migrations_table(t)))
        .filter(|(t, _)| statement::rows_are_checked(t) && !source.leaves_out(t))
        .collect()
}

/// A table, the rows the source has, and the rows found on the target.
pub type TableCount = (String, u64, u64);

/// Row counts on the target, compared with the source's; the second list
/// names the tables that differ. A local target the fast path loaded is
/// counted in its file, read-only, without starting wrangler and workerd
/// (about 6 s): the file is the one wrangler's local D1 reads (the tests
/// read the restored rows back through wrangler). A remote target whose
/// content check exported every counted table (`exported`) is counted in
/// that export; otherwise a read-only query counts it.
pub(super) fn check_rows(
    (wrangler, cmds): (&Wrangler, &Commands),
    target: &Environment,
    source: &Source,
    mode: Mode,
    (local_file, exported): (Option<&Path>, Option<BTreeMap<String, u64>>),
) -> Result<(Vec<TableCount>, Vec<String>)> {
    let expected = counted(source, mode);
    if expected.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let covered = |e: &BTreeMap<String, u64>| expected.iter().all(|(t, _)| e.contains_key(*t));
    if let Some(exported) = exported.filter(covered) {
        return compare_counts(&expected, |_, table| Ok(exported[table]));
    }
    let reader = match local_file {
        Some(file) => TargetReader::File(file.to_path_buf(), &target.name),
        None => TargetReader::Wrangler(wrangler, cmds, target),
    };
    let tables: Vec<&str> = expected.iter().map(|(t, _)| t.as_str()).collect();
    let counts = reader.row_counts("count the restored rows (read-only)", &tables)?;
    compare_counts(&expected, |i, _| Ok(counts[i]))
}

/// Each counted table's expected rows against `found(i, table)`; the
/// second list names the tables that differ.
pub(super) fn compare_counts(
    expected: &[(&String, &u64)],
    found: impl Fn(usize, &str) -> Result<u64>,
) -> Result<(Vec<TableCount>, Vec<String>)> {
    let mut counts = Vec::new();
    let mut wrong = Vec::new();
    for (i, (table, want)) in expected.iter().enumerate() {
        let got = found(i, table)?;
        if got != **want {
            wrong.push(format!(
                "{}: expected {want}, found {got}",
                d1_core::names::shown_name(table)
            ));
        }
        counts.push(((*table).clone(), **want, got));
    }
    Ok((counts, wrong))
}

/// The runbook's after-restore checklist: the checks of what the app
/// declares in `backups.toml` (its key, its audit chain, its endpoints),
/// and the row counts. `app_checked_next`: a drill checks the app's
/// endpoints once this restore is done, and prints each check's outcome.
pub(super) fn print_checklist(
    app: &d1_core::app::AppRules,
    key: &KeyCheck,
    counts: &[TableCount],
    (has_manifest, app_checked_next): (bool, bool),
) {
    crate::say!("After-restore checklist (the runbook's; [x] = checked automatically):");
    match key {
        KeyCheck::Same(f) => {
            crate::say!("  [x] encryption key: the target's key in force is the backup's ({f})")
        }
        KeyCheck::AcceptedChange { backup_key_id, .. } => crate::say!(
            "  [!] encryption key: CHANGED by --accept-key-change; {KEY_WARNING}, unless you set \
             this environment's DATA_ENCRYPTION_KEY secret to {backup_key_id}'s key (from where \
             the keys are kept) before the app uses these rows"
        ),
        _ => match &app.encryption_key {
            None => {}
            // An empty key table records no key: nothing to read a
            // fingerprint from, as the plan said ("records no key yet").
            Some(rule)
                if counts
                    .iter()
                    .any(|(t, _, got)| *t == rule.table && *got == 0) =>
            {
                crate::say!(
                    "  [ ] encryption key: the restored {} table is empty, so this environment \
                     records no key yet; once the app records one, confirm it is the \
                     DATA_ENCRYPTION_KEY in force",
                    d1_core::names::shown_name(&rule.table)
                )
            }
            // A backup of chosen tables may not hold the key's table.
            Some(rule) if counts.iter().any(|(table, _, _)| *table == rule.table) => crate::say!(
                "  [ ] encryption key: confirm DATA_ENCRYPTION_KEY in this environment is the one in \
                 force when the backup was taken (its fingerprint is in the restored {} table)",
                d1_core::names::shown_name(&rule.table)
            ),
            Some(rule) => crate::say!(
                "  [ ] encryption key: confirm DATA_ENCRYPTION_KEY in this environment is the one in \
                 force when the backup was taken (the backup does not hold {}, so nothing here \
                 records it)",
                d1_core::names::shown_name(&rule.table)
            ),
        },
    }
    let total: u64 = counts.iter().map(|(_, _, n)| n).sum();
    if has_manifest {
        crate::say!(
            "  [x] row counts: {}, {}, equal to the backup's manifest",
            d1_core::wording::count(counts.len(), "table"),
            d1_core::wording::count(total, "row")
        );
    } else {
        crate::say!(
            "  [x] row counts: {}, {}, equal to the dump's INSERTs (no manifest to compare \
             with)",
            d1_core::wording::count(counts.len(), "table"),
            d1_core::wording::count(total, "row")
        );
    }
    if app_checked_next {
        crate::say!("  the app's audit chain, sign-in and report: the drill checks them next");
    } else if let Some(drill) = &app.drill {
        if app.audit_chain.is_some() {
            crate::say!("  [ ] audit chain: GET {} as a DevOps account", drill.audit);
        }
        crate::say!("  [ ] sign-in: sign in as a known account");
        crate::say!("  [ ] reports: run a report by hand");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(key: &str, value: FtsSettingValue) -> FtsSetting {
        FtsSetting {
            key: key.to_owned(),
            value,
        }
    }

    /// A restored database whose FTS5 setting is not the backup's (changed
    /// after the load, or never set) fails the check, naming the table and
    /// the key, never the value; the same settings pass, an integer
    /// recorded as a text (`'2'`) read as FTS5 reads it.
    #[test]
    fn a_restored_fts5_setting_other_than_the_backups_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("restored.sqlite");
        let db = rusqlite::Connection::open(&file).unwrap();
        db.execute_batch(
            "CREATE VIRTUAL TABLE docs USING fts5(body);\n\
             INSERT INTO docs(docs, rank) VALUES('automerge', 2);\n\
             INSERT INTO docs(docs, rank) VALUES('rank', 'bm25(10.0)');",
        )
        .unwrap();
        drop(db);
        let reader = TargetReader::File(file.clone(), "local");
        let mut vt =
            VirtualTable::from_sql("docs", "CREATE VIRTUAL TABLE docs USING fts5(body)").unwrap();
        vt.settings = vec![
            setting("automerge", FtsSettingValue::Text("2".to_owned())),
            setting("rank", FtsSettingValue::Text("bm25(10.0)".to_owned())),
        ];
        let tables = std::slice::from_ref(&vt);
        assert_eq!(check_fts_settings(&reader, tables), Some(Ok(1)));
        // Changed afterwards: automerge 8, and a setting the backup lacks.
        let db = rusqlite::Connection::open(&file).unwrap();
        db.execute_batch(
            "INSERT INTO docs(docs, rank) VALUES('automerge', 8);\n\
             INSERT INTO docs(docs, rank) VALUES('secure-delete', 1);",
        )
        .unwrap();
        drop(db);
        let differ = check_fts_settings(&reader, tables).unwrap().unwrap_err();
        assert_eq!(
            differ,
            ["FTS5 table docs: setting automerge, secure-delete differ from the backup's"]
        );
        // None recorded where none is an FTS5 table's.
        assert_eq!(check_fts_settings(&reader, &[]), None);
    }
}
