//! `cargo xtask deploy <env>`: the project's own deploy, as
//! `.github/workflows/deploy.yml` runs it, so that no deploy can migrate a
//! database without a backup first.
//!
//! The steps, in order ([`steps`]): `doctor`; the backup lock, held through
//! the Pages deploy, then the pending migrations (which refuses an edited
//! applied migration); when there are any, a full backup,
//! encrypted, verified and uploaded offsite; `migrate` with that backup as
//! its pre-migration backup; the Pages deploy; `status` (reported: a
//! runner holds no backups but this run's). Nothing pending
//! means no backup and no migrate. Any failure stops the run and prints the
//! exact commands that restore the backup this run took; nothing is ever
//! restored by itself.

use std::path::{Path, PathBuf};

use anyhow::Result;
use xshell::Shell;

use crate::config::environment::{Environment, Environments};
use crate::config::project::Project;
use crate::edge::confirm::{self, ConfirmArgs};
use crate::edge::lock::BackupLock;
use crate::exit::Exit;
use crate::steps::backup::{self, BackupArgs, TakenFor, UploadWhen};
use crate::steps::doctor::{self, DoctorArgs};
use crate::steps::migrations::{MigrationPlan, Staged};
use crate::steps::status::{self, StatusArgs};
use d1_core::wording::count;

/// The variable that replaces the Pages deploy with another command, run
/// with `sh -c` in the repository (the tests set a harmless one: a real
/// `pages deploy` needs Cloudflare).
pub const DEPLOY_COMMAND_VAR: &str = "QBTIME_PAGES_DEPLOY";

#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// Environment to deploy: prod (the main branch) or staging (preview branches).
    pub env: String,
    /// The git branch deployed to Pages (the production branch serves prod,
    /// any other a preview); default: the checkout's current branch.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Print the steps and stop, after doctor and the pending migrations.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

/// One step of a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Doctor,
    Pending,
    Backup,
    Migrate,
    PagesDeploy,
    Status,
}

impl Step {
    fn label(self) -> &'static str {
        match self {
            Step::Doctor => "doctor",
            Step::Pending => "pending migrations",
            Step::Backup => "backup (encrypted, verified, offsite)",
            Step::Migrate => "migrate with that backup",
            Step::PagesDeploy => "Pages deploy",
            Step::Status => "status",
        }
    }
}

/// The steps of a deploy, in order: the backup and the migration only when
/// a migration is pending.
pub fn steps(migrations_pending: bool) -> Vec<Step> {
    let mut steps = vec![Step::Doctor, Step::Pending];
    if migrations_pending {
        steps.extend([Step::Backup, Step::Migrate]);
    }
    steps.extend([Step::PagesDeploy, Step::Status]);
    steps
}

/// The way back from a backup this run took: fetch it from R2 onto any
/// machine (the runner's disk is thrown away), then restore it, as
/// migrate's way back restores it
/// ([`crate::steps::migrations::restore_advice_allowing`]): the flags its
/// triggers need, and its identity named KEYFILE, told before the
/// commands, each a line of its own. It ended `--identity <age identity
/// file>`, which a shell reads as input from a file `age` (MF).
pub fn restore_commands(project: &Project, file: &Path, env: &Environment) -> String {
    use crate::steps::migrations as m;
    let name = PathBuf::from(d1_core::names::file_name(file));
    let triggers = m::way_back_triggers(project, file, env, (None, None));
    format!(
        "fetch it onto any machine, then restore it{}:\n  \
         cargo xtask offsite fetch {} --env {}\n  {}",
        m::keyfile_told(&name, None),
        d1_core::wording::shell_word(&name.display().to_string()),
        env.name,
        m::restore_command(&name, env, None, &triggers)
    )
}

/// The Pages project's production branch: a deploy from it replaces the
/// production site (`.github/workflows/deploy.yml` deploys prod from it, and
/// staging from `preview/**`).
pub const PRODUCTION_BRANCH: &str = "main";

/// The branch a deploy of `env` publishes, checked against the environment:
/// prod from the production branch only, every other environment never
/// from it. A staging deploy from `main` would replace production's site
/// after migrating staging's database, with staging's confirmation; a prod
/// deploy from another branch would migrate prod and publish a preview.
pub fn check_branch(env: &Environment, branch: &str) -> Result<()> {
    // wrangler takes an empty --branch as none and asks git instead.
    if branch.trim().is_empty() || branch != branch.trim() {
        crate::stop!(
            Exit::CouldNotRun,
            "--branch {branch:?} is not a branch name; give the branch to deploy (prod: \
             {PRODUCTION_BRANCH}). Nothing was done."
        );
    }
    let production = branch == PRODUCTION_BRANCH;
    if env.is_production() && !production {
        crate::stop!(
            Exit::Refused,
            "deploy {} publishes the production branch {PRODUCTION_BRANCH}, not {branch:?}: a \
             Pages deploy from {branch:?} is a preview, while the migrations would go to {}. \
             Deploy staging from that branch, or prod from {PRODUCTION_BRANCH}. Nothing was done.",
            env.name,
            env.database_name
        );
    }
    if !env.is_production() && production {
        crate::stop!(
            Exit::Refused,
            "deploy {} from {PRODUCTION_BRANCH} would replace the production site, with {}'s \
             confirmation and after migrating {}; deploy {} from a preview branch (--branch \
             preview/…), or prod from {PRODUCTION_BRANCH}. Nothing was done.",
            env.name,
            env.name,
            env.database_name,
            env.name
        );
    }
    Ok(())
}

