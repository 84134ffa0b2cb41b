//! Offsite copies in R2: `upload`, `offsite list`, `offsite fetch`,
//! `offsite lifecycle`, `offsite lock` and `offsite reindex`, all through
//! `wrangler r2 ... --remote`.
//!
//! A backup goes to `<env>/<yyyy>/<mm>/<file>` with its manifest beside it,
//! and is then downloaded again and compared, byte for byte by SHA-256: an
//! upload that wrangler calls complete but that R2 did not store whole is
//! caught here. Only then is the local manifest marked offsite.
//!
//! wrangler cannot list a bucket, so each environment has an index object,
//! `index/<env>.json`, that every upload rewrites. It lies outside the
//! `<env>/` prefix that the lifecycle rule expires, so it is never deleted
//! with the backups; entries older than the rule are dropped from it. One
//! this tool cannot read is replaced only by `offsite reindex`, from the
//! manifests here, its old bytes kept first.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use xshell::Shell;

use crate::config::environment::Environments;
use crate::config::project::Project;
use crate::config::settings::{SETTINGS_FILE, check_bucket_name};
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::fsutil::OnPath as _;
use crate::edge::fsutil::{self, TEXT_LIMIT};
use crate::edge::inventory;
use crate::edge::manifest_file::ManifestFile;
use crate::edge::stored::Format;
use crate::edge::wrangler::Invocation;
use crate::steps::offsite::{
    Index, IndexEntry, Kept, LOCK_JOURNAL, LockRule, OBJECT_LIMIT, Retention, Target, TooLarge,
    UnreadableIndex, UntrustedManifest, check_expiry_against_locks, checked_manifest, expire_days,
    index_key, is_our_lock, kept_but_expiring, lock_days, lock_rule_name, old_prefixes,
    print_upload_plan, rule_name, rule_names, target, target_in, upload_with,
};
use d1_core::manifest::{self, Manifest};
use d1_core::names::file_name;

#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// A backup: a name that `list` prints, a path, `latest` (the environment's newest verified full backup) or `latest:ENV`.
    pub backup: String,
    /// The environment whose bucket and prefix the copy goes to (when not
    /// given: the ENV of `latest:ENV`, or the environment whose database
    /// the backup's manifest records).
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Print what would be uploaded, and upload nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum OffsiteCommand {
    /// The offsite copies of an environment's backups, newest first.
    List {
        /// The environment whose copies to list.
        #[arg(long, value_name = "ENV")]
        env: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Read this bucket instead of `[<env>.offsite] bucket` (the one the
        /// copies went to before backups.toml named another).
        #[arg(long, value_name = "BUCKET")]
        bucket: Option<String>,
        /// Read also the copies uploaded while the environment had this
        /// short name (`vars.APP_ENV` changed since), under `<NAME>/`; taken
        /// only when their manifests name this database and its id.
        #[arg(long, value_name = "NAME")]
        from_env: Option<String>,
    },
    /// Download an offsite copy and its manifest into the backup directory.
    Fetch {
        /// A backup's file name, or `latest` (the newest verified copy).
        backup: String,
        /// The environment whose copy to fetch.
        #[arg(long, value_name = "ENV")]
        env: String,
        /// Fetch from this bucket instead of `[<env>.offsite] bucket` (the
        /// one the copies went to before backups.toml named another).
        #[arg(long, value_name = "BUCKET")]
        bucket: Option<String>,
        /// Read also the copies uploaded while the environment had this
        /// short name (`vars.APP_ENV` changed since), under `<NAME>/`; taken
        /// only when their manifests name this database and its id.
        #[arg(long, value_name = "NAME")]
        from_env: Option<String>,
    },
    /// Lock the environment's offsite copies against deletion and overwriting until they reach the retention's age.
    Lock {
        /// The environment whose prefix to lock.
        #[arg(long, value_name = "ENV")]
        env: String,
        /// Print the rule and the commands, and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Replace an offsite index this tool cannot read with one rebuilt from the manifests in backups/, keeping the old one's bytes aside.
    Reindex {
        /// Print what the new index would hold and where the old one goes, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The environment whose index to replace.
        #[arg(long, value_name = "ENV")]
        env: String,
        /// Print one JSON document: what the new index keeps, the copies it leaves out (why, and the fix), and where the old index's bytes go.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Make the bucket's lifecycle rule for the environment match its retention.
    Lifecycle {
        /// The environment whose bucket's rule to set.
        #[arg(long, value_name = "ENV")]
        env: String,
        /// Print the rule and the commands, and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
}

/// `cargo xtask upload`.
pub fn run_upload(sh: &Shell, project: &Project, args: &UploadArgs) -> Result<()> {
    crate::steps::rehearsals::refuse_real_r2(&project.backup_dir, "upload a backup")?;
    let envs = project.environments()?;
    let (env, file) = match (args.env.as_deref(), args.backup.strip_prefix("latest:")) {
        (Some(named), _) | (None, Some(named)) => {
            let env = envs.resolve(named)?;
            let file =
                project.resolve_backup(&args.backup, Some(&env.name), inventory::Latest::Good)?;
            (env, file)
        }
        (None, None) => {
            let file = project.resolve_backup(&args.backup, None, inventory::Latest::Good)?;
            (upload_environment(&envs, &file)?, file)
        }
    };
    refuse_misfiled(&envs, env, (&file, &args.backup))?;
    let target = target(sh, project, env)?;
    if args.dry_run {
        let manifest = checked_manifest(&target, &file)?;
        if crate::steps::offsite::told_already_offsite(&target, &file, &manifest)? {
            return Ok(());
        }
        print_upload_plan(&target, &file, &manifest);
        crate::steps::offsite::dry_run_index(&target)?;
        crate::say!("Dry run: nothing was uploaded.");
        return Ok(());
    }
    let lock = crate::steps::lock::acquire_lock(project, &format!("upload {}", env.name))?;
    upload_with(&target, &file, &lock)
}

/// Refuses (exit 3) to upload as `env`'s a backup recorded under its name
/// whose manifest names a database `env` does not have
/// ([`inventory::misfiled`]): that database's data would be among `env`'s
/// offsite copies, under its name. `given` is the backup as typed, for
/// the command that uploads it as its database's. A manifest that cannot
/// be read is left to [`checked_manifest`] to say why.
fn refuse_misfiled(
    envs: &crate::config::environment::Environments,
    env: &crate::config::environment::Environment,
    (file, given): (&Path, &str),
) -> Result<()> {
    let Ok(m) = Manifest::for_backup(file) else {
        return Ok(());
    };
    let Some(misfiled) = inventory::misfiled(envs, &m).filter(|_| !env.records(&m)) else {
        return Ok(());
    };
    let pasted = d1_core::wording::shell_word(given);
    let (whose, way) = match &misfiled.database_of {
        Some(owner) => (
            format!("which is {owner}'s in wrangler.toml"),
            format!(
                "If it is {owner}'s, upload it as {owner}'s: `cargo xtask upload {pasted} --env {}`",
                d1_core::wording::shell_word(owner)
            ),
        ),
        None => (
            "which is no environment's in wrangler.toml".to_owned(),
            format!(
                "No environment's offsite copies are its; to use it, restore it into a database \
                 of its own: `cargo xtask restore {pasted} --to new:NAME`"
            ),
        ),
    };
    crate::stop!(
        crate::exit::Exit::Refused,
        "{} is recorded as a backup of {}, but its manifest names the database {} (id {}), \
         {whose}: uploaded as {}'s, it would put that database's data among {}'s offsite \
         copies, under its name. {way}. Nothing was uploaded.",
        file.display(),
        m.environment,
        d1_core::names::shown(&misfiled.database),
        d1_core::names::shown(&misfiled.database_id),
        env.name,
        env.name
    )
}

/// The environment a backup named without `--env` is uploaded for: the one
/// whose database its manifest records (as every "whose backup is this?"
/// goes), which `checked_manifest` holds it to again before the upload.
fn upload_environment<'e>(
    envs: &'e crate::config::environment::Environments,
    file: &Path,
) -> Result<&'e crate::config::environment::Environment> {
    let m = Manifest::for_backup(file).map_err(|e| crate::exit::Exit::CouldNotRun.error(e))?;
    match envs.whose(&m) {
        Some(env) => Ok(env),
        None => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{}'s manifest records the database {}, which no environment of the configuration \
             names, so whose bucket its copy goes to is unknown: name the environment with --env \
             ENV. Nothing was uploaded.",
            file.display(),
            d1_core::names::shown(&m.database.name)
        ),
    }
}

/// `cargo xtask offsite ...`.
pub fn run(sh: &Shell, project: &Project, command: &OffsiteCommand) -> Result<()> {
    // Reading the bucket's list changes nothing, here or there.
    if !matches!(command, OffsiteCommand::List { .. }) {
        crate::steps::rehearsals::refuse_real_r2(&project.backup_dir, "act on an R2 bucket")?;
    }
    let envs = project.environments()?;
    match command {
        OffsiteCommand::List {
            env,
            json,
            bucket,
            from_env,
        } => {
            let env = envs.resolve(env)?;
            let mut target = target_in(sh, project, env, bucket.as_deref())?;
            target.read_from_env(from_env.as_deref())?;
            refuse_another_database_under_from_env(&target, "listed")?;
            let index = match target.read_indexes()? {
                Some(index) => index,
                None => {
                    target.check_bucket_reachable()?;
                    Index::new(&env.name)
                }
            };
            if *json {
                // The entries set aside too, which the bucket's index is
                // never written back with.
                let mut value = serde_json::to_value(&index)?;
                value["set_aside"] = serde_json::to_value(&index.set_aside)?;
                crate::out::json(&value);
            } else {
                print_list(&target, &index, Utc::now());
            }
            Ok(())
        }
        OffsiteCommand::Fetch {
            backup,
            env,
            bucket,
            from_env,
        } => {
            let env = envs.resolve(env)?;
            let mut target = target_in(sh, project, env, bucket.as_deref())?;
            target.read_from_env(from_env.as_deref())?;
            fetch(sh, (project, &envs), &target, backup)
        }
        OffsiteCommand::Lock {
            env,
            dry_run,
            confirm,
        } => {
            let target = rules_target(sh, project, envs.resolve(env)?, confirm)?;
            lock(&target, *dry_run, confirm)
        }
        OffsiteCommand::Reindex {
            dry_run,
            env,
            json,
            confirm,
        } => {
            let env = envs.resolve(env)?;
            // Before the bucket is read: a script without confirmation
            // is refused with nothing read or written.
            confirm::check_given(env, confirm, *dry_run, REINDEX)?;
            let target = target(sh, project, env)?;
            reindex(project, &target, (*dry_run, *json), confirm)
        }
        OffsiteCommand::Lifecycle {
            env,
            dry_run,
            confirm,
        } => {
            let target = rules_target(sh, project, envs.resolve(env)?, confirm)?;
            lifecycle(&target, *dry_run, confirm)
        }
    }
}

/// The bucket `offsite lock` and `offsite lifecycle` set `env`'s rules
/// in: a `--confirm` naming another database is refused first, before
/// the bucket's rules are read, a dry run included.
fn rules_target<'e>(
    sh: &Shell,
    project: &Project,
    env: &'e crate::config::environment::Environment,
    confirm_args: &ConfirmArgs,
) -> Result<Target<'e>> {
    confirm::check_named(env, confirm_args)?;
    target(sh, project, env)
}

