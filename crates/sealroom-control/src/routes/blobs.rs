//! The built-in storage of a data steward without cloud storage, and the signed URLs that serve
//! it. See `docs/api/artifacts.md`.
//!
//! | method path | who |
//! |---|---|
//! | `PUT /api/v1/projects/{project_id}/storage/{*path}` | DS (sealed files only) |
//! | `GET /api/v1/projects/{project_id}/storage` | DS |
//! | `POST /api/v1/projects/{project_id}/storage/sign` | DS |
//! | `GET /blobs/{*path}?sv=&sp=&se=&sig=` | anyone holding a signed URL |
//!
//! Each DS organization has its own area, `projects/<project>/storage/<org>/` in the blob store.
//! Paths are `/`-separated segments of letters, digits, `.`, `_`, `-` (no `.` or `..` segment; at
//! most 12 segments); a segment starting with `.` or `_` is kept under a `_` prefix in the blob
//! store (so a sealed tree's `.sealroom-manifest` can be stored), which is invisible to clients.
//!
//! Signed URLs are made by [`sealroom_blob::signed`]: `sp=r` reads one object; `sp=l` on a path
//! ending in `/` lists the objects under it and reads each of them (like an Azure container SAS
//! with `sp=rl`), so one URL serves a whole sealed dataset tree and is a valid dataset URL.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealroom_blob::signed::{parse_query, Permission, SignedUrlError};
use sealroom_blob::{BlobError, BlobKey, ByteRange};
use sealroom_envelope::header::{Header, HEADER_LEN};
use sealroom_types::{ApiError, AuditOutcome, ErrorCode, OrgId, ProjectId, Role, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::artifacts::transfer;
use super::tags;
use crate::extract::{parse_id, Caller, JsonBody, PathId};
use crate::{ApiResult, ControlState, Failure};

/// This group's routes (the public `/blobs/` route included: its signature is its authorization).
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(put_object))
        .routes(routes!(list_objects))
        .routes(routes!(sign_url))
        .routes(routes!(signed_get))
}

/// Where signed URLs point.
pub const SIGNED_PREFIX: &str = "/blobs/";
/// Most path segments under a DS's storage area.
pub const MAX_SEGMENTS: usize = 12;
/// Longest path segment.
const MAX_SEGMENT_LEN: usize = 120;
/// Longest signed-URL lifetime (a year).
pub const MAX_EXPIRES_IN_HOURS: u32 = 24 * 366;

/// The blob-store prefix of a DS organization's storage area (ends with `/`).
fn area(project: ProjectId, org: OrgId) -> String {
    format!("projects/{project}/storage/{org}/")
}

fn encode_segment(s: &str) -> String {
    if s.starts_with('.') || s.starts_with('_') {
        format!("_{s}")
    } else {
        s.to_owned()
    }
}

fn decode_segment(s: &str) -> &str {
    s.strip_prefix('_').unwrap_or(s)
}

/// Checks a client path (`a/b/c`, or a directory `a/b/` when `dir`), returning its segments.
fn check_path(path: &str, dir: bool) -> ApiResult<Vec<&str>> {
    let bad = |why: &str| {
        Failure::invalid(format!(
            "storage path {:?}: {why}",
            path.chars().take(80).collect::<String>()
        ))
    };
    let body = if dir {
        match path.strip_suffix('/') {
            Some(b) => b,
            None if path.is_empty() => "",
            None => return Err(bad("a directory ends with /")),
        }
    } else {
        path
    };
    if body.is_empty() {
        return if dir {
            Ok(Vec::new())
        } else {
            Err(bad("empty"))
        };
    }
    let segs: Vec<&str> = body.split('/').collect();
    if segs.len() > MAX_SEGMENTS {
        return Err(bad(&format!("more than {MAX_SEGMENTS} segments")));
    }
    for s in &segs {
        if s.is_empty() {
            return Err(bad("empty segment (leading, trailing or double /)"));
        }
        if *s == "." || *s == ".." {
            return Err(bad(". and .. segments are not allowed"));
        }
        if s.len() > MAX_SEGMENT_LEN {
            return Err(bad(&format!(
                "a segment is longer than {MAX_SEGMENT_LEN} bytes"
            )));
        }
        if !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return Err(bad("only letters, digits, . _ - and / are allowed"));
        }
    }
    Ok(segs)
}

