//! Projects: member roles, states, the confidential-compute technology and its compute sizes,
//! and the validated display names used for organizations, projects and artifacts.

use crate::wire_enum;

/// An organization's role in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// AO: owns algorithms, validation criteria and run requests; receives reports and models.
    AlgorithmOwner,
    /// DS: owns datasets and attestation reports; initiates, rejects and cancels runs.
    DataSteward,
}
wire_enum!(Role, "role", { AlgorithmOwner => "algorithm_owner", DataSteward => "data_steward" });

impl Role {
    /// The short suffix used in key file names (`-ao.der`, `-ds.der`).
    pub const fn short(self) -> &'static str {
        match self {
            Role::AlgorithmOwner => "ao",
            Role::DataSteward => "ds",
        }
    }

    /// The other party.
    pub const fn counterpart(self) -> Role {
        match self {
            Role::AlgorithmOwner => Role::DataSteward,
            Role::DataSteward => Role::AlgorithmOwner,
        }
    }
}

/// A project's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProjectState {
    /// Everything allowed.
    Active,
    /// No new run requests or initiations; everything else allowed.
    Paused,
    /// Read-only (still searchable).
    Deactivated,
}
wire_enum!(ProjectState, "project state", {
    Active => "active", Paused => "paused", Deactivated => "deactivated",
});

impl ProjectState {
    /// Whether run requests may be sent and initiated.
    pub const fn allows_new_runs(self) -> bool {
        matches!(self, ProjectState::Active)
    }

    /// Whether anything in the project may change (uploads, chat, configurations).
    pub const fn allows_writes(self) -> bool {
        !matches!(self, ProjectState::Deactivated)
    }
}

/// One vCPU / RAM choice for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ComputeSize {
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in GiB.
    pub ram_gib: u32,
}

const fn cs(vcpus: u32, ram_gib: u32) -> ComputeSize {
    ComputeSize { vcpus, ram_gib }
}

/// The confidential-compute technology of a project, chosen at creation and never changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Technology {
    /// Software-simulated TEE: for demos and tests only, accepted only by `simulated` projects.
    Simulated,
    /// AMD SEV-SNP confidential VM.
    SevSnp,
    /// Intel TDX trust domain.
    Tdx,
    /// Azure confidential VM (SEV-SNP behind a vTPM).
    AzureCvm,
}
wire_enum!(Technology, "technology", {
    Simulated => "simulated", SevSnp => "sev-snp", Tdx => "tdx", AzureCvm => "azure-cvm",
});

impl Technology {
    /// The vCPU / RAM sizes a run request may choose for this technology.
    ///
    /// `azure-cvm` follows the DCasv5/ECasv5 confidential VM sizes; `sev-snp` and `tdx` bare-metal
    /// hosts offer the same 1:4 ladder without the largest sizes; `simulated` is sized for one
    /// developer machine.
    pub const fn compute_choices(self) -> &'static [ComputeSize] {
        const SIMULATED: &[ComputeSize] = &[cs(1, 1), cs(1, 2), cs(2, 4), cs(4, 8)];
        const BARE_METAL: &[ComputeSize] = &[
            cs(2, 8),
            cs(4, 16),
            cs(8, 32),
            cs(16, 64),
            cs(32, 128),
            cs(64, 256),
        ];
        const AZURE: &[ComputeSize] = &[
            cs(2, 8),
            cs(4, 16),
            cs(8, 32),
            cs(16, 64),
            cs(32, 128),
            cs(48, 192),
            cs(64, 256),
            cs(96, 384),
        ];
        match self {
            Technology::Simulated => SIMULATED,
            Technology::SevSnp | Technology::Tdx => BARE_METAL,
            Technology::AzureCvm => AZURE,
        }
    }

    /// Whether `vcpus` / `ram_gib` is one of [`Self::compute_choices`].
    pub fn allows_compute(self, vcpus: u32, ram_gib: u32) -> bool {
        self.compute_choices()
            .iter()
            .any(|c| c.vcpus == vcpus && c.ram_gib == ram_gib)
    }

    /// True only for the simulated TEE (the dangerous path: no hardware protection).
    pub const fn is_simulated(self) -> bool {
        matches!(self, Technology::Simulated)
    }
}

