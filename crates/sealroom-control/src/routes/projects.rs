//! Projects, their members and settings, and the per-role keys: the KEK download and the WCEK
//! upload (checked to unwrap by the key provider before it is stored).
//!
//! | method path | who |
//! |---|---|
//! | `POST /api/v1/projects` | admin |
//! | `GET /api/v1/projects` | a user (its organization's projects; admins: all) |
//! | `GET /api/v1/projects/{project_id}` | members, admin |
//! | `PUT /api/v1/projects/{project_id}/state` | admin |
//! | `POST /api/v1/projects/{project_id}/members` | admin |
//! | `PUT /api/v1/projects/{project_id}/settings` | DS |
//! | `GET /api/v1/projects/{project_id}/keys/{role}/kek` | members of that role |
//! | `POST /api/v1/projects/{project_id}/keys/{role}/wcek` | members of that role |
//! | `GET /api/v1/projects/{project_id}/keys/{role}/wceks` | members |
//!
//! `docs/api/projects.md` lists bodies, answers and errors.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt as _;
use sealroom_store::{NewWcek, Viewer};
use sealroom_types::{
    AuditOutcome, ErrorCode, Name, OrgId, Project, ProjectId, ProjectKeyInfo, ProjectState, Role,
    Technology, WcekVersion, MAX_DESCRIPTION_LEN,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::access::ProjectAccess;
use crate::extract::{has_content_type, parse_id, Caller, JsonBody, PageParams, PathId, Q};
use crate::provision::{kek_label, sealed_private};
use crate::{ApiResult, ControlState, Failure};

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project))
        .routes(routes!(set_state))
        .routes(routes!(add_member))
        .routes(routes!(set_settings))
        .routes(routes!(download_kek))
        .routes(routes!(upload_wcek))
        .routes(routes!(list_wceks))
}

/// Most member organizations a new project may list.
const MAX_MEMBERS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Shapes

/// A member organization with its name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberInfo {
    /// The organization.
    #[schema(value_type = String)]
    pub org_id: OrgId,
    /// Its name.
    #[schema(value_type = String)]
    pub org_name: Name,
    /// `algorithm_owner` or `data_steward`.
    #[schema(value_type = String)]
    pub role: Role,
}

/// The latest WCEK of each role (metadata only; the bytes never leave the server).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LatestWceks {
    /// The AO's latest WCEK, or null before the first upload.
    #[schema(value_type = Option<Object>)]
    pub algorithm_owner: Option<WcekVersion>,
    /// The DS's latest WCEK, or null before the first upload.
    #[schema(value_type = Option<Object>)]
    pub data_steward: Option<WcekVersion>,
}

/// A project's page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectPage {
    /// The project.
    #[schema(value_type = Object)]
    pub project: Project,
    /// Member organizations, by role.
    pub members: Vec<MemberInfo>,
    /// The public side of each role's key pair (file name, fingerprint, provider).
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<ProjectKeyInfo>,
    /// The latest WCEK of each role.
    pub latest_wceks: LatestWceks,
    /// The caller's organization's role; null for an admin who is not a member.
    #[schema(value_type = Option<String>)]
    pub my_role: Option<Role>,
}

/// One project of the list, with the caller's role in it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectListItem {
    /// The project's fields (`id`, `name`, `description`, `state`, `technology`, ...).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub project: Project,
    /// The caller's organization's role; null for an admin who is not a member.
    #[schema(value_type = Option<String>)]
    pub my_role: Option<Role>,
}

/// One page of projects.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    /// The projects, oldest first.
    pub items: Vec<ProjectListItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A member organization of a new project, or one to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// The organization's ID.
    pub org_id: String,
    /// `algorithm_owner` (`ao`) or `data_steward` (`ds`).
    pub role: String,
}

/// A new project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProjectRequest {
    /// Unique name.
    pub name: String,
    /// Free text (at most 4096 bytes).
    #[serde(default)]
    pub description: String,
    /// `simulated`, `sev-snp`, `tdx` or `azure-cvm`; never changes.
    pub technology: String,
    /// Exactly one algorithm owner and at least one data steward.
    pub members: Vec<MemberRequest>,
}

/// A state change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateRequest {
    /// `active`, `paused` (no new runs) or `deactivated` (read-only).
    pub state: String,
}

