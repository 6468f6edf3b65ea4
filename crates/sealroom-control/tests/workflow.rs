//! The collaboration through the REST API, as an admin and users of two organizations, from
//! project creation to "run initiated" — on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{world, Body, Resp, TestServer};
use sealroom_envelope::kek::KekPublic;
use sealroom_envelope::Cek;
use serde_json::json;

fn seal(bytes: &[u8], cek: &Cek) -> Vec<u8> {
    let (out, _) = sealroom_envelope::stream::seal(
        &mut &bytes[..],
        std::io::Cursor::new(Vec::new()),
        cek,
        &(),
    )
    .unwrap();
    out.into_inner()
}

/// An algorithm package as a tar: a plaintext Dockerfile and entrypoint, a sealed weights file,
/// and the secrets manifest naming it.
fn package_tar(cek: &Cek) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    };
    add(
        "Dockerfile",
        b"FROM localhost/sealroom-python:test\nCOPY . /app\nENTRYPOINT [\"python3\", \"/app/run.py\"]\n",
    );
    add("run.py", b"print('hello from the enclave')\n");
    add("weights.bin", &seal(&[7u8; 5000], cek));
    add("secrets.json", br#"{"files":["weights.bin"]}"#);
    b.into_inner().unwrap()
}

fn id(r: &Resp) -> String {
    r.json["id"].as_str().unwrap().to_string()
}

fn workflow(s: &TestServer) {
    let w = world(s, "wf");

    // The admin creates the project; each side gets its KEK.
    let p = s
        .post(
            "/api/v1/projects",
            &s.admin_token,
            json!({
                "name": "Sepsis model validation",
                "description": "Validate the AO's sepsis model on the hospital's ICU data",
                "technology": "simulated",
                "members": [
                    { "org_id": w.ao_org, "role": "algorithm_owner" },
                    { "org_id": w.ds_org, "role": "data_steward" }
                ]
            }),
        )
        .expect(201);
    let project = p.json["project"]["id"].as_str().unwrap().to_string();
    let listed = s.get("/api/v1/projects", &w.ao_token).expect(200);
    assert_eq!(listed.json["items"].as_array().unwrap().len(), 1);

    let mut ceks = Vec::new();
    for (token, role) in [(&w.ao_token, "ao"), (&w.ds_token, "ds")] {
        let kek = s
            .get(
                &format!("/api/v1/projects/{project}/keys/{role}/kek"),
                token,
            )
            .expect(200);
        let disposition = kek.header("content-disposition").unwrap().to_string();
        assert!(
            disposition.contains(&format!("-{role}.der")),
            "{disposition}"
        );
        let cek = Cek::generate().unwrap();
        let wcek = KekPublic::from_der(&kek.bytes).unwrap().wrap(&cek).unwrap();
        s.call(
            "POST",
            &format!("/api/v1/projects/{project}/keys/{role}/wcek"),
            Some(token),
            Body::Raw("application/octet-stream", wcek),
        )
        .expect(201);
        ceks.push(cek);
    }
    let (ao_cek, ds_cek) = (&ceks[0], &ceks[1]);

    // The AO: algorithm package, validation criteria.
    let alg = s
        .post(
            &format!("/api/v1/projects/{project}/artifacts"),
            &w.ao_token,
            json!({ "kind": "algorithm", "name": "Sepsis model", "description": "XGBoost", "algorithm_type": "validation" }),
        )
        .expect(201);
    let alg_v = s
        .call(
            "POST",
            &format!(
                "/api/v1/artifacts/{}/versions/upload?tag=v1&description=first&file_name=package.tar",
                id(&alg)
            ),
            Some(&w.ao_token),
            Body::Raw("application/octet-stream", package_tar(ao_cek)),
        )
        .expect(201);
    let alg_v = id(&alg_v);
    let crit = s
        .post(
            &format!("/api/v1/projects/{project}/artifacts"),
            &w.ao_token,
            json!({ "kind": "validation_criteria", "name": "Report schema", "description": "" }),
        )
        .expect(201);
    let crit_v = s
        .post(
            &format!("/api/v1/artifacts/{}/versions", id(&crit)),
            &w.ao_token,
            json!({ "tag": "v1", "description": "", "criteria": {
                "accuracy": { "type": "float", "min": 0, "max": 1, "required": true },
                "sensitivity": { "type": "float", "min": 0, "max": 1, "required": true }
            }}),
        )
        .expect(201);
    let crit_v = id(&crit_v);

    // The DS: accepts the criteria, hosts its sealed dataset on the built-in store, registers
    // the dataset with a signed URL, certifies it.
    s.post(
        &format!("/api/v1/versions/{crit_v}/accept"),
        &w.ds_token,
        json!({}),
    )
    .expect(200);
    s.call(
        "PUT",
        &format!("/api/v1/projects/{project}/storage/icu/patients.csv"),
        Some(&w.ds_token),
        Body::Raw(
            "application/octet-stream",
            seal(b"age,lactate,sepsis\n71,4.1,1\n", ds_cek),
        ),
    )
    .expect(201);
    let signed = s
        .post(
            &format!("/api/v1/projects/{project}/storage/sign"),
            &w.ds_token,
            json!({ "prefix": "icu/", "expires_in_hours": 72 }),
        )
        .expect(200);
    let url = signed.json["url"].as_str().unwrap().to_string();
    let ds = s
        .post(
            &format!("/api/v1/projects/{project}/artifacts"),
            &w.ds_token,
            json!({ "kind": "dataset", "name": "ICU cohort", "description": "2019-2024" }),
        )
        .expect(201);
    let ds_v = s
        .post(
            &format!("/api/v1/artifacts/{}/versions", id(&ds)),
            &w.ds_token,
            json!({ "tag": "2024-q4", "description": "", "url": url }),
        )
        .expect(201);
    let ds_v = id(&ds_v);
    s.post(
        &format!("/api/v1/versions/{ds_v}/certify"),
        &w.ds_token,
        json!({}),
    )
    .expect(200);

    // The AO: run configuration and a run request with a parameter.
    let cfg = s
        .post(
            &format!("/api/v1/projects/{project}/run-configs"),
            &w.ao_token,
            json!({ "name": "Sepsis v1 on ICU", "description": "", "algorithm_version_id": alg_v,
                    "dataset_version_id": ds_v, "criteria_version_id": crit_v }),
        )
        .expect(201);
    let run = s
        .post(
            &format!("/api/v1/run-configs/{}/runs", id(&cfg)),
            &w.ao_token,
            json!({ "params": { "threshold": "0.5" }, "vcpus": 2, "ram_gib": 4 }),
        )
        .expect(201);
    let run = id(&run);

    // The DS is told, and initiates.
    let n = s.get("/api/v1/notifications", &w.ds_token).expect(200);
    assert!(
        n.text().contains(&run) || n.text().contains("run_requested"),
        "{}",
        n.text()
    );
    s.post(
        &format!("/api/v1/runs/{run}/initiate"),
        &w.ds_token,
        json!({}),
    )
    .expect(200);
    let page = s
        .get(&format!("/api/v1/runs/{run}"), &w.ao_token)
        .expect(200);
    assert_eq!(page.json["run"]["state"], "initiated");
    assert_eq!(page.json["run"]["params"][0]["name"], "threshold");
}

#[test]
fn workflow_on_sqlite() {
    workflow(&TestServer::sqlite());
}

#[test]
fn workflow_on_postgres() {
    if let Some(s) = TestServer::postgres() {
        workflow(&s);
    }
}
