//! File-system steps that keep backups private and never half-written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

use d1_core::names::{hex, is_plain_file_name};

pub const PRIVATE_DIR_MODE: u32 = 0o700;
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// The prefix of every private temporary directory
/// ([`crate::edge::wrangler::PrivateDir`]): `qbtime-xtask-<label>-<pid>-…`.
pub const PRIVATE_DIR_PREFIX: &str = "qbtime-xtask-";

/// Creates `dir` (and its parents) readable by this user only (0700). A
/// directory that already exists keeps its mode: the tool never changes the
/// mode of a directory it did not create. One that others can write to (a
/// shared 1777 directory, say) is refused, because anyone who can write
/// there could plant or swap backups, manifests or links.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(PRIVATE_DIR_MODE);
        builder
            .create(dir)
            .on_path(dir, || format!("cannot create directory {}", dir.display()))?;
    }
    refuse_shared_dir(dir)
}

/// Creates a new directory readable by this user only; fails if anything
/// (a link included) is already there.
pub fn create_new_private_dir(path: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.mode(PRIVATE_DIR_MODE);
    builder.create(path).on_path(path, || {
        format!("cannot create the private directory {}", path.display())
    })
}

/// Refuses a directory that others can write to, or a path that is not a
/// directory; a path that does not exist yet passes (it will be created
/// private). Changes nothing.
pub fn refuse_shared_dir(dir: &Path) -> Result<()> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read directory {}", dir.display()));
        }
    };
    if !meta.is_dir() {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} is not a directory; give --backup-dir a directory (or a path to create)",
            dir.display()
        );
    }
    #[cfg(unix)]
    {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            crate::stop!(
                crate::exit::Exit::Refused,
                "the backup directory {} is writable by other users (mode {mode:o}): anyone who can \
                 write there could plant or swap backups, manifests or links. Use a directory only \
                 you can write: pass --backup-dir with a new path (it is created mode 700), or \
                 `chmod go-w {}` if the directory is yours alone. Its mode was left unchanged; \
                 nothing was done.",
                dir.display(),
                d1_core::wording::shell_word(&dir.display().to_string())
            );
        }
    }
    Ok(())
}

/// Creates a new file readable by this user only; fails if it exists
/// (a symbolic link included: it is never followed).
pub fn create_private_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    open_no_follow(&mut options, path, "")
        .on_path(path, || format!("cannot create {}", path.display()))
}

/// Opens `path` with `options`, never through a symbolic link: a link
/// planted there is refused, its target left untouched, and the error
/// names the file and the fix. `what` says what the file is (may be empty).
pub fn open_no_follow(options: &mut OpenOptions, path: &Path, what: &str) -> Result<File> {
    let file = open_no_follow_shared(options, path, what)?;
    only_name(&file, path, what)?;
    Ok(file)
}

/// [`open_no_follow`], but a file that also has another name (a hard link)
/// is opened too: for the caller that then gives the name a file of its
/// own ([`replace_file`]) rather than write to one that is shared.
pub fn open_no_follow_shared(options: &mut OpenOptions, path: &Path, what: &str) -> Result<File> {
    // O_NONBLOCK: a FIFO planted here fails (or opens at once) instead of
    // waiting for ever for another end; a regular file ignores it.
    #[cfg(unix)]
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what} ")
    };
    match options.open(path) {
        Ok(file) => {
            regular(&file, path, &what)?;
            Ok(file)
        }
        #[cfg(unix)]
        Err(e)
            if e.raw_os_error() == Some(libc::ELOOP)
                || fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
        {
            bail!(
                "{what}{} is a symbolic link; this tool never follows one there. Remove the link \
             (`rm {}`) and run the command again; its target was left untouched.",
                path.display(),
                d1_core::wording::shell_word(&path.display().to_string())
            )
        }
        Err(e) => Err(e).on_path(path, || format!("cannot open {what}{}", path.display())),
    }
}

/// The most a text file the tool reads may hold (a manifest, a journal, a
/// configuration, a migration): far more than any of them needs, and a
/// bound on what a hostile one can make the tool hold in memory.
pub const TEXT_LIMIT: u64 = 64 << 20;

/// Reads a text file that someone else may have put there: see
/// [`read_regular`], and it must be UTF-8. `what` says what the file is,
/// in errors.
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    utf8(read_regular(path, what)?, path, what)
}

/// Reads a file that someone else may have put there: it must be a
/// regular file (a FIFO would block the read for ever, `/dev/zero` would
/// never end) of at most [`TEXT_LIMIT`] bytes. A symbolic link is
/// followed, and what it leads to is held to the same rules. `what` says
/// what the file is, in errors.
pub fn read_regular(path: &Path, what: &str) -> Result<Vec<u8>> {
    read_regular_up_to(path, what, TEXT_LIMIT)
}

/// [`read_text`] of a file of at most `limit` bytes: a file of a kind the
/// tool writes far smaller than [`TEXT_LIMIT`] (a manifest).
pub fn read_text_up_to(path: &Path, what: &str, limit: u64) -> Result<String> {
    utf8(read_regular_up_to(path, what, limit)?, path, what)
}

fn read_regular_up_to(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    read_bounded(
        open_regular(path, &format!("the {what}"))?,
        path,
        what,
        limit,
    )
}

/// Reads a text file the tool keeps (a journal, the drill log, the lock),
/// which only it writes, in place and never through a link
/// ([`append_to_own_file`]): a symbolic link there was put by someone
/// else, and where it leads is not the tool's record, so it is refused,
/// not followed. Otherwise as [`read_text`].
pub fn read_own_text(path: &Path, what: &str) -> Result<String> {
    let file = open_no_follow_shared(OpenOptions::new().read(true), path, &format!("the {what}"))?;
    utf8(read_bounded(file, path, what, TEXT_LIMIT)?, path, what)
}

/// The lines of a file the tool keeps ([`read_own_lines`]): those that
/// are UTF-8 text, and the numbers (from 1) of those that are not.
pub struct OwnLines {
    pub lines: Vec<String>,
    pub skipped: Vec<usize>,
}

impl OwnLines {
    /// The good lines, one text.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// A warning that lines were passed over, naming the file, them and
    /// the fix; none when every line was read.
    pub fn skipped_warning(&self, path: &Path) -> Option<String> {
        let (first, rest) = self.skipped.split_first()?;
        let numbers: Vec<String> = self.skipped.iter().map(usize::to_string).collect();
        Some(format!(
            "{}: {} {} not UTF-8 text (a write cut short, a hand edit?) and {} passed over; the \
             other lines were read. Fix or delete {} to end this warning.",
            path.display(),
            if rest.is_empty() { "line" } else { "lines" },
            numbers.join(", "),
            if rest.is_empty() { "was" } else { "were" },
            if rest.is_empty() {
                format!("line {first}")
            } else {
                "them".to_owned()
            },
        ))
    }
}

/// Reads a text file the tool keeps, as [`read_own_text`], line by line:
/// a line that is not UTF-8 (an append cut inside a character by a kill or
/// a full disk) is passed over and its number kept, never every line with
/// it.
pub fn read_own_lines(path: &Path, what: &str) -> Result<OwnLines> {
    let file = open_no_follow_shared(OpenOptions::new().read(true), path, &format!("the {what}"))?;
    let bytes = read_bounded(file, path, what, TEXT_LIMIT)?;
    let mut own = OwnLines {
        lines: Vec::new(),
        skipped: Vec::new(),
    };
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if bytes.is_empty() {
        return Ok(own);
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(line) => own
                .lines
                .push(line.strip_suffix('\r').unwrap_or(line).to_owned()),
            Err(_) => own.skipped.push(i + 1),
        }
    }
    Ok(own)
}

