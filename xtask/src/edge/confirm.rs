//! The confirmation every destructive step asks for, decided here and never
//! left to wrangler, which answers its own prompts "yes" whenever stdin is
//! not a terminal.
//!
//! Production needs its database name: typed at a terminal, or given as
//! `--confirm <name>` when there is none. `--yes` is never enough for
//! production. Other environments take `--yes`, `--confirm <name>`, or the
//! name typed at a terminal. Which environments are production is decided
//! by [`Environment::production_reason`] alone.

use std::io::{BufRead, IsTerminal};

use anyhow::Result;

use crate::config::environment::Environment;

/// What the operator said on the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfirmArgs {
    /// Confirm by naming the target database (required for prod when stdin is not a terminal).
    #[arg(long, value_name = "DATABASE")]
    pub confirm: Option<String>,
    /// Confirm a destructive step on a non-production environment.
    #[arg(long)]
    pub yes: bool,
}

/// How the decision was reached, for the tests and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Confirmed,
    /// Ask at the terminal for this exact text.
    Ask(String),
    Refused(String),
}

/// Decides from the flags alone; `interactive` says whether a terminal can be asked.
pub fn decide(env: &Environment, args: &ConfirmArgs, interactive: bool, what: &str) -> Decision {
    let name = &env.database_name;
    if let Some(given) = &args.confirm {
        return if given == name {
            Decision::Confirmed
        } else {
            Decision::Refused(format!(
                "--confirm {} does not name the target database {name}; nothing was done",
                d1_core::names::shown(given)
            ))
        };
    }
    if let Some(why) = env.production_reason() {
        return if interactive {
            Decision::Ask(name.clone())
        } else {
            Decision::Refused(format!(
                "refusing to {what} {name} (production: {why}) without confirmation: pass \
                 --confirm {name} (--yes is not enough for production). Nothing was done."
            ))
        };
    }
    if args.yes {
        return Decision::Confirmed;
    }
    if interactive {
        Decision::Ask(name.clone())
    } else {
        Decision::Refused(format!(
            "refusing to {what} {name} without confirmation: pass --yes or --confirm {name}. \
             Nothing was done."
        ))
    }
}

/// The flag that confirms a destructive step on `env` with no terminal to
/// ask, as advice prints it after a command: `--confirm <database>` for
/// production ([`decide`] refuses `--yes` there), `--yes` elsewhere. An
/// advised command is run as printed, in a script as often as not.
pub fn unasked_flag(env: &Environment) -> String {
    match env.production_reason() {
        Some(_) => format!(
            "--confirm {}",
            d1_core::wording::shell_word(&env.database_name)
        ),
        None => "--yes".to_owned(),
    }
}

/// The `cargo xtask migrate` that applies `env`'s pending migrations, as
/// every advice to migrate prints it: `more` (other flags, if any), then
/// [`unasked_flag`]. Without it the command, pasted into a script or run
/// where there is no terminal, is refused: migrate asks its confirmation
/// before it reads what is pending, and refuses one it cannot ask.
pub fn migrate_command(env: &Environment, more: &str) -> String {
    let more = match more {
        "" => String::new(),
        more => format!(" {more}"),
    };
    format!(
        "cargo xtask migrate {}{more} {}",
        d1_core::wording::shell_word(&env.name),
        unasked_flag(env)
    )
}

/// Refuses (exit 3) a `--confirm` that names another database than
/// `env`'s, before anything else, a dry run included: the dry run, run to
/// check a command line, must not pass one the real run refuses.
pub fn check_named(env: &Environment, args: &ConfirmArgs) -> Result<()> {
    match decide(env, args, false, "") {
        Decision::Refused(message) if args.confirm.is_some() => {
            crate::stop!(crate::exit::Exit::Refused, "{message}")
        }
        _ => Ok(()),
    }
}

