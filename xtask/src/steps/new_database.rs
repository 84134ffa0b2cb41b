//! `restore <backup> --to new:NAME`: the brand-new D1 database a restore
//! creates, so that a backup can be inspected or brought up beside the live
//! database without touching it.
//!
//! The name is checked against D1's rule and the configuration, and then
//! against the account (`wrangler d1 list`), before the plan is printed:
//! a name in use is refused and nothing is created. The database is
//! created with `wrangler d1 create`, run with a private temporary
//! configuration, so that wrangler can never edit the project's; its id is
//! read from `d1 list --json` and written into that private configuration,
//! which every later command of the restore uses, so that wrangler finds
//! the database by id. The project's configuration is never edited: the
//! binding is printed for the operator to add. A restore that fails after
//! the database was created leaves it in place and says how to delete it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::environment::{Environment, Environments, Format, check_new_database_name};
use crate::edge::wrangler::{Commands, EnvAccount, Invocation, PrivateDir, Wrangler};

/// The location hints `wrangler d1 create --location` accepts.
pub const LOCATION_HINTS: [&str; 6] = ["weur", "eeur", "apac", "oc", "wnam", "enam"];

/// A database `restore --to new:NAME` is about to create, or has created.
pub struct NewDatabase {
    /// The target as the restore sees it; its id is set once created.
    pub target: Environment,
    pub location: Option<String>,
    /// Commands against the private configuration.
    pub cmds: Commands,
    config: PathBuf,
    /// The migrations directory `migrations apply` takes, by its absolute
    /// path: wrangler resolves a relative one (and the default,
    /// `migrations`) against the private configuration's directory, where
    /// there is none, and `migrations apply` stops with "No migrations
    /// present at …".
    migrations_dir: Option<PathBuf>,
    /// Whether `wrangler d1 create` was run (it may have created the
    /// database even when it failed).
    attempted: bool,
    /// How an operator deletes it: the project's configuration and the
    /// environment whose account it is in, since wrangler takes a
    /// configuration's `account_id` before `CLOUDFLARE_ACCOUNT_ID`.
    delete: Invocation,
    /// How an operator runs `PRAGMA optimize` on it once restored, in the
    /// same account.
    optimize: Invocation,
    /// When no configuration names the account, wrangler creates the
    /// database in `CLOUDFLARE_ACCOUNT_ID`'s (or `CF_ACCOUNT_ID`'s, read
    /// as wrangler reads it; or the token's only one): the advice pins that
    /// id, so that it is not pasted into a shell set for another account.
    delete_in: Option<EnvAccount>,
    _dir: PrivateDir,
}

/// The database name in `--to new:NAME`, if that is what `to` says.
pub fn named_in(to: &str) -> Option<&str> {
    to.strip_prefix("new:")
}

impl NewDatabase {
    /// For `--to new:NAME`; `None` for any other target. Refuses (before
    /// anything runs) a name D1 would refuse, and a name the configuration
    /// already uses.
    pub fn from_target(
        envs: &Environments,
        project: &Commands,
        to: &str,
        account_of: Option<&str>,
        location: Option<&str>,
    ) -> Result<Option<NewDatabase>> {
        let Some(name) = named_in(to) else {
            return Ok(None);
        };
        check_new_database_name(name)?;
        if let Some(env) = envs.using_database_name(name) {
            crate::stop!(
                crate::exit::Exit::Refused,
                "refusing to create {name}: the configuration already uses that name for `{}`, \
                 which exists. A new database needs a name of its own. Nothing was created.",
                env.name
            );
        }
        if let Some(env) = envs.using_binding(name) {
            crate::stop!(
                crate::exit::Exit::Refused,
                "refusing to create {name}: the configuration binds {} (`{}`) as `{}`, and \
                 wrangler looks a database name up by binding first, so a later `npx wrangler \
                 d1 … {name}` in this project would act on {} instead. Pick another name for \
                 new:. Nothing was created.",
                env.database_name,
                env.name,
                env.binding,
                env.database_name
            );
        }
        let account = envs.account_for_new(account_of)?;
        let target = Environment::new_database(name, account.and_then(|e| e.account_id.clone()));
        let named_by = account.filter(|e| e.account_id.is_some());
        let wrangler_env = named_by.and_then(|e| e.wrangler_env.as_deref());
        let delete = project.d1_delete(name, wrangler_env);
        let optimize = project.optimize_by_name(name, wrangler_env);
        let delete_in = match named_by {
            Some(_) => None,
            None => crate::edge::wrangler::env_account(),
        };
        let dir = PrivateDir::create("new-database")?;
        let config = dir.path().join("wrangler.toml");
        let new = NewDatabase {
            cmds: Commands::new(&config),
            target,
            location: location.map(str::to_owned),
            config,
            migrations_dir: None,
            attempted: false,
            delete,
            optimize,
            delete_in,
            _dir: dir,
        };
        new.write_config()?;
        Ok(Some(new))
    }

