//! The agent API: what a DS site's enclave agent calls, with its site token.
//!
//! | method path | does |
//! |---|---|
//! | `POST /api/v1/agent/claim?wait=` | long-polls (≤ 30 s) for a run the site's DS initiated; 200 bundle or 204 |
//! | `GET /api/v1/agent/runs/{run_id}` | the bundle of a run this site claimed |
//! | `GET /api/v1/agent/runs/{run_id}/package` | the algorithm package (sealed files), streamed |
//! | `POST /api/v1/agent/runs/{run_id}/state` | `runtime_build`, `workload_launch`, `running`, `completed`, `failed` |
//! | `POST /api/v1/agent/runs/{run_id}/heartbeat` | `{state, cancel}` |
//! | `POST /api/v1/agent/runs/{run_id}/logs` | up to 1000 lines of 16 KiB |
//! | `PUT /api/v1/agent/runs/{run_id}/outputs/{kind}?name=&passed_criteria=` | an output, streamed |
//!
//! A site sees only the runs it claimed (others are 404). A final report is stored only if the
//! server itself validates it against the run configuration's accepted criteria: a report that
//! fails is refused and never reaches the AO.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{StreamExt as _, TryStreamExt as _};
use sealroom_blob::{BlobKey, PutOptions};
use sealroom_store::{NewLogLine, NewRunOutput, RunTransition};
use sealroom_types::{
    AlgorithmType, AuditOutcome, BlobRef, ComputeSize, ErrorCode, LogStream, OutputKind, ProjectId,
    Role, Run, RunConfig, RunId, RunState, RuntimeParams, Technology, Timestamp, VersionDetail,
    VersionId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{obj_run, stream_blob, MAX_FINAL_REPORT};
use super::tags;
use crate::extract::{has_content_type, parse_id, Caller, JsonBody, PathId, SiteCaller, Q};
use crate::{sweeper, ApiResult, ControlState, Failure};

/// Longest long poll, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// Most log lines per call.
pub const MAX_LOG_LINES: usize = 1000;
/// Longest log line, in bytes.
pub const MAX_LOG_LINE: usize = 16 * 1024;
/// Body limit of the log route (1000 lines of 16 KiB, JSON-escaped).
const LOG_BODY_LIMIT: usize = 40 << 20;
/// How long after a run ended its agent may still send log lines.
const LOG_GRACE: Duration = Duration::from_secs(600);
/// Longest state message, in characters.
const MAX_MESSAGE_CHARS: usize = 2000;
/// How often a long poll re-checks the store even without a wake-up (initiations made through
/// another server process).
const RECHECK: Duration = Duration::from_secs(5);

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(claim))
        .routes(routes!(get_bundle))
        .routes(routes!(download_package))
        .routes(routes!(report_state))
        .routes(routes!(heartbeat))
        .routes(routes!(put_output))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(append_logs))
                .layer(DefaultBodyLimit::max(LOG_BODY_LIMIT)),
        )
}

// ---------------------------------------------------------------------------------------------
// The run bundle.

/// The project as the agent needs it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BundleProject {
    /// Its ID (`ESCROW_PROJECT_ID`).
    #[schema(value_type = String)]
    pub id: ProjectId,
    /// The TEE technology the run must attest with.
    #[schema(value_type = String)]
    pub technology: Technology,
}

/// The algorithm version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BundleAlgorithm {
    /// The version.
    #[schema(value_type = String)]
    pub version_id: VersionId,
    /// Training or validation.
    #[schema(value_type = String)]
    pub algorithm_type: AlgorithmType,
    /// The approved workload digest, once known (the broker releases keys only to it).
    pub workload_digest: Option<String>,
    /// Package size in bytes (absent: no package uploaded).
    pub package_size: Option<i64>,
    /// Hex SHA-256 of the package.
    pub package_sha256: Option<String>,
    /// Fingerprint of the AO WCEK version the package is sealed under, when recorded.
    pub wcek_fingerprint: Option<String>,
}

/// The dataset version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BundleDataset {
    /// The version.
    #[schema(value_type = String)]
    pub version_id: VersionId,
    /// The signed URL of the encrypted dataset.
    pub url: String,
    /// When the URL expires.
    #[schema(value_type = String)]
    pub url_expires_at: Timestamp,
    /// Fingerprint of the DS WCEK version it is sealed under, when recorded.
    pub wcek_fingerprint: Option<String>,
}

