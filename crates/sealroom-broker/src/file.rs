//! The file key provider: KEK private keys sealed with AES-256-GCM under a 32-byte master key.
//!
//! The master key comes from `SEALROOM_MASTER_KEY` (base64 of 32 bytes) when that is set, else
//! from `<data-dir>/master.key`, which is created on first use with mode 0600 (base64 text, so
//! it can be moved into the environment variable) and refused if group or others may read it.
//!
//! A blob's payload is a random 96-bit nonce followed by AES-256-GCM of the PKCS#8 DER private
//! key, with the blob header (version, provider, master key id, label) as associated data.
//! The key reference is the master key's id, `SHA-256("sealroom master key id v1" || key)`
//! cut to 16 bytes, in hex: a blob sealed under another master key is named as such instead of
//! failing as "damaged".

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use sealroom_envelope::kek::KekPrivate;
use sealroom_envelope::recipient::{EnclavePublicKey, SealedCek};
use zeroize::Zeroizing;

use crate::blob::{KeyBlob, KeyLabel, ProviderKind, SealedPrivateKey};
use crate::error::{BrokerError, Result};
use crate::{GeneratedKek, KeyProvider, WcekCheck};

/// The environment variable that holds the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "SEALROOM_MASTER_KEY";
/// The master key file's name inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
const MASTER_KEY_LEN: usize = 32;
const MASTER_ID_DOMAIN: &[u8] = b"sealroom master key id v1";
const MAX_MASTER_FILE: u64 = 1024;
const TAG_LEN: usize = 16;

/// A 32-byte master key and its id. `Debug` shows only the id.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
    source: String,
}

impl MasterKey {
    /// A master key from its 32 bytes; `source` says where it came from, for messages.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(BrokerError::MasterKey {
                source_desc: source.into(),
                reason: format!(
                    "{} bytes; a master key is {MASTER_KEY_LEN} bytes",
                    bytes.len()
                ),
            });
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(MASTER_ID_DOMAIN);
        ctx.update(bytes);
        let id = hex::encode(&ctx.finish().as_ref()[..16]);
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, bytes)
                .map_err(|_| BrokerError::Crypto("AES-256-GCM key setup failed".into()))?,
        );
        Ok(MasterKey {
            key,
            id,
            source: source.into(),
        })
    }

    /// A master key from base64 text (standard or URL-safe, padding optional).
    pub fn from_base64(text: &str, source: &str) -> Result<Self> {
        let bytes = decode_base64(text.trim()).ok_or_else(|| BrokerError::MasterKey {
            source_desc: source.into(),
            reason: "not base64 of 32 bytes".into(),
        })?;
        Self::from_bytes(&bytes, source)
    }

    /// Reads `<data_dir>/master.key`, creating it (mode 0600, 32 random bytes as base64) when
    /// it does not exist. Refuses an existing file that group or others can access.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(MASTER_KEY_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => Self::read_file(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(&path, data_dir),
            Err(e) => Err(BrokerError::io(
                "cannot inspect the master key file",
                &path,
                e,
            )),
        }
    }

    /// Reads a master key file (base64 of 32 bytes, or the raw 32 bytes).
    pub fn read_file(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        let bad = |reason: String| BrokerError::MasterKey {
            source_desc: source.clone(),
            reason,
        };
        let meta = fs::symlink_metadata(path)
            .map_err(|e| BrokerError::io("cannot inspect the master key file", path, e))?;
        if !meta.file_type().is_file() {
            return Err(bad("not a regular file (symbolic links are refused)".into()));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "mode {mode:04o} lets group or others access it; run `chmod 600 {}`",
                path.display()
            )));
        }
        if meta.len() > MAX_MASTER_FILE {
            return Err(bad(format!(
                "{} bytes is too large for a master key file",
                meta.len()
            )));
        }
        let mut f = fs::File::open(path)
            .map_err(|e| BrokerError::io("cannot open the master key file", path, e))?;
        // The file could have been swapped between the checks and the open: check the opened one.
        let opened = f
            .metadata()
            .map_err(|e| BrokerError::io("cannot inspect the master key file", path, e))?;
        if opened.ino() != meta.ino() || opened.dev() != meta.dev() {
            return Err(bad("the file changed while it was being opened".into()));
        }
        let mut data = Zeroizing::new(Vec::new());
        Read::take(&mut f, MAX_MASTER_FILE)
            .read_to_end(&mut data)
            .map_err(|e| BrokerError::io("cannot read the master key file", path, e))?;
        if data.len() == MASTER_KEY_LEN {
            return Self::from_bytes(&data, &source);
        }
        let text = std::str::from_utf8(&data)
            .map_err(|_| bad("neither 32 raw bytes nor base64 text".into()))?;
        Self::from_base64(text, &source)
    }

    fn create(path: &Path, data_dir: &Path) -> Result<Self> {
        fs::create_dir_all(data_dir)
            .map_err(|e| BrokerError::io("cannot create the data directory", data_dir, e))?;
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        SystemRandom::new()
            .fill(&mut key[..])
            .map_err(|_| BrokerError::Crypto("the random generator failed".into()))?;
        let text = Zeroizing::new(format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(&key[..])
        ));
        // Write a private temporary file, then link it into place without replacing anything:
        // another process creating the key at the same moment wins or loses as a whole.
        let mut tmp = tempfile::Builder::new()
            .prefix(".master.key.")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(data_dir)
            .map_err(|e| BrokerError::io("cannot create a temporary file", data_dir, e))?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| BrokerError::io("cannot write the master key file", path, e))?;
        match tmp.persist_noclobber(path) {
            Ok(_) => Self::from_bytes(&key[..], &path.display().to_string()),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Self::read_file(path),
            Err(e) => Err(BrokerError::io(
                "cannot create the master key file",
                path,
                e.error,
            )),
        }
    }

    /// The master key's id (hex), recorded in every blob it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the key came from (a path or the environment variable's name).
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {}, from {})", self.id, self.source)
    }
}