/// wrangler publishes the checkout's files under the branch it is given,
/// and the migrations come from the checkout too: a `--branch` other than
/// the checked-out one would publish a feature branch's tree (and apply
/// its migrations) as `main`.
pub fn check_checkout(branch: &str, checked_out: Option<&str>) -> Result<()> {
    if checked_out != Some(branch) {
        crate::stop!(
            Exit::Refused,
            "--branch {branch} is not the branch checked out here ({}): the deploy would publish \
             this checkout's files, and apply its migrations, as {branch}. Check out {branch} \
             first (`git switch {}`). Nothing was done.",
            checked_out.map_or_else(|| "HEAD is detached".to_owned(), |b| b.to_owned()),
            d1_core::wording::shell_word(branch)
        );
    }
    Ok(())
}

/// A path as messages show it (control characters and the like escaped).
fn shown(path: &Path) -> String {
    d1_core::names::shown(&path.to_string_lossy()).into_owned()
}

/// The file by which wrangler's Pages deploy follows a build tool to
/// another configuration, looked for from its directory upwards.
const PAGES_REDIRECT: &str = ".wrangler/deploy/config.json";

/// Refuses, before anything runs, a Pages deploy that would publish what
/// no one meant to: `wrangler pages deploy` takes no `--config`, so it
/// must find this run's configuration itself (the first `wrangler.json`,
/// `wrangler.jsonc` or `wrangler.toml` from its directory upwards, with no
/// redirect to another); and it publishes every file under
/// `pages_build_output_dir`, following links, on a public site, so that
/// directory must be the checkout's and reach neither the backups nor the
/// local D1's state. Checked whichever command deploys
/// ([`DEPLOY_COMMAND_VAR`] too), so that the tests see what a real deploy
/// would be refused.
fn check_pages_source(project: &Project, envs: &Environments) -> Result<()> {
    use crate::config::environment::CONFIG_FILES;
    use crate::edge::fsutil;
    let dir = &project.config_dir;
    let read = fsutil::first_upward(dir, &CONFIG_FILES);
    if read.as_deref() != Some(project.config.as_path()) {
        crate::stop!(
            Exit::CouldNotRun,
            "`wrangler pages deploy` takes no --config: it reads {}, not {}, which this deploy \
             checked. Deploy with the configuration it reads (a wrangler.json, wrangler.jsonc or \
             wrangler.toml in {} or a directory above; the first found is taken). Nothing was run.",
            read.as_deref()
                .map_or_else(|| "no configuration".to_owned(), shown),
            shown(&project.config),
            shown(dir)
        );
    }
    if let Some(redirect) = fsutil::first_upward(dir, &[PAGES_REDIRECT]) {
        crate::stop!(
            Exit::CouldNotRun,
            "{} sends `wrangler pages deploy` to another configuration than {}, which this \
             deploy checked: remove it (a build tool writes it). Nothing was run.",
            shown(&redirect),
            shown(&project.config)
        );
    }
    check_pages_output(project, envs)
}

/// Refuses a `pages_build_output_dir` that would publish the backups, the
/// local D1's state or files outside the build (see [`check_pages_source`]),
/// and, when wrangler deploys, one that is not set or not built.
fn check_pages_output(project: &Project, envs: &Environments) -> Result<()> {
    let dir = &project.config_dir;
    // Another command deploys ([`DEPLOY_COMMAND_VAR`]): what it publishes
    // is its own; wrangler's must be there before the migrations run.
    let by_wrangler = std::env::var_os(DEPLOY_COMMAND_VAR).is_none_or(|c| c.is_empty());
    let Some(out) = envs.pages_output_dir()? else {
        if by_wrangler {
            crate::stop!(
                Exit::CouldNotRun,
                "{} names no pages_build_output_dir, so `wrangler pages deploy` would fail after \
                 the migrations ran. Set it to the build's own directory (such as `dist`). \
                 Nothing was run.",
                shown(&project.config)
            );
        }
        return Ok(());
    };
    let root = project.root.canonicalize()?;
    // Where the backup directory is, or will be: this deploy's own backup
    // makes it on a fresh runner, after this check.
    let backups = crate::edge::fsutil::real_path_to_be(&project.backup_dir);
    let state = dir.join(".wrangler").canonicalize().ok();
    let Ok(built) = dir.join(out).canonicalize() else {
        if by_wrangler {
            crate::stop!(
                Exit::CouldNotRun,
                "pages_build_output_dir ({}) is not there: build the site first, or `wrangler \
                 pages deploy` would fail after the migrations ran. Nothing was run.",
                d1_core::names::shown(out)
            );
        }
        return Ok(());
    };
    let private = |real: &Path| {
        if let Some(b) = backups.as_ref().filter(|b| real.starts_with(b)) {
            Some(format!("the backup directory {}", shown(b)))
        } else if let Some(s) = state.as_ref().filter(|s| real.starts_with(s)) {
            Some(format!("the local D1 state {}", shown(s)))
        } else if !real.starts_with(&root) {
            Some(format!("files outside the checkout {}", shown(&root)))
        } else {
            // A link out of the build (`dist/up -> ..`) would publish the
            // checkout's ignored files: `.env`, an identity.
            (!real.starts_with(&built)).then(|| format!("files outside {}", shown(&built)))
        }
    };
    // Whatever the walk reaches is in the build (else refused below): a
    // backup directory to be made in it is published once made.
    if let Some(b) = backups.as_ref().filter(|b| b.starts_with(&built)) {
        crate::stop!(
            Exit::CouldNotRun,
            "the Pages deploy would publish the backup directory {} on a public site: it is \
             under pages_build_output_dir ({}), and this deploy's backup is written there. Keep \
             the backups out of the build (--backup-dir, QBTIME_BACKUP_DIR). Nothing was run.",
            shown(b),
            d1_core::names::shown(out)
        );
    }
    // A file of the backup directory or of the local D1 state hard linked
    // into the build has its real path there: it is told by its device
    // and inode.
    let ids = |d: &Option<PathBuf>| {
        { d.as_deref() }
            .map(crate::edge::fsutil::file_ids)
            .unwrap_or_default()
    };
    let walked = Published {
        dir: dir.join(out),
        out,
        root: &root,
        in_backups: ids(&backups),
        in_state: ids(&state),
    };
    walked.refuse_reaching(private)
}

