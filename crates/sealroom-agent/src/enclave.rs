//! One run inside the enclave: the Enclave API on a unix socket, the package in a sandbox behind
//! `sealroom enclave-launch`, the output streamed, the reports collected, the workspace wiped.
//! `sealroom local-run` and the agent's runs both go through [`run`].
//!
//! Runtime Build comes first ([`SandboxRunner::runtime_build`]): the container runner builds the
//! package's Dockerfile into an image, which the run then starts from and which is removed after
//! it. Where the sandbox's system is an image rather than the host's `/usr`
//! ([`SandboxRunner::shares_host_system`]), the launcher is started through its own dynamic
//! loader with its shared libraries bound in beside it (`/run/enclave/lib`), so it runs whatever
//! C library the image has, or none.

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
/// Where the launcher's shared libraries appear when the sandbox has its own system.
const LIB_DIR: &str = "/run/enclave/lib";

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
    if base.is_dir() {
        memory_dir_in(base, prefix)
    } else {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| RunError::Setup(format!("cannot create a memory-backed directory: {e}")))
    }
}

/// A new directory (mode 0700) inside `base`, removed when dropped.
pub fn memory_dir_in(base: &Path, prefix: &str) -> Result<tempfile::TempDir, RunError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .map_err(|e| {
            RunError::Setup(format!(
                "cannot create a directory in {}: {e}",
                base.display()
            ))
        })
}

/// Runs a package to its end. The API socket's directory and the sandbox's `/workspace` are
/// made on memory-backed storage (`/dev/shm`).
pub async fn run(
    req: RunRequest,
    runner: &dyn SandboxRunner,
    output: mpsc::Sender<OutputLine>,
    cancel: watch::Receiver<bool>,
) -> Result<RunResult, RunError> {
    run_in(req, None, runner, output, cancel).await
}

/// [`run`], with the API socket's directory and the sandbox's `/workspace` made inside
/// `scratch` (the agent's run directory, so that everything of a run is in one place on
/// memory-backed storage and an agent that was killed can wipe it at its next start).
pub async fn run_in(
    req: RunRequest,
    scratch: Option<&Path>,
    runner: &dyn SandboxRunner,
    output: mpsc::Sender<OutputLine>,
    cancel: watch::Receiver<bool>,
) -> Result<RunResult, RunError> {
    let entrypoint = package::entrypoint(&req.package)?;
    // Runtime Build: the image this package runs in, where the runner builds one.
    let built = runner.runtime_build(&req.package, output.clone()).await?;
    let runner: &dyn SandboxRunner = built.as_deref().unwrap_or(runner);
    let result = run_built(req, scratch, runner, entrypoint, output, cancel).await;
    if let Some(b) = &built {
        b.release().await;
    }
    result
}

