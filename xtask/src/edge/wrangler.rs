//! Every wrangler invocation, built as data in one place, and the thin edge
//! that runs them.
//!
//! The functions that build an [`Invocation`] are pure, so a plan can be
//! printed (`--dry-run`) and asserted in tests without running anything.
//! [`Wrangler`] runs an invocation with the pinned wrangler from
//! `node_modules/.bin`, streams its output live through the [`Redactor`], and
//! points wrangler's own debug log at a private directory that is removed
//! afterwards, because wrangler logs the signed download URL there too.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::environment::{Environment, is_account_id};
use crate::redact::Redactor;
use d1_core::wording::shell_word;

/// One wrangler command line, and why we run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub purpose: String,
    pub args: Vec<OsString>,
}

impl fmt::Display for Invocation {
    /// Shell-quoted, as an operator could paste it in the repository: `npx`
    /// runs the pinned wrangler from `node_modules` (a `wrangler` on PATH
    /// may be another version, or none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("npx wrangler")?;
        for arg in &self.args {
            write!(f, " {}", shell_word(&arg.to_string_lossy()))?;
        }
        Ok(())
    }
}

impl Invocation {
    /// The D1 database a `d1` invocation acts on: the word before
    /// `--config` (see `Commands::d1`).
    pub fn database(&self) -> Option<String> {
        if self.args.first().is_none_or(|a| a != "d1") {
            return None;
        }
        // `d1 <verb> [<verb>] DATABASE --config`: at least the third word,
        // and not a flag (`d1 list --json --config` names none).
        let config = self.args.iter().position(|a| a == "--config")?;
        let word = self.args.get(config.checked_sub(1).filter(|&i| i >= 2)?)?;
        let word = word.to_string_lossy();
        (!word.starts_with('-')).then(|| word.into_owned())
    }

    /// Whether this is `d1 execute --remote --file`: D1's import, which D1
    /// goes on with once wrangler has handed it the file.
    pub fn is_remote_import(&self) -> bool {
        let has = |word: &str| self.args.iter().any(|a| a == word);
        self.args.first().is_some_and(|a| a == "d1")
            && has("execute")
            && has("--remote")
            && has("--file")
    }

    /// Whether this runs against the local D1 (`--local`).
    pub fn is_local(&self) -> bool {
        self.args.iter().any(|a| a == "--local")
    }

    /// As `Display`, less `--config` and its path: for a command run with
    /// a private configuration that is gone when the run ends, which a
    /// pasted command could not find.
    pub fn without_config(&self) -> String {
        let mut shown = Invocation {
            purpose: self.purpose.clone(),
            args: Vec::new(),
        };
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            match arg.to_str() {
                Some("--config") => {
                    args.next();
                }
                _ => shown.args.push(arg.clone()),
            }
        }
        shown.to_string()
    }
}

/// What a restored database is advised to run: D1 keeps no statistics
/// an export carries (`sqlite_stat1` is reserved).
pub const OPTIMIZE: &str = "PRAGMA optimize";

/// What narrows an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportMode {
    Full,
    SchemaOnly,
    DataOnly,
}

/// Builds invocations against one wrangler configuration file.
#[derive(Debug, Clone)]
pub struct Commands {
    config: PathBuf,
}

impl Commands {
    pub fn new(config: &Path) -> Commands {
        Commands {
            config: config.to_path_buf(),
        }
    }

    /// `d1 <subcommand> <database> --config C [--env E] --local|--remote`.
    fn d1(&self, subcommand: &[&str], env: &Environment, located: bool) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["d1".into()];
        args.extend(subcommand.iter().map(OsString::from));
        args.push(env.database_name.clone().into());
        args.push("--config".into());
        args.push(self.config.clone().into());
        if let Some(wrangler_env) = &env.wrangler_env {
            args.push("--env".into());
            args.push(wrangler_env.into());
        }
        if located {
            args.push(env.location.flag().into());
        }
        args
    }

    /// `wrangler d1 export` into `output`, always with `-y`: wrangler would
    /// otherwise answer its own prompt when stdin is not a terminal.
    pub fn export(
        &self,
        env: &Environment,
        output: &Path,
        mode: ExportMode,
        tables: &[String],
    ) -> Invocation {
        let mut args = self.d1(&["export"], env, true);
        args.push("--output".into());
        args.push(output.into());
        match mode {
            ExportMode::Full => {}
            ExportMode::SchemaOnly => args.push("--no-data".into()),
            ExportMode::DataOnly => args.push("--no-schema".into()),
        }
        // `--table=NAME`, one argument: wrangler's parser reads a separate
        // value that starts with `-` (a table called `-x`) as a flag. After
        // `=` it strips one pair of quotes around the value (a table called
        // `"q"` would be exported as `q`), so such a name gets one more pair.
        for table in tables {
            let first = table.chars().next();
            let quoted = matches!(first, Some('"' | '\'')) && table.chars().last() == first;
            args.push(
                match quoted {
                    true => format!("--table=\"{table}\""),
                    false => format!("--table={table}"),
                }
                .into(),
            );
        }
        args.push("-y".into());
        Invocation {
            purpose: format!("export {} ({})", env.database_name, env.location),
            args,
        }
    }

    /// A read-only query whose result comes back as JSON.
    pub fn query_json(&self, env: &Environment, purpose: &str, sql: &str) -> Invocation {
        let mut args = self.d1(&["execute"], env, true);
        args.extend(["--command".into(), sql.into(), "--json".into()]);
        Invocation {
            purpose: purpose.to_owned(),
            args,
        }
    }

    /// Runs a SQL file, which D1 applies all-or-nothing; `--yes` because
    /// wrangler would otherwise answer its own prompt.
    pub fn execute_file(&self, env: &Environment, file: &Path) -> Invocation {
        let mut args = self.d1(&["execute"], env, true);
        args.extend(["--file".into(), file.into(), "--yes".into()]);
        Invocation {
            purpose: format!("load a file into {} ({})", env.database_name, env.location),
            args,
        }
    }

    /// The current Time Travel bookmark of a remote database.
    pub fn time_travel_info(&self, env: &Environment) -> Invocation {
        let mut args = self.d1(&["time-travel", "info"], env, false);
        args.push("--json".into());
        Invocation {
            purpose: format!("record the Time Travel bookmark of {}", env.database_name),
            args,
        }
    }

    /// The Time Travel bookmark of a remote database at an RFC 3339 time.
    pub fn time_travel_info_at(&self, env: &Environment, timestamp: &str) -> Invocation {
        let mut args = self.d1(&["time-travel", "info"], env, false);
        args.extend(["--timestamp".into(), timestamp.into(), "--json".into()]);
        Invocation {
            purpose: format!(
                "find the Time Travel bookmark of {} at {timestamp}",
                env.database_name
            ),
            args,
        }
    }

    /// Restores a remote database to a bookmark. `--json` makes wrangler
    /// restore without a prompt of its own: the confirmation is ours.
    pub fn time_travel_restore(&self, env: &Environment, bookmark: &str) -> Invocation {
        let mut args = self.d1(&["time-travel", "restore"], env, false);
        args.extend(["--bookmark".into(), bookmark.into(), "--json".into()]);
        Invocation {
            purpose: format!(
                "restore {} to Time Travel bookmark {bookmark}",
                env.database_name
            ),
            args,
        }
    }

    /// `r2 object <verb> <bucket>/<key> --file F --remote`: R2 commands
    /// default to a local simulator, so `--remote` is always given.
    fn r2_object(&self, verb: &str, bucket: &str, key: &str, file: &Path) -> Vec<OsString> {
        vec![
            "r2".into(),
            "object".into(),
            verb.into(),
            format!("{bucket}/{key}").into(),
            "--file".into(),
            file.into(),
            "--remote".into(),
            "--config".into(),
            self.config.clone().into(),
        ]
    }

    /// Uploads a file to R2 (one request: wrangler refuses files over 300 MiB).
    pub fn r2_put(&self, bucket: &str, key: &str, file: &Path) -> Invocation {
        Invocation {
            // The key names what goes up; the file may be a staged copy
            // that is gone by the time the line is read.
            purpose: format!("upload r2://{bucket}/{key}"),
            args: self.r2_object("put", bucket, key, file),
        }
    }

    /// Downloads an R2 object into a file.
    pub fn r2_get(&self, bucket: &str, key: &str, file: &Path) -> Invocation {
        Invocation {
            purpose: format!("download r2://{bucket}/{key}"),
            args: self.r2_object("get", bucket, key, file),
        }
    }

    fn r2_lifecycle(&self, verb: &str, bucket: &str) -> Vec<OsString> {
        vec![
            "r2".into(),
            "bucket".into(),
            "lifecycle".into(),
            verb.into(),
            bucket.into(),
            "--config".into(),
            self.config.clone().into(),
        ]
    }

    /// The bucket's lifecycle rules, as wrangler prints them.
    pub fn r2_lifecycle_list(&self, bucket: &str) -> Invocation {
        Invocation {
            purpose: format!("read the lifecycle rules of R2 bucket {bucket} (read-only)"),
            args: self.r2_lifecycle("list", bucket),
        }
    }

    /// Removes one lifecycle rule.
    pub fn r2_lifecycle_remove(&self, bucket: &str, rule: &str) -> Invocation {
        let mut args = self.r2_lifecycle("remove", bucket);
        args.extend(["--name".into(), rule.into()]);
        Invocation {
            purpose: format!("remove lifecycle rule {rule} from R2 bucket {bucket}"),
            args,
        }
    }

    /// Adds a rule that deletes objects under `prefix` `days` after upload.
    /// `--force` skips wrangler's own prompt: the confirmation is ours.
    pub fn r2_lifecycle_add(
        &self,
        bucket: &str,
        rule: &str,
        prefix: &str,
        days: i64,
    ) -> Invocation {
        let mut args = self.r2_lifecycle("add", bucket);
        args.extend([
            rule.into(),
            prefix.into(),
            "--expire-days".into(),
            days.to_string().into(),
            "--force".into(),
        ]);
        Invocation {
            purpose: format!(
                "make R2 delete objects under {prefix} in {bucket} {days} days after upload"
            ),
            args,
        }
    }

    /// Deploys the Pages project (the configuration's
    /// `pages_build_output_dir`, read by wrangler in the repository) from
    /// `branch`: the production branch serves production, any other a
    /// preview.
    pub fn pages_deploy(&self, branch: &str) -> Invocation {
        Invocation {
            purpose: format!("deploy the Pages project from branch {branch}"),
            args: vec![
                "pages".into(),
                "deploy".into(),
                "--branch".into(),
                branch.into(),
            ],
        }
    }

    fn r2_lock(&self, verb: &str, bucket: &str) -> Vec<OsString> {
        let mut args = self.r2_lifecycle(verb, bucket);
        args[2] = "lock".into();
        args
    }

    /// The bucket's lock rules, as wrangler prints them.
    pub fn r2_lock_list(&self, bucket: &str) -> Invocation {
        Invocation {
            purpose: format!("read the lock rules of R2 bucket {bucket} (read-only)"),
            args: self.r2_lock("list", bucket),
        }
    }

    /// Adds a lock rule that keeps objects under `prefix` from being deleted
    /// or overwritten until they are `days` old. `--force` skips wrangler's
    /// own prompts: the confirmation is ours.
    pub fn r2_lock_add(&self, bucket: &str, rule: &str, prefix: &str, days: i64) -> Invocation {
        let mut args = self.r2_lock("add", bucket);
        args.extend([
            rule.into(),
            prefix.into(),
            "--retention-days".into(),
            days.to_string().into(),
            "--force".into(),
        ]);
        Invocation {
            purpose: format!(
                "lock objects under {prefix} in {bucket} against deletion and overwriting for \
                 {days} days after upload"
            ),
            args,
        }
    }

    /// Removes one lock rule.
    pub fn r2_lock_remove(&self, bucket: &str, rule: &str) -> Invocation {
        let mut args = self.r2_lock("remove", bucket);
        args.extend(["--name".into(), rule.into()]);
        Invocation {
            purpose: format!("remove lock rule {rule} from R2 bucket {bucket}"),
            args,
        }
    }

    /// Every D1 database in the account, as JSON (read-only).
    pub fn d1_list(&self) -> Invocation {
        Invocation {
            purpose: "list the account's D1 databases (read-only)".to_owned(),
            args: vec![
                "d1".into(),
                "list".into(),
                "--json".into(),
                "--config".into(),
                self.config.clone().into(),
            ],
        }
    }

    /// Every D1 database in the account of `env` (its wrangler
    /// environment's `account_id`), as JSON (read-only).
    pub fn d1_list_of(&self, env: &Environment) -> Invocation {
        let mut list = self.d1_list();
        if let Some(wrangler_env) = &env.wrangler_env {
            list.args.extend(["--env".into(), wrangler_env.into()]);
        }
        list.purpose = format!(
            "check that {}'s database_id names the database {} (read-only)",
            env.name, env.database_name
        );
        list
    }

    /// Creates a D1 database, with a primary location hint if given. The
    /// configuration is the private one `restore --to new:` writes: wrangler
    /// may offer to add the new binding to the configuration it is given.
    pub fn d1_create(&self, name: &str, location: Option<&str>) -> Invocation {
        let mut args: Vec<OsString> = vec![
            "d1".into(),
            "create".into(),
            name.into(),
            "--config".into(),
            self.config.clone().into(),
        ];
        if let Some(hint) = location {
            args.extend(["--location".into(), hint.into()]);
        }
        Invocation {
            purpose: format!("create the D1 database {name}"),
            args,
        }
    }

    /// Deletes the D1 database `name` in the account of the wrangler
    /// environment `env` (the top level's without one). Never run by the
    /// tool: printed for an operator, after `restore --to new:` failed.
    pub fn d1_delete(&self, name: &str, env: Option<&str>) -> Invocation {
        Invocation {
            purpose: format!("delete the D1 database {name}"),
            args: self.d1_by_name("delete", name, env),
        }
    }

    /// `d1 <verb> NAME --config C [--env E]`, for a database the
    /// configuration need not name (wrangler finds a remote one by name in
    /// the environment's account).
    fn d1_by_name(&self, verb: &str, name: &str, env: Option<&str>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "d1".into(),
            verb.into(),
            name.into(),
            "--config".into(),
            self.config.clone().into(),
        ];
        if let Some(env) = env {
            args.extend(["--env".into(), env.into()]);
        }
        args
    }

    /// `PRAGMA optimize` on `env`'s database: it runs ANALYZE where the
    /// planner needs it, filling `sqlite_stat1`, which no export carries.
    /// Never run by the tool: printed for an operator after a restore.
    pub fn optimize(&self, env: &Environment) -> Invocation {
        let mut args = self.d1(&["execute"], env, true);
        args.extend(["--command".into(), OPTIMIZE.into()]);
        Invocation {
            purpose: format!("optimize {} ({})", env.database_name, env.location),
            args,
        }
    }

    /// As [`Commands::optimize`], for the remote database `name` that no
    /// configuration names (`restore --to new:`), in the account of the
    /// wrangler environment `env`.
    pub fn optimize_by_name(&self, name: &str, env: Option<&str>) -> Invocation {
        let mut args = self.d1_by_name("execute", name, env);
        args.extend(["--remote".into(), "--command".into(), OPTIMIZE.into()]);
        Invocation {
            purpose: format!("optimize {name} (remote)"),
            args,
        }
    }

    /// Applies pending migrations.
    pub fn migrations_apply(&self, env: &Environment) -> Invocation {
        Invocation {
            purpose: format!(
                "apply migrations to {} ({})",
                env.database_name, env.location
            ),
            args: self.d1(&["migrations", "apply"], env, true),
        }
    }

    /// [`Commands::migrations_apply`] against a private configuration
    /// whose `migrations_dir` is elsewhere than the project's (a copy of
    /// the migrations to apply). wrangler keeps local D1 state beside the
    /// configuration it is given, so for a local database `--persist-to`
    /// names `state`, the project's (`.wrangler/state`): the same D1 file.
    pub fn migrations_apply_persisting(&self, env: &Environment, state: &Path) -> Invocation {
        let mut apply = self.migrations_apply(env);
        if env.location == crate::config::environment::Location::Local {
            apply.args.extend(["--persist-to".into(), state.into()]);
        }
        apply
    }
}

