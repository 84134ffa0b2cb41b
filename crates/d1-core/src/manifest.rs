//! The JSON manifest written next to every backup.
//!
//! A manifest says what the backup is (environment, database, mode), proves
//! which bytes it covers (size and SHA-256), and records what was in it
//! (rows per table, migrations, the encryption key's fingerprint), so that
//! verify and restore can check a file before trusting it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::catalog::{VirtualContent, VirtualTable};
use crate::dump::{DumpSummary, KeyFingerprint};

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The longest `reason` printed, in bytes, and the longest `--reason`
/// taken. A reason is a line of free text that `list`, `status` and a
/// restore's plan print; a manifest just under its 2 MiB cap could hold a
/// ~2 MB one, which `list` took seconds over and printed across the
/// screen: one longer is printed cut ([`clip_reason`]). A manifest is not
/// refused for it (older versions wrote reasons as long, of a long
/// `with-backup` command: refused, each command passed the backup over and
/// prune refused the directory), and a reason the tool composes is
/// recorded whole (`status` reads the migrations back from a
/// `pre-migration: <migrations> (<why>)`).
pub const MAX_REASON: usize = 4096;

/// `reason` cut to [`MAX_REASON`] bytes on a character's boundary, ending
/// in `…` when cut.
pub fn clip_reason(reason: &str) -> String {
    if reason.len() <= MAX_REASON {
        return reason.to_owned();
    }
    let mut end = MAX_REASON - '…'.len_utf8();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub tool: Tool,
    pub created_at: DateTime<Utc>,
    /// The environment's short name (`prod`, `staging`, `local`).
    pub environment: String,
    pub database: Database,
    pub mode: String,
    /// Tables asked for with `--table`; empty means all of them.
    pub tables: Vec<String>,
    /// The stored file: its size and SHA-256 are of the bytes on disk.
    pub file: FileFacts,
    /// Set when the file is compressed or encrypted: how, and the size and
    /// SHA-256 of the SQL inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Sealed>,
    /// Rows per table, counted from the dump's INSERT statements.
    pub rows: BTreeMap<String, u64>,
    pub statements: u64,
    /// Migration names from the dump's `d1_migrations` rows, in order.
    pub migrations: Vec<String>,
    /// The sha256 of each applied migration (a name in `migrations`) as it
    /// was applied: read from `migrations/` when the backup was taken, and
    /// carried forward unchanged from the environment's previous verified
    /// backup for every migration that one records. D1's `d1_migrations`
    /// keeps names only; this is how an edit to an applied migration is
    /// seen (the xtask's `migrate::edited_migrations`). Absent in manifests
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_sha256: Option<BTreeMap<String, String>>,
    /// The data-encryption key in force, from the dump's `encryption_keys`.
    pub encryption_key: Option<KeyFingerprint>,
    pub wrangler_version: Option<String>,
    pub git_commit: Option<String>,
    /// For remote backups: the Time Travel bookmark taken just before the export.
    pub time_travel_bookmark: Option<String>,
    /// Set when the database had virtual tables and the export named its tables.
    pub virtual_tables: Option<VirtualTableWorkaround>,
    /// Why the backup was taken, when a caller said (e.g. a migration).
    pub reason: Option<String>,
    /// The rehearsal (its directory's name, `.rehearsal-<stamp>-<pid>`)
    /// whose loopback this backup was taken of: a copy of the loopback's
    /// database, never the real one's, restored only within that rehearsal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<String>,
    /// The last `cargo xtask verify` of this file. A backup that failed it is
    /// kept, but never chosen as `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The offsite copy, once uploaded and read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsite: Option<OffsiteCopy>,
    /// Each table's content digest ([`crate::digest`]), computed by the
    /// backup's own verification from the dump loaded under D1's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<BTreeMap<String, String>>,
    /// Per table, how many values the backup holds exactly where D1's own
    /// export writes them otherwise (`d1_dump::Lossless`: a native local
    /// export of integers beyond 2^53, say). A D1 export of a database they
    /// are restored into writes them D1's way, so its content digest of
    /// those tables differs from the backup's, values and all equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_values: Option<BTreeMap<String, u64>>,
    /// Per table, how many integers beyond ±2^53 an export of D1's (a
    /// remote backup, or `--via-wrangler`) wrote: D1 writes every number
    /// through a JavaScript number, so each may be a rounding of the
    /// database's value ([`crate::digest::JS_EXACT`]). Empty for a native
    /// local export, which writes them exactly, and where there are none;
    /// absent only from a manifest an earlier version wrote, before it
    /// kept this record (its export may have rounded them unseen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wide_integers: Option<BTreeMap<String, u64>>,
    /// Per table, how many whole REALs (3.0, 1e15, -0.0) a remote backup
    /// read, before its export, in columns that keep them as REALs
    /// ([`crate::catalog::columns_keeping_whole_reals`]): D1's export wrote
    /// each as an integer, which a restore brings back as an INTEGER.
    /// Empty where it counted none; absent where it did not count them (a
    /// local backup, a schema-only one, a count that failed or left a
    /// table out) and from a manifest an earlier version wrote, which
    /// recorded them only where there were any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole_reals: Option<BTreeMap<String, u64>>,
    /// Per table, per column, how many text values that are not UTF-8 a
    /// remote backup read before its export: D1 hands text to JavaScript,
    /// which decodes such bytes as U+FFFD, so its export wrote another
    /// value, which a restore brings back. Empty where it found none;
    /// absent where it did not look (a local backup, which keeps them
    /// exactly, a schema-only one, a read that failed or left a table out)
    /// and from a manifest an earlier version wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_text: Option<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Per table, per column, how many text values a remote backup found
    /// holding a line break and the two characters `\n` (or a carriage
    /// return and `\r`): D1's export writes a value with a line break as
    /// `replace('…\n…','\n',char(10))`, which turns that `\n` into a line
    /// break too, so a restore brings back another value. Empty, or
    /// absent, as [`Self::replaced_text`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambiguous_text: Option<BTreeMap<String, BTreeMap<String, u64>>>,
    /// A backup of chosen tables: their `sqlite_sequence` counters (the
    /// highest id an AUTOINCREMENT table has ever given), read just before
    /// the export, which leaves them out (D1's, as wrangler's `--table`).
    /// A restore sets them again, so deleted ids are never given twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<BTreeMap<String, i64>>,
    /// Tables whose rowids no export carries and that had rows deleted, by
    /// the triggers that keep their rowids elsewhere
    /// ([`crate::catalog::RowidsKept`]): a restore renumbers their rows,
    /// and what those triggers kept then names other rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rowids_renumbered: Option<BTreeMap<String, Vec<String>>>,
    /// The backups of this environment and database that were there when
    /// this one was taken, dated after the clock that took it (one that
    /// ran fast, or this one set back): this backup was taken after them,
    /// and ranks above them once that clock passes their dates
    /// ([`crate::order`]). Written only when there were any; an earlier
    /// version reads past it, as serde does any field it does not know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken_after: Vec<TakenAfter>,
    /// The backup was taken to be copied offsite (`backup --upload`):
    /// while it has no [`Manifest::offsite`] copy, its upload did not
    /// finish (interrupted, or R2 failed), which `status` warns of even
    /// when an earlier copy is recent. A backup taken without it and not
    /// uploaded is no fault then. Written only when set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upload_asked: bool,
}

/// A backup another was taken after, by its file's name and the sha256
/// its manifest records: a record counts only for that file, so none can
/// be made for a backup before it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakenAfter {
    pub file: String,
    pub sha256: String,
}

/// The highest AUTOINCREMENT counter a manifest may record: set, it must
/// leave a table ids to give (SQLite gives none past `i64::MAX`, and every
/// insert then fails with "database or disk is full"). No real table comes
/// within 2^32 of the end; a manifest that says so was edited.
pub const MAX_SEQUENCE: i64 = i64::MAX - (1 << 32);

/// How a backup's SQL is stored, when it is not plain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// `zstd` or `zstd+age`.
    pub format: String,
    /// The age recipients (public keys) that can decrypt it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    pub plaintext_bytes: u64,
    pub plaintext_sha256: String,
}

/// Where the offsite copy of a backup is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsiteCopy {
    pub bucket: String,
    pub key: String,
    pub manifest_key: String,
    pub uploaded_at: DateTime<Utc>,
}

/// The outcome of verifying a backup, as recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub verified_at: DateTime<Utc>,
    /// `good` or `bad`.
    pub outcome: String,
    /// The checks that failed, each with what was found.
    pub failed: Vec<String>,
    pub seconds: f64,
    pub tool_version: String,
    /// The backup was verified without its migrations directory (a
    /// backup taken on a checkout that lacked it, in an emergency): its
    /// data was checked, its triggers and schema were not held to its
    /// migrations. `status` calls the migrations unknown; a later verify
    /// with the directory there records a verification without it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migrations_unchecked: bool,
    /// The manifest this verification checked the file against, as
    /// [`Manifest::described_sha256`]: a manifest edited since (a row
    /// count, a table's digest) is no longer the one verified, and is
    /// not called verified good ([`Manifest::changed_since_verified`])
    /// until a verify checks it again. Absent from a verification an
    /// earlier version recorded, which is taken as it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
}

