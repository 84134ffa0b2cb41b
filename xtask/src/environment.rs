//! Environments, as the wrangler configuration defines them.
//!
//! Operators say `prod`, `staging` or `local`. Which wrangler `--env`, which
//! database and which database id those names mean is read from
//! `wrangler.toml` and nowhere else: the top level is local development, and
//! each `[env.NAME]` section with a D1 database is a remote environment. An
//! environment's short name is its `vars.APP_ENV`; its wrangler environment
//! name is accepted as an alias.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Where an environment's database lives, and so which of wrangler's
/// `--local` / `--remote` flags reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The local D1 that `wrangler dev` uses, under `.wrangler/state`.
    Local,
    /// A Cloudflare-hosted D1 database.
    Remote,
}

impl Location {
    pub fn flag(self) -> &'static str {
        match self {
            Location::Local => "--local",
            Location::Remote => "--remote",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Location::Local => "local",
            Location::Remote => "remote",
        })
    }
}

/// One environment: a name operators use and the database it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The short name (`prod`, `staging`, `local`), from `vars.APP_ENV`.
    pub name: String,
    /// The wrangler environment (`production`, `preview`), `None` for the top level.
    pub wrangler_env: Option<String>,
    pub database_name: String,
    pub database_id: String,
    pub binding: String,
    pub migrations_dir: String,
    pub location: Location,
}

impl Environment {
    /// Whether `word` names this environment, by short name or wrangler alias.
    fn answers_to(&self, word: &str) -> bool {
        self.name == word || self.wrangler_env.as_deref() == Some(word)
    }

    /// Whether a destructive step on this environment needs its database
    /// name typed (or given as `--confirm`), `--yes` never being enough.
    /// Every "is this production?" in the tool is this call.
    pub fn is_production(&self) -> bool {
        self.production_reason().is_some()
    }

    /// Why this environment is treated as production, or `None` when it is
    /// recognisably not production. The rule, fail-safe:
    ///
    /// 1. any of its names (wrangler environment, short name, database name,
    ///    binding) contains `prod` in any case: production;
    /// 2. otherwise the top level (local D1), or a wrangler environment or
    ///    short name in [`NON_PRODUCTION_NAMES`], is not production;
    /// 3. anything else (`[env.live]`, `[env.main]`, ...) is treated as
    ///    production, so no configuration can reach production with `--yes`.
    pub fn production_reason(&self) -> Option<String> {
        let names = [
            ("wrangler environment", self.wrangler_env.as_deref()),
            ("short name (vars.APP_ENV)", Some(self.name.as_str())),
            ("database name", Some(self.database_name.as_str())),
            ("binding", Some(self.binding.as_str())),
        ];
        for (what, name) in names {
            if let Some(name) = name
                && name.to_ascii_lowercase().contains("prod")
            {
                return Some(format!("its {what} `{name}` contains `prod`"));
            }
        }
        let known_non_production = |name: &str| {
            NON_PRODUCTION_NAMES
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
        };
        if self.location == Location::Local
            || known_non_production(&self.name)
            || self
                .wrangler_env
                .as_deref()
                .is_some_and(known_non_production)
        {
            return None;
        }
        Some(format!(
            "`{}` is not a name known to be non-production ({}), so it is treated as production",
            self.name,
            NON_PRODUCTION_NAMES.join(", ")
        ))
    }
}

/// Wrangler environment or short names that are known not to be
/// production; see [`Environment::production_reason`].
pub const NON_PRODUCTION_NAMES: &[&str] = &[
    "local",
    "dev",
    "development",
    "staging",
    "stage",
    "preview",
    "test",
    "testing",
    "qa",
    "sandbox",
];

/// Every environment the wrangler configuration defines.
#[derive(Debug, Clone)]
pub struct Environments {
    list: Vec<Environment>,
}

