//! Projects, members, settings and keys through the REST API: creation and its validation, the
//! list and the page, state and members (admin), settings (DS), the KEK download and the WCEK
//! upload with real RSA-4096 keys (also wrapped by the `openssl` command line).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{world, Body, Resp, TestServer, World};
use sealroom_envelope::kek::KekPublic;
use sealroom_envelope::Cek;
use sealroom_store::{AuditStore, ProjectStore};
use sealroom_types::{AuditEntry, AuditOutcome, Role};
use serde_json::{json, Value};

fn put(s: &TestServer, path: &str, token: &str, body: Value) -> Resp {
    s.call("PUT", path, Some(token), Body::Json(body))
}

fn upload(s: &TestServer, project: &str, role: &str, token: &str, bytes: Vec<u8>) -> Resp {
    s.call(
        "POST",
        &format!("/api/v1/projects/{project}/keys/{role}/wcek"),
        Some(token),
        Body::Raw("application/octet-stream", bytes),
    )
}

fn audit(s: &TestServer) -> Vec<AuditEntry> {
    s.block_on(s.store.list_audit(0, 10_000)).unwrap()
}

fn audit_count(s: &TestServer, action: &str, outcome: AuditOutcome) -> usize {
    audit(s)
        .iter()
        .filter(|e| e.action == action && e.outcome == outcome)
        .count()
}