/// Which CEK of one role the run needs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CekNeed {
    /// Whose CEK.
    #[schema(value_type = String)]
    pub role: Role,
    /// Fingerprint of the WCEK version the artifact is sealed under, when recorded.
    pub artifact_wcek_fingerprint: Option<String>,
    /// The role's latest WCEK version (the one the broker holds), if any.
    pub latest_wcek_version: Option<i64>,
    /// Its fingerprint.
    pub latest_wcek_fingerprint: Option<String>,
    /// Key id of the CEK it wraps, when known.
    pub latest_cek_key_id: Option<String>,
}

/// Everything an agent needs to run one run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunBundle {
    /// The run.
    #[schema(value_type = Object)]
    pub run: Run,
    /// The project.
    pub project: BundleProject,
    /// The run configuration.
    #[schema(value_type = Object)]
    pub run_config: RunConfig,
    /// The algorithm version.
    pub algorithm: BundleAlgorithm,
    /// The dataset version.
    pub dataset: BundleDataset,
    /// The accepted validation criteria (JSON text), if the configuration has them.
    pub criteria_json: Option<String>,
    /// Runtime parameters (`[{name, value}]`, environment variables of the algorithm).
    #[schema(value_type = Vec<Object>)]
    pub params: RuntimeParams,
    /// vCPU / RAM.
    #[schema(value_type = Object)]
    pub compute: ComputeSize,
    /// The CEKs the run needs, AO's and DS's.
    pub keys: Vec<CekNeed>,
}

async fn bundle(state: &ControlState, run: Run) -> ApiResult<RunBundle> {
    let store = state.store();
    let project = store.get_project(run.project_id).await?;
    let rc = store.get_run_config(run.run_config_id).await?;
    let alg = store.get_version(rc.algorithm_version_id).await?;
    let VersionDetail::Algorithm {
        algorithm_type,
        workload_digest,
        wcek_fingerprint: alg_wcek,
        ..
    } = alg.detail
    else {
        return Err(Failure::internal(format!(
            "version {} of run configuration {} is not an algorithm",
            alg.id, rc.id
        )));
    };
    let ds = store.get_version(rc.dataset_version_id).await?;
    let VersionDetail::Dataset {
        location,
        wcek_fingerprint: ds_wcek,
        ..
    } = ds.detail
    else {
        return Err(Failure::internal(format!(
            "version {} of run configuration {} is not a dataset",
            ds.id, rc.id
        )));
    };
    let criteria_json = match rc.criteria_version_id {
        None => None,
        Some(cv) => match store.get_version(cv).await?.detail {
            VersionDetail::ValidationCriteria { criteria_json, .. } => Some(criteria_json),
            _ => {
                return Err(Failure::internal(format!(
                    "version {cv} of run configuration {} is not validation criteria",
                    rc.id
                )))
            }
        },
    };
    let mut keys = Vec::new();
    for (role, artifact_wcek) in [
        (Role::AlgorithmOwner, alg_wcek.clone()),
        (Role::DataSteward, ds_wcek.clone()),
    ] {
        let latest = store
            .latest_wcek(run.project_id, role)
            .await?
            .map(|(v, _)| v);
        keys.push(CekNeed {
            role,
            artifact_wcek_fingerprint: artifact_wcek,
            latest_wcek_version: latest.as_ref().map(|v| v.version),
            latest_wcek_fingerprint: latest.as_ref().map(|v| v.fingerprint.clone()),
            latest_cek_key_id: latest.and_then(|v| v.cek_key_id),
        });
    }
    Ok(RunBundle {
        project: BundleProject {
            id: project.id,
            technology: project.technology,
        },
        algorithm: BundleAlgorithm {
            version_id: alg.id,
            algorithm_type,
            workload_digest,
            package_size: alg.blob.as_ref().map(|b| b.size),
            package_sha256: alg.blob.as_ref().map(|b| b.sha256.clone()),
            wcek_fingerprint: alg_wcek,
        },
        dataset: BundleDataset {
            version_id: ds.id,
            url: location.url,
            url_expires_at: location.expires_at,
            wcek_fingerprint: ds_wcek,
        },
        criteria_json,
        params: run.params.clone(),
        compute: run.compute,
        run_config: rc,
        keys,
        run,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The site, or the audited 401/403.
async fn site_first<'c>(
    state: &ControlState,
    caller: &'c Caller,
    action: &str,
) -> ApiResult<&'c SiteCaller> {
    match caller.site() {
        Ok(s) => Ok(s),
        Err(f) => {
            state.deny(caller, action, None, None, &f).await;
            Err(f)
        }
    }
}

/// A run this site claimed; any other run is 404 (audited).
async fn site_run(
    state: &ControlState,
    caller: &Caller,
    id: RunId,
    action: &str,
) -> ApiResult<Run> {
    let site = site_first(state, caller, action).await?;
    let run = state.store().get_run(id).await?;
    if run.site_id != Some(site.site.id) {
        let f = Failure::not_found("run", id);
        state
            .deny(caller, action, Some(run.project_id), Some(obj_run(id)), &f)
            .await;
        return Err(f);
    }
    Ok(run)
}

pub(crate) fn path_pair(
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<(String, String)> {
    p.map(|Path(v)| v)
        .map_err(|e| Failure::invalid(format!("path: {}", e.body_text())))
}

// ---------------------------------------------------------------------------------------------
// Claim and bundle.

/// `?wait=SECONDS`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClaimQuery {
    /// How long to wait for a run, 0-30 seconds (default 0: answer at once).
    pub wait: Option<u64>,
}

/// Claims an initiated run of the site's organization, waiting up to `wait` seconds for one.
#[utoipa::path(post, path = "/api/v1/agent/claim", tag = tags::AGENT,
    params(ClaimQuery),
    responses((status = 200, body = RunBundle, description = "a run, now claimed by this site"),
        (status = 204, description = "no run to claim within the wait"),
        (status = 400), (status = 401), (status = 403, description = "not a site token")))]
