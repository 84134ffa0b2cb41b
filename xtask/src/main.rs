//! qbtime's operations tasks for its Cloudflare D1 database, run as
//! `cargo xtask <task>`. See README.md for each task.

mod commands;
mod config;
mod edge;
mod exit;
mod out;
mod redact;
mod steps;
#[cfg(test)]
mod tidy;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::{
    backup, deploy, diff, doctor, drill, hooks, keygen, list, migrate, offsite, prune, rehearse,
    restore, status, time_travel, verify, with_backup,
};
use crate::config::project::{Project, ProjectArgs};
use crate::edge::{signals, wrangler};
use crate::exit::Exit;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Back up and check qbtime's Cloudflare D1 databases with the pinned wrangler.",
    version
)]
struct Cli {
    #[command(flatten, next_help_heading = "Global options")]
    project: ProjectArgs,
    #[command(flatten, next_help_heading = "Global options")]
    output: OutputArgs,
    #[command(subcommand)]
    task: Task,
}

/// How much every command prints (see `out.rs`).
#[derive(Debug, clap::Args)]
struct OutputArgs {
    /// Print nothing but errors and warnings (and the output asked for, such as --json or list).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also show wrangler's own output, live (redacted).
    #[arg(short, long, global = true)]
    verbose: bool,
}

