//! Identifier newtypes. Each is a UUID (version 7 when made here, so IDs sort by creation time)
//! written in its hyphenated lowercase form; parsing accepts any well-formed UUID and nothing else.

use std::fmt;
use std::str::FromStr;

/// A string that is not a well-formed identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {what} id {value:?}: expected a UUID such as 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
)]
pub struct IdError {
    /// Which kind of ID was expected.
    pub what: &'static str,
    /// The rejected input, cut to 64 characters.
    pub value: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) identifier.
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &uuid::Uuid {
                &self.0
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(u: uuid::Uuid) -> Self {
                $name(u)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                // Only the 36-character hyphenated form: one spelling per ID.
                if s.len() != 36 {
                    return Err(IdError { what: $what, value: s.chars().take(64).collect() });
                }
                uuid::Uuid::try_parse(s)
                    .map($name)
                    .map_err(|_| IdError { what: $what, value: s.chars().take(64).collect() })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0.hyphenated())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(/// An organization.
    OrgId, "organization");
id_type!(/// A user (belongs to one organization).
    UserId, "user");
id_type!(/// A login session (its token is stored only as a hash).
    SessionId, "session");
id_type!(/// A long-lived API token for the CLI.
    ApiTokenId, "api token");
id_type!(/// A DS site where an enclave agent runs.
    SiteId, "site");
id_type!(/// A site token with which an agent authenticates.
    SiteTokenId, "site token");
id_type!(/// A project.
    ProjectId, "project");
id_type!(/// One uploaded wrapped CEK (WCEK) version.
    WcekId, "wcek");
id_type!(/// An artifact (data specification, attestation report, algorithm, criteria, dataset).
    ArtifactId, "artifact");
id_type!(/// One version of an artifact.
    VersionId, "artifact version");
id_type!(/// A run configuration (algorithm version × dataset version).
    RunConfigId, "run configuration");
id_type!(/// A run (starts life as a run request).
    RunId, "run");
id_type!(/// A notification.
    NotificationId, "notification");
id_type!(/// A chat message.
    ChatMessageId, "chat message");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_and_ordered() {
        let a = ProjectId::new();
        let b = ProjectId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a <= b);
    }

    #[test]
    fn roundtrip_and_rejects() {
        let id = RunId::new();
        let s = id.to_string();
        assert_eq!(s.parse::<RunId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<RunId>(&json).unwrap(), id);
        for bad in [
            "",
            "x",
            "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",
            "{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
        ] {
            let e = bad.parse::<RunId>().unwrap_err();
            assert_eq!(e.what, "run");
        }
        assert!(serde_json::from_str::<RunId>("\"nope\"").is_err());
    }
}
