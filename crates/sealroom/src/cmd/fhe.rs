//! `sealroom fhe ...`: FHE split inference (keys, model repository server and client, the demo,
//! the plaintext simulation and the leakage measurement). See `docs/fhe.md`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sealroom_fhe::example::{digits, digits_model};
use sealroom_fhe::model::argmax;
use sealroom_fhe::plan::Plan;
use sealroom_fhe::{ClientKey, Model, ParamId};
use sealroom_server::fhe::client::FheClient;
use sealroom_server::fhe::demo::{self, DemoOptions};
use sealroom_server::fhe::FheConfig;

/// Agreement the demo requires between the split pipeline and the plaintext model.
const DEMO_THRESHOLD: f64 = 0.97;

#[derive(Debug, Subcommand)]
pub enum FheCommand {
    /// Make a client key (secret, stays here) and a compressed server key (to upload).
    Keygen(KeygenArgs),
    /// Run the FHE model repository server (publish, keys, encrypted inference, owner endpoint).
    Serve(ServeArgs),
    /// Publish a model document (docs/fhe.md) to a model repository.
    Publish(PublishArgs),
    /// List the models of a repository.
    Models(ModelsArgs),
    /// Split inference on one input: encrypt, the server runs K layers, decrypt, the owner finishes.
    Infer(InferArgs),
    /// Plaintext simulation of the split (same quantization, encodings and noise), no keys.
    Simulate(SimulateArgs),
    /// Run the whole split over HTTP on a batch of the bundled digits; exit 0 only if at least 97%
    /// of predictions agree with the plaintext model.
    Demo(DemoArgs),
    /// Measure what the intermediate activations reveal: inverse model MSE/SSIM and accuracy per
    /// noise level.
    Leakage(LeakageArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory for client.key and server.key.
    #[arg(long)]
    out: PathBuf,
    /// Parameter set: fast (N=2048) or precise (N=4096).
    #[arg(long, default_value = "fast")]
    param: ParamId,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SEALROOM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Where published models are stored (memory only if absent).
    #[arg(long, env = "SEALROOM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Time budget per inference request, in seconds.
    #[arg(long, default_value_t = 60)]
    time_budget: u64,
    /// Largest accepted server key, in MiB.
    #[arg(long, default_value_t = 128)]
    max_key_mib: usize,
    /// Prepared keys kept in memory.
    #[arg(long, default_value_t = 4)]
    max_keys: usize,
}

#[derive(Debug, Args)]
pub struct ServerArg {
    /// Model repository URL.
    #[arg(long, env = "SEALROOM_SERVER", default_value = "http://127.0.0.1:8090")]
    server: String,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    server: ServerArg,
    /// The model document (JSON).
    model: PathBuf,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct InferArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Model id.
    #[arg(long)]
    model: String,
    /// Leading layers evaluated on ciphertext.
    #[arg(long)]
    encrypted_layers: usize,
    /// Directory with client.key and server.key (from `sealroom fhe keygen`).
    #[arg(long)]
    keys: PathBuf,
    /// Gaussian noise added to the activations before they go to the owner (activation levels).
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Input: a JSON array of integers in [0, 2^bits) ('-' for standard input).
    input: PathBuf,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Model document (default: the bundled digit classifier).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Leading layers simulated as encrypted.
    #[arg(long)]
    encrypted_layers: usize,
    /// Client noise (activation levels).
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Parameter set whose bootstrap noise is simulated.
    #[arg(long, default_value = "fast")]
    param: ParamId,
    /// Simulate without bootstrap noise (encodings only).
    #[arg(long)]
    no_fhe_noise: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// One input (JSON array); without it, the bundled digits test split is used.
    input: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of test images (default 40).
    #[arg(long, conflicts_with = "full")]
    samples: Option<usize>,
    /// All 360 test images.
    #[arg(long)]
    full: bool,
    /// Leading layers evaluated on ciphertext (2 or 4 for the bundled model).
    #[arg(long, default_value_t = 2)]
    encrypted_layers: usize,
    /// Client noise (activation levels).
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Parameter set.
    #[arg(long, default_value = "fast")]
    param: ParamId,
    /// Use this model repository instead of starting one in-process.
    #[arg(long)]
    server: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct LeakageArgs {
    /// Leading layers run encrypted (the owner sees their output).
    #[arg(long, default_value_t = 2)]
    encrypted_layers: usize,
    /// Client noise levels to measure (activation levels), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,1,2,4")]
    noise: Vec<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(command: FheCommand) -> anyhow::Result<ExitCode> {
    match command {
        FheCommand::Keygen(a) => keygen(a),
        FheCommand::Serve(a) => serve(a),
        FheCommand::Publish(a) => {
            let bytes = std::fs::read(&a.model)
                .with_context(|| format!("reading {}", a.model.display()))?;
            let id = FheClient::new(&a.server.server).publish(&bytes)?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        FheCommand::Models(a) => {
            let models = FheClient::new(&a.server.server).list_models()?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&models)?);
            } else {
                for m in models {
                    let kinds: Vec<&str> = m.layers.iter().map(|l| l.kind.as_str()).collect();
                    println!(
                        "{}\tinput {:?} x {} bits\tlayers {}\tencrypted splits {:?}",
                        m.id,
                        m.input.shape,
                        m.input.bits,
                        kinds.join(","),
                        m.allowed_splits
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FheCommand::Infer(a) => infer(a),
        FheCommand::Simulate(a) => simulate(a),
        FheCommand::Demo(a) => demo_cmd(a),
        FheCommand::Leakage(a) => leakage(a),
    }
}

fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn keygen(a: KeygenArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let ck_path = a.out.join("client.key");
    let sk_path = a.out.join("server.key");
    if ck_path.exists() || sk_path.exists() {
        bail!(
            "{} already holds keys; choose another directory",
            a.out.display()
        );
    }
    let (ck, sk) = ClientKey::generate(a.param);
    let sk_bytes = sk.to_bytes();
    // Write to temporary names, then rename, so a failure leaves no half-made key pair.
    let ck_tmp = a.out.join(".client.key.tmp");
    let sk_tmp = a.out.join(".server.key.tmp");
    let _ = std::fs::remove_file(&ck_tmp);
    let _ = std::fs::remove_file(&sk_tmp);
    write_secret(&ck_tmp, &ck.to_bytes())?;
    std::fs::write(&sk_tmp, &sk_bytes)?;
    std::fs::rename(&sk_tmp, &sk_path)?;
    std::fs::rename(&ck_tmp, &ck_path)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"client_key": ck_path, "server_key": sk_path, "server_key_bytes": sk_bytes.len(), "param": a.param.name()})
        );
    } else {
        println!("client key (secret): {}", ck_path.display());
        println!(
            "server key ({} bytes, upload once per model): {}",
            sk_bytes.len(),
            sk_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = FheConfig {
        time_budget: Duration::from_secs(a.time_budget.max(1)),
        max_key_bytes: a.max_key_mib << 20,
        max_keys: a.max_keys,
        data_dir: a.data_dir,
        ..FheConfig::default()
    };
    sealroom_server::fhe::serve_blocking(config, a.listen, |addr| {
        eprintln!("FHE model repository listening on http://{addr}");
    })?;
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path) -> anyhow::Result<Vec<i64>> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON array of integers", path.display()))
}

fn infer(a: InferArgs) -> anyhow::Result<ExitCode> {
    let x = read_input(&a.input)?;
    let ck_path = a.keys.join("client.key");
    let ck = ClientKey::from_bytes(
        &std::fs::read(&ck_path).with_context(|| format!("reading {}", ck_path.display()))?,
    )?;
    let sk_path = a.keys.join("server.key");
    let sk = std::fs::read(&sk_path).with_context(|| format!("reading {}", sk_path.display()))?;
    let client = FheClient::new(&a.server.server);
    let plan = client.plan(&a.model, a.encrypted_layers)?;
    let kid = client.ensure_key(&a.model, &sk)?;
    let mut rng = StdRng::from_entropy();
    let r = client.split_infer(
        &a.model,
        a.encrypted_layers,
        &ck,
        &kid,
        &plan,
        &x,
        a.noise,
        &mut rng,
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "prediction": r.response.prediction,
                "label": r.response.label,
                "outputs": r.response.outputs,
                "activations_sent": r.sent,
                "server_eval_ms": r.eval_ms,
            })
        );
    } else {
        println!(
            "prediction: {} (label {})",
            r.response.prediction,
            r.response.label.as_deref().unwrap_or("-")
        );
        if let Some(ms) = r.eval_ms {
            eprintln!(
                "server evaluated {} layers on ciphertext in {ms} ms",
                a.encrypted_layers
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn simulate(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    let model = match &a.model {
        Some(p) => Model::from_json(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => digits_model()?,
    };
    let plan = Plan::new(&model, a.encrypted_layers)?;
    let p = a.param.params();
    let fhe_noise = if a.no_fhe_noise {
        0.0
    } else {
        p.bootstrap_noise_std_boxes()
    };
    let mut rng = StdRng::seed_from_u64(1);
    let run1 = |x: &[i64], rng: &mut StdRng| -> anyhow::Result<(Vec<i64>, usize, usize)> {
        let acts = sealroom_fhe::sim::simulate_encrypted(
            &model,
            &plan,
            p.polynomial_size,
            fhe_noise,
            x,
            rng,
        )?;
        let noisy = sealroom_fhe::sim::obfuscate(&acts, a.noise, plan.output_bits, rng);
        let split = argmax(&model.forward_range(a.encrypted_layers, model.ops().len(), &noisy)?);
        let plain = argmax(&model.forward(x)?);
        Ok((noisy, split, plain))
    };
    if let Some(input) = &a.input {
        let x = read_input(input)?;
        let (acts, split, plain) = run1(&x, &mut rng)?;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"activations": acts, "prediction": split, "plaintext_prediction": plain})
            );
        } else {
            println!("prediction {split} (plaintext model: {plain})");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if model.input_len() != 64 {
        bail!(
            "without an INPUT the bundled digits are used, and this model does not take 8x8 images"
        );
    }
    let data = digits()?;
    let (mut agree, mut correct, mut plain_correct) = (0, 0, 0);
    for s in &data.test {
        let (_, split, plain) = run1(&s.input(), &mut rng)?;
        agree += usize::from(split == plain);
        correct += usize::from(split == usize::from(s.label));
        plain_correct += usize::from(plain == usize::from(s.label));
    }
    let n = data.test.len() as f64;
    let out = serde_json::json!({
        "samples": data.test.len(),
        "encrypted_layers": a.encrypted_layers,
        "param": a.param.name(),
        "bootstrap_noise_boxes": fhe_noise,
        "client_noise": a.noise,
        "split_accuracy": correct as f64 / n,
        "plaintext_accuracy": plain_correct as f64 / n,
        "agreement": agree as f64 / n,
    });
    if a.json {
        println!("{out}");
    } else {
        println!(
            "simulated split ({} layers encrypted, {} params, bootstrap noise {:.2} boxes, client noise {}): accuracy {:.4}, plaintext {:.4}, agreement {:.4} over {} test images",
            a.encrypted_layers,
            a.param,
            fhe_noise,
            a.noise,
            correct as f64 / n,
            plain_correct as f64 / n,
            agree as f64 / n,
            data.test.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn demo_cmd(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let opts = DemoOptions {
        samples: if a.full {
            None
        } else {
            Some(a.samples.unwrap_or(40))
        },
        layers: a.encrypted_layers,
        noise: a.noise,
        param: a.param,
        server: a.server,
        ..DemoOptions::default()
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("split inference");
    let report = demo::run(&opts, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let o = &report.outcome;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "server {} · {} layers encrypted · {} parameters",
            report.server, report.layers, report.param
        );
        println!(
            "keys: generated in {} ms, server key {:.1} MiB uploaded and prepared in {} ms; input ciphertext {} bytes",
            report.keygen_ms,
            report.server_key_bytes as f64 / (1 << 20) as f64,
            report.key_upload_ms,
            report.input_ciphertext_bytes
        );
        println!(
            "server evaluation: {:.0} ms per image (mean)",
            report.mean_eval_ms
        );
        println!(
            "activations exact: {:.2}% (within one level: {:.2}%)",
            100.0 * o.exactness(),
            100.0 * o.activations_within_one as f64 / o.activations.max(1) as f64
        );
        println!(
            "predictions agree with the plaintext model: {}/{} ({:.1}%); accuracy split {:.1}%, plaintext {:.1}%",
            o.agree,
            o.samples,
            100.0 * o.agreement(),
            100.0 * o.correct_split as f64 / o.samples.max(1) as f64,
            100.0 * o.correct_plain as f64 / o.samples.max(1) as f64
        );
    }
    if report.passed(DEMO_THRESHOLD) {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(anyhow!(
            "split predictions agree with the plaintext model on {:.1}% of the batch, below the required {:.0}%",
            100.0 * o.agreement(),
            100.0 * DEMO_THRESHOLD
        ))
    }
}

fn leakage(a: LeakageArgs) -> anyhow::Result<ExitCode> {
    let model = digits_model()?;
    let data = digits()?;
    let report = sealroom_fhe::leakage::measure(&model, a.encrypted_layers, &data, &a.noise, 42)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "owner receives {} activations per image after {} encrypted layers; inverse model: ridge regression on activations and their squares, trained on the {} training images",
        report.activations,
        report.k,
        data.train.len()
    );
    println!(
        "baseline (mean training image): MSE {:.4}, SSIM {:.3}",
        report.baseline_mse, report.baseline_ssim
    );
    println!("| noise (levels) | split accuracy | reconstruction MSE | SSIM | nearest-image label match |");
    println!("|---|---|---|---|---|");
    for r in &report.rows {
        println!(
            "| {} | {:.3} | {:.4} | {:.3} | {:.3} |",
            r.noise, r.accuracy, r.mse, r.ssim, r.reconstruction_label_match
        );
    }
    Ok(ExitCode::SUCCESS)
}
