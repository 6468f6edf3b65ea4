//! ASCII armor (RFC 4880 §6): `-----BEGIN PGP MESSAGE-----`, optional headers, a blank line,
//! base64 lines, an optional `=XXXX` CRC-24 line, `-----END PGP MESSAGE-----`. Decoded as a
//! stream, line by line, with bounded line length and header count.

use std::io::{self, BufRead, Read};

use super::super::b64::B64Decoder;
use super::super::{to_io, ImportError, Result};

const WHAT: &str = "ASCII-armored OpenPGP file";
/// Longest armor line accepted (gpg writes 64 characters; headers may be longer).
const MAX_LINE: usize = 4096;
/// Most header lines (and blank lines before the BEGIN line) accepted.
const MAX_HEADERS: usize = 64;
const BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const END: &[u8] = b"-----END PGP MESSAGE-----";

const CRC24_INIT: u32 = 0x00B7_04CE;
const CRC24_POLY: u32 = 0x0186_4CFB;
const CRC24_TABLE: [u32; 256] = build_crc_table();

const fn build_crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 16;
        let mut bit = 0;
        while bit < 8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= CRC24_POLY;
            }
            bit += 1;
        }
        table[i] = crc & 0x00FF_FFFF;
        i += 1;
    }
    table
}

fn crc24_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = ((crc << 8) ^ CRC24_TABLE[(((crc >> 16) as u8) ^ b) as usize]) & 0x00FF_FFFF;
    }
    crc
}

/// Whether `start` (the first bytes of a file) looks like ASCII armor.
pub(crate) fn looks_armored(start: &[u8]) -> bool {
    let trimmed = start.trim_ascii_start();
    trimmed.starts_with(b"-----")
}

/// The dearmored binary data as a reader.
pub(crate) struct ArmorReader<R> {
    inner: R,
    line: Vec<u8>,
    line_no: u64,
    b64: B64Decoder,
    decoded: Vec<u8>,
    pos: usize,
    crc: u32,
    done: bool,
}

impl<R: BufRead> ArmorReader<R> {
    /// Reads the BEGIN line and the headers.
    pub(crate) fn new(inner: R) -> Result<Self> {
        let mut reader = ArmorReader {
            inner,
            line: Vec::with_capacity(128),
            line_no: 0,
            b64: B64Decoder::new(),
            decoded: Vec::with_capacity(super::super::CHUNK),
            pos: 0,
            crc: CRC24_INIT,
            done: false,
        };
        // The BEGIN line, after at most a few blank lines.
        let mut skipped = 0;
        loop {
            if !reader.next_line()? {
                return Err(ImportError::NotOpenPgp {
                    reason: "the text has no -----BEGIN PGP MESSAGE----- line".into(),
                });
            }
            let line = reader.line.trim_ascii();
            if line.is_empty() && skipped < MAX_HEADERS {
                skipped += 1;
                continue;
            }
            if line == BEGIN {
                break;
            }
            let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned();
            return Err(if line.starts_with(b"-----BEGIN PGP ") {
                ImportError::NotOpenPgp {
                    reason: format!("the armor is \"{shown}\", not an encrypted PGP MESSAGE"),
                }
            } else {
                ImportError::NotOpenPgp {
                    reason: format!(
                        "line {} is \"{shown}\", not -----BEGIN PGP MESSAGE-----",
                        reader.line_no
                    ),
                }
            });
        }
        // Headers ("Key: value") up to a blank line.
        let mut headers = 0;
        loop {
            if !reader.next_line()? {
                return Err(reader.truncated("the armor ends in its headers"));
            }
            let line = reader.line.trim_ascii();
            if line.is_empty() {
                break;
            }
            if !line.contains(&b':') {
                // No blank line after the BEGIN line: this is already base64.
                let body = reader.line.clone();
                reader.body_line(&body)?;
                break;
            }
            headers += 1;
            if headers > MAX_HEADERS {
                return Err(ImportError::LimitExceeded {
                    what: format!("more than {MAX_HEADERS} armor header lines"),
                });
            }
        }
        Ok(reader)
    }

    fn truncated(&self, reason: &str) -> ImportError {
        ImportError::Truncated {
            what: WHAT,
            offset: self.line_no,
            reason: format!("{reason} (line {})", self.line_no),
        }
    }

    fn malformed(&self, reason: String) -> ImportError {
        ImportError::Malformed {
            what: WHAT,
            offset: self.b64.consumed(),
            reason: format!("line {}: {reason}", self.line_no),
        }
    }

