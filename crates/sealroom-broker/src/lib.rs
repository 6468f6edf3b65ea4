//! Sealroom's key broker, key-provider half: where KEK private keys live.
//!
//! A [`KeyProvider`] makes a per-project, per-role RSA-4096 KEK pair and hands back the public
//! half (SPKI DER) and the private half *sealed for storage* ([`SealedPrivateKey`], an opaque
//! versioned blob that the metadata store keeps). Later it opens that blob only inside itself:
//!
//! * [`KeyProvider::check_wcek`] unwraps an uploaded WCEK and returns facts about it (the CEK's
//!   key id, the WCEK's SHA-256) — never the CEK;
//! * [`KeyProvider::release`] unwraps a WCEK and at once seals the CEK to an attested enclave's
//!   ephemeral X25519 key with HPKE ([`sealroom_envelope::recipient`]).
//!
//! Providers: [`file::FileKeyProvider`] (AES-256-GCM under a master key from the data directory
//! or the environment; the default) and, with the `pkcs11` feature (on by default),
//! [`pkcs11::Pkcs11KeyProvider`] (AES key wrap with padding under a non-extractable AES-256 key
//! inside an HSM). [`KeyProviderConfig`] and [`open_provider`] pick one from configuration.
//! `docs/keys.md` describes the key hierarchy and what each provider protects against.
//!
//! ```
//! use sealroom_broker::{open_provider, KeyLabel, KeyProviderConfig};
//! use sealroom_envelope::{kek::KekPublic, recipient::EnclaveKeyPair, Cek};
//!
//! let dir = tempfile::tempdir()?;
//! let provider = open_provider(&KeyProviderConfig::File {
//!     data_dir: dir.path().to_path_buf(),
//! })?;
//! let label = KeyLabel::for_project_role("p1", "ds")?;
//! let kek = provider.generate_kek(&label)?; // store kek.public_der and kek.sealed_private
//!
//! // The data steward wraps its CEK to the public KEK and uploads the WCEK.
//! let cek = Cek::generate()?;
//! let wcek = KekPublic::from_der(&kek.public_der)?.wrap(&cek)?;
//! let check = provider.check_wcek(&kek.sealed_private, &label, &wcek)?;
//! assert_eq!(check.cek_key_id, cek.key_id());
//!
//! // An attested enclave gets the CEK sealed to its ephemeral key.
//! let enclave = EnclaveKeyPair::generate()?;
//! let sealed = provider.release(&kek.sealed_private, &label, &wcek, enclave.public_key(), b"run 7")?;
//! assert_eq!(enclave.open(&sealed, b"run 7")?.key_id(), cek.key_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use sealroom_envelope::kek::KekPrivate;
use sealroom_envelope::recipient::{seal_cek, EnclavePublicKey, SealedCek};
use sealroom_envelope::KeyId;
use serde::Deserialize;
use zeroize::Zeroizing;

pub mod blob;
pub mod error;
pub mod file;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;

pub use blob::{BlobInfo, KeyLabel, ProviderKind, SealedPrivateKey};
pub use error::{BrokerError, ErrorClass, Result};

/// Largest WCEK accepted: the ciphertext size of an RSA-8192 KEK.
pub const MAX_WCEK_LEN: usize = 1024;

/// Holds KEK private keys and uses them without letting them, or the CEKs they unwrap, out.
///
/// Object safe; providers are shared as `Arc<dyn KeyProvider>` across threads.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// Which kind of provider this is.
    fn kind(&self) -> ProviderKind;

    /// The provider's reference to its wrapping key, for the store's records (no secret).
    fn key_ref(&self) -> String;

    /// Makes an RSA-4096 KEK pair for `label` (e.g. [`KeyLabel::for_project_role`]): the
    /// public half as SPKI DER and the private half sealed for storage, bound to the label.
    fn generate_kek(&self, label: &KeyLabel) -> Result<GeneratedKek>;

    /// Unwraps `wcek` with the sealed KEK private key stored for `label` and returns facts
    /// about it. Fails with [`BrokerError::WcekDoesNotUnwrap`] when it does not unwrap.
    fn check_wcek(
        &self,
        sealed: &SealedPrivateKey,
        label: &KeyLabel,
        wcek: &[u8],
    ) -> Result<WcekCheck>;

    /// Unwraps `wcek` and seals the CEK to `recipient` with HPKE, bound to `info` (e.g.
    /// [`sealroom_envelope::recipient::ReleaseInfo::to_bytes`]). The caller decides *whether*
    /// to release (attestation, policy); this only does it.
    fn release(
        &self,
        sealed: &SealedPrivateKey,
        label: &KeyLabel,
        wcek: &[u8],
        recipient: &EnclavePublicKey,
        info: &[u8],
    ) -> Result<SealedCek>;
}

/// A new KEK pair: what the store keeps.
#[derive(Debug, Clone)]
pub struct GeneratedKek {
    /// The public KEK, SPKI DER (the `<project>-<random>-<role>.der` download).
    pub public_der: Vec<u8>,
    /// The private half, sealed for storage.
    pub sealed_private: SealedPrivateKey,
    /// The provider's reference to its wrapping key (no secret).
    pub key_ref: String,
}

