//! The container runner against a real engine: Podman's Docker-compatible API service and the
//! local base image `localhost/sealroom-python:test`, both from scripts/setup/70-podman.sh.
//! `SEALROOM_PODMAN_SOCKET` names the socket (scripts/test sets it); without it these tests say
//! so loudly and pass without running.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sealroom_agent::sandbox::container::{ContainerConfig, ContainerRunner, BUILD_PREFIX, LABEL};
use sealroom_agent::sandbox::{
    Ending, Limits, Mount, Outcome, OutputLine, SandboxRunner, SandboxSpec, Stream,
};
use tokio::sync::{mpsc, watch};

fn runner() -> Option<ContainerRunner> {
    let Some(socket) = std::env::var_os("SEALROOM_PODMAN_SOCKET") else {
        eprintln!(
            "\n!!! SKIPPED: SEALROOM_PODMAN_SOCKET is not set, so the container runner was NOT \
             tested. Run scripts/setup/70-podman.sh and source target/test-env.sh. !!!\n"
        );
        return None;
    };
    let image = std::env::var("SEALROOM_PODMAN_IMAGE")
        .unwrap_or_else(|_| "localhost/sealroom-python:test".into());
    Some(
        ContainerRunner::new(ContainerConfig {
            socket: Some(PathBuf::from(socket)),
            image,
            ..Default::default()
        })
        .expect("container runner"),
    )
}

fn spec(name: &str, workspace: &Path, code: &str) -> SandboxSpec {
    SandboxSpec {
        name: format!("ctest-{name}"),
        program: PathBuf::from("/usr/bin/python3"),
        args: vec!["-c".into(), code.into()],
        env: vec![
            ("ESCROW_RUN_ID".into(), "run-1".into()),
            ("PATH".into(), "/usr/bin:/bin".into()),
        ],
        workspace: workspace.to_path_buf(),
        mounts: vec![],
        workdir: None,
        limits: Limits {
            memory_bytes: 256 << 20,
            vcpus: 1,
            wall_time: Duration::from_secs(60),
        },
    }
}

async fn run(r: &dyn SandboxRunner, spec: &SandboxSpec) -> (Outcome, Vec<OutputLine>) {
    let (tx, mut rx) = mpsc::channel(4096);
    let (_cancel_tx, cancel) = watch::channel(false);
    let outcome = r.run(spec, tx, cancel).await.expect("run");
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    (outcome, lines)
}

