//! How a backup is stored: plain SQL (`.sql`), zstd-compressed
//! (`.sql.zst`), or compressed and then encrypted with age (`.sql.zst.age`).
//!
//! Compression is the reference zstd library, streamed. Encryption is the
//! age format through `scripts/age.mjs` and the pinned `age-encryption`
//! package (the age authors' implementation, installed by `npm ci` beside
//! wrangler), so every file is an ordinary age file that `age -d` decrypts.
//!
//! An encrypted backup never exists as plaintext on disk: wrangler exports
//! into a FIFO ([`export_through_fifo`]), the bytes are hashed, compressed
//! and encrypted on their way to the file, and a copy of the *compressed*
//! plaintext is held in memory so that the new backup can be verified
//! without the identity (the backup host usually has only the recipient).
//! Reading goes the other way through a [`Source`], which every consumer of
//! a backup's SQL (summary, verify, restore, drill) uses.

use crate::edge::fsutil::OnPath as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use d1_core::names::hex;
pub use d1_core::sealed::{Format, check_recipient};
use d1_sql::statements::Wide;

/// zstd's default level: about 5× on SQL dumps, at hundreds of MB/s.
const ZSTD_LEVEL: i32 = 3;
const BUFFER: usize = 1 << 20;

/// The variable that names the identity file, for every command that reads
/// encrypted backups.
pub const IDENTITY_VAR: &str = "QBTIME_AGE_IDENTITY";

/// The largest age identity file read: a key file is under 200 bytes (one
/// `AGE-SECRET-KEY-1…` line and two comments), so a file of more than 1 MiB
/// passed as one (a runbook, a PDF) is refused by its size, unread.
const IDENTITY_LIMIT: u64 = 1 << 20;

/// The most keys an identity file may hold. A real one holds one, or a few
/// kept since a rotation; each key held is a secret every later line of
/// output is searched for, so a file of 14,000 keys under
/// [`IDENTITY_LIMIT`] made `verify` run for minutes, deaf to SIGTERM.
const IDENTITY_KEYS: usize = 64;

/// `--identity FILE`, as every command that reads backups takes it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IdentityArg {
    /// The age identity file that decrypts a `.sql.zst.age` backup.
    #[arg(long = "identity", env = IDENTITY_VAR, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl IdentityArg {
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

/// How to run age: Node and `scripts/age.mjs`.
#[derive(Debug, Clone)]
pub struct Age {
    pub node: PathBuf,
    pub script: PathBuf,
}

impl Age {
    pub fn new(tool_root: &Path) -> Age {
        Age {
            node: crate::edge::node::node_at(tool_root),
            script: tool_root.join("scripts").join("age.mjs"),
        }
    }

    /// `node scripts/age.mjs ARGS`; refused, naming the file, when the
    /// checkout has no such script (Node's own error is a stack trace).
    fn command(&self, args: &[&std::ffi::OsStr]) -> Result<Command> {
        if !self.script.is_file() {
            bail!(
                "{} is missing: encryption runs it with the pinned age-encryption package. \
                 Run the tool from a checkout of this repository, or copy its scripts/ \
                 directory beside wrangler.toml",
                self.script.display()
            );
        }
        let mut cmd = Command::new(&self.node);
        cmd.arg(&self.script).args(args).stderr(Stdio::piped());
        crate::edge::signals::shield(&mut cmd);
        Ok(cmd)
    }

    /// The recipients (public keys) of the identities in the file
    /// `identity`; age's own error is never printed (it may quote a line of
    /// the file).
    pub fn recipients_of(&self, identity: &Path) -> Result<Vec<String>> {
        let out = self
            .command(&["recipient".as_ref(), "-i".as_ref(), identity.as_os_str()])?
            .stdin(Stdio::null())
            .output()
            .context("cannot run node scripts/age.mjs recipient; is Node.js installed?")?;
        if !out.status.success() {
            bail!(
                "cannot read the recipients of the age identity file {}",
                identity.display()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("age1"))
            .map(str::to_owned)
            .collect())
    }

    /// A new identity file's text, and its recipient.
    pub fn keygen(&self) -> Result<(String, String)> {
        let out = self
            .command(&["keygen".as_ref()])?
            .stdin(Stdio::null())
            .output()
            .context("cannot run node scripts/age.mjs keygen; is Node.js installed?")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let text = String::from_utf8(out.stdout).context("age keygen printed non-UTF-8")?;
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .context("age keygen printed no public key")?
            .to_owned();
        Ok((text, recipient))
    }
}

/// SHA-256 and size of a byte stream.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    hasher: Sha256,
    bytes: u64,
}

impl Counter {
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `(sha256 hex, bytes)`.
    pub fn finish(self) -> (String, u64) {
        (hex(&self.hasher.finalize()), self.bytes)
    }
}

/// What sealing a backup produced.
#[derive(Debug)]
pub struct Sealed {
    /// SHA-256 and size of the plaintext SQL.
    pub plaintext: (String, u64),
    /// The compressed plaintext, kept in memory when the file is encrypted.
    pub compressed: Option<Arc<Vec<u8>>>,
}

/// Where the compressed stream goes: the file, or age's standard input
/// (age then writes the file), and a copy in memory if asked.
struct Sink {
    out: SinkOut,
    copy: Option<Vec<u8>>,
}

enum SinkOut {
    File(File),
    Age(ChildStdin),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.out {
            SinkOut::File(f) => f.write(buf)?,
            SinkOut::Age(stdin) => stdin.write(buf)?,
        };
        if let Some(copy) = &mut self.copy {
            copy.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            SinkOut::File(f) => f.flush(),
            SinkOut::Age(stdin) => stdin.flush(),
        }
    }
}

/// A writer of plaintext SQL that stores it compressed, and encrypted when
/// there are recipients. Call [`Sealer::finish`] to complete the file.
pub struct Sealer {
    plaintext: Counter,
    encoder: zstd::stream::write::Encoder<'static, Sink>,
    age: Option<(Child, Stderr)>,
}

impl Sealer {
    /// Seals into `file` (created empty and private by the caller) in
    /// `format`, which must not be [`Format::Sql`].
    pub fn create(file: &Path, format: Format, recipients: &[String], age: &Age) -> Result<Sealer> {
        // Emptied only once it is known to be this file alone (no O_TRUNC).
        let out =
            crate::edge::fsutil::open_no_follow(std::fs::OpenOptions::new().write(true), file, "")?;
        out.set_len(0)
            .on_path(file, || format!("cannot write {}", file.display()))?;
        let (out, child, copy) = match format {
            Format::Sql => bail!("plain SQL is not sealed"),
            Format::Zstd => (SinkOut::File(out), None, None),
            Format::ZstdAge => {
                if recipients.is_empty() {
                    bail!("encryption needs at least one age recipient");
                }
                let mut args: Vec<&std::ffi::OsStr> = vec!["encrypt".as_ref()];
                for r in recipients {
                    check_recipient(r)?;
                    args.push("-r".as_ref());
                    args.push(r.as_ref());
                }
                let mut child = age
                    .command(&args)?
                    .stdin(Stdio::piped())
                    .stdout(Stdio::from(out))
                    .spawn()
                    .context("cannot run node scripts/age.mjs to encrypt; is Node.js installed?")?;
                let stdin = child.stdin.take().expect("piped");
                let stderr = Stderr::drain(&mut child);
                (SinkOut::Age(stdin), Some((child, stderr)), Some(Vec::new()))
            }
        };
        let encoder = zstd::stream::write::Encoder::new(Sink { out, copy }, ZSTD_LEVEL)
            .context("cannot start zstd")?;
        Ok(Sealer {
            plaintext: Counter::default(),
            encoder,
            age: child,
        })
    }

    /// Completes the stream. `fed` is how feeding it went: on an error the
    /// file is incomplete, and the error says why (with age's own message).
    pub fn finish(self, fed: io::Result<()>) -> Result<Sealed> {
        let Sealer {
            plaintext,
            encoder,
            age,
        } = self;
        let finished = fed.and_then(|()| encoder.finish());
        let (copy, closed) = match finished {
            Ok(sink) => {
                let Sink { out, copy } = sink;
                let closed = match out {
                    SinkOut::File(f) => f.sync_all(),
                    SinkOut::Age(stdin) => {
                        drop(stdin);
                        Ok(())
                    }
                };
                (copy, closed)
            }
            Err(e) => (None, Err(e)),
        };
        if let Some((mut child, mut stderr)) = age {
            if closed.is_err() {
                let _ = child.kill();
            }
            let status = child.wait().context("waiting for age")?;
            let said = stderr.text();
            if !status.success() && closed.is_ok() {
                // age (Node) says a full disk in words: EFBIG, ENOSPC.
                let full = ["ENOSPC", "EFBIG", "EDQUOT"]
                    .iter()
                    .find(|c| said.contains(*c));
                if let Some(code) = full {
                    let errno = match *code {
                        "ENOSPC" => libc::ENOSPC,
                        "EFBIG" => libc::EFBIG,
                        _ => libc::EDQUOT,
                    };
                    return Err(anyhow::Error::new(io::Error::from_raw_os_error(errno))
                        .context(format!("age could not encrypt the backup: {said}")));
                }
                bail!("age could not encrypt the backup: {said}");
            }
            if let Err(e) = closed {
                let context = match said.as_str() {
                    "" => "sealing the backup failed".to_owned(),
                    said => format!("sealing the backup failed (age: {said})"),
                };
                return Err(e).context(context);
            }
        }
        closed.context("writing the sealed backup")?;
        Ok(Sealed {
            plaintext: plaintext.finish(),
            compressed: copy.map(Arc::new),
        })
    }
}

impl Write for Sealer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.encoder.write(buf)?;
        self.plaintext.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder.flush()
    }
}

/// Reads a child's standard error on a thread of its own, so that a child
/// with much to say never blocks on a full pipe.
struct Stderr(Option<JoinHandle<String>>);

