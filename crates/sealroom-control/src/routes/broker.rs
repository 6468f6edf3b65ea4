//! The key broker (DESIGN.md §3 "Key release"): an attested enclave gets the project's CEKs,
//! sealed to its ephemeral X25519 key, and nothing else does.
//!
//! | method path | who |
//! |---|---|
//! | `PUT /api/v1/agent/attestation-key` | a site (its simulated attester's Ed25519 key) |
//! | `DELETE /api/v1/sites/{site_id}/attestation-key` | admin |
//! | `GET /api/v1/projects/{project_id}/attestation-policy` | members, admin |
//! | `PUT /api/v1/projects/{project_id}/attestation-policy` | the project's DS, admin |
//! | `POST /api/v1/broker/nonce` | the site that claimed the run |
//! | `POST /api/v1/broker/release` | the site that claimed the run, with evidence |
//!
//! The release protocol, modelled on the confidential-containers KBS: the agent makes an
//! X25519 key pair inside the enclave, asks for a single-use nonce, has the TEE sign report data
//! `key_release_binding(nonce, run id, enclave public key, workload digest)`
//! ([`sealroom_attest::attest_key_release`]) and posts the evidence. The broker checks, in this
//! order, refusing at the first failure (each refusal is audited as `key.release` / `denied`
//! with its reason): the run is claimed by this site, in `workload_launch`, initiated by the
//! project's DS; the nonce is live and is used up now; the evidence is of the project's
//! technology (simulated evidence is refused by any other) and verifies; its report data is the
//! binding; the workload digest is the run's algorithm version's; the project's attestation
//! policy accepts the measurement, TCB and debug state. Then each role's latest WCEK is unwrapped
//! by the key provider and its CEK sealed to the enclave key with HPKE, bound to
//! [`ReleaseInfo`]; the release is recorded with the run and audited. `docs/api/broker.md`
//! has the exact JSON.

mod policy;

pub use policy::{AttestationPolicy, MinSnpTcb, PcrValue};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use sealroom_envelope::recipient::{EnclavePublicKey, ReleaseInfo};
use sealroom_store::{NewKeyRelease, SiteKeyRegistration, StoreError};
use sealroom_types::{
    Actor, AuditOutcome, ErrorCode, Project, ProjectId, Role, Run, RunId, RunState, SiteId,
    Technology, Timestamp, UserId, VersionDetail,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tags;
use crate::extract::{parse_id, Caller, JsonBody, PathId, SiteCaller};
use crate::{provision, ApiResult, ControlState, Failure};

/// Largest body of `POST /api/v1/broker/release` (evidence included).
pub const MAX_RELEASE_BODY: usize = 64 * 1024;
/// Bytes of a key-release nonce.
pub const NONCE_LEN: usize = 32;
/// Longest workload digest accepted.
pub const MAX_WORKLOAD_DIGEST: usize = 256;

/// The audit action of every key-release decision.
pub const RELEASE_ACTION: &str = "key.release";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// This group's routes.
pub fn routes() -> OpenApiRouter<ControlState> {
    let release = OpenApiRouter::new()
        .routes(routes!(release))
        .layer(DefaultBodyLimit::max(MAX_RELEASE_BODY));
    OpenApiRouter::new()
        .routes(routes!(register_site_key))
        .routes(routes!(delete_site_key))
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(nonce))
        .merge(release)
}

// ---------------------------------------------------------------------------------------------
// Site attester keys.

/// A site's simulated-attester key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteKeyRequest {
    /// The Ed25519 public key (32 bytes), standard base64.
    pub public_key: String,
}

/// The key registered for the calling site.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SiteKeyResponse {
    /// The site.
    pub site_id: String,
    /// The registered Ed25519 public key, standard base64.
    pub public_key: String,
    /// When it was registered, RFC 3339.
    #[schema(value_type = String)]
    pub registered_at: Timestamp,
    /// False when this exact key was already registered.
    pub changed: bool,
}

/// Registers the calling site's **simulated** attester key (Ed25519). Evidence of `simulated`
/// projects must be signed by it. Once set, another key is refused (409) until an admin removes
/// it; the same key again is a no-op (200).
#[utoipa::path(put, path = "/api/v1/agent/attestation-key", tag = tags::BROKER,
    request_body = SiteKeyRequest,
    responses((status = 201, body = SiteKeyResponse, description = "registered"),
        (status = 200, body = SiteKeyResponse, description = "this key was already registered"),
        (status = 400), (status = 401), (status = 403, description = "not a site token"),
        (status = 409, description = "another key is registered; an admin must remove it first")))]
