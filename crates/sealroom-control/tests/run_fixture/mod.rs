//! Artifacts for run tests, made through the store (the artifact routes are not used here): an
//! algorithm version with a package blob, validation criteria accepted by the DS, and a dataset
//! version behind a Sealroom signed URL.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sealroom_blob::signed::Permission;
use sealroom_blob::{BlobKey, PutOptions};
use sealroom_store::{NewArtifact, NewVersion, NewVersionDetail};
use sealroom_types::{
    AlgorithmType, ArtifactId, ArtifactKind, BlobRef, Name, OrgId, ProjectId, Timestamp, UserId,
    VersionTag,
};
use serde_json::json;

use crate::common::{world, Body, Resp, TestServer, World};

/// The criteria every fixture uses.
pub const CRITERIA: &str = r#"{"accuracy": {"type": "float", "min": 0, "max": 1, "required": true}, "note": {"type": "string"}}"#;
/// A report that passes them.
pub const GOOD_REPORT: &[u8] = br#"{"accuracy": 0.93, "note": "fine"}"#;
/// Reports that do not.
pub const BAD_REPORTS: &[&[u8]] = &[
    br#"{"accuracy": 1.5}"#,
    br#"{"accuracy": 0.5, "patients": ["Jane Doe"]}"#,
    b"not json",
];

/// A project with its artifacts.
pub struct Fx {
    pub w: World,
    pub project: String,
    pub ao_user: UserId,
    pub ds_user: UserId,
    pub ds_org: OrgId,
    pub alg_artifact: ArtifactId,
    pub ds_artifact: ArtifactId,
    pub alg: String,
    pub alg2: String,
    pub dataset: String,
    pub criteria: String,
    pub package: Vec<u8>,
}

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn tag(s: &str) -> VersionTag {
    VersionTag::parse(s).unwrap()
}

/// A dataset version whose Sealroom signed URL expires in `secs`.
pub fn dataset_version(s: &TestServer, fx: &Fx, version_tag: &str, secs: i64) -> String {
    let path = format!("/blobs/projects/{}/data/{version_tag}.sealed", fx.project);
    let url = s
        .state
        .signer()
        .sign(
            "GET",
            &path,
            Permission::Read,
            Timestamp::now().plus_secs(secs),
        )
        .unwrap()
        .to_url(&s.url);
    let v = s
        .block_on(s.state.store().add_version(NewVersion {
            artifact_id: fx.ds_artifact,
            tag: tag(version_tag),
            description: "encrypted records".into(),
            uploaded_by: fx.ds_user,
            blob: None,
            detail: NewVersionDetail::Dataset {
                url,
                data_specification_version: None,
                attestation_report_version: None,
                wcek_fingerprint: None,
            },
        }))
        .unwrap();
    v.id.to_string()
}

fn algorithm_version(
    s: &TestServer,
    fx_project: ProjectId,
    art: ArtifactId,
    user: UserId,
    t: &str,
    package: &[u8],
) -> String {
    let key = BlobKey::parse(&format!("projects/{fx_project}/algorithms/{art}/{t}.tar")).unwrap();
    let meta = s
        .block_on(
            s.state
                .blobs()
                .put(&key, &mut &package[..], PutOptions::default()),
        )
        .unwrap();
    let v = s
        .block_on(s.state.store().add_version(NewVersion {
            artifact_id: art,
            tag: tag(t),
            description: "the package".into(),
            uploaded_by: user,
            blob: Some(BlobRef {
                key: key.as_str().into(),
                size: meta.size as i64,
                sha256: meta.sha256_hex(),
                file_name: "package.tar".into(),
            }),
            detail: NewVersionDetail::Algorithm {
                wcek_fingerprint: None,
            },
        }))
        .unwrap();
    s.block_on(
        s.state
            .store()
            .set_workload_digest(v.id, &format!("sha256:{}", "ab".repeat(32))),
    )
    .unwrap();
    v.id.to_string()
}

