//! Request building and response decoding of every route, over real HTTP against a recording
//! loopback listener: each test checks the method, path, query, headers and body the client
//! sends, and that a response in the documented shape decodes into the client's types.
//!
//! The recording listener pins the exact requests; the same routes run against the real server
//! in `crates/sealroom/tests/client_cli.rs` (accounts) and `crates/sealroom/tests/cli_flow.rs`
//! (the whole collaboration through the CLI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use sealroom_client::*;
use sealroom_types::*;
use serde_json::{json, Value};

/// One request as the listener received it.
#[derive(Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A canned answer.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn ok(v: Value) -> Answer {
    status(200, v)
}

fn status(status: u16, v: Value) -> Answer {
    Answer {
        status,
        headers: vec![("Content-Type", "application/json".into())],
        body: if v.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&v).unwrap()
        },
    }
}

/// Serves the answers in order, one connection each, and reports what it received.
struct Recorder {
    url: String,
    seen: mpsc::Receiver<Seen>,
}

impl Recorder {
    fn start(answers: Vec<Answer>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for answer in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap().to_string();
                let target = parts.next().unwrap().to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
                let get = |n: &str| {
                    headers
                        .iter()
                        .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
                        .map(|(_, v)| v.clone())
                };
                let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
                let mut body = Vec::new();
                if chunked {
                    loop {
                        let mut size = String::new();
                        r.read_line(&mut size).unwrap();
                        let n = usize::from_str_radix(size.trim(), 16).unwrap();
                        let mut chunk = vec![0u8; n + 2];
                        r.read_exact(&mut chunk).unwrap();
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                } else if let Some(len) = get("content-length") {
                    body.resize(len.parse().unwrap(), 0);
                    r.read_exact(&mut body).unwrap();
                }
                tx.send(Seen {
                    method,
                    target,
                    headers,
                    body,
                    chunked,
                })
                .unwrap();
                let mut out = stream;
                let reason = if answer.status < 400 { "OK" } else { "Error" };
                let mut head = format!(
                    "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    answer.status,
                    answer.body.len()
                );
                for (k, v) in &answer.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                out.write_all(head.as_bytes()).unwrap();
                out.write_all(&answer.body).unwrap();
            }
        });
        Recorder { url, seen: rx }
    }

    fn client(&self) -> Client {
        Client::builder(&self.url).token("sr_test").build().unwrap()
    }

    fn next(&self) -> Seen {
        let s = self
            .seen
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(s.header("authorization"), Some("Bearer sr_test"));
        s
    }
}

// ---- sample records in the domain types' own serde shapes ----------------------------------

fn now() -> Timestamp {
    Timestamp::from_secs(1_767_225_600)
}

fn project() -> Project {
    Project {
        id: ProjectId::new(),
        name: Name::parse("Trial").unwrap(),
        description: "d".into(),
        state: ProjectState::Active,
        technology: Technology::Simulated,
        algorithm_logs_to_ao: false,
        created_at: now(),
        updated_at: now(),
    }
}

fn wcek(project_id: ProjectId) -> WcekVersion {
    WcekVersion {
        id: WcekId::new(),
        project_id,
        role: Role::AlgorithmOwner,
        version: 2,
        fingerprint: "ab".repeat(32),
        cek_key_id: Some("cd".repeat(32)),
        uploaded_by: UserId::new(),
        created_at: now(),
        is_latest: true,
    }
}

fn artifact(project_id: ProjectId) -> Artifact {
    Artifact {
        id: ArtifactId::new(),
        project_id,
        kind: ArtifactKind::Algorithm,
        owner_org_id: OrgId::new(),
        name: Name::parse("Model").unwrap(),
        description: String::new(),
        algorithm_type: Some(AlgorithmType::Validation),
        created_by: UserId::new(),
        created_at: now(),
        latest_version: 1,
    }
}

