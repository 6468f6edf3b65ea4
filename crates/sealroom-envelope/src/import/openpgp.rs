//! OpenPGP symmetric files, as made by `gpg --symmetric` (RFC 4880), decrypted as a stream.
//!
//! Supported: binary or ASCII-armored input; old- and new-format packets with definite, partial
//! and indeterminate lengths; symmetric-key encrypted session key packets (version 4) with simple,
//! salted or iterated+salted S2K over SHA-1/224/256/384/512, with or without an encrypted session
//! key; AES-128/192/256 in Symmetrically Encrypted Integrity Protected Data packets (tag 18,
//! version 1: CFB with the quick check, and the MDC's SHA-1 over everything, compared in constant
//! time); compressed data (uncompressed, ZIP, ZLIB, BZip2), nested up to [`Limits::max_depth`];
//! literal data packets.
//!
//! Refused with an error that says so: Symmetrically Encrypted Data without integrity protection
//! (tag 9), AEAD packets (tag 20, and SEIPD version 2), files encrypted to public keys, signed
//! messages, ciphers other than AES.
//!
//! [`decrypt`] writes the literal data to the caller's sink as it decrypts, and returns `Ok` only
//! after the MDC at the end verified; on any error the caller must discard what was written.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;

use aws_lc_rs::cipher::{self, DecryptionContext, StreamingDecryptingKey, UnboundCipherKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use super::{from_io, to_io, ImportError, Limits, Result, SourceReader, CHUNK};
use packet::{read_header, tag_name, Body, Header, Src};
use s2k::S2k;

mod armor;
mod packet;
mod s2k;

/// Most packets before the encrypted data packet (session keys, markers).
const MAX_LEADING_PACKETS: usize = 32;
/// Most symmetric-key session key packets tried (each costs an S2K derivation).
const MAX_SKESKS: usize = 8;
/// Largest session key packet accepted (a v4 SKESK is at most about 50 bytes).
const MAX_SKESK_LEN: u64 = 512;
/// Largest public-key session key or marker packet skipped.
const MAX_SKIPPED_LEN: u64 = 64 * 1024;
/// AES's block size; SEIPD's random prefix is one block plus two quick-check bytes.
const BLOCK: usize = 16;
const PREFIX_LEN: usize = BLOCK + 2;
/// The MDC packet: 0xD3, 0x14 (tag 19, length 20), then SHA-1.
const MDC_LEN: usize = 22;

/// The symmetric ciphers this importer decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymmetricAlgorithm {
    /// AES with a 128-bit key (OpenPGP id 7).
    Aes128,
    /// AES with a 192-bit key (OpenPGP id 8).
    Aes192,
    /// AES with a 256-bit key (OpenPGP id 9).
    Aes256,
}

impl SymmetricAlgorithm {
    fn from_id(id: u8) -> Result<Self> {
        let name = match id {
            7 => return Ok(Self::Aes128),
            8 => return Ok(Self::Aes192),
            9 => return Ok(Self::Aes256),
            0 => "plaintext",
            1 => "IDEA",
            2 => "TripleDES",
            3 => "CAST5",
            4 => "Blowfish",
            10 => "Twofish",
            11 => "Camellia-128",
            12 => "Camellia-192",
            13 => "Camellia-256",
            _ => "unknown",
        };
        Err(ImportError::Unsupported {
            what: format!(
                "cipher {name} (OpenPGP id {id}); only AES-128, AES-192 and AES-256 are supported (gpg --cipher-algo AES256)"
            ),
        })
    }

    fn key_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }

    fn aws(self) -> &'static cipher::Algorithm {
        match self {
            Self::Aes128 => &cipher::AES_128,
            Self::Aes192 => &cipher::AES_192,
            Self::Aes256 => &cipher::AES_256,
        }
    }

    /// The name gpg uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128 => "AES",
            Self::Aes192 => "AES192",
            Self::Aes256 => "AES256",
        }
    }
}