/// `pages_build_output_dir`, as the Pages deploy publishes it.
struct Published<'a> {
    /// The directory walked.
    dir: PathBuf,
    /// Its name in the configuration.
    out: &'a str,
    /// The checkout, which the refusals name files from.
    root: &'a Path,
    /// The device and inode of each file in the backup directory.
    in_backups: std::collections::HashSet<(u64, u64)>,
    /// The device and inode of each file of the local D1 state.
    in_state: std::collections::HashSet<(u64, u64)>,
}

impl Published<'_> {
    /// Refuses the walk of the directory as `wrangler pages deploy` walks
    /// it, when an entry reaches what `private` names, is a backup or a
    /// file of the local D1 state or a secret ([`Published::private_file`]), or
    /// leads nowhere. Each entry is judged once, and the refusal says what
    /// that judgement found.
    fn refuse_reaching(&self, private: impl Fn(&Path) -> Option<String>) -> Result<()> {
        let out = d1_core::names::shown(self.out);
        let found = crate::edge::fsutil::first_reaching(
            &self.dir,
            pages_leaves_out,
            through_a_dot_directory,
            |entry, real| match private(real) {
                Some(what) => Some(Ok((
                    what,
                    // A link leads there; a directory of the build is it.
                    format!(
                        "{} {}",
                        if entry == real { "is" } else { "leads to" },
                        shown(real)
                    ),
                    "Point pages_build_output_dir at the build's own directory (such as \
                     `dist`), with no link out of it.",
                ))),
                None => match unreadable(real) {
                    Some(kind) if entry == real => Some(Err(format!("is {kind}"))),
                    Some(kind) => Some(Err(format!("leads to {}, which is {kind}", shown(real)))),
                    None => self.private_file(entry, real).map(|(what, why)| {
                        let fix = "Remove it from pages_build_output_dir, where no backup, \
                                   database or secret belongs.";
                        Ok((what.to_owned(), why, fix))
                    }),
                },
            },
        );
        let Some((entry, why)) = found else {
            return Ok(());
        };
        // The entry, from the checkout when it is in it.
        let at = if entry == self.dir {
            format!("pages_build_output_dir ({out})")
        } else {
            let shown = shown(entry.strip_prefix(self.root).unwrap_or(&entry));
            format!("{shown} under pages_build_output_dir ({out})")
        };
        let Some(why) = why else {
            crate::stop!(
                Exit::CouldNotRun,
                "{at} leads nowhere (a symbolic link to nothing there yet): `wrangler pages \
                 deploy` would fail on it after the migrations ran, or publish what this deploy \
                 makes there (its backup). Remove the link, or rebuild the site. Nothing was \
                 run."
            );
        };
        let (what, why, fix) = match why {
            Ok(why) => why,
            Err(is) => crate::stop!(
                Exit::CouldNotRun,
                "{at} {is}, which `wrangler pages deploy` cannot read as a file: it would wait on \
                 it forever or fail, after the backup and the migrations ran. Remove it from \
                 pages_build_output_dir (or make it readable: chmod a+r), or rebuild the site. \
                 Nothing was run."
            ),
        };
        crate::stop!(
            Exit::CouldNotRun,
            "the Pages deploy would publish {what} on a public site: {at} {why}. {fix} Nothing \
             was run."
        )
    }

    /// What the file at `entry` under the build, whose real path is
    /// `real`, is and why, when it is a backup, the local D1 state or a
    /// secret: a hard link to a file in the backup directory or of the
    /// local D1 state, a file named as a backup or a manifest, or as
    /// secrets are ([`named_as_secrets`]; published under that name, or
    /// linked to one); else what its first bytes tell ([`held`]), the only
    /// part of it read, never printed.
    fn private_file(&self, entry: &Path, real: &Path) -> Option<(&'static str, String)> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(real).ok().filter(|m| m.is_file())?;
        let id = (meta.dev(), meta.ino());
        if self.in_backups.contains(&id) {
            return Some((
                "a backup",
                "is a hard link to a file in the backup directory (the same file, whatever its \
                 name)"
                    .to_owned(),
            ));
        }
        if self.in_state.contains(&id) {
            return Some((
                "the local D1 state",
                "is a hard link to a file of the local D1 state under .wrangler (the same file, \
                 whatever its name)"
                    .to_owned(),
            ));
        }
        let named = |path: &Path| {
            path.file_name()
                .is_some_and(|name| crate::edge::git::named_as_backup(&name.to_string_lossy()))
        };
        let is = |named: &dyn Fn(&Path) -> bool| {
            if named(entry) {
                Some("is".to_owned())
            } else {
                named(real).then(|| format!("leads to {}, which is", shown(real)))
            }
        };
        if let Some(is) = is(&|path| path.file_name().is_some_and(named_as_secrets)) {
            return Some((
                "a secrets file",
                format!(
                    "{is} named as wrangler's local secrets (.dev.vars, .dev.vars.<env>) or an \
                     environment file (.env, .env.<name>, .envrc) is, in any case, which hold \
                     secrets"
                ),
            ));
        }
        let Some(is) = is(&named) else {
            return held(entry, real);
        };
        Some((
            "a backup",
            format!(
                "{is} named as a backup is (backup-*.sql…, *.sql.zst, *.sql.age, *.sql.gz, \
                 *.sql.bz2, *.sql.xz, *.sql.zip, in any case) or a backup's manifest \
                 (backup-<env>-YYYYMMDD-HHMM.manifest.json)"
            ),
        ))
    }
}

