//! The built-in storage of a data steward and its signed URLs: sealed files only, per-DS areas,
//! listing and reading through a directory URL, Range requests, tampering and expiry; the URL
//! works as a dataset version's URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;

use common::{call, world, Body, Resp, TestServer};
use sealroom_blob::signed::Permission;
use sealroom_envelope::Cek;
use sealroom_types::{Timestamp, UrlKind};
use serde_json::json;

const OCTET: &str = "application/octet-stream";

fn seal(cek: &Cek, plain: &[u8]) -> Vec<u8> {
    let (out, _) =
        sealroom_envelope::stream::seal(&mut &plain[..], Cursor::new(Vec::new()), cek, &())
            .unwrap();
    out.into_inner()
}

fn put(s: &TestServer, token: Option<&str>, p: &str, path: &str, bytes: Vec<u8>) -> Resp {
    s.call(
        "PUT",
        &format!("/api/v1/projects/{p}/storage/{path}"),
        token,
        Body::Raw(OCTET, bytes),
    )
}

/// GET of a full URL (anonymous), with optional extra header.
fn fetch(url: &str, range: Option<&str>) -> Resp {
    let mut req = ureq::http::Request::builder().method("GET").uri(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    );
    let resp = agent.run(req.body(Vec::new()).unwrap()).unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let bytes = resp.into_body().read_to_vec().unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Resp {
        status,
        headers,
        bytes,
        json,
    }
}

fn stored(s: &TestServer, p: &str) -> usize {
    s.block_on(s.state.blobs().list(&format!("projects/{p}/")))
        .unwrap()
        .len()
}

