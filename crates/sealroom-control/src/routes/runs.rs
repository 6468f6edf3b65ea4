//! Run configurations, run requests and runs (DESIGN.md §2).
//!
//! | method path | who |
//! |---|---|
//! | `POST /api/v1/projects/{project_id}/run-configs` | AO |
//! | `GET /api/v1/projects/{project_id}/run-configs`, `GET /api/v1/run-configs/{run_config_id}` | members, admin |
//! | `POST /api/v1/run-configs/{run_config_id}/runs` | AO |
//! | `GET /api/v1/projects/{project_id}/runs`, `GET /api/v1/runs/{run_id}` | members, admin |
//! | `POST /api/v1/runs/{run_id}/initiate` · `/reject` · `/cancel` | the dataset's DS |
//! | `GET /api/v1/runs/{run_id}/logs` | members (what each may read) |
//! | `GET /api/v1/runs/{run_id}/outputs` | members, admin (metadata) |
//! | `GET /api/v1/runs/{run_id}/outputs/{output_id}/content` | the output's owner |
//! | `GET /api/v1/runs/{run_id}/report` | AO |
//!
//! Who sees what: stage logs go to both parties; what the algorithm prints goes to the dataset's
//! DS, and to the AO only where the project allows it; the final report, trained model and
//! performance report are the AO's; the DS sees their size, hash and whether they passed the
//! criteria; the algorithm's own reports are the DS's. Admins see metadata only.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sealroom_blob::BlobKey;
use sealroom_store::{NewRun, NewRunConfig, RunTransition};
use sealroom_types::{
    AuditOutcome, ComputeSize, ErrorCode, LogStream, Name, OrgId, OutputKind, ProjectId, Role, Run,
    RunConfig, RunConfigId, RunId, RunLogLine, RunOutput, RunState, RunStateChange, RuntimeParam,
    RuntimeParamName, RuntimeParams, Timestamp, UploadStepStatus, VersionDetail, VersionId,
    MAX_PARAMS,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::access::ProjectAccess;
use crate::extract::{parse_id, Caller, JsonBody, PathId, UserCaller, Q};
use crate::{ApiResult, ControlState, Failure};

/// Largest final report, in bytes (the criteria validator's document limit).
pub const MAX_FINAL_REPORT: usize = 16 << 20;
/// Longest rejection or cancellation reason, in characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// Default and largest page of log lines.
const DEFAULT_LOG_PAGE: u32 = 500;
const MAX_LOG_PAGE: u32 = 1000;

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(create_run_config, list_run_configs))
        .routes(routes!(get_run_config))
        .routes(routes!(request_run))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(initiate_run))
        .routes(routes!(reject_run))
        .routes(routes!(cancel_run))
        .routes(routes!(run_logs))
        .routes(routes!(list_outputs))
        .routes(routes!(output_content))
        .routes(routes!(final_report))
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the agent API.

/// The user, or the audited 401/403.
pub(crate) async fn user_first<'c>(
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

/// Replaces a "project not found" (the caller is not a member) with "`what` `id` not found", so
/// that a 404 names the object asked for and nothing else.
fn hide(f: Failure, what: &str, id: impl std::fmt::Display) -> Failure {
    if f.code() == ErrorCode::NotFound {
        Failure::not_found(what, id)
    } else {
        f
    }
}

/// A run and the caller's standing in its project (members and admins; others 404).
async fn run_access(
    state: &ControlState,
    caller: &Caller,
    id: RunId,
    action: &str,
) -> ApiResult<(Run, ProjectAccess)> {
    user_first(state, caller, action).await?;
    let run = state.store().get_run(id).await?;
    let access = state
        .project_access(caller, run.project_id, action)
        .await
        .map_err(|f| hide(f, "run", id))?;
    Ok((run, access))
}

/// Like [`run_access`] for members only (admins who are not members get 403, audited).
async fn run_member(
    state: &ControlState,
    caller: &Caller,
    id: RunId,
    action: &str,
) -> ApiResult<(Run, ProjectAccess)> {
    let (run, access) = run_access(state, caller, id, action).await?;
    if access.role.is_none() {
        let f = Failure::forbidden("only the project's members may do this");
        state
            .deny(caller, action, Some(run.project_id), Some(obj_run(id)), &f)
            .await;
        return Err(f);
    }
    Ok((run, access))
}

