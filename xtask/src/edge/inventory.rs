//! The backups on disk, read from their manifests: what `list` shows and
//! what `latest` means.
//!
//! `latest` is the newest backup of an environment that holds the whole
//! database and passed verification. A backup that failed verification stays
//! on disk, marked bad, and is never chosen.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::project::Project;
use crate::edge::manifest_file::ManifestFile;
use crate::exit::Exit;
use d1_core::manifest::{self, Manifest};

/// One backup file and its manifest.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: PathBuf,
    pub manifest: Manifest,
}

impl Entry {
    /// A backup of the whole database (not `--table`, not schema- or data-only).
    pub fn is_whole(&self) -> bool {
        self.manifest.mode == "full" && self.manifest.tables.is_empty()
    }

    /// `good`, `bad` or `unverified`.
    pub fn verified(&self) -> &str {
        match &self.manifest.verification {
            Some(v) if v.is_good() => "good",
            Some(v) if v.outcome == "bad" => "bad",
            _ => "unverified",
        }
    }
}

/// Every backup in `dir` whose manifest reads and whose file is present,
/// newest first. A missing directory holds no backups. A manifest that
/// cannot be trusted is left out, with a warning (see [`scan_all`]).
pub fn scan(dir: &Path) -> Vec<Entry> {
    let (found, refused) = scan_all(dir);
    for why in refused {
        crate::warn!("{why}");
    }
    found
}

/// The one place that reads the backup directory: every backup whose
/// manifest reads and whose file is present, newest first, and, apart,
/// why each manifest that cannot be trusted was refused: one that fails
/// [`Manifest::validate`], one whose file is a symbolic link or not a
/// regular file, and every manifest of a file that another manifest also
/// describes (two names for one file, through a hard link).
pub fn scan_all(dir: &Path) -> (Vec<Entry>, Vec<String>) {
    let mut found = Vec::new();
    let mut refused = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(manifest::MANIFEST_SUFFIX) {
            continue;
        }
        let path = entry.path();
        // Not a manifest at all (or half of one): ignored, as always.
        let Ok(m) = Manifest::parse(&path) else {
            continue;
        };
        if let Err(e) = m.validate(&name) {
            refused.push(format!(
                "{} cannot be trusted and is ignored: {e:#}; move it aside",
                path.display()
            ));
            continue;
        }
        let file = dir.join(&m.file.name);
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_file() => found.push(Entry { file, manifest: m }),
            Ok(_) => refused.push(format!(
                "{} names {}, which is not a regular file (a symbolic link?); it is ignored: \
                 move both aside",
                path.display(),
                file.display()
            )),
            Err(_) => {} // A manifest whose file is gone is ignored, as always.
        }
    }
    refuse_shared_files(&mut found, &mut refused);
    sort_newest_first(&mut found);
    (found, refused)
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
                        found[i].file.display(),
                        found[j].file.display()
                    ));
                }
            }
        }
        let mut flags = keep.into_iter();
        found.retain(|_| flags.next().unwrap_or(true));
    }
}

fn sort_newest_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        b.manifest
            .created_at
            .cmp(&a.manifest.created_at)
            .then_with(|| b.file.cmp(&a.file))
    });
}

/// The newest whole backup of `env` that passed verification.
pub fn latest_good(entries: &[Entry], env: &str) -> Result<PathBuf> {
    let whole: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.manifest.environment == env && e.is_whole())
        .collect();
    if let Some(e) = whole.iter().find(|e| e.manifest.is_verified_good()) {
        return Ok(e.file.clone());
    }
    match whole.first() {
        None => bail!("no full backup of {env}; take one with `cargo xtask backup {env}`"),
        Some(newest) => bail!(
            "no full backup of {env} has passed verification (the newest, {}, is {}); check it \
             with `cargo xtask verify {}` or take a new one with `cargo xtask backup {env}`",
            newest.file.display(),
            newest.verified(),
            newest.file.display()
        ),
    }
}

/// The newest whole backup of `env`, verified or not (what `verify latest:ENV` checks).
pub fn latest_any(entries: &[Entry], env: &str) -> Result<PathBuf> {
    entries
        .iter()
        .find(|e| e.manifest.environment == env && e.is_whole())
        .map(|e| e.file.clone())
        .with_context(|| {
            format!("no full backup of {env}; take one with `cargo xtask backup {env}`")
        })
}

/// Which backup `latest` means to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latest {
    /// The newest whole backup that passed verification (restore, upload).
    Good,
    /// The newest whole backup, verified or not (verify).
    Any,
}

/// The file a command's backup argument names, the same for every command:
/// `latest` (the environment `env`, when the command has one) or
/// `latest:ENV`; a bare file name, as `list` prints it, looked up in the
/// backup directory and refused if it leads outside it; or a path.
pub fn resolve_backup(
    project: &Project,
    word: &str,
    env: Option<&str>,
    latest: Latest,
) -> Result<PathBuf> {
    let named_env = match word.strip_prefix("latest") {
        Some("") => Some(env.map(str::to_owned).ok_or_else(|| {
            Exit::CouldNotRun.error(anyhow!(
                "`latest` needs an environment here: give `latest:prod`, `latest:staging` or `latest:local`"
            ))
        })?),
        Some(rest) if rest.starts_with(':') => Some(
            project
                .environments()
                .and_then(|envs| Ok(envs.resolve(&rest[1..])?.name.clone()))
                .map_err(|e| Exit::CouldNotRun.error(e))?,
        ),
        _ => None,
    };
    if let Some(env) = named_env {
        let entries = scan(&project.backup_dir);
        let found = match latest {
            Latest::Good => latest_good(&entries, &env),
            Latest::Any => latest_any(&entries, &env),
        };
        return found.map_err(|e| Exit::CouldNotRun.error(e));
    }
    locate(&project.backup_dir, word).map_err(|e| Exit::CouldNotRun.error(e))
}

