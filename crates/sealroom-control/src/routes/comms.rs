//! Notifications, project chat, search and the audit log.
//!
//! | method path | who |
//! |---|---|
//! | `GET /api/v1/notifications` | a user (own notifications of the last 48 hours) |
//! | `POST /api/v1/notifications/{notification_id}/read` | a user (own; someone else's → 404) |
//! | `GET/POST /api/v1/projects/{project_id}/chat` | project members (admins who are not members → 403) |
//! | `GET /api/v1/search?q=&limit=` | a user (admins: every project; others: their organization's) |
//! | `GET /api/v1/audit?after=&limit=` | admin |
//! | `GET /api/v1/audit/verify` | admin |

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sealroom_store::{AuditProblem, AuditVerification, Viewer};
use sealroom_types::{
    AuditEntry, AuditOutcome, ChatMessage, ChatMessageId, ErrorCode, Notification, NotificationId,
    ProjectId, SearchHit, Timestamp, UserId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::extract::{parse_id, Caller, JsonBody, PathId, UserCaller, DEFAULT_PAGE, MAX_PAGE, Q};
use crate::{ApiResult, ControlState, Failure};

/// Longest chat message, in characters (after trimming).
pub const MAX_CHAT_CHARS: usize = 4000;
/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Default number of search hits.
pub const DEFAULT_SEARCH_LIMIT: u32 = 20;
/// Most search hits per request.
pub const MAX_SEARCH_LIMIT: u32 = 100;

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(mark_notification_read))
        .routes(routes!(list_chat, post_chat))
        .routes(routes!(search))
        .routes(routes!(list_audit))
        .routes(routes!(verify_audit))
}

/// The user, or 401/403 (audited).
async fn user<'c>(
    state: &ControlState,
    caller: &'c Caller,
    action: &str,
) -> ApiResult<&'c UserCaller> {
    match caller.user() {
        Ok(u) => Ok(u),
        Err(f) => {
            state.deny(caller, action, None, None, &f).await;
            Err(f)
        }
    }
}

/// A platform admin, or 401/403 (audited).
async fn admin<'c>(
    state: &ControlState,
    caller: &'c Caller,
    action: &str,
) -> ApiResult<&'c UserCaller> {
    match caller.admin() {
        Ok(u) => Ok(u),
        Err(f) => {
            state.deny(caller, action, None, None, &f).await;
            Err(f)
        }
    }
}

/// A page size: `None` → `default`, otherwise 1..=`max` (400 outside).
fn page_size(limit: Option<u32>, default: u32, max: u32) -> ApiResult<u32> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(Failure::invalid(format!("limit must be 1 to {max}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications

/// The caller's notifications.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationList {
    /// Notifications of the last 48 hours, newest first (`id`, `user_id`, `project_id`,
    /// `run_id`, `kind`: `run_requested | run_rejected | run_completed | run_failed`,
    /// `message`, `created_at`, `read`).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Notification>,
    /// How many of them are unread.
    pub unread: usize,
}

/// The caller's notifications of the last 48 hours, newest first, with their read markers.
#[utoipa::path(get, path = "/api/v1/notifications", tag = tags::COMMS,
    responses((status = 200, body = NotificationList), (status = 401), (status = 403)))]
async fn list_notifications(
    State(state): State<ControlState>,
    caller: Caller,
) -> ApiResult<Json<NotificationList>> {
    let user = user(&state, &caller, "notification.list").await?;
    let items = state
        .store()
        .list_notifications(user.user.id, Timestamp::now())
        .await?;
    let unread = items.iter().filter(|n| !n.read).count();
    Ok(Json(NotificationList { items, unread }))
}

/// Marks one of the caller's notifications read (idempotent). Someone else's notification, or
/// one older than 48 hours, is 404.
#[utoipa::path(post, path = "/api/v1/notifications/{notification_id}/read", tag = tags::COMMS,
    params(("notification_id" = String, Path, description = "the notification's ID")),
    responses((status = 204), (status = 400, description = "not a notification ID"),
        (status = 401), (status = 403, description = "a site token"), (status = 404)))]
async fn mark_notification_read(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<NotificationId>,
) -> ApiResult<StatusCode> {
    let user = user(&state, &caller, "notification.read").await?;
    let live = state
        .store()
        .list_notifications(user.user.id, Timestamp::now())
        .await?;
    let Some(n) = live.iter().find(|n| n.id == id) else {
        let f = Failure::not_found("notification", id);
        state
            .deny(
                &caller,
                "notification.read",
                None,
                Some(format!("notification:{id}")),
                &f,
            )
            .await;
        return Err(f);
    };
    if n.read {
        return Ok(StatusCode::NO_CONTENT);
    }
    state
        .store()
        .mark_notification_read(user.user.id, id)
        .await?;
    state
        .audit_required(
            &caller,
            "notification.read",
            AuditOutcome::Success,
            Some(n.project_id),
            Some(format!("notification:{id}")),
            serde_json::json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Chat

/// A chat message with its author's name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatItem {
    /// Its ID (time-ordered).
    #[schema(value_type = String)]
    pub id: ChatMessageId,
    /// The project.
    #[schema(value_type = String)]
    pub project_id: ProjectId,
    /// The author's user ID.
    #[schema(value_type = String)]
    pub author: UserId,
    /// The author's display name.
    pub author_name: String,
    /// The author's organization.
    #[schema(value_type = String)]
    pub author_org_id: sealroom_types::OrgId,
    /// The text.
    pub body: String,
    /// When, RFC 3339.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl ChatItem {
    fn new(m: ChatMessage, author_name: String) -> Self {
        ChatItem {
            id: m.id,
            project_id: m.project_id,
            author: m.author,
            author_name,
            author_org_id: m.author_org_id,
            body: m.body,
            created_at: m.created_at,
        }
    }
}

/// One page of a project's chat.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatPage {
    /// Messages, oldest first.
    pub items: Vec<ChatItem>,
    /// Pass as `after` for the next page; absent when this page is not full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub next_after: Option<ChatMessageId>,
}

