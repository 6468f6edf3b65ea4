//! What callers hand to the store (new objects) and store-only records that hold secrets' hashes
//! or encrypted blobs.

use sealroom_types::{
    Actor, AlgorithmType, ArtifactId, ArtifactKind, AuditOutcome, BlobRef, ComputeSize, LogStream,
    Name, OrgId, OutputKind, ProjectId, ProjectKeyInfo, Role, RunConfigId, RunId, RunState,
    RuntimeParams, SiteId, Technology, Timestamp, User, UserId, VersionId, VersionTag,
};

/// Whose view a listing or search is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// A platform admin: sees every project.
    Admin,
    /// A member of an organization: sees the projects the organization belongs to.
    Org(OrgId),
}

/// A new user. The password hash (argon2id PHC string) is computed by the caller.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Its organization.
    pub org_id: OrgId,
    /// Unique login name (stored lowercase).
    pub username: String,
    /// Name shown to people.
    pub display_name: String,
    /// Platform admin.
    pub is_admin: bool,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// A user together with its password hash, for login.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// The kinds of bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A browser/CLI login session (expires).
    Session,
    /// A long-lived API token for the CLI.
    Api,
    /// A token with which a site's agent authenticates.
    Site,
}

impl TokenKind {
    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
            TokenKind::Site => "site",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "session" => Some(TokenKind::Session),
            "api" => Some(TokenKind::Api),
            "site" => Some(TokenKind::Site),
            _ => None,
        }
    }
}

/// Whom a token authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSubject {
    /// A user (session and API tokens).
    User(UserId),
    /// A site's agent (site tokens).
    Site(SiteId),
}

/// A new token. Only `token_hash` (hex SHA-256 of the secret token) is stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Kind.
    pub kind: TokenKind,
    /// Whom it authenticates (a site for `Site`, a user otherwise).
    pub subject: TokenSubject,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// A label ("laptop CLI").
    pub name: String,
    /// When it stops working (`None`: until revoked).
    pub expires_at: Option<Timestamp>,
}

/// A stored token (without the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its ID (as text; a `SessionId`, `ApiTokenId` or `SiteTokenId` by kind).
    pub id: String,
    /// Kind.
    pub kind: TokenKind,
    /// Whom it authenticates.
    pub subject: TokenSubject,
    /// A label.
    pub name: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
}

/// A per-role key pair to store with a new project.
#[derive(Clone)]
pub struct NewProjectKey {
    /// Whose KEK.
    pub role: Role,
    /// SPKI DER of the public KEK.
    pub public_der: Vec<u8>,
    /// `<project-name>-<random>-ao.der` / `-ds.der`.
    pub file_name: String,
    /// The private key as encrypted by the key provider.
    pub encrypted_private: Vec<u8>,
    /// The key provider's name (`file`, `pkcs11`).
    pub provider: String,
    /// The provider's reference to its wrapping key.
    pub key_ref: String,
}

impl std::fmt::Debug for NewProjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProjectKey")
            .field("role", &self.role)
            .field("file_name", &self.file_name)
            .field("provider", &self.provider)
            .field(
                "encrypted_private",
                &format_args!("<{} bytes>", self.encrypted_private.len()),
            )
            .finish_non_exhaustive()
    }
}

/// A stored key pair, with the encrypted private half for the key provider.
#[derive(Clone)]
pub struct ProjectKeyRecord {
    /// Public information.
    pub info: ProjectKeyInfo,
    /// SPKI DER of the public KEK.
    pub public_der: Vec<u8>,
    /// The private key as encrypted by the key provider.
    pub encrypted_private: Vec<u8>,
    /// The provider's reference to its wrapping key.
    pub key_ref: String,
}

impl std::fmt::Debug for ProjectKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectKeyRecord")
            .field("info", &self.info)
            .field(
                "encrypted_private",
                &format_args!("<{} bytes>", self.encrypted_private.len()),
            )
            .finish_non_exhaustive()
    }
}

