//! Untrusted bytes: every malformed key or ciphertext gives a clear error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sealroom_fhe::crypto::parse_any;
use sealroom_fhe::{CompressedServerKey, FheError, InputCiphertext, OutputCiphertext};

fn input_bytes(count: u32, bodies: usize) -> Vec<u8> {
    let mut v = b"SRFHE\x01\x02\x01".to_vec();
    v.extend_from_slice(&7u128.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    v.extend(std::iter::repeat_n(0u8, bodies * 8));
    v
}

fn reason(e: FheError) -> String {
    e.to_string()
}

#[test]
fn input_ciphertext_checks() {
    let ok = InputCiphertext::from_bytes(&input_bytes(3, 3)).unwrap();
    assert_eq!(ok.len(), 3);
    assert_eq!(
        InputCiphertext::from_bytes(&ok.to_bytes()).unwrap().len(),
        3
    );
    let e = reason(InputCiphertext::from_bytes(&input_bytes(3, 2)).unwrap_err());
    assert!(e.contains("malformed input ciphertext"), "{e}");
    let e = reason(InputCiphertext::from_bytes(&input_bytes(u32::MAX, 1)).unwrap_err());
    assert!(e.contains("count"), "{e}");
    let e = reason(InputCiphertext::from_bytes(&input_bytes(0, 0)).unwrap_err());
    assert!(e.contains("count 0"), "{e}");
    let mut bad_magic = input_bytes(1, 1);
    bad_magic[0] = b'X';
    assert!(reason(InputCiphertext::from_bytes(&bad_magic).unwrap_err()).contains("bad magic"));
    let mut bad_version = input_bytes(1, 1);
    bad_version[5] = 9;
    assert!(reason(InputCiphertext::from_bytes(&bad_version).unwrap_err()).contains("version 9"));
    let mut bad_param = input_bytes(1, 1);
    bad_param[7] = 77;
    assert!(
        reason(InputCiphertext::from_bytes(&bad_param).unwrap_err()).contains("parameter set 77")
    );
    // An input is not a server key.
    assert!(
        reason(CompressedServerKey::from_bytes(&input_bytes(1, 1)).unwrap_err())
            .contains("not a server key")
    );
}

#[test]
fn server_key_and_output_checks() {
    let mut key = b"SRFHE\x01\x01\x01".to_vec();
    key.extend(std::iter::repeat_n(0u8, 1000));
    let e = reason(CompressedServerKey::from_bytes(&key).unwrap_err());
    assert!(e.contains("its header implies"), "{e}");
    let mut out = b"SRFHE\x01\x03\x01".to_vec();
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend(std::iter::repeat_n(0u8, 16));
    let e = reason(OutputCiphertext::from_bytes(&out).unwrap_err());
    assert!(e.contains("its header implies"), "{e}");
    assert!(parse_any(b"SRF").is_err());
    assert!(parse_any(b"SRFHE\x01\x09\x01").is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..256), kind in 1u8..5, param in 0u8..4) {
        if bytes.len() >= 8 {
            bytes[..5].copy_from_slice(b"SRFHE");
            bytes[5] = 1;
            bytes[6] = kind;
            bytes[7] = param;
        }
        let _ = parse_any(&bytes);
        let _ = sealroom_fhe::Model::from_json(&bytes);
    }
}
