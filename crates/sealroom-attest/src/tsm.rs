//! Hardware attester through the Linux configfs-tsm report interface
//! (`/sys/kernel/config/tsm/report`, Linux 6.7+), feature `configfs-tsm`.
//!
//! Plain file I/O, no `unsafe` and no extra crate: the kernel's `sev-guest` driver does the
//! firmware call. Only SEV-SNP is produced here; a TDX quote additionally needs PCS collateral,
//! which the agent must obtain separately.
//!
//! Untested on hardware in this repository (no SNP machine is available to its CI).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::snp::{find_cert, SnpEvidence, GUID_VCEK, GUID_VLEK};
use crate::{Attester, ReportData, Technology};

/// The usual mount point of the report interface.
pub const DEFAULT_TSM_ROOT: &str = "/sys/kernel/config/tsm/report";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Produces SEV-SNP evidence ([`SnpEvidence`]) from inside an SNP guest.
#[derive(Debug, Clone)]
pub struct ConfigfsTsmSnpAttester {
    root: PathBuf,
    vcek_der: Option<Vec<u8>>,
}

impl ConfigfsTsmSnpAttester {
    /// Uses `root` (normally [`DEFAULT_TSM_ROOT`]); `vcek_der` is used when the host did not
    /// provision the VCEK in the report's certificate table.
    pub fn new(root: impl Into<PathBuf>, vcek_der: Option<Vec<u8>>) -> Self {
        ConfigfsTsmSnpAttester {
            root: root.into(),
            vcek_der,
        }
    }
}

fn io(what: &'static str, path: &Path, e: std::io::Error) -> Error {
    Error::Config(format!("configfs-tsm {what} {}: {e}", path.display()))
}

fn read_limited(path: &Path, max: usize) -> Result<Vec<u8>> {
    let v = std::fs::read(path).map_err(|e| io("read", path, e))?;
    if v.len() > max {
        return Err(Error::TooLarge {
            what: "configfs-tsm blob",
            len: v.len(),
            max,
        });
    }
    Ok(v)
}

impl Attester for ConfigfsTsmSnpAttester {
    fn technology(&self) -> Technology {
        Technology::SevSnp
    }

    fn attest(&self, report_data: &ReportData) -> Result<Vec<u8>> {
        let name = format!(
            "sealroom-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.root.join(name);
        std::fs::create_dir(&dir).map_err(|e| io("mkdir", &dir, e))?;
        let result = self.attest_in(&dir, report_data);
        let _ = std::fs::remove_dir(&dir);
        result
    }
}

impl ConfigfsTsmSnpAttester {
    fn attest_in(&self, dir: &Path, report_data: &ReportData) -> Result<Vec<u8>> {
        let provider =
            std::fs::read_to_string(dir.join("provider")).map_err(|e| io("read", dir, e))?;
        if provider.trim() != "sev_guest" {
            return Err(Error::Config(format!(
                "configfs-tsm provider is {:?}, not sev_guest",
                provider.trim()
            )));
        }
        std::fs::write(dir.join("inblob"), report_data.as_bytes())
            .map_err(|e| io("write", dir, e))?;
        let gen_before =
            std::fs::read_to_string(dir.join("generation")).map_err(|e| io("read", dir, e))?;
        let report = read_limited(&dir.join("outblob"), 16 * 1024)?;
        let aux = read_limited(&dir.join("auxblob"), 64 * 1024).unwrap_or_default();
        let gen_after =
            std::fs::read_to_string(dir.join("generation")).map_err(|e| io("read", dir, e))?;
        if gen_before != gen_after {
            return Err(Error::Config(
                "configfs-tsm report changed while reading (concurrent writer)".into(),
            ));
        }
        let vcek = find_cert(&aux, &GUID_VCEK)?
            .or(find_cert(&aux, &GUID_VLEK)?)
            .or_else(|| self.vcek_der.clone())
            .ok_or_else(|| {
                Error::Config(
                    "no VCEK in the report's certificate table and none configured".into(),
                )
            })?;
        Ok(SnpEvidence::new(&report, &vcek).to_bytes())
    }
}