/// The blob-store key of a client path under an area.
fn object_key(area: &str, segs: &[&str]) -> ApiResult<String> {
    let enc: Vec<String> = segs.iter().map(|s| encode_segment(s)).collect();
    Ok(format!("{area}{}", enc.join("/")))
}

/// The client path of a blob-store key under `prefix` (a key prefix ending in `/`).
fn client_path(key: &str, prefix: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?;
    Some(
        rest.split('/')
            .map(decode_segment)
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// A DS's standing for storage calls (members of the data-steward role only).
async fn ds_access(
    state: &ControlState,
    caller: &Caller,
    project: ProjectId,
    action: &str,
) -> ApiResult<(crate::access::ProjectAccess, OrgId)> {
    let access = state
        .require_role(caller, project, &[Role::DataSteward], action)
        .await?;
    let org = caller
        .org()
        .ok_or_else(|| Failure::internal("a data steward without an organization"))?;
    Ok((access, org))
}

/// A stored object.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredObject {
    /// The blob-store key.
    pub key: String,
    /// The path within the caller's storage.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Stores a sealed file in the caller's storage area (DS; `application/octet-stream`, streamed).
/// Only complete Sealroom sealed files are accepted (422 `invalid_upload` otherwise, nothing
/// stored); an existing path is not replaced (409).
#[utoipa::path(put, path = "/api/v1/projects/{project_id}/storage/{*path}", tag = tags::STORAGE,
    params(("project_id" = String, Path), ("path" = String, Path, description = "where to store it, e.g. `ds1/data.csv`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = StoredObject), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 413), (status = 415),
        (status = 422, description = "not a Sealroom sealed file")))]
async fn put_object(
    State(state): State<ControlState>,
    caller: Caller,
    axum::extract::Path((project_raw, path)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<StoredObject>)> {
    let mut incoming = transfer::Incoming::new(body);
    let r = put_object_inner(
        &state,
        &caller,
        &project_raw,
        &path,
        &headers,
        &mut incoming,
    )
    .await;
    if r.is_err() {
        incoming.drain(&headers).await;
    }
    r
}

async fn put_object_inner(
    state: &ControlState,
    caller: &Caller,
    project_raw: &str,
    path: &str,
    headers: &HeaderMap,
    incoming: &mut transfer::Incoming,
) -> ApiResult<(StatusCode, Json<StoredObject>)> {
    let action = "storage.put";
    let project: ProjectId = parse_id(project_raw)?;
    let (access, org) = ds_access(state, caller, project, action).await?;
    if !access.project.state.allows_writes() {
        return Err(Failure::new(
            ErrorCode::ProjectNotActive,
            format!(
                "the project is {}: storing files is not allowed",
                access.project.state
            ),
        ));
    }
    transfer::require_octet_stream(headers)?;
    let segs = check_path(path, false)?;
    let key = BlobKey::parse(&object_key(&area(project, org), &segs)?)
        .map_err(|e| Failure::invalid(e.to_string()))?;
    let limit = state.config().max_upload;
    transfer::check_declared_length(headers, limit)?;
    let head = incoming.peek(HEADER_LEN).await?;
    let header = Header::parse(head).map_err(|e| {
        Failure::new(
            ErrorCode::InvalidUpload,
            format!(
                "only Sealroom sealed files may be stored (seal it with `sealroom encrypt` first): {e}"
            ),
        )
    })?;
    let meta = incoming.store(state, &key, limit).await?;
    if meta.size != header.sealed_len() {
        transfer::discard(state, &key).await;
        return Err(Failure::new(
            ErrorCode::InvalidUpload,
            format!(
                "the sealed file is {} bytes, but its header says {}: it is truncated or has trailing bytes",
                meta.size,
                header.sealed_len()
            ),
        ));
    }
    let result = state
        .audit_required(
            caller,
            action,
            AuditOutcome::Success,
            Some(project),
            Some(format!("blob:{key}")),
            serde_json::json!({ "size": meta.size, "sha256": meta.sha256_hex() }),
        )
        .await;
    if let Err(f) = result {
        transfer::discard(state, &key).await;
        return Err(f);
    }
    Ok((
        StatusCode::CREATED,
        Json(StoredObject {
            key: key.to_string(),
            path: segs.join("/"),
            size: meta.size,
            sha256: meta.sha256_hex(),
        }),
    ))
}

/// One object of a listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ObjectEntry {
    /// Path (relative to the caller's storage, or to the listed directory).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// The caller's stored objects (DS).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/storage", tag = tags::STORAGE,
    params(("project_id" = String, Path)),
    responses((status = 200, body = Vec<ObjectEntry>), (status = 401), (status = 403), (status = 404)))]