/// The DS's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    /// Whether the AO may read what the algorithm itself prints.
    pub algorithm_logs_to_ao: bool,
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A role from a path or body: `ao`/`ds` or `algorithm_owner`/`data_steward`.
fn parse_role(raw: &str) -> ApiResult<Role> {
    match raw {
        "ao" | "algorithm_owner" => Ok(Role::AlgorithmOwner),
        "ds" | "data_steward" => Ok(Role::DataSteward),
        _ => Err(Failure::invalid(format!(
            "{:?} is not a role; use algorithm_owner (ao) or data_steward (ds)",
            raw.chars().take(64).collect::<String>()
        ))),
    }
}

fn parse_technology(raw: &str) -> ApiResult<Technology> {
    raw.parse().map_err(|_| {
        let accepted: Vec<&str> = Technology::ALL.iter().map(|t| t.as_str()).collect();
        Failure::invalid(format!(
            "{:?} is not a technology; use one of {}",
            raw.chars().take(64).collect::<String>(),
            accepted.join(", ")
        ))
    })
}

fn parse_state(raw: &str) -> ApiResult<ProjectState> {
    raw.parse().map_err(|_| {
        Failure::invalid(format!(
            "{:?} is not a project state; use active, paused or deactivated",
            raw.chars().take(64).collect::<String>()
        ))
    })
}

/// `{project_id}/keys/{role}` of a key route.
#[derive(Debug, Clone, Copy)]
struct KeyPath {
    project: ProjectId,
    role: Role,
}

