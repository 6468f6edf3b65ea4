//! Sealroom's metadata store: one schema, two engines.
//!
//! [`MetadataStore`] is the joint: the server holds an `Arc<dyn MetadataStore>` made by [`open`]
//! from a database URL. SQLite (`sqlite://<data-dir>/sealroom.db`, the default) and PostgreSQL
//! (`postgres://...`) run the same code through sqlx's `Any` driver, with one migration directory
//! per engine (`migrations/sqlite`, `migrations/postgres`) defining the same tables.
//!
//! Domain invariants live here, inside transactions, and come back as typed [`StoreError`]s:
//! a unique run configuration per algorithm-version × dataset-version pair, at most one open
//! request or active run per configuration (a partial unique index), the run state machine,
//! project state (paused / deactivated), dataset URL expiry, criteria acceptance, compute sizes.
//! The audit log is append-only and hash-chained; [`AuditStore::verify_audit_chain`] names any
//! modified or deleted entry.
//!
//! ```no_run
//! # async fn demo() -> sealroom_store::Result<()> {
//! use sealroom_store::{open, StoreConfig};
//! let store = open(&StoreConfig::sqlite_in_data_dir(std::path::Path::new("/var/lib/sealroom"))).await?;
//! let orgs = store.list_orgs().await?;
//! # let _ = orgs; Ok(()) }
//! ```

mod audit;
mod error;
mod input;
mod search;
mod sql;

use async_trait::async_trait;
use sealroom_types::*;

pub use error::{Result, StoreError};
pub use input::*;
pub use search::normalize_search_text;
pub use sql::broker::{
    BrokerStore, SiteAttestationKey, SiteKeyRegistration, StoredAttestationPolicy, MAX_POLICY_LEN,
};
pub use sql::{open, Backend, SqlStore, StoreConfig};

/// Organizations, users, sites and tokens.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an organization (names unique, case-insensitive).
    async fn create_org(&self, name: &Name) -> Result<Organization>;
    /// One organization.
    async fn get_org(&self, id: OrgId) -> Result<Organization>;
    /// All organizations, by name.
    async fn list_orgs(&self) -> Result<Vec<Organization>>;
    /// Creates a user (usernames unique, case-insensitive).
    async fn create_user(&self, user: NewUser) -> Result<User>;
    /// One user.
    async fn get_user(&self, id: UserId) -> Result<User>;
    /// A user and its password hash, by username; `None` if there is none.
    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>>;
    /// Replaces a user's password hash.
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()>;
    /// Enables or disables a user (disabling also revokes its tokens).
    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> Result<()>;
    /// Users, optionally of one organization, by username.
    async fn list_users(&self, org: Option<OrgId>) -> Result<Vec<User>>;
    /// Whether any admin exists (the first start creates one).
    async fn has_admin(&self) -> Result<bool>;
    /// Registers a DS site.
    async fn create_site(&self, org_id: OrgId, name: &Name) -> Result<Site>;
    /// One site.
    async fn get_site(&self, id: SiteId) -> Result<Site>;
    /// Stores a token's hash.
    async fn create_token(&self, token: NewToken) -> Result<TokenRecord>;
    /// The live (unrevoked, unexpired at `now`) token with this hash, if any; disabled users'
    /// tokens are not live.
    async fn find_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<TokenRecord>>;
    /// Revokes a token by ID; `NotFound` if there is none.
    async fn revoke_token(&self, id: &str) -> Result<()>;
    /// A user's live tokens of one kind.
    async fn list_tokens(
        &self,
        user: UserId,
        kind: TokenKind,
        now: Timestamp,
    ) -> Result<Vec<TokenRecord>>;
}