pub(crate) fn obj_run(id: RunId) -> String {
    format!("run:{id}")
}

/// The DS organization that owns the configuration's dataset (the one that initiates its runs
/// and whose data the algorithm reads).
pub(crate) async fn dataset_org(state: &ControlState, rc: &RunConfig) -> ApiResult<OrgId> {
    let v = state.store().get_version(rc.dataset_version_id).await?;
    Ok(state
        .store()
        .get_artifact(v.artifact_id)
        .await?
        .owner_org_id)
}

/// Whether the caller's organization is the DS that owns the run's dataset.
async fn is_dataset_ds(
    state: &ControlState,
    caller: &Caller,
    access: &ProjectAccess,
    run: &Run,
) -> ApiResult<bool> {
    if !access.is(Role::DataSteward) {
        return Ok(false);
    }
    let rc = state.store().get_run_config(run.run_config_id).await?;
    Ok(caller.org() == Some(dataset_org(state, &rc).await?))
}

/// 409 `project_not_active` for a deactivated (read-only) project.
fn ensure_writable(access: &ProjectAccess) -> ApiResult<()> {
    if access.project.state.allows_writes() {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::ProjectNotActive,
            format!(
                "project {} is {}: it is read-only",
                access.project.id, access.project.state
            ),
        ))
    }
}

/// A blob as a streamed response with its length.
pub(crate) async fn stream_blob(
    state: &ControlState,
    key: &str,
    content_type: &'static str,
    file_name: Option<&str>,
) -> ApiResult<Response> {
    let key = BlobKey::parse(key).map_err(Failure::internal)?;
    let blob = state.blobs().get(&key, None).await?;
    let stream = tokio_util::io::ReaderStream::new(blob.reader);
    let mut resp = Response::new(Body::from_stream(stream));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(blob.length),
    );
    if let Some(name) = file_name {
        // Only the characters a blob key or a version file name may hold reach here; anything
        // else is dropped rather than quoted.
        let safe: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(128)
            .collect();
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

/// Whose content an output kind is.
pub fn output_owner(kind: OutputKind) -> Role {
    match kind {
        OutputKind::FinalReport | OutputKind::TrainedModel | OutputKind::PerformanceReport => {
            Role::AlgorithmOwner
        }
        OutputKind::AlgorithmReport => Role::DataSteward,
    }
}

/// An output's ID in paths: `<kind>:<name>`.
pub fn output_id(o: &RunOutput) -> String {
    format!("{}:{}", o.kind, o.name)
}

// ---------------------------------------------------------------------------------------------
// Run configurations.

/// A new run configuration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRunConfigRequest {
    /// Name (1-100 characters).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The algorithm version.
    pub algorithm_version_id: String,
    /// The dataset version (its URL must be valid for more than 24 hours).
    pub dataset_version_id: String,
    /// The validation criteria version, accepted by the dataset's DS (required for a validation
    /// algorithm).
    #[serde(default)]
    pub criteria_version_id: Option<String>,
}

/// Creates a run configuration: one algorithm version × one dataset version (unique pair).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/run-configs", tag = tags::RUNS,
    params(("project_id" = String, Path, description = "the project")),
    request_body = NewRunConfigRequest,
    responses((status = 201, body = Object, description = "the run configuration"),
        (status = 400, description = "invalid name or ID"), (status = 401), (status = 403, description = "not the AO"),
        (status = 404, description = "no such project or version"),
        (status = 409, description = "duplicate_run_configuration, criteria_not_accepted, project_not_active, precondition_failed (the algorithm version failed an upload step)"),
        (status = 422, description = "dataset_url_expired")))]
