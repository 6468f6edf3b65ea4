//! The Enclave API crosses the sandbox boundary through a unix socket only: inside bwrap (no
//! network), `sealroom enclave-launch` makes 127.0.0.1:5000 reach the agent's socket, while any
//! other address stays unreachable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use sealroom_agent::sandbox::{runner, Ending, Limits, Mount, RunnerKind, SandboxSpec};
use tokio::sync::{mpsc, watch};

#[tokio::test]
async fn localhost_5000_reaches_the_agent_socket_and_nothing_else() {
    let run_dir = tempfile::tempdir().unwrap();
    let sock = run_dir.path().join("api.sock");
    let server = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let mut c = conn.unwrap();
            let mut buf = [0u8; 4];
            if c.read_exact(&mut buf).is_ok() {
                let _ = c.write_all(b"pong");
            }
        }
    });
    let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let outside_port = outside.local_addr().unwrap().port();
    let ws = tempfile::tempdir().unwrap();
    let code = format!(
        r#"
import socket
s = socket.create_connection(("localhost", 5000), timeout=5)
s.sendall(b"ping")
print("api:", s.recv(4).decode())
try:
    socket.create_connection(("127.0.0.1", {outside_port}), timeout=2)
    print("outside: ALLOWED")
except OSError as e:
    print("outside: refused")
"#
    );
    let spec = SandboxSpec {
        name: format!("boundary-{}", std::process::id()),
        program: PathBuf::from("/run/enclave/sealroom"),
        args: vec![
            "enclave-launch".into(),
            "--socket".into(),
            "/run/enclave/api.sock".into(),
            "--".into(),
            "/usr/bin/python3".into(),
            "-c".into(),
            code,
        ],
        env: vec![],
        workspace: ws.path().to_path_buf(),
        mounts: vec![
            Mount {
                host: PathBuf::from(env!("CARGO_BIN_EXE_sealroom")),
                inside: PathBuf::from("/run/enclave/sealroom"),
                writable: false,
            },
            Mount {
                host: sock.clone(),
                inside: PathBuf::from("/run/enclave/api.sock"),
                writable: true,
            },
        ],
        workdir: None,
        limits: Limits {
            memory_bytes: 256 << 20,
            vcpus: 1,
            wall_time: Duration::from_secs(30),
        },
    };
    let r = runner(RunnerKind::Bwrap).unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let (_c, cancel) = watch::channel(false);
    let outcome = r.run(&spec, tx, cancel).await.unwrap();
    let mut out = Vec::new();
    while let Ok(l) = rx.try_recv() {
        out.push(format!("{:?}: {}", l.stream, l.line));
    }
    assert_eq!(outcome.ending, Ending::Exited(0), "{out:?}");
    assert!(out.iter().any(|l| l.ends_with("api: pong")), "{out:?}");
    assert!(
        out.iter().any(|l| l.ends_with("outside: refused")),
        "{out:?}"
    );
}
