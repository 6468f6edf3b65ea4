//! Artifacts and their versions: data specifications and algorithm packages, validation criteria
//! (AO); attestation reports and datasets (DS). See `docs/api/artifacts.md`.
//!
//! | method path | who |
//! |---|---|
//! | `POST /api/v1/projects/{project_id}/artifacts` | the kind's owner role |
//! | `GET /api/v1/projects/{project_id}/artifacts?kind=` | members, admin |
//! | `GET /api/v1/artifacts/{artifact_id}` | members, admin |
//! | `POST /api/v1/artifacts/{artifact_id}/versions` (JSON: criteria, dataset) | the owner org |
//! | `POST /api/v1/artifacts/{artifact_id}/versions/upload` (octet-stream) | the owner org |
//! | `GET /api/v1/artifacts/{artifact_id}/versions` | members, admin |
//! | `GET /api/v1/versions/{version_id}` | members, admin |
//! | `GET /api/v1/versions/{version_id}/content` | members (algorithm packages: AO only) |
//! | `POST /api/v1/versions/{version_id}/accept` | DS (criteria) |
//! | `POST /api/v1/versions/{version_id}/certify` | the dataset's DS |
//!
//! Uploaded files are streamed into the blob store under
//! `projects/<project>/artifacts/<artifact>/<random>`; if the version is then refused the blob is
//! deleted. Algorithm packages are checked ([`package`]) and their upload steps recorded.

pub mod package;
pub(crate) mod transfer;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealroom_blob::BlobKey;
use sealroom_store::{NewArtifact, NewVersion, NewVersionDetail};
use sealroom_types::{
    assess_dataset_url, AlgorithmType, Artifact, ArtifactId, ArtifactKind, ArtifactVersion,
    AuditOutcome, BlobRef, DatasetUrlStatus, ErrorCode, Name, ProjectId, Role, Timestamp,
    VersionDetail, VersionId, VersionTag, EXPIRY_MARGIN_SECS,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::access::ProjectAccess;
use crate::extract::{parse_id, Caller, JsonBody, PathId, Q};
use crate::{ApiResult, ControlState, Failure};

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(create_artifact, list_artifacts))
        .routes(routes!(get_artifact))
        .routes(routes!(create_version, list_versions))
        .routes(routes!(upload_version))
        .routes(routes!(get_version))
        .routes(routes!(version_content))
        .routes(routes!(accept_criteria))
        .routes(routes!(certify_dataset))
}

// ---------------------------------------------------------------------------------------------
// Access helpers

/// 401/403 for callers that are not users, audited.
async fn user_or_deny(
    state: &ControlState,
    caller: &Caller,
    action: &str,
) -> ApiResult<crate::extract::UserCaller> {
    match caller.user() {
        Ok(u) => Ok(u.clone()),
        Err(f) => {
            state.deny(caller, action, None, None, &f).await;
            Err(f)
        }
    }
}

/// Refuses with 403, audited.
async fn forbid(
    state: &ControlState,
    caller: &Caller,
    action: &str,
    project: ProjectId,
    object: String,
    message: impl Into<String>,
) -> Failure {
    let f = Failure::forbidden(message);
    state
        .deny(caller, action, Some(project), Some(object), &f)
        .await;
    f
}

/// The caller's standing in an object's project; a non-member learns only that `what` `id` was
/// not found.
async fn access_for(
    state: &ControlState,
    caller: &Caller,
    project: ProjectId,
    what: &str,
    id: impl std::fmt::Display,
    action: &str,
) -> ApiResult<ProjectAccess> {
    state
        .project_access(caller, project, action)
        .await
        .map_err(|f| {
            if f.code() == ErrorCode::NotFound {
                Failure::not_found(what, id)
            } else {
                f
            }
        })
}

/// An artifact and the caller's standing in its project.
async fn artifact_access(
    state: &ControlState,
    caller: &Caller,
    id: ArtifactId,
    action: &str,
) -> ApiResult<(Artifact, ProjectAccess)> {
    user_or_deny(state, caller, action).await?;
    let art = state.store().get_artifact(id).await?;
    let access = access_for(state, caller, art.project_id, "artifact", id, action).await?;
    Ok((art, access))
}