/// Runs invocations with the pinned wrangler.
#[derive(Debug, Clone)]
pub struct Wrangler {
    bin: PathBuf,
    bin_dir: PathBuf,
    cwd: PathBuf,
    redactor: Redactor,
    /// How long one invocation may run before it is stopped: wrangler polls
    /// a D1 export that never completes for ever.
    timeout: Duration,
    /// Runs beside another wrangler call, which alone shows its progress.
    background: bool,
    /// The most bytes any file wrangler writes may hold (`RLIMIT_FSIZE`):
    /// past it, its writes fail (Node ignores `SIGXFSZ`) and it stops.
    max_file: Option<u64>,
}

/// The default limit on one wrangler invocation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// The variable that changes it, in seconds.
pub const TIMEOUT_VAR: &str = "QBTIME_WRANGLER_TIMEOUT";

/// The longest limit `QBTIME_WRANGLER_TIMEOUT` may set, in seconds: a
/// week, far past any export D1's 10 GB takes, and a deadline that a clock
/// can still add without overflowing.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 60 * 60;

/// The whole number of seconds from 1 to `max` that a setting's `text`
/// says (spaces around it allowed), if it says one.
pub fn whole_seconds_within(text: &str, max: u64) -> Option<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=max).contains(s))
}

/// The limit on one wrangler invocation, from `QBTIME_WRANGLER_TIMEOUT`.
pub fn timeout_from(value: Option<&str>) -> Result<Duration> {
    match value {
        None => Ok(DEFAULT_TIMEOUT),
        Some(text) => whole_seconds_within(text, MAX_TIMEOUT_SECS)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                // Bad input (exit 2), as a malformed span or time is; `0`
                // or twenty digits are numbers, so the range is said.
                crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
                    "{TIMEOUT_VAR}={text:?} is not a number of seconds from 1 to \
                     {MAX_TIMEOUT_SECS} (a week); set it to, say, 7200, or unset it for the \
                     default of two hours"
                ))
            }),
    }
}

impl Wrangler {
    /// `bin_dir` is `node_modules/.bin`; `cwd` is the wrangler config's directory.
    pub fn new(bin_dir: &Path, cwd: &Path, redactor: Redactor) -> Wrangler {
        Wrangler {
            bin: bin_dir.join("wrangler"),
            bin_dir: bin_dir.to_path_buf(),
            cwd: cwd.to_path_buf(),
            redactor,
            timeout: DEFAULT_TIMEOUT,
            background: false,
            max_file: None,
        }
    }

    /// The same wrangler writing no file larger than `bytes`: an object
    /// read from a bucket (anyone's to write who holds its token) is then
    /// never downloaded further than the caller can take.
    pub fn writing_at_most(self, bytes: u64) -> Wrangler {
        Wrangler {
            max_file: Some(bytes),
            ..self
        }
    }

    /// The same wrangler with another limit per invocation.
    pub fn with_timeout(self, timeout: Duration) -> Wrangler {
        Wrangler { timeout, ..self }
    }

    /// The same wrangler for a call that runs on a thread of its own beside
    /// another: it shows no spinner of its own, so that the two do not
    /// draw over each other at a terminal.
    pub fn in_background(self) -> Wrangler {
        Wrangler {
            background: true,
            ..self
        }
    }

    fn command(&self, invocation: &Invocation, log_dir: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&invocation.args)
            // wrangler reads `.env` files in its directory into its
            // environment, where the real one sets nothing: a `.env` in the
            // checkout could name another API host, and wrangler would send
            // the token there. It reads this empty file instead.
            .args(["--env-file", "/dev/null"])
            .current_dir(&self.cwd)
            .env("PATH", path_with_first(&self.bin_dir))
            .env("WRANGLER_LOG_PATH", log_dir)
            .env("WRANGLER_SEND_METRICS", "false")
            // The banner costs a registry round trip per call to look for
            // updates; the plan already names the pinned version.
            .env("WRANGLER_HIDE_BANNER", "true")
            // An operator's `WRANGLER_LOG=debug` would interleave wrangler's
            // requests and responses (query results among them, unsanitized
            // with `WRANGLER_LOG_SANITIZE=false`) with the JSON this tool
            // reads, and every read would fail. Its level and sanitizing are
            // fixed here; the debug log goes to the private log directory.
            .env("WRANGLER_LOG", "log")
            .env("WRANGLER_LOG_SANITIZE", "true")
            .env("NODE_COMPILE_CACHE", node_compile_cache(&self.bin_dir))
            // wrangler takes `CLOUDFLARE_ENV` as `--env` when none is given,
            // as for the top level: a shell left with `CLOUDFLARE_ENV=preview`
            // would send a local command to another database than the
            // plan's. The environment is the one the command names.
            .env_remove("CLOUDFLARE_ENV")
            // These would have wrangler write a session file (its command
            // line, the private log directory's path) readable by all.
            .env_remove("WRANGLER_OUTPUT_FILE_DIRECTORY")
            .env_remove("WRANGLER_OUTPUT_FILE_PATH")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::edge::signals::shield(&mut cmd);
        if let Some(bytes) = self.max_file {
            limit_file_size(&mut cmd, bytes);
        }
        cmd
    }

    /// Runs an invocation; its output is kept (redacted) and shown only on
    /// failure or with `-v`, and a successful run says so in one line.
    /// Fails when wrangler exits non-zero.
    pub fn run(&self, invocation: &Invocation) -> Result<()> {
        self.run_watching(invocation, None)
    }

    /// [`Wrangler::run`], showing the size of `output` as it grows (an export).
    pub fn run_watching(&self, invocation: &Invocation, output: Option<&Path>) -> Result<()> {
        let started = std::time::Instant::now();
        self.spawn(invocation, Sink::Live, output)?;
        // With -v every call has said so already.
        if !crate::out::verbose() {
            crate::say!("  {}", took(invocation, started));
        }
        Ok(())
    }

    /// Runs an R2 read; `Ok(false)` when the object does not exist, which
    /// wrangler reports only as an error message. wrangler's output goes to
    /// standard error, so that a command's own output (`--json`) stays clean.
    /// Its lines are held until the answer is known, even with `-v`: an
    /// object that is not there yet (an environment's first offsite index)
    /// is an answer, not a failure, and wrangler's `✘ [ERROR] The
    /// specified key does not exist.` must not read as one.
    pub fn run_unless_missing(&self, invocation: &Invocation) -> Result<bool> {
        match self.spawn_as(invocation, Sink::Live, None, false) {
            Ok(_) => Ok(true),
            Err(e) if failed_saying(&e, "The specified key does not exist") => {
                crate::detail!("  wrangler: {}: not there (yet)", invocation.purpose);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// [`Wrangler::run_json`], but `Ok(None)` when D1 refused the query
    /// with an error that starts with `refusal` (a query of a table that
    /// may not exist yet: "no such table: d1_migrations:"), which costs one
    /// wrangler start instead of two for asking first. Only the error
    /// wrangler prints as JSON counts, and only from its start: wrangler
    /// quotes configuration values in its other errors, so text anywhere
    /// else could have been written by whoever wrote wrangler.toml.
    pub fn run_json_unless(
        &self,
        invocation: &Invocation,
        refusal: &str,
    ) -> Result<Option<serde_json::Value>> {
        match self.run_json(invocation) {
            Ok(json) => Ok(Some(json)),
            Err(e) if json_error_starts_with(&e, refusal) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs an invocation and returns what it printed on standard output;
    /// standard error is shown live (redacted).
    pub fn run_captured(&self, invocation: &Invocation) -> Result<String> {
        self.spawn(invocation, Sink::Capture, None)
    }

    /// Runs an invocation and parses its standard output as JSON; standard
    /// error is shown live (redacted).
    pub fn run_json(&self, invocation: &Invocation) -> Result<serde_json::Value> {
        let stdout = self.spawn(invocation, Sink::Capture, None)?;
        serde_json::from_str(&stdout).with_context(|| {
            format!(
                "wrangler did not print JSON for `{}`; it printed: {}",
                invocation.purpose,
                printed_on_failure(&self.redactor.line(stdout.trim())).unwrap_or_default()
            )
        })
    }

    fn spawn(&self, invocation: &Invocation, sink: Sink, output: Option<&Path>) -> Result<String> {
        self.spawn_as(invocation, sink, output, crate::out::verbose())
    }

    /// [`Wrangler::spawn`]; `live`: show wrangler's lines as they come
    /// (`-v`), else keep them for the error.
    fn spawn_as(
        &self,
        invocation: &Invocation,
        sink: Sink,
        output: Option<&Path>,
        live: bool,
    ) -> Result<String> {
        let started = std::time::Instant::now();
        crate::edge::signals::check()?;
        refuse_an_unsendable_token(invocation)?;
        let log_dir = PrivateDir::create("wrangler-logs")?;
        let mut child = self
            .command(invocation, log_dir.path())
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        crate::edge::lock::wrangler_started(child.id());
        let stderr = child.stderr.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let child = Arc::new(Mutex::new(child));
        let watchdog = Watchdog::start(Arc::clone(&child), self.timeout);
        // With -v wrangler's lines are the progress; otherwise a spinner.
        let activity = (!live && !self.background).then(|| {
            let label = format!("wrangler: {}", invocation.purpose);
            match output {
                Some(path) => crate::out::Activity::watching_file(label, path.to_path_buf()),
                None => crate::out::Activity::wrangler(label),
            }
        });
        let redactor = self.redactor.clone();
        let err_thread = std::thread::spawn(move || keep_lines(stderr, &redactor, live));
        let (captured, (said_on_stdout, stdout_read)) = match sink {
            Sink::Live => (String::new(), keep_lines(stdout, &self.redactor, live)),
            Sink::Capture => {
                let mut s = String::new();
                let read = BufReader::new(stdout).read_to_string(&mut s);
                (s, (Vec::new(), read.map(drop)))
            }
        };
        // Waited for even when its output could not be read: what it does
        // meanwhile (an import) is not to be left running unseen.
        let status = wait(&child)?;
        let (mut said, stderr_read) = err_thread.join().expect("stderr thread panicked");
        said.extend(said_on_stdout);
        drop(activity);
        let fired = watchdog.fired();
        if let Err(error) = stderr_read.and(stdout_read) {
            return Err(output_unread(invocation, status, said, error));
        }
        // A signal that came while wrangler ran stopped it, and the command
        // stops here; one that came as it finished its work leaves that
        // work done, and said so (a Time Travel restore D1 made is no
        // failure): the command stops at its next step.
        if let (false, Some(signal)) = (status.success(), crate::edge::signals::received()) {
            return Err(stopped(invocation, signal, said));
        }
        if fired {
            return Err(self.past_its_limit(invocation, said));
        }
        if !status.success() {
            return Err(self.failure(invocation, status, said, &captured, sink, live));
        }
        // Every call's time at -v, reads included (a backup's schema and
        // bookmark reads come before its export).
        crate::detail!("  {}", took(invocation, started));
        Ok(captured)
    }

    /// The error of a wrangler run this tool stopped at its limit on one
    /// run (`self.timeout`, [`TIMEOUT_VAR`]): said as this tool's own
    /// limit, with the variable that gives it longer.
    fn past_its_limit(&self, invocation: &Invocation, said: Vec<String>) -> anyhow::Error {
        // An import wrangler handed D1 goes on without it.
        let kept = match invocation.is_remote_import() {
            true => "D1 goes on with an import once it was handed the file",
            false => "Nothing was kept from it",
        };
        // Said as this tool's own limit, not Cloudflare's: a local D1
        // has no Cloudflare status to check.
        let otherwise = match invocation.is_local() {
            true => "otherwise see what else holds the machine or the local D1",
            false => "otherwise check Cloudflare's status",
        };
        anyhow::Error::new(Failed {
            message: format!(
                "wrangler did not finish within {secs} s while trying to {}, so this tool \
                 stopped it at its limit on one wrangler run ({TIMEOUT_VAR}, {secs} s). \
                 {kept}. If the database is large and this is expected, give it longer, \
                 SECONDS more than {secs}: {TIMEOUT_VAR}=SECONDS; {otherwise} and run this \
                 again.",
                invocation.purpose,
                secs = self.timeout.as_secs(),
            ),
            said,
            stdout: None,
            unread: false,
        })
    }

    /// The error of a wrangler run that failed (`status`): what it was
    /// trying to do, a hint for a failure known by what it printed (`said`
    /// on standard error, `captured` on standard output), and, unless its
    /// lines were shown `live`, its last lines.
    fn failure(
        &self,
        invocation: &Invocation,
        status: std::process::ExitStatus,
        said: Vec<String>,
        captured: &str,
        sink: Sink,
        live: bool,
    ) -> anyhow::Error {
        if said.iter().any(|l| l.contains(NO_CREDENTIALS)) || captured.contains(NO_CREDENTIALS) {
            return no_credentials(invocation);
        }
        let mut message = format!(
            "wrangler failed ({status}) while trying to {}",
            invocation.purpose
        );
        if said.iter().any(|l| l.contains("EMFILE")) || captured.contains("EMFILE") {
            message.push_str(&format!(
                ": it ran out of open files (EMFILE). The open-files limit is {}; wrangler \
                 and workerd need more: raise it (`ulimit -n 4096`) and run this again",
                open_files_limit()
            ));
        }
        let all_said = format!("{}\n{captured}", said.join("\n"));
        if let Some(hint) = known_failure(&all_said, &invocation.purpose) {
            message.push_str(": ");
            message.push_str(&hint);
        }
        // `--json` mode puts wrangler's error on stdout.
        let stdout =
            matches!(sink, Sink::Capture).then(|| self.redactor.line(captured.trim()).into_owned());
        if let Some(shown) = stdout.as_deref().and_then(printed_on_failure) {
            message.push_str(": ");
            message.push_str(&shown);
        }
        if !live {
            // What wrangler said, kept until now: the error is printed with it.
            message.push_str(&said_for_error(&said));
        }
        anyhow::Error::new(Failed {
            message,
            said,
            stdout,
            unread: false,
        })
    }
}

/// The error of a run wrangler refused for want of Cloudflare credentials:
/// what it was trying to do, of which database, and how to give them.
fn no_credentials(invocation: &Invocation) -> anyhow::Error {
    // A token under the older name that an empty current one hides is
    // what the operator meant to give: said, with its fix.
    let fix = match hidden_credential() {
        Some((note, fix)) => format!("{note}: {fix}"),
        None => "set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID) in the environment, or \
                 run `npx wrangler login` at a terminal"
            .to_owned(),
    };
    crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
        "wrangler has no Cloudflare credentials to {}{}: {fix}; `cargo xtask doctor` checks them",
        invocation.purpose,
        invocation
            .database()
            .filter(|db| !invocation.purpose.contains(db.as_str()))
            .map(|db| format!(" (of {db})"))
            .unwrap_or_default()
    ))
}

/// What marks each line wrangler printed that this tool passes on (in an
/// error's `wrangler said:`, and live with `-v`), as a rehearsal's lines
/// are marked: an API's error message is printed by wrangler over as many
/// lines as it holds line breaks, and unmarked, `boom<LF>warning: prod
/// backup deleted` printed a line that read as the tool's own (rvCL 2).
pub const RELAYED: &str = "  wrangler | ";

/// What wrangler `said` before it failed, for its error: its last lines,
/// each marked [`RELAYED`].
/// Its "Logs were written to" names a directory that is deleted when the
/// call returns. A trigger's message is left out, over as many lines as it
/// takes.
fn said_for_error(said: &[String]) -> String {
    let told = said.join("\n");
    let told = d1_core::gate::without_raise_messages(&told);
    let shown: Vec<&str> = told
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_log_path_line(l))
        .collect();
    let skip = shown.len().saturating_sub(SHOWN_ON_FAILURE);
    let mut message = String::new();
    if !shown.is_empty() {
        message.push_str("; wrangler said:");
        for line in &shown[skip..] {
            message.push('\n');
            message.push_str(RELAYED);
            message.push_str(line.trim_end());
        }
    }
    message
}

/// This process's open-files limit (`ulimit -n`), as a word.
fn open_files_limit() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur.to_string(),
        _ => "unknown".to_owned(),
    }
}

