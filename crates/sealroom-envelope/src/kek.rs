//! Key encryption keys (KEKs) and wrapped CEKs (WCEKs).
//!
//! A KEK is an RSA public key (SPKI DER on disk); a WCEK is a CEK encrypted to it with RSA-OAEP,
//! SHA-256 and MGF1-SHA-256 — what browser Web Crypto's `RSA-OAEP` with `hash: "SHA-256"` and
//! `openssl pkeyutl -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
//! -pkeyopt rsa_mgf1_md:sha256` produce. Private halves are PKCS#8, PEM or DER.

use std::fmt;
use std::path::Path;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA256_MGF1SHA256,
};
use base64::Engine;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key::{Cek, CEK_LEN};

/// Largest KEK file accepted (an RSA-8192 PKCS#8 PEM is about 6.5 KB).
const MAX_KEK_FILE: u64 = 64 * 1024;
/// RSA sizes accepted for a KEK, in bits.
const KEK_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// The public half of a KEK: wraps CEKs.
pub struct KekPublic {
    key: OaepPublicEncryptingKey,
    der: Vec<u8>,
}

impl KekPublic {
    /// Parses an SPKI DER (`SubjectPublicKeyInfo`) RSA public key.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let public = PublicEncryptingKey::from_der(der)
            .map_err(|e| Error::Key(format!("not an RSA public key in SPKI DER form: {e}")))?;
        check_bits(public.key_size_bits())?;
        let key = OaepPublicEncryptingKey::new(public)
            .map_err(|_| Error::Key("RSA key unusable for OAEP".into()))?;
        Ok(KekPublic {
            key,
            der: der.to_vec(),
        })
    }

    /// Reads a KEK file: SPKI DER, or PEM `PUBLIC KEY`.
    pub fn read_file(path: &Path) -> Result<Self> {
        let data = read_bounded(path, "KEK")?;
        let der = match pem_decode(&data, "PUBLIC KEY") {
            Some(der) => der,
            None => Zeroizing::new(data.to_vec()),
        };
        Self::from_der(&der).map_err(|e| Error::KeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The SPKI DER encoding.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// Key size in bits.
    pub fn bits(&self) -> usize {
        self.key.key_size_bits()
    }

    /// Wraps a CEK: RSA-OAEP-SHA256 with MGF1-SHA256 and no label.
    pub fn wrap(&self, cek: &Cek) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.key.ciphertext_size()];
        let n = self
            .key
            .encrypt(&OAEP_SHA256_MGF1SHA256, cek.expose(), &mut out, None)
            .map_err(|_| Error::Key("RSA-OAEP encryption failed".into()))?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

impl fmt::Debug for KekPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KekPublic(RSA-{})", self.bits())
    }
}

/// The private half of a KEK: unwraps WCEKs.
pub struct KekPrivate {
    key: OaepPrivateDecryptingKey,
    public: PublicEncryptingKey,
}

impl KekPrivate {
    /// A new RSA-4096 key pair.
    pub fn generate() -> Result<Self> {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa4096)
            .map_err(|_| Error::Key("RSA-4096 key generation failed".into()))?;
        Self::from_key(key)
    }

    fn from_key(key: PrivateDecryptingKey) -> Result<Self> {
        check_bits(key.key_size_bits())?;
        let public = key.public_key();
        let key = OaepPrivateDecryptingKey::new(key)
            .map_err(|_| Error::Key("RSA key unusable for OAEP".into()))?;
        Ok(KekPrivate { key, public })
    }

    /// Parses a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let key = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|e| Error::Key(format!("not an RSA private key in PKCS#8 form: {e}")))?;
        Self::from_key(key)
    }

    /// Reads a private KEK file: PKCS#8 PEM (`PRIVATE KEY`) or PKCS#8 DER.
    pub fn read_file(path: &Path) -> Result<Self> {
        let data = read_bounded(path, "private KEK")?;
        let der = match pem_decode(&data, "PRIVATE KEY") {
            Some(der) => der,
            None => {
                if std::str::from_utf8(&data)
                    .is_ok_and(|s| s.contains("-----BEGIN RSA PRIVATE KEY"))
                {
                    return Err(Error::KeyFile {
                        path: path.to_path_buf(),
                        reason: "PKCS#1 (BEGIN RSA PRIVATE KEY) is not accepted; convert with \
                                 `openssl pkcs8 -topk8 -nocrypt`"
                            .into(),
                    });
                }
                Zeroizing::new(data.to_vec())
            }
        };
        Self::from_pkcs8_der(&der).map_err(|e| Error::KeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The public half.
    pub fn public(&self) -> Result<KekPublic> {
        let der: PublicKeyX509Der<'static> = self
            .public
            .as_der()
            .map_err(|_| Error::Key("cannot encode the public key".into()))?;
        KekPublic::from_der(der.as_ref())
    }

    /// Unwraps a WCEK to the CEK it holds.
    pub fn unwrap(&self, wcek: &[u8]) -> Result<Cek> {
        if wcek.len() != self.key.key_size_bytes() {
            return Err(Error::Key(format!(
                "a WCEK for this RSA-{} KEK is {} bytes, this one has {}",
                self.key.key_size_bits(),
                self.key.key_size_bytes(),
                wcek.len()
            )));
        }
        let mut out = Zeroizing::new(vec![0u8; self.key.min_output_size()]);
        let n = self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, wcek, &mut out, None)
            .map_err(|_| {
                Error::Key(
                    "the WCEK does not unwrap under this KEK (RSA-OAEP-SHA256 decryption failed): \
                     it was wrapped to another key, with other OAEP parameters, or modified"
                        .into(),
                )
            })?
            .len();
        if n != CEK_LEN {
            return Err(Error::Key(format!(
                "the WCEK holds {n} bytes; a CEK is {CEK_LEN} bytes"
            )));
        }
        Cek::from_slice(&out[..n])
    }
}

