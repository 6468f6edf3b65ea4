//! Incremental base64 decoding for Fernet tokens (URL-safe alphabet) and ASCII armor (standard
//! alphabet). Both alphabets are accepted, as Python's `base64.urlsafe_b64decode` does; ASCII
//! whitespace is skipped anywhere; padding is optional but nothing may follow it.

const INVALID: u8 = 0xFF;
const SPACE: u8 = 0xFE;
const PAD: u8 = 0xFD;

const TABLE: [u8; 256] = build_table();

const fn build_table() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    t[b'+' as usize] = 62;
    t[b'-' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'_' as usize] = 63;
    t[b'=' as usize] = PAD;
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[b'\n' as usize] = SPACE;
    t[b'\r' as usize] = SPACE;
    t
}

/// Why base64 text could not be decoded, and where (offset in the text).
#[derive(Debug)]
pub(crate) struct B64Error {
    pub offset: u64,
    pub reason: String,
}

/// A streaming base64 decoder.
#[derive(Debug, Default)]
pub(crate) struct B64Decoder {
    quad: [u8; 4],
    filled: usize,
    /// `=` characters seen; after the first, only `=` (at most two in all) and whitespace follow.
    pads: usize,
    /// Text bytes fed so far.
    consumed: u64,
}

impl B64Decoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Text bytes fed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Decodes `text`, appending bytes to `out`.
    pub(crate) fn feed(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result<(), B64Error> {
        out.reserve(text.len() / 4 * 3 + 3);
        for (i, &c) in text.iter().enumerate() {
            let v = TABLE[c as usize];
            if v < 64 {
                if self.pads > 0 {
                    return Err(self.error(i, "data after the '=' padding"));
                }
                self.quad[self.filled] = v;
                self.filled += 1;
                if self.filled == 4 {
                    let q = self.quad;
                    out.extend_from_slice(&[
                        (q[0] << 2) | (q[1] >> 4),
                        (q[1] << 4) | (q[2] >> 2),
                        (q[2] << 6) | q[3],
                    ]);
                    self.filled = 0;
                }
            } else if v == SPACE {
                continue;
            } else if v == PAD {
                if self.pads == 0 {
                    if self.filled < 2 {
                        return Err(self.error(i, "misplaced '=' padding"));
                    }
                    self.flush_partial(out);
                }
                self.pads += 1;
                if self.pads > 2 {
                    return Err(self.error(i, "too much '=' padding"));
                }
            } else {
                let shown = if c.is_ascii_graphic() {
                    format!("'{}'", c as char)
                } else {
                    format!("0x{c:02x}")
                };
                return Err(self.error(i, &format!("{shown} is not a base64 character")));
            }
        }
        self.consumed += text.len() as u64;
        Ok(())
    }

    /// Ends the text: decodes a final unpadded group.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), B64Error> {
        match self.filled {
            0 => Ok(()),
            1 => Err(B64Error {
                offset: self.consumed,
                reason: "the base64 text ends with a lone character (truncated)".into(),
            }),
            _ => {
                self.flush_partial(out);
                Ok(())
            }
        }
    }

    fn flush_partial(&mut self, out: &mut Vec<u8>) {
        let q = self.quad;
        match self.filled {
            2 => out.push((q[0] << 2) | (q[1] >> 4)),
            3 => out.extend_from_slice(&[(q[0] << 2) | (q[1] >> 4), (q[1] << 4) | (q[2] >> 2)]),
            _ => {}
        }
        self.filled = 0;
    }

    fn error(&self, index: usize, reason: &str) -> B64Error {
        B64Error {
            offset: self.consumed + index as u64,
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use base64::Engine;

    fn decode_in_pieces(text: &[u8], piece: usize) -> Result<Vec<u8>, B64Error> {
        let mut d = B64Decoder::new();
        let mut out = Vec::new();
        for chunk in text.chunks(piece.max(1)) {
            d.feed(chunk, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn matches_the_base64_crate_in_any_split() {
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for len in 0..70usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for engine in &engines {
                let text = engine.encode(&data);
                for piece in [1, 2, 3, 5, 64] {
                    assert_eq!(decode_in_pieces(text.as_bytes(), piece).unwrap(), data);
                }
            }
        }
    }

    #[test]
    fn skips_whitespace_and_reports_offsets() {
        assert_eq!(decode_in_pieces(b"QU\nJD\r\n", 3).unwrap(), b"ABC");
        let err = decode_in_pieces(b"QUJD*", 2).unwrap_err();
        assert_eq!(err.offset, 4);
        assert!(decode_in_pieces(b"QQ==QQ==", 8).is_err());
        assert!(decode_in_pieces(b"Q", 8).is_err());
        assert!(decode_in_pieces(b"Q===", 8).is_err());
    }
}