/// The compression of a compressed data packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Algorithm 0: stored.
    Uncompressed,
    /// Algorithm 1: raw deflate (gpg's default).
    Zip,
    /// Algorithm 2: zlib.
    Zlib,
    /// Algorithm 3: bzip2.
    Bzip2,
}

/// What [`decrypt`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPgpSummary {
    /// The cipher the data was encrypted with.
    pub cipher: SymmetricAlgorithm,
    /// The outermost compressed packet's algorithm, `None` when there was none.
    pub compression: Option<Compression>,
    /// Whether the input was ASCII armor.
    pub armored: bool,
    /// The file name stored in the literal data packet (as gpg wrote it; not a path to trust).
    pub file_name: Vec<u8>,
    /// The literal data packet's format byte (`b'b'` binary, `b't'` text, `b'u'` UTF-8).
    pub literal_format: u8,
    /// The literal data packet's date (seconds since the Unix epoch; 0 if unset).
    pub modified: u32,
    /// Plaintext bytes written.
    pub plaintext_len: u64,
    /// Input bytes read.
    pub input_len: u64,
}

/// Decrypts the OpenPGP symmetric file read from `input` with `passphrase`, writing the literal
/// data to `output`.
///
/// Plaintext reaches `output` before the MDC at the end of the file is checked; on any error the
/// caller must discard what was written.
pub fn decrypt<R: Read, W: Write>(
    passphrase: &[u8],
    input: R,
    mut output: W,
    limits: &Limits,
) -> Result<OpenPgpSummary> {
    let source = SourceReader::new(input);
    let consumed = source.count.clone();
    let mut reader = BufReader::with_capacity(CHUNK, source);
    let (armored, first) = loop {
        match reader.fill_buf() {
            Ok([]) => {
                return Err(ImportError::NotOpenPgp {
                    reason: "the input is empty".into(),
                })
            }
            Ok(start) => break (armor::looks_armored(start), start[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(from_io(e, |source| ImportError::Read { source })),
        }
    };
    let mut info = Info::default();
    let mut sink = Sink {
        out: &mut output,
        written: 0,
        limits: *limits,
        consumed: consumed.clone(),
    };
    if armored {
        let mut dearmored = armor::ArmorReader::new(reader)?;
        let mut src = Src::new(&mut dearmored, "dearmored OpenPGP data");
        decrypt_message(&mut src, passphrase, &mut sink, limits, &mut info)?;
    } else {
        if first & 0x80 == 0 {
            return Err(ImportError::NotOpenPgp {
                reason: format!(
                    "it starts with byte 0x{first:02x}, which begins neither an OpenPGP packet nor ASCII armor"
                ),
            });
        }
        let mut src = Src::new(&mut reader, "OpenPGP file");
        decrypt_message(&mut src, passphrase, &mut sink, limits, &mut info)?;
    }
    let plaintext_len = sink.written;
    output
        .flush()
        .map_err(|source| ImportError::Write { source })?;
    Ok(OpenPgpSummary {
        cipher: info.cipher.unwrap_or(SymmetricAlgorithm::Aes256),
        compression: info.compression,
        armored,
        file_name: info.file_name,
        literal_format: info.literal_format,
        modified: info.modified,
        plaintext_len,
        input_len: consumed.get(),
    })
}

#[derive(Debug, Default)]
struct Info {
    cipher: Option<SymmetricAlgorithm>,
    compression: Option<Compression>,
    file_name: Vec<u8>,
    literal_format: u8,
    modified: u32,
}

/// The caller's output, with the output and ratio limits.
struct Sink<'w> {
    out: &'w mut dyn Write,
    written: u64,
    limits: Limits,
    consumed: Rc<Cell<u64>>,
}

impl Sink<'_> {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let total = self.written + data.len() as u64;
        if total > self.limits.max_output {
            return Err(ImportError::LimitExceeded {
                what: format!(
                    "the plaintext is larger than the output limit of {} bytes",
                    self.limits.max_output
                ),
            });
        }
        let ratio = self.limits.max_ratio;
        if ratio > 0 && total > Limits::RATIO_GRACE && total / self.consumed.get().max(1) > ratio {
            return Err(ImportError::LimitExceeded {
                what: format!(
                    "the plaintext is more than {ratio} times the size of the input read so far (a compression bomb?); raise or turn off the ratio limit if the file is genuine"
                ),
            });
        }
        self.out
            .write_all(data)
            .map_err(|source| ImportError::Write { source })?;
        self.written = total;
        Ok(())
    }
}

