//! The container runner: each run is a container made through the Docker Engine API (Docker, or
//! Podman's compatible service), over the engine's unix socket.
//!
//! The container has no network at all (`NetworkMode: none`: loopback only; the Enclave API
//! comes in through its bound unix socket, as with bwrap); a read-only root file system (the
//! image); all capabilities dropped and `no-new-privileges`; the run's memory limit with swap
//! equal to it (no swap), its vCPUs as `NanoCpus`, a pids limit; a private `/tmp` (tmpfs) and
//! `/workspace` as its only writable directories; the spec's mounts as bind mounts; exactly the
//! spec's environment on top of the image's own `ENV`; no log driver (what the algorithm prints
//! is streamed to the agent, never written to the engine's disk); and a non-root user where the
//! engine allows it (see [`ContainerConfig::user`]).
//!
//! The runner attaches to the container before starting it, so no output is lost; enforces the
//! wall time (SIGKILL) and cancellation (stop with a 2 s grace, then SIGKILL: gone within 5 s);
//! reports `State.OOMKilled` as [`Ending::MemoryLimit`]; and removes the container on every
//! ending, errors and dropped futures included.
//!
//! Runtime Build ([`ContainerRunner::build`]): the package's Dockerfile is built into an image
//! through the API, from the package's plaintext files only ([`crate::package::build_context`]);
//! the run then uses that image, which is removed after it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount as EngineMount, MountType,
};
use bollard::query_parameters::{
    AttachContainerOptions, BuildImageOptions, CreateContainerOptions, KillContainerOptions,
    RemoveContainerOptions, RemoveImageOptions, StopContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch, OnceCell};

use super::{
    forward_lines, BoxFuture, Ending, Outcome, OutputLine, Result, SandboxError, SandboxRunner,
    SandboxSpec, Stream, MAX_OUTPUT,
};
use crate::package;

/// Seconds a request to the engine may take to answer (long waits get their own limit).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// Grace between SIGTERM and SIGKILL when a run is cancelled.
const STOP_GRACE_SECS: i32 = 2;
/// The label every container and built image of this runner carries.
pub const LABEL: &str = "org.sealroom.sandbox";
/// Prefix of the Runtime Build's log lines.
pub const BUILD_PREFIX: &str = "[runtime build] ";

/// How to reach the engine and what to run.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The engine's unix socket; `None` finds one with [`default_socket`].
    pub socket: Option<PathBuf>,
    /// The image for packages that are not built at Runtime Build.
    pub image: String,
    /// `uid:gid` inside the container. `None` picks: `0:0` on a rootless engine (where it is the
    /// agent's own unprivileged user on the host, and can read the agent's private run
    /// directories as bwrap's sandbox user can), `65534:65534` (nobody) on a rootful one, with
    /// the workspace and writable mounts handed to that user and the read-only mounts made
    /// readable by its group (see [`ContainerRunner::grant_access`]).
    pub user: Option<String>,
    /// Most processes and threads in the container.
    pub pids_limit: i64,
    /// The network of Runtime Build's `RUN` steps (`none` to build offline); `None` is the
    /// engine's default. The run itself never has a network.
    pub build_network: Option<String>,
    /// How long Runtime Build may take.
    pub build_timeout: Duration,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            socket: None,
            image: String::new(),
            user: None,
            pids_limit: 4096,
            build_network: None,
            build_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The engine's socket when none is configured: `$DOCKER_HOST` (`unix://` only), else the first
/// that exists of `$XDG_RUNTIME_DIR/podman/podman.sock`, `/run/user/$UID/podman/podman.sock`,
/// `/run/podman/podman.sock`, `/var/run/docker.sock`.
pub fn default_socket() -> Result<PathBuf> {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        return match host.strip_prefix("unix://") {
            Some(path) => Ok(PathBuf::from(path)),
            None => Err(SandboxError::Spec(format!(
                "DOCKER_HOST={host}: the container runner talks to a local engine over a unix socket only (unix:///path)"
            ))),
        };
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(PathBuf::from(dir).join("podman/podman.sock"));
    }
    if let Ok(meta) = std::fs::metadata("/proc/self") {
        candidates.push(PathBuf::from(format!(
            "/run/user/{}/podman/podman.sock",
            meta.uid()
        )));
    }
    candidates.push(PathBuf::from("/run/podman/podman.sock"));
    candidates.push(PathBuf::from("/var/run/docker.sock"));
    candidates
        .into_iter()
        .find(|p| p.exists())
        .ok_or(SandboxError::MissingTool {
            runner: "container",
            tool: "a Docker or Podman API socket",
            hint: "start `podman system service` or Docker, or name the socket (--container-socket / DOCKER_HOST=unix:///path)",
        })
}

