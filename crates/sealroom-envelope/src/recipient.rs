//! CEKs sealed to an enclave's ephemeral key with HPKE (RFC 9180).
//!
//! The key broker releases a CEK to an attested enclave by sealing it to the X25519 public key
//! that the enclave made for this run, with HPKE in base mode and the suite
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (KEM 0x0020, KDF 0x0001, AEAD 0x0002).
//! The HPKE `info` binds the release to its context (project, run, role, key id; see
//! [`ReleaseInfo`]): the enclave opens a [`SealedCek`] only with the `info` it expects, so a CEK
//! released for one run or role cannot be passed off as another's. The AEAD's associated data
//! is empty and the plaintext is the 32-byte CEK.
//!
//! HPKE is implemented here on aws-lc-rs primitives (X25519, HMAC-SHA256, AES-GCM) and tested
//! against the RFC 9180 Appendix A test vectors.
//!
//! ```
//! use sealroom_envelope::recipient::{seal_cek, EnclaveKeyPair, ReleaseInfo};
//! use sealroom_envelope::Cek;
//!
//! let enclave = EnclaveKeyPair::generate()?; // inside the enclave
//! let cek = Cek::generate()?;
//! let info = ReleaseInfo::new("project-1", "run-7", "ds", &cek.key_id().to_string()).to_bytes();
//! let sealed = seal_cek(&cek, enclave.public_key(), &info)?; // at the broker
//! let opened = enclave.open(&sealed, &info)?; // inside the enclave
//! assert_eq!(opened.key_id(), cek.key_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use crate::key::{Cek, CEK_LEN};

/// The HPKE suite Sealroom uses, in words.
pub const SUITE: &str = "HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM";
/// Length of an X25519 key (public or private) and of `enc`.
pub const X25519_LEN: usize = 32;
/// Length of a sealed CEK's ciphertext: the CEK and a 16-byte tag.
pub const SEALED_CEK_LEN: usize = CEK_LEN + 16;
/// Largest `info` accepted.
pub const MAX_INFO_LEN: usize = 4096;

const KEM_ID: u16 = 0x0020;
const KDF_ID: u16 = 0x0001;
const N_SECRET: usize = 32;
const N_NONCE: usize = 12;
const N_HASH: usize = 32;
const MODE_BASE: u8 = 0x00;

/// Errors of sealing and opening CEKs.
#[derive(Debug, thiserror::Error)]
pub enum RecipientError {
    /// An enclave public key that is not 32 bytes of X25519.
    #[error("not an X25519 enclave public key: {reason}")]
    InvalidPublicKey { reason: String },

    /// A private key that cannot be used.
    #[error("not an X25519 enclave private key: {reason}")]
    InvalidPrivateKey { reason: String },

    /// The sealed CEK names other release information than the caller expects.
    #[error(
        "the sealed CEK was released for other information than expected \
         (expected {expected:?}, the sealed CEK says {found:?})"
    )]
    InfoMismatch { expected: String, found: String },

    /// The fields of a sealed CEK have the wrong sizes.
    #[error("malformed sealed CEK: {reason}")]
    Malformed { reason: String },

    /// Authentication failed: another key, other `info`, or a modified `enc` or ciphertext.
    #[error(
        "the sealed CEK does not open with this enclave key: it was sealed to another key or for \
         other release information, or it was modified"
    )]
    OpenFailed,

    /// The X25519 exchange produced the all-zero value (a low-order public key).
    #[error("the X25519 key exchange failed: the public key is of low order or invalid")]
    KeyExchange,

    /// The random generator or a primitive failed.
    #[error("HPKE {0} failed")]
    Crypto(&'static str),
}

/// Result alias for this module.
pub type Result<T, E = RecipientError> = std::result::Result<T, E>;

/// An enclave's X25519 public key, as the attestation evidence binds it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnclavePublicKey([u8; X25519_LEN]);