impl Stderr {
    fn drain(child: &mut Child) -> Stderr {
        Stderr(child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                text.trim().to_owned()
            })
        }))
    }

    /// Everything it said; call once the child has exited.
    fn text(&mut self) -> String {
        self.0
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// The most recipient stanzas an age header this tool reads may hold: age
/// tries every one against the identity, a key exchange each, on every
/// read, so a header padded with thousands (anyone can seal to the public
/// recipients) would hold a verify or a restore for hours. A team has a
/// handful of recipients.
pub const MOST_STANZAS: usize = 64;

/// How far into an age file its header must end: [`MOST_STANZAS`]
/// post-quantum stanzas (about 1.6 KB each) fit several times over.
const HEADER_LIMIT: u64 = 512 * 1024;

/// How many of the age file at `path`'s stanzas are for a recipient of the
/// kinds this tool seals to, read from its header alone; an error when it
/// does not start as an age file, its header does not end within
/// [`HEADER_LIMIT`], or it holds more than [`MOST_STANZAS`] stanzas.
pub fn age_stanzas(path: &Path) -> Result<usize> {
    let mut head = Vec::new();
    crate::edge::fsutil::open_regular(path, "")?
        .take(HEADER_LIMIT)
        .read_to_end(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    if !text.starts_with("age-encryption.org/v1\n") {
        bail!("{} does not start as an age file does", path.display());
    }
    let Some(end) = text.find("\n---") else {
        bail!(
            "{}'s age header does not end within its first {} KiB, as no header this tool \
             writes does",
            path.display(),
            HEADER_LIMIT >> 10
        );
    };
    // Each stanza by its type (`X25519`, `mlkem768x25519`, or another).
    let stanzas: Vec<&str> = { text[..end].lines() }
        .filter_map(|l| l.strip_prefix("-> "))
        .map(|l| l.split(' ').next().unwrap_or_default())
        .collect();
    if stanzas.len() > MOST_STANZAS {
        bail!(
            "{}'s age header holds {} recipient stanzas, more than the {MOST_STANZAS} any backup \
             this tool takes has (each is tried against the identity on every read)",
            path.display(),
            stanzas.len()
        );
    }
    Ok(stanzas
        .iter()
        .filter(|t| ["X25519", "mlkem768x25519"].contains(t))
        .count())
}

/// Checks that an encrypted file starts as an age file does, with one
/// recipient stanza per recipient: the backup host cannot decrypt what it
/// wrote, but it can see that age wrote it for the right number of keys.
pub fn check_age_header(path: &Path, recipients: usize) -> Result<()> {
    let stanzas = age_stanzas(path)?;
    if stanzas != recipients {
        bail!(
            "{} does not look like an age file for {recipients} recipient(s) ({stanzas} found)",
            path.display()
        );
    }
    Ok(())
}

/// Where an export read from a FIFO goes: written to as it arrives, then
/// finished with how reading went.
pub trait Drain: Write + Send + 'static {
    type Done: Send + 'static;
    /// `fed` is how reading the FIFO went; an error means the stream was
    /// cut, and the result must say so.
    fn finish(self, fed: io::Result<()>) -> Result<Self::Done>;
}

impl Drain for Sealer {
    type Done = Sealed;
    fn finish(self, fed: io::Result<()>) -> Result<Sealed> {
        Sealer::finish(self, fed)
    }
}

/// Runs `export`, which makes wrangler write its dump to the FIFO `fifo`,
/// while a thread reads the FIFO into `drain` (a [`Sealer`]: the plaintext
/// exists only in pipes and memory; or a plain backup's checks, fed as the
/// download arrives). The FIFO is removed afterwards.
#[cfg(unix)]
pub fn export_through_fifo<D: Drain>(
    fifo: &Path,
    drain: D,
    export: impl FnOnce() -> Result<()>,
) -> Result<D::Done> {
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())
        .context("the backup directory's path contains a NUL byte")?;
    // SAFETY: `c_path` is a valid NUL-terminated path for the call's duration.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error()).on_path(fifo, || {
            format!("cannot create the pipe {}", fifo.display())
        });
    }
    let _remove = Removal(fifo.to_path_buf());
    let reader_path = fifo.to_path_buf();
    let reader: JoinHandle<Result<D::Done>> = std::thread::spawn(move || {
        let mut drain = drain;
        let fed = File::open(&reader_path).and_then(|pipe| {
            let mut pipe = BufReader::with_capacity(BUFFER, pipe);
            io::copy(&mut pipe, &mut drain).map(drop)
        });
        // Returning drops the pipe, so a writer still writing gets EPIPE.
        drain.finish(fed)
    });
    let exported = export();
    if let Err(e) = release_reader(fifo, &reader) {
        // The reader may be stuck in open(); leave it, and report.
        let e = anyhow::Error::new(e).context(format!(
            "the export pipe {} could not be closed",
            fifo.display()
        ));
        return Err(match exported {
            Ok(()) => e,
            Err(first) => first.context(format!("{e:#}")),
        });
    }
    let sealed = reader
        .join()
        .expect("the thread reading the export panicked");
    match (exported, sealed) {
        (Ok(()), sealed) => sealed,
        (Err(e), Ok(_)) => Err(e),
        // The disk filled: wrangler's failure (a broken pipe) is only what
        // followed, and its output would bury the cause.
        (Err(_), Err(sealing)) if crate::edge::fsutil::disk_full(&sealing) => Err(sealing.context(
            "the backup could not be written: the disk is full (wrangler stopped when its \
             output was cut). Free space in the backup directory, or choose another with \
             --backup-dir, and run it again",
        )),
        (Err(e), Err(sealing)) => Err(sealing.context(format!("{e:#}"))),
    }
}

/// The reader may still wait in `open()` if wrangler failed before it opened
/// the FIFO: opening the write end, without blocking, lets it see the end.
#[cfg(unix)]
fn release_reader<T>(fifo: &Path, reader: &JoinHandle<T>) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    while !reader.is_finished() {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo);
        match opened {
            Ok(_) => return Ok(()), // Dropped at once: the reader reads to the end.
            // No reader has it open yet, or any more: look again.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Removal(PathBuf);

impl Drop for Removal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How many of a file's first bytes [`held_in`] tells a database, a backup
/// or a dump by: a dump's first statements after a byte order mark,
/// comments and blank lines, in UTF-16 too (a secret is looked for in
/// the whole file).
const HEAD: u64 = 4 * 1024;

/// How many compressed layers (zstd or gzip, one inside another)
/// [`held_unpacked`] unpacks: a file nested deeper is told
/// [`d1_core::dump::Held::Unchecked`].
const LAYERS: usize = 3;

/// What the file at `path` holds when it is a database, a backup or a
/// secret, whatever its name: told by its first bytes
/// ([`d1_core::dump::held_by`]), and whether it is compressed, zstd or
/// gzip (then told by what it unpacks to, as a `.sql.zst` or `.sql.gz`
/// renamed is, [`held_unpacked`]); else a secret anywhere in it
/// ([`secret_in_file`]). A compressed file is searched raw too, whole, as
/// any other file is: one that does not unpack, or bytes appended after
/// its frame, may hold a key (`true` then only when what it unpacks to is
/// told). `None` for any other file, and for one that cannot be read. One
/// byte past [`HEAD`] is read to know whether the head is the whole file
/// (then a statement it ends inside was not cut off by it). An archive
/// (zip, tar, 7z, xz, bzip2; a tar inside gzip or zstd too) is told by its
/// magic bytes, [`d1_core::dump::Held::Archive`], and not looked inside.
pub fn held_in(path: &Path) -> Option<(d1_core::dump::Held, bool)> {
    held_within(path, LIMITS)
}

/// [`held_in`], a compressed file unpacked within `limits`.
fn held_within(path: &Path, limits: Limits) -> Option<(d1_core::dump::Held, bool)> {
    use d1_core::dump::{Held, held_by};
    use std::io::{Seek as _, SeekFrom};
    let mut file = crate::edge::fsutil::open_regular(path, "").ok()?;
    let mut read = Noted::new(&mut file);
    let (head, cut) = read_head(&mut read);
    if read.failed {
        return None;
    }
    match held_by(&head, cut) {
        Some(Held::Compressed) => {
            let unpacked = held_unpacked(&file, &head, limits);
            let told =
                |held: &Held| !matches!(held, Held::Unchecked | Held::TooLarge | Held::TooMuchWork);
            if let Some(held) = unpacked.filter(told) {
                return Some((held, true));
            }
            // Its raw bytes tell a key appended after its stream before it
            // is told unchecked.
            file.seek(SeekFrom::Start(0)).ok()?;
            let raw = secret_in_file(&mut pages_file(&file), Wide::of(&head));
            raw.map(|held| (held, false))
                .or(unpacked.map(|held| (held, true)))
        }
        Some(held) => Some((held, false)),
        None if cut => {
            file.seek(SeekFrom::Start(0)).ok()?;
            Some((
                secret_in_file(&mut pages_file(&file), Wide::of(&head))?,
                false,
            ))
        }
        None => None,
    }
}

/// `reader`'s first [`HEAD`] bytes, and whether it holds more; up to the
/// first error when one stops the read (a stream that stops unpacking:
/// what it unpacked before is kept; [`Noted`] tells the error).
fn read_head(reader: &mut dyn Read) -> (Vec<u8>, bool) {
    let mut head = Vec::with_capacity(HEAD as usize + 1);
    let _ = reader.take(HEAD + 1).read_to_end(&mut head);
    let cut = head.len() as u64 > HEAD;
    head.truncate(HEAD as usize);
    (head, cut)
}

/// A reader that notes whether a read of it failed (a compressed stream
/// that stops unpacking: a corrupt or cut frame, bytes after it that are
/// none).
struct Noted<R> {
    inner: R,
    failed: bool,
}

impl<R> Noted<R> {
    fn new(inner: R) -> Self {
        Noted {
            inner,
            failed: false,
        }
    }
}

impl<R: Read> Read for Noted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf);
        self.failed |= read.is_err();
        read
    }
}

/// `file` read from its start and unpacked through `layers` (whether
/// each, outermost first, is gzip; else zstd), every reader's bytes
/// counted against `budget`; `None` when it cannot be.
fn unpacked<'a>(file: &'a File, layers: &[bool], budget: &'a Budget) -> Option<Box<dyn Read + 'a>> {
    use std::io::{Seek as _, SeekFrom};
    (&*file).seek(SeekFrom::Start(0)).ok()?;
    let mut reader: Box<dyn Read + 'a> = Box::new(file);
    for &gzip in layers {
        reader = match gzip {
            true => Box::new(budget.meter(Members::new(BufReader::new(reader), budget))),
            false => Box::new(budget.meter(Frames::reader(reader, budget).ok()?)),
        };
    }
    Some(reader)
}

/// A gzip stream read member after member as `gzip -dc` reads it: zeros
/// after the last member end it (as gzip ignores them, a disk image's or
/// a padded block's tail); a byte after a member that is neither zero nor
/// the start of another member, or a member after those zeros, is an
/// error (gzip's "trailing garbage"; what it hides may hold anything).
/// Each member after the first is counted against `budget` as
/// [`MEMBER_COST`] bytes unpacked.
struct Members<'b, R> {
    member: Option<Member<'b, R>>,
    budget: &'b Budget,
}

/// A gzip member whose deflate blocks after its first are each counted
/// against a [`Budget`] as [`BLOCK_COST`] bytes unpacked.
type Member<'b, R> = crate::edge::inflate::Member<R, Box<dyn FnMut() -> io::Result<()> + 'b>>;

/// A gzip member read from `input`, its blocks counted against `budget`.
fn counted_member<R: BufRead>(input: R, budget: &Budget) -> Member<'_, R> {
    crate::edge::inflate::Member::new(input, Box::new(|| budget.charge(BLOCK_COST)))
}

/// What each deflate block after a gzip member's first is counted as
/// against a [`Budget`], in bytes unpacked: an empty block of fixed codes
/// is 10 bits that unpack to nothing, yet miniz_oxide builds the fixed
/// tables anew for each (about 2 µs, as long as some 200 bytes of a stream
/// take to unpack), so 190 MiB of them, gzipped again into 290 KB, took
/// minutes (JS). Ordinary streams hold a block per 16 KB or more unpacked
/// (a log flushed a line at a time, two a line); a stream of empty blocks
/// is stopped once [`WORK_LIMIT`] is spent, at some 1.6 million.
const BLOCK_COST: u64 = 256;

/// What each gzip member after a stream's first ([`Members`]), and each
/// zstd frame ([`Frames`], skippable ones too), is counted as against a
/// [`Budget`], in bytes unpacked: each is begun anew (a gzip decoder of
/// some 40 KiB set up, about 17 µs, the time some 1.6 KB of a stream takes
/// to unpack), so a stream of empty ones (20 bytes each, a million in 20
/// MiB) read without bound took minutes. A log gzipped a line at a time (a
/// member per append, 100,000 read in under 2 s), `cat a.gz b.gz`, `pigz`
/// and `bgzip` (one per 64 KiB unpacked) are read whole; a million empty
/// members are stopped once [`WORK_LIMIT`] is spent (at some 200,000, in
/// about 4 s, as long as 400 MiB unpacked take). A zstd frame costs less
/// (about 2 µs), and is counted the same.
const MEMBER_COST: u64 = 2048;

impl<'b, R: BufRead> Members<'b, R> {
    fn new(input: R, budget: &'b Budget) -> Self {
        Members {
            member: Some(counted_member(input, budget)),
            budget,
        }
    }
}

impl<R: BufRead> Read for Members<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(member) = &mut self.member {
            let read = member.read(buf)?;
            if read > 0 || buf.is_empty() {
                return Ok(read);
            }
            // The member ended, its trailer read: what follows it?
            let mut input = self.member.take().expect("read from").into_inner();
            match input.fill_buf()?.first() {
                None => {}
                Some(0) => zeros_to_the_end(&mut input)?,
                Some(_) => {
                    self.budget.charge(MEMBER_COST)?;
                    self.member = Some(counted_member(input, self.budget));
                }
            }
        }
        Ok(0)
    }
}

/// A zstd stream's decoder that counts its frames as [`Members`] counts
/// gzip members: each after the first, a skippable one too, is counted
/// against `budget` as [`MEMBER_COST`] bytes unpacked.
struct Frames<'b> {
    decoder: zstd::stream::raw::Decoder<'static>,
    budget: &'b Budget,
}

