//! The JSON manifest written next to every backup.
//!
//! A manifest says what the backup is (environment, database, mode), proves
//! which bytes it covers (size and SHA-256), and records what was in it
//! (rows per table, migrations, the encryption key's fingerprint), so that
//! verify and restore can check a file before trusting it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::VirtualTable;
use crate::dump::KeyFingerprint;

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

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
    /// The last `cargo xtask verify` of this file. A backup that failed it is
    /// kept, but never chosen as `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The offsite copy, once uploaded and read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsite: Option<OffsiteCopy>,
}

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

/// `backups/backup-prod-20261123-2230.sql` -> `backups/backup-prod-20261123-2230.manifest.json`.
pub fn manifest_path(backup: &Path) -> PathBuf {
    let name = backup
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.split(".sql").next().unwrap_or(&name);
    backup.with_file_name(format!("{stem}{MANIFEST_SUFFIX}"))
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the manifest {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid backup manifest", path.display()))
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

    /// Whether `latest` may choose this backup: verified good.
    pub fn is_verified_good(&self) -> bool {
        self.verification
            .as_ref()
            .is_some_and(Verification::is_good)
    }

    /// Writes the manifest to `path`, which must not exist yet.
    pub fn create_at(&self, path: &Path) -> Result<()> {
        let partial = self.staged(path)?;
        crate::fsutil::rename_no_clobber(partial.path(), path)
            .with_context(|| format!("cannot write the manifest {}", path.display()))?;
        partial.disarm();
        Ok(())
    }

    /// Rewrites the manifest at `path` with this content, atomically: a
    /// reader sees the old manifest or the new one, never half of one.
    pub fn replace_at(&self, path: &Path) -> Result<()> {
        let partial = self.staged(path)?;
        std::fs::rename(partial.path(), path)
            .with_context(|| format!("cannot update the manifest {}", path.display()))?;
        partial.disarm();
        Ok(())
    }

    /// Records a verification's outcome in the manifest at `path`.
    pub fn record_verification(&mut self, path: &Path, outcome: Verification) -> Result<()> {
        self.verification = Some(outcome);
        self.replace_at(path)
    }

    /// This manifest, written and synced to a private temporary file beside `path`.
    fn staged(&self, path: &Path) -> Result<crate::fsutil::TempFile> {
        let partial = crate::fsutil::TempFile::create(path.with_extension("json.partial"))?;
        std::fs::write(partial.path(), self.to_json()?)?;
        crate::fsutil::sync_file(partial.path())?;
        Ok(partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
