//! The authorization matrix: every route of the OpenAPI document × {anonymous, AO member,
//! DS member, member of another project, admin}, asserting exactly the allowed set.
//!
//! Each route has an entry in [`matrix`] with the callers allowed and a request builder that
//! makes a valid request for it (fresh objects where the request consumes one). A denied
//! caller must get 401, 403 or 404 and change nothing; an allowed caller must get a 2xx. A route
//! in the OpenAPI document without an entry fails the test, and so does an entry without a route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{world, Body, TestServer, World};
use sealroom_store::*;
use sealroom_types::*;
use serde_json::json;

/// The five kinds of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    Ao,
    Ds,
    Other,
    Admin,
}

const ALL: &[Who] = &[Who::Anonymous, Who::Ao, Who::Ds, Who::Other, Who::Admin];
const USERS: &[Who] = &[Who::Ao, Who::Ds, Who::Other, Who::Admin];
const MEMBERS: &[Who] = &[Who::Ao, Who::Ds];
const MEMBERS_ADMIN: &[Who] = &[Who::Ao, Who::Ds, Who::Admin];
const AO: &[Who] = &[Who::Ao];
const DS: &[Who] = &[Who::Ds];
const ADMIN: &[Who] = &[Who::Admin];
const DS_ADMIN: &[Who] = &[Who::Ds, Who::Admin];
const NOBODY: &[Who] = &[];

/// One request.
struct Req {
    method: &'static str,
    path: String,
    body: Body,
    /// Use this token instead of the caller's usual one (a fresh session for logout).
    token: Option<Option<String>>,
}

fn req(method: &'static str, path: String) -> Req {
    Req {
        method,
        path,
        body: Body::None,
        token: None,
    }
}

fn json_req(method: &'static str, path: String, body: serde_json::Value) -> Req {
    Req {
        method,
        path,
        body: Body::Json(body),
        token: None,
    }
}

/// The objects requests refer to.
struct Fx {
    s: TestServer,
    w: World,
    other: World,
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
    attestation: ArtifactId,
    config: RunConfigId,
    run: RunId,
    /// A run with a validated final report.
    report_run: RunId,
    /// A signed URL (path and query) of an object in the DS's storage.
    signed_path: String,
    /// One of the AO's notifications.
    ao_notification: String,
}