/// `?after=&limit=` of the chat.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatParams {
    /// Only messages after this message ID (the previous page's `next_after`).
    pub after: Option<String>,
    /// Messages per page (default 50, at most 500).
    pub limit: Option<u32>,
}

/// A new chat message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChatMessage {
    /// The text: 1 to 4000 characters after trimming; line breaks and tabs are kept, other
    /// control characters are refused.
    pub body: String,
}

/// Checks a message and returns it trimmed.
fn chat_body(body: &str) -> ApiResult<&str> {
    let body = body.trim();
    let n = body.chars().count();
    if n == 0 || n > MAX_CHAT_CHARS {
        return Err(Failure::invalid(format!(
            "a chat message has 1 to {MAX_CHAT_CHARS} characters (it has {n} after trimming)"
        )));
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Failure::invalid(
            "a chat message may not hold control characters other than line breaks and tabs",
        ));
    }
    Ok(body)
}

/// Display names of the authors of `messages`.
async fn author_names(
    state: &ControlState,
    messages: &[ChatMessage],
) -> ApiResult<HashMap<UserId, String>> {
    let mut names = HashMap::new();
    for m in messages {
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(m.author) {
            e.insert(state.store().get_user(m.author).await?.display_name);
        }
    }
    Ok(names)
}

/// A project's chat, oldest first (members only).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/chat", tag = tags::COMMS,
    params(("project_id" = String, Path), ChatParams),
    responses((status = 200, body = ChatPage), (status = 400), (status = 401),
        (status = 403, description = "not a member (admins included)"), (status = 404)))]
async fn list_chat(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    Q(params): Q<ChatParams>,
) -> ApiResult<Json<ChatPage>> {
    state
        .require_member(&caller, project_id, "chat.list")
        .await?;
    let limit = page_size(params.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let after: Option<ChatMessageId> = params.after.as_deref().map(parse_id).transpose()?;
    let messages = state.store().list_chat(project_id, after, limit).await?;
    let names = author_names(&state, &messages).await?;
    let next_after = (messages.len() == limit as usize)
        .then(|| messages.last().map(|m| m.id))
        .flatten();
    let items = messages
        .into_iter()
        .map(|m| {
            let name = names.get(&m.author).cloned().unwrap_or_default();
            ChatItem::new(m, name)
        })
        .collect();
    Ok(Json(ChatPage { items, next_after }))
}

/// Posts a message to a project's chat (members only; refused on deactivated projects).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/chat", tag = tags::COMMS,
    params(("project_id" = String, Path)), request_body = NewChatMessage,
    responses((status = 201, body = ChatItem), (status = 400), (status = 401),
        (status = 403, description = "not a member (admins included)"), (status = 404),
        (status = 409, description = "project_not_active: the project is deactivated")))]
async fn post_chat(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    JsonBody(req): JsonBody<NewChatMessage>,
) -> ApiResult<(StatusCode, Json<ChatItem>)> {
    let access = state
        .require_member(&caller, project_id, "chat.post")
        .await?;
    let user = caller.user()?;
    let body = chat_body(&req.body)?;
    if !access.project.state.allows_writes() {
        return Err(Failure::new(
            ErrorCode::ProjectNotActive,
            format!(
                "the project is {}: its chat is read-only",
                access.project.state
            ),
        ));
    }
    let m = state
        .store()
        .post_chat(project_id, user.user.id, user.user.org_id, body)
        .await?;
    state
        .audit_required(
            &caller,
            "chat.post",
            AuditOutcome::Success,
            Some(project_id),
            Some(format!("chat:{}", m.id)),
            serde_json::json!({ "chars": m.body.chars().count() }),
        )
        .await?;
    let name = user.user.display_name.clone();
    Ok((StatusCode::CREATED, Json(ChatItem::new(m, name))))
}

// ---------------------------------------------------------------------------------------------
// Search

/// `?q=&limit=` of a search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to look for (1 to 200 characters); every word must match the start of a word in a
    /// name, description or version tag; case-insensitive.
    pub q: Option<String>,
    /// Most hits (default 20, at most 100).
    pub limit: Option<u32>,
}