fn version(artifact_id: ArtifactId) -> ArtifactVersion {
    ArtifactVersion {
        id: VersionId::new(),
        artifact_id,
        project_id: ProjectId::new(),
        version: 1,
        tag: VersionTag::parse("v1").unwrap(),
        description: String::new(),
        uploaded_by: UserId::new(),
        created_at: now(),
        blob: Some(BlobRef {
            key: "k".into(),
            size: 3,
            sha256: "00".repeat(32),
            file_name: "pkg.tar".into(),
        }),
        detail: VersionDetail::Algorithm {
            algorithm_type: AlgorithmType::Validation,
            upload_steps: vec![],
            workload_digest: None,
            wcek_fingerprint: None,
        },
    }
}

fn run(run_config_id: RunConfigId) -> Run {
    Run {
        id: RunId::new(),
        project_id: ProjectId::new(),
        run_config_id,
        state: RunState::Requested,
        params: RuntimeParams::from_pairs([("epochs", "3")]).unwrap(),
        compute: ComputeSize {
            vcpus: 1,
            ram_gib: 2,
        },
        requested_by: UserId::new(),
        requested_at: now(),
        initiated_by: None,
        reason: None,
        site_id: None,
        updated_at: now(),
    }
}

fn j<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

// ---- tests ---------------------------------------------------------------------------------

#[test]
fn api_errors_and_transport_errors() {
    let r = Recorder::start(vec![
        status(
            404,
            json!({"code": "not_found", "message": "project x not found"}),
        ),
        Answer {
            status: 502,
            headers: vec![("Content-Type", "text/html".into())],
            body: b"<html>bad gateway</html>".to_vec(),
        },
        ok(json!({"unexpected": true})),
    ]);
    let c = r.client();
    let pid = ProjectId::new();
    let e = c.project(pid).unwrap_err();
    assert!(e.is(ErrorCode::NotFound), "{e}");
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.to_string(), "project x not found (not_found, HTTP 404)");
    r.next();
    let e = c.project(pid).unwrap_err();
    assert!(
        matches!(&e, ClientError::UnexpectedResponse { status: 502, detail, .. } if detail.contains("bad gateway")),
        "{e}"
    );
    r.next();
    let e = c.project(pid).unwrap_err();
    assert!(
        matches!(e, ClientError::UnexpectedResponse { status: 200, .. }),
        "{e}"
    );
    r.next();

    // Nothing listens: the error names the URL.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let e = c.me().unwrap_err();
    assert!(matches!(e, ClientError::Transport { .. }));
    assert!(
        e.to_string()
            .contains(&format!("http://127.0.0.1:{port}/api/v1/me")),
        "{e}"
    );
}