/// The container runner.
#[derive(Debug)]
pub struct ContainerRunner {
    socket: PathBuf,
    image: String,
    config: ContainerConfig,
    /// The client, its API version negotiated on first use.
    docker: OnceCell<Docker>,
    /// Whether `image` was built at Runtime Build (and is removed by [`SandboxRunner::release`]).
    built: bool,
}

impl ContainerRunner {
    /// A runner for the engine at `config.socket` (or [`default_socket`]). Connects lazily.
    pub fn new(config: ContainerConfig) -> Result<Self> {
        let socket = match &config.socket {
            Some(s) => s.clone(),
            None => default_socket()?,
        };
        if !socket.exists() {
            return Err(SandboxError::Spec(format!(
                "no container engine socket at {} (start `podman system service` or Docker)",
                socket.display()
            )));
        }
        if config.image.is_empty() {
            return Err(SandboxError::Spec(
                "the container runner needs an image for packages without a Dockerfile".into(),
            ));
        }
        Ok(ContainerRunner {
            socket,
            image: config.image.clone(),
            config,
            docker: OnceCell::new(),
            built: false,
        })
    }

    /// The engine's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The image runs start from.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The same engine and settings, running `image`.
    pub fn with_image(&self, image: impl Into<String>) -> ContainerRunner {
        ContainerRunner {
            socket: self.socket.clone(),
            image: image.into(),
            config: self.config.clone(),
            docker: self.docker.clone(),
            built: false,
        }
    }

    fn engine_err(
        &self,
        context: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> SandboxError + '_ {
        let context = context.into();
        move |e| SandboxError::Engine {
            socket: self.socket.display().to_string(),
            context,
            source: Box::new(e),
        }
    }

