//! The Enclave API: what an algorithm inside the sandbox talks to, on EscrowAI's paths so its
//! users' algorithms run unchanged (DESIGN.md §4). `docs/enclave-api.md` has every request and
//! response shape.
//!
//! | method path | does |
//! |---|---|
//! | `GET /api/v1/data/files` | `{"files":[{"id","name","size","uploadDate"}],"totalFiles"}` |
//! | `GET /api/v1/data/file?filepath=NAME` | the decrypted bytes, streamed; `Range` supported; 404 if unknown |
//! | `POST /api/v1/validate` | checks a report's `json_data` against the accepted criteria |
//! | `POST /api/v1/report` | posts a report; status `Completed` makes it the final report, which must validate |
//! | `GET /api/v1/parameters` | the run's runtime parameters (Sealroom addition) |
//! | `POST /api/v1/model[?name=N]` | a training run's trained model, sealed to the AO as it streams (Sealroom addition) |
//! | `/api/2.0/mlflow/...` | a subset of the MLflow tracking REST API; becomes the performance report (Sealroom addition) |
//!
//! It is served over TLS (a self-signed certificate for `localhost`, as the seed's examples use
//! `verify=False`) on a unix socket that is bound into the sandbox; see
//! [`crate::forwarder`] for how `https://localhost:5000` reaches it. The sandbox's environment
//! should include [`sandbox_env`] so that the MLflow client finds the API.
//!
//! Every body the API parses has a size cap ([`ApiLimits`]); malformed JSON is answered with
//! `400` and a JSON error.

pub mod data;
mod http;
pub mod mlflow;
mod model;
mod tls;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use sealroom_criteria::Criteria;
use sealroom_envelope::Cek;

pub use http::{handle, serve, ApiBody};
pub use mlflow::{MetricPoint, Performance, TrackedRun, TrackingLimits};
pub use tls::self_signed_acceptor;

use data::DataSource;

/// Largest request body accepted by the report and validate endpoints (the default of
/// [`ApiLimits::max_body`]).
pub const MAX_BODY: usize = 16 << 20;

/// Default largest trained model accepted (plaintext bytes): 4 GiB.
pub const DEFAULT_MAX_MODEL_BYTES: u64 = 4 << 30;

/// The size caps of one run's API. Every body the API parses is capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest report or validate body (JSON, the base64 `json_data` included).
    pub max_body: usize,
    /// Most non-final reports kept.
    pub max_progress_reports: usize,
    /// Most bytes of non-final report documents kept, all together.
    pub max_progress_bytes: usize,
    /// Largest trained model (plaintext bytes) `POST /api/v1/model` accepts.
    pub max_model_bytes: u64,
    /// The MLflow tracking subset's limits.
    pub tracking: TrackingLimits,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body: MAX_BODY,
            max_progress_reports: 1000,
            max_progress_bytes: 64 << 20,
            max_model_bytes: DEFAULT_MAX_MODEL_BYTES,
            tracking: TrackingLimits::default(),
        }
    }
}

/// The environment the sandbox needs, besides `ENCLAVE_API_URL`, for the Enclave API's
/// additions: the MLflow client is pointed at the API (`MLFLOW_TRACKING_URI`, with certificate
/// checks off as for the self-signed certificate) and its telemetry is off (there is no network).
/// `api_url` is the API's base URL as the algorithm sees it (`https://localhost:5000`).
pub fn sandbox_env(api_url: &str) -> Vec<(String, String)> {
    [
        ("MLFLOW_TRACKING_URI", api_url.trim_end_matches('/')),
        ("MLFLOW_TRACKING_INSECURE_TLS", "true"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The identifiers a run's algorithm sees.
#[derive(Debug, Clone, Default)]
pub struct RunIds {
    /// `ESCROW_PROJECT_ID`.
    pub project: String,
    /// `ESCROW_RUN_ID`.
    pub run: String,
    /// `ESCROW_RUN_CONFIG_ID`.
    pub run_config: String,
}

/// The kind of algorithm a run executes (the algorithm artifact's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlgorithmType {
    /// Trains a model: may upload one trained model, sealed to the AO.
    Training,
    /// Validates a model: outputs only reports.
    #[default]
    Validation,
}

/// Where a training run's trained model goes: a directory on the run's memory-backed storage and
/// the AO's CEK it is sealed with as it streams in. Plaintext never reaches the disk.
#[derive(Debug)]
pub struct ModelOutput {
    /// The output directory (memory-backed); the sealed model is written as
    /// [`MODEL_FILE_NAME`] in it. It must outlive the API's use of the file.
    pub dir: PathBuf,
    /// The AO's CEK (the key of the run's output).
    pub cek: Cek,
}

/// The file name of the sealed trained model in [`ModelOutput::dir`].
pub const MODEL_FILE_NAME: &str = "model.sealed";

/// A report the algorithm posted.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedReport {
    /// Its `name`.
    pub name: String,
    /// Its `status` (`In Progress`, `Completed`, ...).
    pub status: String,
    /// The decoded `json_data`, byte for byte as posted (and, for a final report, as validated).
    /// This is what is stored and forwarded.
    pub json: Vec<u8>,
    /// The same document parsed, for display only: re-serializing it is lossy (large integers
    /// become floats, key order may change), so never forward it in place of [`Self::json`].
    pub document: serde_json::Value,
}

/// The trained model a training run uploaded, sealed to the AO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedModel {
    /// The name the algorithm gave (`?name=`), `model` by default.
    pub name: String,
    /// The sealed file.
    pub path: PathBuf,
    /// Plaintext bytes received.
    pub size: u64,
    /// Bytes of the sealed file.
    pub sealed_size: u64,
    /// SHA-256 of the sealed file, lowercase hex.
    pub sha256: String,
    /// Key id of the CEK it is sealed with.
    pub key_id: String,
}

