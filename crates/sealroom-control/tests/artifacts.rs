//! Artifacts and versions through the REST API: each kind's happy path, who may do what, the
//! algorithm package's upload steps with real sealed files and WCEKs, and bad inputs that must
//! change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;

use common::{world, Body, Db, Resp, TestServer, World};
use sealroom_control::ControlConfig;
use sealroom_envelope::kek::KekPublic;
use sealroom_envelope::Cek;
use sealroom_store::{ArtifactStore, AuditStore, NewWcek, ProjectStore};
use sealroom_types::{ProjectId, Role};
use serde_json::{json, Value};

const OCTET: &str = "application/octet-stream";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";

fn id(r: &Resp) -> String {
    r.json["id"].as_str().expect("an id").to_string()
}

fn create_artifact(s: &TestServer, token: &str, p: &str, body: Value) -> Resp {
    s.post(&format!("/api/v1/projects/{p}/artifacts"), token, body)
}

fn upload(s: &TestServer, token: &str, artifact: &str, query: &str, bytes: Vec<u8>) -> Resp {
    s.call(
        "POST",
        &format!("/api/v1/artifacts/{artifact}/versions/upload?{query}"),
        Some(token),
        Body::Raw(OCTET, bytes),
    )
}

/// Every blob under a project.
fn blobs(s: &TestServer, p: &str) -> Vec<String> {
    s.block_on(s.state.blobs().list(&format!("projects/{p}/")))
        .unwrap()
        .into_iter()
        .map(|e| e.key.to_string())
        .collect()
}

fn versions(s: &TestServer, artifact: &str) -> usize {
    s.block_on(s.store.list_versions(artifact.parse().unwrap()))
        .unwrap()
        .len()
}

fn audited(s: &TestServer, action: &str, object: &str) -> bool {
    s.block_on(s.store.list_audit(0, 10_000))
        .unwrap()
        .iter()
        .any(|e| e.action == action && e.object.as_deref() == Some(object))
}

/// Seals bytes with a CEK, as `sealroom encrypt` does.
fn seal(cek: &Cek, plain: &[u8]) -> Vec<u8> {
    let (out, _) =
        sealroom_envelope::stream::seal(&mut &plain[..], Cursor::new(Vec::new()), cek, &())
            .unwrap();
    out.into_inner()
}

/// Wraps the CEK under the project's AO KEK and records it as the AO's latest WCEK.
fn upload_ao_wcek(s: &TestServer, w: &World, p: &str, cek: &Cek) {
    let pid: ProjectId = p.parse().unwrap();
    let rec = s
        .block_on(s.store.project_key(pid, Role::AlgorithmOwner))
        .unwrap();
    let wcek = KekPublic::from_der(&rec.public_der)
        .unwrap()
        .wrap(cek)
        .unwrap();
    s.block_on(s.store.add_wcek(NewWcek {
        project_id: pid,
        role: Role::AlgorithmOwner,
        wcek,
        cek_key_id: Some(cek.key_id().to_string()),
        uploaded_by: w.ao_user.parse().unwrap(),
    }))
    .unwrap();
}

/// A tar of `(path, bytes)` entries.
fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, &d[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// A package like examples/demo/algorithm, with `model.bin` sealed under `cek`.
fn package(cek: &Cek) -> Vec<u8> {
    tar_of(&[
        (
            "./Dockerfile",
            b"FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\nENTRYPOINT [\"run.sh\"]\n".to_vec(),
        ),
        ("./run.sh", b"#!/bin/sh\npython3 validate.py\n".to_vec()),
        ("./validate.py", b"print('hello')\n".to_vec()),
        ("./model.bin", seal(cek, &[7u8; 100_000])),
        ("./secrets.json", br#"{"files": ["model.bin"]}"#.to_vec()),
    ])
}

fn step<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["detail"]["upload_steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {v}"))
}

fn demo_criteria() -> Value {
    serde_json::from_str(include_str!("../../../examples/demo/criteria.json")).unwrap()
}

