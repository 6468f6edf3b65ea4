//! Intel TDX: DCAP quote version 4 (ECDSA P-256 attestation key) with its PCS collateral.
//!
//! The verifier checks, in order:
//! 1. the quote parses (bounded: version 4, TEE type TDX, attestation key type ECDSA P-256,
//!    certification data type 6 holding the QE report and a type-5 PCK certificate chain);
//! 2. the PCK chain (PCK → PCK Platform/Processor CA → Root CA) chains to the pinned Intel SGX
//!    Root CA, each certificate valid at the verification time; the root CA CRL and the PCK CRL
//!    (signatures checked, within thisUpdate..nextUpdate) revoke neither;
//! 3. the QE report is signed by the PCK key, and its report data is
//!    `SHA-256(attestation key || QE authentication data)` followed by 32 zero bytes;
//! 4. the quote (header and TD report) is signed by the attestation key;
//! 5. TCB info and QE identity are signed by the Intel TCB signing certificate (chained to the
//!    pinned root), valid at the verification time, and are for this platform (FMSPC, PCE id);
//! 6. the QE report matches the QE identity (MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES);
//! 7. the TCB status is computed from the PCK's SGX TCB components and PCE SVN, the TD report's
//!    TEE TCB SVN and TDX module identity, and the QE's ISVSVN, and must be one the policy
//!    accepts;
//! 8. report data, MRTD against reference values, and the TD DEBUG attribute.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reader::{check_size, Reader};
use crate::x509::{check_root, der_small_uint, der_tlvs, oid_bytes, pem_chain, Cert, Crl, KeyKind};
use crate::{
    Claims, Measurement, ReferenceMeasurements, ReportData, TcbClaims, Technology,
    VerificationTime, Verifier,
};

/// Intel SGX Root CA (PEM), the trust anchor of DCAP. SHA-256 fingerprint
/// `44A0196B2B99F889B8E149E95B807A350E7424964399E885A7CBB8CCFAB674D3`; copied from the collateral
/// in Phala-Network/dcap-qvl's sample.
pub const INTEL_SGX_ROOT_CA_PEM: &str = include_str!("certs/intel_sgx_root_ca.pem");

/// Largest quote accepted.
pub const MAX_QUOTE: usize = 64 * 1024;
const HEADER_LEN: usize = 48;
const TD_REPORT_LEN: usize = 584;
const SIGNED_LEN: usize = HEADER_LEN + TD_REPORT_LEN;
const QE_REPORT_LEN: usize = 384;
const TEE_TYPE_TDX: u32 = 0x81;
const ATT_KEY_ECDSA_P256: u16 = 2;

/// The TD report (TDREPORT body, TDX 1.0 layout) inside a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport {
    /// TEE TCB SVN (TDX module and microcode SVNs).
    pub tee_tcb_svn: [u8; 16],
    /// Measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// Signer of the TDX module (zero for Intel's).
    pub mr_signer_seam: [u8; 48],
    /// SEAM attributes.
    pub seam_attributes: [u8; 8],
    /// TD attributes (bit 0: DEBUG).
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// Initial TD measurement.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// Runtime measurement registers.
    pub rtmr: [[u8; 48]; 4],
    /// Report data.
    pub report_data: ReportData,
}

/// A parsed, not yet verified, TDX quote v4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxQuote {
    /// Quote version (4).
    pub version: u16,
    /// QE vendor id.
    pub qe_vendor_id: [u8; 16],
    /// The TD report.
    pub report: TdReport,
    /// ECDSA P-256 quote signature, r || s.
    pub signature: [u8; 64],
    /// Attestation public key, x || y.
    pub attestation_key: [u8; 64],
    /// The QE's SGX report (384 bytes).
    pub qe_report: Vec<u8>,
    /// PCK signature over the QE report, r || s.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data.
    pub qe_auth_data: Vec<u8>,
    /// PCK certificate chain, PEM.
    pub pck_chain_pem: Vec<u8>,
    signed: Vec<u8>,
}