async fn create_run_config(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    JsonBody(req): JsonBody<NewRunConfigRequest>,
) -> ApiResult<(StatusCode, Json<RunConfig>)> {
    let action = "run_config.create";
    let access = state
        .require_role(&caller, project_id, &[Role::AlgorithmOwner], action)
        .await?;
    let user = caller.user()?;
    let name =
        Name::parse(&req.name).map_err(|e| Failure::new(ErrorCode::InvalidName, e.to_string()))?;
    let algorithm_version_id = parse_id(&req.algorithm_version_id)?;
    let dataset_version_id = parse_id(&req.dataset_version_id)?;
    let criteria_version_id = req
        .criteria_version_id
        .as_deref()
        .map(parse_id)
        .transpose()?;
    ensure_writable(&access)?;
    ensure_upload_steps_passed(&state, project_id, algorithm_version_id).await?;
    let rc = state
        .store()
        .create_run_config(
            NewRunConfig {
                project_id,
                name,
                description: req.description,
                algorithm_version_id,
                dataset_version_id,
                criteria_version_id,
                created_by: user.user.id,
            },
            Timestamp::now(),
        )
        .await?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(project_id),
            Some(format!("run_config:{}", rc.id)),
            serde_json::json!({
                "algorithm_version_id": rc.algorithm_version_id,
                "dataset_version_id": rc.dataset_version_id,
                "criteria_version_id": rc.criteria_version_id,
            }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rc)))
}

/// 409 `precondition_failed` naming the failed step(s) when the algorithm version's upload
/// checks did not pass. A version of another project, or not an algorithm, is left to the store
/// (404 / 400), so that nothing about it is told here. Steps still `pending` (a version made
/// directly in the store, never through the upload route, which always records every step) are
/// not refused here.
async fn ensure_upload_steps_passed(
    state: &ControlState,
    project_id: ProjectId,
    version: VersionId,
) -> ApiResult<()> {
    let v = match state.store().get_version(version).await {
        Ok(v) => v,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if v.project_id != project_id {
        return Ok(());
    }
    let VersionDetail::Algorithm { upload_steps, .. } = &v.detail else {
        return Ok(());
    };
    let failed: Vec<String> = upload_steps
        .iter()
        .filter(|s| s.status == UploadStepStatus::Failed)
        .map(|s| match &s.message {
            Some(m) => format!("{} ({m})", s.step),
            None => s.step.to_string(),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::PreconditionFailed,
            format!(
                "algorithm version {version} did not pass its upload checks: failed step {}; \
                 upload a corrected package as a new version",
                failed.join(", ")
            ),
        ))
    }
}

/// The project's run configurations, oldest first.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/run-configs", tag = tags::RUNS,
    params(("project_id" = String, Path, description = "the project")),
    responses((status = 200, body = Vec<Object>), (status = 401), (status = 404)))]
async fn list_run_configs(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
) -> ApiResult<Json<Vec<RunConfig>>> {
    state
        .project_access(&caller, project_id, "run_config.list")
        .await?;
    Ok(Json(state.store().list_run_configs(project_id).await?))
}

/// One run configuration.
#[utoipa::path(get, path = "/api/v1/run-configs/{run_config_id}", tag = tags::RUNS,
    params(("run_config_id" = String, Path, description = "the run configuration")),
    responses((status = 200, body = Object), (status = 401), (status = 404)))]
async fn get_run_config(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunConfigId>,
) -> ApiResult<Json<RunConfig>> {
    let action = "run_config.read";
    user_first(&state, &caller, action).await?;
    let rc = state.store().get_run_config(id).await?;
    state
        .project_access(&caller, rc.project_id, action)
        .await
        .map_err(|f| hide(f, "run configuration", id))?;
    Ok(Json(rc))
}

// ---------------------------------------------------------------------------------------------
// Run requests and runs.