impl<'b> Frames<'b> {
    /// `input` read through zstd's decoder, frame after frame.
    fn reader<R: Read>(
        input: R,
        budget: &'b Budget,
    ) -> io::Result<zstd::stream::zio::Reader<BufReader<R>, Frames<'b>>> {
        let input = BufReader::with_capacity(zstd::zstd_safe::DCtx::in_size(), input);
        let frames = Frames {
            decoder: zstd::stream::raw::Decoder::new()?,
            budget,
        };
        Ok(zstd::stream::zio::Reader::new(input, frames))
    }
}

impl zstd::stream::raw::Operation for Frames<'_> {
    fn run<C: zstd::stream::raw::WriteBuf + ?Sized>(
        &mut self,
        input: &mut zstd::stream::raw::InBuffer<'_>,
        output: &mut zstd::stream::raw::OutBuffer<'_, C>,
    ) -> io::Result<usize> {
        self.decoder.run(input, output)
    }

    fn flush<C: zstd::stream::raw::WriteBuf + ?Sized>(
        &mut self,
        output: &mut zstd::stream::raw::OutBuffer<'_, C>,
    ) -> io::Result<usize> {
        self.decoder.flush(output)
    }

    /// A frame ended and another starts.
    fn reinit(&mut self) -> io::Result<()> {
        self.budget.charge(MEMBER_COST)?;
        self.decoder.reinit()
    }

    fn finish<C: zstd::stream::raw::WriteBuf + ?Sized>(
        &mut self,
        output: &mut zstd::stream::raw::OutBuffer<'_, C>,
        finished_frame: bool,
    ) -> io::Result<usize> {
        self.decoder.finish(output, finished_frame)
    }
}

/// Reads `input` to its end; an error at a byte that is not zero.
fn zeros_to_the_end(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let bytes = input.fill_buf()?;
        if bytes.is_empty() {
            return Ok(());
        }
        if bytes.iter().any(|b| *b != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes after the zeros that end a gzip stream",
            ));
        }
        let read = bytes.len();
        input.consume(read);
    }
}

/// What the compressed `file`, whose first bytes are `head`, holds
/// unpacked, told by its head as [`held_in`] tells a plain file, through
/// up to [`LAYERS`] compressed layers; `Unchecked` past them, and when a
/// zstd frame asks for a window past the decoder's limit; `TooLarge` when
/// a layer unpacks past `limits.layer` (a bomb, or an asset too large to
/// search), `TooMuchWork` when every pass together does past
/// `limits.work` ([`LIMITS`]). Its whole stream
/// unpacked is searched (the budget bounds it), and each layer above
/// the last raw too, as the file itself is: a key beside an inner frame is
/// searched as bytes. What a layer unpacked before it stops unpacking (an
/// error: corrupt, truncated, bytes after its stream) is searched too, and
/// `Unchecked` when that holds none of those: what follows may hold one.
/// `None` when it holds none of those (its raw bytes are searched then,
/// and after `Unchecked`).
fn held_unpacked(file: &File, head: &[u8], limits: Limits) -> Option<d1_core::dump::Held> {
    use d1_core::dump::{Held, held_by};
    let gzip = |head: &[u8]| head.starts_with(&[0x1f, 0x8b]);
    let budget = Budget::new(limits);
    let mut layers = vec![gzip(head)];
    let held = loop {
        let mut stream = Noted::new(unpacked(file, &layers, &budget)?);
        let (plain, cut) = read_head(&mut stream);
        // A stream that stops unpacking is cut off where it stopped.
        let cut = cut || stream.failed;
        match held_by(&plain, cut) {
            _ if budget.stopped.get() => break None,
            Some(Held::Compressed) if layers.len() < LAYERS => layers.push(gzip(&plain)),
            Some(Held::Compressed) => break Some(Held::Unchecked),
            Some(held) => break Some(held),
            // A secret past the head, or in its last bytes: the stream
            // unpacked is read as a plain file is, in pieces, to its end
            // (an ordinary asset, a game's data, may unpack past the 25
            // MiB a Pages file is, and a key put past them is published
            // with it), or until the budget is spent (`Unchecked` then).
            // One that stops unpacking before its end, what it unpacked
            // holding none, cannot be checked: what follows may hold one.
            None if cut => {
                let mut stream = Noted::new(unpacked(file, &layers, &budget)?);
                let found = secret_in_file(&mut stream, Wide::of(&plain));
                break found.or(stream.failed.then_some(Held::Unchecked));
            }
            None => break None,
        }
    };
    let raw = |depth: usize| secret_in_file(&mut *unpacked(file, &layers[..depth], &budget)?, None);
    match held {
        None | Some(Held::Unchecked) => { (1..layers.len()).find_map(raw) }
            .or(budget.past.get())
            .or(held)
            .or(budget.stopped.get().then_some(Held::Unchecked)),
        held => held,
    }
}

/// The most bytes one layer of a compressed file unpacks to in one pass
/// of [`held_unpacked`] over it (the file's own bytes, which are not
/// unpacked, are not counted): an ordinary asset unpacks to a few times
/// [`PAGES_FILE_LIMIT`]; a bomb (gzip members that unpack to gzip members
/// that unpack to nothing) to no end. A stream is searched to its end
/// within it, so one that unpacks past it is too large to check, whatever
/// it holds (rvY: a 25 MiB asset unpacking to 180 MiB was counted 205).
const UNPACK_LIMIT: u64 = 8 * PAGES_FILE_LIMIT;

/// The most bytes every layer of a compressed file unpacks to in every
/// pass of [`held_unpacked`] together: an asset unpacking to nearly
/// [`UNPACK_LIMIT`] inside another layer (whose stream is about the
/// file's size) is read whole, a pass over its head, one over its stream
/// and one over the outer layer's; a bomb nested 3 deep, each layer under
/// [`UNPACK_LIMIT`], is stopped at twice it.
const WORK_LIMIT: u64 = 2 * UNPACK_LIMIT;

/// The bounds on what [`held_unpacked`] unpacks of a file: `layer`, of
/// one layer in one pass; `work`, of every layer and pass together.
#[derive(Clone, Copy)]
struct Limits {
    layer: u64,
    work: u64,
}

/// The bounds a deploy checks its files within.
const LIMITS: Limits = Limits {
    layer: UNPACK_LIMIT,
    work: WORK_LIMIT,
};

/// What [`held_unpacked`] may still unpack of a file, every layer and
/// pass together (`Limits::work`), and whether it stopped short of it:
/// `past` the bound reached, `TooMuchWork` past that one or `TooLarge` a
/// layer past `Limits::layer`; or at a zstd frame whose window is past
/// the decoder's limit (`zstd --long=31`: 2 GiB of memory), which it
/// does not unpack.
struct Budget {
    left: std::cell::Cell<u64>,
    layer: u64,
    stopped: std::cell::Cell<bool>,
    past: std::cell::Cell<Option<d1_core::dump::Held>>,
}

impl Budget {
    fn new(limits: Limits) -> Budget {
        Budget {
            left: limits.work.into(),
            layer: limits.layer,
            stopped: false.into(),
            past: None.into(),
        }
    }

    /// `inner`, a layer's stream unpacked, its bytes counted against this
    /// budget and against its bound on one layer.
    fn meter<R: Read>(&self, inner: R) -> Metered<'_, R> {
        Metered {
            inner,
            budget: self,
            handed: 0,
        }
    }

    /// `bytes` counted as unpacked (a gzip member or a zstd frame begun,
    /// [`MEMBER_COST`]) against the work of every pass; an error once past
    /// it.
    fn charge(&self, bytes: u64) -> io::Result<()> {
        let left = self.left.get();
        if bytes > left {
            return Err(self.spent(d1_core::dump::Held::TooMuchWork));
        }
        self.left.set(left - bytes);
        Ok(())
    }

    /// Once past a bound (`past`, the one reached): every read after
    /// fails at once.
    fn spent(&self, past: d1_core::dump::Held) -> io::Error {
        self.left.set(0);
        self.stopped.set(true);
        self.past.set(Some(past));
        io::Error::other("past the bound on what is unpacked")
    }
}

/// A layer's stream unpacked whose bytes are counted against a
/// [`Budget`]; it fails once the budget is spent, or once it has handed
/// on the budget's bound on one layer ([`UNPACK_LIMIT`]).
struct Metered<'b, R> {
    inner: R,
    budget: &'b Budget,
    handed: u64,
}

/// The error zstd's decoder reads a frame whose window is past its limit
/// with (`ZSTD_error_frameParameter_windowTooLarge`).
const ZSTD_WINDOW_TOO_LARGE: &str = "Frame requires too much memory for decoding";

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use d1_core::dump::Held;
        if self.budget.past.get().is_some() {
            return Err(io::Error::other("past the bound on what is unpacked"));
        }
        let read = self.inner.read(buf);
        let left = self.budget.left.get();
        match &read {
            // A layer past its own bound is told so, whatever the work.
            Ok(n) if self.handed + *n as u64 > self.budget.layer => {
                return Err(self.budget.spent(Held::TooLarge));
            }
            Ok(n) if *n as u64 > left => return Err(self.budget.spent(Held::TooMuchWork)),
            Ok(n) => {
                self.handed += *n as u64;
                self.budget.left.set(left - *n as u64);
            }
            Err(e) if e.to_string() == ZSTD_WINDOW_TOO_LARGE => self.budget.stopped.set(true),
            Err(_) => {}
        }
        read
    }
}

/// The most of a file [`held_in`] searches raw: what `wrangler pages
/// deploy` publishes of one (it refuses a larger file, and publishes
/// nothing). What a compressed file unpacks to is searched to its end,
/// bounded by [`UNPACK_LIMIT`] instead.
const PAGES_FILE_LIMIT: u64 = 25 * 1024 * 1024;

/// `file`, from where it is, read to [`PAGES_FILE_LIMIT`] at most.
fn pages_file(file: &File) -> io::Take<&File> {
    file.take(PAGES_FILE_LIMIT)
}

/// How many bytes [`secret_in_file`] looks for a secret's start in at a
/// time.
const PIECE: usize = 256 * 1024;

/// How many bytes past a piece [`secret_in_file`] reads with it, so that a
/// secret that starts in the piece and runs past its end is read whole
/// (the next piece starts where it ended): more than any key is long, in
/// UTF-32 too; a multiple of 4, so that a wide file's units stay whole.
const OVERLAP: usize = 4 * 1024;

/// The secret that `file` (a file from where it is read, to
/// [`PAGES_FILE_LIMIT`], or a compressed one's stream unpacked, to its
/// end) holds anywhere ([`d1_core::dump::secret_in`]), in `wide` text too
/// when its head is: read in pieces of [`PIECE`] bytes, each with the
/// [`OVERLAP`] after it, so a key cut in two by a piece's end is still
/// told, holding no more than one piece and its overlap in memory. What
/// was read before a read fails (a stream that cannot be unpacked
/// further, or past its budget) is looked in too.
fn secret_in_file(file: &mut dyn Read, wide: Option<Wide>) -> Option<d1_core::dump::Held> {
    use d1_core::dump::{secret_in, wide_as_ascii};
    let mut window = Vec::with_capacity(PIECE + OVERLAP);
    loop {
        let want = PIECE + OVERLAP - window.len();
        let had = window.len();
        let read = (&mut *file).take(want as u64).read_to_end(&mut window);
        let last = read.is_err() || window.len() - had < want;
        let piece = if last { window.len() } else { PIECE };
        let found = secret_in(&window, piece).or_else(|| {
            let wide = wide?;
            secret_in(&wide_as_ascii(wide, &window), piece / wide.unit().0)
        });
        if found.is_some() || last {
            return found;
        }
        window.drain(..piece);
    }
}

/// Where a backup's SQL is read from, whatever its stored form.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file: plain, compressed, or encrypted (then with an identity file).
    File {
        path: PathBuf,
        format: Format,
        identity: Option<PathBuf>,
        age: Age,
        /// The shared lock that keeps prune from deleting the file while
        /// this source lives ([`crate::edge::fsutil::hold_for_reading`]).
        _held: Option<Arc<File>>,
        /// Whether its plaintext is read no further than [`Bounded`] lets
        /// it: a file given, not the backup this run is writing.
        bounded: bool,
    },
    /// Compressed plaintext held in memory (a backup just sealed).
    Memory(Arc<Vec<u8>>),
}