impl Fx {
    fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Ao => Some(self.w.ao_token.clone()),
            Who::Ds => Some(self.w.ds_token.clone()),
            Who::Other => Some(self.other.ao_token.clone()),
            Who::Admin => Some(self.s.admin_token.clone()),
        }
    }

    fn username(&self, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Ao => Some("alice-m".into()),
            Who::Ds => Some("dave-m".into()),
            Who::Other => Some("alice-o".into()),
            Who::Admin => Some("admin".into()),
        }
    }

    fn password(&self, who: Who) -> String {
        if who == Who::Admin {
            self.s.admin_password.clone()
        } else {
            common::PASSWORD.to_string()
        }
    }

    fn store(&self) -> &SqlStore {
        &self.s.store
    }

    fn blob(&self, bytes: &[u8], name: &str) -> BlobRef {
        let key = sealroom_blob::BlobKey::parse(&format!(
            "projects/{}/test/{}",
            self.project,
            ArtifactId::new()
        ))
        .unwrap();
        let meta = self
            .s
            .block_on(self.s.state.blobs().put(
                &key,
                &mut &bytes[..],
                sealroom_blob::PutOptions::default(),
            ))
            .unwrap();
        BlobRef {
            key: key.as_str().to_string(),
            size: meta.size as i64,
            sha256: meta.sha256_hex(),
            file_name: name.into(),
        }
    }

    fn dataset_url(&self) -> String {
        let path = format!("/blobs/projects/{}/datasets/d/", self.project);
        self.s
            .state
            .signer()
            .sign(
                "GET",
                &path,
                sealroom_blob::signed::Permission::List,
                Timestamp::now().plus_secs(30 * 86_400),
            )
            .unwrap()
            .to_url(&self.s.url)
    }

    fn artifact(&self, kind: ArtifactKind, name: &str) -> ArtifactId {
        let owner = match kind.owner_role() {
            Role::AlgorithmOwner => (self.ao_org, self.ao),
            Role::DataSteward => (self.ds_org, self.ds),
        };
        self.s
            .block_on(self.store().create_artifact(NewArtifact {
                project_id: self.project,
                kind,
                owner_org_id: owner.0,
                name: Name::parse(name).unwrap(),
                description: format!("{name} (authz fixture)"),
                algorithm_type:
                    (kind == ArtifactKind::Algorithm).then_some(AlgorithmType::Validation),
                created_by: owner.1,
            }))
            .unwrap()
            .id
    }

    fn version(
        &self,
        artifact: ArtifactId,
        detail: NewVersionDetail,
        blob: Option<BlobRef>,
    ) -> VersionId {
        let uploader = match detail {
            NewVersionDetail::Dataset { .. } | NewVersionDetail::AttestationReport { .. } => {
                self.ds
            }
            _ => self.ao,
        };
        self.s
            .block_on(self.store().add_version(NewVersion {
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

    fn dataset_version(&self) -> VersionId {
        self.version(
            self.dataset,
            NewVersionDetail::Dataset {
                url: self.dataset_url(),
                data_specification_version: None,
                attestation_report_version: None,
                wcek_fingerprint: None,
            },
            None,
        )
    }

    fn fresh_config(&self) -> RunConfigId {
        let dv = self.dataset_version();
        self.s
            .block_on(self.store().create_run_config(
                NewRunConfig {
                    project_id: self.project,
                    name: Name::parse(&format!("cfg {}", RunConfigId::new())).unwrap(),
                    description: String::new(),
                    algorithm_version_id: self.algorithm_v,
                    dataset_version_id: dv,
                    criteria_version_id: Some(self.criteria_v),
                    created_by: self.ao,
                },
                Timestamp::now(),
            ))
            .unwrap()
            .id
    }

    /// A fresh run request on a fresh configuration.
    fn fresh_run(&self) -> RunId {
        let config = self.fresh_config();
        self.s
            .block_on(self.store().request_run(NewRun {
                run_config_id: config,
                params: RuntimeParams::from_pairs([("epochs", "3")]).unwrap(),
                compute: ComputeSize {
                    vcpus: 1,
                    ram_gib: 1,
                },
                requested_by: self.ao,
            }))
            .unwrap()
            .id
    }

    fn fresh_initiated_run(&self) -> RunId {
        let run = self.fresh_run();
        self.s
            .block_on(self.store().transition_run(
                RunTransition {
                    run_id: run,
                    to: RunState::Initiated,
                    actor: Actor::User(self.ds),
                    message: None,
                },
                Timestamp::now(),
            ))
            .unwrap();
        run
    }

    fn fresh_org(&self) -> OrgId {
        self.s
            .block_on(
                self.store()
                    .create_org(&Name::parse(&format!("Org {}", OrgId::new())).unwrap()),
            )
            .unwrap()
            .id
    }

    fn wcek(&self, role: Role) -> Vec<u8> {
        let record = self
            .s
            .block_on(self.store().project_key(self.project, role))
            .unwrap();
        let cek = sealroom_envelope::Cek::generate().unwrap();
        sealroom_envelope::kek::KekPublic::from_der(&record.public_der)
            .unwrap()
            .wrap(&cek)
            .unwrap()
    }
}

fn setup() -> Fx {
    let s = TestServer::sqlite();
    let w = world(&s, "m");
    let other = world(&s, "o");
    let project: ProjectId = s
        .project(&w, "Matrix project", "simulated")
        .parse()
        .unwrap();
    s.project(&other, "Other project", "simulated");
    let ao_org: OrgId = w.ao_org.parse().unwrap();
    let ds_org: OrgId = w.ds_org.parse().unwrap();
    let ao: UserId = w.ao_user.parse().unwrap();
    let ds: UserId = w.ds_user.parse().unwrap();
    let mut fx = Fx {
        s,
        w,
        other,
        project,
        ao_org,
        ds_org,
        ao,
        ds,
        data_spec: ArtifactId::new(),
        data_spec_v: VersionId::new(),
        criteria: ArtifactId::new(),
        criteria_v: VersionId::new(),
        algorithm: ArtifactId::new(),
        algorithm_v: VersionId::new(),
        dataset: ArtifactId::new(),
        attestation: ArtifactId::new(),
        config: RunConfigId::new(),
        run: RunId::new(),
        report_run: RunId::new(),
        signed_path: String::new(),
        ao_notification: String::new(),
    };
    fx.data_spec = fx.artifact(ArtifactKind::DataSpecification, "Data spec");
    let pdf = fx.blob(b"%PDF-1.4\n% fixture\n", "spec.pdf");
    fx.data_spec_v = fx.version(fx.data_spec, NewVersionDetail::DataSpecification, Some(pdf));
    fx.criteria = fx.artifact(ArtifactKind::ValidationCriteria, "Criteria");
    let criteria_json = r#"{"accuracy":{"type":"float","min":0,"max":1,"required":true}}"#;
    let cblob = fx.blob(criteria_json.as_bytes(), "criteria.json");
    fx.criteria_v = fx.version(
        fx.criteria,
        NewVersionDetail::ValidationCriteria {
            criteria_json: criteria_json.into(),
        },
        Some(cblob),
    );
    fx.s.block_on(fx.store().accept_criteria(fx.criteria_v, fx.ds_org, fx.ds))
        .unwrap();
    fx.algorithm = fx.artifact(ArtifactKind::Algorithm, "Algorithm");
    let tar = fx.blob(&[0u8; 1024], "package.tar");
    fx.algorithm_v = fx.version(
        fx.algorithm,
        NewVersionDetail::Algorithm {
            wcek_fingerprint: None,
        },
        Some(tar),
    );
    fx.attestation = fx.artifact(ArtifactKind::AttestationReport, "Attestation");
    fx.dataset = fx.artifact(ArtifactKind::Dataset, "Dataset");
    fx.config = fx.fresh_config();

    // A run that went all the way, through the agent API, with a final report.
    fx.report_run = fx.fresh_initiated_run();
    let site = fx.w.site_token.clone();
    let claimed =
        fx.s.post("/api/v1/agent/claim?wait=0", &site, json!({}))
            .expect(200);
    let claimed_id = claimed.json["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(claimed_id, fx.report_run.to_string());
    for state in ["runtime_build", "workload_launch", "running"] {
        fx.s.post(
            &format!("/api/v1/agent/runs/{claimed_id}/state"),
            &site,
            json!({ "state": state }),
        )
        .expect(200);
    }
    fx.s.call(
        "PUT",
        &format!("/api/v1/agent/runs/{claimed_id}/outputs/final_report?name=report.json&passed_criteria=true"),
        Some(&site),
        Body::Raw("application/octet-stream", br#"{"accuracy": 0.91}"#.to_vec()),
    )
    .expect(201);
    fx.run = fx.fresh_initiated_run();

    // An object in the DS's storage and a signed URL for it.
    fx.s.call(
        "PUT",
        &format!("/api/v1/projects/{}/storage/fixture/data.csv", fx.project),
        Some(&fx.w.ds_token),
        Body::Raw("application/octet-stream", sealed(b"a,b\n1,2\n")),
    )
    .expect(201);
    let url =
        fx.s.post(
            &format!("/api/v1/projects/{}/storage/sign", fx.project),
            &fx.w.ds_token,
            json!({ "prefix": "fixture/data.csv", "expires_in_hours": 24 }),
        )
        .expect(200)
        .json["url"]
            .as_str()
            .unwrap()
            .to_string();
    fx.signed_path = url.strip_prefix(&fx.s.url).unwrap().to_string();

    // A rejected request tells the AO.
    let rejected = fx.fresh_run();
    fx.s.block_on(fx.store().transition_run(
        RunTransition {
            run_id: rejected,
            to: RunState::Rejected,
            actor: Actor::User(fx.ds),
            message: Some("not this quarter".into()),
        },
        Timestamp::now(),
    ))
    .unwrap();
    let n =
        fx.s.get("/api/v1/notifications", &fx.w.ao_token)
            .expect(200);
    fx.ao_notification = n.json["items"][0]["id"].as_str().unwrap().to_string();
    fx
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

type Build = Box<dyn Fn(&Fx, Who) -> Req>;

struct Entry {
    method: &'static str,
    path: &'static str,
    allowed: &'static [Who],
    build: Build,
}

fn e(
    method: &'static str,
    path: &'static str,
    allowed: &'static [Who],
    build: impl Fn(&Fx, Who) -> Req + 'static,
) -> Entry {
    Entry {
        method,
        path,
        allowed,
        build: Box::new(build),
    }
}

/// The expected access of every route.
fn matrix() -> Vec<Entry> {
    vec![
        // ---- accounts
        e("POST", "/api/v1/auth/login", ALL, |f, who| {
            let who = if who == Who::Anonymous { Who::Ao } else { who };
            json_req(
                "POST",
                "/api/v1/auth/login".into(),
                json!({ "username": f.username(who), "password": f.password(who) }),
            )
        }),
        e("POST", "/api/v1/auth/logout", USERS, |f, who| {
            let mut r = json_req("POST", "/api/v1/auth/logout".into(), json!({}));
            r.token = Some(f.username(who).map(|u| f.s.login(&u, &f.password(who))));
            r
        }),
        e("GET", "/api/v1/me", USERS, |_, _| {
            req("GET", "/api/v1/me".into())
        }),
        e("PUT", "/api/v1/me/password", USERS, |f, who| {
            let p = f.password(who);
            json_req(
                "PUT",
                "/api/v1/me/password".into(),
                json!({ "current_password": p, "new_password": p }),
            )
        }),
        e("POST", "/api/v1/tokens", USERS, |_, _| {
            json_req("POST", "/api/v1/tokens".into(), json!({ "name": "matrix" }))
        }),
        e("GET", "/api/v1/tokens", USERS, |_, _| {
            req("GET", "/api/v1/tokens".into())
        }),
        e("DELETE", "/api/v1/tokens/{token_id}", USERS, |f, who| {
            // Each user revokes a token of its own.
            let id = match f.token(who) {
                Some(t) => {
                    f.s.post("/api/v1/tokens", &t, json!({ "name": "to revoke" }))
                        .json["id"]
                        .as_str()
                        .unwrap_or("none")
                        .to_string()
                }
                None => "none".into(),
            };
            req("DELETE", format!("/api/v1/tokens/{id}"))
        }),
        e("POST", "/api/v1/orgs", ADMIN, |_, _| {
            json_req(
                "POST",
                "/api/v1/orgs".into(),
                json!({ "name": format!("Org {}", OrgId::new()) }),
            )
        }),
        e("GET", "/api/v1/orgs", ADMIN, |_, _| {
            req("GET", "/api/v1/orgs".into())
        }),
        e("POST", "/api/v1/users", ADMIN, |f, _| {
            json_req(
                "POST",
                "/api/v1/users".into(),
                json!({ "org_id": f.ao_org, "username": format!("u{}", &UserId::new().to_string()[24..]), "password": common::PASSWORD }),
            )
        }),
        e("GET", "/api/v1/users", ADMIN, |_, _| {
            req("GET", "/api/v1/users".into())
        }),
        e("PUT", "/api/v1/users/{user_id}/disabled", ADMIN, |f, _| {
            json_req(
                "PUT",
                format!("/api/v1/users/{}/disabled", f.ao),
                json!({ "disabled": false }),
            )
        }),
        e("POST", "/api/v1/orgs/{org_id}/sites", ADMIN, |f, _| {
            json_req(
                "POST",
                format!("/api/v1/orgs/{}/sites", f.ds_org),
                json!({ "name": format!("Site {}", SiteId::new()) }),
            )
        }),
        // ---- projects
        e("POST", "/api/v1/projects", ADMIN, |f, _| {
            json_req(
                "POST",
                "/api/v1/projects".into(),
                json!({
                    "name": format!("P {}", ProjectId::new()),
                    "description": "matrix",
                    "technology": "simulated",
                    "members": [
                        { "org_id": f.ao_org, "role": "algorithm_owner" },
                        { "org_id": f.ds_org, "role": "data_steward" }
                    ]
                }),
            )
        }),
        e("GET", "/api/v1/projects", USERS, |_, _| {
            req("GET", "/api/v1/projects".into())
        }),
        e(
            "GET",
            "/api/v1/projects/{project_id}",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/projects/{}", f.project)),
        ),
        e(
            "PUT",
            "/api/v1/projects/{project_id}/state",
            ADMIN,
            |f, _| {
                json_req(
                    "PUT",
                    format!("/api/v1/projects/{}/state", f.project),
                    json!({ "state": "active" }),
                )
            },
        ),
        e(
            "POST",
            "/api/v1/projects/{project_id}/members",
            ADMIN,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/projects/{}/members", f.project),
                    json!({ "org_id": f.fresh_org(), "role": "data_steward" }),
                )
            },
        ),
        e(
            "PUT",
            "/api/v1/projects/{project_id}/settings",
            DS,
            |f, _| {
                json_req(
                    "PUT",
                    format!("/api/v1/projects/{}/settings", f.project),
                    json!({ "algorithm_logs_to_ao": false }),
                )
            },
        ),
        e(
            "GET",
            "/api/v1/projects/{project_id}/keys/{role}/kek",
            AO,
            |f, _| req("GET", format!("/api/v1/projects/{}/keys/ao/kek", f.project)),
        ),
        e(
            "POST",
            "/api/v1/projects/{project_id}/keys/{role}/wcek",
            DS,
            |f, _| Req {
                method: "POST",
                path: format!("/api/v1/projects/{}/keys/ds/wcek", f.project),
                body: Body::Raw("application/octet-stream", f.wcek(Role::DataSteward)),
                token: None,
            },
        ),
        e(
            "GET",
            "/api/v1/projects/{project_id}/keys/{role}/wceks",
            MEMBERS,
            |f, _| {
                req(
                    "GET",
                    format!("/api/v1/projects/{}/keys/ao/wceks", f.project),
                )
            },
        ),
        // ---- artifacts
        e(
            "POST",
            "/api/v1/projects/{project_id}/artifacts",
            AO,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/projects/{}/artifacts", f.project),
                    json!({ "kind": "validation_criteria", "name": format!("C {}", ArtifactId::new()), "description": "" }),
                )
            },
        ),
        e(
            "GET",
            "/api/v1/projects/{project_id}/artifacts",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/projects/{}/artifacts", f.project)),
        ),
        e(
            "GET",
            "/api/v1/artifacts/{artifact_id}",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/artifacts/{}", f.criteria)),
        ),
        e(
            "POST",
            "/api/v1/artifacts/{artifact_id}/versions",
            AO,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/artifacts/{}/versions", f.criteria),
                    json!({ "tag": format!("t{}", &VersionId::new().to_string()[24..]), "description": "",
                        "criteria": { "accuracy": { "type": "float" } } }),
                )
            },
        ),
        e(
            "POST",
            "/api/v1/artifacts/{artifact_id}/versions/upload",
            AO,
            |f, _| Req {
                method: "POST",
                path: format!(
                    "/api/v1/artifacts/{}/versions/upload?tag=t{}&file_name=spec.pdf",
                    f.data_spec,
                    &VersionId::new().to_string()[24..]
                ),
                body: Body::Raw("application/octet-stream", b"%PDF-1.4\nmatrix\n".to_vec()),
                token: None,
            },
        ),
        e(
            "GET",
            "/api/v1/artifacts/{artifact_id}/versions",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/artifacts/{}/versions", f.criteria)),
        ),
        e(
            "GET",
            "/api/v1/versions/{version_id}",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/versions/{}", f.criteria_v)),
        ),
        e(
            "GET",
            "/api/v1/versions/{version_id}/content",
            MEMBERS,
            |f, _| req("GET", format!("/api/v1/versions/{}/content", f.data_spec_v)),
        ),
        e(
            "POST",
            "/api/v1/versions/{version_id}/accept",
            DS,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/versions/{}/accept", f.criteria_v),
                    json!({}),
                )
            },
        ),
        e(
            "POST",
            "/api/v1/versions/{version_id}/certify",
            DS,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/versions/{}/certify", f.dataset_version()),
                    json!({}),
                )
            },
        ),
        // ---- runs
        e(
            "POST",
            "/api/v1/projects/{project_id}/run-configs",
            AO,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/projects/{}/run-configs", f.project),
                    json!({ "name": format!("cfg {}", RunConfigId::new()), "description": "",
                        "algorithm_version_id": f.algorithm_v, "dataset_version_id": f.dataset_version(),
                        "criteria_version_id": f.criteria_v }),
                )
            },
        ),
        e(
            "GET",
            "/api/v1/projects/{project_id}/run-configs",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/projects/{}/run-configs", f.project)),
        ),
        e(
            "GET",
            "/api/v1/run-configs/{run_config_id}",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/run-configs/{}", f.config)),
        ),
        e(
            "POST",
            "/api/v1/run-configs/{run_config_id}/runs",
            AO,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/run-configs/{}/runs", f.fresh_config()),
                    json!({ "params": { "epochs": "3" }, "vcpus": 1, "ram_gib": 1 }),
                )
            },
        ),
        e(
            "GET",
            "/api/v1/projects/{project_id}/runs",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/projects/{}/runs", f.project)),
        ),
        e("GET", "/api/v1/runs/{run_id}", MEMBERS_ADMIN, |f, _| {
            req("GET", format!("/api/v1/runs/{}", f.run))
        }),
        e("POST", "/api/v1/runs/{run_id}/initiate", DS, |f, _| {
            json_req(
                "POST",
                format!("/api/v1/runs/{}/initiate", f.fresh_run()),
                json!({}),
            )
        }),
        e("POST", "/api/v1/runs/{run_id}/reject", DS, |f, _| {
            json_req(
                "POST",
                format!("/api/v1/runs/{}/reject", f.fresh_run()),
                json!({ "reason": "not now" }),
            )
        }),
        e("POST", "/api/v1/runs/{run_id}/cancel", DS, |f, _| {
            json_req(
                "POST",
                format!("/api/v1/runs/{}/cancel", f.fresh_initiated_run()),
                json!({ "reason": "changed our mind" }),
            )
        }),
        e("GET", "/api/v1/runs/{run_id}/logs", MEMBERS, |f, _| {
            req("GET", format!("/api/v1/runs/{}/logs?stream=stage", f.run))
        }),
        // Output metadata (kind, size, hash, passed) — never content — is visible to admins.
        e(
            "GET",
            "/api/v1/runs/{run_id}/outputs",
            MEMBERS_ADMIN,
            |f, _| req("GET", format!("/api/v1/runs/{}/outputs", f.report_run)),
        ),
        e(
            "GET",
            "/api/v1/runs/{run_id}/outputs/{output_id}/content",
            AO,
            |f, _| {
                req(
                    "GET",
                    format!(
                        "/api/v1/runs/{}/outputs/final_report:report.json/content",
                        f.report_run
                    ),
                )
            },
        ),
        e("GET", "/api/v1/runs/{run_id}/report", AO, |f, _| {
            req("GET", format!("/api/v1/runs/{}/report", f.report_run))
        }),
        // ---- built-in storage
        e(
            "PUT",
            "/api/v1/projects/{project_id}/storage/{*path}",
            DS,
            |f, _| Req {
                method: "PUT",
                path: format!(
                    "/api/v1/projects/{}/storage/matrix/{}.bin",
                    f.project,
                    ArtifactId::new()
                ),
                body: Body::Raw("application/octet-stream", sealed(b"matrix")),
                token: None,
            },
        ),
        e(
            "GET",
            "/api/v1/projects/{project_id}/storage",
            DS,
            |f, _| req("GET", format!("/api/v1/projects/{}/storage", f.project)),
        ),
        e(
            "POST",
            "/api/v1/projects/{project_id}/storage/sign",
            DS,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/projects/{}/storage/sign", f.project),
                    json!({ "prefix": "fixture/", "expires_in_hours": 48 }),
                )
            },
        ),
        // Signed URLs: the signature is the permission, whoever holds it.
        e("GET", "/blobs/{*path}", ALL, |f, _| {
            req("GET", f.signed_path.clone())
        }),
        // ---- attestation keys and policies
        e("PUT", "/api/v1/agent/attestation-key", NOBODY, |_, _| {
            json_req(
                "PUT",
                "/api/v1/agent/attestation-key".into(),
                json!({ "public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }),
            )
        }),
        e(
            "DELETE",
            "/api/v1/sites/{site_id}/attestation-key",
            ADMIN,
            |f, _| {
                // The site registers a key, so that there is one to delete.
                let key = sealroom_attest::sim::SimulatedAttester::generate([7u8; 48]).unwrap();
                let pk = base64_encode(&key.public_key());
                f.s.call(
                    "PUT",
                    "/api/v1/agent/attestation-key",
                    Some(&f.w.site_token),
                    Body::Json(json!({ "public_key": pk })),
                );
                req(
                    "DELETE",
                    format!("/api/v1/sites/{}/attestation-key", f.w.site_id),
                )
            },
        ),
        e(
            "GET",
            "/api/v1/projects/{project_id}/attestation-policy",
            MEMBERS_ADMIN,
            |f, _| {
                req(
                    "GET",
                    format!("/api/v1/projects/{}/attestation-policy", f.project),
                )
            },
        ),
        e(
            "PUT",
            "/api/v1/projects/{project_id}/attestation-policy",
            DS_ADMIN,
            |f, _| {
                json_req(
                    "PUT",
                    format!("/api/v1/projects/{}/attestation-policy", f.project),
                    json!({}),
                )
            },
        ),
        e(
            "POST",
            "/api/v1/notifications/{notification_id}/read",
            AO,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/notifications/{}/read", f.ao_notification),
                    json!({}),
                )
            },
        ),
        // ---- comms
        e("GET", "/api/v1/notifications", USERS, |_, _| {
            req("GET", "/api/v1/notifications".into())
        }),
        e(
            "GET",
            "/api/v1/projects/{project_id}/chat",
            MEMBERS,
            |f, _| req("GET", format!("/api/v1/projects/{}/chat", f.project)),
        ),
        e(
            "POST",
            "/api/v1/projects/{project_id}/chat",
            MEMBERS,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/projects/{}/chat", f.project),
                    json!({ "body": "hello" }),
                )
            },
        ),
        e("GET", "/api/v1/search", USERS, |_, _| {
            req("GET", "/api/v1/search?q=matrix".into())
        }),
        e("GET", "/api/v1/audit", ADMIN, |_, _| {
            req("GET", "/api/v1/audit".into())
        }),
        e("GET", "/api/v1/audit/verify", ADMIN, |_, _| {
            req("GET", "/api/v1/audit/verify".into())
        }),
        // ---- the agent and broker APIs take site tokens only: no user and no anonymous caller.
        e("POST", "/api/v1/agent/claim", NOBODY, |_, _| {
            json_req("POST", "/api/v1/agent/claim".into(), json!({}))
        }),
        e("GET", "/api/v1/agent/runs/{run_id}", NOBODY, |f, _| {
            req("GET", format!("/api/v1/agent/runs/{}", f.run))
        }),
        e(
            "GET",
            "/api/v1/agent/runs/{run_id}/package",
            NOBODY,
            |f, _| req("GET", format!("/api/v1/agent/runs/{}/package", f.run)),
        ),
        e(
            "POST",
            "/api/v1/agent/runs/{run_id}/state",
            NOBODY,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/agent/runs/{}/state", f.run),
                    json!({ "state": "runtime_build" }),
                )
            },
        ),
        e(
            "POST",
            "/api/v1/agent/runs/{run_id}/heartbeat",
            NOBODY,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/agent/runs/{}/heartbeat", f.run),
                    json!({}),
                )
            },
        ),
        e(
            "POST",
            "/api/v1/agent/runs/{run_id}/logs",
            NOBODY,
            |f, _| {
                json_req(
                    "POST",
                    format!("/api/v1/agent/runs/{}/logs", f.run),
                    json!({ "lines": [{ "stream": "stage", "line": "x" }] }),
                )
            },
        ),
        e(
            "PUT",
            "/api/v1/agent/runs/{run_id}/outputs/{kind}",
            NOBODY,
            |f, _| Req {
                method: "PUT",
                path: format!(
                    "/api/v1/agent/runs/{}/outputs/algorithm_report?name=x",
                    f.run
                ),
                body: Body::Raw("application/octet-stream", b"{}".to_vec()),
                token: None,
            },
        ),
        e("POST", "/api/v1/broker/nonce", NOBODY, |f, _| {
            json_req(
                "POST",
                "/api/v1/broker/nonce".into(),
                json!({ "run_id": f.run }),
            )
        }),
        e("POST", "/api/v1/broker/release", NOBODY, |f, _| {
            json_req(
                "POST",
                "/api/v1/broker/release".into(),
                json!({ "run_id": f.run, "nonce": "AAAA", "evidence": {}, "enclave_public_key": "AAAA", "workload_digest": "00" }),
            )
        }),
    ]
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn status_allowed(status: u16) -> bool {
    (200..300).contains(&status)
}