/// A version, its artifact and the caller's standing in its project.
async fn version_access(
    state: &ControlState,
    caller: &Caller,
    id: VersionId,
    action: &str,
) -> ApiResult<(ArtifactVersion, Artifact, ProjectAccess)> {
    user_or_deny(state, caller, action).await?;
    let v = state.store().get_version(id).await?;
    let access = access_for(state, caller, v.project_id, "artifact version", id, action).await?;
    let art = state.store().get_artifact(v.artifact_id).await?;
    Ok((v, art, access))
}

/// Requires the caller's organization to own the artifact (it then holds the kind's role).
async fn require_owner(
    state: &ControlState,
    caller: &Caller,
    art: &Artifact,
    access: &ProjectAccess,
    action: &str,
) -> ApiResult<()> {
    if caller.org() == Some(art.owner_org_id) && access.is(art.kind.owner_role()) {
        return Ok(());
    }
    Err(forbid(
        state,
        caller,
        action,
        art.project_id,
        format!("artifact:{}", art.id),
        format!(
            "only the organization that owns this {} may add versions to it",
            art.kind
        ),
    )
    .await)
}

fn invalid_name(e: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorCode::InvalidName, e.to_string())
}

fn check_description(d: &str) -> ApiResult<()> {
    if d.len() > sealroom_types::MAX_DESCRIPTION_LEN {
        return Err(Failure::new(
            ErrorCode::InvalidName,
            format!(
                "a description has at most {} bytes",
                sealroom_types::MAX_DESCRIPTION_LEN
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// A version as the caller may see it: the dataset URL only for the dataset's owner, criteria
/// text only for members; a dataset location carries its `status` (`valid` / `expired`).
fn render_version(
    v: &ArtifactVersion,
    art: &Artifact,
    caller: &Caller,
    access: &ProjectAccess,
) -> ApiResult<Value> {
    let mut j = serde_json::to_value(v).map_err(Failure::internal)?;
    match &v.detail {
        VersionDetail::Dataset { location, .. } => {
            let status = if location.expires_at <= Timestamp::now().plus_secs(EXPIRY_MARGIN_SECS) {
                DatasetUrlStatus::Expired
            } else {
                DatasetUrlStatus::Valid
            };
            if let Some(loc) = j
                .pointer_mut("/detail/location")
                .and_then(Value::as_object_mut)
            {
                if caller.org() != Some(art.owner_org_id) {
                    loc.remove("url");
                }
                loc.insert("status".into(), Value::from(status.as_str()));
            }
        }
        VersionDetail::ValidationCriteria { .. } if access.role.is_none() => {
            if let Some(d) = j.pointer_mut("/detail").and_then(Value::as_object_mut) {
                d.remove("criteria_json");
            }
        }
        _ => {}
    }
    Ok(j)
}

// ---------------------------------------------------------------------------------------------
// Artifacts

/// A new artifact.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArtifactRequest {
    /// `data_specification`, `algorithm`, `validation_criteria` (AO); `attestation_report`,
    /// `dataset` (DS).
    #[schema(value_type = String)]
    pub kind: ArtifactKind,
    /// Name, unique per project and kind.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Algorithms only: `training` or `validation`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub algorithm_type: Option<AlgorithmType>,
}

/// Creates an artifact (the kind's owner role: AO for data specifications, algorithms and
/// validation criteria; DS for attestation reports and datasets).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/artifacts", tag = tags::ARTIFACTS,
    params(("project_id" = String, Path)), request_body = NewArtifactRequest,
    responses((status = 201, body = Object), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409, description = "name taken, or the project is deactivated")))]
async fn create_artifact(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    JsonBody(req): JsonBody<NewArtifactRequest>,
) -> ApiResult<(StatusCode, Json<Artifact>)> {
    let action = "artifact.create";
    state
        .require_role(&caller, project_id, &[req.kind.owner_role()], action)
        .await?;
    let user = caller.user()?.user.clone();
    let name = Name::parse(&req.name).map_err(invalid_name)?;
    check_description(&req.description)?;
    let art = state
        .store()
        .create_artifact(NewArtifact {
            project_id,
            kind: req.kind,
            owner_org_id: user.org_id,
            name,
            description: req.description,
            algorithm_type: req.algorithm_type,
            created_by: user.id,
        })
        .await?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(project_id),
            Some(format!("artifact:{}", art.id)),
            serde_json::json!({ "kind": art.kind, "name": art.name }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(art)))
}