#[test]
fn documents_and_criteria() {
    let s = TestServer::sqlite();
    let w = world(&s, "d");
    let p = s.project(&w, "Docs project", "simulated");
    let other = world(&s, "o");
    let p2 = s.project(&other, "Other project", "simulated");

    // Only the kind's owner role creates an artifact.
    let spec_body = json!({ "kind": "data_specification", "name": "Chest X-ray spec", "description": "what we need" });
    for (token, status) in [
        (w.ds_token.as_str(), 403),
        (s.admin_token.as_str(), 403),
        (other.ao_token.as_str(), 404),
        (w.site_token.as_str(), 403),
    ] {
        let r = create_artifact(&s, token, &p, spec_body.clone());
        assert_eq!(r.status, status, "{}", r.text());
    }
    assert_eq!(
        s.call(
            "POST",
            &format!("/api/v1/projects/{p}/artifacts"),
            None,
            Body::Json(spec_body.clone())
        )
        .status,
        401
    );
    let spec = id(&create_artifact(&s, &w.ao_token, &p, spec_body.clone()).expect(201));
    assert_eq!(
        create_artifact(&s, &w.ao_token, &p, spec_body).code(),
        "already_exists"
    );
    let r = create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "data_specification", "name": "x", "colour": "red" }),
    );
    assert_eq!(r.code(), "malformed_json");

    // Upload a PDF.
    let v1 = upload(
        &s,
        &w.ao_token,
        &spec,
        "tag=v1&description=first",
        PDF.to_vec(),
    )
    .expect(201);
    assert_eq!(v1.json["version"], 1);
    assert_eq!(v1.json["detail"]["kind"], "data_specification");
    assert_eq!(v1.json["blob"]["file_name"], "data-specification.pdf");
    assert_eq!(v1.json["blob"]["size"], PDF.len());
    let v1_id = id(&v1);
    assert_eq!(blobs(&s, &p).len(), 1);

    // Wrong content type, wrong magic, duplicate tag, wrong role: nothing stored.
    let r = s.call(
        "POST",
        &format!("/api/v1/artifacts/{spec}/versions/upload?tag=v2"),
        Some(&w.ao_token),
        Body::Raw("application/pdf", PDF.to_vec()),
    );
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let r = upload(
        &s,
        &w.ao_token,
        &spec,
        "tag=v2",
        b"GIF89a not a document".to_vec(),
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_upload"),
        "{}",
        r.text()
    );
    let r = upload(&s, &w.ao_token, &spec, "tag=v1", PDF.to_vec());
    assert_eq!((r.status, r.code()), (409, "already_exists"));
    let r = upload(&s, &w.ds_token, &spec, "tag=v3", PDF.to_vec());
    assert_eq!(r.status, 403);
    let r = upload(&s, &other.ao_token, &spec, "tag=v3", PDF.to_vec());
    assert_eq!(r.status, 404);
    let r = upload(&s, &w.ao_token, &spec, "tag=", PDF.to_vec());
    assert_eq!(r.code(), "invalid_name");
    assert_eq!(versions(&s, &spec), 1);
    assert_eq!(blobs(&s, &p).len(), 1, "no blob is left behind");

    // DOCX and DOC are data specifications too; a file name can be given.
    let docx = b"PK\x03\x04\x14\x00\x06\x00docx body".to_vec();
    let v = upload(
        &s,
        &w.ao_token,
        &spec,
        "tag=v2&file_name=Spec%20v2.docx",
        docx,
    )
    .expect(201);
    assert_eq!(v.json["blob"]["file_name"], "Spec v2.docx");
    let doc = [
        &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
        b"ole",
    ]
    .concat();
    upload(&s, &w.ao_token, &spec, "tag=v3", doc).expect(201);
    let r = upload(
        &s,
        &w.ao_token,
        &spec,
        "tag=v4&file_name=a/b.pdf",
        PDF.to_vec(),
    );
    assert_eq!(r.status, 400);

    // Reading: members and admins see metadata; outsiders get 404.
    for token in [&w.ao_token, &w.ds_token, &s.admin_token] {
        let list = s
            .get(&format!("/api/v1/projects/{p}/artifacts"), token)
            .expect(200);
        assert_eq!(list.json.as_array().unwrap().len(), 1);
        let vs = s
            .get(&format!("/api/v1/artifacts/{spec}/versions"), token)
            .expect(200);
        assert_eq!(vs.json.as_array().unwrap().len(), 3);
        s.get(&format!("/api/v1/versions/{v1_id}"), token)
            .expect(200);
    }
    for path in [
        format!("/api/v1/artifacts/{spec}"),
        format!("/api/v1/artifacts/{spec}/versions"),
        format!("/api/v1/versions/{v1_id}"),
        format!("/api/v1/versions/{v1_id}/content"),
        format!("/api/v1/projects/{p}/artifacts"),
    ] {
        let r = s.get(&path, &other.ao_token);
        assert_eq!((r.status, r.code()), (404, "not_found"), "{path}");
        assert_eq!(s.call("GET", &path, None, Body::None).status, 401, "{path}");
    }
    let r = s.get(
        &format!("/api/v1/projects/{p}/artifacts?kind=dataset"),
        &w.ao_token,
    );
    assert_eq!(r.json.as_array().unwrap().len(), 0);
    assert_eq!(
        s.get(
            &format!("/api/v1/projects/{p}/artifacts?kind=nope"),
            &w.ao_token
        )
        .status,
        400
    );
    let unknown = sealroom_types::ArtifactId::new();
    assert_eq!(
        s.get(&format!("/api/v1/artifacts/{unknown}"), &w.ao_token)
            .code(),
        "not_found"
    );
    assert_eq!(
        s.get("/api/v1/artifacts/not-an-id", &w.ao_token).code(),
        "invalid_id"
    );

    // Downloads: both roles, audited; not admins.
    for token in [&w.ao_token, &w.ds_token] {
        let r = s
            .get(&format!("/api/v1/versions/{v1_id}/content"), token)
            .expect(200);
        assert_eq!(r.bytes, PDF);
        assert_eq!(r.header("content-type"), Some("application/pdf"));
        assert!(r
            .header("content-disposition")
            .unwrap()
            .contains("data-specification.pdf"));
    }
    assert_eq!(
        s.get(&format!("/api/v1/versions/{v1_id}/content"), &s.admin_token)
            .status,
        403
    );
    assert!(audited(
        &s,
        "artifact.download",
        &format!("version:{v1_id}")
    ));

    // Attestation report (DS, PDF only), linked to the specification version.
    let rep_body = json!({ "kind": "attestation_report", "name": "Conformance" });
    assert_eq!(
        create_artifact(&s, &w.ao_token, &p, rep_body.clone()).status,
        403
    );
    let rep = id(&create_artifact(&s, &w.ds_token, &p, rep_body).expect(201));
    let r = upload(
        &s,
        &w.ds_token,
        &rep,
        "tag=r1",
        b"PK\x03\x04 docx is not accepted here".to_vec(),
    );
    assert_eq!((r.status, r.code()), (422, "invalid_upload"));
    let r = upload(
        &s,
        &w.ds_token,
        &rep,
        &format!(
            "tag=r1&data_specification_version={}",
            sealroom_types::VersionId::new()
        ),
        PDF.to_vec(),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = upload(
        &s,
        &w.ds_token,
        &rep,
        &format!("tag=r1&data_specification_version={v1_id}"),
        PDF.to_vec(),
    )
    .expect(201);
    assert_eq!(
        r.json["detail"]["data_specification_version"],
        v1_id.as_str()
    );
    assert_eq!(versions(&s, &rep), 1);
    assert_eq!(blobs(&s, &p).len(), 4, "the refused reports left nothing");
    assert_eq!(
        upload(&s, &w.ao_token, &rep, "tag=r2", PDF.to_vec()).status,
        403
    );

    // Validation criteria (AO, JSON), accepted by the DS.
    let crit = id(&create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "validation_criteria", "name": "Report schema" }),
    )
    .expect(201));
    let path = format!("/api/v1/artifacts/{crit}/versions");
    let r = s.post(
        &path,
        &w.ao_token,
        json!({ "tag": "c1", "criteria": { "report": { "type": "banana" } } }),
    );
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_criteria"),
        "{}",
        r.text()
    );
    assert!(
        r.json["message"].as_str().unwrap().contains("banana"),
        "{}",
        r.text()
    );
    let r = s.post(
        &path,
        &w.ao_token,
        json!({ "tag": "c1", "criteria": "{\"report\": " }),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_criteria"));
    let r = s.post(
        &path,
        &w.ao_token,
        json!({ "tag": "c1", "criteria": [1, 2] }),
    );
    assert_eq!(r.code(), "invalid_criteria");
    let r = s.post(&path, &w.ao_token, json!({ "tag": "c1" }));
    assert_eq!(r.code(), "invalid_criteria");
    let r = s.post(
        &path,
        &w.ds_token,
        json!({ "tag": "c1", "criteria": demo_criteria() }),
    );
    assert_eq!(r.status, 403);
    assert_eq!(versions(&s, &crit), 0);
    let text = include_str!("../../../examples/demo/criteria.json");
    let c1 = s
        .post(
            &path,
            &w.ao_token,
            json!({ "tag": "c1", "description": "v1", "criteria": text }),
        )
        .expect(201);
    assert_eq!(c1.json["detail"]["criteria_json"], text, "kept verbatim");
    let c2 = s
        .post(
            &path,
            &w.ao_token,
            json!({ "tag": "c2", "criteria": demo_criteria() }),
        )
        .expect(201);
    let c1_id = id(&c1);
    let r = s
        .get(&format!("/api/v1/versions/{c1_id}/content"), &w.ds_token)
        .expect(200);
    assert_eq!(r.text(), text);
    let admin_view = s
        .get(&format!("/api/v1/versions/{c1_id}"), &s.admin_token)
        .expect(200);
    assert!(admin_view.json["detail"].get("criteria_json").is_none());
    // A criteria artifact takes no file upload; a document takes no JSON version.
    assert_eq!(
        upload(&s, &w.ao_token, &crit, "tag=c3", PDF.to_vec()).status,
        400
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/artifacts/{spec}/versions"),
            &w.ao_token,
            json!({ "tag": "j" })
        )
        .status,
        400
    );

    // Acceptance: DS only, criteria only.
    let accept = format!("/api/v1/versions/{c1_id}/accept");
    assert_eq!(s.post(&accept, &w.ao_token, json!({})).status, 403);
    assert_eq!(s.post(&accept, &s.admin_token, json!({})).status, 403);
    assert_eq!(s.post(&accept, &other.ds_token, json!({})).status, 404);
    let r = s.post(&accept, &w.ds_token, json!({})).expect(200);
    let acc = r.json["detail"]["acceptances"].as_array().unwrap();
    assert_eq!(acc.len(), 1);
    assert_eq!(acc[0]["org_id"], w.ds_org.as_str());
    assert!(audited(&s, "criteria.accept", &format!("version:{c1_id}")));
    let r = s.post(
        &format!("/api/v1/versions/{v1_id}/accept"),
        &w.ds_token,
        json!({}),
    );
    assert_eq!(r.status, 400);
    let c2_view = s.get(&format!("/api/v1/versions/{}", id(&c2)), &w.ao_token);
    assert_eq!(
        c2_view.json["detail"]["acceptances"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // The other project is untouched and invisible.
    assert_eq!(blobs(&s, &p2).len(), 0);
    assert_eq!(
        s.get(&format!("/api/v1/projects/{p2}/artifacts"), &w.ao_token)
            .status,
        404
    );
}

#[test]
fn dataset_versions() {
    let s = TestServer::sqlite();
    let w = world(&s, "ds");
    let p = s.project(&w, "Dataset project", "simulated");
    let ds = id(&create_artifact(
        &s,
        &w.ds_token,
        &p,
        json!({ "kind": "dataset", "name": "Chest X-rays", "description": "2024 cohort" }),
    )
    .expect(201));
    assert_eq!(
        create_artifact(
            &s,
            &w.ao_token,
            &p,
            json!({ "kind": "dataset", "name": "Mine" })
        )
        .status,
        403
    );
    let path = format!("/api/v1/artifacts/{ds}/versions");
    let good = "https://hospital.blob.core.windows.net/ds?sp=rl&st=2024-01-01T00:00:00Z&se=2099-01-01T00:00:00Z&spr=https&sv=2022-11-02&sr=c&sig=abc%2Bdef";
    let expired = good.replace("se=2099", "se=2020");
    let r = s.post(&path, &w.ds_token, json!({ "tag": "d1", "url": expired }));
    assert_eq!(
        (r.status, r.code()),
        (422, "dataset_url_expired"),
        "{}",
        r.text()
    );
    let r = s.post(
        &path,
        &w.ds_token,
        json!({ "tag": "d1", "url": "https://hospital.example/data.tar" }),
    );
    assert_eq!((r.status, r.code()), (400, "dataset_url_invalid"));
    let r = s.post(&path, &w.ds_token, json!({ "tag": "d1" }));
    assert_eq!(r.code(), "dataset_url_invalid");
    let r = s.post(&path, &w.ao_token, json!({ "tag": "d1", "url": good }));
    assert_eq!(r.status, 403);
    let r = s.post(
        &path,
        &w.ds_token,
        json!({ "tag": "d1", "url": good, "criteria": {} }),
    );
    assert_eq!(r.status, 400);
    assert_eq!(versions(&s, &ds), 0);

    let v = s
        .post(
            &path,
            &w.ds_token,
            json!({ "tag": "d1", "description": "first", "url": good }),
        )
        .expect(201);
    let vid = id(&v);
    assert_eq!(v.json["detail"]["location"]["url"], good);
    assert_eq!(v.json["detail"]["location"]["url_kind"], "azure_sas");
    assert_eq!(v.json["detail"]["location"]["status"], "valid");

    // Only the DS sees the URL.
    for token in [&w.ao_token, &s.admin_token] {
        let r = s.get(&format!("/api/v1/versions/{vid}"), token).expect(200);
        assert!(
            r.json["detail"]["location"].get("url").is_none(),
            "{}",
            r.text()
        );
        assert!(!r.text().contains("sig=abc"));
        assert_eq!(r.json["detail"]["location"]["status"], "valid");
        let list = s.get(&path, token).expect(200);
        assert!(!list.text().contains("sig=abc"));
    }
    let r = s
        .get(&format!("/api/v1/versions/{vid}"), &w.ds_token)
        .expect(200);
    assert_eq!(r.json["detail"]["location"]["url"], good);

    // No content; certification by the owning DS only.
    let r = s.get(&format!("/api/v1/versions/{vid}/content"), &w.ds_token);
    assert_eq!(r.status, 400);
    let certify = format!("/api/v1/versions/{vid}/certify");
    assert_eq!(s.post(&certify, &w.ao_token, json!({})).status, 403);
    assert_eq!(s.post(&certify, &s.admin_token, json!({})).status, 403);
    let r = s.post(&certify, &w.ds_token, json!({})).expect(200);
    assert_eq!(r.json["detail"]["certification"]["by"], w.ds_user.as_str());
    assert!(audited(&s, "dataset.certify", &format!("version:{vid}")));

    // Certifying something else is a bad request.
    let crit = id(&create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "validation_criteria", "name": "C" }),
    )
    .expect(201));
    let c = s
        .post(
            &format!("/api/v1/artifacts/{crit}/versions"),
            &w.ao_token,
            json!({ "tag": "c1", "criteria": demo_criteria() }),
        )
        .expect(201);
    let r = s.post(
        &format!("/api/v1/versions/{}/certify", id(&c)),
        &w.ds_token,
        json!({}),
    );
    assert_eq!(r.status, 400);

    // A deactivated project is read-only.
    s.block_on(s.store.set_project_state(
        p.parse().unwrap(),
        sealroom_types::ProjectState::Deactivated,
    ))
    .unwrap();
    let r = s.post(&path, &w.ds_token, json!({ "tag": "d2", "url": good }));
    assert_eq!((r.status, r.code()), (409, "project_not_active"));
    let spec = s
        .block_on(s.store.list_artifacts(p.parse().unwrap(), None))
        .unwrap();
    assert_eq!(spec.len(), 2);
    s.get(&format!("/api/v1/versions/{vid}"), &w.ao_token)
        .expect(200);
}