impl TdxQuote {
    /// Parses a quote. Untrusted input: bounded, no panics.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_size("TDX quote", bytes.len(), MAX_QUOTE)?;
        let mut r = Reader::new("TDX quote", bytes);
        let version = r.u16_le()?;
        if version != 4 {
            return Err(Error::UnsupportedVersion {
                what: "TDX quote",
                version: version.into(),
            });
        }
        let att_key_type = r.u16_le()?;
        if att_key_type != ATT_KEY_ECDSA_P256 {
            return Err(Error::malformed(
                "TDX quote",
                format!("attestation key type {att_key_type}, expected 2 (ECDSA P-256)"),
            ));
        }
        let tee_type = r.u32_le()?;
        if tee_type != TEE_TYPE_TDX {
            return Err(Error::malformed(
                "TDX quote",
                format!("TEE type {tee_type:#x}, expected 0x81 (TDX)"),
            ));
        }
        let _reserved = r.array::<4>()?;
        let qe_vendor_id = r.array()?;
        let _user_data = r.array::<20>()?;
        let report = TdReport {
            tee_tcb_svn: r.array()?,
            mr_seam: r.array()?,
            mr_signer_seam: r.array()?,
            seam_attributes: r.array()?,
            td_attributes: r.array()?,
            xfam: r.array()?,
            mr_td: r.array()?,
            mr_config_id: r.array()?,
            mr_owner: r.array()?,
            mr_owner_config: r.array()?,
            rtmr: [r.array()?, r.array()?, r.array()?, r.array()?],
            report_data: ReportData(r.array()?),
        };
        debug_assert_eq!(r.pos(), SIGNED_LEN);
        let sig_len = r.u32_le()? as usize;
        let sig_data = r.bytes(sig_len)?;
        let padding = r.rest();
        if padding.iter().any(|b| *b != 0) {
            return Err(Error::malformed(
                "TDX quote",
                "non-zero bytes after the signature data",
            ));
        }
        let mut s = Reader::new("TDX quote signature data", sig_data);
        let signature = s.array()?;
        let attestation_key = s.array()?;
        let cert_type = s.u16_le()?;
        if cert_type != 6 {
            return Err(Error::malformed(
                "TDX quote",
                format!("certification data type {cert_type}, expected 6 (QE report)"),
            ));
        }
        let cert_len = s.u32_le()? as usize;
        let cert_data = s.bytes(cert_len)?;
        let mut c = Reader::new("TDX QE certification data", cert_data);
        let qe_report = c.bytes(QE_REPORT_LEN)?.to_vec();
        let qe_report_signature = c.array()?;
        let auth_len = c.u16_le()? as usize;
        let qe_auth_data = c.bytes(auth_len)?.to_vec();
        let inner_type = c.u16_le()?;
        if inner_type != 5 {
            return Err(Error::malformed(
                "TDX quote",
                format!("QE certification data type {inner_type}, expected 5 (PCK chain)"),
            ));
        }
        let inner_len = c.u32_le()? as usize;
        let pck_chain_pem = c.bytes(inner_len)?.to_vec();
        Ok(TdxQuote {
            version,
            qe_vendor_id,
            report,
            signature,
            attestation_key,
            qe_report,
            qe_report_signature,
            qe_auth_data,
            pck_chain_pem,
            signed: bytes[..SIGNED_LEN].to_vec(),
        })
    }

    /// Whether the TD is debuggable (TD attribute bit 0).
    pub fn debug(&self) -> bool {
        self.report.td_attributes[0] & 1 != 0
    }
}

/// The QE's SGX report fields the verifier uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QeReport {
    miscselect: u32,
    attributes: [u8; 16],
    mr_signer: [u8; 32],
    isv_prod_id: u16,
    isv_svn: u16,
    report_data: [u8; 64],
}

