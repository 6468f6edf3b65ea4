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
    // Runtime Build: the image this package runs in, where the runner builds one.
    let built = runner.runtime_build(&req.package, output.clone()).await?;
    let runner: &dyn SandboxRunner = built.as_deref().unwrap_or(runner);
    let result = run_built(req, runner, entrypoint, output, cancel).await;
    if let Some(b) = &built {
        b.release().await;
    }
    result
}

async fn run_built(
    req: RunRequest,
    runner: &dyn SandboxRunner,
    entrypoint: Entrypoint,
    output: mpsc::Sender<OutputLine>,
    cancel: watch::Receiver<bool>,
) -> Result<RunResult, RunError> {
    let run_dir = memory_dir("sealroom-api-")?;
    let workspace = memory_dir("sealroom-ws-")?;
    let sock = run_dir.path().join("api.sock");
    let listener = tokio::net::UnixListener::bind(&sock)
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
