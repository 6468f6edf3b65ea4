//! Notifications, chat and search.

use async_trait::async_trait;
use sealroom_types::*;
use sqlx::query;

use super::projects::{ensure_writable, project_in_tx};
use super::rows::R;
use super::{is_fk_violation, page_limit, Backend, SqlStore};
use crate::search::{fts5_query, tsquery};
use crate::{CommsStore, Result, StoreError, Viewer};

/// Longest chat message, in bytes (the API allows 4000 characters of up to 4 bytes each).
const MAX_CHAT: usize = 16 * 1024;

fn notification(row: &sqlx::any::AnyRow) -> Result<Notification> {
    let r = R::new(row, "notifications");
    Ok(Notification {
        id: r.p("id")?,
        user_id: r.p("user_id")?,
        project_id: r.p("project_id")?,
        run_id: r.op("run_id")?,
        kind: r.p("kind")?,
        message: r.s("message")?,
        created_at: r.ts("created_at")?,
        read: r.oi("read_at")?.is_some(),
    })
}

fn chat(row: &sqlx::any::AnyRow) -> Result<ChatMessage> {
    let r = R::new(row, "chat_messages");
    Ok(ChatMessage {
        id: r.p("id")?,
        project_id: r.p("project_id")?,
        author: r.p("author")?,
        author_org_id: r.p("author_org_id")?,
        body: r.s("body")?,
        created_at: r.ts("created_at")?,
    })
}

#[async_trait]
impl CommsStore for SqlStore {
    async fn list_notifications(&self, user: UserId, now: Timestamp) -> Result<Vec<Notification>> {
        self.fetch_all(
            query(
                "SELECT id, user_id, project_id, run_id, kind, message, created_at, read_at FROM notifications \
                 WHERE user_id = $1 AND created_at > $2 ORDER BY created_at DESC, id DESC",
            )
            .bind(user.to_string())
            .bind(now.plus_secs(-NOTIFICATION_TTL_SECS).as_millis()),
        )
        .await?
        .iter()
        .map(notification)
        .collect()
    }

    async fn mark_notification_read(&self, user: UserId, id: NotificationId) -> Result<()> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query("UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3")
                    .bind(Timestamp::now().as_millis())
                    .bind(id.to_string())
                    .bind(user.to_string()),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("notification", id));
        }
        tx.commit().await
    }

    async fn purge_notifications(&self, now: Timestamp) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query("DELETE FROM notifications WHERE created_at <= $1")
                    .bind(now.plus_secs(-NOTIFICATION_TTL_SECS).as_millis()),
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn post_chat(
        &self,
        project: ProjectId,
        author: UserId,
        author_org: OrgId,
        body: &str,
    ) -> Result<ChatMessage> {
        let body = body.trim();
        if body.is_empty() || body.len() > MAX_CHAT {
            return Err(StoreError::invalid(
                "chat message",
                format!("1 to {MAX_CHAT} bytes"),
            ));
        }
        let mut tx = self.write().await?;
        let p = project_in_tx(&mut tx, project).await?;
        ensure_writable(&p, "chat")?;
        let m = ChatMessage {
            id: ChatMessageId::new(),
            project_id: project,
            author,
            author_org_id: author_org,
            body: body.to_owned(),
            created_at: Timestamp::now(),
        };
        let r = tx
            .exec(
                query(
                    "INSERT INTO chat_messages (id, project_id, author, author_org_id, body, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(m.id.to_string())
                .bind(project.to_string())
                .bind(author.to_string())
                .bind(author_org.to_string())
                .bind(m.body.clone())
                .bind(m.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e) if is_fk_violation(&e) => return Err(StoreError::not_found("user", author)),
            r => r?,
        };
        tx.commit().await?;
        Ok(m)
    }

    async fn list_chat(
        &self,
        project: ProjectId,
        after: Option<ChatMessageId>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>> {
        self.fetch_all(
            query(
                "SELECT id, project_id, author, author_org_id, body, created_at FROM chat_messages \
                 WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(project.to_string())
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(page_limit(limit)),
        )
        .await?
        .iter()
        .map(chat)
        .collect()
    }

    async fn search(&self, viewer: Viewer, q: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let lim = page_limit(limit);
        let org = match viewer {
            Viewer::Admin => None,
            Viewer::Org(o) => Some(o.to_string()),
        };
        // `$3 = ''` means "no organization filter" (admins).
        let rows = match self.backend {
            Backend::Sqlite => {
                let Some(m) = fts5_query(q) else {
                    return Ok(Vec::new());
                };
                self.fetch_all(
                    query(
                        "SELECT d.kind, d.object_id, d.project_id, d.title \
                         FROM search_fts f JOIN search_docs d ON d.id = f.rowid \
                         WHERE search_fts MATCH $1 AND ($3 = '' OR d.project_id IN \
                           (SELECT project_id FROM project_members WHERE org_id = $3)) \
                         ORDER BY f.rank LIMIT $2",
                    )
                    .bind(m)
                    .bind(lim)
                    .bind(org.unwrap_or_default()),
                )
                .await?
            }
            Backend::Postgres => {
                let Some(m) = tsquery(q) else {
                    return Ok(Vec::new());
                };
                self.fetch_all(
                    query(
                        "SELECT kind, object_id, project_id, title FROM search_docs \
                         WHERE tsv @@ to_tsquery('simple', $1) AND ($3 = '' OR project_id IN \
                           (SELECT project_id FROM project_members WHERE org_id = $3)) \
                         ORDER BY ts_rank(tsv, to_tsquery('simple', $1)) DESC, object_id LIMIT $2",
                    )
                    .bind(m)
                    .bind(lim)
                    .bind(org.unwrap_or_default()),
                )
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                let r = R::new(row, "search");
                Ok(SearchHit {
                    kind: r.p("kind")?,
                    id: r.s("object_id")?,
                    project_id: r.p("project_id")?,
                    title: r.s("title")?,
                })
            })
            .collect()
    }
}