/// The error of a wrangler run that `signal` stopped: [`Interrupted`],
/// and for a remote import what wrangler had said by then ([`Failed`],
/// which [`said_by_failed`] reads): whether D1 may have been handed
/// the import, which goes on without wrangler.
///
/// [`Interrupted`]: crate::edge::signals::Interrupted
fn stopped(invocation: &Invocation, signal: i32, said: Vec<String>) -> anyhow::Error {
    let interrupted = crate::edge::signals::Interrupted(signal);
    if !invocation.is_remote_import() {
        return interrupted.into();
    }
    anyhow::Error::new(Failed {
        message: format!(
            "wrangler was stopped while trying to {}",
            invocation.purpose
        ),
        said,
        stdout: None,
        unread: false,
    })
    .context(interrupted)
}

/// The error of a wrangler run (ended with `status`) whose output could
/// not be read whole (`error`) after it printed `said`: what it did after
/// is not known, so none of it is read as what it did not do
/// ([`output_was_unread`]). A signal that stopped it is kept in the chain.
fn output_unread(
    invocation: &Invocation,
    status: std::process::ExitStatus,
    said: Vec<String>,
    error: std::io::Error,
) -> anyhow::Error {
    let failed = anyhow::Error::new(Failed {
        message: format!(
            "this tool could not read what wrangler printed while it tried to {} ({error}), \
             so what it did is not known; wrangler ended with {status}",
            invocation.purpose
        ),
        said,
        stdout: None,
        unread: true,
    });
    match crate::edge::signals::received() {
        Some(signal) => failed.context(crate::edge::signals::Interrupted(signal)),
        None => failed,
    }
}

/// What wrangler says, without a terminal, when it has no credentials.
const NO_CREDENTIALS: &str = "it's necessary to set a CLOUDFLARE_API_TOKEN environment variable";

/// `wrangler: <purpose> (1.2 s)`.
fn took(invocation: &Invocation, started: std::time::Instant) -> String {
    format!(
        "wrangler: {} ({:.1} s)",
        invocation.purpose,
        started.elapsed().as_secs_f64()
    )
}

/// wrangler exited non-zero; everything it said (stderr, then stdout
/// unless captured), redacted.
#[derive(Debug)]
struct Failed {
    message: String,
    said: Vec<String>,
    /// What wrangler printed on standard output when it was captured
    /// (`--json` puts its error there), redacted.
    stdout: Option<String>,
    /// Its output could not be read whole: `said` is what was read before
    /// that, and tells nothing of what it did after.
    unread: bool,
}

/// Whether the wrangler run that failed with `e` was refused by the
/// Cloudflare API: it printed the API's error answer (`A request to the
/// Cloudflare API (…) failed.`) whose error codes are all refusals of the
/// request itself, D1's 74xx (as HTTP's 4xx: a bad bookmark, a rate limit;
/// but 7408, a timeout) or 10000 (authentication). wrangler prints no HTTP
/// status; an internal error (7500), an answer it could not read (a 524's
/// HTML page), or none at all (a reset) is no refusal: the request may
/// have been carried out.
pub fn failed_refused_by_api(e: &anyhow::Error) -> bool {
    let refusal = |c: &u32| ((7400..7500).contains(c) && *c != 7408) || *c == 10000;
    api_error_codes(e).is_some_and(|codes| codes.iter().all(refusal))
}

/// Whether the wrangler run that failed with `e` was refused by the
/// Cloudflare API for its credentials alone: its API error answer's codes
/// are all 10000 ("Authentication error"), which Cloudflare answers
/// before the request reaches D1, so nothing it asked was carried out.
pub fn failed_for_its_credentials(e: &anyhow::Error) -> bool {
    api_error_codes(e).is_some_and(|codes| codes.iter().all(|c| *c == 10000))
}

/// R2's error code for a PUT over, or a DELETE of, an object a bucket
/// lock rule holds (S3's `ObjectLockedByBucketPolicy`, HTTP 403).
pub const R2_OBJECT_LOCKED: u64 = 10069;

/// Whether the wrangler run that failed with `e` was refused by R2
/// because a bucket lock rule holds the object: `r2 object put` prints
/// R2's answer (`{"success":false,"errors":[{"code":10069,…}]}`) on a line
/// of its own under its error. No retry gets past it until the object's
/// age passes the rule's retention.
pub fn failed_on_a_bucket_lock(e: &anyhow::Error) -> bool {
    said_by_failed(e).iter().any(|line| {
        serde_json::from_str::<serde_json::Value>(line.trim()).is_ok_and(|answer| {
            { answer["errors"].as_array().into_iter().flatten() }
                .any(|error| error["code"].as_u64() == Some(R2_OBJECT_LOCKED))
        })
    })
}

/// The Cloudflare API error codes the wrangler run that failed with `e`
/// printed (`[code: N]`) with the API's error answer (`A request to the
/// Cloudflare API (…) failed.`); none unless it printed both, and its
/// output was read whole.
fn api_error_codes(e: &anyhow::Error) -> Option<Vec<u32>> {
    let f = e.chain().find_map(|c| c.downcast_ref::<Failed>())?;
    if f.unread {
        return None;
    }
    let said: Vec<String> = { f.said.iter() }
        .map(|l| crate::out::strip_ansi(l).into_owned())
        .collect();
    if !said
        .iter()
        .any(|l| l.contains("A request to the Cloudflare API ("))
    {
        return None;
    }
    let codes: Vec<u32> = { said.iter() }
        .flat_map(|l| l.split("[code: ").skip(1))
        .filter_map(|rest| rest.split(']').next()?.trim().parse().ok())
        .collect();
    (!codes.is_empty()).then_some(codes)
}

/// Whether the remote import (`d1 execute --remote --file`) that failed
/// with `e` was told failed by D1 itself, from a poll D1 answered `status:
/// "error"` once the import was over and rolled back. wrangler then prints
/// the poll's `errors` as its error headline (`✘ [ERROR] …`) in an
/// `APIError`, whose notes end in its "If you think this is a bug, please
/// open an issue" ([`API_ERROR_NOTE`]): D1's error of a statement, ending
/// in SQLite's result code (`no such table: main.B: SQLITE_ERROR`), or one
/// of D1's own without a code (workers-sdk #7554: `Durable Object's
/// isolate exceeded its memory limit and was reset.`). A poll wrangler
/// lost (`A request to the Cloudflare API (…) failed.` for a 5xx, 429 or
/// 524, `Received a malformed response from the API`, `fetch failed` for a
/// reset, D1's refusal of the poll itself such as `Not currently importing
/// anything.`, wrangler stopped at its time limit) tells nothing of the
/// import's end: D1 may still be running it.
pub fn failed_import_reported_by_d1(e: &anyhow::Error) -> bool {
    let said = said_by_failed(e);
    let an_api_error = said.iter().any(|l| l.contains(API_ERROR_NOTE));
    said.iter().any(|line| {
        line.split_once("[ERROR]").is_some_and(|(_, message)| {
            let message = message.trim();
            let lost = WRANGLERS_OWN_HEADLINES
                .iter()
                .any(|p| message.starts_with(p));
            // A code of D1's state (SQLITE_FULL) is D1's report too.
            !lost && (sqlite_code_at_end(message).is_some() || an_api_error)
        })
    })
}

/// The fixed headlines of wrangler's own `APIError`s and `ParseError`s
/// (cli.js: a request that failed, an answer that was no JSON, a WAF block
/// page, an unverified email, `D1 reset before execute completed!`): they
/// carry [`API_ERROR_NOTE`] too, but tell of wrangler's exchange with the
/// API, not D1's word on the import.
const WRANGLERS_OWN_HEADLINES: &[&str] = &[
    "A request to the Cloudflare API",
    "Received a malformed response",
    "The Cloudflare API responded with a WAF block page",
    "Please verify your account's email address",
    "D1 reset before execute completed",
];

/// The note wrangler adds to an error of its `APIError` kind (a poll's
/// `status: "error"`, an API answer it could not use), which its other
/// errors (`fetch failed`, a refusal it prints as it is) lack.
const API_ERROR_NOTE: &str = "If you think this is a bug, please open an issue";

/// A wrangler failure having printed `said`, for tests of what is read
/// from it elsewhere.
#[cfg(test)]
pub(crate) fn failed_having_printed(said: &[&str]) -> anyhow::Error {
    anyhow::Error::new(Failed {
        message: "wrangler failed".to_owned(),
        said: said.iter().map(|l| (*l).to_owned()).collect(),
        stdout: None,
        unread: false,
    })
}

/// The error of a wrangler run whose output could not be read whole
/// (`error`, a failed read of its pipes) after it printed `said`, for
/// tests of what is read from it elsewhere.
#[cfg(test)]
pub(crate) fn failed_reading_output(said: &[&str], error: std::io::Error) -> anyhow::Error {
    let invocation = Invocation {
        args: vec!["d1".into(), "execute".into()],
        purpose: "load a file".into(),
    };
    let status = std::os::unix::process::ExitStatusExt::from_raw(256);
    let said = said.iter().map(|l| (*l).to_owned()).collect();
    output_unread(&invocation, status, said, error)
}

/// Whether `e` is the failure of a wrangler run that started (it exited
/// non-zero, was stopped at its time limit, or by a signal while it ran an
/// import), not one that came before wrangler ran.
pub fn is_failure_of_a_run(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Failed>())
}

/// Whether the wrangler run that failed with `e` could not have its output
/// read whole: what it printed tells nothing of what it did after.
pub fn output_was_unread(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<Failed>())
        .any(|f| f.unread)
}

/// The lines the wrangler run that failed with `e` printed, in order,
/// without their colours; none when `e` is no wrangler failure.
pub fn said_by_failed(e: &anyhow::Error) -> Vec<String> {
    let Some(f) = e.chain().find_map(|c| c.downcast_ref::<Failed>()) else {
        return Vec::new();
    };
    { f.said.iter() }
        .map(|l| crate::out::strip_ansi(l).into_owned())
        .collect()
}

/// The credentials wrangler takes from the environment, by the names of
/// the variables that hold them (never their values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvAuth {
    /// A Global API Key and its account's email, which wrangler takes
    /// before any token.
    GlobalKey {
        key: &'static str,
        email: &'static str,
    },
    /// An API token.
    Token(&'static str),
}

/// What wrangler reads a variable through: this process's environment
/// (which wrangler inherits), or a stand-in in tests.
type Getter<'a> = &'a dyn Fn(&str) -> Option<std::ffi::OsString>;

/// A variable wrangler reads under a current and an older, deprecated name.
type Names = (&'static str, &'static str);

/// An API token.
pub const TOKEN_VARS: Names = ("CLOUDFLARE_API_TOKEN", "CF_API_TOKEN");
/// A Global API Key, and the email of its account.
const KEY_VARS: Names = ("CLOUDFLARE_API_KEY", "CF_API_KEY");
const EMAIL_VARS: Names = ("CLOUDFLARE_EMAIL", "CF_EMAIL");
/// The account every command acts in.
const ACCOUNT_VARS: Names = ("CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID");

/// One credential variable as the pinned wrangler reads it: by names
/// only, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The name wrangler reads.
    pub name: &'static str,
    /// Whether its value is empty: wrangler then takes nothing from the
    /// environment for it (it tests the value for truth), and does not
    /// look at the other name either.
    pub empty: bool,
    /// The other name, when it is set too: wrangler ignores it.
    pub ignored: Option<&'static str>,
}

