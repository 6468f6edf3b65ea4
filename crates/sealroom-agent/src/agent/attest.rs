//! Attestation and key release (DESIGN.md §3 "Key release"), the agent's side.
//!
//! For each run the agent makes an ephemeral X25519 key pair, asks the broker for a single-use
//! nonce, has its [`Attester`] put `key_release_binding(nonce, run id, enclave public key,
//! workload digest)` in the evidence's report data, posts the evidence, and opens each released
//! CEK with the ephemeral key, checking that it is bound to exactly this project, run, role and
//! key id. The ephemeral key is dropped (zeroized) as soon as the CEKs are open.
//!
//! The default attester is **simulated** ([`sealroom_attest::sim::SimulatedAttester`], not a
//! TEE): a per-site Ed25519 key kept in `<state dir>/sim-attester.key` (PKCS#8, mode 0600) and
//! registered with the server on the agent's first start. The broker accepts its evidence only for
//! projects created as `simulated`.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sealroom_attest::sim::SimulatedAttester;
use sealroom_attest::{key_release_binding, Attester};
use sealroom_envelope::recipient::{EnclaveKeyPair, ReleaseInfo, SealedCek, X25519_LEN};
use sealroom_envelope::Cek;
use zeroize::Zeroizing;

use super::client::{Client, ClientError, EvidenceBody, ReleaseRequest, ReleaseResponse};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The simulated attester's key file in the agent's state directory.
pub const SIM_KEY_FILE: &str = "sim-attester.key";
/// Largest key file read.
const MAX_KEY_FILE: u64 = 4096;

/// Errors attesting or opening the released keys.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The broker (or the network) refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The attester could not produce evidence.
    #[error("the attester failed: {0}")]
    Attester(#[from] sealroom_attest::Error),
    /// A released key could not be opened or is not the one announced.
    #[error("a released key cannot be used: {0}")]
    Key(String),
    /// The simulated attester's key file cannot be read or written.
    #[error("{path}: {message}")]
    KeyFile { path: String, message: String },
}

/// Result alias of this module.
pub type Result<T, E = AttestError> = std::result::Result<T, E>;

/// The CEKs a run obtained. Zeroized on drop (each [`Cek`] is).
#[derive(Default)]
pub struct RunKeys {
    /// The AO's CEK: the package's secret files, and the trained model is sealed with it.
    pub ao: Option<Cek>,
    /// The DS's CEK: the dataset.
    pub ds: Option<Cek>,
}

impl std::fmt::Debug for RunKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunKeys")
            .field("ao", &self.ao.as_ref().map(|c| c.key_id().to_string()))
            .field("ds", &self.ds.as_ref().map(|c| c.key_id().to_string()))
            .finish()
    }
}