/// `?kind=` filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KindFilter {
    /// Only artifacts of this kind.
    pub kind: Option<String>,
}

/// A project's artifacts, oldest first (members and admins).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/artifacts", tag = tags::ARTIFACTS,
    params(("project_id" = String, Path), KindFilter),
    responses((status = 200, body = Vec<Object>), (status = 400), (status = 401), (status = 404)))]
async fn list_artifacts(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    Q(filter): Q<KindFilter>,
) -> ApiResult<Json<Vec<Artifact>>> {
    state
        .project_access(&caller, project_id, "artifact.list")
        .await?;
    let kind = filter
        .kind
        .as_deref()
        .map(str::parse::<ArtifactKind>)
        .transpose()
        .map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(Json(state.store().list_artifacts(project_id, kind).await?))
}

/// One artifact (members and admins).
#[utoipa::path(get, path = "/api/v1/artifacts/{artifact_id}", tag = tags::ARTIFACTS,
    params(("artifact_id" = String, Path)),
    responses((status = 200, body = Object), (status = 401), (status = 404)))]
async fn get_artifact(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(artifact_id): PathId<ArtifactId>,
) -> ApiResult<Json<Artifact>> {
    let (art, _) = artifact_access(&state, &caller, artifact_id, "artifact.read").await?;
    Ok(Json(art))
}

// ---------------------------------------------------------------------------------------------
// Versions

/// A new JSON version: validation criteria (`tag`, `description`, `criteria`) or a dataset
/// (`tag`, `description`, `url`, optional links).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersionRequest {
    /// The uploader's tag (`v1.0`), unique per artifact.
    pub tag: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Validation criteria: the criteria document, as a JSON object or as a string holding its
    /// JSON text (kept verbatim).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub criteria: Option<Value>,
    /// Dataset: the signed URL of the encrypted dataset (Azure SAS, S3 presigned, or a Sealroom
    /// storage URL from `POST /api/v1/projects/{project_id}/storage/sign`).
    #[serde(default)]
    pub url: Option<String>,
    /// Dataset: the data-specification version it follows.
    #[serde(default)]
    pub data_specification_version: Option<String>,
    /// Dataset: the attestation-report version that attests it.
    #[serde(default)]
    pub attestation_report_version: Option<String>,
}

fn criteria_text(v: Value) -> ApiResult<String> {
    let text = match v {
        Value::String(s) => s,
        v @ Value::Object(_) => serde_json::to_string(&v).map_err(Failure::internal)?,
        _ => {
            return Err(Failure::new(
                ErrorCode::InvalidCriteria,
                "criteria must be a JSON object, or a string holding one",
            ))
        }
    };
    sealroom_criteria::Criteria::from_json(text.as_bytes())
        .map_err(|e| Failure::new(ErrorCode::InvalidCriteria, e.to_string()))?;
    Ok(text)
}

fn parse_link(raw: Option<&str>) -> ApiResult<Option<VersionId>> {
    raw.map(parse_id).transpose()
}

/// Adds a validation-criteria (AO) or dataset (DS) version. Criteria are syntax-checked (400
/// `invalid_criteria`); a dataset URL must be a signed URL whose expiry can be read (400
/// `dataset_url_invalid`) and is at least 24 hours away (422 `dataset_url_expired`).
#[utoipa::path(post, path = "/api/v1/artifacts/{artifact_id}/versions", tag = tags::ARTIFACTS,
    params(("artifact_id" = String, Path)), request_body = NewVersionRequest,
    responses((status = 201, body = Object), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 422, description = "dataset URL expires within 24 hours")))]