    fn database_name(&self) -> &str {
        &self.target.database_name
    }

    fn write_config(&self) -> Result<()> {
        let id = Some(self.target.database_id.as_str()).filter(|id| !id.is_empty());
        let database = id.map(|id| (id, self.migrations_dir.as_deref()));
        std::fs::write(
            &self.config,
            private_config(
                self.database_name(),
                database,
                self.target.account_id.as_deref(),
            )?,
        )
        .with_context(|| format!("cannot write {}", self.config.display()))
    }

    /// The migrations the new database is judged by, and that `restore
    /// --clean` applies to it: the backup's database's directory. Named by
    /// its absolute path, in the target and the private configuration.
    fn migrate_from(&mut self, dir: &Path) -> Result<()> {
        let dir = std::path::absolute(dir)
            .with_context(|| format!("cannot make {} absolute", dir.display()))?;
        self.target.migrations_dir = dir
            .to_str()
            .with_context(|| {
                format!(
                    "the migrations directory {} is not UTF-8, which wrangler's configuration \
                     cannot name; nothing was created",
                    dir.display()
                )
            })?
            .to_owned();
        self.migrations_dir = Some(dir);
        self.write_config()
    }

    /// Refuses (exit 3) when the account already has a database of this
    /// name; read-only, so a dry run does it too. The refusal says when it
    /// was created, and how to delete it if it is what an earlier restore
    /// into it left: the tool cannot tell that from someone else's database
    /// of the same name, so it deletes nothing.
    pub fn ensure_absent(&self, wrangler: &Wrangler) -> Result<()> {
        let listed = wrangler.run_json(&self.cmds.d1_list())?;
        let Some(db) = listed_database(&listed, self.database_name()) else {
            return Ok(());
        };
        // The API's answer: shown escaped, as any name read from elsewhere.
        let id = d1_core::names::shown(db.get("uuid").and_then(|id| id.as_str()).unwrap_or("?"));
        let created = db
            .get("created_at")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.as_str()?).ok())
            .map(|t| {
                let t = t.with_timezone(&chrono::Utc);
                format!(", created {}", t.format("%Y-%m-%d %H:%M UTC"))
            })
            .unwrap_or_default();
        let name = self.database_name();
        crate::stop!(
            crate::exit::Exit::Refused,
            "refusing to create {name}: the account already has a D1 database of that name (id \
             {id}{created}). Pick another name for new:, or restore into the existing database \
             through an environment of the configuration. If it is what an earlier `restore \
             --to new:{name}` left when it was interrupted or failed (that run printed its id), \
             delete it with `{}` and run again. Nothing was created.",
            self.delete_command()
        );
    }

    /// Creates the database and returns the target with its id and the
    /// migrations directory it is judged by ([`NewDatabase::migrate_from`]).
    pub fn create(&mut self, wrangler: &Wrangler, migrations_dir: &Path) -> Result<Environment> {
        self.migrate_from(migrations_dir)?;
        crate::say!("Creating the D1 database {}.", self.database_name());
        self.attempted = true;
        // Interrupted from here on, the database may stay: the operator is
        // told so, and how to delete it, not that the next run starts clean.
        self.tell_if_interrupted();
        wrangler.run(
            &self
                .cmds
                .d1_create(self.database_name(), self.location.as_deref()),
        )?;
        let listed = wrangler.run_json(&self.cmds.d1_list())?;
        let id = uuid_of(&listed, self.database_name()).with_context(|| {
            format!(
                "wrangler created {}, but `wrangler d1 list` does not show it",
                self.database_name()
            )
        })?;
        self.target.database_id = id;
        self.tell_if_interrupted();
        // From here on wrangler finds the database by its id.
        self.write_config()?;
        crate::say!(
            "Created {} (id {}).",
            self.database_name(),
            self.target.database_id
        );
        Ok(self.target.clone())
    }

    /// Records [`NewDatabase::left_in_place`] as what an interrupt leaves.
    fn tell_if_interrupted(&self) {
        if let Some(left) = self.left_in_place() {
            crate::edge::signals::changed(left);
        }
    }

    /// The command that deletes the new database, in its account.
    fn delete_command(&self) -> String {
        self.in_its_account(&self.delete)
    }

    /// The command that runs `PRAGMA optimize` on the new database.
    pub fn optimize_command(&self) -> String {
        self.in_its_account(&self.optimize)
    }

    /// The account wrangler takes from the environment, when no
    /// configuration names one: the one the database is created in.
    pub fn account_from_env(&self) -> Option<&EnvAccount> {
        self.delete_in.as_ref()
    }

    /// `command`, with the account it must run in pinned when no
    /// configuration names it.
    fn in_its_account(&self, command: &Invocation) -> String {
        // `CLOUDFLARE_ACCOUNT_ID` even for an id read as `CF_ACCOUNT_ID`:
        // wrangler reads it before the older name.
        match &self.delete_in {
            Some(account) => format!("CLOUDFLARE_ACCOUNT_ID={} {command}", account.id),
            None => command.to_string(),
        }
    }

    /// What a failure after `create` must add: the database is left where
    /// it is, and how to delete it.
    pub fn left_in_place(&self) -> Option<String> {
        let name = self.database_name();
        let delete = self.delete_command();
        if !self.attempted {
            None
        } else if self.target.database_id.is_empty() {
            Some(format!(
                "creating the D1 database {name} failed, and it may exist all the same: \
                 `{delete}` deletes it if it does. Nothing was deleted"
            ))
        } else {
            Some(format!(
                "the new D1 database {name} (id {}) was left in place and nothing was deleted; \
                 inspect it, or delete it with `{delete}`",
                self.target.database_id
            ))
        }
    }
}

