//! Run configurations, run requests and the run workflow through the REST API, on SQLite and
//! PostgreSQL: AO configures and requests, DS rejects / initiates / cancels, the agent claims,
//! reports its stages, logs and outputs, and each party reads what is theirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod run_fixture;

use common::{world, Body, TestServer};
use run_fixture::*;
use serde_json::json;

/// The whole workflow from an existing project; used on both databases.
fn workflow(s: &TestServer, t: &str) {
    let fx = setup(s, t);
    let w = &fx.w;
    let p = &fx.project;

    // The AO makes a run configuration.
    let rc = run_config(s, &fx, "ICU validation", &fx.alg, &fx.dataset);
    let got = s
        .get(&format!("/api/v1/run-configs/{rc}"), &w.ds_token)
        .expect(200);
    assert_eq!(got.json["algorithm_version_id"], fx.alg.as_str());
    assert_eq!(got.json["criteria_version_id"], fx.criteria.as_str());
    let list = s
        .get(&format!("/api/v1/projects/{p}/run-configs"), &s.admin_token)
        .expect(200);
    assert_eq!(list.json.as_array().unwrap().len(), 1);

    // The same pair again: 409.
    let dup = s.post(
        &format!("/api/v1/projects/{p}/run-configs"),
        &w.ao_token,
        json!({ "name": "Again", "algorithm_version_id": fx.alg, "dataset_version_id": fx.dataset,
                "criteria_version_id": fx.criteria }),
    );
    assert_eq!(dup.status, 409, "{}", dup.text());
    assert_eq!(dup.code(), "duplicate_run_configuration");

    // A request, which the DS rejects with a reason: the AO is notified.
    let r1 = request(s, &fx, &rc);
    assert!(notification_kinds(s, fx.ds_user).contains(&"run_requested".to_string()));
    let rej = s
        .post(
            &format!("/api/v1/runs/{r1}/reject"),
            &w.ds_token,
            json!({ "reason": "the learning rate is too high for this cohort" }),
        )
        .expect(200);
    assert_eq!(rej.json["state"], "rejected");
    assert_eq!(
        rej.json["reason"],
        "the learning rate is too high for this cohort"
    );
    let ao_notes = s
        .block_on(
            s.state
                .store()
                .list_notifications(fx.ao_user, sealroom_types::Timestamp::now()),
        )
        .unwrap();
    let note = ao_notes
        .iter()
        .find(|n| n.kind == sealroom_types::NotificationKind::RunRejected)
        .expect("the AO is told of the rejection");
    assert!(
        note.message.contains("too high for this cohort"),
        "{}",
        note.message
    );

    // A second request; nothing to claim before the DS initiates it.
    let r2 = request(s, &fx, &rc);
    s.post("/api/v1/agent/claim", &w.site_token, json!({}))
        .expect(204);
    let init = s
        .post(
            &format!("/api/v1/runs/{r2}/initiate"),
            &w.ds_token,
            json!({}),
        )
        .expect(200);
    assert_eq!(init.json["state"], "initiated");

    // The agent claims it and receives its bundle.
    let b = s
        .post("/api/v1/agent/claim?wait=5", &w.site_token, json!({}))
        .expect(200);
    assert_eq!(b.json["run"]["id"], r2.as_str());
    assert_eq!(b.json["run"]["site_id"], w.site_id.as_str());
    assert_eq!(b.json["project"]["technology"], "simulated");
    assert_eq!(b.json["run_config"]["id"], rc.as_str());
    assert!(b.json["dataset"]["url"]
        .as_str()
        .unwrap()
        .contains("sv=sealroom1"));
    assert_eq!(b.json["criteria_json"], run_fixture::CRITERIA);
    assert_eq!(b.json["params"][0]["name"], "epochs");
    assert_eq!(b.json["params"][0]["value"], "3");
    assert_eq!(b.json["compute"]["vcpus"], 2);
    assert_eq!(b.json["algorithm"]["algorithm_type"], "validation");
    assert_eq!(b.json["algorithm"]["package_size"], fx.package.len() as u64);
    assert_eq!(b.json["keys"].as_array().unwrap().len(), 2);
    // Claimed once only.
    s.post("/api/v1/agent/claim", &w.site_token, json!({}))
        .expect(204);

    // The package.
    let pkg = s
        .get(&format!("/api/v1/agent/runs/{r2}/package"), &w.site_token)
        .expect(200);
    assert_eq!(pkg.bytes, fx.package);

    // Stages, heartbeat, logs.
    for st in ["runtime_build", "workload_launch", "running"] {
        let r = agent_state(s, &w.site_token, &r2, st).expect(200);
        assert_eq!(r.json["state"], st);
    }
    let hb = agent_post(
        s,
        &w.site_token,
        &format!("/api/v1/agent/runs/{r2}/heartbeat"),
        json!({}),
    )
    .expect(200);
    assert_eq!(hb.json, json!({ "state": "running", "cancel": false }));
    let logs = agent_post(
        s,
        &w.site_token,
        &format!("/api/v1/agent/runs/{r2}/logs"),
        json!({ "lines": [
            { "stream": "stage", "line": "package verified" },
            { "stream": "algorithm", "line": "epoch 1: loss 0.4", "at": "2030-01-01T00:00:00Z" },
            { "stream": "stage", "line": "algorithm started" },
        ]}),
    )
    .expect(200);
    assert_eq!(logs.json["last_seq"], 3);
    let ds_logs = s
        .get(&format!("/api/v1/runs/{r2}/logs"), &w.ds_token)
        .expect(200);
    assert_eq!(ds_logs.json["lines"].as_array().unwrap().len(), 3);
    let ao_logs = s
        .get(&format!("/api/v1/runs/{r2}/logs"), &w.ao_token)
        .expect(200);
    let ao_lines: Vec<&str> = ao_logs.json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(ao_lines, ["package verified", "algorithm started"]);

    // The final report: a failing one is refused, a passing one is kept.
    let bad = put_output(
        s,
        &w.site_token,
        &r2,
        "final_report",
        "passed_criteria=true",
        BAD_REPORTS[0],
    );
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert_eq!(bad.code(), "invalid_upload");
    let good = put_output(
        s,
        &w.site_token,
        &r2,
        "final_report",
        "passed_criteria=true",
        GOOD_REPORT,
    )
    .expect(201);
    assert_eq!(good.json["id"], "final_report:final-report.json");
    agent_state(s, &w.site_token, &r2, "completed").expect(200);
    assert!(notification_kinds(s, fx.ds_user).contains(&"run_completed".to_string()));
    assert!(notification_kinds(s, fx.ao_user).contains(&"run_completed".to_string()));

    // The AO reads the report verbatim; the DS sees only that it passed, its size and hash.
    let rep = s
        .get(&format!("/api/v1/runs/{r2}/report"), &w.ao_token)
        .expect(200);
    assert_eq!(rep.bytes, GOOD_REPORT);
    assert_eq!(rep.header("content-type"), Some("application/json"));
    let ds_rep = s.get(&format!("/api/v1/runs/{r2}/report"), &w.ds_token);
    assert_eq!(ds_rep.status, 403);
    let outs = s
        .get(&format!("/api/v1/runs/{r2}/outputs"), &w.ds_token)
        .expect(200);
    let o = &outs.json[0];
    assert_eq!(o["kind"], "final_report");
    assert_eq!(o["passed_criteria"], true);
    assert_eq!(o["size"], GOOD_REPORT.len() as u64);
    assert_eq!(o["content_visible"], false);
    assert_eq!(o["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        outs.json.as_array().unwrap().len(),
        1,
        "the failing report was never recorded"
    );

    // The run page shows the history.
    let page = s
        .get(&format!("/api/v1/runs/{r2}"), &w.ao_token)
        .expect(200);
    let states: Vec<&str> = page.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "requested",
            "initiated",
            "runtime_build",
            "workload_launch",
            "running",
            "completed"
        ]
    );

    // Cancel: a third request, initiated and claimed, then cancelled by the DS; the agent's
    // heartbeat says so and its next stage is refused.
    let r3 = request(s, &fx, &rc);
    s.post(
        &format!("/api/v1/runs/{r3}/initiate"),
        &w.ds_token,
        json!({}),
    )
    .expect(200);
    s.post("/api/v1/agent/claim", &w.site_token, json!({}))
        .expect(200);
    agent_state(s, &w.site_token, &r3, "runtime_build").expect(200);
    let c = s
        .post(
            &format!("/api/v1/runs/{r3}/cancel"),
            &w.ds_token,
            json!({ "reason": "the cohort changed" }),
        )
        .expect(200);
    assert_eq!(c.json["state"], "cancelled");
    let hb = agent_post(
        s,
        &w.site_token,
        &format!("/api/v1/agent/runs/{r3}/heartbeat"),
        json!({}),
    )
    .expect(200);
    assert_eq!(hb.json, json!({ "state": "cancelled", "cancel": true }));
    let late = agent_state(s, &w.site_token, &r3, "workload_launch");
    assert_eq!(late.status, 409);
    assert_eq!(late.code(), "invalid_state_transition");

    // The runs list, newest first.
    let runs = s
        .get(
            &format!("/api/v1/projects/{p}/runs?run_config_id={rc}"),
            &w.ds_token,
        )
        .expect(200);
    let ids: Vec<&str> = runs
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [r3.as_str(), r2.as_str(), r1.as_str()]);
}

