//! Sealroom's control plane: the REST API under `/api/v1` (DESIGN.md §2), its OpenAPI document
//! at `/api/openapi.json` and Swagger UI at `/api/docs`.
//!
//! Every handler takes the [`extract::Caller`] and checks, here on the server, what the caller's
//! organization may do in the project at hand ([`access`]); denials are audited. Handlers are
//! grouped by resource under [`routes`]; each group registers its routes together with their
//! OpenAPI operations (`utoipa-axum`), so the document lists exactly the routes served — the
//! authorization test enumerates it.

pub mod access;
pub mod auth;
pub mod error;
pub mod extract;
pub mod provision;
pub mod routes;
pub mod sweeper;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use sealroom_blob::signed::UrlSigner;
use sealroom_blob::BlobStore;
use sealroom_broker::KeyProvider;
use sealroom_store::{MetadataStore, NewUser};
use sealroom_types::{ErrorCode, Name};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use zeroize::Zeroizing;

pub use error::{ApiResult, Failure};
pub use extract::Caller;

/// Limits and timings of the control plane. Each default is documented in `docs/server.md`.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// The URL clients and agents reach the server at (signed URLs are made with it).
    pub public_url: String,
    /// Largest JSON body (default 1 MiB).
    pub max_json_body: usize,
    /// Largest uploaded file: package, document, dataset object (default 8 GiB).
    pub max_upload: u64,
    /// Failed logins allowed per username and per address within `login_window` (default 5).
    pub login_max_failures: u32,
    /// The login rate window (default 5 minutes).
    pub login_window: Duration,
    /// How long a token lookup is cached (default 2 s; a revoked token stops working at once
    /// on this server, a disabled user's within this time).
    pub token_cache_ttl: Duration,
    /// A run whose agent sent no heartbeat for this long is failed (default 60 s).
    pub heartbeat_timeout: Duration,
    /// Lifetime of a key-release nonce (default 120 s).
    pub nonce_ttl: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            public_url: "http://127.0.0.1:8080".into(),
            max_json_body: 1 << 20,
            max_upload: 8 << 30,
            login_max_failures: 5,
            login_window: Duration::from_secs(300),
            token_cache_ttl: Duration::from_secs(2),
            heartbeat_timeout: Duration::from_secs(60),
            nonce_ttl: Duration::from_secs(120),
        }
    }
}

/// Shared state of every handler (cheap to clone).
#[derive(Debug, Clone)]
pub struct ControlState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) signer: UrlSigner,
    pub(crate) config: ControlConfig,
    pub(crate) limiter: auth::LoginLimiter,
    pub(crate) token_cache: TokenCache,
    /// Runs whose agents were last heard from at the given instant.
    pub(crate) heartbeats: Mutex<HashMap<sealroom_types::RunId, Instant>>,
    /// Woken when a run is initiated, so that waiting agents claim it at once.
    pub(crate) run_initiated: tokio::sync::Notify,
}