async fn create_version(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(artifact_id): PathId<ArtifactId>,
    JsonBody(req): JsonBody<NewVersionRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let action = "artifact.version.create";
    let (art, access) = artifact_access(&state, &caller, artifact_id, action).await?;
    require_owner(&state, &caller, &art, &access, action).await?;
    let user = caller.user()?.user.clone();
    let tag = VersionTag::parse(&req.tag).map_err(|e| invalid_name(format!("tag: {e}")))?;
    check_description(&req.description)?;
    let detail = match art.kind {
        ArtifactKind::ValidationCriteria => {
            if req.url.is_some()
                || req.data_specification_version.is_some()
                || req.attestation_report_version.is_some()
            {
                return Err(Failure::invalid(
                    "a validation criteria version takes only tag, description and criteria",
                ));
            }
            let criteria = req.criteria.ok_or_else(|| {
                Failure::new(ErrorCode::InvalidCriteria, "the criteria field is missing")
            })?;
            NewVersionDetail::ValidationCriteria {
                criteria_json: criteria_text(criteria)?,
            }
        }
        ArtifactKind::Dataset => {
            if req.criteria.is_some() {
                return Err(Failure::invalid("a dataset version takes no criteria"));
            }
            let url = req
                .url
                .ok_or_else(|| Failure::new(ErrorCode::DatasetUrlInvalid, "the url is missing"))?;
            let a = assess_dataset_url(&url, Timestamp::now());
            match a.status {
                DatasetUrlStatus::Valid => {}
                DatasetUrlStatus::Invalid => {
                    return Err(Failure::new(ErrorCode::DatasetUrlInvalid, a.message))
                }
                DatasetUrlStatus::Expired => {
                    return Err(Failure::new(ErrorCode::DatasetUrlExpired, a.message))
                }
            }
            let wcek = state
                .store()
                .latest_wcek(art.project_id, Role::DataSteward)
                .await?;
            NewVersionDetail::Dataset {
                url,
                data_specification_version: parse_link(req.data_specification_version.as_deref())?,
                attestation_report_version: parse_link(req.attestation_report_version.as_deref())?,
                wcek_fingerprint: wcek.map(|(w, _)| w.fingerprint),
            }
        }
        kind => {
            return Err(Failure::invalid(format!(
                "{kind} versions are files: POST them to /api/v1/artifacts/{artifact_id}/versions/upload"
            )))
        }
    };
    let v = state
        .store()
        .add_version(NewVersion {
            artifact_id,
            tag,
            description: req.description,
            uploaded_by: user.id,
            blob: None,
            detail,
        })
        .await?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(art.project_id),
            Some(format!("version:{}", v.id)),
            serde_json::json!({ "artifact_id": art.id, "kind": art.kind, "tag": v.tag, "version": v.version }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(render_version(&v, &art, &caller, &access)?),
    ))
}

/// The query of a file upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// The uploader's tag, unique per artifact.
    pub tag: String,
    /// Free text.
    pub description: Option<String>,
    /// The file's name (printable ASCII, no `/`, `\` or `"`; default from the kind).
    pub file_name: Option<String>,
    /// Attestation reports: the data-specification version attested.
    pub data_specification_version: Option<String>,
}

/// Longest file name kept.
const MAX_FILE_NAME: usize = 200;

fn check_file_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| (b' '..0x7f).contains(&c) && !matches!(c, b'/' | b'\\' | b'"'));
    if ok {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "file_name must be 1 to {MAX_FILE_NAME} printable ASCII characters without / \\ or \""
        )))
    }
}

/// What a document upload starts with.
fn document_type(head: &[u8], kind: ArtifactKind) -> ApiResult<&'static str> {
    let pdf = head.starts_with(b"%PDF-");
    let doc = head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]);
    let docx = head.starts_with(b"PK\x03\x04");
    match kind {
        ArtifactKind::DataSpecification if pdf => Ok("pdf"),
        ArtifactKind::DataSpecification if doc => Ok("doc"),
        ArtifactKind::DataSpecification if docx => Ok("docx"),
        ArtifactKind::DataSpecification => Err(Failure::new(
            ErrorCode::InvalidUpload,
            "a data specification must be a PDF, DOC or DOCX document",
        )),
        ArtifactKind::AttestationReport if pdf => Ok("pdf"),
        _ => Err(Failure::new(
            ErrorCode::InvalidUpload,
            "an attestation report must be a PDF document",
        )),
    }
}

/// Uploads a file version (`application/octet-stream`, streamed): a data specification
/// (PDF/DOC/DOCX) or algorithm package (uncompressed tar, see `docs/api/artifacts.md`) of the AO,
/// an attestation report (PDF) of the DS. A package's upload steps are checked and recorded; a
/// run configuration needs all of them passed.
#[utoipa::path(post, path = "/api/v1/artifacts/{artifact_id}/versions/upload", tag = tags::ARTIFACTS,
    params(("artifact_id" = String, Path), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Object), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 413), (status = 415),
        (status = 422, description = "not a document of the kind's type, or not a valid package archive")))]
