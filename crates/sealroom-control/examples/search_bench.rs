//! Search speed: seeds 10,000 artifacts in two projects through the store API, then times 1,000
//! searches through `GET /api/v1/search` (a real server on a loopback port, as a member of one
//! organization: the organization filter applies) and 1,000 straight `MetadataStore::search`
//! calls, and prints p50 / p99 / max of each.
//!
//! ```text
//! cargo run -p sealroom-control --example search_bench
//! SEALROOM_BENCH_DATABASE_URL=postgres://... cargo run -p sealroom-control --example search_bench
//! ```
//!
//! On PostgreSQL the bench works in a fresh schema of that database and drops it at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealroom_control::{auth, ControlConfig, ControlState};
use sealroom_store::{
    AccountStore, ArtifactStore, CommsStore, MetadataStore, NewArtifact, NewProject, NewProjectKey,
    NewToken, NewUser, ProjectStore, SqlStore, StoreConfig, TokenKind, TokenSubject, Viewer,
};
use sealroom_types::{ArtifactKind, Name, ProjectId, Role, Technology};

const ARTIFACTS: usize = 10_000;
const SEARCHES: usize = 1_000;
const QUERIES: &[&str] = &[
    "cohort",
    "cardiology batch4",
    "zebrafish",
    "cohort spec 9998",
    "inclusion rules",
    "coh",
    "batch17 cardiology",
    "nothing matches this",
];

fn keys(stem: &str) -> Vec<NewProjectKey> {
    Role::ALL
        .iter()
        .map(|r| NewProjectKey {
            role: *r,
            public_der: format!("spki-{r}").into_bytes(),
            file_name: format!("{stem}-bench-{}.der", r.short()),
            encrypted_private: vec![0xEE; 64],
            provider: "file".into(),
            key_ref: "bench".into(),
        })
        .collect()
}

