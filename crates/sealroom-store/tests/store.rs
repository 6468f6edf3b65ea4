//! The metadata store suite: every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::sync::Arc;

use common::TestDb;
use sealroom_store::*;
use sealroom_types::*;
use sqlx::Executor;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn tag(s: &str) -> VersionTag {
    VersionTag::parse(s).unwrap()
}

/// A fake argon2id PHC string: the store keeps what it is given and never computes one.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn azure_url(expires: Timestamp) -> String {
    format!(
        "https://ds.blob.core.windows.net/data?sp=rl&st=2026-01-01T00:00:00Z&se={expires}&spr=https&sv=2022-11-02&sr=c&sig=abc%2B"
    )
}

fn blob(key: &str) -> BlobRef {
    BlobRef {
        key: key.into(),
        size: 3,
        sha256: "ab".repeat(32),
        file_name: "f.bin".into(),
    }
}

/// Two organizations (AO, DS) with one user each, an admin, and a project between them.
struct World {
    admin: User,
    ao_org: Organization,
    ds_org: Organization,
    ao: User,
    ds: User,
    project: Project,
}

async fn user(s: &SqlStore, org: OrgId, username: &str, admin: bool) -> User {
    s.create_user(NewUser {
        org_id: org,
        username: username.into(),
        display_name: username.to_uppercase(),
        is_admin: admin,
        password_hash: HASH.into(),
    })
    .await
    .unwrap()
}

fn keys(stem: &str) -> Vec<NewProjectKey> {
    Role::ALL
        .iter()
        .map(|r| NewProjectKey {
            role: *r,
            public_der: format!("spki-{r}").into_bytes(),
            file_name: format!("{stem}-abc123-{}.der", r.short()),
            encrypted_private: vec![0xEE; 64],
            provider: "file".into(),
            key_ref: "master-1".into(),
        })
        .collect()
}

async fn world(s: &SqlStore, tech: Technology) -> World {
    let platform = s.create_org(&name("Platform")).await.unwrap();
    let admin = user(s, platform.id, "admin", true).await;
    let ao_org = s.create_org(&name("Model Co")).await.unwrap();
    let ds_org = s.create_org(&name("General Hospital")).await.unwrap();
    let ao = user(s, ao_org.id, "alice", false).await;
    let ds = user(s, ds_org.id, "dave", false).await;
    let project = s
        .create_project(NewProject {
            id: ProjectId::new(),
            name: name("Chest X-ray"),
            description: "Pneumonia detection validation".into(),
            technology: tech,
            members: vec![
                (ao_org.id, Role::AlgorithmOwner),
                (ds_org.id, Role::DataSteward),
            ],
            keys: keys("chest-x-ray"),
            created_by: admin.id,
        })
        .await
        .unwrap();
    World {
        admin,
        ao_org,
        ds_org,
        ao,
        ds,
        project,
    }
}

struct Assets {
    algorithm: Artifact,
    alg_v1: ArtifactVersion,
    dataset: Artifact,
    ds_v1: ArtifactVersion,
}

async fn assets(s: &SqlStore, w: &World, alg_type: AlgorithmType) -> Assets {
    let algorithm = s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::Algorithm,
            owner_org_id: w.ao_org.id,
            name: name("Pneumonia net"),
            description: "ResNet-50".into(),
            algorithm_type: Some(alg_type),
            created_by: w.ao.id,
        })
        .await
        .unwrap();
    let alg_v1 = s
        .add_version(NewVersion {
            artifact_id: algorithm.id,
            tag: tag("v1.0"),
            description: "first".into(),
            uploaded_by: w.ao.id,
            blob: Some(blob("p/alg/v1")),
            detail: NewVersionDetail::Algorithm {
                wcek_fingerprint: None,
            },
        })
        .await
        .unwrap();
    let dataset = s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::Dataset,
            owner_org_id: w.ds_org.id,
            name: name("Radiographs 2024"),
            description: "10k images".into(),
            algorithm_type: None,
            created_by: w.ds.id,
        })
        .await
        .unwrap();
    let ds_v1 = s
        .add_version(NewVersion {
            artifact_id: dataset.id,
            tag: tag("2024-q1"),
            description: "".into(),
            uploaded_by: w.ds.id,
            blob: None,
            detail: NewVersionDetail::Dataset {
                url: azure_url(Timestamp::now().plus_secs(30 * 86400)),
                data_specification_version: None,
                attestation_report_version: None,
                wcek_fingerprint: None,
            },
        })
        .await
        .unwrap();
    Assets {
        algorithm,
        alg_v1,
        dataset,
        ds_v1,
    }
}

async fn accounts(db: &TestDb) {
    let s = &*db.store;
    let org = s.create_org(&name("Acme")).await.unwrap();
    let e = s.create_org(&name("ACME")).await.unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");
    assert_eq!(e.code(), ErrorCode::AlreadyExists);
    assert_eq!(s.get_org(org.id).await.unwrap(), org);
    assert!(matches!(
        s.get_org(OrgId::new()).await,
        Err(StoreError::NotFound { .. })
    ));

    assert!(!s.has_admin().await.unwrap());
    let u = user(s, org.id, "Bob", true).await;
    assert_eq!(u.username, "bob");
    assert!(s.has_admin().await.unwrap());
    let e = s
        .create_user(NewUser {
            org_id: org.id,
            username: "BOB".into(),
            display_name: "x".into(),
            is_admin: false,
            password_hash: HASH.into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }));
    let e = s
        .create_user(NewUser {
            org_id: OrgId::new(),
            username: "carol".into(),
            display_name: "x".into(),
            is_admin: false,
            password_hash: HASH.into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                what: "organization",
                ..
            }
        ),
        "{e}"
    );
    assert!(s
        .create_user(NewUser {
            org_id: org.id,
            username: "a b".into(),
            display_name: "".into(),
            is_admin: false,
            password_hash: HASH.into()
        })
        .await
        .is_err());

    let c = s.user_credentials(" BOB ").await.unwrap().unwrap();
    assert_eq!(c.user, u);
    assert_eq!(c.password_hash, HASH);
    assert!(s.user_credentials("nobody").await.unwrap().is_none());
    s.set_password_hash(u.id, "$argon2id$new").await.unwrap();
    assert_eq!(
        s.user_credentials("bob")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );

    let now = Timestamp::now();
    let h1 = "11".repeat(32);
    let t = s
        .create_token(NewToken {
            kind: TokenKind::Session,
            subject: TokenSubject::User(u.id),
            token_hash: h1.clone(),
            name: "browser".into(),
            expires_at: Some(now.plus_secs(3600)),
        })
        .await
        .unwrap();
    assert_eq!(s.find_token(&h1, now).await.unwrap().unwrap(), t);
    assert!(
        s.find_token(&h1, now.plus_secs(3601))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(s.find_token(&"22".repeat(32), now).await.unwrap().is_none());
    assert!(s
        .create_token(NewToken {
            kind: TokenKind::Site,
            subject: TokenSubject::User(u.id),
            token_hash: "33".repeat(32),
            name: "x".into(),
            expires_at: None
        })
        .await
        .is_err());
    assert!(s
        .create_token(NewToken {
            kind: TokenKind::Api,
            subject: TokenSubject::User(u.id),
            token_hash: "not-hex".into(),
            name: "x".into(),
            expires_at: None
        })
        .await
        .is_err());
    let api = s
        .create_token(NewToken {
            kind: TokenKind::Api,
            subject: TokenSubject::User(u.id),
            token_hash: "44".repeat(32),
            name: "cli".into(),
            expires_at: None,
        })
        .await
        .unwrap();
    assert_eq!(
        s.list_tokens(u.id, TokenKind::Api, now).await.unwrap(),
        vec![api.clone()]
    );
    s.revoke_token(&api.id).await.unwrap();
    assert!(
        s.find_token(&"44".repeat(32), now).await.unwrap().is_none(),
        "revoked"
    );
    assert!(matches!(
        s.revoke_token(&api.id).await,
        Err(StoreError::NotFound { .. })
    ));

    // Disabling a user kills its sessions.
    s.set_user_disabled(u.id, true).await.unwrap();
    assert!(s.find_token(&h1, now).await.unwrap().is_none());
    assert!(s.get_user(u.id).await.unwrap().disabled);

    let site = s.create_site(org.id, &name("Hospital DC")).await.unwrap();
    assert_eq!(s.get_site(site.id).await.unwrap(), site);
    let st = s
        .create_token(NewToken {
            kind: TokenKind::Site,
            subject: TokenSubject::Site(site.id),
            token_hash: "55".repeat(32),
            name: "agent".into(),
            expires_at: None,
        })
        .await
        .unwrap();
    assert_eq!(
        s.find_token(&"55".repeat(32), now)
            .await
            .unwrap()
            .unwrap()
            .subject,
        TokenSubject::Site(site.id)
    );
    assert_eq!(st.kind, TokenKind::Site);
    assert_eq!(s.list_users(Some(org.id)).await.unwrap().len(), 1);
}

