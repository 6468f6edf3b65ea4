//! Every endpoint through [`handle`], the function `serve` calls for each request (the TLS and
//! socket layer is exercised by `tests/mlflow.rs` and the `sealroom` crate's `enclave_api` test).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use hyper::{Request, StatusCode};
use sealroom_criteria::Criteria;
use sealroom_envelope::Cek;
use serde_json::{json, Value};

use super::data::PlainDataset;
use super::*;

const CRITERIA: &str = r#"{
  "z": {"type": "integer", "required": true},
  "a": {"type": "float", "min": 0, "max": 2}
}"#;

struct Fixture {
    _data: tempfile::TempDir,
    out: tempfile::TempDir,
    big: Vec<u8>,
}

fn fixture() -> Fixture {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("sub")).unwrap();
    std::fs::write(data.path().join("sub/labels.csv"), "id,label\n1,0\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(data.path().join("big.bin"), &big).unwrap();
    Fixture {
        _data: data,
        out: tempfile::tempdir().unwrap(),
        big,
    }
}

fn api(f: &Fixture) -> EnclaveApi {
    EnclaveApi::new(
        Arc::new(PlainDataset::open(f._data.path()).unwrap()),
        Criteria::from_json(CRITERIA.as_bytes()).unwrap(),
        vec![("EPOCHS".into(), "3".into())],
        RunIds {
            project: "p".into(),
            run: "r".into(),
            run_config: "c".into(),
        },
    )
}

