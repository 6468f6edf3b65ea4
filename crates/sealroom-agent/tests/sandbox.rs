//! The sandbox runners against the real bubblewrap and the kernel's cgroups: isolation, limits,
//! cancellation. These need root (cgroups) and `bwrap` (scripts/setup/60-sandbox.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use sealroom_agent::sandbox::{
    runner, Ending, Limits, Mount, OutputLine, RunnerKind, SandboxError, SandboxSpec, Stream,
};
use tokio::sync::{mpsc, watch};

const PY: &str = "/usr/bin/python3";

fn spec(name: &str, workspace: &std::path::Path, code: &str) -> SandboxSpec {
    SandboxSpec {
        name: format!("test-{name}-{}", std::process::id()),
        program: PathBuf::from(PY),
        args: vec!["-c".into(), code.into()],
        env: vec![("ESCROW_RUN_ID".into(), "run-1".into())],
        workspace: workspace.to_path_buf(),
        mounts: vec![],
        workdir: None,
        limits: Limits {
            memory_bytes: 256 << 20,
            vcpus: 1,
            wall_time: Duration::from_secs(20),
        },
    }
}

async fn run(
    kind: RunnerKind,
    spec: &SandboxSpec,
) -> (sealroom_agent::sandbox::Outcome, Vec<OutputLine>) {
    let r = runner(kind).expect("runner");
    let (tx, mut rx) = mpsc::channel(1024);
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

#[tokio::test]
async fn runs_with_env_workspace_and_exit_code() {
    let ws = tempfile::tempdir().unwrap();
    let code = r#"
import os, sys
print("run", os.environ["ESCROW_RUN_ID"], "uid", os.getuid(), "cwd", os.getcwd())
print("agent env leaked" if "PATH" in os.environ and "cargo" in os.environ["PATH"] else "clean env")
open("/workspace/out.txt", "w").write("written")
print("to stderr", file=sys.stderr)
sys.exit(3)
"#;
    let (outcome, lines) = run(RunnerKind::Bwrap, &spec("basic", ws.path(), code)).await;
    assert_eq!(outcome.ending, Ending::Exited(3));
    let out = stdout(&lines);
    assert!(out.contains("run run-1 uid 65534 cwd /workspace"), "{out}");
    assert!(out.contains("clean env"), "{out}");
    assert!(lines
        .iter()
        .any(|l| l.stream == Stream::Stderr && l.line == "to stderr"));
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out.txt")).unwrap(),
        "written"
    );
}

#[tokio::test]
async fn no_network_no_agent_files_no_shadow_read_only_system_own_pids() {
    // A server the agent's host could reach: the sandbox must not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let secret_dir = tempfile::tempdir().unwrap();
    std::fs::write(secret_dir.path().join("agent-secret.key"), "k").unwrap();
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
attempt("loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("internet", lambda: socket.create_connection(("1.1.1.1", 80), timeout=2))
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("agent-file", lambda: open("{secret}").read())
attempt("root-home", lambda: os.listdir("/root"))
attempt("write-usr", lambda: open("/usr/pwned", "w"))
attempt("write-tmp", lambda: open("/tmp/scratch", "w").write("x"))
print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
"#,
        secret = secret_dir.path().join("agent-secret.key").display()
    );
    let (outcome, lines) = run(RunnerKind::Bwrap, &spec("isolation", ws.path(), &code)).await;
    assert_eq!(outcome.ending, Ending::Exited(0), "{lines:?}");
    let out = stdout(&lines);
    for what in [
        "loopback",
        "internet",
        "shadow",
        "agent-file",
        "root-home",
        "write-usr",
    ] {
        assert!(out.contains(&format!("{what} refused")), "{what}: {out}");
    }
    assert!(out.contains("write-tmp ALLOWED"), "{out}");
    // Its own pid namespace: bwrap's init and the program, nothing of the host.
    let pids = out.lines().find(|l| l.starts_with("pids")).unwrap();
    assert!(
        pids == "pids [1, 2]" || pids == "pids [1]" || pids == "pids [2]",
        "{pids}"
    );
    drop(listener);
}

