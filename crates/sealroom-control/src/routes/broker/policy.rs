//! A project's attestation policy: which enclaves may receive its keys.
//!
//! The data steward sets it (the data's owner decides); without one, the project's technology
//! has a default: `simulated` accepts any measurement signed by the claiming site's registered
//! key, every hardware technology accepts **nothing** until reference measurements are listed.
//!
//! The verifiers of `sealroom-attest` are built here to check signatures, certificate chains
//! and the report-data binding only (`AnyCheckedByCaller`, no TCB minimum, debug allowed); this
//! module then applies the policy to the verified claims, so that every refusal names which of
//! the steps refused.

use std::sync::Arc;

use sealroom_attest::config::{SnpConfig, VerifierConfig};
use sealroom_attest::snp::{AmdChain, TcbVersion};
use sealroom_attest::{Claims, Measurement, ReferenceMeasurements, TcbClaims, Verifier};
use sealroom_types::Technology;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Bytes of a launch measurement (SNP `MEASUREMENT`, TDX `MRTD`, simulated).
pub const MEASUREMENT_LEN: usize = 48;
/// Most reference measurements a policy lists.
pub const MAX_MEASUREMENTS: usize = 64;
/// Most extra AMD chains a policy names.
pub const MAX_EXTRA_CHAINS: usize = 4;
/// Largest PEM of one extra AMD chain.
pub const MAX_CHAIN_PEM: usize = 16 * 1024;

/// Intel's TCB status names that a policy may accept (`Revoked` is never accepted).
pub const TDX_TCB_STATUSES: &[&str] = &[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
];

/// A PCR value an Azure CVM must report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PcrValue {
    /// PCR index, 0..=23.
    pub index: u8,
    /// Its SHA-256 bank value, hex.
    pub sha256: String,
}

/// The minimum SEV-SNP TCB (security patch levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MinSnpTcb {
    /// Boot loader SPL.
    #[serde(default)]
    pub bootloader: u8,
    /// PSP OS (TEE) SPL.
    #[serde(default)]
    pub tee: u8,
    /// SNP firmware SPL.
    #[serde(default)]
    pub snp: u8,
    /// CPU microcode SPL.
    #[serde(default)]
    pub microcode: u8,
    /// FMC SPL (Turin and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

impl MinSnpTcb {
    fn tcb(&self) -> TcbVersion {
        TcbVersion {
            bootloader: self.bootloader,
            tee: self.tee,
            snp: self.snp,
            microcode: self.microcode,
            fmc: self.fmc,
        }
    }
}

/// Which enclaves may receive a project's keys. Fields that do not apply to the project's
/// technology are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationPolicy {
    /// Accepted launch measurements (48 bytes each, hex): SNP `MEASUREMENT` (for Azure, the
    /// paravisor's), TDX `MRTD`, or the simulated attester's configured value. Empty: a
    /// hardware project accepts nothing; a simulated project accepts any.
    #[serde(default)]
    pub reference_measurements: Vec<String>,
    /// Accept TEEs that allow a debugger (default false).
    #[serde(default)]
    pub allow_debug: bool,
    /// `sev-snp`, `azure-cvm`: the minimum reported TCB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_snp_tcb: Option<MinSnpTcb>,
    /// `tdx`: accepted TCB statuses (default `["UpToDate"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_tdx_tcb_status: Vec<String>,
    /// `azure-cvm`: PCRs that must have these values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_pcrs: Vec<PcrValue>,
    /// `sev-snp`, `azure-cvm`: AMD chains (PEM: ASK/ASVK and ARK) trusted besides the built-in
    /// Milan chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_amd_chains_pem: Vec<String>,
    /// `simulated`: the minimum SVN of the simulated report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_simulated_svn: Option<u32>,
}

/// A policy refused at the release: which rule, and why.
#[derive(Debug, Clone)]
pub struct PolicyRefusal {
    /// `measurement`, `tcb` or `debug`.
    pub rule: &'static str,
    /// Why, for the audit log and the agent.
    pub message: String,
}

/// The `sealroom-attest` name of a project technology.
pub fn attest_technology(t: Technology) -> sealroom_attest::Technology {
    match t {
        Technology::Simulated => sealroom_attest::Technology::Simulated,
        Technology::SevSnp => sealroom_attest::Technology::SevSnp,
        Technology::Tdx => sealroom_attest::Technology::Tdx,
        Technology::AzureCvm => sealroom_attest::Technology::AzureSnpVtpm,
    }
}

