//! The records of the domain (DESIGN.md §2) as the store returns them and the API shows them.
//! Secrets (password hashes, token hashes, key blobs) are not here: they stay in the store crate.

use crate::{
    wire_enum, AlgorithmType, ArtifactId, ArtifactKind, ChatMessageId, ComputeSize, Name,
    NotificationId, OrgId, ProjectId, ProjectState, Role, RunConfigId, RunId, RunState,
    RuntimeParams, SiteId, Technology, Timestamp, UploadStepState, UrlKind, UserId, VersionId,
    VersionTag, WcekId,
};
use serde::{Deserialize, Serialize};

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Its ID.
    pub id: OrgId,
    /// Its unique name.
    pub name: Name,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A user (the password hash is kept by the store only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its ID.
    pub id: UserId,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// Unique login name (lowercase).
    pub username: String,
    /// Name shown to people.
    pub display_name: String,
    /// Platform administrator.
    pub is_admin: bool,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Its ID.
    pub id: ProjectId,
    /// Unique name.
    pub name: Name,
    /// Free text.
    pub description: String,
    /// active / paused / deactivated.
    pub state: ProjectState,
    /// Fixed at creation.
    pub technology: Technology,
    /// Whether the DS lets the AO see what the algorithm itself prints.
    pub algorithm_logs_to_ao: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// Last change of its own fields.
    pub updated_at: Timestamp,
}

/// A member organization of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectMember {
    /// The project.
    pub project_id: ProjectId,
    /// The organization.
    pub org_id: OrgId,
    /// Its role in the project.
    pub role: Role,
}

/// The public side of a project's per-role key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectKeyInfo {
    /// The project.
    pub project_id: ProjectId,
    /// Whose KEK.
    pub role: Role,
    /// `<project-name>-<random>-ao.der` / `-ds.der`.
    pub file_name: String,
    /// Hex SHA-256 of the SPKI DER.
    pub fingerprint: String,
    /// Which key provider holds the private half (e.g. `file`, `pkcs11`).
    pub provider: String,
    /// When it was made.
    pub created_at: Timestamp,
}

/// One uploaded WCEK version (only the latest one's blob is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WcekVersion {
    /// Its ID.
    pub id: WcekId,
    /// The project.
    pub project_id: ProjectId,
    /// Whose CEK it wraps.
    pub role: Role,
    /// 1, 2, ... per project and role.
    pub version: i64,
    /// Hex SHA-256 of the WCEK bytes.
    pub fingerprint: String,
    /// Hex SHA-256 key id of the wrapped CEK, as the sealed-file header names it, when known.
    pub cek_key_id: Option<String>,
    /// Who uploaded it.
    pub uploaded_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// Whether this is the latest (the one whose bytes are kept).
    pub is_latest: bool,
}

/// An artifact: a named, versioned thing in a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Its ID.
    pub id: ArtifactId,
    /// The project.
    pub project_id: ProjectId,
    /// What it is.
    pub kind: ArtifactKind,
    /// The organization that owns it (the AO, or one of the DSs).
    pub owner_org_id: OrgId,
    /// Name, unique per project and kind.
    pub name: Name,
    /// Free text.
    pub description: String,
    /// For algorithms: training or validation.
    pub algorithm_type: Option<AlgorithmType>,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// The highest system version so far (0 before the first).
    pub latest_version: i64,
}

/// A stored file: its key in the blob store, size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// Key in the blob store.
    pub key: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The file name given at upload.
    pub file_name: String,
}