async fn projects(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::SevSnp).await;
    assert_eq!(w.project.state, ProjectState::Active);
    assert_eq!(s.get_project(w.project.id).await.unwrap(), w.project);
    assert_eq!(
        s.member_role(w.project.id, w.ao_org.id).await.unwrap(),
        Some(Role::AlgorithmOwner)
    );
    assert_eq!(
        s.member_role(w.project.id, w.ds_org.id).await.unwrap(),
        Some(Role::DataSteward)
    );
    assert_eq!(
        s.member_role(w.project.id, OrgId::new()).await.unwrap(),
        None
    );
    assert_eq!(s.list_members(w.project.id).await.unwrap().len(), 2);

    let k = s
        .project_key(w.project.id, Role::DataSteward)
        .await
        .unwrap();
    assert_eq!(k.public_der, b"spki-data_steward");
    assert_eq!(k.encrypted_private, vec![0xEE; 64]);
    assert_eq!(k.info.file_name, "chest-x-ray-abc123-ds.der");
    assert_eq!(k.info.fingerprint.len(), 64);
    assert!(
        !format!("{k:?}").contains("238"),
        "Debug must not print key bytes"
    );
    assert_eq!(s.project_keys(w.project.id).await.unwrap().len(), 2);

    // Invariants of creation.
    let bad = |members: Vec<(OrgId, Role)>| NewProject {
        id: ProjectId::new(),
        name: name("Other"),
        description: String::new(),
        technology: Technology::Tdx,
        members,
        keys: keys("other"),
        created_by: w.admin.id,
    };
    for members in [
        vec![(w.ao_org.id, Role::AlgorithmOwner)],
        vec![
            (w.ao_org.id, Role::AlgorithmOwner),
            (w.ds_org.id, Role::AlgorithmOwner),
        ],
        vec![
            (w.ao_org.id, Role::AlgorithmOwner),
            (w.ao_org.id, Role::DataSteward),
        ],
    ] {
        assert!(matches!(
            s.create_project(bad(members)).await,
            Err(StoreError::Invalid { .. })
        ));
    }
    let mut dup = bad(vec![
        (w.ao_org.id, Role::AlgorithmOwner),
        (w.ds_org.id, Role::DataSteward),
    ]);
    dup.name = name("chest x-ray");
    assert!(matches!(
        s.create_project(dup).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let e = s
        .create_project(bad(vec![
            (w.ao_org.id, Role::AlgorithmOwner),
            (OrgId::new(), Role::DataSteward),
        ]))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    // Nothing half-written by the failed creations.
    assert_eq!(
        s.list_projects(Viewer::Admin, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // A second DS joins; a second AO is refused.
    let ds2 = s.create_org(&name("Clinic Two")).await.unwrap();
    s.add_member(w.project.id, ds2.id, Role::DataSteward)
        .await
        .unwrap();
    assert!(matches!(
        s.add_member(w.project.id, ds2.id, Role::DataSteward).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let ao2 = s.create_org(&name("Rival Models")).await.unwrap();
    assert!(matches!(
        s.add_member(w.project.id, ao2.id, Role::AlgorithmOwner)
            .await,
        Err(StoreError::Invalid { .. })
    ));

    // Visibility and pagination.
    for i in 0..5 {
        s.create_project(NewProject {
            id: ProjectId::new(),
            name: name(&format!("Solo {i}")),
            description: String::new(),
            technology: Technology::Simulated,
            members: vec![(ao2.id, Role::AlgorithmOwner), (ds2.id, Role::DataSteward)],
            keys: keys("solo"),
            created_by: w.admin.id,
        })
        .await
        .unwrap();
    }
    let mine = s
        .list_projects(Viewer::Org(w.ao_org.id), None, 100)
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
    let theirs = s
        .list_projects(Viewer::Org(ds2.id), None, 100)
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 6);
    // The same lists with the organization's role in each, in one query, paged alike.
    let with_roles = s.list_org_projects(ds2.id, None, 4).await.unwrap();
    assert_eq!(with_roles.items.len(), 4);
    let rest = s
        .list_org_projects(
            ds2.id,
            Some(with_roles.next_cursor.clone().unwrap().parse().unwrap()),
            4,
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_cursor.is_none());
    let ids: Vec<ProjectId> = with_roles
        .items
        .iter()
        .chain(&rest.items)
        .map(|(p, _)| p.id)
        .collect();
    assert_eq!(ids, theirs.items.iter().map(|p| p.id).collect::<Vec<_>>());
    for (p, role) in with_roles.items.iter().chain(&rest.items) {
        assert_eq!(s.member_role(p.id, ds2.id).await.unwrap(), Some(*role));
    }
    let (_, ao_role) = &s
        .list_org_projects(w.ao_org.id, None, 10)
        .await
        .unwrap()
        .items[0];
    assert_eq!(*ao_role, Role::AlgorithmOwner);
    let p1 = s.list_projects(Viewer::Admin, None, 4).await.unwrap();
    assert_eq!(p1.items.len(), 4);
    let after: ProjectId = p1.next_cursor.clone().unwrap().parse().unwrap();
    let p2 = s
        .list_projects(Viewer::Admin, Some(after), 4)
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 2);
    assert!(p2.next_cursor.is_none());
    assert!(p1
        .items
        .iter()
        .all(|a| p2.items.iter().all(|b| a.id < b.id)));

    // States.
    let p = s
        .set_project_state(w.project.id, ProjectState::Deactivated)
        .await
        .unwrap();
    assert_eq!(p.state, ProjectState::Deactivated);
    assert!(matches!(
        s.set_algorithm_logs_to_ao(w.project.id, true).await,
        Err(StoreError::ProjectNotActive { .. })
    ));
    s.set_project_state(w.project.id, ProjectState::Active)
        .await
        .unwrap();
    assert!(
        s.set_algorithm_logs_to_ao(w.project.id, true)
            .await
            .unwrap()
            .algorithm_logs_to_ao
    );
    assert!(s.get_project(w.project.id).await.unwrap().technology == Technology::SevSnp);
}

async fn wceks(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::Simulated).await;
    assert!(s
        .latest_wcek(w.project.id, Role::AlgorithmOwner)
        .await
        .unwrap()
        .is_none());
    let mut fps = Vec::new();
    for i in 1..=3u8 {
        let v = s
            .add_wcek(NewWcek {
                project_id: w.project.id,
                role: Role::AlgorithmOwner,
                wcek: vec![i; 512],
                cek_key_id: Some(format!("kid{i}")),
                uploaded_by: w.ao.id,
            })
            .await
            .unwrap();
        assert_eq!(v.version, i64::from(i));
        fps.push(v.fingerprint);
    }
    let (latest, bytes) = s
        .latest_wcek(w.project.id, Role::AlgorithmOwner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.version, 3);
    assert_eq!(bytes, vec![3; 512]);
    let all = s
        .list_wceks(w.project.id, Role::AlgorithmOwner)
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|v| v.fingerprint.clone())
            .collect::<Vec<_>>(),
        fps
    );
    assert_eq!(all.iter().filter(|v| v.is_latest).count(), 1);
    // Only the latest bytes are kept.
    let row = sqlx::query("SELECT COUNT(*) AS n FROM wceks WHERE wcek IS NOT NULL")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&row, "n"), 1);
    assert!(s
        .latest_wcek(w.project.id, Role::DataSteward)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.add_wcek(NewWcek {
            project_id: w.project.id,
            role: Role::DataSteward,
            wcek: vec![],
            cek_key_id: None,
            uploaded_by: w.ds.id
        })
        .await,
        Err(StoreError::Invalid { .. })
    ));
}