async fn register_site_key(
    State(state): State<ControlState>,
    caller: Caller,
    JsonBody(req): JsonBody<SiteKeyRequest>,
) -> ApiResult<(StatusCode, Json<SiteKeyResponse>)> {
    const ACTION: &str = "site.attestation_key.register";
    let site = match caller.site() {
        Ok(s) => s.site.clone(),
        Err(f) => {
            state.deny(&caller, ACTION, None, None, &f).await;
            return Err(f);
        }
    };
    let key: [u8; 32] = B64
        .decode(req.public_key.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| {
            Failure::invalid("public_key must be a 32-byte Ed25519 public key in standard base64")
        })?;
    let object = Some(format!("site:{}", site.id));
    let reg = match state
        .store()
        .register_site_attestation_key(site.id, &key)
        .await
    {
        Ok(r) => r,
        Err(e @ StoreError::AlreadyExists { .. }) => {
            let f = Failure::new(
                ErrorCode::AlreadyExists,
                "this site already has another attestation key; an admin must remove it \
                 (DELETE /api/v1/sites/{site_id}/attestation-key) before a new one is registered",
            );
            state
                .audit(
                    &caller,
                    ACTION,
                    AuditOutcome::Denied,
                    None,
                    object,
                    serde_json::json!({ "reason": "key_already_registered", "message": e.to_string(),
                        "public_key": B64.encode(key) }),
                )
                .await;
            return Err(f);
        }
        Err(e) => return Err(e.into()),
    };
    let changed = matches!(reg, SiteKeyRegistration::Registered(_));
    if changed {
        state
            .audit_required(
                &caller,
                ACTION,
                AuditOutcome::Success,
                None,
                object,
                serde_json::json!({ "public_key": B64.encode(key) }),
            )
            .await?;
    }
    let k = reg.key();
    Ok((
        if changed {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(SiteKeyResponse {
            site_id: site.id.to_string(),
            public_key: B64.encode(k.public_key),
            registered_at: k.registered_at,
            changed,
        }),
    ))
}

/// Removes a site's simulated-attester key (admin), so that its agent may register a new one.
#[utoipa::path(delete, path = "/api/v1/sites/{site_id}/attestation-key", tag = tags::BROKER,
    params(("site_id" = String, Path, description = "the site")),
    responses((status = 204), (status = 401), (status = 403, description = "not an admin"),
        (status = 404, description = "no such site, or it has no key")))]
async fn delete_site_key(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(site_id): PathId<SiteId>,
) -> ApiResult<StatusCode> {
    const ACTION: &str = "site.attestation_key.delete";
    let object = Some(format!("site:{site_id}"));
    if let Err(f) = caller.admin() {
        state.deny(&caller, ACTION, None, object, &f).await;
        return Err(f);
    }
    state.store().get_site(site_id).await?;
    let key = state.store().delete_site_attestation_key(site_id).await?;
    state
        .audit_required(
            &caller,
            ACTION,
            AuditOutcome::Success,
            None,
            object,
            serde_json::json!({ "public_key": B64.encode(key.public_key) }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Attestation policy.

/// A project's attestation policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyResponse {
    /// The project.
    pub project_id: String,
    /// Its technology (`simulated`, `sev-snp`, `tdx`, `azure-cvm`).
    pub technology: String,
    /// The policy in force.
    pub policy: AttestationPolicy,
    /// True when no policy was set: the technology's default is in force.
    pub is_default: bool,
    /// Who set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub updated_by: Option<UserId>,
    /// When, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub updated_at: Option<Timestamp>,
}

/// The project's policy in force (its own, or its technology's default).
async fn policy_in_force(
    state: &ControlState,
    project: &Project,
) -> ApiResult<(
    AttestationPolicy,
    Option<sealroom_store::StoredAttestationPolicy>,
)> {
    match state.store().attestation_policy(project.id).await? {
        None => Ok((AttestationPolicy::default_for(project.technology), None)),
        Some(stored) => {
            let policy: AttestationPolicy =
                serde_json::from_value(stored.policy.clone()).map_err(|e| {
                    Failure::internal(format!(
                        "stored attestation policy of project {} does not parse: {e}",
                        project.id
                    ))
                })?;
            Ok((policy, Some(stored)))
        }
    }
}

fn policy_response(
    project: &Project,
    policy: AttestationPolicy,
    stored: Option<&sealroom_store::StoredAttestationPolicy>,
) -> PolicyResponse {
    PolicyResponse {
        project_id: project.id.to_string(),
        technology: project.technology.as_str().to_string(),
        policy,
        is_default: stored.is_none(),
        updated_by: stored.map(|s| s.updated_by),
        updated_at: stored.map(|s| s.updated_at),
    }
}

/// The project's attestation policy: which enclaves may receive its keys.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/attestation-policy", tag = tags::BROKER,
    params(("project_id" = String, Path, description = "the project")),
    responses((status = 200, body = PolicyResponse), (status = 401), (status = 403),
        (status = 404, description = "no such project, or not a member")))]