#[test]
fn projects_and_keys() {
    let p = project();
    let page = json!({
        "project": j(&p),
        "members": [{"org_id": OrgId::new(), "org_name": "Model Co", "role": "algorithm_owner"}],
        "keys": [],
        "latest_wceks": {"algorithm_owner": j(&wcek(p.id)), "data_steward": null},
        "my_role": "algorithm_owner",
    });
    let mut item = j(&p);
    item["my_role"] = json!("data_steward");
    let r = Recorder::start(vec![
        status(201, page.clone()),
        ok(json!({"items": [item], "next_cursor": "c2"})),
        ok(page),
        status(204, Value::Null),
        ok(json!({"ok": true})),
        ok(j(&p)),
        Answer {
            status: 200,
            headers: vec![
                ("Content-Type", "application/octet-stream".into()),
                (
                    "Content-Disposition",
                    "attachment; filename=\"Trial-x1-ao.der\"".into(),
                ),
            ],
            body: vec![0x30, 0x82, 1, 2],
        },
        status(201, j(&wcek(p.id))),
        ok(json!([j(&wcek(p.id))])),
    ]);
    let c = r.client();
    let ao = OrgId::new();
    let ds = OrgId::new();
    let made = c
        .create_project(&NewProject {
            name: "Trial",
            description: "d",
            technology: Technology::SevSnp,
            members: vec![
                MemberSpec {
                    org_id: ao,
                    role: Role::AlgorithmOwner,
                },
                MemberSpec {
                    org_id: ds,
                    role: Role::DataSteward,
                },
            ],
        })
        .unwrap();
    assert_eq!(made.project.id, p.id);
    assert_eq!(made.latest_wceks.algorithm_owner.unwrap().version, 2);
    let s = r.next();
    assert_eq!(
        (s.method.as_str(), s.target.as_str()),
        ("POST", "/api/v1/projects")
    );
    assert_eq!(
        s.json(),
        json!({"name": "Trial", "description": "d", "technology": "sev-snp",
               "members": [{"org_id": ao, "role": "algorithm_owner"}, {"org_id": ds, "role": "data_steward"}]})
    );

    let list = c.list_projects(Some("c1"), Some(50)).unwrap();
    assert_eq!(list.items[0].my_role, Some(Role::DataSteward));
    assert_eq!(list.next_cursor.as_deref(), Some("c2"));
    assert_eq!(r.next().target, "/api/v1/projects?cursor=c1&limit=50");

    assert_eq!(c.project(p.id).unwrap().members[0].org_name, "Model Co");
    assert_eq!(r.next().target, format!("/api/v1/projects/{}", p.id));

    assert!(c
        .set_project_state(p.id, ProjectState::Paused)
        .unwrap()
        .is_null());
    let s = r.next();
    assert_eq!(
        (s.method.as_str(), s.target.clone()),
        ("PUT", format!("/api/v1/projects/{}/state", p.id))
    );
    assert_eq!(s.json(), json!({"state": "paused"}));

    c.add_project_member(p.id, ds, Role::DataSteward).unwrap();
    let s = r.next();
    assert_eq!(s.target, format!("/api/v1/projects/{}/members", p.id));
    assert_eq!(s.json(), json!({"org_id": ds, "role": "data_steward"}));

    c.set_project_settings(p.id, true).unwrap();
    let s = r.next();
    assert_eq!(
        (s.method.as_str(), s.target.clone()),
        ("PUT", format!("/api/v1/projects/{}/settings", p.id))
    );
    assert_eq!(s.json(), json!({"algorithm_logs_to_ao": true}));

    let mut der = Vec::new();
    let d = c
        .download_kek(p.id, Role::AlgorithmOwner, &mut der)
        .unwrap();
    assert_eq!(der, vec![0x30, 0x82, 1, 2]);
    assert_eq!(d.file_name.as_deref(), Some("Trial-x1-ao.der"));
    assert_eq!(
        r.next().target,
        format!("/api/v1/projects/{}/keys/ao/kek", p.id)
    );

    let w = c.upload_wcek(p.id, Role::DataSteward, &[9u8; 512]).unwrap();
    assert_eq!(w.version, 2);
    let s = r.next();
    assert_eq!(
        (s.method.as_str(), s.target.clone()),
        ("POST", format!("/api/v1/projects/{}/keys/ds/wcek", p.id))
    );
    assert_eq!(s.header("content-type"), Some("application/octet-stream"));
    assert_eq!(s.header("content-length"), Some("512"));
    assert_eq!(s.body, vec![9u8; 512]);

    assert_eq!(c.list_wceks(p.id, Role::AlgorithmOwner).unwrap().len(), 1);
    assert_eq!(
        r.next().target,
        format!("/api/v1/projects/{}/keys/ao/wceks", p.id)
    );
}

