//! The leakage measurement runs and behaves sensibly: reconstructions beat the mean-image
//! baseline without noise, and noise lowers both accuracy and reconstruction quality.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealroom_fhe::example::{digits, digits_model};
use sealroom_fhe::leakage::{measure, mse, ssim8};

#[test]
fn ssim_and_mse_basics() {
    let a: Vec<f64> = (0..64).map(|i| (i % 7) as f64 / 7.0).collect();
    assert!((ssim8(&a, &a) - 1.0).abs() < 1e-9);
    assert_eq!(mse(&a, &a), 0.0);
}

#[test]
fn leakage_report() {
    let model = digits_model().unwrap();
    let mut data = digits().unwrap();
    data.train.truncate(600);
    data.test.truncate(120);
    let r = measure(&model, 2, &data, &[0.0, 8.0], 5).unwrap();
    let clean = &r.rows[0];
    let noisy = &r.rows[1];
    eprintln!("{r:?}");
    assert!(clean.mse < r.baseline_mse);
    assert!(clean.ssim > r.baseline_ssim);
    assert!(noisy.mse > clean.mse);
    assert!(noisy.accuracy < clean.accuracy);
}
