//! OpenPGP packet framing (RFC 4880 §4.2): old- and new-format headers, definite, partial and
//! indeterminate body lengths, read from a counted stream.

use std::io::{self, Read};

use super::super::{from_io, to_io, ImportError, Result};

/// A readable layer of an OpenPGP message (the file, the dearmored data, the decrypted data, a
/// decompressed body), counting the bytes read for error offsets.
pub(crate) struct Src<'a> {
    inner: &'a mut dyn Read,
    pub(crate) offset: u64,
    pub(crate) what: &'static str,
}

impl<'a> Src<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read, what: &'static str) -> Self {
        Src {
            inner,
            offset: 0,
            what,
        }
    }

    pub(crate) fn malformed(&self, offset: u64, reason: impl Into<String>) -> ImportError {
        ImportError::Malformed {
            what: self.what,
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn truncated(&self, reason: impl Into<String>) -> ImportError {
        ImportError::Truncated {
            what: self.what,
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Turns an I/O error from this layer's reader into an importer error: our own errors pass
    /// through; anything else came from a decoder (deflate, bzip2) and means malformed data.
    pub(crate) fn classify(&self, err: io::Error) -> ImportError {
        let offset = self.offset;
        let what = self.what;
        from_io(err, |e| ImportError::Malformed {
            what,
            offset,
            reason: e.to_string(),
        })
    }

    /// Reads one byte, `None` at the end.
    pub(crate) fn byte(&mut self) -> Result<Option<u8>> {
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    self.offset += 1;
                    return Ok(Some(b[0]));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify(e)),
            }
        }
    }

    /// Reads one byte that must be there.
    pub(crate) fn need_byte(&mut self, what: &str) -> Result<u8> {
        match self.byte()? {
            Some(b) => Ok(b),
            None => Err(self.truncated(format!("the data ends inside {what}"))),
        }
    }

    /// Reads `buf.len()` bytes that must be there.
    pub(crate) fn need_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read_some(&mut buf[got..])?;
            if n == 0 {
                return Err(self.truncated(format!("the data ends inside {what}")));
            }
            got += n;
        }
        Ok(())
    }

    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify(e)),
            }
        }
    }
}

/// How a packet's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLen {
    /// Exactly this many bytes.
    Definite(u64),
    /// A chunk of this many bytes, then another length.
    Partial(u64),
    /// To the end of the enclosing data (old format, length type 3).
    Indeterminate,
}

/// A packet header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub tag: u8,
    pub len: BodyLen,
    /// Where the header starts in its layer.
    pub offset: u64,
}

/// Tags whose bodies may use partial lengths (RFC 4880 §4.2.2.4, plus AEAD 20).
fn may_be_partial(tag: u8) -> bool {
    matches!(tag, 8 | 9 | 11 | 18 | 20)
}

/// A packet type's name, for messages.
pub(crate) fn tag_name(tag: u8) -> &'static str {
    match tag {
        1 => "public-key encrypted session key",
        2 => "signature",
        3 => "symmetric-key encrypted session key",
        4 => "one-pass signature",
        5 => "secret key",
        6 => "public key",
        7 => "secret subkey",
        8 => "compressed data",
        9 => "symmetrically encrypted data",
        10 => "marker",
        11 => "literal data",
        12 => "trust",
        13 => "user id",
        14 => "public subkey",
        17 => "user attribute",
        18 => "symmetrically encrypted integrity protected data",
        19 => "modification detection code",
        20 => "AEAD encrypted data",
        21 => "padding",
        _ => "unknown",
    }
}

/// Reads a packet header; `None` at a clean end of the layer.
pub(crate) fn read_header(src: &mut Src<'_>) -> Result<Option<Header>> {
    let offset = src.offset;
    let Some(ctb) = src.byte()? else {
        return Ok(None);
    };
    if ctb & 0x80 == 0 {
        return Err(src.malformed(
            offset,
            format!("0x{ctb:02x} is not a packet header (its top bit is clear)"),
        ));
    }
    let (tag, len) = if ctb & 0x40 != 0 {
        let tag = ctb & 0x3F;
        (tag, read_new_len(src, Some(tag))?)
    } else {
        let tag = (ctb >> 2) & 0x0F;
        let len = match ctb & 3 {
            0 => BodyLen::Definite(u64::from(src.need_byte("a packet length")?)),
            1 => {
                let mut b = [0u8; 2];
                src.need_exact(&mut b, "a packet length")?;
                BodyLen::Definite(u64::from(u16::from_be_bytes(b)))
            }
            2 => {
                let mut b = [0u8; 4];
                src.need_exact(&mut b, "a packet length")?;
                BodyLen::Definite(u64::from(u32::from_be_bytes(b)))
            }
            _ => BodyLen::Indeterminate,
        };
        (tag, len)
    };
    if tag == 0 {
        return Err(src.malformed(offset, "packet tag 0 is reserved"));
    }
    Ok(Some(Header { tag, len, offset }))
}