impl EnclavePublicKey {
    /// A public key from its 32 raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; X25519_LEN] =
            bytes
                .try_into()
                .map_err(|_| RecipientError::InvalidPublicKey {
                    reason: format!("{} bytes, an X25519 key is {X25519_LEN}", bytes.len()),
                })?;
        Ok(EnclavePublicKey(arr))
    }

    /// A public key from base64 (standard or URL-safe, padding optional).
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes = crate::key::decode_base64(text.trim()).ok_or_else(|| {
            RecipientError::InvalidPublicKey {
                reason: "not base64".into(),
            }
        })?;
        Self::from_slice(&bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; X25519_LEN] {
        &self.0
    }

    /// Standard base64 with padding.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Debug for EnclavePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnclavePublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for EnclavePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl Serialize for EnclavePublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for EnclavePublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EnclavePublicKey::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// An enclave's ephemeral X25519 key pair. The private half is zeroized on drop and never
/// printed; `Debug` shows the public half.
pub struct EnclaveKeyPair {
    secret: Zeroizing<[u8; X25519_LEN]>,
    public: EnclavePublicKey,
}

impl EnclaveKeyPair {
    /// A new key pair from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut secret = Zeroizing::new([0u8; X25519_LEN]);
        SystemRandom::new()
            .fill(&mut secret[..])
            .map_err(|_| RecipientError::Crypto("random generation"))?;
        Self::from_secret(secret)
    }

    /// A key pair from the 32 bytes of an X25519 private key (RFC 7748 encoding).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self> {
        let mut secret = Zeroizing::new([0u8; X25519_LEN]);
        if bytes.len() != X25519_LEN {
            return Err(RecipientError::InvalidPrivateKey {
                reason: format!("{} bytes, an X25519 key is {X25519_LEN}", bytes.len()),
            });
        }
        secret.copy_from_slice(bytes);
        Self::from_secret(secret)
    }

    fn from_secret(secret: Zeroizing<[u8; X25519_LEN]>) -> Result<Self> {
        let private = x25519_private(&secret[..])?;
        let public = private
            .compute_public_key()
            .map_err(|_| RecipientError::Crypto("public key computation"))?;
        let public = EnclavePublicKey::from_slice(public.as_ref())?;
        Ok(EnclaveKeyPair { secret, public })
    }

    /// The public half, to put in the attestation evidence and send to the broker.
    pub fn public_key(&self) -> &EnclavePublicKey {
        &self.public
    }

    /// The private key bytes. Callers must not log or persist them.
    pub fn expose_secret(&self) -> &[u8; X25519_LEN] {
        &self.secret
    }

    /// Opens a sealed CEK, refusing it unless it was sealed for exactly `expected_info`.
    pub fn open(&self, sealed: &SealedCek, expected_info: &[u8]) -> Result<Cek> {
        if sealed.info != expected_info {
            return Err(RecipientError::InfoMismatch {
                expected: printable(expected_info),
                found: printable(&sealed.info),
            });
        }
        check_info(expected_info)?;
        if sealed.enc.len() != X25519_LEN {
            return Err(RecipientError::Malformed {
                reason: format!("enc is {} bytes, expected {X25519_LEN}", sealed.enc.len()),
            });
        }
        if sealed.ciphertext.len() != SEALED_CEK_LEN {
            return Err(RecipientError::Malformed {
                reason: format!(
                    "the ciphertext is {} bytes, expected {SEALED_CEK_LEN}",
                    sealed.ciphertext.len()
                ),
            });
        }
        let suite = Suite::SEALROOM;
        let shared = decap(&sealed.enc, &self.secret[..])?;
        let mut ctx = suite.key_schedule_base(&shared, expected_info)?;
        let plaintext = ctx.open(b"", &sealed.ciphertext)?;
        Cek::from_slice(&plaintext).map_err(|_| RecipientError::OpenFailed)
    }
}

impl fmt::Debug for EnclaveKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnclaveKeyPair(public {})", hex::encode(self.public.0))
    }
}

