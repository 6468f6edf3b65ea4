//! Measured leakage of the intermediate activations the model owner receives.
//!
//! The attacker is the model owner: it knows the model and has data like the user's (here the
//! training split). It trains an inverse model from the activations after the first `k` layers
//! (with the client's obfuscation noise, if any) back to the input image, then reconstructs the
//! test images. We report the reconstruction's mean squared error and SSIM (pixels scaled to
//! [0, 1]), next to the baseline of guessing the mean training image, and the split model's
//! accuracy at the same noise level. The inverse model is ridge regression on the activations and
//! their squares (a deliberately simple attacker: stronger ones, e.g. the published
//! model-inversion networks, do at least as well, so these figures are a lower bound on leakage).

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::Result;
use crate::example::{Digits, Sample};
use crate::model::{argmax, Model};
use crate::plan::Plan;
use crate::sim::{obfuscate, simulate_encrypted};

/// One row of the leakage table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeakageRow {
    /// Client noise, in activation levels (standard deviation).
    pub noise: f64,
    /// Split model accuracy on the test split at this noise.
    pub accuracy: f64,
    /// Reconstruction MSE (pixels in [0, 1]).
    pub mse: f64,
    /// Reconstruction mean SSIM.
    pub ssim: f64,
    /// Fraction of test images whose nearest training image (by the reconstruction) has the
    /// same label: how well the reconstruction identifies the digit.
    pub reconstruction_label_match: f64,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeakageReport {
    /// Layers run encrypted.
    pub k: usize,
    /// Activations the owner receives per image.
    pub activations: usize,
    /// MSE of always guessing the mean training image.
    pub baseline_mse: f64,
    /// SSIM of always guessing the mean training image.
    pub baseline_ssim: f64,
    /// One row per noise level.
    pub rows: Vec<LeakageRow>,
}

fn pixels01(s: &Sample) -> Vec<f64> {
    s.pixels.iter().map(|&v| f64::from(v) / 16.0).collect()
}

/// Solves `(AᵀA + λI) W = AᵀY` by Cholesky; returns W (d × m) row-major.
fn ridge(a: &[Vec<f64>], y: &[Vec<f64>], lambda: f64) -> Vec<Vec<f64>> {
    let d = a.first().map(Vec::len).unwrap_or(0);
    let m = y.first().map(Vec::len).unwrap_or(0);
    let mut g = vec![vec![0.0; d]; d];
    let mut r = vec![vec![0.0; m]; d];
    for (ai, yi) in a.iter().zip(y) {
        for p in 0..d {
            for q in 0..d {
                g[p][q] += ai[p] * ai[q];
            }
            for j in 0..m {
                r[p][j] += ai[p] * yi[j];
            }
        }
    }
    for (p, row) in g.iter_mut().enumerate() {
        row[p] += lambda;
    }
    // Cholesky: g = L Lᵀ.
    let mut l = vec![vec![0.0; d]; d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                l[i][j] = (g[i][i] - s).max(1e-12).sqrt();
            } else {
                l[i][j] = (g[i][j] - s) / l[j][j];
            }
        }
    }
    let mut w = vec![vec![0.0; m]; d];
    for j in 0..m {
        // Forward then backward substitution.
        let mut z = vec![0.0; d];
        for i in 0..d {
            let s: f64 = (0..i).map(|k| l[i][k] * z[k]).sum();
            z[i] = (r[i][j] - s) / l[i][i];
        }
        for i in (0..d).rev() {
            let s: f64 = (i + 1..d).map(|k| l[k][i] * w[k][j]).sum();
            w[i][j] = (z[i] - s) / l[i][i];
        }
    }
    w
}

fn features(acts: &[i64]) -> Vec<f64> {
    let mut f = Vec::with_capacity(2 * acts.len() + 1);
    f.push(1.0);
    f.extend(acts.iter().map(|&a| a as f64));
    f.extend(acts.iter().map(|&a| (a * a) as f64));
    f
}

fn predict(w: &[Vec<f64>], f: &[f64]) -> Vec<f64> {
    let m = w.first().map(Vec::len).unwrap_or(0);
    (0..m)
        .map(|j| {
            f.iter()
                .zip(w)
                .map(|(x, row)| x * row[j])
                .sum::<f64>()
                .clamp(0.0, 1.0)
        })
        .collect()
}

/// Mean squared error.
pub fn mse(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len().max(1) as f64
}