/// A version 4 symmetric-key encrypted session key packet.
struct Skesk {
    cipher: SymmetricAlgorithm,
    s2k: S2k,
    esk: Vec<u8>,
}

/// The top level: session key packets, then the encrypted data packet.
fn decrypt_message(
    src: &mut Src<'_>,
    passphrase: &[u8],
    sink: &mut Sink<'_>,
    limits: &Limits,
    info: &mut Info,
) -> Result<()> {
    let mut skesks = Vec::new();
    let mut skesk_error = None;
    let mut saw_pkesk = false;
    let mut count = 0;
    loop {
        let Some(h) = read_header(src).map_err(|e| first_packet_error(e, count))? else {
            return Err(if count == 0 {
                ImportError::NotOpenPgp {
                    reason: "the input holds no packets".into(),
                }
            } else {
                src.truncated("the file ends before its encrypted data packet")
            });
        };
        count += 1;
        if count > MAX_LEADING_PACKETS {
            return Err(ImportError::LimitExceeded {
                what: format!("more than {MAX_LEADING_PACKETS} packets before the encrypted data"),
            });
        }
        match h.tag {
            3 => {
                let body = read_small_body(src, &h, MAX_SKESK_LEN)?;
                if skesks.len() >= MAX_SKESKS {
                    return Err(ImportError::LimitExceeded {
                        what: format!("more than {MAX_SKESKS} symmetric-key session key packets"),
                    });
                }
                match parse_skesk(&body, src, &h, limits) {
                    Ok(s) => skesks.push(s),
                    // Another packet may be usable; report this one only if none is.
                    Err(e @ (ImportError::Unsupported { .. } | ImportError::LimitExceeded { .. })) => {
                        skesk_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            1 => {
                saw_pkesk = true;
                read_small_body(src, &h, MAX_SKIPPED_LEN)?;
            }
            10 => {
                read_small_body(src, &h, MAX_SKIPPED_LEN)?;
            }
            18 => {
                if skesks.is_empty() {
                    return Err(if let Some(e) = skesk_error {
                        e
                    } else if saw_pkesk {
                        ImportError::Unsupported {
                            what: "a file encrypted to a public key (gpg --encrypt); only passphrase-encrypted files (gpg --symmetric) can be imported".into(),
                        }
                    } else {
                        src.malformed(h.offset, "an encrypted data packet without a session key packet before it")
                    });
                }
                decrypt_seipd(src, &h, &skesks, passphrase, sink, limits, info)?;
                if h.len != packet::BodyLen::Indeterminate {
                    let at = src.offset;
                    if let Some(next) = read_header(src)? {
                        return Err(src.malformed(
                            at,
                            format!(
                                "a {} packet (tag {}) after the encrypted data",
                                tag_name(next.tag),
                                next.tag
                            ),
                        ));
                    }
                }
                return Ok(());
            }
            9 => return Err(ImportError::Unprotected),
            20 => {
                return Err(ImportError::Unsupported {
                    what: "an AEAD encrypted data packet (tag 20, OCB/EAX, written by GnuPG 2.3+ with AEAD preferences); re-encrypt with gpg --rfc4880 --symmetric".into(),
                })
            }
            t if count == 1 => {
                return Err(ImportError::NotOpenPgp {
                    reason: format!("it begins with a {} packet (tag {t}), not an encrypted message", tag_name(t)),
                })
            }
            t => {
                return Err(src.malformed(
                    h.offset,
                    format!("a {} packet (tag {t}) before the encrypted data", tag_name(t)),
                ))
            }
        }
    }
}

/// A malformed first packet header means the input is not OpenPGP at all.
fn first_packet_error(e: ImportError, count: usize) -> ImportError {
    match e {
        ImportError::Malformed { reason, .. } if count == 0 => ImportError::NotOpenPgp { reason },
        other => other,
    }
}

fn read_small_body(src: &mut Src<'_>, h: &Header, max: u64) -> Result<Vec<u8>> {
    let packet::BodyLen::Definite(len) = h.len else {
        return Err(src.malformed(
            h.offset,
            format!("a {} packet without a definite length", tag_name(h.tag)),
        ));
    };
    if len > max {
        return Err(ImportError::LimitExceeded {
            what: format!(
                "a {} packet of {len} bytes at byte {} (at most {max} accepted)",
                tag_name(h.tag),
                h.offset
            ),
        });
    }
    let mut body = vec![0u8; len as usize];
    src.need_exact(&mut body, &format!("a {} packet", tag_name(h.tag)))?;
    Ok(body)
}

fn parse_skesk(body: &[u8], src: &Src<'_>, h: &Header, limits: &Limits) -> Result<Skesk> {
    let short = || {
        src.malformed(
            h.offset,
            "a symmetric-key session key packet that is too short",
        )
    };
    let version = *body.first().ok_or_else(short)?;
    match version {
        4 => {}
        5 | 6 => {
            return Err(ImportError::Unsupported {
                what: format!(
                    "a version {version} symmetric-key session key packet (AEAD, from GnuPG 2.3+ or RFC 9580)"
                ),
            })
        }
        v => {
            return Err(src.malformed(
                h.offset,
                format!("symmetric-key session key packet version {v} (4 expected)"),
            ))
        }
    }
    let cipher = SymmetricAlgorithm::from_id(*body.get(1).ok_or_else(short)?)?;
    let (s2k, used) = S2k::parse(&body[2..], limits).map_err(|e| match e {
        s2k::ParseError::Short => short(),
        s2k::ParseError::Other(e) => e,
    })?;
    let esk = body[2 + used..].to_vec();
    if esk.len() > 1 + 32 {
        return Err(src.malformed(
            h.offset,
            format!(
                "an encrypted session key of {} bytes (at most 33)",
                esk.len()
            ),
        ));
    }
    Ok(Skesk { cipher, s2k, esk })
}

/// Decrypts `data` with AES-CFB under a zero IV (OpenPGP's CFB without resynchronisation).
fn cfb_decrypt(alg: SymmetricAlgorithm, key: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut dec = cfb_decryptor(alg, key)?;
    let mut out = Zeroizing::new(vec![0u8; data.len() + BLOCK]);
    let n = dec
        .update(data, &mut out)
        .map_err(|_| internal())?
        .written()
        .len();
    out.truncate(n);
    Ok(out)
}

fn cfb_decryptor(alg: SymmetricAlgorithm, key: &[u8]) -> Result<StreamingDecryptingKey> {
    let unbound = UnboundCipherKey::new(alg.aws(), key).map_err(|_| internal())?;
    StreamingDecryptingKey::cfb128(
        unbound,
        DecryptionContext::Iv128(FixedLength::from([0u8; 16])),
    )
    .map_err(|_| internal())
}

/// aws-lc-rs refused an operation whose inputs we sized correctly (an invariant, not input).
fn internal() -> ImportError {
    ImportError::Unsupported {
        what: "the AES-CFB implementation refused an operation (internal error)".into(),
    }
}

/// The session key a SKESK packet yields for `passphrase`.
fn session_key(sk: &Skesk, passphrase: &[u8]) -> Result<(SymmetricAlgorithm, Zeroizing<Vec<u8>>)> {
    let kek = sk.s2k.derive(passphrase, sk.cipher.key_len());
    if sk.esk.is_empty() {
        return Ok((sk.cipher, kek));
    }
    let plain = cfb_decrypt(sk.cipher, &kek, &sk.esk)?;
    let wrong = || ImportError::WrongPassphrase {
        reason: "the decrypted session key is not a valid key".into(),
    };
    let alg =
        SymmetricAlgorithm::from_id(*plain.first().ok_or_else(wrong)?).map_err(|_| wrong())?;
    if plain.len() != 1 + alg.key_len() {
        return Err(wrong());
    }
    Ok((alg, Zeroizing::new(plain[1..].to_vec())))
}

/// Decrypts a SEIPD v1 packet and parses the message inside.
fn decrypt_seipd(
    src: &mut Src<'_>,
    h: &Header,
    skesks: &[Skesk],
    passphrase: &[u8],
    sink: &mut Sink<'_>,
    limits: &Limits,
    info: &mut Info,
) -> Result<()> {
    let mut body = Body::new(src, h.len);
    let mut version = [0u8; 1];
    body.need_exact(&mut version, "the encrypted data packet")?;
    match version[0] {
        1 => {}
        2 => {
            return Err(ImportError::Unsupported {
                what: "an encrypted data packet of version 2 (RFC 9580 AEAD); re-encrypt with gpg --symmetric (GnuPG 2.2/2.4)".into(),
            })
        }
        v => {
            return Err(body.src().malformed(
                h.offset,
                format!("encrypted data packet version {v} (1 expected)"),
            ))
        }
    }
    let mut prefix = [0u8; PREFIX_LEN];
    body.need_exact(&mut prefix, "the encrypted data's prefix")?;

    let mut chosen = None;
    let mut last_error = None;
    for sk in skesks {
        match session_key(sk, passphrase) {
            Ok((alg, key)) => {
                let plain = cfb_decrypt(alg, &key, &prefix)?;
                if plain.len() == PREFIX_LEN && plain[BLOCK - 2..BLOCK] == plain[BLOCK..] {
                    chosen = Some((alg, key));
                    break;
                }
                last_error = Some(ImportError::WrongPassphrase {
                    reason: "the session key check fails (or the file's first encrypted bytes were modified)".into(),
                });
            }
            Err(e @ ImportError::WrongPassphrase { .. }) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    let Some((alg, key)) = chosen else {
        return Err(last_error.unwrap_or(ImportError::WrongPassphrase {
            reason: "no session key packet matches".into(),
        }));
    };
    info.cipher = Some(alg);
    let mut dec = cfb_decryptor(alg, &key)?;
    drop(key);
    let mut sha1 = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    let mut scratch = Zeroizing::new(vec![0u8; CHUNK + BLOCK]);
    let n = dec
        .update(&prefix, &mut scratch)
        .map_err(|_| internal())?
        .written()
        .len();
    sha1.update(&scratch[..n]);

    let mut seipd = SeipdReader {
        body,
        dec,
        sha1: Some(sha1),
        ct: vec![0u8; CHUNK],
        scratch,
        buf: Zeroizing::new(Vec::with_capacity(CHUNK + BLOCK + MDC_LEN)),
        start: 0,
        verified: false,
    };
    let result = {
        let mut inner = Src::new(&mut seipd, "decrypted OpenPGP data");
        read_message(&mut inner, 0, sink, limits, info)
    };
    match result {
        Ok(()) => {
            // Normally the message parser already read to the end; this checks the MDC if not.
            seipd.finish()
        }
        Err(e) => {
            // A parse error inside the encrypted data is most likely a modification: if the MDC
            // confirms that, say so (it is the cause); otherwise report the parse error.
            if matches!(
                e,
                ImportError::Malformed { .. }
                    | ImportError::Truncated { .. }
                    | ImportError::Unsupported { .. }
            ) {
                if let Err(mdc @ ImportError::Modified { .. }) = seipd.finish() {
                    return Err(mdc);
                }
            }
            Err(e)
        }
    }
}

/// The decrypted contents of a SEIPD packet, less the trailing MDC packet, which is checked when
/// the end is reached (before the reader reports the end).
struct SeipdReader<'s, 'a> {
    body: Body<'s, 'a>,
    dec: StreamingDecryptingKey,
    sha1: Option<digest::Context>,
    ct: Vec<u8>,
    scratch: Zeroizing<Vec<u8>>,
    /// Decrypted bytes not yet returned; the last 22 may be the MDC packet.
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    verified: bool,
}

impl SeipdReader<'_, '_> {
    fn read_inner(&mut self, out: &mut [u8]) -> Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.verified {
                return Ok(0);
            }
            let avail = self.buf.len() - self.start;
            if avail > MDC_LEN {
                let n = (avail - MDC_LEN).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
                if let Some(sha1) = self.sha1.as_mut() {
                    sha1.update(&out[..n]);
                }
                self.start += n;
                return Ok(n);
            }
            self.buf.drain(..self.start);
            self.start = 0;
            let n = self.body.read_body(&mut self.ct)?;
            if n == 0 {
                self.verify()?;
                return Ok(0);
            }
            let plain = self
                .dec
                .update(&self.ct[..n], &mut self.scratch)
                .map_err(|_| internal())?;
            self.buf.extend_from_slice(plain.written());
        }
    }

    /// Checks the MDC packet in the last 22 bytes.
    fn verify(&mut self) -> Result<()> {
        let tail = &self.buf[self.start..];
        if tail.len() < MDC_LEN {
            return Err(ImportError::Modified {
                reason: "the encrypted data ends without its modification detection code (it was truncated)".into(),
            });
        }
        if tail[..2] != [0xD3, 0x14] {
            return Err(ImportError::Modified {
                reason: "the encrypted data does not end with a modification detection code packet (truncated or modified)".into(),
            });
        }
        let mut sha1 = self.sha1.take().ok_or_else(internal)?;
        sha1.update(&tail[..2]);
        let digest = sha1.finish();
        if verify_slices_are_equal(digest.as_ref(), &tail[2..MDC_LEN]).is_err() {
            return Err(ImportError::Modified {
                reason: "the modification detection code (SHA-1) does not match the decrypted data"
                    .into(),
            });
        }
        self.buf.clear();
        self.start = 0;
        self.verified = true;
        Ok(())
    }

    /// Reads (and discards) whatever the message parser left, then requires a verified MDC.
    fn finish(&mut self) -> Result<()> {
        let mut sink = [0u8; 8192];
        while self.read_inner(&mut sink)? > 0 {}
        if self.verified {
            Ok(())
        } else {
            Err(internal())
        }
    }
}

impl Read for SeipdReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf).map_err(to_io)
    }
}