#[test]
fn workflow_on_sqlite() {
    let s = TestServer::sqlite();
    workflow(&s, "sq");
}

#[test]
fn workflow_on_postgres() {
    let Some(s) = TestServer::postgres() else {
        return;
    };
    workflow(&s, "pg");
}

#[test]
fn run_configuration_rules_and_callers() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "rc");
    let other = setup(&s, "xo");
    let w = &fx.w;
    let p = &fx.project;
    let path = format!("/api/v1/projects/{p}/run-configs");
    let body = json!({ "name": "Cfg", "algorithm_version_id": fx.alg, "dataset_version_id": fx.dataset,
                       "criteria_version_id": fx.criteria });
    let count = |s: &TestServer| {
        s.get(&path, &s.admin_token)
            .expect(200)
            .json
            .as_array()
            .unwrap()
            .len()
    };

    // Callers: DS 403, admin 403, member of another project 404, anonymous 401, site 403.
    for (token, status) in [
        (Some(w.ds_token.as_str()), 403),
        (Some(s.admin_token.as_str()), 403),
        (Some(other.w.ao_token.as_str()), 404),
        (None, 401),
        (Some(w.site_token.as_str()), 403),
    ] {
        let r = s.call("POST", &path, token, Body::Json(body.clone()));
        assert_eq!(r.status, status, "{token:?}: {}", r.text());
    }
    assert_eq!(
        s.get(&path, &other.w.ds_token).status,
        404,
        "outsiders do not see the list"
    );
    assert_eq!(count(&s), 0);

    // Bad input, each with its code and nothing created.
    let bad = |b: serde_json::Value, status: u16, code: &str| {
        let r = s.post(&path, &w.ao_token, b);
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.code(), code, "{}", r.text());
    };
    bad(
        json!({ "name": "", "algorithm_version_id": fx.alg, "dataset_version_id": fx.dataset }),
        400,
        "invalid_name",
    );
    bad(
        json!({ "name": "X", "algorithm_version_id": "nope", "dataset_version_id": fx.dataset }),
        400,
        "invalid_id",
    );
    bad(
        json!({ "name": "X", "algorithm_version_id": fx.alg, "dataset_version_id": fx.dataset, "extra": 1 }),
        400,
        "malformed_json",
    );
    // A validation algorithm without criteria.
    bad(
        json!({ "name": "X", "algorithm_version_id": fx.alg, "dataset_version_id": fx.dataset }),
        400,
        "invalid_request",
    );
    // Another project's versions: 404.
    bad(
        json!({ "name": "X", "algorithm_version_id": other.alg, "dataset_version_id": fx.dataset,
                "criteria_version_id": fx.criteria }),
        404,
        "not_found",
    );
    bad(
        json!({ "name": "X", "algorithm_version_id": fx.alg, "dataset_version_id": fx.dataset,
                "criteria_version_id": other.criteria }),
        404,
        "not_found",
    );
    let unknown = sealroom_types::VersionId::new().to_string();
    bad(
        json!({ "name": "X", "algorithm_version_id": unknown, "dataset_version_id": fx.dataset,
                "criteria_version_id": fx.criteria }),
        404,
        "not_found",
    );
    // Kinds swapped.
    bad(
        json!({ "name": "X", "algorithm_version_id": fx.dataset, "dataset_version_id": fx.alg,
                "criteria_version_id": fx.criteria }),
        400,
        "invalid_request",
    );
    // A dataset URL that expires within 24 hours: 422.
    let soon = dataset_version(&s, &fx, "soon", 3600);
    bad(
        json!({ "name": "X", "algorithm_version_id": fx.alg, "dataset_version_id": soon,
                "criteria_version_id": fx.criteria }),
        422,
        "dataset_url_expired",
    );
    assert_eq!(count(&s), 0);

    // Criteria not yet accepted by the DS: 409.
    let store = s.state.store();
    let crit_art = s
        .block_on(store.list_artifacts(
            p.parse().unwrap(),
            Some(sealroom_types::ArtifactKind::ValidationCriteria),
        ))
        .unwrap()[0]
        .id;
    let unaccepted = s
        .block_on(store.add_version(sealroom_store::NewVersion {
            artifact_id: crit_art,
            tag: sealroom_types::VersionTag::parse("c2").unwrap(),
            description: String::new(),
            uploaded_by: fx.ao_user,
            blob: None,
            detail: sealroom_store::NewVersionDetail::ValidationCriteria {
                criteria_json: CRITERIA.into(),
            },
        }))
        .unwrap()
        .id;
    bad(
        json!({ "name": "X", "algorithm_version_id": fx.alg, "dataset_version_id": fx.dataset,
                "criteria_version_id": unaccepted.to_string() }),
        409,
        "criteria_not_accepted",
    );

    // Success, then the reads: members and admin; outsiders and unknown IDs 404.
    let rc = run_config(&s, &fx, "Cfg", &fx.alg, &fx.dataset);
    for token in [&w.ao_token, &w.ds_token, &s.admin_token] {
        s.get(&format!("/api/v1/run-configs/{rc}"), token)
            .expect(200);
    }
    let r = s.get(&format!("/api/v1/run-configs/{rc}"), &other.w.ao_token);
    assert_eq!(r.status, 404);
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("run configuration"),
        "{}",
        r.text()
    );
    assert!(
        !r.text().contains(p.as_str()),
        "the 404 does not name the project"
    );
    let unknown_rc = sealroom_types::RunConfigId::new();
    assert_eq!(
        s.get(&format!("/api/v1/run-configs/{unknown_rc}"), &w.ao_token)
            .status,
        404
    );
    assert_eq!(
        s.get("/api/v1/run-configs/not-an-id", &w.ao_token).code(),
        "invalid_id"
    );
    assert_eq!(
        s.get(&format!("/api/v1/run-configs/{rc}"), &w.site_token)
            .status,
        403
    );

    // The denial of the outsider was audited.
    let audit = s.block_on(store.list_audit(0, 1000)).unwrap();
    assert!(audit.iter().any(
        |e| e.action == "run_config.read" && e.outcome == sealroom_types::AuditOutcome::Denied
    ));
    assert!(audit
        .iter()
        .any(|e| e.action == "run_config.create"
            && e.outcome == sealroom_types::AuditOutcome::Success));

    // A deactivated project is read-only.
    s.block_on(store.set_project_state(
        p.parse().unwrap(),
        sealroom_types::ProjectState::Deactivated,
    ))
    .unwrap();
    bad(
        json!({ "name": "Y", "algorithm_version_id": fx.alg2, "dataset_version_id": fx.dataset,
                "criteria_version_id": fx.criteria }),
        409,
        "project_not_active",
    );
    s.get(&format!("/api/v1/run-configs/{rc}"), &w.ao_token)
        .expect(200);
}