/// What `offsite reindex` asks confirmation to do, of the database named.
const REINDEX: &str = "replace the offsite index of";

/// `offsite reindex`: replaces the environment's index, when this tool
/// cannot judge it ([`UnreadableIndex`]) or it is missing, with one rebuilt
/// from the manifests in backups/ that record a copy in the bucket under
/// `<env>/`. Copies only the old index listed are forgotten by it, so the
/// old bytes are kept first, in backups/ (mode 600), and the plan says
/// so; a readable index, or one of a later format, is not replaced.
/// With `json`, one document on stdout ([`reindex_json`]), the plan and
/// what is said on stderr.
fn reindex(
    project: &Project,
    target: &Target<'_>,
    (dry_run, json): (bool, bool),
    confirm_args: &ConfirmArgs,
) -> Result<()> {
    let env = target.env;
    let key = index_key(&env.name);
    let object = format!("r2://{}/{key}", target.bucket());
    // Uploads rewrite the index under the backup lock: none runs meanwhile.
    let _lock = match dry_run {
        true => None,
        false => Some(crate::steps::lock::acquire_lock(
            project,
            &format!("offsite reindex {}", env.name),
        )?),
    };
    let now = match target.read_index() {
        Ok(Some(index)) => crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{object} reads as {}'s offsite index ({}): nothing to replace. `cargo xtask \
             offsite list --env {}` shows it. Nothing was changed.",
            env.name,
            d1_core::wording::count(index.backups.len(), "copy"),
            env.name
        ),
        Ok(None) => None,
        Err(e) => match crate::exit::find::<UnreadableIndex>(&e) {
            Some(bad) if !bad.later => Some(bad.why.clone()),
            _ => return Err(e),
        },
    };
    let (held, missing) = recorded_copies_held(target)?;
    let older = target.other_names();
    let index = Index::rebuilt(held, &object, (&env.name, &env.database_name, &older))?;
    let aside = aside_name(&target.backup_dir, &env.name)?;
    print_reindex_plan(target, &index, &missing, now.as_deref(), &aside);
    let said = |replaced: bool| {
        if json {
            let old = now.as_deref().map(|why| (why, aside.as_path()));
            crate::out::json(&reindex_json(target, (&index, &missing), old, replaced));
        }
    };
    if dry_run {
        crate::say!("Dry run: nothing was changed.");
        said(false);
        return Ok(());
    }
    confirm::require(env, confirm_args, REINDEX)?;
    if now.is_some() {
        keep_aside(target, &key, &aside)?;
    }
    let staged = fsutil::TempFile::create({ target.backup_dir.as_path() }.join(format!(
        ".offsite-index-{}.{}.partial",
        env.name,
        std::process::id()
    )))?;
    fsutil::rewrite_no_follow(staged.path(), serde_json::to_string(&index)?.as_bytes())?;
    target.put_checked(staged.path(), &key, Kept::Never)?;
    let kept = match now {
        Some(_) => format!("; the old index's bytes are in {}", aside.display()),
        None => String::new(),
    };
    crate::say!(
        "{object} now lists {}{kept}. `cargo xtask offsite list --env {}` reads it.",
        d1_core::wording::count(index.backups.len(), "copy"),
        env.name
    );
    said(true);
    Ok(())
}

/// `offsite reindex --json`'s document: the index object, what is wrong
/// with the old index and where its bytes are kept (`old`, `None`: there
/// is none), the entries the new index holds and those it sets aside, the
/// copies it leaves out (`missing`: each by its file and keys, why, and
/// the fix), and whether the index was `replaced` (`false` for a dry run).
/// What it says is what the plan says: keys and reasons, never a value
/// read from the bucket, nor a secret.
fn reindex_json(
    target: &Target<'_>,
    (index, missing): (&Index, &[LeftOut]),
    old: Option<(&str, &Path)>,
    replaced: bool,
) -> serde_json::Value {
    let left_out: Vec<serde_json::Value> = { missing.iter() }
        .map(|(e, not)| {
            serde_json::json!({
                "file": e.file,
                "key": e.key,
                "manifest_key": e.manifest_key,
                "reason": not.why,
                "fix": not.fix,
            })
        })
        .collect();
    serde_json::json!({
        "command": "offsite reindex",
        "dry_run": !replaced,
        "environment": target.env.name,
        "index": format!("r2://{}/{}", target.bucket(), index_key(&target.env.name)),
        "old_index": old.map(|(why, aside)| serde_json::json!({
            "why": why,
            "kept_aside": aside.display().to_string(),
        })),
        "backups": index.backups,
        "set_aside": index.set_aside,
        "left_out": left_out,
        "replaced": replaced,
    })
}

