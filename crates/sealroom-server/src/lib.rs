//! Sealroom server: the HTTP APIs.
//!
//! For now this crate holds the FHE model repository ([`fhe`]); the control plane joins it
//! later as its own module, merged into [`router`].

pub mod fhe;

use axum::Router;

/// Everything the server serves, one module per API.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// The FHE model repository.
    pub fhe: fhe::FheState,
}

/// The combined router.
pub fn router(state: ServerState) -> Router {
    Router::new().merge(fhe::router(state.fhe))
}

/// Serves `router` on an already bound listener until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}
