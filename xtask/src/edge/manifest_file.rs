//! Manifests on disk: read and validated, created without replacing
//! another, and updated field by field under a lock on their directory.
//! What a manifest means, and what makes one trustworthy, is the core's
//! (`d1_core::manifest`); this is where one touches the disk.

use std::path::Path;

use anyhow::{Context, Result};
use d1_core::manifest::{Manifest, Verification, manifest_path};

use crate::edge::fsutil::OnPath as _;
use crate::exit::Exit;

/// Reading and writing a [`Manifest`] file.
pub trait ManifestFile: Sized {
    /// Reads the manifest at `path` and checks that it can be trusted as
    /// the tool's own (see [`Manifest::validate`]).
    fn read(path: &Path) -> Result<Self>;
    /// Reads the manifest at `path`, validated as if it were stored under
    /// the name `stored_as` (a download is checked before it is moved into
    /// place).
    fn read_as(path: &Path, stored_as: &str) -> Result<Self>;
    /// The manifest beside the backup `file`, validated, and naming `file`.
    fn for_backup(file: &Path) -> Result<Self>;
    /// The JSON as it stands, not yet validated.
    fn parse(path: &Path) -> Result<Self>;
    /// Writes the manifest to `path`, which must not exist yet.
    fn create_at(&self, path: &Path) -> Result<()>;
    /// Changes one field of the manifest at `path`, as it is on disk now:
    /// under a lock on its directory, the manifest is read again, `change`
    /// applied and the result written back atomically. Two commands that
    /// each change their own field (verify its `verification`, upload its
    /// `offsite`) therefore never undo each other's write.
    fn update(path: &Path, change: impl FnOnce(&mut Manifest)) -> Result<Self>;
    /// Records a verification's outcome in the manifest at `path` (and in
    /// this copy), leaving every other field as it is on disk. It records
    /// the digest of this copy, the manifest the file was checked against
    /// ([`Manifest::described_sha256`]): one on disk that says otherwise
    /// (edited meanwhile, or since) is not the one verified.
    fn record_verification(&mut self, path: &Path, outcome: Verification) -> Result<()>;
}

/// `cargo xtask verify FILE`, to paste: with `--no-manifest` when no
/// manifest is beside the file (a hand export, which verify refuses
/// without it: rvBS, `diff`'s hint did), and `--identity` with the
/// identity file the command was given. Every printed verify of a file
/// that may have no manifest is written here.
pub fn verify_command(file: &Path, identity: Option<&Path>) -> String {
    let word = |p: &Path| d1_core::wording::shell_word(&p.display().to_string());
    let mut words = format!("cargo xtask verify {}", word(file));
    if std::fs::symlink_metadata(manifest_path(file)).is_err() {
        words += " --no-manifest";
    }
    if let Some(identity) = identity {
        words += &format!(" --identity {}", word(identity));
    }
    words
}

/// The context of a manifest whose JSON is not a manifest's: the path, as
/// shown. Its own type, so that a message that names the path already
/// (`list`'s warning that the file is ignored) gives only the reason.
#[derive(Debug)]
pub struct NotAManifest(String);

impl std::fmt::Display for NotAManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a valid backup manifest", self.0)
    }
}

/// The most a manifest may hold: 2 MiB, refused above as no manifest this
/// tool writes ([`ManifestFile::parse`], the one place manifests are
/// read). The largest it writes are the per-migration and per-table
/// records: a name and a sha256 (about 150 bytes) for each of 5,000
/// migrations is 0.75 MiB, and six per-table records (rows, content
/// digests, exact, wide and whole values, text) of 1,000 tables with
/// 64-character names under 1 MiB. A bigger file is someone else's, and
/// `list` redacting a 20 MB `reason` took 23 seconds.
pub const MANIFEST_LIMIT: u64 = 2 << 20;

impl ManifestFile for Manifest {
    fn read(path: &Path) -> Result<Manifest> {
        Manifest::read_as(path, &d1_core::names::file_name(path))
    }

    /// A manifest that cannot be read or trusted is bad input (exit 2) for
    /// every command, as a missing one is.
    fn read_as(path: &Path, stored_as: &str) -> Result<Manifest> {
        let manifest = Manifest::parse(path).map_err(crate::exit::could_not_run)?;
        manifest
            .validate(stored_as)
            .map_err(|e| Exit::CouldNotRun.error(untrusted(path, e)))?;
        Ok(manifest)
    }

    fn for_backup(file: &Path) -> Result<Manifest> {
        let path = manifest_path(file);
        if std::fs::symlink_metadata(&path).is_err() && file.is_file() {
            crate::stop!(
                Exit::CouldNotRun,
                "{} has no manifest beside it ({}): this tool did not take it, or its manifest \
                 was moved. Give a backup with its manifest. Nothing was done.",
                file.display(),
                path.display()
            );
        }
        let manifest = Manifest::read(&path)?;
        let name = d1_core::names::file_name(file);
        if manifest.file.name != name {
            crate::stop!(
                Exit::CouldNotRun,
                "{} describes the backup {:?}, not {name:?}: a manifest belongs to the one file \
                 it names. Give that file, or take a new backup. Nothing was done.",
                path.display(),
                manifest.file.name
            );
        }
        Ok(manifest)
    }

