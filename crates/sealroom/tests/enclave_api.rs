//! The Enclave API as an algorithm sees it: inside bwrap, Python `requests` with `verify=False`
//! at https://localhost:5000 lists the sealed dataset, reads a file whole and by range, validates
//! and posts reports; a final report that fails the criteria never becomes the final report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sealroom_agent::enclave_api::data::SealedDataset;
use sealroom_agent::enclave_api::{self_signed_acceptor, serve, EnclaveApi, RunIds};
use sealroom_agent::sandbox::{runner, Ending, Limits, Mount, RunnerKind, SandboxSpec};
use sealroom_criteria::Criteria;
use sealroom_envelope::{dir, Cek};
use tokio::sync::{mpsc, watch};

const CRITERIA: &str = r#"{
  "report": {"type": "dict", "schema": {
    "accuracy": {"type": "dict", "schema": {
      "value": {"type": "float", "min": 0, "max": 1},
      "CI": {"type": "float", "min": 0, "max": 1},
      "n": {"type": "integer", "min": 1}}}}}
}"#;

const ALGORITHM: &str = r#"
import base64, json, os, requests, urllib3
urllib3.disable_warnings()
API = "https://localhost:5000"
files = requests.get(f"{API}/api/v1/data/files", verify=False).json()
print("files", files["totalFiles"], sorted(f["name"] for f in files["files"]))
csv = requests.get(f"{API}/api/v1/data/file", params={"filepath": "sub/labels.csv"}, verify=False)
print("csv", csv.status_code, csv.content.decode().splitlines()[0])
big = requests.get(f"{API}/api/v1/data/file", params={"filepath": "big.bin"}, verify=False).content
part = requests.get(f"{API}/api/v1/data/file", params={"filepath": "big.bin"},
                    headers={"Range": "bytes=65530-65545"}, verify=False)
print("range", part.status_code, part.headers["Content-Range"], part.content == big[65530:65546], len(big))
print("missing", requests.get(f"{API}/api/v1/data/file", params={"filepath": "nope"}, verify=False).status_code)
print("param", requests.get(f"{API}/api/v1/parameters", verify=False).json()["parameters"]["EPOCHS"], os.environ["EPOCHS"])
def report(doc, status):
    return {"json_data": base64.b64encode(json.dumps(doc).encode()).decode(), "name": "model",
            "project": os.environ["ESCROW_PROJECT_ID"], "run": os.environ["ESCROW_RUN_ID"],
            "run_configuration": os.environ["ESCROW_RUN_CONFIG_ID"], "status": status,
            "upload_location": "unused"}
good = {"report": {"accuracy": {"value": 0.91, "CI": 0.03, "n": 120}}}
leaky = {"report": {"accuracy": {"value": 0.91, "CI": 0.03, "n": 120}, "rows": ["patient 1"]}}
print("progress", requests.post(f"{API}/api/v1/report", json=report({"epoch": 1}, "In Progress"), verify=False).status_code)
v = requests.post(f"{API}/api/v1/validate", json=report(leaky, "Completed"), verify=False)
print("validate-leaky", v.status_code, json.dumps(v.json(), sort_keys=True))
print("final-leaky", requests.post(f"{API}/api/v1/report", json=report(leaky, "Completed"), verify=False).status_code)
print("final-good", requests.post(f"{API}/api/v1/report", json=report(good, "Completed"), verify=False).status_code)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_algorithm_uses_the_enclave_api_from_inside_the_sandbox() {
    // The data steward's sealed dataset.
    let t = tempfile::tempdir().unwrap();
    let plain = t.path().join("plain");
    std::fs::create_dir_all(plain.join("sub")).unwrap();
    std::fs::write(plain.join("sub/labels.csv"), "id,label\n1,0\n2,1\n").unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(plain.join("big.bin"), &big).unwrap();
    let cek = Cek::generate().unwrap();
    dir::seal_tree(&plain, &t.path().join("sealed"), &cek, &()).unwrap();
    std::fs::remove_dir_all(&plain).unwrap();

    let data = Arc::new(SealedDataset::open(&t.path().join("sealed"), cek).unwrap());
    let api = Arc::new(EnclaveApi::new(
        data,
        Criteria::from_json(CRITERIA.as_bytes()).unwrap(),
        vec![("EPOCHS".into(), "3".into())],
        RunIds {
            project: "p1".into(),
            run: "r1".into(),
            run_config: "c1".into(),
        },
    ));
    let run_dir = tempfile::tempdir().unwrap();
    let sock = run_dir.path().join("api.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let server = tokio::spawn(serve(
        listener,
        self_signed_acceptor().unwrap(),
        api.clone(),
        stop,
    ));

    let ws = tempfile::tempdir().unwrap();
    let spec = SandboxSpec {
        name: format!("api-{}", std::process::id()),
        program: PathBuf::from("/run/enclave/sealroom"),
        args: vec![
            "enclave-launch".into(),
            "--socket".into(),
            "/run/enclave/api.sock".into(),
            "--".into(),
            "/usr/bin/python3".into(),
            "-c".into(),
            ALGORITHM.into(),
        ],
        env: vec![
            ("EPOCHS".into(), "3".into()),
            ("ESCROW_PROJECT_ID".into(), "p1".into()),
            ("ESCROW_RUN_ID".into(), "r1".into()),
            ("ESCROW_RUN_CONFIG_ID".into(), "c1".into()),
        ],
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
            memory_bytes: 512 << 20,
            vcpus: 1,
            wall_time: Duration::from_secs(60),
        },
    };
    let (tx, mut rx) = mpsc::channel(256);
    let (_c, cancel) = watch::channel(false);
    let outcome = runner(RunnerKind::Bwrap)
        .unwrap()
        .run(&spec, tx, cancel)
        .await
        .unwrap();
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l.line);
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    assert_eq!(outcome.ending, Ending::Exited(0), "{lines:#?}");
    let has = |s: &str| assert!(lines.iter().any(|l| l == s), "missing {s:?} in {lines:#?}");
    has("files 2 ['big.bin', 'sub/labels.csv']");
    has("csv 200 id,label");
    has("range 206 bytes 65530-65545/200000 True 200000");
    has("missing 404");
    has("param 3 3");
    has("progress 200");
    has(
        r#"validate-leaky 400 {"message": {"report": [{"rows": ["unknown field"]}]}, "status": "failed"}"#,
    );
    has("final-leaky 400");
    has("final-good 200");

    let reports = api.reports();
    assert_eq!(reports.progress.len(), 1);
    assert_eq!(reports.rejected_finals, 1);
    let final_report = reports.final_report.unwrap();
    assert_eq!(final_report.document["report"]["accuracy"]["n"], 120);
}