fn utf8(bytes: Vec<u8>, path: &Path, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "the {what} {} is not UTF-8 text; move it aside",
            path.display()
        )
    })
}

/// At most [`TEXT_LIMIT`] bytes of `file`, or an error naming `path`.
fn read_bounded(file: File, path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!(
            "the {what} {} is larger than {} MiB, which no {what} this tool writes or reads is: \
             it is not one of this tool's; move it aside",
            path.display(),
            limit >> 20
        );
    }
    Ok(bytes)
}

/// Opens a file to read it, which must be a regular file: a FIFO put in
/// its place would block the read for ever, a device never end. A symbolic
/// link is followed. `what` names the file in errors (may be empty).
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    options.custom_flags(libc::O_NONBLOCK);
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what} ")
    };
    let file = options
        .open(path)
        .with_context(|| format!("cannot read {what}{}", path.display()))?;
    regular(&file, path, &what)?;
    Ok(file)
}

/// Refuses an open file that is not a regular file (a FIFO, a device).
fn regular(file: &File, path: &Path, what: &str) -> Result<()> {
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {what}{}", path.display()))?;
    if let Some(kind) = not_regular(&meta) {
        bail!(
            "{what}{} is not a regular file ({kind}); this tool reads and writes only regular \
             files there. Move it aside and run the command again.",
            path.display()
        );
    }
    Ok(())
}

/// What a file that is not a regular file is, for an error: `None` for a
/// regular file (a symbolic link too, from `symlink_metadata`).
pub fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    if kind.is_symlink() {
        return Some("a symbolic link");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a pipe");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_block_device() || kind.is_char_device() {
            return Some("a device");
        }
    }
    Some("neither a file nor a directory")
}

/// Refuses a file that has another name too (a hard link): `O_NOFOLLOW`
/// stops a symbolic link, not a second name planted in the backup
/// directory for a file elsewhere, which a write would empty or grow.
/// Nothing has been written when this refuses.
fn only_name(file: &File, path: &Path, what: &str) -> Result<()> {
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what} ")
    };
    refuse_other_names(path, link_count(file, path)?, &what, || {
        format!(
            "Remove this name (`rm {}`) and run the command again; the file was left untouched.",
            d1_core::wording::shell_word(&path.display().to_string())
        )
    })
}

/// Refuses `path` when its file has `names` names (its link count) and so
/// a name elsewhere too, a hard link: a write through `path` is a write
/// there. `what` (ending in a space, or empty) says what the file is, and
/// `fix` how to give the name a file of its own. The one check of a hard
/// link the tool writes through: the backup directory's files
/// ([`open_no_follow`]) and the local D1 state's
/// ([`crate::edge::local_d1::refuse_linked_state`]).
pub fn refuse_other_names(
    path: &Path,
    names: u64,
    what: &str,
    fix: impl FnOnce() -> String,
) -> Result<()> {
    if names > 1 {
        bail!(
            "{what}{} is a hard link ({names} names for one file): this tool never writes to a \
             file that also has a name elsewhere. {}",
            path.display(),
            fix()
        );
    }
    Ok(())
}

/// How many names an open file has.
pub fn link_count(file: &File, path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    Ok(file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .nlink())
}

/// Whether the open `file` is the one `path` names now (and not one put in
/// its place since it was opened).
pub fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Puts a new private file holding `bytes` in `path`'s place, atomically
/// (written beside it, then renamed over it): whatever `path` named before,
/// a link or a file with other names, is left as it was.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let temp = path.with_file_name(format!(
        ".{}.{}.partial",
        d1_core::names::file_name(path),
        std::process::id()
    ));
    let mut file = create_private_file(&temp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.on_path(path, || format!("cannot write {}", path.display()))
}

/// Appends `text` to a file the tool keeps (a journal, the drill log),
/// created private when missing, never through a link: [`append_record`]
/// with no header.
pub fn append_to_own_file(path: &Path, text: &str, what: &str) -> Result<()> {
    append_record(path, "", text, what)
}

/// Appends `text` to a file the tool keeps, with `header` first when the
/// file is new or empty. Created private when missing, never through a
/// symbolic link. Appenders take turns: each holds an exclusive lock
/// (`flock`) on the file from reading its end to its one write, so two at
/// once (two terminals, the scheduled job and an operator) never leave a
/// blank line or two records on one line. A file that also has another
/// name (a hard-link snapshot of its directory) is not written through:
/// the name gets a file of its own, holding the old text and `text`, and
/// the other name keeps what it had. A file whose last line has no line
/// break (a hand edit, a merge, a disk that filled during the last append)
/// gets one first: `text` starts a line of its own. A file the record
/// would take past [`TEXT_LIMIT`], which its readers refuse, is left as
/// it was ([`refuse_past_limit`]).
pub fn append_record(path: &Path, header: &str, text: &str, what: &str) -> Result<()> {
    use std::io::Write;
    let mut file = open_locked_for_append(path, what)?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {what} {}", path.display()))?
        .len();
    let text = match len {
        0 => format!("{header}{text}"),
        _ if ends_unterminated(&file, path)? => format!("\n{text}"),
        _ => text.to_owned(),
    };
    refuse_past_limit(
        path,
        len + text.len() as u64,
        what,
        "the record was not written",
    )?;
    if link_count(&file, path)? > 1 {
        let mut old = Vec::new();
        (&file).take(TEXT_LIMIT + 1).read_to_end(&mut old)?;
        old.extend_from_slice(text.as_bytes());
        return replace_file(path, &old);
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .on_path(path, || format!("cannot write {what} {}", path.display()))
}

/// The file the tool keeps at `path`, opened to append (created private
/// when missing, never through a symbolic link) and locked exclusively
/// against this tool's other appenders until it is closed. One replaced
/// while this waited for the lock (a hard-linked one given a file of its
/// own) is opened again: the lock is on the file the name holds now.
fn open_locked_for_append(path: &Path, what: &str) -> Result<File> {
    loop {
        let mut options = OpenOptions::new();
        options
            .create(true)
            .read(true)
            .append(true)
            .mode(PRIVATE_FILE_MODE);
        let file = open_no_follow_shared(&mut options, path, what)?;
        if !lock_within(&file, path, what, LOCK_WAIT, false)? {
            bail!(held_elsewhere(path, what, "the record was not written"));
        }
        if is_at(&file, path) {
            return Ok(file);
        }
    }
}

/// How long an append waits for another to let go of the file: far longer
/// than any append holds it, so a lock held past it is held by something
/// else (a process stuck, another account's).
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the exclusive lock (`flock`) on the open `file`, or a shared one,
/// waiting at most `wait` for another process to let go of it: whether it
/// was taken.
fn lock_within(
    file: &File,
    path: &Path,
    what: &str,
    wait: std::time::Duration,
    shared: bool,
) -> Result<bool> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let tried = match shared {
            true => file.try_lock_shared(),
            false => file.try_lock(),
        };
        match tried {
            Ok(()) => return Ok(true),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => return Ok(false),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {what} {}", path.display()));
            }
        }
    }
}

