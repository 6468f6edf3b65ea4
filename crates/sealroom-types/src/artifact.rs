//! Artifacts: their kinds, version tags, algorithm types and the upload status steps of an
//! algorithm package (manual §14.5.5.1).

use crate::{wire_enum, Role};

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactKind {
    /// The AO's description of the data it needs (PDF/DOC).
    DataSpecification,
    /// The DS's report attesting the dataset conforms to a data specification.
    AttestationReport,
    /// The AO's (encrypted) algorithm package.
    Algorithm,
    /// The AO's validation criteria (JSON), accepted by the DS per version.
    ValidationCriteria,
    /// The DS's encrypted dataset, behind a signed URL.
    Dataset,
}
wire_enum!(ArtifactKind, "artifact kind", {
    DataSpecification => "data_specification",
    AttestationReport => "attestation_report",
    Algorithm => "algorithm",
    ValidationCriteria => "validation_criteria",
    Dataset => "dataset",
});

impl ArtifactKind {
    /// The role that creates and versions artifacts of this kind.
    pub const fn owner_role(self) -> Role {
        match self {
            ArtifactKind::DataSpecification
            | ArtifactKind::Algorithm
            | ArtifactKind::ValidationCriteria => Role::AlgorithmOwner,
            ArtifactKind::AttestationReport | ArtifactKind::Dataset => Role::DataSteward,
        }
    }
}

/// Whether an algorithm trains a model or validates one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgorithmType {
    /// Training: the run returns a trained model to the AO.
    Training,
    /// Validation: the run's report is checked against the accepted criteria.
    Validation,
}
wire_enum!(AlgorithmType, "algorithm type", { Training => "training", Validation => "validation" });

/// One check of an uploaded algorithm package (manual §14.5.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UploadStep {
    /// The package has a plaintext `Dockerfile` or entrypoint.
    DockerfilePresent,
    /// The package has its plaintext `secrets` manifest (the list of sealed files).
    SecretsManifestPresent,
    /// The AO has uploaded a WCEK for the project.
    WcekPresent,
    /// All checks above passed.
    FileValidationSucceeded,
}
wire_enum!(UploadStep, "upload step", {
    DockerfilePresent => "dockerfile_present",
    SecretsManifestPresent => "secrets_manifest_present",
    WcekPresent => "wcek_present",
    FileValidationSucceeded => "file_validation_succeeded",
});

/// The outcome of one upload step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadStepStatus {
    /// Not checked yet.
    Pending,
    /// Passed.
    Passed,
    /// Failed (see the step's message).
    Failed,
}
wire_enum!(UploadStepStatus, "upload step status", {
    Pending => "pending", Passed => "passed", Failed => "failed",
});

/// One recorded upload step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadStepState {
    /// Which step.
    pub step: UploadStep,
    /// Its status.
    pub status: UploadStepStatus,
    /// A message for people (what was missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it was recorded.
    pub at: crate::Timestamp,
}

/// A user-chosen version tag (`v1.2`, `2024-03 refresh`): 1..=64 characters, printable, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionTag(String);

impl VersionTag {
    /// Validates a tag.
    pub fn parse(s: &str) -> Result<Self, crate::NameError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(crate::NameError::Empty);
        }
        if t.len() > 256 || t.chars().count() > 64 {
            return Err(crate::NameError::TooLong);
        }
        if let Some(c) = t.chars().find(|c| c.is_control()) {
            return Err(crate::NameError::BadChar(c));
        }
        Ok(VersionTag(t.to_owned()))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VersionTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for VersionTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for VersionTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        VersionTag::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_owners() {
        assert_eq!(ArtifactKind::Dataset.owner_role(), Role::DataSteward);
        assert_eq!(ArtifactKind::Algorithm.owner_role(), Role::AlgorithmOwner);
        assert_eq!(
            "validation_criteria".parse::<ArtifactKind>().unwrap(),
            ArtifactKind::ValidationCriteria
        );
        assert_eq!(UploadStep::ALL.len(), 4);
    }

    #[test]
    fn tags() {
        assert_eq!(VersionTag::parse(" v1.0 ").unwrap().as_str(), "v1.0");
        assert!(VersionTag::parse("").is_err());
        assert!(VersionTag::parse("a\nb").is_err());
        assert!(VersionTag::parse(&"x".repeat(65)).is_err());
    }
}