/// Loads the site's simulated attester from `state_dir`, creating its key (mode 0600) the first
/// time. Returns the attester and whether the key is new.
pub fn load_or_create_sim_attester(
    state_dir: &Path,
    measurement: [u8; 48],
) -> Result<(SimulatedAttester, bool)> {
    let path = state_dir.join(SIM_KEY_FILE);
    let err = |message: String| AttestError::KeyFile {
        path: path.display().to_string(),
        message,
    };
    match std::fs::metadata(&path) {
        Ok(meta) => {
            use std::os::unix::fs::PermissionsExt;
            if !meta.is_file() || meta.len() > MAX_KEY_FILE {
                return Err(err("not a key file".into()));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(err(format!(
                    "the key file is readable by others (mode {:o}); chmod 600 it",
                    meta.permissions().mode() & 0o777
                )));
            }
            let der = Zeroizing::new(std::fs::read(&path).map_err(|e| err(e.to_string()))?);
            let attester = SimulatedAttester::from_pkcs8(&der, measurement)?;
            Ok((attester, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dir_private(state_dir).map_err(|e| AttestError::KeyFile {
                path: state_dir.display().to_string(),
                message: e.to_string(),
            })?;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| err("cannot generate an Ed25519 key".into()))?;
            let der = Zeroizing::new(pkcs8.as_ref().to_vec());
            write_new_private(&path, &der).map_err(|e| err(e.to_string()))?;
            let attester = SimulatedAttester::from_pkcs8(&der, measurement)?;
            Ok((attester, true))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

fn create_dir_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a new file with mode 0600 (refusing to replace one).
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// What a key release needs to know about the run.
#[derive(Debug, Clone)]
pub struct ReleaseContext {
    /// The project id.
    pub project_id: String,
    /// The run id.
    pub run_id: String,
    /// The workload digest the agent verified the package against.
    pub workload_digest: String,
}

/// Attests and obtains the run's CEKs (blocking; call it on a blocking thread).
pub fn obtain_keys(
    client: &Client,
    attester: &dyn Attester,
    ctx: &ReleaseContext,
) -> Result<RunKeys> {
    let enclave = EnclaveKeyPair::generate().map_err(|e| AttestError::Key(e.to_string()))?;
    let nonce_b64 = client.nonce(&ctx.run_id)?.nonce;
    let nonce = Zeroizing::new(
        B64.decode(nonce_b64.trim())
            .map_err(|_| AttestError::Key("the broker's nonce is not base64".into()))?,
    );
    let request = make_release_request(attester, &enclave, ctx, &nonce, &nonce_b64)?;
    let released = client.release(&request)?;
    open_released(&enclave, ctx, &released)
}

/// The release request: evidence binding the nonce, run, enclave key and workload digest.
pub fn make_release_request(
    attester: &dyn Attester,
    enclave: &EnclaveKeyPair,
    ctx: &ReleaseContext,
    nonce: &[u8],
    nonce_as_received: &str,
) -> Result<ReleaseRequest> {
    let public = enclave.public_key().as_bytes();
    let report_data =
        key_release_binding(nonce, &ctx.run_id, public, ctx.workload_digest.as_bytes())?;
    let evidence = attester.attest(&report_data)?;
    Ok(ReleaseRequest {
        run_id: ctx.run_id.clone(),
        nonce: nonce_as_received.to_owned(),
        evidence: EvidenceBody {
            technology: attester.technology().as_str().to_owned(),
            data: B64.encode(&evidence),
        },
        enclave_public_key: B64.encode(public),
        workload_digest: ctx.workload_digest.clone(),
    })
}

/// Opens each released CEK: bound to this project, run, role and key id, and of that key id.
pub fn open_released(
    enclave: &EnclaveKeyPair,
    ctx: &ReleaseContext,
    released: &ReleaseResponse,
) -> Result<RunKeys> {
    let mut keys = RunKeys::default();
    for r in &released.releases {
        let (short, slot) = match r.role.as_str() {
            "algorithm_owner" | "ao" => ("ao", &mut keys.ao),
            "data_steward" | "ds" => ("ds", &mut keys.ds),
            other => {
                return Err(AttestError::Key(format!(
                    "the broker released a key of an unknown role {:?}",
                    other.chars().take(32).collect::<String>()
                )))
            }
        };
        if slot.is_some() {
            return Err(AttestError::Key(format!("two keys released for {short}")));
        }
        let info = ReleaseInfo::new(&ctx.project_id, &ctx.run_id, short, &r.cek_key_id).to_bytes();
        if let Some(sent) = &r.info {
            let sent = B64
                .decode(sent.trim())
                .map_err(|_| AttestError::Key(format!("the {short} key's info is not base64")))?;
            if sent != info {
                return Err(AttestError::Key(format!(
                    "the {short} key is bound to another project, run or key id"
                )));
            }
        }
        let compact = Zeroizing::new(
            B64.decode(r.sealed_cek.trim())
                .map_err(|_| AttestError::Key(format!("the sealed {short} key is not base64")))?,
        );
        if compact.len() <= X25519_LEN {
            return Err(AttestError::Key(format!(
                "the sealed {short} key is {} bytes",
                compact.len()
            )));
        }
        let sealed = SealedCek {
            enc: compact[..X25519_LEN].to_vec(),
            ciphertext: compact[X25519_LEN..].to_vec(),
            info: info.clone(),
        };
        let cek = enclave
            .open(&sealed, &info)
            .map_err(|e| AttestError::Key(format!("the {short} key does not open: {e}")))?;
        if !cek.key_id().to_string().eq_ignore_ascii_case(&r.cek_key_id) {
            return Err(AttestError::Key(format!(
                "the {short} key's id is {}, the broker announced {}",
                cek.key_id(),
                r.cek_key_id
            )));
        }
        *slot = Some(cek);
    }
    Ok(keys)
}

/// Where the simulated attester's key lives.
pub fn sim_key_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SIM_KEY_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealroom_attest::sim::SimulatedVerifier;
    use sealroom_attest::{VerificationTime, Verifier};
    use sealroom_envelope::recipient::seal_cek;

    use crate::agent::client::ReleasedKey;

    fn ctx() -> ReleaseContext {
        ReleaseContext {
            project_id: "prj_1".into(),
            run_id: "run_1".into(),
            workload_digest: "ab".repeat(32),
        }
    }

    /// The evidence binds the nonce, run, enclave key and digest exactly as the broker
    /// recomputes them (`routes/broker.rs`), and verifies with the site's registered key.
    #[test]
    fn evidence_binds_the_release() {
        let dir = tempfile::tempdir().unwrap();
        let (attester, created) = load_or_create_sim_attester(dir.path(), [7; 48]).unwrap();
        assert!(created);
        let enclave = EnclaveKeyPair::generate().unwrap();
        let nonce = [5u8; 32];
        let req =
            make_release_request(&attester, &enclave, &ctx(), &nonce, &B64.encode(nonce)).unwrap();
        assert_eq!(req.evidence.technology, "simulated");
        assert_eq!(
            B64.decode(&req.enclave_public_key).unwrap(),
            enclave.public_key().as_bytes()
        );
        let verifier = SimulatedVerifier::new(&attester.public_key()).unwrap();
        let evidence = B64.decode(&req.evidence.data).unwrap();
        let expected = key_release_binding(
            &nonce,
            "run_1",
            enclave.public_key().as_bytes(),
            ctx().workload_digest.as_bytes(),
        )
        .unwrap();
        verifier
            .verify(&evidence, &expected, VerificationTime::now())
            .unwrap();
        // Another digest (or run, or nonce) is another binding: refused.
        let other = key_release_binding(
            &nonce,
            "run_1",
            enclave.public_key().as_bytes(),
            b"another digest",
        )
        .unwrap();
        assert!(verifier
            .verify(&evidence, &other, VerificationTime::now())
            .is_err());
    }

    #[test]
    fn sim_key_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (a, created) = load_or_create_sim_attester(&state, [0; 48]).unwrap();
        assert!(created);
        let mode = std::fs::metadata(sim_key_path(&state))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (b, created) = load_or_create_sim_attester(&state, [0; 48]).unwrap();
        assert!(!created);
        assert_eq!(a.public_key(), b.public_key());
        // A key file others can read is refused.
        std::fs::set_permissions(sim_key_path(&state), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = load_or_create_sim_attester(&state, [0; 48]).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    fn released(role: &str, cek: &Cek, enclave: &EnclaveKeyPair, info: &[u8]) -> ReleasedKey {
        let sealed = seal_cek(cek, enclave.public_key(), info).unwrap();
        let mut compact = sealed.enc.clone();
        compact.extend_from_slice(&sealed.ciphertext);
        ReleasedKey {
            role: role.into(),
            cek_key_id: cek.key_id().to_string(),
            sealed_cek: B64.encode(compact),
            info: Some(B64.encode(info)),
        }
    }

    /// CEKs sealed as the broker seals them open, and one bound to another run does not.
    #[test]
    fn released_keys_open_only_for_this_run() {
        let enclave = EnclaveKeyPair::generate().unwrap();
        let (ao, ds) = (Cek::generate().unwrap(), Cek::generate().unwrap());
        let info = |role: &str, cek: &Cek| {
            ReleaseInfo::new("prj_1", "run_1", role, &cek.key_id().to_string()).to_bytes()
        };
        let resp = ReleaseResponse {
            releases: vec![
                released("algorithm_owner", &ao, &enclave, &info("ao", &ao)),
                released("data_steward", &ds, &enclave, &info("ds", &ds)),
            ],
        };
        let keys = open_released(&enclave, &ctx(), &resp).unwrap();
        assert_eq!(keys.ao.unwrap().expose(), ao.expose());
        assert_eq!(keys.ds.unwrap().expose(), ds.expose());

        // Sealed for another run.
        let wrong = ReleaseInfo::new("prj_1", "run_2", "ds", &ds.key_id().to_string()).to_bytes();
        let resp = ReleaseResponse {
            releases: vec![released("data_steward", &ds, &enclave, &wrong)],
        };
        let err = open_released(&enclave, &ctx(), &resp).unwrap_err();
        assert!(err.to_string().contains("bound to another"), "{err}");
        // Same, without the info field: the HPKE open fails.
        let mut r = released("data_steward", &ds, &enclave, &wrong);
        r.info = None;
        let err =
            open_released(&enclave, &ctx(), &ReleaseResponse { releases: vec![r] }).unwrap_err();
        assert!(err.to_string().contains("does not open"), "{err}");
        // Sealed to another enclave key.
        let other = EnclaveKeyPair::generate().unwrap();
        let resp = ReleaseResponse {
            releases: vec![released("algorithm_owner", &ao, &other, &info("ao", &ao))],
        };
        assert!(open_released(&enclave, &ctx(), &resp).is_err());
    }
}