/// A shared lock (`flock`) on a backup file this run reads, held until the
/// file returned is closed: prune takes the exclusive one, without waiting,
/// before it deletes a backup ([`lock_for_removal`]), and leaves a backup
/// being read for a later run. `None` when the file cannot be opened, or
/// locked on its file system: the read itself then says what is wrong, as
/// it did. A file deleted as it was opened is refused, nothing read from
/// it.
pub fn hold_for_reading(path: &Path) -> Result<Option<File>> {
    let Ok(file) = open_regular(path, "") else {
        return Ok(None);
    };
    match lock_within(&file, path, "", LOCK_WAIT, true) {
        Ok(true) => {}
        Ok(false) => crate::stop!(
            crate::exit::Exit::LockHeld,
            "{} is locked by another process, which did not let go of it in {} seconds (prune \
             holds it only while it deletes it): `lsof {}` names that process. Nothing was read \
             from it.",
            path.display(),
            LOCK_WAIT.as_secs(),
            d1_core::wording::shell_word(&path.display().to_string())
        ),
        Err(_) => return Ok(None),
    }
    use std::os::unix::fs::MetadataExt as _;
    let same = |named: fs::Metadata| {
        file.metadata()
            .is_ok_and(|open| open.dev() == named.dev() && open.ino() == named.ino())
    };
    if !fs::metadata(path).is_ok_and(same) {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{} was deleted as this run opened it (a prune in another terminal?): nothing was \
             read from it. `cargo xtask list` shows the backups there are.",
            path.display()
        );
    }
    Ok(Some(file))
}

/// The exclusive lock on a backup file prune is about to delete, held
/// while the guard lives, taken without waiting: `None` while a run reading
/// the file holds its shared lock ([`hold_for_reading`]). A file that
/// cannot be opened or locked gives a guard that holds nothing: its removal
/// then says what is wrong, as it did.
pub fn lock_for_removal(path: &Path) -> Option<Removing> {
    let mut options = OpenOptions::new();
    options.read(true);
    let Ok(file) = open_no_follow_shared(&mut options, path, "") else {
        return Some(Removing { _file: None });
    };
    match file.try_lock() {
        Err(fs::TryLockError::WouldBlock) => None,
        _ => Some(Removing { _file: Some(file) }),
    }
}

/// See [`lock_for_removal`].
pub struct Removing {
    _file: Option<File>,
}

/// Why `what` at `path` was not appended to: another process held its
/// lock past [`LOCK_WAIT`]; `so` says what was left undone.
fn held_elsewhere(path: &Path, what: &str, so: &str) -> String {
    let quoted = d1_core::wording::shell_word(&path.display().to_string());
    format!(
        "{what} {} is locked by another process, which did not let go of it in {} seconds (no \
         append of this tool's takes that long: a process stuck, or another account's, holds \
         it), so {so}. `lsof {quoted}` names that process: let it finish, or stop it.",
        path.display(),
        LOCK_WAIT.as_secs()
    )
}

/// Room a record of the tool's needs in a file it appends to: far more
/// than any journal line or drill row.
pub const RECORD_ROOM: u64 = 64 << 10;

/// Refuses a file the tool keeps that `len` bytes would take past the
/// [`TEXT_LIMIT`] its readers read: a record there would be one nobody
/// reads. `what` names the file; `so` says what was left undone.
fn refuse_past_limit(path: &Path, len: u64, what: &str, so: &str) -> Result<()> {
    if len > TEXT_LIMIT {
        bail!(
            "{what} {} is too large for another record: it would pass {} MiB, all this tool \
             reads of it, so {so}. Move it aside to archive it (`mv {} {}.old`); a new one is \
             started in its place. Then run the command again.",
            path.display(),
            TEXT_LIMIT >> 20,
            d1_core::wording::shell_word(&path.display().to_string()),
            d1_core::wording::shell_word(&path.display().to_string()),
        );
    }
    Ok(())
}

/// Refuses, before an operation the tool records in `path` starts, a file
/// its record could not be appended to, so that the operation does not
/// run and then go unrecorded: one with no room left under its readers'
/// limit ([`RECORD_ROOM`]); one the append refuses (a symbolic link, a
/// directory, a FIFO); one this user may not write, or on a read-only file
/// system; one another process holds locked past [`LOCK_WAIT`] (exit 4);
/// and one on a file system without [`RECORD_ROOM`] free. A file that is
/// not there is checked as its creation would be, in the nearest directory
/// there is. The file is left as it was: it is opened, never written.
pub fn check_room(path: &Path, what: &str) -> Result<()> {
    const SO: &str = "nothing was done";
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return check_new_room(path, what),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {what} {}; {SO}", path.display()));
        }
        Ok(_) => {}
    }
    let file = open_no_follow_shared(OpenOptions::new().read(true), path, what)?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {what} {}", path.display()))?
        .len();
    refuse_past_limit(path, len + RECORD_ROOM, what, SO)?;
    let file = open_no_follow_shared(OpenOptions::new().read(true).append(true), path, what)
        .map_err(|e| not_writable(e, path, what, path))?;
    if !lock_within(&file, path, what, LOCK_WAIT, false)? {
        crate::stop!(
            crate::exit::Exit::LockHeld,
            "{} Then run the command again.",
            held_elsewhere(path, what, SO)
        );
    }
    refuse_full(path, path, what)
}

/// Refuses `path` (a record the checkout keeps, such as the drill log)
/// when its directory leads out of the checkout `root` through a symbolic
/// link (`docs` committed as one: git stores links), so that it is never
/// created or appended to wherever that leads. Exit 2.
pub fn refuse_dir_out_of_checkout(path: &Path, root: &Path, what: &str) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if let (Ok(real), Ok(home)) = (dir.canonicalize(), root.canonicalize())
        && !real.starts_with(&home)
    {
        crate::stop!(
            crate::exit::Exit::CouldNotRun,
            "{what} {} is in {}, a symbolic link out of the checkout {}, to {}: its record \
             would be written there; nothing was done. Make {} a directory of the checkout.",
            path.display(),
            dir.display(),
            home.display(),
            real.display(),
            dir.display()
        );
    }
    Ok(())
}

/// [`check_room`] for a file not there yet: the nearest directory there
/// is (the append creates the ones missing) must be one this user may
/// create files in, on a file system with room.
fn check_new_room(path: &Path, what: &str) -> Result<()> {
    let dir = { path.ancestors().skip(1) }
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .find(|d| fs::metadata(d).is_ok())
        .unwrap_or(Path::new("/"));
    if let Some(e) = may_not_create_in(dir) {
        return Err(not_writable(anyhow::Error::new(e), path, what, dir));
    }
    refuse_full(path, dir, what)
}

