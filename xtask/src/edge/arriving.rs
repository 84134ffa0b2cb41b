//! An export checked as it arrives. The thread that reads wrangler's
//! FIFO (`stored::export_through_fifo`) writes each chunk on to the
//! backup's file (or to the sealer that compresses and encrypts it into
//! the file), hashes it, and hands it to a thread that reads the dump's
//! statements and counts its rows (`dump::summarize`), and, when asked,
//! makes the repair survey that the backup's verification starts with
//! (`repair::survey_observing`, in the same pass). When the download ends,
//! the file's size and sha256, the dump's summary and its survey are known
//! without reading the file again; the backup still judges them exactly as
//! before (an export cut short fails the same checks).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context as _, Result};

use crate::edge::stored::{Counter, Drain};
use d1_core::app::KeyRecord;
use d1_core::dump::{self, DumpSummary};
use d1_core::repair;
use d1_core::statement::Packed;

/// A repair survey, and the options it was made under.
pub type Surveyed = (repair::Options, repair::Survey);

/// Chunks (each one pipe read, at most 1 MiB) in flight to the counting
/// thread: when it falls behind, the download waits instead of the memory
/// growing.
const IN_FLIGHT: usize = 64;
/// Bytes kept from the start, to tell a D1 export from anything else
/// (after a rehearsal's mark line, when there is one).
const HEAD: usize = 512;

/// The backup's file (or its sealer), its hash, and the counting thread,
/// fed together.
pub struct Arriving<O: Drain = File> {
    out: O,
    counter: Counter,
    head: Vec<u8>,
    /// `None` once the counting thread stopped (its error is its result).
    chunks: Option<SyncSender<Vec<u8>>>,
    summary: JoinHandle<Result<(DumpSummary, Option<Surveyed>)>>,
}

/// What arrived: the file's facts and the dump's summary.
#[derive(Debug)]
pub struct Arrived {
    pub sha256: String,
    pub bytes: u64,
    /// The first bytes of the file.
    pub head: Vec<u8>,
    /// The statements and rows, or why the dump could not be read.
    pub summary: Result<DumpSummary>,
    /// The repair survey, when one was asked for and the dump could be read.
    pub survey: Option<Surveyed>,
}

/// A plain backup's file as the end of an [`Arriving`]: synced once the
/// stream has ended whole.
impl Drain for File {
    type Done = ();
    fn finish(self, fed: io::Result<()>) -> Result<()> {
        fed.context("copying wrangler's export into the backup")?;
        self.sync_all().context("writing the backup")
    }
}

impl<O: Drain> Arriving<O> {
    /// Writes into `out` (the backup's partial file, open for writing, or
    /// the sealer writing it),
    /// summarizes as `dump::summarize(_, schema, key)` does and, with
    /// `survey`, surveys as `repair::survey(_, survey)` does, sending each
    /// statement on to `forward` as it is read, in order, in batches.
    pub fn start(
        out: O,
        schema: BTreeMap<String, String>,
        key: Option<KeyRecord>,
        survey: Option<repair::Options>,
        forward: Option<SyncSender<Packed>>,
    ) -> Arriving<O> {
        let (chunks, rx) = sync_channel(IN_FLIGHT);
        let summary = std::thread::spawn(move || match survey {
            None => dump::summarize(Chunks::new(rx), &schema, key.as_ref()).map(|s| (s, None)),
            Some(options) => {
                let mut summary = dump::Summarizer::new(key.as_ref());
                let mut forward = Forward::new(forward);
                let survey = repair::survey_observing(Chunks::new(rx), &options, |sql| {
                    summary.statement(sql);
                    forward.push(sql);
                })?;
                forward.finish();
                Ok((summary.finish(&schema)?, Some((options, survey))))
            }
        });
        Arriving {
            out,
            counter: Counter::default(),
            head: Vec::with_capacity(HEAD),
            chunks: Some(chunks),
            summary,
        }
    }
}