impl OutputArgs {
    fn level(&self) -> out::Level {
        match (self.quiet, self.verbose) {
            (true, _) => out::Level::Quiet,
            (_, true) => out::Level::Verbose,
            _ => out::Level::Normal,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Export an environment's database to backups/ with a manifest.
    Backup(crate::steps::backup::BackupArgs),
    /// Apply pending migrations after a full backup; --check finds edited applied migrations.
    Migrate(migrate::MigrateArgs),
    /// The deploy: doctor, pending migrations, backup (encrypted, offsite), migrate, Pages deploy, status.
    Deploy(deploy::DeployArgs),
    /// Take a backup, then run a command (for bulk operations).
    WithBackup(with_backup::WithBackupArgs),
    /// Load a backup into an environment, guarded, repaired and checked.
    Restore(crate::steps::restore::RestoreArgs),
    /// The quarterly restore rehearsal: newest good prod backup into staging, checked and logged.
    Drill(drill::DrillArgs),
    /// D1 Time Travel: a bookmark now or at a time, and a guarded restore to one.
    #[command(subcommand)]
    TimeTravel(time_travel::TimeTravelCommand),
    /// Delete old backups by the retention policy in backups.toml.
    Prune(prune::PruneArgs),
    /// Check a backup by loading it under D1's rules into a scratch database.
    Verify(verify::VerifyArgs),
    /// What changed between two backups, or a backup and live:ENV (read-only); exit 1 when they differ.
    Diff(diff::DiffArgs),
    /// List backups, newest first, with their verified state.
    List(list::ListArgs),
    /// Copy a backup and its manifest to the environment's R2 bucket, then read it back.
    Upload(offsite::UploadArgs),
    /// The offsite copies in R2: list, fetch, the lifecycle rule, and the lock.
    #[command(subcommand)]
    Offsite(offsite::OffsiteCommand),
    /// Make an age identity file (0600) for encrypted backups; prints its recipient.
    Keygen(keygen::KeygenArgs),
    /// The whole remote cycle offline: a loopback Cloudflare API over a copy of a backup.
    Rehearse(rehearse::RehearseArgs),
    /// Check wrangler, Node, credentials, configuration, backups/ and hooks.
    Doctor(crate::steps::doctor::DoctorArgs),
    /// Each environment at a glance: newest verified backup and its age, offsite, last drill and Time Travel restore; fails when one is older than its max_age.
    Status(crate::steps::status::StatusArgs),
    /// Manage the git hooks that keep backups out of commits.
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// Print a shell completion script (for the command `xtask`; see the README).
    Completions {
        /// The shell to complete for.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

/// The variables that stand for a flag (`QBTIME_BACKUP_DIR` for
/// `--backup-dir`, …): one set but empty (`export QBTIME_BACKUP_DIR=`, a CI
/// variable from a secret that is not set) is taken as unset, as a shell
/// script would take it, not as the flag given an empty value.
const FLAG_VARIABLES: [&str; 3] = [
    "QBTIME_WRANGLER_CONFIG",
    "QBTIME_BACKUP_DIR",
    crate::edge::stored::IDENTITY_VAR,
];

fn main() -> ExitCode {
    prepare_process();
    // Built once: parsing, its refusals and the command names all read it.
    let mut definition = command_line();
    let words = typed_words(&definition);
    let matches = match definition.try_get_matches_from_mut(&words) {
        Ok(matches) => matches,
        Err(e) => {
            let e = usage_as_typed(with_key_pieces_unshown(e), &definition, &words);
            let e = usage_without_suggestion(e, &definition, &words);
            return refused_by_clap(&with_tips_that_run(e));
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return refused_by_clap(&e),
    };
    // clap checks `conflicts_with` between global flags only when both
    // are written on one level: `-q list -v` would run quiet.
    if cli.output.quiet && cli.output.verbose {
        let e = definition.error(
            clap::error::ErrorKind::ArgumentConflict,
            "the argument '--quiet' cannot be used with '--verbose'",
        );
        return refused_by_clap(&e);
    }
    let command = command_words(&matches);
    out::init(cli.output.level(), cli.task.prints_json());
    let typed = typed_globals(&matches);
    // A dry run is asked for its plan: with -q too, the plan is printed.
    out::set_plan_asked(asks_for_a_dry_run(&matches));
    let settings = refuse_flags_that_do_nothing(&cli, &matches).and_then(|()| {
        match cli.task.runs_migrations_in_memory() {
            true => steps::migrations::set_trial_seconds_from_env(),
            false => Ok(()),
        }
    });
    if let Err(err) = settings {
        let code = Exit::of(&err).unwrap_or(Exit::CouldNotRun).code();
        out::failure(&command, &redact::text(&format!("{err:#}")), code);
        return ExitCode::from(code);
    }
    if let Task::Completions { shell } = cli.task {
        return print_completions(shell, &command);
    }
    // Every run, not only those that start wrangler, removes the logs of
    // runs that were killed.
    wrangler::sweep_stale_private_dirs();
    // verify keeps 1 for "the backup is bad", and diff for "they differ":
    // anything that stops them from running at all, such as a missing
    // wrangler.toml, is 2.
    let unmarked = match cli.task {
        Task::Verify(_) | Task::Diff(_) => Exit::CouldNotRun,
        _ => Exit::Failure,
    };
    let result = run(cli, (&typed, command_names(&definition)));
    // Everything the command held has been dropped (and so cleaned up) here.
    if let Some(signal) = signals::received() {
        return interrupted(signal, &command);
    }
    exit_with(result, unmarked, &command)
}

/// Readies the process before anything else runs, while no other thread
/// does: a signal before this takes the default action (see
/// `signals::install`), a flag's variable set but empty is unset, and a
/// file-size limit fails writes instead of killing the process.
fn prepare_process() {
    signals::install();
    let typed = std::env::args_os().skip(1);
    let variables = FLAG_VARIABLES.iter().filter_map(std::env::var_os);
    out::set_typed_words(
        typed
            .chain(variables)
            .map(|w| w.to_string_lossy().into_owned()),
    );
    for name in FLAG_VARIABLES {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            // SAFETY: no other thread runs yet; nothing reads the
            // environment meanwhile.
            unsafe { std::env::remove_var(name) };
        }
    }
    // A file-size limit (`ulimit -f`, a full quota) must make writes fail
    // with an error we report and clean up after, not kill the process
    // mid-write. Children (wrangler, age) inherit the ignored signal.
    #[cfg(unix)]
    // SAFETY: called before any thread starts; SIG_IGN is a valid disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The command line as the tool takes it: [`Cli`], with each command's
/// help leaving out the global options it refuses ([`DO_NOTHING_HERE`]),
/// so that it lists exactly those it takes
/// (`tests::each_commands_help_lists_exactly_the_global_options_it_takes`).
fn command_line() -> clap::Command {
    command_line_named("cargo xtask")
}

/// [`command_line`] with the name its usage lines and completions give
/// it: set before it is built, which names each command after it.
fn command_line_named(name: &'static str) -> clap::Command {
    let mut cli = Cli::command().bin_name(name);
    // Built first: clap copies the global options into each command then.
    cli.build();
    cli.mut_subcommands(|sub| {
        let ids: Vec<&str> = refused_by(sub.get_name()).collect();
        hidden(sub, &ids)
    })
}

/// The words typed, each `--json` written before the command's name
/// moved after it: `cargo xtask --json list` is `list --json`, as `-q`
/// and `-v` are taken on either side of it. A command without `--json`
/// then refuses it as it does after its name, its usage line naming it
/// (`silent_flags::json_before_the_commands_name_is_taken_as_after_it`).
fn typed_words(definition: &clap::Command) -> Vec<std::ffi::OsString> {
    json_after_the_command(definition, std::env::args_os().collect())
}

/// `words` with each `--json` before the name of the command it runs (at
/// any depth: `offsite list`) moved to just after that name; as typed
/// when there is none, or a word before it that `definition` does not
/// know (clap then says which).
fn json_after_the_command(
    definition: &clap::Command,
    words: Vec<std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let (mut level, mut at, mut json) = (definition, 1, Vec::new());
    let name = loop {
        let Some(word) = words.get(at).and_then(|w| w.to_str()) else {
            return words;
        };
        let takes_value = |a: &clap::Arg| a.get_action().takes_values();
        let value_follows = match word.strip_prefix("--") {
            Some("json") => {
                json.push(at);
                false
            }
            Some("") => return words,
            Some(long) if !long.contains('=') => {
                { level.get_arguments() }.any(|a| a.get_long() == Some(long) && takes_value(a))
            }
            Some(_) => false,
            // In `-qv`, `-dNAME`, the first letter that takes a value
            // takes the rest, or the next word when it is the last.
            None if word.len() > 1 && word.starts_with('-') => { word[1..].char_indices() }
                .find(|(_, c)| {
                    { level.get_arguments() }.any(|a| a.get_short() == Some(*c) && takes_value(a))
                })
                .is_some_and(|(i, c)| 1 + i + c.len_utf8() == word.len()),
            None => match level.find_subcommand(word) {
                Some(sub) if sub.has_subcommands() => {
                    level = sub;
                    false
                }
                Some(_) => break at,
                None => return words,
            },
        };
        at += if value_follows { 2 } else { 1 };
    };
    if json.is_empty() {
        return words;
    }
    let mut moved: Vec<_> = { words.into_iter().enumerate() }
        .filter(|(i, _)| !json.contains(i))
        .map(|(_, w)| w)
        .collect();
    let after = name - json.len() + 1;
    moved.splice(after..after, json.iter().map(|_| "--json".into()));
    moved
}

/// `command` and the commands under it (`hooks install`), with the
/// options `ids` left out of their help. Changed in place (`mut_args`), as
/// clap finds a built command's options by their place.
fn hidden(command: clap::Command, ids: &[&str]) -> clap::Command {
    command
        .mut_args(|a| match ids.contains(&a.get_id().as_str()) {
            true => a.hide(true),
            false => a,
        })
        .mut_subcommands(|sub| hidden(sub, ids))
}

/// `command` as if no variable gave an option (`QBTIME_BACKUP_DIR` for
/// `--backup-dir`, …).
fn without_variables(command: clap::Command) -> clap::Command {
    command
        .mut_args(|a| a.env(None))
        .mut_subcommands(without_variables)
}

/// clap's refusal, its usage line showing what is to be typed. clap puts
/// in it each option that was given, those a variable gives too, as if
/// they had to be typed: `QBTIME_BACKUP_DIR` set, `restore` without its
/// arguments showed `--backup-dir <DIR>` in it. The usage line of the same
/// words parsed as if no variable were set is shown instead; an option
/// typed is still in it. `definition` is the command line that refused
/// `words`.
fn usage_as_typed(
    mut e: clap::Error,
    definition: &clap::Command,
    words: &[std::ffi::OsString],
) -> clap::Error {
    use clap::error::ContextKind::Usage;
    if e.get(Usage).is_none() {
        return e;
    }
    if let Err(bare) = without_variables(definition.clone()).try_get_matches_from(words)
        && bare.kind() == e.kind()
        && let Some(usage) = bare.get(Usage)
    {
        e.insert(Usage, usage.clone());
    }
    e
}

/// clap's refusal of an option the command does not take, near one it
/// does (`with-backup local --json`, near `--reason`): clap's usage line
/// holds the option it suggests as if it had to be typed (`with-backup
/// --reason <REASON> <ENV> -- <COMMAND>...`), so the command's own usage
/// line is shown instead
/// (`refusals::an_unknown_option_near_reason_does_not_make_reason_look_required`).
fn usage_without_suggestion(
    mut e: clap::Error,
    definition: &clap::Command,
    words: &[std::ffi::OsString],
) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    if e.get(ContextKind::SuggestedArg).is_none() || e.get(ContextKind::Usage).is_none() {
        return e;
    }
    let mut built = definition.clone();
    built.build();
    let typed = { words.iter().skip(1) }.find_map(|w| built.find_subcommand(w.to_str()?));
    if let Some(command) = typed {
        let usage = command.clone().render_usage();
        e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    }
    e
}

/// clap's refusal of a value (`--reason`'s, refused by
/// [`crate::steps::backup::parse_reason`]) that holds a piece of an age
/// secret key: clap quotes the value (`invalid value '…' for '--reason
/// <REASON>'`), and the redaction of printed text knows only a whole key.
/// The value is not shown.
fn with_key_pieces_unshown(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    if let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue)
        && d1_core::sealed::holds_key_material(value)
    {
        let unshown = ContextValue::String("(not shown)".to_owned());
        e.insert(ContextKind::InvalidValue, unshown);
    }
    e
}

/// clap's refusal of an option a command does not take, typed where a
/// positional argument is still to fill (`with-backup local --replace`,
/// `verify --replace`): its tip "to pass '--replace' as a value, use '--
/// --replace'" fails as printed (no command named `--replace`, no backup
/// file of that name), so it is replaced by the command's help, which
/// lists what it takes
/// (`tired_operator::a_misplaced_option_is_never_told_to_pass_it_after_dash_dash`).
fn with_tips_that_run(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::StyledStrs(tips)) = e.get(ContextKind::Suggested) else {
        return e;
    };
    let after_dashes = |tip: &clap::builder::StyledStr| tip.to_string().contains("use '-- ");
    if !tips.iter().any(after_dashes) {
        return e;
    }
    let usage = e.get(ContextKind::Usage).map(ToString::to_string);
    let usage = usage.unwrap_or_default();
    let words = { usage.split_whitespace() }
        .skip_while(|w| *w != "cargo")
        .take_while(|w| {
            w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
        });
    let command = words.collect::<Vec<_>>().join(" ");
    let mut kept: Vec<clap::builder::StyledStr> =
        tips.iter().filter(|t| !after_dashes(t)).cloned().collect();
    kept.push(format!("`{command} --help` lists the options it takes, and where").into());
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(kept));
    e
}

/// How clap's refusal (or its help) is printed: as clap prints it, but a
/// typed word it echoes (`unexpected argument 'WORD'`) shown escaped
/// ([`out::typed_shown`]), never with its control characters raw.
fn refused_by_clap(e: &clap::Error) -> ExitCode {
    out::clap_said(&e.render().to_string(), e.use_stderr());
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// `completions`: prints the script for `shell`; a failure when stdout
/// did not take it whole.
fn print_completions(shell: clap_complete::Shell, command: &str) -> ExitCode {
    let mut script = Vec::new();
    let mut definition = completions_definition();
    clap_complete::generate(shell, &mut definition, "xtask", &mut script);
    out::raw(&script);
    if let Some(why) = out::stdout_lost() {
        let code = Exit::Failure.code();
        out::failure(command, &stdout_lost_message(&why, true), code);
        return ExitCode::from(code);
    }
    ExitCode::SUCCESS
}

/// The command line the completion scripts are made from: [`Cli`], with
/// each global option some command refuses ([`DO_NOTHING_HERE`]) given to
/// each command that takes it, not to all. clap_complete offers a hidden
/// option all the same, so that `keygen --<Tab>` offered `--backup-dir`
/// and `--database`, which keygen refuses (MF): a completion offers no
/// option the command refuses, and every one it takes
/// (`silent_flags::completions_offer_no_option_the_command_refuses_and_each_it_takes`).
fn completions_definition() -> clap::Command {
    let refused: std::collections::BTreeSet<&str> =
        DO_NOTHING_HERE.iter().map(|(_, id, _)| *id).collect();
    let cli = Cli::command().bin_name("xtask");
    let globals: Vec<clap::Arg> = { cli.get_arguments() }
        .filter(|a| refused.contains(a.get_id().as_str()))
        .map(|a| a.clone().global(false))
        .collect();
    cli.mut_args(|a| match refused.contains(a.get_id().as_str()) {
        true => a.global(false),
        false => a,
    })
    .mut_subcommands(|sub| {
        let ids: Vec<&str> = refused_by(sub.get_name()).collect();
        with_globals(sub, &globals, &ids)
    })
}

/// `command` and the commands under it, each given the options of
/// `globals` but those of `refused` ([`completions_definition`]).
fn with_globals(command: clap::Command, globals: &[clap::Arg], refused: &[&str]) -> clap::Command {
    { globals.iter() }
        .filter(|a| !refused.contains(&a.get_id().as_str()))
        .fold(command, |command, a| command.arg(a.clone()))
        .mut_subcommands(|sub| with_globals(sub, globals, refused))
}

/// The exit of a command stopped by `signal`, saying what stays changed
/// after it.
fn interrupted(signal: i32, command: &str) -> ExitCode {
    let code = signals::exit_code(signal);
    // Stopped after a change that stays: say what it is, not that
    // nothing happened.
    let after = match signals::what_changed() {
        Some(changed) => redact::text(&changed),
        None if signals::was_left_told() => "the backup lock keeps what it was doing: \
            the next run says what the database may hold, and the first run for the same \
            environment the way back (a run for another keeps it for that one)"
            .to_owned(),
        None => "the next run starts clean".to_owned(),
    };
    out::failure(
        command,
        &format!("{}; {after}", signals::Interrupted(signal)),
        code,
    );
    ExitCode::from(code)
}

/// The exit of a command that ran to its end with `result`: its error
/// said (exit `unmarked` when the error names none), and output lost on
/// the way to stdout said too.
fn exit_with(result: anyhow::Result<ExitCode>, unmarked: Exit, command: &str) -> ExitCode {
    let lost = out::stdout_lost();
    match result {
        Ok(code) if code == ExitCode::SUCCESS => match lost {
            // The output asked for was lost (a full disk): the command's
            // own success would be a lie to the script that reads it.
            Some(why) => {
                let code = unmarked.code();
                out::failure(command, &stdout_lost_message(&why, true), code);
                ExitCode::from(code)
            }
            None => code,
        },
        // A command that failed keeps its exit, and says its output was
        // lost too (a BAD verdict's document).
        Ok(code) => {
            if let Some(why) = lost {
                out::error(&stdout_lost_message(&why, false));
            }
            code
        }
        Err(err) => {
            let (text, fixed) = crate::edge::fsutil::with_fix(&err);
            let unmarked = if fixed { Exit::CouldNotRun } else { unmarked };
            let code = Exit::of(&err).unwrap_or(unmarked).code();
            out::failure(command, &redact::text(&text), code);
            if let Some(why) = lost {
                out::error(&stdout_lost_message(&why, false));
            }
            ExitCode::from(code)
        }
    }
}

/// The error for output asked for that stdout did not take whole. After a
/// command that `succeeded`, what it did stands, and is not to be repeated.
fn stdout_lost_message(why: &str, succeeded: bool) -> String {
    let done = match succeeded {
        true => {
            " The command itself ran to its end, and what it did stays done (a backup \
             written, a restore made): only its output was lost. Free space where stdout goes, \
             or send it elsewhere; `cargo xtask list` and `status` show what is there now"
        }
        false => " Free space where stdout goes, or send it elsewhere",
    };
    format!("could not write the output to stdout ({why}): what it holds is incomplete.{done}")
}

/// Whether the command, at any depth, was given `--dry-run`.
fn asks_for_a_dry_run(matches: &clap::ArgMatches) -> bool {
    let mut at = Some(matches);
    while let Some(m) = at {
        if let Ok(Some(true)) = m.try_get_one::<bool>("dry_run") {
            return true;
        }
        at = m.subcommand().map(|(_, sub)| sub);
    }
    false
}

/// The command's words, as typed: `prune`, `offsite list`.
/// Which global options were typed on the command line (`config`,
/// `backup_dir`, `database`), not taken from the environment.
fn typed_globals(matches: &clap::ArgMatches) -> Vec<&'static str> {
    ["config", "backup_dir", "database"]
        .into_iter()
        .filter(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .collect()
}

/// The tool's command names and their aliases (`backup`, `time-travel`).
fn command_names(definition: &clap::Command) -> Vec<String> {
    definition
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
        .map(str::to_owned)
        .collect()
}

fn command_words(matches: &clap::ArgMatches) -> String {
    let mut words = Vec::new();
    let mut at = matches;
    while let Some((name, sub)) = at.subcommand() {
        words.push(name);
        at = sub;
    }
    words.join(" ")
}

impl Task {
    /// Whether the command prints one JSON document on stdout (`--json`),
    /// so that everything for people goes to stderr.
    /// Whether the command may run the migrations in memory, and so reads
    /// their budget (`QBTIME_TRIAL_SECONDS`): a listing, a status, a check
    /// of the set-up, a prune, the offsite copies, a key and the hooks
    /// never do, and run whatever it holds (rvCN).
    fn runs_migrations_in_memory(&self) -> bool {
        !matches!(
            self,
            Task::List(_)
                | Task::Status(_)
                | Task::Doctor(_)
                | Task::Prune(_)
                | Task::Offsite(_)
                | Task::Keygen(_)
                | Task::Hooks(_)
                | Task::Completions { .. }
        )
    }

    fn prints_json(&self) -> bool {
        match self {
            Task::Backup(a) => a.json,
            Task::Restore(a) => a.json,
            Task::Prune(a) => a.json,
            Task::Migrate(a) => a.json,
            Task::Rehearse(a) => a.json,
            Task::Verify(a) => a.json,
            Task::Diff(a) => a.json,
            Task::List(a) => a.json,
            Task::Doctor(a) => a.json,
            Task::Status(a) => a.json,
            Task::Offsite(offsite::OffsiteCommand::List { json, .. }) => *json,
            Task::Offsite(offsite::OffsiteCommand::Reindex { json, .. }) => *json,
            Task::TimeTravel(time_travel::TimeTravelCommand::Info { json, .. }) => *json,
            _ => false,
        }
    }
}

/// The global options a command refuses whatever else it is given, as
/// they would do nothing there, and why. Its help does not list them
/// ([`command_line`]). Each is refused typed on the command line; one
/// that only its variable gives (`QBTIME_BACKUP_DIR`,
/// `QBTIME_WRANGLER_CONFIG`), a setting for every command, is passed over
/// (`--database` has none).
const DO_NOTHING_HERE: [(&str, &str, &str); 8] = [
    (
        "doctor",
        "database",
        "doctor checks every environment's databases",
    ),
    (
        "keygen",
        "database",
        "keygen makes a key, for no one database",
    ),
    (
        "keygen",
        "backup_dir",
        "`cargo xtask keygen` reads and writes no backup",
    ),
    (
        "hooks",
        "database",
        "the git hooks are the checkout's, not a database's",
    ),
    (
        "hooks",
        "backup_dir",
        "`cargo xtask hooks` reads and writes no backup",
    ),
    (
        "completions",
        "database",
        "completions print a script, for no database",
    ),
    (
        "completions",
        "backup_dir",
        "`cargo xtask completions` reads and writes no backup",
    ),
    (
        "completions",
        "config",
        "completions print a script, reading no configuration",
    ),
];

/// The ids of the global options `command` refuses ([`DO_NOTHING_HERE`]).
fn refused_by(command: &str) -> impl Iterator<Item = &'static str> {
    { DO_NOTHING_HERE.iter() }
        .filter(move |(c, ..)| *c == command)
        .map(|(_, id, _)| *id)
}

/// Global flags given to a command they would do nothing for are refused
/// (exit 2) before it runs, as every flag that would do nothing is
/// (`silent_flags::*`).
fn refuse_flags_that_do_nothing(cli: &Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let command = matches.subcommand_name().unwrap_or_default();
    for (_, id, why) in DO_NOTHING_HERE.iter().filter(|(c, ..)| *c == command) {
        if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            let value = { matches.get_raw(id).into_iter().flatten() }
                .next()
                .unwrap_or_default()
                .to_string_lossy();
            crate::stop!(
                Exit::CouldNotRun,
                "--{} {} would do nothing here: {why}. Leave it out. Nothing was run.",
                id.replace('_', "-"),
                value.escape_debug()
            );
        }
    }
    database_picks_none_of_these_files(cli)
}

