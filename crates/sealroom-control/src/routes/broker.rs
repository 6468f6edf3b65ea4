//! (to be written)

use utoipa_axum::router::OpenApiRouter;

use crate::ControlState;

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
}
