//! Notifications, chat, search and the audit log (`docs/api/comms.md`).

use sealroom_types::{
    AuditEntry, ChatMessageId, Notification, NotificationId, OrgId, ProjectId, SearchHit,
    Timestamp, UserId,
};
use serde::{Deserialize, Serialize};

use crate::{Call, Client, Result};

/// `GET /api/v1/notifications`: the caller's notifications and how many are unread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationList {
    /// The last 48 hours' notifications, newest first.
    pub items: Vec<Notification>,
    /// How many of them are unread.
    #[serde(default)]
    pub unread: usize,
}

/// A chat message as the server shows it (with its author's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatItem {
    /// Its ID (time-ordered).
    pub id: ChatMessageId,
    /// The project.
    pub project_id: ProjectId,
    /// The author's user ID.
    pub author: UserId,
    /// The author's display name.
    #[serde(default)]
    pub author_name: String,
    /// The author's organization.
    pub author_org_id: OrgId,
    /// The text.
    pub body: String,
    /// When.
    pub created_at: Timestamp,
}

/// One page of a project's chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatPage {
    /// Messages, oldest first.
    pub items: Vec<ChatItem>,
    /// Pass as `after` for the next page; absent when this page is not full.
    #[serde(default)]
    pub next_after: Option<ChatMessageId>,
}

/// One page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Entries in sequence order.
    pub items: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent when this page is not full.
    #[serde(default)]
    pub next_after: Option<i64>,
}

/// Most pages followed by the "every page" helpers (a server that never ends a listing would
/// otherwise keep the client busy forever).
const MAX_PAGES: usize = 10_000;

impl Client {
    /// `GET /api/v1/notifications`: the caller's notifications (the last 48 hours).
    pub fn notifications(&self) -> Result<NotificationList> {
        self.json(Call::get("/api/v1/notifications"))
    }

    /// `POST /api/v1/notifications/{notification_id}/read`.
    pub fn mark_notification_read(&self, id: NotificationId) -> Result<()> {
        self.empty(Call::post(format!("/api/v1/notifications/{id}/read")))
    }

    /// `GET /api/v1/projects/{project_id}/chat?after=&limit=` (members): one page, oldest first.
    pub fn chat_page(
        &self,
        project_id: ProjectId,
        after: Option<ChatMessageId>,
        limit: Option<u32>,
    ) -> Result<ChatPage> {
        self.json(
            Call::get(format!("/api/v1/projects/{project_id}/chat"))
                .query_opt("after", after)
                .query_opt("limit", limit),
        )
    }

    /// Every message of a project's chat, oldest first (follows the pages).
    pub fn chat(&self, project_id: ProjectId) -> Result<Vec<ChatItem>> {
        let mut all = Vec::new();
        let mut after = None;
        for _ in 0..MAX_PAGES {
            let page = self.chat_page(project_id, after, Some(500))?;
            all.extend(page.items);
            match page.next_after {
                Some(next) if Some(next) != after => after = Some(next),
                _ => break,
            }
        }
        Ok(all)
    }

    /// `POST /api/v1/projects/{project_id}/chat` (members).
    pub fn post_chat(&self, project_id: ProjectId, body: &str) -> Result<ChatItem> {
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

    /// `GET /api/v1/audit?after=&limit=` (admin): one page of entries after a sequence number.
    pub fn audit(&self, after: Option<i64>, limit: Option<u32>) -> Result<AuditPage> {
        self.json(
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
