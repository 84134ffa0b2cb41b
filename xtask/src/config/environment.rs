//! Environments, as the wrangler configuration defines them.
//!
//! Operators say `prod`, `staging` or `local`. Which wrangler `--env`, which
//! database and which database id those names mean is read from the
//! wrangler configuration and nowhere else (`wrangler.toml`, or
//! `wrangler.jsonc` / `wrangler.json`, comments included): the top level is
//! local development, and each `[env.NAME]` section with a D1 database is a
//! remote environment. An environment's short name is its `vars.APP_ENV`;
//! its wrangler environment name is accepted as an alias.
//!
//! An environment may have several D1 bindings. Each database is then a
//! target of its own, named `ENV.DATABASE_NAME` (`prod.qbtime_analytics`);
//! the environment's name alone means all of them to `backup`, and is
//! refused as ambiguous elsewhere unless `--database BINDING|NAME` picks
//! one. An environment with one database is named as before.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Result, bail};
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

/// One environment's database: a name operators use and the database it
/// stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// What manifests, file names and `latest:` record: the short name
    /// (`prod`, `staging`, `local`, from `vars.APP_ENV`), or
    /// `SHORT.DATABASE_NAME` when the environment has several databases.
    pub name: String,
    /// The environment's short name, which `backups.toml` uses.
    pub env_name: String,
    /// How many D1 databases the environment has.
    pub databases_in_env: usize,
    /// The wrangler environment (`production`, `preview`), `None` for the top level.
    pub wrangler_env: Option<String>,
    pub database_name: String,
    pub database_id: String,
    /// The id wrangler keys the local D1 file by:
    /// `preview_database_id ?? database_id ?? binding`, as wrangler does.
    pub local_id: String,
    pub binding: String,
    pub migrations_dir: String,
    pub location: Location,
    /// The Cloudflare account the configuration names for it (`account_id`,
    /// the environment's or else the top level's); `None` leaves the choice
    /// to wrangler (`CLOUDFLARE_ACCOUNT_ID`, or `wrangler login`).
    pub account_id: Option<String>,
    /// A database that `restore --to new:NAME` creates: it is in no
    /// configuration, and holds nothing until the restore fills it.
    pub is_new: bool,
}

impl Environment {
    /// Whether `word` names this database's environment, by short name or
    /// wrangler alias.
    fn in_env(&self, word: &str) -> bool {
        self.env_name == word || self.wrangler_env.as_deref() == Some(word)
    }

    /// Whether `--database WORD` picks this database.
    fn picked_by(&self, word: &str) -> bool {
        self.binding == word || self.database_name == word
    }

    /// [`Environment::recorded_as`] of the short name, database and id a
    /// manifest records: whether its backup is this database's.
    pub fn records(&self, m: &d1_core::manifest::Manifest) -> bool {
        self.recorded_as(&m.environment, &m.database.name, &m.database.uuid)
    }

    /// Whether a backup whose manifest records environment `name` and
    /// database `database` is of this database: of this environment,
    /// whatever number of databases it had then (recorded by the short name
    /// while it had one, `local`; by a qualified name while it had
    /// several, `local.qbtime_db_local`; names hold no dot of their own),
    /// and of this database by name, always: an environment's name now
    /// says nothing of which database a backup recorded under it was of.
    /// A backup recorded under a short name the environment no longer has
    /// (`vars.APP_ENV` changed, `[env.prod]` renamed) is still its own
    /// when it names this database and its id `id` (the manifest's): the
    /// same name and id are the same database, which no other environment
    /// of a configuration can share.
    /// Every "whose backup is this?" in the tool is this call.
    /// A recorded name that is no environment's by the configuration's
    /// rule (`prоd` with a Cyrillic `о`), or that is qualified by another
    /// database, is none of its ([`d1_core::names::may_name_database`], the
    /// rule an offsite index's entries are held to as well).
    pub fn recorded_as(&self, name: &str, database: &str, id: &str) -> bool {
        d1_core::names::may_name_database(name, &self.database_name)
            && self.database_name == database
            && (self.env_name == short_name(name)
                || (!id.is_empty() && self.database_id.eq_ignore_ascii_case(id)))
    }

    /// Whether `id`, the one a manifest records, is another database's
    /// than this one's: both known, and not the same. A manifest that
    /// records no id, or a database configured with none, says nothing.
    pub fn another_id(&self, id: &str) -> bool {
        !id.is_empty() && !self.database_id.is_empty() && !self.database_id.eq_ignore_ascii_case(id)
    }

    /// Whether a backup is this database's own: recorded under its names
    /// ([`Environment::records`]) and not with another id
    /// ([`Environment::another_id`]), as prune counts them. A backup of
    /// the same names with another id is another checkout's database
    /// sharing the backup directory, or the one this environment had
    /// before it was created again: never its own.
    pub fn owns(&self, m: &d1_core::manifest::Manifest) -> bool {
        self.records(m) && !self.another_id(&m.database.uuid)
    }

    /// Whether a backup of database `database` with id `id` is of this
    /// database under its old name: the same `database_id`, another
    /// `database_name` (the name changed in the configuration). The name
    /// is part of [`Environment::recorded_as`], so such a backup is not
    /// taken as this database's; this says why, and the way forward.
    pub fn renamed_from(&self, database: &str, id: &str) -> Option<String> {
        (!id.is_empty()
            && self.database_id.eq_ignore_ascii_case(id)
            && self.database_name != database)
            .then(|| {
                format!(
                    "the backups of {database} have the database_id {} gives {} now ({}): \
                     if the configuration renamed it from {database}, put \
                     `database_name = \"{database}\"` back for the restore, or restore such a \
                     backup into a database of its own with `--to new:NAME` (a database of \
                     another configuration with the same id is restored with that \
                     configuration)",
                    self.name, self.database_name, self.database_id
                )
            })
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
    ///
    /// A database that `restore --to new:NAME` creates comes before these
    /// rules and is not production, whatever its name: it does not exist
    /// yet, so there is nothing on it to lose and nothing is bound to it
    /// (a name that exists is refused before anything is created).
    pub fn production_reason(&self) -> Option<String> {
        if self.is_new {
            return None;
        }
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
/// production; see [`Environment::production_reason`]. `local` is not one:
/// the top level is not production by its [`Location`], and no remote
/// environment may be named `local` ([`refuse_local_name`]).
pub const NON_PRODUCTION_NAMES: &[&str] = &[
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

/// The names wrangler looks for its configuration under, in its order.
pub const CONFIG_FILES: [&str; 3] = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"];

/// Whether a wrangler configuration is at `path`: a file, or something put
/// in a file's place (a FIFO, a device), which is then refused, naming it,
/// rather than taken for no configuration.
pub fn config_present(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_dir())
}

/// The wrangler configuration in `dir`, if any. Two of them are refused:
/// wrangler would silently read the first of [`CONFIG_FILES`], and a stray
/// file must not change which databases a command reaches.
pub fn config_in(dir: &Path) -> Result<Option<std::path::PathBuf>> {
    let found: Vec<_> = CONFIG_FILES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| config_present(p))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        _ => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} holds {}; wrangler would read only the first, so which databases a command \
             reaches is unclear. Keep one of them (move the others away), or pass --config PATH. \
             Nothing was run.",
            dir.display(),
            found
                .iter()
                .map(|p| d1_core::names::file_name(p))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// How a wrangler configuration is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    /// JSON with comments and trailing commas, as wrangler reads
    /// `wrangler.json` and `wrangler.jsonc`.
    Jsonc,
}

impl Format {
    /// By file name: `.toml`, `.json` or `.jsonc`; anything else is refused.
    pub fn of(config: &Path) -> Result<Format> {
        match config.extension().and_then(|e| e.to_str()) {
            Some("toml") => Ok(Format::Toml),
            Some("json" | "jsonc") => Ok(Format::Jsonc),
            _ => crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "{} is not a wrangler configuration: wrangler reads wrangler.toml, wrangler.json \
                 or wrangler.jsonc; pass --config with one of them",
                config.display()
            ),
        }
    }
}

/// Every environment the wrangler configuration defines.
#[derive(Debug, Clone)]
pub struct Environments {
    list: Vec<Environment>,
    /// Each `[env.NAME]` section with no `d1_databases` of its own, as
    /// (NAME, its short name): wrangler inherits none from the top level,
    /// so such an environment has no database here.
    without_databases: Vec<(String, String)>,
    /// `--database BINDING|NAME`: which database of an environment with
    /// several a command means.
    pick: Option<String>,
    /// The top level's `pages_build_output_dir`, as written.
    pages_output_dir: Option<serde_json::Value>,
}