fn is_snp(t: Technology) -> bool {
    matches!(t, Technology::SevSnp | Technology::AzureCvm)
}

impl AttestationPolicy {
    /// The policy a project has until its data steward sets one.
    pub fn default_for(t: Technology) -> Self {
        AttestationPolicy {
            accepted_tdx_tcb_status: if t == Technology::Tdx {
                vec!["UpToDate".into()]
            } else {
                Vec::new()
            },
            ..AttestationPolicy::default()
        }
    }

    /// Checks a policy sent for a project of technology `t` and returns it normalized
    /// (lowercase hex, duplicates removed, TDX statuses defaulted), or why it is refused.
    pub fn validated(mut self, t: Technology) -> Result<Self, String> {
        if self.reference_measurements.len() > MAX_MEASUREMENTS {
            return Err(format!(
                "at most {MAX_MEASUREMENTS} reference measurements are accepted"
            ));
        }
        let mut seen = Vec::new();
        for m in &self.reference_measurements {
            let m = m.trim().to_ascii_lowercase();
            match hex::decode(&m) {
                Ok(b) if b.len() == MEASUREMENT_LEN => {}
                _ => {
                    return Err(format!(
                        "reference measurement {:?} is not {MEASUREMENT_LEN} bytes of hex",
                        m.chars().take(120).collect::<String>()
                    ))
                }
            }
            if !seen.contains(&m) {
                seen.push(m);
            }
        }
        self.reference_measurements = seen;
        let tech = t.as_str();
        if self.min_snp_tcb.is_some() && !is_snp(t) {
            return Err(format!(
                "min_snp_tcb applies to sev-snp and azure-cvm projects, not {tech}"
            ));
        }
        if !self.extra_amd_chains_pem.is_empty() && !is_snp(t) {
            return Err(format!(
                "extra_amd_chains_pem applies to sev-snp and azure-cvm projects, not {tech}"
            ));
        }
        if self.extra_amd_chains_pem.len() > MAX_EXTRA_CHAINS {
            return Err(format!(
                "at most {MAX_EXTRA_CHAINS} extra AMD chains are accepted"
            ));
        }
        for (i, pem) in self.extra_amd_chains_pem.iter().enumerate() {
            if pem.len() > MAX_CHAIN_PEM {
                return Err(format!(
                    "extra AMD chain {i} is longer than {MAX_CHAIN_PEM} bytes"
                ));
            }
            AmdChain::from_pem(pem.as_bytes()).map_err(|e| format!("extra AMD chain {i}: {e}"))?;
        }
        if !self.accepted_tdx_tcb_status.is_empty() && t != Technology::Tdx {
            return Err(format!(
                "accepted_tdx_tcb_status applies to tdx projects, not {tech}"
            ));
        }
        if t == Technology::Tdx {
            if self.accepted_tdx_tcb_status.is_empty() {
                self.accepted_tdx_tcb_status = vec!["UpToDate".into()];
            }
            for s in &self.accepted_tdx_tcb_status {
                if !TDX_TCB_STATUSES.contains(&s.as_str()) {
                    return Err(format!(
                        "TCB status {:?} is not one of {}",
                        s.chars().take(64).collect::<String>(),
                        TDX_TCB_STATUSES.join(", ")
                    ));
                }
            }
            self.accepted_tdx_tcb_status.dedup();
        }
        if !self.required_pcrs.is_empty() && t != Technology::AzureCvm {
            return Err(format!(
                "required_pcrs applies to azure-cvm projects, not {tech}"
            ));
        }
        if self.required_pcrs.len() > 24 {
            return Err("at most 24 required PCRs".into());
        }
        for p in &mut self.required_pcrs {
            if p.index > 23 {
                return Err(format!("PCR index {} is out of range 0..=23", p.index));
            }
            p.sha256 = p.sha256.trim().to_ascii_lowercase();
            if hex::decode(&p.sha256).map(|b| b.len()) != Ok(32) {
                return Err(format!("PCR{} value is not 32 bytes of hex", p.index));
            }
        }
        if self.min_simulated_svn.is_some() && t != Technology::Simulated {
            return Err(format!(
                "min_simulated_svn applies to simulated projects, not {tech}"
            ));
        }
        Ok(self)
    }

