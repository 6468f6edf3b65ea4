//! The plaintext simulation: without noise it reproduces the plaintext activations (up to the
//! bootstrap's box discretization); with the parameter set's noise it stays close.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use sealroom_fhe::example::{digits, digits_model};
use sealroom_fhe::model::argmax;
use sealroom_fhe::params::FAST;
use sealroom_fhe::plan::Plan;
use sealroom_fhe::sim::{obfuscate, simulate_encrypted};

#[test]
fn simulation_tracks_plaintext() {
    let model = digits_model().unwrap();
    let data = digits().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for k in [2, 4] {
        let plan = Plan::new(&model, k).unwrap();
        let (mut exact0, mut exact, mut agree, mut total) = (0, 0, 0, 0);
        for s in &data.test {
            let x = s.input();
            let plain = model.forward_range(0, k, &x).unwrap();
            let ideal =
                simulate_encrypted(&model, &plan, FAST.polynomial_size, 0.0, &x, &mut rng).unwrap();
            let noisy = simulate_encrypted(
                &model,
                &plan,
                FAST.polynomial_size,
                FAST.bootstrap_noise_std_boxes(),
                &x,
                &mut rng,
            )
            .unwrap();
            exact0 += plain.iter().zip(&ideal).filter(|(a, b)| a == b).count();
            exact += plain.iter().zip(&noisy).filter(|(a, b)| a == b).count();
            total += plain.len();
            let p1 = argmax(&model.forward_range(k, model.ops().len(), &plain).unwrap());
            let p2 = argmax(&model.forward_range(k, model.ops().len(), &noisy).unwrap());
            agree += usize::from(p1 == p2);
        }
        let n = data.test.len() as f64;
        eprintln!(
            "k={k}: noise-free exact {:.4}, noisy exact {:.4}, agreement {:.4}",
            exact0 as f64 / total as f64,
            exact as f64 / total as f64,
            agree as f64 / n
        );
        assert!(exact0 as f64 >= 0.98 * total as f64);
        assert!(agree as f64 >= 0.97 * n);
    }
    assert!(FAST.bootstrap_noise_std_boxes() > 3.0 && FAST.bootstrap_noise_std_boxes() < 8.0);
}

#[test]
fn obfuscation_stays_in_range() {
    let mut rng = StdRng::seed_from_u64(3);
    let v = obfuscate(&[0, 5, 15], 4.0, 4, &mut rng);
    assert!(v.iter().all(|x| (0..=15).contains(x)));
    assert_eq!(obfuscate(&[0, 5, 15], 0.0, 4, &mut rng), vec![0, 5, 15]);
}
