//! The real MLflow client (PyPI `mlflow-skinny`, installed by `scripts/setup/65-mlflow.sh`) logs
//! params and metrics to the Enclave API over its real TLS-on-a-unix-socket stack, reached
//! through the same loopback relay a sandbox uses, with exactly the environment
//! [`enclave_api::sandbox_env`] gives the sandbox. What it logged becomes the performance
//! report. The same script streams a trained model (chunked) to `POST /api/v1/model`, which must
//! arrive sealed to the AO, and posts a final report whose bytes must be kept verbatim.
//!
//! Needs `SEALROOM_MLFLOW_PYTHON` (written to `target/test-env.sh` by the setup script) or the
//! setup script's venv at `target/mlflow-venv`; fails otherwise, unless `SEALROOM_SKIP_MLFLOW=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sealroom_agent::enclave_api::data::PlainDataset;
use sealroom_agent::enclave_api::{
    self, self_signed_acceptor, serve, EnclaveApi, ModelOutput, RunIds,
};
use sealroom_criteria::Criteria;
use sealroom_envelope::Cek;
use tokio::sync::watch;

const SCRIPT: &str = r#"
import base64, json, os, sys
import mlflow, requests, urllib3
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
urllib3.disable_warnings()
api = os.environ["MLFLOW_TRACKING_URI"]

mlflow.set_experiment("sealroom-test")
with mlflow.start_run(run_name="train") as run:
    mlflow.log_param("lr", 0.01)
    mlflow.log_params({"epochs": 3, "optimizer": "adam"})
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"accuracy": 0.9, "f1": 0.85}, step=3)
    mlflow.set_tag("stage", "test")
    run_id = run.info.run_id
got = mlflow.get_run(run_id)
print("run", got.info.status, got.info.run_name, json.dumps(got.data.metrics, sort_keys=True),
      json.dumps(got.data.params, sort_keys=True), got.data.tags.get("stage"))

# A second run in the default experiment, ended as failed; a changed param is refused.
second = mlflow.start_run(experiment_id="0")
mlflow.log_metric("nan", float("nan"))
try:
    MlflowClient().log_param(second.info.run_id, "lr", "1")
    MlflowClient().log_param(second.info.run_id, "lr", "2")
    print("param-change", "accepted")
except MlflowException as e:
    print("param-change", "refused", e.error_code)
mlflow.end_run(status="FAILED")

# The trained model, streamed (chunked transfer encoding).
def chunks():
    for i in range(48):
        yield bytes([i]) * 65536
m = requests.post(f"{api}/api/v1/model?name=weights.bin", data=chunks(),
                  headers={"Content-Type": "application/octet-stream"}, verify=False)
print("model", m.status_code, m.json()["size"])

doc = b'{"n": 12345678901234567890, "acc": 0.90}'
r = requests.post(f"{api}/api/v1/report", verify=False, json={
    "name": "final", "status": "Completed", "json_data": base64.b64encode(doc).decode()})