async fn claim(
    State(state): State<ControlState>,
    caller: Caller,
    Q(q): Q<ClaimQuery>,
) -> ApiResult<Response> {
    let action = "agent.claim";
    let site = site_first(&state, &caller, action).await?.site.id;
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(Failure::invalid(format!(
            "wait must be 0 to {MAX_WAIT_SECS} seconds"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    let run = loop {
        // Register for the wake-up before looking, so that an initiation between the look and
        // the wait is not missed.
        let notified = state.inner.run_initiated.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if let Some(run) = state.store().claim_run(site).await? {
            break run;
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let _ = tokio::time::timeout((deadline - now).min(RECHECK), notified).await;
    };
    sweeper::touch(&state, run.id);
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(run.project_id),
            Some(obj_run(run.id)),
            serde_json::json!({ "site_id": site }),
        )
        .await?;
    Ok(Json(bundle(&state, run).await?).into_response())
}

/// The bundle of a run this site claimed.
#[utoipa::path(get, path = "/api/v1/agent/runs/{run_id}", tag = tags::AGENT,
    params(("run_id" = String, Path, description = "the run")),
    responses((status = 200, body = RunBundle), (status = 401), (status = 403),
        (status = 404, description = "no such run, or not claimed by this site")))]
async fn get_bundle(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
) -> ApiResult<Json<RunBundle>> {
    let run = site_run(&state, &caller, id, "agent.run.read").await?;
    Ok(Json(bundle(&state, run).await?))
}

/// Downloads the run's algorithm package (audited as `artifact.download`).
#[utoipa::path(get, path = "/api/v1/agent/runs/{run_id}/package", tag = tags::AGENT,
    params(("run_id" = String, Path, description = "the run")),
    responses((status = 200, description = "the package tar (application/octet-stream)"),
        (status = 401), (status = 403), (status = 404),
        (status = 409, description = "the run is not active, or the version has no package")))]
async fn download_package(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
) -> ApiResult<Response> {
    let action = "artifact.download";
    let run = site_run(&state, &caller, id, action).await?;
    if !run.state.is_active() {
        return Err(Failure::new(
            ErrorCode::InvalidStateTransition,
            format!("run {id} is {}: its package is no longer served", run.state),
        ));
    }
    let rc = state.store().get_run_config(run.run_config_id).await?;
    let version = state.store().get_version(rc.algorithm_version_id).await?;
    let blob: BlobRef = version.blob.ok_or_else(|| {
        Failure::new(
            ErrorCode::PreconditionFailed,
            format!("algorithm version {} has no package", version.id),
        )
    })?;
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(run.project_id),
            Some(format!("version:{}", version.id)),
            serde_json::json!({ "run_id": id, "sha256": blob.sha256, "size": blob.size }),
        )
        .await?;
    stream_blob(
        &state,
        &blob.key,
        "application/octet-stream",
        Some(&blob.file_name),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// State, heartbeat, logs.

/// A state report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateReport {
    /// `runtime_build`, `workload_launch`, `running`, `completed` or `failed`.
    pub state: String,
    /// What happened (required for `failed`, at most 2000 characters).
    #[serde(default)]
    pub message: Option<String>,
}