impl Environments {
    pub fn load(config: &Path) -> Result<Environments> {
        let format = Format::of(config)?;
        // A configuration that cannot be used is bad input: exit 2. One
        // that is not there is told where to point instead; one that is
        // there (a FIFO, over 64 MiB) is named with its own fix.
        let text = crate::edge::fsutil::read_text(config, "wrangler configuration")
            .map_err(|e| match config.try_exists() {
                Ok(false) => e.context(
                    "pass --config PATH (or set QBTIME_WRANGLER_CONFIG) naming the wrangler \
                     configuration",
                ),
                _ => e,
            })
            .map_err(crate::exit::could_not_run)?;
        Environments::parse_as(&text, format).map_err(|e| {
            crate::exit::Exit::CouldNotRun.error(e.context(format!(
                "in the wrangler configuration {}",
                config.display()
            )))
        })
    }

    /// A `wrangler.toml`.
    #[cfg(test)]
    pub fn parse(text: &str) -> Result<Environments> {
        Environments::parse_as(text, Format::Toml)
    }

    pub fn parse_as(text: &str, format: Format) -> Result<Environments> {
        let raw = read_raw(text, format)?;
        let mut list = top_level_environments(&raw)?;
        let mut without_databases = Vec::new();
        for (env_name, section) in &raw.env {
            let databases = section_environments(&raw, env_name, section)?;
            if databases.is_empty() {
                let name = section
                    .app_env(&format!("[env.{env_name}]"))?
                    .unwrap_or(env_name);
                without_databases.push((env_name.clone(), name.to_owned()));
            }
            list.extend(databases);
        }
        if list.is_empty() {
            bail!("no [[d1_databases]] are configured; add one per environment");
        }
        refuse_shared_databases(&list)?;
        refuse_name_clashes(&list)?;
        refuse_colliding_short_names(&list)?;
        Ok(Environments {
            list,
            without_databases,
            pick: None,
            pages_output_dir: raw.pages_build_output_dir,
        })
    }

