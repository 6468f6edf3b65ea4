//! Azure confidential VM: SEV-SNP behind Azure's paravisor (HCL) and vTPM.
//!
//! Evidence (the JSON shapes of confidential-containers' `az-snp-vtpm` evidence, versions 1 and
//! 2): the HCL report (a 32-byte header, the SNP report, and the runtime data — JSON holding the
//! vTPM attestation key `HCLAkPub`, the VM configuration and 64 bytes of `user-data`), the VCEK,
//! and a vTPM quote (TPMS_ATTEST, its RSA signature, and the 24 SHA-256 PCR values).
//!
//! The verifier checks:
//! 1. the SNP report as [`crate::snp::SnpVerifier`] does (ARK → ASK → VCEK chain, report
//!    signature, VCEK TCB and chip id, measurement, minimum TCB, debug policy);
//! 2. the SNP report data is `SHA-256(runtime data)` (or SHA-384/512 per the HCL hash type) padded
//!    with zeros — this binds the runtime data, and so the AK public key, to the hardware report;
//! 3. the vTPM quote is signed by that AK (RSASSA-PKCS1-v1_5 SHA-256);
//! 4. the quoted PCR digest is SHA-256 over the supplied PCR values (so the PCR values in the
//!    claims are the quoted ones), and PCRs required by the policy have their reference values;
//! 5. report data: the runtime data's `user-data` equals the expected 64 bytes, and the quote's
//!    nonce (TPM qualifying data, at most 48 bytes on Azure's vTPM) equals the first 48 bytes of
//!    the expected report data.

use aws_lc_rs::digest;
use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reader::{check_size, Reader};
use crate::snp::{SnpPolicy, SnpReport, SnpVerifier, REPORT_LEN};
use crate::tpm::{verify_rsa_quote, TpmQuote};
use crate::x509::Cert;
use crate::{Claims, ReportData, Technology, VerificationTime, Verifier};

/// Largest HCL report accepted.
pub const MAX_HCL_REPORT: usize = 16 * 1024;
/// Bytes of report data the vTPM quote's nonce carries.
pub const TPM_NONCE_LEN: usize = 48;
const HCL_HEADER_LEN: usize = 32;

/// A parsed HCL report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HclReport {
    /// The SNP report inside it (raw, 1184 bytes).
    pub snp_report: Vec<u8>,
    /// Hash type of the runtime data binding (1 SHA-256, 2 SHA-384, 3 SHA-512).
    pub hash_type: u32,
    /// The runtime data (JSON), exactly as hashed.
    pub runtime_data: Vec<u8>,
}

impl HclReport {
    /// Parses an HCL report. Untrusted input: bounded, no panics.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_size("HCL report", bytes.len(), MAX_HCL_REPORT)?;
        let mut r = Reader::new("HCL report", bytes);
        if &r.array::<4>()? != b"HCLA" {
            return Err(Error::malformed(
                "HCL report",
                "bad signature (expected HCLA)",
            ));
        }
        let version = r.u32_le()?;
        if !(1..=2).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: "HCL report",
                version,
            });
        }
        let _ = r.bytes(HCL_HEADER_LEN - 8)?;
        let snp_report = r.bytes(REPORT_LEN)?.to_vec();
        let data_size = r.u32_le()? as usize;
        let _version = r.u32_le()?;
        let report_type = r.u32_le()?;
        if report_type != 2 {
            return Err(Error::malformed(
                "HCL report",
                format!("report type {report_type}, expected 2 (SNP)"),
            ));
        }
        let hash_type = r.u32_le()?;
        let var_size = r.u32_le()? as usize;
        if data_size != var_size.saturating_add(20) {
            return Err(Error::malformed(
                "HCL report",
                "runtime data sizes disagree",
            ));
        }
        let runtime_data = r.bytes(var_size)?.to_vec();
        Ok(HclReport {
            snp_report,
            hash_type,
            runtime_data,
        })
    }

    /// The binding the SNP report data must hold: hash of the runtime data, zero padded.
    pub fn expected_snp_report_data(&self) -> Result<ReportData> {
        let alg = match self.hash_type {
            1 => &digest::SHA256,
            2 => &digest::SHA384,
            3 => &digest::SHA512,
            t => {
                return Err(Error::malformed(
                    "HCL report",
                    format!("unknown hash type {t}"),
                ))
            }
        };
        let d = digest::digest(alg, &self.runtime_data);
        let mut out = [0u8; 64];
        out[..d.as_ref().len()].copy_from_slice(d.as_ref());
        Ok(ReportData(out))
    }
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: String,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
}