fn stdout(lines: &[OutputLine]) -> String {
    lines
        .iter()
        .filter(|l| l.stream == Stream::Stdout)
        .map(|l| l.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Containers of this runner still known to the engine, for `name` (the spec's name). A plain
/// HTTP/1.0 request: Podman reports states (`stopped`) that the Docker API types do not know.
async fn leftovers(r: &ContainerRunner, name: &str) -> Vec<String> {
    use std::io::{Read, Write};
    let filters = serde_json::json!({ "label": [format!("{LABEL}={name}")] }).to_string();
    let query: String = filters
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut c = std::os::unix::net::UnixStream::connect(r.socket()).unwrap();
    write!(
        c,
        "GET /containers/json?all=true&filters={query} HTTP/1.0\r\nHost: engine\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    c.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    list.iter()
        .map(|c| format!("{} {}", c["Id"], c["State"]))
        .collect()
}

/// The host's own address on its main interface (no packet is sent to find it).
fn host_ip() -> String {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    match s.connect("1.1.1.1:80") {
        Ok(()) => s.local_addr().unwrap().ip().to_string(),
        Err(_) => "127.0.0.1".into(),
    }
}

#[tokio::test]
async fn runs_streams_output_and_reports_the_exit_code() {
    let Some(r) = runner() else { return };
    let ws = tempfile::tempdir().unwrap();
    let code = r#"
import os, sys
print("run", os.environ["ESCROW_RUN_ID"], "uid", os.getuid(), "cwd", os.getcwd())
print("env", sorted(k for k in os.environ if k not in ("HOSTNAME", "container", "HOME", "TERM")))
open("/workspace/out.txt", "w").write("written")
print("to stderr", file=sys.stderr)
for i in range(3):
    print("line", i, flush=True)
sys.exit(3)
"#;
    let s = spec("basic", ws.path(), code);
    let (outcome, lines) = run(&r, &s).await;
    assert_eq!(outcome.ending, Ending::Exited(3), "{lines:?}");
    let out = stdout(&lines);
    assert!(out.contains("run run-1 uid 65534 cwd /workspace"), "{out}");
    // Only the spec's environment (and what the engine itself always sets).
    assert!(out.contains("env ['ESCROW_RUN_ID', 'PATH']"), "{out}");
    assert!(out.contains("line 0\nline 1\nline 2"), "{out}");
    assert!(lines
        .iter()
        .any(|l| l.stream == Stream::Stderr && l.line == "to stderr"));
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out.txt")).unwrap(),
        "written"
    );
    assert!(leftovers(&r, &s.name).await.is_empty(), "container left");
}

#[tokio::test]
async fn no_network_read_only_root_no_host_files() {
    let Some(r) = runner() else { return };
    // A server the host can reach on its own address: the container must not.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ip = host_ip();
    let ws = tempfile::tempdir().unwrap();
    let code = format!(
        r#"
import os, socket
def attempt(name, f):
    try:
        f()
        print(name, "ALLOWED")
    except Exception as e:
        print(name, "refused", type(e).__name__)
attempt("host", lambda: socket.create_connection(("{ip}", {port}), timeout=2))
attempt("host-loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("internet", lambda: socket.create_connection(("1.1.1.1", 80), timeout=2))
attempt("dns", lambda: socket.getaddrinfo("example.com", 80))
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("write-root", lambda: open("/pwned", "w"))
attempt("write-usr", lambda: open("/usr/bin/pwned", "w"))
attempt("write-tmp", lambda: open("/tmp/scratch", "w").write("x"))
print("ifaces", sorted(os.listdir("/sys/class/net")))
"#
    );
    let (outcome, lines) = run(&r, &spec("isolation", ws.path(), &code)).await;
    assert_eq!(outcome.ending, Ending::Exited(0), "{lines:?}");
    let out = stdout(&lines);
    for what in [
        "host",
        "host-loopback",
        "internet",
        "dns",
        "shadow",
        "write-root",
        "write-usr",
    ] {
        assert!(out.contains(&format!("{what} refused")), "{what}: {out}");
    }
    assert!(out.contains("write-tmp ALLOWED"), "{out}");
    assert!(out.contains("ifaces ['lo']"), "{out}");
    drop(listener);
}

#[tokio::test]
async fn mounts_read_only_and_writable() {
    let Some(r) = runner() else { return };
    let ws = tempfile::tempdir().unwrap();
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(pkg.path().join("main.py"), "print('from package')\n").unwrap();
    // Writable by anyone on the host: only the read-only mount stops the sandbox.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        pkg.path().join("main.py"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let mut s = spec("mounts", ws.path(), "");
    s.args = vec!["/app/main.py".into()];
    s.mounts.push(Mount {
        host: pkg.path().to_path_buf(),
        inside: PathBuf::from("/app"),
        writable: false,
    });
    let (outcome, lines) = run(&r, &s).await;
    assert_eq!(outcome.ending, Ending::Exited(0), "{lines:?}");
    assert!(stdout(&lines).contains("from package"));

    s.args = vec!["-c".into(), "open('/app/main.py', 'a').write('x')".into()];
    let (outcome, lines) = run(&r, &s).await;
    assert_eq!(outcome.ending, Ending::Exited(1));
    assert!(
        lines
            .iter()
            .any(|l| l.line.contains("Read-only file system")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn killed_at_the_memory_limit() {
    let Some(r) = runner() else { return };
    let ws = tempfile::tempdir().unwrap();
    let mut s = spec(
        "memory",
        ws.path(),
        "b = []\nwhile True:\n    b.append(bytearray(16 << 20))\n",
    );
    s.limits.memory_bytes = 96 << 20;
    let (outcome, lines) = run(&r, &s).await;
    assert_eq!(outcome.ending, Ending::MemoryLimit, "{lines:?}");
    if let Some(peak) = outcome.peak_memory_bytes {
        assert!(peak <= (96 << 20) + (1 << 20), "peak {peak}");
    }
}

#[tokio::test]
async fn killed_at_the_time_limit_cancelled_quickly_and_always_removed() {
    let Some(r) = runner() else { return };
    let ws = tempfile::tempdir().unwrap();
    let mut s = spec(
        "time",
        ws.path(),
        "import time\nprint('started', flush=True)\ntime.sleep(60)\n",
    );
    s.limits.wall_time = Duration::from_millis(1500);
    let (outcome, lines) = run(&r, &s).await;
    assert_eq!(outcome.ending, Ending::TimedOut);
    assert!(
        outcome.duration < Duration::from_secs(10),
        "{:?}",
        outcome.duration
    );
    assert!(stdout(&lines).contains("started"), "{lines:?}");
    assert!(leftovers(&r, &s.name).await.is_empty(), "container left");

    // The program ignores SIGTERM: the runner must still end it within 5 s.
    let mut s = spec(
        "cancel",
        ws.path(),
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)\n",
    );
    s.limits.wall_time = Duration::from_secs(60);
    let (tx, mut rx) = mpsc::channel::<OutputLine>(16);
    let (cancel_tx, cancel) = watch::channel(false);
    let canceller = tokio::spawn(async move {
        // Cancel once the program runs.
        while let Some(l) = rx.recv().await {
            if l.line == "ready" {
                let at = std::time::Instant::now();
                let _ = cancel_tx.send(true);
                return Some(at);
            }
        }
        None
    });
    let outcome = r.run(&s, tx, cancel).await.unwrap();
    let cancelled_at = canceller.await.unwrap().expect("the program started");
    assert_eq!(outcome.ending, Ending::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5),
        "cancel took {:?}",
        cancelled_at.elapsed()
    );
    assert!(leftovers(&r, &s.name).await.is_empty(), "container left");

    // A run whose future is dropped midway leaves no container either.
    let s = spec("dropped", ws.path(), "import time\ntime.sleep(60)\n");
    let (tx, _rx) = mpsc::channel(16);
    let (_c, cancel) = watch::channel(false);
    let _ = tokio::time::timeout(Duration::from_secs(3), r.run(&s, tx, cancel)).await;
    let mut left = leftovers(&r, &s.name).await;
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = leftovers(&r, &s.name).await;
    }
    assert!(left.is_empty(), "container left after a dropped run");
}

#[tokio::test]
async fn a_dockerfile_package_is_built_at_runtime_build() {
    let Some(r) = runner() else { return };
    let pkg = tempfile::tempdir().unwrap();
    let p = pkg.path();
    std::fs::write(
        p.join("Dockerfile"),
        format!(
            "FROM {}\nWORKDIR /app\nCOPY . .\nRUN echo baked-in > /app/baked.txt\nENTRYPOINT [\"python3\", \"main.py\"]\n",
            r.image()
        ),
    )
    .unwrap();
    std::fs::write(
        p.join("main.py"),
        "import os\nprint('built entrypoint', open('/app/baked.txt').read().strip(), os.path.exists('/app/weights.bin'))\n",
    )
    .unwrap();
    std::fs::write(p.join("secrets"), "weights.bin\n").unwrap();
    std::fs::write(p.join("weights.bin"), "decrypted, never in an image").unwrap();

    let (tx, mut rx) = mpsc::channel(4096);
    let built = r
        .runtime_build(p, tx)
        .await
        .expect("runtime build")
        .expect("a Dockerfile package gets an image");
    let mut log = Vec::new();
    while let Ok(l) = rx.try_recv() {
        log.push(l.line);
    }
    assert!(log.iter().all(|l| l.starts_with(BUILD_PREFIX)), "{log:?}");
    assert!(!log.is_empty());

    let ws = tempfile::tempdir().unwrap();
    let mut s = spec("built", ws.path(), "");
    s.program = PathBuf::from("python3");
    s.args = vec!["main.py".into()];
    s.workdir = Some(PathBuf::from("/app"));
    let (outcome, lines) = run(built.as_ref(), &s).await;
    assert_eq!(outcome.ending, Ending::Exited(0), "{lines:?} {log:?}");
    assert!(
        stdout(&lines).contains("built entrypoint baked-in False"),
        "{lines:?}"
    );
    built.release().await;

    // A package without a Dockerfile runs in the configured image.
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(plain.path().join("run.sh"), "echo hi\n").unwrap();
    let (tx, _rx) = mpsc::channel(16);
    assert!(r.runtime_build(plain.path(), tx).await.unwrap().is_none());

    // A Dockerfile that fails to build is a clear error.
    std::fs::write(
        p.join("Dockerfile"),
        format!("FROM {}\nRUN exit 7\n", r.image()),
    )
    .unwrap();
    let (tx, _rx) = mpsc::channel(4096);
    let err = r.runtime_build(p, tx).await.unwrap_err();
    assert!(err.to_string().contains("runtime build failed"), "{err}");
    assert!(err.to_string().contains("RUN exit 7"), "{err}");
}
