//! `sealroom agent`: the enclave agent of a data steward's site. Outbound only: it long-polls
//! the control plane for the runs its DS initiated and runs each in the sandbox
//! (`sealroom_agent::agent`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use sealroom_agent::agent::{self, AgentConfig};
use sealroom_agent::sandbox::{self, RunnerKind};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Runner {
    /// bubblewrap: no network, read-only system, own namespaces (the default).
    Bwrap,
    /// A container through the Docker Engine API (Docker or Podman); a package with a
    /// Dockerfile is built into its image at Runtime Build.
    Container,
    /// No isolation at all; needs --insecure-no-sandbox. Development only.
    Process,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The control plane's URL.
    #[arg(long, env = "SEALROOM_SERVER")]
    server: String,
    /// The site token (`srt_...`) an admin made for this site (POST /api/v1/orgs/{org}/sites).
    #[arg(long, env = "SEALROOM_SITE_TOKEN", hide_env_values = true)]
    token: String,
    /// The sandbox runner.
    #[arg(long, value_enum, default_value = "bwrap")]
    runner: Runner,
    /// Allow the process runner, which has no isolation at all.
    #[arg(long)]
    insecure_no_sandbox: bool,
    /// Most runs at once (runs of different configurations run concurrently).
    #[arg(long, default_value_t = 2)]
    max_concurrent: usize,
    /// The agent's own state: the simulated attester's site key (sim-attester.key, mode 0600).
    #[arg(
        long,
        env = "SEALROOM_AGENT_STATE_DIR",
        default_value = "sealroom-agent-state"
    )]
    state_dir: PathBuf,
    /// Where runs' files live while they run (decrypted code, sealed data, the sandbox's scratch
    /// space), one directory per run; it should be on memory-backed storage. Run directories
    /// left in it by an agent that was killed are removed at start. Default:
    /// /dev/shm/sealroom-agent-<hash of the state directory's path>.
    #[arg(long, env = "SEALROOM_AGENT_WORK_DIR", value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// How often a running run sends a heartbeat, e.g. 2s (keep it well under the server's
    /// heartbeat timeout, 60 s by default).
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    heartbeat_every: String,
    /// A run's time limit, e.g. 90s, 30m, 2h.
    #[arg(long, default_value = "24h")]
    time_limit: String,
    /// The container engine's unix socket (--runner container).
    #[arg(long, value_name = "PATH")]
    container_socket: Option<PathBuf>,
    /// The image a package without a Dockerfile runs in (--runner container).
    #[arg(long, value_name = "IMAGE", default_value = "python:3.11-slim")]
    image: String,
    /// Extra CA certificates (PEM) to trust for the server, besides the system's.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    super::server::init_logging();
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
    let launcher = std::env::current_exe().context("cannot find the sealroom executable")?;
    let mut config = AgentConfig::new(
        args.server.clone(),
        args.token.clone(),
        runner,
        launcher,
        args.state_dir.clone(),
    );
    config.max_concurrent = args.max_concurrent;
    config.max_run_time = super::local_run::parse_duration(&args.time_limit)?;
    config.heartbeat_every = super::local_run::parse_duration(&args.heartbeat_every)?;
    if let Some(dir) = &args.work_dir {
        config.work_dir = dir.clone();
    }
    if let Some(ca) = &args.ca_cert {
        config.client.extra_ca_pem = Some(
            std::fs::read(ca).with_context(|| format!("cannot read --ca-cert {}", ca.display()))?,
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async move {
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: the runs in progress are stopped and wiped");
            let _ = stop_tx.send(true);
        });
        agent::run(config, stop).await
    });
    // The runs have ended and been wiped; a claim may still be long-polling on a blocking
    // thread: do not wait for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    result.context("the agent stopped")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
