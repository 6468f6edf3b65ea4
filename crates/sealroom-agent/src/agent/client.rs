//! The agent's client for the control plane: the agent API (`/api/v1/agent/...`) and the key
//! broker (`/api/v1/broker/...`), with the site token; and a separate, token-less HTTP agent for
//! dataset URLs, which point at storage and must never see the site token.
//!
//! Blocking [`ureq`] calls, run on tokio's blocking threads by [`Client::call`]. Every call has a
//! timeout; transport errors and `5xx` answers are retried with exponential backoff
//! ([`Retry`]); `4xx` answers are not (they will not change), and come back as
//! [`ClientError::Status`] with the server's `{"code","message"}`.
//!
//! The wire types here are the agent's own view of the server's JSON: only the fields it uses,
//! unknown fields ignored, so that the agent does not depend on the server's crates (STYLE.md:
//! what runs next to secrets stays small).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Errors talking to the control plane or to a dataset URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request never got an answer (connection, TLS, timeout), after the retries.
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    /// The server answered with an error status.
    #[error("{what}: the server answered {status}{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        what: String,
        status: u16,
        /// The API's error code (`invalid_state_transition`, ...), when the body had one.
        code: Option<String>,
        message: String,
    },
    /// The answer could not be read as expected.
    #[error("{what}: unexpected answer: {message}")]
    Decode { what: String, message: String },
    /// A body was larger than allowed.
    #[error("{what}: more than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The client cannot be configured (bad URL, no CA certificates for HTTPS).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result alias of the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Most attempts in all (1: no retry).
    pub attempts: u32,
    /// The first wait; doubled after each failure.
    pub first_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl Retry {
    /// The wait before attempt `n + 1` (n ≥ 1).
    fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of an ordinary call (the claim long poll adds its wait to it).
    pub timeout: Duration,
    /// Timeout of a transfer (package, dataset file, output upload).
    pub transfer_timeout: Duration,
    /// Retries.
    pub retry: Retry,
    /// Extra PEM CA certificates to trust (a self-hosted server's own CA).
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(3600),
            retry: Retry::default(),
            extra_ca_pem: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types (the server's JSON, as the agent reads and writes it).

/// The run inside a bundle.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleRun {
    /// `ESCROW_RUN_ID`.
    pub id: String,
    /// `ESCROW_PROJECT_ID`.
    pub project_id: String,
    /// `ESCROW_RUN_CONFIG_ID`.
    pub run_config_id: String,
    /// The state when the bundle was made.
    pub state: String,
}

/// The project inside a bundle.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleProject {
    /// Its id.
    pub id: String,
    /// `simulated`, `sev-snp`, `tdx`, `azure-cvm`.
    pub technology: String,
}

/// The run configuration inside a bundle.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleRunConfig {
    /// Its id.
    pub id: String,
}

/// The algorithm version inside a bundle.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleAlgorithm {
    /// The version.
    pub version_id: String,
    /// `training` or `validation`.
    pub algorithm_type: String,
    /// The approved workload digest (hex SHA-256 of the package): keys are released only to it.
    pub workload_digest: Option<String>,
    /// Package size in bytes.
    pub package_size: Option<i64>,
    /// Hex SHA-256 of the package.
    pub package_sha256: Option<String>,
}

/// The dataset version inside a bundle.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleDataset {
    /// The version.
    pub version_id: String,
    /// The signed URL of the sealed dataset.
    pub url: String,
}

/// A runtime parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// Its name (an environment variable's name).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// vCPU and RAM of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compute {
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in GiB.
    pub ram_gib: u32,
}

/// Everything the agent needs to run one run (`POST /api/v1/agent/claim`).
#[derive(Debug, Clone, Deserialize)]
pub struct RunBundle {
    /// The run.
    pub run: BundleRun,
    /// The project.
    pub project: BundleProject,
    /// The run configuration.
    pub run_config: BundleRunConfig,
    /// The algorithm version.
    pub algorithm: BundleAlgorithm,
    /// The dataset version.
    pub dataset: BundleDataset,
    /// The accepted validation criteria (JSON text), if any.
    pub criteria_json: Option<String>,
    /// Runtime parameters.
    #[serde(default)]
    pub params: Vec<Param>,
    /// vCPU / RAM.
    pub compute: Compute,
}

