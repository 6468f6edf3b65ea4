//! The crate's error type.

use crate::Technology;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why evidence was refused (or could not be produced).
///
/// Every refusal names what was checked, so that the broker can write a precise reason to the
/// audit log. None of these messages contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input larger than the parser accepts.
    #[error("{what} is too large: {len} bytes (limit {max})")]
    TooLarge {
        /// What was being parsed.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Input ended before a field it declares.
    #[error("{what} is truncated: needed {need} bytes at offset {offset}, {have} available")]
    Truncated {
        /// What was being parsed.
        what: &'static str,
        /// Where the missing field starts.
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// Input is structurally wrong.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Why it is malformed.
        reason: String,
    },
    /// A format version this crate does not understand.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// What was being parsed.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A signature does not verify.
    #[error("signature over the {what} does not verify with the {key}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
        /// Which key was used.
        key: &'static str,
    },
    /// A certificate in a chain is refused.
    #[error("certificate chain refused at {cert}: {reason}")]
    CertChain {
        /// Which certificate.
        cert: String,
        /// Why.
        reason: String,
    },
    /// A certificate or collateral document is not valid at the verification time.
    #[error("{what} is not valid at {now} (valid from {not_before} to {not_after}, Unix seconds)")]
    NotValidAt {
        /// What was checked.
        what: String,
        /// Verification time.
        now: u64,
        /// Start of validity.
        not_before: u64,
        /// End of validity.
        not_after: u64,
    },
    /// The evidence's report data is not the expected binding.
    #[error("report data does not match the expected binding (evidence has {found})")]
    ReportDataMismatch {
        /// The report data found, hex.
        found: String,
    },
    /// The measurement is not one of the reference values.
    #[error("measurement {measurement} is not among the {count} reference measurement(s)")]
    MeasurementNotAllowed {
        /// The measurement found, hex.
        measurement: String,
        /// How many reference values the policy has.
        count: usize,
    },
    /// A TCB component is below the policy's minimum.
    #[error("TCB component {component} is {reported}, below the minimum {minimum}")]
    TcbTooLow {
        /// Component name.
        component: &'static str,
        /// Reported value.
        reported: u32,
        /// Policy minimum.
        minimum: u32,
    },
    /// The TCB in a report differs from the TCB the signing key was issued for.
    #[error("TCB component {component}: report says {report}, signing certificate says {cert}")]
    TcbMismatch {
        /// Component name.
        component: &'static str,
        /// Value in the report.
        report: u32,
        /// Value in the certificate.
        cert: u32,
    },
    /// The platform's TCB status is not acceptable.
    #[error("TCB status {status} is not accepted by the policy")]
    TcbStatusRefused {
        /// The computed status.
        status: String,
    },
    /// Debugging is enabled and the policy forbids it.
    #[error("the TEE allows debugging ({detail}) and the policy forbids debug")]
    DebugNotAllowed {
        /// What flag said so.
        detail: &'static str,
    },
    /// Some other field disagrees with what it must be.
    #[error("{what} mismatch: expected {expected}, found {found}")]
    Mismatch {
        /// The field.
        what: &'static str,
        /// What it must be.
        expected: String,
        /// What it is.
        found: String,
    },
    /// Collateral (TCB info, QE identity, CRL) is refused.
    #[error("collateral {what} refused: {reason}")]
    Collateral {
        /// Which document.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A certificate has been revoked.
    #[error("certificate {cert} (serial {serial}) is revoked by the {crl}")]
    Revoked {
        /// Which certificate.
        cert: String,
        /// Its serial number, hex.
        serial: String,
        /// Which CRL.
        crl: &'static str,
    },
    /// Simulated evidence offered to a project that is not simulated.
    #[error("SIMULATED evidence refused: the project's technology is {project}, not simulated")]
    SimulatedRefused {
        /// The project's technology.
        project: Technology,
    },
    /// Evidence of one technology offered where another is required.
    #[error("evidence is from {found}, the project requires {expected}")]
    TechnologyMismatch {
        /// Required.
        expected: Technology,
        /// Offered.
        found: Technology,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Support for something is not compiled into this build.
    #[error("support for {0} is not enabled in this build")]
    NotEnabled(&'static str),
    /// A cryptographic operation failed for a reason other than a bad signature.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

impl Error {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn chain(cert: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::CertChain {
            cert: cert.into(),
            reason: reason.into(),
        }
    }
}