/// Moves a claimed run forward along its stages, or fails it.
#[utoipa::path(post, path = "/api/v1/agent/runs/{run_id}/state", tag = tags::AGENT,
    params(("run_id" = String, Path, description = "the run")),
    request_body = StateReport,
    responses((status = 200, body = Object, description = "the run"), (status = 400), (status = 401),
        (status = 403), (status = 404),
        (status = 409, description = "invalid_state_transition (e.g. the DS cancelled the run)")))]
async fn report_state(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
    JsonBody(req): JsonBody<StateReport>,
) -> ApiResult<Json<Run>> {
    let action = "agent.state";
    let run = site_run(&state, &caller, id, action).await?;
    let to: RunState = req
        .state
        .parse()
        .map_err(|e: sealroom_types::UnknownVariant| Failure::invalid(e.to_string()))?;
    if !matches!(
        to,
        RunState::RuntimeBuild
            | RunState::WorkloadLaunch
            | RunState::Running
            | RunState::Completed
            | RunState::Failed
    ) {
        return Err(Failure::invalid(format!(
            "an agent reports runtime_build, workload_launch, running, completed or failed, not {to}"
        )));
    }
    let message = req
        .message
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    if message
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS)
    {
        return Err(Failure::invalid(format!(
            "the message must have at most {MAX_MESSAGE_CHARS} characters"
        )));
    }
    if to == RunState::Failed && message.is_none() {
        return Err(Failure::invalid("a failed run needs a message saying why"));
    }
    let updated = state
        .store()
        .transition_run(
            RunTransition {
                run_id: id,
                to,
                actor: caller.actor(),
                message: message.clone(),
            },
            Timestamp::now(),
        )
        .await?;
    if to.is_terminal() {
        sweeper::forget(&state, id);
    } else {
        sweeper::touch(&state, id);
    }
    state
        .audit_required(
            &caller,
            "run.state",
            AuditOutcome::Success,
            Some(run.project_id),
            Some(obj_run(id)),
            serde_json::json!({ "from": run.state, "to": to, "message": message }),
        )
        .await?;
    Ok(Json(updated))
}

/// The answer to a heartbeat.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatResponse {
    /// The run's state.
    #[schema(value_type = String)]
    pub state: RunState,
    /// Whether the DS cancelled the run: stop it and wipe its workspace.
    pub cancel: bool,
}

/// Tells the server the agent is alive; answers whether the run was cancelled.
#[utoipa::path(post, path = "/api/v1/agent/runs/{run_id}/heartbeat", tag = tags::AGENT,
    params(("run_id" = String, Path, description = "the run")),
    responses((status = 200, body = HeartbeatResponse), (status = 401), (status = 403), (status = 404)))]
async fn heartbeat(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let run = site_run(&state, &caller, id, "agent.heartbeat").await?;
    if run.state.is_active() {
        sweeper::touch(&state, id);
    } else {
        sweeper::forget(&state, id);
    }
    Ok(Json(HeartbeatResponse {
        state: run.state,
        cancel: run.state == RunState::Cancelled,
    }))
}

/// One log line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentLogLine {
    /// `stage` (the agent's own progress) or `algorithm` (what the algorithm printed).
    #[schema(value_type = String)]
    pub stream: LogStream,
    /// When the agent saw it, RFC 3339 (default: now).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub at: Option<Timestamp>,
    /// The text (at most 16 KiB).
    pub line: String,
}

/// A batch of log lines.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentLogs {
    /// At most 1000 lines.
    pub lines: Vec<AgentLogLine>,
}

/// The sequence number of the last line stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogsAppended {
    /// Sequence number of the last line.
    pub last_seq: i64,
}

/// Appends log lines of a claimed run (while it is active, and for 10 minutes after it ends).
#[utoipa::path(post, path = "/api/v1/agent/runs/{run_id}/logs", tag = tags::AGENT,
    params(("run_id" = String, Path, description = "the run")),
    request_body = AgentLogs,
    responses((status = 200, body = LogsAppended), (status = 400, description = "too many or too long lines"),
        (status = 401), (status = 403), (status = 404), (status = 409, description = "the run ended")))]