/// A new project with its members and key pairs, created in one transaction.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Its ID, chosen by the caller so that the key pairs can be bound to it (a fresh
    /// `ProjectId::new()`).
    pub id: ProjectId,
    /// Unique name.
    pub name: Name,
    /// Free text.
    pub description: String,
    /// Fixed for the project's life.
    pub technology: Technology,
    /// Member organizations: exactly one AO, at least one DS, no organization twice.
    pub members: Vec<(OrgId, Role)>,
    /// One key pair per role.
    pub keys: Vec<NewProjectKey>,
    /// The admin who creates it.
    pub created_by: UserId,
}

/// A WCEK upload (already checked to unwrap under the role's KEK by the key provider).
#[derive(Clone)]
pub struct NewWcek {
    /// The project.
    pub project_id: ProjectId,
    /// Whose CEK.
    pub role: Role,
    /// The WCEK bytes.
    pub wcek: Vec<u8>,
    /// Key id of the wrapped CEK, when known.
    pub cek_key_id: Option<String>,
    /// Uploader.
    pub uploaded_by: UserId,
}

impl std::fmt::Debug for NewWcek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWcek")
            .field("project_id", &self.project_id)
            .field("role", &self.role)
            .field("wcek", &format_args!("<{} bytes>", self.wcek.len()))
            .finish_non_exhaustive()
    }
}

/// A new artifact.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    /// The project.
    pub project_id: ProjectId,
    /// Kind.
    pub kind: ArtifactKind,
    /// The owning organization (must have the kind's owner role in the project).
    pub owner_org_id: OrgId,
    /// Name, unique per project and kind.
    pub name: Name,
    /// Free text.
    pub description: String,
    /// Required for algorithms, absent otherwise.
    pub algorithm_type: Option<AlgorithmType>,
    /// Creator.
    pub created_by: UserId,
}

/// The per-kind part of a new version.
#[derive(Debug, Clone)]
pub enum NewVersionDetail {
    /// Data specification.
    DataSpecification,
    /// Attestation report.
    AttestationReport {
        /// The data-specification version it attests to.
        data_specification_version: Option<VersionId>,
    },
    /// Algorithm package; the upload steps start `pending`.
    Algorithm {
        /// Fingerprint of the AO WCEK its files are sealed under, when known.
        wcek_fingerprint: Option<String>,
    },
    /// Validation criteria (JSON text, already syntax-checked).
    ValidationCriteria {
        /// The document.
        criteria_json: String,
    },
    /// Dataset; the URL's kind and expiry are read here with `sealroom_types::parse_url_expiry`.
    Dataset {
        /// The signed URL.
        url: String,
        /// Linked data-specification version.
        data_specification_version: Option<VersionId>,
        /// Linked attestation-report version.
        attestation_report_version: Option<VersionId>,
        /// Fingerprint of the DS WCEK it is sealed under, when known.
        wcek_fingerprint: Option<String>,
    },
}

/// A new artifact version (system version assigned by the store).
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The artifact.
    pub artifact_id: ArtifactId,
    /// User tag, unique per artifact.
    pub tag: VersionTag,
    /// Free text.
    pub description: String,
    /// Uploader.
    pub uploaded_by: UserId,
    /// The stored file, if the kind has one.
    pub blob: Option<BlobRef>,
    /// Per-kind part.
    pub detail: NewVersionDetail,
}

/// A new run configuration.
#[derive(Debug, Clone)]
pub struct NewRunConfig {
    /// The project.
    pub project_id: ProjectId,
    /// Name.
    pub name: Name,
    /// Free text.
    pub description: String,
    /// Algorithm version.
    pub algorithm_version_id: VersionId,
    /// Dataset version (its URL must not be expired).
    pub dataset_version_id: VersionId,
    /// Validation criteria version, accepted by the dataset's DS.
    pub criteria_version_id: Option<VersionId>,
    /// Creator (AO).
    pub created_by: UserId,
}

