//! The key broker through the REST API: site attester keys, attestation policies, nonces and
//! key releases, with the simulated attester end to end and genuine SEV-SNP evidence.
//!
//! Runs are moved along with the store's transitions (the runs API is another module); every
//! key-release request goes through HTTP exactly as the agent sends it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{world, Body, Db, Resp, TestServer, World};
use sealroom_attest::sim::SimulatedAttester;
use sealroom_attest::snp::{SnpEvidence, SnpReport};
use sealroom_control::ControlConfig;
use sealroom_envelope::kek::KekPublic;
use sealroom_envelope::recipient::{EnclaveKeyPair, ReleaseInfo, SealedCek};
use sealroom_envelope::Cek;
use sealroom_store::*;
use sealroom_types::*;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The simulated attester's configured measurement in these tests.
const SIM_MEASUREMENT: [u8; 48] = [0x5a; 48];

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn azure_url(expires: Timestamp) -> String {
    format!(
        "https://ds.blob.core.windows.net/data?sp=rl&st=2026-01-01T00:00:00Z&se={expires}&spr=https&sv=2022-11-02&sr=c&sig=abc%2B"
    )
}

/// A file of `shared/testdata/attestation` (beside the checkout; the nearest one found walking
/// up from this crate).
fn testdata(rel: &str) -> Vec<u8> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest
        .ancestors()
        .map(|a| a.join("shared/testdata/attestation"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/testdata/attestation above {}: the genuine evidence is missing",
                manifest.display()
            )
        });
    let p = dir.join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

impl TestServer {
    fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(token), Body::Json(body))
    }

    /// Every audit entry.
    fn audit(&self) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        loop {
            let after = out.last().map_or(0, |e| e.seq);
            let page = self
                .block_on(AuditStore::list_audit(&*self.store, after, 500))
                .unwrap();
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }

    /// The `key.release` entries of a run: (outcome, detail).
    fn release_audit(&self, run: &str) -> Vec<(AuditOutcome, Value)> {
        let object = format!("run:{run}");
        self.audit()
            .into_iter()
            .filter(|e| e.action == "key.release" && e.object.as_deref() == Some(&object))
            .map(|e| (e.outcome, serde_json::from_str(&e.detail).unwrap()))
            .collect()
    }
}

/// A project with both parties' WCEKs uploaded (the CEKs kept to compare).
struct Proj {
    id: String,
    technology: Technology,
    ao_cek: Cek,
    ds_cek: Cek,
    n: u32,
}

fn project(s: &TestServer, w: &World, name: &str, technology: &str) -> Proj {
    let id_text = s.project(w, name, technology);
    let pid: ProjectId = id(&id_text);
    let mut ceks = Vec::new();
    for (role, user) in [
        (Role::AlgorithmOwner, &w.ao_user),
        (Role::DataSteward, &w.ds_user),
    ] {
        let key = s.block_on(s.store.project_key(pid, role)).unwrap();
        let cek = Cek::generate().unwrap();
        let wcek = KekPublic::from_der(&key.public_der)
            .unwrap()
            .wrap(&cek)
            .unwrap();
        s.block_on(s.store.add_wcek(NewWcek {
            project_id: pid,
            role,
            wcek,
            cek_key_id: Some(cek.key_id().to_string()),
            uploaded_by: id(user),
        }))
        .unwrap();
        ceks.push(cek);
    }
    let ds_cek = ceks.pop().unwrap();
    let ao_cek = ceks.pop().unwrap();
    Proj {
        id: id_text,
        technology: technology.parse().unwrap(),
        ao_cek,
        ds_cek,
        n: 0,
    }
}

/// A run of the project and its algorithm version.
struct RunSetup {
    run: String,
    algorithm_version: VersionId,
    digest: String,
}