impl fmt::Debug for KekPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KekPrivate(RSA-{})", self.key.key_size_bits())
    }
}

/// A freshly generated KEK pair as files: PKCS#8 PEM private key and SPKI DER public key.
#[derive(Debug)]
pub struct GeneratedKek {
    /// PKCS#8 PEM, zeroized on drop.
    pub private_pem: Zeroizing<String>,
    /// SPKI DER.
    pub public_der: Vec<u8>,
}

/// Generates an RSA-4096 KEK pair and encodes both halves.
pub fn generate_kek_pair() -> Result<GeneratedKek> {
    let key = PrivateDecryptingKey::generate(KeySize::Rsa4096)
        .map_err(|_| Error::Key("RSA-4096 key generation failed".into()))?;
    let pkcs8: Pkcs8V1Der<'static> = key
        .as_der()
        .map_err(|_| Error::Key("cannot encode the private key".into()))?;
    let private_pem = pem_encode(pkcs8.as_ref(), "PRIVATE KEY");
    let public: PublicKeyX509Der<'static> = key
        .public_key()
        .as_der()
        .map_err(|_| Error::Key("cannot encode the public key".into()))?;
    Ok(GeneratedKek {
        private_pem,
        public_der: public.as_ref().to_vec(),
    })
}

fn check_bits(bits: usize) -> Result<()> {
    if KEK_BITS.contains(&bits) {
        Ok(())
    } else {
        Err(Error::Key(format!(
            "RSA-{bits} is not accepted as a KEK (2048 to 8192 bits; Sealroom makes 4096)"
        )))
    }
}

fn read_bounded(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |reason: String| Error::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > MAX_KEK_FILE {
        return Err(bad(format!(
            "{} bytes is too large for a {what} file",
            meta.len()
        )));
    }
    Ok(Zeroizing::new(
        std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?,
    ))
}

/// PEM-encodes DER with the given label, 64 columns.
pub(crate) fn pem_encode(der: &[u8], label: &str) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Extracts and decodes the first PEM block with `label`, if the data is PEM with that label.
pub(crate) fn pem_decode(data: &[u8], label: &str) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(data).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: Zeroizing<String> = Zeroizing::new(
        text[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip_and_wrong_key() {
        let pair = generate_kek_pair().unwrap();
        let der = pem_decode(pair.private_pem.as_bytes(), "PRIVATE KEY").unwrap();
        let private = KekPrivate::from_pkcs8_der(&der).unwrap();
        let public = KekPublic::from_der(&pair.public_der).unwrap();
        assert_eq!(public.bits(), 4096);
        let cek = Cek::generate().unwrap();
        let wcek = public.wrap(&cek).unwrap();
        assert_eq!(wcek.len(), 512);
        assert_eq!(private.unwrap(&wcek).unwrap().expose(), cek.expose());

        let other = generate_kek_pair().unwrap();
        let other_der = pem_decode(other.private_pem.as_bytes(), "PRIVATE KEY").unwrap();
        let other = KekPrivate::from_pkcs8_der(&other_der).unwrap();
        let err = other.unwrap(&wcek).unwrap_err().to_string();
        assert!(err.contains("does not unwrap"), "{err}");
        assert!(private.unwrap(&wcek[..100]).is_err());
    }
}
