//! Verifier configuration: one tagged enum, parsed once, and a factory returning
//! `Arc<dyn Verifier>` (what the broker stores per project).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::azure::{AzurePolicy, AzureSnpVtpmVerifier};
use crate::error::{Error, Result};
use crate::sim::SimulatedVerifier;
use crate::snp::{AmdChain, SnpPolicy, SnpVerifier, TcbVersion};
use crate::tdx::{TdxPolicy, TdxVerifier};
use crate::{ReferenceMeasurements, Technology, Verifier};

/// How to build the verifier of one technology.
///
/// ```
/// use sealroom_attest::config::VerifierConfig;
/// let cfg: VerifierConfig = serde_json::from_str(
///     r#"{"technology":"tdx","measurements":"any-checked-by-caller",
///         "accepted_tcb_status":["UpToDate"],"allow_debug":false}"#,
/// ).unwrap();
/// let verifier = cfg.build().unwrap();
/// assert_eq!(verifier.technology(), sealroom_attest::Technology::Tdx);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "technology", rename_all = "kebab-case")]
pub enum VerifierConfig {
    /// Simulated (not a TEE): the site's registered Ed25519 public key, hex.
    Simulated {
        /// 32-byte Ed25519 public key, hex.
        site_public_key: String,
    },
    /// AMD SEV-SNP.
    SevSnp(SnpConfig),
    /// Azure CVM (SNP behind vTPM).
    AzureSnpVtpm {
        /// The SNP part.
        #[serde(flatten)]
        snp: SnpConfig,
        /// PCRs (index, SHA-256 value hex) that must have these values.
        #[serde(default)]
        required_pcrs: Vec<(u8, String)>,
    },
    /// Intel TDX.
    Tdx {
        /// Accepted MRTD values.
        measurements: ReferenceMeasurements,
        /// Accepted TCB statuses.
        accepted_tcb_status: Vec<String>,
        /// Accept debuggable TDs.
        #[serde(default)]
        allow_debug: bool,
    },
}

/// SEV-SNP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpConfig {
    /// Accepted launch measurements.
    pub measurements: ReferenceMeasurements,
    /// Minimum reported TCB.
    #[serde(default)]
    pub min_tcb: TcbVersion,
    /// Accept guests whose policy allows debugging.
    #[serde(default)]
    pub allow_debug: bool,
    /// AMD chains (PEM: ASK/ASVK and ARK) trusted besides the built-in Milan chain.
    #[serde(default)]
    pub extra_amd_chains_pem: Vec<String>,
}

impl SnpConfig {
    fn chains(&self) -> Result<Vec<AmdChain>> {
        let mut chains = vec![AmdChain::milan()?];
        for pem in &self.extra_amd_chains_pem {
            chains.push(AmdChain::from_pem(pem.as_bytes())?);
        }
        Ok(chains)
    }

    fn policy(&self) -> SnpPolicy {
        SnpPolicy {
            measurements: self.measurements.clone(),
            min_tcb: self.min_tcb,
            allow_debug: self.allow_debug,
        }
    }
}

impl VerifierConfig {
    /// The technology this configuration verifies.
    pub fn technology(&self) -> Technology {
        match self {
            VerifierConfig::Simulated { .. } => Technology::Simulated,
            VerifierConfig::SevSnp(_) => Technology::SevSnp,
            VerifierConfig::AzureSnpVtpm { .. } => Technology::AzureSnpVtpm,
            VerifierConfig::Tdx { .. } => Technology::Tdx,
        }
    }

    /// Builds the verifier.
    pub fn build(&self) -> Result<Arc<dyn Verifier>> {
        Ok(match self {
            VerifierConfig::Simulated { site_public_key } => {
                let key = hex::decode(site_public_key)
                    .map_err(|e| Error::Config(format!("site_public_key: {e}")))?;
                Arc::new(SimulatedVerifier::new(&key)?)
            }
            VerifierConfig::SevSnp(c) => Arc::new(SnpVerifier::new(c.chains()?, c.policy())?),
            VerifierConfig::AzureSnpVtpm { snp, required_pcrs } => {
                let required_pcrs = required_pcrs
                    .iter()
                    .map(|(i, v)| {
                        let v = hex::decode(v)
                            .ok()
                            .and_then(|v| <[u8; 32]>::try_from(v).ok())
                            .ok_or_else(|| Error::Config(format!("PCR{i}: not 32 bytes of hex")))?;
                        if *i > 23 {
                            return Err(Error::Config(format!("PCR index {i} out of range")));
                        }
                        Ok((*i, v))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(AzureSnpVtpmVerifier::new(
                    snp.chains()?,
                    AzurePolicy {
                        snp: snp.policy(),
                        required_pcrs,
                    },
                )?)
            }
            VerifierConfig::Tdx {
                measurements,
                accepted_tcb_status,
                allow_debug,
            } => {
                if accepted_tcb_status.is_empty() {
                    return Err(Error::Config("accepted_tcb_status is empty".into()));
                }
                Arc::new(TdxVerifier::new(TdxPolicy {
                    measurements: measurements.clone(),
                    accepted_tcb_status: accepted_tcb_status.clone(),
                    allow_debug: *allow_debug,
                })?)
            }
        })
    }
}