/// A fresh algorithm version (with workload digest), dataset version, configuration and run
/// request; the run is initiated by `initiator` (the DS user unless said otherwise), claimed by
/// the world's site (or `claimer`), and moved to `until`.
fn run_until(
    s: &TestServer,
    w: &World,
    p: &mut Proj,
    initiator: &str,
    claimer: Option<&str>,
    until: RunState,
) -> RunSetup {
    p.n += 1;
    let n = p.n;
    let pid: ProjectId = id(&p.id);
    let st = &*s.store;
    let (ao, ds): (UserId, UserId) = (id(&w.ao_user), id(&w.ds_user));
    let alg = s
        .block_on(st.create_artifact(NewArtifact {
            project_id: pid,
            kind: ArtifactKind::Algorithm,
            owner_org_id: id(&w.ao_org),
            name: Name::parse(&format!("Model {n}")).unwrap(),
            description: String::new(),
            algorithm_type: Some(AlgorithmType::Training),
            created_by: ao,
        }))
        .unwrap();
    let alg_v = s
        .block_on(st.add_version(NewVersion {
            artifact_id: alg.id,
            tag: VersionTag::parse("v1").unwrap(),
            description: String::new(),
            uploaded_by: ao,
            blob: Some(BlobRef {
                key: format!("p/alg/{n}"),
                size: 3,
                sha256: "ab".repeat(32),
                file_name: "package.tar".into(),
            }),
            detail: NewVersionDetail::Algorithm {
                wcek_fingerprint: None,
            },
        }))
        .unwrap();
    let digest = format!("sha256:{}", format!("{n:02x}").repeat(32));
    s.block_on(st.set_workload_digest(alg_v.id, &digest))
        .unwrap();
    let data = s
        .block_on(st.create_artifact(NewArtifact {
            project_id: pid,
            kind: ArtifactKind::Dataset,
            owner_org_id: id(&w.ds_org),
            name: Name::parse(&format!("Data {n}")).unwrap(),
            description: String::new(),
            algorithm_type: None,
            created_by: ds,
        }))
        .unwrap();
    let data_v = s
        .block_on(st.add_version(NewVersion {
            artifact_id: data.id,
            tag: VersionTag::parse("2026").unwrap(),
            description: String::new(),
            uploaded_by: ds,
            blob: None,
            detail: NewVersionDetail::Dataset {
                url: azure_url(Timestamp::now().plus_secs(30 * 86400)),
                data_specification_version: None,
                attestation_report_version: None,
                wcek_fingerprint: None,
            },
        }))
        .unwrap();
    let rc = s
        .block_on(st.create_run_config(
            NewRunConfig {
                project_id: pid,
                name: Name::parse(&format!("Config {n}")).unwrap(),
                description: String::new(),
                algorithm_version_id: alg_v.id,
                dataset_version_id: data_v.id,
                criteria_version_id: None,
                created_by: ao,
            },
            Timestamp::now(),
        ))
        .unwrap();
    let compute = p.technology.compute_choices()[0];
    let run = s
        .block_on(st.request_run(NewRun {
            run_config_id: rc.id,
            params: RuntimeParams::default(),
            compute,
            requested_by: ao,
        }))
        .unwrap();
    let step = |to, actor| {
        s.block_on(st.transition_run(
            RunTransition {
                run_id: run.id,
                to,
                actor,
                message: None,
            },
            Timestamp::now(),
        ))
        .unwrap();
    };
    step(RunState::Initiated, Actor::User(id(initiator)));
    let site: SiteId = id(claimer.unwrap_or(&w.site_id));
    let claimed = s.block_on(st.claim_run(site)).unwrap().unwrap();
    assert_eq!(claimed.id, run.id);
    for to in [
        RunState::RuntimeBuild,
        RunState::WorkloadLaunch,
        RunState::Running,
    ] {
        step(to, Actor::Site(site));
        if to == until {
            break;
        }
    }
    RunSetup {
        run: run.id.to_string(),
        algorithm_version: alg_v.id,
        digest,
    }
}

fn nonce(s: &TestServer, site_token: &str, run: &str) -> Vec<u8> {
    let r = s
        .post("/api/v1/broker/nonce", site_token, json!({ "run_id": run }))
        .expect(200);
    assert_eq!(r.json["run_id"], run);
    assert!(r.json["expires_at"].is_string());
    let n = B64.decode(r.json["nonce"].as_str().unwrap()).unwrap();
    assert_eq!(n.len(), 32);
    n
}

/// The release request the agent sends.
fn release_body(
    run: &str,
    nonce: &[u8],
    technology: &str,
    evidence: &[u8],
    enclave: &EnclaveKeyPair,
    digest: &str,
) -> Value {
    json!({
        "run_id": run,
        "nonce": b64(nonce),
        "evidence": { "technology": technology, "data": b64(evidence) },
        "enclave_public_key": enclave.public_key().to_base64(),
        "workload_digest": digest,
    })
}

/// Simulated evidence as the agent makes it.
fn sim_evidence(
    attester: &SimulatedAttester,
    nonce: &[u8],
    run: &str,
    enclave: &EnclaveKeyPair,
    digest: &str,
) -> Vec<u8> {
    sealroom_attest::attest_key_release(
        attester,
        nonce,
        run,
        enclave.public_key().as_bytes(),
        digest,
    )
    .unwrap()
}

