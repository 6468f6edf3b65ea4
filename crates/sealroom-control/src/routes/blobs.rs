//! (to be written)

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::ControlState;

/// This group's API routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
}

/// Routes outside the API (signed URLs), not in the OpenAPI document.
pub fn public_routes() -> Router<ControlState> {
    Router::new()
}
