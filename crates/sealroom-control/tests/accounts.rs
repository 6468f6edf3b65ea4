//! Sign-in, tokens, organizations, users and sites through the REST API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{world, Body, TestServer, PASSWORD};
use serde_json::json;

#[test]
fn login_tokens_and_admin_only_account_management() {
    let s = TestServer::sqlite();
    let w = world(&s, "a");

    // Who am I.
    let me = s.get("/api/v1/me", &w.ao_token).expect(200);
    assert_eq!(me.json["user"]["username"], "alice-a");
    assert_eq!(me.json["organization"]["id"], w.ao_org.as_str());

    // Wrong password: 401, no token; unknown user: the same answer.
    let bad = s.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Body::Json(json!({ "username": "alice-a", "password": "nope nope nope" })),
    );
    assert_eq!(bad.status, 401);
    assert_eq!(bad.code(), "unauthenticated");
    let unknown = s.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Body::Json(json!({ "username": "nobody", "password": "nope nope nope" })),
    );
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.json["message"], bad.json["message"]);

    // Non-admins cannot manage accounts.
    for (method, path) in [("GET", "/api/v1/orgs"), ("GET", "/api/v1/users")] {
        let r = s.call(method, path, Some(&w.ds_token), Body::None);
        assert_eq!(r.status, 403, "{method} {path}");
    }
    let r = s.post(
        "/api/v1/users",
        &w.ao_token,
        json!({ "org_id": w.ao_org, "username": "mallory", "password": PASSWORD, "is_admin": true }),
    );
    assert_eq!(r.status, 403);
    assert_eq!(s.call("GET", "/api/v1/me", None, Body::None).status, 401);

    // API tokens: create, use, list, revoke.
    let t = s
        .post("/api/v1/tokens", &w.ao_token, json!({ "name": "laptop" }))
        .expect(201);
    let api_token = t.json["token"].as_str().unwrap().to_string();
    assert!(api_token.starts_with("sra_"));
    s.get("/api/v1/me", &api_token).expect(200);
    let list = s.get("/api/v1/tokens", &w.ao_token).expect(200);
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    assert!(
        list.text().find(&api_token).is_none(),
        "secrets are never listed"
    );
    let id = t.json["id"].as_str().unwrap();
    // Another user cannot revoke it.
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&w.ds_token),
            Body::None
        )
        .status,
        404
    );
    s.call(
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        Some(&w.ao_token),
        Body::None,
    )
    .expect(204);
    let gone = s.get("/api/v1/me", &api_token);
    assert_eq!(gone.status, 401);

    // Logout ends the session.
    s.post("/api/v1/auth/logout", &w.ds_token, json!({}))
        .expect(204);
    assert_eq!(s.get("/api/v1/me", &w.ds_token).status, 401);

    // Site tokens only open the agent API.
    let r = s.get("/api/v1/me", &w.site_token);
    assert_eq!(r.status, 403);

    // Password change with the one-time admin password.
    s.call(
        "PUT",
        "/api/v1/me/password",
        Some(&s.admin_token),
        Body::Json(json!({ "current_password": s.admin_password, "new_password": "a much better password" })),
    )
    .expect(204);
    s.login("admin", "a much better password");
}

#[test]
fn login_is_rate_limited() {
    let s = TestServer::sqlite();
    for _ in 0..5 {
        let r = s.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Body::Json(json!({ "username": "admin", "password": "wrong wrong wrong" })),
        );
        assert_eq!(r.status, 401);
    }
    let r = s.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Body::Json(json!({ "username": "admin", "password": s.admin_password })),
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.code(), "rate_limited");
}

#[test]
fn openapi_and_docs_are_served() {
    let s = TestServer::sqlite();
    let doc = s
        .call("GET", "/api/openapi.json", None, Body::None)
        .expect(200);
    assert!(doc.json["paths"]["/api/v1/auth/login"]["post"].is_object());
    let ui = s.call("GET", "/api/docs/", None, Body::None).expect(200);
    assert!(ui.text().contains("swagger"), "{}", ui.text());
    let nf = s.call("GET", "/api/v1/nope", None, Body::None);
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), "not_found");
}

#[test]
fn harness_project_has_keys() {
    let s = TestServer::sqlite();
    let w = world(&s, "k");
    let p = s.project(&w, "Harness project", "simulated");
    let keys = s.block_on(sealroom_store::ProjectStore::project_keys(
        &*s.store,
        p.parse().unwrap(),
    ));
    assert_eq!(keys.unwrap().len(), 2);
}