/// Refuses (exit 3), before anything else, what the command line alone
/// refuses: a `--confirm` naming another database ([`check_named`]), a dry
/// run included, and, for a run that is not one, what [`require`] would
/// refuse with no terminal to ask ([`check_unasked`]).
pub fn check_given(env: &Environment, args: &ConfirmArgs, dry_run: bool, what: &str) -> Result<()> {
    check_named(env, args)?;
    // A dry run needs no confirmation.
    if !dry_run {
        check_unasked(env, args, what)?;
    }
    Ok(())
}

/// Refuses (exit 3) what [`require`] would refuse with no terminal to
/// ask, before the backup lock and the plan: a mistaken run in a script
/// leaves no `backups/` and prints no plan. On a terminal it does nothing:
/// the name is asked by [`require`] later, under the lock.
fn check_unasked(env: &Environment, args: &ConfirmArgs, what: &str) -> Result<()> {
    match decide(env, args, std::io::stdin().is_terminal(), what) {
        Decision::Refused(message) => crate::stop!(crate::exit::Exit::Refused, "{message}"),
        _ => Ok(()),
    }
}

/// Applies [`decide`], asking at the terminal when it says so.
pub fn require(env: &Environment, args: &ConfirmArgs, what: &str) -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    match decide(env, args, interactive, what) {
        Decision::Confirmed => Ok(()),
        Decision::Refused(message) => crate::stop!(crate::exit::Exit::Refused, "{message}"),
        Decision::Ask(expected) => {
            crate::out::prompt(&format!(
                "This will {what} {expected}. Type the database name to continue: "
            ));
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            if line.trim() == expected {
                Ok(())
            } else {
                crate::stop!(
                    crate::exit::Exit::Refused,
                    "the name typed does not match {expected}; nothing was done"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::environment::Environments;

    fn env(name: &str) -> Environment {
        Environments::parse(include_str!("../../../wrangler.toml"))
            .unwrap()
            .resolve(name)
            .unwrap()
            .clone()
    }

    fn args(confirm: Option<&str>, yes: bool) -> ConfirmArgs {
        ConfirmArgs {
            confirm: confirm.map(str::to_owned),
            yes,
        }
    }

    /// Each migrate advised is one that [`decide`] confirms with no
    /// terminal to ask: `--confirm <database>` for production, `--yes`
    /// elsewhere.
    #[test]
    fn the_migrate_advised_is_one_confirmed_without_a_terminal() {
        for (name, flag) in [
            ("prod", "--confirm qbtime_db_prod"),
            ("staging", "--yes"),
            ("local", "--yes"),
        ] {
            assert_eq!(
                migrate_command(&env(name), ""),
                format!("cargo xtask migrate {name} {flag}")
            );
        }
        assert_eq!(
            migrate_command(&env("prod"), "--no-backup --reason x"),
            "cargo xtask migrate prod --no-backup --reason x --confirm qbtime_db_prod"
        );
    }

    #[test]
    fn yes_is_never_enough_for_production() {
        let prod = env("prod");
        assert!(
            matches!(decide(&prod, &args(None, true), false, "restore into"), Decision::Refused(m) if m.contains("--confirm qbtime_db_prod"))
        );
        assert_eq!(
            decide(&prod, &args(None, true), true, "x"),
            Decision::Ask("qbtime_db_prod".into())
        );
        assert_eq!(
            decide(&prod, &args(Some("qbtime_db_prod"), false), false, "x"),
            Decision::Confirmed
        );
        assert!(matches!(
            decide(&prod, &args(Some("qbtime_db_staging"), true), false, "x"),
            Decision::Refused(m) if m.contains("does not name")
        ));
    }

    #[test]
    fn other_environments_take_yes_or_their_name() {
        let staging = env("staging");
        assert_eq!(
            decide(&staging, &args(None, true), false, "x"),
            Decision::Confirmed
        );
        assert!(
            matches!(decide(&staging, &args(None, false), false, "x"), Decision::Refused(m) if m.contains("--yes"))
        );
        assert_eq!(
            decide(&staging, &args(None, false), true, "x"),
            Decision::Ask("qbtime_db_staging".into())
        );
    }
}