impl EnvVar {
    /// The name wrangler takes a value from, if it takes one.
    fn used(&self) -> Option<&'static str> {
        (!self.empty).then_some(self.name)
    }

    /// What an operator must be told of it: a value wrangler does not take
    /// (an empty one, or one under the name it does not read).
    pub fn note(&self) -> Option<String> {
        match (self.empty, self.ignored) {
            (true, Some(other)) => Some(format!(
                "{} is set but empty, so {other} is ignored (wrangler reads {other} only when {} \
                 is not set at all)",
                self.name, self.name
            )),
            (true, None) => Some(format!(
                "{} is set but empty, which wrangler takes as not given",
                self.name
            )),
            (false, Some(other)) => Some(format!(
                "{other} is ignored: wrangler reads {}, which is set",
                self.name
            )),
            (false, None) => None,
        }
    }
}

/// The one place this tool decides which variable wrangler reads, as the
/// pinned wrangler's `getEnvironmentVariableFactory` does (`name in
/// process.env`): the current name whenever it is set at all, empty too,
/// else the older one; `None` when neither is set.
fn env_var_from(get: Getter<'_>, (name, deprecated): Names) -> Option<EnvVar> {
    let (read, other) = match get(name) {
        Some(_) => (name, deprecated),
        None => (deprecated, name),
    };
    let value = get(read)?;
    Some(EnvVar {
        name: read,
        empty: value.is_empty(),
        ignored: (read == name && get(other).is_some()).then_some(other),
    })
}

/// [`env_var_from`] of this process's environment, which wrangler inherits.
fn env_var(names: Names) -> Option<EnvVar> {
    env_var_from(&|name| std::env::var_os(name), names)
}

/// [`EnvAuth`] as wrangler chooses it from the variables `get` gives: a
/// Global API Key (`CLOUDFLARE_API_KEY` and `CLOUDFLARE_EMAIL`, or their
/// older names `CF_API_KEY` and `CF_EMAIL`) before a token
/// (`CLOUDFLARE_API_TOKEN`, or `CF_API_TOKEN`); `None`: wrangler's own
/// login, if any.
fn env_auth_from(get: Getter<'_>) -> Option<EnvAuth> {
    let key = env_var_from(get, KEY_VARS).and_then(|v| v.used());
    let email = env_var_from(get, EMAIL_VARS).and_then(|v| v.used());
    if let (Some(key), Some(email)) = (key, email) {
        return Some(EnvAuth::GlobalKey { key, email });
    }
    env_var_from(get, TOKEN_VARS)
        .and_then(|v| v.used())
        .map(EnvAuth::Token)
}

/// [`env_auth_from`] of this process's environment, which wrangler inherits.
pub fn env_auth() -> Option<EnvAuth> {
    env_auth_from(&|name| std::env::var_os(name))
}

/// The variable an API token would be taken from, were no Global API Key set.
pub fn env_token() -> Option<&'static str> {
    env_var(TOKEN_VARS).and_then(|v| v.used())
}

/// The token variable wrangler sends (no Global API Key set) when its
/// value holds a character no API token has: one beyond ASCII (a
/// no-break space, U+00A0, from a paste), a control character, or a space
/// or tab before or inside it (wrangler sends `Bearer <token>`, so one
/// before it is inside the header's value). wrangler sends it as it is,
/// and its requests fail, as "fetch failed" for a character beyond ASCII
/// (whose advice is to check the internet or a VPN). Spaces, tabs, CR and
/// LF after it are not refused: fetch trims them from the header it sends
/// (`new Headers({a: ' x\r\n'}).get('a')` is `x` in the Node.js wrangler
/// runs on), so a token read from a CRLF `.env`, or a CI secret stored
/// with its newline, works as it did.
fn env_token_refused_from(get: Getter<'_>) -> Option<&'static str> {
    let Some(EnvAuth::Token(name)) = env_auth_from(get) else {
        return None;
    };
    let value = get(name)?;
    let token = { value.to_str() }.map(|v| v.trim_end_matches([' ', '\t', '\r', '\n']));
    (!token.is_some_and(|t| t.bytes().all(|b| b.is_ascii_graphic()))).then_some(name)
}

/// [`env_token_refused_from`] of this process's environment, said: the
/// variable and the fix, never the value.
pub fn env_token_refused() -> Option<(String, String)> {
    let name = env_token_refused_from(&|name| std::env::var_os(name))?;
    Some((
        format!(
            "{name} holds a character no API token has (value not shown): a stray one, likely \
             from a paste (a no-break space, or a space before the token), with which \
             wrangler's every request fails (as \"fetch failed\", which is no network fault)"
        ),
        format!("set {name} again to the token alone, typed or pasted as plain text"),
    ))
}

/// Refuses (exit 2) a wrangler run that sends the token, before it starts,
/// when the token cannot be sent ([`env_token_refused`]).
fn refuse_an_unsendable_token(invocation: &Invocation) -> Result<()> {
    let sends = { invocation.args.first() }.is_some_and(|a| a == "d1" || a == "r2")
        && !invocation.args.iter().any(|a| a == "--local");
    match env_token_refused().filter(|_| sends) {
        Some((said, fix)) => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "cannot {}: {said}. {fix}; `cargo xtask doctor` checks it.",
            invocation.purpose
        ),
        None => Ok(()),
    }
}

/// The account wrangler takes from the environment: the variable it reads
/// (`CLOUDFLARE_ACCOUNT_ID`, or its older name `CF_ACCOUNT_ID`) and the id.
/// Not a secret (it is in every dashboard URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAccount {
    pub name: &'static str,
    /// 32 lowercase hex digits ([`is_account_id`]): safe to print and to
    /// paste in a shell. Any other value (an API token pasted there, which
    /// wrangler would take) is none, never printed.
    pub id: String,
}

fn env_account_from(get: Getter<'_>) -> Option<EnvAccount> {
    let name = env_var_from(get, ACCOUNT_VARS)?.used()?;
    let id = get(name)?.into_string().ok()?;
    is_account_id(&id).then_some(EnvAccount { name, id })
}

/// [`env_account_from`] of this process's environment: the account a
/// command acts in when the configuration names none.
pub fn env_account() -> Option<EnvAccount> {
    env_account_from(&|name| std::env::var_os(name))
}

/// The variable wrangler takes the account id from when it holds anything
/// but an account id, 32 lowercase hex digits: one wrangler refuses before
/// any request (a value pasted with its quotes, a space or a line break),
/// or one it takes and sends (an API token pasted there, a secret).
fn env_account_refused_from(get: Getter<'_>) -> Option<&'static str> {
    let name = env_var_from(get, ACCOUNT_VARS)?.used()?;
    env_account_from(get).is_none().then_some(name)
}

/// [`env_account_refused_from`] of this process's environment.
pub fn env_account_refused() -> Option<&'static str> {
    env_account_refused_from(&|name| std::env::var_os(name))
}

/// The variable wrangler takes the account id from, if one is set and
/// not empty (an id wrangler refuses too).
pub fn env_account_id() -> Option<&'static str> {
    env_var(ACCOUNT_VARS).and_then(|v| v.used())
}

/// What an operator must be told of the credential variables: each one
/// wrangler does not take (see [`EnvVar::note`]), token first.
pub fn env_notes() -> Vec<String> {
    [TOKEN_VARS, KEY_VARS, EMAIL_VARS, ACCOUNT_VARS]
        .into_iter()
        .filter_map(|names| env_var(names)?.note())
        .collect()
}

/// The credential whose empty `CLOUDFLARE_` name hides a value under its
/// older name (`CLOUDFLARE_API_TOKEN=""` next to `CF_API_TOKEN=…`), with
/// no credentials in the environment: its [`EnvVar::note`] and the fix.
pub fn hidden_credential() -> Option<(String, String)> {
    if env_auth().is_some() {
        return None;
    }
    [TOKEN_VARS, KEY_VARS, EMAIL_VARS]
        .into_iter()
        .filter_map(env_var)
        .find(|v| v.empty && v.ignored.is_some())
        .and_then(|v| {
            let fix = format!(
                "unset {} (wrangler then reads {}), or set it to the value",
                v.name, v.ignored?
            );
            Some((v.note()?, fix))
        })
}

/// Whether wrangler is given its credentials in the environment
/// ([`env_auth`]). Only then may two wranglers run at once: with a
/// `wrangler login`, each refreshes an expired token on its own, with no
/// lock, and the one that loses the race can end the login
/// (cloudflare/workers-sdk#15089).
pub fn credentials_in_environment() -> bool {
    env_auth().is_some()
}

/// A read-only wrangler call run on a thread of its own, beside the work
/// the command does meanwhile: each wrangler start costs one to five
/// seconds, and two reads that need nothing of each other need not wait
/// for each other. The only way this tool runs two wranglers at once, and
/// only when [`credentials_in_environment`] (with a `wrangler login`
/// [`Beside::start`] gives `None`, and the caller reads in turn). The call
/// shows no spinner of its own ([`Wrangler::in_background`]); its output
/// is kept apart, in its own pipes, and its error is its own, as if it had
/// run alone, for the caller to report where it reported it before.
/// Dropped unread (the command stopped first), it still waits for its
/// wrangler to finish, so that no process outlives the command.
pub struct Beside<T>(Option<(std::thread::JoinHandle<Result<T>>, String)>);

impl<T: Send + 'static> Beside<T> {
    /// Starts `read` of `invocation` (read-only: nothing that writes to a
    /// database ever runs beside anything) when two wranglers may run at
    /// once; `None` otherwise.
    pub fn start(
        wrangler: &Wrangler,
        invocation: Invocation,
        read: fn(&Wrangler, &Invocation) -> Result<T>,
    ) -> Option<Beside<T>> {
        credentials_in_environment().then(|| {
            let purpose = invocation.purpose.clone();
            let wrangler = wrangler.clone().in_background();
            let thread = std::thread::spawn(move || read(&wrangler, &invocation));
            Beside(Some((thread, purpose)))
        })
    }

    /// What the call gave, once it has finished (a spinner says so while
    /// the command waits for it).
    pub fn finish(mut self) -> Result<T> {
        let (thread, purpose) = self.0.take().expect("a read beside is finished once");
        let _activity = (!thread.is_finished())
            .then(|| crate::out::Activity::wrangler(format!("wrangler: {purpose}")));
        thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the thread that was to {purpose} panicked")))
    }
}