#[test]
fn artifacts_versions_and_storage() {
    let p = project();
    let a = artifact(p.id);
    let v = version(a.id);
    let r = Recorder::start(vec![
        status(201, j(&a)),
        ok(json!([j(&a)])),
        ok(j(&a)),
        status(201, j(&v)),
        status(201, j(&v)),
        status(201, j(&v)),
        ok(json!([j(&v)])),
        ok({
            let mut d = j(&v);
            d["detail"] = json!({"kind": "dataset",
                "location": {"url_kind": "sealroom", "expires_at": "2026-03-01T00:00:00Z", "status": "valid"},
                "certification": null, "data_specification_version": null,
                "attestation_report_version": null, "wcek_fingerprint": null});
            d
        }),
        Answer {
            status: 200,
            headers: vec![("Content-Type", "application/octet-stream".into())],
            body: vec![5u8; 200_000],
        },
        ok(j(&v)),
        status(204, Value::Null),
        status(
            201,
            json!({"key": "projects/x/data/a b.sealed", "size": 10, "sha256": "ff"}),
        ),
        ok(json!([{"path": "data/a b.sealed", "size": 10}])),
        ok(json!({"url": "http://h/blobs/x?sig=1", "expires_at": "2026-02-01T00:00:00Z"})),
    ]);
    let c = r.client();
    c.create_artifact(
        p.id,
        &NewArtifact {
            kind: ArtifactKind::Algorithm,
            name: "Model",
            description: "",
            algorithm_type: Some(AlgorithmType::Validation),
        },
    )
    .unwrap();
    let s = r.next();
    assert_eq!(s.target, format!("/api/v1/projects/{}/artifacts", p.id));
    assert_eq!(
        s.json(),
        json!({"kind": "algorithm", "name": "Model", "description": "", "algorithm_type": "validation"})
    );
    c.list_artifacts(p.id, Some(ArtifactKind::Dataset)).unwrap();
    assert_eq!(
        r.next().target,
        format!("/api/v1/projects/{}/artifacts?kind=dataset", p.id)
    );
    c.artifact(a.id).unwrap();
    assert_eq!(r.next().target, format!("/api/v1/artifacts/{}", a.id));

    c.add_json_version(
        a.id,
        &NewJsonVersion::ValidationCriteria {
            tag: "v1",
            description: "first",
            criteria: json!({"accuracy": {"type": "float", "min": 0.9}}),
        },
    )
    .unwrap();
    let s = r.next();
    assert_eq!(s.target, format!("/api/v1/artifacts/{}/versions", a.id));
    assert_eq!(
        s.json(),
        json!({"tag": "v1", "description": "first", "criteria": {"accuracy": {"type": "float", "min": 0.9}}})
    );
    let spec = VersionId::new();
    c.add_json_version(
        a.id,
        &NewJsonVersion::Dataset {
            tag: "2024-03",
            description: "",
            url: "https://acct.blob.core.windows.net/c?sig=x",
            data_specification_version: Some(spec),
            attestation_report_version: None,
        },
    )
    .unwrap();
    assert_eq!(
        r.next().json(),
        json!({"tag": "2024-03", "description": "", "url": "https://acct.blob.core.windows.net/c?sig=x",
               "data_specification_version": spec})
    );

    // A streamed upload: the query carries the metadata, the body the bytes; progress adds up.
    let data = vec![7u8; 300_000];
    let sent = std::cell::Cell::new(0u64);
    let progress = |n: u64| sent.set(sent.get() + n);
    let mut reader = &data[..];
    c.upload_version(
        a.id,
        &FileVersion {
            tag: "v 1",
            description: "spec & notes",
            file_name: "spec.pdf",
            data_specification_version: Some(spec),
        },
        Upload::new(&mut reader, Some(data.len() as u64)).progress(&progress),
    )
    .unwrap();
    let s = r.next();
    assert_eq!(
        s.target,
        format!(
            "/api/v1/artifacts/{}/versions/upload?tag=v%201&description=spec%20%26%20notes&file_name=spec.pdf&data_specification_version={spec}",
            a.id
        )
    );
    assert_eq!(s.header("content-length"), Some("300000"));
    assert!(!s.chunked);
    assert_eq!(s.body, data);
    assert_eq!(sent.get(), 300_000);

    c.list_versions(a.id).unwrap();
    assert_eq!(
        r.next().target,
        format!("/api/v1/artifacts/{}/versions", a.id)
    );
    // What a member who does not own the dataset sees: no URL, a computed status.
    let seen = c.version(v.id).unwrap();
    assert_eq!(seen.kind(), Some(ArtifactKind::Dataset));
    assert_eq!(seen.detail["location"]["status"], "valid");
    assert!(seen.typed_detail().is_none());
    assert_eq!(r.next().target, format!("/api/v1/versions/{}", v.id));

    let got = std::cell::Cell::new(0u64);
    let progress = |n: u64| got.set(got.get() + n);
    let mut out = Vec::new();
    let d = c.download_version(v.id, &mut out, &progress).unwrap();
    assert_eq!((d.bytes, out.len(), got.get()), (200_000, 200_000, 200_000));
    assert_eq!(
        r.next().target,
        format!("/api/v1/versions/{}/content", v.id)
    );

    assert!(!c.accept_version(v.id).unwrap().is_null());
    let s = r.next();
    assert_eq!(
        (s.method.as_str(), s.target.clone()),
        ("POST", format!("/api/v1/versions/{}/accept", v.id))
    );
    assert!(c.certify_version(v.id).unwrap().is_null());
    assert_eq!(
        r.next().target,
        format!("/api/v1/versions/{}/certify", v.id)
    );

    let sealed = b"SEALROOM..".to_vec();
    let mut reader = &sealed[..];
    let o = c
        .put_storage(p.id, "/data/a b.sealed", Upload::new(&mut reader, Some(10)))
        .unwrap();
    assert_eq!(o.size, 10);
    let s = r.next();
    assert_eq!(
        (s.method.as_str(), s.target.clone()),
        (
            "PUT",
            format!("/api/v1/projects/{}/storage/data/a%20b.sealed", p.id)
        )
    );
    assert_eq!(s.body, sealed);
    assert!(c
        .put_storage(p.id, "../x", Upload::new(&mut &b""[..], Some(0)))
        .is_err());

    assert_eq!(c.list_storage(p.id).unwrap()[0].path, "data/a b.sealed");
    assert_eq!(
        r.next().target,
        format!("/api/v1/projects/{}/storage", p.id)
    );
    let u = c.sign_storage(p.id, "data/", 48).unwrap();
    assert!(u.url.contains("sig="));
    assert_eq!(
        r.next().json(),
        json!({"prefix": "data/", "expires_in_hours": 48})
    );
}