/// `POST /api/v1/agent/runs/{run_id}/state`.
#[derive(Debug, Clone, Serialize)]
pub struct StateReport<'a> {
    /// `runtime_build`, `workload_launch`, `running`, `completed`, `failed`.
    pub state: &'a str,
    /// Why (required for `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Heartbeat {
    /// The run's state on the server.
    pub state: String,
    /// Whether the DS cancelled the run.
    pub cancel: bool,
}

/// Which log a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The agent's own progress (shared with both sides).
    Stage,
    /// What the algorithm printed.
    Algorithm,
}

/// One log line sent to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Which log.
    pub stream: LogStream,
    /// When the agent saw it (RFC 3339), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The text.
    pub line: String,
}

#[derive(Serialize)]
struct LogBatch<'a> {
    lines: &'a [LogLine],
}

/// What the server stored for an output.
#[derive(Debug, Clone, Deserialize)]
pub struct OutputStored {
    /// `<kind>:<name>`.
    pub id: String,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256.
    pub sha256: String,
}

/// `PUT /api/v1/agent/attestation-key`.
#[derive(Debug, Serialize)]
struct SiteKeyRequest<'a> {
    public_key: &'a str,
}

#[derive(Serialize)]
struct NonceRequest<'a> {
    run_id: &'a str,
}

/// A key-release nonce.
#[derive(Debug, Clone, Deserialize)]
pub struct NonceResponse {
    /// 32 random bytes, standard base64, as issued.
    pub nonce: String,
}

/// Evidence as the broker takes it.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceBody {
    /// The technology (`simulated`, ...).
    pub technology: String,
    /// The evidence, standard base64.
    pub data: String,
}

/// `POST /api/v1/broker/release`.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseRequest {
    /// The run.
    pub run_id: String,
    /// The nonce as received.
    pub nonce: String,
    /// The evidence.
    pub evidence: EvidenceBody,
    /// The enclave's ephemeral X25519 public key, standard base64.
    pub enclave_public_key: String,
    /// The workload digest bound into the evidence.
    pub workload_digest: String,
}

/// One released CEK.
#[derive(Clone, Deserialize)]
pub struct ReleasedKey {
    /// `algorithm_owner` or `data_steward`.
    pub role: String,
    /// The CEK's key id (hex).
    pub cek_key_id: String,
    /// HPKE `enc` (32 bytes) then the sealed CEK (48), standard base64.
    pub sealed_cek: String,
    /// The HPKE `info`, standard base64 (recomputed and compared by the agent).
    #[serde(default)]
    pub info: Option<String>,
}

impl std::fmt::Debug for ReleasedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleasedKey")
            .field("role", &self.role)
            .field("cek_key_id", &self.cek_key_id)
            .finish_non_exhaustive()
    }
}

/// What the broker released.
#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseResponse {
    /// One per role whose WCEK exists.
    pub releases: Vec<ReleasedKey>,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<String>,
    message: Option<String>,
}

// ---------------------------------------------------------------------------------------------

/// Largest JSON answer read.
const MAX_JSON: u64 = 16 << 20;
/// Longest claim long poll the server allows.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);

/// A body to upload, re-readable for retries.
#[derive(Debug, Clone, Copy)]
pub enum Upload<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A file, read from its start at each attempt.
    File(&'a std::path::Path),
}

struct Inner {
    base: String,
    token: Zeroizing<String>,
    http: ureq::Agent,
    opts: ClientOptions,
}