/// Projects, members, keys and WCEKs.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Creates a project with its members and key pairs in one transaction.
    async fn create_project(&self, project: NewProject) -> Result<Project>;
    /// One project.
    async fn get_project(&self, id: ProjectId) -> Result<Project>;
    /// Projects the viewer may see, ordered by ID (creation), after `after`, at most `limit`.
    async fn list_projects(
        &self,
        viewer: Viewer,
        after: Option<ProjectId>,
        limit: u32,
    ) -> Result<Page<Project>>;
    /// Changes a project's state.
    async fn set_project_state(&self, id: ProjectId, state: ProjectState) -> Result<Project>;
    /// Whether the DS lets the AO see algorithm logs.
    async fn set_algorithm_logs_to_ao(&self, id: ProjectId, allowed: bool) -> Result<Project>;
    /// Adds a member organization (a second AO is refused).
    async fn add_member(&self, project: ProjectId, org: OrgId, role: Role) -> Result<()>;
    /// The project's members.
    async fn list_members(&self, project: ProjectId) -> Result<Vec<ProjectMember>>;
    /// The organization's role in the project, if it is a member.
    async fn member_role(&self, project: ProjectId, org: OrgId) -> Result<Option<Role>>;
    /// The project's members with their organizations' names (one query), by role, then
    /// organization.
    async fn list_members_named(&self, project: ProjectId) -> Result<Vec<(ProjectMember, Name)>>;
    /// The projects an organization is a member of, with its role in each, ordered by ID, after
    /// `after`, at most `limit` (one query: the project list of a non-admin user).
    async fn list_org_projects(
        &self,
        org: OrgId,
        after: Option<ProjectId>,
        limit: u32,
    ) -> Result<Page<(Project, Role)>>;
    /// The organization's roles in the projects whose IDs lie in `(after, through]` (the span
    /// of one [`list_projects`](Self::list_projects) page), in one query.
    async fn org_roles_between(
        &self,
        org: OrgId,
        after: Option<ProjectId>,
        through: ProjectId,
    ) -> Result<Vec<(ProjectId, Role)>>;
    /// A role's key pair, with the encrypted private half.
    async fn project_key(&self, project: ProjectId, role: Role) -> Result<ProjectKeyRecord>;
    /// The public information of the project's key pairs.
    async fn project_keys(&self, project: ProjectId) -> Result<Vec<ProjectKeyInfo>>;
    /// Records a new WCEK version: keeps its bytes, drops the previous version's bytes, keeps
    /// every version's fingerprint.
    async fn add_wcek(&self, wcek: NewWcek) -> Result<WcekVersion>;
    /// The latest WCEK of a role and its bytes.
    async fn latest_wcek(
        &self,
        project: ProjectId,
        role: Role,
    ) -> Result<Option<(WcekVersion, Vec<u8>)>>;
    /// Every WCEK version of a role, oldest first.
    async fn list_wceks(&self, project: ProjectId, role: Role) -> Result<Vec<WcekVersion>>;
}

/// Artifacts and their versions.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Creates an artifact (owner org must hold the kind's role in the project).
    async fn create_artifact(&self, artifact: NewArtifact) -> Result<Artifact>;
    /// One artifact.
    async fn get_artifact(&self, id: ArtifactId) -> Result<Artifact>;
    /// A project's artifacts, optionally of one kind, oldest first.
    async fn list_artifacts(
        &self,
        project: ProjectId,
        kind: Option<ArtifactKind>,
    ) -> Result<Vec<Artifact>>;
    /// Adds a version (next system version; links checked; dataset URL read). A dataset
    /// version whose URL is not a readable signed URL is refused.
    async fn add_version(&self, version: NewVersion) -> Result<ArtifactVersion>;
    /// One version.
    async fn get_version(&self, id: VersionId) -> Result<ArtifactVersion>;
    /// An artifact's versions, oldest first.
    async fn list_versions(&self, artifact: ArtifactId) -> Result<Vec<ArtifactVersion>>;
    /// Records one upload step of an algorithm version.
    async fn set_upload_step(&self, version: VersionId, step: UploadStepState) -> Result<()>;
    /// Records the workload digest of an algorithm version.
    async fn set_workload_digest(&self, version: VersionId, digest: &str) -> Result<()>;
    /// A DS organization accepts a criteria version (idempotent).
    async fn accept_criteria(&self, version: VersionId, org: OrgId, user: UserId) -> Result<()>;
    /// The DS certifies a dataset version holds no unencrypted protected data.
    async fn certify_dataset(&self, version: VersionId, user: UserId) -> Result<()>;
}