#[tokio::test]
async fn killed_at_the_memory_limit() {
    let ws = tempfile::tempdir().unwrap();
    let mut s = spec(
        "memory",
        ws.path(),
        "b = []\nwhile True:\n    b.append(bytearray(16 << 20))\n",
    );
    s.limits.memory_bytes = 96 << 20;
    let (outcome, _) = run(RunnerKind::Bwrap, &s).await;
    assert_eq!(outcome.ending, Ending::MemoryLimit);
    if let Some(peak) = outcome.peak_memory_bytes {
        assert!(peak <= (96 << 20) + (1 << 20), "peak {peak}");
    }
}

#[tokio::test]
async fn killed_at_the_time_limit_and_when_cancelled() {
    let ws = tempfile::tempdir().unwrap();
    let mut s = spec(
        "time",
        ws.path(),
        "import time\nprint('started', flush=True)\ntime.sleep(60)\n",
    );
    s.limits.wall_time = Duration::from_millis(1500);
    let (outcome, lines) = run(RunnerKind::Bwrap, &s).await;
    assert_eq!(outcome.ending, Ending::TimedOut);
    assert!(
        outcome.duration < Duration::from_secs(10),
        "{:?}",
        outcome.duration
    );
    assert!(stdout(&lines).contains("started"));

    let mut s = spec("cancel", ws.path(), "import time\ntime.sleep(60)\n");
    s.limits.wall_time = Duration::from_secs(60);
    let r = runner(RunnerKind::Bwrap).unwrap();
    let (tx, _rx) = mpsc::channel(16);
    let (cancel_tx, cancel) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = cancel_tx.send(true);
    });
    let outcome = r.run(&s, tx, cancel).await.unwrap();
    assert_eq!(outcome.ending, Ending::Cancelled);
    assert!(
        outcome.duration < Duration::from_secs(5),
        "{:?}",
        outcome.duration
    );
}

#[tokio::test]
async fn read_only_mounts_are_read_only() {
    let ws = tempfile::tempdir().unwrap();
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(pkg.path().join("main.py"), "print('from package')\n").unwrap();
    let mut s = spec("mounts", ws.path(), "");
    s.args = vec!["/app/main.py".into()];
    s.mounts.push(Mount {
        host: pkg.path().to_path_buf(),
        inside: PathBuf::from("/app"),
        writable: false,
    });
    let (outcome, lines) = run(RunnerKind::Bwrap, &s).await;
    assert_eq!(outcome.ending, Ending::Exited(0), "{lines:?}");
    assert!(stdout(&lines).contains("from package"));

    s.args = vec!["-c".into(), "open('/app/main.py', 'a').write('x')".into()];
    let (outcome, lines) = run(RunnerKind::Bwrap, &s).await;
    assert_eq!(outcome.ending, Ending::Exited(1));
    assert!(
        lines
            .iter()
            .any(|l| l.line.contains("Read-only file system")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_process_runner_refuses_without_acknowledgement_and_warns_on_every_line() {
    let err = runner(RunnerKind::Process {
        insecure_no_sandbox: false,
    })
    .unwrap_err();
    assert!(matches!(err, SandboxError::InsecureNotAcknowledged));
    assert!(err.to_string().contains("--insecure-no-sandbox"));
    let ws = tempfile::tempdir().unwrap();
    let s = spec("process", ws.path(), "print('a')\nprint('b')\n");
    let (outcome, lines) = run(
        RunnerKind::Process {
            insecure_no_sandbox: true,
        },
        &s,
    )
    .await;
    assert_eq!(outcome.ending, Ending::Exited(0));
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l.line.starts_with("[INSECURE: no sandbox] ")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn long_lines_are_cut() {
    let ws = tempfile::tempdir().unwrap();
    let s = spec("lines", ws.path(), "print('x' * 100000)\nprint('short')\n");
    let (outcome, lines) = run(RunnerKind::Bwrap, &s).await;
    assert_eq!(outcome.ending, Ending::Exited(0));
    assert_eq!(lines.len(), 2);
    assert!(lines[0].line.ends_with("[line cut at 16 KiB]"));
    assert!(lines[0].line.len() < 17 * 1024);
    assert_eq!(lines[1].line, "short");
}