impl<T> Drop for Beside<T> {
    fn drop(&mut self) {
        if let Some((thread, _)) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `e` is wrangler exiting non-zero with an error line whose
/// message starts with `needle`: `✘ [ERROR] The specified key does not
/// exist.` Only the start counts: wrangler quotes configuration values in
/// its other errors (`… but got "The specified key does not exist."`), so
/// text elsewhere on a line could have been written by whoever wrote
/// wrangler.toml.
fn failed_saying(e: &anyhow::Error, needle: &str) -> bool {
    e.downcast_ref::<Failed>().is_some_and(|f| {
        f.said.iter().any(|line| {
            let line = crate::out::strip_ansi(line);
            line.split_once("[ERROR]")
                .is_some_and(|(_, message)| message.trim_start().starts_with(needle))
        })
    })
}

/// The migration that wrangler's `migrations apply`, failing with `e`,
/// said failed, from its own line (`✘ [ERROR] Migration NAME failed with
/// the following errors:`, printed once it stops at that file); `None`
/// when it printed none (stopped at its time limit, interrupted, or
/// failing before it sent any), or a name split across lines.
pub fn failed_migration(e: &anyhow::Error) -> Option<String> {
    let f = e.chain().find_map(|c| c.downcast_ref::<Failed>())?;
    f.said.iter().rev().find_map(|line| {
        let line = crate::out::strip_ansi(line);
        let (_, message) = line.split_once("[ERROR]")?;
        let name = { message.trim().strip_prefix("Migration ")? }
            .strip_suffix(" failed with the following errors:")?;
        (!name.is_empty()).then(|| name.to_owned())
    })
}

/// Whether `e` is wrangler exiting non-zero after printing an SQL error
/// from D1: a line that ends, as D1's errors do, in SQLite's result code
/// (`no such table: t: SQLITE_ERROR` locally; remotely the API's note,
/// followed by ` [code: 7500]`), one of the SQL's fault. Anything else (a
/// network failure, a token Cloudflare refused, D1 unavailable, wrangler
/// stopped or crashing, the database locked, full or failing, one of
/// [`STATE_CODES`]) is not an error of the SQL it was sent.
pub fn failed_in_sql(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Failed>().is_some_and(|f| {
        { f.said.iter().map(String::as_str) }
            .chain(f.stdout.as_deref())
            .flat_map(str::lines)
            .any(|line| ends_in_sqlite_code(&crate::out::strip_ansi(line)))
    })
}

/// Whether `line` ends in `: SQLITE_<CODE>`, or in that and ` [code: N]`,
/// `CODE` one of the SQL's fault (not one of [`STATE_CODES`]).
fn ends_in_sqlite_code(line: &str) -> bool {
    sqlite_code_at_end(line).is_some_and(|code| {
        let primary = code.split('_').next().unwrap_or(code);
        !STATE_CODES.contains(&primary)
    })
}

/// The `CODE` of a `line` that ends in `: SQLITE_<CODE>`, or in that and
/// ` [code: N]`: SQLite's result code, as D1's errors end, whoever's fault.
/// A constraint's failure ends in its extended code too, `:
/// SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)`, which is passed
/// over: it was told as no SQL error ("a network failure, a token…").
fn sqlite_code_at_end(line: &str) -> Option<&str> {
    let line = line.trim_end();
    let line = match line.rsplit_once(" [code: ") {
        Some((before, code)) if code.strip_suffix(']').is_some_and(is_digits) => before,
        _ => line,
    };
    let line = match line.rsplit_once(" (extended: SQLITE_") {
        Some((before, code)) if code.strip_suffix(')').is_some_and(is_code) => before,
        _ => line,
    };
    let (_, code) = line.rsplit_once(": SQLITE_")?;
    is_code(code).then_some(code)
}

/// Whether `code` is shaped as SQLite's result codes are after `SQLITE_`.
fn is_code(code: &str) -> bool {
    !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// SQLite's result codes (their extended forms too: `BUSY_SNAPSHOT`,
/// `IOERR_WRITE`) that tell the database's state, not its SQL's fault: a
/// lock another program holds, a full disk, an I/O error, a file that
/// cannot be opened or written, memory, corruption, an interrupt. The
/// same SQL succeeds once that is fixed (rvY: `database is locked:
/// SQLITE_BUSY` blamed a correct migration).
const STATE_CODES: &[&str] = &[
    "BUSY",
    "LOCKED",
    "FULL",
    "IOERR",
    "READONLY",
    "CANTOPEN",
    "NOMEM",
    "CORRUPT",
    "NOTADB",
    "INTERRUPT",
    "PERM",
];

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `e` is wrangler exiting non-zero after printing, with `--json`,
/// an error whose text or one of whose notes starts with `prefix`: locally
/// `{"error":{"text":"no such table: t: SQLITE_ERROR"}}`, remotely the
/// API's message in `error.notes[].text`.
fn json_error_starts_with(e: &anyhow::Error, prefix: &str) -> bool {
    let Some(printed) = e.downcast_ref::<Failed>().and_then(|f| f.stdout.as_deref()) else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(printed) else {
        return false;
    };
    error_texts(&json).any(|text| text.starts_with(prefix))
}

/// The texts of wrangler's JSON error (`{"error": {"text", "notes": [{"text"}]}}`).
fn error_texts(json: &serde_json::Value) -> impl Iterator<Item = &str> {
    let error = &json["error"];
    let notes = error["notes"].as_array().into_iter().flatten();
    std::iter::once(&error["text"])
        .chain(notes.map(|n| &n["text"]))
        .filter_map(serde_json::Value::as_str)
}

/// How many of wrangler's last lines a failure shows (all of them with -v,
/// where they were shown live).
const SHOWN_ON_FAILURE: usize = 40;

/// What a failure that wrangler's words name means, and what to do, for
/// the failures an unattended job meets: a token Cloudflare refuses, a
/// bucket that does not exist, a database busy with another export.
/// `purpose` is the invocation's (it names the bucket of an R2 call).
fn known_failure(said: &str, purpose: &str) -> Option<String> {
    if said.contains("Authentication error") || said.contains("[code: 10000]") {
        if let Some(EnvAuth::GlobalKey { key, email }) = env_auth() {
            return Some(format!(
                "Cloudflare refused the Global API Key, which wrangler uses before any \
                 CLOUDFLARE_API_TOKEN: check {key} and {email} (or unset them to use the token) \
                 and CLOUDFLARE_ACCOUNT_ID; `cargo xtask doctor` checks them"
            ));
        }
        let token = env_token().unwrap_or("CLOUDFLARE_API_TOKEN");
        return Some(format!(
            "Cloudflare refused the API token: check {token} (not expired or revoked, with the \
             D1 and R2 permissions the README lists) and CLOUDFLARE_ACCOUNT_ID; `cargo xtask \
             doctor` checks them"
        ));
    }
    if said.contains("The specified bucket does not exist") {
        // An object's call names `r2://BUCKET/KEY`, a bucket's settings'
        // (doctor's read of its lock rules) `R2 bucket BUCKET`.
        let bucket = ["r2://", "R2 bucket "]
            .into_iter()
            .find_map(|mark| purpose.split_once(mark))
            .map(|(_, rest)| rest.split(['/', ' ']).next().unwrap_or_default())
            .filter(|b| d1_core::names::is_printable(b) && !b.is_empty());
        return Some(match bucket {
            Some(b) => format!(
                "the R2 bucket {b} does not exist: create it with `npx wrangler r2 bucket \
                 create {b}` (or fix `bucket` in backups.toml)"
            ),
            None => "the R2 bucket does not exist: create it with `npx wrangler r2 bucket \
                     create BUCKET` (or fix `bucket` in backups.toml)"
                .to_owned(),
        });
    }
    if said.contains("Currently processing a long-running export") {
        return Some(
            "the database is busy with another export (one running now, or a failed one D1 has \
             not let go of yet); run this again later"
                .to_owned(),
        );
    }
    None
}

/// What a failure shows of what wrangler printed on standard output
/// (`printed`, redacted): the texts of its JSON error (`--json` puts the
/// error there), never a JSON result it printed before failing (rows, or
/// a whole schema: hundreds of lines, and values a message never quotes),
/// else its last [`SHOWN_ON_FAILURE`] lines; `None` for nothing.
fn printed_on_failure(printed: &str) -> Option<String> {
    let printed = printed.trim();
    if printed.is_empty() {
        return None;
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(printed) {
        let texts: Vec<std::borrow::Cow<'_, str>> = error_texts(&json)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(d1_core::gate::without_raise_messages)
            .map(|t| relayed_on_one_line(&d1_core::gate::without_statement_texts(&t)).into())
            .collect();
        return Some(match texts.is_empty() {
            true => format!(
                "it printed a result ({} bytes of JSON) before it failed; not shown, as it may \
                 hold rows",
                printed.len()
            ),
            false => texts.join("; "),
        });
    }
    let lines: Vec<&str> = printed.lines().collect();
    let skip = lines.len().saturating_sub(SHOWN_ON_FAILURE);
    let mut shown = lines[skip..].join("\n");
    if skip > 0 {
        shown = format!("({skip} earlier lines not shown)\n{shown}");
    }
    Some(shown)
}

/// An API's error text as a failure relays it: redacted, then each
/// character that would break the line or hide text (a line break, a
/// carriage return, an escape code) written as its escape (`\u{a}`), so
/// that `boom<CR>Result: GOOD<LF>warning: prod backup deleted` is read as
/// what the API said, never as lines of the tool's own (rvCL 2).
/// Redacted first: a secret cut by one of those is read whole
/// ([`crate::redact::unseen_len`]), which its escape would not be.
fn relayed_on_one_line(text: &str) -> String {
    let redacted = crate::redact::text(text);
    let mut out = String::with_capacity(redacted.len());
    for c in redacted.chars() {
        match d1_core::names::breaks_text(c) {
            true => out.push_str(&c.escape_unicode().to_string()),
            false => out.push(c),
        }
    }
    out
}

/// wrangler's "🪵  Logs were written to \"…\"": the directory is private
/// and deleted after the call, so the path must not be shown.
fn is_log_path_line(line: &str) -> bool {
    line.contains("Logs were written to")
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failed {}

/// Waits for a child that the watchdog may kill meanwhile.
fn wait(child: &Mutex<Child>) -> Result<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.lock().expect("child lock").try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills a child that outlives its time limit.
struct Watchdog {
    done: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(child: Arc<Mutex<Child>>, limit: Duration) -> Watchdog {
        let (done, finished) = mpsc::channel::<()>();
        // Wakes every 100 ms to see whether SIGINT or SIGTERM came.
        const TICK: Duration = Duration::from_millis(100);
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            loop {
                let left = limit.saturating_sub(started.elapsed());
                match finished.recv_timeout(left.min(TICK)) {
                    Err(mpsc::RecvTimeoutError::Timeout)
                        if left > TICK && crate::edge::signals::received().is_none() =>
                    {
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return false,
                }
                let mut child = child.lock().expect("child lock");
                // `node_modules/.bin/wrangler` runs the real CLI as a child
                // process of its own: stop every descendant, then the child.
                // std knows whether it has reaped the child, so that kill
                // never signals a process that merely reused its id.
                crate::edge::processes::kill_tree(child.id(), false);
                let _ = child.kill();
                return crate::edge::signals::received().is_none();
            }
        });
        Watchdog { done, thread }
    }

    /// Stops the watchdog; whether it killed the child.
    fn fired(self) -> bool {
        drop(self.done);
        self.thread.join().unwrap_or(false)
    }
}

#[derive(Clone, Copy)]
enum Sink {
    /// stdout is wrangler's chatter, kept like stderr.
    Live,
    /// stdout is the result (`--json`), returned to the caller.
    Capture,
}

/// Reads wrangler's lines, redacted, and keeps them all (wrangler's chatter
/// is a few dozen lines); with `live` (`-v`) also shows each on stderr.
/// A read that fails ends it: the lines read by then, and its error.
fn keep_lines(
    from: impl Read,
    redactor: &Redactor,
    live: bool,
) -> (Vec<String>, std::io::Result<()>) {
    let mut reader = BufReader::new(from);
    let mut raw = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    let mut erring = false;
    loop {
        raw.clear();
        let read = match reader.read_until(b'\n', &mut raw) {
            Ok(read) => read,
            Err(e) => return (kept, Err(e)),
        };
        if read == 0 {
            if live && erring {
                let from = kept.iter().position(|l| l.contains("[ERROR]")).unwrap_or(0);
                let told = kept[from..].join("\n");
                for line in d1_core::gate::without_raise_messages(&told).lines() {
                    if !is_log_path_line(line) {
                        crate::out::detail_args(format_args!("{RELAYED}{line}"));
                    }
                }
            }
            return (kept, Ok(()));
        }
        // Colours out first: wrangler writes `[ERROR]` in several, and a
        // secret split by them would not be known.
        let line = String::from_utf8_lossy(&raw);
        let line = crate::out::strip_ansi(line.trim_end_matches(['\n', '\r']));
        let line = redactor.line(&line).into_owned();
        // D1's import quotes the start of the statement that failed: a row.
        let line = d1_core::gate::without_statement_texts(&line).into_owned();
        // From wrangler's first error on, its lines are held and shown
        // together at the end: a trigger's message, which may quote a row
        // over several lines, is known only once its code is read.
        erring |= line.contains("[ERROR]");
        if live && !erring && !is_log_path_line(&line) {
            crate::out::detail_args(format_args!("{RELAYED}{line}"));
        }
        // A runaway wrangler must not fill memory: the newest lines matter.
        if kept.len() == 10_000 {
            kept.drain(..5_000);
        }
        kept.push(line);
    }
}

/// Where Node keeps the compiled code of wrangler's 15 MB bundle between
/// runs (`NODE_COMPILE_CACHE`): every later start then skips compiling it,
/// about a quarter of the CPU a local `wrangler d1` command takes. It lives
/// in `node_modules`, beside the code it caches, so that only who may
/// change wrangler may change it; Node writes each entry to a temporary
/// file and renames it, and ignores an entry whose source has changed.
pub fn node_compile_cache(bin_dir: &Path) -> PathBuf {
    bin_dir.join("..").join(".cache").join("node-compile-cache")
}

/// Has `cmd`'s files hold at most `bytes` bytes each (the soft
/// `RLIMIT_FSIZE`, which the child inherits).
fn limit_file_size(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getrlimit(2) and setrlimit(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = limit.rlim_max.min(bytes as libc::rlim_t);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `PATH` with `dir` in front, so that the pinned Node toolchain wins.
pub fn path_with_first(dir: &Path) -> OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(existing) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).unwrap_or_else(|_| dir.as_os_str().to_owned())
}

/// A directory only this user can read, removed on drop.
pub struct PrivateDir {
    path: PathBuf,
    /// A shared lock on the directory, held while it exists: a sweep
    /// ([`remove_dirs_of_killed_runs`]) leaves a directory someone holds,
    /// whatever its pid says (a run in another pid namespace has a pid
    /// this one cannot see). Children inherit it ([`inherited_by_children`]).
    _held: Option<std::fs::File>,
}

/// Lets the children this run starts (wrangler, and what it starts) hold
/// `lock` too: if the run is killed (SIGKILL) while wrangler carries on,
/// still reading the migrations staged in the directory, the next run's
/// sweep leaves the directory until they end. A file the tool opens is
/// closed on exec otherwise; this one is only a directory's handle, of a
/// directory they may read anyway.
fn inherited_by_children(lock: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd as _;
        let fd = lock.as_raw_fd();
        // SAFETY: fcntl(2) on a descriptor `lock` owns, reading then
        // setting its descriptor flags; no memory is passed.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
        }
    }
}

use crate::edge::fsutil::PRIVATE_DIR_PREFIX;

impl PrivateDir {
    /// A new directory in the system's temporary directory, created 0700
    /// (never an existing one). Directories that an earlier run left there
    /// because it was killed are removed first, once per run.
    pub fn create(label: &str) -> Result<PrivateDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let temp = std::env::temp_dir();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = temp.join(format!(
            "{PRIVATE_DIR_PREFIX}{label}-{}-{n}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        refuse_an_unusable_temp_dir(&temp)?;
        sweep_stale_private_dirs();
        // One that cannot be made there (a TMPDIR this user cannot write)
        // is the machine's, not the command's: it could not run.
        crate::edge::fsutil::create_new_private_dir(&path).map_err(|e| match temp.is_dir() {
            true => crate::exit::could_not_run(e),
            false => {
                crate::exit::Exit::CouldNotRun.error(e.context(unusable(&temp, "not a directory")))
            }
        })?;
        let held = std::fs::File::open(&path).ok();
        let held = held.filter(|dir| dir.try_lock_shared().is_ok());
        held.as_ref().map(inherited_by_children);
        Ok(PrivateDir { path, _held: held })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Refuses (exit 2) the system's temporary directory as
/// [`PrivateDir::create`] would: a command that will need one (migrate,
/// deploy, restore) asks this first, before its lock, its backup or
/// anything else is written, so a TMPDIR it would refuse halfway is refused
/// with nothing done. Not a directory is said here too (create says it only
/// once it fails to make one in it); and one this user cannot make a
/// directory in (`TMPDIR=/sys`, a read-only mount) is found by making one,
/// removed at once, whose failure names TMPDIR and the fix
/// ([`crate::edge::fsutil::with_fix`]).
pub fn check_temp_dir() -> Result<()> {
    let temp = std::env::temp_dir();
    refuse_an_unusable_temp_dir(&temp)?;
    if !temp.is_dir() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{}",
            unusable(&temp, "not a directory")
        );
    }
    PrivateDir::create("check").map(drop)
}

/// " (TMPDIR names it)" when TMPDIR is set: the system's temporary
/// directory is then the one it names.
fn tmpdir_named() -> &'static str {
    match std::env::var_os("TMPDIR") {
        Some(_) => " (TMPDIR names it)",
        None => "",
    }
}

/// The refusal of the temporary directory `temp`, which is `what`.
fn unusable(temp: &Path, what: &str) -> String {
    format!(
        "the temporary directory {:?} is {what}{}: set TMPDIR to a directory that exists, by \
         its absolute path. Nothing was run",
        temp.display().to_string(),
        tmpdir_named()
    )
}

/// Refuses (exit 2) a temporary directory `temp` that is not an absolute
/// path, or that another user could swap what is in.
fn refuse_an_unusable_temp_dir(temp: &Path) -> Result<()> {
    // An empty or relative TMPDIR would put private files in whatever
    // directory the command runs in (the checkout).
    if !temp.is_absolute() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{}",
            unusable(temp, "not an absolute path")
        );
    }
    refuse_a_temp_dir_others_can_swap(temp, tmpdir_named())
}