async fn upload_version(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(artifact_id): PathId<ArtifactId>,
    Q(params): Q<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut incoming = transfer::Incoming::new(body);
    let r = upload_version_inner(
        &state,
        &caller,
        artifact_id,
        params,
        &headers,
        &mut incoming,
    )
    .await;
    if r.is_err() {
        incoming.drain(&headers).await;
    }
    r
}

async fn upload_version_inner(
    state: &ControlState,
    caller: &Caller,
    artifact_id: ArtifactId,
    params: UploadParams,
    headers: &HeaderMap,
    incoming: &mut transfer::Incoming,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let action = "artifact.version.create";
    let (art, access) = artifact_access(state, caller, artifact_id, action).await?;
    require_owner(state, caller, &art, &access, action).await?;
    let user = caller.user()?.user.clone();
    if matches!(
        art.kind,
        ArtifactKind::ValidationCriteria | ArtifactKind::Dataset
    ) {
        return Err(Failure::invalid(format!(
            "{} versions are JSON: POST them to /api/v1/artifacts/{artifact_id}/versions",
            art.kind
        )));
    }
    if !access.project.state.allows_writes() {
        return Err(Failure::new(
            ErrorCode::ProjectNotActive,
            format!(
                "the project is {}: adding versions is not allowed",
                access.project.state
            ),
        ));
    }
    transfer::require_octet_stream(headers)?;
    let tag = VersionTag::parse(&params.tag).map_err(|e| invalid_name(format!("tag: {e}")))?;
    let description = params.description.unwrap_or_default();
    check_description(&description)?;
    if let Some(n) = &params.file_name {
        check_file_name(n)?;
    }
    let spec_link = parse_link(params.data_specification_version.as_deref())?;
    if spec_link.is_some() && art.kind != ArtifactKind::AttestationReport {
        return Err(Failure::invalid(
            "data_specification_version is for attestation reports only",
        ));
    }
    let limit = state.config().max_upload;
    transfer::check_declared_length(headers, limit)?;

    let default_name = match art.kind {
        ArtifactKind::Algorithm => "package.tar".to_string(),
        kind => {
            let head = incoming.peek(8).await?;
            let ext = document_type(head, kind)?;
            format!("{}.{ext}", kind.as_str().replace('_', "-"))
        }
    };
    let file_name = params.file_name.unwrap_or(default_name);
    let mut rnd = [0u8; 16];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut rnd[..]);
    let key = BlobKey::parse(&format!(
        "projects/{}/artifacts/{}/{}",
        art.project_id,
        art.id,
        hex::encode(rnd)
    ))
    .map_err(Failure::internal)?;
    let meta = incoming.store(state, &key, limit).await?;
    let blob = BlobRef {
        key: key.to_string(),
        size: i64::try_from(meta.size).map_err(Failure::internal)?,
        sha256: meta.sha256_hex(),
        file_name,
    };

    let result = async {
        let mut outcome = None;
        let detail = match art.kind {
            ArtifactKind::DataSpecification => NewVersionDetail::DataSpecification,
            ArtifactKind::AttestationReport => NewVersionDetail::AttestationReport {
                data_specification_version: spec_link,
            },
            _ => {
                let inspection = inspect_package(state, &key).await?;
                let wcek = state
                    .store()
                    .latest_wcek(art.project_id, Role::AlgorithmOwner)
                    .await?
                    .map(|(w, _)| w);
                let o = inspection.steps(wcek.as_ref(), Timestamp::now());
                let fingerprint = match (&wcek, &o.key_id) {
                    (Some(w), Some(_)) if o.passed => Some(w.fingerprint.clone()),
                    _ => None,
                };
                outcome = Some(o);
                NewVersionDetail::Algorithm {
                    wcek_fingerprint: fingerprint,
                }
            }
        };
        let v = state
            .store()
            .add_version(NewVersion {
                artifact_id,
                tag,
                description,
                uploaded_by: user.id,
                blob: Some(blob),
                detail,
            })
            .await?;
        Ok::<_, Failure>((v, outcome))
    }
    .await;
    let (mut v, outcome) = match result {
        Ok(r) => r,
        Err(f) => {
            transfer::discard(state, &key).await;
            return Err(f);
        }
    };
    let passed = outcome.as_ref().map(|o| o.passed);
    if let Some(o) = outcome {
        for step in o.steps {
            state.store().set_upload_step(v.id, step).await?;
        }
        state
            .store()
            .set_workload_digest(v.id, &meta.sha256_hex())
            .await?;
        v = state.store().get_version(v.id).await?;
    }
    state
        .audit_required(
            caller,
            action,
            AuditOutcome::Success,
            Some(art.project_id),
            Some(format!("version:{}", v.id)),
            serde_json::json!({
                "artifact_id": art.id, "kind": art.kind, "tag": v.tag, "version": v.version,
                "size": meta.size, "sha256": meta.sha256_hex(), "upload_steps_passed": passed,
            }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(render_version(&v, &art, caller, &access)?),
    ))
}

