//! The PKCS#11 key provider: KEK private keys wrapped by an AES-256 key that never leaves an HSM.
//!
//! The token holds one AES-256 *wrapping key*, found by label (made on first use with
//! `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, `CKA_WRAP`/`CKA_UNWRAP` true, and a random
//! `CKA_ID`). RSA-OAEP-SHA256 stays in software (aws-lc-rs): SoftHSM2's RSA-OAEP only does
//! SHA-1, and the WCEK format is fixed. So the RSA private key (PKCS#8 DER) is protected with
//! `CKM_AES_KEY_WRAP_PAD` (RFC 5649): it is put into a session-only generic-secret object
//! and `C_WrapKey`ed; to use it, the blob is `C_UnwrapKey`ed back into a session object whose
//! value is read once, then the object is destroyed and the bytes zeroized after use.
//!
//! The wrapped value is `SHA-256(blob header) || PKCS#8`, which binds the blob's label and
//! wrapping-key reference to the key the same way the file provider's associated data does.
//! The key reference is `<wrapping key label>#<CKA_ID hex>`, so a blob names the exact token
//! object that wrapped it: two processes that both create the wrapping key at the same moment
//! each keep using the one they wrapped with, and all later ones pick the lowest `CKA_ID`.
//!
//! The PIN is read from an environment variable or a file, held in a `SecretString`, and never
//! logged.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sealroom_envelope::kek::KekPrivate;
use sealroom_envelope::recipient::{EnclavePublicKey, SealedCek};
use zeroize::{Zeroize, Zeroizing};

use crate::blob::{KeyBlob, KeyLabel, ProviderKind, SealedPrivateKey};
use crate::error::{BrokerError, Result};
use crate::{GeneratedKek, KeyProvider, WcekCheck};

const BINDING_LEN: usize = 32;
const MAX_PIN_FILE: u64 = 1024;

/// Settings for [`Pkcs11KeyProvider::open`]. `Debug` leaves the PIN out.
pub struct Pkcs11Settings {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: AuthPin,
    /// Label of the AES-256 wrapping key.
    pub wrapping_key_label: String,
}

impl fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<hidden>")
            .field("wrapping_key_label", &self.wrapping_key_label)
            .finish()
    }
}

/// Reads the PIN from the named environment variable or from a file; exactly one is given.
pub fn read_pin(pin_env: Option<&str>, pin_file: Option<&Path>) -> Result<AuthPin> {
    match (pin_env, pin_file) {
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(AuthPin::from(v)),
            _ => Err(BrokerError::Config(format!(
                "the PIN environment variable ${var} is not set"
            ))),
        },
        (None, Some(path)) => {
            use std::io::Read;
            let f = std::fs::File::open(path)
                .map_err(|e| BrokerError::io("cannot open the PIN file", path, e))?;
            let mut text = Zeroizing::new(String::new());
            f.take(MAX_PIN_FILE)
                .read_to_string(&mut text)
                .map_err(|e| BrokerError::io("cannot read the PIN file", path, e))?;
            let pin = text.trim_end_matches(['\r', '\n']);
            if pin.is_empty() {
                return Err(BrokerError::Config(format!(
                    "the PIN file {} is empty",
                    path.display()
                )));
            }
            Ok(AuthPin::from(pin.to_string()))
        }
        (Some(_), Some(_)) => Err(BrokerError::Config(
            "give the PIN either in an environment variable (pin_env) or in a file (pin_file), not both"
                .into(),
        )),
        (None, None) => Err(BrokerError::Config(
            "the PKCS#11 provider needs a PIN: set pin_env or pin_file".into(),
        )),
    }
}

/// One initialised context per module path, for the whole process: `C_Initialize` may be
/// called only once per module.
fn context_for(module: &Path) -> Result<Pkcs11> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let map = CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| BrokerError::HsmUnavailable {
        reason: format!("cannot load the PKCS#11 module {}: {e}", module.display()),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(BrokerError::HsmUnavailable {
                reason: format!("C_Initialize of {} failed: {e}", module.display()),
            })
        }
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// The PKCS#11 key provider.
pub struct Pkcs11KeyProvider {
    ctx: Pkcs11,
    slot: Slot,
    token_label: String,
    pin: AuthPin,
    wrapping_key_label: String,
    /// Serialises token operations (login state is shared by all sessions of the process).
    lock: Mutex<()>,
}

