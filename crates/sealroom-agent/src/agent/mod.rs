//! `sealroom agent`: the enclave agent of a data steward's site.
//!
//! Outbound only: it long-polls the control plane for runs its DS initiated
//! (`POST /api/v1/agent/claim`), and runs each in its own task, up to
//! [`AgentConfig::max_concurrent`] at a time (runs of different configurations run
//! concurrently). One run ([`run`]'s lifecycle):
//!
//! 1. `runtime_build`: a workspace on memory-backed storage; the package downloaded and its
//!    SHA-256 checked against the approved workload digest before anything else; extracted with
//!    limits; the dataset's sealed files downloaded and checked ([`stage`]); the runner's Runtime
//!    Build (the container runner builds the Dockerfile, without the secret files);
//! 2. `workload_launch`: attestation and key release ([`attest`]); the package's secret files
//!    decrypted with the AO's CEK, the dataset opened with the DS's;
//! 3. `running`: the entry point in the sandbox with the Enclave API, the runtime parameters and
//!    `ESCROW_PROJECT_ID`/`ESCROW_RUN_ID`/`ESCROW_RUN_CONFIG_ID`, the request's vCPU/RAM and the
//!    agent's time limit; stdout/stderr forwarded as algorithm logs, the agent's progress as
//!    stage logs (batched); heartbeats every [`AgentConfig::heartbeat_every`], and a cancel seen
//!    in a heartbeat stops the sandbox;
//! 4. the final report (exact bytes, `passed_criteria=true`), the performance report and a
//!    training run's sealed model uploaded; `completed`, or `failed` with a message naming why.
//!
//! On every ending the workspace (decrypted code, sealed data, sealed model, the sandbox's
//! scratch space) is removed and the keys are zeroized. Every run's files are in one directory
//! of the agent's work directory ([`workdir`], on memory-backed storage); the directories that an
//! agent killed mid-run could not remove are removed by the next agent started on the same work
//! directory, before it claims anything.

pub mod attest;
pub mod client;
mod run;
pub mod stage;
pub mod workdir;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sealroom_attest::Attester;
use tokio::sync::{watch, Semaphore};
use zeroize::Zeroizing;

use crate::sandbox::SandboxRunner;
use client::{Client, ClientError, ClientOptions};
use stage::StageLimits;