    /// Reads the next line into `self.line` (without its end); false at the end of input.
    fn next_line(&mut self) -> Result<bool> {
        self.line.clear();
        let mut any = false;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(super::super::from_io(e, |source| ImportError::Read {
                        source,
                    }))
                }
            };
            if buf.is_empty() {
                if any {
                    self.line_no += 1;
                }
                return Ok(any);
            }
            any = true;
            let (take, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if self.line.len() + take > MAX_LINE + 2 {
                return Err(ImportError::LimitExceeded {
                    what: format!(
                        "an armor line longer than {MAX_LINE} bytes (line {})",
                        self.line_no + 1
                    ),
                });
            }
            self.line.extend_from_slice(&buf[..take]);
            self.inner.consume(take);
            if found {
                self.line.pop();
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                self.line_no += 1;
                return Ok(true);
            }
        }
    }

    fn body_line(&mut self, line: &[u8]) -> Result<()> {
        let before = self.decoded.len();
        if let Err(e) = self.b64.feed(line, &mut self.decoded) {
            return Err(self.malformed(e.reason));
        }
        self.crc = crc24_update(self.crc, &self.decoded[before..]);
        Ok(())
    }

    /// Decodes lines until some bytes are available or the armor ends.
    fn fill(&mut self) -> Result<()> {
        while self.pos >= self.decoded.len() && !self.done {
            self.decoded.clear();
            self.pos = 0;
            if !self.next_line()? {
                return Err(self.truncated("the armor has no -----END PGP MESSAGE----- line"));
            }
            let line = self.line.trim_ascii_end().to_vec();
            if line.starts_with(b"-----") {
                self.end(&line, None)?;
            } else if line.len() == 5 && line[0] == b'=' {
                let mut crc_bytes = Vec::with_capacity(3);
                let mut dec = B64Decoder::new();
                dec.feed(&line[1..], &mut crc_bytes)
                    .and_then(|()| dec.finish(&mut crc_bytes))
                    .map_err(|e| self.malformed(format!("bad CRC line: {}", e.reason)))?;
                let expected = crc_bytes
                    .iter()
                    .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
                if !self.next_line()? {
                    return Err(self.truncated("the armor has no -----END PGP MESSAGE----- line"));
                }
                let end = self.line.trim_ascii_end().to_vec();
                self.end(&end, Some(expected))?;
            } else {
                self.body_line(&line)?;
            }
        }
        Ok(())
    }

    fn end(&mut self, line: &[u8], expected_crc: Option<u32>) -> Result<()> {
        if line != END {
            return Err(self.malformed(format!(
                "expected -----END PGP MESSAGE-----, found \"{}\"",
                String::from_utf8_lossy(&line[..line.len().min(60)])
            )));
        }
        let before = self.decoded.len();
        if let Err(e) = self.b64.finish(&mut self.decoded) {
            return Err(self.malformed(e.reason));
        }
        self.crc = crc24_update(self.crc, &self.decoded[before..]);
        if let Some(expected) = expected_crc {
            if expected != self.crc {
                return Err(ImportError::Modified {
                    reason: format!(
                        "the armor's CRC-24 is {expected:06x}, the data's is {:06x}",
                        self.crc
                    ),
                });
            }
        }
        self.done = true;
        Ok(())
    }
}

impl<R: BufRead> Read for ArmorReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fill().map_err(to_io)?;
        let n = (self.decoded.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.decoded[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn crc24_of_known_input() {
        // CRC-24 of "123456789" with the OpenPGP parameters is 0x21CF02.
        assert_eq!(crc24_update(CRC24_INIT, b"123456789"), 0x0021_CF02);
    }

    #[test]
    fn dearmors_and_checks_crc() {
        let text = b"-----BEGIN PGP MESSAGE-----\nComment: x\n\nQUJD\nREVG\n=";
        let crc = crc24_update(CRC24_INIT, b"ABCDEF");
        let crc_b64 = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [(crc >> 16) as u8, (crc >> 8) as u8, crc as u8],
        );
        let mut full = text.to_vec();
        full.extend_from_slice(crc_b64.as_bytes());
        full.extend_from_slice(b"\n-----END PGP MESSAGE-----\n");
        let mut r = ArmorReader::new(&full[..]).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ABCDEF");

        let bad = String::from_utf8(full).unwrap().replace("REVG", "REVH");
        let mut r = ArmorReader::new(bad.as_bytes()).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());

        assert!(ArmorReader::new(&b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n"[..]).is_err());
    }
}