/// Why the bucket does not hold a copy as its manifest here records it,
/// and the way to put it back ([`not_held`]).
struct NotHeld {
    why: String,
    fix: String,
}

impl NotHeld {
    /// Not held, for `why`, put back by `fix`.
    fn said(why: String, fix: &str) -> Option<Self> {
        Some(Self {
            why,
            fix: fix.to_owned(),
        })
    }
}

/// A copy `offsite reindex` leaves out of the index, and why ([`not_held`]).
type LeftOut = (IndexEntry, NotHeld);

/// The index entries of the copies the manifests here record in `target`'s
/// bucket under `<env>/`, split into those the bucket holds as recorded
/// and those it does not, each with why ([`not_held`]). A manifest here
/// says only what was uploaded once: a copy replaced or removed since, or
/// a manifest planted, must not come back into the index.
fn recorded_copies_held(target: &Target<'_>) -> Result<(Vec<IndexEntry>, Vec<LeftOut>)> {
    let env = target.env;
    let prefix = format!("{}/", env.name);
    let entries = { inventory::trusted_manifests(&target.backup_dir)?.into_iter() }
        .filter(|m| env.records(m))
        .filter_map(|m| {
            let copy = m.offsite.clone()?;
            (copy.bucket == target.bucket() && copy.key.starts_with(&prefix)).then(|| {
                crate::steps::offsite::index_entry(
                    &m,
                    copy.key,
                    copy.manifest_key,
                    copy.uploaded_at,
                )
            })
        })
        .collect::<Vec<_>>();
    let mut held = Vec::new();
    let mut missing = Vec::new();
    for entry in entries {
        match not_held(target, &entry)? {
            None => held.push(entry),
            Some(not) => missing.push((entry, not)),
        }
    }
    Ok((held, missing))
}

/// Why the bucket does not hold `entry`'s copy as the manifest here records
/// it, with the way to put it back, or `None` when it does. Its manifest
/// object first, as `offsite fetch` takes it ([`copy_manifest`]), and
/// recording the same sha256 and size: an index must list no copy a fetch
/// refuses. Then the copy: no object at its key, one of more or fewer
/// bytes, or other bytes by their sha256. wrangler has no `r2 object list`,
/// so each object is downloaded (no further than the most it may hold)
/// into a private file that is removed after. A bucket that cannot be read
/// is no answer: the reindex stops there, nothing changed. What is said
/// names the objects by their keys, never a value read from them.
fn not_held(target: &Target<'_>, entry: &IndexEntry) -> Result<Option<NotHeld>> {
    let env = &target.env.name;
    let upload = format!(
        "`cargo xtask upload {} --env {env}` puts it back while the backup is here",
        d1_core::wording::shell_word(&entry.file)
    );
    let replaced = format!(
        "an upload of this backup is refused while that key holds another manifest: take a \
         new backup and upload it (`cargo xtask backup {env} --upload`)"
    );
    if let Some(not) = manifest_not_held(target, entry, (&upload, &replaced))? {
        return Ok(Some(not));
    }
    let object = format!("r2://{}/{}", target.bucket(), entry.key);
    let got = match target.download(&entry.key, "reindex-check", entry.bytes) {
        Ok(got) => got,
        Err(e) if e.is::<TooLarge>() => {
            return Ok(NotHeld::said(
                format!(
                    "the bucket holds more bytes there than the {} its manifest records",
                    entry.bytes
                ),
                &upload,
            ));
        }
        Err(e) => {
            return Err(e.context(format!(
                "cannot read {object} back to check that the bucket still holds the copy its \
                 manifest records, so the index is not rebuilt. Nothing was changed: run the \
                 reindex again once R2 answers"
            )));
        }
    };
    let Some(got) = got else {
        return Ok(NotHeld::said(
            "no object there: the bucket no longer holds it".to_owned(),
            &upload,
        ));
    };
    let (sha256, bytes) = fsutil::sha256_file(got.path())?;
    Ok(if bytes != entry.bytes {
        NotHeld::said(
            format!(
                "the bucket holds {bytes} bytes there, not the {} bytes its manifest records",
                entry.bytes
            ),
            &upload,
        )
    } else if !sha256.eq_ignore_ascii_case(&entry.sha256) {
        NotHeld::said(
            "the bucket holds other bytes there: their sha256 is not its manifest's".to_owned(),
            &upload,
        )
    } else {
        None
    })
}

/// [`not_held`]'s look at `entry`'s manifest object: why it is not the
/// one the manifest here records, with the fix (`upload`: the upload that
/// puts it back; `replaced`: a new backup, when the key holds another).
fn manifest_not_held(
    target: &Target<'_>,
    entry: &IndexEntry,
    (upload, replaced): (&String, &String),
) -> Result<Option<NotHeld>> {
    let manifest_object = format!("r2://{}/{}", target.bucket(), entry.manifest_key);
    let manifest_why = match copy_manifest(target, entry)? {
        Ok(m) if !m.file.sha256.eq_ignore_ascii_case(&entry.sha256) => NotHeld::said(
            format!(
                "its manifest object {manifest_object} records another sha256 than the \
                 manifest here"
            ),
            replaced,
        ),
        Ok(m) if m.file.bytes != entry.bytes => NotHeld::said(
            format!(
                "its manifest object {manifest_object} records another size than the manifest \
                 here"
            ),
            replaced,
        ),
        Ok(_) => None,
        Err(NotTaken::Missing) => NotHeld::said(
            format!("no manifest object at {manifest_object}: the bucket no longer holds it"),
            upload,
        ),
        Err(NotTaken::TooLarge(_)) => NotHeld::said(
            format!("{manifest_object} holds more than the 64 MiB a manifest may hold"),
            replaced,
        ),
        Err(NotTaken::Untrusted(_)) => NotHeld::said(
            format!(
                "its manifest object {manifest_object} cannot be trusted (it is no backup \
                 manifest, or fails a manifest's checks)"
            ),
            replaced,
        ),
        Err(NotTaken::Another(_)) => NotHeld::said(
            format!(
                "{manifest_object} is the manifest of another backup (another file, environment \
                 or database)"
            ),
            replaced,
        ),
    };
    Ok(manifest_why)
}

/// `offsite reindex`'s plan: what is wrong with the index `now` (`None`:
/// there is none) and where its bytes are kept (`aside`), what the new
/// `index` holds, the copies it leaves out as the bucket no longer holds
/// them as recorded (`missing`, each with why), and what it forgets.
fn print_reindex_plan(
    target: &Target<'_>,
    index: &Index,
    missing: &[LeftOut],
    now: Option<&str>,
    aside: &Path,
) {
    let env = target.env;
    let object = format!("r2://{}/{}", target.bucket(), index_key(&env.name));
    let prefix = format!("{}/", env.name);
    crate::say!("Reindex plan for {object}");
    match now {
        Some(why) => {
            crate::say!("  now          {why}; the copies in the bucket are untouched");
            crate::say!(
                "  kept aside   its bytes, first, in {} (mode 600), as they are",
                aside.display()
            );
        }
        None => crate::say!("  now          there is no index: nothing to keep aside"),
    }
    crate::say!(
        "  new index    {}, from the manifests in {} that record a copy in r2://{} under {prefix}:",
        d1_core::wording::count(index.backups.len(), "copy"),
        target.backup_dir.display(),
        target.bucket()
    );
    for e in &index.backups {
        crate::say!(
            "    {}  uploaded {}  {}",
            e.file,
            e.uploaded_at.format("%Y-%m-%d %H:%M UTC"),
            e.key
        );
    }
    for a in &index.set_aside {
        crate::say!(
            "  left out     the copy recorded as entry {}: {}",
            a.position,
            a.reason
        );
    }
    for (e, not) in missing {
        crate::say!(
            "  left out     {} ({}): {}; {}",
            e.file,
            e.key,
            not.why,
            not.fix
        );
    }
    crate::say!(
        "  forgotten    any copy the old index listed that no manifest here records: it stays \
         in the bucket, but `offsite list` and `fetch` no longer show it (its key is in the \
         bytes kept aside)"
    );
}