async fn artifacts(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::Simulated).await;
    // Ownership by role.
    let e = s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::Algorithm,
            owner_org_id: w.ds_org.id,
            name: name("Sneaky"),
            description: String::new(),
            algorithm_type: Some(AlgorithmType::Training),
            created_by: w.ds.id,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    assert!(s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::Algorithm,
            owner_org_id: w.ao_org.id,
            name: name("Untyped"),
            description: String::new(),
            algorithm_type: None,
            created_by: w.ao.id,
        })
        .await
        .is_err());

    let spec = s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::DataSpecification,
            owner_org_id: w.ao_org.id,
            name: name("Data spec"),
            description: "inclusion criteria".into(),
            algorithm_type: None,
            created_by: w.ao.id,
        })
        .await
        .unwrap();
    let spec_v1 = s
        .add_version(NewVersion {
            artifact_id: spec.id,
            tag: tag("v1"),
            description: "draft".into(),
            uploaded_by: w.ao.id,
            blob: Some(blob("p/spec/v1.pdf")),
            detail: NewVersionDetail::DataSpecification,
        })
        .await
        .unwrap();
    assert_eq!(spec_v1.version, 1);
    assert_eq!(spec_v1.blob.as_ref().unwrap().key, "p/spec/v1.pdf");
    let spec_v2 = s
        .add_version(NewVersion {
            artifact_id: spec.id,
            tag: tag("v2"),
            description: String::new(),
            uploaded_by: w.ao.id,
            blob: Some(blob("p/spec/v2.pdf")),
            detail: NewVersionDetail::DataSpecification,
        })
        .await
        .unwrap();
    assert_eq!(spec_v2.version, 2);
    assert_eq!(s.get_artifact(spec.id).await.unwrap().latest_version, 2);
    let e = s
        .add_version(NewVersion {
            artifact_id: spec.id,
            tag: tag("v2"),
            description: String::new(),
            uploaded_by: w.ao.id,
            blob: None,
            detail: NewVersionDetail::DataSpecification,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::AlreadyExists { .. }), "{e}");
    let e = s
        .add_version(NewVersion {
            artifact_id: spec.id,
            tag: tag("v3"),
            description: String::new(),
            uploaded_by: w.ao.id,
            blob: None,
            detail: NewVersionDetail::AttestationReport {
                data_specification_version: None,
            },
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");

    let report = s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::AttestationReport,
            owner_org_id: w.ds_org.id,
            name: name("Conformance"),
            description: String::new(),
            algorithm_type: None,
            created_by: w.ds.id,
        })
        .await
        .unwrap();
    // Links must point at the right kind.
    let e = s
        .add_version(NewVersion {
            artifact_id: report.id,
            tag: tag("r1"),
            description: String::new(),
            uploaded_by: w.ds.id,
            blob: None,
            detail: NewVersionDetail::AttestationReport {
                data_specification_version: Some(VersionId::new()),
            },
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    let report_v1 = s
        .add_version(NewVersion {
            artifact_id: report.id,
            tag: tag("r1"),
            description: String::new(),
            uploaded_by: w.ds.id,
            blob: Some(blob("p/report/r1.pdf")),
            detail: NewVersionDetail::AttestationReport {
                data_specification_version: Some(spec_v2.id),
            },
        })
        .await
        .unwrap();

    let a = assets(s, &w, AlgorithmType::Validation).await;
    match &a.alg_v1.detail {
        VersionDetail::Algorithm {
            algorithm_type,
            upload_steps,
            ..
        } => {
            assert_eq!(*algorithm_type, AlgorithmType::Validation);
            assert_eq!(upload_steps.len(), 4);
            assert!(upload_steps
                .iter()
                .all(|s| s.status == UploadStepStatus::Pending));
        }
        d => panic!("{d:?}"),
    }
    s.set_upload_step(
        a.alg_v1.id,
        UploadStepState {
            step: UploadStep::DockerfilePresent,
            status: UploadStepStatus::Passed,
            message: None,
            at: Timestamp::now(),
        },
    )
    .await
    .unwrap();
    s.set_upload_step(
        a.alg_v1.id,
        UploadStepState {
            step: UploadStep::WcekPresent,
            status: UploadStepStatus::Failed,
            message: Some("upload the AO WCEK".into()),
            at: Timestamp::now(),
        },
    )
    .await
    .unwrap();
    s.set_workload_digest(a.alg_v1.id, "sha256:abcd")
        .await
        .unwrap();
    match s.get_version(a.alg_v1.id).await.unwrap().detail {
        VersionDetail::Algorithm {
            upload_steps,
            workload_digest,
            ..
        } => {
            assert_eq!(upload_steps[0].step, UploadStep::DockerfilePresent);
            assert_eq!(upload_steps[0].status, UploadStepStatus::Passed);
            assert_eq!(upload_steps[2].status, UploadStepStatus::Failed);
            assert_eq!(
                upload_steps[2].message.as_deref(),
                Some("upload the AO WCEK")
            );
            assert_eq!(workload_digest.as_deref(), Some("sha256:abcd"));
        }
        d => panic!("{d:?}"),
    }
    assert!(s
        .set_upload_step(
            a.ds_v1.id,
            UploadStepState {
                step: UploadStep::WcekPresent,
                status: UploadStepStatus::Passed,
                message: None,
                at: Timestamp::now()
            }
        )
        .await
        .is_err());

    // Dataset: URL read, links, certification.
    let url = "https://acct.blob.core.windows.net/c?sv=2022-11-02&se=2031-01-01T00:00:00Z&sr=c&sp=rl&sig=x";
    let dv = s
        .add_version(NewVersion {
            artifact_id: a.dataset.id,
            tag: tag("2024-q2"),
            description: "refreshed URL".into(),
            uploaded_by: w.ds.id,
            blob: None,
            detail: NewVersionDetail::Dataset {
                url: url.into(),
                data_specification_version: Some(spec_v2.id),
                attestation_report_version: Some(report_v1.id),
                wcek_fingerprint: Some("ff".repeat(32)),
            },
        })
        .await
        .unwrap();
    match &dv.detail {
        VersionDetail::Dataset {
            location,
            certification,
            data_specification_version,
            attestation_report_version,
            ..
        } => {
            assert_eq!(location.url_kind, UrlKind::AzureSas);
            assert_eq!(
                location.expires_at,
                Timestamp::parse_rfc3339("2031-01-01T00:00:00Z").unwrap()
            );
            assert!(certification.is_none());
            assert_eq!(*data_specification_version, Some(spec_v2.id));
            assert_eq!(*attestation_report_version, Some(report_v1.id));
        }
        d => panic!("{d:?}"),
    }
    let e = s
        .add_version(NewVersion {
            artifact_id: a.dataset.id,
            tag: tag("bad"),
            description: String::new(),
            uploaded_by: w.ds.id,
            blob: None,
            detail: NewVersionDetail::Dataset {
                url: "https://acct.blob.core.windows.net/c?sp=rl".into(),
                data_specification_version: None,
                attestation_report_version: Some(spec_v1.id),
                wcek_fingerprint: None,
            },
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::DatasetUrlInvalid, "{e}");
    let e = s
        .add_version(NewVersion {
            artifact_id: a.dataset.id,
            tag: tag("bad"),
            description: String::new(),
            uploaded_by: w.ds.id,
            blob: None,
            detail: NewVersionDetail::Dataset {
                url: url.into(),
                data_specification_version: None,
                attestation_report_version: Some(spec_v1.id),
                wcek_fingerprint: None,
            },
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { what: "link", .. }), "{e}");
    s.certify_dataset(dv.id, w.ds.id).await.unwrap();
    match s.get_version(dv.id).await.unwrap().detail {
        VersionDetail::Dataset {
            certification: Some(c),
            ..
        } => assert_eq!(c.by, w.ds.id),
        d => panic!("{d:?}"),
    }
    assert_eq!(s.list_versions(a.dataset.id).await.unwrap().len(), 2);
    assert_eq!(s.list_artifacts(w.project.id, None).await.unwrap().len(), 4);
    assert_eq!(
        s.list_artifacts(w.project.id, Some(ArtifactKind::Dataset))
            .await
            .unwrap(),
        vec![s.get_artifact(a.dataset.id).await.unwrap()]
    );

    // Criteria acceptance by the DS only.
    let crit = s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::ValidationCriteria,
            owner_org_id: w.ao_org.id,
            name: name("Report schema"),
            description: String::new(),
            algorithm_type: None,
            created_by: w.ao.id,
        })
        .await
        .unwrap();
    let cv = s
        .add_version(NewVersion {
            artifact_id: crit.id,
            tag: tag("c1"),
            description: String::new(),
            uploaded_by: w.ao.id,
            blob: None,
            detail: NewVersionDetail::ValidationCriteria {
                criteria_json: r#"{"auc":{"type":"float"}}"#.into(),
            },
        })
        .await
        .unwrap();
    assert!(s
        .accept_criteria(cv.id, w.ao_org.id, w.ao.id)
        .await
        .is_err());
    s.accept_criteria(cv.id, w.ds_org.id, w.ds.id)
        .await
        .unwrap();
    s.accept_criteria(cv.id, w.ds_org.id, w.ds.id)
        .await
        .unwrap();
    match s.get_version(cv.id).await.unwrap().detail {
        VersionDetail::ValidationCriteria {
            acceptances,
            criteria_json,
        } => {
            assert_eq!(acceptances.len(), 1);
            assert_eq!(acceptances[0].org_id, w.ds_org.id);
            assert!(criteria_json.contains("auc"));
        }
        d => panic!("{d:?}"),
    }

    // Deactivated projects are read-only.
    s.set_project_state(w.project.id, ProjectState::Deactivated)
        .await
        .unwrap();
    let e = s
        .add_version(NewVersion {
            artifact_id: spec.id,
            tag: tag("v9"),
            description: String::new(),
            uploaded_by: w.ao.id,
            blob: None,
            detail: NewVersionDetail::DataSpecification,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ProjectNotActive);
}

async fn run_workflow(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::Simulated).await;
    let a = assets(s, &w, AlgorithmType::Training).await;
    let now = Timestamp::now();

    let rc = s
        .create_run_config(
            NewRunConfig {
                project_id: w.project.id,
                name: name("Train on 2024"),
                description: "first try".into(),
                algorithm_version_id: a.alg_v1.id,
                dataset_version_id: a.ds_v1.id,
                criteria_version_id: None,
                created_by: w.ao.id,
            },
            now,
        )
        .await
        .unwrap();
    let dup = NewRunConfig {
        project_id: w.project.id,
        name: name("Again"),
        description: String::new(),
        algorithm_version_id: a.alg_v1.id,
        dataset_version_id: a.ds_v1.id,
        criteria_version_id: None,
        created_by: w.ao.id,
    };
    let e = s.create_run_config(dup.clone(), now).await.unwrap_err();
    assert!(matches!(e, StoreError::DuplicateRunConfiguration), "{e}");
    assert_eq!(e.code(), ErrorCode::DuplicateRunConfiguration);
    assert_eq!(
        s.list_run_configs(w.project.id).await.unwrap(),
        vec![rc.clone()]
    );
    // Swapped kinds are refused.
    let mut swapped = dup.clone();
    swapped.algorithm_version_id = a.ds_v1.id;
    swapped.dataset_version_id = a.alg_v1.id;
    assert!(matches!(
        s.create_run_config(swapped, now).await,
        Err(StoreError::Invalid { .. })
    ));

    // An expiring dataset URL: versions can be added, but no configuration on it.
    let soon = s
        .add_version(NewVersion {
            artifact_id: a.dataset.id,
            tag: tag("expiring"),
            description: String::new(),
            uploaded_by: w.ds.id,
            blob: None,
            detail: NewVersionDetail::Dataset {
                url: azure_url(now.plus_secs(23 * 3600)),
                data_specification_version: None,
                attestation_report_version: None,
                wcek_fingerprint: None,
            },
        })
        .await
        .unwrap();
    let mut exp = dup.clone();
    exp.dataset_version_id = soon.id;
    let e = s.create_run_config(exp, now).await.unwrap_err();
    assert!(matches!(e, StoreError::DatasetUrlExpired { .. }), "{e}");
    assert_eq!(e.code(), ErrorCode::DatasetUrlExpired);
    assert_eq!(
        s.list_run_configs(w.project.id).await.unwrap().len(),
        1,
        "nothing written"
    );

    // Requests: compute sizes from the technology; one open request per configuration.
    let params = RuntimeParams::from_pairs([("epochs", "3"), ("learning_rate", "0.01")]).unwrap();
    let bad = s
        .request_run(NewRun {
            run_config_id: rc.id,
            params: params.clone(),
            compute: ComputeSize {
                vcpus: 64,
                ram_gib: 256,
            },
            requested_by: w.ao.id,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), ErrorCode::InvalidComputeSize);
    let req = NewRun {
        run_config_id: rc.id,
        params: params.clone(),
        compute: ComputeSize {
            vcpus: 2,
            ram_gib: 4,
        },
        requested_by: w.ao.id,
    };
    let run1 = s.request_run(req.clone()).await.unwrap();
    assert_eq!(run1.state, RunState::Requested);
    assert_eq!(run1.params, params);
    let e = s.request_run(req.clone()).await.unwrap_err();
    assert!(
        matches!(e, StoreError::RunAlreadyOpen(id) if id == rc.id),
        "{e}"
    );

    // The DS was notified.
    let n = s
        .list_notifications(w.ds.id, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].kind, NotificationKind::RunRequested);
    assert!(!n[0].read);
    s.mark_notification_read(w.ds.id, n[0].id).await.unwrap();
    assert!(
        s.list_notifications(w.ds.id, Timestamp::now())
            .await
            .unwrap()[0]
            .read
    );
    assert!(
        s.mark_notification_read(w.ao.id, n[0].id).await.is_err(),
        "not the AO's"
    );
    assert!(s
        .list_notifications(w.ao.id, Timestamp::now())
        .await
        .unwrap()
        .is_empty());

    // Reject needs a reason; the AO hears about it.
    let reject = |reason: Option<&str>| RunTransition {
        run_id: run1.id,
        to: RunState::Rejected,
        actor: Actor::User(w.ds.id),
        message: reason.map(Into::into),
    };
    assert!(matches!(
        s.transition_run(reject(Some("   ")), Timestamp::now())
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let r = s
        .transition_run(reject(Some("too many epochs")), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(r.state, RunState::Rejected);
    assert_eq!(r.reason.as_deref(), Some("too many epochs"));
    let n = s
        .list_notifications(w.ao.id, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].kind, NotificationKind::RunRejected);
    assert!(n[0].message.contains("too many epochs"));
    let e = s
        .transition_run(reject(Some("again")), Timestamp::now())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidStateTransition);

    // A new request is allowed once the previous one is closed; paused projects refuse.
    s.set_project_state(w.project.id, ProjectState::Paused)
        .await
        .unwrap();
    assert_eq!(
        s.request_run(req.clone()).await.unwrap_err().code(),
        ErrorCode::ProjectNotActive
    );
    s.set_project_state(w.project.id, ProjectState::Active)
        .await
        .unwrap();
    let run2 = s.request_run(req.clone()).await.unwrap();
    let go = |to: RunState, actor: Actor| RunTransition {
        run_id: run2.id,
        to,
        actor,
        message: None,
    };
    s.set_project_state(w.project.id, ProjectState::Paused)
        .await
        .unwrap();
    assert_eq!(
        s.transition_run(
            go(RunState::Initiated, Actor::User(w.ds.id)),
            Timestamp::now()
        )
        .await
        .unwrap_err()
        .code(),
        ErrorCode::ProjectNotActive
    );
    s.set_project_state(w.project.id, ProjectState::Active)
        .await
        .unwrap();
    // Initiation re-checks the dataset URL at that time.
    let e = s
        .transition_run(
            go(RunState::Initiated, Actor::User(w.ds.id)),
            Timestamp::now().plus_secs(30 * 86400),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::DatasetUrlExpired);
    let r = s
        .transition_run(
            go(RunState::Initiated, Actor::User(w.ds.id)),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(r.initiated_by, Some(w.ds.id));
    assert_eq!(s.get_run(run2.id).await.unwrap().state, RunState::Initiated);

    // The DS site's agent claims it; another organization's site gets nothing.
    let other_site = s.create_site(w.ao_org.id, &name("AO lab")).await.unwrap();
    assert!(s.claim_run(other_site.id).await.unwrap().is_none());
    let site = s
        .create_site(w.ds_org.id, &name("Hospital DC"))
        .await
        .unwrap();
    let claimed = s.claim_run(site.id).await.unwrap().unwrap();
    assert_eq!(claimed.id, run2.id);
    assert_eq!(claimed.site_id, Some(site.id));
    assert!(
        s.claim_run(site.id).await.unwrap().is_none(),
        "claimed once"
    );

    let agent = Actor::Site(site.id);
    for st in [
        RunState::RuntimeBuild,
        RunState::WorkloadLaunch,
        RunState::Running,
    ] {
        s.transition_run(go(st, agent.clone()), Timestamp::now())
            .await
            .unwrap();
    }
    assert_eq!(
        s.transition_run(go(RunState::Initiated, agent.clone()), Timestamp::now())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidStateTransition
    );
    let last = s
        .append_run_logs(
            run2.id,
            vec![
                NewLogLine {
                    stream: LogStream::Stage,
                    at: Timestamp::now(),
                    line: "building".into(),
                },
                NewLogLine {
                    stream: LogStream::Algorithm,
                    at: Timestamp::now(),
                    line: "epoch 1 loss 0.3".into(),
                },
                NewLogLine {
                    stream: LogStream::Stage,
                    at: Timestamp::now(),
                    line: "x".repeat(20_000),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(last, 3);
    assert_eq!(
        s.append_run_logs(
            run2.id,
            vec![NewLogLine {
                stream: LogStream::Algorithm,
                at: Timestamp::now(),
                line: "done".into()
            }]
        )
        .await
        .unwrap(),
        4
    );
    let stage = s
        .run_logs(run2.id, &[LogStream::Stage], 0, 100)
        .await
        .unwrap();
    assert_eq!(stage.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(stage[1].line.len(), 16 * 1024, "long lines are cut");
    let all = s
        .run_logs(run2.id, &[LogStream::Stage, LogStream::Algorithm], 1, 2)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert!(s.run_logs(run2.id, &[], 0, 10).await.unwrap().is_empty());

    let out = s
        .add_run_output(NewRunOutput {
            run_id: run2.id,
            kind: OutputKind::TrainedModel,
            name: "model".into(),
            blob: blob("p/runs/model.sealed"),
            passed_criteria: None,
        })
        .await
        .unwrap();
    assert!(s
        .add_run_output(NewRunOutput {
            run_id: run2.id,
            kind: OutputKind::TrainedModel,
            name: "model".into(),
            blob: blob("x"),
            passed_criteria: None
        })
        .await
        .is_err());
    s.add_run_output(NewRunOutput {
        run_id: run2.id,
        kind: OutputKind::FinalReport,
        name: "report".into(),
        blob: blob("p/runs/report.json"),
        passed_criteria: Some(true),
    })
    .await
    .unwrap();
    let outs = s.run_outputs(run2.id).await.unwrap();
    assert_eq!(outs.len(), 2);
    assert!(outs.contains(&out));
    assert!(outs.iter().any(|o| o.passed_criteria == Some(true)));

    s.transition_run(go(RunState::Completed, agent.clone()), Timestamp::now())
        .await
        .unwrap();
    let hist = s.run_history(run2.id).await.unwrap();
    assert_eq!(
        hist.iter().map(|h| h.to).collect::<Vec<_>>(),
        vec![
            RunState::Requested,
            RunState::Initiated,
            RunState::RuntimeBuild,
            RunState::WorkloadLaunch,
            RunState::Running,
            RunState::Completed
        ]
    );
    assert_eq!(hist[0].from, None);
    assert_eq!(hist[1].actor, Actor::User(w.ds.id));
    assert_eq!(hist[5].actor, agent);
    // Completed → both sides notified.
    let ao_n = s
        .list_notifications(w.ao.id, Timestamp::now())
        .await
        .unwrap();
    assert!(ao_n
        .iter()
        .any(|n| n.kind == NotificationKind::RunCompleted));
    let ds_n = s
        .list_notifications(w.ds.id, Timestamp::now())
        .await
        .unwrap();
    assert!(ds_n
        .iter()
        .any(|n| n.kind == NotificationKind::RunCompleted));
    // Notifications vanish after 48 hours.
    assert!(s
        .list_notifications(w.ao.id, Timestamp::now().plus_secs(48 * 3600 + 1))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.purge_notifications(Timestamp::now()).await.unwrap(), 0);
    let purged = s
        .purge_notifications(Timestamp::now().plus_secs(48 * 3600 + 1))
        .await
        .unwrap();
    // DS: two requests and the completion; AO: the rejection and the completion.
    assert_eq!(purged, 5);

    let runs = s.list_runs(w.project.id, Some(rc.id)).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![run2.id, run1.id]
    );
    // A third request now that run2 is done; it can be cancelled.
    let run3 = s.request_run(req.clone()).await.unwrap();
    let c = s
        .transition_run(
            RunTransition {
                run_id: run3.id,
                to: RunState::Cancelled,
                actor: Actor::User(w.ds.id),
                message: Some("not now".into()),
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(c.state, RunState::Cancelled);
    assert!(matches!(
        s.get_run(RunId::new()).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn validation_needs_accepted_criteria(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::AzureCvm).await;
    let a = assets(s, &w, AlgorithmType::Validation).await;
    let cfg = |criteria| NewRunConfig {
        project_id: w.project.id,
        name: name("Validate"),
        description: String::new(),
        algorithm_version_id: a.alg_v1.id,
        dataset_version_id: a.ds_v1.id,
        criteria_version_id: criteria,
        created_by: w.ao.id,
    };
    assert!(matches!(
        s.create_run_config(cfg(None), Timestamp::now()).await,
        Err(StoreError::Invalid { .. })
    ));
    let crit = s
        .create_artifact(NewArtifact {
            project_id: w.project.id,
            kind: ArtifactKind::ValidationCriteria,
            owner_org_id: w.ao_org.id,
            name: name("Criteria"),
            description: String::new(),
            algorithm_type: None,
            created_by: w.ao.id,
        })
        .await
        .unwrap();
    let cv = s
        .add_version(NewVersion {
            artifact_id: crit.id,
            tag: tag("1"),
            description: String::new(),
            uploaded_by: w.ao.id,
            blob: None,
            detail: NewVersionDetail::ValidationCriteria {
                criteria_json: "{}".into(),
            },
        })
        .await
        .unwrap();
    let e = s
        .create_run_config(cfg(Some(cv.id)), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::CriteriaNotAccepted(v) if v == cv.id),
        "{e}"
    );
    s.accept_criteria(cv.id, w.ds_org.id, w.ds.id)
        .await
        .unwrap();
    let rc = s
        .create_run_config(cfg(Some(cv.id)), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(rc.criteria_version_id, Some(cv.id));
    assert!(s
        .request_run(NewRun {
            run_config_id: rc.id,
            params: RuntimeParams::default(),
            compute: ComputeSize {
                vcpus: 96,
                ram_gib: 384
            },
            requested_by: w.ao.id
        })
        .await
        .is_ok());
    let _ = a.algorithm;
}

async fn concurrent_requests_one_wins(db: &TestDb) {
    let s = db.store.clone();
    let w = world(&s, Technology::Simulated).await;
    let a = assets(&s, &w, AlgorithmType::Training).await;
    let rc = s
        .create_run_config(
            NewRunConfig {
                project_id: w.project.id,
                name: name("Race"),
                description: String::new(),
                algorithm_version_id: a.alg_v1.id,
                dataset_version_id: a.ds_v1.id,
                criteria_version_id: None,
                created_by: w.ao.id,
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let s = s.clone();
        let req = NewRun {
            run_config_id: rc.id,
            params: RuntimeParams::default(),
            compute: ComputeSize {
                vcpus: 1,
                ram_gib: 1,
            },
            requested_by: w.ao.id,
        };
        set.spawn(async move { s.request_run(req).await });
    }
    let (mut ok, mut open) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::RunAlreadyOpen(_)) => open += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, open), (1, 7));
    assert_eq!(s.list_runs(w.project.id, None).await.unwrap().len(), 1);
}

async fn chat(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::Simulated).await;
    let m1 = s
        .post_chat(w.project.id, w.ao.id, w.ao_org.id, "hello")
        .await
        .unwrap();
    let m2 = s
        .post_chat(w.project.id, w.ds.id, w.ds_org.id, " hi back ")
        .await
        .unwrap();
    assert_eq!(m2.body, "hi back");
    assert!(s
        .post_chat(w.project.id, w.ds.id, w.ds_org.id, "  ")
        .await
        .is_err());
    assert!(s
        .post_chat(w.project.id, w.ds.id, w.ds_org.id, &"x".repeat(17_000))
        .await
        .is_err());
    assert_eq!(
        s.list_chat(w.project.id, None, 10).await.unwrap(),
        vec![m1.clone(), m2.clone()]
    );
    assert_eq!(
        s.list_chat(w.project.id, Some(m1.id), 10).await.unwrap(),
        vec![m2]
    );
}

async fn audit_chain(db: &TestDb) {
    let s = &*db.store;
    let v = s.verify_audit_chain().await.unwrap();
    assert!(v.is_intact());
    assert_eq!(v.entries_checked, 0);
    for i in 1..=6 {
        let e = s
            .append_audit(NewAuditEntry {
                actor: if i % 2 == 0 {
                    Actor::System
                } else {
                    Actor::User(UserId::new())
                },
                action: format!("test.step{i}"),
                outcome: AuditOutcome::Success,
                project_id: Some(ProjectId::new()),
                object: Some(format!("run:{i}")),
                detail: serde_json::json!({ "i": i, "text": "ünïcode \"quoted\"" }),
            })
            .await
            .unwrap();
        assert_eq!(e.seq, i);
    }
    let all = s.list_audit(0, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].prev_hash, "0".repeat(64));
    assert!(all.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    assert!(s.verify_audit_chain().await.unwrap().is_intact());
    assert_eq!(s.list_audit(4, 100).await.unwrap().len(), 2);

    let pool = db.store.pool();
    // Edit one row directly in the database.
    pool.execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 2")
        .await
        .unwrap();
    let v = s.verify_audit_chain().await.unwrap();
    assert_eq!(v.problems, vec![AuditProblem::Modified { seq: 2 }]);
    assert_eq!(v.problems[0].to_string(), "entry 2 was modified");
    pool.execute("UPDATE audit_log SET outcome = 'success' WHERE seq = 2")
        .await
        .unwrap();
    assert!(s.verify_audit_chain().await.unwrap().is_intact());

    // Delete one row.
    pool.execute("DELETE FROM audit_log WHERE seq = 4")
        .await
        .unwrap();
    let v = s.verify_audit_chain().await.unwrap();
    assert_eq!(
        v.problems,
        vec![AuditProblem::Missing {
            from_seq: 4,
            to_seq: 4
        }]
    );
    assert_eq!(v.problems[0].to_string(), "entry 4 was deleted");

    // Delete the newest row: the head still remembers it.
    pool.execute("DELETE FROM audit_log WHERE seq = 6")
        .await
        .unwrap();
    let v = s.verify_audit_chain().await.unwrap();
    assert_eq!(
        v.problems,
        vec![
            AuditProblem::Missing {
                from_seq: 4,
                to_seq: 4
            },
            AuditProblem::Missing {
                from_seq: 6,
                to_seq: 6
            }
        ]
    );
}

async fn audit_appends_are_serialized(db: &TestDb) {
    let s = db.store.clone();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..4 {
        let s = s.clone();
        set.spawn(async move {
            for i in 0..10 {
                s.append_audit(NewAuditEntry {
                    actor: Actor::System,
                    action: "test.concurrent".into(),
                    outcome: AuditOutcome::Success,
                    project_id: None,
                    object: None,
                    detail: serde_json::json!({ "t": t, "i": i }),
                })
                .await
                .unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let v = s.verify_audit_chain().await.unwrap();
    assert!(v.is_intact(), "{:?}", v.problems);
    assert_eq!((v.entries_checked, v.head_seq), (40, 40));
}

async fn search_10k(db: &TestDb) {
    let s = db.store.clone();
    let w = world(&s, Technology::Simulated).await;
    // A second project the AO's organization is not in.
    let other_ao = s.create_org(&name("Other AO")).await.unwrap();
    let other = s
        .create_project(NewProject {
            id: ProjectId::new(),
            name: name("Retina scans"),
            description: "diabetic retinopathy".into(),
            technology: Technology::Simulated,
            members: vec![
                (other_ao.id, Role::AlgorithmOwner),
                (w.ds_org.id, Role::DataSteward),
            ],
            keys: keys("retina"),
            created_by: w.admin.id,
        })
        .await
        .unwrap();
    let other_user = user(&s, other_ao.id, "olga", false).await;

    const N: usize = 10_000;
    let start = std::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let workers = 8;
    for t in 0..workers {
        let s = s.clone();
        let (p1, p2, o1, o2, u1, u2) = (
            w.project.id,
            other.id,
            w.ao_org.id,
            other_ao.id,
            w.ao.id,
            other_user.id,
        );
        set.spawn(async move {
            for i in (t..N).step_by(workers) {
                let (project, org, by) = if i % 2 == 0 {
                    (p1, o1, u1)
                } else {
                    (p2, o2, u2)
                };
                let special = if i == 4242 {
                    " zebrafish"
                } else if i == 777 {
                    " okapi"
                } else {
                    ""
                };
                s.create_artifact(NewArtifact {
                    project_id: project,
                    kind: ArtifactKind::DataSpecification,
                    owner_org_id: org,
                    name: Name::parse(&format!("Cohort spec {i}")).unwrap(),
                    description: format!(
                        "Inclusion rules batch{} for cardiology{special}",
                        i % 100
                    ),
                    algorithm_type: None,
                    created_by: by,
                })
                .await
                .unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    eprintln!(
        "seeded {N} artifacts in {:?} on {:?}",
        start.elapsed(),
        s.backend()
    );

    let timed = |label: &'static str| {
        let t = std::time::Instant::now();
        move || eprintln!("search {label}: {:?}", t.elapsed())
    };
    let done = timed("unique word (admin)");
    let hits = s.search(Viewer::Admin, "zebrafish", 50).await.unwrap();
    done();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, SearchKind::Artifact);
    assert_eq!(hits[0].title, "Cohort spec 4242");
    assert_eq!(hits[0].project_id, w.project.id);

    // 777 is in the other project: invisible to the first AO, visible to the DS in both.
    assert!(s
        .search(Viewer::Org(w.ao_org.id), "okapi", 50)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.search(Viewer::Org(other_ao.id), "okapi", 50)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.search(Viewer::Org(w.ds_org.id), "okapi", 50)
            .await
            .unwrap()
            .len(),
        1
    );

    // Several words, prefixes, case-insensitive; every word must match.
    let done = timed("two words with prefix (org)");
    let hits = s
        .search(Viewer::Org(w.ao_org.id), "COHORT batch4", 1000)
        .await
        .unwrap();
    done();
    // batch4 matches batch4 and batch40..49: 11 of every 100; even i only → in project 1.
    let expected = (0..N)
        .filter(|i| i % 2 == 0 && (i % 100 == 4 || (40..50).contains(&(i % 100))))
        .count();
    assert_eq!(hits.len(), expected);
    assert!(hits.iter().all(|h| h.project_id == w.project.id));
    let done = timed("common word, limited");
    let hits = s.search(Viewer::Admin, "cardiology", 20).await.unwrap();
    done();
    assert_eq!(hits.len(), 20);
    let exact = s
        .search(Viewer::Admin, "cohort spec 9999", 10)
        .await
        .unwrap();
    assert_eq!(
        exact
            .iter()
            .filter(|h| h.title == "Cohort spec 9999")
            .count(),
        1
    );
    // Projects and versions are indexed too; punctuation cannot break the query syntax.
    assert_eq!(
        s.search(Viewer::Admin, "retinopathy", 10).await.unwrap()[0].kind,
        SearchKind::Project
    );
    assert!(s
        .search(Viewer::Admin, "\" OR * NEAR( ' ; --", 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s.search(Viewer::Admin, "", 10).await.unwrap().is_empty());
    assert!(s
        .search(Viewer::Admin, "nonexistentword", 10)
        .await
        .unwrap()
        .is_empty());
}

async fn versions_are_searchable(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::Simulated).await;
    let a = assets(s, &w, AlgorithmType::Training).await;
    let hits = s
        .search(Viewer::Org(w.ds_org.id), "2024-q1", 10)
        .await
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.kind == SearchKind::Version && h.id == a.ds_v1.id.to_string()),
        "{hits:?}"
    );
    let hits = s
        .search(Viewer::Org(w.ao_org.id), "pneumonia", 10)
        .await
        .unwrap();
    assert!(hits
        .iter()
        .any(|h| h.kind == SearchKind::Artifact && h.id == a.algorithm.id.to_string()));
    assert!(hits.iter().any(|h| h.kind == SearchKind::Project));
    assert!(s
        .search(Viewer::Org(OrgId::new()), "pneumonia", 10)
        .await
        .unwrap()
        .is_empty());
}

async fn reopen_keeps_data(db: &TestDb) {
    // Migrations are idempotent: running them again on the same database is a no-op.
    let s = &*db.store;
    let org = s.create_org(&name("Persisted")).await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    assert_eq!(s.get_org(org.id).await.unwrap(), org);
    let _: Arc<dyn MetadataStore> = db.store.clone();
}

async fn key_release_records(db: &TestDb) {
    let s = &*db.store;
    let w = world(s, Technology::Simulated).await;
    let a = assets(s, &w, AlgorithmType::Training).await;
    let rc = s
        .create_run_config(
            NewRunConfig {
                project_id: w.project.id,
                name: name("Keys"),
                description: String::new(),
                algorithm_version_id: a.alg_v1.id,
                dataset_version_id: a.ds_v1.id,
                criteria_version_id: None,
                created_by: w.ao.id,
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    let run = s
        .request_run(NewRun {
            run_config_id: rc.id,
            params: RuntimeParams::default(),
            compute: ComputeSize {
                vcpus: 1,
                ram_gib: 2,
            },
            requested_by: w.ao.id,
        })
        .await
        .unwrap();
    let nonce = "cd".repeat(32);
    let later = Timestamp::now().plus_secs(60);
    // Not before workload_launch.
    assert!(matches!(
        s.issue_release_nonce(run.id, &nonce, later).await,
        Err(StoreError::Invalid { .. })
    ));
    let release = |tech| NewKeyRelease {
        run_id: run.id,
        technology: tech,
        evidence_sha256: "ef".repeat(32),
        evidence_blob_key: Some("runs/x/evidence.bin".into()),
        measurement: "00".repeat(48),
        tcb_status: "simulated".into(),
        workload_digest: "sha256:abcd".into(),
        roles: vec![Role::AlgorithmOwner, Role::DataSteward],
        wcek_fingerprints: vec!["11".repeat(32), "22".repeat(32)],
    };
    assert!(matches!(
        s.record_key_release(release(Technology::Simulated)).await,
        Err(StoreError::Invalid { .. })
    ));
    for (to, actor) in [
        (RunState::Initiated, Actor::User(w.ds.id)),
        (RunState::RuntimeBuild, Actor::System),
        (RunState::WorkloadLaunch, Actor::System),
    ] {
        s.transition_run(
            RunTransition {
                run_id: run.id,
                to,
                actor,
                message: None,
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    }
    s.issue_release_nonce(run.id, &nonce, later).await.unwrap();
    assert!(
        s.issue_release_nonce(run.id, &nonce, later).await.is_err(),
        "nonces are unique"
    );
    assert!(
        !s.consume_release_nonce(RunId::new(), &nonce, Timestamp::now())
            .await
            .unwrap(),
        "other run"
    );
    assert!(
        !s.consume_release_nonce(run.id, &nonce, later)
            .await
            .unwrap(),
        "expired"
    );
    assert!(s
        .consume_release_nonce(run.id, &nonce, Timestamp::now())
        .await
        .unwrap());
    assert!(
        !s.consume_release_nonce(run.id, &nonce, Timestamp::now())
            .await
            .unwrap(),
        "single use"
    );

    assert!(matches!(
        s.record_key_release(release(Technology::SevSnp)).await,
        Err(StoreError::Invalid { .. })
    ));
    let k = s
        .record_key_release(release(Technology::Simulated))
        .await
        .unwrap();
    assert_eq!(k.seq, 1);
    assert_eq!(s.key_releases(run.id).await.unwrap(), vec![k]);
}

both_backends!(
    accounts,
    projects,
    wceks,
    artifacts,
    run_workflow,
    validation_needs_accepted_criteria,
    concurrent_requests_one_wins,
    chat,
    audit_chain,
    audit_appends_are_serialized,
    search_10k,
    versions_are_searchable,
    reopen_keeps_data,
    key_release_records,
);