/// Why this user may not create files in `dir` (its mode, an immutable
/// flag even for root, a read-only file system), or `None` when it may.
pub fn may_not_create_in(dir: &Path) -> Option<io::Error> {
    let name = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()));
    let Ok(name) = name else {
        return Some(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: `name` is a NUL-terminated path; faccessat only reads it.
    let may = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            name.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    (may != 0).then(io::Error::last_os_error)
}

/// The refusal of `what` at `path` when opening it (or, for one not there,
/// creating a file in `at`) to append failed with `e`: a read-only file
/// system and a file this user may not write are said so, with the fix.
fn not_writable(e: anyhow::Error, path: &Path, what: &str, at: &Path) -> anyhow::Error {
    let errno = { e.chain() }.find_map(|c| c.downcast_ref::<io::Error>()?.raw_os_error());
    let quoted = d1_core::wording::shell_word(&at.display().to_string());
    let (why, fix) = match errno {
        Some(libc::EROFS) => (
            format!("{} is on a read-only file system", at.display()),
            "Remount that file system read-write".to_owned(),
        ),
        Some(libc::EACCES | libc::EPERM) if at == path => (
            "this user may not write it".to_owned(),
            format!("Make it writable (`chmod u+w {quoted}`), or run as its owner"),
        ),
        Some(libc::EACCES | libc::EPERM) => (
            format!("this user may not create files in {}", at.display()),
            format!("Make that directory writable (`chmod u+w {quoted}`), or run as its owner"),
        ),
        _ => {
            return e.context(format!(
                "{what} {} cannot take a record; nothing was done",
                path.display()
            ));
        }
    };
    anyhow::anyhow!(
        "{what} {} cannot take a record: {why}, so the operation it records would run and \
         then go unrecorded; nothing was done. {fix}, then run the command again.",
        path.display()
    )
}

/// Refuses `what` at `path` when the file system holding `at` (the file,
/// or the directory it is to be created in) has less than [`RECORD_ROOM`]
/// free ([`short_of_room`]): a full disk, where the record would be cut
/// short or not written. One whose free space cannot be told passes: the
/// append says what fails.
fn refuse_full(path: &Path, at: &Path, what: &str) -> Result<()> {
    let Some(free) = short_of_room(d1_core::room::available_bytes(at)) else {
        return Ok(());
    };
    bail!(
        "{what} {} cannot take a record: the file system it is on has {free} bytes free, less \
         than the {} KiB a record is given, so the operation it records would run and then go \
         unrecorded; nothing was done. Free space there, then run the command again.",
        path.display(),
        RECORD_ROOM >> 10
    )
}

/// The bytes `free` on a file system (to this user), if they are fewer
/// than [`RECORD_ROOM`]: none when a record has room, or the free space
/// cannot be told.
fn short_of_room(free: Option<u64>) -> Option<u64> {
    d1_core::room::short_of(RECORD_ROOM, free)
}

/// Whether the open `file` is not empty and its last byte is no line
/// break.
fn ends_unterminated(file: &File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::FileExt as _;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(last[0] != b'\n')
}

/// Appends one JSON line to a private journal (`what` names it in errors),
/// creating it 0600, never through a link ([`append_to_own_file`]).
pub fn append_json_line(path: &Path, entry: &serde_json::Value, what: &str) -> Result<()> {
    append_to_own_file(path, &format!("{entry}\n"), what)
}

/// Rewrites an existing file that this tool created, without following a
/// symbolic link put in its place.
pub fn rewrite_no_follow(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    // Emptied only once it is known to be this file alone (no O_TRUNC).
    let mut file = open_no_follow(OpenOptions::new().write(true), path, "")?;
    file.set_len(0)
        .on_path(path, || format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .on_path(path, || format!("cannot write {}", path.display()))
}

/// `dir/name`, checked to be a regular file directly inside `dir`: `name`
/// is a plain file name, the file is not a symbolic link, and its parent,
/// resolved, is `dir`, resolved. What prune deletes passes through here.
pub fn resolve_inside(dir: &Path, name: &str) -> Result<PathBuf> {
    if !is_plain_file_name(name) {
        bail!(
            "{name:?} is not a plain file name in {}; nothing was deleted",
            dir.display()
        );
    }
    let path = dir.join(name);
    let meta =
        fs::symlink_metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!(
            "{} is not a regular file (a symbolic link or a directory); remove it by hand if it \
             should go. Nothing was deleted.",
            path.display()
        );
    }
    let parent = path
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .with_context(|| format!("cannot resolve the directory of {}", path.display()))?;
    let dir_real = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    if parent != dir_real {
        bail!(
            "{} resolves outside {}; nothing was deleted",
            path.display(),
            dir.display()
        );
    }
    Ok(path)
}

/// The first of `names` that is a file in `dir` or a directory above it,
/// each name looked for all the way up before the next: how wrangler finds
/// a configuration it is given no `--config` for (a `wrangler.json` above
/// before a `wrangler.toml` here).
pub fn first_upward(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .find_map(|name| dir.ancestors().map(|d| d.join(name)).find(|p| p.is_file()))
}

/// The first path a walk of `dir` that follows symbolic links (as
/// `wrangler pages deploy` walks what it publishes) reaches for which
/// `reaches`, given the path and its real path, says why (`Some(why)`),
/// or whose real path cannot be told (a link that leads nowhere yet, on
/// which that walk fails; `None`): the path walked (`dir` itself, or an
/// entry under it) and the why. An entry whose path relative to `dir`
/// `skip` holds is passed over, after its real path is told, as wrangler
/// passes over what it leaves out. `scope` tells, of a directory's path
/// relative to `dir`, what decides which entries `skip` passes over
/// anywhere below it (for wrangler, whether the path went through a
/// dot-directory, which its `**/node_modules` does not pass): a real
/// directory is walked once for each scope it is reached in, by one path
/// or another (a link), as wrangler walks paths, so a link cycle still
/// ends.
pub fn first_reaching<S: Eq + std::hash::Hash, T>(
    dir: &Path,
    skip: impl Fn(&Path) -> bool,
    scope: impl Fn(&Path) -> S,
    reaches: impl Fn(&Path, &Path) -> Option<T>,
) -> Option<(PathBuf, Option<T>)> {
    let top = dir;
    let real_if = |path: &Path| match path.canonicalize() {
        Ok(real) => reaches(path, &real).map(|why| (path.to_path_buf(), Some(why))),
        Err(_) => Some((path.to_path_buf(), None)),
    };
    let mut seen = std::collections::HashSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if let Some(found) = real_if(&dir) {
            return Some(found);
        }
        let Ok(real) = dir.canonicalize() else {
            continue;
        };
        let rel = |path: &Path| path.strip_prefix(top).unwrap_or(path).to_path_buf();
        if !seen.insert((real, scope(&rel(&dir)))) {
            continue;
        }
        let entries: Vec<PathBuf> = { fs::read_dir(&dir).into_iter().flatten().flatten() }
            .map(|entry| entry.path())
            .collect();
        if let Some(nowhere) = entries.iter().find(|path| path.canonicalize().is_err()) {
            return Some((nowhere.clone(), None));
        }
        for path in entries.into_iter().filter(|path| !skip(&rel(path))) {
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(found) = real_if(&path) {
                return Some(found);
            }
        }
    }
    None
}

/// The device and inode of each regular file under `dir`, in its
/// directories too, links not followed: what a hard link to one of them
/// has. None for a directory that is not there or cannot be read.
pub fn file_ids(dir: &Path) -> std::collections::HashSet<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut ids = std::collections::HashSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => dirs.push(entry.path()),
                Ok(meta) if meta.is_file() => {
                    ids.insert((meta.dev(), meta.ino()));
                }
                _ => {}
            }
        }
    }
    ids
}

/// The real path `path` has, or will have once made: that of the nearest
/// directory above it that is there, with the rest of it after (a `..`
/// in the rest taking off the name before it, as creating it does).
pub fn real_path_to_be(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let there = path.ancestors().find(|d| fs::metadata(d).is_ok())?;
    let mut real = there.canonicalize().ok()?;
    for part in path.strip_prefix(there).ok()?.components() {
        match part {
            Component::ParentDir => {
                real.pop();
            }
            Component::Normal(name) => real.push(name),
            _ => {}
        }
    }
    Some(real)
}

/// An exclusive lock on a directory itself (`flock` on the directory),
/// released on drop. It adds no file to the directory.
pub struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Waits for the lock.
    pub fn exclusive(dir: &Path) -> Result<DirLock> {
        let file = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", dir.display()))?;
        Ok(DirLock { _dir: file })
    }
}

/// Makes an existing file private, whatever mode its writer gave it: the
/// file itself, never what a link put in its place leads to.
pub fn make_private(path: &Path) -> Result<()> {
    let file = open_no_follow(OpenOptions::new().read(true), path, "")?;
    file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        .on_path(path, || format!("cannot chmod 600 {}", path.display()))
}

