//! One run's lifecycle, from claim to wipe. See the [module docs](super) for the stages.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealroom_criteria::Criteria;
use tokio::sync::{mpsc, watch};

use super::attest::{self, ReleaseContext, RunKeys};
use super::client::{LogLine, LogStream, RunBundle, Upload};
use super::stage;
use super::Shared;
use crate::enclave::{self, RunRequest};
use crate::enclave_api::data::SealedDataset;
use crate::enclave_api::{EnclaveApi, ModelOutput, RunIds};
use crate::sandbox::{BoxFuture, Ending, Limits, Outcome, OutputLine, SandboxRunner, SandboxSpec};

/// Most log lines waiting to be sent; beyond, lines are dropped and counted.
const LOG_QUEUE: usize = 20_000;
/// Most lines per log call.
const LOG_BATCH: usize = 500;

/// How a run's lifecycle ended, short of a failure.
#[derive(Debug, PartialEq, Eq)]
enum Finish {
    /// Outputs uploaded: report `completed`.
    Completed,
    /// Stopped because of a cancel (from the server or the agent's shutdown).
    Stopped,
}

/// Why a run was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StopReason {
    /// The server says the run is over (the DS cancelled it, or it was failed).
    Server(String),
    /// The agent is shutting down.
    Shutdown,
}

/// The run's directory in the agent's work directory (memory-backed storage): the package, the
/// sealed dataset, the sealed model output, and (made by [`enclave::run_in`]) the Enclave API's
/// socket and the sandbox's `/workspace`. Removed when dropped, on every ending; after a kill,
/// at the next agent's start ([`super::workdir`]).
pub(crate) struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub(crate) fn new(work_dir: &Path, run_id: &str) -> Result<Self, String> {
        let prefix = format!("{}{}-", super::workdir::RUN_PREFIX, path_safe(run_id));
        let dir = enclave::memory_dir_in(work_dir, &prefix).map_err(|e| e.to_string())?;
        for sub in ["package", "data", "output"] {
            std::fs::create_dir(dir.path().join(sub))
                .map_err(|e| format!("cannot prepare the workspace: {e}"))?;
        }
        Ok(Workspace { dir })
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }
    pub(crate) fn package(&self) -> PathBuf {
        self.dir.path().join("package")
    }
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub(crate) fn output(&self) -> PathBuf {
        self.dir.path().join("output")
    }
    pub(crate) fn package_tar(&self) -> PathBuf {
        self.dir.path().join("package.tar")
    }
}

/// A runner whose Runtime Build is already done: [`enclave::run`] must not build again.
#[derive(Debug)]
struct Prebuilt(Arc<dyn SandboxRunner>);

impl SandboxRunner for Prebuilt {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn shares_host_system(&self) -> bool {
        self.0.shares_host_system()
    }
    fn run<'a>(
        &'a self,
        spec: &'a SandboxSpec,
        output: mpsc::Sender<OutputLine>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, crate::sandbox::Result<Outcome>> {
        self.0.run(spec, output, cancel)
    }
}

/// Sends log lines in batches, on its own task.
struct Logs {
    tx: mpsc::Sender<LogLine>,
    task: tokio::task::JoinHandle<()>,
}