    /// The directory `wrangler pages deploy` publishes, as the
    /// configuration's `pages_build_output_dir` names it (`None`: it names
    /// none): every file under it goes on a public site. Refused unless it
    /// is a directory of the checkout named relative to the configuration,
    /// without `..`: never `.`, the checkout with its backups, nor one
    /// outside it.
    pub fn pages_output_dir(&self) -> Result<Option<&str>> {
        let Some(value) = &self.pages_output_dir else {
            return Ok(None);
        };
        match value.as_str() {
            Some(dir)
                if names_a_directory_inside(dir) && d1_core::names::is_printable_text(dir) =>
            {
                Ok(Some(dir))
            }
            _ => crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "pages_build_output_dir is {}: `wrangler pages deploy` publishes every file \
                 under it on a public site, so it must be the build's own directory in this \
                 checkout (such as `dist`), named relative to the configuration, without `..` \
                 (`.` would publish the backups). Fix pages_build_output_dir in the \
                 configuration. Nothing was run.",
                d1_core::names::shown(&value.to_string())
            ),
        }
    }

    /// The same environments, with `--database BINDING|NAME` applied.
    pub fn picking(self, database: Option<String>) -> Environments {
        Environments {
            pick: database,
            ..self
        }
    }

    /// The name a backup whose manifest records environment `name` and
    /// database `database` is judged under: the configured database it is
    /// of ([`Environment::recorded_as`]), or, for one no longer configured,
    /// its environment qualified by its database, so that two databases'
    /// backups recorded under one short name (before and after a split)
    /// are never one group.
    /// The configured database whose backup `m` is ([`Environment::records`]):
    /// the one rule by which every command tells backups apart by
    /// environment (`latest:ENV`, `status`, `list --env`, prune's groups
    /// and the rules each is judged under, `upload --env`, verify's
    /// warnings, the migration record). A misfiled backup (recorded under
    /// prod's name, its manifest naming staging's database and id) is
    /// staging's, never prod's.
    pub fn whose(&self, m: &d1_core::manifest::Manifest) -> Option<&Environment> {
        self.list.iter().find(|e| e.records(m))
    }

    /// [`Environments::whose`] backup `m` is, or, when no configured
    /// database's, the one whose name it is recorded under: whose
    /// migrations a backup is read against (`verify`, `diff`).
    pub fn migrations_for(&self, m: &d1_core::manifest::Manifest) -> Option<&Environment> {
        self.whose(m).or_else(|| self.resolve(&m.environment).ok())
    }

    pub fn database_of(&self, name: &str, database: &str, id: &str) -> String {
        match self.list.iter().find(|e| e.recorded_as(name, database, id)) {
            Some(env) => env.name.clone(),
            None => format!("{}.{database}", short_name(name)),
        }
    }

    /// The databases a command that acts on every environment unless one is
    /// named (`list`, `prune`, `status`) acts on: those of the environment
    /// `word` names, else those `--database` picks ([`Environments::picked`]);
    /// `None`: every database.
    pub fn chosen(&self, word: Option<&str>) -> Result<Option<Vec<&Environment>>> {
        match word {
            Some(word) => self.databases(word).map(Some),
            None => self.picked(),
        }
    }

    /// The databases `--database` picks in every environment, for a command
    /// that acts on all of them when no environment is named (`list`,
    /// `prune`): `None` without `--database`. One that no environment has
    /// is refused, never ignored.
    pub fn picked(&self) -> Result<Option<Vec<&Environment>>> {
        let Some(pick) = &self.pick else {
            return Ok(None);
        };
        let all: Vec<_> = self.list.iter().filter(|e| e.picked_by(pick)).collect();
        if all.is_empty() {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "--database {}: no environment has a database with that binding or name; the \
                 wrangler configuration defines: {}",
                d1_core::names::shown(pick),
                self.describe()
            );
        }
        Ok(Some(all))
    }

    /// Resolves what an operator typed to one database. An unknown name
    /// lists the known ones; an environment with several databases needs
    /// `--database` (or a qualified name), and the refusal lists them.
    pub fn resolve(&self, word: &str) -> Result<&Environment> {
        if let Some(env) = self.list.iter().find(|e| e.name == word) {
            // A qualified name says which database by itself; a
            // `--database` that names another is a contradiction.
            if env.databases_in_env > 1 {
                if let Some(pick) = self.pick.as_ref().filter(|p| !env.picked_by(p)) {
                    crate::stop!(
                        crate::exit::Exit::CouldNotRun,
                        "`{word}` names the database {} (binding {}), but --database {pick} \
                         names another: give one of them. Nothing was run.",
                        env.database_name,
                        env.binding
                    );
                }
                return Ok(env);
            }
        }
        let all = self.named(word)?;
        match (&self.pick, all.as_slice()) {
            (None, [one]) => Ok(one),
            (Some(pick), _) => match all.iter().find(|e| e.picked_by(pick)) {
                Some(env) => Ok(env),
                None => crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "--database {pick}: `{word}` has no database with that binding or name; \
                     it has {}",
                    describe_databases(&all)
                ),
            },
            (None, _) => crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "`{word}` has {} D1 databases, so this command needs to know which: pass \
                 --database BINDING|NAME, or name one as {}. Nothing was run.",
                all.len(),
                describe_databases(&all)
            ),
        }
    }

    /// The other databases of `env`'s environment.
    pub fn siblings<'a>(&'a self, env: &'a Environment) -> impl Iterator<Item = &'a Environment> {
        { self.list.iter() }.filter(move |e| e.env_name == env.env_name && e.name != env.name)
    }

    /// Every database a command that may act on several (`backup`) means
    /// by `word`: all of the environment's, unless `--database` or a
    /// qualified name picks one.
    pub fn databases(&self, word: &str) -> Result<Vec<&Environment>> {
        let qualified = self
            .list
            .iter()
            .any(|e| e.name == word && e.databases_in_env > 1);
        if self.pick.is_some() || qualified {
            return Ok(vec![self.resolve(word)?]);
        }
        self.named(word)
    }

    /// The databases of the environment `word` names (never empty).
    fn named(&self, word: &str) -> Result<Vec<&Environment>> {
        let all: Vec<_> = self.list.iter().filter(|e| e.in_env(word)).collect();
        if all.is_empty() {
            return Err(self.unknown(word));
        }
        Ok(all)
    }

    /// The short name of the environment `word` names (short name, wrangler
    /// alias, or one of its databases' qualified names).
    pub fn env_name(&self, word: &str) -> Result<String> {
        match self.list.iter().find(|e| e.in_env(word) || e.name == word) {
            Some(e) => Ok(e.env_name.clone()),
            None => Err(self.unknown(word)),
        }
    }

    /// The error for a `word` that names no environment with a database
    /// (exit 2): a section the configuration has without `d1_databases` of
    /// its own is named as such, since wrangler does not inherit them.
    /// `word` is shown escaped: typed, the output escapes it too, but read
    /// from a file (a `backups.toml` table) it is the file's text.
    fn unknown(&self, word: &str) -> anyhow::Error {
        let defines = self.describe();
        let bare = self
            .without_databases
            .iter()
            .find(|(env, name)| env == word || name == word);
        crate::exit::Exit::CouldNotRun.error(match bare {
            Some((env, _)) => anyhow::anyhow!(
                "environment `{word}` ([env.{env}]) has no d1_databases of its own: wrangler \
                 does not inherit the top level's into an environment, so add its database \
                 under [env.{env}] (`npx wrangler d1 … --env {env}` has none either). The \
                 environments with a database: {defines}"
            ),
            None => anyhow::anyhow!(
                "unknown environment `{}`; the wrangler configuration defines: {defines}",
                d1_core::names::shown(word)
            ),
        })
    }

    /// The environment whose account a database that `restore --to
    /// new:NAME` creates goes into: the remote environment `of` names
    /// (`--account-of`), else one of those that all share an account.
    /// `Ok(None)` without a remote environment. An account the
    /// configuration does not name is `CLOUDFLARE_ACCOUNT_ID`'s (or
    /// `wrangler login`'s), as for every remote command. Remote
    /// environments in different accounts need `--account-of`.
    pub fn account_for_new(&self, of: Option<&str>) -> Result<Option<&Environment>> {
        let remote: Vec<&Environment> = match of {
            Some(word) => {
                let named = self.named(word)?;
                if named.iter().any(|e| e.location != Location::Remote) {
                    crate::stop!(
                        crate::exit::Exit::CouldNotRun,
                        "--account-of {word}: `{word}` is local D1, which has no Cloudflare \
                         account; name a remote environment. Nothing was created."
                    );
                }
                named
            }
            None => self
                .list
                .iter()
                .filter(|e| e.location == Location::Remote)
                .collect(),
        };
        let mut accounts: Vec<&Environment> = Vec::new();
        for e in remote {
            if !accounts.iter().any(|a| a.account_id == e.account_id) {
                accounts.push(e);
            }
        }
        match accounts.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "the remote environments are in different Cloudflare accounts ({}); say which \
                 account the new database belongs to with --account-of ENV. Nothing was created.",
                accounts
                    .iter()
                    .map(|e| format!(
                        "{}: {}",
                        e.env_name,
                        e.account_id.as_deref().unwrap_or("CLOUDFLARE_ACCOUNT_ID")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The environment whose configuration uses `database_name`, if any.
    pub fn using_database_name(&self, database_name: &str) -> Option<&Environment> {
        self.list
            .iter()
            .find(|e| e.database_name.eq_ignore_ascii_case(database_name))
    }

    /// The environment that binds a database as `binding` (compared without
    /// case), if any: wrangler looks a database name up by binding too.
    pub fn using_binding(&self, binding: &str) -> Option<&Environment> {
        self.list
            .iter()
            .find(|e| e.binding.eq_ignore_ascii_case(binding))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Environment> {
        self.list.iter()
    }

    /// Whether `word` is an environment of this configuration, by short
    /// name or wrangler alias.
    pub fn defines(&self, word: &str) -> bool {
        self.list
            .iter()
            .any(|e| e.env_name == word || e.wrangler_env.as_deref() == Some(word))
    }

    /// The short names of the environments treated as production
    /// ([`Environment::is_production`]), each once, in order.
    pub fn production_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = { self.list.iter() }
            .filter(|e| e.is_production())
            .map(|e| e.env_name.as_str())
            .collect();
        names.dedup();
        names
    }

    /// `prod (alias production), staging (alias preview), local`.
    pub fn describe(&self) -> String {
        self.list
            .iter()
            .map(|e| match &e.wrangler_env {
                Some(w) if *w != e.env_name && e.databases_in_env == 1 => {
                    format!("{} (alias {w})", e.name)
                }
                _ => e.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `prod.a (binding A), prod.b (binding B)`.
fn describe_databases(list: &[&Environment]) -> String {
    list.iter()
        .map(|e| format!("{} (binding {})", e.name, e.binding))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names from the configuration end up in file names, R2 keys and plans:
/// letters, digits, `_` and `-` only (D1's own rule for database names),
/// so that no configuration can steer a path or forge a line of output.
fn check_name(what: &str, name: &str) -> Result<()> {
    if !d1_core::names::is_config_name(name) {
        bail!(
            "{what} is {:?}; names may hold only letters, digits, `_` and `-` (at most 64), \
             because they become file names and R2 keys. Rename it in the configuration.",
            name.escape_debug().to_string()
        );
    }
    Ok(())
}

/// An `account_id` is a Cloudflare account's id: 32 lowercase hex digits
/// (what `npx wrangler whoami` prints). Anything else is refused, and its
/// value is never printed: an API token (40 letters, digits, `_` and `-`)
/// or a Global API Key (37 hex digits) pasted there by mistake is a
/// secret; the key and the file name where it is. One accepted is no
/// secret, and is named where a message names the account.
fn check_account(what: &str, account: &str) -> Result<()> {
    if !is_account_id(account) {
        bail!(
            "{what} is not an account id (its value is not printed: a token pasted there \
             would be a secret). An account id is 32 lowercase hex digits: set it to the one \
             `npx wrangler whoami` prints for the account, or remove it to use \
             CLOUDFLARE_ACCOUNT_ID."
        );
    }
    Ok(())
}

/// Whether `account` is a Cloudflare account's id: 32 lowercase hex
/// digits. wrangler.toml's `account_id` and `CLOUDFLARE_ACCOUNT_ID` alike.
pub fn is_account_id(account: &str) -> bool {
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    account.len() == 32 && account.chars().all(hex)
}

/// A database id goes into manifests, plans and wrangler's arguments, as
/// D1 prints it (a UUID): printable, without a line break or an escape code
/// that would print a line of its own, not an option, and of a length an
/// id has. A manifest holding anything else is refused as untrusted, so a
/// backup written with it would be refused by the run that wrote it.
fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = id.chars().count() <= 256 && !id.starts_with('-') && d1_core::names::is_printable(id);
    if !ok {
        let mut shown: String = id.chars().take(80).collect();
        if shown.len() < id.len() {
            shown.push('…');
        }
        bail!(
            "{what} is {:?}; an id is what `npx wrangler d1 list` prints (a UUID), at most 256 characters, without \
             a line break, a control character or a leading `-`. Fix it in the configuration. \
             Nothing was run.",
            shown.escape_debug().to_string()
        );
    }
    Ok(())
}

/// A `migrations_dir` is where wrangler takes the SQL that `migrations
/// apply` runs unjudged: a directory of the checkout, named relative to the
/// configuration, never one outside it (absolute, or through `..`).
fn check_migrations_dir(what: &str, dir: &str) -> Result<()> {
    let inside = names_a_directory_inside(dir);
    // Printed in plans and messages: a line break there would be a line of
    // its own (`Result: GOOD`), as in a name.
    if !d1_core::names::is_printable_text(dir) {
        bail!(
            "{what} is {:?}; it holds a line break, a control character or an invisible \
             formatting one, which printed would read as something else. Rename the directory \
             and fix migrations_dir in the configuration. Nothing was run.",
            dir
        );
    }
    if !inside {
        bail!(
            "{what} is {:?}; wrangler applies the SQL there as migrations, so it must be a \
             directory of this checkout, named relative to the configuration (such as \
             `migrations`), without `..`. Fix migrations_dir in the configuration.",
            dir.escape_debug().to_string()
        );
    }
    Ok(())
}

/// Whether `dir` names a directory below the one it is relative to: not
/// empty, not absolute, without `..`, and not that directory itself (`.`).
fn names_a_directory_inside(dir: &str) -> bool {
    use std::path::Component;
    let path = Path::new(dir);
    !dir.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
}

impl Environment {
    /// Refuses a `migrations_dir` inside the backup directory (wrangler
    /// would apply dumps there as migrations, past the SQL gate), or one
    /// that a symbolic link leads out of the checkout (`root`): SQL in no
    /// commit of it, such as a shared directory in /tmp. A link to the
    /// checkout's own migrations (a monorepo's app directory) is fine.
    ///
    /// `given` is the setting that chose the backup directory
    /// (`--backup-dir` or `QBTIME_BACKUP_DIR`), `None` for the default
    /// `backups/`: a directory given that holds the migrations is that
    /// setting's mistake, not migrations_dir's.
    pub fn check_migrations_outside(
        &self,
        (config_dir, root): (&Path, &Path),
        (backup_dir, given): (&Path, Option<&str>),
    ) -> Result<()> {
        let dir = config_dir.join(&self.migrations_dir);
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if let (Ok(real), Ok(home)) = (std::fs::canonicalize(&dir), root.canonicalize())
            && !real.starts_with(&home)
        {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "the migrations_dir of {} ({}) leads out of the checkout {} through a symbolic \
                 link, to {}: wrangler would apply SQL that is in no commit of it. Make \
                 migrations_dir a directory of the checkout itself. Nothing was run.",
                self.name,
                self.migrations_dir,
                home.display(),
                real.display()
            );
        }
        let lexical = |p: &Path| -> std::path::PathBuf {
            p.components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect()
        };
        let inside = canonical(&dir).starts_with(canonical(backup_dir))
            || lexical(&dir).starts_with(lexical(backup_dir));
        if let (true, Some(given)) = (inside, given) {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "the migrations_dir of {} ({}) is inside the backup directory {}, which \
                 {given} gave: wrangler would apply the dumps written there as migrations. Give \
                 {given} a directory of its own, such as the checkout's backups/ (the default, \
                 with {given} left out{}). Nothing was run.",
                self.name,
                self.migrations_dir,
                backup_dir.display(),
                if given == "QBTIME_BACKUP_DIR" {
                    ": `unset QBTIME_BACKUP_DIR`"
                } else {
                    ""
                }
            );
        }
        if inside {
            crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "the migrations_dir of {} ({}) is inside the backup directory {}: wrangler \
                 would apply the dumps there as migrations. Point migrations_dir at the \
                 checkout's migrations/ directory. Nothing was run.",
                self.name,
                self.migrations_dir,
                backup_dir.display()
            );
        }
        Ok(())
    }

    fn new(
        env_name: &str,
        wrangler_env: Option<String>,
        db: &RawDatabase,
        databases_in_env: usize,
        location: Location,
    ) -> Environment {
        let name = match databases_in_env {
            1 => env_name.to_owned(),
            _ => format!("{env_name}.{}", db.database_name),
        };
        Environment {
            name,
            env_name: env_name.to_owned(),
            databases_in_env,
            wrangler_env,
            database_name: db.database_name.clone(),
            database_id: db.database_id.clone().unwrap_or_default(),
            local_id: db
                .preview_database_id
                .clone()
                .or_else(|| db.database_id.clone())
                .unwrap_or_else(|| db.binding.clone()),
            binding: db.binding.clone(),
            migrations_dir: db
                .migrations_dir
                .clone()
                .unwrap_or_else(|| "migrations".to_owned()),
            location,
            account_id: None,
            is_new: false,
        }
    }

    /// The database `restore --to new:NAME` creates, as a remote target:
    /// `name` is checked ([`check_new_database_name`]) and `account_id`
    /// comes from [`Environments::account_for_new`]. Its id is unknown
    /// until it is created.
    pub fn new_database(name: &str, account_id: Option<String>) -> Environment {
        Environment {
            name: format!("new:{name}"),
            env_name: format!("new:{name}"),
            databases_in_env: 1,
            wrangler_env: None,
            database_name: name.to_owned(),
            database_id: String::new(),
            local_id: String::new(),
            binding: "DB".to_owned(),
            migrations_dir: "migrations".to_owned(),
            location: Location::Remote,
            account_id,
            is_new: true,
        }
    }
}

/// The environment's short name in a name a manifest records: `local` of
/// `local` and of `local.qbtime_db_local` (names hold no dot of their own).
pub fn short_name(recorded: &str) -> &str {
    recorded
        .split_once('.')
        .map_or(recorded, |(short, _)| short)
}

/// A name for a new D1 database, by D1's rule (the API's pattern
/// `^[a-z0-9][a-z0-9-_]*$`), at most 64 characters, refused with exit 2.
pub fn check_new_database_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '_'])
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "new:{} is not a name D1 accepts for a database: lower-case letters, digits, `_` and \
             `-`, starting with a letter or digit, at most 64 characters (for example \
             new:qbtime_db_restored). Nothing was created.",
            d1_core::names::shown(name)
        );
    }
    Ok(())
}

