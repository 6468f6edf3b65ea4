//! HPKE sealing of CEKs to enclave keys: round trip, and every kind of mismatch refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealroom_envelope::recipient::{
    seal_cek, EnclaveKeyPair, EnclavePublicKey, RecipientError, ReleaseInfo, SealedCek,
    SEALED_CEK_LEN, X25519_LEN,
};
use sealroom_envelope::Cek;

fn info() -> Vec<u8> {
    ReleaseInfo::new("proj-1", "run-1", "ds", "00112233445566778899aabbccddeeff").to_bytes()
}

fn sealed() -> (EnclaveKeyPair, Cek, SealedCek) {
    let enclave = EnclaveKeyPair::generate().unwrap();
    let cek = Cek::generate().unwrap();
    let sealed = seal_cek(&cek, enclave.public_key(), &info()).unwrap();
    (enclave, cek, sealed)
}

#[test]
fn round_trip() {
    let (enclave, cek, sealed) = sealed();
    assert_eq!(sealed.enc.len(), X25519_LEN);
    assert_eq!(sealed.ciphertext.len(), SEALED_CEK_LEN);
    assert_eq!(sealed.info, info());
    let opened = enclave.open(&sealed, &info()).unwrap();
    assert_eq!(opened.expose(), cek.expose());

    // Each sealing uses a fresh ephemeral key.
    let again = seal_cek(&cek, enclave.public_key(), &info()).unwrap();
    assert_ne!(again.enc, sealed.enc);
    assert_ne!(again.ciphertext, sealed.ciphertext);
}

#[test]
fn json_round_trip_and_unknown_fields_refused() {
    let (enclave, cek, sealed) = sealed();
    let json = serde_json::to_string(&sealed).unwrap();
    let back: SealedCek = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sealed);
    assert_eq!(enclave.open(&back, &info()).unwrap().expose(), cek.expose());

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["extra"] = serde_json::json!("x");
    assert!(serde_json::from_value::<SealedCek>(v).is_err());

    let pk_json = serde_json::to_string(enclave.public_key()).unwrap();
    let pk: EnclavePublicKey = serde_json::from_str(&pk_json).unwrap();
    assert_eq!(&pk, enclave.public_key());
    assert!(serde_json::from_str::<EnclavePublicKey>("\"AAAA\"").is_err());
}

#[test]
fn wrong_key_is_refused() {
    let (_, _, sealed) = sealed();
    let other = EnclaveKeyPair::generate().unwrap();
    let err = other.open(&sealed, &info()).unwrap_err();
    assert!(matches!(err, RecipientError::OpenFailed), "{err}");
    assert!(err.to_string().contains("does not open"), "{err}");
}

#[test]
fn changed_info_is_refused() {
    let (enclave, _, sealed) = sealed();
    // The enclave expects another run: refused before any cryptography, naming both.
    let other_run =
        ReleaseInfo::new("proj-1", "run-2", "ds", "00112233445566778899aabbccddeeff").to_bytes();
    let err = enclave.open(&sealed, &other_run).unwrap_err();
    assert!(matches!(err, RecipientError::InfoMismatch { .. }), "{err}");

    // Someone rewrote the info carried in the sealed CEK to match what the enclave expects:
    // the HPKE key schedule differs, so authentication fails.
    let mut forged = sealed.clone();
    forged.info = other_run.clone();
    let err = enclave.open(&forged, &other_run).unwrap_err();
    assert!(matches!(err, RecipientError::OpenFailed), "{err}");
}

#[test]
fn changed_ciphertext_or_enc_is_refused() {
    let (enclave, _, sealed) = sealed();
    for i in 0..sealed.ciphertext.len() {
        let mut bad = sealed.clone();
        bad.ciphertext[i] ^= 0x01;
        let err = enclave.open(&bad, &info()).unwrap_err();
        assert!(matches!(err, RecipientError::OpenFailed), "byte {i}: {err}");
    }
    let mut bad = sealed.clone();
    bad.enc[0] ^= 0x01;
    let err = enclave.open(&bad, &info()).unwrap_err();
    assert!(matches!(err, RecipientError::OpenFailed), "{err}");

    let mut short = sealed.clone();
    short.ciphertext.pop();
    let err = enclave.open(&short, &info()).unwrap_err();
    assert!(matches!(err, RecipientError::Malformed { .. }), "{err}");
    let mut short_enc = sealed;
    short_enc.enc.truncate(31);
    let err = enclave.open(&short_enc, &info()).unwrap_err();
    assert!(matches!(err, RecipientError::Malformed { .. }), "{err}");
}

#[test]
fn keys_from_bytes_and_debug_hides_the_secret() {
    let enclave = EnclaveKeyPair::generate().unwrap();
    let again = EnclaveKeyPair::from_secret_bytes(enclave.expose_secret()).unwrap();
    assert_eq!(again.public_key(), enclave.public_key());
    let dbg = format!("{enclave:?}");
    assert!(
        !dbg.contains(&hex::encode(enclave.expose_secret())),
        "{dbg}"
    );
    assert!(EnclaveKeyPair::from_secret_bytes(&[1u8; 31]).is_err());
    assert!(EnclavePublicKey::from_slice(&[1u8; 33]).is_err());
    let b64 = enclave.public_key().to_base64();
    assert_eq!(
        &EnclavePublicKey::from_base64(&b64).unwrap(),
        enclave.public_key()
    );
}

#[test]
fn oversized_info_is_refused() {
    let enclave = EnclaveKeyPair::generate().unwrap();
    let cek = Cek::generate().unwrap();
    let err = seal_cek(&cek, enclave.public_key(), &vec![b'x'; 5000]).unwrap_err();
    assert!(matches!(err, RecipientError::Malformed { .. }), "{err}");
}

#[test]
fn release_info_encoding_is_unambiguous() {
    // Moving a byte between fields changes the encoding (length prefixes).
    let a = ReleaseInfo::new("ab", "c", "ds", "k").to_bytes();
    let b = ReleaseInfo::new("a", "bc", "ds", "k").to_bytes();
    assert_ne!(a, b);
    assert!(a.starts_with(b"sealroom cek release v1"));
}
