//! Content encryption keys (CEKs) and their key ids.
//!
//! A CEK is 32 random bytes. On disk it is either the raw 32 bytes or their base64 (standard or
//! URL-safe alphabet, padding optional, surrounding whitespace ignored). Its key id is the first
//! 16 bytes of `SHA-256("sealroom key id v1" || CEK)`, shown as 32 hex digits: it names a key
//! without revealing it, so "wrong key" errors can say which key a file needs.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Length of a CEK in bytes.
pub const CEK_LEN: usize = 32;
/// Largest key file accepted (base64 of 32 bytes plus generous whitespace).
const MAX_KEY_FILE: u64 = 1024;
const KEY_ID_DOMAIN: &[u8] = b"sealroom key id v1";

/// A 32-byte content encryption key. Zeroized on drop; `Debug` shows only its key id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Cek([u8; CEK_LEN]);

impl Cek {
    /// A new CEK from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; CEK_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Key("the operating system's random generator failed".into()))?;
        Ok(Cek(bytes))
    }

    /// A CEK from exactly 32 bytes.
    pub fn from_bytes(bytes: [u8; CEK_LEN]) -> Self {
        Cek(bytes)
    }

    /// A CEK from a slice that must be 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; CEK_LEN] = bytes.try_into().map_err(|_| {
            Error::Key(format!(
                "a CEK is {CEK_LEN} bytes, this one has {}",
                bytes.len()
            ))
        })?;
        Ok(Cek(arr))
    }

    /// The key bytes. Callers must not log or persist them unencrypted.
    pub fn expose(&self) -> &[u8; CEK_LEN] {
        &self.0
    }

    /// This key's id.
    pub fn key_id(&self) -> KeyId {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(KEY_ID_DOMAIN);
        ctx.update(&self.0);
        let d = ctx.finish();
        let mut id = [0u8; 16];
        id.copy_from_slice(&d.as_ref()[..16]);
        KeyId(id)
    }

    /// Reads a key file: raw 32 bytes, or base64 of 32 bytes.
    pub fn read_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let meta = fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(bad(format!(
                "{} bytes is too large for a key file (a CEK file holds 32 raw bytes or their base64)",
                meta.len()
            )));
        }
        let data = Zeroizing::new(fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?);
        Self::parse(&data).map_err(bad)
    }

    /// Parses key file contents: raw 32 bytes, or base64 of 32 bytes.
    pub fn parse(data: &[u8]) -> std::result::Result<Self, String> {
        if data.len() == CEK_LEN {
            // 32 bytes that are all base64 characters could also be base64 of 24 bytes, which is
            // not a key: raw wins.
            let mut arr = [0u8; CEK_LEN];
            arr.copy_from_slice(data);
            return Ok(Cek(arr));
        }
        let text = std::str::from_utf8(data).map_err(|_| {
            format!(
                "{} bytes that are neither a raw 32-byte key nor base64",
                data.len()
            )
        })?;
        let decoded = decode_base64(text.trim()).ok_or_else(|| {
            format!(
                "{} bytes that are neither a raw 32-byte key nor base64 of one",
                data.len()
            )
        })?;
        if decoded.len() != CEK_LEN {
            return Err(format!(
                "base64 of {} bytes; a CEK is {CEK_LEN} bytes",
                decoded.len()
            ));
        }
        let mut arr = [0u8; CEK_LEN];
        arr.copy_from_slice(&decoded);
        Ok(Cek(arr))
    }

    /// Writes the raw key to a new file with mode 0600, refusing to overwrite.
    pub fn write_new_file(&self, path: &Path) -> Result<()> {
        write_secret_file(path, &self.0)
    }
}

impl fmt::Debug for Cek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cek(key id {})", self.key_id())
    }
}

/// Decodes standard or URL-safe base64, padded or not. Returns `None` if it is not base64.
pub(crate) fn decode_base64(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        if let Ok(v) = engine.decode(text) {
            return Some(Zeroizing::new(v));
        }
    }
    None
}

/// A key id: 16 bytes derived from a CEK, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 16]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// `count` random bytes as lowercase hex, for file names such as `cek_<random>.key`.
pub fn random_hex(count: usize) -> Result<String> {
    let mut bytes = vec![0u8; count];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Key("the operating system's random generator failed".into()))?;
    Ok(hex::encode(bytes))
}

/// A file name `<prefix><random><suffix>` inside `dir` that does not exist yet.
pub fn fresh_name(dir: &Path, prefix: &str, suffix: &str) -> Result<PathBuf> {
    for _ in 0..16 {
        let p = dir.join(format!("{prefix}{}{suffix}", random_hex(8)?));
        if !p.exists() {
            return Ok(p);
        }
    }
    Err(Error::Usage(format!(
        "could not find a free file name {prefix}*{suffix} in {}",
        dir.display()
    )))
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes` to it.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = fs::remove_file(path);
        return Err(Error::io(format!("cannot write {}", path.display()), e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_and_base64() {
        let raw = [7u8; 32];
        let a = Cek::parse(&raw).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let b = Cek::parse(format!("  {b64}\n").as_bytes()).unwrap();
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let c = Cek::parse(url.as_bytes()).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose(), c.expose());
    }

    #[test]
    fn rejects_wrong_lengths() {
        let err = Cek::parse(&[1u8; 31]).unwrap_err();
        assert!(err.contains("neither"), "{err}");
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        let err = Cek::parse(b64.as_bytes()).unwrap_err();
        assert!(err.contains("base64 of 16 bytes"), "{err}");
    }

    #[test]
    fn key_id_is_stable_and_debug_hides_key() {
        let k = Cek::from_bytes([0u8; 32]);
        assert_eq!(k.key_id().to_string().len(), 32);
        let dbg = format!("{k:?}");
        assert!(dbg.starts_with("Cek(key id "));
        assert!(!dbg.contains("[0"));
    }
}
