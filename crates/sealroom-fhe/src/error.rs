//! Errors of the FHE split-inference library.

/// Everything that can go wrong in `sealroom-fhe`. Messages name the problem for the user; none
/// carries key material.
#[derive(Debug, thiserror::Error)]
pub enum FheError {
    /// A model document is malformed or inconsistent.
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The caller asked for a split the model does not allow.
    #[error("invalid split: {0}")]
    InvalidSplit(String),
    /// An input vector does not fit the model.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Bytes that should hold a key or ciphertext are malformed (untrusted data).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read ("server key", "input ciphertext", ...).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Bytes exceed the size limit for their kind.
    #[error("{what} is too large: {size} bytes (limit {limit})")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Key and ciphertext (or model) use different parameter sets.
    #[error("parameter mismatch: {0}")]
    ParamMismatch(String),
    /// The evaluation ran past its time budget and was abandoned.
    #[error("time budget of {budget_ms} ms exceeded after {done} of {total} bootstraps")]
    TimeBudgetExceeded {
        /// The budget.
        budget_ms: u128,
        /// Bootstraps finished.
        done: usize,
        /// Bootstraps needed.
        total: usize,
    },
    /// A data set file could not be read.
    #[error("invalid data set: {0}")]
    InvalidDataset(String),
}

/// `Result` with [`FheError`].
pub type Result<T, E = FheError> = std::result::Result<T, E>;

pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> FheError {
    FheError::Malformed {
        what,
        reason: reason.into(),
    }
}
