//! Sealroom's API and domain types: the vocabulary of `DESIGN.md` §2 as typed values.
//!
//! Everything here is plain data plus parsing: serde, no I/O. Values from the outside (request
//! bodies, URLs, database rows) become these types once, at the edge, and the inside trusts them
//! ("parse, don't validate").
//!
//! ```
//! use sealroom_types::{RunState, RuntimeParamName, Technology, DatasetUrlStatus, Timestamp};
//!
//! let name: RuntimeParamName = "learning_rate".parse().unwrap();
//! assert_eq!(name.as_str(), "learning_rate");
//! assert!("2fast".parse::<RuntimeParamName>().is_err());
//!
//! assert!(RunState::Requested.can_transition_to(RunState::Initiated));
//! assert!(!RunState::Completed.can_transition_to(RunState::Running));
//!
//! assert!(Technology::SevSnp.allows_compute(4, 16));
//!
//! let now = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
//! let url = "https://acct.blob.core.windows.net/c?sp=rl&se=2026-01-01T12:00:00Z&sv=2022-11-02&sr=c&sig=abc";
//! assert_eq!(sealroom_types::assess_dataset_url(url, now).status, DatasetUrlStatus::Expired);
//! ```

mod artifact;
mod dataset_url;
mod error;
mod id;
mod model;
mod params;
mod project;
mod run;
mod time;

pub use artifact::{
    AlgorithmType, ArtifactKind, UploadStep, UploadStepState, UploadStepStatus, VersionTag,
};
pub use dataset_url::{
    assess_dataset_url, parse_url_expiry, DatasetUrlAssessment, DatasetUrlError, DatasetUrlStatus,
    UrlExpiry, UrlKind, EXPIRY_MARGIN_SECS, MAX_DATASET_URL_LEN, SEALROOM_SIGNED_URL_VERSION,
};
pub use error::{ApiError, ErrorCode};
pub use id::{
    ApiTokenId, ArtifactId, ChatMessageId, IdError, NotificationId, OrgId, ProjectId, RunConfigId,
    RunId, SessionId, SiteId, SiteTokenId, UserId, VersionId, WcekId,
};
pub use model::*;
pub use params::{
    ParamError, RuntimeParam, RuntimeParamName, RuntimeParams, MAX_PARAMS, MAX_PARAM_NAME_LEN,
    MAX_PARAM_VALUE_LEN,
};
pub use project::{
    ComputeSize, Name, NameError, ProjectState, Role, Technology, MAX_DESCRIPTION_LEN, MAX_NAME_LEN,
};
pub use run::{RunState, TransitionError};
pub use time::{Timestamp, TimestampError};

/// Error parsing one of the enums of this crate from its wire name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of: {expected}")]
pub struct UnknownVariant {
    /// What was being parsed ("role", "technology", ...).
    pub what: &'static str,
    /// The rejected input, cut to 64 characters.
    pub value: String,
    /// The accepted wire names, comma separated.
    pub expected: &'static str,
}

impl UnknownVariant {
    pub(crate) fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        UnknownVariant {
            what,
            value: value.chars().take(64).collect(),
            expected,
        }
    }
}

/// Implements `as_str`, `ALL`, `Display`, `FromStr` and string serde for a fieldless enum whose
/// wire names are given once.
macro_rules! wire_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable wire name (API, database, CLI).
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::UnknownVariant::new($what, s, concat!($($name, " "),+))),
                }
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use wire_enum;