/// What the entry of the build whose real path is `real` is when
/// `wrangler pages deploy` cannot read it as a file: a pipe, a socket or a
/// device (its read of one waits forever, or fails), or a file this user
/// may not read. `None` for a directory, and a file it reads.
fn unreadable(real: &Path) -> Option<String> {
    let meta = std::fs::metadata(real).ok()?;
    if meta.is_dir() {
        return None;
    }
    if let Some(kind) = crate::edge::fsutil::not_regular(&meta) {
        return Some(kind.to_owned());
    }
    // A regular file: opening it does not wait.
    let denied = std::fs::File::open(real).err()?;
    Some(format!("a file this user cannot read ({denied})"))
}

/// What the file at `entry` under the build, whose real path is `real`,
/// is and why, when what it holds says it is a database, a backup or a
/// secret whatever its name ([`crate::edge::stored::held_in`]): by its
/// first bytes, a copy of the local D1's SQLite file, its write-ahead log
/// or journal, a backup's dump, compressed or encrypted as backups are;
/// anywhere in it, an age identity or a PEM private key; a compressed file
/// nested too deep, unpacking too much or with too large a window to check;
/// an archive (zip, tar, 7z, xz, bzip2), which is not looked inside
/// ([`archive_why`]). Nothing read is printed.
fn held(entry: &Path, real: &Path) -> Option<(&'static str, String)> {
    let (held, compressed) = crate::edge::stored::held_in(real)?;
    held_why(entry, real, held, compressed)
}

/// Why a compressed file that holds `held` cannot be checked, when it
/// cannot (`is`: "is", or which file the entry leads to): nested too deep
/// or cut short, or too large to check, with the bound it reached.
fn unchecked_why(is: &str, held: d1_core::dump::Held) -> Option<String> {
    use d1_core::dump::Held;
    if held == Held::Unchecked {
        let why = format!(
            "{is} compressed (zstd or gzip) through more than 3 compressed layers, stops \
             unpacking before its end (corrupt or cut short, or bytes after its stream that are \
             none), or holds a zstd frame whose window is past the decoder's limit: it cannot \
             be checked for a database, a backup or a secret. Do not publish it, or compress \
             it again whole, with fewer layers and a smaller window"
        );
        return Some(why);
    }
    let past = match held {
        Held::TooLarge => "a layer of it unpacks to more than 200 MiB",
        Held::TooMuchWork => {
            "its layers, over every pass of the check, unpack to more than 400 MiB together \
             (no one layer past 200 MiB; each gzip member or zstd frame counted as 2 KiB \
             unpacked: a stream of some 200,000 members or frames is one)"
        }
        _ => return None,
    };
    Some(format!(
        "{is} compressed (zstd or gzip) and {past}: too large to check for a database, a \
         backup or a secret, so it cannot be checked: move it out of the build (to R2, say, \
         and fetch it from there), serve it uncompressed, under 25 MiB (what a Pages file \
         may be), where it is searched whole, or compress it again whole, in fewer members \
         or frames"
    ))
}