#[test]
fn unknown_length_uploads_are_chunked() {
    let p = project();
    let a = artifact(p.id);
    let r = Recorder::start(vec![status(201, j(&version(a.id)))]);
    let c = r.client();
    let data = vec![3u8; 70_000];
    let mut reader = std::io::Cursor::new(data.clone());
    c.upload_version(
        a.id,
        &FileVersion {
            tag: "v1",
            description: "",
            file_name: "pkg.tar",
            data_specification_version: None,
        },
        Upload::new(&mut reader, None),
    )
    .unwrap();
    let s = r.next();
    assert!(s.chunked);
    assert_eq!(s.body, data);
}

#[test]
fn a_failing_local_reader_is_an_io_error() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accept and hold the connection; the client fails while reading its own body.
    let t = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let c = Client::builder(&url).token("x").build().unwrap();
    let e = c
        .put_storage(ProjectId::new(), "a", Upload::new(&mut Broken, Some(10)))
        .unwrap_err();
    assert!(matches!(e, ClientError::Io { .. }), "{e}");
    assert!(e.to_string().contains("disk on fire"), "{e}");
    drop(t);
}

#[test]
fn runs_logs_and_outputs() {
    let p = project();
    let rc = RunConfig {
        id: RunConfigId::new(),
        project_id: p.id,
        name: Name::parse("Validation").unwrap(),
        description: String::new(),
        algorithm_version_id: VersionId::new(),
        dataset_version_id: VersionId::new(),
        criteria_version_id: None,
        created_by: UserId::new(),
        created_at: now(),
    };
    let run = run(rc.id);
    let history = RunStateChange {
        run_id: run.id,
        seq: 1,
        from: None,
        to: RunState::Requested,
        actor: Actor::User(UserId::new()),
        message: None,
        at: now(),
    };
    let line = RunLogLine {
        seq: 7,
        stream: LogStream::Stage,
        at: now(),
        line: "building".into(),
    };
    let output_json = json!({
        "id": "final_report:report", "kind": "final_report", "name": "report", "size": 2,
        "sha256": "aa", "passed_criteria": true, "created_at": "2026-01-01T00:00:00Z",
        "owner": "algorithm_owner", "content_visible": false,
    });
    let r = Recorder::start(vec![
        status(201, j(&rc)),
        ok(json!([j(&rc)])),
        ok(j(&rc)),
        status(201, j(&run)),
        ok(json!([j(&run)])),
        ok(json!({"run": j(&run), "history": [j(&history)]})),
        ok(json!({"run": j(&run)})),
        ok(j(&run)),
        status(204, Value::Null),
        ok(json!({"lines": [j(&line)], "next_after": 7, "streams": ["stage", "algorithm"]})),
        ok(json!([output_json])),
        ok(json!({"accuracy": 0.93})),
        Answer {
            status: 200,
            headers: vec![("Content-Type", "application/json".into())],
            body: b"{}".to_vec(),
        },
    ]);
    let c = r.client();
    let alg = VersionId::new();
    let data = VersionId::new();
    c.create_run_config(
        p.id,
        &NewRunConfig {
            name: "Validation",
            description: "",
            algorithm_version_id: alg,
            dataset_version_id: data,
            criteria_version_id: None,
        },
    )
    .unwrap();
    let s = r.next();
    assert_eq!(s.target, format!("/api/v1/projects/{}/run-configs", p.id));
    assert_eq!(
        s.json(),
        json!({"name": "Validation", "description": "", "algorithm_version_id": alg, "dataset_version_id": data})
    );
    c.list_run_configs(p.id).unwrap();
    r.next();
    c.run_config(rc.id).unwrap();
    assert_eq!(r.next().target, format!("/api/v1/run-configs/{}", rc.id));

    let mut params = BTreeMap::new();
    params.insert("epochs".to_string(), "3".to_string());
    let got = c
        .request_run(
            rc.id,
            &NewRun {
                params,
                vcpus: 2,
                ram_gib: 4,
            },
        )
        .unwrap();
    assert_eq!(got.state, RunState::Requested);
    let s = r.next();
    assert_eq!(s.target, format!("/api/v1/run-configs/{}/runs", rc.id));
    assert_eq!(
        s.json(),
        json!({"params": {"epochs": "3"}, "vcpus": 2, "ram_gib": 4})
    );

    c.list_runs(p.id, Some(rc.id)).unwrap();
    assert_eq!(
        r.next().target,
        format!("/api/v1/projects/{}/runs?run_config_id={}", p.id, rc.id)
    );
    let d = c.run(run.id).unwrap();
    assert_eq!(d.history.len(), 1);
    r.next();

    c.initiate_run(run.id).unwrap();
    let s = r.next();
    assert_eq!(
        (s.method.as_str(), s.target.clone()),
        ("POST", format!("/api/v1/runs/{}/initiate", run.id))
    );
    c.reject_run(run.id, "wrong dataset").unwrap();
    let s = r.next();
    assert_eq!(s.target, format!("/api/v1/runs/{}/reject", run.id));
    assert_eq!(s.json(), json!({"reason": "wrong dataset"}));
    c.cancel_run(run.id, None).unwrap();
    let s = r.next();
    assert_eq!(s.target, format!("/api/v1/runs/{}/cancel", run.id));
    assert_eq!(s.json(), json!({}));

    let logs = c
        .run_logs(run.id, Some(LogStream::Algorithm), Some(5), Some(100))
        .unwrap();
    assert_eq!(logs.last_seq(), Some(7));
    assert_eq!(
        r.next().target,
        format!(
            "/api/v1/runs/{}/logs?stream=algorithm&after=5&limit=100",
            run.id
        )
    );
    let outs = c.run_outputs(run.id).unwrap();
    assert_eq!(outs[0].id, "final_report:report");
    assert_eq!(outs[0].passed_criteria, Some(true));
    assert_eq!(outs[0].content_visible, Some(false));
    r.next();
    assert_eq!(c.run_report(run.id).unwrap()["accuracy"], 0.93);
    assert_eq!(r.next().target, format!("/api/v1/runs/{}/report", run.id));
    let mut out = Vec::new();
    c.download_output(run.id, "out-1", &mut out, &|_| {})
        .unwrap();
    assert_eq!(
        r.next().target,
        format!("/api/v1/runs/{}/outputs/out-1/content", run.id)
    );
}