/// The name `offsite reindex` plans to keep `env`'s old index's bytes
/// at: the first of `<stem>.json`, `<stem>-2.json`, `<stem>-3.json`, … in
/// `dir` (`<stem>`: `offsite-index-<env>-<now>`) that nothing holds, a
/// symbolic link included (never followed) (rvBT 2: it planned a name a
/// link held, and the run ended "File exists", exit 1, without a word of
/// what changed).
fn aside_name(dir: &Path, env: &str) -> Result<PathBuf> {
    let stem = format!("offsite-index-{env}-{}", Utc::now().format("%Y%m%d-%H%M%S"));
    for n in 1..=1000 {
        let name = match n {
            1 => format!("{stem}.json"),
            n => format!("{stem}-{n}.json"),
        };
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
                );
            }
            Ok(_) => {}
        }
    }
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "{} holds {stem}.json and a thousand more of its names: the old index's bytes cannot \
         be kept aside, so it is not replaced. Move them out of it and run the reindex again. \
         Nothing was changed.",
        dir.display()
    )
}

/// Downloads the index `key` (up to the most one upload puts) and keeps
/// its bytes at `aside`, mode 600, never over a file there: one made
/// there since the plan named it is refused (exit 3), left as it is.
fn keep_aside(target: &Target<'_>, key: &str, aside: &Path) -> Result<()> {
    let object = format!("r2://{}/{key}", target.bucket());
    let refused = |why: String| -> anyhow::Error {
        crate::exit::Exit::CouldNotRun.error(anyhow::anyhow!(
            "{why}: its bytes cannot be kept aside, so it is not replaced. Nothing was changed."
        ))
    };
    let download = match target.download(key, "offsite-index", OBJECT_LIMIT) {
        Ok(Some(download)) => download,
        Ok(None) => return Err(refused(format!("{object} is gone since it was read"))),
        Err(e) if e.is::<TooLarge>() => return Err(refused(format!("{e}"))),
        Err(e) => return Err(e),
    };
    // The download is private (0600) already; a link, never over a file
    // there, keeps it when its directory goes.
    match std::fs::hard_link(download.path(), aside) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => crate::stop!(
            crate::exit::Exit::Refused,
            "{} was taken since the plan named it, and is left as it is: the old index's bytes \
             cannot be kept there, so {object} is not replaced. Nothing was changed. Run `cargo \
             xtask offsite reindex --env {}` again: its plan names a free name.",
            aside.display(),
            target.env.name
        ),
        linked => {
            linked.with_context(|| format!("cannot keep the old index at {}", aside.display()))?
        }
    }
    crate::say!("Kept the old index's bytes in {}.", aside.display());
    Ok(())
}

fn print_list(target: &Target<'_>, index: &Index, now: DateTime<Utc>) {
    if index.backups.is_empty() {
        crate::data!(
            "No offsite copies of {} in r2://{} yet; `cargo xtask upload latest --env {}` makes one.",
            target.env.name,
            target.bucket(),
            target.env.name
        );
        return;
    }
    let cells: Vec<[String; 7]> = index
        .backups
        .iter()
        .map(|e| {
            [
                e.file.clone(),
                // Dated after now, as the local `list` says it.
                if e.created_at > now {
                    "ahead".to_owned()
                } else {
                    d1_core::wording::age((now - e.created_at).num_seconds())
                },
                d1_core::wording::size(e.bytes),
                e.format.clone(),
                e.verified.clone(),
                here(&target.backup_dir, e).to_owned(),
                e.key.clone(),
            ]
        })
        .collect();
    let header = ["backup", "age", "size", "format", "verified", "here", "key"];
    let right = [false, true, true, false, false, false, false];
    for line in d1_core::wording::table(header, &cells, right) {
        crate::data!("{line}");
    }
}

/// `offsite list`'s `here` of the copy `e`: `yes` only of a regular file
/// of its name and size in `dir` that is the copy (its manifest beside it
/// records the copy's sha256, or, without one that does, its bytes hash
/// to it); `not a file` of a symbolic link or anything else `list` does
/// not count (and `fetch` refuses); `differs` of another file of its name,
/// which `fetch` refuses to replace; `no` when nothing has its name.
fn here(dir: &Path, e: &IndexEntry) -> &'static str {
    let file = dir.join(&e.file);
    let Ok(meta) = std::fs::symlink_metadata(&file) else {
        return "no";
    };
    if fsutil::not_regular(&meta).is_some() {
        return "not a file";
    }
    let recorded = || {
        Manifest::read(&manifest::manifest_path(&file))
            .is_ok_and(|m| m.file.name == e.file && m.file.sha256 == e.sha256)
    };
    let hashed = || fsutil::sha256_file(&file).is_ok_and(|(sha256, _)| sha256 == e.sha256);
    if meta.len() == e.bytes && (recorded() || hashed()) {
        "yes"
    } else {
        "differs"
    }
}

fn fetch(
    sh: &Shell,
    (project, envs): (&Project, &Environments),
    target: &Target<'_>,
    which: &str,
) -> Result<()> {
    let entry = indexed_entry(project, target, which)?;
    let dest = project.backup_dir.join(&entry.file);
    let dest_manifest = manifest::manifest_path(&dest);
    let lock = project.backup_dir.join(crate::edge::lock::LOCK_FILE);
    crate::steps::backup::refuse_unless_ignored(
        sh,
        project,
        &[dest.clone(), dest_manifest.clone(), lock],
        "fetch a backup",
    )?;
    fsutil::create_private_dir(&project.backup_dir)?;
    let _lock =
        crate::steps::lock::acquire_lock(project, &format!("offsite fetch {}", target.env.name))?;
    let here = match already_here(&dest, &dest_manifest, &entry)? {
        Here::Manifest(kept) => {
            return fetch_beside((project, envs), target, &entry, (&dest, &kept));
        }
        Here::File => true,
        Here::Nothing => false,
    };
    if here && dest_manifest.exists() {
        crate::say!(
            "{} is already here, identical to the offsite copy.",
            dest.display()
        );
        return Ok(());
    }
    if !here {
        crate::say!(
            "Fetching r2://{}/{} into {}",
            target.bucket(),
            entry.key,
            dest.display()
        );
    }
    let mut manifest = fetched_manifest(target, &entry)?;
    // A verification recorded in the bucket is the bucket's word: anyone
    // who can write there could have written it. The copy is unverified
    // here, and never `latest`, until it is verified on this machine.
    let claimed = manifest.verification.take();
    let (sha256, bytes) = match here {
        true => described_here(target, &entry, &manifest, &dest)?,
        false => download_into(target, &entry, (&manifest, None), &dest)?,
    };
    manifest.create_at(&dest_manifest)?;
    fsutil::sync_dir(&project.backup_dir);
    say_manifest_fetched_beside(here, &dest, &dest_manifest);
    print_fetched(
        (envs, target),
        &dest,
        (bytes, &sha256),
        &manifest,
        claimed.is_some(),
    )
}

/// The SHA-256 and size of `dest`, the file here without its manifest,
/// which `manifest`, the offsite copy's, must describe: the file without
/// its manifest is no backup to list, prune or `latest`, so the manifest
/// is fetched beside it, and must describe the file that is here, as a
/// download's must describe what was downloaded.
fn described_here(
    target: &Target<'_>,
    entry: &IndexEntry,
    manifest: &Manifest,
    dest: &Path,
) -> Result<(String, u64)> {
    let (sha256, bytes) = fsutil::sha256_file(dest)?;
    if manifest.file.sha256 != sha256 || manifest.file.bytes != bytes {
        crate::stop!(
            crate::exit::Exit::Refused,
            "the offsite manifest r2://{}/{} does not describe {} (its sha256 or size \
             differs), so it was not written beside it: the bucket's copy of the manifest \
             is damaged or was replaced. Verify the file here with `cargo xtask verify {} \
             --no-manifest`. Nothing was written.",
            target.bucket(),
            entry.manifest_key,
            dest.display(),
            d1_core::wording::shell_word(&dest.display().to_string())
        );
    }
    Ok((sha256, bytes))
}