impl ControlState {
    /// State from its parts.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        keys: Arc<dyn KeyProvider>,
        signer: UrlSigner,
        config: ControlConfig,
    ) -> Self {
        let limiter = auth::LoginLimiter::new(config.login_max_failures, config.login_window);
        let token_cache = TokenCache::new(config.token_cache_ttl);
        ControlState {
            inner: Arc::new(Inner {
                store,
                blobs,
                keys,
                signer,
                config,
                limiter,
                token_cache,
                heartbeats: Mutex::new(HashMap::new()),
                run_initiated: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The metadata store.
    pub fn store(&self) -> &dyn MetadataStore {
        &*self.inner.store
    }

    /// The blob store.
    pub fn blobs(&self) -> &dyn BlobStore {
        &*self.inner.blobs
    }

    /// The key provider (shared, for blocking tasks).
    pub fn keys(&self) -> Arc<dyn KeyProvider> {
        self.inner.keys.clone()
    }

    /// The signed-URL signer.
    pub fn signer(&self) -> &UrlSigner {
        &self.inner.signer
    }

    /// The configuration.
    pub fn config(&self) -> &ControlConfig {
        &self.inner.config
    }

    /// Forgets every cached token lookup (after a logout, a revocation, a disabled user).
    pub fn forget_tokens(&self) {
        self.inner.token_cache.clear();
    }
}

/// A short-lived cache of token lookups: the project list and project page are read far more
/// often than tokens change.
#[derive(Debug)]
pub(crate) struct TokenCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl TokenCache {
    fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, hash: &str) -> Option<Caller> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(c, _)| c.clone())
    }

    pub(crate) fn put(&self, hash: String, caller: Caller) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= 10_000 {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= 10_000 {
                map.clear();
            }
        }
        map.insert(hash, (caller, Instant::now()));
    }

    pub(crate) fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sealroom API",
        description = "The control plane of Sealroom: projects, keys, artifacts, runs, the agent and key-broker APIs. \
Authenticate with `Authorization: Bearer <token>` (a session token from `POST /api/v1/auth/login`, an API token, or a site token for agents). \
Errors are `{\"code\": \"...\", \"message\": \"...\"}` with a stable code.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "accounts", description = "Sign-in, tokens, organizations, users, sites"),
        (name = "projects", description = "Projects, members, keys (KEK download, WCEK upload)"),
        (name = "artifacts", description = "Artifacts and versions: documents, packages, criteria, datasets"),
        (name = "storage", description = "The built-in storage of sealed files and its signed URLs"),
        (name = "runs", description = "Run configurations, run requests, runs, logs, outputs"),
        (name = "comms", description = "Notifications, chat, search, the audit log"),
        (name = "agent", description = "The enclave agent's API (site tokens)"),
        (name = "broker", description = "Attestation and key release (site tokens)"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every API route with its OpenAPI operation.
pub fn api_router() -> OpenApiRouter<ControlState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes::all())
}

/// The OpenAPI document (what `/api/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The control plane's router: the API, its documents, JSON 404/405s and the body limit.
pub fn router(state: ControlState) -> Router {
    let limit = state.config().max_json_body;
    let (api, doc) = api_router().split_for_parts();
    let docs: Router<ControlState> = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .url("/api/openapi.json", doc)
        .into();
    api.merge(docs)
        .fallback(fallback_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn fallback_not_found(uri: axum::http::Uri) -> Failure {
    Failure::new(
        ErrorCode::NotFound,
        format!("no route {}; the API is described at /api/docs", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    let body = sealroom_types::ApiError::new(
        ErrorCode::InvalidRequest,
        format!("{method} is not allowed on {}", uri.path()),
    );
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body))
}

/// Creates the platform organization and the first admin if there is no admin yet, and returns
/// the admin's one-time password (shown once by the caller, never stored in clear).
pub async fn bootstrap_admin(
    store: &dyn MetadataStore,
    org_name: &str,
    username: &str,
) -> ApiResult<Option<Zeroizing<String>>> {
    if store.has_admin().await? {
        return Ok(None);
    }
    let name = Name::parse(org_name).map_err(|e| Failure::invalid(e.to_string()))?;
    let org = match store.create_org(&name).await {
        Ok(o) => o,
        Err(sealroom_store::StoreError::AlreadyExists { .. }) => store
            .list_orgs()
            .await?
            .into_iter()
            .find(|o| o.name.as_str().eq_ignore_ascii_case(org_name))
            .ok_or_else(|| Failure::internal("the platform organization vanished"))?,
        Err(e) => return Err(e.into()),
    };
    let password = auth::random_password();
    let hash = auth::hash_password(&password).map_err(Failure::internal)?;
    store
        .create_user(NewUser {
            org_id: org.id,
            username: username.to_string(),
            display_name: "Platform admin".into(),
            is_admin: true,
            password_hash: hash,
        })
        .await?;
    Ok(Some(password))
}

/// The signed-URL key of a data directory (`<data-dir>/url-signing.key`, 32 random bytes,
/// mode 0600), made on first use.
pub fn load_or_create_url_signer(data_dir: &Path) -> std::io::Result<UrlSigner> {
    let path: PathBuf = data_dir.join("url-signing.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} must hold exactly 32 bytes", path.display()),
                )
            })?;
            Ok(UrlSigner::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = UrlSigner::generate();
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(signer.key_bytes())?;
            f.sync_all()?;
            Ok(signer)
        }
        Err(e) => Err(e),
    }
}

/// Serves `router` on an already bound listener until the process ends, with each request's
/// client address available to handlers (the login rate limiter uses it).
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}
