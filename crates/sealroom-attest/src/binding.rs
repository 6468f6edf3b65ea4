//! The report-data binding of the key-release protocol.
//!
//! The agent puts `binding(nonce, run id, enclave X25519 public key, workload digest)` into the
//! TEE's report data (64 bytes: all of SEV-SNP's and TDX's `REPORT_DATA`), the broker recomputes it
//! from what it issued and expects, and every verifier refuses evidence whose report data differs.
//!
//! Encoding (version 1): SHA-512 over
//!
//! ```text
//! u32be(len(label)) || label            label = "sealroom/key-release/v1"
//! u32be(len(nonce)) || nonce
//! u32be(len(run_id)) || run_id          the run id's UTF-8 bytes
//! u32be(32) || enclave_x25519_public    exactly 32 bytes
//! u32be(len(workload_digest)) || workload_digest
//! ```
//!
//! Each field is length-prefixed, so no two different inputs encode to the same bytes.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Domain-separation label of the binding, version 1.
pub const BINDING_LABEL: &[u8] = b"sealroom/key-release/v1";

/// Largest nonce, run id or workload digest accepted by [`key_release_binding`].
pub const MAX_BINDING_FIELD: usize = 4096;

/// The 64 bytes of TEE report data (SEV-SNP `REPORT_DATA`, TDX `REPORTDATA`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportData(pub [u8; 64]);

impl ReportData {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &ReportData) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Checks that `found` equals `self`, in constant time.
    pub(crate) fn expect(&self, found: &ReportData) -> Result<()> {
        if self.ct_eq(found) {
            Ok(())
        } else {
            Err(Error::ReportDataMismatch {
                found: found.to_hex(),
            })
        }
    }
}

impl std::fmt::Debug for ReportData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReportData({})", self.to_hex())
    }
}

impl Serialize for ReportData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ReportData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        let a: [u8; 64] = v
            .try_into()
            .map_err(|_| serde::de::Error::custom("report data must be 64 bytes"))?;
        Ok(ReportData(a))
    }
}

/// Computes the key-release binding (see the module docs for the encoding).
///
/// ```
/// use sealroom_attest::key_release_binding;
/// let b = key_release_binding(b"nonce", "run-1", &[7u8; 32], b"sha256:abcd").unwrap();
/// assert_eq!(b.as_bytes().len(), 64);
/// ```
pub fn key_release_binding(
    nonce: &[u8],
    run_id: &str,
    enclave_x25519_public: &[u8; 32],
    workload_digest: &[u8],
) -> Result<ReportData> {
    for (name, f) in [
        ("nonce", nonce),
        ("run id", run_id.as_bytes()),
        ("workload digest", workload_digest),
    ] {
        if f.len() > MAX_BINDING_FIELD {
            return Err(Error::Config(format!(
                "{name} is longer than {MAX_BINDING_FIELD} bytes"
            )));
        }
    }
    let mut ctx = digest::Context::new(&digest::SHA512);
    for field in [
        BINDING_LABEL,
        nonce,
        run_id.as_bytes(),
        enclave_x25519_public,
        workload_digest,
    ] {
        // Fields are bounded above, so the length fits in u32.
        ctx.update(&(field.len() as u32).to_be_bytes());
        ctx.update(field);
    }
    let d = ctx.finish();
    let mut out = [0u8; 64];
    out.copy_from_slice(d.as_ref());
    Ok(ReportData(out))
}

/// Produces key-release evidence: computes [`key_release_binding`] and has `attester` put it in
/// the report data. This is what the agent calls after asking the broker for a nonce; with
/// [`crate::sim::SimulatedAttester`] it makes the simulated evidence of the demo.
///
/// ```
/// use sealroom_attest::{attest_key_release, key_release_binding, sim, Verifier, VerificationTime};
///
/// let attester = sim::SimulatedAttester::generate([0u8; 48]).unwrap();
/// let enclave_key = [9u8; 32]; // the enclave's ephemeral X25519 public key
/// let nonce = [1u8; 32]; // as issued by POST /api/v1/broker/nonce (decoded)
/// let evidence = attest_key_release(&attester, &nonce, "run-1", &enclave_key, "sha256:00").unwrap();
/// let expected = key_release_binding(&nonce, "run-1", &enclave_key, b"sha256:00").unwrap();
/// let verifier = sim::SimulatedVerifier::new(&attester.public_key()).unwrap();
/// verifier.verify(&evidence, &expected, VerificationTime::now()).unwrap();
/// ```
pub fn attest_key_release(
    attester: &dyn crate::Attester,
    nonce: &[u8],
    run_id: &str,
    enclave_x25519_public: &[u8; 32],
    workload_digest: &str,
) -> Result<Vec<u8>> {
    let report_data = key_release_binding(
        nonce,
        run_id,
        enclave_x25519_public,
        workload_digest.as_bytes(),
    )?;
    attester.attest(&report_data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_is_sha512_of_length_prefixed_fields() {
        let b = key_release_binding(b"n", "r", &[1u8; 32], b"d").unwrap();
        let mut enc = Vec::new();
        for f in [BINDING_LABEL, b"n", b"r", &[1u8; 32][..], b"d"] {
            enc.extend_from_slice(&(f.len() as u32).to_be_bytes());
            enc.extend_from_slice(f);
        }
        assert_eq!(
            b.0.as_slice(),
            digest::digest(&digest::SHA512, &enc).as_ref()
        );
    }

    #[test]
    fn binding_separates_fields() {
        let a = key_release_binding(b"ab", "c", &[0u8; 32], b"").unwrap();
        let b = key_release_binding(b"a", "bc", &[0u8; 32], b"").unwrap();
        assert_ne!(a, b);
        let c = key_release_binding(b"ab", "c", &[1u8; 32], b"").unwrap();
        assert_ne!(a, c);
        assert!(key_release_binding(&[0u8; 5000], "c", &[0u8; 32], b"").is_err());
    }
}