/// `--database` picks one database of an environment: verify and diff
/// given only files, whose manifests say whose they are, would take it and
/// do nothing with it. Refused; with `latest:ENV` (or `live:ENV`) it picks.
fn database_picks_none_of_these_files(cli: &Cli) -> anyhow::Result<()> {
    let Some(database) = &cli.project.database else {
        return Ok(());
    };
    use config::project::names_an_environment as names_env;
    let why = match &cli.task {
        Task::Verify(a) if !names_env(&a.backup) => {
            "verify reads whose backup a file is from its manifest; --database picks one only \
             with latest:ENV"
        }
        Task::Diff(a) if !names_env(&a.a) && !names_env(&a.b) => {
            "diff reads whose backups files are from their manifests; --database picks one only \
             with latest:ENV or live:ENV"
        }
        _ => return Ok(()),
    };
    crate::stop!(
        Exit::CouldNotRun,
        "--database {} would do nothing here: {why}. Leave it out. Nothing was run.",
        database.escape_debug()
    );
}

/// What `list` takes of the configuration: its environments, when it
/// reads, and the databases whose backups it shows ([`resolve_env`]).
type Listed = (
    Option<config::environment::Environments>,
    Option<Vec<config::environment::Environment>>,
);

/// The configuration's environments, when it reads (`list` tells by them
/// a backup recorded under an environment that is not its database's),
/// and the databases `list` shows the backups of: those the environment
/// named on the command line stands for, or those `--database` picks in
/// every environment (`None`: every database). The configuration is read
/// once, for both.
fn resolve_env(project: &Project, word: Option<&str>) -> anyhow::Result<Listed> {
    let envs = project.environments();
    if word.is_none() && project.database.is_none() {
        return Ok((envs.ok(), None));
    }
    let envs = envs?;
    let chosen = { envs.chosen(word)? }.map(|dbs| dbs.into_iter().cloned().collect());
    Ok((Some(envs), chosen))
}