/// The file key provider.
#[derive(Debug)]
pub struct FileKeyProvider {
    master: MasterKey,
}

impl FileKeyProvider {
    /// A provider with the given master key.
    pub fn new(master: MasterKey) -> Self {
        FileKeyProvider { master }
    }

    /// The master key from `SEALROOM_MASTER_KEY` when it is set and not empty, else from
    /// `<data_dir>/master.key` (created on first use).
    pub fn from_env_or_data_dir(data_dir: &Path) -> Result<Self> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let v = Zeroizing::new(v);
                Ok(Self::new(MasterKey::from_base64(
                    &v,
                    &format!("from ${MASTER_KEY_ENV}"),
                )?))
            }
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                Ok(Self::new(MasterKey::load_or_create(data_dir)?))
            }
            Err(std::env::VarError::NotUnicode(_)) => Err(BrokerError::MasterKey {
                source_desc: format!("from ${MASTER_KEY_ENV}"),
                reason: "not valid UTF-8".into(),
            }),
        }
    }

    /// The master key's id.
    pub fn master_key_id(&self) -> &str {
        self.master.id()
    }

    fn seal(&self, label: &KeyLabel, pkcs8: &[u8]) -> Result<SealedPrivateKey> {
        let header = KeyBlob::header(ProviderKind::File, self.master.id(), label.as_str())?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| BrokerError::Crypto("the random generator failed".into()))?;
        let mut buf = pkcs8.to_vec();
        self.master
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header[..]),
                &mut buf,
            )
            .map_err(|_| BrokerError::Crypto("AES-256-GCM sealing failed".into()))?;
        let mut payload = nonce.to_vec();
        payload.extend_from_slice(&buf);
        let blob = KeyBlob {
            provider: ProviderKind::File,
            key_ref: self.master.id().to_string(),
            label: label.as_str().to_string(),
            payload,
        };
        Ok(SealedPrivateKey::from_bytes(blob.encode()?))
    }

    fn open(&self, sealed: &SealedPrivateKey, label: &KeyLabel) -> Result<KekPrivate> {
        let blob = KeyBlob::decode(sealed.as_bytes())?;
        if blob.provider != ProviderKind::File {
            return Err(BrokerError::WrongProvider {
                blob: blob.provider.name(),
                ours: ProviderKind::File.name(),
            });
        }
        if blob.key_ref != self.master.id() {
            return Err(BrokerError::WrongMasterKey {
                blob: blob.key_ref,
                ours: self.master.id().to_string(),
            });
        }
        if blob.payload.len() < NONCE_LEN + TAG_LEN {
            return Err(BrokerError::damaged(format!(
                "the payload is {} bytes, shorter than a nonce and a tag",
                blob.payload.len()
            )));
        }
        let header = blob.header_bytes()?;
        let (nonce, ct) = blob.payload.split_at(NONCE_LEN);
        let mut nonce_arr = [0u8; NONCE_LEN];
        nonce_arr.copy_from_slice(nonce);
        let mut buf = Zeroizing::new(ct.to_vec());
        let n = self
            .master
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_arr),
                Aad::from(&header[..]),
                &mut buf,
            )
            .map_err(|_| {
                BrokerError::damaged(
                    "AES-256-GCM authentication failed: the blob or its header was modified",
                )
            })?
            .len();
        // Authenticated: the label in the header is the one it was sealed with.
        if blob.label != label.as_str() {
            return Err(BrokerError::LabelMismatch {
                expected: label.as_str().to_string(),
                found: blob.label,
            });
        }
        KekPrivate::from_pkcs8_der(&buf[..n]).map_err(|e| {
            BrokerError::damaged(format!("the sealed private key does not parse: {e}"))
        })
    }
}

impl KeyProvider for FileKeyProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::File
    }

    fn key_ref(&self) -> String {
        format!("file:master-key-id={}", self.master.id())
    }

    fn generate_kek(&self, label: &KeyLabel) -> Result<GeneratedKek> {
        let (pkcs8, public_der) = crate::new_kek_pair()?;
        let sealed_private = self.seal(label, &pkcs8)?;
        Ok(GeneratedKek {
            public_der,
            sealed_private,
            key_ref: self.key_ref(),
        })
    }

    fn check_wcek(
        &self,
        sealed: &SealedPrivateKey,
        label: &KeyLabel,
        wcek: &[u8],
    ) -> Result<WcekCheck> {
        crate::check_with(&self.open(sealed, label)?, wcek)
    }

    fn release(
        &self,
        sealed: &SealedPrivateKey,
        label: &KeyLabel,
        wcek: &[u8],
        recipient: &EnclavePublicKey,
        info: &[u8],
    ) -> Result<SealedCek> {
        crate::release_with(&self.open(sealed, label)?, wcek, recipient, info)
    }
}

/// The master key file's path for a data directory.
pub fn master_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(MASTER_KEY_FILE)
}

fn decode_base64(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        if let Ok(v) = engine.decode(text) {
            return Some(Zeroizing::new(v));
        }
    }
    None
}