fn percentiles(label: &str, mut t: Vec<Duration>) {
    t.sort();
    let at = |p: f64| t[((t.len() as f64 * p).ceil() as usize).clamp(1, t.len()) - 1];
    println!(
        "{label:<28} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
        t.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        t[t.len() - 1].as_secs_f64() * 1e3,
    );
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let data_dir = tempfile::tempdir()?;
    let pg = std::env::var("SEALROOM_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let schema = format!("bench_{}", ProjectId::new().to_string().replace('-', ""));
    let store_config = match &pg {
        None => StoreConfig::sqlite_in_data_dir(data_dir.path()),
        Some(base) => {
            runtime.block_on(async {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::PgConnection::connect(base).await?;
                conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await?;
                anyhow::Ok(())
            })?;
            let sep = if base.contains('?') { '&' } else { '?' };
            StoreConfig::from_url(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        }
    };

    // Seed: two organizations' projects, 10k artifacts between them (even → project A).
    let (store, token, org_a) = runtime.block_on(async {
        let store = Arc::new(SqlStore::connect(&store_config).await?);
        let name = |s: &str| Name::parse(s).unwrap();
        let platform = store.create_org(&name("Platform")).await?;
        let admin = store
            .create_user(NewUser {
                org_id: platform.id,
                username: "admin".into(),
                display_name: "Admin".into(),
                is_admin: true,
                password_hash: "unused".into(),
            })
            .await?;
        let ao_a = store.create_org(&name("Model Co")).await?;
        let ao_b = store.create_org(&name("Other Co")).await?;
        let ds = store.create_org(&name("Hospital")).await?;
        let alice = store
            .create_user(NewUser {
                org_id: ao_a.id,
                username: "alice".into(),
                display_name: "Alice".into(),
                is_admin: false,
                password_hash: "unused".into(),
            })
            .await?;
        let mut projects = Vec::new();
        for (ao, pname) in [(ao_a.id, "Chest X-ray"), (ao_b.id, "Retina scans")] {
            let p = store
                .create_project(NewProject {
                    id: ProjectId::new(),
                    name: name(pname),
                    description: "bench project".into(),
                    technology: Technology::Simulated,
                    members: vec![(ao, Role::AlgorithmOwner), (ds.id, Role::DataSteward)],
                    keys: keys(pname),
                    created_by: admin.id,
                })
                .await?;
            projects.push((p.id, ao));
        }
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::<sealroom_store::Result<()>>::new();
        let workers = 8;
        for w in 0..workers {
            let (store, projects) = (store.clone(), projects.clone());
            let by = alice.id;
            set.spawn(async move {
                for i in (w..ARTIFACTS).step_by(workers) {
                    let (project, org) = projects[i % 2];
                    let special = if i == 4242 { " zebrafish" } else { "" };
                    store
                        .create_artifact(NewArtifact {
                            project_id: project,
                            kind: ArtifactKind::DataSpecification,
                            owner_org_id: org,
                            name: Name::parse(&format!("Cohort spec {i}")).unwrap(),
                            description: format!(
                                "Inclusion rules batch{} for cardiology{special}",
                                i % 100
                            ),
                            algorithm_type: None,
                            created_by: by,
                        })
                        .await?;
                }
                sealroom_store::Result::Ok(())
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        println!(
            "seeded {ARTIFACTS} artifacts in {:.1} s on {:?}",
            start.elapsed().as_secs_f64(),
            store.backend()
        );
        let (token, hash) = auth::mint_token(TokenKind::Api);
        store
            .create_token(NewToken {
                kind: TokenKind::Api,
                subject: TokenSubject::User(alice.id),
                token_hash: hash,
                name: "bench".into(),
                expires_at: None,
            })
            .await?;
        anyhow::Ok((store, token.to_string(), ao_a.id))
    })?;

    // The server.
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = runtime.block_on(async {
        let blobs = Arc::new(sealroom_blob::LocalBlobStore::in_data_dir(data_dir.path()).await?);
        let keys = sealroom_broker::open_provider(&sealroom_broker::KeyProviderConfig::File {
            data_dir: data_dir.path().to_path_buf(),
        })?;
        let signer = sealroom_control::load_or_create_url_signer(data_dir.path())?;
        let config = ControlConfig {
            public_url: url.clone(),
            ..ControlConfig::default()
        };
        anyhow::Ok(ControlState::new(
            store.clone(),
            blobs,
            keys,
            signer,
            config,
        ))
    })?;
    let router = sealroom_control::router(state);
    runtime.spawn(async move { sealroom_control::serve(listener, router).await });

    // Through the API, one keep-alive connection, as alice (organization filter on).
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut api = Vec::with_capacity(SEARCHES);
    let mut hits = 0usize;
    for i in 0..SEARCHES + 20 {
        let q = QUERIES[i % QUERIES.len()].replace(' ', "%20");
        let t = Instant::now();
        let mut resp = agent
            .get(&format!("{url}/api/v1/search?q={q}&limit=20"))
            .header("Authorization", format!("Bearer {token}"))
            .call()?;
        let body: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string()?)?;
        let took = t.elapsed();
        anyhow::ensure!(resp.status() == 200, "search failed: {body}");
        hits += body["items"].as_array().map_or(0, Vec::len);
        if i >= 20 {
            api.push(took); // the first 20 warm up
        }
    }

    // The store alone, as the same organization and as an admin.
    let (org, admin) = runtime.block_on(async {
        let mut org = Vec::with_capacity(SEARCHES);
        let mut admin = Vec::with_capacity(SEARCHES);
        for i in 0..SEARCHES {
            let q = QUERIES[i % QUERIES.len()];
            let t = Instant::now();
            store.search(Viewer::Org(org_a), q, 20).await?;
            org.push(t.elapsed());
            let t = Instant::now();
            store.search(Viewer::Admin, q, 20).await?;
            admin.push(t.elapsed());
        }
        anyhow::Ok((org, admin))
    })?;

    println!(
        "{SEARCHES} searches each, limit 20, over {} query shapes ({hits} API hits in all):",
        QUERIES.len()
    );
    percentiles("GET /api/v1/search (org)", api);
    percentiles("store.search (org)", org);
    percentiles("store.search (admin)", admin);

    if let Some(base) = &pg {
        runtime.block_on(async {
            store.close().await;
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::PgConnection::connect(base).await?;
            conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await?;
            anyhow::Ok(())
        })?;
    }
    runtime.shutdown_background();
    Ok(())
}