/// Refuses (exit 2) the temporary directory `temp` (`named` says that
/// TMPDIR names it) when another user could swap what is in it.
fn refuse_a_temp_dir_others_can_swap(temp: &Path, named: &str) -> Result<()> {
    refuse_a_temp_dir_others_can_swap_by(temp, named, |dir| std::fs::symlink_metadata(dir))
}

/// [`refuse_a_temp_dir_others_can_swap`], with each directory on the way
/// looked at (not followed, if a link) by `look`.
///
/// A directory only this user can enter keeps nobody out of it
/// when others can rename it: in a parent they can write to without
/// the sticky bit, another user can move it aside and put one of
/// their own, holding what wrangler reads or writes, by its name.
/// So can they TMPDIR itself, or a link on its way, in a directory
/// above it: every directory the path goes through is checked, as
/// written and as resolved. So can the owner of any of them, whatever
/// its mode (a 0755 /tmp/alice under `sudo -E -u deploy`): each must
/// be this user's or root's. So can the owner of a link on the way as
/// written (TMPDIR=/tmp/lnk, another user's link to this user's own
/// 0700 directory: in the sticky /tmp a link is its owner's to
/// replace), and the private directory's paths are built from the path
/// as written: each is looked at itself, never where it leads
/// (`symlink_metadata`), and a link must be this user's or root's too
/// (rvAP). One that cannot be looked at (a parent this user cannot
/// search) is refused, never passed over: who could swap it is unknown.
fn refuse_a_temp_dir_others_can_swap_by(
    temp: &Path,
    named: &str,
    look: impl Fn(&Path) -> std::io::Result<std::fs::Metadata>,
) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        // SAFETY: geteuid(2) has no preconditions.
        let me = unsafe { libc::geteuid() };
        let resolved = std::fs::canonicalize(temp).ok();
        let through = temp
            .ancestors()
            .chain(resolved.iter().flat_map(|r| r.ancestors()));
        for dir in through {
            let itself = dir == temp || Some(dir) == resolved.as_deref();
            let inside = match itself {
                true => String::new(),
                false => format!(" is inside {:?}, which", dir.display().to_string()),
            };
            let temp = temp.display().to_string();
            let meta = match look(dir) {
                Ok(meta) => meta,
                // A TMPDIR that does not exist is told by the caller.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
                Err(e) => crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "the temporary directory {temp:?}{named}{inside} cannot be looked at ({e}): \
                     whether another user could swap this tool's private directory there \
                     cannot be told. Set TMPDIR to a directory you own, in directories you \
                     can enter. Nothing was run"
                ),
            };
            let mode = meta.permissions().mode();
            if meta.file_type().is_symlink() && meta.uid() != me && meta.uid() != 0 {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "the temporary directory {temp:?}{named}{inside} is a symbolic link owned by \
                     another user (uid {}): its owner could point it at a directory of theirs \
                     at any time, and swap this tool's private directory for one of theirs. \
                     Set TMPDIR to where it leads (`realpath`), or to a directory you own, in \
                     directories only you or root own. Nothing was run",
                    meta.uid()
                );
            }
            if meta.is_dir() && meta.uid() != me && meta.uid() != 0 {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "the temporary directory {temp:?}{named}{inside} is owned by another user \
                     (uid {}): its owner could swap this tool's private directory there for \
                     one of theirs. Set TMPDIR to a directory you own, in directories only you \
                     or root own (not another user's). Nothing was run",
                    meta.uid()
                );
            }
            if meta.is_dir() && mode & 0o022 != 0 && mode & 0o1000 == 0 {
                crate::stop!(
                    crate::exit::Exit::CouldNotRun,
                    "the temporary directory {temp:?}{named}{inside} is writable by others \
                     without the sticky bit (mode {:o}): another user could swap this \
                     tool's private directory there for one of theirs. Set TMPDIR to a \
                     directory only you can write to, in directories only you (or root) \
                     can write to, or add the sticky bit (`chmod +t`, as /tmp has). \
                     Nothing was run",
                    mode & 0o7777
                );
            }
        }
    }
    Ok(())
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes, once per run, the private directories (wrangler's logs hold
/// signed URLs) that earlier runs killed with SIGKILL left behind.
pub fn sweep_stale_private_dirs() {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    // A TMPDIR the run refuses "before anything runs" is left as it is:
    // checked first, swept only when it passes (rvAP).
    SWEPT.call_once(|| {
        let temp = std::env::temp_dir();
        if temp.is_absolute() && refuse_a_temp_dir_others_can_swap(&temp, "").is_ok() {
            remove_stale_private_dirs(&temp);
        }
    });
}

/// Removes the private directories in `temp` that are ours, real
/// directories, and whose owning process is gone.
fn remove_stale_private_dirs(temp: &Path) {
    remove_dirs_of_killed_runs(
        temp,
        private_dir_owner,
        |_, meta, pid| {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: getuid(2) has no preconditions.
            let ours = meta.uid() == unsafe { libc::getuid() };
            (ours && !crate::edge::machine::pid_exists(pid)).then_some(KILLED)
        },
        "run",
    );
}

/// Removes the directories in `dir` that runs killed before their end
/// left behind: each named with its run's pid (`pid_of`), a real directory
/// (no link) of a run that `ended` tells is over, with how (`that was
/// killed`). `whose` names the run in the note that says so.
pub fn remove_dirs_of_killed_runs(
    dir: &Path,
    pid_of: impl Fn(&str) -> Option<u32>,
    ended: impl Fn(&Path, &std::fs::Metadata, u32) -> Option<&'static str>,
    whose: &str,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(&pid_of) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let Some(how) = meta.is_dir().then(|| ended(&path, &meta, pid)).flatten() else {
            continue;
        };
        if held_by_a_live_run(&path) {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            crate::note!(
                "removed {}, left by an earlier {whose} (pid {pid}) {how}",
                d1_core::names::shown_path(&path)
            );
        }
    }
}