/// A bare name in `backup_dir`, or a path; the file must exist.
fn locate(backup_dir: &Path, word: &str) -> Result<PathBuf> {
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
    if !path.is_file() {
        bail!(
            "no such file: {word} in the backup directory {}; `cargo xtask list` prints the \
             names there (for a file elsewhere, give its path, e.g. ./{word})",
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
    pub age_seconds: i64,
    pub bytes: u64,
    pub verified: String,
    pub offsite: String,
    pub reason: Option<String>,
}

/// `envs`: only backups whose manifest names one of these environments.
pub fn rows(entries: &[Entry], envs: Option<&[String]>, now: DateTime<Utc>) -> Vec<Row> {
    entries
        .iter()
        .filter(|e| envs.is_none_or(|envs| envs.contains(&e.manifest.environment)))
        .map(|e| {
            let m = &e.manifest;
            let mode = if m.tables.is_empty() {
                m.mode.clone()
            } else {
                format!("{} ({})", m.mode, m.tables.join(", "))
            };
            Row {
                file: m.file.name.clone(),
                environment: m.environment.clone(),
                database: m.database.name.clone(),
                mode,
                created_at: m.created_at,
                age_seconds: (now - m.created_at).num_seconds().max(0),
                bytes: m.file.bytes,
                verified: e.verified().to_owned(),
                offsite: match &m.offsite {
                    Some(copy) => format!("r2://{}/{}", copy.bucket, copy.key),
                    None => "no".to_owned(),
                },
                reason: m.reason.clone(),
            }
        })
        .collect()
}

/// `3m`, `5h`, `12d`.
pub fn age(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `812 B`, `4.2 KB`, `155.0 MB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub fn run(backup_dir: &Path, envs: Option<&[String]>, json: bool) -> Result<()> {
    let rows = rows(&scan(backup_dir), envs, Utc::now());
    if json {
        crate::out::data(&serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        crate::data!("No backups in {}.", backup_dir.display());
        return Ok(());
    }
    crate::data!(
        "{:<40} {:<8} {:<18} {:<16} {:>5} {:>9} {:<10} {:<7}",
        "backup",
        "env",
        "database",
        "mode",
        "age",
        "size",
        "verified",
        "offsite"
    );
    for r in &rows {
        crate::data!(
            "{:<40} {:<8} {:<18} {:<16} {:>5} {:>9} {:<10} {:<7}",
            r.file,
            r.environment,
            r.database,
            r.mode,
            age(r.age_seconds),
            size(r.bytes),
            r.verified,
            r.offsite
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use d1_core::manifest::Verification;

    fn entry(env: &str, mode: &str, minutes: i64, outcome: Option<&str>) -> Entry {
        let created_at = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(minutes);
        let text = format!(
            r#"{{"format_version":1,"tool":{{"name":"t","version":"0"}},"created_at":"{}",
            "environment":"{env}","database":{{"name":"d","uuid":"u","wrangler_env":null,"location":"local"}},
            "mode":"{mode}","tables":[],"file":{{"name":"backup-{env}-{minutes}.sql","bytes":1,"sha256":"x"}},
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
        });
        Entry {
            file: PathBuf::from(format!("b/backup-{env}-{minutes}.sql")),
            manifest,
        }
    }

    #[test]
    fn latest_is_the_newest_whole_backup_that_passed_verification() {
        let mut entries = vec![
            entry("prod", "full", 0, Some("good")),
            entry("prod", "full", 10, Some("bad")),
            entry("prod", "data-only", 20, Some("good")),
            entry("staging", "full", 30, Some("good")),
            entry("prod", "full", 5, None),
        ];
        sort_newest_first(&mut entries);
        assert_eq!(
            latest_good(&entries, "prod").unwrap(),
            Path::new("b/backup-prod-0.sql")
        );
        assert_eq!(
            latest_any(&entries, "prod").unwrap(),
            Path::new("b/backup-prod-10.sql")
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
    fn list_rows_are_filtered_by_environment_and_say_their_state() {
        let mut entries = vec![
            entry("prod", "full", 0, Some("good")),
            entry("staging", "full", 30, None),
            entry("prod", "full", 10, Some("bad")),
        ];
        sort_newest_first(&mut entries);
        let now = entries[0].manifest.created_at + chrono::Duration::hours(2);
        let all = rows(&entries, None, now);
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
        assert_eq!(age(all[0].age_seconds), "2h");
        let prod = rows(&entries, Some(&["prod".to_owned()]), now);
        assert_eq!(prod.len(), 2);
        assert!(prod.iter().all(|r| r.environment == "prod"));
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
        // A link in the directory that leads out is refused.
        std::os::unix::fs::symlink(root.path().join("outside.sql"), dir.join("link.sql")).unwrap();
        let err = locate(&dir, "link.sql").unwrap_err().to_string();
        assert!(err.contains("leads outside"), "{err}");
        // A path is a path.
        let outside = root.path().join("outside.sql");
        assert_eq!(locate(&dir, outside.to_str().unwrap()).unwrap(), outside);
    }

    #[test]
    fn sizes_and_ages_read_naturally() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(4_200), "4.2 KB");
        assert_eq!(size(155_000_000), "155.0 MB");
        assert_eq!(age(59), "59s");
        assert_eq!(age(3 * 86_400 + 5), "3d");
    }
}