/// The configuration's text as wrangler reads it, TOML or JSONC.
fn read_raw(text: &str, format: Format) -> Result<RawConfig> {
    Ok(match format {
        Format::Toml => {
            let not_toml = "wrangler.toml is not valid TOML for wrangler";
            let parsed = toml::Deserializer::parse(text)
                .map_err(|e| super::parse_error(not_toml, text, &e))?;
            super::read_typed(parsed, |e, path| {
                super::key_error(not_toml, text, &e, path, "wrangler.toml")
            })?
        }
        Format::Jsonc => {
            // What wrangler's own JSONC parser accepts: comments and
            // trailing commas, nothing looser.
            let options = jsonc_parser::ParseOptions {
                allow_comments: true,
                allow_trailing_commas: true,
                allow_loose_object_property_names: false,
                allow_missing_commas: false,
                allow_single_quoted_strings: false,
                allow_hexadecimal_numbers: false,
                allow_unary_plus_numbers: false,
                allow_bare_decimal_point_numbers: false,
                allow_non_finite_numbers: false,
                allow_extended_string_escapes: false,
            };
            // A byte order mark (a Windows editor's save) wrangler passes
            // over, as the TOML reader does.
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let not_jsonc = |message: String| {
                anyhow::anyhow!(
                    "the configuration is not valid JSONC for wrangler: {}",
                    super::without_quoted_values(&message)
                )
            };
            // Read as a value first, then as the configuration: the key of
            // a value of the wrong type is known by its whole path.
            let value: serde_json::Value = jsonc_parser::parse_to_serde_value(text, &options)
                .map_err(|e| not_jsonc(e.to_string()))?;
            super::read_typed(value, |e, path| {
                let message = e.to_string();
                match super::wrong_type(path, &message, "the wrangler configuration") {
                    Some(told) => anyhow::anyhow!(told),
                    None => not_jsonc(format!("{message}, in `{}`", d1_core::names::shown(path))),
                }
            })?
        }
    })
}

/// The top level's databases: the local environment.
fn top_level_environments(raw: &RawConfig) -> Result<Vec<Environment>> {
    let mut list = Vec::new();
    let top_name = raw
        .top
        .app_env("the top level")?
        .unwrap_or("local")
        .to_owned();
    check_name("vars.APP_ENV of the top level", &top_name)?;
    if let Some(account) = &raw.top.account_id {
        check_account("the top level's account_id", account)?;
    }
    for db in databases(&raw.top.d1_databases, "the top level")? {
        list.push(Environment::new(
            &top_name,
            None,
            db,
            raw.top.d1_databases.len(),
            Location::Local,
        ));
    }
    Ok(list)
}

/// The databases of one `[env.NAME]` section: remote environments.
fn section_environments(
    raw: &RawConfig,
    env_name: &str,
    section: &RawSection,
) -> Result<Vec<Environment>> {
    let mut list = Vec::new();
    check_name("a wrangler environment's name", env_name)?;
    let name = section
        .app_env(&format!("[env.{env_name}]"))?
        .unwrap_or(env_name)
        .to_owned();
    check_name(&format!("vars.APP_ENV of [env.{env_name}]"), &name)?;
    refuse_local_name(env_name, &name)?;
    if let Some(account) = &section.account_id {
        check_account(&format!("the account_id of [env.{env_name}]"), account)?;
    }
    // wrangler inherits `account_id` from the top level.
    let account = section.account_id.as_ref().or(raw.top.account_id.as_ref());
    for db in databases(&section.d1_databases, &format!("[env.{env_name}]"))? {
        list.push(Environment {
            account_id: account.cloned(),
            ..Environment::new(
                &name,
                Some(env_name.to_owned()),
                db,
                section.d1_databases.len(),
                Location::Remote,
            )
        });
    }
    Ok(list)
}

/// `local`, in any case, is the top level's name, the local D1's, alone:
/// operators read it as "not a remote database", and a remote section
/// answering to it (its short name or its wrangler environment name) would
/// take `--to local --replace --yes` onto a remote database, print
/// "(local)" and name the safety backup `backup-local-…`. The top level
/// may be named otherwise (`vars.APP_ENV = "dev"`); `local` then names
/// nothing. Whether a step is remote is decided by [`Location`], never by
/// a name.
fn refuse_local_name(env_name: &str, short: &str) -> Result<()> {
    if env_name.eq_ignore_ascii_case("local") || short.eq_ignore_ascii_case("local") {
        bail!(
            "[env.{env_name}] is a remote environment named `{}`, but `local` is the top \
             level's name (the local D1 under .wrangler/state), and never a remote database's. \
             Rename it in the configuration (vars.APP_ENV of [env.{env_name}], or the section \
             itself), and its section in backups.toml with it. Nothing was run.",
            if short.eq_ignore_ascii_case("local") {
                short
            } else {
                env_name
            }
        );
    }
    Ok(())
}