/// A new run request.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The configuration.
    pub run_config_id: RunConfigId,
    /// Runtime parameters.
    pub params: RuntimeParams,
    /// vCPU / RAM (must be among the technology's choices).
    pub compute: ComputeSize,
    /// Requester (AO).
    pub requested_by: UserId,
}

/// A state change of a run.
#[derive(Debug, Clone)]
pub struct RunTransition {
    /// The run.
    pub run_id: RunId,
    /// The new state.
    pub to: RunState,
    /// Who makes the change.
    pub actor: Actor,
    /// Reason (rejection, cancellation) or error message.
    pub message: Option<String>,
}

/// One log line from an agent.
#[derive(Debug, Clone)]
pub struct NewLogLine {
    /// Which log.
    pub stream: LogStream,
    /// When the agent saw it.
    pub at: Timestamp,
    /// The text.
    pub line: String,
}

/// An output reported by an agent.
#[derive(Debug, Clone)]
pub struct NewRunOutput {
    /// The run.
    pub run_id: RunId,
    /// What it is.
    pub kind: OutputKind,
    /// Name (unique per run and kind).
    pub name: String,
    /// The stored bytes.
    pub blob: BlobRef,
    /// Whether it passed the criteria.
    pub passed_criteria: Option<bool>,
}

/// A key release to record (the broker has verified the evidence and policy).
#[derive(Debug, Clone)]
pub struct NewKeyRelease {
    /// The run (must be in `workload_launch`).
    pub run_id: RunId,
    /// The TEE technology (must be the project's).
    pub technology: Technology,
    /// Hex SHA-256 of the evidence.
    pub evidence_sha256: String,
    /// Blob-store key of the stored evidence.
    pub evidence_blob_key: Option<String>,
    /// Launch measurement (hex).
    pub measurement: String,
    /// The verifier's TCB verdict.
    pub tcb_status: String,
    /// Workload digest bound into the evidence.
    pub workload_digest: String,
    /// Whose CEKs were released.
    pub roles: Vec<Role>,
    /// WCEK fingerprints unwrapped.
    pub wcek_fingerprints: Vec<String>,
}

/// A new audit entry (sequence and hashes assigned by the store).
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Who.
    pub actor: Actor,
    /// Dotted verb (`run.initiate`).
    pub action: String,
    /// Result.
    pub outcome: AuditOutcome,
    /// The project, if any.
    pub project_id: Option<ProjectId>,
    /// The object (`run:<id>`).
    pub object: Option<String>,
    /// JSON detail.
    pub detail: serde_json::Value,
}

/// One problem found by [`crate::AuditStore::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditProblem {
    /// The row's content does not hash to its stored hash: it was modified.
    Modified {
        /// Its sequence number.
        seq: i64,
    },
    /// The row's `prev_hash` is not the previous row's hash (a row before it was changed or
    /// removed, or this row was re-chained).
    BrokenLink {
        /// Its sequence number.
        seq: i64,
    },
    /// Rows with these sequence numbers are missing (deleted).
    Missing {
        /// First missing.
        from_seq: i64,
        /// Last missing.
        to_seq: i64,
    },
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditProblem::Modified { seq } => write!(f, "entry {seq} was modified"),
            AuditProblem::BrokenLink { seq } => write!(
                f,
                "the chain breaks before entry {seq}: entry {} was modified and re-hashed, or entry {seq} was re-linked",
                seq - 1
            ),
            AuditProblem::Missing { from_seq, to_seq } if from_seq == to_seq => {
                write!(f, "entry {from_seq} was deleted")
            }
            AuditProblem::Missing { from_seq, to_seq } => {
                write!(f, "entries {from_seq} to {to_seq} were deleted")
            }
        }
    }
}

/// Result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Rows read.
    pub entries_checked: u64,
    /// Highest sequence number according to the chain's head.
    pub head_seq: i64,
    /// Problems, in sequence order; empty when the chain is intact.
    pub problems: Vec<AuditProblem>,
}

impl AuditVerification {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}
