//! The FHE model repository over real HTTP: publish, plans, key upload, encrypted inference
//! through the whole split, refusals with clear errors, the time budget, and persistence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use sealroom_fhe::example::{digits, DIGITS_MODEL_JSON};
use sealroom_fhe::{ClientKey, ParamId};
use sealroom_server::fhe::client::{ClientError, FheClient};
use sealroom_server::fhe::demo::{self, DemoOptions};
use sealroom_server::fhe::{spawn, FheConfig};

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn api_code(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, code, .. } => (status, code),
        other => panic!("expected an API error, got {other}"),
    }
}

#[test]
fn repository_split_and_refusals() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = FheConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..FheConfig::default()
    };
    let server = spawn(config.clone(), local())?;
    let c = FheClient::new(&server.url());

    // Publish, list, duplicate, invalid.
    assert_eq!(c.publish(DIGITS_MODEL_JSON.as_bytes())?, "digits-mlp");
    assert_eq!(
        api_code(c.publish(DIGITS_MODEL_JSON.as_bytes()).unwrap_err()),
        (409, "model_exists".into())
    );
    assert_eq!(
        api_code(c.publish(b"{\"format\":1}").unwrap_err()).1,
        "invalid_model"
    );
    let models = c.list_models()?;
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].allowed_splits, vec![2, 4]);
    assert_eq!(
        api_code(c.model("nope").unwrap_err()),
        (404, "model_not_found".into())
    );

    // Plans.
    let plan = c.plan("digits-mlp", 2)?;
    assert_eq!(
        (plan.input_len, plan.output_len, plan.output_bits),
        (64, 32, 4)
    );
    assert_eq!(
        api_code(c.plan("digits-mlp", 3).unwrap_err()),
        (400, "invalid_split".into())
    );

    // Malformed key.
    let e = api_code(
        c.ensure_key("digits-mlp", b"SRFHE\x01\x01\x01garbage")
            .unwrap_err(),
    );
    assert_eq!(e, (400, "malformed".into()));

    // Real keys, then the split.
    let (ck, sk) = ClientKey::generate(ParamId::Fast);
    let sk = sk.to_bytes();
    let kid = c.ensure_key("digits-mlp", &sk)?;
    assert_eq!(
        c.ensure_key("digits-mlp", &sk)?,
        kid,
        "second upload is a no-op"
    );
    let data = digits()?;
    let mut rng = StdRng::seed_from_u64(2);
    for s in data.test.iter().take(3) {
        let r = c.split_infer("digits-mlp", 2, &ck, &kid, &plan, &s.input(), 0.0, &mut rng)?;
        assert_eq!(r.activations.len(), 32);
        assert!(r.eval_ms.is_some());
        assert!(r.response.label.is_some());
    }

    // Refusals on inference.
    let ct = ck.encrypt(plan.input_delta, &data.test[0].input())?;
    assert_eq!(
        api_code(c.infer("digits-mlp", "0000", 2, &ct).unwrap_err()),
        (404, "key_not_found".into())
    );
    assert_eq!(
        api_code(c.infer("digits-mlp", &kid, 3, &ct).unwrap_err()),
        (400, "invalid_split".into())
    );
    let short = ck.encrypt(plan.input_delta, &[1, 2, 3])?;
    assert_eq!(
        api_code(c.infer("digits-mlp", &kid, 2, &short).unwrap_err()),
        (400, "invalid_input".into())
    );
    assert_eq!(
        api_code(c.finish("digits-mlp", 2, &[99; 32]).unwrap_err()),
        (400, "invalid_input".into())
    );
    assert_eq!(
        api_code(c.finish("digits-mlp", 2, &[1; 5]).unwrap_err()),
        (400, "invalid_input".into())
    );

    // The whole demo path against this server.
    let report = demo::run(
        &DemoOptions {
            samples: Some(4),
            server: Some(server.url()),
            ..DemoOptions::default()
        },
        |_, _| {},
    )?;
    assert!(report.passed(0.75), "{report:?}");
    drop(server);

    // Models survive a restart (keys do not: they live in memory).
    let server = spawn(config, local())?;
    let c = FheClient::new(&server.url());
    assert_eq!(c.list_models()?.len(), 1);
    assert_eq!(
        api_code(c.infer("digits-mlp", &kid, 2, &ct).unwrap_err()).1,
        "key_not_found"
    );

    // A 1 ms budget cannot be met.
    let tight = spawn(
        FheConfig {
            time_budget: Duration::from_millis(1),
            ..FheConfig::default()
        },
        local(),
    )?;
    let c = FheClient::new(&tight.url());
    c.publish(DIGITS_MODEL_JSON.as_bytes())?;
    let kid = c.ensure_key("digits-mlp", &sk)?;
    assert_eq!(
        api_code(c.infer("digits-mlp", &kid, 4, &ct).unwrap_err()),
        (503, "time_budget_exceeded".into())
    );
    Ok(())
}
