//! `sealroom local-run`: the compatibility test an algorithm owner runs before uploading — the
//! package runs on a local plaintext sample through the same sandbox and Enclave API as a real run,
//! with no keys.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use sealroom_agent::enclave::{self, RunRequest};
use sealroom_agent::enclave_api::data::PlainDataset;
use sealroom_agent::enclave_api::{EnclaveApi, RunIds};
use sealroom_agent::sandbox::{self, Limits, RunnerKind, Stream};
use sealroom_criteria::Criteria;
use sealroom_types::RuntimeParamName;
use serde_json::json;
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Runner {
    /// bubblewrap: no network, read-only system, own namespaces (the default).
    Bwrap,
    /// A container through the Docker Engine API (Docker or Podman): no network, read-only
    /// image; a package with a Dockerfile is built into its image first (Runtime Build).
    Container,
    /// No isolation at all; needs --insecure-no-sandbox. Development only.
    Process,
}

#[derive(Debug, Args)]
pub struct LocalRunArgs {
    /// The algorithm package: a Dockerfile with ENTRYPOINT/CMD, or a run.sh, and its code.
    package: PathBuf,
    /// A plaintext sample of the dataset, served by the Enclave API's data endpoints.
    #[arg(long)]
    data: PathBuf,
    /// The validation criteria (JSON) the final report must satisfy.
    #[arg(long)]
    criteria: PathBuf,
    /// A runtime parameter NAME=VALUE, passed as an environment variable (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Memory limit, e.g. 512MiB or 2GiB.
    #[arg(long, default_value = "2GiB")]
    memory: String,
    /// CPU limit in vCPUs.
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// Time limit, e.g. 90s, 30m, 2h.
    #[arg(long, default_value = "1h")]
    time_limit: String,
    /// The sandbox runner.
    #[arg(long, value_enum, default_value = "bwrap")]
    runner: Runner,
    /// The container engine's unix socket (--runner container; default: $DOCKER_HOST, then
    /// Podman's and Docker's usual sockets).
    #[arg(long, value_name = "PATH")]
    container_socket: Option<PathBuf>,
    /// The image a package without a Dockerfile runs in (--runner container).
    #[arg(long, value_name = "IMAGE", default_value = "python:3.11-slim")]
    image: String,
    /// Allow the process runner, which has no isolation at all.
    #[arg(long)]
    insecure_no_sandbox: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses `512MiB`, `2GiB`, `100MB`, `1048576`.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a size like 512MiB or 2GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        other => bail!("unknown size unit {other:?} in {s:?} (use MiB or GiB)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("{s:?} is too large"))
}

/// Parses `90s`, `30m`, `2h`, `45` (seconds).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        other => bail!("unknown duration unit {other:?} in {s:?} (use s, m or h)"),
    };
    Ok(Duration::from_secs(secs))
}

pub fn run(args: LocalRunArgs) -> anyhow::Result<ExitCode> {
    let mut params = Vec::new();
    for p in &args.params {
        let (name, value) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?} must be NAME=VALUE"))?;
        let name =
            RuntimeParamName::parse(name).map_err(|e| anyhow::anyhow!("--param {p:?}: {e}"))?;
        params.push((name.to_string(), value.to_owned()));
    }
    let criteria_bytes = std::fs::read(&args.criteria)
        .with_context(|| format!("cannot read the criteria {}", args.criteria.display()))?;
    let criteria = Criteria::from_json(&criteria_bytes)
        .with_context(|| format!("the criteria {} are not valid", args.criteria.display()))?;
    let data = PlainDataset::open(&args.data)
        .with_context(|| format!("cannot read the data {}", args.data.display()))?;
    let limits = Limits {
        memory_bytes: parse_size(&args.memory)?,
        vcpus: args.vcpus,
        wall_time: parse_duration(&args.time_limit)?,
    };
    let kind = match args.runner {
        Runner::Bwrap => RunnerKind::Bwrap,
        Runner::Container => RunnerKind::Container {
            socket: args.container_socket.clone(),
            image: args.image.clone(),
        },
        Runner::Process => RunnerKind::Process {
            insecure_no_sandbox: args.insecure_no_sandbox,
        },
    };
    let runner = sandbox::runner(kind)?;
    let package = args
        .package
        .canonicalize()
        .with_context(|| format!("cannot read the package {}", args.package.display()))?;
    let api = Arc::new(EnclaveApi::new(
        Arc::new(data),
        criteria,
        params.clone(),
        RunIds {
            project: "local".into(),
            run: "local-run".into(),
            run_config: "local".into(),
        },
    ));
    let request = RunRequest {
        name: format!("local-{}", std::process::id()),
        package,
        api,
        parameters: params,
        limits,
        launcher: std::env::current_exe().context("cannot find the sealroom executable")?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<sealroom_agent::sandbox::OutputLine>(1024);
        let printer = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let tag = match line.stream {
                    Stream::Stdout => "out",
                    Stream::Stderr => "err",
                };
                eprintln!("[algorithm {tag}] {}", line.line);
            }
        });
        let (cancel_tx, cancel) = watch::channel(false);
        let ctrl_c = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = cancel_tx.send(true);
            }
        });
        let r = enclave::run(request, runner.as_ref(), tx, cancel).await;
        ctrl_c.abort();
        let _ = printer.await;
        r
    })?;
    let final_ok = result.reports.final_report.is_some();
    let ok = result.outcome.ending.success() && final_ok;
    if args.json {
        println!(
            "{}",
            json!({
                "ending": result.outcome.ending.to_string(),
                "seconds": result.outcome.duration.as_secs_f64(),
                "peak_memory_bytes": result.outcome.peak_memory_bytes,
                "progress_reports": result.reports.progress.len(),
                "rejected_final_reports": result.reports.rejected_finals,
                "final_report": result.reports.final_report.as_ref().map(|r| &r.document),
                "compatible": ok,
            })
        );
    } else {
        println!("entry point: {}", result.entrypoint.argv.join(" "));
        println!(
            "the algorithm {} after {:.1}s",
            result.outcome.ending,
            result.outcome.duration.as_secs_f64()
        );
        println!(
            "reports: {} in progress, {} final report(s) refused by the criteria",
            result.reports.progress.len(),
            result.reports.rejected_finals
        );
        match &result.reports.final_report {
            Some(r) => println!("final report (validated): {}", r.document),
            None => println!("no final report validated: post one with status \"Completed\" that satisfies the criteria"),
        }
        println!(
            "{}",
            if ok {
                "compatible: yes"
            } else {
                "compatible: NO"
            }
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("2 parsecs").is_err());
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("soon").is_err());
    }
}