/// Says, when the file was `here` already, that only its manifest was
/// fetched, beside it.
fn say_manifest_fetched_beside(here: bool, dest: &Path, dest_manifest: &Path) {
    if here {
        crate::say!(
            "{} was here, identical to the offsite copy, without its manifest: fetched {}.",
            dest.display(),
            dest_manifest.display()
        );
    }
}

/// Fetches the file of a backup whose manifest is here without it
/// ([`Here::Manifest`]). The download is checked against that manifest,
/// which is kept as it is: it is this machine's record of the backup, and
/// it records the same file as the offsite copy.
fn fetch_beside(
    (project, envs): (&Project, &Environments),
    target: &Target<'_>,
    entry: &IndexEntry,
    (dest, kept): (&Path, &Manifest),
) -> Result<()> {
    let dest_manifest = manifest::manifest_path(dest);
    if !target.env.records(kept) {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} records a backup of {} (database {}), not of {} ({}); move it aside first. \
             Nothing was fetched.",
            dest_manifest.display(),
            kept.environment,
            kept.database.name,
            target.env.name,
            target.env.database_name
        );
    }
    crate::say!(
        "{} is here without its backup (a prune stopped between deleting the two, or the file \
         was moved): fetching r2://{}/{} beside it",
        dest_manifest.display(),
        target.bucket(),
        entry.key
    );
    let (sha256, bytes) = download_into(target, entry, (kept, Some(&dest_manifest)), dest)?;
    fsutil::sync_dir(&project.backup_dir);
    crate::say!(
        "Fetched {} ({bytes} bytes, sha256 {sha256}): the same file its manifest here records \
         (its name, sha256 and size), which is kept as it was{}.\n{}",
        dest.display(),
        if kept.is_verified_good() {
            ", with this machine's verification of these bytes"
        } else {
            ": it is unverified here, and not `latest` until it passes verification on this \
             machine"
        },
        next_steps((envs, target), dest, kept)
    );
    Ok(())
}

/// `--from-env NAME` naming a prefix another database's copies are under
/// is refused (exit 2): whose they are, not that nothing was uploaded (and
/// not to give the flag given). `done` is what `list` or `fetch` does.
fn refuse_another_database_under_from_env(target: &Target<'_>, done: &str) -> Result<()> {
    let Some((name, database)) = target.another_database_under_from_env()? else {
        return Ok(());
    };
    let env = target.env;
    crate::stop!(
        crate::exit::Exit::CouldNotRun,
        "--from-env {name}: the copies under r2://{}/{name}/ ({}) are another database's ({}), \
         not {}'s, so none of them is {done} as {}'s. If {} had another short name \
         (vars.APP_ENV) when its copies were uploaded, give that one. Nothing was {done}.",
        target.bucket(),
        index_key(&name),
        database
            .as_deref()
            .unwrap_or("its newest copy's manifest is gone"),
        env.database_name,
        env.name,
        env.name
    )
}

/// The index's entry for `which`, with a file name that stays inside the
/// backup directory.
fn indexed_entry(project: &Project, target: &Target<'_>, which: &str) -> Result<IndexEntry> {
    let env = target.env;
    let Some(found) = target.find_entry(which)? else {
        // `--from-env NAME` named a prefix another database's copies are
        // under: say whose, not that nothing was uploaded (and not to give
        // the flag given).
        refuse_another_database_under_from_env(target, "fetched")?;
        target.check_bucket_reachable()?;
        // As a name missing from an index is: no such backup to fetch.
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "r2://{} has no index of {}'s offsite copies ({}): nothing of {} has been uploaded \
             to this bucket. {}",
            target.bucket(),
            env.name,
            index_key(&env.name),
            env.name,
            other_buckets_hint(project, target, which)
        );
    };
    let entry = found?;
    // A copy listed under the database's other name is fetched only when
    // its manifest says it is of this database.
    if !target.is_own_key(&entry.key)
        && UntrustedManifest::then(target.database_of(&entry), || nothing_fetched(env))?.as_deref()
            != Some(&env.database_name)
    {
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} (r2://{}/{}) is not a copy of {}: its manifest names another database, or is \
             gone. `cargo xtask offsite list --env {}` shows this database's copies; nothing was \
             fetched",
            entry.file,
            target.bucket(),
            entry.key,
            env.database_name,
            env.name
        );
    }
    // The name comes from the bucket: it must be a plain backup file name,
    // or it could write outside the backup directory.
    if file_name(Path::new(&entry.file)) != entry.file
        || entry.file.starts_with('.')
        || Format::of(Path::new(&entry.file)) == Format::Sql && !entry.file.ends_with(".sql")
    {
        bail!(
            "the offsite index names {:?}, which is not a backup file name; nothing was fetched",
            entry.file
        );
    }
    Ok(entry.clone())
}

/// Where to look when the bucket has no index of the environment: the
/// other buckets the manifests here record copies of its backups in
/// (backups.toml named another bucket then), each with the `--bucket` that
/// reads it; else the `--bucket` for a bucket renamed since.
fn other_buckets_hint(project: &Project, target: &Target<'_>, which: &str) -> String {
    let env = target.env;
    let mut buckets: Vec<String> = crate::steps::offsite::recorded_copies(env, &project.backup_dir)
        .into_iter()
        .map(|o| o.bucket)
        // Only a name R2 takes: it is pasted into a command.
        .filter(|b| b != target.bucket() && check_bucket_name(b).is_ok())
        .collect();
    buckets.sort();
    buckets.dedup();
    let which = d1_core::wording::shell_word(which);
    let fetch = |bucket: &str| {
        format!(
            "`cargo xtask offsite fetch {which} --env {} --bucket {bucket}`",
            env.name
        )
    };
    let prefixes = old_prefixes(env, target.bucket(), &project.backup_dir);
    match buckets.as_slice() {
        [] if !prefixes.is_empty() => format!(
            "The backups here record copies of {} in this bucket under another prefix ({}: \
             its short name then), whose index ({}) is missing or lists another database's \
             copies, so none of them is taken as {}'s. The bucket is the right one.",
            env.name,
            prefixes
                .iter()
                .map(|p| format!("r2://{}/{p}/", target.bucket()))
                .collect::<Vec<_>>()
                .join(", "),
            prefixes
                .iter()
                .map(|p| index_key(p))
                .collect::<Vec<_>>()
                .join(", "),
            env.name
        ),
        [] => format!(
            "If backups.toml's [{}.offsite] bucket was changed since the copies were uploaded, \
             name the bucket they went to: {}; if its short name (vars.APP_ENV) was, name the \
             one it had: `cargo xtask offsite fetch {which} --env {} --from-env OLD_NAME`",
            env.env_name,
            fetch("BUCKET"),
            env.name
        ),
        _ => format!(
            "The backups here record copies of {} in {} (backups.toml's bucket was changed \
             since): fetch from it with {}",
            env.name,
            buckets
                .iter()
                .map(|b| format!("r2://{b}"))
                .collect::<Vec<_>>()
                .join(", "),
            fetch(&buckets[0])
        ),
    }
}

/// What of the backup is already here.
enum Here {
    /// Neither the file nor its manifest.
    Nothing,
    /// The file, identical to the offsite copy (its manifest may be missing).
    File,
    /// Only its manifest, recording this very file (name, sha256, size): a
    /// `prune` stopped between deleting the two, or the file was moved.
    Manifest(Box<Manifest>),
}