/// The control-plane client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// Builds a ureq agent: no redirects (a redirect could carry the token elsewhere), status codes
/// as answers, TLS with the system's CA bundle (and `extra_ca_pem`) for `https` URLs.
pub fn http_agent(https: bool, extra_ca_pem: Option<&[u8]>) -> Result<ureq::Agent> {
    use ureq::tls::{RootCerts, TlsConfig};
    let mut builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("sealroom-agent/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(15)));
    if https || extra_ca_pem.is_some() {
        let mut pem = system_ca_bundle()?;
        if let Some(extra) = extra_ca_pem {
            pem.extend_from_slice(b"\n");
            pem.extend_from_slice(extra);
        }
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(ClientError::Config(
                "no CA certificate found for HTTPS: install ca-certificates, set SSL_CERT_FILE, or give --ca-cert".into(),
            ));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        builder = builder.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .unversioned_rustls_crypto_provider(provider)
                .build(),
        );
    }
    Ok(builder.build().into())
}

/// The system's CA bundle (PEM): `$SSL_CERT_FILE`, else the usual Debian/Fedora/Alpine paths;
/// empty when there is none.
fn system_ca_bundle() -> Result<Vec<u8>> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("SSL_CERT_FILE") {
        candidates.push(std::path::PathBuf::from(p));
    }
    for p in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ] {
        candidates.push(p.into());
    }
    for p in candidates {
        if let Ok(bytes) = std::fs::read(&p) {
            return Ok(bytes);
        }
    }
    Ok(Vec::new())
}