impl Logs {
    fn start(shared: &Arc<Shared>, run_id: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<LogLine>(LOG_QUEUE);
        let client = shared.client.clone();
        let every = shared.config.log_flush_every;
        let run_id = run_id.to_owned();
        let task = tokio::spawn(async move {
            let mut open = true;
            while open {
                let mut batch = Vec::new();
                let deadline = tokio::time::sleep(every);
                tokio::pin!(deadline);
                while batch.len() < LOG_BATCH {
                    tokio::select! {
                        line = rx.recv() => match line {
                            Some(l) => batch.push(l),
                            None => { open = false; break; }
                        },
                        _ = &mut deadline, if !batch.is_empty() => break,
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let id = run_id.clone();
                if let Err(e) = client.call(move |c| c.append_logs(&id, &batch)).await {
                    tracing::warn!(run = %run_id, error = %e, "could not send log lines");
                }
            }
        });
        Logs { tx, task }
    }

    fn stage(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!("{line}");
        self.send(LogStream::Stage, line);
    }

    fn send(&self, stream: LogStream, line: String) {
        let _ = self.tx.try_send(LogLine {
            stream,
            at: None,
            line,
        });
    }

    /// Sends what is left and stops.
    async fn close(self) {
        drop(self.tx);
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// Runs one claimed run to its end and reports how it ended.
pub(super) async fn execute(
    shared: Arc<Shared>,
    bundle: RunBundle,
    shutdown: watch::Receiver<bool>,
) {
    let run_id = bundle.run.id.clone();
    let logs = Logs::start(&shared, &run_id);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let reason: Arc<Mutex<Option<StopReason>>> = Arc::new(Mutex::new(None));
    let heartbeat = tokio::spawn(heartbeats(
        shared.clone(),
        run_id.clone(),
        cancel_tx,
        shutdown,
        reason.clone(),
    ));

    let result = lifecycle(&shared, &bundle, &logs, cancel_rx).await;
    heartbeat.abort();
    let stop = reason.lock().map(|r| r.clone()).unwrap_or(None);
    let terminal: Option<(&str, Option<String>)> = match (result, stop) {
        (Ok(Finish::Completed), _) => {
            logs.stage("Run completed: outputs sent; workspace and keys wiped");
            Some(("completed", None))
        }
        (_, Some(StopReason::Server(state))) => {
            logs.stage(format!(
                "Run stopped: the server says it is {state}; workspace and keys wiped"
            ));
            None
        }
        (_, Some(StopReason::Shutdown)) => {
            let m = "the agent was stopped before the run finished".to_owned();
            logs.stage(format!("Run failed: {m}; workspace and keys wiped"));
            Some(("failed", Some(m)))
        }
        (Ok(Finish::Stopped), None) => None,
        (Err(message), None) => {
            logs.stage(format!("Run failed: {message}; workspace and keys wiped"));
            Some(("failed", Some(message)))
        }
    };
    logs.close().await;
    if let Some((state, message)) = terminal {
        let id = run_id.clone();
        let r = shared
            .client
            .call(move |c| c.report_state(&id, state, message.as_deref()))
            .await;
        if let Err(e) = r {
            tracing::warn!(run = %run_id, error = %e, "could not report the run's end");
        }
    }
}

/// Heartbeats until aborted; a cancel (or the run's end on the server, or the agent's shutdown)
/// turns `cancel` true.
async fn heartbeats(
    shared: Arc<Shared>,
    run_id: String,
    cancel: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
    reason: Arc<Mutex<Option<StopReason>>>,
) {
    let stop = |why: StopReason| {
        if let Ok(mut r) = reason.lock() {
            r.get_or_insert(why);
        }
        let _ = cancel.send(true);
    };
    let mut tick = tokio::time::interval(shared.config.heartbeat_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow() {
            stop(StopReason::Shutdown);
            return;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => continue,
        }
        let id = run_id.clone();
        match shared.client.call(move |c| c.heartbeat(&id)).await {
            Ok(h)
                if h.cancel
                    || matches!(
                        h.state.as_str(),
                        "cancelled" | "failed" | "completed" | "rejected"
                    ) =>
            {
                stop(StopReason::Server(h.state));
                return;
            }
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {
                stop(StopReason::Server("unknown to it".into()));
                return;
            }
            Err(e) => tracing::warn!(run = %run_id, error = %e, "heartbeat failed"),
        }
    }
}

/// Turns a panic-free blocking job's join error into a message.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: {e}"))?
}

async fn report(shared: &Arc<Shared>, run_id: &str, state: &'static str) -> Result<(), String> {
    let id = run_id.to_owned();
    shared
        .client
        .call(move |c| c.report_state(&id, state, None))
        .await
        .map_err(|e| e.to_string())
}

/// Everything between the claim and the final state. The workspace and the keys live in this
/// function: they are dropped (removed, zeroized) on every return.
async fn lifecycle(
    shared: &Arc<Shared>,
    bundle: &RunBundle,
    logs: &Logs,
    cancel: watch::Receiver<bool>,
) -> Result<Finish, String> {
    let cfg = &shared.config;
    let run_id = bundle.run.id.clone();
    let stopped = || *cancel.borrow();

    // Runtime Build.
    report(shared, &run_id, "runtime_build").await?;
    logs.stage("Runtime Build: preparing the workspace on memory-backed storage");
    let ws = Arc::new(Workspace::new(shared.work.path(), &run_id)?);
    {
        let (client, ws, limits) = (shared.client.clone(), ws.clone(), cfg.limits.clone());
        let (id, digest) = (run_id.clone(), bundle.algorithm.workload_digest.clone());
        let msg = blocking(move || {
            let tar = ws.package_tar();
            let mut f = std::fs::File::create(&tar).map_err(|e| e.to_string())?;
            let size = client
                .download_package(&id, &mut f, limits.max_package_bytes)
                .map_err(|e| e.to_string())?;
            drop(f);
            // The digest first: nothing reads a package that is not the approved one.
            let digest = stage::check_digest(&tar, digest.as_deref()).map_err(|e| e.to_string())?;
            let files =
                stage::extract_package(&tar, &ws.package(), &limits).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(&tar);
            Ok(format!(
                "Runtime Build: package verified ({size} bytes, SHA-256 {digest}), {files} files staged"
            ))
        })
        .await?;
        logs.stage(msg);
    }
    if stopped() {
        return Ok(Finish::Stopped);
    }
    {
        let (ws, limits, url) = (ws.clone(), cfg.limits.clone(), bundle.dataset.url.clone());
        let timeout = cfg.client.transfer_timeout;
        let s = blocking(move || {
            let source = stage::dataset_source(&url, timeout).map_err(|e| e.to_string())?;
            stage::download_dataset(source.as_ref(), &ws.data(), &limits).map_err(|e| e.to_string())
        })
        .await?;
        logs.stage(format!(
            "Runtime Build: dataset fetched ({} sealed files, {} bytes)",
            s.files, s.bytes
        ));
    }
    if stopped() {
        return Ok(Finish::Stopped);
    }
    let (build_tx, mut build_rx) = mpsc::channel::<OutputLine>(256);
    let build_fwd = {
        let tx = logs.tx.clone();
        tokio::spawn(async move {
            while let Some(l) = build_rx.recv().await {
                let _ = tx.try_send(LogLine {
                    stream: LogStream::Stage,
                    at: None,
                    line: format!("Runtime Build: {}", l.line),
                });
            }
        })
    };
    let built = cfg
        .runner
        .runtime_build(&ws.package(), build_tx)
        .await
        .map_err(|e| e.to_string());
    let _ = build_fwd.await;
    let built = built?;
    let runner: Arc<dyn SandboxRunner> = Arc::new(Prebuilt(
        built.clone().unwrap_or_else(|| cfg.runner.clone()),
    ));
    let result = launch_and_run(shared, bundle, logs, &ws, runner, cancel.clone()).await;
    if let Some(b) = built {
        b.release().await;
    }
    drop(ws);
    result
}

/// Workload Launch and Run.
async fn launch_and_run(
    shared: &Arc<Shared>,
    bundle: &RunBundle,
    logs: &Logs,
    ws: &Arc<Workspace>,
    runner: Arc<dyn SandboxRunner>,
    cancel: watch::Receiver<bool>,
) -> Result<Finish, String> {
    let cfg = &shared.config;
    let run_id = bundle.run.id.clone();
    if *cancel.borrow() {
        return Ok(Finish::Stopped);
    }
    report(shared, &run_id, "workload_launch").await?;
    let technology = shared.attester.technology();
    if bundle.project.technology != technology.as_str() {
        return Err(format!(
            "the project requires {} attestation; this agent attests with {}",
            bundle.project.technology, technology
        ));
    }
    logs.stage(format!(
        "Workload Launch: attesting ({technology}) and asking the key broker for the keys"
    ));
    let keys: RunKeys = {
        let (client, attester) = (shared.client.clone(), shared.attester.clone());
        let ctx = ReleaseContext {
            project_id: bundle.project.id.clone(),
            run_id: run_id.clone(),
            workload_digest: bundle.algorithm.workload_digest.clone().unwrap_or_default(),
        };
        blocking(move || {
            attest::obtain_keys(&client, attester.as_ref(), &ctx)
                .map_err(|e| format!("key release failed: {e}"))
        })
        .await?
    };
    let ds_cek = keys
        .ds
        .clone()
        .ok_or("the broker released no data steward key: the dataset cannot be read")?;
    let secrets = {
        let (ws, ao) = (ws.clone(), keys.ao.clone());
        blocking(move || {
            let listed = stage::secret_paths(&ws.package()).map_err(|e| e.to_string())?;
            if listed.is_empty() {
                return Ok(0);
            }
            let ao = ao.ok_or(
                "the broker released no algorithm owner key: the package's secret files cannot be decrypted",
            )?;
            stage::decrypt_secrets(&ws.package(), &ao).map_err(|e| e.to_string())
        })
        .await?
    };
    let data = {
        let ws = ws.clone();
        blocking(move || {
            SealedDataset::open(&ws.data(), ds_cek)
                .map_err(|e| format!("the dataset does not open with the data steward's key: {e}"))
        })
        .await?
    };
    logs.stage(format!(
        "Workload Launch: keys released; {secrets} secret files decrypted; dataset manifest verified"
    ));
    let criteria_text = bundle.criteria_json.as_deref().unwrap_or("{}");
    let criteria = Criteria::from_json(criteria_text.as_bytes())
        .map_err(|e| format!("the accepted criteria do not parse: {e}"))?;
    let params: Vec<(String, String)> = bundle
        .params
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    let ids = RunIds {
        project: bundle.run.project_id.clone(),
        run: run_id.clone(),
        run_config: bundle.run.run_config_id.clone(),
    };
    let training = bundle.algorithm.algorithm_type == "training";
    let mut api = EnclaveApi::new(Arc::new(data), criteria, params.clone(), ids);
    if training {
        let cek = keys
            .ao
            .clone()
            .ok_or("a training run needs the algorithm owner's key to seal its model")?;
        api = api.training(ModelOutput {
            dir: ws.output(),
            cek,
        });
    }
    drop(keys);
    let api = Arc::new(api);
    let memory_bytes = u64::from(bundle.compute.ram_gib) << 30;
    let limits = Limits {
        memory_bytes,
        vcpus: bundle.compute.vcpus.max(1),
        wall_time: cfg.max_run_time,
    };
    let req = RunRequest {
        name: sandbox_name(&run_id),
        package: ws.package(),
        api: api.clone(),
        parameters: params,
        limits,
        launcher: cfg.launcher.clone(),
    };

    if *cancel.borrow() {
        return Ok(Finish::Stopped);
    }
    report(shared, &run_id, "running").await?;
    logs.stage(format!(
        "Run: starting the algorithm ({} vCPU, {} GiB, time limit {}s, runner {})",
        limits.vcpus,
        bundle.compute.ram_gib,
        limits.wall_time.as_secs(),
        runner.name()
    ));
    let (out_tx, mut out_rx) = mpsc::channel::<OutputLine>(1024);
    let fwd = {
        let tx = logs.tx.clone();
        tokio::spawn(async move {
            let mut dropped = 0u64;
            while let Some(l) = out_rx.recv().await {
                if tx
                    .try_send(LogLine {
                        stream: LogStream::Algorithm,
                        at: None,
                        line: l.line,
                    })
                    .is_err()
                {
                    dropped += 1;
                }
            }
            dropped
        })
    };
    let result = enclave::run_in(
        req,
        Some(ws.root()),
        runner.as_ref(),
        out_tx,
        cancel.clone(),
    )
    .await;
    let dropped = fwd.await.unwrap_or(0);
    if dropped > 0 {
        logs.stage(format!(
            "Run: {dropped} output lines were dropped (the log queue was full)"
        ));
    }
    let result = result.map_err(|e| format!("the sandbox failed: {e}"))?;
    let outcome = result.outcome;
    let reports = result.reports;
    logs.stage(format!(
        "Run: the algorithm {} after {}s",
        outcome.ending,
        outcome.duration.as_secs()
    ));
    match outcome.ending {
        Ending::Cancelled => return Ok(Finish::Stopped),
        Ending::Exited(0) => {}
        Ending::Exited(c) => return Err(format!("the algorithm exited with code {c}")),
        Ending::Signaled(s) => return Err(format!("the algorithm was killed by signal {s}")),
        Ending::TimedOut => {
            return Err(format!(
                "the run reached its time limit of {}s",
                limits.wall_time.as_secs()
            ))
        }
        Ending::MemoryLimit => {
            return Err(format!(
                "the run reached its memory limit of {} GiB",
                bundle.compute.ram_gib
            ))
        }
    }
    if *cancel.borrow() {
        return Ok(Finish::Stopped);
    }
    let final_report = reports.final_report.clone();
    if final_report.is_none() && !(training && reports.model.is_some()) {
        let mut m = "the algorithm ended without a final report".to_owned();
        if reports.rejected_finals > 0 {
            m.push_str(&format!(
                " ({} final report(s) failed validation against the accepted criteria)",
                reports.rejected_finals
            ));
        }
        return Err(m);
    }

    // Outputs.
    if let Some(fr) = final_report {
        let (id, bytes) = (run_id.clone(), fr.json.clone());
        shared
            .client
            .call(move |c| {
                c.put_output(&id, "final_report", None, Some(true), Upload::Bytes(&bytes))
            })
            .await
            .map_err(|e| format!("the final report could not be sent: {e}"))?;
        logs.stage("Outputs: final report sent");
    }
    if !reports.performance.is_empty() {
        let bytes = serde_json::to_vec(&reports.performance.to_json())
            .map_err(|e| format!("the performance report does not serialize: {e}"))?;
        let id = run_id.clone();
        shared
            .client
            .call(move |c| {
                c.put_output(&id, "performance_report", None, None, Upload::Bytes(&bytes))
            })
            .await
            .map_err(|e| format!("the performance report could not be sent: {e}"))?;
        logs.stage("Outputs: performance report sent");
    }
    if let Some(model) = reports.model.clone() {
        let id = run_id.clone();
        let stored = shared
            .client
            .call(move |c| {
                c.put_output(
                    &id,
                    "trained_model",
                    Some(&model.name),
                    None,
                    Upload::File(&model.path),
                )
            })
            .await
            .map_err(|e| format!("the trained model could not be sent: {e}"))?;
        logs.stage(format!(
            "Outputs: trained model sent, sealed to the algorithm owner ({} bytes, SHA-256 {})",
            stored.size, stored.sha256
        ));
    }
    drop(api);
    Ok(Finish::Completed)
}

/// A sandbox name from a run id: letters, digits, `-`, `_`; at most 64.
fn sandbox_name(run_id: &str) -> String {
    format!("run-{}", path_safe(run_id))
}

/// A run id as letters, digits, `-` and `_`, at most 56 characters.
fn path_safe(run_id: &str) -> String {
    run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(56)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_names() {
        assert_eq!(sandbox_name("run_01H"), "run-run_01H");
        assert_eq!(sandbox_name("a/b c"), "run-a_b_c");
        assert!(sandbox_name(&"x".repeat(200)).len() <= 64);
    }

    /// The workspace is on memory-backed storage and is gone once dropped, also when staging
    /// failed half-way.
    #[test]
    fn workspace_is_wiped_on_every_ending() {
        let work = enclave::memory_dir("sealroom-agent-test-").unwrap();
        let ws = Workspace::new(work.path(), "0190a1b2/x").unwrap();
        let root = ws.root().to_path_buf();
        if Path::new("/dev/shm").is_dir() {
            assert!(root.starts_with("/dev/shm"), "{}", root.display());
        }
        let name = root.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("run-0190a1b2_x-"), "{name}");
        std::fs::write(ws.package().join("secret.py"), b"decrypted code").unwrap();
        std::fs::write(ws.package_tar(), b"not a tar").unwrap();
        let err = stage::extract_package(
            &ws.package_tar(),
            &ws.package(),
            &stage::StageLimits::default(),
        );
        assert!(err.is_err());
        assert!(root.join("package/secret.py").exists());
        drop(ws);
        assert!(!root.exists(), "{} is still there", root.display());
    }
}