/// Facts about a WCEK that unwrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WcekCheck {
    /// The key id of the CEK inside.
    pub cek_key_id: KeyId,
    /// SHA-256 of the WCEK bytes.
    pub wcek_sha256: [u8; 32],
}

impl WcekCheck {
    /// The WCEK's fingerprint: SHA-256 of its bytes, lowercase hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.wcek_sha256)
    }
}

/// Which key provider to use: a tagged enum (`kind = "file"` or `kind = "pkcs11"`), parsed once
/// at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyProviderConfig {
    /// Encrypted file store: master key from `SEALROOM_MASTER_KEY` or `<data_dir>/master.key`.
    File {
        /// The server's data directory.
        data_dir: PathBuf,
    },
    /// A PKCS#11 token.
    Pkcs11 {
        /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
        module: PathBuf,
        /// The token's label.
        token_label: String,
        /// Name of the environment variable that holds the user PIN.
        #[serde(default)]
        pin_env: Option<String>,
        /// File that holds the user PIN (trailing newline ignored).
        #[serde(default)]
        pin_file: Option<PathBuf>,
        /// Label of the AES-256 wrapping key in the token (made on first use).
        #[serde(default = "default_wrapping_key_label")]
        wrapping_key_label: String,
    },
}

/// The default label of the HSM wrapping key.
pub const DEFAULT_WRAPPING_KEY_LABEL: &str = "sealroom-kek-wrapping-key";

fn default_wrapping_key_label() -> String {
    DEFAULT_WRAPPING_KEY_LABEL.to_string()
}

/// Opens the configured key provider.
pub fn open_provider(config: &KeyProviderConfig) -> Result<Arc<dyn KeyProvider>> {
    match config {
        KeyProviderConfig::File { data_dir } => Ok(Arc::new(
            file::FileKeyProvider::from_env_or_data_dir(data_dir)?,
        )),
        #[cfg(feature = "pkcs11")]
        KeyProviderConfig::Pkcs11 {
            module,
            token_label,
            pin_env,
            pin_file,
            wrapping_key_label,
        } => {
            let pin = pkcs11::read_pin(pin_env.as_deref(), pin_file.as_deref())?;
            Ok(Arc::new(pkcs11::Pkcs11KeyProvider::open(
                pkcs11::Pkcs11Settings {
                    module: module.clone(),
                    token_label: token_label.clone(),
                    pin,
                    wrapping_key_label: wrapping_key_label.clone(),
                },
            )?))
        }
        #[cfg(not(feature = "pkcs11"))]
        KeyProviderConfig::Pkcs11 { .. } => Err(BrokerError::NotEnabled {
            backend: "pkcs11",
            feature: "pkcs11",
        }),
    }
}

/// A fresh RSA-4096 key pair: (PKCS#8 DER private key, SPKI DER public key).
pub(crate) fn new_kek_pair() -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let key = PrivateDecryptingKey::generate(KeySize::Rsa4096)
        .map_err(|_| BrokerError::Crypto("RSA-4096 key generation failed".into()))?;
    let pkcs8: Pkcs8V1Der<'static> = key
        .as_der()
        .map_err(|_| BrokerError::Crypto("cannot encode the private key".into()))?;
    let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
    let public: PublicKeyX509Der<'static> = key
        .public_key()
        .as_der()
        .map_err(|_| BrokerError::Crypto("cannot encode the public key".into()))?;
    Ok((pkcs8, public.as_ref().to_vec()))
}

fn unwrap_wcek(kek: &KekPrivate, wcek: &[u8]) -> Result<sealroom_envelope::Cek> {
    if wcek.len() > MAX_WCEK_LEN {
        return Err(BrokerError::WcekDoesNotUnwrap {
            reason: format!(
                "{} bytes is longer than any WCEK ({MAX_WCEK_LEN} at most)",
                wcek.len()
            ),
        });
    }
    kek.unwrap(wcek)
        .map_err(|e| BrokerError::WcekDoesNotUnwrap {
            reason: e.to_string(),
        })
}

pub(crate) fn check_with(kek: &KekPrivate, wcek: &[u8]) -> Result<WcekCheck> {
    let cek = unwrap_wcek(kek, wcek)?;
    let mut wcek_sha256 = [0u8; 32];
    wcek_sha256.copy_from_slice(digest::digest(&digest::SHA256, wcek).as_ref());
    Ok(WcekCheck {
        cek_key_id: cek.key_id(),
        wcek_sha256,
    })
}

pub(crate) fn release_with(
    kek: &KekPrivate,
    wcek: &[u8],
    recipient: &EnclavePublicKey,
    info: &[u8],
) -> Result<SealedCek> {
    let cek = unwrap_wcek(kek, wcek)?;
    Ok(seal_cek(&cek, recipient, info)?)
}