/// Every project the admin sees (IDs).
fn all_projects(s: &TestServer) -> Vec<String> {
    let r = s
        .get("/api/v1/projects?limit=500", &s.admin_token)
        .expect(200);
    r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn new_project(w: &World, name: &str) -> Value {
    json!({
        "name": name,
        "description": "Chest X-ray validation",
        "technology": "simulated",
        "members": [
            { "org_id": w.ao_org, "role": "algorithm_owner" },
            { "org_id": w.ds_org, "role": "data_steward" },
        ],
    })
}

fn wceks(s: &TestServer, project: &str, role: Role) -> usize {
    s.block_on(s.store.list_wceks(project.parse().unwrap(), role))
        .unwrap()
        .len()
}

#[test]
fn create_list_and_read_projects() {
    let s = TestServer::sqlite();
    let w = world(&s, "a");
    let other = world(&s, "b");
    let other_project = s.project(&other, "Other project", "tdx");

    // The admin creates a project: 201 with its page.
    let created = s
        .post(
            "/api/v1/projects",
            &s.admin_token,
            new_project(&w, "Chest X-ray"),
        )
        .expect(201);
    let page = &created.json;
    let id = page["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(page["project"]["name"], "Chest X-ray");
    assert_eq!(page["project"]["state"], "active");
    assert_eq!(page["project"]["technology"], "simulated");
    assert_eq!(page["project"]["algorithm_logs_to_ao"], false);
    assert_eq!(page["my_role"], Value::Null);
    let members = page["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let ao = members
        .iter()
        .find(|m| m["role"] == "algorithm_owner")
        .unwrap();
    assert_eq!(ao["org_id"], w.ao_org.as_str());
    assert_eq!(ao["org_name"], "Model Co a");
    let ds = members
        .iter()
        .find(|m| m["role"] == "data_steward")
        .unwrap();
    assert_eq!(ds["org_name"], "General Hospital a");
    let keys = page["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        let suffix = if k["role"] == "algorithm_owner" {
            "-ao.der"
        } else {
            "-ds.der"
        };
        let file = k["file_name"].as_str().unwrap();
        assert!(
            file.starts_with("chest-x-ray-") && file.ends_with(suffix),
            "{file}"
        );
        assert_eq!(k["fingerprint"].as_str().unwrap().len(), 64);
        assert_eq!(k["provider"], "file");
    }
    assert_eq!(page["latest_wceks"]["algorithm_owner"], Value::Null);
    assert_eq!(page["latest_wceks"]["data_steward"], Value::Null);
    assert_eq!(audit_count(&s, "project.create", AuditOutcome::Success), 1);
    let entry = audit(&s)
        .into_iter()
        .find(|e| e.action == "project.create")
        .unwrap();
    assert_eq!(entry.project_id.unwrap().to_string(), id);
    assert!(entry.detail.contains("Chest X-ray"), "{}", entry.detail);

    // Bad input: its 4xx, and no project is made.
    let before = all_projects(&s);
    let bad = |body: Value, status: u16, code: &str| {
        let r = s.post("/api/v1/projects", &s.admin_token, body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.code(), code, "{body}");
        r
    };
    let mut b = new_project(&w, "Bad <name>");
    bad(b.clone(), 400, "invalid_name");
    b["name"] = json!("   ");
    bad(b, 400, "invalid_name");
    let mut b = new_project(&w, "Long description");
    b["description"] = json!("x".repeat(5000));
    bad(b, 400, "invalid_name");
    let mut b = new_project(&w, "Bad technology");
    b["technology"] = json!("quantum");
    let r = bad(b, 400, "invalid_request");
    let msg = r.json["message"].as_str().unwrap();
    for t in ["simulated", "sev-snp", "tdx", "azure-cvm"] {
        assert!(msg.contains(t), "{msg}");
    }
    let mut b = new_project(&w, "No AO");
    b["members"] = json!([{ "org_id": w.ds_org, "role": "data_steward" }]);
    bad(b, 400, "invalid_request");
    let mut b = new_project(&w, "No DS");
    b["members"] = json!([{ "org_id": w.ao_org, "role": "ao" }]);
    bad(b, 400, "invalid_request");
    let mut b = new_project(&w, "Two AOs");
    b["members"] = json!([
        { "org_id": w.ao_org, "role": "ao" },
        { "org_id": other.ao_org, "role": "ao" },
        { "org_id": w.ds_org, "role": "ds" },
    ]);
    bad(b, 400, "invalid_request");
    let mut b = new_project(&w, "Twice");
    b["members"] = json!([
        { "org_id": w.ao_org, "role": "ao" },
        { "org_id": w.ao_org, "role": "ds" },
    ]);
    bad(b, 400, "invalid_request");
    let mut b = new_project(&w, "Bad role");
    b["members"][1]["role"] = json!("auditor");
    bad(b, 400, "invalid_request");
    let mut b = new_project(&w, "Bad org id");
    b["members"][1]["org_id"] = json!("not-an-id");
    bad(b, 400, "invalid_id");
    let mut b = new_project(&w, "Unknown org");
    b["members"][1]["org_id"] = json!(sealroom_types::OrgId::new().to_string());
    bad(b, 404, "not_found");
    let mut b = new_project(&w, "Extra field");
    b["color"] = json!("blue");
    bad(b, 400, "malformed_json");
    bad(new_project(&w, "chest x-ray"), 409, "already_exists");
    let r = s.call(
        "POST",
        "/api/v1/projects",
        Some(&s.admin_token),
        Body::Raw("text/plain", b"{}".to_vec()),
    );
    assert_eq!(r.status, 415);
    // Only admins create projects.
    let r = s.post("/api/v1/projects", &w.ao_token, new_project(&w, "By AO"));
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = s.post(
        "/api/v1/projects",
        &w.site_token,
        new_project(&w, "By site"),
    );
    assert_eq!(r.status, 403);
    let r = s.call(
        "POST",
        "/api/v1/projects",
        None,
        Body::Json(new_project(&w, "Anonymous")),
    );
    assert_eq!(r.status, 401);
    assert_eq!(all_projects(&s), before, "no bad request made a project");
    assert_eq!(audit_count(&s, "project.create", AuditOutcome::Success), 1);
    assert!(audit_count(&s, "project.create", AuditOutcome::Denied) >= 2);

    // The list: members see their projects with their role; admins see all.
    let ao_list = s.get("/api/v1/projects", &w.ao_token).expect(200);
    let items = ao_list.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["name"], "Chest X-ray");
    assert_eq!(items[0]["my_role"], "algorithm_owner");
    assert!(ao_list.json.get("next_cursor").is_none());
    let ds_list = s.get("/api/v1/projects", &w.ds_token).expect(200);
    assert_eq!(ds_list.json["items"][0]["my_role"], "data_steward");
    let other_list = s.get("/api/v1/projects", &other.ds_token).expect(200);
    let items = other_list.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], other_project.as_str());
    let admin_list = s.get("/api/v1/projects", &s.admin_token).expect(200);
    let items = admin_list.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|p| p["my_role"].is_null()));
    assert_eq!(
        s.call("GET", "/api/v1/projects", None, Body::None).status,
        401
    );
    assert_eq!(s.get("/api/v1/projects", &w.site_token).status, 403);

    // Pagination: pages follow each other without gaps or repeats, each item with its role.
    let mut made = vec![id.clone()];
    for i in 0..3 {
        made.push(s.project(&w, &format!("Paged {i}"), "simulated"));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/projects?limit=3&cursor={c}"),
            None => "/api/v1/projects?limit=3".to_string(),
        };
        let r = s.get(&path, &w.ao_token).expect(200);
        for p in r.json["items"].as_array().unwrap() {
            assert_eq!(p["my_role"], "algorithm_owner");
            seen.push(p["id"].as_str().unwrap().to_string());
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    made.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first");
    assert_eq!(seen, made);
    let r = s.get("/api/v1/projects?cursor=nope", &w.ao_token);
    assert_eq!((r.status, r.code()), (400, "invalid_id"));
    let r = s.get("/api/v1/projects?limit=0", &w.ao_token);
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = s.get("/api/v1/projects?limit=501", &w.ao_token);
    assert_eq!(r.status, 400);

    // The page: members and admins; others 404 (audited), anonymous 401, sites 403.
    let page_path = format!("/api/v1/projects/{id}");
    let p = s.get(&page_path, &w.ao_token).expect(200);
    assert_eq!(p.json["my_role"], "algorithm_owner");
    assert_eq!(p.json["members"].as_array().unwrap().len(), 2);
    assert_eq!(p.json["keys"].as_array().unwrap().len(), 2);
    let p = s.get(&page_path, &w.ds_token).expect(200);
    assert_eq!(p.json["my_role"], "data_steward");
    let p = s.get(&page_path, &s.admin_token).expect(200);
    assert_eq!(p.json["my_role"], Value::Null);
    let denied = audit_count(&s, "project.read", AuditOutcome::Denied);
    let r = s.get(&page_path, &other.ao_token);
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert_eq!(
        audit_count(&s, "project.read", AuditOutcome::Denied),
        denied + 1
    );
    assert_eq!(s.call("GET", &page_path, None, Body::None).status, 401);
    assert_eq!(s.get(&page_path, &w.site_token).status, 403);
    let r = s.get("/api/v1/projects/not-an-id", &w.ao_token);
    assert_eq!((r.status, r.code()), (400, "invalid_id"));
    let unknown = sealroom_types::ProjectId::new();
    let r = s.get(&format!("/api/v1/projects/{unknown}"), &s.admin_token);
    assert_eq!(r.status, 404);
}

