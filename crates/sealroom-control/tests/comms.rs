//! Notifications, project chat and search through the REST API, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{world, Body, TestServer, World, PASSWORD};
use sealroom_store::{ArtifactStore, CommsStore, NewArtifact, NewVersion, NewVersionDetail};
use sealroom_store::{NewRun, NewRunConfig, ProjectStore, RunStore, RunTransition};
use sealroom_types::{
    Actor, AlgorithmType, ArtifactKind, BlobRef, ComputeSize, Name, ProjectState, RunState,
    RuntimeParams, Timestamp, VersionTag,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

/// A user of `org`, signed in; returns (user ID, token).
fn extra_user(s: &TestServer, org: &str, username: &str) -> (String, String) {
    let u = s
        .post(
            "/api/v1/users",
            &s.admin_token,
            json!({ "org_id": org, "username": username, "password": PASSWORD }),
        )
        .expect(201);
    (
        u.json["id"].as_str().unwrap().to_string(),
        s.login(username, PASSWORD),
    )
}

/// A run request in `project` through the store (the runs routes are another module): the
/// store notifies the DS organization's users. Returns the run's ID.
fn request_run(s: &TestServer, w: &World, project: &str) -> sealroom_types::RunId {
    let store = &*s.store;
    let project = id(project);
    let (ao, ds) = (id(&w.ao_user), id(&w.ds_user));
    s.block_on(async {
        let alg = store
            .create_artifact(NewArtifact {
                project_id: project,
                kind: ArtifactKind::Algorithm,
                owner_org_id: id(&w.ao_org),
                name: Name::parse("Pneumonia net").unwrap(),
                description: "ResNet-50".into(),
                algorithm_type: Some(AlgorithmType::Training),
                created_by: ao,
            })
            .await
            .unwrap();
        let alg_v = store
            .add_version(NewVersion {
                artifact_id: alg.id,
                tag: VersionTag::parse("v1.0").unwrap(),
                description: "first".into(),
                uploaded_by: ao,
                blob: Some(BlobRef {
                    key: "p/alg/v1".into(),
                    size: 3,
                    sha256: "ab".repeat(32),
                    file_name: "package.tar".into(),
                }),
                detail: NewVersionDetail::Algorithm {
                    wcek_fingerprint: None,
                },
            })
            .await
            .unwrap();
        let data = store
            .create_artifact(NewArtifact {
                project_id: project,
                kind: ArtifactKind::Dataset,
                owner_org_id: id(&w.ds_org),
                name: Name::parse("Radiographs 2024").unwrap(),
                description: "10k images".into(),
                algorithm_type: None,
                created_by: ds,
            })
            .await
            .unwrap();
        let expires = Timestamp::now().plus_secs(30 * 86400);
        let data_v = store
            .add_version(NewVersion {
                artifact_id: data.id,
                tag: VersionTag::parse("2024-q1").unwrap(),
                description: String::new(),
                uploaded_by: ds,
                blob: None,
                detail: NewVersionDetail::Dataset {
                    url: format!("https://ds.blob.core.windows.net/data?sp=rl&st=2026-01-01T00:00:00Z&se={expires}&spr=https&sv=2022-11-02&sr=c&sig=abc%2B"),
                    data_specification_version: None,
                    attestation_report_version: None,
                    wcek_fingerprint: None,
                },
            })
            .await
            .unwrap();
        let rc = store
            .create_run_config(
                NewRunConfig {
                    project_id: project,
                    name: Name::parse("Validate on 2024").unwrap(),
                    description: String::new(),
                    algorithm_version_id: alg_v.id,
                    dataset_version_id: data_v.id,
                    criteria_version_id: None,
                    created_by: ao,
                },
                Timestamp::now(),
            )
            .await
            .unwrap();
        store
            .request_run(NewRun {
                run_config_id: rc.id,
                params: RuntimeParams::from_pairs([("epochs", "3")]).unwrap(),
                compute: ComputeSize {
                    vcpus: 2,
                    ram_gib: 4,
                },
                requested_by: ao,
            })
            .await
            .unwrap()
            .id
    })
}

fn items(r: &common::Resp) -> &Vec<Value> {
    r.json["items"].as_array().expect("an items array")
}

/// Audit entries with this action and outcome (read directly from the store).
fn audited(s: &TestServer, action: &str, outcome: &str) -> usize {
    let all = s
        .block_on(sealroom_store::AuditStore::list_audit(&*s.store, 0, 1000))
        .unwrap();
    all.iter()
        .filter(|e| e.action == action && e.outcome.as_str() == outcome)
        .count()
}

fn chat_count(s: &TestServer, project: &str) -> usize {
    s.block_on(s.store.list_chat(id(project), None, 1000))
        .unwrap()
        .len()
}

// ---------------------------------------------------------------------------------------------
// The main flow, on both databases

/// Notifications, chat and search as the parties of one project use them.
fn main_flow(s: &TestServer) {
    let w = world(s, "m");
    let p = s.project(&w, "Chest X-ray", "simulated");

    // A run request notifies the DS; the AO has nothing yet.
    let run = request_run(s, &w, &p);
    let n = s.get("/api/v1/notifications", &w.ds_token).expect(200);
    assert_eq!(items(&n).len(), 1);
    assert_eq!(n.json["unread"], 1);
    let note = &items(&n)[0];
    assert_eq!(note["kind"], "run_requested");
    assert_eq!(note["project_id"], p.as_str());
    assert_eq!(note["read"], false);
    let nid = note["id"].as_str().unwrap().to_string();
    assert!(items(&s.get("/api/v1/notifications", &w.ao_token).expect(200)).is_empty());

    // The DS reads it; reading again is fine.
    for _ in 0..2 {
        s.post(
            &format!("/api/v1/notifications/{nid}/read"),
            &w.ds_token,
            json!({}),
        )
        .expect(204);
    }
    let n = s.get("/api/v1/notifications", &w.ds_token).expect(200);
    assert_eq!(items(&n)[0]["read"], true);
    assert_eq!(n.json["unread"], 0);

    // A rejection notifies the AO, newest first.
    s.block_on(s.store.transition_run(
        RunTransition {
            run_id: run,
            to: RunState::Rejected,
            actor: Actor::User(id(&w.ds_user)),
            message: Some("too many epochs".into()),
        },
        Timestamp::now(),
    ))
    .unwrap();
    let n = s.get("/api/v1/notifications", &w.ao_token).expect(200);
    assert_eq!(items(&n).len(), 1);
    assert_eq!(items(&n)[0]["kind"], "run_rejected");
    assert!(items(&n)[0]["message"]
        .as_str()
        .unwrap()
        .contains("too many epochs"));

    // Chat between the two sides.
    let m1 = s
        .post(
            &format!("/api/v1/projects/{p}/chat"),
            &w.ao_token,
            json!({ "body": "  Fewer epochs next time?  " }),
        )
        .expect(201);
    assert_eq!(m1.json["body"], "Fewer epochs next time?");
    assert_eq!(m1.json["author"], w.ao_user.as_str());
    assert_eq!(m1.json["author_org_id"], w.ao_org.as_str());
    s.post(
        &format!("/api/v1/projects/{p}/chat"),
        &w.ds_token,
        json!({ "body": "Yes: 2 at most.\nThanks." }),
    )
    .expect(201);
    let c = s
        .get(&format!("/api/v1/projects/{p}/chat"), &w.ds_token)
        .expect(200);
    let bodies: Vec<&str> = items(&c)
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["Fewer epochs next time?", "Yes: 2 at most.\nThanks."]
    );
    assert_eq!(items(&c)[0]["author_name"], "alice-m");
    assert_eq!(items(&c)[1]["author_name"], "dave-m");
    assert!(c.json.get("next_after").is_none());

    // Search finds the project, its artifacts and configuration by word prefixes.
    let r = s.get("/api/v1/search?q=pneumo", &w.ao_token).expect(200);
    let mut hits: Vec<(String, String)> = items(&r)
        .iter()
        .map(|h| {
            assert_eq!(h["project_id"], p.as_str());
            (
                h["kind"].as_str().unwrap().to_string(),
                h["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    hits.sort();
    assert_eq!(
        hits,
        [
            ("artifact".to_string(), "Pneumonia net".to_string()),
            ("version".to_string(), "Pneumonia net v1.0".to_string())
        ]
    );
    let r = s.get("/api/v1/search?q=CHEST%20x", &w.ds_token).expect(200);
    assert_eq!(items(&r).len(), 1);
    assert_eq!(items(&r)[0]["kind"], "project");
    assert_eq!(items(&r)[0]["id"], p.as_str());
    let r = s
        .get("/api/v1/search?q=validate%202024", &s.admin_token)
        .expect(200);
    assert_eq!(items(&r)[0]["kind"], "run_config");

    // Every successful post and read was audited.
    assert_eq!(audited(s, "chat.post", "success"), 2);
    assert_eq!(audited(s, "notification.read", "success"), 1);
}

#[test]
fn main_flow_sqlite() {
    main_flow(&TestServer::sqlite());
}

#[test]
fn main_flow_postgres() {
    if let Some(s) = TestServer::postgres() {
        main_flow(&s);
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications: who may see and mark what

#[test]
fn notifications_are_the_callers_own() {
    let s = TestServer::sqlite();
    let w = world(&s, "n");
    let p = s.project(&w, "Notified", "simulated");
    // A second user of the DS organization is notified too, separately.
    let (_, ds2_token) = extra_user(&s, &w.ds_org, "diane-n");
    request_run(&s, &w, &p);
    let mine = s.get("/api/v1/notifications", &w.ds_token).expect(200);
    let nid = items(&mine)[0]["id"].as_str().unwrap().to_string();
    let theirs = s.get("/api/v1/notifications", &ds2_token).expect(200);
    assert_eq!(items(&theirs).len(), 1);
    assert_ne!(items(&theirs)[0]["id"], nid.as_str(), "one per user");

    // Nobody else may mark the DS's notification: 404 (audited), and it stays unread.
    let read = format!("/api/v1/notifications/{nid}/read");
    for token in [&ds2_token, &w.ao_token, &s.admin_token] {
        let r = s.post(&read, token, json!({}));
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(r.code(), "not_found");
    }
    assert_eq!(audited(&s, "notification.read", "denied"), 3);
    let mine = s.get("/api/v1/notifications", &w.ds_token).expect(200);
    assert_eq!(items(&mine)[0]["read"], false);
    // The admin has no notifications of its own.
    assert!(items(&s.get("/api/v1/notifications", &s.admin_token).expect(200)).is_empty());

    // Anonymous 401, site token 403, on both routes.
    for (method, path) in [("GET", "/api/v1/notifications"), ("POST", read.as_str())] {
        let r = s.call(method, path, None, Body::None);
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(r.code(), "unauthenticated");
        let r = s.call(method, path, Some(&w.site_token), Body::None);
        assert_eq!(r.status, 403, "{method} {path}");
        assert_eq!(r.code(), "forbidden");
    }

    // A malformed ID is 400; an unknown one 404.
    let r = s.post(
        "/api/v1/notifications/not-an-id/read",
        &w.ds_token,
        json!({}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_id");
    let unknown = sealroom_types::NotificationId::new();
    let r = s.post(
        &format!("/api/v1/notifications/{unknown}/read"),
        &w.ds_token,
        json!({}),
    );
    assert_eq!(r.status, 404);

    // Older than 48 hours: gone from the list, and can no longer be marked.
    s.block_on(async {
        sqlx::query("UPDATE notifications SET created_at = $1 WHERE id = $2")
            .bind(Timestamp::now().plus_secs(-49 * 3600).as_millis())
            .bind(nid.clone())
            .execute(s.store.pool())
            .await
            .unwrap();
    });
    assert!(items(&s.get("/api/v1/notifications", &w.ds_token).expect(200)).is_empty());
    assert_eq!(s.post(&read, &w.ds_token, json!({})).status, 404);
    assert_eq!(audited(&s, "notification.read", "success"), 0);
}

// ---------------------------------------------------------------------------------------------
// Chat

#[test]
fn chat_is_for_members_only() {
    let s = TestServer::sqlite();
    let w = world(&s, "c");
    let other = world(&s, "x");
    let p = s.project(&w, "Chatty", "simulated");
    s.project(&other, "Elsewhere", "simulated");
    let path = format!("/api/v1/projects/{p}/chat");
    s.post(&path, &w.ao_token, json!({ "body": "hello" }))
        .expect(201);

    // Members of another project: 404, as if the project did not exist (audited).
    for token in [&other.ao_token, &other.ds_token] {
        let r = s.get(&path, token);
        assert_eq!(r.status, 404);
        assert_eq!(r.code(), "not_found");
        let r = s.post(&path, token, json!({ "body": "let me in" }));
        assert_eq!(r.status, 404);
    }
    assert_eq!(audited(&s, "chat.list", "denied"), 2);
    assert_eq!(audited(&s, "chat.post", "denied"), 2);
    // Admins see project metadata but are not members: 403.
    let r = s.get(&path, &s.admin_token);
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "forbidden");
    let r = s.post(&path, &s.admin_token, json!({ "body": "admin here" }));
    assert_eq!(r.status, 403);
    // Anonymous 401; site token 403.
    assert_eq!(s.call("GET", &path, None, Body::None).status, 401);
    assert_eq!(
        s.call(
            "POST",
            &path,
            None,
            Body::Json(json!({ "body": "anonymous" }))
        )
        .status,
        401
    );
    let r = s.post(&path, &w.site_token, json!({ "body": "agent" }));
    assert_eq!(r.status, 403);
    // An unknown project is 404; a malformed ID 400.
    let r = s.get(
        &format!("/api/v1/projects/{}/chat", sealroom_types::ProjectId::new()),
        &w.ao_token,
    );
    assert_eq!(r.status, 404);
    let r = s.get("/api/v1/projects/nope/chat", &w.ao_token);
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_id");
    assert_eq!(chat_count(&s, &p), 1, "no refused message was stored");
}

#[test]
fn chat_bodies_and_pages() {
    let s = TestServer::sqlite();
    let w = world(&s, "b");
    let p = s.project(&w, "Paged", "simulated");
    let path = format!("/api/v1/projects/{p}/chat");

    // Bad bodies: 4xx with their code, nothing stored.
    let long = "x".repeat(4001);
    for (body, code) in [
        (json!({ "body": "" }), "invalid_request"),
        (json!({ "body": " \n\t " }), "invalid_request"),
        (json!({ "body": long }), "invalid_request"),
        (json!({ "body": "bell\u{7}" }), "invalid_request"),
        (json!({ "body": "nul\u{0}" }), "invalid_request"),
        (json!({ "body": "hi", "pinned": true }), "malformed_json"),
        (json!({ "text": "hi" }), "malformed_json"),
        (json!({ "body": 7 }), "malformed_json"),
    ] {
        let r = s.post(&path, &w.ao_token, body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.code(), code, "{body}");
    }
    let r = s.call(
        "POST",
        &path,
        Some(&w.ao_token),
        Body::Raw("text/plain", b"{\"body\":\"hi\"}".to_vec()),
    );
    assert_eq!(r.status, 415);
    assert_eq!(r.code(), "unsupported_media_type");
    assert_eq!(chat_count(&s, &p), 0);

    // 4000 characters is the limit, counted as characters (4 bytes each here).
    let wide = "\u{1F600}".repeat(4000);
    let r = s
        .post(&path, &w.ds_token, json!({ "body": wide }))
        .expect(201);
    assert_eq!(r.json["body"].as_str().unwrap().chars().count(), 4000);
    let r = s
        .post(&path, &w.ds_token, json!({ "body": "x".repeat(4000) }))
        .expect(201);
    assert_eq!(r.json["body"].as_str().unwrap().len(), 4000);

    // Pages: after/limit, oldest first.
    for i in 0..5 {
        s.post(
            &path,
            &w.ao_token,
            json!({ "body": format!("message {i}") }),
        )
        .expect(201);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{path}?limit=3&after={a}"),
            None => format!("{path}?limit=3"),
        };
        let page = s.get(&url, &w.ao_token).expect(200);
        seen.extend(
            items(&page)
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_string()),
        );
        match page.json["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(
        &seen[2..],
        [
            "message 0",
            "message 1",
            "message 2",
            "message 3",
            "message 4"
        ]
    );
    // Bad page parameters.
    for q in ["limit=0", "limit=501", "limit=x", "after=nope"] {
        let r = s.get(&format!("{path}?{q}"), &w.ao_token);
        assert_eq!(r.status, 400, "{q}");
    }
    assert_eq!(
        s.get(&format!("{path}?after=nope"), &w.ao_token).code(),
        "invalid_id"
    );

    // A paused project still chats; a deactivated one is read-only: 409, nothing stored.
    s.block_on(s.store.set_project_state(id(&p), ProjectState::Paused))
        .unwrap();
    s.post(
        &path,
        &w.ao_token,
        json!({ "body": "paused, still talking" }),
    )
    .expect(201);
    s.block_on(s.store.set_project_state(id(&p), ProjectState::Deactivated))
        .unwrap();
    let before = chat_count(&s, &p);
    let r = s.post(&path, &w.ds_token, json!({ "body": "anyone?" }));
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "project_not_active");
    assert_eq!(chat_count(&s, &p), before);
    let all = s.get(&format!("{path}?limit=500"), &w.ds_token).expect(200);
    assert_eq!(items(&all).len(), before, "still readable");
}

// ---------------------------------------------------------------------------------------------
// Search

#[test]
fn search_sees_only_the_callers_projects() {
    let s = TestServer::sqlite();
    let a = world(&s, "sa");
    let b = world(&s, "sb");
    let pa = s.project(&a, "Chest X-ray", "simulated");
    let pb = s.project(&b, "Retina zebrafish study", "simulated");

    // B's project by its name: B's users find it, the admin finds it, A's users never do.
    for token in [&b.ao_token, &b.ds_token, &s.admin_token] {
        let r = s.get("/api/v1/search?q=zebrafish", token).expect(200);
        assert_eq!(items(&r).len(), 1);
        assert_eq!(items(&r)[0]["id"], pb.as_str());
    }
    for q in [
        "zebrafish",
        "retina",
        "Retina%20zebrafish%20study",
        "retina%20zebrafish%20study%20made%20by%20the%20test%20harness",
        "zebra",
        "study",
    ] {
        for token in [&a.ao_token, &a.ds_token] {
            let r = s.get(&format!("/api/v1/search?q={q}"), token).expect(200);
            assert!(
                items(&r).iter().all(|h| h["project_id"] != pb.as_str()),
                "{q}: {}",
                r.text()
            );
            assert!(!r.text().contains("zebrafish"), "{q}");
        }
    }
    // A's own project, by a word of its description.
    let r = s.get("/api/v1/search?q=harness", &a.ao_token).expect(200);
    let ids: Vec<&str> = items(&r)
        .iter()
        .map(|h| h["project_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [pa.as_str()]);
    // Admin sees both.
    let r = s
        .get("/api/v1/search?q=harness", &s.admin_token)
        .expect(200);
    assert_eq!(items(&r).len(), 2);

    // Limits.
    let store = &*s.store;
    s.block_on(async {
        for i in 0..120 {
            store
                .create_artifact(NewArtifact {
                    project_id: id(&pa),
                    kind: ArtifactKind::DataSpecification,
                    owner_org_id: id(&a.ao_org),
                    name: Name::parse(&format!("Cohort spec {i}")).unwrap(),
                    description: "inclusion rules".into(),
                    algorithm_type: None,
                    created_by: id(&a.ao_user),
                })
                .await
                .unwrap();
        }
    });
    let r = s.get("/api/v1/search?q=cohort", &a.ds_token).expect(200);
    assert_eq!(items(&r).len(), 20, "default limit");
    let r = s
        .get("/api/v1/search?q=cohort&limit=100", &a.ds_token)
        .expect(200);
    assert_eq!(items(&r).len(), 100);
    assert!(items(&s.get("/api/v1/search?q=cohort", &b.ds_token).expect(200)).is_empty());
    // Punctuation only: no words, no hits (and no query syntax reaches the engine).
    let r = s
        .get("/api/v1/search?q=%22*%3A%26", &a.ds_token)
        .expect(200);
    assert!(items(&r).is_empty());

    // Bad input: 400.
    let long = "a".repeat(201);
    for q in [
        "".to_string(),
        "q=".to_string(),
        "q=%20%20".to_string(),
        format!("q={long}"),
        "q=cohort&limit=0".to_string(),
        "q=cohort&limit=101".to_string(),
        "q=cohort&limit=many".to_string(),
    ] {
        let r = s.get(&format!("/api/v1/search?{q}"), &a.ao_token);
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.code(), "invalid_request", "{q}");
    }
    s.get(
        &format!("/api/v1/search?q={}", "a".repeat(200)),
        &a.ao_token,
    )
    .expect(200);
    // Anonymous 401; site token 403.
    let r = s.call("GET", "/api/v1/search?q=zebrafish", None, Body::None);
    assert_eq!(r.status, 401);
    let r = s.get("/api/v1/search?q=zebrafish", &b.site_token);
    assert_eq!(r.status, 403);
    assert_eq!(audited(&s, "search", "denied"), 2);
}
