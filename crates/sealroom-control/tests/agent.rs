//! The agent API: long-poll claims, what a site may see, stage reports, heartbeats and the
//! sweeper, logs, and outputs (the final report is re-validated by the server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod run_fixture;

use std::time::{Duration, Instant};

use common::{Body, Db, TestServer};
use run_fixture::*;
use sealroom_control::ControlConfig;
use serde_json::json;

/// A run initiated and claimed by the fixture's site, in `running` unless `stop` says earlier.
fn claimed_run(s: &TestServer, fx: &Fx, rc_name: &str, alg: &str, stop: &str) -> String {
    let rc = run_config(s, fx, rc_name, alg, &fx.dataset);
    let run = request(s, fx, &rc);
    s.post(
        &format!("/api/v1/runs/{run}/initiate"),
        &fx.w.ds_token,
        json!({}),
    )
    .expect(200);
    let b = s
        .post("/api/v1/agent/claim", &fx.w.site_token, json!({}))
        .expect(200);
    assert_eq!(b.json["run"]["id"], run.as_str());
    for st in ["runtime_build", "workload_launch", "running"] {
        if st == stop {
            break;
        }
        agent_state(s, &fx.w.site_token, &run, st).expect(200);
    }
    run
}

#[test]
fn claim_long_polls_until_a_run_is_initiated() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "lp");
    let w = &fx.w;

    // Callers and the wait bound.
    assert_eq!(
        s.call("POST", "/api/v1/agent/claim", None, Body::None)
            .status,
        401
    );
    assert_eq!(
        s.post("/api/v1/agent/claim", &w.ds_token, json!({})).status,
        403
    );
    let r = s.post("/api/v1/agent/claim?wait=31", &w.site_token, json!({}));
    assert_eq!(r.status, 400, "{}", r.text());
    // Nothing to claim: 204 after the wait.
    let t = Instant::now();
    s.post("/api/v1/agent/claim?wait=1", &w.site_token, json!({}))
        .expect(204);
    assert!(t.elapsed() >= Duration::from_millis(900));

    let rc = run_config(&s, &fx, "Cfg", &fx.alg, &fx.dataset);
    let run = request(&s, &fx, &rc);
    let (url, token) = (s.url.clone(), w.site_token.clone());
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let r = common::call(
            &url,
            "POST",
            "/api/v1/agent/claim?wait=25",
            Some(&token),
            Body::None,
        );
        (r, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    s.post(
        &format!("/api/v1/runs/{run}/initiate"),
        &w.ds_token,
        json!({}),
    )
    .expect(200);
    let (r, took) = waiter.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["run"]["id"], run.as_str());
    assert!(
        took < Duration::from_secs(5),
        "woken by the initiation, took {took:?}"
    );

    // The claim was audited with the site as actor.
    let audit = s.block_on(s.state.store().list_audit(0, 1000)).unwrap();
    let e = audit
        .iter()
        .find(|e| e.action == "agent.claim" && e.outcome == sealroom_types::AuditOutcome::Success)
        .unwrap();
    assert_eq!(e.actor.to_string(), format!("site:{}", w.site_id));
}

