//! The API's routes, one module per resource. Each module's `routes()` registers its handlers
//! with their OpenAPI operations.
//!
//! Conventions every handler keeps:
//! - take the [`Caller`](super::Caller) and check it first (`caller.user()?`, `caller.admin()?`,
//!   `state.require_role(..)`), before reading the body or touching the store;
//! - take bodies as [`JsonBody`](super::extract::JsonBody) (or a streamed upload with its own
//!   limit), IDs as [`PathId`](super::extract::PathId) / [`parse_id`](super::extract::parse_id);
//! - return [`ApiResult`](super::ApiResult); create → 201, delete/no content → 204;
//! - audit state changes, downloads and key operations with `state.audit_required(..)`.

pub mod accounts;
pub mod agent;
pub mod artifacts;
pub mod blobs;
pub mod broker;
pub mod comms;
pub mod projects;
pub mod runs;

use utoipa_axum::router::OpenApiRouter;

use super::ControlState;

/// OpenAPI tags, one per module.
pub mod tags {
    /// Sign-in, tokens, organizations, users, sites.
    pub const ACCOUNTS: &str = "accounts";
    /// Projects, members, keys.
    pub const PROJECTS: &str = "projects";
    /// Artifacts and versions.
    pub const ARTIFACTS: &str = "artifacts";
    /// Run configurations, run requests, runs.
    pub const RUNS: &str = "runs";
    /// The agent API (site tokens).
    pub const AGENT: &str = "agent";
    /// The key broker (site tokens).
    pub const BROKER: &str = "broker";
    /// Notifications, chat, search, audit.
    pub const COMMS: &str = "comms";
    /// The built-in blob store.
    pub const STORAGE: &str = "storage";
}

/// Every group.
pub fn all() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(projects::routes())
        .merge(artifacts::routes())
        .merge(runs::routes())
        .merge(agent::routes())
        .merge(broker::routes())
        .merge(comms::routes())
        .merge(blobs::routes())
}