impl QeReport {
    fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new("QE report", b);
        let _cpusvn = r.array::<16>()?;
        let miscselect = r.u32_le()?;
        let _ = r.bytes(28)?;
        let attributes = r.array()?;
        let _mr_enclave = r.array::<32>()?;
        let _ = r.bytes(32)?;
        let mr_signer = r.array()?;
        let _ = r.bytes(96)?;
        let isv_prod_id = r.u16_le()?;
        let isv_svn = r.u16_le()?;
        let _ = r.bytes(60)?;
        let report_data = r.array()?;
        Ok(QeReport {
            miscselect,
            attributes,
            mr_signer,
            isv_prod_id,
            isv_svn,
            report_data,
        })
    }
}

/// PCS collateral for a TDX quote, in the layout Intel's PCS/PCCS APIs return (field names as
/// in dcap-qvl's `QuoteCollateralV3`): PEM issuer chains, hex DER CRLs, TCB info and QE identity
/// as the exact signed JSON text, signatures as hex `r || s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxCollateral {
    /// PEM chain of the PCK CRL issuer.
    pub pck_crl_issuer_chain: String,
    /// Root CA CRL, hex DER.
    pub root_ca_crl: String,
    /// PCK CRL, hex DER.
    pub pck_crl: String,
    /// PEM chain of the TCB info signer.
    pub tcb_info_issuer_chain: String,
    /// TCB info JSON, exactly as signed.
    pub tcb_info: String,
    /// TCB info signature, hex r || s.
    pub tcb_info_signature: String,
    /// PEM chain of the QE identity signer.
    pub qe_identity_issuer_chain: String,
    /// QE identity JSON, exactly as signed.
    pub qe_identity: String,
    /// QE identity signature, hex r || s.
    pub qe_identity_signature: String,
}

/// Sealroom's TDX evidence: the quote and its collateral (collateral is authenticated by Intel's
/// signatures, so the agent may ship it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxEvidence {
    /// The quote, standard base64.
    pub quote: String,
    /// Its collateral.
    pub collateral: TdxCollateral,
}

impl TdxEvidence {
    /// Parses untrusted evidence bytes into (quote, collateral).
    pub fn parse(bytes: &[u8]) -> Result<(Vec<u8>, TdxCollateral)> {
        use base64::Engine as _;
        check_size("TDX evidence", bytes.len(), crate::MAX_EVIDENCE)?;
        let ev: TdxEvidence = serde_json::from_slice(bytes)
            .map_err(|e| Error::malformed("TDX evidence", e.to_string()))?;
        let quote = base64::engine::general_purpose::STANDARD
            .decode(ev.quote)
            .map_err(|e| Error::malformed("TDX evidence", format!("quote: {e}")))?;
        Ok((quote, ev.collateral))
    }
}

#[derive(Debug, Deserialize)]
struct Svn {
    svn: u16,
}