fn transport(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

impl Client {
    /// A client for the server at `server` (`http://` or `https://`), with a site token.
    pub fn new(server: &str, token: &str, opts: ClientOptions) -> Result<Self> {
        let base = server.trim_end_matches('/').to_owned();
        let https = if base.starts_with("https://") {
            true
        } else if base.starts_with("http://") {
            false
        } else {
            return Err(ClientError::Config(format!(
                "the server URL {base:?} must start with http:// or https://"
            )));
        };
        if token.trim().is_empty() {
            return Err(ClientError::Config("the site token is empty".into()));
        }
        let http = http_agent(https, opts.extra_ca_pem.as_deref())?;
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                token: Zeroizing::new(format!("Bearer {}", token.trim())),
                http,
                opts,
            }),
        })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.inner.base
    }

    /// The client's options.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// Runs a blocking call on tokio's blocking threads.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Client) -> Result<T> + Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| transport("a client call", e))?
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base)
    }

    /// One request with retries. `send` makes and sends the request once; a transport error or
    /// a 5xx answer is retried after a backoff.
    fn with_retry(
        &self,
        what: &str,
        mut send: impl FnMut() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let retry = self.inner.opts.retry;
        let mut attempt = 1;
        loop {
            let outcome = send();
            let retryable = match &outcome {
                Ok(r) => r.status().is_server_error(),
                Err(_) => true,
            };
            if !retryable || attempt >= retry.attempts.max(1) {
                return match outcome {
                    Ok(r) => Ok(r),
                    Err(e) => Err(transport(what, e)),
                };
            }
            if let Ok(r) = &outcome {
                tracing::debug!(what, status = r.status().as_u16(), attempt, "retrying");
            } else if let Err(e) = &outcome {
                tracing::debug!(what, error = %e, attempt, "retrying");
            }
            std::thread::sleep(retry.backoff(attempt));
            attempt += 1;
        }
    }

    /// Turns an error status into [`ClientError::Status`].
    fn check(
        what: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ApiError>(&body) {
            Ok(e) => (e.code, e.message.unwrap_or_else(|| status.to_string())),
            Err(_) => (
                None,
                String::from_utf8_lossy(&body).chars().take(500).collect(),
            ),
        };
        Err(ClientError::Status {
            what: what.to_owned(),
            status: status.as_u16(),
            code,
            message,
        })
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        what: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T> {
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_JSON)
            .read_to_vec()
            .map_err(|e| transport(what, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            message: e.to_string(),
        })
    }

    fn post_json(
        &self,
        what: &str,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let json = serde_json::to_vec(body).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            message: e.to_string(),
        })?;
        let url = self.url(path);
        let resp = self.with_retry(what, || {
            self.inner
                .http
                .post(&url)
                .header("Authorization", self.inner.token.as_str())
                .content_type("application/json")
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send(&json[..])
        })?;
        Self::check(what, resp)
    }

    fn get(
        &self,
        what: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let url = self.url(path);
        let resp = self.with_retry(what, || {
            self.inner
                .http
                .get(&url)
                .header("Authorization", self.inner.token.as_str())
                .config()
                .timeout_global(Some(timeout))
                .build()
                .call()
        })?;
        Self::check(what, resp)
    }

    /// Claims a run, waiting up to `wait` (at most 30 s) for one; `None` when there was none.
    pub fn claim(&self, wait: Duration) -> Result<Option<RunBundle>> {
        let what = "claiming a run";
        let wait = wait.min(MAX_CLAIM_WAIT);
        let path = format!("/api/v1/agent/claim?wait={}", wait.as_secs());
        let resp = self.post_json(
            what,
            &path,
            &serde_json::json!({}),
            self.inner.opts.timeout + wait,
        )?;
        if resp.status().as_u16() == 204 {
            return Ok(None);
        }
        Self::read_json(what, resp).map(Some)
    }

    /// The bundle of a run this site claimed.
    pub fn bundle(&self, run_id: &str) -> Result<RunBundle> {
        let what = "reading the run";
        let resp = self.get(
            what,
            &format!("/api/v1/agent/runs/{run_id}"),
            self.inner.opts.timeout,
        )?;
        Self::read_json(what, resp)
    }

    /// Downloads the run's package into `dest`, at most `max` bytes; returns the byte count.
    pub fn download_package(&self, run_id: &str, dest: &mut dyn Write, max: u64) -> Result<u64> {
        let what = "downloading the package";
        let resp = self.get(
            what,
            &format!("/api/v1/agent/runs/{run_id}/package"),
            self.inner.opts.transfer_timeout,
        )?;
        copy_capped(what, resp, dest, max)
    }

    /// Reports a state (`runtime_build`, `workload_launch`, `running`, `completed`, `failed`).
    pub fn report_state(&self, run_id: &str, state: &str, message: Option<&str>) -> Result<()> {
        let what = format!("reporting state {state}");
        // The server takes at most 2000 characters.
        let message: Option<String> = message.map(|m| m.chars().take(2000).collect());
        self.post_json(
            &what,
            &format!("/api/v1/agent/runs/{run_id}/state"),
            &StateReport {
                state,
                message: message.as_deref(),
            },
            self.inner.opts.timeout,
        )
        .map(drop)
    }

    /// Sends a heartbeat; answers whether the run was cancelled.
    pub fn heartbeat(&self, run_id: &str) -> Result<Heartbeat> {
        let what = "sending a heartbeat";
        let resp = self.post_json(
            what,
            &format!("/api/v1/agent/runs/{run_id}/heartbeat"),
            &serde_json::json!({}),
            self.inner.opts.timeout,
        )?;
        Self::read_json(what, resp)
    }

    /// Appends log lines (at most 1000 per call; longer batches are split).
    pub fn append_logs(&self, run_id: &str, lines: &[LogLine]) -> Result<()> {
        for chunk in lines.chunks(1000) {
            self.post_json(
                "sending log lines",
                &format!("/api/v1/agent/runs/{run_id}/logs"),
                &LogBatch { lines: chunk },
                self.inner.opts.timeout,
            )?;
        }
        Ok(())
    }

    /// Uploads an output (`final_report`, `performance_report`, `trained_model`, ...).
    pub fn put_output(
        &self,
        run_id: &str,
        kind: &str,
        name: Option<&str>,
        passed_criteria: Option<bool>,
        body: Upload<'_>,
    ) -> Result<OutputStored> {
        let what = format!("uploading the {kind}");
        let url = self.url(&format!("/api/v1/agent/runs/{run_id}/outputs/{kind}"));
        let resp = self.with_retry(&what, || {
            let mut req = self
                .inner
                .http
                .put(&url)
                .header("Authorization", self.inner.token.as_str())
                .content_type("application/octet-stream");
            if let Some(n) = name {
                req = req.query("name", n);
            }
            if let Some(p) = passed_criteria {
                req = req.query("passed_criteria", if p { "true" } else { "false" });
            }
            let req = req
                .config()
                .timeout_global(Some(self.inner.opts.transfer_timeout))
                .build();
            match body {
                Upload::Bytes(b) => req.send(b),
                Upload::File(p) => match std::fs::File::open(p) {
                    Ok(f) => req.send(f),
                    Err(e) => Err(ureq::Error::Io(e)),
                },
            }
        })?;
        let resp = Self::check(&what, resp)?;
        Self::read_json(&what, resp)
    }

    /// Registers the site's simulated-attester public key (Ed25519, 32 bytes). Registering the
    /// same key again is fine; another key is refused by the server (409) until an admin
    /// removes the old one.
    pub fn register_attestation_key(&self, public_key: &[u8; 32]) -> Result<()> {
        use base64::Engine as _;
        let what = "registering the site's simulated attestation key";
        let b64 = base64::engine::general_purpose::STANDARD.encode(public_key);
        let url = self.url("/api/v1/agent/attestation-key");
        let json = serde_json::to_vec(&SiteKeyRequest { public_key: &b64 }).map_err(|e| {
            ClientError::Decode {
                what: what.into(),
                message: e.to_string(),
            }
        })?;
        let resp = self.with_retry(what, || {
            self.inner
                .http
                .put(&url)
                .header("Authorization", self.inner.token.as_str())
                .content_type("application/json")
                .config()
                .timeout_global(Some(self.inner.opts.timeout))
                .build()
                .send(&json[..])
        })?;
        Self::check(what, resp).map(drop)
    }

    /// A single-use key-release nonce for a run.
    pub fn nonce(&self, run_id: &str) -> Result<NonceResponse> {
        let what = "asking the broker for a nonce";
        let resp = self.post_json(
            what,
            "/api/v1/broker/nonce",
            &NonceRequest { run_id },
            self.inner.opts.timeout,
        )?;
        Self::read_json(what, resp)
    }

    /// Asks the broker to release the run's CEKs to an attested enclave key. Not retried on a
    /// refusal: the nonce is used up.
    pub fn release(&self, req: &ReleaseRequest) -> Result<ReleaseResponse> {
        let what = "asking the broker to release the keys";
        let resp = self.post_json(what, "/api/v1/broker/release", req, self.inner.opts.timeout)?;
        Self::read_json(what, resp)
    }
}