/// A CEK sealed to an enclave key: HPKE's encapsulated key, the ciphertext of the CEK, and the
/// `info` it is bound to. All three are base64 in JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedCek {
    /// HPKE `enc`: the sender's ephemeral X25519 public key (32 bytes).
    #[serde(with = "b64")]
    pub enc: Vec<u8>,
    /// AES-256-GCM of the CEK with empty associated data (48 bytes).
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
    /// The HPKE `info` the CEK is bound to, e.g. [`ReleaseInfo::to_bytes`].
    #[serde(with = "b64")]
    pub info: Vec<u8>,
}

impl fmt::Debug for SealedCek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCek")
            .field("enc", &hex::encode(&self.enc))
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .field("info", &printable(&self.info))
            .finish()
    }
}

/// Seals a CEK to an enclave's public key, bound to `info`.
pub fn seal_cek(cek: &Cek, recipient: &EnclavePublicKey, info: &[u8]) -> Result<SealedCek> {
    let mut ephemeral = Zeroizing::new([0u8; X25519_LEN]);
    SystemRandom::new()
        .fill(&mut ephemeral[..])
        .map_err(|_| RecipientError::Crypto("random generation"))?;
    seal_with_ephemeral(cek, recipient, info, &ephemeral[..])
}

fn seal_with_ephemeral(
    cek: &Cek,
    recipient: &EnclavePublicKey,
    info: &[u8],
    ephemeral: &[u8],
) -> Result<SealedCek> {
    check_info(info)?;
    let suite = Suite::SEALROOM;
    let (shared, enc) = encap(recipient.as_bytes(), ephemeral)?;
    let mut ctx = suite.key_schedule_base(&shared, info)?;
    let ciphertext = ctx.seal(b"", cek.expose())?;
    Ok(SealedCek {
        enc: enc.to_vec(),
        ciphertext,
        info: info.to_vec(),
    })
}

fn check_info(info: &[u8]) -> Result<()> {
    if info.len() > MAX_INFO_LEN {
        return Err(RecipientError::Malformed {
            reason: format!(
                "info is {} bytes, at most {MAX_INFO_LEN} are accepted",
                info.len()
            ),
        });
    }
    Ok(())
}

/// `info` as text when it is printable UTF-8, else as hex.
fn printable(info: &[u8]) -> String {
    match std::str::from_utf8(info) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n') => s.to_string(),
        _ => format!("hex:{}", hex::encode(info)),
    }
}

/// The context a CEK release is bound to. [`ReleaseInfo::to_bytes`] is the HPKE `info`:
/// `sealroom cek release v1` followed by each field as a 2-byte big-endian length and its
/// UTF-8 bytes, in the order project, run, role, key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// The project's id.
    pub project_id: String,
    /// The run's id.
    pub run_id: String,
    /// Whose CEK: `ao` or `ds`.
    pub role: String,
    /// The CEK's key id (hex).
    pub key_id: String,
}

const RELEASE_INFO_DOMAIN: &[u8] = b"sealroom cek release v1";

impl ReleaseInfo {
    /// Release information from its parts.
    pub fn new(project_id: &str, run_id: &str, role: &str, key_id: &str) -> Self {
        ReleaseInfo {
            project_id: project_id.into(),
            run_id: run_id.into(),
            role: role.into(),
            key_id: key_id.into(),
        }
    }

