//! The broker's error type. Variants name the problem so that the server can map them to its
//! stable API codes ([`BrokerError::class`]) and a person can act on the message.

use std::path::PathBuf;

use sealroom_envelope::recipient::RecipientError;

/// Result alias for this crate.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// What kind of failure an error is, for callers that map errors to API codes or exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The caller's WCEK does not unwrap under the KEK (a 4xx for an upload).
    BadWcek,
    /// The recipient key or release information given by the caller is unusable (a 4xx).
    BadRecipient,
    /// The stored key blob is damaged, belongs elsewhere, or was sealed under another master
    /// key / wrapping key (an operator problem: the data or the configuration is wrong).
    BadKeyBlob,
    /// The key provider cannot be used: HSM unreachable, wrong PIN, wrapping key missing,
    /// master key unreadable (an operator problem: retry after fixing the provider).
    ProviderUnavailable,
    /// The configuration is invalid or names a backend this build does not include.
    Config,
    /// A cryptographic primitive failed unexpectedly.
    Internal,
}

/// Everything that can go wrong in a key provider.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The WCEK does not unwrap under this KEK: wrapped to another key, with other parameters,
    /// modified, or not a WCEK at all.
    #[error("the WCEK does not unwrap under this project role's KEK: {reason}")]
    WcekDoesNotUnwrap { reason: String },

    /// The stored private-key blob cannot be parsed or fails authentication.
    #[error("the stored key blob is damaged or was modified: {reason}")]
    DamagedKeyBlob { reason: String },

    /// The blob was sealed under a master key other than the one this provider holds.
    #[error(
        "the stored key blob was sealed under another master key (blob: master key id {blob}, \
         this server: master key id {ours}); restore the master key it was made with"
    )]
    WrongMasterKey { blob: String, ours: String },

    /// The blob was made by another kind of key provider.
    #[error(
        "the stored key blob was made by the {blob} key provider, this is the {ours} provider"
    )]
    WrongProvider {
        blob: &'static str,
        ours: &'static str,
    },

    /// The blob is valid but was made for another project or role than the caller asked for.
    #[error("the stored key blob belongs to {found:?}, not to {expected:?}")]
    LabelMismatch { expected: String, found: String },

    /// The master key cannot be read, created or parsed.
    #[error("master key {source_desc}: {reason}")]
    MasterKey { source_desc: String, reason: String },

    /// The PKCS#11 module cannot be loaded, the token is absent, or a session cannot be opened.
    #[error("the HSM is unavailable: {reason}")]
    HsmUnavailable { reason: String },

    /// The token refused the PIN (or the PIN is locked).
    #[error("the HSM refused the PIN for token {token:?}: {reason}")]
    HsmLogin { token: String, reason: String },

    /// The wrapping key a blob names is not (or no longer) in the token.
    #[error("the HSM wrapping key {key:?} is missing from token {token:?}")]
    WrappingKeyMissing { token: String, key: String },

    /// Any other HSM failure, with the function and the PKCS#11 return value.
    #[error("HSM operation {operation} failed: {reason}")]
    Hsm { operation: String, reason: String },

    /// The enclave key or release information cannot be used for sealing.
    #[error(transparent)]
    Recipient(#[from] RecipientError),

    /// Invalid configuration.
    #[error("key provider configuration: {0}")]
    Config(String),

    /// The configuration names a backend that this build leaves out.
    #[error("support for the {backend} key provider is not enabled in this build (cargo feature `{feature}`)")]
    NotEnabled {
        backend: &'static str,
        feature: &'static str,
    },

    /// A file could not be read or written.
    #[error("{context} ({}): {source}", .path.display())]
    Io {
        context: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A primitive failed (random generation, key generation, encoding).
    #[error("{0}")]
    Crypto(String),
}

impl BrokerError {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            BrokerError::WcekDoesNotUnwrap { .. } => ErrorClass::BadWcek,
            BrokerError::Recipient(_) => ErrorClass::BadRecipient,
            BrokerError::DamagedKeyBlob { .. }
            | BrokerError::WrongMasterKey { .. }
            | BrokerError::WrongProvider { .. }
            | BrokerError::LabelMismatch { .. } => ErrorClass::BadKeyBlob,
            BrokerError::MasterKey { .. }
            | BrokerError::HsmUnavailable { .. }
            | BrokerError::HsmLogin { .. }
            | BrokerError::WrappingKeyMissing { .. }
            | BrokerError::Hsm { .. }
            | BrokerError::Io { .. } => ErrorClass::ProviderUnavailable,
            BrokerError::Config(_) | BrokerError::NotEnabled { .. } => ErrorClass::Config,
            BrokerError::Crypto(_) => ErrorClass::Internal,
        }
    }

    pub(crate) fn io(
        context: impl Into<String>,
        path: &std::path::Path,
        e: std::io::Error,
    ) -> Self {
        BrokerError::Io {
            context: context.into(),
            path: path.to_path_buf(),
            source: e,
        }
    }

    pub(crate) fn damaged(reason: impl Into<String>) -> Self {
        BrokerError::DamagedKeyBlob {
            reason: reason.into(),
        }
    }
}