/// What of `entry` is here; an error when something else is in its place.
fn already_here(dest: &Path, dest_manifest: &Path, entry: &IndexEntry) -> Result<Here> {
    // A symbolic link (a dangling one too) at either name is what `list`
    // refuses to count: neither read through, written through, nor
    // written beside, before anything is downloaded.
    for path in [dest, dest_manifest] {
        let kind = std::fs::symlink_metadata(path)
            .ok()
            .and_then(|meta| fsutil::not_regular(&meta));
        if let Some(kind) = kind {
            crate::stop!(
                crate::exit::Exit::Refused,
                "{} is not a regular file ({kind}); a backup and its manifest are files of \
                 their own in the backup directory, and fetch never writes through or beside \
                 anything else: move it aside (or put the file it leads to in its place), then \
                 fetch again. Nothing was fetched.",
                path.display()
            );
        }
    }
    if !dest.exists() && dest_manifest.exists() {
        let name = file_name(dest_manifest);
        let recorded = Manifest::read_as(dest_manifest, &name).ok().filter(|m| {
            m.file.name == entry.file
                && m.file.sha256 == entry.sha256
                && m.file.bytes == entry.bytes
        });
        if let Some(recorded) = recorded {
            return Ok(Here::Manifest(Box::new(recorded)));
        }
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} exists without its backup, and does not record the offsite copy (its sha256 or \
             size differs, or it cannot be read); move it aside first. Nothing was fetched.",
            dest_manifest.display()
        );
    }
    if dest.exists() {
        let (sha256, _) = fsutil::sha256_file(dest)?;
        if sha256 == entry.sha256 {
            return Ok(Here::File);
        }
        crate::stop!(
            crate::exit::Exit::Refused,
            "{} exists and differs from the offsite copy; move it aside first. Nothing was fetched.",
            dest.display()
        );
    }
    Ok(Here::Nothing)
}

/// Why the manifest of a copy in the bucket is not one `offsite fetch`
/// takes ([`copy_manifest`]).
enum NotTaken {
    /// No object at its key.
    Missing,
    /// An object of more than a manifest may hold ([`TooLarge`]).
    TooLarge(anyhow::Error),
    /// No manifest, or one that cannot be trusted ([`UntrustedManifest`]).
    Untrusted(anyhow::Error),
    /// A manifest of another file, or of another environment's database.
    Another(Box<Manifest>),
}

/// The manifest of `entry`'s copy in the bucket as `offsite fetch` takes
/// it, or why not: downloaded (no more than a text this tool reads), read
/// and validated ([`Target::manifest_from`]), and describing the entry's
/// file of this environment's database. `offsite reindex` judges each copy
/// by it too, so that every copy an index it rebuilds lists can be
/// fetched. `Err` only when the bucket cannot be read.
fn copy_manifest(
    target: &Target<'_>,
    entry: &IndexEntry,
) -> Result<std::result::Result<Manifest, NotTaken>> {
    let download = match target.download(&entry.manifest_key, "manifest", TEXT_LIMIT) {
        Ok(Some(download)) => download,
        Ok(None) => return Ok(Err(NotTaken::Missing)),
        Err(e) if e.is::<TooLarge>() => return Ok(Err(NotTaken::TooLarge(e))),
        Err(e) => return Err(e),
    };
    let stored_as = file_name(&manifest::manifest_path(Path::new(&entry.file)));
    let manifest = match target.manifest_from(&entry.manifest_key, download.path(), &stored_as) {
        Ok(manifest) => manifest,
        Err(e) => return Ok(Err(NotTaken::Untrusted(e))),
    };
    Ok(
        match manifest.file.name == entry.file && target.env.records(&manifest) {
            true => Ok(manifest),
            false => Err(NotTaken::Another(Box::new(manifest))),
        },
    )
}

/// What a fetch that met a manifest it cannot trust says after it: not
/// to fetch it again, which would meet it again, but another copy.
fn nothing_fetched(env: &crate::config::environment::Environment) -> String {
    format!(
        "nothing was fetched. `cargo xtask offsite list --env {}` names the other copies to \
         fetch",
        env.name
    )
}

/// The entry's manifest from the bucket, as a fetch takes it
/// ([`copy_manifest`]); one it does not take is refused, saying why.
fn fetched_manifest(target: &Target<'_>, entry: &IndexEntry) -> Result<Manifest> {
    let env = target.env;
    let manifest = match copy_manifest(target, entry)? {
        Ok(manifest) => manifest,
        Err(NotTaken::Missing) => bail!(
            "the manifest r2://{}/{} is missing",
            target.bucket(),
            entry.manifest_key
        ),
        Err(NotTaken::TooLarge(e)) => return Err(e),
        Err(NotTaken::Untrusted(e)) => {
            return UntrustedManifest::then(Err(e), || nothing_fetched(env));
        }
        // A guard's refusal, as restoring another environment's backup
        // into this one is.
        Err(NotTaken::Another(manifest)) => crate::stop!(
            crate::exit::Exit::Refused,
            "r2://{}/{} describes {} of {} (database {}), not {} of {} ({}); {}",
            target.bucket(),
            entry.manifest_key,
            manifest.file.name,
            manifest.environment,
            manifest.database.name,
            entry.file,
            env.name,
            env.database_name,
            nothing_fetched(env)
        ),
    };
    Ok(manifest)
}

/// Why a copy of `bytes` is not to be downloaded at all into a file
/// system with `free` bytes free, if it is not.
#[derive(Debug, PartialEq, Eq)]
enum NoDownload {
    /// More than any upload of this tool puts in one object.
    NoUploadPutsIt,
    /// More than the backup directory's file system has free.
    NoRoom(u64),
}

fn no_download(bytes: u64, free: Option<u64>) -> Option<NoDownload> {
    if bytes > OBJECT_LIMIT {
        return Some(NoDownload::NoUploadPutsIt);
    }
    // One whose free space cannot be told is left to the download.
    d1_core::room::short_of(bytes, free).map(NoDownload::NoRoom)
}

/// Refuses, before a byte of it is read, the copy `entry` names when its
/// manifest (found at `manifest_at`) records more than any upload of this
/// tool can have put, or more than `backups/` has room for: the manifest's
/// size is the whole bound on the download, and a manifest in the bucket
/// is anyone's to write who holds its token.
fn refuse_no_download(
    target: &Target<'_>,
    entry: &IndexEntry,
    manifest_at: &str,
    bytes: u64,
) -> Result<()> {
    let size = d1_core::wording::size;
    let dir = &target.backup_dir;
    match no_download(bytes, d1_core::room::available_bytes(dir)) {
        None => Ok(()),
        Some(NoDownload::NoUploadPutsIt) => bail!(
            "{manifest_at} records a copy of {} (r2://{}/{}), more than the {} (300 MiB) \
             wrangler puts in one object, which is how this tool uploads: no upload of this tool \
             wrote it, so the bucket's copy was replaced; nothing was fetched. `cargo xtask \
             offsite list --env {}` names the other copies to fetch",
            size(bytes),
            target.bucket(),
            entry.key,
            size(OBJECT_LIMIT),
            target.env.name
        ),
        Some(NoDownload::NoRoom(free)) => bail!(
            "r2://{}/{} is {} (as {manifest_at} records), and the file system holding {} has {} \
             free; nothing was fetched. Free space there, then fetch again",
            target.bucket(),
            entry.key,
            size(bytes),
            dir.display(),
            size(free)
        ),
    }
}

/// The backup from the bucket, moved to `dest` (where nothing may be yet)
/// once its SHA-256 and size match its manifest: the one here at
/// `manifest_here`, or else the bucket's. Its SHA-256 and size.
fn download_into(
    target: &Target<'_>,
    entry: &IndexEntry,
    (manifest, manifest_here): (&Manifest, Option<&Path>),
    dest: &Path,
) -> Result<(String, u64)> {
    let manifest_at = manifest_here.map_or_else(
        || format!("r2://{}/{}", target.bucket(), entry.manifest_key),
        |here| here.display().to_string(),
    );
    refuse_no_download(target, entry, &manifest_at, manifest.file.bytes)?;
    let downloaded = target.download(&entry.key, &entry.file, manifest.file.bytes);
    if let Some(too_large) = downloaded
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<TooLarge>())
    {
        bail!(
            "{} is larger than its manifest records ({} bytes): the offsite copy is damaged or \
             was replaced. wrangler was stopped there; nothing was kept. `cargo xtask offsite \
             list --env {}` names the other copies to fetch",
            too_large.object,
            manifest.file.bytes,
            target.env.name
        );
    }
    let data = downloaded?.with_context(|| {
        format!(
            "r2://{}/{} is gone (expired by the lifecycle rule?); nothing was fetched. `cargo \
             xtask offsite list --env {}` names the other copies to fetch",
            target.bucket(),
            entry.key,
            target.env.name
        )
    })?;
    let (sha256, bytes) = fsutil::sha256_file(data.path())?;
    if sha256 != manifest.file.sha256 || bytes != manifest.file.bytes {
        bail!(
            "r2://{}/{} is {bytes} bytes with sha256 {sha256}, but its manifest records {} bytes \
             with sha256 {}: the offsite copy is damaged; nothing was kept. `cargo xtask offsite \
             list --env {}` names the other copies to fetch",
            target.bucket(),
            entry.key,
            manifest.file.bytes,
            manifest.file.sha256,
            target.env.name
        );
    }
    fsutil::sync_file(data.path())?;
    fsutil::rename_no_clobber(data.path(), dest).on_path(dest, || {
        format!("cannot move the download to {}", dest.display())
    })?;
    Ok((sha256, bytes))
}

