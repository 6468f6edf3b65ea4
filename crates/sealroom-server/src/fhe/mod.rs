//! FHE model repository: publish quantized models, register evaluation keys, evaluate the
//! first layers on encrypted inputs within a time budget, and (as the model owner's endpoint)
//! finish the remaining layers in the clear. The protocol is in `docs/fhe.md`.
//!
//! | method path | does |
//! |---|---|
//! | `GET /fhe/v1/models` | list published models |
//! | `POST /fhe/v1/models` | publish a model document (JSON) → `201 {"id"}` |
//! | `GET /fhe/v1/models/{id}` | the model's public description (no weights) |
//! | `GET /fhe/v1/models/{id}/plan?layers=K` | what the client needs to encrypt for split K |
//! | `PUT /fhe/v1/models/{id}/keys` | upload a compressed server key → `201 {"key_id"}` |
//! | `GET /fhe/v1/models/{id}/keys/{key_id}` | whether that key is registered |
//! | `POST /fhe/v1/models/{id}/infer?key=ID&layers=K` | input ciphertext → output ciphertext |
//! | `POST /fhe/v1/models/{id}/finish` | the owner's endpoint: activations → outputs |

mod api;
pub mod client;
pub mod demo;
mod keys;
mod repo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use keys::KeyCache;
pub use repo::ModelRepo;

/// Limits and budgets of the FHE API. Each has its default here and is documented in
/// `docs/fhe.md`.
#[derive(Debug, Clone)]
pub struct FheConfig {
    /// Wall-clock budget per inference request, queueing included (default 60 s).
    pub time_budget: Duration,
    /// Largest uploaded server key (default 128 MiB; a `fast` key is 28.5 MB, `precise` 122 MB).
    pub max_key_bytes: usize,
    /// Largest input ciphertext (default 1 MiB).
    pub max_input_bytes: usize,
    /// Largest model document (default 32 MiB).
    pub max_model_bytes: usize,
    /// Prepared keys kept in memory (default 4; about 130 MiB each for `fast`).
    pub max_keys: usize,
    /// Where published models are stored (`<dir>/fhe/models/*.json`); memory only if `None`.
    pub data_dir: Option<PathBuf>,
}

impl Default for FheConfig {
    fn default() -> Self {
        FheConfig {
            time_budget: Duration::from_secs(60),
            max_key_bytes: 128 << 20,
            max_input_bytes: 1 << 20,
            max_model_bytes: sealroom_fhe::model::MAX_MODEL_BYTES,
            max_keys: 4,
            data_dir: None,
        }
    }
}

/// Shared state of the FHE API.
#[derive(Debug, Clone)]
pub struct FheState {
    pub(crate) config: Arc<FheConfig>,
    pub(crate) repo: Arc<ModelRepo>,
    pub(crate) keys: Arc<KeyCache>,
    /// One evaluation at a time: bootstraps already use every core.
    pub(crate) eval_slot: Arc<tokio::sync::Semaphore>,
}

/// Errors setting up the FHE API.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The model directory could not be read or created.
    #[error("model repository at {path}: {source}")]
    Repo {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored model no longer validates.
    #[error("stored model {path}: {message}")]
    StoredModel {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Binding or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

impl FheState {
    /// State with the given configuration; loads stored models from `data_dir`.
    pub fn new(config: FheConfig) -> Result<Self, SetupError> {
        let repo = ModelRepo::open(config.data_dir.clone())?;
        Ok(FheState {
            keys: Arc::new(KeyCache::new(config.max_keys)),
            config: Arc::new(config),
            repo: Arc::new(repo),
            eval_slot: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// The model repository.
    pub fn repo(&self) -> &ModelRepo {
        &self.repo
    }
}

/// The FHE routes.
pub fn router(state: FheState) -> Router {
    api::routes(state)
}

/// A server running on a background thread (for the demo and tests); stops when dropped.
#[derive(Debug)]
pub struct BackgroundServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Base URL, e.g. `http://127.0.0.1:38211`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Starts the FHE API on `addr` (port 0 picks one) on a background thread.
pub fn spawn(config: FheConfig, addr: SocketAddr) -> Result<BackgroundServer, SetupError> {
    let state = FheState::new(config)?;
    let rt = runtime()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state);
    let thread = std::thread::spawn(move || {
        rt.block_on(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
    });
    Ok(BackgroundServer {
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Serves the FHE API on `addr` until the process is stopped.
pub fn serve_blocking(
    config: FheConfig,
    addr: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), SetupError> {
    let state = FheState::new(config)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        on_ready(listener.local_addr()?);
        axum::serve(listener, router(state)).await
    })?;
    Ok(())
}