async fn append_logs(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(id): PathId<RunId>,
    JsonBody(req): JsonBody<AgentLogs>,
) -> ApiResult<Json<LogsAppended>> {
    let run = site_run(&state, &caller, id, "agent.logs").await?;
    if req.lines.len() > MAX_LOG_LINES {
        return Err(Failure::invalid(format!(
            "at most {MAX_LOG_LINES} lines per call"
        )));
    }
    if let Some(i) = req.lines.iter().position(|l| l.line.len() > MAX_LOG_LINE) {
        return Err(Failure::invalid(format!(
            "line {i} is longer than {MAX_LOG_LINE} bytes"
        )));
    }
    let now = Timestamp::now();
    let ended_long_ago =
        run.state.is_terminal() && run.updated_at.plus_secs(LOG_GRACE.as_secs() as i64) < now;
    if !(run.state.is_active() || run.state.is_terminal() && !ended_long_ago) {
        return Err(Failure::new(
            ErrorCode::InvalidStateTransition,
            format!("run {id} is {}: it takes no more log lines", run.state),
        ));
    }
    let lines = req
        .lines
        .into_iter()
        .map(|l| NewLogLine {
            stream: l.stream,
            at: l.at.unwrap_or(now),
            line: l.line,
        })
        .collect();
    let last_seq = state.store().append_run_logs(id, lines).await?;
    if run.state.is_active() {
        sweeper::touch(&state, id);
    }
    Ok(Json(LogsAppended { last_seq }))
}

// ---------------------------------------------------------------------------------------------
// Outputs.

/// `?name=&passed_criteria=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutputQuery {
    /// Name (letters, digits, `.`, `_`, `-`; at most 128; default: the kind's name).
    pub name: Option<String>,
    /// Whether the output passed the accepted criteria (must be `true` for a final report).
    pub passed_criteria: Option<bool>,
}

/// An output as stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutputStored {
    /// `<kind>:<name>`.
    pub id: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256.
    pub sha256: String,
}

fn check_output_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::InvalidName,
            "an output name has 1 to 128 letters, digits, '.', '_' or '-', and does not start with '.'",
        ))
    }
}

/// Reads a body of at most `max` bytes (413 beyond).
async fn read_capped(body: Body, max: usize) -> ApiResult<Vec<u8>> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Failure::invalid(format!("could not read the request body: {e}")))?;
        if buf.len() + chunk.len() > max {
            return Err(Failure::new(
                ErrorCode::PayloadTooLarge,
                format!("a final report may have at most {max} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Validates a final report against the criteria, off the async threads.
async fn validate_report(criteria_json: String, report: Vec<u8>) -> ApiResult<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let criteria = sealroom_criteria::Criteria::from_json(criteria_json.as_bytes())
            .map_err(|e| Failure::internal(format!("accepted criteria do not parse: {e}")))?;
        match criteria.validate_json(&report) {
            Ok(r) if r.is_valid() => Ok(report),
            Ok(r) => Err(Failure::new(
                ErrorCode::InvalidUpload,
                format!(
                    "the final report does not validate against the accepted criteria: {}",
                    r.response_json()
                ),
            )),
            Err(e) => Err(Failure::new(
                ErrorCode::InvalidUpload,
                format!("the final report cannot be validated: {e}"),
            )),
        }
    })
    .await?
}

/// Stores an output of a running run, streamed. A final report must be marked as having passed
/// the criteria, and is validated again here; one that fails is refused and nothing is stored.
#[utoipa::path(put, path = "/api/v1/agent/runs/{run_id}/outputs/{kind}", tag = tags::AGENT,
    params(("run_id" = String, Path, description = "the run"),
        ("kind" = String, Path, description = "final_report, trained_model, performance_report or algorithm_report"),
        OutputQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = OutputStored), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409, description = "the run is not running, or the output exists"),
        (status = 413), (status = 415),
        (status = 422, description = "a final report that did not pass the criteria")))]