async fn get_policy(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
) -> ApiResult<Json<PolicyResponse>> {
    let access = state
        .project_access(&caller, project_id, "project.attestation_policy.read")
        .await?;
    let (policy, stored) = policy_in_force(&state, &access.project).await?;
    Ok(Json(policy_response(
        &access.project,
        policy,
        stored.as_ref(),
    )))
}

/// Sets the project's attestation policy. The data steward decides which enclaves get its
/// data's key (an admin may too). Fields that do not apply to the project's technology are
/// refused.
#[utoipa::path(put, path = "/api/v1/projects/{project_id}/attestation-policy", tag = tags::BROKER,
    params(("project_id" = String, Path, description = "the project")),
    request_body = AttestationPolicy,
    responses((status = 200, body = PolicyResponse), (status = 400), (status = 401),
        (status = 403, description = "not the project's DS nor an admin"),
        (status = 404, description = "no such project, or not a member"),
        (status = 409, description = "the project is deactivated")))]
async fn put_policy(
    State(state): State<ControlState>,
    caller: Caller,
    PathId(project_id): PathId<ProjectId>,
    JsonBody(req): JsonBody<AttestationPolicy>,
) -> ApiResult<Json<PolicyResponse>> {
    const ACTION: &str = "project.attestation_policy.set";
    let access = state.project_access(&caller, project_id, ACTION).await?;
    if !(access.is(Role::DataSteward) || access.admin) {
        let f = Failure::forbidden(
            "only the project's data steward (or an admin) sets its attestation policy",
        );
        state
            .deny(&caller, ACTION, Some(project_id), None, &f)
            .await;
        return Err(f);
    }
    let user = caller.user()?.user.id;
    let project = access.project;
    if !project.state.allows_writes() {
        return Err(Failure::new(
            ErrorCode::ProjectNotActive,
            format!("the project is {}: it is read-only", project.state),
        ));
    }
    let policy = req
        .validated(project.technology)
        .map_err(|m| Failure::invalid(format!("attestation policy: {m}")))?;
    let value = serde_json::to_value(&policy).map_err(Failure::internal)?;
    let stored = state
        .store()
        .set_attestation_policy(project_id, &value, user)
        .await?;
    state
        .audit_required(
            &caller,
            ACTION,
            AuditOutcome::Success,
            Some(project_id),
            Some(format!("project:{project_id}")),
            serde_json::json!({ "policy": value }),
        )
        .await?;
    Ok(Json(policy_response(&project, policy, Some(&stored))))
}

// ---------------------------------------------------------------------------------------------
// Refusals.

/// A refused broker request: a stable reason for the audit log and the failure sent back.
struct Refusal {
    reason: &'static str,
    failure: Failure,
}

impl Refusal {
    fn new(reason: &'static str, code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            failure: Failure::new(code, message),
        }
    }
}

/// Audits a refusal (`denied`, with its reason) and returns the failure to send.
async fn refuse(
    state: &ControlState,
    caller: &Caller,
    action: &str,
    project: Option<ProjectId>,
    run: Option<RunId>,
    r: Refusal,
) -> Failure {
    state
        .audit(
            caller,
            action,
            AuditOutcome::Denied,
            project,
            run.map(|id| format!("run:{id}")),
            serde_json::json!({
                "reason": r.reason,
                "code": r.failure.code(),
                "message": r.failure.error.message,
            }),
        )
        .await;
    r.failure
}