fn training(f: &Fixture, cek: &Cek, limits: ApiLimits) -> Arc<EnclaveApi> {
    Arc::new(
        api(f)
            .training(ModelOutput {
                dir: f.out.path().to_path_buf(),
                cek: cek.clone(),
            })
            .with_limits(limits),
    )
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        assert_eq!(
            self.headers[CONTENT_TYPE], "application/json",
            "status {}",
            self.status
        );
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn send<B>(api: &Arc<EnclaveApi>, req: Request<B>) -> Answer
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let resp = handle(api.clone(), req).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn call(
    api: &Arc<EnclaveApi>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(api, req.body(Full::new(body.into())).unwrap()).await
}

const JSON: (&str, &str) = ("content-type", "application/json");
const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");

fn report(doc: &[u8], status: &str) -> Vec<u8> {
    json!({
        "name": "model", "status": status, "project": "p", "run": "r", "run_configuration": "c",
        "upload_location": "unused",
        "json_data": base64::engine::general_purpose::STANDARD.encode(doc),
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn lists_and_reads_files() {
    let f = fixture();
    let api = Arc::new(api(&f));
    let a = call(&api, "GET", "/api/v1/data/files", &[], "").await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["totalFiles"], 2);
    assert_eq!(v["files"][0]["name"], "big.bin");
    assert_eq!(v["files"][1]["name"], "sub/labels.csv");
    assert_eq!(v["files"][0]["size"], 300_000);
    assert_eq!(v["files"][0]["id"].as_str().unwrap().len(), 36);

    let a = call(
        &api,
        "GET",
        "/api/v1/data/file?filepath=sub%2Flabels.csv",
        &[],
        "",
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_slice()),
        (StatusCode::OK, &b"id,label\n1,0\n"[..])
    );
    let a = call(&api, "GET", "/api/v1/data/file?filepath=big.bin", &[], "").await;
    assert_eq!(a.body, f.big);
    let a = call(
        &api,
        "GET",
        "/api/v1/data/file?filepath=big.bin",
        &[("range", "bytes=65530-65545")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(a.headers[CONTENT_RANGE], "bytes 65530-65545/300000");
    assert_eq!(a.body, f.big[65530..65546]);
    let a = call(
        &api,
        "GET",
        "/api/v1/data/file?filepath=big.bin",
        &[(RANGE.as_str(), "bytes=300000-")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(a.headers[CONTENT_RANGE], "bytes */300000");
    let a = call(&api, "GET", "/api/v1/data/file?filepath=nope", &[], "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.json()["error"].is_string());
    let a = call(&api, "GET", "/api/v1/data/file", &[], "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = call(&api, "POST", "/api/v1/data/files", &[], "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    let a = call(&api, "GET", "/api/v1/nothing", &[], "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.json()["error"].is_string());
}

#[tokio::test]
async fn parameters() {
    let f = fixture();
    let api = Arc::new(api(&f));
    let a = call(&api, "GET", "/api/v1/parameters", &[], "").await;
    assert_eq!(a.json(), json!({"parameters": {"EPOCHS": "3"}}));
}

#[tokio::test]
async fn validate_answers_like_escrowai() {
    let f = fixture();
    let api = Arc::new(api(&f).with_limits(ApiLimits {
        max_body: 4096,
        ..ApiLimits::default()
    }));
    let a = call(
        &api,
        "POST",
        "/api/v1/validate",
        &[JSON],
        report(br#"{"z": 1, "a": 0.5}"#, "Completed"),
    )
    .await;
    assert_eq!(
        (a.status, a.json()["status"].as_str()),
        (StatusCode::OK, Some("successful"))
    );
    let a = call(
        &api,
        "POST",
        "/api/v1/validate",
        &[JSON],
        report(br#"{"z": 1, "rows": ["x"]}"#, "Completed"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let v = a.json();
    assert_eq!(v["status"], "failed");
    assert!(v["message"]["rows"].is_array(), "{v}");
    // Malformed bodies: JSON errors, never a panic or an HTML page.
    for (headers, body, status) in [
        (vec![JSON], b"{not json".to_vec(), StatusCode::BAD_REQUEST),
        (vec![JSON], b"[1, 2]".to_vec(), StatusCode::BAD_REQUEST),
        (
            vec![JSON],
            br#"{"json_data": 5}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![JSON],
            br#"{"json_data": "!!!"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![],
            report(b"{}", "Completed"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (vec![JSON], vec![b' '; 5000], StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let a = call(&api, "POST", "/api/v1/validate", &headers, body).await;
        assert_eq!(a.status, status);
        assert!(a.json().is_object());
    }
    // json_data that is not JSON fails validation with the criteria's error shape.
    let a = call(
        &api,
        "POST",
        "/api/v1/validate",
        &[JSON],
        report(b"{nope", "Completed"),
    )
    .await;
    assert_eq!(
        (a.status, a.json()["status"].as_str()),
        (StatusCode::BAD_REQUEST, Some("failed"))
    );
}

#[tokio::test]
async fn the_final_report_is_kept_byte_for_byte() {
    let f = fixture();
    let api = Arc::new(api(&f).with_limits(ApiLimits {
        max_progress_reports: 2,
        ..ApiLimits::default()
    }));
    // A large integer that an f64 cannot hold, keys out of order, a float with a trailing zero
    // and odd spacing: re-serializing would change every one of them.
    let doc = b"{ \"z\": 12345678901234567890,\n  \"a\": 1.10 }";
    let leaky = br#"{"z": 1, "rows": ["patient 1"]}"#;
    let a = call(
        &api,
        "POST",
        "/api/v1/report",
        &[JSON],
        report(leaky, "Completed"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(api.reports().final_report.is_none());
    assert_eq!(api.reports().rejected_finals, 1);

    let a = call(
        &api,
        "POST",
        "/api/v1/report",
        &[JSON],
        report(doc, "Completed"),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    let fin = api.reports().final_report.unwrap();
    assert_eq!(fin.json, doc);
    assert_eq!(
        (fin.name.as_str(), fin.status.as_str()),
        ("model", "Completed")
    );

    // Progress reports: kept verbatim too, up to the limit.
    let p = br#"{"epoch":1,"big":123456789012345678901234567890}"#;
    for _ in 0..2 {
        let a = call(
            &api,
            "POST",
            "/api/v1/report",
            &[JSON],
            report(p, "In Progress"),
        )
        .await;
        assert_eq!(a.json(), json!({"message": "report posted"}));
    }
    let a = call(
        &api,
        "POST",
        "/api/v1/report",
        &[JSON],
        report(p, "In Progress"),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = api.reports();
    assert_eq!((r.progress.len(), r.dropped_progress), (2, 1));
    assert_eq!(r.progress[0].json, p);
    let a = call(
        &api,
        "POST",
        "/api/v1/report",
        &[JSON],
        report(b"not json", "In Progress"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

fn unseal(path: &std::path::Path, cek: &Cek) -> Vec<u8> {
    let mut file = std::fs::File::open(path).unwrap();
    let (out, _) = sealroom_envelope::stream::unseal(&mut file, Vec::new(), cek, &()).unwrap();
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A body that yields `chunks` and then, if `fail`, an error (a connection cut mid-upload).
struct Chunks {
    chunks: Vec<Bytes>,
    fail: bool,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let me = self.get_mut();
        if !me.chunks.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(me.chunks.remove(0)))));
        }
        if std::mem::take(&mut me.fail) {
            return Poll::Ready(Some(Err(std::io::Error::other("connection reset"))));
        }
        Poll::Ready(None)
    }
}

#[tokio::test]
async fn a_training_run_uploads_its_model_sealed() {
    let f = fixture();
    let cek = Cek::generate().unwrap();
    let api = training(
        &f,
        &cek,
        ApiLimits {
            max_model_bytes: 10 << 20,
            ..ApiLimits::default()
        },
    );
    assert_eq!(api.algorithm(), AlgorithmType::Training);
    // 5 MiB and a bit: more than one batch of the sealer, sent in uneven chunks.
    let model: Vec<u8> = (0..(5u32 << 20) + 12_345)
        .map(|i| (i % 253) as u8)
        .collect();
    let chunks = model.chunks(700_001).map(Bytes::copy_from_slice).collect();
    let req = Request::post("/api/v1/model?name=weights.pt")
        .header("content-type", "application/octet-stream")
        .body(Chunks {
            chunks,
            fail: false,
        })
        .unwrap();
    let a = send(&api, req).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    let v = a.json();
    let stored = api.reports().model.unwrap();
    assert_eq!(stored.name, "weights.pt");
    assert_eq!(stored.size, model.len() as u64);
    assert_eq!(stored.path, f.out.path().join(MODEL_FILE_NAME));
    assert_eq!(stored.key_id, cek.key_id().to_string());
    let sealed = std::fs::read(&stored.path).unwrap();
    assert_eq!(stored.sealed_size, sealed.len() as u64);
    assert_eq!(stored.sha256, sha256_hex(&sealed));
    assert_eq!(
        (v["sha256"].as_str(), v["size"].as_u64()),
        (Some(stored.sha256.as_str()), Some(stored.size))
    );
    assert!(
        !sealed.windows(64).any(|w| w == &model[1000..1064]),
        "no plaintext in the file"
    );
    assert_eq!(unseal(&stored.path, &cek), model);

    // A second upload replaces the first.
    let a = call(
        &api,
        "POST",
        "/api/v1/model",
        &[OCTETS],
        &b"second model"[..],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let second = api.reports().model.unwrap();
    assert_eq!((second.name.as_str(), second.size), ("model", 12));
    assert_eq!(unseal(&second.path, &cek), b"second model");
    assert_eq!(dir_entries(f.out.path()), [MODEL_FILE_NAME]);

    // Failed uploads leave it as it is, and no partial file behind.
    let cut = Request::post("/api/v1/model?name=cut")
        .body(Chunks {
            chunks: vec![Bytes::from(vec![1u8; 100_000])],
            fail: true,
        })
        .unwrap();
    assert_eq!(send(&api, cut).await.status, StatusCode::BAD_REQUEST);
    let over = Request::post("/api/v1/model")
        .body(Chunks {
            chunks: vec![Bytes::from(vec![1u8; 6 << 20]); 2],
            fail: false,
        })
        .unwrap();
    let a = send(&api, over).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.json()["error"].is_string());
    let a = call(
        &api,
        "POST",
        "/api/v1/model",
        &[OCTETS, ("content-length", "11534336")],
        vec![0u8; 11 << 20],
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    for (uri, headers) in [
        ("/api/v1/model?name=..%2Fx", vec![OCTETS]),
        ("/api/v1/model?name=", vec![OCTETS]),
        ("/api/v1/model?name=.hidden", vec![OCTETS]),
    ] {
        assert_eq!(
            call(&api, "POST", uri, &headers, "x").await.status,
            StatusCode::BAD_REQUEST,
            "{uri}"
        );
    }
    let a = call(&api, "POST", "/api/v1/model", &[JSON], "{}").await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let a = call(&api, "GET", "/api/v1/model", &[], "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(api.reports().model.unwrap(), second);
    assert_eq!(dir_entries(f.out.path()), [MODEL_FILE_NAME]);
    assert_eq!(unseal(&second.path, &cek), b"second model");
}

#[tokio::test]
async fn a_validation_run_cannot_upload_a_model() {
    let f = fixture();
    let api = Arc::new(api(&f));
    assert_eq!(api.algorithm(), AlgorithmType::Validation);
    let a = call(&api, "POST", "/api/v1/model", &[OCTETS], "weights").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.json()["error"].is_string());
    assert!(api.reports().model.is_none());
    assert!(dir_entries(f.out.path()).is_empty());
}

#[tokio::test]
async fn mlflow_over_http() {
    let f = fixture();
    let mut limits = ApiLimits::default();
    limits.tracking.max_body = 1000;
    let api = Arc::new(api(&f).with_limits(limits));
    let a = call(
        &api,
        "POST",
        "/api/2.0/mlflow/runs/create",
        &[JSON],
        r#"{"run_name": "t"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let id = a.json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"run_id": id, "key": "loss", "value": 0.25, "timestamp": 5, "step": 3});
    let a = call(
        &api,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        &[JSON],
        body.to_string(),
    )
    .await;
    assert_eq!((a.status, a.json()), (StatusCode::OK, json!({})));
    let a = call(
        &api,
        "GET",
        &format!("/api/2.0/mlflow/runs/get?run_id={id}"),
        &[],
        "",
    )
    .await;
    assert_eq!(a.json()["run"]["data"]["metrics"][0]["value"], 0.25);
    let a = call(
        &api,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        &[JSON],
        "{oops",
    )
    .await;
    assert_eq!(
        (a.status, a.json()["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MALFORMED_REQUEST"))
    );
    let a = call(
        &api,
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        &[JSON],
        vec![b' '; 1001],
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["error_code"], "RESOURCE_LIMIT_EXCEEDED");
    let a = call(&api, "GET", "/api/2.0/mlflow/artifacts/list", &[], "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let perf = api.reports().performance;
    assert_eq!(perf.runs.len(), 1);
    assert_eq!(perf.runs[0].run_name, "t");
    assert_eq!(
        perf.runs[0].metrics,
        [MetricPoint {
            key: "loss".into(),
            value: 0.25,
            timestamp: 5,
            step: 3
        }]
    );
}

#[test]
fn the_sandbox_environment_points_mlflow_at_the_api() {
    let env = sandbox_env("https://localhost:5000/");
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("MLFLOW_TRACKING_URI"), Some("https://localhost:5000"));
    assert_eq!(get("MLFLOW_TRACKING_INSECURE_TLS"), Some("true"));
}

#[test]
fn the_fuzz_entry_points_take_anything() {
    let inputs: [&[u8]; 6] = [
        b"",
        b"\x00{}",
        b"\x09{\"run_id\": \"x\", \"metrics\": [{}]}",
        b"\x85run_id=%ff&run_uuid",
        b"\xff\xfe\xfd",
        br#"{"json_data": "e30=", "status": "Completed"}"#,
    ];
    for input in inputs {
        fuzzing::report_body(input);
        fuzzing::tracking_request(input);
    }
}
