//! The default runner: bubblewrap.
//!
//! The sandbox has its own user, pid, network, mount, IPC and UTS namespaces (`--unshare-all`),
//! so no network but loopback inside it — the Enclave API reaches it through a bound unix socket;
//! a read-only view of `/usr` and a few files of `/etc` (no `/etc/shadow`, no `/home`, no `/root`,
//! nothing of the agent's); a private `/tmp`; `/workspace` as its only writable directory; all
//! capabilities dropped; uid/gid 65534 (nobody); a new session (no terminal injection); and death
//! with the agent (`--die-with-parent`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use super::limits::Cgroup;
use super::{
    io_err, supervise, Outcome, OutputLine, Result, SandboxError, SandboxRunner, SandboxSpec,
};

/// Files of `/etc` the sandbox may read (when they exist on the host).
const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
];

/// The bubblewrap runner.
#[derive(Debug)]
pub struct BwrapRunner {
    bwrap: PathBuf,
}

impl BwrapRunner {
    /// Finds `bwrap` on the PATH.
    pub fn new() -> Result<Self> {
        let bwrap = find_on_path("bwrap").ok_or(SandboxError::MissingTool {
            runner: "bwrap",
            tool: "bwrap",
            hint: "install bubblewrap (Debian: apt-get install bubblewrap)",
        })?;
        Ok(BwrapRunner { bwrap })
    }

    /// The bwrap arguments for `spec`, with `etc` holding the generated passwd/group/hosts.
    fn args(&self, spec: &SandboxSpec, etc: &Path) -> Vec<String> {
        let mut a: Vec<String> = [
            "--unshare-all",
            "--unshare-user",
            "--uid",
            "65534",
            "--gid",
            "65534",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "enclave",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut push = |v: &[&str]| a.extend(v.iter().map(|s| s.to_string()));
        push(&["--ro-bind", "/usr", "/usr"]);
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            let p = Path::new(top);
            match std::fs::read_link(p) {
                Ok(target) => push(&["--symlink", &target.to_string_lossy(), top]),
                Err(_) if p.is_dir() => push(&["--ro-bind", top, top]),
                Err(_) => {}
            }
        }
        for f in ETC_FILES {
            if Path::new(f).exists() {
                push(&["--ro-bind", f, f]);
            }
        }
        for f in ["passwd", "group", "hosts"] {
            let host = etc.join(f);
            push(&["--ro-bind", &host.to_string_lossy(), &format!("/etc/{f}")]);
        }
        push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        push(&["--bind", &spec.workspace.to_string_lossy(), "/workspace"]);
        for m in &spec.mounts {
            let how = if m.writable { "--bind" } else { "--ro-bind" };
            push(&[how, &m.host.to_string_lossy(), &m.inside.to_string_lossy()]);
        }
        let workdir = spec
            .workdir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/workspace"));
        push(&["--chdir", &workdir.to_string_lossy(), "--clearenv"]);
        for (k, v) in &spec.env {
            push(&["--setenv", k, v]);
        }
        push(&["--", &spec.program.to_string_lossy()]);
        a.extend(spec.args.iter().cloned());
        a
    }
}

/// Finds an executable on the PATH.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn write_etc(dir: &Path) -> Result<()> {
    let files = [
        (
            "passwd",
            "nobody:x:65534:65534:nobody:/workspace:/usr/sbin/nologin\n",
        ),
        ("group", "nogroup:x:65534:\n"),
        ("hosts", "127.0.0.1 localhost enclave\n::1 localhost\n"),
    ];
    for (name, body) in files {
        std::fs::write(dir.join(name), body)
            .map_err(io_err(format!("cannot write the sandbox's /etc/{name}")))?;
    }
    Ok(())
}

impl SandboxRunner for BwrapRunner {
    fn name(&self) -> &'static str {
        "bwrap"
    }

    fn run<'a>(
        &'a self,
        spec: &'a SandboxSpec,
        output: mpsc::Sender<OutputLine>,
        cancel: watch::Receiver<bool>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome>> + Send + 'a>> {
        Box::pin(async move {
            spec.validate()?;
            let etc = tempfile::Builder::new()
                .prefix("sealroom-sandbox-etc-")
                .tempdir()
                .map_err(io_err("cannot create the sandbox's /etc files"))?;
            write_etc(etc.path())?;
            let cgroup = Cgroup::create(&spec.name, &spec.limits)?;
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c")
                .arg(cgroup.enter_script())
                .arg("sh")
                .arg(&self.bwrap)
                .args(self.args(spec, etc.path()))
                .env_clear()
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let started = Instant::now();
            let child = cmd.spawn().map_err(io_err("cannot start bwrap"))?;
            supervise(child, spec, output, cancel, cgroup, "", started).await
        })
    }
}