#[test]
fn a_site_sees_only_the_runs_it_claimed() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "vis");
    let w = &fx.w;
    let run = claimed_run(&s, &fx, "Cfg", &fx.alg, "runtime_build");
    // A second site of the same organization, and another organization's site.
    let other_site = s
        .post(
            &format!("/api/v1/orgs/{}/sites", w.ds_org),
            &s.admin_token,
            json!({ "name": "Second site" }),
        )
        .expect(201)
        .json["token"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign = setup(&s, "vis2").w.site_token;
    for token in [&other_site, &foreign] {
        for (method, path, body) in [
            ("GET", format!("/api/v1/agent/runs/{run}"), Body::None),
            (
                "GET",
                format!("/api/v1/agent/runs/{run}/package"),
                Body::None,
            ),
            (
                "POST",
                format!("/api/v1/agent/runs/{run}/heartbeat"),
                Body::None,
            ),
            (
                "POST",
                format!("/api/v1/agent/runs/{run}/state"),
                Body::Json(json!({ "state": "runtime_build" })),
            ),
            (
                "POST",
                format!("/api/v1/agent/runs/{run}/logs"),
                Body::Json(json!({ "lines": [] })),
            ),
            (
                "PUT",
                format!("/api/v1/agent/runs/{run}/outputs/trained_model"),
                Body::Raw("application/octet-stream", b"x".to_vec()),
            ),
        ] {
            let r = s.call(method, &path, Some(token), body);
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        }
    }
    // Users may not call the agent API; unknown runs are 404.
    let r = s.get(&format!("/api/v1/agent/runs/{run}"), &w.ds_token);
    assert_eq!(r.status, 403);
    let unknown = sealroom_types::RunId::new();
    assert_eq!(
        s.get(&format!("/api/v1/agent/runs/{unknown}"), &w.site_token)
            .status,
        404
    );
    // The claiming site does see it.
    let b = s
        .get(&format!("/api/v1/agent/runs/{run}"), &w.site_token)
        .expect(200);
    assert_eq!(b.json["run"]["state"], "initiated");
    assert_eq!(
        b.json["algorithm"]["workload_digest"],
        format!("sha256:{}", "ab".repeat(32))
    );
    let pkg = s
        .get(&format!("/api/v1/agent/runs/{run}/package"), &w.site_token)
        .expect(200);
    assert_eq!(pkg.bytes, fx.package);
    let audit = s.block_on(s.state.store().list_audit(0, 1000)).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "artifact.download"
            && e.actor.to_string() == format!("site:{}", w.site_id)));
}

#[test]
fn stage_reports_and_logs() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "st");
    let other = setup(&s, "st2");
    let w = &fx.w;
    let run = claimed_run(&s, &fx, "Cfg", &fx.alg, "runtime_build");
    let st = |body: serde_json::Value| {
        agent_post(
            &s,
            &w.site_token,
            &format!("/api/v1/agent/runs/{run}/state"),
            body,
        )
    };
    for (body, status, code) in [
        (json!({ "state": "requested" }), 400, "invalid_request"),
        (json!({ "state": "cancelled" }), 400, "invalid_request"),
        (json!({ "state": "nonsense" }), 400, "invalid_request"),
        (
            json!({ "state": "completed" }),
            409,
            "invalid_state_transition",
        ),
        (
            json!({ "state": "running" }),
            409,
            "invalid_state_transition",
        ),
        (json!({ "state": "failed" }), 400, "invalid_request"),
        (
            json!({ "state": "failed", "message": "x".repeat(2001) }),
            400,
            "invalid_request",
        ),
    ] {
        let r = st(body.clone());
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.text());
    }
    assert_eq!(
        s.get(&format!("/api/v1/runs/{run}"), &w.ao_token).json["run"]["state"],
        "initiated"
    );

    // Logs: bounded batches and lines, nothing stored from a refused batch.
    let logs_path = format!("/api/v1/agent/runs/{run}/logs");
    let many: Vec<_> = (0..1001)
        .map(|i| json!({ "stream": "stage", "line": format!("l{i}") }))
        .collect();
    assert_eq!(
        agent_post(&s, &w.site_token, &logs_path, json!({ "lines": many })).status,
        400
    );
    let long = json!({ "lines": [{ "stream": "algorithm", "line": "y".repeat(16 * 1024 + 1) }] });
    assert_eq!(agent_post(&s, &w.site_token, &logs_path, long).status, 400);
    let bad_stream = json!({ "lines": [{ "stream": "kernel", "line": "x" }] });
    assert_eq!(
        agent_post(&s, &w.site_token, &logs_path, bad_stream).code(),
        "malformed_json"
    );
    let full: Vec<_> = (0..1000).map(|i| json!({ "stream": if i % 2 == 0 { "stage" } else { "algorithm" }, "line": format!("line {i}") })).collect();
    let r = agent_post(&s, &w.site_token, &logs_path, json!({ "lines": full })).expect(200);
    assert_eq!(r.json["last_seq"], 1000);

    // Who reads which log.
    let logs = |token: &str, q: &str| s.get(&format!("/api/v1/runs/{run}/logs{q}"), token);
    let ds = logs(&w.ds_token, "?limit=1000").expect(200);
    assert_eq!(ds.json["lines"].as_array().unwrap().len(), 1000);
    let page = logs(&w.ds_token, "?stream=algorithm&after=10&limit=5").expect(200);
    assert_eq!(page.json["lines"][0]["seq"], 12);
    assert_eq!(page.json["next_after"], 20);
    let ao = logs(&w.ao_token, "?limit=1000").expect(200);
    assert_eq!(ao.json["lines"].as_array().unwrap().len(), 500);
    assert!(ao.json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["stream"] == "stage"));
    assert_eq!(logs(&w.ao_token, "?stream=algorithm").status, 403);
    assert_eq!(logs(&s.admin_token, "").status, 403);
    assert_eq!(logs(&s.admin_token, "?stream=stage").status, 403);
    assert_eq!(logs(&other.w.ao_token, "").status, 404);
    assert_eq!(logs(&w.ds_token, "?stream=x").status, 400);
    assert_eq!(logs(&w.ds_token, "?limit=0").status, 400);
    // The DS lets the AO read the algorithm's log.
    s.block_on(
        s.state
            .store()
            .set_algorithm_logs_to_ao(fx.project.parse().unwrap(), true),
    )
    .unwrap();
    let ao = logs(&w.ao_token, "?stream=algorithm&limit=1000").expect(200);
    assert_eq!(ao.json["lines"].as_array().unwrap().len(), 500);

    // The agent fails the run with a message; both parties are notified.
    agent_state(&s, &w.site_token, &run, "runtime_build").expect(200);
    let f = st(json!({ "state": "failed", "message": "the image did not build" })).expect(200);
    assert_eq!(f.json["state"], "failed");
    assert_eq!(f.json["reason"], "the image did not build");
    assert!(notification_kinds(&s, fx.ao_user).contains(&"run_failed".to_string()));
    assert!(notification_kinds(&s, fx.ds_user).contains(&"run_failed".to_string()));
    // Final lines are still taken shortly after the end.
    agent_post(
        &s,
        &w.site_token,
        &logs_path,
        json!({ "lines": [{ "stream": "stage", "line": "workspace wiped" }] }),
    )
    .expect(200);
}