/// What a pasted `verify` or `restore` of the backup needs beside its
/// file: an encrypted copy opens only with an identity. None when
/// QBTIME_AGE_IDENTITY names one, which every command that reads a backup
/// reads (its path is never printed); else `--identity KEYFILE` inside
/// each command, so that a pasted command is whole, with what KEYFILE is
/// told before the command, never on its line, as every printed way back
/// tells it ([`crate::steps::migrations::keyfile_told`]). It was `--identity
/// FILE`, told nowhere. Returns (what is told, the flag).
fn identity_arg(manifest: &Manifest) -> (String, &'static str) {
    let in_force =
        std::env::var_os(crate::edge::stored::IDENTITY_VAR).is_some_and(|v| !v.is_empty());
    match manifest.is_age_sealed() && !in_force {
        true => (
            crate::steps::migrations::keyfile_note(),
            " --identity KEYFILE",
        ),
        false => (String::new(), ""),
    }
}

/// The environment a fetched backup is told to be restored into: the one
/// its manifest names, when this configuration defines it as the database
/// the manifest records; else the one it was fetched for, whose database
/// it is ([`fetched_manifest`] checks it), under a short name it did not
/// have then (`--from-env`). It was `ENV`, which a paste took as a name.
fn restored_into(envs: &Environments, target: &Target<'_>, manifest: &Manifest) -> String {
    let named = { envs.iter() }.find(|e| e.name == manifest.environment && e.records(manifest));
    named.map_or(&target.env.name, |e| &e.name).clone()
}