/// Parses a message (inside the encrypted data, or inside a compressed packet): optional marker
/// packets, then exactly one literal data or compressed data packet.
fn read_message(
    src: &mut Src<'_>,
    depth: usize,
    sink: &mut Sink<'_>,
    limits: &Limits,
    info: &mut Info,
) -> Result<()> {
    let mut seen = false;
    while let Some(h) = read_header(src)? {
        match h.tag {
            8 | 11 if seen => {
                return Err(src.malformed(
                    h.offset,
                    format!("a second {} packet; a message holds one", tag_name(h.tag)),
                ))
            }
            11 => {
                let mut body = Body::new(src, h.len);
                read_literal(&mut body, sink, info)?;
                seen = true;
            }
            8 => {
                if depth >= limits.max_depth {
                    return Err(ImportError::LimitExceeded {
                        what: format!("compressed packets nested more than {} deep", limits.max_depth),
                    });
                }
                let mut body = Body::new(src, h.len);
                read_compressed(&mut body, depth + 1, sink, limits, info)?;
                seen = true;
            }
            10 => {
                Body::new(src, h.len).drain()?;
            }
            2 | 4 => {
                return Err(ImportError::Unsupported {
                    what: format!(
                        "a signed message (a {} packet, tag {}); only gpg --symmetric without --sign can be imported",
                        tag_name(h.tag),
                        h.tag
                    ),
                })
            }
            t => {
                return Err(src.malformed(
                    h.offset,
                    format!("an unexpected {} packet (tag {t})", tag_name(t)),
                ))
            }
        }
    }
    if !seen {
        return Err(src.malformed(src.offset, "the message holds no literal data packet"));
    }
    Ok(())
}

