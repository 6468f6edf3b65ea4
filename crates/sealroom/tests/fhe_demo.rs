//! `sealroom fhe demo` runs the whole split (encrypt, first layers on ciphertext, decrypt, the
//! model owner's remaining layers) on a small batch and exits 0 only at >= 97% agreement with the
//! plaintext model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn fhe_demo_agrees_with_the_plaintext_model() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .args(["fhe", "demo"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