#[derive(Debug, Deserialize)]
struct RuntimeData {
    keys: Vec<Jwk>,
    #[serde(rename = "user-data", default)]
    user_data: String,
    #[serde(rename = "vm-configuration", default)]
    vm_configuration: serde_json::Value,
}

/// Bytes given either as a hex string or as a JSON array of numbers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Bytes {
    Hex(String),
    Array(Vec<u8>),
}

impl Bytes {
    fn into_vec(self, what: &'static str) -> Result<Vec<u8>> {
        match self {
            Bytes::Array(v) => Ok(v),
            Bytes::Hex(s) => hex::decode(s)
                .map_err(|e| Error::malformed("Azure evidence", format!("{what}: {e}"))),
        }
    }
}

#[derive(Debug, Deserialize)]
struct QuoteJson {
    signature: Bytes,
    message: Bytes,
    pcrs: Vec<Bytes>,
}

#[derive(Debug, Deserialize)]
struct EvidenceJson {
    #[serde(default)]
    version: Option<u32>,
    #[serde(alias = "tpm_quote")]
    quote: QuoteJson,
    /// Version 1: the HCL report as a byte array.
    #[serde(default)]
    report: Option<Vec<u8>>,
    /// Version 2: the HCL report, base64url.
    #[serde(default)]
    hcl_report: Option<String>,
    /// The VCEK: PEM, or bare base64 DER.
    vcek: String,
}

/// Parsed Azure evidence.
#[derive(Debug, Clone)]
pub struct AzureEvidence {
    /// The HCL report.
    pub hcl: HclReport,
    /// VCEK, DER.
    pub vcek_der: Vec<u8>,
    /// TPMS_ATTEST bytes.
    pub quote_message: Vec<u8>,
    /// Quote signature (raw RSA).
    pub quote_signature: Vec<u8>,
    /// SHA-256 PCR values 0..24.
    pub pcrs: Vec<[u8; 32]>,
}

impl AzureEvidence {
    /// Parses untrusted evidence bytes. Bounded, no panics.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_size("Azure evidence", bytes.len(), crate::MAX_EVIDENCE)?;
        let ev: EvidenceJson = serde_json::from_slice(bytes)
            .map_err(|e| Error::malformed("Azure evidence", e.to_string()))?;
        if let Some(v) = ev.version {
            if v != 2 {
                return Err(Error::UnsupportedVersion {
                    what: "Azure evidence",
                    version: v,
                });
            }
        }
        let hcl_bytes = match (ev.report, ev.hcl_report) {
            (Some(b), None) => b,
            (None, Some(s)) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|e| Error::malformed("Azure evidence", format!("hcl_report: {e}")))?,
            _ => {
                return Err(Error::malformed(
                    "Azure evidence",
                    "exactly one of report / hcl_report is required",
                ))
            }
        };
        let hcl = HclReport::parse(&hcl_bytes)?;
        let vcek_der = if ev.vcek.contains("-----BEGIN") {
            Cert::from_pem("VCEK", ev.vcek.as_bytes())?.der
        } else {
            // Bare base64 DER, standard or URL-safe alphabet, padded or not.
            let normalized: String = ev
                .vcek
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && *c != '=')
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    c => c,
                })
                .collect();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(normalized)
                .map_err(|e| Error::malformed("Azure evidence", format!("vcek: {e}")))?
        };
        if ev.quote.pcrs.len() > 24 {
            return Err(Error::malformed(
                "Azure evidence",
                "more than 24 PCR values",
            ));
        }
        let pcrs = ev
            .quote
            .pcrs
            .into_iter()
            .map(|p| {
                p.into_vec("pcr")?
                    .try_into()
                    .map_err(|_| Error::malformed("Azure evidence", "PCR value is not 32 bytes"))
            })
            .collect::<Result<Vec<[u8; 32]>>>()?;
        Ok(AzureEvidence {
            hcl,
            vcek_der,
            quote_message: ev.quote.message.into_vec("quote message")?,
            quote_signature: ev.quote.signature.into_vec("quote signature")?,
            pcrs,
        })
    }
}

/// What the Azure verifier accepts.
#[derive(Debug, Clone)]
pub struct AzurePolicy {
    /// The policy for the SNP report (its measurement is of Azure's paravisor firmware).
    pub snp: SnpPolicy,
    /// PCRs (index, SHA-256 value) that must have these values.
    pub required_pcrs: Vec<(u8, [u8; 32])>,
}

