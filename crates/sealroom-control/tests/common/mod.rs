//! Test harness of the control plane: a real server on a loopback port, on SQLite (a temp data
//! dir) or PostgreSQL (a fresh schema in SEALROOM_TEST_DATABASE_URL), with the file key provider
//! and local blobs; a blocking JSON client; and a two-organization world made through the API.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sealroom_control as control;
use sealroom_control::{ControlConfig, ControlState};
use serde_json::{json, Value};

/// A running server.
pub struct TestServer {
    pub url: String,
    pub admin_token: String,
    pub admin_password: String,
    pub data_dir: tempfile::TempDir,
    pub store: Arc<sealroom_store::SqlStore>,
    pub state: ControlState,
    runtime: Option<tokio::runtime::Runtime>,
    pg: Option<(String, String)>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            if let Some((base, schema)) = self.pg.take() {
                rt.block_on(async move {
                    use sqlx::{Connection, Executor};
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                        let _ = conn
                            .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                            .await;
                    }
                });
            }
            rt.shutdown_background();
        }
    }
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

fn pg_base() -> Option<String> {
    match std::env::var("SEALROOM_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("SEALROOM_TEST_DATABASE_URL is not set under CI=true: run scripts/setup/30-postgres.sh and source target/test-env.sh");
            }
            eprintln!("\n*** SKIPPING PostgreSQL server test: SEALROOM_TEST_DATABASE_URL is not set ***\n");
            None
        }
    }
}

impl TestServer {
    /// A server on SQLite.
    pub fn sqlite() -> TestServer {
        Self::start(Db::Sqlite, ControlConfig::default()).unwrap()
    }

    /// A server on PostgreSQL, or `None` (loudly) outside CI when none is configured.
    pub fn postgres() -> Option<TestServer> {
        Self::start(Db::Postgres, ControlConfig::default())
    }

    /// A server with a configuration.
    pub fn start(db: Db, mut config: ControlConfig) -> Option<TestServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let mut pg = None;
        let store_config = match db {
            Db::Sqlite => sealroom_store::StoreConfig::sqlite_in_data_dir(data_dir.path()),
            Db::Postgres => {
                let base = pg_base()?;
                let schema = format!(
                    "srv_{}",
                    sealroom_types::ProjectId::new()
                        .to_string()
                        .replace('-', "")
                );
                runtime.block_on(async {
                    use sqlx::{Connection, Executor};
                    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
                    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                        .await
                        .unwrap();
                });
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                pg = Some((base, schema));
                let mut c = sealroom_store::StoreConfig::from_url(url);
                c.max_connections = 8;
                c
            }
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        config.public_url = url.clone();
        let dir = data_dir.path().to_path_buf();
        let (store, state, password) = runtime.block_on(async move {
            let store = Arc::new(
                sealroom_store::SqlStore::connect(&store_config)
                    .await
                    .unwrap(),
            );
            let blobs = Arc::new(
                sealroom_blob::LocalBlobStore::in_data_dir(&dir)
                    .await
                    .unwrap(),
            );
            let keys = sealroom_broker::open_provider(&sealroom_broker::KeyProviderConfig::File {
                data_dir: dir.clone(),
            })
            .unwrap();
            let signer = control::load_or_create_url_signer(&dir).unwrap();
            let password = control::bootstrap_admin(&*store, "Platform", "admin")
                .await
                .unwrap()
                .expect("first start makes an admin");
            let state = ControlState::new(store.clone(), blobs, keys, signer, config);
            (store, state, password.to_string())
        });
        let router = control::router(state.clone());
        runtime.spawn(async move {
            sealroom_control::serve(listener, router).await.unwrap();
        });
        let mut server = TestServer {
            url,
            admin_token: String::new(),
            admin_password: password.clone(),
            data_dir,
            store,
            state,
            runtime: Some(runtime),
            pg,
        };
        server.admin_token = server.login("admin", &password);
        Some(server)
    }

