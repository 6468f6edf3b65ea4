//! Benchmark of one encrypted dense layer + requantizing ReLU (run by `scripts/bench-fhe`).
//!
//! For each width (784→64, 784→128) and parameter set: a seeded random layer with 4-bit signed
//! weights (−7..=7) and 4-bit inputs, ReLU requantized to 4 bits with a calibrated range and
//! clip; keys generated once; then `--samples` inputs each encrypted, evaluated by the server
//! code (the same `eval::evaluate` the HTTP API runs) and decrypted. Reports server time, the
//! exactness of the decrypted activations against the plaintext integer model, and sizes.
//! Writes each layer (model JSON) and its inputs to `--out` so that the Concrete ML side of the
//! benchmark compiles exactly the same integers.
//!
//! Usage: fhe_bench [--samples N] [--widths 64,128] [--params fast,precise] [--out DIR]

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealroom_fhe::eval::evaluate;
use sealroom_fhe::model::{InputSpec, Layer, ModelDoc, Requant};
use sealroom_fhe::plan::Plan;
use sealroom_fhe::{
    wire, ClientKey, CompressedServerKey, InputCiphertext, Model, OutputCiphertext, ParamId,
};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn list(args: &[String], name: &str, default: &str) -> Vec<String> {
    let v: String = arg(args, name, default.to_string());
    v.split(',').map(str::to_string).collect()
}