#[test]
fn state_members_and_settings() {
    let s = TestServer::sqlite();
    let w = world(&s, "s");
    let other = world(&s, "t");
    let id = s.project(&w, "Lifecycle", "simulated");
    let state_path = format!("/api/v1/projects/{id}/state");
    let members_path = format!("/api/v1/projects/{id}/members");
    let settings_path = format!("/api/v1/projects/{id}/settings");
    let page = |token: &str| {
        s.get(&format!("/api/v1/projects/{id}"), token)
            .expect(200)
            .json
    };

    // State: admin only; members 403, outsiders 404; bad values 400; nothing changes then.
    let r = put(&s, &state_path, &w.ds_token, json!({ "state": "paused" }));
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = put(
        &s,
        &state_path,
        &other.ao_token,
        json!({ "state": "paused" }),
    );
    assert_eq!(r.status, 404);
    let r = s.call(
        "PUT",
        &state_path,
        None,
        Body::Json(json!({ "state": "paused" })),
    );
    assert_eq!(r.status, 401);
    let r = put(
        &s,
        &state_path,
        &s.admin_token,
        json!({ "state": "frozen" }),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = put(
        &s,
        &state_path,
        &s.admin_token,
        json!({ "state": "paused", "why": "x" }),
    );
    assert_eq!((r.status, r.code()), (400, "malformed_json"));
    assert_eq!(page(&w.ao_token)["project"]["state"], "active");
    let r = put(
        &s,
        &state_path,
        &s.admin_token,
        json!({ "state": "paused" }),
    )
    .expect(200);
    assert_eq!(r.json["state"], "paused");
    assert_eq!(page(&w.ao_token)["project"]["state"], "paused");
    let entry = audit(&s)
        .into_iter()
        .rfind(|e| e.action == "project.state" && e.outcome == AuditOutcome::Success)
        .unwrap();
    assert!(
        entry.detail.contains("\"from\":\"active\""),
        "{}",
        entry.detail
    );
    assert!(
        entry.detail.contains("\"to\":\"paused\""),
        "{}",
        entry.detail
    );
    assert!(audit_count(&s, "project.state", AuditOutcome::Denied) >= 2);

    // Settings: the DS only.
    let r = put(
        &s,
        &settings_path,
        &w.ao_token,
        json!({ "algorithm_logs_to_ao": true }),
    );
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = put(
        &s,
        &settings_path,
        &s.admin_token,
        json!({ "algorithm_logs_to_ao": true }),
    );
    assert_eq!(r.status, 403);
    let r = put(
        &s,
        &settings_path,
        &other.ds_token,
        json!({ "algorithm_logs_to_ao": true }),
    );
    assert_eq!(r.status, 404);
    let r = put(
        &s,
        &settings_path,
        &w.ds_token,
        json!({ "algorithm_logs_to_ao": "yes" }),
    );
    assert_eq!((r.status, r.code()), (400, "malformed_json"));
    assert_eq!(page(&w.ds_token)["project"]["algorithm_logs_to_ao"], false);
    let r = put(
        &s,
        &settings_path,
        &w.ds_token,
        json!({ "algorithm_logs_to_ao": true }),
    )
    .expect(200);
    assert_eq!(r.json["algorithm_logs_to_ao"], true);
    assert_eq!(page(&w.ao_token)["project"]["algorithm_logs_to_ao"], true);
    assert_eq!(
        audit_count(&s, "project.settings", AuditOutcome::Success),
        1
    );

    // Members: admin adds another DS; a second AO, a member twice, unknown orgs are refused.
    let r = s.post(
        &members_path,
        &w.ao_token,
        json!({ "org_id": other.ds_org, "role": "ds" }),
    );
    assert_eq!(r.status, 403);
    let r = s.post(
        &members_path,
        &s.admin_token,
        json!({ "org_id": other.ao_org, "role": "algorithm_owner" }),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = s.post(
        &members_path,
        &s.admin_token,
        json!({ "org_id": w.ds_org, "role": "ds" }),
    );
    assert_eq!((r.status, r.code()), (409, "already_exists"));
    let r = s.post(
        &members_path,
        &s.admin_token,
        json!({ "org_id": sealroom_types::OrgId::new().to_string(), "role": "ds" }),
    );
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = s.post(
        &members_path,
        &s.admin_token,
        json!({ "org_id": "x", "role": "ds" }),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_id"));
    let r = s.post(
        &members_path,
        &s.admin_token,
        json!({ "org_id": other.ds_org, "role": "owner" }),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    assert_eq!(page(&w.ao_token)["members"].as_array().unwrap().len(), 2);
    let r = s
        .post(
            &members_path,
            &s.admin_token,
            json!({ "org_id": other.ds_org, "role": "data_steward" }),
        )
        .expect(201);
    assert_eq!(r.json["org_name"], "General Hospital t");
    assert_eq!(r.json["role"], "data_steward");
    assert_eq!(page(&w.ao_token)["members"].as_array().unwrap().len(), 3);
    assert_eq!(page(&other.ds_token)["my_role"], "data_steward");
    assert_eq!(
        audit_count(&s, "project.member_add", AuditOutcome::Success),
        1
    );

    // Deactivated: read-only (settings, members, WCEKs refused), still readable; reactivated.
    put(
        &s,
        &state_path,
        &s.admin_token,
        json!({ "state": "deactivated" }),
    )
    .expect(200);
    let r = put(
        &s,
        &settings_path,
        &w.ds_token,
        json!({ "algorithm_logs_to_ao": false }),
    );
    assert_eq!((r.status, r.code()), (409, "project_not_active"));
    let r = s.post(
        &members_path,
        &s.admin_token,
        json!({ "org_id": other.ao_org, "role": "ds" }),
    );
    assert_eq!((r.status, r.code()), (409, "project_not_active"));
    let kek = s
        .get(&format!("/api/v1/projects/{id}/keys/ds/kek"), &w.ds_token)
        .expect(200);
    let wcek = KekPublic::from_der(&kek.bytes)
        .unwrap()
        .wrap(&Cek::generate().unwrap())
        .unwrap();
    let r = upload(&s, &id, "ds", &w.ds_token, wcek.clone());
    assert_eq!((r.status, r.code()), (409, "project_not_active"));
    assert_eq!(wceks(&s, &id, Role::DataSteward), 0);
    let p = page(&w.ao_token);
    assert_eq!(p["project"]["state"], "deactivated");
    assert_eq!(p["project"]["algorithm_logs_to_ao"], true);
    assert_eq!(p["members"].as_array().unwrap().len(), 3);
    put(
        &s,
        &state_path,
        &s.admin_token,
        json!({ "state": "active" }),
    )
    .expect(200);
    upload(&s, &id, "ds", &w.ds_token, wcek).expect(201);
}

#[test]
fn kek_download_and_wcek_upload_with_real_keys() {
    let s = TestServer::sqlite();
    let w = world(&s, "k");
    let other = world(&s, "m");
    let id = s.project(&w, "Keys", "simulated");
    let kek_path = |role: &str| format!("/api/v1/projects/{id}/keys/{role}/kek");
    let keys = s
        .get(&format!("/api/v1/projects/{id}"), &w.ao_token)
        .expect(200)
        .json["keys"]
        .clone();
    let file_name = |role: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["role"] == role)
            .unwrap()["file_name"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // KEK download: the role's members only.
    let ao_kek = s.get(&kek_path("ao"), &w.ao_token).expect(200);
    assert_eq!(
        ao_kek.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        ao_kek.header("content-disposition").unwrap(),
        format!("attachment; filename=\"{}\"", file_name("algorithm_owner"))
    );
    let long = s.get(&kek_path("algorithm_owner"), &w.ao_token).expect(200);
    assert_eq!(long.bytes, ao_kek.bytes);
    let ds_kek = s.get(&kek_path("ds"), &w.ds_token).expect(200);
    assert!(ds_kek
        .header("content-disposition")
        .unwrap()
        .contains(&file_name("data_steward")));
    assert_ne!(ao_kek.bytes, ds_kek.bytes);
    let fp = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &ao_kek.bytes,
    ));
    assert!(
        keys.to_string().contains(&fp),
        "fingerprint of the SPKI DER"
    );
    let r = s.get(&kek_path("ao"), &w.ds_token);
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = s.get(&kek_path("ds"), &w.ao_token);
    assert_eq!(r.status, 403);
    let r = s.get(&kek_path("ao"), &s.admin_token);
    assert_eq!(r.status, 403, "admins are not members");
    let r = s.get(&kek_path("ao"), &other.ao_token);
    assert_eq!(r.status, 404);
    assert_eq!(s.call("GET", &kek_path("ao"), None, Body::None).status, 401);
    assert_eq!(s.get(&kek_path("ao"), &w.site_token).status, 403);
    let r = s.get(&kek_path("owner"), &w.ao_token);
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    assert_eq!(
        audit_count(&s, "key.kek_download", AuditOutcome::Success),
        3
    );
    assert!(audit_count(&s, "key.kek_download", AuditOutcome::Denied) >= 5);

    // A CEK wrapped to the AO KEK: accepted, fingerprinted, its key id recorded.
    let ao_public = KekPublic::from_der(&ao_kek.bytes).unwrap();
    let ds_public = KekPublic::from_der(&ds_kek.bytes).unwrap();
    let cek = Cek::generate().unwrap();
    let wcek = ao_public.wrap(&cek).unwrap();
    let v1 = upload(&s, &id, "ao", &w.ao_token, wcek.clone()).expect(201);
    assert_eq!(v1.json["version"], 1);
    assert_eq!(v1.json["role"], "algorithm_owner");
    assert_eq!(v1.json["cek_key_id"], cek.key_id().to_string().as_str());
    let wcek_fp = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &wcek));
    assert_eq!(v1.json["fingerprint"], wcek_fp.as_str());
    let entry = audit(&s)
        .into_iter()
        .rfind(|e| e.action == "key.wcek_upload")
        .unwrap();
    assert_eq!(entry.outcome, AuditOutcome::Success);
    assert!(entry.detail.contains(&wcek_fp), "{}", entry.detail);

    // Refused uploads change nothing.
    let failures = audit_count(&s, "key.wcek_upload", AuditOutcome::Failure);
    let r = upload(
        &s,
        &id,
        "ao",
        &w.ao_token,
        ds_public.wrap(&Cek::generate().unwrap()).unwrap(),
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "wcek_does_not_unwrap"),
        "{}",
        r.text()
    );
    let random: Vec<u8> = (0..512).map(|_| rand::random::<u8>()).collect();
    let r = upload(&s, &id, "ao", &w.ao_token, random);
    assert_eq!((r.status, r.code()), (422, "wcek_does_not_unwrap"));
    let r = upload(&s, &id, "ao", &w.ao_token, Vec::new());
    assert_eq!(r.status, 422);
    assert_eq!(
        audit_count(&s, "key.wcek_upload", AuditOutcome::Failure),
        failures + 3
    );
    let r = upload(&s, &id, "ao", &w.ao_token, vec![7u8; 2048]);
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    let r = s.call(
        "POST",
        &format!("/api/v1/projects/{id}/keys/ao/wcek"),
        Some(&w.ao_token),
        Body::Raw("text/plain", wcek.clone()),
    );
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    // The wrong party, outsiders, admins, anonymous.
    let r = upload(&s, &id, "ao", &w.ds_token, wcek.clone());
    assert_eq!(r.status, 403);
    let r = upload(&s, &id, "ao", &s.admin_token, wcek.clone());
    assert_eq!(r.status, 403);
    let r = upload(&s, &id, "ao", &other.ao_token, wcek.clone());
    assert_eq!(r.status, 404);
    let r = s.call(
        "POST",
        &format!("/api/v1/projects/{id}/keys/ao/wcek"),
        None,
        Body::Raw("application/octet-stream", wcek.clone()),
    );
    assert_eq!(r.status, 401);
    assert_eq!(wceks(&s, &id, Role::AlgorithmOwner), 1);
    assert_eq!(wceks(&s, &id, Role::DataSteward), 0);

    // A second version; the DS's own; the list and the page show fingerprints only.
    let cek2 = Cek::generate().unwrap();
    let wcek2 = ao_public.wrap(&cek2).unwrap();
    let v2 = upload(&s, &id, "algorithm_owner", &w.ao_token, wcek2).expect(201);
    assert_eq!(v2.json["version"], 2);
    let ds_cek = Cek::generate().unwrap();
    upload(&s, &id, "ds", &w.ds_token, ds_public.wrap(&ds_cek).unwrap()).expect(201);
    let list_path = format!("/api/v1/projects/{id}/keys/ao/wceks");
    for token in [&w.ao_token, &w.ds_token] {
        let l = s.get(&list_path, token).expect(200);
        let l = l.json.as_array().unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0]["fingerprint"], wcek_fp.as_str());
        assert_eq!(l[0]["is_latest"], false);
        assert_eq!(l[1]["cek_key_id"], cek2.key_id().to_string().as_str());
        assert_eq!(l[1]["is_latest"], true);
    }
    assert_eq!(s.get(&list_path, &s.admin_token).status, 403);
    assert_eq!(s.get(&list_path, &other.ds_token).status, 404);
    assert_eq!(s.call("GET", &list_path, None, Body::None).status, 401);
    let p = s
        .get(&format!("/api/v1/projects/{id}"), &s.admin_token)
        .expect(200);
    let latest = &p.json["latest_wceks"];
    assert_eq!(latest["algorithm_owner"]["version"], 2);
    assert_eq!(
        latest["data_steward"]["cek_key_id"],
        ds_cek.key_id().to_string().as_str()
    );
    assert!(latest["algorithm_owner"].get("wcek").is_none());
    let stored = s
        .block_on(
            s.store
                .latest_wcek(id.parse().unwrap(), Role::AlgorithmOwner),
        )
        .unwrap()
        .unwrap();
    assert_ne!(stored.1, wcek, "the latest bytes replace the previous ones");
}