/// No two environments answer to the same name. Each database's names are
/// looked up in maps of those already seen, once, so a configuration of
/// thousands of environments is read in linear time, not pair by pair.
///
/// Two databases clash when one's name is a name the other answers to (its
/// own, or its environment's names when that has only it), or, in two different
/// environments, when a name of one's environment (short name or wrangler
/// alias) is one of the other's.
fn refuse_name_clashes(list: &[Environment]) -> Result<()> {
    let mut by_name: HashMap<&str, &Environment> = HashMap::new();
    let mut by_answer: HashMap<&str, &Environment> = HashMap::new();
    let mut by_env_word: HashMap<&str, &Environment> = HashMap::new();
    for b in list {
        let env_words = [Some(b.env_name.as_str()), b.wrangler_env.as_deref()];
        let env_words = env_words.into_iter().flatten();
        // The names that pick `b` alone.
        let answers = std::iter::once(b.name.as_str())
            .chain(env_words.clone().filter(|_| b.databases_in_env == 1));
        let same_env =
            |a: &Environment| a.env_name == b.env_name && a.wrangler_env == b.wrangler_env;
        let earlier = by_answer
            .get(b.name.as_str())
            .or_else(|| answers.clone().find_map(|w| by_name.get(w)))
            .or_else(|| {
                env_words
                    .clone()
                    .filter_map(|w| by_env_word.get(w))
                    .find(|a| !same_env(a))
            });
        if let Some(a) = earlier {
            bail!(
                "two environments answer to the name `{}`; give each a distinct vars.APP_ENV",
                a.name
            );
        }
        by_name.entry(&b.name).or_insert(b);
        for word in answers {
            by_answer.entry(word).or_insert(b);
        }
        for word in env_words {
            by_env_word.entry(word).or_insert(b);
        }
    }
    Ok(())
}

/// Short names that name something else where an environment's name is
/// a key: `index` is the R2 prefix of every environment's index
/// (`index/<env>.json`), so an environment named so would have its
/// lifecycle rule expire, and its lock hold, every other's index; `app`
/// is the table of the app's own rules in backups.toml.
const RESERVED_NAMES: [(&str, &str); 2] = [
    (
        "index",
        "its offsite prefix would be index/, where every environment's index is kept \
         (index/<env>.json)",
    ),
    (
        "app",
        "[app] in backups.toml is the table of the app's own rules",
    ),
];

/// Where an environment's short name is written: `vars.APP_ENV`, or
/// without one the section's name.
fn short_name_key(e: &Environment) -> String {
    match &e.wrangler_env {
        Some(w) => format!("vars.APP_ENV of [env.{w}] (or, without one, the section's name)"),
        None => "vars.APP_ENV of the top level".to_owned(),
    }
}

/// No environment's files or R2 prefix may hold another's: a short name
/// that is reserved ([`RESERVED_NAMES`], in any case), or two short names
/// equal but for case, whose backups' file names are one file on a
/// case-insensitive file system (macOS's) and whose settings and
/// `latest:` an operator cannot tell apart.
fn refuse_colliding_short_names(list: &[Environment]) -> Result<()> {
    let mut seen: HashMap<String, &Environment> = HashMap::new();
    for b in list {
        if let Some((_, why)) =
            { RESERVED_NAMES.iter() }.find(|(n, _)| b.env_name.eq_ignore_ascii_case(n))
        {
            bail!(
                "{} is `{}`, a name this tool keeps for itself: {why}. Rename it in the \
                 configuration (and its tables in backups.toml with it). Nothing was run.",
                short_name_key(b),
                b.env_name,
            );
        }
        let folded = b.env_name.to_ascii_lowercase();
        match seen.get(&folded) {
            Some(a) if a.env_name != b.env_name => bail!(
                "{} is `{}`, and {} is `{}`: names equal but for case name one file for both \
                 environments' backups on a case-insensitive file system (macOS's), and one \
                 environment to an operator. Rename it in the configuration (and its tables in \
                 backups.toml with it). Nothing was run.",
                short_name_key(b),
                b.env_name,
                short_name_key(a),
                a.env_name
            ),
            _ => {
                seen.entry(folded).or_insert(b);
            }
        }
    }
    refuse_database_names_alike(list)
}

/// Two databases of one place (the top level, or one `[env.NAME]`) whose
/// names are equal but for case: their environments are named by them
/// (`local.app`, `local.App`), and so are their backups, one file for
/// both on a case-insensitive file system (macOS's); a lookup by database
/// name finds the first. wrangler tells them apart, and so does the local
/// D1 (its file is keyed by the id), so nothing else refuses them where
/// the databases are local (OJ 2).
fn refuse_database_names_alike(list: &[Environment]) -> Result<()> {
    let key = |e: &Environment| {
        let place = match &e.wrangler_env {
            Some(w) => format!("[env.{w}]"),
            None => "the top level".to_owned(),
        };
        let nth = 1 + { list.iter() }
            .take_while(|o| !std::ptr::eq(*o, e))
            .filter(|o| o.wrangler_env == e.wrangler_env)
            .count();
        format!("the database_name of D1 database {nth} in {place}")
    };
    let mut seen: HashMap<String, &Environment> = HashMap::new();
    for b in list {
        match seen.get(&b.name.to_ascii_lowercase()) {
            Some(a) if a.name != b.name => bail!(
                "{} is `{}`, and {} is `{}`: the names differ only in case. They make the \
                 environments `{}` and `{}`, which name their backups' files, and on a \
                 case-insensitive file system, as macOS's is by default, file names that differ \
                 only in case name one file, so the two databases' backups would be mixed up; \
                 an operator cannot tell them apart either, and a lookup by database name finds \
                 only the first. Rename the database_name of one of them so that the names \
                 differ in more than case (and its tables in backups.toml with it; a local \
                 database keeps its data, as its local D1 file is keyed by its id). Nothing was \
                 run.",
                key(a),
                a.database_name,
                key(b),
                b.database_name,
                a.name,
                b.name
            ),
            _ => {
                seen.entry(b.name.to_ascii_lowercase()).or_insert(b);
            }
        }
    }
    Ok(())
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
///
/// Each key is normalised once and looked up among those already seen, so
/// thousands of environments take linear time, not a comparison per pair.
fn refuse_shared_databases(list: &[Environment]) -> Result<()> {
    let label = |e: &Environment| match &e.wrangler_env {
        Some(w) => format!("`{}` ([env.{w}])", e.name),
        None => format!("`{}` (the top level)", e.name),
    };
    let mut ids: HashMap<String, &Environment> = HashMap::new();
    let mut local_ids: HashMap<&str, &Environment> = HashMap::new();
    let mut remote_names: HashMap<String, &Environment> = HashMap::new();
    for b in list {
        let id = b.database_id.trim();
        if !id.is_empty() {
            if let Some(a) = ids.get(&id.to_ascii_lowercase()) {
                bail!(
                    "environments {} and {} both use database_id {}; each environment needs its \
                     own database. Fix database_id in one of them (`npx wrangler d1 list` shows the \
                     ids). Nothing was run.",
                    label(a),
                    label(b),
                    a.database_id.trim()
                );
            }
            ids.insert(id.to_ascii_lowercase(), b);
        }
        // A local D1 file is keyed by `preview_database_id`, else
        // `database_id`: two local databases with one are one file.
        if b.location == Location::Local && !b.local_id.is_empty() {
            if let Some(a) = local_ids.get(b.local_id.as_str()) {
                bail!(
                    "D1 databases {} and {} of {} both have the local id {} (their \
                     preview_database_id, else their database_id), so their local D1 is one \
                     file: a command on one would act on the other's data. Give each its own \
                     preview_database_id. Nothing was run.",
                    a.database_name,
                    b.database_name,
                    label(a),
                    a.local_id
                );
            }
            local_ids.insert(&b.local_id, b);
        }
        if b.location == Location::Remote {
            let name = b.database_name.trim().to_ascii_lowercase();
            if let Some(a) = remote_names.get(&name) {
                bail!(
                    "environments {} and {} both use database_name {}; each environment needs its \
                     own database. Fix database_name in one of them. Nothing was run.",
                    label(a),
                    label(b),
                    a.database_name
                );
            }
            remote_names.insert(name, b);
        }
    }
    Ok(())
}

fn databases<'a>(dbs: &'a [RawDatabase], place: &str) -> Result<&'a [RawDatabase]> {
    for (i, db) in dbs.iter().enumerate() {
        check_name(
            &format!("the database_name of D1 database {} in {place}", i + 1),
            &db.database_name,
        )?;
        if db.binding.is_empty()
            || !db
                .binding
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            bail!(
                "the binding of D1 database {} in {place} is {:?}; a binding is a JavaScript \
                 identifier (letters, digits, `_`, `$`). Rename it in the configuration.",
                i + 1,
                db.binding.escape_debug().to_string()
            );
        }
        for (field, id) in [
            ("database_id", &db.database_id),
            ("preview_database_id", &db.preview_database_id),
        ] {
            if let Some(id) = id {
                check_id(
                    &format!("the {field} of D1 database {} in {place}", i + 1),
                    id,
                )?;
            }
        }
        if let Some(dir) = &db.migrations_dir {
            check_migrations_dir(
                &format!("the migrations_dir of D1 database {} in {place}", i + 1),
                dir,
            )?;
        }
        check_migration_settings(db, &format!("D1 database {} in {place}", db.database_name))?;
        for other in &dbs[..i] {
            if other.binding == db.binding || other.database_name == db.database_name {
                bail!(
                    "{place} has two D1 databases with the binding {} or the name {}; each \
                     needs its own",
                    db.binding,
                    db.database_name
                );
            }
            // wrangler finds a database by name or by binding, whichever
            // entry comes first, and this tool names databases to it by
            // name: a binding that is another database's name would send
            // wrangler to the wrong one.
            for (a, b) in [(other, db), (db, other)] {
                if a.binding.eq_ignore_ascii_case(&b.database_name) {
                    bail!(
                        "in {place}, the binding {} of D1 database {} is the name of D1 database \
                         {}; wrangler finds databases by name or binding, so it could act on the \
                         wrong one. Rename the binding. Nothing was run.",
                        a.binding,
                        a.database_name,
                        b.database_name
                    );
                }
            }
        }
    }
    Ok(dbs)
}