/// The run, if this site claimed it and it is in `workload_launch`, with its project.
/// `Ok(Err(_))`: refused; `Err(_)`: the store failed.
async fn claimed_run(
    state: &ControlState,
    site: &SiteCaller,
    run_id: RunId,
) -> ApiResult<Result<(Run, Project), Refusal>> {
    let run = match state.store().get_run(run_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => {
            return Ok(Err(Refusal::new(
                "run_not_found",
                ErrorCode::NotFound,
                format!("run {run_id} not found"),
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if run.site_id != Some(site.site.id) {
        return Ok(Err(Refusal::new(
            "not_claimed_by_site",
            ErrorCode::Forbidden,
            format!("run {run_id} is not claimed by this site"),
        )));
    }
    let project = state.store().get_project(run.project_id).await?;
    if !project.state.allows_writes() {
        return Ok(Err(Refusal::new(
            "project_not_active",
            ErrorCode::ProjectNotActive,
            format!("the project is {}: no keys are released", project.state),
        )));
    }
    if run.state != RunState::WorkloadLaunch {
        return Ok(Err(Refusal::new(
            "not_in_workload_launch",
            ErrorCode::InvalidStateTransition,
            format!(
                "run {run_id} is {}; keys are released only in workload_launch",
                run.state
            ),
        )));
    }
    Ok(Ok((run, project)))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

// ---------------------------------------------------------------------------------------------
// Nonce.

/// A nonce request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NonceRequest {
    /// The run (claimed by this site, in `workload_launch`).
    pub run_id: String,
}

/// A single-use key-release nonce.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NonceResponse {
    /// The run.
    pub run_id: String,
    /// 32 random bytes, standard base64. Bind the decoded bytes into the evidence.
    pub nonce: String,
    /// When it stops being accepted, RFC 3339.
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
}

/// Issues a single-use nonce for a key release (the server keeps only its SHA-256).
#[utoipa::path(post, path = "/api/v1/broker/nonce", tag = tags::BROKER,
    request_body = NonceRequest,
    responses((status = 200, body = NonceResponse), (status = 400), (status = 401),
        (status = 403, description = "not a site token, or the run is not claimed by this site"),
        (status = 404, description = "no such run"),
        (status = 409, description = "the run is not in workload_launch")))]
async fn nonce(
    State(state): State<ControlState>,
    caller: Caller,
    JsonBody(req): JsonBody<NonceRequest>,
) -> ApiResult<Json<NonceResponse>> {
    const ACTION: &str = "key.nonce";
    let site = match caller.site() {
        Ok(s) => s.clone(),
        Err(f) => {
            state.deny(&caller, ACTION, None, None, &f).await;
            return Err(f);
        }
    };
    let run_id: RunId = parse_id(&req.run_id)?;
    let (run, project) = match claimed_run(&state, &site, run_id).await? {
        Ok(x) => x,
        Err(r) => return Err(refuse(&state, &caller, ACTION, None, Some(run_id), r).await),
    };
    let mut nonce = zeroize::Zeroizing::new([0u8; NONCE_LEN]);
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut nonce[..]);
    let ttl = i64::try_from(state.config().nonce_ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let now = Timestamp::now();
    let expires_at = Timestamp::from_millis(now.as_millis().saturating_add(ttl));
    state
        .store()
        .issue_release_nonce(run.id, &sha256_hex(&nonce[..]), expires_at)
        .await?;
    state
        .audit_required(
            &caller,
            ACTION,
            AuditOutcome::Success,
            Some(project.id),
            Some(format!("run:{}", run.id)),
            serde_json::json!({ "expires_at": expires_at }),
        )
        .await?;
    Ok(Json(NonceResponse {
        run_id: run.id.to_string(),
        nonce: B64.encode(&nonce[..]),
        expires_at,
    }))
}

// ---------------------------------------------------------------------------------------------
// Release.

/// TEE evidence as the verifier of its technology takes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    /// `simulated`, `sev-snp`, `tdx` or `azure-cvm`: must be the project's technology.
    pub technology: String,
    /// The evidence bytes, standard base64: simulated, the 192-byte signed report; `sev-snp`,
    /// `{"report","vcek"}` JSON; `tdx`, quote + collateral JSON; `azure-cvm`, the HCL report +
    /// vTPM quote JSON (see `docs/attestation.md`).
    pub data: String,
}

/// A key-release request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The run.
    pub run_id: String,
    /// The nonce from `POST /api/v1/broker/nonce`, as received (base64).
    pub nonce: String,
    /// The evidence.
    pub evidence: EvidenceBody,
    /// The enclave's ephemeral X25519 public key (32 bytes), standard base64.
    pub enclave_public_key: String,
    /// The workload digest the agent built and bound into the evidence.
    pub workload_digest: String,
}

