//! Sandbox runners: start an entrypoint with no network, a read-only view of the system, its own
//! scratch space, and the run's memory, CPU and time limits; stream its output; report how it
//! ended.
//!
//! One joint, several built-ins (STYLE.md habit 1): [`SandboxRunner`] with
//! [`bwrap::BwrapRunner`], [`container::ContainerRunner`] (Docker Engine API: Docker or Podman)
//! and [`process::ProcessRunner`]; [`runner`] builds one from a [`RunnerKind`].

pub mod bwrap;
pub mod container;
pub mod limits;
pub mod process;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};

/// Errors starting or supervising a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A tool the runner needs is missing (e.g. `bwrap`).
    #[error("the {runner} sandbox needs {tool}, which was not found: {hint}")]
    MissingTool {
        runner: &'static str,
        tool: &'static str,
        hint: &'static str,
    },
    /// The unsandboxed runner was asked for without the explicit acknowledgement.
    #[error("the process runner has no isolation at all; it only starts with --insecure-no-sandbox (development only)")]
    InsecureNotAcknowledged,
    /// Limits cannot be enforced on this machine.
    #[error("cannot enforce the run's limits: {0}")]
    Limits(String),
    /// The specification is unusable.
    #[error("invalid sandbox specification: {0}")]
    Spec(String),
    /// Starting or waiting for the process failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The container engine (Docker or Podman, through its API) refused or failed a request.
    #[error("container engine at {socket}: {context}: {source}")]
    Engine {
        socket: String,
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Runtime Build: the package's Dockerfile could not be built into an image.
    #[error("runtime build failed: {0}")]
    Build(String),
}

/// Result alias for sandbox operations.
pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let context = context.into();
    move |source| SandboxError::Io { context, source }
}

/// The resources a run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory (RAM) in bytes, all processes of the sandbox together.
    pub memory_bytes: u64,
    /// CPUs' worth of CPU time per second (1 = one core).
    pub vcpus: u32,
    /// Wall-clock time from start to kill.
    pub wall_time: Duration,
}

/// A host path made visible inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Path on the host.
    pub host: PathBuf,
    /// Path inside the sandbox.
    pub inside: PathBuf,
    /// Whether the sandbox may write to it.
    pub writable: bool,
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// An identifier for logs and cgroup names (letters, digits, `-`, `_`).
    pub name: String,
    /// The program to execute, as a path inside the sandbox.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The complete environment (nothing is inherited from the agent).
    pub env: Vec<(String, String)>,
    /// The writable scratch directory (memory-backed on the host), at `/workspace` inside.
    pub workspace: PathBuf,
    /// Further mounts: the decrypted package (read-only), the Enclave API socket, ...
    pub mounts: Vec<Mount>,
    /// Working directory inside the sandbox (default `/workspace`).
    pub workdir: Option<PathBuf>,
    /// Resource limits.
    pub limits: Limits,
}

impl SandboxSpec {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SandboxError::Spec(format!(
                "name {:?} must be 1-64 letters, digits, '-' or '_'",
                self.name
            )));
        }
        if !self.workspace.is_dir() {
            return Err(SandboxError::Spec(format!(
                "workspace {} is not a directory",
                self.workspace.display()
            )));
        }
        if self.limits.memory_bytes < 16 << 20 {
            return Err(SandboxError::Spec("memory limit below 16 MiB".into()));
        }
        if self.limits.vcpus == 0 {
            return Err(SandboxError::Spec("vCPU limit of 0".into()));
        }
        for m in &self.mounts {
            if !m.inside.is_absolute() {
                return Err(SandboxError::Spec(format!(
                    "mount point {} must be absolute",
                    m.inside.display()
                )));
            }
        }
        Ok(())
    }
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line the sandboxed program printed (cut at [`MAX_LINE`] bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// Where it came from.
    pub stream: Stream,
    /// The text, lossily decoded as UTF-8, without the newline.
    pub line: String,
}

/// Longest line forwarded; longer lines are cut and marked.
pub const MAX_LINE: usize = 16 * 1024;
/// Total output forwarded per run; the rest is counted and dropped.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// How a sandboxed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The program exited with this code.
    Exited(i32),
    /// The program was killed by this signal (not by the runner).
    Signaled(i32),
    /// Killed by the runner at the wall-time limit.
    TimedOut,
    /// Killed because it reached its memory limit.
    MemoryLimit,
    /// Killed because the run was cancelled.
    Cancelled,
}

impl Ending {
    /// Whether the program itself finished successfully.
    pub fn success(&self) -> bool {
        matches!(self, Ending::Exited(0))
    }
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(c) => write!(f, "exited with code {c}"),
            Ending::Signaled(s) => write!(f, "killed by signal {s}"),
            Ending::TimedOut => f.write_str("killed at its time limit"),
            Ending::MemoryLimit => f.write_str("killed at its memory limit"),
            Ending::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// Wall-clock duration.
    pub duration: Duration,
    /// Peak memory of the sandbox, where the limit mechanism reports it.
    pub peak_memory_bytes: Option<u64>,
}

/// A boxed future, as the object-safe [`SandboxRunner`] returns them.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Starts programs in a sandbox.
pub trait SandboxRunner: Send + Sync + std::fmt::Debug {
    /// A short name: `bwrap`, `process`, ...
    fn name(&self) -> &'static str;

    /// Whether the sandbox's system (`/usr`, `/lib`) is the host's, read-only. When it is not
    /// (a container image), a program bound in from the host must bring its shared libraries
    /// along (see [`crate::enclave`]).
    fn shares_host_system(&self) -> bool {
        true
    }