/// A dataset version's URL and what was read from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetLocation {
    /// The signed URL of the encrypted dataset.
    pub url: String,
    /// The kind of signed URL.
    pub url_kind: UrlKind,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// The DS's statement that a dataset holds no unencrypted protected data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certification {
    /// Who certified.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// A DS organization's acceptance of a validation-criteria version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriteriaAcceptance {
    /// The accepting DS organization.
    pub org_id: OrgId,
    /// The user who accepted.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// The per-kind part of an artifact version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VersionDetail {
    /// A data specification document.
    DataSpecification,
    /// An attestation report, optionally against a data-specification version.
    AttestationReport {
        /// The data-specification version it attests conformance to.
        data_specification_version: Option<VersionId>,
    },
    /// An algorithm package.
    Algorithm {
        /// Training or validation.
        algorithm_type: AlgorithmType,
        /// The upload checks (manual §14.5.5.1).
        upload_steps: Vec<UploadStepState>,
        /// Digest of the workload the agent builds from it, once known.
        workload_digest: Option<String>,
        /// Fingerprint of the AO WCEK version its files are sealed under.
        wcek_fingerprint: Option<String>,
    },
    /// Validation criteria (the JSON is kept inline).
    ValidationCriteria {
        /// The criteria document (JSON text, syntax-checked on upload).
        criteria_json: String,
        /// Acceptances by DS organizations.
        acceptances: Vec<CriteriaAcceptance>,
    },
    /// A dataset behind a signed URL.
    Dataset {
        /// Where it is and until when.
        location: DatasetLocation,
        /// The DS's certification, once given.
        certification: Option<Certification>,
        /// Linked data-specification version.
        data_specification_version: Option<VersionId>,
        /// Linked attestation-report version.
        attestation_report_version: Option<VersionId>,
        /// Fingerprint of the DS WCEK version it is sealed under.
        wcek_fingerprint: Option<String>,
    },
}

impl VersionDetail {
    /// The artifact kind this detail belongs to.
    pub fn kind(&self) -> ArtifactKind {
        match self {
            VersionDetail::DataSpecification => ArtifactKind::DataSpecification,
            VersionDetail::AttestationReport { .. } => ArtifactKind::AttestationReport,
            VersionDetail::Algorithm { .. } => ArtifactKind::Algorithm,
            VersionDetail::ValidationCriteria { .. } => ArtifactKind::ValidationCriteria,
            VersionDetail::Dataset { .. } => ArtifactKind::Dataset,
        }
    }
}

/// One version of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactVersion {
    /// Its ID.
    pub id: VersionId,
    /// The artifact.
    pub artifact_id: ArtifactId,
    /// The project.
    pub project_id: ProjectId,
    /// System version: 1, 2, ... per artifact.
    pub version: i64,
    /// The uploader's tag.
    pub tag: VersionTag,
    /// The uploader's description.
    pub description: String,
    /// Who uploaded it.
    pub uploaded_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// The stored file, for kinds that have one.
    pub blob: Option<BlobRef>,
    /// The per-kind part.
    pub detail: VersionDetail,
}

/// A run configuration: one algorithm version × one dataset version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Its ID.
    pub id: RunConfigId,
    /// The project.
    pub project_id: ProjectId,
    /// Name shown to people.
    pub name: Name,
    /// Free text.
    pub description: String,
    /// The algorithm version.
    pub algorithm_version_id: VersionId,
    /// The dataset version.
    pub dataset_version_id: VersionId,
    /// For validation runs: the accepted criteria version the report is checked against.
    pub criteria_version_id: Option<VersionId>,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A user.
    User(UserId),
    /// A site's agent.
    Site(SiteId),
    /// The platform itself (expiry sweeps, startup).
    System,
    /// Someone not authenticated (a failed login).
    Anonymous,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::User(u) => write!(f, "user:{u}"),
            Actor::Site(s) => write!(f, "site:{s}"),
            Actor::System => f.write_str("system"),
            Actor::Anonymous => f.write_str("anonymous"),
        }
    }
}

impl std::str::FromStr for Actor {
    type Err = crate::IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("user", id)) => Ok(Actor::User(id.parse()?)),
            Some(("site", id)) => Ok(Actor::Site(id.parse()?)),
            _ if s == "system" => Ok(Actor::System),
            _ if s == "anonymous" => Ok(Actor::Anonymous),
            _ => Err(crate::IdError {
                what: "actor",
                value: s.chars().take(64).collect(),
            }),
        }
    }
}