/// Asserts a refused release: status, reason in the audit log, and nothing released.
#[track_caller]
fn assert_refused(s: &TestServer, r: Resp, status: u16, run: &str, reason: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(r.json.get("releases").is_none(), "no key in a refusal");
    let audit = s.release_audit(run);
    let (outcome, detail) = audit.last().expect("the refusal is audited");
    assert_eq!(*outcome, AuditOutcome::Denied);
    assert_eq!(detail["reason"], reason, "{detail}");
    assert_eq!(detail["message"], r.json["message"]);
    assert!(
        s.block_on(s.store.key_releases(id(run)))
            .unwrap()
            .is_empty(),
        "no release recorded"
    );
    r.json
}

/// Opens the released CEKs with the enclave key and the independently computed info.
fn open_releases(p: &Proj, run: &str, enclave: &EnclaveKeyPair, resp: &Value) -> Vec<(Role, Cek)> {
    resp["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let role: Role = r["role"].as_str().unwrap().parse().unwrap();
            let key_id = r["cek_key_id"].as_str().unwrap();
            let expected_info = ReleaseInfo::new(&p.id, run, role.short(), key_id).to_bytes();
            assert_eq!(
                B64.decode(r["info"].as_str().unwrap()).unwrap(),
                expected_info
            );
            let compact = B64.decode(r["sealed_cek"].as_str().unwrap()).unwrap();
            assert_eq!(compact.len(), 80);
            let sealed = SealedCek {
                enc: compact[..32].to_vec(),
                ciphertext: compact[32..].to_vec(),
                info: expected_info.clone(),
            };
            let cek = enclave.open(&sealed, &expected_info).unwrap();
            // Another enclave key cannot open it.
            let other = EnclaveKeyPair::generate().unwrap();
            assert!(other.open(&sealed, &expected_info).is_err());
            (role, cek)
        })
        .collect()
}

fn register_site_key(s: &TestServer, site_token: &str, attester: &SimulatedAttester) {
    let r = s.put(
        "/api/v1/agent/attestation-key",
        site_token,
        json!({ "public_key": b64(&attester.public_key()) }),
    );
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
}

/// The happy path with the simulated attester, then a replay of the same request.
fn simulated_release_end_to_end(s: &TestServer, tag: &str) {
    let w = world(s, tag);
    let mut p = project(s, &w, &format!("Sim {tag}"), "simulated");
    let attester = SimulatedAttester::generate(SIM_MEASUREMENT).unwrap();
    register_site_key(s, &w.site_token, &attester);
    let rs = run_until(s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);

    // Inside the enclave: an ephemeral key; the agent asks for a nonce and attests.
    let enclave = EnclaveKeyPair::generate().unwrap();
    let n = nonce(s, &w.site_token, &rs.run);
    let evidence = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    let body = release_body(&rs.run, &n, "simulated", &evidence, &enclave, &rs.digest);
    let r = s.post("/api/v1/broker/release", &w.site_token, body.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["run_id"], rs.run.as_str());
    assert_eq!(r.json["technology"], "simulated");
    assert_eq!(r.json["tcb_status"], "simulated");
    assert_eq!(r.json["measurement"], hex::encode(SIM_MEASUREMENT));
    let opened = open_releases(&p, &rs.run, &enclave, &r.json);
    assert_eq!(opened.len(), 2);
    for (role, cek) in &opened {
        let want = match role {
            Role::AlgorithmOwner => &p.ao_cek,
            Role::DataSteward => &p.ds_cek,
        };
        assert_eq!(cek.expose(), want.expose(), "{role} CEK");
    }
    // The WCEK fingerprints are the uploaded versions'.
    for rel in r.json["releases"].as_array().unwrap() {
        let role: Role = rel["role"].as_str().unwrap().parse().unwrap();
        let (v, _) = s
            .block_on(s.store.latest_wcek(id(&p.id), role))
            .unwrap()
            .unwrap();
        assert_eq!(rel["wcek_fingerprint"], v.fingerprint.as_str());
        assert_eq!(rel["wcek_version"], v.version);
    }

    // Recorded with the run, and audited with the fingerprints.
    let recorded = s.block_on(s.store.key_releases(id(&rs.run))).unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].technology, Technology::Simulated);
    assert_eq!(recorded[0].workload_digest, rs.digest);
    assert_eq!(recorded[0].roles.len(), 2);
    assert_eq!(
        recorded[0].evidence_sha256,
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &evidence).as_ref())
    );
    let audit = s.release_audit(&rs.run);
    let (outcome, detail) = audit.last().unwrap();
    assert_eq!(*outcome, AuditOutcome::Success);
    assert_eq!(detail["simulated"], true);
    let fps: Vec<&str> = detail["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["wcek_fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fps, recorded[0].wcek_fingerprints);

    // The same request again: the nonce is used up.
    let r = s.post("/api/v1/broker/release", &w.site_token, body);
    let e = assert_refused_after_success(s, r, &rs.run);
    assert_eq!(e["code"], "expired");
}