/// The private configuration wrangler is given: the account, if the
/// project's configuration names one, and the database once its id is
/// known, with the absolute migrations directory `migrations apply` takes.
/// The name and account are checked (letters, digits, `_`, `-`); the
/// directory is quoted as a TOML string (JSON's escapes are TOML's).
fn private_config(
    name: &str,
    database: Option<(&str, Option<&Path>)>,
    account: Option<&str>,
) -> Result<String> {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = String::from(
        "# Written by `cargo xtask restore --to new:`; removed when the restore ends.\n",
    );
    if let Some(account) = account {
        out.push_str(&format!("account_id = {}\n", quote(account)));
    }
    if let Some((id, migrations_dir)) = database {
        out.push_str(&format!(
            "\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = {}\ndatabase_id = {}\n",
            quote(name),
            quote(id)
        ));
        if let Some(dir) = migrations_dir {
            let dir = dir
                .to_str()
                .with_context(|| format!("{} is not UTF-8", dir.display()))?;
            out.push_str(&format!("migrations_dir = {}\n", quote(dir)));
        }
    }
    Ok(out)
}

/// The uuid of the database called `name` in `wrangler d1 list --json`.
fn uuid_of(listed: &serde_json::Value, name: &str) -> Option<String> {
    listed_database(listed, name).and_then(|db| db.get("uuid")?.as_str().map(str::to_owned))
}

/// The database `name` in `wrangler d1 list --json`'s answer.
fn listed_database<'a>(listed: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    listed
        .as_array()?
        .iter()
        .find(|db| db.get("name").and_then(|n| n.as_str()) == Some(name))
}