impl<O: Drain> Write for Arriving<O> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        let written = &buf[..n];
        self.counter.update(written);
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&written[..room.min(n)]);
        let stopped = self
            .chunks
            .as_ref()
            .is_some_and(|chunks| chunks.send(written.to_vec()).is_err());
        if stopped {
            // The dump could not be read further; the file is still written
            // whole, and the summary's error is reported at the end.
            self.chunks = None;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<O: Drain> Drain for Arriving<O> {
    /// What arrived, and what the output made of it (a sealer's digests).
    type Done = (Arrived, O::Done);

    fn finish(self, fed: io::Result<()>) -> Result<(Arrived, O::Done)> {
        let Arriving {
            out,
            counter,
            head,
            chunks,
            summary,
        } = self;
        drop(chunks); // The counting thread sees the end of the dump.
        let read = summary
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the thread counting the export panicked")));
        let done = out.finish(fed)?;
        let (sha256, bytes) = counter.finish();
        let (summary, survey) = match read {
            Ok((summary, survey)) => (Ok(summary), survey),
            Err(e) => (Err(e), None),
        };
        Ok((
            Arrived {
                sha256,
                bytes,
                head,
                summary,
                survey,
            },
            done,
        ))
    }
}

/// The statements sent on from the counting thread, in batches. A
/// receiver that is gone (it stopped loading) is sent nothing more; one
/// that is slow holds the download back.
struct Forward {
    to: Option<SyncSender<Packed>>,
    batch: Packed,
}

impl Forward {
    fn new(to: Option<SyncSender<Packed>>) -> Forward {
        Forward {
            to,
            batch: Packed::default(),
        }
    }

    fn push(&mut self, sql: &str) {
        if self.to.is_none() {
            return;
        }
        self.batch.push(sql, 0, false);
        if self.batch.is_full() {
            self.send();
        }
    }

    fn send(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        if let Some(to) = &self.to
            && to.send(batch).is_err()
        {
            self.to = None;
        }
    }

    /// Sends what is left: the dump has ended. (A survey that failed drops
    /// the rest: its load is never used.)
    fn finish(mut self) {
        self.send();
    }
}

/// The chunks sent by [`Arriving`], read as one stream; it ends when the
/// sender is dropped.
struct Chunks {
    rx: Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Chunks {
    fn new(rx: Receiver<Vec<u8>>) -> Chunks {
        Chunks {
            rx,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Chunks {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at >= self.current.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "PRAGMA defer_foreign_keys=TRUE;\n\
        CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT);\n\
        INSERT INTO \"t\" VALUES(1,'a;b');\n\
        INSERT INTO \"t\" VALUES(2,'line'||char(10)||'two');\n";

    /// Feeds `text` in pieces of `piece` bytes, as the FIFO thread does.
    fn feed(text: &[u8], piece: usize, fed: io::Result<()>) -> (Result<Arrived>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.sql");
        let options = repair::Options::default();
        let mut arriving = Arriving::start(
            File::create(&path).unwrap(),
            BTreeMap::new(),
            None,
            Some(options),
            None,
        );
        for part in text.chunks(piece) {
            arriving.write_all(part).unwrap();
        }
        (
            arriving.finish(fed).map(|(arrived, ())| arrived),
            std::fs::read(&path).unwrap(),
        )
    }

    #[test]
    fn the_file_hash_and_summary_match_reading_the_file_afterwards() {
        for piece in [1, 7, 4096] {
            let (arrived, written) = feed(DUMP.as_bytes(), piece, Ok(()));
            let arrived = arrived.unwrap();
            assert_eq!(written, DUMP.as_bytes());
            let mut counter = Counter::default();
            counter.update(DUMP.as_bytes());
            assert_eq!((arrived.sha256, arrived.bytes), counter.finish());
            assert_eq!(arrived.head, &DUMP.as_bytes()[..HEAD.min(DUMP.len())]);
            let after = dump::summarize(DUMP.as_bytes(), &BTreeMap::new(), None).unwrap();
            let during = arrived.summary.unwrap();
            assert_eq!(during.rows, after.rows);
            assert_eq!(during.rows["t"], 2);
            assert_eq!(during.statements, after.statements);
            let (options, survey) = arrived.survey.unwrap();
            let read = repair::survey(DUMP.as_bytes(), &options).unwrap();
            assert_eq!(format!("{survey:?}"), format!("{read:?}"));
        }
    }

    #[test]
    fn a_stream_cut_inside_a_statement_fails_its_summary_but_is_written_whole() {
        let cut = DUMP.find("'line").unwrap();
        let (arrived, written) = feed(&DUMP.as_bytes()[..cut], 5, Ok(()));
        assert_eq!(written, &DUMP.as_bytes()[..cut]);
        let err = arrived.unwrap().summary.unwrap_err();
        assert!(format!("{err:#}").contains("truncated"), "{err:#}");
    }

    #[test]
    fn a_pipe_that_failed_fails_the_whole_arrival() {
        let (arrived, _) = feed(DUMP.as_bytes(), 64, Err(io::Error::other("pipe broke")));
        let err = arrived.unwrap_err();
        assert!(format!("{err:#}").contains("pipe broke"), "{err:#}");
    }

    #[test]
    fn text_that_is_not_sql_stops_the_counting_but_not_the_file() {
        let junk = vec![0u8; 3 << 20];
        let (arrived, written) = feed(&junk, 1 << 16, Ok(()));
        assert_eq!(written.len(), junk.len());
        let arrived = arrived.unwrap();
        assert_eq!(arrived.bytes, junk.len() as u64);
        assert!(arrived.summary.is_err());
    }
}