impl Verification {
    pub fn is_good(&self) -> bool {
        self.outcome == "good"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Tool {
        Tool {
            name: "qbtime-xtask".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    pub uuid: String,
    pub wrangler_env: Option<String>,
    /// `local` or `remote`.
    pub location: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualTableWorkaround {
    pub note: String,
    /// The exact `--table` list wrangler was given.
    pub export_tables: Vec<String>,
    /// Each virtual table's DDL and where its rows are, for the restore.
    pub tables: Vec<VirtualTable>,
}

/// `20261123-2230`, or `20261123-2230-2` for a later backup of that minute.
fn is_stamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    b.len() >= 13
        && digits(&b[..8])
        && b[8] == b'-'
        && digits(&b[9..13])
        && (b.len() == 13 || b[13] == b'-' && digits(&b[14..]))
}

/// The extensions of the files a backup run writes (`Format::extension`:
/// plain, zstd, zstd then age), longest first.
pub const BACKUP_EXTENSIONS: [&str; 3] = [".sql.zst.age", ".sql.zst", ".sql"];

/// A name a backup run gives its file, read ([`backup_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupName<'a> {
    /// `prod`, or `prod.<database>`.
    pub env: &'a str,
    /// `YYYYMMDD-HHMM`, without a `-N`.
    pub stamp: &'a str,
    /// The name without its extension, which its manifest's name shares.
    pub stem: &'a str,
}

/// `name` read as the name a backup run gives its file, when it is exactly
/// one: `backup-<env>-YYYYMMDD-HHMM[-N]` and one of [`BACKUP_EXTENSIONS`],
/// nothing more (`backup-prod-A.sql-B.sql` is not one: its manifest would
/// be the real `backup-prod-A`'s). `None` for any other name (a hand dump
/// copied in, `backup-local-handmade.sql`). The one rule for a backup's
/// name, local or offsite.
pub fn backup_name(name: &str) -> Option<BackupName<'_>> {
    let stem = { BACKUP_EXTENSIONS.iter() }.find_map(|ext| name.strip_suffix(ext))?;
    let rest = stem.strip_prefix("backup-")?;
    let (env, stamp) = { rest.match_indices('-').map(|(i, _)| i) }
        .filter(|&i| i > 0)
        .map(|i| (&rest[..i], &rest[i + 1..]))
        .find(|(_, tail)| is_stamp(tail))?;
    Some(BackupName {
        env,
        stamp: &stamp[..13],
        stem,
    })
}

/// The time in the name a backup run gives its file, `YYYYMMDD-HHMM`, when
/// `name` is such a name ([`backup_name`]).
pub fn stamp_in_backup_name(name: &str) -> Option<&str> {
    backup_name(name).map(|b| b.stamp)
}

/// Refuses a backup dated (`created_at`) otherwise than the minute its
/// name says (`stamp`, `YYYYMMDD-HHMM`, UTC): the name is made from the
/// same instant when it is taken, and one that says otherwise would have
/// the backup ordered (`latest`, prune) by one time and shown by another.
/// `what` is what says the date: "it", "its entry for …".
pub fn check_named_minute(what: &str, stamp: &str, created_at: DateTime<Utc>) -> Result<()> {
    let minute = created_at.format("%Y%m%d-%H%M").to_string();
    if stamp != minute {
        bail!(
            "{what} says it was taken at {} UTC, but its name says {stamp} (YYYYMMDD-HHMM, \
             UTC), the minute every backup's name is given when it is taken",
            created_at.format("%Y-%m-%d %H:%M:%S"),
        );
    }
    Ok(())
}

/// `backups/backup-prod-20261123-2230.sql` -> `backups/backup-prod-20261123-2230.manifest.json`.
/// A name that ends in one of [`BACKUP_EXTENSIONS`] loses exactly that
/// (so `X.sql-Y.sql` has its own manifest, not `X`'s); any other is cut at
/// its first `.sql` (`dump.sql.gz`).
pub fn manifest_path(backup: &Path) -> PathBuf {
    let name = backup
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = { BACKUP_EXTENSIONS.iter() }
        .find_map(|ext| name.strip_suffix(ext))
        .or_else(|| name.split(".sql").next())
        .unwrap_or(&name);
    backup.with_file_name(format!("{stem}{MANIFEST_SUFFIX}"))
}

/// Refuses a file of this tool's of a format other than `reads`, the one
/// this version writes: a later one (a newer version wrote it, and its new
/// fields may change what must be done) is told with `git pull` as the fix.
pub fn check_format_version(what: &str, found: u32, reads: u32) -> Result<()> {
    if found > reads {
        bail!(
            "it was written by a newer version of this tool ({what} format {found}; this version \
             reads format {reads}): update this checkout (`git pull`) and run the command again"
        );
    }
    if found != reads {
        bail!("its {what} format {found} is not one this tool ever wrote (it writes {reads})");
    }
    Ok(())
}

/// How many migration names a message lists before "and N more".
const MIGRATIONS_NAMED: usize = 5;

/// `names` of migrations as a message lists them: those shaped as a
/// migration's file name (`0004_audit_log.sql`: letters, digits, `_ . -`,
/// ending `.sql`), the first few and how many more; any other is counted,
/// never quoted (a dump's `d1_migrations` rows are rows, and a manifest
/// may be anyone's).
pub fn migrations_named(names: &[String]) -> String {
    let shaped = |n: &&String| {
        n.len() <= 120
            && n.ends_with(".sql")
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    let (named, other): (Vec<&String>, Vec<&String>) = names.iter().partition(shaped);
    let mut said: Vec<String> = { named.iter() }
        .take(MIGRATIONS_NAMED)
        .map(|n| n.to_string())
        .collect();
    let more = named.len().saturating_sub(MIGRATIONS_NAMED);
    if more > 0 {
        said.push(format!("and {more} more"));
    }
    if !other.is_empty() {
        said.push(format!(
            "{} not shaped as a migration file name",
            crate::wording::count(other.len(), "name")
        ));
    }
    said.join(", ")
}

impl Manifest {
    /// What must hold before anything the manifest says is used, for a
    /// manifest stored under the file name `stored_as`:
    /// - `file.name` is a plain file name, the backup beside the manifest
    ///   whose name it shares (`X.manifest.json` names `X.sql`, `X.sql.zst`
    ///   or `X.sql.zst.age`);
    /// - each migration name is a plain file name;
    /// - each virtual table's DDL is exactly `CREATE VIRTUAL TABLE <its
    ///   name> USING fts5(...)` ([`check_virtual_table_ddl`]).
    ///
    /// Whether the migrations exist is checked where they are read, against
    /// the environment's `migrations_dir`.
    pub fn validate(&self, stored_as: &str) -> Result<()> {
        self.check_format()?;
        self.check_names(stored_as)?;
        self.check_digests()?;
        self.check_recipients()?;
        self.check_sealed_as_named()?;
        // A `created_at` after now (a clock that ran fast, or this one set
        // back) is no reason to distrust the rest: every command that picks
        // the newest passes such a backup over, saying why, and prune keeps
        // it (the xtask's `inventory::dated_ahead`, `retention::Reason::Ahead`).
        self.check_migrations()?;
        // Counters only of the chosen tables, and only as SQLite keeps them.
        let odd_counter = self
            .sequences
            .iter()
            .flatten()
            .find(|(t, seq)| !(0..=MAX_SEQUENCE).contains(*seq) || !self.tables.contains(*t));
        if let Some((table, _)) = odd_counter {
            bail!(
                "it records an AUTOINCREMENT counter for {}, which is not one of the tables it \
                 chose, or one below zero, or one that would leave that table fewer than 2^32 \
                 ids to give",
                crate::names::shown_name(table)
            );
        }
        // Only a native local export writes values exactly where D1 would
        // not, and only in tables it holds: a claim beyond that would only
        // take tables out of a restore's content check.
        if let Some(exact) = &self.exact_values {
            if self.database.location != "local" {
                bail!("it records exact values, which only a backup of a local D1 holds");
            }
            if let Some(table) = exact.keys().find(|t| !self.rows.contains_key(*t)) {
                let table = crate::names::shown_name(table);
                bail!("it records exact values of {table}, a table it holds no rows of");
            }
        }
        if let Some(table) = self
            .wide_integers
            .iter()
            .flatten()
            .find(|(t, n)| **n == 0 || !self.rows.contains_key(*t))
        {
            bail!(
                "it records integers beyond 2^53 in {}, a table it does not record, or records none there",
                crate::names::shown_name(table.0)
            );
        }
        if let Some(table) = self
            .whole_reals
            .iter()
            .flatten()
            .find(|(t, n)| **n == 0 || !self.rows.contains_key(*t))
        {
            bail!(
                "it records whole REALs in {}, a table it does not record, or records none there",
                crate::names::shown_name(table.0)
            );
        }
        self.check_text_counts()?;
        self.check_virtual_tables()
    }

    /// Text written otherwise (`replaced_text`, `ambiguous_text`) is
    /// recorded only of tables the manifest holds rows of, and only where
    /// some was found: a claim beyond that would only take tables out of a
    /// restore's content check.
    fn check_text_counts(&self) -> Result<()> {
        let per_column = [
            (&self.replaced_text, "text that is not UTF-8"),
            (
                &self.ambiguous_text,
                "text with a line break and its escape",
            ),
        ];
        // An FTS5 table's are recorded under its name: it holds no rows of
        // its own, its `_content` shadow table does.
        let fts5_rows = self.virtual_table_ddl();
        let holds_rows = |t: &String| {
            self.rows.contains_key(t)
                || fts5_rows.iter().any(|vt| {
                    vt.name == *t
                        && matches!(&vt.content, VirtualContent::Internal { table }
                            if self.rows.contains_key(table))
                })
        };
        for (recorded, what) in per_column {
            if let Some((table, _)) = { recorded.iter().flatten() }.find(|(t, columns)| {
                !holds_rows(t) || columns.is_empty() || columns.values().any(|n| *n == 0)
            }) {
                bail!(
                    "it records {what} in {}, a table it does not record, or records none there",
                    crate::names::shown_name(table)
                );
            }
        }
        Ok(())
    }

    /// `file.name` is the backup beside the manifest stored as `stored_as`,
    /// whose name carries the environment; no printed field holds a
    /// control character.
    fn check_names(&self, stored_as: &str) -> Result<()> {
        let name = &self.file.name;
        let printed = std::iter::once(("file.name", name.as_str())).chain(self.printed_fields());
        for (field, value) in printed {
            // A reason is free text, the rest are names.
            let printable = match field {
                "reason" => crate::names::is_printable_text(value),
                _ => crate::names::is_printable(value),
            };
            if !printable {
                bail!(
                    "its {field} holds a control or invisible formatting character (a line \
                     break, an escape code, a bidi override, a zero-width space): printed, it \
                     would read as something else, and this tool writes none there"
                );
            }
        }
        let own = manifest_path(Path::new(name));
        if !crate::names::is_plain_file_name(name)
            || !BACKUP_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
            || own.file_name() != Some(std::ffi::OsStr::new(stored_as))
        {
            bail!(
                "its file.name {name:?} is not the backup beside it: a manifest named {stored_as} \
                 names a plain file name of the same stem (like {}), in its own directory",
                stored_as.replace(MANIFEST_SUFFIX, ".sql")
            );
        }
        // The environment is in the name the tool gave the backup, which is
        // what `list` and prune's plan show: a manifest that claims another
        // would have its backup judged, chosen and pruned as that one's.
        // `backup-<env>-YYYYMMDD-HHMM[-N]`: the whole rest of the name is
        // the time, so `prod` cannot claim `backup-prod-eu-…`.
        // An environment is named by the configuration's rule, so that no
        // name can look like another (`prоd` with a Cyrillic `о`).
        let named = format!("backup-{}-", self.environment);
        let stem = stored_as.strip_suffix(MANIFEST_SUFFIX).unwrap_or(stored_as);
        let stamp = { stem.strip_prefix(&named) }
            .filter(|s| crate::names::is_environment_name(&self.environment) && is_stamp(s));
        let Some(stamp) = stamp else {
            bail!(
                "it says it is a backup of {:?}, but its name is not {named}YYYYMMDD-HHMM, as \
                 the name of every backup of that environment is, or that is no environment's \
                 name (ASCII letters, digits, `_` and `-`, as the configuration's)",
                self.environment.escape_debug().to_string()
            );
        };
        check_named_minute("it", &stamp[..13], self.created_at)?;
        self.check_taken_after(&named)
    }

    /// Each backup it records taking after is named as a backup of its
    /// environment, not itself, with a sha256: the names are looked up in
    /// the backup directory and the index, and may be printed.
    fn check_taken_after(&self, named: &str) -> Result<()> {
        for t in &self.taken_after {
            let ours = crate::names::is_plain_file_name(&t.file)
                && t.file != self.file.name
                && backup_name(&t.file).is_some_and(|b| b.env == self.environment);
            if !ours || !crate::names::is_sha256_hex(&t.sha256) {
                bail!(
                    "its taken_after records something other than another backup of {:?} by \
                     name (`{named}YYYYMMDD-HHMM`) and sha256 (64 lowercase hex digits)",
                    self.environment
                );
            }
        }
        Ok(())
    }

    /// Migration names are plain file names; their sha256 records are of
    /// migrations it lists, and sha256s.
    fn check_migrations(&self) -> Result<()> {
        for migration in &self.migrations {
            if !crate::names::is_plain_file_name(migration) {
                bail!(
                    "its migration name {migration:?} is not a plain file name in the migrations \
                     directory"
                );
            }
        }
        // A set: a manifest may list any number of them.
        let listed: std::collections::HashSet<&str> =
            self.migrations.iter().map(String::as_str).collect();
        for (migration, sha256) in self.migration_sha256.iter().flatten() {
            if !listed.contains(migration.as_str()) {
                bail!(
                    "its migration_sha256 records {migration:?}, which is not among its \
                     migrations"
                );
            }
            if !crate::names::is_sha256_hex(sha256) {
                bail!(
                    "its migration_sha256 for {migration:?} is not a sha256 (64 lowercase hex \
                     digits)"
                );
            }
        }
        Ok(())
    }

    /// Each virtual table's DDL is exactly one FTS5 CREATE of a table it
    /// lists, once, with its rows where its kind keeps them.
    fn check_virtual_tables(&self) -> Result<()> {
        let tables = self.virtual_table_ddl();
        let listed: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        for (i, vt) in tables.iter().enumerate() {
            let shown = crate::names::shown_name(&vt.name);
            if listed[..i].contains(&vt.name.as_str()) {
                bail!("it lists the virtual table {shown} twice");
            }
            let (named, module) = check_virtual_table_ddl_module(&vt.sql, &listed)
                .with_context(|| format!("the DDL of its virtual table {shown} is refused"))?;
            // An fts5vocab table holds nothing of its own, and only it.
            let vocabulary = module.eq_ignore_ascii_case("fts5vocab");
            if named != vt.name
                || !vt.module.eq_ignore_ascii_case(&module)
                || vocabulary != (vt.content == VirtualContent::Derived)
            {
                bail!("its virtual table entry {shown} holds the DDL of another table or module");
            }
            check_fts_settings(vt)?;
            let own = format!("{}_content", vt.name);
            if let VirtualContent::Internal { table } = &vt.content
                && *table != own
            {
                let own = crate::names::shown_name(&own);
                let table = crate::names::shown_name(table);
                bail!(
                    "its virtual table {shown} keeps its rows in {table}, not in its own shadow \
                     table {own}"
                );
            }
        }
        Ok(())
    }

    /// Whether a later version of this tool wrote the manifest: its
    /// format is newer than the one this version reads.
    pub fn is_newer_format(&self) -> bool {
        self.format_version > FORMAT_VERSION
    }

    /// Refuses a manifest of a format this version does not read: a later
    /// version's may hold fields that change what a restore must do, which
    /// this one would pass over as if they were not there.
    /// `sealed` says what the file's name says: a compressed or encrypted
    /// file (`.sql.zst`, `.sql.zst.age`) records its format and plaintext,
    /// a plain `.sql` records none. Otherwise its plaintext would be
    /// checked against the stored file's digest, or the other way round.
    fn check_sealed_as_named(&self) -> Result<()> {
        let named = crate::sealed::Format::of(std::path::Path::new(&self.file.name));
        let recorded = self.sealed.as_ref().map(|s| s.format.as_str());
        match (named, recorded) {
            (crate::sealed::Format::Sql, None) => Ok(()),
            (crate::sealed::Format::Sql, Some(_)) => {
                bail!(
                    "it records `sealed` for {}, a plain SQL file",
                    self.file.name
                )
            }
            (format, Some(label)) if label == format.label() => Ok(()),
            (format, _) => bail!(
                "{} is {} by its name, but its `sealed` does not record that format and its \
                 plaintext",
                self.file.name,
                format.label()
            ),
        }
    }

    /// Refuses recipients that are no age recipient: they are printed as
    /// the keys a backup needs (`status`, `doctor`, `list --json`), and a
    /// planted sentence must not read as one.
    fn check_recipients(&self) -> Result<()> {
        for r in self.sealed_to() {
            if crate::sealed::check_recipient(r).is_err() {
                bail!("sealed.recipients holds a value that is no age recipient");
            }
        }
        Ok(())
    }

    /// `file.sha256` (and a sealed file's plaintext sha256) are what this
    /// tool writes, 64 lowercase hex digits: they are printed and copied
    /// into the drill log's row, where a line break or a `|` would make a
    /// line or a row of their own.
    fn check_digests(&self) -> Result<()> {
        let sealed = self.sealed.as_ref().map(|s| s.plaintext_sha256.as_str());
        for (field, value) in std::iter::once(("file.sha256", self.file.sha256.as_str()))
            .chain(sealed.map(|v| ("sealed.plaintext_sha256", v)))
        {
            if !crate::names::is_sha256_hex(value) {
                bail!("its {field} is not a sha256 (64 lowercase hex digits)");
            }
        }
        Ok(())
    }

    fn check_format(&self) -> Result<()> {
        check_format_version("manifest", self.format_version, FORMAT_VERSION)
    }

    /// The JSON as written, not yet validated (see [`Manifest::validate`]).
    pub fn from_json(text: &str) -> serde_json::Result<Manifest> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> Result<String> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// The DDL of the virtual tables the export had to leave out, which
    /// the repair recreates (empty when there were none).
    pub fn virtual_table_ddl(&self) -> Vec<VirtualTable> {
        self.virtual_tables
            .as_ref()
            .map(|v| v.tables.clone())
            .unwrap_or_default()
    }

    /// The fields `list`, `status` and the plans print, by name.
    fn printed_fields(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![
            ("environment", self.environment.as_str()),
            ("database.name", &self.database.name),
            ("database.uuid", &self.database.uuid),
            ("database.location", &self.database.location),
            ("mode", &self.mode),
            ("tool.name", &self.tool.name),
            ("tool.version", &self.tool.version),
        ];
        let optional = [
            ("database.wrangler_env", &self.database.wrangler_env),
            ("reason", &self.reason),
            ("wrangler_version", &self.wrangler_version),
            ("git_commit", &self.git_commit),
            ("time_travel_bookmark", &self.time_travel_bookmark),
        ];
        fields.extend(
            optional
                .into_iter()
                .filter_map(|(f, v)| v.as_deref().map(|v| (f, v))),
        );
        fields.extend(self.tables.iter().map(|t| ("tables", t.as_str())));
        if let Some(key) = &self.encryption_key {
            fields.push(("encryption_key.key_id", &key.key_id));
            fields.push(("encryption_key.fingerprint", &key.fingerprint));
        }
        if let Some(sealed) = &self.sealed {
            fields.push(("sealed.format", &sealed.format));
            fields.extend(
                sealed
                    .recipients
                    .iter()
                    .map(|r| ("sealed.recipients", r.as_str())),
            );
        }
        if let Some(o) = &self.offsite {
            fields.extend([
                ("offsite.bucket", o.bucket.as_str()),
                ("offsite.key", &o.key),
                ("offsite.manifest_key", &o.manifest_key),
            ]);
        }
        if let Some(v) = &self.verification {
            fields.extend([
                ("verification.outcome", v.outcome.as_str()),
                ("verification.tool_version", &v.tool_version),
            ]);
        }
        fields
    }

    /// The migrations the database had applied when the backup was taken,
    /// read from the dump's `d1_migrations` rows; `None` when the dump has
    /// none to read (a schema-only backup, or chosen tables without
    /// `d1_migrations`), which is not the same as none applied.
    pub fn applied_migrations(&self) -> Option<&[String]> {
        let has_rows = self.mode != "schema-only"
            && (self.tables.is_empty()
                || self
                    .tables
                    .iter()
                    .any(|t| crate::statement::is_migrations_table(t)));
        has_rows.then_some(self.migrations.as_slice())
    }

    /// Rows whose schema is today's migrations, whichever they are: a
    /// data-only backup of chosen tables without `d1_migrations` records
    /// no migration, and a restore puts its rows into a target that is up
    /// to date (`--clean` applies every migration first). verify loads it
    /// so, and `restore --clean` takes it so.
    pub fn rows_go_on_todays_migrations(&self) -> bool {
        self.mode == "data-only"
            && self.migrations.is_empty()
            && self.applied_migrations().is_none()
    }

    /// The tables and rows a restore checks (`statement::rows_are_checked`:
    /// not `sqlite_sequence`, SQLite's bookkeeping), as every summary of a
    /// backup counts them, so that a backup, its verify and its restore say
    /// the same numbers.
    pub fn checked_rows(&self) -> (usize, u64) {
        let checked: Vec<u64> = self
            .rows
            .iter()
            .filter(|(t, _)| crate::statement::rows_are_checked(t))
            .map(|(_, n)| *n)
            .collect();
        (checked.len(), checked.iter().sum())
    }

    /// A backup of every table of a database that had none (a remote
    /// database emptied, or a wrong `database_id`): "0 tables, 0 rows",
    /// GOOD, and no copy of any data. A schema-only backup counts no rows,
    /// and one of chosen tables is not of the whole database: neither is.
    pub fn holds_no_tables(&self) -> bool {
        self.mode != "schema-only" && self.tables.is_empty() && self.checked_rows().0 == 0
    }

    /// Where the manifest says of the dump's content what the dump itself
    /// (`summary`, counted from the SQL the manifest's sha256 binds) does
    /// not: rows per table, the migrations its `d1_migrations` rows name,
    /// the data-encryption key in force. A restore's guards read these
    /// fields before anything is written (the key check, `--clean`'s
    /// migrations, pending migrations), so a manifest edited after its
    /// backup was taken would pass a restore that the dump would not. Each
    /// finding names a field and counts, never a value.
    ///
    /// `key_rule`: whether the app declares where its key is recorded
    /// ([`crate::app::KeyRecord`]) now; without a rule nothing reads the
    /// key, and the one recorded under an earlier rule is not contradicted.
    pub fn contradictions(&self, summary: &DumpSummary, key_rule: bool) -> Vec<String> {
        let mut found = Vec::new();
        let tables: BTreeSet<&String> = self.rows.keys().chain(summary.rows.keys()).collect();
        let rows_differ = tables
            .into_iter()
            .filter(|t| crate::statement::rows_are_checked(t))
            // A backup records an empty exported table as 0 rows, and a
            // schema-only one records none: 0 and absent are alike.
            .filter(|t| {
                self.rows.get(*t).copied().unwrap_or(0)
                    != summary.rows.get(*t).copied().unwrap_or(0)
            })
            .count();
        if rows_differ > 0 {
            found.push(format!(
                "the rows it records differ from the dump's in {}",
                crate::wording::count(rows_differ, "table")
            ));
        }
        if self.migrations != summary.migrations {
            // By set: a hostile manifest and dump may list 100,000 names.
            let only = |a: &[String], b: &[String]| -> Vec<String> {
                let b: std::collections::BTreeSet<&String> = b.iter().collect();
                a.iter().filter(|n| !b.contains(n)).cloned().collect()
            };
            let mut which = Vec::new();
            for (names, said) in [
                (
                    only(&self.migrations, &summary.migrations),
                    "the manifest only",
                ),
                (only(&summary.migrations, &self.migrations), "the dump only"),
            ] {
                if !names.is_empty() {
                    which.push(format!("{said}: {}", migrations_named(&names)));
                }
            }
            found.push(format!(
                "it lists {} where the dump's d1_migrations rows name {}, or not the same ones{}",
                crate::wording::count(self.migrations.len(), "applied migration"),
                summary.migrations.len(),
                match which.is_empty() {
                    true => " (the same names in another order, or one twice)".to_owned(),
                    false => format!(" ({})", which.join("; ")),
                }
            ));
        }
        // A data-only dump has no CREATE TABLE of its own for the key's
        // table, so a key it does not show may only be unread.
        let key_unread = self.mode == "data-only" && summary.encryption_key.is_none();
        // A backup taken before the rule existed records none: nothing read
        // it then, which is not a claim about it (a restore goes by the
        // dump's own key).
        let recorded = self.encryption_key.is_some();
        if key_rule && recorded && self.encryption_key != summary.encryption_key && !key_unread {
            found.push(
                "the data-encryption key it records is not the one the dump's rows hold in force"
                    .to_owned(),
            );
        }
        found
    }

    /// A full backup of the whole database (not `--table` or data-only).
    pub fn is_whole(&self) -> bool {
        self.mode == "full" && self.tables.is_empty()
    }

    /// Whether `latest` may choose this backup: verified good, and the
    /// manifest still the one that was verified.
    pub fn is_verified_good(&self) -> bool {
        self.verification
            .as_ref()
            .is_some_and(Verification::is_good)
            && !self.changed_since_verified()
    }

    /// The sha256 of what the manifest says of its backup: all of it but
    /// its `verification` and `offsite` records, which a verify and an
    /// upload write after it, as this version reads it (serialised
    /// compactly, fields in order). The bytes themselves are not hashed:
    /// a manifest saved again with another layout (a byte order mark,
    /// CRLF line endings) says the same. A field added to [`Manifest`]
    /// must be left out of its JSON while unset, or every digest recorded
    /// before it changes.
    pub fn described_sha256(&self) -> String {
        let mut described = self.clone();
        described.verification = None;
        described.offsite = None;
        let json = serde_json::to_vec(&described).unwrap_or_default();
        crate::names::hex(&sha2::Sha256::digest(&json))
    }

    /// Whether the manifest was changed since its last verification: that
    /// verification recorded another [`Manifest::described_sha256`]. One
    /// recorded without it (an earlier version's) is not.
    pub fn changed_since_verified(&self) -> bool {
        let recorded = { self.verification.as_ref() }.and_then(|v| v.manifest_sha256.as_deref());
        recorded.is_some_and(|sha256| sha256 != self.described_sha256())
    }

    /// Whether its record of applied migrations (`migration_sha256`) may be
    /// the record an edit is judged by: verified good, with the
    /// migrations checked. A backup taken without `migrations/` records
    /// `{}` while listing every applied migration; taken as the record
    /// (the bucket's newest, on a fresh machine), `migrate --check` would
    /// check names only.
    pub fn is_migration_record(&self) -> bool {
        self.is_verified_good() && { self.verification.as_ref() }
            .is_some_and(|v| !v.migrations_unchecked)
    }

    /// Whether the file is age ciphertext.
    pub fn is_age_sealed(&self) -> bool {
        self.sealed
            .as_ref()
            .is_some_and(|s| s.format.contains("age"))
    }

    /// The SQL the backup holds, as recorded: its sha256 and size in
    /// bytes. For a compressed or encrypted file, the plaintext's; for a
    /// plain `.sql`, the file's own. A read that loads the backup is
    /// checked against these.
    pub fn sql_digest(&self) -> (&str, u64) {
        match &self.sealed {
            Some(s) => (&s.plaintext_sha256, s.plaintext_bytes),
            None => (&self.file.sha256, self.file.bytes),
        }
    }

    /// The age recipients the file is sealed to (public keys); none when
    /// it is not sealed, or its manifest records none.
    pub fn sealed_to(&self) -> &[String] {
        self.sealed
            .as_ref()
            .map_or(&[], |s| s.recipients.as_slice())
    }
}

/// Checks that `sql` is exactly `CREATE VIRTUAL TABLE <name> USING
/// fts5(...)`, optionally followed by `;`, where `<name>` is one of
/// `listed`; returns the name. Comments, a schema-qualified name, another
/// module, a `;` inside the arguments or anything after them is refused.
/// Messages name the problem, never the SQL.
pub fn check_virtual_table_ddl(sql: &str, listed: &[&str]) -> Result<String> {
    check_virtual_table_ddl_module(sql, listed).map(|(name, _)| name)
}

/// [`check_virtual_table_ddl`], with the module the DDL names.
fn check_virtual_table_ddl_module(sql: &str, listed: &[&str]) -> Result<(String, String)> {
    if sql.contains('\0') {
        bail!("it contains a NUL byte");
    }
    let mut c = Cursor { s: sql, at: 0 };
    for keyword in ["CREATE", "VIRTUAL", "TABLE"] {
        c.keyword(keyword)?;
    }
    let name = c
        .identifier()
        .context("no table name after CREATE VIRTUAL TABLE")?;
    if c.peek() == Some('.') {
        bail!("the table name is qualified with a schema");
    }
    if !listed.contains(&name.as_str()) {
        bail!("it creates a table that the manifest does not list as a virtual table");
    }
    // Its shadow tables are <name>_data, ...; its content= a table it reads.
    let lower = sql.to_ascii_lowercase();
    if name.eq_ignore_ascii_case("_cf") || lower.contains("_cf_") || lower.contains("sqlite_") {
        bail!(
            "it names a table D1, workerd or SQLite keep for themselves (_cf_*, sqlite_*), as its \
             own, its shadow tables' or its content"
        );
    }
    c.keyword("USING")?;
    let module = c.identifier().context("no module after USING")?;
    if !module.eq_ignore_ascii_case("fts5") && !module.eq_ignore_ascii_case("fts5vocab") {
        bail!("it uses a module other than fts5 and fts5vocab");
    }
    c.skip_space();
    if c.peek() != Some('(') {
        bail!("no argument list after USING {module}");
    }
    c.at += 1;
    c.arguments()?;
    c.skip_space();
    if c.peek() == Some(';') {
        c.at += 1;
        c.skip_space();
    }
    if c.at != sql.len() {
        bail!("something follows the closing parenthesis of USING fts5(...)");
    }
    Ok((name, module))
}

/// A position in a statement, for [`check_virtual_table_ddl`].
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    /// `word`, case-insensitive, whole, after optional whitespace.
    fn keyword(&mut self, word: &str) -> Result<()> {
        self.skip_space();
        let found = self.identifier_bare();
        if !found.eq_ignore_ascii_case(word) {
            bail!("it is not CREATE VIRTUAL TABLE <name> USING fts5(...): {word} expected");
        }
        Ok(())
    }

    fn identifier_bare(&mut self) -> &str {
        let rest = &self.s[self.at..];
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    /// A bare or quoted (`"x"`, `` `x` ``, `[x]`) identifier, unquoted.
    fn identifier(&mut self) -> Option<String> {
        self.skip_space();
        let close = match self.peek()? {
            '"' => '"',
            '`' => '`',
            '[' => ']',
            c if c.is_alphabetic() || c == '_' => {
                return Some(self.identifier_bare().to_owned());
            }
            _ => return None,
        };
        let body = &self.s[self.at + 1..];
        let mut name = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == close {
                if close != ']' && chars.peek().map(|&(_, n)| n) == Some(close) {
                    chars.next();
                    name.push(c);
                    continue;
                }
                self.at += 1 + i + c.len_utf8();
                return (!name.is_empty()).then_some(name);
            }
            name.push(c);
        }
        None
    }

    /// Skips the arguments after `(` up to the matching `)`, refusing
    /// comments and `;` outside quotes.
    fn arguments(&mut self) -> Result<()> {
        let mut depth = 1usize;
        let mut quote: Option<char> = None;
        let bytes = self.s.as_bytes();
        for (i, c) in self.s[self.at..].char_indices() {
            let at = self.at + i;
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '\'' | '"' | '`' => quote = Some(c),
                '[' => quote = Some(']'),
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at = at + 1;
                        return Ok(());
                    }
                }
                ';' => bail!("a ';' inside the argument list starts another statement"),
                '-' if bytes.get(at + 1) == Some(&b'-') => bail!("it contains a comment"),
                '/' if bytes.get(at + 1) == Some(&b'*') => bail!("it contains a comment"),
                _ => {}
            }
        }
        bail!("the argument list of USING fts5( is never closed")
    }
}