#[test]
fn algorithm_package_steps() {
    let s = TestServer::sqlite();
    let w = world(&s, "alg");
    let p = s.project(&w, "Algorithm project", "simulated");
    let r = create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "algorithm", "name": "Classifier" }),
    );
    assert_eq!(r.status, 400, "an algorithm needs a type");
    let alg = id(&create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "algorithm", "name": "Classifier", "algorithm_type": "validation" }),
    )
    .expect(201));
    let cek = Cek::generate().unwrap();
    let pkg = package(&cek);

    // Before the AO has a WCEK: the version exists, the WCEK step fails.
    let v1 = upload(&s, &w.ao_token, &alg, "tag=v1", pkg.clone()).expect(201);
    assert_eq!(step(&v1.json, "dockerfile_present")["status"], "passed");
    assert_eq!(
        step(&v1.json, "secrets_manifest_present")["status"],
        "passed"
    );
    assert_eq!(step(&v1.json, "wcek_present")["status"], "failed");
    assert_eq!(
        step(&v1.json, "file_validation_succeeded")["status"],
        "failed"
    );
    let sha = v1.json["blob"]["sha256"].as_str().unwrap().to_string();
    assert_eq!(v1.json["detail"]["workload_digest"], sha.as_str());
    assert_eq!(v1.json["blob"]["file_name"], "package.tar");

    // With the AO's WCEK: every step passes, and the WCEK is recorded.
    upload_ao_wcek(&s, &w, &p, &cek);
    let v2 = upload(&s, &w.ao_token, &alg, "tag=v2", pkg.clone()).expect(201);
    for st in [
        "dockerfile_present",
        "secrets_manifest_present",
        "wcek_present",
        "file_validation_succeeded",
    ] {
        assert_eq!(
            step(&v2.json, st)["status"],
            "passed",
            "{st}: {}",
            v2.text()
        );
    }
    let wceks = s
        .block_on(s.store.list_wceks(p.parse().unwrap(), Role::AlgorithmOwner))
        .unwrap();
    assert_eq!(
        v2.json["detail"]["wcek_fingerprint"],
        wceks[0].fingerprint.as_str()
    );
    let v2_id = id(&v2);

    // Sealed under another CEK: the WCEK step names both keys.
    let stranger = Cek::generate().unwrap();
    let v3 = upload(&s, &w.ao_token, &alg, "tag=v3", package(&stranger)).expect(201);
    let m = step(&v3.json, "wcek_present");
    assert_eq!(m["status"], "failed");
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains(&stranger.key_id().to_string()),
        "{m}"
    );
    assert!(v3.json["detail"]["wcek_fingerprint"].is_null());

    // A listed file that is not sealed; a missing one; no manifest; no entry point.
    let plain_listed = tar_of(&[
        ("run.sh", b"echo hi".to_vec()),
        ("model.bin", b"plaintext weights".to_vec()),
        (
            "secrets.json",
            br#"{"files": ["model.bin", "gone.bin"]}"#.to_vec(),
        ),
    ]);
    let v4 = upload(&s, &w.ao_token, &alg, "tag=v4", plain_listed).expect(201);
    assert_eq!(step(&v4.json, "dockerfile_present")["status"], "passed");
    let m = step(&v4.json, "secrets_manifest_present");
    assert_eq!(m["status"], "failed");
    assert!(m["message"].as_str().unwrap().contains("gone.bin"), "{m}");
    let bare = tar_of(&[("main.py", b"print(1)".to_vec())]);
    let v5 = upload(&s, &w.ao_token, &alg, "tag=v5", bare).expect(201);
    assert_eq!(step(&v5.json, "dockerfile_present")["status"], "failed");
    assert_eq!(
        step(&v5.json, "secrets_manifest_present")["status"],
        "failed"
    );

    // Not a package at all, or a path escaping the package: refused, nothing kept.
    let before = blobs(&s, &p).len();
    let r = upload(&s, &w.ao_token, &alg, "tag=bad", PDF.to_vec());
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_upload"),
        "{}",
        r.text()
    );
    let mut evil = tar::Header::new_old();
    evil.as_old_mut().name[..9].copy_from_slice(b"../escape");
    evil.set_size(1);
    evil.set_mode(0o644);
    evil.set_cksum();
    let mut bytes = evil.as_bytes().to_vec();
    bytes.push(b'x');
    bytes.resize(1024, 0);
    bytes.extend_from_slice(&[0; 1024]);
    let r = upload(&s, &w.ao_token, &alg, "tag=bad", bytes);
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_upload"),
        "{}",
        r.text()
    );
    assert!(r.json["message"].as_str().unwrap().contains(".."));
    let mut link = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    link.append_link(&mut h, "Dockerfile", "/etc/passwd")
        .unwrap();
    let r = upload(&s, &w.ao_token, &alg, "tag=bad", link.into_inner().unwrap());
    assert_eq!(r.status, 422);
    assert_eq!(blobs(&s, &p).len(), before);
    assert_eq!(versions(&s, &alg), 5);

    // Downloads: the AO only, byte for byte.
    let r = s
        .get(&format!("/api/v1/versions/{v2_id}/content"), &w.ao_token)
        .expect(200);
    assert_eq!(r.bytes, pkg);
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    for token in [&w.ds_token, &s.admin_token] {
        let r = s.get(&format!("/api/v1/versions/{v2_id}/content"), token);
        assert_eq!((r.status, r.code()), (403, "forbidden"));
    }
    assert!(audited(
        &s,
        "artifact.download",
        &format!("version:{v2_id}")
    ));
    let denied = s
        .block_on(s.store.list_audit(0, 10_000))
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.action == "artifact.download" && e.outcome == sealroom_types::AuditOutcome::Denied
        })
        .count();
    assert_eq!(denied, 2);
}