impl Source {
    /// A plain `.sql` file, whatever its name.
    #[cfg(test)]
    pub fn plain(path: &Path) -> Source {
        Source::File {
            path: path.to_path_buf(),
            format: Format::Sql,
            identity: None,
            age: Age::new(Path::new(".")),
            _held: None,
            bounded: false,
        }
    }

    /// A zstd-compressed file, whatever its name (a backup being written).
    pub fn compressed(path: &Path) -> Source {
        Source::File {
            path: path.to_path_buf(),
            format: Format::Zstd,
            identity: None,
            age: Age::new(Path::new(".")),
            _held: None,
            bounded: false,
        }
    }

    /// The backup at `path`; an encrypted one needs `identity`.
    pub fn for_file(path: &Path, identity: Option<&Path>, age: &Age) -> Result<Source> {
        let format = Format::of(path);
        let identity = match (format, identity) {
            // Input missing (exit 2), for every command as for verify.
            (Format::ZstdAge, None) => crate::stop!(
                crate::exit::Exit::CouldNotRun,
                "{} is encrypted with age: pass --identity FILE (or set {IDENTITY_VAR}) \
                 naming an identity file with the key for one of its recipients",
                path.display()
            ),
            (Format::ZstdAge, Some(id)) => {
                check_identity_file(id).map_err(crate::exit::could_not_run)?;
                Some(id.to_path_buf())
            }
            // Not needed, but given: one that is missing or no identity is
            // a mistake to name (a typo in the path the next encrypted
            // backup needs), not a flag to pass over.
            (_, Some(id)) => {
                check_identity_file(id).map_err(crate::exit::could_not_run)?;
                None
            }
            (_, None) => None,
        };
        Ok(Source::File {
            path: path.to_path_buf(),
            format,
            identity,
            age: age.clone(),
            _held: crate::edge::fsutil::hold_for_reading(path)?.map(Arc::new),
            bounded: true,
        })
    }

    /// `e`, from reading the source; when no identity given opens it, it
    /// names the file and the recipients its manifest records it sealed
    /// to (public keys), whose identity is what the operator must find.
    fn unopened(&self, e: anyhow::Error) -> anyhow::Error {
        let Source::File { path, .. } = self else {
            return e;
        };
        if !no_identity_matched(&e) {
            return e;
        }
        use crate::edge::manifest_file::ManifestFile as _;
        let recipients = d1_core::manifest::Manifest::for_backup(path)
            .map(|m| m.sealed_to().to_vec())
            .unwrap_or_default();
        let to = if recipients.is_empty() {
            "recipients its manifest does not record".to_owned()
        } else {
            recipients.join(", ")
        };
        // The key given is none of the recorded recipients': the input is
        // wrong (exit 2), for every command. One of theirs that fails is
        // the file's fault, which the callers judge ([`Source::is_unopened`]),
        // and is never worded as a wrong key.
        if self.is_unopened(&recipients) {
            crate::exit::could_not_run(e.context(format!(
                "{} is sealed to {to}, and no identity given (--identity, {IDENTITY_VAR}) is the \
                 key of one of them{}: give the identity file of one of those recipients",
                path.display(),
                self.identity_given()
            )))
        } else {
            e.context(SealedToOthers(format!(
                "{} does not open with the identity given, though it is the key of a recipient \
                 its manifest records ({to}): the file was sealed to others than its manifest \
                 records, or damaged",
                path.display()
            )))
        }
    }

    /// Whether reading this source leaves plaintext SQL on disk. When it
    /// does not (encrypted, or in memory), a verify keeps its scratch
    /// database in memory too.
    pub fn plaintext_is_on_disk(&self) -> bool {
        matches!(
            self,
            Source::File {
                format: Format::Sql | Format::Zstd,
                ..
            }
        )
    }

    /// The plaintext SQL, streamed, with a large buffer.
    pub fn open(&self) -> Result<Box<dyn BufRead + Send>> {
        let (path, format, identity, age, bounded) = match self {
            Source::Memory(bytes) => {
                let decoder = zstd::stream::read::Decoder::new(SharedBytes(bytes.clone(), 0))?;
                return Ok(Box::new(BufReader::with_capacity(
                    BUFFER,
                    Stopping(decoder),
                )));
            }
            Source::File {
                path,
                format,
                identity,
                age,
                bounded,
                ..
            } => (path, *format, identity, age, *bounded),
        };
        let file = crate::edge::fsutil::open_regular(path, "")?;
        let (most, recorded) = match bounded && format != Format::Sql {
            true => unpacked_bound_of(file.metadata()?.len(), recorded_plaintext(path)),
            false => (u64::MAX, false),
        };
        Ok(match format {
            Format::Sql => Box::new(BufReader::with_capacity(BUFFER, Stopping(file))),
            Format::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(file)?;
                let bounded = Bounded::new(
                    Damaged::told(decoder, path, None, bounded),
                    path,
                    (most, recorded),
                );
                Box::new(BufReader::with_capacity(BUFFER, Stopping(bounded)))
            }
            Format::ZstdAge => {
                let identity = identity.as_ref().context("no identity for an age file")?;
                age_stanzas(path)?;
                let decrypted = Decrypting::spawn(age, identity, file)?;
                let decoder = zstd::stream::read::Decoder::new(decrypted)?;
                let decoder = Damaged::told(decoder, path, Some(identity), bounded);
                let bounded = Bounded::new(decoder, path, (most, recorded));
                Box::new(BufReader::with_capacity(BUFFER, Stopping(bounded)))
            }
        })
    }

    /// The plaintext SQL, hashed as it is read: reading it to the end fails
    /// unless it is exactly `sha256` over `bytes`. A file swapped after it
    /// was checked is caught by the read that loads it, before anything
    /// commits.
    pub fn open_checked(&self, sha256: &str, bytes: u64) -> Result<Box<dyn BufRead + Send>> {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            Checked {
                inner: self.open()?,
                counter: Some(Counter::default()),
                sha256: sha256.to_owned(),
                bytes,
            },
        )))
    }

    /// The first bytes of the plaintext (to tell SQL from anything else).
    pub fn head(&self) -> Result<Vec<u8>> {
        self.head_up_to(64)
    }

    /// The first `most` bytes of the plaintext, or all of a shorter one.
    pub fn head_up_to(&self, most: u64) -> Result<Vec<u8>> {
        let mut head = Vec::with_capacity(most as usize);
        self.open()?
            .take(most)
            .read_to_end(&mut head)
            .map_err(|e| self.unopened(e.into()))?;
        Ok(head)
    }

    /// SHA-256 and size of the plaintext.
    pub fn plaintext_digest(&self) -> Result<(String, u64)> {
        self.plaintext_digest_up_to(u64::MAX)?
    }

    /// SHA-256 and size of the plaintext, read no further than `most` bytes
    /// and one buffer: a plaintext longer than a manifest records is known
    /// to differ there, however much more it would decode to (a few KB of
    /// zstd can decode to gigabytes). The size then returned is over
    /// `most`, the digest that of what was read. The outer error is one
    /// before any plaintext was read (the file, the decrypting process), or
    /// an interrupt; the inner one, the plaintext failing to decode on the
    /// way (a file damaged or cut short, or no identity that opens it).
    pub fn plaintext_digest_up_to(&self, most: u64) -> Result<Result<(String, u64)>> {
        let mut reader = self.open()?;
        let mut counter = Counter::default();
        loop {
            crate::edge::signals::check()?;
            let buf = match reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) => {
                    // age killed by the same Ctrl-C (the terminal's whole
                    // process group gets it): the interrupt, not the file.
                    crate::edge::signals::check()?;
                    return Ok(Err(self.unopened(e.into())));
                }
            };
            if buf.is_empty() {
                return Ok(Ok(counter.finish()));
            }
            let n = buf.len();
            counter.update(buf);
            reader.consume(n);
            if counter.bytes() > most {
                return Ok(Ok(counter.finish()));
            }
        }
    }

    /// Whether a read that failed did so for want of the identity that
    /// opens the file, not for the file: the identity given is not the key
    /// of one of the `recorded` recipients (or cannot be read as keys at
    /// all). When it is, and the file still does not decode to its end,
    /// the file is at fault: damaged, cut short, or resealed to others
    /// than its manifest records. A file that is not encrypted is always
    /// at fault.
    /// The identity file given and the recipients it holds the keys of
    /// (public keys), for an error saying it opens none of a file's.
    /// The identity file this source was given, for a command printed to
    /// read it again.
    pub fn identity(&self) -> Option<&Path> {
        match self {
            Source::File { identity, .. } => identity.as_deref(),
            _ => None,
        }
    }

    fn identity_given(&self) -> String {
        let Source::File {
            identity: Some(identity),
            age,
            ..
        } = self
        else {
            return String::new();
        };
        match age.recipients_of(identity) {
            Ok(keys) if !keys.is_empty() => format!(
                " ({} holds the key of {})",
                identity.display(),
                keys.join(", ")
            ),
            _ => format!(" ({} was given)", identity.display()),
        }
    }

    pub fn is_unopened(&self, recorded: &[String]) -> bool {
        let Source::File {
            format: Format::ZstdAge,
            identity,
            age,
            ..
        } = self
        else {
            return false;
        };
        let Some(identity) = identity else {
            return true;
        };
        !age.recipients_of(identity)
            .is_ok_and(|keys| keys.iter().any(|k| recorded.contains(k)))
    }
}

/// The context of an error from reading a backup that the key of a
/// recipient its manifest records does not open: the file is at fault
/// (sealed to others, or damaged), not the key given. A caller that
/// refuses such a file finds it with `downcast_ref`.
#[derive(Debug)]
pub struct SealedToOthers(String);

impl std::fmt::Display for SealedToOthers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `e` is age's refusal to open a file with the identity given
/// ("no identity matched"), as opposed to a file that fails to decode.
fn no_identity_matched(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("no identity matched")
}

/// Every pass over a stored backup reads through this: after SIGINT or
/// SIGTERM the next read fails, however much SQL is left. A pass whose
/// consumer waits on it (the statement splitter reading 4 GiB of blank
/// lines for one statement) never looks at the signal itself. Not
/// `ErrorKind::Interrupted`, which readers retry.
struct Stopping<R>(R);

impl<R: Read> Read for Stopping<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(signal) = crate::edge::signals::received() {
            return Err(io::Error::other(crate::edge::signals::Interrupted(signal)));
        }
        self.0.read(buf)
    }
}

/// How many times its own size a compressed dump is read to unpacked when
/// no manifest beside it records its size: SQL compresses some 5 to 20
/// times; zstd lets a file unpack to 32,000 times its size (8 KB of blank
/// lines to 256 MB, which `diff` read for 42 s: rvAH).
const UNPACKED_RATIO: u64 = 1000;

/// The least a compressed dump is read to unpacked, however small it is.
const UNPACKED_FLOOR: u64 = 16 << 20;

/// The most a manifest raises the bound on what its compressed dump is
/// read to unpacked, whatever size it records: a manifest is as hostile as
/// any file in backups/, and one recording a petabyte for a bomb of a few
/// kilobytes would read it without end. D1 holds a database to 10 GB; its
/// dump, as SQL text, runs past that (a BLOB's hex is twice its bytes, and
/// each row repeats its `INSERT INTO`), so the ceiling is well above it.
const UNPACKED_CEILING: u64 = 64 << 30;

/// A compressed file's plaintext, read no further than [`UNPACKED_RATIO`]
/// times the file's size, at least [`UNPACKED_FLOOR`], or the size the
/// manifest beside it records (and two buffers past, for the callers that
/// read one past it to tell a file that decodes to more) when that is
/// more, to [`UNPACKED_CEILING`] at most: an error past it naming the file,
/// the bound, whose it is and the way out.
///
/// A manifest raises the bound, never lowers it: the tool writes the true
/// size there, so a dump that compresses past the ratio (rare, but a table
/// of blank BLOBs does) is still read whole from its own backup, while a
/// stale manifest beside a file given with `--no-manifest` never refuses
/// what the ratio reads (the sha256 and size checks tell a file that is not
/// the manifest's). A hostile manifest raises it no further than the
/// ceiling.
struct Bounded<R> {
    inner: R,
    left: u64,
    bound: u64,
    /// Whether the bound is the size a manifest records.
    recorded: bool,
    path: PathBuf,
}

