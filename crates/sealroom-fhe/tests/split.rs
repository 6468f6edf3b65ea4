//! The encrypted split end to end with real tfhe-rs keys (FAST parameters): bootstraps
//! compute the lookup tables exactly at box centres, the demo batch agrees with the plaintext
//! model, bad requests are refused, and the time budget is enforced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use sealroom_fhe::example::{digits, digits_model};
use sealroom_fhe::model::Model;
use sealroom_fhe::plan::Plan;
use sealroom_fhe::split::{run_batch, run_one};
use sealroom_fhe::{
    wire, ClientKey, CompressedServerKey, FheError, InputCiphertext, ParamId, ServerKey,
};

struct Keys {
    client: ClientKey,
    server: ServerKey,
    compressed_len: usize,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (client, compressed) = ClientKey::generate(ParamId::Fast);
        let bytes = compressed.to_bytes();
        // Through the bounded parser, as an upload would go.
        let parsed = CompressedServerKey::from_bytes(&bytes).unwrap();
        let client = ClientKey::from_bytes(&client.to_bytes()).unwrap();
        Keys {
            client,
            server: parsed.prepare(),
            compressed_len: bytes.len(),
        }
    })
}

#[test]
fn server_key_size_is_exact() {
    let k = keys();
    assert_eq!(
        k.compressed_len,
        wire::server_key_bytes(&ParamId::Fast.params())
    );
}

/// A one-layer model whose relu is the identity on [0, 15]: every input value must come back.
#[test]
fn bootstrap_identity_is_exact() {
    let json = r#"{"format":"sealroom-fhe-model","version":1,"name":"id","input":{"shape":[1,1,16],"bits":4},
        "layers":[{"type":"relu","mult":1,"shift":0,"bits":4,"range":[-4,20]}],"max_encrypted_layers":1}"#;
    let model = Model::from_json(json.as_bytes()).unwrap();
    let k = keys();
    let x: Vec<i64> = (0..16).collect();
    let (acts, _) = run_one(&model, 1, &k.client, &k.server, &x, Duration::from_secs(60)).unwrap();
    assert_eq!(acts, x);
}

#[test]
fn demo_batch_agrees_with_plaintext() {
    let model = digits_model().unwrap();
    let data = digits().unwrap();
    let k = keys();
    let inputs: Vec<(Vec<i64>, Option<usize>)> = data
        .test
        .iter()
        .take(24)
        .map(|s| (s.input(), Some(usize::from(s.label))))
        .collect();
    let mut rng = StdRng::seed_from_u64(1);
    let out = run_batch(
        &model,
        2,
        &k.client,
        &k.server,
        &inputs,
        0.0,
        Duration::from_secs(60),
        &mut rng,
        |_| {},
    )
    .unwrap();
    eprintln!("{out:?} exactness {:.4}", out.exactness());
    assert!(out.agreement() >= 0.97, "agreement {}", out.agreement());
    assert!(out.activations_within_one as f64 >= 0.99 * out.activations as f64);
}

#[test]
fn refusals_and_budget() {
    let model = digits_model().unwrap();
    let k = keys();
    let x = vec![1i64; 64];
    // Split not allowed.
    let e = run_one(&model, 3, &k.client, &k.server, &x, Duration::from_secs(60)).unwrap_err();
    assert!(matches!(e, FheError::InvalidSplit(_)), "{e}");
    // Wrong input size in the ciphertext.
    let plan = Plan::new(&model, 2).unwrap();
    let ct = k.client.encrypt(plan.input_delta(), &x[..10]).unwrap();
    let ct = InputCiphertext::from_bytes(&ct.to_bytes()).unwrap();
    let e = sealroom_fhe::eval::evaluate(&model, 2, &k.server, &ct, Duration::from_secs(60))
        .unwrap_err();
    assert!(e.to_string().contains("takes 64 values"), "{e}");
    // A budget too small to finish.
    let ct = k.client.encrypt(plan.input_delta(), &x).unwrap();
    let e = sealroom_fhe::eval::evaluate(&model, 4, &k.server, &ct, Duration::from_millis(1))
        .unwrap_err();
    assert!(matches!(e, FheError::TimeBudgetExceeded { .. }), "{e}");
}