/// Longest accepted name, in characters.
pub const MAX_NAME_LEN: usize = 100;
/// Longest accepted description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// A rejected name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after trimming.
    #[error("name is empty")]
    Empty,
    /// Longer than [`MAX_NAME_LEN`] characters.
    #[error("name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    /// Contains a control character or a character outside the allowed set.
    #[error("name contains the character {0:?}; use letters, digits, spaces and - _ . ( ) &")]
    BadChar(char),
}

/// A display name (organization, project, artifact): 1..=100 characters after trimming; letters
/// (any script), digits, spaces and `- _ . ( ) &`; no leading/trailing or doubled spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validates a name (surrounding whitespace trimmed, inner runs of spaces collapsed).
    pub fn parse(input: &str) -> Result<Self, NameError> {
        if input.len() > MAX_NAME_LEN * 4 {
            return Err(NameError::TooLong);
        }
        let collapsed: Vec<&str> = input.split_whitespace().collect();
        let s = collapsed.join(" ");
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.chars().count() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if let Some(c) = s.chars().find(|c| {
            !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '(' | ')' | '&'))
        }) {
            return Err(NameError::BadChar(c));
        }
        Ok(Name(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A file-name-safe form: ASCII letters and digits kept (lowercased), every other run of
    /// characters turned into one `-`; `project` if nothing is left. Used for
    /// `<project-name>-<random>-ao.der`.
    pub fn file_stem(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for c in self.0.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        let out = out.trim_end_matches('-').to_owned();
        if out.is_empty() {
            "project".to_owned()
        } else {
            out
        }
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Name::parse(s)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        assert_eq!(Role::AlgorithmOwner.as_str(), "algorithm_owner");
        assert_eq!("data_steward".parse::<Role>().unwrap(), Role::DataSteward);
        assert!("ao".parse::<Role>().is_err());
        assert_eq!(
            serde_json::to_string(&Technology::AzureCvm).unwrap(),
            "\"azure-cvm\""
        );
        assert_eq!(
            serde_json::from_str::<Technology>("\"sev-snp\"").unwrap(),
            Technology::SevSnp
        );
        let e = "sgx".parse::<Technology>().unwrap_err();
        assert!(e.to_string().contains("tdx"), "{e}");
        for t in Technology::ALL {
            assert_eq!(t.as_str().parse::<Technology>().unwrap(), *t);
            assert!(!t.compute_choices().is_empty());
        }
    }

    #[test]
    fn compute_choices() {
        assert!(Technology::Simulated.allows_compute(2, 4));
        assert!(!Technology::Simulated.allows_compute(2, 8));
        assert!(Technology::AzureCvm.allows_compute(96, 384));
        assert!(!Technology::Tdx.allows_compute(96, 384));
        assert!(!Technology::Tdx.allows_compute(0, 0));
    }

    #[test]
    fn states() {
        assert!(ProjectState::Active.allows_new_runs());
        assert!(!ProjectState::Paused.allows_new_runs());
        assert!(ProjectState::Paused.allows_writes());
        assert!(!ProjectState::Deactivated.allows_writes());
    }

    #[test]
    fn names() {
        let n = Name::parse("  Chest  X-ray (v2) ").unwrap();
        assert_eq!(n.as_str(), "Chest X-ray (v2)");
        assert_eq!(n.file_stem(), "chest-x-ray-v2");
        assert_eq!(
            Name::parse("Überprüfung").unwrap().file_stem(),
            "berpr-fung"
        );
        assert_eq!(Name::parse("Ωμέγα").unwrap().file_stem(), "project");
        assert_eq!(Name::parse("   "), Err(NameError::Empty));
        assert_eq!(Name::parse("a/b"), Err(NameError::BadChar('/')));
        assert_eq!(Name::parse(&"x".repeat(101)), Err(NameError::TooLong));
        assert!(serde_json::from_str::<Name>("\"a\\u0000b\"").is_err());
    }
}