impl<S: Send + Sync> FromRequestParts<S> for KeyPath {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let axum::extract::Path((project, role)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| Failure::invalid(format!("path: {}", e.body_text())))?;
        Ok(KeyPath {
            project: parse_id(&project)?,
            role: parse_role(&role)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The caller's standing in the project, then requires a platform admin (403, audited). A user
/// who is neither member nor admin gets 404 as usual.
async fn admin_access(
    state: &ControlState,
    caller: &Caller,
    project: ProjectId,
    action: &str,
) -> ApiResult<ProjectAccess> {
    let access = state.project_access(caller, project, action).await?;
    if access.admin {
        return Ok(access);
    }
    let f = Failure::forbidden("only a platform admin may do this");
    state.deny(caller, action, Some(project), None, &f).await;
    Err(f)
}

/// 409 `project_not_active` unless the project accepts changes.
fn writable(project: &Project, what: &str) -> ApiResult<()> {
    if project.state.allows_writes() {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::ProjectNotActive,
            format!("the project is {}: {what} is not allowed", project.state),
        ))
    }
}

/// Builds the project page (four queries, run together).
async fn page(
    state: &ControlState,
    project: Project,
    my_org: Option<OrgId>,
) -> ApiResult<ProjectPage> {
    let store = state.store();
    let id = project.id;
    let (members, keys, ao, ds) = tokio::try_join!(
        store.list_members_named(id),
        store.project_keys(id),
        store.latest_wcek(id, Role::AlgorithmOwner),
        store.latest_wcek(id, Role::DataSteward),
    )?;
    let my_role = members
        .iter()
        .find(|(m, _)| Some(m.org_id) == my_org)
        .map(|(m, _)| m.role);
    Ok(ProjectPage {
        project,
        members: members
            .into_iter()
            .map(|(m, org_name)| MemberInfo {
                org_id: m.org_id,
                org_name,
                role: m.role,
            })
            .collect(),
        keys,
        latest_wceks: LatestWceks {
            algorithm_owner: ao.map(|(v, _)| v),
            data_steward: ds.map(|(v, _)| v),
        },
        my_role,
    })
}

/// Reads a raw body of at most `max` bytes (413 beyond).
async fn read_limited(
    headers: &HeaderMap,
    body: axum::body::Body,
    max: usize,
) -> ApiResult<Vec<u8>> {
    let too_large = || {
        Failure::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than this endpoint accepts ({max} bytes at most)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Failure::invalid(format!("could not read the request body: {e}")))?;
        if out.len() + chunk.len() > max {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A file name fit for a `Content-Disposition` header.
fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "kek.der".into()
    } else {
        cleaned
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Creates a project with its member organizations and a fresh RSA-4096 KEK pair per role
/// (admin).
#[utoipa::path(post, path = "/api/v1/projects", tag = tags::PROJECTS,
    request_body = NewProjectRequest,
    responses((status = 201, body = ProjectPage),
        (status = 400, description = "invalid_name, invalid_request (technology, members), invalid_id"),
        (status = 401), (status = 403),
        (status = 404, description = "a member organization does not exist"),
        (status = 409, description = "the name is taken")))]
async fn create_project(
    State(state): State<ControlState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewProjectRequest>,
) -> ApiResult<(StatusCode, Json<ProjectPage>)> {
    let admin = match caller.admin() {
        Ok(u) => u.user.clone(),
        Err(f) => {
            state.deny(&caller, "project.create", None, None, &f).await;
            return Err(f);
        }
    };
    let name =
        Name::parse(&req.name).map_err(|e| Failure::new(ErrorCode::InvalidName, e.to_string()))?;
    if req.description.len() > MAX_DESCRIPTION_LEN {
        return Err(Failure::new(
            ErrorCode::InvalidName,
            format!("a description has at most {MAX_DESCRIPTION_LEN} bytes"),
        ));
    }
    let technology = parse_technology(&req.technology)?;
    if req.members.len() > MAX_MEMBERS {
        return Err(Failure::invalid(format!(
            "a project has at most {MAX_MEMBERS} member organizations"
        )));
    }
    let mut members: Vec<(OrgId, Role)> = Vec::with_capacity(req.members.len());
    for m in &req.members {
        let org: OrgId = parse_id(&m.org_id)?;
        let role = parse_role(&m.role)?;
        if members.iter().any(|(o, _)| *o == org) {
            return Err(Failure::invalid(format!(
                "organization {org} is listed twice"
            )));
        }
        members.push((org, role));
    }
    let aos = members
        .iter()
        .filter(|(_, r)| *r == Role::AlgorithmOwner)
        .count();
    let dss = members.len() - aos;
    if aos != 1 || dss == 0 {
        return Err(Failure::invalid(
            "a project has exactly one algorithm_owner and at least one data_steward",
        ));
    }
    for (org, _) in &members {
        state.store().get_org(*org).await?;
    }
    let project = crate::provision::create_project(
        &state,
        name,
        req.description,
        technology,
        members.clone(),
        admin.id,
    )
    .await?;
    let detail_members: Vec<serde_json::Value> = members
        .iter()
        .map(|(o, r)| serde_json::json!({ "org_id": o, "role": r }))
        .collect();
    state
        .audit_required(
            &caller,
            "project.create",
            AuditOutcome::Success,
            Some(project.id),
            Some(format!("project:{}", project.id)),
            serde_json::json!({
                "name": project.name,
                "technology": project.technology,
                "members": detail_members,
            }),
        )
        .await?;
    let page = page(&state, project, Some(admin.org_id)).await?;
    Ok((StatusCode::CREATED, Json(page)))
}

/// The projects the caller's organization belongs to (admins: every project), oldest first,
/// each with the caller's role.
#[utoipa::path(get, path = "/api/v1/projects", tag = tags::PROJECTS, params(PageParams),
    responses((status = 200, body = ProjectList), (status = 400), (status = 401), (status = 403)))]