#[test]
fn run_request_rules_and_callers() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "rq");
    let other = setup(&s, "ro");
    let w = &fx.w;
    let rc = run_config(&s, &fx, "Cfg", &fx.alg, &fx.dataset);
    let path = format!("/api/v1/run-configs/{rc}/runs");
    let runs = |s: &TestServer| {
        s.get(
            &format!("/api/v1/projects/{}/runs", fx.project),
            &s.admin_token,
        )
        .expect(200)
        .json
        .as_array()
        .unwrap()
        .len()
    };
    let good = json!({ "params": { "epochs": "3" }, "vcpus": 1, "ram_gib": 2 });

    for (token, status) in [
        (Some(w.ds_token.as_str()), 403),
        (Some(s.admin_token.as_str()), 403),
        (Some(other.w.ao_token.as_str()), 404),
        (None, 401),
        (Some(w.site_token.as_str()), 403),
    ] {
        let r = s.call("POST", &path, token, Body::Json(good.clone()));
        assert_eq!(r.status, status, "{token:?}: {}", r.text());
    }

    let bad = |b: serde_json::Value, status: u16, code: &str, mentions: &str| {
        let r = s.post(&path, &w.ao_token, b);
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.code(), code, "{}", r.text());
        assert!(
            r.json["message"].as_str().unwrap().contains(mentions),
            "{}",
            r.text()
        );
    };
    bad(
        json!({ "params": { "9lives": "x" }, "vcpus": 1, "ram_gib": 2 }),
        400,
        "invalid_parameter",
        "9lives",
    );
    bad(
        json!({ "params": { "a__b": "x" }, "vcpus": 1, "ram_gib": 2 }),
        400,
        "invalid_parameter",
        "a__b",
    );
    bad(
        json!({ "params": { "ESCROW_RUN_ID": "x" }, "vcpus": 1, "ram_gib": 2 }),
        400,
        "invalid_parameter",
        "ESCROW_RUN_ID",
    );
    bad(
        json!({ "params": { "ok": "x\u{0}" }, "vcpus": 1, "ram_gib": 2 }),
        400,
        "invalid_parameter",
        "ok",
    );
    bad(
        json!({ "params": { "n": 3 }, "vcpus": 1, "ram_gib": 2 }),
        400,
        "malformed_json",
        "",
    );
    bad(
        json!({ "params": {}, "vcpus": 3, "ram_gib": 5 }),
        400,
        "invalid_compute_size",
        "2/4",
    );
    // Duplicate names in the raw JSON are refused, not merged.
    let dup = s.call(
        "POST",
        &path,
        Some(&w.ao_token),
        Body::Raw(
            "application/json",
            br#"{"params":{"epochs":"1","epochs":"2"},"vcpus":1,"ram_gib":2}"#.to_vec(),
        ),
    );
    assert_eq!(dup.code(), "invalid_parameter", "{}", dup.text());
    assert_eq!(runs(&s), 0, "no bad request left a run");

    let r = s.post(&path, &w.ao_token, good.clone()).expect(201);
    assert_eq!(r.json["state"], "requested");
    assert_eq!(
        r.json["params"],
        json!([{ "name": "epochs", "value": "3" }])
    );
    let run = r.json["id"].as_str().unwrap().to_string();
    // One open request per configuration.
    let second = s.post(&path, &w.ao_token, good.clone());
    assert_eq!(second.status, 409);
    assert_eq!(second.code(), "run_already_open");
    assert_eq!(runs(&s), 1);
    // Another configuration may have its own.
    let rc2 = run_config(&s, &fx, "Cfg 2", &fx.alg2, &fx.dataset);
    s.post(
        &format!("/api/v1/run-configs/{rc2}/runs"),
        &w.ao_token,
        good.clone(),
    )
    .expect(201);

    // Reading the run: members and admin; outsiders and unknown IDs 404.
    for token in [&w.ao_token, &w.ds_token, &s.admin_token] {
        s.get(&format!("/api/v1/runs/{run}"), token).expect(200);
    }
    assert_eq!(
        s.get(&format!("/api/v1/runs/{run}"), &other.w.ds_token)
            .status,
        404
    );
    let unknown = sealroom_types::RunId::new();
    assert_eq!(
        s.get(&format!("/api/v1/runs/{unknown}"), &w.ao_token)
            .status,
        404
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/runs/{unknown}/initiate"),
            &w.ds_token,
            json!({})
        )
        .status,
        404
    );
    assert_eq!(
        s.get(
            &format!("/api/v1/projects/{}/runs?run_config_id=zzz", fx.project),
            &w.ao_token
        )
        .code(),
        "invalid_id"
    );

    // Initiate / reject / cancel are the DS's: AO 403, admin 403, outsider 404.
    for action in ["initiate", "reject", "cancel"] {
        for (token, status) in [
            (&w.ao_token, 403),
            (&s.admin_token, 403),
            (&other.w.ds_token, 404),
        ] {
            let r = s.post(
                &format!("/api/v1/runs/{run}/{action}"),
                token,
                json!({ "reason": "because" }),
            );
            assert_eq!(r.status, status, "{action}: {}", r.text());
        }
    }
    // A reason is required for a rejection, and bounded.
    for reason in ["", "   ", &"x".repeat(1001)] {
        let r = s.post(
            &format!("/api/v1/runs/{run}/reject"),
            &w.ds_token,
            json!({ "reason": reason }),
        );
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let r = s.post(
        &format!("/api/v1/runs/{run}/reject"),
        &w.ds_token,
        json!({}),
    );
    assert_eq!(r.code(), "malformed_json");
    let page = s
        .get(&format!("/api/v1/runs/{run}"), &w.ds_token)
        .expect(200);
    assert_eq!(page.json["run"]["state"], "requested", "nothing changed");
    // A run not initiated cannot be claimed.
    s.post("/api/v1/agent/claim", &w.site_token, json!({}))
        .expect(204);

    // A paused project takes no new requests or initiations.
    let pid = fx.project.parse().unwrap();
    s.block_on(
        s.state
            .store()
            .set_project_state(pid, sealroom_types::ProjectState::Paused),
    )
    .unwrap();
    let r = s.post(
        &format!("/api/v1/runs/{run}/initiate"),
        &w.ds_token,
        json!({}),
    );
    assert_eq!(r.code(), "project_not_active", "{}", r.text());
    s.block_on(
        s.state
            .store()
            .set_project_state(pid, sealroom_types::ProjectState::Active),
    )
    .unwrap();
    // Cancelling a request frees the configuration.
    s.post(
        &format!("/api/v1/runs/{run}/cancel"),
        &w.ds_token,
        json!({}),
    )
    .expect(200);
    s.post(&path, &w.ao_token, good).expect(201);
}