/// Runtime parameters as a JSON object, names in the order given (duplicates kept, so that they
/// are refused rather than silently merged).
#[derive(Debug, Default)]
pub struct ParamPairs(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for ParamPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ParamPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of parameter names to string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ParamPairs, A::Error> {
                // One pair over the limit is kept, so that [`check_params`] refuses the
                // request with `invalid_parameter`; the rest is read and dropped (the body is
                // already bounded by the JSON limit).
                let mut out = Vec::new();
                while out.len() <= MAX_PARAMS {
                    match map.next_entry::<String, String>()? {
                        Some(pair) => out.push(pair),
                        None => return Ok(ParamPairs(out)),
                    }
                }
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(ParamPairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A run request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequestBody {
    /// Runtime parameters, `{"NAME": "value"}`: names start with a letter, then letters/digits,
    /// optionally separated by single `_`, `-` or `.`; values are strings (environment variables).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: ParamPairs,
    /// vCPUs, from the project technology's choices.
    pub vcpus: u32,
    /// RAM in GiB, from the project technology's choices.
    pub ram_gib: u32,
}

/// The prefix of the environment variables Sealroom sets in the enclave.
const RESERVED_PREFIX: &str = "ESCROW_";

/// Checks runtime parameters: 400 `invalid_parameter` naming the bad one.
pub fn check_params(pairs: Vec<(String, String)>) -> ApiResult<RuntimeParams> {
    let bad =
        |e: sealroom_types::ParamError| Failure::new(ErrorCode::InvalidParameter, e.to_string());
    if pairs.len() > MAX_PARAMS {
        return Err(bad(sealroom_types::ParamError::TooMany));
    }
    let mut list = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        // Every `ESCROW_` name is Sealroom's (docs/api/runs.md), not only those it sets today.
        if name
            .get(..RESERVED_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX))
        {
            return Err(bad(sealroom_types::ParamError::Reserved(
                name.chars().take(64).collect(),
            )));
        }
        let name = RuntimeParamName::parse(&name).map_err(bad)?;
        list.push(RuntimeParam { name, value });
    }
    RuntimeParams::new(list).map_err(bad)
}

/// Sends a run request on a configuration (state `requested`); notifies the dataset's DS.
#[utoipa::path(post, path = "/api/v1/run-configs/{run_config_id}/runs", tag = tags::RUNS,
    params(("run_config_id" = String, Path, description = "the run configuration")),
    request_body = RunRequestBody,
    responses((status = 201, body = Object, description = "the run, `requested`"),
        (status = 400, description = "invalid_parameter, invalid_compute_size"), (status = 401),
        (status = 403, description = "not the AO"), (status = 404),
        (status = 409, description = "run_already_open, project_not_active")))]
async fn request_run(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunConfigId>,
    JsonBody(req): JsonBody<RunRequestBody>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let action = "run.request";
    user_first(&state, &caller, action).await?;
    let rc = state.store().get_run_config(id).await?;
    let access = state
        .require_role(&caller, rc.project_id, &[Role::AlgorithmOwner], action)
        .await
        .map_err(|f| hide(f, "run configuration", id))?;
    let user = caller.user()?;
    let params = check_params(req.params.0)?;
    let tech = access.project.technology;
    if !tech.allows_compute(req.vcpus, req.ram_gib) {
        let choices: Vec<String> = tech
            .compute_choices()
            .iter()
            .map(|c| format!("{}/{}", c.vcpus, c.ram_gib))
            .collect();
        return Err(Failure::new(
            ErrorCode::InvalidComputeSize,
            format!(
                "{} vCPU / {} GiB is not offered for {tech} projects; choose one of (vCPU/GiB) {}",
                req.vcpus,
                req.ram_gib,
                choices.join(", ")
            ),
        ));
    }
    let run = state
        .store()
        .request_run(NewRun {
            run_config_id: id,
            params,
            compute: ComputeSize {
                vcpus: req.vcpus,
                ram_gib: req.ram_gib,
            },
            requested_by: user.user.id,
        })
        .await?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(run.project_id),
            Some(obj_run(run.id)),
            serde_json::json!({
                "run_config_id": id,
                "params": run.params.as_slice().iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                "vcpus": run.compute.vcpus,
                "ram_gib": run.compute.ram_gib,
            }),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// `?run_config_id=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Only runs of this configuration.
    pub run_config_id: Option<String>,
}

/// A project's runs (run requests included), newest first.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/runs", tag = tags::RUNS,
    params(("project_id" = String, Path, description = "the project"), RunListQuery),
    responses((status = 200, body = Vec<Object>), (status = 400), (status = 401), (status = 404)))]
async fn list_runs(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    Q(q): Q<RunListQuery>,
) -> ApiResult<Json<Vec<Run>>> {
    state
        .project_access(&caller, project_id, "run.list")
        .await?;
    let config = q.run_config_id.as_deref().map(parse_id).transpose()?;
    Ok(Json(state.store().list_runs(project_id, config).await?))
}

/// A run with its state history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunPage {
    /// The run.
    #[schema(value_type = Object)]
    pub run: Run,
    /// Its state changes, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<RunStateChange>,
}

/// One run and its state history.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run")),
    responses((status = 200, body = RunPage), (status = 401), (status = 404)))]
async fn get_run(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
) -> ApiResult<Json<RunPage>> {
    let (run, _) = run_access(&state, &caller, id, "run.read").await?;
    let history = state.store().run_history(id).await?;
    Ok(Json(RunPage { run, history }))
}