print("final", r.status_code)
"#;

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SEALROOM_MLFLOW_PYTHON") {
        if !p.is_empty() {
            return Some(PathBuf::from(p));
        }
    }
    if std::env::var("SEALROOM_SKIP_MLFLOW").is_ok_and(|v| v == "1") {
        eprintln!("\n*** SKIPPING the MLflow client test: SEALROOM_SKIP_MLFLOW=1 ***\n");
        return None;
    }
    // The setup script's venv, for a plain `cargo test` without target/test-env.sh sourced.
    let venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/mlflow-venv/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    panic!(
        "SEALROOM_MLFLOW_PYTHON is not set and {} does not exist: run scripts/setup/65-mlflow.sh \
         and source target/test-env.sh (or set SEALROOM_SKIP_MLFLOW=1 to skip this test)",
        venv.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mlflow_client_logs_to_the_enclave_api() {
    let Some(python) = python() else { return };
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("x.csv"), "a\n1\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let cek = Cek::generate().unwrap();
    let criteria = r#"{"n": {"type": "integer"}, "acc": {"type": "float", "min": 0, "max": 1}}"#;
    let api = Arc::new(
        EnclaveApi::new(
            Arc::new(PlainDataset::open(data.path()).unwrap()),
            Criteria::from_json(criteria.as_bytes()).unwrap(),
            vec![],
            RunIds::default(),
        )
        .training(ModelOutput {
            dir: out.path().to_path_buf(),
            cek: cek.clone(),
        }),
    );

    // The API on its unix socket, and the loopback relay the sandbox's launcher runs.
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
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    std::thread::spawn(move || sealroom_agent::forwarder::relay(tcp, sock));

    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg("-c")
        .arg(SCRIPT)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("ENCLAVE_API_URL", &url)
        .envs(enclave_api::sandbox_env(&url))
        .current_dir(home.path())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the MLflow script timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Leaves out the client's own "View run ... at URL" lines.
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.contains(" View ")).collect();
    assert_eq!(
        lines,
        [
            r#"run FINISHED train {"accuracy": 0.9, "f1": 0.85, "loss": 0.3333333333333333} {"epochs": "3", "lr": "0.01", "optimizer": "adam"} test"#,
            "param-change refused INVALID_PARAMETER_VALUE",
            "model 200 3145728",
            "final 200",
        ],
        "stderr:\n{stderr}"
    );
    let _ = stop_tx.send(true);
    server.await.unwrap();

    let reports = api.reports();
    // The performance report.
    let perf = &reports.performance;
    assert_eq!(perf.runs.len(), 2);
    let train = &perf.runs[0];
    assert_eq!(
        (
            train.run_name.as_str(),
            train.experiment_name.as_str(),
            train.status.as_str()
        ),
        ("train", "sealroom-test", "FINISHED")
    );
    assert!(train.end_time.unwrap() >= train.start_time);
    let params: Vec<(&str, &str)> = train
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        params,
        [("epochs", "3"), ("lr", "0.01"), ("optimizer", "adam")]
    );
    let points: Vec<(&str, f64, i64)> = train
        .metrics
        .iter()
        .map(|m| (m.key.as_str(), m.value, m.step))
        .collect();
    assert_eq!(
        points,
        [
            ("loss", 1.0, 0),
            ("loss", 0.5, 1),
            ("loss", 1.0 / 3.0, 2),
            ("accuracy", 0.9, 3),
            ("f1", 0.85, 3)
        ]
    );
    assert!(train
        .metrics
        .iter()
        .all(|m| m.timestamp >= train.start_time));
    let failed = &perf.runs[1];
    assert_eq!(
        (failed.experiment_name.as_str(), failed.status.as_str()),
        ("Default", "FAILED")
    );
    assert_eq!(failed.params.get("lr").map(String::as_str), Some("1"));
    assert!(failed.metrics[0].value.is_nan());
    let json = perf.to_json();
    assert_eq!(json["runs"][1]["metrics"][0]["value"], "NaN");

    // The model, sealed to the AO.
    let model = reports.model.unwrap();
    assert_eq!(
        (model.name.as_str(), model.size),
        ("weights.bin", 48 * 65536)
    );
    let mut file = std::fs::File::open(&model.path).unwrap();
    let (plain, _) = sealroom_envelope::stream::unseal(&mut file, Vec::new(), &cek, &()).unwrap();
    let want: Vec<u8> = (0..48u8)
        .flat_map(|i| std::iter::repeat_n(i, 65536))
        .collect();
    assert!(plain == want);
    let sealed = std::fs::read(&model.path).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &sealed);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(model.sha256, hex);

    // The final report, byte for byte.
    assert_eq!(
        reports.final_report.unwrap().json,
        br#"{"n": 12345678901234567890, "acc": 0.90}"#
    );
}
