//! A whole collaboration for the end-to-end tests of `agent_e2e.rs`: the real server
//! (`sealroom_server::app::start`: SQLite, local blobs, the file key provider, the sweeper) on a
//! loopback port, an admin, an algorithm owner (AO) and a data steward (DS) organization, each
//! with its own user and keys, driven through `sealroom_client::Client` and the `sealroom`
//! binary (`package seal`, `artifacts upload-package`), as the two parties would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sealroom_client::{Client, Upload};
use sealroom_client::{
    MemberSpec, NewArtifact, NewJsonVersion, NewProject, NewRun, NewRunConfig, NewUser, RunDetail,
};
use sealroom_envelope::kek::KekPublic;
use sealroom_envelope::{dir, Cek};
use sealroom_types::{
    AlgorithmType, ArtifactId, ArtifactKind, LogStream, OrgId, ProjectId, Role, RunConfigId, RunId,
    RunState, Technology, VersionId,
};

pub const PASSWORD: &str = "correct horse battery staple";
/// The base image of scripts/setup/70-podman.sh (python3 + requests, no registry needed).
pub const PODMAN_IMAGE: &str = "localhost/sealroom-python:test";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails unless bubblewrap is installed, or says loudly that it is skipped when
/// `SEALROOM_SKIP_BWRAP=1`. Returns whether to run.
pub fn require_bwrap() -> bool {
    if std::env::var("SEALROOM_SKIP_BWRAP").is_ok_and(|v| v == "1") {
        eprintln!("\n*** SKIPPING a bubblewrap end-to-end test: SEALROOM_SKIP_BWRAP=1 ***\n");
        return false;
    }
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "bwrap is not installed: run scripts/setup/60-sandbox.sh (or set SEALROOM_SKIP_BWRAP=1 \
         to skip this test)"
    );
    true
}

/// The Podman socket, or a failure unless `SEALROOM_SKIP_PODMAN=1` (then `None`, loudly).
pub fn require_podman() -> Option<PathBuf> {
    if std::env::var("SEALROOM_SKIP_PODMAN").is_ok_and(|v| v == "1") {
        eprintln!("\n*** SKIPPING a Podman end-to-end test: SEALROOM_SKIP_PODMAN=1 ***\n");
        return None;
    }
    let socket = std::env::var_os("SEALROOM_PODMAN_SOCKET").map(PathBuf::from);
    match socket {
        Some(s) if s.exists() => Some(s),
        other => panic!(
            "SEALROOM_PODMAN_SOCKET is {other:?}, not a socket: run scripts/setup/70-podman.sh and \
             source target/test-env.sh (or set SEALROOM_SKIP_PODMAN=1 to skip this test)"
        ),
    }
}

/// The server, in-process on its own tokio runtime.
pub struct Server {
    pub url: String,
    runtime: Option<tokio::runtime::Runtime>,
    pub admin: Client,
    pub data_dir: tempfile::TempDir,
    pub heartbeat_timeout: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        // An in-process agent's claim may still be long-polling on a blocking thread.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Server {
    /// Starts the whole server with `heartbeat_timeout`, signs the first admin in.
    pub fn start(heartbeat_timeout: Duration) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let mut opts = sealroom_server::app::ServerOptions::new(
            data_dir.path().to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
        );
        opts.control.heartbeat_timeout = heartbeat_timeout;
        let started = rt.block_on(sealroom_server::app::start(opts)).unwrap();
        let url = started.url.clone();
        let password = started
            .admin_password
            .as_ref()
            .expect("a first start makes the admin")
            .to_string();
        let anon = Client::new(&url).unwrap();
        let token = anon.login("admin", &password).unwrap().token;
        Server {
            admin: anon.with_token(&token),
            url,
            runtime: Some(rt),
            data_dir,
            heartbeat_timeout,
        }
    }

    /// The server's runtime (an in-process agent runs on it too).
    pub fn rt(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives until the server is dropped")
    }

    /// A client signed in as `username`.
    pub fn login(&self, username: &str) -> Client {
        let anon = Client::new(&self.url).unwrap();
        let token = anon.login(username, PASSWORD).unwrap().token;
        anon.with_token(&token)
    }
}