#[test]
fn storage_and_signed_urls() {
    let s = TestServer::sqlite();
    let w = world(&s, "st");
    let p = s.project(&w, "Storage project", "simulated");
    let other = world(&s, "x");
    let cek = Cek::generate().unwrap();
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let data = seal(&cek, &plain);
    let manifest = seal(&cek, br#"{"format":"sealroom-manifest"}"#);

    // Who may store: the project's DS only.
    let r = put(&s, None, &p, "ds1/data.bin", data.clone());
    assert_eq!(r.status, 401);
    for (token, status) in [
        (w.ao_token.as_str(), 403),
        (s.admin_token.as_str(), 403),
        (other.ds_token.as_str(), 404),
        (w.site_token.as_str(), 403),
    ] {
        let r = put(&s, Some(token), &p, "ds1/data.bin", data.clone());
        assert_eq!(r.status, status, "{}", r.text());
    }

    // Plaintext, truncated or bad content types are refused and nothing is stored.
    let r = put(
        &s,
        Some(&w.ds_token),
        &p,
        "ds1/plain.csv",
        b"id,age\n1,40\n".to_vec(),
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_upload"),
        "{}",
        r.text()
    );
    let r = put(
        &s,
        Some(&w.ds_token),
        &p,
        "ds1/cut.bin",
        data[..data.len() - 10].to_vec(),
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_upload"),
        "{}",
        r.text()
    );
    let r = put(
        &s,
        Some(&w.ds_token),
        &p,
        "ds1/short.bin",
        data[..50].to_vec(),
    );
    assert_eq!(r.status, 422);
    let r = s.call(
        "PUT",
        &format!("/api/v1/projects/{p}/storage/ds1/data.bin"),
        Some(&w.ds_token),
        Body::Raw("text/csv", data.clone()),
    );
    assert_eq!(r.status, 415);
    for bad in ["ds1//x", "ds1/a%20b", "ds1/%2E%2E/x"] {
        let r = put(&s, Some(&w.ds_token), &p, bad, data.clone());
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(stored(&s, &p), 0);

    // Store a sealed tree: the data and its (dot-named) manifest.
    let r = put(&s, Some(&w.ds_token), &p, "ds1/data.bin", data.clone()).expect(201);
    assert_eq!(r.json["path"], "ds1/data.bin");
    assert_eq!(r.json["size"], data.len());
    assert!(r.json["key"]
        .as_str()
        .unwrap()
        .starts_with(&format!("projects/{p}/storage/{}/", w.ds_org)));
    put(
        &s,
        Some(&w.ds_token),
        &p,
        "ds1/.sealroom-manifest",
        manifest.clone(),
    )
    .expect(201);
    put(&s, Some(&w.ds_token), &p, "other/secret.bin", data.clone()).expect(201);
    let r = put(&s, Some(&w.ds_token), &p, "ds1/data.bin", data.clone());
    assert_eq!((r.status, r.code()), (409, "already_exists"));

    // Listing: DS only.
    let list = s
        .get(&format!("/api/v1/projects/{p}/storage"), &w.ds_token)
        .expect(200);
    let mut paths: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["ds1/.sealroom-manifest", "ds1/data.bin", "other/secret.bin"]
    );
    assert_eq!(
        s.get(&format!("/api/v1/projects/{p}/storage"), &w.ao_token)
            .status,
        403
    );

    // Sign a directory.
    let sign = format!("/api/v1/projects/{p}/storage/sign");
    for bad in [
        json!({ "prefix": "ds1/", "expires_in_hours": 0 }),
        json!({ "prefix": "../", "expires_in_hours": 48 }),
        json!({ "prefix": "ds1/", "expires_in_hours": 48, "x": 1 }),
    ] {
        assert_eq!(s.post(&sign, &w.ds_token, bad).status, 400);
    }
    assert_eq!(
        s.post(
            &sign,
            &w.ao_token,
            json!({ "prefix": "ds1/", "expires_in_hours": 48 })
        )
        .status,
        403
    );
    assert_eq!(
        s.post(
            &sign,
            &w.ds_token,
            json!({ "prefix": "ds1/nothing.bin", "expires_in_hours": 48 })
        )
        .status,
        404
    );
    let signed = s
        .post(
            &sign,
            &w.ds_token,
            json!({ "prefix": "ds1/", "expires_in_hours": 48 }),
        )
        .expect(200);
    let url = signed.json["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&s.url), "{url}");
    assert_eq!(signed.json["permission"], "list");
    let x = sealroom_types::parse_url_expiry(&url).unwrap();
    assert_eq!(x.kind, UrlKind::Sealroom);
    assert_eq!(
        x.expires_at.to_string(),
        signed.json["expires_at"].as_str().unwrap()
    );
    let (base, query) = url.split_once('?').unwrap();

    // The listing, anonymously: paths relative to the directory, names as stored.
    let l = fetch(&url, None).expect(200);
    let mut files: Vec<(String, u64)> = l.json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            (".sealroom-manifest".to_string(), manifest.len() as u64),
            ("data.bin".to_string(), data.len() as u64)
        ]
    );

    // Reading under the directory with the same query; Range requests.
    let full = fetch(&format!("{base}data.bin?{query}"), None).expect(200);
    assert_eq!(full.bytes, data);
    assert_eq!(
        full.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    let m = fetch(&format!("{base}.sealroom-manifest?{query}"), None).expect(200);
    assert_eq!(m.bytes, manifest);
    let part = fetch(&format!("{base}data.bin?{query}"), Some("bytes=100-1099")).expect(206);
    assert_eq!(part.bytes, &data[100..1100]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-1099/{}", data.len()).as_str())
    );
    let tail = fetch(
        &format!("{base}data.bin?{query}"),
        Some(&format!("bytes={}-", data.len() - 5)),
    )
    .expect(206);
    assert_eq!(tail.bytes, &data[data.len() - 5..]);
    let r = fetch(
        &format!("{base}data.bin?{query}"),
        Some(&format!("bytes={}-", data.len())),
    );
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{}", data.len()).as_str())
    );
    assert_eq!(
        fetch(&format!("{base}missing.bin?{query}"), None).status,
        404
    );

    // Outside the directory, or tampered: 403.
    let outside = base.replace("/ds1/", "/other/");
    assert_eq!(
        fetch(&format!("{outside}secret.bin?{query}"), None).status,
        403
    );
    assert_eq!(fetch(&format!("{outside}?{query}"), None).status, 403);
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut tampered = url.clone();
    let c = if &url[sig_at..=sig_at] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..=sig_at, c);
    assert_eq!(fetch(&tampered, None).status, 403);
    let longer = url.replace(
        &x.expires_at.to_string(),
        &x.expires_at.plus_secs(86_400).to_string(),
    );
    assert_ne!(longer, url);
    assert_eq!(fetch(&longer, None).status, 403);
    assert_eq!(fetch(&url.replace("sp=l", "sp=r"), None).status, 403);
    assert_eq!(fetch(&format!("{base}data.bin"), None).status, 403);
    let other_area = url.replace(&w.ds_org, &other.ds_org);
    assert_eq!(fetch(&other_area, None).status, 403);

    // Expired: 410.
    let root = format!("/blobs/projects/{p}/storage/{}/ds1/", w.ds_org);
    let old = s
        .state
        .signer()
        .sign(
            "GET",
            &root,
            Permission::List,
            Timestamp::now().plus_secs(-60),
        )
        .unwrap()
        .to_url(&s.url);
    let r = fetch(&old, None);
    assert_eq!((r.status, r.code()), (410, "expired"));
    let (old_base, old_query) = old.split_once('?').unwrap();
    assert_eq!(
        fetch(&format!("{old_base}data.bin?{old_query}"), None).status,
        410
    );

    // A single-object URL reads only that object.
    let one = s
        .post(
            &sign,
            &w.ds_token,
            json!({ "prefix": "ds1/data.bin", "expires_in_hours": 1 }),
        )
        .expect(200);
    assert_eq!(one.json["permission"], "read");
    let one_url = one.json["url"].as_str().unwrap();
    assert_eq!(fetch(one_url, None).expect(200).bytes, data);
    let (one_base, one_query) = one_url.split_once('?').unwrap();
    let sibling = one_base.replace("data.bin", ".sealroom-manifest");
    assert_eq!(fetch(&format!("{sibling}?{one_query}"), None).status, 403);
    let dir = one_base.replace("data.bin", "");
    assert_eq!(fetch(&format!("{dir}?{one_query}"), None).status, 403);

    // The directory URL is a dataset URL (valid for 48 hours).
    let ds = s
        .post(
            &format!("/api/v1/projects/{p}/artifacts"),
            &w.ds_token,
            json!({ "kind": "dataset", "name": "Stored dataset" }),
        )
        .expect(201);
    let v = s
        .post(
            &format!(
                "/api/v1/artifacts/{}/versions",
                ds.json["id"].as_str().unwrap()
            ),
            &w.ds_token,
            json!({ "tag": "d1", "url": url }),
        )
        .expect(201);
    assert_eq!(v.json["detail"]["location"]["url_kind"], "sealroom");
    assert_eq!(v.json["detail"]["location"]["status"], "valid");
    // A 1-hour URL is refused as a dataset URL (it expires within 24 hours).
    let r = s.post(
        &format!(
            "/api/v1/artifacts/{}/versions",
            ds.json["id"].as_str().unwrap()
        ),
        &w.ds_token,
        json!({ "tag": "d2", "url": one_url }),
    );
    assert_eq!((r.status, r.code()), (422, "dataset_url_expired"));

    // The storage routes and the public route are in the OpenAPI document.
    let doc = call(&s.url, "GET", "/api/openapi.json", None, Body::None).expect(200);
    assert!(doc.json["paths"]["/blobs/{*path}"]["get"].is_object());
    assert!(doc.json["paths"]["/api/v1/projects/{project_id}/storage/sign"]["post"].is_object());

    // Audited.
    let audit = s
        .block_on(sealroom_store::AuditStore::list_audit(&*s.store, 0, 10_000))
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "storage.put"));
    assert!(audit.iter().any(|e| e.action == "storage.sign"));
}

#[test]
fn storage_is_read_only_when_deactivated() {
    let s = TestServer::sqlite();
    let w = world(&s, "ro");
    let p = s.project(&w, "Read-only project", "simulated");
    let cek = Cek::generate().unwrap();
    s.block_on(sealroom_store::ProjectStore::set_project_state(
        &*s.store,
        p.parse().unwrap(),
        sealroom_types::ProjectState::Deactivated,
    ))
    .unwrap();
    let r = put(&s, Some(&w.ds_token), &p, "a.bin", seal(&cek, b"x"));
    assert_eq!((r.status, r.code()), (409, "project_not_active"));
    assert_eq!(stored(&s, &p), 0);
}