    fn parse(path: &Path) -> Result<Manifest> {
        // A manifest is a file of its own beside its backup, as the backup
        // is (`inventory` passes over a backup that is a link): one that
        // is a symbolic link is refused, never read where it leads.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            anyhow::bail!(
                "the manifest {} is a symbolic link; a manifest is a file of its own beside its \
                 backup. Move it aside (or put the file it leads to in its place).",
                path.display()
            );
        }
        let text = crate::edge::fsutil::read_text_up_to(path, "manifest", MANIFEST_LIMIT)?;
        // Opened and saved again on Windows (PowerShell's `Set-Content
        // -Encoding UTF8`): a byte order mark, and nothing else, changed.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        Manifest::from_json(text).context(NotAManifest(d1_core::names::shown_path(path)))
    }

    fn create_at(&self, path: &Path) -> Result<()> {
        let partial = staged(self, path)?;
        crate::edge::fsutil::rename_no_clobber(partial.path(), path).on_path(path, || {
            format!("cannot write the manifest {}", path.display())
        })?;
        partial.disarm();
        Ok(())
    }

    fn update(path: &Path, change: impl FnOnce(&mut Manifest)) -> Result<Manifest> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let _lock = crate::edge::fsutil::DirLock::exclusive(dir)?;
        let mut manifest = Manifest::read(path)?;
        change(&mut manifest);
        let partial = staged(&manifest, path)?;
        std::fs::rename(partial.path(), path).on_path(path, || {
            format!("cannot update the manifest {}", path.display())
        })?;
        partial.disarm();
        Ok(manifest)
    }

    fn record_verification(&mut self, path: &Path, outcome: Verification) -> Result<()> {
        // A verdict reached while an interrupt came is not one to keep: a
        // Ctrl-C at a terminal kills age too, and the read it cut short
        // reads as a damaged file.
        crate::edge::signals::check()?;
        let outcome = Verification {
            manifest_sha256: Some(self.described_sha256()),
            ..outcome
        };
        self.verification = Some(outcome.clone());
        Manifest::update(path, |m| m.verification = Some(outcome))?;
        Ok(())
    }
}

/// This manifest, written and synced to a private temporary file beside `path`.
fn staged(manifest: &Manifest, path: &Path) -> Result<crate::edge::fsutil::TempFile> {
    use std::io::Write;
    // Hidden, with this process's id: a run killed while writing it leaves
    // a file no other run trips over, which the next run's clean-up of
    // stale `.partial` files removes.
    let hidden = format!(
        ".{}.{}.partial",
        d1_core::names::file_name(path),
        std::process::id()
    );
    let (partial, mut file) =
        crate::edge::fsutil::TempFile::create_open(path.with_file_name(hidden))?;
    file.write_all(manifest.to_json()?.as_bytes())
        .on_path(partial.path(), || {
            format!("cannot write {}", partial.path().display())
        })?;
    file.sync_all().on_path(partial.path(), || {
        format!("cannot sync {}", partial.path().display())
    })?;
    Ok(partial)
}