/// A world, a project between its organizations, and the artifacts.
pub fn setup(s: &TestServer, t: &str) -> Fx {
    let w = world(s, t);
    let project = s.project(&w, &format!("Runs {t}"), "simulated");
    let pid: ProjectId = project.parse().unwrap();
    let ao_user: UserId = w.ao_user.parse().unwrap();
    let ds_user: UserId = w.ds_user.parse().unwrap();
    let ao_org: OrgId = w.ao_org.parse().unwrap();
    let ds_org: OrgId = w.ds_org.parse().unwrap();
    let store = s.state.store();
    let artifact = |kind, owner, n: &str, ty, user| {
        s.block_on(store.create_artifact(NewArtifact {
            project_id: pid,
            kind,
            owner_org_id: owner,
            name: name(n),
            description: String::new(),
            algorithm_type: ty,
            created_by: user,
        }))
        .unwrap()
        .id
    };
    let alg_artifact = artifact(
        ArtifactKind::Algorithm,
        ao_org,
        "Sepsis model",
        Some(AlgorithmType::Validation),
        ao_user,
    );
    let crit_artifact = artifact(
        ArtifactKind::ValidationCriteria,
        ao_org,
        "Report criteria",
        None,
        ao_user,
    );
    let ds_artifact = artifact(ArtifactKind::Dataset, ds_org, "ICU records", None, ds_user);
    let package = b"a tar with sealed files, for the test".repeat(100);
    let alg = algorithm_version(s, pid, alg_artifact, ao_user, "v1", &package);
    let alg2 = algorithm_version(s, pid, alg_artifact, ao_user, "v2", b"another package");
    let criteria = s
        .block_on(store.add_version(NewVersion {
            artifact_id: crit_artifact,
            tag: tag("c1"),
            description: String::new(),
            uploaded_by: ao_user,
            blob: None,
            detail: NewVersionDetail::ValidationCriteria {
                criteria_json: CRITERIA.into(),
            },
        }))
        .unwrap()
        .id;
    s.block_on(store.accept_criteria(criteria, ds_org, ds_user))
        .unwrap();
    let mut fx = Fx {
        w,
        project,
        ao_user,
        ds_user,
        ds_org,
        alg_artifact,
        ds_artifact,
        alg,
        alg2,
        dataset: String::new(),
        criteria: criteria.to_string(),
        package,
    };
    fx.dataset = dataset_version(s, &fx, "d1", 30 * 86_400);
    fx
}

/// Creates a run configuration through the API (201); returns its ID.
pub fn run_config(s: &TestServer, fx: &Fx, n: &str, alg: &str, dataset: &str) -> String {
    s.post(
        &format!("/api/v1/projects/{}/run-configs", fx.project),
        &fx.w.ao_token,
        json!({
            "name": n,
            "description": "validation on ICU data",
            "algorithm_version_id": alg,
            "dataset_version_id": dataset,
            "criteria_version_id": fx.criteria,
        }),
    )
    .expect(201)
    .json["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Sends a run request through the API (201); returns the run ID.
pub fn request(s: &TestServer, fx: &Fx, rc: &str) -> String {
    s.post(
        &format!("/api/v1/run-configs/{rc}/runs"),
        &fx.w.ao_token,
        json!({ "params": { "epochs": "3", "learning_rate": "0.01" }, "vcpus": 2, "ram_gib": 4 }),
    )
    .expect(201)
    .json["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An agent call with a JSON body.
pub fn agent_post(s: &TestServer, token: &str, path: &str, body: serde_json::Value) -> Resp {
    s.call("POST", path, Some(token), Body::Json(body))
}

/// Reports a state as the agent.
pub fn agent_state(s: &TestServer, token: &str, run: &str, state: &str) -> Resp {
    agent_post(
        s,
        token,
        &format!("/api/v1/agent/runs/{run}/state"),
        json!({ "state": state }),
    )
}

/// Uploads an output as the agent.
pub fn put_output(
    s: &TestServer,
    token: &str,
    run: &str,
    kind: &str,
    query: &str,
    bytes: &[u8],
) -> Resp {
    s.call(
        "PUT",
        &format!("/api/v1/agent/runs/{run}/outputs/{kind}?{query}"),
        Some(token),
        Body::Raw("application/octet-stream", bytes.to_vec()),
    )
}

/// The user's notification kinds, straight from the store.
pub fn notification_kinds(s: &TestServer, user: UserId) -> Vec<String> {
    s.block_on(s.state.store().list_notifications(user, Timestamp::now()))
        .unwrap()
        .into_iter()
        .map(|n| n.kind.to_string())
        .collect()
}