#[test]
fn outputs_belong_to_their_party_and_final_reports_must_validate() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "out");
    let other = setup(&s, "out2");
    let w = &fx.w;
    let run = claimed_run(&s, &fx, "Cfg", &fx.alg, "workload_launch");
    let tok = &w.site_token;

    // Not running yet: 409.
    let r = put_output(&s, tok, &run, "trained_model", "", b"weights");
    assert_eq!(
        (r.status, r.code()),
        (409, "invalid_state_transition"),
        "{}",
        r.text()
    );
    agent_state(&s, tok, &run, "workload_launch").expect(200);
    agent_state(&s, tok, &run, "running").expect(200);

    // Bad requests.
    let r = put_output(&s, tok, &run, "secrets", "", b"x");
    assert_eq!(r.status, 400);
    let r = put_output(&s, tok, &run, "trained_model", "name=..%2Fescape", b"x");
    assert_eq!(r.code(), "invalid_name", "{}", r.text());
    let r = s.call(
        "PUT",
        &format!("/api/v1/agent/runs/{run}/outputs/trained_model"),
        Some(tok),
        Body::Raw("text/plain", b"x".to_vec()),
    );
    assert_eq!(r.status, 415);
    // Final reports: must be marked as passed, and must really pass.
    for q in ["", "passed_criteria=false"] {
        let r = put_output(&s, tok, &run, "final_report", q, GOOD_REPORT);
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_upload"),
            "{q}: {}",
            r.text()
        );
    }
    for bad in BAD_REPORTS {
        let r = put_output(&s, tok, &run, "final_report", "passed_criteria=true", bad);
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_upload"),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        s.get(&format!("/api/v1/runs/{run}/outputs"), &w.ao_token)
            .json,
        json!([])
    );
    assert_eq!(
        s.get(&format!("/api/v1/runs/{run}/report"), &w.ao_token)
            .status,
        404
    );
    let stored = s
        .block_on(s.state.blobs().list(&format!("runs/{run}/")))
        .unwrap();
    assert!(
        stored.is_empty(),
        "no blob left by refused outputs: {stored:?}"
    );

    // Good outputs.
    put_output(
        &s,
        tok,
        &run,
        "final_report",
        "passed_criteria=true",
        GOOD_REPORT,
    )
    .expect(201);
    let again = put_output(
        &s,
        tok,
        &run,
        "final_report",
        "passed_criteria=true&name=second.json",
        GOOD_REPORT,
    );
    assert_eq!(again.code(), "already_exists");
    let model = vec![7u8; 300_000];
    put_output(&s, tok, &run, "trained_model", "name=model.sealed", &model).expect(201);
    let dup = put_output(
        &s,
        tok,
        &run,
        "trained_model",
        "name=model.sealed",
        b"other",
    );
    assert_eq!(dup.code(), "already_exists");
    put_output(
        &s,
        tok,
        &run,
        "algorithm_report",
        "name=summary.json",
        b"{\"rows\": 10}",
    )
    .expect(201);

    // Listing: everyone who sees the run; content flags per party.
    let list = |token: &str| {
        let r = s
            .get(&format!("/api/v1/runs/{run}/outputs"), token)
            .expect(200);
        r.json
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["id"].as_str().unwrap().to_string(),
                    o["content_visible"].as_bool().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let ao = list(&w.ao_token);
    assert!(ao.contains(&("trained_model:model.sealed".into(), true)));
    assert!(ao.contains(&("algorithm_report:summary.json".into(), false)));
    let ds = list(&w.ds_token);
    assert!(ds.contains(&("trained_model:model.sealed".into(), false)));
    assert!(ds.contains(&("final_report:final-report.json".into(), false)));
    assert!(ds.contains(&("algorithm_report:summary.json".into(), true)));
    assert!(list(&s.admin_token).iter().all(|(_, v)| !v));
    assert_eq!(
        s.get(&format!("/api/v1/runs/{run}/outputs"), &other.w.ao_token)
            .status,
        404
    );

    // Content.
    let content =
        |token: &str, id: &str| s.get(&format!("/api/v1/runs/{run}/outputs/{id}/content"), token);
    assert_eq!(
        content(&w.ao_token, "trained_model:model.sealed")
            .expect(200)
            .bytes,
        model
    );
    assert_eq!(
        content(&w.ds_token, "trained_model:model.sealed").status,
        403
    );
    assert_eq!(
        content(&w.ds_token, "final_report:final-report.json").status,
        403
    );
    assert_eq!(
        content(&s.admin_token, "trained_model:model.sealed").status,
        403
    );
    assert_eq!(
        content(&other.w.ao_token, "trained_model:model.sealed").status,
        404
    );
    assert_eq!(
        content(&w.ds_token, "algorithm_report:summary.json")
            .expect(200)
            .bytes,
        b"{\"rows\": 10}"
    );
    assert_eq!(
        content(&w.ao_token, "algorithm_report:summary.json").status,
        403
    );
    assert_eq!(content(&w.ao_token, "trained_model:nope").status, 404);
    assert_eq!(content(&w.ao_token, "nonsense").status, 404);
    // The report: the AO's only.
    let rep = s
        .get(&format!("/api/v1/runs/{run}/report"), &w.ao_token)
        .expect(200);
    assert_eq!(rep.bytes, GOOD_REPORT);
    for token in [&w.ds_token, &s.admin_token] {
        assert_eq!(
            s.get(&format!("/api/v1/runs/{run}/report"), token).status,
            403
        );
    }
    assert_eq!(
        s.get(&format!("/api/v1/runs/{run}/report"), &other.w.ao_token)
            .status,
        404
    );
    assert_eq!(
        s.call(
            "GET",
            &format!("/api/v1/runs/{run}/report"),
            None,
            Body::None
        )
        .status,
        401
    );

    // After completion no more outputs.
    agent_state(&s, tok, &run, "completed").expect(200);
    let r = put_output(&s, tok, &run, "performance_report", "", b"{}");
    assert_eq!(r.status, 409);
}