/// The run, for one of the dataset's DS's own actions: 403 for anyone else (audited).
async fn dataset_ds_action(
    state: &ControlState,
    caller: &Caller,
    id: RunId,
    action: &str,
) -> ApiResult<(Run, ProjectAccess)> {
    user_first(state, caller, action).await?;
    let run = state.store().get_run(id).await?;
    let access = state
        .require_role(caller, run.project_id, &[Role::DataSteward], action)
        .await
        .map_err(|f| hide(f, "run", id))?;
    if !is_dataset_ds(state, caller, &access, &run).await? {
        let f = Failure::forbidden("only the data steward whose dataset the run reads may do this");
        state
            .deny(caller, action, Some(run.project_id), Some(obj_run(id)), &f)
            .await;
        return Err(f);
    }
    Ok((run, access))
}

async fn ds_transition(
    state: &ControlState,
    caller: &Caller,
    run: &Run,
    to: RunState,
    message: Option<String>,
    action: &str,
) -> ApiResult<Run> {
    let updated = state
        .store()
        .transition_run(
            RunTransition {
                run_id: run.id,
                to,
                actor: caller.actor(),
                message: message.clone(),
            },
            Timestamp::now(),
        )
        .await?;
    state
        .audit_required(
            caller,
            action,
            AuditOutcome::Success,
            Some(run.project_id),
            Some(obj_run(run.id)),
            serde_json::json!({ "from": run.state, "to": to, "reason": message }),
        )
        .await?;
    Ok(updated)
}

/// The DS initiates a requested run: the site's agent may claim it.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/initiate", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run")),
    responses((status = 200, body = Object, description = "the run, `initiated`"), (status = 401),
        (status = 403, description = "not the dataset's DS"), (status = 404),
        (status = 409, description = "invalid_state_transition, project_not_active"),
        (status = 422, description = "dataset_url_expired")))]
async fn initiate_run(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
) -> ApiResult<Json<Run>> {
    let action = "run.initiate";
    let (run, _) = dataset_ds_action(&state, &caller, id, action).await?;
    let updated = ds_transition(&state, &caller, &run, RunState::Initiated, None, action).await?;
    state.inner.run_initiated.notify_waiters();
    Ok(Json(updated))
}

/// A rejection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why (1-1000 characters); the AO is notified with it.
    pub reason: String,
}

/// A cancellation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why (at most 1000 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

fn check_reason(reason: &str, required: bool) -> ApiResult<Option<String>> {
    let r = reason.trim();
    if r.is_empty() {
        return if required {
            Err(Failure::invalid(
                "a reason is required (1 to 1000 characters)",
            ))
        } else {
            Ok(None)
        };
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(Failure::invalid(format!(
            "the reason must have at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(Some(r.to_string()))
}

/// The DS rejects a run request, with a reason; the AO is notified.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/reject", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run")),
    request_body = RejectRequest,
    responses((status = 200, body = Object, description = "the run, `rejected`"),
        (status = 400, description = "missing or too long reason"), (status = 401),
        (status = 403), (status = 404), (status = 409)))]
async fn reject_run(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
    JsonBody(req): JsonBody<RejectRequest>,
) -> ApiResult<Json<Run>> {
    let action = "run.reject";
    let (run, access) = dataset_ds_action(&state, &caller, id, action).await?;
    let reason = check_reason(&req.reason, true)?;
    ensure_writable(&access)?;
    let updated = ds_transition(&state, &caller, &run, RunState::Rejected, reason, action).await?;
    Ok(Json(updated))
}

/// The DS cancels a run request or an active run; the agent learns it from its next heartbeat.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/cancel", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run")),
    request_body = CancelRequest,
    responses((status = 200, body = Object, description = "the run, `cancelled`"),
        (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn cancel_run(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
    JsonBody(req): JsonBody<CancelRequest>,
) -> ApiResult<Json<Run>> {
    let action = "run.cancel";
    let (run, access) = dataset_ds_action(&state, &caller, id, action).await?;
    let reason = check_reason(req.reason.as_deref().unwrap_or(""), false)?;
    ensure_writable(&access)?;
    let updated = ds_transition(&state, &caller, &run, RunState::Cancelled, reason, action).await?;
    Ok(Json(updated))
}

// ---------------------------------------------------------------------------------------------
// Logs and outputs.

/// `?stream=&after=&limit=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// `stage` or `algorithm`; absent: every log the caller may read.
    pub stream: Option<String>,
    /// Lines after this sequence number (default 0).
    pub after: Option<i64>,
    /// Lines per page (default 500, at most 1000).
    pub limit: Option<u32>,
}

/// A page of log lines.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    /// The lines, by sequence number.
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<RunLogLine>,
    /// Pass as `after` for the next page (the last line's sequence number, or `after` itself).
    pub next_after: i64,
    /// The logs this page was read from.
    #[schema(value_type = Vec<String>)]
    pub streams: Vec<LogStream>,
}

/// A run's log lines: stage logs to both parties, the algorithm's output to the dataset's DS
/// (and to the AO where the project allows it); admins read no log content.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/logs", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run"), LogQuery),
    responses((status = 200, body = LogPage), (status = 400), (status = 401),
        (status = 403, description = "a log the caller may not read"), (status = 404)))]