fn print_fetched(
    (envs, target): (&Environments, &Target<'_>),
    dest: &Path,
    (bytes, sha256): (u64, &str),
    manifest: &Manifest,
    claimed: bool,
) -> Result<()> {
    crate::say!(
        "Fetched {} ({bytes} bytes, sha256 {sha256}, matches its manifest).\n\
         It is unverified here{}: it is not `latest` until it passes verification on this \
         machine.\n{}",
        dest.display(),
        if claimed {
            " (the verification its manifest in the bucket records is not taken on trust)"
        } else {
            ""
        },
        next_steps((envs, target), dest, manifest)
    );
    Ok(())
}

/// What to do with the backup fetched to `dest`, its manifest `manifest`:
/// verify it, and see (then run) its restore, each command whole and run
/// as printed. Every fetch that brings a file says it.
fn next_steps(
    (envs, target): (&Environments, &Target<'_>),
    dest: &Path,
    manifest: &Manifest,
) -> String {
    let pasted = d1_core::wording::shell_word(&dest.display().to_string());
    let (told, identity) = identity_arg(manifest);
    let env = d1_core::wording::shell_word(&restored_into(envs, target, manifest));
    format!(
        "Check it{told} with `cargo xtask verify {pasted}{identity}`; see what restoring it into \
         {env} would do with `cargo xtask restore {pasted} --to {env} --replace \
         --dry-run{identity}` (its plan, nothing changed), and run that without `--dry-run` to \
         restore it."
    )
}

/// Prints the wrangler steps; unless a dry run, asks for the confirmation
/// and runs them. `Ok(false)` for a dry run. A `--confirm` naming another
/// database was refused before the bucket's rules were read
/// ([`confirm::check_named`], in [`rules_target`]).
fn confirm_and_run(
    target: &Target<'_>,
    steps: &[&Invocation],
    dry_run: bool,
    confirm_args: &ConfirmArgs,
    what: &str,
) -> Result<bool> {
    if steps.is_empty() {
        crate::say!("  wrangler commands: none, the rule is in place");
    } else {
        crate::say!("  wrangler commands, in order:");
        for (i, step) in steps.iter().enumerate() {
            crate::say!("    {}. {step}\n       ({})", i + 1, step.purpose);
        }
    }
    if dry_run {
        crate::say!("Dry run: nothing was changed.");
        return Ok(false);
    }
    confirm::require(target.env, confirm_args, what)?;
    for step in steps {
        target.wrangler.run(step)?;
    }
    Ok(true)
}

/// Warns of the offsite copies the retention policy keeps that the rule
/// deletes as soon as it is set (see [`kept_but_expiring`]), naming the
/// `expire_after` that would keep them.
fn warn_of_kept_but_expiring(target: &Target<'_>, days: i64) -> Result<()> {
    let Some(index) = target.read_index()? else {
        return Ok(());
    };
    let now = Utc::now();
    let told = kept_but_expiring(&index.backups, &target.policy, days, now);
    if told.is_empty() {
        return Ok(());
    }
    let longest = told
        .iter()
        .map(|(_, _, expires)| (now - *expires).num_days() + days + 31)
        .max()
        .unwrap_or(days);
    crate::warn!(
        "an age rule cannot follow prune's policy: as soon as it is set, the rule deletes \
         offsite copies that policy keeps: {}. To keep them, set `expire_after = \"{longest}d\"` (or longer) in \
         the [{}.offsite] table of {SETTINGS_FILE}, or upload a newer backup",
        told.iter()
            .map(|(file, why, _)| format!("{file} (kept as {why})"))
            .collect::<Vec<_>>()
            .join("; "),
        target.env.name
    );
    Ok(())
}

fn lifecycle(target: &Target<'_>, dry_run: bool, confirm_args: &ConfirmArgs) -> Result<()> {
    let env = target.env;
    let days = expire_days(&env.env_name, &target.offsite, &target.policy)?;
    let rule = rule_name(&env.name);
    let prefix = format!("{}/", env.name);
    if let Some(lock_for) = target.offsite.lock_for
        && lock_for.days_at_most() > days
    {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "expire_after ({}) is shorter than lock_for ({lock_for}) in the [{}.offsite] table of \
             {SETTINGS_FILE}: the lifecycle rule would delete copies the lock still holds. Make \
             expire_after at least lock_for. Nothing was run.",
            d1_core::wording::count(days, "day"),
            env.name
        );
    }
    let locks = target.locks()?;
    check_expiry_against_locks(days, &locks, &prefix, Utc::now().date_naive())?;
    let listing = target
        .wrangler
        .run_captured(&target.cmds.r2_lifecycle_list(target.bucket()))?;
    let present = rule_names(&listing).contains(&rule);
    let remove = target.cmds.r2_lifecycle_remove(target.bucket(), &rule);
    let add = target
        .cmds
        .r2_lifecycle_add(target.bucket(), &rule, &prefix, days);
    crate::say!("Lifecycle plan for r2://{}", target.bucket());
    crate::say!(
        "  rule         {rule}: delete objects under {prefix} {} after upload{}",
        d1_core::wording::count(days, "day"),
        if target.offsite.expire_after.is_some() {
            " (expire_after)".to_owned()
        } else {
            format!(
                " (the longest span of the retention policy: {})",
                target.policy
            )
        }
    );
    // The rule matches keys by prefix, `<env>/`; the indexes are under
    // `index/`, which no environment's prefix can be (a short name `index`
    // is refused), so the rule never deletes one.
    crate::say!(
        "  kept         {}, the index `offsite list` and `offsite fetch` read: the rule deletes \
         only objects whose key starts with {prefix}, and every index lies under index/ (no \
         environment may be named `index`); each upload drops from it the entries older than \
         the rule. Other rules in the bucket are left alone",
        index_key(&env.name)
    );
    say_old_prefixes(target, &listing);
    warn_of_kept_but_expiring(target, days)?;
    let mut steps = Vec::new();
    if present {
        steps.push(&remove);
    }
    steps.push(&add);
    if !confirm_and_run(
        target,
        &steps,
        dry_run,
        confirm_args,
        "set the R2 lifecycle rule that deletes the offsite backups of",
    )? {
        return Ok(());
    }
    crate::say!(
        "Lifecycle rule {rule} set: copies under {prefix} expire after {}.",
        d1_core::wording::count(days, "day")
    );
    Ok(())
}

/// Copies uploaded under a short name the environment had before
/// (`vars.APP_ENV` changed) stay under that prefix: its rule, when the
/// bucket has one, is left as it is (the prefix may be another
/// environment's now), and this plan says what keeps them.
fn say_old_prefixes(target: &Target<'_>, listing: &str) {
    let env = target.env;
    for old in old_prefixes(env, target.bucket(), &target.backup_dir) {
        let old_rule = rule_name(&old);
        let kept = match rule_names(listing).contains(&old_rule) {
            true => format!("the bucket's rule {old_rule} expires them; it is left as it is"),
            false => format!(
                "no rule {old_rule} in the bucket: they are kept until deleted by hand \
                 (this rule does not reach them)"
            ),
        };
        crate::say!(
            "  also         copies of {} under {old}/ (uploaded while its short name was \
             {old}): {kept}",
            env.name
        );
    }
}

/// `cargo xtask offsite lock`: one rule, `qbtime-<env>-lock-<days>d`, that
/// keeps every object under `<env>/` from deletion and overwriting until it
/// is `days` old. A rule of ours with another span is removed only after
/// the new one is in place, so the prefix is never unlocked in between.
fn lock(target: &Target<'_>, dry_run: bool, confirm_args: &ConfirmArgs) -> Result<()> {
    let env = target.env;
    let days = lock_days(&env.env_name, &target.offsite, &target.policy)?;
    let plan = LockPlan {
        rule: lock_rule_name(&env.name, days),
        prefix: format!("{}/", env.name),
        days,
    };
    let rules = target.locks()?;
    let steps = plan.steps(target, &rules);
    plan.print(target, &rules);
    // A lock its journal has no room to record is not set.
    fsutil::check_room(
        &target.backup_dir.join(LOCK_JOURNAL),
        "the offsite lock journal",
    )?;
    let steps: Vec<&Invocation> = steps.iter().collect();
    if !confirm_and_run(
        target,
        &steps,
        dry_run,
        confirm_args,
        "lock the offsite backups (for good, until they age) of",
    )? {
        return Ok(());
    }
    plan.read_back(target)?;
    let LockPlan { rule, prefix, days } = &plan;
    plan.journal(target).with_context(|| {
        format!(
            "the lock rule {rule} is set on r2://{} (read back; objects under {prefix} cannot be \
             deleted until {} old), but it could not be recorded in the offsite lock journal",
            target.bucket(),
            d1_core::wording::count(*days, "day")
        )
    })?;
    crate::say!(
        "Locked: objects under r2://{}/{prefix} cannot be deleted or overwritten until {} old \
         (rule {rule}, read back).",
        target.bucket(),
        d1_core::wording::count(*days, "day")
    );
    Ok(())
}

/// The lock rule `offsite lock` puts in place.
struct LockPlan {
    rule: String,
    prefix: String,
    days: i64,
}

impl LockPlan {
    /// The wrangler steps: add the rule unless it is there, then remove our
    /// rules with another span.
    fn steps(&self, target: &Target<'_>, rules: &[LockRule]) -> Vec<Invocation> {
        let LockPlan { rule, prefix, days } = self;
        let env = target.env;
        let present = rules
            .iter()
            .any(|r| &r.name == rule && r.enabled && &r.prefix == prefix);
        let mut steps = Vec::new();
        if !present {
            steps.push(
                target
                    .cmds
                    .r2_lock_add(target.bucket(), rule, prefix, *days),
            );
        }
        for old in rules
            .iter()
            .filter(|r| &r.name != rule && is_our_lock(&env.name, &r.name))
        {
            steps.push(target.cmds.r2_lock_remove(target.bucket(), &old.name));
        }
        steps
    }

    fn print(&self, target: &Target<'_>, rules: &[LockRule]) {
        let LockPlan { rule, prefix, days } = self;
        let env = target.env;
        crate::say!("Lock plan for r2://{}", target.bucket());
        crate::say!(
            "  rule         {rule}: objects under {prefix} cannot be deleted or overwritten until \
             {} after upload{}",
            d1_core::wording::count(*days, "day"),
            if target.offsite.lock_for.is_some() {
                " (lock_for)".to_owned()
            } else {
                format!(
                    " (the longest span of the retention policy: {})",
                    target.policy
                )
            }
        );
        crate::say!(
            "  costs        nobody, this tool and the lifecycle rule included, can free that space \
             early; a backup uploaded by mistake stays and is billed for {}",
            d1_core::wording::count(*days, "day")
        );
        for other in rules.iter().filter(|r| !is_our_lock(&env.name, &r.name)) {
            crate::say!("  left alone   {}", other.describe());
        }
        // Copies uploaded under a short name the environment had before
        // (`vars.APP_ENV` changed) stay under that prefix, which this rule
        // does not reach: said as lifecycle's plan says it, nothing written.
        for old in old_prefixes(env, target.bucket(), &target.backup_dir) {
            let under = format!("{old}/");
            let locked: Vec<&str> = rules
                .iter()
                .filter(|r| r.enabled && r.covers(&under))
                .map(|r| r.name.as_str())
                .collect();
            let kept = match locked.as_slice() {
                [] => "no lock rule in the bucket reaches them: they are not locked (this rule \
                       does not reach them)"
                    .to_owned(),
                names => format!(
                    "the bucket's lock rule {} reaches them; it is left as it is",
                    names.join(", ")
                ),
            };
            crate::say!(
                "  also         copies of {} under {under} (uploaded while its short name was \
                 {old}): {kept}",
                env.name
            );
        }
    }

    /// The bucket lists the rule, as added.
    fn read_back(&self, target: &Target<'_>) -> Result<()> {
        let LockPlan { rule, prefix, days } = self;
        let after = target.locks()?;
        if !after.iter().any(|r| {
            &r.name == rule
                && r.enabled
                && &r.prefix == prefix
                && r.retention == Retention::Days(*days)
        }) {
            bail!(
                "wrangler reported the lock rule {rule} added, but r2://{} does not list it; the \
                 offsite copies are not known to be locked",
                target.bucket()
            );
        }
        Ok(())
    }

    /// A line in the offsite lock journal.
    fn journal(&self, target: &Target<'_>) -> Result<()> {
        let LockPlan { rule, prefix, days } = self;
        fsutil::create_private_dir(&target.backup_dir)?;
        fsutil::append_json_line(
            &target.backup_dir.join(LOCK_JOURNAL),
            &serde_json::json!({
                "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "environment": target.env.name,
                "bucket": target.bucket(),
                "rule": rule,
                "prefix": prefix,
                "days": days,
            }),
            "the offsite lock journal",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy is downloaded only when an upload can have put it and the
    /// backup directory's file system has room for all of it.
    #[test]
    fn a_copy_past_any_upload_or_the_free_space_is_not_downloaded() {
        let most = 300 << 20;
        assert_eq!(no_download(most, Some(most)), None);
        assert_eq!(no_download(most, None), None);
        assert_eq!(
            no_download(most + 1, Some(u64::MAX)),
            Some(NoDownload::NoUploadPutsIt)
        );
        assert_eq!(
            no_download(most, Some(most - 1)),
            Some(NoDownload::NoRoom(most - 1))
        );
        assert_eq!(no_download(0, Some(0)), None);
    }
}