async fn run_built(
    req: RunRequest,
    scratch: Option<&Path>,
    runner: &dyn SandboxRunner,
    entrypoint: Entrypoint,
    output: mpsc::Sender<OutputLine>,
    cancel: watch::Receiver<bool>,
) -> Result<RunResult, RunError> {
    let (run_dir, workspace) = match scratch {
        Some(base) => (memory_dir_in(base, "api-")?, memory_dir_in(base, "ws-")?),
        None => (memory_dir("sealroom-api-")?, memory_dir("sealroom-ws-")?),
    };
    let sock = run_dir.path().join("api.sock");
    let listener = bind_socket(run_dir.path(), "api.sock")
        .map_err(|e| RunError::Setup(format!("cannot listen on {}: {e}", sock.display())))?;
    // The socket lives in a private (0700) directory; the sandbox's user, whoever it is on the
    // host, may connect to it once it is bound in.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| RunError::Setup(format!("cannot share {}: {e}", sock.display())))?;
    }
    let tls = enclave_api::self_signed_acceptor().map_err(RunError::Setup)?;
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn(enclave_api::serve(listener, tls, req.api.clone(), stop));

    let env = environment(&req.parameters, req.api.ids().clone());
    let launcher_inside = format!("{RUN_DIR}/sealroom");
    let mut mounts = vec![
        Mount {
            host: req.package.clone(),
            inside: PathBuf::from(APP_DIR),
            writable: false,
        },
        Mount {
            host: req.launcher.clone(),
            inside: PathBuf::from(&launcher_inside),
            writable: false,
        },
        Mount {
            host: sock.clone(),
            inside: PathBuf::from(format!("{RUN_DIR}/api.sock")),
            writable: true,
        },
    ];
    let mut program = PathBuf::from(&launcher_inside);
    let mut args = Vec::new();
    if !runner.shares_host_system() {
        if let Some(libs) = launcher_libraries(&req.launcher)? {
            let interpreter = format!("{LIB_DIR}/{}", libs.interpreter_name);
            mounts.extend(libs.mounts);
            program = PathBuf::from(interpreter);
            args.extend([
                "--library-path".to_owned(),
                LIB_DIR.to_owned(),
                launcher_inside.clone(),
            ]);
        }
    }
    args.extend([
        "enclave-launch".to_owned(),
        "--socket".to_owned(),
        format!("{RUN_DIR}/api.sock"),
        "--".to_owned(),
    ]);
    args.extend(entrypoint.argv.iter().cloned());
    let spec = SandboxSpec {
        name: req.name.clone(),
        program,
        args,
        env,
        workspace: workspace.path().to_path_buf(),
        mounts,
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

/// Binds a unix socket `name` in `dir`. A socket's path must fit in `sun_path` (108 bytes with
/// its NUL); a deeper one (a long work directory) is bound through `/proc/self/fd/<dir>/`, which
/// names the same directory in a few bytes.
fn bind_socket(dir: &Path, name: &str) -> std::io::Result<tokio::net::UnixListener> {
    /// `sun_path` less the NUL, with a margin.
    const SHORT_ENOUGH: usize = 100;
    let path = dir.join(name);
    if path.as_os_str().len() < SHORT_ENOUGH {
        return tokio::net::UnixListener::bind(&path);
    }
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{name}", handle.as_raw_fd()));
    let listener = tokio::net::UnixListener::bind(&short);
    drop(handle);
    listener
}

/// Where the Enclave API is, as the algorithm sees it.
pub const API_URL: &str = "https://localhost:5000";

/// The sandbox's whole environment: the runtime parameters, then the run's ids,
/// `ENCLAVE_API_URL`, the Enclave API's additions ([`enclave_api::sandbox_env`]: MLflow) and a
/// few basics. A parameter named like one of the enclave's own variables is left out (the
/// control plane refuses `ESCROW_*` and `ENCLAVE_API_URL` already), so that no engine has to
/// decide which of two values wins.
fn environment(parameters: &[(String, String)], ids: enclave_api::RunIds) -> Vec<(String, String)> {
    let mut own: Vec<(String, String)> = vec![
        ("ESCROW_PROJECT_ID".to_owned(), ids.project),
        ("ESCROW_RUN_ID".to_owned(), ids.run),
        ("ESCROW_RUN_CONFIG_ID".to_owned(), ids.run_config),
        ("ENCLAVE_API_URL".to_owned(), API_URL.to_owned()),
    ];
    own.extend(enclave_api::sandbox_env(API_URL));
    own.extend(
        [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("HOME", "/workspace"),
            ("LANG", "C.UTF-8"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut env: Vec<(String, String)> = parameters
        .iter()
        .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
        .cloned()
        .collect();
    env.extend(own);
    env
}

/// The launcher's shared libraries, bound in at [`LIB_DIR`].
#[derive(Debug)]
struct LauncherLibraries {
    /// The dynamic loader's file name (e.g. `ld-linux-x86-64.so.2`), at `LIB_DIR` too.
    interpreter_name: String,
    mounts: Vec<Mount>,
}

/// Finds what the launcher loads, with `ldd`; `None` for a static executable.
fn launcher_libraries(launcher: &Path) -> Result<Option<LauncherLibraries>, RunError> {
    let out = std::process::Command::new("ldd")
        .arg(launcher)
        .env_clear()
        .output()
        .map_err(|e| {
            RunError::Setup(format!(
                "cannot run ldd to find the launcher's libraries (Debian: libc-bin): {e}"
            ))
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("statically linked") {
        let err = String::from_utf8_lossy(&out.stderr);
        if text.contains("statically linked") || err.contains("not a dynamic executable") {
            return Ok(None);
        }
        return Err(RunError::Setup(format!(
            "ldd {} failed: {}",
            launcher.display(),
            err.trim()
        )));
    }
    parse_ldd(&text).map(Some)
}

fn parse_ldd(text: &str) -> Result<LauncherLibraries, RunError> {
    let mut interpreter_name = None;
    let mut mounts = Vec::new();
    for line in text.lines().map(str::trim) {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, `/lib64/ld-linux-x86-64.so.2
        // (0x...)`, `linux-vdso.so.1 (0x...)` (in the kernel: nothing to bind).
        let (name, host) = match line.split_once(" => ") {
            Some((name, rest)) => {
                let path = rest.split(" (").next().unwrap_or("").trim();
                if path == "not found" {
                    return Err(RunError::Setup(format!(
                        "the launcher needs {name}, which ldd does not find"
                    )));
                }
                (name.to_owned(), path.to_owned())
            }
            None if line.starts_with('/') => {
                let path = line.split(" (").next().unwrap_or("").trim().to_owned();
                let name = Path::new(&path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                interpreter_name = Some(name.clone());
                (name, path)
            }
            None => continue,
        };
        if host.is_empty() || name.is_empty() || name.contains('/') {
            continue;
        }
        // Bind the file itself, not a link to it.
        let host = std::fs::canonicalize(&host)
            .map_err(|e| RunError::Setup(format!("cannot find the launcher's {host}: {e}")))?;
        mounts.push(Mount {
            host,
            inside: PathBuf::from(format!("{LIB_DIR}/{name}")),
            writable: false,
        });
    }
    let interpreter_name = interpreter_name.ok_or_else(|| {
        RunError::Setup("ldd names no dynamic loader for the launcher".to_owned())
    })?;
    Ok(LauncherLibraries {
        interpreter_name,
        mounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_has_the_ids_the_api_and_mlflow_and_parameters_cannot_override_them() {
        let env = environment(
            &[
                ("EPOCHS".into(), "3".into()),
                ("MLFLOW_TRACKING_URI".into(), "http://elsewhere".into()),
                ("PATH".into(), "/tmp".into()),
            ],
            enclave_api::RunIds {
                project: "p".into(),
                run: "r".into(),
                run_config: "c".into(),
            },
        );
        let get = |k: &str| -> Vec<&str> {
            env.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("EPOCHS"), ["3"]);
        assert_eq!(get("ESCROW_RUN_ID"), ["r"]);
        assert_eq!(get("ENCLAVE_API_URL"), [API_URL]);
        assert_eq!(get("MLFLOW_TRACKING_URI"), [API_URL]);
        assert_eq!(get("MLFLOW_TRACKING_INSECURE_TLS"), ["true"]);
        assert_eq!(get("PATH"), ["/usr/local/bin:/usr/bin:/bin"]);
    }

    /// A socket deeper than `sun_path` allows is still bound, at its real path.
    #[tokio::test]
    async fn a_deep_socket_is_bound() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let _listener = bind_socket(&deep, "api.sock").unwrap();
        let path = deep.join("api.sock");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&path).unwrap().file_type().is_socket());
    }

    #[test]
    fn ldd_output() {
        let libs = parse_ldd(
            "\tlinux-vdso.so.1 (0x00007ffc0d1f2000)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f3f92807000)\n",
        )
        .unwrap();
        assert_eq!(libs.interpreter_name, "ld-linux-x86-64.so.2");
        let inside: Vec<_> = libs.mounts.iter().map(|m| m.inside.clone()).collect();
        assert_eq!(
            inside,
            vec![
                PathBuf::from("/run/enclave/lib/libc.so.6"),
                PathBuf::from("/run/enclave/lib/ld-linux-x86-64.so.2")
            ]
        );
        assert!(libs.mounts.iter().all(|m| !m.writable && m.host.is_file()));
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
    }

    #[test]
    fn this_test_binary_has_a_loader() {
        let exe = std::env::current_exe().unwrap();
        if let Some(libs) = launcher_libraries(&exe).unwrap() {
            assert!(libs.interpreter_name.starts_with("ld-"));
        }
    }
}