    /// Runs a future on the server's runtime (direct store access in tests).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.as_ref().unwrap().block_on(f)
    }

    /// Signs in; returns the session token.
    pub fn login(&self, username: &str, password: &str) -> String {
        let r = self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Body::Json(json!({ "username": username, "password": password })),
        );
        assert_eq!(r.status, 200, "login {username}: {}", r.text());
        r.json["token"].as_str().unwrap().to_string()
    }

    /// One request.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Body) -> Resp {
        call(&self.url, method, path, token, body)
    }

    /// GET with a token.
    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, Some(token), Body::None)
    }

    /// POST JSON with a token.
    pub fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call("POST", path, Some(token), Body::Json(body))
    }
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    /// Raw bytes with a content type.
    Raw(&'static str, Vec<u8>),
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    /// Asserts the status, showing the body otherwise.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    )
}

/// One request to `base`.
pub fn call(base: &str, method: &str, path: &str, token: Option<&str>, body: Body) -> Resp {
    let uri = format!("{base}{path}");
    let mut req = ureq::http::Request::builder().method(method).uri(&uri);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let bytes = match body {
        Body::None => Vec::new(),
        Body::Json(v) => {
            req = req.header("Content-Type", "application/json");
            serde_json::to_vec(&v).unwrap()
        }
        Body::Raw(ct, b) => {
            req = req.header("Content-Type", ct);
            b
        }
    };
    let req = req.body(bytes).unwrap();
    let resp = agent().run(req).unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let bytes = resp
        .into_body()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        bytes,
        json,
    }
}

/// Two organizations with a user each, a DS site, and an admin token.
pub struct World {
    pub ao_org: String,
    pub ds_org: String,
    pub ao_token: String,
    pub ds_token: String,
    pub ao_user: String,
    pub ds_user: String,
    pub site_id: String,
    pub site_token: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

/// Creates the AO and DS organizations, one user in each, and a site of the DS.
pub fn world(s: &TestServer, tag: &str) -> World {
    let org = |name: &str| {
        s.post("/api/v1/orgs", &s.admin_token, json!({ "name": name }))
            .expect(201)
            .json["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ao_org = org(&format!("Model Co {tag}"));
    let ds_org = org(&format!("General Hospital {tag}"));
    let user = |org: &str, name: &str| {
        s.post(
            "/api/v1/users",
            &s.admin_token,
            json!({ "org_id": org, "username": name, "password": PASSWORD }),
        )
        .expect(201)
        .json["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ao_user = user(&ao_org, &format!("alice-{tag}"));
    let ds_user = user(&ds_org, &format!("dave-{tag}"));
    let site = s
        .post(
            &format!("/api/v1/orgs/{ds_org}/sites"),
            &s.admin_token,
            json!({ "name": format!("Hospital site {tag}") }),
        )
        .expect(201);
    World {
        ao_token: s.login(&format!("alice-{tag}"), PASSWORD),
        ds_token: s.login(&format!("dave-{tag}"), PASSWORD),
        ao_org,
        ds_org,
        ao_user,
        ds_user,
        site_id: site.json["site"]["id"].as_str().unwrap().to_string(),
        site_token: site.json["token"].as_str().unwrap().to_string(),
    }
}

impl TestServer {
    /// A project between the world's AO and DS organizations, made directly (keys through the
    /// key provider, as `POST /api/v1/projects` does). Returns its ID.
    pub fn project(&self, w: &World, name: &str, technology: &str) -> String {
        let admin = self
            .block_on(sealroom_store::AccountStore::user_credentials(
                &*self.store,
                "admin",
            ))
            .unwrap()
            .unwrap()
            .user;
        let p = self
            .block_on(sealroom_control::provision::create_project(
                &self.state,
                sealroom_types::Name::parse(name).unwrap(),
                format!("{name}, made by the test harness"),
                technology.parse().unwrap(),
                vec![
                    (
                        w.ao_org.parse().unwrap(),
                        sealroom_types::Role::AlgorithmOwner,
                    ),
                    (w.ds_org.parse().unwrap(), sealroom_types::Role::DataSteward),
                ],
                admin.id,
            ))
            .unwrap();
        p.id.to_string()
    }
}