/// What [`held`] tells of the file at `entry` (real path `real`) that
/// holds `held`, unpacked when `compressed`.
fn held_why(
    entry: &Path,
    real: &Path,
    held: d1_core::dump::Held,
    compressed: bool,
) -> Option<(&'static str, String)> {
    use d1_core::dump::Held;
    let (what, kind) = match held {
        Held::Database => (
            "a SQLite database",
            "a SQLite database file, as the local D1's is",
        ),
        Held::WriteAheadLog => (
            "a SQLite database's latest rows",
            "a SQLite write-ahead log (a database's -wal), which holds its latest rows",
        ),
        Held::Journal => (
            "a SQLite database's rows",
            "a SQLite rollback journal (a database's -journal), which holds its rows",
        ),
        Held::Encrypted => (
            "an age-encrypted file",
            "encrypted with age, as an encrypted backup (or an identity under a passphrase) is",
        ),
        Held::Dump => (
            "a backup",
            "a SQL dump (its first statements are a D1 export's or a sqlite3 .dump's, or SQL \
             that inserts rows; in UTF-8, UTF-16 or UTF-32)",
        ),
        Held::Identity => (
            "an age identity",
            "an age identity (a secret key, as `cargo xtask keygen --out FILE` writes it), which opens every \
             backup encrypted to it",
        ),
        Held::PrivateKey => (
            "a private key",
            "a PEM private key (-----BEGIN … PRIVATE KEY-----: a TLS, SSH or signing key), which \
             no public site may hold",
        ),
        // Told by what it unpacks to, never returned itself.
        Held::Compressed => return None,
        Held::Unchecked => ("a compressed file it cannot check", ""),
        Held::TooLarge | Held::TooMuchWork => ("a compressed file too large to check", ""),
        Held::Archive => ("an archive it does not look inside", ""),
    };
    let is = match entry == real {
        true => "is".to_owned(),
        false => format!("leads to {}, which is", shown(real)),
    };
    if let Some(why) = unchecked_why(&is, held) {
        return Some((what, why));
    }
    if held == Held::Archive {
        return Some((what, archive_why(&is, compressed)));
    }
    let packed = if compressed {
        "compressed (zstd or gzip); unpacked, it is "
    } else {
        ""
    };
    let told = match held {
        Held::Identity | Held::PrivateKey => "told by what it holds",
        _ => "told by its first bytes",
    };
    let why = format!("{is} {packed}{kind}, {told} whatever its name");
    Some((what, why))
}

/// Why an archive in the build (`is`: "is", or where a link leads) is
/// refused: this deploy does not look inside it, and a tarball or zip of
/// a backups folder is a likely accident; `compressed`: it was found
/// inside gzip or zstd. The fix, for a site that really serves a download.
fn archive_why(is: &str, compressed: bool) -> String {
    let packed = match compressed {
        true => "compressed (zstd or gzip); unpacked, it is ",
        false => "",
    };
    format!(
        "{is} {packed}an archive or a compressed file (zip, tar, 7z, xz or bzip2, told by its \
         magic bytes whatever its name) that this deploy does not look inside: it may hold a \
         backup, a database or a key (a tarball of backups/ is a likely accident). Do not \
         publish archives from the build; if the site really serves this download, host it \
         outside pages_build_output_dir (in R2, say)"
    )
}

/// Whether `name` is a file of secrets by its name, in any case: wrangler's
/// local secrets (`.dev.vars`, `.dev.vars.<env>`), which `wrangler dev`
/// reads, or an environment file (`.env`, `.env.<name>`, direnv's
/// `.envrc`). A site has no use for one, and `wrangler pages deploy`
/// publishes it as any other file.
fn named_as_secrets(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy().to_ascii_lowercase();
    [".dev.vars", ".env"].iter().any(|base| {
        name.strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }) || name == ".envrc"
}

/// Whether `wrangler pages deploy` leaves out the entry at `rel` under
/// `pages_build_output_dir`: a `node_modules` or `.git` (its
/// `**/node_modules` and `**/.git`), but not one under a directory whose
/// name starts with a dot (`.well-known/node_modules`), which its `**`
/// does not pass through, so it publishes that.
fn pages_leaves_out(rel: &Path) -> bool {
    let last = rel.file_name().map(|n| n.to_string_lossy());
    matches!(last.as_deref(), Some("node_modules" | ".git"))
        && !rel.parent().is_some_and(through_a_dot_directory)
}

/// Whether the path `rel` under `pages_build_output_dir` goes through a
/// directory whose name starts with a dot: below it, wrangler leaves out
/// nothing (see [`pages_leaves_out`]).
fn through_a_dot_directory(rel: &Path) -> bool {
    rel.iter().any(|p| p.to_string_lossy().starts_with('.'))
}

/// What every step of one deploy needs.
struct Deploy<'a> {
    sh: &'a Shell,
    project: &'a Project,
    env: &'a Environment,
    /// The branch published, checked against the environment first.
    branch: String,
}