/// Like [`assert_refused`] for a run that already had one release.
#[track_caller]
fn assert_refused_after_success(s: &TestServer, r: Resp, run: &str) -> Value {
    assert_eq!(r.status, 410, "{}", r.text());
    let (outcome, detail) = s.release_audit(run).pop().unwrap();
    assert_eq!(outcome, AuditOutcome::Denied);
    assert_eq!(detail["reason"], "nonce_rejected");
    assert_eq!(
        s.block_on(s.store.key_releases(id(run))).unwrap().len(),
        1,
        "no second release"
    );
    r.json
}

#[test]
fn simulated_release_sqlite() {
    let s = TestServer::sqlite();
    simulated_release_end_to_end(&s, "s");
}

#[test]
fn simulated_release_postgres() {
    let Some(s) = TestServer::postgres() else {
        return;
    };
    simulated_release_end_to_end(&s, "pg");
}

#[test]
fn refusals_release_nothing_and_are_audited() {
    let s = TestServer::sqlite();
    let w = world(&s, "n");
    let mut p = project(&s, &w, "Refusals", "simulated");
    let attester = SimulatedAttester::generate(SIM_MEASUREMENT).unwrap();
    register_site_key(&s, &w.site_token, &attester);
    let enclave = EnclaveKeyPair::generate().unwrap();
    let release = |body: Value| s.post("/api/v1/broker/release", &w.site_token, body);

    // The workload digest changed after the evidence was made (a new package upload).
    let rs = run_until(&s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);
    let n = nonce(&s, &w.site_token, &rs.run);
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    s.block_on(
        s.store
            .set_workload_digest(rs.algorithm_version, "sha256:rebuilt"),
    )
    .unwrap();
    let e = assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        403,
        &rs.run,
        "workload_digest_mismatch",
    );
    assert!(e["message"].as_str().unwrap().contains("sha256:rebuilt"));

    // Evidence signed by a key the site never registered.
    let rs = run_until(&s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);
    let n = nonce(&s, &w.site_token, &rs.run);
    let rogue = SimulatedAttester::generate(SIM_MEASUREMENT).unwrap();
    let ev = sim_evidence(&rogue, &n, &rs.run, &enclave, &rs.digest);
    let e = assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        403,
        &rs.run,
        "evidence_refused",
    );
    assert!(e["message"].as_str().unwrap().contains("signature"), "{e}");
    // ... and the nonce is spent: the right evidence with it is refused too.
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        410,
        &rs.run,
        "nonce_rejected",
    );

    // Report data binding another enclave key than the one posted.
    let n = nonce(&s, &w.site_token, &rs.run);
    let other = EnclaveKeyPair::generate().unwrap();
    let ev = sim_evidence(&attester, &n, &rs.run, &other, &rs.digest);
    assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        403,
        &rs.run,
        "report_data_mismatch",
    );

    // A nonce issued for another run.
    let rs2 = run_until(&s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);
    let n_other = nonce(&s, &w.site_token, &rs2.run);
    let ev = sim_evidence(&attester, &n_other, &rs.run, &enclave, &rs.digest);
    assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n_other,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        410,
        &rs.run,
        "nonce_rejected",
    );

    // The project's policy lists other measurements (the DS pinned its enclave build).
    let r = s.put(
        &format!("/api/v1/projects/{}/attestation-policy", p.id),
        &w.ds_token,
        json!({ "reference_measurements": ["77".repeat(48)] }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n = nonce(&s, &w.site_token, &rs2.run);
    let ev = sim_evidence(&attester, &n, &rs2.run, &enclave, &rs2.digest);
    assert_refused(
        &s,
        release(release_body(
            &rs2.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs2.digest,
        )),
        403,
        &rs2.run,
        "policy_measurement",
    );
    // Pinning the attester's measurement lets it through.
    s.put(
        &format!("/api/v1/projects/{}/attestation-policy", p.id),
        &w.ds_token,
        json!({ "reference_measurements": [hex::encode(SIM_MEASUREMENT)], "min_simulated_svn": 1 }),
    )
    .expect(200);
    let n = nonce(&s, &w.site_token, &rs2.run);
    let ev = sim_evidence(&attester, &n, &rs2.run, &enclave, &rs2.digest);
    let r = release(release_body(
        &rs2.run,
        &n,
        "simulated",
        &ev,
        &enclave,
        &rs2.digest,
    ))
    .expect(200);
    assert_eq!(open_releases(&p, &rs2.run, &enclave, &r.json).len(), 2);

    // A run initiated by the AO (the store allows it; the broker does not).
    let rs = run_until(&s, &w, &mut p, &w.ao_user, None, RunState::WorkloadLaunch);
    let n = nonce(&s, &w.site_token, &rs.run);
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        409,
        &rs.run,
        "not_initiated_by_ds",
    );

    // A run that moved on to running: no nonce, no release.
    let rs = run_until(&s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);
    let n = nonce(&s, &w.site_token, &rs.run);
    s.block_on(s.store.transition_run(
        RunTransition {
            run_id: id(&rs.run),
            to: RunState::Running,
            actor: Actor::Site(id(&w.site_id)),
            message: None,
        },
        Timestamp::now(),
    ))
    .unwrap();
    let r = s.post(
        "/api/v1/broker/nonce",
        &w.site_token,
        json!({ "run_id": rs.run }),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    let e = assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        409,
        &rs.run,
        "not_in_workload_launch",
    );
    assert_eq!(e["code"], "invalid_state_transition");

    // A run claimed by another site of the same organization.
    let other_site = s
        .post(
            &format!("/api/v1/orgs/{}/sites", w.ds_org),
            &s.admin_token,
            json!({ "name": "Second site n" }),
        )
        .expect(201);
    let other_site_id = other_site.json["site"]["id"].as_str().unwrap().to_string();
    let other_token = other_site.json["token"].as_str().unwrap().to_string();
    let rs = run_until(
        &s,
        &w,
        &mut p,
        &w.ds_user,
        Some(&other_site_id),
        RunState::WorkloadLaunch,
    );
    let r = s.post(
        "/api/v1/broker/nonce",
        &w.site_token,
        json!({ "run_id": rs.run }),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let n = nonce(&s, &other_token, &rs.run);
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    assert_refused(
        &s,
        release(release_body(
            &rs.run,
            &n,
            "simulated",
            &ev,
            &enclave,
            &rs.digest,
        )),
        403,
        &rs.run,
        "not_claimed_by_site",
    );
    // The other site has no registered key: its simulated evidence is refused.
    let n = nonce(&s, &other_token, &rs.run);
    let r = s.post(
        "/api/v1/broker/release",
        &other_token,
        release_body(&rs.run, &n, "simulated", &ev, &enclave, &rs.digest),
    );
    assert_refused(&s, r, 403, &rs.run, "no_site_attestation_key");

    // Malformed requests change nothing and are refused before the nonce is spent.
    let rs = run_until(&s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);
    let n = nonce(&s, &w.site_token, &rs.run);
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    let good = release_body(&rs.run, &n, "simulated", &ev, &enclave, &rs.digest);
    for (field, value) in [
        ("nonce", json!("not base64!")),
        ("enclave_public_key", json!(b64(&[1u8; 31]))),
        ("workload_digest", json!("")),
        (
            "evidence",
            json!({ "technology": "quantum", "data": b64(&ev) }),
        ),
        (
            "evidence",
            json!({ "technology": "simulated", "data": "%%%" }),
        ),
    ] {
        let mut body = good.clone();
        body[field] = value;
        assert_refused(&s, release(body), 400, &rs.run, "malformed_request");
    }
    let mut body = good.clone();
    body["extra"] = json!(1);
    let r = release(body);
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "malformed_json");
    // Over 64 KiB.
    let mut body = good.clone();
    body["evidence"]["data"] = json!(b64(&vec![0u8; 60 * 1024]));
    assert_eq!(release(body).status, 413);
    // Evidence that is not a simulated report.
    let mut body = good.clone();
    body["evidence"]["data"] = json!(b64(b"short"));
    assert_refused(&s, release(body), 400, &rs.run, "evidence_malformed");
    // The nonce was spent by the last attempt (it parsed); a fresh one works.
    assert_refused(&s, release(good), 410, &rs.run, "nonce_rejected");
    let n = nonce(&s, &w.site_token, &rs.run);
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    release(release_body(
        &rs.run,
        &n,
        "simulated",
        &ev,
        &enclave,
        &rs.digest,
    ))
    .expect(200);

    // Callers: users and anonymous callers are not agents.
    for token in [
        Some(w.ds_token.as_str()),
        Some(s.admin_token.as_str()),
        None,
    ] {
        let r = s.call(
            "POST",
            "/api/v1/broker/release",
            token,
            Body::Json(json!({})),
        );
        assert_eq!(r.status, if token.is_some() { 403 } else { 401 });
        let r = s.call(
            "POST",
            "/api/v1/broker/nonce",
            token,
            Body::Json(json!({ "run_id": rs.run })),
        );
        assert_eq!(r.status, if token.is_some() { 403 } else { 401 });
    }
    let r = s.post(
        "/api/v1/broker/nonce",
        &w.site_token,
        json!({ "run_id": RunId::new().to_string() }),
    );
    assert_eq!(r.status, 404);
    let r = s.post(
        "/api/v1/broker/nonce",
        &w.site_token,
        json!({ "run_id": "x" }),
    );
    assert_eq!(r.code(), "invalid_id");
}