/// Moves `from` to `to` only if `to` does not exist, atomically: a hard link
/// refuses an existing name, then the old name is removed.
pub fn rename_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

/// The path an I/O error was met on, as the context of that error
/// ([`OnPath::on_path`]): shown as the words given for it (`cannot create
/// PATH`), and found again by [`with_fix`] when the error reaches the
/// user, which adds the fix its OS error has there.
#[derive(Debug)]
pub struct PathContext {
    path: PathBuf,
    text: String,
}

impl std::fmt::Display for PathContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// [`anyhow::Context`] that names the path the error was met on, so that
/// the error that reaches the user tells the fix ([`with_fix`]).
pub trait OnPath<T, E> {
    /// `self`'s error with `text()` (which names `path`) as its context.
    fn on_path(self, path: &Path, text: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E, R: anyhow::Context<T, E>> OnPath<T, E> for R {
    fn on_path(self, path: &Path, text: impl FnOnce() -> String) -> Result<T> {
        self.with_context(|| PathContext {
            path: path.to_owned(),
            text: text(),
        })
    }
}

/// The backup directory of this run, once it takes the backup lock: a
/// path in it that cannot be written is told with `--backup-dir` as a way
/// on ([`fix_for`]).
static BACKUP_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Records `dir` as this run's backup directory ([`BACKUP_DIR`]).
pub fn set_backup_dir(dir: &Path) {
    let _ = BACKUP_DIR.set(dir.to_owned());
}

/// `error`'s text as the user is shown it (`{:#}`), with the fix for the
/// OS error it holds on the path it names ([`OnPath::on_path`]; an error
/// marked with an [`crate::exit::Exit`] included), where [`fix_for`] has
/// one: one place, so that no `Permission denied (os error 13)` reaches
/// the user without what to do. With whether it had one: the machine, not
/// the command, stopped it, which is exit 2 (it could not run) unless the
/// error says otherwise.
pub fn with_fix(error: &anyhow::Error) -> (String, bool) {
    // A context that ends with a command on a line of its own
    // ([`crate::out::command_apart`]) ends that line: the cause after it
    // starts the next, not `: cause` glued to the command.
    let text = format!("{error:#}").replace("\n: ", "\n");
    let text = text.trim_end().to_owned();
    let layers = std::iter::successors(Some(error), |e| crate::exit::inner(e));
    let (mut on, mut errno) = (None, None);
    for layer in layers {
        on = on.or_else(|| layer.downcast_ref::<PathContext>());
        errno = errno.or_else(|| {
            { layer.chain() }.find_map(|c| c.downcast_ref::<io::Error>()?.raw_os_error())
        });
    }
    match on
        .zip(errno)
        .and_then(|(on, errno)| fix_for(&on.path, errno))
    {
        Some(fix) => (format!("{text}. {fix}"), true),
        None => (text, false),
    }
}

/// What to do about OS error `errno` met on `path`: for a path in the
/// temporary directory, TMPDIR, which chose it; for one this user may not
/// write (permissions, an immutable flag: EACCES, EPERM) or on a read-only
/// file system, the directory and how to make it writable, and for one in
/// the backup directory, `--backup-dir` too. `None` for another error,
/// which the words of its context tell.
pub fn fix_for(path: &Path, errno: i32) -> Option<String> {
    let temp = std::env::temp_dir();
    let dir = match path.is_dir() {
        true => path,
        false => path.parent().unwrap_or(path),
    };
    let quoted = |p: &Path| d1_core::wording::shell_word(&p.display().to_string());
    let why = io::Error::from_raw_os_error(errno);
    // The tool's own private directories there ([`crate::edge::wrangler::PrivateDir`]),
    // or the temporary directory itself: not a backup directory or a
    // checkout that happens to be under /tmp.
    let private = path.strip_prefix(&temp).ok().and_then(|p| p.iter().next());
    let private =
        private.is_some_and(|first| first.to_string_lossy().starts_with(PRIVATE_DIR_PREFIX));
    let in_temp = matches!(
        errno,
        libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT
    );
    if in_temp && (private || dir == temp) {
        let (named, fix) = match std::env::var_os("TMPDIR") {
            Some(_) => (
                ", which TMPDIR names",
                "unset TMPDIR, or point it at a directory this user can write",
            ),
            None => ("", "set TMPDIR to a directory this user can write"),
        };
        return Some(format!(
            "It is in the temporary directory {:?}{named}, which this user cannot use ({why}): \
             {fix} (`mkdir -p ~/tmp && export TMPDIR=~/tmp`), then run the command again",
            temp.display().to_string()
        ));
    }
    let backup = match BACKUP_DIR.get().filter(|b| path.starts_with(b)) {
        Some(_) => {
            ", or choose a writable backup directory with --backup-dir DIR (or \
                    QBTIME_BACKUP_DIR)"
        }
        None => "",
    };
    let dir_shown = dir.display();
    if let Some(owner) = owned_by_another(path).filter(|_| errno == libc::EACCES) {
        return Some(format!(
            "{} belongs to another user (uid {owner}; a run with sudo leaves files so), and this \
             user may not open it ({why}): `ls -l {q}` shows its owner and mode; give it back \
             with `sudo chown \"$(id -u):$(id -g)\" {q}`, then run the command again",
            path.display(),
            q = quoted(path)
        ));
    }
    match errno {
        libc::EACCES | libc::EPERM => Some(format!(
            "This user may not change {dir_shown} ({why}): `ls -ld {0}` shows its owner and mode \
             (`chmod u+w {0}` if it is yours), and `lsattr -d {0}` an immutable flag (`chattr -i \
             {0}`, as root, clears it); make it writable{backup}, then run the command again",
            quoted(dir)
        )),
        libc::EROFS => Some(format!(
            "{dir_shown} is on a read-only file system: remount it read-write{backup}, then run \
             the command again"
        )),
        _ => None,
    }
}

/// The owner of `path`, a file (not a directory) that is there, when it
/// is not this process's user: a file another user left (`sudo cargo
/// xtask …`), whose fix is its owner, not its directory's mode.
fn owned_by_another(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    (meta.uid() != me).then_some(meta.uid())
}

/// Why a file could not be created or written: a read-only file system,
/// or permissions that do not let this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwritable {
    ReadOnly,
    Denied,
}

/// Whether `e` comes from a directory this user cannot write into, and
/// why; `None` for any other failure.
pub fn unwritable(e: &anyhow::Error) -> Option<Unwritable> {
    e.chain()
        .find_map(|c| match c.downcast_ref::<io::Error>()?.raw_os_error()? {
            libc::EROFS => Some(Unwritable::ReadOnly),
            libc::EACCES | libc::EPERM => Some(Unwritable::Denied),
            _ => None,
        })
}

/// Whether `e` comes from a full disk, a full quota, or a file-size limit
/// (`ulimit -f`, EFBIG): a write that could not be made for want of room.
pub fn disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                io::ErrorKind::StorageFull
                    | io::ErrorKind::QuotaExceeded
                    | io::ErrorKind::FileTooLarge
            ) || matches!(
                io.raw_os_error(),
                Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
            )
        })
    })
}

/// Flushes a file's contents to disk.
pub fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .on_path(path, || format!("cannot sync {}", path.display()))
}

/// Flushes a directory entry (a rename) to disk.
pub fn sync_dir(dir: &Path) {
    // Not every platform can open a directory; a failure only costs durability.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// SHA-256 (lowercase hex) and size of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = open_regular(path, "")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex(&hasher.finalize()), bytes))
}