/// Whether a live run holds the directory `path` ([`PrivateDir`]'s lock):
/// its pid may name no process here and it still runs, in another pid
/// namespace sharing this temporary directory.
fn held_by_a_live_run(path: &Path) -> bool {
    std::fs::File::open(path)
        .is_ok_and(|dir| matches!(dir.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// How a run is told to have ended when its process is gone.
pub const KILLED: &str = "that was killed";

/// The pid in `qbtime-xtask-<label>-<pid>-<n>-<nanos>`.
fn private_dir_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PRIVATE_DIR_PREFIX)?;
    let mut fields = rest.rsplitn(4, '-');
    let _nanos: i64 = fields.next()?.parse().ok()?;
    let _n: u32 = fields.next()?.parse().ok()?;
    fields.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    /// A stand-in environment holding the variables `set` (empty ones
    /// included).
    fn env_of<'a>(set: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| set.iter().find(|(n, _)| *n == name).map(|(_, v)| v.into())
    }

    /// wrangler's choice among the variables `set`.
    fn chosen(set: &[(&str, &str)]) -> Option<EnvAuth> {
        super::env_auth_from(&env_of(set))
    }

    /// Every combination of a current and an older name, each unset, set
    /// but empty, or set, as the pinned wrangler's
    /// `getEnvironmentVariableFactory` reads them (`name in process.env`,
    /// then the value tested for truth).
    #[test]
    fn a_variable_is_read_under_its_current_name_whenever_that_is_set_empty_too() {
        let read = |name, empty, ignored| {
            Some(EnvVar {
                name,
                empty,
                ignored,
            })
        };
        let (new, old) = ("CLOUDFLARE_API_TOKEN", "CF_API_TOKEN");
        // The variables set, and how wrangler reads them.
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<EnvVar>);
        let cases: [Case; 9] = [
            (&[], None),
            (&[(old, "")], read(old, true, None)),
            (&[(old, "u")], read(old, false, None)),
            (&[(new, "")], read(new, true, None)),
            (&[(new, ""), (old, "")], read(new, true, Some(old))),
            (&[(new, ""), (old, "u")], read(new, true, Some(old))),
            (&[(new, "t")], read(new, false, None)),
            (&[(new, "t"), (old, "")], read(new, false, Some(old))),
            (&[(new, "t"), (old, "u")], read(new, false, Some(old))),
        ];
        for (set, expected) in cases {
            let got = super::env_var_from(&env_of(set), TOKEN_VARS);
            assert_eq!(got, expected, "{set:?}");
            // Only a non-empty value is taken.
            let token = got.and_then(|v| v.used());
            assert_eq!(chosen(set), token.map(EnvAuth::Token), "{set:?}");
        }
    }

    #[test]
    fn what_wrangler_does_not_take_is_said_by_name_and_why() {
        let note = |set: &[(&str, &str)]| {
            super::env_var_from(&env_of(set), TOKEN_VARS).and_then(|v| v.note())
        };
        let hidden = note(&[("CLOUDFLARE_API_TOKEN", ""), ("CF_API_TOKEN", "s3cr3t")]).unwrap();
        assert_eq!(
            hidden,
            "CLOUDFLARE_API_TOKEN is set but empty, so CF_API_TOKEN is ignored (wrangler reads \
             CF_API_TOKEN only when CLOUDFLARE_API_TOKEN is not set at all)"
        );
        let shadowed = note(&[("CLOUDFLARE_API_TOKEN", "t"), ("CF_API_TOKEN", "s3cr3t")]).unwrap();
        assert_eq!(
            shadowed,
            "CF_API_TOKEN is ignored: wrangler reads CLOUDFLARE_API_TOKEN, which is set"
        );
        let empty = note(&[("CLOUDFLARE_API_TOKEN", "")]).unwrap();
        assert!(empty.contains("set but empty"), "{empty}");
        assert_eq!(note(&[("CF_API_TOKEN", "s3cr3t")]), None);
        assert_eq!(note(&[]), None);
    }

    /// The account id, read alike, and only one wrangler accepts.
    #[test]
    fn the_account_is_read_as_wrangler_reads_it() {
        let account = |set: &[(&str, &str)]| {
            super::env_account_from(&env_of(set)).map(|a| format!("{}={}", a.name, a.id))
        };
        assert_eq!(account(&[]), None);
        assert_eq!(
            account(&[("CF_ACCOUNT_ID", "0123456789abcdef0123456789abcdef")]).as_deref(),
            Some("CF_ACCOUNT_ID=0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            account(&[
                ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
                ("CF_ACCOUNT_ID", "fedcba9876543210fedcba9876543210")
            ])
            .as_deref(),
            Some("CLOUDFLARE_ACCOUNT_ID=0123456789abcdef0123456789abcdef")
        );
        // Set but empty: no id, and wrangler looks the account up.
        assert_eq!(
            account(&[("CLOUDFLARE_ACCOUNT_ID", ""), ("CF_ACCOUNT_ID", "b2")]),
            None
        );
        // One wrangler refuses ("Invalid account ID") is none to pin, nor
        // anything but 32 lowercase hex digits: an API token pasted there
        // is a secret, never printed as the account.
        assert_eq!(account(&[("CF_ACCOUNT_ID", "a1; rm -rf ~")]), None);
        for id in [
            "Xq7vR2mK9pL4tW8zN3bC6dF1gH5jY0sA_k-9QwEr",
            "acct_1-x",
            "0123456789ABCDEF0123456789ABCDEF",
        ] {
            assert_eq!(account(&[("CLOUDFLARE_ACCOUNT_ID", id)]), None, "{id:?}");
        }
    }

    /// A token with a character no API token has is told by the variable
    /// wrangler sends it from; blanks and a line end after it, which fetch
    /// trims, are not.
    #[test]
    fn a_token_with_a_stray_character_is_told_by_its_variable() {
        let refused = |set: &[(&str, &str)]| super::env_token_refused_from(&env_of(set));
        for token in [
            "tok\u{a0}",
            "\u{a0}tok",
            " tok",
            "to k",
            "to\nk",
            "\ntok",
            "toké",
        ] {
            assert_eq!(
                refused(&[("CLOUDFLARE_API_TOKEN", token)]),
                Some("CLOUDFLARE_API_TOKEN"),
                "{token:?}"
            );
        }
        assert_eq!(
            refused(&[("CF_API_TOKEN", "tok\u{a0}")]),
            Some("CF_API_TOKEN")
        );
        for token in [
            "Xq7vR2mK9pL4tW8zN3bC6dF1gH5jY0sA_k-9QwEr",
            "tok ",
            "tok\t",
            // A CRLF `.env`, or a CI secret stored with its newline.
            "tok\r",
            "tok\r\n",
            "tok\n",
            "",
        ] {
            assert_eq!(
                refused(&[("CLOUDFLARE_API_TOKEN", token)]),
                None,
                "{token:?}"
            );
        }
        // Not the one wrangler sends: a Global API Key comes first.
        let key = [
            ("CLOUDFLARE_API_TOKEN", "tok\u{a0}"),
            ("CLOUDFLARE_API_KEY", "k"),
            ("CLOUDFLARE_EMAIL", "e@example.com"),
        ];
        assert_eq!(refused(&key), None);
    }

    /// The variable holding an id wrangler refuses, and only then.
    #[test]
    fn an_account_id_wrangler_refuses_is_told_by_its_variable() {
        let refused = |set: &[(&str, &str)]| super::env_account_refused_from(&env_of(set));
        for id in [
            "\"0123456789abcdef0123456789abcdef\"",
            "abc\n",
            "a b",
            "a.b",
            "a/b",
            "Xq7vR2mK9pL4tW8zN3bC6dF1gH5jY0sA_k-9QwEr",
            "acct_1-x",
            "ABC",
        ] {
            assert_eq!(
                refused(&[("CLOUDFLARE_ACCOUNT_ID", id)]),
                Some("CLOUDFLARE_ACCOUNT_ID"),
                "{id:?}"
            );
        }
        assert_eq!(refused(&[("CF_ACCOUNT_ID", "a b")]), Some("CF_ACCOUNT_ID"));
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(refused(&[("CLOUDFLARE_ACCOUNT_ID", id)]), None);
        // Not set, set but empty, or only under the name wrangler ignores.
        assert_eq!(refused(&[]), None);
        assert_eq!(refused(&[("CLOUDFLARE_ACCOUNT_ID", "")]), None);
        assert_eq!(
            refused(&[
                ("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef"),
                ("CF_ACCOUNT_ID", "a b")
            ]),
            None
        );
    }

    #[test]
    fn wrangler_takes_a_global_api_key_before_a_token_under_either_name() {
        use EnvAuth::*;
        assert_eq!(chosen(&[]), None);
        assert_eq!(
            chosen(&[("CF_API_TOKEN", "t")]),
            Some(Token("CF_API_TOKEN"))
        );
        assert_eq!(
            chosen(&[("CLOUDFLARE_API_TOKEN", "t"), ("CF_API_TOKEN", "u")]),
            Some(Token("CLOUDFLARE_API_TOKEN"))
        );
        // Set at all, the current name is the one read: empty, no token.
        assert_eq!(
            chosen(&[("CLOUDFLARE_API_TOKEN", ""), ("CF_API_TOKEN", "u")]),
            None
        );
        assert_eq!(
            chosen(&[
                ("CLOUDFLARE_API_TOKEN", "t"),
                ("CF_API_KEY", "k"),
                ("CF_EMAIL", "e")
            ]),
            Some(GlobalKey {
                key: "CF_API_KEY",
                email: "CF_EMAIL"
            })
        );
        assert_eq!(
            chosen(&[("CLOUDFLARE_API_KEY", "k"), ("CF_EMAIL", "e")]),
            Some(GlobalKey {
                key: "CLOUDFLARE_API_KEY",
                email: "CF_EMAIL"
            })
        );
        // A key without its email is no credential; the token is taken.
        assert_eq!(
            chosen(&[("CF_API_KEY", "k"), ("CF_API_TOKEN", "t")]),
            Some(Token("CF_API_TOKEN"))
        );
        // An empty current name hides the older one, for the key and the
        // email as for the token.
        assert_eq!(
            chosen(&[
                ("CLOUDFLARE_API_KEY", ""),
                ("CF_API_KEY", "k"),
                ("CF_EMAIL", "e"),
                ("CF_API_TOKEN", "t")
            ]),
            Some(Token("CF_API_TOKEN"))
        );
        assert_eq!(
            chosen(&[
                ("CLOUDFLARE_API_KEY", "k"),
                ("CLOUDFLARE_EMAIL", ""),
                ("CF_EMAIL", "e")
            ]),
            None
        );
    }

    #[test]
    fn the_failures_an_unattended_job_meets_are_named_with_what_to_do() {
        let token = known_failure(
            "✘ [ERROR] A request to the Cloudflare API failed.\n  Authentication error [code: 10000]",
            "export qbtime_db_prod",
        )
        .unwrap();
        assert!(token.contains("CLOUDFLARE_API_TOKEN"), "{token}");
        let bucket = known_failure(
            "The specified bucket does not exist.",
            "upload r2://qbtime-d1-backups/prod/2026/12/backup-prod-20261202-0300.sql",
        )
        .unwrap();
        assert!(
            bucket.contains("npx wrangler r2 bucket create qbtime-d1-backups"),
            "{bucket}"
        );
        // doctor reads the bucket's lock rules: the bucket is named there too.
        let locks = known_failure(
            "The specified bucket does not exist.",
            "read the lock rules of R2 bucket qbtime-d1-backups (read-only)",
        )
        .unwrap();
        assert!(
            locks.contains("npx wrangler r2 bucket create qbtime-d1-backups`"),
            "{locks}"
        );
        let busy = known_failure(
            "D1 Export error: Currently processing a long-running export",
            "export qbtime_db_prod",
        )
        .unwrap();
        assert!(busy.contains("again later"), "{busy}");
        assert_eq!(known_failure("no such table: x", "read"), None);
    }

    use super::*;
    use crate::config::environment::Environments;

    fn failed(said: &[&str], stdout: Option<&str>) -> anyhow::Error {
        anyhow::Error::new(Failed {
            message: format!("wrangler failed: {}", stdout.unwrap_or_default()),
            said: said.iter().map(|l| (*l).to_owned()).collect(),
            stdout: stdout.map(str::to_owned),
            unread: false,
        })
    }

    #[test]
    fn a_failure_shows_wranglers_error_never_a_result_and_only_the_last_lines() {
        let error = r#"{"error": {"text": "A request to the Cloudflare API failed.", "notes": [{"text": "D1_ERROR: no such table: x"}], "kind": "error"}}"#;
        assert_eq!(
            printed_on_failure(error).unwrap(),
            "A request to the Cloudflare API failed.; D1_ERROR: no such table: x"
        );
        // A result printed before wrangler failed (a schema, rows).
        let result = r#"[{"results": [{"email": "someone@example.com"}], "success": true}]"#;
        let shown = printed_on_failure(result).unwrap();
        assert!(!shown.contains("example.com"), "{shown}");
        assert!(shown.contains("not shown"), "{shown}");
        let long: String = (1..=500).map(|i| format!("line {i}\n")).collect();
        let shown = printed_on_failure(&long).unwrap();
        assert!(
            shown.starts_with("(460 earlier lines not shown)\nline 461\n"),
            "{shown}"
        );
        assert!(shown.ends_with("line 500"), "{shown}");
        assert_eq!(printed_on_failure("  \n"), None);
    }

    #[test]
    fn only_r2s_own_error_means_the_object_is_missing() {
        let missing = "The specified key does not exist";
        for said in [
            "✘ [ERROR] The specified key does not exist.",
            "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m \x1b[1mThe specified key does not exist.\x1b[0m",
        ] {
            assert!(failed_saying(&failed(&[said], None), missing), "{said}");
        }
        // wrangler.toml's values, quoted in a configuration error.
        for said in [
            "✘ [ERROR] Processing wrangler.toml configuration:",
            r#"    - "compatibility_date" field should be a valid ISO-8601 date (YYYY-MM-DD), but got "The specified key does not exist.""#,
            r#"✘ [ERROR] Unexpected fields found in top-level field: "The specified key does not exist.""#,
        ] {
            assert!(!failed_saying(&failed(&[said], None), missing), "{said}");
        }
    }

    /// A constraint's failure, as the pinned wrangler prints it with
    /// SQLite's extended code after the primary one (a CHECK of a
    /// `d1_migrations` restored from a hostile dump, met by `migrations
    /// apply`), is an SQL error: it was told as "not an SQL error from D1:
    /// a network failure, a token…". A state code so extended is not.
    #[test]
    fn a_constraint_failure_with_its_extended_code_is_an_sql_error() {
        for said in [
            "✘ [ERROR] CHECK constraint failed: name < '0005': SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)",
            "✘ [ERROR] UNIQUE constraint failed: d1_migrations.name: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)",
            "  NOT NULL constraint failed: t.x: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_NOTNULL) [code: 7500]",
        ] {
            assert!(failed_in_sql(&failed(&[said], None)), "{said}");
        }
        let busy = "✘ [ERROR] database is locked: SQLITE_BUSY (extended: SQLITE_BUSY_SNAPSHOT)";
        assert!(!failed_in_sql(&failed(&[busy], None)), "{busy}");
    }

    /// D1's SQL errors, as the pinned wrangler prints them locally and
    /// from the API, are told from a failure that is not the SQL's.
    #[test]
    fn an_sql_error_from_d1_is_told_from_other_failures() {
        for said in [
            "✘ [ERROR] error in view v: no such table: main.notes: SQLITE_ERROR",
            "  no such table: no_such_table: SQLITE_ERROR [code: 7500]",
            "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m \x1b[1mUNIQUE constraint failed: t.id: SQLITE_CONSTRAINT\x1b[0m",
        ] {
            assert!(failed_in_sql(&failed(&[said], None)), "{said}");
        }
        for said in [
            "  Authentication error [code: 10000]",
            "  D1 DB is overloaded. Requests queued for too long. [code: 7500]",
            "✘ [ERROR] fetch failed",
            "✘ [ERROR] SQLITE_ERROR in a sentence, not at its end",
        ] {
            assert!(!failed_in_sql(&failed(&[said], None)), "{said}");
        }
        assert!(!failed_in_sql(&anyhow::anyhow!("x: SQLITE_ERROR")));
    }

    /// What the pinned wrangler printed for a remote import, up to its
    /// upload, and `ended` after it.
    fn import_failed(ended: &[&str]) -> anyhow::Error {
        let mut said = vec![
            "▲ [WARNING] ⚠️ This process may take some time, during which your D1 database will be unavailable to serve queries.",
            "🌀 Executing on remote database qbtime_db_prod (9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d):",
            "Note: if the execution fails to complete, your DB will return to its original state and you can safely retry.",
            "├ 🌀 Uploading 9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d-70a1827c6ffe95d01b961986e8b7ffd7.sql",
            "│ 🌀 Uploading complete.",
            "🌀 Starting import of 9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d-70a1827c6ffe95d01b961986e8b7ffd7.sql (12629 bytes).",
        ];
        said.extend(ended);
        failed(&said, None)
    }

    /// An import D1 answered failed (a poll with `status: "error"`) is told
    /// from one whose end wrangler lost: a poll answered 5xx, 429 or 524, a
    /// reset, wrangler stopped.
    #[test]
    fn an_import_d1_reported_failed_is_told_from_one_wrangler_lost() {
        for ended in [
            &[
                "✘ [ERROR] no such table: main.B: SQLITE_ERROR",
                "  Processed 2 queries.",
                "  Statement 3 failed: INSERT INTO orphans VALUES (1, 1);",
            ][..],
            &[
                "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m \x1b[1mstatement too long: SQLITE_TOOBIG\x1b[0m",
            ],
            &["✘ [ERROR] FOREIGN KEY constraint failed: SQLITE_CONSTRAINT"],
            // rvZ: D1's report of a failure of its state, not the SQL's,
            // is D1's report all the same.
            &["✘ [ERROR] database or disk is full: SQLITE_FULL"],
            &["✘ [ERROR] database is locked: SQLITE_BUSY [code: 7500]"],
            // #7554: D1's own error, no SQLite code, from a poll answered
            // `status: "error"`: wrangler's APIError, with its notes.
            &[
                "✘ [ERROR] Durable Object's isolate exceeded its memory limit and was reset.",
                "",
                "  Processed 0 queries.",
                "  ",
                "  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose",
            ],
        ] {
            assert!(
                failed_import_reported_by_d1(&import_failed(ended)),
                "{ended:?}"
            );
        }
        let lost = "✘ [ERROR] A request to the Cloudflare API (/accounts/0123456789abcdef0123456789abcdef/d1/database/9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d/import) failed.";
        for ended in [
            &[
                lost,
                "  Internal error: a fault injected by d1-loopback before the import ran [code: 7500]",
                "  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose",
            ][..],
            // An API error whose note is D1's SQL error: not the import's end.
            &[lost, "  no such table: t: SQLITE_ERROR [code: 7500]"],
            &[lost, "  Too many requests [code: 7429]"],
            &[
                "✘ [ERROR] Received a malformed response from the API",
                "  <html><head><title>524 A timeout occurred</title></head>",
            ],
            &[
                "✘ [ERROR] fetch failed",
                "If you think this is a bug then please create an issue at https://github.com/cloudflare/workers-sdk/issues/new/choose",
            ],
            &["✘ [ERROR] Not currently importing anything."],
            &[
                "✘ [ERROR] Received a malformed response from the API",
                "  <html><head><title>524 A timeout occurred</title></head>",
                "  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose",
            ],
            // rvAC 2: a poll answered with a WAF block page (cli.js's
            // throwWAFBlockError), with the APIError note: not D1's word.
            &[
                "✘ [ERROR] The Cloudflare API responded with a WAF block page instead of the expected JSON response",
                "  Cloudflare's firewall (WAF) blocked this API request. This is usually a false positive.",
                "  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose",
            ],
            &[
                "✘ [ERROR] Please verify your account's email address and try again.",
                "  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose",
            ],
            &[
                "✘ [ERROR] D1 reset before execute completed!",
                "  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose",
            ],
            // Stopped at the time limit: nothing after the upload.
            &[],
        ] {
            assert!(
                !failed_import_reported_by_d1(&import_failed(ended)),
                "{ended:?}"
            );
        }
        assert!(!failed_import_reported_by_d1(&anyhow::anyhow!(
            "✘ [ERROR] no such table: main.B: SQLITE_ERROR"
        )));
    }

    /// rvY 2: a lock held on the database, a full disk or an I/O error
    /// (SQLite's codes that tell the database's state, not the SQL's
    /// fault) was told as an SQL error, so a correct migration was blamed
    /// ("fix it and migrate again"). Those codes, in their extended forms
    /// too, are not the SQL's; the SQL's own are, extended too.
    /// The migration wrangler's `migrations apply` says failed, from its
    /// own line (cli.js: `Migration ${name} failed with the following
    /// errors:`), and none when it said no such line (stopped, killed).
    #[test]
    fn the_migration_wrangler_says_failed_is_read_from_its_own_line() {
        let said = [
            "\u{1b}[31m✘ \u{1b}[41;31m[\u{1b}[41;97mERROR\u{1b}[41;31m]\u{1b}[0m Migration 0006_fill.sql failed with the following errors:",
            "fetch failed",
        ];
        let e = failed(&said, None);
        assert_eq!(failed_migration(&e).as_deref(), Some("0006_fill.sql"));
        let e = e.context("applying migrations failed");
        assert_eq!(failed_migration(&e).as_deref(), Some("0006_fill.sql"));
        let e = failed(
            &["✘ [ERROR] fetch failed"],
            Some("Migration 0001_a.sql failed with the following errors:"),
        );
        assert_eq!(failed_migration(&e), None);
        assert_eq!(failed_migration(&anyhow::anyhow!("killed")), None);
    }

    #[test]
    fn a_locked_full_or_failing_database_is_not_an_sql_error() {
        let extended = [
            "BUSY_SNAPSHOT",
            "LOCKED_SHAREDCACHE",
            "IOERR_WRITE",
            "READONLY_DBMOVED",
        ];
        for code in STATE_CODES.iter().chain(&extended) {
            for said in [
                format!("✘ [ERROR] database is locked: SQLITE_{code}"),
                format!("  disk I/O error: SQLITE_{code} [code: 7500]"),
            ] {
                assert!(!failed_in_sql(&failed(&[&said], None)), "{said}");
            }
        }
        for code in [
            "CONSTRAINT_UNIQUE",
            "CONSTRAINT",
            "ERROR",
            "MISMATCH",
            "TOOBIG",
        ] {
            let said = format!("✘ [ERROR] UNIQUE constraint failed: t.id: SQLITE_{code}");
            assert!(failed_in_sql(&failed(&[&said], None)), "{said}");
        }
    }

    #[test]
    fn only_d1s_own_error_means_the_table_is_missing() {
        let missing = "no such table: d1_migrations:";
        // What the pinned wrangler prints locally and against the API.
        let local = r#"{"error":{"text":"no such table: d1_migrations: SQLITE_ERROR"}}"#;
        let remote = r#"{"error":{"text":"A request to the Cloudflare API (/accounts/a/d1/database/b/query) failed.","notes":[{"text":"no such table: d1_migrations: SQLITE_ERROR [code: 7500]"}],"code":7500}}"#;
        assert!(json_error_starts_with(&failed(&[], Some(local)), missing));
        assert!(json_error_starts_with(&failed(&[], Some(remote)), missing));
        // The same words quoted from wrangler.toml, in an error about
        // something else, on either stream, or not as JSON: a real failure.
        let quoted = r#"{"error":{"text":"\"compatibility_date\" field should be a valid ISO-8601 date, but got \"no such table: d1_migrations: x\""}}"#;
        let unknown = r#"{"error":{"text":"Processing wrangler.toml","notes":[{"text":"Unexpected fields found in top-level field: \"no such table: d1_migrations:\""}]}}"#;
        for e in [
            failed(&[], Some(quoted)),
            failed(&[], Some(unknown)),
            failed(&["no such table: d1_migrations: SQLITE_ERROR"], Some("")),
            failed(&[], Some("no such table: d1_migrations: SQLITE_ERROR")),
            failed(&[], None),
            anyhow::anyhow!("no such table: d1_migrations: SQLITE_ERROR"),
        ] {
            assert!(!json_error_starts_with(&e, missing), "{e:#}");
        }
    }

    fn envs() -> Environments {
        Environments::parse(include_str!("../../../wrangler.toml")).unwrap()
    }

    fn argv(inv: &Invocation) -> Vec<String> {
        inv.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// A live run's private directory is never swept, even where its pid
    /// names no process here: a run in another pid namespace (a container
    /// sharing /tmp, `unshare --pid`) has a pid this one cannot see, and
    /// sweeping its directory took its export's FIFO from under it (the
    /// backup then hung). The run holds a lock on its directory; a
    /// directory nobody holds, whose pid is gone, is swept as before.
    #[test]
    fn a_private_dir_held_by_a_run_whose_pid_is_not_seen_here_is_never_swept() {
        let temp = tempfile::tempdir().unwrap();
        let unseen = (4_000_000..4_194_304)
            .find(|pid| !crate::edge::machine::pid_exists(*pid))
            .unwrap();
        let live = temp
            .path()
            .join(format!("qbtime-xtask-export-{unseen}-0-1"));
        let left = temp
            .path()
            .join(format!("qbtime-xtask-export-{unseen}-1-2"));
        for dir in [&live, &left] {
            std::fs::create_dir(dir).unwrap();
        }
        let held = std::fs::File::open(&live).unwrap();
        held.lock_shared().unwrap();
        remove_stale_private_dirs(temp.path());
        assert!(live.is_dir(), "a live run's directory was swept");
        assert!(!left.exists(), "a killed run's directory was kept");
        drop(held);
        remove_stale_private_dirs(temp.path());
        assert!(!live.exists(), "once let go of, it is swept");
    }

    /// `sudo -E -u deploy cargo xtask migrate prod` with TMPDIR=/tmp/alice
    /// (alice's, 0755): nobody else can write there, but alice owns it and
    /// can rename what is in it, swapping the tool's private directory for
    /// hers. A temporary directory, or one its path goes through, owned by
    /// another user than this one or root is refused, naming TMPDIR. Only
    /// root can make a directory another user owns: run as another user,
    /// this checks (and says) only that one's own directory is accepted.
    #[test]
    fn a_tmpdir_another_user_owns_or_is_inside_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = tempfile::tempdir().unwrap();
        let mine = base.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();
        refuse_a_temp_dir_others_can_swap(&mine, " (TMPDIR names it)").unwrap();
        // SAFETY: getuid(2) has no preconditions.
        if unsafe { libc::getuid() } != 0 {
            eprintln!("not root: a directory another user owns cannot be made; not checked");
            return;
        }
        let theirs = base.path().join("alice");
        let inner = theirs.join("tmp");
        std::fs::create_dir_all(&inner).unwrap();
        for dir in [&theirs, &inner] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        for temp in [&theirs, &inner] {
            let err = refuse_a_temp_dir_others_can_swap(temp, " (TMPDIR names it)")
                .expect_err("a directory another user owns was used");
            let said = format!("{err:#}");
            assert!(said.contains("TMPDIR"), "{said}");
            assert!(said.contains("owned by"), "{said}");
            assert!(said.contains(&theirs.display().to_string()), "{said}");
            assert_eq!(
                crate::exit::Exit::of(&err),
                Some(crate::exit::Exit::CouldNotRun),
                "{said}"
            );
        }
    }

    /// rvAP: TMPDIR=/tmp/lnk, another user's symbolic link to this user's
    /// own 0700 directory. Each directory the path goes through was looked
    /// at where links lead (`metadata`), so the link's own owner never
    /// was: its owner can point it elsewhere at any time (in the sticky
    /// /tmp, a link is its owner's to replace), and the private
    /// directory's paths are built from the path as written. A link on the
    /// way owned by another user than this one or root is refused, naming
    /// TMPDIR and the uid; this user's own link is used. Only root can
    /// make a link another user owns.
    #[test]
    fn a_tmpdir_through_a_link_another_user_owns_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = tempfile::tempdir().unwrap();
        let mine = base.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = base.path().join("lnk");
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        refuse_a_temp_dir_others_can_swap(&link, " (TMPDIR names it)").unwrap();
        // SAFETY: getuid(2) has no preconditions.
        if unsafe { libc::getuid() } != 0 {
            eprintln!("not root: a link another user owns cannot be made; not checked");
            return;
        }
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        for temp in [link.clone(), link.join("sub")] {
            std::fs::create_dir_all(&temp).unwrap();
            let err = refuse_a_temp_dir_others_can_swap(&temp, " (TMPDIR names it)")
                .expect_err("a link another user owns was gone through");
            let said = format!("{err:#}");
            assert!(said.contains("TMPDIR"), "{said}");
            assert!(
                said.contains("link owned by another user (uid 65534)"),
                "{said}"
            );
            assert!(said.contains(&link.display().to_string()), "{said}");
            assert_eq!(
                crate::exit::Exit::of(&err),
                Some(crate::exit::Exit::CouldNotRun),
                "{said}"
            );
        }
    }

    /// A directory on TMPDIR's way that cannot be looked at (a parent this
    /// user cannot search: EACCES, as on a default Linux for another
    /// user's 0700 home) was passed over, and the rest of the path judged
    /// without it. It is refused, naming TMPDIR and the directory; one that
    /// does not exist is left to the caller, which says TMPDIR names no
    /// directory.
    #[test]
    fn a_tmpdir_whose_way_cannot_be_looked_at_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let temp = base.path().join("tmp");
        std::fs::create_dir(&temp).unwrap();
        let denied = |dir: &Path| match dir == base.path() {
            true => Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
            false => std::fs::symlink_metadata(dir),
        };
        let err = refuse_a_temp_dir_others_can_swap_by(&temp, " (TMPDIR names it)", denied)
            .expect_err("a directory that could not be looked at was passed over");
        let said = format!("{err:#}");
        assert!(said.contains("TMPDIR"), "{said}");
        assert!(said.contains("cannot be looked at"), "{said}");
        assert!(said.contains(&base.path().display().to_string()), "{said}");
        assert_eq!(
            crate::exit::Exit::of(&err),
            Some(crate::exit::Exit::CouldNotRun),
            "{said}"
        );
        let missing = base.path().join("missing");
        refuse_a_temp_dir_others_can_swap(&missing, " (TMPDIR names it)").unwrap();
    }

    /// The run is SIGKILLed while wrangler (a child, still applying a
    /// migration from the private directory) carries on: the next run's
    /// sweep must leave the directory while that child lives, so the
    /// child holds the directory's lock too; once it ends, it is swept.
    #[test]
    fn a_private_dir_a_live_child_holds_is_not_swept() {
        let mut dir = PrivateDir::create("child-holds").unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        // The run is gone: its own hold on the directory with it.
        drop(dir._held.take());
        let path = dir.path().to_path_buf();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let temp = path.parent().unwrap();
        let sweep = || {
            remove_dirs_of_killed_runs(
                temp,
                |n| (n == name).then_some(1),
                |_, _, _| Some(KILLED),
                "run",
            )
        };
        sweep();
        let kept = path.is_dir();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            kept,
            "the directory a live child (wrangler) reads was swept"
        );
        sweep();
        assert!(!path.exists(), "once the child is gone, it is swept");
    }

    #[test]
    fn a_private_dir_is_0700_and_its_name_gives_its_owner() {
        let dir = PrivateDir::create("wrangler-logs").unwrap();
        let name = dir.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(private_dir_owner(name), Some(std::process::id()));
        assert_eq!(private_dir_owner("qbtime-xtask-wrangler-logs-x-1-2"), None);
        assert_eq!(private_dir_owner("other-1-2-3"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert!(crate::edge::machine::pid_exists(std::process::id()));
    }

    #[test]
    fn the_timeout_is_two_hours_unless_set_to_whole_seconds() {
        assert_eq!(timeout_from(None).unwrap(), DEFAULT_TIMEOUT);
        assert_eq!(timeout_from(Some(" 90 ")).unwrap(), Duration::from_secs(90));
        for bad in ["0", "-5", "1h", ""] {
            let err = timeout_from(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(TIMEOUT_VAR), "{err}");
        }
    }

    #[test]
    fn a_timeout_out_of_range_is_told_the_range_allowed() {
        for bad in ["0", "99999999999999999999", "604801"] {
            let err = timeout_from(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("from 1 to 604800"), "{err}");
        }
        assert_eq!(
            timeout_from(Some("604800")).unwrap(),
            Duration::from_secs(604800)
        );
    }

    #[test]
    fn remote_export_names_env_remote_and_skips_wranglers_prompt() {
        let envs = envs();
        let cmds = Commands::new(Path::new("/p/wrangler.toml"));
        let inv = cmds.export(
            envs.resolve("prod").unwrap(),
            Path::new("/b/.x.partial"),
            ExportMode::Full,
            &[],
        );
        assert_eq!(
            argv(&inv),
            [
                "d1",
                "export",
                "qbtime_db_prod",
                "--config",
                "/p/wrangler.toml",
                "--env",
                "production",
                "--remote",
                "--output",
                "/b/.x.partial",
                "-y"
            ]
        );
    }

    #[test]
    fn local_export_has_no_env_and_carries_mode_and_tables() {
        let envs = envs();
        let cmds = Commands::new(Path::new("w.toml"));
        let inv = cmds.export(
            envs.resolve("local").unwrap(),
            Path::new("o.sql"),
            ExportMode::DataOnly,
            &["a".into(), "b c".into()],
        );
        assert_eq!(
            argv(&inv),
            [
                "d1",
                "export",
                "qbtime_db_local",
                "--config",
                "w.toml",
                "--local",
                "--output",
                "o.sql",
                "--no-schema",
                "--table=a",
                "--table=b c",
                "-y"
            ]
        );
        assert_eq!(
            inv.to_string(),
            "npx wrangler d1 export qbtime_db_local --config w.toml --local --output o.sql \
             --no-schema --table=a '--table=b c' -y"
        );
        let schema = cmds.export(
            envs.resolve("local").unwrap(),
            Path::new("o"),
            ExportMode::SchemaOnly,
            &[],
        );
        assert!(argv(&schema).contains(&"--no-data".to_owned()));
        // wrangler strips one pair of quotes after `=`: such a name gets one
        // more, and only such a name.
        let quoted = cmds.export(
            envs.resolve("local").unwrap(),
            Path::new("o"),
            ExportMode::Full,
            &["\"q\"".into(), "'".into(), "'a\"".into(), "it's".into()],
        );
        let tables: Vec<String> = argv(&quoted)
            .into_iter()
            .filter(|a| a.starts_with("--table"))
            .collect();
        assert_eq!(
            tables,
            [
                "--table=\"\"q\"\"",
                "--table=\"'\"",
                "--table='a\"",
                "--table=it's"
            ]
        );
    }

    #[test]
    fn time_travel_info_is_remote_by_nature_and_has_no_location_flag() {
        let envs = envs();
        let inv =
            Commands::new(Path::new("w.toml")).time_travel_info(envs.resolve("staging").unwrap());
        assert_eq!(
            argv(&inv),
            [
                "d1",
                "time-travel",
                "info",
                "qbtime_db_staging",
                "--config",
                "w.toml",
                "--env",
                "preview",
                "--json"
            ]
        );
        // What an error names when wrangler's purpose does not.
        assert_eq!(inv.database().as_deref(), Some("qbtime_db_staging"));
        let r2 = Commands::new(Path::new("w.toml")).pages_deploy("main");
        assert_eq!(r2.database(), None);
        let list = Commands::new(Path::new("w.toml")).d1_list();
        assert_eq!(list.database(), None, "{list}");
    }

    #[test]
    fn lock_rules_are_added_with_days_and_force_and_removed_by_name() {
        let cmds = Commands::new(Path::new("w.toml"));
        assert_eq!(
            argv(&cmds.r2_lock_add("b-1", "qbtime-prod-lock-372d", "prod/", 372)),
            [
                "r2",
                "bucket",
                "lock",
                "add",
                "b-1",
                "--config",
                "w.toml",
                "qbtime-prod-lock-372d",
                "prod/",
                "--retention-days",
                "372",
                "--force"
            ]
        );
        assert_eq!(
            cmds.r2_lock_remove("b-1", "r").to_string(),
            "npx wrangler r2 bucket lock remove b-1 --config w.toml --name r"
        );
        assert_eq!(
            cmds.r2_lock_list("b-1").to_string(),
            "npx wrangler r2 bucket lock list b-1 --config w.toml"
        );
    }

    #[test]
    fn create_names_the_database_and_the_hint_and_list_is_json() {
        let cmds = Commands::new(Path::new("/private/wrangler.toml"));
        assert_eq!(
            cmds.d1_create("qbtime_db_restored", Some("weur"))
                .to_string(),
            "npx wrangler d1 create qbtime_db_restored --config /private/wrangler.toml --location weur"
        );
        assert_eq!(
            cmds.d1_create("qbtime_db_restored", Some("weur"))
                .without_config(),
            "npx wrangler d1 create qbtime_db_restored --location weur"
        );
        assert_eq!(
            argv(&cmds.d1_create("x", None)),
            ["d1", "create", "x", "--config", "/private/wrangler.toml"]
        );
        assert_eq!(
            cmds.d1_list().to_string(),
            "npx wrangler d1 list --json --config /private/wrangler.toml"
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("SELECT 1;"), "'SELECT 1;'");
    }
}