#[derive(Deserialize)]
#[serde(from = "RawFile")]
struct RawConfig {
    pages_build_output_dir: Option<serde_json::Value>,
    top: RawSection,
    env: std::collections::BTreeMap<String, RawSection>,
}

/// The file as read: the top level's own fields, named one by one rather
/// than `#[serde(flatten)]` into a section, which reads them through a
/// buffer that loses where each value is, so a value of the wrong type was
/// told at line 1, column 1.
#[derive(Deserialize)]
struct RawFile {
    pages_build_output_dir: Option<serde_json::Value>,
    account_id: Option<String>,
    #[serde(default)]
    vars: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    d1_databases: Vec<RawDatabase>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, RawSection>,
}

impl From<RawFile> for RawConfig {
    fn from(file: RawFile) -> RawConfig {
        RawConfig {
            pages_build_output_dir: file.pages_build_output_dir,
            top: RawSection {
                account_id: file.account_id,
                vars: file.vars,
                d1_databases: file.d1_databases,
            },
            env: file.env,
        }
    }
}

#[derive(Deserialize)]
struct RawSection {
    account_id: Option<String>,
    #[serde(default)]
    vars: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    d1_databases: Vec<RawDatabase>,
}

impl RawSection {
    /// The section's `vars.APP_ENV`, its short name. One that is not a
    /// string is refused, never passed over: the section would go by its
    /// wrangler name, and the name the operator gave it would be unknown.
    fn app_env(&self, place: &str) -> Result<Option<&str>> {
        let kind = match self.vars.get("APP_ENV") {
            None => return Ok(None),
            Some(serde_json::Value::String(name)) => return Ok(Some(name)),
            Some(serde_json::Value::Number(n)) if n.is_f64() => "a float",
            Some(serde_json::Value::Number(_)) => "an integer",
            Some(serde_json::Value::Bool(_)) => "a boolean",
            Some(serde_json::Value::Array(_)) => "an array",
            Some(serde_json::Value::Object(_)) => "a table",
            Some(serde_json::Value::Null) => "null",
        };
        bail!(
            "vars.APP_ENV of {place} is {kind}; it names the environment, so it must be a \
             string, such as APP_ENV = \"staging\". Fix it in the configuration. Nothing was run."
        )
    }
}