#[derive(Debug, Deserialize)]
struct TcbComponents {
    sgxtcbcomponents: Vec<Svn>,
    pcesvn: u16,
    #[serde(default)]
    tdxtcbcomponents: Vec<Svn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcbLevel {
    tcb: TcbComponents,
    tcb_status: String,
    #[serde(default, rename = "advisoryIDs")]
    advisory_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct IsvSvn {
    isvsvn: u16,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IsvTcbLevel {
    tcb: IsvSvn,
    tcb_status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleIdentity {
    id: String,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<IsvTcbLevel>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfo {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    #[serde(default)]
    tdx_module_identities: Vec<TdxModuleIdentity>,
    tcb_levels: Vec<TcbLevel>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentity {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<IsvTcbLevel>,
}

/// TDX TCB claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxTcb {
    /// TEE TCB SVN from the TD report, hex.
    pub tee_tcb_svn: String,
    /// SGX TCB component SVNs from the PCK certificate.
    pub sgx_components: Vec<u8>,
    /// PCE SVN from the PCK certificate.
    pub pce_svn: u16,
    /// QE ISV SVN.
    pub qe_svn: u16,
    /// FMSPC, hex.
    pub fmspc: String,
    /// The computed TCB status (`UpToDate`, `SWHardeningNeeded`, `OutOfDate`, ...).
    pub status: String,
    /// Intel security advisories of the matched TCB level.
    pub advisory_ids: Vec<String>,
}

/// What the TDX verifier accepts beyond signature validity.
#[derive(Debug, Clone)]
pub struct TdxPolicy {
    /// Accepted MRTD values.
    pub measurements: ReferenceMeasurements,
    /// Accepted TCB statuses (Intel's names, e.g. `UpToDate`, `SWHardeningNeeded`).
    pub accepted_tcb_status: Vec<String>,
    /// Accept debuggable TDs.
    pub allow_debug: bool,
}

impl TdxPolicy {
    /// Accept `UpToDate` only, no debug, the given measurements.
    pub fn strict(measurements: ReferenceMeasurements) -> Self {
        TdxPolicy {
            measurements,
            accepted_tcb_status: vec!["UpToDate".into()],
            allow_debug: false,
        }
    }
}

/// Verifies TDX evidence ([`TdxEvidence`] JSON).
#[derive(Debug, Clone)]
pub struct TdxVerifier {
    root: Cert,
    policy: TdxPolicy,
}

const OID_SGX_EXT: &str = "1.2.840.113741.1.13.1";

/// SGX extension fields of a PCK certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PckExt {
    components: [u8; 16],
    pce_svn: u16,
    pce_id: Vec<u8>,
    fmspc: Vec<u8>,
}

fn pck_extension(pck: &Cert) -> Result<PckExt> {
    let bad = |r: &str| Error::chain(&pck.name, format!("SGX extension: {r}"));
    let ext = pck.extension(OID_SGX_EXT).ok_or_else(|| bad("missing"))?;
    let outer = der_tlvs(ext).ok_or_else(|| bad("bad DER"))?;
    let [(0x30, seq)] = outer.as_slice() else {
        return Err(bad("not a SEQUENCE"));
    };
    let base = OID_SGX_EXT;
    let (oid_tcb, oid_pceid, oid_fmspc) = (
        oid_bytes(&format!("{base}.2")),
        oid_bytes(&format!("{base}.3")),
        oid_bytes(&format!("{base}.4")),
    );
    let mut out = PckExt {
        components: [0; 16],
        pce_svn: 0,
        pce_id: Vec::new(),
        fmspc: Vec::new(),
    };
    let (mut seen_tcb, mut seen_comp) = (false, [false; 17]);
    for (tag, entry) in der_tlvs(seq).ok_or_else(|| bad("bad DER"))? {
        if tag != 0x30 {
            return Err(bad("entry is not a SEQUENCE"));
        }
        let parts = der_tlvs(entry).ok_or_else(|| bad("bad DER"))?;
        let [(0x06, oid), (vtag, value)] = parts.as_slice() else {
            continue;
        };
        if *oid == oid_tcb.as_slice() && *vtag == 0x30 {
            seen_tcb = true;
            for (t, comp) in der_tlvs(value).ok_or_else(|| bad("bad DER"))? {
                let cparts = der_tlvs(comp).ok_or_else(|| bad("bad DER"))?;
                let [(0x06, coid), (0x02, cval)] = cparts.as_slice() else {
                    continue;
                };
                if t != 0x30 || coid.len() != oid_tcb.len() + 1 || !coid.starts_with(&oid_tcb) {
                    continue;
                }
                let idx = coid[oid_tcb.len()] as usize;
                let mut der_int = vec![0x02, cval.len() as u8];
                der_int.extend_from_slice(cval);
                let v = der_small_uint(&der_int)
                    .ok_or_else(|| bad("TCB component is not a small INTEGER"))?;
                match idx {
                    1..=16 => {
                        out.components[idx - 1] =
                            u8::try_from(v).map_err(|_| bad("SVN over 255"))?;
                        seen_comp[idx - 1] = true;
                    }
                    17 => {
                        out.pce_svn = u16::try_from(v).map_err(|_| bad("PCESVN over 65535"))?;
                        seen_comp[16] = true;
                    }
                    _ => {}
                }
            }
        } else if *oid == oid_pceid.as_slice() && *vtag == 0x04 {
            out.pce_id = value.to_vec();
        } else if *oid == oid_fmspc.as_slice() && *vtag == 0x04 {
            out.fmspc = value.to_vec();
        }
    }
    if !seen_tcb || seen_comp.iter().any(|s| !s) {
        return Err(bad("TCB components missing"));
    }
    if out.fmspc.len() != 6 || out.pce_id.len() != 2 {
        return Err(bad("FMSPC or PCE-ID missing"));
    }
    Ok(out)
}

fn decode_hex(what: &'static str, s: &str) -> Result<Vec<u8>> {
    hex::decode(s.trim()).map_err(|e| Error::Collateral {
        what,
        reason: format!("bad hex: {e}"),
    })
}

fn collateral_err(what: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        e @ (Error::NotValidAt { .. } | Error::Revoked { .. } | Error::Collateral { .. }) => e,
        other => Error::Collateral {
            what,
            reason: other.to_string(),
        },
    }
}

/// Status of the first level whose ISV SVN is at most `svn`.
fn isv_status(levels: &[IsvTcbLevel], svn: u16) -> String {
    levels
        .iter()
        .find(|l| svn >= l.tcb.isvsvn)
        .map(|l| l.tcb_status.clone())
        .unwrap_or_else(|| "Revoked".into())
}

/// Lowers a platform TCB status by a QE or TDX module status (Intel QVL's convergence rules).
fn converge(platform: &str, other: &str) -> String {
    match other {
        "Revoked" => "Revoked".into(),
        "OutOfDate" => match platform {
            "UpToDate" | "SWHardeningNeeded" => "OutOfDate".into(),
            "ConfigurationNeeded" | "ConfigurationAndSWHardeningNeeded" => {
                "OutOfDateConfigurationNeeded".into()
            }
            p => p.into(),
        },
        _ => platform.into(),
    }
}

impl TdxVerifier {
    /// A verifier trusting the built-in Intel SGX Root CA.
    pub fn new(policy: TdxPolicy) -> Result<Self> {
        Self::with_root_pem(INTEL_SGX_ROOT_CA_PEM.as_bytes(), policy)
    }

    /// A verifier trusting the given root (PEM).
    pub fn with_root_pem(root_pem: &[u8], policy: TdxPolicy) -> Result<Self> {
        let root = Cert::from_pem("Intel SGX Root CA", root_pem)?;
        Ok(TdxVerifier { root, policy })
    }

    fn verify_signer_chain(
        &self,
        what: &'static str,
        pem: &str,
        now: VerificationTime,
    ) -> Result<Cert> {
        let chain = pem_chain(what, pem.as_bytes())?;
        let [signer, root] = chain.as_slice() else {
            return Err(Error::chain(
                what,
                format!(
                    "expected signer and root, found {} certificates",
                    chain.len()
                ),
            ));
        };
        check_root(root, &self.root, now)?;
        signer.verify_issued_by(root, now)?;
        Ok(signer.clone())
    }

    fn verify_json_signature(
        what: &'static str,
        signer: &Cert,
        json: &str,
        sig_hex: &str,
    ) -> Result<()> {
        let sig = decode_hex(what, sig_hex)?;
        if signer.key_kind()? != KeyKind::P256 {
            return Err(Error::chain(&signer.name, "signing key is not ECDSA P-256"));
        }
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, signer.spki_key())
            .verify(json.as_bytes(), &sig)
            .map_err(|_| Error::BadSignature {
                what,
                key: "Intel TCB signing certificate",
            })
    }

    /// Verifies a quote with its collateral at `now` and computes the TCB status. Does not apply
    /// the report-data, measurement, TCB-status or debug policy (see [`Verifier::verify`]).
    pub fn verify_quote(
        &self,
        quote: &[u8],
        col: &TdxCollateral,
        now: VerificationTime,
    ) -> Result<(TdxQuote, TdxTcb)> {
        let quote = TdxQuote::parse(quote)?;

        // 2. PCK chain to the pinned root, CRLs.
        let chain = pem_chain("PCK chain", &quote.pck_chain_pem)?;
        let [pck, pck_ca, root] = chain.as_slice() else {
            return Err(Error::chain(
                "PCK chain",
                format!("expected 3 certificates, found {}", chain.len()),
            ));
        };
        check_root(root, &self.root, now)?;
        pck_ca.verify_issued_by(root, now)?;
        pck.verify_issued_by(pck_ca, now)?;
        let root_crl = Crl::verify(
            "root CA CRL",
            &decode_hex("root CA CRL", &col.root_ca_crl)?,
            root,
            now,
        )
        .map_err(collateral_err("root CA CRL"))?;
        root_crl.check_not_revoked("root CA CRL", pck_ca)?;
        let pck_crl = Crl::verify(
            "PCK CRL",
            &decode_hex("PCK CRL", &col.pck_crl)?,
            pck_ca,
            now,
        )
        .map_err(collateral_err("PCK CRL"))?;
        pck_crl.check_not_revoked("PCK CRL", pck)?;

        // 3. QE report signed by the PCK, binding the attestation key.
        if pck.key_kind()? != KeyKind::P256 {
            return Err(Error::chain(&pck.name, "PCK key is not ECDSA P-256"));
        }
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pck.spki_key())
            .verify(&quote.qe_report, &quote.qe_report_signature)
            .map_err(|_| Error::BadSignature {
                what: "QE report",
                key: "PCK certificate",
            })?;
        let qe = QeReport::parse(&quote.qe_report)?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&quote.attestation_key);
        ctx.update(&quote.qe_auth_data);
        let h = ctx.finish();
        if qe.report_data[..32] != *h.as_ref() || qe.report_data[32..].iter().any(|b| *b != 0) {
            return Err(Error::Mismatch {
                what: "QE report data (attestation key binding)",
                expected: hex::encode(h.as_ref()),
                found: hex::encode(&qe.report_data[..32]),
            });
        }

        // 4. Quote signed by the attestation key.
        let mut ak = [0x04u8; 65];
        ak[1..].copy_from_slice(&quote.attestation_key);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &ak)
            .verify(&quote.signed, &quote.signature)
            .map_err(|_| Error::BadSignature {
                what: "TDX quote",
                key: "attestation key",
            })?;