/// One released CEK.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleasedKey {
    /// Whose CEK: `algorithm_owner` or `data_steward`.
    #[schema(value_type = String)]
    pub role: Role,
    /// The CEK's key id (hex), as sealed-file headers name it.
    pub cek_key_id: String,
    /// SHA-256 (hex) of the WCEK version that was unwrapped.
    pub wcek_fingerprint: String,
    /// That WCEK version's number.
    pub wcek_version: i64,
    /// The sealed CEK, standard base64 of 80 bytes: HPKE `enc` (32) then the AES-256-GCM
    /// ciphertext of the CEK with its tag (48).
    pub sealed_cek: String,
    /// The HPKE `info` it is bound to, standard base64: `ReleaseInfo(project_id, run_id,
    /// "ao"|"ds", cek_key_id)`. Recompute it and open with the expected value.
    pub info: String,
}

/// What the broker released.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleaseResponse {
    /// The run.
    pub run_id: String,
    /// The project.
    pub project_id: String,
    /// The technology whose verifier accepted the evidence.
    pub technology: String,
    /// The measurement the verifier read (hex).
    pub measurement: String,
    /// The TCB verdict recorded.
    pub tcb_status: String,
    /// One entry per role whose WCEK exists.
    pub releases: Vec<ReleasedKey>,
}

/// The parsed release request.
struct Parsed {
    run_id: RunId,
    nonce: Vec<u8>,
    technology: Technology,
    evidence: Vec<u8>,
    enclave: EnclavePublicKey,
    workload_digest: String,
}

fn parse_release(req: &ReleaseRequest) -> Result<Parsed, Refusal> {
    let bad = |m: String| Refusal::new("malformed_request", ErrorCode::InvalidRequest, m);
    let run_id: RunId = parse_id(&req.run_id).map_err(|f| Refusal {
        reason: "malformed_request",
        failure: f,
    })?;
    let nonce = B64
        .decode(req.nonce.trim())
        .ok()
        .filter(|n| n.len() == NONCE_LEN)
        .ok_or_else(|| {
            bad(format!(
                "nonce must be {NONCE_LEN} bytes in standard base64"
            ))
        })?;
    let technology: Technology = req.evidence.technology.parse().map_err(|_| {
        bad(format!(
            "evidence.technology {:?} is not one of simulated, sev-snp, tdx, azure-cvm",
            req.evidence.technology.chars().take(32).collect::<String>()
        ))
    })?;
    let evidence = B64
        .decode(req.evidence.data.trim())
        .map_err(|_| bad("evidence.data is not standard base64".into()))?;
    if evidence.is_empty() || evidence.len() > sealroom_attest::MAX_EVIDENCE {
        return Err(bad(format!(
            "evidence.data must hold 1 to {} bytes",
            sealroom_attest::MAX_EVIDENCE
        )));
    }
    let enclave = EnclavePublicKey::from_base64(&req.enclave_public_key)
        .map_err(|e| bad(format!("enclave_public_key: {e}")))?;
    let workload_digest = req.workload_digest.clone();
    if workload_digest.is_empty()
        || workload_digest.len() > MAX_WORKLOAD_DIGEST
        || workload_digest.chars().any(char::is_control)
    {
        return Err(bad(format!(
            "workload_digest must be 1 to {MAX_WORKLOAD_DIGEST} printable bytes"
        )));
    }
    Ok(Parsed {
        run_id,
        nonce,
        technology,
        evidence,
        enclave,
        workload_digest,
    })
}

