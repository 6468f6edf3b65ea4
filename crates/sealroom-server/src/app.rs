//! The whole server as one process: open the metadata store, blob store and key provider of a
//! data directory, make the first admin, and serve the control plane and the FHE repository.
//! `sealroom server`, `sealroom up` and `sealroom demo` all start it through [`start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sealroom_broker::KeyProviderConfig;
use sealroom_control::{ControlConfig, ControlState};
use zeroize::Zeroizing;

use crate::fhe::{FheConfig, FheState};

/// What to start.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where the database (SQLite), blobs, keys and FHE models live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `postgres://...` or `sqlite://...`; default SQLite in the data directory.
    pub database_url: Option<String>,
    /// The URL clients reach the server at; default `http://<listen address>`.
    pub public_url: Option<String>,
    /// Where KEK private keys live; default the encrypted file store in the data directory.
    pub key_provider: Option<KeyProviderConfig>,
    /// Limits and timings of the control plane.
    pub control: ControlConfig,
    /// Username of the first admin.
    pub admin_username: String,
}

impl ServerOptions {
    /// Defaults for a data directory and address.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        ServerOptions {
            data_dir,
            listen,
            database_url: None,
            public_url: None,
            key_provider: None,
            control: ControlConfig::default(),
            admin_username: "admin".into(),
        }
    }
}

/// A started server.
#[derive(Debug)]
pub struct Started {
    /// The bound address.
    pub addr: SocketAddr,
    /// The public URL.
    pub url: String,
    /// The control plane's state (for in-process seeding and the sweeper).
    pub state: ControlState,
    /// The first admin's one-time password, on the first start only.
    pub admin_password: Option<Zeroizing<String>>,
    /// Resolves when the server stops (an error of the listener).
    pub serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The metadata store could not be opened.
    #[error("metadata store: {0}")]
    Store(#[from] sealroom_store::StoreError),
    /// The blob store could not be opened.
    #[error("blob store: {0}")]
    Blobs(#[from] sealroom_blob::BlobError),
    /// The key provider could not be opened.
    #[error("key provider: {0}")]
    Keys(#[from] sealroom_broker::BrokerError),
    /// The FHE repository could not be opened.
    #[error("FHE repository: {0}")]
    Fhe(#[from] crate::fhe::SetupError),
    /// Binding the address failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Making the first admin failed.
    #[error("making the first admin: {0}")]
    Bootstrap(String),
}

/// Opens everything and starts serving on the current tokio runtime.
pub async fn start(opts: ServerOptions) -> Result<Started, StartError> {
    let dir = &opts.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let store_config = match &opts.database_url {
        Some(url) => sealroom_store::StoreConfig::from_url(url.clone()),
        None => sealroom_store::StoreConfig::sqlite_in_data_dir(dir),
    };
    let store: Arc<dyn sealroom_store::MetadataStore> =
        Arc::new(sealroom_store::SqlStore::connect(&store_config).await?);
    let blobs = Arc::new(sealroom_blob::LocalBlobStore::in_data_dir(dir).await?);
    let provider_config = opts
        .key_provider
        .clone()
        .unwrap_or(KeyProviderConfig::File {
            data_dir: dir.clone(),
        });
    let keys = sealroom_broker::open_provider(&provider_config)?;
    let signer =
        sealroom_control::load_or_create_url_signer(dir).map_err(|source| StartError::DataDir {
            path: dir.join("url-signing.key"),
            source,
        })?;
    let admin_password =
        sealroom_control::bootstrap_admin(&*store, "Platform", &opts.admin_username)
            .await
            .map_err(|f| StartError::Bootstrap(f.to_string()))?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: opts.listen,
        source,
    })?;
    let url = opts
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut control = opts.control.clone();
    control.public_url = url.trim_end_matches('/').to_string();
    let state = ControlState::new(store, blobs, keys, signer, control);
    let fhe = FheState::new(FheConfig {
        data_dir: Some(dir.clone()),
        ..FheConfig::default()
    })?;
    let router = crate::router(crate::ServerState {
        control: Some(state.clone()),
        fhe,
    });
    // Fails runs whose agent stopped sending heartbeats; purges old notifications.
    sealroom_control::sweeper::spawn(state.clone());
    let serving = tokio::spawn(crate::serve(listener, router));
    Ok(Started {
        addr,
        url,
        state,
        admin_password,
        serving,
    })
}