#[test]
fn upload_size_limit() {
    let config = ControlConfig {
        max_upload: 1000,
        ..ControlConfig::default()
    };
    let s = TestServer::start(Db::Sqlite, config).unwrap();
    let w = world(&s, "lim");
    let p = s.project(&w, "Limit project", "simulated");
    let spec = id(&create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "data_specification", "name": "Spec" }),
    )
    .expect(201));
    let mut big = PDF.to_vec();
    big.resize(1001, b' ');
    let r = upload(&s, &w.ao_token, &spec, "tag=big", big.clone());
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    assert_eq!(blobs(&s, &p).len(), 0);
    assert_eq!(versions(&s, &spec), 0);
    big.truncate(1000);
    upload(&s, &w.ao_token, &spec, "tag=fits", big).expect(201);
    assert_eq!(blobs(&s, &p).len(), 1);
}

#[test]
fn postgres_main_flow() {
    let Some(s) = TestServer::postgres() else {
        return;
    };
    let w = world(&s, "pg");
    let p = s.project(&w, "PG project", "simulated");
    let cek = Cek::generate().unwrap();
    upload_ao_wcek(&s, &w, &p, &cek);
    let alg = id(&create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "algorithm", "name": "Model", "algorithm_type": "training" }),
    )
    .expect(201));
    let v = upload(&s, &w.ao_token, &alg, "tag=v1", package(&cek)).expect(201);
    assert_eq!(
        step(&v.json, "file_validation_succeeded")["status"],
        "passed",
        "{}",
        v.text()
    );
    let spec = id(&create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "data_specification", "name": "Spec" }),
    )
    .expect(201));
    let r = upload(&s, &w.ao_token, &spec, "tag=v1", b"not a pdf".to_vec());
    assert_eq!(r.status, 422);
    upload(&s, &w.ao_token, &spec, "tag=v1", PDF.to_vec()).expect(201);
    let crit = id(&create_artifact(
        &s,
        &w.ao_token,
        &p,
        json!({ "kind": "validation_criteria", "name": "Crit" }),
    )
    .expect(201));
    let c = s
        .post(
            &format!("/api/v1/artifacts/{crit}/versions"),
            &w.ao_token,
            json!({ "tag": "c1", "criteria": demo_criteria() }),
        )
        .expect(201);
    s.post(
        &format!("/api/v1/versions/{}/accept", id(&c)),
        &w.ds_token,
        json!({}),
    )
    .expect(200);
    let ds = id(&create_artifact(
        &s,
        &w.ds_token,
        &p,
        json!({ "kind": "dataset", "name": "D" }),
    )
    .expect(201));
    let url =
        "https://h.blob.core.windows.net/c?sv=2022-11-02&se=2099-01-01T00:00:00Z&sr=c&sp=rl&sig=x";
    let d = s
        .post(
            &format!("/api/v1/artifacts/{ds}/versions"),
            &w.ds_token,
            json!({ "tag": "d1", "url": url }),
        )
        .expect(201);
    let r = s
        .get(&format!("/api/v1/versions/{}", id(&d)), &w.ao_token)
        .expect(200);
    assert!(r.json["detail"]["location"].get("url").is_none());
    assert_eq!(blobs(&s, &p).len(), 2);
}
