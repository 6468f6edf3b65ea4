//! Bad input changes nothing: each kind of bad request — oversized body, malformed JSON, wrong
//! content type, unknown, malformed or foreign IDs, a duplicate run configuration, an expired
//! dataset URL, an invalid parameter name, a WCEK that does not unwrap, an algorithm version
//! whose upload checks failed — answers its documented 4xx with a JSON `{code, message}` body,
//! and the database (every row of every table but the audit log, which records denials) and the
//! blob directory are the same afterwards.
//!
//! The routes come from the OpenAPI document, so that a new route is covered without editing
//! this file: every JSON body route gets the malformed-JSON, wrong-content-type and oversized
//! cases, every route with an ID in its path the unknown-, malformed- and foreign-ID cases.
//! A route needs an entry in [`caller_for`] only when an AO user is not the one who may call it,
//! and one in [`valid_body`] when it takes a JSON body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{world, Body, Db, Resp, TestServer, World};
use sealroom_control::ControlConfig;
use sealroom_store::*;
use sealroom_types::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The world: two projects, each with every kind of object; the second one's objects are the
// "foreign" IDs of the first one's users.

/// One project and its objects.
struct Side {
    w: World,
    project: ProjectId,
    ao_org: OrgId,
    ds_org: OrgId,
    ao: UserId,
    ds: UserId,
    data_spec: ArtifactId,
    data_spec_v: VersionId,
    criteria: ArtifactId,
    criteria_v: VersionId,
    algorithm: ArtifactId,
    algorithm_v: VersionId,
    dataset: ArtifactId,
    /// The dataset version of `config`.
    dataset_v: VersionId,
    config: RunConfigId,
    /// A run request (state `requested`).
    run: RunId,
    /// A run claimed by the side's site and `running`.
    claimed: RunId,
    /// One of the AO's notifications.
    notification: String,
    /// One of the AO's API tokens.
    api_token: String,
}

struct Fx {
    s: TestServer,
    db: Db,
    a: Side,
    b: Side,
}

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Ao,
    Ds,
    Admin,
    Site,
}

fn store(s: &TestServer) -> &SqlStore {
    &s.store
}

fn artifact(s: &TestServer, side: &Side, kind: ArtifactKind, name: &str) -> ArtifactId {
    let owner = match kind.owner_role() {
        Role::AlgorithmOwner => (side.ao_org, side.ao),
        Role::DataSteward => (side.ds_org, side.ds),
    };
    s.block_on(store(s).create_artifact(NewArtifact {
        project_id: side.project,
        kind,
        owner_org_id: owner.0,
        name: Name::parse(name).unwrap(),
        description: format!("{name} (bad-input fixture)"),
        algorithm_type: (kind == ArtifactKind::Algorithm).then_some(AlgorithmType::Validation),
        created_by: owner.1,
    }))
    .unwrap()
    .id
}

fn blob(s: &TestServer, project: ProjectId, bytes: &[u8], name: &str) -> BlobRef {
    let key =
        sealroom_blob::BlobKey::parse(&format!("projects/{project}/test/{}", ArtifactId::new()))
            .unwrap();
    let meta = s
        .block_on(
            s.state
                .blobs()
                .put(&key, &mut &bytes[..], sealroom_blob::PutOptions::default()),
        )
        .unwrap();
    BlobRef {
        key: key.as_str().to_string(),
        size: meta.size as i64,
        sha256: meta.sha256_hex(),
        file_name: name.into(),
    }
}

fn version(
    s: &TestServer,
    side: &Side,
    artifact: ArtifactId,
    detail: NewVersionDetail,
    blob: Option<BlobRef>,
) -> VersionId {
    let uploader = match detail {
        NewVersionDetail::Dataset { .. } | NewVersionDetail::AttestationReport { .. } => side.ds,
        _ => side.ao,
    };
    s.block_on(store(s).add_version(NewVersion {
        artifact_id: artifact,
        tag: VersionTag::parse(&format!("v-{}", VersionId::new())).unwrap(),
        description: "fixture".into(),
        uploaded_by: uploader,
        blob,
        detail,
    }))
    .unwrap()
    .id
}

/// A signed URL of the project's storage, valid for `secs`.
fn dataset_url(s: &TestServer, project: ProjectId, secs: i64) -> String {
    let path = format!("/blobs/projects/{project}/datasets/d/");
    s.state
        .signer()
        .sign(
            "GET",
            &path,
            sealroom_blob::signed::Permission::List,
            Timestamp::now().plus_secs(secs),
        )
        .unwrap()
        .to_url(&s.url)
}

fn dataset_version(s: &TestServer, side: &Side, secs: i64) -> VersionId {
    version(
        s,
        side,
        side.dataset,
        NewVersionDetail::Dataset {
            url: dataset_url(s, side.project, secs),
            data_specification_version: None,
            attestation_report_version: None,
            wcek_fingerprint: None,
        },
        None,
    )
}

fn config_on(s: &TestServer, side: &Side, dv: VersionId, now: Timestamp) -> RunConfigId {
    s.block_on(store(s).create_run_config(
        NewRunConfig {
            project_id: side.project,
            name: Name::parse(&format!("cfg {}", RunConfigId::new())).unwrap(),
            description: String::new(),
            algorithm_version_id: side.algorithm_v,
            dataset_version_id: dv,
            criteria_version_id: Some(side.criteria_v),
            created_by: side.ao,
        },
        now,
    ))
    .unwrap()
    .id
}

fn request_on(s: &TestServer, side: &Side, config: RunConfigId) -> RunId {
    s.block_on(store(s).request_run(NewRun {
        run_config_id: config,
        params: RuntimeParams::from_pairs([("epochs", "3")]).unwrap(),
        compute: ComputeSize {
            vcpus: 1,
            ram_gib: 1,
        },
        requested_by: side.ao,
    }))
    .unwrap()
    .id
}

fn transition(s: &TestServer, run: RunId, to: RunState, by: UserId, message: Option<&str>) {
    s.block_on(store(s).transition_run(
        RunTransition {
            run_id: run,
            to,
            actor: Actor::User(by),
            message: message.map(str::to_string),
        },
        Timestamp::now(),
    ))
    .unwrap();
}

