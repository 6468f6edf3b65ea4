//! The key broker's records: site attester keys and project attestation policies, on SQLite and
//! on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use common::TestDb;
use sealroom_store::*;
use sealroom_types::*;
use serde_json::json;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

struct World {
    admin: User,
    ds: User,
    site: Site,
    project: Project,
}

async fn world(s: &SqlStore) -> World {
    let platform = s.create_org(&name("Platform")).await.unwrap();
    let ao_org = s.create_org(&name("Model Co")).await.unwrap();
    let ds_org = s.create_org(&name("General Hospital")).await.unwrap();
    let mk = |org: OrgId, u: &str, admin: bool| NewUser {
        org_id: org,
        username: u.into(),
        display_name: u.into(),
        is_admin: admin,
        password_hash: HASH.into(),
    };
    let admin = s.create_user(mk(platform.id, "admin", true)).await.unwrap();
    let ds = s.create_user(mk(ds_org.id, "dave", false)).await.unwrap();
    let site = s.create_site(ds_org.id, &name("Ward 7")).await.unwrap();
    let project = s
        .create_project(NewProject {
            id: ProjectId::new(),
            name: name("Chest X-ray"),
            description: String::new(),
            technology: Technology::SevSnp,
            members: vec![
                (ao_org.id, Role::AlgorithmOwner),
                (ds_org.id, Role::DataSteward),
            ],
            keys: Role::ALL
                .iter()
                .map(|r| NewProjectKey {
                    role: *r,
                    public_der: vec![1, 2, 3],
                    file_name: format!("x-{}.der", r.short()),
                    encrypted_private: vec![0xEE; 16],
                    provider: "file".into(),
                    key_ref: "k".into(),
                })
                .collect(),
            created_by: admin.id,
        })
        .await
        .unwrap();
    World {
        admin,
        ds,
        site,
        project,
    }
}

async fn site_keys(db: &TestDb) {
    let s = &*db.store;
    let w = world(s).await;
    assert_eq!(s.site_attestation_key(w.site.id).await.unwrap(), None);

    // First registration, then the same key again: unchanged.
    let k1 = [7u8; 32];
    let r = s
        .register_site_attestation_key(w.site.id, &k1)
        .await
        .unwrap();
    assert!(matches!(r, SiteKeyRegistration::Registered(_)));
    assert_eq!(r.key().public_key, k1);
    let again = s
        .register_site_attestation_key(w.site.id, &k1)
        .await
        .unwrap();
    assert!(matches!(again, SiteKeyRegistration::Unchanged(_)));
    assert_eq!(again.key().registered_at, r.key().registered_at);

    // Another key is refused while one is registered; the first stays.
    let k2 = [9u8; 32];
    let err = s
        .register_site_attestation_key(w.site.id, &k2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        s.site_attestation_key(w.site.id)
            .await
            .unwrap()
            .unwrap()
            .public_key,
        k1
    );

    // After deletion the site may register again.
    let gone = s.delete_site_attestation_key(w.site.id).await.unwrap();
    assert_eq!(gone.public_key, k1);
    assert_eq!(s.site_attestation_key(w.site.id).await.unwrap(), None);
    let err = s.delete_site_attestation_key(w.site.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    s.register_site_attestation_key(w.site.id, &k2)
        .await
        .unwrap();
    assert_eq!(
        s.site_attestation_key(w.site.id)
            .await
            .unwrap()
            .unwrap()
            .public_key,
        k2
    );

    // Unknown site.
    let err = s
        .register_site_attestation_key(SiteId::new(), &k1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

async fn policies(db: &TestDb) {
    let s = &*db.store;
    let w = world(s).await;
    assert_eq!(s.attestation_policy(w.project.id).await.unwrap(), None);

    let p1 = json!({ "reference_measurements": ["ab".repeat(48)], "allow_debug": false });
    let set = s
        .set_attestation_policy(w.project.id, &p1, w.ds.id)
        .await
        .unwrap();
    assert_eq!(set.policy, p1);
    let got = s.attestation_policy(w.project.id).await.unwrap().unwrap();
    assert_eq!(got, set);
    assert_eq!(got.updated_by, w.ds.id);

    // Replaced, not duplicated.
    let p2 = json!({ "reference_measurements": [] });
    s.set_attestation_policy(w.project.id, &p2, w.admin.id)
        .await
        .unwrap();
    let got = s.attestation_policy(w.project.id).await.unwrap().unwrap();
    assert_eq!(got.policy, p2);
    assert_eq!(got.updated_by, w.admin.id);

    // Unknown project; oversize policy; deactivated project (read-only): refused, unchanged.
    let err = s
        .set_attestation_policy(ProjectId::new(), &p1, w.ds.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let big = json!({ "x": "a".repeat(MAX_POLICY_LEN) });
    let err = s
        .set_attestation_policy(w.project.id, &big, w.ds.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    s.set_project_state(w.project.id, ProjectState::Deactivated)
        .await
        .unwrap();
    let err = s
        .set_attestation_policy(w.project.id, &p1, w.ds.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ProjectNotActive { .. }),
        "{err:?}"
    );
    assert_eq!(
        s.attestation_policy(w.project.id)
            .await
            .unwrap()
            .unwrap()
            .policy,
        p2
    );
}

both_backends!(site_keys, policies);
