//! The audit log through the REST API: listing (admin only) and verification, which names the
//! entries someone modified or deleted directly in the database, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{world, Body, TestServer};
use serde_json::{json, Value};

fn items(r: &common::Resp) -> &Vec<Value> {
    r.json["items"].as_array().expect("an items array")
}

/// Every entry, through the API.
fn all_entries(s: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0i64;
    loop {
        let r = s
            .get(
                &format!("/api/v1/audit?after={after}&limit=500"),
                &s.admin_token,
            )
            .expect(200);
        out.extend(items(&r).iter().cloned());
        match r.json["next_after"].as_i64() {
            Some(a) => after = a,
            None => return out,
        }
    }
}

/// The first entry with this action.
fn first(entries: &[Value], action: &str) -> Value {
    entries
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} entry"))
        .clone()
}

fn seq(e: &Value) -> i64 {
    e["seq"].as_i64().unwrap()
}

/// What a tamperer who knows the hash recipe (docs/store.md) writes: the entry's new hash.
fn rehash(e: &Value, action: &str) -> String {
    let canonical = json!([
        e["seq"],
        sealroom_types::Timestamp::parse_rfc3339(e["at"].as_str().unwrap())
            .unwrap()
            .as_millis(),
        serde_json::from_value::<sealroom_types::Actor>(e["actor"].clone())
            .unwrap()
            .to_string(),
        action,
        e["outcome"],
        e["project_id"],
        e["object"],
        e["detail"],
        e["prev_hash"],
    ])
    .to_string();
    hex::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref(),
    )
}

#[test]
fn rehash_matches_the_stored_hash() {
    // The test's recipe is the store's: an untouched entry re-hashes to its own hash.
    let s = TestServer::sqlite();
    world(&s, "h");
    for e in all_entries(&s) {
        assert_eq!(rehash(&e, e["action"].as_str().unwrap()), e["hash"], "{e}");
    }
}