/// The settings of one D1 database that change which migrations wrangler
/// applies or records, beyond the directory: this tool plans and checks
/// migrations as the `*.sql` files directly in `migrations_dir`, recorded
/// in `d1_migrations`, so it refuses a configuration that tells wrangler
/// otherwise rather than show a plan that wrangler would not follow.
fn check_migration_settings(db: &RawDatabase, what: &str) -> Result<()> {
    let table = db.migrations_table.as_deref();
    if let Some(table) = table.filter(|t| *t != d1_core::statement::MIGRATIONS_TABLE) {
        bail!(
            "{what} sets migrations_table = {:?}; this tool reads and checks the applied \
             migrations in {} only, so its plans and checks would not see the ones wrangler \
             records. Remove the setting. Nothing was run.",
            table.escape_debug().to_string(),
            d1_core::statement::MIGRATIONS_TABLE
        );
    }
    if db.migrations_pattern.is_some() {
        bail!(
            "{what} sets migrations_pattern; wrangler would apply migration files that this \
             tool's plan does not list (it lists the .sql files directly in migrations_dir). \
             Remove the setting. Nothing was run."
        );
    }
    if db.database_internal_env.is_some() {
        bail!(
            "{what} sets database_internal_env, which is for Cloudflare's own use; remove it. \
             Nothing was run."
        );
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawDatabase {
    binding: String,
    database_name: String,
    database_id: Option<String>,
    preview_database_id: Option<String>,
    migrations_dir: Option<String>,
    migrations_table: Option<String>,
    migrations_pattern: Option<serde_json::Value>,
    database_internal_env: Option<serde_json::Value>,
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
        let text = include_str!("../../../wrangler.toml");
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
    fn an_environment_with_no_databases_of_its_own_is_named_as_such() {
        // wrangler inherits `vars` per environment and `d1_databases` never:
        // `[env.production]` with only its vars has no database.
        let envs = Environments::parse(
            r#"
            [[d1_databases]]
            binding = "DB"
            database_name = "app_local"
            database_id = "local"
            [env.production.vars]
            APP_ENV = "prod"
            "#,
        )
        .unwrap();
        for word in ["prod", "production"] {
            let err = format!("{:#}", envs.resolve(word).unwrap_err());
            assert!(
                err.contains("([env.production]) has no d1_databases of its own")
                    && err.contains("add its database under [env.production]"),
                "{err}"
            );
        }
        let err = envs.resolve("prdo").unwrap_err().to_string();
        assert!(err.contains("unknown environment `prdo`"), "{err}");
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
        // The message reads as a sentence, without a run of spaces in it.
        assert!(err.contains("needs its own database"), "{err}");
        let by_name = format!("{:#}", Environments::parse(&by_name).unwrap_err());
        assert!(by_name.contains("needs its own database"), "{by_name}");

        // The local top level may share a name (another store), never an id.
        let local_name = CONFIG.replace("\"qbtime_db_local\"", "\"qbtime_db_staging\"");
        Environments::parse(&local_name).unwrap();
        let local_id = CONFIG.replace("\"local-id\"", "\"staging-id\"");
        let err = format!("{:#}", Environments::parse(&local_id).unwrap_err());
        assert!(err.contains("(the top level)"), "{err}");
    }

    /// The refusals read each key once among those seen, not pair by pair
    /// (a configuration of 20,000 environments took minutes): a database
    /// shared by the first and the last of thousands is still refused, and
    /// so is a name the last answers to.
    #[test]
    fn a_shared_database_or_name_is_refused_among_thousands_of_environments() {
        let many = |last: &str| {
            let mut text = CONFIG.to_owned();
            for i in 0..3000 {
                text += &format!(
                    "[env.e{i}.vars]\nAPP_ENV = \"qa{i}\"\n[[env.e{i}.d1_databases]]\n\
                     binding = \"DB\"\ndatabase_name = \"db_qa_{i}\"\ndatabase_id = \"id-{i}\"\n"
                );
            }
            text + last
        };
        Environments::parse(&many("")).unwrap();
        let shared_id = many(
            "[env.last.vars]\nAPP_ENV = \"last\"\n[[env.last.d1_databases]]\nbinding = \"DB\"\n\
             database_name = \"db_last\"\ndatabase_id = \" ID-0 \"\n",
        );
        let err = format!("{:#}", Environments::parse(&shared_id).unwrap_err());
        assert!(err.contains("both use database_id id-0"), "{err}");
        assert!(err.contains("`last` ([env.last])"), "{err}");
        let shared_name = many(
            "[env.last.vars]\nAPP_ENV = \"last\"\n[[env.last.d1_databases]]\nbinding = \"DB\"\n\
             database_name = \"DB_QA_7\"\ndatabase_id = \"id-last\"\n",
        );
        let err = format!("{:#}", Environments::parse(&shared_name).unwrap_err());
        assert!(err.contains("both use database_name db_qa_7"), "{err}");
        let clash = many(
            "[env.qa9.vars]\nAPP_ENV = \"other\"\n[[env.qa9.d1_databases]]\nbinding = \"DB\"\n\
             database_name = \"db_other\"\ndatabase_id = \"id-other\"\n",
        );
        let err = format!("{:#}", Environments::parse(&clash).unwrap_err());
        assert!(
            err.contains("two environments answer to the name `qa9`"),
            "{err}"
        );
    }

    /// A `vars.APP_ENV` that is not a string named nothing: the section
    /// went by its wrangler name, and `--env staging` was unknown.
    #[test]
    fn an_app_env_that_is_not_a_string_is_refused_naming_where_and_its_type() {
        for (value, kind) in [("5", "an integer"), ("[\"staging\"]", "an array")] {
            let text = CONFIG.replace("APP_ENV = \"staging\"", &format!("APP_ENV = {value}"));
            let err = format!("{:#}", Environments::parse(&text).unwrap_err());
            assert!(err.contains("vars.APP_ENV of [env.preview]"), "{err}");
            assert!(err.contains(kind), "{err}");
            assert!(err.contains("a string"), "{err}");
        }
        let top = CONFIG.replace("APP_ENV = \"local\"", "APP_ENV = true");
        let err = format!("{:#}", Environments::parse(&top).unwrap_err());
        assert!(err.contains("vars.APP_ENV of the top level"), "{err}");
        assert!(err.contains("a boolean"), "{err}");
    }

    /// A D1 field of the wrong type at the top level was told "at line 1,
    /// column 1" with no key: the top level was read through a buffer that
    /// loses where its values are. At the top level and in a section alike
    /// the key is named, with the line its value is on.
    #[test]
    fn a_d1_field_of_the_wrong_type_is_named_with_its_line() {
        let top_dir = CONFIG.replacen("migrations_dir = \"migrations\"", "migrations_dir = 7", 1);
        let prod_binding = {
            let at = CONFIG.find("[[env.production.d1_databases]]").unwrap();
            let (head, tail) = CONFIG.split_at(at);
            format!(
                "{head}{}",
                tail.replacen("binding = \"DB\"", "binding = [1]", 1)
            )
        };
        for (text, wrong, key) in [
            (
                CONFIG.replacen("binding = \"DB\"", "binding = false", 1),
                "binding = false",
                "`d1_databases[0].binding`",
            ),
            (
                top_dir,
                "migrations_dir = 7",
                "`d1_databases[0].migrations_dir`",
            ),
            (
                prod_binding,
                "binding = [1]",
                "`env.production.d1_databases[0].binding`",
            ),
        ] {
            let line = text.lines().position(|l| l.contains(wrong)).unwrap() + 1;
            let err = format!("{:#}", Environments::parse(&text).unwrap_err());
            assert!(err.contains(&format!("at line {line}, ")), "{err}");
            assert!(err.contains(key), "{err}");
            assert!(err.contains("must be a string"), "{err}");
        }
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

    /// `local` means the local D1 and nothing else: a remote section whose
    /// short name (`vars.APP_ENV`) or wrangler environment name is `local`,
    /// in any case, is refused, naming the section and the fix. The top
    /// level may be named otherwise (`devtop`); `local` then names nothing.
    /// `index` (every environment's index is under `index/` in R2), `app`
    /// (backups.toml's table of the app's rules), and a name another
    /// environment has but for case, are refused naming the key.
    #[test]
    fn reserved_short_names_and_names_alike_but_for_case_are_refused() {
        for (edit, said) in [
            (
                CONFIG.replace("APP_ENV = \"staging\"", "APP_ENV = \"INDEX\""),
                "index/",
            ),
            (
                CONFIG.replace("APP_ENV = \"local\"", "APP_ENV = \"index\""),
                "top level",
            ),
            (
                CONFIG.replace("APP_ENV = \"staging\"", "APP_ENV = \"app\""),
                "[app]",
            ),
            (
                CONFIG.replace("APP_ENV = \"staging\"", "APP_ENV = \"Prod\""),
                "[env.production]",
            ),
            (
                CONFIG.replace("APP_ENV = \"local\"", "APP_ENV = \"STAGING\""),
                "[env.preview]",
            ),
        ] {
            let err = format!("{:#}", Environments::parse(&edit).unwrap_err());
            assert!(
                err.contains("vars.APP_ENV of") && err.contains(said) && err.contains("Rename"),
                "{said}: {err}"
            );
        }
        // A section named `index` whose short name is another is no prefix of it.
        Environments::parse(&CONFIG.replace("env.preview", "env.index")).unwrap();
    }

    #[test]
    fn the_name_local_is_refused_for_a_remote_environment() {
        let renamed = CONFIG.replace("APP_ENV = \"local\"", "APP_ENV = \"devtop\"");
        assert_ne!(renamed, CONFIG);
        let envs = Environments::parse(&renamed).unwrap();
        assert_eq!(envs.resolve("devtop").unwrap().location, Location::Local);
        assert!(envs.resolve("local").is_err());
        for (edit, section) in [
            (
                renamed.replace("APP_ENV = \"staging\"", "APP_ENV = \"local\""),
                "[env.preview]",
            ),
            (
                renamed.replace("APP_ENV = \"staging\"", "APP_ENV = \"Local\""),
                "[env.preview]",
            ),
            (renamed.replace("env.preview", "env.local"), "[env.local]"),
            (renamed.replace("env.preview", "env.LOCAL"), "[env.LOCAL]"),
            (CONFIG.replace("env.preview", "env.local"), "[env.local]"),
        ] {
            let err = format!("{:#}", Environments::parse(&edit).unwrap_err());
            assert!(
                err.contains(section)
                    && err.contains("`local` is the top level's name")
                    && err.contains("Rename"),
                "{section}: {err}"
            );
        }
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
    const JSONC: &str = r#"
        // Created by `npm create cloudflare`.
        {
          "name": "qbtime",
          /* local development */
          "vars": { "APP_ENV": "local" },
          "d1_databases": [
            { "binding": "DB", "database_name": "qbtime_db_local", "database_id": "local-id", },
          ],
          "env": {
            "preview": {
              "vars": { "APP_ENV": "staging" },
              "d1_databases": [
                { "binding": "DB", "database_name": "qbtime_db_staging", "database_id": "staging-id" }
              ]
            },
            "production": {
              "vars": { "APP_ENV": "prod" },
              "d1_databases": [
                { "binding": "DB", "database_name": "qbtime_db_prod", "database_id": "prod-id" }
              ],
            },
          },
        }
    "#;

    #[test]
    fn jsonc_with_comments_and_trailing_commas_means_what_the_toml_means() {
        let from_jsonc = Environments::parse_as(JSONC, Format::Jsonc).unwrap();
        let from_toml = Environments::parse(CONFIG).unwrap();
        for word in ["prod", "production", "staging", "preview", "local"] {
            let (a, b) = (
                from_jsonc.resolve(word).unwrap(),
                from_toml.resolve(word).unwrap(),
            );
            assert_eq!(
                (&a.name, &a.database_name, &a.database_id, a.location),
                (&b.name, &b.database_name, &b.database_id, b.location),
                "{word}"
            );
        }
        assert!(from_jsonc.resolve("prod").unwrap().is_production());
    }

    #[test]
    fn jsonc_gets_the_same_refusals_and_nothing_looser_than_wrangler_reads() {
        let shared = JSONC.replace("qbtime_db_staging", "qbtime_db_prod");
        let err = format!(
            "{:#}",
            Environments::parse_as(&shared, Format::Jsonc).unwrap_err()
        );
        assert!(
            err.contains("both use database_name qbtime_db_prod"),
            "{err}"
        );
        for loose in [
            JSONC.replace("\"name\": \"qbtime\"", "name: \"qbtime\""),
            JSONC.replace("\"qbtime\"", "'qbtime'"),
        ] {
            let err = Environments::parse_as(&loose, Format::Jsonc)
                .unwrap_err()
                .to_string();
            assert!(err.contains("not valid JSONC"), "{err}");
        }
        assert!(Format::of(Path::new("wrangler.yaml")).is_err());
        assert_eq!(
            Format::of(Path::new("a/wrangler.jsonc")).unwrap(),
            Format::Jsonc
        );
        assert_eq!(
            Format::of(Path::new("wrangler.json")).unwrap(),
            Format::Jsonc
        );
    }

    #[test]
    fn two_configuration_files_in_one_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(config_in(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("wrangler.jsonc"), "{}").unwrap();
        assert_eq!(
            config_in(dir.path()).unwrap(),
            Some(dir.path().join("wrangler.jsonc"))
        );
        std::fs::write(dir.path().join("wrangler.toml"), "").unwrap();
        let err = config_in(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("wrangler.jsonc and wrangler.toml") && err.contains("--config"),
            "{err}"
        );
    }

    const TWO: &str = r#"
        [[d1_databases]]
        binding = "DB"
        database_name = "app_local"
        database_id = "l1"
        [[d1_databases]]
        binding = "ANALYTICS"
        database_name = "analytics_local"
        database_id = "l2"
        migrations_dir = "migrations-analytics"
        [env.production.vars]
        APP_ENV = "prod"
        [[env.production.d1_databases]]
        binding = "DB"
        database_name = "app_prod"
        database_id = "p1"
        [[env.production.d1_databases]]
        binding = "ANALYTICS"
        database_name = "analytics_prod"
        database_id = "p2"
        [[env.preview.d1_databases]]
        binding = "DB"
        database_name = "app_staging"
        database_id = "s1"
    "#;

    #[test]
    fn an_environment_with_two_databases_names_each_and_needs_a_pick() {
        let envs = Environments::parse(TWO).unwrap();
        let err = envs.resolve("prod").unwrap_err().to_string();
        assert!(err.contains("`prod` has 2 D1 databases"), "{err}");
        assert!(
            err.contains("prod.app_prod (binding DB)")
                && err.contains("prod.analytics_prod (binding ANALYTICS)"),
            "{err}"
        );
        let all: Vec<_> = envs.databases("production").unwrap();
        assert_eq!(
            all.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["prod.app_prod", "prod.analytics_prod"]
        );
        // A qualified name picks one; so does --database, by binding or name.
        let a = envs.resolve("prod.analytics_prod").unwrap();
        assert_eq!(
            (a.env_name.as_str(), a.database_id.as_str()),
            ("prod", "p2")
        );
        assert!(a.is_production());
        let picked = envs.clone().picking(Some("ANALYTICS".into()));
        assert_eq!(picked.resolve("prod").unwrap().database_id, "p2");
        assert_eq!(picked.resolve("local").unwrap().database_id, "l2");
        assert_eq!(
            picked.resolve("local").unwrap().migrations_dir,
            "migrations-analytics"
        );
        assert_eq!(picked.databases("prod").unwrap().len(), 1);
        let by_name = envs.clone().picking(Some("app_prod".into()));
        assert_eq!(by_name.resolve("prod").unwrap().database_id, "p1");
        // A pick that the environment lacks is refused, never ignored.
        let err = picked.resolve("preview").unwrap_err().to_string();
        assert!(
            err.contains("--database ANALYTICS") && err.contains("preview (binding DB)"),
            "{err}"
        );
        // An environment with one database keeps its plain name.
        assert_eq!(envs.resolve("preview").unwrap().name, "preview");
        assert_eq!(envs.env_name("prod.app_prod").unwrap(), "prod");
        assert_eq!(envs.env_name("production").unwrap(), "prod");
    }

    #[test]
    fn the_default_migrations_table_may_be_named() {
        let named = CONFIG.replace(
            "migrations_dir = \"migrations\"",
            "migrations_dir = \"migrations\"\nmigrations_table = \"d1_migrations\"",
        );
        assert_ne!(named, CONFIG);
        Environments::parse(&named).unwrap();
    }

    #[test]
    fn names_that_could_steer_a_path_or_repeat_in_one_environment_are_refused() {
        for (edit, needle) in [
            (
                CONFIG.replace("APP_ENV = \"prod\"", "APP_ENV = \"../../x\""),
                "vars.APP_ENV of [env.production]",
            ),
            (
                CONFIG.replace("\"qbtime_db_prod\"", "\"db/../../x\""),
                "the database_name of D1 database 1 in [env.production]",
            ),
            (
                CONFIG
                    .replace("[env.preview.vars]", "[\"env\".\"a b\".vars]")
                    .replace(
                        "[[env.preview.d1_databases]]",
                        "[[\"env\".\"a b\".d1_databases]]",
                    ),
                "a wrangler environment's name",
            ),
            (
                CONFIG.replace("binding = \"DB\"", "binding = \"D B\""),
                "a binding is a JavaScript identifier",
            ),
            (
                TWO.replace("binding = \"ANALYTICS\"", "binding = \"DB\""),
                "two D1 databases with the binding DB",
            ),
            // wrangler finds a database by name or binding, the first entry
            // that matches: analytics_prod would find app_prod, in either order.
            (
                TWO.replace(
                    "binding = \"DB\"\n        database_name = \"app_prod\"",
                    "binding = \"analytics_prod\"\n        database_name = \"app_prod\"",
                ),
                "the binding analytics_prod of D1 database app_prod is the name of D1 database \
                 analytics_prod",
            ),
            (
                TWO.replace(
                    "binding = \"ANALYTICS\"\n        database_name = \"analytics_prod\"",
                    "binding = \"APP_PROD\"\n        database_name = \"analytics_prod\"",
                ),
                "the binding APP_PROD of D1 database analytics_prod is the name of D1 database \
                 app_prod",
            ),
            // Settings that make wrangler apply or record migrations other
            // than the ones this tool plans and checks.
            (
                CONFIG.replace(
                    "migrations_dir = \"migrations\"",
                    "migrations_dir = \"migrations\"\nmigrations_table = \"custom\"",
                ),
                "sets migrations_table = \"custom\"",
            ),
            (
                CONFIG.replace(
                    "migrations_dir = \"migrations\"",
                    "migrations_dir = \"migrations\"\nmigrations_pattern = \"migrations/**/*.sql\"",
                ),
                "sets migrations_pattern",
            ),
            (
                CONFIG.replace(
                    "migrations_dir = \"migrations\"",
                    "migrations_dir = \"migrations\"\ndatabase_internal_env = \"x\"",
                ),
                "sets database_internal_env",
            ),
            // Whitespace is not trimmed away before the check: a newline
            // would reach file names and forge a line of a plan.
            (
                CONFIG.replace("\"qbtime_db_prod\"", "\"qbtime_db_prod\\n\""),
                "the database_name of D1 database 1 in [env.production]",
            ),
            // wrangler applies what migrations_dir holds, past the gate.
            (
                CONFIG.replace(
                    "migrations_dir = \"migrations\"",
                    "migrations_dir = \"../elsewhere\"",
                ),
                "the migrations_dir of D1 database 1 in the top level",
            ),
            (
                CONFIG.replace(
                    "migrations_dir = \"migrations\"",
                    "migrations_dir = \"/tmp/x\"",
                ),
                "the migrations_dir of D1 database 1 in the top level",
            ),
        ] {
            let err = format!("{:#}", Environments::parse(&edit).unwrap_err());
            assert!(err.contains(needle), "{needle}: {err}");
        }
        for dir in ["./migrations", "db/migrations"] {
            let edit = CONFIG.replace(
                "migrations_dir = \"migrations\"",
                &format!("migrations_dir = \"{dir}\""),
            );
            Environments::parse(&edit).unwrap();
        }
    }

    #[test]
    fn the_local_file_is_keyed_as_wrangler_keys_it() {
        let envs = Environments::parse(
            r#"
            [[d1_databases]]
            binding = "DB"
            database_name = "a"
            database_id = "real-id"
            preview_database_id = "preview-id"
            [[env.preview.d1_databases]]
            binding = "STAGE"
            database_name = "b"
            "#,
        )
        .unwrap();
        // preview_database_id ?? database_id ?? binding
        assert_eq!(envs.resolve("local").unwrap().local_id, "preview-id");
        assert_eq!(envs.resolve("local").unwrap().database_id, "real-id");
        assert_eq!(envs.resolve("preview").unwrap().local_id, "STAGE");
    }

    /// What `wrangler pages deploy` publishes must be a directory of the
    /// checkout: never `.` (the checkout, backups and all), nor one
    /// outside it.
    #[test]
    fn the_pages_output_dir_is_a_directory_inside_the_checkout() {
        let with = |line: &str| Environments::parse(&format!("{line}\n{CONFIG}")).unwrap();
        assert_eq!(with("").pages_output_dir().unwrap(), None);
        for good in ["dist", "./dist", "public/build"] {
            let envs = with(&format!("pages_build_output_dir = {good:?}"));
            assert_eq!(envs.pages_output_dir().unwrap(), Some(good));
        }
        for bad in [
            "\".\"",
            "\"./\"",
            "\"\"",
            "\"/srv/www\"",
            "\"../x\"",
            "\"dist/..\"",
            "5",
        ] {
            let envs = with(&format!("pages_build_output_dir = {bad}"));
            let e = envs.pages_output_dir().unwrap_err();
            assert_eq!(
                crate::exit::Exit::of(&e),
                Some(crate::exit::Exit::CouldNotRun),
                "{bad}"
            );
        }
    }
}