fn read_literal(body: &mut Body<'_, '_>, sink: &mut Sink<'_>, info: &mut Info) -> Result<()> {
    let mut head = [0u8; 2];
    body.need_exact(&mut head, "a literal data packet's header")?;
    let mut name = vec![0u8; usize::from(head[1])];
    body.need_exact(&mut name, "a literal data packet's file name")?;
    let mut date = [0u8; 4];
    body.need_exact(&mut date, "a literal data packet's date")?;
    info.literal_format = head[0];
    info.file_name = name;
    info.modified = u32::from_be_bytes(date);
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let n = body.read_body(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        sink.write(&buf[..n])?;
    }
}

fn read_compressed(
    body: &mut Body<'_, '_>,
    depth: usize,
    sink: &mut Sink<'_>,
    limits: &Limits,
    info: &mut Info,
) -> Result<()> {
    let mut algo = [0u8; 1];
    body.need_exact(&mut algo, "a compressed data packet's algorithm")?;
    let compression = match algo[0] {
        0 => Compression::Uncompressed,
        1 => Compression::Zip,
        2 => Compression::Zlib,
        3 => Compression::Bzip2,
        n => {
            return Err(ImportError::Unsupported {
                what: format!(
                    "compression algorithm {n} (uncompressed, ZIP, ZLIB and BZip2 are supported)"
                ),
            })
        }
    };
    info.compression.get_or_insert(compression);
    match compression {
        Compression::Uncompressed => {
            let mut src = Src::new(body, "uncompressed OpenPGP data");
            read_message(&mut src, depth, sink, limits, info)?;
        }
        Compression::Zip => {
            let mut dec = flate2::read::DeflateDecoder::new(&mut *body);
            let mut src = Src::new(&mut dec, "deflate-compressed OpenPGP data (decompressed)");
            read_message(&mut src, depth, sink, limits, info)?;
        }
        Compression::Zlib => {
            let mut dec = flate2::read::ZlibDecoder::new(&mut *body);
            let mut src = Src::new(&mut dec, "zlib-compressed OpenPGP data (decompressed)");
            read_message(&mut src, depth, sink, limits, info)?;
        }
        Compression::Bzip2 => {
            let mut dec = bzip2::read::BzDecoder::new(&mut *body);
            let mut src = Src::new(&mut dec, "bzip2-compressed OpenPGP data (decompressed)");
            read_message(&mut src, depth, sink, limits, info)?;
        }
    }
    // Whatever follows the compressed stream inside the packet is read, not used.
    body.drain()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_openpgp() {
        let limits = Limits::default();
        for input in [&b""[..], b"hello world", b"\x00\x01\x02"] {
            let err = decrypt(b"pw", input, Vec::new(), &limits).unwrap_err();
            assert!(matches!(err, ImportError::NotOpenPgp { .. }), "{err}");
        }
        // A literal data packet alone: OpenPGP, but not encrypted.
        let err = decrypt(
            b"pw",
            &b"\xcb\x06b\x00\x00\x00\x00\x00"[..],
            Vec::new(),
            &limits,
        )
        .unwrap_err();
        assert!(matches!(err, ImportError::NotOpenPgp { .. }), "{err}");
        // SED (tag 9) is refused outright.
        let err = decrypt(b"pw", &b"\xc9\x05hello"[..], Vec::new(), &limits).unwrap_err();
        assert!(matches!(err, ImportError::Unprotected), "{err}");
        // AEAD (tag 20).
        let err = decrypt(b"pw", &b"\xd4\x05hello"[..], Vec::new(), &limits).unwrap_err();
        assert!(matches!(err, ImportError::Unsupported { .. }), "{err}");
    }
}