    /// Runtime Build: prepares what `package` needs before its sandbox starts, and returns the
    /// runner to start it with when that is not `self`. The container runner builds the
    /// package's Dockerfile into an image here (its build log goes to `log`); the others have
    /// nothing to build.
    fn runtime_build<'a>(
        &'a self,
        package: &'a Path,
        log: mpsc::Sender<OutputLine>,
    ) -> BoxFuture<'a, Result<Option<Arc<dyn SandboxRunner>>>> {
        let _ = (package, log);
        Box::pin(async { Ok(None) })
    }

    /// Frees what [`SandboxRunner::runtime_build`] made (the built image), after the run.
    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Runs `spec` to its end: streams output lines to `output`, enforces the limits, and stops
    /// the program when `cancel` turns true.
    fn run<'a>(
        &'a self,
        spec: &'a SandboxSpec,
        output: mpsc::Sender<OutputLine>,
        cancel: watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome>> + Send + 'a>>;
}

/// The runners built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerKind {
    /// bubblewrap: namespaces, no network, read-only system. The default.
    Bwrap,
    /// A container through the Docker Engine API (Docker or Podman): no network, read-only
    /// image, all capabilities dropped.
    Container {
        /// The engine's unix socket; `None` finds one ([`container::default_socket`]).
        socket: Option<PathBuf>,
        /// The image a package without a Dockerfile runs in (e.g. `python:3.11-slim`); a
        /// package with one is built at Runtime Build.
        image: String,
    },
    /// No isolation at all. Development only.
    Process {
        /// Must be true: the operator passed `--insecure-no-sandbox`.
        insecure_no_sandbox: bool,
    },
}

/// Builds a runner.
pub fn runner(kind: RunnerKind) -> Result<Arc<dyn SandboxRunner>> {
    match kind {
        RunnerKind::Bwrap => Ok(Arc::new(bwrap::BwrapRunner::new()?)),
        RunnerKind::Container { socket, image } => Ok(Arc::new(container::ContainerRunner::new(
            container::ContainerConfig {
                socket,
                image,
                ..Default::default()
            },
        )?)),
        RunnerKind::Process {
            insecure_no_sandbox,
        } => Ok(Arc::new(process::ProcessRunner::new(insecure_no_sandbox)?)),
    }
}

/// Forwards lines from a child's stream, bounding line length and total volume.
async fn forward_lines<R: AsyncRead + Unpin>(
    reader: R,
    stream: Stream,
    output: mpsc::Sender<OutputLine>,
    prefix: &'static str,
    budget: Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line_bounded(&mut reader, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let cut = buf.len() > MAX_LINE;
        buf.truncate(MAX_LINE);
        let mut line = format!("{prefix}{}", String::from_utf8_lossy(&buf));
        if cut {
            line.push_str(" [line cut at 16 KiB]");
        }
        let used = budget.fetch_add(line.len(), Ordering::Relaxed);
        if used > MAX_OUTPUT {
            continue; // keep draining so the program does not block on a full pipe
        }
        if output.send(OutputLine { stream, line }).await.is_err() {
            // Nobody listens any more; keep draining.
        }
    }
}

/// Reads one line (without its newline), keeping at most `MAX_LINE + 1` bytes of it.
async fn read_line_bounded<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        let room = (MAX_LINE + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = done.unwrap_or(available.len());
        total += consumed;
        reader.consume(consumed);
        if done.is_some() {
            return Ok(total);
        }
    }
}

/// Supervises a started child: output, wall time, cancellation, memory limit; cleans up.
pub(crate) async fn supervise(
    mut child: Child,
    spec: &SandboxSpec,
    output: mpsc::Sender<OutputLine>,
    mut cancel: watch::Receiver<bool>,
    cgroup: limits::Cgroup,
    prefix: &'static str,
    started: Instant,
) -> Result<Outcome> {
    let budget = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(forward_lines(
            out,
            Stream::Stdout,
            output.clone(),
            prefix,
            budget.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(forward_lines(
            err,
            Stream::Stderr,
            output.clone(),
            prefix,
            budget.clone(),
        )));
    }
    let deadline = tokio::time::sleep(spec.limits.wall_time);
    tokio::pin!(deadline);
    let mut forced: Option<Ending> = None;
    let status = loop {
        if *cancel.borrow() && forced.is_none() {
            forced = Some(Ending::Cancelled);
            let _ = child.start_kill();
            cgroup.kill_all();
        }
        tokio::select! {
            status = child.wait() => break status.map_err(io_err("waiting for the sandbox"))?,
            _ = &mut deadline, if forced.is_none() => {
                forced = Some(Ending::TimedOut);
                let _ = child.start_kill();
                cgroup.kill_all();
            }
            changed = cancel.changed(), if forced.is_none() => {
                if changed.is_err() {
                    // The sender is gone: nobody can cancel any more. Keep waiting.
                    let (_tx, rx) = watch::channel(false);
                    cancel = rx;
                }
            }
        }
    };
    // Whatever is left in the sandbox's cgroup dies with it.
    cgroup.kill_all();
    for pump in pumps {
        let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
    }
    let oom = cgroup.oom_killed();
    let peak = cgroup.peak_memory();
    cgroup.remove();
    use std::os::unix::process::ExitStatusExt;
    let ending = match forced {
        Some(e) => e,
        None if oom => Ending::MemoryLimit,
        None => match (status.code(), status.signal()) {
            (Some(c), _) => Ending::Exited(c),
            (None, Some(9)) if oom => Ending::MemoryLimit,
            (None, Some(s)) => Ending::Signaled(s),
            (None, None) => Ending::Signaled(0),
        },
    };
    Ok(Outcome {
        ending,
        duration: started.elapsed(),
        peak_memory_bytes: peak,
    })
}
