//! Which database a remote environment's `database_id` really is, asked of
//! Cloudflare before anything is written to it.
//!
//! wrangler reaches a remote database by the `database_id` the
//! configuration gives it, and this tool's guards (production's typed
//! name, the backup's environment, the plan) go by the environment and its
//! `database_name`. A configuration that gives staging production's id
//! (an edit, a paste, a hostile change) would have `restore … --to staging
//! --yes` replace production's data while every line said staging. So
//! before a restore into, a migration of, or a Time Travel restore of a
//! remote database, `wrangler d1 list` (read-only) must show the id under
//! the configured name.

use anyhow::Result;

use crate::config::environment::{Environment, Location};
use crate::edge::wrangler::{Beside, Commands, Wrangler};
use crate::exit::Exit;
use d1_core::names::shown;

/// Refuses (exit 3) when `env` is remote and its `database_id` is not, in
/// its account, the D1 database of its `database_name`. `doing` names the
/// step, for the message. Nothing to check for local D1, for a database
/// the configuration gives no id (wrangler then finds it by name), or for
/// one `restore --to new:` is creating.
pub fn check(wrangler: &Wrangler, cmds: &Commands, env: &Environment, doing: &str) -> Result<()> {
    if !checked(env) {
        return Ok(());
    }
    judge(wrangler.run_json(&cmds.d1_list_of(env))?, env, doing)
}

/// [`check`], with `read`, the read-only step that comes next, run while
/// `wrangler d1 list` runs beside it ([`Beside`]; in turn with a `wrangler
/// login`): neither needs the other, and the check still ends before
/// anything is made of what `read` read. Its failures, and a refusal, are
/// reported first, as when the check ran alone; what `read` gave, or its
/// error, only once the check passed. `read` must write nothing: with
/// another database's id it reads that database, and what it read is
/// thrown away.
pub fn check_beside<T>(
    wrangler: &Wrangler,
    cmds: &Commands,
    env: &Environment,
    doing: &str,
    read: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let list = cmds.d1_list_of(env);
    match checked(env).then(|| Beside::start(wrangler, list, Wrangler::run_json)) {
        Some(Some(listed)) => {
            let read = read();
            judge(listed.finish()?, env, doing)?;
            read
        }
        _ => {
            check(wrangler, cmds, env, doing)?;
            read()
        }
    }
}

/// Whether `env` has an id to check.
fn checked(env: &Environment) -> bool {
    env.location == Location::Remote && !env.is_new && !env.database_id.is_empty()
}

/// [`check`]'s verdict on `wrangler d1 list --json`'s answer.
fn judge(listed: serde_json::Value, env: &Environment, doing: &str) -> Result<()> {
    match mismatch(&listed, env) {
        None => Ok(()),
        Some(what) => crate::stop!(
            Exit::Refused,
            "refusing to {doing}: the configuration gives {} ({}) the database_id {}, {what}. \
             wrangler would act on that id, not on the name. Correct the database_id of {} in \
             the wrangler configuration (`npx wrangler d1 list` shows each database's id). \
             Nothing was changed.",
            env.database_name,
            env.name,
            env.database_id,
            env.name
        ),
    }
}

/// What is wrong with `env`'s id in `wrangler d1 list --json`'s answer,
/// if anything. Names from the answer are shown escaped.
fn mismatch(listed: &serde_json::Value, env: &Environment) -> Option<String> {
    let Some(databases) = listed.as_array() else {
        return Some("and `wrangler d1 list` did not answer with a list of databases".to_owned());
    };
    let field = |db: &serde_json::Value, name: &str| {
        db.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let by_id = databases
        .iter()
        .find(|db| field(db, "uuid").eq_ignore_ascii_case(&env.database_id));
    match by_id.map(|db| field(db, "name")) {
        Some(name) if name == env.database_name => None,
        Some(name) => Some(format!(
            "which in its Cloudflare account is the D1 database {}",
            shown(&name)
        )),
        None => Some("which is no D1 database of its Cloudflare account".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::environment::Environments;

    const CONFIG: &str = include_str!("../../../wrangler.toml");

    #[test]
    fn an_id_is_accepted_only_under_its_own_name() {
        let envs = Environments::parse(CONFIG).unwrap();
        let mut staging = envs.resolve("staging").unwrap().clone();
        staging.database_id = "u-staging".to_owned();
        let list = |pairs: &[(&str, &str)]| {
            serde_json::Value::from(
                pairs
                    .iter()
                    .map(|(uuid, name)| serde_json::json!({ "uuid": uuid, "name": name }))
                    .collect::<Vec<_>>(),
            )
        };
        let name = staging.database_name.clone();
        assert_eq!(
            mismatch(
                &list(&[("u-prod", "qbtime_db_prod"), ("U-STAGING", &name)]),
                &staging
            ),
            None
        );
        // Production's id under staging's name: the swap this guards.
        staging.database_id = "u-prod".to_owned();
        let swapped = mismatch(
            &list(&[("u-prod", "qbtime_db_prod"), ("u-staging", &name)]),
            &staging,
        )
        .unwrap();
        assert!(
            swapped.contains("is the D1 database qbtime_db_prod"),
            "{swapped}"
        );
        let missing = mismatch(&list(&[("u-staging", &name)]), &staging).unwrap();
        assert!(missing.contains("no D1 database"), "{missing}");
        let odd = mismatch(&list(&[("u-prod", "x\n[ok] staging")]), &staging).unwrap();
        assert!(!odd.contains('\n'), "{odd}");
        assert!(mismatch(&serde_json::json!({"error": 1}), &staging).is_some());
    }
}