async fn run_logs(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
    Q(q): Q<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    let action = "run.logs";
    let (run, access) = run_member(&state, &caller, id, action).await?;
    let algorithm_allowed = if access.is(Role::AlgorithmOwner) {
        access.project.algorithm_logs_to_ao
    } else {
        is_dataset_ds(&state, &caller, &access, &run).await?
    };
    let mut streams = vec![LogStream::Stage];
    if algorithm_allowed {
        streams.push(LogStream::Algorithm);
    }
    if let Some(s) = q.stream.as_deref() {
        let wanted: LogStream = s
            .parse()
            .map_err(|e: sealroom_types::UnknownVariant| Failure::invalid(e.to_string()))?;
        if !streams.contains(&wanted) {
            let f = Failure::forbidden(
                "the algorithm's log goes to the data steward, and to the algorithm owner only where the data steward allows it",
            );
            state
                .deny(&caller, action, Some(run.project_id), Some(obj_run(id)), &f)
                .await;
            return Err(f);
        }
        streams = vec![wanted];
    }
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(Failure::invalid("after must be 0 or more"));
    }
    let limit = match q.limit {
        None => DEFAULT_LOG_PAGE,
        Some(n @ 1..=MAX_LOG_PAGE) => n,
        Some(_) => {
            return Err(Failure::invalid(format!(
                "limit must be 1 to {MAX_LOG_PAGE}"
            )))
        }
    };
    let lines = state.store().run_logs(id, &streams, after, limit).await?;
    let next_after = lines.last().map_or(after, |l| l.seq);
    Ok(Json(LogPage {
        lines,
        next_after,
        streams,
    }))
}

/// One output, as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutputInfo {
    /// Its ID in paths: `<kind>:<name>`.
    pub id: String,
    /// `final_report`, `trained_model`, `performance_report` or `algorithm_report`.
    #[schema(value_type = String)]
    pub kind: OutputKind,
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Whether it passed the accepted criteria.
    pub passed_criteria: Option<bool>,
    /// When it arrived.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Which party may read its content.
    #[schema(value_type = String)]
    pub owner: Role,
    /// Whether the caller may read its content.
    pub content_visible: bool,
}

async fn may_read_output(
    state: &ControlState,
    caller: &Caller,
    access: &ProjectAccess,
    run: &Run,
    kind: OutputKind,
) -> ApiResult<bool> {
    Ok(match output_owner(kind) {
        Role::AlgorithmOwner => access.is(Role::AlgorithmOwner),
        Role::DataSteward => is_dataset_ds(state, caller, access, run).await?,
    })
}

/// A run's outputs: size, hash and criteria verdict for everyone who may see the run; the content
/// only to the party it belongs to.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/outputs", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run")),
    responses((status = 200, body = Vec<OutputInfo>), (status = 401), (status = 404)))]
