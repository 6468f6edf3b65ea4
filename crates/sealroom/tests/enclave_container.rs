//! A whole run through `enclave::run` with the container runner: Runtime Build turns the
//! package's Dockerfile into an image (on Podman, from the local base image of
//! scripts/setup/70-podman.sh), the `sealroom` launcher starts inside it with its own libraries,
//! and the algorithm uses Python `requests` with `verify=False` against the Enclave API at
//! https://localhost:5000. Needs `SEALROOM_PODMAN_SOCKET` (scripts/test sets it); without it the
//! test says so loudly and passes without running.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sealroom_agent::enclave::{self, RunRequest};
use sealroom_agent::enclave_api::data::PlainDataset;
use sealroom_agent::enclave_api::{EnclaveApi, RunIds};
use sealroom_agent::sandbox::{runner, Ending, Limits, RunnerKind};
use sealroom_criteria::Criteria;
use tokio::sync::{mpsc, watch};

const CRITERIA: &str = r#"{"report": {"type": "dict", "schema": {
    "rows": {"type": "integer", "min": 0}}}}"#;

const ALGORITHM: &str = r#"
import base64, json, os, requests, urllib3
urllib3.disable_warnings()
API = os.environ["ENCLAVE_API_URL"]
files = requests.get("https://localhost:5000/api/v1/data/files", verify=False).json()
print("files", files["totalFiles"], sorted(f["name"] for f in files["files"]))
csv = requests.get(f"{API}/api/v1/data/file", params={"filepath": "labels.csv"}, verify=False)
rows = len(csv.text.splitlines()) - 1
print("rows", rows, "uid", os.getuid(), "baked", open("/opt/baked.txt").read().strip())
doc = {"report": {"rows": rows}}
body = {"json_data": base64.b64encode(json.dumps(doc).encode()).decode(), "name": "model",
        "project": os.environ["ESCROW_PROJECT_ID"], "run": os.environ["ESCROW_RUN_ID"],
        "run_configuration": os.environ["ESCROW_RUN_CONFIG_ID"], "status": "Completed",
        "upload_location": "unused"}
print("final", requests.post(f"{API}/api/v1/report", json=body, verify=False).status_code)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_package_uses_the_enclave_api_from_a_container() {
    let Some(socket) = std::env::var_os("SEALROOM_PODMAN_SOCKET") else {
        eprintln!(
            "\n!!! SKIPPED: SEALROOM_PODMAN_SOCKET is not set, so the container runner was NOT \
             tested. Run scripts/setup/70-podman.sh and source target/test-env.sh. !!!\n"
        );
        return;
    };
    let image = std::env::var("SEALROOM_PODMAN_IMAGE")
        .unwrap_or_else(|_| "localhost/sealroom-python:test".into());

    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("labels.csv"), "id,label\n1,0\n2,1\n3,1\n").unwrap();
    let pkg = t.path().join("package");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(
        pkg.join("Dockerfile"),
        format!(
            "FROM {image}\nWORKDIR /app\nCOPY . .\nRUN mkdir -p /opt && echo from-the-build > /opt/baked.txt\nENTRYPOINT [\"python3\", \"main.py\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(pkg.join("main.py"), ALGORITHM).unwrap();

    let api = Arc::new(EnclaveApi::new(
        Arc::new(PlainDataset::open(&data).unwrap()),
        Criteria::from_json(CRITERIA.as_bytes()).unwrap(),
        vec![],
        RunIds {
            project: "p1".into(),
            run: "r1".into(),
            run_config: "c1".into(),
        },
    ));
    let runner = runner(RunnerKind::Container {
        socket: Some(PathBuf::from(socket)),
        image,
    })
    .unwrap();
    let request = RunRequest {
        name: format!("container-api-{}", std::process::id()),
        package: pkg,
        api: api.clone(),
        parameters: vec![],
        limits: Limits {
            memory_bytes: 512 << 20,
            vcpus: 1,
            wall_time: Duration::from_secs(120),
        },
        launcher: PathBuf::from(env!("CARGO_BIN_EXE_sealroom")),
    };
    let (tx, mut rx) = mpsc::channel(4096);
    let (_c, cancel) = watch::channel(false);
    let result = enclave::run(request, runner.as_ref(), tx, cancel)
        .await
        .unwrap();
    let mut lines = Vec::new();
    while let Ok(l) = rx.try_recv() {
        lines.push(l.line);
    }
    assert_eq!(result.outcome.ending, Ending::Exited(0), "{lines:#?}");
    let has = |s: &str| assert!(lines.iter().any(|l| l == s), "missing {s:?} in {lines:#?}");
    has("files 1 ['labels.csv']");
    // uid 65534 on a rootful engine, 0 (the agent's own user outside) on a rootless one.
    assert!(
        lines
            .iter()
            .any(|l| l == "rows 3 uid 65534 baked from-the-build"
                || l == "rows 3 uid 0 baked from-the-build"),
        "{lines:#?}"
    );
    has("final 200");
    assert!(lines.iter().any(|l| l.starts_with("[runtime build] ")));
    let final_report = api.reports().final_report.expect("a final report");
    assert_eq!(final_report.document["report"]["rows"], 3);
}