#[test]
fn comms_search_and_audit() {
    let p = project();
    let n = Notification {
        id: NotificationId::new(),
        user_id: UserId::new(),
        project_id: p.id,
        run_id: None,
        kind: NotificationKind::RunRequested,
        message: "a run was requested".into(),
        created_at: now(),
        read: false,
    };
    let m = ChatMessage {
        id: ChatMessageId::new(),
        project_id: p.id,
        author: UserId::new(),
        author_org_id: OrgId::new(),
        body: "hello".into(),
        created_at: now(),
    };
    let hit = SearchHit {
        kind: SearchKind::Project,
        id: p.id.to_string(),
        project_id: p.id,
        title: "Trial".into(),
    };
    let r = Recorder::start(vec![
        ok(json!({"items": [j(&n)], "unread": 1})),
        status(204, Value::Null),
        ok(json!({"items": [j(&m)]})),
        status(201, j(&m)),
        ok(json!({"items": [j(&hit)]})),
        ok(json!({"items": [], "next_after": null})),
        ok(json!({"ok": true, "entries": 3})),
    ]);
    let c = r.client();
    let list = c.notifications().unwrap();
    assert_eq!(list.items[0].kind, NotificationKind::RunRequested);
    assert_eq!(list.unread, 1);
    assert_eq!(r.next().target, "/api/v1/notifications");
    c.mark_notification_read(n.id).unwrap();
    assert_eq!(
        r.next().target,
        format!("/api/v1/notifications/{}/read", n.id)
    );
    assert_eq!(c.chat(p.id).unwrap()[0].body, m.body);
    assert_eq!(
        r.next().target,
        format!("/api/v1/projects/{}/chat?limit=500", p.id)
    );
    c.post_chat(p.id, "hello").unwrap();
    assert_eq!(r.next().json(), json!({"body": "hello"}));
    assert_eq!(c.search("trial run", Some(5)).unwrap()[0].title, "Trial");
    assert_eq!(r.next().target, "/api/v1/search?q=trial%20run&limit=5");
    assert!(c.audit(Some(10), None).unwrap().items.is_empty());
    assert_eq!(r.next().target, "/api/v1/audit?after=10");
    assert_eq!(c.audit_verify().unwrap()["entries"], 3);
    assert_eq!(r.next().target, "/api/v1/audit/verify");
}

