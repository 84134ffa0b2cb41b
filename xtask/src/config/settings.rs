//! `backups.toml`: every per-environment backup setting, in one place.
//!
//! A table per environment, named by its short name (`prod`, `staging`,
//! `local`): `[<env>.retention]` for prune, `compress`, `[<env>.encryption]`
//! for age recipients, and `[<env>.offsite]` for the R2 bucket. Unknown keys
//! are refused, so a typo cannot silently turn a setting off.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::config::environment::Environments;
use d1_core::app::AppRules;
use d1_core::retention::Policy;
use d1_core::span::{self, Span};

/// The table of the app's own rules; no environment may be named so.
pub const APP_TABLE: &str = "app";

/// The settings file, beside the wrangler configuration.
pub use d1_core::app::SETTINGS_FILE;

/// One environment's table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    #[serde(default)]
    pub retention: Policy,
    /// Store every backup zstd-compressed (`.sql.zst`).
    #[serde(default)]
    pub compress: bool,
    #[serde(default)]
    pub encryption: Encryption,
    pub offsite: Option<Offsite>,
    /// How old the newest verified backup may be before `cargo xtask status`
    /// fails (a span: `26h`).
    #[serde(default, deserialize_with = "span::deserialize_option")]
    pub max_age: Option<Span>,
}

/// Who can read the environment's backups.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// age recipients (public keys). When set, every backup is stored as
    /// `.sql.zst.age`, readable only with one of their identities.
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// Where offsite copies go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offsite {
    /// The R2 bucket, in the account wrangler is logged into.
    pub bucket: String,
    /// How long R2 keeps a copy (the lifecycle rule). Defaults to the
    /// longest span the retention policy keeps a backup.
    #[serde(default, deserialize_with = "span::deserialize_option")]
    pub expire_after: Option<Span>,
    /// How long `cargo xtask offsite lock` keeps each copy from being
    /// deleted or overwritten. Defaults to the longest span the retention
    /// policy keeps a backup.
    #[serde(default, deserialize_with = "span::deserialize_option")]
    pub lock_for: Option<Span>,
}

/// Every environment's settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub envs: BTreeMap<String, EnvSettings>,
    /// The app's own rules (`[app]`), not an environment's.
    pub app: AppRules,
}

impl Settings {
    /// Reads `path`. A missing file means no settings: nothing is pruned,
    /// compressed, encrypted or uploaded.
    pub fn load(path: &Path) -> Result<Settings> {
        if !path.exists() {
            // A link to nowhere is a mistake, not "no settings": the
            // settings would turn encryption, offsite copies and retention
            // off without a word.
            if std::fs::symlink_metadata(path).is_ok() {
                bail!(
                    "{} is a symbolic link to a file that does not exist; point it at the backup \
                     settings, or remove it to run with none",
                    path.display()
                );
            }
            return Ok(Settings::default());
        }
        let text = crate::edge::fsutil::read_text(path, "backup settings")?;
        Settings::parse(&text).with_context(|| {
            format!(
                "{} is not valid backup settings (see the README's backups.toml section)",
                path.display()
            )
        })
    }

    pub fn parse(text: &str) -> Result<Settings> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| super::parse_error("not valid TOML", text, &e))?;
        // Past the parse, only the tool's own fields are read: a value is
        // quoted only by the tool's own message on it (a span written
        // `6mo`), and an unknown key by its name alone.
        let app: AppRules = match table.remove(APP_TABLE) {
            Some(value) => typed(value, APP_TABLE)?,
            None => AppRules::default(),
        };
        app.check()?;
        let envs: BTreeMap<String, EnvSettings> = typed(table, "")?;
        for (name, env) in &envs {
            for (n, recipient) in env.encryption.recipients.iter().enumerate() {
                d1_core::sealed::check_recipient(recipient).with_context(|| {
                    format!("[{name}.encryption] recipients, its value number {}", n + 1)
                })?;
            }
            if let Some(offsite) = &env.offsite {
                check_bucket_name(&offsite.bucket)
                    .with_context(|| format!("[{name}.offsite] bucket"))?;
            }
        }
        Ok(Settings { envs, app })
    }

    /// Keys every table by its environment's short name, so that
    /// `[production.encryption]` applies to prod. Refuses a table that names
    /// no environment, and two tables for one environment: a typo must not
    /// silently turn encryption or uploads off.
    pub fn resolved(self, envs: &Environments) -> Result<Settings> {
        let mut resolved = BTreeMap::new();
        for (name, settings) in self.envs {
            let env = envs.env_name(&name).with_context(|| {
                format!(
                    "{SETTINGS_FILE} has a table [{}]",
                    d1_core::names::shown(&name)
                )
            })?;
            if resolved.insert(env.clone(), settings).is_some() {
                bail!(
                    "{SETTINGS_FILE} has two tables for {env} ([{name}] is one of them); merge them"
                );
            }
        }
        Ok(Settings {
            envs: resolved,
            app: self.app,
        })
    }

    /// The settings of one environment (defaults when it has no table).
    pub fn env(&self, name: &str) -> EnvSettings {
        self.envs.get(name).cloned().unwrap_or_default()
    }
}