/// The size the manifest beside the compressed file at `path` records its
/// plaintext to be, if one does.
fn recorded_plaintext(path: &Path) -> Option<u64> {
    use crate::edge::manifest_file::ManifestFile as _;
    d1_core::manifest::Manifest::parse(&d1_core::manifest::manifest_path(path))
        .ok()
        .and_then(|m| m.sealed)
        .map(|sealed| sealed.plaintext_bytes)
}

/// The most [`Bounded`] reads of a compressed file of `size` bytes whose
/// manifest records its plaintext to be `recorded` bytes, and whether that
/// record set it.
fn unpacked_bound_of(size: u64, recorded: Option<u64>) -> (u64, bool) {
    let ratio = size.saturating_mul(UNPACKED_RATIO).max(UNPACKED_FLOOR);
    let recorded = recorded.map(|r| r.saturating_add(2 * BUFFER as u64).min(UNPACKED_CEILING));
    match recorded {
        Some(recorded) if recorded > ratio => (recorded, true),
        _ => (ratio, false),
    }
}

/// The most [`Bounded`] reads of the compressed file at `path`.
#[cfg(test)]
fn unpacked_bound(path: &Path, file: &File) -> io::Result<u64> {
    let size = file.metadata()?.len();
    Ok(unpacked_bound_of(size, recorded_plaintext(path)).0)
}

impl<R> Bounded<R> {
    /// `inner`, read to `bound` at most; `recorded` when a manifest's size
    /// set it.
    fn new(inner: R, path: &Path, (bound, recorded): (u64, bool)) -> Bounded<R> {
        Bounded {
            inner,
            left: bound,
            bound,
            recorded,
            path: path.to_path_buf(),
        }
    }

    /// Why it was read no further, and the way out.
    fn past(&self) -> String {
        let whose = match self.recorded {
            true => format!(
                "the size the manifest beside it records (and two buffers), more than \
                 {UNPACKED_RATIO} times the file's own size (a manifest raises the bound to at \
                 most {} GiB): it is not the file that manifest describes, or the manifest \
                 was edited",
                UNPACKED_CEILING >> 30
            ),
            false => format!(
                "the most a compressed dump is read to when no manifest records its size (or \
                 a smaller one): {UNPACKED_RATIO} times the file's own size, at least {} MiB; \
                 a file that small unpacking further is a bomb more likely than a dump",
                UNPACKED_FLOOR >> 20
            ),
        };
        format!(
            "{} unpacks to more than {} MiB, {whose}. If it is a dump, unpack it yourself \
             (`zstd -d`, after `age -d` for an encrypted one) and give the .sql it writes",
            self.path.display(),
            self.bound.div_ceil(1 << 20),
        )
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::new(io::ErrorKind::InvalidData, self.past()));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Whether this run is `cargo xtask verify` ([`advise_as_verify`]).
static VERIFYING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says this run is `cargo xtask verify`: a damaged file's advice
/// ([`Damaged`]) then leads to another backup, not to `verify FILE`, the
/// command already running.
pub fn advise_as_verify() {
    VERIFYING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A compressed or encrypted backup's plaintext whose decoding failing
/// (age's `invalid tag`, zstd's `incomplete frame`: a file damaged or cut
/// short, which a manifest rewritten after it may agree with) is told as
/// the file's fault: named, BAD, refused (exit 3, as the README says a cut
/// file is), with the next step, for every reader of a stored file
/// (restore, diff), where it was the library's bare words, exit 1 or 2
/// (rvAT). An identity that opens none of its recipients is not damage
/// ([`Source::unopened`] tells it), and an interrupt is the interrupt.
/// Past its [`Bounded`] bound is told there, outside this.
struct Damaged<R> {
    inner: R,
    path: PathBuf,
    identity: Option<PathBuf>,
}

impl<R: Read> Damaged<R> {
    /// `inner` told as [`Damaged`] when `given` (a file given, not the
    /// backup this run is writing), else as it is.
    fn told(inner: R, path: &Path, identity: Option<&PathBuf>, given: bool) -> Box<dyn Read + Send>
    where
        R: Send + 'static,
    {
        match given {
            true => Box::new(Damaged {
                inner,
                path: path.to_path_buf(),
                identity: identity.cloned(),
            }),
            false => Box::new(inner),
        }
    }

    fn damaged(&self, e: io::Error) -> io::Error {
        let said = e.to_string();
        let interrupted =
            e.kind() == io::ErrorKind::Interrupted || crate::edge::signals::received().is_some();
        if interrupted || no_identity_matched(&anyhow::anyhow!("{said}")) {
            return e;
        }
        // An I/O error reading the file, or age killed or failing for a
        // reason of its own: said as it is, with the file, never damage.
        if not_the_files_fault(&e) {
            return io::Error::new(
                e.kind(),
                NotTheFile(format!(
                    "cannot read {}: {said}. That is no fault of the file's, and says nothing \
                     of it: nothing was judged; run the command again once that is fixed",
                    self.path.display()
                )),
            );
        }
        // Run by verify, the check it would advise is the one running.
        let check = match VERIFYING.load(std::sync::atomic::Ordering::Relaxed) {
            true => String::new(),
            false => format!(
                "Check it with `{}`, and ",
                crate::edge::manifest_file::verify_command(&self.path, self.identity.as_deref())
            ),
        };
        let pick = match check.is_empty() {
            true => "Pick",
            false => "pick",
        };
        crate::exit::Exit::Refused.io_error(format!(
            "{} is damaged: it does not decode to its end ({said}), so it is BAD whatever its \
             manifest records, and is refused. {check}{pick} another backup: an older one \
             `cargo xtask list` shows, or {}",
            self.path.display(),
            offsite_copy(&self.path)
        ))
    }
}

/// Where a damaged backup at `path` may be had whole from the bucket: its
/// offsite copy, fetched (once it and its manifest are moved aside, or
/// fetch refuses the file of its name here) with the fetch that names it
/// and its environment, as its name says; or another copy, which `offsite
/// list` names. It was `cargo xtask offsite fetch`, which clap refuses
/// without a backup and `--env`. A file whose name is no backup's says
/// no environment, and no command is given for it.
fn offsite_copy(path: &Path) -> String {
    let name = d1_core::names::file_name(path);
    let Some(backup) = d1_core::manifest::backup_name(&name) else {
        return "an offsite copy, which `offsite list --env` of its environment names".to_owned();
    };
    let env = d1_core::wording::shell_word(crate::config::environment::short_name(backup.env));
    format!(
        "its offsite copy: move it and its manifest aside, then `cargo xtask offsite fetch {} \
         --env {env}` (`cargo xtask offsite list --env {env}` names the other copies)",
        d1_core::wording::shell_word(&name)
    )
}

impl<R: Read> Read for Damaged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| self.damaged(e))
    }
}

/// A reader that hashes what it reads and fails at its end on a mismatch.
struct Checked<R> {
    inner: R,
    counter: Option<Counter>,
    sha256: String,
    bytes: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match (n, self.counter.as_mut()) {
            (0, Some(_)) => {
                let (sha256, bytes) = self.counter.take().unwrap_or_default().finish();
                if sha256 != self.sha256 || bytes != self.bytes {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the backup changed while it was read: {bytes} bytes with sha256 \
                             {sha256}, not the {} bytes with sha256 {} that were checked",
                            self.bytes, self.sha256
                        ),
                    ));
                }
            }
            (_, Some(counter)) => {
                counter.update(&buf[..n]);
                // Past the size checked, it is not those bytes: said now,
                // not after reading however much more there is.
                if counter.bytes() > self.bytes {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the backup changed while it was read: it holds more than the {} \
                             bytes that were checked",
                            self.bytes
                        ),
                    ));
                }
            }
            (_, None) => {}
        }
        Ok(n)
    }
}

/// Refuses, as [`Source::for_file`] does (exit 2), an identity given that
/// cannot be used: for a dry run, which must refuse what its run refuses.
pub fn check_identity_given(identity: Option<&Path>) -> Result<()> {
    match identity {
        Some(id) => check_identity_file(id).map_err(crate::exit::could_not_run),
        None => Ok(()),
    }
}

/// Refuses an identity file that cannot be used (see
/// [`identity_file_mode`]), and warns, once a run, when others can read it.
fn check_identity_file(path: &Path) -> Result<()> {
    // What is wrong names the file; the fix follows it, not a second name.
    let mode = identity_file_mode(path).map_err(|e| {
        anyhow::anyhow!(
            "{e:#}; pass --identity (or {IDENTITY_VAR}) a regular file that holds the \
             AGE-SECRET-KEY-... line (a key kept in a secret manager: write it to a file of \
             mode 600 first)"
        )
    })?;
    if let Some(mode) = mode.filter(|m| m & 0o077 != 0)
        && first_told(path)
    {
        crate::warn!("{}", shared_identity(path, mode));
    }
    Ok(())
}

/// Whether an identity file's mode is told here for the first time this
/// run: every encrypted backup a command opens checks the same file, and
/// one warning of it is enough (`doctor` tells it as a check).
pub fn first_told(path: &Path) -> bool {
    static TOLD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut told = TOLD.lock().unwrap_or_else(|e| e.into_inner());
    if told.iter().any(|p| p == path) {
        return false;
    }
    told.push(path.to_path_buf());
    true
}

/// What an identity file others can read is told, and the fix.
pub fn shared_identity(path: &Path, mode: u32) -> String {
    format!(
        "the identity file {} is mode {mode:o}: others can read the key that decrypts every \
         backup; chmod 600 it",
        path.display()
    )
}

/// An identity file's mode (`None` where there are none), or why it
/// cannot be used: it is missing, is not a regular file (a FIFO, left by a
/// secret manager's process substitution, would block age for ever; a
/// link to a device would never end), is not text, holds a public key, or
/// holds a line that is no `AGE-SECRET-KEY-…` (what age reads; a
/// comment aside). Its lines are secrets from here on: a key with a typo
/// must not be printed by age's error either.
pub fn identity_file_mode(path: &Path) -> Result<Option<u32>> {
    let what = "age identity file";
    if !path.exists() {
        refuse_key_for_a_path(&path.to_string_lossy())?;
    }
    // A directory is told as what it is, with no fix of its own: the
    // caller's (point the variable or `--identity` at the key file) is the
    // one; moving it aside, as for a file in the backup directory, is not.
    if let Some(kind) = std::fs::metadata(path)
        .ok()
        .and_then(|m| crate::edge::fsutil::not_regular(&m))
    {
        bail!("the {what} {} is {kind}, not a file", path.display());
    }
    let text = crate::edge::fsutil::read_text_up_to(path, what, IDENTITY_LIMIT)?;
    let numbered: Vec<(usize, &str)> = { text.lines().enumerate() }
        .map(|(i, l)| (i + 1, l.trim().trim_start_matches('\u{feff}')))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let keys: Vec<&str> = numbered.iter().map(|(_, k)| *k).collect();
    refuse_what_is_no_identity(path, &numbered)?;
    // Held only now that every line is a key: a file that is no identity
    // (a README passed by mistake) is refused above with none of its lines
    // quoted, and holding each of thousands of its lines made every later
    // redaction scan them all.
    keys.iter().copied().for_each(crate::redact::hold);
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::metadata(path)?.permissions().mode() & 0o777)
    };
    #[cfg(not(unix))]
    let mode = None;
    Ok(mode)
}

