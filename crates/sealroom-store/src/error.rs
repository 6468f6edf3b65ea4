//! The store's typed errors and their stable API codes.

use sealroom_types::{
    ErrorCode, ProjectState, RunConfigId, Technology, Timestamp, TransitionError, VersionId,
};

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object (or not in the project named).
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of object.
        what: &'static str,
        /// The ID or key looked up.
        id: String,
    },
    /// A unique name or key is taken.
    #[error("{what} already exists: {detail}")]
    AlreadyExists {
        /// Kind of object.
        what: &'static str,
        /// Which value collided.
        detail: String,
    },
    /// The algorithm-version × dataset-version pair already has a run configuration.
    #[error("a run configuration for this algorithm version and dataset version already exists")]
    DuplicateRunConfiguration,
    /// The configuration already has an open request or an active run.
    #[error("run configuration {0} already has an open run request or an active run")]
    RunAlreadyOpen(RunConfigId),
    /// The run's state machine forbids the change (or the run changed concurrently).
    #[error(transparent)]
    InvalidTransition(#[from] TransitionError),
    /// The project's state forbids the action.
    #[error("the project is {state}: {action} is not allowed")]
    ProjectNotActive {
        /// The project's state.
        state: ProjectState,
        /// What was refused.
        action: &'static str,
    },
    /// The dataset version's URL expires in less than 24 hours.
    #[error("the URL of dataset version {version_id} expires at {expires_at} (less than 24 hours from now); add a new dataset version with a fresh URL")]
    DatasetUrlExpired {
        /// The dataset version.
        version_id: VersionId,
        /// Its URL's expiry.
        expires_at: Timestamp,
    },
    /// The dataset URL is not a signed URL whose expiry can be read.
    #[error("dataset URL: {0}")]
    DatasetUrlInvalid(#[from] sealroom_types::DatasetUrlError),
    /// The validation criteria version is not accepted by the dataset's DS.
    #[error("validation criteria version {0} has not been accepted by the data steward")]
    CriteriaNotAccepted(VersionId),
    /// vCPU / RAM not offered by the technology.
    #[error("{vcpus} vCPU / {ram_gib} GiB is not a size that {technology} projects offer")]
    InvalidComputeSize {
        /// The project's technology.
        technology: Technology,
        /// Requested vCPUs.
        vcpus: u32,
        /// Requested RAM.
        ram_gib: u32,
    },
    /// The request breaks a domain rule (wrong artifact kind, wrong project, bad membership...).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A stored value does not parse: the database was changed outside Sealroom.
    #[error("corrupt row in {table}.{column}: {detail}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Column.
        column: String,
        /// What did not parse.
        detail: String,
    },
    /// The configuration (database URL) is not usable.
    #[error("store configuration: {0}")]
    Config(String),
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The stable API code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::NotFound { .. } => ErrorCode::NotFound,
            StoreError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            StoreError::DuplicateRunConfiguration => ErrorCode::DuplicateRunConfiguration,
            StoreError::RunAlreadyOpen(_) => ErrorCode::RunAlreadyOpen,
            StoreError::InvalidTransition(_) => ErrorCode::InvalidStateTransition,
            StoreError::ProjectNotActive { .. } => ErrorCode::ProjectNotActive,
            StoreError::DatasetUrlExpired { .. } => ErrorCode::DatasetUrlExpired,
            StoreError::DatasetUrlInvalid(_) => ErrorCode::DatasetUrlInvalid,
            StoreError::CriteriaNotAccepted(_) => ErrorCode::CriteriaNotAccepted,
            StoreError::InvalidComputeSize { .. } => ErrorCode::InvalidComputeSize,
            StoreError::Invalid { .. } => ErrorCode::InvalidRequest,
            StoreError::Corrupt { .. } | StoreError::Config(_) | StoreError::Migrate(_) => {
                ErrorCode::Internal
            }
            StoreError::Database(_) => ErrorCode::Unavailable,
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