/// Mean SSIM of two 8×8 images in [0, 1] over all 3×3 windows (uniform weights,
/// C1 = 0.01², C2 = 0.03²).
pub fn ssim8(a: &[f64], b: &[f64]) -> f64 {
    const C1: f64 = 0.0001;
    const C2: f64 = 0.0009;
    let mut total = 0.0;
    let mut count = 0.0;
    for y in 0..6 {
        for x in 0..6 {
            let mut pa = [0.0; 9];
            let mut pb = [0.0; 9];
            for dy in 0..3 {
                for dx in 0..3 {
                    pa[dy * 3 + dx] = a[(y + dy) * 8 + x + dx];
                    pb[dy * 3 + dx] = b[(y + dy) * 8 + x + dx];
                }
            }
            let ma = pa.iter().sum::<f64>() / 9.0;
            let mb = pb.iter().sum::<f64>() / 9.0;
            let va = pa.iter().map(|v| (v - ma).powi(2)).sum::<f64>() / 8.0;
            let vb = pb.iter().map(|v| (v - mb).powi(2)).sum::<f64>() / 8.0;
            let cov = pa
                .iter()
                .zip(&pb)
                .map(|(u, v)| (u - ma) * (v - mb))
                .sum::<f64>()
                / 8.0;
            total += ((2.0 * ma * mb + C1) * (2.0 * cov + C2))
                / ((ma * ma + mb * mb + C1) * (va + vb + C2));
            count += 1.0;
        }
    }
    total / count
}

/// Runs the leakage measurement for split `k` at each noise level (activation levels).
pub fn measure(
    model: &Model,
    k: usize,
    data: &Digits,
    noise_levels: &[f64],
    seed: u64,
) -> Result<LeakageReport> {
    let plan = Plan::new(model, k)?;
    let p = crate::params::FAST;
    let fhe_noise = p.bootstrap_noise_std_boxes();
    let mut rng = StdRng::seed_from_u64(seed);
    let n_px = 64;
    let mean: Vec<f64> = (0..n_px)
        .map(|i| {
            data.train
                .iter()
                .map(|s| f64::from(s.pixels[i]) / 16.0)
                .sum::<f64>()
                / data.train.len().max(1) as f64
        })
        .collect();
    let baseline_mse = data
        .test
        .iter()
        .map(|s| mse(&pixels01(s), &mean))
        .sum::<f64>()
        / data.test.len().max(1) as f64;
    let baseline_ssim = data
        .test
        .iter()
        .map(|s| ssim8(&pixels01(s), &mean))
        .sum::<f64>()
        / data.test.len().max(1) as f64;
    let acts_of = |s: &Sample, sigma: f64, rng: &mut StdRng| -> Result<Vec<i64>> {
        let a = simulate_encrypted(model, &plan, p.polynomial_size, fhe_noise, &s.input(), rng)?;
        Ok(obfuscate(&a, sigma, plan.output_bits, rng))
    };
    let mut rows = Vec::new();
    let train_px: Vec<Vec<f64>> = data.train.iter().map(pixels01).collect();
    for &sigma in noise_levels {
        let train_f: Vec<Vec<f64>> = data
            .train
            .iter()
            .map(|s| acts_of(s, sigma, &mut rng).map(|a| features(&a)))
            .collect::<Result<_>>()?;
        let d = train_f.first().map(Vec::len).unwrap_or(1);
        let trace: f64 = train_f
            .iter()
            .map(|f| f.iter().map(|v| v * v).sum::<f64>())
            .sum();
        let w = ridge(&train_f, &train_px, 1e-3 * trace / d as f64);
        let mut m = 0.0;
        let mut ss = 0.0;
        let mut correct = 0usize;
        let mut label_match = 0usize;
        for s in &data.test {
            let acts = acts_of(s, sigma, &mut rng)?;
            let logits = model.forward_range(k, model.ops().len(), &acts)?;
            if argmax(&logits) == usize::from(s.label) {
                correct += 1;
            }
            let rec = predict(&w, &features(&acts));
            let truth = pixels01(s);
            m += mse(&rec, &truth);
            ss += ssim8(&rec, &truth);
            let nearest = train_px
                .iter()
                .enumerate()
                .map(|(i, t)| (mse(&rec, t), i))
                .fold((f64::INFINITY, 0), |a, b| if b.0 < a.0 { b } else { a })
                .1;
            if data.train[nearest].label == s.label {
                label_match += 1;
            }
        }
        let n = data.test.len().max(1) as f64;
        rows.push(LeakageRow {
            noise: sigma,
            accuracy: correct as f64 / n,
            mse: m / n,
            ssim: ss / n,
            reconstruction_label_match: label_match as f64 / n,
        });
    }
    Ok(LeakageReport {
        k,
        activations: model.len_after(k),
        baseline_mse,
        baseline_ssim,
        rows,
    })
}