async fn list_objects(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project): PathId<ProjectId>,
) -> ApiResult<Json<Vec<ObjectEntry>>> {
    let (_, org) = ds_access(&state, &caller, project, "storage.list").await?;
    let prefix = area(project, org);
    let entries = state.blobs().list(&prefix).await?;
    Ok(Json(
        entries
            .into_iter()
            .filter_map(|e| {
                client_path(e.key.as_str(), &prefix).map(|path| ObjectEntry { path, size: e.size })
            })
            .collect(),
    ))
}

/// A signed-URL request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// A directory of the caller's storage ending in `/` (`""` for all of it): the URL lists
    /// and reads everything under it. Or one object's path: the URL reads it.
    pub prefix: String,
    /// Lifetime, 1 to 8784 hours. A dataset URL must stay valid for more than 24 hours.
    pub expires_in_hours: u32,
}

/// A signed URL.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedUrlResponse {
    /// The URL (rooted at the server's public URL).
    pub url: String,
    /// When it stops working.
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    /// `list` (a directory: list and read under it) or `read` (one object).
    pub permission: String,
}

/// Makes a signed URL for part of the caller's storage (DS): usable as a dataset version's URL.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/storage/sign", tag = tags::STORAGE,
    params(("project_id" = String, Path)), request_body = SignRequest,
    responses((status = 200, body = SignedUrlResponse), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn sign_url(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project): PathId<ProjectId>,
    JsonBody(req): JsonBody<SignRequest>,
) -> ApiResult<Json<SignedUrlResponse>> {
    let action = "storage.sign";
    let (_, org) = ds_access(&state, &caller, project, action).await?;
    if !(1..=MAX_EXPIRES_IN_HOURS).contains(&req.expires_in_hours) {
        return Err(Failure::invalid(format!(
            "expires_in_hours must be 1 to {MAX_EXPIRES_IN_HOURS}"
        )));
    }
    let dir = req.prefix.is_empty() || req.prefix.ends_with('/');
    let segs = check_path(&req.prefix, dir)?;
    let area = area(project, org);
    let (path, permission) = if dir {
        let mut p = format!("{SIGNED_PREFIX}{area}{}", segs.join("/"));
        if !segs.is_empty() {
            p.push('/');
        }
        (p, Permission::List)
    } else {
        let key = BlobKey::parse(&object_key(&area, &segs)?)
            .map_err(|e| Failure::invalid(e.to_string()))?;
        state.blobs().size(&key).await?;
        (
            format!("{SIGNED_PREFIX}{area}{}", segs.join("/")),
            Permission::Read,
        )
    };
    let expires = Timestamp::now().plus_secs(i64::from(req.expires_in_hours) * 3600);
    let signed = state
        .signer()
        .sign("GET", &path, permission, expires)
        .map_err(|e| Failure::invalid(e.to_string()))?;
    let permission = match permission {
        Permission::List => "list",
        Permission::Read => "read",
    };
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(project),
            Some(format!("blob:{}", path.trim_start_matches(SIGNED_PREFIX))),
            serde_json::json!({ "permission": permission, "expires_at": signed.expires_at }),
        )
        .await?;
    Ok(Json(SignedUrlResponse {
        url: signed.to_url(&state.config().public_url),
        expires_at: signed.expires_at,
        permission: permission.into(),
    }))
}

/// A listing served through a signed URL.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    /// The objects under the listed directory, paths relative to it.
    pub files: Vec<ObjectEntry>,
}

fn signed_failure(e: &SignedUrlError) -> Failure {
    match e {
        SignedUrlError::Expired(at) => Failure::new(
            ErrorCode::Expired,
            format!("the signed URL expired at {at}; ask the data steward for a new one"),
        ),
        other => Failure::forbidden(format!("this URL is not valid: {other}")),
    }
}

