//! AMD SEV-SNP: attestation report parsing and verification.
//!
//! The verifier checks, in order:
//! 1. the evidence parses (bounded: exactly one 1184-byte report, version 2 to 5, signature
//!    algorithm ECDSA P-384 with SHA-384);
//! 2. the endorsement key certificate (VCEK, or VLEK with a configured ASVK) chains to a pinned AMD
//!    root: ARK (self-signed, RSA-PSS SHA-384, key equal to the pinned ARK) → ASK → VCEK, each
//!    valid at the verification time;
//! 3. the report signature (ECDSA P-384 SHA-384 over bytes 0..0x2A0) verifies with the VCEK;
//! 4. the report's `REPORTED_TCB` equals the TCB the VCEK was issued for (its TCB extensions), and
//!    the chip id equals the VCEK's `hwID` (unless the guest masked it);
//! 5. the report data equals the expected binding;
//! 6. the measurement is one of the reference values;
//! 7. each `REPORTED_TCB` component is at least the policy's minimum;
//! 8. the guest policy does not allow debugging, unless the policy allows it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reader::{check_size, Reader};
use crate::x509::{check_root, pem_chain, Cert};
use crate::{
    Claims, Measurement, ReferenceMeasurements, ReportData, TcbClaims, Technology,
    VerificationTime, Verifier,
};

/// Size of an SNP attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// Bytes of the report covered by its signature.
pub const SIGNED_LEN: usize = 0x2A0;
/// Largest SNP evidence JSON accepted.
pub const MAX_SNP_EVIDENCE: usize = 64 * 1024;

/// AMD's ASK and ARK for Milan (PEM, ASK first), as published by AMD's KDS
/// (`/vcek/v1/Milan/cert_chain`); copied from virtee/sev's test data.
pub const AMD_MILAN_ASK_ARK_PEM: &str = include_str!("certs/amd_milan_ask_ark.pem");

/// Guest policy bit: debugging allowed.
pub const POLICY_DEBUG: u64 = 1 << 19;
/// Guest policy bit: SMT allowed.
pub const POLICY_SMT: u64 = 1 << 16;
/// Guest policy bit: migration agent allowed.
pub const POLICY_MIGRATE_MA: u64 = 1 << 18;

/// A TCB version (security patch levels of the SNP firmware components).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcbVersion {
    /// Boot loader SPL.
    pub bootloader: u8,
    /// PSP OS (TEE) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// CPU microcode SPL.
    pub microcode: u8,
    /// FMC SPL (Turin and later only).
    pub fmc: Option<u8>,
}

impl TcbVersion {
    /// Decodes the 64-bit `TCB_VERSION`; `turin` selects the Turin layout (FMC first).
    pub fn from_raw(raw: u64, turin: bool) -> Self {
        let b = raw.to_le_bytes();
        if turin {
            TcbVersion {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            }
        } else {
            TcbVersion {
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
                fmc: None,
            }
        }
    }