/// A project between an AO and a DS organization, with keys, an accepted criteria version and
/// an encrypted dataset on the built-in blob store.
pub struct Collab {
    pub project: ProjectId,
    pub ao: Client,
    pub ds: Client,
    pub ao_token: String,
    pub ds_token: String,
    pub ds_org: OrgId,
    pub site_token: String,
    pub ao_cek_file: PathBuf,
    pub dataset: VersionId,
    pub criteria: VersionId,
    pub algorithm: ArtifactId,
    pub files: tempfile::TempDir,
}

/// The criteria of the demo (EscrowAI's example): accuracy, sensitivity, specificity.
pub fn demo_criteria() -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("examples/demo/criteria.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

impl Collab {
    /// Everything before the algorithm: organizations, users, the DS site, the project, both
    /// parties' WCEKs, the criteria (accepted by the DS) and the sealed dataset
    /// (examples/demo/data/patients.csv) uploaded to the built-in storage behind a signed URL.
    pub fn new(s: &Server, name: &str) -> Collab {
        let admin = &s.admin;
        let ao_org = admin.create_org(&format!("Model Co {name}")).unwrap();
        let ds_org = admin.create_org(&format!("Hospital {name}")).unwrap();
        for (org, user) in [(&ao_org, "ao"), (&ds_org, "ds")] {
            admin
                .create_user(&NewUser {
                    org_id: org.id,
                    username: &format!("{user}-{name}"),
                    display_name: None,
                    password: PASSWORD,
                    is_admin: false,
                })
                .unwrap();
        }
        let site = admin
            .create_site(ds_org.id, &format!("Site {name}"))
            .unwrap();
        let page = admin
            .create_project(&NewProject {
                name: &format!("Trial {name}"),
                description: "end-to-end",
                technology: Technology::Simulated,
                members: vec![
                    MemberSpec {
                        org_id: ao_org.id,
                        role: Role::AlgorithmOwner,
                    },
                    MemberSpec {
                        org_id: ds_org.id,
                        role: Role::DataSteward,
                    },
                ],
            })
            .unwrap();
        let project = page.project.id;
        let anon = Client::new(&s.url).unwrap();
        let ao_token = anon.login(&format!("ao-{name}"), PASSWORD).unwrap().token;
        let ao = anon.with_token(&ao_token);
        let ds_token = anon.login(&format!("ds-{name}"), PASSWORD).unwrap().token;
        let ds = anon.with_token(&ds_token);
        let files = tempfile::tempdir().unwrap();

        // Keys: each party downloads its KEK, makes a CEK and uploads the wrapped CEK.
        let mut ceks = Vec::new();
        for (client, role, file) in [
            (&ao, Role::AlgorithmOwner, "ao-cek.key"),
            (&ds, Role::DataSteward, "ds-cek.key"),
        ] {
            let mut der = Vec::new();
            client.download_kek(project, role, &mut der).unwrap();
            let cek = Cek::generate().unwrap();
            let wcek = KekPublic::from_der(&der).unwrap().wrap(&cek).unwrap();
            let v = client.upload_wcek(project, role, &wcek).unwrap();
            assert_eq!(v.version, 1);
            let path = files.path().join(file);
            cek.write_new_file(&path).unwrap();
            ceks.push(cek);
        }
        let ds_cek = ceks.pop().unwrap();

        // Criteria: the AO's, accepted by the DS.
        let crit_artifact = ao
            .create_artifact(
                project,
                &NewArtifact {
                    kind: ArtifactKind::ValidationCriteria,
                    name: "Report criteria",
                    description: "",
                    algorithm_type: None,
                },
            )
            .unwrap();
        let criteria = ao
            .add_json_version(
                crit_artifact.id,
                &NewJsonVersion::ValidationCriteria {
                    tag: "c1",
                    description: "",
                    criteria: demo_criteria(),
                },
            )
            .unwrap()
            .id;
        ds.accept_version(criteria).unwrap();

        // The dataset: sealed with the DS's CEK, each sealed file uploaded to the built-in
        // storage, a signed URL of the prefix registered as the dataset version.
        let plain = files.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        std::fs::copy(
            repo().join("examples/demo/data/patients.csv"),
            plain.join("patients.csv"),
        )
        .unwrap();
        let sealed = files.path().join("sealed-data");
        dir::seal_tree(&plain, &sealed, &ds_cek, &()).unwrap();
        std::fs::remove_dir_all(&plain).unwrap();
        for entry in walk(&sealed) {
            let rel = entry
                .strip_prefix(&sealed)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut f = std::fs::File::open(&entry).unwrap();
            let len = f.metadata().unwrap().len();
            ds.put_storage(
                project,
                &format!("data/v1/{rel}"),
                Upload::new(&mut f, Some(len)),
            )
            .unwrap();
        }
        let signed = ds.sign_storage(project, "data/v1/", 24 * 30).unwrap();
        let ds_artifact = ds
            .create_artifact(
                project,
                &NewArtifact {
                    kind: ArtifactKind::Dataset,
                    name: "Patients",
                    description: "",
                    algorithm_type: None,
                },
            )
            .unwrap();
        let dataset = ds
            .add_json_version(
                ds_artifact.id,
                &NewJsonVersion::Dataset {
                    tag: "d1",
                    description: "240 patients, sealed",
                    url: &signed.url,
                    data_specification_version: None,
                    attestation_report_version: None,
                },
            )
            .unwrap()
            .id;
        ds.certify_version(dataset).unwrap();

        let algorithm = ao
            .create_artifact(
                project,
                &NewArtifact {
                    kind: ArtifactKind::Algorithm,
                    name: "Sepsis model",
                    description: "",
                    algorithm_type: Some(AlgorithmType::Validation),
                },
            )
            .unwrap()
            .id;
        Collab {
            project,
            ao,
            ds,
            ao_token,
            ds_token,
            ds_org: ds_org.id,
            site_token: site.token,
            ao_cek_file: files.path().join("ao-cek.key"),
            dataset,
            criteria,
            algorithm,
            files,
        }
    }

    /// The AO's package: a plaintext Dockerfile (base image `PODMAN_IMAGE`) and run.sh, the
    /// plaintext `algorithm` as main.py, and weights.json sealed with the AO's CEK by
    /// `sealroom package seal`; uploaded with `sealroom artifacts upload-package`.
    /// `marker` goes into the weights: a string to look for in plaintext.
    pub fn upload_algorithm(
        &self,
        s: &Server,
        tag: &str,
        algorithm: &str,
        marker: &str,
    ) -> VersionId {
        let src = self.files.path().join(format!("pkg-{tag}"));
        std::fs::create_dir(&src).unwrap();
        std::fs::write(
            src.join("Dockerfile"),
            format!(
                "FROM {PODMAN_IMAGE}\nWORKDIR /app\nCOPY . .\nENTRYPOINT [\"/bin/sh\", \"/app/run.sh\"]\n"
            ),
        )
        .unwrap();
        std::fs::write(
            src.join("run.sh"),
            "#!/bin/sh\nexec python3 -u /app/main.py\n",
        )
        .unwrap();
        std::fs::write(src.join("main.py"), algorithm).unwrap();
        std::fs::write(src.join("weights.json"), weights(marker)).unwrap();
        let out = self.files.path().join(format!("pkg-{tag}.sealed"));
        let r = cli(
            s,
            &self.ao_token,
            &[
                "package",
                "seal",
                src.to_str().unwrap(),
                "--cek",
                self.ao_cek_file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--secret",
                "weights.json",
            ],
        );
        assert!(r.0, "package seal: {}", r.2);
        let sealed_weights = std::fs::read(out.join("weights.json")).unwrap();
        assert!(sealed_weights.starts_with(b"SEALROOM"));
        assert!(!contains(&sealed_weights, marker.as_bytes()));
        let r = cli(
            s,
            &self.ao_token,
            &[
                "artifacts",
                "upload-package",
                "--server",
                &s.url,
                "--artifact",
                &self.algorithm.to_string(),
                "--tag",
                tag,
                "--json",
                out.to_str().unwrap(),
            ],
        );
        assert!(r.0, "upload-package: {}", r.2);
        let v: serde_json::Value = serde_json::from_str(r.1.trim()).unwrap();
        assert!(
            v["detail"]["workload_digest"].is_string(),
            "the package passed its checks: {v:#}"
        );
        v["id"].as_str().unwrap().parse().unwrap()
    }

    /// A run configuration of `algorithm` on the dataset with the criteria.
    pub fn run_config(&self, algorithm: VersionId, name: &str) -> RunConfigId {
        self.ao
            .create_run_config(
                self.project,
                &NewRunConfig {
                    name,
                    description: "",
                    algorithm_version_id: algorithm,
                    dataset_version_id: self.dataset,
                    criteria_version_id: Some(self.criteria),
                },
            )
            .unwrap()
            .id
    }

    /// The AO requests a run with `params` (1 vCPU, 2 GiB).
    pub fn request(&self, config: RunConfigId, params: &[(&str, &str)]) -> RunId {
        let params: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let run = self
            .ao
            .request_run(
                config,
                &NewRun {
                    params,
                    vcpus: 1,
                    ram_gib: 2,
                },
            )
            .unwrap();
        assert_eq!(run.state, RunState::Requested);
        run.id
    }

    /// Waits until the run is in a final state; returns it.
    pub fn wait_final(&self, run: RunId, limit: Duration) -> RunDetail {
        let start = Instant::now();
        loop {
            let d = self.ds.run(run).unwrap();
            if matches!(
                d.run.state,
                RunState::Completed | RunState::Failed | RunState::Cancelled | RunState::Rejected
            ) {
                return d;
            }
            assert!(
                start.elapsed() < limit,
                "run {run} still {:?} after {limit:?}; logs:\n{}",
                d.run.state,
                self.all_logs(run).join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a state.
    pub fn wait_state(&self, run: RunId, state: RunState, limit: Duration) {
        let start = Instant::now();
        loop {
            let d = self.ds.run(run).unwrap();
            if d.run.state == state {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "run {run} is {:?}, not {state:?}, after {limit:?}; logs:\n{}",
                d.run.state,
                self.all_logs(run).join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every log line (the DS reads both logs), as `stream: line`.
    pub fn all_logs(&self, run: RunId) -> Vec<String> {
        self.logs(run, None)
            .into_iter()
            .map(|l| format!("{:?}: {}", l.stream, l.line))
            .collect()
    }

    /// The lines of one log (or both), as the DS reads them.
    pub fn logs(&self, run: RunId, stream: Option<LogStream>) -> Vec<sealroom_types::RunLogLine> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let Ok(page) = self.ds.run_logs(run, stream, after, Some(1000)) else {
                return out;
            };
            let done = page.lines.is_empty();
            after = page.last_seq().or(after);
            out.extend(page.lines);
            if done || out.len() % 1000 != 0 {
                return out;
            }
        }
    }

    /// Waits for an algorithm log line starting with `prefix`.
    pub fn wait_line(&self, run: RunId, prefix: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .logs(run, Some(LogStream::Algorithm))
                .into_iter()
                .find(|l| l.line.starts_with(prefix))
            {
                return l.line;
            }
            assert!(
                start.elapsed() < limit,
                "no algorithm line {prefix:?} after {limit:?}; logs:\n{}",
                self.all_logs(run).join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The AO's weights (sealed in the package), with `marker`: a string that must never be found
/// in plaintext outside the run's directory on memory-backed storage.
pub fn weights(marker: &str) -> String {
    format!(
        r#"{{"marker": "{marker}",
 "weights": {{"age": 0.045, "bmi": 0.11, "glucose": 0.032}}, "bias": -9.2}}
"#
    )
}

/// What the algorithm writes to its scratch space (`/workspace/scratch.txt`), before a copy of
/// the data.
pub fn scratch_marker(run: RunId) -> String {
    format!("scratch of run {run}")
}

/// The algorithm: Python `requests` with `verify=False` against https://localhost:5000. Its
/// first line carries the wall-clock time it started at (for the initiate-to-first-line
/// measurement). It writes a plaintext copy of the data, after [`scratch_marker`], to its scratch
/// space. `MODE` (runtime parameter): `good` (a final report that validates), `leaky` (a final
/// report with an unknown field holding patient rows), `range` (a value out of range); `SLEEP`:
/// seconds to sleep before the reports.
pub const ALGORITHM: &str = r#"
import time
print("started", repr(time.time()), flush=True)
import base64, csv, hashlib, io, json, math, os, sys
import requests, urllib3
urllib3.disable_warnings()
API = "https://localhost:5000"
assert os.environ["ENCLAVE_API_URL"] == API, os.environ["ENCLAVE_API_URL"]
mode = os.environ.get("MODE", "good")
threshold = float(os.environ["THRESHOLD"])
weights = json.load(open("/app/weights.json"))
print("weights", sorted(weights["weights"]), weights["bias"], flush=True)
files = requests.get(f"{API}/api/v1/data/files", verify=False).json()
print("files", files["totalFiles"], [f["name"] for f in files["files"]], flush=True)
text = requests.get(f"{API}/api/v1/data/file", params={"filepath": "patients.csv"}, verify=False).text
params = requests.get(f"{API}/api/v1/parameters", verify=False).json()["parameters"]
print("parameters", json.dumps(params, sort_keys=True), "threshold", threshold, flush=True)
print("mlflow", os.environ.get("MLFLOW_TRACKING_URI"), flush=True)
# The algorithm's own plaintext copy of the data in its scratch space.
with open("/workspace/scratch.txt", "w") as f:
    f.write("scratch of run " + os.environ["ESCROW_RUN_ID"] + "\n" + text)
sleep = float(os.environ.get("SLEEP", "0"))
if sleep:
    # A long computation.
    print("sleeping", os.path.exists("/workspace/scratch.txt"), flush=True)
    time.sleep(sleep)
tp = tn = fp = fn = 0
for row in csv.DictReader(io.StringIO(text)):
    z = weights["bias"] + sum(w * float(row[k]) for k, w in weights["weights"].items())
    predicted = 1 / (1 + math.exp(-z)) >= threshold
    actual = row["outcome"] == "1"
    tp += predicted and actual
    tn += (not predicted) and (not actual)
    fp += predicted and not actual
    fn += (not predicted) and actual
n = tp + tn + fp + fn
def report(doc_bytes, status):
    return {"json_data": base64.b64encode(doc_bytes).decode(), "name": "e2e model",
            "project": os.environ["ESCROW_PROJECT_ID"], "run": os.environ["ESCROW_RUN_ID"],
            "run_configuration": os.environ["ESCROW_RUN_CONFIG_ID"], "status": status,
            "upload_location": "unused"}
r = requests.post(f"{API}/api/v1/report", json=report(json.dumps({"rows_scored": n}).encode(), "In Progress"), verify=False)
print("progress", r.status_code, flush=True)
def metric(k, total):
    return {"value": round(k / max(total, 1), 4), "CI": 0.05, "n": max(total, 1)}
# Keys deliberately not sorted: the AO must get these bytes, not a re-serialization.
doc = {"report": {"specificity": metric(tn, tn + fp), "accuracy": metric(tp + tn, n),
                  "sensitivity": metric(tp, tp + fn)}}
if mode == "leaky":
    doc["report"]["patients"] = [row for row in text.splitlines()[1:4]]
elif mode == "range":
    doc["report"]["accuracy"]["value"] = 1.5
body = json.dumps(doc).encode()
r = requests.post(f"{API}/api/v1/report", json=report(body, "Completed"), verify=False)
print("final", r.status_code, hashlib.sha256(body).hexdigest(), flush=True)
sys.exit(0)
"#;

/// Runs the `sealroom` binary with `SEALROOM_TOKEN`; (success, stdout, stderr).
pub fn cli(s: &Server, token: &str, args: &[&str]) -> (bool, String, String) {
    let home = s.data_dir.path().join("cli-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .args(args)
        .env("SEALROOM_TOKEN", token)
        .env("SEALROOM_SERVER", &s.url)
        .env("XDG_CONFIG_HOME", &home)
        .env("HOME", &home)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every regular file under `root`, sorted.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Files under `root` (at most 64 MiB each are read) whose bytes contain `needle`.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walk(root)
        .into_iter()
        .filter(|p| {
            let Ok(f) = std::fs::File::open(p) else {
                return false;
            };
            let mut buf = Vec::new();
            f.take(64 << 20).read_to_end(&mut buf).is_ok() && contains(&buf, needle)
        })
        .collect()
}

/// A plain HTTP/1.1 GET of `path` with a bearer token: (status, body bytes exactly as sent).
pub fn raw_get(server: &str, path: &str, token: &str) -> (u16, Vec<u8>) {
    let addr = server.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = resp[split + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    (status, if chunked { dechunk(&body) } else { body })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}