/// A run (a run request is a run in state `requested`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Its ID.
    pub id: RunId,
    /// The project.
    pub project_id: ProjectId,
    /// The configuration it runs.
    pub run_config_id: RunConfigId,
    /// Current state.
    pub state: RunState,
    /// Runtime parameters (environment variables in the enclave).
    pub params: RuntimeParams,
    /// vCPU / RAM from the technology's choices.
    pub compute: ComputeSize,
    /// Who requested it (AO user).
    pub requested_by: UserId,
    /// When.
    pub requested_at: Timestamp,
    /// Who initiated it (DS user), once initiated.
    pub initiated_by: Option<UserId>,
    /// The DS's reason, when rejected or cancelled.
    pub reason: Option<String>,
    /// The site whose agent claimed it.
    pub site_id: Option<SiteId>,
    /// Last state change.
    pub updated_at: Timestamp,
}

/// One state change of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStateChange {
    /// The run.
    pub run_id: RunId,
    /// 1, 2, ... per run.
    pub seq: i64,
    /// Previous state (none for the request itself).
    pub from: Option<RunState>,
    /// New state.
    pub to: RunState,
    /// Who made the change.
    pub actor: Actor,
    /// Optional message (reason, error).
    pub message: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// Which log a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// The platform's stage log: shown to both parties.
    Stage,
    /// What the algorithm itself prints: to the DS, and to the AO only where the DS allows it.
    Algorithm,
}
wire_enum!(LogStream, "log stream", { Stage => "stage", Algorithm => "algorithm" });

/// One log line of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLogLine {
    /// 1, 2, ... per run.
    pub seq: i64,
    /// Which log.
    pub stream: LogStream,
    /// When the agent saw it.
    pub at: Timestamp,
    /// The line (bounded by the server).
    pub line: String,
}

/// What kind of output a run produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputKind {
    /// The final report (validated against the criteria): the AO's.
    FinalReport,
    /// The trained model, sealed to the AO: the AO's.
    TrainedModel,
    /// Metrics logged during the run (MLflow subset): the AO's.
    PerformanceReport,
    /// Other reports the algorithm posted: the DS's.
    AlgorithmReport,
}
wire_enum!(OutputKind, "output kind", {
    FinalReport => "final_report",
    TrainedModel => "trained_model",
    PerformanceReport => "performance_report",
    AlgorithmReport => "algorithm_report",
});

/// One output of a run. The DS sees size, hash and `passed_criteria`; the content goes to the
/// party the kind names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    /// The run.
    pub run_id: RunId,
    /// What it is.
    pub kind: OutputKind,
    /// Name given by the algorithm.
    pub name: String,
    /// The stored bytes.
    pub blob: BlobRef,
    /// Whether it passed the accepted criteria (final reports of validation runs).
    pub passed_criteria: Option<bool>,
    /// When.
    pub created_at: Timestamp,
}

/// One key release to a run: the evidence it was granted on and what was released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRelease {
    /// The run.
    pub run_id: RunId,
    /// 1, 2, ... per run.
    pub seq: i64,
    /// The TEE technology whose verifier accepted the evidence.
    pub technology: Technology,
    /// Hex SHA-256 of the evidence as received.
    pub evidence_sha256: String,
    /// Blob-store key of the stored evidence, when kept.
    pub evidence_blob_key: Option<String>,
    /// The launch measurement the verifier read (hex).
    pub measurement: String,
    /// The verifier's TCB verdict (`up_to_date`, `simulated`, ...).
    pub tcb_status: String,
    /// The workload digest bound into the evidence.
    pub workload_digest: String,
    /// Whose CEKs were released.
    pub roles: Vec<Role>,
    /// Fingerprints of the WCEK versions unwrapped.
    pub wcek_fingerprints: Vec<String>,
    /// When.
    pub at: Timestamp,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// To the DS: a run was requested.
    RunRequested,
    /// To the AO: a run request was rejected (with the reason).
    RunRejected,
    /// To both: a run completed.
    RunCompleted,
    /// To both: a run failed.
    RunFailed,
}
wire_enum!(NotificationKind, "notification kind", {
    RunRequested => "run_requested",
    RunRejected => "run_rejected",
    RunCompleted => "run_completed",
    RunFailed => "run_failed",
});