    /// The canonical encoding used as HPKE `info`. Each field is cut to 1,000 bytes at most,
    /// which IDs never reach.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = RELEASE_INFO_DOMAIN.to_vec();
        for field in [&self.project_id, &self.run_id, &self.role, &self.key_id] {
            let bytes = &field.as_bytes()[..field.len().min(1000)];
            // At most 1000, so it fits in u16.
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 9180 on aws-lc-rs.

/// The AEADs this implementation knows; Sealroom uses AES-256-GCM, AES-128-GCM is here for the
/// RFC's test vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
enum AeadId {
    Aes128Gcm,
    Aes256Gcm,
}

impl AeadId {
    fn id(self) -> u16 {
        match self {
            AeadId::Aes128Gcm => 0x0001,
            AeadId::Aes256Gcm => 0x0002,
        }
    }

    fn key_len(self) -> usize {
        match self {
            AeadId::Aes128Gcm => 16,
            AeadId::Aes256Gcm => 32,
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            AeadId::Aes128Gcm => &aead::AES_128_GCM,
            AeadId::Aes256Gcm => &aead::AES_256_GCM,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Suite {
    aead: AeadId,
}

impl Suite {
    const SEALROOM: Suite = Suite {
        aead: AeadId::Aes256Gcm,
    };

    /// `"HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2)`.
    fn suite_id(self) -> [u8; 10] {
        let mut id = [0u8; 10];
        id[..4].copy_from_slice(b"HPKE");
        id[4..6].copy_from_slice(&KEM_ID.to_be_bytes());
        id[6..8].copy_from_slice(&KDF_ID.to_be_bytes());
        id[8..10].copy_from_slice(&self.aead.id().to_be_bytes());
        id
    }

    /// RFC 9180 §5.1 `KeySchedule` in base mode (no PSK).
    fn key_schedule_base(self, shared_secret: &[u8], info: &[u8]) -> Result<Context> {
        let sid = self.suite_id();
        let psk_id_hash = labeled_extract(&sid, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(&sid, b"", b"info_hash", info);
        let mut ksc = Vec::with_capacity(1 + 2 * N_HASH);
        ksc.push(MODE_BASE);
        ksc.extend_from_slice(&psk_id_hash[..]);
        ksc.extend_from_slice(&info_hash[..]);
        let secret = labeled_extract(&sid, shared_secret, b"secret", b"");
        let key = labeled_expand(&sid, &secret[..], b"key", &ksc, self.aead.key_len())?;
        let base_nonce = labeled_expand(&sid, &secret[..], b"base_nonce", &ksc, N_NONCE)?;
        let exporter_secret = labeled_expand(&sid, &secret[..], b"exp", &ksc, N_HASH)?;
        let unbound = UnboundKey::new(self.aead.algorithm(), &key)
            .map_err(|_| RecipientError::Crypto("AEAD key setup"))?;
        let mut nonce = [0u8; N_NONCE];
        nonce.copy_from_slice(&base_nonce);
        Ok(Context {
            key: LessSafeKey::new(unbound),
            base_nonce: nonce,
            exporter_secret,
            seq: 0,
            suite_id: sid,
        })
    }
}

/// An HPKE encryption context (RFC 9180 §5.2).
struct Context {
    key: LessSafeKey,
    base_nonce: [u8; N_NONCE],
    #[cfg_attr(not(test), allow(dead_code))]
    exporter_secret: Zeroizing<Vec<u8>>,
    seq: u64,
    #[cfg_attr(not(test), allow(dead_code))]
    suite_id: [u8; 10],
}

impl Drop for Context {
    fn drop(&mut self) {
        self.base_nonce.zeroize();
    }
}

impl Context {
    fn nonce(&self) -> Nonce {
        let mut n = self.base_nonce;
        for (b, s) in n[N_NONCE - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        Nonce::assume_unique_for_key(n)
    }

    fn seal(&mut self, aad: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
        let mut buf = pt.to_vec();
        self.key
            .seal_in_place_append_tag(self.nonce(), Aad::from(aad), &mut buf)
            .map_err(|_| RecipientError::Crypto("seal"))?;
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or(RecipientError::Crypto("sequence number"))?;
        Ok(buf)
    }

    fn open(&mut self, aad: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(ct.to_vec());
        let n = self
            .key
            .open_in_place(self.nonce(), Aad::from(aad), &mut buf)
            .map_err(|_| RecipientError::OpenFailed)?
            .len();
        buf.truncate(n);
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or(RecipientError::Crypto("sequence number"))?;
        Ok(buf)
    }

    #[cfg(test)]
    fn export(&self, exporter_context: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
        labeled_expand(
            &self.suite_id,
            &self.exporter_secret,
            b"sec",
            exporter_context,
            len,
        )
    }
}

fn x25519_private(secret: &[u8]) -> Result<PrivateKey> {
    PrivateKey::from_private_key(&X25519, secret).map_err(|e| RecipientError::InvalidPrivateKey {
        reason: e.to_string(),
    })
}

fn kem_suite_id() -> [u8; 5] {
    let mut id = [0u8; 5];
    id[..3].copy_from_slice(b"KEM");
    id[3..].copy_from_slice(&KEM_ID.to_be_bytes());
    id
}

/// X25519 with the all-zero check of RFC 9180 §7.1.4.
fn dh(private: &PrivateKey, public: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let peer = UnparsedPublicKey::new(&X25519, public);
    let out = agreement::agree(private, peer, RecipientError::KeyExchange, |secret| {
        let mut out = Zeroizing::new([0u8; 32]);
        if secret.len() != 32 {
            return Err(RecipientError::KeyExchange);
        }
        out.copy_from_slice(secret);
        Ok(out)
    })?;
    if out.iter().fold(0u8, |acc, b| acc | b) == 0 {
        return Err(RecipientError::KeyExchange);
    }
    Ok(out)
}

/// DHKEM `ExtractAndExpand`.
fn extract_and_expand(dh: &[u8], kem_context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let sid = kem_suite_id();
    let eae_prk = labeled_extract(&sid, b"", b"eae_prk", dh);
    labeled_expand(&sid, &eae_prk[..], b"shared_secret", kem_context, N_SECRET)
}

/// DHKEM `Encap` with a given ephemeral private key: (shared secret, enc).
fn encap(
    pk_r: &[u8; X25519_LEN],
    ephemeral: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, [u8; X25519_LEN])> {
    let sk_e = x25519_private(ephemeral)?;
    let pk_e = sk_e
        .compute_public_key()
        .map_err(|_| RecipientError::Crypto("public key computation"))?;
    let mut enc = [0u8; X25519_LEN];
    if pk_e.as_ref().len() != X25519_LEN {
        return Err(RecipientError::Crypto("public key computation"));
    }
    enc.copy_from_slice(pk_e.as_ref());
    let dh = dh(&sk_e, pk_r)?;
    let mut kem_context = Vec::with_capacity(2 * X25519_LEN);
    kem_context.extend_from_slice(&enc);
    kem_context.extend_from_slice(pk_r);
    Ok((extract_and_expand(&dh[..], &kem_context)?, enc))
}

/// DHKEM `Decap`.
fn decap(enc: &[u8], sk_r: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let sk_r = x25519_private(sk_r)?;
    let pk_r = sk_r
        .compute_public_key()
        .map_err(|_| RecipientError::Crypto("public key computation"))?;
    let dh = dh(&sk_r, enc).map_err(|_| RecipientError::OpenFailed)?;
    let mut kem_context = Vec::with_capacity(2 * X25519_LEN);
    kem_context.extend_from_slice(enc);
    kem_context.extend_from_slice(pk_r.as_ref());
    extract_and_expand(&dh[..], &kem_context)
}

/// `LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm)`.
/// HKDF-Extract is HMAC with the salt as key; an empty salt equals HashLen zero bytes in HMAC.
fn labeled_extract(
    suite_id: &[u8],
    salt: &[u8],
    label: &[u8],
    ikm: &[u8],
) -> Zeroizing<[u8; N_HASH]> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"HPKE-v1");
    ctx.update(suite_id);
    ctx.update(label);
    ctx.update(ikm);
    let tag = ctx.sign();
    let mut out = Zeroizing::new([0u8; N_HASH]);
    out.copy_from_slice(tag.as_ref());
    out
}

/// `LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id
/// || label || info, L)`.
fn labeled_expand(
    suite_id: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    if len > 255 * N_HASH {
        return Err(RecipientError::Crypto("expand (length too large)"));
    }
    // Checked above: len <= 8160 fits in u16.
    let len_bytes = (len as u16).to_be_bytes();
    let key = hmac::Key::new(hmac::HMAC_SHA256, prk);
    let mut out = Zeroizing::new(Vec::with_capacity(len + N_HASH));
    let mut previous: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut counter: u8 = 1;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&previous);
        ctx.update(&len_bytes);
        ctx.update(b"HPKE-v1");
        ctx.update(suite_id);
        ctx.update(label);
        ctx.update(info);
        ctx.update(&[counter]);
        let t = ctx.sign();
        previous = Zeroizing::new(t.as_ref().to_vec());
        out.extend_from_slice(t.as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// Serde helper: bytes as standard base64.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() > 4 * super::MAX_INFO_LEN {
            return Err(serde::de::Error::custom("field too long"));
        }
        crate::key::decode_base64(&text)
            .map(|v| v.to_vec())
            .ok_or_else(|| serde::de::Error::custom("not base64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    struct Vector {
        aead: AeadId,
        sk_em: &'static str,
        pk_em: &'static str,
        sk_rm: &'static str,
        pk_rm: &'static str,
        shared_secret: &'static str,
        key: &'static str,
        base_nonce: &'static str,
        exporter_secret: &'static str,
        /// (sequence number, aad, ciphertext); the plaintext is always the same.
        encryptions: &'static [(u64, &'static str, &'static str)],
        /// (exporter context, length 32, value).
        exports: &'static [(&'static str, &'static str)],
    }

    const INFO: &str = "4f6465206f6e2061204772656369616e2055726e"; // "Ode on a Grecian Urn"
    const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";

    /// RFC 9180 A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
    const A_1_1: Vector = Vector {
        aead: AeadId::Aes128Gcm,
        sk_em: "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
        pk_em: "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
        sk_rm: "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
        pk_rm: "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
        shared_secret: "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
        key: "4531685d41d65f03dc48f6b8302c05b0",
        base_nonce: "56d890e5accaaf011cff4b7d",
        exporter_secret: "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8",
        encryptions: &[
            (0, "436f756e742d30", "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"),
            (1, "436f756e742d31", "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84"),
            (2, "436f756e742d32", "498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180"),
            (4, "436f756e742d34", "583bd32bc67a5994bb8ceaca813d369bca7b2a42408cddef5e22f880b631215a09fc0012bc69fccaa251c0246d"),
            (255, "436f756e742d323535", "7175db9717964058640a3a11fb9007941a5d1757fda1a6935c805c21af32505bf106deefec4a49ac38d71c9e0a"),
            (256, "436f756e742d323536", "957f9800542b0b8891badb026d79cc54597cb2d225b54c00c5238c25d05c30e3fbeda97d2e0e1aba483a2df9f2"),
        ],
        exports: &[
            ("", "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee"),
            ("00", "2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5"),
            ("54657374436f6e74657874", "e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931"),
        ],
    };

    fn check(v: &Vector) {
        let suite = Suite { aead: v.aead };
        let (shared, enc) = encap(&h(v.pk_rm).try_into().unwrap(), &h(v.sk_em)).unwrap();
        assert_eq!(hex::encode(enc), v.pk_em, "enc");
        assert_eq!(hex::encode(&shared[..]), v.shared_secret, "shared secret");
        let shared_r = decap(&enc, &h(v.sk_rm)).unwrap();
        assert_eq!(hex::encode(&shared_r[..]), v.shared_secret, "decap");
        let pair = EnclaveKeyPair::from_secret_bytes(&h(v.sk_rm)).unwrap();
        assert_eq!(hex::encode(pair.public_key().as_bytes()), v.pk_rm);

        let mut sender = suite.key_schedule_base(&shared, &h(INFO)).unwrap();
        let mut receiver = suite.key_schedule_base(&shared_r, &h(INFO)).unwrap();
        assert_eq!(hex::encode(sender.base_nonce), v.base_nonce);
        assert_eq!(hex::encode(&sender.exporter_secret[..]), v.exporter_secret);
        // The key itself is inside aws-lc; check it through a seal with the vector's key.
        let key = LessSafeKey::new(UnboundKey::new(v.aead.algorithm(), &h(v.key)).unwrap());
        let mut probe = h(PT);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(h(v.base_nonce).try_into().unwrap()),
            Aad::from(h(v.encryptions[0].1)),
            &mut probe,
        )
        .unwrap();
        assert_eq!(hex::encode(&probe), v.encryptions[0].2, "key");

        for &(seq, aad, ct) in v.encryptions {
            sender.seq = seq;
            receiver.seq = seq;
            let got = sender.seal(&h(aad), &h(PT)).unwrap();
            assert_eq!(hex::encode(&got), ct, "ciphertext at seq {seq}");
            let opened = receiver.open(&h(aad), &got).unwrap();
            assert_eq!(&opened[..], &h(PT)[..]);
        }
        for &(context, value) in v.exports {
            let got = sender.export(&h(context), 32).unwrap();
            assert_eq!(hex::encode(&got[..]), value, "export {context}");
        }
    }

    #[test]
    fn rfc9180_a_1_1_x25519_aes128gcm() {
        check(&A_1_1);
    }

    /// Sealroom's suite (AES-256-GCM), sealed by an independent implementation (PyCryptodome
    /// 4.4 `Crypto.Protocol.HPKE`, random ephemeral key, this module's `ReleaseInfo` encoding
    /// written out by hand): this module opens it, and its `info` encoding matches.
    #[test]
    fn opens_aes256gcm_sealed_by_pycryptodome() {
        let pair = EnclaveKeyPair::from_secret_bytes(&h(
            "a8f0f43d7c3a5a1a7ce5e2b3f0c4d1e29b8c7a6f5e4d3c2b1a09f8e7d6c5b4a3",
        ))
        .unwrap();
        assert_eq!(
            hex::encode(pair.public_key().as_bytes()),
            "7ac91f2f048291287cf72b558674f7e3fdc40f9da4ac1ee037970682a1f88256"
        );
        let info = ReleaseInfo::new("proj-1", "run-1", "ds", "00112233445566778899aabbccddeeff")
            .to_bytes();
        assert_eq!(
            hex::encode(&info),
            "7365616c726f6f6d2063656b2072656c65617365207631000670726f6a2d31000572756e2d31000264\
             7300203030313132323333343435353636373738383939616162626363646465656666"
        );
        let sealed = SealedCek {
            enc: h("9dc40e9c259613ecc3c22a9d1a708a3e71eb6822eb94978dfa789433df5e4e3c"),
            ciphertext: h(
                "7bf7e93f590354caaac603b4d7935c78e3cf56b972096589dd33ff2be63161d0\
                           44c21973293405e979da3136c08ff51e",
            ),
            info: info.clone(),
        };
        let cek = pair.open(&sealed, &info).unwrap();
        let want: Vec<u8> = (0u8..32).collect();
        assert_eq!(&cek.expose()[..], &want[..]);
    }

    #[test]
    fn labeled_expand_spans_several_blocks() {
        let sid = Suite::SEALROOM.suite_id();
        let long = labeled_expand(&sid, &[1u8; 32], b"x", b"y", 80).unwrap();
        let short = labeled_expand(&sid, &[1u8; 32], b"x", b"y", 32).unwrap();
        assert_eq!(long.len(), 80);
        // The length is part of the labeled info, so prefixes differ.
        assert_ne!(&long[..32], &short[..]);
    }

    #[test]
    fn deterministic_seal_opens() {
        let pair = EnclaveKeyPair::generate().unwrap();
        let cek = Cek::from_bytes([9u8; 32]);
        let sealed = seal_with_ephemeral(&cek, pair.public_key(), b"i", &[3u8; 32]).unwrap();
        assert_eq!(sealed.ciphertext.len(), SEALED_CEK_LEN);
        assert_eq!(pair.open(&sealed, b"i").unwrap().expose(), cek.expose());
    }

    #[test]
    fn low_order_public_key_is_refused() {
        let zero = EnclavePublicKey([0u8; 32]);
        let err = seal_cek(&Cek::from_bytes([1u8; 32]), &zero, b"").unwrap_err();
        assert!(matches!(err, RecipientError::KeyExchange), "{err}");
    }
}