#[test]
fn wcek_made_by_openssl_is_accepted() {
    let s = TestServer::sqlite();
    let w = world(&s, "o");
    let id = s.project(&w, "OpenSSL interop", "simulated");
    let kek = s
        .get(&format!("/api/v1/projects/{id}/keys/ds/kek"), &w.ds_token)
        .expect(200);
    let dir = tempfile::tempdir().unwrap();
    let kek_file = dir.path().join("kek.der");
    let cek_file = dir.path().join("cek.key");
    let wcek_file = dir.path().join("wcek.key.bkenc");
    std::fs::write(&kek_file, &kek.bytes).unwrap();
    let cek: [u8; 32] = rand::random();
    std::fs::write(&cek_file, cek).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(&kek_file)
        .args([
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
            "-in",
        ])
        .arg(&cek_file)
        .arg("-out")
        .arg(&wcek_file)
        .output()
        .expect("openssl is installed by scripts/setup/00-base.sh");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wcek = std::fs::read(&wcek_file).unwrap();
    assert_eq!(wcek.len(), 512, "RSA-4096 ciphertext");
    let r = upload(&s, &id, "ds", &w.ds_token, wcek).expect(201);
    assert_eq!(
        r.json["cek_key_id"],
        Cek::from_bytes(cek).key_id().to_string().as_str()
    );
}

