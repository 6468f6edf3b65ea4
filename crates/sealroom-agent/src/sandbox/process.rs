//! The unsandboxed runner, for development only: the program runs as the agent's user with the
//! agent's view of the file system and network. Only the memory/CPU/time limits apply. It refuses
//! to start unless the operator acknowledged it with `--insecure-no-sandbox`, and every output
//! line it forwards is prefixed with a warning.

use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use super::limits::Cgroup;
use super::{
    io_err, supervise, Outcome, OutputLine, Result, SandboxError, SandboxRunner, SandboxSpec,
};

/// The prefix of every line this runner forwards.
pub const WARNING: &str = "[INSECURE: no sandbox] ";

/// Runs programs without isolation.
#[derive(Debug)]
pub struct ProcessRunner(());

impl ProcessRunner {
    /// Refuses unless `insecure_no_sandbox` is true.
    pub fn new(insecure_no_sandbox: bool) -> Result<Self> {
        if insecure_no_sandbox {
            Ok(ProcessRunner(()))
        } else {
            Err(SandboxError::InsecureNotAcknowledged)
        }
    }
}

impl SandboxRunner for ProcessRunner {
    fn name(&self) -> &'static str {
        "process (INSECURE: no sandbox)"
    }

    fn run<'a>(
        &'a self,
        spec: &'a SandboxSpec,
        output: mpsc::Sender<OutputLine>,
        cancel: watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome>> + Send + 'a>> {
        Box::pin(async move {
            spec.validate()?;
            let cgroup = Cgroup::create(&spec.name, &spec.limits)?;
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c")
                .arg(cgroup.enter_script())
                .arg("sh")
                .arg(&spec.program)
                .args(&spec.args)
                .env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .current_dir(
                    spec.workdir
                        .clone()
                        .unwrap_or_else(|| spec.workspace.clone()),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let started = Instant::now();
            let child = cmd.spawn().map_err(io_err("cannot start the program"))?;
            supervise(child, spec, output, cancel, cgroup, WARNING, started).await
        })
    }
}
