//! The simulated technology: an Ed25519-signed report, named as simulated everywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealroom_attest::sim::{SimulatedAttester, SimulatedVerifier, EVIDENCE_LEN};
use sealroom_attest::{
    check_technology, key_release_binding, Attester, Error, Technology, VerificationTime, Verifier,
};

fn setup() -> (SimulatedAttester, SimulatedVerifier) {
    let a = SimulatedAttester::generate([3u8; 48]).unwrap();
    let v = SimulatedVerifier::new(&a.public_key()).unwrap();
    (a, v)
}

#[test]
fn round_trip_and_named_simulated_everywhere() {
    let (a, v) = setup();
    let rd = key_release_binding(b"nonce", "run-1", &[1u8; 32], b"sha256:aa").unwrap();
    let ev = a.attest(&rd).unwrap();
    assert_eq!(ev.len(), EVIDENCE_LEN);
    let claims = v.verify(&ev, &rd, VerificationTime::now()).unwrap();
    assert!(claims.simulated);
    assert_eq!(claims.technology, Technology::Simulated);
    assert!(claims.to_string().contains("SIMULATED"));
    assert!(format!("{claims:?}").contains("SIMULATED"));
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["simulated"], true);
    assert_eq!(json["technology"], "simulated");
    assert!(format!("{a:?}").contains("SIMULATED"));
    assert!(format!("{v:?}").contains("SIMULATED"));
    assert!(Technology::Simulated.to_string().contains("NOT a TEE"));
}

#[test]
fn accepted_only_by_simulated_projects() {
    let (a, v) = setup();
    let rd = key_release_binding(b"n", "r", &[1u8; 32], b"d").unwrap();
    let claims = v
        .verify(&a.attest(&rd).unwrap(), &rd, VerificationTime::now())
        .unwrap();
    check_technology(Technology::Simulated, &claims).unwrap();
    for t in [
        Technology::SevSnp,
        Technology::AzureSnpVtpm,
        Technology::Tdx,
    ] {
        let err = check_technology(t, &claims).unwrap_err();
        assert!(matches!(err, Error::SimulatedRefused { .. }), "{err}");
        assert!(err.to_string().contains("SIMULATED"));
    }
}

#[test]
fn tampering_wrong_key_and_wrong_binding_are_refused() {
    let (a, v) = setup();
    let rd = key_release_binding(b"n", "r", &[1u8; 32], b"d").unwrap();
    let ev = a.attest(&rd).unwrap();
    for i in [0usize, 10, 60, 121, 130, 191] {
        let mut t = ev.clone();
        t[i] ^= 1;
        assert!(
            v.verify(&t, &rd, VerificationTime::now()).is_err(),
            "byte {i}"
        );
    }
    let (_, other_site) = setup();
    let err = other_site
        .verify(&ev, &rd, VerificationTime::now())
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    let other = key_release_binding(b"n2", "r", &[1u8; 32], b"d").unwrap();
    let err = v.verify(&ev, &other, VerificationTime::now()).unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err}");
    assert!(v.verify(&ev[..100], &rd, VerificationTime::now()).is_err());
}
