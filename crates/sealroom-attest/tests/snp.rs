//! SEV-SNP verifier on genuine Milan evidence (virtee/sev, confidential-containers/trustee test
//! vectors) and on tampered copies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{at, flip, read};
use sealroom_attest::snp::{
    self, AmdChain, SnpEvidence, SnpPolicy, SnpReport, SnpVerifier, TcbVersion,
};
use sealroom_attest::{
    Error, Measurement, ReferenceMeasurements, ReportData, TcbClaims, Technology, Verifier,
};

fn milan_report() -> Vec<u8> {
    let hex_text = String::from_utf8(read("snp/report_milan.hex")).unwrap();
    hex::decode(hex_text.trim()).unwrap()
}

fn policy_for(report: &[u8]) -> SnpPolicy {
    let r = SnpReport::parse(report).unwrap();
    SnpPolicy {
        measurements: ReferenceMeasurements::OneOf(vec![Measurement(r.measurement.to_vec())]),
        min_tcb: TcbVersion::default(),
        allow_debug: r.debug_allowed(),
    }
}

fn report_data(report: &[u8]) -> ReportData {
    SnpReport::parse(report).unwrap().report_data
}

fn now() -> sealroom_attest::VerificationTime {
    at("2025-06-01T00:00:00Z")
}

fn verify(
    report: &[u8],
    vcek: &[u8],
    policy: SnpPolicy,
) -> sealroom_attest::Result<sealroom_attest::Claims> {
    let v = SnpVerifier::milan(policy).unwrap();
    let ev = SnpEvidence::new(report, vcek).to_bytes();
    v.verify(&ev, &report_data(report), now())
}

#[test]
fn genuine_milan_report_verifies() {
    let report = milan_report();
    let claims = verify(&report, &read("snp/vcek_milan.der"), policy_for(&report)).unwrap();
    assert_eq!(claims.technology, Technology::SevSnp);
    assert!(!claims.simulated);
    assert_eq!(
        claims.measurement.0,
        SnpReport::parse(&report).unwrap().measurement
    );
    assert_eq!(claims.report_data, report_data(&report));
    let TcbClaims::Snp(tcb) = claims.tcb else {
        panic!("not SNP TCB")
    };
    assert_eq!(tcb, SnpReport::parse(&report).unwrap().reported_tcb());
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["simulated"], false);
    assert_eq!(json["technology"], "sev-snp");
}

#[test]
fn genuine_trustee_vcek_report_verifies() {
    let report = read("snp/test-report.bin");
    verify(&report, &read("snp/test-vcek.der"), policy_for(&report)).unwrap();
}

#[test]
fn flipped_bits_in_signed_fields_are_refused() {
    let report = milan_report();
    let vcek = read("snp/vcek_milan.der");
    // measurement, report data, policy, reported TCB, chip id, signature r, signature s
    for off in [0x90, 0x50, 0x08, 0x180, 0x1A0, 0x2A0, 0x2E8] {
        let tampered = flip(report.clone(), off);
        let v = SnpVerifier::milan(policy_for(&report)).unwrap();
        let ev = SnpEvidence::new(&tampered, &vcek).to_bytes();
        let err = v.verify(&ev, &report_data(&report), now()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadSignature {
                    what: "SNP report",
                    ..
                }
            ),
            "offset {off:#x}: {err}"
        );
    }
}

#[test]
fn wrong_vcek_is_refused() {
    let report = read("snp/test-report.bin");
    // A genuine Milan VCEK of another chip: the chain verifies, the report signature does not.
    let err = verify(&report, &read("snp/vcek_milan.der"), policy_for(&report)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "SNP report",
                key: "VCEK"
            }
        ),
        "{err}"
    );
    // trustee's "invalid" VCEK: named as issued by SEV-Milan, but the ASK's signature on it does
    // not verify (OpenSSL agrees).
    let err = verify(
        &report,
        &read("snp/test-vcek-invalid-new.der"),
        policy_for(&report),
    )
    .unwrap_err();
    let Error::CertChain { cert, reason } = &err else {
        panic!("{err}")
    };
    assert!(
        cert.starts_with("VCEK") && reason.contains("signature does not verify"),
        "{err}"
    );
}

#[test]
fn vcek_of_an_untrusted_chain_is_refused() {
    // A Genoa VCEK: its ASK (SEV-Genoa) is not a trusted intermediate.
    let pem = read("az-snp-vtpm/vcek-genoa.pem");
    let der = x509_der_from_pem(&pem);
    let report = milan_report();
    let err = verify(&report, &der, policy_for(&report)).unwrap_err();
    let Error::CertChain { reason, .. } = &err else {
        panic!("{err}")
    };
    assert!(reason.contains("SEV-Genoa"), "{err}");
}

#[test]
fn tampered_vcek_is_refused() {
    let report = milan_report();
    let vcek = read("snp/vcek_milan.der");
    // A byte inside the TBS (the subject key) and one in the ASK's signature over it.
    for off in [300, vcek.len() - 10] {
        let err = verify(&report, &flip(vcek.clone(), off), policy_for(&report)).unwrap_err();
        assert!(
            matches!(err, Error::CertChain { .. }),
            "offset {off}: {err}"
        );
    }
}

