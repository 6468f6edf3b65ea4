//! Plaintext simulation of the encrypted split: the same encodings, lookup tables and box
//! rounding as the bootstraps, with Gaussian phase noise of the parameter set's estimated size,
//! plus the client's optional obfuscation noise. Quick accuracy estimates without keys.

use rand::Rng;

use crate::error::Result;
use crate::model::Model;
use crate::plan::{decode_output, Plan, MARGIN};

/// A standard normal sample (Box–Muller).
pub fn std_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Simulates what the client decrypts after the first `plan.k` layers. `noise_boxes` is the
/// standard deviation of the bootstrap's phase error in boxes (`0.0` for the noise-free
/// encodings alone; [`crate::params::ParamSet::bootstrap_noise_std_boxes`] for the real thing).
pub fn simulate_encrypted<R: Rng + ?Sized>(
    model: &Model,
    plan: &Plan,
    polynomial_size: usize,
    noise_boxes: f64,
    x: &[i64],
    rng: &mut R,
) -> Result<Vec<i64>> {
    model.check_input(x)?;
    let log2_2n = (2 * polynomial_size).trailing_zeros();
    let box_shift = 64 - log2_2n;
    let box_width = (1u64 << box_shift) as f64;
    let mut cur = x.to_vec();
    for stage in &plan.stages {
        let y = model.forward_range(stage.first_layer, stage.relu_layer, &cur)?;
        let lo = stage.relu.range[0];
        cur = y
            .iter()
            .map(|&v| {
                let mut phase = (v.wrapping_sub(lo) as u64)
                    .wrapping_mul(stage.delta)
                    .wrapping_add(MARGIN);
                if noise_boxes > 0.0 {
                    let e = (std_normal(rng) * noise_boxes * box_width) as i64;
                    phase = phase.wrapping_add(e as u64);
                }
                let i = (phase.wrapping_add(1u64 << (box_shift - 1)) >> box_shift) as usize;
                if i < polynomial_size {
                    stage.lut_q(i, polynomial_size)
                } else {
                    -stage.lut_q(i - polynomial_size, polynomial_size)
                }
            })
            .collect();
    }
    // The client decodes a (possibly negacyclically negated) value into [0, 2^bits).
    let bits = plan.output_bits;
    Ok(cur
        .into_iter()
        .map(|q| {
            decode_output(
                (q as u64).wrapping_mul(crate::plan::output_delta(bits)),
                bits,
            )
        })
        .collect())
}

/// The client's optional obfuscation: adds Gaussian noise of `sigma` activation levels, rounds
/// and clips to `[0, 2^bits)` so that the model owner still receives valid activations.
pub fn obfuscate<R: Rng + ?Sized>(acts: &[i64], sigma: f64, bits: u32, rng: &mut R) -> Vec<i64> {
    let qmax = (1i64 << bits) - 1;
    if sigma <= 0.0 {
        return acts.to_vec();
    }
    acts.iter()
        .map(|&a| ((a as f64 + sigma * std_normal(rng)).round() as i64).clamp(0, qmax))
        .collect()
}