#[test]
fn a_run_without_criteria_releases_no_final_report() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "nc");
    let w = &fx.w;
    // A training algorithm, configured without criteria.
    let store = s.state.store();
    let pid: sealroom_types::ProjectId = fx.project.parse().unwrap();
    let art = s
        .block_on(store.create_artifact(sealroom_store::NewArtifact {
            project_id: pid,
            kind: sealroom_types::ArtifactKind::Algorithm,
            owner_org_id: w.ao_org.parse().unwrap(),
            name: sealroom_types::Name::parse("Trainer").unwrap(),
            description: String::new(),
            algorithm_type: Some(sealroom_types::AlgorithmType::Training),
            created_by: fx.ao_user,
        }))
        .unwrap();
    let v = s
        .block_on(store.add_version(sealroom_store::NewVersion {
            artifact_id: art.id,
            tag: sealroom_types::VersionTag::parse("t1").unwrap(),
            description: String::new(),
            uploaded_by: fx.ao_user,
            blob: None,
            detail: sealroom_store::NewVersionDetail::Algorithm {
                wcek_fingerprint: None,
            },
        }))
        .unwrap();
    let rc = s
        .post(
            &format!("/api/v1/projects/{}/run-configs", fx.project),
            &w.ao_token,
            json!({ "name": "Training", "algorithm_version_id": v.id.to_string(), "dataset_version_id": fx.dataset }),
        )
        .expect(201)
        .json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = request(&s, &fx, &rc);
    s.post(
        &format!("/api/v1/runs/{run}/initiate"),
        &w.ds_token,
        json!({}),
    )
    .expect(200);
    let b = s
        .post("/api/v1/agent/claim", &w.site_token, json!({}))
        .expect(200);
    assert_eq!(b.json["criteria_json"], serde_json::Value::Null);
    assert_eq!(b.json["algorithm"]["package_size"], serde_json::Value::Null);
    // No package to download.
    let r = s.get(&format!("/api/v1/agent/runs/{run}/package"), &w.site_token);
    assert_eq!(r.code(), "precondition_failed");
    for st in ["runtime_build", "workload_launch", "running"] {
        agent_state(&s, &w.site_token, &run, st).expect(200);
    }
    let r = put_output(
        &s,
        &w.site_token,
        &run,
        "final_report",
        "passed_criteria=true",
        GOOD_REPORT,
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_upload"),
        "{}",
        r.text()
    );
    put_output(
        &s,
        &w.site_token,
        &run,
        "trained_model",
        "",
        b"sealed weights",
    )
    .expect(201);
}