/// Copies the regular file `from` into `to`, a new private file
/// ([`create_private_file`]), streamed whatever its size, and returns the
/// SHA-256 (lowercase hex) of the bytes copied: what `to` holds. `None`
/// when `from` cannot be opened or read (gone, or no regular file); an
/// error when `to` cannot be written.
pub fn copy_to_private_file_hashing(from: &Path, to: &Path) -> Result<Option<String>> {
    let Ok(mut file) = open_regular(from, "") else {
        return Ok(None);
    };
    let mut out = create_private_file(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let Ok(n) = file.read(&mut buf) else {
            return Ok(None);
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut out, &buf[..n])
            .on_path(to, || format!("cannot write {}", to.display()))?;
    }
    Ok(Some(hex(&hasher.finalize())))
}

/// The sha256 and size of `path`'s bytes with every CR LF made LF, read
/// as [`sha256_file`] reads them.
pub fn sha256_file_lf(path: &Path) -> Result<(String, u64)> {
    let mut file = open_regular(path, "")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::with_capacity(buf.len() + 1);
    let mut bytes = 0u64;
    // A CR at the end of one read, held until the next says what follows.
    let mut cr = false;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.clear();
        for &b in &buf[..n] {
            if std::mem::take(&mut cr) && b != b'\n' {
                out.push(b'\r');
            }
            match b {
                b'\r' => cr = true,
                _ => out.push(b),
            }
        }
        hasher.update(&out);
        bytes += out.len() as u64;
    }
    if cr {
        hasher.update(b"\r");
        bytes += 1;
    }
    Ok((hex(&hasher.finalize()), bytes))
}

/// Whether `path` is the file its manifest records: its sha256 and size
/// when it is, and when it is not, both sets of figures and why
/// ([`why_not_recorded`]), for the caller's message. Every command that
/// trusts a file because of its manifest checks it here.
pub fn check_recorded(
    path: &Path,
    recorded: &d1_core::manifest::FileFacts,
) -> Result<std::result::Result<(String, u64), String>> {
    let (sha256, bytes) = sha256_file(path)?;
    if sha256 == recorded.sha256 && bytes == recorded.bytes {
        return Ok(Ok((sha256, bytes)));
    }
    Ok(Err(format!(
        "{bytes} bytes with sha256 {sha256}, but the manifest records {} bytes with sha256 {}: {}",
        recorded.bytes,
        recorded.sha256,
        why_not_recorded(path, bytes, recorded.bytes, &recorded.sha256)
    )))
}

/// Why a file of `bytes` bytes is not the one of `recorded_bytes` bytes and
/// sha256 `recorded_sha256` its manifest records: a copy that turned its
/// line endings to CRLF (a text-mode transfer, an editor's save) is told
/// so, with the command that gives the recorded bytes back; anything else
/// was changed or cut short.
pub fn why_not_recorded(
    path: &Path,
    bytes: u64,
    recorded_bytes: u64,
    recorded_sha256: &str,
) -> String {
    let crlf = bytes > recorded_bytes
        && sha256_file_lf(path).is_ok_and(|(sha, n)| n == recorded_bytes && sha == recorded_sha256);
    match crlf {
        true => format!(
            "its line endings were turned to CRLF (a text-mode copy, or an editor's save), and \
             nothing else changed: `perl -pi -e 's/\\r\\n/\\n/' -- {}` gives back the bytes the \
             manifest records",
            d1_core::wording::shell_word(&path.to_string_lossy())
        ),
        false => "the file was changed or truncated".to_owned(),
    }
}

/// A private temporary file that is removed unless it was moved into place.
pub struct TempFile {
    path: PathBuf,
    armed: std::cell::Cell<bool>,
}

impl TempFile {
    pub fn create(path: PathBuf) -> Result<TempFile> {
        Ok(TempFile::create_open(path)?.0)
    }

    /// Creates the file and returns it open for writing, so that what is
    /// written goes to the file created, whatever the name points at later.
    pub fn create_open(path: PathBuf) -> Result<(TempFile, File)> {
        let file = create_private_file(&path)?;
        Ok((
            TempFile {
                path,
                armed: std::cell::Cell::new(true),
            },
            file,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed.get() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// 32 random bytes from the kernel, for `what` (named in the error).
pub fn random_key(what: &str) -> anyhow::Result<[u8; 32]> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .with_context(|| format!("cannot read /dev/urandom for {what}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rvAY: a file another user left (a run with sudo), which this user
    /// may not open, is told with its owner and `chown`, not with its
    /// directory's `chmod u+w`, which fixes nothing. Needs root to give a
    /// file away; elsewhere the case cannot be made and nothing is judged.
    #[test]
    fn a_file_another_user_owns_is_told_with_its_owner_and_chown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".lock");
        std::fs::write(&file, "").unwrap();
        if std::os::unix::fs::chown(&file, Some(54_321), Some(54_321)).is_err() {
            eprintln!("not root: a file cannot be given to another user here");
            return;
        }
        let fix = fix_for(&file, libc::EACCES).unwrap();
        assert!(fix.contains("uid 54321") && fix.contains("chown"), "{fix}");
        assert!(!fix.contains("chmod u+w"), "{fix}");
        // The directory's own refusal is still the directory's.
        let fix = fix_for(&dir.path().join("new.sql"), libc::EACCES).unwrap();
        assert!(fix.contains("chmod u+w"), "{fix}");
    }

    /// As wrangler looks for a configuration it is given no `--config`
    /// for: each name all the way up before the next.
    #[test]
    fn first_upward_takes_a_name_above_before_the_next_name_here() {
        let top = tempfile::tempdir().unwrap();
        let here = top.path().join("app");
        fs::create_dir(&here).unwrap();
        fs::write(here.join("wrangler.toml"), "").unwrap();
        let names = ["wrangler.json", "wrangler.toml"];
        assert_eq!(
            first_upward(&here, &names),
            Some(here.join("wrangler.toml"))
        );
        fs::write(top.path().join("wrangler.json"), "").unwrap();
        assert_eq!(
            first_upward(&here, &names),
            Some(top.path().join("wrangler.json"))
        );
    }

    /// A walk that follows links finds what a link leads to, and ends on a
    /// link cycle; a link that leads nowhere is found, its real path
    /// unknown, even where the walk passes over its name.
    #[test]
    fn first_reaching_follows_links_and_ends_on_a_cycle() {
        let top = tempfile::tempdir().unwrap();
        let (dist, private) = (top.path().join("dist"), top.path().join("private"));
        fs::create_dir_all(dist.join("a")).unwrap();
        fs::create_dir(&private).unwrap();
        fs::write(private.join("secret"), "").unwrap();
        std::os::unix::fs::symlink("..", dist.join("a").join("loop")).unwrap();
        let private = private.canonicalize().unwrap();
        let inside = |_: &Path, real: &Path| real.starts_with(&private).then(|| real.to_owned());
        let none = |_: &Path| false;
        assert_eq!(first_reaching(&dist, none, |_| (), inside), None);
        std::os::unix::fs::symlink(&private, dist.join("a").join("p")).unwrap();
        let (entry, real) = first_reaching(&dist, none, |_| (), inside).unwrap();
        assert!(entry.ends_with("p"), "{entry:?}");
        assert_eq!(real, Some(private.clone()));
        assert_eq!(
            first_reaching(&dist, |p| p == Path::new("a"), |_| (), inside),
            None
        );
        std::os::unix::fs::symlink("../nowhere", dist.join("gone")).unwrap();
        let skip_gone = |p: &Path| p == Path::new("gone");
        assert_eq!(
            first_reaching(&dist, skip_gone, |_| (), inside),
            Some((dist.join("gone"), None))
        );
    }

    /// A path not made yet has the real path its nearest directory there
    /// gives it.
    #[test]
    fn the_real_path_of_a_directory_not_made_yet_is_its_parents() {
        let top = tempfile::tempdir().unwrap();
        let real = top.path().canonicalize().unwrap();
        fs::create_dir(top.path().join("dist")).unwrap();
        std::os::unix::fs::symlink("dist", top.path().join("site")).unwrap();
        assert_eq!(
            real_path_to_be(&top.path().join("site/new/backups")),
            Some(real.join("dist/new/backups"))
        );
        assert_eq!(
            real_path_to_be(&top.path().join("x/../dist/b")),
            Some(real.join("dist/b"))
        );
    }

    #[test]
    fn rename_no_clobber_refuses_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "new").unwrap();
        fs::write(&b, "old").unwrap();
        let err = rename_no_clobber(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&b).unwrap(), "old");
        assert!(a.exists());
    }

