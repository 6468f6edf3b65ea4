//! Sealroom attestation: the [`Attester`] and [`Verifier`] traits, the report-data binding of the
//! key-release protocol, and one verifier per TEE technology.
//!
//! | technology | verifier | evidence |
//! |---|---|---|
//! | [`Technology::Simulated`] | [`sim::SimulatedVerifier`] | a report signed by a per-site Ed25519 key — **not a TEE** |
//! | [`Technology::SevSnp`] | [`snp::SnpVerifier`] | AMD SEV-SNP attestation report + VCEK (ARK → ASK → VCEK) |
//! | [`Technology::AzureSnpVtpm`] | [`azure::AzureSnpVtpmVerifier`] | Azure CVM: HCL report (SNP report binding the vTPM AK) + vTPM quote |
//! | [`Technology::Tdx`] | [`tdx::TdxVerifier`] | Intel TDX DCAP quote v4 + PCS collateral |
//!
//! Every verifier takes the evidence, the expected report data (normally
//! [`key_release_binding`]) and an explicit [`VerificationTime`], and returns typed [`Claims`] or
//! an [`Error`] saying precisely what was refused. See `docs/attestation.md` for what each verifier
//! checks and what it does not.
//!
//! ```
//! use sealroom_attest::{key_release_binding, sim, Attester, Technology, Verifier, VerificationTime};
//!
//! let attester = sim::SimulatedAttester::generate([0u8; 48]).unwrap();
//! let verifier = sim::SimulatedVerifier::new(&attester.public_key()).unwrap();
//! let rd = key_release_binding(b"nonce", "run-1", &[9u8; 32], b"sha256:00").unwrap();
//! let evidence = attester.attest(&rd).unwrap();
//! let claims = verifier.verify(&evidence, &rd, VerificationTime::now()).unwrap();
//! assert!(claims.simulated);
//! // A project created for real hardware refuses it:
//! assert!(sealroom_attest::check_technology(Technology::SevSnp, &claims).is_err());
//! ```

pub mod azure;
mod binding;
pub mod claims;
pub mod config;
mod error;
pub mod policy;
mod reader;
pub mod sim;
pub mod snp;
pub mod tdx;
mod time;
mod tpm;
#[cfg(feature = "configfs-tsm")]
pub mod tsm;
mod x509;

pub use binding::{
    attest_key_release, key_release_binding, ReportData, BINDING_LABEL, MAX_BINDING_FIELD,
};
pub use claims::{Claims, Measurement, TcbClaims, Technology};
pub use error::{Error, Result};
pub use policy::ReferenceMeasurements;
pub use time::VerificationTime;

/// Largest evidence blob any verifier accepts (TDX quotes with certificate chains are ~5 KiB,
/// Azure evidence JSON ~40 KiB).
pub const MAX_EVIDENCE: usize = 256 * 1024;

/// Produces evidence from inside a TEE.
pub trait Attester: Send + Sync + std::fmt::Debug {
    /// The technology of the evidence this attester produces.
    fn technology(&self) -> Technology;
    /// Produces evidence whose report data is `report_data`.
    fn attest(&self, report_data: &ReportData) -> Result<Vec<u8>>;
}

/// Verifies evidence of one technology.
pub trait Verifier: Send + Sync + std::fmt::Debug {
    /// The technology this verifier accepts.
    fn technology(&self) -> Technology;
    /// Verifies `evidence` at time `now` and checks that its report data equals `expected`.
    fn verify(
        &self,
        evidence: &[u8],
        expected: &ReportData,
        now: VerificationTime,
    ) -> Result<Claims>;
}

/// The project-level technology policy: evidence must be of the project's technology, and
/// simulated evidence is accepted only by a project created as `simulated`.
pub fn check_technology(project: Technology, claims: &Claims) -> Result<()> {
    if (claims.simulated || claims.technology == Technology::Simulated)
        && project != Technology::Simulated
    {
        return Err(Error::SimulatedRefused { project });
    }
    if claims.technology != project {
        return Err(Error::TechnologyMismatch {
            expected: project,
            found: claims.technology,
        });
    }
    Ok(())
}
