//! Bounded binary formats for keys and ciphertexts (all untrusted when they arrive).
//!
//! tfhe-rs 1.8's `core_crypto` entities do not implement `Named`, so its `safe_deserialize`
//! cannot be used on them; this module applies the same rules itself: a versioned header
//! (magic `SRFHE`, format version, kind, parameter set), a size limit checked before anything is
//! allocated, an exact expected length computed from the parameter set and the declared count
//! (checked arithmetic), and value checks (secret key bits). Every entity is then built from a
//! container of exactly the right length, so tfhe's constructors' assertions cannot fire.
//!
//! ```text
//! header   = "SRFHE" | version u8 (=1) | kind u8 | param u8
//! kind 1 server key  = header | bsk seed u128 | ksk seed u128 | bsk bodies u64* | ksk bodies u64*
//! kind 2 input ct    = header | seed u128 | count u32 | bodies u64 * count        (seeded LWE list)
//! kind 3 output ct   = header | count u32 | (k·N + 1) u64 * count              (LWE list, big key)
//! kind 4 client key  = header | small key bits u8 * n | GLWE key bits u8 * k·N
//! ```
//! All integers are little-endian.

use crate::error::{malformed, FheError, Result};
use crate::model::MAX_TENSOR;
use crate::params::{ParamId, ParamSet};

/// Magic bytes at the start of every object.
pub const MAGIC: &[u8; 5] = b"SRFHE";
/// Format version.
pub const VERSION: u8 = 1;
/// Length of the common header.
pub const HEADER_LEN: usize = 8;

/// Kinds of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Compressed (seeded) server key: bootstrap key + key-switching key.
    ServerKey = 1,
    /// Encrypted input (seeded LWE list under the big key).
    Input = 2,
    /// Encrypted activations returned by the server.
    Output = 3,
    /// The client's secret keys.
    ClientKey = 4,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::ServerKey => "server key",
            Kind::Input => "input ciphertext",
            Kind::Output => "output ciphertext",
            Kind::ClientKey => "client key",
        }
    }
}

/// Number of u64 in a seeded bootstrap key for `p`.
pub fn seeded_bsk_len(p: &ParamSet) -> usize {
    let glwe_size = p.glwe_dimension + 1;
    p.lwe_dimension * glwe_size * p.pbs_level * p.polynomial_size
}

/// Number of u64 in a seeded key-switching key for `p`.
pub fn seeded_ksk_len(p: &ParamSet) -> usize {
    p.big_lwe_dimension() * p.ks_level
}

/// Exact byte size of a server key for `p`.
pub fn server_key_bytes(p: &ParamSet) -> usize {
    HEADER_LEN + 32 + 8 * (seeded_bsk_len(p) + seeded_ksk_len(p))
}

/// Writes the common header.
pub fn header(kind: Kind, param: ParamId) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN);
    v.extend_from_slice(MAGIC);
    v.push(VERSION);
    v.push(kind as u8);
    v.push(param.to_byte());
    v
}

/// Reads and checks the common header; returns the parameter set and the rest.
pub fn read_header(bytes: &[u8], kind: Kind) -> Result<(ParamId, &[u8])> {
    let what = kind.what();
    if bytes.len() < HEADER_LEN {
        return Err(malformed(
            what,
            format!("{} bytes is shorter than the header", bytes.len()),
        ));
    }
    if &bytes[..5] != MAGIC {
        return Err(malformed(what, "not a Sealroom FHE object (bad magic)"));
    }
    if bytes[5] != VERSION {
        return Err(malformed(
            what,
            format!(
                "format version {} is not supported (expected {VERSION})",
                bytes[5]
            ),
        ));
    }
    if bytes[6] != kind as u8 {
        return Err(malformed(
            what,
            format!("object kind {} is not a {what}", bytes[6]),
        ));
    }
    let param = ParamId::from_byte(bytes[7])
        .ok_or_else(|| malformed(what, format!("unknown parameter set {}", bytes[7])))?;
    Ok((param, &bytes[HEADER_LEN..]))
}

/// A cursor over untrusted bytes that never panics.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `rest`.
    pub fn new(rest: &'a [u8], kind: Kind) -> Self {
        Reader {
            rest,
            what: kind.what(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(malformed(self.what, "truncated"));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    /// Reads a u32.
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a u128.
    pub fn u128(&mut self) -> Result<u128> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(u128::from_le_bytes(a))
    }

    /// Reads `n` u64 values.
    pub fn u64s(&mut self, n: usize) -> Result<Vec<u64>> {
        let len = n
            .checked_mul(8)
            .ok_or_else(|| malformed(self.what, "length overflow"))?;
        let b = self.take(len)?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// Reads `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n)
    }

    /// Fails unless everything was read.
    pub fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(malformed(
                self.what,
                format!("{} unexpected trailing bytes", self.rest.len()),
            ))
        }
    }
}

/// Checks `bytes.len()` against an exact expected size computed with checked arithmetic.
pub fn expect_len(bytes: &[u8], kind: Kind, expected: Option<usize>) -> Result<()> {
    let expected = expected.ok_or_else(|| malformed(kind.what(), "declared size overflows"))?;
    if bytes.len() != expected {
        return Err(malformed(
            kind.what(),
            format!("{} bytes, but its header implies {expected}", bytes.len()),
        ));
    }
    Ok(())
}

/// Checks a declared element count.
pub fn check_count(count: usize, kind: Kind) -> Result<()> {
    if count == 0 || count > MAX_TENSOR {
        return Err(malformed(
            kind.what(),
            format!("count {count} is not within 1..={MAX_TENSOR}"),
        ));
    }
    Ok(())
}

/// Fails with [`FheError::TooLarge`] if `bytes` exceed `limit`.
pub fn check_limit(bytes: &[u8], kind: Kind, limit: usize) -> Result<()> {
    if bytes.len() > limit {
        return Err(FheError::TooLarge {
            what: kind.what(),
            size: bytes.len(),
            limit,
        });
    }
    Ok(())
}

/// Appends u64 values.
pub fn put_u64s(out: &mut Vec<u8>, v: &[u64]) {
    out.reserve(v.len() * 8);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}