/// The binding an operator adds to the configuration to use the new
/// database, in the configuration's own format.
pub fn binding_snippet(
    format: Format,
    binding: &str,
    name: &str,
    id: &str,
    migrations_dir: &str,
) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    match format {
        Format::Toml => format!(
            "[[d1_databases]]\nbinding = {}\ndatabase_name = {}\ndatabase_id = {}\n\
             migrations_dir = {}",
            quote(binding),
            quote(name),
            quote(id),
            quote(migrations_dir)
        ),
        Format::Jsonc => format!(
            "\"d1_databases\": [\n  {{\n    \"binding\": {},\n    \"database_name\": {},\n    \
             \"database_id\": {},\n    \"migrations_dir\": {}\n  }}\n]",
            quote(binding),
            quote(name),
            quote(id),
            quote(migrations_dir)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = include_str!("../../../wrangler.toml");

    fn envs(text: &str) -> Environments {
        Environments::parse(text).unwrap()
    }

    fn project() -> Commands {
        Commands::new(std::path::Path::new("w.toml"))
    }

    /// The account `account_for_new` chose, and the environment it is
    /// named for.
    fn account(envs: &Environments, of: Option<&str>) -> (Option<String>, Option<String>) {
        let env = envs.account_for_new(of).unwrap().unwrap();
        (env.account_id.clone(), env.wrangler_env.clone())
    }

    #[test]
    fn only_names_d1_accepts_and_the_configuration_does_not_use_pass() {
        let envs = envs(CONFIG);
        for bad in [
            "Upper",
            "-dash",
            "_under",
            "a b",
            "a/b",
            "",
            "x.y",
            &"a".repeat(65),
        ] {
            let err =
                NewDatabase::from_target(&envs, &project(), &format!("new:{bad}"), None, None)
                    .err()
                    .unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert_eq!(
                crate::exit::Exit::of(&err),
                Some(crate::exit::Exit::CouldNotRun),
                "{err}"
            );
            assert!(err.to_string().contains("lower-case letters"), "{err}");
        }
        let err = NewDatabase::from_target(&envs, &project(), "new:qbtime_db_prod", None, None)
            .err()
            .unwrap();
        assert_eq!(
            crate::exit::Exit::of(&err),
            Some(crate::exit::Exit::Refused)
        );
        assert!(err.to_string().contains("for `prod`"), "{err}");
        // A name the configuration binds a database as: wrangler would
        // take `d1 delete db` (the advice after a failure) to mean it.
        let bound = CONFIG.replace("binding = \"DB\"", "binding = \"db\"");
        let err = NewDatabase::from_target(
            &Environments::parse(&bound).unwrap(),
            &project(),
            "new:db",
            None,
            None,
        )
        .err()
        .unwrap();
        assert_eq!(
            crate::exit::Exit::of(&err),
            Some(crate::exit::Exit::Refused)
        );
        assert!(err.to_string().contains("binds qbtime_db_"), "{err}");
        assert!(
            NewDatabase::from_target(&envs, &project(), "staging", None, None)
                .unwrap()
                .is_none()
        );
        let new = NewDatabase::from_target(
            &envs,
            &project(),
            "new:qbtime_db_restored-2",
            None,
            Some("weur"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(new.target.name, "new:qbtime_db_restored-2");
        assert!(new.target.is_new);
        assert_eq!(new.left_in_place(), None, "nothing was created yet");
    }

    #[test]
    fn a_new_database_is_not_production_whatever_its_name() {
        let env = Environment::new_database("qbtime_db_prod_copy", None);
        assert_eq!(env.production_reason(), None);
    }

    #[test]
    fn the_account_is_the_one_remote_environments_share_or_the_one_named() {
        let base = CONFIG.replace(
            "name = \"qbtime\"",
            "account_id = \"00000000000000000000000000000ac1\"",
        );
        assert_eq!(
            account(&envs(&base), None).0.as_deref(),
            Some("00000000000000000000000000000ac1")
        );
        assert_eq!(account(&envs(CONFIG), None).0, None);
        let split = base.replace(
            "[env.production.vars]",
            "[env.production]\naccount_id = \"00000000000000000000000000000ac2\"\n[env.production.vars]",
        );
        let err = envs(&split).account_for_new(None).unwrap_err().to_string();
        assert!(
            err.contains("prod: 00000000000000000000000000000ac2")
                && err.contains("staging: 00000000000000000000000000000ac1")
                && err.contains("--account-of"),
            "{err}"
        );
        assert_eq!(
            account(&envs(&split), Some("production")),
            (
                Some("00000000000000000000000000000ac2".to_owned()),
                Some("production".to_owned())
            )
        );
        let err = envs(&split)
            .account_for_new(Some("local"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("local D1"), "{err}");
        let hostile = CONFIG.replace("name = \"qbtime\"", "account_id = \"a\\\"\\nb\"");
        assert!(Environments::parse(&hostile).is_err());
    }

    #[test]
    fn the_advice_to_delete_a_database_left_in_place_names_its_account() {
        let split = CONFIG
            .replace("name = \"qbtime\"", "account_id = \"00000000000000000000000000000ac1\"")
            .replace(
                "[env.production.vars]",
                "[env.production]\naccount_id = \"00000000000000000000000000000ac2\"\n[env.production.vars]",
            );
        let envs = envs(&split);
        let mut new =
            NewDatabase::from_target(&envs, &project(), "new:db_x", Some("production"), None)
                .unwrap()
                .unwrap();
        new.attempted = true;
        // wrangler reads `account_id` from the configuration before
        // CLOUDFLARE_ACCOUNT_ID: the advice names the environment whose
        // account the database was created in.
        let delete = "`npx wrangler d1 delete db_x --config w.toml --env production`";
        assert_eq!(
            new.optimize_command(),
            "npx wrangler d1 execute db_x --config w.toml --env production --remote \
             --command 'PRAGMA optimize'"
        );
        let failed = new.left_in_place().unwrap();
        assert!(
            failed.contains(&format!("{delete} deletes it if it does")),
            "{failed}"
        );
        new.target.database_id = "u-1".to_owned();
        let left = new.left_in_place().unwrap();
        assert!(left.contains("db_x (id u-1) was left in place"), "{left}");
        assert!(
            left.ends_with(&format!("delete it with {delete}")),
            "{left}"
        );
    }

    #[test]
    fn with_no_account_configured_the_advice_pins_the_one_wrangler_used() {
        let mut new = NewDatabase::from_target(&envs(CONFIG), &project(), "new:db_x", None, None)
            .unwrap()
            .unwrap();
        new.attempted = true;
        // As read from CLOUDFLARE_ACCOUNT_ID when the restore began.
        new.delete_in = Some(EnvAccount {
            name: "CF_ACCOUNT_ID",
            id: "acct9".to_owned(),
        });
        let failed = new.left_in_place().unwrap();
        assert!(
            failed.contains("`CLOUDFLARE_ACCOUNT_ID=acct9 npx wrangler d1 delete db_x"),
            "{failed}"
        );
        // hlpDN: the advice to optimize it once restored, in that account too.
        assert_eq!(
            new.optimize_command(),
            "CLOUDFLARE_ACCOUNT_ID=acct9 npx wrangler d1 execute db_x --config w.toml --remote \
             --command 'PRAGMA optimize'"
        );
    }

    #[test]
    fn the_private_configuration_names_the_account_and_then_the_database() {
        let before = private_config("db_new", None, Some("acct")).unwrap();
        assert!(before.contains("account_id = \"acct\""), "{before}");
        assert!(!before.contains("d1_databases"), "{before}");
        let after = private_config("db_new", Some(("u-1", None)), None).unwrap();
        let envs = envs(&after);
        let local = envs.resolve("local").unwrap();
        assert_eq!(
            (local.database_name.as_str(), local.database_id.as_str()),
            ("db_new", "u-1")
        );
        // The migrations directory by its absolute path, quoted whatever
        // it holds.
        let dir = Path::new("/srv/my \"app\"/db/migrations");
        let clean = private_config("db_new", Some(("u-1", Some(dir))), None).unwrap();
        let parsed = toml::from_str::<toml::Table>(&clean).unwrap();
        assert_eq!(
            parsed["d1_databases"][0]["migrations_dir"].as_str(),
            dir.to_str()
        );
    }

    #[test]
    fn the_id_comes_from_the_list_by_exact_name() {
        let listed = serde_json::json!([
            {"uuid": "u-1", "name": "db_new-old"},
            {"uuid": "u-2", "name": "db_new"},
        ]);
        assert_eq!(uuid_of(&listed, "db_new").as_deref(), Some("u-2"));
        assert_eq!(uuid_of(&listed, "db"), None);
        assert_eq!(uuid_of(&serde_json::json!({}), "db"), None);
    }

    #[test]
    fn the_snippet_parses_as_the_configuration_it_is_for() {
        let toml = binding_snippet(Format::Toml, "DB", "db_new", "u-1", "migrations");
        let envs = Environments::parse(&toml).unwrap();
        assert_eq!(envs.resolve("local").unwrap().database_id, "u-1");
        let jsonc = binding_snippet(Format::Jsonc, "DB", "db_new", "u-1", "migrations");
        let envs = Environments::parse_as(&format!("{{{jsonc}}}"), Format::Jsonc).unwrap();
        let db = envs.resolve("local").unwrap();
        assert_eq!(
            (db.database_name.as_str(), db.database_id.as_str()),
            ("db_new", "u-1")
        );
    }
}