#[test]
fn expired_nonce_is_refused() {
    let config = ControlConfig {
        nonce_ttl: Duration::from_millis(300),
        ..ControlConfig::default()
    };
    let s = TestServer::start(Db::Sqlite, config).unwrap();
    let w = world(&s, "e");
    let mut p = project(&s, &w, "Expiry", "simulated");
    let attester = SimulatedAttester::generate(SIM_MEASUREMENT).unwrap();
    register_site_key(&s, &w.site_token, &attester);
    let enclave = EnclaveKeyPair::generate().unwrap();
    let rs = run_until(&s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);
    let n = nonce(&s, &w.site_token, &rs.run);
    std::thread::sleep(Duration::from_millis(600));
    let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
    let e = assert_refused(
        &s,
        s.post(
            "/api/v1/broker/release",
            &w.site_token,
            release_body(&rs.run, &n, "simulated", &ev, &enclave, &rs.digest),
        ),
        410,
        &rs.run,
        "nonce_rejected",
    );
    assert_eq!(e["code"], "expired");
}

#[test]
fn sev_snp_project_refuses_simulated_evidence_and_checks_genuine_evidence() {
    let s = TestServer::sqlite();
    let w = world(&s, "snp");
    let mut p = project(&s, &w, "Confidential", "sev-snp");
    let attester = SimulatedAttester::generate(SIM_MEASUREMENT).unwrap();
    register_site_key(&s, &w.site_token, &attester);
    let enclave = EnclaveKeyPair::generate().unwrap();
    let release = |body: Value| s.post("/api/v1/broker/release", &w.site_token, body);
    let rs = run_until(&s, &w, &mut p, &w.ds_user, None, RunState::WorkloadLaunch);

    // Simulated evidence, correctly bound and signed by the registered key: refused, and the
    // refusal says SIMULATED — whether it is labelled simulated or passed off as sev-snp.
    for label in ["simulated", "sev-snp"] {
        let n = nonce(&s, &w.site_token, &rs.run);
        let ev = sim_evidence(&attester, &n, &rs.run, &enclave, &rs.digest);
        let e = assert_refused(
            &s,
            release(release_body(&rs.run, &n, label, &ev, &enclave, &rs.digest)),
            403,
            &rs.run,
            "simulated_evidence_refused",
        );
        assert!(e["message"].as_str().unwrap().contains("SIMULATED"), "{e}");
    }

    // The default policy of a hardware project lists no measurements.
    let r = s.get(
        &format!("/api/v1/projects/{}/attestation-policy", p.id),
        &w.ao_token,
    );
    let r = r.expect(200);
    assert_eq!(r.json["is_default"], true);
    assert_eq!(r.json["policy"]["reference_measurements"], json!([]));

    // Genuine SEV-SNP evidence (confidential-containers/trustee's test vector) with the DS's
    // policy listing its measurement: the AMD chain and the report signature verify, and the
    // release is refused only because the report data is not our binding.
    let report = testdata("snp/test-report.bin");
    let vcek = testdata("snp/test-vcek.der");
    let measurement = hex::encode(SnpReport::parse(&report).unwrap().measurement);
    s.put(
        &format!("/api/v1/projects/{}/attestation-policy", p.id),
        &w.ds_token,
        json!({ "reference_measurements": [measurement] }),
    )
    .expect(200);
    let evidence = SnpEvidence::new(&report, &vcek).to_bytes();
    let n = nonce(&s, &w.site_token, &rs.run);
    let e = assert_refused(
        &s,
        release(release_body(
            &rs.run, &n, "sev-snp", &evidence, &enclave, &rs.digest,
        )),
        403,
        &rs.run,
        "report_data_mismatch",
    );
    assert!(
        e["message"].as_str().unwrap().contains("evidence verifies"),
        "{e}"
    );
    // The same report with one flipped bit: refused at the signature, not the binding.
    let mut tampered = report.clone();
    tampered[0x90] ^= 1;
    let evidence = SnpEvidence::new(&tampered, &vcek).to_bytes();
    let n = nonce(&s, &w.site_token, &rs.run);
    let e = assert_refused(
        &s,
        release(release_body(
            &rs.run, &n, "sev-snp", &evidence, &enclave, &rs.digest,
        )),
        403,
        &rs.run,
        "evidence_refused",
    );
    assert!(e["message"].as_str().unwrap().contains("signature"), "{e}");
    // Evidence of another technology.
    let n = nonce(&s, &w.site_token, &rs.run);
    assert_refused(
        &s,
        release(release_body(
            &rs.run, &n, "tdx", &evidence, &enclave, &rs.digest,
        )),
        403,
        &rs.run,
        "technology_mismatch",
    );
}