    /// The client, connected and with the API version both sides speak.
    pub async fn docker(&self) -> Result<&Docker> {
        self.docker
            .get_or_try_init(|| async {
                let path = self.socket.to_string_lossy();
                let docker = Docker::connect_with_unix(
                    &path,
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(self.engine_err("cannot connect"))?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(self.engine_err("cannot agree on an API version"))
            })
            .await
    }

    /// Runtime Build: builds `package`'s Dockerfile into an image from its plaintext files
    /// ([`package::build_context`]) and returns the image's id. The build's log goes to `log`,
    /// each line prefixed with [`BUILD_PREFIX`].
    pub async fn build(&self, package: &Path, log: &mpsc::Sender<OutputLine>) -> Result<String> {
        let dir = package.to_path_buf();
        let context = tokio::task::spawn_blocking(move || package::build_context(&dir))
            .await
            .map_err(|e| SandboxError::Build(format!("packing the build context: {e}")))?
            .map_err(|e| SandboxError::Build(e.to_string()))?;
        let docker = self
            .docker()
            .await?
            .clone()
            .with_timeout(self.config.build_timeout);
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            rm: true,
            forcerm: true,
            networkmode: self.config.build_network.clone(),
            labels: Some(HashMap::from([(LABEL.to_owned(), "build".to_owned())])),
            ..Default::default()
        };
        let mut stream = docker.build_image(
            options,
            None,
            Some(bollard::body_full(bytes::Bytes::from(context))),
        );
        let mut id: Option<String> = None;
        let mut sent = 0usize;
        let mut last_lines: Vec<String> = Vec::new();
        let deadline = tokio::time::sleep(self.config.build_timeout);
        tokio::pin!(deadline);
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                _ = &mut deadline => {
                    return Err(SandboxError::Build(format!(
                        "it took longer than {} s", self.config.build_timeout.as_secs()
                    )));
                }
            };
            let Some(item) = item else { break };
            let failed = |message: &str, last_lines: &[String]| {
                let message = message.trim();
                SandboxError::Build(if last_lines.is_empty() {
                    message.to_owned()
                } else {
                    format!("{message} (last lines: {})", last_lines.join(" | "))
                })
            };
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(failed(&error, &last_lines))
                }
                Err(e) => return Err(self.engine_err("building the image")(e)),
            };
            if let Some(detail) = info.error_detail {
                return Err(failed(&detail.message.unwrap_or_default(), &last_lines));
            }
            if let Some(aux) = info.aux.and_then(|a| a.id) {
                id = Some(aux);
            }
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    if let Some(rest) = line.trim().strip_prefix("Successfully built ") {
                        id.get_or_insert_with(|| rest.trim().to_owned());
                    }
                    let mut line = line.to_owned();
                    line.truncate(super::MAX_LINE);
                    last_lines.push(line.clone());
                    if last_lines.len() > 5 {
                        last_lines.remove(0);
                    }
                    sent += line.len();
                    if sent <= MAX_OUTPUT {
                        let _ = log
                            .send(OutputLine {
                                stream: Stream::Stdout,
                                line: format!("{BUILD_PREFIX}{line}"),
                            })
                            .await;
                    }
                }
            }
        }
        id.ok_or_else(|| {
            SandboxError::Build("the engine reported no image id for the build".into())
        })
    }

    /// The container's user: the configured one, or one picked for the engine (see
    /// [`ContainerConfig::user`]).
    async fn user(&self, docker: &Docker) -> Result<String> {
        if let Some(u) = &self.config.user {
            return Ok(u.clone());
        }
        let info = docker
            .info()
            .await
            .map_err(self.engine_err("cannot read the engine's info"))?;
        let rootless = info
            .security_options
            .unwrap_or_default()
            .iter()
            .any(|o| o.split(',').any(|kv| kv == "name=rootless"));
        Ok(if rootless { "0:0" } else { "65534:65534" }.to_owned())
    }

    /// On a rootful engine the container's user is a real user of the host: gives it the
    /// workspace and the writable mounts (the API socket), and lets its group read the top of
    /// each read-only mount that it could not read, by owner or, where the agent may not
    /// change owners, by mode.
    pub fn grant_access(spec: &SandboxSpec, user: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let Some((uid, gid)) = parse_ids(user) else {
            return Ok(()); // a user name: the image decides; nothing to hand over
        };
        if uid == 0 {
            return Ok(());
        }
        let chmod = |p: &Path, add: u32| -> Result<()> {
            let meta = std::fs::metadata(p).map_err(super::io_err(format!(
                "cannot read {} to share it with the container",
                p.display()
            )))?;
            let mode = meta.permissions().mode();
            if mode & add != add {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | add)).map_err(
                    super::io_err(format!("cannot share {} with the container", p.display())),
                )?;
            }
            Ok(())
        };
        let mut writable: Vec<&Path> = vec![&spec.workspace];
        writable.extend(
            spec.mounts
                .iter()
                .filter(|m| m.writable)
                .map(|m| m.host.as_path()),
        );
        for p in writable {
            if std::os::unix::fs::chown(p, Some(uid), Some(gid)).is_err() {
                let add = if p.is_dir() { 0o777 } else { 0o666 };
                chmod(p, add)?;
            }
        }
        for m in spec.mounts.iter().filter(|m| !m.writable) {
            let meta = std::fs::metadata(&m.host).map_err(super::io_err(format!(
                "cannot read the mount {}",
                m.host.display()
            )))?;
            let need = if meta.is_dir() { 0o5 } else { 0o4 };
            let mode = meta.permissions().mode();
            let readable = mode & need == need
                || (meta.uid() == uid && mode & (need << 6) == need << 6)
                || (meta.gid() == gid && mode & (need << 3) == need << 3);
            if readable {
                continue;
            }
            if std::os::unix::fs::chown(&m.host, None, Some(gid)).is_ok() {
                chmod(&m.host, need << 3)?;
            } else {
                chmod(&m.host, need)?;
            }
        }
        Ok(())
    }

    /// The container's creation request for `spec`.
    fn create_body(&self, spec: &SandboxSpec, user: String) -> ContainerCreateBody {
        let bind = |host: &Path, inside: &Path, writable: bool| EngineMount {
            target: Some(inside.to_string_lossy().into_owned()),
            source: Some(host.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(!writable),
            ..Default::default()
        };
        let mut mounts = vec![bind(&spec.workspace, Path::new("/workspace"), true)];
        mounts.extend(
            spec.mounts
                .iter()
                .map(|m| bind(&m.host, &m.inside, m.writable)),
        );
        let memory = i64::try_from(spec.limits.memory_bytes).unwrap_or(i64::MAX);
        let host_config = HostConfig {
            network_mode: Some("none".into()),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::from(spec.limits.vcpus) * 1_000_000_000),
            pids_limit: Some(self.config.pids_limit),
            ipc_mode: Some("private".into()),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,nosuid,nodev,mode=1777,size={memory}"),
            )])),
            mounts: Some(mounts),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            auto_remove: Some(false),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: Some("enclave".into()),
            user: Some(user),
            entrypoint: Some(vec![spec.program.to_string_lossy().into_owned()]),
            cmd: Some(spec.args.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(
                spec.workdir
                    .as_deref()
                    .unwrap_or(Path::new("/workspace"))
                    .to_string_lossy()
                    .into_owned(),
            ),
            attach_stdin: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(false),
            tty: Some(false),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(LABEL.to_owned(), spec.name.clone())])),
            stop_timeout: Some(i64::from(STOP_GRACE_SECS)),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    async fn run_container(
        &self,
        spec: &SandboxSpec,
        output: mpsc::Sender<OutputLine>,
        cancel: watch::Receiver<bool>,
    ) -> Result<Outcome> {
        spec.validate()?;
        let docker = self.docker().await?;
        let user = self.user(docker).await?;
        Self::grant_access(spec, &user)?;
        let name = format!("sealroom-{}-{}", spec.name, unique_suffix());
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                self.create_body(spec, user),
            )
            .await
            .map_err(self.engine_err(format!("cannot create a container from {}", self.image)))?;
        let mut guard = Removal {
            docker: Some(docker.clone()),
            id: created.id.clone(),
        };
        let result = self
            .supervise(docker, &created.id, spec, output, cancel)
            .await;
        let removed = tokio::time::timeout(Duration::from_secs(10), remove(docker, &created.id))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        if removed.is_ok() {
            guard.docker = None;
        }
        result
    }

    async fn supervise(
        &self,
        docker: &Docker,
        id: &str,
        spec: &SandboxSpec,
        output: mpsc::Sender<OutputLine>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<Outcome> {
        let attached = docker
            .attach_container(
                id,
                Some(AttachContainerOptions {
                    stream: true,
                    stdout: true,
                    stderr: true,
                    // Attached before the start, nothing is missed; and with no log driver
                    // there is no log to replay.
                    logs: false,
                    ..Default::default()
                }),
            )
            .await
            .map_err(self.engine_err("cannot attach to the container"))?;
        // The engine sends output in frames, not lines: each stream goes through a pipe into the
        // same line bounding as the other runners.
        let budget = Arc::new(AtomicUsize::new(0));
        let (mut out_w, out_r) = tokio::io::duplex(64 * 1024);
        let (mut err_w, err_r) = tokio::io::duplex(64 * 1024);
        let pumps = [
            tokio::spawn(forward_lines(
                out_r,
                Stream::Stdout,
                output.clone(),
                "",
                budget.clone(),
            )),
            tokio::spawn(forward_lines(
                err_r,
                Stream::Stderr,
                output.clone(),
                "",
                budget.clone(),
            )),
        ];
        let mut frames = attached.output;
        let demux = tokio::spawn(async move {
            while let Some(Ok(frame)) = frames.next().await {
                let _ = match frame {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        out_w.write_all(&message).await
                    }
                    LogOutput::StdErr { message } => err_w.write_all(&message).await,
                    LogOutput::StdIn { .. } => Ok(()),
                };
            }
        });

        let started = Instant::now();
        docker
            .start_container(id, None)
            .await
            .map_err(self.engine_err("cannot start the container"))?;
        // Waiting may take the whole wall time: it gets its own request limit.
        let waiter = docker
            .clone()
            .with_timeout(spec.limits.wall_time + Duration::from_secs(300));
        // The engine's `OOMKilled` is not reliable everywhere (Podman with cgroup v1 misses it):
        // where the container's cgroup is visible from here, watch its OOM-kill counter and peak
        // memory too, until the engine removes it.
        let mut memory = MemoryWatch::find(docker, id).await;
        let mut sample = tokio::time::interval(Duration::from_millis(100));
        let wait = waiter.wait_container(
            id,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        tokio::pin!(wait);
        let deadline = tokio::time::sleep(spec.limits.wall_time);
        tokio::pin!(deadline);
        let mut forced: Option<Ending> = None;
        let mut kill_at: Option<Instant> = None;
        loop {
            if *cancel.borrow() && forced.is_none() {
                forced = Some(Ending::Cancelled);
                // SIGTERM, SIGKILL after the grace (the engine does both); our own SIGKILL
                // below if the engine is slow about it.
                let (d, i) = (docker.clone(), id.to_owned());
                tokio::spawn(async move {
                    let _ = d
                        .stop_container(
                            &i,
                            Some(StopContainerOptions {
                                t: Some(STOP_GRACE_SECS),
                                signal: None,
                            }),
                        )
                        .await;
                });
                kill_at = Some(Instant::now() + Duration::from_secs(STOP_GRACE_SECS as u64 + 1));
            }
            let kill_timer = tokio::time::sleep_until(
                kill_at
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
                    .into(),
            );
            tokio::select! {
                _ = wait.next() => break,
                _ = sample.tick(), if memory.is_some() => {
                    if let Some(m) = memory.as_mut() {
                        m.sample();
                    }
                }
                _ = &mut deadline, if forced.is_none() => {
                    forced = Some(Ending::TimedOut);
                    kill(docker, id).await;
                }
                _ = kill_timer, if kill_at.is_some() => {
                    kill_at = None;
                    kill(docker, id).await;
                }
                changed = cancel.changed(), if forced.is_none() => {
                    if changed.is_err() {
                        // The sender is gone: nobody can cancel any more. Keep waiting.
                        let (_tx, rx) = watch::channel(false);
                        cancel = rx;
                    }
                }
            }
        }
        if let Some(m) = memory.as_mut() {
            m.sample();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), demux).await;
        for pump in pumps {
            let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
        }
        let duration = started.elapsed();
        let inspected = docker
            .inspect_container(id, None)
            .await
            .map_err(self.engine_err("cannot inspect the container"))?;
        let state = inspected.state.unwrap_or_default();
        if state.running == Some(true) {
            return Err(SandboxError::Engine {
                socket: self.socket.display().to_string(),
                context: "waiting for the container".into(),
                source: "the engine stopped waiting while the container still runs".into(),
            });
        }
        let oom_seen = memory.as_ref().is_some_and(|m| m.oom_killed);
        let ending = match forced {
            Some(e) => e,
            None if state.oom_killed == Some(true) || oom_seen => Ending::MemoryLimit,
            None => Ending::Exited(
                state
                    .exit_code
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(-1),
            ),
        };
        Ok(Outcome {
            ending,
            duration,
            peak_memory_bytes: memory.and_then(|m| m.peak),
        })
    }
}