/// `T` read from `de`, the part of the file under the table `under`
/// (`""`: the top): a value of the wrong type named by its key's whole path,
/// never quoted; any other error as the parser tells it.
fn typed<'de, T, D>(de: D, under: &str) -> Result<T>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de, Error = toml::de::Error>,
{
    super::read_typed(de, |e, path| {
        let path = match (under, path) {
            ("", path) => path.to_owned(),
            (under, ".") => under.to_owned(),
            (under, path) => format!("{under}.{path}"),
        };
        match super::wrong_type(&path, e.message().trim(), SETTINGS_FILE) {
            Some(told) => anyhow::anyhow!(told),
            None if under.is_empty() => e.into(),
            None => anyhow::Error::from(e).context(format!("[{under}]")),
        }
    })
}

/// R2's rule: 3 to 63 lowercase letters, digits and hyphens, starting and
/// ending with a letter or digit.
pub fn check_bucket_name(name: &str) -> Result<()> {
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "{name:?} is not an R2 bucket name: use 3 to 63 lowercase letters, digits and \
             hyphens, starting and ending with a letter or digit"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repositorys_settings_read_and_name_known_environments() {
        let settings = Settings::parse(include_str!("../../../backups.toml")).unwrap();
        assert_eq!(
            settings.env("prod").retention.keep_within,
            Some(Span::days(30))
        );
        assert_eq!(
            settings.env("prod").max_age,
            Some(d1_core::span::parse("26h").unwrap())
        );
        let envs = Environments::parse(include_str!("../../../wrangler.toml")).unwrap();
        let settings = settings.resolved(&envs).unwrap();
        assert!(settings.env("nowhere").encryption.recipients.is_empty());

        // A wrangler name is the same environment; a typo is no environment.
        let aliased = Settings::parse("[production]\ncompress = true\n").unwrap();
        assert!(aliased.resolved(&envs).unwrap().env("prod").compress);
        let typo = Settings::parse("[prd]\ncompress = true\n").unwrap();
        let err = format!("{:#}", typo.resolved(&envs).unwrap_err());
        assert!(err.contains("[prd]"), "{err}");
        let twice =
            Settings::parse("[prod]\ncompress = true\n[production]\ncompress = false\n").unwrap();
        let err = format!("{:#}", twice.resolved(&envs).unwrap_err());
        assert!(err.contains("two tables for prod"), "{err}");
    }

    /// A table's name is the file's text: shown escaped, as every name
    /// read from a file is, so the output's cleaning cannot strip an
    /// escape code out of it and print `[prod]`, a name it is not.
    #[test]
    fn a_table_naming_no_environment_is_named_escaped() {
        let envs = Environments::parse(include_str!("../../../wrangler.toml")).unwrap();
        for text in [
            "[\"pr\\u001b[0mod\".offsite]\nbucket = \"qbtime-d1-backups\"\n",
            "[prod]\ncompress = true\n[\"prod\\u001b[0m\"]\ncompress = true\n",
        ] {
            let settings = Settings::parse(text).unwrap();
            let err = format!("{:#}", settings.resolved(&envs).unwrap_err());
            assert!(err.contains("\\u{1b}[0m"), "{err}");
            assert!(!err.contains('\u{1b}'), "{err}");
        }
    }

    #[test]
    fn typos_and_bad_values_are_refused_with_their_place() {
        let err = |text: &str| format!("{:#}", Settings::parse(text).unwrap_err());
        assert!(err("[prod.retention]\nkeep_dialy = 3\n").contains("keep_dialy"));
        let e = err("[prod.retention]\nkeep_within = \"6mo\"\n");
        assert!(
            e.contains("6mo") && e.contains("use 6m for 6 months"),
            "{e}"
        );
        assert!(err("[prod]\nkeep_daily = 3\n").contains("keep_daily"));
        assert!(err("[prod]\ncompres = true\n").contains("compres"));
        let e = err("[prod.encryption]\nrecipients = [\"ssh-ed25519 AAAA\"]\n");
        assert!(
            e.contains("[prod.encryption] recipients") && e.contains("age1"),
            "{e}"
        );
        let e = err("[prod.offsite]\nbucket = \"Backups_Prod\"\n");
        assert!(e.contains("[prod.offsite] bucket"), "{e}");
        let e = err("[prod.offsite]\nbucket = \"b-1\"\nexpire_after = \"soon\"\n");
        assert!(e.contains("soon"), "{e}");
    }

    #[test]
    fn offsite_and_encryption_parse() {
        let s = Settings::parse(
            "[prod]\ncompress = true\n[prod.encryption]\nrecipients = \
             [\"age1wumpclyt5pkhqzsn4zn207t8vte6syqr9fe4ucjmuyruyc220a0snwc6wj\"]\n\
             [prod.offsite]\nbucket = \"qbtime-backups\"\nexpire_after = \"90d\"\n",
        )
        .unwrap();
        let prod = s.env("prod");
        assert!(prod.compress);
        assert_eq!(prod.encryption.recipients.len(), 1);
        let offsite = prod.offsite.unwrap();
        assert_eq!(offsite.bucket, "qbtime-backups");
        assert_eq!(offsite.expire_after, Some(Span::days(90)));
    }
}
