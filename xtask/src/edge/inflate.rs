//! One gzip member unpacked as flate2's `GzDecoder` unpacks it (its
//! header with its CRC and its fields' bound, its deflate stream, its
//! CRC-32 and size checked), through
//! miniz_oxide's decoder stopped at each deflate block's end, so that a
//! caller can count the blocks: an empty block of fixed codes is 10 bits
//! that unpack to nothing, yet cost the decoder some 2 µs (it builds the
//! fixed tables anew for each one).

use std::io::{self, BufRead, Read};

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// The decoder's window: deflate looks back at most 32 KiB.
const WINDOW: usize = 32 * 1024;

/// A gzip member read from `input`; `on_block` is called at the start of
/// each deflate block after the first, and a read fails with its error.
pub struct Member<R, F> {
    input: R,
    decoder: Box<DecompressorOxide>,
    window: Box<[u8]>,
    /// Where the decoder writes next in `window`.
    at: usize,
    /// What it wrote that is not yet handed on.
    ready: std::ops::Range<usize>,
    crc: crc32fast::Hasher,
    size: u32,
    header_read: bool,
    /// Whether its deflate stream has ended; its trailer is read once
    /// what it unpacked is handed on (a member cut short in its trailer
    /// hands on all it holds first, as flate2's does).
    deflated: bool,
    ended: bool,
    on_block: F,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl<R: BufRead, F: FnMut() -> io::Result<()>> Member<R, F> {
    pub fn new(input: R, on_block: F) -> Self {
        Member {
            input,
            decoder: Box::default(),
            window: vec![0; WINDOW].into_boxed_slice(),
            at: 0,
            ready: 0..0,
            crc: crc32fast::Hasher::new(),
            size: 0,
            header_read: false,
            deflated: false,
            ended: false,
            on_block,
        }
    }

    /// The input, from the byte after this member's trailer once it has
    /// been read to its end.
    pub fn into_inner(self) -> R {
        self.input
    }

    /// Unpacks what the input holds now, up to the window's end or a
    /// block's.
    fn inflate(&mut self) -> io::Result<()> {
        use inflate_flags::{TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY};
        let input = self.input.fill_buf()?;
        let more = match input.is_empty() {
            true => 0,
            false => TINFL_FLAG_HAS_MORE_INPUT,
        };
        let flags = TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY | more;
        let (status, used, written) =
            decompress(&mut self.decoder, input, &mut self.window, self.at, flags);
        self.input.consume(used);
        let wrote = &self.window[self.at..self.at + written];
        self.crc.update(wrote);
        self.size = self.size.wrapping_add(written as u32);
        self.ready = self.at..self.at + written;
        self.at = (self.at + written) & (WINDOW - 1);
        match status {
            TINFLStatus::BlockBoundary => (self.on_block)(),
            TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput => Ok(()),
            TINFLStatus::Done => {
                self.deflated = true;
                Ok(())
            }
            TINFLStatus::FailedCannotMakeProgress => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Err(invalid("corrupt deflate stream")),
        }
    }

    /// The member's CRC-32 and size, as its last 8 bytes record them.
    fn trailer(&mut self) -> io::Result<()> {
        self.ended = true;
        let mut trailer = [0; 8];
        self.input.read_exact(&mut trailer)?;
        let crc = std::mem::take(&mut self.crc).finalize();
        if trailer[..4] != crc.to_le_bytes() || trailer[4..] != self.size.to_le_bytes() {
            return Err(invalid(
                "corrupt gzip stream does not have a matching checksum",
            ));
        }
        Ok(())
    }
}

/// flate2's bound on a header's name and comment, each.
const LONGEST_FIELD: usize = 65535;

/// Reads a gzip member's header as flate2 does: its magic bytes, deflate,
/// the extra field, the name and the comment it says follow, each of
/// those two refused past 65535 bytes, and the header's CRC (the low 16
/// bits of the CRC-32 of every header byte before it), refused when it
/// does not match.
fn header(input: &mut impl BufRead) -> io::Result<()> {
    let mut fixed = [0; 10];
    input.read_exact(&mut fixed)?;
    let flags = fixed[3];
    if fixed[..3] != [0x1f, 0x8b, 8] || flags & 0xe0 != 0 {
        return Err(invalid("invalid gzip header"));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&fixed);
    if flags & 4 != 0 {
        let mut len = [0; 2];
        input.read_exact(&mut len)?;
        crc.update(&len);
        let mut extra = Vec::new();
        let n = u64::from(u16::from_le_bytes(len));
        if input.take(n).read_to_end(&mut extra)? as u64 != n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        crc.update(&extra);
    }
    for flag in [8, 16] {
        if flags & flag != 0 {
            to_zero(input, &mut crc)?;
        }
    }
    if flags & 2 != 0 {
        let mut stored = [0; 2];
        input.read_exact(&mut stored)?;
        if u16::from_le_bytes(stored) != crc.finalize() as u16 {
            return Err(invalid(
                "corrupt gzip stream does not have a matching checksum",
            ));
        }
    }
    Ok(())
}

/// Reads `input` past its next zero byte into `crc`, refused past
/// [`LONGEST_FIELD`] bytes before it.
fn to_zero(input: &mut impl BufRead, crc: &mut crc32fast::Hasher) -> io::Result<()> {
    let mut read = 0;
    loop {
        let bytes = input.fill_buf()?;
        if bytes.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let (used, found) = match bytes.iter().position(|b| *b == 0) {
            Some(at) => (at + 1, true),
            None => (bytes.len(), false),
        };
        if read + used - usize::from(found) > LONGEST_FIELD {
            return Err(invalid("gzip header field too long"));
        }
        read += used;
        crc.update(&bytes[..used]);
        input.consume(used);
        if found {
            return Ok(());
        }
    }
}

impl<R: BufRead, F: FnMut() -> io::Result<()>> Read for Member<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.header_read {
            header(&mut self.input)?;
            self.header_read = true;
        }
        while !buf.is_empty() {
            if !self.ready.is_empty() {
                let n = buf.len().min(self.ready.len());
                buf[..n].copy_from_slice(&self.window[self.ready.start..self.ready.start + n]);
                self.ready.start += n;
                return Ok(n);
            }
            if self.ended {
                break;
            }
            match self.deflated {
                true => self.trailer()?,
                false => self.inflate()?,
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzip member of `body` whose header, after its 10 fixed bytes,
    /// holds a name (FNAME) of `name` and a header CRC (FHCRC) of
    /// `header_crc` applied to the header's true CRC.
    fn member(name: &[u8], header_crc: impl Fn(u16) -> u16, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x1f, 0x8b, 8, 8 | 2, 0, 0, 0, 0, 0, 255];
        bytes.extend_from_slice(name);
        bytes.push(0);
        let crc = header_crc(crc32fast::hash(&bytes) as u16);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend(miniz_oxide::deflate::compress_to_vec(body, 6));
        bytes.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes
    }

    fn unpack(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Member::new(bytes, || Ok(())).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_header_whose_crc_does_not_match_is_refused_as_flate2_refuses_it() {
        let good = member(b"id.txt", |crc| crc, b"hello");
        assert_eq!(unpack(&good).unwrap(), b"hello");
        let bad = member(b"id.txt", |crc| crc ^ 1, b"hello");
        let error = unpack(&bad).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        assert!(error.to_string().contains("checksum"), "{error}");
        let mut flate2 = flate2::bufread::GzDecoder::new(&bad[..]);
        assert!(flate2.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn a_name_or_comment_over_65535_bytes_is_refused_as_flate2_refuses_it() {
        let longest = member(&vec![b'n'; 65535], |crc| crc, b"hello");
        assert_eq!(unpack(&longest).unwrap(), b"hello");
        let over = member(&vec![b'n'; 65536], |crc| crc, b"hello");
        let error = unpack(&over).unwrap_err();
        assert!(error.to_string().contains("too long"), "{error}");
        let mut flate2 = flate2::bufread::GzDecoder::new(&over[..]);
        assert!(flate2.read_to_end(&mut Vec::new()).is_err());
        let mut comment = member(&[], |crc| crc, b"hello");
        comment[3] = 16;
        comment.drain(10..13);
        comment.splice(10..10, vec![b'c'; 65536].into_iter().chain([0]));
        let error = unpack(&comment).unwrap_err();
        assert!(error.to_string().contains("too long"), "{error}");
    }
}