/// Reads a stored package back and checks it (on a blocking thread).
async fn inspect_package(state: &ControlState, key: &BlobKey) -> ApiResult<package::Inspection> {
    let blob = state.blobs().get(key, None).await?;
    let reader = transfer::BlockingReader::new(blob.reader);
    let found = tokio::task::spawn_blocking(move || {
        package::inspect(std::io::BufReader::with_capacity(64 * 1024, reader))
    })
    .await?;
    found.map_err(|e| {
        Failure::new(
            ErrorCode::InvalidUpload,
            format!("the algorithm package is not a valid package archive: {e}"),
        )
    })
}

/// An artifact's versions, oldest first (members and admins; the dataset URL is shown only to
/// the dataset's owner).
#[utoipa::path(get, path = "/api/v1/artifacts/{artifact_id}/versions", tag = tags::ARTIFACTS,
    params(("artifact_id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 401), (status = 404)))]
async fn list_versions(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(artifact_id): PathId<ArtifactId>,
) -> ApiResult<Json<Vec<Value>>> {
    let (art, access) = artifact_access(&state, &caller, artifact_id, "artifact.read").await?;
    let versions = state.store().list_versions(artifact_id).await?;
    versions
        .iter()
        .map(|v| render_version(v, &art, &caller, &access))
        .collect::<ApiResult<Vec<_>>>()
        .map(Json)
}

/// One version (members and admins).
#[utoipa::path(get, path = "/api/v1/versions/{version_id}", tag = tags::ARTIFACTS,
    params(("version_id" = String, Path)),
    responses((status = 200, body = Object), (status = 401), (status = 404)))]
async fn get_version(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(version_id): PathId<VersionId>,
) -> ApiResult<Json<Value>> {
    let (v, art, access) = version_access(&state, &caller, version_id, "artifact.read").await?;
    Ok(Json(render_version(&v, &art, &caller, &access)?))
}

/// Downloads a version's content (audited): documents and criteria for members of both roles;
/// algorithm packages for the AO only (the agent gets them through the agent API). Dataset
/// versions have no content here.
#[utoipa::path(get, path = "/api/v1/versions/{version_id}/content", tag = tags::ARTIFACTS,
    params(("version_id" = String, Path)),
    responses((status = 200, description = "the file (or the criteria JSON)", content_type = "application/octet-stream"),
        (status = 400, description = "dataset versions have no content"), (status = 401), (status = 403), (status = 404)))]