/// Reads a new-format length; `tag` is `Some` for a packet's first length (partial lengths are
/// allowed only for data packets), `None` for the lengths after a partial chunk.
fn read_new_len(src: &mut Src<'_>, tag: Option<u8>) -> Result<BodyLen> {
    let at = src.offset;
    let o1 = src.need_byte("a packet length")?;
    Ok(match o1 {
        0..=191 => BodyLen::Definite(u64::from(o1)),
        192..=223 => {
            let o2 = src.need_byte("a packet length")?;
            BodyLen::Definite(((u64::from(o1) - 192) << 8) + u64::from(o2) + 192)
        }
        255 => {
            let mut b = [0u8; 4];
            src.need_exact(&mut b, "a packet length")?;
            BodyLen::Definite(u64::from(u32::from_be_bytes(b)))
        }
        _ => {
            if let Some(tag) = tag {
                if !may_be_partial(tag) {
                    return Err(src.malformed(
                        at,
                        format!(
                            "a {} packet (tag {tag}) may not have a partial body length",
                            tag_name(tag)
                        ),
                    ));
                }
            }
            BodyLen::Partial(1u64 << (o1 & 0x1F))
        }
    })
}

/// A packet's body as a reader: follows partial-length chunks, stops at a definite length, or
/// reads to the end of the layer for an indeterminate length.
pub(crate) struct Body<'s, 'a> {
    src: &'s mut Src<'a>,
    remaining: u64,
    partial: bool,
    indeterminate: bool,
    done: bool,
}

impl<'s, 'a> Body<'s, 'a> {
    pub(crate) fn new(src: &'s mut Src<'a>, len: BodyLen) -> Self {
        let (remaining, partial, indeterminate) = match len {
            BodyLen::Definite(n) => (n, false, false),
            BodyLen::Partial(n) => (n, true, false),
            BodyLen::Indeterminate => (0, false, true),
        };
        Body {
            src,
            remaining,
            partial,
            indeterminate,
            done: false,
        }
    }

    /// The layer this body is read from.
    pub(crate) fn src(&self) -> &Src<'a> {
        self.src
    }

    /// Reads `buf.len()` bytes that must be in the body.
    pub(crate) fn need_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read_body(&mut buf[got..])?;
            if n == 0 {
                return Err(self.src.truncated(format!("the data ends inside {what}")));
            }
            got += n;
        }
        Ok(())
    }

    /// Reads the rest of the body, returning how many bytes were skipped.
    pub(crate) fn drain(&mut self) -> Result<u64> {
        let mut buf = [0u8; 8192];
        let mut total = 0u64;
        loop {
            match self.read_body(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }

    /// Reads body bytes; 0 at the end of the body.
    pub(crate) fn read_body(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.indeterminate {
            let n = self.src.read_some(buf)?;
            if n == 0 {
                self.done = true;
            }
            return Ok(n);
        }
        while self.remaining == 0 {
            if !self.partial {
                self.done = true;
                return Ok(0);
            }
            match read_new_len(self.src, None)? {
                BodyLen::Partial(n) => self.remaining = n,
                BodyLen::Definite(n) => {
                    self.remaining = n;
                    self.partial = false;
                }
                BodyLen::Indeterminate => {
                    // read_new_len never returns it.
                    return Err(self.src.malformed(self.src.offset, "invalid length"));
                }
            }
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.src.read_some(&mut buf[..want])?;
        if n == 0 {
            return Err(self
                .src
                .truncated(format!("a packet body ends {} bytes early", self.remaining)));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl Read for Body<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_body(buf).map_err(to_io)
    }
}