/// The container's memory cgroup, as this host sees it.
#[derive(Debug)]
struct MemoryWatch {
    dir: PathBuf,
    v2: bool,
    oom_killed: bool,
    peak: Option<u64>,
}

impl MemoryWatch {
    /// Finds the cgroup of the container's first process; `None` where it cannot be seen (an
    /// engine in another machine or pid namespace, a process already gone).
    async fn find(docker: &Docker, id: &str) -> Option<MemoryWatch> {
        let pid = docker
            .inspect_container(id, None)
            .await
            .ok()?
            .state?
            .pid
            .filter(|p| *p > 0)?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        Self::from_proc_cgroup(&text, Path::new("/sys/fs/cgroup"))
    }

    fn from_proc_cgroup(text: &str, root: &Path) -> Option<MemoryWatch> {
        let mut v2 = None;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(hier), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let rel = path.trim_start_matches('/');
            if controllers.split(',').any(|c| c == "memory") {
                let dir = root.join("memory").join(rel);
                if dir.join("memory.oom_control").exists() {
                    return Some(MemoryWatch::new(dir, false));
                }
            } else if hier == "0" && controllers.is_empty() {
                v2 = ["", "unified"]
                    .iter()
                    .map(|sub| root.join(sub).join(rel))
                    .find(|d| d.join("memory.events").exists());
            }
        }
        v2.map(|dir| MemoryWatch::new(dir, true))
    }

    fn new(dir: PathBuf, v2: bool) -> MemoryWatch {
        let mut m = MemoryWatch {
            dir,
            v2,
            oom_killed: false,
            peak: None,
        };
        m.sample();
        m
    }

    /// Reads the OOM-kill counter and the peak while the cgroup exists.
    fn sample(&mut self) {
        let (events, peak) = if self.v2 {
            ("memory.events", "memory.peak")
        } else {
            ("memory.oom_control", "memory.max_usage_in_bytes")
        };
        if let Ok(text) = std::fs::read_to_string(self.dir.join(events)) {
            self.oom_killed |= text
                .lines()
                .filter_map(|l| l.strip_prefix("oom_kill "))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .any(|n| n > 0);
        }
        if let Some(p) = std::fs::read_to_string(self.dir.join(peak))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            self.peak = Some(self.peak.map_or(p, |old| old.max(p)));
        }
    }
}