#[test]
fn site_attestation_keys() {
    let s = TestServer::sqlite();
    let w = world(&s, "k");
    let path = "/api/v1/agent/attestation-key";
    let a = SimulatedAttester::generate(SIM_MEASUREMENT).unwrap();
    let b = SimulatedAttester::generate(SIM_MEASUREMENT).unwrap();
    let body = |at: &SimulatedAttester| json!({ "public_key": b64(&at.public_key()) });
    let site_id: SiteId = id(&w.site_id);
    let stored = || {
        s.block_on(s.store.site_attestation_key(site_id))
            .unwrap()
            .map(|k| k.public_key)
    };

    // Only a site registers its own key.
    assert_eq!(s.put(path, &w.ds_token, body(&a)).status, 403);
    assert_eq!(s.put(path, &s.admin_token, body(&a)).status, 403);
    assert_eq!(s.call("PUT", path, None, Body::Json(body(&a))).status, 401);
    for bad in [
        json!({ "public_key": "@@" }),
        json!({ "public_key": b64(&[1u8; 31]) }),
    ] {
        let r = s.put(path, &w.site_token, bad);
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let r = s.put(
        path,
        &w.site_token,
        json!({ "public_key": b64(&[1u8; 32]), "x": 1 }),
    );
    assert_eq!(r.code(), "malformed_json");
    assert_eq!(stored(), None);

    let r = s.put(path, &w.site_token, body(&a)).expect(201);
    assert_eq!(r.json["changed"], true);
    assert_eq!(r.json["site_id"], w.site_id.as_str());
    assert_eq!(stored(), Some(a.public_key()));
    let r = s.put(path, &w.site_token, body(&a)).expect(200);
    assert_eq!(r.json["changed"], false);
    // Another key needs an admin first.
    let r = s.put(path, &w.site_token, body(&b));
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "already_exists");
    assert_eq!(stored(), Some(a.public_key()));

    let del = format!("/api/v1/sites/{}/attestation-key", w.site_id);
    for token in [&w.ds_token, &w.ao_token, &w.site_token] {
        assert_eq!(s.call("DELETE", &del, Some(token), Body::None).status, 403);
    }
    assert_eq!(s.call("DELETE", &del, None, Body::None).status, 401);
    assert_eq!(stored(), Some(a.public_key()));
    s.call("DELETE", &del, Some(&s.admin_token), Body::None)
        .expect(204);
    assert_eq!(stored(), None);
    assert_eq!(
        s.call("DELETE", &del, Some(&s.admin_token), Body::None)
            .status,
        404
    );
    let unknown = format!("/api/v1/sites/{}/attestation-key", SiteId::new());
    assert_eq!(
        s.call("DELETE", &unknown, Some(&s.admin_token), Body::None)
            .status,
        404
    );
    s.put(path, &w.site_token, body(&b)).expect(201);
    assert_eq!(stored(), Some(b.public_key()));

    // Audited: two registrations, one refusal, one deletion, the denied deletions.
    let audit = s.audit();
    let count = |action: &str, outcome: AuditOutcome| {
        audit
            .iter()
            .filter(|e| e.action == action && e.outcome == outcome)
            .count()
    };
    assert_eq!(
        count("site.attestation_key.register", AuditOutcome::Success),
        2
    );
    assert_eq!(
        count("site.attestation_key.register", AuditOutcome::Denied),
        3 + 1
    );
    assert_eq!(
        count("site.attestation_key.delete", AuditOutcome::Success),
        1
    );
    assert_eq!(
        count("site.attestation_key.delete", AuditOutcome::Denied),
        4
    );
}