/// Whether the run was initiated by a user of one of the project's DS organizations.
async fn initiated_by_ds(state: &ControlState, run: &Run) -> ApiResult<bool> {
    let history = state.store().run_history(run.id).await?;
    let Some(init) = history.iter().rev().find(|h| h.to == RunState::Initiated) else {
        return Ok(false);
    };
    let Actor::User(user_id) = init.actor else {
        return Ok(false);
    };
    if run.initiated_by != Some(user_id) {
        return Ok(false);
    }
    let user = state.store().get_user(user_id).await?;
    Ok(state
        .store()
        .member_role(run.project_id, user.org_id)
        .await?
        == Some(Role::DataSteward))
}

/// Releases the project's CEKs to an attested enclave: the evidence must bind this request's
/// nonce, run, enclave key and workload digest, and satisfy the project's attestation policy.
/// Every refusal is audited with its reason.
#[utoipa::path(post, path = "/api/v1/broker/release", tag = tags::BROKER,
    request_body = ReleaseRequest,
    responses((status = 200, body = ReleaseResponse),
        (status = 400, description = "malformed request or evidence"),
        (status = 401),
        (status = 403, description = "not this site's run; evidence, binding, workload digest or policy refused"),
        (status = 404, description = "no such run"),
        (status = 409, description = "the run is not in workload_launch, was not initiated by the DS, or has no WCEK"),
        (status = 410, description = "the nonce is unknown, used or expired"),
        (status = 413, description = "the body is larger than 64 KiB")))]
async fn release(
    State(state): State<ControlState>,
    caller: Caller,
    body: Result<JsonBody<ReleaseRequest>, Failure>,
) -> ApiResult<Json<ReleaseResponse>> {
    let site = match caller.site() {
        Ok(s) => s.clone(),
        Err(f) => {
            state.deny(&caller, RELEASE_ACTION, None, None, &f).await;
            return Err(f);
        }
    };
    let req = match body {
        Ok(JsonBody(r)) => r,
        Err(f) => {
            let r = Refusal {
                reason: "malformed_request",
                failure: f,
            };
            return Err(refuse(&state, &caller, RELEASE_ACTION, None, None, r).await);
        }
    };
    let mut project_id = None;
    let mut run_id = parse_id::<RunId>(&req.run_id).ok();
    match release_checked(&state, &site, &req, &mut project_id, &mut run_id).await {
        Ok(Ok(resp)) => Ok(Json(resp)),
        Ok(Err(r)) => Err(refuse(&state, &caller, RELEASE_ACTION, project_id, run_id, r).await),
        Err(f) => {
            // Checks passed but releasing failed (key provider, store): recorded as a failure.
            state
                .audit(
                    &caller,
                    RELEASE_ACTION,
                    AuditOutcome::Failure,
                    project_id,
                    run_id.map(|id| format!("run:{id}")),
                    serde_json::json!({ "code": f.code(), "message": f.error.message }),
                )
                .await;
            Err(f)
        }
    }
}