#[test]
fn another_data_steward_cannot_act_on_or_read_a_run() {
    let s = TestServer::sqlite();
    let fx = setup(&s, "ms");
    // A second DS organization joins the project.
    let w2 = world(&s, "ms2");
    s.block_on(s.state.store().add_member(
        fx.project.parse().unwrap(),
        w2.ds_org.parse().unwrap(),
        sealroom_types::Role::DataSteward,
    ))
    .unwrap();
    let rc = run_config(&s, &fx, "Cfg", &fx.alg, &fx.dataset);
    let run = request(&s, &fx, &rc);
    let r = s.post(
        &format!("/api/v1/runs/{run}/initiate"),
        &w2.ds_token,
        json!({}),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    s.get(&format!("/api/v1/runs/{run}"), &w2.ds_token)
        .expect(200);
    // Its site cannot claim the run either.
    s.post("/api/v1/agent/claim", &w2.site_token, json!({}))
        .expect(204);
    s.post(
        &format!("/api/v1/runs/{run}/initiate"),
        &fx.w.ds_token,
        json!({}),
    )
    .expect(200);
    s.post("/api/v1/agent/claim", &w2.site_token, json!({}))
        .expect(204);
    let l = s.get(
        &format!("/api/v1/runs/{run}/logs?stream=algorithm"),
        &w2.ds_token,
    );
    assert_eq!(l.status, 403);
    s.get(
        &format!("/api/v1/runs/{run}/logs?stream=stage"),
        &w2.ds_token,
    )
    .expect(200);
}
