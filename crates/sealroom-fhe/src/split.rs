//! The whole split pipeline in one process (what `sealroom fhe demo` checks, and what the HTTP
//! client and server do across the network): encrypt → server evaluates `k` layers →
//! client decrypts → optional noise → owner runs the rest → prediction.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::crypto::{ClientKey, InputCiphertext, OutputCiphertext, ServerKey};
use crate::error::Result;
use crate::eval::evaluate;
use crate::model::{argmax, Model};
use crate::plan::Plan;
use crate::sim::obfuscate;

/// How one batch went.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SplitOutcome {
    /// Images run.
    pub samples: usize,
    /// Split prediction equals the plaintext model's prediction.
    pub agree: usize,
    /// Split prediction equals the label.
    pub correct_split: usize,
    /// Plaintext prediction equals the label.
    pub correct_plain: usize,
    /// Decrypted activations equal to the plaintext model's (before client noise).
    pub activations_exact: usize,
    /// Decrypted activations within one level of the plaintext model's.
    pub activations_within_one: usize,
    /// Activations compared.
    pub activations: usize,
    /// Total server evaluation time.
    pub server_time: Duration,
}

impl SplitOutcome {
    /// Fraction of predictions that agree with the plaintext model.
    pub fn agreement(&self) -> f64 {
        self.agree as f64 / self.samples.max(1) as f64
    }

    /// Fraction of activations that are exact.
    pub fn exactness(&self) -> f64 {
        self.activations_exact as f64 / self.activations.max(1) as f64
    }

    /// Adds one image's result.
    pub fn record(
        &mut self,
        model: &Model,
        k: usize,
        x: &[i64],
        label: Option<usize>,
        acts: &[i64],
        noisy: &[i64],
    ) -> Result<()> {
        let plain_acts = model.forward_range(0, k, x)?;
        let plain = argmax(&model.forward_range(k, model.ops().len(), &plain_acts)?);
        let split = argmax(&model.forward_range(k, model.ops().len(), noisy)?);
        self.samples += 1;
        self.agree += usize::from(plain == split);
        if let Some(l) = label {
            self.correct_split += usize::from(split == l);
            self.correct_plain += usize::from(plain == l);
        }
        self.activations += acts.len();
        for (a, b) in acts.iter().zip(&plain_acts) {
            self.activations_exact += usize::from(a == b);
            self.activations_within_one += usize::from((a - b).abs() <= 1);
        }
        Ok(())
    }
}

/// Runs the split for one input with keys held in this process; returns the decrypted
/// activations (before noise) and the server time. Serializes and parses the ciphertexts on the
/// way, as the network path does.
pub fn run_one(
    model: &Model,
    k: usize,
    client: &ClientKey,
    server: &ServerKey,
    x: &[i64],
    budget: Duration,
) -> Result<(Vec<i64>, Duration)> {
    model.check_input(x)?;
    let plan = Plan::new(model, k)?;
    let ct = client.encrypt(plan.input_delta(), x)?;
    let ct = InputCiphertext::from_bytes(&ct.to_bytes())?;
    let t = Instant::now();
    let (out, _) = evaluate(model, k, server, &ct, budget)?;
    let server_time = t.elapsed();
    let out = OutputCiphertext::from_bytes(&out.to_bytes())?;
    Ok((client.decrypt(plan.output_bits, &out)?, server_time))
}

/// Runs a batch through the split in process and compares with the plaintext model.
#[allow(clippy::too_many_arguments)]
pub fn run_batch<R: Rng + ?Sized>(
    model: &Model,
    k: usize,
    client: &ClientKey,
    server: &ServerKey,
    inputs: &[(Vec<i64>, Option<usize>)],
    noise: f64,
    budget: Duration,
    rng: &mut R,
    mut progress: impl FnMut(usize),
) -> Result<SplitOutcome> {
    let plan = Plan::new(model, k)?;
    let mut outcome = SplitOutcome::default();
    for (i, (x, label)) in inputs.iter().enumerate() {
        let (acts, t) = run_one(model, k, client, server, x, budget)?;
        outcome.server_time += t;
        let noisy = obfuscate(&acts, noise, plan.output_bits, rng);
        outcome.record(model, k, x, *label, &acts, &noisy)?;
        progress(i + 1);
    }
    Ok(outcome)
}