#[test]
fn the_sweeper_fails_runs_whose_agent_went_silent() {
    let config = ControlConfig {
        heartbeat_timeout: Duration::from_millis(1500),
        ..ControlConfig::default()
    };
    let s = TestServer::start(Db::Sqlite, config).unwrap();
    // Spawned from inside the server's runtime; the handle is dropped (the task keeps running).
    s.block_on(async {
        drop(sealroom_control::sweeper::spawn(s.state.clone()));
    });
    let fx = setup(&s, "hb");
    let w = &fx.w;
    let run = claimed_run(&s, &fx, "Cfg", &fx.alg, "running");
    // Heartbeats keep it alive past the timeout.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(3000) {
        let hb = agent_post(
            &s,
            &w.site_token,
            &format!("/api/v1/agent/runs/{run}/heartbeat"),
            json!({}),
        )
        .expect(200);
        assert_eq!(hb.json["state"], "workload_launch");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Silence: failed within a few ticks.
    let t = Instant::now();
    let page = loop {
        let page = s
            .get(&format!("/api/v1/runs/{run}"), &w.ds_token)
            .expect(200);
        if page.json["run"]["state"] == "failed" {
            break page;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "not failed: {}",
            page.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "not before the timeout"
    );
    let last = page.json["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["message"], "the agent stopped sending heartbeats");
    assert_eq!(last["actor"], json!({ "type": "system" }));
    assert!(notification_kinds(&s, fx.ao_user).contains(&"run_failed".to_string()));
    let hb = agent_post(
        &s,
        &w.site_token,
        &format!("/api/v1/agent/runs/{run}/heartbeat"),
        json!({}),
    )
    .expect(200);
    assert_eq!(hb.json, json!({ "state": "failed", "cancel": false }));
    // The configuration is free again.
    let rc = page.json["run"]["run_config_id"].as_str().unwrap();
    s.post(
        &format!("/api/v1/run-configs/{rc}/runs"),
        &w.ao_token,
        json!({ "vcpus": 1, "ram_gib": 1 }),
    )
    .expect(201);
}