/// Everything the agent needs. [`AgentConfig::new`] fills in the defaults.
pub struct AgentConfig {
    /// The control plane's URL.
    pub server: String,
    /// The site token (`srt_...`).
    pub token: Zeroizing<String>,
    /// The sandbox runner.
    pub runner: Arc<dyn SandboxRunner>,
    /// The `sealroom` executable, bound into the sandbox as the launcher.
    pub launcher: PathBuf,
    /// Most runs at once.
    pub max_concurrent: usize,
    /// How often a running run sends a heartbeat (a cancel is seen within this plus one call).
    pub heartbeat_every: Duration,
    /// The agent's own state (the simulated attester's key).
    pub state_dir: PathBuf,
    /// Where runs' files live while they run, one directory per run, on memory-backed storage
    /// (default [`workdir::default_work_dir`]). Stale run directories in it are removed at start.
    pub work_dir: PathBuf,
    /// The wall-time limit of a run.
    pub max_run_time: Duration,
    /// How long one claim long-polls (at most 30 s).
    pub claim_wait: Duration,
    /// How often log lines are sent.
    pub log_flush_every: Duration,
    /// Client timeouts, retries and extra CA certificates.
    pub client: ClientOptions,
    /// Staging limits.
    pub limits: StageLimits,
    /// The attester; `None`: the **simulated** attester with the key in `state_dir`.
    pub attester: Option<Arc<dyn Attester>>,
    /// The simulated attester's measurement.
    pub sim_measurement: [u8; 48],
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server", &self.server)
            .field("runner", &self.runner.name())
            .field("max_concurrent", &self.max_concurrent)
            .field("state_dir", &self.state_dir)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

impl AgentConfig {
    /// A configuration with the defaults: 2 runs at once, a heartbeat every 2 s, a 24 h time
    /// limit, 25 s claims, the simulated attester, the default work directory of `state_dir`.
    pub fn new(
        server: impl Into<String>,
        token: impl Into<String>,
        runner: Arc<dyn SandboxRunner>,
        launcher: PathBuf,
        state_dir: PathBuf,
    ) -> Self {
        AgentConfig {
            server: server.into(),
            token: Zeroizing::new(token.into()),
            runner,
            launcher,
            max_concurrent: 2,
            heartbeat_every: Duration::from_secs(2),
            work_dir: workdir::default_work_dir(&state_dir),
            state_dir,
            max_run_time: Duration::from_secs(24 * 3600),
            claim_wait: Duration::from_secs(25),
            log_flush_every: Duration::from_secs(1),
            client: ClientOptions::default(),
            limits: StageLimits::default(),
            attester: None,
            sim_measurement: [0u8; 48],
        }
    }
}

/// How long a stopping agent waits for a claim that is still long-polling.
const CLAIM_GRACE: Duration = Duration::from_secs(2);

/// Errors that stop the agent (a run's failure does not: it is reported and the agent goes on).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// The server refused the agent (e.g. a bad site token).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The attester cannot be set up.
    #[error(transparent)]
    Attest(#[from] attest::AttestError),
}

/// What every run task shares.
pub(crate) struct Shared {
    pub(crate) config: AgentConfig,
    pub(crate) client: Client,
    pub(crate) attester: Arc<dyn Attester>,
    pub(crate) work: workdir::WorkDir,
}

/// Runs the agent until `shutdown` turns true: claims runs and runs them. On shutdown it stops
/// claiming, stops its runs (reporting them failed: the agent was stopped) and returns when
/// every run has been wiped.
pub async fn run(
    config: AgentConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    if config.max_concurrent == 0 {
        return Err(AgentError::Config(
            "--max-concurrent must be at least 1".into(),
        ));
    }
    if config.heartbeat_every.is_zero() {
        return Err(AgentError::Config(
            "the heartbeat interval must be more than zero".into(),
        ));
    }
    let client = Client::new(&config.server, &config.token, config.client.clone())?;
    // Before anything else: what an agent killed mid-run left on this work directory.
    let opened = workdir::WorkDir::open(&config.work_dir).map_err(AgentError::Config)?;
    if !opened.wiped.is_empty() {
        tracing::warn!(
            work_dir = %config.work_dir.display(),
            wiped = ?opened.wiped,
            "removed the directories of runs that an earlier agent did not end (it was killed?)"
        );
    }
    if opened.memory_backed() == Some(false) {
        tracing::warn!(
            work_dir = %config.work_dir.display(),
            fs_type = opened.fs_type.as_deref().unwrap_or("?"),
            "the work directory is not on memory-backed storage: decrypted files of runs live \
             there, and a run's directory stays on that disk if the agent is killed"
        );
    }
    let work = opened.dir;
    let attester: Arc<dyn Attester> = match &config.attester {
        Some(a) => a.clone(),
        None => {
            let (sim, created) =
                attest::load_or_create_sim_attester(&config.state_dir, config.sim_measurement)?;
            let public = sim.public_key();
            tracing::warn!(
                key = %attest::sim_key_path(&config.state_dir).display(),
                "SIMULATED attester: this agent runs no TEE; only projects created as `simulated` release keys to it"
            );
            client
                .call(move |c| c.register_attestation_key(&public))
                .await
                .map_err(|e| match e.status() {
                    Some(409) => AgentError::Config(format!(
                        "the server has another simulated attestation key for this site: an admin must remove it \
                         (DELETE /api/v1/sites/{{site_id}}/attestation-key) before this agent's key is registered ({e})"
                    )),
                    _ => AgentError::Client(e),
                })?;
            if created {
                tracing::info!("registered the site's new simulated attestation key");
            }
            Arc::new(sim)
        }
    };
    let shared = Arc::new(Shared {
        config,
        client,
        attester,
        work,
    });
    let slots = Arc::new(Semaphore::new(shared.config.max_concurrent));
    let mut runs = tokio::task::JoinSet::new();
    tracing::info!(
        server = %shared.client.server(),
        runner = shared.config.runner.name(),
        work_dir = %shared.work.path().display(),
        max_concurrent = shared.config.max_concurrent,
        "agent started: waiting for runs"
    );
    let mut backoff = Duration::from_secs(1);
    // A claim still long-polling when the agent was told to stop.
    let mut pending_claim: Option<tokio::task::JoinHandle<()>> = None;
    'claiming: loop {
        while runs.try_join_next().is_some() {}
        if *shutdown.borrow() {
            break;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let wait = shared.config.claim_wait;
        let mut claim = tokio::spawn({
            let client = shared.client.clone();
            async move { client.call(move |c| c.claim(wait)).await }
        });
        let claimed = tokio::select! {
            c = &mut claim => c,
            _ = shutdown.changed() => {
                // The claim is a blocking call: give back what it claims if it answers soon.
                let shared = shared.clone();
                pending_claim = Some(tokio::spawn(async move {
                    if let Ok(Ok(Some(bundle))) = claim.await {
                        let id = bundle.run.id.clone();
                        let _ = shared.client.call(move |c| c.report_state(&id, "failed",
                            Some("the agent was stopped before the run started"))).await;
                    }
                }));
                break 'claiming;
            }
        };
        match claimed {
            Ok(Ok(Some(bundle))) => {
                backoff = Duration::from_secs(1);
                tracing::info!(run = %bundle.run.id, "claimed a run");
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                runs.spawn(async move {
                    run::execute(shared, bundle, shutdown).await;
                    drop(permit);
                });
            }
            Ok(Ok(None)) => backoff = Duration::from_secs(1),
            Ok(Err(e)) => {
                if matches!(e.status(), Some(401 | 403)) {
                    return Err(AgentError::Client(e));
                }
                tracing::warn!(error = %e, "claim failed; retrying in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => tracing::warn!(error = %e, "claim task failed"),
        }
    }
    tracing::info!("agent stopping: waiting for its runs to end");
    while runs.join_next().await.is_some() {}
    if let Some(mut claim) = pending_claim {
        // Do not wait out a whole long poll: a run claimed after this is failed by the server
        // when its heartbeats do not come (the claim counts as the first one).
        if tokio::time::timeout(CLAIM_GRACE, &mut claim).await.is_err() {
            claim.abort();
            tracing::info!(
                "stopped without waiting for the pending claim to answer; a run it claims now \
                 is failed by the server after its heartbeat timeout"
            );
        }
    }
    Ok(())
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