fn layer(width: usize, seed: u64) -> anyhow::Result<(Model, Vec<Vec<i64>>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let inputs = 784;
    let weights: Vec<i64> = (0..inputs * width).map(|_| rng.gen_range(-7..=7)).collect();
    let bias: Vec<i64> = (0..width).map(|_| rng.gen_range(-200..=200)).collect();
    let calib: Vec<Vec<i64>> = (0..256)
        .map(|_| (0..inputs).map(|_| rng.gen_range(0..16)).collect())
        .collect();
    let mut acc: Vec<i64> = Vec::new();
    for x in &calib {
        for o in 0..width {
            let w = &weights[o * inputs..(o + 1) * inputs];
            acc.push(bias[o] + w.iter().zip(x).map(|(a, b)| a * b).sum::<i64>());
        }
    }
    let mut pos: Vec<i64> = acc.iter().copied().filter(|v| *v > 0).collect();
    pos.sort_unstable();
    let clip = pos
        .get((pos.len() as f64 * 0.995) as usize)
        .copied()
        .unwrap_or(1)
        .max(1);
    let shift = 24;
    let mult = ((15i64 << shift) as f64 / clip as f64).round() as i64;
    let lo = *acc.iter().min().unwrap_or(&-1);
    let hi = *acc.iter().max().unwrap_or(&1);
    let span = hi - lo;
    let doc = ModelDoc {
        format: "sealroom-fhe-model".into(),
        version: 1,
        name: format!("bench-784x{width}"),
        description: "benchmark layer: random 4-bit weights".into(),
        input: InputSpec {
            shape: [1, 28, 28],
            bits: 4,
        },
        layers: vec![
            Layer::Dense {
                inputs,
                outputs: width,
                weights,
                bias,
            },
            Layer::Relu(Requant {
                mult,
                shift,
                bits: 4,
                range: [lo - span / 10, hi + span / 10],
            }),
        ],
        max_encrypted_layers: 2,
        labels: vec![],
        metadata: serde_json::json!({"clip": clip}),
    };
    let tests: Vec<Vec<i64>> = (0..64)
        .map(|_| (0..inputs).map(|_| rng.gen_range(0..16)).collect())
        .collect();
    Ok((Model::new(doc)?, tests))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let samples: usize = arg(&args, "--samples", 8);
    let out_dir: String = arg(&args, "--out", "target/bench-fhe".to_string());
    let widths: Vec<usize> = list(&args, "--widths", "64,128")
        .iter()
        .filter_map(|w| w.parse().ok())
        .collect();
    let params: Vec<ParamId> = list(&args, "--params", "fast,precise")
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    std::fs::create_dir_all(&out_dir)?;
    println!("threads: {} (rayon)", rayon::current_num_threads());
    for param in params {
        let p = param.params();
        let t = Instant::now();
        let (ck, csk) = ClientKey::generate(param);
        let keygen = t.elapsed();
        let sk_bytes = csk.to_bytes();
        let t = Instant::now();
        let sk = CompressedServerKey::from_bytes(&sk_bytes)?.prepare();
        let prepare = t.elapsed();
        let fourier_bsk_bytes =
            p.lwe_dimension * (p.glwe_dimension + 1).pow(2) * p.pbs_level * p.polynomial_size / 2
                * 16;
        let ksk_bytes = p.big_lwe_dimension() * p.ks_level * (p.lwe_dimension + 1) * 8;
        println!(
            "{{\"param\":\"{}\",\"N\":{},\"n\":{},\"keygen_ms\":{:.0},\"server_key_compressed_bytes\":{},\"server_key_prepared_bytes\":{},\"key_prepare_ms\":{:.0},\"client_key_bytes\":{},\"bootstrap_noise_boxes\":{:.2}}}",
            param,
            p.polynomial_size,
            p.lwe_dimension,
            ms(keygen),
            sk_bytes.len(),
            fourier_bsk_bytes + ksk_bytes,
            ms(prepare),
            ck.to_bytes().len(),
            p.bootstrap_noise_std_boxes()
        );
        assert_eq!(sk_bytes.len(), wire::server_key_bytes(&p));
        for &width in &widths {
            let (model, tests) = layer(width, 1000 + width as u64)?;
            let path = format!("{out_dir}/layer-784x{width}.json");
            std::fs::write(&path, serde_json::to_vec(model.doc())?)?;
            std::fs::write(
                format!("{out_dir}/inputs-784x{width}.json"),
                serde_json::to_vec(&tests)?,
            )?;
            let plan = Plan::new(&model, 2)?;
            let (mut times, mut exact, mut within, mut total) =
                (Vec::new(), 0usize, 0usize, 0usize);
            let (mut in_bytes, mut out_bytes, mut enc_ms, mut dec_ms) = (0, 0, 0.0, 0.0);
            let mut linear_ms = 0.0;
            // One warm-up evaluation (FFT plans, allocations), not counted.
            let warm = ck.encrypt(plan.input_delta(), &tests[0])?;
            let _ = evaluate(&model, 2, &sk, &warm, Duration::from_secs(600))?;
            for x in tests.iter().take(samples) {
                let t = Instant::now();
                let ct = ck.encrypt(plan.input_delta(), x)?;
                let bytes = ct.to_bytes();
                enc_ms += ms(t.elapsed());
                in_bytes = bytes.len();
                let ct = InputCiphertext::from_bytes(&bytes)?;
                let t = Instant::now();
                let (out, timings) = evaluate(&model, 2, &sk, &ct, Duration::from_secs(600))?;
                times.push(ms(t.elapsed()));
                linear_ms += ms(timings.expand + timings.linear);
                let ob = out.to_bytes();
                out_bytes = ob.len();
                let t = Instant::now();
                let acts = ck.decrypt(plan.output_bits, &OutputCiphertext::from_bytes(&ob)?)?;
                dec_ms += ms(t.elapsed());
                let plain = model.forward_range(0, 2, x)?;
                for (a, b) in acts.iter().zip(&plain) {
                    exact += usize::from(a == b);
                    within += usize::from((a - b).abs() <= 1);
                    total += 1;
                }
            }
            let n = times.len().max(1) as f64;
            let mean = times.iter().sum::<f64>() / n;
            let min = times.iter().cloned().fold(f64::INFINITY, f64::min);
            println!(
                "{{\"param\":\"{}\",\"layer\":\"784x{}\",\"samples\":{},\"server_ms_mean\":{:.1},\"server_ms_min\":{:.1},\"linear_ms_mean\":{:.1},\"exact\":{:.4},\"within_one\":{:.4},\"activations\":{},\"input_ct_bytes\":{},\"output_ct_bytes\":{},\"encrypt_ms\":{:.1},\"decrypt_ms\":{:.1}}}",
                param,
                width,
                times.len(),
                mean,
                min,
                linear_ms / n,
                exact as f64 / total.max(1) as f64,
                within as f64 / total.max(1) as f64,
                total,
                in_bytes,
                out_bytes,
                enc_ms / n,
                dec_ms / n
            );
        }
    }
    Ok(())
}