pub fn run(sh: &Shell, project: &Project, args: &DeployArgs) -> Result<()> {
    let envs = project.environments()?;
    let env = envs.resolve(&args.env)?;
    crate::steps::rehearsals::refuse_real_database(&project.backup_dir, env, "deploy")?;
    // Before anything else, a dry run included (as migrate). Without a
    // terminal, a deploy that will not be confirmed is refused here, before
    // the doctor, the lock and the plan.
    confirm::check_given(env, &args.confirm, args.dry_run, "migrate and deploy")?;
    // As early, whatever is pending: a TMPDIR, or a migrations journal,
    // the migrate step refuses is refused before the lock and the backup.
    crate::steps::migrations::check_stageable()?;
    crate::steps::migrations::check_journal_writable(project)?;
    let checked_out = crate::edge::git::current_branch(sh, &project.config_dir);
    let branch = match &args.branch {
        Some(branch) => branch.clone(),
        None => checked_out.clone().ok_or_else(|| {
            Exit::CouldNotRun.error(anyhow::anyhow!(
                "cannot tell which branch to deploy (HEAD is detached); pass --branch"
            ))
        })?,
    };
    check_branch(env, &branch)?;
    check_checkout(&branch, checked_out.as_deref())?;
    check_pages_source(project, &envs)?;
    let deploy = Deploy {
        sh,
        project,
        env,
        branch,
    };
    deploy.doctor()?;
    let cmds = project.commands();
    crate::steps::identity::check(&project.wrangler(sh)?, &cmds, deploy.env, "deploy to it")?;
    // Taken before the pending migrations are read: a restore or migrate
    // in another terminal would otherwise change the database between the
    // plan and the run. A dry run takes none, as no dry run does.
    let lock = (!args.dry_run).then(|| deploy.lock()).transpose()?;
    let plan = deploy.pending_migrations()?;
    deploy.refuse_siblings_pending(&envs)?;
    // As migrate refuses it, with its words, before the backup: the
    // deploy would take, verify and upload one, then fail at its migrate
    // step, and again each time it is retried.
    crate::steps::migrations::refuse_what_cannot_apply(&plan, true)
        .map_err(|e| failed(deploy.env, Step::Pending, e, None))?;
    if !plan.pending.is_empty() {
        // The backup's settings, checked before the plan, a dry run
        // included: a deploy bound to fail at its backup never looks ready.
        backup::check_can_take(project, &deploy.backup_args(&plan))
            .map_err(|e| failed(deploy.env, Step::Backup, e, None))?;
    }
    let planned = deploy.print_plan(&plan);
    if args.dry_run {
        crate::say!("Dry run: nothing was changed.");
        return Ok(());
    }
    confirm::require(deploy.env, &args.confirm, "migrate and deploy")?;
    let lock = lock.expect("a deploy that is not a dry run holds the backup lock");
    // Staged before the backup step: a copy refused (a migration changed
    // since the plan) is refused before anything is written.
    let staged = { (!plan.pending.is_empty()).then(|| crate::steps::migrations::stage(&plan)) }
        .transpose()
        .map_err(|e| failed(deploy.env, Step::Migrate, e, None))?;
    let (backup_file, applied) = deploy.run_steps((&plan, staged.as_ref()), &planned[2..], lock)?;
    deploy.print_done(&applied, backup_file.as_deref());
    Ok(())
}