impl Environments {
    pub fn load(config: &Path) -> Result<Environments> {
        let text = std::fs::read_to_string(config).with_context(|| {
            format!(
                "cannot read the wrangler configuration {}; pass --config PATH to point at it",
                config.display()
            )
        })?;
        Environments::parse(&text)
            .with_context(|| format!("in the wrangler configuration {}", config.display()))
    }

    pub fn parse(text: &str) -> Result<Environments> {
        let raw: RawConfig =
            toml::from_str(text).context("wrangler.toml is not valid TOML for wrangler")?;
        let mut list = Vec::new();
        if let Some(db) = single_database(&raw.top.d1_databases, "the top level")? {
            let name = raw.top.app_env().unwrap_or("local").to_owned();
            list.push(Environment::new(name, None, db, Location::Local));
        }
        for (env_name, section) in &raw.env {
            let Some(db) = single_database(&section.d1_databases, &format!("[env.{env_name}]"))?
            else {
                continue;
            };
            let name = section.app_env().unwrap_or(env_name).to_owned();
            list.push(Environment::new(
                name,
                Some(env_name.clone()),
                db,
                Location::Remote,
            ));
        }
        if list.is_empty() {
            bail!("no [[d1_databases]] are configured; add one per environment");
        }
        refuse_shared_databases(&list)?;
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                if b.answers_to(&a.name)
                    || a.wrangler_env.as_deref().is_some_and(|w| b.answers_to(w))
                {
                    bail!(
                        "two environments answer to the name `{}`; give each a distinct vars.APP_ENV",
                        a.name
                    );
                }
            }
        }
        Ok(Environments { list })
    }

    /// Resolves what an operator typed. An unknown name lists the known ones.
    pub fn resolve(&self, word: &str) -> Result<&Environment> {
        if let Some(env) = self.list.iter().find(|e| e.answers_to(word)) {
            return Ok(env);
        }
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "unknown environment `{word}`; the wrangler configuration defines: {}",
            self.describe()
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &Environment> {
        self.list.iter()
    }

    /// `prod (alias production), staging (alias preview), local`.
    pub fn describe(&self) -> String {
        self.list
            .iter()
            .map(|e| match &e.wrangler_env {
                Some(w) if *w != e.name => format!("{} (alias {w})", e.name),
                _ => e.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Environment {
    fn new(
        name: String,
        wrangler_env: Option<String>,
        db: &RawDatabase,
        location: Location,
    ) -> Environment {
        Environment {
            name,
            wrangler_env,
            database_name: db.database_name.clone(),
            database_id: db.database_id.clone().unwrap_or_default(),
            binding: db.binding.clone(),
            migrations_dir: db
                .migrations_dir
                .clone()
                .unwrap_or_else(|| "migrations".to_owned()),
            location,
        }
    }
}

/// Two environments must never reach one database: a restore "into
/// staging" would then empty production, and its safety backup would be
/// labelled staging.
///
/// - A database id names one database, locally too (the local D1 file is
///   keyed by it, and manifests record it): no two environments may share
///   one, the local top level included.
/// - A database name is what wrangler is given. Remote environments share
///   one Cloudflare account, so two remote environments may not share a
///   name. The local top level may share a name with a remote environment:
///   it is always reached with `--local`, a separate store, and a local
///   backup still records the local environment, which the restore guards
///   compare.
fn refuse_shared_databases(list: &[Environment]) -> Result<()> {
    let label = |e: &Environment| match &e.wrangler_env {
        Some(w) => format!("`{}` ([env.{w}])", e.name),
        None => format!("`{}` (the top level)", e.name),
    };
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            let id = a.database_id.trim();
            if !id.is_empty() && id.eq_ignore_ascii_case(b.database_id.trim()) {
                bail!(
                    "environments {} and {} both use database_id {id}; each environment needs its                      own database. Fix database_id in one of them (`npx wrangler d1 list` shows the                      ids). Nothing was run.",
                    label(a),
                    label(b)
                );
            }
            let both_remote = a.location == Location::Remote && b.location == Location::Remote;
            if both_remote
                && a.database_name
                    .trim()
                    .eq_ignore_ascii_case(b.database_name.trim())
            {
                bail!(
                    "environments {} and {} both use database_name {}; each environment needs its                      own database. Fix database_name in one of them. Nothing was run.",
                    label(a),
                    label(b),
                    a.database_name
                );
            }
        }
    }
    Ok(())
}

fn single_database<'a>(dbs: &'a [RawDatabase], place: &str) -> Result<Option<&'a RawDatabase>> {
    match dbs {
        [] => Ok(None),
        [db] => {
            if db.database_name.trim().is_empty() {
                bail!("the D1 database in {place} has an empty database_name");
            }
            Ok(Some(db))
        }
        _ => bail!(
            "{place} has {} D1 databases; the backup tooling expects exactly one per environment",
            dbs.len()
        ),
    }
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(flatten)]
    top: RawSection,
    #[serde(default)]
    env: std::collections::BTreeMap<String, RawSection>,
}