fn status_denied(status: u16) -> bool {
    matches!(status, 401 | 403 | 404)
}

#[test]
fn every_route_allows_exactly_its_callers() {
    let fx = setup();
    let entries = matrix();

    // The routes served, from the OpenAPI document (generated from the same registration).
    let doc = sealroom_control::openapi();
    let mut served = BTreeSet::new();
    for (path, item) in doc.paths.paths.iter() {
        let item = serde_json::to_value(item).unwrap();
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                served.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = entries
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in the authorization matrix (add one): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "matrix entries for routes that do not exist: {stale:?}"
    );

    let mut failures = Vec::new();
    for entry in &entries {
        // Denied callers first, so that a wrongly allowed one cannot hide behind a used-up object.
        let mut order: Vec<Who> = ALL.to_vec();
        order.sort_by_key(|w| entry.allowed.contains(w));
        for who in order {
            let r = (entry.build)(&fx, who);
            let token = match r.token {
                Some(t) => t,
                None => fx.token(who),
            };
            let resp = fx.s.call(r.method, &r.path, token.as_deref(), r.body);
            let allowed = entry.allowed.contains(&who);
            let ok = if allowed {
                status_allowed(resp.status)
            } else {
                status_denied(resp.status) && (who != Who::Anonymous || resp.status == 401)
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {:?}: expected {}, got {} {}",
                    entry.method,
                    entry.path,
                    who,
                    if allowed { "2xx" } else { "401/403/404" },
                    resp.status,
                    resp.text().chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