#[test]
fn attestation_policy_api() {
    let s = TestServer::sqlite();
    let w = world(&s, "p");
    let outsider = world(&s, "q");
    let p = project(&s, &w, "Policies", "sev-snp");
    let path = format!("/api/v1/projects/{}/attestation-policy", p.id);
    let pid: ProjectId = id(&p.id);
    let stored = || s.block_on(s.store.attestation_policy(pid)).unwrap();

    // Read: members and admin; not outsiders, agents or anonymous callers.
    for token in [&w.ao_token, &w.ds_token, &s.admin_token] {
        let r = s.get(&path, token).expect(200);
        assert_eq!(r.json["technology"], "sev-snp");
        assert_eq!(r.json["is_default"], true);
    }
    assert_eq!(s.get(&path, &outsider.ds_token).status, 404);
    assert_eq!(s.get(&path, &w.site_token).status, 403);
    assert_eq!(s.call("GET", &path, None, Body::None).status, 401);

    // Write: the DS or an admin.
    let m1 = "Ab".repeat(48);
    let policy = json!({
        "reference_measurements": [m1, m1],
        "min_snp_tcb": { "bootloader": 3, "tee": 0, "snp": 8, "microcode": 115 },
    });
    for (token, status) in [
        (&w.ao_token, 403),
        (&outsider.ds_token, 404),
        (&w.site_token, 403),
    ] {
        assert_eq!(s.put(&path, token, policy.clone()).status, status);
    }
    assert_eq!(
        s.call("PUT", &path, None, Body::Json(policy.clone()))
            .status,
        401
    );
    assert_eq!(stored(), None);
    let r = s.put(&path, &w.ds_token, policy.clone()).expect(200);
    assert_eq!(r.json["is_default"], false);
    assert_eq!(r.json["updated_by"], w.ds_user.as_str());
    // Normalized: lowercase, no duplicates.
    assert_eq!(
        r.json["policy"]["reference_measurements"],
        json!(["ab".repeat(48)])
    );
    let r = s.get(&path, &w.ao_token).expect(200);
    assert_eq!(r.json["policy"]["min_snp_tcb"]["snp"], 8);
    s.put(&path, &s.admin_token, policy.clone()).expect(200);

    // Bad policies change nothing.
    let before = stored().unwrap().policy;
    for bad in [
        json!({ "reference_measurements": ["abcd"] }),
        json!({ "reference_measurements": ["zz".repeat(48)] }),
        json!({ "accepted_tdx_tcb_status": ["UpToDate"] }),
        json!({ "min_simulated_svn": 2 }),
        json!({ "required_pcrs": [{ "index": 7, "sha256": "00".repeat(32) }] }),
        json!({ "extra_amd_chains_pem": ["not a pem"] }),
        json!({ "reference_measurements": vec!["00".repeat(48); 65] }),
    ] {
        let r = s.put(&path, &w.ds_token, bad.clone());
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.code(), "invalid_request");
    }
    let r = s.put(&path, &w.ds_token, json!({ "measurements": [] }));
    assert_eq!(r.code(), "malformed_json");
    assert_eq!(stored().unwrap().policy, before);

    // Audited.
    let sets = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "project.attestation_policy.set")
        .map(|e| e.outcome)
        .collect::<Vec<_>>();
    assert_eq!(
        sets.iter().filter(|o| **o == AuditOutcome::Success).count(),
        2
    );
    assert!(sets.iter().filter(|o| **o == AuditOutcome::Denied).count() >= 3);

    // A TDX project defaults to UpToDate; a deactivated project is read-only.
    let t = project(&s, &w, "Trust domains", "tdx");
    let tpath = format!("/api/v1/projects/{}/attestation-policy", t.id);
    let r = s.get(&tpath, &w.ds_token).expect(200);
    assert_eq!(
        r.json["policy"]["accepted_tdx_tcb_status"],
        json!(["UpToDate"])
    );
    s.block_on(
        s.store
            .set_project_state(id(&t.id), ProjectState::Deactivated),
    )
    .unwrap();
    let r = s.put(&tpath, &w.ds_token, json!({ "reference_measurements": [] }));
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "project_not_active");
}