impl Deploy<'_> {
    /// Step 1: `doctor`; a problem stops the deploy before anything runs.
    fn doctor(&self) -> Result<()> {
        crate::say!("== deploy {}: doctor", self.env.name);
        let said = "doctor: no problem found; what this deploy's backup needs beyond it \
                    (encryption recipients and an offsite bucket, when a migration is pending) \
                    is checked next";
        if !doctor::run_saying(self.sh, self.project, &DoctorArgs { json: false }, said)? {
            return Err(failed(
                self.env,
                Step::Doctor,
                anyhow::anyhow!("doctor found a problem (FAIL above)"),
                None,
            ));
        }
        Ok(())
    }

    /// The backup lock, held from before the pending migrations are read
    /// through the Pages deploy, so that the plan printed is the one run
    /// and the site published is for the schema it read: while it is held
    /// no restore or migration can change the database.
    fn lock(&self) -> Result<BackupLock> {
        let task = format!("deploy {}", self.env.name);
        crate::steps::lock::acquire_lock(self.project, &task)
            .map_err(|e| failed(self.env, Step::Pending, e, None))
    }

    /// Step 2: the pending migrations (which refuses an edited applied one).
    fn pending_migrations(&self) -> Result<MigrationPlan<'_>> {
        crate::say!("== deploy {}: pending migrations", self.env.name);
        let plan = crate::steps::migrations::plan(self.sh, self.project, self.env)
            .map_err(|e| failed(self.env, Step::Pending, e, None))?;
        plan.print(self.project);
        Ok(plan)
    }

    /// Refuses, before anything runs, a deploy of one database of an
    /// environment that has others with migrations pending: the app it
    /// publishes would run against them unmigrated, and a deploy migrates
    /// only the database it is given.
    /// An applied migration of another database edited since it was
    /// applied is refused as `migrate` refuses it: that database's schema
    /// is no longer what its migrations say. (`doctor`, the deploy's first
    /// step, has refused one whose migrations directory is missing.)
    fn refuse_siblings_pending(&self, envs: &Environments) -> Result<()> {
        use crate::steps::migrations;
        for other in envs.siblings(self.env) {
            let dir = self.project.config_dir.join(&other.migrations_dir);
            let files = migrations::migration_files(&dir)?;
            let applied = migrations::applied_migrations(self.sh, self.project, other)?;
            if let Some(report) =
                migrations::edited_since_applied(self.sh, self.project, other, &dir, &applied)?
            {
                return Err(failed(
                    self.env,
                    Step::Pending,
                    Exit::Refused.error(anyhow::anyhow!(
                        "{}, the other database of {}: {report} Deploy once it is put right. \
                         Nothing was run",
                        other.database_name,
                        self.env.env_name,
                    )),
                    None,
                ));
            }
            let pending = migrations::pending(&files, &applied);
            if !pending.is_empty() {
                return Err(failed(
                    self.env,
                    Step::Pending,
                    Exit::Refused.error(anyhow::anyhow!(
                        "{} also has {} pending ({}): the app this deploy publishes would run \
                         against it unmigrated. Migrate it first (`{}`), then deploy again. \
                         Nothing was run",
                        other.name,
                        count(pending.len(), "migration"),
                        d1_core::wording::first_of(&pending, 5),
                        confirm::migrate_command(other, "")
                    )),
                    None,
                ));
            }
        }
        Ok(())
    }

    /// Prints the deploy's steps, which the pending migrations decide.
    fn print_plan(&self, plan: &MigrationPlan<'_>) -> Vec<Step> {
        let planned = steps(!plan.pending.is_empty());
        crate::say!(
            "Deploy plan: {}",
            planned
                .iter()
                .map(|s| s.label())
                .collect::<Vec<_>>()
                .join(" -> ")
        );
        crate::say!(
            "Pages branch: {}{}",
            self.branch,
            if self.branch == PRODUCTION_BRANCH {
                " (the production site)"
            } else {
                " (a preview)"
            }
        );
        if plan.pending.is_empty() {
            crate::say!(
                "Nothing to migrate: no backup is taken; going straight to the Pages deploy."
            );
        }
        planned
    }

    /// Runs the steps after the plan, in order; the first failure stops the
    /// deploy with the way back from the backup taken so far. Returns that
    /// backup and the migrations its migrate step applied (what
    /// d1_migrations gained, read again). The backup lock ([`Deploy::lock`]) is released once the
    /// Pages deploy is done.
    fn run_steps(
        &self,
        plan: (&MigrationPlan<'_>, Option<&Staged>),
        steps: &[Step],
        lock: BackupLock,
    ) -> Result<(Option<PathBuf>, Vec<String>)> {
        let mut backup_file = None;
        let mut applied = Vec::new();
        let mut lock = Some(lock);
        for &step in steps {
            let advice = backup_file
                .as_deref()
                .map(|f| restore_commands(self.project, f, self.env));
            let done = (&mut backup_file, &mut applied);
            if let Err(e) = self.run_step(step, plan, done, lock.as_ref()) {
                return Err(failed(self.env, step, e, advice.as_deref()));
            }
            if step == Step::PagesDeploy {
                lock = None;
            }
        }
        Ok((backup_file, applied))
    }

    /// The pre-migration backup the deploy takes: full, encrypted, uploaded.
    fn backup_args(&self, plan: &MigrationPlan<'_>) -> BackupArgs {
        let mut backup = BackupArgs::full(
            &self.env.name,
            format!("pre-migration: {} (deploy)", plan.pending.join(", ")),
            TakenFor::Migration,
        );
        backup.require_encryption = true;
        backup.upload = Some(UploadWhen::Always);
        backup
    }

    /// One step; the backup step sets `backup_file`, the migrate step
    /// `applied`.
    fn run_step(
        &self,
        step: Step,
        (plan, staged): (&MigrationPlan<'_>, Option<&Staged>),
        (backup_file, applied): (&mut Option<PathBuf>, &mut Vec<String>),
        lock: Option<&BackupLock>,
    ) -> Result<()> {
        let env = self.env;
        let held = || lock.expect("the deploy holds the backup lock until its Pages deploy");
        match step {
            Step::Doctor | Step::Pending => Ok(()),
            Step::Backup => {
                let backup = self.backup_args(plan);
                let held = backup::Held {
                    lock: held(),
                    schema: None,
                    of: env,
                };
                backup::run_under(self.sh, self.project, &backup, held)
                    .map(|file| *backup_file = file)
            }
            Step::Migrate => {
                let staged = staged.expect("a deploy with a migration to apply staged it");
                let applying = crate::steps::migrations::record_applying(
                    self.project,
                    held(),
                    plan,
                    backup_file.as_deref(),
                )?;
                // One that applied nothing names the backup as kept (there
                // is nothing to restore), as migrate does: it said "named
                // below" and named none.
                *applied = crate::steps::migrations::apply(
                    self.sh,
                    self.project,
                    (plan, staged),
                    ("see below for the way back", &applying.kept),
                )?;
                // Applied: a kill during the Pages deploy leaves no record
                // of migrations underway.
                held().settled()
            }
            Step::PagesDeploy => pages_deploy(self.sh, self.project, &self.branch),
            // The runner holds only this run's backups (the scheduled
            // job's are in R2), so a stale status is reported, not fatal.
            Step::Status => status::run(
                self.project,
                &StatusArgs {
                    env: Some(env.name.clone()),
                    json: false,
                },
            )
            .map(|fresh| {
                if !fresh {
                    crate::say!(
                        "status: this machine holds no fresh backup of {}; the scheduled job's \
                         are offsite (`cargo xtask offsite list --env {}`)",
                        env.name,
                        env.name
                    );
                }
            }),
        }
    }

    /// The last line: what d1_migrations gained (`applied`), named, and the
    /// backup taken before it.
    fn print_done(&self, applied: &[String], backup_file: Option<&Path>) {
        crate::say!(
            "deploy of {}: done ({})",
            self.env.name,
            match backup_file {
                Some(file) => {
                    let shown: Vec<_> = applied.iter().map(|n| d1_core::names::shown(n)).collect();
                    format!(
                        "{} applied after the backup {}{}{}",
                        count(applied.len(), "migration"),
                        d1_core::names::file_name(file),
                        if shown.is_empty() { "" } else { ": " },
                        d1_core::wording::listed(&shown, "migration")
                    )
                }
                None => "nothing to migrate, no backup taken".to_owned(),
            }
        );
    }
}

/// The Pages deploy: wrangler's, or the command in [`DEPLOY_COMMAND_VAR`].
fn pages_deploy(sh: &Shell, project: &Project, branch: &str) -> Result<()> {
    if let Some(command) = std::env::var_os(DEPLOY_COMMAND_VAR).filter(|c| !c.is_empty()) {
        crate::say!(
            "Pages deploy: {} (from {DEPLOY_COMMAND_VAR})",
            crate::redact::text(&command.to_string_lossy())
        );
        return crate::edge::child::pages_deploy_command(&command, &project.config_dir);
    }
    project
        .wrangler(sh)?
        .run(&project.commands().pages_deploy(branch))
}

/// The error a failed step stops the deploy with: which step, why, and the
/// way back from the backup this run took (never taken by itself).
fn failed(env: &Environment, step: Step, e: anyhow::Error, advice: Option<&str>) -> anyhow::Error {
    // A migrate step that applied nothing said so, and named its backup as
    // kept: a restore of it would be no way back (OF 2).
    let nothing_to_restore = { e.downcast_ref::<crate::steps::migrations::FailedApply>() }
        .is_some_and(|f| f.nothing_to_restore);
    let way_back = match advice {
        Some(_) if nothing_to_restore => format!(
            "Nothing was restored, and nothing needs to be: {} is as it was before this deploy.",
            env.database_name
        ),
        Some(commands) => format!(
            "Nothing was restored. To go back to the backup this deploy took before migrating, \
             {commands}"
        ),
        None => format!(
            "This run took no backup and did not change {}.",
            env.database_name
        ),
    };
    let exit = Exit::of(&e).unwrap_or(Exit::Failure);
    exit.error(anyhow::anyhow!(
        "DEPLOY OF {} FAILED at {}: {e:#}\n{way_back}",
        env.name,
        step.label()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As wrangler's `**/node_modules` and `**/.git`, whose `**` passes
    /// through no directory named with a leading dot.
    #[test]
    fn pages_leaves_out_what_wrangler_leaves_out_and_no_more() {
        for left_out in ["node_modules", "a/b/node_modules", ".git", "a/.git"] {
            assert!(pages_leaves_out(Path::new(left_out)), "{left_out}");
        }
        for published in [
            ".well-known/node_modules",
            "a/.b/.git",
            "node_modules.txt",
            "a/git",
            ".env",
        ] {
            assert!(!pages_leaves_out(Path::new(published)), "{published}");
        }
    }

    /// rvZ 1: a compressed file refused because every pass of the check
    /// together unpacked more than 400 MiB, no layer past 200 MiB, was told
    /// that it unpacks past 200 MiB. Each refusal names the bound reached,
    /// and the same way out.
    #[test]
    fn a_file_too_large_to_check_is_told_which_bound_it_reached() {
        use d1_core::dump::Held;
        let path = Path::new("assets/big.data.gz");
        let why = |held| held_why(path, path, held, true).unwrap().1;
        let layer = why(Held::TooLarge);
        let work = why(Held::TooMuchWork);
        assert!(
            layer.contains("a layer of it unpacks to more than 200 MiB"),
            "{layer}"
        );
        assert!(!layer.contains("400 MiB"), "{layer}");
        let together = "unpack to more than 400 MiB together";
        assert!(
            work.contains(together) && !work.contains("more than 200 MiB"),
            "{work}"
        );
        for way in [
            "move it out of the build",
            "R2",
            "uncompressed, under 25 MiB",
        ] {
            assert!(
                layer.contains(way) && work.contains(way),
                "{way}: {layer}\n{work}"
            );
        }
    }

    #[test]
    fn secrets_files_are_told_by_their_names_in_any_case() {
        for secrets in [
            ".dev.vars",
            ".dev.vars.staging",
            ".env",
            ".ENV",
            ".env.production",
            ".env.local",
            ".envrc",
        ] {
            assert!(named_as_secrets(secrets.as_ref()), "{secrets}");
        }
        for site in [
            "env.js",
            ".envelope",
            "dev.vars",
            ".dev.variables",
            ".well-known",
        ] {
            assert!(!named_as_secrets(site.as_ref()), "{site}");
        }
    }

    #[test]
    fn prod_deploys_the_production_branch_only_and_nothing_else_does() {
        let envs =
            crate::config::environment::Environments::parse(include_str!("../../../wrangler.toml"))
                .unwrap();
        let (prod, staging) = (
            envs.resolve("prod").unwrap(),
            envs.resolve("staging").unwrap(),
        );
        assert!(check_branch(prod, "main").is_ok());
        assert!(check_branch(staging, "preview/x").is_ok());
        for (env, branch) in [(prod, "preview/x"), (prod, "Main"), (staging, "main")] {
            let e = check_branch(env, branch).unwrap_err();
            assert_eq!(Exit::of(&e), Some(Exit::Refused), "{}: {branch}", env.name);
            assert!(format!("{e:#}").contains("Nothing was done"));
        }
        // wrangler would take an empty branch as the checkout's.
        for branch in ["", " ", "main "] {
            let e = check_branch(staging, branch).unwrap_err();
            assert_eq!(Exit::of(&e), Some(Exit::CouldNotRun), "{branch:?}");
        }
        assert!(check_checkout("main", Some("main")).is_ok());
        for checked_out in [Some("feature/x"), None] {
            let e = check_checkout("main", checked_out).unwrap_err();
            assert_eq!(Exit::of(&e), Some(Exit::Refused), "{checked_out:?}");
        }
    }

    #[test]
    fn the_backup_comes_before_the_migration_before_the_deploy_and_only_when_needed() {
        use Step::*;
        assert_eq!(
            steps(true),
            [Doctor, Pending, Backup, Migrate, PagesDeploy, Status]
        );
        assert_eq!(steps(false), [Doctor, Pending, PagesDeploy, Status]);
    }
}