/// What the algorithm has reported so far.
#[derive(Debug, Default, Clone)]
pub struct Reports {
    /// Every report that was not final, in order.
    pub progress: Vec<PostedReport>,
    /// The final report, once one validated.
    pub final_report: Option<PostedReport>,
    /// Final reports that failed validation (their content is dropped: it must not leave).
    pub rejected_finals: usize,
    /// Non-final reports refused because the progress limits were reached.
    pub dropped_progress: usize,
    /// The trained model (training runs), once one was uploaded completely.
    pub model: Option<UploadedModel>,
    /// What the algorithm logged through the MLflow tracking subset: the performance report.
    pub performance: Performance,
}

/// The state behind one run's Enclave API.
#[derive(Debug)]
pub struct EnclaveApi {
    data: Arc<dyn DataSource>,
    criteria: Criteria,
    parameters: Vec<(String, String)>,
    ids: RunIds,
    algorithm: AlgorithmType,
    output: Option<ModelOutput>,
    limits: ApiLimits,
    reports: Mutex<Reports>,
    tracking: Mutex<mlflow::Tracking>,
    /// Set while a model upload runs: a second one at the same time is refused.
    model_busy: AtomicBool,
}

impl EnclaveApi {
    /// The API for one validation run, with the default limits. See [`Self::training`] and
    /// [`Self::with_limits`].
    pub fn new(
        data: Arc<dyn DataSource>,
        criteria: Criteria,
        parameters: Vec<(String, String)>,
        ids: RunIds,
    ) -> Self {
        let limits = ApiLimits::default();
        EnclaveApi {
            data,
            criteria,
            parameters,
            ids,
            algorithm: AlgorithmType::Validation,
            output: None,
            tracking: Mutex::new(mlflow::Tracking::new(limits.tracking.clone())),
            limits,
            reports: Mutex::new(Reports::default()),
            model_busy: AtomicBool::new(false),
        }
    }

    /// Makes this a training run's API, whose trained model goes to `output`.
    pub fn training(mut self, output: ModelOutput) -> Self {
        self.algorithm = AlgorithmType::Training;
        self.output = Some(output);
        self
    }

    /// Replaces the size caps.
    pub fn with_limits(mut self, limits: ApiLimits) -> Self {
        self.tracking = Mutex::new(mlflow::Tracking::new(limits.tracking.clone()));
        self.limits = limits;
        self
    }

    /// The kind of algorithm this run executes.
    pub fn algorithm(&self) -> AlgorithmType {
        self.algorithm
    }

    /// A copy of the reports so far, the performance report included.
    pub fn reports(&self) -> Reports {
        let performance = self.with_tracking(|t| t.performance());
        let mut reports = self.with_reports(|r| r.clone());
        reports.performance = performance;
        reports
    }

    /// The run's identifiers.
    pub fn ids(&self) -> &RunIds {
        &self.ids
    }

    fn with_reports<T>(&self, f: impl FnOnce(&mut Reports) -> T) -> T {
        match self.reports.lock() {
            Ok(mut r) => f(&mut r),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn with_tracking<T>(&self, f: impl FnOnce(&mut mlflow::Tracking) -> T) -> T {
        match self.tracking.lock() {
            Ok(mut t) => f(&mut t),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests;

/// Entry points for fuzz targets: the parsers of what the algorithm sends. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use super::mlflow::{Tracking, TrackingLimits};

    /// Parses a report body (`POST /api/v1/report` and `/api/v1/validate`).
    pub fn report_body(bytes: &[u8]) {
        let _ = super::http::parse_report(bytes);
    }

    /// One MLflow tracking request: the first byte picks the endpoint and method, the rest is
    /// the body (POST) or the query (GET).
    pub fn tracking_request(bytes: &[u8]) {
        const ENDPOINTS: [&str; 13] = [
            "experiments/get",
            "experiments/get-by-name",
            "experiments/search",
            "experiments/create",
            "runs/create",
            "runs/get",
            "runs/update",
            "runs/log-parameter",
            "runs/log-metric",
            "runs/log-batch",
            "runs/set-tag",
            "runs/delete-tag",
            "metrics/get-history",
        ];
        let Some((first, rest)) = bytes.split_first() else {
            return;
        };
        let endpoint = ENDPOINTS[usize::from(*first) % ENDPOINTS.len()];
        let mut t = Tracking::new(TrackingLimits::default());
        t.handle_request("POST", "runs/create", None, b"{}");
        if first & 0x80 == 0 {
            t.handle_request("POST", endpoint, None, rest);
        } else {
            let query = String::from_utf8_lossy(rest);
            t.handle_request("GET", endpoint, Some(&query), b"");
        }
    }
}
