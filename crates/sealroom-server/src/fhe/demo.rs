//! The split-inference demo over HTTP: a model repository server (local, or one given by URL),
//! the bundled digit classifier published to it, fresh client keys, and a batch of test images
//! through the whole split, compared with the plaintext model.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sealroom_fhe::example::{digits, digits_model, DIGITS_MODEL_JSON};
use sealroom_fhe::split::SplitOutcome;
use sealroom_fhe::{ClientKey, ParamId};

use super::client::{ClientError, FheClient};
use super::{spawn, FheConfig};

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Test images (from the start of the test split); `None` for all 360.
    pub samples: Option<usize>,
    /// Layers run encrypted.
    pub layers: usize,
    /// Client noise (activation levels).
    pub noise: f64,
    /// Parameter set.
    pub param: ParamId,
    /// Use this server instead of starting one.
    pub server: Option<String>,
    /// Time budget of the local server.
    pub time_budget: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            samples: Some(40),
            layers: 2,
            noise: 0.0,
            param: ParamId::Fast,
            server: None,
            time_budget: Duration::from_secs(60),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    /// Server URL used.
    pub server: String,
    /// Layers run encrypted.
    pub layers: usize,
    /// Parameter set.
    pub param: String,
    /// Comparison with the plaintext model.
    pub outcome: SplitOutcome,
    /// Key generation time (ms).
    pub keygen_ms: u128,
    /// Compressed server key size (bytes).
    pub server_key_bytes: usize,
    /// Key upload and preparation (ms).
    pub key_upload_ms: u128,
    /// Mean server evaluation time per image (ms).
    pub mean_eval_ms: f64,
    /// Input ciphertext size (bytes).
    pub input_ciphertext_bytes: usize,
    /// Wall time of the batch (ms).
    pub batch_ms: u128,
}

impl DemoReport {
    /// Whether the split agreed with the plaintext model on at least `threshold` of the batch.
    pub fn passed(&self, threshold: f64) -> bool {
        self.outcome.samples > 0 && self.outcome.agreement() >= threshold
    }
}

/// Runs the demo; `progress(done, total)` is called after each image.
pub fn run(
    opts: &DemoOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<DemoReport, ClientError> {
    let model = digits_model()?;
    let data = digits()?;
    let mut _local = None;
    let url = match &opts.server {
        Some(u) => u.clone(),
        None => {
            let config = FheConfig {
                time_budget: opts.time_budget,
                ..FheConfig::default()
            };
            let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
            let server = spawn(config, addr).map_err(|e| ClientError::Transport {
                url: addr.to_string(),
                message: e.to_string(),
            })?;
            let u = server.url();
            _local = Some(server);
            u
        }
    };
    let client = FheClient::new(&url);
    let id = model.doc().name.clone();
    match client.publish(DIGITS_MODEL_JSON.as_bytes()) {
        Ok(_) => {}
        Err(ClientError::Api { code, .. }) if code == "model_exists" => {}
        Err(e) => return Err(e),
    }
    let t = Instant::now();
    let (ck, sk) = ClientKey::generate(opts.param);
    let sk_bytes = sk.to_bytes();
    drop(sk);
    let keygen_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let kid = client.ensure_key(&id, &sk_bytes)?;
    let key_upload_ms = t.elapsed().as_millis();
    let plan = client.plan(&id, opts.layers)?;
    let n = opts.samples.unwrap_or(data.test.len()).min(data.test.len());
    let mut rng = StdRng::seed_from_u64(0x5ea1);
    let mut outcome = SplitOutcome::default();
    let mut eval_ms = 0u64;
    let mut input_ct = 0;
    let t = Instant::now();
    for (i, s) in data.test.iter().take(n).enumerate() {
        let x = s.input();
        if i == 0 {
            input_ct = ck.encrypt(plan.input_delta, &x)?.to_bytes().len();
        }
        let r = client.split_infer(&id, opts.layers, &ck, &kid, &plan, &x, opts.noise, &mut rng)?;
        eval_ms += r.eval_ms.unwrap_or(0);
        outcome.record(
            &model,
            opts.layers,
            &x,
            Some(usize::from(s.label)),
            &r.activations,
            &r.sent,
        )?;
        // The owner's endpoint must compute what the local copy of the model computes.
        let local = sealroom_fhe::model::argmax(&model.forward_range(
            opts.layers,
            model.ops().len(),
            &r.sent,
        )?);
        if local != r.response.prediction {
            return Err(ClientError::Protocol {
                url: url.clone(),
                message: format!(
                    "owner predicted {}, the local model {local}",
                    r.response.prediction
                ),
            });
        }
        progress(i + 1, n);
    }
    Ok(DemoReport {
        server: url,
        layers: opts.layers,
        param: opts.param.name().to_string(),
        keygen_ms,
        server_key_bytes: sk_bytes.len(),
        key_upload_ms,
        mean_eval_ms: eval_ms as f64 / n.max(1) as f64,
        input_ciphertext_bytes: input_ct,
        batch_ms: t.elapsed().as_millis(),
        outcome,
    })
}