    #[test]
    fn a_file_turned_to_crlf_is_told_from_one_changed() {
        let dir = tempfile::tempdir().unwrap();
        let lf = "PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO t VALUES('a\rb');\n".repeat(9000);
        let (sha, n) = {
            let p = dir.path().join("lf.sql");
            std::fs::write(&p, &lf).unwrap();
            sha256_file(&p).unwrap()
        };
        // Over several reads, a CR LF split between two of them included.
        let crlf = dir.path().join("crlf.sql");
        std::fs::write(&crlf, lf.replace('\n', "\r\n")).unwrap();
        assert_eq!(sha256_file_lf(&crlf).unwrap(), (sha.clone(), n));
        let size = std::fs::metadata(&crlf).unwrap().len();
        let why = why_not_recorded(&crlf, size, n, &sha);
        assert!(why.contains("CRLF") && why.contains("crlf.sql"), "{why}");
        let recorded = d1_core::manifest::FileFacts {
            name: "lf.sql".to_owned(),
            bytes: n,
            sha256: sha.clone(),
        };
        assert_eq!(
            check_recorded(&dir.path().join("lf.sql"), &recorded).unwrap(),
            Ok((sha.clone(), n))
        );
        let differs = check_recorded(&crlf, &recorded).unwrap().unwrap_err();
        assert!(
            differs.starts_with(&format!("{size} bytes with sha256 "))
                && differs.contains(&format!("the manifest records {n} bytes with sha256 {sha}"))
                && differs.ends_with(&why),
            "{differs}"
        );
        // Changed as well as turned: changed.
        let edited = dir.path().join("edited.sql");
        std::fs::write(&edited, lf.replace('\n', "\r\n").replacen("'a", "'z", 1)).unwrap();
        let size = std::fs::metadata(&edited).unwrap().len();
        assert_eq!(
            why_not_recorded(&edited, size, n, &sha),
            "the file was changed or truncated"
        );
        // Cut short: changed, and not read again.
        assert_eq!(
            why_not_recorded(&edited, n - 1, n, &sha),
            "the file was changed or truncated"
        );
        // A lone CR at the end of the file is kept.
        let cr = dir.path().join("cr.sql");
        std::fs::write(&cr, "a\r\nb\r").unwrap();
        assert_eq!(sha256_file_lf(&cr).unwrap().1, 4);
    }

