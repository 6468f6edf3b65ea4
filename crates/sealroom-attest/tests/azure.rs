//! Azure CVM (SNP behind vTPM) verifier on genuine evidence (confidential-containers/trustee
//! test data) and on tampered copies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{at, read};
use sealroom_attest::azure::{AzureEvidence, AzurePolicy, AzureSnpVtpmVerifier};
use sealroom_attest::snp::{self, AmdChain, SnpPolicy, SnpReport, TcbVersion};
use sealroom_attest::{
    Error, Measurement, ReferenceMeasurements, ReportData, Technology, Verifier,
};
use serde_json::Value;

fn evidence_v2() -> Value {
    serde_json::from_slice(&read("az-snp-vtpm/evidence-v2.json")).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn parsed(v: &Value) -> AzureEvidence {
    AzureEvidence::parse(&bytes(v)).unwrap()
}

fn user_data(ev: &AzureEvidence) -> ReportData {
    let rt: Value = serde_json::from_slice(&ev.hcl.runtime_data).unwrap();
    let v = hex::decode(rt["user-data"].as_str().unwrap()).unwrap();
    ReportData(v.try_into().unwrap())
}

fn verifier(ev: &AzureEvidence) -> AzureSnpVtpmVerifier {
    let r = SnpReport::parse(&ev.hcl.snp_report).unwrap();
    AzureSnpVtpmVerifier::new(
        vec![AmdChain::milan().unwrap()],
        AzurePolicy {
            snp: SnpPolicy {
                measurements: ReferenceMeasurements::OneOf(vec![Measurement(
                    r.measurement.to_vec(),
                )]),
                min_tcb: TcbVersion::default(),
                allow_debug: false,
            },
            required_pcrs: vec![(0, ev.pcrs[0])],
        },
    )
    .unwrap()
}

fn now() -> sealroom_attest::VerificationTime {
    at("2025-06-01T00:00:00Z")
}

fn verify(v: &Value) -> sealroom_attest::Result<sealroom_attest::Claims> {
    let genuine = parsed(&evidence_v2());
    verifier(&genuine).verify(&bytes(v), &user_data(&genuine), now())
}

#[test]
fn genuine_evidence_verifies() {
    let claims = verify(&evidence_v2()).unwrap();
    assert_eq!(claims.technology, Technology::AzureSnpVtpm);
    assert!(!claims.simulated);
    assert!(claims.details.iter().any(|(k, _)| k == "pcr0"));
}

#[test]
fn report_data_must_match() {
    let genuine = parsed(&evidence_v2());
    let mut other = user_data(&genuine);
    other.0[63] ^= 1; // only the user-data differs, not the TPM nonce
    let err = verifier(&genuine)
        .verify(&bytes(&evidence_v2()), &other, now())
        .unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err}");
    let mut other = user_data(&genuine);
    other.0[0] ^= 1;
    let err = verifier(&genuine)
        .verify(&bytes(&evidence_v2()), &other, now())
        .unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err}");
}

#[test]
fn tampered_pcr_is_refused() {
    let mut v = evidence_v2();
    v["tpm_quote"]["pcrs"][7] = Value::String("00".repeat(32));
    let err = verify(&v).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Mismatch {
                what: "TPM quote PCR digest",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tampered_quote_is_refused() {
    let mut v = evidence_v2();
    let msg = v["tpm_quote"]["message"].as_str().unwrap().to_string();
    let mut b = hex::decode(msg).unwrap();
    b[50] ^= 1; // inside the nonce (extraData starts at byte 44)
    v["tpm_quote"]["message"] = Value::String(hex::encode(b));
    let err = verify(&v).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "vTPM quote",
                ..
            }
        ),
        "{err}"
    );
}

fn with_hcl(f: impl FnOnce(&mut Vec<u8>)) -> Value {
    use base64::Engine as _;
    let mut v = evidence_v2();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut hcl = b64
        .decode(v["hcl_report"].as_str().unwrap().trim_end_matches('='))
        .unwrap();
    f(&mut hcl);
    v["hcl_report"] = Value::String(b64.encode(hcl));
    v
}

#[test]
fn tampered_hcl_report_is_refused() {
    // SNP measurement inside the HCL report.
    let err = verify(&with_hcl(|h| h[32 + 0x90] ^= 1)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "SNP report",
                ..
            }
        ),
        "{err}"
    );
    // Runtime data (a character of the AK modulus): no longer the hash in the SNP report.
    let err = verify(&with_hcl(|h| h[0x530] ^= 1)).unwrap_err();
    assert!(
        matches!(err, Error::Mismatch { what, .. } if what.contains("runtime data")),
        "{err}"
    );
}

#[test]
fn wrong_vcek_is_refused() {
    use base64::Engine as _;
    // A genuine Milan VCEK of another chip: the chain verifies, the report signature does not.
    let mut v = evidence_v2();
    v["vcek"] =
        Value::String(base64::engine::general_purpose::STANDARD.encode(read("snp/vcek_milan.der")));
    let err = verify(&v).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "SNP report",
                ..
            }
        ),
        "{err}"
    );
    // A VCEK that the Milan ASK did not sign.
    let mut v = evidence_v2();
    v["vcek"] = Value::String(
        base64::engine::general_purpose::STANDARD.encode(read("snp/test-vcek-invalid-new.der")),
    );
    let err = verify(&v).unwrap_err();
    assert!(matches!(err, Error::CertChain { .. }), "{err}");
    // A Genoa VCEK: not under a trusted ASK.
    let mut v = evidence_v2();
    v["vcek"] = Value::String(String::from_utf8(read("az-snp-vtpm/vcek-genoa.pem")).unwrap());
    let err = verify(&v).unwrap_err();
    assert!(matches!(err, Error::CertChain { .. }), "{err}");
}

#[test]
fn genoa_evidence_parses_and_its_report_signature_verifies_but_genoa_chain_is_not_bundled() {
    let raw = read("az-snp-vtpm/evidence-genoa.json");
    let ev = AzureEvidence::parse(&raw).unwrap();
    snp::verify_report_signature_only(&ev.hcl.snp_report, &ev.vcek_der).unwrap();
    assert_eq!(
        ev.hcl.expected_snp_report_data().unwrap(),
        SnpReport::parse(&ev.hcl.snp_report).unwrap().report_data
    );
    let err = verifier(&ev)
        .verify(&raw, &user_data(&ev), now())
        .unwrap_err();
    assert!(
        matches!(err, Error::CertChain { ref reason, .. } if reason.contains("SEV-Genoa")),
        "{err}"
    );
}

#[test]
fn standalone_hcl_report_parses() {
    let hcl =
        sealroom_attest::azure::HclReport::parse(&read("az-snp-vtpm/hcl-report.bin")).unwrap();
    let rd = hcl.expected_snp_report_data().unwrap();
    assert_eq!(SnpReport::parse(&hcl.snp_report).unwrap().report_data, rd);
    // (the runtime data ends at byte 2346; the rest of the 2600 bytes is padding)
    for n in [0, 4, 31, 32, 1215, 1216, 1230, 2345] {
        assert!(
            sealroom_attest::azure::HclReport::parse(&read("az-snp-vtpm/hcl-report.bin")[..n])
                .is_err()
        );
    }
}
