//! One run inside the enclave: the Enclave API on a unix socket, the package in a sandbox behind
//! `sealroom enclave-launch`, the output streamed, the reports collected, the workspace wiped.
//! `sealroom local-run` and the agent's runs both go through [`run`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::enclave_api::{self, EnclaveApi, Reports};
use crate::package::{self, Entrypoint, APP_DIR};
use crate::sandbox::{
    Limits, Mount, Outcome, OutputLine, SandboxError, SandboxRunner, SandboxSpec,
};

/// Where the launcher and the API socket appear inside the sandbox.
const RUN_DIR: &str = "/run/enclave";

/// Errors preparing or supervising a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The package has no usable entry point.
    #[error(transparent)]
    Package(#[from] package::PackageError),
    /// The sandbox could not start or be supervised.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The run directory or the API could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// Everything one run needs.
#[derive(Debug)]
pub struct RunRequest {
    /// A name for logs and cgroups (letters, digits, `-`, `_`).
    pub name: String,
    /// The decrypted package (on memory-backed storage), mounted read-only at `/app`.
    pub package: PathBuf,
    /// The Enclave API's state: data, criteria, parameters, ids.
    pub api: Arc<EnclaveApi>,
    /// Runtime parameters, passed as environment variables.
    pub parameters: Vec<(String, String)>,
    /// Limits of the request.
    pub limits: Limits,
    /// The `sealroom` executable, bound into the sandbox as the launcher.
    pub launcher: PathBuf,
}

/// How a run ended and what it reported.
#[derive(Debug)]
pub struct RunResult {
    /// How the program ended.
    pub outcome: Outcome,
    /// The reports it posted.
    pub reports: Reports,
    /// The entry point that was started.
    pub entrypoint: Entrypoint,
}

/// A directory on memory-backed storage (`/dev/shm` where it exists), removed when dropped.
pub fn memory_dir(prefix: &str) -> Result<tempfile::TempDir, RunError> {
    let base = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix(prefix);
        b
    };
    let dir = if base.is_dir() {
        builder.tempdir_in(base)
    } else {
        builder.tempdir()
    };
    dir.map_err(|e| RunError::Setup(format!("cannot create a memory-backed directory: {e}")))
}

/// Runs a package to its end.
pub async fn run(
    req: RunRequest,
    runner: &dyn SandboxRunner,
    output: mpsc::Sender<OutputLine>,
    cancel: watch::Receiver<bool>,
) -> Result<RunResult, RunError> {
    let entrypoint = package::entrypoint(&req.package)?;
    let run_dir = memory_dir("sealroom-api-")?;
    let workspace = memory_dir("sealroom-ws-")?;
    let sock = run_dir.path().join("api.sock");
    let listener = tokio::net::UnixListener::bind(&sock)
        .map_err(|e| RunError::Setup(format!("cannot listen on {}: {e}", sock.display())))?;
    let tls = enclave_api::self_signed_acceptor().map_err(RunError::Setup)?;
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn(enclave_api::serve(listener, tls, req.api.clone(), stop));

    let ids = req.api.ids().clone();
    let mut env: Vec<(String, String)> = req.parameters.clone();
    env.extend([
        ("ESCROW_PROJECT_ID".to_owned(), ids.project),
        ("ESCROW_RUN_ID".to_owned(), ids.run),
        ("ESCROW_RUN_CONFIG_ID".to_owned(), ids.run_config),
        (
            "ENCLAVE_API_URL".to_owned(),
            "https://localhost:5000".to_owned(),
        ),
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME".to_owned(), "/workspace".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
    ]);
    let mut args = vec![
        "enclave-launch".to_owned(),
        "--socket".to_owned(),
        format!("{RUN_DIR}/api.sock"),
        "--".to_owned(),
    ];
    args.extend(entrypoint.argv.iter().cloned());
    let spec = SandboxSpec {
        name: req.name.clone(),
        program: PathBuf::from(format!("{RUN_DIR}/sealroom")),
        args,
        env,
        workspace: workspace.path().to_path_buf(),
        mounts: vec![
            Mount {
                host: req.package.clone(),
                inside: PathBuf::from(APP_DIR),
                writable: false,
            },
            Mount {
                host: req.launcher.clone(),
                inside: PathBuf::from(format!("{RUN_DIR}/sealroom")),
                writable: false,
            },
            Mount {
                host: sock.clone(),
                inside: PathBuf::from(format!("{RUN_DIR}/api.sock")),
                writable: true,
            },
        ],
        workdir: Some(entrypoint.workdir.clone()),
        limits: req.limits,
    };
    let outcome = runner.run(&spec, output, cancel).await;
    let _ = stop_tx.send(true);
    let _ = server.await;
    // The workspace and the API socket are removed here, on every ending.
    drop(workspace);
    drop(run_dir);
    Ok(RunResult {
        outcome: outcome?,
        reports: req.api.reports(),
        entrypoint,
    })
}