        // 5. TCB info and QE identity.
        check_size("TCB info", col.tcb_info.len(), 256 * 1024)?;
        let tcb_signer =
            self.verify_signer_chain("TCB info issuer chain", &col.tcb_info_issuer_chain, now)?;
        Self::verify_json_signature(
            "TCB info",
            &tcb_signer,
            &col.tcb_info,
            &col.tcb_info_signature,
        )?;
        let tcb_info: TcbInfo =
            serde_json::from_str(&col.tcb_info).map_err(|e| Error::Collateral {
                what: "TCB info",
                reason: e.to_string(),
            })?;
        if tcb_info.id != "TDX" || tcb_info.version != 3 {
            return Err(Error::Collateral {
                what: "TCB info",
                reason: format!(
                    "id {} version {}, expected TDX version 3",
                    tcb_info.id, tcb_info.version
                ),
            });
        }
        now.check_within(
            "TCB info",
            VerificationTime::parse_rfc3339(&tcb_info.issue_date)?.0,
            VerificationTime::parse_rfc3339(&tcb_info.next_update)?.0,
        )?;
        let ext = pck_extension(pck)?;
        if decode_hex("TCB info", &tcb_info.fmspc)? != ext.fmspc {
            return Err(Error::Mismatch {
                what: "FMSPC (TCB info vs PCK)",
                expected: hex::encode(&ext.fmspc),
                found: tcb_info.fmspc.clone(),
            });
        }
        if decode_hex("TCB info", &tcb_info.pce_id)? != ext.pce_id {
            return Err(Error::Mismatch {
                what: "PCE id (TCB info vs PCK)",
                expected: hex::encode(&ext.pce_id),
                found: tcb_info.pce_id.clone(),
            });
        }