/// Refuses a virtual table entry's settings that no restore may set: any
/// on a table that keeps none, a key twice, or one [`FtsSetting::check`]
/// refuses. A restore runs each as a statement, so nothing else may pass.
fn check_fts_settings(vt: &crate::catalog::VirtualTable) -> Result<()> {
    let name = crate::names::shown_name(&vt.name);
    if !vt.settings.is_empty() && !vt.keeps_settings() {
        bail!("its virtual table {name} records settings, which only an FTS5 table keeps");
    }
    for (i, setting) in vt.settings.iter().enumerate() {
        setting
            .check()
            .with_context(|| format!("its virtual table {name} is refused"))?;
        if vt.settings[..i].iter().any(|s| s.key == setting.key) {
            bail!(
                "its virtual table {name} records the setting {} twice",
                setting.key
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migrations a manifest and its dump differ on are named, the
    /// first five and how many more; a name not shaped as a migration's
    /// file (a row's value) is counted, never quoted.
    #[test]
    fn migrations_are_named_by_their_file_names_only() {
        let names: Vec<String> = (1..=7).map(|i| format!("000{i}_m.sql")).collect();
        assert_eq!(
            migrations_named(&names),
            "0001_m.sql, 0002_m.sql, 0003_m.sql, 0004_m.sql, 0005_m.sql, and 2 more"
        );
        let said = migrations_named(&["0004_a.sql".to_owned(), "secret value".to_owned()]);
        assert_eq!(
            said,
            "0004_a.sql, 1 name not shaped as a migration file name"
        );
    }

    #[test]
    fn manifest_sits_beside_the_backup_whatever_its_suffixes() {
        assert_eq!(
            manifest_path(Path::new("b/backup-prod-20261123-2230.sql")),
            Path::new("b/backup-prod-20261123-2230.manifest.json")
        );
        assert_eq!(
            manifest_path(Path::new("b/backup-prod-20261123-2230-2.sql.zst.age")),
            Path::new("b/backup-prod-20261123-2230-2.manifest.json")
        );
    }

    #[test]
    fn the_time_is_read_only_from_a_name_a_backup_run_gives() {
        for (name, stamp) in [
            ("backup-prod-20261123-2230.sql", Some("20261123-2230")),
            (
                "backup-prod-eu-20261123-2230-2.sql.zst",
                Some("20261123-2230"),
            ),
            (
                "backup-local-20261123-2230.sql.zst.age",
                Some("20261123-2230"),
            ),
            ("backup-local-handmade.sql", None),
            ("backup--20261123-2230.sql", None),
            ("backup-prod-20261123-2230.manifest.json", None),
            ("backup-prod-20261123-2230-.sql", None),
            ("backup-prod-20261123-22300.sql", None),
            ("my-backup-prod-20261123-2230.sql", None),
        ] {
            assert_eq!(stamp_in_backup_name(name), stamp, "{name}");
        }
    }

    /// A name that runs on past its first `.sql` is no backup's name, and
    /// has its own manifest path: not the manifest of the backup it starts
    /// as. A qualified environment whose database starts with `sql` keeps
    /// its own manifest too.
    #[test]
    fn a_backups_name_is_exactly_its_stem_and_one_extension() {
        let named = |name| backup_name(name).map(|b| (b.env, b.stamp, b.stem));
        assert_eq!(
            named("backup-prod.sqlite_db-20261123-2230-2.sql.zst.age"),
            Some((
                "prod.sqlite_db",
                "20261123-2230",
                "backup-prod.sqlite_db-20261123-2230-2"
            ))
        );
        let run_on = "backup-prod-20261123-2230.sql-20261201-0100.sql";
        assert_eq!(
            manifest_path(Path::new(run_on)),
            Path::new("backup-prod-20261123-2230.sql-20261201-0100.manifest.json")
        );
        assert_eq!(
            manifest_path(Path::new("backup-prod.sqlite_db-20261123-2230.sql")),
            Path::new("backup-prod.sqlite_db-20261123-2230.manifest.json")
        );
        // Any other name is cut at its first `.sql`, as before.
        assert_eq!(
            manifest_path(Path::new("dump.sql.gz")),
            Path::new("dump.manifest.json")
        );
        for other in [
            "backup-prod-20261123-2230.sql.gz",
            "backup-prod-20261123-2230.sqlx",
        ] {
            assert_eq!(backup_name(other), None, "{other}");
        }
        // Its manifest is refused: the name is no backup of "prod".
        let mut m = sample("backup-prod-20261123-2230.sql");
        m.file.name = run_on.to_owned();
        assert!(
            m.validate("backup-prod-20261123-2230.manifest.json")
                .is_err()
        );
        assert!(
            m.validate("backup-prod-20261123-2230.sql-20261201-0100.manifest.json")
                .is_err()
        );
    }

    fn sample(file: &str) -> Manifest {
        let sha = "a".repeat(64);
        let text = format!(
            r#"{{"format_version":1,"tool":{{"name":"t","version":"0"}},"created_at":"2026-11-24T12:00:00Z",
            "environment":"prod","database":{{"name":"qbtime_db_prod","uuid":"u","wrangler_env":"production","location":"remote"}},
            "mode":"full","tables":[],"file":{{"name":"{file}","bytes":1,"sha256":"{sha}"}},
            "rows":{{}},"statements":0,"migrations":["0001_init.sql"],"encryption_key":null,"wrangler_version":null,
            "git_commit":null,"time_travel_bookmark":null,"virtual_tables":null,"reason":null}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    /// A hostile manifest's `ambiguous_text` (text with a line break and
    /// `\n`) is held to its rows as `replaced_text` is: a table it does not
    /// record, or a count of none, is refused.
    #[test]
    fn a_manifest_recording_ambiguous_text_of_a_table_it_does_not_record_is_refused() {
        let name = "backup-prod-20261124-1200.sql";
        let stored_as = "backup-prod-20261124-1200.manifest.json";
        let mut m = sample(name);
        m.rows = BTreeMap::from([("jt".to_owned(), 2)]);
        let counted = |t: &str, n: u64| {
            BTreeMap::from([(t.to_owned(), BTreeMap::from([("j".to_owned(), n)]))])
        };
        m.ambiguous_text = Some(counted("jt", 1));
        m.validate(stored_as).unwrap();
        for bad in [counted("other", 1), counted("jt", 0)] {
            m.ambiguous_text = Some(bad);
            let err = m.validate(stored_as).unwrap_err().to_string();
            assert!(err.contains("line break"), "{err}");
        }
    }

    /// rvCB 1: an FTS5 table's text is recorded under its own name
    /// (`docs`), though its rows are its `_content` shadow table's: taken
    /// where that shadow table's rows are recorded, refused where not.
    #[test]
    fn a_manifest_recording_text_of_an_fts5_table_is_held_to_its_content_tables_rows() {
        let stored_as = "backup-prod-20261124-1200.manifest.json";
        let mut m = with_virtual("docs", "CREATE VIRTUAL TABLE docs USING fts5(title, body)");
        let counted =
            BTreeMap::from([("docs".to_owned(), BTreeMap::from([("body".to_owned(), 1)]))]);
        m.replaced_text = Some(counted.clone());
        m.ambiguous_text = Some(counted);
        let err = m.validate(stored_as).unwrap_err().to_string();
        assert!(err.contains("not UTF-8 in docs"), "{err}");
        m.rows = BTreeMap::from([("docs_content".to_owned(), 1)]);
        m.validate(stored_as).unwrap();
    }

    #[test]
    fn the_sql_a_backup_holds_is_the_plaintext_of_a_sealed_file() {
        let mut m = sample("backup-prod-20261124-1200.sql");
        assert_eq!(m.sql_digest(), ("a".repeat(64).as_str(), 1));
        m.file.name = "backup-prod-20261124-1200.sql.zst".to_owned();
        m.sealed = Some(Sealed {
            format: "zstd".to_owned(),
            recipients: Vec::new(),
            plaintext_bytes: 7,
            plaintext_sha256: "0".repeat(64),
        });
        assert_eq!(m.sql_digest(), ("0".repeat(64).as_str(), 7));
    }

    fn with_virtual(name: &str, sql: &str) -> Manifest {
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.virtual_tables = Some(VirtualTableWorkaround {
            note: String::new(),
            export_tables: Vec::new(),
            tables: vec![VirtualTable {
                name: name.to_owned(),
                module: "fts5".to_owned(),
                sql: sql.to_owned(),
                content: VirtualContent::Internal {
                    table: format!("{name}_content"),
                },
                settings: Vec::new(),
            }],
        });
        m
    }

    /// A manifest edited after its backup (a key, a migration, a row
    /// count) contradicts the dump it binds, in words that quote no value.
    #[test]
    fn a_manifest_that_says_otherwise_than_its_dump_is_named() {
        let dump = "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TEXT);\n\
            INSERT INTO \"d1_migrations\" VALUES(1,'0001_init.sql','x');\n\
            CREATE TABLE encryption_keys (key_id TEXT PRIMARY KEY, fingerprint TEXT, algorithm TEXT, activated_at TEXT, retired_at TEXT);\n\
            INSERT INTO \"encryption_keys\" VALUES('k-old','sha256:secretish','AES-256-GCM','2026-01-01',NULL);\n\
            CREATE TABLE t(id INTEGER PRIMARY KEY);\n\
            INSERT INTO \"t\" VALUES(1);\n";
        let rule = crate::app::qbtime().encryption_key.unwrap();
        let summary =
            crate::dump::summarize(dump.as_bytes(), &BTreeMap::new(), Some(&rule)).unwrap();
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.rows = summary.rows.clone();
        m.encryption_key = summary.encryption_key.clone();
        assert_eq!(m.contradictions(&summary, true), Vec::<String>::new());
        // An empty table recorded or not is the same.
        let mut schema_only = m.clone();
        schema_only.rows.insert("empty".to_owned(), 0);
        assert_eq!(
            schema_only.contradictions(&summary, true),
            Vec::<String>::new()
        );

        let mut edited = m.clone();
        edited.encryption_key = Some(KeyFingerprint::new("k-new", "sha256:other"));
        edited.migrations.push("0002_more.sql".to_owned());
        edited.migrations.push("a secret row".to_owned());
        *edited.rows.get_mut("t").unwrap() = 2;
        let found = edited.contradictions(&summary, true);
        assert_eq!(found.len(), 3, "{found:?}");
        let text = found.join("; ");
        for value in ["k-old", "k-new", "secretish", "secret row"] {
            assert!(!text.contains(value), "{text}");
        }
        // A migration is named by its file name (KS): which one differs.
        assert!(
            text.contains("the manifest only: 0002_more.sql, 1 name not shaped"),
            "{text}"
        );
        // A data-only dump that does not show the key says nothing of it.
        let mut data_only = m.clone();
        data_only.mode = "data-only".to_owned();
        let unread = DumpSummary {
            encryption_key: None,
            ..summary.clone()
        };
        assert_eq!(
            data_only.contradictions(&unread, true),
            Vec::<String>::new()
        );
        assert_eq!(m.contradictions(&unread, true).len(), 1);
        // No rule for the key in backups.toml now: the one recorded under
        // an earlier rule is not held against the dump.
        assert_eq!(m.contradictions(&unread, false), Vec::<String>::new());
    }

    /// A backup taken before `[app.encryption_key]` was declared records no
    /// key (nothing read it then). Declaring the rule afterwards does not
    /// turn that honest backup into one whose manifest "does not describe
    /// it", which verify would record BAD for good (atkM).
    #[test]
    fn a_backup_taken_before_the_key_rule_is_not_contradicted_by_it() {
        let dump = "CREATE TABLE encryption_keys (key_id TEXT PRIMARY KEY, fingerprint TEXT, algorithm TEXT, activated_at TEXT, retired_at TEXT);\n\
            INSERT INTO \"encryption_keys\" VALUES('k-old','sha256:x','AES-256-GCM','2026-01-01',NULL);\n";
        let taken_without_rule =
            crate::dump::summarize(dump.as_bytes(), &BTreeMap::new(), None).unwrap();
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.rows = taken_without_rule.rows.clone();
        m.migrations = taken_without_rule.migrations.clone();
        m.encryption_key = taken_without_rule.encryption_key.clone();
        assert_eq!(m.encryption_key, None);
        let rule = crate::app::qbtime().encryption_key.unwrap();
        let read_now =
            crate::dump::summarize(dump.as_bytes(), &BTreeMap::new(), Some(&rule)).unwrap();
        assert_eq!(m.contradictions(&read_now, true), Vec::<String>::new());
    }

    /// A manifest dated after now (a clock set back since, or one that ran
    /// fast then) is valid: it is the commands that pick the newest that
    /// pass it over.
    #[test]
    fn a_manifest_dated_after_now_is_valid() {
        for ahead in [chrono::Duration::minutes(30), chrono::Duration::days(2)] {
            let at = chrono::Utc::now() + ahead;
            let stem = format!("backup-prod-{}", at.format("%Y%m%d-%H%M"));
            let mut m = sample(&format!("{stem}.sql"));
            m.created_at = at;
            m.validate(&format!("{stem}{MANIFEST_SUFFIX}")).unwrap();
        }
    }

    /// fxDY: `taken_after` names other backups of the manifest's own
    /// environment, each with a sha256; anything else is refused as the
    /// manifest is read. A record of a backup that is not there is valid:
    /// it is the order that passes it over ([`crate::order`]).
    #[test]
    fn taken_after_names_other_backups_of_its_environment() {
        let mut m = sample("backup-prod-20261124-1200.sql");
        let sha = "b".repeat(64);
        let record = |file: &str, sha256: &str| TakenAfter {
            file: file.to_owned(),
            sha256: sha256.to_owned(),
        };
        let stored_as = "backup-prod-20261124-1200.manifest.json";
        for file in [
            "backup-prod-20261124-1240.sql",
            "backup-prod-20261125-0000-2.sql.zst.age",
        ] {
            m.taken_after = vec![record(file, &sha)];
            m.validate(stored_as).unwrap();
        }
        for (file, sha256) in [
            ("backup-prod-20261124-1200.sql", sha.as_str()),
            ("backup-staging-20261124-1240.sql", &sha),
            ("backup-prod-eu-20261124-1240.sql", &sha),
            ("../backup-prod-20261124-1240.sql", &sha),
            ("backup-prod-20261124-1240.sql\n", &sha),
            ("backup-prod-20261124-1240.manifest.json", &sha),
            ("backup-prod-20261124-1240.sql", "B"),
        ] {
            m.taken_after = vec![record(file, sha256)];
            let err = m.validate(stored_as).unwrap_err().to_string();
            assert!(err.contains("taken_after"), "{file}: {err}");
        }
    }

    /// A manifest without `taken_after` (every one an earlier version
    /// wrote) reads as recording none, and one with none writes none.
    #[test]
    fn taken_after_is_absent_unless_there_is_one() {
        let m = sample("backup-prod-20261124-1200.sql");
        assert!(m.taken_after.is_empty());
        assert!(!m.to_json().unwrap().contains("taken_after"));
    }

    /// fxDY: `created_at` is the minute the backup's name says, in UTC,
    /// as a backup run names its file from the same instant: a manifest
    /// dated otherwise would be ordered (`latest`, prune) by one time and
    /// listed by another.
    #[test]
    fn created_at_is_the_minute_in_the_backups_name() {
        let mut m = sample("backup-prod-20261124-1200-2.sql");
        let stored_as = "backup-prod-20261124-1200-2.manifest.json";
        for honest in ["2026-11-24T12:00:00Z", "2026-11-24T12:00:59.999999999Z"] {
            m.created_at = honest.parse().unwrap();
            m.validate(stored_as).unwrap();
        }
        for other in [
            "2026-11-24T12:01:00Z",
            "2026-11-24T11:59:59Z",
            "2026-11-25T12:00:00Z",
            // 12:00 in another zone is 11:00 UTC.
            "2026-11-24T12:00:00+01:00",
        ] {
            m.created_at = other.parse().unwrap();
            let err = m.validate(stored_as).unwrap_err().to_string();
            assert!(err.contains("20261124-1200"), "{other}: {err}");
        }
    }

    /// The environment a manifest claims is the one in its backup's name:
    /// a staging backup relabelled prod is not prod's to judge or prune.
    #[test]
    fn the_environment_is_the_one_in_the_backups_name() {
        for (env, name) in [
            ("staging", "backup-prod-20261124-1200"),
            ("prod", "backup-production-20261124-1200"),
            ("pro", "backup-prod-20261124-1200"),
            ("", "backup--20261124-1200"),
            ("prod", "prod-20261124-1200"),
            ("prod", "backup-prod-eu-20261124-1200"),
            ("prod", "backup-prod-20261124-12"),
            ("prod", "backup-prod-20261124-1200-x"),
            ("prod", "backup-prod-1234567é1234"),
            ("prod", "backup-prod-20261124é123"),
            ("prod", "backup-prod-20261124-1200-"),
            // A look-alike (a Cyrillic о) is no environment's name.
            ("pr\u{43e}d", "backup-pr\u{43e}d-20261124-1200"),
            ("prod.", "backup-prod.-20261124-1200"),
        ] {
            let mut m = sample(&format!("{name}.sql"));
            m.environment = env.to_owned();
            let err = m
                .validate(&format!("{name}.manifest.json"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("YYYYMMDD-HHMM"), "{env}: {err}");
        }
        let mut m = sample("backup-prod.analytics-20261124-1200-3.sql");
        m.environment = "prod.analytics".to_owned();
        m.validate("backup-prod.analytics-20261124-1200-3.manifest.json")
            .unwrap();
    }

    /// Exact values are a local backup's, of tables it holds.
    #[test]
    fn exact_values_are_a_local_backups_of_its_own_tables() {
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.rows.insert("ledger".to_owned(), 1);
        m.exact_values = Some(BTreeMap::from([("ledger".to_owned(), 1)]));
        let err = m
            .validate("backup-prod-20261124-1200.manifest.json")
            .unwrap_err();
        assert!(err.to_string().contains("local D1"), "{err}");
        m.database.location = "local".to_owned();
        m.validate("backup-prod-20261124-1200.manifest.json")
            .unwrap();
        // Named as SQL spells it (it was Rust's Debug form).
        for (table, named) in [("accounts", "of accounts,"), ("my t", "of \"my t\",")] {
            m.exact_values = Some(BTreeMap::from([(table.to_owned(), 1)]));
            let err = m
                .validate("backup-prod-20261124-1200.manifest.json")
                .unwrap_err();
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    /// Integers beyond 2^53 are recorded for tables the backup holds rows
    /// of, and only where there are some.
    #[test]
    fn wide_integers_are_of_tables_with_rows() {
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.rows.insert("ledger".to_owned(), 1);
        m.wide_integers = Some(BTreeMap::from([("ledger".to_owned(), 1)]));
        m.validate("backup-prod-20261124-1200.manifest.json")
            .unwrap();
        for wide in [("accounts", 1), ("ledger", 0)] {
            m.wide_integers = Some(BTreeMap::from([(wide.0.to_owned(), wide.1)]));
            let err = m
                .validate("backup-prod-20261124-1200.manifest.json")
                .unwrap_err();
            assert!(err.to_string().contains("beyond 2^53"), "{wide:?}: {err}");
        }
    }

    /// AUTOINCREMENT counters are recorded only for the chosen tables.
    #[test]
    fn sequences_are_the_chosen_tables_own() {
        let stored = "backup-prod-20261124-1200.manifest.json";
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.tables = vec!["notifications".to_owned()];
        m.sequences = Some(BTreeMap::from([("notifications".to_owned(), 500)]));
        m.validate(stored).unwrap();
        for (table, seq) in [
            ("accounts", 5),
            ("notifications", -1),
            ("notifications", i64::MAX),
        ] {
            m.sequences = Some(BTreeMap::from([(table.to_owned(), seq)]));
            let err = m.validate(stored).unwrap_err().to_string();
            assert!(err.contains("AUTOINCREMENT counter"), "{err}");
        }
    }

    /// A line break or an escape code in a field that is printed would
    /// forge a row of `list`, or colour a terminal: refused, naming the field.
    #[test]
    fn printed_fields_hold_no_control_characters() {
        type Edit = fn(&mut Manifest);
        let edits: [(&str, Edit); 7] = [
            ("database.name", |m| {
                m.database
                    .name
                    .push_str("\nbackup-prod-20261124-1200.sql  good")
            }),
            // Right-to-left override: "qbtime_db_\u{202e}dorp" shows as "qbtime_db_prod".
            ("database.name", |m| {
                m.database.name = "qbtime_db_\u{202e}dorp".to_owned()
            }),
            ("tables", |m| m.tables.push("customers\u{200b}".to_owned())),
            ("reason", |m| m.reason = Some("a\u{2028}b".to_owned())),
            ("reason", |m| m.reason = Some("x\u{1b}[31m".to_owned())),
            ("tables", |m| m.tables.push("a\rb".to_owned())),
            ("offsite.bucket", |m| {
                m.offsite = Some(OffsiteCopy {
                    bucket: "b\n".to_owned(),
                    key: "k".to_owned(),
                    manifest_key: "k".to_owned(),
                    uploaded_at: m.created_at,
                })
            }),
        ];
        for (field, edit) in edits {
            let mut m = sample("backup-prod-20261124-1200.sql");
            edit(&mut m);
            let err = m
                .validate("backup-prod-20261124-1200.manifest.json")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(field) && err.contains("control"),
                "{field}: {err}"
            );
        }
        for name in [
            "backup-prod-20261124-1200.sql\n",
            "backup-prod-20261124-1200\u{feff}.sql",
        ] {
            let mut m = sample("backup-prod-20261124-1200.sql");
            m.file.name = name.to_owned();
            assert!(
                m.validate("backup-prod-20261124-1200.manifest.json")
                    .is_err(),
                "{name:?}"
            );
        }
        // Text that merely is not ASCII prints as itself.
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.reason = Some("vor der Migration: Kunden übertragen, 顧客".to_owned());
        m.validate("backup-prod-20261124-1200.manifest.json")
            .unwrap();
    }

    /// LG, rvBC 1: a reason over [`MAX_REASON`] bytes is read (older
    /// versions wrote them: refused, every command passed the backup over
    /// and prune refused the directory); [`clip_reason`] cuts one for
    /// printing on a character's boundary, within the cap.
    #[test]
    fn a_reason_over_the_cap_is_read_and_clipped_within_it() {
        let mut m = sample("backup-prod-20261124-1200.sql");
        m.reason = Some("x".repeat(MAX_REASON + 1));
        m.validate("backup-prod-20261124-1200.manifest.json")
            .unwrap();
        let clipped = clip_reason(&"é".repeat(MAX_REASON));
        assert!(clipped.len() <= MAX_REASON && clipped.ends_with('…'));
    }

    #[test]
    fn file_name_must_be_the_backup_beside_the_manifest() {
        for (ok, format) in [
            ("backup-prod-20261124-1200.sql", None),
            ("backup-prod-20261124-1200.sql.zst", Some("zstd")),
            ("backup-prod-20261124-1200.sql.zst.age", Some("zstd+age")),
        ] {
            let mut m = sample(ok);
            m.sealed = format.map(|format| Sealed {
                format: format.to_owned(),
                recipients: Vec::new(),
                plaintext_bytes: 1,
                plaintext_sha256: "0".repeat(64),
            });
            m.validate("backup-prod-20261124-1200.manifest.json")
                .unwrap();
            // `sealed` says what the name says, or the manifest is refused.
            m.sealed = match format {
                Some(_) => None,
                None => Some(Sealed {
                    format: "zstd".to_owned(),
                    recipients: Vec::new(),
                    plaintext_bytes: 1,
                    plaintext_sha256: "0".repeat(64),
                }),
            };
            let err = m
                .validate("backup-prod-20261124-1200.manifest.json")
                .unwrap_err();
            assert!(format!("{err:#}").contains("sealed"), "{ok}: {err:#}");
        }
        for bad in [
            "../../victim",
            "/etc/passwd",
            "../backup-prod-20261124-1200.sql",
            "sub/backup-prod-20261124-1200.sql",
            "backup-prod-20261124-1200-2.sql",
            "backup-prod-20261124-1200",
            "backup-prod-20261124-1200.sql\0",
            "",
            "..",
        ] {
            let mut m = sample("backup-prod-20261124-1200.sql");
            m.file.name = bad.to_owned();
            let err = m
                .validate("backup-prod-20261124-1200.manifest.json")
                .unwrap_err()
                .to_string();
            assert!(err.contains("file.name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn migration_names_must_be_plain() {
        for bad in ["../../../tmp/x.sql", "/tmp/x.sql", "a/0001.sql", "..", ""] {
            let mut m = sample("backup-prod-20261124-1200.sql");
            m.migrations = vec![bad.to_owned()];
            let err = m
                .validate("backup-prod-20261124-1200.manifest.json")
                .unwrap_err()
                .to_string();
            assert!(err.contains("migration name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_migration_record_is_optional_and_checked_when_present() {
        // A manifest written before the record existed reads and validates.
        let old = sample("backup-prod-20261124-1200.sql");
        assert_eq!(old.migration_sha256, None);
        old.validate("backup-prod-20261124-1200.manifest.json")
            .unwrap();
        let good = "ab".repeat(32);
        let with = |name: &str, sha: &str| {
            let mut m = sample("backup-prod-20261124-1200.sql");
            m.migration_sha256 = Some(BTreeMap::from([(name.to_owned(), sha.to_owned())]));
            m.validate("backup-prod-20261124-1200.manifest.json")
        };
        with("0001_init.sql", &good).unwrap();
        let err = with("0002_other.sql", &good).unwrap_err().to_string();
        assert!(err.contains("not among its migrations"), "{err}");
        for bad in [
            "",
            "AB".repeat(32).as_str(),
            &good[1..],
            "zz".repeat(32).as_str(),
        ] {
            let err = with("0001_init.sql", bad).unwrap_err().to_string();
            assert!(err.contains("is not a sha256"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn virtual_table_ddl_is_exactly_one_fts5_create_of_a_listed_table() {
        let listed = ["notes_fts", "other", "_cf"];
        for ok in [
            "CREATE VIRTUAL TABLE notes_fts USING fts5(title, body)",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(title, body);",
            "create virtual table \"notes_fts\" using FTS5(body, content='notes', content_rowid='id') ;",
            "CREATE VIRTUAL TABLE [notes_fts] USING fts5(body, tokenize = 'unicode61 separators '';''')",
            "CREATE  VIRTUAL\n TABLE `notes_fts`\tUSING fts5 (a)",
        ] {
            assert_eq!(
                check_virtual_table_ddl(ok, &listed).unwrap(),
                "notes_fts",
                "{ok}"
            );
        }
        for bad in [
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a); ATTACH '/tmp/o.db' AS o",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a);ATTACH '/tmp/o.db' AS o;",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a) ; DROP TABLE accounts",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a) -- trailing",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a /* x */)",
            "/* x */ CREATE VIRTUAL TABLE notes_fts USING fts5(a)",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a, b); VACUUM INTO '/tmp/copy.db'",
            "CREATE VIRTUAL TABLE notes_fts USING fts4(a)",
            "CREATE VIRTUAL TABLE notes_fts USING rtree(a, b, c)",
            "CREATE VIRTUAL TABLE notes_fts USING fileio",
            "CREATE VIRTUAL TABLE accounts USING fts5(a)",
            "CREATE VIRTUAL TABLE _cf USING fts5(a)",
            "CREATE VIRTUAL TABLE o.notes_fts USING fts5(a)",
            "CREATE VIRTUAL TABLE main.notes_fts USING fts5(a)",
            "CREATE TABLE notes_fts(a)",
            "CREATE TEMP VIRTUAL TABLE notes_fts USING fts5(a)",
            "CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(a)",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a) x",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a)\0; DROP TABLE t",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(v, content='_cf_METADATA', content_rowid='key')",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(v, content='sqlite_schema')",
            "ATTACH 'x' AS o",
            "",
        ] {
            assert!(
                check_virtual_table_ddl(bad, &listed).is_err(),
                "accepted {bad:?}"
            );
        }
    }

    /// rvAC 5: a hostile manifest's virtual table name is never printed
    /// raw: a line break in it cannot forge a line of its own.
    #[test]
    fn a_virtual_table_name_with_a_line_break_is_not_printed_raw() {
        let name = "x\nResult: OK";
        for sql in [
            format!("CREATE VIRTUAL TABLE \"{name}\" USING fts5(a)"),
            "CREATE VIRTUAL TABLE y USING fts5(a)".to_owned(),
        ] {
            let err = with_virtual(name, &sql)
                .validate("backup-prod-20261124-1200.manifest.json")
                .map_or_else(|e| format!("{e:#}"), |()| String::new());
            assert!(!err.contains('\n'), "{err:?}");
        }
    }

    #[test]
    fn a_virtual_table_entry_must_hold_its_own_ddl() {
        with_virtual("notes_fts", "CREATE VIRTUAL TABLE notes_fts USING fts5(a)")
            .validate("backup-prod-20261124-1200.manifest.json")
            .unwrap();
        // Another listed entry's table.
        let mut m = with_virtual("notes_fts", "CREATE VIRTUAL TABLE notes_fts USING fts5(a)");
        let mut second = m.virtual_table_ddl()[0].clone();
        second.name = "second".into();
        second.content = VirtualContent::Internal {
            table: "second_content".into(),
        };
        m.virtual_tables.as_mut().unwrap().tables.push(second);
        let err = m
            .validate("backup-prod-20261124-1200.manifest.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("second"), "{err}");
        // A table the manifest does not list.
        let err = with_virtual("notes_fts", "CREATE VIRTUAL TABLE x USING fts5(a)")
            .validate("backup-prod-20261124-1200.manifest.json")
            .unwrap_err();
        assert!(format!("{err:#}").contains("does not list"), "{err:#}");
        // Rows loaded into some other table.
        let mut m = with_virtual("notes_fts", "CREATE VIRTUAL TABLE notes_fts USING fts5(a)");
        m.virtual_tables.as_mut().unwrap().tables[0].content = VirtualContent::Internal {
            table: "accounts".into(),
        };
        assert!(
            m.validate("backup-prod-20261124-1200.manifest.json")
                .is_err()
        );
    }
}