/// Run configurations, runs, logs and outputs.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Creates a run configuration; refused for a duplicate pair or a dataset URL expiring
    /// within 24 hours of `now`.
    async fn create_run_config(&self, config: NewRunConfig, now: Timestamp) -> Result<RunConfig>;
    /// One configuration.
    async fn get_run_config(&self, id: RunConfigId) -> Result<RunConfig>;
    /// A project's configurations, oldest first.
    async fn list_run_configs(&self, project: ProjectId) -> Result<Vec<RunConfig>>;
    /// Sends a run request; notifies the dataset's DS users.
    async fn request_run(&self, run: NewRun) -> Result<Run>;
    /// Moves a run along its state machine; checks project state and dataset expiry on
    /// initiation; notifies on rejection, completion and failure.
    async fn transition_run(&self, t: RunTransition, now: Timestamp) -> Result<Run>;
    /// Gives an initiated, unclaimed run of the site's organization to the site, if any.
    async fn claim_run(&self, site: SiteId) -> Result<Option<Run>>;
    /// One run.
    async fn get_run(&self, id: RunId) -> Result<Run>;
    /// Runs of a project, optionally of one configuration, newest first.
    async fn list_runs(&self, project: ProjectId, config: Option<RunConfigId>) -> Result<Vec<Run>>;
    /// A run's state history, oldest first.
    async fn run_history(&self, run: RunId) -> Result<Vec<RunStateChange>>;
    /// Appends log lines; returns the last sequence number.
    async fn append_run_logs(&self, run: RunId, lines: Vec<NewLogLine>) -> Result<i64>;
    /// Log lines after `after_seq` of the given streams, at most `limit`.
    async fn run_logs(
        &self,
        run: RunId,
        streams: &[LogStream],
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RunLogLine>>;
    /// Records an output.
    async fn add_run_output(&self, output: NewRunOutput) -> Result<RunOutput>;
    /// A run's outputs.
    async fn run_outputs(&self, run: RunId) -> Result<Vec<RunOutput>>;
    /// Stores a single-use key-release nonce (its SHA-256) for a run in `workload_launch`.
    async fn issue_release_nonce(
        &self,
        run: RunId,
        nonce_sha256: &str,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// Uses up a nonce: `true` exactly once per nonce, for its run, before it expires.
    async fn consume_release_nonce(
        &self,
        run: RunId,
        nonce_sha256: &str,
        now: Timestamp,
    ) -> Result<bool>;
    /// Records a key release; refused unless the run is in `workload_launch` and the
    /// technology is the project's.
    async fn record_key_release(&self, release: NewKeyRelease) -> Result<KeyRelease>;
    /// A run's key releases, oldest first.
    async fn key_releases(&self, run: RunId) -> Result<Vec<KeyRelease>>;
}

/// Notifications, chat and search.
#[async_trait]
pub trait CommsStore: Send + Sync {
    /// A user's notifications younger than 48 hours at `now`, newest first.
    async fn list_notifications(&self, user: UserId, now: Timestamp) -> Result<Vec<Notification>>;
    /// Marks one of the user's notifications read.
    async fn mark_notification_read(&self, user: UserId, id: NotificationId) -> Result<()>;
    /// Deletes notifications older than 48 hours; returns how many.
    async fn purge_notifications(&self, now: Timestamp) -> Result<u64>;
    /// Posts a chat message (the caller has checked membership).
    async fn post_chat(
        &self,
        project: ProjectId,
        author: UserId,
        author_org: OrgId,
        body: &str,
    ) -> Result<ChatMessage>;
    /// A project's chat, oldest first, after `after`, at most `limit`.
    async fn list_chat(
        &self,
        project: ProjectId,
        after: Option<ChatMessageId>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>>;
    /// Searches names, descriptions and version tags the viewer may see; every word of the
    /// query must match (as a prefix).
    async fn search(&self, viewer: Viewer, query: &str, limit: u32) -> Result<Vec<SearchHit>>;
}

/// The hash-chained audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry.
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditEntry>;
    /// Entries after `after_seq`, at most `limit`.
    async fn list_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>>;
    /// Recomputes every hash and link; names modified and deleted entries.
    async fn verify_audit_chain(&self) -> Result<AuditVerification>;
}

/// The whole metadata store. Implemented by every type that implements the parts.
pub trait MetadataStore:
    AccountStore
    + ProjectStore
    + ArtifactStore
    + RunStore
    + CommsStore
    + AuditStore
    + BrokerStore
    + std::fmt::Debug
{
    /// Which engine.
    fn backend(&self) -> Backend;
}