async fn list_projects(
    State(state): State<ControlState>,
    caller: Caller,
    Q(params): Q<PageParams>,
) -> ApiResult<Json<ProjectList>> {
    let user = match caller.user() {
        Ok(u) => &u.user,
        Err(f) => {
            state.deny(&caller, "project.list", None, None, &f).await;
            return Err(f);
        }
    };
    let limit = params.limit()?;
    let after: Option<ProjectId> = params.cursor()?;
    if !user.is_admin {
        // One query: the organization's projects with its role in each.
        let page = state
            .store()
            .list_org_projects(user.org_id, after, limit)
            .await?;
        return Ok(Json(ProjectList {
            items: page
                .items
                .into_iter()
                .map(|(project, role)| ProjectListItem {
                    my_role: Some(role),
                    project,
                })
                .collect(),
            next_cursor: page.next_cursor,
        }));
    }
    let page = state
        .store()
        .list_projects(Viewer::Admin, after, limit)
        .await?;
    let roles: HashMap<ProjectId, Role> = match page.items.last() {
        Some(last) => state
            .store()
            .org_roles_between(user.org_id, after, last.id)
            .await?
            .into_iter()
            .collect(),
        None => HashMap::new(),
    };
    Ok(Json(ProjectList {
        items: page
            .items
            .into_iter()
            .map(|project| ProjectListItem {
                my_role: roles.get(&project.id).copied(),
                project,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The project page: the project, its members, its keys, the latest WCEK of each role and the
/// caller's role (members and admins).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}", tag = tags::PROJECTS,
    params(("project_id" = String, Path)),
    responses((status = 200, body = ProjectPage), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn get_project(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
) -> ApiResult<Json<ProjectPage>> {
    let access = state
        .project_access(&caller, project_id, "project.read")
        .await?;
    Ok(Json(page(&state, access.project, caller.org()).await?))
}

/// Changes a project's state: `active`, `paused` (no new run requests or initiations) or
/// `deactivated` (read-only) (admin).
#[utoipa::path(put, path = "/api/v1/projects/{project_id}/state", tag = tags::PROJECTS,
    params(("project_id" = String, Path)), request_body = StateRequest,
    responses((status = 200, body = Object), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn set_state(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    JsonBody(req): JsonBody<StateRequest>,
) -> ApiResult<Json<Project>> {
    let access = admin_access(&state, &caller, project_id, "project.state").await?;
    let new_state = parse_state(&req.state)?;
    let project = state
        .store()
        .set_project_state(project_id, new_state)
        .await?;
    state
        .audit_required(
            &caller,
            "project.state",
            AuditOutcome::Success,
            Some(project_id),
            Some(format!("project:{project_id}")),
            serde_json::json!({ "from": access.project.state, "to": new_state }),
        )
        .await?;
    Ok(Json(project))
}

/// Adds a member organization: another data steward (a second algorithm owner is refused)
/// (admin).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/members", tag = tags::PROJECTS,
    params(("project_id" = String, Path)), request_body = MemberRequest,
    responses((status = 201, body = MemberInfo),
        (status = 400, description = "bad ID or role; a second algorithm owner"),
        (status = 401), (status = 403), (status = 404),
        (status = 409, description = "already a member; the project is deactivated")))]
async fn add_member(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    JsonBody(req): JsonBody<MemberRequest>,
) -> ApiResult<(StatusCode, Json<MemberInfo>)> {
    let access = admin_access(&state, &caller, project_id, "project.member_add").await?;
    let org_id: OrgId = parse_id(&req.org_id)?;
    let role = parse_role(&req.role)?;
    writable(&access.project, "adding members")?;
    let org = state.store().get_org(org_id).await?;
    state.store().add_member(project_id, org_id, role).await?;
    state
        .audit_required(
            &caller,
            "project.member_add",
            AuditOutcome::Success,
            Some(project_id),
            Some(format!("org:{org_id}")),
            serde_json::json!({ "org_id": org_id, "role": role }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(MemberInfo {
            org_id,
            org_name: org.name,
            role,
        }),
    ))
}

/// Lets the AO read, or stops it reading, what the algorithm itself prints (DS).
#[utoipa::path(put, path = "/api/v1/projects/{project_id}/settings", tag = tags::PROJECTS,
    params(("project_id" = String, Path)), request_body = SettingsRequest,
    responses((status = 200, body = Object), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "the project is deactivated")))]
async fn set_settings(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    JsonBody(req): JsonBody<SettingsRequest>,
) -> ApiResult<Json<Project>> {
    let access = state
        .require_role(
            &caller,
            project_id,
            &[Role::DataSteward],
            "project.settings",
        )
        .await?;
    writable(&access.project, "changing settings")?;
    let project = state
        .store()
        .set_algorithm_logs_to_ao(project_id, req.algorithm_logs_to_ao)
        .await?;
    state
        .audit_required(
            &caller,
            "project.settings",
            AuditOutcome::Success,
            Some(project_id),
            Some(format!("project:{project_id}")),
            serde_json::json!({ "algorithm_logs_to_ao": req.algorithm_logs_to_ao }),
        )
        .await?;
    Ok(Json(project))
}

/// Downloads a role's public KEK (SPKI DER) to wrap the role's CEK with (members of that role).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/keys/{role}/kek", tag = tags::PROJECTS,
    params(("project_id" = String, Path),
        ("role" = String, Path, description = "`ao`, `ds`, `algorithm_owner` or `data_steward`")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>,
            description = "the KEK as SPKI DER, with Content-Disposition naming `<project>-<random>-<role>.der`"),
        (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn download_kek(
    State(state): State<ControlState>,
    caller: Caller,
    path: KeyPath,
) -> ApiResult<Response> {
    state
        .require_role(&caller, path.project, &[path.role], "key.kek_download")
        .await?;
    let key = state.store().project_key(path.project, path.role).await?;
    state
        .audit_required(
            &caller,
            "key.kek_download",
            AuditOutcome::Success,
            Some(path.project),
            Some(format!("kek:{}:{}", path.project, path.role)),
            serde_json::json!({ "role": path.role, "fingerprint": key.info.fingerprint }),
        )
        .await?;
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        safe_file_name(&key.info.file_name)
    ))
    .map_err(Failure::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        key.public_der,
    )
        .into_response())
}

/// Uploads a role's WCEK (its CEK wrapped to its KEK with RSA-OAEP-SHA256): the key provider
/// checks that it unwraps before it is stored (members of that role).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/keys/{role}/wcek", tag = tags::PROJECTS,
    params(("project_id" = String, Path),
        ("role" = String, Path, description = "`ao`, `ds`, `algorithm_owner` or `data_steward`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the WCEK (at most 1024 bytes)"),
    responses((status = 201, body = Object, description = "the new WCEK version"),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "the project is deactivated"),
        (status = 413), (status = 415),
        (status = 422, description = "wcek_does_not_unwrap")))]