impl fmt::Debug for Pkcs11KeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11KeyProvider")
            .field("token_label", &self.token_label)
            .field("wrapping_key_label", &self.wrapping_key_label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11KeyProvider {
    /// Loads the module, finds the token by label and logs in once to check the PIN.
    pub fn open(settings: Pkcs11Settings) -> Result<Self> {
        if settings.wrapping_key_label.is_empty()
            || settings.wrapping_key_label.len() > 64
            || !settings.wrapping_key_label.is_ascii()
            || settings.wrapping_key_label.contains('#')
        {
            return Err(BrokerError::Config(
                "the wrapping key label must be 1 to 64 ASCII characters without '#'".into(),
            ));
        }
        let ctx = context_for(&settings.module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| unavailable("C_GetSlotList", e))?;
        let mut labels = Vec::new();
        let mut found = None;
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| unavailable("C_GetTokenInfo", e))?;
            let label = info.label().trim_end().to_string();
            if label == settings.token_label {
                found = Some(slot);
                break;
            }
            labels.push(label);
        }
        let slot = found.ok_or_else(|| BrokerError::HsmUnavailable {
            reason: format!(
                "no token labelled {:?} in {} (tokens present: {:?})",
                settings.token_label,
                settings.module.display(),
                labels
            ),
        })?;
        let provider = Pkcs11KeyProvider {
            ctx,
            slot,
            token_label: settings.token_label,
            pin: settings.pin,
            wrapping_key_label: settings.wrapping_key_label,
            lock: Mutex::new(()),
        };
        {
            let _guard = provider.lock.lock().unwrap_or_else(|p| p.into_inner());
            drop(provider.session()?);
        }
        Ok(provider)
    }

    /// A read-write session, logged in as the user.
    fn session(&self) -> Result<Session> {
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| unavailable("C_OpenSession", e))?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(
                rv @ (RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinLocked
                | RvError::PinExpired),
                _,
            )) => Err(BrokerError::HsmLogin {
                token: self.token_label.clone(),
                reason: rv.to_string(),
            }),
            Err(e) => Err(unavailable("C_Login", e)),
        }
    }

    fn wrapping_template(&self) -> Vec<Attribute> {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(self.wrapping_key_label.as_bytes().to_vec()),
        ]
    }

    /// Finds the wrapping key (the one with the lowest `CKA_ID` if a race made several), or
    /// makes it.
    fn find_or_create_wrapping_key(&self, session: &Session) -> Result<(ObjectHandle, Vec<u8>)> {
        if let Some(found) = self.lowest_wrapping_key(session)? {
            return Ok(found);
        }
        let mut id = vec![0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| BrokerError::Crypto("the random generator failed".into()))?;
        let mut template = self.wrapping_template();
        template.extend([
            Attribute::Id(id),
            Attribute::ValueLen(std::os::raw::c_ulong::from(32u8).into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
        ]);
        session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| hsm("C_GenerateKey (wrapping key)", e))?;
        // Another process may have made one at the same moment: everyone takes the lowest id.
        self.lowest_wrapping_key(session)?
            .ok_or_else(|| BrokerError::WrappingKeyMissing {
                token: self.token_label.clone(),
                key: self.wrapping_key_label.clone(),
            })
    }

    fn lowest_wrapping_key(&self, session: &Session) -> Result<Option<(ObjectHandle, Vec<u8>)>> {
        let handles = session
            .find_objects(&self.wrapping_template())
            .map_err(|e| hsm("C_FindObjects (wrapping key)", e))?;
        let mut best: Option<(ObjectHandle, Vec<u8>)> = None;
        for h in handles {
            let id = object_id(session, h)?;
            if best.as_ref().is_none_or(|(_, b)| id < *b) {
                best = Some((h, id));
            }
        }
        if let Some((h, _)) = &best {
            self.check_wrapping_key(session, *h)?;
        }
        Ok(best)
    }

    /// Refuses a wrapping key that could leave the token.
    fn check_wrapping_key(&self, session: &Session, h: ObjectHandle) -> Result<()> {
        let attrs = session
            .get_attributes(h, &[AttributeType::Sensitive, AttributeType::Extractable])
            .map_err(|e| hsm("C_GetAttributeValue (wrapping key)", e))?;
        for a in attrs {
            match a {
                Attribute::Sensitive(false) | Attribute::Extractable(true) => {
                    return Err(BrokerError::Config(format!(
                        "the wrapping key {:?} in token {:?} is extractable or not sensitive; \
                         make a new one with CKA_SENSITIVE true and CKA_EXTRACTABLE false",
                        self.wrapping_key_label, self.token_label
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn wrapping_key_by_id(&self, session: &Session, id: &[u8]) -> Result<ObjectHandle> {
        let mut template = self.wrapping_template();
        template.push(Attribute::Id(id.to_vec()));
        let handles = session
            .find_objects(&template)
            .map_err(|e| hsm("C_FindObjects (wrapping key)", e))?;
        let h = handles
            .first()
            .copied()
            .ok_or_else(|| BrokerError::WrappingKeyMissing {
                token: self.token_label.clone(),
                key: format!("{}#{}", self.wrapping_key_label, hex::encode(id)),
            })?;
        self.check_wrapping_key(session, h)?;
        Ok(h)
    }

    fn seal(&self, label: &KeyLabel, pkcs8: &[u8]) -> Result<SealedPrivateKey> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let session = self.session()?;
        let (wrap_key, id) = self.find_or_create_wrapping_key(&session)?;
        let key_ref = format!("{}#{}", self.wrapping_key_label, hex::encode(&id));
        let header = KeyBlob::header(ProviderKind::Pkcs11, &key_ref, label.as_str())?;
        let mut value = Zeroizing::new(Vec::with_capacity(BINDING_LEN + pkcs8.len()));
        value.extend_from_slice(digest::digest(&digest::SHA256, &header).as_ref());
        value.extend_from_slice(pkcs8);
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Value(value.to_vec()),
        ];
        let object = session.create_object(&template);
        // The template's copy of the key bytes is wiped whether or not the object was made.
        for a in &mut template {
            if let Attribute::Value(v) = a {
                v.zeroize();
            }
        }
        let object = object.map_err(|e| hsm("C_CreateObject (session key)", e))?;
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, wrap_key, object);
        let destroyed = session.destroy_object(object);
        let wrapped = wrapped.map_err(|e| hsm("C_WrapKey (CKM_AES_KEY_WRAP_PAD)", e))?;
        destroyed.map_err(|e| hsm("C_DestroyObject (session key)", e))?;
        let blob = KeyBlob {
            provider: ProviderKind::Pkcs11,
            key_ref,
            label: label.as_str().to_string(),
            payload: wrapped,
        };
        Ok(SealedPrivateKey::from_bytes(blob.encode()?))
    }

    fn open_blob(&self, sealed: &SealedPrivateKey, label: &KeyLabel) -> Result<KekPrivate> {
        let blob = KeyBlob::decode(sealed.as_bytes())?;
        if blob.provider != ProviderKind::Pkcs11 {
            return Err(BrokerError::WrongProvider {
                blob: blob.provider.name(),
                ours: ProviderKind::Pkcs11.name(),
            });
        }
        let (key_label, id_hex) = blob
            .key_ref
            .rsplit_once('#')
            .ok_or_else(|| BrokerError::damaged("the key reference has no '#<id>'"))?;
        let id = hex::decode(id_hex)
            .map_err(|_| BrokerError::damaged("the key reference's id is not hex"))?;
        if key_label != self.wrapping_key_label {
            return Err(BrokerError::WrappingKeyMissing {
                token: self.token_label.clone(),
                key: blob.key_ref.clone(),
            });
        }
        let header = blob.header_bytes()?;
        let value = {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            let session = self.session()?;
            let wrap_key = self.wrapping_key_by_id(&session, &id)?;
            let object = session
                .unwrap_key(
                    &Mechanism::AesKeyWrapPad,
                    wrap_key,
                    &blob.payload,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::GENERIC_SECRET),
                        Attribute::Token(false),
                        Attribute::Private(true),
                        Attribute::Sensitive(false),
                        Attribute::Extractable(true),
                    ],
                )
                .map_err(|e| match e {
                    CkError::Pkcs11(
                        RvError::WrappedKeyInvalid
                        | RvError::WrappedKeyLenRange
                        | RvError::EncryptedDataInvalid
                        | RvError::EncryptedDataLenRange
                        | RvError::DataInvalid
                        | RvError::DataLenRange,
                        _,
                    ) => BrokerError::damaged(format!(
                        "the HSM refused to unwrap it (the wrapped key was modified): {e}"
                    )),
                    // SoftHSM2 reports a failed RFC 5649 integrity check as a general error.
                    CkError::Pkcs11(RvError::GeneralError, _) => BrokerError::damaged(format!(
                        "the HSM could not unwrap it: the RFC 5649 integrity check failed \
                         (the wrapped key was modified) or the HSM failed: {e}"
                    )),
                    e => hsm("C_UnwrapKey (CKM_AES_KEY_WRAP_PAD)", e),
                })?;
            let attrs = session.get_attributes(object, &[AttributeType::Value]);
            let destroyed = session.destroy_object(object);
            let attrs = attrs.map_err(|e| hsm("C_GetAttributeValue (session key)", e))?;
            destroyed.map_err(|e| hsm("C_DestroyObject (session key)", e))?;
            let mut value = None;
            for a in attrs {
                if let Attribute::Value(v) = a {
                    value = Some(Zeroizing::new(v));
                }
            }
            value.ok_or_else(|| BrokerError::Hsm {
                operation: "C_GetAttributeValue (session key)".into(),
                reason: "no CKA_VALUE returned".into(),
            })?
        };
        if value.len() <= BINDING_LEN {
            return Err(BrokerError::damaged("the unwrapped value is too short"));
        }
        let expected = digest::digest(&digest::SHA256, &header);
        // Constant time, although neither side is secret: the hash of a public header.
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            &value[..BINDING_LEN],
            expected.as_ref(),
        )
        .is_err()
        {
            return Err(BrokerError::damaged(
                "the blob's header (label or key reference) was modified",
            ));
        }
        if blob.label != label.as_str() {
            return Err(BrokerError::LabelMismatch {
                expected: label.as_str().to_string(),
                found: blob.label,
            });
        }
        KekPrivate::from_pkcs8_der(&value[BINDING_LEN..]).map_err(|e| {
            BrokerError::damaged(format!("the wrapped private key does not parse: {e}"))
        })
    }
}