#[test]
fn tampered_ask_in_trusted_bundle_is_refused() {
    let mut pem = String::from_utf8(read("snp/cert_chain_milan")).unwrap();
    // Change one base64 character near the end of the first (ASK) certificate's signature.
    // (on the second-to-last base64 line: full, no padding)
    let end = pem.find("-----END CERTIFICATE-----").unwrap();
    let i = pem[..end - 1].rfind('\n').unwrap() - 20;
    let c = pem.as_bytes()[i];
    let repl = if c == b'A' { "B" } else { "A" };
    pem.replace_range(i..i + 1, repl);
    let chain = AmdChain::from_pem(pem.as_bytes()).unwrap();
    let report = milan_report();
    let v = SnpVerifier::new(vec![chain], policy_for(&report)).unwrap();
    let ev = SnpEvidence::new(&report, &read("snp/vcek_milan.der")).to_bytes();
    let err = v.verify(&ev, &report_data(&report), now()).unwrap_err();
    assert!(matches!(err, Error::CertChain { .. }), "{err}");
}

#[test]
fn expired_vcek_is_refused() {
    let report = milan_report();
    let v = SnpVerifier::milan(policy_for(&report)).unwrap();
    let ev = SnpEvidence::new(&report, &read("snp/vcek_milan.der")).to_bytes();
    let err = v
        .verify(&ev, &report_data(&report), at("2031-01-01T00:00:00Z"))
        .unwrap_err();
    assert!(matches!(err, Error::NotValidAt { .. }), "{err}");
}

#[test]
fn report_data_must_match_binding() {
    let report = milan_report();
    let v = SnpVerifier::milan(policy_for(&report)).unwrap();
    let ev = SnpEvidence::new(&report, &read("snp/vcek_milan.der")).to_bytes();
    let other =
        sealroom_attest::key_release_binding(b"nonce", "run", &[0u8; 32], b"digest").unwrap();
    let err = v.verify(&ev, &other, now()).unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err}");
}

#[test]
fn measurement_and_tcb_policy() {
    let report = milan_report();
    let vcek = read("snp/vcek_milan.der");
    let mut p = policy_for(&report);
    p.measurements = ReferenceMeasurements::OneOf(vec![Measurement(vec![0u8; 48])]);
    let err = verify(&report, &vcek, p).unwrap_err();
    assert!(
        matches!(err, Error::MeasurementNotAllowed { count: 1, .. }),
        "{err}"
    );

    let mut p = policy_for(&report);
    let tcb = SnpReport::parse(&report).unwrap().reported_tcb();
    p.min_tcb = TcbVersion {
        snp: tcb.snp + 1,
        ..TcbVersion::default()
    };
    let err = verify(&report, &vcek, p).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TcbTooLow {
                component: "snp",
                ..
            }
        ),
        "{err}"
    );

    let mut p = policy_for(&report);
    p.min_tcb = tcb;
    verify(&report, &vcek, p).unwrap();
}

#[test]
fn vlek_and_genoa_signatures_verify_but_their_chains_are_not_bundled() {
    // VLEK: the report signature verifies with the VLEK...
    let report = read("snp/test-vlek-report.bin");
    let parsed = snp::verify_report_signature_only(&report, &read("snp/test-vlek.der")).unwrap();
    assert_eq!(parsed.signing_key(), 1);
    // ...but no ASVK is configured, so the verifier refuses it.
    let err = verify(&report, &read("snp/test-vlek.der"), policy_for(&report)).unwrap_err();
    assert!(matches!(err, Error::CertChain { .. }), "{err}");
    // And a VLEK-signed report does not verify with a VCEK.
    let err = snp::verify_report_signature_only(&report, &read("snp/test-vcek.der")).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}

#[test]
fn evidence_parsing_is_strict() {
    let v = SnpVerifier::milan(policy_for(&milan_report())).unwrap();
    let rd = ReportData([0u8; 64]);
    for bad in [
        &b""[..],
        b"{}",
        b"{\"report\":\"AA==\",\"vcek\":\"AA==\"}",
        b"{\"report\":\"AA==\",\"vcek\":\"AA==\",\"extra\":1}",
        b"not json",
    ] {
        assert!(v.verify(bad, &rd, now()).is_err());
    }
    let big = vec![b' '; snp::MAX_SNP_EVIDENCE + 1];
    assert!(matches!(
        v.verify(&big, &rd, now()),
        Err(Error::TooLarge { .. })
    ));
    let mut r = milan_report();
    r[0] = 1;
    assert!(matches!(
        SnpReport::parse(&r),
        Err(Error::UnsupportedVersion { version: 1, .. })
    ));
    assert!(SnpReport::parse(&r[..100]).is_err());
}

fn x509_der_from_pem(pem: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let s = String::from_utf8(pem.to_vec()).unwrap();
    let body: String = s
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}