/// `uid:gid` (or `uid`) as numbers.
fn parse_ids(user: &str) -> Option<(u32, u32)> {
    let (u, g) = user.split_once(':').unwrap_or((user, user));
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// A suffix that keeps container names of the same run name apart.
fn unique_suffix() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos:08x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn kill(docker: &Docker, id: &str) {
    let _ = docker
        .kill_container(
            id,
            Some(KillContainerOptions {
                signal: "SIGKILL".into(),
            }),
        )
        .await;
}

async fn remove(docker: &Docker, id: &str) -> std::result::Result<(), String> {
    docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| e.to_string())
}

/// Removes the container if the run's future is dropped before it could.
struct Removal {
    docker: Option<Docker>,
    id: String,
}

impl Drop for Removal {
    fn drop(&mut self) {
        if let (Some(docker), Ok(handle)) =
            (self.docker.take(), tokio::runtime::Handle::try_current())
        {
            let id = std::mem::take(&mut self.id);
            handle.spawn(async move {
                let _ = remove(&docker, &id).await;
            });
        }
    }
}

impl SandboxRunner for ContainerRunner {
    fn name(&self) -> &'static str {
        "container"
    }

    fn shares_host_system(&self) -> bool {
        false
    }

    fn run<'a>(
        &'a self,
        spec: &'a SandboxSpec,
        output: mpsc::Sender<OutputLine>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(self.run_container(spec, output, cancel))
    }

    fn runtime_build<'a>(
        &'a self,
        package: &'a Path,
        log: mpsc::Sender<OutputLine>,
    ) -> BoxFuture<'a, Result<Option<Arc<dyn SandboxRunner>>>> {
        Box::pin(async move {
            if !package.join("Dockerfile").is_file() {
                return Ok(None);
            }
            let id = self.build(package, &log).await?;
            let mut bound = self.with_image(id);
            bound.built = true;
            Ok(Some(Arc::new(bound) as Arc<dyn SandboxRunner>))
        })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.built {
                return;
            }
            if let Ok(docker) = self.docker().await {
                let _ = docker
                    .remove_image(
                        &self.image,
                        Some(RemoveImageOptions {
                            force: true,
                            ..Default::default()
                        }),
                        None,
                    )
                    .await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_suffixes() {
        assert_eq!(parse_ids("65534:65534"), Some((65534, 65534)));
        assert_eq!(parse_ids("1000"), Some((1000, 1000)));
        assert_eq!(parse_ids("nobody"), None);
        assert_ne!(unique_suffix(), unique_suffix());
    }

    #[test]
    fn cgroup_paths() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("memory/libpod_parent/libpod-abc");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(v1.join("memory.max_usage_in_bytes"), "1000\n").unwrap();
        let m = MemoryWatch::from_proc_cgroup(
            "8:pids:/libpod_parent/libpod-abc\n4:memory:/libpod_parent/libpod-abc\n0::/\n",
            root.path(),
        )
        .unwrap();
        assert!(!m.v2 && m.oom_killed);
        assert_eq!(m.peak, Some(1000));

        let v2 = root.path().join("system.slice/ctr");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.events"), "low 0\noom 1\noom_kill 0\n").unwrap();
        let m = MemoryWatch::from_proc_cgroup("0::/system.slice/ctr\n", root.path()).unwrap();
        assert!(m.v2 && !m.oom_killed);
        assert!(MemoryWatch::from_proc_cgroup("0::/elsewhere\n", root.path()).is_none());
    }

    #[test]
    fn no_socket_is_a_clear_error() {
        let err = ContainerRunner::new(ContainerConfig {
            socket: Some("/nonexistent/podman.sock".into()),
            image: "x".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/podman.sock"),
            "{err}"
        );
    }
}