impl KeyProvider for Pkcs11KeyProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Pkcs11
    }

    fn key_ref(&self) -> String {
        format!(
            "pkcs11:token={};object={}",
            self.token_label, self.wrapping_key_label
        )
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
        crate::check_with(&self.open_blob(sealed, label)?, wcek)
    }

    fn release(
        &self,
        sealed: &SealedPrivateKey,
        label: &KeyLabel,
        wcek: &[u8],
        recipient: &EnclavePublicKey,
        info: &[u8],
    ) -> Result<SealedCek> {
        crate::release_with(&self.open_blob(sealed, label)?, wcek, recipient, info)
    }
}

fn object_id(session: &Session, h: ObjectHandle) -> Result<Vec<u8>> {
    let attrs = session
        .get_attributes(h, &[AttributeType::Id])
        .map_err(|e| hsm("C_GetAttributeValue (CKA_ID)", e))?;
    Ok(attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::Id(id) => Some(id),
            _ => None,
        })
        .unwrap_or_default())
}

fn unavailable(operation: &str, e: CkError) -> BrokerError {
    BrokerError::HsmUnavailable {
        reason: format!("{operation} failed: {e}"),
    }
}

fn hsm(operation: &str, e: CkError) -> BrokerError {
    match e {
        CkError::Pkcs11(
            RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::CryptokiNotInitialized
            | RvError::UserNotLoggedIn,
            _,
        )
        | CkError::LibraryLoading(_) => unavailable(operation, e),
        e => BrokerError::Hsm {
            operation: operation.into(),
            reason: e.to_string(),
        },
    }
}