async fn version_content(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(version_id): PathId<VersionId>,
) -> ApiResult<Response> {
    let action = "artifact.download";
    let (v, art, access) = version_access(&state, &caller, version_id, action).await?;
    let object = format!("version:{version_id}");
    let allowed = match art.kind {
        ArtifactKind::Algorithm => access.is(Role::AlgorithmOwner),
        _ => access.role.is_some(),
    };
    if !allowed {
        let msg = if art.kind == ArtifactKind::Algorithm {
            "only the project's algorithm owner may download algorithm packages"
        } else {
            "only the project's members may download its files"
        };
        return Err(forbid(&state, &caller, action, art.project_id, object, msg).await);
    }
    let detail =
        serde_json::json!({ "artifact_id": art.id, "kind": art.kind, "version": v.version });
    match (&v.detail, &v.blob) {
        (VersionDetail::Dataset { .. }, _) => Err(Failure::invalid(
            "dataset versions have no stored content: the dataset stays behind its URL",
        )),
        (VersionDetail::ValidationCriteria { criteria_json, .. }, _) => {
            state
                .audit_required(
                    &caller,
                    action,
                    AuditOutcome::Success,
                    Some(art.project_id),
                    Some(object),
                    detail,
                )
                .await?;
            Ok((
                [(header::CONTENT_TYPE, "application/json")],
                criteria_json.clone(),
            )
                .into_response())
        }
        (_, Some(blob)) => {
            let key = BlobKey::parse(&blob.key).map_err(Failure::internal)?;
            let reader = state.blobs().get(&key, None).await?;
            state
                .audit_required(
                    &caller,
                    action,
                    AuditOutcome::Success,
                    Some(art.project_id),
                    Some(object),
                    detail,
                )
                .await?;
            let content_type = match art.kind {
                ArtifactKind::Algorithm => "application/x-tar",
                _ if blob.file_name.to_ascii_lowercase().ends_with(".pdf") => "application/pdf",
                _ => "application/octet-stream",
            };
            Ok(transfer::blob_response(
                StatusCode::OK,
                reader,
                content_type,
                vec![
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}\"", blob.file_name),
                    ),
                    (header::ETAG, format!("\"{}\"", blob.sha256)),
                ],
            ))
        }
        (_, None) => Err(Failure::internal(format!(
            "version {version_id} has no stored file"
        ))),
    }
}

/// The data steward accepts a validation-criteria version (a validation run needs it).
#[utoipa::path(post, path = "/api/v1/versions/{version_id}/accept", tag = tags::ARTIFACTS,
    params(("version_id" = String, Path)),
    responses((status = 200, body = Object), (status = 400, description = "not a validation criteria version"),
        (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn accept_criteria(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(version_id): PathId<VersionId>,
) -> ApiResult<Json<Value>> {
    let action = "criteria.accept";
    let (_, art, access) = version_access(&state, &caller, version_id, action).await?;
    if !access.is(Role::DataSteward) {
        return Err(forbid(
            &state,
            &caller,
            action,
            art.project_id,
            format!("version:{version_id}"),
            "only the project's data steward may accept validation criteria",
        )
        .await);
    }
    if art.kind != ArtifactKind::ValidationCriteria {
        return Err(Failure::invalid(format!(
            "version {version_id} is a {}; only validation criteria are accepted",
            art.kind
        )));
    }
    let user = caller.user()?.user.clone();
    state
        .store()
        .accept_criteria(version_id, user.org_id, user.id)
        .await?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(art.project_id),
            Some(format!("version:{version_id}")),
            serde_json::json!({ "artifact_id": art.id }),
        )
        .await?;
    let v = state.store().get_version(version_id).await?;
    Ok(Json(render_version(&v, &art, &caller, &access)?))
}

/// The dataset's data steward certifies that the dataset holds no unencrypted protected data.
#[utoipa::path(post, path = "/api/v1/versions/{version_id}/certify", tag = tags::ARTIFACTS,
    params(("version_id" = String, Path)),
    responses((status = 200, body = Object), (status = 400, description = "not a dataset version"),
        (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn certify_dataset(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(version_id): PathId<VersionId>,
) -> ApiResult<Json<Value>> {
    let action = "dataset.certify";
    let (_, art, access) = version_access(&state, &caller, version_id, action).await?;
    if !access.is(Role::DataSteward) {
        return Err(forbid(
            &state,
            &caller,
            action,
            art.project_id,
            format!("version:{version_id}"),
            "only the project's data steward may certify datasets",
        )
        .await);
    }
    if art.kind != ArtifactKind::Dataset {
        return Err(Failure::invalid(format!(
            "version {version_id} is a {}; only datasets are certified",
            art.kind
        )));
    }
    if caller.org() != Some(art.owner_org_id) {
        return Err(forbid(
            &state,
            &caller,
            action,
            art.project_id,
            format!("version:{version_id}"),
            "only the data steward that owns the dataset may certify it",
        )
        .await);
    }
    let user = caller.user()?.user.clone();
    state.store().certify_dataset(version_id, user.id).await?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(art.project_id),
            Some(format!("version:{version_id}")),
            serde_json::json!({ "artifact_id": art.id }),
        )
        .await?;
    let v = state.store().get_version(version_id).await?;
    Ok(Json(render_version(&v, &art, &caller, &access)?))
}