/// Notifications disappear this long after they were made (48 hours).
pub const NOTIFICATION_TTL_SECS: i64 = 48 * 3600;

/// A notification for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Its ID.
    pub id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// The project.
    pub project_id: ProjectId,
    /// The run it is about.
    pub run_id: Option<RunId>,
    /// What happened.
    pub kind: NotificationKind,
    /// A sentence for people (includes a rejection's reason).
    pub message: String,
    /// When.
    pub created_at: Timestamp,
    /// Whether the recipient has read it.
    pub read: bool,
}

/// A chat message in a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Its ID.
    pub id: ChatMessageId,
    /// The project.
    pub project_id: ProjectId,
    /// The author.
    pub author: UserId,
    /// The author's organization.
    pub author_org_id: OrgId,
    /// The text.
    pub body: String,
    /// When.
    pub created_at: Timestamp,
}

/// A DS site where an enclave agent runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Its ID.
    pub id: SiteId,
    /// The DS organization that runs it.
    pub org_id: OrgId,
    /// Name shown to people.
    pub name: Name,
    /// When it was registered.
    pub created_at: Timestamp,
}

/// Result of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    /// Done.
    Success,
    /// Refused by a permission check.
    Denied,
    /// Attempted and failed.
    Failure,
}
wire_enum!(AuditOutcome, "audit outcome", {
    Success => "success", Denied => "denied", Failure => "failure",
});

/// One entry of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain: 1, 2, ...
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What, as a dotted verb (`run.initiate`, `key.release`, `artifact.download`, `auth.login`).
    pub action: String,
    /// Result.
    pub outcome: AuditOutcome,
    /// The project, when the action is in one.
    pub project_id: Option<ProjectId>,
    /// The object acted on (`run:<id>`, `version:<id>`, ...).
    pub object: Option<String>,
    /// Further detail, as JSON text.
    pub detail: String,
    /// Hex SHA-256 of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over this entry's canonical content and `prev_hash`.
    pub hash: String,
}

/// What a search hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchKind {
    /// A project.
    Project,
    /// An artifact.
    Artifact,
    /// An artifact version.
    Version,
    /// A run configuration.
    RunConfig,
}
wire_enum!(SearchKind, "search kind", {
    Project => "project", Artifact => "artifact", Version => "version", RunConfig => "run_config",
});

/// One search hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// What it is.
    pub kind: SearchKind,
    /// Its ID (of the kind's ID type).
    pub id: String,
    /// The project it is in.
    pub project_id: ProjectId,
    /// Its title (name, or artifact name and version tag).
    pub title: String,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass this as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_roundtrip() {
        let u = Actor::User(UserId::new());
        assert_eq!(u.to_string().parse::<Actor>().unwrap(), u);
        assert_eq!("system".parse::<Actor>().unwrap(), Actor::System);
        assert!("user:nope".parse::<Actor>().is_err());
        assert!("robot".parse::<Actor>().is_err());
        let j = serde_json::to_string(&Actor::System).unwrap();
        assert_eq!(j, r#"{"type":"system"}"#);
    }

    #[test]
    fn version_detail_is_tagged() {
        let d = VersionDetail::AttestationReport {
            data_specification_version: None,
        };
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(j["kind"], "attestation_report");
        assert_eq!(d.kind(), ArtifactKind::AttestationReport);
    }
}