async fn put_output(
    State(state): State<ControlState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    Q(q): Q<OutputQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<OutputStored>)> {
    let action = "agent.output";
    let (run_id, kind) = path_pair(path)?;
    let id: RunId = parse_id(&run_id)?;
    let run = site_run(&state, &caller, id, action).await?;
    let kind: OutputKind = kind
        .parse()
        .map_err(|e: sealroom_types::UnknownVariant| Failure::invalid(e.to_string()))?;
    let name = match q.name {
        Some(n) => n,
        None if kind == OutputKind::FinalReport => "final-report.json".to_string(),
        None => kind.as_str().replace('_', "-"),
    };
    check_output_name(&name)?;
    if !has_content_type(&headers, "application/octet-stream") {
        return Err(Failure::new(
            ErrorCode::UnsupportedMediaType,
            "send the output as `Content-Type: application/octet-stream`",
        ));
    }
    if run.state != RunState::Running {
        return Err(Failure::new(
            ErrorCode::InvalidStateTransition,
            format!(
                "run {id} is {}: outputs are accepted while it is running",
                run.state
            ),
        ));
    }
    let existing = state.store().run_outputs(id).await?;
    if existing.iter().any(|o| o.kind == kind && o.name == name) {
        return Err(Failure::new(
            ErrorCode::AlreadyExists,
            format!("run {id} already has the {kind} {name}"),
        ));
    }
    let key = BlobKey::parse(&format!("runs/{id}/outputs/{kind}/{name}"))
        .map_err(|e| Failure::new(ErrorCode::InvalidName, e.to_string()))?;
    let meta = if kind == OutputKind::FinalReport {
        if q.passed_criteria != Some(true) {
            return Err(Failure::new(
                ErrorCode::InvalidUpload,
                "a final report leaves the enclave only if it passed the criteria (passed_criteria=true)",
            ));
        }
        if existing.iter().any(|o| o.kind == OutputKind::FinalReport) {
            return Err(Failure::new(
                ErrorCode::AlreadyExists,
                format!("run {id} already has a final report"),
            ));
        }
        let rc = state.store().get_run_config(run.run_config_id).await?;
        let Some(cv) = rc.criteria_version_id else {
            return Err(Failure::new(
                ErrorCode::InvalidUpload,
                "the run configuration has no validation criteria, so no final report can leave the enclave",
            ));
        };
        let VersionDetail::ValidationCriteria { criteria_json, .. } =
            state.store().get_version(cv).await?.detail
        else {
            return Err(Failure::internal(format!(
                "version {cv} is not validation criteria"
            )));
        };
        let report = read_capped(body, MAX_FINAL_REPORT).await?;
        let report = validate_report(criteria_json, report).await?;
        state
            .blobs()
            .put(
                &key,
                &mut report.as_slice(),
                PutOptions {
                    overwrite: false,
                    expected_sha256: None,
                    max_size: Some(MAX_FINAL_REPORT as u64),
                },
            )
            .await?
    } else {
        let stream = body.into_data_stream().map_err(std::io::Error::other);
        let mut reader = tokio_util::io::StreamReader::new(stream);
        state
            .blobs()
            .put(
                &key,
                &mut reader,
                PutOptions {
                    overwrite: false,
                    expected_sha256: None,
                    max_size: Some(state.config().max_upload),
                },
            )
            .await?
    };
    let size = i64::try_from(meta.size).map_err(Failure::internal)?;
    let blob = BlobRef {
        key: key.as_str().to_string(),
        size,
        sha256: meta.sha256_hex(),
        file_name: name.clone(),
    };
    let recorded = state
        .store()
        .add_run_output(NewRunOutput {
            run_id: id,
            kind,
            name: name.clone(),
            blob: blob.clone(),
            passed_criteria: q.passed_criteria,
        })
        .await;
    let out = match recorded {
        Ok(o) => o,
        Err(e) => {
            // No orphan blob.
            if let Err(d) = state.blobs().delete(&key).await {
                tracing::warn!(key = %key, error = %d, "could not remove an unrecorded output");
            }
            return Err(e.into());
        }
    };
    state
        .audit_required(
            &caller,
            action,
            AuditOutcome::Success,
            Some(run.project_id),
            Some(obj_run(id)),
            serde_json::json!({
                "output": super::runs::output_id(&out),
                "size": size,
                "sha256": blob.sha256,
                "passed_criteria": q.passed_criteria,
            }),
        )
        .await?;
    sweeper::touch(&state, id);
    Ok((
        StatusCode::CREATED,
        Json(OutputStored {
            id: super::runs::output_id(&out),
            size,
            sha256: blob.sha256,
        }),
    ))
}