#[derive(Deserialize)]
struct RawSection {
    #[serde(default)]
    vars: toml::Table,
    #[serde(default)]
    d1_databases: Vec<RawDatabase>,
}

impl RawSection {
    fn app_env(&self) -> Option<&str> {
        self.vars.get("APP_ENV").and_then(|v| v.as_str())
    }
}

#[derive(Deserialize)]
struct RawDatabase {
    binding: String,
    database_name: String,
    database_id: Option<String>,
    migrations_dir: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
        name = "qbtime"
        [vars]
        APP_ENV = "local"
        [[d1_databases]]
        binding = "DB"
        database_name = "qbtime_db_local"
        database_id = "local-id"
        migrations_dir = "migrations"

        [env.preview.vars]
        APP_ENV = "staging"
        [[env.preview.d1_databases]]
        binding = "DB"
        database_name = "qbtime_db_staging"
        database_id = "staging-id"
        migrations_dir = "migrations"

        [env.production.vars]
        APP_ENV = "prod"
        [[env.production.d1_databases]]
        binding = "DB"
        database_name = "qbtime_db_prod"
        database_id = "prod-id"
    "#;

    #[test]
    fn short_names_and_wrangler_aliases_resolve_to_the_same_database() {
        let envs = Environments::parse(CONFIG).unwrap();
        let prod = envs.resolve("prod").unwrap();
        assert_eq!(prod, envs.resolve("production").unwrap());
        assert_eq!(prod.database_name, "qbtime_db_prod");
        assert_eq!(prod.database_id, "prod-id");
        assert_eq!(prod.wrangler_env.as_deref(), Some("production"));
        assert_eq!(prod.location, Location::Remote);
        assert!(prod.is_production());

        let staging = envs.resolve("preview").unwrap();
        assert_eq!(staging.name, "staging");
        assert_eq!(staging.database_name, "qbtime_db_staging");
        assert!(!staging.is_production());

        let local = envs.resolve("local").unwrap();
        assert_eq!(local.wrangler_env, None);
        assert_eq!(local.location, Location::Local);
    }

    #[test]
    fn the_repository_config_defines_the_three_environments() {
        let text = include_str!("../../wrangler.toml");
        let envs = Environments::parse(text).unwrap();
        assert_eq!(
            envs.resolve("prod").unwrap().database_name,
            "qbtime_db_prod"
        );
        assert_eq!(
            envs.resolve("staging").unwrap().database_name,
            "qbtime_db_staging"
        );
        assert_eq!(envs.resolve("local").unwrap().location, Location::Local);
        for env in envs.iter() {
            assert_eq!(env.migrations_dir, "migrations");
        }
    }

    #[test]
    fn unknown_environment_lists_the_known_ones() {
        let envs = Environments::parse(CONFIG).unwrap();
        let err = envs.resolve("prdo").unwrap_err().to_string();
        assert!(err.contains("unknown environment `prdo`"), "{err}");
        assert!(err.contains("prod (alias production)"), "{err}");
        assert!(err.contains("staging (alias preview)"), "{err}");
        assert!(err.contains("local"), "{err}");
    }

