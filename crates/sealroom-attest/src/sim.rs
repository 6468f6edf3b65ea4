//! The **simulated** technology: no TEE at all.
//!
//! Evidence is a fixed-size report signed by a per-site Ed25519 key whose public half is
//! registered with the control plane. It proves only that the holder of the site key produced it —
//! nothing about isolation. Claims from it carry `simulated: true` and say "SIMULATED" in their
//! `Display` and `Debug` forms; [`crate::check_technology`] refuses them for any project that is
//! not `simulated`.
//!
//! Evidence layout (192 bytes):
//!
//! ```text
//! 0..8     magic "SRSIMEV1"
//! 8..56    measurement (48 bytes, configured by the site)
//! 56..120  report data (64 bytes)
//! 120..124 svn, u32 little-endian
//! 124..128 flags, u32 little-endian (bit 0: debug)
//! 128..192 Ed25519 signature over bytes 0..128
//! ```

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::{
    Attester, Claims, Measurement, ReportData, TcbClaims, Technology, VerificationTime, Verifier,
};

/// Magic at the start of simulated evidence.
pub const MAGIC: &[u8; 8] = b"SRSIMEV1";
/// Size of simulated evidence.
pub const EVIDENCE_LEN: usize = 192;
const SIGNED_LEN: usize = 128;

/// A parsed (not yet verified) simulated report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedReport {
    /// Configured measurement.
    pub measurement: [u8; 48],
    /// Report data.
    pub report_data: ReportData,
    /// Configured SVN.
    pub svn: u32,
    /// Flags (bit 0: debug).
    pub flags: u32,
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl SimulatedReport {
    /// Parses simulated evidence (exactly [`EVIDENCE_LEN`] bytes). Untrusted input: bounded, no
    /// panics.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != EVIDENCE_LEN {
            return Err(Error::malformed(
                "simulated evidence",
                format!("{} bytes, expected {EVIDENCE_LEN}", bytes.len()),
            ));
        }
        let mut r = Reader::new("simulated evidence", bytes);
        if &r.array::<8>()? != MAGIC {
            return Err(Error::malformed("simulated evidence", "bad magic"));
        }
        Ok(SimulatedReport {
            measurement: r.array()?,
            report_data: ReportData(r.array()?),
            svn: r.u32_le()?,
            flags: r.u32_le()?,
            signature: r.array()?,
        })
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(SIGNED_LEN);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&self.measurement);
        v.extend_from_slice(self.report_data.as_bytes());
        v.extend_from_slice(&self.svn.to_le_bytes());
        v.extend_from_slice(&self.flags.to_le_bytes());
        v
    }
}

/// Produces simulated evidence with a per-site Ed25519 key. **Not a TEE.**
pub struct SimulatedAttester {
    key: Ed25519KeyPair,
    measurement: [u8; 48],
    svn: u32,
}

impl std::fmt::Debug for SimulatedAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedAttester[SIMULATED, NOT A TEE]")
            .field("public_key", &hex::encode(self.public_key()))
            .field("measurement", &hex::encode(self.measurement))
            .finish_non_exhaustive()
    }
}

impl SimulatedAttester {
    /// A fresh random site key.
    pub fn generate(measurement: [u8; 48]) -> Result<Self> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| Error::Crypto("Ed25519 key generation"))?;
        Self::from_pkcs8(pkcs8.as_ref(), measurement)
    }

    /// A site key from its PKCS#8 (v1 or v2) DER.
    pub fn from_pkcs8(pkcs8: &[u8], measurement: [u8; 48]) -> Result<Self> {
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|_| Error::Config("not an Ed25519 PKCS#8 key".into()))?;
        Ok(SimulatedAttester {
            key,
            measurement,
            svn: 1,
        })
    }

    /// The site's public key, to register with the control plane.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.key.public_key().as_ref());
        out
    }
}

impl Attester for SimulatedAttester {
    fn technology(&self) -> Technology {
        Technology::Simulated
    }

    fn attest(&self, report_data: &ReportData) -> Result<Vec<u8>> {
        let mut report = SimulatedReport {
            measurement: self.measurement,
            report_data: *report_data,
            svn: self.svn,
            flags: 0,
            signature: [0u8; 64],
        };
        let mut out = report.signed_bytes();
        report
            .signature
            .copy_from_slice(self.key.sign(&out).as_ref());
        out.extend_from_slice(&report.signature);
        Ok(out)
    }
}

/// Verifies simulated evidence against a site's registered Ed25519 public key.
#[derive(Clone)]
pub struct SimulatedVerifier {
    public_key: [u8; 32],
}

impl std::fmt::Debug for SimulatedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedVerifier[SIMULATED, NOT A TEE]")
            .field("public_key", &hex::encode(self.public_key))
            .finish()
    }
}

impl SimulatedVerifier {
    /// A verifier for the site whose registered public key is `public_key` (32 bytes).
    pub fn new(public_key: &[u8]) -> Result<Self> {
        let public_key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| Error::Config("an Ed25519 public key is 32 bytes".into()))?;
        Ok(SimulatedVerifier { public_key })
    }
}

impl Verifier for SimulatedVerifier {
    fn technology(&self) -> Technology {
        Technology::Simulated
    }

    fn verify(
        &self,
        evidence: &[u8],
        expected: &ReportData,
        _now: VerificationTime,
    ) -> Result<Claims> {
        let report = SimulatedReport::parse(evidence)?;
        UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
            .verify(&report.signed_bytes(), &report.signature)
            .map_err(|_| Error::BadSignature {
                what: "simulated report",
                key: "registered site key",
            })?;
        expected.expect(&report.report_data)?;
        Ok(Claims {
            technology: Technology::Simulated,
            simulated: true,
            measurement: Measurement(report.measurement.to_vec()),
            tcb: TcbClaims::Simulated { svn: report.svn },
            report_data: report.report_data,
            debug: report.flags & 1 != 0,
            policy: u64::from(report.flags),
            details: vec![(
                "warning".into(),
                "SIMULATED evidence: no TEE protects this run".into(),
            )],
        })
    }
}