        check_size("QE identity", col.qe_identity.len(), 64 * 1024)?;
        let qe_signer = self.verify_signer_chain(
            "QE identity issuer chain",
            &col.qe_identity_issuer_chain,
            now,
        )?;
        Self::verify_json_signature(
            "QE identity",
            &qe_signer,
            &col.qe_identity,
            &col.qe_identity_signature,
        )?;
        let qe_id: QeIdentity =
            serde_json::from_str(&col.qe_identity).map_err(|e| Error::Collateral {
                what: "QE identity",
                reason: e.to_string(),
            })?;
        if qe_id.id != "TD_QE" || qe_id.version != 2 {
            return Err(Error::Collateral {
                what: "QE identity",
                reason: format!(
                    "id {} version {}, expected TD_QE version 2",
                    qe_id.id, qe_id.version
                ),
            });
        }
        now.check_within(
            "QE identity",
            VerificationTime::parse_rfc3339(&qe_id.issue_date)?.0,
            VerificationTime::parse_rfc3339(&qe_id.next_update)?.0,
        )?;

        // 6. QE report matches the QE identity.
        let mrsigner = decode_hex("QE identity", &qe_id.mrsigner)?;
        if mrsigner != qe.mr_signer {
            return Err(Error::Mismatch {
                what: "QE MRSIGNER",
                expected: qe_id.mrsigner.clone(),
                found: hex::encode(qe.mr_signer),
            });
        }
        if qe_id.isvprodid != qe.isv_prod_id {
            return Err(Error::Mismatch {
                what: "QE ISVPRODID",
                expected: qe_id.isvprodid.to_string(),
                found: qe.isv_prod_id.to_string(),
            });
        }
        let masked_eq = |what: &'static str, value: &[u8], want: &str, mask: &str| -> Result<()> {
            let want = decode_hex("QE identity", want)?;
            let mask = decode_hex("QE identity", mask)?;
            if want.len() != value.len() || mask.len() != value.len() {
                return Err(Error::Collateral {
                    what: "QE identity",
                    reason: format!("{what} has the wrong length"),
                });
            }
            if value
                .iter()
                .zip(&mask)
                .map(|(v, m)| v & m)
                .ne(want.iter().copied())
            {
                return Err(Error::Mismatch {
                    what,
                    expected: hex::encode(&want),
                    found: hex::encode(value),
                });
            }
            Ok(())
        };
        // MISCSELECT is a 32-bit value; the identity writes it as a big-endian hex number.
        masked_eq(
            "QE MISCSELECT",
            &qe.miscselect.to_be_bytes(),
            &qe_id.miscselect,
            &qe_id.miscselect_mask,
        )?;
        masked_eq(
            "QE ATTRIBUTES",
            &qe.attributes,
            &qe_id.attributes,
            &qe_id.attributes_mask,
        )?;
        let qe_status = isv_status(&qe_id.tcb_levels, qe.isv_svn);

        // 7. TCB status.
        let svn = &quote.report.tee_tcb_svn;
        let module_in_identities = svn[1] > 0;
        let level = tcb_info.tcb_levels.iter().find(|l| {
            l.tcb.sgxtcbcomponents.len() == 16
                && l.tcb.tdxtcbcomponents.len() == 16
                && ext
                    .components
                    .iter()
                    .zip(&l.tcb.sgxtcbcomponents)
                    .all(|(have, want)| u16::from(*have) >= want.svn)
                && ext.pce_svn >= l.tcb.pcesvn
                && svn
                    .iter()
                    .zip(&l.tcb.tdxtcbcomponents)
                    .skip(if module_in_identities { 2 } else { 0 })
                    .all(|(have, want)| u16::from(*have) >= want.svn)
        });
        let Some(level) = level else {
            return Err(Error::TcbStatusRefused {
                status: "no TCB level matches the platform (treated as Revoked)".into(),
            });
        };
        let mut status = level.tcb_status.clone();
        if module_in_identities {
            let id = format!("TDX_{:02X}", svn[1]);
            let module = tcb_info
                .tdx_module_identities
                .iter()
                .find(|m| m.id.eq_ignore_ascii_case(&id))
                .ok_or_else(|| Error::Collateral {
                    what: "TCB info",
                    reason: format!("no TDX module identity {id}"),
                })?;
            if decode_hex("TCB info", &module.mrsigner)? != quote.report.mr_signer_seam {
                return Err(Error::Mismatch {
                    what: "TDX module MRSIGNER",
                    expected: module.mrsigner.clone(),
                    found: hex::encode(quote.report.mr_signer_seam),
                });
            }
            masked_eq(
                "TDX module attributes",
                &quote.report.seam_attributes,
                &module.attributes,
                &module.attributes_mask,
            )?;
            status = converge(&status, &isv_status(&module.tcb_levels, svn[0].into()));
        }
        status = converge(&status, &qe_status);
        let tcb = TdxTcb {
            tee_tcb_svn: hex::encode(svn),
            sgx_components: ext.components.to_vec(),
            pce_svn: ext.pce_svn,
            qe_svn: qe.isv_svn,
            fmspc: hex::encode(&ext.fmspc),
            status,
            advisory_ids: level.advisory_ids.clone(),
        };
        Ok((quote, tcb))
    }

    fn check_policy(&self, quote: &TdxQuote, tcb: &TdxTcb) -> Result<()> {
        self.policy.measurements.check(&quote.report.mr_td)?;
        if !self
            .policy
            .accepted_tcb_status
            .iter()
            .any(|s| s == &tcb.status)
        {
            return Err(Error::TcbStatusRefused {
                status: tcb.status.clone(),
            });
        }
        if quote.debug() && !self.policy.allow_debug {
            return Err(Error::DebugNotAllowed {
                detail: "TD attribute DEBUG",
            });
        }
        Ok(())
    }
}