    fn components(&self) -> [(&'static str, Option<u8>); 5] {
        [
            ("bootloader", Some(self.bootloader)),
            ("tee", Some(self.tee)),
            ("snp", Some(self.snp)),
            ("microcode", Some(self.microcode)),
            ("fmc", self.fmc),
        ]
    }

    /// Fails unless every component is at least `min`'s.
    pub fn check_at_least(&self, min: &TcbVersion) -> Result<()> {
        for ((name, have), (_, want)) in self.components().into_iter().zip(min.components()) {
            if let (Some(want), have) = (want, have.unwrap_or(0)) {
                if have < want {
                    return Err(Error::TcbTooLow {
                        component: name,
                        reported: have.into(),
                        minimum: want.into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A parsed SNP attestation report (firmware ABI spec table 22), not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReport {
    /// Report format version (2 to 5).
    pub version: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy.
    pub policy: u64,
    /// Family id from the ID block.
    pub family_id: [u8; 16],
    /// Image id from the ID block.
    pub image_id: [u8; 16],
    /// VMPL that requested the report.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// Current TCB, raw.
    pub current_tcb: u64,
    /// Platform info bits.
    pub platform_info: u64,
    /// Flags: bit 0 author key, bit 1 chip id masked, bits 2–4 signing key (0 VCEK, 1 VLEK).
    pub flags: u32,
    /// Report data.
    pub report_data: ReportData,
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Host data.
    pub host_data: [u8; 32],
    /// SHA-384 of the ID key.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author key.
    pub author_key_digest: [u8; 48],
    /// Report id.
    pub report_id: [u8; 32],
    /// Report id of the migration agent.
    pub report_id_ma: [u8; 32],
    /// Reported TCB, raw (the TCB the VCEK is derived for).
    pub reported_tcb: u64,
    /// CPUID family (version 3 and later; 0 before).
    pub cpuid_fam_id: u8,
    /// CPUID model (version 3 and later; 0 before).
    pub cpuid_mod_id: u8,
    /// CPUID stepping (version 3 and later; 0 before).
    pub cpuid_step: u8,
    /// Chip id.
    pub chip_id: [u8; 64],
    /// Committed TCB, raw.
    pub committed_tcb: u64,
    /// Launch TCB, raw.
    pub launch_tcb: u64,
    /// Signature r, little-endian, 72 bytes.
    pub sig_r: [u8; 72],
    /// Signature s, little-endian, 72 bytes.
    pub sig_s: [u8; 72],
    raw: Vec<u8>,
}

impl SnpReport {
    /// Parses a raw report. Untrusted input: exactly [`REPORT_LEN`] bytes, bounded reads, no
    /// panics.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != REPORT_LEN {
            return Err(Error::malformed(
                "SNP report",
                format!("{} bytes, expected {REPORT_LEN}", bytes.len()),
            ));
        }
        let mut r = Reader::new("SNP report", bytes);
        let version = r.u32_le()?;
        if !(2..=5).contains(&version) {
            return Err(Error::UnsupportedVersion {
                what: "SNP report",
                version,
            });
        }
        let guest_svn = r.u32_le()?;
        let policy = r.u64_le()?;
        let family_id = r.array()?;
        let image_id = r.array()?;
        let vmpl = r.u32_le()?;
        let signature_algo = r.u32_le()?;
        let current_tcb = r.u64_le()?;
        let platform_info = r.u64_le()?;
        let flags = r.u32_le()?;
        let _reserved = r.u32_le()?;
        let report_data = ReportData(r.array()?);
        let measurement = r.array()?;
        let host_data = r.array()?;
        let id_key_digest = r.array()?;
        let author_key_digest = r.array()?;
        let report_id = r.array()?;
        let report_id_ma = r.array()?;
        let reported_tcb = r.u64_le()?;
        let cpuid = r.array::<24>()?;
        let (cpuid_fam_id, cpuid_mod_id, cpuid_step) = if version >= 3 {
            (cpuid[0], cpuid[1], cpuid[2])
        } else {
            (0, 0, 0)
        };
        let chip_id = r.array()?;
        let committed_tcb = r.u64_le()?;
        let _current_version = r.array::<4>()?;
        let _committed_version = r.array::<4>()?;
        let launch_tcb = r.u64_le()?;
        debug_assert_eq!(r.pos(), 0x1F8);
        let _reserved = r.bytes(SIGNED_LEN - 0x1F8)?;
        let sig_r = r.array()?;
        let sig_s = r.array()?;
        if signature_algo != 1 {
            return Err(Error::malformed(
                "SNP report",
                format!("signature algorithm {signature_algo}, expected 1 (ECDSA P-384 SHA-384)"),
            ));
        }
        Ok(SnpReport {
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            signature_algo,
            current_tcb,
            platform_info,
            flags,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid_fam_id,
            cpuid_mod_id,
            cpuid_step,
            chip_id,
            committed_tcb,
            launch_tcb,
            sig_r,
            sig_s,
            raw: bytes.to_vec(),
        })
    }

    /// The raw report bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// True for a Turin (family 1Ah) report, whose TCB layout differs.
    pub fn is_turin(&self) -> bool {
        self.version >= 3 && self.cpuid_fam_id == 0x1A
    }

    /// The reported TCB, decoded.
    pub fn reported_tcb(&self) -> TcbVersion {
        TcbVersion::from_raw(self.reported_tcb, self.is_turin())
    }

    /// Whether the guest policy allows a debugger.
    pub fn debug_allowed(&self) -> bool {
        self.policy & POLICY_DEBUG != 0
    }

    /// Signing key: 0 VCEK, 1 VLEK, 7 none.
    pub fn signing_key(&self) -> u32 {
        (self.flags >> 2) & 7
    }

    /// Whether the chip id was masked by the guest.
    pub fn chip_id_masked(&self) -> bool {
        self.flags & 2 != 0
    }

    /// The fixed-size (r || s, big-endian) ECDSA P-384 signature.
    fn fixed_signature(&self) -> Result<[u8; 96]> {
        let mut out = [0u8; 96];
        for (i, le) in [&self.sig_r, &self.sig_s].into_iter().enumerate() {
            if le[48..].iter().any(|b| *b != 0) {
                return Err(Error::malformed(
                    "SNP report",
                    "signature component wider than 48 bytes",
                ));
            }
            for (j, b) in le[..48].iter().rev().enumerate() {
                out[i * 48 + j] = *b;
            }
        }
        Ok(out)
    }

    /// Verifies only the report signature with the given key certificate (VCEK or VLEK) — no
    /// chain, no TCB, no policy. [`SnpVerifier`] does all of those.
    pub(crate) fn verify_signature(&self, key_cert: &Cert) -> Result<()> {
        let sig = self.fixed_signature()?;
        if key_cert.key_kind()? != crate::x509::KeyKind::P384 {
            return Err(Error::chain(&key_cert.name, "VCEK key is not ECDSA P-384"));
        }
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED,
            key_cert.spki_key(),
        )
        .verify(&self.raw[..SIGNED_LEN], &sig)
        .map_err(|_| Error::BadSignature {
            what: "SNP report",
            key: "VCEK",
        })
    }
}

/// Verifies a report's signature with a DER VCEK/VLEK certificate, without any chain or policy
/// check. For tests and diagnostics; production code uses [`SnpVerifier`].
pub fn verify_report_signature_only(report: &[u8], key_cert_der: &[u8]) -> Result<SnpReport> {
    let report = SnpReport::parse(report)?;
    let cert = Cert::from_der("VCEK", key_cert_der)?;
    report.verify_signature(&cert)?;
    Ok(report)
}

/// Sealroom's SNP evidence: the raw report and the DER certificate of the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpEvidence {
    /// The 1184-byte report, standard base64.
    pub report: String,
    /// The VCEK (or VLEK) certificate, DER, standard base64.
    pub vcek: String,
}

impl SnpEvidence {
    /// Builds evidence from raw bytes.
    pub fn new(report: &[u8], vcek_der: &[u8]) -> Self {
        let b = base64::engine::general_purpose::STANDARD;
        SnpEvidence {
            report: b.encode(report),
            vcek: b.encode(vcek_der),
        }
    }

    /// Serializes to JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses untrusted evidence bytes into (report, VCEK DER).
    pub fn parse(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        check_size("SNP evidence", bytes.len(), MAX_SNP_EVIDENCE)?;
        let ev: SnpEvidence = serde_json::from_slice(bytes)
            .map_err(|e| Error::malformed("SNP evidence", e.to_string()))?;
        let b = base64::engine::general_purpose::STANDARD;
        let report = b
            .decode(ev.report)
            .map_err(|e| Error::malformed("SNP evidence", format!("report: {e}")))?;
        let vcek = b
            .decode(ev.vcek)
            .map_err(|e| Error::malformed("SNP evidence", format!("vcek: {e}")))?;
        Ok((report, vcek))
    }
}

/// GUID of the VCEK entry in the SNP extended-report certificate table (little-endian bytes of
/// `63da758d-e664-4564-adc5-f4b93be8accd`).
pub const GUID_VCEK: [u8; 16] = [
    0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];
/// GUID of the VLEK entry (`a8074bc2-a25a-483e-aae6-39c045a0b8a1`).
pub const GUID_VLEK: [u8; 16] = [
    0xc2, 0x4b, 0x07, 0xa8, 0x5a, 0xa2, 0x3e, 0x48, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1,
];
/// Largest certificate table accepted.
pub const MAX_CERT_TABLE: usize = 64 * 1024;

/// Finds the certificate with `guid` in an SNP extended-report certificate table (entries of
/// GUID, offset u32, length u32, ended by an all-zero entry; offsets from the table start).
/// Untrusted input (it comes from the host): bounded, no panics.
pub fn find_cert(table: &[u8], guid: &[u8; 16]) -> Result<Option<Vec<u8>>> {
    check_size("SNP certificate table", table.len(), MAX_CERT_TABLE)?;
    let mut r = Reader::new("SNP certificate table", table);
    if table.is_empty() {
        return Ok(None);
    }
    for _ in 0..64 {
        let g = r.array::<16>()?;
        let offset = r.u32_le()? as usize;
        let len = r.u32_le()? as usize;
        if g == [0u8; 16] && offset == 0 && len == 0 {
            return Ok(None);
        }
        if &g == guid {
            let end = offset
                .checked_add(len)
                .filter(|e| *e <= table.len())
                .ok_or_else(|| {
                    Error::malformed("SNP certificate table", "entry outside the table")
                })?;
            return Ok(Some(table[offset..end].to_vec()));
        }
    }
    Err(Error::malformed(
        "SNP certificate table",
        "more than 64 entries",
    ))
}

/// One trusted AMD root and the intermediates (ASK, ASVK) it signed.
#[derive(Debug, Clone)]
pub struct AmdChain {
    ark: Cert,
    intermediates: Vec<Cert>,
}

impl AmdChain {
    /// From a PEM bundle holding the intermediates and the ARK (in any order; the self-signed
    /// certificate is taken as the ARK). The ARK is pinned as given: configure only bundles you
    /// obtained from AMD.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let certs = pem_chain("AMD chain", pem)?;
        let (roots, intermediates): (Vec<Cert>, Vec<Cert>) = certs
            .into_iter()
            .partition(|c| c.cert.tbs_certificate.issuer == c.cert.tbs_certificate.subject);
        let mut roots = roots.into_iter();
        let ark = roots
            .next()
            .ok_or_else(|| Error::Config("AMD chain has no self-signed ARK".into()))?;
        if roots.next().is_some() || intermediates.is_empty() {
            return Err(Error::Config(
                "AMD chain must hold one ARK and at least one ASK/ASVK".into(),
            ));
        }
        Ok(AmdChain { ark, intermediates })
    }

    /// The built-in Milan chain.
    pub fn milan() -> Result<Self> {
        Self::from_pem(AMD_MILAN_ASK_ARK_PEM.as_bytes())
    }
}

/// What the SNP verifier accepts beyond signature validity.
#[derive(Debug, Clone)]
pub struct SnpPolicy {
    /// Accepted launch measurements.
    pub measurements: ReferenceMeasurements,
    /// Minimum reported TCB, per component.
    pub min_tcb: TcbVersion,
    /// Accept guests whose policy allows debugging.
    pub allow_debug: bool,
}

/// Verifies SEV-SNP evidence ([`SnpEvidence`] JSON).
#[derive(Debug, Clone)]
pub struct SnpVerifier {
    chains: Vec<AmdChain>,
    policy: SnpPolicy,
}

impl SnpVerifier {
    /// A verifier trusting the given AMD chains.
    pub fn new(chains: Vec<AmdChain>, policy: SnpPolicy) -> Result<Self> {
        if chains.is_empty() {
            return Err(Error::Config("no trusted AMD chain".into()));
        }
        Ok(SnpVerifier { chains, policy })
    }

    /// A verifier trusting the built-in Milan chain.
    pub fn milan(policy: SnpPolicy) -> Result<Self> {
        Self::new(vec![AmdChain::milan()?], policy)
    }

    /// Verifies `vcek` up to a pinned ARK at `now`.
    pub(crate) fn verify_vcek_chain(&self, vcek: &Cert, now: VerificationTime) -> Result<()> {
        let issuer = &vcek.cert.tbs_certificate.issuer;
        let mut last_err = None;
        for chain in &self.chains {
            for ask in chain
                .intermediates
                .iter()
                .filter(|a| &a.cert.tbs_certificate.subject == issuer)
            {
                let r = check_root(&chain.ark, &chain.ark, now)
                    .and_then(|_| ask.verify_issued_by(&chain.ark, now))
                    .and_then(|_| vcek.verify_issued_by(ask, now));
                match r {
                    Ok(()) => return Ok(()),
                    Err(e) => last_err = Some(e),
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            Error::chain(
                &vcek.name,
                format!("no trusted AMD ASK/ASVK named {issuer}"),
            )
        }))
    }

    /// Verifies a raw report and its key certificate (the core of [`Verifier::verify`], also
    /// used by the Azure verifier). Does not check report data.
    pub fn verify_report(
        &self,
        report: &[u8],
        vcek_der: &[u8],
        now: VerificationTime,
    ) -> Result<SnpReport> {
        let report = SnpReport::parse(report)?;
        let vcek = Cert::from_der("VCEK", vcek_der)?;
        self.verify_parsed(&report, &vcek, now)?;
        Ok(report)
    }

    pub(crate) fn verify_parsed(
        &self,
        report: &SnpReport,
        vcek: &Cert,
        now: VerificationTime,
    ) -> Result<()> {
        let signing_key = report.signing_key();
        if signing_key > 1 {
            return Err(Error::malformed(
                "SNP report",
                format!("signing key {signing_key} is neither VCEK nor VLEK"),
            ));
        }
        self.verify_vcek_chain(vcek, now)?;
        report.verify_signature(vcek)?;
        check_vcek_tcb(report, vcek)?;
        if signing_key == 0 && !report.chip_id_masked() {
            let hwid = vcek_extension(vcek, OID_HWID)
                .ok_or_else(|| Error::chain(&vcek.name, "VCEK has no hwID"))?;
            let hwid = if hwid.len() == 66 && hwid[0] == 0x04 && hwid[1] == 64 {
                &hwid[2..]
            } else {
                hwid
            };
            if hwid != report.chip_id {
                return Err(Error::Mismatch {
                    what: "chip id vs VCEK hwID",
                    expected: hex::encode(hwid),
                    found: hex::encode(report.chip_id),
                });
            }
        }
        Ok(())
    }

    /// Applies the measurement, TCB-minimum and debug policy.
    pub(crate) fn check_policy(&self, report: &SnpReport) -> Result<()> {
        self.policy.measurements.check(&report.measurement)?;
        report.reported_tcb().check_at_least(&self.policy.min_tcb)?;
        if report.debug_allowed() && !self.policy.allow_debug {
            return Err(Error::DebugNotAllowed {
                detail: "SNP guest policy DEBUG bit",
            });
        }
        Ok(())
    }
}

const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

fn vcek_extension<'a>(vcek: &'a Cert, oid: &str) -> Option<&'a [u8]> {
    vcek.extension(oid)
}

fn check_vcek_tcb(report: &SnpReport, vcek: &Cert) -> Result<()> {
    let tcb = report.reported_tcb();
    let mut checks = vec![
        ("bootloader", OID_BL_SPL, tcb.bootloader),
        ("tee", OID_TEE_SPL, tcb.tee),
        ("snp", OID_SNP_SPL, tcb.snp),
        ("microcode", OID_UCODE_SPL, tcb.microcode),
    ];
    if let Some(fmc) = tcb.fmc {
        checks.push(("fmc", OID_FMC_SPL, fmc));
    }
    for (name, oid, have) in checks {
        let ext = vcek_extension(vcek, oid)
            .ok_or_else(|| Error::chain(&vcek.name, format!("VCEK has no {name} SPL extension")))?;
        let cert = crate::x509::der_small_uint(ext).ok_or_else(|| {
            Error::chain(
                &vcek.name,
                format!("VCEK {name} SPL is not a small INTEGER"),
            )
        })?;
        if cert != u32::from(have) {
            return Err(Error::TcbMismatch {
                component: name,
                report: have.into(),
                cert,
            });
        }
    }
    Ok(())
}

/// Claims of a verified report.
pub(crate) fn claims(report: &SnpReport, technology: Technology) -> Claims {
    let tcb = report.reported_tcb();
    Claims {
        technology,
        simulated: false,
        measurement: Measurement(report.measurement.to_vec()),
        tcb: TcbClaims::Snp(tcb),
        report_data: report.report_data,
        debug: report.debug_allowed(),
        policy: report.policy,
        details: vec![
            ("report_version".into(), report.version.to_string()),
            ("guest_svn".into(), report.guest_svn.to_string()),
            ("vmpl".into(), report.vmpl.to_string()),
            ("host_data".into(), hex::encode(report.host_data)),
            ("id_key_digest".into(), hex::encode(report.id_key_digest)),
            ("chip_id".into(), hex::encode(report.chip_id)),
            (
                "signing_key".into(),
                if report.signing_key() == 0 {
                    "VCEK"
                } else {
                    "VLEK"
                }
                .into(),
            ),
        ],
    }
}

impl Verifier for SnpVerifier {
    fn technology(&self) -> Technology {
        Technology::SevSnp
    }

