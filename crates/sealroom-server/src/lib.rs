//! Sealroom server: the HTTP APIs.
//!
//! - [`control`]: the control plane's REST API (`/api/v1`), with the agent and key-broker APIs,
//!   OpenAPI at `/api/openapi.json`, Swagger UI at `/api/docs`;
//! - [`fhe`]: the FHE model repository (`/fhe/v1`).

pub mod app;
pub use sealroom_control as control;
pub mod fhe;

use axum::Router;

/// Everything the server serves, one module per API.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// The control plane; `None` serves only the FHE repository.
    pub control: Option<control::ControlState>,
    /// The FHE model repository.
    pub fhe: fhe::FheState,
}

/// The combined router.
pub fn router(state: ServerState) -> Router {
    let mut router = Router::new().merge(fhe::router(state.fhe));
    if let Some(control) = state.control {
        router = router.merge(control::router(control));
    }
    router
}

/// Serves `router` on an already bound listener until the process ends, with each request's
/// client address available to handlers (the login rate limiter uses it).
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    control::serve(listener, router).await
}