/// The refusal of a manifest that cannot be trusted, with the commands
/// that get its backup again, its environment as its name says, and the
/// backup's name when its file is beside it. It was `cargo xtask offsite
/// fetch`, bare, which clap refuses without a backup and `--env` (MN's
/// note).
fn untrusted(path: &Path, e: anyhow::Error) -> anyhow::Error {
    let name = d1_core::names::file_name(path);
    let stem = name.strip_suffix(d1_core::manifest::MANIFEST_SUFFIX);
    let env = stem.and_then(|stem| {
        let sql = format!("{stem}.sql");
        let env = d1_core::manifest::backup_name(&sql)?.env;
        Some(crate::config::environment::short_name(env).to_owned())
    });
    let beside = stem.and_then(|stem| {
        { d1_core::manifest::BACKUP_EXTENSIONS.iter() }
            .map(|ext| format!("{stem}{ext}"))
            .find(|file| path.with_file_name(file).is_file())
    });
    let fetch = match (env, beside) {
        (Some(env), Some(file)) => {
            let env = d1_core::wording::shell_word(&env);
            format!(
                "or fetch its backup again, its manifest with it: `cargo xtask offsite fetch {} \
                 --env {env}` once both are moved aside (`cargo xtask offsite list --env {env}` \
                 names the other copies)",
                d1_core::wording::shell_word(&file)
            )
        }
        (Some(env), None) => format!(
            "or fetch its backup again, its manifest with it: `cargo xtask offsite list --env \
             {}` names the copies to fetch",
            d1_core::wording::shell_word(&env)
        ),
        (None, _) => "or fetch its backup again, as `cargo xtask offsite list --env` of its \
                      environment names it"
            .to_owned(),
    };
    anyhow::anyhow!(
        "the manifest {} cannot be trusted: {e:#}. Nothing was done; move it aside ({fetch}) and \
         run the command again.",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use d1_core::manifest::OffsiteCopy;

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

    #[test]
    fn read_refuses_an_untrusted_manifest_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup-prod-20261124-1200.manifest.json");
        std::fs::write(&path, sample("../../victim").to_json().unwrap()).unwrap();
        let err = format!("{:#}", Manifest::read(&path).unwrap_err());
        assert!(err.contains("cannot be trusted"), "{err}");
        assert!(
            err.contains("backup-prod-20261124-1200.manifest.json"),
            "{err}"
        );
    }

    fn verification() -> Verification {
        Verification {
            verified_at: "2026-11-24T13:00:00Z".parse().unwrap(),
            outcome: "good".into(),
            failed: Vec::new(),
            seconds: 1.0,
            tool_version: "0".into(),
            migrations_unchecked: false,
            manifest_sha256: None,
        }
    }

    /// The verification `m` records, its digest of the manifest left out,
    /// and whether `m` is still verified good with it.
    fn recorded(m: &Manifest) -> (Option<Verification>, bool) {
        let v = { m.verification.clone() }.map(|v| Verification {
            manifest_sha256: None,
            ..v
        });
        (v, m.is_verified_good())
    }

    fn offsite() -> OffsiteCopy {
        OffsiteCopy {
            bucket: "b".into(),
            key: "prod/2026/11/backup-prod-20261124-1200.sql".into(),
            manifest_key: "prod/2026/11/backup-prod-20261124-1200.manifest.json".into(),
            uploaded_at: "2026-11-24T13:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn verify_and_upload_racing_keep_both_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup-prod-20261124-1200.manifest.json");
        sample("backup-prod-20261124-1200.sql")
            .create_at(&path)
            .unwrap();
        // verify reads the manifest and starts its long check; upload
        // finishes meanwhile and records the offsite copy; then verify
        // records its outcome from the copy it read before.
        let mut verify_copy = Manifest::read(&path).unwrap();
        Manifest::update(&path, |m| m.offsite = Some(offsite())).unwrap();
        verify_copy
            .record_verification(&path, verification())
            .unwrap();
        let on_disk = Manifest::read(&path).unwrap();
        assert_eq!(on_disk.offsite, Some(offsite()), "upload's record was lost");
        assert_eq!(recorded(&on_disk), (Some(verification()), true));
        // The other order: verify first, then upload.
        let path = dir.path().join("backup-prod-20261124-1200-2.manifest.json");
        sample("backup-prod-20261124-1200-2.sql")
            .create_at(&path)
            .unwrap();
        Manifest::read(&path)
            .unwrap()
            .record_verification(&path, verification())
            .unwrap();
        Manifest::update(&path, |m| m.offsite = Some(offsite())).unwrap();
        let on_disk = Manifest::read(&path).unwrap();
        assert_eq!(recorded(&on_disk), (Some(verification()), true));
        assert_eq!(on_disk.offsite, Some(offsite()));
    }

    /// MS: a verification records the manifest it checked: one whose row
    /// count was edited since is no longer verified good, nor the record
    /// of applied migrations; saved again with CRLF line endings and a
    /// byte order mark, it still is, and a verification an earlier
    /// version recorded (no digest) is taken as it stands.
    #[test]
    fn a_manifest_edited_since_its_verification_is_not_verified_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup-prod-20261124-1200.manifest.json");
        sample("backup-prod-20261124-1200.sql")
            .create_at(&path)
            .unwrap();
        let mut m = Manifest::read(&path).unwrap();
        m.record_verification(&path, verification()).unwrap();
        assert!(m.is_migration_record());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("\u{feff}{}", text.replace('\n', "\r\n"))).unwrap();
        assert!(Manifest::read(&path).unwrap().is_verified_good());
        let edited = Manifest::update(&path, |m| {
            m.rows.insert("accounts".into(), 4);
        })
        .unwrap();
        assert!(edited.changed_since_verified());
        assert!(!edited.is_verified_good() && !edited.is_migration_record());
        let earlier = Manifest::update(&path, |m| {
            m.verification.as_mut().unwrap().manifest_sha256 = None;
        })
        .unwrap();
        assert!(earlier.is_verified_good());
    }

    #[test]
    fn concurrent_updates_of_different_fields_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup-prod-20261124-1200.manifest.json");
        sample("backup-prod-20261124-1200.sql")
            .create_at(&path)
            .unwrap();
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    Manifest::update(&path, |m| {
                        m.rows.insert(format!("t{i}"), i);
                    })
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(Manifest::read(&path).unwrap().rows.len(), 8);
    }

    #[cfg(unix)]
    #[test]
    fn a_manifest_update_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup-prod-20261124-1200.manifest.json");
        sample("backup-prod-20261124-1200.sql")
            .create_at(&path)
            .unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let partial = format!(
            ".backup-prod-20261124-1200.manifest.json.{}.partial",
            std::process::id()
        );
        std::os::unix::fs::symlink(&victim, dir.path().join(partial)).unwrap();
        let err = format!(
            "{:#}",
            Manifest::update(&path, |m| m.offsite = Some(offsite())).unwrap_err()
        );
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
