//! The typed result of a successful verification.

use serde::{Deserialize, Serialize};

use crate::ReportData;

/// A TEE technology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Technology {
    /// No TEE: evidence signed by a per-site software key. For development and the demo only.
    Simulated,
    /// AMD SEV-SNP, report read from `/dev/sev-guest`.
    SevSnp,
    /// An Azure confidential VM: SEV-SNP behind Azure's paravisor and vTPM.
    AzureSnpVtpm,
    /// Intel TDX, DCAP quote.
    Tdx,
}

impl Technology {
    /// The stable name used in configuration and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Technology::Simulated => "simulated",
            Technology::SevSnp => "sev-snp",
            Technology::AzureSnpVtpm => "azure-snp-vtpm",
            Technology::Tdx => "tdx",
        }
    }
}

impl std::fmt::Display for Technology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Technology::Simulated => f.write_str("simulated (NOT a TEE)"),
            t => f.write_str(t.as_str()),
        }
    }
}

impl std::str::FromStr for Technology {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Ok(match s {
            "simulated" => Technology::Simulated,
            "sev-snp" => Technology::SevSnp,
            "azure-snp-vtpm" => Technology::AzureSnpVtpm,
            "tdx" => Technology::Tdx,
            other => {
                return Err(crate::Error::Config(format!(
                    "unknown technology {other:?}"
                )))
            }
        })
    }
}

/// A launch measurement (SNP `MEASUREMENT`, TDX `MRTD`, simulated: configured), 48 bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Measurement(pub Vec<u8>);

impl Measurement {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl std::fmt::Debug for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Measurement({})", self.to_hex())
    }
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Measurement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Measurement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s)
            .map(Measurement)
            .map_err(serde::de::Error::custom)
    }
}

/// Security version numbers of the trusted computing base, per technology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TcbClaims {
    /// Simulated: a configured version number, meaning nothing about any hardware.
    Simulated {
        /// The simulated SVN.
        svn: u32,
    },
    /// SEV-SNP reported TCB (the TCB the VCEK was derived for).
    Snp(crate::snp::TcbVersion),
    /// TDX: TEE TCB SVN, PCK SGX components and PCE SVN, QE SVN, and the computed status.
    Tdx(crate::tdx::TdxTcb),
}

/// What a verifier established about verified evidence.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The technology.
    pub technology: Technology,
    /// True only for [`Technology::Simulated`]: no hardware stands behind these claims.
    pub simulated: bool,
    /// The launch measurement.
    pub measurement: Measurement,
    /// The TCB security versions.
    pub tcb: TcbClaims,
    /// The report data (already checked against the expected binding).
    pub report_data: ReportData,
    /// Whether the TEE allows a debugger (SNP policy DEBUG bit, TDX TD attribute DEBUG).
    pub debug: bool,
    /// The guest policy / TD attributes word as the hardware reported it.
    pub policy: u64,
    /// Further technology-specific claims (names and values), for the audit log.
    pub details: Vec<(String, String)>,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct(if self.simulated {
            "Claims[SIMULATED]"
        } else {
            "Claims"
        });
        d.field("technology", &self.technology)
            .field("simulated", &self.simulated)
            .field("measurement", &self.measurement)
            .field("tcb", &self.tcb)
            .field("report_data", &self.report_data)
            .field("debug", &self.debug)
            .field("policy", &format_args!("{:#x}", self.policy))
            .field("details", &self.details)
            .finish()
    }
}

impl std::fmt::Display for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.simulated {
            f.write_str("SIMULATED attestation (no TEE): ")?;
        }
        write!(
            f,
            "{} measurement {} debug {} policy {:#x}",
            self.technology, self.measurement, self.debug, self.policy
        )
    }
}