    #[test]
    fn sha256_of_a_known_string() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, "abc").unwrap();
        let (sha, n) = sha256_file(&p).unwrap();
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
    }

    #[cfg(unix)]
    #[test]
    fn private_dir_is_created_0700_an_existing_one_keeps_its_mode_and_private_file_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("new/backups");
        create_private_dir(&made).unwrap();
        assert_eq!(
            fs::metadata(&made).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let d = dir.path().join("backups");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o755,
            "a directory the tool did not create keeps its mode"
        );
        let f = d.join("x");
        create_private_file(&f).unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(create_private_file(&f).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_shared_sticky_directory_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("shared");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = create_private_dir(&d).unwrap_err().to_string();
        assert!(err.contains("mode 1777"), "{err}");
        assert!(err.contains(&d.display().to_string()), "{err}");
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
    }

    #[test]
    fn an_appended_line_never_joins_a_last_line_without_its_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("time-travel.jsonl");
        append_json_line(&journal, &serde_json::json!({"a": 1}), "the journal").unwrap();
        assert_eq!(fs::read_to_string(&journal).unwrap(), "{\"a\":1}\n");
        // A line cut short (a disk that filled) or edited without its break.
        fs::write(&journal, "{\"a\":1}\n{\"cut").unwrap();
        append_json_line(&journal, &serde_json::json!({"b": 2}), "the journal").unwrap();
        let text = fs::read_to_string(&journal).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"cut\n{\"b\":2}\n");
    }

    /// fxDU: appenders at once (two terminals, the scheduled job and an
    /// operator) each checked the last byte and then wrote: a blank line
    /// (which splits the drill log's table) or two records on one line.
    #[test]
    fn appends_at_once_leave_one_record_on_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("time-travel.jsonl");
        for round in 0..50 {
            // Its last line without its break: each appender would add one.
            fs::write(&journal, "{\"cut").unwrap();
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                for n in 0..8 {
                    let (journal, start) = (&journal, &start);
                    s.spawn(move || {
                        start.wait();
                        append_to_own_file(journal, &format!("r{n}\n"), "the journal").unwrap();
                    });
                }
            });
            let text = fs::read_to_string(&journal).unwrap();
            let mut lines: Vec<&str> = text.lines().collect();
            lines.sort();
            let mut want = vec!["{\"cut".to_owned()];
            want.extend((0..8).map(|n| format!("r{n}")));
            want.sort();
            assert_eq!(lines, want, "round {round}:\n{text:?}");
        }
    }

    /// rvDX: the room check passed a journal the append then refuses (a
    /// symbolic link, a directory): the operation ran and was recorded
    /// nowhere. It is refused before, naming the file; a missing one has
    /// room.
    #[cfg(unix)]
    #[test]
    fn the_room_check_refuses_a_journal_the_append_would_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("offsite-locks.jsonl");
        check_room(&journal, "the offsite lock journal").unwrap();
        let decoy = dir.path().join("decoy");
        fs::write(&decoy, "kept\n").unwrap();
        std::os::unix::fs::symlink(&decoy, &journal).unwrap();
        let err = check_room(&journal, "the offsite lock journal")
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains(&journal.display().to_string()), "{err}");
        fs::remove_file(&journal).unwrap();
        fs::create_dir(&journal).unwrap();
        assert!(check_room(&journal, "the offsite lock journal").is_err());
        assert_eq!(fs::read_to_string(&decoy).unwrap(), "kept\n");
    }

    /// fxDZ: an append waited for the lock without a bound: another
    /// process holding it (one stuck, another account's) kept a drill that
    /// had run waiting for ever. The wait ends, and says why, naming the
    /// file and how to find the holder.
    #[test]
    fn the_wait_for_a_lock_another_process_holds_ends() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("restore-drills.md");
        fs::write(&log, "a record\n").unwrap();
        let holder = File::open(&log).unwrap();
        holder.lock().unwrap();
        let file = File::open(&log).unwrap();
        let wait = std::time::Duration::from_millis(200);
        assert!(!lock_within(&file, &log, "the drill log", wait, false).unwrap());
        let said = held_elsewhere(&log, "the drill log", "the record was not written");
        assert!(
            said.contains(&log.display().to_string())
                && said.contains("another process")
                && said.contains("the record was not written")
                && said.contains("lsof "),
            "{said}"
        );
        drop(holder);
        assert!(lock_within(&file, &log, "the drill log", wait, false).unwrap());
    }

    /// fxDZ: the room check opens the file to append, takes its lock and
    /// reads the free space: a file that passes is left byte for byte as
    /// it was, its time of change too; one not there is not made.
    #[test]
    fn the_room_check_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("offsite-locks.jsonl");
        fs::write(&journal, "{\"a\":1}\n{\"cut").unwrap();
        let before = fs::metadata(&journal).unwrap();
        check_room(&journal, "the offsite lock journal").unwrap();
        let after = fs::metadata(&journal).unwrap();
        assert_eq!(fs::read(&journal).unwrap(), b"{\"a\":1}\n{\"cut");
        assert_eq!(after.modified().unwrap(), before.modified().unwrap());
        let missing = dir.path().join("new/time-travel.jsonl");
        check_room(&missing, "the Time Travel journal").unwrap();
        assert!(!dir.path().join("new").exists());
    }

    /// fxDZ: a file system with less free than a record is given is
    /// refused (a full disk cut the record short after the operation had
    /// run); one whose free space cannot be told is left to the append.
    #[test]
    fn a_file_system_with_less_free_than_a_record_is_short_of_room() {
        assert_eq!(short_of_room(Some(RECORD_ROOM - 1)), Some(RECORD_ROOM - 1));
        assert_eq!(short_of_room(Some(0)), Some(0));
        assert_eq!(short_of_room(Some(RECORD_ROOM)), None);
        assert_eq!(short_of_room(Some(u64::MAX)), None);
        assert_eq!(short_of_room(None), None);
        let dir = tempfile::tempdir().unwrap();
        assert!(d1_core::room::available_bytes(dir.path()).is_some());
    }

    /// fxDZ: a file that cannot be appended to, read-only, on a read-only
    /// file system, or not there in a directory this user may not write,
    /// is refused before the operation, naming it and the fix (here on the
    /// errors the open gives; on real files below).
    #[test]
    fn a_file_this_user_may_not_append_to_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("restore-drills.md");
        let error = |errno| anyhow::Error::new(io::Error::from_raw_os_error(errno));
        let said = |e: anyhow::Error, at: &Path| {
            format!("{:#}", not_writable(e, &log, "the drill log", at))
        };
        let read_only = said(error(libc::EROFS), &log);
        assert!(read_only.contains("read-only file system"), "{read_only}");
        let file = said(error(libc::EACCES), &log);
        assert!(file.contains("chmod u+w"), "{file}");
        let parent = said(error(libc::EACCES), dir.path());
        assert!(parent.contains("may not create files in"), "{parent}");
        for text in [read_only, file, parent] {
            assert!(
                text.contains(&log.display().to_string()) && text.contains("nothing was done"),
                "{text}"
            );
        }
    }

    /// fxDZ, on real files: a drill log made read-only, and one to be
    /// made in a directory this user may not write to, are refused naming
    /// the fix. Root writes either way, so run as root the test runs
    /// itself again as `nobody` ([`passes_as_nobody`]).
    #[test]
    fn a_file_made_read_only_or_in_a_directory_made_read_only_is_refused_naming_the_fix() {
        // SAFETY: geteuid only reads this process's user id.
        if unsafe { libc::geteuid() } == 0 {
            let name =
                "a_file_made_read_only_or_in_a_directory_made_read_only_is_refused_naming_the_fix";
            return passes_as_nobody(name);
        }
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("restore-drills.md");
        fs::write(&log, "a record\n").unwrap();
        fs::set_permissions(&log, fs::Permissions::from_mode(0o444)).unwrap();
        let err = check_room(&log, "the drill log").unwrap_err();
        assert!(format!("{err:#}").contains("chmod u+w"), "{err:#}");
        fs::remove_file(&log).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
        let err = check_room(&log, "the drill log").unwrap_err();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            format!("{err:#}").contains("may not create files in"),
            "{err:#}"
        );
    }

    /// Runs the test `name` of this module in a test process of its own,
    /// as the user `nobody` (65534), with a temporary directory of its
    /// own, and asserts that it ran and passed. This test binary is copied
    /// there first, since the target directory may be one only root can
    /// reach.
    fn passes_as_nobody(name: &str) {
        use std::os::unix::process::CommandExt as _;
        const NOBODY: u32 = 65534;
        let home = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(home.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        let exe = home.path().join("tests");
        fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let run = std::process::Command::new(&exe)
            .args(["--exact", &format!("{module}::{name}"), "--test-threads=1"])
            .env("TMPDIR", home.path())
            .uid(NOBODY)
            .gid(NOBODY)
            .output();
        // A machine where root may not become another user (a container
        // with one user mapped) cannot run this half as anyone else.
        let Ok(run) = run else {
            return eprintln!("not run as nobody: {}", run.unwrap_err());
        };
        let said = String::from_utf8_lossy(&run.stdout) + String::from_utf8_lossy(&run.stderr);
        assert!(
            run.status.success() && said.contains("1 passed"),
            "as nobody:\n{said}"
        );
    }

    /// fxDU: a journal already past what its readers read is not appended
    /// to: the record would be one nobody reads. The error names the file
    /// and the fix, and the file is left as it was.
    #[test]
    fn an_append_to_a_journal_past_the_readers_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("time-travel.jsonl");
        let file = File::create(&journal).unwrap();
        file.set_len(TEXT_LIMIT + 1).unwrap();
        let err = append_json_line(&journal, &serde_json::json!({"a": 1}), "the journal")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&journal.display().to_string()), "{err}");
        assert!(err.to_lowercase().contains("move it aside"), "{err}");
        assert_eq!(fs::metadata(&journal).unwrap().len(), TEXT_LIMIT + 1);
    }

    #[cfg(unix)]
    #[test]
    fn nothing_is_written_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = rewrite_no_follow(&link, b"x").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(create_private_file(&link).is_err());
        let mut append = OpenOptions::new();
        append.append(true).create(true);
        assert!(open_no_follow(&mut append, &link, "the journal").is_err());
        let err = make_private(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();

        // A second name for the file is refused before a byte is written.
        let hard = dir.path().join("hard");
        fs::hard_link(&victim, &hard).unwrap();
        let err = rewrite_no_follow(&hard, b"x").unwrap_err().to_string();
        assert!(err.contains("hard link (2 names for one file)"), "{err}");
        assert!(open_no_follow(&mut append, &hard, "the journal").is_err());
        assert!(make_private(&hard).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        // A journal with another name gets a file of its own instead.
        // (Its last line had no line break: the text starts a line.)
        append_to_own_file(&hard, "and more\n", "the journal").unwrap();
        assert_eq!(fs::read_to_string(&hard).unwrap(), "precious\nand more\n");
        assert_eq!(link_count(&File::open(&hard).unwrap(), &hard).unwrap(), 1);
        append_to_own_file(&link, "x", "the journal").unwrap_err();
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn plain_file_names_and_resolving_inside_a_directory() {
        for ok in ["backup-prod-20261123-2230.sql", "a.sql.zst.age"] {
            assert!(is_plain_file_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc/passwd",
            "a/b",
            ".lock",
            "a\\b",
            "a\0b",
        ] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "x").unwrap();
        assert!(resolve_inside(dir.path(), "f").is_ok());
        assert!(resolve_inside(dir.path(), "../f").is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("f"), dir.path().join("l")).unwrap();
            assert!(resolve_inside(dir.path(), "l").is_err());
        }
    }
}