    /// The verifier of technology `t` that checks signatures, chains and report data, leaving
    /// measurement, TCB and debug to [`Self::check_claims`]. `site_key`: the claiming site's
    /// registered simulated-attester key (simulated projects only).
    pub fn verifier(
        &self,
        t: Technology,
        site_key: Option<&[u8; 32]>,
    ) -> Result<Arc<dyn Verifier>, String> {
        let snp = || SnpConfig {
            measurements: ReferenceMeasurements::AnyCheckedByCaller,
            min_tcb: TcbVersion::default(),
            allow_debug: true,
            extra_amd_chains_pem: self.extra_amd_chains_pem.clone(),
        };
        let config = match t {
            Technology::Simulated => VerifierConfig::Simulated {
                site_public_key: hex::encode(site_key.ok_or_else(|| {
                    "the site has registered no simulated-attester key \
                     (PUT /api/v1/agent/attestation-key)"
                        .to_string()
                })?),
            },
            Technology::SevSnp => VerifierConfig::SevSnp(snp()),
            Technology::AzureCvm => VerifierConfig::AzureSnpVtpm {
                snp: snp(),
                required_pcrs: self
                    .required_pcrs
                    .iter()
                    .map(|p| (p.index, p.sha256.clone()))
                    .collect(),
            },
            Technology::Tdx => VerifierConfig::Tdx {
                measurements: ReferenceMeasurements::AnyCheckedByCaller,
                accepted_tcb_status: TDX_TCB_STATUSES.iter().map(|s| s.to_string()).collect(),
                allow_debug: true,
            },
        };
        config.build().map_err(|e| e.to_string())
    }

    /// Applies the policy to verified claims; returns the TCB verdict to record.
    pub fn check_claims(&self, t: Technology, claims: &Claims) -> Result<String, PolicyRefusal> {
        let refuse = |rule, message: String| PolicyRefusal { rule, message };
        if self.reference_measurements.is_empty() {
            if t != Technology::Simulated {
                return Err(refuse(
                    "measurement",
                    format!(
                        "the project's attestation policy lists no reference measurements, so no \
                         {} enclave is accepted; the data steward sets them with \
                         PUT /api/v1/projects/{{project_id}}/attestation-policy",
                        t.as_str()
                    ),
                ));
            }
        } else {
            let list = self
                .reference_measurements
                .iter()
                .filter_map(|m| hex::decode(m).ok().map(Measurement))
                .collect();
            ReferenceMeasurements::OneOf(list)
                .check(&claims.measurement.0)
                .map_err(|e| refuse("measurement", e.to_string()))?;
        }
        if claims.debug && !self.allow_debug {
            return Err(refuse(
                "debug",
                "the TEE allows a debugger and the project's policy forbids debug".into(),
            ));
        }
        let verdict = match &claims.tcb {
            TcbClaims::Simulated { svn } => {
                if let Some(min) = self.min_simulated_svn {
                    if *svn < min {
                        return Err(refuse(
                            "tcb",
                            format!("simulated SVN {svn} is below the minimum {min}"),
                        ));
                    }
                }
                "simulated".to_string()
            }
            TcbClaims::Snp(tcb) => {
                if let Some(min) = &self.min_snp_tcb {
                    tcb.check_at_least(&min.tcb())
                        .map_err(|e| refuse("tcb", e.to_string()))?;
                }
                format!(
                    "snp bootloader={} tee={} snp={} microcode={}{}",
                    tcb.bootloader,
                    tcb.tee,
                    tcb.snp,
                    tcb.microcode,
                    tcb.fmc.map(|f| format!(" fmc={f}")).unwrap_or_default()
                )
            }
            TcbClaims::Tdx(tcb) => {
                if !self.accepted_tdx_tcb_status.contains(&tcb.status) {
                    return Err(refuse(
                        "tcb",
                        format!(
                            "TCB status {} is not accepted by the project's policy ({})",
                            tcb.status,
                            self.accepted_tdx_tcb_status.join(", ")
                        ),
                    ));
                }
                tcb.status.clone()
            }
        };
        Ok(verdict)
    }
}