/// Copies a response body into `dest`, refusing more than `max` bytes.
pub(crate) fn copy_capped(
    what: &str,
    mut resp: ureq::http::Response<ureq::Body>,
    dest: &mut dyn Write,
    max: u64,
) -> Result<u64> {
    if let Some(len) = resp.body().content_length() {
        if len > max {
            return Err(ClientError::TooLarge {
                what: what.to_owned(),
                limit: max,
            });
        }
    }
    let mut reader = resp
        .body_mut()
        .with_config()
        .limit(max.saturating_add(1))
        .reader();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(if total >= max {
                    ClientError::TooLarge {
                        what: what.to_owned(),
                        limit: max,
                    }
                } else {
                    transport(what, e)
                })
            }
        };
        total += n as u64;
        if total > max {
            return Err(ClientError::TooLarge {
                what: what.to_owned(),
                limit: max,
            });
        }
        dest.write_all(&buf[..n])
            .map_err(|source| ClientError::Io {
                what: what.to_owned(),
                source,
            })?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let r = Retry::default();
        assert_eq!(r.backoff(1), Duration::from_millis(250));
        assert_eq!(r.backoff(2), Duration::from_millis(500));
        assert_eq!(r.backoff(3), Duration::from_secs(1));
        assert_eq!(r.backoff(10), Duration::from_secs(4));
        assert_eq!(r.backoff(100), Duration::from_secs(4));
    }

    /// The bundle as `crates/sealroom-control/src/routes/agent.rs` (`RunBundle`) writes it.
    #[test]
    fn bundle_from_the_server() {
        let json = r#"{
          "run": {"id": "run_1", "project_id": "prj_1", "run_config_id": "rc_1",
                  "state": "initiated", "params": [{"name": "EPOCHS", "value": "3"}],
                  "compute": {"vcpus": 2, "ram_gib": 4}, "requested_by": "usr_1",
                  "requested_at": "2026-01-01T00:00:00Z", "initiated_by": "usr_2",
                  "reason": null, "site_id": "site_1", "updated_at": "2026-01-01T00:00:00Z"},
          "project": {"id": "prj_1", "technology": "simulated"},
          "run_config": {"id": "rc_1", "project_id": "prj_1", "name": "n", "description": "",
                         "algorithm_version_id": "ver_a", "dataset_version_id": "ver_d",
                         "criteria_version_id": "ver_c", "created_by": "usr_1",
                         "created_at": "2026-01-01T00:00:00Z"},
          "algorithm": {"version_id": "ver_a", "algorithm_type": "training",
                        "workload_digest": "ab12", "package_size": 10240,
                        "package_sha256": "ab12", "wcek_fingerprint": null},
          "dataset": {"version_id": "ver_d", "url": "http://x/blobs/a/?sv=sealroom1&sp=l&se=1&sig=0",
                      "url_expires_at": "2027-01-01T00:00:00Z", "wcek_fingerprint": null},
          "criteria_json": "{\"type\":\"dict\"}",
          "params": [{"name": "EPOCHS", "value": "3"}],
          "compute": {"vcpus": 2, "ram_gib": 4},
          "keys": [{"role": "algorithm_owner", "artifact_wcek_fingerprint": null,
                    "latest_wcek_version": 1, "latest_wcek_fingerprint": "f",
                    "latest_cek_key_id": "k"}]
        }"#;
        let b: RunBundle = serde_json::from_str(json).unwrap();
        assert_eq!(b.run.id, "run_1");
        assert_eq!(b.run_config.id, "rc_1");
        assert_eq!(b.project.technology, "simulated");
        assert_eq!(b.algorithm.algorithm_type, "training");
        assert_eq!(b.algorithm.workload_digest.as_deref(), Some("ab12"));
        assert_eq!(
            b.params,
            vec![Param {
                name: "EPOCHS".into(),
                value: "3".into()
            }]
        );
        assert_eq!(
            b.compute,
            Compute {
                vcpus: 2,
                ram_gib: 4
            }
        );
    }

    /// Request bodies match the server's `deny_unknown_fields` structs.
    #[test]
    fn request_shapes() {
        let s = serde_json::to_value(StateReport {
            state: "failed",
            message: Some("why"),
        })
        .unwrap();
        assert_eq!(s, serde_json::json!({"state": "failed", "message": "why"}));
        let s = serde_json::to_value(StateReport {
            state: "running",
            message: None,
        })
        .unwrap();
        assert_eq!(s, serde_json::json!({"state": "running"}));
        let logs = [
            LogLine {
                stream: LogStream::Stage,
                at: None,
                line: "Runtime Build".into(),
            },
            LogLine {
                stream: LogStream::Algorithm,
                at: Some("2026-01-01T00:00:00Z".into()),
                line: "hello".into(),
            },
        ];
        assert_eq!(
            serde_json::to_value(LogBatch { lines: &logs }).unwrap(),
            serde_json::json!({"lines": [
                {"stream": "stage", "line": "Runtime Build"},
                {"stream": "algorithm", "at": "2026-01-01T00:00:00Z", "line": "hello"}
            ]})
        );
        let r = ReleaseRequest {
            run_id: "run_1".into(),
            nonce: "bm9uY2U=".into(),
            evidence: EvidenceBody {
                technology: "simulated".into(),
                data: "ZXY=".into(),
            },
            enclave_public_key: "a2V5".into(),
            workload_digest: "ab12".into(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"run_id": "run_1", "nonce": "bm9uY2U=",
                "evidence": {"technology": "simulated", "data": "ZXY="},
                "enclave_public_key": "a2V5", "workload_digest": "ab12"})
        );
        assert_eq!(
            serde_json::to_value(SiteKeyRequest { public_key: "cGs=" }).unwrap(),
            serde_json::json!({"public_key": "cGs="})
        );
        assert_eq!(
            serde_json::to_value(NonceRequest { run_id: "run_1" }).unwrap(),
            serde_json::json!({"run_id": "run_1"})
        );
    }

    /// Answers as the server writes them.
    #[test]
    fn answer_shapes() {
        let h: Heartbeat = serde_json::from_str(r#"{"state":"cancelled","cancel":true}"#).unwrap();
        assert!(h.cancel);
        let r: ReleaseResponse = serde_json::from_str(
            r#"{"run_id":"run_1","project_id":"prj_1","technology":"simulated","measurement":"00",
                "tcb_status":"simulated","releases":[{"role":"data_steward","cek_key_id":"ab",
                "wcek_fingerprint":"f","wcek_version":1,"sealed_cek":"AAAA","info":"BBBB"}]}"#,
        )
        .unwrap();
        assert_eq!(r.releases[0].role, "data_steward");
        assert!(!format!("{:?}", r.releases[0]).contains("AAAA"));
        let o: OutputStored = serde_json::from_str(
            r#"{"id":"final_report:final-report.json","size":3,"sha256":"ab"}"#,
        )
        .unwrap();
        assert_eq!(o.size, 3);
    }

    #[test]
    fn bad_server_urls() {
        let opts = ClientOptions::default();
        assert!(matches!(
            Client::new("ftp://x", "srt_1", opts.clone()),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            Client::new("http://x", " ", opts.clone()),
            Err(ClientError::Config(_))
        ));
        assert!(Client::new("http://127.0.0.1:1/", "srt_1", opts).is_ok());
    }

    /// Retries on 5xx, then gives up with the status; a 4xx is not retried.
    #[test]
    fn retries_server_errors_only() {
        use std::io::BufRead;
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            // Three 503s for the heartbeat (3 attempts), then one 409 for the state.
            for status in ["503 Service Unavailable"; 3]
                .into_iter()
                .chain(["409 Conflict"])
            {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                seen.push(line.trim().to_owned());
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                std::io::Read::read_exact(&mut reader, &mut body).unwrap();
                let answer = r#"{"code":"invalid_state_transition","message":"run is cancelled"}"#;
                let mut s = stream;
                write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .unwrap();
            }
            seen
        });
        let client = Client::new(
            &format!("http://{addr}"),
            "srt_test",
            ClientOptions {
                retry: Retry {
                    attempts: 3,
                    first_backoff: Duration::from_millis(10),
                    max_backoff: Duration::from_millis(20),
                },
                ..Default::default()
            },
        )
        .unwrap();
        let err = client.heartbeat("run_1").unwrap_err();
        assert_eq!(err.status(), Some(503), "{err}");
        let err = client.report_state("run_1", "running", None).unwrap_err();
        assert_eq!(err.status(), Some(409));
        assert!(
            err.to_string().contains("invalid_state_transition"),
            "{err}"
        );
        let seen = server.join().unwrap();
        assert_eq!(
            seen,
            vec![
                "POST /api/v1/agent/runs/run_1/heartbeat HTTP/1.1",
                "POST /api/v1/agent/runs/run_1/heartbeat HTTP/1.1",
                "POST /api/v1/agent/runs/run_1/heartbeat HTTP/1.1",
                "POST /api/v1/agent/runs/run_1/state HTTP/1.1",
            ]
        );
    }
}
