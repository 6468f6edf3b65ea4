//! TPM 2.0 quote parsing (TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE) and verification with an RSA
//! attestation key, as Azure's vTPM produces.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};

use crate::error::{Error, Result};
use crate::reader::{check_size, Reader};

const TPM_GENERATED: u32 = 0xFF54_4347;
const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
const TPM_ALG_SHA256: u16 = 0x000B;
/// Largest TPMS_ATTEST accepted.
pub(crate) const MAX_ATTEST: usize = 1024;

/// A parsed quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TpmQuote {
    pub(crate) extra_data: Vec<u8>,
    /// Selected PCR indices (SHA-256 bank), ascending.
    pub(crate) pcrs: Vec<u8>,
    pub(crate) pcr_digest: Vec<u8>,
}

impl TpmQuote {
    pub(crate) fn parse(msg: &[u8]) -> Result<Self> {
        check_size("TPM quote", msg.len(), MAX_ATTEST)?;
        let mut r = Reader::new("TPM quote", msg);
        if r.u32_be()? != TPM_GENERATED {
            return Err(Error::malformed(
                "TPM quote",
                "magic is not TPM_GENERATED_VALUE",
            ));
        }
        if r.u16_be()? != TPM_ST_ATTEST_QUOTE {
            return Err(Error::malformed("TPM quote", "not a TPM_ST_ATTEST_QUOTE"));
        }
        let n = r.u16_be()? as usize;
        let _qualified_signer = r.bytes(n)?;
        let n = r.u16_be()? as usize;
        let extra_data = r.bytes(n)?.to_vec();
        let _clock_info = r.bytes(17)?;
        let _firmware_version = r.u64_be()?;
        let count = r.u32_be()?;
        if count != 1 {
            return Err(Error::malformed(
                "TPM quote",
                format!("{count} PCR selections, expected 1 (SHA-256)"),
            ));
        }
        let alg = r.u16_be()?;
        if alg != TPM_ALG_SHA256 {
            return Err(Error::malformed(
                "TPM quote",
                format!("PCR bank {alg:#06x}, expected SHA-256"),
            ));
        }
        let size = r.u8()? as usize;
        if size > 3 {
            return Err(Error::malformed(
                "TPM quote",
                "PCR selection wider than 24 PCRs",
            ));
        }
        let bitmap = r.bytes(size)?;
        let mut pcrs = Vec::new();
        for (byte, bits) in bitmap.iter().enumerate() {
            for bit in 0..8 {
                if bits & (1 << bit) != 0 {
                    pcrs.push((byte * 8 + bit) as u8);
                }
            }
        }
        let n = r.u16_be()? as usize;
        let pcr_digest = r.bytes(n)?.to_vec();
        if r.remaining() != 0 {
            return Err(Error::malformed("TPM quote", "trailing bytes"));
        }
        Ok(TpmQuote {
            extra_data,
            pcrs,
            pcr_digest,
        })
    }

    /// Checks that the quoted PCR digest is SHA-256 over the selected values of `pcr_values`.
    pub(crate) fn check_pcrs(&self, pcr_values: &[[u8; 32]]) -> Result<()> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for i in &self.pcrs {
            let v = pcr_values.get(*i as usize).ok_or_else(|| {
                Error::malformed(
                    "TPM PCR values",
                    format!("PCR {i} is selected but not supplied"),
                )
            })?;
            ctx.update(v);
        }
        let d = ctx.finish();
        if d.as_ref() != self.pcr_digest.as_slice() {
            return Err(Error::Mismatch {
                what: "TPM quote PCR digest",
                expected: hex::encode(&self.pcr_digest),
                found: hex::encode(d.as_ref()),
            });
        }
        Ok(())
    }
}

/// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature by the AK (modulus `n`, exponent `e`,
/// big-endian) over the TPMS_ATTEST bytes.
pub(crate) fn verify_rsa_quote(n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> Result<()> {
    RsaPublicKeyComponents { n, e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, msg, sig)
        .map_err(|_| Error::BadSignature {
            what: "vTPM quote",
            key: "attestation key (HCLAkPub)",
        })
}