/// Runs the command; `typed`: the global options typed on the command
/// line, `names`: the tool's command names ([`command_names`]).
fn run(cli: Cli, (typed, names): (&[&str], Vec<String>)) -> anyhow::Result<ExitCode> {
    let sh = xshell::Shell::new()?;
    let project = Project::resolve(&cli.project)?;
    crate::steps::rehearsals::refuse_unless_live(&project.backup_dir)?;
    // Those that reach the API, or write to backups/ or docs/: a loopback
    // left from part of a rehearsal's exports (`refuse_loopback_outside`).
    if !matches!(
        cli.task,
        Task::List(_)
            | Task::Verify(_)
            | Task::Status(_)
            | Task::Doctor(_)
            | Task::Keygen(_)
            | Task::Hooks(_)
            | Task::Rehearse(_)
    ) {
        crate::steps::rehearsals::refuse_loopback_outside(&project.backup_dir)?;
    }
    out::set_typed_globals(project.globals_to_paste(&cli.project, typed), names);
    sh.change_dir(&project.config_dir);
    match &cli.task {
        Task::Backup(args) => backup::run_each(&sh, &project, args).map(|_| ExitCode::SUCCESS),
        Task::Migrate(args) => migrate::run(&sh, &project, args).map(|()| ExitCode::SUCCESS),
        Task::Deploy(args) => deploy::run(&sh, &project, args).map(|()| ExitCode::SUCCESS),
        Task::WithBackup(args) => with_backup::with_backup(&sh, &project, args),
        Task::Restore(args) => restore::run(&sh, &project, args).map(|()| ExitCode::SUCCESS),
        Task::Drill(args) => drill::run(&sh, &project, args).map(|()| ExitCode::SUCCESS),
        Task::TimeTravel(command) => {
            time_travel::run(&sh, &project, command).map(|()| ExitCode::SUCCESS)
        }
        Task::Prune(args) => prune::run(&project, args).map(|()| ExitCode::SUCCESS),
        Task::Verify(args) => Ok(verify::run(&project, args)),
        Task::Diff(args) => diff::run(&sh, &project, args),
        Task::List(args) => {
            let (all, shown) = resolve_env(&project, args.env.as_deref())?;
            list::run(
                &project.backup_dir,
                all.as_ref(),
                shown.as_deref(),
                args.json,
            )
            .map(|()| ExitCode::SUCCESS)
        }
        Task::Doctor(args) => doctor::run(&sh, &project, args).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Task::Upload(args) => offsite::run_upload(&sh, &project, args).map(|()| ExitCode::SUCCESS),
        Task::Offsite(command) => offsite::run(&sh, &project, command).map(|()| ExitCode::SUCCESS),
        Task::Keygen(args) => keygen::run(&sh, &project, args).map(|()| ExitCode::SUCCESS),
        Task::Rehearse(args) => rehearse::run(&project, args).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Task::Hooks(command) => hooks::run(&sh, &project, command).map(|()| ExitCode::SUCCESS),
        Task::Status(args) => status::run(&project, args).map(|fresh| {
            if fresh {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Task::Completions { .. } => unreachable!("printed before the project is resolved"),
    }
}

/// Each `cargo xtask …` a message gives between backquotes, to paste,
/// parsed by the command line's own parser: `Err` names the first that
/// does not parse (a required argument left out, an option misspelled).
#[cfg(test)]
pub(crate) fn pasted_commands_parse(message: &str) -> Result<usize, String> {
    let pasted: Vec<&str> = { message.split('`').skip(1).step_by(2) }
        .filter(|quoted| quoted.starts_with("cargo xtask "))
        .collect();
    for command in &pasted {
        let words = command.split_whitespace().skip(1);
        Cli::try_parse_from(words).map_err(|e| format!("`{command}` does not parse: {e}"))?;
    }
    Ok(pasted.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::{ContextKind, ContextValue};
    use std::collections::BTreeSet;

    /// Every argument of every command, with the path of commands to it.
    fn every_arg(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            out.push((path.to_owned(), arg.clone()));
        }
        for sub in command.get_subcommands() {
            every_arg(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_flag_and_argument_has_a_help_line() {
        let mut command = command_line();
        command.build();
        let mut args = Vec::new();
        every_arg(&command, "cargo xtask", &mut args);
        let missing: Vec<String> = args
            .iter()
            .filter(|(_, arg)| {
                arg.get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
            })
            .map(|(path, arg)| format!("{path} {}", arg.get_id()))
            .collect();
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
        assert!(
            args.len() > 50,
            "the walk found only {} arguments",
            args.len()
        );
    }

    /// `--json` before the command's name is found past the values of
    /// options (a `--config` file named `list`), in letters run together
    /// (`-qv`) and under a command's commands (`offsite list`).
    #[test]
    fn json_is_moved_past_option_values_to_just_after_the_commands_name() {
        let moved = |typed: &str| {
            let words = typed.split_whitespace().map(Into::into).collect();
            let words = json_after_the_command(&command_line(), words);
            { words.iter().map(|w| w.to_string_lossy()) }
                .collect::<Vec<_>>()
                .join(" ")
        };
        for (typed, taken) in [
            ("x --json list", "x list --json"),
            (
                "x --config list --json -qv status local",
                "x --config list -qv status --json local",
            ),
            (
                "x --database=d --json offsite -q list",
                "x --database=d offsite -q list --json",
            ),
            (
                "x --json --json keygen --out k",
                "x keygen --json --json --out k",
            ),
            // No command, or one clap does not know: left for clap to refuse.
            ("x --json", "x --json"),
            ("x --json -- list", "x --json -- list"),
            ("x --json bogus", "x --json bogus"),
        ] {
            assert_eq!(moved(typed), taken, "{typed}");
        }
    }

    #[test]
    fn usage_says_cargo_xtask_and_global_options_stand_apart() {
        let mut command = command_line();
        command.build();
        let help = command
            .find_subcommand_mut("prune")
            .unwrap()
            .render_help()
            .to_string();
        assert!(help.contains("Usage: cargo xtask prune"), "{help}");
        let (own, global) = help.split_once("Global options:").expect(&help);
        assert!(
            own.contains("--keep-daily") && !own.contains("--backup-dir"),
            "{help}"
        );
        assert!(
            global.contains("--backup-dir") && global.contains("--config"),
            "{help}"
        );
    }

    /// The long options a command's `--help` lists (`--backup-dir`,
    /// `--quiet`): read from its text, as the operator reads it.
    fn options_listed(command: &clap::Command) -> BTreeSet<String> {
        let help = command.clone().render_help().to_string();
        { help.lines().map(str::trim_start) }
            .filter(|line| line.starts_with('-'))
            .filter_map(|line| line.split("  ").next())
            .flat_map(|flags| flags.split([',', ' ']))
            .filter(|word| word.starts_with("--"))
            .map(str::to_owned)
            .collect()
    }

    /// The words that `cargo xtask PATH…` needs to be taken (the command
    /// line up to them, and the arguments that end it), as an operator
    /// would type them: each argument clap says is required, a choice as
    /// its first possible value, any other as `latest:local`, which every
    /// backup argument takes.
    fn needed(path: &[&str], leaf: &clap::Command) -> (Vec<String>, Vec<String>) {
        let mut words = vec!["cargo xtask".to_owned()];
        words.extend(path.iter().map(|w| w.to_string()));
        let mut last = Vec::new();
        for _ in 0..3 {
            let Err(e) = command_line().try_get_matches_from(words.iter().chain(&last)) else {
                break;
            };
            let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) else {
                break;
            };
            for shown in missing.clone() {
                let long = shown.split(' ').next().unwrap_or_default().to_owned();
                let arg = leaf.get_arguments().find(|a| {
                    a.get_long().is_some_and(|l| format!("--{l}") == long)
                        || a.get_value_names()
                            .is_some_and(|v| shown.starts_with(&format!("<{}>", v[0])))
                });
                let choices = arg.map(clap::Arg::get_possible_values).unwrap_or_default();
                let value = { choices.first() }
                    .map_or("latest:local".to_owned(), |v| v.get_name().to_owned());
                match shown.starts_with("--") {
                    true => words.extend([long, value]),
                    false if arg.is_some_and(clap::Arg::is_last_set) => {
                        last.extend(["--".to_owned(), value])
                    }
                    false => last.push(value),
                }
            }
        }
        (words, last)
    }

    /// Whether `cargo xtask PATH… EXTRA…`, with what it needs, is taken:
    /// clap parses it, and no global option in it is refused as doing
    /// nothing there.
    fn takes((words, last): &(Vec<String>, Vec<String>), extra: &[&str]) -> Result<(), String> {
        let words: Vec<&str> = { words.iter().map(String::as_str) }
            .chain(extra.iter().copied())
            .chain(last.iter().map(String::as_str))
            .collect();
        let matches = command_line()
            .try_get_matches_from(&words)
            .map_err(|e| format!("{words:?}: {}", e.kind()))?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| format!("{words:?}: {e}"))?;
        refuse_flags_that_do_nothing(&cli, &matches).map_err(|e| format!("{words:?}: {e:#}"))
    }

    /// The global options `command` (at `path`) takes, each given with
    /// it; a command of commands (`hooks`) takes those one of its own
    /// takes. Where its help lists other options than those, it is said in
    /// `wrong`.
    fn check_help(
        command: &clap::Command,
        path: &[&str],
        globals: &[(String, bool)],
        wrong: &mut Vec<String>,
    ) -> BTreeSet<String> {
        let subs: Vec<_> = { command.get_subcommands() }
            .filter(|sub| sub.get_name() != "help")
            .collect();
        let mut taken = BTreeSet::new();
        if subs.is_empty() {
            let needed = needed(path, command);
            if let Err(e) = takes(&needed, &[]) {
                wrong.push(format!("not taken even without a global option: {e}"));
            }
            for (long, with_value) in globals {
                let extra: &[&str] = match with_value {
                    true => &[long, "x"],
                    false => &[long],
                };
                if takes(&needed, extra).is_ok() {
                    taken.insert(long.clone());
                }
            }
        }
        for sub in subs {
            let sub_path: Vec<&str> = path.iter().copied().chain([sub.get_name()]).collect();
            taken.extend(check_help(sub, &sub_path, globals, wrong));
        }
        let listed: BTreeSet<String> = { options_listed(command).into_iter() }
            .filter(|long| globals.iter().any(|(g, _)| g == long))
            .collect();
        if listed != taken {
            wrong.push(format!(
                "`cargo xtask {} --help` lists {listed:?}; it takes {taken:?}",
                path.join(" ")
            ));
        }
        taken
    }

    /// rvAX: `keygen --help` and `completions --help` listed
    /// `--backup-dir` and `--database`, which both refuse. Each command's
    /// help, at every depth, lists exactly the global options it takes:
    /// each listed one, given with the command, is parsed and not refused
    /// as doing nothing there; each it refuses is not listed. The walk
    /// goes over every command of the definition, so a new one is checked
    /// too.
    #[test]
    fn each_commands_help_lists_exactly_the_global_options_it_takes() {
        let mut command = command_line();
        command.build();
        let globals: Vec<(String, bool)> = { command.get_arguments() }
            .filter(|a| a.is_global_set())
            .filter_map(|a| {
                Some((
                    format!("--{}", a.get_long()?),
                    a.get_action().takes_values(),
                ))
            })
            .collect();
        assert_eq!(globals.len(), 5, "{globals:?}");
        let mut wrong = Vec::new();
        let mut commands = 0;
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            commands += 1;
            check_help(sub, &[sub.get_name()], &globals, &mut wrong);
        }
        assert!(commands > 15, "the walk found {commands} commands");
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Each `cargo xtask keygen …` the messages give to paste parses:
    /// `keygen` needs `--out FILE`, and advice without it only fails.
    #[test]
    fn the_keygen_commands_messages_give_parse() {
        let sources = [
            include_str!("steps/doctor.rs"),
            include_str!("steps/offsite.rs"),
            include_str!("edge/stored.rs"),
            include_str!("commands/deploy.rs"),
        ];
        let mut found = 0;
        for source in sources {
            for (at, _) in source.match_indices("`cargo xtask keygen") {
                let rest = &source[at + 1..];
                let command = &rest[..rest.find('`').unwrap()];
                assert!(!command.contains('\\'), "split over lines: {command}");
                found += pasted_commands_parse(&format!("`{command}`"))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        assert!(found >= 4, "{found}");
    }
}