/// The storage area and the client path of a signed-URL request path.
fn split_signed_path(path: &str) -> Option<(String, &str)> {
    let rest = path.strip_prefix(SIGNED_PREFIX)?;
    let mut it = rest.splitn(5, '/');
    let (p, project, s, org) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let tail = it.next()?;
    if p != "projects" || s != "storage" {
        return None;
    }
    let project: ProjectId = project.parse().ok()?;
    let org: OrgId = org.parse().ok()?;
    Some((area(project, org), tail))
}

/// Serves a signed URL: `sp=r` reads the object; `sp=l` on a path ending in `/` lists the
/// objects under it (`{"files": [{"path", "size"}]}`) and reads any of them. Reads take one
/// `Range: bytes=a-b` (206, or 416 when it lies outside the object). A bad signature is 403, an
/// expired URL 410.
#[utoipa::path(get, path = "/blobs/{*path}", tag = tags::STORAGE, security(()),
    params(("path" = String, Path),
        ("sv" = String, Query, description = "`sealroom1`"),
        ("sp" = String, Query, description = "`r` (read) or `l` (list and read under a directory)"),
        ("se" = String, Query, description = "expiry, RFC 3339"),
        ("sig" = String, Query, description = "HMAC-SHA256, hex")),
    responses((status = 200, description = "the object, or the listing", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"), (status = 403, description = "bad signature"),
        (status = 404), (status = 410, description = "expired"), (status = 416, description = "range not satisfiable")))]
async fn signed_get(
    State(state): State<ControlState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let now = Timestamp::now();
    let signer = state.signer();
    let q = parse_query(query).map_err(|e| signed_failure(&e))?;
    let Some((area, tail)) = split_signed_path(path) else {
        return Err(Failure::forbidden("this URL was not signed by this server"));
    };
    if tail.is_empty() || tail.ends_with('/') {
        signer
            .verify(method.as_str(), path, query, now)
            .map_err(|e| signed_failure(&e))?;
        if q.permission != Permission::List {
            return Err(Failure::forbidden("this URL does not allow listing"));
        }
        let segs = check_path(tail, true).map_err(|_| Failure::forbidden("bad path"))?;
        let mut prefix = object_key(&area, &segs)?;
        if !segs.is_empty() {
            prefix.push('/');
        }
        let files = state
            .blobs()
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|e| {
                client_path(e.key.as_str(), &prefix).map(|path| ObjectEntry { path, size: e.size })
            })
            .collect();
        return Ok(Json(Listing { files }).into_response());
    }
    match signer.verify(method.as_str(), path, query, now) {
        Ok(v) if v.permission == Permission::Read => {}
        Ok(_) => return Err(Failure::forbidden("this URL does not allow reading")),
        Err(SignedUrlError::BadSignature) if q.permission == Permission::List => {
            // A directory URL reads everything under it: try each enclosing directory down to
            // the storage area's root.
            let root_len = SIGNED_PREFIX.len() + area.len();
            let mut verdict = Err(SignedUrlError::BadSignature);
            for (i, _) in path.match_indices('/').filter(|(i, _)| *i + 1 >= root_len) {
                match signer.verify("GET", &path[..=i], query, now) {
                    Ok(_) => {
                        verdict = Ok(());
                        break;
                    }
                    Err(e @ SignedUrlError::Expired(_)) => {
                        verdict = Err(e);
                        break;
                    }
                    Err(_) => {}
                }
            }
            verdict.map_err(|e| signed_failure(&e))?;
        }
        Err(e) => return Err(signed_failure(&e)),
    }
    let segs = check_path(tail, false).map_err(|_| Failure::forbidden("bad path"))?;
    let key =
        BlobKey::parse(&object_key(&area, &segs)?).map_err(|_| Failure::forbidden("bad path"))?;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::parse_http);
    let blob = match state.blobs().get(&key, range).await {
        Ok(b) => b,
        Err(BlobError::RangeNotSatisfiable { size, .. }) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                Json(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the range lies outside the object ({size} bytes)"),
                )),
            )
                .into_response())
        }
        Err(e) => return Err(e.into()),
    };
    let mut extra = vec![(header::ACCEPT_RANGES, "bytes".to_string())];
    let status = if range.is_some() {
        let last = blob.offset + blob.length.saturating_sub(1);
        extra.push((
            header::CONTENT_RANGE,
            format!("bytes {}-{last}/{}", blob.offset, blob.total_size),
        ));
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    Ok(transfer::blob_response(
        status,
        blob,
        "application/octet-stream",
        extra,
    ))
}