/// Audited actions through the API, then one entry edited, one deleted and one edited and
/// re-hashed, directly in the database: verification names each.
fn tamper(s: &TestServer) {
    let w = world(s, "t");
    s.post("/api/v1/tokens", &w.ao_token, json!({ "name": "laptop" }))
        .expect(201);
    let r = s.get("/api/v1/orgs", &w.ds_token);
    assert_eq!(r.status, 403, "a denial, audited");

    let v = s.get("/api/v1/audit/verify", &s.admin_token).expect(200);
    assert_eq!(v.json["intact"], true, "{}", v.text());
    assert_eq!(v.json["problems"], json!([]));
    assert!(v.json["entries_checked"].as_u64().unwrap() >= 8);
    assert_eq!(
        v.json["head_seq"].as_i64().unwrap(),
        v.json["entries_checked"].as_i64().unwrap()
    );

    let entries = all_entries(s);
    assert_eq!(entries.last().unwrap()["action"], "audit.verify");
    let edited = first(&entries, "org.create");
    let deleted = first(&entries, "user.create");
    let rehashed = first(&entries, "site.create");
    assert!(seq(&edited) < seq(&deleted) && seq(&deleted) + 1 < seq(&rehashed));
    let denial = entries
        .iter()
        .find(|e| e["action"] == "org.list" && e["outcome"] == "denied")
        .expect("the denial was audited");
    assert!(seq(denial) > seq(&rehashed));

    s.block_on(async {
        let pool = s.store.pool();
        sqlx::query("UPDATE audit_log SET detail = $1 WHERE seq = $2")
            .bind(r#"{"name":"Innocent Org"}"#)
            .bind(seq(&edited))
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM audit_log WHERE seq = $1")
            .bind(seq(&deleted))
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET action = $1, hash = $2 WHERE seq = $3")
            .bind("site.view")
            .bind(rehash(&rehashed, "site.view"))
            .bind(seq(&rehashed))
            .execute(pool)
            .await
            .unwrap();
    });

    let v = s.get("/api/v1/audit/verify", &s.admin_token).expect(200);
    assert_eq!(v.json["intact"], false);
    let problems = v.json["problems"].as_array().unwrap();
    assert_eq!(
        problems,
        &vec![
            json!({ "kind": "modified", "seq": seq(&edited),
                "message": format!("entry {} was modified", seq(&edited)) }),
            json!({ "kind": "missing", "from_seq": seq(&deleted), "to_seq": seq(&deleted),
                "message": format!("entry {} was deleted", seq(&deleted)) }),
            json!({ "kind": "broken_link", "seq": seq(&rehashed) + 1,
                "message": format!("the chain breaks before entry {}: entry {} was modified and re-hashed, or entry {} was re-linked",
                    seq(&rehashed) + 1, seq(&rehashed), seq(&rehashed) + 1) }),
        ],
        "{}",
        v.text()
    );
    assert_eq!(
        v.json["entries_checked"].as_i64().unwrap(),
        v.json["head_seq"].as_i64().unwrap() - 1,
        "one row is gone"
    );
    // The failed check is itself recorded, naming what it found.
    let last = all_entries(s).pop().unwrap();
    assert_eq!(last["action"], "audit.verify");
    assert_eq!(last["outcome"], "failure");
    let detail: Value = serde_json::from_str(last["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["problems"].as_array().unwrap().len(), 3);
    // The log is still listed, with the deleted entry absent.
    assert!(all_entries(s).iter().all(|e| seq(e) != seq(&deleted)));
}

#[test]
fn tampering_is_named_sqlite() {
    tamper(&TestServer::sqlite());
}

#[test]
fn tampering_is_named_postgres() {
    if let Some(s) = TestServer::postgres() {
        tamper(&s);
    }
}

#[test]
fn audit_is_admin_only() {
    let s = TestServer::sqlite();
    let w = world(&s, "a");
    let p = s.project(&w, "Audited", "simulated");

    for path in ["/api/v1/audit", "/api/v1/audit/verify"] {
        for token in [&w.ao_token, &w.ds_token] {
            let r = s.get(path, token);
            assert_eq!(r.status, 403, "{path}");
            assert_eq!(r.code(), "forbidden");
        }
        let r = s.get(path, &w.site_token);
        assert_eq!(r.status, 403, "{path}");
        let r = s.call("GET", path, None, Body::None);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.code(), "unauthenticated");
    }

    // Pages in sequence order.
    let first = s.get("/api/v1/audit?limit=3", &s.admin_token).expect(200);
    let seqs: Vec<i64> = items(&first).iter().map(seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(first.json["next_after"], 3);
    let e = &items(&first)[0];
    assert_eq!(e["action"], "auth.login");
    assert_eq!(e["prev_hash"], "0".repeat(64));
    assert_eq!(items(&first)[1]["prev_hash"], e["hash"]);
    let next = s
        .get("/api/v1/audit?after=3&limit=3", &s.admin_token)
        .expect(200);
    assert_eq!(seq(&items(&next)[0]), 4);
    let all = all_entries(&s);
    assert_eq!(
        all.iter().map(seq).collect::<Vec<_>>(),
        (1..=all.len() as i64).collect::<Vec<_>>()
    );
    // The denials above were recorded, with the caller and the refusal.
    let denied: Vec<&Value> = all
        .iter()
        .filter(|e| e["action"] == "audit.list" && e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 4);
    assert_eq!(
        denied[0]["actor"],
        json!({ "type": "user", "id": w.ao_user })
    );
    assert!(denied
        .iter()
        .any(|e| e["actor"] == json!({ "type": "anonymous" })));
    // The harness's project creation is not an API call; a chat message is.
    s.post(
        &format!("/api/v1/projects/{p}/chat"),
        &w.ao_token,
        json!({ "body": "hi" }),
    )
    .expect(201);
    let last = all_entries(&s).pop().unwrap();
    assert_eq!(last["action"], "chat.post");
    assert_eq!(last["project_id"], p.as_str());

    // Bad parameters: 400.
    for q in ["after=-1", "after=x", "limit=0", "limit=501", "limit=-2"] {
        let r = s.get(&format!("/api/v1/audit?{q}"), &s.admin_token);
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.code(), "invalid_request");
    }
    // Past the end: an empty page.
    let r = s
        .get("/api/v1/audit?after=1000000", &s.admin_token)
        .expect(200);
    assert!(items(&r).is_empty());
    assert!(r.json.get("next_after").is_none());
}