#[test]
fn main_flow_on_postgres() {
    let Some(s) = TestServer::postgres() else {
        return;
    };
    let w = world(&s, "p");
    let created = s
        .post(
            "/api/v1/projects",
            &s.admin_token,
            new_project(&w, "Postgres flow"),
        )
        .expect(201);
    let id = created.json["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(created.json["members"].as_array().unwrap().len(), 2);
    let r = s.post(
        "/api/v1/projects",
        &s.admin_token,
        new_project(&w, "POSTGRES FLOW"),
    );
    assert_eq!(r.status, 409);
    let second = s.project(&w, "Postgres second", "sev-snp");
    let l = s.get("/api/v1/projects?limit=1", &w.ds_token).expect(200);
    assert_eq!(l.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(l.json["items"][0]["my_role"], "data_steward");
    let cursor = l.json["next_cursor"].as_str().unwrap().to_string();
    let l2 = s
        .get(
            &format!("/api/v1/projects?limit=1&cursor={cursor}"),
            &w.ds_token,
        )
        .expect(200);
    assert_eq!(l2.json["items"][0]["my_role"], "data_steward");
    let mut ids = vec![
        l.json["items"][0]["id"].as_str().unwrap().to_string(),
        l2.json["items"][0]["id"].as_str().unwrap().to_string(),
    ];
    ids.sort();
    let mut want = vec![id.clone(), second];
    want.sort();
    assert_eq!(ids, want);

    let kek = s
        .get(&format!("/api/v1/projects/{id}/keys/ao/kek"), &w.ao_token)
        .expect(200);
    let cek = Cek::generate().unwrap();
    let wcek = KekPublic::from_der(&kek.bytes).unwrap().wrap(&cek).unwrap();
    upload(&s, &id, "ao", &w.ao_token, wcek).expect(201);
    let r = upload(&s, &id, "ao", &w.ao_token, vec![1u8; 512]);
    assert_eq!(r.status, 422);
    let p = s
        .get(&format!("/api/v1/projects/{id}"), &w.ds_token)
        .expect(200);
    assert_eq!(
        p.json["latest_wceks"]["algorithm_owner"]["cek_key_id"],
        cek.key_id().to_string().as_str()
    );
    put(
        &s,
        &format!("/api/v1/projects/{id}/settings"),
        &w.ds_token,
        json!({ "algorithm_logs_to_ao": true }),
    )
    .expect(200);
    put(
        &s,
        &format!("/api/v1/projects/{id}/state"),
        &s.admin_token,
        json!({ "state": "deactivated" }),
    )
    .expect(200);
    let r = upload(&s, &id, "ao", &w.ao_token, vec![1u8; 512]);
    assert_eq!(r.status, 409);
    assert_eq!(audit_count(&s, "key.wcek_upload", AuditOutcome::Failure), 1);
}

#[test]
fn openapi_lists_the_project_routes() {
    let s = TestServer::sqlite();
    let doc = s
        .call("GET", "/api/openapi.json", None, Body::None)
        .expect(200);
    let paths = &doc.json["paths"];
    for (path, method) in [
        ("/api/v1/projects", "post"),
        ("/api/v1/projects", "get"),
        ("/api/v1/projects/{project_id}", "get"),
        ("/api/v1/projects/{project_id}/state", "put"),
        ("/api/v1/projects/{project_id}/members", "post"),
        ("/api/v1/projects/{project_id}/settings", "put"),
        ("/api/v1/projects/{project_id}/keys/{role}/kek", "get"),
        ("/api/v1/projects/{project_id}/keys/{role}/wcek", "post"),
        ("/api/v1/projects/{project_id}/keys/{role}/wceks", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path}");
        assert_eq!(op["tags"][0], "projects", "{method} {path}");
    }
    let wcek = &paths["/api/v1/projects/{project_id}/keys/{role}/wcek"]["post"];
    assert!(wcek["requestBody"]["content"]["application/octet-stream"].is_object());
}
