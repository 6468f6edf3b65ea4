//! Server side: evaluates the first `k` layers of a model on an encrypted input.
//!
//! Linear layers are computed directly on the LWE ciphertexts under the big key with the clear
//! integer weights (no bootstrap, noise grows with the weights' 2-norm, which is negligible next
//! to the modulus switch). Each `relu` output is one key switch (big → small key) and one
//! programmable bootstrap whose lookup table requantizes and re-encodes for the next stage.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tfhe::core_crypto::prelude::*;

use crate::crypto::{InputCiphertext, OutputCiphertext, ServerKey};
use crate::error::{FheError, Result};
use crate::model::{Model, Op};
use crate::plan::{Plan, Stage};

/// Where the time of one evaluation went.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalTimings {
    /// Expanding the seeded input.
    pub expand: Duration,
    /// Linear layers on ciphertexts.
    pub linear: Duration,
    /// Key switches and bootstraps.
    pub bootstrap: Duration,
    /// Number of bootstraps.
    pub bootstraps: usize,
}

/// Evaluates the first `k` layers of `model` on `input`, giving up with
/// [`FheError::TimeBudgetExceeded`] once `budget` has passed.
pub fn evaluate(
    model: &Model,
    k: usize,
    key: &ServerKey,
    input: &InputCiphertext,
    budget: Duration,
) -> Result<(OutputCiphertext, EvalTimings)> {
    let start = Instant::now();
    let plan = Plan::new(model, k)?;
    if input.param() != key.param() {
        return Err(FheError::ParamMismatch(format!(
            "input uses parameter set {}, the uploaded key {}",
            input.param(),
            key.param()
        )));
    }
    if input.len() != model.input_len() {
        return Err(FheError::InvalidInput(format!(
            "the model takes {} values, the ciphertext holds {}",
            model.input_len(),
            input.len()
        )));
    }
    let p = key.param().params();
    let lwe_size = p.big_lwe_dimension() + 1;
    let mut timings = EvalTimings::default();
    let t = Instant::now();
    let mut cur = input.expand();
    timings.expand = t.elapsed();
    let total = plan.bootstrap_count(model);
    let done = AtomicUsize::new(0);

    for stage in &plan.stages {
        let t = Instant::now();
        for op in &model.ops()[stage.first_layer..stage.relu_layer] {
            if let Op::Linear(l) = op {
                cur = linear(&cur, lwe_size, &l.rows, &l.bias, stage.delta);
            }
        }
        let offset = stage.offset();
        for ct in cur.chunks_exact_mut(lwe_size) {
            ct[lwe_size - 1] = ct[lwe_size - 1].wrapping_add(offset);
        }
        timings.linear += t.elapsed();
        let t = Instant::now();
        cur = bootstrap_all(&cur, lwe_size, stage, key, start, budget, &done, total)?;
        timings.bootstrap += t.elapsed();
    }
    timings.bootstraps = total;
    let count = cur.len() / lwe_size;
    Ok((
        OutputCiphertext {
            param: key.param(),
            count,
            data: cur,
        },
        timings,
    ))
}

/// `out[o] = Σ w·in[i] + bias[o]·Δ` on LWE ciphertexts stored back to back.
fn linear(
    input: &[u64],
    lwe_size: usize,
    rows: &[Vec<(u32, i64)>],
    bias: &[i64],
    delta: u64,
) -> Vec<u64> {
    let mut out = vec![0u64; rows.len() * lwe_size];
    out.par_chunks_exact_mut(lwe_size)
        .zip(rows.par_iter().zip(bias.par_iter()))
        .for_each(|(acc, (row, b))| {
            for &(i, w) in row {
                let w = w as u64;
                let src = &input[i as usize * lwe_size..(i as usize + 1) * lwe_size];
                for (a, s) in acc.iter_mut().zip(src) {
                    *a = a.wrapping_add(s.wrapping_mul(w));
                }
            }
            acc[lwe_size - 1] = acc[lwe_size - 1].wrapping_add((*b as u64).wrapping_mul(delta));
        });
    out
}

/// Rounds the mask of a small-key LWE ciphertext to the bootstrap's `2N` grid and corrects the
/// body by the known half of the rounding error. With a binary key, the phase error of the modulus
/// switch is `Σ s_i·r_i`; its mean part `Σ r_i / 2` is known to the server and removed here, which
/// halves the variance (`n/48` instead of `n/24` boxes²). The bootstrap's own modulus switch then
/// only rounds the body.
pub fn centered_modulus_switch(ct: &mut [u64], log2_2n: u32) {
    let Some((body, mask)) = ct.split_last_mut() else {
        return;
    };
    let shift = 64 - log2_2n;
    let half = 1u64 << (shift - 1);
    let mut sum: i128 = 0;
    for a in mask.iter_mut() {
        let rounded = (a.wrapping_add(half) >> shift) << shift;
        sum += i128::from(a.wrapping_sub(rounded) as i64);
        *a = rounded;
    }
    *body = body.wrapping_sub((sum / 2) as i64 as u64);
}

#[allow(clippy::too_many_arguments)]
fn bootstrap_all(
    input: &[u64],
    lwe_size: usize,
    stage: &Stage,
    key: &ServerKey,
    start: Instant,
    budget: Duration,
    done: &AtomicUsize,
    total: usize,
) -> Result<Vec<u64>> {
    let p = key.param().params();
    let modulus = CiphertextModulus::<u64>::new_native();
    let glwe_size = GlweDimension(p.glwe_dimension).to_glwe_size();
    let n_poly = PolynomialSize(p.polynomial_size);
    let mut acc = GlweCiphertext::new(0u64, glwe_size, n_poly, modulus);
    {
        let mut body = acc.get_mut_body();
        body.as_mut().copy_from_slice(&stage.lut(p.polynomial_size));
    }
    let fft = Fft::new(n_poly);
    let fft = fft.as_view();
    let req = programmable_bootstrap_lwe_ciphertext_mem_optimized_requirement::<u64>(
        glwe_size, n_poly, fft,
    );
    let log2_2n = (2 * p.polynomial_size).trailing_zeros();
    let over = AtomicBool::new(false);
    let mut out = vec![0u64; input.len()];
    out.par_chunks_exact_mut(lwe_size)
        .zip(input.par_chunks_exact(lwe_size))
        .for_each_init(
            || {
                let mut buffers = ComputationBuffers::new();
                buffers.resize(req.unaligned_bytes_required());
                let small =
                    LweCiphertext::new(0u64, LweDimension(p.lwe_dimension).to_lwe_size(), modulus);
                (buffers, small)
            },
            |(buffers, small), (dst, src)| {
                if over.load(Ordering::Relaxed) {
                    return;
                }
                if start.elapsed() > budget {
                    over.store(true, Ordering::Relaxed);
                    return;
                }
                let src = LweCiphertext::from_container(src, modulus);
                keyswitch_lwe_ciphertext(&key.ksk, &src, small);
                centered_modulus_switch(small.as_mut(), log2_2n);
                let mut dst = LweCiphertext::from_container(dst, modulus);
                programmable_bootstrap_lwe_ciphertext_mem_optimized(
                    small,
                    &mut dst,
                    &acc,
                    &key.fourier_bsk,
                    fft,
                    buffers.stack(),
                );
                done.fetch_add(1, Ordering::Relaxed);
            },
        );
    if over.load(Ordering::Relaxed) {
        return Err(FheError::TimeBudgetExceeded {
            budget_ms: budget.as_millis(),
            done: done.load(Ordering::Relaxed),
            total,
        });
    }
    let _ = lwe_size;
    Ok(out)
}