async fn list_outputs(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
) -> ApiResult<Json<Vec<OutputInfo>>> {
    let (run, access) = run_access(&state, &caller, id, "run.outputs").await?;
    let ds_reads = is_dataset_ds(&state, &caller, &access, &run).await?;
    let outputs = state.store().run_outputs(id).await?;
    Ok(Json(
        outputs
            .into_iter()
            .map(|o| {
                let owner = output_owner(o.kind);
                let content_visible = match owner {
                    Role::AlgorithmOwner => access.is(Role::AlgorithmOwner),
                    Role::DataSteward => ds_reads,
                };
                OutputInfo {
                    id: output_id(&o),
                    kind: o.kind,
                    name: o.name,
                    size: o.blob.size,
                    sha256: o.blob.sha256,
                    passed_criteria: o.passed_criteria,
                    created_at: o.created_at,
                    owner,
                    content_visible,
                }
            })
            .collect(),
    ))
}

/// The output named `<kind>:<name>`, or 404.
async fn find_output(state: &ControlState, id: RunId, output: &str) -> ApiResult<RunOutput> {
    let not_found =
        || Failure::not_found("run output", output.chars().take(200).collect::<String>());
    let (kind, name) = output.split_once(':').ok_or_else(not_found)?;
    let kind: OutputKind = kind.parse().map_err(|_| not_found())?;
    state
        .store()
        .run_outputs(id)
        .await?
        .into_iter()
        .find(|o| o.kind == kind && o.name == name)
        .ok_or_else(not_found)
}

/// Downloads an output's content (its owner only; audited).
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/outputs/{output_id}/content", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run"),
        ("output_id" = String, Path, description = "`<kind>:<name>`")),
    responses((status = 200, description = "the content (application/octet-stream)"),
        (status = 401), (status = 403, description = "not the output's owner"), (status = 404)))]
async fn output_content(
    State(state): State<ControlState>,
    caller: Caller,
    path: Result<axum::extract::Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Response> {
    let action = "run.output.download";
    let (run_id, output) = super::agent::path_pair(path)?;
    let id: RunId = parse_id(&run_id)?;
    let (run, access) = run_member(&state, &caller, id, action).await?;
    let out = find_output(&state, id, &output).await?;
    if !may_read_output(&state, &caller, &access, &run, out.kind).await? {
        let f = Failure::forbidden(format!(
            "the content of a {} belongs to the {}",
            out.kind,
            output_owner(out.kind)
        ));
        state
            .deny(&caller, action, Some(run.project_id), Some(obj_run(id)), &f)
            .await;
        return Err(f);
    }
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(run.project_id),
            Some(obj_run(id)),
            serde_json::json!({ "output": output_id(&out), "sha256": out.blob.sha256 }),
        )
        .await?;
    stream_blob(
        &state,
        &out.blob.key,
        "application/octet-stream",
        Some(&out.name),
    )
    .await
}

/// The validated final report, verbatim (the AO's).
#[utoipa::path(get, path = "/api/v1/runs/{run_id}/report", tag = tags::RUNS,
    params(("run_id" = String, Path, description = "the run")),
    responses((status = 200, description = "the final report JSON, as the algorithm posted it"),
        (status = 401), (status = 403, description = "not the AO"),
        (status = 404, description = "no such run, or no final report yet")))]
async fn final_report(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
) -> ApiResult<Response> {
    let action = "run.report.download";
    user_first(&state, &caller, action).await?;
    let run = state.store().get_run(id).await?;
    state
        .require_role(&caller, run.project_id, &[Role::AlgorithmOwner], action)
        .await
        .map_err(|f| hide(f, "run", id))?;
    let out = state
        .store()
        .run_outputs(id)
        .await?
        .into_iter()
        .find(|o| o.kind == OutputKind::FinalReport && o.passed_criteria == Some(true))
        .ok_or_else(|| Failure::not_found("final report of run", id))?;
    if out.blob.size < 0 || out.blob.size as u64 > MAX_FINAL_REPORT as u64 {
        return Err(Failure::internal(format!(
            "stored final report of run {id} has size {}",
            out.blob.size
        )));
    }
    let key = BlobKey::parse(&out.blob.key).map_err(Failure::internal)?;
    let blob = state.blobs().get(&key, None).await?;
    let mut bytes = Vec::with_capacity(out.blob.size as usize);
    use tokio::io::AsyncReadExt as _;
    blob.reader
        .take(MAX_FINAL_REPORT as u64)
        .read_to_end(&mut bytes)
        .await
        .map_err(Failure::internal)?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(run.project_id),
            Some(obj_run(id)),
            serde_json::json!({ "output": output_id(&out), "sha256": out.blob.sha256 }),
        )
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(bytes),
    )
        .into_response())
}