/// Verifies Azure CVM evidence.
#[derive(Debug, Clone)]
pub struct AzureSnpVtpmVerifier {
    snp: SnpVerifier,
    required_pcrs: Vec<(u8, [u8; 32])>,
}

impl AzureSnpVtpmVerifier {
    /// A verifier trusting the given AMD chains.
    pub fn new(chains: Vec<crate::snp::AmdChain>, policy: AzurePolicy) -> Result<Self> {
        Ok(AzureSnpVtpmVerifier {
            snp: SnpVerifier::new(chains, policy.snp)?,
            required_pcrs: policy.required_pcrs,
        })
    }
}

impl Verifier for AzureSnpVtpmVerifier {
    fn technology(&self) -> Technology {
        Technology::AzureSnpVtpm
    }

    fn verify(
        &self,
        evidence: &[u8],
        expected: &ReportData,
        now: VerificationTime,
    ) -> Result<Claims> {
        let ev = AzureEvidence::parse(evidence)?;
        // 1. The SNP report and its chain.
        let report = SnpReport::parse(&ev.hcl.snp_report)?;
        let vcek = Cert::from_der("VCEK", &ev.vcek_der)?;
        self.snp.verify_parsed(&report, &vcek, now)?;
        // 2. The report binds the runtime data.
        let binding = ev.hcl.expected_snp_report_data()?;
        if !binding.ct_eq(&report.report_data) {
            return Err(Error::Mismatch {
                what: "SNP report data vs hash of HCL runtime data",
                expected: binding.to_hex(),
                found: report.report_data.to_hex(),
            });
        }
        let runtime: RuntimeData = serde_json::from_slice(&ev.hcl.runtime_data)
            .map_err(|e| Error::malformed("HCL runtime data", e.to_string()))?;
        // 3. The quote is signed by the AK bound above.
        let ak = runtime
            .keys
            .iter()
            .find(|k| k.kid == "HCLAkPub" && k.kty == "RSA")
            .ok_or_else(|| Error::malformed("HCL runtime data", "no RSA HCLAkPub key"))?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let n = b64
            .decode(ak.n.trim_end_matches('='))
            .map_err(|e| Error::malformed("HCL runtime data", format!("AK modulus: {e}")))?;
        let e = b64
            .decode(ak.e.trim_end_matches('='))
            .map_err(|e| Error::malformed("HCL runtime data", format!("AK exponent: {e}")))?;
        verify_rsa_quote(&n, &e, &ev.quote_message, &ev.quote_signature)?;
        let quote = TpmQuote::parse(&ev.quote_message)?;
        // 4. PCRs.
        quote.check_pcrs(&ev.pcrs)?;
        for (i, want) in &self.required_pcrs {
            let have = ev.pcrs.get(*i as usize).filter(|_| quote.pcrs.contains(i));
            if have != Some(want) {
                return Err(Error::Mismatch {
                    what: "PCR value",
                    expected: format!("PCR{i}={}", hex::encode(want)),
                    found: have.map(hex::encode).unwrap_or_else(|| "not quoted".into()),
                });
            }
        }
        // 5. Report data: user-data and the TPM nonce.
        let user_data = hex::decode(&runtime.user_data)
            .ok()
            .and_then(|v| <[u8; 64]>::try_from(v).ok())
            .ok_or_else(|| {
                Error::malformed("HCL runtime data", "user-data is not 64 bytes of hex")
            })?;
        let user_data = ReportData(user_data);
        expected.expect(&user_data)?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            &quote.extra_data,
            &expected.0[..TPM_NONCE_LEN],
        )
        .is_err()
        {
            return Err(Error::ReportDataMismatch {
                found: format!("vTPM quote nonce {}", hex::encode(&quote.extra_data)),
            });
        }
        self.snp.check_policy(&report)?;
        let mut claims = crate::snp::claims(&report, Technology::AzureSnpVtpm);
        claims.report_data = user_data;
        for i in &quote.pcrs {
            if let Some(v) = ev.pcrs.get(*i as usize) {
                claims.details.push((format!("pcr{i}"), hex::encode(v)));
            }
        }
        claims.details.push((
            "vm_configuration".into(),
            runtime.vm_configuration.to_string(),
        ));
        Ok(claims)
    }
}
