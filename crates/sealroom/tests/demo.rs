//! `sealroom demo` and `sealroom up --demo`, run as the built binary: the whole collaboration
//! (two organizations, a simulated project, keys, a sealed package and dataset, a run in the
//! bwrap sandbox through the local agent) ends with a validated final report; `up --demo` then
//! serves the real API with the logins it printed, stops on Ctrl-C, and on a second start with
//! the same data directory does not seed again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealroom_client::Client;
use sealroom_types::RunState;

/// The longest a demo run may take here (the run itself takes about a second).
const WAIT: Duration = Duration::from_secs(300);

fn sealroom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sealroom"));
    // Nothing of the caller's configuration may leak in.
    for var in [
        "SEALROOM_DATA_DIR",
        "SEALROOM_LISTEN",
        "SEALROOM_DATABASE_URL",
        "SEALROOM_PUBLIC_URL",
        "SEALROOM_KEY_PROVIDER",
        "SEALROOM_SITE_TOKEN",
        "SEALROOM_LOG",
    ] {
        c.env_remove(var);
    }
    c
}

#[test]
fn demo_completes_with_a_validated_report() {
    let out = sealroom().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Sealroom demo: OK (the final report validated)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Acme Models (algorithm owner), St. Mary Hospital (data steward)"),
        "{stdout}"
    );
    assert!(stdout.contains("after its initiation"), "{stdout}");
    for metric in ["accuracy", "sensitivity", "specificity"] {
        assert!(stdout.contains(metric), "{stdout}");
    }
    // The demo's 240 patients, scored at THRESHOLD=0.5 (as `local-run` scores them).
    assert!(stdout.contains("accuracy     0.7417"), "{stdout}");
    assert!(stdout.contains("n=240"), "{stdout}");
    // Every stage, in order, on stderr.
    let mut at = 0;
    for stage in [
        "initiated",
        "runtime_build",
        "workload_launch",
        "running",
        "completed",
    ] {
        let found = stderr[at..]
            .find(&format!(": {stage}"))
            .unwrap_or_else(|| panic!("no stage {stage} after byte {at}:\n{stderr}"));
        at += found;
    }
    assert!(stdout.contains("temporary directory: removed"), "{stdout}");
}

#[test]
fn demo_without_bwrap_names_the_fix() {
    let out = sealroom()
        .arg("demo")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("bwrap"), "{stderr}");
    assert!(stderr.contains("scripts/setup/60-sandbox.sh"), "{stderr}");
}

/// A running `sealroom up`: its stdout lines arrive on a channel, its stderr is collected.
struct Up {
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Up {
    fn start(data_dir: &Path) -> Up {
        let mut child = sealroom()
            .args(["up", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Up {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Reads stdout until a line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with(prefix);
                    self.stdout.push(line);
                    if done {
                        return;
                    }
                }
                Err(e) => panic!(
                    "no line {prefix:?} ({e}); stdout:\n{}\nstderr:\n{}",
                    self.stdout.join("\n"),
                    self.stderr()
                ),
            }
        }
    }

    fn text(&self) -> String {
        self.stdout.join("\n")
    }

    /// The value after `key` on the first stdout line that holds it.
    fn after(&self, key: &str) -> String {
        self.stdout
            .iter()
            .find_map(|l| l.split_once(key).map(|(_, rest)| rest.trim().to_string()))
            .unwrap_or_else(|| panic!("no {key:?} in:\n{}", self.text()))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    /// The password printed for `user`.
    fn password(&self, user: &str) -> String {
        self.stdout
            .iter()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(user) && words.next() == Some("password:"))
                    .then(|| words.next().unwrap().to_string())
            })
            .unwrap_or_else(|| panic!("no password for {user} in:\n{}", self.text()))
    }

    /// Ctrl-C, then the exit status.
    fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("up did not stop on SIGINT; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn sign_in(url: &str, user: &str, password: &str) -> Client {
    let anonymous = Client::new(url).unwrap();
    let session = anonymous.login(user, password).unwrap();
    anonymous.with_token(&session.token)
}

#[test]
fn up_demo_seeds_runs_serves_and_restarts_without_seeding() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // First start: seeds, runs once, prints the report, URLs and logins, serves.
    let mut up = Up::start(&data);
    up.wait_for("Serving; Ctrl-C stops.");
    let text = up.text();
    assert!(
        text.contains("the final report validated against the accepted criteria"),
        "{text}\n{}",
        up.stderr()
    );
    assert!(text.contains("\"accuracy\""), "{text}");
    assert!(
        text.contains("First start: created the platform admin."),
        "{text}"
    );
    let url = up.after("Sealroom is up at");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        text.contains(&format!("API docs: {url}/api/docs")),
        "{text}"
    );
    let alice_pw = up.password("alice");
    let dana_pw = up.password("dana");
    assert!(alice_pw.len() >= 12 && dana_pw.len() >= 12);
    assert_ne!(alice_pw, dana_pw);

    // The real API, with the printed logins: the AO reads the validated report.
    let alice = sign_in(&url, "alice", &alice_pw);
    let me = alice.me().unwrap();
    assert_eq!(me.organization.name.to_string(), "Acme Models");
    let projects = alice.list_all_projects().unwrap();
    assert_eq!(projects.len(), 1);
    let project = projects[0].project.id;
    let runs = alice.list_runs(project, None).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, RunState::Completed);
    let report = alice.run_report(runs[0].id).unwrap();
    assert_eq!(report["report"]["accuracy"]["n"], 240);
    // The DS does not get the AO's report.
    let dana = sign_in(&url, "dana", &dana_pw);
    assert_eq!(
        dana.me().unwrap().organization.name.to_string(),
        "St. Mary Hospital"
    );
    let refused = dana.run_report(runs[0].id).unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused}");
    // The API docs are served at the printed URL (which redirects to the page).
    let docs = http_get(&url, "/api/docs");
    assert!(docs.to_ascii_lowercase().contains("<html"), "{docs}");

    // The keys the demo keeps are private.
    for f in [
        "demo/ao.cek",
        "demo/ds.cek",
        "demo/demo.json",
        "agent/site-token",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }

    let status = up.interrupt();
    assert!(status.success(), "{status}");

    // Second start on the same data directory: no seeding, the same logins, the same data.
    let mut again = Up::start(&data);
    again.wait_for("Serving; Ctrl-C stops.");
    let text = again.text();
    assert!(!text.contains("First start"), "{text}");
    assert!(!text.contains("Demo run"), "{text}");
    assert_eq!(again.password("alice"), alice_pw);
    let url = again.after("Sealroom is up at");
    let alice = sign_in(&url, "alice", &alice_pw);
    assert_eq!(alice.list_all_projects().unwrap().len(), 1);
    assert_eq!(alice.list_runs(project, None).unwrap().len(), 1);
    let stderr = again.stderr();
    assert!(
        stderr.contains("already holds the seeded demo; not seeding it again"),
        "{stderr}"
    );
    let status = again.interrupt();
    assert!(status.success(), "{status}");
}

/// A GET with the standard library only (the docs page is HTML, not the API's JSON), following
/// one redirect.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = base.strip_prefix("http://").unwrap();
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(host).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    };
    let mut response = get(path);
    if response.starts_with("HTTP/1.1 30") {
        let location = response
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("location:")
                    .then(|| l["location:".len()..].trim().to_string())
            })
            .unwrap();
        response = get(&location);
    }
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