/// Search results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// Hits, best first: `{kind: project|artifact|version|run_config, id, project_id, title}`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<SearchHit>,
}

/// Searches the names, descriptions and version tags of projects, artifacts, versions and run
/// configurations the caller may see: admins every project, other users their organization's
/// projects.
#[utoipa::path(get, path = "/api/v1/search", tag = tags::COMMS, params(SearchParams),
    responses((status = 200, body = SearchResults), (status = 400), (status = 401), (status = 403)))]
async fn search(
    State(state): State<ControlState>,
    caller: Caller,
    Q(params): Q<SearchParams>,
) -> ApiResult<Json<SearchResults>> {
    let user = user(&state, &caller, "search").await?;
    let q = params.q.as_deref().unwrap_or("").trim();
    let n = q.chars().count();
    if n == 0 || n > MAX_QUERY_CHARS {
        return Err(Failure::invalid(format!(
            "q must have 1 to {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = page_size(params.limit, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)?;
    let viewer = if user.user.is_admin {
        Viewer::Admin
    } else {
        Viewer::Org(user.user.org_id)
    };
    let items = state.store().search(viewer, q, limit).await?;
    Ok(Json(SearchResults { items }))
}

// ---------------------------------------------------------------------------------------------
// Audit log

/// `?after=&limit=` of the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries with a sequence number above this (default 0: from the start).
    pub after: Option<i64>,
    /// Entries per page (default 50, at most 500).
    pub limit: Option<u32>,
}

/// One page of the audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Entries in sequence order: `seq`, `at`, `actor`, `action`, `outcome`, `project_id`,
    /// `object`, `detail` (JSON text, as hashed), `prev_hash`, `hash`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent when this page is not full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// The audit log in sequence order (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = tags::COMMS, params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400), (status = 401), (status = 403)))]
async fn list_audit(
    State(state): State<ControlState>,
    caller: Caller,
    Q(params): Q<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    admin(&state, &caller, "audit.list").await?;
    let after = params.after.unwrap_or(0);
    if after < 0 {
        return Err(Failure::invalid("after must be 0 or more"));
    }
    let limit = page_size(params.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let items = state.store().list_audit(after, limit).await?;
    let next_after = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage { items, next_after }))
}

/// One problem of the audit chain.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuditProblemInfo {
    /// `modified` (the entry's content no longer matches its hash), `missing` (entries
    /// `from_seq..=to_seq` were deleted) or `broken_link` (the entry before `seq` was modified
    /// and re-hashed, or `seq` was re-linked).
    pub kind: String,
    /// The entry (`modified`, `broken_link`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// First missing entry (`missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<i64>,
    /// Last missing entry (`missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<i64>,
    /// A sentence naming the entry.
    pub message: String,
}

impl From<&AuditProblem> for AuditProblemInfo {
    fn from(p: &AuditProblem) -> Self {
        let message = p.to_string();
        match *p {
            AuditProblem::Modified { seq } => AuditProblemInfo {
                kind: "modified".into(),
                seq: Some(seq),
                from_seq: None,
                to_seq: None,
                message,
            },
            AuditProblem::BrokenLink { seq } => AuditProblemInfo {
                kind: "broken_link".into(),
                seq: Some(seq),
                from_seq: None,
                to_seq: None,
                message,
            },
            AuditProblem::Missing { from_seq, to_seq } => AuditProblemInfo {
                kind: "missing".into(),
                seq: None,
                from_seq: Some(from_seq),
                to_seq: Some(to_seq),
                message,
            },
        }
    }
}

/// The result of checking the audit chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditReport {
    /// Whether every entry is present and unmodified.
    pub intact: bool,
    /// Entries read.
    pub entries_checked: u64,
    /// The last sequence number the chain's head records.
    pub head_seq: i64,
    /// Problems in sequence order; empty when intact.
    pub problems: Vec<AuditProblemInfo>,
}

impl From<&AuditVerification> for AuditReport {
    fn from(v: &AuditVerification) -> Self {
        AuditReport {
            intact: v.is_intact(),
            entries_checked: v.entries_checked,
            head_seq: v.head_seq,
            problems: v.problems.iter().map(AuditProblemInfo::from).collect(),
        }
    }
}

/// Recomputes every hash and link of the audit log and names each modified or deleted entry
/// (admin). The check itself is then recorded (`audit.verify`).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = tags::COMMS,
    responses((status = 200, body = AuditReport), (status = 401), (status = 403)))]
async fn verify_audit(
    State(state): State<ControlState>,
    caller: Caller,
) -> ApiResult<Json<AuditReport>> {
    admin(&state, &caller, "audit.verify").await?;
    let v = state.store().verify_audit_chain().await?;
    let report = AuditReport::from(&v);
    state
        .audit_required(
            &caller,
            "audit.verify",
            if report.intact {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            },
            None,
            None,
            serde_json::json!({
                "entries_checked": report.entries_checked,
                "head_seq": report.head_seq,
                "problems": report.problems.iter().map(|p| &p.message).collect::<Vec<_>>(),
            }),
        )
        .await?;
    Ok(Json(report))
}