    fn verify(
        &self,
        evidence: &[u8],
        expected: &ReportData,
        now: VerificationTime,
    ) -> Result<Claims> {
        let (report, vcek) = SnpEvidence::parse(evidence)?;
        let report = self.verify_report(&report, &vcek, now)?;
        expected.expect(&report.report_data)?;
        self.check_policy(&report)?;
        Ok(claims(&report, Technology::SevSnp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> SnpReport {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/testdata/attestation/snp/test-report.bin");
        SnpReport::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    fn verifier(allow_debug: bool) -> SnpVerifier {
        SnpVerifier::milan(SnpPolicy {
            measurements: ReferenceMeasurements::AnyCheckedByCaller,
            min_tcb: TcbVersion::default(),
            allow_debug,
        })
        .unwrap()
    }

    #[test]
    fn debug_policy() {
        let mut r = report();
        assert!(!r.debug_allowed());
        verifier(false).check_policy(&r).unwrap();
        r.policy |= POLICY_DEBUG;
        let err = verifier(false).check_policy(&r).unwrap_err();
        assert!(matches!(err, Error::DebugNotAllowed { .. }), "{err}");
        verifier(true).check_policy(&r).unwrap();
    }

    #[test]
    fn cert_table() {
        let cert = b"certificate bytes";
        let mut t = Vec::new();
        t.extend_from_slice(&GUID_VLEK);
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&GUID_VCEK);
        t.extend_from_slice(&72u32.to_le_bytes());
        t.extend_from_slice(&(cert.len() as u32).to_le_bytes());
        t.extend_from_slice(&[0u8; 24]);
        t.extend_from_slice(cert);
        assert_eq!(find_cert(&t, &GUID_VCEK).unwrap().unwrap(), cert);
        assert_eq!(find_cert(&t, &[1u8; 16]).unwrap(), None);
        assert_eq!(find_cert(&[], &GUID_VCEK).unwrap(), None);
        t[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(find_cert(&t[..30], &GUID_VCEK).is_err());
        let mut bad = t.clone();
        bad[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(find_cert(&bad, &GUID_VCEK).is_err());
    }

    #[test]
    fn tcb_layouts() {
        let raw = u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]);
        assert_eq!(
            TcbVersion::from_raw(raw, false),
            TcbVersion {
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
                fmc: None
            }
        );
        let raw = u64::from_le_bytes([1, 2, 3, 4, 0, 0, 0, 9]);
        assert_eq!(
            TcbVersion::from_raw(raw, true),
            TcbVersion {
                fmc: Some(1),
                bootloader: 2,
                tee: 3,
                snp: 4,
                microcode: 9
            }
        );
    }
}