/// Refuses an identity file's lines (`numbered`, comments and blank
/// lines left out) unless each is a whole secret key: never quoting one,
/// naming the line.
fn refuse_what_is_no_identity(path: &Path, numbered: &[(usize, &str)]) -> Result<()> {
    let what = "age identity file";
    let keys: Vec<&str> = numbered.iter().map(|(_, k)| *k).collect();
    if !keys.is_empty() && keys.iter().all(|k| is_recipient(k)) {
        bail!(
            "the {what} {} holds a public key (age1…, a recipient: what backups are sealed to), \
             not the identity that opens them. The identity is the AGE-SECRET-KEY-1… line of \
             the key file `cargo xtask keygen --out FILE` wrote (its `# public key:` line is this public \
             key); pass that file",
            path.display()
        );
    }
    if keys.is_empty() {
        bail!(
            "the {what} {} is not an age identity: it holds no AGE-SECRET-KEY-… line",
            path.display()
        );
    }
    if let Some((line, _)) = numbered
        .iter()
        .find(|(_, k)| !k.starts_with("AGE-SECRET-KEY-"))
    {
        bail!(
            "the {what} {} is not an age identity: its line {line} is no comment and not an \
             AGE-SECRET-KEY-… key",
            path.display()
        );
    }
    if keys.len() > IDENTITY_KEYS {
        bail!(
            "the {what} {} holds {} keys, more than the {IDENTITY_KEYS} this tool reads: an age \
             identity file holds one key, or a few kept since a key rotation. Pass a file \
             holding only the keys that open your backups (their manifests name the recipients \
             they were sealed to)",
            path.display(),
            keys.len()
        );
    }
    // A key with a typo is told here, by its line, before age runs: age
    // would refuse it only once it was given the backup, and its error
    // read as a damaged backup (exit 3, "move it aside"). One bad line
    // among good ones is refused too: whoever keeps it believes it a key.
    if let Some((line, _)) = { numbered.iter() }.find(|(_, k)| !d1_core::sealed::is_secret_key(k)) {
        bail!(
            "the {what} {} holds on its line {line} an AGE-SECRET-KEY-1… key with a typo (not \
             shown: it is most of a secret key): it is not 58 characters after the `1`, or its \
             last characters, a checksum, do not match the rest. Copy the key again, whole, from \
             where it is kept, or delete that line if it is an old copy; no backup was opened \
             (none is judged by a key that is not whole)",
            path.display()
        );
    }
    Ok(())
}

/// Whether `text` is an age recipient (a public key), not an identity.
fn is_recipient(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    {
        lower
            .strip_prefix("age1pq1")
            .or_else(|| lower.strip_prefix("age1"))
    }
    .is_some_and(|rest| {
        rest.len() >= 50
            && rest
                .chars()
                .all(|c| d1_core::sealed::BECH32_CHARSET.contains(c))
    })
}

/// Refuses an identity "path" that is a key itself (the variable set to
/// the key rather than to its file): the public key, named as such, or the
/// secret key, never printed.
fn refuse_key_for_a_path(given: &str) -> Result<()> {
    let given = given.trim();
    if is_recipient(given) {
        bail!(
            "the age identity given (--identity or {IDENTITY_VAR}) is a public key (age1…, a \
             recipient: what backups are sealed to), not the path of an identity file. Point it \
             at the key file `cargo xtask keygen --out FILE` wrote, which holds the AGE-SECRET-KEY-1… line"
        );
    }
    if d1_core::sealed::holds_key_material(given) {
        crate::redact::hold(given);
        bail!(
            "the age identity given (--identity or {IDENTITY_VAR}) is a key itself (or a part \
             of one; not shown), not the path of a file: keep it secret, write the whole key \
             (AGE-SECRET-KEY-1…) to a file of mode 600 (outside the repository) and pass that \
             file's path"
        );
    }
    Ok(())
}

/// An `Arc<Vec<u8>>` read from a position, so a held copy can be read twice.
struct SharedBytes(Arc<Vec<u8>>, usize);

impl Read for SharedBytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.0[self.1..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.1 += n;
        Ok(n)
    }
}

/// age's decryption of a file, read from its standard output. The end of
/// the stream is reported only once age has exited successfully, so a file
/// that fails authentication is an error, never a short read.
struct Decrypting {
    child: Child,
    stdout: ChildStdout,
    stderr: Stderr,
    done: bool,
}

impl Decrypting {
    fn spawn(age: &Age, identity: &Path, file: File) -> Result<Decrypting> {
        let mut child = age
            .command(&["decrypt".as_ref(), "-i".as_ref(), identity.as_os_str()])?
            .stdin(Stdio::from(file))
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot run node scripts/age.mjs to decrypt; is Node.js installed?")?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = Stderr::drain(&mut child);
        Ok(Decrypting {
            child,
            stdout,
            stderr,
            done: false,
        })
    }
}

impl Read for Decrypting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let status = self.child.wait()?;
            self.done = true;
            if !status.success() {
                return Err(decrypt_failed(status, &self.stderr.text()));
            }
        }
        Ok(n)
    }
}

/// How much of a dump's head holds a rehearsal's mark line, whole
/// (`steps::rehearsals::dump_mark`).
pub const MARKED_HEAD: u64 = 512;

/// The first [`MARKED_HEAD`] bytes of the plaintext of the backup at
/// `path`, read without an identity: those of a plain or zstd-compressed
/// one, `None` for one sealed with age (its plaintext needs the
/// identity) or one that cannot be read as its name says. No lock is
/// taken: a listing reads the head of every backup there.
pub fn unsealed_head(path: &Path) -> Option<Vec<u8>> {
    let format = Format::of(path);
    let source = Source::File {
        path: path.to_path_buf(),
        format,
        identity: None,
        age: Age::new(Path::new(".")),
        _held: None,
        bounded: false,
    };
    (format != Format::ZstdAge)
        .then(|| source.head_up_to(MARKED_HEAD).ok())
        .flatten()
}

/// The exit code `scripts/age.mjs` gives a decryption that failed on what
/// the file holds (sysexits' EX_DATAERR).
const FILE_AT_FAULT: i32 = 65;

/// A decryption that failed (`status`, age's `message`): the file's fault
/// only when age says so ([`FILE_AT_FAULT`]; "no identity matched" is the
/// identity's, told by [`Source::unopened`]); age killed by a signal (the
/// out-of-memory killer, a crash) or failing otherwise (an I/O error
/// reading the file) is [`NotTheFile`], which is never called damaged.
fn decrypt_failed(status: std::process::ExitStatus, message: &str) -> io::Error {
    use std::os::unix::process::ExitStatusExt as _;
    let said = format!("decrypting with age failed: {message}");
    if status.code() == Some(FILE_AT_FAULT) || message.contains("no identity matched") {
        return io::Error::new(io::ErrorKind::InvalidData, said);
    }
    io::Error::other(NotTheFile(match status.signal() {
        Some(signal) => format!(
            "age (node scripts/age.mjs), decrypting it, was killed by signal {signal}{} before \
             its end: out of memory (the kernel's out-of-memory killer), a crash, or another \
             process{}",
            match signal {
                9 => " (SIGKILL)",
                6 => " (SIGABRT)",
                11 => " (SIGSEGV)",
                _ => "",
            },
            match message.trim() {
                "" => String::new(),
                m => format!(" ({m})"),
            }
        ),
        None => said,
    }))
}

/// Whether `e`, met reading a stored backup, is no fault of the file's:
/// an OS error, or [`NotTheFile`] (age killed or failing for a reason of
/// its own).
pub fn not_the_files_fault(e: &io::Error) -> bool {
    e.raw_os_error().is_some() || e.get_ref().is_some_and(|r| r.is::<NotTheFile>())
}

/// Why reading a stored backup failed, when it is not the file's fault: an
/// I/O error reading it, or age killed or failing for a reason of its own.
/// [`Damaged`] names the file and this, never calling it damaged.
#[derive(Debug)]
pub struct NotTheFile(String);

impl std::fmt::Display for NotTheFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotTheFile {}

/// Whether `e`, from reading a stored backup, is no fault of the file's:
/// [`NotTheFile`], or an I/O error of the system reading it (EIO, EISDIR;
/// one with an OS error code, which zstd's and age's decoding errors never
/// have).
pub fn not_the_files(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<NotTheFile>().is_some()
            || c.downcast_ref::<io::Error>()
                .is_some_and(|io| io.get_ref().is_some_and(|r| r.is::<NotTheFile>()))
    })
}