fn side(s: &TestServer, tag: &str) -> Side {
    let w = world(s, tag);
    let project: ProjectId = s
        .project(&w, &format!("Bad input {tag}"), "simulated")
        .parse()
        .unwrap();
    let mut side = Side {
        project,
        ao_org: w.ao_org.parse().unwrap(),
        ds_org: w.ds_org.parse().unwrap(),
        ao: w.ao_user.parse().unwrap(),
        ds: w.ds_user.parse().unwrap(),
        w,
        data_spec: ArtifactId::new(),
        data_spec_v: VersionId::new(),
        criteria: ArtifactId::new(),
        criteria_v: VersionId::new(),
        algorithm: ArtifactId::new(),
        algorithm_v: VersionId::new(),
        dataset: ArtifactId::new(),
        dataset_v: VersionId::new(),
        config: RunConfigId::new(),
        run: RunId::new(),
        claimed: RunId::new(),
        notification: String::new(),
        api_token: String::new(),
    };
    side.data_spec = artifact(s, &side, ArtifactKind::DataSpecification, "Data spec");
    let pdf = blob(s, project, b"%PDF-1.4\n% fixture\n", "spec.pdf");
    side.data_spec_v = version(
        s,
        &side,
        side.data_spec,
        NewVersionDetail::DataSpecification,
        Some(pdf),
    );
    side.criteria = artifact(s, &side, ArtifactKind::ValidationCriteria, "Criteria");
    let criteria_json = r#"{"accuracy":{"type":"float","min":0,"max":1,"required":true}}"#;
    let cblob = blob(s, project, criteria_json.as_bytes(), "criteria.json");
    side.criteria_v = version(
        s,
        &side,
        side.criteria,
        NewVersionDetail::ValidationCriteria {
            criteria_json: criteria_json.into(),
        },
        Some(cblob),
    );
    s.block_on(store(s).accept_criteria(side.criteria_v, side.ds_org, side.ds))
        .unwrap();
    side.algorithm = artifact(s, &side, ArtifactKind::Algorithm, "Algorithm");
    let tar = blob(s, project, &[0u8; 1024], "package.tar");
    side.algorithm_v = version(
        s,
        &side,
        side.algorithm,
        NewVersionDetail::Algorithm {
            wcek_fingerprint: None,
        },
        Some(tar),
    );
    side.dataset = artifact(s, &side, ArtifactKind::Dataset, "Dataset");
    side.dataset_v = dataset_version(s, &side, 30 * 86_400);
    side.config = config_on(s, &side, side.dataset_v, Timestamp::now());

    // A run claimed by the site and running.
    let dv = dataset_version(s, &side, 30 * 86_400);
    let cfg = config_on(s, &side, dv, Timestamp::now());
    side.claimed = request_on(s, &side, cfg);
    transition(s, side.claimed, RunState::Initiated, side.ds, None);
    let claimed = s
        .post("/api/v1/agent/claim?wait=0", &side.w.site_token, json!({}))
        .expect(200);
    assert_eq!(claimed.json["run"]["id"], side.claimed.to_string());
    for state in ["runtime_build", "workload_launch", "running"] {
        s.post(
            &format!("/api/v1/agent/runs/{}/state", side.claimed),
            &side.w.site_token,
            json!({ "state": state }),
        )
        .expect(200);
    }

    // A rejected request tells the AO.
    let dv = dataset_version(s, &side, 30 * 86_400);
    let cfg = config_on(s, &side, dv, Timestamp::now());
    let rejected = request_on(s, &side, cfg);
    transition(
        s,
        rejected,
        RunState::Rejected,
        side.ds,
        Some("not this quarter"),
    );
    let n = s.get("/api/v1/notifications", &side.w.ao_token).expect(200);
    side.notification = n.json["items"][0]["id"].as_str().unwrap().to_string();

    side.run = request_on(s, &side, side.config);
    side.api_token = s
        .post("/api/v1/tokens", &side.w.ao_token, json!({ "name": "cli" }))
        .expect(201)
        .json["id"]
        .as_str()
        .unwrap()
        .to_string();
    side
}

fn config_with(max_upload: Option<u64>) -> ControlConfig {
    let mut c = ControlConfig {
        // Nothing must change while the test runs: no run may time out.
        heartbeat_timeout: std::time::Duration::from_secs(24 * 3600),
        ..ControlConfig::default()
    };
    if let Some(m) = max_upload {
        c.max_upload = m;
    }
    c
}

fn setup(db: Db, max_upload: Option<u64>) -> Option<Fx> {
    let s = TestServer::start(db, config_with(max_upload))?;
    let a = side(&s, "a");
    let b = side(&s, "b");
    Some(Fx { s, db, a, b })
}

impl Fx {
    fn token(&self, side: &Side, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Ao => Some(side.w.ao_token.clone()),
            Who::Ds => Some(side.w.ds_token.clone()),
            Who::Admin => Some(self.s.admin_token.clone()),
            Who::Site => Some(side.w.site_token.clone()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// "Nothing changed": every row of every table but the audit log, and the blob directory.

/// The state a bad request must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    tables: BTreeMap<String, Vec<String>>,
    blobs: Vec<(String, u64)>,
}

/// Tables that record the request rather than its effect.
const NOT_SNAPSHOT: &[&str] = &["audit_log", "audit_head"];

fn ident(name: &str) -> String {
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "odd table or column name {name:?}"
    );
    format!("\"{name}\"")
}

async fn strings(pool: &sqlx::AnyPool, sql: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| {
            r.try_get::<Option<String>, _>(0)
                .unwrap()
                .unwrap_or_default()
        })
        .collect()
}

fn snapshot(fx: &Fx) -> Snapshot {
    let pool = fx.s.store.pool();
    let tables = fx.s.block_on(async {
        let names = match fx.db {
            Db::Sqlite => {
                strings(
                    pool,
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .await
            }
            Db::Postgres => {
                strings(
                    pool,
                    "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
                )
                .await
            }
        };
        assert!(
            names.iter().any(|n| n == "runs") && names.iter().any(|n| n == "audit_log"),
            "the table list is not the store's: {names:?}"
        );
        let mut out = BTreeMap::new();
        for t in names.iter().filter(|t| !NOT_SNAPSHOT.contains(&t.as_str())) {
            let cols = match fx.db {
                Db::Sqlite => {
                    strings(
                        pool,
                        &format!("SELECT name FROM pragma_table_info('{t}') ORDER BY cid"),
                    )
                    .await
                }
                Db::Postgres => {
                    strings(
                        pool,
                        &format!(
                            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                             WHERE table_schema = current_schema() AND table_name = '{t}' ORDER BY ordinal_position"
                        ),
                    )
                    .await
                }
            };
            assert!(!cols.is_empty(), "table {t} has no columns");
            // One text value per row: every column cast to text, NULL marked.
            // SQLite's quote() spells blobs as X'..' (a cast would give raw bytes).
            let row = cols
                .iter()
                .map(|c| match fx.db {
                    Db::Sqlite => format!("quote({})", ident(c)),
                    Db::Postgres => format!("COALESCE(CAST({} AS TEXT), '<null>')", ident(c)),
                })
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let mut rows = strings(pool, &format!("SELECT {row} FROM {}", ident(t))).await;
            rows.sort();
            out.insert(t.clone(), rows);
        }
        out
    });
    let mut blobs = Vec::new();
    list_files(&fx.s.data_dir.path().join("blobs"), "", &mut blobs);
    blobs.sort();
    Snapshot { tables, blobs }
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let e = e.unwrap();
        let name = format!("{prefix}/{}", e.file_name().to_string_lossy());
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            list_files(&e.path(), &name, out);
        } else {
            out.push((name, meta.len()));
        }
    }
}

