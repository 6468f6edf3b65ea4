//! Notifications, chat, search and the audit log (`docs/api/comms.md`).

use sealroom_types::{AuditEntry, ChatMessage, Notification, NotificationId, ProjectId, SearchHit};
use serde::Serialize;

use crate::{Call, Client, Result};

impl Client {
    /// `GET /api/v1/notifications`: the caller's notifications (the last 48 hours).
    pub fn notifications(&self) -> Result<Vec<Notification>> {
        self.list(Call::get("/api/v1/notifications"))
    }

    /// `POST /api/v1/notifications/{notification_id}/read`.
    pub fn mark_notification_read(&self, id: NotificationId) -> Result<()> {
        self.empty(Call::post(format!("/api/v1/notifications/{id}/read")))
    }

    /// `GET /api/v1/projects/{project_id}/chat` (members).
    pub fn chat(&self, project_id: ProjectId) -> Result<Vec<ChatMessage>> {
        self.list(Call::get(format!("/api/v1/projects/{project_id}/chat")))
    }

    /// `POST /api/v1/projects/{project_id}/chat` (members).
    pub fn post_chat(&self, project_id: ProjectId, body: &str) -> Result<ChatMessage> {
        #[derive(Serialize)]
        struct Body<'a> {
            body: &'a str,
        }
        self.json(Call::post(format!("/api/v1/projects/{project_id}/chat")).json(&Body { body })?)
    }

    /// `GET /api/v1/search?q=&limit=`: what the caller may see that matches.
    pub fn search(&self, q: &str, limit: Option<u32>) -> Result<Vec<SearchHit>> {
        self.list(
            Call::get("/api/v1/search")
                .query("q", q)
                .query_opt("limit", limit),
        )
    }

    /// `GET /api/v1/audit?after=&limit=` (admin): entries after a sequence number.
    pub fn audit(&self, after: Option<i64>, limit: Option<u32>) -> Result<Vec<AuditEntry>> {
        self.list(
            Call::get("/api/v1/audit")
                .query_opt("after", after)
                .query_opt("limit", limit),
        )
    }

    /// `GET /api/v1/audit/verify` (admin): the hash chain's check, as the server reports it.
    pub fn audit_verify(&self) -> Result<serde_json::Value> {
        self.value(Call::get("/api/v1/audit/verify"))
    }
}