#[test]
fn agent_and_broker() {
    let run_id = RunId::new();
    let r = Recorder::start(vec![
        status(204, Value::Null),
        ok(json!({"run_id": run_id})),
        ok(json!({"state": "running", "cancel": true})),
        status(204, Value::Null),
        ok(json!({"nonce": "bm9uY2U=", "expires_at": "2026-01-01T00:02:00Z"})),
        ok(
            json!({"releases": [{"role": "algorithm_owner", "cek_key_id": "k", "wcek_fingerprint": "f", "sealed_cek": "c2VhbGVk"}]}),
        ),
    ]);
    let c = r.client();
    assert!(c.agent_claim(60).unwrap().is_none());
    assert_eq!(r.next().target, "/api/v1/agent/claim?wait=30");
    assert!(c.agent_claim(5).unwrap().is_some());
    r.next();
    let hb = c.agent_heartbeat(run_id).unwrap();
    assert!(hb.cancel);
    assert_eq!(
        r.next().target,
        format!("/api/v1/agent/runs/{run_id}/heartbeat")
    );
    c.agent_logs(
        run_id,
        &[AgentLogLine {
            stream: LogStream::Algorithm,
            at: None,
            line: "epoch 1".into(),
        }],
    )
    .unwrap();
    assert_eq!(
        r.next().json(),
        json!({"lines": [{"stream": "algorithm", "line": "epoch 1"}]})
    );
    let n = c.broker_nonce(run_id).unwrap();
    assert_eq!(n.nonce, "bm9uY2U=");
    assert_eq!(r.next().json(), json!({"run_id": run_id}));
    let rel = c
        .broker_release(&ReleaseRequest {
            run_id,
            nonce: "bm9uY2U=",
            evidence: json!({"kind": "simulated"}),
            enclave_public_key: "cGs=",
            workload_digest: "sha256:00",
        })
        .unwrap();
    assert_eq!(rel.releases[0].role, Role::AlgorithmOwner);
    assert!(
        !format!("{rel:?}").contains("c2VhbGVk"),
        "sealed CEKs are not printed"
    );
    assert_eq!(r.next().target, "/api/v1/broker/release");
}