/// The checks, then the release. `Ok(Err(_))`: refused by a check; `Err(_)`: failed after the
/// checks passed.
async fn release_checked(
    state: &ControlState,
    site: &SiteCaller,
    req: &ReleaseRequest,
    project_out: &mut Option<ProjectId>,
    run_out: &mut Option<RunId>,
) -> ApiResult<Result<ReleaseResponse, Refusal>> {
    let p = match parse_release(req) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    *run_out = Some(p.run_id);

    // 1. The run: this site's, in workload_launch, initiated by the DS.
    let (run, project) = match claimed_run(state, site, p.run_id).await? {
        Ok(x) => x,
        Err(r) => return Ok(Err(r)),
    };
    *project_out = Some(project.id);
    if !initiated_by_ds(state, &run).await? {
        return Ok(Err(Refusal::new(
            "not_initiated_by_ds",
            ErrorCode::PreconditionFailed,
            format!(
                "run {} was not initiated by a data steward of the project",
                run.id
            ),
        )));
    }

    // 2. The nonce, used up now whatever follows.
    if !state
        .store()
        .consume_release_nonce(run.id, &sha256_hex(&p.nonce), Timestamp::now())
        .await?
    {
        return Ok(Err(Refusal::new(
            "nonce_rejected",
            ErrorCode::Expired,
            "the nonce is unknown, was already used, or has expired; ask for a new one",
        )));
    }

    // 3. The evidence's technology.
    let project_tech = policy::attest_technology(project.technology);
    let looks_simulated = p.evidence.len() == sealroom_attest::sim::EVIDENCE_LEN
        && p.evidence.starts_with(sealroom_attest::sim::MAGIC);
    if (p.technology == Technology::Simulated || looks_simulated)
        && project.technology != Technology::Simulated
    {
        let e = sealroom_attest::Error::SimulatedRefused {
            project: project_tech,
        };
        return Ok(Err(Refusal::new(
            "simulated_evidence_refused",
            ErrorCode::Forbidden,
            e.to_string(),
        )));
    }
    if p.technology != project.technology {
        return Ok(Err(Refusal::new(
            "technology_mismatch",
            ErrorCode::Forbidden,
            format!(
                "evidence is {}, the project requires {}",
                p.technology, project.technology
            ),
        )));
    }

    // 4. Verification (signatures, chains) and 5. the report-data binding.
    let (policy, _) = policy_in_force(state, &project).await?;
    let site_key = if project.technology == Technology::Simulated {
        state
            .store()
            .site_attestation_key(site.site.id)
            .await?
            .map(|k| k.public_key)
    } else {
        None
    };
    let verifier = match policy.verifier(project.technology, site_key.as_ref()) {
        Ok(v) => v,
        Err(m) if site_key.is_none() && project.technology == Technology::Simulated => {
            return Ok(Err(Refusal::new(
                "no_site_attestation_key",
                ErrorCode::Forbidden,
                m,
            )))
        }
        Err(m) => return Err(Failure::internal(format!("building the verifier: {m}"))),
    };
    let run_id_text = run.id.to_string();
    let binding = sealroom_attest::key_release_binding(
        &p.nonce,
        &run_id_text,
        p.enclave.as_bytes(),
        p.workload_digest.as_bytes(),
    )
    .map_err(|e| Failure::invalid(e.to_string()))?;
    let evidence = p.evidence.clone();
    let verified = tokio::task::spawn_blocking(move || {
        verifier.verify(
            &evidence,
            &binding,
            sealroom_attest::VerificationTime::now(),
        )
    })
    .await?;
    let claims = match verified {
        Ok(c) => c,
        Err(e) => return Ok(Err(evidence_refusal(e))),
    };
    if let Err(e) = sealroom_attest::check_technology(project_tech, &claims) {
        return Ok(Err(Refusal::new(
            "technology_mismatch",
            ErrorCode::Forbidden,
            e.to_string(),
        )));
    }

    // 6. The workload digest of the run's algorithm version.
    let config = state.store().get_run_config(run.run_config_id).await?;
    let version = state
        .store()
        .get_version(config.algorithm_version_id)
        .await?;
    let expected_digest = match &version.detail {
        VersionDetail::Algorithm {
            workload_digest: Some(d),
            ..
        } => d.clone(),
        _ => {
            return Ok(Err(Refusal::new(
                "workload_digest_unknown",
                ErrorCode::PreconditionFailed,
                format!(
                    "algorithm version {} has no workload digest yet",
                    version.id
                ),
            )))
        }
    };
    if expected_digest != p.workload_digest {
        return Ok(Err(Refusal::new(
            "workload_digest_mismatch",
            ErrorCode::Forbidden,
            format!(
                "the workload digest {:?} is not the approved algorithm version's ({expected_digest})",
                p.workload_digest
            ),
        )));
    }

    // 7. The project's policy.
    let tcb_status = match policy.check_claims(project.technology, &claims) {
        Ok(v) => v,
        Err(r) => {
            let reason = match r.rule {
                "measurement" => "policy_measurement",
                "debug" => "policy_debug",
                _ => "policy_tcb",
            };
            return Ok(Err(Refusal::new(reason, ErrorCode::Forbidden, r.message)));
        }
    };

    // Release each role's latest CEK.
    let mut releases = Vec::new();
    for role in Role::ALL {
        let Some((wcek, bytes)) = state.store().latest_wcek(project.id, *role).await? else {
            continue;
        };
        let record = state.store().project_key(project.id, *role).await?;
        let label = provision::kek_label(project.id, *role)?;
        let sealed = provision::sealed_private(&record);
        let provider = state.keys();
        let key_id = match &wcek.cek_key_id {
            Some(k) => k.clone(),
            None => {
                let (p2, s2, l2, b2) = (
                    provider.clone(),
                    sealed.clone(),
                    label.clone(),
                    bytes.clone(),
                );
                tokio::task::spawn_blocking(move || p2.check_wcek(&s2, &l2, &b2))
                    .await??
                    .cek_key_id
                    .to_string()
            }
        };
        let info = ReleaseInfo::new(&project.id.to_string(), &run_id_text, role.short(), &key_id)
            .to_bytes();
        let enclave = p.enclave;
        let info2 = info.clone();
        let sealed_cek = tokio::task::spawn_blocking(move || {
            provider.release(&sealed, &label, &bytes, &enclave, &info2)
        })
        .await??;
        let mut compact = sealed_cek.enc.clone();
        compact.extend_from_slice(&sealed_cek.ciphertext);
        releases.push(ReleasedKey {
            role: *role,
            cek_key_id: key_id,
            wcek_fingerprint: wcek.fingerprint.clone(),
            wcek_version: wcek.version,
            sealed_cek: B64.encode(compact),
            info: B64.encode(&info),
        });
    }
    if releases.is_empty() {
        return Ok(Err(Refusal::new(
            "no_wcek",
            ErrorCode::PreconditionFailed,
            "neither party has uploaded a WCEK to this project: there is no key to release",
        )));
    }

    let measurement = claims.measurement.to_hex();
    let evidence_sha256 = sha256_hex(&p.evidence);
    state
        .store()
        .record_key_release(NewKeyRelease {
            run_id: run.id,
            technology: project.technology,
            evidence_sha256: evidence_sha256.clone(),
            evidence_blob_key: None,
            measurement: measurement.clone(),
            tcb_status: tcb_status.clone(),
            workload_digest: p.workload_digest.clone(),
            roles: releases.iter().map(|r| r.role).collect(),
            wcek_fingerprints: releases
                .iter()
                .map(|r| r.wcek_fingerprint.clone())
                .collect(),
        })
        .await?;
    state
        .audit_required(
            &Caller::Site(site.clone()),
            RELEASE_ACTION,
            AuditOutcome::Success,
            Some(project.id),
            Some(format!("run:{}", run.id)),
            serde_json::json!({
                "technology": project.technology,
                "simulated": claims.simulated,
                "measurement": measurement,
                "tcb_status": tcb_status,
                "workload_digest": p.workload_digest,
                "evidence_sha256": evidence_sha256,
                "enclave_public_key": p.enclave.to_base64(),
                "releases": releases.iter().map(|r| serde_json::json!({
                    "role": r.role,
                    "cek_key_id": r.cek_key_id,
                    "wcek_fingerprint": r.wcek_fingerprint,
                    "wcek_version": r.wcek_version,
                })).collect::<Vec<_>>(),
            }),
        )
        .await?;
    Ok(Ok(ReleaseResponse {
        run_id: run_id_text,
        project_id: project.id.to_string(),
        technology: project.technology.as_str().to_string(),
        measurement,
        tcb_status,
        releases,
    }))
}

/// Why the verifier refused the evidence, as a refusal.
fn evidence_refusal(e: sealroom_attest::Error) -> Refusal {
    use sealroom_attest::Error as E;
    let message = e.to_string();
    match e {
        E::ReportDataMismatch { .. } => Refusal::new(
            "report_data_mismatch",
            ErrorCode::Forbidden,
            format!(
                "the evidence verifies but its report data is not the binding of this nonce, \
                 run, enclave key and workload digest: {message}"
            ),
        ),
        E::SimulatedRefused { .. } => {
            Refusal::new("simulated_evidence_refused", ErrorCode::Forbidden, message)
        }
        E::Mismatch {
            what: "PCR value", ..
        } => Refusal::new("policy_pcr", ErrorCode::Forbidden, message),
        E::TooLarge { .. }
        | E::Truncated { .. }
        | E::Malformed { .. }
        | E::UnsupportedVersion { .. } => Refusal::new(
            "evidence_malformed",
            ErrorCode::InvalidRequest,
            format!("the evidence does not parse: {message}"),
        ),
        _ => Refusal::new(
            "evidence_refused",
            ErrorCode::Forbidden,
            format!("the evidence does not verify: {message}"),
        ),
    }
}