/// What differs, in a few lines.
fn diff(before: &Snapshot, after: &Snapshot) -> String {
    let mut out = Vec::new();
    for (t, rows) in &after.tables {
        let old = before.tables.get(t);
        if old != Some(rows) {
            let old = old.cloned().unwrap_or_default();
            let added: Vec<_> = rows.iter().filter(|r| !old.contains(r)).collect();
            let removed: Vec<_> = old.iter().filter(|r| !rows.contains(r)).collect();
            out.push(format!("table {t}: added {added:?}, removed {removed:?}"));
        }
    }
    if before.blobs != after.blobs {
        out.push(format!(
            "blobs: before {:?}, after {:?}",
            before.blobs, after.blobs
        ));
    }
    out.join("; ")
}

// ---------------------------------------------------------------------------------------------
// One bad request and its checks.

/// Failures gathered across many requests, reported together.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    #[track_caller]
    fn assert_none(&self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} failures:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Whether an answer is the documented error: the status, a JSON `{code, message}` body, the
/// code among the `expected` ones, and the code's status the answer's.
fn check_error(r: &Resp, status: u16, expected: &[&str]) -> Result<(), String> {
    let body: String = r.text().chars().take(300).collect();
    if r.status != status {
        return Err(format!("status {} (expected {status}): {body}", r.status));
    }
    let ct = r.header("content-type").unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(format!("content type {ct:?}, not JSON: {body}"));
    }
    let e: ApiError =
        serde_json::from_slice(&r.bytes).map_err(|e| format!("not an error body ({e}): {body}"))?;
    if !expected.contains(&e.code.as_str()) {
        return Err(format!("code {} (expected {expected:?}): {body}", e.code));
    }
    if e.code.http_status() != status {
        return Err(format!(
            "code {} belongs to status {}",
            e.code,
            e.code.http_status()
        ));
    }
    if e.message.trim().is_empty() {
        return Err("empty message".into());
    }
    Ok(())
}

/// One request whose body is sent chunked, without a `Content-Length` (as a streamed upload).
fn call_chunked(base: &str, method: &str, path: &str, token: &str, bytes: &[u8]) -> Resp {
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut reader = bytes;
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/octet-stream")
        .body(ureq::SendBody::from_reader(&mut reader))
        .unwrap();
    let resp = agent.run(req).unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let bytes = resp.into_body().read_to_vec().unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        bytes,
        json,
    }
}

impl Fx {
    /// Like [`Fx::bad`] for a chunked upload.
    fn bad_chunked(
        &self,
        f: &mut Failures,
        what: &str,
        method: &str,
        path: &str,
        token: &str,
        bytes: &[u8],
    ) {
        let before = snapshot(self);
        let r = call_chunked(&self.s.url, method, path, token, bytes);
        let ctx = format!("[{:?}] {what} (chunked): {method} {path}", self.db);
        if let Err(e) = check_error(&r, 413, &["payload_too_large"]) {
            f.0.push(format!("{ctx}: {e}"));
        }
        let after = snapshot(self);
        if before != after {
            f.0.push(format!("{ctx}: changed {}", diff(&before, &after)));
        }
    }