impl Verifier for TdxVerifier {
    fn technology(&self) -> Technology {
        Technology::Tdx
    }

    fn verify(
        &self,
        evidence: &[u8],
        expected: &ReportData,
        now: VerificationTime,
    ) -> Result<Claims> {
        let (quote, collateral) = TdxEvidence::parse(evidence)?;
        let (quote, tcb) = self.verify_quote(&quote, &collateral, now)?;
        expected.expect(&quote.report.report_data)?;
        self.check_policy(&quote, &tcb)?;
        let r = &quote.report;
        let mut details = vec![
            ("mr_seam".to_string(), hex::encode(r.mr_seam)),
            ("mr_config_id".into(), hex::encode(r.mr_config_id)),
            ("mr_owner".into(), hex::encode(r.mr_owner)),
            ("mr_owner_config".into(), hex::encode(r.mr_owner_config)),
            ("xfam".into(), hex::encode(r.xfam)),
            ("tcb_status".into(), tcb.status.clone()),
        ];
        for (i, m) in r.rtmr.iter().enumerate() {
            details.push((format!("rtmr{i}"), hex::encode(m)));
        }
        Ok(Claims {
            technology: Technology::Tdx,
            simulated: false,
            measurement: Measurement(r.mr_td.to_vec()),
            report_data: r.report_data,
            debug: quote.debug(),
            policy: u64::from_le_bytes(r.td_attributes),
            tcb: TcbClaims::Tdx(tcb),
            details,
        })
    }
}