impl Drop for Decrypting {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x.sql.zst` in `dir`: 20 MiB of blank lines, a few KB packed, with
    /// a manifest beside it recording `plaintext_bytes` when given.
    fn blank_dump_recorded_as(dir: &Path, plaintext_bytes: Option<u64>) -> PathBuf {
        let path = dir.join("x.sql.zst");
        let packed = zstd::stream::encode_all(&vec![b'\n'; 20 << 20][..], 19).unwrap();
        std::fs::write(&path, packed).unwrap();
        if let Some(bytes) = plaintext_bytes {
            let sha = "a".repeat(64);
            let text = format!(
                r#"{{"format_version":1,"tool":{{"name":"t","version":"0"}},"created_at":"2026-11-24T12:00:00Z",
                "environment":"prod","database":{{"name":"qbtime_db_prod","uuid":"u","wrangler_env":"production","location":"remote"}},
                "mode":"full","tables":[],"file":{{"name":"x.sql.zst","bytes":1,"sha256":"{sha}"}},
                "sealed":{{"format":"zstd","plaintext_bytes":{bytes},"plaintext_sha256":"{sha}"}},
                "rows":{{}},"statements":0,"migrations":[],"encryption_key":null,"wrangler_version":null,
                "git_commit":null,"time_travel_bookmark":null,"virtual_tables":null,"reason":null}}"#
            );
            std::fs::write(d1_core::manifest::manifest_path(&path), text).unwrap();
        }
        path
    }

    /// What reading the whole plaintext of `path` fails with.
    fn unpack_error(path: &Path) -> String {
        let source = Source::for_file(path, None, &Age::new(Path::new("."))).unwrap();
        let mut read = source.open().unwrap();
        let err = io::copy(&mut read, &mut io::sink()).expect_err("read past its bound");
        err.to_string()
    }

    /// rvAP: with no manifest, a compressed dump is read to 1000 times its
    /// size (at least 16 MiB) and the error says no manifest records its
    /// size; a manifest recording more raises the bound to its size (and
    /// two buffers), and the error says the bound is the manifest's (it
    /// always said "no manifest"); one recording less lowers nothing (a
    /// stale manifest beside a file given with --no-manifest).
    #[test]
    fn a_manifest_bounds_what_its_dump_unpacks_to_and_the_error_says_whose_bound() {
        let dir = tempfile::tempdir().unwrap();
        let bare = blank_dump_recorded_as(dir.path(), None);
        let said = unpack_error(&bare);
        assert!(said.contains("no manifest records its size"), "{said}");
        assert!(said.contains("16 MiB"), "{said}");
        std::fs::remove_file(&bare).unwrap();
        // A manifest recording less lowers nothing: the ratio's bound.
        let smaller = blank_dump_recorded_as(dir.path(), Some(1 << 20));
        let file = File::open(&smaller).unwrap();
        assert_eq!(unpacked_bound(&smaller, &file).unwrap(), UNPACKED_FLOOR);
        assert!(unpack_error(&smaller).contains("no manifest records its size (or a smaller"));
        std::fs::remove_file(&smaller).unwrap();
        // One recording more raises it to its size, and says so.
        let recorded = blank_dump_recorded_as(dir.path(), Some(17 << 20));
        let file = File::open(&recorded).unwrap();
        assert_eq!(
            unpacked_bound(&recorded, &file).unwrap(),
            (17 << 20) + 2 * BUFFER as u64
        );
        let said = unpack_error(&recorded);
        assert!(!said.contains("no manifest records"), "{said}");
        assert!(
            said.contains("the size the manifest beside it records"),
            "{said}"
        );
        assert!(said.contains("19 MiB"), "{said}");
    }

    /// A manifest is as hostile as any file in backups/: one recording a
    /// petabyte for a small file lets it unpack no further than a ceiling
    /// no D1 dump reaches, never without end.
    #[test]
    fn a_manifest_recording_a_huge_size_raises_the_bound_to_a_ceiling_at_most() {
        let dir = tempfile::tempdir().unwrap();
        let path = blank_dump_recorded_as(dir.path(), Some(1 << 50));
        let file = File::open(&path).unwrap();
        let bound = unpacked_bound(&path, &file).unwrap();
        assert!(bound <= 64 << 30, "{bound}");
    }

    /// A compressed dump whose first block hardly compresses (a table of
    /// random text) is still told by its first bytes unpacked: the bound
    /// on what is read holds its whole first block.
    #[test]
    fn a_compressed_dump_is_told_whatever_its_first_block_holds() {
        let mut plain = b"PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO t VALUES('".to_vec();
        let mut x: u64 = 7;
        for _ in 0..300_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            plain.push(b'a' + (x >> 59) as u8);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let packed = zstd::stream::encode_all(&plain[..], 3).unwrap();
        assert!(packed.len() > 100_000, "{}", packed.len());
        std::fs::write(&path, packed).unwrap();
        assert_eq!(held_in(&path), Some((d1_core::dump::Held::Dump, true)));
    }

    /// A path that does not exist and is a piece of a secret key's
    /// material (a paste cut short, 28 characters or more, of one case, with or without
    /// a part of its prefix) is told a key and never quoted; a missing file
    /// of words is told missing.
    #[test]
    fn a_missing_path_that_is_a_piece_of_a_key_is_told_a_key_not_quoted() {
        for given in [
            "NHVPTX3327L9ET9A6L4LTUCLVEFC64ELZQCZ2RH3",
            "KEY-1nhvptx3327l9et9a6l4ltuclvefc",
        ] {
            let e = refuse_key_for_a_path(given).unwrap_err().to_string();
            assert!(
                e.contains("is a key itself") && !e.to_lowercase().contains("3327l9"),
                "{e}"
            );
        }
        for path in [
            "qbtime-production-backups-identity-2026x",
            "keys/prod.agekey",
            "backup-key.txt",
        ] {
            refuse_key_for_a_path(path).unwrap();
        }
    }

    /// A file that is no identity (a README passed to `--identity` on a
    /// bad day) is refused at once, and its lines are not taken for
    /// secrets: holding each of a large file's lines made every later
    /// redaction scan them all, so a 700 KB README ran for many minutes
    /// before the refusal. A file far larger than any key file is refused
    /// by its size, unread.
    #[test]
    fn a_file_that_is_no_identity_is_refused_without_its_lines_held() {
        let dir = tempfile::tempdir().unwrap();
        let readme = dir.path().join("README.md");
        let line = "Restore the newest offsite copy into a brand-new database";
        std::fs::write(&readme, format!("# Runbook\n{line}\n")).unwrap();
        let e = identity_file_mode(&readme).unwrap_err().to_string();
        assert!(e.contains("is not an age identity"), "{e}");
        assert_eq!(
            crate::redact::text(line),
            line,
            "a line of a file that is no identity was held as a secret"
        );
        let large = dir.path().join("runbook.pdf");
        std::fs::write(&large, vec![b'x'; (IDENTITY_LIMIT + 1) as usize]).unwrap();
        let e = identity_file_mode(&large).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    /// An identity file of thousands of keys under the size cap (14,000
    /// fake `AGE-SECRET-KEY-1…` lines in 1 MB) held each as a secret that
    /// every later line of output was searched for: `verify` ran for
    /// minutes and heeded SIGTERM only after 75 s. A real identity file
    /// holds one key or a few: more than 64 is refused at once, saying how
    /// many and what to pass instead; 64 are read.
    #[test]
    fn an_identity_file_of_more_keys_than_any_real_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = |n: usize| -> String {
            (0..n)
                .map(|i| format!("AGE-SECRET-KEY-1{i:0>58}\n"))
                .collect()
        };
        let many = dir.path().join("keys.txt");
        std::fs::write(&many, keys(65)).unwrap();
        let e = identity_file_mode(&many)
            .expect_err("an identity file of 65 keys was read")
            .to_string();
        assert!(
            e.contains("holds 65 keys") && e.contains("more than the 64"),
            "{e}"
        );
        let few = dir.path().join("rotated.txt");
        // Whole keys (a typo is refused first): one, 64 times.
        let key = concat!(
            "AGE-SECRET-",
            "KEY-1RZZRMMAAQ0PHEUU8RWDUAPPLACZ2LY0H6TKJ3U6K4072DEX8VEKQ8MAS4D\n"
        );
        std::fs::write(&few, format!("# created: 2026-01-01\n{}", key.repeat(64))).unwrap();
        identity_file_mode(&few).unwrap();
    }

    /// An identity is told wherever it is in a file, past the head and
    /// across every boundary a reader could read the file in (a key cut in
    /// two by one is still told), whatever follows it (its checksum tells
    /// where it ends); a key with a character changed is not told at any
    /// of them, nor is a large file with no key.
    #[test]
    fn an_identity_is_told_wherever_it_is_in_a_file() {
        use d1_core::dump::Held;
        const KEY: &str = concat!(
            "AGE-SECRET-KEY-1",
            "GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.js");
        let typo = KEY.replace("Q4EGAEX", "P4EGAEX");
        let told = Some((Held::Identity, false));
        for boundary in [4096usize, 64 << 10, 256 << 10, 1 << 20, 2 << 20] {
            for back in [0, 1, 7, 16, 40, 73, 74, 75, 200] {
                let at = boundary - back;
                let padding = vec![b' '; at];
                for (key, after, held) in
                    [(KEY, "\n", told), (KEY, "B\n", told), (&typo, "\n", None)]
                {
                    let bytes = [&padding[..], key.as_bytes(), after.as_bytes()].concat();
                    std::fs::write(&path, bytes).unwrap();
                    assert_eq!(held_in(&path), held, "{at} {after:?}");
                }
            }
        }
        std::fs::write(&path, vec![b'x'; 3 << 20]).unwrap();
        assert_eq!(held_in(&path), None);
        let far = |text: &str| [&vec![b' '; 300 << 10][..], text.as_bytes()].concat();
        let pem = concat!(
            "-----BEGIN PRIVATE ",
            "KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        );
        std::fs::write(&path, far(pem)).unwrap();
        assert_eq!(held_in(&path), Some((Held::PrivateKey, false)));
        let utf16 = |bytes: Vec<u8>| -> Vec<u8> {
            let units = bytes.iter().flat_map(|b| [*b, 0]);
            [0xff, 0xfe].into_iter().chain(units).collect()
        };
        std::fs::write(&path, utf16(far(KEY))).unwrap();
        assert_eq!(held_in(&path), Some((Held::Identity, false)));
    }

    /// A secret in a zstd-compressed file is told wherever it is unpacked:
    /// in the last bytes of the head (which a head cut off from its file
    /// does not look for a secret's start in), past the head, and across
    /// the pieces the unpacked stream is read in, whatever follows it; a
    /// key with a character changed is not told at any of them.
    #[test]
    fn a_secret_is_told_wherever_it_is_in_a_compressed_file() {
        use d1_core::dump::Held;
        const KEY: &str = concat!(
            "AGE-SECRET-KEY-1",
            "GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.js.zst");
        let typo = KEY.replace("Q4EGAEX", "P4EGAEX");
        let packed = |key: &str, at: usize, after: &str| {
            let bytes = [&vec![b' '; at][..], key.as_bytes(), after.as_bytes()].concat();
            zstd::stream::encode_all(&bytes[..], 3).unwrap()
        };
        let rest = " ".repeat(2000);
        for at in [0, 1000, 3970, 4000, 4050, 5000, 300 << 10, 3 << 20] {
            for more in ["", &rest] {
                std::fs::write(&path, packed(KEY, at, &format!("\n{more}"))).unwrap();
                assert_eq!(held_in(&path), Some((Held::Identity, true)), "{at}");
                std::fs::write(&path, packed(KEY, at, &format!("B\n{more}"))).unwrap();
                assert_eq!(held_in(&path), Some((Held::Identity, true)), "{at}");
                std::fs::write(&path, packed(&typo, at, &format!("\n{more}"))).unwrap();
                assert_eq!(held_in(&path), None, "{at}");
            }
        }
        let pem = concat!(
            "-----BEGIN PRIVATE ",
            "KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        );
        let far = [&vec![b' '; 1 << 20][..], pem.as_bytes()].concat();
        std::fs::write(&path, zstd::stream::encode_all(&far[..], 3).unwrap()).unwrap();
        assert_eq!(held_in(&path), Some((Held::PrivateKey, true)));
    }

    /// An age identity no real key is, whose checksum verifies.
    const A_KEY: &str = concat!(
        "AGE-SECRET-KEY-1",
        "GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    );

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut packed = Vec::new();
        let mut encoder = flate2::read::GzEncoder::new(bytes, flate2::Compression::fast());
        encoder.read_to_end(&mut packed).unwrap();
        packed
    }

    /// IM 1: a compressed file was searched only to its first 25 MiB
    /// unpacked, so a small `.gz` of 26 MiB of blanks and then a key was
    /// published. The whole stream is searched (up to the bound on what is
    /// unpacked), across the edges of the pieces it is read in too; a large
    /// stream holding none is not refused.
    #[test]
    fn a_secret_past_25_mib_unpacked_is_told() {
        use d1_core::dump::Held;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("game.data.gz");
        let pem = concat!(
            "-----BEGIN PRIVATE ",
            "KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        );
        let far = 26 << 20;
        for (at, secret, held) in [
            (far, A_KEY, Held::Identity),
            (far - 40, A_KEY, Held::Identity),
            (far + 1000, pem, Held::PrivateKey),
        ] {
            let bytes = [&vec![b' '; at][..], secret.as_bytes(), b"\n"].concat();
            std::fs::write(&path, gz(&bytes)).unwrap();
            assert_eq!(held_in(&path), Some((held, true)), "{at}");
        }
        std::fs::write(&path, gz(&vec![b' '; far + 1000])).unwrap();
        assert_eq!(held_in(&path), None);
    }

    /// IM 2: a gzip file with zeros after its last member (which `gzip -dc`
    /// reads, saying the trailing zero bytes were ignored) was refused as
    /// one that cannot be checked. It is read to its end as gzip reads it:
    /// an asset is not refused, a key in it is; bytes after the zeros that
    /// are not zeros, or a member after them (which `gzip -dc` calls
    /// trailing garbage), still cannot be checked.
    #[test]
    fn a_gzip_file_with_zeros_after_its_last_member_is_read_as_gzip_reads_it() {
        use d1_core::dump::Held;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.js.gz");
        let asset = gz("const rows = []; // see the docs\n".repeat(400).as_bytes());
        let key = gz(format!("{}\n{A_KEY}\n", " ".repeat(5000)).as_bytes());
        let zeros = vec![0; 4096];
        let unchecked = Some((Held::Unchecked, true));
        for (bytes, held) in [
            (vec![&asset, &zeros[..1]], None),
            (vec![&asset, &zeros], None),
            (vec![&asset, &asset, &zeros], None),
            (vec![&key, &zeros], Some((Held::Identity, true))),
            (vec![&asset, &zeros, &key], unchecked),
            (vec![&asset, &zeros, &b"x"[..]], unchecked),
            (vec![&asset, &zeros, &asset], unchecked),
        ] {
            std::fs::write(&path, bytes.concat()).unwrap();
            assert_eq!(held_in(&path), held, "{}", bytes.len());
        }
    }

    /// rvZ 1: a compressed file refused because every pass of the check
    /// together unpacked past the bound on the work ([`WORK_LIMIT`]), no
    /// layer past [`UNPACK_LIMIT`], was told as one whose layer unpacks
    /// past it. Which bound was reached is told: the layer's, or the
    /// work's (the bounds given small, the fixture 1 MiB).
    #[test]
    fn a_compressed_file_past_the_work_bound_alone_is_told_so_not_as_a_large_layer() {
        use d1_core::dump::Held;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin.gz");
        let asset = "const rows = []; // see the docs\n".repeat(1 << 15);
        std::fs::write(&path, gz(asset.as_bytes())).unwrap();
        let size = asset.len() as u64;
        let within = |layer, work| held_within(&path, Limits { layer, work });
        assert_eq!(within(size, 4 * size), None);
        assert_eq!(within(size - 1, 4 * size), Some((Held::TooLarge, true)));
        assert_eq!(within(size, size), Some((Held::TooMuchWork, true)));
        assert_eq!(held_in(&path), None);
    }

    /// IM 3: a gzip file of a million empty members (20 MiB, which unpack
    /// to nothing) was read member by member, each started anew, a deploy
    /// over one running for minutes. Each member is counted against the
    /// budget ([`MEMBER_COST`]): such a stream is too large to check, told
    /// so in seconds; one of a few members, and one of bgzip's 64 KiB
    /// blocks, are read whole.
    #[test]
    fn a_gzip_file_of_a_million_empty_members_cannot_be_checked() {
        use d1_core::dump::Held;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        std::fs::write(&path, gz(b"").repeat(1 << 20)).unwrap();
        assert_eq!(held_in(&path), Some((Held::TooMuchWork, true)));
        let block = "const rows = []; // see the docs\n".repeat(2000);
        let blocks = gz(block.as_bytes()).repeat(500);
        std::fs::write(&path, [&blocks, &gz(A_KEY.as_bytes())[..]].concat()).unwrap();
        assert_eq!(held_in(&path), Some((Held::Identity, true)));
        std::fs::write(&path, &blocks).unwrap();
        assert_eq!(held_in(&path), None);
    }

    /// A zstd stream of many frames, each begun anew, is bounded as gzip
    /// members are ([`MEMBER_COST`]): a million frames, skippable ones
    /// counted too, are too large to check; 100,000 are read whole, a key
    /// in the last told.
    #[test]
    fn a_zstd_stream_of_more_frames_than_gzip_members_read_cannot_be_checked() {
        use d1_core::dump::Held;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let empty = zstd::stream::encode_all(&b""[..], 3).unwrap();
        let skippable = [0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        let key = zstd::stream::encode_all(A_KEY.as_bytes(), 3).unwrap();
        let too_large = Some((Held::TooMuchWork, true));
        for (frames, held) in [
            (empty.repeat(1 << 20), too_large),
            ([&empty[..], &skippable.repeat(1 << 20)].concat(), too_large),
            (
                [empty.repeat(99_999), key.clone()].concat(),
                Some((Held::Identity, true)),
            ),
            (empty.repeat(100_000), None),
            ([&empty[..], &skippable.repeat(99_999)].concat(), None),
        ] {
            std::fs::write(&path, &frames).unwrap();
            assert_eq!(held_in(&path), held, "{}", frames.len());
        }
    }

    /// JB 2: a log gzipped a line at a time (a member per append) was
    /// refused past 10,000 members, though what it unpacks to is bounded
    /// by the budget. Each member or zstd frame is counted against that
    /// budget instead: 100,000 lines are read whole, a key in the last
    /// told; a million empty members, or two million skippable frames,
    /// are still stopped.
    #[test]
    fn a_log_gzipped_a_line_at_a_time_is_read_and_a_bomb_of_members_is_not() {
        use d1_core::dump::Held;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log.gz");
        let line = b"12:00:00 GET /api/time 200 1234\n";
        let log = gz(line).repeat(100_000);
        std::fs::write(&path, &log).unwrap();
        assert_eq!(held_in(&path), None);
        std::fs::write(&path, [&log[..], &gz(A_KEY.as_bytes())].concat()).unwrap();
        assert_eq!(held_in(&path), Some((Held::Identity, true)));
        let frame = zstd::stream::encode_all(&line[..], 3).unwrap();
        std::fs::write(&path, frame.repeat(100_000)).unwrap();
        assert_eq!(held_in(&path), None);
        let skippable = [0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        for bomb in [gz(b"").repeat(1 << 20), skippable.repeat(2 << 20)] {
            std::fs::write(&path, &bomb).unwrap();
            assert_ne!(held_in(&path), None);
        }
    }

    /// A gzip member whose deflate stream is `n` empty blocks of fixed
    /// Huffman codes (10 bits each, 4 in 5 bytes) and a last one: it
    /// unpacks to nothing, its CRC-32 and size 0.
    fn empty_fixed_blocks(n: usize) -> Vec<u8> {
        let four = [0x02, 0x08, 0x20, 0x80, 0x00];
        let deflate = [&four.repeat(n / 4)[..], &[0x03, 0x00]].concat();
        let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        [&header[..], &deflate, &[0; 8]].concat()
    }

    /// JS: an empty deflate block of fixed codes costs miniz_oxide some
    /// 2 µs (it builds the fixed tables anew for each), and unpacks to
    /// nothing, so none of it was counted: 190 MiB of them, gzipped again
    /// into 290 KB, took a deploy some 300 s. Each block after a member's
    /// first is counted against the budget ([`BLOCK_COST`]): such a file
    /// is too much work to check, within a small budget too; a log
    /// flushed a line at a time (two blocks a line) is read whole.
    #[test]
    fn a_gzip_stream_of_millions_of_empty_deflate_blocks_cannot_be_checked() {
        use d1_core::dump::Held;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        std::fs::write(&path, empty_fixed_blocks(1 << 20)).unwrap();
        let small = Limits {
            layer: 8 << 20,
            work: 16 << 20,
        };
        assert_eq!(held_within(&path, small), Some((Held::TooMuchWork, true)));
        let inner = empty_fixed_blocks(152 << 20);
        let mut outer = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        outer.write_all(&inner).unwrap();
        std::fs::write(&path, outer.finish().unwrap()).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 400_000);
        assert_eq!(held_in(&path), Some((Held::TooMuchWork, true)));
        let mut log = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for n in 0..100_000 {
            writeln!(log, "12:00:{n:06} GET /api/time 200 1234").unwrap();
            log.flush().unwrap();
        }
        std::fs::write(&path, log.finish().unwrap()).unwrap();
        assert_eq!(held_in(&path), None);
    }

    /// A checkout without `scripts/age.mjs` gets a message naming it, not
    /// Node's stack trace (atkN).
    #[test]
    fn a_missing_age_script_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Age::new(dir.path()).keygen().unwrap_err().to_string();
        assert!(err.contains("age.mjs is missing"), "{err}");
        assert!(err.contains("copy its scripts/"), "{err}");
    }

    #[test]
    fn a_file_swapped_after_its_check_fails_the_read_that_loads_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.sql");
        std::fs::write(&file, "INSERT INTO t VALUES(1);\n").unwrap();
        let (sha256, bytes) = crate::edge::fsutil::sha256_file(&file).unwrap();
        let source = Source::plain(&file);
        let mut text = String::new();
        source
            .open_checked(&sha256, bytes)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        std::fs::write(&file, "INSERT INTO t VALUES(2);\n").unwrap();
        let err = source
            .open_checked(&sha256, bytes)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap_err();
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );
    }

    fn age() -> Age {
        Age::new(&crate::edge::node::build_root())
    }

    fn sample() -> Vec<u8> {
        let mut sql = b"PRAGMA defer_foreign_keys=TRUE;\n".to_vec();
        for i in 0..20_000 {
            sql.extend_from_slice(format!("INSERT INTO \"t\" VALUES({i},'row {i}');\n").as_bytes());
        }
        sql
    }

    fn seal(dir: &Path, format: Format, recipients: &[String], data: &[u8]) -> (PathBuf, Sealed) {
        let path = dir.join(format!("b.{}", format.extension()));
        File::create(&path).unwrap();
        let mut sealer = Sealer::create(&path, format, recipients, &age()).unwrap();
        let fed = sealer.write_all(data);
        (path, sealer.finish(fed).unwrap())
    }

    #[test]
    fn zstd_round_trip_is_streamed_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let data = sample();
        let (path, sealed) = seal(dir.path(), Format::Zstd, &[], &data);
        assert!(sealed.compressed.is_none());
        let stored = std::fs::metadata(&path).unwrap().len();
        assert!(stored * 4 < data.len() as u64, "{stored} of {}", data.len());
        let source = Source::for_file(&path, None, &age()).unwrap();
        let mut back = Vec::new();
        source.open().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(source.plaintext_digest().unwrap(), sealed.plaintext);
        assert_eq!(
            sealed.plaintext.0,
            hex(&Sha256::digest(&data)),
            "the plaintext digest is the SQL's"
        );
        assert!(source.plaintext_is_on_disk());
    }

    #[cfg(unix)]
    #[test]
    fn age_round_trip_needs_the_identity_and_keeps_a_compressed_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, recipient) = age().keygen().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, &identity).unwrap();
        let data = sample();
        let (path, sealed) = seal(dir.path(), Format::ZstdAge, &[recipient], &data);
        let stored = std::fs::read(&path).unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        check_age_header(&path, 1).unwrap();
        assert!(check_age_header(&path, 2).is_err());
        assert!(!stored.windows(6).any(|w| w == b"INSERT"));

        let err = Source::for_file(&path, None, &age())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--identity"), "{err}");

        let source = Source::for_file(&path, Some(&key), &age()).unwrap();
        assert!(!source.plaintext_is_on_disk());
        assert_eq!(source.plaintext_digest().unwrap(), sealed.plaintext);
        let memory = Source::Memory(sealed.compressed.clone().unwrap());
        assert_eq!(memory.plaintext_digest().unwrap(), sealed.plaintext);
        assert_eq!(memory.head().unwrap(), &data[..64]);

        // Another key cannot read it, and says so.
        let (other, _) = age().keygen().unwrap();
        let other_key = dir.path().join("other.txt");
        std::fs::write(&other_key, other).unwrap();
        let wrong = Source::for_file(&path, Some(&other_key), &age()).unwrap();
        let err = format!("{:#}", wrong.plaintext_digest().unwrap_err());
        assert!(err.contains("no identity matched"), "{err}");

        // A truncated file is an error, never a shorter plaintext.
        std::fs::write(&path, &stored[..stored.len() - 100]).unwrap();
        let err = format!("{:#}", source.plaintext_digest().unwrap_err());
        assert!(err.contains("age"), "{err}");
    }

    /// LB: an I/O error reading a stored backup (here EBADF, a read of a
    /// file open only for writing: EIO from a failing disk is told the
    /// same way) was called "damaged", BAD and refused, as if the file
    /// were at fault. It names the I/O error and the file, whether zstd
    /// or age reads it.
    #[cfg(unix)]
    #[test]
    fn an_io_error_reading_a_backup_is_not_called_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let (identity, _) = age().keygen().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, &identity).unwrap();
        let path = dir.path().join("b.sql.zst.age");
        std::fs::write(&path, b"age-encryption.org/v1\n").unwrap();
        let unreadable = || File::options().append(true).open(&path).unwrap();
        let read = |reader: Box<dyn Read + Send>| {
            let mut reader = reader;
            io::copy(&mut reader, &mut io::sink())
                .expect_err("a file open only for writing cannot be read")
                .to_string()
        };
        let zstd = zstd::stream::read::Decoder::new(unreadable()).unwrap();
        let decrypted = Decrypting::spawn(&age(), &key, unreadable()).unwrap();
        let aged = zstd::stream::read::Decoder::new(decrypted).unwrap();
        for said in [
            read(Damaged::told(zstd, &path, None, true)),
            read(Damaged::told(aged, &path, Some(&key), true)),
        ] {
            assert!(!said.contains("damaged"), "{said}");
            assert!(said.contains(&path.display().to_string()), "{said}");
            assert!(
                said.contains("EBADF") || said.contains("Bad file descriptor"),
                "{said}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_export_is_sealed_and_a_failed_one_is_reported_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let data = sample();
        let out = dir.path().join("b.sql.zst");
        File::create(&out).unwrap();
        let fifo = dir.path().join("export.fifo");
        let sealer = Sealer::create(&out, Format::Zstd, &[], &age()).unwrap();
        let sealed = export_through_fifo(&fifo, sealer, || {
            std::fs::write(&fifo, &data)?;
            Ok(())
        })
        .unwrap();
        assert_eq!(sealed.plaintext.1, data.len() as u64);
        assert!(!fifo.exists(), "the FIFO is removed");
        let mut back = Vec::new();
        Source::for_file(&out, None, &age())
            .unwrap()
            .open()
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);

        // The exporter fails before it ever opens the FIFO.
        let sealer = Sealer::create(&out, Format::Zstd, &[], &age()).unwrap();
        let err = export_through_fifo(&fifo, sealer, || bail!("wrangler failed"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "wrangler failed");
        assert!(!fifo.exists());
    }
}