    #[test]
    fn names_default_to_the_wrangler_environment_without_app_env() {
        let envs = Environments::parse(
            r#"
            [[d1_databases]]
            binding = "DB"
            database_name = "dev"
            [[env.preview.d1_databases]]
            binding = "DB"
            database_name = "stage"
            "#,
        )
        .unwrap();
        assert_eq!(envs.resolve("preview").unwrap().database_name, "stage");
        assert_eq!(envs.resolve("local").unwrap().database_name, "dev");
    }

    fn with_staging(database: &str) -> String {
        CONFIG.replace(
            "database_name = \"qbtime_db_staging\"\n        database_id = \"staging-id\"",
            database,
        )
    }

    #[test]
    fn two_remote_environments_on_one_database_are_refused_naming_both() {
        let by_name = with_staging("database_name = \"qbtime_db_prod\"\n database_id = \"s\"");
        let err = format!("{:#}", Environments::parse(&by_name).unwrap_err());
        assert!(err.contains("`staging` ([env.preview])"), "{err}");
        assert!(err.contains("`prod` ([env.production])"), "{err}");
        assert!(err.contains("database_name qbtime_db_prod"), "{err}");

        let by_id =
            with_staging("database_name = \"qbtime_db_staging\"\n database_id = \"PROD-ID\"");
        let err = format!("{:#}", Environments::parse(&by_id).unwrap_err());
        assert!(err.contains("both use database_id"), "{err}");
        assert!(
            err.contains("[env.preview]") && err.contains("[env.production]"),
            "{err}"
        );

        // The local top level may share a name (another store), never an id.
        let local_name = CONFIG.replace("\"qbtime_db_local\"", "\"qbtime_db_staging\"");
        Environments::parse(&local_name).unwrap();
        let local_id = CONFIG.replace("\"local-id\"", "\"staging-id\"");
        let err = format!("{:#}", Environments::parse(&local_id).unwrap_err());
        assert!(err.contains("(the top level)"), "{err}");
    }

    #[test]
    fn production_is_decided_by_names_and_unknown_environments_count_as_production() {
        let envs = Environments::parse(
            r#"
            [[d1_databases]]
            binding = "DB"
            database_name = "dev"
            [[env.prod.d1_databases]]
            binding = "DB"
            database_name = "app_main"
            [[env.live.d1_databases]]
            binding = "DB"
            database_name = "app_live"
            [env.staging.vars]
            APP_ENV = "stage"
            [[env.staging.d1_databases]]
            binding = "DB"
            database_name = "app_stage"
            [[env.qa.d1_databases]]
            binding = "PRODUCTION_COPY"
            database_name = "app_qa"
            "#,
        )
        .unwrap();
        assert!(envs.resolve("prod").unwrap().is_production());
        assert!(envs.resolve("live").unwrap().is_production());
        assert!(envs.resolve("qa").unwrap().is_production());
        assert!(!envs.resolve("stage").unwrap().is_production());
        assert!(!envs.resolve("local").unwrap().is_production());
        let why = envs.resolve("live").unwrap().production_reason().unwrap();
        assert!(why.contains("treated as production"), "{why}");
    }

    #[test]
    fn ambiguous_or_empty_configs_are_refused() {
        let twice = r#"
            [env.a.vars]
            APP_ENV = "x"
            [[env.a.d1_databases]]
            binding = "DB"
            database_name = "one"
            [env.b.vars]
            APP_ENV = "x"
            [[env.b.d1_databases]]
            binding = "DB"
            database_name = "two"
        "#;
        let err = Environments::parse(twice).unwrap_err().to_string();
        assert!(
            err.contains("two environments answer to the name `x`"),
            "{err}"
        );

        let err = Environments::parse("name = 'x'").unwrap_err().to_string();
        assert!(err.contains("no [[d1_databases]]"), "{err}");
    }
}