    /// Sends one bad request; checks the answer and that nothing changed.
    #[allow(clippy::too_many_arguments)]
    fn bad(
        &self,
        f: &mut Failures,
        what: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
        status: u16,
        codes: &[&str],
    ) {
        let before = snapshot(self);
        let r = self.s.call(method, path, token, body);
        let ctx = format!("[{:?}] {what}: {method} {path}", self.db);
        if let Err(e) = check_error(&r, status, codes) {
            f.0.push(format!("{ctx}: {e}"));
        }
        let after = snapshot(self);
        if before != after {
            f.0.push(format!("{ctx}: changed {}", diff(&before, &after)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The routes, from the OpenAPI document.

/// One operation of the document.
#[derive(Debug, Clone)]
struct Route {
    method: String,
    /// The template, `/api/v1/runs/{run_id}`.
    path: String,
    /// Request content types.
    body: Vec<String>,
    /// Path parameter names.
    params: Vec<String>,
}

impl Route {
    fn json(&self) -> bool {
        self.body.iter().any(|c| c == "application/json")
    }

    fn upload(&self) -> bool {
        self.body.iter().any(|c| c == "application/octet-stream")
    }

    /// Path parameters that are IDs.
    fn ids(&self) -> Vec<&str> {
        self.params
            .iter()
            .map(String::as_str)
            .filter(|p| is_id_param(p))
            .collect()
    }
}

fn is_id_param(name: &str) -> bool {
    // `output_id` is `<kind>:<name>`, not an ID.
    name.ends_with("_id") && name != "output_id"
}

fn routes() -> Vec<Route> {
    let doc = serde_json::to_value(sealroom_control::openapi()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let body = op["requestBody"]["content"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            let params = op["parameters"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            out.push(Route {
                method: method.to_uppercase(),
                path: path.clone(),
                body,
                params,
            });
        }
    }
    assert!(
        out.len() > 40,
        "the OpenAPI document lists {} routes",
        out.len()
    );
    out
}

/// Who may call a route (an AO user unless listed).
fn caller_for(method: &str, path: &str) -> Who {
    if path.starts_with("/api/v1/agent/") || path.starts_with("/api/v1/broker/") {
        return Who::Site;
    }
    match (method, path) {
        ("POST", "/api/v1/auth/login") => Who::Anonymous,
        ("GET" | "POST", "/api/v1/orgs" | "/api/v1/users" | "/api/v1/projects")
        | ("POST", "/api/v1/orgs/{org_id}/sites")
        | ("PUT", "/api/v1/users/{user_id}/disabled")
        | ("PUT", "/api/v1/projects/{project_id}/state")
        | ("POST", "/api/v1/projects/{project_id}/members")
        | ("DELETE", "/api/v1/sites/{site_id}/attestation-key")
        | ("GET", "/api/v1/audit" | "/api/v1/audit/verify") => Who::Admin,
        ("PUT", "/api/v1/projects/{project_id}/settings")
        | ("POST", "/api/v1/projects/{project_id}/keys/{role}/wcek")
        | ("GET", "/api/v1/projects/{project_id}/storage")
        | ("PUT", "/api/v1/projects/{project_id}/storage/{*path}")
        | ("POST", "/api/v1/projects/{project_id}/storage/sign")
        | ("PUT", "/api/v1/projects/{project_id}/attestation-policy")
        | ("POST", "/api/v1/runs/{run_id}/initiate")
        | ("POST", "/api/v1/runs/{run_id}/reject")
        | ("POST", "/api/v1/runs/{run_id}/cancel")
        | ("POST", "/api/v1/versions/{version_id}/accept")
        | ("POST", "/api/v1/versions/{version_id}/certify") => Who::Ds,
        // GET ""/api/v1/projects" is any user's; listed above with the admin's POST.
        _ => Who::Ao,
    }
}

/// The value of one path parameter on a side, for a route.
fn param_value(side: &Side, route: &Route, name: &str) -> String {
    let p = route.path.as_str();
    match name {
        "project_id" => side.project.to_string(),
        "artifact_id" if p.ends_with("/versions/upload") => side.data_spec.to_string(),
        "artifact_id" => side.criteria.to_string(),
        "version_id" if p.ends_with("/accept") => side.criteria_v.to_string(),
        "version_id" if p.ends_with("/certify") => side.dataset_v.to_string(),
        "version_id" if p.ends_with("/content") => side.data_spec_v.to_string(),
        "version_id" => side.criteria_v.to_string(),
        "run_id" if p.starts_with("/api/v1/agent/") => side.claimed.to_string(),
        "run_id" => side.run.to_string(),
        "run_config_id" => side.config.to_string(),
        "org_id" => side.ds_org.to_string(),
        "user_id" => side.ao.to_string(),
        "site_id" => side.w.site_id.clone(),
        "notification_id" => side.notification.clone(),
        "token_id" => side.api_token.clone(),
        "output_id" => "final_report:report.json".into(),
        "role" if p.ends_with("/wcek") => "ds".into(),
        "role" => "ao".into(),
        "kind" => "algorithm_report".into(),
        "*path" | "path" => "bad-input/x.bin".into(),
        other => panic!(
            "{} {}: no value for the path parameter {other:?}: add one to param_value",
            route.method, route.path
        ),
    }
}

/// The route's path with its parameters filled in: `value(name)` first, the side's otherwise.
fn fill(route: &Route, side: &Side, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = route.path.as_str();
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let name = &rest[start + 1..end];
        let v = value(name).unwrap_or_else(|| param_value(side, route, name));
        out.push_str(&v);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    // Query parameters some routes need to reach their checks.
    if route.path.ends_with("/versions/upload") {
        out.push_str("?tag=bad-input&file_name=spec.pdf");
    } else if route.path.ends_with("/outputs/{kind}") {
        out.push_str("?name=bad.json");
    }
    out
}

/// A body that is valid for the route (so that only the one bad thing is bad).
fn valid_body(fx: &Fx, route: &Route, side: &Side) -> Body {
    if route.upload() {
        return Body::Raw("application/octet-stream", upload_body(fx, route, side, 16));
    }
    if !route.json() {
        return Body::None;
    }
    let v = match (route.method.as_str(), route.path.as_str()) {
        ("PUT", "/api/v1/agent/attestation-key") => {
            json!({ "public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" })
        }
        ("POST", "/api/v1/agent/runs/{run_id}/logs") => {
            json!({ "lines": [{ "stream": "stage", "line": "x" }] })
        }
        ("POST", "/api/v1/agent/runs/{run_id}/state") => json!({ "state": "completed" }),
        ("POST", "/api/v1/artifacts/{artifact_id}/versions") => {
            json!({ "tag": "bad-input", "criteria": { "accuracy": { "type": "float" } } })
        }
        ("POST", "/api/v1/auth/login") => {
            json!({ "username": "alice-a", "password": common::PASSWORD })
        }
        ("POST", "/api/v1/broker/nonce") => json!({ "run_id": side.claimed }),
        ("POST", "/api/v1/broker/release") => json!({
            "run_id": side.claimed, "nonce": "AAAA", "evidence": {},
            "enclave_public_key": "AAAA", "workload_digest": "00"
        }),
        ("PUT", "/api/v1/me/password") => json!({
            "current_password": common::PASSWORD, "new_password": "another long passphrase"
        }),
        ("POST", "/api/v1/orgs") => json!({ "name": "Bad Input Org" }),
        ("POST", "/api/v1/orgs/{org_id}/sites") => json!({ "name": "Bad input site" }),
        ("POST", "/api/v1/projects") => json!({
            "name": "Bad input project", "description": "", "technology": "simulated",
            "members": [
                { "org_id": side.ao_org, "role": "algorithm_owner" },
                { "org_id": side.ds_org, "role": "data_steward" }
            ]
        }),
        ("POST", "/api/v1/projects/{project_id}/artifacts") => {
            json!({ "kind": "validation_criteria", "name": "Bad input criteria", "description": "" })
        }
        ("PUT", "/api/v1/projects/{project_id}/attestation-policy") => json!({}),
        ("POST", "/api/v1/projects/{project_id}/chat") => json!({ "body": "hello" }),
        ("POST", "/api/v1/projects/{project_id}/members") => {
            json!({ "org_id": fx.b.ao_org, "role": "algorithm_owner" })
        }
        ("POST", "/api/v1/projects/{project_id}/run-configs") => json!({
            "name": "Bad input config", "description": "",
            "algorithm_version_id": side.algorithm_v, "dataset_version_id": side.dataset_v,
            "criteria_version_id": side.criteria_v
        }),
        ("PUT", "/api/v1/projects/{project_id}/settings") => {
            json!({ "algorithm_logs_to_ao": true })
        }
        ("PUT", "/api/v1/projects/{project_id}/state") => json!({ "state": "paused" }),
        ("POST", "/api/v1/projects/{project_id}/storage/sign") => {
            json!({ "prefix": "fixture/", "expires_in_hours": 48 })
        }
        ("POST", "/api/v1/run-configs/{run_config_id}/runs") => {
            json!({ "params": { "epochs": "3" }, "vcpus": 1, "ram_gib": 1 })
        }
        ("POST", "/api/v1/runs/{run_id}/cancel") => json!({ "reason": "changed our mind" }),
        ("POST", "/api/v1/runs/{run_id}/reject") => json!({ "reason": "not now" }),
        ("POST", "/api/v1/tokens") => json!({ "name": "bad input" }),
        ("POST", "/api/v1/users") => json!({
            "org_id": side.ao_org, "username": "bad-input-user", "password": common::PASSWORD
        }),
        ("PUT", "/api/v1/users/{user_id}/disabled") => json!({ "disabled": true }),
        (m, p) => panic!("{m} {p} takes JSON: add a valid body to valid_body"),
    };
    Body::Json(v)
}

/// An upload body of about `len` bytes of the kind the route takes.
fn upload_body(fx: &Fx, route: &Route, side: &Side, len: usize) -> Vec<u8> {
    let p = route.path.as_str();
    if p.ends_with("/wcek") {
        // A real WCEK when small; only its size matters when large.
        if len <= 1024 {
            return wcek(fx, side.project, Role::DataSteward);
        }
        return vec![7u8; len];
    }
    if p.ends_with("/storage/{*path}") {
        return sealed(&vec![b'x'; len]);
    }
    if p.ends_with("/versions/upload") {
        let mut b = b"%PDF-1.4\n".to_vec();
        b.resize(len.max(b.len()), b'%');
        return b;
    }
    let mut b = b"{}".to_vec();
    b.resize(len.max(2), b' ');
    b
}

fn sealed(bytes: &[u8]) -> Vec<u8> {
    let cek = sealroom_envelope::Cek::generate().unwrap();
    let (out, _) = sealroom_envelope::stream::seal(
        &mut &bytes[..],
        std::io::Cursor::new(Vec::new()),
        &cek,
        &(),
    )
    .unwrap();
    out.into_inner()
}

/// A CEK wrapped under the project's KEK of `role`.
fn wcek(fx: &Fx, project: ProjectId, role: Role) -> Vec<u8> {
    let record =
        fx.s.block_on(store(&fx.s).project_key(project, role))
            .unwrap();
    let cek = sealroom_envelope::Cek::generate().unwrap();
    sealroom_envelope::kek::KekPublic::from_der(&record.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// Malformed JSON bodies, each with `Content-Type: application/json`.
fn malformed_bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("truncated", br#"{"name": "#.to_vec()),
        ("not JSON", b"name=value&x=1".to_vec()),
        ("a string, not an object", br#""just a string""#.to_vec()),
        ("trailing bytes", br#"{"name": "x"} {"#.to_vec()),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec()),
        ("an unknown field", br#"{"surely_not_a_field": 1}"#.to_vec()),
        ("deep nesting", {
            let mut b = br#"{"name": "#.to_vec();
            b.extend(std::iter::repeat_n(b'[', 4096));
            b
        }),
    ]
}

fn malformed_json(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    let mut n = 0;
    for route in routes().iter().filter(|r| r.json()) {
        let who = caller_for(&route.method, &route.path);
        let token = fx.token(side, who);
        let path = fill(route, side, |_| None);
        for (what, bytes) in malformed_bodies() {
            fx.bad(
                f,
                &format!("malformed JSON ({what})"),
                &route.method,
                &path,
                token.as_deref(),
                Body::Raw("application/json", bytes),
                400,
                &["malformed_json"],
            );
        }
        n += 1;
    }
    assert!(n >= 25, "only {n} JSON routes");
}

fn wrong_content_type(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    for route in routes().iter().filter(|r| r.json()) {
        let who = caller_for(&route.method, &route.path);
        let token = fx.token(side, who);
        let path = fill(route, side, |_| None);
        let Body::Json(v) = valid_body(fx, route, side) else {
            unreachable!()
        };
        let bytes = serde_json::to_vec(&v).unwrap();
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/octet-stream",
        ] {
            fx.bad(
                f,
                &format!("JSON sent as {ct}"),
                &route.method,
                &path,
                token.as_deref(),
                Body::Raw(ct, bytes.clone()),
                415,
                &["unsupported_media_type"],
            );
        }
        fx.bad(
            f,
            "JSON without a content type",
            &route.method,
            &path,
            token.as_deref(),
            Body::Raw("", bytes.clone()),
            415,
            &["unsupported_media_type"],
        );
    }
    // Upload routes take octet streams only.
    for route in routes().iter().filter(|r| r.upload()) {
        let who = caller_for(&route.method, &route.path);
        let token = fx.token(side, who);
        let path = fill(route, side, |_| None);
        let bytes = upload_body(fx, route, side, 16);
        fx.bad(
            f,
            "an upload sent as JSON",
            &route.method,
            &path,
            token.as_deref(),
            Body::Raw("application/json", bytes),
            415,
            &["unsupported_media_type"],
        );
    }
}

/// The largest JSON body of a route: 1 MiB, but for the agent's log batches (40 MiB:
/// `LOG_BODY_LIMIT` in routes/agent.rs, 1000 lines of up to 16 KiB in JSON).
fn json_limit(route: &Route) -> usize {
    if route.path == "/api/v1/agent/runs/{run_id}/logs" {
        40 << 20
    } else {
        ControlConfig::default().max_json_body
    }
}

/// JSON bodies one byte over the route's limit (1 MiB but for log batches).
fn oversized_json(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    for route in routes().iter().filter(|r| r.json()) {
        let limit = json_limit(route);
        let who = caller_for(&route.method, &route.path);
        let token = fx.token(side, who);
        let path = fill(route, side, |_| None);
        // Valid JSON, padded with whitespace to one byte over the limit.
        let Body::Json(v) = valid_body(fx, route, side) else {
            unreachable!()
        };
        let mut bytes = serde_json::to_vec(&v).unwrap();
        let pad = limit + 1 - bytes.len();
        bytes.splice(1..1, std::iter::repeat_n(b' ', pad));
        assert_eq!(bytes.len(), limit + 1);
        fx.bad(
            f,
            &format!("a JSON body of {} bytes", limit + 1),
            &route.method,
            &path,
            token.as_deref(),
            Body::Raw("application/json", bytes),
            413,
            &["payload_too_large"],
        );
    }
}

/// Uploads over a lowered `max_upload` (and a WCEK over its 1 KiB).
fn oversized_upload(fx: &Fx, f: &mut Failures, max_upload: usize) {
    let side = &fx.a;
    let mut n = 0;
    for route in routes().iter().filter(|r| r.upload()) {
        let who = caller_for(&route.method, &route.path);
        let token = fx.token(side, who);
        let path = fill(route, side, |_| None);
        let len = if route.path.ends_with("/wcek") {
            1025
        } else {
            max_upload + 1
        };
        let bytes = upload_body(fx, route, side, len);
        assert!(bytes.len() > len - 1);
        fx.bad(
            f,
            &format!("an upload of {} bytes", bytes.len()),
            &route.method,
            &path,
            token.as_deref(),
            Body::Raw("application/octet-stream", bytes.clone()),
            413,
            &["payload_too_large"],
        );
        fx.bad_chunked(
            f,
            &format!("an upload of {} bytes", bytes.len()),
            &route.method,
            &path,
            token.as_deref().unwrap(),
            &bytes,
        );
        n += 1;
    }
    assert!(n >= 4, "only {n} upload routes");
}

/// Well-formed IDs of nothing: 404 on every route with an ID in its path, one ID at a time.
fn unknown_ids(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    for route in routes() {
        let who = caller_for(&route.method, &route.path);
        let token = fx.token(side, who);
        for id in route.ids() {
            let fresh = ProjectId::new().to_string();
            let path = fill(&route, side, |n| (n == id).then(|| fresh.clone()));
            fx.bad(
                f,
                &format!("unknown {id}"),
                &route.method,
                &path,
                token.as_deref(),
                valid_body(fx, &route, side),
                404,
                &["not_found"],
            );
        }
    }
    // IDs in bodies.
    let fresh = || VersionId::new().to_string();
    let rc_path = format!("/api/v1/projects/{}/run-configs", side.project);
    for field in [
        "algorithm_version_id",
        "dataset_version_id",
        "criteria_version_id",
    ] {
        let mut body = json!({
            "name": "Unknown", "algorithm_version_id": side.algorithm_v,
            "dataset_version_id": side.dataset_v, "criteria_version_id": side.criteria_v
        });
        body[field] = json!(fresh());
        fx.bad(
            f,
            &format!("unknown {field}"),
            "POST",
            &rc_path,
            Some(&side.w.ao_token),
            Body::Json(body),
            404,
            &["not_found"],
        );
    }
    fx.bad(
        f,
        "unknown org_id",
        "POST",
        "/api/v1/users",
        Some(&fx.s.admin_token),
        Body::Json(
            json!({ "org_id": OrgId::new(), "username": "nobody-x", "password": common::PASSWORD }),
        ),
        404,
        &["not_found"],
    );
    fx.bad(
        f,
        "unknown member org_id",
        "POST",
        &format!("/api/v1/projects/{}/members", side.project),
        Some(&fx.s.admin_token),
        Body::Json(json!({ "org_id": OrgId::new(), "role": "data_steward" })),
        404,
        &["not_found"],
    );
    fx.bad(
        f,
        "unknown linked data specification version",
        "POST",
        &format!("/api/v1/artifacts/{}/versions", side.dataset),
        Some(&side.w.ds_token),
        Body::Json(json!({
            "tag": "linked", "url": dataset_url(&fx.s, side.project, 30 * 86_400),
            "data_specification_version": fresh()
        })),
        404,
        &["not_found"],
    );
}

/// Not IDs at all: 400 `invalid_id` on every route with an ID in its path, and in bodies and
/// query strings.
fn malformed_ids(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    let bad = [
        "not-an-id",
        "1234",
        "0190c5a1-7e2b-7c3d-8e4f-5a6b7c8d9e0g",
        "0190c5a17e2b7c3d8e4f5a6b7c8d9e0f",
        "%20",
    ];
    for route in routes() {
        let who = caller_for(&route.method, &route.path);
        let token = fx.token(side, who);
        for id in route.ids() {
            for b in bad {
                let path = fill(&route, side, |n| (n == id).then(|| b.to_string()));
                fx.bad(
                    f,
                    &format!("malformed {id} {b:?}"),
                    &route.method,
                    &path,
                    token.as_deref(),
                    valid_body(fx, &route, side),
                    400,
                    &["invalid_id"],
                );
            }
        }
    }
    let rc_path = format!("/api/v1/projects/{}/run-configs", side.project);
    for field in [
        "algorithm_version_id",
        "dataset_version_id",
        "criteria_version_id",
    ] {
        let mut body = json!({
            "name": "Malformed", "algorithm_version_id": side.algorithm_v,
            "dataset_version_id": side.dataset_v, "criteria_version_id": side.criteria_v
        });
        body[field] = json!("version-1");
        fx.bad(
            f,
            &format!("malformed {field}"),
            "POST",
            &rc_path,
            Some(&side.w.ao_token),
            Body::Json(body),
            400,
            &["invalid_id"],
        );
    }
    fx.bad(
        f,
        "malformed run_config_id filter",
        "GET",
        &format!("/api/v1/projects/{}/runs?run_config_id=x", side.project),
        Some(&side.w.ao_token),
        Body::None,
        400,
        &["invalid_id"],
    );
    fx.bad(
        f,
        "malformed cursor",
        "GET",
        "/api/v1/projects?cursor=x",
        Some(&side.w.ao_token),
        Body::None,
        400,
        &["invalid_id"],
    );
    fx.bad(
        f,
        "malformed org_id",
        "POST",
        "/api/v1/users",
        Some(&fx.s.admin_token),
        Body::Json(
            json!({ "org_id": "org-1", "username": "nobody-y", "password": common::PASSWORD }),
        ),
        400,
        &["invalid_id"],
    );
}

/// Another project's objects: 404 to a member of this one, on every route with an ID in its
/// path that a member calls (admins see every project).
fn foreign_ids(fx: &Fx, f: &mut Failures) {
    let (mine, theirs) = (&fx.a, &fx.b);
    let mut n = 0;
    for route in routes() {
        let who = caller_for(&route.method, &route.path);
        if who == Who::Admin || route.ids().is_empty() {
            continue;
        }
        let token = fx.token(mine, who);
        let ids = route.ids();
        let path = fill(&route, theirs, |n| {
            (!ids.contains(&n)).then(|| param_value(mine, &route, n))
        });
        fx.bad(
            f,
            "another project's IDs",
            &route.method,
            &path,
            token.as_deref(),
            valid_body(fx, &route, mine),
            404,
            &["not_found"],
        );
        n += 1;
    }
    assert!(n >= 30, "only {n} routes with member-scoped IDs");
    // IDs in bodies: another project's versions in a run configuration.
    let rc_path = format!("/api/v1/projects/{}/run-configs", mine.project);
    for (field, value) in [
        ("algorithm_version_id", theirs.algorithm_v),
        ("dataset_version_id", theirs.dataset_v),
        ("criteria_version_id", theirs.criteria_v),
    ] {
        let mut body = json!({
            "name": "Foreign", "algorithm_version_id": mine.algorithm_v,
            "dataset_version_id": mine.dataset_v, "criteria_version_id": mine.criteria_v
        });
        body[field] = json!(value);
        fx.bad(
            f,
            &format!("another project's {field}"),
            "POST",
            &rc_path,
            Some(&mine.w.ao_token),
            Body::Json(body),
            404,
            &["not_found"],
        );
    }
    fx.bad(
        f,
        "another project's data specification version as a link",
        "POST",
        &format!("/api/v1/artifacts/{}/versions", mine.dataset),
        Some(&mine.w.ds_token),
        Body::Json(json!({
            "tag": "linked", "url": dataset_url(&fx.s, mine.project, 30 * 86_400),
            "data_specification_version": theirs.data_spec_v
        })),
        404,
        &["not_found"],
    );
    // docs/api/broker.md: 403 for another site's run (the broker API is not this file's
    // owner's; a 404 would not tell a site that the run exists).
    fx.bad(
        f,
        "a nonce for another site's run",
        "POST",
        "/api/v1/broker/nonce",
        Some(&mine.w.site_token),
        Body::Json(json!({ "run_id": theirs.claimed })),
        403,
        &["forbidden"],
    );
}

fn duplicates(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    let rc_path = format!("/api/v1/projects/{}/run-configs", side.project);
    for name in ["Another name", "cfg again"] {
        fx.bad(
            f,
            "the same algorithm version x dataset version again",
            "POST",
            &rc_path,
            Some(&side.w.ao_token),
            Body::Json(json!({
                "name": name, "description": "a second try",
                "algorithm_version_id": side.algorithm_v, "dataset_version_id": side.dataset_v,
                "criteria_version_id": side.criteria_v
            })),
            409,
            &["duplicate_run_configuration"],
        );
    }
    // Other names that must be unique.
    fx.bad(
        f,
        "an artifact name taken",
        "POST",
        &format!("/api/v1/projects/{}/artifacts", side.project),
        Some(&side.w.ao_token),
        Body::Json(json!({ "kind": "validation_criteria", "name": "Criteria", "description": "" })),
        409,
        &["already_exists"],
    );
    let tag =
        fx.s.block_on(store(&fx.s).get_version(side.criteria_v))
            .unwrap()
            .tag;
    fx.bad(
        f,
        "a version tag taken",
        "POST",
        &format!("/api/v1/artifacts/{}/versions", side.criteria),
        Some(&side.w.ao_token),
        Body::Json(json!({ "tag": tag.as_str(), "criteria": { "accuracy": { "type": "float" } } })),
        409,
        &["already_exists"],
    );
    fx.bad(
        f,
        "an organization name taken",
        "POST",
        "/api/v1/orgs",
        Some(&fx.s.admin_token),
        Body::Json(json!({ "name": "Model Co a" })),
        409,
        &["already_exists"],
    );
    fx.bad(
        f,
        "a username taken",
        "POST",
        "/api/v1/users",
        Some(&fx.s.admin_token),
        Body::Json(
            json!({ "org_id": side.ao_org, "username": "alice-a", "password": common::PASSWORD }),
        ),
        409,
        &["already_exists"],
    );
}

fn expired_dataset_urls(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    // New dataset versions.
    for (what, secs) in [
        ("expires in an hour", 3600),
        ("expires in 23 hours", 23 * 3600),
        ("expired yesterday", -86_400),
    ] {
        fx.bad(
            f,
            &format!("a dataset URL that {what}"),
            "POST",
            &format!("/api/v1/artifacts/{}/versions", side.dataset),
            Some(&side.w.ds_token),
            Body::Json(json!({ "tag": "short", "url": dataset_url(&fx.s, side.project, secs) })),
            422,
            &["dataset_url_expired"],
        );
    }
    // A run configuration on a dataset version whose URL now expires within 24 hours.
    let short = dataset_version(&fx.s, side, 3 * 3600);
    fx.bad(
        f,
        "a run configuration on a dataset URL that expires in 3 hours",
        "POST",
        &format!("/api/v1/projects/{}/run-configs", side.project),
        Some(&side.w.ao_token),
        Body::Json(json!({
            "name": "Short-lived", "algorithm_version_id": side.algorithm_v,
            "dataset_version_id": short, "criteria_version_id": side.criteria_v
        })),
        422,
        &["dataset_url_expired"],
    );
    // Initiating a run whose dataset URL has come within 24 hours since it was configured.
    let two_days_ago = Timestamp::from_millis(Timestamp::now().as_millis() - 2 * 86_400_000);
    let cfg = config_on(&fx.s, side, short, two_days_ago);
    let run = request_on(&fx.s, side, cfg);
    fx.bad(
        f,
        "initiating a run on a dataset URL that expires in 3 hours",
        "POST",
        &format!("/api/v1/runs/{run}/initiate"),
        Some(&side.w.ds_token),
        Body::None,
        422,
        &["dataset_url_expired"],
    );
}

fn invalid_parameters(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    // A configuration without an open request.
    let dv = dataset_version(&fx.s, side, 30 * 86_400);
    let cfg = config_on(&fx.s, side, dv, Timestamp::now());
    let path = format!("/api/v1/run-configs/{cfg}/runs");
    let many: serde_json::Map<String, Value> = (0..=MAX_PARAMS)
        .map(|i| (format!("p{i}"), json!("1")))
        .collect();
    let cases: Vec<(&str, Value)> = vec![
        ("a digit first", json!({ "1epochs": "3" })),
        ("an empty name", json!({ "": "3" })),
        ("a doubled separator", json!({ "learning__rate": "0.1" })),
        ("a trailing separator", json!({ "rate_": "0.1" })),
        ("a space", json!({ "learning rate": "0.1" })),
        ("shell characters", json!({ "x;rm -rf /": "1" })),
        ("a reserved ESCROW_ name", json!({ "ESCROW_KEY": "1" })),
        (
            "ENCLAVE_API_URL",
            json!({ "ENCLAVE_API_URL": "http://evil" }),
        ),
        ("a NUL in the value", json!({ "epochs": "3\u{0}" })),
        (
            "a value over 4096 bytes",
            json!({ "epochs": "9".repeat(4097) }),
        ),
        ("too many parameters", Value::Object(many)),
        ("a very long name", json!({ "a".repeat(300): "1" })),
    ];
    for (what, params) in cases {
        fx.bad(
            f,
            &format!("runtime parameter: {what}"),
            "POST",
            &path,
            Some(&side.w.ao_token),
            Body::Json(json!({ "params": params, "vcpus": 1, "ram_gib": 1 })),
            400,
            &["invalid_parameter"],
        );
    }
    fx.bad(
        f,
        "runtime parameter: a number, not a string",
        "POST",
        &path,
        Some(&side.w.ao_token),
        Body::Json(json!({ "params": { "epochs": 3 }, "vcpus": 1, "ram_gib": 1 })),
        400,
        &["malformed_json"],
    );
    fx.bad(
        f,
        "compute size not among the technology's",
        "POST",
        &path,
        Some(&side.w.ao_token),
        Body::Json(json!({ "params": {}, "vcpus": 3, "ram_gib": 1000 })),
        400,
        &["invalid_compute_size"],
    );
}

fn wceks_that_do_not_unwrap(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    let other_project = wcek(fx, fx.b.project, Role::DataSteward);
    let mut truncated = wcek(fx, side.project, Role::DataSteward);
    truncated.truncate(truncated.len() / 2);
    let mut flipped = wcek(fx, side.project, Role::DataSteward);
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    for (role, token, who_wrapped, bytes) in [
        (
            "ds",
            &side.w.ds_token,
            "the AO's KEK",
            wcek(fx, side.project, Role::AlgorithmOwner),
        ),
        (
            "ao",
            &side.w.ao_token,
            "the DS's KEK",
            wcek(fx, side.project, Role::DataSteward),
        ),
        (
            "ds",
            &side.w.ds_token,
            "another project's KEK",
            other_project,
        ),
        ("ds", &side.w.ds_token, "truncated", truncated),
        ("ds", &side.w.ds_token, "a flipped bit", flipped),
        ("ds", &side.w.ds_token, "random bytes", vec![0x5a; 512]),
        ("ao", &side.w.ao_token, "one byte", vec![1]),
    ] {
        fx.bad(
            f,
            &format!("a {role} WCEK: {who_wrapped}"),
            "POST",
            &format!("/api/v1/projects/{}/keys/{role}/wcek", side.project),
            Some(token),
            Body::Raw("application/octet-stream", bytes),
            422,
            &["wcek_does_not_unwrap"],
        );
    }
}

/// A tar archive of `(path, bytes)` files.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, path, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

/// Uploads an algorithm package through the API; returns the version's JSON.
fn upload_package(fx: &Fx, side: &Side, tag: &str, tar: Vec<u8>) -> Value {
    fx.s.call(
        "POST",
        &format!(
            "/api/v1/artifacts/{}/versions/upload?tag={tag}",
            side.algorithm
        ),
        Some(&side.w.ao_token),
        Body::Raw("application/octet-stream", tar),
    )
    .expect(201)
    .json
}

/// A run configuration on an algorithm version whose upload checks failed: 409
/// `precondition_failed` naming the failed step; one whose checks all passed is accepted.
fn failed_upload_steps(fx: &Fx, f: &mut Failures) {
    let side = &fx.a;
    let config = |v: &str, dv: VersionId| {
        json!({
            "name": format!("On {v}"), "algorithm_version_id": v,
            "dataset_version_id": dv, "criteria_version_id": side.criteria_v
        })
    };
    let rc_path = format!("/api/v1/projects/{}/run-configs", side.project);

    // No secrets manifest (and no AO WCEK yet).
    let broken = upload_package(fx, side, "broken", tar_of(&[("run.sh", b"#!/bin/sh\n")]));
    let steps = broken["detail"]["upload_steps"].as_array().unwrap().clone();
    let failed: Vec<&str> = steps
        .iter()
        .filter(|s| s["status"] == "failed")
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"secrets_manifest_present"), "{steps:?}");
    let broken_id = broken["id"].as_str().unwrap().to_string();
    let dv = dataset_version(&fx.s, side, 30 * 86_400);
    let before = snapshot(fx);
    let r =
        fx.s.post(&rc_path, &side.w.ao_token, config(&broken_id, dv));
    if let Err(e) = check_error(&r, 409, &["precondition_failed"]) {
        f.0.push(format!("a failed upload step: {e}"));
    }
    for step in &failed {
        if !r.json["message"].as_str().unwrap_or("").contains(step) {
            f.0.push(format!("the message does not name {step}: {}", r.text()));
        }
    }
    let after = snapshot(fx);
    if before != after {
        f.0.push(format!(
            "a failed upload step: changed {}",
            diff(&before, &after)
        ));
    }

    // Only the Dockerfile missing.
    let cek = sealroom_envelope::Cek::generate().unwrap();
    let record =
        fx.s.block_on(store(&fx.s).project_key(side.project, Role::AlgorithmOwner))
            .unwrap();
    let wrapped = sealroom_envelope::kek::KekPublic::from_der(&record.public_der)
        .unwrap()
        .wrap(&cek)
        .unwrap();
    fx.s.call(
        "POST",
        &format!("/api/v1/projects/{}/keys/ao/wcek", side.project),
        Some(&side.w.ao_token),
        Body::Raw("application/octet-stream", wrapped),
    )
    .expect(201);
    let (model, _) = sealroom_envelope::stream::seal(
        &mut &b"weights"[..],
        std::io::Cursor::new(Vec::new()),
        &cek,
        &(),
    )
    .unwrap();
    let model = model.into_inner();
    let manifest = br#"{"files": ["model.bin"]}"#;
    let no_entry = upload_package(
        fx,
        side,
        "no-entry",
        tar_of(&[("secrets.json", manifest), ("model.bin", &model)]),
    );
    let dv = dataset_version(&fx.s, side, 30 * 86_400);
    fx.bad(
        f,
        "an algorithm version without a Dockerfile or run.sh",
        "POST",
        &rc_path,
        Some(&side.w.ao_token),
        Body::Json(config(no_entry["id"].as_str().unwrap(), dv)),
        409,
        &["precondition_failed"],
    );

    // Every step passed: accepted.
    let good = upload_package(
        fx,
        side,
        "good",
        tar_of(&[
            ("run.sh", b"#!/bin/sh\n"),
            ("secrets.json", manifest),
            ("model.bin", &model),
        ]),
    );
    let steps = good["detail"]["upload_steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["status"] == "passed"), "{steps:?}");
    fx.s.post(
        &rc_path,
        &side.w.ao_token,
        config(good["id"].as_str().unwrap(), dv),
    )
    .expect(201);
}

/// Runs a case on a fresh world; fails with every failure of the case.
fn case(db: Db, name: &str, run: impl Fn(&Fx, &mut Failures)) {
    let Some(fx) = setup(db, None) else {
        return;
    };
    let mut f = Failures::default();
    run(&fx, &mut f);
    f.assert_none(name);
}

// ---- SQLite: every case.

#[test]
fn malformed_json_on_every_json_route() {
    case(Db::Sqlite, "malformed JSON", malformed_json);
}

#[test]
fn wrong_content_type_on_every_body_route() {
    case(Db::Sqlite, "wrong content type", wrong_content_type);
}

#[test]
fn oversized_json_on_every_json_route() {
    case(Db::Sqlite, "oversized JSON", oversized_json);
}

#[test]
fn oversized_upload_on_every_upload_route() {
    let max = 64 << 10;
    let fx = setup(Db::Sqlite, Some(max as u64)).unwrap();
    let mut f = Failures::default();
    oversized_upload(&fx, &mut f, max);
    f.assert_none("oversized upload");
}

#[test]
fn unknown_ids_on_every_id_route() {
    case(Db::Sqlite, "unknown IDs", unknown_ids);
}

#[test]
fn malformed_ids_on_every_id_route() {
    case(Db::Sqlite, "malformed IDs", malformed_ids);
}

#[test]
fn foreign_ids_on_every_id_route() {
    case(Db::Sqlite, "foreign IDs", foreign_ids);
}

#[test]
fn duplicate_run_configuration_and_names() {
    case(Db::Sqlite, "duplicates", duplicates);
}

#[test]
fn expired_dataset_url() {
    case(Db::Sqlite, "expired dataset URL", expired_dataset_urls);
}

#[test]
fn invalid_parameter_names() {
    case(Db::Sqlite, "invalid parameters", invalid_parameters);
}

#[test]
fn wcek_that_does_not_unwrap() {
    case(Db::Sqlite, "WCEK", wceks_that_do_not_unwrap);
}

#[test]
fn run_configuration_on_failed_upload_steps() {
    case(Db::Sqlite, "failed upload steps", failed_upload_steps);
}

// ---- PostgreSQL: the main cases on one world.

#[test]
fn postgres_main_cases() {
    case(Db::Postgres, "PostgreSQL", |fx, f| {
        malformed_json(fx, f);
        unknown_ids(fx, f);
        foreign_ids(fx, f);
        duplicates(fx, f);
        expired_dataset_urls(fx, f);
        invalid_parameters(fx, f);
        wceks_that_do_not_unwrap(fx, f);
        failed_upload_steps(fx, f);
    });
}
