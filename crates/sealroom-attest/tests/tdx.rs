//! TDX verifier on a genuine quote and collateral (Phala-Network/dcap-qvl sample) and on tampered
//! copies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::{at, flip, read};
use sealroom_attest::tdx::{TdxCollateral, TdxEvidence, TdxPolicy, TdxQuote, TdxVerifier};
use sealroom_attest::{
    Error, Measurement, ReferenceMeasurements, ReportData, TcbClaims, Technology, Verifier,
};

fn quote() -> Vec<u8> {
    read("tdx/tdx_quote")
}

fn collateral() -> TdxCollateral {
    serde_json::from_slice(&read("tdx/tdx_quote_collateral.json")).unwrap()
}

fn evidence(quote: &[u8], collateral: &TdxCollateral) -> Vec<u8> {
    serde_json::to_vec(&TdxEvidence {
        quote: base64::engine::general_purpose::STANDARD.encode(quote),
        collateral: collateral.clone(),
    })
    .unwrap()
}

fn now() -> sealroom_attest::VerificationTime {
    // Inside every collateral window (TCB info 2025-06-19..07-19, PCK CRL ..07-19 10:00).
    at("2025-07-01T00:00:00Z")
}

fn policy() -> TdxPolicy {
    let q = TdxQuote::parse(&quote()).unwrap();
    TdxPolicy::strict(ReferenceMeasurements::OneOf(vec![Measurement(
        q.report.mr_td.to_vec(),
    )]))
}

fn expected() -> ReportData {
    TdxQuote::parse(&quote()).unwrap().report.report_data
}

fn verify_with(q: &[u8], c: &TdxCollateral) -> sealroom_attest::Result<sealroom_attest::Claims> {
    TdxVerifier::new(policy())
        .unwrap()
        .verify(&evidence(q, c), &expected(), now())
}

#[test]
fn genuine_quote_verifies_up_to_date() {
    let claims = verify_with(&quote(), &collateral()).unwrap();
    assert_eq!(claims.technology, Technology::Tdx);
    assert!(!claims.simulated);
    assert!(!claims.debug);
    let TcbClaims::Tdx(tcb) = &claims.tcb else {
        panic!("not TDX")
    };
    assert_eq!(tcb.status, "UpToDate");
    assert_eq!(tcb.fmspc, "b0c06f000000");
    assert_eq!(claims.report_data, expected());
}

#[test]
fn flipped_bits_in_the_quote_are_refused() {
    let q = quote();
    // header, MRTD, report data, quote signature
    for off in [10, 48 + 184, 48 + 520, 636] {
        let err = verify_with(&flip(q.clone(), off), &collateral()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadSignature {
                    what: "TDX quote",
                    ..
                }
            ),
            "offset {off}: {err}"
        );
    }
    // QE report (signed by the PCK)
    let err = verify_with(&flip(q.clone(), 636 + 134 + 100), &collateral()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "QE report",
                ..
            }
        ),
        "{err}"
    );
    // attestation key (bound by the QE report data)
    let err = verify_with(&flip(q.clone(), 636 + 64 + 5), &collateral()).unwrap_err();
    assert!(
        matches!(err, Error::Mismatch { what, .. } if what.contains("QE report data")),
        "{err}"
    );
    // QE report signature
    let err = verify_with(&flip(q, 636 + 134 + 384 + 3), &collateral()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "QE report",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tampered_collateral_is_refused() {
    let mut c = collateral();
    c.tcb_info = c.tcb_info.replacen("OutOfDate", "UpToDate", 1);
    let err = verify_with(&quote(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "TCB info",
                ..
            }
        ),
        "{err}"
    );

    let mut c = collateral();
    c.qe_identity = c.qe_identity.replacen("\"isvsvn\":4", "\"isvsvn\":3", 1);
    let err = verify_with(&quote(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "QE identity",
                ..
            }
        ),
        "{err}"
    );

    let mut c = collateral();
    let mut crl = hex::decode(&c.pck_crl).unwrap();
    let n = crl.len();
    crl[n - 5] ^= 1;
    c.pck_crl = hex::encode(crl);
    let err = verify_with(&quote(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Collateral {
                what: "PCK CRL",
                ..
            }
        ),
        "{err}"
    );

    // A genuine Intel chain, but not the TCB signing certificate's: the signature fails.
    let mut c = collateral();
    c.tcb_info_issuer_chain = c.pck_crl_issuer_chain.clone();
    let err = verify_with(&quote(), &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadSignature {
                what: "TCB info",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn wrong_root_is_refused() {
    let amd_ark_ask = std::str::from_utf8(&read("snp/cert_chain_milan"))
        .unwrap()
        .to_string();
    let ark = &amd_ark_ask[amd_ark_ask.rfind("-----BEGIN").unwrap()..];
    let v = TdxVerifier::with_root_pem(ark.as_bytes(), policy()).unwrap();
    let err = v
        .verify(&evidence(&quote(), &collateral()), &expected(), now())
        .unwrap_err();
    let Error::CertChain { reason, .. } = &err else {
        panic!("{err}")
    };
    assert!(reason.contains("not the trusted"), "{err}");
}

#[test]
fn expired_collateral_is_refused() {
    let v = TdxVerifier::new(policy()).unwrap();
    let ev = evidence(&quote(), &collateral());
    let err = v
        .verify(&ev, &expected(), at("2025-08-01T00:00:00Z"))
        .unwrap_err();
    assert!(matches!(err, Error::NotValidAt { .. }), "{err}");
    let err = v
        .verify(&ev, &expected(), at("2025-06-01T00:00:00Z"))
        .unwrap_err();
    assert!(matches!(err, Error::NotValidAt { .. }), "{err}");
}

#[test]
fn policy_checks() {
    let ev = evidence(&quote(), &collateral());
    let mut p = policy();
    p.accepted_tcb_status = vec!["SWHardeningNeeded".into()];
    let err = TdxVerifier::new(p)
        .unwrap()
        .verify(&ev, &expected(), now())
        .unwrap_err();
    assert!(
        matches!(err, Error::TcbStatusRefused { ref status } if status == "UpToDate"),
        "{err}"
    );

    let p = TdxPolicy::strict(ReferenceMeasurements::OneOf(vec![Measurement(vec![
        1u8;
        48
    ])]));
    let err = TdxVerifier::new(p)
        .unwrap()
        .verify(&ev, &expected(), now())
        .unwrap_err();
    assert!(matches!(err, Error::MeasurementNotAllowed { .. }), "{err}");

    let other = sealroom_attest::key_release_binding(b"n", "r", &[2u8; 32], b"d").unwrap();
    let err = TdxVerifier::new(policy())
        .unwrap()
        .verify(&ev, &other, now())
        .unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err}");
}

#[test]
fn parser_is_bounded() {
    let q = quote();
    for n in [0, 1, 47, 48, 631, 632, 636, 700, 1200, 4935] {
        assert!(TdxQuote::parse(&q[..n]).is_err(), "prefix {n}");
    }
    let mut v5 = q.clone();
    v5[0] = 5;
    assert!(matches!(
        TdxQuote::parse(&v5),
        Err(Error::UnsupportedVersion { version: 5, .. })
    ));
    let mut padded = q.clone();
    padded.push(1);
    assert!(TdxQuote::parse(&padded).is_err());
    assert!(matches!(
        TdxQuote::parse(&vec![0u8; 70_000]),
        Err(Error::TooLarge { .. })
    ));
}