async fn upload_wcek(
    State(state): State<ControlState>,
    caller: Caller,
    path: KeyPath,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<WcekVersion>)> {
    let access = state
        .require_role(&caller, path.project, &[path.role], "key.wcek_upload")
        .await?;
    writable(&access.project, "uploading a WCEK")?;
    if !has_content_type(&headers, "application/octet-stream") {
        return Err(Failure::new(
            ErrorCode::UnsupportedMediaType,
            "send the WCEK as raw bytes with `Content-Type: application/octet-stream`",
        ));
    }
    let bytes = read_limited(&headers, body, sealroom_broker::MAX_WCEK_LEN).await?;
    let user = caller.user()?.user.id;
    let record = state.store().project_key(path.project, path.role).await?;
    let label = kek_label(path.project, path.role)?;
    let provider = state.keys();
    let checked = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || {
            provider.check_wcek(&sealed_private(&record), &label, &bytes)
        })
        .await?
    };
    let check = match checked {
        Ok(c) => c,
        Err(e) => {
            let f = Failure::from(e);
            if f.code() == ErrorCode::WcekDoesNotUnwrap {
                state
                    .audit_required(
                        &caller,
                        "key.wcek_upload",
                        AuditOutcome::Failure,
                        Some(path.project),
                        Some(format!("wcek:{}:{}", path.project, path.role)),
                        serde_json::json!({
                            "role": path.role,
                            "size": bytes.len(),
                            "sha256": sha256_hex(&bytes),
                            "reason": f.error.message,
                        }),
                    )
                    .await?;
            }
            return Err(f);
        }
    };
    let version = state
        .store()
        .add_wcek(NewWcek {
            project_id: path.project,
            role: path.role,
            wcek: bytes,
            cek_key_id: Some(check.cek_key_id.to_string()),
            uploaded_by: user,
        })
        .await?;
    state
        .audit_required(
            &caller,
            "key.wcek_upload",
            AuditOutcome::Success,
            Some(path.project),
            Some(format!("wcek:{}", version.id)),
            serde_json::json!({
                "role": path.role,
                "version": version.version,
                "fingerprint": check.fingerprint(),
                "cek_key_id": version.cek_key_id,
            }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(version)))
}

/// Every WCEK version of a role, oldest first: fingerprints and CEK key ids, never the bytes
/// (members).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/keys/{role}/wceks", tag = tags::PROJECTS,
    params(("project_id" = String, Path),
        ("role" = String, Path, description = "`ao`, `ds`, `algorithm_owner` or `data_steward`")),
    responses((status = 200, body = Vec<Object>), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn list_wceks(
    State(state): State<ControlState>,
    caller: Caller,
    path: KeyPath,
) -> ApiResult<Json<Vec<WcekVersion>>> {
    state
        .require_member(&caller, path.project, "key.wcek_list")
        .await?;
    Ok(Json(
        state.store().list_wceks(path.project, path.role).await?,
    ))
}
